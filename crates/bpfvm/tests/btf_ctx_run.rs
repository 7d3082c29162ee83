//! `prog run ctx_in` for BTF-typed tracing programs (tp_btf, fentry, fexit,
//! fmod_ret): tests/fixtures/obj/btf_ctx.o and btf_ctx_fentry.o run on
//! contexts given as u64 arrays, on the interpreter and the JIT.
//!
//! The kernel's own test run does not do this (it ignores `ctx_in` for
//! fentry and fexit and calls its test functions, which run the program only
//! when it is attached to them, and refuses tp_btf): what is compared here is
//! bpfvm with what the programs compute from the context, worked out by
//! hand, and the soundness rule that a pointer argument never comes from
//! `ctx_in` (it points at a zeroed stand-in object bpfvm owns, or is NULL
//! where the argument may be NULL).

mod fixture_kernel;
use bpfvm::maps::Array;
use bpfvm::{BpfCmd, BpfReply, LoadedObject, Object, Runtime, TestRunAttr};
use fixture_kernel::fixture;

fn ctx(slots: &[u64]) -> Vec<u8> {
    slots.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn run(rt: &Runtime, l: &LoadedObject, name: &str, ctx_in: Option<Vec<u8>>) -> Result<u32, String> {
    let id = l.prog(name).expect(name).id();
    match rt.bpf(BpfCmd::ProgTestRun(TestRunAttr {
        prog_id: id,
        ctx_in,
        ..Default::default()
    })) {
        Ok(BpfReply::TestRun(r)) => Ok(r.retval),
        Ok(other) => Err(format!("{other:?}")),
        Err(e) => Err(format!("{} ({e})", e.errno())),
    }
}

/// The fixture's `__u64 seen`.
fn seen(rt: &Runtime, l: &LoadedObject) -> u64 {
    let bss = &l
        .maps
        .iter()
        .find(|(n, _)| n.ends_with(".bss"))
        .expect("bss")
        .1;
    Array::<u64>::new(rt, bss)
        .expect("8-byte bss")
        .get(0)
        .expect("seen")
}

#[test]
fn tp_btf_runs_on_ctx_in() {
    let obj = Object::open(fixture("btf_ctx.o")).expect("btf_ctx.o");
    for jit in [false, true] {
        let rt = Runtime::with_cpus(1);
        rt.set_jit(jit);
        let l = rt.load_object(&obj, None).expect("loads");
        // sched_wakeup(p): p is a stand-in task whatever ctx_in says, so
        // p->comm[0] reads 0 from memory bpfvm owns, not from 0x1000.
        assert_eq!(run(&rt, &l, "on_wakeup", Some(ctx(&[0x1000]))), Ok(0));
        assert_eq!(seen(&rt, &l), 0, "jit {jit}");
        // sched_switch(preempt, prev, next, prev_state) also walks
        // next->real_parent, NULL in a stand-in: the load stops the run
        // (EFAULT), where the kernel's probe load of a faulting address reads
        // 0. Nothing was added to `seen` before.
        let r = run(&rt, &l, "on_switch", Some(ctx(&[1, 0xdead_beef, 0, 5])));
        assert!(r.as_ref().is_err_and(|e| e.starts_with("14 ")), "{r:?}");
        assert_eq!(seen(&rt, &l), 0, "jit {jit}");
    }
}

#[test]
fn fentry_fexit_fmod_ret_run_on_ctx_in() {
    let obj = Object::open(fixture("btf_ctx_fentry.o")).expect("btf_ctx_fentry.o");
    for jit in [false, true] {
        let rt = Runtime::with_cpus(1);
        rt.set_jit(jit);
        let l = rt.load_object(&obj, None).expect("loads");
        // do_unlinkat(dfd, name): seen += dfd + name->refcnt.counter, the
        // name a zeroed stand-in (not 0xdead_beef, nor NULL for 0).
        assert_eq!(
            run(&rt, &l, "on_unlink", Some(ctx(&[7, 0xdead_beef]))),
            Ok(0)
        );
        assert_eq!(seen(&rt, &l), 7, "jit {jit}");
        assert_eq!(
            run(&rt, &l, "on_unlink", Some(ctx(&[(-3i64) as u64, 0]))),
            Ok(0)
        );
        assert_eq!(seen(&rt, &l), 4, "jit {jit}");
        // fexit: the return value is the slot after the arguments.
        assert_eq!(run(&rt, &l, "on_unlink_ret", Some(ctx(&[0, 0, 20]))), Ok(0));
        assert_eq!(seen(&rt, &l), 24, "jit {jit}");
        // Slots ctx_in leaves out are 0.
        assert_eq!(run(&rt, &l, "on_unlink_ret", Some(ctx(&[5]))), Ok(0));
        assert_eq!(seen(&rt, &l), 24, "jit {jit}");
        assert_eq!(run(&rt, &l, "on_unlink_ret", None), Ok(0));
        // bpf_modify_return_test(a, b) with its return value: a + ret.
        assert_eq!(
            run(&rt, &l, "modify_ret", Some(ctx(&[40, 0x1234, 2]))),
            Ok(42)
        );
    }
}

/// `ctx_in` longer than the target's slots, or not whole slots, and any
/// `data_in`, are refused (EINVAL); LSM and iterator programs keep their
/// own rules (not run here).
#[test]
fn bad_ctx_in_is_refused() {
    let obj = Object::open(fixture("btf_ctx_fentry.o")).expect("btf_ctx_fentry.o");
    let rt = Runtime::with_cpus(1);
    let l = rt.load_object(&obj, None).expect("loads");
    let einval = |r: Result<u32, String>| r.is_err_and(|e| e.starts_with("22 "));
    // do_unlinkat has 2 arguments; fentry has no return value slot.
    assert!(einval(run(&rt, &l, "on_unlink", Some(ctx(&[1, 2, 3])))));
    assert!(einval(run(&rt, &l, "on_unlink", Some(vec![0; 12]))));
    let id = l.prog("on_unlink").unwrap().id();
    let r = rt.bpf(BpfCmd::ProgTestRun(TestRunAttr {
        prog_id: id,
        data_in: vec![0; 64],
        ..Default::default()
    }));
    assert_eq!(r.err().map(|e| e.errno()), Some(22));
    assert!(run(&rt, &l, "on_unlink", Some(ctx(&[1, 2]))).is_ok());
    // fexit has it: 3 slots.
    assert!(run(&rt, &l, "on_unlink_ret", Some(ctx(&[1, 2, 3]))).is_ok());
    assert!(einval(run(
        &rt,
        &l,
        "on_unlink_ret",
        Some(ctx(&[1, 2, 3, 4]))
    )));
}
