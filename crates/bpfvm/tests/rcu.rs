//! RCU read-side sections (`bpf_rcu_read_lock`/`bpf_rcu_read_unlock`), which
//! the verifier follows per path: tests/fixtures/src/rcu.bpf.c, built into
//! rcu.o (the accepted programs) and one object per refused program. A table
//! `{object, program, expected}` of what Linux 6.18 said (`bpftool prog
//! loadall`), checked against bpfvm's load; where the host kernel can be
//! asked (root, bpftool) it is asked again.
//!
//! Tags are not compared: the kfunc calls carry BTF ids, the host's vmlinux
//! ids in the kernel and bpfvm's own kfunc table's in bpfvm.

mod fixture_kernel;
use bpfvm::Runtime;
use fixture_kernel::{
    bpfvm_verdict_failures, host_verdict_failures, Expected, VerdictCase as Case,
};

const EINVAL: i32 = 22;
const EXIT_LOCKED: &str =
    "BPF_EXIT instruction in main prog cannot be used inside bpf_rcu_read_lock-ed region";
const UNMATCHED: &str = "unmatched rcu read unlock (kernel function bpf_rcu_read_unlock)";

const fn ok(program: &'static str) -> Case {
    Case {
        object: "rcu.o",
        program,
        expected: Expected::Accepted,
        ours: None,
    }
}

const fn no(object: &'static str, program: &'static str, line: &'static str) -> Case {
    Case {
        object,
        program,
        expected: Expected::Refused(EINVAL, line),
        ours: None,
    }
}

const CASES: &[Case] = &[
    ok("balanced"),
    ok("per_path"),
    ok("sleep_after"),
    ok("tail_after"),
    ok("static_unlocks"),
    ok("global_inside"),
    no(
        "rcu_nested.o",
        "nested",
        "nested rcu read lock (kernel function bpf_rcu_read_lock)",
    ),
    no("rcu_unmatched.o", "unmatched", UNMATCHED),
    no("rcu_missing.o", "missing", EXIT_LOCKED),
    no("rcu_one_path.o", "one_path", UNMATCHED),
    no(
        "rcu_sleep.o",
        "sleep_inside",
        "sleepable helper bpf_copy_from_user#148 in rcu_read_lock region",
    ),
    no(
        "rcu_tail.o",
        "tail_inside",
        "tail_call cannot be used inside bpf_rcu_read_lock-ed region",
    ),
    no(
        "rcu_ldabs.o",
        "ld_abs_inside",
        "BPF_LD_[ABS|IND] cannot be used inside bpf_rcu_read_lock-ed region",
    ),
    no("rcu_global_unlock.o", "global_unlocks", EXIT_LOCKED),
    no(
        "rcu_global_sleep.o",
        "global_sleep_inside",
        "global functions that may sleep are not allowed in non-sleepable context",
    ),
    no(
        "rcu_cb_sleep.o",
        "callback_sleep_inside",
        "sleepable helper bpf_copy_from_user#148 in rcu_read_lock region",
    ),
    Case {
        ours: Some(UNMATCHED),
        ..no("rcu_cb_unlock.o", "callback_unlocks", EXIT_LOCKED)
    },
];

#[test]
fn verdicts_match_the_kernel() {
    let failures = bpfvm_verdict_failures(&Runtime::with_cpus(1), CASES);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn host_kernel_agrees() {
    let Some(failures) = host_verdict_failures(CASES) else {
        return;
    };
    eprintln!(
        "{} RCU cases, {} differ from the host kernel",
        CASES.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
