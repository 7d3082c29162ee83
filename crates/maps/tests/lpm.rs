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
            if !entries.is_empty() && rnd().is_multiple_of(3) {
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

/// A deterministic xorshift64 sequence for the randomised tests below.
fn rng(mut s: u64) -> impl FnMut() -> u64 {
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

/// Whether `addr`'s first `plen` bits (most significant bit of byte 0 first) equal `pfx`'s.
fn prefix_eq(addr: &[u8], pfx: &[u8], plen: u32) -> bool {
    (0..plen as usize).all(|i| (addr[i / 8] ^ pfx[i / 8]) & (0x80 >> (i % 8)) == 0)
}

#[test]
fn multi_word_keys_against_a_scan() {
    // 17 data bytes: three 64-bit words, the last partial. Prefixes cluster around the word
    // boundaries (bits 60..70 and 124..136) where a word-wise compare could go wrong; lookups
    // use every prefixlen, which bounds the match.
    const D: usize = 17;
    let m = mk_flags(MapType::LpmTrie, 4 + D as u32, 4, 48, BPF_F_NO_PREALLOC);
    let key = |plen: u32, a: &[u8; D]| {
        let mut k = vec![0u8; 4 + D];
        k[..4].copy_from_slice(&plen.to_ne_bytes());
        k[4..].copy_from_slice(a);
        k
    };
    let mut rnd = rng(0x5eed_1234_abcd_0001);
    let base: [u8; D] = std::array::from_fn(|i| (i as u8).wrapping_mul(37));
    let addr = |rnd: &mut dyn FnMut() -> u64| {
        let mut a = base;
        // Flip a few bits near the boundaries, or anywhere.
        for _ in 0..3 {
            let b = match rnd() % 3 {
                0 => 58 + rnd() % 14,
                1 => 122 + rnd() % 16,
                _ => rnd() % (D as u64 * 8),
            } as usize
                % (D * 8);
            a[b / 8] ^= 0x80 >> (b % 8);
        }
        a
    };
    let mut entries: Vec<(u32, [u8; D], u32)> = Vec::new();
    for round in 0..30u32 {
        for i in 0..8u32 {
            if entries.len() < 40 {
                let plen = match rnd() % 4 {
                    0 => 56 + (rnd() % 18) as u32,
                    1 => 120 + (rnd() % 17) as u32,
                    _ => (rnd() % (D as u64 * 8 + 1)) as u32,
                };
                let a = addr(&mut rnd);
                let v = round * 100 + i;
                m.update_user(&key(plen, &a), &k32(v), BPF_ANY).unwrap();
                entries.retain(|e| !(e.0 == plen && prefix_eq(&e.1, &a, plen)));
                entries.push((plen, a, v));
            }
            if !entries.is_empty() && rnd().is_multiple_of(3) {
                let e = entries.remove(rnd() as usize % entries.len());
                m.delete_user(&key(e.0, &e.1)).unwrap();
            }
        }
        for _ in 0..300 {
            let a = addr(&mut rnd);
            let lplen = if rnd().is_multiple_of(2) {
                D as u32 * 8
            } else {
                (rnd() % (D as u64 * 8 + 1)) as u32
            };
            let want = entries
                .iter()
                .filter(|(plen, p, _)| *plen <= lplen && prefix_eq(&a, p, *plen))
                .max_by_key(|e| e.0)
                .map(|e| e.2);
            let got = m
                .lookup(&key(lplen, &a), 0)
                .map(|p| unsafe { (p as *const u32).read_unaligned() });
            assert_eq!(got, want, "round {round}, /{lplen} {a:02x?}");
        }
        assert_eq!(keys(m.as_ref()).len(), entries.len());
    }
}

/// The JIT's direct call ([`GenLookup::Call`]) of an IPv4 trie.
fn direct(m: &dyn MapOps, key: &[u8; 8]) -> Option<u32> {
    let Some(GenLookup::Call { f, obj }) = m.gen_lookup() else {
        panic!("an LPM trie offers a direct call");
    };
    // SAFETY: the map is alive, the key has key_size bytes.
    let p = unsafe { f(obj, key.as_ptr() as u64) } as *const u32;
    // SAFETY: a value slot of the map.
    (!p.is_null()).then(|| unsafe { p.read_unaligned() })
}

#[test]
fn ipv4_direct_call_against_a_scan_to_capacity() {
    // Fill to max_entries (every node slot in use), churn, and compare the direct call, the
    // program lookup and a scan, with lookup prefixlens below 32 too.
    let m = trie(128);
    let mut rnd = rng(0x0a0a_0a0a_1234_5678);
    let mut entries: Vec<(u32, u32, u32)> = Vec::new();
    let mask = |plen: u32| u32::MAX.checked_shl(32 - plen).unwrap_or(0);
    for round in 0..20u32 {
        while entries.len() < 128 {
            let plen = (rnd() % 33) as u32;
            let a = (0x0a00_0000 | (rnd() as u32 & 0x00ff_ffff)) & mask(plen);
            if entries.iter().any(|e| e.0 == plen && e.1 == a) {
                continue;
            }
            let v = round * 1000 + entries.len() as u32;
            m.update_user(&k4(plen, a.to_be_bytes()), &k32(v), BPF_NOEXIST)
                .unwrap();
            entries.push((plen, a, v));
        }
        let full = m.update_user(&k4(32, [1, 2, 3, 4]), &k32(0), BPF_ANY);
        assert_eq!(errno(full), ENOSPC, "full map (the kernel's trie: ENOSPC)");
        for _ in 0..2000 {
            let a = 0x0a00_0000 | (rnd() as u32 & 0x00ff_ffff);
            let lplen = if rnd().is_multiple_of(4) {
                (rnd() % 33) as u32
            } else {
                32
            };
            let want = entries
                .iter()
                .filter(|(plen, p, _)| *plen <= lplen && a & mask(*plen) == *p)
                .max_by_key(|e| e.0)
                .map(|e| e.2);
            let k = k4(lplen, a.to_be_bytes());
            assert_eq!(direct(m.as_ref(), &k), want, "/{lplen} {a:#010x}");
            let got = m
                .lookup(&k, 0)
                .map(|p| unsafe { (p as *const u32).read_unaligned() });
            assert_eq!(got, want, "/{lplen} {a:#010x}");
        }
        for _ in 0..40 {
            let e = entries.remove(rnd() as usize % entries.len());
            m.delete_user(&k4(e.0, e.1.to_be_bytes())).unwrap();
        }
    }
}

#[test]
fn lookups_during_updates_see_one_state_or_the_other() {
    // 10/8 stays; a writer adds and removes 10.1/16 and churns unrelated prefixes around it.
    // Lock-free readers of 10.1.2.3 must find 10.1/16 or 10/8, of 10.2.0.1 always 10/8.
    let m = trie(64);
    m.update_user(&k4(8, [10, 0, 0, 0]), &k32(8), BPF_ANY)
        .unwrap();
    let p8 = m.lookup(&k4(32, [10, 2, 0, 1]), 0).map(|p| p as usize);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 1000 {
                    // Values are checked by address: a deleted element's slot may be
                    // reused (and rewritten) right after a reader found it.
                    let a = m.lookup(&k4(32, [10, 1, 2, 3]), 0);
                    assert!(a.is_some(), "10.1.2.3 found nothing");
                    assert_eq!(direct(m.as_ref(), &k4(32, [10, 2, 0, 1])), Some(8));
                    assert_eq!(
                        m.lookup(&k4(32, [10, 2, 0, 1]), 0).map(|p| p as usize),
                        p8,
                        "10.2.0.1"
                    );
                    n += 1;
                }
            });
        }
        let mut rnd = rng(77);
        for i in 0..20_000u32 {
            let k16 = k4(16, [10, 1, 0, 0]);
            if i % 2 == 0 {
                m.update_user(&k16, &k32(16), BPF_ANY).unwrap();
            } else {
                m.delete_user(&k16).unwrap();
            }
            // Unrelated prefixes branching next to the ones read.
            let r = rnd();
            let k = k4(24 + (r % 9) as u32, [10, 1, 3 + (r >> 8) as u8 % 4, 0]);
            if m.update_user(&k, &k32(99), BPF_NOEXIST).is_err() {
                let _ = m.delete_user(&k);
            }
            let k = k4(12, [10, 32, 0, 0]);
            if m.update_user(&k, &k32(12), BPF_NOEXIST).is_err() {
                let _ = m.delete_user(&k);
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}
