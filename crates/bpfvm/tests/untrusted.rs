//! Untrusted kernel pointers and helpers: tests/fixtures/src/untrusted.bpf.c,
//! built into untrusted.o (the accepted program) and one object per refused
//! program. A table `{object, program, expected}` of what Linux 6.18 said
//! (`bpftool prog loadall`), checked against bpfvm's load, and against the
//! host kernel again where it can be asked.
//!
//! For the task read from a `kptr_untrusted` field the host says `R1
//! type=scalar` (it keeps no kptr record for that value) and bpfvm `R1
//! type=untrusted_ptr_`: both refuse the call, so the table matches the part
//! of the line they share.

mod fixture_kernel;
use bpfvm::Runtime;
use fixture_kernel::{
    bpfvm_verdict_failures, host_verdict_failures, Expected, VerdictCase as Case,
};

const EACCES: i32 = 13;
const WANTS: &str = "expected=ptr_, trusted_ptr_, rcu_ptr_";

const CASES: &[Case] = &[
    Case {
        object: "untrusted.o",
        program: "trusted_task",
        expected: Expected::Accepted,
        ours: None,
    },
    Case {
        object: "untrusted_field.o",
        program: "field_task",
        expected: Expected::Refused(EACCES, WANTS),
        ours: None,
    },
    Case {
        object: "untrusted_walk.o",
        program: "walked_task",
        expected: Expected::Refused(
            EACCES,
            "R1 type=untrusted_ptr_ expected=ptr_, trusted_ptr_, rcu_ptr_",
        ),
        ours: None,
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
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
