//! The runtime's object model and dispatcher: tail calls, lifetimes, ids, pins,
//! per-CPU maps, custom helpers.

use bpfvm::{
    BpfCmd, BpfReply, MapCreateAttr, ObjKind, Object, Pinned, ProgLoadAttr, Runtime, TestRunAttr,
};
use std::path::Path;

fn fixture(name: &str) -> Object {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/obj")
        .join(name);
    Object::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn raw_tp_args(args: &[u64]) -> Vec<u8> {
    args.iter().flat_map(|a| a.to_le_bytes()).collect()
}

fn run(rt: &Runtime, prog_id: u32, data: Vec<u8>, ctx: Option<Vec<u8>>) -> bpfvm::TestRunResult {
    match rt.bpf(BpfCmd::ProgTestRun(TestRunAttr {
        prog_id,
        data_in: data,
        ctx_in: ctx,
        repeat: 1,
        ..Default::default()
    })) {
        Ok(BpfReply::TestRun(r)) => r,
        other => panic!("test run failed: {other:?}"),
    }
}

fn trace_messages(rt: &Runtime) -> Vec<String> {
    rt.trace_pipe()
        .snapshot()
        .iter()
        .map(|l| {
            l.split("bpf_trace_printk: ")
                .nth(1)
                .unwrap_or("")
                .trim_end()
                .to_string()
        })
        .collect()
}

#[test]
fn tail_calls_dispatch_through_the_prog_array() {
    let rt = Runtime::with_cpus(2);
    let obj = rt.load_object(&fixture("hop.o"), None).expect("load hop.o");
    let hello = obj.prog("hello").expect("hello").id();
    for (opcode, want) in [
        (59u64, "Executing a program"),
        (222, "Creating a timer"),
        (223, "Setting a timer"),
        (42, "Another syscall: 42"),
    ] {
        let before = trace_messages(&rt).len();
        let r = run(&rt, hello, Vec::new(), Some(raw_tp_args(&[0, opcode])));
        assert_eq!(r.retval, 0);
        let msgs = trace_messages(&rt);
        assert_eq!(&msgs[before..], [want.to_string()], "opcode {opcode}");
    }
    // Slot 0 runs ignore_opcode, which prints nothing.
    let before = trace_messages(&rt).len();
    run(&rt, hello, Vec::new(), Some(raw_tp_args(&[0, 0])));
    assert_eq!(trace_messages(&rt).len(), before);
}

#[test]
fn prog_array_is_cleared_when_the_last_user_reference_goes() {
    let rt = Runtime::with_cpus(1);
    let obj = rt.load_object(&fixture("hop.o"), None).expect("load hop.o");
    let map = obj.map("syscall").expect("syscall map").obj().clone();
    let hello = obj.prog("hello").expect("hello").clone();
    let lookup = |rt: &Runtime| {
        rt.bpf(BpfCmd::MapLookupElem {
            map_id: map.id,
            key: 59u32.to_le_bytes().to_vec(),
            flags: 0,
        })
    };
    assert!(lookup(&rt).is_ok(), "slot 59 holds hello_exec after load");
    drop(obj);
    // The program still uses the map, but no user-space reference is left.
    assert!(
        rt.map_by_id(map.id).is_ok(),
        "the map lives while a program uses it"
    );
    assert!(
        lookup(&rt).is_err(),
        "slots are cleared on the last uref, as in the kernel"
    );
    let before = trace_messages(&rt).len();
    run(&rt, hello.id(), Vec::new(), Some(raw_tp_args(&[0, 59])));
    assert_eq!(
        trace_messages(&rt)[before..],
        ["Another syscall: 59".to_string()]
    );
}

#[test]
fn tail_call_chain_stops_at_33() {
    let rt = Runtime::with_cpus(1);
    let obj = rt
        .load_object(&fixture("tailchain.o"), None)
        .expect("load tailchain.o");
    let chain = obj.prog("chain").expect("chain").id();
    let pkt = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/packets/ipv4_udp.bin"),
    )
    .unwrap();
    run(&rt, chain, pkt, None);
    let bss = obj
        .maps
        .iter()
        .find(|(n, _)| n.ends_with(".bss") || n.ends_with("_bss"))
        .expect("bss")
        .1
        .id();
    let v = match rt.bpf(BpfCmd::MapLookupElem {
        map_id: bss,
        key: vec![0; 4],
        flags: 0,
    }) {
        Ok(BpfReply::Bytes(v)) => v,
        other => panic!("{other:?}"),
    };
    // The entry run plus 33 tail calls, as the kernel counts (tests/golden/kernel/xdp_runs.json).
    assert_eq!(u32::from_le_bytes(v[..4].try_into().unwrap()), 34);
}

#[test]
fn ids_are_cyclic_and_objects_go_with_their_last_holder() {
    let rt = Runtime::with_cpus(1);
    let attr = MapCreateAttr {
        map_type: bpfvm::maps::MapType::Array,
        key_size: 4,
        value_size: 8,
        max_entries: 4,
        name: "a".into(),
        ..Default::default()
    };
    let m1 = rt.create_map(&attr).unwrap();
    let m2 = rt.create_map(&attr).unwrap();
    assert_eq!((m1.id(), m2.id()), (1, 2));
    let id1 = m1.id();
    drop(m1);
    assert!(rt.map_by_id(id1).is_err(), "released with its last handle");
    // A freed id is not reused before the counter wraps.
    let m3 = rt.create_map(&attr).unwrap();
    assert_eq!(m3.id(), 3);
    // A pin holds the map after the handle goes.
    rt.bpf(BpfCmd::ObjPin {
        path: "/sys/fs/bpf/m3".into(),
        kind: ObjKind::Map,
        id: 3,
    })
    .unwrap();
    drop(m3);
    assert!(rt.map_by_id(3).is_ok());
    assert!(
        matches!(rt.pinned("/sys/fs/bpf//m3"), Ok(Pinned::Map(_))),
        "paths are normalised"
    );
    assert!(
        rt.pin("/sys/fs/bpf/m3", rt.pinned("/sys/fs/bpf/m3").unwrap())
            .is_err(),
        "EEXIST"
    );
    rt.unpin("/sys/fs/bpf/m3").unwrap();
    assert!(rt.map_by_id(3).is_err(), "unpinning released it");
    // get_next_id walks live ids in order.
    assert!(matches!(
        rt.bpf(BpfCmd::MapGetNextId { start_id: 0 }),
        Ok(BpfReply::Id(2))
    ));
    assert!(rt.bpf(BpfCmd::MapGetNextId { start_id: 2 }).is_err());
}

#[test]
fn unknown_helpers_are_refused_at_load_with_their_id() {
    let rt = Runtime::with_cpus(1);
    let insns = bpfvm::isa::asm::assemble("call 195\nexit").unwrap();
    let e = rt
        .load_program(ProgLoadAttr {
            prog_type: bpfvm::ProgType::Xdp,
            insns,
            license: "GPL".into(),
            name: "x".into(),
            ..Default::default()
        })
        .unwrap_err();
    let msg = format!(
        "{e}: {}",
        std::error::Error::source(&e)
            .map(|s| s.to_string())
            .unwrap_or_default()
    );
    assert!(msg.contains("195"), "{msg}");
}

#[test]
fn custom_helpers_can_be_registered() {
    let rt = Runtime::with_cpus(1);
    use bpfvm::isa::helpers::{Arg, Proto, Ret};
    let proto = Proto::new(
        [
            Arg::Anything,
            Arg::DontCare,
            Arg::DontCare,
            Arg::DontCare,
            Arg::DontCare,
        ],
        Ret::Integer,
    );
    rt.register_helper(
        10_000,
        "my_double",
        proto,
        |_: &mut bpfvm::vm::HelperCtx<'_, '_>, a: [u64; 5]| {
            Ok(bpfvm::vm::HelperOutcome::Return(a[0] * 2))
        },
    );
    let insns = bpfvm::isa::asm::assemble("mov %r1, 21\ncall 10000\nexit").unwrap();
    let p = rt
        .load_program(ProgLoadAttr {
            prog_type: bpfvm::ProgType::Syscall,
            prog_flags: bpfvm::BPF_F_SLEEPABLE,
            insns,
            license: "GPL".into(),
            name: "dbl".into(),
            ..Default::default()
        })
        .unwrap();
    let r = run(&rt, p.id(), Vec::new(), Some(vec![0; 8]));
    assert_eq!(r.retval, 42);
}

/// A helper given in the `RuntimeConfig` is there from the start, and its
/// calls are verified against its prototype as a registered helper's are.
#[test]
fn runtime_config_helpers_are_registered_and_verified() {
    use bpfvm::isa::helpers::{Arg, Proto, Ret};
    let d = Arg::DontCare;
    let cfg = bpfvm::RuntimeConfig::new().cpus(1).helper(
        10_002,
        "my_triple",
        Proto::new([Arg::Anything, d, d, d, d], Ret::Integer),
        |_: &mut bpfvm::vm::HelperCtx<'_, '_>, a: [u64; 5]| {
            Ok(bpfvm::vm::HelperOutcome::Return(a[0] * 3))
        },
    );
    // One config, two runtimes: both have the helper.
    for rt in [Runtime::with_config(cfg.clone()), Runtime::with_config(cfg)] {
        let load = |src: &str| {
            rt.load_program(ProgLoadAttr {
                prog_type: bpfvm::ProgType::Syscall,
                prog_flags: bpfvm::BPF_F_SLEEPABLE,
                insns: bpfvm::isa::asm::assemble(src).unwrap(),
                license: "GPL".into(),
                name: "triple".into(),
                ..Default::default()
            })
        };
        let p = load("mov %r1, 14\ncall 10002\nexit").unwrap();
        assert_eq!(run(&rt, p.id(), Vec::new(), Some(vec![0; 8])).retval, 42);
        // R1 scratched by the first call: the prototype's argument is read.
        let e = load("mov %r1, 1\ncall 10002\ncall 10002\nexit").unwrap_err();
        let text = format!("{e} {}", e.verifier_log().unwrap_or_default());
        assert!(text.contains("R1 !read_ok"), "{text}");
    }
}

/// An embedder's helper is verified against the prototype it was registered
/// with: memory arguments must be memory of the size given.
#[test]
fn custom_helper_arguments_are_verified() {
    use bpfvm::isa::helpers::{Arg, Proto, Ret};
    let rt = Runtime::with_cpus(1);
    let d = Arg::DontCare;
    let proto = Proto::new(
        [Arg::Mem { nullable: false }, Arg::ConstSize, d, d, d],
        Ret::Integer,
    );
    rt.register_helper(
        10_001,
        "my_sum",
        proto,
        |c: &mut bpfvm::vm::HelperCtx<'_, '_>, a: [u64; 5]| {
            let b = c.read_bytes(a[0], a[1] as usize)?;
            Ok(bpfvm::vm::HelperOutcome::Return(
                b.iter().map(|x| *x as u64).sum(),
            ))
        },
    );
    let load = |src: &str| {
        rt.load_program(ProgLoadAttr {
            prog_type: bpfvm::ProgType::Syscall,
            prog_flags: bpfvm::BPF_F_SLEEPABLE,
            insns: bpfvm::isa::asm::assemble(src).unwrap(),
            license: "GPL".into(),
            name: "sum".into(),
            ..Default::default()
        })
    };
    // Eight initialised stack bytes, summed.
    let ok = load(
        "mov %r1, 0x0101\nstxdw [%r10-8], %r1\nmov %r1, %r10\nadd %r1, -8\nmov %r2, 8\ncall 10001\nexit",
    )
    .unwrap();
    assert_eq!(run(&rt, ok.id(), Vec::new(), Some(vec![0; 8])).retval, 2);
    // A scalar where memory goes, and a size past the stack.
    for (src, msg) in [
        (
            "mov %r1, 0\nmov %r2, 8\ncall 10001\nexit",
            "R1 type=scalar expected=fp",
        ),
        (
            "mov %r1, %r10\nadd %r1, -8\nmov %r2, 16\ncall 10001\nexit",
            "invalid read from stack R1 off=-8 size=16",
        ),
    ] {
        let e = load(src).unwrap_err();
        let log = e.verifier_log().unwrap_or_default().to_string();
        let text = format!("{e} {log}");
        assert!(text.contains(msg), "{src}: {text}");
    }
}

/// bpf_trace_vprintk (helper 177): bpf_trace_printk with its arguments in an
/// array, to the trace pipe.
#[test]
fn trace_vprintk_prints_its_array() {
    let rt = Runtime::with_cpus(1);
    // fmt "x=%d y=%d" at fp-16, the arguments 7 and 9 at fp-32.
    let src =
        "lddw %r1, 0x253d792064253d78\nstxdw [%r10-16], %r1\nmov %r1, 0x64\nstxdw [%r10-8], %r1\n\
               mov %r1, 7\nstxdw [%r10-32], %r1\nmov %r1, 9\nstxdw [%r10-24], %r1\n\
               mov %r1, %r10\nadd %r1, -16\nmov %r2, 10\nmov %r3, %r10\nadd %r3, -32\nmov %r4, 16\n\
               call 177\nexit";
    let p = rt
        .load_program(ProgLoadAttr {
            prog_type: bpfvm::ProgType::Syscall,
            prog_flags: bpfvm::BPF_F_SLEEPABLE,
            insns: bpfvm::isa::asm::assemble(src).unwrap(),
            license: "GPL".into(),
            name: "vprintk".into(),
            ..Default::default()
        })
        .unwrap();
    let r = run(&rt, p.id(), Vec::new(), Some(vec![0; 8]));
    assert_eq!(r.retval, 7, "the length of the message");
    assert_eq!(
        trace_messages(&rt).last().map(String::as_str),
        Some("x=7 y=9")
    );
}

#[test]
fn per_cpu_maps_hold_one_value_per_cpu() {
    let rt = Runtime::with_cpus(4);
    let m = rt
        .create_map(&MapCreateAttr {
            map_type: bpfvm::maps::MapType::PercpuArray,
            key_size: 4,
            value_size: 4,
            max_entries: 2,
            name: "pc".into(),
            ..Default::default()
        })
        .unwrap();
    // User space sees every CPU's value, each rounded up to 8 bytes.
    let v = match rt.bpf(BpfCmd::MapLookupElem {
        map_id: m.id(),
        key: vec![0; 4],
        flags: 0,
    }) {
        Ok(BpfReply::Bytes(v)) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(v.len(), 4 * 8);
}

/// Repeated test runs reuse one buffer, so `set_meta`'s 8-byte
/// `bpf_xdp_adjust_meta` accumulates: on Linux 6.18 the metadata grows past
/// the old 32-byte limit until it would reach the xdp_frame (216 bytes into
/// the 256 of headroom). Return values and output sizes as observed with
/// `bpftool prog run ... repeat N` on the host kernel.
#[test]
fn xdp_metadata_accumulates_across_repeats_as_in_the_kernel() {
    let pkt = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/packets/ipv4_udp.bin"),
    )
    .expect("packet");
    assert_eq!(pkt.len(), 53);
    for (repeat, retval, out_len) in [
        (1u32, 2u32, 61usize),
        (4, 2, 85),
        (5, 2, 93),
        (25, 2, 253),
        (28, 0, 269),
        (40, 0, 269),
    ] {
        let rt = Runtime::with_cpus(2);
        let obj = rt
            .load_object(&fixture("xdp_adjust.o"), None)
            .expect("load");
        let id = obj.prog("set_meta").expect("set_meta").id();
        let r = match rt.bpf(BpfCmd::ProgTestRun(TestRunAttr {
            prog_id: id,
            data_in: pkt.clone(),
            repeat,
            ..Default::default()
        })) {
            Ok(BpfReply::TestRun(r)) => r,
            other => panic!("test run failed: {other:?}"),
        };
        assert_eq!(
            (r.retval, r.data_out.len()),
            (retval, out_len),
            "repeat {repeat}"
        );
    }
}

/// A syscall program returning 7, loaded into `rt`.
fn load_ret7(rt: &Runtime) -> bpfvm::ProgFd {
    rt.load_program(ProgLoadAttr {
        prog_type: bpfvm::ProgType::Syscall,
        prog_flags: bpfvm::BPF_F_SLEEPABLE,
        insns: bpfvm::isa::asm::assemble("mov %r0, 7\nexit").unwrap(),
        license: "GPL".into(),
        name: "ret7".into(),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn runtime_config_sets_cpus_and_jit_and_a_program_says_why_it_has_no_native_code() {
    let rt = Runtime::with_config(bpfvm::RuntimeConfig::new().cpus(3).jit(false));
    assert_eq!(rt.ncpus(), 3);
    assert!(!rt.jit_enabled());
    let p = load_ret7(&rt);
    assert!(!p.obj().is_jited());
    assert_eq!(p.obj().jited_len(), 0);
    assert!(matches!(
        p.obj().jit_error(),
        Some(bpfvm::JitUnavailable::Disabled)
    ));
    assert_eq!(rt.run_context(&p, &[]).unwrap().retval, 7);

    // Turned on later, it applies to programs loaded afterwards.
    rt.set_jit(true);
    let p = load_ret7(&rt);
    if cfg!(target_arch = "x86_64") {
        let j = p.obj().jited().expect("JIT-compiled");
        assert!(p.obj().jit_error().is_none());
        assert_eq!(j.len(), p.obj().jited_len());
        assert!(!j.is_empty() && j.code().len() >= j.len());
    } else {
        assert!(matches!(
            p.obj().jit_error(),
            Some(bpfvm::JitUnavailable::Failed { .. })
        ));
    }
    assert_eq!(rt.run_context(&p, &[]).unwrap().retval, 7);
}

#[test]
fn map_accessors_answer_without_the_ops() {
    let rt = Runtime::with_cpus(2);
    let m = rt
        .create_map(&MapCreateAttr {
            map_type: bpfvm::maps::MapType::PercpuArray,
            key_size: 4,
            value_size: 4,
            max_entries: 3,
            name: "pc".into(),
            ..Default::default()
        })
        .unwrap();
    let o = m.obj();
    // Two CPUs, each value rounded up to 8 bytes.
    assert_eq!(o.user_value_size(), 16);
    assert_eq!(o.entries(), 3);
    assert!(!o.is_frozen());
    assert!(o.memory_usage() > 0);
    assert!(o.perf_event_array().is_none());
    assert!(o.pushed_values().is_none());
    let r = o.value_regions();
    assert_eq!((r.len(), r[0].count, r[0].stride), (1, 6, 8));
    rt.bpf(BpfCmd::MapFreeze { map_id: m.id() }).unwrap();
    assert!(o.is_frozen());
}
