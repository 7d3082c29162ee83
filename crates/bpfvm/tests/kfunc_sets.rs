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
use fixture_kernel::{
    bpfvm_verdict_failures, host_verdict_failures, Expected, VerdictCase as Case,
};

const EACCES: i32 = 13;

const fn ok(program: &'static str) -> Case {
    Case {
        object: "kfunc_sets.o",
        program,
        expected: Expected::Accepted,
        ours: None,
    }
}

const fn no(object: &'static str, program: &'static str, line: &'static str) -> Case {
    Case {
        object,
        program,
        expected: Expected::Refused(EACCES, line),
        ours: None,
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
    let failures = bpfvm_verdict_failures(&Runtime::with_cpus(1), CASES);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn host_kernel_agrees() {
    let Some(failures) = host_verdict_failures(CASES) else {
        return;
    };
    eprintln!(
        "{} kfunc set cases, {} differ from the host kernel",
        CASES.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
