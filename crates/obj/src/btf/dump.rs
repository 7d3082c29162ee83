//! `bpftool btf dump file X` (plain) and `bpftool -j btf dump file X` (JSON),
//! as bpftool 7.1 prints them. Quirks kept on purpose: VAR lines have a
//! comma before `linkage=`, ENUM64 values carry C suffixes (`LL`/`ULL`),
//! DATASEC variables are followed by `(KIND 'name')` of their type, and in
//! JSON an unsigned ENUM's 32-bit value is widened as if signed
//! (0xffffffff prints as 18446744073709551615, 4294967295 in plain text).

use std::fmt::Write;

use serde_json::{json, Map, Value};

use super::{
    Btf, BtfType, BtfTypeData, BTF_INT_BOOL, BTF_INT_CHAR, BTF_INT_SIGNED, BTF_LINKAGE_EXTERN,
    BTF_LINKAGE_GLOBAL, BTF_LINKAGE_STATIC,
};

/// bpftool's `btf_str`: offset 0 is "(anon)".
fn btf_str(btf: &Btf, off: u32) -> &str {
    if off == 0 {
        "(anon)"
    } else {
        btf.str_at(off)
    }
}

fn int_encoding_str(encoding: u8) -> &'static str {
    match encoding {
        0 => "(none)",
        BTF_INT_SIGNED => "SIGNED",
        BTF_INT_CHAR => "CHAR",
        BTF_INT_BOOL => "BOOL",
        _ => "UNKN",
    }
}

fn linkage_str(linkage: u32) -> &'static str {
    match linkage {
        BTF_LINKAGE_STATIC => "static",
        BTF_LINKAGE_GLOBAL => "global",
        BTF_LINKAGE_EXTERN => "extern",
        _ => "(unknown)",
    }
}

fn enum_encoding_str(t: &BtfType) -> &'static str {
    if t.kind_flag {
        "SIGNED"
    } else {
        "UNSIGNED"
    }
}

/// Kind and name of a DATASEC variable's type, as the plain dump appends
/// them; `None` when the id is out of range (bpftool then prints nothing).
fn var_kind_name(btf: &Btf, type_id: u32) -> Option<(&'static str, &str)> {
    if type_id == 0 {
        return Some(("UNKNOWN", "(anon)"));
    }
    let t = btf.type_by_id(type_id).ok()?;
    Some((t.kind().name(), btf_str(btf, t.name_off)))
}

/// One type in the plain layout, without the trailing newline.
fn plain_type(btf: &Btf, id: u32, t: &BtfType, out: &mut String) {
    let _ = write!(
        out,
        "[{id}] {} '{}'",
        t.kind().name(),
        btf_str(btf, t.name_off)
    );
    match &t.data {
        BtfTypeData::Int {
            encoding,
            offset,
            bits,
        } => {
            let _ = write!(
                out,
                " size={} bits_offset={offset} nr_bits={bits} encoding={}",
                t.size_or_type,
                int_encoding_str(*encoding)
            );
        }
        BtfTypeData::Ptr
        | BtfTypeData::Typedef
        | BtfTypeData::Volatile
        | BtfTypeData::Const
        | BtfTypeData::Restrict
        | BtfTypeData::TypeTag => {
            let _ = write!(out, " type_id={}", t.size_or_type);
        }
        BtfTypeData::Array(a) => {
            let _ = write!(
                out,
                " type_id={} index_type_id={} nr_elems={}",
                a.elem_type, a.index_type, a.nelems
            );
        }
        BtfTypeData::Struct(ms) | BtfTypeData::Union(ms) => {
            let _ = write!(out, " size={} vlen={}", t.size_or_type, t.vlen());
            for m in ms {
                let _ = write!(
                    out,
                    "\n\t'{}' type_id={} bits_offset={}",
                    btf_str(btf, m.name_off),
                    m.type_id,
                    m.bits_offset
                );
                if m.bitfield_size != 0 {
                    let _ = write!(out, " bitfield_size={}", m.bitfield_size);
                }
            }
        }
        BtfTypeData::Enum(es) => {
            let _ = write!(
                out,
                " encoding={} size={} vlen={}",
                enum_encoding_str(t),
                t.size_or_type,
                t.vlen()
            );
            for e in es {
                let name = btf_str(btf, e.name_off);
                if t.kind_flag {
                    let _ = write!(out, "\n\t'{name}' val={}", e.val as i32);
                } else {
                    let _ = write!(out, "\n\t'{name}' val={}", e.val);
                }
            }
        }
        BtfTypeData::Enum64(es) => {
            let _ = write!(
                out,
                " encoding={} size={} vlen={}",
                enum_encoding_str(t),
                t.size_or_type,
                t.vlen()
            );
            for e in es {
                let name = btf_str(btf, e.name_off);
                if t.kind_flag {
                    let _ = write!(out, "\n\t'{name}' val={}LL", e.val as i64);
                } else {
                    let _ = write!(out, "\n\t'{name}' val={}ULL", e.val);
                }
            }
        }
        BtfTypeData::Fwd => {
            let _ = write!(
                out,
                " fwd_kind={}",
                if t.kind_flag { "union" } else { "struct" }
            );
        }
        BtfTypeData::Func => {
            let _ = write!(
                out,
                " type_id={} linkage={}",
                t.size_or_type,
                linkage_str(u32::from(t.func_linkage))
            );
        }
        BtfTypeData::FuncProto(ps) => {
            let _ = write!(out, " ret_type_id={} vlen={}", t.size_or_type, t.vlen());
            for p in ps {
                let _ = write!(
                    out,
                    "\n\t'{}' type_id={}",
                    btf_str(btf, p.name_off),
                    p.type_id
                );
            }
        }
        BtfTypeData::Var { linkage } => {
            let _ = write!(
                out,
                " type_id={}, linkage={}",
                t.size_or_type,
                linkage_str(*linkage)
            );
        }
        BtfTypeData::Datasec(vs) => {
            let _ = write!(out, " size={} vlen={}", t.size_or_type, t.vlen());
            for v in vs {
                let _ = write!(
                    out,
                    "\n\ttype_id={} offset={} size={}",
                    v.type_id, v.offset, v.size
                );
                if let Some((kind, name)) = var_kind_name(btf, v.type_id) {
                    let _ = write!(out, " ({kind} '{name}')");
                }
            }
        }
        BtfTypeData::Float => {
            let _ = write!(out, " size={}", t.size_or_type);
        }
        BtfTypeData::DeclTag { component_idx } => {
            let _ = write!(
                out,
                " type_id={} component_idx={component_idx}",
                t.size_or_type
            );
        }
    }
}

/// `bpftool btf dump file X` output, one type per line (members on
/// tab-indented lines), ending with a newline.
pub fn dump_btf_plain(btf: &Btf) -> String {
    let mut out = String::new();
    for (id, t) in btf.iter() {
        plain_type(btf, id, t, &mut out);
        out.push('\n');
    }
    out
}

fn json_type(btf: &Btf, id: u32, t: &BtfType) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(id));
    o.insert("kind".into(), json!(t.kind().name()));
    o.insert("name".into(), json!(btf_str(btf, t.name_off)));
    let mut put = |k: &str, v: Value| {
        o.insert(k.to_string(), v);
    };
    match &t.data {
        BtfTypeData::Int {
            encoding,
            offset,
            bits,
        } => {
            put("size", json!(t.size_or_type));
            put("bits_offset", json!(offset));
            put("nr_bits", json!(bits));
            put("encoding", json!(int_encoding_str(*encoding)));
        }
        BtfTypeData::Ptr
        | BtfTypeData::Typedef
        | BtfTypeData::Volatile
        | BtfTypeData::Const
        | BtfTypeData::Restrict
        | BtfTypeData::TypeTag => put("type_id", json!(t.size_or_type)),
        BtfTypeData::Array(a) => {
            put("type_id", json!(a.elem_type));
            put("index_type_id", json!(a.index_type));
            put("nr_elems", json!(a.nelems));
        }
        BtfTypeData::Struct(ms) | BtfTypeData::Union(ms) => {
            put("size", json!(t.size_or_type));
            put("vlen", json!(t.vlen()));
            let members = ms
                .iter()
                .map(|m| {
                    let mut mo = Map::new();
                    mo.insert("name".into(), json!(btf_str(btf, m.name_off)));
                    mo.insert("type_id".into(), json!(m.type_id));
                    mo.insert("bits_offset".into(), json!(m.bits_offset));
                    if m.bitfield_size != 0 {
                        mo.insert("bitfield_size".into(), json!(m.bitfield_size));
                    }
                    Value::Object(mo)
                })
                .collect();
            put("members", Value::Array(members));
        }
        BtfTypeData::Enum(es) => {
            put("encoding", json!(enum_encoding_str(t)));
            put("size", json!(t.size_or_type));
            put("vlen", json!(t.vlen()));
            let values = es
                .iter()
                .map(|e| {
                    // bpftool widens the stored 32 bits as signed even for
                    // unsigned enums in JSON (plain text prints them as %u):
                    // 0xffffffff comes out as 18446744073709551615.
                    let val = if t.kind_flag {
                        json!(e.val as i32)
                    } else {
                        json!(e.val as i32 as i64 as u64)
                    };
                    json!({"name": btf_str(btf, e.name_off), "val": val})
                })
                .collect();
            put("values", Value::Array(values));
        }
        BtfTypeData::Enum64(es) => {
            put("encoding", json!(enum_encoding_str(t)));
            put("size", json!(t.size_or_type));
            put("vlen", json!(t.vlen()));
            let values = es
                .iter()
                .map(|e| {
                    let val = if t.kind_flag {
                        json!(e.val as i64)
                    } else {
                        json!(e.val)
                    };
                    json!({"name": btf_str(btf, e.name_off), "val": val})
                })
                .collect();
            put("values", Value::Array(values));
        }
        BtfTypeData::Fwd => put(
            "fwd_kind",
            json!(if t.kind_flag { "union" } else { "struct" }),
        ),
        BtfTypeData::Func => {
            put("type_id", json!(t.size_or_type));
            put("linkage", json!(linkage_str(u32::from(t.func_linkage))));
        }
        BtfTypeData::FuncProto(ps) => {
            put("ret_type_id", json!(t.size_or_type));
            put("vlen", json!(t.vlen()));
            let params = ps
                .iter()
                .map(|p| json!({"name": btf_str(btf, p.name_off), "type_id": p.type_id}))
                .collect();
            put("params", Value::Array(params));
        }
        BtfTypeData::Var { linkage } => {
            put("type_id", json!(t.size_or_type));
            put("linkage", json!(linkage_str(*linkage)));
        }
        BtfTypeData::Datasec(vs) => {
            put("size", json!(t.size_or_type));
            put("vlen", json!(t.vlen()));
            let vars = vs
                .iter()
                .map(|v| json!({"type_id": v.type_id, "offset": v.offset, "size": v.size}))
                .collect();
            put("vars", Value::Array(vars));
        }
        BtfTypeData::Float => put("size", json!(t.size_or_type)),
        BtfTypeData::DeclTag { component_idx } => {
            put("type_id", json!(t.size_or_type));
            put("component_idx", json!(component_idx));
        }
    }
    Value::Object(o)
}

/// `bpftool btf dump map MAP` (`key`, `value` or `kv`): only the given root
/// types, one line each, in the order given.
pub fn dump_btf_plain_roots(btf: &Btf, roots: &[u32]) -> String {
    let mut out = String::new();
    for &id in roots {
        if let Ok(t) = btf.type_by_id(id) {
            plain_type(btf, id, t, &mut out);
            out.push('\n');
        } else if id == 0 {
            // A map without a key type (global data): bpftool shows void so.
            out.push_str("[0] UNKNOWN '(anon)'\n");
        }
    }
    out
}

/// [`dump_btf_plain_roots`] as bpftool's JSON value.
pub fn dump_btf_json_roots(btf: &Btf, roots: &[u32]) -> Value {
    let types = roots
        .iter()
        .filter_map(|&id| match btf.type_by_id(id) {
            Ok(t) => Some(json_type(btf, id, t)),
            Err(_) if id == 0 => Some(json!({"id": 0, "kind": "UNKNOWN", "name": "(anon)"})),
            Err(_) => None,
        })
        .collect();
    let mut o = Map::new();
    o.insert("types".into(), Value::Array(types));
    Value::Object(o)
}

/// `bpftool -j btf dump file X` as a value: `{"types": [...]}` with keys in
/// bpftool's order. Write it with [`super::write_bpftool_compact`] or
/// [`super::write_bpftool_pretty`] for `-j`/`-p` text.
pub fn dump_btf_json(btf: &Btf) -> Value {
    let types = btf.iter().map(|(id, t)| json_type(btf, id, t)).collect();
    let mut o = Map::new();
    o.insert("types".into(), Value::Array(types));
    Value::Object(o)
}
