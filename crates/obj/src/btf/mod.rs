//! BTF (BPF Type Format) and BTF.ext, as the kernel defines them in
//! Documentation/bpf/btf.rst.
//!
//! Data flow: the ELF reader hands the raw `.BTF` section to [`Btf::parse`],
//! which checks the header, decodes every type into a [`BtfType`] (ids from 1;
//! id 0 is `void`) and validates string offsets, type references and
//! reference loops up front, so that the queries afterwards cannot fail on
//! malformed input. The loader then fixes up DATASEC sizes and variable
//! offsets ([`Btf::fixup_datasec`], as libbpf does) and serialises the result
//! with [`Btf::to_bytes`] for the kernel-like runtime. `.BTF.ext` is decoded by
//! [`ext::BtfExt::parse`] against the `.BTF` string table.
//!
//! Output side: [`value::dump_value`] renders map keys and values the way
//! `bpftool map dump` does, [`json_writer`] reproduces bpftool's JSON text
//! layout byte for byte, [`dump`] reproduces `bpftool btf dump file` and
//! [`cdump`] its `format c`.

pub mod cdump;
pub mod core;
pub mod dump;
pub mod ext;
pub mod json_writer;
pub mod value;

pub use self::core::{CoreApplied, CoreError, CoreTarget, POISON_HELPER_ID};
pub use cdump::{dump_btf_c, dump_btf_c_roots, CDumpError};
pub use dump::{dump_btf_json, dump_btf_json_roots, dump_btf_plain, dump_btf_plain_roots};
pub use ext::{BtfExt, BtfExtError, BtfExtSection, CoreRelo, CoreReloKind, FuncInfo, LineInfo};
pub use json_writer::{write_bpftool_compact, write_bpftool_pretty};
pub use value::{
    dump_value, hex_byte_array, map_entry_dump, value_to_json, DumpMode, Dumped, MapValues,
    ValueDump,
};

/// `BTF_MAGIC` as it reads in the file's own (little-endian) byte order.
pub const BTF_MAGIC: u16 = 0xeb9f;
/// The only BTF version the kernel knows.
pub const BTF_VERSION: u8 = 1;
/// Size of `struct btf_header`.
pub const BTF_HEADER_LEN: usize = 24;
/// Size of the fixed part of `struct btf_type`.
const BTF_TYPE_LEN: usize = 12;
/// libbpf's `MAX_RESOLVE_DEPTH`: how many modifier/typedef/array hops size
/// and type resolution follow before giving up.
pub const MAX_RESOLVE_DEPTH: usize = 32;

/// `BTF_INT_SIGNED`
pub const BTF_INT_SIGNED: u8 = 1 << 0;
/// `BTF_INT_CHAR`
pub const BTF_INT_CHAR: u8 = 1 << 1;
/// `BTF_INT_BOOL`
pub const BTF_INT_BOOL: u8 = 1 << 2;

/// `BTF_FUNC_STATIC` / `BTF_VAR_STATIC`
pub const BTF_LINKAGE_STATIC: u32 = 0;
/// `BTF_FUNC_GLOBAL` / `BTF_VAR_GLOBAL_ALLOCATED`
pub const BTF_LINKAGE_GLOBAL: u32 = 1;
/// `BTF_FUNC_EXTERN` / `BTF_VAR_GLOBAL_EXTERN`
pub const BTF_LINKAGE_EXTERN: u32 = 2;

/// Errors from parsing or querying `.BTF` and from the value printer.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum BtfError {
    #[error("btf data truncated: need {need} bytes at offset {offset}, have {have}")]
    Truncated {
        offset: usize,
        need: usize,
        have: usize,
    },
    #[error("btf magic {magic:#06x} is the other byte order; only little-endian btf is supported")]
    WrongEndian { magic: u16 },
    #[error("bad btf magic {magic:#06x}")]
    BadMagic { magic: u16 },
    #[error("unsupported btf version {version}")]
    BadVersion { version: u8 },
    #[error("bad btf header: {reason}")]
    BadHeader { reason: &'static str },
    #[error("bad btf string section: {reason}")]
    BadStringSection { reason: &'static str },
    #[error("type [{type_id}] at offset {offset}: truncated, need {need} bytes, have {have}")]
    TypeTruncated {
        type_id: u32,
        offset: usize,
        need: usize,
        have: usize,
    },
    #[error("type [{type_id}] at offset {offset}: unknown kind {kind}")]
    UnknownKind {
        type_id: u32,
        offset: usize,
        kind: u8,
    },
    #[error("type [{type_id}] at offset {offset}: reserved bits set in {field} ({value:#x})")]
    ReservedBits {
        type_id: u32,
        offset: usize,
        field: &'static str,
        value: u32,
    },
    #[error("type [{type_id}] at offset {offset}: bad string offset {name_off}")]
    BadStringOffset {
        type_id: u32,
        offset: usize,
        name_off: u32,
    },
    #[error("type [{type_id}] at offset {offset}: refers to type id {ref_id}, but there are only {nr_types} types")]
    BadTypeRef {
        type_id: u32,
        offset: usize,
        ref_id: u32,
        nr_types: u32,
    },
    #[error("type [{type_id}] at offset {offset}: reference loop")]
    Loop { type_id: u32, offset: usize },
    #[error("type id {type_id} out of range (there are {nr_types} types)")]
    TypeIdOutOfRange { type_id: u32, nr_types: u32 },
    #[error("type [{type_id}]: {kind} has no size")]
    NoSize { type_id: u32, kind: &'static str },
    #[error("type [{type_id}]: resolution deeper than {MAX_RESOLVE_DEPTH} steps")]
    TooDeep { type_id: u32 },
    #[error("type [{type_id}]: size overflows u32")]
    SizeOverflow { type_id: u32 },
    #[error("datasec {name:?} not found")]
    DatasecNotFound { name: String },
    #[error("datasec {datasec:?}: no offset known for variable {var:?}")]
    VarOffsetMissing { datasec: String, var: String },
    #[error("type [{type_id}]: value needs {need} bytes at offset {offset}, have {have}")]
    ValueTruncated {
        type_id: u32,
        offset: usize,
        need: usize,
        have: usize,
    },
    #[error("type [{type_id}]: {kind} cannot be printed as a value")]
    UnsupportedValueKind { type_id: u32, kind: &'static str },
    #[error("type [{type_id}]: bad int encoding {encoding:#x}")]
    BadIntEncoding { type_id: u32, encoding: u8 },
    #[error("type [{type_id}]: enum of size {size} cannot be printed")]
    BadEnumSize { type_id: u32, size: u32 },
    #[error("type [{type_id}]: value nesting deeper than {limit}")]
    ValueTooDeep { type_id: u32, limit: usize },
    #[error("value rendering exceeds {limit} elements")]
    ValueTooLarge { limit: usize },
}

/// BTF kinds (`BTF_KIND_*`), numbered as in the kernel's uapi/linux/btf.h.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BtfKind {
    #[doc(alias = "BTF_KIND_INT")]
    Int = 1,
    #[doc(alias = "BTF_KIND_PTR")]
    Ptr = 2,
    #[doc(alias = "BTF_KIND_ARRAY")]
    Array = 3,
    #[doc(alias = "BTF_KIND_STRUCT")]
    Struct = 4,
    #[doc(alias = "BTF_KIND_UNION")]
    Union = 5,
    #[doc(alias = "BTF_KIND_ENUM")]
    Enum = 6,
    #[doc(alias = "BTF_KIND_FWD")]
    Fwd = 7,
    #[doc(alias = "BTF_KIND_TYPEDEF")]
    Typedef = 8,
    #[doc(alias = "BTF_KIND_VOLATILE")]
    Volatile = 9,
    #[doc(alias = "BTF_KIND_CONST")]
    Const = 10,
    #[doc(alias = "BTF_KIND_RESTRICT")]
    Restrict = 11,
    #[doc(alias = "BTF_KIND_FUNC")]
    Func = 12,
    #[doc(alias = "BTF_KIND_FUNC_PROTO")]
    FuncProto = 13,
    #[doc(alias = "BTF_KIND_VAR")]
    Var = 14,
    #[doc(alias = "BTF_KIND_DATASEC")]
    Datasec = 15,
    #[doc(alias = "BTF_KIND_FLOAT")]
    Float = 16,
    #[doc(alias = "BTF_KIND_DECL_TAG")]
    DeclTag = 17,
    #[doc(alias = "BTF_KIND_TYPE_TAG")]
    TypeTag = 18,
    #[doc(alias = "BTF_KIND_ENUM64")]
    Enum64 = 19,
}

impl BtfKind {
    /// Decodes the 5-bit kind field of `btf_type.info`.
    pub fn from_raw(kind: u8) -> Option<Self> {
        use BtfKind::*;
        Some(match kind {
            1 => Int,
            2 => Ptr,
            3 => Array,
            4 => Struct,
            5 => Union,
            6 => Enum,
            7 => Fwd,
            8 => Typedef,
            9 => Volatile,
            10 => Const,
            11 => Restrict,
            12 => Func,
            13 => FuncProto,
            14 => Var,
            15 => Datasec,
            16 => Float,
            17 => DeclTag,
            18 => TypeTag,
            19 => Enum64,
            _ => return None,
        })
    }

    /// The kind's name as bpftool prints it (`"FUNC_PROTO"`).
    pub fn name(self) -> &'static str {
        use BtfKind::*;
        match self {
            Int => "INT",
            Ptr => "PTR",
            Array => "ARRAY",
            Struct => "STRUCT",
            Union => "UNION",
            Enum => "ENUM",
            Fwd => "FWD",
            Typedef => "TYPEDEF",
            Volatile => "VOLATILE",
            Const => "CONST",
            Restrict => "RESTRICT",
            Func => "FUNC",
            FuncProto => "FUNC_PROTO",
            Var => "VAR",
            Datasec => "DATASEC",
            Float => "FLOAT",
            DeclTag => "DECL_TAG",
            TypeTag => "TYPE_TAG",
            Enum64 => "ENUM64",
        }
    }

    /// Qualifiers that do not change layout (libbpf's `btf_is_mod`).
    pub fn is_modifier(self) -> bool {
        matches!(
            self,
            BtfKind::Volatile | BtfKind::Const | BtfKind::Restrict | BtfKind::TypeTag
        )
    }
}

/// `struct btf_array`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BtfArray {
    pub elem_type: u32,
    pub index_type: u32,
    pub nelems: u32,
}

/// `struct btf_member`, with the `offset` word decoded according to the
/// parent's kind_flag (bitfield size in the top 8 bits when it is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BtfMember {
    pub name_off: u32,
    pub type_id: u32,
    pub bits_offset: u32,
    /// 0 when the member is not a bitfield (or the parent's kind_flag is 0).
    pub bitfield_size: u32,
}

/// `struct btf_enum` (`val` is stored as the raw 32 bits; the parent's
/// kind_flag says whether it is signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BtfEnum {
    pub name_off: u32,
    pub val: u32,
}

/// `struct btf_enum64`, with the two halves joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BtfEnum64 {
    pub name_off: u32,
    pub val: u64,
}

/// `struct btf_param`; a last parameter with name 0 and type 0 marks a
/// variadic function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BtfParam {
    pub name_off: u32,
    pub type_id: u32,
}

/// `struct btf_var_secinfo`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BtfVarSecinfo {
    pub type_id: u32,
    pub offset: u32,
    pub size: u32,
}

/// The kind-specific part of a type, following the 12-byte common header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BtfTypeData {
    Int {
        /// `BTF_INT_ENCODING`: [`BTF_INT_SIGNED`], [`BTF_INT_CHAR`], [`BTF_INT_BOOL`].
        encoding: u8,
        /// `BTF_INT_OFFSET`
        offset: u8,
        /// `BTF_INT_BITS`
        bits: u8,
    },
    Ptr,
    Array(BtfArray),
    Struct(Vec<BtfMember>),
    Union(Vec<BtfMember>),
    Enum(Vec<BtfEnum>),
    Fwd,
    Typedef,
    Volatile,
    Const,
    Restrict,
    Func,
    FuncProto(Vec<BtfParam>),
    Var {
        linkage: u32,
    },
    Datasec(Vec<BtfVarSecinfo>),
    Float,
    DeclTag {
        /// -1 for the type itself, else the member/parameter index.
        component_idx: i32,
    },
    TypeTag,
    Enum64(Vec<BtfEnum64>),
}

/// One decoded `struct btf_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfType {
    pub name_off: u32,
    /// `BTF_INFO_KFLAG`: bitfield encoding for STRUCT/UNION, union for FWD,
    /// signedness for ENUM/ENUM64.
    pub kind_flag: bool,
    /// The `size`/`type` union; FUNC's vlen-encoded linkage is kept in
    /// [`BtfType::func_linkage`] instead.
    pub size_or_type: u32,
    /// For FUNC: the linkage, which the format stores in `vlen`.
    pub func_linkage: u16,
    pub data: BtfTypeData,
}

impl BtfType {
    pub fn kind(&self) -> BtfKind {
        match &self.data {
            BtfTypeData::Int { .. } => BtfKind::Int,
            BtfTypeData::Ptr => BtfKind::Ptr,
            BtfTypeData::Array(_) => BtfKind::Array,
            BtfTypeData::Struct(_) => BtfKind::Struct,
            BtfTypeData::Union(_) => BtfKind::Union,
            BtfTypeData::Enum(_) => BtfKind::Enum,
            BtfTypeData::Fwd => BtfKind::Fwd,
            BtfTypeData::Typedef => BtfKind::Typedef,
            BtfTypeData::Volatile => BtfKind::Volatile,
            BtfTypeData::Const => BtfKind::Const,
            BtfTypeData::Restrict => BtfKind::Restrict,
            BtfTypeData::Func => BtfKind::Func,
            BtfTypeData::FuncProto(_) => BtfKind::FuncProto,
            BtfTypeData::Var { .. } => BtfKind::Var,
            BtfTypeData::Datasec(_) => BtfKind::Datasec,
            BtfTypeData::Float => BtfKind::Float,
            BtfTypeData::DeclTag { .. } => BtfKind::DeclTag,
            BtfTypeData::TypeTag => BtfKind::TypeTag,
            BtfTypeData::Enum64(_) => BtfKind::Enum64,
        }
    }

    /// `vlen` as stored in `info`.
    pub fn vlen(&self) -> u16 {
        // Lengths were bounded by the 16-bit field at parse time; saturate for
        // types built by hand.
        let n = match &self.data {
            BtfTypeData::Struct(m) | BtfTypeData::Union(m) => m.len(),
            BtfTypeData::Enum(e) => e.len(),
            BtfTypeData::FuncProto(p) => p.len(),
            BtfTypeData::Datasec(v) => v.len(),
            BtfTypeData::Enum64(e) => e.len(),
            BtfTypeData::Func => return self.func_linkage,
            _ => 0,
        };
        u16::try_from(n).unwrap_or(u16::MAX)
    }

    /// The referenced type for kinds whose `size_or_type` is a type id.
    pub fn type_ref(&self) -> Option<u32> {
        use BtfKind::*;
        match self.kind() {
            Ptr | Typedef | Volatile | Const | Restrict | Func | FuncProto | Var | DeclTag
            | TypeTag => Some(self.size_or_type),
            _ => None,
        }
    }

    /// The byte size for kinds that carry one.
    pub fn size(&self) -> Option<u32> {
        use BtfKind::*;
        match self.kind() {
            Int | Struct | Union | Enum | Datasec | Float | Enum64 => Some(self.size_or_type),
            _ => None,
        }
    }

    /// Struct/union members (empty for other kinds).
    pub fn members(&self) -> &[BtfMember] {
        match &self.data {
            BtfTypeData::Struct(m) | BtfTypeData::Union(m) => m,
            _ => &[],
        }
    }
}

/// A parsed `.BTF` blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Btf {
    /// `btf_header.flags`, kept for the round trip.
    pub flags: u8,
    /// Types; index `i` holds type id `i + 1`.
    types: Vec<BtfType>,
    /// The raw string section (starts and ends with NUL).
    strings: Vec<u8>,
}

impl Default for Btf {
    fn default() -> Self {
        Self::new()
    }
}

/// Little-endian reader over a byte slice; every read is bounds checked.
struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn u32_at(&self, off: usize) -> Option<u32> {
        let b = self.data.get(off..off.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

fn le_u32(b: &[u8], off: usize) -> u32 {
    // Callers check lengths first; fall back to 0 instead of panicking.
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .unwrap_or(0)
}

impl Btf {
    /// An empty BTF with just the mandatory empty string.
    pub fn new() -> Self {
        Btf {
            flags: 0,
            types: Vec::new(),
            strings: vec![0],
        }
    }

    /// Parses and validates a `.BTF` section.
    pub fn parse(bytes: &[u8]) -> Result<Btf, BtfError> {
        if bytes.len() < 8 {
            return Err(BtfError::Truncated {
                offset: 0,
                need: BTF_HEADER_LEN,
                have: bytes.len(),
            });
        }
        let magic = u16::from_le_bytes([bytes[0], bytes[1]]);
        if magic == BTF_MAGIC.swap_bytes() {
            return Err(BtfError::WrongEndian { magic });
        }
        if magic != BTF_MAGIC {
            return Err(BtfError::BadMagic { magic });
        }
        if bytes[2] != BTF_VERSION {
            return Err(BtfError::BadVersion { version: bytes[2] });
        }
        let flags = bytes[3];
        let hdr_len = le_u32(bytes, 4) as usize;
        if hdr_len < BTF_HEADER_LEN {
            return Err(BtfError::BadHeader {
                reason: "header shorter than 24 bytes",
            });
        }
        if bytes.len() < hdr_len {
            return Err(BtfError::Truncated {
                offset: 0,
                need: hdr_len,
                have: bytes.len(),
            });
        }
        let r = Reader { data: bytes };
        let field = |off| r.u32_at(off).unwrap_or(0) as usize;
        let (type_off, type_len, str_off, str_len) = (field(8), field(12), field(16), field(20));
        let body = &bytes[hdr_len..];
        let section = |off: usize, len: usize, what| -> Result<&[u8], BtfError> {
            let end = off
                .checked_add(len)
                .ok_or(BtfError::BadHeader { reason: what })?;
            body.get(off..end).ok_or(BtfError::Truncated {
                offset: hdr_len + off,
                need: len,
                have: body.len().saturating_sub(off),
            })
        };
        let type_sec = section(type_off, type_len, "type section offset overflows")?;
        let strings = section(str_off, str_len, "string section offset overflows")?;
        if strings.is_empty() {
            return Err(BtfError::BadStringSection { reason: "empty" });
        }
        if strings[0] != 0 {
            return Err(BtfError::BadStringSection {
                reason: "does not start with an empty string",
            });
        }
        if strings[strings.len() - 1] != 0 {
            return Err(BtfError::BadStringSection {
                reason: "last string is not nul-terminated",
            });
        }
        let types = Self::parse_types(type_sec, hdr_len + type_off)?;
        let btf = Btf {
            flags,
            types,
            strings: strings.to_vec(),
        };
        btf.validate(hdr_len + type_off)?;
        Ok(btf)
    }

    fn parse_types(sec: &[u8], base: usize) -> Result<Vec<BtfType>, BtfError> {
        let mut types = Vec::new();
        let mut pos = 0usize;
        while pos < sec.len() {
            let type_id = u32::try_from(types.len() + 1).unwrap_or(u32::MAX);
            let offset = base + pos;
            let trunc = |need: usize| BtfError::TypeTruncated {
                type_id,
                offset,
                need,
                have: sec.len() - pos,
            };
            if sec.len() - pos < BTF_TYPE_LEN {
                return Err(trunc(BTF_TYPE_LEN));
            }
            let name_off = le_u32(sec, pos);
            let info = le_u32(sec, pos + 4);
            let size_or_type = le_u32(sec, pos + 8);
            let kind_raw = ((info >> 24) & 0x1f) as u8;
            let kind_flag = info >> 31 != 0;
            let vlen = (info & 0xffff) as usize;
            let reserved = info & 0x60ff_0000;
            if reserved != 0 {
                return Err(BtfError::ReservedBits {
                    type_id,
                    offset,
                    field: "info",
                    value: info,
                });
            }
            let kind = BtfKind::from_raw(kind_raw).ok_or(BtfError::UnknownKind {
                type_id,
                offset,
                kind: kind_raw,
            })?;
            let extra_len = match kind {
                BtfKind::Int | BtfKind::Var | BtfKind::DeclTag => 4,
                BtfKind::Array => 12,
                BtfKind::Struct | BtfKind::Union | BtfKind::Datasec | BtfKind::Enum64 => vlen * 12,
                BtfKind::Enum | BtfKind::FuncProto => vlen * 8,
                _ => 0,
            };
            let total = BTF_TYPE_LEN + extra_len;
            if sec.len() - pos < total {
                return Err(trunc(total));
            }
            let ex = &sec[pos + BTF_TYPE_LEN..pos + total];
            let w = |i: usize| le_u32(ex, i * 4);
            let data = match kind {
                BtfKind::Int => {
                    let v = w(0);
                    if v & 0xf000_ff00 != 0 {
                        return Err(BtfError::ReservedBits {
                            type_id,
                            offset,
                            field: "int encoding",
                            value: v,
                        });
                    }
                    BtfTypeData::Int {
                        encoding: ((v >> 24) & 0x0f) as u8,
                        offset: ((v >> 16) & 0xff) as u8,
                        bits: (v & 0xff) as u8,
                    }
                }
                BtfKind::Ptr => BtfTypeData::Ptr,
                BtfKind::Array => BtfTypeData::Array(BtfArray {
                    elem_type: w(0),
                    index_type: w(1),
                    nelems: w(2),
                }),
                BtfKind::Struct | BtfKind::Union => {
                    let members = (0..vlen)
                        .map(|i| {
                            let raw = w(i * 3 + 2);
                            let (bits_offset, bitfield_size) = if kind_flag {
                                (raw & 0x00ff_ffff, raw >> 24)
                            } else {
                                (raw, 0)
                            };
                            BtfMember {
                                name_off: w(i * 3),
                                type_id: w(i * 3 + 1),
                                bits_offset,
                                bitfield_size,
                            }
                        })
                        .collect();
                    if kind == BtfKind::Struct {
                        BtfTypeData::Struct(members)
                    } else {
                        BtfTypeData::Union(members)
                    }
                }
                BtfKind::Enum => BtfTypeData::Enum(
                    (0..vlen)
                        .map(|i| BtfEnum {
                            name_off: w(i * 2),
                            val: w(i * 2 + 1),
                        })
                        .collect(),
                ),
                BtfKind::Fwd => BtfTypeData::Fwd,
                BtfKind::Typedef => BtfTypeData::Typedef,
                BtfKind::Volatile => BtfTypeData::Volatile,
                BtfKind::Const => BtfTypeData::Const,
                BtfKind::Restrict => BtfTypeData::Restrict,
                BtfKind::Func => BtfTypeData::Func,
                BtfKind::FuncProto => BtfTypeData::FuncProto(
                    (0..vlen)
                        .map(|i| BtfParam {
                            name_off: w(i * 2),
                            type_id: w(i * 2 + 1),
                        })
                        .collect(),
                ),
                BtfKind::Var => BtfTypeData::Var { linkage: w(0) },
                BtfKind::Datasec => BtfTypeData::Datasec(
                    (0..vlen)
                        .map(|i| BtfVarSecinfo {
                            type_id: w(i * 3),
                            offset: w(i * 3 + 1),
                            size: w(i * 3 + 2),
                        })
                        .collect(),
                ),
                BtfKind::Float => BtfTypeData::Float,
                BtfKind::DeclTag => BtfTypeData::DeclTag {
                    component_idx: w(0) as i32,
                },
                BtfKind::TypeTag => BtfTypeData::TypeTag,
                BtfKind::Enum64 => BtfTypeData::Enum64(
                    (0..vlen)
                        .map(|i| BtfEnum64 {
                            name_off: w(i * 3),
                            val: u64::from(w(i * 3 + 1)) | u64::from(w(i * 3 + 2)) << 32,
                        })
                        .collect(),
                ),
            };
            // Other kinds must have vlen 0 in the kernel's eyes, but FUNC keeps
            // its linkage there; carry FUNC's and reject the rest.
            let func_linkage = if kind == BtfKind::Func {
                vlen as u16
            } else {
                0
            };
            let has_vlen = matches!(
                kind,
                BtfKind::Struct
                    | BtfKind::Union
                    | BtfKind::Enum
                    | BtfKind::FuncProto
                    | BtfKind::Datasec
                    | BtfKind::Enum64
                    | BtfKind::Func
            );
            if !has_vlen && vlen != 0 {
                return Err(BtfError::ReservedBits {
                    type_id,
                    offset,
                    field: "vlen",
                    value: info,
                });
            }
            types.push(BtfType {
                name_off,
                kind_flag,
                size_or_type,
                func_linkage,
                data,
            });
            pos += total;
        }
        Ok(types)
    }

    /// Byte offset of each type in the original layout, for error messages.
    fn type_offsets(&self, base: usize) -> Vec<usize> {
        let mut offs = Vec::with_capacity(self.types.len());
        let mut pos = base;
        for t in &self.types {
            offs.push(pos);
            pos += type_encoded_len(t);
        }
        offs
    }

    fn validate(&self, base: usize) -> Result<(), BtfError> {
        let offs = self.type_offsets(base);
        let nr_types = self.nr_types();
        for (i, t) in self.types.iter().enumerate() {
            let type_id = (i + 1) as u32;
            let offset = offs[i];
            let check_str = |name_off: u32| -> Result<(), BtfError> {
                if self.checked_str(name_off).is_none() {
                    return Err(BtfError::BadStringOffset {
                        type_id,
                        offset,
                        name_off,
                    });
                }
                Ok(())
            };
            let check_ref = |ref_id: u32| -> Result<(), BtfError> {
                if ref_id > nr_types {
                    return Err(BtfError::BadTypeRef {
                        type_id,
                        offset,
                        ref_id,
                        nr_types,
                    });
                }
                Ok(())
            };
            check_str(t.name_off)?;
            if let Some(r) = t.type_ref() {
                check_ref(r)?;
            }
            match &t.data {
                BtfTypeData::Array(a) => {
                    check_ref(a.elem_type)?;
                    check_ref(a.index_type)?;
                }
                BtfTypeData::Struct(ms) | BtfTypeData::Union(ms) => {
                    for m in ms {
                        check_str(m.name_off)?;
                        check_ref(m.type_id)?;
                    }
                }
                BtfTypeData::Enum(es) => {
                    for e in es {
                        check_str(e.name_off)?;
                    }
                }
                BtfTypeData::Enum64(es) => {
                    for e in es {
                        check_str(e.name_off)?;
                    }
                }
                BtfTypeData::FuncProto(ps) => {
                    for p in ps {
                        check_str(p.name_off)?;
                        check_ref(p.type_id)?;
                    }
                }
                BtfTypeData::Datasec(vs) => {
                    for v in vs {
                        check_ref(v.type_id)?;
                    }
                }
                _ => {}
            }
        }
        self.check_loops(&offs)
    }

    /// Edges along which a type's layout depends on another type; a cycle
    /// along them (a struct containing itself, a typedef of itself) can never
    /// be resolved. Pointers and function types break such cycles legally.
    fn layout_edges(&self, t: &BtfType, out: &mut Vec<u32>) {
        out.clear();
        match &t.data {
            BtfTypeData::Typedef
            | BtfTypeData::Volatile
            | BtfTypeData::Const
            | BtfTypeData::Restrict
            | BtfTypeData::TypeTag
            | BtfTypeData::Var { .. } => out.push(t.size_or_type),
            BtfTypeData::Array(a) => out.push(a.elem_type),
            BtfTypeData::Struct(ms) | BtfTypeData::Union(ms) => {
                out.extend(ms.iter().map(|m| m.type_id))
            }
            BtfTypeData::Datasec(vs) => out.extend(vs.iter().map(|v| v.type_id)),
            _ => {}
        }
        out.retain(|&id| id != 0);
    }

    fn check_loops(&self, offs: &[usize]) -> Result<(), BtfError> {
        // Iterative three-colour DFS: deep typedef chains in hostile input
        // must not overflow the stack.
        const WHITE: u8 = 0;
        const GREY: u8 = 1;
        const BLACK: u8 = 2;
        let n = self.types.len();
        let mut colour = vec![WHITE; n + 1];
        let mut edges_buf = Vec::new();
        let mut stack: Vec<(u32, Vec<u32>, usize)> = Vec::new();
        for root in 1..=n as u32 {
            if colour[root as usize] != WHITE {
                continue;
            }
            colour[root as usize] = GREY;
            self.layout_edges(&self.types[root as usize - 1], &mut edges_buf);
            stack.push((root, edges_buf.clone(), 0));
            while let Some((id, edges, next)) = stack.last_mut() {
                if *next < edges.len() {
                    let child = edges[*next];
                    *next += 1;
                    match colour[child as usize] {
                        WHITE => {
                            colour[child as usize] = GREY;
                            self.layout_edges(&self.types[child as usize - 1], &mut edges_buf);
                            stack.push((child, edges_buf.clone(), 0));
                        }
                        GREY => {
                            return Err(BtfError::Loop {
                                type_id: child,
                                offset: offs[child as usize - 1],
                            })
                        }
                        _ => {}
                    }
                } else {
                    colour[*id as usize] = BLACK;
                    stack.pop();
                }
            }
        }
        Ok(())
    }

    /// Number of types (the highest valid type id).
    pub fn nr_types(&self) -> u32 {
        u32::try_from(self.types.len()).unwrap_or(u32::MAX)
    }

    /// All types; index `i` holds type id `i + 1`.
    pub fn types(&self) -> &[BtfType] {
        &self.types
    }

    /// Iterates `(type_id, type)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &BtfType)> {
        self.types
            .iter()
            .enumerate()
            .map(|(i, t)| (i as u32 + 1, t))
    }

    /// The type with this id. Id 0 (`void`) has no `BtfType` and is an error.
    pub fn type_by_id(&self, type_id: u32) -> Result<&BtfType, BtfError> {
        type_id
            .checked_sub(1)
            .and_then(|i| self.types.get(i as usize))
            .ok_or(BtfError::TypeIdOutOfRange {
                type_id,
                nr_types: self.nr_types(),
            })
    }

    fn type_by_id_mut(&mut self, type_id: u32) -> Option<&mut BtfType> {
        type_id
            .checked_sub(1)
            .and_then(|i| self.types.get_mut(i as usize))
    }

    fn checked_str(&self, off: u32) -> Option<&str> {
        let rest = self.strings.get(off as usize..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        std::str::from_utf8(&rest[..end]).ok()
    }

    /// The string at `off` in the string section ("" if the offset is bad,
    /// which [`Btf::parse`] has already ruled out for every referenced name).
    pub fn str_at(&self, off: u32) -> &str {
        self.checked_str(off).unwrap_or("")
    }

    /// The raw string section.
    pub fn strings(&self) -> &[u8] {
        &self.strings
    }

    /// The name of type `type_id` ("" for anonymous types and for void).
    pub fn name(&self, type_id: u32) -> &str {
        self.type_by_id(type_id)
            .map(|t| self.str_at(t.name_off))
            .unwrap_or("")
    }

    /// First type id with this name and kind (libbpf's `btf__find_by_name_kind`).
    pub fn find_by_name_kind(&self, name: &str, kind: BtfKind) -> Option<u32> {
        self.iter()
            .find(|(_, t)| t.kind() == kind && self.str_at(t.name_off) == name)
            .map(|(id, _)| id)
    }

    /// Skips CONST/VOLATILE/RESTRICT/TYPE_TAG and TYPEDEF (libbpf's
    /// `skip_mods_and_typedefs`). Returns 0 for void.
    pub fn skip_modifiers(&self, mut type_id: u32) -> Result<u32, BtfError> {
        for _ in 0..=MAX_RESOLVE_DEPTH {
            if type_id == 0 {
                return Ok(0);
            }
            let t = self.type_by_id(type_id)?;
            if t.kind().is_modifier() || t.kind() == BtfKind::Typedef {
                type_id = t.size_or_type;
            } else {
                return Ok(type_id);
            }
        }
        Err(BtfError::TooDeep { type_id })
    }

    /// libbpf's `btf__resolve_type`: skips modifiers, typedefs and VARs;
    /// void at the end is an error, as there.
    pub fn resolve_type(&self, type_id: u32) -> Result<u32, BtfError> {
        let mut id = type_id;
        for _ in 0..MAX_RESOLVE_DEPTH {
            if id == 0 {
                return Err(BtfError::NoSize {
                    type_id,
                    kind: "void",
                });
            }
            let t = self.type_by_id(id)?;
            let k = t.kind();
            if k.is_modifier() || k == BtfKind::Typedef || k == BtfKind::Var {
                id = t.size_or_type;
            } else {
                return Ok(id);
            }
        }
        Err(BtfError::TooDeep { type_id })
    }

    /// Byte size of a type (libbpf's `btf__resolve_size`): follows
    /// typedefs, modifiers and VARs, multiplies array dimensions; pointers
    /// are 8 bytes.
    pub fn resolve_size(&self, type_id: u32) -> Result<u32, BtfError> {
        let mut id = type_id;
        let mut nelems: u64 = 1;
        for _ in 0..MAX_RESOLVE_DEPTH {
            if id == 0 {
                return Err(BtfError::NoSize {
                    type_id,
                    kind: "void",
                });
            }
            let t = self.type_by_id(id)?;
            let size = match &t.data {
                BtfTypeData::Int { .. }
                | BtfTypeData::Struct(_)
                | BtfTypeData::Union(_)
                | BtfTypeData::Enum(_)
                | BtfTypeData::Enum64(_)
                | BtfTypeData::Datasec(_)
                | BtfTypeData::Float => u64::from(t.size_or_type),
                BtfTypeData::Ptr => 8,
                BtfTypeData::Typedef
                | BtfTypeData::Volatile
                | BtfTypeData::Const
                | BtfTypeData::Restrict
                | BtfTypeData::TypeTag
                | BtfTypeData::Var { .. } => {
                    id = t.size_or_type;
                    continue;
                }
                BtfTypeData::Array(a) => {
                    nelems = nelems
                        .checked_mul(u64::from(a.nelems))
                        .filter(|&n| n <= u64::from(u32::MAX))
                        .ok_or(BtfError::SizeOverflow { type_id })?;
                    id = a.elem_type;
                    continue;
                }
                _ => {
                    return Err(BtfError::NoSize {
                        type_id,
                        kind: t.kind().name(),
                    })
                }
            };
            let total = size * nelems;
            return u32::try_from(total).map_err(|_| BtfError::SizeOverflow { type_id });
        }
        Err(BtfError::TooDeep { type_id })
    }

    /// Appends a string to the string section (reusing an identical one) and
    /// returns its offset.
    pub fn add_string(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let needle: Vec<u8> = s.bytes().chain(std::iter::once(0)).collect();
        let mut start = 0;
        for (i, &b) in self.strings.iter().enumerate() {
            if b == 0 {
                if self.strings[start..=i] == needle[..] {
                    return start as u32;
                }
                start = i + 1;
            }
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(&needle);
        off
    }

    /// Sets a `FUNC`'s linkage (`BTF_FUNC_STATIC` 0, `GLOBAL` 1, `EXTERN` 2).
    pub fn set_func_linkage(&mut self, type_id: u32, linkage: u16) {
        if let Some(t) = self.type_by_id_mut(type_id) {
            if t.kind() == BtfKind::Func {
                t.func_linkage = linkage;
            }
        }
    }

    /// Appends a type and returns its id. References are not checked here;
    /// [`Btf::parse`] of [`Btf::to_bytes`] does that.
    pub fn add_type(&mut self, t: BtfType) -> u32 {
        self.types.push(t);
        self.nr_types()
    }

    /// What libbpf does to each DATASEC before loading: set the section size
    /// from the ELF section, set every variable's offset from its ELF symbol
    /// (`var_offset(name)`), then sort the variables by offset.
    pub fn fixup_datasec(
        &mut self,
        name: &str,
        size: u32,
        mut var_offset: impl FnMut(&str) -> Option<u32>,
    ) -> Result<(), BtfError> {
        let id = self
            .find_by_name_kind(name, BtfKind::Datasec)
            .ok_or_else(|| BtfError::DatasecNotFound {
                name: name.to_string(),
            })?;
        let mut vars = match &self.type_by_id(id)?.data {
            BtfTypeData::Datasec(v) => v.clone(),
            _ => Vec::new(),
        };
        for v in &mut vars {
            let var_name = self.name(v.type_id).to_string();
            v.offset = var_offset(&var_name).ok_or_else(|| BtfError::VarOffsetMissing {
                datasec: name.to_string(),
                var: var_name,
            })?;
        }
        vars.sort_by_key(|v| v.offset);
        if let Some(t) = self.type_by_id_mut(id) {
            t.size_or_type = size;
            t.data = BtfTypeData::Datasec(vars);
        }
        Ok(())
    }

    /// Serialises to the kernel's layout: a 24-byte header, the type section,
    /// then the string section.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut types = Vec::new();
        for t in &self.types {
            encode_type(t, &mut types);
        }
        let mut out = Vec::with_capacity(BTF_HEADER_LEN + types.len() + self.strings.len());
        out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        out.push(BTF_VERSION);
        out.push(self.flags);
        for v in [
            BTF_HEADER_LEN as u32,
            0,
            types.len() as u32,
            types.len() as u32,
            self.strings.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(&self.strings);
        out
    }
}

fn type_encoded_len(t: &BtfType) -> usize {
    BTF_TYPE_LEN
        + match &t.data {
            BtfTypeData::Int { .. } | BtfTypeData::Var { .. } | BtfTypeData::DeclTag { .. } => 4,
            BtfTypeData::Array(_) => 12,
            BtfTypeData::Struct(m) | BtfTypeData::Union(m) => m.len() * 12,
            BtfTypeData::Datasec(v) => v.len() * 12,
            BtfTypeData::Enum64(e) => e.len() * 12,
            BtfTypeData::Enum(e) => e.len() * 8,
            BtfTypeData::FuncProto(p) => p.len() * 8,
            _ => 0,
        }
}

fn encode_type(t: &BtfType, out: &mut Vec<u8>) {
    let mut put = |v: u32| out.extend_from_slice(&v.to_le_bytes());
    let info = u32::from(t.kind_flag) << 31 | (t.kind() as u32) << 24 | u32::from(t.vlen());
    put(t.name_off);
    put(info);
    put(t.size_or_type);
    match &t.data {
        BtfTypeData::Int {
            encoding,
            offset,
            bits,
        } => put(u32::from(*encoding) << 24 | u32::from(*offset) << 16 | u32::from(*bits)),
        BtfTypeData::Array(a) => {
            put(a.elem_type);
            put(a.index_type);
            put(a.nelems);
        }
        BtfTypeData::Struct(ms) | BtfTypeData::Union(ms) => {
            for m in ms {
                put(m.name_off);
                put(m.type_id);
                put(if t.kind_flag {
                    m.bitfield_size << 24 | (m.bits_offset & 0x00ff_ffff)
                } else {
                    m.bits_offset
                });
            }
        }
        BtfTypeData::Enum(es) => {
            for e in es {
                put(e.name_off);
                put(e.val);
            }
        }
        BtfTypeData::FuncProto(ps) => {
            for p in ps {
                put(p.name_off);
                put(p.type_id);
            }
        }
        BtfTypeData::Var { linkage } => put(*linkage),
        BtfTypeData::Datasec(vs) => {
            for v in vs {
                put(v.type_id);
                put(v.offset);
                put(v.size);
            }
        }
        BtfTypeData::DeclTag { component_idx } => put(*component_idx as u32),
        BtfTypeData::Enum64(es) => {
            for e in es {
                put(e.name_off);
                put(e.val as u32);
                put((e.val >> 32) as u32);
            }
        }
        BtfTypeData::Ptr
        | BtfTypeData::Fwd
        | BtfTypeData::Typedef
        | BtfTypeData::Volatile
        | BtfTypeData::Const
        | BtfTypeData::Restrict
        | BtfTypeData::Func
        | BtfTypeData::Float
        | BtfTypeData::TypeTag => {}
    }
}
