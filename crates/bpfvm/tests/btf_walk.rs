//! Loads through kernel struct pointers, member by member (the kernel's
//! `btf_struct_walk`): tests/fixtures/src/btf_walk.bpf.c, built into
//! btf_walk.o (the accepted program) and one object per refused program. A
//! table `{object, program, expected}` of what Linux 6.18 said (`bpftool prog
//! loadall`, offsets CO-RE relocated against its task_struct), checked
//! against bpfvm's load with the host's BTF as target, and against the host
//! kernel again where it can be asked.
//!
//! bpfvm accepted all four refused programs before its walk followed the
//! kernel's (it looked only at where a read starts, and never at the
//! license).

mod fixture_kernel;
use bpfvm::Runtime;
use fixture_kernel::{
    bpfvm_verdict_failures, host_verdict_failures, Expected, VerdictCase as Case,
};

const EACCES: i32 = 13;
const EINVAL: i32 = 22;

const CASES: &[Case] = &[
    Case {
        object: "btf_walk.o",
        program: "whole_members",
        expected: Expected::Accepted,
        ours: None,
    },
    Case {
        object: "btf_walk_partial_ptr.o",
        program: "partial_ptr",
        expected: Expected::Refused(
            EACCES,
            "cannot access ptr member group_leader with moff 1328 in struct task_struct with off 1328 size 4",
        ),
        ours: None,
    },
    Case {
        object: "btf_walk_member_end.o",
        program: "member_end",
        expected: Expected::Refused(
            EACCES,
            "access beyond the end of member pid (mend:1268) in struct task_struct with off 1264 size 8",
        ),
        ours: None,
    },
    Case {
        object: "btf_walk_hole.o",
        program: "hole",
        expected: Expected::Refused(
            EINVAL,
            "struct task_struct doesn't have field at offset 124",
        ),
        ours: None,
    },
    Case {
        object: "btf_walk_nongpl.o",
        program: "nongpl",
        expected: Expected::Refused(
            EINVAL,
            "Cannot access kernel 'struct task_struct' from non-GPL compatible program",
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
