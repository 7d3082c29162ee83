//! What the read commands find, as typed data ([`Listing`]) for the client to
//! print: map entries (bytes, with the BTF that formats them), the translated
//! and JITed instruction listings, BTF objects. Also the parsing of the words
//! after MAP (`key BYTES`, `value ...`), which needs the map's sizes, and the
//! map changes of `update`, `delete` and `pop`.
//!
//! Nothing here formats text the client could format; the rendering is in
//! [`crate::render`].

use crate::proto::{
    to_hex, BtfItem, JitedFunc, JitedLine, Listing, MapBtf, MapEntry, MapLayout, SrcLine, Target,
    XlatedInsn,
};
use crate::render::{errno_text, strerror};
use bpfvm::maps::{MapType, RawMap};
use bpfvm::{BpfCmd, BpfReply, MapObj, ProgObj, Runtime};

/// What a map's entries need to be printed.
pub fn map_layout(m: &MapObj) -> MapLayout {
    let a = m.attr();
    MapLayout {
        map_type: m.map_type() as u32,
        key_size: a.key_size,
        value_size: a.value_size,
        btf: match &m.btf {
            Some(b) if m.btf_value_type_id != 0 => Some(MapBtf {
                data_hex: to_hex(&b.btf.to_bytes()),
                key_type_id: m.btf_key_type_id,
                value_type_id: m.btf_value_type_id,
            }),
            _ => None,
        },
    }
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

/// `map dump`: every entry in `get_next_key` order (and, for maps whose slots
/// answer with errors, every slot's error).
pub fn map_dump(rt: &Runtime, m: &MapObj) -> Result<Listing, String> {
    let map = RawMap::from_id(rt, m.id).map_err(|e| e.to_string())?;
    let slot_errors = dumps_errors(m);
    let mut entries = Vec::new();
    // The walk ends at the last key (ENOENT) and after max_entries + 1 keys,
    // a bound that guards against a bad iterator.
    for (i, key) in map.keys().enumerate() {
        let key = match key {
            Ok(k) => k,
            Err(e) if i == 0 && !slot_errors => {
                return Err(format!("can't get next key: {}", strerror(e.errno())))
            }
            Err(_) => break,
        };
        match map.lookup(&key, 0) {
            Ok(v) => entries.push(MapEntry {
                key_hex: to_hex(&key),
                value_hex: Some(to_hex(&v)),
                errno: None,
            }),
            Err(e) if slot_errors => entries.push(MapEntry {
                key_hex: to_hex(&key),
                value_hex: None,
                errno: Some(e.errno()),
            }),
            // A key deleted meanwhile, or an empty fd-map slot, is skipped.
            Err(_) => {}
        }
    }
    Ok(Listing::MapDump {
        map: map_layout(m),
        entries,
        slot_errors,
    })
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

/// What a `map update`, `delete` or `pop` changed, for the daemon's journal: the
/// key (empty for queues and stacks), the new value (`None`: deleted) and the
/// value it had before (`None`: absent), to undo the change if it cannot be saved.
#[derive(Debug, Clone)]
pub struct MapChange {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    pub old: Option<Vec<u8>>,
}

/// The result of a map operation: what to show (`None`: nothing, as for
/// update and delete) and whether it is bpftool's "Not found" / "empty map"
/// (exit status 254), and the change made.
pub struct MapOpResult {
    pub listing: Option<Listing>,
    pub not_found: bool,
    pub change: Option<MapChange>,
}

impl MapOpResult {
    fn shown(listing: Listing, not_found: bool) -> MapOpResult {
        MapOpResult {
            listing: Some(listing),
            not_found,
            change: None,
        }
    }
}

/// `map lookup|update|delete|getnext|pop MAP ...`, arguments parsed with the
/// map's sizes; `resolve` turns `value id N`/`value pinned P` into an id.
pub fn map_op(
    rt: &Runtime,
    m: &MapObj,
    op: &str,
    args: &[String],
    resolve: impl Fn(&Target) -> Result<u32, String>,
) -> Result<MapOpResult, String> {
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
        "pop" => return map_pop(rt, m),
        _ => return map_read_op(rt, m, op, args, resolve),
    }
    let (key, value, flags) = map_op_args(m, op, args, &resolve)?;
    let change = if op == "update" {
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
        MapChange {
            key: k,
            value: Some(v),
            old,
        }
    } else {
        let k = key.ok_or("did not find key")?;
        let old = old_of(&k);
        rt.bpf(BpfCmd::MapDeleteElem {
            map_id: m.id,
            key: k.clone(),
        })
        .map_err(|e| format!("delete failed: {}", errno_text(&e)))?;
        MapChange {
            key: k,
            value: None,
            old,
        }
    };
    Ok(MapOpResult {
        listing: None,
        not_found: false,
        change: Some(change),
    })
}

/// `map pop|dequeue`: the head (queue) or top (stack) taken out. bpftool reads
/// no words after MAP here.
fn map_pop(rt: &Runtime, m: &MapObj) -> Result<MapOpResult, String> {
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
    let listing = Listing::MapPop {
        map: map_layout(m),
        value_hex: taken.as_deref().map(to_hex),
    };
    Ok(MapOpResult {
        listing: Some(listing),
        not_found: taken.is_none(),
        change: taken.map(|v| MapChange {
            key: Vec::new(),
            value: None,
            old: Some(v),
        }),
    })
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
                let fd_map = a.map_type.is_map_in_map() || a.map_type == MapType::ProgArray;
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
    op: &str,
    args: &[String],
    resolve: impl Fn(&Target) -> Result<u32, String>,
) -> Result<MapOpResult, String> {
    let (key, _, _) = map_op_args(m, op, args, &resolve)?;
    match op {
        "lookup" => {
            let k = match key {
                Some(k) => k,
                // Keyless lookups (queue, stack) pass no key.
                None if m.attr().key_size == 0 => Vec::new(),
                None => return Err("did not find key".into()),
            };
            let value = match rt.bpf(BpfCmd::MapLookupElem {
                map_id: m.id,
                key: k.clone(),
                flags: 0,
            }) {
                Ok(BpfReply::Bytes(v)) => Some(v),
                Err(e) if e.errno() == libc::ENOENT => None,
                Err(e) => return Err(format!("lookup failed: {}", errno_text(&e))),
                Ok(_) => return Err("lookup failed: unexpected reply".into()),
            };
            let not_found = value.is_none();
            let l = Listing::MapLookup {
                map: map_layout(m),
                key_hex: to_hex(&k),
                value_hex: value.as_deref().map(to_hex),
            };
            Ok(MapOpResult::shown(l, not_found))
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
            let l = Listing::MapGetNext {
                key_hex: key.as_deref().map(to_hex),
                next_hex: to_hex(&next),
            };
            Ok(MapOpResult::shown(l, false))
        }
        o => Err(format!("unknown map command {o}")),
    }
}

// ---- programs --------------------------------------------------------------

fn src_line(l: &bpfvm::LineInfo) -> SrcLine {
    SrcLine {
        line: l.line.trim_start().to_string(),
        file: l.file_name.clone(),
        line_num: l.line_num,
        line_col: l.col,
    }
}

/// `prog dump xlated`: the instructions with their source lines and function
/// signatures (bpfvm's listing, as data), and where the functions start.
pub fn xlated(p: &ProgObj, opcodes: bool, linum: bool, visual: bool) -> Listing {
    let insns = bpfvm::xlated::xlated_lines(p)
        .into_iter()
        .map(|l| {
            let bytes: Vec<u8> = p.xlated[l.pc..l.pc + l.slots]
                .iter()
                .flat_map(|i| i.to_bytes())
                .collect();
            XlatedInsn {
                pc: l.pc as u32,
                proto: l.proto,
                src: l.source.map(src_line),
                disasm: l.disasm,
                bytes_hex: to_hex(&bytes),
            }
        })
        .collect();
    Listing::Xlated {
        opcodes,
        linum,
        visual,
        func_starts: bpfvm::xlated::functions(p)
            .iter()
            .map(|f| f.start as u32)
            .collect(),
        insns,
    }
}

/// `prog dump jited`: per function its signature, its `bpf_prog_TAG_NAME`
/// label, and the native instructions with the source lines of the BPF
/// instructions whose code starts at each (bpfvm's listing, as data).
pub fn jited(p: &ProgObj, arch: &str, opcodes: bool, linum: bool) -> Result<Listing, String> {
    use bpfvm::xlated::{JitArch, JitedItem};
    let arch = match arch {
        "x86_64" | "x86" | "" => JitArch::X86_64,
        "aarch64" | "arm64" => JitArch::Aarch64,
        other => return Err(format!("unknown arch '{other}' (x86_64 or aarch64)")),
    };
    let Some(funcs) = bpfvm::xlated::jited_listing(p, arch) else {
        return Err(match p.jit_error() {
            Some(e) => format!(
                "the program has no native code: {}",
                crate::render::error_chain(e)
            ),
            None => "the program has no native code".to_string(),
        });
    };
    let funcs = funcs
        .into_iter()
        .map(|f| JitedFunc {
            proto: f.proto,
            label: f.label,
            lines: f
                .items
                .iter()
                .map(|i| match i {
                    JitedItem::Source(l) => JitedLine::Src(src_line(l)),
                    JitedItem::Insn {
                        offset,
                        bytes,
                        text,
                    } => JitedLine::Insn {
                        offset: *offset as u64,
                        text: text.clone(),
                        bytes_hex: to_hex(bytes),
                    },
                })
                .collect(),
        })
        .collect();
    Ok(Listing::Jited {
        opcodes,
        linum,
        funcs,
    })
}

// ---- BTF ---------------------------------------------------------------------

/// `btf show|list [id N]`: each BTF object with the programs and maps using it.
pub fn btf_show(rt: &Runtime, id: Option<u32>) -> Result<Listing, String> {
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
    let mut items = Vec::new();
    for id in ids {
        let Ok(b) = rt.btf_by_id(id) else { continue };
        items.push(BtfItem {
            id,
            name: b.name.clone(),
            size: b.size as u64,
            prog_ids: progs
                .iter()
                .filter(|p| p.btf.as_ref().is_some_and(|x| x.id == id))
                .map(|p| p.id)
                .collect(),
            map_ids: maps
                .iter()
                .filter(|m| m.btf.as_ref().is_some_and(|x| x.id == id))
                .map(|m| m.id)
                .collect(),
        });
    }
    Ok(Listing::Btfs {
        single: id.is_some(),
        items,
    })
}

/// `btf dump`: the BTF as the kernel's blob.
pub fn btf_dump(btf: &bpfvm::btf::Btf, roots: Option<Vec<u32>>, c: bool) -> Listing {
    Listing::BtfDump {
        data_hex: to_hex(&btf.to_bytes()),
        roots,
        c,
    }
}
