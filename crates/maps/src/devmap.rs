//! `BPF_MAP_TYPE_DEVMAP` and `BPF_MAP_TYPE_CPUMAP` (kernel `devmap.c`, `cpumap.c`): arrays of
//! redirect targets. bpfvm records the entries for its datapath; programs read them only.
//!
//! The `prog_fd` field of a value is stored as given when positive (the runtime should put a
//! program id there, which is what the kernel shows back), and as 0 otherwise.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::array::{array_next_key, index_key};
use crate::error::MapError;
use crate::mem::{self, Arena};
use crate::ops::{Common, MapOps, ValueRegion};
use crate::types::*;

/// `struct bpf_devmap_val`: the target interface and an optional XDP program run on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DevmapVal {
    pub ifindex: u32,
    /// Id of the program (0: none).
    pub prog_id: u32,
}

/// `struct bpf_cpumap_val`: queue size of the CPU's kthread and an optional XDP program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpumapVal {
    pub qsize: u32,
    /// Id of the program (0: none).
    pub prog_id: u32,
}

/// Largest cpumap queue size the kernel accepts.
pub const CPUMAP_MAX_QSIZE: u32 = 16 * 1024;

/// Parse a devmap/cpumap value (4 or 8 bytes): the first field and the program field, the
/// latter 0 when absent or not a positive fd/id.
pub(crate) fn parse_pair(value: &[u8]) -> (u32, u32, i32) {
    let first = u32::from_ne_bytes(value[0..4].try_into().unwrap_or([0; 4]));
    let fd = if value.len() >= 8 {
        i32::from_ne_bytes(value[4..8].try_into().unwrap_or([0; 4]))
    } else {
        0
    };
    (first, fd.max(0) as u32, fd)
}

/// A devmap or cpumap.
pub struct DevArray {
    c: Common,
    /// Values (8-byte stride); a slot is meaningful only while `present`.
    arena: Arena,
    present: Box<[AtomicBool]>,
    /// Serialises writers (readers use `present` with acquire/release).
    writer: Mutex<()>,
}

impl DevArray {
    pub(crate) fn new(attr: &MapAttr, ncpus: usize) -> Result<DevArray, MapError> {
        let c = Common::new(attr, ncpus);
        crate::create::check_budget(&c, 9 * attr.max_entries as u64)?;
        let arena = crate::create::alloc_arena(&c, 8 * attr.max_entries as u64)?;
        Ok(DevArray {
            c,
            arena,
            present: (0..attr.max_entries)
                .map(|_| AtomicBool::new(false))
                .collect(),
            writer: Mutex::new(()),
        })
    }

    fn is_cpumap(&self) -> bool {
        self.c.attr.map_type == MapType::Cpumap
    }

    fn pair(&self, index: u32) -> Option<(u32, u32)> {
        if !self.present.get(index as usize)?.load(Ordering::Acquire) {
            return None;
        }
        let mut v = [0u8; 8];
        // SAFETY: index < max_entries (present exists), 8-byte aligned slot.
        unsafe { mem::copy_out(self.arena.at(index as usize * 8), &mut v) };
        Some((
            u32::from_ne_bytes(v[0..4].try_into().unwrap_or([0; 4])),
            u32::from_ne_bytes(v[4..8].try_into().unwrap_or([0; 4])),
        ))
    }

    fn set(&self, index: u32, entry: Option<(u32, u32)>) {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &self.present[index as usize];
        match entry {
            None => slot.store(false, Ordering::Release),
            Some((a, b)) => {
                let mut v = [0u8; 8];
                v[0..4].copy_from_slice(&a.to_ne_bytes());
                v[4..8].copy_from_slice(&b.to_ne_bytes());
                // The 8-byte entry goes in with one atomic store (copy_in on an aligned word),
                // so a concurrent reader sees the old or the new entry, never a mix and never
                // a spurious miss (the kernel swaps a pointer for the same effect).
                // SAFETY: index < max_entries, 8-byte aligned slot.
                unsafe { mem::copy_in(self.arena.at(index as usize * 8), &v) };
                slot.store(true, Ordering::Release);
            }
        }
    }
}

impl MapOps for DevArray {
    fn attr(&self) -> &MapAttr {
        &self.c.attr
    }

    fn ncpus(&self) -> usize {
        self.c.ncpus
    }

    fn lookup(&self, key: &[u8], _cpu: usize) -> Option<*mut u8> {
        let index = index_key(key)?;
        if !self.present.get(index as usize)?.load(Ordering::Acquire) {
            return None;
        }
        Some(self.arena.at(index as usize * 8))
    }

    fn update(&self, _key: &[u8], _value: &[u8], _flags: u64, _cpu: usize) -> Result<(), MapError> {
        Err(self.not_supported("update from a program"))
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.c.check_key(key)?;
        let index = index_key(key).unwrap_or(u32::MAX);
        if index >= self.c.attr.max_entries {
            return Err(self.c.invalid(format!(
                "index {index} out of range (max_entries {})",
                self.c.attr.max_entries
            )));
        }
        // Deleting an empty slot succeeds, as in the kernel (an xchg with NULL).
        self.set(index, None);
        Ok(())
    }

    fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), MapError> {
        array_next_key(&self.c, key, next)
    }

    fn lookup_user(&self, key: &[u8], out: &mut [u8], flags: u64) -> Result<(), MapError> {
        self.c.check_user_read()?;
        self.c.check_lookup_flags(flags)?;
        self.c.check_key(key)?;
        self.c.check_user_value(out.len())?;
        let index = index_key(key).unwrap_or(u32::MAX);
        let (a, b) = self.pair(index).ok_or_else(|| self.c.not_found())?;
        out[0..4].copy_from_slice(&a.to_ne_bytes());
        if out.len() >= 8 {
            out[4..8].copy_from_slice(&b.to_ne_bytes());
        }
        Ok(())
    }

    fn update_user(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        self.c.check_user_write()?;
        self.c.check_key(key)?;
        self.c.check_user_value(value.len())?;
        let index = index_key(key).unwrap_or(u32::MAX);
        if flags > BPF_EXIST {
            return Err(self.c.invalid(format!("invalid update flags {flags:#x}")));
        }
        if index >= self.c.attr.max_entries {
            return Err(self.c.too_big(format!(
                "index {index} out of range (max_entries {})",
                self.c.attr.max_entries
            )));
        }
        if flags == BPF_NOEXIST {
            return Err(self.c.exists());
        }
        let (first, prog, raw_fd) = parse_pair(value);
        if self.is_cpumap() {
            if first > CPUMAP_MAX_QSIZE {
                return Err(MapError::Overflow {
                    map: self.c.label(),
                    reason: format!("qsize {first} exceeds {CPUMAP_MAX_QSIZE}"),
                });
            }
            if index as usize >= self.c.ncpus {
                return Err(MapError::NoDevice {
                    map: self.c.label(),
                    reason: format!("cpu {index} is not a possible CPU ({} CPUs)", self.c.ncpus),
                });
            }
        }
        if first == 0 {
            // ifindex 0 / qsize 0 clears the slot; a program with it makes no sense.
            if raw_fd > 0 {
                return Err(self.c.invalid("a program fd given for an empty entry"));
            }
            self.set(index, None);
        } else {
            self.set(index, Some((first, prog)));
        }
        Ok(())
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
        vec![ValueRegion {
            base: self.arena.base(),
            stride: 8,
            count: self.c.attr.max_entries as usize,
            value_size: self.c.value_size(),
            writable_by_prog: false,
        }]
    }

    fn memory_usage(&self) -> u64 {
        use crate::create::{SIZEOF_BPF_CPU_MAP, SIZEOF_BPF_DTAB, SIZEOF_BPF_DTAB_NETDEV};
        let n = self.c.attr.max_entries as u64;
        if self.is_cpumap() {
            SIZEOF_BPF_CPU_MAP + 8 * n
        } else {
            let items = self
                .present
                .iter()
                .filter(|p| p.load(Ordering::Relaxed))
                .count() as u64;
            SIZEOF_BPF_DTAB + 8 * n + items * SIZEOF_BPF_DTAB_NETDEV
        }
    }

    fn entries(&self) -> u64 {
        self.c.attr.max_entries as u64
    }

    fn devmap_entry(&self, key: u32) -> Option<DevmapVal> {
        if self.is_cpumap() {
            return None;
        }
        self.pair(key)
            .map(|(ifindex, prog_id)| DevmapVal { ifindex, prog_id })
    }

    fn cpumap_entry(&self, key: u32) -> Option<CpumapVal> {
        if !self.is_cpumap() {
            return None;
        }
        self.pair(key)
            .map(|(qsize, prog_id)| CpumapVal { qsize, prog_id })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
