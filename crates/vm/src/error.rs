//! Why a program was refused at load ([`LoadError`]) or stopped while running
//! ([`VmError`]). Every variant names the instruction by its slot index, the index
//! `bpftool prog dump xlated` prints, so a message can be matched to a listing.

use bpfvm_isa::DecodeError;
use std::fmt;
use thiserror::Error;

/// A program refused by [`crate::VmProgram::new`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LoadError {
    #[error("program is empty")]
    Empty,
    #[error("program of {slots} instructions is too large (limit {limit})")]
    TooLarge { slots: usize, limit: usize },
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("insn {pc}: jump out of range from insn {pc} to {target}")]
    JumpOutOfRange { pc: usize, target: i64 },
    #[error("insn {pc}: jump to insn {target}, the middle of a BPF_LD_IMM64")]
    JumpIntoLdImm64 { pc: usize, target: usize },
    #[error("insn {pc}: call to insn {target} out of range")]
    CallOutOfRange { pc: usize, target: i64 },
    #[error("insn {pc}: call to insn {target}, the middle of a BPF_LD_IMM64")]
    CallIntoLdImm64 { pc: usize, target: usize },
    #[error("insn {pc}: BPF_PSEUDO_FUNC target insn {target} out of range")]
    FuncOutOfRange { pc: usize, target: i64 },
    #[error("insn {pc}: frame pointer is read only")]
    FramePointerWrite { pc: usize },
    #[error("insn {pc}: last insn is not an exit or jmp, execution can fall off the end")]
    FallOffEnd { pc: usize },
    #[error("insn {pc}: invalid func unknown#{id}: helper {id} is not in the helper table")]
    UnknownHelper { pc: usize, id: i64 },
    #[error("insn {pc}: kernel function calls (kfunc btf_id {id}) are not supported")]
    KfuncCall { pc: usize, id: i64 },
}

/// The kind of memory access that failed a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    /// An atomic read-modify-write (`BPF_ATOMIC`).
    Atomic,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Atomic => "atomic",
        })
    }
}

/// A run stopped by the interpreter (or by a helper).
#[derive(Debug, Error)]
pub enum VmError {
    /// A load, store or atomic outside the memory the program may touch. `what` uses
    /// the kernel verifier's words ("invalid access to packet", "invalid mem access",
    /// "invalid write to read-only context", ...), chosen from the region the base
    /// register points into.
    #[error("insn {pc}: {what}: {access} of {size} bytes at {addr:#x}")]
    MemoryViolation {
        pc: usize,
        addr: u64,
        size: usize,
        access: Access,
        what: String,
    },
    #[error("insn {pc}: misaligned atomic access of {size} bytes at {addr:#x}")]
    MisalignedAtomic { pc: usize, addr: u64, size: usize },
    #[error("insn {pc}: the call stack of {frames} frames is too deep")]
    CallStackTooDeep { pc: usize, frames: usize },
    #[error("insn {pc}: out of fuel after {executed} instructions")]
    OutOfFuel { pc: usize, executed: u64 },
    #[error("insn {pc}: callx to {target:#x}, which is not a helper id in the helper table")]
    BadCallx { pc: usize, target: u64 },
    #[error("insn {pc}: BPF_LD_ABS/BPF_LD_IND without a packet (no region of kind packet)")]
    NoPacket { pc: usize },
    #[error("callback target {target:#x} is not the start of a function of the program")]
    BadCallback { target: u64 },
    /// An observer ([`crate::step::Observer`]) ended the run before `pc` ran.
    #[error("insn {pc}: the run was stopped by its observer")]
    Stopped { pc: usize },
    /// A helper failed in a way that ends the program (a helper's ordinary failure is
    /// a negative return value in r0, not this).
    #[error("insn {pc}: helper {id} failed")]
    Helper {
        pc: usize,
        id: i64,
        #[source]
        source: HelperError,
    },
}

/// How a helper ends the program instead of returning a value.
#[derive(Debug, Error)]
pub enum HelperError {
    /// A pointer argument does not point to memory the program may pass.
    #[error("invalid {access} of {len} bytes at {addr:#x} passed to a helper")]
    InvalidMemory { addr: u64, len: u64, access: Access },
    /// An argument makes no sense to the helper.
    #[error("invalid argument: {reason}")]
    InvalidArgument { reason: String },
    /// The environment the runtime passed is not the type this helper needs.
    #[error("helper environment is not a {expected}")]
    WrongEnv { expected: &'static str },
    /// The verifier knows the helper's prototype, but the runtime has no
    /// implementation of it: programs calling it load, and a run that reaches
    /// the call stops here.
    #[error("{name} is verified but not implemented by bpfvm's runtime")]
    Unimplemented { name: &'static str },
    /// A callback (`bpf_loop`, `bpf_for_each_map_elem`) the helper ran failed.
    #[error("callback failed")]
    Callback(#[source] Box<VmError>),
    /// Anything else, from the runtime's own helpers.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl From<VmError> for HelperError {
    fn from(e: VmError) -> Self {
        HelperError::Callback(Box::new(e))
    }
}
