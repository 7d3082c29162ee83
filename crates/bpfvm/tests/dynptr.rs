//! The helper-based dynptrs at run time: tests/fixtures/src/dynptr.bpf.c
//! (built into obj/dynptr.o), XDP and tc programs that call the dynptr helpers and
//! kfuncs and return what the calls returned, packed into one number. The
//! expected values are what Linux 6.18 returned for the same programs and
//! packet (`bpftool prog run ... data_in`, the packet bytes 0..64); they are
//! checked on the interpreter (checked mode) and on the JIT, and where the
//! host kernel can be asked (root, bpftool) it is asked again.
//!
//! Also: a ring buffer record made through a dynptr reaches the consumer
//! when submitted, and not when discarded.

mod fixture_kernel;
use bpfvm::maps::RingBuf;
use bpfvm::{LoadOpts, Object, Runtime};
use fixture_kernel::{bpfvm_load, bpfvm_retval, fixture, kernel_load, kernel_retvals};

/// The packet: bytes 0, 1, ..., 63.
fn packet() -> Vec<u8> {
    (0..64u8).collect()
}

/// Program, and what Linux 6.18 returned (decimal digits packed as the
/// program packs them; errnos as positive numbers).
const CASES: &[(&str, u32)] = &[
    // from_mem 0, write 0, read 0; read bytes 2 and 4, slice bytes 3 and 4
    ("local_rw", 2434),
    // bad flags -EINVAL, dynptr null, read of it -EINVAL, size -EINVAL as u32
    ("local_null", 221_221),
    // read past the end -E2BIG, read with flags -EINVAL, write with flags
    // -EINVAL, write past the end -E2BIG, data past the end NULL
    ("local_bounds", 72_222_071),
    // adjust 0, size 8, adjust(6, 2) -EINVAL, adjust(0, 9) -ERANGE, clone 0,
    // clone not read-only, clone's byte 1 (byte 5 of the value) 55
    ("adjust_clone", 822_340_055),
    // reserve 0, write 0, size 16, then the low byte written (0x88)
    ("ringbuf_ok", 16_136),
    // flags -EINVAL (null), too big -E2BIG, no room -EINVAL (null)
    ("ringbuf_errors", 22_107_221),
    // from_xdp 0, read 0, write 0, read past the end -E2BIG, data NULL,
    // slice bytes 2 and 3 (3 written as 9)
    ("xdp_rw", 710_209),
    // tc: from_skb 0, read 0, write 0, write with an unknown flag -EINVAL,
    // read past the end -E2BIG, data NULL, slice bytes 2 and 3 (3 written as 9)
    ("skb_rw", 22_071_029),
];

#[test]
fn dynptr_programs_return_what_the_kernel_returns() {
    let obj = Object::open(fixture("dynptr.o")).expect("dynptr.o");
    let mut failures = Vec::new();
    for jit in [false, true] {
        let rt = Runtime::with_cpus(1);
        rt.set_jit(jit);
        for &(name, expected) in CASES {
            match bpfvm_retval(&rt, &obj, name, &packet()) {
                Ok(v) if v == expected => {}
                Ok(v) => failures.push(format!(
                    "{name} ({}): {v}, kernel {expected}",
                    if jit { "jit" } else { "interpreter" }
                )),
                Err(e) => failures.push(format!("{name}: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `ringbuf_ok` submits one 16-byte record (8 zero bytes, then the value
/// written); `ringbuf_errors` reserves nothing, so it submits nothing.
#[test]
fn submitted_records_reach_the_consumer() {
    let obj = Object::open(fixture("dynptr.o")).expect("dynptr.o");
    for jit in [false, true] {
        let rt = Runtime::with_cpus(1);
        rt.set_jit(jit);
        let opts = LoadOpts {
            programs: Some(vec!["ringbuf_ok".into(), "ringbuf_errors".into()]),
            ..Default::default()
        };
        let l = rt.load_object_with(&obj, None, &opts).expect("loads");
        let mut ring = RingBuf::new(&rt, l.map("rb").expect("rb")).expect("a ring buffer");
        let errors = l.prog("ringbuf_errors").expect("ringbuf_errors");
        rt.run_packet(errors, &packet()).expect("runs");
        assert_eq!(ring.next(), None, "jit {jit}");
        let ok = l.prog("ringbuf_ok").expect("ringbuf_ok");
        rt.run_packet(ok, &packet()).expect("runs");
        let mut want = vec![0u8; 8];
        want.extend_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(ring.next(), Some(want), "jit {jit}");
        assert_eq!(ring.next(), None, "jit {jit}");
    }
}

/// The same programs in the host kernel, when it can be asked.
#[test]
fn live_kernel_agrees() {
    let names: Vec<&str> = CASES.iter().map(|&(n, _)| n).collect();
    let got = match kernel_retvals(&fixture("dynptr.o"), &packet(), &names) {
        Ok(g) => g,
        Err(why) => {
            eprintln!("skipping: {why}");
            return;
        }
    };
    let diffs: Vec<String> = CASES
        .iter()
        .zip(got)
        .filter(|&(&(_, expected), got)| got != Some(expected))
        .map(|(&(name, expected), got)| format!("{name}: kernel {got:?}, recorded {expected}"))
        .collect();
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// A slice of a ring buffer record (from `bpf_dynptr_slice`) dies with the
/// record: used after `bpf_ringbuf_submit_dynptr`, it is refused, as Linux
/// 6.18 refuses it (tests/fixtures/obj/dynptr_slice_uaf.o).
#[test]
fn slice_of_a_submitted_record_is_refused() {
    const EACCES: i32 = 13;
    const LINE: &str = "R7 invalid mem access 'scalar'";
    let rt = Runtime::with_cpus(1);
    match bpfvm_load(&rt, "dynptr_slice_uaf.o", "slice_after_submit").0 {
        Err((EACCES, text)) if text.contains(LINE) => {}
        other => panic!("bpfvm: {other:?}"),
    }
    if let Some(why) = bpfvm_testsupport::bpftool_unavailable() {
        eprintln!("skipping the host kernel comparison: {why}");
        return;
    }
    match kernel_load("dynptr_slice_uaf.o") {
        Err((EACCES, text)) if text.contains(LINE) => {}
        other => panic!("the host kernel: {other:?}"),
    }
}
