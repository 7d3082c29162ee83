//! `BPF_MAP_CREATE`: attribute checks in the kernel's order (`map_create` then each type's
//! `map_alloc_check`), allocation, and the sizes the kernel reports as `bytes_memlock`.

use std::sync::Arc;

use crate::error::MapError;
use crate::lpm::{LPM_KEY_SIZE_MAX, LPM_KEY_SIZE_MIN, LPM_VAL_SIZE_MAX};
use crate::mem::Arena;
use crate::ops::{Common, MapOps};
use crate::types::*;
use crate::{
    ArrayMap, ArrayOfMaps, DevArray, HashTab, LpmTrie, ProgArray, QueueStack, RingBuf, UserRingBuf,
};

/// Page size of the simulated kernel.
pub const PAGE_SIZE: u32 = 4096;
/// `KMALLOC_MAX_SIZE` on x86-64 (bounds queue/stack values).
pub const KMALLOC_MAX_SIZE: u64 = 1 << 22;
/// `PCPU_MIN_UNIT_SIZE`: bound of a per-CPU value.
pub const PCPU_MIN_UNIT_SIZE: u64 = 32 << 10;
/// `NR_CPUS` of a distribution kernel: bound of a cpumap's max_entries.
pub const NR_CPUS: u32 = 8192;
/// bpfvm refuses maps whose memory (values and index) would exceed this, with `ENOMEM`,
/// rather than letting a huge preallocation exhaust the host.
pub const MAX_MAP_BYTES: u64 = 1 << 32;

// Structure sizes Linux 6.18 (x86-64) uses in `map_mem_usage`, so that `memory_usage()`
// equals the kernel's `bytes_memlock` for the same map.
pub(crate) const SIZEOF_BPF_ARRAY: u64 = 312;
pub(crate) const SIZEOF_BPF_HTAB: u64 = 832;
pub(crate) const SIZEOF_HTAB_ELEM: u64 = 48;
pub(crate) const SIZEOF_BUCKET: u64 = 16;
pub(crate) const HASHTAB_MAP_LOCK_COUNT: u64 = 8;
pub(crate) const SIZEOF_BPF_QUEUE_STACK: u64 = 312;
pub(crate) const SIZEOF_BPF_DTAB: u64 = 344;
pub(crate) const SIZEOF_BPF_DTAB_NETDEV: u64 = 64;
pub(crate) const SIZEOF_BPF_CPU_MAP: u64 = 304;
pub(crate) const SIZEOF_BPF_RINGBUF_MAP: u64 = 304;
pub(crate) const RINGBUF_NR_META_PAGES: u64 = 3;
pub(crate) const SIZEOF_LPM_TRIE_NODE: u64 = 24;

/// `ENOMEM` unless a map needing `bytes` (saturating arithmetic) fits in [`MAX_MAP_BYTES`].
pub(crate) fn check_budget(c: &Common, bytes: u64) -> Result<(), MapError> {
    if bytes > MAX_MAP_BYTES {
        return Err(MapError::NoMemory {
            map: c.label(),
            bytes,
        });
    }
    Ok(())
}

/// Allocate a zeroed arena for `c`'s values, or `ENOMEM`.
pub(crate) fn alloc_arena(c: &Common, bytes: u64) -> Result<Arena, MapError> {
    let no_mem = || MapError::NoMemory {
        map: c.label(),
        bytes,
    };
    if bytes > MAX_MAP_BYTES {
        return Err(no_mem());
    }
    let n = usize::try_from(bytes).map_err(|_| no_mem())?;
    Arena::new(n).ok_or_else(no_mem)
}

/// The default number of simulated CPUs: the host's available parallelism.
pub fn default_ncpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn invalid(attr: &MapAttr, reason: impl Into<String>) -> MapError {
    MapError::Invalid {
        map: attr.label(),
        reason: reason.into(),
    }
}

fn too_big(attr: &MapAttr, reason: impl Into<String>) -> MapError {
    MapError::TooBig {
        map: attr.label(),
        reason: reason.into(),
    }
}

/// `bpf_obj_name_cpy`: at most 15 characters of `[A-Za-z0-9_.]`.
fn check_name(attr: &MapAttr) -> Result<(), MapError> {
    if attr.name.len() >= BPF_OBJ_NAME_LEN {
        return Err(invalid(
            attr,
            format!(
                "name is {} bytes, at most {} allowed",
                attr.name.len(),
                BPF_OBJ_NAME_LEN - 1
            ),
        ));
    }
    if let Some(ch) = attr
        .name
        .chars()
        .find(|ch| !(ch.is_ascii_alphanumeric() || *ch == '_' || *ch == '.'))
    {
        return Err(invalid(
            attr,
            format!("name contains {ch:?}; only [A-Za-z0-9_.] allowed"),
        ));
    }
    Ok(())
}

fn check_flags(attr: &MapAttr, allowed: u32) -> Result<(), MapError> {
    let bad = attr.map_flags & !allowed;
    if bad != 0 {
        return Err(invalid(
            attr,
            format!("map_flags {bad:#x} not allowed for this map type"),
        ));
    }
    // bpf_map_flags_access_ok
    if attr.map_flags & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG)
        == (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG)
    {
        return Err(invalid(
            attr,
            "BPF_F_RDONLY_PROG and BPF_F_WRONLY_PROG together",
        ));
    }
    Ok(())
}

fn has_numa(attr: &MapAttr) -> bool {
    attr.map_flags & BPF_F_NUMA_NODE != 0
}

const ARRAY_FLAGS: u32 =
    BPF_F_NUMA_NODE | BPF_F_MMAPABLE | BPF_F_ACCESS_MASK | BPF_F_PRESERVE_ELEMS | BPF_F_INNER_MAP;
const HTAB_FLAGS: u32 =
    BPF_F_NO_PREALLOC | BPF_F_NO_COMMON_LRU | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK | BPF_F_ZERO_SEED;
const QUEUE_FLAGS: u32 = BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK;
const LPM_FLAGS: u32 = BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK;
const DEV_FLAGS: u32 = BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY;

/// `array_map_alloc_check` (plus `fd_array_map_alloc_check` for fd arrays).
fn check_array(attr: &MapAttr) -> Result<(), MapError> {
    let t = attr.map_type;
    let percpu = t == MapType::PercpuArray;
    if matches!(t, MapType::ProgArray | MapType::ArrayOfMaps) {
        if attr.value_size != 4 {
            return Err(invalid(
                attr,
                format!("value_size must be 4, got {}", attr.value_size),
            ));
        }
        if t == MapType::ProgArray && attr.map_flags & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG) != 0
        {
            return Err(invalid(
                attr,
                "prog_array takes no BPF_F_RDONLY_PROG/BPF_F_WRONLY_PROG",
            ));
        }
    }
    if attr.max_entries == 0 {
        return Err(invalid(attr, "max_entries must be > 0"));
    }
    if attr.key_size != 4 {
        return Err(invalid(
            attr,
            format!("key_size must be 4, got {}", attr.key_size),
        ));
    }
    if attr.value_size == 0 {
        return Err(invalid(attr, "value_size must be > 0"));
    }
    check_flags(attr, ARRAY_FLAGS)?;
    if percpu && has_numa(attr) {
        return Err(invalid(attr, "per-CPU maps take no NUMA node"));
    }
    if t != MapType::Array && attr.map_flags & (BPF_F_MMAPABLE | BPF_F_INNER_MAP) != 0 {
        return Err(invalid(
            attr,
            "BPF_F_MMAPABLE and BPF_F_INNER_MAP are for array maps only",
        ));
    }
    if t != MapType::PerfEventArray && attr.map_flags & BPF_F_PRESERVE_ELEMS != 0 {
        return Err(invalid(
            attr,
            "BPF_F_PRESERVE_ELEMS is for perf_event_array only",
        ));
    }
    if attr.value_size > i32::MAX as u32 {
        return Err(too_big(
            attr,
            format!("value_size {} too large", attr.value_size),
        ));
    }
    if percpu && crate::mem::round8(attr.value_size as usize) as u64 > PCPU_MIN_UNIT_SIZE {
        return Err(too_big(
            attr,
            format!(
                "per-CPU value_size {} exceeds {PCPU_MIN_UNIT_SIZE}",
                attr.value_size
            ),
        ));
    }
    Ok(())
}

/// `htab_map_alloc_check` (plus `fd_htab_map_alloc_check` and `dev_map_alloc_check`).
fn check_hash(attr: &MapAttr) -> Result<(), MapError> {
    let t = attr.map_type;
    if t == MapType::HashOfMaps && attr.value_size != 4 {
        return Err(invalid(
            attr,
            format!("value_size must be 4, got {}", attr.value_size),
        ));
    }
    let percpu = matches!(t, MapType::PercpuHash | MapType::LruPercpuHash);
    let lru = matches!(t, MapType::LruHash | MapType::LruPercpuHash);
    let prealloc = attr.map_flags & BPF_F_NO_PREALLOC == 0;
    let percpu_lru = attr.map_flags & BPF_F_NO_COMMON_LRU != 0;
    check_flags(attr, HTAB_FLAGS)?;
    if !lru && percpu_lru {
        return Err(invalid(attr, "BPF_F_NO_COMMON_LRU is for LRU maps only"));
    }
    if lru && !prealloc {
        return Err(MapError::NotSupported {
            map: attr.label(),
            op: "BPF_F_NO_PREALLOC on an LRU map",
        });
    }
    if has_numa(attr) && (percpu || percpu_lru) {
        return Err(invalid(attr, "per-CPU maps take no NUMA node"));
    }
    if attr.max_entries == 0 || attr.key_size == 0 || attr.value_size == 0 {
        return Err(invalid(
            attr,
            "max_entries, key_size and value_size must be > 0",
        ));
    }
    if attr.key_size as u64 + attr.value_size as u64 >= KMALLOC_MAX_SIZE - SIZEOF_HTAB_ELEM {
        return Err(too_big(
            attr,
            format!(
                "key_size {} + value_size {} too large",
                attr.key_size, attr.value_size
            ),
        ));
    }
    if percpu && crate::mem::round8(attr.value_size as usize) as u64 > PCPU_MIN_UNIT_SIZE {
        return Err(too_big(
            attr,
            format!(
                "per-CPU value_size {} exceeds {PCPU_MIN_UNIT_SIZE}",
                attr.value_size
            ),
        ));
    }
    Ok(())
}

/// `dev_map_alloc_check`.
fn check_devmap(attr: &MapAttr) -> Result<(), MapError> {
    if attr.max_entries == 0 || attr.key_size != 4 || !matches!(attr.value_size, 4 | 8) {
        return Err(invalid(
            attr,
            format!(
                "need max_entries > 0, key_size 4 and value_size 4 or 8 (struct bpf_devmap_val), got {}/{}/{}",
                attr.max_entries, attr.key_size, attr.value_size
            ),
        ));
    }
    check_flags(attr, DEV_FLAGS)
}

/// `cpu_map_alloc`'s checks.
fn check_cpumap(attr: &MapAttr) -> Result<(), MapError> {
    if attr.max_entries == 0 || attr.key_size != 4 || !matches!(attr.value_size, 4 | 8) {
        return Err(invalid(
            attr,
            format!(
                "need max_entries > 0, key_size 4 and value_size 4 or 8 (struct bpf_cpumap_val), got {}/{}/{}",
                attr.max_entries, attr.key_size, attr.value_size
            ),
        ));
    }
    check_flags(attr, BPF_F_NUMA_NODE)?;
    if attr.max_entries > NR_CPUS {
        return Err(too_big(
            attr,
            format!("max_entries {} exceeds NR_CPUS {NR_CPUS}", attr.max_entries),
        ));
    }
    Ok(())
}

/// `queue_stack_map_alloc_check`.
fn check_queue(attr: &MapAttr) -> Result<(), MapError> {
    if attr.max_entries == 0 || attr.key_size != 0 || attr.value_size == 0 {
        return Err(invalid(
            attr,
            format!(
                "need max_entries > 0, key_size 0 and value_size > 0, got {}/{}/{}",
                attr.max_entries, attr.key_size, attr.value_size
            ),
        ));
    }
    check_flags(attr, QUEUE_FLAGS)?;
    if attr.value_size as u64 > KMALLOC_MAX_SIZE {
        return Err(too_big(
            attr,
            format!("value_size {} exceeds {KMALLOC_MAX_SIZE}", attr.value_size),
        ));
    }
    Ok(())
}

/// `ringbuf_map_alloc`'s checks.
fn check_ringbuf(attr: &MapAttr) -> Result<(), MapError> {
    check_flags(attr, BPF_F_NUMA_NODE)?;
    if attr.key_size != 0 || attr.value_size != 0 {
        return Err(invalid(attr, "ringbuf key_size and value_size must be 0"));
    }
    if !attr.max_entries.is_power_of_two() || !attr.max_entries.is_multiple_of(PAGE_SIZE) {
        return Err(invalid(
            attr,
            format!(
                "max_entries {} must be a power of 2 and a multiple of the page size {PAGE_SIZE}",
                attr.max_entries
            ),
        ));
    }
    Ok(())
}

/// `trie_alloc`'s checks.
fn check_lpm(attr: &MapAttr) -> Result<(), MapError> {
    if attr.max_entries == 0 {
        return Err(invalid(attr, "max_entries must be > 0"));
    }
    if attr.map_flags & BPF_F_NO_PREALLOC == 0 {
        return Err(invalid(attr, "lpm_trie needs BPF_F_NO_PREALLOC"));
    }
    check_flags(attr, LPM_FLAGS)?;
    if !(LPM_KEY_SIZE_MIN..=LPM_KEY_SIZE_MAX).contains(&attr.key_size) {
        return Err(invalid(
            attr,
            format!(
                "key_size {} outside {LPM_KEY_SIZE_MIN}..={LPM_KEY_SIZE_MAX} (u32 prefixlen + data)",
                attr.key_size
            ),
        ));
    }
    if !(1..=LPM_VAL_SIZE_MAX).contains(&attr.value_size) {
        return Err(invalid(
            attr,
            format!(
                "value_size {} outside 1..={LPM_VAL_SIZE_MAX}",
                attr.value_size
            ),
        ));
    }
    Ok(())
}

/// `bpf_map_meta_alloc`: the inner map template of a map of maps.
fn check_template(attr: &MapAttr) -> Result<(), MapError> {
    let Some(inner) = attr.inner.as_ref() else {
        return Err(invalid(attr, "a map of maps needs an inner map template"));
    };
    if inner.attr().map_type.is_map_in_map() {
        return Err(invalid(
            attr,
            "the inner map template cannot be a map of maps",
        ));
    }
    Ok(())
}

/// `map_check_btf` for `bpf_spin_lock`: only in hash and array values, 4-byte aligned.
fn check_spin_lock(attr: &MapAttr) -> Result<(), MapError> {
    let Some(off) = attr.spin_lock_off else {
        return Ok(());
    };
    if !matches!(
        attr.map_type,
        MapType::Hash
            | MapType::Array
            | MapType::CgroupStorage
            | MapType::SkStorage
            | MapType::InodeStorage
            | MapType::TaskStorage
            | MapType::CgrpStorage
    ) {
        return Err(MapError::OpNotSupported {
            map: attr.label(),
            reason: "bpf_spin_lock is only supported in hash, array and local storage map values"
                .into(),
        });
    }
    if off % 4 != 0 || off as u64 + 4 > attr.value_size as u64 {
        return Err(invalid(
            attr,
            format!(
                "bpf_spin_lock at offset {off} does not fit a {}-byte value",
                attr.value_size
            ),
        ));
    }
    Ok(())
}

/// A map type's own checks (`map_alloc_check`).
type CheckFn = fn(&MapAttr) -> Result<(), MapError>;
/// A map type's constructor (`map_alloc`), with the number of CPUs.
type AllocFn = fn(&MapAttr, usize) -> Result<Arc<dyn MapOps>, MapError>;

/// One map type bpfvm implements, as the kernel's `bpf_map_ops` holds it:
/// the type's own checks (`map_alloc_check`) and its constructor
/// (`map_alloc`), side by side.
struct MapTypeRow {
    map_type: MapType,
    check: CheckFn,
    alloc: AllocFn,
}

/// The constructor of a map implementation with `new(attr, ncpus)`.
macro_rules! alloc {
    ($t:ty) => {
        |attr: &MapAttr, ncpus: usize| -> Result<Arc<dyn MapOps>, MapError> {
            Ok(Arc::new(<$t>::new(attr, ncpus)?))
        }
    };
}

/// Every map type bpfvm implements, one row each, in kernel order; a type
/// without a row is refused as unimplemented.
const MAP_TYPES: &[MapTypeRow] = {
    use crate::special;
    use MapType as T;
    const fn row(map_type: MapType, check: CheckFn, alloc: AllocFn) -> MapTypeRow {
        MapTypeRow {
            map_type,
            check,
            alloc,
        }
    }
    &[
        row(T::Hash, check_hash, alloc!(HashTab)),
        row(T::Array, check_array, alloc!(ArrayMap)),
        row(T::ProgArray, check_array, alloc!(ProgArray)),
        row(T::PerfEventArray, special::check, special::perf_event_array),
        row(T::PercpuHash, check_hash, alloc!(HashTab)),
        row(T::PercpuArray, check_array, alloc!(ArrayMap)),
        row(T::StackTrace, special::check, special::stack_trace),
        row(T::CgroupArray, special::check, special::empty),
        row(T::LruHash, check_hash, alloc!(HashTab)),
        row(T::LruPercpuHash, check_hash, alloc!(HashTab)),
        row(T::LpmTrie, check_lpm, alloc!(LpmTrie)),
        row(T::ArrayOfMaps, check_array, alloc!(ArrayOfMaps)),
        row(T::HashOfMaps, check_hash, alloc!(HashTab)),
        row(T::Devmap, check_devmap, alloc!(DevArray)),
        row(T::Sockmap, special::check, special::empty),
        row(T::Cpumap, check_cpumap, alloc!(DevArray)),
        row(T::Xskmap, special::check, special::empty),
        row(T::Sockhash, special::check, special::empty),
        row(T::CgroupStorage, special::check, special::empty),
        row(T::ReuseportSockarray, special::check, special::empty),
        row(T::PercpuCgroupStorage, special::check, special::empty),
        row(T::Queue, check_queue, alloc!(QueueStack)),
        row(T::Stack, check_queue, alloc!(QueueStack)),
        row(T::SkStorage, special::check, special::empty),
        row(T::DevmapHash, check_devmap, alloc!(HashTab)),
        row(T::Ringbuf, check_ringbuf, alloc!(RingBuf)),
        row(T::BloomFilter, special::check, special::bloom_filter),
        // The same checks as ringbuf (ringbuf_map_alloc serves both).
        row(T::UserRingbuf, check_ringbuf, alloc!(UserRingBuf)),
    ]
};

fn row_of(t: MapType) -> Option<&'static MapTypeRow> {
    MAP_TYPES.iter().find(|r| r.map_type == t)
}

/// Whether `bpfvm` implements this map type.
pub fn is_supported(t: MapType) -> bool {
    row_of(t).is_some()
}

/// Every map type `bpfvm` implements, in kernel order.
pub fn supported_map_types() -> impl Iterator<Item = MapType> {
    MAP_TYPES.iter().map(|r| r.map_type)
}

/// `BPF_MAP_CREATE`: validate `attr` like the kernel and create the map with `ncpus`
/// simulated CPUs (per-CPU maps keep that many values; use [`default_ncpus`]).
pub fn create_map(attr: &MapAttr, ncpus: usize) -> Result<Arc<dyn MapOps>, MapError> {
    let t = attr.map_type;
    if t == MapType::Unspec {
        return Err(invalid(attr, "map type 0 (unspec) is not a map type"));
    }
    let Some(row) = row_of(t) else {
        return Err(MapError::Unimplemented {
            map: attr.label(),
            type_name: t.name(),
            type_num: t as u32,
        });
    };
    if ncpus == 0 {
        return Err(invalid(attr, "at least one CPU is needed"));
    }
    if attr.map_flags & (BPF_F_RDONLY | BPF_F_WRONLY) == (BPF_F_RDONLY | BPF_F_WRONLY) {
        return Err(invalid(attr, "BPF_F_RDONLY and BPF_F_WRONLY together"));
    }
    if has_numa(attr) && attr.numa_node != 0 {
        return Err(invalid(
            attr,
            format!("NUMA node {} does not exist (only node 0)", attr.numa_node),
        ));
    }
    check_name(attr)?;
    (row.check)(attr)?;
    if t.is_map_in_map() {
        check_template(attr)?;
    }
    check_spin_lock(attr)?;
    (row.alloc)(attr, ncpus)
}

#[cfg(test)]
mod registry_tests {
    use super::*;

    #[test]
    fn one_row_per_type_in_kernel_order() {
        let types: Vec<MapType> = supported_map_types().collect();
        assert!(types.windows(2).all(|w| w[0] < w[1]), "{types:?}");
        assert!(!is_supported(MapType::Unspec));
        assert!(!is_supported(MapType::Arena));
        let e = create_map(&MapAttr::new(MapType::Arena, 0, 0, 1), 1).err();
        assert!(matches!(e, Some(MapError::Unimplemented { .. })), "{e:?}");
    }
}
