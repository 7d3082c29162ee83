//! Soundness fuzzing of the program-type rules (see `bpfvm_fuzzing::progtype`):
//! accepted programs run on the checked interpreter with only the helpers their
//! type is offered, and must return a value in the type's range.
//! Iterations: BPFVM_PROGTYPE_FUZZ_ITERS (default 2000 rounds of four programs), seed:
//! BPFVM_PROGTYPE_FUZZ_SEED.

use bpfvm_fuzzing::progtype::*;
use bpfvm_fuzzing::verifier::{ins, Rng};
use bpfvm_verifier::*;

#[test]
fn verified_programs_keep_their_types_rules() {
    let iters: u64 = std::env::var("BPFVM_PROGTYPE_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 200 } else { 2000 });
    let seed: u64 = std::env::var("BPFVM_PROGTYPE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut r = Rng(0x2545_f491_4f6c_dd1d ^ seed);
    let mut buf = Buf::new();
    let mut report = ProgTypeReport::default();
    for _ in 0..iters {
        progtype_round(&mut r, &mut buf, &mut report);
    }
    eprintln!(
        "program-type fuzz: {} programs tried, {} accepted and run, {} escapes",
        report.tried,
        report.accepted,
        report.escapes.len()
    );
    assert!(
        report.accepted > report.tried / 10,
        "too few programs accepted"
    );
    assert!(
        report.escapes.is_empty(),
        "{} escapes, first:\n{}",
        report.escapes.len(),
        report.escapes[0]
    );
}

/// The oracle sees the escapes it stands for, on programs the verifier refuses
/// today: a kprobe calling bpf_ktime_get_coarse_ns, a cgroup/sock program
/// returning 2, a getsockname hook returning 0.
#[test]
fn harness_catches_type_violations() {
    let mut r = Rng(7);
    let mut buf = Buf::new();
    let cases = [
        (
            BPF_PROG_TYPE_KPROBE,
            0,
            vec![ins(0x85, 0, 0, 0, 160), ins(0x95, 0, 0, 0, 0)],
        ),
        (
            BPF_PROG_TYPE_CGROUP_SOCK,
            2,
            vec![ins(0xb7, 0, 0, 0, 2), ins(0x95, 0, 0, 0, 0)],
        ),
        (
            BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
            BPF_CGROUP_INET4_GETSOCKNAME,
            vec![ins(0xb7, 0, 0, 0, 0), ins(0x95, 0, 0, 0, 0)],
        ),
    ];
    for (prog_type, attach, p) in cases {
        let t = Target {
            prog_type,
            attach,
            privileged: true,
        };
        let opts = VerifierOpts {
            prog_type,
            expected_attach_type: attach,
            ..Default::default()
        };
        assert!(verify(&p, &|_| None, &opts).is_err(), "{t:?} accepted");
        assert!(
            run_checked(&p, &t, &mut buf, &mut r).is_some(),
            "the oracle missed {t:?}"
        );
    }
}
