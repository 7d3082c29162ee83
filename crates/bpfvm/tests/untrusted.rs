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
use fixture_kernel::{bpfvm_load, kernel_load, Expected};

struct Case {
    object: &'static str,
    program: &'static str,
    expected: Expected,
}

const EACCES: i32 = 13;
const WANTS: &str = "expected=ptr_, trusted_ptr_, rcu_ptr_";

const CASES: &[Case] = &[
    Case {
        object: "untrusted.o",
        program: "trusted_task",
        expected: Expected::Accepted,
    },
    Case {
        object: "untrusted_field.o",
        program: "field_task",
        expected: Expected::Refused(EACCES, WANTS),
    },
    Case {
        object: "untrusted_walk.o",
        program: "walked_task",
        expected: Expected::Refused(
            EACCES,
            "R1 type=untrusted_ptr_ expected=ptr_, trusted_ptr_, rcu_ptr_",
        ),
    },
];

#[test]
fn verdicts_match_the_kernel() {
    let rt = Runtime::with_cpus(1);
    let mut failures = Vec::new();
    for c in CASES {
        let got = bpfvm_load(&rt, c.object, c.program).0;
        match (c.expected, &got) {
            (Expected::Accepted, Ok(())) => {}
            (Expected::Refused(errno, line), Err((e, text)))
                if *e == errno && text.contains(line) => {}
            _ => failures.push(format!(
                "{} {}: expected {:?}, bpfvm {got:?}",
                c.object, c.program, c.expected
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn host_kernel_agrees() {
    if let Some(why) = bpfvm_testsupport::bpftool_unavailable() {
        eprintln!("skipping the host kernel comparison: {why}");
        return;
    }
    let mut failures = Vec::new();
    for c in CASES {
        let kernel = kernel_load(c.object);
        let agrees = match (&kernel, c.expected) {
            (Ok(progs), Expected::Accepted) => progs.iter().any(|(n, _, _)| n == c.program),
            (Err((e, text)), Expected::Refused(errno, line)) => *e == errno && text.contains(line),
            _ => false,
        };
        if !agrees {
            failures.push(format!(
                "{} {}: recorded {:?}, the host kernel now: {kernel:?}",
                c.object, c.program, c.expected
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
