//! Maps whose values user space gives as file descriptors: `BPF_MAP_TYPE_PROG_ARRAY` and
//! `BPF_MAP_TYPE_ARRAY_OF_MAPS` (kernel `arraymap.c`, `map_in_map.c`).
//!
//! The runtime resolves the fd in the user's value to an object and its id and calls
//! [`MapOps::update_fd`]; user-space lookups return the id, as the kernel's do.

use std::any::Any;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use crate::array::{array_next_key, index_key};
use crate::error::MapError;
use crate::mem::Arena;
use crate::ops::{Common, FdObject, MapOps, ValueRegion};
use crate::types::*;

/// A program stored in a `prog_array` slot.
pub type ProgObject = Arc<dyn Any + Send + Sync>;

/// An inner map and its id.
type InnerSlot = Option<(u32, Arc<dyn MapOps>)>;

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// Index of an fd-array key, with the `E2BIG` the kernel gives for updates/deletes past the end.
fn fd_index(c: &Common, key: &[u8]) -> Result<u32, MapError> {
    c.check_key(key)?;
    let index = index_key(key).ok_or_else(|| c.invalid("bad key"))?;
    if index >= c.attr.max_entries {
        return Err(c.too_big(format!(
            "index {index} out of range (max_entries {})",
            c.attr.max_entries
        )));
    }
    Ok(index)
}

/// `BPF_MAP_TYPE_PROG_ARRAY`: the jump table of `bpf_tail_call`.
///
/// Slots hold a program object and its id. As in the kernel, the runtime should call
/// [`clear`](ProgArray::clear) when the last user-space reference to the map goes away.
pub struct ProgArray {
    c: Common,
    slots: RwLock<Vec<Option<(u32, ProgObject)>>>,
}

impl ProgArray {
    pub(crate) fn new(attr: &MapAttr, ncpus: usize) -> Result<ProgArray, MapError> {
        let c = Common::new(attr, ncpus);
        let slot = std::mem::size_of::<Option<(u32, ProgObject)>>() as u64;
        crate::create::check_budget(&c, attr.max_entries as u64 * slot)?;
        Ok(ProgArray {
            c,
            slots: RwLock::new(vec![None; attr.max_entries as usize]),
        })
    }

    /// The program at `index`, for `bpf_tail_call` (None: the tail call falls through).
    #[inline]
    pub fn get(&self, index: u32) -> Option<ProgObject> {
        read_lock(&self.slots)
            .get(index as usize)
            .and_then(|s| s.as_ref().map(|(_, p)| Arc::clone(p)))
    }

    /// The id of the program at `index`.
    pub fn get_id(&self, index: u32) -> Option<u32> {
        read_lock(&self.slots)
            .get(index as usize)
            .and_then(|s| s.as_ref().map(|(id, _)| *id))
    }

    /// Empty every slot (the kernel does this when the last user-space reference goes).
    pub fn clear(&self) {
        write_lock(&self.slots).iter_mut().for_each(|s| *s = None);
    }
}

impl MapOps for ProgArray {
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
        let index = fd_index(&self.c, key)?;
        match write_lock(&self.slots)[index as usize].take() {
            Some(_) => Ok(()),
            None => Err(self.c.not_found()),
        }
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
        match self.get_id(index) {
            Some(id) => {
                out.copy_from_slice(&id.to_ne_bytes());
                Ok(())
            }
            None => Err(self.c.not_found()),
        }
    }

    fn update_user(&self, _key: &[u8], _value: &[u8], _flags: u64) -> Result<(), MapError> {
        Err(self.c.invalid(
            "prog_array values are program fds: the runtime must resolve them and call update_fd",
        ))
    }

    fn update_fd(&self, key: &[u8], id: u32, obj: FdObject, flags: u64) -> Result<(), MapError> {
        self.c.check_user_write()?;
        if flags != BPF_ANY {
            return Err(self.c.invalid(format!(
                "prog_array updates take BPF_ANY only, got {flags:#x}"
            )));
        }
        let index = fd_index(&self.c, key)?;
        let FdObject::Prog(prog) = obj else {
            return Err(self.c.invalid("value is not a program"));
        };
        write_lock(&self.slots)[index as usize] = Some((id, prog));
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

    fn as_prog_array(&self) -> Option<&ProgArray> {
        Some(self)
    }
}

/// Check that `inner` may be stored in a map of maps created with `template`
/// (`bpf_map_meta_equal`: same type, key and value size, flags; same max_entries unless the
/// template has `BPF_F_INNER_MAP`; no nesting).
pub(crate) fn check_inner(c: &Common, inner: &dyn MapOps) -> Result<(), MapError> {
    let Some(t) = c.attr.inner.as_ref().map(|t| t.attr()) else {
        return Err(c.invalid("map of maps without an inner map template"));
    };
    let a = inner.attr();
    if a.map_type.is_map_in_map() {
        return Err(c.invalid("an inner map cannot itself be a map of maps"));
    }
    let mut diffs = Vec::new();
    if a.map_type != t.map_type {
        diffs.push(format!("type {} (template {})", a.map_type, t.map_type));
    }
    if a.key_size != t.key_size {
        diffs.push(format!("key_size {} (template {})", a.key_size, t.key_size));
    }
    if a.value_size != t.value_size {
        diffs.push(format!(
            "value_size {} (template {})",
            a.value_size, t.value_size
        ));
    }
    if a.map_flags != t.map_flags {
        diffs.push(format!(
            "map_flags {:#x} (template {:#x})",
            a.map_flags, t.map_flags
        ));
    }
    if a.max_entries != t.max_entries && t.map_flags & BPF_F_INNER_MAP == 0 {
        diffs.push(format!(
            "max_entries {} (template {})",
            a.max_entries, t.max_entries
        ));
    }
    if !diffs.is_empty() {
        return Err(c.invalid(format!(
            "inner {} does not match the template: {}",
            a.label(),
            diffs.join(", ")
        )));
    }
    Ok(())
}

/// `BPF_MAP_TYPE_ARRAY_OF_MAPS`: an array whose values are maps.
///
/// A program-side lookup returns a pointer to a read-only `u32` holding the inner map's id
/// (0 = empty); the runtime resolves it, or calls [`MapOps::lookup_inner`].
pub struct ArrayOfMaps {
    c: Common,
    slots: RwLock<Vec<InnerSlot>>,
    /// One 8-byte slot per index holding the inner map id, so lookups need no lock.
    ids: Arena,
}

impl ArrayOfMaps {
    pub(crate) fn new(attr: &MapAttr, ncpus: usize) -> Result<ArrayOfMaps, MapError> {
        let c = Common::new(attr, ncpus);
        let slot = std::mem::size_of::<InnerSlot>() as u64 + 8;
        crate::create::check_budget(&c, attr.max_entries as u64 * slot)?;
        let ids = crate::create::alloc_arena(&c, 8 * attr.max_entries as u64)?;
        Ok(ArrayOfMaps {
            c,
            slots: RwLock::new(vec![None; attr.max_entries as usize]),
            ids,
        })
    }

    fn id_slot(&self, index: u32) -> &AtomicU32 {
        // SAFETY: callers check index < max_entries; slots are 8-byte aligned and live as
        // long as self.
        unsafe { AtomicU32::from_ptr(self.ids.at(index as usize * 8).cast()) }
    }
}

impl MapOps for ArrayOfMaps {
    fn attr(&self) -> &MapAttr {
        &self.c.attr
    }

    fn ncpus(&self) -> usize {
        self.c.ncpus
    }

    fn lookup(&self, key: &[u8], _cpu: usize) -> Option<*mut u8> {
        let index = index_key(key)?;
        if index >= self.c.attr.max_entries || self.id_slot(index).load(Ordering::Acquire) == 0 {
            return None;
        }
        Some(self.ids.at(index as usize * 8))
    }

    fn lookup_inner(&self, key: &[u8]) -> Option<Arc<dyn MapOps>> {
        let index = index_key(key)?;
        read_lock(&self.slots)
            .get(index as usize)
            .and_then(|s| s.as_ref().map(|(_, m)| Arc::clone(m)))
    }

    fn update(&self, _key: &[u8], _value: &[u8], _flags: u64, _cpu: usize) -> Result<(), MapError> {
        Err(self.not_supported("update from a program"))
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        let index = fd_index(&self.c, key)?;
        let mut slots = write_lock(&self.slots);
        match slots[index as usize].take() {
            Some(_) => {
                self.id_slot(index).store(0, Ordering::Release);
                Ok(())
            }
            None => Err(self.c.not_found()),
        }
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
        let slots = read_lock(&self.slots);
        match slots.get(index as usize).and_then(|s| s.as_ref()) {
            Some((id, _)) => {
                out.copy_from_slice(&id.to_ne_bytes());
                Ok(())
            }
            None => Err(self.c.not_found()),
        }
    }

    fn update_user(&self, _key: &[u8], _value: &[u8], _flags: u64) -> Result<(), MapError> {
        Err(self.c.invalid(
            "array_of_maps values are map fds: the runtime must resolve them and call update_fd",
        ))
    }

    fn update_fd(&self, key: &[u8], id: u32, obj: FdObject, flags: u64) -> Result<(), MapError> {
        self.c.check_user_write()?;
        // Like every fd array, only BPF_ANY (bpf_fd_array_map_update_elem).
        if flags != BPF_ANY {
            return Err(self.c.invalid(format!(
                "array_of_maps updates take BPF_ANY only, got {flags:#x}"
            )));
        }
        let index = fd_index(&self.c, key)?;
        let FdObject::Map(inner) = obj else {
            return Err(self.c.invalid("value is not a map"));
        };
        check_inner(&self.c, inner.as_ref())?;
        if id == 0 {
            return Err(self.c.invalid("inner map id 0 is not a valid id"));
        }
        let mut slots = write_lock(&self.slots);
        slots[index as usize] = Some((id, inner));
        self.id_slot(index).store(id, Ordering::Release);
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
            base: self.ids.base(),
            stride: 8,
            count: self.c.attr.max_entries as usize,
            value_size: 4,
            writable_by_prog: false,
        }]
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
}
