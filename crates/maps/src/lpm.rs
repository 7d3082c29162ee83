//! `BPF_MAP_TYPE_LPM_TRIE` (kernel `lpm_trie.c`): longest-prefix match.
//!
//! A key is `struct bpf_lpm_trie_key`: a native-endian `u32 prefixlen` followed by
//! `key_size - 4` data bytes, matched most significant bit first (network byte order for IP
//! addresses). An entry covers the keys whose first `prefixlen` bits equal its own.
//!
//! Lookups walk a path-compressed binary trie shaped like the kernel's ([`BitTrie`]), kept in
//! preallocated atomic words and read without a lock (a seqlock stands in for RCU); the
//! writers' state (a hash index on the masked key, the post-order set, free lists) sits under
//! one `RwLock`. Values sit in a preallocated arena at stable addresses like the hash maps'.
//!
//! `get_next_key` follows the kernel's order, a post-order walk of the trie: more specific
//! prefixes before the prefix that contains them, and the 0-branch before the 1-branch at the
//! first differing bit. A missing or invalid key gives the first entry. The returned key is
//! the one given to the update that created the entry, bits past the prefix included, as in
//! the kernel.

use std::any::Any;
use std::cmp::Ordering as CmpOrdering;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
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

/// Where a node's data words start (after `plen | elem`, the children and the next bit).
const DATA: usize = 3;

/// Most data words a key has (`LPM_KEY_SIZE_MAX` less the prefixlen, in u64s).
const MAX_WORDS: usize = 32;

/// A trie node as read from [`BitTrie`]: prefix length, element (NONE: an intermediate node,
/// made where two prefixes branch) and children (by the bit after the prefix).
#[derive(Clone, Copy)]
struct TNode {
    plen: u32,
    elem: u32,
    child: [u32; 2],
}

/// The key's data as big-endian u64 words, zero-padded: prefixes are compared a word at a time.
fn key_words(data: &[u8], out: &mut [u64; MAX_WORDS]) -> usize {
    let nw = data.len().div_ceil(8).min(MAX_WORDS);
    for (i, w) in out.iter_mut().enumerate().take(nw) {
        *w = word(data.get(i * 8..).unwrap_or(&[]));
    }
    nw
}

/// The first 8 bytes of `data` as a big-endian number, zero-padded.
fn word(data: &[u8]) -> u64 {
    if let Some(b) = data.first_chunk::<8>() {
        return u64::from_be_bytes(*b);
    }
    let mut b = [0u8; 8];
    b[..data.len()].copy_from_slice(data);
    u64::from_be_bytes(b)
}

/// Bit `i` of a key in words, most significant bit of word 0 first.
fn bit(key: &[u64], i: u32) -> usize {
    key.get((i / 64) as usize)
        .map_or(0, |w| (w >> (63 - i % 64)) as usize & 1)
}

/// Where a node hangs: the root, or a child slot of a node.
#[derive(Clone, Copy)]
enum Slot {
    Root,
    Child(u32, usize),
}

/// Node slots not in the trie (kept under the map's lock with the rest of the writers' state).
struct NodeAlloc {
    free: Vec<u32>,
    /// Slots from here on were never used.
    next: u32,
    cap: u32,
}

impl NodeAlloc {
    fn available(&self) -> u32 {
        self.free.len() as u32 + (self.cap - self.next)
    }

    fn take(&mut self) -> Option<u32> {
        self.free.pop().or_else(|| {
            (self.next < self.cap).then(|| {
                self.next += 1;
                self.next - 1
            })
        })
    }
}

// `zeroed_words` relies on this (true where u64 is 8-aligned, as on x86-64 and aarch64).
const _: () = assert!(std::mem::align_of::<AtomicU64>() == std::mem::align_of::<u64>());

/// `n` zeroed atomic words whose pages the kernel hands out on first write: `vec![0; n]` is a
/// zeroed allocation (calloc), where building atomics one by one would write every page at
/// map creation (a 1M-entry IPv4 trie: 40 ms and 64 MiB resident before its first update).
fn zeroed_words(n: usize) -> Box<[AtomicU64]> {
    let words = Box::into_raw(vec![0u64; n].into_boxed_slice());
    // SAFETY: AtomicU64 has the size and bit validity of u64 (its documented layout) and, by
    // the assertion above, its alignment; the allocation moves from one box to the other, so
    // it is freed once, with the same layout.
    unsafe { Box::from_raw(words as *mut [AtomicU64]) }
}

/// The path-compressed binary trie (the kernel's `lpm_trie` layout), readable without a lock.
///
/// Nodes sit in one preallocated block of atomic words, `3 + nw` per node: `plen | elem << 32`,
/// `child0 | child1 << 32`, the bit after the prefix within its word (`1 << (63 - plen % 64)`,
/// 0 at 64 bits), then the masked data as `nw` big-endian words. Writers (serialised
/// by the map's lock) bracket each change with `seq` odd; a reader walks with relaxed loads and
/// keeps its answer only if `seq` was even and unchanged around the walk (a seqlock), the
/// lock-free stand-in for the kernel's RCU walk. A torn walk cannot loop or index out of
/// bounds: every node index is checked and the step count is bounded by the key's bits.
struct BitTrie {
    words: Box<[AtomicU64]>,
    nw: usize,
    root: AtomicU32,
    seq: AtomicU64,
}

impl BitTrie {
    /// A trie for `dlen`-byte data with room for `cap` nodes (entries and the intermediate
    /// nodes between them: fewer than twice the entries).
    fn new(dlen: usize, cap: u32) -> BitTrie {
        let nw = dlen.div_ceil(8);
        BitTrie {
            words: zeroed_words(cap as usize * (DATA + nw)),
            nw,
            root: AtomicU32::new(NONE),
            seq: AtomicU64::new(0),
        }
    }

    fn stride(&self) -> usize {
        DATA + self.nw
    }

    /// Node `n`, or None for NONE (or, in a torn read, anything out of range).
    #[inline(always)]
    fn node(&self, n: u32) -> Option<TNode> {
        let base = n as usize * self.stride();
        let rec = self.words.get(base..base + 2)?;
        let (a, b) = (
            rec[0].load(Ordering::Relaxed),
            rec[1].load(Ordering::Relaxed),
        );
        Some(TNode {
            plen: a as u32,
            elem: (a >> 32) as u32,
            child: [b as u32, (b >> 32) as u32],
        })
    }

    fn data_word(&self, n: u32, i: usize) -> u64 {
        self.words
            .get(n as usize * self.stride() + DATA + i)
            .map_or(0, |w| w.load(Ordering::Relaxed))
    }

    /// How many leading bits node `n`'s data shares with `key`, at most `limit`.
    #[inline(always)]
    fn common_bits(&self, n: u32, key: &[u64], limit: u32) -> u32 {
        let mut bits = 0u32;
        for (i, k) in key.iter().enumerate() {
            if bits >= limit {
                break;
            }
            let d = self.data_word(n, i) ^ k;
            if d != 0 {
                bits += d.leading_zeros();
                break;
            }
            bits += 64;
        }
        bits.min(limit)
    }

    fn node_bit(&self, n: u32, i: u32) -> usize {
        (self.data_word(n, (i / 64) as usize) >> (63 - i % 64)) as usize & 1
    }

    // Writers: only with the map's write lock held, between begin_write and end_write.

    fn begin_write(&self) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
    }

    fn end_write(&self) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Release);
    }

    fn store(&self, idx: usize, v: u64) {
        if let Some(w) = self.words.get(idx) {
            w.store(v, Ordering::Relaxed);
        }
    }

    fn set_elem(&self, n: u32, plen: u32, elem: u32) {
        self.store(
            n as usize * self.stride(),
            plen as u64 | (elem as u64) << 32,
        );
        let next_bit = if plen as usize >= self.nw * 64 {
            0
        } else {
            1u64 << (63 - plen % 64)
        };
        self.store(n as usize * self.stride() + 2, next_bit);
    }

    fn set_children(&self, n: u32, child: [u32; 2]) {
        self.store(
            n as usize * self.stride() + 1,
            child[0] as u64 | (child[1] as u64) << 32,
        );
    }

    fn get(&self, slot: Slot) -> u32 {
        match slot {
            Slot::Root => self.root.load(Ordering::Relaxed),
            Slot::Child(p, b) => self.node(p).map_or(NONE, |p| p.child[b]),
        }
    }

    fn set(&self, slot: Slot, n: u32) {
        match slot {
            Slot::Root => self.root.store(n, Ordering::Relaxed),
            Slot::Child(p, b) => {
                if let Some(mut node) = self.node(p) {
                    node.child[b] = n;
                    self.set_children(p, node.child);
                }
            }
        }
    }

    /// A new node for `key/plen` (bits past the prefix cleared: an intermediate node's data
    /// is a child's).
    fn alloc(&self, a: &mut NodeAlloc, plen: u32, key: &[u64], elem: u32) -> u32 {
        let Some(n) = a.take() else {
            // The caller made sure of room; unreachable.
            return NONE;
        };
        self.set_elem(n, plen, elem);
        self.set_children(n, [NONE; 2]);
        let base = n as usize * self.stride() + DATA;
        for (i, k) in key.iter().enumerate() {
            let start = i as u32 * 64;
            let w = if plen >= start + 64 {
                *k
            } else if plen <= start {
                0
            } else {
                k & !(u64::MAX >> (plen - start))
            };
            self.store(base + i, w);
        }
        n
    }

    /// The element of the longest prefix of `data` no longer than `limit` bits
    /// (`trie_lookup_elem`), on whatever the trie holds: callers check `seq` or hold the lock.
    #[inline(always)]
    fn walk(&self, data: &[u8], limit: u32, max: u32) -> u32 {
        if self.nw == 1 {
            return self.walk1(word(data), limit, max);
        }
        self.walk_words(data, limit, max)
    }

    /// [`Self::walk`] for keys of more than 8 data bytes (out of line: the one-word walk, the
    /// common case, stays small).
    #[inline(never)]
    fn walk_words(&self, data: &[u8], limit: u32, max: u32) -> u32 {
        let mut key = [0u64; MAX_WORDS];
        let nw = key_words(data, &mut key);
        let key = &key[..nw];
        let mut found = NONE;
        let mut n = self.root.load(Ordering::Relaxed);
        // Prefix lengths grow along a path, so a consistent walk takes at most max + 1 steps.
        for _ in 0..=max {
            let Some(node) = self.node(n) else { break };
            let m = self.common_bits(n, key, node.plen.min(limit));
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
            n = node.child[bit(key, node.plen)];
        }
        found
    }

    /// [`Self::walk`] for keys of at most 8 data bytes, as one number.
    #[inline(always)]
    fn walk1(&self, key: u64, limit: u32, max: u32) -> u32 {
        let words = &*self.words;
        let mut found = NONE;
        let mut n = self.root.load(Ordering::Relaxed);
        for _ in 0..=max {
            let base = n as usize * (DATA + 1);
            let Some(rec) = words.get(base..base + DATA + 1) else {
                break;
            };
            let (a, ch, next_bit, w) = (
                rec[0].load(Ordering::Relaxed),
                rec[1].load(Ordering::Relaxed),
                rec[2].load(Ordering::Relaxed),
                rec[3].load(Ordering::Relaxed),
            );
            let (plen, elem) = (a as u32, (a >> 32) as u32);
            let m = (w ^ key).leading_zeros().min(plen.min(limit));
            if m == max {
                found = elem;
                break;
            }
            if m < plen {
                break;
            }
            if elem != NONE {
                found = elem;
            }
            // The bit after the prefix picks the child: a test and a select (a cmov, not a
            // branch nor a shift by the prefix length), short on the path to the next load.
            let take1 = 0u64.wrapping_sub((key & next_bit != 0) as u64);
            n = ((ch >> 32) & take1 | ch & !take1) as u32;
        }
        found
    }

    /// [`Self::walk`] without a lock: retried while writers change the trie under it, then
    /// under `lock` (which excludes writers) if they keep at it.
    #[inline(always)]
    fn lookup<G>(&self, data: &[u8], limit: u32, max: u32, lock: impl FnOnce() -> G) -> u32 {
        for _ in 0..4 {
            let s = self.seq.load(Ordering::Acquire);
            if s & 1 == 0 {
                let found = self.walk(data, limit, max);
                fence(Ordering::Acquire);
                if self.seq.load(Ordering::Relaxed) == s {
                    return found;
                }
            }
            std::hint::spin_loop();
        }
        self.walk_locked(data, limit, max, lock)
    }

    #[cold]
    #[inline(never)]
    fn walk_locked<G>(&self, data: &[u8], limit: u32, max: u32, lock: impl FnOnce() -> G) -> u32 {
        let _guard = lock();
        self.walk(data, limit, max)
    }

    /// Adds (or re-points) the prefix `key/plen` (`trie_update_elem`); `a` has room for two
    /// nodes.
    fn insert(&self, a: &mut NodeAlloc, key: &[u64], plen: u32, elem: u32, max: u32) {
        let mut slot = Slot::Root;
        let m = loop {
            let n = self.get(slot);
            let Some(node) = self.node(n) else {
                let new = self.alloc(a, plen, key, elem);
                self.set(slot, new);
                return;
            };
            let m = self.common_bits(n, key, node.plen.min(plen));
            if node.plen != m || node.plen == plen || node.plen == max {
                break m;
            }
            slot = Slot::Child(n, bit(key, node.plen));
        };
        let n = self.get(slot);
        let Some(node) = self.node(n) else { return };
        if node.plen == m && node.plen == plen {
            self.set_elem(n, plen, elem);
            return;
        }
        let new = self.alloc(a, plen, key, elem);
        if m == plen {
            // The new prefix contains the node: it goes above it.
            let mut child = [NONE; 2];
            child[self.node_bit(n, plen)] = n;
            self.set_children(new, child);
            self.set(slot, new);
            return;
        }
        // They branch after m bits: an intermediate node there.
        let im = self.alloc(a, m, key, NONE);
        let mut child = [NONE; 2];
        child[self.node_bit(n, m)] = n;
        child[bit(key, m)] = new;
        self.set_children(im, child);
        self.set(slot, im);
    }

    /// Removes the prefix `key/plen`, which is present (`trie_delete_elem`).
    fn remove(&self, a: &mut NodeAlloc, key: &[u64], plen: u32) {
        let (mut slot, mut parent_slot) = (Slot::Root, None);
        loop {
            let n = self.get(slot);
            let Some(node) = self.node(n) else { return };
            let m = self.common_bits(n, key, node.plen.min(plen));
            if node.plen != m || node.plen == plen {
                if node.plen != plen || m != plen || node.elem == NONE {
                    return;
                }
                break;
            }
            parent_slot = Some(slot);
            slot = Slot::Child(n, bit(key, node.plen));
        }
        let n = self.get(slot);
        let Some(node) = self.node(n) else { return };
        let kids = node.child.iter().filter(|c| **c != NONE).count();
        if kids == 2 {
            self.set_elem(n, node.plen, NONE);
            return;
        }
        if kids == 0 {
            // A leaf under an intermediate node: the sibling takes the parent's place.
            if let Some(ps) = parent_slot {
                let p = self.get(ps);
                if let Some(pn) = self.node(p).filter(|pn| pn.elem == NONE) {
                    let side = match slot {
                        Slot::Child(_, b) => b,
                        Slot::Root => 0,
                    };
                    self.set(ps, pn.child[1 - side]);
                    a.free.push(p);
                    a.free.push(n);
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
        a.free.push(n);
    }
}

struct Trie {
    /// The lookup structure's free node slots.
    nodes: NodeAlloc,
    /// Masked key -> element.
    exact: FxMap<Box<[u8]>, u32>,
    order: BTreeSet<PostOrder>,
    /// Number of entries per prefix length.
    lens: Vec<u32>,
    /// Prefix lengths in use, longest first.
    used_lens: Vec<u32>,
    /// Key as given at update time, per element.
    orig_keys: Box<[u8]>,
    /// Free elements, reused oldest first: a value slot a program may still be reading
    /// after a delete (the kernel defers the free past RCU readers) is the last to be
    /// overwritten.
    free: VecDeque<u32>,
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
    /// The lookup structure, read without the lock; changed with it held.
    bits: BitTrie,
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
        // Every entry and at most one intermediate node per entry but the first.
        let cap = attr.max_entries.saturating_mul(2);
        Ok(LpmTrie {
            bits: BitTrie::new(attr.key_size as usize - 4, cap),
            trie: RwLock::new(Trie {
                nodes: NodeAlloc {
                    free: Vec::new(),
                    next: 0,
                    cap,
                },
                exact: FxMap::default(),
                order: BTreeSet::new(),
                lens: vec![0; max_prefixlen as usize + 1],
                used_lens: Vec::new(),
                orig_keys: vec![0; attr.key_size as usize * attr.max_entries as usize].into(),
                free: (0..attr.max_entries).collect(),
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

    /// Longest-prefix match for `key` (prefixes no longer than the key's own prefixlen), of
    /// `key_size` bytes.
    #[inline(always)]
    fn longest_match(&self, key: &[u8]) -> Option<u32> {
        let limit = prefixlen(key).min(self.max_prefixlen);
        let data = key.get(4..).unwrap_or(&[]);
        let found = self
            .bits
            .lookup(data, limit, self.max_prefixlen, || self.read());
        (found != NONE).then_some(found)
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
                // An insert takes at most two node slots (there are always two while an
                // element is free, as intermediate nodes are fewer than entries).
                let room = t.nodes.available() >= 2;
                let Some(idx) = room.then(|| t.free.pop_front()).flatten() else {
                    return Err(MapError::NoSpace {
                        map: self.c.label(),
                        max_entries: self.c.attr.max_entries,
                    });
                };
                t.add_len(prefixlen(&m));
                let mut kw = [0u64; MAX_WORDS];
                let nw = key_words(&m[4..], &mut kw);
                self.bits.begin_write();
                self.bits.insert(
                    &mut t.nodes,
                    &kw[..nw],
                    prefixlen(&m),
                    idx,
                    self.max_prefixlen,
                );
                self.bits.end_write();
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
        let mut kw = [0u64; MAX_WORDS];
        let nw = key_words(&m[4..], &mut kw);
        self.bits.begin_write();
        self.bits.remove(&mut t.nodes, &kw[..nw], prefixlen(&m));
        self.bits.end_write();
        let m = PostOrder(m);
        t.order.remove(&m);
        t.remove_len(prefixlen(&m.0));
        t.free.push_back(idx);
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
        self.longest_match(key).map(|idx| self.ptr(idx))
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
        let idx = self.longest_match(key).ok_or_else(|| self.c.not_found())?;
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
        // A direct call of the lock-free walk, without the dynamic dispatch of `lookup`.
        let f = match self.c.key_size() {
            8 => direct_lpm_lookup::<8> as unsafe extern "sysv64" fn(u64, u64) -> u64,
            _ => direct_lpm_lookup::<0>,
        };
        Some(GenLookup::Call {
            f,
            obj: self as *const LpmTrie as u64,
        })
    }
}

/// [`LpmTrie::longest_match`] called straight from JIT code ([`GenLookup::Call`]): `obj` is
/// the map, `key` points to `key_size` readable bytes (`N`, or any size when `N` is 0).
unsafe extern "sysv64" fn direct_lpm_lookup<const N: usize>(obj: u64, key: u64) -> u64 {
    // SAFETY: the caller keeps the map alive while code embedding `obj` may run; the
    // verifier proved the key's key_size bytes readable.
    let m = unsafe { &*(obj as *const LpmTrie) };
    let len = if N == 0 { m.c.key_size() } else { N };
    let key = unsafe { std::slice::from_raw_parts(key as *const u8, len) };
    // Unwinding out of an extern "sysv64" fn aborts; a lookup that panics finds nothing.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.longest_match(key)))
        .ok()
        .flatten()
        .map_or(0, |idx| m.ptr(idx) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn a_lookup_during_a_write_waits_for_the_writer() {
        // With `seq` odd (a writer between begin_write and end_write), a lookup must not keep
        // a lock-free walk's answer: it retries, then waits on the lock the writer holds.
        let attr = MapAttr::new(MapType::LpmTrie, 8, 8, 4).with_flags(BPF_F_NO_PREALLOC);
        let m = LpmTrie::new(&attr, 1).unwrap();
        let mut k = [0u8; 8];
        k[..4].copy_from_slice(&8u32.to_ne_bytes());
        k[4] = 10;
        m.update_user(&k, &[1; 8], BPF_ANY).unwrap();
        k[..4].copy_from_slice(&32u32.to_ne_bytes());
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let t = m.write();
            m.bits.begin_write();
            let reader = s.spawn(|| {
                let found = m.lookup(&k, 0).is_some();
                done.store(true, Ordering::SeqCst);
                found
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!done.load(Ordering::SeqCst), "a lookup finished mid-write");
            m.bits.end_write();
            drop(t);
            assert!(
                reader.join().unwrap(),
                "10.0.0.0 found under 10/8 after the write"
            );
        });
    }
}
