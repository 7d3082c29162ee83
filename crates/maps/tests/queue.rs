//! Queue and stack maps: FIFO/LIFO order, overwrite with BPF_EXIST, errno.

mod common;
use common::*;

use bpfvm_maps::*;

fn pop(m: &dyn MapOps) -> Option<u32> {
    let mut out = [0u8; 4];
    m.pop(&mut out).ok().map(|_| u32::from_ne_bytes(out))
}

#[test]
fn queue_fifo_and_overwrite() {
    let m = mk(MapType::Queue, 0, 4, 3);
    let mut out = [0u8; 4];
    assert_eq!(errno(m.pop(&mut out)), ENOENT);
    assert_eq!(errno(m.peek(&mut out)), ENOENT);
    for v in 1..=3 {
        m.push(&k32(v), BPF_ANY).unwrap();
    }
    assert_eq!(m.entries(), 3);
    assert_eq!(errno(m.push(&k32(4), BPF_ANY)), E2BIG);
    assert_eq!(errno(m.push(&k32(4), BPF_NOEXIST)), EINVAL);
    assert_eq!(errno(m.push(&k32(4), 4)), EINVAL);
    // BPF_EXIST drops the oldest (1).
    m.push(&k32(4), BPF_EXIST).unwrap();
    m.peek(&mut out).unwrap();
    assert_eq!(u32::from_ne_bytes(out), 2);
    assert_eq!(
        [
            pop(m.as_ref()),
            pop(m.as_ref()),
            pop(m.as_ref()),
            pop(m.as_ref())
        ],
        [Some(2), Some(3), Some(4), None]
    );
    // Wrap the ring a few times.
    for v in 0..20 {
        m.push(&k32(v), BPF_EXIST).unwrap();
    }
    assert_eq!(
        [pop(m.as_ref()), pop(m.as_ref()), pop(m.as_ref())],
        [Some(17), Some(18), Some(19)]
    );
}

#[test]
fn stack_lifo_and_overwrite() {
    let m = mk(MapType::Stack, 0, 4, 3);
    for v in 1..=3 {
        m.push(&k32(v), BPF_ANY).unwrap();
    }
    assert_eq!(errno(m.push(&k32(4), BPF_ANY)), E2BIG);
    // BPF_EXIST drops the oldest (1), not the top.
    m.push(&k32(4), BPF_EXIST).unwrap();
    let mut out = [0u8; 4];
    m.peek(&mut out).unwrap();
    assert_eq!(u32::from_ne_bytes(out), 4);
    assert_eq!(
        [
            pop(m.as_ref()),
            pop(m.as_ref()),
            pop(m.as_ref()),
            pop(m.as_ref())
        ],
        [Some(4), Some(3), Some(2), None]
    );
}

#[test]
fn syscall_side() {
    let m = mk(MapType::Queue, 0, 4, 2);
    let mut out = [0u8; 4];
    // update = push, lookup = peek, lookup_and_delete = pop; keys are empty.
    m.update_user(&[], &k32(7), BPF_ANY).unwrap();
    m.update_user(&[], &k32(8), BPF_ANY).unwrap();
    m.lookup_user(&[], &mut out, 0).unwrap();
    assert_eq!(out, k32(7));
    m.lookup_and_delete(None, &mut out, 0).unwrap();
    assert_eq!(out, k32(7));
    assert_eq!(
        errno(m.lookup_and_delete(None, &mut out, BPF_F_LOCK)),
        EINVAL
    );
    assert_eq!(errno(m.update_user(&k32(0), &k32(7), BPF_ANY)), EINVAL);
    assert_eq!(errno(m.delete_user(&[])), EINVAL);
    assert_eq!(errno(m.get_next_key(None, &mut out)), EINVAL);
    assert_eq!(errno(m.update(&[], &k32(1), BPF_ANY, 0)), EINVAL);
    assert!(m.lookup(&[], 0).is_none());
    assert!(m.value_regions().is_empty());
    m.freeze().unwrap();
    assert_eq!(errno(m.update_user(&[], &k32(9), BPF_ANY)), EPERM);
    // Programs still push after a freeze.
    m.push(&k32(9), BPF_ANY).unwrap();
    assert_eq!(m.entries(), 2);
}
