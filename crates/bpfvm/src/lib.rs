//! bpfvm — the Linux eBPF subsystem rebuilt in userspace.
//!
//! This is the public API (the facade); the `bpfvm-*` crates behind it are internal.
//! (The runtime — the command dispatcher modelled on bpf(2) — is being built.)

pub use bpfvm_isa as isa;
pub use bpfvm_maps as maps;
pub use bpfvm_obj as obj;
pub use bpfvm_vm as vm;
