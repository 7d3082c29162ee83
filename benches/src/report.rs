//! The results of a run: the printed table and the JSON files.

use crate::engine::Skip;
use crate::measure::Cell;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What happened in one cell.
#[derive(Debug, Clone)]
pub enum Outcome {
    Ran(Cell),
    /// The engine cannot run the program (a note).
    Skipped(Skip),
    /// The engine ran it but its r0 differs from the reference (an error).
    Mismatch {
        r0: u64,
        expected: u64,
    },
}

/// Everything measured in one run of the harness.
#[derive(Debug, Default)]
pub struct Results {
    pub programs: Vec<&'static str>,
    /// (engine, whether it goes into report.json)
    pub engines: Vec<(&'static str, bool)>,
    pub cells: BTreeMap<(usize, usize), Outcome>,
    pub compile_ns: BTreeMap<(usize, usize), u64>,
    /// Program -> its number of instruction slots (for compile time per 1,000).
    pub insns: BTreeMap<usize, usize>,
    /// Engine -> how it ran things.
    pub engine_notes: BTreeMap<&'static str, std::collections::BTreeSet<String>>,
    /// Other remarks (reference used, DPDK's validator, ...).
    pub notes: Vec<String>,
}

/// `1234.5` -> `1.23 µs`.
pub fn fmt_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

impl Results {
    fn ns(&self, p: usize, e: usize) -> Option<f64> {
        match self.cells.get(&(p, e)) {
            Some(Outcome::Ran(c)) => Some(c.ns_per_run),
            _ => None,
        }
    }

    fn engine_index(&self, name: &str) -> Option<usize> {
        self.engines.iter().position(|(n, _)| *n == name)
    }

    /// The table: ns per run, ratios to native-novec, compile times, notes.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let w = 13;
        let pw = self
            .programs
            .iter()
            .map(|p| p.len())
            .max()
            .unwrap_or(7)
            .max(7)
            + 2;
        let header = |out: &mut String, title: &str| {
            let _ = writeln!(out, "\n{title}");
            let _ = write!(out, "{:<pw$}", "program");
            for (e, _) in &self.engines {
                let _ = write!(out, " {:>w$}", short(e));
            }
            let _ = writeln!(out);
        };
        let novec = self.engine_index("native-novec");

        header(
            &mut out,
            "Time per run (median of batches; '-' = not run, see notes; 'MISMATCH' = wrong r0):",
        );
        for (p, name) in self.programs.iter().enumerate() {
            let _ = write!(out, "{name:<pw$}");
            for e in 0..self.engines.len() {
                let s = match self.cells.get(&(p, e)) {
                    Some(Outcome::Ran(c)) => fmt_ns(c.ns_per_run),
                    Some(Outcome::Mismatch { .. }) => "MISMATCH".into(),
                    _ => "-".into(),
                };
                let _ = write!(out, " {s:>w$}");
            }
            let _ = writeln!(out);
        }

        header(
            &mut out,
            "Ratio to native-novec (time / native-novec's time; lower is faster):",
        );
        for (p, name) in self.programs.iter().enumerate() {
            let _ = write!(out, "{name:<pw$}");
            let base = novec.and_then(|n| self.ns(p, n));
            for e in 0..self.engines.len() {
                let s = match (self.ns(p, e), base) {
                    (Some(t), Some(b)) if b > 0.0 => format!("{:.2}x", t / b),
                    _ => "-".into(),
                };
                let _ = write!(out, " {s:>w$}");
            }
            let _ = writeln!(out);
        }

        // Geometric mean of the ratios, over the programs each engine ran.
        let _ = write!(out, "{:<pw$}", "geomean");
        for e in 0..self.engines.len() {
            let ratios: Vec<f64> = (0..self.programs.len())
                .filter_map(
                    |p| match (self.ns(p, e), novec.and_then(|n| self.ns(p, n))) {
                        (Some(t), Some(b)) if b > 0.0 && t > 0.0 => Some(t / b),
                        _ => None,
                    },
                )
                .collect();
            let s = if ratios.is_empty() {
                "-".into()
            } else {
                let g = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
                format!("{g:.2}x/{}", ratios.len())
            };
            let _ = write!(out, " {s:>w$}");
        }
        let _ = writeln!(
            out,
            "\n(geomean: over the programs the engine ran, '/N' = how many; compare engines on the same N)"
        );

        let compiling: Vec<usize> = (0..self.engines.len())
            .filter(|e| self.compile_ns.keys().any(|(_, e2)| e2 == e))
            .collect();
        if !compiling.is_empty() {
            let _ = writeln!(
                out,
                "\nLoad / compile time per program (bpfvm-interp: pre-decode, or the runtime's load_object for packet programs, verifier included; JITs: compile; kernel: BPF_PROG_LOAD = verifier + JIT); 'per 1k' = bpfvm-jit's compile time per 1,000 instructions (compute programs: the JIT alone):"
            );
            let _ = write!(out, "{:<pw$} {:>6} {:>9}", "program", "insns", "per 1k");
            for e in &compiling {
                let _ = write!(out, " {:>w$}", short(self.engines[*e].0));
            }
            let _ = writeln!(out);
            let jit = self.engine_index("bpfvm-jit");
            for (p, name) in self.programs.iter().enumerate() {
                let n = self.insns.get(&p).copied().unwrap_or(0);
                let per = match (jit.and_then(|j| self.compile_ns.get(&(p, j))), n) {
                    (Some(c), n) if n > 0 => fmt_ns(*c as f64 * 1000.0 / n as f64),
                    _ => "-".into(),
                };
                let _ = write!(out, "{name:<pw$} {n:>6} {per:>9}");
                for e in &compiling {
                    let s = self
                        .compile_ns
                        .get(&(p, *e))
                        .map(|n| fmt_ns(*n as f64))
                        .unwrap_or("-".into());
                    let _ = write!(out, " {s:>w$}");
                }
                let _ = writeln!(out);
            }
        }

        let _ = writeln!(out, "\nNotes:");
        for (e, notes) in &self.engine_notes {
            for n in notes {
                let _ = writeln!(out, "- {e}: {n}");
            }
        }
        // Group the reasons for cells left out: reason -> engine -> programs.
        let mut why: BTreeMap<String, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
        for ((p, e), o) in &self.cells {
            let reason = match o {
                Outcome::Skipped(s) => s.reason.clone(),
                Outcome::Mismatch { r0, expected } => {
                    format!("MISMATCH: r0 = {r0:#x}, native's = {expected:#x}; cell left out")
                }
                Outcome::Ran(_) => continue,
            };
            why.entry(reason)
                .or_default()
                .entry(self.engines[*e].0)
                .or_default()
                .push(self.programs[*p]);
        }
        for (reason, engines) in &why {
            let who: Vec<String> = engines
                .iter()
                .map(|(e, ps)| {
                    if ps.len() == self.programs.len() {
                        format!("{e} (all)")
                    } else {
                        format!("{e} ({})", ps.join(", "))
                    }
                })
                .collect();
            let _ = writeln!(out, "- not run: {}: {reason}", who.join("; "));
        }
        for n in &self.notes {
            let _ = writeln!(out, "- {n}");
        }
        out
    }

    /// report.json: `{ program: { engine: ns_per_run } }`, report engines only.
    pub fn report_json(&self) -> Value {
        let mut top = Map::new();
        for (p, name) in self.programs.iter().enumerate() {
            let mut row = Map::new();
            for (e, (ename, in_report)) in self.engines.iter().enumerate() {
                if let (true, Some(ns)) = (*in_report, self.ns(p, e)) {
                    row.insert((*ename).into(), Value::from((ns * 10.0).round() / 10.0));
                }
            }
            top.insert((*name).into(), Value::Object(row));
        }
        Value::Object(top)
    }

    /// compile.json: `{ "compile_ns": { program: { engine: ns } } }`.
    pub fn compile_json(&self) -> Value {
        let mut top = Map::new();
        for (p, name) in self.programs.iter().enumerate() {
            let mut row = Map::new();
            for (e, (ename, in_report)) in self.engines.iter().enumerate() {
                if let (true, Some(ns)) = (*in_report, self.compile_ns.get(&(p, e))) {
                    row.insert((*ename).into(), Value::from(*ns));
                }
            }
            top.insert((*name).into(), Value::Object(row));
        }
        let mut wrap = Map::new();
        wrap.insert("compile_ns".into(), Value::Object(top));
        Value::Object(wrap)
    }
}

/// Column titles that fit the table.
fn short(engine: &str) -> &str {
    match engine {
        "bpfvm-interp-checked" => "interp-checkd",
        "bpfvm-jit-checked" => "jit-checked",
        e => e,
    }
}
