//! Hash, per-CPU hash, LRU hash and LRU per-CPU hash semantics.

mod common;
use common::*;

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use bpfvm_maps::*;

#[test]
fn hash_basics_and_flags() {
    let m = mk(MapType::Hash, 4, 8, 4);
    let mut out = [0u8; 8];
    assert!(m.lookup(&k32(1), 0).is_none());
    assert_eq!(errno(m.lookup_user(&k32(1), &mut out, 0)), ENOENT);
    assert_eq!(errno(m.update_user(&k32(1), &v64(1), BPF_EXIST)), ENOENT);
    m.update_user(&k32(1), &v64(10), BPF_NOEXIST).unwrap();
    assert_eq!(errno(m.update_user(&k32(1), &v64(11), BPF_NOEXIST)), EEXIST);
    m.update_user(&k32(1), &v64(12), BPF_EXIST).unwrap();
    m.lookup_user(&k32(1), &mut out, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 12);
    assert_eq!(
        errno(m.update_user(&k32(1), &v64(1), BPF_NOEXIST | BPF_EXIST)),
        EINVAL
    );
    assert_eq!(errno(m.update_user(&k32(1), &v64(1), 16)), EINVAL);
    assert_eq!(errno(m.update_user(&k32(1), &v64(1), BPF_F_LOCK)), EINVAL);
    assert_eq!(errno(m.update_user(&[1, 2], &v64(1), BPF_ANY)), EINVAL);
    assert_eq!(errno(m.update_user(&k32(1), &[0; 4], BPF_ANY)), EINVAL);

    for k in 2..=4 {
        m.update(&k32(k), &v64(k as u64 * 100), BPF_ANY, 0).unwrap();
    }
    assert_eq!(m.entries(), 4);
    let e = m.update_user(&k32(5), &v64(5), BPF_ANY).unwrap_err();
    assert_eq!(e.errno(), E2BIG);
    assert!(e.to_string().contains("full"), "{e}");
    // Updating an existing key in a full map is fine.
    m.update_user(&k32(4), &v64(44), BPF_ANY).unwrap();

    let p = m.lookup(&k32(3), 0).unwrap();
    assert_eq!(p as usize % 8, 0);
    assert_eq!(read_u64(p), 300);
    m.delete_user(&k32(3)).unwrap();
    assert_eq!(errno(m.delete_user(&k32(3))), ENOENT);
    assert_eq!(errno(m.delete(&k32(3))), ENOENT);
    assert_eq!(m.entries(), 3);
    // The freed element is reused: the old pointer stays valid memory and now holds the
    // new element's value.
    m.update_user(&k32(9), &v64(999), BPF_ANY).unwrap();
    assert_eq!(m.lookup(&k32(9), 0), Some(p));
    assert_eq!(read_u64(p), 999);
    let r = m.value_regions()[0];
    assert!(r.contains(p as usize, 8));
    assert_eq!((r.stride, r.count, r.value_size), (8, 4, 8));
}

#[test]
fn hash_get_next_key_order() {
    let m = mk(MapType::Hash, 4, 4, 1);
    m.update_user(&k32(1), &k32(0), BPF_ANY).unwrap();
    assert_eq!(keys(m.as_ref()), vec![k32(1).to_vec()]);
    let m = mk(MapType::Hash, 4, 4, 3);
    assert!(keys(m.as_ref()).is_empty());
    let mut next = [0u8; 4];
    assert_eq!(errno(m.get_next_key(None, &mut next)), ENOENT);

    let m = mk(MapType::Hash, 8, 4, 1000);
    let mut want = BTreeSet::new();
    for k in 0..700u64 {
        let key = (k * 7919).to_ne_bytes();
        m.update_user(&key, &k32(k as u32), BPF_ANY).unwrap();
        want.insert(key.to_vec());
    }
    let walk = keys(m.as_ref());
    assert_eq!(walk.len(), 700);
    assert_eq!(walk.iter().cloned().collect::<BTreeSet<_>>(), want);
    // A key that is not in the map restarts from the first key.
    let mut next = [0u8; 8];
    m.get_next_key(Some(&u64::MAX.to_ne_bytes()), &mut next)
        .unwrap();
    assert_eq!(next.to_vec(), walk[0]);
    // Deterministic: a second map with the same inserts walks the same way.
    let m2 = mk(MapType::Hash, 8, 4, 1000);
    for k in 0..700u64 {
        m2.update_user(&(k * 7919).to_ne_bytes(), &k32(0), BPF_ANY)
            .unwrap();
    }
    assert_eq!(keys(m2.as_ref()), walk);
}

#[test]
fn hash_for_each_may_delete() {
    let m = mk(MapType::Hash, 4, 8, 16);
    for k in 0..10 {
        m.update_user(&k32(k), &v64(k as u64), BPF_ANY).unwrap();
    }
    let mut sum = 0;
    let mm = m.clone();
    let n = m
        .for_each(0, &mut |k, v| {
            sum += read_u64(v);
            if u32::from_ne_bytes(k.try_into().unwrap()) % 2 == 0 {
                mm.delete(k).unwrap();
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(n, 10);
    assert_eq!(sum, 45);
    assert_eq!(m.entries(), 5);
    let n = m.for_each(0, &mut |_, _| ControlFlow::Break(())).unwrap();
    assert_eq!(n, 1);
}

#[test]
fn hash_lookup_and_delete() {
    let m = mk(MapType::Hash, 4, 8, 4);
    m.update_user(&k32(1), &v64(5), BPF_ANY).unwrap();
    let mut out = [0u8; 8];
    m.lookup_and_delete(Some(&k32(1)), &mut out, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 5);
    assert_eq!(
        errno(m.lookup_and_delete(Some(&k32(1)), &mut out, 0)),
        ENOENT
    );
    assert_eq!(m.entries(), 0);
}

#[test]
fn hash_spin_lock_value() {
    let mut attr = MapAttr::new(MapType::Hash, 4, 8, 2);
    attr.spin_lock_off = Some(0);
    let m = create_map(&attr, 2).unwrap();
    m.update_user(&k32(1), &[0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4], BPF_ANY)
        .unwrap();
    let p = m.lookup(&k32(1), 0).unwrap();
    // SAFETY: p points at the 8-byte value, lock word first.
    assert_eq!(
        unsafe { (p as *const u32).read() },
        0,
        "the lock word is not copied in"
    );
    m.update_user(&k32(1), &[0, 0, 0, 0, 5, 6, 7, 8], BPF_F_LOCK | BPF_EXIST)
        .unwrap();
    let mut out = [0u8; 8];
    m.lookup_user(&k32(1), &mut out, BPF_F_LOCK).unwrap();
    assert_eq!(out, [0, 0, 0, 0, 5, 6, 7, 8]);
}

#[test]
fn percpu_hash_layout() {
    let ncpus = 4;
    let m = create_map(&MapAttr::new(MapType::PercpuHash, 4, 4, 8), ncpus).unwrap();
    assert_eq!(m.user_value_size(), 32);
    // Program-side insert on CPU 2: the other CPUs start at zero.
    m.update(&k32(7), &k32(0xabcd), BPF_ANY, 2).unwrap();
    let mut out = vec![0xffu8; 32];
    m.lookup_user(&k32(7), &mut out, 0).unwrap();
    let mut want = vec![0u8; 32];
    want[16..20].copy_from_slice(&k32(0xabcd));
    assert_eq!(out, want);
    // Updating an existing element from a program touches only that CPU.
    m.update(&k32(7), &k32(1), BPF_EXIST, 0).unwrap();
    m.lookup_user(&k32(7), &mut out, 0).unwrap();
    want[0..4].copy_from_slice(&k32(1));
    assert_eq!(out, want);
    // User space writes all CPUs at once.
    let mut vals = vec![0u8; 32];
    for cpu in 0..ncpus {
        vals[cpu * 8..cpu * 8 + 4].copy_from_slice(&k32(100 + cpu as u32));
        vals[cpu * 8 + 4..cpu * 8 + 8].fill(0xee); // padding is ignored
    }
    m.update_user(&k32(8), &vals, BPF_ANY).unwrap();
    for cpu in 0..ncpus {
        let p = m.lookup(&k32(8), cpu).unwrap();
        // SAFETY: p points at a 4-byte value.
        assert_eq!(unsafe { (p as *const u32).read() }, 100 + cpu as u32);
    }
    m.lookup_user(&k32(8), &mut out, 0).unwrap();
    for cpu in 0..ncpus {
        assert_eq!(&out[cpu * 8 + 4..cpu * 8 + 8], &[0; 4]);
    }
    assert!(m.lookup(&k32(8), ncpus).is_none());
    assert_eq!(errno(m.update_user(&k32(8), &vals[..8], BPF_ANY)), EINVAL);
    let r = m.value_regions()[0];
    assert_eq!((r.stride, r.count, r.value_size), (8, 32, 4));
    let mut seen = 0;
    m.for_each(3, &mut |_, v| {
        // SAFETY: v points at CPU 3's 4-byte value.
        seen += unsafe { (v as *const u32).read() };
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(seen, 103);
}

#[test]
fn lru_evicts_least_recently_used() {
    let m = mk(MapType::LruHash, 4, 8, 3);
    for k in 1..=3 {
        m.update_user(&k32(k), &v64(k as u64), BPF_ANY).unwrap();
    }
    // Program lookup makes 1 the most recently used: 2 is now the oldest.
    assert!(m.lookup(&k32(1), 0).is_some());
    m.update_user(&k32(4), &v64(4), BPF_ANY).unwrap();
    assert_eq!(m.entries(), 3);
    let mut out = [0u8; 8];
    assert_eq!(errno(m.lookup_user(&k32(2), &mut out, 0)), ENOENT);
    // A user-space lookup does not count as a use (as in the kernel): 3 goes next.
    m.lookup_user(&k32(3), &mut out, 0).unwrap();
    m.update_user(&k32(5), &v64(5), BPF_ANY).unwrap();
    assert_eq!(errno(m.lookup_user(&k32(3), &mut out, 0)), ENOENT);
    // Updating an existing key makes it recent: 1 survives, 4 goes.
    m.update(&k32(1), &v64(11), BPF_EXIST, 0).unwrap();
    m.update_user(&k32(6), &v64(6), BPF_ANY).unwrap();
    assert_eq!(errno(m.lookup_user(&k32(4), &mut out, 0)), ENOENT);
    let mut left: Vec<u32> = keys(m.as_ref())
        .iter()
        .map(|k| u32::from_ne_bytes(k[..].try_into().unwrap()))
        .collect();
    left.sort();
    assert_eq!(left, [1, 5, 6]);
    // Deleting frees a slot: no eviction for the next insert.
    m.delete_user(&k32(5)).unwrap();
    m.update_user(&k32(7), &v64(7), BPF_ANY).unwrap();
    for k in [1, 6, 7] {
        m.lookup_user(&k32(k), &mut out, 0).unwrap();
    }
    // BPF_NOEXIST still fails on an existing key, BPF_EXIST on a missing one.
    assert_eq!(errno(m.update_user(&k32(7), &v64(0), BPF_NOEXIST)), EEXIST);
    assert_eq!(errno(m.update_user(&k32(8), &v64(0), BPF_EXIST)), ENOENT);
}

#[test]
fn lru_long_run_keeps_the_newest() {
    let m = mk_flags(MapType::LruHash, 4, 8, 64, BPF_F_NO_COMMON_LRU);
    for k in 0..1000u32 {
        m.update(&k32(k), &v64(k as u64), BPF_ANY, 0).unwrap();
    }
    assert_eq!(m.entries(), 64);
    for k in 936..1000u32 {
        assert_eq!(read_u64(m.lookup(&k32(k), 0).unwrap()), k as u64);
    }
    assert!(m.lookup(&k32(935), 0).is_none());
}

#[test]
fn no_common_lru_rounds_max_entries() {
    // Like the kernel: a multiple of the CPU count, so each CPU's list gets the same share.
    let m = create_map(
        &MapAttr::new(MapType::LruHash, 4, 4, 5).with_flags(BPF_F_NO_COMMON_LRU),
        4,
    )
    .unwrap();
    assert_eq!(m.attr().max_entries, 8);
    for k in 0..8 {
        m.update_user(&k32(k), &k32(k), BPF_NOEXIST).unwrap();
    }
    assert_eq!(m.entries(), 8);
    let big = create_map(
        &MapAttr::new(MapType::LruHash, 4, 4, u32::MAX - 1).with_flags(BPF_F_NO_COMMON_LRU),
        4,
    );
    assert_eq!(big.err().map(|e| e.errno()), Some(ENOMEM));
}

#[test]
fn lru_percpu() {
    let m = create_map(&MapAttr::new(MapType::LruPercpuHash, 4, 8, 2), 2).unwrap();
    m.update(&k32(1), &v64(1), BPF_ANY, 1).unwrap();
    m.update(&k32(2), &v64(2), BPF_ANY, 0).unwrap();
    m.update(&k32(3), &v64(3), BPF_ANY, 0).unwrap();
    let mut out = [0u8; 16];
    assert_eq!(errno(m.lookup_user(&k32(1), &mut out, 0)), ENOENT);
    m.lookup_user(&k32(3), &mut out, 0).unwrap();
    assert_eq!(out[..8], v64(3));
    assert_eq!(
        out[8..],
        v64(0),
        "a reused element has the other CPUs zeroed"
    );
}

#[test]
fn devmap_hash() {
    let m = mk(MapType::DevmapHash, 4, 8, 2);
    let mut v = [0u8; 8];
    v[..4].copy_from_slice(&k32(3));
    v[4..].copy_from_slice(&(-1i32).to_ne_bytes());
    m.update_user(&k32(10), &v, BPF_ANY).unwrap();
    assert_eq!(
        m.devmap_entry(10),
        Some(DevmapVal {
            ifindex: 3,
            prog_id: 0
        })
    );
    assert_eq!(m.devmap_entry(11), None);
    let mut out = [0u8; 8];
    m.lookup_user(&k32(10), &mut out, 0).unwrap();
    assert_eq!(out, [3, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        errno(m.update_user(&k32(11), &[0; 8], BPF_ANY)),
        EINVAL,
        "ifindex 0"
    );
    assert_eq!(errno(m.update_user(&k32(11), &v, 4)), EINVAL);
    m.update_user(&k32(11), &v, BPF_ANY).unwrap();
    assert_eq!(errno(m.update_user(&k32(12), &v, BPF_ANY)), E2BIG);
    assert_eq!(errno(m.update(&k32(12), &v, BPF_ANY, 0)), ENOTSUPP);
    assert!(!m.value_regions()[0].writable_by_prog);
    m.delete_user(&k32(11)).unwrap();
    assert_eq!(errno(m.delete_user(&k32(11))), ENOENT);
}
