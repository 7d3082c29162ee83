//! Maps: their types and flags, and typed views for embedders.
//!
//! A view wraps a map handle ([`MapFd`]) and checks, when it is made, that the map
//! has the type the view expects and that the key and value sizes are those of
//! the Rust types it reads and writes ([`Pod`] types). Every operation goes through
//! the runtime's one dispatcher ([`Runtime::bpf`]), as user space reaches a kernel
//! map through bpf(2).
//!
//! | view | map types |
//! |---|---|
//! | [`HashMap<K, V>`] | `BPF_MAP_TYPE_HASH`, `BPF_MAP_TYPE_LRU_HASH` |
//! | [`Array<V>`] | `BPF_MAP_TYPE_ARRAY` (global data sections are arrays too) |
//! | [`PerCpuArray<V>`] | `BPF_MAP_TYPE_PERCPU_ARRAY` |
//! | [`LpmTrie<K, V>`] | `BPF_MAP_TYPE_LPM_TRIE` |
//! | [`RingBuf`] | `BPF_MAP_TYPE_RINGBUF` |
//! | [`UserRingBuf`] | `BPF_MAP_TYPE_USER_RINGBUF` (the producer's side) |
//! | [`ProgramArray`] | `BPF_MAP_TYPE_PROG_ARRAY` |
//! | [`RawMap`] | any type, keys and values as bytes |
//!
//! ```
//! use bpfvm::maps::{Array, HashMap};
//! use bpfvm::programs::Xdp;
//! use bpfvm::{Object, Runtime};
//!
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/obj/maps.o");
//! let obj = Object::parse("maps.o", &std::fs::read(path)?)?;
//! let rt = Runtime::with_cpus(1);
//! let loaded = rt.load_object(&obj, None)?;
//!
//! // The program counts runs in slot 0 of an array and packets by length in a hash.
//! let xdp = Xdp::new(&rt, loaded.prog("map_ops_run").unwrap())?;
//! xdp.run(&[0u8; 64])?;
//! xdp.run(&[0u8; 64])?;
//!
//! let runs: Array<u64> = Array::new(&rt, loaded.map("m_array").unwrap())?;
//! assert_eq!(runs.get(0)?, 2);
//! let by_len: HashMap<u32, [u32; 2]> = HashMap::new(&rt, loaded.map("m_hash").unwrap())?;
//! assert_eq!(by_len.get(&64)?, [64, 2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub use bpfvm_maps::{with_value_files, MapAttr, ValueFile, ValueRegion};
pub use bpfvm_maps::{MapError, MapOps, MapType, PerfEventArray, PerfRecord};
pub use bpfvm_maps::{BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST};

mod user_ringbuf;
pub use user_ringbuf::{UserRingBuf, UserRingBufSample};

use crate::error::BpfError;
use crate::kernel::{BpfCmd, BpfReply, MapFd, MapObj, ProgFd, Runtime};
use std::marker::PhantomData;
use std::mem::size_of;
use std::sync::Arc;
use thiserror::Error;

/// Plain old data: a type a map key or value can be read into and written from
/// as bytes, in the host's byte order.
///
/// Implemented for the integer types and for arrays of `Pod` types.
///
/// # Safety
///
/// Implement it only for `Copy` types without padding bytes, pointers or
/// references, for which every bit pattern of `size_of::<Self>()` bytes is a
/// valid value — typically a `#[repr(C)]` struct of `Pod` fields laid out
/// without gaps, such as the C struct a program declares for its map value.
pub unsafe trait Pod: Copy + Send + Sync + 'static {}

macro_rules! pod {
    ($($t:ty),*) => { $(
        // SAFETY: integers have no padding and every bit pattern is valid.
        unsafe impl Pod for $t {}
    )* };
}
pod!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

// SAFETY: an array of `Pod` elements has no padding between them and is valid
// for every bit pattern its elements are.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

fn bytes_of<T: Pod>(v: &T) -> &[u8] {
    // SAFETY: `T: Pod` has no padding, so all its size_of::<T>() bytes are
    // initialised; the slice borrows `v`.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
}

fn from_bytes<T: Pod>(b: &[u8]) -> Option<T> {
    if b.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: `b` holds at least size_of::<T>() bytes and every bit pattern is
    // a valid `T` (the `Pod` contract); the read may be unaligned.
    Some(unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<T>()) })
}

/// Errors of the map views, each naming the map (id and name).
#[derive(Debug, Error)]
pub enum MapViewError {
    /// The map id resolves to no map.
    #[error("map id {id} does not exist")]
    NoSuchMap {
        /// The id asked for.
        id: u32,
    },
    /// The view does not fit the map's type.
    #[error("map {id} '{name}' is {found}, not {expected}")]
    WrongMapType {
        /// The map's id.
        id: u32,
        /// The map's name.
        name: String,
        /// The map's type (`BPF_MAP_TYPE_*`).
        found: &'static str,
        /// The type(s) the view reads.
        expected: &'static str,
    },
    /// The key type's size is not the map's `key_size`.
    #[error("map {id} '{name}': key_size is {map_size}, the key type is {type_size} bytes")]
    KeySize {
        /// The map's id.
        id: u32,
        /// The map's name.
        name: String,
        /// The map's `key_size`.
        map_size: u32,
        /// `size_of` the view's key type.
        type_size: usize,
    },
    /// The value type's size is not the map's `value_size`.
    #[error("map {id} '{name}': value_size is {map_size}, the value type is {type_size} bytes")]
    ValueSize {
        /// The map's id.
        id: u32,
        /// The map's name.
        name: String,
        /// The map's `value_size`.
        map_size: u32,
        /// `size_of` the view's value type.
        type_size: usize,
    },
    /// A lookup found no element at the key (`ENOENT`).
    #[error("map {id} '{name}': no element at this key")]
    KeyNotFound {
        /// The map's id.
        id: u32,
        /// The map's name.
        name: String,
    },
    /// An index at or past `max_entries`.
    #[error("map {id} '{name}': index {index} is out of bounds (max_entries {max_entries})")]
    OutOfBounds {
        /// The map's id.
        id: u32,
        /// The map's name.
        name: String,
        /// The index given.
        index: u32,
        /// The map's `max_entries`.
        max_entries: u32,
    },
    /// A per-CPU update with a value count other than the runtime's CPU count.
    #[error("map {id} '{name}': {found} per-CPU values given, the runtime has {expected} CPUs")]
    CpuCount {
        /// The map's id.
        id: u32,
        /// The map's name.
        name: String,
        /// The runtime's CPU count.
        expected: usize,
        /// The number of values given.
        found: usize,
    },
    /// A command of the dispatcher failed.
    #[error("{cmd} on map {id} '{name}'")]
    Command {
        /// The command (`BPF_MAP_LOOKUP_ELEM`, ...).
        cmd: &'static str,
        /// The map's id.
        id: u32,
        /// The map's name.
        name: String,
        /// Why the runtime refused it.
        #[source]
        source: Box<BpfError>,
    },
    /// The dispatcher answered a command with a reply of the wrong kind.
    #[error("{cmd} on map {id}: unexpected reply")]
    UnexpectedReply {
        /// The command.
        cmd: &'static str,
        /// The map's id.
        id: u32,
    },
}

impl MapViewError {
    /// The errno bpf(2) would return for this failure.
    pub fn errno(&self) -> i32 {
        match self {
            MapViewError::NoSuchMap { .. } | MapViewError::KeyNotFound { .. } => libc::ENOENT,
            MapViewError::Command { source, .. } => source.errno(),
            MapViewError::OutOfBounds { .. } => libc::E2BIG,
            MapViewError::UnexpectedReply { .. } => libc::EFAULT,
            _ => libc::EINVAL,
        }
    }
}

/// A view over a map of any type: keys and values as bytes.
///
/// The other views are made from one ([`TryFrom<RawMap>`]) or straight from a
/// handle. A `RawMap` keeps the map alive; one made with [`RawMap::new`] also
/// holds a user reference (as an open fd does), one made with
/// [`RawMap::from_id`] does not (a prog_array's slots are cleared when its last
/// user reference goes, so a view of a map nobody holds must not take and drop one).
///
/// ```
/// use bpfvm::maps::RawMap;
/// use bpfvm::{MapCreateAttr, Runtime};
///
/// let rt = Runtime::with_cpus(1);
/// let fd = rt.create_map(&MapCreateAttr {
///     map_type: bpfvm::maps::MapType::Hash,
///     key_size: 2,
///     value_size: 1,
///     max_entries: 4,
///     name: "raw".into(),
///     ..Default::default()
/// })?;
/// let map = RawMap::new(&rt, &fd);
/// map.update(&[1, 0], &[7], 0)?;
/// map.update(&[2, 0], &[9], 0)?;
/// let mut entries: Vec<_> = map.iter().collect::<Result<_, _>>()?;
/// entries.sort();
/// assert_eq!(entries, vec![(vec![1, 0], vec![7]), (vec![2, 0], vec![9])]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RawMap {
    rt: Runtime,
    obj: Arc<MapObj>,
    _fd: Option<MapFd>,
}

impl std::fmt::Debug for RawMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RawMap(id {} '{}' {})",
            self.obj.id,
            self.obj.name,
            self.obj.map_type().kernel_name()
        )
    }
}

impl RawMap {
    /// A view of the map `fd` refers to, holding a user reference to it.
    pub fn new(rt: &Runtime, fd: &MapFd) -> RawMap {
        RawMap {
            rt: rt.clone(),
            obj: fd.obj().clone(),
            _fd: Some(fd.clone()),
        }
    }

    /// A view of the map with this id, without a user reference.
    pub fn from_id(rt: &Runtime, id: u32) -> Result<RawMap, MapViewError> {
        let obj = rt
            .map_by_id(id)
            .map_err(|_| MapViewError::NoSuchMap { id })?;
        Ok(RawMap {
            rt: rt.clone(),
            obj,
            _fd: None,
        })
    }

    /// The map's id.
    pub fn id(&self) -> u32 {
        self.obj.id
    }

    /// The map's name.
    pub fn name(&self) -> &str {
        &self.obj.name
    }

    /// The map's type.
    pub fn map_type(&self) -> MapType {
        self.obj.map_type()
    }

    /// `key_size` in bytes.
    pub fn key_size(&self) -> u32 {
        self.obj.attr().key_size
    }

    /// `value_size` in bytes (one CPU's value for per-CPU maps).
    pub fn value_size(&self) -> u32 {
        self.obj.attr().value_size
    }

    /// `max_entries`.
    pub fn max_entries(&self) -> u32 {
        self.obj.attr().max_entries
    }

    fn command_error(&self, cmd: &'static str, source: BpfError) -> MapViewError {
        MapViewError::Command {
            cmd,
            id: self.obj.id,
            name: self.obj.name.clone(),
            source: Box::new(source),
        }
    }

    fn not_found(&self) -> MapViewError {
        MapViewError::KeyNotFound {
            id: self.obj.id,
            name: self.obj.name.clone(),
        }
    }

    fn bytes(&self, cmd: &'static str, c: BpfCmd) -> Result<Vec<u8>, MapViewError> {
        match self.rt.bpf(c) {
            Ok(BpfReply::Bytes(b)) => Ok(b),
            Ok(_) => Err(MapViewError::UnexpectedReply {
                cmd,
                id: self.obj.id,
            }),
            Err(e) => Err(self.command_error(cmd, e)),
        }
    }

    /// `BPF_MAP_LOOKUP_ELEM`: the value at `key` (per-CPU maps: every CPU's
    /// value, each padded to 8 bytes). A missing key is
    /// [`MapViewError::KeyNotFound`].
    pub fn lookup(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, MapViewError> {
        let r = self.bytes(
            "BPF_MAP_LOOKUP_ELEM",
            BpfCmd::MapLookupElem {
                map_id: self.obj.id,
                key: key.to_vec(),
                flags,
            },
        );
        match r {
            Err(e) if e.errno() == libc::ENOENT => Err(self.not_found()),
            r => r,
        }
    }

    /// `BPF_MAP_UPDATE_ELEM` with `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST` or `BPF_F_LOCK`.
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapViewError> {
        self.rt
            .bpf(BpfCmd::MapUpdateElem {
                map_id: self.obj.id,
                key: key.to_vec(),
                value: value.to_vec(),
                flags,
            })
            .map(|_| ())
            .map_err(|e| self.command_error("BPF_MAP_UPDATE_ELEM", e))
    }

    /// `BPF_MAP_DELETE_ELEM`. A missing key is [`MapViewError::KeyNotFound`].
    pub fn delete(&self, key: &[u8]) -> Result<(), MapViewError> {
        match self.rt.bpf(BpfCmd::MapDeleteElem {
            map_id: self.obj.id,
            key: key.to_vec(),
        }) {
            Ok(_) => Ok(()),
            Err(e) if e.errno() == libc::ENOENT => Err(self.not_found()),
            Err(e) => Err(self.command_error("BPF_MAP_DELETE_ELEM", e)),
        }
    }

    /// `BPF_MAP_GET_NEXT_KEY`: the key after `key` (the first key for `None`),
    /// or `None` past the last.
    pub fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapViewError> {
        match self.bytes(
            "BPF_MAP_GET_NEXT_KEY",
            BpfCmd::MapGetNextKey {
                map_id: self.obj.id,
                key: key.map(<[u8]>::to_vec),
            },
        ) {
            Ok(k) => Ok(Some(k)),
            Err(e) if e.errno() == libc::ENOENT => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The keys, in `BPF_MAP_GET_NEXT_KEY` order. An error ends the walk
    /// after it is yielded. The walk stops after `max_entries + 1` keys: a map
    /// never holds more, and a hash map whose walked key is deleted meanwhile
    /// starts again from its first key.
    pub fn keys(&self) -> RawKeys<'_> {
        RawKeys {
            map: self,
            last: None,
            seen: 0,
            done: false,
        }
    }

    /// The (key, value) pairs, in `BPF_MAP_GET_NEXT_KEY` order; keys whose
    /// element is gone by the time of the lookup (or an fd map's empty slots)
    /// are skipped.
    pub fn iter(&self) -> RawEntries<'_> {
        RawEntries { keys: self.keys() }
    }

    fn check_type(&self, ok: &[MapType], expected: &'static str) -> Result<(), MapViewError> {
        if ok.contains(&self.map_type()) {
            return Ok(());
        }
        Err(MapViewError::WrongMapType {
            id: self.obj.id,
            name: self.obj.name.clone(),
            found: self.map_type().kernel_name(),
            expected,
        })
    }

    fn check_key(&self, size: usize) -> Result<(), MapViewError> {
        if self.key_size() as usize == size {
            return Ok(());
        }
        Err(MapViewError::KeySize {
            id: self.obj.id,
            name: self.obj.name.clone(),
            map_size: self.key_size(),
            type_size: size,
        })
    }

    fn check_value(&self, size: usize) -> Result<(), MapViewError> {
        if self.value_size() as usize == size {
            return Ok(());
        }
        Err(MapViewError::ValueSize {
            id: self.obj.id,
            name: self.obj.name.clone(),
            map_size: self.value_size(),
            type_size: size,
        })
    }

    fn check_index(&self, index: u32) -> Result<(), MapViewError> {
        if index < self.max_entries() {
            return Ok(());
        }
        Err(MapViewError::OutOfBounds {
            id: self.obj.id,
            name: self.obj.name.clone(),
            index,
            max_entries: self.max_entries(),
        })
    }
}

/// The keys of a [`RawMap`] ([`RawMap::keys`]).
pub struct RawKeys<'a> {
    map: &'a RawMap,
    last: Option<Vec<u8>>,
    seen: usize,
    done: bool,
}

impl Iterator for RawKeys<'_> {
    type Item = Result<Vec<u8>, MapViewError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.seen > self.map.max_entries() as usize {
            return None;
        }
        match self.map.next_key(self.last.as_deref()) {
            Ok(Some(k)) => {
                self.seen += 1;
                self.last = Some(k.clone());
                Some(Ok(k))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// The entries of a [`RawMap`] ([`RawMap::iter`]).
pub struct RawEntries<'a> {
    keys: RawKeys<'a>,
}

impl Iterator for RawEntries<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>), MapViewError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let key = match self.keys.next()? {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            match self.keys.map.lookup(&key, 0) {
                Ok(v) => return Some(Ok((key, v))),
                Err(MapViewError::KeyNotFound { .. }) => continue,
                Err(e) => {
                    self.keys.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

macro_rules! view_common {
    ($view:ident < $($g:ident),* >) => {
        impl<$($g: Pod),*> $view<$($g),*> {
            /// The untyped view underneath.
            pub fn raw(&self) -> &RawMap {
                &self.map
            }

            /// The map's id.
            pub fn id(&self) -> u32 {
                self.map.id()
            }
        }

        impl<$($g: Pod),*> std::fmt::Debug for $view<$($g),*> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($view), self.map)
            }
        }
    };
}

/// A hash map (`BPF_MAP_TYPE_HASH` or `BPF_MAP_TYPE_LRU_HASH`) with keys `K`
/// and values `V`.
///
/// ```
/// use bpfvm::maps::HashMap;
/// use bpfvm::programs::Xdp;
/// use bpfvm::{Object, Runtime};
///
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/obj/maps.o");
/// let obj = Object::parse("maps.o", &std::fs::read(path)?)?;
/// let rt = Runtime::with_cpus(1);
/// let loaded = rt.load_object(&obj, None)?;
/// // `m_hash` maps a packet length to {length, packets seen}.
/// let hash: HashMap<u32, [u32; 2]> = HashMap::new(&rt, loaded.map("m_hash").unwrap())?;
/// hash.insert(&0, &[0, 0], 0)?;
/// let xdp = Xdp::new(&rt, loaded.prog("map_ops_run").unwrap())?;
/// xdp.run(&[0u8; 20])?; // also deletes key 0
/// xdp.run(&[0u8; 30])?;
/// xdp.run(&[0u8; 30])?;
/// let mut seen: Vec<(u32, [u32; 2])> = hash.iter().collect::<Result<_, _>>()?;
/// seen.sort();
/// assert_eq!(seen, vec![(20, [20, 1]), (30, [30, 2])]);
/// assert!(hash.get(&0).is_err());
/// hash.remove(&20)?;
/// assert_eq!(hash.keys().count(), 1);
///
/// // Sizes are checked when the view is made.
/// assert!(HashMap::<u64, [u32; 2]>::new(&rt, loaded.map("m_hash").unwrap()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_HASH")]
#[doc(alias = "BPF_MAP_TYPE_LRU_HASH")]
pub struct HashMap<K, V> {
    map: RawMap,
    _t: PhantomData<(K, V)>,
}
view_common!(HashMap<K, V>);

impl<K: Pod, V: Pod> HashMap<K, V> {
    /// A view of the map `fd` refers to.
    pub fn new(rt: &Runtime, fd: &MapFd) -> Result<Self, MapViewError> {
        RawMap::new(rt, fd).try_into()
    }

    /// `BPF_MAP_LOOKUP_ELEM`: the value at `key`.
    pub fn get(&self, key: &K) -> Result<V, MapViewError> {
        let v = self.map.lookup(bytes_of(key), 0)?;
        from_bytes(&v).ok_or(MapViewError::UnexpectedReply {
            cmd: "BPF_MAP_LOOKUP_ELEM",
            id: self.map.id(),
        })
    }

    /// `BPF_MAP_UPDATE_ELEM`: sets the value at `key` (`flags`: `BPF_ANY`,
    /// `BPF_NOEXIST`, `BPF_EXIST`, `BPF_F_LOCK`).
    pub fn insert(&self, key: &K, value: &V, flags: u64) -> Result<(), MapViewError> {
        self.map.update(bytes_of(key), bytes_of(value), flags)
    }

    /// `BPF_MAP_DELETE_ELEM`.
    pub fn remove(&self, key: &K) -> Result<(), MapViewError> {
        self.map.delete(bytes_of(key))
    }

    /// The keys, in `BPF_MAP_GET_NEXT_KEY` order (see [`RawMap::keys`]).
    pub fn keys(&self) -> impl Iterator<Item = Result<K, MapViewError>> + '_ {
        self.map
            .keys()
            .map(|k| k.map(|k| from_bytes(&k).unwrap_or_else(|| unreachable_size::<K>())))
    }

    /// The (key, value) pairs (see [`RawMap::iter`]).
    pub fn iter(&self) -> impl Iterator<Item = Result<(K, V), MapViewError>> + '_ {
        self.map.iter().map(|e| e.map(typed_pair::<K, V>))
    }
}

impl<K: Pod, V: Pod> TryFrom<RawMap> for HashMap<K, V> {
    type Error = MapViewError;

    fn try_from(map: RawMap) -> Result<Self, MapViewError> {
        map.check_type(
            &[MapType::Hash, MapType::LruHash],
            "BPF_MAP_TYPE_HASH or BPF_MAP_TYPE_LRU_HASH",
        )?;
        map.check_key(size_of::<K>())?;
        map.check_value(size_of::<V>())?;
        Ok(HashMap {
            map,
            _t: PhantomData,
        })
    }
}

/// The sizes were checked when the view was made, and the dispatcher replies
/// with buffers of `key_size`/`value_size` bytes; zero stands in should that change.
fn unreachable_size<T: Pod>() -> T {
    // SAFETY: all-zero bytes are a valid `Pod` value.
    unsafe { std::mem::zeroed() }
}

fn typed_pair<K: Pod, V: Pod>((k, v): (Vec<u8>, Vec<u8>)) -> (K, V) {
    (
        from_bytes(&k).unwrap_or_else(unreachable_size::<K>),
        from_bytes(&v).unwrap_or_else(unreachable_size::<V>),
    )
}

/// An array (`BPF_MAP_TYPE_ARRAY`) of values `V`, indexed by `u32`. Global data
/// sections (`.bss`, `.data`, `.rodata`) are one-element arrays.
///
/// ```
/// use bpfvm::maps::Array;
/// use bpfvm::programs::Xdp;
/// use bpfvm::{Object, Runtime};
///
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/obj/maps.o");
/// let obj = Object::parse("maps.o", &std::fs::read(path)?)?;
/// let rt = Runtime::with_cpus(1);
/// let loaded = rt.load_object(&obj, None)?;
/// let array: Array<u64> = Array::new(&rt, loaded.map("m_array").unwrap())?;
/// array.set(0, &40, 0)?;
/// // The program adds one to slot 0 and stores the packet length in slot 1.
/// Xdp::new(&rt, loaded.prog("map_ops_run").unwrap())?.run(&[0u8; 99])?;
/// assert_eq!(array.get(0)?, 41);
/// assert_eq!(array.get(1)?, 99);
/// assert_eq!(array.len(), 8);
/// assert_eq!(array.iter().count(), 8);
/// assert!(array.get(8).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_ARRAY")]
pub struct Array<V> {
    map: RawMap,
    _t: PhantomData<V>,
}
view_common!(Array<V>);

impl<V: Pod> Array<V> {
    /// A view of the map `fd` refers to.
    pub fn new(rt: &Runtime, fd: &MapFd) -> Result<Self, MapViewError> {
        RawMap::new(rt, fd).try_into()
    }

    /// The number of elements (`max_entries`).
    pub fn len(&self) -> u32 {
        self.map.max_entries()
    }

    /// Whether the array has no elements (`max_entries` 0 cannot be created,
    /// so never).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value at `index`.
    pub fn get(&self, index: u32) -> Result<V, MapViewError> {
        self.map.check_index(index)?;
        let v = self.map.lookup(&index.to_ne_bytes(), 0)?;
        Ok(from_bytes(&v).unwrap_or_else(unreachable_size::<V>))
    }

    /// Sets the value at `index` (`flags`: `BPF_ANY`, `BPF_EXIST`, `BPF_F_LOCK`).
    pub fn set(&self, index: u32, value: &V, flags: u64) -> Result<(), MapViewError> {
        self.map.check_index(index)?;
        self.map
            .update(&index.to_ne_bytes(), bytes_of(value), flags)
    }

    /// The values, in index order.
    pub fn iter(&self) -> impl Iterator<Item = Result<V, MapViewError>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl<V: Pod> TryFrom<RawMap> for Array<V> {
    type Error = MapViewError;

    fn try_from(map: RawMap) -> Result<Self, MapViewError> {
        map.check_type(&[MapType::Array], "BPF_MAP_TYPE_ARRAY")?;
        map.check_key(4)?;
        map.check_value(size_of::<V>())?;
        Ok(Array {
            map,
            _t: PhantomData,
        })
    }
}

/// A per-CPU array (`BPF_MAP_TYPE_PERCPU_ARRAY`): each index holds one `V`
/// per simulated CPU ([`Runtime::ncpus`]).
///
/// ```
/// use bpfvm::maps::{PerCpuArray, Pod};
/// use bpfvm::programs::Xdp;
/// use bpfvm::{Object, Runtime};
///
/// /// The program's `struct pair { __u32 a; __u32 b; }`.
/// #[derive(Clone, Copy, Debug, PartialEq)]
/// #[repr(C)]
/// struct Pair {
///     a: u32,
///     b: u32,
/// }
/// // SAFETY: two u32s, no padding, any bits valid.
/// unsafe impl Pod for Pair {}
///
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/obj/maps.o");
/// let obj = Object::parse("maps.o", &std::fs::read(path)?)?;
/// let rt = Runtime::with_cpus(2);
/// let loaded = rt.load_object(&obj, None)?;
/// let pcpu: PerCpuArray<Pair> = PerCpuArray::new(&rt, loaded.map("m_percpu_array").unwrap())?;
/// pcpu.set(0, &[Pair { a: 10, b: 0 }, Pair { a: 20, b: 0 }], 0)?;
/// // Test runs are on CPU 0: its `a` goes up by one, `b` takes the length.
/// Xdp::new(&rt, loaded.prog("map_ops_run").unwrap())?.run(&[0u8; 60])?;
/// assert_eq!(pcpu.get(0)?, vec![Pair { a: 11, b: 60 }, Pair { a: 20, b: 0 }]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_PERCPU_ARRAY")]
pub struct PerCpuArray<V> {
    map: RawMap,
    _t: PhantomData<V>,
}
view_common!(PerCpuArray<V>);

/// One CPU's value in a per-CPU lookup or update: the value, padded to 8 bytes.
fn percpu_stride<V>() -> usize {
    size_of::<V>().div_ceil(8) * 8
}

impl<V: Pod> PerCpuArray<V> {
    /// A view of the map `fd` refers to.
    pub fn new(rt: &Runtime, fd: &MapFd) -> Result<Self, MapViewError> {
        RawMap::new(rt, fd).try_into()
    }

    /// The number of indices (`max_entries`).
    pub fn len(&self) -> u32 {
        self.map.max_entries()
    }

    /// Whether the array has no indices (never: `max_entries` 0 cannot be created).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every CPU's value at `index`, CPU 0 first.
    pub fn get(&self, index: u32) -> Result<Vec<V>, MapViewError> {
        self.map.check_index(index)?;
        let v = self.map.lookup(&index.to_ne_bytes(), 0)?;
        Ok(v.chunks(percpu_stride::<V>())
            .map(|c| from_bytes(c).unwrap_or_else(unreachable_size::<V>))
            .collect())
    }

    /// Sets every CPU's value at `index`; `values` holds one per CPU.
    pub fn set(&self, index: u32, values: &[V], flags: u64) -> Result<(), MapViewError> {
        self.map.check_index(index)?;
        let ncpus = self.map.rt.ncpus();
        if values.len() != ncpus {
            return Err(MapViewError::CpuCount {
                id: self.map.id(),
                name: self.map.name().to_string(),
                expected: ncpus,
                found: values.len(),
            });
        }
        let stride = percpu_stride::<V>();
        let mut buf = vec![0u8; stride * ncpus];
        for (c, v) in buf.chunks_mut(stride).zip(values) {
            c[..size_of::<V>()].copy_from_slice(bytes_of(v));
        }
        self.map.update(&index.to_ne_bytes(), &buf, flags)
    }

    /// Every index's values, in index order.
    pub fn iter(&self) -> impl Iterator<Item = Result<Vec<V>, MapViewError>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl<V: Pod> TryFrom<RawMap> for PerCpuArray<V> {
    type Error = MapViewError;

    fn try_from(map: RawMap) -> Result<Self, MapViewError> {
        map.check_type(&[MapType::PercpuArray], "BPF_MAP_TYPE_PERCPU_ARRAY")?;
        map.check_key(4)?;
        map.check_value(size_of::<V>())?;
        Ok(PerCpuArray {
            map,
            _t: PhantomData,
        })
    }
}

/// A key of an [`LpmTrie`]: the kernel's `struct bpf_lpm_trie_key_u8`, a prefix
/// length in bits followed by the data (an address, in network byte order when
/// `K` is a byte array).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LpmKey<K> {
    /// How many leading bits of `data` the key covers.
    pub prefix_len: u32,
    /// The data the prefix is taken from.
    pub data: K,
}

impl<K: Pod> LpmKey<K> {
    /// The key covering the first `prefix_len` bits of `data`.
    pub fn new(prefix_len: u32, data: K) -> Self {
        LpmKey { prefix_len, data }
    }

    fn to_bytes(self) -> Vec<u8> {
        let mut b = Vec::with_capacity(4 + size_of::<K>());
        b.extend_from_slice(&self.prefix_len.to_ne_bytes());
        b.extend_from_slice(bytes_of(&self.data));
        b
    }

    fn from_raw(b: &[u8]) -> Self {
        LpmKey {
            prefix_len: from_bytes(b).unwrap_or(0),
            data: b
                .get(4..)
                .and_then(from_bytes)
                .unwrap_or_else(unreachable_size::<K>),
        }
    }
}

/// A longest-prefix-match trie (`BPF_MAP_TYPE_LPM_TRIE`) with key data `K`
/// (the map's `key_size` is 4 + `size_of::<K>()`) and values `V`.
///
/// ```
/// use bpfvm::maps::{LpmKey, LpmTrie};
/// use bpfvm::programs::Xdp;
/// use bpfvm::{Object, Runtime};
///
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/obj/maps.o");
/// let obj = Object::parse("maps.o", &std::fs::read(path)?)?;
/// let rt = Runtime::with_cpus(1);
/// let loaded = rt.load_object(&obj, None)?;
/// let trie: LpmTrie<[u8; 4], u32> = LpmTrie::new(&rt, loaded.map("m_lpm_trie").unwrap())?;
/// // The program stores 10.0.0.0/8 -> 8.
/// Xdp::new(&rt, loaded.prog("map_ops_run").unwrap())?.run(&[0u8; 14])?;
/// trie.insert(&LpmKey::new(16, [10, 1, 0, 0]), &16, 0)?;
/// assert_eq!(trie.get(&LpmKey::new(32, [10, 9, 9, 9]))?, 8);
/// assert_eq!(trie.get(&LpmKey::new(32, [10, 1, 2, 3]))?, 16);
/// assert!(trie.get(&LpmKey::new(32, [192, 168, 0, 1])).is_err());
/// let keys: Vec<_> = trie.keys().collect::<Result<_, _>>()?;
/// assert_eq!(keys.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_LPM_TRIE")]
pub struct LpmTrie<K, V> {
    map: RawMap,
    _t: PhantomData<(K, V)>,
}
view_common!(LpmTrie<K, V>);

impl<K: Pod, V: Pod> LpmTrie<K, V> {
    /// A view of the map `fd` refers to.
    pub fn new(rt: &Runtime, fd: &MapFd) -> Result<Self, MapViewError> {
        RawMap::new(rt, fd).try_into()
    }

    /// The value of the longest prefix in the trie that matches `key`.
    pub fn get(&self, key: &LpmKey<K>) -> Result<V, MapViewError> {
        let v = self.map.lookup(&key.to_bytes(), 0)?;
        Ok(from_bytes(&v).unwrap_or_else(unreachable_size::<V>))
    }

    /// Sets the value of the prefix `key` (`flags`: `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`).
    pub fn insert(&self, key: &LpmKey<K>, value: &V, flags: u64) -> Result<(), MapViewError> {
        self.map.update(&key.to_bytes(), bytes_of(value), flags)
    }

    /// Removes the prefix `key` (an exact match).
    pub fn remove(&self, key: &LpmKey<K>) -> Result<(), MapViewError> {
        self.map.delete(&key.to_bytes())
    }

    /// The prefixes, in `BPF_MAP_GET_NEXT_KEY` order (see [`RawMap::keys`]).
    pub fn keys(&self) -> impl Iterator<Item = Result<LpmKey<K>, MapViewError>> + '_ {
        self.map.keys().map(|k| k.map(|k| LpmKey::from_raw(&k)))
    }

    /// The (prefix, value) pairs (see [`RawMap::iter`]).
    pub fn iter(&self) -> impl Iterator<Item = Result<(LpmKey<K>, V), MapViewError>> + '_ {
        self.map.iter().map(|e| {
            e.map(|(k, v)| {
                (
                    LpmKey::from_raw(&k),
                    from_bytes(&v).unwrap_or_else(unreachable_size::<V>),
                )
            })
        })
    }
}

impl<K: Pod, V: Pod> TryFrom<RawMap> for LpmTrie<K, V> {
    type Error = MapViewError;

    fn try_from(map: RawMap) -> Result<Self, MapViewError> {
        map.check_type(&[MapType::LpmTrie], "BPF_MAP_TYPE_LPM_TRIE")?;
        map.check_key(4 + size_of::<K>())?;
        map.check_value(size_of::<V>())?;
        Ok(LpmTrie {
            map,
            _t: PhantomData,
        })
    }
}

/// A ring buffer (`BPF_MAP_TYPE_RINGBUF`) read from user space: an iterator
/// over the records programs submitted, oldest first, that ends when none is
/// ready (it can be polled again later).
///
/// ```
/// use bpfvm::maps::RingBuf;
/// use bpfvm::programs::Xdp;
/// use bpfvm::{Object, Runtime};
///
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/obj/maps.o");
/// let obj = Object::parse("maps.o", &std::fs::read(path)?)?;
/// let rt = Runtime::with_cpus(1);
/// let loaded = rt.load_object(&obj, None)?;
/// let mut ring = RingBuf::new(&rt, loaded.map("m_ringbuf").unwrap())?;
/// // Each run submits one record, discards one and outputs one:
/// // struct event { u32 kind; u32 len; u64 seq; }.
/// Xdp::new(&rt, loaded.prog("map_ops_run").unwrap())?.run(&[0u8; 42])?;
/// let kinds: Vec<(u32, u32)> = ring
///     .by_ref()
///     .map(|r| (u32::from_ne_bytes(r[..4].try_into().unwrap()), u32::from_ne_bytes(r[4..8].try_into().unwrap())))
///     .collect();
/// assert_eq!(kinds, vec![(1, 42), (2, 42)]);
/// assert!(ring.next().is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_RINGBUF")]
#[derive(Debug)]
pub struct RingBuf {
    map: RawMap,
}

impl RingBuf {
    /// A view of the map `fd` refers to.
    pub fn new(rt: &Runtime, fd: &MapFd) -> Result<Self, MapViewError> {
        RawMap::new(rt, fd).try_into()
    }

    /// The untyped view underneath.
    pub fn raw(&self) -> &RawMap {
        &self.map
    }
}

impl Iterator for RingBuf {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        self.map.obj.ops.as_ringbuf()?.next_record()
    }
}

impl TryFrom<RawMap> for RingBuf {
    type Error = MapViewError;

    fn try_from(map: RawMap) -> Result<Self, MapViewError> {
        map.check_type(&[MapType::Ringbuf], "BPF_MAP_TYPE_RINGBUF")?;
        Ok(RingBuf { map })
    }
}

/// A program array (`BPF_MAP_TYPE_PROG_ARRAY`): the slots `bpf_tail_call`
/// jumps through, each empty or holding a program.
///
/// ```
/// use bpfvm::maps::{Array, ProgramArray};
/// use bpfvm::programs::{Xdp, XdpAction};
/// use bpfvm::{Object, Runtime};
///
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/obj/maps.o");
/// let obj = Object::parse("maps.o", &std::fs::read(path)?)?;
/// let rt = Runtime::with_cpus(1);
/// let loaded = rt.load_object(&obj, None)?;
/// let slots = ProgramArray::new(&rt, loaded.map("m_prog_array").unwrap())?;
/// let target = loaded.prog("prog_target").unwrap();
/// // The object puts prog_target in slot 1; tail_prog jumps there.
/// assert_eq!(slots.get(1)?, target.id());
/// let tail = Xdp::new(&rt, loaded.prog("tail_prog").unwrap())?;
/// assert_eq!(tail.run(&[0u8; 14])?.action, XdpAction::Pass);
/// slots.clear_index(1)?;
/// assert_eq!(tail.run(&[0u8; 14])?.action, XdpAction::Drop);
/// slots.set(1, target, 0)?;
/// assert_eq!(slots.iter().collect::<Result<Vec<_>, _>>()?, vec![(1, target.id())]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_PROG_ARRAY")]
#[derive(Debug)]
pub struct ProgramArray {
    map: RawMap,
}

impl ProgramArray {
    /// A view of the map `fd` refers to.
    pub fn new(rt: &Runtime, fd: &MapFd) -> Result<Self, MapViewError> {
        RawMap::new(rt, fd).try_into()
    }

    /// The untyped view underneath.
    pub fn raw(&self) -> &RawMap {
        &self.map
    }

    /// The number of slots (`max_entries`).
    pub fn len(&self) -> u32 {
        self.map.max_entries()
    }

    /// Whether there are no slots (never: `max_entries` 0 cannot be created).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id of the program in slot `index`; an empty slot is
    /// [`MapViewError::KeyNotFound`].
    pub fn get(&self, index: u32) -> Result<u32, MapViewError> {
        self.map.check_index(index)?;
        let v = self.map.lookup(&index.to_ne_bytes(), 0)?;
        Ok(from_bytes(&v).unwrap_or(0))
    }

    /// Puts `prog` in slot `index` (its type must match the programs that use the array).
    pub fn set(&self, index: u32, prog: &ProgFd, flags: u64) -> Result<(), MapViewError> {
        self.map.check_index(index)?;
        self.map
            .update(&index.to_ne_bytes(), &prog.id().to_ne_bytes(), flags)
    }

    /// Empties slot `index`.
    pub fn clear_index(&self, index: u32) -> Result<(), MapViewError> {
        self.map.check_index(index)?;
        self.map.delete(&index.to_ne_bytes())
    }

    /// The filled slots: (index, program id), in index order.
    pub fn iter(&self) -> impl Iterator<Item = Result<(u32, u32), MapViewError>> + '_ {
        self.map
            .iter()
            .map(|e| e.map(|(k, v)| (from_bytes(&k).unwrap_or(0), from_bytes(&v).unwrap_or(0))))
    }
}

impl TryFrom<RawMap> for ProgramArray {
    type Error = MapViewError;

    fn try_from(map: RawMap) -> Result<Self, MapViewError> {
        map.check_type(&[MapType::ProgArray], "BPF_MAP_TYPE_PROG_ARRAY")?;
        Ok(ProgramArray { map })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapCreateAttr;

    fn map(rt: &Runtime, map_type: MapType, key_size: u32, value_size: u32) -> MapFd {
        rt.create_map(&MapCreateAttr {
            map_type,
            key_size,
            value_size,
            max_entries: 4,
            name: "m".into(),
            ..Default::default()
        })
        .unwrap()
    }

    /// Views refuse maps of another type or size when they are made, and
    /// name the map and what differs.
    #[test]
    fn construction_checks_type_and_sizes() {
        let rt = Runtime::with_cpus(2);
        let hash = map(&rt, MapType::Hash, 4, 8);
        let array = map(&rt, MapType::Array, 4, 8);
        let cases: Vec<(&str, Result<(), MapViewError>, &str)> = vec![
            (
                "array view of a hash",
                Array::<u64>::new(&rt, &hash).map(drop),
                "is BPF_MAP_TYPE_HASH, not BPF_MAP_TYPE_ARRAY",
            ),
            (
                "hash view with a wide key",
                HashMap::<u64, u64>::new(&rt, &hash).map(drop),
                "key_size is 4, the key type is 8 bytes",
            ),
            (
                "hash view with a narrow value",
                HashMap::<u32, u32>::new(&rt, &hash).map(drop),
                "value_size is 8, the value type is 4 bytes",
            ),
            (
                "index past max_entries",
                Array::<u64>::new(&rt, &array).and_then(|a| a.get(4).map(drop)),
                "index 4 is out of bounds (max_entries 4)",
            ),
            (
                "per-CPU values for too few CPUs",
                PerCpuArray::<u64>::new(&rt, &map(&rt, MapType::PercpuArray, 4, 8))
                    .and_then(|a| a.set(0, &[1], 0)),
                "1 per-CPU values given, the runtime has 2 CPUs",
            ),
            (
                "missing key",
                HashMap::<u32, u64>::new(&rt, &hash).and_then(|h| h.get(&9).map(drop)),
                "no element at this key",
            ),
            (
                "prog array view of an array",
                ProgramArray::new(&rt, &array).map(drop),
                "not BPF_MAP_TYPE_PROG_ARRAY",
            ),
        ];
        for (name, r, want) in cases {
            let e = r.expect_err(name).to_string();
            assert!(e.contains(want), "{name}: {e}");
            assert!(e.contains("map "), "{name} names the map: {e}");
        }
        assert!(HashMap::<u32, u64>::new(&rt, &hash).is_ok());
        assert_eq!(
            RawMap::from_id(&rt, 9999).unwrap_err().to_string(),
            "map id 9999 does not exist"
        );
    }

    /// A view made by id takes no user reference: dropping it leaves the slots
    /// of a prog_array that no handle holds as they are.
    #[test]
    fn views_by_id_leave_unreferenced_prog_arrays_alone() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/obj/maps.o"
        );
        let obj = crate::Object::parse("maps.o", &std::fs::read(path).unwrap()).unwrap();
        let rt = Runtime::with_cpus(1);
        let mut loaded = rt.load_object(&obj, None).unwrap();
        let target = loaded.prog("prog_target").unwrap().clone();
        let id = loaded.map("m_prog_array").unwrap().id();
        // The programs keep the map; its last user reference goes with `maps`.
        loaded.maps.clear();
        rt.bpf(BpfCmd::MapUpdateElem {
            map_id: id,
            key: 0u32.to_ne_bytes().to_vec(),
            value: target.id().to_ne_bytes().to_vec(),
            flags: 0,
        })
        .unwrap();
        for _ in 0..2 {
            let slots = ProgramArray::try_from(RawMap::from_id(&rt, id).unwrap()).unwrap();
            let filled: Vec<_> = slots.iter().collect::<Result<_, _>>().unwrap();
            assert_eq!(filled, vec![(0, target.id())]);
        }
    }

    #[test]
    fn pod_round_trips() {
        let v: [u16; 3] = [1, 0x203, 0xffff];
        assert_eq!(from_bytes::<[u16; 3]>(bytes_of(&v)), Some(v));
        assert_eq!(from_bytes::<u64>(&[1, 2, 3]), None);
    }
}
