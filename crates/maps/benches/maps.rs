//! Hot-path timings of map operations (plain `Instant` loops, no framework):
//! `cargo bench -p bpfvm-maps`.

use std::hint::black_box;
use std::time::Instant;

use bpfvm_maps::*;

fn time(name: &str, iters: u64, mut f: impl FnMut(u64)) {
    for i in 0..iters / 10 {
        f(i);
    }
    let start = Instant::now();
    for i in 0..iters {
        f(i);
    }
    let ns = start.elapsed().as_nanos() as f64 / iters as f64;
    println!("{name:<40} {ns:>8.1} ns/op");
}

fn main() {
    let n = 1_000_000;
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
