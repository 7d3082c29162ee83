//! bpfvm-verifier — internal dependency of bpfvm.
//!
//! A static verifier for eBPF programs modelled on the Linux kernel's
//! (`kernel/bpf/verifier.c`). Data flows in two passes over the instruction
//! slots: [`cfg`](mod@cfg) checks the control-flow graph (jump targets, unreachable code,
//! back-edges, subprogram boundaries), then [`check`] explores every path with
//! abstract register and stack state ([`reg::Reg`] with [`tnum::Tnum`] bounds),
//! checking each memory access, helper call and exit, and pruning paths whose
//! state is covered by one already proven safe. The result is either
//! [`Verified`] (with the log, statistics and which loads/stores were proven in
//! bounds) or [`Refused`] (the log and the error in the kernel's wording).
//!
//! Conventions for callers: an LD_IMM64 with `src_reg` BPF_PSEUDO_MAP_FD or
//! BPF_PSEUDO_MAP_VALUE carries a map id in its first `imm` (the value offset
//! in the second slot's `imm`), resolved through the `maps` callback; context
//! accesses are checked against the kernel's UAPI layouts (`struct xdp_md`,
//! `struct __sk_buff`, ...). `log_level` takes the kernel's bits: 1 (the
//! failing path only), 2 (every instruction), 4 (verification time and stack
//! depth). Helper prototypes and the program types each helper is offered to
//! come from the helper registry in bpfvm-isa (`bpfvm_isa::helpers`), which the
//! disassembler and the runtime read too; what depends on the program type
//! (context layouts, packet access, return ranges) is in [`prog`].

pub mod cfg;
pub mod check;
pub mod helpers;
pub mod kfuncs;
pub mod maphelpers;
pub mod prog;
pub mod reg;
pub mod tnum;

use bpfvm_isa::Insn;
use thiserror::Error;

pub use check::btf_ctx::{BtfCtx, BtfCtxArg, FieldRead, KernelTypes};
pub use check::map_ptr::map_struct;
pub use prog::*;

/// A map as the verifier needs to know it (`struct bpf_map` fields).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapDesc {
    pub id: u32,
    /// `BPF_MAP_TYPE_*`
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// `BPF_F_RDONLY_PROG` makes program writes to values an error.
    pub map_flags: u32,
    pub frozen: bool,
    /// Printed in register states (`map_value(map=NAME,...)`).
    pub name: String,
    /// For array_of_maps / hash_of_maps: the inner map template (a lookup
    /// gives a map pointer to a map like it).
    pub inner: Option<Box<MapDesc>>,
    /// The one value of a frozen `BPF_F_RDONLY_PROG` array with one entry
    /// (`.rodata`): constant-offset loads from it become known constants, as
    /// in the kernel, so `const volatile` settings can bound loops and index.
    pub frozen_data: Option<std::sync::Arc<[u8]>>,
    /// The map was created with BTF for its value.
    pub has_btf: bool,
    /// Offset of the value's `struct bpf_spin_lock`, if it has one.
    pub spin_lock_off: Option<u32>,
    /// Offset of the value's `struct bpf_timer`, if it has one.
    pub timer_off: Option<u32>,
    /// The value's kptr fields (pointer members tagged `kptr`,
    /// `kptr_untrusted` or `percpu_kptr`, in nested structs and arrays too).
    pub kptrs: Vec<KptrField>,
    /// The map was created by a process without CAP_PERFMON (the kernel's
    /// `!map->bypass_spec_v1`): a tail call site that sees two maps is then
    /// refused, since its index cannot be masked against one map's size.
    pub created_unprivileged: bool,
}

/// A kptr field of a map value (the kernel's `btf_field` of type `BPF_KPTR_*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KptrField {
    /// Byte offset in the value.
    pub off: u32,
    /// It holds a reference (`kptr`, `percpu_kptr`): only `bpf_kptr_xchg`
    /// may store one.
    pub referenced: bool,
    /// The pointee struct's name (`bpf_cpumask`).
    pub pointee: String,
}

/// One `bpf_line_info` record, resolved to text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineRef {
    pub insn_idx: u32,
    pub file: String,
    pub line: String,
    pub line_num: u32,
    pub col: u32,
}

/// What `BPF_PROG_LOAD` tells the verifier besides the instructions.
#[derive(Clone, Debug)]
pub struct VerifierOpts {
    /// `BPF_PROG_TYPE_*`
    pub prog_type: u32,
    pub expected_attach_type: u32,
    /// CAP_BPF + CAP_PERFMON: bounded loops, pointer leaks, uninitialised
    /// stack reads, pointer comparisons.
    pub privileged: bool,
    /// 0: nothing; 1: the failing path and statistics; 2: every instruction.
    pub log_level: u32,
    pub line_info: Vec<LineRef>,
    /// `(insn_idx, name)` per function.
    pub func_info: Vec<(u32, String)>,
    /// The license is GPL-compatible (GPL-only helpers are allowed).
    pub gpl_compatible: bool,
    /// Log buffer size (`log_size`): the trace stops growing past it; the
    /// closing lines are always written.
    pub log_size: usize,
    /// Helpers the embedder registered (custom ones, or its own versions of
    /// kernel ones), with the prototypes their calls are checked against; any
    /// program type may call them.
    pub extra_helpers: Vec<(i32, helpers::Proto)>,
    /// Keep, per instruction, what each register held on the paths that
    /// reached it ([`Verified::insn_regs`]; debuggers show it).
    pub record_regs: bool,
    /// `BPF_PROG_LOAD`'s `prog_flags` (`BPF_F_STRICT_ALIGNMENT`, ...).
    pub prog_flags: u32,
    /// First instructions of the functions whose BTF return type is not an
    /// integer or enum (`void`): LD_ABS may not end them early there.
    pub func_non_scalar_return: Vec<u32>,
    /// Instructions processed before "BPF program is too large" (the kernel's
    /// BPF_COMPLEXITY_LIMIT_INSNS, 1,000,000); fuzzers lower it.
    pub complexity_limit: u64,
    /// The global functions among the program's subprograms (BTF linkage
    /// `BTF_FUNC_GLOBAL`): verified on their own, with arguments typed by
    /// their BTF prototype, as the kernel verifies them.
    pub global_funcs: Vec<GlobalFunc>,
    /// Sizes of the structs the program's BTF declares, by name: loads
    /// through kernel-object pointers kfuncs return are checked against
    /// them (the object's own copy of the kernel's layout).
    pub btf_structs: Vec<(String, u32)>,
    /// The context of a tracing or LSM program, typed by its attach target's
    /// BTF prototype (`None`: the program type's fixed context).
    pub btf_ctx: Option<std::sync::Arc<BtfCtx>>,
    /// The target kernel's types (its BTF), for every program: loads through
    /// a map pointer read the map type's kernel struct (`struct bpf_array`,
    /// ...) through them. `None`: those of `btf_ctx`, if any; without
    /// either, such loads are refused.
    pub kernel_types: Option<std::sync::Arc<dyn KernelTypes>>,
}

impl Default for VerifierOpts {
    fn default() -> Self {
        VerifierOpts {
            prog_type: BPF_PROG_TYPE_XDP,
            expected_attach_type: 0,
            privileged: true,
            log_level: 0,
            line_info: Vec::new(),
            func_info: Vec::new(),
            gpl_compatible: true,
            log_size: 16 << 20,
            extra_helpers: Vec::new(),
            record_regs: false,
            prog_flags: 0,
            func_non_scalar_return: Vec::new(),
            complexity_limit: 1_000_000,
            global_funcs: Vec::new(),
            btf_structs: Vec::new(),
            btf_ctx: None,
            kernel_types: None,
        }
    }
}

/// A global function: where it starts, its name and its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalFunc {
    pub insn_idx: u32,
    pub name: String,
    /// `Err`: why its prototype is not supported (calls of it are refused).
    pub args: Result<Vec<GlobalArg>, String>,
}

/// How a global function's argument is typed (`btf_prepare_func_args`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlobalArg {
    /// An integer or enum (`ARG_ANYTHING`).
    Scalar,
    /// The program's context (`arg:ctx` or the context's type).
    Ctx,
    /// `size` bytes of memory, or NULL unless tagged `arg:nonnull`.
    Mem { size: u32, nullable: bool },
    /// `arg:trusted`: a trusted pointer to the kernel object
    /// ([`kfuncs::Obj`] number `obj`), or NULL with `arg:nullable`.
    Trusted { obj: u8, nullable: bool },
}

/// The closing statistics line's numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Instructions processed over all paths.
    pub processed: u64,
    pub max_states_per_insn: u32,
    pub total_states: u32,
    pub peak_states: u32,
    pub mark_read: u32,
}

/// An accepted program.
#[derive(Clone, Debug)]
pub struct Verified {
    pub log: String,
    pub stats: Stats,
    /// Per slot: the load/store at this slot was proven in bounds on every
    /// path that reaches it, so the VM may skip its runtime check.
    pub safe_mem: Vec<bool>,
    /// Some load reads a map's kernel struct through the map pointer
    /// ([`VerifierOpts::kernel_types`]): the runtime lays those structs out.
    pub reads_map_structs: bool,
    /// Stack depth of each subprogram, in bytes (`stack depth A+B`).
    pub stack_depth: Vec<u32>,
    /// With [`VerifierOpts::record_regs`], per slot: for r0..r10, the distinct
    /// states (log text, e.g. `pkt(r=42)`) the register had before the
    /// instruction on the paths walked there, at most [`MAX_RECORDED`]; empty
    /// for an uninitialised register and for slots no path reached.
    pub insn_regs: Vec<[Vec<String>; 11]>,
    /// Per slot: some path reached this instruction. The others are dead
    /// code the kernel never checks (and replaces before running).
    pub visited: Vec<bool>,
}

/// Distinct states kept per register and instruction by `record_regs`.
pub const MAX_RECORDED: usize = 4;

/// A refused program.
#[derive(Clone, Debug, Error)]
#[error("{error}")]
pub struct Refused {
    pub log: String,
    /// The instruction the error is about, if any.
    pub insn: Option<usize>,
    #[source]
    pub error: VerifierError,
    pub stats: Stats,
}

/// Why a program was refused. Messages are the kernel's.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum VerifierError {
    /// The instruction stream itself is malformed (`unknown opcode 8d`).
    #[error("{reason}")]
    BadInsn { reason: String },
    /// check_cfg: control flow (`unreachable insn 3`, `back-edge from insn 4 to 2`).
    #[error("{reason}")]
    Cfg { reason: String },
    /// An access or operation is not provably safe (`R0 invalid mem access 'scalar'`).
    #[error("{reason}")]
    Unsafe { reason: String },
    /// A helper or function call is malformed or its arguments are wrong.
    #[error("{reason}")]
    Call { reason: String },
    /// A reference (ringbuf record) is leaked or misused.
    #[error("{reason}")]
    Reference { reason: String },
    /// A malformed request the kernel answers with EINVAL rather than EACCES
    /// (`invalid func unknown#9999`, `expected prog array map for tail call`).
    #[error("{reason}")]
    Invalid { reason: String },
    /// An operation the loader's capabilities do not allow (EPERM).
    #[error("{reason}")]
    Perm { reason: String },
    /// Complexity limits (`BPF program is too large. Processed 1000001 insn`).
    #[error("{reason}")]
    TooComplex { reason: String },
}

impl VerifierError {
    /// The errno the kernel returns for this error (EINVAL, EACCES or E2BIG).
    pub fn errno(&self) -> i32 {
        match self {
            VerifierError::BadInsn { .. }
            | VerifierError::Cfg { .. }
            | VerifierError::Reference { .. }
            | VerifierError::Invalid { .. } => 22,
            VerifierError::TooComplex { .. } => 7,
            VerifierError::Perm { .. } => 1,
            _ => 13,
        }
    }
    pub fn reason(&self) -> &str {
        match self {
            VerifierError::BadInsn { reason }
            | VerifierError::Cfg { reason }
            | VerifierError::Unsafe { reason }
            | VerifierError::Call { reason }
            | VerifierError::Reference { reason }
            | VerifierError::Invalid { reason }
            | VerifierError::Perm { reason }
            | VerifierError::TooComplex { reason } => reason,
        }
    }
}

/// Verifies `insns`. LD_IMM64 with `src_reg` BPF_PSEUDO_MAP_FD / _VALUE carry
/// map ids in `imm`, resolved through `maps`.
pub fn verify(
    insns: &[Insn],
    maps: &dyn Fn(u32) -> Option<MapDesc>,
    opts: &VerifierOpts,
) -> Result<Verified, Refused> {
    check::Verifier::new(insns, maps, opts).run()
}

#[cfg(test)]
mod tests;
