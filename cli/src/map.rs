//! `bpfvm map`: show, dump, lookup, update, delete, getnext, create, pin, freeze,
//! event_pipe, and the queue/stack words peek, push, pop, enqueue, dequeue.

use crate::client::{self, print_error};
use crate::proto::Command;
use crate::{dispatch, no_more, parse_target, pin_arg, Handler, Opts, OPTIONS_USAGE};

/// In bpftool's order, which decides prefixes.
const COMMANDS: &[(&str, Handler)] = &[
    ("show", show),
    ("list", show),
    ("help", help),
    ("dump", dump),
    ("update", update),
    ("lookup", lookup),
    ("getnext", getnext),
    ("delete", delete),
    ("pin", pin),
    ("create", create),
    ("freeze", freeze),
    ("event_pipe", event_pipe),
    ("peek", peek),
    ("push", push),
    ("pop", pop),
    ("enqueue", push),
    ("dequeue", pop),
];

pub fn main(opts: &Opts, args: &[String]) -> i32 {
    dispatch(opts, "map", COMMANDS, args, usage)
}

/// The usage text (`help`, and the man page: one source, so they cannot drift).
pub fn usage_text() -> String {
    format!(
        "Usage: bpfvm map {{ show | list }}   [MAP]
       bpfvm map create     FILE type TYPE key KEY_SIZE value VALUE_SIZE \\
                                  entries MAX_ENTRIES name NAME [flags FLAGS] \\
                                  [inner_map MAP] [dev NAME]
       bpfvm map dump       MAP
       bpfvm map update     MAP [key DATA] [value VALUE] [UPDATE_FLAGS]
       bpfvm map lookup     MAP [key DATA]
       bpfvm map getnext    MAP [key DATA]
       bpfvm map delete     MAP  key DATA
       bpfvm map pin        MAP  FILE
       bpfvm map freeze     MAP
       bpfvm map event_pipe MAP [cpu N index M] [--max-events N] [--timeout SECONDS]
       bpfvm map peek       MAP
       bpfvm map push       MAP value VALUE
       bpfvm map pop        MAP
       bpfvm map enqueue    MAP value VALUE
       bpfvm map dequeue    MAP
       bpfvm map help

       MAP := {{ id MAP_ID | pinned FILE | name MAP_NAME }}
       DATA := {{ [hex] BYTES }}
       PROG := {{ id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME }}
       VALUE := {{ DATA | MAP | PROG }}
       UPDATE_FLAGS := {{ any | exist | noexist }}
       TYPE := {{ hash | array | prog_array | perf_event_array | percpu_hash |
                 percpu_array | stack_trace | cgroup_array | lru_hash |
                 lru_percpu_hash | lpm_trie | array_of_maps | hash_of_maps |
                 devmap | devmap_hash | sockmap | cpumap | xskmap | sockhash |
                 cgroup_storage | reuseport_sockarray | percpu_cgroup_storage |
                 queue | stack | sk_storage | ringbuf | bloom_filter }}
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
        match parse_target(args, &mut i, "MAP").and_then(|t| no_more(args, i).map(|_| t)) {
            Ok(t) => Some(t),
            Err(e) => return print_error(opts, &e),
        }
    };
    client::run(opts, Command::MapShow { target })
}

fn one(
    opts: &Opts,
    args: &[String],
    build: impl FnOnce(crate::proto::Target, &[String]) -> Result<Command, String>,
) -> i32 {
    let mut i = 0;
    let cmd = parse_target(args, &mut i, "MAP").and_then(|t| build(t, &args[i..]));
    match cmd {
        Ok(c) => client::run(opts, c),
        Err(e) => print_error(opts, &e),
    }
}

fn dump(opts: &Opts, args: &[String]) -> i32 {
    one(opts, args, |target, rest| {
        no_more(rest, 0)?;
        Ok(Command::MapDump { target })
    })
}

fn map_op(opts: &Opts, args: &[String], op: &str) -> i32 {
    one(opts, args, |target, rest| {
        Ok(Command::MapOp {
            op: op.into(),
            target,
            args: rest.to_vec(),
        })
    })
}

fn update(opts: &Opts, args: &[String]) -> i32 {
    map_op(opts, args, "update")
}
fn lookup(opts: &Opts, args: &[String]) -> i32 {
    map_op(opts, args, "lookup")
}
fn getnext(opts: &Opts, args: &[String]) -> i32 {
    map_op(opts, args, "getnext")
}
fn delete(opts: &Opts, args: &[String]) -> i32 {
    map_op(opts, args, "delete")
}
/// `peek`: a keyless lookup (queue, stack, bloom filter's head).
fn peek(opts: &Opts, args: &[String]) -> i32 {
    keyless_op(opts, args, "lookup")
}
/// `push`/`enqueue`: a keyless update.
fn push(opts: &Opts, args: &[String]) -> i32 {
    keyless_op(opts, args, "update")
}
/// `pop`/`dequeue`: BPF_MAP_LOOKUP_AND_DELETE_ELEM without a key.
fn pop(opts: &Opts, args: &[String]) -> i32 {
    keyless_op(opts, args, "pop")
}

/// The queue/stack words take no `key`; on a map that has keys, bpftool says
/// "did not find key" (peek, push) or "empty map" (pop).
fn keyless_op(opts: &Opts, args: &[String], op: &str) -> i32 {
    one(opts, args, |target, rest| {
        if rest.iter().any(|w| w == "key") {
            return Err("unknown keyword key".into());
        }
        Ok(Command::MapOp {
            op: op.into(),
            target,
            args: rest.to_vec(),
        })
    })
}

fn pin(opts: &Opts, args: &[String]) -> i32 {
    one(opts, args, |target, rest| {
        let path = rest.first().ok_or("expected a pin path")?;
        no_more(rest, 1)?;
        Ok(Command::MapPin {
            target,
            path: pin_arg(path),
        })
    })
}

fn freeze(opts: &Opts, args: &[String]) -> i32 {
    one(opts, args, |target, rest| {
        no_more(rest, 0)?;
        Ok(Command::MapFreeze { target })
    })
}

/// `map event_pipe`: perf events in a perf_event_array (each CPU's slot, or
/// `index` bound to `cpu`) and the records programs write there, in bpftool's
/// layout, until interrupted (or `--max-events`, or `--timeout` seconds).
fn event_pipe(opts: &Opts, args: &[String]) -> i32 {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let mut i = 0;
    let target = match parse_target(args, &mut i, "MAP") {
        Ok(t) => t,
        Err(e) => return print_error(opts, &e),
    };
    let (mut cpu, mut index, mut max, mut timeout) = (None, None, None, None);
    while let Some(w) = args.get(i) {
        let Some(v) = args.get(i + 1) else {
            return print_error(opts, &format!("expected a value after '{w}'"));
        };
        let n = |what: &str| number(v, what);
        match w.as_str() {
            "cpu" => match n("cpu") {
                Ok(x) => cpu = Some(x),
                Err(e) => return print_error(opts, &e),
            },
            "index" => match n("index") {
                Ok(x) => index = Some(x),
                Err(e) => return print_error(opts, &e),
            },
            "--max-events" => match n("event count") {
                Ok(x) => max = Some(x as usize),
                Err(e) => return print_error(opts, &e),
            },
            "--timeout" => match v.parse::<f64>() {
                Ok(s) if s >= 0.0 && s.is_finite() => timeout = Some(Duration::from_secs_f64(s)),
                _ => return print_error(opts, &format!("can't parse {v} as seconds")),
            },
            other => return print_error(opts, &format!("unexpected argument '{other}'")),
        }
        i += 2;
    }
    if cpu.is_some() != index.is_some() {
        return print_error(opts, "cpu and index must be specified together");
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
    let mut out = std::io::stdout();
    let mut printed = 0usize;
    let json = opts.json || opts.pretty;
    if json && out.write_all(b"[").is_err() {
        return 0;
    }
    // A reader that ends on its own closes its perf events, as bpftool's do.
    let finish = |out: &mut std::io::Stdout, s: &mut std::os::unix::net::UnixStream| {
        let req = crate::proto::Request::new(
            client::format_of(opts),
            Command::MapEventPipe {
                target: target.clone(),
                cpu,
                index,
                wait_ms: 0,
                close: true,
            },
        );
        let _ = client::exchange(s, &req, Some(client::reply_timeout()));
        if json {
            let _ = out.write_all(b"]\n");
        }
        0
    };
    loop {
        if max.is_some_and(|m| printed >= m) {
            return finish(&mut out, &mut s);
        }
        let wait_ms = match timeout {
            Some(t) => {
                let left = t.saturating_sub(start.elapsed());
                if left.is_zero() {
                    return finish(&mut out, &mut s);
                }
                left.as_millis().min(1000) as u64
            }
            None => 1000,
        };
        let req = crate::proto::Request::new(
            client::format_of(opts),
            Command::MapEventPipe {
                target: target.clone(),
                cpu,
                index,
                wait_ms,
                close: false,
            },
        );
        let r = match client::exchange(&mut s, &req, Some(client::reply_timeout())) {
            Ok(r) if r.ok => r,
            Ok(r) => return print_error(opts, r.error.as_deref().unwrap_or("event_pipe failed")),
            Err(e) => return print_error(opts, &e),
        };
        let events = r
            .data
            .as_ref()
            .and_then(|d| d.get("events"))
            .and_then(|l| l.as_array())
            .cloned()
            .unwrap_or_default();
        for e in events {
            if max.is_some_and(|m| printed >= m) {
                break;
            }
            let data = crate::proto::from_hex(e["data"].as_str().unwrap_or("")).unwrap_or_default();
            let (c, ix, t) = (
                e["cpu"].as_u64().unwrap_or(0),
                e["index"].as_u64().unwrap_or(0),
                e["timestamp"].as_u64().unwrap_or(0),
            );
            // A perf sample's raw data: the bytes, then zeros up to
            // 8-byte alignment of the record (with its u32 size).
            let mut raw = data.clone();
            raw.resize((raw.len() + 4).div_ceil(8) * 8 - 4, 0);
            let text = if json {
                let bytes: Vec<String> = raw.iter().map(|b| b.to_string()).collect();
                format!(
                    "{}{{\"type\":9,\"cpu\":{c},\"index\":{ix},\"timestamp\":{t},\"data\":[{}]}}",
                    if printed > 0 { "," } else { "" },
                    bytes.join(",")
                )
            } else {
                format!(
                    "== @{}.{:09} CPU: {c} index: {ix} =====\n{}\n",
                    t / 1_000_000_000,
                    t % 1_000_000_000,
                    hex_lines(&raw)
                )
            };
            if out
                .write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .is_err()
            {
                return 0;
            }
            printed += 1;
        }
    }
}

/// bpftool's `fprint_hex` with a space: 16 bytes a line, two spaces after 8.
fn hex_lines(b: &[u8]) -> String {
    let mut s = String::new();
    for (i, x) in b.iter().enumerate() {
        if i > 0 && i % 16 == 0 {
            s.push('\n');
        } else if i > 0 && i % 8 == 0 {
            s.push_str("  ");
        } else if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// A number as bpftool reads sizes and flags (`strtoul(.., 0)`).
fn number(v: &str, what: &str) -> Result<u32, String> {
    let r = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()
    } else if v.len() > 1 && v.starts_with('0') {
        u32::from_str_radix(&v[1..], 8).ok()
    } else {
        v.parse().ok()
    };
    r.ok_or_else(|| format!("can't parse {what} {v}"))
}

fn create(opts: &Opts, args: &[String]) -> i32 {
    let r = (|| -> Result<Command, String> {
        let path = args.first().ok_or("expected a pin path")?;
        let (mut ty, mut key, mut value, mut entries, mut name, mut flags) =
            (None, None, None, None, None, 0);
        let mut inner_map = None;
        let mut i = 1;
        while let Some(w) = args.get(i) {
            let v = args
                .get(i + 1)
                .ok_or_else(|| format!("expected a value after '{w}'"))?;
            match w.as_str() {
                "inner_map" => {
                    let mut j = i + 1;
                    inner_map = Some(crate::parse_target(args, &mut j, "MAP")?);
                    i = j;
                    continue;
                }
                // Offload to a device: no device offloads maps to bpfvm.
                "dev" => {
                    let c = std::ffi::CString::new(v.as_str())
                        .map_err(|_| format!("unrecognized netdevice '{v}'"))?;
                    // SAFETY: a NUL-terminated name; if_nametoindex only reads it.
                    if unsafe { libc::if_nametoindex(c.as_ptr()) } == 0 {
                        return Err(format!("unrecognized netdevice '{v}': No such device"));
                    }
                    return Err("map create failed: Operation not supported".into());
                }
                "type" => ty = Some(v.clone()),
                "key" => key = Some(number(v, "key size")?),
                "value" => value = Some(number(v, "value size")?),
                "entries" => entries = Some(number(v, "max entries")?),
                "name" => name = Some(v.clone()),
                "flags" => flags = number(v, "flags")?,
                other => return Err(format!("unknown arg {other}")),
            }
            i += 2;
        }
        Ok(Command::MapCreate {
            path: pin_arg(path),
            map_type: ty.ok_or("map type not specified")?,
            key: key.ok_or("key size not specified")?,
            value: value.ok_or("value size not specified")?,
            entries: entries.ok_or("max entries not specified")?,
            name: name.ok_or("map name not specified")?,
            flags,
            inner_map,
        })
    })();
    match r {
        Ok(c) => client::run(opts, c),
        Err(e) => print_error(opts, &e),
    }
}
