//! bpfvm-obj — internal dependency of bpfvm.
//!
//! Reads BPF ELF objects (as clang and gcc-bpf emit them) the way libbpf's
//! `bpf_object__open` reads them. Parses only: no side effects.
//!
//! Data flow, in [`Object::parse`]:
//!
//! 1. `elf`: the ELF64 little-endian `EM_BPF` relocatable file is checked
//!    (headers, section ranges, names, symbol table) before anything indexes
//!    into it; every failure is an [`ObjError`] naming the file and the
//!    section or symbol.
//! 2. `license`, `version`, `.BTF` ([`btf::Btf`], DATASEC sizes fixed up as
//!    libbpf does) and `.BTF.ext` ([`btf::BtfExt`]).
//! 3. `maps`: maps from the legacy `maps` section, from the `.maps` DATASEC
//!    (BTF-defined, with inner map templates and initial `values` slots), and
//!    one array map per global data section (`.data*`, `.rodata*`, `.bss*`),
//!    named as libbpf names them.
//! 4. `link`: functions from the symbol table; each global function outside
//!    `.text` is a [`Program`] whose type comes from its section name
//!    (`progtype`); subprograms are appended, calls and map references
//!    relocated, func/line info renumbered per program.
//!
//! The runtime (bpfvm) takes an [`Object`], creates its maps, substitutes the
//! map indices named in each program's [`MapReloc`]s, and loads the programs.

pub mod btf;
mod elf;
pub mod error;
pub mod externs;
pub mod link;
pub mod maps;
pub mod progtype;

use std::path::Path;

pub use btf::{Btf, BtfExt, FuncInfo, LineInfo};
pub use error::{ObjError, ObjErrorKind};
pub use externs::{Extern, ExternKind, KcfgType};
pub use link::{ExternRef, FuncRange, MapReloc, MapRelocKind, Program, MAX_PROG_INSNS};
pub use maps::{internal_map_name, object_name, MapDef, MapKind, MapPinning};
pub use progtype::{
    section_def, AttachType, ProgType, SecDef, BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS,
};

use elf::Elf;
use maps::data_section_kind;

/// A parsed BPF object file.
#[derive(Debug, Clone)]
pub struct Object {
    /// libbpf's object name: the file's base name up to the first '.'.
    pub name: String,
    pub programs: Vec<Program>,
    /// Maps in libbpf's order: legacy `maps`, then `.maps` by offset, then
    /// global data by section index. `MapReloc::map_idx` indexes this.
    pub maps: Vec<MapDef>,
    /// `.BTF`, with DATASEC sizes and offsets fixed up; `None` if absent or
    /// unparsable (and not needed).
    pub btf: Option<Btf>,
    /// `.BTF.ext`; `None` if absent or unparsable (as libbpf, a warning).
    pub btf_ext: Option<BtfExt>,
    /// Extern symbols (`.kconfig`, `__ksym` variables, kfuncs), `.kconfig`
    /// ones first with their offsets in the `.kconfig` map.
    pub externs: Vec<Extern>,
    /// The `license` section up to its NUL (at most 63 bytes, as libbpf).
    pub license: String,
    /// The kernel's `license_is_gpl_compatible(license)`.
    pub gpl_compatible: bool,
    /// The `version` section, if any.
    pub kern_version: Option<u32>,
    /// What libbpf would have warned about (e.g. missing func info).
    pub warnings: Vec<String>,
}

/// The kernel's list of GPL-compatible licenses (`license_is_gpl_compatible`),
/// matched exactly.
pub fn license_is_gpl_compatible(license: &str) -> bool {
    matches!(
        license,
        "GPL"
            | "GPL v2"
            | "GPL and additional rights"
            | "Dual BSD/GPL"
            | "Dual MIT/GPL"
            | "Dual MPL/GPL"
    )
}

/// Bound on the instructions of all linked programs together.
const MAX_OBJ_INSNS: usize = 16 * MAX_PROG_INSNS;

/// libbpf keeps `char license[64]`.
const LICENSE_MAX: usize = 63;

impl Object {
    /// Reads and parses an object file; errors name `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Object, ObjError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|source| ObjError::new(&file, ObjErrorKind::Io { source }))?;
        Object::parse(&file, &bytes)
    }

    /// Parses an object from memory. `name` is the file name: it appears in
    /// errors and gives the object name (global data map prefix).
    pub fn parse(name: &str, bytes: &[u8]) -> Result<Object, ObjError> {
        parse_inner(name, bytes).map_err(|kind| ObjError::new(name, kind))
    }

    /// The bytes of section `section` of an ELF file (of any machine and
    /// type: a BPF object or a vmlinux image), as written; `Ok(None)` when
    /// the file has no such section. `file` names the file in errors.
    ///
    /// ```
    /// let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/obj/hello.o")).unwrap();
    /// let btf = bpfvm_obj::Object::section_data("hello.o", &bytes, ".BTF").unwrap();
    /// assert!(btf.is_some_and(|b| b.starts_with(&[0x9f, 0xeb])));
    /// ```
    pub fn section_data<'a>(
        file: &str,
        bytes: &'a [u8],
        section: &str,
    ) -> Result<Option<&'a [u8]>, ObjError> {
        use object::{Object as _, ObjectSection as _};
        let err = |kind| ObjError::new(file, kind);
        if !bytes.starts_with(b"\x7fELF") {
            return Err(err(ObjErrorKind::NotElf));
        }
        let elf = object::File::parse(bytes).map_err(|source| err(ObjErrorKind::Elf { source }))?;
        let Some(s) = elf.section_by_name(section) else {
            return Ok(None);
        };
        s.data().map(Some).map_err(|reason| {
            err(ObjErrorKind::BadSectionData {
                section: section.to_string(),
                reason,
            })
        })
    }

    /// The program with this (function) name.
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// The map with this name.
    pub fn map(&self, name: &str) -> Option<&MapDef> {
        self.maps.iter().find(|m| m.name == name)
    }

    /// Index of the map with this name in [`Object::maps`].
    pub fn map_index(&self, name: &str) -> Option<usize> {
        self.maps.iter().position(|m| m.name == name)
    }
}

fn parse_inner(name: &str, bytes: &[u8]) -> Result<Object, ObjErrorKind> {
    let elf = Elf::parse(bytes)?;
    let obj_name = object_name(name);
    let mut warnings = Vec::new();

    let mut license = String::new();
    let mut kern_version = None;
    for s in &elf.sections {
        match s.name.as_str() {
            "license" => {
                let d = elf.data(s);
                let end = d
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(d.len())
                    .min(LICENSE_MAX);
                license = String::from_utf8_lossy(&d[..end]).into_owned();
            }
            "version" => {
                let d = elf.data(s);
                let v: [u8; 4] = d
                    .try_into()
                    .map_err(|_| ObjErrorKind::BadVersionSection { size: s.size })?;
                kern_version = Some(u32::from_le_bytes(v));
            }
            _ => {}
        }
    }

    // BTF: libbpf ignores a broken .BTF unless something needs it.
    let maps_sec = elf.section_by_name(".maps").filter(|s| s.size > 0).cloned();
    let mut btf = match elf.section_by_name(".BTF") {
        Some(s) => match Btf::parse(elf.data(s)) {
            Ok(b) => Some(b),
            Err(source) if maps_sec.is_some() => return Err(ObjErrorKind::Btf { source }),
            Err(e) => {
                warnings.push(format!("error loading ELF section .BTF: {e}; ignored"));
                None
            }
        },
        None => None,
    };
    if let Some(b) = btf.as_mut() {
        fixup_datasecs(&elf, b)?;
    }
    let (externs, kconfig_size) = externs::collect(&elf, btf.as_mut())?;
    if let Some(b) = btf.as_mut() {
        hidden_funcs_static(&elf, b);
    }
    let btf_ext = match (elf.section_by_name(".BTF.ext"), btf.as_ref()) {
        (Some(s), Some(b)) => match BtfExt::parse(elf.data(s), b) {
            Ok(e) => Some(e),
            Err(e) => {
                warnings.push(format!("error loading ELF section .BTF.ext: {e}; ignored"));
                None
            }
        },
        _ => None,
    };

    // Maps.
    let mut maps_out: Vec<MapDef> = Vec::new();
    let mut index = link::MapIndex {
        by_def: Default::default(),
        by_data_sec: Default::default(),
        map_secs: Vec::new(),
        externs,
        kconfig_map: None,
    };
    if let Some(s) = elf.section_by_name("maps").filter(|s| s.size > 0) {
        let syms: Vec<(String, u64)> = elf
            .symbols
            .iter()
            .filter(|y| y.section() == Some(s.index) && y.sym_type != elf::STT_SECTION)
            .map(|y| (y.name.clone(), y.value))
            .collect();
        for m in maps::legacy_maps(&s.name, elf.data(s), &syms)? {
            index
                .by_def
                .insert((s.index, m.section_offset), maps_out.len());
            maps_out.push(m);
        }
        index.map_secs.push(s.index);
    }
    let mut values_info = Vec::new();
    if let Some(s) = &maps_sec {
        let b = btf.as_ref().ok_or(ObjErrorKind::MapsNeedBtf)?;
        for bm in maps::btf_maps(b, s.size)? {
            index
                .by_def
                .insert((s.index, bm.def.section_offset), maps_out.len());
            values_info.push((maps_out.len(), bm.var_size, bm.values_offset));
            maps_out.push(bm.def);
        }
        index.map_secs.push(s.index);
    }
    for s in &elf.sections {
        let nobits = s.sh_type == elf::SHT_NOBITS;
        if s.size == 0 || !(nobits || s.sh_type == elf::SHT_PROGBITS) || s.is_exec() {
            continue;
        }
        let Some(kind) = data_section_kind(&s.name, nobits) else {
            continue;
        };
        let m = maps::internal_map(&obj_name, &s.name, kind, elf.data(s), s.size, btf.as_ref())?;
        index.by_data_sec.insert(s.index, maps_out.len());
        maps_out.push(m);
    }
    // libbpf's `.kconfig` map: after global data, filled by the loader.
    if kconfig_size > 0 {
        let m = maps::internal_map(
            &obj_name,
            ".kconfig",
            MapKind::Kconfig,
            &vec![0; kconfig_size as usize],
            u64::from(kconfig_size),
            btf.as_ref(),
        )?;
        index.kconfig_map = Some(maps_out.len());
        maps_out.push(m);
    }
    // struct_ops maps (after .kconfig, as libbpf orders them): one per variable of `.struct_ops` / `.struct_ops.link`.
    for sec in [".struct_ops", ".struct_ops.link"] {
        let Some(s) = elf.section_by_name(sec).filter(|s| s.size > 0) else {
            continue;
        };
        let b = btf.as_ref().ok_or(ObjErrorKind::MapsNeedBtf)?;
        for m in maps::struct_ops_maps(b, sec, elf.data(s))? {
            maps_out.push(m);
        }
    }

    // Programs.
    let mut code = link::code_sections(&elf)?;
    let funcs = link::functions(&elf, &code)?;
    link::collect_relocs(&elf, &mut code, &funcs, &index)?;
    let mut programs: Vec<Program> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut total = 0usize;
    for (i, f) in funcs.list.iter().enumerate() {
        if code.is_text(f.sec) || !f.global {
            continue;
        }
        let p = link::link_program(
            &code,
            &funcs,
            &index.externs,
            i,
            btf_ext.as_ref(),
            &mut warnings,
        )?;
        if !seen.insert(p.name.clone()) {
            return Err(ObjErrorKind::DuplicateProgram {
                section: p.section,
                name: p.name,
            });
        }
        // Every program carries its own copy of its subprograms; bound the
        // sum so a crafted file cannot make us copy without end.
        total += p.insns.len();
        if total > MAX_OBJ_INSNS {
            return Err(ObjErrorKind::ProgramTooLarge {
                name: p.name,
                len: total,
                limit: MAX_OBJ_INSNS,
            });
        }
        programs.push(p);
    }

    // `.values = { ... }` initial slots, from .rel.maps.
    if let Some(s) = &maps_sec {
        map_slots(&elf, s, &mut maps_out, &values_info, &index, &funcs, &code)?;
    }

    let gpl_compatible = license_is_gpl_compatible(&license);
    Ok(Object {
        name: obj_name,
        programs,
        maps: maps_out,
        btf,
        btf_ext,
        externs: index.externs,
        license,
        gpl_compatible,
        kern_version,
        warnings,
    })
}

/// libbpf's BTF fixup for `__hidden` functions: a global function with
/// hidden visibility cannot be called from outside the object, so its BTF
/// `FUNC` gets static linkage and the kernel verifies it with its callers.
fn hidden_funcs_static(elf: &Elf<'_>, btf: &mut Btf) {
    const STV_HIDDEN: u8 = 2;
    let hidden: std::collections::HashSet<&str> = elf
        .symbols
        .iter()
        .filter(|s| {
            s.sym_type == elf::STT_FUNC && s.visibility == STV_HIDDEN && s.bind != elf::STB_LOCAL
        })
        .map(|s| s.name.as_str())
        .collect();
    if hidden.is_empty() {
        return;
    }
    let ids: Vec<u32> = btf
        .iter()
        .filter(|(_, t)| {
            t.kind() == btf::BtfKind::Func
                && t.func_linkage == 1
                && hidden.contains(btf.str_at(t.name_off))
        })
        .map(|(id, _)| id)
        .collect();
    for id in ids {
        btf.set_func_linkage(id, 0);
    }
}

/// libbpf's `btf_fixup_datasec`: a DATASEC of size 0 (gcc, old clang) gets
/// the ELF section's size and each global variable its symbol's offset.
fn fixup_datasecs(elf: &Elf<'_>, btf: &mut Btf) -> Result<(), ObjErrorKind> {
    let todo: Vec<String> = btf
        .iter()
        .filter(|(_, t)| t.kind() == btf::BtfKind::Datasec && t.size_or_type == 0)
        .map(|(_, t)| btf.str_at(t.name_off).to_string())
        .collect();
    for name in todo {
        // Extern DATASECs (.kconfig, .ksyms) have no ELF section.
        let Some(sec) = elf.section_by_name(&name) else {
            continue;
        };
        let Ok(size) = u32::try_from(sec.size) else {
            continue;
        };
        if size == 0 {
            continue;
        }
        let current: Vec<(String, u32)> = current_var_offsets(btf, &name);
        btf.fixup_datasec(&name, size, |var| {
            elf.symbols
                .iter()
                .filter(|y| y.section() == Some(sec.index) && y.name == var)
                .max_by_key(|y| y.bind != elf::STB_LOCAL)
                .and_then(|y| u32::try_from(y.value).ok())
                // Static variables keep what the compiler wrote.
                .or_else(|| current.iter().find(|(n, _)| n == var).map(|&(_, o)| o))
        })
        .map_err(|source| ObjErrorKind::BtfFixup {
            datasec: name.clone(),
            source,
        })?;
    }
    Ok(())
}

fn current_var_offsets(btf: &Btf, datasec: &str) -> Vec<(String, u32)> {
    let Some(id) = btf.find_by_name_kind(datasec, btf::BtfKind::Datasec) else {
        return Vec::new();
    };
    match btf.type_by_id(id).map(|t| &t.data) {
        Ok(btf::BtfTypeData::Datasec(vars)) => vars
            .iter()
            .map(|v| (btf.name(v.type_id).to_string(), v.offset))
            .collect(),
        _ => Vec::new(),
    }
}

/// Fills `init_slots` from the relocations against `.maps`: each one sits
/// in some map's `values` array and names a program (prog_array) or a map
/// (map-in-map).
fn map_slots(
    elf: &Elf<'_>,
    maps_sec: &elf::Section,
    maps_out: &mut [MapDef],
    values_info: &[(usize, u64, Option<u32>)],
    index: &link::MapIndex,
    funcs: &link::Funcs,
    code: &link::Code,
) -> Result<(), ObjErrorKind> {
    let Some(rel_sec) = elf
        .sections
        .iter()
        .find(|s| s.sh_type == elf::SHT_REL && s.info as usize == maps_sec.index)
    else {
        return Ok(());
    };
    for (i, rel) in elf.rels(rel_sec)?.into_iter().enumerate() {
        let bad = |reason: String| ObjErrorKind::BadMapSlot { index: i, reason };
        let sym = &elf.symbols[rel.sym];
        let Some(&(map_idx, var_size, values_off)) = values_info.iter().find(|(m, size, _)| {
            let start = maps_out[*m].section_offset;
            start <= rel.offset && rel.offset.checked_add(8).is_some_and(|e| e <= start + size)
        }) else {
            return Err(bad(format!(
                "no map at offset {} for '{}'",
                rel.offset, sym.name
            )));
        };
        let _ = var_size;
        let outer = &maps_out[map_idx];
        let outer_name = outer.name.clone();
        let target = if outer.is_map_in_map() {
            let is_map = sym.section() == Some(maps_sec.index)
                && index.by_def.contains_key(&(maps_sec.index, sym.value));
            if !is_map {
                return Err(bad(format!("'{}' isn't a BTF-defined map", sym.name)));
            }
            sym.name.clone()
        } else if maps::is_prog_array(outer.map_type) {
            let is_entry = sym.section().is_some_and(|sec| {
                funcs.at(sec, (sym.value / 8) as i64).is_some_and(|i| {
                    let f = &funcs.list[i];
                    f.global && f.name == sym.name && (f.start as u64) * 8 == sym.value
                }) && code.get(sec).is_some_and(|c| c.name != ".text")
            });
            if !is_entry {
                return Err(bad(format!("'{}' isn't an entry-point program", sym.name)));
            }
            sym.name.clone()
        } else {
            return Err(bad(format!(
                "map '{outer_name}' is neither a prog-array nor a map-in-map"
            )));
        };
        let values_off =
            values_off.ok_or_else(|| bad(format!("map '{outer_name}' has no 'values' member")))?;
        let rel_in_def = rel.offset - outer.section_offset;
        let Some(moff) = rel_in_def.checked_sub(u64::from(values_off)) else {
            return Err(bad(format!(
                "relocation before 'values' of map '{outer_name}'"
            )));
        };
        if moff % 8 != 0 {
            return Err(bad(format!(
                "misaligned slot in 'values' of map '{outer_name}'"
            )));
        }
        let slot = u32::try_from(moff / 8).map_err(|_| bad("slot out of range".into()))?;
        let slots = &mut maps_out[map_idx].init_slots;
        slots.retain(|(s, _)| *s != slot);
        slots.push((slot, target));
        slots.sort_by_key(|(s, _)| *s);
    }
    Ok(())
}
