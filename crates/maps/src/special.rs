//! Map types whose elements are kernel objects or kernel-made data, with the
//! kernel's creation rules, sizes and user-space answers (checked against
//! Linux 6.18 with bpftool):
//!
//! - `perf_event_array` (`arraymap.c`): slots hold perf events; a program's
//!   `bpf_perf_event_output` appends a record to the event of its slot. bpfvm
//!   has no perf events: a slot is opened by a reader ([`PerfEventArray::open`],
//!   what `map event_pipe` does) and collects records until it is closed;
//!   without a reader the helper gets `-ENOENT`, as in the kernel.
//! - `cgroup_array`: slots hold cgroups; bpfvm has none, so every slot is empty.
//! - `stack_trace` (`stackmap.c`): stack ids to instruction pointers; bpfvm
//!   has no kernel or user stack to walk, so it stays empty.
//! - `xskmap` (`xskmap.c`): AF_XDP sockets; bpfvm has none.
//! - `bloom_filter` (`bloom_filter.c`): a bit array with `k` jhash probes.
//! - `sockmap`, `sockhash` (`sock_map.c`), `reuseport_sockarray`,
//!   `sk_storage` (`bpf_sk_storage.c`):
//!   sockets and per-socket storage; bpfvm has no sockets.
//! - `cgroup_storage`, `percpu_cgroup_storage` (`local_storage.c`): storage per
//!   attached cgroup; nothing attaches to cgroups here, so the map stays empty
//!   (a test run's `bpf_get_local_storage` gets storage of its own, as there).
//!
//! The maps with nothing to hold answer user space as the kernel does for
//! empty ones; the verifier's rules for them are bpfvm-verifier's.

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::array::{array_next_key, index_key};
use crate::error::MapError;
use crate::ops::{Common, MapOps, ValueRegion};
use crate::types::*;

// Structure sizes of Linux 6.18 (x86-64) used by their `map_mem_usage`.
const SIZEOF_BPF_STACK_MAP: u64 = 320;
const SIZEOF_STACK_MAP_BUCKET: u64 = 16;
const SIZEOF_XSK_MAP: u64 = 304;
const SIZEOF_REUSEPORT_ARRAY: u64 = 296;
const SIZEOF_BLOOM_FILTER: u64 = 312;
const SIZEOF_SOCK_MAP: u64 = 376;
const SIZEOF_SOCK_HASH: u64 = 384;
const SIZEOF_SOCK_HASH_BUCKET: u64 = 16;
const SIZEOF_CGROUP_STORAGE_MAP: u64 = 328;
const SIZEOF_LOCAL_STORAGE_MAP: u64 = 480;
const SIZEOF_LOCAL_STORAGE_BUCKET: u64 = 16;

/// `sysctl_perf_event_max_stack`'s default.
pub const PERF_EVENT_MAX_STACK: u32 = 127;
/// `sizeof(struct bpf_stack_build_id)`.
const STACK_BUILD_ID_SIZE: u32 = 32;
/// `BPF_LOCAL_STORAGE_MAX_VALUE_SIZE` on 6.18 x86-64: `U16_MAX` less a
/// 128-byte `struct bpf_local_storage_elem` (observed: 65407 is the largest
/// cgroup_storage value the kernel creates).
const LOCAL_STORAGE_MAX_VALUE_SIZE: u32 = 65535 - 128;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

fn flags_ok(attr: &MapAttr, allowed: u32) -> Result<(), MapError> {
    let bad = attr.map_flags & !allowed;
    if bad != 0 {
        return Err(invalid(
            attr,
            format!("map_flags {bad:#x} not allowed for this map type"),
        ));
    }
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

/// The creation checks of the types in this module, in the kernel's order.
pub(crate) fn check(attr: &MapAttr) -> Result<(), MapError> {
    use MapType::*;
    let a = attr;
    match a.map_type {
        PerfEventArray | CgroupArray => {
            // fd_array_map_alloc_check + array_map_alloc_check
            if a.value_size != 4 {
                return Err(invalid(
                    a,
                    format!("value_size must be 4, got {}", a.value_size),
                ));
            }
            if a.max_entries == 0 || a.key_size != 4 {
                return Err(invalid(a, "need max_entries > 0 and key_size 4"));
            }
            let allowed = BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK | BPF_F_PRESERVE_ELEMS;
            flags_ok(a, allowed)?;
            if a.map_type != PerfEventArray && a.map_flags & BPF_F_PRESERVE_ELEMS != 0 {
                return Err(invalid(
                    a,
                    "BPF_F_PRESERVE_ELEMS is for perf_event_array only",
                ));
            }
        }
        StackTrace => {
            flags_ok(
                a,
                BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_STACK_BUILD_ID,
            )?;
            if a.max_entries == 0
                || a.key_size != 4
                || a.value_size < 8
                || !a.value_size.is_multiple_of(8)
            {
                return Err(invalid(
                    a,
                    "need max_entries > 0, key_size 4 and value_size a non-zero multiple of 8",
                ));
            }
            let per = if a.map_flags & BPF_F_STACK_BUILD_ID != 0 {
                if !a.value_size.is_multiple_of(STACK_BUILD_ID_SIZE) {
                    return Err(invalid(
                        a,
                        "value_size must be a multiple of 32 with BPF_F_STACK_BUILD_ID",
                    ));
                }
                STACK_BUILD_ID_SIZE
            } else {
                8
            };
            if a.value_size / per > PERF_EVENT_MAX_STACK {
                return Err(invalid(
                    a,
                    format!(
                        "value_size {} holds more than {PERF_EVENT_MAX_STACK} frames",
                        a.value_size
                    ),
                ));
            }
            if a.max_entries > 1 << 31 {
                return Err(too_big(a, "max_entries too large"));
            }
        }
        Xskmap => {
            if a.max_entries == 0 || a.key_size != 4 || a.value_size != 4 {
                return Err(invalid(
                    a,
                    "need max_entries > 0, key_size 4 and value_size 4",
                ));
            }
            flags_ok(a, BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY)?;
        }
        BloomFilter => {
            if a.key_size != 0 || a.value_size == 0 || a.max_entries == 0 {
                return Err(invalid(
                    a,
                    "need key_size 0, value_size > 0 and max_entries > 0",
                ));
            }
            flags_ok(a, BPF_F_NUMA_NODE | BPF_F_ZERO_SEED | BPF_F_ACCESS_MASK)?;
            if a.map_extra & !0xf != 0 {
                return Err(invalid(
                    a,
                    "map_extra holds only the number of hash functions (0-15)",
                ));
            }
            if a.value_size as u64 > crate::create::KMALLOC_MAX_SIZE {
                return Err(too_big(a, "value_size too large"));
            }
        }
        ReuseportSockarray => {
            if !matches!(a.value_size, 4 | 8) || a.max_entries == 0 || a.key_size != 4 {
                return Err(invalid(
                    a,
                    "need max_entries > 0, key_size 4 and value_size 4 or 8",
                ));
            }
            flags_ok(a, BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK)?;
        }
        Sockmap | Sockhash => {
            if a.max_entries == 0
                || !matches!(a.value_size, 4 | 8)
                || (a.map_type == Sockmap && a.key_size != 4)
                || (a.map_type == Sockhash && a.key_size == 0)
            {
                return Err(invalid(
                    a,
                    "need max_entries > 0, a key (4 bytes for sockmap) and value_size 4 or 8",
                ));
            }
            flags_ok(a, BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY)?;
            if a.map_type == Sockhash && a.key_size > 512 {
                return Err(too_big(a, "key_size exceeds the stack (512)"));
            }
        }
        SkStorage => {
            if a.map_flags & !(BPF_F_NO_PREALLOC | BPF_F_CLONE) != 0
                || a.map_flags & BPF_F_NO_PREALLOC == 0
                || a.max_entries != 0
                || a.key_size != 4
                || a.value_size == 0
                || a.btf_key_type_id == 0
                || a.btf_value_type_id == 0
            {
                return Err(invalid(
                    a,
                    "need BPF_F_NO_PREALLOC, max_entries 0, key_size 4, value_size > 0 and BTF key and value types",
                ));
            }
            if a.value_size > LOCAL_STORAGE_MAX_VALUE_SIZE {
                return Err(too_big(a, "value_size too large"));
            }
        }
        CgroupStorage | PercpuCgroupStorage => {
            let max = if a.map_type == PercpuCgroupStorage {
                LOCAL_STORAGE_MAX_VALUE_SIZE.min(crate::create::PCPU_MIN_UNIT_SIZE as u32)
            } else {
                LOCAL_STORAGE_MAX_VALUE_SIZE
            };
            if a.key_size != 16 && a.key_size != 8 {
                return Err(invalid(
                    a,
                    "key_size must be 8 (cgroup id) or 16 (struct bpf_cgroup_storage_key)",
                ));
            }
            if a.value_size == 0 {
                return Err(invalid(a, "value_size must be > 0"));
            }
            if a.value_size > max {
                return Err(too_big(a, format!("value_size exceeds {max}")));
            }
            flags_ok(a, BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK)?;
            if a.max_entries != 0 {
                return Err(invalid(a, "max_entries must be 0 (storage is per cgroup)"));
            }
        }
        t => {
            // Only the rows of the map type table that name this check get here.
            return Err(MapError::Unimplemented {
                map: a.label(),
                type_name: t.name(),
                type_num: t as u32,
            });
        }
    }
    Ok(())
}

/// `perf_event_array`'s constructor (its checks passed).
pub(crate) fn perf_event_array(attr: &MapAttr, ncpus: usize) -> Result<Arc<dyn MapOps>, MapError> {
    Ok(Arc::new(PerfEventArray::new(Common::new(attr, ncpus))?))
}

/// `stack_trace`'s constructor (its checks passed).
pub(crate) fn stack_trace(attr: &MapAttr, ncpus: usize) -> Result<Arc<dyn MapOps>, MapError> {
    let c = Common::new(attr, ncpus);
    let n_buckets = (attr.max_entries as u64).next_power_of_two();
    crate::create::check_budget(
        &c,
        n_buckets * 8 + attr.max_entries as u64 * (16 + attr.value_size as u64),
    )?;
    Ok(Arc::new(StackTrace {
        c,
        n_buckets,
        ids: Mutex::new(BTreeMap::new()),
    }))
}

/// `bloom_filter`'s constructor (its checks passed).
pub(crate) fn bloom_filter(attr: &MapAttr, ncpus: usize) -> Result<Arc<dyn MapOps>, MapError> {
    Ok(Arc::new(BloomFilter::new(Common::new(attr, ncpus))?))
}

/// The constructor of the maps of kernel objects bpfvm does not have (see
/// [`Empty`]).
pub(crate) fn empty(attr: &MapAttr, ncpus: usize) -> Result<Arc<dyn MapOps>, MapError> {
    Ok(Arc::new(Empty::new(Common::new(attr, ncpus))?))
}

/// A record a `perf_event_array` slot collected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerfRecord {
    /// When it was written (`CLOCK_MONOTONIC` nanoseconds).
    pub time_ns: u64,
    /// The bytes the program gave (and packet bytes it asked for).
    pub data: Vec<u8>,
}

/// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`.
pub struct PerfEventArray {
    c: Common,
    /// Per slot: the CPU its reader's event is bound to and the records it
    /// collected (None: no perf event there).
    slots: Mutex<Vec<Option<PerfSlot>>>,
}

/// A perf event in a slot: the CPU it is bound to and its records.
type PerfSlot = (u32, VecDeque<PerfRecord>);

/// Records a slot keeps before the oldest are dropped (a perf buffer overruns).
const PERF_RING_RECORDS: usize = 4096;

impl PerfEventArray {
    fn new(c: Common) -> Result<PerfEventArray, MapError> {
        let n = c.attr.max_entries as usize;
        crate::create::check_budget(&c, n as u64 * 8)?;
        Ok(PerfEventArray {
            c,
            slots: Mutex::new(vec![None; n]),
        })
    }

    /// Opens a reader at `index`: a perf event bound to `cpu` (what
    /// `bpftool map event_pipe` puts in each CPU's slot).
    pub fn open(&self, index: u32, cpu: u32) -> Result<(), MapError> {
        let mut s = lock(&self.slots);
        let max = self.c.attr.max_entries;
        let slot = s.get_mut(index as usize).ok_or_else(|| {
            self.c
                .too_big(format!("index {index} out of range (max_entries {max})"))
        })?;
        if slot.is_none() {
            *slot = Some((cpu, VecDeque::new()));
        }
        Ok(())
    }

    /// Closes the reader at `index`, returning what it had not read.
    pub fn close(&self, index: u32) -> Vec<PerfRecord> {
        lock(&self.slots)
            .get_mut(index as usize)
            .and_then(Option::take)
            .map(|(_, q)| Vec::from(q))
            .unwrap_or_default()
    }

    /// The CPU of the event open at `index`, if one is.
    pub fn reader_cpu(&self, index: u32) -> Option<u32> {
        lock(&self.slots)
            .get(index as usize)
            .and_then(|s| s.as_ref())
            .map(|(cpu, _)| *cpu)
    }

    /// Takes the records collected at `index` so far.
    pub fn read(&self, index: u32) -> Vec<PerfRecord> {
        lock(&self.slots)
            .get_mut(index as usize)
            .and_then(|s| s.as_mut())
            .map(|(_, q)| q.drain(..).collect())
            .unwrap_or_default()
    }

    /// `bpf_perf_event_output` into slot `index` from a program running on
    /// `cpu`: `Err(errno)` as the helper returns it (`E2BIG` past the end,
    /// `ENOENT` without a reader, `EOPNOTSUPP` for an event of another CPU).
    pub fn output(&self, index: u64, cpu: u32, record: PerfRecord) -> Result<(), i32> {
        if index >= self.c.attr.max_entries as u64 {
            return Err(crate::error::E2BIG);
        }
        let mut s = lock(&self.slots);
        let Some((bound, q)) = s.get_mut(index as usize).and_then(|s| s.as_mut()) else {
            return Err(crate::error::ENOENT);
        };
        if *bound != cpu {
            return Err(crate::error::EOPNOTSUPP);
        }
        if q.len() >= PERF_RING_RECORDS {
            q.pop_front();
        }
        q.push_back(record);
        Ok(())
    }
}

impl MapOps for PerfEventArray {
    fn attr(&self) -> &MapAttr {
        &self.c.attr
    }
    fn ncpus(&self) -> usize {
        self.c.ncpus
    }
    fn lookup(&self, _key: &[u8], _cpu: usize) -> Option<*mut u8> {
        None
    }
    fn update(&self, _key: &[u8], _value: &[u8], _flags: u64, _cpu: usize) -> Result<(), MapError> {
        Err(self.not_supported("update from a program"))
    }
    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.c.check_key(key)?;
        let index = index_key(key).unwrap_or(u32::MAX);
        if index >= self.c.attr.max_entries {
            return Err(self.c.too_big("index out of range"));
        }
        match lock(&self.slots)[index as usize].take() {
            Some(_) => Ok(()),
            None => Err(self.c.not_found()),
        }
    }
    fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), MapError> {
        array_next_key(&self.c, key, next)
    }
    fn lookup_user(&self, _key: &[u8], _out: &mut [u8], _flags: u64) -> Result<(), MapError> {
        Err(self.not_supported("lookup from user space"))
    }
    fn update_user(&self, _key: &[u8], _value: &[u8], _flags: u64) -> Result<(), MapError> {
        Err(MapError::BadFd {
            map: self.label(),
            reason: "values are perf event fds, which bpfvm does not have (use map event_pipe)"
                .into(),
        })
    }
    fn delete_user(&self, key: &[u8]) -> Result<(), MapError> {
        self.c.check_user_write()?;
        self.delete(key)
    }
    fn freeze(&self) -> Result<(), MapError> {
        self.c.freeze()
    }
    fn is_frozen(&self) -> bool {
        self.c.is_frozen()
    }
    fn value_regions(&self) -> Vec<ValueRegion> {
        Vec::new()
    }
    fn memory_usage(&self) -> u64 {
        crate::create::SIZEOF_BPF_ARRAY + 8 * self.c.attr.max_entries as u64
    }
    fn entries(&self) -> u64 {
        self.c.attr.max_entries as u64
    }
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_perf_event_array(&self) -> Option<&PerfEventArray> {
        Some(self)
    }
}

/// `BPF_MAP_TYPE_STACK_TRACE`: stack ids to frames. bpfvm collects none.
pub struct StackTrace {
    c: Common,
    n_buckets: u64,
    ids: Mutex<BTreeMap<u32, Vec<u8>>>,
}

impl MapOps for StackTrace {
    fn attr(&self) -> &MapAttr {
        &self.c.attr
    }
    fn ncpus(&self) -> usize {
        self.c.ncpus
    }
    fn lookup(&self, _key: &[u8], _cpu: usize) -> Option<*mut u8> {
        None
    }
    fn update(&self, _key: &[u8], _value: &[u8], _flags: u64, _cpu: usize) -> Result<(), MapError> {
        Err(self
            .c
            .invalid("stack traces are only written by bpf_get_stackid"))
    }
    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.c.check_key(key)?;
        let id = index_key(key).unwrap_or(u32::MAX);
        lock(&self.ids)
            .remove(&id)
            .map(|_| ())
            .ok_or_else(|| self.c.not_found())
    }
    fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), MapError> {
        self.c.check_user_read()?;
        let start = match key.and_then(index_key) {
            Some(k) if (k as u64) < self.n_buckets => k + 1,
            _ => 0,
        };
        let ids = lock(&self.ids);
        let Some((&id, _)) = ids.range(start..).next() else {
            return Err(self.c.not_found());
        };
        if next.len() != 4 {
            return Err(self.c.invalid("next key buffer must be 4 bytes"));
        }
        next.copy_from_slice(&id.to_ne_bytes());
        Ok(())
    }
    fn lookup_user(&self, key: &[u8], out: &mut [u8], _flags: u64) -> Result<(), MapError> {
        self.c.check_user_read()?;
        self.c.check_key(key)?;
        self.c.check_user_value(out.len())?;
        let id = index_key(key).unwrap_or(u32::MAX);
        let ids = lock(&self.ids);
        let v = ids.get(&id).ok_or_else(|| self.c.not_found())?;
        out.fill(0);
        let n = v.len().min(out.len());
        out[..n].copy_from_slice(&v[..n]);
        Ok(())
    }
    fn update_user(&self, _key: &[u8], _value: &[u8], _flags: u64) -> Result<(), MapError> {
        Err(self
            .c
            .invalid("stack traces are only written by bpf_get_stackid"))
    }
    fn delete_user(&self, key: &[u8]) -> Result<(), MapError> {
        self.c.check_user_write()?;
        self.delete(key)
    }
    fn freeze(&self) -> Result<(), MapError> {
        self.c.freeze()
    }
    fn is_frozen(&self) -> bool {
        self.c.is_frozen()
    }
    fn value_regions(&self) -> Vec<ValueRegion> {
        Vec::new()
    }
    fn memory_usage(&self) -> u64 {
        SIZEOF_BPF_STACK_MAP
            + self.n_buckets * 8
            + self.c.attr.max_entries as u64
                * (SIZEOF_STACK_MAP_BUCKET + self.c.attr.value_size as u64)
    }
    fn entries(&self) -> u64 {
        lock(&self.ids).len() as u64
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `BPF_MAP_TYPE_BLOOM_FILTER`: `k` bits per value, probed with jhash
/// (seeded with 0: bpfvm's hashing is deterministic, as with
/// `BPF_F_ZERO_SEED`).
pub struct BloomFilter {
    c: Common,
    bits: Vec<AtomicU64>,
    mask: u32,
    nr_hash: u32,
}

impl BloomFilter {
    fn new(c: Common) -> Result<BloomFilter, MapError> {
        let nr_hash = match (c.attr.map_extra & 0xf) as u32 {
            0 => 5,
            n => n,
        };
        // n * k / ln(2), with 7/5 for 1/ln(2), rounded up to a power of two.
        let nr_bits = (c.attr.max_entries as u64)
            .checked_mul(nr_hash as u64)
            .map(|b| b / 5 * 7)
            .filter(|&b| b <= 1 << 31);
        let (bytes, mask) = match nr_bits {
            Some(b) => {
                let b = if b <= 64 { 64 } else { b.next_power_of_two() };
                (b / 8, (b - 1) as u32)
            }
            None => ((u32::MAX as u64).div_ceil(8), u32::MAX),
        };
        let bytes = bytes.div_ceil(8) * 8;
        crate::create::check_budget(&c, bytes)?;
        let bits = (0..bytes / 8).map(|_| AtomicU64::new(0)).collect();
        Ok(BloomFilter {
            c,
            bits,
            mask,
            nr_hash,
        })
    }

    fn bit(&self, value: &[u8], i: u32) -> u32 {
        let h = if value.len().is_multiple_of(4) {
            let words: Vec<u32> = value
                .chunks(4)
                .map(|w| u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
                .collect();
            jhash2(&words, i)
        } else {
            jhash(value, i)
        };
        h & self.mask
    }

    fn test_and_set(&self, value: &[u8], set: bool) -> bool {
        let mut all = true;
        for i in 0..self.nr_hash {
            let b = self.bit(value, i) as usize;
            let w = &self.bits[b / 64];
            let m = 1u64 << (b % 64);
            if set {
                w.fetch_or(m, Ordering::Relaxed);
            } else if w.load(Ordering::Relaxed) & m == 0 {
                all = false;
            }
        }
        all
    }
}

impl MapOps for BloomFilter {
    fn attr(&self) -> &MapAttr {
        &self.c.attr
    }
    fn ncpus(&self) -> usize {
        self.c.ncpus
    }
    fn lookup(&self, _key: &[u8], _cpu: usize) -> Option<*mut u8> {
        None
    }
    fn update(&self, _key: &[u8], _value: &[u8], _flags: u64, _cpu: usize) -> Result<(), MapError> {
        Err(self.c.invalid("use bpf_map_push_elem"))
    }
    fn delete(&self, _key: &[u8]) -> Result<(), MapError> {
        Err(self.op_not_supported("delete"))
    }
    fn get_next_key(&self, _key: Option<&[u8]>, _next: &mut [u8]) -> Result<(), MapError> {
        Err(self.op_not_supported("get_next_key"))
    }
    /// A peek: `out` holds the value to test (`ENOENT`: surely absent).
    fn lookup_user(&self, key: &[u8], out: &mut [u8], _flags: u64) -> Result<(), MapError> {
        self.c.check_user_read()?;
        if !key.is_empty() {
            return Err(self.c.invalid("a bloom filter takes no key"));
        }
        self.peek(out)
    }
    /// A push of `value`.
    fn update_user(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        self.c.check_user_write()?;
        if !key.is_empty() {
            return Err(self.c.invalid("a bloom filter takes no key"));
        }
        self.push(value, flags)
    }
    fn delete_user(&self, _key: &[u8]) -> Result<(), MapError> {
        Err(self.op_not_supported("delete"))
    }
    fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        self.c.check_value(value)?;
        if flags != BPF_ANY {
            return Err(self.c.invalid("bloom filter pushes take BPF_ANY"));
        }
        self.test_and_set(value, true);
        Ok(())
    }
    fn peek(&self, out: &mut [u8]) -> Result<(), MapError> {
        self.c.check_value(out)?;
        if self.test_and_set(out, false) {
            Ok(())
        } else {
            Err(self.c.not_found())
        }
    }
    fn pop(&self, _out: &mut [u8]) -> Result<(), MapError> {
        Err(self.op_not_supported("pop"))
    }

    fn freeze(&self) -> Result<(), MapError> {
        self.c.freeze()
    }
    fn is_frozen(&self) -> bool {
        self.c.is_frozen()
    }
    fn value_regions(&self) -> Vec<ValueRegion> {
        Vec::new()
    }
    fn memory_usage(&self) -> u64 {
        SIZEOF_BLOOM_FILTER + self.bits.len() as u64 * 8
    }
    fn entries(&self) -> u64 {
        0
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

trait OpNotSupported {
    fn op_not_supported(&self, op: &str) -> MapError;
}

impl<T: MapOps> OpNotSupported for T {
    fn op_not_supported(&self, op: &str) -> MapError {
        MapError::OpNotSupported {
            map: self.label(),
            reason: format!("{op} is not supported by this map type"),
        }
    }
}

/// Maps of kernel objects bpfvm does not have: cgroup_array, xskmap,
/// sockmap, sockhash, sk_storage, cgroup_storage, percpu_cgroup_storage.
/// Always empty, answering user space as the kernel does when empty.
pub struct Empty {
    c: Common,
}

impl Empty {
    fn new(c: Common) -> Result<Empty, MapError> {
        Ok(Empty { c })
    }
    fn t(&self) -> MapType {
        self.c.attr.map_type
    }
    fn no_objects(&self) -> &'static str {
        match self.t() {
            MapType::CgroupArray => "cgroups",
            MapType::Xskmap => "AF_XDP sockets",
            MapType::CgroupStorage | MapType::PercpuCgroupStorage => "cgroups to attach to",
            _ => "sockets",
        }
    }
}

impl MapOps for Empty {
    fn attr(&self) -> &MapAttr {
        &self.c.attr
    }
    fn ncpus(&self) -> usize {
        self.c.ncpus
    }
    fn lookup(&self, _key: &[u8], _cpu: usize) -> Option<*mut u8> {
        None
    }
    fn update(&self, _key: &[u8], _value: &[u8], _flags: u64, _cpu: usize) -> Result<(), MapError> {
        Err(self.not_supported("update from a program"))
    }
    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.c.check_key(key)?;
        match self.t() {
            // xsk_map_delete_elem clears the slot, empty or not.
            MapType::Xskmap => {
                let i = index_key(key).unwrap_or(u32::MAX);
                if i >= self.c.attr.max_entries {
                    return Err(self.c.invalid("index out of range"));
                }
                Ok(())
            }
            MapType::CgroupArray => {
                if index_key(key).unwrap_or(u32::MAX) >= self.c.attr.max_entries {
                    return Err(self.c.too_big("index out of range"));
                }
                Err(self.c.not_found())
            }
            MapType::Sockmap | MapType::CgroupStorage | MapType::PercpuCgroupStorage => {
                Err(self.c.invalid("no element at that key"))
            }
            MapType::SkStorage => Err(MapError::BadFd {
                map: self.label(),
                reason: "keys are socket fds, and bpfvm has no sockets".into(),
            }),
            _ => Err(self.c.not_found()),
        }
    }
    fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), MapError> {
        match self.t() {
            MapType::CgroupArray
            | MapType::Xskmap
            | MapType::Sockmap
            | MapType::ReuseportSockarray => array_next_key(&self.c, key, next),
            MapType::SkStorage => Err(self.not_supported("get_next_key")),
            _ => {
                self.c.check_user_read()?;
                Err(self.c.not_found())
            }
        }
    }
    fn lookup_user(&self, key: &[u8], out: &mut [u8], flags: u64) -> Result<(), MapError> {
        self.c.check_user_read()?;
        let _ = flags;
        match self.t() {
            MapType::CgroupArray => Err(self.not_supported("lookup from user space")),
            MapType::Xskmap => Err(MapError::OpNotSupported {
                map: self.label(),
                reason: "xskmap elements cannot be read from user space".into(),
            }),
            MapType::Sockmap | MapType::Sockhash | MapType::ReuseportSockarray
                if self.c.attr.value_size != 8 =>
            {
                Err(MapError::NoRoom {
                    map: self.label(),
                    reason: "reading a socket's cookie needs an 8-byte value".into(),
                })
            }
            MapType::SkStorage => Err(MapError::BadFd {
                map: self.label(),
                reason: "keys are socket fds, and bpfvm has no sockets".into(),
            }),
            _ => {
                self.c.check_key(key)?;
                let _ = out;
                Err(self.c.not_found())
            }
        }
    }
    fn update_user(&self, key: &[u8], _value: &[u8], _flags: u64) -> Result<(), MapError> {
        self.c.check_user_write()?;
        match self.t() {
            MapType::Xskmap
            | MapType::Sockmap
            | MapType::Sockhash
            | MapType::ReuseportSockarray => Err(MapError::NotSocket {
                map: self.label(),
                reason: format!(
                    "values are socket fds, and bpfvm has no {}",
                    self.no_objects()
                ),
            }),
            MapType::CgroupArray | MapType::SkStorage => Err(MapError::BadFd {
                map: self.label(),
                reason: format!("bpfvm has no {} to refer to", self.no_objects()),
            }),
            _ => {
                self.c.check_key(key)?;
                Err(self.c.not_found())
            }
        }
    }
    fn delete_user(&self, key: &[u8]) -> Result<(), MapError> {
        self.c.check_user_write()?;
        self.delete(key)
    }
    fn freeze(&self) -> Result<(), MapError> {
        self.c.freeze()
    }
    fn is_frozen(&self) -> bool {
        self.c.is_frozen()
    }
    fn value_regions(&self) -> Vec<ValueRegion> {
        Vec::new()
    }
    fn memory_usage(&self) -> u64 {
        let n = self.c.attr.max_entries as u64;
        match self.t() {
            MapType::CgroupArray => crate::create::SIZEOF_BPF_ARRAY + 8 * n,
            MapType::Xskmap => SIZEOF_XSK_MAP + 8 * n,
            MapType::ReuseportSockarray => SIZEOF_REUSEPORT_ARRAY + 8 * n,
            MapType::Sockmap => SIZEOF_SOCK_MAP + 8 * n,
            MapType::Sockhash => SIZEOF_SOCK_HASH + SIZEOF_SOCK_HASH_BUCKET * n.next_power_of_two(),
            MapType::SkStorage => {
                let buckets = (self.c.ncpus as u64).next_power_of_two().max(2);
                SIZEOF_LOCAL_STORAGE_MAP + SIZEOF_LOCAL_STORAGE_BUCKET * buckets
            }
            _ => SIZEOF_CGROUP_STORAGE_MAP,
        }
    }
    fn entries(&self) -> u64 {
        0
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Bob Jenkins' lookup3 `hashlittle` as the kernel's `jhash` computes it
/// (initial value `0xdeadbeef + length + initval`).
pub fn jhash(key: &[u8], initval: u32) -> u32 {
    let mut a = 0xdead_beefu32
        .wrapping_add(key.len() as u32)
        .wrapping_add(initval);
    let (mut b, mut c) = (a, a);
    let mut k = key;
    let word = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    while k.len() > 12 {
        a = a.wrapping_add(word(&k[0..4]));
        b = b.wrapping_add(word(&k[4..8]));
        c = c.wrapping_add(word(&k[8..12]));
        mix(&mut a, &mut b, &mut c);
        k = &k[12..];
    }
    if k.is_empty() {
        return c;
    }
    let mut tail = [0u8; 12];
    tail[..k.len()].copy_from_slice(k);
    a = a.wrapping_add(word(&tail[0..4]));
    b = b.wrapping_add(word(&tail[4..8]));
    c = c.wrapping_add(word(&tail[8..12]));
    final_mix(&mut a, &mut b, &mut c);
    c
}

/// The kernel's `jhash2` over 32-bit words.
pub fn jhash2(k: &[u32], initval: u32) -> u32 {
    let mut a = 0xdead_beefu32
        .wrapping_add((k.len() as u32) << 2)
        .wrapping_add(initval);
    let (mut b, mut c) = (a, a);
    let mut k = k;
    while k.len() > 3 {
        a = a.wrapping_add(k[0]);
        b = b.wrapping_add(k[1]);
        c = c.wrapping_add(k[2]);
        mix(&mut a, &mut b, &mut c);
        k = &k[3..];
    }
    match k.len() {
        0 => return c,
        3 => {
            c = c.wrapping_add(k[2]);
            b = b.wrapping_add(k[1]);
            a = a.wrapping_add(k[0]);
        }
        2 => {
            b = b.wrapping_add(k[1]);
            a = a.wrapping_add(k[0]);
        }
        _ => a = a.wrapping_add(k[0]),
    }
    final_mix(&mut a, &mut b, &mut c);
    c
}

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn final_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}
