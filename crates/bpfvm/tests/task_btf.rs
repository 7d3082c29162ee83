//! The current task at run time: tests/fixtures/src/task_btf.bpf.c (built
//! into obj/task_btf.o), a syscall and a raw_tp program that read the
//! task's `pid`, `tgid` and `comm` through `bpf_get_current_task_btf` (CO-RE,
//! relocated against the target kernel's `task_struct`) and through
//! `bpf_get_current_task` with `bpf_probe_read_kernel`, and check them against
//! `bpf_get_current_pid_tgid` and `bpf_get_current_comm`. Each returns one
//! bit per check that holds: 63 when all do, which is what Linux 6.18 returned
//! (`BPF_PROG_TEST_RUN` with an 8-byte `ctx_in`; bpftool's `prog run` asks
//! for a repeat these types refuse). Checked on the interpreter and the JIT,
//! against the host's `task_struct` layout, against the stand-in kernel's
//! (tests/fixtures/obj/core_target.o, whose `task_struct` puts the fields
//! elsewhere), and in the host kernel again where it can be asked.

mod fixture_kernel;
use bpfvm::{BpfCmd, BpfReply, LoadOpts, Object, Runtime, TargetBtf, TestRunAttr};
use fixture_kernel::fixture;
use std::process::Command;

const PROGS: &[&str] = &["task_syscall", "task_raw_tp"];
/// Every check holds.
const ALL: u32 = 63;

fn run(rt: &Runtime, l: &bpfvm::LoadedObject, name: &str) -> u32 {
    let id = l.prog(name).expect(name).id();
    match rt.bpf(BpfCmd::ProgTestRun(TestRunAttr {
        prog_id: id,
        ctx_in: Some(vec![0; 8]),
        ..Default::default()
    })) {
        Ok(BpfReply::TestRun(r)) => r.retval,
        other => panic!("{name}: {other:?}"),
    }
}

fn check(target: Option<TargetBtf>) {
    let obj = Object::open(fixture("task_btf.o")).expect("task_btf.o");
    for jit in [false, true] {
        let rt = Runtime::with_cpus(1);
        rt.set_jit(jit);
        let opts = LoadOpts {
            target_btf: target.clone(),
            ..Default::default()
        };
        let l = rt.load_object_with(&obj, None, &opts).expect("loads");
        for name in PROGS {
            // Twice: the second run makes its stand-in task afresh.
            for _ in 0..2 {
                assert_eq!(run(&rt, &l, name), ALL, "{name}, jit {jit}, {target:?}");
            }
        }
    }
}

#[test]
fn task_fields_match_the_ids_helpers_give() {
    check(None);
}

/// A target whose `task_struct` is not the host's: the fields follow the
/// target the program was relocated against.
#[test]
fn task_fields_follow_the_core_target() {
    let target = Object::open(fixture("core_target.o"))
        .expect("core_target.o")
        .btf
        .expect("core_target.o has BTF");
    check(Some(TargetBtf::Btf(std::sync::Arc::new(target))));
}

/// The same programs in the host kernel, when it can be asked.
#[test]
fn live_kernel_agrees() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0
        || !Command::new("bpftool")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        eprintln!("skipping: asking the host kernel needs root and bpftool");
        return;
    }
    let dir = format!("/sys/fs/bpf/bpfvm_task_btf_{}", std::process::id());
    let load = Command::new("bpftool")
        .args(["prog", "loadall"])
        .arg(fixture("task_btf.o"))
        .arg(&dir)
        .output()
        .expect("bpftool");
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let mut got = Vec::new();
    for name in PROGS {
        got.push(kernel_test_run(&format!("{dir}/{name}")));
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(got, vec![Ok(ALL); PROGS.len()]);
}

/// `BPF_PROG_TEST_RUN` of the pinned program with an 8-byte context and no
/// repeat: its retval, or the errno.
fn kernel_test_run(pin: &str) -> Result<u32, i32> {
    const BPF_OBJ_GET: libc::c_long = 7;
    const BPF_PROG_TEST_RUN: libc::c_long = 10;
    let path = std::ffi::CString::new(pin).expect("path");
    let mut attr = [0u64; 16];
    attr[0] = path.as_ptr() as u64;
    // SAFETY: bpf(2) reads the path and the zeroed attribute it is given.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    let ctx = [0u64; 1];
    // struct { u32 prog_fd, retval, data_size_in, data_size_out; u64 data_in,
    // data_out; u32 repeat, duration, ctx_size_in, ctx_size_out; u64 ctx_in,
    // ctx_out; ... }
    let mut t = [0u64; 16];
    t[0] = fd as u64;
    t[5] = 8; // ctx_size_in (ctx_size_out 0)
    t[6] = ctx.as_ptr() as u64;
    // SAFETY: as above; the kernel reads ctx_size_in bytes of `ctx`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            t.as_mut_ptr(),
            std::mem::size_of_val(&t),
        )
    };
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    // SAFETY: closing the fd BPF_OBJ_GET gave.
    unsafe { libc::close(fd as i32) };
    if r < 0 {
        return Err(errno);
    }
    Ok((t[0] >> 32) as u32)
}
