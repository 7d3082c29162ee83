//! The JIT against the interpreter on generated programs: 20,000 programs, each on
//! the checked interpreter, the checked JIT and the unchecked JIT; any
//! disagreement is minimised and reported. Longer runs: the cargo-fuzz target
//! `diff_jit` (fuzz/).

use bpfvm_fuzzing::{
    compare, minimize, DiffEngine, Gen, GenConfig, InterpChecked, JitEngine, JitUnchecked, Outcome,
};

#[test]
fn jit_agrees_with_the_interpreter_on_random_programs() {
    let engines: [&dyn DiffEngine; 3] = [&InterpChecked, &JitEngine, &JitUnchecked];
    let n: u64 = std::env::var("BPFVM_DIFF_JIT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let (mut ok, mut fuel) = (0u64, 0u64);
    let mut mismatches = Vec::new();
    for seed in 0..n {
        let case = Gen::new(seed).case(&GenConfig::default());
        match compare(&engines, &case) {
            Ok(Outcome::Ok { .. }) => ok += 1,
            Ok(Outcome::Faulted(why)) if why.contains("fuel") => fuel += 1,
            Ok(other) => panic!("seed {seed}: generated program did not run: {other:?}"),
            Err(_) if mismatches.len() >= 3 => mismatches.push(String::new()),
            Err(_) => {
                let small = minimize(&engines, &case);
                let m = compare(&engines, &small)
                    .err()
                    .map_or_else(|| "(minimised case agrees)".to_string(), |m| m.to_string());
                mismatches.push(format!("seed {seed}: {m}"));
            }
        }
    }
    eprintln!("{n} programs: {ok} ran to completion, {fuel} ran out of fuel on every engine");
    assert!(
        mismatches.is_empty(),
        "{} mismatches; the first ones:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    assert!(
        ok > n / 2,
        "only {ok} of {n} generated programs ran to completion"
    );
}
