//! `bpftool btf dump file X format c`: the types of a BTF as a C header
//! (vmlinux.h style), byte for byte as bpftool prints it.
//!
//! Two passes per type, in type id order, as bpftool drives libbpf's dumper:
//! an ordering pass (a depth-first walk that puts every named definition a
//! type needs before it; a link through a pointer to a named struct/union is
//! "weak" and satisfied by a forward declaration, anything embedded is
//! "strong"), then an emission pass over that queue that writes forward
//! declarations where a definition is still under way. Anonymous structs,
//! unions and enums are written inline where they are used. Names that
//! repeat get `___N` suffixes in the order they are first written, which is
//! why names are resolved lazily, during emission.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::{Btf, BtfKind, BtfMember, BtfType, BtfTypeData};

/// Why a BTF cannot be written as C.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CDumpError {
    /// A cycle of embedded types, which no forward declaration can break
    /// (libbpf: "unsatisfiable type cycle").
    #[error("type [{type_id}]: unsatisfiable type cycle")]
    TypeCycle { type_id: u32 },
    /// Type nesting deeper than the dumper follows.
    #[error("type [{type_id}]: type nesting deeper than {MAX_DEPTH} levels")]
    TooDeep { type_id: u32 },
    /// A reference to a type id the BTF does not have.
    #[error("type [{type_id}] does not exist")]
    NoType { type_id: u32 },
}

/// Bound on the dumper's recursion (real headers nest a few dozen levels).
pub const MAX_DEPTH: usize = 1000;

const HEADER: &str = "#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)
#endif

";

const FOOTER: &str = "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute pop
#endif

#endif /* __VMLINUX_H__ */
";

/// The whole BTF as bpftool's `format c` prints it.
pub fn dump_btf_c(btf: &Btf) -> Result<String, CDumpError> {
    let mut d = CDump::new(btf);
    d.out.push_str(HEADER);
    for id in 1..=btf.nr_types() {
        d.dump_type(id)?;
    }
    d.out.push_str(FOOTER);
    Ok(d.out)
}

/// Only `roots` and the types they need (bpftool's `btf dump map MAP
/// format c`), with the same header and footer.
pub fn dump_btf_c_roots(btf: &Btf, roots: &[u32]) -> Result<String, CDumpError> {
    let mut d = CDump::new(btf);
    d.out.push_str(HEADER);
    for &id in roots {
        if id > btf.nr_types() {
            return Err(CDumpError::NoType { type_id: id });
        }
        d.dump_type(id)?;
    }
    d.out.push_str(FOOTER);
    Ok(d.out)
}

#[derive(Clone, Copy, PartialEq, Eq, Default)]
enum Order {
    #[default]
    None,
    Ordering,
    Ordered,
}

#[derive(Clone, Copy, PartialEq, Eq, Default)]
enum Emit {
    #[default]
    None,
    Emitting,
    Emitted,
}

#[derive(Clone, Copy, Default)]
struct State {
    order: Order,
    emit: Emit,
    fwd_emitted: bool,
    /// Some other type refers to it (tells a top-level anonymous enum,
    /// which is written on its own, from one used inline).
    referenced: bool,
    name_resolved: bool,
}

struct CDump<'a> {
    btf: &'a Btf,
    st: Vec<State>,
    queue: Vec<u32>,
    /// Struct/union/enum/fwd tags (and int names) seen so far.
    type_names: HashMap<String, usize>,
    /// Typedef names and enumerators: one namespace in C.
    ident_names: HashMap<String, usize>,
    cached: Vec<Option<String>>,
    out: String,
    ptr_sz: u32,
    depth: usize,
}

fn pfx(lvl: usize) -> &'static str {
    const TABS: &str = "\t\t\t\t\t\t\t\t\t\t\t\t\t";
    &TABS[..lvl.min(TABS.len())]
}

fn roundup(x: i64, y: i64) -> i64 {
    if y <= 0 {
        return x;
    }
    (x + y - 1) / y * y
}

impl<'a> CDump<'a> {
    fn new(btf: &'a Btf) -> Self {
        let n = btf.nr_types() as usize + 1;
        let mut st = vec![State::default(); n];
        // void needs no definition.
        st[0].order = Order::Ordered;
        st[0].emit = Emit::Emitted;
        let mut d = CDump {
            btf,
            st,
            queue: Vec::new(),
            type_names: HashMap::new(),
            ident_names: HashMap::new(),
            cached: vec![None; n],
            out: String::new(),
            ptr_sz: pointer_size(btf),
            depth: 0,
        };
        d.mark_referenced();
        d
    }

    fn t(&self, id: u32) -> Option<&'a BtfType> {
        self.btf.type_by_id(id).ok()
    }

    fn mark(&mut self, id: u32) {
        if let Some(s) = self.st.get_mut(id as usize) {
            s.referenced = true;
        }
    }

    fn mark_referenced(&mut self) {
        let btf = self.btf;
        for (_, t) in btf.iter() {
            match &t.data {
                BtfTypeData::Array(a) => {
                    self.mark(a.index_type);
                    self.mark(a.elem_type);
                }
                BtfTypeData::Struct(m) | BtfTypeData::Union(m) => {
                    for m in m {
                        self.mark(m.type_id);
                    }
                }
                BtfTypeData::FuncProto(p) => {
                    for p in p {
                        self.mark(p.type_id);
                    }
                }
                BtfTypeData::Datasec(v) => {
                    for v in v {
                        self.mark(v.type_id);
                    }
                }
                _ => {
                    if let Some(r) = t.type_ref() {
                        self.mark(r);
                    }
                }
            }
        }
    }

    fn dump_type(&mut self, id: u32) -> Result<(), CDumpError> {
        self.queue.clear();
        self.depth = 0;
        self.order_type(id, false)?;
        let q = std::mem::take(&mut self.queue);
        for &id in &q {
            self.depth = 0;
            self.emit_type(id, 0);
        }
        Ok(())
    }

    fn name_of(&self, off: u32) -> &'a str {
        self.btf.str_at(off)
    }

    // ---- ordering ----

    /// Returns whether `id` is strongly linked (must be fully defined
    /// before its user).
    fn order_type(&mut self, id: u32, through_ptr: bool) -> Result<bool, CDumpError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CDumpError::TooDeep { type_id: id });
        }
        let r = self.order_type_inner(id, through_ptr);
        self.depth -= 1;
        r
    }

    fn order_type_inner(&mut self, id: u32, through_ptr: bool) -> Result<bool, CDumpError> {
        let idx = id as usize;
        if self.st.get(idx).map(|s| s.order) == Some(Order::Ordered) {
            return Ok(true);
        }
        let t = self.t(id).ok_or(CDumpError::NoType { type_id: id })?;
        let named = t.name_off != 0;
        if self.st[idx].order == Order::Ordering {
            if matches!(t.kind(), BtfKind::Struct | BtfKind::Union) && through_ptr && named {
                return Ok(false);
            }
            return Err(CDumpError::TypeCycle { type_id: id });
        }
        match &t.data {
            BtfTypeData::Int { .. } | BtfTypeData::Float => {
                self.st[idx].order = Order::Ordered;
                Ok(false)
            }
            BtfTypeData::Ptr => {
                let r = self.order_type(t.size_or_type, true);
                self.st[idx].order = Order::Ordered;
                r
            }
            BtfTypeData::Array(a) => self.order_type(a.elem_type, false),
            BtfTypeData::Struct(members) | BtfTypeData::Union(members) => {
                if through_ptr && named {
                    return Ok(false);
                }
                self.st[idx].order = Order::Ordering;
                for m in members {
                    self.order_type(m.type_id, false)?;
                }
                if named {
                    self.queue.push(id);
                }
                self.st[idx].order = Order::Ordered;
                Ok(true)
            }
            BtfTypeData::Enum(_) | BtfTypeData::Enum64(_) | BtfTypeData::Fwd => {
                if named || !self.st[idx].referenced {
                    self.queue.push(id);
                }
                self.st[idx].order = Order::Ordered;
                Ok(true)
            }
            BtfTypeData::Typedef => {
                let strong = self.order_type(t.size_or_type, through_ptr)?;
                if through_ptr && !strong {
                    return Ok(false);
                }
                self.queue.push(id);
                self.st[idx].order = Order::Ordered;
                Ok(true)
            }
            BtfTypeData::Volatile
            | BtfTypeData::Const
            | BtfTypeData::Restrict
            | BtfTypeData::TypeTag => self.order_type(t.size_or_type, through_ptr),
            BtfTypeData::FuncProto(params) => {
                let mut strong = self.order_type(t.size_or_type, through_ptr)?;
                for p in params {
                    strong |= self.order_type(p.type_id, through_ptr)?;
                }
                Ok(strong)
            }
            BtfTypeData::Func
            | BtfTypeData::Var { .. }
            | BtfTypeData::Datasec(_)
            | BtfTypeData::DeclTag { .. } => {
                self.st[idx].order = Order::Ordered;
                Ok(false)
            }
        }
    }

    // ---- names ----

    fn resolve_name(&mut self, id: u32, ident: bool) -> String {
        let Some(t) = self.t(id) else {
            return String::new();
        };
        if t.name_off == 0 {
            return String::new();
        }
        let orig = self.name_of(t.name_off);
        let idx = id as usize;
        if self.st[idx].name_resolved {
            return self.cached[idx].clone().unwrap_or_else(|| orig.to_string());
        }
        self.st[idx].name_resolved = true;
        if t.kind() == BtfKind::Fwd || (t.kind() == BtfKind::Enum && t.vlen() == 0) {
            return orig.to_string();
        }
        let map = if ident {
            &mut self.ident_names
        } else {
            &mut self.type_names
        };
        let n = map.entry(orig.to_string()).or_insert(0);
        *n += 1;
        if *n > 1 {
            let s = format!("{orig}___{n}");
            self.cached[idx] = Some(s.clone());
            s
        } else {
            orig.to_string()
        }
    }

    fn type_name(&mut self, id: u32) -> String {
        self.resolve_name(id, false)
    }

    fn ident_name(&mut self, id: u32) -> String {
        self.resolve_name(id, true)
    }

    fn ident_dups(&mut self, name: &str) -> usize {
        let n = self.ident_names.entry(name.to_string()).or_insert(0);
        *n += 1;
        *n
    }

    // ---- emission ----

    fn emit_type(&mut self, id: u32, cont_id: u32) {
        if self.depth > MAX_DEPTH {
            return;
        }
        self.depth += 1;
        self.emit_type_inner(id, cont_id);
        self.depth -= 1;
    }

    fn emit_type_inner(&mut self, id: u32, cont_id: u32) {
        let idx = id as usize;
        let Some(state) = self.st.get(idx).copied() else {
            return;
        };
        if state.emit == Emit::Emitted {
            return;
        }
        let Some(t) = self.t(id) else {
            return;
        };
        let top_level = cont_id == 0;
        if state.emit == Emit::Emitting {
            if state.fwd_emitted {
                return;
            }
            match t.kind() {
                BtfKind::Struct | BtfKind::Union => {
                    // A reference from inside the struct itself needs no
                    // forward declaration; an anonymous loop cannot have one.
                    if id == cont_id || t.name_off == 0 {
                        return;
                    }
                    self.emit_struct_fwd(id, t);
                    self.out.push_str(";\n\n");
                    self.st[idx].fwd_emitted = true;
                }
                BtfKind::Typedef => {
                    if !self.is_blacklisted(t) {
                        self.emit_typedef_def(id, t, 0);
                        self.out.push_str(";\n\n");
                    }
                    self.st[idx].fwd_emitted = true;
                }
                _ => {}
            }
            return;
        }
        match &t.data {
            BtfTypeData::Int { .. } => {
                self.emit_missing_alias(id);
                self.st[idx].emit = Emit::Emitted;
            }
            BtfTypeData::Enum(_) | BtfTypeData::Enum64(_) => {
                if top_level {
                    self.emit_enum_def(id, t, 0);
                    self.out.push_str(";\n\n");
                }
                self.st[idx].emit = Emit::Emitted;
            }
            BtfTypeData::Ptr
            | BtfTypeData::Volatile
            | BtfTypeData::Const
            | BtfTypeData::Restrict
            | BtfTypeData::TypeTag => self.emit_type(t.size_or_type, cont_id),
            BtfTypeData::Array(a) => self.emit_type(a.elem_type, cont_id),
            BtfTypeData::Fwd => {
                self.emit_fwd_def(id, t);
                self.out.push_str(";\n\n");
                self.st[idx].emit = Emit::Emitted;
            }
            BtfTypeData::Typedef => {
                self.st[idx].emit = Emit::Emitting;
                self.emit_type(t.size_or_type, id);
                // Someone may have needed it as a forward declaration
                // meanwhile, which for a typedef is the definition itself.
                if !self.st[idx].fwd_emitted && !self.is_blacklisted(t) {
                    self.emit_typedef_def(id, t, 0);
                    self.out.push_str(";\n\n");
                }
                self.st[idx].emit = Emit::Emitted;
            }
            BtfTypeData::Struct(members) | BtfTypeData::Union(members) => {
                self.st[idx].emit = Emit::Emitting;
                if top_level || t.name_off == 0 {
                    let new_cont = if t.name_off == 0 { cont_id } else { id };
                    for m in members {
                        self.emit_type(m.type_id, new_cont);
                    }
                } else if !self.st[idx].fwd_emitted && id != cont_id {
                    self.emit_struct_fwd(id, t);
                    self.out.push_str(";\n\n");
                    self.st[idx].fwd_emitted = true;
                }
                if top_level {
                    self.emit_struct_def(id, t, 0);
                    self.out.push_str(";\n\n");
                    self.st[idx].emit = Emit::Emitted;
                } else {
                    self.st[idx].emit = Emit::None;
                }
            }
            BtfTypeData::FuncProto(params) => {
                self.emit_type(t.size_or_type, cont_id);
                for p in params {
                    self.emit_type(p.type_id, cont_id);
                }
            }
            _ => {}
        }
    }

    /// `__builtin_va_list` is the compiler's own; redefining it breaks builds.
    fn is_blacklisted(&self, t: &BtfType) -> bool {
        t.name_off != 0 && self.name_of(t.name_off) == "__builtin_va_list"
    }

    /// GCC's ARM SIMD `__PolyN_t` base types, which clang lacks.
    fn emit_missing_alias(&mut self, id: u32) {
        const ALIASES: [(&str, &str); 4] = [
            ("__Poly8_t", "unsigned char"),
            ("__Poly16_t", "unsigned short"),
            ("__Poly64_t", "unsigned long long"),
            ("__Poly128_t", "unsigned __int128"),
        ];
        let name = self.type_name(id);
        if let Some((_, base)) = ALIASES.iter().find(|(n, _)| *n == name) {
            let _ = write!(self.out, "typedef {base} {name};\n\n");
        }
    }

    fn emit_struct_fwd(&mut self, id: u32, t: &BtfType) {
        let kw = if t.kind() == BtfKind::Struct {
            "struct"
        } else {
            "union"
        };
        let name = self.type_name(id);
        let sep = if t.name_off != 0 { " " } else { "" };
        let _ = write!(self.out, "{kw}{sep}{name}");
    }

    fn emit_fwd_def(&mut self, id: u32, t: &BtfType) {
        let name = self.type_name(id);
        let kw = if t.kind_flag { "union" } else { "struct" };
        let _ = write!(self.out, "{kw} {name}");
    }

    fn emit_typedef_def(&mut self, id: u32, t: &BtfType, lvl: usize) {
        let name = self.ident_name(id);
        // Old GCC wrote __gnuc_va_list as a typedef of void.
        if t.size_or_type == 0 && name == "__gnuc_va_list" {
            self.out
                .push_str("typedef __builtin_va_list __gnuc_va_list");
            return;
        }
        self.out.push_str("typedef ");
        self.emit_type_decl(t.size_or_type, &name, lvl);
    }

    fn emit_enum_def(&mut self, id: u32, t: &BtfType, lvl: usize) {
        let name = self.type_name(id);
        let sep = if t.name_off != 0 { " " } else { "" };
        let _ = write!(self.out, "enum{sep}{name}");
        let signed = t.kind_flag;
        match &t.data {
            BtfTypeData::Enum(vals) if !vals.is_empty() => {
                self.out.push_str(" {");
                for v in vals {
                    let n = self.name_of(v.name_off);
                    let dups = self.ident_dups(n);
                    let val = if signed {
                        (v.val as i32).to_string()
                    } else {
                        v.val.to_string()
                    };
                    let _ = if dups > 1 {
                        write!(self.out, "\n{}{n}___{dups} = {val},", pfx(lvl + 1))
                    } else {
                        write!(self.out, "\n{}{n} = {val},", pfx(lvl + 1))
                    };
                }
            }
            BtfTypeData::Enum64(vals) if !vals.is_empty() => {
                self.out.push_str(" {");
                for v in vals {
                    let n = self.name_of(v.name_off);
                    let dups = self.ident_dups(n);
                    let val = if signed {
                        format!("{}LL", v.val as i64)
                    } else {
                        format!("{}ULL", v.val)
                    };
                    let _ = if dups > 1 {
                        write!(self.out, "\n{}{n}___{dups} = {val},", pfx(lvl + 1))
                    } else {
                        write!(self.out, "\n{}{n} = {val},", pfx(lvl + 1))
                    };
                }
            }
            _ => return,
        }
        let _ = write!(self.out, "\n{}}}", pfx(lvl));
        // Newer libbpf adds `__attribute__((mode(byte)))`/`mode(word)` to
        // 1- and 8-byte enums; the bpftool this is compared with (v7.1,
        // libbpf 1.1) does not, so neither does this.
    }

    fn emit_struct_def(&mut self, id: u32, t: &BtfType, lvl: usize) {
        let members: &[BtfMember] = t.members();
        let is_struct = t.kind() == BtfKind::Struct;
        let align = self.align_of(id, 0);
        let packed = is_struct && self.is_struct_packed(t);
        let kw = if is_struct { "struct" } else { "union" };
        let name = self.type_name(id);
        let sep = if t.name_off != 0 { " " } else { "" };
        let _ = write!(self.out, "{kw}{sep}{name} {{");
        let mut off: i64 = 0;
        let mut prev_bitfield = false;
        for m in members {
            let fname = self.name_of(m.name_off);
            let m_sz = i64::from(m.bitfield_size);
            let m_off = i64::from(m.bits_offset);
            let m_align = if packed {
                1
            } else {
                self.align_of(m.type_id, 0)
            };
            let in_bitfield = prev_bitfield && m_sz != 0;
            self.emit_bit_padding(off, m_off, m_align, in_bitfield, lvl + 1);
            let _ = write!(self.out, "\n{}", pfx(lvl + 1));
            self.emit_type_decl(m.type_id, fname, lvl + 1);
            if m_sz != 0 {
                let _ = write!(self.out, ": {m_sz}");
                off = m_off + m_sz;
                prev_bitfield = true;
            } else {
                let sz = self.btf.resolve_size(m.type_id).map_or(0, i64::from);
                off = m_off + sz * 8;
                prev_bitfield = false;
            }
            self.out.push(';');
        }
        if is_struct {
            self.emit_bit_padding(off, i64::from(t.size_or_type) * 8, align, false, lvl + 1);
        }
        if !members.is_empty() || t.size_or_type != 0 {
            let _ = write!(self.out, "\n{}}}", pfx(lvl));
        } else {
            self.out.push('}');
        }
        if packed {
            self.out.push_str(" __attribute__((packed))");
        }
    }

    /// A struct whose fields are not all at their natural alignment, or
    /// whose size is not a multiple of it, was declared packed.
    fn is_struct_packed(&self, t: &BtfType) -> bool {
        let mut max_align = 1;
        for m in t.members() {
            let align = self.align_of(m.type_id, 0);
            if align > 0 && m.bitfield_size == 0 && i64::from(m.bits_offset) % (8 * align) != 0 {
                return true;
            }
            max_align = max_align.max(align);
        }
        i64::from(t.size_or_type) % max_align != 0
    }

    /// libbpf's `btf__align_of`; 0 for types without an alignment.
    fn align_of(&self, id: u32, depth: usize) -> i64 {
        if depth > MAX_DEPTH {
            return 0;
        }
        let Some(t) = self.t(id) else {
            return 0;
        };
        let ptr = i64::from(self.ptr_sz);
        match &t.data {
            BtfTypeData::Int { .. }
            | BtfTypeData::Enum(_)
            | BtfTypeData::Enum64(_)
            | BtfTypeData::Float => ptr.min(i64::from(t.size_or_type)),
            BtfTypeData::Ptr => ptr,
            BtfTypeData::Typedef
            | BtfTypeData::Volatile
            | BtfTypeData::Const
            | BtfTypeData::Restrict
            | BtfTypeData::TypeTag => self.align_of(t.size_or_type, depth + 1),
            BtfTypeData::Array(a) => self.align_of(a.elem_type, depth + 1),
            BtfTypeData::Struct(members) | BtfTypeData::Union(members) => {
                let mut max_align = 1;
                for m in members {
                    let align = self.align_of(m.type_id, depth + 1);
                    if align <= 0 {
                        return 0;
                    }
                    max_align = max_align.max(align);
                    // A field off its natural alignment: the struct is packed.
                    if m.bitfield_size == 0 && i64::from(m.bits_offset) % (8 * align) != 0 {
                        return 1;
                    }
                }
                if i64::from(t.size_or_type) % max_align != 0 {
                    return 1;
                }
                max_align
            }
            _ => 0,
        }
    }

    /// Explicit padding for a gap between fields (`long: 64;`, `int: 0;`),
    /// using the widest type that lands on a natural boundary.
    fn emit_bit_padding(
        &mut self,
        mut cur: i64,
        next: i64,
        next_align: i64,
        in_bitfield: bool,
        lvl: usize,
    ) {
        if cur >= next {
            return;
        }
        let pads: [(&str, i64); 4] = [
            ("long", i64::from(self.ptr_sz) * 8),
            ("int", 32),
            ("short", 16),
            ("char", 8),
        ];
        let mut new_off = 0;
        let (mut pad_type, mut pad_bits) = pads[pads.len() - 1];
        for &(name, bits) in &pads {
            pad_type = name;
            pad_bits = bits;
            new_off = roundup(cur, bits);
            if new_off <= next {
                break;
            }
        }
        if new_off > cur && new_off <= next {
            if in_bitfield
                || (new_off == next && roundup(cur, next_align * 8) != new_off)
                || (new_off != next && next - new_off <= new_off - cur)
            {
                let n = if in_bitfield { new_off - cur } else { 0 };
                let _ = write!(self.out, "\n{}{pad_type}: {n};", pfx(lvl));
            }
            cur = new_off;
        }
        while cur != next {
            let bits = (next - cur).min(pad_bits);
            if bits == pad_bits {
                let _ = write!(self.out, "\n{}{pad_type}: {pad_bits};", pfx(lvl));
                cur += bits;
                continue;
            }
            // The remainder: the smallest type that holds it.
            let mut advanced = false;
            for &(name, nbits) in pads.iter().rev() {
                if nbits < bits {
                    continue;
                }
                pad_type = name;
                pad_bits = nbits;
                let _ = write!(self.out, "\n{}{pad_type}: {bits};", pfx(lvl));
                cur += bits;
                advanced = true;
                break;
            }
            if !advanced {
                break;
            }
        }
    }

    // ---- declarations ----

    /// A declaration of `fname` with type `id` in C syntax.
    fn emit_type_decl(&mut self, mut id: u32, fname: &str, lvl: usize) {
        if self.depth > MAX_DEPTH {
            return;
        }
        self.depth += 1;
        let mut stack = Vec::new();
        loop {
            stack.push(id);
            if id == 0 {
                break;
            }
            let Some(t) = self.t(id) else {
                break;
            };
            match &t.data {
                BtfTypeData::Ptr
                | BtfTypeData::Volatile
                | BtfTypeData::Const
                | BtfTypeData::Restrict
                | BtfTypeData::FuncProto(_)
                | BtfTypeData::TypeTag => id = t.size_or_type,
                BtfTypeData::Array(a) => id = a.elem_type,
                _ => break,
            }
            if stack.len() > MAX_DEPTH {
                break;
            }
        }
        self.emit_type_chain(&mut stack, fname, lvl);
        self.depth -= 1;
    }

    /// Qualifiers that apply to the type on top of the stack (`const int`).
    fn emit_mods(&mut self, stack: &mut Vec<u32>) {
        while let Some(&id) = stack.last() {
            let kw = match self.t(id).map(BtfType::kind) {
                Some(BtfKind::Volatile) => "volatile ",
                Some(BtfKind::Const) => "const ",
                Some(BtfKind::Restrict) => "restrict ",
                _ => return,
            };
            self.out.push_str(kw);
            stack.pop();
        }
    }

    fn drop_mods(&self, stack: &mut Vec<u32>) {
        while let Some(&id) = stack.last() {
            match self.t(id) {
                Some(t) if t.kind().is_modifier() => {
                    stack.pop();
                }
                _ => return,
            }
        }
    }

    fn emit_name(&mut self, name: &str, last_was_ptr: bool) {
        if !name.is_empty() && !last_was_ptr {
            self.out.push(' ');
        }
        self.out.push_str(name);
    }

    fn emit_type_chain(&mut self, stack: &mut Vec<u32>, fname: &str, lvl: usize) {
        // `int ***p`, not `int * * *p`; a lone pointer before a function
        // prototype or array is written `(*name)`.
        let mut last_was_ptr = true;
        while let Some(id) = stack.pop() {
            if id == 0 {
                self.emit_mods(stack);
                self.out.push_str("void");
                last_was_ptr = false;
                continue;
            }
            let Some(t) = self.t(id) else {
                return;
            };
            let kind = t.kind();
            match &t.data {
                BtfTypeData::Int { .. } | BtfTypeData::Float => {
                    self.emit_mods(stack);
                    self.out.push_str(self.name_of(t.name_off));
                }
                BtfTypeData::Struct(_) | BtfTypeData::Union(_) => {
                    self.emit_mods(stack);
                    if t.name_off == 0 {
                        self.emit_struct_def(id, t, lvl);
                    } else {
                        self.emit_struct_fwd(id, t);
                    }
                }
                BtfTypeData::Enum(_) | BtfTypeData::Enum64(_) => {
                    self.emit_mods(stack);
                    if t.name_off == 0 {
                        self.emit_enum_def(id, t, lvl);
                    } else {
                        let name = self.type_name(id);
                        let _ = write!(self.out, "enum {name}");
                    }
                }
                BtfTypeData::Fwd => {
                    self.emit_mods(stack);
                    self.emit_fwd_def(id, t);
                }
                BtfTypeData::Typedef => {
                    self.emit_mods(stack);
                    let name = self.ident_name(id);
                    self.out.push_str(&name);
                }
                BtfTypeData::Ptr => self.out.push_str(if last_was_ptr { "*" } else { " *" }),
                BtfTypeData::Volatile => self.out.push_str(" volatile"),
                BtfTypeData::Const => self.out.push_str(" const"),
                BtfTypeData::Restrict => self.out.push_str(" restrict"),
                BtfTypeData::TypeTag => {
                    self.emit_mods(stack);
                    let _ = write!(
                        self.out,
                        " __attribute__((btf_type_tag(\"{}\")))",
                        self.name_of(t.name_off)
                    );
                }
                BtfTypeData::Array(a) => {
                    // GCC repeats an element's qualifiers on the array; drop them.
                    self.drop_mods(stack);
                    let Some(&next) = stack.last() else {
                        self.emit_name(fname, last_was_ptr);
                        let _ = write!(self.out, "[{}]", a.nelems);
                        return;
                    };
                    let multidim = self.t(next).map(BtfType::kind) == Some(BtfKind::Array);
                    if !fname.is_empty() && !last_was_ptr {
                        self.out.push(' ');
                    }
                    if !multidim {
                        self.out.push('(');
                    }
                    self.emit_type_chain(stack, fname, lvl);
                    if !multidim {
                        self.out.push(')');
                    }
                    let _ = write!(self.out, "[{}]", a.nelems);
                    return;
                }
                BtfTypeData::FuncProto(params) => {
                    // GCC marks noreturn function pointers volatile; drop it.
                    self.drop_mods(stack);
                    if stack.is_empty() {
                        self.emit_name(fname, last_was_ptr);
                    } else {
                        self.out.push_str(" (");
                        self.emit_type_chain(stack, fname, lvl);
                        self.out.push(')');
                    }
                    self.out.push('(');
                    if params.is_empty() || (params.len() == 1 && params[0].type_id == 0) {
                        self.out.push_str("void)");
                        return;
                    }
                    for (i, p) in params.iter().enumerate() {
                        if i > 0 {
                            self.out.push_str(", ");
                        }
                        if i == params.len() - 1 && p.type_id == 0 {
                            self.out.push_str("...");
                            break;
                        }
                        let pname = self.name_of(p.name_off);
                        self.emit_type_decl(p.type_id, pname, lvl);
                    }
                    self.out.push(')');
                    return;
                }
                _ => return,
            }
            last_was_ptr = kind == BtfKind::Ptr;
        }
        self.emit_name(fname, last_was_ptr);
    }
}

/// The target's pointer size, guessed as libbpf guesses it: from the size of
/// `long`; 8 when the BTF has no such type.
fn pointer_size(btf: &Btf) -> u32 {
    const LONGS: [&str; 6] = [
        "long",
        "long int",
        "int long",
        "unsigned long",
        "long unsigned int",
        "unsigned long int",
    ];
    for (_, t) in btf.iter() {
        if let BtfTypeData::Int { .. } = t.data {
            if LONGS.contains(&btf.str_at(t.name_off)) && matches!(t.size_or_type, 4 | 8) {
                return t.size_or_type;
            }
        }
    }
    8
}
