//! Ring buffer: record layout, order, discard, wraparound, wakeups, query.

mod common;
use common::*;

use std::sync::Arc;
use std::time::Duration;

use bpfvm_maps::*;

fn rb(size: u32) -> Arc<dyn MapOps> {
    mk(MapType::Ringbuf, 0, 0, size)
}

fn drain(r: &RingBuf) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    r.consume(&mut |rec| {
        out.push(rec.to_vec());
        true
    });
    out
}

#[test]
fn header_layout_and_order() {
    let m = rb(4096);
    let r = m.as_ringbuf().unwrap();
    assert!(m.as_any().downcast_ref::<RingBuf>().is_some());
    let p = r.reserve(5, 0).unwrap();
    assert_eq!(p as usize % 8, 0, "records are 8-byte aligned");
    // SAFETY: the header sits 8 bytes before the record.
    let hdr = unsafe { (p.sub(8) as *const u32).read() };
    assert_eq!(hdr, 5 | BPF_RINGBUF_BUSY_BIT);
    assert_eq!(
        r.query(BPF_RB_PROD_POS),
        16,
        "8-byte header + 5 bytes padded to 8"
    );
    assert_eq!(r.query(BPF_RB_AVAIL_DATA), 16);
    assert_eq!(r.query(BPF_RB_RING_SIZE), 4096);
    assert_eq!(r.query(99), 0);
    // SAFETY: 5 reserved bytes.
    unsafe { std::ptr::copy_nonoverlapping(b"hello".as_ptr(), p, 5) };
    // A busy record blocks the consumer, and everything after it.
    r.output(b"second", 0).unwrap();
    assert!(drain(r).is_empty());
    assert!(!r.has_data());
    r.submit(p, 0).unwrap();
    // SAFETY: as above.
    assert_eq!(
        unsafe { (p.sub(8) as *const u32).read() },
        5,
        "busy bit cleared"
    );
    assert_eq!(drain(r), vec![b"hello".to_vec(), b"second".to_vec()]);
    assert_eq!(r.query(BPF_RB_CONS_POS), r.query(BPF_RB_PROD_POS));
    assert_eq!(r.query(BPF_RB_AVAIL_DATA), 0);
    // Submitting twice, or a foreign pointer, is refused.
    assert_eq!(errno(r.submit(p, 0)), EFAULT);
    let mut x = 0u64;
    assert_eq!(errno(r.submit(&mut x as *mut u64 as *mut u8, 0)), EFAULT);
    assert!(r.reserve(8, 1).is_none(), "reserve takes no flags");
    assert_eq!(errno(r.output(b"x", 4)), EINVAL);
}

#[test]
fn discard_is_skipped() {
    let m = rb(4096);
    let r = m.as_ringbuf().unwrap();
    let a = r.reserve(8, 0).unwrap();
    let b = r.reserve(8, 0).unwrap();
    let c = r.reserve(8, 0).unwrap();
    // SAFETY: 8 reserved bytes each.
    unsafe {
        a.write_bytes(1, 8);
        b.write_bytes(2, 8);
        c.write_bytes(3, 8);
    }
    r.submit(c, 0).unwrap();
    r.discard(b, 0).unwrap();
    // SAFETY: b's header.
    assert_eq!(
        unsafe { (b.sub(8) as *const u32).read() },
        8 | BPF_RINGBUF_DISCARD_BIT
    );
    assert!(drain(r).is_empty(), "a is still busy");
    r.submit(a, 0).unwrap();
    assert_eq!(drain(r), vec![vec![1; 8], vec![3; 8]]);
}

#[test]
fn full_and_wraparound() {
    let m = rb(4096);
    let r = m.as_ringbuf().unwrap();
    assert!(r.reserve(4096, 0).is_none(), "larger than the ring");
    assert!(
        r.reserve(4096 - 8, 0).is_none(),
        "the ring is never completely full"
    );
    // 100-byte records take 112 bytes: 36 fit in 4095 bytes.
    let mut n = 0;
    while r.output(&[n as u8; 100], 0).is_ok() {
        n += 1;
    }
    assert_eq!(n, 36);
    assert_eq!(errno(r.output(&[0; 100], 0)), EAGAIN);
    // Consume a few and keep going round the ring many times; every record comes back
    // intact even when it straddles the end of the data area.
    let mut next_in = n;
    let mut next_out = 0u32;
    for round in 0..200 {
        let got = drain(r);
        for rec in &got {
            assert_eq!(rec.len(), 100);
            assert!(
                rec.iter().all(|&b| b == next_out as u8),
                "record {next_out} corrupted"
            );
            next_out += 1;
        }
        let burst = 1 + round % 30;
        for _ in 0..burst {
            if r.output(&[next_in as u8; 100], 0).is_err() {
                break;
            }
            next_in += 1;
        }
    }
    assert_eq!(drain(r).len() as u32, next_in - next_out);
    assert!(r.query(BPF_RB_PROD_POS) > 20 * 4096, "wrapped many times");
}

#[test]
fn odd_sizes_straddle_the_end() {
    let m = rb(4096);
    let r = m.as_ringbuf().unwrap();
    let mut expect = Vec::new();
    let mut i = 0u32;
    while r.query(BPF_RB_PROD_POS) < 10 * 4096 {
        let len = 1 + (i * 37 % 500) as usize;
        let data: Vec<u8> = (0..len).map(|j| (i as usize + j) as u8).collect();
        match r.output(&data, BPF_RB_NO_WAKEUP) {
            Ok(()) => {
                expect.push(data);
                i += 1;
            }
            Err(_) => {
                let got = drain(r);
                assert_eq!(got, expect);
                expect.clear();
            }
        }
    }
    assert_eq!(drain(r), expect);
}

#[test]
fn wakeups() {
    let m = rb(4096);
    let r = m.as_ringbuf().unwrap();
    // Default: wake only when the consumer has caught up to this record.
    r.output(b"a", 0).unwrap();
    assert_eq!(r.wakeup_count(), 1);
    r.output(b"b", 0).unwrap();
    assert_eq!(r.wakeup_count(), 1, "consumer is behind: no new wakeup");
    r.output(b"c", BPF_RB_FORCE_WAKEUP).unwrap();
    assert_eq!(r.wakeup_count(), 2);
    drain(r);
    r.output(b"d", BPF_RB_NO_WAKEUP).unwrap();
    assert_eq!(r.wakeup_count(), 2);
    assert!(r.wait(Duration::from_millis(1)), "data is there");
    drain(r);
    assert!(!r.wait(Duration::from_millis(20)));
    // A consumer thread sleeping in wait() is woken by a producer.
    let m2 = m.clone();
    let t = std::thread::spawn(move || m2.as_ringbuf().unwrap().wait(Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(50));
    r.output(b"e", 0).unwrap();
    assert!(t.join().unwrap());
    assert_eq!(r.next_record().unwrap(), b"e");
    assert!(r.next_record().is_none());
}

#[test]
fn map_ops_are_not_supported() {
    let m = rb(4096);
    let mut out = [0u8; 4];
    assert_eq!(errno(m.lookup_user(&[], &mut out, 0)), ENOTSUPP);
    assert_eq!(errno(m.update_user(&[], &[], 0)), ENOTSUPP);
    assert_eq!(errno(m.delete_user(&[])), ENOTSUPP);
    assert_eq!(errno(m.get_next_key(None, &mut out)), ENOTSUPP);
    assert!(m.lookup(&[], 0).is_none());
    let reg = m.value_regions()[0];
    let p = m.as_ringbuf().unwrap().reserve(16, 0).unwrap();
    assert!(reg.contains(p as usize, 16));
}

#[test]
fn concurrent_producers() {
    let m = rb(1 << 16);
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let m = m.clone();
            std::thread::spawn(move || {
                let r = m.as_ringbuf().unwrap();
                let mut sent = 0u32;
                while sent < 2000 {
                    let mut rec = [t; 12];
                    rec[4..8].copy_from_slice(&sent.to_ne_bytes());
                    if r.output(&rec, 0).is_ok() {
                        sent += 1;
                    } else {
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let r = m.as_ringbuf().unwrap();
    let mut next = [0u32; 4];
    let mut total = 0;
    while total < 8000 {
        r.consume(&mut |rec| {
            let t = rec[0] as usize;
            let seq = u32::from_ne_bytes(rec[4..8].try_into().unwrap());
            assert_eq!(seq, next[t], "per-producer order");
            next[t] += 1;
            total += 1;
            true
        });
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(next, [2000; 4]);
}
