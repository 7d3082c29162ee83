//! bpfvm-fuzzing — internal dependency of bpfvm.
//!
//! Program generators and differential oracles, so that every fuzz target stays a
//! few lines. Data flows: a [`Gen`] (a small deterministic PRNG fed by a seed or by
//! the fuzzer's bytes) produces a [`Case`] — a valid program plus its input memory —
//! from the opcode table; each [`DiffEngine`] runs it and reports an [`Outcome`];
//! [`compare`] runs a case on several engines and returns the first disagreement.
//! Every run is bounded by fuel, so generated loops cannot hang a fuzzer.
//!
//! Engines here: the interpreter in checked mode and in unchecked mode (the mode
//! verified programs run in — generated programs only touch their stack and their
//! memory block, so it is safe for them), the x86-64 JIT, and the host kernel
//! (`BPF_PROG_TYPE_SYSCALL` programs through BPF_PROG_TEST_RUN) where it is present.
//!
//! [`verifier`] holds the verifier's soundness oracle: generated XDP programs
//! the verifier accepts must run in the checked interpreter without a memory
//! violation (the `verify_sound` fuzz target and the soundness test use it).
//! [`progtype`] does the same for what depends on the program type: return
//! values, the helpers a type is offered, its context.
//! [`patterns`] draws the shapes of past verifier escapes that need maps,
//! helpers, subprograms and callbacks, labelled with the kernel's verdict, and
//! runs accepted ones through bpfvm's runtime (and, as root, compares with the
//! host kernel's verifier).

mod gen;
mod jit;
mod kernel;
pub mod patterns;
pub mod progtype;
pub mod verifier;

pub use gen::{Case, Gen, GenConfig};
pub use jit::{JitEngine, JitUnchecked};
pub use kernel::{KernelEngine, KernelVerifier};

use bpfvm_isa::Insn;
use bpfvm_vm::{HelperTable, LoadOptions, Region, RegionKind, RunOptions, VmProgram};
use std::sync::Arc;

/// How a run ended, in terms every engine can report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// r0 and the memory block afterwards.
    Ok { r0: u64, mem: Vec<u8> },
    /// Refused before running (decode, structural checks, a verifier).
    Refused(String),
    /// Stopped while running (memory violation, call depth, fuel).
    Faulted(String),
    /// The engine cannot run this kind of program (e.g. the kernel and callx).
    Unsupported(String),
}

/// An engine that runs a program on a memory block (r1 = pointer, r2 = length).
pub trait DiffEngine {
    fn name(&self) -> &str;
    fn run(&self, case: &Case) -> Outcome;
    /// Bits of r0 the engine reports (the kernel's test run gives 32).
    fn r0_bits(&self) -> u32 {
        64
    }
}

/// Fuel for one generated run: generated loops are short, so this is generous.
pub const FUEL: u64 = 100_000;

fn vm_helpers() -> Arc<HelperTable> {
    // No helpers: generated programs are pure computation over stack and memory.
    Arc::new(HelperTable::new())
}

/// The interpreter, checked (every access compared with the regions).
pub struct InterpChecked;

/// The interpreter without memory checks, as verified programs run.
pub struct InterpUnchecked;

fn run_vm(case: &Case, checked: bool) -> Outcome {
    let prog = match VmProgram::new(&case.insns, &LoadOptions::new(vm_helpers())) {
        Ok(p) => p,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    let mut mem = case.mem.clone();
    let len = mem.len() as u64;
    let opts = RunOptions::new()
        .args([mem.as_mut_ptr() as u64, len, 0, 0, 0])
        .region(Region::from_mut_slice(&mut mem, RegionKind::Mem))
        .fuel(FUEL);
    let r = if checked {
        prog.run(opts)
    } else {
        // SAFETY: generated programs access only their stack frame and the memory
        // block at offsets the generator keeps in bounds (see gen.rs); the checked
        // engine runs the same case and would report any violation as a mismatch.
        unsafe { prog.run_unchecked(opts) }
    };
    match r {
        Ok(r) => Outcome::Ok { r0: r.r0, mem },
        Err(e) => Outcome::Faulted(e.to_string()),
    }
}

impl DiffEngine for InterpChecked {
    fn name(&self) -> &str {
        "interp-checked"
    }
    fn run(&self, case: &Case) -> Outcome {
        run_vm(case, true)
    }
}

impl DiffEngine for InterpUnchecked {
    fn name(&self) -> &str {
        "interp-unchecked"
    }
    fn run(&self, case: &Case) -> Outcome {
        run_vm(case, false)
    }
}

/// Two engines disagreed on a case.
#[derive(Debug, Clone)]
pub struct Mismatch {
    pub case: Case,
    pub a: (String, Outcome),
    pub b: (String, Outcome),
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} and {} disagree", self.a.0, self.b.0)?;
        writeln!(f, "  {}: {:?}", self.a.0, self.a.1)?;
        writeln!(f, "  {}: {:?}", self.b.0, self.b.1)?;
        write!(
            f,
            "program:\n{}",
            bpfvm_isa::asm::disassemble_conformance(&self.case.insns)
        )
    }
}

/// Whether two outcomes agree. Faults agree with faults whatever the message (the
/// engines word them differently); an engine that cannot run a case agrees with all.
pub fn agree(a: &Outcome, b: &Outcome) -> bool {
    agree_bits(a, b, 64)
}

fn agree_bits(a: &Outcome, b: &Outcome, bits: u32) -> bool {
    let mask = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    match (a, b) {
        (Outcome::Ok { r0: ra, mem: ma }, Outcome::Ok { r0: rb, mem: mb }) => {
            ra & mask == rb & mask && ma == mb
        }
        (Outcome::Unsupported(_), _) | (_, Outcome::Unsupported(_)) => true,
        (Outcome::Faulted(_), Outcome::Faulted(_)) => true,
        (Outcome::Refused(_), Outcome::Refused(_)) => true,
        _ => a == b,
    }
}

/// Runs `case` on every engine; the first engine is the reference.
pub fn compare(engines: &[&dyn DiffEngine], case: &Case) -> Result<Outcome, Box<Mismatch>> {
    let bits = engines.iter().map(|e| e.r0_bits()).min().unwrap_or(64);
    let mut results = engines.iter().map(|e| (e.name().to_string(), e.run(case)));
    let Some(first) = results.next() else {
        return Ok(Outcome::Unsupported("no engines".into()));
    };
    for other in results {
        if !agree_bits(&first.1, &other.1, bits) {
            return Err(Box::new(Mismatch {
                case: case.clone(),
                a: first,
                b: other,
            }));
        }
    }
    Ok(first.1)
}

/// Convenience for fuzz targets: a case from raw fuzzer bytes.
pub fn case_from_bytes(data: &[u8]) -> Case {
    Gen::from_bytes(data).case(&GenConfig::default())
}

/// Re-exported so callers need not depend on the ISA crate for printing.
pub fn program_text(insns: &[Insn]) -> String {
    bpfvm_isa::asm::disassemble_conformance(insns)
}

/// Shrinks a mismatching case: replaces instructions by `ja +0` (a no-op that keeps
/// every jump offset valid) and zeroes memory bytes while the engines still disagree.
pub fn minimize(engines: &[&dyn DiffEngine], case: &Case) -> Case {
    let nop = bpfvm_isa::Insn::new(0x05, 0, 0, 0, 0);
    let mut best = case.clone();
    let still_fails = |c: &Case| compare(engines, c).is_err();
    let mut changed = true;
    while changed {
        changed = false;
        let mut pc = 0;
        while pc + 1 < best.insns.len() {
            let slots = bpfvm_isa::decode_at(&best.insns, pc).map_or(1, |d| d.slots());
            if best.insns[pc] != nop {
                let mut trial = best.clone();
                for s in 0..slots {
                    trial.insns[pc + s] = nop;
                }
                if still_fails(&trial) {
                    best = trial;
                    changed = true;
                }
            }
            pc += slots;
        }
    }
    best
}
