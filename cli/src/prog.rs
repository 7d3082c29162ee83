//! `bpfvm prog`: load, list, show, dump, run, pin programs; read the trace pipe.

use crate::client::{self, print_error};
use crate::proto::{self, Command};
use crate::{dispatch, no_more, parse_target, pin_arg, Handler, Opts, OPTIONS_USAGE};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// In bpftool's order, which decides prefixes (`bpfvm prog l` is `list`).
const COMMANDS: &[(&str, Handler)] = &[
    ("show", show),
    ("list", show),
    ("help", help),
    ("dump", dump),
    ("pin", pin),
    ("load", load),
    ("loadall", loadall),
    ("tracelog", tracelog),
    ("run", run),
    ("profile", crate::profile::main),
    ("debug", crate::debug::main),
    ("replay", crate::replay::main),
];

pub fn main(opts: &Opts, args: &[String]) -> i32 {
    dispatch(opts, "prog", COMMANDS, args, usage)
}

/// The usage text (`help`, and the man page: one source, so they cannot drift).
pub fn usage_text() -> String {
    format!(
        "Usage: bpfvm prog {{ show | list }} [PROG]
       bpfvm prog dump xlated PROG [{{ opcodes | visual | linum }}]
       bpfvm prog dump jited  PROG [{{ opcodes | linum }}] [arch {{ x86_64 | aarch64 }}]
       bpfvm prog pin   PROG FILE
       bpfvm prog {{ load | loadall }} OBJ  PATH \\
                         [type TYPE] [pinmaps MAP_DIR] [kconfig FILE] [btf PATH]
       bpfvm prog run PROG \\
                         data_in FILE \\
                         [data_out FILE [data_size_out L]] \\
                         [ctx_in FILE [ctx_out FILE [ctx_size_out M]]] \\
                         [repeat N] [timeout MS] [coverage LCOV_FILE]
       bpfvm prog debug PROG_OR_OBJ data_in FILE [ctx_in FILE] [-x SCRIPT | dap]
       bpfvm prog profile PROG_OR_OBJ {{ data_in FILE [ctx_in FILE] | pcap FILE }} \\
                         [repeat N] [flamegraph SVG] [time MS]
       bpfvm prog replay PROG_OR_OBJ pcap FILE [out FILE] [repeat N] \\
                         [coverage LCOV_FILE] [each]
       bpfvm prog tracelog [--max-lines N] [--timeout SECONDS]
       bpfvm prog help

       PROG := {{ id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME }}
       PROG_OR_OBJ := {{ PROG | OBJECT_FILE [prog NAME] }}
       TYPE := {{ socket | kprobe | kretprobe | classifier | action |
                 tracepoint | raw_tracepoint | xdp | perf_event | cgroup/skb |
                 syscall | ... (the section names libbpf knows) }}
{OPTIONS_USAGE}"
    )
}

pub fn usage() {
    eprintln!("{}", usage_text());
}

fn help(_: &Opts, _: &[String]) -> i32 {
    usage();
    0
}

fn show(opts: &Opts, args: &[String]) -> i32 {
    let target = if args.is_empty() {
        None
    } else {
        let mut i = 0;
        match parse_target(args, &mut i, "PROG").and_then(|t| no_more(args, i).map(|_| t)) {
            Ok(t) => Some(t),
            Err(e) => return print_error(opts, &e),
        }
    };
    client::run(opts, Command::ProgShow { target })
}

fn dump(opts: &Opts, args: &[String]) -> i32 {
    let Some(kind) = args.first() else {
        return print_error(opts, "expected 'xlated' or 'jited'");
    };
    let mut i = 1;
    let target = match parse_target(args, &mut i, "PROG") {
        Ok(t) => t,
        Err(e) => return print_error(opts, &e),
    };
    let jited = "jited".starts_with(kind.as_str());
    let (mut opcodes, mut linum, mut visual) = (false, false, false);
    let mut arch = String::from("x86_64");
    while let Some(w) = args.get(i) {
        match w.as_str() {
            "opcodes" => opcodes = true,
            "linum" => linum = true,
            "visual" if !jited => visual = true,
            "arch" if jited => {
                i += 1;
                match args.get(i) {
                    Some(a) => arch = a.clone(),
                    None => return print_error(opts, "expected an architecture after 'arch'"),
                }
            }
            other => return print_error(opts, &format!("unexpected argument '{other}'")),
        }
        i += 1;
    }
    if jited {
        return client::run(
            opts,
            Command::ProgDumpJited {
                target,
                opcodes,
                linum,
                arch,
            },
        );
    }
    if !"xlated".starts_with(kind.as_str()) {
        return print_error(
            opts,
            &format!("expected 'xlated' or 'jited', got: '{kind}'"),
        );
    }
    client::run(
        opts,
        Command::ProgDumpXlated {
            target,
            opcodes,
            linum,
            visual,
        },
    )
}

fn pin(opts: &Opts, args: &[String]) -> i32 {
    let mut i = 0;
    let target = match parse_target(args, &mut i, "PROG") {
        Ok(t) => t,
        Err(e) => return print_error(opts, &e),
    };
    let Some(path) = args.get(i) else {
        return print_error(opts, "expected a pin path");
    };
    if let Err(e) = no_more(args, i + 1) {
        return print_error(opts, &e);
    }
    client::run(
        opts,
        Command::ProgPin {
            target,
            path: pin_arg(path),
        },
    )
}

fn load(opts: &Opts, args: &[String]) -> i32 {
    load_common(opts, args, false)
}

fn loadall(opts: &Opts, args: &[String]) -> i32 {
    load_common(opts, args, true)
}

fn load_common(opts: &Opts, args: &[String], all: bool) -> i32 {
    let (Some(obj), Some(path)) = (args.first(), args.get(1)) else {
        return print_error(opts, "expected OBJ and PATH");
    };
    let mut prog_type = None;
    let mut pinmaps = None;
    let mut prog_flags = 0u32;
    let mut unprivileged = false;
    let mut kconfig = None;
    let mut target_btf_hex = None;
    let mut i = 2;
    while let Some(w) = args.get(i) {
        let val = args.get(i + 1);
        match (w.as_str(), val) {
            ("type", Some(v)) => prog_type = Some(v.clone()),
            ("pinmaps", Some(v)) => pinmaps = Some(pin_arg(v)),
            ("flags", Some(_)) => {
                match crate::verify::parse_flags(
                    args,
                    i + 1,
                    &["type", "pinmaps", "unprivileged", "kconfig", "btf"],
                ) {
                    Ok((f, next)) => {
                        prog_flags |= f;
                        i = next;
                        continue;
                    }
                    Err(e) => return print_error(opts, &e),
                }
            }
            ("unprivileged", _) => {
                unprivileged = true;
                i += 1;
                continue;
            }
            // bpfvm's own: the kernel config `.kconfig` externs read.
            ("kconfig", Some(v)) => {
                match crate::safefs::read_input_capped(std::path::Path::new(v), MAX_OBJECT) {
                    Ok(b) => match String::from_utf8(b) {
                        Ok(t) => kconfig = Some(t),
                        Err(_) => {
                            return print_error(opts, &format!("kconfig {v}: not UTF-8 text"))
                        }
                    },
                    Err(e) => {
                        return print_error(
                            opts,
                            &format!(
                                "failed to read kconfig {}",
                                crate::render::error_chain(&e)
                            ),
                        )
                    }
                }
            }
            // The CO-RE target BTF (libbpf's btf_custom_path).
            ("btf", Some(v)) => match crate::btf::target_btf(v) {
                Ok((raw, _)) => target_btf_hex = Some(proto::to_hex(&raw)),
                Err(e) => return print_error(opts, &e),
            },
            ("type" | "pinmaps" | "flags" | "kconfig" | "btf", None) => {
                return print_error(opts, &format!("expected a value after '{w}'"))
            }
            (other, _) => {
                return print_error(
                    opts,
                    &format!(
                        "expected no more arguments, 'type', 'pinmaps', 'flags', 'unprivileged', 'kconfig' or 'btf', got: '{other}'"
                    ),
                )
            }
        }
        i += 2;
    }
    let bytes = match crate::safefs::read_input_capped(std::path::Path::new(obj), MAX_OBJECT) {
        Ok(b) => b,
        Err(e) => {
            return print_error(
                opts,
                &format!(
                    "failed to open object file {obj}: {}",
                    crate::render::error_chain(&e)
                ),
            )
        }
    };
    client::run(
        opts,
        Command::ProgLoad {
            file_name: obj.clone(),
            object_hex: proto::to_hex(&bytes),
            path: pin_arg(path),
            all,
            prog_type,
            pinmaps,
            prog_flags,
            unprivileged,
            kconfig,
            target_btf_hex,
        },
    )
}

/// The largest object file or input a command sends (hex-encoded, it must fit
/// in one frame to the daemon).
pub const MAX_OBJECT: u64 = (proto::MAX_MESSAGE as u64 - 4096) / 2;

/// Reads `data_in`/`ctx_in` (or stdin for `-`), refusing more than [`MAX_OBJECT`]
/// bytes before reading them all.
fn read_input(path: &str) -> Result<Vec<u8>, String> {
    if path == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .take(MAX_OBJECT + 1)
            .read_to_end(&mut b)
            .map_err(|e| format!("failed to read stdin: {e}"))?;
        if b.len() as u64 > MAX_OBJECT {
            return Err(format!(
                "stdin: input larger than the {MAX_OBJECT}-byte limit"
            ));
        }
        return Ok(b);
    }
    crate::safefs::read_input_capped(std::path::Path::new(path), MAX_OBJECT)
        .map_err(|e| format!("failed to open {}", crate::render::error_chain(&e)))
}

/// bpftool's hex dump of `data_out -`: offset, 16 bytes in pairs, then ASCII.
pub fn hex_print(data: &[u8]) -> String {
    let mut s = String::new();
    for (row, chunk) in data.chunks(16).enumerate() {
        s.push_str(&format!("{:07x}\t", row * 16));
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => s.push_str(&format!("{b:02x}")),
                None => s.push_str("  "),
            }
            if j % 2 == 1 {
                s.push(' ');
            }
        }
        s.push_str("| ");
        for (j, b) in chunk.iter().enumerate() {
            let c = if (b' '..=b'~').contains(b) {
                *b as char
            } else {
                '.'
            };
            s.push(c);
            if j == 7 {
                s.push(' ');
            }
        }
        s.push('\n');
    }
    s
}

fn run(opts: &Opts, args: &[String]) -> i32 {
    // An object file runs in this process; programs of the daemon run there
    // (with `coverage`, on its observed interpreter).
    let local = !matches!(
        args.first().map(String::as_str),
        Some("id" | "name" | "tag" | "pinned")
    );
    let mut i = 0;
    let source = match crate::session::parse_source(args, &mut i) {
        Ok(t) => t,
        Err(e) => return print_error(opts, &e),
    };
    let (mut data_in, mut data_out, mut ctx_in, mut ctx_out) = (None, None, None, None);
    let (mut data_size_out, mut ctx_size_out) = (None::<usize>, None::<usize>);
    let mut coverage = None;
    let mut repeat = 1u32;
    let mut timeout_ms = None::<u64>;
    while let Some(w) = args.get(i) {
        let Some(v) = args.get(i + 1) else {
            return print_error(opts, &format!("expected a value after '{w}'"));
        };
        let num = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| format!("can't parse {v} as a number"))
        };
        match w.as_str() {
            "data_in" => data_in = Some(v.clone()),
            "data_out" => data_out = Some(v.clone()),
            "ctx_in" => ctx_in = Some(v.clone()),
            "ctx_out" => ctx_out = Some(v.clone()),
            "coverage" => coverage = Some(v.clone()),
            "data_size_out" => match num(v) {
                Ok(n) => data_size_out = Some(n),
                Err(e) => return print_error(opts, &e),
            },
            "ctx_size_out" => match num(v) {
                Ok(n) => ctx_size_out = Some(n),
                Err(e) => return print_error(opts, &e),
            },
            "repeat" => match v.parse() {
                Ok(n) => repeat = n,
                Err(_) => return print_error(opts, &format!("can't parse {v} as repeat")),
            },
            "timeout" => match v.parse() {
                Ok(n) => timeout_ms = Some(n),
                Err(_) => return print_error(opts, &format!("can't parse {v} as a timeout in ms")),
            },
            other => return print_error(opts, &format!("unexpected argument '{other}'")),
        }
        i += 2;
    }
    let d = if local {
        match run_local(
            opts,
            &source,
            data_in.as_deref(),
            ctx_in.as_deref(),
            repeat,
            coverage.as_deref(),
        ) {
            Ok(d) => d,
            Err(e) => return print_error(opts, &e),
        }
    } else {
        let crate::session::ProgSource::Daemon(target) = source else {
            return print_error(opts, "expected PROG");
        };
        let data = match data_in.as_deref().map(read_input) {
            Some(Ok(d)) => d,
            Some(Err(e)) => return print_error(opts, &e),
            None => Vec::new(),
        };
        let ctx = match ctx_in.as_deref().map(read_input) {
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => return print_error(opts, &e),
            None => None,
        };
        // A run may take long: the client waits for it (Ctrl-C ends the client,
        // and the daemon then stops the run), or for its timeout and a margin.
        let wait = timeout_ms.map(|ms| std::time::Duration::from_millis(ms.saturating_add(10_000)));
        let resp = match client::call_waiting(
            opts,
            Command::ProgRun {
                target: target.clone(),
                data_in_hex: proto::to_hex(&data),
                ctx_in_hex: ctx.as_deref().map(proto::to_hex),
                repeat,
                coverage: coverage.is_some(),
                timeout_ms,
            },
            wait,
        ) {
            Ok(r) => r,
            Err(e) => return print_error(opts, &e),
        };
        if !resp.ok {
            return client::print_response(opts, &resp);
        }
        let d = resp.data.unwrap_or_default();
        if let Some(path) = &coverage {
            // The counts are the daemon's; lines come from the program's object.
            let src = crate::session::ProgSource::Daemon(target);
            let written = crate::session::Session::open(opts, &src).and_then(|mut s| {
                let c = crate::counts::Counts::from_json(&s, &d["coverage"])?;
                let name = s.prog.obj().name.clone();
                let t = crate::coverage::from_counts(&mut s, &c, &name);
                crate::coverage::accumulate(path, &t)
            });
            if let Err(e) = written {
                return print_error(opts, &e);
            }
        }
        d
    };
    let bytes = |k: &str| {
        proto::from_hex(d.get(k).and_then(|v| v.as_str()).unwrap_or("")).unwrap_or_default()
    };
    let mut out_data = bytes("data_out_hex");
    let mut out_ctx = bytes("ctx_out_hex");
    if let Some(n) = data_size_out {
        out_data.truncate(n);
    }
    if let Some(n) = ctx_size_out {
        out_ctx.truncate(n);
    }
    let retval = d.get("retval").and_then(|v| v.as_u64()).unwrap_or(0);
    let duration = d.get("duration").and_then(|v| v.as_u64()).unwrap_or(0);
    let mut text = String::new();
    let mut obj = serde_json::Map::new();
    for (name, path, bytes) in [
        ("data_out", &data_out, &out_data),
        ("ctx_out", &ctx_out, &out_ctx),
    ] {
        let Some(path) = path else { continue };
        if path == "-" {
            if opts.json {
                obj.insert(name.into(), serde_json::json!(bytes));
            } else {
                text.push_str(&hex_print(bytes));
            }
        } else if let Err(e) = std::fs::write(path, bytes) {
            return print_error(opts, &format!("failed to write {name} to {path}: {e}"));
        }
    }
    if opts.json {
        obj.insert("retval".into(), serde_json::json!(retval));
        obj.insert("duration".into(), serde_json::json!(duration));
        text = crate::render::json(client::format_of(opts), &serde_json::Value::Object(obj));
    } else {
        let avg = if repeat > 1 { " (average)" } else { "" };
        text.push_str(&format!(
            "Return value: {retval}, duration{avg}: {duration}ns\n"
        ));
    }
    print!("{text}");
    0
}

/// `prog run` of an object file's program, in this process (with
/// `coverage`: observed instruction by instruction, the coverage added to
/// the lcov file). The reply has the daemon's fields.
fn run_local(
    opts: &Opts,
    source: &crate::session::ProgSource,
    data_in: Option<&str>,
    ctx_in: Option<&str>,
    repeat: u32,
    coverage: Option<&str>,
) -> Result<serde_json::Value, String> {
    let mut s = crate::session::Session::open(opts, source)?;
    let mut attr = test_attr(&s, data_in, ctx_in)?;
    attr.repeat = repeat;
    let r = match coverage {
        Some(path) => {
            let mut c = crate::counts::Counts::new(&s);
            let r = s.rt.test_run_observed(&attr, &mut c);
            let name = s.prog.obj().name.clone();
            let t = crate::coverage::from_counts(&mut s, &c, &name);
            crate::coverage::accumulate(path, &t)?;
            r
        }
        None => crate::replay::test_run(&s.rt, attr),
    }
    .map_err(|e| format!("failed to run program: {}", crate::render::error_chain(&e)))?;
    Ok(serde_json::json!({
        "retval": r.retval,
        "duration": r.duration,
        "data_out_hex": proto::to_hex(&r.data_out),
        "ctx_out_hex": proto::to_hex(&r.ctx_out),
    }))
}

/// `prog tracelog`: the trace pipe's lines as they come, until interrupted (or
/// `--max-lines N` lines, or `--timeout SECONDS` without reaching them).
fn tracelog(opts: &Opts, args: &[String]) -> i32 {
    let mut max_lines: Option<usize> = None;
    let mut timeout: Option<Duration> = None;
    let mut i = 0;
    while let Some(w) = args.get(i) {
        let v = args.get(i + 1);
        match (w.as_str(), v) {
            ("--max-lines" | "max_lines", Some(v)) => match v.parse() {
                Ok(n) => max_lines = Some(n),
                Err(_) => return print_error(opts, &format!("can't parse {v} as a line count")),
            },
            ("--timeout" | "timeout", Some(v)) => match v.parse::<f64>() {
                Ok(s) if s >= 0.0 && s.is_finite() => timeout = Some(Duration::from_secs_f64(s)),
                _ => return print_error(opts, &format!("can't parse {v} as seconds")),
            },
            (other, _) => return print_error(opts, &format!("unexpected argument '{other}'")),
        }
        i += 2;
    }
    let dir = match client::state_dir(opts) {
        Ok(d) => d,
        Err(e) => return print_error(opts, &e),
    };
    let mut s = match client::connect_or_start(&dir) {
        Ok(s) => s,
        Err(e) => return print_error(opts, &e),
    };
    let start = Instant::now();
    let mut printed = 0usize;
    let mut out = std::io::stdout();
    loop {
        if max_lines.is_some_and(|m| printed >= m) {
            return 0;
        }
        let wait_ms = match timeout {
            Some(t) => {
                let left = t.saturating_sub(start.elapsed());
                if left.is_zero() {
                    return 0;
                }
                left.as_millis().min(1000) as u64
            }
            None => 1000,
        };
        let req = proto::Request::new(client::format_of(opts), Command::TraceRead { wait_ms });
        let r = match client::exchange(&mut s, &req, Some(client::reply_timeout())) {
            Ok(r) => r,
            Err(e) => return print_error(opts, &e),
        };
        let lines = r
            .data
            .as_ref()
            .and_then(|d| d.get("lines"))
            .and_then(|l| l.as_array())
            .cloned()
            .unwrap_or_default();
        for l in lines {
            if max_lines.is_some_and(|m| printed >= m) {
                break;
            }
            let text = l.as_str().unwrap_or("");
            if out
                .write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .is_err()
            {
                // The reader went away (a closed pipe): stop quietly.
                return 0;
            }
            printed += 1;
        }
    }
}

/// The test run of a program looked at in this process (`debug`, `profile`,
/// `replay`, `run ... coverage`): `data_in` and `ctx_in` read from files.
pub fn test_attr(
    s: &crate::session::Session,
    data_in: Option<&str>,
    ctx_in: Option<&str>,
) -> Result<bpfvm::TestRunAttr, String> {
    let data = match data_in {
        Some(p) => read_input(p)?,
        None => Vec::new(),
    };
    let ctx = match ctx_in {
        Some(p) => Some(read_input(p)?),
        None => None,
    };
    Ok(bpfvm::TestRunAttr {
        prog_id: s.prog.id(),
        data_in: data,
        ctx_in: ctx,
        repeat: 1,
        ..Default::default()
    })
}

/// The name of a program's return value where its type gives it one.
pub fn verdict_name(prog_type: u32, retval: u32) -> Option<&'static str> {
    const XDP: [&str; 5] = [
        "XDP_ABORTED",
        "XDP_DROP",
        "XDP_PASS",
        "XDP_TX",
        "XDP_REDIRECT",
    ];
    const TC: [&str; 9] = [
        "TC_ACT_OK",
        "TC_ACT_RECLASSIFY",
        "TC_ACT_SHOT",
        "TC_ACT_PIPE",
        "TC_ACT_STOLEN",
        "TC_ACT_QUEUED",
        "TC_ACT_REPEAT",
        "TC_ACT_REDIRECT",
        "TC_ACT_TRAP",
    ];
    match prog_type {
        6 => XDP.get(retval as usize).copied(),
        3 | 4 if retval == u32::MAX => Some("TC_ACT_UNSPEC"),
        3 | 4 => TC.get(retval as usize).copied(),
        8 => match retval {
            0 => Some("SK_DROP"),
            1 => Some("SK_PASS"),
            _ => None,
        },
        _ => None,
    }
}
