//! The escape patterns (see `bpfvm_fuzzing::patterns`): variants the kernel's
//! rules refuse must be refused, accepted ones must run without a fault.
//! Iterations: PATTERN_FUZZ_ITERS (default 3000), seed: PATTERN_FUZZ_SEED.
//! With BPFVM_PATTERN_FUZZ_KERNEL set (and root), every variant is also loaded in
//! the host kernel: bpfvm accepting what it refuses is an escape, and the
//! report lists the kernel's disagreements with the labels and bpfvm's false
//! refusals.

use bpfvm_fuzzing::patterns::*;
use bpfvm_fuzzing::verifier::Rng;

fn env_u64(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(d)
}

#[test]
fn escape_patterns_are_refused_or_run_safely() {
    let iters = env_u64(
        "PATTERN_FUZZ_ITERS",
        if cfg!(debug_assertions) { 300 } else { 3000 },
    );
    let mut r = Rng(0x2545_f491_4f6c_dd1d ^ env_u64("PATTERN_FUZZ_SEED", 1));
    let w = World::new().expect("maps");
    let k = match std::env::var_os("BPFVM_PATTERN_FUZZ_KERNEL") {
        Some(_) => match KernelWorld::new() {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!("no kernel comparison: {e}");
                None
            }
        },
        None => None,
    };
    let mut rep = PatternReport::default();
    for _ in 0..iters {
        round(&mut r, &w, k.as_ref(), &mut rep);
    }
    eprintln!(
        "patterns: {} variants, {} accepted ({} run), {} escapes{}",
        rep.tried,
        rep.accepted,
        rep.run,
        rep.escapes.len(),
        if k.is_some() {
            format!(
                ", kernel: {} label disagreements, {} false refusals",
                rep.label_errors.len(),
                rep.false_refusals.len()
            )
        } else {
            String::new()
        }
    );
    for (p, (t, a, m)) in &rep.per_pattern {
        eprintln!("  {p:14} tried {t:7} accepted {a:7} labelled refuse {m:7}");
    }
    let mut fr = rep.false_refusals.clone();
    fr.sort();
    fr.dedup();
    for f in fr.iter().take(20) {
        eprintln!("false refusal: {f}");
    }
    let mut le: Vec<&str> = rep
        .label_errors
        .iter()
        .filter_map(|l| l.lines().next())
        .collect();
    le.sort();
    le.dedup();
    for l in le.iter().take(30) {
        eprintln!("label: {l}");
    }
    let mut es: Vec<&str> = rep
        .escapes
        .iter()
        .filter_map(|l| l.lines().next())
        .collect();
    es.sort();
    es.dedup();
    for l in es.iter().take(30) {
        eprintln!("escape: {l}");
    }
    assert!(
        rep.label_errors.is_empty(),
        "{} label errors, first:\n{}",
        rep.label_errors.len(),
        rep.label_errors[0]
    );
    assert!(
        rep.escapes.is_empty(),
        "{} escapes, first:\n{}",
        rep.escapes.len(),
        rep.escapes[0]
    );
    // Every pattern both accepts and refuses something.
    for (p, (t, a, m)) in &rep.per_pattern {
        assert!(*a > 0 && *m > 0 && *t > *a, "pattern {p} is one-sided");
    }
}
