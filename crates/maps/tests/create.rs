//! BPF_MAP_CREATE validation: errno for each bad attribute, as the kernel's map_alloc_check.

mod common;
use common::*;

use bpfvm_maps::*;

fn a(t: MapType, k: u32, v: u32, n: u32) -> MapAttr {
    MapAttr::new(t, k, v, n)
}

#[test]
fn type_numbers_and_names() {
    assert_eq!(MapType::from_u32(1), Some(MapType::Hash));
    assert_eq!(MapType::from_u32(27), Some(MapType::Ringbuf));
    assert_eq!(MapType::from_u32(33), Some(MapType::Arena));
    assert_eq!(MapType::from_u32(34), None);
    for (i, t) in MapType::ALL.iter().enumerate() {
        assert_eq!(*t as u32, i as u32);
        assert_eq!(MapType::from_u32(i as u32), Some(*t));
    }
    let names: Vec<&str> = [
        MapType::Hash,
        MapType::Array,
        MapType::ProgArray,
        MapType::PercpuArray,
        MapType::LruHash,
        MapType::Ringbuf,
        MapType::LpmTrie,
        MapType::ArrayOfMaps,
        MapType::HashOfMaps,
        MapType::Devmap,
        MapType::Cpumap,
        MapType::Queue,
        MapType::Stack,
        MapType::PercpuHash,
        MapType::LruPercpuHash,
        MapType::DevmapHash,
    ]
    .iter()
    .map(|t| t.name())
    .collect();
    assert_eq!(
        names,
        [
            "hash",
            "array",
            "prog_array",
            "percpu_array",
            "lru_hash",
            "ringbuf",
            "lpm_trie",
            "array_of_maps",
            "hash_of_maps",
            "devmap",
            "cpumap",
            "queue",
            "stack",
            "percpu_hash",
            "lru_percpu_hash",
            "devmap_hash"
        ]
    );
    assert_eq!(MapType::Hash.kernel_name(), "BPF_MAP_TYPE_HASH");
}

#[test]
fn generic_checks() {
    assert_eq!(create_err(a(MapType::Unspec, 4, 4, 1)), EINVAL);
    assert_eq!(create_err(a(MapType::Arena, 0, 0, 1)), EOPNOTSUPP);
    assert_eq!(
        create_err(a(MapType::Array, 4, 4, 1).with_name("has space")),
        EINVAL
    );
    assert_eq!(
        create_err(a(MapType::Array, 4, 4, 1).with_name("sixteen_chars_xx")),
        EINVAL
    );
    create_map(&a(MapType::Array, 4, 4, 1).with_name("fifteen_chars.x"), 1).unwrap();
    assert_eq!(
        create_err(a(MapType::Array, 4, 4, 1).with_flags(BPF_F_RDONLY | BPF_F_WRONLY)),
        EINVAL
    );
    assert_eq!(
        create_err(a(MapType::Array, 4, 4, 1).with_flags(BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG)),
        EINVAL
    );
    let mut numa = a(MapType::Array, 4, 4, 1).with_flags(BPF_F_NUMA_NODE);
    numa.numa_node = 1;
    assert_eq!(create_err(numa.clone()), EINVAL);
    numa.numa_node = 0;
    create_map(&numa, 2).unwrap();
    let e = create_map(&a(MapType::Hash, 0, 4, 1).with_name("counts"), 2)
        .err()
        .unwrap();
    assert!(e.to_string().contains("hash map \"counts\""), "{e}");
}

#[test]
fn array_checks() {
    assert_eq!(create_err(a(MapType::Array, 8, 4, 1)), EINVAL);
    assert_eq!(create_err(a(MapType::Array, 4, 0, 1)), EINVAL);
    assert_eq!(create_err(a(MapType::Array, 4, 4, 0)), EINVAL);
    assert_eq!(
        create_err(a(MapType::Array, 4, 4, 1).with_flags(BPF_F_NO_PREALLOC)),
        EINVAL
    );
    assert_eq!(create_err(a(MapType::Array, 4, 0x8000_0000, 1)), E2BIG);
    assert_eq!(
        create_err(a(MapType::PercpuArray, 4, 32 * 1024 + 1, 1)),
        E2BIG
    );
    create_map(&a(MapType::PercpuArray, 4, 32 * 1024, 1), 2).unwrap();
    assert_eq!(
        create_err(a(MapType::PercpuArray, 4, 4, 1).with_flags(BPF_F_MMAPABLE)),
        EINVAL
    );
    assert_eq!(
        create_err(a(MapType::Array, 4, 4, 1).with_flags(BPF_F_PRESERVE_ELEMS)),
        EINVAL
    );
    create_map(
        &a(MapType::Array, 4, 4, 1).with_flags(BPF_F_MMAPABLE | BPF_F_RDONLY_PROG),
        2,
    )
    .unwrap();
    assert_eq!(create_err(a(MapType::ProgArray, 4, 8, 1)), EINVAL);
    assert_eq!(
        create_err(a(MapType::ProgArray, 4, 4, 1).with_flags(BPF_F_RDONLY_PROG)),
        EINVAL
    );
    // Huge maps fail with ENOMEM rather than taking the machine down.
    assert_eq!(create_err(a(MapType::Array, 4, 1 << 30, 1 << 10)), ENOMEM);
}

#[test]
fn hash_checks() {
    assert_eq!(create_err(a(MapType::Hash, 0, 4, 1)), EINVAL);
    assert_eq!(create_err(a(MapType::Hash, 4, 0, 1)), EINVAL);
    assert_eq!(create_err(a(MapType::Hash, 4, 4, 0)), EINVAL);
    assert_eq!(
        create_err(a(MapType::Hash, 4, 4, 1).with_flags(BPF_F_MMAPABLE)),
        EINVAL
    );
    assert_eq!(
        create_err(a(MapType::Hash, 4, 4, 1).with_flags(BPF_F_NO_COMMON_LRU)),
        EINVAL
    );
    assert_eq!(
        create_err(a(MapType::LruHash, 4, 4, 1).with_flags(BPF_F_NO_PREALLOC)),
        ENOTSUPP
    );
    assert_eq!(create_err(a(MapType::Hash, 4, 4 << 20, 1)), E2BIG);
    assert_eq!(create_err(a(MapType::PercpuHash, 4, 40000, 1)), E2BIG);
    assert_eq!(
        create_err(a(MapType::PercpuHash, 4, 4, 1).with_flags(BPF_F_NUMA_NODE)),
        EINVAL
    );
    mk_flags(MapType::LruHash, 4, 4, 4, BPF_F_NO_COMMON_LRU);
    mk_flags(MapType::Hash, 4, 4, 4, BPF_F_NO_PREALLOC | BPF_F_ZERO_SEED);
    // Large keys are fine (the kernel no longer bounds them by the stack size).
    mk(MapType::Hash, 600, 4, 1);
}

#[test]
fn other_checks() {
    // queue/stack: key_size 0.
    assert_eq!(create_err(a(MapType::Queue, 4, 4, 1)), EINVAL);
    assert_eq!(create_err(a(MapType::Stack, 0, 0, 1)), EINVAL);
    assert_eq!(
        create_err(a(MapType::Queue, 0, 4, 1).with_flags(BPF_F_NO_PREALLOC)),
        EINVAL
    );
    assert_eq!(create_err(a(MapType::Queue, 0, (4 << 20) + 1, 1)), E2BIG);
    // ringbuf: power of 2 multiple of the page size.
    assert_eq!(create_err(a(MapType::Ringbuf, 0, 0, 4096 * 3)), EINVAL);
    assert_eq!(create_err(a(MapType::Ringbuf, 0, 0, 2048)), EINVAL);
    assert_eq!(create_err(a(MapType::Ringbuf, 4, 0, 4096)), EINVAL);
    assert_eq!(
        create_err(a(MapType::Ringbuf, 0, 0, 4096).with_flags(BPF_F_RDONLY_PROG)),
        EINVAL
    );
    mk(MapType::Ringbuf, 0, 0, 8192);
    // lpm_trie: BPF_F_NO_PREALLOC and key_size >= 5.
    assert_eq!(create_err(a(MapType::LpmTrie, 8, 4, 1)), EINVAL);
    assert_eq!(
        create_err(a(MapType::LpmTrie, 4, 4, 1).with_flags(BPF_F_NO_PREALLOC)),
        EINVAL
    );
    assert_eq!(
        create_err(a(MapType::LpmTrie, 261, 4, 1).with_flags(BPF_F_NO_PREALLOC)),
        EINVAL
    );
    assert_eq!(
        create_err(a(MapType::LpmTrie, 8, 0, 1).with_flags(BPF_F_NO_PREALLOC)),
        EINVAL
    );
    mk_flags(MapType::LpmTrie, 5, 1, 1, BPF_F_NO_PREALLOC);
    // devmap / cpumap values.
    assert_eq!(create_err(a(MapType::Devmap, 4, 6, 1)), EINVAL);
    assert_eq!(create_err(a(MapType::DevmapHash, 8, 8, 1)), EINVAL);
    assert_eq!(
        create_err(a(MapType::Devmap, 4, 8, 1).with_flags(BPF_F_RDONLY_PROG)),
        EINVAL
    );
    assert_eq!(create_err(a(MapType::Cpumap, 4, 8, NR_CPUS + 1)), E2BIG);
    mk(MapType::Devmap, 4, 4, 1);
    mk(MapType::Cpumap, 4, 8, 4);
    // maps of maps need a template that is not itself a map of maps.
    assert_eq!(create_err(a(MapType::ArrayOfMaps, 4, 4, 1)), EINVAL);
    let inner = mk(MapType::Array, 4, 4, 1);
    let outer = create_map(
        &a(MapType::HashOfMaps, 4, 4, 1).with_inner(inner.clone()),
        2,
    )
    .unwrap();
    assert_eq!(
        create_err(a(MapType::ArrayOfMaps, 4, 4, 1).with_inner(outer)),
        EINVAL
    );
    assert_eq!(
        create_err(a(MapType::HashOfMaps, 4, 8, 1).with_inner(inner)),
        EINVAL
    );
}

#[test]
fn spin_lock_checks() {
    let mut at = a(MapType::Hash, 4, 16, 1);
    at.spin_lock_off = Some(14);
    assert_eq!(create_err(at.clone()), EINVAL);
    at.spin_lock_off = Some(2);
    assert_eq!(create_err(at.clone()), EINVAL);
    at.map_type = MapType::PercpuHash;
    at.spin_lock_off = Some(0);
    assert_eq!(create_err(at.clone()), EOPNOTSUPP);
    at.map_type = MapType::Array;
    at.spin_lock_off = Some(12);
    create_map(&at, 2).unwrap();
}

#[test]
fn huge_maps_are_refused_not_allocated() {
    for t in [
        MapType::Hash,
        MapType::LruHash,
        MapType::PercpuHash,
        MapType::Array,
        MapType::ProgArray,
        MapType::Devmap,
    ] {
        let attr = a(t, 4, 4, u32::MAX);
        assert_eq!(create_err(attr), ENOMEM, "{t}");
    }
    assert_eq!(
        create_err(a(MapType::LpmTrie, 8, 4, u32::MAX).with_flags(BPF_F_NO_PREALLOC)),
        ENOMEM
    );
    assert_eq!(create_err(a(MapType::Queue, 0, 4 << 20, 1 << 20)), ENOMEM);
}

#[test]
fn local_storage_sizes_as_the_kernel() {
    // Linux 6.18 on 2 possible CPUs gave bytes_memlock 512 for an sk_storage map
    // (bpftool map show of a loaded object's map; bpftool cannot create one
    // without BTF): 2 buckets, the minimum.
    let attr = MapAttr {
        map_flags: BPF_F_NO_PREALLOC,
        btf_key_type_id: 1,
        btf_value_type_id: 2,
        ..MapAttr::new(MapType::SkStorage, 4, 8, 0)
    };
    assert_eq!(create_map(&attr, 2).unwrap().memory_usage(), 512);
    assert_eq!(create_map(&attr, 1).unwrap().memory_usage(), 512);
    let no_btf = MapAttr::new(MapType::SkStorage, 4, 8, 0).with_flags(BPF_F_NO_PREALLOC);
    assert_eq!(
        create_map(&no_btf, 2).err().map(|e| e.errno()),
        Some(EINVAL)
    );
}

#[test]
fn bloom_filter_membership() {
    let m = create_map(&MapAttr::new(MapType::BloomFilter, 0, 4, 100), 2).unwrap();
    for v in 0..50u32 {
        m.update_user(&[], &v.to_ne_bytes(), BPF_ANY).unwrap();
    }
    for v in 0..50u32 {
        let mut out = v.to_ne_bytes();
        m.lookup_user(&[], &mut out, 0).unwrap();
    }
    // With 1024 bits and 5 probes, most absent values test absent.
    let absent = (1000..1100u32)
        .filter(|v| {
            let mut out = v.to_ne_bytes();
            m.lookup_user(&[], &mut out, 0).is_err()
        })
        .count();
    assert!(absent > 80, "{absent}");
    // The kernel's jhash: jhash("", 0) is 0xdeadbeef, jhash2 of no words too.
    assert_eq!(jhash(&[], 0), 0xdead_beef);
    assert_eq!(jhash2(&[], 0), 0xdead_beef);
}
