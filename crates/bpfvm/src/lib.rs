//! bpfvm — the Linux eBPF subsystem rebuilt in userspace.
//!
//! This crate is the public API (the facade) and plays the kernel's part. The
//! [`Runtime`] holds programs, maps and BTF by id, and serves one command
//! dispatcher ([`Runtime::bpf`], modelled on bpf(2)) that the library, the CLI and
//! the daemon all use. Data flows: an [`Object`] parsed from an ELF file is loaded
//! by [`Runtime::load_object`] (maps created, relocations applied, each program
//! decoded and prepared for the VM, its tag computed as the kernel computes it);
//! programs then run through `prog_test_run` ([`BpfCmd::ProgTestRun`]) or attach
//! points, calling the runtime's helpers, which reach maps and the trace pipe
//! through the run's environment.
//!
//! Embedders can use typed views instead of raw commands: [`maps`] has
//! `HashMap<K, V>`, `Array<V>`, `PerCpuArray<V>`, `LpmTrie<K, V>`, `RingBuf` and
//! `ProgramArray` over a map handle, [`programs`] has `Xdp`, `SocketFilter`,
//! `SchedClassifier`, `CgroupSkb`, `RawTracepoint` and `Syscall` handles with a
//! typed `run`.
//!
//! The `bpfvm-*` crates behind it are internal dependencies.
//!
//! ```
//! use bpfvm::{isa::asm::assemble, ProgLoadAttr, ProgType, Runtime};
//!
//! let rt = Runtime::with_cpus(1);
//! // A syscall program that adds the two u32s of its context.
//! let insns = assemble("ldxw %r0, [%r1]\nldxw %r2, [%r1+4]\nadd %r0, %r2\nexit").unwrap();
//! let prog = rt
//!     .load_program(ProgLoadAttr { prog_type: ProgType::Syscall, prog_flags: bpfvm::BPF_F_SLEEPABLE, insns, license: "GPL".into(), name: "add".into(), ..Default::default() })
//!     .unwrap();
//! let ctx: Vec<u8> = [20u32, 22].iter().flat_map(|v| v.to_le_bytes()).collect();
//! assert_eq!(rt.run_context(&prog, &ctx).unwrap().retval, 42);
//! ```

#![deny(missing_docs)]

mod cancel;
mod config;
mod env;
mod error;
mod globalfn;
// The modules marked #[doc(hidden)] are internal: public only for this crate's
// kernel-oracle tests and the CLI's conformance plugin, not part of the API.
#[doc(hidden)]
pub mod helpers;
#[doc(hidden)]
pub mod helpers_pure;
mod idr;
mod info;
mod inspect;
pub mod kconfig;
mod kernel;
#[doc(hidden)]
pub mod kfuncs;
mod loader;
mod lowmem;
mod maphelpers;
pub mod maps;
pub mod nethelpers;
#[doc(hidden)]
pub mod printk;
mod prog;
pub mod programs;
pub mod tag;
mod task;
mod testrun;
mod trace;
pub mod xlated;

/// `prog_flags` bit of [`ProgLoadAttr`]: the program may sleep (syscall
/// programs must set it; fentry/fexit, lsm, iter and uprobe ones may).
pub use bpfvm_isa::uapi::BPF_F_SLEEPABLE;
pub use bpfvm_verifier::{Refused as VerifierRefused, Stats as VerifierStats};
pub use cancel::{set_cancel_flag, CancelGuard};
pub use config::RuntimeConfig;
pub use env::{Redirect, XdpMd};
pub use error::BpfError;
pub use info::{prog_type_name, BtfInfo, MapInfo, ProgInfo};
pub use kconfig::Kconfig;
pub use kernel::{
    BpfCmd, BpfReply, BtfObj, JitUnavailable, Jited, JitedInsn, MapCreateAttr, MapFd, MapObj,
    ObjKind, Pinned, ProgFd, ProgLoadAttr, ProgObj, Runtime,
};
pub use loader::{LoadOpts, LoadedObject, TargetBtf, HOST_VMLINUX};
pub use testrun::{TestRunAttr, TestRunResult, BPF_F_TEST_XDP_LIVE_FRAMES, XDP_PACKET_HEADROOM};
pub use trace::TracePipe;

pub use bpfvm_obj::{section_def, AttachType, ProgType, SecDef};
pub use bpfvm_obj::{FuncInfo, LineInfo, MapReloc, MapRelocKind, ObjError, Object};

/// llvm-objdump's `-d`/`-S` listing of BPF objects.
pub mod objdump {
    pub use bpfvm_objdump::{objdump_with, ObjdumpOptions, ObjdumpOutput};
}

/// The instruction set: instructions, their decoding through the opcode table,
/// the assembler, the kernel's disassembly, helper prototypes.
pub mod isa {
    pub use bpfvm_isa::{
        decode_at, insns_from_bytes, insns_to_bytes, DecodeError, Decoded, Disc, Insn, InsnError,
        Op, OpInfo, Shape,
    };

    /// The assembler for the conformance-suite syntax (`mov %r0, 1`, `exit`).
    pub mod asm {
        pub use bpfvm_isa::asm::{assemble, AsmError};
    }

    /// The kernel's disassembly, as verifier logs and `bpftool prog dump xlated` print it.
    pub mod disasm {
        pub use bpfvm_isa::disasm::{kernel_insn_line, KernelSymbols, XlatedSymbols};
    }

    /// Helper prototypes, for [`Runtime::register_helper`](crate::Runtime::register_helper).
    pub mod helpers {
        pub use bpfvm_isa::helpers::{Arg, Effect, Proto, Ret};
    }

    /// The `src_reg` values of an `LD_IMM64` that refers to a map.
    pub mod consts {
        pub use bpfvm_isa::consts::{
            BPF_PSEUDO_BTF_ID, BPF_PSEUDO_KFUNC_CALL, BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_IDX,
            BPF_PSEUDO_MAP_IDX_VALUE, BPF_PSEUDO_MAP_VALUE,
        };
    }
}

/// BTF: types, the value pretty-printer, bpftool's dump formats.
pub mod btf {
    pub use bpfvm_obj::btf::{
        dump_btf_c, dump_btf_c_roots, dump_btf_json, dump_btf_json_roots, dump_btf_plain,
        dump_btf_plain_roots, hex_byte_array, map_entry_dump, write_bpftool_compact,
        write_bpftool_pretty, Btf, BtfArray, BtfEnum, BtfEnum64, BtfError, BtfKind, BtfMember,
        BtfParam, BtfType, BtfTypeData, BtfVarSecinfo, CDumpError, DumpMode, Dumped, MapValues,
        BTF_INT_BOOL, BTF_INT_CHAR, BTF_INT_SIGNED,
    };
}

/// The VM's helper interface, for registering custom helpers, and the raw
/// engine (a [`VmProgram`](vm::VmProgram) run on the interpreter, or compiled
/// to a [`JitProgram`](vm::JitProgram)) for embedders that bring their own
/// memory, as uBPF's users do; these programs are not verified.
pub mod vm {
    #[doc(hidden)]
    pub use bpfvm_vm::conformance;
    pub use bpfvm_vm::{
        At, CallSite, Flow, Helper, HelperCtx, HelperError, HelperOutcome, HelperTable, JitError,
        JitOptions, JitProgram, LoadError, LoadOptions, Observer, Region, RegionKind, RunOptions,
        VmError, VmProgram,
    };
}

// The runtime, its handles and the typed views may be shared across threads
// (the daemon serves clients from several); this fails to compile otherwise.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Runtime>();
    send_sync::<MapFd>();
    send_sync::<ProgFd>();
    send_sync::<maps::RawMap>();
    send_sync::<maps::HashMap<u32, u64>>();
    send_sync::<maps::RingBuf>();
    send_sync::<programs::Xdp>();
};

/// How many `struct bpf_cpumask` objects are alive in this process (a test
/// checks that map updates and deletes release the ones they overwrite).
#[doc(hidden)]
pub fn live_cpumasks() -> usize {
    helpers::cpumask::live_masks()
}
