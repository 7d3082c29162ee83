//! The bpf_conformance suite (../shared/conformance, or BPF_CONFORMANCE_DIR): every
//! test passes on the interpreter and on the x86-64 JIT in checked mode, and every
//! `negative/unused-*.data` program (a reserved field set) is refused at load.

use bpfvm_vm::conformance::{run_conformance_dir, Outcome, Stage};
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
fn conformance_suite_passes() {
    let Some(dir) = suite_dir() else { return };
    for jit in [false, true] {
        let report = run_conformance_dir(&dir.join("tests"), jit).expect("suite runs");
        for c in report.failures() {
            eprintln!("jit={jit} {}: {:?}", c.file.display(), c.outcome);
        }
        assert_eq!((report.passed(), report.failed()), (313, 0), "jit={jit}");
    }
}

#[test]
fn reserved_fields_are_refused_at_load() {
    let Some(dir) = suite_dir() else { return };
    let report = run_conformance_dir(&dir.join("negative"), false).expect("suite runs");
    let unused: Vec<_> = report
        .cases
        .iter()
        .filter(|c| {
            c.file
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("unused-"))
        })
        .collect();
    assert_eq!(unused.len(), 45);
    for c in unused {
        assert!(
            matches!(
                c.outcome,
                Outcome::Refused {
                    at: Stage::Load,
                    ..
                }
            ),
            "{}: {:?}",
            c.file.display(),
            c.outcome
        );
    }
}

#[test]
fn jit_is_available_on_x86_64_only() {
    let Some(dir) = suite_dir() else { return };
    // The suite's results on the JIT are checked in jit_conformance.rs.
    assert_eq!(
        run_conformance_dir(&dir.join("tests"), true).is_ok(),
        cfg!(target_arch = "x86_64")
    );
}
