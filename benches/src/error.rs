//! Errors of the harness itself (not of the engines under test: an engine that
//! cannot run a program gives a [`crate::Skip`], a note in the report).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot read the object {path}")]
    Object {
        path: PathBuf,
        #[source]
        source: Box<bpfvm::ObjError>,
    },
    #[error("object {path} has no program {name}")]
    NoProgram { path: PathBuf, name: String },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bad command line: {message}")]
    Usage { message: String },
}
