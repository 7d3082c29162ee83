//! The x86-64 JIT as a differential engine, in checked and unchecked mode (the
//! same memory and fuel as the interpreter engines).

use crate::{vm_helpers, Case, DiffEngine, Outcome, FUEL};
use bpfvm_vm::{JitOptions, LoadOptions, Region, RegionKind, RunOptions, VmProgram};

/// The JIT in checked mode (every access compared with the regions).
pub struct JitEngine;

/// The JIT without memory checks, as verified programs run.
pub struct JitUnchecked;

fn run_jit(case: &Case, checked: bool) -> Outcome {
    let prog = match VmProgram::new(&case.insns, &LoadOptions::new(vm_helpers())) {
        Ok(p) => p,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    let opts = if checked {
        JitOptions::checked()
    } else {
        // SAFETY: generated programs access only their stack frame and the memory
        // block at offsets the generator keeps in bounds (see gen.rs); the checked
        // engines run the same case and would report any violation as a mismatch.
        unsafe { JitOptions::unchecked() }
    };
    let jit = match prog.jit(&opts) {
        Ok(j) => j,
        Err(e) => return Outcome::Unsupported(e.to_string()),
    };
    let mut mem = case.mem.clone();
    let len = mem.len() as u64;
    let run = RunOptions::new()
        .args([mem.as_mut_ptr() as u64, len, 0, 0, 0])
        .region(Region::from_mut_slice(&mut mem, RegionKind::Mem))
        .fuel(FUEL);
    match jit.run(run) {
        Ok(r) => Outcome::Ok { r0: r.r0, mem },
        Err(e) => Outcome::Faulted(e.to_string()),
    }
}

impl DiffEngine for JitEngine {
    fn name(&self) -> &str {
        "jit-checked"
    }
    fn run(&self, case: &Case) -> Outcome {
        run_jit(case, true)
    }
}

impl DiffEngine for JitUnchecked {
    fn name(&self) -> &str {
        "jit-unchecked"
    }
    fn run(&self, case: &Case) -> Outcome {
        run_jit(case, false)
    }
}
