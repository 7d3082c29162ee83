//! Hot-path timings of map operations (plain `Instant` loops, no framework):
//! `cargo bench -p bpfvm-maps`.

use std::hint::black_box;
use std::time::Instant;

use bpfvm_maps::*;

/// Best of 30 short timed passes: the machine is shared, and a pass of a millisecond or two
/// mostly runs without being descheduled, so the minimum is the undisturbed cost.
fn time(name: &str, iters: u64, mut f: impl FnMut(u64)) {
    let pass = (iters / 10).max(1);
    for i in 0..pass {
        f(i);
    }
    let mut best = f64::MAX;
    for p in 0..30 {
        let start = Instant::now();
        for i in p * pass..(p + 1) * pass {
            f(i);
        }
        best = best.min(start.elapsed().as_nanos() as f64 / pass as f64);
    }
    println!("{name:<48} {best:>8.1} ns/op");
}

/// A multiplicative hasher for `u32` keys (what a tuned std `HashMap` would use).
#[derive(Default)]
struct MulHasher(u64);

impl std::hash::Hasher for MulHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (self.0.rotate_left(5) ^ v as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// The shape of `benches/programs/hashmap.c`: a 1024-entry hash (u32 key, u64 value) holding
/// the even keys 0..2046, looked up through `Arc<dyn MapOps>` as the JIT does, next to std
/// `HashMap`s with the same contents.
fn program_shaped(n: u64) {
    let m = create_map(&MapAttr::new(MapType::Hash, 4, 8, 1024), 2).unwrap();
    let mut std_sip = std::collections::HashMap::new();
    let mut std_mul: std::collections::HashMap<u32, u64, _> =
        std::collections::HashMap::with_hasher(
            std::hash::BuildHasherDefault::<MulHasher>::default(),
        );
    for k in (0..2048u32).step_by(2) {
        let v = k as u64 * k as u64 + 7;
        m.update_user(&k.to_ne_bytes(), &v.to_ne_bytes(), BPF_ANY)
            .unwrap();
        std_sip.insert(k, v);
        std_mul.insert(k, v);
    }
    let m = black_box(m);
    time("hash(1024) lookup hit (key 4B)", n, |i| {
        black_box(m.lookup(&((i as u32 * 26) & 2046).to_ne_bytes(), 0));
    });
    time("hash(1024) lookup miss (key 4B)", n, |i| {
        black_box(m.lookup(&((i as u32 * 26) & 2046 | 1).to_ne_bytes(), 0));
    });
    time("hash(1024) lookup, hashmap.c keys (half hit)", n, |i| {
        black_box(m.lookup(&((i as u32 * 13) & 2047).to_ne_bytes(), 0));
    });
    time("std HashMap (SipHash) get, same keys", n, |i| {
        black_box(std_sip.get(&black_box((i as u32 * 13) & 2047)));
    });
    time("std HashMap (Fx-like) get, same keys", n, |i| {
        black_box(std_mul.get(&black_box((i as u32 * 13) & 2047)));
    });
}

/// The shape of `benches/programs/lpm.c`: the 64 prefixes of `lpm_entries()` (lengths 8 to
/// 32 inside 10/8) and its 256 /32 keys, looked up as the JIT does (a direct call when the
/// map offers one, else through `Arc<dyn MapOps>`); the time is per pass of 256 lookups.
fn lpm_program_shaped(n: u64) {
    let m = create_map(
        &MapAttr::new(MapType::LpmTrie, 8, 8, 256).with_flags(BPF_F_NO_PREALLOC),
        2,
    )
    .unwrap();
    // benches/src/programs.rs lpm_entries(): xorshift64* from a fixed seed.
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        s.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 64 {
        let len = 8 + (next() % 25) as u32;
        let addr = (0x0a00_0000 | (next() as u32 >> 8)) & (u32::MAX << (32 - len));
        if seen.insert((len, addr)) {
            let mut k = len.to_ne_bytes().to_vec();
            k.extend_from_slice(&addr.to_be_bytes());
            m.update_user(&k, &(seen.len() as u64).to_ne_bytes(), BPF_ANY)
                .unwrap();
        }
    }
    let keys: Vec<[u8; 8]> = (0..256u32)
        .map(|i| {
            let a = i.wrapping_mul(0x9e37_79b1);
            let mut k = [0u8; 8];
            k[..4].copy_from_slice(&32u32.to_ne_bytes());
            k[4..].copy_from_slice(&(0x0a00_0000u32 | (a >> 8)).to_be_bytes());
            k
        })
        .collect();
    let direct = match m.gen_lookup() {
        Some(GenLookup::Call { f, obj }) => Some((f, obj)),
        _ => None,
    };
    let name = if direct.is_some() {
        "lpm.c: 256 lookups, direct call"
    } else {
        "lpm.c: 256 lookups, MapOps::lookup"
    };
    time(name, n / 256, |_| {
        let mut sum = 0u64;
        for k in &keys {
            let p = match direct {
                // SAFETY: `obj` is the live map's, the key has key_size bytes.
                Some((f, obj)) => unsafe { f(obj, k.as_ptr() as u64) as *mut u8 },
                None => m.lookup(k, 0).unwrap_or(std::ptr::null_mut()),
            };
            if !p.is_null() {
                // SAFETY: a value slot of the map (8 bytes, 8-aligned).
                sum += unsafe { *(p as *const u64) };
            }
        }
        black_box(sum);
    });
    // Writers: a /24 inside the 64 prefixes added and deleted again.
    time("lpm.c map: update (new /24) + delete", n / 4, |i| {
        let mut k = [0u8; 8];
        k[..4].copy_from_slice(&24u32.to_ne_bytes());
        k[4..].copy_from_slice(&(0x0a00_0000u32 | ((i as u32 & 0xffff) << 8)).to_be_bytes());
        if m.update_user(&k, &[0; 8], BPF_NOEXIST).is_ok() {
            m.delete_user(&k).unwrap();
        }
    });
}

/// Creating (and dropping) an IPv4 LPM trie of `n` entries: what sizing its node storage costs.
fn lpm_create(n: u32) {
    let start = Instant::now();
    let m = create_map(
        &MapAttr::new(MapType::LpmTrie, 8, 8, n).with_flags(BPF_F_NO_PREALLOC),
        2,
    )
    .unwrap();
    let made = start.elapsed();
    drop(m);
    println!(
        "{:<48} {:>8.1} us",
        format!("lpm_trie create, {n} entries"),
        made.as_nanos() as f64 / 1000.0
    );
}

fn main() {
    let n = 1_000_000;
    // `cargo bench -p bpfvm-maps -- lpm`: only the LPM program shape.
    if std::env::args().skip(1).any(|a| a == "lpm") {
        lpm_program_shaped(n);
        lpm_create(1 << 20);
        return;
    }
    program_shaped(n);
    lpm_program_shaped(n);
    let array = create_map(&MapAttr::new(MapType::Array, 4, 8, 1024), 2).unwrap();
    time("array lookup", n, |i| {
        black_box(array.lookup(&((i & 1023) as u32).to_ne_bytes(), 0));
    });

    let hash = create_map(&MapAttr::new(MapType::Hash, 4, 8, 10_000), 2).unwrap();
    for k in 0..10_000u32 {
        hash.update_user(&k.to_ne_bytes(), &[0; 8], BPF_ANY)
            .unwrap();
    }
    time("hash lookup hit (key 4B, 10k entries)", n, |i| {
        black_box(hash.lookup(&((i % 10_000) as u32).to_ne_bytes(), 0));
    });
    time("hash lookup miss", n, |i| {
        black_box(hash.lookup(&((i % 10_000) as u32 + 20_000).to_ne_bytes(), 0));
    });
    time("hash update existing (program side)", n, |i| {
        hash.update(
            &((i % 10_000) as u32).to_ne_bytes(),
            &i.to_ne_bytes(),
            BPF_ANY,
            0,
        )
        .unwrap();
    });
    time("hash delete + insert", n / 2, |i| {
        let k = ((i % 10_000) as u32).to_ne_bytes();
        hash.delete(&k).unwrap();
        hash.update(&k, &i.to_ne_bytes(), BPF_NOEXIST, 0).unwrap();
    });

    let hash16 = create_map(&MapAttr::new(MapType::Hash, 16, 8, 10_000), 2).unwrap();
    let key16 = |i: u64| {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&(i % 10_000).to_ne_bytes());
        k[8..].copy_from_slice(&0x1234_5678u64.to_ne_bytes());
        k
    };
    for i in 0..10_000 {
        hash16.update_user(&key16(i), &[0; 8], BPF_ANY).unwrap();
    }
    time("hash lookup hit (key 16B, 10k entries)", n, |i| {
        black_box(hash16.lookup(&key16(i), 0));
    });
    time("hash lookup hit (key 4B, again)", n, |i| {
        black_box(hash.lookup(&((i % 10_000) as u32).to_ne_bytes(), 0));
    });

    let lru = create_map(&MapAttr::new(MapType::LruHash, 4, 8, 1000), 2).unwrap();
    time("lru_hash update (evicting)", n, |i| {
        lru.update(&(i as u32).to_ne_bytes(), &[0; 8], BPF_ANY, 0)
            .unwrap();
    });
    time("lru_hash lookup hit", n, |i| {
        black_box(lru.lookup(&((n - 1 - (i % 1000)) as u32).to_ne_bytes(), 0));
    });

    let lpm = create_map(
        &MapAttr::new(MapType::LpmTrie, 8, 8, 1000).with_flags(BPF_F_NO_PREALLOC),
        2,
    )
    .unwrap();
    for (i, plen) in [8u32, 16, 24, 32].iter().enumerate() {
        for j in 0..100u32 {
            let mut k = [0u8; 8];
            k[..4].copy_from_slice(&plen.to_ne_bytes());
            k[4..].copy_from_slice(&(0x0a00_0000u32 | j << 8 | i as u32).to_be_bytes());
            lpm.update_user(&k, &[0; 8], BPF_ANY).unwrap();
        }
    }
    time("lpm_trie lookup (4 prefix lengths)", n, |i| {
        let mut k = [0u8; 8];
        k[..4].copy_from_slice(&32u32.to_ne_bytes());
        k[4..].copy_from_slice(&(0x0a00_0000u32 | ((i % 256) as u32) << 8 | 77).to_be_bytes());
        black_box(lpm.lookup(&k, 0));
    });

    let rb = create_map(&MapAttr::new(MapType::Ringbuf, 0, 0, 1 << 20), 2).unwrap();
    let r = rb.as_ringbuf().unwrap();
    time("ringbuf output 64B + consume", n, |_| {
        r.output(&[7; 64], BPF_RB_NO_WAKEUP).unwrap();
        r.consume(&mut |rec| {
            black_box(rec);
            true
        });
    });
}
