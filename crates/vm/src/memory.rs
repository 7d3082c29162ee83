//! The memory a program may touch, as host address ranges.
//!
//! Programs use real host pointers (the JIT will too), so a run in checked mode
//! compares every access with the list of regions below: the stack frames in use,
//! the context, the packet and its metadata, regions that helpers registered, and
//! last a runtime-provided [`MemoryOracle`] (map values live in memory the maps
//! own, and the maps know their ranges).

use crate::error::Access;

/// What a region is, for error messages in the verifier's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionKind {
    /// The program's stack frames (managed by the VM).
    #[doc(alias = "PTR_TO_STACK")]
    Stack,
    /// The context r1 points to at entry (`struct xdp_md`, `__sk_buff`, ...).
    #[doc(alias = "PTR_TO_CTX")]
    Context,
    /// Packet data, `data .. data_end`; BPF_LD_ABS/BPF_LD_IND read from it.
    #[doc(alias = "PTR_TO_PACKET")]
    Packet,
    /// Packet metadata, `data_meta .. data`.
    #[doc(alias = "PTR_TO_PACKET_META")]
    PacketMeta,
    /// A map value returned by a helper.
    #[doc(alias = "PTR_TO_MAP_VALUE")]
    MapValue,
    /// Memory a helper handed out (a ring buffer record, ...).
    #[doc(alias = "PTR_TO_MEM")]
    Mem,
}

impl RegionKind {
    /// The kernel verifier's name for an access violation through this kind.
    pub fn violation(self, write: bool) -> &'static str {
        match (self, write) {
            (RegionKind::Stack, _) => "invalid stack access",
            (RegionKind::Context, true) => "invalid write to context",
            (RegionKind::Context, false) => "invalid bpf_context access",
            (RegionKind::Packet, _) => "invalid access to packet",
            (RegionKind::PacketMeta, _) => "invalid access to packet metadata",
            (RegionKind::MapValue, _) => "invalid access to map value",
            (RegionKind::Mem, _) => "invalid access to memory",
        }
    }
}

/// A host address range `start .. end` the program may read, and write if `writable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub writable: bool,
    pub kind: RegionKind,
}

impl Region {
    pub fn new(start: u64, len: u64, writable: bool, kind: RegionKind) -> Self {
        Region {
            start,
            end: start.saturating_add(len),
            writable,
            kind,
        }
    }

    /// A region over a byte slice the caller keeps alive (and does not touch) for the run.
    pub fn from_slice(mem: &[u8], kind: RegionKind) -> Self {
        Region::new(mem.as_ptr() as u64, mem.len() as u64, false, kind)
    }

    /// A writable region over a byte slice the caller keeps alive for the run.
    pub fn from_mut_slice(mem: &mut [u8], kind: RegionKind) -> Self {
        Region::new(mem.as_mut_ptr() as u64, mem.len() as u64, true, kind)
    }

    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// True if `addr .. addr+len` lies inside (never wraps).
    #[inline(always)]
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.start && addr <= self.end && len <= self.end - addr
    }

    /// True if `addr` is inside or one past the end (a base pointer into it).
    pub fn points_into(&self, addr: u64) -> bool {
        addr >= self.start && addr <= self.end
    }
}

/// Memory the runtime vouches for beyond the regions it listed (map values, per-cpu
/// data, ...). Asked last, only in checked mode, only when no region matched.
pub trait MemoryOracle: Send + Sync {
    /// True if the program may access `len` bytes at `addr` (`write` for stores
    /// and atomics).
    fn check(&self, addr: u64, len: usize, write: bool) -> bool;

    /// A name for the memory `addr` points into, used in error messages
    /// ("map value"); None if the oracle does not know the address.
    fn describe(&self, addr: u64) -> Option<RegionKind> {
        let _ = addr;
        None
    }
}

/// The regions of one run, and the check used by the interpreter and by helpers.
pub(crate) struct MemoryMap<'a> {
    /// Lowest address of the stack frames in use; moves with calls.
    pub(crate) stack_lo: u64,
    /// One past the highest stack address (frame 0's r10).
    pub(crate) stack_hi: u64,
    /// Lowest address of the whole stack allocation (all frames), for messages.
    pub(crate) stack_base: u64,
    pub(crate) regions: Vec<Region>,
    pub(crate) oracle: Option<&'a dyn MemoryOracle>,
}

impl MemoryMap<'_> {
    /// The fast check: the stack frames in use, a single comparison.
    #[inline(always)]
    pub(crate) fn ok(&self, addr: u64, len: u64, write: bool) -> bool {
        let rel = addr.wrapping_sub(self.stack_lo);
        let span = self.stack_hi - self.stack_lo;
        (rel <= span && len <= span - rel) || self.ok_slow(addr, len, write)
    }

    /// The listed regions (a handful: context, packet, ...), then the oracle.
    #[inline(always)]
    pub(crate) fn ok_slow(&self, addr: u64, len: u64, write: bool) -> bool {
        for r in &self.regions {
            if r.contains(addr, len) {
                return r.writable || !write;
            }
        }
        self.ok_oracle(addr, len, write)
    }

    #[inline(never)]
    fn ok_oracle(&self, addr: u64, len: u64, write: bool) -> bool {
        match self.oracle {
            Some(o) => usize::try_from(len).is_ok_and(|l| o.check(addr, l, write)),
            None => false,
        }
    }

    /// The verifier's words for an access through `base` (the pointer register
    /// before the offset) that failed the check.
    #[cold]
    pub(crate) fn describe_violation(&self, base: u64, addr: u64, access: Access) -> String {
        let write = access != Access::Read;
        let kind = if base >= self.stack_base && base <= self.stack_hi {
            Some(RegionKind::Stack)
        } else if let Some(r) = self.regions.iter().find(|r| r.points_into(base)) {
            if r.contains(addr, 1) && write && !r.writable {
                return match r.kind {
                    RegionKind::Context => "invalid write to read-only context".to_string(),
                    k => format!("{} (read only)", k.violation(true)),
                };
            }
            Some(r.kind)
        } else {
            self.oracle.and_then(|o| o.describe(base))
        };
        match kind {
            Some(k) => k.violation(write).to_string(),
            None => "invalid mem access".to_string(),
        }
    }
}
