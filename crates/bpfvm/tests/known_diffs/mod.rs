//! Shared by the tests that compare bpfvm with the kernel's own verifier
//! tests (selftests.rs, test_verifier.rs): the list of known differences,
//! re-blessed with `BPFVM_BLESS=1`, and errors printed with their causes.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

/// The known differences in `path` (one per line, `#` comments skipped).
/// With `BPFVM_BLESS` set, `path` is first rewritten as `header` and `now`.
pub fn bless_or_read(path: &Path, header: &str, now: &BTreeSet<String>) -> BTreeSet<String> {
    if std::env::var_os("BPFVM_BLESS").is_some() {
        let mut text = String::from(header);
        for l in now {
            text.push_str(l);
            text.push('\n');
        }
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// An error and its `source()` chain, `: `-separated.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let _ = write!(s, ": {c}");
        cur = c.source();
    }
    s
}
