//! `bpfvm prog profile PROG {data_in FILE | pcap FILE} [repeat N]`: how many
//! times each instruction and source line ran, and the share of time spent
//! there.
//!
//! Counts come from the observed interpreter (exact: every instruction of
//! every run is counted, BPF-to-BPF calls, callbacks and tail calls
//! included). Time comes from the x86-64 JIT by sampling: while the program
//! runs its native code in a loop, a second thread sends this one SIGPROF
//! every 50 us and the handler records the interrupted instruction pointer,
//! which the JIT's address map turns into a BPF instruction. Without native
//! code the share of time is the share of executed instructions, and the
//! output says so. Plain output reads like `perf annotate` (source lines
//! above their instructions, with counts and percentages); `-j` gives the
//! same as JSON; `flamegraph FILE` writes an SVG of instructions by stack of
//! BPF-to-BPF calls.

use crate::client::print_error;
use crate::counts::Counts;
use crate::debug::insn_text;
use crate::session::Session;
use crate::Opts;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Sampled instruction pointers (written by the signal handler).
const MAX_SAMPLES: usize = 1 << 18;
static SAMPLES: [AtomicU64; MAX_SAMPLES] = [const { AtomicU64::new(0) }; MAX_SAMPLES];
static NSAMPLES: AtomicUsize = AtomicUsize::new(0);
const INTERVAL: Duration = Duration::from_micros(50);
/// Runs per test run while sampling (at least).
const SAMPLE_REPEAT: u32 = 100;

extern "C" fn on_sigprof(_: libc::c_int, _: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: the kernel passes a ucontext_t to SA_SIGINFO handlers; reading
    // it and storing into atomics is async-signal-safe.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        let uc = &*(uc as *const libc::ucontext_t);
        let rip = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as u64;
        let i = NSAMPLES.fetch_add(1, Ordering::Relaxed);
        if i < MAX_SAMPLES {
            SAMPLES[i].store(rip, Ordering::Relaxed);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = uc;
}

/// What sampling found.
pub struct Sampled {
    /// Per slot of the main program.
    pub per_slot: Vec<u64>,
    pub total: u64,
    /// Samples outside the program's instructions (entry code, helpers, the
    /// runtime), and in its out-of-line paths.
    pub outside: u64,
    pub runs: u64,
    pub elapsed: Duration,
    pub ns_per_run: f64,
}

/// Runs the program on the JIT for at least `min` and samples where it is.
fn sample_jit(
    s: &Session,
    inputs: &[bpfvm::TestRunAttr],
    min: Duration,
) -> Result<Option<Sampled>, String> {
    let Some(jit) = s.prog.obj().jited() else {
        return Ok(None);
    };
    if !cfg!(target_arch = "x86_64") {
        return Ok(None);
    }
    let code = jit.code();
    let (base, len) = (code.as_ptr() as u64, code.len() as u64);
    let offsets = jit.insn_offsets().to_vec();
    let ool = jit.out_of_line_offset() as u64;
    NSAMPLES.store(0, Ordering::Relaxed);
    // SAFETY: installing a handler that only touches atomics; the previous
    // action is restored below.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigprof as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGPROF, &sa, &mut old) != 0 {
            return Err("cannot install the SIGPROF handler".into());
        }
    }
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::pid_t;
    let pid = std::process::id() as libc::pid_t;
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let sampler = std::thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            std::thread::sleep(INTERVAL);
            // SAFETY: signals this process's profiled thread, which has a handler.
            unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGPROF) };
        }
    });
    let start = Instant::now();
    let mut runs = 0u64;
    let mut err = None;
    'outer: while start.elapsed() < min {
        for a in inputs {
            let mut a = a.clone();
            // Runs of one input back to back, so that the program's code,
            // not the test run's setup, is what the samples see (as with
            // `repeat`, the packet buffer is reused between them).
            a.repeat = a.repeat.max(SAMPLE_REPEAT);
            if let Err(e) = s.rt.bpf(bpfvm::BpfCmd::ProgTestRun(a.clone())) {
                err = Some(crate::render::error_chain(&e));
                break 'outer;
            }
            runs += a.repeat as u64;
        }
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    // SAFETY: restores the action saved above.
    unsafe { libc::sigaction(libc::SIGPROF, &old, std::ptr::null_mut()) };
    if let Some(e) = err {
        return Err(format!("JIT run failed: {e}"));
    }
    let n = NSAMPLES.load(Ordering::Relaxed).min(MAX_SAMPLES);
    let mut per_slot = vec![0u64; offsets.len()];
    let mut outside = 0;
    let first = offsets.first().copied().unwrap_or(0) as u64;
    for sm in SAMPLES.iter().take(n) {
        let rip = sm.load(Ordering::Relaxed);
        if rip < base || rip >= base + len {
            outside += 1;
            continue;
        }
        let off = rip - base;
        if off < first || off >= ool {
            outside += 1;
            continue;
        }
        // The last slot whose code starts at or before the address.
        let k = offsets
            .partition_point(|o| (*o as u64) <= off)
            .saturating_sub(1);
        // Both slots of an LD_IMM64 start at the same offset: the first one.
        let mut k = k;
        while k > 0 && offsets[k - 1] == offsets[k] {
            k -= 1;
        }
        per_slot[k] += 1;
    }
    Ok(Some(Sampled {
        per_slot,
        total: n as u64,
        outside,
        runs,
        elapsed,
        ns_per_run: elapsed.as_nanos() as f64 / runs.max(1) as f64,
    }))
}

/// The inputs of a profile or replay: one `data_in`/`ctx_in`, or every frame
/// of a capture.
pub fn inputs(
    s: &Session,
    data_in: Option<&str>,
    ctx_in: Option<&str>,
    pcap: Option<&str>,
) -> Result<Vec<bpfvm::TestRunAttr>, String> {
    if let Some(p) = pcap {
        let mut f = bpfvm_net::CaptureFile::open(std::path::Path::new(p))
            .map_err(|e| format!("{p}: {}", crate::render::error_chain(&e)))?;
        let mut v = Vec::new();
        while let Some((_, r)) = f
            .next_packet()
            .map_err(|e| format!("{p}: {}", crate::render::error_chain(&e)))?
        {
            let mut a = crate::prog::test_attr(s, None, ctx_in)?;
            a.data_in = r.data;
            v.push(a);
        }
        return Ok(v);
    }
    Ok(vec![crate::prog::test_attr(s, data_in, ctx_in)?])
}

pub fn main(opts: &Opts, args: &[String]) -> i32 {
    match run(opts, args) {
        Ok(code) => code,
        Err(e) => print_error(opts, &e),
    }
}

fn run(opts: &Opts, args: &[String]) -> Result<i32, String> {
    let mut i = 0;
    let src = crate::session::parse_source(args, &mut i)?;
    let (mut data_in, mut ctx_in, mut pcap, mut svg) = (None, None, None, None);
    let mut repeat = 1u32;
    let mut min_ms = 300u64;
    while let Some(w) = args.get(i) {
        let v = args
            .get(i + 1)
            .ok_or_else(|| format!("expected a value after '{w}'"))?;
        match w.as_str() {
            "data_in" => data_in = Some(v.clone()),
            "ctx_in" => ctx_in = Some(v.clone()),
            "pcap" => pcap = Some(v.clone()),
            "flamegraph" => svg = Some(v.clone()),
            "repeat" => {
                repeat = v
                    .parse()
                    .map_err(|_| format!("can't parse {v} as repeat"))?
            }
            "time" => {
                min_ms = v
                    .parse()
                    .map_err(|_| format!("can't parse {v} as milliseconds"))?
            }
            other => return Err(format!("unexpected argument '{other}'")),
        }
        i += 2;
    }
    let s = Session::open(opts, &src)?;
    let mut inputs = inputs(&s, data_in.as_deref(), ctx_in.as_deref(), pcap.as_deref())?;
    for a in &mut inputs {
        a.repeat = repeat.max(1);
    }
    // Counts: the observed interpreter.
    let mut c = Counts::new(&s);
    let started = Instant::now();
    let mut errors = 0;
    for a in &inputs {
        if s.rt.test_run_observed(a, &mut c).is_err() {
            errors += 1;
        }
        crate::replay::progress("profile", c.runs, started);
    }
    // Time: the JIT, sampled.
    let sampled = if min_ms > 0 {
        sample_jit(&s, &inputs, Duration::from_millis(min_ms))?
    } else {
        None
    };
    let mut s = s;
    if let Some(path) = &svg {
        let svg_text = flamegraph(&c, &s.prog.obj().name);
        std::fs::write(path, svg_text).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    let report = Report::new(&mut s, &c, sampled.as_ref(), errors);
    if opts.json {
        print!(
            "{}",
            crate::render::json(crate::client::format_of(opts), &report.json())
        );
    } else {
        print!("{}", report.text());
    }
    Ok(0)
}

struct Row {
    slot: usize,
    count: u64,
    time: f64,
    text: String,
}

struct LineRow {
    file: String,
    line: u32,
    text: String,
    /// Times the line ran (the count of the instruction it starts at).
    count: u64,
    /// Instructions executed on it.
    insns: u64,
    time: f64,
    rows: Vec<Row>,
}

struct Report {
    prog: String,
    prog_type: String,
    runs: u64,
    total: u64,
    errors: u64,
    timing: serde_json::Value,
    time_label: String,
    /// Functions in order, each with its lines in slot order.
    funcs: Vec<(String, Vec<LineRow>)>,
    stacks: Vec<(String, u64)>,
    other_progs: Vec<(String, u64)>,
}

impl Report {
    fn new(s: &mut Session, c: &Counts, sm: Option<&Sampled>, errors: u64) -> Report {
        let main = &c.progs[0];
        let p = main.prog.clone();
        let total_main: u64 = main.insn.iter().sum();
        // Time share per slot.
        let time: Vec<f64> = match sm {
            Some(sm) if sm.total > 0 => sm
                .per_slot
                .iter()
                .map(|n| *n as f64 / sm.total as f64)
                .collect(),
            _ => main
                .insn
                .iter()
                .map(|n| *n as f64 / total_main.max(1) as f64)
                .collect(),
        };
        let (timing, time_label) = match sm {
            Some(sm) => (
                json!({
                    "method": "sampling",
                    "engine": "jit",
                    "interval_us": INTERVAL.as_micros() as u64,
                    "samples": sm.total,
                    "outside_program": sm.outside,
                    "runs": sm.runs,
                    "ns_per_run": (sm.ns_per_run * 10.0).round() / 10.0,
                }),
                format!(
                    "time%: x86-64 JIT, sampled: {} samples every {} us over {} runs ({:.1} ns per run); {:.1}% of samples outside the program's instructions (entry code, helpers, runtime)",
                    sm.total,
                    INTERVAL.as_micros(),
                    sm.runs,
                    sm.ns_per_run,
                    100.0 * sm.outside as f64 / sm.total.max(1) as f64
                ),
            ),
            None => (
                json!({ "method": "instruction counts", "engine": "interpreter" }),
                "time%: share of executed instructions (no native code to sample: the JIT is off or the host is not x86-64)".to_string(),
            ),
        };
        let obj_dir = s.obj_dir.clone();
        let mut funcs: Vec<(String, Vec<LineRow>)> = Vec::new();
        let mut cur_func = usize::MAX;
        let mut slot = 0;
        while slot < main.insn.len() {
            let Ok(d) = bpfvm::isa::decode_at(&p.xlated, slot) else {
                slot += 1;
                continue;
            };
            let (fi, fname) = main.src.func(slot);
            if fi != cur_func {
                cur_func = fi;
                funcs.push((fname.to_string(), Vec::new()));
            }
            let line = main.src.line(slot).cloned();
            let lines = &mut funcs.last_mut().expect("pushed above").1;
            let same = lines.last().is_some_and(|l: &LineRow| {
                line.as_ref()
                    .is_some_and(|x| x.file == l.file && x.line == l.line)
                    || (line.is_none() && l.line == 0)
            });
            if !same {
                let (file, num) = line
                    .clone()
                    .map_or((String::new(), 0), |l| (l.file, l.line));
                let text = line
                    .as_ref()
                    .and_then(|l| s.sources.line(&l.file, l.line, obj_dir.as_deref()))
                    .or_else(|| {
                        line.as_ref()
                            .and_then(|l| main.src.btf_text(l).map(str::to_string))
                    })
                    .unwrap_or_default();
                lines.push(LineRow {
                    file,
                    line: num,
                    text: text.trim().to_string(),
                    count: 0,
                    insns: 0,
                    time: 0.0,
                    rows: Vec::new(),
                });
            }
            let l = lines.last_mut().expect("pushed above");
            let n = main.insn[slot];
            if l.rows.is_empty() {
                // The line ran as often as the instruction it starts at.
                l.count = n;
            }
            l.insns += n;
            l.time += time[slot];
            l.rows.push(Row {
                slot,
                count: n,
                time: time[slot],
                text: insn_text(&p, slot),
            });
            slot += d.slots();
        }
        // Stacks of BPF-to-BPF calls, by name.
        let mut stacks: BTreeMap<String, u64> = BTreeMap::new();
        for (k, n) in &c.stacks {
            let names: Vec<String> = k
                .iter()
                .map(|(pi, fi)| {
                    let pc = &c.progs[*pi as usize];
                    let f = pc.src.funcs.get(*fi as usize).map_or("?", |f| f.1.as_str());
                    if *pi == 0 {
                        f.to_string()
                    } else {
                        format!("{}:{f}", pc.prog.name)
                    }
                })
                .collect();
            *stacks.entry(names.join(";")).or_insert(0) += n;
        }
        let other_progs = c.progs[1..]
            .iter()
            .map(|pc| (pc.prog.name.clone(), pc.insn.iter().sum()))
            .collect();
        Report {
            prog: p.name.clone(),
            prog_type: bpfvm::prog_type_name(p.prog_type).to_string(),
            runs: c.runs,
            total: c.total,
            errors,
            timing,
            time_label,
            funcs,
            stacks: stacks.into_iter().collect(),
            other_progs,
        }
    }

    fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Profile of {} ({}): {} runs, {} instructions executed{}",
            self.prog,
            self.prog_type,
            self.runs,
            self.total,
            if self.errors > 0 {
                format!(", {} runs failed", self.errors)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            s,
            "count: instructions executed, counted on the interpreter (exact)"
        );
        let _ = writeln!(s, "{}", self.time_label);
        for (name, lines) in &self.funcs {
            let _ = writeln!(
                s,
                "\n Percent |     count | Source code & Disassembly of {name}"
            );
            let _ = writeln!(
                s,
                "---------------------------------------------------------------"
            );
            for l in lines {
                if l.line != 0 {
                    let _ = writeln!(
                        s,
                        " {:>6.2}% | {:>9} | {}:{}  {}",
                        100.0 * l.time,
                        l.count,
                        l.file,
                        l.line,
                        l.text
                    );
                }
                for r in &l.rows {
                    let _ = writeln!(
                        s,
                        " {:>6.2}% | {:>9} |     {:>4}: {}",
                        100.0 * r.time,
                        r.count,
                        r.slot,
                        r.text
                    );
                }
            }
        }
        let mut hot: Vec<&LineRow> = self
            .funcs
            .iter()
            .flat_map(|f| &f.1)
            .filter(|l| l.line != 0)
            .collect();
        hot.sort_by(|a, b| b.time.total_cmp(&a.time).then(b.insns.cmp(&a.insns)));
        let _ = writeln!(s, "\nHottest source lines:");
        for l in hot.iter().take(10) {
            let _ = writeln!(
                s,
                " {:>6.2}%  {:>9} insns  {}:{}  {}",
                100.0 * l.time,
                l.insns,
                l.file,
                l.line,
                l.text
            );
        }
        for (n, c) in &self.other_progs {
            let _ = writeln!(s, "Tail-called program {n}: {c} instructions");
        }
        s
    }

    fn json(&self) -> serde_json::Value {
        let lines: Vec<serde_json::Value> = self
            .funcs
            .iter()
            .flat_map(|(f, ls)| {
                ls.iter().map(move |l| {
                    json!({
                        "function": f, "file": l.file, "line": l.line, "source": l.text,
                        "count": l.count, "insns": l.insns, "time_share": l.time,
                    })
                })
            })
            .collect();
        let insns: Vec<serde_json::Value> = self
            .funcs
            .iter()
            .flat_map(|(f, ls)| {
                ls.iter().flat_map(move |l| {
                    l.rows.iter().map(move |r| {
                        json!({
                            "insn": r.slot, "function": f, "file": l.file, "line": l.line,
                            "count": r.count, "time_share": r.time, "text": r.text,
                        })
                    })
                })
            })
            .collect();
        let stacks: Vec<serde_json::Value> = self
            .stacks
            .iter()
            .map(|(k, n)| json!({ "stack": k, "count": n }))
            .collect();
        json!({
            "name": self.prog,
            "type": self.prog_type,
            "runs": self.runs,
            "instructions": self.total,
            "failed_runs": self.errors,
            "counts": "interpreter",
            "timing": self.timing,
            "lines": lines,
            "insns": insns,
            "stacks": stacks,
        })
    }
}

/// A flame graph (SVG) of instructions executed per stack of BPF-to-BPF calls.
pub fn flamegraph(c: &Counts, title: &str) -> String {
    // Build the tree: (frames) -> count, then lay out children by name.
    #[derive(Default)]
    struct Node {
        total: u64,
        children: BTreeMap<String, Node>,
    }
    let mut root = Node::default();
    for (k, n) in &c.stacks {
        let mut node = &mut root;
        node.total += n;
        for (pi, fi) in k {
            let pc = &c.progs[*pi as usize];
            let f = pc.src.funcs.get(*fi as usize).map_or("?", |f| f.1.as_str());
            let name = if *pi == 0 {
                f.to_string()
            } else {
                format!("{}:{f}", pc.prog.name)
            };
            node = node.children.entry(name).or_default();
            node.total += n;
        }
    }
    fn depth(n: &Node) -> usize {
        1 + n.children.values().map(depth).max().unwrap_or(0)
    }
    let (width, row) = (1200.0f64, 18.0f64);
    let levels = depth(&root);
    let height = row * levels as f64 + 50.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<?xml version="1.0" standalone="no"?>
<svg version="1.1" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">
<style>text {{ font-family: monospace; font-size: 12px; }} rect:hover {{ stroke: black; }}</style>
<rect x="0" y="0" width="{width}" height="{height}" fill="#f8f8f8"/>
<text x="{}" y="20" text-anchor="middle" font-size="16">Flame graph of {} (instructions executed, {} total)</text>"##,
        width / 2.0,
        xml(title),
        root.total
    );
    #[allow(clippy::too_many_arguments)]
    fn emit(
        out: &mut String,
        name: &str,
        n: &Node,
        x: f64,
        level: usize,
        scale: f64,
        height: f64,
        row: f64,
        total: u64,
    ) {
        let w = n.total as f64 * scale;
        let y = height - row * (level as f64 + 1.0) - 4.0;
        if level > 0 && w >= 0.5 {
            // Warm colours from the name, so a function keeps its colour.
            let h = name
                .bytes()
                .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
            let (r, g, b) = (205 + h % 50, 80 + (h / 50) % 120, 40 + (h / 6000) % 40);
            let pct = 100.0 * n.total as f64 / total.max(1) as f64;
            let _ = writeln!(
                out,
                r#"<g><title>{} ({} instructions, {pct:.2}%)</title><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{:.1}" fill="rgb({r},{g},{b})" rx="2"/>"#,
                xml(name),
                n.total,
                row - 1.0
            );
            let chars = ((w - 6.0) / 7.0).max(0.0) as usize;
            if chars >= 3 {
                let label: String = if name.chars().count() > chars {
                    name.chars()
                        .take(chars.saturating_sub(2))
                        .collect::<String>()
                        + ".."
                } else {
                    name.to_string()
                };
                let _ = writeln!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                    x + 3.0,
                    y + row - 5.0,
                    xml(&label)
                );
            }
            out.push_str("</g>\n");
        }
        let mut cx = x;
        for (cn, c) in &n.children {
            emit(out, cn, c, cx, level + 1, scale, height, row, total);
            cx += c.total as f64 * scale;
        }
    }
    let scale = (width - 20.0) / root.total.max(1) as f64;
    let mut body = String::new();
    let mut cx = 10.0;
    for (cn, c) in &root.children {
        emit(
            &mut body,
            cn,
            c,
            cx,
            1,
            scale,
            height - row,
            row,
            root.total,
        );
        cx += c.total as f64 * scale;
    }
    out.push_str(&body);
    out.push_str("</svg>\n");
    out
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
