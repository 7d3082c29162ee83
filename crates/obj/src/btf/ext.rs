//! `.BTF.ext`: per-ELF-section function info, line info and CO-RE
//! relocation records, whose strings live in the `.BTF` string table.
//!
//! Offsets in the file are in bytes from the start of the ELF section; each
//! record here also carries the instruction index (`insn_off / 8`).

use super::Btf;

/// Size of the mandatory part of `struct btf_ext_header`.
const BTF_EXT_HEADER_MIN: usize = 24;
/// Header size from which the CO-RE relocation fields are present.
const BTF_EXT_HEADER_CORE: usize = 32;
const BPF_INSN_SIZE: u32 = 8;

/// Errors from parsing `.BTF.ext`.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum BtfExtError {
    #[error("btf.ext data truncated: need {need} bytes at offset {offset}, have {have}")]
    Truncated {
        offset: usize,
        need: usize,
        have: usize,
    },
    #[error("btf.ext magic {magic:#06x} is the other byte order; only little-endian is supported")]
    WrongEndian { magic: u16 },
    #[error("bad btf.ext magic {magic:#06x}")]
    BadMagic { magic: u16 },
    #[error("unsupported btf.ext version {version}")]
    BadVersion { version: u8 },
    #[error("bad btf.ext header: {reason}")]
    BadHeader { reason: &'static str },
    #[error(
        "{what} at offset {offset}: record size {rec_size} is below {min} or not a multiple of 4"
    )]
    BadRecordSize {
        what: &'static str,
        offset: usize,
        rec_size: u32,
        min: u32,
    },
    #[error("{what} at offset {offset}: section has no records")]
    EmptySection { what: &'static str, offset: usize },
    #[error("{what} at offset {offset}: bad string offset {str_off}")]
    BadStringOffset {
        what: &'static str,
        offset: usize,
        str_off: u32,
    },
    #[error("{what} at offset {offset}: insn_off {insn_off} is not a multiple of 8")]
    MisalignedInsn {
        what: &'static str,
        offset: usize,
        insn_off: u32,
    },
}

/// `struct bpf_func_info`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuncInfo {
    /// Byte offset in the ELF section.
    pub insn_off: u32,
    /// `insn_off / 8`.
    pub insn_idx: u32,
    /// A BTF FUNC type.
    pub type_id: u32,
}

/// `struct bpf_line_info`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInfo {
    pub insn_off: u32,
    pub insn_idx: u32,
    pub file_name_off: u32,
    pub file_name: String,
    pub line_off: u32,
    /// The source line's text.
    pub line: String,
    /// Raw `line_col` (`line << 10 | col`).
    pub line_col: u32,
    /// `BPF_LINE_INFO_LINE_NUM`
    pub line_num: u32,
    /// `BPF_LINE_INFO_LINE_COL`
    pub col: u32,
}

/// `enum bpf_core_relo_kind`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreReloKind {
    #[doc(alias = "BPF_CORE_FIELD_BYTE_OFFSET")]
    FieldByteOffset,
    #[doc(alias = "BPF_CORE_FIELD_BYTE_SIZE")]
    FieldByteSize,
    #[doc(alias = "BPF_CORE_FIELD_EXISTS")]
    FieldExists,
    #[doc(alias = "BPF_CORE_FIELD_SIGNED")]
    FieldSigned,
    #[doc(alias = "BPF_CORE_FIELD_LSHIFT_U64")]
    FieldLshiftU64,
    #[doc(alias = "BPF_CORE_FIELD_RSHIFT_U64")]
    FieldRshiftU64,
    #[doc(alias = "BPF_CORE_TYPE_ID_LOCAL")]
    TypeIdLocal,
    #[doc(alias = "BPF_CORE_TYPE_ID_TARGET")]
    TypeIdTarget,
    #[doc(alias = "BPF_CORE_TYPE_EXISTS")]
    TypeExists,
    #[doc(alias = "BPF_CORE_TYPE_SIZE")]
    TypeSize,
    #[doc(alias = "BPF_CORE_ENUMVAL_EXISTS")]
    EnumvalExists,
    #[doc(alias = "BPF_CORE_ENUMVAL_VALUE")]
    EnumvalValue,
    #[doc(alias = "BPF_CORE_TYPE_MATCHES")]
    TypeMatches,
    /// A kind this crate does not know; kept so the record is not lost.
    Unknown(u32),
}

impl CoreReloKind {
    pub fn from_raw(v: u32) -> Self {
        use CoreReloKind::*;
        match v {
            0 => FieldByteOffset,
            1 => FieldByteSize,
            2 => FieldExists,
            3 => FieldSigned,
            4 => FieldLshiftU64,
            5 => FieldRshiftU64,
            6 => TypeIdLocal,
            7 => TypeIdTarget,
            8 => TypeExists,
            9 => TypeSize,
            10 => EnumvalExists,
            11 => EnumvalValue,
            12 => TypeMatches,
            n => Unknown(n),
        }
    }

    /// libbpf's short name for the kind, as in its debug logs.
    pub fn name(self) -> &'static str {
        use CoreReloKind::*;
        match self {
            FieldByteOffset => "byte_off",
            FieldByteSize => "byte_sz",
            FieldExists => "field_exists",
            FieldSigned => "signed",
            FieldLshiftU64 => "lshift_u64",
            FieldRshiftU64 => "rshift_u64",
            TypeIdLocal => "local_type_id",
            TypeIdTarget => "target_type_id",
            TypeExists => "type_exists",
            TypeSize => "type_size",
            EnumvalExists => "enumval_exists",
            EnumvalValue => "enumval_value",
            TypeMatches => "type_matches",
            Unknown(_) => "unknown",
        }
    }
}

/// `struct bpf_core_relo`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreRelo {
    pub insn_off: u32,
    pub insn_idx: u32,
    /// The local (program-side) BTF type the access starts from.
    pub type_id: u32,
    pub access_str_off: u32,
    /// Accessor spec such as `"0:1:2"`.
    pub access_str: String,
    pub kind: CoreReloKind,
}

/// The records of one ELF section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfExtSection<T> {
    pub sec_name_off: u32,
    pub sec_name: String,
    pub records: Vec<T>,
}

/// A parsed `.BTF.ext`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BtfExt {
    pub func_info_rec_size: u32,
    pub func_info: Vec<BtfExtSection<FuncInfo>>,
    pub line_info_rec_size: u32,
    pub line_info: Vec<BtfExtSection<LineInfo>>,
    pub core_relo_rec_size: u32,
    pub core_relos: Vec<BtfExtSection<CoreRelo>>,
}

fn rd(b: &[u8], off: usize) -> u32 {
    b.get(off..off.saturating_add(4))
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .unwrap_or(0)
}

/// Walks one info sub-section: `rec_size`, then `{sec_name_off, num_info,
/// records[num_info]}` blocks. `decode` gets each record's bytes and its
/// absolute offset.
fn parse_info<T>(
    data: &[u8],
    base: usize,
    what: &'static str,
    min_rec: u32,
    btf: &Btf,
    mut decode: impl FnMut(&[u8], usize) -> Result<T, BtfExtError>,
) -> Result<(u32, Vec<BtfExtSection<T>>), BtfExtError> {
    if data.is_empty() {
        return Ok((0, Vec::new()));
    }
    if data.len() < 4 {
        return Err(BtfExtError::Truncated {
            offset: base,
            need: 4,
            have: data.len(),
        });
    }
    let rec_size = rd(data, 0);
    if rec_size < min_rec || rec_size & 3 != 0 {
        return Err(BtfExtError::BadRecordSize {
            what,
            offset: base,
            rec_size,
            min: min_rec,
        });
    }
    let mut pos = 4usize;
    let mut sections = Vec::new();
    while pos < data.len() {
        let offset = base + pos;
        if data.len() - pos < 8 {
            return Err(BtfExtError::Truncated {
                offset,
                need: 8,
                have: data.len() - pos,
            });
        }
        let sec_name_off = rd(data, pos);
        let num_info = rd(data, pos + 4);
        if num_info == 0 {
            return Err(BtfExtError::EmptySection { what, offset });
        }
        let sec_name = ext_str(btf, sec_name_off, what, offset)?;
        pos += 8;
        let need = (num_info as usize)
            .checked_mul(rec_size as usize)
            .filter(|&n| n <= data.len() - pos)
            .ok_or(BtfExtError::Truncated {
                offset: base + pos,
                need: (num_info as usize).saturating_mul(rec_size as usize),
                have: data.len() - pos,
            })?;
        let mut records = Vec::with_capacity(num_info as usize);
        for rec in data[pos..pos + need].chunks_exact(rec_size as usize) {
            records.push(decode(rec, base + pos)?);
            pos += rec_size as usize;
        }
        sections.push(BtfExtSection {
            sec_name_off,
            sec_name,
            records,
        });
    }
    Ok((rec_size, sections))
}

fn ext_str(btf: &Btf, off: u32, what: &'static str, offset: usize) -> Result<String, BtfExtError> {
    let strings = btf.strings();
    let rest = strings
        .get(off as usize..)
        .ok_or(BtfExtError::BadStringOffset {
            what,
            offset,
            str_off: off,
        })?;
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(BtfExtError::BadStringOffset {
            what,
            offset,
            str_off: off,
        })?;
    // Source lines are user text; keep them even if not valid UTF-8.
    Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
}

fn insn_idx(what: &'static str, offset: usize, insn_off: u32) -> Result<u32, BtfExtError> {
    if insn_off & (BPF_INSN_SIZE - 1) != 0 {
        return Err(BtfExtError::MisalignedInsn {
            what,
            offset,
            insn_off,
        });
    }
    Ok(insn_off / BPF_INSN_SIZE)
}

impl BtfExt {
    /// Parses `.BTF.ext`, resolving names through `btf`'s string table.
    pub fn parse(bytes: &[u8], btf: &Btf) -> Result<BtfExt, BtfExtError> {
        if bytes.len() < 8 {
            return Err(BtfExtError::Truncated {
                offset: 0,
                need: BTF_EXT_HEADER_MIN,
                have: bytes.len(),
            });
        }
        let magic = u16::from_le_bytes([bytes[0], bytes[1]]);
        if magic == super::BTF_MAGIC.swap_bytes() {
            return Err(BtfExtError::WrongEndian { magic });
        }
        if magic != super::BTF_MAGIC {
            return Err(BtfExtError::BadMagic { magic });
        }
        if bytes[2] != super::BTF_VERSION {
            return Err(BtfExtError::BadVersion { version: bytes[2] });
        }
        let hdr_len = rd(bytes, 4) as usize;
        if hdr_len < BTF_EXT_HEADER_MIN {
            return Err(BtfExtError::BadHeader {
                reason: "header shorter than 24 bytes",
            });
        }
        if bytes.len() < hdr_len {
            return Err(BtfExtError::Truncated {
                offset: 0,
                need: hdr_len,
                have: bytes.len(),
            });
        }
        let body = &bytes[hdr_len..];
        let sub = |off_field: usize| -> Result<(&[u8], usize), BtfExtError> {
            let off = rd(bytes, off_field) as usize;
            let len = rd(bytes, off_field + 4) as usize;
            let end = off.checked_add(len).ok_or(BtfExtError::BadHeader {
                reason: "sub-section offset overflows",
            })?;
            let data = body.get(off..end).ok_or(BtfExtError::Truncated {
                offset: hdr_len + off,
                need: len,
                have: body.len().saturating_sub(off),
            })?;
            Ok((data, hdr_len + off))
        };

        let (fi, fi_base) = sub(8)?;
        let (func_info_rec_size, func_info) =
            parse_info(fi, fi_base, "func_info", 8, btf, |r, off| {
                let insn_off = rd(r, 0);
                Ok(FuncInfo {
                    insn_off,
                    insn_idx: insn_idx("func_info", off, insn_off)?,
                    type_id: rd(r, 4),
                })
            })?;
        let (li, li_base) = sub(16)?;
        let (line_info_rec_size, line_info) =
            parse_info(li, li_base, "line_info", 16, btf, |r, off| {
                let insn_off = rd(r, 0);
                let file_name_off = rd(r, 4);
                let line_off = rd(r, 8);
                let line_col = rd(r, 12);
                Ok(LineInfo {
                    insn_off,
                    insn_idx: insn_idx("line_info", off, insn_off)?,
                    file_name_off,
                    file_name: ext_str(btf, file_name_off, "line_info", off)?,
                    line_off,
                    line: ext_str(btf, line_off, "line_info", off)?,
                    line_col,
                    line_num: line_col >> 10,
                    col: line_col & 0x3ff,
                })
            })?;
        let (core_relo_rec_size, core_relos) = if hdr_len >= BTF_EXT_HEADER_CORE {
            let (cr, cr_base) = sub(24)?;
            parse_info(cr, cr_base, "core_relo", 16, btf, |r, off| {
                let insn_off = rd(r, 0);
                let access_str_off = rd(r, 8);
                Ok(CoreRelo {
                    insn_off,
                    insn_idx: insn_idx("core_relo", off, insn_off)?,
                    type_id: rd(r, 4),
                    access_str_off,
                    access_str: ext_str(btf, access_str_off, "core_relo", off)?,
                    kind: CoreReloKind::from_raw(rd(r, 12)),
                })
            })?
        } else {
            (0, Vec::new())
        };
        Ok(BtfExt {
            func_info_rec_size,
            func_info,
            line_info_rec_size,
            line_info,
            core_relo_rec_size,
            core_relos,
        })
    }

    /// Func info records of one ELF section, if any.
    pub fn func_info_for(&self, sec_name: &str) -> &[FuncInfo] {
        self.func_info
            .iter()
            .find(|s| s.sec_name == sec_name)
            .map(|s| &s.records[..])
            .unwrap_or(&[])
    }

    /// Line info records of one ELF section, if any.
    pub fn line_info_for(&self, sec_name: &str) -> &[LineInfo] {
        self.line_info
            .iter()
            .find(|s| s.sec_name == sec_name)
            .map(|s| &s.records[..])
            .unwrap_or(&[])
    }

    /// CO-RE relocations of one ELF section, if any.
    pub fn core_relos_for(&self, sec_name: &str) -> &[CoreRelo] {
        self.core_relos
            .iter()
            .find(|s| s.sec_name == sec_name)
            .map(|s| &s.records[..])
            .unwrap_or(&[])
    }
}
