//! Hash maps (kernel `hashtab.c`): `BPF_MAP_TYPE_HASH`, `PERCPU_HASH`, `LRU_HASH`,
//! `LRU_PERCPU_HASH`, and the hash-based `DEVMAP_HASH` and `HASH_OF_MAPS`.
//!
//! All `max_entries` elements are preallocated, as the kernel does by default: values live in
//! one arena at stable, 8-byte aligned addresses; a deleted element goes back to a free list
//! and is reused, never freed before the map. The index (buckets with chains threaded through
//! the elements, keys, free list, LRU list) sits behind one `RwLock`.
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
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::devmap::{parse_pair, DevmapVal};
use crate::error::MapError;
use crate::fdarray::check_inner;
use crate::mem::{self, hash_key, round8, Arena};
use crate::ops::{Common, FdObject, ForEachCallback, MapOps, ValueRegion};
use crate::types::*;

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Percpu,
    Lru,
    LruPercpu,
    DevmapHash,
    OfMaps,
}

/// Key equality with fixed-size fast paths for the common 4- and 8-byte keys (the generic
/// slice comparison calls `memcmp`).
#[inline]
fn key_eq(a: &[u8], b: &[u8]) -> bool {
    match (a.len(), b.len()) {
        (4, 4) => {
            u32::from_ne_bytes(a.try_into().unwrap_or([0; 4]))
                == u32::from_ne_bytes(b.try_into().unwrap_or([0; 4]))
        }
        (8, 8) => {
            u64::from_ne_bytes(a.try_into().unwrap_or([0; 8]))
                == u64::from_ne_bytes(b.try_into().unwrap_or([0; 8]))
        }
        _ => a == b,
    }
}

/// The locked part: buckets, chains, keys, free list, LRU list.
struct Index {
    key_size: usize,
    mask: u32,
    heads: Box<[u32]>,
    next: Box<[u32]>,
    hashes: Box<[u32]>,
    keys: Box<[u8]>,
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
    fn new(max_entries: u32, key_size: usize, lru: bool, of_maps: bool) -> Index {
        let n = max_entries as usize;
        let n_buckets = (n.max(1)).next_power_of_two();
        let lru_n = if lru { n } else { 0 };
        Index {
            key_size,
            mask: (n_buckets - 1) as u32,
            heads: vec![NONE; n_buckets].into(),
            next: vec![NONE; n].into(),
            hashes: vec![0; n].into(),
            keys: vec![0; n * key_size].into(),
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

    #[inline]
    fn key(&self, idx: u32) -> &[u8] {
        let off = idx as usize * self.key_size;
        &self.keys[off..off + self.key_size]
    }

    #[inline]
    fn find(&self, hash: u32, key: &[u8]) -> Option<u32> {
        let mut i = self.heads[(hash & self.mask) as usize];
        while i != NONE {
            if self.hashes[i as usize] == hash && key_eq(self.key(i), key) {
                return Some(i);
            }
            i = self.next[i as usize];
        }
        None
    }

    fn link(&mut self, idx: u32, hash: u32, key: &[u8]) {
        let off = idx as usize * self.key_size;
        self.keys[off..off + self.key_size].copy_from_slice(key);
        self.hashes[idx as usize] = hash;
        let b = (hash & self.mask) as usize;
        self.next[idx as usize] = self.heads[b];
        self.heads[b] = idx;
        self.count += 1;
    }

    fn unlink(&mut self, idx: u32) {
        let b = (self.hashes[idx as usize] & self.mask) as usize;
        let after = self.next[idx as usize];
        if self.heads[b] == idx {
            self.heads[b] = after;
        } else {
            let mut i = self.heads[b];
            while i != NONE {
                if self.next[i as usize] == idx {
                    self.next[i as usize] = after;
                    break;
                }
                i = self.next[i as usize];
            }
        }
        self.next[idx as usize] = NONE;
        self.count -= 1;
        if let Some(slot) = self.inner.get_mut(idx as usize) {
            *slot = None;
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

    /// First element at or after bucket `b`.
    fn first_from(&self, b: usize) -> Option<u32> {
        self.heads[b..].iter().copied().find(|&h| h != NONE)
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
    index: RwLock<Index>,
    arena: Arena,
    /// Distance between two values (`round_up(value_size, 8)`).
    vstride: usize,
    /// Values per element (ncpus for per-CPU maps, else 1).
    copies: usize,
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
        let index = Index::new(
            attr.max_entries,
            attr.key_size as usize,
            lru,
            kind == Kind::OfMaps,
        );
        Ok(HashTab {
            c,
            kind,
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
        if let Some(idx) = ix.find(hash, key) {
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
                // Full: evict the least recently used element and reuse it.
                let victim = ix.lru_tail;
                ix.lru_remove(victim);
                ix.unlink(victim);
                victim
            }
            None => {
                return Err(self
                    .c
                    .too_big(format!("map is full ({} entries)", self.c.attr.max_entries)))
            }
        };
        self.write_value(idx, src, true, lock);
        ix.link(idx, hash, key);
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
        let idx = ix.find(hash, key).ok_or_else(|| self.c.not_found())?;
        ix.lru_remove(idx);
        ix.unlink(idx);
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
        if key.len() != self.c.key_size() {
            return None;
        }
        let cpu = if self.is_percpu() {
            if cpu >= self.copies {
                return None;
            }
            cpu
        } else {
            0
        };
        let hash = hash_key(key);
        let idx = if self.is_lru() {
            let mut ix = self.write();
            let idx = ix.find(hash, key)?;
            ix.lru_touch(idx);
            idx
        } else {
            self.read().find(hash, key)?
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
        let found = match key {
            Some(k) => {
                let hash = hash_key(k);
                match ix.find(hash, k) {
                    Some(idx) if ix.next[idx as usize] != NONE => Some(ix.next[idx as usize]),
                    Some(_) => {
                        let b = (hash & ix.mask) as usize + 1;
                        if b < ix.heads.len() {
                            ix.first_from(b)
                        } else {
                            None
                        }
                    }
                    // A key not in the map restarts the walk from the first element.
                    None => ix.first_from(0),
                }
            }
            None => ix.first_from(0),
        };
        match found {
            Some(idx) => {
                next.copy_from_slice(ix.key(idx));
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
        let idx = ix
            .find(hash_key(key), key)
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
        let idx = ix.find(hash_key(key), key)?;
        ix.inner[idx as usize].clone()
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
        let idx = ix
            .find(hash_key(key), key)
            .ok_or_else(|| self.c.not_found())?;
        self.read_value(idx, out, flags & BPF_F_LOCK != 0);
        ix.lru_remove(idx);
        ix.unlink(idx);
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
        let n_buckets = self.read().heads.len();
        let mut keys: Vec<u8> = Vec::new();
        let mut idxs: Vec<u32> = Vec::new();
        let mut n = 0;
        // Snapshot one bucket at a time and run the callbacks unlocked, so that they may
        // look up, update or delete elements of this map.
        for b in 0..n_buckets {
            keys.clear();
            idxs.clear();
            {
                let ix = self.read();
                let mut i = ix.heads[b];
                while i != NONE {
                    idxs.push(i);
                    keys.extend_from_slice(ix.key(i));
                    i = ix.next[i as usize];
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
        let n_buckets = ix.heads.len() as u64;
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
        let idx = ix.find(hash_key(&k), &k)?;
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
}
