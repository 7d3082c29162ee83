//! `BPF_MAP_TYPE_USER_RINGBUF` and `bpf_user_ringbuf_drain`:
//! tests/fixtures/src/user_ringbuf.bpf.c, built into user_ringbuf.o (the
//! accepted programs) and one object per refused program.
//!
//! - The verdicts: a table of what Linux 6.18 said of each program
//!   (`bpftool prog loadall`: errno and the log's last line), checked against
//!   bpfvm's load, and against the host kernel again where it can be asked.
//! - The drain at run time, on the interpreter (checked mode) and the JIT:
//!   samples a producer submitted through the facade reach the callback in
//!   order, discarded ones are skipped, a reserved one holds back the rest, a
//!   callback returning 1 stops the drain after its sample and the rest stay
//!   for the next drain; the callback may change the sample it holds.
//! - The same programs on an empty ring in the host kernel, where it can be
//!   asked (nothing can be produced into the host's ring without libbpf).

mod fixture_kernel;
use bpfvm::maps::{Array, MapType, UserRingBuf};
use bpfvm::{LoadOpts, MapCreateAttr, Object, Runtime};
use fixture_kernel::{
    bpfvm_verdict_failures, fixture, host_verdict_failures, kernel_retvals, Expected,
    VerdictCase as Case,
};

const EACCES: i32 = 13;
const EINVAL: i32 = 22;

const fn ok(program: &'static str) -> Case {
    Case {
        object: "user_ringbuf.o",
        program,
        expected: Expected::Accepted,
        ours: None,
    }
}

const fn no(object: &'static str, errno: i32, line: &'static str) -> Case {
    Case {
        object,
        program: "refused",
        expected: Expected::Refused(errno, line),
        ours: None,
    }
}

const CASES: &[Case] = &[
    ok("drain"),
    ok("drain_flags"),
    no(
        "user_ringbuf_bad_neg.o",
        EACCES,
        "negative offset dynptr_ptr ptr R1 off=-16 disallowed",
    ),
    no(
        "user_ringbuf_bad_pos.o",
        EACCES,
        "dereference of modified dynptr_ptr ptr R1 off=16 disallowed",
    ),
    no(
        "user_ringbuf_write_dynptr.o",
        EACCES,
        "R1 invalid mem access 'dynptr_ptr'",
    ),
    no(
        "user_ringbuf_null_ctx.o",
        EACCES,
        "R2 invalid mem access 'scalar'",
    ),
    no(
        "user_ringbuf_release.o",
        EINVAL,
        "cannot release unowned const bpf_dynptr",
    ),
    no(
        "user_ringbuf_bad_ret.o",
        EINVAL,
        "At callback return the register R0 has smin=2 smax=2 should have been in [0, 1]",
    ),
    no(
        "user_ringbuf_reinit.o",
        EINVAL,
        "Dynptr has to be an uninitialized dynptr",
    ),
    no(
        "user_ringbuf_wrong_map.o",
        EINVAL,
        "cannot pass map_type 27 into func bpf_user_ringbuf_drain#209",
    ),
    no("user_ringbuf_lookup.o", EACCES, "invalid zero-sized read"),
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
        "{} user_ringbuf cases, {} differ from the host kernel",
        CASES.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A sample as the fixture reads it: `struct sample { u32 kind; u32 value; }`.
fn sample(kind: u32, value: u32) -> Vec<u8> {
    let mut s = kind.to_ne_bytes().to_vec();
    s.extend_from_slice(&value.to_ne_bytes());
    s
}
const STOP: u32 = 1;
const WRITE: u32 = 2;

/// What the fixture's last `drain` left in `result`: (return value, sum of
/// the values, callbacks run, sum of the dynptr sizes they got).
fn result(rt: &Runtime, l: &bpfvm::LoadedObject) -> (i64, u64, u32, u32) {
    let bss = l
        .maps
        .iter()
        .find(|(n, _)| n.ends_with(".bss"))
        .expect("bss")
        .1
        .clone();
    let v: Array<[u8; 24]> = Array::new(rt, &bss).expect("24-byte .bss");
    let b = v.get(0).expect("bss value");
    let word = |r: std::ops::Range<usize>| {
        let mut a = [0u8; 8];
        a[..r.len()].copy_from_slice(&b[r]);
        u64::from_ne_bytes(a)
    };
    (
        word(0..8) as i64,
        word(8..16),
        word(16..20) as u32,
        word(20..24) as u32,
    )
}

#[test]
fn drain_hands_samples_to_the_callback_in_order() {
    let obj = Object::open(fixture("user_ringbuf.o")).expect("user_ringbuf.o");
    for jit in [false, true] {
        let rt = Runtime::with_cpus(1);
        rt.set_jit(jit);
        let l = rt.load_object(&obj, None).expect("loads");
        let ring = UserRingBuf::new(&rt, l.map("urb").expect("urb")).expect("a user ring buffer");
        let drain = l.prog("drain").expect("drain");
        let run = || rt.run_packet(drain, &[0u8; 64]).expect("runs").retval;

        // Empty: nothing to drain.
        assert_eq!(run(), 0, "jit {jit}");
        assert_eq!(result(&rt, &l), (0, 0, 0, 0), "jit {jit}");

        ring.submit(&sample(0, 10)).unwrap();
        ring.reserve(8).unwrap().discard().unwrap();
        ring.submit(&sample(WRITE, 20)).unwrap();
        ring.submit(&sample(STOP, 5)).unwrap();
        ring.submit(&sample(0, 7)).unwrap();
        let mut held = ring.reserve(8).unwrap();
        ring.submit(&sample(0, 100)).unwrap();
        // A short sample: the callback's 8-byte read of it fails.
        ring.submit(&[1, 2, 3, 4, 5]).unwrap();

        // 10, the discarded one skipped, 20 + 21 (written, read back), 5 and
        // the callback stops: its sample is consumed, the rest wait.
        assert_eq!(run(), 3, "jit {jit}");
        assert_eq!(result(&rt, &l), (3, 56, 3, 24), "jit {jit}");
        // 7, then the reserved sample holds back the rest.
        assert_eq!(run(), 1, "jit {jit}");
        assert_eq!(result(&rt, &l), (1, 7, 1, 8), "jit {jit}");
        held.data_mut().copy_from_slice(&sample(0, 1000));
        held.submit().unwrap();
        assert_eq!(run(), 3, "jit {jit}");
        assert_eq!(result(&rt, &l), (3, 1100, 3, 21), "jit {jit}");
        assert_eq!(run(), 0, "jit {jit}");
    }
}

#[test]
fn drain_flags_and_unsubmitted_samples() {
    let obj = Object::open(fixture("user_ringbuf.o")).expect("user_ringbuf.o");
    for jit in [false, true] {
        let rt = Runtime::with_cpus(1);
        rt.set_jit(jit);
        let opts = LoadOpts {
            programs: Some(vec!["drain_flags".into()]),
            ..Default::default()
        };
        let l = rt.load_object_with(&obj, None, &opts).expect("loads");
        let ring = UserRingBuf::new(&rt, l.map("urb").expect("urb")).expect("a user ring buffer");
        let p = l.prog("drain_flags").expect("drain_flags");
        // Flags 4: -EINVAL; the wakeup flags: drained 0.
        assert_eq!(rt.run_packet(p, &[0u8; 64]).unwrap().retval, 2200);
        {
            // Dropped without a submit: discarded, never handed out.
            let mut s = ring.reserve(8).unwrap();
            s.data_mut()[0] = 9;
        }
        ring.submit(b"x").unwrap();
        assert_eq!(rt.run_packet(p, &[0u8; 64]).unwrap().retval, 2201);
    }
}

/// The producer's errors: a sample larger than the ring (`E2BIG`), no room
/// until a drain (`ENOSPC`), a frozen map (`EPERM`), another map type.
#[test]
fn producer_errors() {
    let rt = Runtime::with_cpus(1);
    let fd = rt
        .create_map(&MapCreateAttr {
            map_type: MapType::UserRingbuf,
            max_entries: 4096,
            name: "urb".into(),
            ..Default::default()
        })
        .unwrap();
    let ring = UserRingBuf::new(&rt, &fd).unwrap();
    assert_eq!(ring.reserve(4089).unwrap_err().errno(), libc::E2BIG);
    let big = ring.reserve(4000).unwrap();
    assert_eq!(ring.reserve(100).unwrap_err().errno(), libc::ENOSPC);
    big.submit().unwrap();
    assert_eq!(ring.submit(&[0; 100]).unwrap_err().errno(), libc::ENOSPC);
    rt.bpf(bpfvm::BpfCmd::MapFreeze {
        map_id: ring.raw().id(),
    })
    .unwrap();
    assert_eq!(ring.reserve(8).unwrap_err().errno(), libc::EPERM);
    let hash = rt
        .create_map(&MapCreateAttr {
            map_type: MapType::Hash,
            key_size: 4,
            value_size: 4,
            max_entries: 4,
            ..Default::default()
        })
        .unwrap();
    assert!(UserRingBuf::new(&rt, &hash).is_err());
}

/// Creation follows the kernel's rules (ringbuf_map_alloc): key and value
/// size 0, max_entries a power of 2 and a multiple of the page size, only
/// BPF_F_NUMA_NODE; every refusal is EINVAL (as Linux 6.18 answered
/// `bpftool map create ... type user_ringbuf`).
#[test]
fn creation_rules() {
    let rt = Runtime::with_cpus(1);
    let create = |key_size, value_size, max_entries, map_flags| {
        rt.create_map(&MapCreateAttr {
            map_type: MapType::UserRingbuf,
            key_size,
            value_size,
            max_entries,
            map_flags,
            name: "urb".into(),
            ..Default::default()
        })
        .map(|_| ())
        .map_err(|e| e.errno())
    };
    assert_eq!(create(0, 0, 4096, 0), Ok(()));
    assert_eq!(create(0, 0, 8192, 4), Ok(()));
    for (k, v, n, f) in [
        (4, 0, 4096, 0),
        (0, 4, 4096, 0),
        (0, 0, 4095, 0),
        (0, 0, 2048, 0),
        (0, 0, 0, 0),
        (0, 0, 8192, 1),
    ] {
        assert_eq!(create(k, v, n, f), Err(libc::EINVAL), "{k} {v} {n} {f:#x}");
    }
}

/// The accepted programs in the host kernel, on its (empty) ring.
#[test]
fn live_kernel_agrees_on_an_empty_ring() {
    let got = match kernel_retvals(
        &fixture("user_ringbuf.o"),
        &[0u8; 64],
        &["drain", "drain_flags"],
    ) {
        Ok(g) => g,
        Err(why) => {
            eprintln!("skipping: {why}");
            return;
        }
    };
    assert_eq!(got, vec![Some(0), Some(2200)]);
}
