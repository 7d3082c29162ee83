//! The bpf_conformance suite (../shared/conformance, or BPF_CONFORMANCE_DIR) on the
//! x86-64 JIT in checked mode: every test passes, as on the interpreter.

use bpfvm_vm::conformance::run_conformance_dir;
use std::path::PathBuf;

fn suite_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("BPF_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
        });
    if dir.join("tests").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: bpf_conformance data not found at {} (set BPF_CONFORMANCE_DIR)",
            dir.display()
        );
        None
    }
}

#[test]
fn conformance_suite_passes_on_the_jit() {
    let Some(dir) = suite_dir() else { return };
    let report = run_conformance_dir(&dir.join("tests"), true).expect("suite runs");
    for c in report.failures() {
        eprintln!("{}: {:?}", c.file.display(), c.outcome);
    }
    assert_eq!((report.passed(), report.failed()), (313, 0));
}
