//! Soundness fuzzing of the verifier (see `bpfvm_fuzzing::verifier`): whatever
//! `verify` accepts runs on the checked interpreter; a memory violation is a
//! verifier bug. Iterations: BPFVM_VERIFIER_FUZZ_ITERS (default 1500 rounds of sixteen
//! programs), seed: BPFVM_VERIFIER_FUZZ_SEED, refusal reasons: BPFVM_VERIFIER_FUZZ_REASONS.

use bpfvm_fuzzing::verifier::*;
use bpfvm_isa::Insn;
use bpfvm_verifier::*;

#[test]
fn verified_programs_do_not_fault() {
    let iters: u64 = std::env::var("BPFVM_VERIFIER_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 150 } else { 1500 });
    let seed: u64 = std::env::var("BPFVM_VERIFIER_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mem = Mem::new();
    let mut r = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
    let mut report = SoundnessReport::default();
    for _ in 0..iters {
        soundness_round(&mut r, &mem, &mut report);
    }
    eprintln!(
        "soundness fuzz: {} programs tried, {} accepted and run, {} escapes",
        report.tried,
        report.accepted,
        report.escapes.len()
    );
    if std::env::var("BPFVM_VERIFIER_FUZZ_REASONS").is_ok() {
        let mut v: Vec<_> = report.reasons.iter().collect();
        v.sort_by_key(|x| std::cmp::Reverse(*x.1));
        for (k, n) in v.iter().take(25) {
            eprintln!("{n:6} {k}");
        }
    }
    assert!(
        report.escapes.is_empty(),
        "{} escapes, first:\n{}",
        report.escapes.len(),
        report.escapes[0]
    );
}

/// The harness itself: an unchecked packet read (which `verify` refuses) must
/// be reported by the checked interpreter, or the fuzz test proves nothing.
#[test]
fn harness_catches_unverified_violation() {
    let p = vec![
        ins(0x61, 2, 1, 0, 0),  // r2 = data
        ins(0x71, 0, 2, 12, 0), // r0 = *(u8 *)(r2 + 12)
        ins(0x95, 0, 0, 0, 0),
    ];
    let maps: Vec<MapDesc> = Vec::new();
    let v = verify(
        &p,
        &|id| maps.iter().find(|m| m.id == id).cloned(),
        &VerifierOpts::default(),
    );
    assert!(v.is_err());
    let mem = Mem::new();
    let mut r = Rng(3);
    let mut seen = false;
    for _ in 0..8 {
        seen |= run_checked(&p, &mem, &mut r).is_some();
    }
    assert!(
        seen,
        "the checked interpreter never reported the out-of-bounds read"
    );
}

/// Arbitrary slots (valid opcodes with random fields, and random bytes) must
/// give a verdict, never a panic.
#[test]
fn random_slots_never_panic() {
    let iters = if cfg!(debug_assertions) { 3000 } else { 30000 };
    let codes: Vec<u8> = bpfvm_isa::OPS.iter().map(|o| o.code).collect();
    let maps = [global_map()];
    let lookup = |id: u32| maps.iter().find(|m| m.id == id).cloned();
    let mut r = Rng(0x51);
    let mut accepted = 0;
    for i in 0..iters {
        let n = 1 + r.below(12) as usize;
        let mut p: Vec<Insn> = (0..n)
            .map(|_| {
                let code = if r.below(8) == 0 {
                    r.next_u64() as u8
                } else {
                    r.pick(&codes)
                };
                ins(
                    code,
                    r.below(11) as u8,
                    {
                        let lim = if r.below(4) == 0 { 16 } else { 11 };
                        r.below(lim) as u8
                    },
                    r.pick(&[-3i16, -1, 0, 1, 2, 4, 8, -8]),
                    r.pick(IMMS),
                )
            })
            .collect();
        p.push(ins(0x95, 0, 0, 0, 0));
        let prog_type = [
            BPF_PROG_TYPE_XDP,
            BPF_PROG_TYPE_SOCKET_FILTER,
            BPF_PROG_TYPE_RAW_TRACEPOINT,
        ][i % 3];
        let opts = VerifierOpts {
            prog_type,
            privileged: i % 5 != 0,
            log_level: (i % 3) as u32,
            ..Default::default()
        };
        if verify(&p, &lookup, &opts).is_ok() {
            accepted += 1;
        }
    }
    eprintln!("random slots: {iters} programs, {accepted} accepted, no panics");
}

/// The kernel-verdict oracle: generated programs (with the patterns of the
/// escapes found against the kernel's selftests: scalar minus pointer, stack
/// pointer subtraction, partial fills and spills of pointers, one load on two
/// kinds of pointer, unaligned atomics, pointers compared with NULL) that bpfvm
/// accepts must load in the host kernel. Needs root and a BPF-enabled kernel
/// (skips otherwise). Rounds: BPFVM_VERIFIER_KERNEL_ITERS (default 500).
#[test]
fn accepted_programs_load_in_the_host_kernel() {
    let kernel = match bpfvm_fuzzing::KernelVerifier::new(global_map().value_size) {
        Ok(k) => k,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let iters: u64 = std::env::var("BPFVM_VERIFIER_KERNEL_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let seed: u64 = std::env::var("BPFVM_VERIFIER_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut r = Rng(0x2545_f491_4f6c_dd1d ^ seed);
    let mut report = VerdictReport::default();
    for _ in 0..iters {
        verdict_round(&mut r, &kernel, &mut report);
    }
    eprintln!(
        "kernel verdicts: {} programs, {} accepted by bpfvm, {} of them refused by the kernel, {} refused by bpfvm only, {} too complex for the fuzzing budget (not sent)",
        report.tried,
        report.accepted,
        report.escapes.len(),
        report.false_refusals,
        report.too_complex
    );
    if std::env::var("BPFVM_VERIFIER_FUZZ_REASONS").is_ok() {
        let mut kinds: std::collections::HashMap<String, u32> = Default::default();
        for e in &report.escapes {
            let first = e.lines().next().unwrap_or("");
            let key: String = first.chars().filter(|c| !c.is_ascii_digit()).collect();
            *kinds.entry(key).or_default() += 1;
        }
        let mut v: Vec<_> = kinds.into_iter().collect();
        v.sort_by_key(|x| std::cmp::Reverse(x.1));
        for (k, n) in v.iter().take(25) {
            eprintln!("{n:6} {k}");
        }
    }
    assert!(
        report.escapes.is_empty(),
        "{} escapes, first:\n{}",
        report.escapes.len(),
        report.escapes[0]
    );
}
