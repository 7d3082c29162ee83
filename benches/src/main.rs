//! `cargo run --release -p bpfvm-bench -- [--quick] [--filter NAME] [--json PATH]`
//!
//! Runs every program on every engine, printing progress to stderr and the
//! table to stdout; writes report.json (`{program: {engine: ns_per_run}}`) and
//! compile.json (`{"compile_ns": {program: {engine: ns}}}`) beside it.

use bpfvm_bench::engines;
use bpfvm_bench::measure::{measure, Settings};
use bpfvm_bench::report::{fmt_ns, Outcome, Results};
use bpfvm_bench::{BenchError, Engine, Scale, PROGRAMS};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

struct Args {
    quick: bool,
    filter: Option<String>,
    json: PathBuf,
}

fn parse_args() -> Result<Args, BenchError> {
    let mut a = Args {
        quick: false,
        filter: None,
        // The workspace's target/, whatever CARGO_TARGET_DIR says.
        json: Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new("."))
            .join("target/bench/report.json"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--filter" => {
                a.filter = Some(it.next().ok_or(BenchError::Usage {
                    message: "--filter needs a NAME".into(),
                })?)
            }
            "--json" => {
                a.json = it
                    .next()
                    .ok_or(BenchError::Usage {
                        message: "--json needs a PATH".into(),
                    })?
                    .into()
            }
            "-h" | "--help" => {
                println!("usage: bpfvm-bench [--quick] [--filter NAME] [--json PATH]\n  --filter NAME  only programs or engines whose name contains NAME\n  --json PATH    where report.json goes (compile.json is written beside it)");
                std::process::exit(0);
            }
            other => {
                return Err(BenchError::Usage {
                    message: format!("unknown argument '{other}' (try --help)"),
                })
            }
        }
    }
    Ok(a)
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<(), BenchError> {
    let err = |source| BenchError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let text = serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
    std::fs::write(path, text).map_err(err)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bpfvm-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let settings = if args.quick {
        Settings::quick()
    } else {
        Settings::full()
    };
    let all = engines::all();
    let matches = |s: &str| args.filter.as_deref().is_none_or(|f| s.contains(f));
    // A filter naming an engine keeps every program, and the other way round.
    let engine_filter =
        all.iter().any(|e| matches(e.name())) && !PROGRAMS.iter().any(|p| matches(p.name));
    let programs: Vec<_> = PROGRAMS
        .iter()
        .filter(|p| engine_filter || matches(p.name))
        .collect();
    let engs: Vec<_> = all
        .iter()
        .filter(|e| !engine_filter || matches(e.name()))
        .collect();
    if programs.is_empty() {
        eprintln!("bpfvm-bench: no program or engine matches the filter");
        return ExitCode::from(2);
    }
    let mut res = Results {
        programs: programs.iter().map(|p| p.name).collect(),
        engines: engs.iter().map(|e| (e.name(), e.in_report())).collect(),
        ..Default::default()
    };
    let total = programs.len() * engs.len();
    let mut mismatches = 0;
    let mut n = 0;
    for (pi, prog) in programs.iter().enumerate() {
        let input = prog.input(Scale::Full);
        if let Ok(insns) = prog.insns() {
            res.insns.insert(pi, insns.len());
        }
        // The reference r0: native's when there is a native build, else bpfvm's
        // checked interpreter (the mode that checks every access).
        let reference = engines::native::Native { novec: false }
            .prepare(prog, &input)
            .ok()
            .and_then(|mut r| r.run(1).ok())
            .map(|(r0, _)| (r0, "native"))
            .or_else(|| {
                engines::bpfvm::BpfvmInterp {
                    checked: prog.kind == bpfvm_bench::programs::Kind::Compute,
                }
                .prepare(prog, &input)
                .ok()
                .and_then(|mut r| r.run(1).ok())
                .map(|(r0, _)| (r0, "bpfvm-interp"))
            });
        if let Some((_, from)) = reference.filter(|(_, f)| *f != "native") {
            res.notes.push(format!(
                "{}: results checked against {from} (no native build)",
                prog.name
            ));
        }
        for (ei, eng) in engs.iter().enumerate() {
            n += 1;
            let label = format!("[{n:>2}/{total}] {:<16} {:<20}", prog.name, eng.name());
            let outcome = match eng.prepare(prog, &input) {
                Err(s) => Outcome::Skipped(s),
                Ok(mut runner) => {
                    if let Some(c) = runner.compile_ns() {
                        res.compile_ns.insert((pi, ei), c);
                    }
                    if let Some(note) = runner.note() {
                        res.engine_notes.entry(eng.name()).or_default().insert(note);
                    }
                    if let Some(d) = runner.detail() {
                        res.notes
                            .push(format!("{} on {}: {d}", eng.name(), prog.name));
                    }
                    match measure(runner.as_mut(), &settings) {
                        Err(s) => Outcome::Skipped(s),
                        Ok(c) => match reference {
                            Some((expected, _)) if expected != c.r0 => {
                                Outcome::Mismatch { r0: c.r0, expected }
                            }
                            _ => Outcome::Ran(c),
                        },
                    }
                }
            };
            match &outcome {
                Outcome::Ran(c) => eprintln!(
                    "{label} {:>10}/run  ({} batches x {} runs, spread {} .. {}, r0 {:#x})",
                    fmt_ns(c.ns_per_run),
                    settings.batches,
                    c.iters,
                    fmt_ns(c.min),
                    fmt_ns(c.max),
                    c.r0
                ),
                Outcome::Skipped(s) => eprintln!("{label} skipped: {}", s.reason),
                Outcome::Mismatch { r0, expected } => {
                    mismatches += 1;
                    eprintln!("{label} *** MISMATCH *** r0 = {r0:#x}, expected {expected:#x}: left out of the report");
                }
            }
            res.cells.insert((pi, ei), outcome);
        }
    }
    print!("{}", res.table());
    let compile_path = args.json.with_file_name("compile.json");
    for (path, v) in [
        (&args.json, res.report_json()),
        (&compile_path, res.compile_json()),
    ] {
        match write_json(path, &v) {
            Ok(()) => eprintln!("wrote {}", path.display()),
            Err(e) => {
                eprintln!(
                    "bpfvm-bench: {e}: {}",
                    std::error::Error::source(&e)
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                );
                return ExitCode::FAILURE;
            }
        }
    }
    if mismatches > 0 {
        eprintln!("bpfvm-bench: {mismatches} engine result(s) differ from the reference: see MISMATCH above");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
