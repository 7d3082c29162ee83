//! A bounded differential run, as part of the test suite: random programs on the
//! checked and unchecked interpreter, and on the host kernel when it is present.
//! Longer runs: the cargo-fuzz target `diff_engines` (fuzz/).

use bpfvm_fuzzing::{
    compare, DiffEngine, Gen, GenConfig, InterpChecked, InterpUnchecked, KernelEngine, Outcome,
};

#[test]
fn interpreter_modes_agree_on_random_programs() {
    let engines: [&dyn DiffEngine; 2] = [&InterpChecked, &InterpUnchecked];
    let mut ok = 0;
    for seed in 0..3000u64 {
        let case = Gen::new(seed).case(&GenConfig::default());
        match compare(&engines, &case) {
            Ok(Outcome::Ok { .. }) => ok += 1,
            Ok(Outcome::Faulted(why)) if why.contains("fuel") => {}
            Ok(other) => panic!("seed {seed}: generated program did not run: {other:?}"),
            Err(m) => panic!("seed {seed}: {m}"),
        }
    }
    // The rest ran out of fuel: a forward jump into a counted loop's body skips the
    // counter's initialisation, and the loop then runs from a random count.
    assert!(
        ok > 2000,
        "only {ok} of 3000 generated programs ran to completion"
    );
}

#[test]
fn interpreter_agrees_with_the_host_kernel() {
    let kernel = match KernelEngine::probe() {
        Ok(k) => k,
        Err(why) => {
            eprintln!("skipping: the host kernel does not run BPF programs here ({why})");
            return;
        }
    };
    let engines: [&dyn DiffEngine; 2] = [&InterpChecked, &kernel];
    let (mut compared, mut refused) = (0, 0);
    // Short loop-free programs: the kernel's verifier explores every path, so long
    // branchy programs take it seconds each (and it refuses many of them).
    let cfg = GenConfig {
        body_len: 16,
        loops: false,
        kernel_friendly: true,
        ..GenConfig::default()
    };
    for seed in 0..300u64 {
        let case = Gen::new(seed).case(&cfg);
        if let Outcome::Unsupported(why) = kernel.run(&case) {
            if refused < 3 {
                eprintln!("seed {seed}: {why}");
            }
            refused += 1;
            continue;
        }
        if let Err(m) = compare(&engines, &case) {
            let small = bpfvm_fuzzing::minimize(&engines, &case);
            let m2 = compare(&engines, &small)
                .err()
                .map(|m| m.to_string())
                .unwrap_or_default();
            panic!("seed {seed}: {m}\n\nminimized: {m2}");
        }
        compared += 1;
    }
    eprintln!("kernel comparison: {compared} programs compared, {refused} refused by the kernel's verifier");
    assert!(
        compared > 50,
        "only {compared} programs accepted by the kernel"
    );
}
