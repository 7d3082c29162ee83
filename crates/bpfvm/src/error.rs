//! Errors of the runtime's commands, each with the errno the kernel's bpf(2) returns.

use bpfvm_maps::MapError;
use bpfvm_vm::{LoadError, VmError};
use thiserror::Error;

/// An error from [`crate::Runtime::bpf`] (and everything built on it).
#[derive(Debug, Error)]
pub enum BpfError {
    /// No live object of this kind has this id (`ENOENT`).
    #[error("{kind} id {id} does not exist")]
    NoSuchObject {
        /// `map`, `program`, `btf`, ...
        kind: &'static str,
        /// The id asked for.
        id: u32,
    },
    /// A map operation failed; the map's error says which and why.
    #[error("map operation failed")]
    Map(#[from] MapError),
    /// The instructions could not be prepared for the VM.
    #[error("program '{name}' refused at load")]
    ProgLoad {
        /// The program's name.
        name: String,
        /// What the VM's loader found.
        #[source]
        source: LoadError,
    },
    /// The load attributes are refused before verification (`EINVAL`).
    #[error("program '{name}' refused at load: {reason}")]
    ProgInvalid {
        /// The program's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The verifier refused the program; its log (the kernel's wording) is in
    /// `source.log`, see [`BpfError::verifier_log`].
    #[error("program '{name}' refused by the verifier: {}", source.error)]
    Verifier {
        /// The program's name.
        name: String,
        /// The verifier's verdict and log.
        #[source]
        source: Box<bpfvm_verifier::Refused>,
    },
    /// A run stopped on an error of the VM.
    #[error("program '{name}' stopped")]
    Run {
        /// The program's name.
        name: String,
        /// What stopped it.
        #[source]
        source: VmError,
    },
    /// The run was cancelled (its client went away or its time ran out).
    #[error("program '{name}' interrupted")]
    Interrupted {
        /// The program's name.
        name: String,
    },
    /// An argument of the command is invalid (`EINVAL`).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// An extern the program uses cannot be resolved (a kfunc bpfvm lacks, a
    /// `.kconfig` value the configuration does not set, a kernel variable).
    #[error("program '{prog}': extern '{name}' ({section}): {reason}")]
    Extern {
        /// The program's name.
        prog: String,
        /// The extern's name.
        name: String,
        /// Where it is declared (`.kconfig`, `.ksyms`).
        section: &'static str,
        /// Why it cannot be resolved.
        reason: String,
    },
    /// A tracing or LSM program's attach target is not in the target BTF
    /// (libbpf: "failed to find kernel BTF type ID of '...'", ESRCH).
    #[error("program '{prog}': failed to find kernel BTF type ID of '{target}': {reason}")]
    AttachTarget {
        /// The program's name.
        prog: String,
        /// The attach target's name.
        target: String,
        /// Why it was not found.
        reason: String,
    },
    /// The object file cannot be read.
    #[error("object file")]
    Obj(#[from] bpfvm_obj::ObjError),
    /// The kernel has this and bpfvm does not yet (`ENOTSUPP`).
    #[error("{what} is not supported yet")]
    NotSupported {
        /// What was asked for.
        what: String,
    },
    /// A pin path is refused or names nothing.
    #[error("pin path '{path}': {reason}")]
    Pin {
        /// The path.
        path: String,
        /// Why (`file exists`, `no such file or directory`, ...).
        reason: &'static str,
    },
    /// Every id of this kind is in use (`ENOSPC`).
    #[error("no space left for a new {kind} id")]
    NoIds {
        /// `map`, `program` or `btf`.
        kind: &'static str,
    },
    /// A test run names a network interface the host does not have.
    #[error("no network interface with index {ifindex}")]
    NoDevice {
        /// The interface index asked for.
        ifindex: u32,
    },
    /// `BPF_F_TEST_SKB_CHECKSUM_COMPLETE`: after the run `skb->csum` does
    /// not sum the packet (the program changed it without updating the sum).
    #[error("program '{name}' left skb->csum {csum:#x} for a packet that sums to {want:#x}")]
    BadChecksum {
        /// The program's name.
        name: String,
        /// The sum the program left.
        csum: u16,
        /// The packet's sum.
        want: u16,
    },
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
