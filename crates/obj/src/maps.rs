//! Map definitions, from the three places an object declares maps:
//! BTF-defined maps in `.maps`, legacy `struct bpf_map_def` records in
//! `maps`, and global data sections (`.data*`, `.rodata*`, `.bss*`), which
//! libbpf turns into single-entry array maps.
//!
//! Map types stay raw `u32` kernel numbers here; bpfvm-maps owns their
//! meaning. The few numbers this module must recognise come from
//! `bpfvm_isa::uapi`.

use crate::btf::{Btf, BtfKind, BtfTypeData};
use crate::error::ObjErrorKind;
use bpfvm_isa::uapi::{
    BPF_F_LINK, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS,
    BPF_MAP_TYPE_PROG_ARRAY,
};
pub use bpfvm_isa::uapi::{BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, BPF_OBJ_NAME_LEN};

/// Where a map comes from, in libbpf's terms (`enum libbpf_map_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapKind {
    /// Declared by the program: `.maps` or legacy `maps`.
    #[doc(alias = "LIBBPF_MAP_UNSPEC")]
    User,
    #[doc(alias = "LIBBPF_MAP_DATA")]
    Data,
    #[doc(alias = "LIBBPF_MAP_BSS")]
    Bss,
    #[doc(alias = "LIBBPF_MAP_RODATA")]
    Rodata,
    /// `.kconfig` externs' values.
    #[doc(alias = "LIBBPF_MAP_KCONFIG")]
    Kconfig,
    /// A `struct_ops` map: a kernel struct of function pointers the
    /// object's `struct_ops/` programs implement.
    StructOps,
}

/// `pinning` attribute of a BTF-defined map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MapPinning {
    #[default]
    #[doc(alias = "LIBBPF_PIN_NONE")]
    None,
    /// Pin at `<pin root>/<map name>` and reuse what is pinned there.
    #[doc(alias = "LIBBPF_PIN_BY_NAME")]
    ByName,
}

/// One map as the object declares it: everything `BPF_MAP_CREATE` needs,
/// plus the initial contents libbpf writes after creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDef {
    /// The map's name: the variable name, or libbpf's internal name for
    /// global data (`hello.bss`, `hello_wo.rodata`, `.data.foo`); at most
    /// 15 characters for global data, as the kernel stores it.
    pub name: String,
    /// The ELF section: `.maps`, `maps`, `.bss`, `.rodata.str1.1`, ...
    pub section: String,
    /// Offset of the definition in its section (0 for global data).
    pub section_offset: u64,
    pub kind: MapKind,
    /// `BPF_MAP_TYPE_*` number.
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub numa_node: u32,
    /// `map_extra` (bloom filter hashes, arena address).
    pub map_extra: u64,
    pub pinning: MapPinning,
    /// BTF id of the key type (0: none).
    pub btf_key_type_id: u32,
    /// BTF id of the value type; the DATASEC for global data (0: none).
    pub btf_value_type_id: u32,
    /// BTF id of the map's VAR in the `.maps` DATASEC, or of the DATASEC
    /// itself for global data (0: none).
    pub btf_var_id: u32,
    /// Inner map template of array_of_maps / hash_of_maps, named
    /// `OUTER.inner`.
    pub inner: Option<Box<MapDef>>,
    /// Initial slots from `.values = { [i] = &target }`: `(slot, target)`,
    /// where target is a program name (prog_array) or a map name
    /// (map-in-map), sorted by slot.
    pub init_slots: Vec<(u32, String)>,
    /// Initial value of a `.data*`/`.rodata*` map, from the section. Empty
    /// for `.bss` (a new array map is already zeroed, and a crafted header
    /// must not make us allocate its size) and for declared maps; see
    /// [`MapDef::initial_value`].
    pub initial_data: Vec<u8>,
}

impl MapDef {
    /// libbpf freezes `.rodata` (and `.kconfig`) maps after writing their
    /// initial value, so user space cannot change them either.
    pub fn freeze_after_load(&self) -> bool {
        matches!(self.kind, MapKind::Rodata | MapKind::Kconfig)
    }

    /// The value a global data map starts with: `initial_data`, or
    /// `value_size` zero bytes for `.bss`. Empty for declared maps.
    pub fn initial_value(&self) -> std::borrow::Cow<'_, [u8]> {
        match self.kind {
            MapKind::Bss => std::borrow::Cow::Owned(vec![0; self.value_size as usize]),
            _ => std::borrow::Cow::Borrowed(&self.initial_data),
        }
    }

    /// Whether this map's values are other maps.
    pub fn is_map_in_map(&self) -> bool {
        is_map_in_map(self.map_type)
    }

    fn empty(name: String, section: &str, kind: MapKind) -> MapDef {
        MapDef {
            name,
            section: section.to_string(),
            section_offset: 0,
            kind,
            map_type: 0,
            key_size: 0,
            value_size: 0,
            max_entries: 0,
            map_flags: 0,
            numa_node: 0,
            map_extra: 0,
            pinning: MapPinning::None,
            btf_key_type_id: 0,
            btf_value_type_id: 0,
            btf_var_id: 0,
            inner: None,
            init_slots: Vec::new(),
            initial_data: Vec::new(),
        }
    }
}

fn is_map_in_map(map_type: u32) -> bool {
    map_type == BPF_MAP_TYPE_ARRAY_OF_MAPS || map_type == BPF_MAP_TYPE_HASH_OF_MAPS
}

pub(crate) fn is_prog_array(map_type: u32) -> bool {
    map_type == BPF_MAP_TYPE_PROG_ARRAY
}

/// libbpf's object name: the file's base name up to its first '.'
/// (`hello.bpf.o` -> `hello`).
pub fn object_name(file: &str) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    base.split('.').next().unwrap_or(base).to_string()
}

/// libbpf's name for a global data map: up to 8 characters of the object
/// name, then the section name (`.rodata` -> `hello.rodata`), all cut to
/// 15 characters; section names with a second dot (`.data.foo`,
/// `.rodata.str1.1`) go without the prefix. Characters the kernel rejects
/// in names become '_'. Checked against `bpftool map list` for several
/// object name lengths.
pub fn internal_map_name(obj_name: &str, section: &str) -> String {
    let max = BPF_OBJ_NAME_LEN - 1;
    // The section part reserves at least 7 characters (".rodata").
    let sfx_len = section.len().max(7);
    let pfx_len = if section.get(1..).is_some_and(|s| s.contains('.')) {
        0
    } else {
        max.saturating_sub(sfx_len).min(obj_name.len())
    };
    let name: String = obj_name
        .chars()
        .take(pfx_len)
        .chain(section.chars())
        .take(max)
        .collect();
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A global data section: which kind of map it makes, if any.
pub(crate) fn data_section_kind(name: &str, is_nobits: bool) -> Option<MapKind> {
    let has = |base: &str| {
        name == base
            || name
                .strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('.'))
    };
    if is_nobits {
        has(".bss").then_some(MapKind::Bss)
    } else if has(".data") {
        Some(MapKind::Data)
    } else if has(".rodata") {
        Some(MapKind::Rodata)
    } else {
        None
    }
}

/// The map libbpf creates for a global data section.
pub(crate) fn internal_map(
    obj_name: &str,
    section: &str,
    kind: MapKind,
    data: &[u8],
    size: u64,
    btf: Option<&Btf>,
) -> Result<MapDef, ObjErrorKind> {
    let value_size = u32::try_from(size).map_err(|_| ObjErrorKind::BadMapDef {
        map: section.to_string(),
        reason: format!("section size {size} does not fit a map value"),
    })?;
    let mut m = MapDef::empty(internal_map_name(obj_name, section), section, kind);
    m.map_type = BPF_MAP_TYPE_ARRAY;
    m.key_size = 4;
    m.value_size = value_size;
    m.max_entries = 1;
    // The host's libbpf (1.1) marks every global data map mmapable.
    m.map_flags = BPF_F_MMAPABLE;
    if matches!(kind, MapKind::Rodata | MapKind::Kconfig) {
        m.map_flags |= BPF_F_RDONLY_PROG;
    }
    if let Some(id) = btf.and_then(|b| b.find_by_name_kind(section, BtfKind::Datasec)) {
        m.btf_value_type_id = id;
        m.btf_var_id = id;
    }
    if kind != MapKind::Bss {
        m.initial_data = data.to_vec();
    }
    Ok(m)
}

/// Legacy `struct bpf_map_def` records: one per symbol in the `maps`
/// section, all of the same size (section size / number of maps), the
/// fields past the five libbpf knows must be zero.
pub(crate) fn legacy_maps(
    section: &str,
    data: &[u8],
    symbols: &[(String, u64)],
) -> Result<Vec<MapDef>, ObjErrorKind> {
    let bad = |reason: String| ObjErrorKind::BadLegacyMaps {
        section: section.to_string(),
        reason,
    };
    if symbols.is_empty() {
        return Ok(Vec::new());
    }
    let n = symbols.len();
    if data.is_empty() || !data.len().is_multiple_of(n) {
        return Err(bad(format!(
            "cannot tell the map definition size: {n} maps in {} bytes",
            data.len()
        )));
    }
    let def_size = data.len() / n;
    if def_size < 4 {
        return Err(bad(format!("map definition size {def_size} is too small")));
    }
    let mut maps = Vec::with_capacity(n);
    for (name, offset) in symbols {
        let start = usize::try_from(*offset)
            .ok()
            .filter(|&o| o.checked_add(def_size).is_some_and(|e| e <= data.len()))
            .ok_or_else(|| {
                bad(format!(
                    "map '{name}' at offset {offset} runs past the section end"
                ))
            })?;
        let rec = &data[start..start + def_size];
        let field = |i: usize| {
            rec.get(i * 4..i * 4 + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(0)
        };
        if rec.len() > 20 && rec[20..].iter().any(|&b| b != 0) {
            return Err(bad(format!(
                "map '{name}' has unrecognised, non-zero options past struct bpf_map_def"
            )));
        }
        let mut m = MapDef::empty(name.clone(), section, MapKind::User);
        m.section_offset = *offset;
        m.map_type = field(0);
        m.key_size = field(1);
        m.value_size = field(2);
        m.max_entries = field(3);
        m.map_flags = field(4);
        maps.push(m);
    }
    Ok(maps)
}

/// A map definition struct decoded from BTF (libbpf's `btf_map_def`).
struct BtfMapFields {
    map_type: u32,
    key_size: Option<u32>,
    key_type_id: u32,
    value_size: Option<u32>,
    value_type_id: u32,
    max_entries: u32,
    map_flags: u32,
    numa_node: u32,
    map_extra: u64,
    pinning: MapPinning,
    inner: Option<Box<BtfMapFields>>,
    /// Byte offset of the `values` member in the definition.
    values_offset: Option<u32>,
}

/// A BTF-defined map plus where its `values` start, for `.rel.maps`.
pub(crate) struct BtfMap {
    pub def: MapDef,
    pub var_size: u64,
    pub values_offset: Option<u32>,
}

/// The maps of the `.maps` DATASEC, in section offset order.
pub(crate) fn btf_maps(btf: &Btf, section_size: u64) -> Result<Vec<BtfMap>, ObjErrorKind> {
    let Some(sec_id) = btf.find_by_name_kind(".maps", BtfKind::Datasec) else {
        return Err(ObjErrorKind::BadMapDef {
            map: ".maps".into(),
            reason: "no DATASEC '.maps' in BTF".into(),
        });
    };
    let mut vars = match btf.type_by_id(sec_id).map(|t| &t.data) {
        Ok(BtfTypeData::Datasec(v)) => v.clone(),
        _ => Vec::new(),
    };
    vars.sort_by_key(|v| v.offset);
    let mut out = Vec::with_capacity(vars.len());
    for (i, vi) in vars.iter().enumerate() {
        let var = btf
            .type_by_id(vi.type_id)
            .map_err(|e| ObjErrorKind::BadMapDef {
                map: format!(".maps #{i}"),
                reason: e.to_string(),
            })?;
        let name = btf.str_at(var.name_off).to_string();
        let bad = |reason: String| ObjErrorKind::BadMapDef {
            map: if name.is_empty() {
                format!(".maps #{i}")
            } else {
                name.clone()
            },
            reason,
        };
        if name.is_empty() {
            return Err(bad("empty name".into()));
        }
        if u64::from(vi.offset) + u64::from(vi.size) > section_size {
            return Err(bad(format!(
                "BTF says offset {} size {}, past the end of .maps ({section_size} bytes)",
                vi.offset, vi.size
            )));
        }
        let BtfTypeData::Var { linkage } = var.data else {
            return Err(bad(format!("unexpected kind {}", var.kind().name())));
        };
        if linkage != crate::btf::BTF_LINKAGE_GLOBAL {
            return Err(bad(format!("unsupported map linkage {linkage}")));
        }
        let def_id = btf
            .skip_modifiers(var.size_or_type)
            .map_err(|e| bad(e.to_string()))?;
        let def = btf.type_by_id(def_id).map_err(|e| bad(e.to_string()))?;
        if def.kind() != BtfKind::Struct {
            return Err(bad(format!("unexpected def kind {}", def.kind().name())));
        }
        if def.size_or_type > vi.size {
            return Err(bad("invalid def size".into()));
        }
        let f = parse_def(btf, &name, def_id, false).map_err(&bad)?;
        let mut m = fields_to_def(&name, &f);
        m.section_offset = u64::from(vi.offset);
        m.btf_var_id = vi.type_id;
        if let Some(inner) = &f.inner {
            let mut im = fields_to_def(&format!("{name}.inner"), inner);
            im.btf_var_id = vi.type_id;
            m.inner = Some(Box::new(im));
        }
        out.push(BtfMap {
            def: m,
            var_size: u64::from(vi.size),
            values_offset: f.values_offset,
        });
    }
    Ok(out)
}

fn fields_to_def(name: &str, f: &BtfMapFields) -> MapDef {
    let mut m = MapDef::empty(name.to_string(), ".maps", MapKind::User);
    m.map_type = f.map_type;
    m.key_size = f.key_size.unwrap_or(0);
    m.value_size = f.value_size.unwrap_or(0);
    m.max_entries = f.max_entries;
    m.map_flags = f.map_flags;
    m.numa_node = f.numa_node;
    m.map_extra = f.map_extra;
    m.pinning = f.pinning;
    m.btf_key_type_id = f.key_type_id;
    m.btf_value_type_id = f.value_type_id;
    m
}

/// `__uint(name, N)` is `int (*name)[N]`: a pointer to an array whose
/// element count is the value.
fn field_int(btf: &Btf, member: &str, type_id: u32) -> Result<u32, String> {
    let id = btf.skip_modifiers(type_id).map_err(|e| e.to_string())?;
    let t = btf.type_by_id(id).map_err(|e| e.to_string())?;
    if t.kind() != BtfKind::Ptr {
        return Err(format!(
            "attr '{member}': expected PTR, got {}",
            t.kind().name()
        ));
    }
    let arr = btf
        .type_by_id(t.size_or_type)
        .map_err(|e| format!("attr '{member}': {e}"))?;
    match &arr.data {
        BtfTypeData::Array(a) => Ok(a.nelems),
        _ => Err(format!(
            "attr '{member}': expected ARRAY, got {}",
            arr.kind().name()
        )),
    }
}

/// `__ulong(name, N)` is an enum whose only value is N (or the `__uint`
/// pointer form).
fn field_long(btf: &Btf, member: &str, type_id: u32) -> Result<u64, String> {
    let id = btf.skip_modifiers(type_id).map_err(|e| e.to_string())?;
    let t = btf.type_by_id(id).map_err(|e| e.to_string())?;
    match &t.data {
        BtfTypeData::Ptr => field_int(btf, member, type_id).map(u64::from),
        BtfTypeData::Enum(v) if v.len() == 1 => Ok(u64::from(v[0].val)),
        BtfTypeData::Enum64(v) if v.len() == 1 => Ok(v[0].val),
        _ => Err(format!(
            "attr '{member}': expected PTR or single-value ENUM, got {}",
            t.kind().name()
        )),
    }
}

/// `__type(key, T)` is `T *key`: the pointee is the type, its size the size.
fn field_type(btf: &Btf, member: &str, type_id: u32) -> Result<(u32, u32), String> {
    let t = btf.type_by_id(type_id).map_err(|e| e.to_string())?;
    if t.kind() != BtfKind::Ptr {
        return Err(format!("{member} spec is not PTR: {}", t.kind().name()));
    }
    let size = btf.resolve_size(t.size_or_type).map_err(|e| {
        format!(
            "cannot determine {member} size for type [{}]: {e}",
            t.size_or_type
        )
    })?;
    Ok((t.size_or_type, size))
}

fn set_size(slot: &mut Option<u32>, what: &str, size: u32) -> Result<(), String> {
    match *slot {
        Some(old) if old != 0 && old != size => {
            Err(format!("conflicting {what} size {old} != {size}"))
        }
        _ => {
            *slot = Some(size);
            Ok(())
        }
    }
}

fn parse_def(
    btf: &Btf,
    map_name: &str,
    def_id: u32,
    is_inner: bool,
) -> Result<BtfMapFields, String> {
    let def = btf.type_by_id(def_id).map_err(|e| e.to_string())?;
    let members = def.members();
    let mut f = BtfMapFields {
        map_type: 0,
        key_size: None,
        key_type_id: 0,
        value_size: None,
        value_type_id: 0,
        max_entries: 0,
        map_flags: 0,
        numa_node: 0,
        map_extra: 0,
        pinning: MapPinning::None,
        inner: None,
        values_offset: None,
    };
    for (i, m) in members.iter().enumerate() {
        let name = btf.str_at(m.name_off);
        match name {
            "" => return Err(format!("invalid field #{i}: no name")),
            "type" => f.map_type = field_int(btf, name, m.type_id)?,
            "max_entries" => f.max_entries = field_int(btf, name, m.type_id)?,
            "map_flags" => f.map_flags = field_int(btf, name, m.type_id)?,
            "numa_node" => f.numa_node = field_int(btf, name, m.type_id)?,
            "map_extra" => f.map_extra = field_long(btf, name, m.type_id)?,
            "key_size" => {
                let sz = field_int(btf, name, m.type_id)?;
                set_size(&mut f.key_size, "key", sz)?;
            }
            "value_size" => {
                let sz = field_int(btf, name, m.type_id)?;
                set_size(&mut f.value_size, "value", sz)?;
            }
            "key" => {
                let (id, sz) = field_type(btf, name, m.type_id)?;
                set_size(&mut f.key_size, "key", sz)?;
                f.key_type_id = id;
            }
            "value" => {
                let (id, sz) = field_type(btf, name, m.type_id)?;
                set_size(&mut f.value_size, "value", sz)?;
                f.value_type_id = id;
            }
            "values" => {
                let mim = is_map_in_map(f.map_type);
                let prog_array = is_prog_array(f.map_type);
                if is_inner {
                    return Err("multi-level inner maps not supported".into());
                }
                if i != members.len() - 1 {
                    return Err("'values' member should be last".into());
                }
                if !mim && !prog_array {
                    return Err("'values' needs a map-in-map or prog-array map type".into());
                }
                set_size(&mut f.value_size, "value", 4)?;
                let desc = if mim {
                    "map-in-map inner"
                } else {
                    "prog-array value"
                };
                let arr = btf.type_by_id(m.type_id).map_err(|e| e.to_string())?;
                let elem = match &arr.data {
                    BtfTypeData::Array(a) if a.nelems == 0 => a.elem_type,
                    _ => return Err(format!("{desc} spec is not a zero-sized array")),
                };
                let ptr_id = btf.skip_modifiers(elem).map_err(|e| e.to_string())?;
                let ptr = btf.type_by_id(ptr_id).map_err(|e| e.to_string())?;
                if ptr.kind() != BtfKind::Ptr {
                    return Err(format!(
                        "{desc} def is of unexpected kind {}",
                        ptr.kind().name()
                    ));
                }
                let target_id = btf
                    .skip_modifiers(ptr.size_or_type)
                    .map_err(|e| e.to_string())?;
                let kind = if target_id == 0 {
                    None
                } else {
                    Some(btf.type_by_id(target_id).map_err(|e| e.to_string())?.kind())
                };
                if prog_array {
                    if kind != Some(BtfKind::FuncProto) {
                        return Err(format!(
                            "prog-array value def is of unexpected kind {}",
                            kind.map_or("void", |k| k.name())
                        ));
                    }
                } else {
                    if kind != Some(BtfKind::Struct) {
                        return Err(format!(
                            "map-in-map inner def is of unexpected kind {}",
                            kind.map_or("void", |k| k.name())
                        ));
                    }
                    let inner_name = format!("{map_name}.inner");
                    let inner = parse_def(btf, &inner_name, target_id, true)
                        .map_err(|e| format!("inner map: {e}"))?;
                    f.inner = Some(Box::new(inner));
                }
                f.values_offset = Some(m.bits_offset / 8);
            }
            "pinning" => {
                if is_inner {
                    return Err("inner def can't be pinned".into());
                }
                f.pinning = match field_int(btf, name, m.type_id)? {
                    0 => MapPinning::None,
                    1 => MapPinning::ByName,
                    v => return Err(format!("invalid pinning value {v}")),
                };
            }
            other => return Err(format!("unknown attribute '{other}'")),
        }
    }
    Ok(f)
}

/// libbpf's `bpf_object__init_struct_ops_maps`: one `BPF_MAP_TYPE_STRUCT_OPS`
/// map per variable of a `.struct_ops` or `.struct_ops.link` DATASEC, its
/// value the variable's bytes (the local struct; the kernel's layout comes
/// from its own BTF when the map is created).
pub(crate) fn struct_ops_maps(
    btf: &Btf,
    section: &str,
    data: &[u8],
) -> Result<Vec<MapDef>, ObjErrorKind> {
    let bad = |reason: String| ObjErrorKind::BadMapDef {
        map: section.to_string(),
        reason,
    };
    let Some(ds) = btf.find_by_name_kind(section, BtfKind::Datasec) else {
        return Err(bad("no BTF DATASEC describes the section".into()));
    };
    let vars = match btf.type_by_id(ds).map(|t| &t.data) {
        Ok(BtfTypeData::Datasec(v)) => v.clone(),
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for v in vars {
        let name = btf.name(v.type_id).to_string();
        let var = btf
            .type_by_id(v.type_id)
            .map_err(|e| bad(format!("variable '{name}': {e}")))?;
        let start = v.offset as usize;
        let Some(bytes) = start
            .checked_add(v.size as usize)
            .and_then(|end| data.get(start..end))
        else {
            return Err(bad(format!("variable '{name}' lies outside the section")));
        };
        let mut m = MapDef::empty(name, section, MapKind::StructOps);
        m.section_offset = v.offset as u64;
        m.map_type = 26;
        m.key_size = 4;
        m.value_size = v.size;
        m.max_entries = 1;
        if section == ".struct_ops.link" {
            m.map_flags = BPF_F_LINK;
        }
        m.btf_value_type_id = var.size_or_type;
        m.btf_var_id = v.type_id;
        m.initial_data = bytes.to_vec();
        out.push(m);
    }
    Ok(out)
}
