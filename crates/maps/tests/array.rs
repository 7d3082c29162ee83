//! Array and per-CPU array semantics.

mod common;
use common::*;

use std::ops::ControlFlow;

use bpfvm_maps::*;

#[test]
fn array_basics() {
    let m = mk(MapType::Array, 4, 12, 4);
    assert_eq!(m.user_value_size(), 12);
    let mut out = [0xffu8; 12];
    m.lookup_user(&k32(3), &mut out, 0).unwrap();
    assert_eq!(out, [0; 12], "values start zeroed");
    m.update_user(&k32(1), &[7; 12], BPF_ANY).unwrap();
    m.update_user(&k32(1), &[8; 12], BPF_EXIST).unwrap();
    m.lookup_user(&k32(1), &mut out, 0).unwrap();
    assert_eq!(out, [8; 12]);
    assert_eq!(errno(m.update_user(&k32(1), &[8; 12], BPF_NOEXIST)), EEXIST);
    assert_eq!(errno(m.update_user(&k32(4), &[8; 12], BPF_ANY)), E2BIG);
    assert_eq!(errno(m.update_user(&k32(1), &[8; 12], 3)), EINVAL);
    assert_eq!(errno(m.update_user(&k32(1), &[8; 12], 8)), EINVAL);
    assert_eq!(errno(m.update_user(&k32(1), &[8; 12], BPF_F_LOCK)), EINVAL);
    assert_eq!(errno(m.update_user(&k32(1), &[8; 11], BPF_ANY)), EINVAL);
    assert_eq!(errno(m.lookup_user(&k32(4), &mut out, 0)), ENOENT);
    assert_eq!(errno(m.delete_user(&k32(1))), EINVAL);
    assert_eq!(errno(m.delete(&k32(1))), EINVAL);
    assert_eq!(m.entries(), 4);

    // Program side: pointers at stable, 8-aligned addresses; writes are visible to user space.
    let p = m.lookup(&k32(2), 0).unwrap();
    assert_eq!(p as usize % 8, 0);
    assert_eq!(m.lookup(&k32(2), 0), Some(p));
    assert!(m.lookup(&k32(4), 0).is_none());
    // SAFETY: p points at a 12-byte value.
    unsafe { p.write_bytes(0x5a, 12) };
    m.lookup_user(&k32(2), &mut out, 0).unwrap();
    assert_eq!(out, [0x5a; 12]);
    m.update(&k32(0), &[1; 12], BPF_ANY, 0).unwrap();
    m.lookup_user(&k32(0), &mut out, 0).unwrap();
    assert_eq!(out, [1; 12]);
}

#[test]
fn array_get_next_key() {
    let m = mk(MapType::Array, 4, 4, 3);
    let mut next = [0u8; 4];
    m.get_next_key(None, &mut next).unwrap();
    assert_eq!(next, k32(0));
    m.get_next_key(Some(&k32(0)), &mut next).unwrap();
    assert_eq!(next, k32(1));
    // The last index ends the walk; an index past the end restarts it.
    assert_eq!(errno(m.get_next_key(Some(&k32(2)), &mut next)), ENOENT);
    m.get_next_key(Some(&k32(100)), &mut next).unwrap();
    assert_eq!(next, k32(0));
    assert_eq!(
        keys(m.as_ref()),
        vec![k32(0).to_vec(), k32(1).to_vec(), k32(2).to_vec()]
    );
}

#[test]
fn array_regions_and_for_each() {
    let m = mk(MapType::Array, 4, 12, 5);
    let r = m.value_regions();
    assert_eq!(r.len(), 1);
    let r = r[0];
    assert_eq!(
        (r.stride, r.count, r.value_size, r.writable_by_prog),
        (16, 5, 12, true)
    );
    let p = m.lookup(&k32(3), 0).unwrap() as usize;
    assert!(r.contains(p, 12));
    assert!(r.contains(p + 4, 8));
    assert!(!r.contains(p + 4, 9), "past the value");
    assert!(!r.contains(p + 12, 1), "padding");
    assert!(!r.contains(r.base as usize + 5 * 16, 1), "past the end");

    let mut seen = Vec::new();
    let n = m
        .for_each(0, &mut |k, v| {
            let i = u32::from_ne_bytes(k.try_into().unwrap());
            // SAFETY: v points at a live value.
            unsafe { v.write(i as u8 + 1) };
            seen.push(i);
            if i == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(seen, [0, 1, 2]);
    let mut out = [0u8; 12];
    m.lookup_user(&k32(2), &mut out, 0).unwrap();
    assert_eq!(out[0], 3);
    m.lookup_user(&k32(3), &mut out, 0).unwrap();
    assert_eq!(out[0], 0);
}

#[test]
fn percpu_array_layout() {
    let ncpus = 3;
    let m = create_map(&MapAttr::new(MapType::PercpuArray, 4, 12, 2), ncpus).unwrap();
    assert_eq!(m.user_value_size(), 3 * 16);
    // Each CPU has its own value.
    for cpu in 0..ncpus {
        m.update(&k32(1), &[cpu as u8 + 1; 12], BPF_ANY, cpu)
            .unwrap();
    }
    assert!(m.lookup(&k32(1), 3).is_none(), "cpu out of range");
    assert_eq!(errno(m.update(&k32(1), &[0; 12], BPF_ANY, 3)), EINVAL);
    let mut out = vec![0xeeu8; 48];
    m.lookup_user(&k32(1), &mut out, 0).unwrap();
    for cpu in 0..ncpus {
        assert_eq!(&out[cpu * 16..cpu * 16 + 12], &[cpu as u8 + 1; 12]);
        assert_eq!(
            &out[cpu * 16 + 12..cpu * 16 + 16],
            &[0; 4],
            "padding is zeroed"
        );
    }
    // User-space update writes every CPU's value.
    let mut vals = vec![0u8; 48];
    for cpu in 0..ncpus {
        vals[cpu * 16..cpu * 16 + 12].fill(0x10 + cpu as u8);
    }
    m.update_user(&k32(0), &vals, BPF_ANY).unwrap();
    for cpu in 0..ncpus {
        let p = m.lookup(&k32(0), cpu).unwrap();
        // SAFETY: p points at a 12-byte value.
        assert_eq!(unsafe { p.read() }, 0x10 + cpu as u8);
    }
    assert_eq!(errno(m.update_user(&k32(0), &vals[..12], BPF_ANY)), EINVAL);
    assert_eq!(errno(m.update_user(&k32(0), &vals, BPF_F_LOCK)), EINVAL);
    let r = m.value_regions()[0];
    assert_eq!((r.stride, r.count, r.value_size), (16, 6, 12));
    assert!(r.contains(m.lookup(&k32(1), 2).unwrap() as usize, 12));
}

#[test]
fn freeze_and_access_flags() {
    let m = mk(MapType::Array, 4, 4, 2);
    m.update_user(&k32(0), &[1; 4], BPF_ANY).unwrap();
    m.freeze().unwrap();
    assert!(m.is_frozen());
    assert_eq!(
        errno(m.freeze()),
        EPERM,
        "the kernel's answer for a second freeze"
    );
    assert_eq!(errno(m.update_user(&k32(0), &[2; 4], BPF_ANY)), EPERM);
    // Programs may still write a frozen map; user space still reads it.
    m.update(&k32(0), &[3; 4], BPF_ANY, 0).unwrap();
    let mut out = [0u8; 4];
    m.lookup_user(&k32(0), &mut out, 0).unwrap();
    assert_eq!(out, [3; 4]);

    let ro = mk_flags(MapType::Array, 4, 4, 2, BPF_F_RDONLY);
    assert_eq!(errno(ro.update_user(&k32(0), &[2; 4], BPF_ANY)), EPERM);
    assert_eq!(errno(ro.freeze()), EPERM);
    ro.lookup_user(&k32(0), &mut out, 0).unwrap();

    let wo = mk_flags(MapType::Array, 4, 4, 2, BPF_F_WRONLY);
    wo.update_user(&k32(0), &[2; 4], BPF_ANY).unwrap();
    assert_eq!(errno(wo.lookup_user(&k32(0), &mut out, 0)), EPERM);
    assert_eq!(errno(wo.get_next_key(None, &mut out)), EPERM);

    let rdprog = mk_flags(MapType::Array, 4, 4, 2, BPF_F_RDONLY_PROG);
    assert_eq!(errno(rdprog.update(&k32(0), &[2; 4], BPF_ANY, 0)), EPERM);
    rdprog.update_user(&k32(0), &[2; 4], BPF_ANY).unwrap();
    assert!(!rdprog.value_regions()[0].writable_by_prog);
}

#[test]
fn spin_lock_field_is_preserved() {
    let mut attr = MapAttr::new(MapType::Array, 4, 16, 1);
    attr.spin_lock_off = Some(8);
    let m = create_map(&attr, 2).unwrap();
    let p = m.lookup(&k32(0), 0).unwrap();
    m.update_user(&k32(0), &[9; 16], BPF_F_LOCK).unwrap();
    let mut out = [0xffu8; 16];
    m.lookup_user(&k32(0), &mut out, BPF_F_LOCK).unwrap();
    let mut want = [9u8; 16];
    want[8..12].fill(0);
    assert_eq!(out, want, "the lock word is neither written nor shown");
    // SAFETY: p + 8 is the lock word of a live value.
    unsafe {
        assert_eq!((p.add(8) as *const u32).read(), 0, "lock released");
        bpf_spin_lock(p.add(8));
        assert_eq!((p.add(8) as *const u32).read(), 1);
        bpf_spin_unlock(p.add(8));
    }
    assert_eq!(errno(m.lookup_user(&k32(0), &mut out, 1)), EINVAL);
}
