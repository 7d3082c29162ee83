//! Map types, flags and creation attributes, with the kernel's numeric values (`include/uapi/linux/bpf.h`).

use std::fmt;
use std::sync::Arc;

use crate::MapOps;

macro_rules! map_types {
    ($( $(#[$m:meta])* $variant:ident = $num:literal, $alias:literal, $name:literal; )*) => {
        /// `enum bpf_map_type`: every map type the kernel knows, with its number.
        ///
        /// Only some are implemented by [`create_map`](crate::create_map); the rest exist so that
        /// objects and tools can name them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        #[repr(u32)]
        pub enum MapType {
            $( $(#[$m])* #[doc(alias = $alias)] $variant = $num, )*
        }

        impl MapType {
            /// Every map type, in numeric order.
            pub const ALL: &'static [MapType] = &[$(MapType::$variant),*];

            /// The type with kernel number `n`, if there is one.
            pub fn from_u32(n: u32) -> Option<MapType> {
                match n {
                    $( $num => Some(MapType::$variant), )*
                    _ => None,
                }
            }

            /// bpftool's name for the type (`"hash"`, `"percpu_array"`, ...).
            pub fn name(self) -> &'static str {
                match self {
                    $( MapType::$variant => $name, )*
                }
            }

            /// The kernel's constant name (`"BPF_MAP_TYPE_HASH"`).
            pub fn kernel_name(self) -> &'static str {
                match self {
                    $( MapType::$variant => $alias, )*
                }
            }
        }
    };
}

map_types! {
    #[default]
    Unspec = 0, "BPF_MAP_TYPE_UNSPEC", "unspec";
    Hash = 1, "BPF_MAP_TYPE_HASH", "hash";
    Array = 2, "BPF_MAP_TYPE_ARRAY", "array";
    ProgArray = 3, "BPF_MAP_TYPE_PROG_ARRAY", "prog_array";
    PerfEventArray = 4, "BPF_MAP_TYPE_PERF_EVENT_ARRAY", "perf_event_array";
    PercpuHash = 5, "BPF_MAP_TYPE_PERCPU_HASH", "percpu_hash";
    PercpuArray = 6, "BPF_MAP_TYPE_PERCPU_ARRAY", "percpu_array";
    StackTrace = 7, "BPF_MAP_TYPE_STACK_TRACE", "stack_trace";
    CgroupArray = 8, "BPF_MAP_TYPE_CGROUP_ARRAY", "cgroup_array";
    LruHash = 9, "BPF_MAP_TYPE_LRU_HASH", "lru_hash";
    LruPercpuHash = 10, "BPF_MAP_TYPE_LRU_PERCPU_HASH", "lru_percpu_hash";
    LpmTrie = 11, "BPF_MAP_TYPE_LPM_TRIE", "lpm_trie";
    ArrayOfMaps = 12, "BPF_MAP_TYPE_ARRAY_OF_MAPS", "array_of_maps";
    HashOfMaps = 13, "BPF_MAP_TYPE_HASH_OF_MAPS", "hash_of_maps";
    Devmap = 14, "BPF_MAP_TYPE_DEVMAP", "devmap";
    Sockmap = 15, "BPF_MAP_TYPE_SOCKMAP", "sockmap";
    Cpumap = 16, "BPF_MAP_TYPE_CPUMAP", "cpumap";
    Xskmap = 17, "BPF_MAP_TYPE_XSKMAP", "xskmap";
    Sockhash = 18, "BPF_MAP_TYPE_SOCKHASH", "sockhash";
    CgroupStorage = 19, "BPF_MAP_TYPE_CGROUP_STORAGE", "cgroup_storage";
    ReuseportSockarray = 20, "BPF_MAP_TYPE_REUSEPORT_SOCKARRAY", "reuseport_sockarray";
    PercpuCgroupStorage = 21, "BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE", "percpu_cgroup_storage";
    Queue = 22, "BPF_MAP_TYPE_QUEUE", "queue";
    Stack = 23, "BPF_MAP_TYPE_STACK", "stack";
    SkStorage = 24, "BPF_MAP_TYPE_SK_STORAGE", "sk_storage";
    DevmapHash = 25, "BPF_MAP_TYPE_DEVMAP_HASH", "devmap_hash";
    StructOps = 26, "BPF_MAP_TYPE_STRUCT_OPS", "struct_ops";
    Ringbuf = 27, "BPF_MAP_TYPE_RINGBUF", "ringbuf";
    InodeStorage = 28, "BPF_MAP_TYPE_INODE_STORAGE", "inode_storage";
    TaskStorage = 29, "BPF_MAP_TYPE_TASK_STORAGE", "task_storage";
    BloomFilter = 30, "BPF_MAP_TYPE_BLOOM_FILTER", "bloom_filter";
    UserRingbuf = 31, "BPF_MAP_TYPE_USER_RINGBUF", "user_ringbuf";
    CgrpStorage = 32, "BPF_MAP_TYPE_CGRP_STORAGE", "cgrp_storage";
    Arena = 33, "BPF_MAP_TYPE_ARENA", "arena";
}

impl MapType {
    /// Whether the type keeps one value per CPU (user-space values are then `ncpus` values,
    /// each rounded up to 8 bytes).
    pub fn is_percpu(self) -> bool {
        matches!(
            self,
            MapType::PercpuHash
                | MapType::PercpuArray
                | MapType::LruPercpuHash
                | MapType::PercpuCgroupStorage
        )
    }

    /// Whether the type is a map of maps (values are inner maps).
    pub fn is_map_in_map(self) -> bool {
        matches!(self, MapType::ArrayOfMaps | MapType::HashOfMaps)
    }

    /// Whether `bpfvm` implements this type.
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            MapType::Hash
                | MapType::Array
                | MapType::ProgArray
                | MapType::PercpuHash
                | MapType::PercpuArray
                | MapType::LruHash
                | MapType::LruPercpuHash
                | MapType::LpmTrie
                | MapType::ArrayOfMaps
                | MapType::HashOfMaps
                | MapType::Devmap
                | MapType::Cpumap
                | MapType::Queue
                | MapType::Stack
                | MapType::DevmapHash
                | MapType::Ringbuf
                | MapType::PerfEventArray
                | MapType::StackTrace
                | MapType::CgroupArray
                | MapType::Xskmap
                | MapType::BloomFilter
                | MapType::Sockmap
                | MapType::Sockhash
                | MapType::ReuseportSockarray
                | MapType::SkStorage
                | MapType::CgroupStorage
                | MapType::PercpuCgroupStorage
        )
    }
}

impl fmt::Display for MapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Update flag: create a new element or update an existing one.
pub const BPF_ANY: u64 = 0;
/// Update flag: create a new element only if it did not exist.
pub const BPF_NOEXIST: u64 = 1;
/// Update flag: update an existing element only.
pub const BPF_EXIST: u64 = 2;
/// Update/lookup flag: take the value's `bpf_spin_lock` while copying.
pub const BPF_F_LOCK: u64 = 4;

/// Map flag: do not preallocate elements (accepted; bpfvm always preallocates).
pub const BPF_F_NO_PREALLOC: u32 = 1 << 0;
/// Map flag: per-CPU LRU lists instead of one common list (accepted; bpfvm keeps one exact list).
pub const BPF_F_NO_COMMON_LRU: u32 = 1 << 1;
/// Map flag: `numa_node` is valid.
pub const BPF_F_NUMA_NODE: u32 = 1 << 2;
/// Map flag: user space may only read.
pub const BPF_F_RDONLY: u32 = 1 << 3;
/// Map flag: user space may only write.
pub const BPF_F_WRONLY: u32 = 1 << 4;
/// Map flag (stack trace maps): store build ids.
pub const BPF_F_STACK_BUILD_ID: u32 = 1 << 5;
/// Map flag: hash seed zero (bpfvm's hash seed is always fixed, so iteration order is stable).
pub const BPF_F_ZERO_SEED: u32 = 1 << 6;
/// Map flag: programs may only read.
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// Map flag: programs may only write.
pub const BPF_F_WRONLY_PROG: u32 = 1 << 8;
/// Map flag: clone local storage.
pub const BPF_F_CLONE: u32 = 1 << 9;
/// Map flag: array memory may be mmap()ed.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;
/// Map flag (perf event arrays): keep elements after the last user reference.
pub const BPF_F_PRESERVE_ELEMS: u32 = 1 << 11;
/// Map flag (inner map templates): inner maps may have any max_entries.
pub const BPF_F_INNER_MAP: u32 = 1 << 12;
/// Map flag (struct_ops): create a link.
pub const BPF_F_LINK: u32 = 1 << 13;
/// Flag for BPF_OBJ_GET: path fd.
pub const BPF_F_PATH_FD: u32 = 1 << 14;
/// Map flag (struct_ops): value type BTF object fd.
pub const BPF_F_VTYPE_BTF_OBJ_FD: u32 = 1 << 15;
/// Flag: BPF token fd.
pub const BPF_F_TOKEN_FD: u32 = 1 << 16;
/// Map flag (arena): fault on unmapped accesses.
pub const BPF_F_SEGV_ON_FAULT: u32 = 1 << 17;
/// Map flag (arena): no user-space address conversion.
pub const BPF_F_NO_USER_CONV: u32 = 1 << 18;

/// The access flags (`BPF_F_ACCESS_MASK` in the kernel).
pub const BPF_F_ACCESS_MASK: u32 =
    BPF_F_RDONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY | BPF_F_WRONLY_PROG;

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
