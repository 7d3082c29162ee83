//! The bpf_conformance suite on the interpreter or the JIT.
//!
//! Each `.data` file gives a program (`-- asm` or `-- raw`), input memory (`-- mem`)
//! and the expected r0 (`-- result`) or an expected failure (`-- error`). As in the
//! upstream plugins: r1 = the memory, r2 = its length, and helper 5 returns r1
//! (uBPF's test helper, used by `call_unwind_fail.data` and `callx.data`).

use crate::error::HelperError;
use crate::helpers::{HelperCtx, HelperOutcome, HelperTable};
use crate::program::{LoadOptions, VmProgram};
use bpfvm_isa::asm::parse_data_file;
use bpfvm_isa::Insn;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use thiserror::Error;

/// Why a suite could not be run at all.
#[derive(Debug, Error)]
pub enum ConformanceError {
    #[error("cannot read conformance directory {dir}")]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Kept for callers that match on it; the JIT exists now.
    #[error("the JIT is not available on this host")]
    NoJit,
}

/// Where a program that was expected to fail failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The `.data` file or its assembly text was refused.
    Assemble,
    /// [`VmProgram::new`] refused the program.
    Load,
    /// The run stopped with an error.
    Run,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Assemble => "assembly",
            Stage::Load => "load",
            Stage::Run => "run",
        })
    }
}

/// The outcome of one test file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// r0 matched `-- result`.
    Passed { r0: u64 },
    /// `-- error` was expected and the program was refused or stopped.
    Refused { at: Stage, reason: String },
    /// Anything else; the reason says what happened and what was expected.
    Failed { reason: String },
}

impl Outcome {
    pub fn passed(&self) -> bool {
        !matches!(self, Outcome::Failed { .. })
    }
}

/// One test file and its outcome.
#[derive(Debug, Clone)]
pub struct Case {
    pub file: PathBuf,
    pub outcome: Outcome,
}

/// The outcome of a directory of tests, in file name order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub cases: Vec<Case>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.outcome.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }

    pub fn failures(&self) -> impl Iterator<Item = &Case> {
        self.cases.iter().filter(|c| !c.outcome.passed())
    }
}

/// The helpers conformance programs may call: helper 5 returns r1.
pub fn conformance_helpers() -> Arc<HelperTable> {
    static T: OnceLock<Arc<HelperTable>> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = HelperTable::new();
        t.register(
            5,
            "conformance_return_r1",
            |_: &mut HelperCtx<'_, '_>, a: [u64; 5]| -> Result<HelperOutcome, HelperError> {
                Ok(HelperOutcome::Return(a[0]))
            },
        );
        Arc::new(t)
    })
    .clone()
}

/// Loads `insns` against the conformance helpers and runs them on a copy of `mem`.
/// The error is (stage, message).
pub fn run_program(insns: &[Insn], mem: &[u8]) -> Result<u64, (Stage, String)> {
    run_program_on(insns, mem, false)
}

/// As [`run_program`], on the JIT (checked mode) when `jit` is true.
pub fn run_program_on(insns: &[Insn], mem: &[u8], jit: bool) -> Result<u64, (Stage, String)> {
    let prog = VmProgram::new(insns, &LoadOptions::new(conformance_helpers()))
        .map_err(|e| (Stage::Load, e.to_string()))?;
    let mut mem = mem.to_vec();
    let res = if jit {
        let j = prog
            .jit(&crate::jit::JitOptions::checked())
            .map_err(|e| (Stage::Load, error_chain(&e)))?;
        j.run_with_memory(&mut mem)
    } else {
        prog.run_with_memory(&mut mem)
    };
    res.map(|r| r.r0).map_err(|e| (Stage::Run, error_chain(&e)))
}

/// An error and its causes, joined with ": ".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Runs the test in `text` (the contents of one `.data` file).
pub fn run_data_text(text: &str) -> Outcome {
    run_data_text_on(text, false)
}

/// As [`run_data_text`], on the JIT when `jit` is true.
pub fn run_data_text_on(text: &str, jit: bool) -> Outcome {
    let file = match parse_data_file(text) {
        Ok(f) => f,
        Err(e) => return assemble_failure(None, e.to_string()),
    };
    let expects_error = file.error.is_some();
    let insns = match file.program() {
        Ok(i) => i,
        Err(e) => return assemble_failure(Some(expects_error), e.to_string()),
    };
    match (
        run_program_on(&insns, &file.mem, jit),
        file.result,
        expects_error,
    ) {
        (Ok(r0), Some(want), _) if r0 == want => Outcome::Passed { r0 },
        (Ok(r0), Some(want), _) => Outcome::Failed {
            reason: format!("r0 is {r0:#x}, expected {want:#x}"),
        },
        (Ok(r0), None, true) => Outcome::Failed {
            reason: format!("expected an error, the program returned r0 = {r0:#x}"),
        },
        (Ok(r0), None, false) => Outcome::Failed {
            reason: format!("the file has no `-- result` (r0 = {r0:#x})"),
        },
        (Err((at, reason)), _, true) => Outcome::Refused { at, reason },
        (Err((at, reason)), _, false) => Outcome::Failed {
            reason: format!("{at} error: {reason}"),
        },
    }
}

fn assemble_failure(expects_error: Option<bool>, reason: String) -> Outcome {
    if expects_error == Some(true) {
        Outcome::Refused {
            at: Stage::Assemble,
            reason,
        }
    } else {
        Outcome::Failed {
            reason: format!("assembly error: {reason}"),
        }
    }
}

/// Runs one `.data` file.
pub fn run_data_file(path: &Path) -> Outcome {
    run_data_file_on(path, false)
}

/// As [`run_data_file`], on the JIT when `jit` is true.
pub fn run_data_file_on(path: &Path, jit: bool) -> Outcome {
    match std::fs::read_to_string(path) {
        Ok(t) => run_data_text_on(&t, jit),
        Err(e) => Outcome::Failed {
            reason: format!("cannot read file: {e}"),
        },
    }
}

/// Runs every `*.data` file of `dir` (not recursive), in name order, on the
/// interpreter or (`jit`) on the x86-64 JIT in checked mode.
pub fn run_conformance_dir(dir: &Path, jit: bool) -> Result<Report, ConformanceError> {
    if jit && !cfg!(target_arch = "x86_64") {
        return Err(ConformanceError::NoJit);
    }
    let read_err = |source| ConformanceError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for ent in std::fs::read_dir(dir).map_err(read_err)? {
        let p = ent.map_err(read_err)?.path();
        if p.extension().is_some_and(|e| e == "data") && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    let cases = files
        .into_iter()
        .map(|file| {
            let outcome = run_data_file_on(&file, jit);
            Case { file, outcome }
        })
        .collect();
    Ok(Report { cases })
}

/// Parses hex bytes as the upstream runner writes them ("b7 01 00 00 ..."; blank
/// separated pairs, or one run of digits).
pub fn parse_hex_bytes(s: &str) -> Result<Vec<u8>, String> {
    let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let digits = digits
        .strip_prefix("0x")
        .unwrap_or(&digits)
        .to_ascii_lowercase();
    if digits.len() & 1 == 1 {
        return Err(format!("odd number of hex digits in {:?}", s.trim()));
    }
    (0..digits.len())
        .step_by(2)
        .map(|k| {
            u8::from_str_radix(&digits[k..k + 2], 16)
                .map_err(|_| format!("invalid hex byte {:?}", &digits[k..k + 2]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_bytes_as_the_runner_writes_them() {
        assert_eq!(parse_hex_bytes("b7  01 00\n").unwrap(), vec![0xb7, 1, 0]);
        assert_eq!(parse_hex_bytes("").unwrap(), Vec::<u8>::new());
        assert!(parse_hex_bytes("b7 0").is_err());
        assert!(parse_hex_bytes("zz").is_err());
    }

    #[test]
    fn outcomes() {
        let ok = "-- asm\nmov %r0, %r2\nexit\n-- mem\n01 02 03\n-- result\n0x3\n";
        assert_eq!(run_data_text(ok), Outcome::Passed { r0: 3 });
        let wrong = "-- asm\nmov %r0, 1\nexit\n-- result\n0x2\n";
        assert!(
            matches!(run_data_text(wrong), Outcome::Failed { reason } if reason.contains("expected 0x2"))
        );
        let refused = "-- raw\n0x0000000000010007\n0x0000000000000095\n-- error\n";
        assert!(matches!(
            run_data_text(refused),
            Outcome::Refused {
                at: Stage::Load,
                ..
            }
        ));
        let fails = "-- asm\nldxdw %r0, [%r1]\nexit\n-- error\n";
        assert!(matches!(
            run_data_text(fails),
            Outcome::Refused { at: Stage::Run, .. }
        ));
        let no_error = "-- asm\nmov %r0, 1\nexit\n-- error\n";
        assert!(matches!(run_data_text(no_error), Outcome::Failed { .. }));
    }
}
