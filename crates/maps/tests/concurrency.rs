//! Several threads at once: index consistency, and atomic increments through the pointers
//! lookup returns give exact totals.

mod common;
use common::*;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use bpfvm_maps::*;

const THREADS: u32 = 4;

fn atomic(p: *mut u8) -> &'static AtomicU64 {
    // SAFETY: p comes from lookup on a map the test keeps alive; values are 8-byte aligned.
    unsafe { AtomicU64::from_ptr(p.cast()) }
}

#[test]
fn hash_hammered_by_four_threads() {
    let m = mk(MapType::Hash, 8, 8, 4096);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let m = m.clone();
            thread::spawn(move || {
                for round in 0..20u64 {
                    for i in 0..500u64 {
                        let key = ((t as u64) << 32 | i).to_ne_bytes();
                        m.update(&key, &v64(round * 1000 + i), BPF_ANY, 0).unwrap();
                    }
                    for i in (0..500u64).step_by(2) {
                        let key = ((t as u64) << 32 | i).to_ne_bytes();
                        if round < 19 {
                            m.delete(&key).unwrap();
                        }
                    }
                    for i in 0..500u64 {
                        let key = ((t as u64) << 32 | i).to_ne_bytes();
                        let got = m.lookup(&key, 0).map(read_u64);
                        if i % 2 == 1 || round == 19 {
                            assert_eq!(got, Some(round * 1000 + i));
                        } else {
                            assert_eq!(got, None);
                        }
                    }
                    // Shared keys contended by everyone.
                    let _ = m.update(&u64::MAX.to_ne_bytes(), &v64(t as u64), BPF_NOEXIST, 0);
                    let _ = m.delete(&u64::MAX.to_ne_bytes());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let n = keys(m.as_ref()).len() as u64;
    assert_eq!(n, m.entries());
    assert!(n == 2000 || n == 2001, "{n}");
    for t in 0..THREADS as u64 {
        for i in 0..500u64 {
            let mut out = [0u8; 8];
            m.lookup_user(&(t << 32 | i).to_ne_bytes(), &mut out, 0)
                .unwrap();
            assert_eq!(u64::from_ne_bytes(out), 19_000 + i);
        }
    }
}

#[test]
fn atomic_increments_are_exact() {
    const N: u64 = 100_000;
    let array = mk(MapType::Array, 4, 8, 4);
    let hash = mk(MapType::Hash, 4, 16, 4);
    hash.update_user(&k32(9), &[0; 16], BPF_ANY).unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (array, hash) = (array.clone(), hash.clone());
            thread::spawn(move || {
                for i in 0..N {
                    // A fresh lookup each time, as a program would.
                    atomic(array.lookup(&k32(2), 0).unwrap()).fetch_add(1, Ordering::Relaxed);
                    let p = hash.lookup(&k32(9), 0).unwrap();
                    atomic(p).fetch_add(2, Ordering::Relaxed);
                    // SAFETY: the second word of the 16-byte value.
                    atomic(unsafe { p.add(8) }).fetch_add(i & 1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // User space reads while the programs run (values may be mid-update, never invalid).
    for _ in 0..1000 {
        let mut out = [0u8; 8];
        array.lookup_user(&k32(2), &mut out, 0).unwrap();
        assert!(u64::from_ne_bytes(out) <= THREADS as u64 * N);
    }
    for h in handles {
        h.join().unwrap();
    }
    let mut out = [0u8; 8];
    array.lookup_user(&k32(2), &mut out, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(out), THREADS as u64 * N);
    let mut out = [0u8; 16];
    hash.lookup_user(&k32(9), &mut out, 0).unwrap();
    assert_eq!(
        u64::from_ne_bytes(out[..8].try_into().unwrap()),
        2 * THREADS as u64 * N
    );
    assert_eq!(
        u64::from_ne_bytes(out[8..].try_into().unwrap()),
        THREADS as u64 * N / 2
    );
}

#[test]
fn percpu_counters_sum_up() {
    const N: u64 = 50_000;
    let m = create_map(
        &MapAttr::new(MapType::PercpuHash, 4, 8, 4),
        THREADS as usize,
    )
    .unwrap();
    m.update_user(&k32(1), &vec![0; 8 * THREADS as usize], BPF_ANY)
        .unwrap();
    let handles: Vec<_> = (0..THREADS as usize)
        .map(|cpu| {
            let m = m.clone();
            thread::spawn(move || {
                for _ in 0..N {
                    // Each simulated CPU touches only its own slot: no atomics needed in the
                    // kernel; here fetch_add just keeps the test simple.
                    atomic(m.lookup(&k32(1), cpu).unwrap()).fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut out = vec![0u8; 8 * THREADS as usize];
    m.lookup_user(&k32(1), &mut out, 0).unwrap();
    for cpu in 0..THREADS as usize {
        assert_eq!(
            u64::from_ne_bytes(out[cpu * 8..cpu * 8 + 8].try_into().unwrap()),
            N
        );
    }
}

#[test]
fn lru_under_contention() {
    let m = mk(MapType::LruHash, 4, 8, 128);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let m: Arc<dyn MapOps> = m.clone();
            thread::spawn(move || {
                for i in 0..20_000u32 {
                    let key = k32(t * 1_000_000 + i % 300);
                    if m.lookup(&key, 0).is_none() {
                        m.update(&key, &v64(i as u64), BPF_ANY, 0).unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(m.entries(), 128);
    assert_eq!(keys(m.as_ref()).len(), 128);
}

#[test]
fn queue_from_many_threads() {
    let m = mk(MapType::Queue, 0, 8, 100_000);
    let handles: Vec<_> = (0..THREADS as u64)
        .map(|t| {
            let m = m.clone();
            thread::spawn(move || {
                for i in 0..10_000u64 {
                    m.push(&v64(t << 32 | i), BPF_ANY).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut next = [0u64; THREADS as usize];
    let mut out = [0u8; 8];
    while m.pop(&mut out).is_ok() {
        let v = u64::from_ne_bytes(out);
        let t = (v >> 32) as usize;
        assert_eq!(v & 0xffff_ffff, next[t], "per-thread FIFO order");
        next[t] += 1;
    }
    assert_eq!(next, [10_000; THREADS as usize]);
}
