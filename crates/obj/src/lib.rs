//! bpfvm-obj — internal dependency of bpfvm.
//!
//! Reads BPF ELF objects (as clang and gcc-bpf emit them) the way libbpf reads them.
//! Parses only: no side effects.

pub mod btf;
