//! `trait MapOps` (the kernel's `struct bpf_map_ops`) and what every map shares.

use std::any::Any;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::MapError;
use crate::types::*;

/// A block of value memory that programs may access through pointers from `lookup`.
///
/// A pointer `p` is valid for an access `[p, p + n)` iff `base <= p < base + stride * count`
/// and `(p - base) % stride + n <= value_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueRegion {
    pub base: *mut u8,
    /// Distance between consecutive values (a multiple of 8).
    pub stride: usize,
    /// Number of values.
    pub count: usize,
    /// Bytes of each value that may be accessed.
    pub value_size: usize,
    /// False for `BPF_F_RDONLY_PROG` maps and maps whose values programs only read
    /// (devmap, cpumap, maps of maps).
    pub writable_by_prog: bool,
}

// SAFETY: a region only describes addresses; nothing dereferences through it.
unsafe impl Send for ValueRegion {}
// SAFETY: as above.
unsafe impl Sync for ValueRegion {}

impl ValueRegion {
    /// Whether `[p, p + n)` is a valid access into this region.
    pub fn contains(&self, p: usize, n: usize) -> bool {
        let base = self.base as usize;
        if p < base || self.stride == 0 {
            return false;
        }
        let off = p - base;
        off / self.stride < self.count && off % self.stride + n <= self.value_size
    }
}

/// How a program's `bpf_map_lookup_elem` on one map may run without the
/// helper call, as the map proposes it (the kernel's `map_gen_lookup`): the
/// runtime hands this to the JIT and the interpreter. Every form gives exactly
/// what [`MapOps::lookup`] gives for the same key.
#[derive(Clone, Copy, Debug)]
pub enum GenLookup {
    /// Values in one block, as the kernel's `array_map_gen_lookup` inlines:
    /// the value of `key = *(u32 *)key_ptr` is at `values + key * stride`
    /// when `key < max_entries`, else NULL.
    Array {
        /// Address of element 0's value.
        values: *mut u8,
        /// Number of elements.
        max_entries: u32,
        /// Distance between two values (`round_up(value_size, 8)`).
        stride: u32,
    },
    /// Per-CPU values laid out CPU-major within an element, as the kernel's
    /// `percpu_array_map_gen_lookup` inlines: `values + (key * ncpus + cpu) *
    /// stride` for the run's CPU, NULL when `key >= max_entries`.
    PercpuArray {
        /// Address of element 0's value for CPU 0.
        values: *mut u8,
        /// Number of elements.
        max_entries: u32,
        /// Distance between two values (`round_up(value_size, 8)`).
        stride: u32,
        /// Values per element.
        ncpus: u32,
    },
    /// A direct call `f(obj, key_ptr)` returning the value's address or 0. `obj`
    /// points into the map and stays valid while the map lives; `f` does not
    /// unwind.
    Call {
        /// The lookup function.
        f: unsafe extern "sysv64" fn(obj: u64, key: u64) -> u64,
        /// Its first argument.
        obj: u64,
    },
    /// A direct call of this map's own [`MapOps::lookup`] with CPU 0 (maps whose
    /// program-side lookup does not depend on the CPU), without the helper
    /// trampoline.
    Lookup,
}

/// An object stored in an fd-array/fd-hash slot from user space: a program for `prog_array`,
/// a map for the maps of maps.
#[derive(Clone)]
pub enum FdObject {
    /// A loaded program, as the runtime represents it (downcast it back with `Any`).
    Prog(Arc<dyn Any + Send + Sync>),
    /// A map (the inner map of an `array_of_maps`/`hash_of_maps`).
    Map(Arc<dyn MapOps>),
}

/// Callback of [`MapOps::for_each`]: key and pointer to the value (the current CPU's for
/// per-CPU maps). `ControlFlow::Break` stops the walk (the BPF callback returning 1).
pub type ForEachCallback<'a> = dyn FnMut(&[u8], *mut u8) -> ControlFlow<()> + 'a;

/// The operations of a map (`struct bpf_map_ops`). Implementations are `Send + Sync`: helpers
/// called from programs on several threads, the CLI and library users may call them at once.
///
/// Program-side operations (`lookup`, `update`, `delete`, `for_each`, push/pop/peek) take one
/// value and, for per-CPU maps, the current CPU index. User-space operations (`*_user`,
/// `lookup_and_delete`, `get_next_key`) see all CPUs' values concatenated, each rounded up to
/// 8 bytes, and obey `BPF_F_RDONLY`/`BPF_F_WRONLY` and `freeze`.
pub trait MapOps: Send + Sync + Any {
    /// The attributes the map was created with.
    fn attr(&self) -> &MapAttr;

    /// The number of simulated CPUs (per-CPU maps keep this many values per element).
    fn ncpus(&self) -> usize;

    /// The map type.
    fn map_type(&self) -> MapType {
        self.attr().map_type
    }

    /// A label for messages, e.g. `hash map "counts"`.
    fn label(&self) -> String {
        self.attr().label()
    }

    /// Size of the value buffer user space passes to `lookup_user`/`update_user`: `value_size`,
    /// or `ncpus * round_up(value_size, 8)` for per-CPU maps.
    fn user_value_size(&self) -> usize {
        let vs = self.attr().value_size as usize;
        if self.map_type().is_percpu() {
            self.ncpus() * ((vs + 7) & !7)
        } else {
            vs
        }
    }

    /// Program-side `bpf_map_lookup_elem`: a pointer to the value (for `cpu` on per-CPU maps),
    /// valid for as long as the map lives, or None. Maps of maps return a pointer to the slot
    /// holding the inner map's id (see [`lookup_inner`](Self::lookup_inner)).
    fn lookup(&self, key: &[u8], cpu: usize) -> Option<*mut u8>;

    /// Program-side `bpf_map_update_elem` with one value (written to `cpu`'s slot on per-CPU
    /// maps; a new per-CPU element has the other CPUs' values zeroed).
    fn update(&self, key: &[u8], value: &[u8], flags: u64, cpu: usize) -> Result<(), MapError>;

    /// Program-side `bpf_map_delete_elem`.
    fn delete(&self, key: &[u8]) -> Result<(), MapError>;

    /// `BPF_MAP_GET_NEXT_KEY`: write the key after `key` (or the first key when `key` is None
    /// or, for hashes, not in the map) into `next`. `ENOENT` after the last key.
    fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), MapError>;

    /// `BPF_MAP_LOOKUP_ELEM` from user space: copy the value (all CPUs' for per-CPU maps) into
    /// `out`, which must be `user_value_size()` bytes. `flags` may be `BPF_F_LOCK`.
    /// Queue and stack maps peek (key empty).
    fn lookup_user(&self, key: &[u8], out: &mut [u8], flags: u64) -> Result<(), MapError>;

    /// `BPF_MAP_UPDATE_ELEM` from user space (`user_value_size()` bytes). Queue and stack maps
    /// push (key empty). Fd maps (prog_array, maps of maps) need [`update_fd`](Self::update_fd).
    fn update_user(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError>;

    /// `BPF_MAP_DELETE_ELEM` from user space.
    fn delete_user(&self, key: &[u8]) -> Result<(), MapError>;

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`: pop for queue/stack (key None), lookup then delete
    /// for hashes.
    fn lookup_and_delete(
        &self,
        key: Option<&[u8]>,
        out: &mut [u8],
        flags: u64,
    ) -> Result<(), MapError> {
        let _ = (key, out, flags);
        Err(self.not_supported("lookup_and_delete"))
    }

    /// `bpf_map_push_elem` (queue/stack). `BPF_EXIST` replaces the oldest value when full.
    fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        let _ = (value, flags);
        Err(self.not_supported("push"))
    }

    /// `bpf_map_pop_elem` (queue/stack).
    fn pop(&self, out: &mut [u8]) -> Result<(), MapError> {
        let _ = out;
        Err(self.not_supported("pop"))
    }

    /// `bpf_map_peek_elem` (queue/stack).
    fn peek(&self, out: &mut [u8]) -> Result<(), MapError> {
        let _ = out;
        Err(self.not_supported("peek"))
    }

    /// Store a program or inner map from user space (the runtime resolved the fd in the value
    /// to `id` and `obj`). prog_array, array_of_maps and hash_of_maps only.
    fn update_fd(&self, key: &[u8], id: u32, obj: FdObject, flags: u64) -> Result<(), MapError> {
        let _ = (key, id, obj, flags);
        Err(self.not_supported("update_fd"))
    }

    /// The inner map at `key` (maps of maps only).
    fn lookup_inner(&self, key: &[u8]) -> Option<Arc<dyn MapOps>> {
        let _ = key;
        None
    }

    /// `BPF_MAP_FREEZE`: from now on user space cannot write (`EPERM`). Freezing again, or
    /// freezing a `BPF_F_RDONLY` map, gives `EPERM` (what the kernel returns in both cases).
    fn freeze(&self) -> Result<(), MapError>;

    /// Whether `freeze` was called.
    fn is_frozen(&self) -> bool;

    /// `bpf_for_each_map_elem`: call `cb` for each element, in `get_next_key` order; returns
    /// how many times `cb` was called. No lock is held while `cb` runs, so it may update or
    /// delete elements.
    fn for_each(&self, cpu: usize, cb: &mut ForEachCallback<'_>) -> Result<u32, MapError> {
        let _ = (cpu, cb);
        Err(self.not_supported("for_each"))
    }

    /// Where value memory lives, for the checked interpreter.
    fn value_regions(&self) -> Vec<ValueRegion>;

    /// The id of the file the values live in, when a provider gave one
    /// ([`crate::with_value_files`]).
    fn value_file(&self) -> Option<u64> {
        None
    }

    /// A queue's or stack's values, oldest first: pushing them in this order
    /// into an empty map of the same kind rebuilds it (for saving the map
    /// without popping it). `None` for maps with keys.
    fn pushed_values(&self) -> Option<Vec<Vec<u8>>> {
        None
    }

    /// Bytes of memory the map holds (`bytes_memlock`).
    fn memory_usage(&self) -> u64;

    /// Number of elements in the map (`max_entries` for arrays).
    fn entries(&self) -> u64;

    /// The map as `Any`, to downcast to its concrete type ([`RingBuf`](crate::RingBuf),
    /// [`ProgArray`](crate::ProgArray), ...).
    fn as_any(&self) -> &dyn Any;

    /// The redirect target at `key`, for devmap and devmap_hash (`bpf_redirect_map`).
    fn devmap_entry(&self, key: u32) -> Option<crate::DevmapVal> {
        let _ = key;
        None
    }

    /// The CPU entry at `key`, for cpumap (`bpf_redirect_map`).
    fn cpumap_entry(&self, key: u32) -> Option<crate::CpumapVal> {
        let _ = key;
        None
    }

    /// The ring buffer, for ringbuf maps.
    fn as_ringbuf(&self) -> Option<&crate::RingBuf> {
        None
    }

    /// The program array, for prog_array maps.
    fn as_prog_array(&self) -> Option<&crate::ProgArray> {
        None
    }

    /// The perf event array, for perf_event_array maps.
    fn as_perf_event_array(&self) -> Option<&crate::PerfEventArray> {
        None
    }

    /// How a program's lookup on this map may skip the helper call (the
    /// kernel's `map_gen_lookup`); `None`: through the helper.
    fn gen_lookup(&self) -> Option<GenLookup> {
        None
    }

    /// The address of byte `off` of the map's value for a direct value access
    /// (`LD_IMM64` with `BPF_PSEUDO_MAP_VALUE`, as `.data`/`.bss`/`.rodata`
    /// references use; the kernel's `map_direct_value_addr`); `None` when the
    /// map type has no such access or `off` is outside the value.
    fn direct_value_addr(&self, off: u32) -> Option<u64> {
        let _ = off;
        None
    }

    /// An `ENOTSUPP` error for `op` on this map.
    fn not_supported(&self, op: &'static str) -> MapError {
        MapError::NotSupported {
            map: self.label(),
            op,
        }
    }
}

/// State every map carries: attributes, CPU count, frozen flag.
pub(crate) struct Common {
    pub(crate) attr: MapAttr,
    pub(crate) ncpus: usize,
    frozen: AtomicBool,
}

impl Common {
    pub(crate) fn new(attr: &MapAttr, ncpus: usize) -> Common {
        Common {
            attr: attr.clone(),
            ncpus,
            frozen: AtomicBool::new(false),
        }
    }

    pub(crate) fn label(&self) -> String {
        self.attr.label()
    }

    pub(crate) fn key_size(&self) -> usize {
        self.attr.key_size as usize
    }

    pub(crate) fn value_size(&self) -> usize {
        self.attr.value_size as usize
    }

    pub(crate) fn flags(&self) -> u32 {
        self.attr.map_flags
    }

    pub(crate) fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Acquire)
    }

    pub(crate) fn freeze(&self) -> Result<(), MapError> {
        if self.attr.map_flags & BPF_F_RDONLY != 0 {
            return Err(self.perm("map is read-only for user space, freeze needs write access"));
        }
        // A frozen map has lost write permission, so freezing it again fails the kernel's
        // permission check (EPERM) before its "already frozen" check (EBUSY) is reached.
        if self.frozen.swap(true, Ordering::AcqRel) {
            return Err(self.perm("map is already frozen"));
        }
        Ok(())
    }

    /// User space writing: refused for frozen and `BPF_F_RDONLY` maps.
    pub(crate) fn check_user_write(&self) -> Result<(), MapError> {
        if self.attr.map_flags & BPF_F_RDONLY != 0 {
            return Err(self.perm("map is read-only for user space (BPF_F_RDONLY)"));
        }
        if self.is_frozen() {
            return Err(self.perm("map is frozen"));
        }
        Ok(())
    }

    /// User space reading: refused for `BPF_F_WRONLY` maps.
    pub(crate) fn check_user_read(&self) -> Result<(), MapError> {
        if self.attr.map_flags & BPF_F_WRONLY != 0 {
            return Err(self.perm("map is write-only for user space (BPF_F_WRONLY)"));
        }
        Ok(())
    }

    /// Program writing through a helper: refused for `BPF_F_RDONLY_PROG` maps.
    pub(crate) fn check_prog_write(&self) -> Result<(), MapError> {
        if self.attr.map_flags & BPF_F_RDONLY_PROG != 0 {
            return Err(self.perm("map is read-only for programs (BPF_F_RDONLY_PROG)"));
        }
        Ok(())
    }

    pub(crate) fn prog_writable(&self) -> bool {
        self.attr.map_flags & BPF_F_RDONLY_PROG == 0
    }

    pub(crate) fn perm(&self, reason: &str) -> MapError {
        MapError::PermissionDenied {
            map: self.label(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(&self, reason: impl Into<String>) -> MapError {
        MapError::Invalid {
            map: self.label(),
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found(&self) -> MapError {
        MapError::NotFound { map: self.label() }
    }

    pub(crate) fn exists(&self) -> MapError {
        MapError::Exists { map: self.label() }
    }

    pub(crate) fn too_big(&self, reason: impl Into<String>) -> MapError {
        MapError::TooBig {
            map: self.label(),
            reason: reason.into(),
        }
    }

    /// Check a key buffer's length.
    pub(crate) fn check_key(&self, key: &[u8]) -> Result<(), MapError> {
        if key.len() != self.key_size() {
            return Err(self.invalid(format!(
                "key is {} bytes, the map's key_size is {}",
                key.len(),
                self.key_size()
            )));
        }
        Ok(())
    }

    /// Check a program-side (single) value buffer's length.
    pub(crate) fn check_value(&self, value: &[u8]) -> Result<(), MapError> {
        if value.len() != self.value_size() {
            return Err(self.invalid(format!(
                "value is {} bytes, the map's value_size is {}",
                value.len(),
                self.value_size()
            )));
        }
        Ok(())
    }

    /// Check a user-space value buffer's length (per-CPU aware).
    pub(crate) fn check_user_value(&self, value_len: usize) -> Result<(), MapError> {
        let want = if self.attr.map_type.is_percpu() {
            self.ncpus * crate::mem::round8(self.value_size())
        } else {
            self.value_size()
        };
        if value_len != want {
            return Err(self.invalid(format!(
                "value buffer is {value_len} bytes, expected {want}{}",
                if self.attr.map_type.is_percpu() {
                    format!(
                        " ({} CPUs x {} bytes)",
                        self.ncpus,
                        crate::mem::round8(self.value_size())
                    )
                } else {
                    String::new()
                }
            )));
        }
        Ok(())
    }

    pub(crate) fn check_cpu(&self, cpu: usize) -> Result<(), MapError> {
        if cpu >= self.ncpus {
            return Err(self.invalid(format!("cpu {cpu} out of range ({} CPUs)", self.ncpus)));
        }
        Ok(())
    }

    /// The update flags check shared by hash and array maps: no unknown bits, not both
    /// `BPF_NOEXIST` and `BPF_EXIST`, `BPF_F_LOCK` only with a spin lock in the value.
    pub(crate) fn check_update_flags(&self, flags: u64) -> Result<(), MapError> {
        if flags & !(BPF_NOEXIST | BPF_EXIST | BPF_F_LOCK) != 0 {
            return Err(self.invalid(format!("unknown update flags {flags:#x}")));
        }
        if flags & (BPF_NOEXIST | BPF_EXIST) == (BPF_NOEXIST | BPF_EXIST) {
            return Err(self.invalid("BPF_NOEXIST and BPF_EXIST together"));
        }
        if flags & BPF_F_LOCK != 0 && self.attr.spin_lock_off.is_none() {
            return Err(self.invalid("BPF_F_LOCK on a map whose value has no bpf_spin_lock"));
        }
        Ok(())
    }

    /// The lookup flags check: only `BPF_F_LOCK`, and only with a spin lock.
    pub(crate) fn check_lookup_flags(&self, flags: u64) -> Result<(), MapError> {
        if flags & !BPF_F_LOCK != 0 {
            return Err(self.invalid(format!("unknown lookup flags {flags:#x}")));
        }
        if flags & BPF_F_LOCK != 0 && self.attr.spin_lock_off.is_none() {
            return Err(self.invalid("BPF_F_LOCK on a map whose value has no bpf_spin_lock"));
        }
        Ok(())
    }

    pub(crate) fn lock_off(&self) -> Option<usize> {
        self.attr.spin_lock_off.map(|o| o as usize)
    }
}
