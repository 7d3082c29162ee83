//! Maps and `bpf_map_lookup_elem` for engines that have none (rbpf, DPDK): the
//! harness's own array and hash maps, which a program reaches through its map
//! references relocated to the maps' addresses (`LD_IMM64` with src_reg 0), and
//! a packet buffer below 4 GiB for XDP's 32-bit `data`/`data_end` fields.
//! These are the harness's code, not the engines': the notes say so.

use crate::engine::Skip;
use crate::programs::{Input, Program};
use bpfvm_isa::Insn;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use bpfvm_isa::uapi::{
    BPF_FUNC_MAP_LOOKUP_ELEM, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LPM_TRIE,
    BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY,
};
/// `XDP_PACKET_HEADROOM`.
const HEADROOM: usize = 256;

/// FNV-1a: a cheap hash for short keys (the kernel uses jhash).
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }
}

/// One map: values in one fixed allocation (so their addresses stay valid and
/// can be handed to rbpf as allowed memory), keys of a hash map indexing it.
/// An LRU hash is a hash here (the programs only look up, so nothing is
/// evicted), a per-CPU array one CPU's array, and an LPM trie a list of
/// prefixes scanned for the longest match.
pub struct HostMap {
    kind: Kind,
    key_size: usize,
    value_size: usize,
    max_entries: usize,
    values: Box<[u64]>,
    index: HashMap<Box<[u8]>, usize, BuildHasherDefault<Fnv>>,
    /// LPM trie: (prefix length, data) of slot i.
    prefixes: Vec<(u32, Box<[u8]>)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Array,
    Hash,
    Lpm,
}

/// Whether the first `bits` bits of `a` and `b` agree.
fn prefix_match(a: &[u8], b: &[u8], bits: u32) -> bool {
    let (whole, rest) = ((bits / 8) as usize, bits % 8);
    if a.len() < whole || b.len() < whole || a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        matches!((a.get(whole), b.get(whole)), (Some(x), Some(y)) if x & mask == y & mask)
    }
}

impl HostMap {
    fn new(
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> Result<HostMap, Skip> {
        let kind = match map_type {
            BPF_MAP_TYPE_HASH | BPF_MAP_TYPE_LRU_HASH => Kind::Hash,
            BPF_MAP_TYPE_ARRAY | BPF_MAP_TYPE_PERCPU_ARRAY => Kind::Array,
            BPF_MAP_TYPE_LPM_TRIE => Kind::Lpm,
            t => {
                return Err(Skip::new(format!(
                    "the harness's maps have no map type {t}"
                )))
            }
        };
        let slot = (value_size as usize).div_ceil(8);
        Ok(HostMap {
            kind,
            prefixes: Vec::new(),
            key_size: key_size as usize,
            value_size: value_size as usize,
            max_entries: max_entries as usize,
            values: vec![0u64; slot * max_entries as usize].into_boxed_slice(),
            index: HashMap::default(),
        })
    }

    fn slot(&self, i: usize) -> *mut u8 {
        let words = self.value_size.div_ceil(8);
        (self.values.as_ptr() as *mut u8).wrapping_add(i * words * 8)
    }

    /// The address range of the values (rbpf's allowed memory).
    pub fn value_range(&self) -> std::ops::Range<u64> {
        let start = self.values.as_ptr() as u64;
        start..start + (self.values.len() * 8) as u64
    }

    fn lookup(&self, key: &[u8]) -> Option<*mut u8> {
        let i = if self.kind == Kind::Hash {
            *self.index.get(key)?
        } else if self.kind == Kind::Lpm {
            // struct bpf_lpm_trie_key: u32 prefix length, then the data.
            let data = key.get(4..)?;
            self.prefixes
                .iter()
                .enumerate()
                .filter(|(_, (bits, p))| prefix_match(data, p, *bits))
                .max_by_key(|(_, (bits, _))| *bits)?
                .0
        } else {
            let k = u32::from_le_bytes(key.get(..4)?.try_into().ok()?) as usize;
            if k >= self.max_entries {
                return None;
            }
            k
        };
        Some(self.slot(i))
    }

    fn update(&mut self, key: &[u8], value: &[u8]) -> Result<(), Skip> {
        if key.len() != self.key_size || value.len() != self.value_size {
            return Err(Skip::new("map update of the wrong size"));
        }
        if self.kind == Kind::Lpm {
            let bits = u32::from_le_bytes(key[..4].try_into().unwrap_or([0; 4]));
            let data: Box<[u8]> = key[4..].into();
            let i = match self
                .prefixes
                .iter()
                .position(|(b, d)| *b == bits && *d == data)
            {
                Some(i) => i,
                None if self.prefixes.len() < self.max_entries => {
                    self.prefixes.push((bits, data));
                    self.prefixes.len() - 1
                }
                None => return Err(Skip::new("map full")),
            };
            // SAFETY: slot i lies inside values and holds value_size bytes.
            unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), self.slot(i), value.len()) };
            return Ok(());
        }
        let i = match self.lookup(key) {
            Some(p) => {
                (p as usize - self.values.as_ptr() as usize) / (self.value_size.div_ceil(8) * 8)
            }
            None if self.kind == Kind::Hash && self.index.len() < self.max_entries => {
                let i = self.index.len();
                self.index.insert(key.into(), i);
                i
            }
            None => return Err(Skip::new("map full or key out of range")),
        };
        // SAFETY: slot i lies inside values and holds value_size bytes.
        unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), self.slot(i), value.len()) };
        Ok(())
    }
}

/// `void *bpf_map_lookup_elem(struct bpf_map *map, const void *key)`.
///
/// # Safety
/// `map` must be a live `HostMap` and `key` point at its key size of bytes.
pub unsafe fn map_lookup_elem(map: u64, key: u64) -> u64 {
    // SAFETY: the caller's contract; the program's r1 is a relocated HostMap address.
    let m = unsafe { &*(map as *const HostMap) };
    let key = unsafe { std::slice::from_raw_parts(key as *const u8, m.key_size) };
    m.lookup(key).map_or(0, |p| p as u64)
}

/// A packet program ready for an engine without maps: its instructions with
/// map references relocated to `maps`, and its packet and `xdp_md` in memory
/// below 4 GiB.
pub struct PacketSetup {
    pub insns: Vec<Insn>,
    pub maps: Vec<Box<HostMap>>,
    pub packet: LowPage,
}

impl PacketSetup {
    /// Loads `prog`'s `function` from the object at `path` and fills its maps.
    pub fn new(prog: &Program, path: &std::path::Path, input: &Input) -> Result<PacketSetup, Skip> {
        let obj = bpfvm::Object::open(path).map_err(|e| Skip::from_err(&e))?;
        let p = obj
            .programs
            .iter()
            .find(|p| p.name == prog.function)
            .ok_or_else(|| {
                Skip::new(format!(
                    "no program {} in {}",
                    prog.function,
                    path.display()
                ))
            })?;
        let mut maps = Vec::new();
        for d in &obj.maps {
            maps.push(Box::new(HostMap::new(
                d.map_type,
                d.key_size,
                d.value_size,
                d.max_entries,
            )?));
        }
        for (name, key, value) in &input.map_entries {
            let i = obj
                .maps
                .iter()
                .position(|d| d.name == *name)
                .ok_or_else(|| Skip::new(format!("no map {name}")))?;
            maps[i].update(key, value)?;
        }
        // The harness gives engines without maps bpf_map_lookup_elem only.
        if let Some(c) = p
            .insns
            .iter()
            .find(|i| i.code == 0x85 && i.src_reg == 0 && i.imm != BPF_FUNC_MAP_LOOKUP_ELEM)
        {
            return Err(Skip::new(format!(
                "calls helper {}, which the harness does not provide to engines without a runtime",
                c.imm
            )));
        }
        let mut insns = p.insns.clone();
        for r in &p.map_relocs {
            if r.kind != bpfvm::MapRelocKind::Fd {
                return Err(Skip::new(
                    "global data is not supported by the harness's maps",
                ));
            }
            let addr = &*maps[r.map_idx] as *const HostMap as u64;
            let [lo, hi] = [addr as u32 as i32, (addr >> 32) as u32 as i32];
            let (Some(first), true) = (insns.get_mut(r.insn_idx), r.insn_idx + 1 < p.insns.len())
            else {
                return Err(Skip::new("map relocation out of range"));
            };
            first.src_reg = 0;
            first.imm = lo;
            insns[r.insn_idx + 1].imm = hi;
        }
        let packet = LowPage::new(&input.data)?;
        Ok(PacketSetup {
            insns,
            maps,
            packet,
        })
    }
}

/// One page mapped below 4 GiB: a 24-byte `xdp_md` at offset 0 and the frame
/// at XDP_PACKET_HEADROOM, as the kernel lays out a test run's buffer.
pub struct LowPage {
    base: *mut u8,
    len: usize,
}

const PAGE: usize = 4096;
/// Asks for memory below 2 GiB where the platform can.
#[cfg(target_arch = "x86_64")]
const LOW_MAP: i32 = libc::MAP_32BIT;
#[cfg(not(target_arch = "x86_64"))]
const LOW_MAP: i32 = 0;

impl LowPage {
    fn new(frame: &[u8]) -> Result<LowPage, Skip> {
        if frame.len() > PAGE - HEADROOM {
            return Err(Skip::new("frame larger than a page"));
        }
        // SAFETY: a fresh anonymous mapping (MAP_32BIT on x86-64: below 2 GiB).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | LOW_MAP,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Skip::new(format!(
                "mmap(MAP_32BIT): {}",
                std::io::Error::last_os_error()
            )));
        }
        let base = p as *mut u8;
        if base as u64 + PAGE as u64 > u32::MAX as u64 {
            // SAFETY: the mapping just made.
            unsafe { libc::munmap(p, PAGE) };
            return Err(Skip::new(
                "no memory below 4 GiB for xdp_md's 32-bit pointers",
            ));
        }
        let data = base as u64 + HEADROOM as u64;
        // SAFETY: the page is ours; offsets are inside it.
        unsafe {
            std::ptr::copy_nonoverlapping(frame.as_ptr(), base.add(HEADROOM), frame.len());
            let md = base as *mut u32;
            *md = data as u32; // data
            *md.add(1) = (data + frame.len() as u64) as u32; // data_end
            *md.add(2) = data as u32; // data_meta
        }
        Ok(LowPage {
            base,
            len: frame.len(),
        })
    }

    /// The `xdp_md` (r1).
    pub fn ctx(&self) -> *mut u8 {
        self.base
    }

    /// Size of the `xdp_md` at [`LowPage::ctx`].
    pub const CTX_LEN: usize = 24;

    /// The frame's start.
    pub fn frame_ptr(&self) -> *mut u8 {
        self.base.wrapping_add(HEADROOM)
    }

    pub fn frame_len(&self) -> usize {
        self.len
    }
}

impl Drop for LowPage {
    fn drop(&mut self) {
        // SAFETY: our mapping.
        unsafe { libc::munmap(self.base as *mut libc::c_void, PAGE) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::programs::{hash_entries, Scale, PROGRAMS};

    #[test]
    fn maps_are_filled_and_looked_up_like_the_kernel_s() {
        let prog = PROGRAMS
            .iter()
            .find(|p| p.name == "hashmap/v4")
            .expect("hashmap");
        let setup = PacketSetup::new(prog, &prog.object_path(), &prog.input(Scale::Small))
            .expect("sets up");
        let table = &*setup.maps[0] as *const HostMap as u64;
        for (k, v) in hash_entries().take(10) {
            let key = k.to_le_bytes();
            // SAFETY: a live map and a 4-byte key.
            let p = unsafe { map_lookup_elem(table, key.as_ptr() as u64) };
            assert_ne!(p, 0, "key {k} missing");
            // SAFETY: p points at the 8-byte value.
            assert_eq!(unsafe { *(p as *const u64) }, v);
        }
        let odd = 3u32.to_le_bytes();
        // SAFETY: as above.
        assert_eq!(
            unsafe { map_lookup_elem(table, odd.as_ptr() as u64) },
            0,
            "odd keys are absent"
        );

        let mut array = HostMap::new(BPF_MAP_TYPE_ARRAY, 4, 16, 256).expect("array");
        let addr = &array as *const HostMap as u64;
        for k in [0u32, 255, 256, u32::MAX] {
            let key = k.to_le_bytes();
            // SAFETY: as above.
            let p = unsafe { map_lookup_elem(addr, key.as_ptr() as u64) };
            assert_eq!(p != 0, k < 256, "array key {k}");
        }
        assert!(array.update(&7u32.to_le_bytes(), &[1; 16]).is_ok());
        assert!(array.update(&300u32.to_le_bytes(), &[1; 16]).is_err());
    }
}
