//! Loading a parsed object the way libbpf's `bpf_object__load` does: load its BTF,
//! create its maps (global data filled from the sections, `.rodata` frozen), fill
//! prog_array and map-in-map slots declared in `.maps`, substitute map ids into each
//! program's map references, and load every program through the dispatcher.

use crate::error::{BpfError, Result};
use crate::kernel::{MapCreateAttr, MapFd, ProgFd, ProgLoadAttr, Runtime};
use bpfvm_obj::btf::{Btf, BtfKind};
use bpfvm_obj::{MapDef, MapRelocKind, Object};

/// Options of an object load.
#[derive(Clone, Debug, Default)]
pub struct LoadOpts {
    /// Verifier log level (0: none, 1: errors and statistics, 2: every instruction).
    pub log_level: u32,
    /// The kernel's rules for an unprivileged loader.
    pub unprivileged: bool,
    /// `prog_flags` added to every program's (`BPF_F_STRICT_ALIGNMENT`, ...).
    pub prog_flags: u32,
    /// The programs to load (libbpf's autoload set); `None`: every program
    /// whose section does not start with `?`.
    pub programs: Option<Vec<String>>,
}

/// What loading an object created: its programs and maps, by the object's names.
#[derive(Debug, Clone)]
pub struct LoadedObject {
    pub name: String,
    pub progs: Vec<(String, ProgFd)>,
    pub maps: Vec<(String, MapFd)>,
}

impl LoadedObject {
    pub fn prog(&self, name: &str) -> Option<&ProgFd> {
        self.progs.iter().find(|(n, _)| n == name).map(|(_, p)| p)
    }
    pub fn map(&self, name: &str) -> Option<&MapFd> {
        self.maps.iter().find(|(n, _)| n == name).map(|(_, m)| m)
    }
}

/// Offset of a `struct bpf_spin_lock` member in a value type, for BPF_F_LOCK.
pub(crate) fn spin_lock_offset(btf: &Btf, type_id: u32) -> Option<u32> {
    member_offset(btf, type_id, "bpf_spin_lock")
}

/// Where the value type's `struct bpf_timer` sits, if it has one.
pub(crate) fn timer_offset(btf: &Btf, type_id: u32) -> Option<u32> {
    member_offset(btf, type_id, "bpf_timer")
}

/// The byte offset of the first top-level member of struct `type_id` whose
/// type is the struct named `name`.
fn member_offset(btf: &Btf, type_id: u32, name: &str) -> Option<u32> {
    let id = btf.skip_modifiers(type_id).ok()?;
    let t = btf.type_by_id(id).ok()?;
    if t.kind() != BtfKind::Struct {
        return None;
    }
    t.members().iter().find_map(|m| {
        let mid = btf.skip_modifiers(m.type_id).ok()?;
        (btf.name(mid) == name).then_some(m.bits_offset / 8)
    })
}

impl Runtime {
    /// Loads every program of `obj` (libbpf's `bpf_object__load`). Only programs whose
    /// type is known from their section are loaded; `only` restricts to one program.
    pub fn load_object(&self, obj: &Object, only: Option<&str>) -> Result<LoadedObject> {
        self.load_object_with(obj, only, &LoadOpts::default())
    }

    /// [`Runtime::load_object`] with the verifier's log level and privilege.
    pub fn load_object_with(
        &self,
        obj: &Object,
        only: Option<&str>,
        opts: &LoadOpts,
    ) -> Result<LoadedObject> {
        let btf = match &obj.btf {
            Some(b) => Some(self.load_btf(b.clone(), b.to_bytes().len(), &obj.name)?),
            None => None,
        };
        let btf_id = btf.as_ref().map(|b| b.id);

        let mut maps: Vec<(String, MapFd)> = Vec::with_capacity(obj.maps.len());
        for def in &obj.maps {
            let fd = self.create_obj_map(def, btf_id)?;
            maps.push((def.name.clone(), fd));
        }

        let mut progs: Vec<(String, ProgFd)> = Vec::new();
        for p in &obj.programs {
            let wanted = match (&opts.programs, only) {
                (_, Some(n)) => n == p.name,
                (Some(list), None) => list.contains(&p.name),
                (None, None) => p.autoload,
            };
            if !wanted {
                continue;
            }
            if p.prog_type.as_u32() == 0 {
                return Err(BpfError::Invalid(format!(
                    "program '{}': section '{}' names no program type; give one with 'type'",
                    p.name, p.section
                )));
            }
            let mut insns = p.insns.clone();
            for r in &p.map_relocs {
                let (_, fd) = maps.get(r.map_idx).ok_or_else(|| {
                    BpfError::Invalid(format!(
                        "program '{}': map index {} out of range",
                        p.name, r.map_idx
                    ))
                })?;
                let i = insns.get_mut(r.insn_idx).ok_or_else(|| {
                    BpfError::Invalid(format!(
                        "program '{}': relocation at insn {} out of range",
                        p.name, r.insn_idx
                    ))
                })?;
                i.imm = fd.id() as i32;
                i.src_reg = match r.kind {
                    MapRelocKind::Fd => bpfvm_isa::consts::BPF_PSEUDO_MAP_FD,
                    MapRelocKind::Value { .. } => bpfvm_isa::consts::BPF_PSEUDO_MAP_VALUE,
                };
                if let MapRelocKind::Value { offset } = r.kind {
                    if let Some(hi) = insns.get_mut(r.insn_idx + 1) {
                        hi.imm = offset as i32;
                    }
                }
            }
            let attr = ProgLoadAttr {
                prog_type: p.prog_type.as_u32(),
                expected_attach_type: p.expected_attach_type.map_or(0, |a| a.as_u32()),
                insns,
                license: obj.license.clone(),
                name: truncate_name(&p.name),
                btf_id,
                func_info: p.func_info.clone(),
                line_info: p.line_info.clone(),
                log_level: opts.log_level,
                unprivileged: opts.unprivileged,
                prog_flags: p.prog_flags | opts.prog_flags,
            };
            let fd = self.load_program(attr)?;
            progs.push((p.name.clone(), fd));
        }

        // Initial slots of prog arrays and maps of maps (`.values = {...}`).
        for (def, (_, fd)) in obj.maps.iter().zip(&maps) {
            for (slot, target) in &def.init_slots {
                let id = if def.is_map_in_map() {
                    maps.iter().find(|(n, _)| n == target).map(|(_, m)| m.id())
                } else {
                    progs.iter().find(|(n, _)| n == target).map(|(_, p)| p.id())
                };
                let Some(id) = id else {
                    return Err(BpfError::Invalid(format!(
                        "map '{}': slot {slot} refers to '{target}', which was not loaded",
                        def.name
                    )));
                };
                self.map_update(fd.obj(), &slot.to_le_bytes(), &id.to_le_bytes(), 0)?;
            }
        }
        Ok(LoadedObject {
            name: obj.name.clone(),
            progs,
            maps,
        })
    }

    fn create_obj_map(&self, def: &MapDef, btf_id: Option<u32>) -> Result<MapFd> {
        let inner = match &def.inner {
            Some(i) => Some(self.create_obj_map(i, btf_id)?),
            None => None,
        };
        let has_btf = btf_id.is_some() && def.btf_value_type_id != 0;
        let attr = MapCreateAttr {
            map_type: def.map_type,
            key_size: def.key_size,
            value_size: def.value_size,
            max_entries: def.max_entries,
            map_flags: def.map_flags,
            name: truncate_name(&def.name),
            numa_node: def.numa_node,
            inner_map_id: inner.as_ref().map(|m| m.id()),
            btf_id: if has_btf { btf_id } else { None },
            btf_key_type_id: if has_btf { def.btf_key_type_id } else { 0 },
            btf_value_type_id: if has_btf { def.btf_value_type_id } else { 0 },
        };
        let fd = self.create_map(&attr)?;
        if !def.initial_data.is_empty() {
            fd.obj()
                .ops
                .update_user(&0u32.to_le_bytes(), &def.initial_data, 0)?;
        }
        if def.freeze_after_load() {
            fd.obj().ops.freeze()?;
        }
        Ok(fd)
    }
}

/// Kernel object names keep 15 characters.
fn truncate_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        .take(15)
        .collect()
}
