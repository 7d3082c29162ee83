//! CO-RE ("compile once, run everywhere") relocation: the `bpf_core_relo`
//! records of `.BTF.ext` resolved against a target BTF (the running kernel's
//! `vmlinux`, or any other), and the instructions they name patched, with the
//! rules libbpf documents for `enum bpf_core_relo_kind`:
//!
//! * a local type matches target types of a compatible kind (enums of either
//!   width are compatible) whose names are equal up to a `___flavour` suffix;
//! * a field access string (`"0:1:2"`) is walked through structs, unions and
//!   arrays; named members are found by name in the target (through anonymous
//!   members), array indices are kept; the fields must have compatible types;
//! * every matching candidate must give the same answer, or the relocation is
//!   ambiguous and the load fails;
//! * what cannot be found poisons the instruction: it becomes a call of the
//!   helper [`POISON_HELPER_ID`] (`0xbad2310`), which the verifier refuses only
//!   if it reaches it. Existence checks (`bpf_core_field_exists`,
//!   `bpf_core_type_exists`, ...) get 0 instead.
//!
//! Pure computation on instructions and types: no I/O.

use super::{Btf, BtfKind, BtfType, BtfTypeData, CoreRelo, CoreReloKind, BTF_INT_SIGNED};
use bpfvm_isa::Insn;
use std::collections::HashMap;

/// The helper id a poisoned instruction calls (libbpf's `0xbad2310`); the
/// verifier, if it reaches it, says `invalid func unknown#195896080`.
pub const POISON_HELPER_ID: i32 = 0x0bad_2310;

/// libbpf's `BPF_CORE_SPEC_MAX_LEN`: the longest access string.
const SPEC_MAX_LEN: usize = 64;
/// How deep type comparisons recurse.
const MAX_DEPTH: i32 = 32;

/// A relocation that cannot be applied: the load fails (libbpf fails it too).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prog '{prog}': relo #{relo} ({kind}) at insn #{insn}: {reason}")]
pub struct CoreError {
    pub prog: String,
    pub relo: usize,
    pub insn: usize,
    pub kind: &'static str,
    pub reason: String,
}

/// What one relocation did to the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreApplied {
    /// Index of the relocated instruction in the program.
    pub insn_idx: usize,
    pub kind: CoreReloKind,
    /// No target: the instruction now calls [`POISON_HELPER_ID`].
    pub poisoned: bool,
    /// The value as compiled (against the object's own types).
    pub orig_val: u64,
    /// The value against the target.
    pub new_val: u64,
    /// `<byte_off> [12] struct task_struct.pid (0:4)`, for messages.
    pub what: String,
}

/// Target types by the name they answer to (the part before `___`), built
/// once per target BTF and reused for every relocation against it.
#[derive(Debug, Default, Clone)]
pub struct CoreTarget {
    by_name: HashMap<String, Vec<u32>>,
    /// The target is the object's own BTF: each local type is its own and
    /// only candidate (flavours of one type are not each other's).
    identity: bool,
}

impl CoreTarget {
    /// Relocation against the object's own types (the target BTF passed to
    /// [`relocate`] must be the local one): every relocation keeps the value
    /// clang compiled, existence checks included.
    pub fn identity() -> Self {
        CoreTarget {
            by_name: HashMap::new(),
            identity: true,
        }
    }

    pub fn new(target: &Btf) -> Self {
        let mut by_name: HashMap<String, Vec<u32>> = HashMap::new();
        for (id, t) in target.iter() {
            let name = target.str_at(t.name_off);
            if name.is_empty() {
                continue;
            }
            by_name
                .entry(essence(name).to_string())
                .or_default()
                .push(id);
        }
        CoreTarget {
            by_name,
            identity: false,
        }
    }

    /// Whether this is [`CoreTarget::identity`]: the object's own types, not a
    /// kernel's.
    pub fn is_identity(&self) -> bool {
        self.identity
    }

    /// The id of the `FUNC` named exactly `name` in `target` (the BTF this
    /// index was built from), as libbpf finds a kfunc in the kernel's BTF.
    pub fn func_id(&self, target: &Btf, name: &str) -> Option<u32> {
        if self.identity {
            return None;
        }
        self.by_name
            .get(essence(name))?
            .iter()
            .copied()
            .find(|&id| {
                target
                    .type_by_id(id)
                    .is_ok_and(|t| t.kind() == BtfKind::Func && target.str_at(t.name_off) == name)
            })
    }

    /// Target types whose kind is compatible with `local_t` and whose name's
    /// essence is `name`'s (libbpf's candidate search).
    fn candidates(&self, target: &Btf, local_id: u32, local_t: &BtfType, name: &str) -> Vec<u32> {
        if self.identity {
            return vec![local_id];
        }
        self.by_name
            .get(essence(name))
            .map(|ids| {
                ids.iter()
                    .copied()
                    .filter(|&id| {
                        target
                            .type_by_id(id)
                            .is_ok_and(|t| kinds_compat(Some(local_t.kind()), Some(t.kind())))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A name up to its flavour suffix: `task_struct___v2` answers to `task_struct`.
pub fn essence(name: &str) -> &str {
    match name.find("___") {
        Some(i) => &name[..i],
        None => name,
    }
}

fn kind_of(btf: &Btf, id: u32) -> Option<BtfKind> {
    if id == 0 {
        None
    } else {
        btf.type_by_id(id).ok().map(|t| t.kind())
    }
}

fn is_enum(k: Option<BtfKind>) -> bool {
    matches!(k, Some(BtfKind::Enum | BtfKind::Enum64))
}

fn is_composite(k: Option<BtfKind>) -> bool {
    matches!(k, Some(BtfKind::Struct | BtfKind::Union))
}

/// Same kind, or two enums of any width.
fn kinds_compat(a: Option<BtfKind>, b: Option<BtfKind>) -> bool {
    a == b || (is_enum(a) && is_enum(b))
}

/// Skips modifiers and typedefs; `Err` for a broken reference, `Ok((0, None))`
/// for void.
fn skip(btf: &Btf, id: u32) -> Result<(u32, Option<&BtfType>), ()> {
    let id = btf.skip_modifiers(id).map_err(|_| ())?;
    if id == 0 {
        return Ok((0, None));
    }
    Ok((id, Some(btf.type_by_id(id).map_err(|_| ())?)))
}

fn int_offset(t: &BtfType) -> u8 {
    match t.data {
        BtfTypeData::Int { offset, .. } => offset,
        _ => 0,
    }
}

fn int_encoding(t: &BtfType) -> u8 {
    match t.data {
        BtfTypeData::Int { encoding, .. } => encoding,
        _ => 0,
    }
}

/// Enumerator `i`'s name offset and value (an `ENUM`'s 32-bit value is
/// sign-extended, as libbpf reads it).
fn enumerator(t: &BtfType, i: usize) -> Option<(u32, u64)> {
    match &t.data {
        BtfTypeData::Enum(e) => e.get(i).map(|v| (v.name_off, v.val as i32 as i64 as u64)),
        BtfTypeData::Enum64(e) => e.get(i).map(|v| (v.name_off, v.val)),
        _ => None,
    }
}

fn enum_len(t: &BtfType) -> usize {
    match &t.data {
        BtfTypeData::Enum(e) => e.len(),
        BtfTypeData::Enum64(e) => e.len(),
        _ => 0,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Field,
    Type,
    Enumval,
}

fn class(kind: CoreReloKind) -> Option<Class> {
    use CoreReloKind::*;
    Some(match kind {
        FieldByteOffset | FieldByteSize | FieldExists | FieldSigned | FieldLshiftU64
        | FieldRshiftU64 => Class::Field,
        TypeIdLocal | TypeIdTarget | TypeExists | TypeSize | TypeMatches => Class::Type,
        EnumvalExists | EnumvalValue => Class::Enumval,
        Unknown(_) => return None,
    })
}

/// One step of an access: a member (`name` set when it is a named member)
/// or an array element of `type_id`.
#[derive(Debug, Clone)]
struct Access<'a> {
    type_id: u32,
    idx: u32,
    name: Option<&'a str>,
}

/// libbpf's `bpf_core_spec`: the walk of an access string through one BTF.
#[derive(Debug, Clone)]
struct Spec<'a> {
    btf: &'a Btf,
    root: u32,
    /// Named members, array indices and (enumval) the enumerator.
    access: Vec<Access<'a>>,
    /// Every index of the access string, anonymous members included.
    raw: Vec<u32>,
    bit_offset: u64,
}

impl<'a> Spec<'a> {
    fn new(btf: &'a Btf, root: u32) -> Self {
        Spec {
            btf,
            root,
            access: Vec::new(),
            raw: Vec::new(),
            bit_offset: 0,
        }
    }
}

/// A zero-length array that is the last member of its struct (a flexible
/// array member): any index is allowed.
fn is_flex_array(btf: &Btf, parent: Option<&Access<'_>>, nelems: u32) -> bool {
    let Some(p) = parent else { return false };
    if p.name.is_none() || nelems > 0 {
        return false;
    }
    btf.type_by_id(p.type_id)
        .is_ok_and(|t| (p.idx as usize) + 1 == t.members().len())
}

/// Bits of `idx` elements of `size` bytes (saturating: offsets that large
/// are refused later as too big for an instruction).
fn bits_of(idx: u32, size: u64) -> u64 {
    u64::from(idx).saturating_mul(size).saturating_mul(8)
}

fn size_of(btf: &Btf, id: u32) -> Result<u64, String> {
    btf.resolve_size(id)
        .map(u64::from)
        .map_err(|e| format!("cannot size type [{id}]: {e}"))
}

/// Parses the access string against the local BTF (libbpf's
/// `bpf_core_parse_spec`).
fn parse_spec<'a>(btf: &'a Btf, relo: &CoreRelo, cls: Class) -> Result<Spec<'a>, String> {
    let mut spec = Spec::new(btf, relo.type_id);
    if relo.type_id == 0 || btf.type_by_id(relo.type_id).is_err() {
        return Err(format!("bad local type id {}", relo.type_id));
    }
    let s = relo.access_str.as_str();
    if cls == Class::Type {
        if s != "0" {
            return Err(format!(
                "type relocation with access string {s:?} (want \"0\")"
            ));
        }
        return Ok(spec);
    }
    let raw = s
        .split(':')
        .map(|p| p.parse::<u32>().ok())
        .collect::<Option<Vec<u32>>>()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("bad access string {s:?}"))?;
    if raw.len() > SPEC_MAX_LEN {
        return Err(format!("access string {s:?} longer than {SPEC_MAX_LEN}"));
    }
    let (mut id, mut t) = skip(btf, relo.type_id).map_err(|_| "bad local type".to_string())?;
    let first = raw[0];
    spec.raw = raw.clone();
    spec.access.push(Access {
        type_id: id,
        idx: first,
        name: None,
    });
    if cls == Class::Enumval {
        let t = t.filter(|t| is_enum(Some(t.kind())));
        let Some(t) = t else {
            return Err(format!("enum value relocation on non-enum type [{id}]"));
        };
        if raw.len() > 1 || first as usize >= enum_len(t) {
            return Err(format!("bad enumerator access {s:?} of type [{id}]"));
        }
        let (name_off, _) = enumerator(t, first as usize).unwrap_or((0, 0));
        spec.access[0].name = Some(btf.str_at(name_off));
        return Ok(spec);
    }
    spec.bit_offset = bits_of(first, size_of(btf, id)?);
    for &idx in &raw[1..] {
        let kind = t.map(|t| t.kind());
        let ty = t.ok_or_else(|| format!("access {s:?} walks into void"))?;
        if is_composite(kind) {
            let m = ty
                .members()
                .get(idx as usize)
                .ok_or_else(|| format!("member {idx} out of range in type [{id}]"))?;
            spec.bit_offset = spec.bit_offset.saturating_add(u64::from(m.bits_offset));
            if m.name_off != 0 {
                spec.access.push(Access {
                    type_id: id,
                    idx,
                    name: Some(btf.str_at(m.name_off)),
                });
            }
            (id, t) = skip(btf, m.type_id).map_err(|_| "bad member type".to_string())?;
        } else if let BtfTypeData::Array(a) = &ty.data {
            let flex = is_flex_array(btf, spec.access.last(), a.nelems);
            (id, t) = skip(btf, a.elem_type).map_err(|_| "bad element type".to_string())?;
            if !flex && idx >= a.nelems {
                return Err(format!("index {idx} out of array bounds in {s:?}"));
            }
            spec.access.push(Access {
                type_id: id,
                idx,
                name: None,
            });
            spec.bit_offset = spec
                .bit_offset
                .saturating_add(bits_of(idx, size_of(btf, id)?));
        } else {
            return Err(format!(
                "access {s:?} indexes into {} [{id}]",
                ty.kind().name()
            ));
        }
    }
    Ok(spec)
}

/// Whether two field types can stand for each other (libbpf's
/// `bpf_core_fields_are_compat`).
fn fields_compat(lb: &Btf, mut lid: u32, tb: &Btf, mut tid: u32) -> Result<bool, String> {
    for _ in 0..MAX_DEPTH {
        let (_, lt) = skip(lb, lid).map_err(|_| "bad local field type")?;
        let (_, tt) = skip(tb, tid).map_err(|_| "bad target field type")?;
        let (lk, tk) = (lt.map(|t| t.kind()), tt.map(|t| t.kind()));
        if is_composite(lk) && is_composite(tk) {
            return Ok(true);
        }
        if !kinds_compat(lk, tk) {
            return Ok(false);
        }
        let (Some(lt), Some(tt)) = (lt, tt) else {
            return Ok(false);
        };
        match lt.kind() {
            BtfKind::Ptr | BtfKind::Float => return Ok(true),
            BtfKind::Fwd | BtfKind::Enum | BtfKind::Enum64 => {
                let ln = essence(lb.str_at(lt.name_off));
                let tn = essence(tb.str_at(tt.name_off));
                return Ok(ln.is_empty() || tn.is_empty() || ln == tn);
            }
            BtfKind::Int => return Ok(int_offset(lt) == 0 && int_offset(tt) == 0),
            BtfKind::Array => {
                let (BtfTypeData::Array(la), BtfTypeData::Array(ta)) = (&lt.data, &tt.data) else {
                    return Ok(false);
                };
                lid = la.elem_type;
                tid = ta.elem_type;
            }
            _ => return Ok(false),
        }
    }
    Err("field types nest too deep".into())
}

/// Whether two types are compatible for the type relocations (libbpf's
/// `bpf_core_types_are_compat`): names were matched by the candidate search.
fn types_compat(lb: &Btf, lid: u32, tb: &Btf, tid: u32, level: i32) -> Result<bool, String> {
    if level <= 0 {
        return Err("types nest too deep".into());
    }
    if !kinds_compat(kind_of(lb, lid), kind_of(tb, tid)) {
        return Ok(false);
    }
    let (mut lid, mut tid) = (lid, tid);
    for _ in 0..MAX_DEPTH {
        let (_, lt) = skip(lb, lid).map_err(|_| "bad local type")?;
        let (_, tt) = skip(tb, tid).map_err(|_| "bad target type")?;
        let (lk, tk) = (lt.map(|t| t.kind()), tt.map(|t| t.kind()));
        if !kinds_compat(lk, tk) {
            return Ok(false);
        }
        let (Some(lt), Some(tt)) = (lt, tt) else {
            return Ok(true); // void and void
        };
        match lt.kind() {
            BtfKind::Struct | BtfKind::Union | BtfKind::Enum | BtfKind::Enum64 | BtfKind::Fwd => {
                return Ok(true)
            }
            BtfKind::Int => return Ok(int_offset(lt) == 0 && int_offset(tt) == 0),
            BtfKind::Ptr => {
                lid = lt.size_or_type;
                tid = tt.size_or_type;
            }
            BtfKind::Array => {
                let (BtfTypeData::Array(la), BtfTypeData::Array(ta)) = (&lt.data, &tt.data) else {
                    return Ok(false);
                };
                lid = la.elem_type;
                tid = ta.elem_type;
            }
            BtfKind::FuncProto => {
                let (BtfTypeData::FuncProto(lp), BtfTypeData::FuncProto(tp)) = (&lt.data, &tt.data)
                else {
                    return Ok(false);
                };
                if lp.len() != tp.len() {
                    return Ok(false);
                }
                for (l, t) in lp.iter().zip(tp) {
                    let l = lb.skip_modifiers(l.type_id).map_err(|e| e.to_string())?;
                    let t = tb.skip_modifiers(t.type_id).map_err(|e| e.to_string())?;
                    if !types_compat(lb, l, tb, t, level - 1)? {
                        return Ok(false);
                    }
                }
                lid = lb
                    .skip_modifiers(lt.size_or_type)
                    .map_err(|e| e.to_string())?;
                tid = tb
                    .skip_modifiers(tt.size_or_type)
                    .map_err(|e| e.to_string())?;
            }
            _ => return Ok(false),
        }
    }
    Err("types nest too deep".into())
}

/// Names match when both are anonymous or their essences are equal.
fn names_match(lb: &Btf, loff: u32, tb: &Btf, toff: u32) -> bool {
    let (l, t) = (lb.str_at(loff), tb.str_at(toff));
    if t.is_empty() {
        return l.is_empty();
    }
    essence(l) == essence(t)
}

/// `bpf_core_type_matches`: the stricter, layout-level comparison (libbpf's
/// `bpf_core_types_match`).
fn types_match(
    lb: &Btf,
    lid: u32,
    tb: &Btf,
    tid: u32,
    mut behind_ptr: bool,
    level: i32,
) -> Result<bool, String> {
    if level <= 0 {
        return Err("types nest too deep".into());
    }
    let (mut lid, mut tid) = (lid, tid);
    for _ in 0..MAX_DEPTH {
        let (_, lt) = skip(lb, lid).map_err(|_| "bad local type")?;
        let (_, tt) = skip(tb, tid).map_err(|_| "bad target type")?;
        let (Some(lt), Some(tt)) = (lt, tt) else {
            return Ok(lt.is_none() && tt.is_none());
        };
        if !names_match(lb, lt.name_off, tb, tt.name_off) {
            return Ok(false);
        }
        let (lk, tk) = (lt.kind(), tt.kind());
        match lk {
            BtfKind::Fwd => {
                return Ok(if behind_ptr {
                    if lk == tk {
                        lt.kind_flag == tt.kind_flag
                    } else {
                        (tk == BtfKind::Struct && !lt.kind_flag)
                            || (tk == BtfKind::Union && lt.kind_flag)
                    }
                } else {
                    lk == tk && lt.kind_flag == tt.kind_flag
                })
            }
            BtfKind::Enum | BtfKind::Enum64 => {
                if !is_enum(Some(tk)) || lt.size_or_type != tt.size_or_type {
                    return Ok(false);
                }
                let (ln, tn) = (enum_len(lt), enum_len(tt));
                if ln > tn {
                    return Ok(false);
                }
                let all = (0..ln).all(|i| {
                    let lo = enumerator(lt, i).map_or(0, |e| e.0);
                    (0..tn).any(|j| names_match(lb, lo, tb, enumerator(tt, j).map_or(0, |e| e.0)))
                });
                return Ok(all);
            }
            BtfKind::Struct | BtfKind::Union => {
                if behind_ptr {
                    if lk == tk {
                        return Ok(true);
                    }
                    return Ok(tk == BtfKind::Fwd && (lk == BtfKind::Union) == tt.kind_flag);
                }
                if lk != tk {
                    return Ok(false);
                }
                let (lm, tm) = (lt.members(), tt.members());
                if lm.len() > tm.len() {
                    return Ok(false);
                }
                for l in lm {
                    let mut found = false;
                    for t in tm {
                        if !names_match(lb, l.name_off, tb, t.name_off) {
                            continue;
                        }
                        if types_match(lb, l.type_id, tb, t.type_id, behind_ptr, level - 1)? {
                            found = true;
                            break;
                        }
                    }
                    if !found {
                        return Ok(false);
                    }
                }
                return Ok(true);
            }
            BtfKind::Int => {
                return Ok(tk == BtfKind::Int
                    && lt.size_or_type == tt.size_or_type
                    && (int_encoding(lt) & BTF_INT_SIGNED) == (int_encoding(tt) & BTF_INT_SIGNED))
            }
            BtfKind::Ptr => {
                if tk != lk {
                    return Ok(false);
                }
                behind_ptr = true;
                lid = lt.size_or_type;
                tid = tt.size_or_type;
            }
            BtfKind::Array => {
                let (BtfTypeData::Array(la), BtfTypeData::Array(ta)) = (&lt.data, &tt.data) else {
                    return Ok(false);
                };
                if la.nelems != ta.nelems {
                    return Ok(false);
                }
                lid = la.elem_type;
                tid = ta.elem_type;
            }
            BtfKind::FuncProto => {
                let (BtfTypeData::FuncProto(lp), BtfTypeData::FuncProto(tp)) = (&lt.data, &tt.data)
                else {
                    return Ok(false);
                };
                if lp.len() != tp.len() {
                    return Ok(false);
                }
                for (l, t) in lp.iter().zip(tp) {
                    if !types_match(lb, l.type_id, tb, t.type_id, behind_ptr, level - 1)? {
                        return Ok(false);
                    }
                }
                lid = lt.size_or_type;
                tid = tt.size_or_type;
            }
            _ => return Ok(false),
        }
    }
    Err("types nest too deep".into())
}

/// Finds the local named member `acc` in target composite `tid`, looking
/// through anonymous members (libbpf's `bpf_core_match_member`); on success
/// the target spec has the member's path and the returned id is its type.
fn match_member<'t>(
    lb: &Btf,
    acc: &Access<'_>,
    tb: &'t Btf,
    tid: u32,
    spec: &mut Spec<'t>,
) -> Result<Option<u32>, String> {
    let lt = lb.type_by_id(acc.type_id).map_err(|e| e.to_string())?;
    let lm = *lt
        .members()
        .get(acc.idx as usize)
        .ok_or("local member out of range")?;
    let lname = lb.str_at(lm.name_off);
    let (tid, tt) = skip(tb, tid).map_err(|_| "bad target type")?;
    let Some(tt) = tt.filter(|t| is_composite(Some(t.kind()))) else {
        return Ok(None);
    };
    for (i, m) in tt.members().iter().enumerate() {
        if spec.raw.len() >= SPEC_MAX_LEN {
            return Err("access too deep".into());
        }
        spec.bit_offset = spec.bit_offset.saturating_add(u64::from(m.bits_offset));
        spec.raw.push(i as u32);
        let tname = tb.str_at(m.name_off);
        if tname.is_empty() {
            if let Some(found) = match_member(lb, acc, tb, m.type_id, spec)? {
                return Ok(Some(found));
            }
        } else if tname == lname {
            if !fields_compat(lb, lm.type_id, tb, m.type_id)? {
                return Ok(None);
            }
            spec.access.push(Access {
                type_id: tid,
                idx: i as u32,
                name: Some(tname),
            });
            return Ok(Some(m.type_id));
        }
        spec.bit_offset = spec.bit_offset.saturating_sub(u64::from(m.bits_offset));
        spec.raw.pop();
    }
    Ok(None)
}

/// Walks the local spec through target type `tid` (libbpf's
/// `bpf_core_spec_match`): `Ok(None)` when it does not match.
fn spec_match<'t>(
    local: &Spec<'_>,
    cls: Class,
    kind: CoreReloKind,
    tb: &'t Btf,
    tid: u32,
) -> Result<Option<Spec<'t>>, String> {
    let mut spec = Spec::new(tb, tid);
    let lb = local.btf;
    match cls {
        Class::Type => {
            let ok = if kind == CoreReloKind::TypeMatches {
                types_match(lb, local.root, tb, tid, false, MAX_DEPTH)?
            } else {
                types_compat(lb, local.root, tb, tid, MAX_DEPTH)?
            };
            Ok(ok.then_some(spec))
        }
        Class::Enumval => {
            let (tid, tt) = skip(tb, tid).map_err(|_| "bad target type")?;
            let Some(tt) = tt.filter(|t| is_enum(Some(t.kind()))) else {
                return Ok(None);
            };
            let want = essence(local.access[0].name.unwrap_or(""));
            for i in 0..enum_len(tt) {
                let name = tb.str_at(enumerator(tt, i).map_or(0, |e| e.0));
                if essence(name) == want {
                    spec.access.push(Access {
                        type_id: tid,
                        idx: i as u32,
                        name: Some(name),
                    });
                    spec.raw.push(i as u32);
                    return Ok(Some(spec));
                }
            }
            Ok(None)
        }
        Class::Field => {
            let mut tid = tid;
            for (i, acc) in local.access.iter().enumerate() {
                let (sid, tt) = skip(tb, tid).map_err(|_| "bad target type")?;
                tid = sid;
                if acc.name.is_some() {
                    match match_member(lb, acc, tb, tid, &mut spec)? {
                        Some(next) => tid = next,
                        None => return Ok(None),
                    }
                    continue;
                }
                if i > 0 {
                    let Some(BtfTypeData::Array(a)) = tt.map(|t| &t.data) else {
                        return Ok(None);
                    };
                    let flex = is_flex_array(tb, spec.access.last(), a.nelems);
                    if !flex && acc.idx >= a.nelems {
                        return Ok(None);
                    }
                    tid = skip(tb, a.elem_type).map_err(|_| "bad element type")?.0;
                }
                if spec.raw.len() >= SPEC_MAX_LEN {
                    return Err("access too deep".into());
                }
                spec.access.push(Access {
                    type_id: tid,
                    idx: acc.idx,
                    name: None,
                });
                spec.raw.push(acc.idx);
                spec.bit_offset = spec
                    .bit_offset
                    .saturating_add(bits_of(acc.idx, size_of(tb, tid)?));
            }
            Ok(Some(spec))
        }
    }
}

/// A relocation's value against one spec (`None`: no target).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Value {
    val: u64,
    /// For a field offset: the field's size and type, for the load size.
    size: u32,
    type_id: u32,
    /// Whether the compiled instruction must hold this value.
    validate: bool,
}

/// `Err(None)`: poison the instruction; `Err(Some(msg))`: fail the load.
type CalcResult = Result<Value, Option<String>>;

fn field_value(kind: CoreReloKind, spec: Option<&Spec<'_>>) -> CalcResult {
    use CoreReloKind::*;
    let mut v = Value {
        validate: true,
        ..Value::default()
    };
    if kind == FieldExists {
        v.val = u64::from(spec.is_some());
        return Ok(v);
    }
    let spec = spec.ok_or(None)?;
    let btf = spec.btf;
    let acc = spec.access.last().ok_or(Some("empty access".to_string()))?;
    let Some(_) = acc.name else {
        // The last step is an array element (or the root): whole elements.
        let sz = btf
            .resolve_size(acc.type_id)
            .map_err(|e| Some(e.to_string()))?;
        match kind {
            FieldByteOffset => {
                v.val = spec.bit_offset / 8;
                v.size = sz;
                v.type_id = acc.type_id;
            }
            FieldByteSize => v.val = u64::from(sz),
            _ => {
                return Err(Some(format!(
                    "{} cannot be applied to an array access",
                    kind.name()
                )))
            }
        }
        return Ok(v);
    };
    let t = btf
        .type_by_id(acc.type_id)
        .map_err(|e| Some(e.to_string()))?;
    let m = t
        .members()
        .get(acc.idx as usize)
        .ok_or(Some("member out of range".to_string()))?;
    let (fid, mt) = skip(btf, m.type_id).map_err(|_| Some("bad member type".to_string()))?;
    let mt = mt.ok_or(Some("member of type void".to_string()))?;
    let bit_off = spec.bit_offset;
    let mut bit_sz = u64::from(m.bitfield_size);
    let bitfield = bit_sz > 0;
    let (byte_off, byte_sz);
    if bitfield {
        let mut sz = u64::from(mt.size_or_type).max(1);
        let mut off = bit_off / 8 / sz * sz;
        let end_in = |off: u64| {
            bit_off
                .saturating_add(bit_sz)
                .saturating_sub(off.saturating_mul(8))
        };
        while end_in(off) > sz.saturating_mul(8) {
            if sz >= 8 {
                return Err(Some("bitfield cannot be read with a 64-bit load".into()));
            }
            sz *= 2;
            off = bit_off / 8 / sz * sz;
        }
        byte_sz = sz;
        byte_off = off;
    } else {
        byte_sz = u64::from(btf.resolve_size(fid).map_err(|e| Some(e.to_string()))?);
        byte_off = bit_off / 8;
        bit_sz = byte_sz * 8;
    }
    v.validate = !bitfield;
    match kind {
        FieldByteOffset => {
            v.val = byte_off;
            if !bitfield {
                v.size = byte_sz as u32;
                v.type_id = fid;
            }
        }
        FieldByteSize => v.val = byte_sz,
        FieldSigned => {
            v.val = u64::from(
                (is_enum(Some(mt.kind())) && mt.kind_flag)
                    || (mt.kind() == BtfKind::Int && int_encoding(mt) & BTF_INT_SIGNED != 0),
            );
            v.validate = true;
        }
        FieldLshiftU64 => {
            let end = bit_off
                .saturating_add(bit_sz)
                .saturating_sub(byte_off.saturating_mul(8));
            v.val = 64u64.wrapping_sub(end);
        }
        FieldRshiftU64 => {
            v.val = 64u64.wrapping_sub(bit_sz);
            v.validate = true;
        }
        _ => return Err(Some(format!("unexpected field relocation {}", kind.name()))),
    }
    Ok(v)
}

fn type_value(kind: CoreReloKind, spec: Option<&Spec<'_>>) -> CalcResult {
    use CoreReloKind::*;
    let mut v = Value {
        validate: true,
        ..Value::default()
    };
    let Some(spec) = spec else {
        return Ok(v); // an absent type: 0 for every type relocation
    };
    v.val = match kind {
        TypeIdLocal | TypeIdTarget => u64::from(spec.root),
        TypeExists | TypeMatches => 1,
        TypeSize => u64::from(
            spec.btf
                .resolve_size(spec.root)
                .map_err(|e| Some(e.to_string()))?,
        ),
        _ => return Err(Some(format!("unexpected type relocation {}", kind.name()))),
    };
    Ok(v)
}

fn enumval_value(kind: CoreReloKind, spec: Option<&Spec<'_>>) -> CalcResult {
    let mut v = Value {
        validate: true,
        ..Value::default()
    };
    match kind {
        CoreReloKind::EnumvalExists => v.val = u64::from(spec.is_some()),
        CoreReloKind::EnumvalValue => {
            let spec = spec.ok_or(None)?;
            let acc = &spec.access[0];
            let t = spec
                .btf
                .type_by_id(acc.type_id)
                .map_err(|e| Some(e.to_string()))?;
            v.val = enumerator(t, acc.idx as usize)
                .ok_or(Some("enumerator out of range".to_string()))?
                .1;
        }
        _ => return Err(Some(format!("unexpected enum relocation {}", kind.name()))),
    }
    Ok(v)
}

/// Orig and new values of one relocation (libbpf's `bpf_core_calc_relo`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Outcome {
    orig: Value,
    new: Value,
    poison: bool,
    /// Orig and new field sizes differ in a way a load cannot absorb.
    bad_size: bool,
}

fn calc(
    kind: CoreReloKind,
    cls: Class,
    local: &Spec<'_>,
    targ: Option<&Spec<'_>>,
) -> Result<Outcome, String> {
    let f = match cls {
        Class::Field => field_value,
        Class::Type => type_value,
        Class::Enumval => enumval_value,
    };
    let mut out = Outcome::default();
    let r = f(kind, Some(local)).and_then(|o| {
        out.orig = o;
        f(kind, targ)
    });
    match r {
        Ok(n) => out.new = n,
        Err(None) => {
            out.poison = true;
            return Ok(out);
        }
        Err(Some(msg)) => return Err(msg),
    }
    if cls == Class::Field && out.orig.size != out.new.size {
        let ty = |s: &Spec<'_>, id: u32| s.btf.type_by_id(id).ok().cloned();
        let (o, n) = (
            ty(local, out.orig.type_id),
            targ.and_then(|t| ty(t, out.new.type_id)),
        );
        let unsigned_int =
            |t: &BtfType| t.kind() == BtfKind::Int && int_encoding(t) != BTF_INT_SIGNED;
        let ok = match (&o, &n) {
            (Some(o), Some(n)) => {
                (o.kind() == BtfKind::Ptr && n.kind() == BtfKind::Ptr)
                    || (unsigned_int(o) && unsigned_int(n))
            }
            _ => false,
        };
        out.bad_size = !ok;
    }
    Ok(out)
}

/// `[12] struct task_struct.pid (0:4 @ offset 8)`-like description.
fn describe(spec: &Spec<'_>, cls: Class) -> String {
    let btf = spec.btf;
    let root = btf.type_by_id(spec.root).ok();
    let kind = root.map_or("void", |t| match t.kind() {
        BtfKind::Struct => "struct",
        BtfKind::Union => "union",
        BtfKind::Enum | BtfKind::Enum64 => "enum",
        BtfKind::Typedef => "typedef",
        k => k.name(),
    });
    let mut s = format!("[{}] {} {}", spec.root, kind, btf.name(spec.root));
    match cls {
        Class::Type => {}
        Class::Enumval => {
            s.push_str(&format!("::{}", spec.access[0].name.unwrap_or("")));
        }
        Class::Field => {
            for a in spec.access.iter().skip(1) {
                match a.name {
                    Some(n) => {
                        s.push('.');
                        s.push_str(n);
                    }
                    None => s.push_str(&format!("[{}]", a.idx)),
                }
            }
            let raw: Vec<String> = spec.raw.iter().map(|r| r.to_string()).collect();
            s.push_str(&format!(
                " ({} @ offset {})",
                raw.join(":"),
                spec.bit_offset / 8
            ));
        }
    }
    s
}

fn bpf_size_bytes(code: u8) -> u32 {
    match code & 0x18 {
        0x00 => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    }
}

fn bpf_size_code(bytes: u32) -> Option<u8> {
    Some(match bytes {
        4 => 0x00,
        2 => 0x08,
        1 => 0x10,
        8 => 0x18,
        _ => return None,
    })
}

fn poison(insn: &mut Insn) {
    *insn = Insn {
        code: 0x85, // BPF_JMP | BPF_CALL
        dst_reg: 0,
        src_reg: 0,
        off: 0,
        imm: POISON_HELPER_ID,
    };
}

/// Resolves and applies every relocation of one program. `relos` carry
/// program-relative instruction indices. Unresolvable relocations poison
/// their instruction; malformed ones (or ambiguous matches) fail the load.
pub fn relocate(
    prog: &str,
    insns: &mut [Insn],
    relos: &[CoreRelo],
    local: &Btf,
    target: &Btf,
    index: &CoreTarget,
) -> Result<Vec<CoreApplied>, CoreError> {
    let mut applied = Vec::with_capacity(relos.len());
    // Candidates per local type, narrowed to those that matched once (as
    // libbpf's candidate cache is): later relocations of the same type only
    // look at the targets an earlier one settled on.
    let mut cands_cache: HashMap<u32, Vec<u32>> = HashMap::new();
    for (n, relo) in relos.iter().enumerate() {
        let at = relo.insn_idx as usize;
        let err = |reason: String| CoreError {
            prog: prog.to_string(),
            relo: n,
            insn: at,
            kind: relo.kind.name(),
            reason,
        };
        if at >= insns.len() {
            return Err(err(format!(
                "instruction out of range (program has {})",
                insns.len()
            )));
        }
        let cls = class(relo.kind).ok_or_else(|| {
            err(format!(
                "unrecognized CO-RE relocation kind {:?}",
                relo.kind
            ))
        })?;
        let lspec = parse_spec(local, relo, cls).map_err(|e| err(format!("bad spec: {e}")))?;
        let what = describe(&lspec, cls);
        let out = if relo.kind == CoreReloKind::TypeIdLocal {
            let v = Value {
                val: u64::from(relo.type_id),
                ..Value::default()
            };
            Outcome {
                orig: v,
                new: v,
                ..Outcome::default()
            }
        } else {
            let lt = local
                .type_by_id(relo.type_id)
                .map_err(|e| err(e.to_string()))?;
            let lname = local.str_at(lt.name_off);
            if lname.is_empty() {
                return Err(err(format!(
                    "anonymous local type [{}] cannot be matched against the target",
                    relo.type_id
                )));
            }
            let mut found: Option<(Outcome, u64)> = None;
            let cands = cands_cache
                .entry(relo.type_id)
                .or_insert_with(|| index.candidates(target, relo.type_id, lt, lname));
            let mut matched = Vec::new();
            for &cand in cands.iter() {
                let Some(tspec) = spec_match(&lspec, cls, relo.kind, target, cand)
                    .map_err(|e| err(format!("matching [{cand}]: {e}")))?
                else {
                    continue;
                };
                matched.push(cand);
                let o = calc(relo.kind, cls, &lspec, Some(&tspec)).map_err(&err)?;
                match &found {
                    None => found = Some((o, tspec.bit_offset)),
                    Some((f, bits)) => {
                        if *bits != tspec.bit_offset {
                            return Err(err(format!(
                                "{what}: field offset ambiguity: {} != {} in target candidates",
                                bits / 8,
                                tspec.bit_offset / 8
                            )));
                        }
                        if f.poison != o.poison || f.new.val != o.new.val {
                            return Err(err(format!(
                                "{what}: relocation decision ambiguity: {} != {} in target candidates",
                                f.new.val, o.new.val
                            )));
                        }
                    }
                }
            }
            if !matched.is_empty() {
                *cands = matched;
            }
            match found {
                Some((o, _)) => o,
                None => calc(relo.kind, cls, &lspec, None).map_err(&err)?,
            }
        };
        let mut poisoned = out.poison;
        if !poisoned {
            poisoned = patch(insns, at, &out).map_err(|e| err(format!("{what}: {e}")))?;
        }
        if poisoned {
            if insns[at].code == 0x18 {
                if let Some(next) = insns.get_mut(at + 1) {
                    poison(next);
                }
            }
            poison(&mut insns[at]);
        }
        applied.push(CoreApplied {
            insn_idx: at,
            kind: relo.kind,
            poisoned,
            orig_val: out.orig.val,
            new_val: out.new.val,
            what,
        });
    }
    Ok(applied)
}

/// Writes the new value into the instruction (libbpf's `bpf_core_patch_insn`);
/// `Ok(true)`: the instruction must be poisoned instead.
fn patch(insns: &mut [Insn], at: usize, out: &Outcome) -> Result<bool, String> {
    let (orig, new) = (out.orig.val, out.new.val);
    let insn = insns[at];
    match insn.code & 0x07 {
        // BPF_ALU / BPF_ALU64
        0x04 | 0x07 => {
            if insn.code & 0x08 != 0 {
                return Err("ALU instruction with a register source".into());
            }
            if out.orig.validate && insn.imm as i64 as u64 != orig {
                return Err(format!(
                    "unexpected insn #{at} (ALU/ALU64) value: got {}, exp {orig} -> {new}",
                    insn.imm as u32
                ));
            }
            insns[at].imm = new as i32;
        }
        // BPF_LDX / BPF_ST / BPF_STX
        0x01..=0x03 => {
            if out.orig.validate && insn.off as i64 as u64 != orig {
                return Err(format!(
                    "unexpected insn #{at} (LDX/ST/STX) value: got {}, exp {orig} -> {new}",
                    insn.off as u16
                ));
            }
            if new > i16::MAX as u64 {
                return Err(format!("insn #{at} (LDX/ST/STX) value too big: {new}"));
            }
            if out.bad_size {
                return Ok(true);
            }
            insns[at].off = new as i16;
            if out.orig.size != out.new.size {
                let have = bpf_size_bytes(insn.code);
                if have != out.orig.size {
                    return Err(format!(
                        "insn #{at} (LDX/ST/STX) unexpected mem size: got {have}, exp {}",
                        out.orig.size
                    ));
                }
                let code = bpf_size_code(out.new.size).ok_or_else(|| {
                    format!(
                        "insn #{at} (LDX/ST/STX) invalid new mem size: {}",
                        out.new.size
                    )
                })?;
                insns[at].code = (insn.code & !0x18) | code;
            }
        }
        // BPF_LD: only LD_IMM64
        0x00 => {
            let second = insns.get(at + 1).copied();
            let ok = insn.code == 0x18
                && insn.src_reg == 0
                && insn.off == 0
                && second
                    .is_some_and(|s| s.code == 0 && s.dst_reg == 0 && s.src_reg == 0 && s.off == 0);
            let Some(second) = second.filter(|_| ok) else {
                return Err(format!("insn #{at} (LDIMM64) has unexpected form"));
            };
            let imm = u64::from(insn.imm as u32) | (u64::from(second.imm as u32) << 32);
            if out.orig.validate && imm != orig {
                return Err(format!(
                    "unexpected insn #{at} (LDIMM64) value: got {imm}, exp {orig} -> {new}"
                ));
            }
            insns[at].imm = new as u32 as i32;
            insns[at + 1].imm = (new >> 32) as u32 as i32;
        }
        _ => {
            return Err(format!(
                "trying to relocate unrecognized insn #{at}, code:{:#x}",
                insn.code
            ))
        }
    }
    Ok(false)
}
