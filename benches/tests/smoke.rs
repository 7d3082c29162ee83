//! Smoke test: every program once on bpfvm's interpreter (checked mode, and the
//! runtime for packet programs), on bpfvm's JIT (compute programs, checked
//! mode) and natively, on small inputs; the results must agree. No timing.

use bpfvm_bench::engines::{
    bpfvm::{BpfvmInterp, BpfvmJit},
    native::Native,
};
use bpfvm_bench::programs::Kind;
use bpfvm_bench::{Engine, Scale, PROGRAMS};

#[test]
fn every_program_agrees_with_native() {
    for prog in PROGRAMS {
        let input = prog.input(Scale::Small);
        let interp = BpfvmInterp {
            checked: prog.kind == Kind::Compute,
        };
        let prepared = interp.prepare(&prog, &input);
        let mut r =
            prepared.unwrap_or_else(|s| panic!("{}: bpfvm cannot run it: {}", prog.name, s.reason));
        let (vm_r0, _) = r
            .run(1)
            .unwrap_or_else(|s| panic!("{}: bpfvm run fails: {}", prog.name, s.reason));
        let native = Native { novec: false };
        if prog.kind == Kind::Compute && cfg!(target_arch = "x86_64") {
            let mut j = BpfvmJit { checked: true }
                .prepare(&prog, &input)
                .unwrap_or_else(|s| {
                    panic!("{}: bpfvm's JIT cannot compile it: {}", prog.name, s.reason)
                });
            let (jit_r0, _) = j
                .run(1)
                .unwrap_or_else(|s| panic!("{}: JIT run fails: {}", prog.name, s.reason));
            assert_eq!(
                vm_r0, jit_r0,
                "{}: bpfvm's interpreter and JIT disagree",
                prog.name
            );
        }
        match native.prepare(&prog, &input) {
            Ok(mut n) => {
                let (native_r0, _) = n.run(1).expect("native runs");
                assert_eq!(vm_r0, native_r0, "{}: bpfvm and native disagree", prog.name);
            }
            // Without clang-19 there is nothing to compare with.
            Err(s) => eprintln!("{}: native skipped: {}", prog.name, s.reason),
        }
    }
}

#[test]
fn known_results() {
    // Facts about the inputs that do not depend on any engine.
    let prime = PROGRAMS
        .iter()
        .find(|p| p.name == "prime/v4")
        .expect("prime");
    let input = prime.input(Scale::Small);
    let mut r = BpfvmInterp { checked: true }
        .prepare(prime, &input)
        .expect("loads");
    assert_eq!(
        r.run(1).expect("runs").0,
        1229,
        "there are 1229 primes below 10000"
    );

    let eq = PROGRAMS
        .iter()
        .find(|p| p.name == "strcmp/v4")
        .expect("strcmp");
    let input = eq.input(Scale::Small);
    let half = input.data.len() / 2;
    let mut r = BpfvmInterp { checked: true }
        .prepare(eq, &input)
        .expect("loads");
    // Equal strings: the index of the terminating NUL (half - 1), times two.
    assert_eq!(r.run(1).expect("runs").0, 2 * (half as u64 - 1));

    let ne = PROGRAMS
        .iter()
        .find(|p| p.name == "strcmp_mismatch/v4")
        .expect("strcmp_mismatch");
    let input = ne.input(Scale::Small);
    let mut r = BpfvmInterp { checked: true }
        .prepare(ne, &input)
        .expect("loads");
    let at = (half * 27 / 100) as u64;
    // b has '~' there, above every lowercase letter: a's byte is the smaller.
    assert_eq!(r.run(1).expect("runs").0, 2 * at + 1);
}
