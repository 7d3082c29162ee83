//! prog_array, array_of_maps, hash_of_maps, devmap and cpumap.

mod common;
use common::*;

use std::sync::Arc;

use bpfvm_maps::*;

struct FakeProg(&'static str);

#[test]
fn prog_array_slots() {
    let m = mk(MapType::ProgArray, 4, 4, 4);
    let pa = m.as_prog_array().unwrap();
    let prog: ProgObject = Arc::new(FakeProg("tail"));
    assert!(pa.get(1).is_none());
    m.update_fd(&k32(1), 42, FdObject::Prog(prog.clone()), BPF_ANY)
        .unwrap();
    let got = pa.get(1).unwrap();
    assert_eq!(got.downcast_ref::<FakeProg>().unwrap().0, "tail");
    assert_eq!(pa.get_id(1), Some(42));
    assert!(pa.get(9).is_none());
    let mut out = [0u8; 4];
    m.lookup_user(&k32(1), &mut out, 0).unwrap();
    assert_eq!(out, k32(42), "user space sees the program id");
    assert_eq!(errno(m.lookup_user(&k32(0), &mut out, 0)), ENOENT);
    assert_eq!(
        errno(m.update_fd(&k32(1), 1, FdObject::Prog(prog.clone()), BPF_NOEXIST)),
        EINVAL
    );
    assert_eq!(
        errno(m.update_fd(&k32(4), 1, FdObject::Prog(prog.clone()), BPF_ANY)),
        E2BIG
    );
    let inner = mk(MapType::Array, 4, 4, 1);
    assert_eq!(
        errno(m.update_fd(&k32(0), 1, FdObject::Map(inner), BPF_ANY)),
        EINVAL
    );
    assert_eq!(errno(m.update_user(&k32(0), &k32(3), BPF_ANY)), EINVAL);
    assert!(
        m.lookup(&k32(1), 0).is_none(),
        "programs use bpf_tail_call, not lookup"
    );
    assert_eq!(keys(m.as_ref()).len(), 4, "array walk over every index");
    m.delete_user(&k32(1)).unwrap();
    assert_eq!(errno(m.delete_user(&k32(1))), ENOENT);
    assert_eq!(errno(m.delete_user(&k32(7))), E2BIG);
    m.update_fd(&k32(2), 43, FdObject::Prog(prog.clone()), BPF_ANY)
        .unwrap();
    m.update_fd(&k32(3), 44, FdObject::Prog(prog), BPF_ANY)
        .unwrap();
    pa.clear();
    assert!(pa.get(2).is_none() && pa.get(3).is_none());
}

#[test]
fn array_of_maps() {
    let template = mk(MapType::Hash, 4, 8, 16);
    let outer = create_map(
        &MapAttr::new(MapType::ArrayOfMaps, 4, 4, 2).with_inner(template),
        2,
    )
    .unwrap();
    let inner = mk(MapType::Hash, 4, 8, 16);
    inner.update_user(&k32(5), &v64(55), BPF_ANY).unwrap();
    outer
        .update_fd(&k32(1), 7, FdObject::Map(inner.clone()), BPF_ANY)
        .unwrap();
    // Program side: a read-only pointer to the inner map id.
    let p = outer.lookup(&k32(1), 0).unwrap();
    // SAFETY: p points at the id slot.
    assert_eq!(unsafe { (p as *const u32).read() }, 7);
    assert!(!outer.value_regions()[0].writable_by_prog);
    assert!(outer.lookup(&k32(0), 0).is_none());
    let got = outer.lookup_inner(&k32(1)).unwrap();
    assert!(Arc::ptr_eq(&got, &inner));
    let mut out = [0u8; 8];
    got.lookup_user(&k32(5), &mut out, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(out), 55);
    let mut id = [0u8; 4];
    outer.lookup_user(&k32(1), &mut id, 0).unwrap();
    assert_eq!(id, k32(7));
    // Incompatible inner maps.
    for bad in [
        mk(MapType::Hash, 4, 4, 16),
        mk(MapType::Hash, 8, 8, 16),
        mk(MapType::Hash, 4, 8, 17),
        mk(MapType::Array, 4, 8, 16),
        mk_flags(MapType::Hash, 4, 8, 16, BPF_F_NO_PREALLOC),
    ] {
        let e = outer
            .update_fd(&k32(0), 9, FdObject::Map(bad), BPF_ANY)
            .unwrap_err();
        assert_eq!(e.errno(), EINVAL);
        assert!(e.to_string().contains("template"), "{e}");
    }
    assert_eq!(
        errno(outer.update_fd(&k32(0), 9, FdObject::Map(inner.clone()), BPF_EXIST)),
        EINVAL
    );
    assert_eq!(errno(outer.update_user(&k32(0), &k32(7), BPF_ANY)), EINVAL);
    outer.delete_user(&k32(1)).unwrap();
    assert!(outer.lookup(&k32(1), 0).is_none());
    assert!(outer.lookup_inner(&k32(1)).is_none());
    assert_eq!(errno(outer.delete_user(&k32(1))), ENOENT);
}

#[test]
fn inner_map_flag_allows_other_sizes() {
    let template = mk_flags(MapType::Array, 4, 4, 1, BPF_F_INNER_MAP);
    let outer = create_map(
        &MapAttr::new(MapType::HashOfMaps, 8, 4, 4).with_inner(template),
        2,
    )
    .unwrap();
    let inner = mk_flags(MapType::Array, 4, 4, 100, BPF_F_INNER_MAP);
    outer
        .update_fd(&v64(1), 3, FdObject::Map(inner.clone()), BPF_NOEXIST)
        .unwrap();
    assert_eq!(
        errno(outer.update_fd(&v64(1), 3, FdObject::Map(inner.clone()), BPF_NOEXIST)),
        EEXIST
    );
    assert_eq!(
        errno(outer.update_fd(&v64(2), 3, FdObject::Map(inner.clone()), BPF_EXIST)),
        ENOENT
    );
    assert!(Arc::ptr_eq(&outer.lookup_inner(&v64(1)).unwrap(), &inner));
    let p = outer.lookup(&v64(1), 0).unwrap();
    // SAFETY: p points at the id slot.
    assert_eq!(unsafe { (p as *const u32).read() }, 3);
    assert_eq!(keys(outer.as_ref()), vec![v64(1).to_vec()]);
    outer.delete_user(&v64(1)).unwrap();
    assert!(outer.lookup_inner(&v64(1)).is_none());
    // The inner map itself lives on.
    let mut out = [0u8; 4];
    inner.lookup_user(&k32(99), &mut out, 0).unwrap();
}

fn devval(ifindex: u32, prog: i32) -> [u8; 8] {
    let mut v = [0u8; 8];
    v[..4].copy_from_slice(&ifindex.to_ne_bytes());
    v[4..].copy_from_slice(&prog.to_ne_bytes());
    v
}

#[test]
fn devmap() {
    let m = mk(MapType::Devmap, 4, 8, 4);
    m.update_user(&k32(1), &devval(2, 0), BPF_ANY).unwrap();
    m.update_user(&k32(2), &devval(5, 17), BPF_ANY).unwrap();
    assert_eq!(
        m.devmap_entry(1),
        Some(DevmapVal {
            ifindex: 2,
            prog_id: 0
        })
    );
    assert_eq!(
        m.devmap_entry(2),
        Some(DevmapVal {
            ifindex: 5,
            prog_id: 17
        })
    );
    assert_eq!(m.devmap_entry(0), None);
    assert_eq!(m.cpumap_entry(1), None);
    let mut out = [0u8; 8];
    assert_eq!(errno(m.lookup_user(&k32(0), &mut out, 0)), ENOENT);
    m.lookup_user(&k32(2), &mut out, 0).unwrap();
    assert_eq!(out, devval(5, 17));
    assert_eq!(errno(m.update_user(&k32(4), &devval(2, 0), BPF_ANY)), E2BIG);
    assert_eq!(
        errno(m.update_user(&k32(1), &devval(2, 0), BPF_NOEXIST)),
        EEXIST
    );
    assert_eq!(errno(m.update_user(&k32(1), &devval(2, 0), 4)), EINVAL);
    assert_eq!(
        errno(m.update_user(&k32(1), &devval(0, 3), BPF_ANY)),
        EINVAL
    );
    // ifindex 0 clears the slot.
    m.update_user(&k32(1), &devval(0, -1), BPF_ANY).unwrap();
    assert_eq!(m.devmap_entry(1), None);
    // Programs read entries; the walk visits every index like an array.
    let p = m.lookup(&k32(2), 0).unwrap();
    // SAFETY: p points at an 8-byte bpf_devmap_val.
    assert_eq!(unsafe { (p as *const u32).read() }, 5);
    assert!(m.lookup(&k32(1), 0).is_none());
    assert_eq!(keys(m.as_ref()).len(), 4);
    assert_eq!(
        errno(m.update(&k32(1), &devval(2, 0), BPF_ANY, 0)),
        ENOTSUPP
    );
    m.delete_user(&k32(3)).unwrap();
    assert_eq!(errno(m.delete_user(&k32(4))), EINVAL);
    let small = mk(MapType::Devmap, 4, 4, 2);
    small.update_user(&k32(0), &k32(9), BPF_ANY).unwrap();
    assert_eq!(
        small.devmap_entry(0),
        Some(DevmapVal {
            ifindex: 9,
            prog_id: 0
        })
    );
}

#[test]
fn cpumap() {
    let m = create_map(&MapAttr::new(MapType::Cpumap, 4, 8, 8), 2).unwrap();
    m.update_user(&k32(1), &devval(192, 0), BPF_ANY).unwrap();
    assert_eq!(
        m.cpumap_entry(1),
        Some(CpumapVal {
            qsize: 192,
            prog_id: 0
        })
    );
    assert_eq!(m.devmap_entry(1), None);
    assert_eq!(
        errno(m.update_user(&k32(1), &devval(16385, 0), BPF_ANY)),
        EOVERFLOW
    );
    assert_eq!(
        errno(m.update_user(&k32(2), &devval(10, 0), BPF_ANY)),
        ENODEV,
        "only 2 CPUs"
    );
    assert_eq!(
        errno(m.update_user(&k32(8), &devval(10, 0), BPF_ANY)),
        E2BIG
    );
    m.update_user(&k32(1), &devval(0, 0), BPF_ANY).unwrap();
    assert_eq!(m.cpumap_entry(1), None);
}
