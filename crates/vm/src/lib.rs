//! bpfvm-vm — internal dependency of bpfvm.
//!
//! The eBPF interpreter (the kernel's `___bpf_prog_run`, core.c) and the x86-64 JIT
//! ([`jit`], arch/x86/net; arm64 listings too). Data flows:
//! instruction slots ([`bpfvm_isa::Insn`]) are decoded once through the opcode table
//! by [`VmProgram::new`], which checks what the dispatch loop must be able to trust
//! (targets, r10, helper ids) and resolves jumps, calls and helpers into a compact
//! array. [`VmProgram::run`] executes it with a [`RunOptions`]: the arguments (r1 =
//! context), the memory regions the program may touch (checked mode), a
//! [`MemoryOracle`] for map-owned memory, fuel, and an environment for the
//! [`HelperTable`]'s helpers. Helpers reach the run through [`HelperCtx`]: memory
//! checks, new regions, callbacks (`bpf_loop`) and tail calls.
//!
//! Checked mode ([`VmProgram::run`]) compares every access with the regions; the
//! unsafe [`VmProgram::run_unchecked`] is for programs a verifier has accepted. At
//! load, a few frequent instruction pairs and runs of ALU instructions on one
//! register become superinstructions; semantics and error positions are unchanged.
//!
//! [`VmProgram::jit`] compiles the same decoded array to x86-64 ([`jit`]); a
//! [`JitProgram`] runs with the same [`RunOptions`] on the same machine state, so
//! helpers, tail calls, callbacks, memory checks and errors behave as under the
//! interpreter. [`VmProgram::aarch64_listing`] emits arm64 code for reading only.
//!
//! [`VmProgram::run_observed`] ([`step`]) runs the interpreter one instruction at
//! a time with an [`Observer`] called before each: debuggers, profiles, coverage.
//!
//! [`conformance`] runs the bpf_conformance suite on the interpreter or the JIT.

pub mod conformance;
pub mod error;
pub mod helpers;
pub mod interp;
pub mod jit;
pub mod memory;
pub mod program;
pub mod step;

pub use error::{Access, HelperError, LoadError, VmError};
pub use helpers::{
    Helper, HelperCtx, HelperEntry, HelperOutcome, HelperTable, Leaves, TAIL_CALL_LIMIT_ERR,
};
pub use interp::{RunOptions, RunResult};
pub use jit::{Aarch64Listing, Arm64Insn, JitError, JitOptions, JitProgram, NativeInsn};
pub use memory::{MemoryOracle, Region, RegionKind};
pub use program::{LoadOptions, VmProgram, FUNC_ADDR_BASE, MAX_PROG_SLOTS};
pub use step::{At, CallSite, Flow, Observer};
