//! `BPF_MAP_TYPE_LPM_TRIE` (kernel `lpm_trie.c`): longest-prefix match.
//!
//! A key is `struct bpf_lpm_trie_key`: a native-endian `u32 prefixlen` followed by
//! `key_size - 4` data bytes, matched most significant bit first (network byte order for IP
//! addresses). An entry covers the keys whose first `prefixlen` bits equal its own.
//!
//! Instead of a bit trie this keeps, under one `RwLock`, a hash index on the masked key (data
//! beyond `prefixlen` cleared) plus the set of prefix lengths in use: a lookup probes those
//! lengths from the longest down, so it costs one hash probe per distinct length. Values sit
//! in a preallocated arena at stable addresses like the hash maps'.
//!
//! `get_next_key` follows the kernel's order, a post-order walk of the trie: more specific
//! prefixes before the prefix that contains them, and the 0-branch before the 1-branch at the
//! first differing bit. A missing or invalid key gives the first entry. The returned key is
//! the one given to the update that created the entry, bits past the prefix included, as in
//! the kernel.

use std::any::Any;
use std::cmp::Ordering as CmpOrdering;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::MapError;
use crate::mem::{self, round8, Arena};
use crate::ops::{Common, GenLookup, MapOps, ValueRegion};
use crate::types::*;

/// Smallest key: prefixlen and one data byte.
pub const LPM_KEY_SIZE_MIN: u32 = 4 + 1;
/// Largest key: prefixlen and 256 data bytes.
pub const LPM_KEY_SIZE_MAX: u32 = 4 + 256;
/// Largest value (`LPM_VAL_SIZE_MAX`, bounded by the kernel's allocator).
pub const LPM_VAL_SIZE_MAX: u32 = (1 << 22) - 512 - 64;

/// FxHash-based hasher for the index (keys are hashed whole by `mem::hash_key`).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = (self.0.rotate_left(17) ^ mem::hash_key(bytes) as u64)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

fn prefixlen(key: &[u8]) -> u32 {
    u32::from_ne_bytes(key[0..4].try_into().unwrap_or([0; 4]))
}

/// Write `key` with data bits past `plen` cleared into `out` (same length).
fn mask_into(key: &[u8], plen: u32, out: &mut [u8]) {
    out[0..4].copy_from_slice(&plen.to_ne_bytes());
    let data = &key[4..];
    let full = (plen / 8) as usize;
    let rem = plen % 8;
    for (i, b) in data.iter().enumerate() {
        out[4 + i] = if i < full {
            *b
        } else if i == full && rem != 0 {
            b & (0xffu8 << (8 - rem))
        } else {
            0
        };
    }
}

/// A masked key ordered in the trie's post-order (see the module docs).
#[derive(Clone, PartialEq, Eq)]
struct PostOrder(Box<[u8]>);

impl Ord for PostOrder {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        let (la, lb) = (prefixlen(&self.0), prefixlen(&other.0));
        let common = la.min(lb);
        // Data past the prefix is zero, so comparing the common bits byte-wise is enough.
        let full = (common / 8) as usize;
        let (da, db) = (&self.0[4..], &other.0[4..]);
        match da[..full].cmp(&db[..full]) {
            CmpOrdering::Equal => {}
            o => return o,
        }
        let rem = common % 8;
        if rem != 0 {
            let m = 0xffu8 << (8 - rem);
            match (da[full] & m).cmp(&(db[full] & m)) {
                CmpOrdering::Equal => {}
                o => return o,
            }
        }
        // One is a prefix of the other: the longer (a descendant) comes first.
        lb.cmp(&la)
    }
}

impl PartialOrd for PostOrder {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

const NONE: u32 = u32::MAX;

/// A trie node: its prefix length, children (by the bit after the prefix) and element
/// (NONE: an intermediate node, made where two prefixes branch).
#[derive(Clone, Copy)]
struct TNode {
    plen: u32,
    child: [u32; 2],
    elem: u32,
    /// The first 8 data bytes as a big-endian number (keys of up to 8 data bytes,
    /// IPv4 and the like, are matched with one xor).
    w: u64,
}

/// The first 8 bytes of `data` as a big-endian number, zero-padded.
fn word(data: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = data.len().min(8);
    b[..n].copy_from_slice(&data[..n]);
    u64::from_be_bytes(b)
}

/// Where a node hangs: the root, or a child slot of a node.
#[derive(Clone, Copy)]
enum Slot {
    Root,
    Child(u32, usize),
}

/// The path-compressed binary trie (the kernel's `lpm_trie` layout): nodes in a vector,
/// their masked data `dlen` bytes each in another.
#[derive(Default)]
struct BitTrie {
    nodes: Vec<TNode>,
    data: Vec<u8>,
    dlen: usize,
    root: u32,
    free: Vec<u32>,
}

/// Bit `i` of `data`, most significant bit of byte 0 first.
fn bit(data: &[u8], i: u32) -> usize {
    data.get((i / 8) as usize)
        .map_or(0, |b| (b >> (7 - i % 8)) as usize & 1)
}

/// How many leading bits `a` and `b` share, at most `limit`.
fn common_bits(a: &[u8], b: &[u8], limit: u32) -> u32 {
    let mut n = 0u32;
    for (x, y) in a.iter().zip(b) {
        if n >= limit {
            break;
        }
        let d = x ^ y;
        if d != 0 {
            n += d.leading_zeros();
            break;
        }
        n += 8;
    }
    n.min(limit)
}

impl BitTrie {
    fn new(dlen: usize) -> BitTrie {
        BitTrie {
            dlen,
            root: NONE,
            ..Default::default()
        }
    }

    fn data(&self, n: u32) -> &[u8] {
        &self.data[n as usize * self.dlen..(n as usize + 1) * self.dlen]
    }

    fn get(&self, slot: Slot) -> u32 {
        match slot {
            Slot::Root => self.root,
            Slot::Child(p, b) => self.nodes[p as usize].child[b],
        }
    }

    fn set(&mut self, slot: Slot, n: u32) {
        match slot {
            Slot::Root => self.root = n,
            Slot::Child(p, b) => self.nodes[p as usize].child[b] = n,
        }
    }

    fn alloc(&mut self, plen: u32, data: &[u8], elem: u32) -> u32 {
        let node = TNode {
            plen,
            child: [NONE; 2],
            elem,
            w: 0,
        };
        let n = match self.free.pop() {
            Some(n) => {
                self.nodes[n as usize] = node;
                n
            }
            None => {
                self.nodes.push(node);
                self.data.resize(self.data.len() + self.dlen, 0);
                self.nodes.len() as u32 - 1
            }
        };
        let d = self.dlen;
        self.data[n as usize * d..(n as usize + 1) * d].copy_from_slice(&data[..d]);
        // Bits past the prefix cleared (an intermediate node's data is a child's).
        let (full, rem) = ((plen / 8) as usize, plen % 8);
        let dd = &mut self.data[n as usize * d..(n as usize + 1) * d];
        if full < d {
            if rem != 0 {
                dd[full] &= 0xffu8 << (8 - rem);
                dd[full + 1..].fill(0);
            } else {
                dd[full..].fill(0);
            }
        }
        self.nodes[n as usize].w = word(dd);
        n
    }

    /// The element of the longest prefix of `data` no longer than `limit` bits
    /// (`trie_lookup_elem`).
    fn lookup(&self, data: &[u8], limit: u32, max: u32) -> Option<u32> {
        if self.dlen <= 8 {
            return self.lookup_word(word(data), limit, max);
        }
        let mut found = NONE;
        let mut n = self.root;
        while n != NONE {
            let node = self.nodes[n as usize];
            let m = common_bits(self.data(n), data, node.plen.min(limit));
            if m == max {
                found = node.elem;
                break;
            }
            if m < node.plen {
                break;
            }
            if node.elem != NONE {
                found = node.elem;
            }
            n = node.child[bit(data, node.plen)];
        }
        (found != NONE).then_some(found)
    }

    /// [`Self::lookup`] for keys of at most 8 data bytes, as one number.
    fn lookup_word(&self, key: u64, limit: u32, max: u32) -> Option<u32> {
        let mut found = NONE;
        let mut n = self.root;
        while let Some(node) = self.nodes.get(n as usize) {
            let m = (node.w ^ key).leading_zeros().min(node.plen.min(limit));
            if m == max {
                found = node.elem;
                break;
            }
            if m < node.plen {
                break;
            }
            if node.elem != NONE {
                found = node.elem;
            }
            // The bit after the prefix (a prefix of 64 bits has no children).
            n = node.child[(key.checked_shl(node.plen).unwrap_or(0) >> 63) as usize];
        }
        (found != NONE).then_some(found)
    }

    /// Adds (or re-points) the prefix `data/plen` (`trie_update_elem`).
    fn insert(&mut self, data: &[u8], plen: u32, elem: u32, max: u32) {
        let mut slot = Slot::Root;
        let m = loop {
            let n = self.get(slot);
            if n == NONE {
                let new = self.alloc(plen, data, elem);
                self.set(slot, new);
                return;
            }
            let node = self.nodes[n as usize];
            let m = common_bits(self.data(n), data, node.plen.min(plen));
            if node.plen != m || node.plen == plen || node.plen == max {
                break m;
            }
            slot = Slot::Child(n, bit(data, node.plen));
        };
        let n = self.get(slot);
        let node = self.nodes[n as usize];
        if node.plen == m && node.plen == plen {
            self.nodes[n as usize].elem = elem;
            return;
        }
        let new = self.alloc(plen, data, elem);
        if m == plen {
            // The new prefix contains the node: it goes above it.
            let b = bit(self.data(n), plen);
            self.nodes[new as usize].child[b] = n;
            self.set(slot, new);
            return;
        }
        // They branch after m bits: an intermediate node there.
        let im = self.alloc(m, data, NONE);
        let (bn, bnew) = (bit(self.data(n), m), bit(data, m));
        self.nodes[im as usize].child[bn] = n;
        self.nodes[im as usize].child[bnew] = new;
        self.set(slot, im);
    }

    /// Removes the prefix `data/plen`, which is present (`trie_delete_elem`).
    fn remove(&mut self, data: &[u8], plen: u32) {
        let (mut slot, mut parent_slot) = (Slot::Root, None);
        loop {
            let n = self.get(slot);
            if n == NONE {
                return;
            }
            let node = self.nodes[n as usize];
            let m = common_bits(self.data(n), data, node.plen.min(plen));
            if node.plen != m || node.plen == plen {
                if node.plen != plen || m != plen || node.elem == NONE {
                    return;
                }
                break;
            }
            parent_slot = Some(slot);
            slot = Slot::Child(n, bit(data, node.plen));
        }
        let n = self.get(slot);
        let node = self.nodes[n as usize];
        let kids = node.child.iter().filter(|c| **c != NONE).count();
        if kids == 2 {
            self.nodes[n as usize].elem = NONE;
            return;
        }
        if kids == 0 {
            // A leaf under an intermediate node: the sibling takes the parent's place.
            if let Some(ps) = parent_slot {
                let p = self.get(ps);
                if self.nodes[p as usize].elem == NONE {
                    let side = match slot {
                        Slot::Child(_, b) => b,
                        Slot::Root => 0,
                    };
                    let sibling = self.nodes[p as usize].child[1 - side];
                    self.set(ps, sibling);
                    self.free.push(p);
                    self.free.push(n);
                    return;
                }
            }
        }
        let child = if node.child[0] != NONE {
            node.child[0]
        } else {
            node.child[1]
        };
        self.set(slot, child);
        self.free.push(n);
    }
}

struct Trie {
    /// The lookup structure.
    bits: BitTrie,
    /// Masked key -> element.
    exact: FxMap<Box<[u8]>, u32>,
    order: BTreeSet<PostOrder>,
    /// Number of entries per prefix length.
    lens: Vec<u32>,
    /// Prefix lengths in use, longest first.
    used_lens: Vec<u32>,
    /// Key as given at update time, per element.
    orig_keys: Box<[u8]>,
    free: Vec<u32>,
}

impl Trie {
    fn add_len(&mut self, plen: u32) {
        self.lens[plen as usize] += 1;
        if self.lens[plen as usize] == 1 {
            let pos = self.used_lens.partition_point(|&l| l > plen);
            self.used_lens.insert(pos, plen);
        }
    }

    fn remove_len(&mut self, plen: u32) {
        self.lens[plen as usize] -= 1;
        if self.lens[plen as usize] == 0 {
            self.used_lens.retain(|&l| l != plen);
        }
    }
}

/// An LPM trie map.
pub struct LpmTrie {
    c: Common,
    trie: RwLock<Trie>,
    arena: Arena,
    vstride: usize,
    max_prefixlen: u32,
}

impl LpmTrie {
    pub(crate) fn new(attr: &MapAttr, ncpus: usize) -> Result<LpmTrie, MapError> {
        let c = Common::new(attr, ncpus);
        let vstride = round8(attr.value_size as usize);
        let n = attr.max_entries as u64;
        crate::create::check_budget(
            &c,
            n.saturating_mul(vstride as u64 + 2 * attr.key_size as u64 + 64),
        )?;
        let arena = crate::create::alloc_arena(&c, n * vstride as u64)?;
        let max_prefixlen = (attr.key_size - 4) * 8;
        Ok(LpmTrie {
            trie: RwLock::new(Trie {
                bits: BitTrie::new(attr.key_size as usize - 4),
                exact: FxMap::default(),
                order: BTreeSet::new(),
                lens: vec![0; max_prefixlen as usize + 1],
                used_lens: Vec::new(),
                orig_keys: vec![0; attr.key_size as usize * attr.max_entries as usize].into(),
                free: (0..attr.max_entries).rev().collect(),
            }),
            c,
            arena,
            vstride,
            max_prefixlen,
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Trie> {
        self.trie.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Trie> {
        self.trie.write().unwrap_or_else(|e| e.into_inner())
    }

    fn ptr(&self, idx: u32) -> *mut u8 {
        self.arena.at(idx as usize * self.vstride)
    }

    /// Longest-prefix match for `key` (prefixes no longer than the key's own prefixlen).
    fn longest_match(&self, t: &Trie, key: &[u8]) -> Option<u32> {
        let limit = prefixlen(key).min(self.max_prefixlen);
        t.bits.lookup(&key[4..], limit, self.max_prefixlen)
    }

    /// The masked form of an update/delete key, or `EINVAL` for a prefix that is too long.
    fn masked(&self, key: &[u8]) -> Result<Box<[u8]>, MapError> {
        self.c.check_key(key)?;
        let plen = prefixlen(key);
        if plen > self.max_prefixlen {
            return Err(self.c.invalid(format!(
                "prefixlen {plen} exceeds the key's {} bits",
                self.max_prefixlen
            )));
        }
        let mut m = vec![0u8; key.len()].into_boxed_slice();
        mask_into(key, plen, &mut m);
        Ok(m)
    }

    fn do_update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        if flags > BPF_EXIST {
            return Err(self.c.invalid(format!("invalid update flags {flags:#x}")));
        }
        let m = self.masked(key)?;
        let ks = self.c.key_size();
        let mut t = self.write();
        let idx = match t.exact.get(&m) {
            Some(&idx) => {
                if flags == BPF_NOEXIST {
                    return Err(self.c.exists());
                }
                idx
            }
            None => {
                if flags == BPF_EXIST {
                    return Err(self.c.not_found());
                }
                let Some(idx) = t.free.pop() else {
                    return Err(MapError::NoSpace {
                        map: self.c.label(),
                        max_entries: self.c.attr.max_entries,
                    });
                };
                t.add_len(prefixlen(&m));
                t.bits
                    .insert(&m[4..], prefixlen(&m), idx, self.max_prefixlen);
                t.order.insert(PostOrder(m.clone()));
                t.exact.insert(m, idx);
                idx
            }
        };
        t.orig_keys[idx as usize * ks..(idx as usize + 1) * ks].copy_from_slice(key);
        // SAFETY: in-bounds aligned slot of value_size bytes.
        unsafe { mem::copy_in(self.ptr(idx), value) };
        Ok(())
    }

    fn do_delete(&self, key: &[u8]) -> Result<(), MapError> {
        let m = self.masked(key)?;
        let mut t = self.write();
        let idx = t.exact.remove(&m).ok_or_else(|| self.c.not_found())?;
        t.bits.remove(&m[4..], prefixlen(&m));
        let m = PostOrder(m);
        t.order.remove(&m);
        t.remove_len(prefixlen(&m.0));
        t.free.push(idx);
        Ok(())
    }
}

impl MapOps for LpmTrie {
    fn attr(&self) -> &MapAttr {
        &self.c.attr
    }

    fn ncpus(&self) -> usize {
        self.c.ncpus
    }

    fn lookup(&self, key: &[u8], _cpu: usize) -> Option<*mut u8> {
        if key.len() != self.c.key_size() {
            return None;
        }
        let t = self.read();
        self.longest_match(&t, key).map(|idx| self.ptr(idx))
    }

    fn update(&self, key: &[u8], value: &[u8], flags: u64, _cpu: usize) -> Result<(), MapError> {
        self.c.check_prog_write()?;
        self.c.check_value(value)?;
        self.do_update(key, value, flags)
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.do_delete(key)
    }

    fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), MapError> {
        self.c.check_user_read()?;
        let ks = self.c.key_size();
        if next.len() != ks {
            return Err(self.c.invalid(format!(
                "next key buffer is {} bytes, key_size is {ks}",
                next.len()
            )));
        }
        let t = self.read();
        // A missing key, a key with a bad prefixlen or a key not in the map: first entry.
        let start = key
            .filter(|k| k.len() == ks && prefixlen(k) <= self.max_prefixlen)
            .map(|k| {
                let mut m = vec![0u8; ks].into_boxed_slice();
                mask_into(k, prefixlen(k), &mut m);
                m
            })
            .filter(|m| t.exact.contains_key(m));
        let found = match start {
            Some(m) => {
                use std::ops::Bound::{Excluded, Unbounded};
                t.order.range((Excluded(PostOrder(m)), Unbounded)).next()
            }
            None => t.order.iter().next(),
        };
        let Some(found) = found else {
            return Err(self.c.not_found());
        };
        let idx = t.exact[&found.0] as usize;
        next.copy_from_slice(&t.orig_keys[idx * ks..(idx + 1) * ks]);
        Ok(())
    }

    fn lookup_user(&self, key: &[u8], out: &mut [u8], flags: u64) -> Result<(), MapError> {
        self.c.check_user_read()?;
        self.c.check_lookup_flags(flags)?;
        self.c.check_key(key)?;
        self.c.check_user_value(out.len())?;
        let t = self.read();
        let idx = self
            .longest_match(&t, key)
            .ok_or_else(|| self.c.not_found())?;
        // SAFETY: in-bounds aligned slot of value_size bytes.
        unsafe { mem::copy_out(self.ptr(idx), out) };
        Ok(())
    }

    fn update_user(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        self.c.check_user_write()?;
        self.c.check_user_value(value.len())?;
        self.do_update(key, value, flags)
    }

    fn delete_user(&self, key: &[u8]) -> Result<(), MapError> {
        self.c.check_user_write()?;
        self.do_delete(key)
    }

    fn freeze(&self) -> Result<(), MapError> {
        self.c.freeze()
    }

    fn is_frozen(&self) -> bool {
        self.c.is_frozen()
    }

    fn value_regions(&self) -> Vec<ValueRegion> {
        vec![ValueRegion {
            base: self.arena.base(),
            stride: self.vstride,
            count: self.c.attr.max_entries as usize,
            value_size: self.c.value_size(),
            writable_by_prog: self.c.prog_writable(),
        }]
    }

    fn memory_usage(&self) -> u64 {
        let node = crate::create::SIZEOF_LPM_TRIE_NODE
            + (self.c.key_size() - 4) as u64
            + self.c.value_size() as u64;
        node * self.read().exact.len() as u64
    }

    fn entries(&self) -> u64 {
        self.read().exact.len() as u64
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn gen_lookup(&self) -> Option<GenLookup> {
        Some(GenLookup::Lookup)
    }
}
