//! Errors of map operations, each carrying the errno the kernel returns for the same case.

use thiserror::Error;

/// `ENOENT`: no such element.
pub const ENOENT: i32 = 2;
/// `E2BIG`: argument (size, index) too large, or the map is full.
pub const E2BIG: i32 = 7;
/// `EAGAIN`: try again (ring buffer full for `bpf_ringbuf_output`).
pub const EAGAIN: i32 = 11;
/// `ENOMEM`: out of memory.
pub const ENOMEM: i32 = 12;
/// `EFAULT`: bad address.
pub const EFAULT: i32 = 14;
/// `EBUSY`: resource busy (e.g. map already frozen).
pub const EBUSY: i32 = 16;
/// `EEXIST`: element exists (`BPF_NOEXIST`).
pub const EEXIST: i32 = 17;
/// `ENODEV`: no such device (cpumap key that is not a possible CPU).
pub const ENODEV: i32 = 19;
/// `EINVAL`: invalid argument.
pub const EINVAL: i32 = 22;
/// `ENOSPC`: no space left (LPM trie full).
pub const ENOSPC: i32 = 28;
/// `EPERM`: operation not permitted (frozen or read-only map).
pub const EPERM: i32 = 1;
/// `EOVERFLOW`: value too large (cpumap qsize).
pub const EOVERFLOW: i32 = 75;
/// `EOPNOTSUPP`: operation not supported (user-visible errno 95).
pub const EOPNOTSUPP: i32 = 95;
/// `EBADF`: bad file descriptor (a value that should be a perf event or cgroup fd).
pub const EBADF: i32 = 9;
/// `ENOTSOCK`: the fd is not a socket (sockmap, xskmap values).
pub const ENOTSOCK: i32 = 88;
/// `ENOTSUPP`: kernel-internal "not supported" (524), returned by several map ops.
pub const ENOTSUPP: i32 = 524;

/// An error from a map operation. `errno()` gives the value the kernel returns (positive).
///
/// Every message names the map (`hash map "counts"`) and what is wrong.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MapError {
    /// The key (or index) is not in the map.
    #[error("{map}: no such element")]
    NotFound { map: String },
    /// A size or index is too large, or the map is full.
    #[error("{map}: {reason}")]
    TooBig { map: String, reason: String },
    /// `BPF_NOEXIST` was given and the key exists.
    #[error("{map}: element exists")]
    Exists { map: String },
    /// An attribute or argument is invalid.
    #[error("{map}: {reason}")]
    Invalid { map: String, reason: String },
    /// Memory for the map could not be allocated.
    #[error("{map}: cannot allocate {bytes} bytes")]
    NoMemory { map: String, bytes: u64 },
    /// The operation is forbidden (frozen map, read-only or write-only map).
    #[error("{map}: {reason}")]
    PermissionDenied { map: String, reason: String },
    /// The map is busy (already frozen).
    #[error("{map}: {reason}")]
    Busy { map: String, reason: String },
    /// No space left (LPM trie full).
    #[error("{map}: no space left for a new element ({max_entries} entries max)")]
    NoSpace { map: String, max_entries: u32 },
    /// No room right now (ring buffer full); the caller may try again.
    #[error("{map}: {reason}")]
    Again { map: String, reason: String },
    /// The map type does not implement this operation (kernel `ENOTSUPP`, 524).
    #[error("{map}: {op} is not supported")]
    NotSupported { map: String, op: &'static str },
    /// The feature is not supported for this map (kernel `EOPNOTSUPP`, 95).
    #[error("{map}: {reason}")]
    OpNotSupported { map: String, reason: String },
    /// A map type the kernel has and bpfvm does not implement (`EOPNOTSUPP`):
    /// a shortcoming of bpfvm, not of the map's definition.
    #[error("{map}: map type {type_name} ({type_num}) is not implemented by bpfvm")]
    Unimplemented {
        map: String,
        type_name: &'static str,
        type_num: u32,
    },
    /// A value that must be a file descriptor of some kernel object is not one.
    #[error("{map}: {reason}")]
    BadFd { map: String, reason: String },
    /// A value that must be a socket fd is not one.
    #[error("{map}: {reason}")]
    NotSocket { map: String, reason: String },
    /// The buffer has no room for what the kernel would copy (`ENOSPC`).
    #[error("{map}: {reason}")]
    NoRoom { map: String, reason: String },
    /// A pointer does not point where it must.
    #[error("{map}: {reason}")]
    Fault { map: String, reason: String },
    /// A value field is out of range (cpumap qsize).
    #[error("{map}: {reason}")]
    Overflow { map: String, reason: String },
    /// No such device (cpumap key that is not a possible CPU).
    #[error("{map}: {reason}")]
    NoDevice { map: String, reason: String },
    /// The file that was to hold the map's values could not be made or mapped.
    #[error("{map}: value memory file: {reason}")]
    Storage {
        map: String,
        reason: String,
        errno: i32,
    },
}

impl MapError {
    /// The kernel's errno for this error (positive, e.g. 2 for `ENOENT`).
    pub fn errno(&self) -> i32 {
        match self {
            MapError::NotFound { .. } => ENOENT,
            MapError::TooBig { .. } => E2BIG,
            MapError::Exists { .. } => EEXIST,
            MapError::Invalid { .. } => EINVAL,
            MapError::NoMemory { .. } => ENOMEM,
            MapError::PermissionDenied { .. } => EPERM,
            MapError::Busy { .. } => EBUSY,
            MapError::NoSpace { .. } => ENOSPC,
            MapError::Again { .. } => EAGAIN,
            MapError::NotSupported { .. } => ENOTSUPP,
            MapError::OpNotSupported { .. } | MapError::Unimplemented { .. } => EOPNOTSUPP,
            MapError::Fault { .. } => EFAULT,
            MapError::BadFd { .. } => EBADF,
            MapError::NotSocket { .. } => ENOTSOCK,
            MapError::NoRoom { .. } => ENOSPC,
            MapError::Overflow { .. } => EOVERFLOW,
            MapError::NoDevice { .. } => ENODEV,
            MapError::Storage { errno, .. } => *errno,
        }
    }

    /// The map label the error was raised for.
    pub fn map(&self) -> &str {
        match self {
            MapError::NotFound { map }
            | MapError::TooBig { map, .. }
            | MapError::Exists { map }
            | MapError::Invalid { map, .. }
            | MapError::NoMemory { map, .. }
            | MapError::PermissionDenied { map, .. }
            | MapError::Busy { map, .. }
            | MapError::NoSpace { map, .. }
            | MapError::Again { map, .. }
            | MapError::NotSupported { map, .. }
            | MapError::OpNotSupported { map, .. }
            | MapError::Unimplemented { map, .. }
            | MapError::BadFd { map, .. }
            | MapError::NotSocket { map, .. }
            | MapError::NoRoom { map, .. }
            | MapError::Fault { map, .. }
            | MapError::Overflow { map, .. }
            | MapError::NoDevice { map, .. }
            | MapError::Storage { map, .. } => map,
        }
    }
}
