//! Hash maps (kernel `hashtab.c`): `BPF_MAP_TYPE_HASH`, `PERCPU_HASH`, `LRU_HASH`,
//! `LRU_PERCPU_HASH`, and the hash-based `DEVMAP_HASH` and `HASH_OF_MAPS`.
//!
//! All `max_entries` elements are preallocated, as the kernel does by default: values live in
//! one arena at stable, 8-byte aligned addresses; a deleted element goes back to a free list
//! and is reused, never freed before the map. Buckets, chains (threaded through the
//! elements), hashes and keys are atomics that program-side lookups on the non-LRU kinds read
//! without a lock, as the kernel's RCU lookups do; writers (updates, deletes, every user-space
//! operation) serialise on an `RwLock` that also guards the free list and the LRU list.
//!
//! Lock-free lookups, as in the kernel's preallocated maps: a deleted element is reused at
//! once, so a program that looked up a key may find its value pointer now holding another
//! key's value. A reader never loops forever nor leaves the arena: chains end in a marker
//! naming their bucket (the kernel's "nulls" lists) so a walk that strayed into another bucket
//! restarts, walks are bounded, keys longer than 8 bytes are compared under a per-element
//! sequence count (shorter ones are one atomic word), and after a few restarts the lookup
//! takes the read lock.
//!
//! Behaviour worth knowing:
//! - Updating an existing key copies the new value in place (the kernel does so for per-CPU
//!   maps and `BPF_F_LOCK`; for plain hashes it swaps in a fresh element). A program holding
//!   the pointer sees the new value; a concurrent reader may see a torn value.
//! - `n_buckets` is `max_entries` rounded up to a power of two; new elements go to the head
//!   of their bucket; `get_next_key` walks buckets in order, then each chain, and a key not in
//!   the map restarts from the first element, as in the kernel. The hash seed is fixed, so
//!   the order is reproducible.
//! - LRU maps keep one exact LRU list. `BPF_F_NO_COMMON_LRU` is accepted and rounds
//!   `max_entries` up to a multiple of the CPU count as the kernel does, but the list stays
//!   common (the kernel would evict from the current CPU's share). Program-side lookups and all updates make an element most recently used;
//!   user-space lookups do not (as in the kernel). When the map is full, inserting evicts
//!   the least recently used element instead of failing with `E2BIG`.

use std::any::Any;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::devmap::{parse_pair, DevmapVal};
use crate::error::MapError;
use crate::fdarray::check_inner;
use crate::mem::{self, hash_key, round8, Arena};
use crate::ops::{Common, FdObject, ForEachCallback, GenLookup, MapOps, ValueRegion};
use crate::types::*;

/// End-of-chain marker bit: a chain ends in `NULLS | bucket` rather than one shared "none",
/// so a lock-free reader that followed a reused element into another bucket notices (the
/// kernel's `hlist_nulls`). Element indices stay below it (the byte budget caps
/// `max_entries` far lower).
const NULLS: u32 = 1 << 31;
/// "No element" in the LRU list links.
const NONE: u32 = u32::MAX;
/// Lock-free attempts before a program-side lookup gives up and takes the read lock (only
/// reached while writers keep recycling the elements the reader is walking).
const MAX_RESTARTS: u32 = 16;

#[inline]
fn is_nulls(i: u32) -> bool {
    i & NULLS != 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Percpu,
    Lru,
    LruPercpu,
    DevmapHash,
    OfMaps,
}

/// Word `j` of a key as stored in [`Table`]: the bytes in native order (as
/// `u64::from_ne_bytes`), the last word padded with zeros. Built in registers: going through
/// a zeroed `[u8; 8]` made the common 4-byte key a narrow store read back wide, which
/// defeats store forwarding and cost more than the rest of the lookup.
#[inline(always)]
fn key_word(key: &[u8], j: usize) -> u64 {
    let rest = key.get(j * 8..).unwrap_or_default();
    if let Some(w) = rest.first_chunk::<8>() {
        return u64::from_ne_bytes(*w);
    }
    // Byte `k` of a native-order word sits at bit 8k (little-endian) or 56 - 8k (big).
    let at = |k: usize, v: u64| {
        if cfg!(target_endian = "little") {
            v << (8 * k)
        } else {
            v << (56 - 8 * k)
        }
    };
    if let Some(w) = rest.first_chunk::<4>() {
        let v = u32::from_ne_bytes(*w) as u64;
        let lo = if cfg!(target_endian = "little") {
            v
        } else {
            v << 32
        };
        return rest[4..]
            .iter()
            .enumerate()
            .fold(lo, |acc, (k, &b)| acc | at(k + 4, b as u64));
    }
    rest.iter()
        .enumerate()
        .fold(0, |acc, (k, &b)| acc | at(k, b as u64))
}

#[cfg(test)]
#[test]
fn key_word_is_the_zero_padded_native_word() {
    let key: Vec<u8> = (1..=23).collect();
    for len in 0..=23usize {
        for j in 0..len.div_ceil(8) {
            let mut w = [0u8; 8];
            let part = &key[j * 8..len.min(j * 8 + 8)];
            w[..part.len()].copy_from_slice(part);
            assert_eq!(
                key_word(&key[..len], j),
                u64::from_ne_bytes(w),
                "len {len} word {j}"
            );
        }
    }
}

/// The chains, hashes and keys: what a program-side lookup reads without any lock.
///
/// Only a writer holding the [`Index`] write lock changes them (the methods that do take
/// `&mut Index` as proof); readers load with `Acquire`, writers publish with `Release`, and
/// every field is atomic, so a reader racing a writer is never a data race. Deleted
/// elements keep their `next` link so that a reader standing on one can walk on. Keys of up
/// to 8 bytes are one atomic word, so a reader sees a whole key; longer keys are compared
/// under a per-element sequence count that a writer makes odd while it replaces the key.
struct Table {
    mask: u32,
    /// Elements (`max_entries`).
    n: usize,
    key_size: usize,
    /// Key words per element (`key_size` rounded up to 8, in words).
    kw: usize,
    /// Words per element record (`1 + kw`).
    stride: usize,
    /// First element of each bucket, or `NULLS | bucket`.
    heads: Box<[AtomicU32]>,
    /// Element records, `stride` words each: `hash | next << 32`, then the key words (one
    /// cache line holds several small-key elements whole).
    elems: Box<[AtomicU64]>,
    /// Per element, for keys longer than 8 bytes (else empty): even while the key is stable.
    seq: Box<[AtomicU32]>,
}

impl Table {
    fn new(max_entries: u32, key_size: usize) -> Table {
        let n = max_entries as usize;
        let n_buckets = (n.max(1)).next_power_of_two();
        let kw = key_size.div_ceil(8).max(1);
        let stride = 1 + kw;
        Table {
            mask: (n_buckets - 1) as u32,
            n,
            key_size,
            kw,
            stride,
            heads: (0..n_buckets as u32)
                .map(|b| AtomicU32::new(NULLS | b))
                .collect(),
            elems: (0..n * stride).map(|_| AtomicU64::new(0)).collect(),
            seq: (0..if kw > 1 { n } else { 0 })
                .map(|_| AtomicU32::new(0))
                .collect(),
        }
    }

    fn n_buckets(&self) -> usize {
        self.heads.len()
    }

    /// Element `idx`'s `hash | next << 32` word (callers keep `idx` below `max_entries`).
    #[inline(always)]
    fn meta(&self, idx: u32) -> &AtomicU64 {
        &self.elems[idx as usize * self.stride]
    }

    fn next_of(&self, idx: u32) -> u32 {
        (self.meta(idx).load(Ordering::Acquire) >> 32) as u32
    }

    fn hash_of(&self, idx: u32) -> u32 {
        self.meta(idx).load(Ordering::Relaxed) as u32
    }

    fn set_next(&self, _w: &mut Index, idx: u32, next: u32) {
        let hash = self.hash_of(idx) as u64;
        self.meta(idx)
            .store(hash | (next as u64) << 32, Ordering::Release);
    }

    /// Whether the key words of record `rec` (after its meta word) equal `key`'s.
    #[inline(always)]
    fn key_matches(rec: &[AtomicU64], key: &[u8], probe0: u64) -> bool {
        let Some((first, rest)) = rec.get(1..).and_then(|k| k.split_first()) else {
            return false;
        };
        first.load(Ordering::Relaxed) == probe0
            && rest
                .iter()
                .enumerate()
                .all(|(j, w)| w.load(Ordering::Relaxed) == key_word(key, j + 1))
    }

    /// Copy element `idx`'s key into `out` (`key_size` bytes).
    fn key_into(&self, idx: u32, out: &mut [u8]) {
        let base = idx as usize * self.stride + 1;
        for (j, chunk) in out.chunks_mut(8).enumerate() {
            let w = self.elems[base + j].load(Ordering::Relaxed).to_ne_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }

    /// The element holding `key`, with the index lock held (read or write): no writer runs,
    /// so one walk is exact.
    fn find_locked(&self, _ix: &Index, hash: u32, key: &[u8]) -> Option<u32> {
        if key.len() != self.key_size {
            return None;
        }
        let probe0 = key_word(key, 0);
        let mut i = self.heads[(hash & self.mask) as usize].load(Ordering::Relaxed);
        while !is_nulls(i) {
            let base = i as usize * self.stride;
            let rec = self.elems.get(base..base + self.stride)?;
            let m = rec[0].load(Ordering::Relaxed);
            if m as u32 == hash && Self::key_matches(rec, key, probe0) {
                return Some(i);
            }
            i = (m >> 32) as u32;
        }
        None
    }

    /// The element holding `key` (`key_size` bytes), without a lock. `Err(())` when writers
    /// kept changing the chain under the reader for [`MAX_RESTARTS`] walks.
    #[inline(always)]
    fn find_lockfree(&self, hash: u32, key: &[u8]) -> Result<Option<u32>, ()> {
        if self.kw == 1 {
            self.walk::<true>(hash, key)
        } else {
            self.walk::<false>(hash, key)
        }
    }

    /// [`find_lockfree`](Self::find_lockfree) for one key layout: `SMALL` keys (up to 8
    /// bytes) are one atomic word, compared in one load; longer ones under `seq`.
    #[inline(always)]
    fn walk<const SMALL: bool>(&self, hash: u32, key: &[u8]) -> Result<Option<u32>, ()> {
        let b = (hash & self.mask) as usize;
        let end = NULLS | b as u32;
        let probe0 = key_word(key, 0);
        let stride = if SMALL { 2 } else { self.stride };
        let elems = &*self.elems;
        let head = &self.heads[b];
        'walk: for _attempt in 0..MAX_RESTARTS {
            #[cfg(test)]
            if _attempt > 0 {
                stress::RESTARTS.fetch_add(1, Ordering::Relaxed);
            }
            let mut i = head.load(Ordering::Acquire);
            // A chain never holds more than every element; a longer walk went round in
            // circles through elements being recycled.
            let mut budget = self.n;
            while !is_nulls(i) {
                let base = i as usize * stride;
                let (Some(rec), Some(left)) =
                    (elems.get(base..base + stride), budget.checked_sub(1))
                else {
                    continue 'walk;
                };
                budget = left;
                let m = rec[0].load(Ordering::Acquire);
                if m as u32 == hash {
                    if SMALL {
                        // One atomic word: the key read is whole, if perhaps newer.
                        if rec[1].load(Ordering::Relaxed) == probe0 {
                            return Ok(Some(i));
                        }
                    } else {
                        // Seqlock read: an unchanged even count around the comparison
                        // means no writer replaced the key meanwhile.
                        let Some(seq) = self.seq.get(i as usize) else {
                            continue 'walk;
                        };
                        let s1 = seq.load(Ordering::Acquire);
                        let same = Self::key_matches(rec, key, probe0);
                        fence(Ordering::Acquire);
                        if s1 & 1 != 0 || seq.load(Ordering::Relaxed) != s1 {
                            continue 'walk;
                        }
                        if same {
                            return Ok(Some(i));
                        }
                    }
                }
                i = (m >> 32) as u32;
            }
            if i == end {
                return Ok(None);
            }
            // Ended in another bucket's chain: an element we stood on was moved. Again.
        }
        Err(())
    }

    /// Give free element `idx` its key and hash and put it at the head of its bucket. The
    /// element is published last, with `Release`, so a reader that reaches it through the
    /// bucket sees its key; a stale reader still on it sees the key change inside an odd
    /// `seq` window (long keys) or in one word (short keys).
    fn link(&self, ix: &mut Index, idx: u32, hash: u32, key: &[u8]) {
        let i = idx as usize;
        let seq = self.seq.get(i);
        let s = seq.map_or(0, |q| q.load(Ordering::Relaxed));
        if let Some(q) = seq {
            q.store(s.wrapping_add(1), Ordering::Relaxed);
            fence(Ordering::Release);
        }
        let base = i * self.stride;
        for j in 0..self.kw {
            self.elems[base + 1 + j].store(key_word(key, j), Ordering::Relaxed);
        }
        let b = (hash & self.mask) as usize;
        let head = self.heads[b].load(Ordering::Relaxed);
        self.elems[base].store(hash as u64 | (head as u64) << 32, Ordering::Release);
        if let Some(q) = seq {
            q.store(s.wrapping_add(2), Ordering::Release);
        }
        self.heads[b].store(idx, Ordering::Release);
        ix.count += 1;
    }

    /// Take `idx` out of its chain. Its own `next` stays, so a reader standing on it walks on.
    fn unlink(&self, ix: &mut Index, idx: u32) {
        let b = (self.hash_of(idx) & self.mask) as usize;
        let after = self.next_of(idx);
        let head = self.heads[b].load(Ordering::Relaxed);
        if head == idx {
            self.heads[b].store(after, Ordering::Release);
        } else {
            let mut i = head;
            while !is_nulls(i) {
                let n = self.next_of(i);
                if n == idx {
                    self.set_next(ix, i, after);
                    break;
                }
                i = n;
            }
        }
        ix.count -= 1;
        if let Some(slot) = ix.inner.get_mut(idx as usize) {
            *slot = None;
        }
    }

    /// First element at or after bucket `b`.
    fn first_from(&self, b: usize) -> Option<u32> {
        self.heads[b..]
            .iter()
            .map(|h| h.load(Ordering::Relaxed))
            .find(|&h| !is_nulls(h))
    }
}

/// The locked part: free list, count, LRU list, inner maps. Writers hold it for writing
/// while they change the [`Table`].
struct Index {
    free: Vec<u32>,
    count: u32,
    /// LRU list (empty for non-LRU maps): `lru_head` is the most recently used.
    lru_prev: Box<[u32]>,
    lru_next: Box<[u32]>,
    lru_head: u32,
    lru_tail: u32,
    /// Inner maps of a hash_of_maps, by element.
    inner: Vec<Option<Arc<dyn MapOps>>>,
}

impl Index {
    fn new(max_entries: u32, lru: bool, of_maps: bool) -> Index {
        let n = max_entries as usize;
        let lru_n = if lru { n } else { 0 };
        Index {
            // Popped from the end: element 0 is used first.
            free: (0..max_entries).rev().collect(),
            count: 0,
            lru_prev: vec![NONE; lru_n].into(),
            lru_next: vec![NONE; lru_n].into(),
            lru_head: NONE,
            lru_tail: NONE,
            inner: if of_maps { vec![None; n] } else { Vec::new() },
        }
    }

    fn lru_remove(&mut self, idx: u32) {
        if self.lru_prev.is_empty() {
            return;
        }
        let (p, n) = (self.lru_prev[idx as usize], self.lru_next[idx as usize]);
        if p == NONE {
            self.lru_head = n;
        } else {
            self.lru_next[p as usize] = n;
        }
        if n == NONE {
            self.lru_tail = p;
        } else {
            self.lru_prev[n as usize] = p;
        }
        self.lru_prev[idx as usize] = NONE;
        self.lru_next[idx as usize] = NONE;
    }

    fn lru_push_front(&mut self, idx: u32) {
        if self.lru_prev.is_empty() {
            return;
        }
        self.lru_prev[idx as usize] = NONE;
        self.lru_next[idx as usize] = self.lru_head;
        if self.lru_head != NONE {
            self.lru_prev[self.lru_head as usize] = idx;
        }
        self.lru_head = idx;
        if self.lru_tail == NONE {
            self.lru_tail = idx;
        }
    }

    fn lru_touch(&mut self, idx: u32) {
        if self.lru_head != idx {
            self.lru_remove(idx);
            self.lru_push_front(idx);
        }
    }
}

/// Where the value of an update comes from.
#[derive(Clone, Copy)]
enum Src<'a> {
    /// One value for one CPU (program side; for non-per-CPU maps `cpu` is 0).
    One(&'a [u8], usize),
    /// User-space value: all CPUs' values, each rounded up to 8 bytes, for per-CPU maps.
    User(&'a [u8]),
}

/// A hash map of any of the hash-based types.
pub struct HashTab {
    c: Common,
    kind: Kind,
    /// Chains and keys, read by program-side lookups without a lock.
    table: Table,
    /// Serialises writers; user-space reads and LRU lookups hold it too.
    index: RwLock<Index>,
    arena: Arena,
    /// Distance between two values (`round_up(value_size, 8)`).
    vstride: usize,
    /// Values per element (ncpus for per-CPU maps, else 1).
    copies: usize,
    /// LRU kinds: per element, whether a program looked it up since it was
    /// last placed at the front of the LRU list (the kernel's `ref` bit). Set
    /// without the lock; eviction gives such an element a second chance.
    lru_ref: Box<[AtomicBool]>,
}

impl HashTab {
    pub(crate) fn new(attr: &MapAttr, ncpus: usize) -> Result<HashTab, MapError> {
        let mut attr = attr.clone();
        let lru_type = matches!(attr.map_type, MapType::LruHash | MapType::LruPercpuHash);
        if lru_type && attr.map_flags & BPF_F_NO_COMMON_LRU != 0 {
            // As the kernel: give every CPU's LRU list the same number of elements, rounding
            // max_entries up to a multiple of the CPU count (down if that overflows).
            let n = ncpus as u64;
            let up = (attr.max_entries as u64).div_ceil(n) * n;
            let down = attr.max_entries as u64 / n * n;
            attr.max_entries = u32::try_from(up).unwrap_or(down as u32);
        }
        let attr = &attr;
        let c = Common::new(attr, ncpus);
        let kind = match attr.map_type {
            MapType::Hash => Kind::Plain,
            MapType::PercpuHash => Kind::Percpu,
            MapType::LruHash => Kind::Lru,
            MapType::LruPercpuHash => Kind::LruPercpu,
            MapType::DevmapHash => Kind::DevmapHash,
            MapType::HashOfMaps => Kind::OfMaps,
            other => return Err(c.invalid(format!("{other} is not a hash map type"))),
        };
        let copies = if matches!(kind, Kind::Percpu | Kind::LruPercpu) {
            ncpus
        } else {
            1
        };
        let vstride = round8(attr.value_size as usize);
        let bytes = (attr.max_entries as u64).saturating_mul((vstride * copies) as u64);
        // Index: buckets, next/hash/free per element, keys, LRU links.
        let n = attr.max_entries as u64;
        let index_bytes =
            4 * n.next_power_of_two() + n.saturating_mul(12 + attr.key_size as u64 + 8);
        crate::create::check_budget(&c, bytes.saturating_add(index_bytes))?;
        let arena = crate::create::alloc_arena(&c, bytes)?;
        let lru = matches!(kind, Kind::Lru | Kind::LruPercpu);
        let index = Index::new(attr.max_entries, lru, kind == Kind::OfMaps);
        let lru_ref = (0..if lru { attr.max_entries } else { 0 })
            .map(|_| AtomicBool::new(false))
            .collect();
        Ok(HashTab {
            lru_ref,
            c,
            kind,
            table: Table::new(attr.max_entries, attr.key_size as usize),
            index: RwLock::new(index),
            arena,
            vstride,
            copies,
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    fn is_lru(&self) -> bool {
        matches!(self.kind, Kind::Lru | Kind::LruPercpu)
    }

    fn is_percpu(&self) -> bool {
        matches!(self.kind, Kind::Percpu | Kind::LruPercpu)
    }

    #[inline]
    fn ptr(&self, idx: u32, cpu: usize) -> *mut u8 {
        self.arena
            .at((idx as usize * self.copies + cpu) * self.vstride)
    }

    /// A program-side lookup on a non-LRU kind: lock-free, falling back to the read lock
    /// only when writers keep recycling the chain under the reader.
    #[inline(always)]
    fn find_prog(&self, key: &[u8]) -> Option<u32> {
        // Fixed-length copies of the common key sizes: the hash and the key word fold to a
        // few instructions instead of branching on the length.
        let (hash, found) = if let Ok(k) = <&[u8; 4]>::try_from(key) {
            let h = hash_key(k);
            (h, self.table.walk::<true>(h, k))
        } else if let Ok(k) = <&[u8; 8]>::try_from(key) {
            let h = hash_key(k);
            (h, self.table.walk::<true>(h, k))
        } else {
            return self.find_prog_any(key);
        };
        match found {
            Ok(found) => found,
            Err(()) => self.find_prog_locked(hash, key),
        }
    }

    /// `bpf_map_lookup_elem` from a program on a plain `BPF_MAP_TYPE_HASH` with an
    /// `N`-byte key, for JIT code that calls it directly: the same result as
    /// [`MapOps::lookup`] without the dynamic dispatch (`None` for other kinds).
    #[inline]
    pub fn prog_lookup<const N: usize>(&self, key: &[u8; N]) -> Option<*mut u8> {
        if N != self.table.key_size {
            return None;
        }
        match self.kind {
            Kind::Plain => Some(self.ptr(self.find_prog(key)?, 0)),
            Kind::Lru => Some(self.ptr(self.find_lru(key)?, 0)),
            _ => None,
        }
    }

    /// [`find_prog`](Self::find_prog) for other key sizes, out of line so that the common
    /// sizes' path stays small.
    #[inline(never)]
    fn find_prog_any(&self, key: &[u8]) -> Option<u32> {
        let hash = hash_key(key);
        match self.table.find_lockfree(hash, key) {
            Ok(found) => found,
            Err(()) => self.find_prog_locked(hash, key),
        }
    }

    #[cold]
    #[inline(never)]
    fn find_prog_locked(&self, hash: u32, key: &[u8]) -> Option<u32> {
        self.table.find_locked(&self.read(), hash, key)
    }

    /// A program-side lookup on an LRU kind: lock-free like a plain map's, and it
    /// marks the element referenced (as the kernel's `bpf_lru_node_set_ref`);
    /// the list itself is reordered only when an eviction meets the mark.
    #[inline]
    fn find_lru(&self, key: &[u8]) -> Option<u32> {
        let idx = self.find_prog(key)?;
        if let Some(r) = self.lru_ref.get(idx as usize) {
            // Test first: the flag's cache line stays shared while it is set.
            if !r.load(Ordering::Relaxed) {
                r.store(true, Ordering::Relaxed);
            }
        }
        Some(idx)
    }

    /// Write a value into element `idx`; `fresh` elements get the other CPUs' values zeroed
    /// and the spin lock word cleared.
    fn write_value(&self, idx: u32, src: Src<'_>, fresh: bool, lock: bool) {
        let vs = self.c.value_size();
        let lock_off = self.c.lock_off();
        // SAFETY (all blocks): idx < max_entries and cpu < copies, so every slot is in the
        // arena, 8-byte aligned and value_size bytes long.
        match src {
            Src::One(value, cpu) => {
                if fresh {
                    for other in (0..self.copies).filter(|&o| o != cpu) {
                        unsafe { mem::zero(self.ptr(idx, other), vs) };
                    }
                    if let Some(off) = lock_off {
                        unsafe { mem::zero(self.ptr(idx, cpu).add(off), 4) };
                    }
                }
                unsafe { mem::copy_value_in(self.ptr(idx, cpu), value, lock_off, lock && !fresh) };
            }
            Src::User(values) if self.is_percpu() => {
                for cpu in 0..self.copies {
                    let chunk = &values[cpu * self.vstride..cpu * self.vstride + vs];
                    unsafe { mem::copy_in(self.ptr(idx, cpu), chunk) };
                }
            }
            Src::User(value) => {
                if fresh {
                    if let Some(off) = lock_off {
                        unsafe { mem::zero(self.ptr(idx, 0).add(off), 4) };
                    }
                }
                unsafe { mem::copy_value_in(self.ptr(idx, 0), value, lock_off, lock && !fresh) };
            }
        }
    }

    /// Copy element `idx`'s value(s) out in the user-space layout.
    fn read_value(&self, idx: u32, out: &mut [u8], lock: bool) {
        let vs = self.c.value_size();
        if self.is_percpu() {
            for cpu in 0..self.copies {
                let chunk = &mut out[cpu * self.vstride..(cpu + 1) * self.vstride];
                // SAFETY: in-bounds aligned slot.
                unsafe { mem::copy_out(self.ptr(idx, cpu), &mut chunk[..vs]) };
                chunk[vs..].fill(0);
            }
        } else {
            // SAFETY: in-bounds aligned slot.
            unsafe { mem::copy_value_out(self.ptr(idx, 0), out, self.c.lock_off(), lock) };
        }
    }

    /// Insert or update (`htab_map_update_elem` and friends). Returns the element index.
    fn upsert(
        &self,
        key: &[u8],
        src: Src<'_>,
        flags: u64,
        inner: Option<Arc<dyn MapOps>>,
    ) -> Result<u32, MapError> {
        let hash = hash_key(key);
        let lock = flags & BPF_F_LOCK != 0;
        let mut ix = self.write();
        let t = &self.table;
        if let Some(idx) = t.find_locked(&ix, hash, key) {
            if flags & BPF_NOEXIST != 0 {
                return Err(self.c.exists());
            }
            self.write_value(idx, src, false, lock);
            ix.lru_touch(idx);
            if let Some(m) = inner {
                ix.inner[idx as usize] = Some(m);
            }
            return Ok(idx);
        }
        if flags & BPF_EXIST != 0 {
            return Err(self.c.not_found());
        }
        let idx = match ix.free.pop() {
            Some(idx) => idx,
            None if self.is_lru() && ix.lru_tail != NONE => {
                // Full: evict the least recently used element and reuse it. An
                // element a program looked up since it was last placed goes to
                // the front instead, once (its mark cleared).
                let mut victim = ix.lru_tail;
                for _ in 0..ix.count {
                    let marked = self
                        .lru_ref
                        .get(victim as usize)
                        .is_some_and(|r| r.swap(false, Ordering::Relaxed));
                    if !marked {
                        break;
                    }
                    ix.lru_touch(victim);
                    victim = ix.lru_tail;
                }
                ix.lru_remove(victim);
                t.unlink(&mut ix, victim);
                victim
            }
            None => {
                return Err(self
                    .c
                    .too_big(format!("map is full ({} entries)", self.c.attr.max_entries)))
            }
        };
        if let Some(r) = self.lru_ref.get(idx as usize) {
            r.store(false, Ordering::Relaxed);
        }
        // The value first: linking publishes the element to lock-free readers.
        self.write_value(idx, src, true, lock);
        t.link(&mut ix, idx, hash, key);
        ix.lru_push_front(idx);
        if let Some(m) = inner {
            ix.inner[idx as usize] = Some(m);
        }
        Ok(idx)
    }

    fn remove(&self, key: &[u8]) -> Result<(), MapError> {
        self.c.check_key(key)?;
        let hash = hash_key(key);
        let mut ix = self.write();
        let idx = self
            .table
            .find_locked(&ix, hash, key)
            .ok_or_else(|| self.c.not_found())?;
        ix.lru_remove(idx);
        self.table.unlink(&mut ix, idx);
        ix.free.push(idx);
        Ok(())
    }

    /// Validate a devmap_hash value as `__dev_map_hash_update_elem` does.
    fn check_dev_value(&self, value: &[u8], flags: u64) -> Result<Vec<u8>, MapError> {
        if flags > BPF_EXIST {
            return Err(self.c.invalid(format!("invalid update flags {flags:#x}")));
        }
        let (ifindex, prog, _) = parse_pair(value);
        if ifindex == 0 {
            return Err(self.c.invalid("ifindex 0 is not a device"));
        }
        let mut v = ifindex.to_ne_bytes().to_vec();
        if value.len() >= 8 {
            v.extend_from_slice(&prog.to_ne_bytes());
        }
        Ok(v)
    }
}

impl MapOps for HashTab {
    fn attr(&self) -> &MapAttr {
        &self.c.attr
    }

    fn ncpus(&self) -> usize {
        self.c.ncpus
    }

    #[inline]
    fn lookup(&self, key: &[u8], cpu: usize) -> Option<*mut u8> {
        if key.len() != self.table.key_size {
            return None;
        }
        let (idx, cpu) = match self.kind {
            Kind::Plain | Kind::DevmapHash | Kind::OfMaps => (self.find_prog(key)?, 0),
            Kind::Percpu if cpu < self.copies => (self.find_prog(key)?, cpu),
            Kind::Lru => (self.find_lru(key)?, 0),
            Kind::LruPercpu if cpu < self.copies => (self.find_lru(key)?, cpu),
            _ => return None,
        };
        Some(self.ptr(idx, cpu))
    }

    fn update(&self, key: &[u8], value: &[u8], flags: u64, cpu: usize) -> Result<(), MapError> {
        if matches!(self.kind, Kind::DevmapHash | Kind::OfMaps) {
            return Err(self.not_supported("update from a program"));
        }
        self.c.check_prog_write()?;
        self.c.check_key(key)?;
        self.c.check_value(value)?;
        self.c.check_update_flags(flags)?;
        let cpu = if self.is_percpu() {
            self.c.check_cpu(cpu)?;
            cpu
        } else {
            0
        };
        self.upsert(key, Src::One(value, cpu), flags, None)
            .map(|_| ())
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.remove(key)
    }

    fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), MapError> {
        self.c.check_user_read()?;
        if next.len() != self.c.key_size() {
            return Err(self.c.invalid(format!(
                "next key buffer is {} bytes, key_size is {}",
                next.len(),
                self.c.key_size()
            )));
        }
        if let Some(k) = key {
            self.c.check_key(k)?;
        }
        let ix = self.read();
        let t = &self.table;
        let found = match key {
            Some(k) => {
                let hash = hash_key(k);
                match t.find_locked(&ix, hash, k) {
                    Some(idx) if !is_nulls(t.next_of(idx)) => Some(t.next_of(idx)),
                    Some(_) => {
                        let b = (hash & t.mask) as usize + 1;
                        if b < t.n_buckets() {
                            t.first_from(b)
                        } else {
                            None
                        }
                    }
                    // A key not in the map restarts the walk from the first element.
                    None => t.first_from(0),
                }
            }
            None => t.first_from(0),
        };
        match found {
            Some(idx) => {
                t.key_into(idx, next);
                Ok(())
            }
            None => Err(self.c.not_found()),
        }
    }

    fn lookup_user(&self, key: &[u8], out: &mut [u8], flags: u64) -> Result<(), MapError> {
        self.c.check_user_read()?;
        self.c.check_lookup_flags(flags)?;
        self.c.check_key(key)?;
        self.c.check_user_value(out.len())?;
        // No LRU touch: the kernel's syscall lookup does not mark elements either.
        let ix = self.read();
        let idx = self
            .table
            .find_locked(&ix, hash_key(key), key)
            .ok_or_else(|| self.c.not_found())?;
        self.read_value(idx, out, flags & BPF_F_LOCK != 0);
        Ok(())
    }

    fn update_user(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        self.c.check_user_write()?;
        self.c.check_key(key)?;
        self.c.check_user_value(value.len())?;
        match self.kind {
            Kind::OfMaps => Err(self.c.invalid(
                "hash_of_maps values are map fds: the runtime must resolve them and call update_fd",
            )),
            Kind::DevmapHash => {
                let v = self.check_dev_value(value, flags)?;
                self.upsert(key, Src::User(&v), flags, None).map(|_| ())
            }
            _ => {
                self.c.check_update_flags(flags)?;
                if flags & BPF_F_LOCK != 0 && self.is_percpu() {
                    return Err(self.c.invalid("BPF_F_LOCK on a per-CPU map"));
                }
                self.upsert(key, Src::User(value), flags, None).map(|_| ())
            }
        }
    }

    fn update_fd(&self, key: &[u8], id: u32, obj: FdObject, flags: u64) -> Result<(), MapError> {
        if self.kind != Kind::OfMaps {
            return Err(self.not_supported("update_fd"));
        }
        self.c.check_user_write()?;
        self.c.check_key(key)?;
        if flags > BPF_EXIST || flags == (BPF_NOEXIST | BPF_EXIST) {
            return Err(self.c.invalid(format!("invalid update flags {flags:#x}")));
        }
        let FdObject::Map(inner) = obj else {
            return Err(self.c.invalid("value is not a map"));
        };
        check_inner(&self.c, inner.as_ref())?;
        if id == 0 {
            return Err(self.c.invalid("inner map id 0 is not a valid id"));
        }
        self.upsert(key, Src::User(&id.to_ne_bytes()), flags, Some(inner))
            .map(|_| ())
    }

    fn lookup_inner(&self, key: &[u8]) -> Option<Arc<dyn MapOps>> {
        if self.kind != Kind::OfMaps || key.len() != self.c.key_size() {
            return None;
        }
        let ix = self.read();
        let idx = self.table.find_locked(&ix, hash_key(key), key)?;
        ix.inner.get(idx as usize)?.clone()
    }

    fn delete_user(&self, key: &[u8]) -> Result<(), MapError> {
        self.c.check_user_write()?;
        self.remove(key)
    }

    fn lookup_and_delete(
        &self,
        key: Option<&[u8]>,
        out: &mut [u8],
        flags: u64,
    ) -> Result<(), MapError> {
        if matches!(self.kind, Kind::DevmapHash | Kind::OfMaps) {
            return Err(self.not_supported("lookup_and_delete"));
        }
        self.c.check_user_write()?;
        self.c.check_user_read()?;
        self.c.check_lookup_flags(flags)?;
        if flags & BPF_F_LOCK != 0 && self.is_percpu() {
            return Err(self.c.invalid("BPF_F_LOCK on a per-CPU map"));
        }
        let key = key.ok_or_else(|| self.c.invalid("lookup_and_delete needs a key"))?;
        self.c.check_key(key)?;
        self.c.check_user_value(out.len())?;
        let mut ix = self.write();
        let idx = self
            .table
            .find_locked(&ix, hash_key(key), key)
            .ok_or_else(|| self.c.not_found())?;
        self.read_value(idx, out, flags & BPF_F_LOCK != 0);
        ix.lru_remove(idx);
        self.table.unlink(&mut ix, idx);
        ix.free.push(idx);
        Ok(())
    }

    fn freeze(&self) -> Result<(), MapError> {
        self.c.freeze()
    }

    fn is_frozen(&self) -> bool {
        self.c.is_frozen()
    }

    fn for_each(&self, cpu: usize, cb: &mut ForEachCallback<'_>) -> Result<u32, MapError> {
        if matches!(self.kind, Kind::DevmapHash | Kind::OfMaps) {
            return Err(self.not_supported("for_each"));
        }
        let cpu = if self.is_percpu() {
            self.c.check_cpu(cpu)?;
            cpu
        } else {
            0
        };
        let ks = self.c.key_size();
        let t = &self.table;
        let n_buckets = t.n_buckets();
        let mut key = vec![0u8; ks];
        let mut keys: Vec<u8> = Vec::new();
        let mut idxs: Vec<u32> = Vec::new();
        let mut n = 0;
        // Snapshot one bucket at a time and run the callbacks unlocked, so that they may
        // look up, update or delete elements of this map.
        for b in 0..n_buckets {
            keys.clear();
            idxs.clear();
            {
                let _ix = self.read();
                let mut i = t.heads[b].load(Ordering::Relaxed);
                while !is_nulls(i) {
                    idxs.push(i);
                    t.key_into(i, &mut key);
                    keys.extend_from_slice(&key);
                    i = t.next_of(i);
                }
            }
            for (j, &idx) in idxs.iter().enumerate() {
                n += 1;
                if cb(&keys[j * ks..(j + 1) * ks], self.ptr(idx, cpu)).is_break() {
                    return Ok(n);
                }
            }
        }
        Ok(n)
    }

    fn value_regions(&self) -> Vec<ValueRegion> {
        vec![ValueRegion {
            base: self.arena.base(),
            stride: self.vstride,
            count: self.c.attr.max_entries as usize * self.copies,
            value_size: self.c.value_size(),
            writable_by_prog: self.c.prog_writable()
                && !matches!(self.kind, Kind::DevmapHash | Kind::OfMaps),
        }]
    }

    fn memory_usage(&self) -> u64 {
        use crate::create::*;
        // The kernel's htab_map_mem_usage / dev_map_mem_usage, with ncpus possible CPUs.
        let ix = self.read();
        let ncpus = self.c.ncpus as u64;
        let n_buckets = self.table.n_buckets() as u64;
        let count = ix.count as u64;
        if self.kind == Kind::DevmapHash {
            return SIZEOF_BPF_DTAB + 8 * n_buckets + count * SIZEOF_BPF_DTAB_NETDEV;
        }
        let percpu = self.is_percpu();
        let vsize = self.vstride as u64;
        let elem_size =
            SIZEOF_HTAB_ELEM + round8(self.c.key_size()) as u64 + if percpu { 8 } else { vsize };
        let mut usage =
            SIZEOF_BPF_HTAB + SIZEOF_BUCKET * n_buckets + 4 * ncpus * HASHTAB_MAP_LOCK_COUNT;
        if self.c.flags() & BPF_F_NO_PREALLOC == 0 {
            let extra = self.kind == Kind::Plain;
            let num = self.c.attr.max_entries as u64 + if extra { ncpus } else { 0 };
            usage += elem_size * num;
            if percpu {
                usage += vsize * ncpus * num;
            } else if !self.is_lru() {
                usage += 8 * ncpus;
            }
        } else {
            usage += (elem_size + 8) * count;
            if percpu {
                usage += vsize * ncpus * count + 8 * count;
            }
        }
        usage
    }

    fn entries(&self) -> u64 {
        self.read().count as u64
    }

    fn devmap_entry(&self, key: u32) -> Option<DevmapVal> {
        if self.kind != Kind::DevmapHash {
            return None;
        }
        let k = key.to_ne_bytes();
        let ix = self.read();
        let idx = self.table.find_locked(&ix, hash_key(&k), &k)?;
        let mut v = [0u8; 8];
        // SAFETY: in-bounds aligned slot (vstride is 8 for devmap values).
        unsafe { mem::copy_out(self.ptr(idx, 0), &mut v[..self.c.value_size()]) };
        Some(DevmapVal {
            ifindex: u32::from_ne_bytes(v[0..4].try_into().unwrap_or([0; 4])),
            prog_id: u32::from_ne_bytes(v[4..8].try_into().unwrap_or([0; 4])),
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn gen_lookup(&self) -> Option<GenLookup> {
        // Plain and LRU maps only: a per-CPU map's lookup needs the run's CPU,
        // devmap_hash and hash_of_maps values are not for programs to load.
        if !matches!(self.kind, Kind::Plain | Kind::Lru) {
            return None;
        }
        // The common key sizes call the table itself, without the dynamic
        // dispatch of `lookup`.
        let f = match self.table.key_size {
            4 => direct_hash_lookup::<4> as unsafe extern "sysv64" fn(u64, u64) -> u64,
            8 => direct_hash_lookup::<8>,
            _ => return Some(GenLookup::Lookup),
        };
        Some(GenLookup::Call {
            f,
            obj: self as *const HashTab as u64,
        })
    }
}

/// [`HashTab::prog_lookup`] called straight from JIT code ([`GenLookup::Call`]):
/// `obj` is the map's table, `key` points to `N` readable bytes.
unsafe extern "sysv64" fn direct_hash_lookup<const N: usize>(obj: u64, key: u64) -> u64 {
    // SAFETY: the caller keeps the map, and so its table, alive while code
    // embedding `obj` may run; the verifier proved the key's N bytes readable.
    let h = unsafe { &*(obj as *const HashTab) };
    let key = unsafe { &*(key as *const [u8; N]) };
    // Unwinding out of an extern "sysv64" fn aborts; a lookup that panics finds nothing.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.prog_lookup(key)))
        .ok()
        .flatten()
        .map_or(0, |p| p as u64)
}

#[cfg(test)]
mod stress {
    //! Lock-free lookups racing writers that delete and reuse elements of the same chains.

    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    /// Lock-free walks started again (a reader saw a chain change under it).
    pub(super) static RESTARTS: AtomicU64 = AtomicU64::new(0);

    /// A small xorshift generator: each thread its own reproducible stream.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// `key_size` bytes for key number `k` (the number in the first bytes, a fixed tail).
    fn key(k: u32, key_size: usize) -> Vec<u8> {
        let mut v = vec![0xa5; key_size];
        let n = key_size.min(4);
        v[..n].copy_from_slice(&k.to_ne_bytes()[..n]);
        v
    }

    /// Readers look up churning keys (every pointer must lie in the value arena) and stable
    /// keys (always found, with their own value) while writers insert, update and delete
    /// the churning keys. 64 elements and 64 buckets keep chains long and reuse constant.
    fn hammer(map_type: MapType, key_size: u32) {
        const STABLE: u32 = 8;
        const CHURN: u32 = 96;
        let attr = MapAttr::new(map_type, key_size, 8, 64);
        let m = Arc::new(HashTab::new(&attr, 2).unwrap());
        let ks = key_size as usize;
        // Stable keys get ids far from the churning ones, with value = id.
        let stable: Vec<(Vec<u8>, u64)> = (0..STABLE)
            .map(|s| (key(1_000_000 + s, ks), 1_000_000 + s as u64))
            .collect();
        for (k, v) in &stable {
            // Every CPU's value (one for plain maps) is the id.
            let user: Vec<u8> = (0..m.user_value_size() / 8)
                .flat_map(|_| v.to_ne_bytes())
                .collect();
            m.update_user(k, &user, BPF_NOEXIST).unwrap();
        }
        let region = m.value_regions()[0];
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + Duration::from_millis(700);
        let writers: Vec<_> = (0..2u64)
            .map(|t| {
                let (m, stop) = (m.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut rng = Rng(0x9e37_79b9 + t);
                    let mut ops = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let k = (rng.next() % CHURN as u64) as u32;
                        let kb = key(k, ks);
                        if rng.next().is_multiple_of(2) {
                            // E2BIG when the map is full is expected.
                            let _ = m.update(&kb, &(k as u64).to_ne_bytes(), BPF_ANY, 0);
                        } else {
                            let _ = m.delete(&kb);
                        }
                        ops += 1;
                    }
                    ops
                })
            })
            .collect();
        let readers: Vec<_> = (0..2u64)
            .map(|t| {
                let (m, stable) = (m.clone(), stable.clone());
                std::thread::spawn(move || {
                    let mut rng = Rng(0x1234_5678 + t);
                    let (mut hits, mut lookups) = (0u64, 0u64);
                    while Instant::now() < deadline {
                        for _ in 0..256 {
                            let k = (rng.next() % CHURN as u64) as u32;
                            if let Some(p) = m.lookup(&key(k, ks), t as usize) {
                                assert!(
                                    region.contains(p as usize, 8),
                                    "pointer {p:?} outside the value arena"
                                );
                                hits += 1;
                            }
                            let (sk, sv) = &stable[(rng.next() % STABLE as u64) as usize];
                            let p = m.lookup(sk, t as usize).expect("a stable key was missed");
                            assert!(region.contains(p as usize, 8));
                            // SAFETY: in the arena (checked above), 8-byte aligned.
                            let v =
                                unsafe { AtomicU64::from_ptr(p.cast()) }.load(Ordering::Relaxed);
                            assert_eq!(v, *sv, "a stable key's value changed");
                            lookups += 2;
                        }
                    }
                    (hits, lookups)
                })
            })
            .collect();
        let mut lookups = 0;
        for r in readers {
            lookups += r.join().unwrap().1;
        }
        stop.store(true, Ordering::Relaxed);
        let ops: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
        assert!(
            lookups > 0 && ops > 0,
            "lookups {lookups}, writer ops {ops}"
        );
        eprintln!(
            "{map_type} key {key_size}: {lookups} lookups, {ops} writer ops, {} restarts so far",
            RESTARTS.load(Ordering::Relaxed)
        );
        // The index is still consistent: the walk sees exactly `entries` keys, each found.
        let mut seen = 0u64;
        let mut cur: Option<Vec<u8>> = None;
        let mut next = vec![0u8; ks];
        while m.get_next_key(cur.as_deref(), &mut next).is_ok() {
            assert!(m.lookup(&next, 0).is_some());
            seen += 1;
            assert!(seen <= 64, "get_next_key loops");
            cur = Some(next.clone());
        }
        assert_eq!(seen, m.entries());
        for (k, _) in &stable {
            assert!(m.lookup(k, 0).is_some());
        }
    }

    #[test]
    fn lockfree_lookups_race_deletes_and_reuse_4_byte_keys() {
        hammer(MapType::Hash, 4);
    }

    #[test]
    fn lockfree_lookups_race_deletes_and_reuse_20_byte_keys() {
        hammer(MapType::Hash, 20);
    }

    #[test]
    fn lockfree_lookups_race_deletes_and_reuse_percpu() {
        hammer(MapType::PercpuHash, 8);
    }
}
