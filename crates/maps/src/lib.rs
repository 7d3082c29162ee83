//! bpfvm-maps: the eBPF map types, with the kernel's semantics, flags and errno codes.
//! Internal dependency of `bpfvm`; the runtime (helpers, the CLI, the daemon) calls it.
//!
//! How data flows: [`create_map`] checks a [`MapAttr`] the way `BPF_MAP_CREATE` does and
//! returns an `Arc<dyn MapOps>`. Programs reach the map through helpers that call the
//! program-side operations ([`MapOps::lookup`] returns a raw pointer to the value, which the
//! program then loads, stores and atomically modifies in place; [`MapOps::update`],
//! [`MapOps::delete`], push/pop/peek, [`MapOps::for_each`], and the [`RingBuf`] producer
//! calls). User space (the CLI, library users) calls the `*_user` operations, which copy
//! values in and out (all CPUs' values for per-CPU maps) and obey `BPF_F_RDONLY`,
//! `BPF_F_WRONLY` and [`MapOps::freeze`].
//!
//! Memory model: every value lives at a stable, 8-byte aligned address for the map's whole
//! life. Hash-like maps preallocate `max_entries` elements and recycle deleted ones through a
//! free list, so a pointer a program keeps after a delete still points at valid memory (which
//! may be reused), as in the kernel. [`MapOps::value_regions`] tells the checked interpreter
//! where value memory is. Maps are `Send + Sync`; indexes sit behind locks, values do not:
//! user-space copies run word by word with relaxed atomics, so a reader racing a writer may
//! see a torn value, exactly as with the kernel.
//!
//! Map types: array, percpu_array, hash, percpu_hash, lru_hash, lru_percpu_hash, prog_array,
//! array_of_maps, hash_of_maps, devmap, devmap_hash, cpumap, queue, stack, lpm_trie,
//! ringbuf, user_ringbuf, perf_event_array, stack_trace, cgroup_array, xskmap, bloom_filter, sockmap,
//! sockhash, sk_storage, cgroup_storage and percpu_cgroup_storage (the ones holding kernel
//! objects bpfvm lacks stay empty: see `special.rs`). [`MapType`] names every kernel type;
//! the others are refused with `EOPNOTSUPP`.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use bpfvm_maps::{create_map, MapAttr, MapType, BPF_ANY, BPF_NOEXIST, EEXIST};
//!
//! let map = create_map(&MapAttr::new(MapType::Hash, 4, 8, 1024).with_name("counts"), 2)?;
//! let key = 7u32.to_ne_bytes();
//! map.update_user(&key, &0u64.to_ne_bytes(), BPF_NOEXIST)?;
//! assert_eq!(map.update_user(&key, &[0; 8], BPF_NOEXIST).unwrap_err().errno(), EEXIST);
//!
//! // What a program's `lock *(u64 *)(r0 + 0) += 1` does with the pointer from lookup:
//! let p = map.lookup(&key, 0).expect("present");
//! // SAFETY: lookup returns an 8-byte aligned value that lives as long as the map.
//! unsafe { AtomicU64::from_ptr(p.cast()) }.fetch_add(1, Ordering::Relaxed);
//!
//! let mut out = [0u8; 8];
//! map.lookup_user(&key, &mut out, BPF_ANY)?;
//! assert_eq!(u64::from_ne_bytes(out), 1);
//! # Ok::<(), bpfvm_maps::MapError>(())
//! ```

mod array;
mod backing;
mod create;
mod devmap;
mod error;
mod fdarray;
mod hash;
mod lpm;
mod mem;
mod ops;
mod queue;
mod ringbuf;
mod special;
mod types;
mod user_ringbuf;

pub use array::ArrayMap;
pub use backing::{with_value_files, ValueFile};
pub use create::{
    create_map, default_ncpus, is_supported, supported_map_types, KMALLOC_MAX_SIZE, MAX_MAP_BYTES,
    NR_CPUS, PAGE_SIZE, PCPU_MIN_UNIT_SIZE,
};
pub use devmap::{CpumapVal, DevArray, DevmapVal, CPUMAP_MAX_QSIZE};
pub use error::*;
pub use fdarray::{ArrayOfMaps, ProgArray, ProgObject};
pub use hash::HashTab;
pub use lpm::{LpmTrie, LPM_KEY_SIZE_MAX, LPM_KEY_SIZE_MIN, LPM_VAL_SIZE_MAX};
pub use mem::{bpf_spin_lock, bpf_spin_unlock};
pub use ops::{FdObject, ForEachCallback, GenLookup, MapOps, ValueRegion};
pub use queue::QueueStack;
pub use ringbuf::{RingBuf, RINGBUF_MAX_RECORD_SZ};
pub use special::{
    jhash, jhash2, BloomFilter, PerfEventArray, PerfRecord, StackTrace, PERF_EVENT_MAX_STACK,
};
pub use types::*;
pub use user_ringbuf::{UserRingBuf, BPF_MAX_USER_RINGBUF_SAMPLES, USER_RINGBUF_MAX_SAMPLE};
