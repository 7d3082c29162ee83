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

use bpfvm::{BpfError, LoadOpts, Object, Runtime};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/obj")
        .join(name)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expected {
    Accepted,
    /// errno and a line the verifier log (or libbpf) has.
    Refused(i32, &'static str),
}

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

/// A verdict: accepted, or refused with errno and the message and log.
type Verdict = Result<(), (i32, String)>;

/// bpfvm's verdict, and the program's tag and xlated listing when accepted.
fn bpfvm_load(rt: &Runtime, c: &Case) -> (Verdict, Option<(String, String)>) {
    let obj = Object::open(fixture(c.object)).unwrap_or_else(|e| panic!("{}: {e}", c.object));
    let opts = LoadOpts {
        programs: Some(vec![c.program.to_string()]),
        log_level: 1,
        ..Default::default()
    };
    match rt.load_object_with(&obj, None, &opts) {
        Ok(l) => {
            let tag = l.prog(c.program).map(|p| {
                (
                    bpfvm::tag::tag_hex(&p.obj().tag),
                    bpfvm::xlated::dump_xlated(p.obj(), &Default::default()),
                )
            });
            (Ok(()), tag)
        }
        Err(e) => {
            let mut text = e.to_string();
            if let Some(log) = e.verifier_log() {
                text.push('\n');
                text.push_str(log);
            }
            (Err((e.errno(), text)), None)
        }
    }
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
        let (got, _) = bpfvm_load(&rt, c);
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
    assert_eq!(bpfvm_load(&rt, c).0, Ok(()));
}

// ---- the host kernel ------------------------------------------------------

fn live_reason() -> Option<String> {
    if let Some(why) = bpfvm_testsupport::bpftool_unavailable() {
        return Some(why);
    }
    vmlinux_reason()
}

/// Map ids differ between two loads.
fn without_map_ids(xlated: &str) -> String {
    let mut out = String::new();
    let mut rest = xlated;
    while let Some(i) = rest.find("map[id:") {
        out.push_str(&rest[..i + 7]);
        rest = rest[i + 7..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// The kernel's verdict on a whole object (every program of these objects
/// shares one): Ok((program, tag, xlated)...) or Err((errno, libbpf's output)).
#[allow(clippy::type_complexity)]
fn kernel_load(object: &str) -> Result<Vec<(String, String, String)>, (i32, String)> {
    let pin = PathBuf::from(format!(
        "/sys/fs/bpf/bpfvm_btfctx_{}_{}",
        std::process::id(),
        object.trim_end_matches(".o")
    ));
    let out = Command::new("bpftool")
        .args(["prog", "loadall"])
        .arg(fixture(object))
        .arg(&pin)
        .output()
        .expect("run bpftool");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&pin);
        let errno = text
            .lines()
            .find_map(|l| {
                let l = l.trim_end();
                l.contains("failed to load: -")
                    .then(|| l.rsplit('-').next()?.parse::<i32>().ok())
                    .flatten()
            })
            .unwrap_or(0);
        return Err((errno, text));
    }
    let mut tags = Vec::new();
    for e in std::fs::read_dir(&pin).expect("pins").flatten() {
        let show = Command::new("bpftool")
            .args(["prog", "show", "pinned"])
            .arg(e.path())
            .arg("-j")
            .output()
            .expect("bpftool prog show");
        let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap_or_default();
        let xlated = Command::new("bpftool")
            .args(["prog", "dump", "xlated", "pinned"])
            .arg(e.path())
            .output()
            .expect("bpftool prog dump xlated");
        tags.push((
            e.file_name().to_string_lossy().into_owned(),
            v["tag"].as_str().unwrap_or_default().to_string(),
            String::from_utf8_lossy(&xlated.stdout).into_owned(),
        ));
        let _ = std::fs::remove_file(e.path());
    }
    let _ = std::fs::remove_dir(&pin);
    Ok(tags)
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
        let (ours, tag) = bpfvm_load(&rt, c);
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
                let kx = k.map(|(_, _, x)| without_map_ids(x));
                let bx = tag.as_ref().map(|(_, x)| without_map_ids(x));
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
