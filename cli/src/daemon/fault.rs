//! Fault injection for the fault tests, compiled only with the cargo feature
//! `fault-injection`. The package turns it on through a dev-dependency on
//! itself, so builds that take dev-dependencies have it (tests, and examples
//! such as scripts/bench-daemon.sh's, where the knob is simply unset);
//! `cargo build` and `cargo install` leave it off, and then [`injected`] is
//! `None`, always.
//!
//! `BPFVM_FAULT_FILE` names a file read before each write of the state; the
//! words in it say which writes fail with EIO while it says so:
//! - `journal-write`: the journal append writes half its bytes, then fails;
//! - `journal-fdatasync`: the append's bytes are written, its fdatasync fails;
//! - `values-sync`: the fdatasync of an array map's value file fails.

/// The error to fail the write at `point` with, if the fault file asks for it.
#[cfg(feature = "fault-injection")]
pub fn injected(point: &str) -> Option<std::io::Error> {
    let path = std::env::var_os("BPFVM_FAULT_FILE")?;
    let words = std::fs::read_to_string(path).ok()?;
    words
        .split_whitespace()
        .any(|w| w == point)
        .then(|| std::io::Error::from_raw_os_error(libc::EIO))
}

/// Without the feature: no faults.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn injected(_point: &str) -> Option<std::io::Error> {
    None
}
