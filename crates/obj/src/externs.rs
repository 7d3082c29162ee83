//! Extern symbols, collected as libbpf's `bpf_object__collect_externs` does:
//! `.kconfig` variables (values libbpf writes into the `.kconfig` map),
//! `__ksym` variables (kernel variables) and `__ksym` functions (kfuncs).
//!
//! An extern is an undefined global (or weak) symbol whose BTF VAR or FUNC
//! sits in the `.kconfig` or `.ksyms` DATASEC. Parsing only records them; the
//! loader resolves them (and refuses only the programs that use an extern it
//! cannot resolve).

use std::collections::HashMap;

use crate::btf::{Btf, BtfKind, BtfTypeData, BTF_INT_BOOL, BTF_INT_SIGNED};
use crate::elf::{self, Elf};
use crate::error::ObjErrorKind;

/// `STB_WEAK`
const STB_WEAK: u8 = 2;

/// libbpf's `enum kcfg_type`: what a `.kconfig` extern's C type can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KcfgType {
    /// `bool`: `y` is 1, `n` is 0.
    Bool,
    /// `enum libbpf_tristate`: `y` 1, `n` 0, `m` 2.
    Tristate,
    /// `char`: the letter itself.
    Char,
    /// An integer of `size` bytes.
    Int { size: u32, signed: bool },
    /// `char[len]`: a string, NUL-terminated (and truncated) to fit.
    CharArray { len: u32 },
}

/// What an extern is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternKind {
    /// A `.kconfig` value at `data_off` in the `.kconfig` map.
    Kconfig {
        data_off: u32,
        size: u32,
        ty: KcfgType,
    },
    /// A kernel variable (`extern const struct rq runqueues __ksym;`):
    /// `typed` when BTF gives its type (a `BPF_PSEUDO_BTF_ID` load in libbpf).
    KsymVar { typed: bool },
    /// A kernel function (kfunc): calls become `BPF_PSEUDO_KFUNC_CALL`.
    Kfunc,
}

/// One extern symbol of the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extern {
    pub name: String,
    /// `__weak`: when unresolved, libbpf gives zero instead of failing.
    pub weak: bool,
    pub kind: ExternKind,
    /// The VAR or FUNC in the object's BTF (0 without BTF).
    pub btf_id: u32,
}

impl Extern {
    /// The section BTF puts it in, as libbpf's messages name it.
    pub fn section(&self) -> &'static str {
        match self.kind {
            ExternKind::Kconfig { .. } => ".kconfig",
            _ => ".ksyms",
        }
    }
}

/// Every extern of the object, `.kconfig` ones laid out as libbpf lays them
/// out (by alignment, largest first, then by size, then by name), and the
/// size of the `.kconfig` map's value (0: no `.kconfig` externs).
pub(crate) fn collect(
    elf: &Elf<'_>,
    btf: Option<&mut Btf>,
) -> Result<(Vec<Extern>, u32), ObjErrorKind> {
    let undefined: Vec<&elf::Symbol> = elf
        .symbols
        .iter()
        .filter(|s| s.shndx == elf::SHN_UNDEF && s.bind != elf::STB_LOCAL && !s.name.is_empty())
        .collect();
    if undefined.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let Some(btf) = btf else {
        let s = undefined[0];
        return Err(ObjErrorKind::BadExtern {
            name: s.name.clone(),
            reason: "externs need BTF, but the object has no .BTF section".into(),
        });
    };
    let in_datasec = |sec: &str| -> HashMap<u32, ()> {
        match btf
            .find_by_name_kind(sec, BtfKind::Datasec)
            .and_then(|id| btf.type_by_id(id).ok())
            .map(|t| &t.data)
        {
            Some(BtfTypeData::Datasec(vars)) => vars.iter().map(|v| (v.type_id, ())).collect(),
            _ => HashMap::new(),
        }
    };
    let kconfig_vars = in_datasec(".kconfig");
    let ksyms_vars = in_datasec(".ksyms");
    let mut out = Vec::new();
    for s in undefined {
        // The extern's BTF: a VAR or FUNC of that name with extern linkage.
        let found = btf.iter().find(|(_, t)| {
            matches!(t.kind(), BtfKind::Var | BtfKind::Func)
                && btf.str_at(t.name_off) == s.name
                && match &t.data {
                    BtfTypeData::Var { linkage } => *linkage == 2,
                    BtfTypeData::Func => t.func_linkage == 2,
                    _ => false,
                }
        });
        let Some((id, t)) = found else {
            return Err(ObjErrorKind::BadExtern {
                name: s.name.clone(),
                reason: "no BTF VAR or FUNC with extern linkage describes it".into(),
            });
        };
        let weak = s.bind == STB_WEAK;
        let kind = if t.kind() == BtfKind::Func {
            ExternKind::Kfunc
        } else if kconfig_vars.contains_key(&id) {
            let ty = kcfg_type(btf, t.size_or_type).ok_or_else(|| ObjErrorKind::BadExtern {
                name: s.name.clone(),
                reason: "type is unsupported for a .kconfig extern".into(),
            })?;
            let size = btf
                .resolve_size(t.size_or_type)
                .map_err(|_| ObjErrorKind::BadExtern {
                    name: s.name.clone(),
                    reason: "type has no size".into(),
                })?;
            ExternKind::Kconfig {
                data_off: 0,
                size,
                ty,
            }
        } else if ksyms_vars.contains_key(&id) {
            // `extern const void sym __ksym;` is typeless.
            let typed = btf
                .skip_modifiers(t.size_or_type)
                .ok()
                .is_some_and(|tid| tid != 0);
            ExternKind::KsymVar { typed }
        } else {
            return Err(ObjErrorKind::BadExtern {
                name: s.name.clone(),
                reason: "not in the .kconfig or .ksyms section (use __kconfig or __ksym)".into(),
            });
        };
        out.push(Extern {
            name: s.name.clone(),
            weak,
            kind,
            btf_id: id,
        });
    }
    // libbpf's layout of the .kconfig values.
    // btf__align_of: an integer or enum aligns to its size, the rest to 1.
    let align = |e: &Extern| match e.kind {
        ExternKind::Kconfig { ty, size, .. } => match ty {
            KcfgType::Int { .. } | KcfgType::Tristate => size.min(8),
            _ => 1,
        },
        _ => 0,
    };
    let kcfg_rank = |e: &Extern| !matches!(e.kind, ExternKind::Kconfig { .. });
    let size_of = |e: &Extern| match e.kind {
        ExternKind::Kconfig { size, .. } => size,
        _ => 0,
    };
    out.sort_by(|a, b| {
        kcfg_rank(a)
            .cmp(&kcfg_rank(b))
            .then_with(|| align(b).cmp(&align(a)))
            .then_with(|| size_of(a).cmp(&size_of(b)))
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut off = 0u32;
    for e in &mut out {
        let a = align(e).max(1);
        if let ExternKind::Kconfig { data_off, size, .. } = &mut e.kind {
            off = off.div_ceil(a) * a;
            *data_off = off;
            off += *size;
        }
    }
    if off > 0 {
        let offsets: HashMap<String, u32> = out
            .iter()
            .filter_map(|e| match e.kind {
                ExternKind::Kconfig { data_off, .. } => Some((e.name.clone(), data_off)),
                _ => None,
            })
            .collect();
        btf.fixup_datasec(".kconfig", off, |v| offsets.get(v).copied())
            .map_err(|source| ObjErrorKind::BtfFixup {
                datasec: ".kconfig".into(),
                source,
            })?;
    }
    Ok((out, off))
}

/// libbpf's `find_kcfg_type`: a bool, any other one-byte integer (a char),
/// a 2/4/8-byte integer, `enum libbpf_tristate`, or an array of chars.
fn kcfg_type(btf: &Btf, type_id: u32) -> Option<KcfgType> {
    let id = btf.skip_modifiers(type_id).ok()?;
    let t = btf.type_by_id(id).ok()?;
    match &t.data {
        BtfTypeData::Int { encoding, .. } => {
            let size = t.size_or_type;
            if encoding & BTF_INT_BOOL != 0 {
                (size == 1).then_some(KcfgType::Bool)
            } else if size == 1 {
                Some(KcfgType::Char)
            } else if matches!(size, 2 | 4 | 8) {
                Some(KcfgType::Int {
                    size,
                    signed: encoding & BTF_INT_SIGNED != 0,
                })
            } else {
                None
            }
        }
        BtfTypeData::Enum(_) | BtfTypeData::Enum64(_) => {
            let size_ok = t.kind() == BtfKind::Enum64 || t.size_or_type == 4;
            (size_ok && btf.str_at(t.name_off) == "libbpf_tristate").then_some(KcfgType::Tristate)
        }
        BtfTypeData::Array(a) => {
            if a.nelems == 0 || kcfg_type(btf, a.elem_type) != Some(KcfgType::Char) {
                return None;
            }
            Some(KcfgType::CharArray { len: a.nelems })
        }
        _ => None,
    }
}
