//! Which program types may call which kfunc (the kernel's kfunc sets and
//! the hooks they are registered for): tests/fixtures/src/kfunc_sets.bpf.c,
//! built into kfunc_sets.o (the accepted programs) and one object per refused
//! program. A table `{object, program, expected}` of what Linux 6.18 said
//! (`bpftool prog loadall`), checked against bpfvm's load, and against the
//! host kernel again where it can be asked.
//!
//! Linux 6.18 also lets sock_ops programs call the generic set; 6.12, whose
//! rules bpfvm follows, does not, so that case is not in the table.

mod fixture_kernel;
use bpfvm::Runtime;
use fixture_kernel::{bpfvm_load, kernel_load, Expected};

struct Case {
    object: &'static str,
    program: &'static str,
    expected: Expected,
}

const EACCES: i32 = 13;

const fn ok(program: &'static str) -> Case {
    Case {
        object: "kfunc_sets.o",
        program,
        expected: Expected::Accepted,
    }
}

const fn no(object: &'static str, program: &'static str, line: &'static str) -> Case {
    Case {
        object,
        program,
        expected: Expected::Refused(EACCES, line),
    }
}

const CASES: &[Case] = &[
    ok("tc_task"),
    ok("xdp_task"),
    ok("sock_create_task"),
    ok("sysctl_task"),
    ok("tp_task"),
    ok("tp_cpumask"),
    ok("syscall_cpumask"),
    ok("cgroup_skb_dynptr"),
    ok("lwt_dynptr"),
    no(
        "kfunc_sets_xdp_cpumask.o",
        "xdp_cpumask",
        "calling kernel function bpf_cpumask_create is not allowed",
    ),
    no(
        "kfunc_sets_tc_cpumask.o",
        "tc_cpumask",
        "calling kernel function bpf_cpumask_create is not allowed",
    ),
    no(
        "kfunc_sets_act_task.o",
        "act_task",
        "calling kernel function bpf_task_from_pid is not allowed",
    ),
    no(
        "kfunc_sets_flow_dynptr.o",
        "flow_dynptr",
        "calling kernel function bpf_dynptr_from_skb is not allowed",
    ),
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
    let mut objects: Vec<&str> = CASES.iter().map(|c| c.object).collect();
    objects.dedup();
    for object in objects {
        let kernel = kernel_load(object);
        for c in CASES.iter().filter(|c| c.object == object) {
            let agrees = match (&kernel, c.expected) {
                (Ok(progs), Expected::Accepted) => progs.iter().any(|(n, _, _)| n == c.program),
                (Err((e, text)), Expected::Refused(errno, line)) => {
                    *e == errno && text.contains(line)
                }
                _ => false,
            };
            if !agrees {
                failures.push(format!(
                    "{object} {}: recorded {:?}, the host kernel now: {kernel:?}",
                    c.program, c.expected
                ));
            }
        }
    }
    eprintln!(
        "{} kfunc set cases, {} differ from the host kernel",
        CASES.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
