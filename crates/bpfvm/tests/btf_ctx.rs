//! Programs whose context is typed by BTF (tp_btf, iter, fentry, fexit,
//! fmod_ret, lsm): tests/fixtures/src/btf_ctx.bpf.c, built into one object
//! per verdict. A table `{object, program, expected}` of the verdicts Linux
//! 6.18 gave (`bpftool prog loadall`, libbpf resolving the attach target in
//! /sys/kernel/btf/vmlinux), checked against bpfvm's load with the host's
//! BTF as target; where the host kernel can be asked (root, bpftool) it is
//! asked again, and the tags of the programs both accept must be equal.
//!
//! fentry, fexit, fmod_ret and lsm programs are refused with EPERM by the
//! host kernel this was captured on (before verification: "processed 0
//! insns"), so their expected verdicts come from the kernel's rules
//! (btf_ctx_access) rather than from a measurement; the live check accepts
//! EPERM from the kernel for them and says so.

mod fixture_kernel;
use bpfvm::{BpfError, LoadOpts, Object, Runtime};
use fixture_kernel::{bpfvm_load, fixture, kernel_load, without_map_ids, Expected};

struct Case {
    object: &'static str,
    program: &'static str,
    expected: Expected,
    /// The host kernel refuses this program type with EPERM.
    host_eperm: bool,
}

const EACCES: i32 = 13;
const ESRCH: i32 = 3;

const CASES: &[Case] = &[
    Case {
        object: "btf_ctx.o",
        program: "on_switch",
        expected: Expected::Accepted,
        host_eperm: false,
    },
    Case {
        object: "btf_ctx.o",
        program: "on_wakeup",
        expected: Expected::Accepted,
        host_eperm: false,
    },
    Case {
        object: "btf_ctx.o",
        program: "dump_task",
        expected: Expected::Accepted,
        host_eperm: false,
    },
    // bpf_skc_to_tcp_request_sock's result read through a pointer member
    // (inspektor-gadget's snapshot_socket did this; bpfvm read a scalar)
    Case {
        object: "btf_ctx.o",
        program: "dump_tcp_req",
        expected: Expected::Accepted,
        host_eperm: false,
    },
    Case {
        object: "btf_ctx_bad_arg.o",
        program: "bad_arg",
        expected: Expected::Refused(EACCES, "func 'sched_wakeup' doesn't have 2-th argument"),
        host_eperm: false,
    },
    Case {
        object: "btf_ctx_bad_size.o",
        program: "bad_size",
        expected: Expected::Refused(EACCES, "func 'sched_wakeup' size 4 must be 8"),
        host_eperm: false,
    },
    Case {
        object: "btf_ctx_beyond.o",
        program: "beyond",
        expected: Expected::Refused(
            EACCES,
            "access beyond struct task_struct at off 1048576 size 8",
        ),
        host_eperm: false,
    },
    Case {
        object: "btf_ctx_write.o",
        program: "write_task",
        expected: Expected::Refused(EACCES, "only read is supported"),
        host_eperm: false,
    },
    Case {
        object: "btf_ctx_no_target.o",
        program: "no_target",
        expected: Expected::Refused(
            ESRCH,
            "failed to find kernel BTF type ID of 'no_such_tracepoint_bpfvm'",
        ),
        host_eperm: false,
    },
    Case {
        object: "btf_ctx_fentry.o",
        program: "on_unlink",
        expected: Expected::Accepted,
        host_eperm: true,
    },
    Case {
        object: "btf_ctx_fentry.o",
        program: "on_unlink_ret",
        expected: Expected::Accepted,
        host_eperm: true,
    },
    Case {
        object: "btf_ctx_fentry.o",
        program: "modify_ret",
        expected: Expected::Accepted,
        host_eperm: true,
    },
    Case {
        object: "btf_ctx_fentry.o",
        program: "check_open",
        expected: Expected::Accepted,
        host_eperm: true,
    },
    Case {
        object: "btf_ctx_fexit_void.o",
        program: "fexit_void",
        expected: Expected::Refused(
            EACCES,
            "func 'bpf_fentry_test_sinfo' arg1 '' has type UNKNOWN. Only pointer access is allowed",
        ),
        host_eperm: true,
    },
];

fn vmlinux_reason() -> Option<String> {
    std::fs::read(bpfvm::HOST_VMLINUX)
        .err()
        .map(|e| format!("{}: {e}", bpfvm::HOST_VMLINUX))
}

#[test]
fn verdicts_match_the_kernel() {
    if let Some(why) = vmlinux_reason() {
        eprintln!("skipping: the attach targets are looked up in the host's BTF: {why}");
        return;
    }
    let rt = Runtime::with_cpus(1);
    let mut failures = Vec::new();
    for c in CASES {
        let (got, _) = bpfvm_load(&rt, c.object, c.program);
        match (c.expected, &got) {
            (Expected::Accepted, Ok(())) => {}
            (Expected::Refused(errno, line), Err((e, text)))
                if *e == errno && text.contains(line) => {}
            _ => failures.push(format!(
                "{} {}: expected {:?}, bpfvm {:?}",
                c.object, c.program, c.expected, got
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_nullable_iterator_element_must_be_checked() {
    // dump_task's `if (!task)` is what makes `task->pid` safe: without the
    // BTF context the verifier refused the first context read instead.
    if vmlinux_reason().is_some() {
        eprintln!("skipping: no host BTF");
        return;
    }
    let rt = Runtime::with_cpus(1);
    let c = &CASES[2];
    assert_eq!(bpfvm_load(&rt, c.object, c.program).0, Ok(()));
}

// ---- the host kernel ------------------------------------------------------

fn live_reason() -> Option<String> {
    if let Some(why) = bpfvm_testsupport::bpftool_unavailable() {
        return Some(why);
    }
    vmlinux_reason()
}

#[test]
fn host_kernel_agrees() {
    if let Some(why) = live_reason() {
        eprintln!("skipping the host kernel comparison: {why}");
        return;
    }
    let rt = Runtime::with_cpus(1);
    let mut failures = Vec::new();
    let (mut same, mut tags_equal, mut accepted, mut eperm) = (0, 0, 0, 0);
    let mut xlated_equal = 0;
    for c in CASES {
        let kernel = kernel_load(c.object);
        let (ours, tag) = bpfvm_load(&rt, c.object, c.program);
        match (&kernel, c.expected) {
            (Err((1, _)), _) if c.host_eperm => {
                eperm += 1;
                eprintln!(
                    "{} {}: the host kernel refuses this program type with EPERM; bpfvm {}",
                    c.object,
                    c.program,
                    if ours.is_ok() { "accepts" } else { "refuses" }
                );
                continue;
            }
            (Ok(tags), Expected::Accepted) => {
                accepted += 1;
                let k = tags.iter().find(|(n, _, _)| n == c.program);
                let ktag = k.map(|(_, t, _)| t);
                let btag = tag.as_ref().map(|(t, _)| t);
                if ktag.is_some() && ktag == btag {
                    tags_equal += 1;
                } else {
                    failures.push(format!(
                        "{} {}: tag {btag:?}, kernel {ktag:?}",
                        c.object, c.program
                    ));
                }
                let kx = k.map(|(_, _, x)| without_call_imms(&without_map_ids(x)));
                let bx = tag
                    .as_ref()
                    .map(|(_, x)| without_call_imms(&without_map_ids(x)));
                if kx == bx {
                    xlated_equal += 1;
                } else {
                    failures.push(format!(
                        "{} {}: xlated differs\n--- kernel\n{}\n--- bpfvm\n{}",
                        c.object,
                        c.program,
                        kx.unwrap_or_default(),
                        bx.unwrap_or_default()
                    ));
                }
            }
            (Err((e, text)), Expected::Refused(errno, line))
                if *e == errno && text.contains(line) => {}
            _ => {
                failures.push(format!(
                    "{} {}: the committed expectation {:?} is not what the kernel says now: {kernel:?}",
                    c.object, c.program, c.expected
                ));
                continue;
            }
        }
        if ours.is_ok() == kernel.is_ok() {
            same += 1;
        }
    }
    eprintln!(
        "verdicts equal to the kernel's: {same}/{}; tags equal {tags_equal}/{accepted}; xlated equal {xlated_equal}/{accepted}; {eperm} refused by the host with EPERM",
        CASES.len() - eperm
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_missing_target_is_esrch() {
    if vmlinux_reason().is_some() {
        eprintln!("skipping: no host BTF");
        return;
    }
    let rt = Runtime::with_cpus(1);
    let obj = Object::open(fixture("btf_ctx_no_target.o")).expect("object");
    let e = rt
        .load_object_with(&obj, None, &LoadOpts::default())
        .expect_err("no such tracepoint");
    assert!(matches!(e, BpfError::AttachTarget { .. }), "{e}");
    assert_eq!(e.errno(), ESRCH);
}

/// A helper call's number as `bpftool prog dump xlated` prints it: the
/// kernel's is the helper's address less `__bpf_call_base` (it depends on
/// the kernel image), bpfvm's the helper id; the name before it is compared.
fn without_call_imms(xlated: &str) -> String {
    xlated
        .lines()
        .map(|l| match (l.find(") call "), l.rfind('#')) {
            (Some(c), Some(h)) if h > c && l[h + 1..].bytes().all(|b| b.is_ascii_digit()) => {
                &l[..h + 1]
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}
