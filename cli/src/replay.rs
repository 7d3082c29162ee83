//! `bpfvm prog replay PROG pcap IN [out OUT] [repeat N] [coverage FILE] [each]`:
//! every frame of a capture (pcap or pcapng) through the program, as `prog run`
//! runs it (`BPF_PROG_TEST_RUN` with the frame as `data_in`), the verdicts
//! counted (per XDP action, per tc action, or per return value), the frames
//! the program passed, transmitted or redirected written to OUT as it left
//! them, frames per second reported, progress shown on long captures.

use crate::client::print_error;
use crate::counts::Counts;
use crate::session::Session;
use crate::Opts;
use bpfvm_net::{PcapWriter, LINKTYPE_ETHERNET};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Prints `what: N runs (R/s)` to stderr every second once a command has
/// run for two, so long commands show they are alive.
pub fn progress(what: &str, done: u64, started: Instant) {
    thread_local! {
        static LAST: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    let secs = started.elapsed().as_secs();
    if secs < 2 || LAST.with(|l| l.get()) == secs {
        return;
    }
    LAST.with(|l| l.set(secs));
    let rate = done as f64 / started.elapsed().as_secs_f64();
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let _ = write!(err, "\r{what}: {done} frames ({rate:.0}/s)   ");
    } else {
        let _ = writeln!(err, "{what}: {done} frames ({rate:.0}/s)");
    }
    let _ = err.flush();
}

/// Whether a verdict lets the frame go on (written to OUT).
fn leaves(prog_type: u32, retval: u32) -> bool {
    match prog_type {
        // XDP_PASS, XDP_TX, XDP_REDIRECT
        6 => matches!(retval, 2..=4),
        // TC_ACT_OK, TC_ACT_UNSPEC (default action: pass), TC_ACT_REDIRECT
        3 | 4 => matches!(retval, 0 | 7 | u32::MAX),
        // cgroup skb: 1 allows
        8 => retval == 1,
        // socket filters keep retval bytes
        _ => retval != 0,
    }
}

pub fn main(opts: &Opts, args: &[String]) -> i32 {
    match run(opts, args) {
        Ok(c) => c,
        Err(e) => print_error(opts, &e),
    }
}

fn run(opts: &Opts, args: &[String]) -> Result<i32, String> {
    let mut i = 0;
    let src = crate::session::parse_source(args, &mut i)?;
    let (mut pcap, mut out, mut cov, mut ctx_in) = (None, None, None, None);
    let mut repeat = 1u32;
    let mut each = false;
    while let Some(w) = args.get(i) {
        if w == "each" {
            each = true;
            i += 1;
            continue;
        }
        let v = args
            .get(i + 1)
            .ok_or_else(|| format!("expected a value after '{w}'"))?;
        match w.as_str() {
            "pcap" => pcap = Some(v.clone()),
            "out" => out = Some(v.clone()),
            "coverage" => cov = Some(v.clone()),
            "ctx_in" => ctx_in = Some(v.clone()),
            "repeat" => {
                repeat = v
                    .parse()
                    .map_err(|_| format!("can't parse {v} as repeat"))?
            }
            other => return Err(format!("unexpected argument '{other}'")),
        }
        i += 2;
    }
    let pcap = pcap.ok_or("expected 'pcap FILE'")?;
    let mut s = Session::open(opts, &src)?;
    let prog = s.prog.obj().clone();
    if matches!(prog.prog_type, 17 | 31) {
        return Err(format!(
            "program {} is of type {}, which takes no packet: replay needs a program that prog run gives data_in (xdp, socket, tc, cgroup/skb)",
            prog.name,
            bpfvm::prog_type_name(prog.prog_type)
        ));
    }
    let mut writer = match &out {
        Some(p) => {
            let f = std::fs::File::create(p).map_err(|e| format!("cannot create {p}: {e}"))?;
            Some(
                PcapWriter::new(std::io::BufWriter::new(f), LINKTYPE_ETHERNET, 65535)
                    .map_err(|e| format!("cannot write {p}: {e}"))?,
            )
        }
        None => None,
    };
    let mut counts = cov.as_ref().map(|_| Counts::new(&s));
    let mut verdicts: BTreeMap<String, u64> = BTreeMap::new();
    let (mut frames, mut written, mut errors, mut skipped) = (0u64, 0u64, 0u64, 0u64);
    let mut results = Vec::new();
    let mut run_ns: u128 = 0;
    let started = Instant::now();
    for pass in 0..repeat.max(1) {
        let mut f = bpfvm_net::CaptureFile::open(std::path::Path::new(&pcap))
            .map_err(|e| format!("{pcap}: {}", crate::render::error_chain(&e)))?;
        let mut index = 0u64;
        while let Some((lt, rec)) = f
            .next_packet()
            .map_err(|e| format!("{pcap}: {}", crate::render::error_chain(&e)))?
        {
            let n = index;
            index += 1;
            frames += 1;
            if lt != LINKTYPE_ETHERNET {
                skipped += 1;
                if each {
                    results.push(
                        json!({ "frame": n, "error": format!("link type {lt}, not Ethernet") }),
                    );
                }
                continue;
            }
            if (rec.orig_len as usize) > rec.data.len() {
                skipped += 1;
                if each {
                    results.push(json!({ "frame": n, "error": format!("frame cut short by the capture ({} of {} bytes)", rec.data.len(), rec.orig_len) }));
                }
                continue;
            }
            let mut a = crate::prog::test_attr(&s, None, ctx_in.as_deref())?;
            a.data_in = rec.data.clone();
            let t0 = Instant::now();
            let r = match counts.as_mut() {
                Some(c) => s.rt.test_run_observed(&a, c),
                None => test_run(&s.rt, a),
            };
            run_ns += t0.elapsed().as_nanos();
            match r {
                Ok(r) => {
                    let name = crate::prog::verdict_name(prog.prog_type, r.retval)
                        .map_or_else(|| r.retval.to_string(), str::to_string);
                    *verdicts.entry(name.clone()).or_insert(0) += 1;
                    if leaves(prog.prog_type, r.retval) {
                        if let Some(w) = writer.as_mut() {
                            w.write(rec.ts_sec, rec.ts_nsec, &r.data_out).map_err(|e| {
                                format!("cannot write {}: {e}", out.as_deref().unwrap_or(""))
                            })?;
                            written += 1;
                        }
                    }
                    if each && pass == 0 {
                        results.push(json!({ "frame": n, "retval": r.retval, "verdict": name, "len_in": rec.data.len(), "len_out": r.data_out.len() }));
                    }
                }
                Err(e) => {
                    errors += 1;
                    *verdicts.entry("error".into()).or_insert(0) += 1;
                    if each && pass == 0 {
                        results
                            .push(json!({ "frame": n, "error": crate::render::error_chain(&e) }));
                    }
                }
            }
            progress("replay", frames, started);
        }
    }
    if let Some(w) = writer.as_mut() {
        w.flush()
            .map_err(|e| format!("cannot write {}: {e}", out.as_deref().unwrap_or("")))?;
    }
    let elapsed = started.elapsed();
    if started.elapsed().as_secs() >= 2 && std::io::stderr().is_terminal() {
        eprintln!();
    }
    let fps = frames as f64 / elapsed.as_secs_f64().max(1e-9);
    if let (Some(path), Some(c)) = (&cov, &counts) {
        let t = crate::coverage::from_counts(&mut s, c, &prog.name);
        crate::coverage::accumulate(path, &t)?;
    }
    if opts.json {
        let v = json!({
            "name": prog.name,
            "frames": frames,
            "verdicts": verdicts,
            "errors": errors,
            "skipped": skipped,
            "written": written,
            "elapsed_ns": elapsed.as_nanos() as u64,
            "run_ns": run_ns as u64,
            "frames_per_second": fps.round(),
            "engine": if counts.is_some() { "interpreter (observed, for coverage)" } else if prog.is_jited() { "jit" } else { "interpreter" },
            "results": results,
        });
        print!(
            "{}",
            crate::render::json(crate::client::format_of(opts), &v)
        );
        return Ok(0);
    }
    let mut text = String::new();
    if each {
        for r in &results {
            match r.get("verdict") {
                Some(v) => text.push_str(&format!(
                    "frame {}: {} ({} -> {} bytes)\n",
                    r["frame"],
                    v.as_str().unwrap_or(""),
                    r["len_in"],
                    r["len_out"]
                )),
                None => text.push_str(&format!(
                    "frame {}: {}\n",
                    r["frame"],
                    r["error"].as_str().unwrap_or("")
                )),
            }
        }
    }
    text.push_str(&format!("{frames} frames from {pcap}"));
    if repeat > 1 {
        text.push_str(&format!(" ({repeat} passes)"));
    }
    text.push('\n');
    for (k, v) in &verdicts {
        text.push_str(&format!("  {k:<16} {v}\n"));
    }
    if skipped > 0 {
        text.push_str(&format!("  {:<16} {skipped}\n", "not run"));
    }
    if let Some(p) = &out {
        text.push_str(&format!("{written} frames written to {p}\n"));
    }
    text.push_str(&format!(
        "{:.0} frames/s ({:.3} s{})\n",
        fps,
        elapsed.as_secs_f64(),
        if counts.is_some() {
            ", observed interpreter for coverage"
        } else {
            ""
        }
    ));
    print!("{text}");
    Ok(0)
}

/// `BPF_PROG_TEST_RUN`, as `prog run` makes it.
pub fn test_run(
    rt: &bpfvm::Runtime,
    a: bpfvm::TestRunAttr,
) -> Result<bpfvm::TestRunResult, bpfvm::BpfError> {
    match rt.bpf(bpfvm::BpfCmd::ProgTestRun(a))? {
        bpfvm::BpfReply::TestRun(r) => Ok(r),
        other => Err(bpfvm::BpfError::Invalid(format!(
            "unexpected reply {other:?}"
        ))),
    }
}
