//! Renders raw map keys and values through BTF the way `bpftool map dump`
//! does (bpftool's own BTF dumper, v7.x), in both of its modes:
//! [`DumpMode::Json`] for `-j`/`-p` ("formatted") and [`DumpMode::Plain`] for
//! the plain dump, which is the same JSON-like tree with bitfields and 128-bit
//! integers as bare hex and pointers as `%p` (`(nil)`, `0x...`).
//!
//! Rules, as observed from bpftool 7.1 on a live kernel:
//! - ints of 8/16/32/64 bits print as decimal, signed per the encoding;
//!   `_Bool` as `true`/`false`; 128-bit ints as hex (`0x<hi><lo:016>`);
//! - bitfields (struct members with a bitfield size, or ints with a bit
//!   offset or odd width) print as hex of the raw bits, never sign-extended;
//! - `char` arrays (element `char` or CHAR-encoded, size 1, modifiers but not
//!   typedefs skipped) print as a string when the bytes up to a NUL are all
//!   printable; without a NUL in the array they stay a number array;
//! - enums print the enumerator's name, else the value read sign-extended
//!   from the enum's size (so an unsigned 1-byte enum 255 prints -1 and does
//!   not even match its own enumerator 255);
//! - anonymous members get the name `""` (repeated keys are possible);
//! - FLOAT, FUNC and the like print `(unsupported-kind` (sic) and abort the
//!   rest of the dump, every open container still being closed.

use serde_json::Value;

use super::json_writer::JsonWriter;
use super::BTF_INT_SIGNED;
use super::{Btf, BtfError, BtfKind, BtfType, BtfTypeData, BTF_INT_BOOL, BTF_INT_CHAR};

/// How deep nested aggregates may go before the dumper gives up.
const MAX_VALUE_DEPTH: usize = 128;
/// How many printed elements a single value may produce (zero-sized array
/// elements could otherwise make billions).
const MAX_VALUE_NODES: usize = 1 << 20;

/// A rendered value: an ordered tree that keeps what `serde_json::Value`
/// cannot (repeated keys, bare tokens such as `0x1f` or `(nil)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dumped {
    /// Nothing was printed (a failure right after an object member's name).
    Nothing,
    /// Printed verbatim: numbers, hex, `(nil)`, `(unsupported-kind`.
    Raw(String),
    /// A quoted string (escaped when written).
    Str(String),
    Bool(bool),
    Array(Vec<Dumped>),
    /// Members in order; names may repeat.
    Object(Vec<(String, Dumped)>),
}

impl Dumped {
    /// Text as `bpftool -p` (or the plain BTF map dump) prints it, with the
    /// final newline.
    pub fn to_bpftool_pretty(&self) -> String {
        let mut w = JsonWriter::new(true);
        w.dumped(self);
        w.finish()
    }

    /// Text as `bpftool -j` prints it, with the final newline.
    pub fn to_bpftool_compact(&self) -> String {
        let mut w = JsonWriter::new(false);
        w.dumped(self);
        w.finish()
    }

    /// Converts to a `serde_json::Value`. Lossy: a repeated key (two
    /// anonymous members) keeps its first position and its last value, and
    /// bare tokens that are not JSON become strings.
    pub fn to_json(&self) -> Value {
        match self {
            Dumped::Nothing => Value::Null,
            Dumped::Raw(s) => match serde_json::from_str::<Value>(s) {
                Ok(v @ (Value::Number(_) | Value::String(_) | Value::Bool(_))) => v,
                _ => Value::String(s.clone()),
            },
            Dumped::Str(s) => Value::String(s.clone()),
            Dumped::Bool(b) => Value::Bool(*b),
            Dumped::Array(items) => Value::Array(items.iter().map(Dumped::to_json).collect()),
            Dumped::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Which of bpftool's two renderings to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpMode {
    /// `-j`/`-p`: hex as quoted strings, pointers as decimal.
    Json,
    /// Plain `map dump`: hex bare, pointers as `%p`.
    Plain,
}

/// The result of [`dump_value`]: what bpftool would have printed, and the
/// error that stopped it early, if any (bpftool still closes every open
/// container, so `value` is always well formed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueDump {
    pub value: Dumped,
    pub error: Option<BtfError>,
}

/// Renders `data` as type `type_id`.
pub fn dump_value(btf: &Btf, type_id: u32, data: &[u8], mode: DumpMode) -> ValueDump {
    let mut d = Dumper {
        btf,
        plain: mode == DumpMode::Plain,
        nodes: 0,
    };
    match d.do_type(type_id, 0, data, 0, 0) {
        Ok(value) => ValueDump { value, error: None },
        Err(Partial { printed, error }) => ValueDump {
            value: printed,
            error: Some(error),
        },
    }
}

/// Renders `data` as type `type_id` in bpftool's JSON mode and converts it to
/// a `serde_json::Value` (see [`Dumped::to_json`] for what is lost; use
/// [`dump_value`] for byte-exact output).
pub fn value_to_json(btf: &Btf, type_id: u32, data: &[u8]) -> Result<Value, BtfError> {
    let r = dump_value(btf, type_id, data, DumpMode::Json);
    match r.error {
        Some(e) => Err(e),
        None => Ok(r.value.to_json()),
    }
}

/// The value side of a map entry: one buffer, or one per possible CPU for
/// per-CPU maps (each already cut to `value_size`).
#[derive(Debug, Clone, Copy)]
pub enum MapValues<'a> {
    Single(&'a [u8]),
    PerCpu(&'a [&'a [u8]]),
}

/// One entry of a BTF map dump as bpftool builds it: `{"key": .., "value": ..}`,
/// or `{"key": .., "values": [{"cpu": N, "value": ..}, ..]}` for per-CPU maps.
/// `key_type_id` 0 omits the key (global data maps are created without a key
/// type, which is why a `.bss` dump shows only `"value"`). An error in the
/// key stops the entry before the value, as in bpftool.
pub fn map_entry_dump(
    btf: &Btf,
    key_type_id: u32,
    value_type_id: u32,
    key: &[u8],
    values: MapValues<'_>,
    mode: DumpMode,
) -> ValueDump {
    let mut fields = Vec::new();
    let mut error = None;
    if key_type_id != 0 {
        let k = dump_value(btf, key_type_id, key, mode);
        fields.push(("key".to_string(), k.value));
        error = k.error;
    }
    if error.is_none() {
        match values {
            MapValues::Single(v) => {
                let r = dump_value(btf, value_type_id, v, mode);
                fields.push(("value".to_string(), r.value));
                error = r.error;
            }
            MapValues::PerCpu(per_cpu) => {
                let mut items = Vec::new();
                for (cpu, v) in per_cpu.iter().enumerate() {
                    let r = dump_value(btf, value_type_id, v, mode);
                    items.push(Dumped::Object(vec![
                        ("cpu".to_string(), Dumped::Raw(cpu.to_string())),
                        ("value".to_string(), r.value),
                    ]));
                    if r.error.is_some() {
                        error = r.error;
                        break;
                    }
                }
                fields.push(("values".to_string(), Dumped::Array(items)));
            }
        }
    }
    ValueDump {
        value: Dumped::Object(fields),
        error,
    }
}

/// Raw bytes as bpftool's `-j` map dump lists them: `["0x00","0x2a",..]`.
pub fn hex_byte_array(bytes: &[u8]) -> Dumped {
    Dumped::Array(
        bytes
            .iter()
            .map(|b| Dumped::Str(format!("0x{b:02x}")))
            .collect(),
    )
}

/// A failure with whatever had been printed before it.
struct Partial {
    printed: Dumped,
    error: BtfError,
}

fn fail(error: BtfError) -> Partial {
    Partial {
        printed: Dumped::Nothing,
        error,
    }
}

type Out = Result<Dumped, Partial>;

struct Dumper<'a> {
    btf: &'a Btf,
    plain: bool,
    nodes: usize,
}

fn hex128(v: u128) -> String {
    let upper = (v >> 64) as u64;
    let lower = v as u64;
    if upper == 0 {
        format!("0x{lower:x}")
    } else {
        format!("0x{upper:x}{lower:016x}")
    }
}

impl Dumper<'_> {
    /// `data` starting at `off`; `base` is the absolute offset, for errors.
    fn take<'d>(
        &self,
        type_id: u32,
        data: &'d [u8],
        base: usize,
        off: usize,
        need: usize,
    ) -> Result<&'d [u8], BtfError> {
        off.checked_add(need)
            .and_then(|end| data.get(off..end))
            .ok_or(BtfError::ValueTruncated {
                type_id,
                offset: base + off,
                need,
                have: data.len().saturating_sub(off),
            })
    }

    fn hex(&self, v: u128) -> Dumped {
        if self.plain {
            Dumped::Raw(hex128(v))
        } else {
            Dumped::Str(hex128(v))
        }
    }

    fn do_type(
        &mut self,
        type_id: u32,
        bit_off: u8,
        data: &[u8],
        base: usize,
        depth: usize,
    ) -> Out {
        if depth > MAX_VALUE_DEPTH {
            return Err(fail(BtfError::ValueTooDeep {
                type_id,
                limit: MAX_VALUE_DEPTH,
            }));
        }
        self.nodes += 1;
        if self.nodes > MAX_VALUE_NODES {
            return Err(fail(BtfError::ValueTooLarge {
                limit: MAX_VALUE_NODES,
            }));
        }
        if type_id == 0 {
            return Ok(Dumped::Raw("(unknown)".into()));
        }
        let t = self.btf.type_by_id(type_id).map_err(fail)?;
        match &t.data {
            BtfTypeData::Int { .. } => self.int(type_id, t, bit_off, data, base),
            BtfTypeData::Struct(_) | BtfTypeData::Union(_) => self.struct_(t, data, base, depth),
            BtfTypeData::Array(_) => self.array(type_id, t, data, base, depth),
            BtfTypeData::Enum(es) => {
                let size = t.size_or_type;
                let b = self
                    .take(type_id, data, base, 0, size as usize)
                    .map_err(|e| {
                        if matches!(size, 1 | 2 | 4 | 8) {
                            fail(e)
                        } else {
                            fail(BtfError::BadEnumSize { type_id, size })
                        }
                    })?;
                let value: i64 = match size {
                    1 => i64::from(b[0] as i8),
                    2 => i64::from(i16::from_le_bytes([b[0], b[1]])),
                    4 => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    8 => i64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
                    _ => return Err(fail(BtfError::BadEnumSize { type_id, size })),
                };
                Ok(es
                    .iter()
                    .find(|e| i64::from(e.val as i32) == value)
                    .map(|e| Dumped::Str(self.btf.str_at(e.name_off).to_string()))
                    .unwrap_or_else(|| Dumped::Raw(value.to_string())))
            }
            BtfTypeData::Enum64(es) => {
                let b = self.take(type_id, data, base, 0, 8).map_err(fail)?;
                let value = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                Ok(es
                    .iter()
                    .find(|e| e.val == value)
                    .map(|e| Dumped::Str(self.btf.str_at(e.name_off).to_string()))
                    .unwrap_or_else(|| Dumped::Raw((value as i64).to_string())))
            }
            BtfTypeData::Ptr => {
                let b = self.take(type_id, data, base, 0, 8).map_err(fail)?;
                let v = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                Ok(Dumped::Raw(match (self.plain, v) {
                    (true, 0) => "(nil)".to_string(),
                    (true, v) => format!("{v:#x}"),
                    (false, v) => v.to_string(),
                }))
            }
            BtfTypeData::Fwd => Err(Partial {
                printed: Dumped::Raw("(fwd-kind-invalid)".into()),
                error: BtfError::UnsupportedValueKind {
                    type_id,
                    kind: "FWD",
                },
            }),
            BtfTypeData::Typedef
            | BtfTypeData::Volatile
            | BtfTypeData::Const
            | BtfTypeData::Restrict => {
                let resolved = self.btf.resolve_type(type_id).map_err(fail)?;
                self.do_type(resolved, bit_off, data, base, depth + 1)
            }
            BtfTypeData::Var { .. } => {
                let name = self.btf.str_at(t.name_off).to_string();
                match self.do_type(t.size_or_type, bit_off, data, base, depth + 1) {
                    Ok(v) => Ok(Dumped::Object(vec![(name, v)])),
                    Err(p) => Err(Partial {
                        printed: Dumped::Object(vec![(name, p.printed)]),
                        error: p.error,
                    }),
                }
            }
            BtfTypeData::Datasec(vars) => {
                let name = self.btf.str_at(t.name_off).to_string();
                let mut items = Vec::new();
                let mut error = None;
                for v in vars {
                    let r = data
                        .get(v.offset as usize..)
                        .ok_or_else(|| {
                            fail(BtfError::ValueTruncated {
                                type_id: v.type_id,
                                offset: base + v.offset as usize,
                                need: v.size as usize,
                                have: 0,
                            })
                        })
                        .and_then(|d| {
                            self.do_type(v.type_id, 0, d, base + v.offset as usize, depth + 1)
                        });
                    match r {
                        Ok(x) => items.push(x),
                        Err(p) => {
                            if p.printed != Dumped::Nothing {
                                items.push(p.printed);
                            }
                            error = Some(p.error);
                            break;
                        }
                    }
                }
                let printed = Dumped::Object(vec![(name, Dumped::Array(items))]);
                match error {
                    None => Ok(printed),
                    Some(error) => Err(Partial { printed, error }),
                }
            }
            BtfTypeData::Func
            | BtfTypeData::FuncProto(_)
            | BtfTypeData::Float
            | BtfTypeData::DeclTag { .. }
            | BtfTypeData::TypeTag => Err(Partial {
                printed: Dumped::Raw("(unsupported-kind".into()),
                error: BtfError::UnsupportedValueKind {
                    type_id,
                    kind: t.kind().name(),
                },
            }),
        }
    }

    /// Bits `[bit_off, bit_off + nr_bits)` of little-endian `data`, as hex.
    fn bitfield(
        &self,
        type_id: u32,
        nr_bits: u32,
        bit_off: u32,
        data: &[u8],
        base: usize,
    ) -> Result<Dumped, BtfError> {
        let total = bit_off + nr_bits;
        if total > 128 {
            return Err(BtfError::UnsupportedValueKind {
                type_id,
                kind: "bitfield wider than 128 bits",
            });
        }
        let nbytes = total.div_ceil(8) as usize;
        let b = self.take(type_id, data, base, 0, nbytes)?;
        let mut buf = [0u8; 16];
        buf[..nbytes].copy_from_slice(b);
        let raw = u128::from_le_bytes(buf);
        let v = if nr_bits == 0 {
            0
        } else {
            (raw >> bit_off) & (u128::MAX >> (128 - nr_bits))
        };
        Ok(self.hex(v))
    }

    fn int(&self, type_id: u32, t: &BtfType, bit_off: u8, data: &[u8], base: usize) -> Out {
        let BtfTypeData::Int {
            encoding,
            offset,
            bits,
        } = t.data
        else {
            return Err(fail(BtfError::NoSize {
                type_id,
                kind: "non-int",
            }));
        };
        let nr_bits = u32::from(bits);
        if bit_off != 0 || offset != 0 || nr_bits % 8 != 0 {
            let total = u32::from(bit_off) + u32::from(offset);
            let skip = (total / 8) as usize;
            let d = data.get(skip..).unwrap_or(&[]);
            return self
                .bitfield(type_id, nr_bits, total % 8, d, base + skip)
                .map_err(fail);
        }
        if nr_bits == 128 {
            let b = self.take(type_id, data, base, 0, 16).map_err(fail)?;
            let v = u128::from_le_bytes(b.try_into().unwrap_or([0; 16]));
            return Ok(self.hex(v));
        }
        let read = |n: usize| -> Result<u64, Partial> {
            let b = self.take(type_id, data, base, 0, n).map_err(fail)?;
            let mut buf = [0u8; 8];
            buf[..n].copy_from_slice(b);
            Ok(u64::from_le_bytes(buf))
        };
        let int_bits = || self.bitfield(type_id, nr_bits, 0, data, base).map_err(fail);
        match encoding {
            0 => Ok(match nr_bits {
                64 | 32 | 16 | 8 => Dumped::Raw(read(nr_bits as usize / 8)?.to_string()),
                _ => int_bits()?,
            }),
            BTF_INT_SIGNED => Ok(match nr_bits {
                64 => Dumped::Raw((read(8)? as i64).to_string()),
                32 => Dumped::Raw((read(4)? as u32 as i32).to_string()),
                16 => Dumped::Raw((read(2)? as u16 as i16).to_string()),
                8 => Dumped::Raw((read(1)? as u8 as i8).to_string()),
                _ => int_bits()?,
            }),
            BTF_INT_CHAR => {
                let c = read(1)? as u8;
                Ok(Dumped::Raw(if (0x20..0x7f).contains(&c) {
                    format!("\"{}\"", c as char)
                } else if self.plain {
                    format!("0x{c:x}")
                } else {
                    format!("\"\\u00{c:02x}\"")
                }))
            }
            BTF_INT_BOOL => Ok(Dumped::Bool(read(1)? != 0)),
            _ => Err(fail(BtfError::BadIntEncoding { type_id, encoding })),
        }
    }

    fn struct_(&mut self, t: &BtfType, data: &[u8], base: usize, depth: usize) -> Out {
        let mut fields = Vec::new();
        for m in t.members() {
            let name = self.btf.str_at(m.name_off).to_string();
            let data_off = (m.bits_offset / 8) as usize;
            let bit_off = (m.bits_offset % 8) as u8;
            let sub = data.get(data_off..).unwrap_or(&[]);
            let r = if m.bitfield_size != 0 {
                self.bitfield(
                    m.type_id,
                    m.bitfield_size,
                    u32::from(bit_off),
                    sub,
                    base + data_off,
                )
                .map_err(fail)
            } else {
                self.do_type(m.type_id, bit_off, sub, base + data_off, depth + 1)
            };
            match r {
                Ok(v) => fields.push((name, v)),
                Err(p) => {
                    fields.push((name, p.printed));
                    return Err(Partial {
                        printed: Dumped::Object(fields),
                        error: p.error,
                    });
                }
            }
        }
        Ok(Dumped::Object(fields))
    }

    /// bpftool's test for printing a char array as a string.
    fn is_str_array(&self, elem_type: u32, nelems: u32, data: &[u8]) -> bool {
        if nelems == 0 {
            return false;
        }
        // Modifiers are skipped, typedefs are not: `typedef char c_t; c_t a[4]`
        // prints as numbers.
        let mut id = elem_type;
        let mut elem = None;
        for _ in 0..super::MAX_RESOLVE_DEPTH {
            match self.btf.type_by_id(id) {
                Ok(t) if t.kind().is_modifier() => id = t.size_or_type,
                Ok(t) => {
                    elem = Some(t);
                    break;
                }
                Err(_) => return false,
            }
        }
        let Some(elem) = elem else { return false };
        let BtfTypeData::Int { encoding, .. } = elem.data else {
            return false;
        };
        if elem.size_or_type != 1 {
            return false;
        }
        if encoding != BTF_INT_CHAR && self.btf.str_at(elem.name_off) != "char" {
            return false;
        }
        for &b in data.iter().take(nelems as usize) {
            if b == 0 {
                return true;
            }
            // C's signed char: bytes >= 0x80 are negative, hence "not > 0x1f".
            if b <= 0x1f || b >= 0x7f {
                return false;
            }
        }
        false
    }

    fn array(&mut self, type_id: u32, t: &BtfType, data: &[u8], base: usize, depth: usize) -> Out {
        let BtfTypeData::Array(a) = t.data else {
            return Err(fail(BtfError::NoSize {
                type_id,
                kind: "non-array",
            }));
        };
        if self.is_str_array(a.elem_type, a.nelems, data) {
            let end = data.iter().position(|&b| b == 0).unwrap_or(0);
            return Ok(Dumped::Str(
                String::from_utf8_lossy(&data[..end]).into_owned(),
            ));
        }
        let elem_size = self.btf.resolve_size(a.elem_type).map_err(fail)? as usize;
        let mut items = Vec::new();
        for i in 0..a.nelems as usize {
            let off = i.saturating_mul(elem_size);
            let r = match data.get(off..) {
                Some(d) => self.do_type(a.elem_type, 0, d, base + off, depth + 1),
                None => Err(fail(BtfError::ValueTruncated {
                    type_id: a.elem_type,
                    offset: base + off,
                    need: elem_size,
                    have: 0,
                })),
            };
            match r {
                Ok(v) => items.push(v),
                Err(p) => {
                    if p.printed != Dumped::Nothing {
                        items.push(p.printed);
                    }
                    return Err(Partial {
                        printed: Dumped::Array(items),
                        error: p.error,
                    });
                }
            }
        }
        Ok(Dumped::Array(items))
    }
}

/// Whether bpftool's dumper can print a value of this kind at all (FLOAT,
/// FUNC, FWD and the tags make it stop with an error), for callers that want
/// to check a map's value type up front.
pub fn is_printable_kind(kind: BtfKind) -> bool {
    !matches!(
        kind,
        BtfKind::Func
            | BtfKind::FuncProto
            | BtfKind::Float
            | BtfKind::DeclTag
            | BtfKind::TypeTag
            | BtfKind::Fwd
    )
}
