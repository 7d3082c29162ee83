//! Prints bpfvm's x86-64 code for one compute program, as the bench compiles it.
use bpfvm::vm::{JitOptions, LoadOptions, VmProgram};
use bpfvm_bench::programs::PROGRAMS;

fn main() {
    let name = std::env::args().nth(1).unwrap_or("spill/v2".into());
    let p = PROGRAMS
        .iter()
        .find(|p| p.name == name)
        .expect("no such program");
    let vm = VmProgram::new(&p.insns().unwrap(), &LoadOptions::default()).unwrap();
    // SAFETY: only compiled, never run.
    let jit = vm
        .jit(&unsafe { JitOptions::unchecked() }.metering(false))
        .unwrap();
    print!("{}", jit.listing());
}
