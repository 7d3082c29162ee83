//! LPM trie: longest-prefix match, flags, errno, get_next_key post-order.

mod common;
use common::*;

use bpfvm_maps::*;

/// IPv4 LPM key: prefixlen then the address in network byte order.
fn k4(plen: u32, a: [u8; 4]) -> [u8; 8] {
    let mut k = [0u8; 8];
    k[..4].copy_from_slice(&plen.to_ne_bytes());
    k[4..].copy_from_slice(&a);
    k
}

fn trie(max: u32) -> std::sync::Arc<dyn MapOps> {
    mk_flags(MapType::LpmTrie, 8, 4, max, BPF_F_NO_PREALLOC)
}

fn get(m: &dyn MapOps, addr: [u8; 4]) -> Option<u32> {
    let mut out = [0u8; 4];
    m.lookup_user(&k4(32, addr), &mut out, 0).ok()?;
    Some(u32::from_ne_bytes(out))
}

#[test]
fn longest_prefix_match() {
    let m = trie(16);
    m.update_user(&k4(8, [10, 0, 0, 0]), &k32(8), BPF_ANY)
        .unwrap();
    m.update_user(&k4(16, [10, 1, 0, 0]), &k32(16), BPF_ANY)
        .unwrap();
    m.update_user(&k4(24, [10, 1, 2, 0]), &k32(24), BPF_ANY)
        .unwrap();
    m.update_user(&k4(32, [10, 1, 2, 3]), &k32(32), BPF_ANY)
        .unwrap();
    m.update_user(&k4(0, [0, 0, 0, 0]), &k32(0), BPF_ANY)
        .unwrap();
    m.update_user(&k4(9, [192, 128, 0, 0]), &k32(9), BPF_ANY)
        .unwrap();
    assert_eq!(get(m.as_ref(), [10, 1, 2, 3]), Some(32));
    assert_eq!(get(m.as_ref(), [10, 1, 2, 4]), Some(24));
    assert_eq!(get(m.as_ref(), [10, 1, 3, 4]), Some(16));
    assert_eq!(get(m.as_ref(), [10, 2, 3, 4]), Some(8));
    assert_eq!(get(m.as_ref(), [11, 2, 3, 4]), Some(0));
    assert_eq!(get(m.as_ref(), [192, 200, 1, 1]), Some(9));
    assert_eq!(get(m.as_ref(), [192, 127, 1, 1]), Some(0), "bit 9 differs");
    // The lookup key's own prefixlen bounds the match.
    let mut out = [0u8; 4];
    m.lookup_user(&k4(20, [10, 1, 2, 3]), &mut out, 0).unwrap();
    assert_eq!(u32::from_ne_bytes(out), 16);
    // Program side returns a pointer to the matched value.
    let p = m.lookup(&k4(32, [10, 1, 2, 9]), 0).unwrap();
    // SAFETY: p points at a 4-byte value.
    assert_eq!(unsafe { (p as *const u32).read() }, 24);
    // Delete is exact: the prefix must match exactly.
    assert_eq!(errno(m.delete_user(&k4(23, [10, 1, 2, 0]))), ENOENT);
    m.delete_user(&k4(24, [10, 1, 2, 0])).unwrap();
    assert_eq!(get(m.as_ref(), [10, 1, 2, 4]), Some(16));
    m.delete_user(&k4(0, [0, 0, 0, 0])).unwrap();
    assert_eq!(get(m.as_ref(), [11, 2, 3, 4]), None);
    assert_eq!(m.entries(), 4);
}

#[test]
fn bits_past_the_prefix_do_not_matter() {
    let m = trie(4);
    m.update_user(&k4(16, [10, 1, 99, 99]), &k32(1), BPF_ANY)
        .unwrap();
    // Same prefix, other trailing bits: the same entry.
    assert_eq!(
        errno(m.update_user(&k4(16, [10, 1, 0, 0]), &k32(2), BPF_NOEXIST)),
        EEXIST
    );
    m.update_user(&k4(16, [10, 1, 0, 0]), &k32(2), BPF_EXIST)
        .unwrap();
    assert_eq!(m.entries(), 1);
    assert_eq!(get(m.as_ref(), [10, 1, 5, 5]), Some(2));
    let mut next = [0u8; 8];
    m.get_next_key(None, &mut next).unwrap();
    assert_eq!(
        next,
        k4(16, [10, 1, 0, 0]),
        "the key of the last update is kept"
    );
}

#[test]
fn errors() {
    let m = trie(2);
    assert_eq!(
        errno(m.update_user(&k4(33, [1, 2, 3, 4]), &k32(0), BPF_ANY)),
        EINVAL
    );
    assert_eq!(
        errno(m.update_user(&k4(8, [1, 2, 3, 4]), &k32(0), 4)),
        EINVAL
    );
    assert_eq!(
        errno(m.update_user(&k4(8, [1, 2, 3, 4]), &k32(0), BPF_EXIST)),
        ENOENT
    );
    m.update_user(&k4(8, [1, 0, 0, 0]), &k32(0), BPF_ANY)
        .unwrap();
    m.update_user(&k4(8, [2, 0, 0, 0]), &k32(0), BPF_ANY)
        .unwrap();
    assert_eq!(
        errno(m.update_user(&k4(8, [3, 0, 0, 0]), &k32(0), BPF_ANY)),
        ENOSPC
    );
    m.update_user(&k4(8, [2, 0, 0, 0]), &k32(5), BPF_ANY)
        .unwrap();
    assert_eq!(errno(m.delete_user(&k4(40, [2, 0, 0, 0]))), EINVAL);
}

#[test]
fn get_next_key_post_order() {
    // The kernel's documented example: 192.168.0.0/16 with three /24s below it.
    let m = trie(8);
    for (plen, a) in [
        (16, [192, 168, 0, 0]),
        (24, [192, 168, 128, 0]),
        (24, [192, 168, 0, 0]),
        (24, [192, 168, 1, 0]),
    ] {
        m.update_user(&k4(plen, a), &k32(0), BPF_ANY).unwrap();
    }
    let walk = keys(m.as_ref());
    let want: Vec<Vec<u8>> = [
        k4(24, [192, 168, 0, 0]),
        k4(24, [192, 168, 1, 0]),
        k4(24, [192, 168, 128, 0]),
        k4(16, [192, 168, 0, 0]),
    ]
    .iter()
    .map(|k| k.to_vec())
    .collect();
    assert_eq!(walk, want);
    // A key not in the trie (or with a bad prefixlen) restarts from the first.
    let mut next = [0u8; 8];
    m.get_next_key(Some(&k4(8, [1, 0, 0, 0])), &mut next)
        .unwrap();
    assert_eq!(next.to_vec(), want[0]);
    m.get_next_key(Some(&k4(99, [1, 0, 0, 0])), &mut next)
        .unwrap();
    assert_eq!(next.to_vec(), want[0]);
}

#[test]
fn against_brute_force() {
    // Random prefixes over 16-bit keys, every address checked against a linear scan.
    let m = mk_flags(MapType::LpmTrie, 6, 4, 200, BPF_F_NO_PREALLOC);
    let key = |plen: u32, a: u16| {
        let mut k = [0u8; 6];
        k[..4].copy_from_slice(&plen.to_ne_bytes());
        k[4..].copy_from_slice(&a.to_be_bytes());
        k
    };
    let mut seed = 0x1234_5678u32;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut entries: Vec<(u32, u16, u32)> = Vec::new();
    for i in 0..150 {
        let plen = rnd() % 17;
        let mask = if plen == 0 {
            0
        } else {
            u16::MAX << (16 - plen)
        };
        let a = (rnd() as u16) & mask;
        m.update_user(&key(plen, a), &k32(i), BPF_ANY).unwrap();
        entries.retain(|e| !(e.0 == plen && e.1 == a));
        entries.push((plen, a, i));
    }
    for addr in (0..=u16::MAX).step_by(7) {
        let want = entries
            .iter()
            .filter(|(plen, a, _)| {
                let mask = if *plen == 0 {
                    0
                } else {
                    u16::MAX << (16 - plen)
                };
                addr & mask == *a
            })
            .max_by_key(|e| e.0)
            .map(|e| e.2);
        let mut out = [0u8; 4];
        let got = m
            .lookup_user(&key(16, addr), &mut out, 0)
            .ok()
            .map(|_| u32::from_ne_bytes(out));
        assert_eq!(got, want, "address {addr:#06x}");
    }
    assert_eq!(keys(m.as_ref()).len(), entries.len());
}

#[test]
fn against_brute_force_with_deletes() {
    // Rounds of random inserts and deletes over 12-bit prefixes (many nested
    // and branching ones); after each round every address agrees with a scan.
    let m = mk_flags(MapType::LpmTrie, 6, 4, 64, BPF_F_NO_PREALLOC);
    let key = |plen: u32, a: u16| {
        let mut k = [0u8; 6];
        k[..4].copy_from_slice(&plen.to_ne_bytes());
        k[4..].copy_from_slice(&a.to_be_bytes());
        k
    };
    let mask = |plen: u32| {
        if plen == 0 {
            0
        } else {
            u16::MAX << (16 - plen)
        }
    };
    let mut seed = 0x9e37_79b9u32;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut entries: Vec<(u32, u16, u32)> = Vec::new();
    for round in 0..40u32 {
        for i in 0..12 {
            if entries.len() < 60 {
                let plen = rnd() % 13;
                let a = (rnd() as u16 & 0xfff0) & mask(plen);
                m.update_user(&key(plen, a), &k32(round * 100 + i), BPF_ANY)
                    .unwrap();
                entries.retain(|e| !(e.0 == plen && e.1 == a));
                entries.push((plen, a, round * 100 + i));
            }
            if !entries.is_empty() && rnd() % 3 == 0 {
                let e = entries.remove(rnd() as usize % entries.len());
                m.delete_user(&key(e.0, e.1)).unwrap();
            }
        }
        for addr in (0..=u16::MAX).step_by(16) {
            let want = entries
                .iter()
                .filter(|(plen, a, _)| addr & mask(*plen) == *a)
                .max_by_key(|e| e.0)
                .map(|e| e.2);
            let got = m
                .lookup(&key(16, addr), 0)
                .map(|p| unsafe { (p as *const u32).read_unaligned() });
            assert_eq!(got, want, "round {round}, address {addr:#06x}");
        }
    }
}
