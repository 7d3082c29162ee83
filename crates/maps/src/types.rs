//! Map types, flags and creation attributes, with the kernel's numeric values (`include/uapi/linux/bpf.h`).

use std::fmt;
use std::sync::Arc;

use crate::MapOps;

// The kernel's numbers and names are written once, in bpfvm-isa.
pub use bpfvm_isa::uapi::{
    MapType, BPF_ANY, BPF_EXIST, BPF_F_ACCESS_MASK, BPF_F_CLONE, BPF_F_INNER_MAP, BPF_F_LINK,
    BPF_F_LOCK, BPF_F_MMAPABLE, BPF_F_NO_COMMON_LRU, BPF_F_NO_PREALLOC, BPF_F_NO_USER_CONV,
    BPF_F_NUMA_NODE, BPF_F_PATH_FD, BPF_F_PRESERVE_ELEMS, BPF_F_RDONLY, BPF_F_RDONLY_PROG,
    BPF_F_SEGV_ON_FAULT, BPF_F_STACK_BUILD_ID, BPF_F_TOKEN_FD, BPF_F_VTYPE_BTF_OBJ_FD,
    BPF_F_WRONLY, BPF_F_WRONLY_PROG, BPF_F_ZERO_SEED, BPF_NOEXIST, BPF_OBJ_NAME_LEN,
};

/// `bpf_ringbuf_output`/`submit`/`discard` flag: do not notify the consumer.
pub const BPF_RB_NO_WAKEUP: u64 = 1 << 0;
/// `bpf_ringbuf_output`/`submit`/`discard` flag: notify the consumer unconditionally.
pub const BPF_RB_FORCE_WAKEUP: u64 = 1 << 1;
/// `bpf_ringbuf_query`: bytes not yet consumed.
pub const BPF_RB_AVAIL_DATA: u64 = 0;
/// `bpf_ringbuf_query`: size of the data area.
pub const BPF_RB_RING_SIZE: u64 = 1;
/// `bpf_ringbuf_query`: consumer position.
pub const BPF_RB_CONS_POS: u64 = 2;
/// `bpf_ringbuf_query`: producer position.
pub const BPF_RB_PROD_POS: u64 = 3;
/// Ring buffer record header bit: the record is reserved but not yet committed.
pub const BPF_RINGBUF_BUSY_BIT: u32 = 1 << 31;
/// Ring buffer record header bit: the record was discarded.
pub const BPF_RINGBUF_DISCARD_BIT: u32 = 1 << 30;
/// Size of a ring buffer record header (`u32 len; u32 pg_off`).
pub const BPF_RINGBUF_HDR_SZ: usize = 8;

/// The kernel struct a map pointer shows a program that reads through it
/// (`struct bpf_array`, `struct bpf_htab`, ...): [`KernelImage::SIZE`] bytes
/// the runtime lays out after the target kernel's BTF, read-only to
/// programs. Its address is the map pointer programs hold, so it is fixed
/// when the map is created; it is filled when a program that reads it is
/// loaded (only then are the kernel's types known).
pub struct KernelImage {
    words: Box<[std::sync::atomic::AtomicU64]>,
    filled: std::sync::atomic::AtomicBool,
}

impl KernelImage {
    /// Bytes of the image: the largest map struct of Linux 6.18
    /// (`struct bpf_htab`) is 832.
    pub const SIZE: usize = 1024;

    pub fn new() -> Arc<KernelImage> {
        Arc::new(KernelImage {
            words: (0..Self::SIZE / 8)
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
            filled: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The address programs see as the map pointer.
    pub fn addr(&self) -> u64 {
        self.words.as_ptr() as u64
    }

    /// Writes `bytes` at `off` (bytes past the image are dropped).
    pub fn write(&self, off: usize, bytes: &[u8]) {
        use std::sync::atomic::Ordering::Relaxed;
        for (i, b) in bytes.iter().enumerate() {
            let at = off + i;
            let Some(w) = self.words.get(at / 8) else {
                return;
            };
            let shift = (at % 8) * 8;
            let v = w.load(Relaxed);
            w.store((v & !(0xff << shift)) | (u64::from(*b) << shift), Relaxed);
        }
    }

    /// Marks the image filled; false if it already was.
    pub fn claim_fill(&self) -> bool {
        !self.filled.swap(true, std::sync::atomic::Ordering::AcqRel)
    }

    /// The image as memory programs may read.
    pub fn region(&self) -> crate::ValueRegion {
        crate::ValueRegion {
            base: self.words.as_ptr() as *mut u8,
            stride: Self::SIZE,
            count: 1,
            value_size: Self::SIZE,
            writable_by_prog: false,
        }
    }
}

/// The attributes a map is created with (the `BPF_MAP_CREATE` part of `union bpf_attr`).
#[derive(Clone, Default)]
pub struct MapAttr {
    pub map_type: MapType,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    /// Object name, at most 15 characters of `[A-Za-z0-9_.]`.
    pub name: String,
    /// NUMA node, meaningful with `BPF_F_NUMA_NODE` (only node 0 exists here).
    pub numa_node: u32,
    /// Template for `array_of_maps`/`hash_of_maps` (the kernel's `inner_map_fd`).
    pub inner: Option<Arc<dyn MapOps>>,
    pub btf_key_type_id: u32,
    pub btf_value_type_id: u32,
    /// Offset of a `struct bpf_spin_lock` in the value, found in BTF by the loader.
    pub spin_lock_off: Option<u32>,
    /// `map_extra`: a bloom filter's number of hash functions (low 4 bits).
    pub map_extra: u64,
    /// What a program reading through the map pointer sees; `None`: the
    /// map pointer is the map object's address (maps made outside a
    /// runtime).
    pub kernel_image: Option<Arc<KernelImage>>,
}

impl fmt::Debug for MapAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapAttr")
            .field("map_type", &self.map_type)
            .field("key_size", &self.key_size)
            .field("value_size", &self.value_size)
            .field("max_entries", &self.max_entries)
            .field("map_flags", &format_args!("{:#x}", self.map_flags))
            .field("name", &self.name)
            .field("numa_node", &self.numa_node)
            .field("inner", &self.inner.as_ref().map(|m| m.attr().map_type))
            .field("btf_key_type_id", &self.btf_key_type_id)
            .field("btf_value_type_id", &self.btf_value_type_id)
            .field("spin_lock_off", &self.spin_lock_off)
            .field("map_extra", &self.map_extra)
            .finish()
    }
}

impl MapAttr {
    /// Attributes for a map of `map_type` with the given sizes; everything else default.
    pub fn new(map_type: MapType, key_size: u32, value_size: u32, max_entries: u32) -> MapAttr {
        MapAttr {
            map_type,
            key_size,
            value_size,
            max_entries,
            ..MapAttr::default()
        }
    }

    /// Builder: set `map_flags`.
    pub fn with_flags(mut self, map_flags: u32) -> MapAttr {
        self.map_flags = map_flags;
        self
    }

    /// Builder: set the name.
    pub fn with_name(mut self, name: &str) -> MapAttr {
        self.name = name.to_string();
        self
    }

    /// Builder: set the inner map template.
    pub fn with_inner(mut self, inner: Arc<dyn MapOps>) -> MapAttr {
        self.inner = Some(inner);
        self
    }

    /// A label for messages: `hash map "counts"` or `hash map` when unnamed.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            format!("{} map", self.map_type.name())
        } else {
            format!("{} map \"{}\"", self.map_type.name(), self.name)
        }
    }
}
