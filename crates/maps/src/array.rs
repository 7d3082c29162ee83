//! `BPF_MAP_TYPE_ARRAY` and `BPF_MAP_TYPE_PERCPU_ARRAY` (kernel `arraymap.c`).
//!
//! Values are preallocated and zero-initialised; the key is a native-endian `u32` index.
//! Elements cannot be deleted (`EINVAL`).

use std::any::Any;
use std::ops::ControlFlow;

use crate::error::MapError;
use crate::mem::{self, round8, Arena};
use crate::ops::{Common, ForEachCallback, GenLookup, MapOps, ValueRegion};
use crate::types::*;

/// Read a `u32` index key (native endian, like the kernel's `*(u32 *)key`).
#[inline]
pub(crate) fn index_key(key: &[u8]) -> Option<u32> {
    let b: [u8; 4] = key.try_into().ok()?;
    Some(u32::from_ne_bytes(b))
}

/// `get_next_key` for every array-like map: a missing key or one past the end gives index 0,
/// the last index gives `ENOENT`.
pub(crate) fn array_next_key(
    c: &Common,
    key: Option<&[u8]>,
    next: &mut [u8],
) -> Result<(), MapError> {
    c.check_user_read()?;
    if next.len() != 4 {
        return Err(c.invalid(format!(
            "next key buffer is {} bytes, expected 4",
            next.len()
        )));
    }
    let index = match key {
        None => u32::MAX,
        Some(k) => {
            c.check_key(k)?;
            index_key(k).unwrap_or(u32::MAX)
        }
    };
    let max = c.attr.max_entries;
    let n = if index >= max {
        0
    } else if index == max - 1 {
        return Err(c.not_found());
    } else {
        index + 1
    };
    next.copy_from_slice(&n.to_ne_bytes());
    Ok(())
}

/// An array or per-CPU array map.
pub struct ArrayMap {
    c: Common,
    arena: Arena,
    /// `round_up(value_size, 8)`: distance between values.
    vstride: usize,
    percpu: bool,
    /// The provider's id of the file the values live in.
    file_id: Option<u64>,
}

impl ArrayMap {
    pub(crate) fn new(attr: &MapAttr, ncpus: usize) -> Result<ArrayMap, MapError> {
        let c = Common::new(attr, ncpus);
        let percpu = attr.map_type == MapType::PercpuArray;
        let vstride = round8(attr.value_size as usize);
        let copies = if percpu { ncpus } else { 1 };
        let bytes = (attr.max_entries as u64)
            .saturating_mul(vstride as u64)
            .saturating_mul(copies as u64);
        let (arena, file_id) = match crate::backing::value_file(attr, bytes) {
            None => (crate::create::alloc_arena(&c, bytes)?, None),
            Some(r) => {
                let storage = |e: std::io::Error| MapError::Storage {
                    map: c.label(),
                    reason: e.to_string(),
                    errno: e.raw_os_error().unwrap_or(crate::error::ENOMEM),
                };
                let vf = r.map_err(storage)?;
                crate::create::check_budget(&c, bytes)?;
                let n = usize::try_from(bytes).map_err(|_| MapError::NoMemory {
                    map: c.label(),
                    bytes,
                })?;
                (Arena::from_file(&vf.file, n).map_err(storage)?, Some(vf.id))
            }
        };
        Ok(ArrayMap {
            c,
            arena,
            vstride,
            percpu,
            file_id,
        })
    }

    #[inline]
    fn ptr(&self, index: u32, cpu: usize) -> *mut u8 {
        let slot = if self.percpu {
            index as usize * self.c.ncpus + cpu
        } else {
            index as usize
        };
        self.arena.at(slot * self.vstride)
    }

    fn index(&self, key: &[u8]) -> Result<u32, MapError> {
        self.c.check_key(key)?;
        index_key(key).ok_or_else(|| self.c.invalid("bad key"))
    }

    /// Flags check of `array_map_update_elem` / `bpf_percpu_array_update`, in the kernel's
    /// order: unknown flags, index range, `BPF_NOEXIST`, `BPF_F_LOCK` without a spin lock.
    fn check_update(&self, index: u32, flags: u64) -> Result<(), MapError> {
        let allowed = if self.percpu {
            BPF_NOEXIST | BPF_EXIST
        } else {
            BPF_NOEXIST | BPF_EXIST | BPF_F_LOCK
        };
        if (flags & !BPF_F_LOCK) > BPF_EXIST || (flags & !allowed) != 0 {
            return Err(self.c.invalid(format!("invalid update flags {flags:#x}")));
        }
        if index >= self.c.attr.max_entries {
            return Err(self.c.too_big(format!(
                "index {index} out of range (max_entries {})",
                self.c.attr.max_entries
            )));
        }
        if flags & BPF_NOEXIST != 0 {
            return Err(self.c.exists());
        }
        self.c.check_update_flags(flags)
    }
}

impl MapOps for ArrayMap {
    fn attr(&self) -> &MapAttr {
        &self.c.attr
    }

    fn ncpus(&self) -> usize {
        self.c.ncpus
    }

    #[inline]
    fn lookup(&self, key: &[u8], cpu: usize) -> Option<*mut u8> {
        let index = index_key(key)?;
        if index >= self.c.attr.max_entries || (self.percpu && cpu >= self.c.ncpus) {
            return None;
        }
        Some(self.ptr(index, cpu))
    }

    fn update(&self, key: &[u8], value: &[u8], flags: u64, cpu: usize) -> Result<(), MapError> {
        self.c.check_prog_write()?;
        let index = self.index(key)?;
        self.c.check_value(value)?;
        self.check_update(index, flags)?;
        let cpu = if self.percpu {
            self.c.check_cpu(cpu)?;
            cpu
        } else {
            0
        };
        // SAFETY: the slot is in bounds, 8-byte aligned and value_size bytes long.
        unsafe {
            mem::copy_value_in(
                self.ptr(index, cpu),
                value,
                self.c.lock_off(),
                flags & BPF_F_LOCK != 0,
            )
        };
        Ok(())
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        let _ = key;
        Err(self.c.invalid("array elements cannot be deleted"))
    }

    fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), MapError> {
        array_next_key(&self.c, key, next)
    }

    fn lookup_user(&self, key: &[u8], out: &mut [u8], flags: u64) -> Result<(), MapError> {
        self.c.check_user_read()?;
        self.c.check_lookup_flags(flags)?;
        let index = self.index(key)?;
        self.c.check_user_value(out.len())?;
        if index >= self.c.attr.max_entries {
            return Err(self.c.not_found());
        }
        let vs = self.c.value_size();
        if self.percpu {
            for cpu in 0..self.c.ncpus {
                let chunk = &mut out[cpu * self.vstride..(cpu + 1) * self.vstride];
                // SAFETY: in-bounds aligned slot of value_size bytes.
                unsafe { mem::copy_out(self.ptr(index, cpu), &mut chunk[..vs]) };
                chunk[vs..].fill(0);
            }
        } else {
            // SAFETY: in-bounds aligned slot of value_size bytes.
            unsafe {
                mem::copy_value_out(
                    self.ptr(index, 0),
                    out,
                    self.c.lock_off(),
                    flags & BPF_F_LOCK != 0,
                )
            };
        }
        Ok(())
    }

    fn update_user(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        self.c.check_user_write()?;
        let index = self.index(key)?;
        self.c.check_user_value(value.len())?;
        self.check_update(index, flags)?;
        let vs = self.c.value_size();
        if self.percpu {
            for cpu in 0..self.c.ncpus {
                let chunk = &value[cpu * self.vstride..cpu * self.vstride + vs];
                // SAFETY: in-bounds aligned slot of value_size bytes.
                unsafe { mem::copy_in(self.ptr(index, cpu), chunk) };
            }
        } else {
            // SAFETY: in-bounds aligned slot of value_size bytes.
            unsafe {
                mem::copy_value_in(
                    self.ptr(index, 0),
                    value,
                    self.c.lock_off(),
                    flags & BPF_F_LOCK != 0,
                )
            };
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

    fn for_each(&self, cpu: usize, cb: &mut ForEachCallback<'_>) -> Result<u32, MapError> {
        let cpu = if self.percpu {
            self.c.check_cpu(cpu)?;
            cpu
        } else {
            0
        };
        let mut n = 0;
        for index in 0..self.c.attr.max_entries {
            n += 1;
            if let ControlFlow::Break(()) = cb(&index.to_ne_bytes(), self.ptr(index, cpu)) {
                break;
            }
        }
        Ok(n)
    }

    fn value_regions(&self) -> Vec<ValueRegion> {
        let copies = if self.percpu { self.c.ncpus } else { 1 };
        vec![ValueRegion {
            base: self.arena.base(),
            stride: self.vstride,
            count: self.c.attr.max_entries as usize * copies,
            value_size: self.c.value_size(),
            writable_by_prog: self.c.prog_writable(),
        }]
    }

    fn memory_usage(&self) -> u64 {
        use crate::create::{PAGE_SIZE, SIZEOF_BPF_ARRAY};
        let n = self.c.attr.max_entries as u64;
        let elems = n * self.vstride as u64;
        if self.percpu {
            SIZEOF_BPF_ARRAY + 8 * n + elems * self.c.ncpus as u64
        } else if self.c.flags() & BPF_F_MMAPABLE != 0 {
            let page_align = |x: u64| x.div_ceil(PAGE_SIZE as u64) * PAGE_SIZE as u64;
            page_align(SIZEOF_BPF_ARRAY) + page_align(elems)
        } else {
            SIZEOF_BPF_ARRAY + elems
        }
    }

    fn entries(&self) -> u64 {
        self.c.attr.max_entries as u64
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn gen_lookup(&self) -> Option<GenLookup> {
        let values = self.arena.base();
        let max_entries = self.c.attr.max_entries;
        if max_entries == 0 {
            return None;
        }
        let stride = u32::try_from(self.vstride).ok()?;
        Some(if self.percpu {
            GenLookup::PercpuArray {
                values,
                max_entries,
                stride,
                ncpus: u32::try_from(self.c.ncpus).ok()?,
            }
        } else {
            GenLookup::Array {
                values,
                max_entries,
                stride,
            }
        })
    }

    fn direct_value_addr(&self, off: u32) -> Option<u64> {
        // Element 0's value: the one value of a global-data map.
        if self.percpu || off >= self.c.attr.value_size || self.c.attr.max_entries == 0 {
            return None;
        }
        Some(self.ptr(0, 0) as u64 + u64::from(off))
    }

    fn value_file(&self) -> Option<u64> {
        self.file_id
    }
}
