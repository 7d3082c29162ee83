//! Errors of the runtime's commands, each with the errno the kernel's bpf(2) returns.

use bpfvm_maps::MapError;
use bpfvm_vm::{LoadError, VmError};
use thiserror::Error;

/// An error from [`crate::Runtime::bpf`] (and everything built on it).
#[derive(Debug, Error)]
pub enum BpfError {
    #[error("{kind} id {id} does not exist")]
    NoSuchObject { kind: &'static str, id: u32 },
    #[error("map operation failed")]
    Map(#[from] MapError),
    #[error("program '{name}' refused at load")]
    ProgLoad {
        name: String,
        #[source]
        source: LoadError,
    },
    #[error("program '{name}' refused at load: {reason}")]
    ProgInvalid { name: String, reason: String },
    /// The verifier refused the program; its log (the kernel's wording) is in
    /// `source.log`, see [`BpfError::verifier_log`].
    #[error("program '{name}' refused by the verifier: {}", source.error)]
    Verifier {
        name: String,
        #[source]
        source: Box<bpfvm_verifier::Refused>,
    },
    #[error("program '{name}' stopped")]
    Run {
        name: String,
        #[source]
        source: VmError,
    },
    /// The run was cancelled (its client went away or its time ran out).
    #[error("program '{name}' interrupted")]
    Interrupted { name: String },
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// An extern the program uses cannot be resolved (a kfunc bpfvm lacks, a
    /// `.kconfig` value the configuration does not set, a kernel variable).
    #[error("program '{prog}': extern '{name}' ({section}): {reason}")]
    Extern {
        prog: String,
        name: String,
        section: &'static str,
        reason: String,
    },
    /// A tracing or LSM program's attach target is not in the target BTF
    /// (libbpf: "failed to find kernel BTF type ID of '...'", ESRCH).
    #[error("program '{prog}': failed to find kernel BTF type ID of '{target}': {reason}")]
    AttachTarget {
        prog: String,
        target: String,
        reason: String,
    },
    #[error("object file")]
    Obj(#[from] bpfvm_obj::ObjError),
    #[error("{what} is not supported yet")]
    NotSupported { what: String },
    #[error("pin path '{path}': {reason}")]
    Pin { path: String, reason: &'static str },
    #[error("no space left for a new {kind} id")]
    NoIds { kind: &'static str },
    /// A test run names a network interface the host does not have.
    #[error("no network interface with index {ifindex}")]
    NoDevice { ifindex: u32 },
    /// `BPF_F_TEST_SKB_CHECKSUM_COMPLETE`: after the run `skb->csum` does
    /// not sum the packet (the program changed it without updating the sum).
    #[error("program '{name}' left skb->csum {csum:#x} for a packet that sums to {want:#x}")]
    BadChecksum { name: String, csum: u16, want: u16 },
}

impl BpfError {
    /// The verifier's log, when the verifier refused a program.
    pub fn verifier_log(&self) -> Option<&str> {
        match self {
            BpfError::Verifier { source, .. } => Some(&source.log),
            _ => None,
        }
    }

    /// The errno the kernel would return for this failure.
    pub fn errno(&self) -> i32 {
        match self {
            BpfError::NoSuchObject { .. } => libc::ENOENT,
            BpfError::Map(e) => e.errno(),
            BpfError::ProgLoad { .. } | BpfError::ProgInvalid { .. } => libc::EINVAL,
            BpfError::Verifier { source, .. } => source.error.errno(),
            BpfError::Run { .. } => libc::EFAULT,
            BpfError::Interrupted { .. } => libc::EINTR,
            BpfError::Invalid(_) => libc::EINVAL,
            BpfError::Extern { .. } => libc::ESRCH,
            BpfError::AttachTarget { .. } => libc::ESRCH,
            BpfError::Obj(_) => libc::EINVAL,
            BpfError::NotSupported { .. } => libc::EOPNOTSUPP,
            BpfError::Pin { reason, .. } => match *reason {
                "file exists" => libc::EEXIST,
                "no such file or directory" => libc::ENOENT,
                _ => libc::EINVAL,
            },
            BpfError::NoIds { .. } => libc::ENOSPC,
            BpfError::NoDevice { .. } => libc::ENODEV,
            BpfError::BadChecksum { .. } => libc::EBADMSG,
        }
    }
}

pub type Result<T, E = BpfError> = std::result::Result<T, E>;
