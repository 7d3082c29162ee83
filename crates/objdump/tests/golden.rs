//! `bpfvm objdump -d/-S` against llvm-objdump-19, byte for byte.
//!
//! Three sources of truth, each compared with a unified-style diff on mismatch:
//! - the project goldens `tests/golden/objdump/<name>.{d,S}.txt` for every
//!   fixture object `tests/fixtures/obj/<name>.o` (made with llvm-objdump-19 -d/-S
//!   obj/<name>.o from `tests/fixtures`); skipped while they do not exist;
//! - this crate's own objects `tests/data/objdump/<name>.o` with their
//!   `<name>.{d,S}.txt` and stderr `<name>.{d,S}.err` (made the same way from
//!   `tests/data/objdump`;
//!   `BPFVM_BLESS=1` rewrites them with llvm-objdump-19);
//! - llvm-objdump-19 itself, run live on all of them when installed.

use bpfvm_objdump::{objdump_with, ObjdumpOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A compact unified-style diff (whole-file hunk with context 3).
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    // LCS table; inputs are a few hundred lines at most.
    let (n, m) = (a.len(), b.len());
    let mut l = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            l[i][j] = if a[i] == b[j] {
                l[i + 1][j + 1] + 1
            } else {
                l[i + 1][j].max(l[i][j + 1])
            };
        }
    }
    let mut ops = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || l[i][j + 1] >= l[i + 1][j]) {
            ops.push(('+', b[j]));
            j += 1;
        } else {
            ops.push(('-', a[i]));
            i += 1;
        }
    }
    let mut out = String::from("--- expected (llvm-objdump-19)\n+++ actual (bpfvm)\n");
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.0 != ' ')
        .map(|(k, _)| k)
        .collect();
    let mut last_printed: Option<usize> = None;
    for (k, (c, line)) in ops.iter().enumerate() {
        if changed.iter().any(|&x| x.abs_diff(k) <= 3) {
            if last_printed.is_some_and(|p| p + 1 != k) || (last_printed.is_none() && k > 0) {
                out.push_str("@@\n");
            }
            out.push_str(&format!("{c}{line}\n"));
            last_printed = Some(k);
        }
    }
    if expected.ends_with('\n') != actual.ends_with('\n') {
        out.push_str("\\ final newline differs\n");
    }
    out
}

/// Our (stdout, stderr), warnings named as llvm-objdump-19 names itself.
fn ours_with_warnings(cwd: &Path, rel: &str, source: bool) -> (String, String) {
    let bytes = std::fs::read(cwd.join(rel)).unwrap();
    let opts = ObjdumpOptions {
        with_source: source,
        source_dir: Some(cwd.to_path_buf()),
        tool_name: "llvm-objdump-19".into(),
    };
    let out = objdump_with(rel, &bytes, &opts).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let err: String = out.warnings.iter().map(|w| format!("{w}\n")).collect();
    (out.text, err)
}

fn ours(cwd: &Path, rel: &str, source: bool) -> String {
    ours_with_warnings(cwd, rel, source).0
}

/// llvm-objdump-19's (stdout, stderr), run from `cwd`.
fn llvm_with_warnings(cwd: &Path, rel: &str, source: bool) -> Option<(String, String)> {
    let out = Command::new("llvm-objdump-19")
        .arg(if source { "-S" } else { "-d" })
        .arg(rel)
        .current_dir(cwd)
        .output()
        .ok()?;
    out.status.success().then(|| {
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    })
}

fn objects(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".o"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn check(failures: &mut Vec<String>, what: &str, expected: &str, actual: &str) {
    if expected != actual {
        failures.push(format!("== {what}\n{}", diff(expected, actual)));
    }
}

#[test]
fn fixtures_match_project_goldens() {
    let fixtures = repo().join("tests/fixtures");
    let golden = repo().join("tests/golden/objdump");
    let mut failures = Vec::new();
    let mut compared = 0;
    for o in objects(&fixtures.join("obj")) {
        let name = o.trim_end_matches(".o");
        for (flag, source) in [("d", false), ("S", true)] {
            let g = golden.join(format!("{name}.{flag}.txt"));
            let Ok(expected) = std::fs::read_to_string(&g) else {
                continue;
            };
            compared += 1;
            check(
                &mut failures,
                &format!("{}", g.display()),
                &expected,
                &ours(&fixtures, &format!("obj/{o}"), source),
            );
        }
    }
    if compared == 0 {
        eprintln!("SKIP: no goldens in {}", golden.display());
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn own_objects_match_their_goldens() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/objdump");
    let bless = std::env::var_os("BPFVM_BLESS").is_some();
    let mut failures = Vec::new();
    let objs = objects(&dir);
    assert!(!objs.is_empty(), "no objects in {}", dir.display());
    for o in objs {
        let name = o.trim_end_matches(".o");
        for (flag, source) in [("d", false), ("S", true)] {
            let g = dir.join(format!("{name}.{flag}.txt"));
            let ge = dir.join(format!("{name}.{flag}.err"));
            if bless {
                let (text, err) = llvm_with_warnings(&dir, &o, source)
                    .expect("BPFVM_BLESS needs llvm-objdump-19");
                std::fs::write(&g, text).unwrap();
                if err.is_empty() {
                    let _ = std::fs::remove_file(&ge);
                } else {
                    std::fs::write(&ge, err).unwrap();
                }
            }
            let expected =
                std::fs::read_to_string(&g).unwrap_or_else(|e| panic!("{}: {e}", g.display()));
            let expected_err = std::fs::read_to_string(&ge).unwrap_or_default();
            let (text, err) = ours_with_warnings(&dir, &o, source);
            check(&mut failures, &format!("{}", g.display()), &expected, &text);
            check(
                &mut failures,
                &format!("{}", ge.display()),
                &expected_err,
                &err,
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn everything_matches_live_llvm_objdump() {
    if !Command::new("llvm-objdump-19")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("SKIP: llvm-objdump-19 not installed");
        return;
    }
    let mut failures = Vec::new();
    let mut compared = 0;
    let fixtures = repo().join("tests/fixtures");
    let own = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/objdump");
    let mut cases: Vec<(PathBuf, String)> = objects(&fixtures.join("obj"))
        .into_iter()
        .map(|o| (fixtures.clone(), format!("obj/{o}")))
        .collect();
    cases.extend(objects(&own).into_iter().map(|o| (own.clone(), o)));
    for (cwd, rel) in cases {
        for source in [false, true] {
            let Some((expected, expected_err)) = llvm_with_warnings(&cwd, &rel, source) else {
                continue;
            };
            compared += 1;
            let what = format!("{rel} {}", if source { "-S" } else { "-d" });
            let (text, err) = ours_with_warnings(&cwd, &rel, source);
            check(&mut failures, &what, &expected, &text);
            check(
                &mut failures,
                &format!("{what} (stderr)"),
                &expected_err,
                &err,
            );
        }
    }
    eprintln!("compared {compared} dumps with llvm-objdump-19");
    assert!(
        failures.is_empty(),
        "{} of {compared} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
