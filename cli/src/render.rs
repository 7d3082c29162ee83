//! bpftool's output formats, plain and JSON, for what the daemon answers:
//! `prog show`, `map show`, `map dump|lookup|update|delete|getnext`, `btf show|dump`.

use crate::proto::{Format, Response, Target, PROTO_VERSION};
use bpfvm::btf::{
    dump_btf_json, dump_btf_plain, hex_byte_array, map_entry_dump, write_bpftool_compact,
    write_bpftool_pretty, Btf, DumpMode, Dumped, MapValues,
};
use bpfvm::maps::RawMap;
use bpfvm::{BpfCmd, BpfError, BpfReply, MapInfo, MapObj, ProgInfo, Runtime};
use serde_json::{json, Map, Value};
use std::fmt::Write as _;

/// A value as `-j` or `-p` prints it.
pub fn json(f: Format, v: &Value) -> String {
    if f == Format::Pretty {
        write_bpftool_pretty(v)
    } else {
        write_bpftool_compact(v)
    }
}

fn dumped(f: Format, d: &Dumped) -> String {
    if f == Format::Pretty {
        d.to_bpftool_pretty()
    } else {
        d.to_bpftool_compact()
    }
}

/// An error and its causes: `a: b: c`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            let _ = write!(s, ": {t}");
        }
        cur = c.source();
    }
    s
}

/// A failed load as libbpf reports it: the error, then the verifier's log between
/// libbpf's markers when the verifier refused a program.
pub fn load_error(e: &BpfError) -> String {
    let mut s = error_chain(e);
    if let BpfError::Verifier { name, source } = e {
        let log = &source.log;
        if !log.is_empty() {
            let _ = write!(
                s,
                "\nprog '{name}': -- BEGIN PROG LOAD LOG --\n{}{}-- END PROG LOAD LOG --",
                log,
                if log.ends_with('\n') { "" } else { "\n" }
            );
        }
    }
    s
}

/// `strerror(errno)` of a runtime error, as bpftool reports syscall failures.
pub fn errno_text(e: &BpfError) -> String {
    strerror(e.errno())
}

pub fn strerror(errno: i32) -> String {
    // SAFETY: strerror returns a pointer to a static (or thread-local) string.
    let p = unsafe { libc::strerror(errno) };
    if p.is_null() {
        return format!("errno {errno}");
    }
    // SAFETY: non-null, NUL-terminated.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

/// `2026-11-25T13:50:17+0000`: local time, as bpftool prints `loaded_at`.
pub fn local_time(secs: u64) -> String {
    let t = secs as libc::time_t;
    // SAFETY: zeroed tm is a valid out-parameter for localtime_r.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return secs.to_string();
    }
    let off = tm.tm_gmtoff;
    let sign = if off < 0 { '-' } else { '+' };
    let off = off.abs();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{sign}{:02}{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        off / 3600,
        (off % 3600) / 60
    )
}

fn prog_json(i: &ProgInfo) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(i.id));
    o.insert("type".into(), json!(i.prog_type));
    if !i.name.is_empty() {
        o.insert("name".into(), json!(i.name));
    }
    o.insert("tag".into(), json!(i.tag));
    o.insert("gpl_compatible".into(), json!(i.gpl_compatible));
    o.insert("loaded_at".into(), json!(i.loaded_at));
    o.insert("uid".into(), json!(i.uid));
    o.insert("bytes_xlated".into(), json!(i.bytes_xlated));
    o.insert("jited".into(), json!(i.jited));
    if i.jited {
        o.insert("bytes_jited".into(), json!(i.bytes_jited));
    }
    o.insert("bytes_memlock".into(), json!(i.bytes_memlock));
    if !i.map_ids.is_empty() {
        o.insert("map_ids".into(), json!(i.map_ids));
    }
    if let Some(b) = i.btf_id {
        o.insert("btf_id".into(), json!(b));
    }
    Value::Object(o)
}

fn prog_plain(i: &ProgInfo, out: &mut String) {
    let _ = write!(out, "{}: {}  ", i.id, i.prog_type);
    if !i.name.is_empty() {
        let _ = write!(out, "name {}  ", i.name);
    }
    let _ = write!(out, "tag {}", i.tag);
    if i.gpl_compatible {
        out.push_str("  gpl");
    }
    let _ = write!(
        out,
        "\n\tloaded_at {}  uid {}",
        local_time(i.loaded_at),
        i.uid
    );
    let _ = write!(out, "\n\txlated {}B", i.bytes_xlated);
    if i.jited {
        let _ = write!(out, "  jited {}B", i.bytes_jited);
    } else {
        out.push_str("  not jited");
    }
    let _ = write!(out, "  memlock {}B", i.bytes_memlock);
    if !i.map_ids.is_empty() {
        let ids: Vec<String> = i.map_ids.iter().map(|x| x.to_string()).collect();
        let _ = write!(out, "  map_ids {}", ids.join(","));
    }
    if let Some(b) = i.btf_id {
        let _ = write!(out, "\n\tbtf_id {b}");
    }
    out.push('\n');
}

/// `prog show`: one object for a single match, else an array (JSON).
pub fn progs(f: Format, infos: &[ProgInfo], single: bool) -> String {
    if f.is_json() {
        let v = if single && infos.len() == 1 {
            prog_json(&infos[0])
        } else {
            Value::Array(infos.iter().map(prog_json).collect())
        };
        return json(f, &v);
    }
    let mut out = String::new();
    for i in infos {
        prog_plain(i, &mut out);
    }
    out
}

fn map_json(m: &MapInfo) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(m.id));
    o.insert("type".into(), json!(m.map_type));
    if !m.name.is_empty() {
        o.insert("name".into(), json!(m.name));
    }
    o.insert("flags".into(), json!(m.flags));
    o.insert("bytes_key".into(), json!(m.bytes_key));
    o.insert("bytes_value".into(), json!(m.bytes_value));
    o.insert("max_entries".into(), json!(m.max_entries));
    o.insert("bytes_memlock".into(), json!(m.bytes_memlock));
    o.insert("frozen".into(), json!(u32::from(m.frozen)));
    if let Some(b) = m.btf_id {
        o.insert("btf_id".into(), json!(b));
    }
    Value::Object(o)
}

fn map_plain(m: &MapInfo, out: &mut String) {
    let _ = write!(out, "{}: {}  ", m.id, m.map_type);
    if !m.name.is_empty() {
        let _ = write!(out, "name {}  ", m.name);
    }
    let _ = write!(out, "flags {:#x}", m.flags);
    let _ = write!(
        out,
        "\n\tkey {}B  value {}B  max_entries {}  memlock {}B",
        m.bytes_key, m.bytes_value, m.max_entries, m.bytes_memlock
    );
    if m.frozen || m.btf_id.is_some() {
        out.push_str("\n\t");
    }
    if let Some(b) = m.btf_id {
        let _ = write!(out, "btf_id {b}");
    }
    if m.frozen {
        out.push_str(if m.btf_id.is_some() {
            "  frozen"
        } else {
            "frozen"
        });
    }
    out.push('\n');
}

/// `net list`: bpftool's layout (XDP only; tc and flow_dissector are empty).
pub fn net_list(f: Format, items: &[crate::proto::NetAttachment]) -> String {
    if f.is_json() {
        let xdp: Vec<Value> = items
            .iter()
            .map(
                |a| json!({"devname": a.devname, "ifindex": a.ifindex, "mode": a.mode, "id": a.id}),
            )
            .collect();
        let v = json!([{ "xdp": xdp, "tc": [], "flow_dissector": [] }]);
        return json(f, &v);
    }
    let mut out = String::from("xdp:\n");
    for a in items {
        let _ = writeln!(out, "{}({}) {} id {}", a.devname, a.ifindex, a.mode, a.id);
    }
    out.push_str("\ntc:\n\nflow_dissector:\n\n");
    out
}

/// Renders a typed result of the daemon.
pub fn listing(f: Format, l: &crate::proto::Listing) -> String {
    use crate::proto::Listing;
    match l {
        Listing::Progs { single, items } => progs(f, items, *single),
        Listing::Maps { single, items } => maps(f, items, *single),
        Listing::Net { items } => net_list(f, items),
    }
}

/// `map show`.
pub fn maps(f: Format, maps: &[MapInfo], single: bool) -> String {
    if f.is_json() {
        let v = if single && maps.len() == 1 {
            map_json(&maps[0])
        } else {
            Value::Array(maps.iter().map(map_json).collect())
        };
        return json(f, &v);
    }
    let mut out = String::new();
    for m in maps {
        map_plain(m, &mut out);
    }
    out
}

fn hex_spaced(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A map's value as user space sees it, split per CPU for per-CPU maps.
fn split_values(m: &MapObj, v: &[u8]) -> Vec<Vec<u8>> {
    let vs = m.attr().value_size as usize;
    if !m.map_type().is_percpu() {
        return vec![v[..vs.min(v.len())].to_vec()];
    }
    let step = vs.next_multiple_of(8).max(1);
    v.chunks(step)
        .map(|c| c[..vs.min(c.len())].to_vec())
        .collect()
}

fn has_btf(m: &MapObj) -> Option<&Btf> {
    match &m.btf {
        Some(b) if m.btf_value_type_id != 0 => Some(&b.btf),
        _ => None,
    }
}

/// The entry as bpftool's `-j` prints it: raw bytes, and `formatted` with BTF.
fn entry_json(m: &MapObj, key: &[u8], value: &[u8]) -> Dumped {
    let per = split_values(m, value);
    let percpu = m.map_type().is_percpu();
    let mut fields = vec![("key".to_string(), hex_byte_array(key))];
    if percpu {
        let items = per
            .iter()
            .enumerate()
            .map(|(cpu, v)| {
                Dumped::Object(vec![
                    ("cpu".into(), Dumped::Raw(cpu.to_string())),
                    ("value".into(), hex_byte_array(v)),
                ])
            })
            .collect();
        fields.push(("values".into(), Dumped::Array(items)));
    } else {
        fields.push(("value".into(), hex_byte_array(&per[0])));
    }
    if let Some(btf) = has_btf(m) {
        let slices: Vec<&[u8]> = per.iter().map(|v| &v[..]).collect();
        let values = if percpu {
            MapValues::PerCpu(&slices)
        } else {
            MapValues::Single(slices[0])
        };
        let d = map_entry_dump(
            btf,
            m.btf_key_type_id,
            m.btf_value_type_id,
            key,
            values,
            DumpMode::Json,
        );
        fields.push(("formatted".into(), d.value));
    }
    Dumped::Object(fields)
}

/// The entry in the plain BTF form.
fn entry_btf_plain(m: &MapObj, btf: &Btf, key: &[u8], value: &[u8]) -> Dumped {
    let per = split_values(m, value);
    let slices: Vec<&[u8]> = per.iter().map(|v| &v[..]).collect();
    let values = if m.map_type().is_percpu() {
        MapValues::PerCpu(&slices)
    } else {
        MapValues::Single(slices[0])
    };
    map_entry_dump(
        btf,
        m.btf_key_type_id,
        m.btf_value_type_id,
        key,
        values,
        DumpMode::Plain,
    )
    .value
}

/// The entry in the plain hex form (`key: 00 00 00 00  value: 19 01 00 00`).
fn entry_hex_plain(m: &MapObj, key: &[u8], value: &[u8], out: &mut String) {
    let a = m.attr();
    let per = split_values(m, value);
    if m.map_type().is_percpu() {
        let _ = writeln!(out, "key:\n{}", hex_spaced(key));
        for (cpu, v) in per.iter().enumerate() {
            let sep = if a.value_size > 16 { '\n' } else { ' ' };
            let _ = writeln!(out, "value (CPU {cpu:02}):{sep}{}", hex_spaced(v));
        }
        return;
    }
    let break_names = a.key_size > 16 || a.value_size > 16;
    let single_line = a.key_size + a.value_size <= 24 && !break_names;
    let sep = if break_names { '\n' } else { ' ' };
    let _ = write!(out, "key:{sep}{}", hex_spaced(key));
    out.push_str(if single_line { "  " } else { "\n" });
    let _ = writeln!(out, "value:{sep}{}", hex_spaced(&per[0]));
}

/// Every (key, value) of a map, in `get_next_key` order.
/// A map entry: key and value bytes.
type Entry = (Vec<u8>, Vec<u8>);

fn entries(rt: &Runtime, m: &MapObj) -> Result<Vec<Entry>, String> {
    let map = RawMap::from_id(rt, m.id).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    // The walk ends at the last key (ENOENT) and after max_entries + 1 keys,
    // a bound that guards against a bad iterator.
    for (i, key) in map.keys().enumerate() {
        let key = match key {
            Ok(k) => k,
            Err(e) if i == 0 => return Err(format!("can't get next key: {}", strerror(e.errno()))),
            Err(_) => break,
        };
        // A key deleted meanwhile, or an empty fd-map slot, is skipped.
        if let Ok(v) = map.lookup(&key, 0) {
            out.push((key, v));
        }
    }
    Ok(out)
}

/// bpftool prints a lookup error for each slot of these maps (their slots hold
/// kernel objects user space cannot read back).
fn dumps_errors(m: &MapObj) -> bool {
    use bpfvm::maps::MapType::*;
    matches!(
        m.map_type(),
        PerfEventArray | CgroupArray | Xskmap | Sockmap | ReuseportSockarray
    )
}

/// `map dump` of a map whose slots answer lookups with errors: each slot,
/// its value or the error, as bpftool's `print_entry_error` prints it.
fn map_dump_errors(rt: &Runtime, m: &MapObj, f: Format) -> Result<Response, String> {
    let mut items = Vec::new();
    let mut out = String::new();
    let mut found = 0;
    let map = RawMap::from_id(rt, m.id).map_err(|e| e.to_string())?;
    for next in map.keys() {
        let Ok(next) = next else { break };
        match map.lookup(&next, 0) {
            Ok(v) => {
                found += 1;
                items.push(entry_json(m, &next, &v));
                entry_hex_plain(m, &next, &v, &mut out);
            }
            Err(e) => {
                let err = strerror(e.errno());
                items.push(Dumped::Object(vec![
                    ("key".into(), hex_byte_array(&next)),
                    (
                        "value".into(),
                        Dumped::Object(vec![("error".into(), Dumped::Str(err.clone()))]),
                    ),
                ]));
                let msg = match e.errno() {
                    libc::ENOENT => "<no entry>".to_string(),
                    libc::ENOSPC if m.map_type() == bpfvm::maps::MapType::ReuseportSockarray => {
                        "<cannot read>".into()
                    }
                    _ => err,
                };
                let ks = m.attr().key_size as usize;
                let break_names = ks > 16 || msg.len() > 16;
                let single_line = ks + msg.len() <= 24 && !break_names;
                let sep = if break_names { '\n' } else { ' ' };
                let _ = write!(out, "key:{sep}{}", hex_spaced(&next));
                out.push_str(if single_line { "  " } else { "\n" });
                let _ = writeln!(out, "value:{sep}{msg}");
            }
        }
    }
    if f.is_json() {
        return Ok(Response::out(dumped(f, &Dumped::Array(items))));
    }
    let _ = writeln!(
        out,
        "Found {found} element{}",
        if found == 1 { "" } else { "s" }
    );
    Ok(Response::out(out))
}

/// `map dump`.
pub fn map_dump(rt: &Runtime, m: &MapObj, f: Format) -> Result<Response, String> {
    if dumps_errors(m) {
        return map_dump_errors(rt, m, f);
    }
    let all = entries(rt, m)?;
    if f.is_json() {
        let items = all.iter().map(|(k, v)| entry_json(m, k, v)).collect();
        return Ok(Response::out(dumped(f, &Dumped::Array(items))));
    }
    if let Some(btf) = has_btf(m) {
        let items = all
            .iter()
            .map(|(k, v)| entry_btf_plain(m, btf, k, v))
            .collect();
        return Ok(Response::out(Dumped::Array(items).to_bpftool_pretty()));
    }
    let mut out = String::new();
    for (k, v) in &all {
        entry_hex_plain(m, k, v, &mut out);
    }
    let n = all.len();
    let _ = writeln!(out, "Found {n} element{}", if n == 1 { "" } else { "s" });
    Ok(Response::out(out))
}

/// A number as C's `strtoul(s, _, 0)` reads it (0x hex, leading-0 octal, decimal).
fn parse_c_number(s: &str) -> Option<u64> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

/// `[hex] BYTES`: exactly `n` bytes from `args[*i..]`, as bpftool's parse_bytes.
fn parse_bytes(args: &[String], i: &mut usize, n: usize, what: &str) -> Result<Vec<u8>, String> {
    let mut hex = false;
    if args.get(*i).map(String::as_str) == Some("hex") {
        hex = true;
        *i += 1;
    }
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let Some(tok) = args.get(*i) else {
            return Err(format!("{what} expected {n} bytes got {}", out.len()));
        };
        let v = if hex {
            u64::from_str_radix(tok, 16).ok()
        } else {
            parse_c_number(tok)
        };
        let Some(v) = v else {
            return Err(format!("error parsing byte: {tok}"));
        };
        out.push(v as u8);
        *i += 1;
    }
    Ok(out)
}

fn parse_target(args: &[String], i: &mut usize) -> Option<Target> {
    let kw = args.get(*i)?.as_str();
    let val = args.get(*i + 1)?;
    let t = match kw {
        "id" => Target::Id(val.parse().ok()?),
        "name" => Target::Name(val.clone()),
        "tag" => Target::Tag(val.clone()),
        "pinned" => Target::Pinned(val.clone()),
        _ => return None,
    };
    *i += 2;
    Some(t)
}

fn not_found_reply(f: Format, key: &[u8]) -> Response {
    let stdout = if f.is_json() {
        "null\n".to_string()
    } else {
        format!("key:\n{}\n\nNot found\n", hex_spaced(key))
    };
    Response {
        version: PROTO_VERSION,
        ok: false,
        stdout,
        error: None,
        exit: 254,
        data: None,
        busy: false,
    }
}

/// `map lookup|update|delete|getnext MAP ...`, arguments parsed with the map's sizes.
/// What a `map update` or `map delete` changed, for the daemon's journal: the key
/// (empty for queues and stacks), the new value (`None`: deleted) and the value it
/// had before (`None`: absent), to undo the change if it cannot be saved.
#[derive(Debug, Clone)]
pub struct MapChange {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    pub old: Option<Vec<u8>>,
}

/// `map lookup|update|delete|getnext`, with the change made (if any).
pub fn map_op(
    rt: &Runtime,
    m: &MapObj,
    f: Format,
    op: &str,
    args: &[String],
    resolve: impl Fn(&Target) -> Result<u32, String>,
) -> Result<(Response, Option<MapChange>), String> {
    let old_of = |k: &[u8]| -> Option<Vec<u8>> {
        if k.is_empty() {
            return None;
        }
        match rt.bpf(BpfCmd::MapLookupElem {
            map_id: m.id,
            key: k.to_vec(),
            flags: 0,
        }) {
            Ok(BpfReply::Bytes(v)) => Some(v),
            _ => None,
        }
    };
    match op {
        "update" | "delete" => {}
        "pop" => return map_pop(rt, m, f, args),
        _ => return map_read_op(rt, m, f, op, args, resolve).map(|r| (r, None)),
    }
    let (key, value, flags) = map_op_args(m, op, args, &resolve)?;
    match op {
        "update" => {
            let k = match key {
                Some(k) => k,
                None if m.attr().key_size == 0 => Vec::new(),
                None => return Err("did not find key".into()),
            };
            let v = value.ok_or("did not find value")?;
            let old = old_of(&k);
            rt.bpf(BpfCmd::MapUpdateElem {
                map_id: m.id,
                key: k.clone(),
                value: v.clone(),
                flags,
            })
            .map_err(|e| format!("update failed: {}", errno_text(&e)))?;
            Ok((
                Response::out(String::new()),
                Some(MapChange {
                    key: k,
                    value: Some(v),
                    old,
                }),
            ))
        }
        _ => {
            let k = key.ok_or("did not find key")?;
            let old = old_of(&k);
            rt.bpf(BpfCmd::MapDeleteElem {
                map_id: m.id,
                key: k.clone(),
            })
            .map_err(|e| format!("delete failed: {}", errno_text(&e)))?;
            Ok((
                Response::out(String::new()),
                Some(MapChange {
                    key: k,
                    value: None,
                    old,
                }),
            ))
        }
    }
}

/// `map pop|dequeue`: the head (queue) or top (stack) taken out, printed as
/// bpftool prints it (`value: ..`; `null` / "empty map" when there is none).
fn map_pop(
    rt: &Runtime,
    m: &MapObj,
    f: Format,
    args: &[String],
) -> Result<(Response, Option<MapChange>), String> {
    // bpftool reads no words after MAP here.
    let _ = args;
    // A map with keys has no head to take: bpftool's ENOENT.
    let taken = if m.attr().key_size != 0 {
        None
    } else {
        match rt.bpf(BpfCmd::MapLookupAndDeleteElem {
            map_id: m.id,
            key: None,
            flags: 0,
        }) {
            Ok(BpfReply::Bytes(v)) => Some(v),
            Err(e) if e.errno() == libc::ENOENT => None,
            Err(e) => return Err(format!("pop failed: {}", errno_text(&e))),
            Ok(_) => return Err("pop failed: unexpected reply".into()),
        }
    };
    let Some(v) = taken else {
        // bpftool prints this one on stdout, not as an error.
        let mut r = Response::out(if f.is_json() {
            "null\n".to_string()
        } else {
            "Error: empty map\n".to_string()
        });
        r.ok = false;
        r.exit = 254;
        return Ok((r, None));
    };
    let out = if f.is_json() {
        dumped(f, &entry_json(m, &[], &v))
    } else {
        format!("value: {}\n", hex_spaced(&v))
    };
    let change = MapChange {
        key: Vec::new(),
        value: None,
        old: Some(v),
    };
    Ok((Response::out(out), Some(change)))
}

type OpArgs = (Option<Vec<u8>>, Option<Vec<u8>>, u64);

/// The words after MAP: `key BYTES`, `value BYTES | value PROG/MAP`, flags.
fn map_op_args(
    m: &MapObj,
    op: &str,
    args: &[String],
    resolve: &impl Fn(&Target) -> Result<u32, String>,
) -> Result<OpArgs, String> {
    let a = m.attr();
    let mut i = 0;
    let mut key: Option<Vec<u8>> = None;
    let mut value: Option<Vec<u8>> = None;
    let mut flags = 0u64;
    while i < args.len() {
        match args[i].as_str() {
            "key" => {
                i += 1;
                key = Some(parse_bytes(args, &mut i, a.key_size as usize, "key")?);
            }
            "value" if op == "update" => {
                i += 1;
                let fd_map =
                    a.map_type.is_map_in_map() || a.map_type == bpfvm::maps::MapType::ProgArray;
                if fd_map {
                    if let Some(t) = parse_target(args, &mut i) {
                        value = Some(resolve(&t)?.to_le_bytes().to_vec());
                        continue;
                    }
                }
                if a.map_type.is_percpu() {
                    // bpftool takes one value and writes it to every CPU's slot
                    // (slots are 8-byte aligned in the user-space buffer).
                    let vs = a.value_size as usize;
                    let one = parse_bytes(args, &mut i, vs, "value")?;
                    let slot = (vs + 7) & !7;
                    let mut all = vec![0u8; m.user_value_size()];
                    for chunk in all.chunks_mut(slot) {
                        chunk[..vs].copy_from_slice(&one);
                    }
                    value = Some(all);
                    continue;
                }
                let n = m.user_value_size();
                value = Some(parse_bytes(
                    args,
                    &mut i,
                    if fd_map { 4 } else { n },
                    "value",
                )?);
            }
            "any" if op == "update" => {
                flags = bpfvm::maps::BPF_ANY;
                i += 1;
            }
            "exist" if op == "update" => {
                flags = bpfvm::maps::BPF_EXIST;
                i += 1;
            }
            "noexist" if op == "update" => {
                flags = bpfvm::maps::BPF_NOEXIST;
                i += 1;
            }
            w if op == "update" => return Err(format!("expected key or value, got: {w}")),
            w => return Err(format!("unknown keyword {w}")),
        }
    }
    Ok((key, value, flags))
}

fn map_read_op(
    rt: &Runtime,
    m: &MapObj,
    f: Format,
    op: &str,
    args: &[String],
    resolve: impl Fn(&Target) -> Result<u32, String>,
) -> Result<Response, String> {
    let a = m.attr();
    let (key, _, _) = map_op_args(m, op, args, &resolve)?;
    let key_or_empty = |k: &Option<Vec<u8>>| -> Result<Vec<u8>, String> {
        match k {
            Some(k) => Ok(k.clone()),
            // Keyless lookups (queue, stack) pass no key.
            None if a.key_size == 0 => Ok(Vec::new()),
            None => Err("did not find key".into()),
        }
    };
    match op {
        "lookup" => {
            let k = key_or_empty(&key)?;
            match rt.bpf(BpfCmd::MapLookupElem {
                map_id: m.id,
                key: k.clone(),
                flags: 0,
            }) {
                Ok(BpfReply::Bytes(v)) => {
                    if f.is_json() {
                        return Ok(Response::out(dumped(f, &entry_json(m, &k, &v))));
                    }
                    if let Some(btf) = has_btf(m) {
                        return Ok(Response::out(
                            entry_btf_plain(m, btf, &k, &v).to_bpftool_pretty(),
                        ));
                    }
                    if k.is_empty() {
                        // Queues and stacks: bpftool prints the value alone.
                        return Ok(Response::out(format!("value: {}\n", hex_spaced(&v))));
                    }
                    let mut out = String::new();
                    entry_hex_plain(m, &k, &v, &mut out);
                    Ok(Response::out(out))
                }
                Err(e) if e.errno() == libc::ENOENT => Ok(not_found_reply(f, &k)),
                Err(e) => Err(format!("lookup failed: {}", errno_text(&e))),
                Ok(_) => Err("lookup failed: unexpected reply".into()),
            }
        }
        "getnext" => {
            let next = match rt.bpf(BpfCmd::MapGetNextKey {
                map_id: m.id,
                key: key.clone(),
            }) {
                Ok(BpfReply::Bytes(n)) => n,
                Ok(_) => return Err("can't get next key: unexpected reply".into()),
                Err(e) => return Err(format!("can't get next key: {}", errno_text(&e))),
            };
            if f.is_json() {
                let v = Dumped::Object(vec![
                    (
                        "key".into(),
                        key.as_deref()
                            .map_or(Dumped::Raw("null".into()), hex_byte_array),
                    ),
                    ("next_key".into(), hex_byte_array(&next)),
                ]);
                return Ok(Response::out(dumped(f, &v)));
            }
            let mut out = String::new();
            match &key {
                Some(k) => {
                    let _ = writeln!(out, "key:\n{}", hex_spaced(k));
                }
                None => out.push_str("key: None\n"),
            }
            let _ = writeln!(out, "next key:\n{}", hex_spaced(&next));
            Ok(Response::out(out))
        }
        o => Err(format!("unknown map command {o}")),
    }
}

/// `btf show|list [id N]`.
pub fn btf_show(rt: &Runtime, f: Format, id: Option<u32>) -> Result<Response, String> {
    let mut ids = Vec::new();
    match id {
        Some(id) => {
            rt.btf_by_id(id)
                .map_err(|_| format!("get btf by id ({id}): No such file or directory"))?;
            ids.push(id);
        }
        None => {
            let mut cur = 0;
            while let Ok(BpfReply::Id(n)) = rt.bpf(BpfCmd::BtfGetNextId { start_id: cur }) {
                ids.push(n);
                cur = n;
            }
        }
    }
    let progs = rt.progs();
    let maps = rt.maps();
    let mut out = String::new();
    let mut arr = Vec::new();
    for id in &ids {
        let Ok(b) = rt.btf_by_id(*id) else { continue };
        let p: Vec<u32> = progs
            .iter()
            .filter(|p| p.btf.as_ref().is_some_and(|x| x.id == *id))
            .map(|p| p.id)
            .collect();
        let m: Vec<u32> = maps
            .iter()
            .filter(|m| m.btf.as_ref().is_some_and(|x| x.id == *id))
            .map(|m| m.id)
            .collect();
        if f.is_json() {
            let mut o = Map::new();
            o.insert("id".into(), json!(id));
            o.insert("size".into(), json!(b.size));
            o.insert("prog_ids".into(), json!(p));
            o.insert("map_ids".into(), json!(m));
            o.insert("kernel".into(), json!(false));
            if !b.name.is_empty() {
                o.insert("name".into(), json!(b.name));
            }
            arr.push(Value::Object(o));
        } else {
            let name = if b.name.is_empty() { "<anon>" } else { &b.name };
            let _ = write!(out, "{id}: name {name}  size {}B", b.size);
            let join = |v: &[u32]| {
                v.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            if !p.is_empty() {
                let _ = write!(out, "  prog_ids {}", join(&p));
            }
            if !m.is_empty() {
                let _ = write!(out, "  map_ids {}", join(&m));
            }
            out.push('\n');
        }
    }
    if f.is_json() {
        let v = if id.is_some() && arr.len() == 1 {
            arr.remove(0)
        } else {
            Value::Array(arr)
        };
        return Ok(Response::out(json(f, &v)));
    }
    Ok(Response::out(out))
}

/// `btf dump`: the raw format, plain or JSON.
pub fn btf_dump(btf: &Btf, f: Format) -> String {
    if f.is_json() {
        json(f, &dump_btf_json(btf))
    } else {
        dump_btf_plain(btf)
    }
}
