//! bpftool's output formats, plain and JSON, for what the daemon answers as
//! typed data ([`Listing`]): `prog show`, `prog dump xlated|jited`, `map show`,
//! `map dump|lookup|getnext|pop`, `net list`, `btf show|dump`. The client
//! renders; the daemon formats nothing the client can.

use crate::daemon::reads::MapChange;
use crate::proto::{
    BtfItem, Format, JitedFunc, JitedLine, Listing, MapEntry, MapLayout, Response, SrcLine, Target,
    XlatedInsn,
};
use bpfvm::btf::{
    dump_btf_json, dump_btf_plain, hex_byte_array, map_entry_dump, write_bpftool_compact,
    write_bpftool_pretty, Btf, DumpMode, Dumped, MapValues,
};
use bpfvm::isa::Insn;
use bpfvm::maps::MapType;
use bpfvm::{BpfError, MapInfo, MapObj, ProgInfo, Runtime};
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

/// Renders a typed result of the daemon (the exit status it asks for is in the
/// reply: 254 for bpftool's "Not found" and "empty map").
pub fn listing(f: Format, l: &Listing) -> String {
    try_listing(f, l).unwrap_or_else(|e| format!("Error: {e}\n"))
}

/// A typed result as text, or why it cannot be printed (a BTF that does not
/// parse or has no C form): the client reports that as an error.
pub fn try_listing(f: Format, l: &Listing) -> Result<String, String> {
    Ok(match l {
        Listing::Progs { single, items } => progs(f, items, *single),
        Listing::Maps { single, items } => maps(f, items, *single),
        Listing::Net { items } => net_list(f, items),
        Listing::MapDump {
            map,
            entries,
            slot_errors,
        } => map_dump_text(f, map, entries, *slot_errors),
        Listing::MapLookup {
            map,
            key_hex,
            value_hex,
        } => map_lookup_text(f, map, &unhex(key_hex), value_hex.as_deref().map(unhex)),
        Listing::MapGetNext { key_hex, next_hex } => {
            map_getnext_text(f, key_hex.as_deref().map(unhex), &unhex(next_hex))
        }
        Listing::MapPop { map, value_hex } => map_pop_text(f, map, value_hex.as_deref().map(unhex)),
        Listing::Xlated {
            visual: true,
            func_starts,
            insns,
            ..
        } => xlated_dot(insns, func_starts),
        Listing::Xlated {
            opcodes,
            linum,
            insns,
            ..
        } => xlated(f, insns, *opcodes, *linum),
        Listing::Jited {
            opcodes,
            linum,
            funcs,
        } => jited(funcs, *opcodes, *linum),
        Listing::Btfs { single, items } => btf_list(f, items, *single),
        Listing::BtfDump { data_hex, roots, c } => {
            let btf = Btf::parse(&unhex(data_hex))
                .map_err(|e| format!("the daemon's BTF cannot be read: {}", error_chain(&e)))?;
            btf_dump_as(&btf, f, roots.as_deref(), *c).map_err(|e| error_chain(&e))?
        }
    })
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

/// Hex from the daemon (checked there; anything else reads as no bytes).
fn unhex(s: &str) -> Vec<u8> {
    crate::proto::from_hex(s).unwrap_or_default()
}

/// A map's layout with its BTF parsed.
struct Layout {
    map_type: Option<MapType>,
    key_size: u32,
    value_size: u32,
    btf: Option<(Btf, u32, u32)>,
}

impl Layout {
    fn new(l: &MapLayout) -> Layout {
        Layout {
            map_type: MapType::from_u32(l.map_type),
            key_size: l.key_size,
            value_size: l.value_size,
            // A BTF that does not parse prints as bytes, as a map without BTF.
            btf: l.btf.as_ref().and_then(|b| {
                Btf::parse(&unhex(&b.data_hex))
                    .ok()
                    .map(|btf| (btf, b.key_type_id, b.value_type_id))
            }),
        }
    }

    fn percpu(&self) -> bool {
        self.map_type.is_some_and(|t| t.is_percpu())
    }

    /// A value as user space sees it, split per CPU for per-CPU maps.
    fn split_values(&self, v: &[u8]) -> Vec<Vec<u8>> {
        let vs = self.value_size as usize;
        if !self.percpu() {
            return vec![v[..vs.min(v.len())].to_vec()];
        }
        let step = vs.next_multiple_of(8).max(1);
        v.chunks(step)
            .map(|c| c[..vs.min(c.len())].to_vec())
            .collect()
    }

    fn btf_entry(&self, key: &[u8], per: &[Vec<u8>], mode: DumpMode) -> Option<Dumped> {
        let (btf, kt, vt) = self.btf.as_ref()?;
        let slices: Vec<&[u8]> = per.iter().map(|v| &v[..]).collect();
        let values = if self.percpu() {
            MapValues::PerCpu(&slices)
        } else {
            MapValues::Single(slices.first().copied().unwrap_or_default())
        };
        Some(map_entry_dump(btf, *kt, *vt, key, values, mode).value)
    }

    /// The entry as bpftool's `-j` prints it: raw bytes, and `formatted` with BTF.
    fn entry_json(&self, key: &[u8], value: &[u8]) -> Dumped {
        let per = self.split_values(value);
        let mut fields = vec![("key".to_string(), hex_byte_array(key))];
        if self.percpu() {
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
            fields.push((
                "value".into(),
                hex_byte_array(per.first().map(Vec::as_slice).unwrap_or_default()),
            ));
        }
        if let Some(d) = self.btf_entry(key, &per, DumpMode::Json) {
            fields.push(("formatted".into(), d));
        }
        Dumped::Object(fields)
    }

    /// The entry in the plain BTF form (`None`: the map has no BTF).
    fn entry_btf_plain(&self, key: &[u8], value: &[u8]) -> Option<Dumped> {
        self.btf_entry(key, &self.split_values(value), DumpMode::Plain)
    }

    /// The entry in the plain hex form (`key: 00 00 00 00  value: 19 01 00 00`).
    fn entry_hex_plain(&self, key: &[u8], value: &[u8], out: &mut String) {
        let per = self.split_values(value);
        if self.percpu() {
            let _ = writeln!(out, "key:\n{}", hex_spaced(key));
            for (cpu, v) in per.iter().enumerate() {
                let sep = if self.value_size > 16 { '\n' } else { ' ' };
                let _ = writeln!(out, "value (CPU {cpu:02}):{sep}{}", hex_spaced(v));
            }
            return;
        }
        let break_names = self.key_size > 16 || self.value_size > 16;
        let single_line = self.key_size + self.value_size <= 24 && !break_names;
        let sep = if break_names { '\n' } else { ' ' };
        let _ = write!(out, "key:{sep}{}", hex_spaced(key));
        out.push_str(if single_line { "  " } else { "\n" });
        let v = per.first().map(Vec::as_slice).unwrap_or_default();
        let _ = writeln!(out, "value:{sep}{}", hex_spaced(v));
    }
}

fn found_line(out: &mut String, n: usize) {
    let _ = writeln!(out, "Found {n} element{}", if n == 1 { "" } else { "s" });
}

/// `map dump`: bpftool's array of entries (JSON), the BTF-formatted entries,
/// or the hex lines and a count; maps whose slots answer with errors print
/// each slot's value or error, as bpftool's `print_entry_error`.
pub fn map_dump_text(
    f: Format,
    map: &MapLayout,
    entries: &[MapEntry],
    slot_errors: bool,
) -> String {
    let l = Layout::new(map);
    // Each entry's key and its value or the errno of its lookup.
    type Slot = (Vec<u8>, Result<Vec<u8>, i32>);
    let entries: Vec<Slot> = entries
        .iter()
        .map(|e| {
            let v = match (&e.value_hex, e.errno) {
                (Some(v), _) => Ok(unhex(v)),
                (None, errno) => Err(errno.unwrap_or(libc::ENOENT)),
            };
            (unhex(&e.key_hex), v)
        })
        .collect();
    if slot_errors {
        let mut items = Vec::new();
        let mut out = String::new();
        let mut found = 0;
        for (key, v) in &entries {
            match v {
                Ok(v) => {
                    found += 1;
                    items.push(l.entry_json(key, v));
                    l.entry_hex_plain(key, v, &mut out);
                }
                Err(errno) => {
                    let err = strerror(*errno);
                    items.push(Dumped::Object(vec![
                        ("key".into(), hex_byte_array(key)),
                        (
                            "value".into(),
                            Dumped::Object(vec![("error".into(), Dumped::Str(err.clone()))]),
                        ),
                    ]));
                    let msg = match *errno {
                        libc::ENOENT => "<no entry>".to_string(),
                        libc::ENOSPC if l.map_type == Some(MapType::ReuseportSockarray) => {
                            "<cannot read>".into()
                        }
                        _ => err,
                    };
                    let ks = l.key_size as usize;
                    let break_names = ks > 16 || msg.len() > 16;
                    let single_line = ks + msg.len() <= 24 && !break_names;
                    let sep = if break_names { '\n' } else { ' ' };
                    let _ = write!(out, "key:{sep}{}", hex_spaced(key));
                    out.push_str(if single_line { "  " } else { "\n" });
                    let _ = writeln!(out, "value:{sep}{msg}");
                }
            }
        }
        if f.is_json() {
            return dumped(f, &Dumped::Array(items));
        }
        found_line(&mut out, found);
        return out;
    }
    let values: Vec<(&[u8], &[u8])> = entries
        .iter()
        .filter_map(|(k, v)| v.as_ref().ok().map(|v| (&k[..], &v[..])))
        .collect();
    if f.is_json() {
        let items = values.iter().map(|(k, v)| l.entry_json(k, v)).collect();
        return dumped(f, &Dumped::Array(items));
    }
    if l.btf.is_some() {
        let items = values
            .iter()
            .filter_map(|(k, v)| l.entry_btf_plain(k, v))
            .collect();
        return Dumped::Array(items).to_bpftool_pretty();
    }
    let mut out = String::new();
    for (k, v) in &values {
        l.entry_hex_plain(k, v, &mut out);
    }
    found_line(&mut out, values.len());
    out
}

/// `map lookup`: the entry, or bpftool's "Not found" (`null` in JSON).
pub fn map_lookup_text(f: Format, map: &MapLayout, key: &[u8], value: Option<Vec<u8>>) -> String {
    let Some(v) = value else {
        return if f.is_json() {
            "null\n".to_string()
        } else {
            format!("key:\n{}\n\nNot found\n", hex_spaced(key))
        };
    };
    let l = Layout::new(map);
    if f.is_json() {
        return dumped(f, &l.entry_json(key, &v));
    }
    if let Some(d) = l.entry_btf_plain(key, &v) {
        return d.to_bpftool_pretty();
    }
    if key.is_empty() {
        // Queues and stacks: bpftool prints the value alone.
        return format!("value: {}\n", hex_spaced(&v));
    }
    let mut out = String::new();
    l.entry_hex_plain(key, &v, &mut out);
    out
}

/// `map getnext`.
pub fn map_getnext_text(f: Format, key: Option<Vec<u8>>, next: &[u8]) -> String {
    if f.is_json() {
        let v = Dumped::Object(vec![
            (
                "key".into(),
                key.as_deref()
                    .map_or(Dumped::Raw("null".into()), hex_byte_array),
            ),
            ("next_key".into(), hex_byte_array(next)),
        ]);
        return dumped(f, &v);
    }
    let mut out = String::new();
    match &key {
        Some(k) => {
            let _ = writeln!(out, "key:\n{}", hex_spaced(k));
        }
        None => out.push_str("key: None\n"),
    }
    let _ = writeln!(out, "next key:\n{}", hex_spaced(next));
    out
}

/// `map pop|dequeue`: `value: ..`, or bpftool's "empty map" on stdout (`null`
/// in JSON).
pub fn map_pop_text(f: Format, map: &MapLayout, value: Option<Vec<u8>>) -> String {
    match value {
        None if f.is_json() => "null\n".to_string(),
        None => "Error: empty map\n".to_string(),
        Some(v) if f.is_json() => dumped(f, &Layout::new(map).entry_json(&[], &v)),
        Some(v) => format!("value: {}\n", hex_spaced(&v)),
    }
}

/// `; source text` (with `linum`: ` [file:F line_num:N line_col:C]`), as bpftool
/// prints it above the instructions of a line.
fn source_annotation(s: &SrcLine, linum: bool, out: &mut String) {
    let _ = write!(out, "; {}", s.line);
    if linum {
        let _ = write!(out, " [file:{} line_num:{}", s.file, s.line_num);
        if s.line_col != 0 {
            let _ = write!(out, " line_col:{}", s.line_col);
        }
        out.push(']');
    }
    out.push('\n');
}

fn hex_list(bytes: &[u8]) -> Value {
    Value::Array(
        bytes
            .iter()
            .map(|b| Value::String(format!("0x{b:02x}")))
            .collect(),
    )
}

/// `prog dump xlated`: bpftool's listing (signatures, `; source` lines,
/// `pc: (code) text`, with `opcodes` the bytes), or its JSON array of
/// instructions (`proto`, `src`, `file`/`line_num`/`line_col` with `linum`,
/// `disasm`, `opcodes`).
pub fn xlated(f: Format, insns: &[XlatedInsn], opcodes: bool, linum: bool) -> String {
    if f.is_json() {
        let items = insns
            .iter()
            .map(|i| {
                let mut o = Map::new();
                if let Some(p) = &i.proto {
                    o.insert("proto".into(), json!(p));
                }
                if let Some(s) = &i.src {
                    o.insert("src".into(), json!(s.line));
                    if linum {
                        o.insert("file".into(), json!(s.file));
                        o.insert("line_num".into(), json!(s.line_num));
                        if s.line_col != 0 {
                            o.insert("line_col".into(), json!(s.line_col));
                        }
                    }
                }
                o.insert("disasm".into(), json!(i.disasm));
                let bytes = unhex(&i.bytes_hex);
                if opcodes && bytes.len() >= 8 {
                    o.insert(
                        "opcodes".into(),
                        json!({
                            "code": format!("0x{:02x}", bytes[0]),
                            "src_reg": format!("{:#x}", bytes[1] >> 4),
                            "dst_reg": format!("{:#x}", bytes[1] & 0x0f),
                            "off": hex_list(&bytes[2..4]),
                            "imm": hex_list(&bytes[4..]),
                        }),
                    );
                }
                Value::Object(o)
            })
            .collect();
        return json(f, &Value::Array(items));
    }
    let mut out = String::new();
    for i in insns {
        if let Some(p) = &i.proto {
            let _ = writeln!(out, "{p}:");
        }
        if let Some(s) = &i.src {
            source_annotation(s, linum, &mut out);
        }
        let _ = writeln!(out, "{:4}: {}", i.pc, i.disasm);
        if opcodes {
            out.push_str("      ");
            for b in unhex(&i.bytes_hex) {
                let _ = write!(out, " {b:02x}");
            }
            out.push('\n');
        }
    }
    out
}

/// `prog dump xlated PROG visual`, bpftool's DOT graph, drawn by bpfvm from
/// the instructions (decoded again from their bytes) and the function starts.
pub fn xlated_dot(listing: &[XlatedInsn], func_starts: &[u32]) -> String {
    let all: Vec<Insn> = listing
        .iter()
        .flat_map(|i| unhex(&i.bytes_hex))
        .collect::<Vec<u8>>()
        .chunks_exact(8)
        .map(|c| Insn::from_bytes(c.try_into().unwrap_or_default()))
        .collect();
    let starts: Vec<usize> = func_starts.iter().map(|s| *s as usize).collect();
    bpfvm::xlated::xlated_dot(&all, &starts)
}

/// `prog dump jited`: per function its signature and `bpf_prog_TAG_NAME:`
/// label, source lines above the native instructions they produced, with
/// `opcodes` each instruction's bytes; a blank line between functions.
pub fn jited(funcs: &[JitedFunc], opcodes: bool, linum: bool) -> String {
    let mut out = String::new();
    for (fi, f) in funcs.iter().enumerate() {
        if let Some(p) = &f.proto {
            let _ = writeln!(out, "{p}:");
        }
        let _ = writeln!(out, "{}:", f.label);
        for l in &f.lines {
            match l {
                JitedLine::Src(s) => source_annotation(s, linum, &mut out),
                JitedLine::Insn {
                    offset,
                    text,
                    bytes_hex,
                } => {
                    let _ = writeln!(out, "{offset:4x}:\t{text}");
                    if opcodes {
                        let _ = writeln!(out, "\t{}", hex_spaced(&unhex(bytes_hex)));
                    }
                }
            }
        }
        if fi + 1 < funcs.len() {
            out.push('\n');
        }
    }
    out
}

/// `btf show|list [id N]`.
pub fn btf_list(f: Format, items: &[BtfItem], single: bool) -> String {
    if f.is_json() {
        let mut arr: Vec<Value> = items
            .iter()
            .map(|b| {
                let mut o = Map::new();
                o.insert("id".into(), json!(b.id));
                o.insert("size".into(), json!(b.size));
                o.insert("prog_ids".into(), json!(b.prog_ids));
                o.insert("map_ids".into(), json!(b.map_ids));
                o.insert("kernel".into(), json!(false));
                if !b.name.is_empty() {
                    o.insert("name".into(), json!(b.name));
                }
                Value::Object(o)
            })
            .collect();
        let v = if single && arr.len() == 1 {
            arr.remove(0)
        } else {
            Value::Array(arr)
        };
        return json(f, &v);
    }
    let join = |v: &[u32]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut out = String::new();
    for b in items {
        let name = if b.name.is_empty() { "<anon>" } else { &b.name };
        let _ = write!(out, "{}: name {name}  size {}B", b.id, b.size);
        if !b.prog_ids.is_empty() {
            let _ = write!(out, "  prog_ids {}", join(&b.prog_ids));
        }
        if !b.map_ids.is_empty() {
            let _ = write!(out, "  map_ids {}", join(&b.map_ids));
        }
        out.push('\n');
    }
    out
}

/// A typed result printed into a reply's `stdout`, for callers that print
/// replies as text (the debugger's `map` command on its own runtime).
fn printed(f: Format, l: &Listing, failed: bool) -> Response {
    let mut r = Response::out(listing(f, l));
    if failed {
        r.ok = false;
        r.exit = 254;
    }
    r
}

/// `map dump` of a map of `rt`, printed (the debugger's `map dump`).
pub fn map_dump(rt: &Runtime, m: &MapObj, f: Format) -> Result<Response, String> {
    crate::daemon::reads::map_dump(rt, m).map(|l| printed(f, &l, false))
}

/// `map lookup|getnext|update|delete|pop` on a map of `rt`, printed, with the
/// change made (the debugger's `map lookup`).
pub fn map_op(
    rt: &Runtime,
    m: &MapObj,
    f: Format,
    op: &str,
    args: &[String],
    resolve: impl Fn(&Target) -> Result<u32, String>,
) -> Result<(Response, Option<MapChange>), String> {
    let r = crate::daemon::reads::map_op(rt, m, op, args, resolve)?;
    let resp = match &r.listing {
        Some(l) => printed(f, l, r.not_found),
        None => Response::out(String::new()),
    };
    Ok((resp, r.change))
}

/// `btf dump`: the raw format, plain or JSON.
pub fn btf_dump(btf: &Btf, f: Format) -> String {
    if f.is_json() {
        json(f, &dump_btf_json(btf))
    } else {
        dump_btf_plain(btf)
    }
}

/// `btf dump`, in the format asked for, of the whole BTF or of `roots` and
/// the types they refer to.
pub fn btf_dump_as(
    btf: &Btf,
    f: Format,
    roots: Option<&[u32]>,
    c: bool,
) -> Result<String, bpfvm::btf::CDumpError> {
    Ok(match (roots, c) {
        (Some(roots), true) => bpfvm::btf::dump_btf_c_roots(btf, roots)?,
        (Some(roots), false) if f.is_json() => {
            json(f, &bpfvm::btf::dump_btf_json_roots(btf, roots))
        }
        (Some(roots), false) => bpfvm::btf::dump_btf_plain_roots(btf, roots),
        (None, true) => bpfvm::btf::dump_btf_c(btf)?,
        (None, false) => btf_dump(btf, f),
    })
}
