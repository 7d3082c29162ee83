//! Loading a parsed object the way libbpf's `bpf_object__load` does: load its BTF,
//! resolve its externs (`.kconfig` values, kfuncs, `__ksym` variables), create its
//! maps (global data filled from the sections, `.rodata` and `.kconfig` frozen),
//! fill prog_array and map-in-map slots declared in `.maps`, substitute map ids into
//! each program's map references, and load every program through the dispatcher.
//!
//! Unlike libbpf, what cannot be resolved or created only fails the programs that
//! need it: an object whose one program calls a kfunc bpfvm lacks, or uses a map
//! type bpfvm cannot create, still loads its other programs when those are the
//! ones asked for (`only`, [`LoadOpts::programs`]). Loading the whole object
//! fails on the first such program, as libbpf fails.

use crate::error::{BpfError, Result};
use crate::kconfig::Kconfig;
use crate::kernel::{MapCreateAttr, MapFd, ProgFd, ProgLoadAttr, Runtime};
use bpfvm_isa::consts::{
    BPF_PSEUDO_BTF_ID, BPF_PSEUDO_KFUNC_CALL, BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE,
};
use bpfvm_isa::uapi::{
    BPF_LSM_CGROUP, BPF_LSM_MAC, BPF_MODIFY_RETURN, BPF_TRACE_FEXIT, BPF_TRACE_ITER,
    BPF_TRACE_RAW_TP,
};
use bpfvm_maps::MapType;
use bpfvm_obj::btf::{
    core::relocate as core_relocate, Btf, BtfKind, BtfTypeData, CoreApplied, CoreTarget,
};
use bpfvm_obj::{ExternKind, MapDef, MapKind, MapRelocKind, Object};
use std::sync::Arc;

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
    /// The kernel configuration `.kconfig` externs read; `None`: the
    /// runtime's ([`RuntimeConfig::kconfig`](crate::RuntimeConfig::kconfig)),
    /// by default the emulated kernel's ([`Kconfig::default`]).
    pub kconfig: Option<Arc<Kconfig>>,
    /// The BTF CO-RE relocations are resolved against (libbpf's
    /// `btf_custom_path`); `None`: the runtime's
    /// ([`RuntimeConfig::target_btf`](crate::RuntimeConfig::target_btf)), by
    /// default the host kernel's
    /// `/sys/kernel/btf/vmlinux` when it is readable, else the object's own
    /// BTF (every relocation then keeps its compiled value).
    pub target_btf: Option<TargetBtf>,
}

/// Where the CO-RE target types come from.
#[derive(Clone, Debug)]
pub enum TargetBtf {
    /// A raw BTF file (`/sys/kernel/btf/vmlinux`, or one saved from another
    /// kernel, as `bpftool btf dump file X format raw` reads).
    File(std::path::PathBuf),
    /// Types already parsed.
    Btf(Arc<Btf>),
    /// The object's own BTF.
    Object,
}

/// Where the host kernel publishes its BTF.
pub const HOST_VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// A parsed target with its name index.
type Target = (Arc<Btf>, Arc<CoreTarget>);

/// The host kernel's BTF, parsed once per process (`None`: not readable).
fn host_vmlinux() -> Option<Target> {
    static HOST: std::sync::OnceLock<Option<Target>> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let bytes = std::fs::read(HOST_VMLINUX).ok()?;
        let btf = Btf::parse(&bytes).ok()?;
        let index = CoreTarget::new(&btf);
        Some((Arc::new(btf), Arc::new(index)))
    })
    .clone()
}

/// libbpf's `adjust_ringbuf_sz`: a ring buffer's size rounded up to the
/// smallest power-of-2 number of pages above it (0 and sizes already right
/// stay; a size no such product reaches stays too, for the kernel to refuse).
fn ringbuf_size(size: u32) -> u32 {
    let page = bpfvm_maps::PAGE_SIZE;
    if size == 0 || (size.is_multiple_of(page) && (size / page).is_power_of_two()) {
        return size;
    }
    let mut pages: u32 = 1;
    while pages <= u32::MAX / page {
        if pages * page > size {
            return pages * page;
        }
        pages <<= 1;
    }
    size
}

/// The host kernel's BTF, when it is readable.
pub(crate) fn host_vmlinux_btf() -> Option<Arc<Btf>> {
    host_vmlinux().map(|(b, _)| b)
}

/// The target BTF of one load, or `None` when the object has nothing to
/// relocate against (no BTF of its own and no target).
fn core_target(obj: &Object, target_btf: Option<&TargetBtf>) -> Result<Option<Target>> {
    let own = || {
        obj.btf
            .as_ref()
            .map(|b| (Arc::new(b.clone()), Arc::new(CoreTarget::identity())))
    };
    Ok(match target_btf {
        None => host_vmlinux().or_else(own),
        Some(TargetBtf::Object) => own(),
        Some(TargetBtf::Btf(b)) => Some((b.clone(), Arc::new(CoreTarget::new(b)))),
        Some(TargetBtf::File(path)) => {
            let bytes = std::fs::read(path)
                .map_err(|e| BpfError::Invalid(format!("target btf {}: {e}", path.display())))?;
            let btf = Btf::parse(&bytes)
                .map_err(|e| BpfError::Invalid(format!("target btf {}: {e}", path.display())))?;
            let index = CoreTarget::new(&btf);
            Some((Arc::new(btf), Arc::new(index)))
        }
    })
}

/// The target kernel BTF's ids of the kfuncs program `p` calls, by extern
/// index, with that BTF: libbpf links kfunc calls against the kernel's BTF,
/// so a program's instructions (and so its tag) carry that kernel's ids.
/// `None` (bpfvm's own ids) when the target is not a kernel's BTF, or lacks
/// one of the kfuncs bpfvm provides to this program.
fn target_kfunc_ids(
    p: &bpfvm_obj::Program,
    externs: &[bpfvm_obj::Extern],
    resolved: &[Resolved],
    target: Option<&Target>,
) -> Option<(Vec<i32>, Arc<Btf>)> {
    let (btf, index) = target?;
    if index.is_identity() {
        return None;
    }
    let mut ids = vec![0i32; externs.len()];
    let mut any = false;
    for r in &p.extern_refs {
        if let Some(Resolved::Kfunc(_)) = resolved.get(r.ext_idx) {
            let id = index.func_id(btf, &externs.get(r.ext_idx)?.name)?;
            ids[r.ext_idx] = i32::try_from(id).ok()?;
            any = true;
        }
    }
    any.then(|| (ids, btf.clone()))
}

/// libbpf's `POISON_CALL_KFUNC_BASE`: a call of a `__weak` kfunc the kernel
/// lacks becomes a call of helper `BASE + extern index`, refused only if the
/// verifier reaches it.
pub const POISON_CALL_KFUNC_BASE: i32 = 2_002_000_000;

/// What became of one extern.
#[derive(Clone, Debug)]
enum Resolved {
    /// A kfunc: its BTF id in bpfvm's kernel BTF.
    Kfunc(i32),
    /// The value an `LD_IMM64` of its address gets (0: a weak extern not found).
    Addr(u64),
    /// A `.kconfig` value (written into the `.kconfig` map).
    Kconfig,
    /// A `__weak` kfunc not found: calls are poisoned.
    PoisonedKfunc,
    /// Not resolvable: the programs that use it are refused with this reason.
    Missing(String),
}

/// What loading an object created: its programs and maps, by the object's names.
#[derive(Debug, Clone)]
pub struct LoadedObject {
    /// The object's name.
    pub name: String,
    /// The loaded programs, by their names in the object.
    pub progs: Vec<(String, ProgFd)>,
    /// The created maps, by their names in the object.
    pub maps: Vec<(String, MapFd)>,
}

impl LoadedObject {
    /// The program named `name`.
    pub fn prog(&self, name: &str) -> Option<&ProgFd> {
        self.progs.iter().find(|(n, _)| n == name).map(|(_, p)| p)
    }
    /// The map named `name`.
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

/// The kptr fields of value type `type_id` (a struct, or the DATASEC of a
/// global data section): pointer members whose pointee is tagged
/// `kptr_untrusted` or `kptr`/`percpu_kptr` (they hold a reference), found in
/// nested structs and unions and in every element of arrays too, as the
/// kernel's `btf_parse_fields` finds them, with their byte offsets.
pub(crate) fn kptr_fields(btf: &Btf, type_id: u32) -> Vec<bpfvm_verifier::KptrField> {
    // More than the kernel's BTF_FIELDS_MAX (11): enough to stop a value
    // type of huge arrays from being walked element by element for nothing.
    const MAX_FIELDS: usize = 64;
    fn walk(btf: &Btf, id: u32, base: u32, depth: u32, out: &mut Vec<bpfvm_verifier::KptrField>) {
        if depth > 16 || out.len() >= MAX_FIELDS {
            return;
        }
        let Ok(id) = btf.skip_modifiers(id) else {
            return;
        };
        let Ok(t) = btf.type_by_id(id) else { return };
        match &t.data {
            BtfTypeData::Struct(ms) | BtfTypeData::Union(ms) => {
                for m in ms {
                    if m.bitfield_size == 0 {
                        walk(btf, m.type_id, base + m.bits_offset / 8, depth + 1, out);
                    }
                }
            }
            BtfTypeData::Datasec(vars) => {
                for v in vars {
                    let var = btf.type_by_id(v.type_id).ok();
                    if let Some(var) = var.filter(|t| t.kind() == BtfKind::Var) {
                        walk(btf, var.size_or_type, base + v.offset, depth + 1, out);
                    }
                }
            }
            BtfTypeData::Array(a) => {
                let Ok(elem) = btf.skip_modifiers(a.elem_type) else {
                    return;
                };
                let Ok(size) = btf.resolve_size(elem) else {
                    return;
                };
                let mut probe = Vec::new();
                walk(btf, elem, 0, depth + 1, &mut probe);
                if probe.is_empty() || size == 0 {
                    return;
                }
                for i in 0..a.nelems {
                    if out.len() >= MAX_FIELDS {
                        return;
                    }
                    let at = base + i * size;
                    out.extend(probe.iter().map(|f| bpfvm_verifier::KptrField {
                        off: at + f.off,
                        ..f.clone()
                    }));
                }
            }
            BtfTypeData::Ptr => {
                let Ok(tag) = btf.type_by_id(t.size_or_type) else {
                    return;
                };
                if tag.kind() != BtfKind::TypeTag {
                    return;
                }
                let referenced = match btf.str_at(tag.name_off) {
                    "kptr_untrusted" => false,
                    "kptr" | "percpu_kptr" => true,
                    _ => return,
                };
                let pointee = btf
                    .skip_modifiers(tag.size_or_type)
                    .map(|p| btf.name(p).to_string())
                    .unwrap_or_default();
                out.push(bpfvm_verifier::KptrField {
                    off: base,
                    referenced,
                    pointee,
                });
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(btf, type_id, 0, 0, &mut out);
    out.truncate(MAX_FIELDS);
    out
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
        let wanted = |p: &bpfvm_obj::Program| match (&opts.programs, only) {
            (_, Some(n)) => n == p.name,
            (Some(list), None) => list.contains(&p.name),
            (None, None) => p.autoload,
        };
        // Loading a chosen set of programs: what they do not use may fail.
        let partial = only.is_some() || opts.programs.is_some();

        let default_kconfig;
        let kconfig = match opts.kconfig.as_ref().or(self.k.kconfig.as_ref()) {
            Some(k) => k.as_ref(),
            None => {
                default_kconfig = Kconfig::default();
                &default_kconfig
            }
        };
        let (resolved, kconfig_data) = resolve_externs(obj, kconfig);

        let mut maps: Vec<(String, MapFd)> = Vec::with_capacity(obj.maps.len());
        // Index in `obj.maps` -> the error creating it (partial loads only).
        let mut failed: Vec<(usize, BpfError)> = Vec::new();
        for (i, def) in obj.maps.iter().enumerate() {
            let created = if def.kind == MapKind::Kconfig {
                let mut d = def.clone();
                d.initial_data = kconfig_data.clone();
                self.create_obj_map(&d, btf_id, opts.unprivileged)
            } else {
                self.create_obj_map(def, btf_id, opts.unprivileged)
            };
            match created {
                Ok(fd) => maps.push((def.name.clone(), fd)),
                // A map type bpfvm lacks fails only the programs using it; a
                // definition the kernel would refuse fails the load, as there.
                Err(e @ BpfError::Map(bpfvm_maps::MapError::Unimplemented { .. })) if partial => {
                    failed.push((i, e))
                }
                Err(e) => return Err(e),
            }
        }
        let map_fd = |idx: usize| -> Option<&MapFd> {
            let name = &obj.maps.get(idx)?.name;
            maps.iter().find(|(n, _)| n == name).map(|(_, m)| m)
        };

        // Kfunc calls carry the target kernel BTF's ids, as libbpf links them,
        // so the target is needed for them too.
        let calls_kfunc = |p: &bpfvm_obj::Program| {
            p.extern_refs
                .iter()
                .any(|r| matches!(resolved.get(r.ext_idx), Some(Resolved::Kfunc(_))))
        };
        let needs_core = obj.programs.iter().any(|p| {
            wanted(p) && (!p.core_relos.is_empty() || btf_typed_ctx(p).is_some() || calls_kfunc(p))
        });
        let target_btf = opts.target_btf.as_ref().or(self.k.target_btf.as_ref());
        let target = if needs_core {
            core_target(obj, target_btf)?
        } else {
            None
        };
        // The kernel's types for loads through map pointers: the target's,
        // read only if a program does such a load.
        let kernel_types: Arc<dyn bpfvm_verifier::KernelTypes> = match &target {
            Some((btf, _)) => Arc::new(TargetTypes(btf.clone(), Default::default())),
            None => Arc::new(LazyTypes {
                target: target_btf.cloned(),
                // The object's own types stand for the kernel's only when
                // asked for (an object rarely declares `struct bpf_array`).
                obj_btf: matches!(target_btf, Some(TargetBtf::Object))
                    .then(|| obj.btf.clone().map(Arc::new))
                    .flatten(),
                types: std::sync::OnceLock::new(),
            }),
        };
        let kernel_types = Some(kernel_types);

        let mut progs: Vec<(String, ProgFd)> = Vec::new();
        for p in &obj.programs {
            if !wanted(p) {
                continue;
            }
            if p.prog_type.as_u32() == 0 {
                return Err(BpfError::Invalid(format!(
                    "program '{}': section '{}' names no program type; give one with 'type'",
                    p.name, p.section
                )));
            }
            // A map this program uses that could not be created refuses it.
            for r in &p.map_relocs {
                if let Some(pos) = failed.iter().position(|(i, _)| *i == r.map_idx) {
                    let (_, e) = failed.swap_remove(pos);
                    return Err(e);
                }
            }
            let mut insns = p.insns.clone();
            let mut core_applied: Vec<CoreApplied> = Vec::new();
            if !p.core_relos.is_empty() {
                let (Some(local), Some((tbtf, index))) = (&obj.btf, &target) else {
                    return Err(BpfError::Invalid(format!(
                        "program '{}': CO-RE relocations without the object's BTF",
                        p.name
                    )));
                };
                core_applied =
                    core_relocate(&p.name, &mut insns, &p.core_relos, local, tbtf, index)
                        .map_err(|e| BpfError::Invalid(format!("failed to relocate: {e}")))?;
            }
            for r in &p.map_relocs {
                let fd = map_fd(r.map_idx).ok_or_else(|| {
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
                    MapRelocKind::Fd => BPF_PSEUDO_MAP_FD,
                    MapRelocKind::Value { .. } => BPF_PSEUDO_MAP_VALUE,
                };
                if let MapRelocKind::Value { offset } = r.kind {
                    if let Some(hi) = insns.get_mut(r.insn_idx + 1) {
                        hi.imm = offset as i32;
                    }
                }
            }
            let kfunc_ids = target_kfunc_ids(p, &obj.externs, &resolved, target.as_ref());
            for r in &p.extern_refs {
                let ext = &obj.externs[r.ext_idx];
                let bad = |reason: String| BpfError::Extern {
                    prog: p.name.clone(),
                    name: ext.name.clone(),
                    section: ext.section(),
                    reason,
                };
                let at = r.insn_idx;
                if at + 1 > insns.len() {
                    return Err(bad(format!("reference at insn {at} out of range")));
                }
                let is_call = insns[at].code == 0x85;
                match (&resolved[r.ext_idx], is_call) {
                    (Resolved::Missing(reason), _) => return Err(bad(reason.clone())),
                    (Resolved::Kfunc(id), true) => {
                        insns[at].src_reg = BPF_PSEUDO_KFUNC_CALL;
                        insns[at].imm = kfunc_ids.as_ref().map_or(*id, |(ids, _)| ids[r.ext_idx]);
                        insns[at].off = 0;
                    }
                    // `bpf_ksym_exists(kfunc)`: the kfunc's BTF id, as libbpf
                    // writes it (the second imm names vmlinux, fd 0).
                    (Resolved::Kfunc(id), false) if at + 1 < insns.len() => {
                        insns[at].src_reg = BPF_PSEUDO_BTF_ID;
                        insns[at].imm = kfunc_ids.as_ref().map_or(*id, |(ids, _)| ids[r.ext_idx]);
                        insns[at + 1].imm = 0;
                    }
                    (Resolved::PoisonedKfunc, true) => {
                        insns[at].src_reg = 0;
                        insns[at].off = 0;
                        insns[at].imm = POISON_CALL_KFUNC_BASE.saturating_add(r.ext_idx as i32);
                    }
                    (Resolved::Kconfig, false) => {}
                    (res, false) if at + 1 < insns.len() => {
                        let addr = match res {
                            Resolved::Addr(a) => *a,
                            _ => 0,
                        };
                        insns[at].src_reg = 0;
                        insns[at].imm = addr as u32 as i32;
                        insns[at + 1].imm = (addr >> 32) as u32 as i32;
                    }
                    _ => return Err(bad(format!("insn {at} cannot refer to it"))),
                }
            }
            let attr = ProgLoadAttr {
                prog_type: p.prog_type,
                expected_attach_type: p.expected_attach_type.unwrap_or_default(),
                insns,
                license: obj.license.clone(),
                name: truncate_name(&p.name),
                btf_id,
                func_info: p.func_info.clone(),
                line_info: p.line_info.clone(),
                log_level: opts.log_level,
                unprivileged: opts.unprivileged,
                prog_flags: p.prog_flags | opts.prog_flags,
                btf_ctx: btf_ctx_for(p, target.as_ref())?,
                kernel_types: kernel_types.clone(),
                vmlinux_btf: kfunc_ids.map(|(_, btf)| btf),
                // Field offsets came from the target when it relocated or
                // typed the program; else they are the program's own.
                core_target: target
                    .as_ref()
                    .filter(|_| !p.core_relos.is_empty() || btf_typed_ctx(p).is_some())
                    .map(|(b, _)| b.clone()),
            };
            let fd = self
                .load_program(attr)
                .map_err(|e| poisoned_kfunc_error(e, obj))
                .map_err(|e| poisoned_core_error(e, &core_applied))?;
            progs.push((p.name.clone(), fd));
        }

        // Initial slots of prog arrays and maps of maps (`.values = {...}`).
        for def in &obj.maps {
            let Some((_, fd)) = maps.iter().find(|(n, _)| *n == def.name) else {
                continue;
            };
            for (slot, target) in &def.init_slots {
                let id = if def.is_map_in_map() {
                    maps.iter().find(|(n, _)| n == target).map(|(_, m)| m.id())
                } else {
                    progs.iter().find(|(n, _)| n == target).map(|(_, p)| p.id())
                };
                let Some(id) = id else {
                    // A map that failed in a partial load leaves its slot empty.
                    if partial && def.is_map_in_map() {
                        continue;
                    }
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

    fn create_obj_map(
        &self,
        def: &MapDef,
        btf_id: Option<u32>,
        unprivileged: bool,
    ) -> Result<MapFd> {
        let inner = match &def.inner {
            Some(i) => Some(self.create_obj_map(i, btf_id, unprivileged)?),
            None => None,
        };
        let has_btf = btf_id.is_some() && def.btf_value_type_id != 0;
        // libbpf sizes a perf_event_array left at 0 entries to the CPUs.
        let max_entries = if def.map_type == MapType::PerfEventArray as u32 && def.max_entries == 0
        {
            self.ncpus() as u32
        } else if def.map_type == MapType::Ringbuf as u32
            || def.map_type == MapType::UserRingbuf as u32
        {
            ringbuf_size(def.max_entries)
        } else {
            def.max_entries
        };
        let map_type = MapType::from_u32(def.map_type).ok_or_else(|| {
            BpfError::Invalid(format!(
                "map '{}': unknown map type {}",
                def.name, def.map_type
            ))
        })?;
        let attr = MapCreateAttr {
            map_type,
            key_size: def.key_size,
            value_size: def.value_size,
            max_entries,
            map_flags: def.map_flags,
            name: truncate_name(&def.name),
            numa_node: def.numa_node,
            inner_map_id: inner.as_ref().map(|m| m.id()),
            btf_id: if has_btf { btf_id } else { None },
            btf_key_type_id: if has_btf { def.btf_key_type_id } else { 0 },
            btf_value_type_id: if has_btf { def.btf_value_type_id } else { 0 },
            map_extra: def.map_extra,
            unprivileged,
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

/// libbpf's `bpf_object__resolve_externs`, per extern: the `.kconfig` map's
/// contents and what each extern resolved to.
fn resolve_externs(obj: &Object, kconfig: &Kconfig) -> (Vec<Resolved>, Vec<u8>) {
    let mut data = obj
        .maps
        .iter()
        .find(|m| m.kind == MapKind::Kconfig)
        .map(|m| vec![0u8; m.value_size as usize])
        .unwrap_or_default();
    let mut out = Vec::with_capacity(obj.externs.len());
    for e in &obj.externs {
        let r = match &e.kind {
            ExternKind::Kconfig { data_off, size, ty } => {
                let start = *data_off as usize;
                let end = start + *size as usize;
                match data.get_mut(start..end) {
                    None => Resolved::Missing("value outside the .kconfig map".into()),
                    Some(slot) if !Kconfig::recognized(&e.name) && !e.weak => {
                        slot.fill(0);
                        Resolved::Missing("unrecognized virtual extern".into())
                    }
                    Some(slot) => match kconfig.value(&e.name, *ty, slot) {
                        Ok(true) => Resolved::Kconfig,
                        Ok(false) if e.weak => Resolved::Kconfig,
                        Ok(false) => Resolved::Missing(
                            "not set in the kernel configuration (give a config with CONFIG_* values, or declare it __weak)".into(),
                        ),
                        Err(why) => Resolved::Missing(why),
                    },
                }
            }
            ExternKind::Kfunc => match crate::kfuncs::resolve(&e.name) {
                Ok(id) => Resolved::Kfunc(id),
                Err(_) if e.weak => Resolved::PoisonedKfunc,
                Err(why) => Resolved::Missing(why),
            },
            // bpfvm's kernel has no variables of its own to point at.
            ExternKind::KsymVar { .. } if e.weak => Resolved::Addr(0),
            ExternKind::KsymVar { .. } => {
                Resolved::Missing("bpfvm's kernel has no variable of that name".into())
            }
        };
        out.push(r);
    }
    (out, data)
}

/// libbpf's log fixup: a poisoned call the verifier reached names its kfunc.
fn poisoned_kfunc_error(e: BpfError, obj: &Object) -> BpfError {
    let BpfError::Verifier { name, mut source } = e else {
        return e;
    };
    let idx = source
        .error
        .reason()
        .strip_prefix("invalid func unknown#")
        .and_then(|n| n.parse::<i64>().ok())
        .and_then(|n| usize::try_from(n - i64::from(POISON_CALL_KFUNC_BASE)).ok());
    if let Some(ext) = idx.and_then(|i| obj.externs.get(i)) {
        let msg = format!("kfunc '{}' is referenced but wasn't resolved", ext.name);
        source.log.push_str(&msg);
        source.log.push('\n');
        source.error = bpfvm_verifier::VerifierError::Invalid { reason: msg };
    }
    BpfError::Verifier { name, source }
}

/// How libbpf finds a BTF-typed program's attach target in the kernel's BTF:
/// the name's prefix and the kind of type it names.
fn btf_typed_ctx(p: &bpfvm_obj::Program) -> Option<(&'static str, BtfKind)> {
    use bpfvm_obj::{AttachType as A, ProgType as P};
    match (p.prog_type, p.expected_attach_type?) {
        (P::Tracing, A::TraceRawTp) => Some(("btf_trace_", BtfKind::Typedef)),
        (P::Tracing, A::TraceFentry | A::TraceFexit | A::ModifyReturn) => Some(("", BtfKind::Func)),
        (P::Tracing, A::TraceIter) => Some(("bpf_iter_", BtfKind::Func)),
        (P::Lsm, A::LsmMac | A::LsmCgroup) => Some(("bpf_lsm_", BtfKind::Func)),
        _ => None,
    }
}

/// A tracing or LSM program's context (the kernel's `btf_ctx_access` over
/// its attach target's prototype), from the target BTF. `None` for other
/// programs, and for a tracing program without a target in its section name
/// (the verifier then refuses its context reads).
fn btf_ctx_for(
    p: &bpfvm_obj::Program,
    target: Option<&Target>,
) -> Result<Option<Arc<bpfvm_verifier::BtfCtx>>> {
    use bpfvm_verifier::{BtfCtx, BtfCtxArg};
    let Some((prefix, kind)) = btf_typed_ctx(p) else {
        return Ok(None);
    };
    let Some(name) = p.attach_to.as_deref().filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    let not_found = |reason: &str| BpfError::AttachTarget {
        prog: p.name.clone(),
        target: name.to_string(),
        reason: reason.to_string(),
    };
    let Some((btf, _)) = target else {
        return Err(not_found("no kernel BTF to look it up in"));
    };
    let full = format!("{prefix}{name}");
    let id = btf
        .find_by_name_kind(&full, kind)
        .ok_or_else(|| not_found("-ESRCH (not in the kernel's BTF)"))?;
    let attach = p.expected_attach_type.map_or(0, |a| a.as_u32());
    // The prototype: a FUNC's, or for a raw tracepoint the function pointer's
    // that btf_trace_<name> stands for, without its leading `void *__data`.
    let mut proto = btf.type_by_id(id).map(|t| t.size_or_type).unwrap_or(0);
    if kind == BtfKind::Typedef {
        proto = btf
            .skip_modifiers(proto)
            .ok()
            .and_then(|ptr| btf.type_by_id(ptr).ok())
            .filter(|t| t.kind() == BtfKind::Ptr)
            .map_or(0, |t| t.size_or_type);
    }
    let Some(pt) = btf
        .type_by_id(proto)
        .ok()
        .filter(|t| t.kind() == BtfKind::FuncProto)
    else {
        return Err(not_found("its BTF type is not a function prototype"));
    };
    let params: Vec<_> = match &pt.data {
        bpfvm_obj::btf::BtfTypeData::FuncProto(ps) => ps.clone(),
        _ => Vec::new(),
    };
    let skip = usize::from(kind == BtfKind::Typedef);
    // The kernel's messages name a raw tracepoint without its btf_trace_ prefix.
    let func = if kind == BtfKind::Typedef {
        name.to_string()
    } else {
        full.clone()
    };
    let hook = full
        .strip_prefix("bpf_lsm_")
        .filter(|_| attach == BPF_LSM_MAC);
    if let Some(h) = hook.filter(|h| LSM_DISABLED_HOOKS.contains(h)) {
        return Err(BpfError::Invalid(format!(
            "program '{}': attach_btf_id {id} points to disabled hook bpf_lsm_{h}",
            p.name
        )));
    }
    // Hooks that run while their objects are being set up or torn down give
    // untrusted arguments.
    let trusted = matches!(
        attach,
        BPF_TRACE_RAW_TP | BPF_TRACE_ITER | BPF_LSM_MAC | BPF_LSM_CGROUP
    ) && !hook.is_some_and(|h| LSM_UNTRUSTED_HOOKS.contains(&h));
    let mut args: Vec<BtfCtxArg> = params
        .iter()
        .skip(skip)
        .enumerate()
        .map(|(i, prm)| {
            let nullable = (attach == BPF_TRACE_ITER && i > 0)
                || btf.str_at(prm.name_off).ends_with("__nullable");
            ctx_arg(btf, &func, i, prm.type_id, nullable, trusted)
        })
        .collect();
    let nr = args.len();
    args.push(match attach {
        BPF_TRACE_FEXIT | BPF_LSM_MAC | BPF_LSM_CGROUP => {
            ctx_arg(btf, &func, nr, pt.size_or_type, false, false)
        }
        BPF_MODIFY_RETURN => {
            let rt = btf.skip_modifiers(pt.size_or_type).unwrap_or(0);
            match btf.type_by_id(rt).ok() {
                Some(t) if t.kind() == BtfKind::Int && t.size_or_type <= 8 => BtfCtxArg::Scalar,
                t => BtfCtxArg::Refused(format!(
                    "ret type {} not allowed for fmod_ret",
                    t.map_or("UNKNOWN", |t| t.kind().name())
                )),
            }
        }
        _ => BtfCtxArg::Refused(format!("func '{func}' doesn't have {}-th argument", nr + 1)),
    });
    // bpf_lsm_get_retval_range: void hooks return nothing, the bool hooks
    // 0 or 1, the others 0 or a negative errno.
    let ret_range = hook.and_then(|h| {
        if pt.size_or_type == 0 {
            None
        } else if LSM_BOOL_HOOKS.contains(&h) {
            Some((0, 1))
        } else {
            Some((-MAX_ERRNO, 0))
        }
    });
    Ok(Some(Arc::new(BtfCtx {
        func,
        args,
        types: Arc::new(TargetTypes(btf.clone(), Default::default())),
        ret_range,
    })))
}

/// `MAX_ERRNO`: an LSM hook returns 0 or `-errno` down to it.
const MAX_ERRNO: i32 = 4095;

/// LSM hooks BPF may not attach to (`bpf_lsm_disabled_hooks`, Linux 6.12).
const LSM_DISABLED_HOOKS: &[&str] = &[
    "vm_enough_memory",
    "inode_need_killpriv",
    "inode_getsecurity",
    "inode_listsecurity",
    "inode_copy_up_xattr",
    "getselfattr",
    "getprocattr",
    "setprocattr",
    "key_getsecurity",
    "audit_rule_match",
    "xfrm_decode_session",
    "ismaclabel",
];

/// LSM hooks whose arguments are not trusted (`untrusted_lsm_hooks`).
const LSM_UNTRUSTED_HOOKS: &[&str] = &[
    "bpf_map_free",
    "bpf_prog_free",
    "file_alloc_security",
    "file_free_security",
    "sk_alloc_security",
    "sk_free_security",
    "task_free",
];

/// LSM hooks that return a bool (`bool_lsm_hooks`).
const LSM_BOOL_HOOKS: &[&str] = &[
    "xfrm_state_pol_flow_match",
    "audit_rule_known",
    "inode_xattr_skipcap",
];

/// One argument slot (`btf_ctx_access` for argument `i` of type `type_id`).
fn ctx_arg(
    btf: &Btf,
    func: &str,
    i: usize,
    type_id: u32,
    nullable: bool,
    trusted: bool,
) -> bpfvm_verifier::BtfCtxArg {
    use bpfvm_verifier::BtfCtxArg;
    let id = btf.skip_modifiers(type_id).unwrap_or(0);
    let Some(t) = btf.type_by_id(id).ok() else {
        return BtfCtxArg::Refused(format!(
            "func '{func}' arg{i} '' has type UNKNOWN. Only pointer access is allowed"
        ));
    };
    match t.kind() {
        BtfKind::Int if t.size_or_type <= 8 => return BtfCtxArg::Scalar,
        BtfKind::Enum | BtfKind::Enum64 | BtfKind::Struct | BtfKind::Union => {
            return BtfCtxArg::Scalar
        }
        BtfKind::Ptr => {}
        k => {
            return BtfCtxArg::Refused(format!(
                "func '{func}' arg{i} '{}' has type {}. Only pointer access is allowed",
                btf.str_at(t.name_off),
                k.name()
            ))
        }
    }
    if t.size_or_type == 0 {
        return BtfCtxArg::ScalarPtr; // void *
    }
    let to = btf.skip_modifiers(t.size_or_type).unwrap_or(0);
    match btf.type_by_id(to).ok() {
        Some(pt) if pt.kind() == BtfKind::Int => BtfCtxArg::ScalarPtr,
        Some(pt) if matches!(pt.kind(), BtfKind::Struct | BtfKind::Union) => BtfCtxArg::Ptr {
            type_id: to,
            name: btf.str_at(pt.name_off).to_string(),
            nullable,
            trusted,
        },
        pt => BtfCtxArg::Refused(format!(
            "func '{func}' arg{i} type {} is not a struct",
            pt.map_or("UNKNOWN", |t| t.kind().name())
        )),
    }
}

/// The kernel's structs, for loads through BTF pointers; struct ids found
/// by name are kept (a lookup scans the whole BTF).
#[derive(Debug)]
struct TargetTypes(
    Arc<Btf>,
    std::sync::Mutex<std::collections::HashMap<String, Option<u32>>>,
);

impl bpfvm_verifier::KernelTypes for TargetTypes {
    fn name(&self, type_id: u32) -> String {
        self.0.name(type_id).to_string()
    }

    fn struct_id(&self, name: &str) -> Option<u32> {
        let mut known = self.1.lock().unwrap_or_else(|e| e.into_inner());
        *known
            .entry(name.to_string())
            .or_insert_with(|| self.0.find_by_name_kind(name, BtfKind::Struct))
    }

    fn struct_access(
        &self,
        type_id: u32,
        off: u32,
        size: u32,
    ) -> std::result::Result<bpfvm_verifier::FieldRead, bpfvm_verifier::VerifierError> {
        struct_walk(&self.0, type_id, off, size)
    }

    fn member(&self, type_id: u32, name: &str) -> Option<(u32, u32)> {
        member_at(&self.0, type_id, name, 3)
    }
}

/// [`TargetTypes`] of a target read on first use: most programs never read a
/// kernel struct, and parsing a kernel's BTF takes milliseconds.
#[derive(Debug)]
struct LazyTypes {
    target: Option<TargetBtf>,
    obj_btf: Option<Arc<Btf>>,
    types: std::sync::OnceLock<Option<TargetTypes>>,
}

impl LazyTypes {
    fn get(&self) -> Option<&TargetTypes> {
        self.types
            .get_or_init(|| {
                let btf = match &self.target {
                    None => host_vmlinux().map(|(b, _)| b),
                    Some(TargetBtf::Object) => self.obj_btf.clone(),
                    Some(TargetBtf::Btf(b)) => Some(b.clone()),
                    // Unreadable: no kernel types (loads through map
                    // pointers are then refused, naming what is missing).
                    Some(TargetBtf::File(path)) => std::fs::read(path)
                        .ok()
                        .and_then(|b| Btf::parse(&b).ok())
                        .map(Arc::new),
                };
                btf.map(|b| TargetTypes(b, Default::default()))
            })
            .as_ref()
    }
}

impl bpfvm_verifier::KernelTypes for LazyTypes {
    fn name(&self, type_id: u32) -> String {
        self.get().map(|t| t.name(type_id)).unwrap_or_default()
    }

    fn struct_id(&self, name: &str) -> Option<u32> {
        self.get()?.struct_id(name)
    }

    fn member(&self, type_id: u32, name: &str) -> Option<(u32, u32)> {
        self.get()?.member(type_id, name)
    }

    fn struct_access(
        &self,
        type_id: u32,
        off: u32,
        size: u32,
    ) -> std::result::Result<bpfvm_verifier::FieldRead, bpfvm_verifier::VerifierError> {
        match self.get() {
            Some(t) => t.struct_access(type_id, off, size),
            None => Err(walk_invalid("no kernel BTF".to_string())),
        }
    }
}

/// What one step of [`struct_walk`] found (`enum bpf_struct_walk_result`).
enum Walk {
    Scalar,
    /// A pointer member to struct `type_id`, read whole.
    Ptr {
        type_id: u32,
        member: String,
    },
    /// The read starts exactly at a nested struct `type_id`: walk into it.
    Struct(u32),
}

/// Flags a walk collects (`PTR_UNTRUSTED` from a union, the pointer
/// member's `__user` / `__percpu` / `__rcu` tag).
#[derive(Default)]
struct WalkFlags {
    untrusted: bool,
    user: bool,
    percpu: bool,
    rcu: bool,
}

/// Offset and size of member `name` of struct `type_id`, or of its first
/// member's (`struct bpf_array` holds `struct bpf_map` there), `depth`
/// levels down at most.
fn member_at(btf: &Btf, type_id: u32, name: &str, depth: u32) -> Option<(u32, u32)> {
    let t = btf.type_by_id(btf.skip_modifiers(type_id).ok()?).ok()?;
    let members = t.members();
    for m in members {
        if m.bitfield_size == 0 && btf.str_at(m.name_off) == name {
            return Some((m.bits_offset / 8, btf.resolve_size(m.type_id).ok()?));
        }
    }
    let first = members.first()?;
    let ft = btf.skip_modifiers(first.type_id).ok()?;
    if depth == 0 || btf.type_by_id(ft).ok()?.kind() != BtfKind::Struct {
        return None;
    }
    let (off, size) = member_at(btf, ft, name, depth - 1)?;
    Some((first.bits_offset / 8 + off, size))
}

/// `btf_struct_access` over the kernel's types: walks `size` bytes at `off`
/// of struct `type_id` down to the member they read. A read must lie inside
/// one member (an int array may be read across its elements), read a pointer
/// member exactly and whole, and not fall in a hole; a union of more than one
/// member makes the pointers read through it untrusted.
fn struct_walk(
    btf: &Btf,
    type_id: u32,
    off: u32,
    size: u32,
) -> std::result::Result<bpfvm_verifier::FieldRead, bpfvm_verifier::VerifierError> {
    use bpfvm_verifier::FieldRead;
    let mut flags = WalkFlags::default();
    let mut id = type_id;
    let mut off = off;
    // Each nested struct the read starts at is one step (the kernel loops
    // the same way); the depth bound only stops malformed BTF.
    for _ in 0..64 {
        match walk_step(btf, id, off, size, &mut flags)? {
            Walk::Scalar => return Ok(FieldRead::Scalar),
            Walk::Ptr { type_id, member } => {
                let strukt = btf.name(id).to_string();
                return Ok(FieldRead::Ptr {
                    type_id,
                    rcu: safe_rcu(&strukt, &member),
                    rcu_tag: flags.rcu,
                    untrusted: flags.untrusted,
                    user: flags.user,
                    percpu: flags.percpu,
                });
            }
            Walk::Struct(next) => {
                id = next;
                off = 0;
            }
        }
    }
    Err(walk_invalid(format!("type [{type_id}] nests too deep")))
}

/// One `btf_struct_walk`: from struct `type_id` (after modifiers) to the
/// member `[off, off + size)` reads.
fn walk_step(
    btf: &Btf,
    type_id: u32,
    mut off: u32,
    size: u32,
    flags: &mut WalkFlags,
) -> std::result::Result<Walk, bpfvm_verifier::VerifierError> {
    use bpfvm_obj::btf::BtfTypeData;
    let mut id = btf.skip_modifiers(type_id).unwrap_or(0);
    // `goto again`: a read inside (not at the start of) a nested struct, or
    // in an element of a trailing flexible array of structs.
    for _ in 0..64 {
        let t = btf
            .type_by_id(id)
            .map_err(|e| walk_invalid(format!("bad kernel type [{id}]: {e}")))?;
        let tname = btf.str_at(t.name_off).to_string();
        if !matches!(t.kind(), BtfKind::Struct | BtfKind::Union) {
            return Err(walk_invalid(format!("Type '{tname}' is not a struct")));
        }
        let members = t.members();
        if t.kind() == BtfKind::Union && members.len() != 1 {
            flags.untrusted = true;
        }
        let beyond = || {
            walk_access(format!(
                "access beyond struct {tname} at off {off} size {size}"
            ))
        };
        if u64::from(off) + u64::from(size) > u64::from(t.size_or_type) {
            // Only a trailing flexible array may be read past the end.
            let Some(last) = members.last() else {
                return Err(beyond());
            };
            let at = btf.skip_modifiers(last.type_id).unwrap_or(0);
            let arr = match btf.type_by_id(at).map(|x| &x.data) {
                Ok(BtfTypeData::Array(a)) if a.nelems == 0 => *a,
                _ => return Err(beyond()),
            };
            let moff = last.bits_offset / 8;
            if off < moff {
                return Err(beyond());
            }
            let eid = btf.skip_modifiers(arr.elem_type).unwrap_or(0);
            let e = btf.type_by_id(eid).map_err(|_| beyond())?;
            match e.kind() {
                BtfKind::Int => return Ok(Walk::Scalar),
                BtfKind::Struct | BtfKind::Union if e.size_or_type > 0 => {
                    off = (off - moff) % e.size_or_type;
                    id = eid;
                    continue;
                }
                _ => return Err(beyond()),
            }
        }
        let mut descend = None;
        for m in members {
            let moff = m.bits_offset / 8;
            if u64::from(off) + u64::from(size) <= u64::from(moff) {
                break;
            }
            if m.bitfield_size > 0 {
                // A read covering the whole bitfield; a partial one reads
                // no member.
                let end_bit = m.bits_offset + m.bitfield_size;
                if off <= moff && end_bit.div_ceil(8) <= off + size {
                    return Ok(Walk::Scalar);
                }
                continue;
            }
            if off < moff {
                break;
            }
            let mname = btf.str_at(m.name_off).to_string();
            let Some(r) = resolve_size(btf, m.type_id) else {
                // The kernel says EFAULT; bpfvm's nearest kind is EINVAL.
                return Err(walk_invalid(format!("field {mname} doesn't have size")));
            };
            let mtrue_end = moff + r.size;
            if off >= mtrue_end {
                continue;
            }
            let (mut moff, mut msize, mut mid) = (moff, r.size, r.id);
            if r.is_array {
                if moff == mtrue_end {
                    continue;
                }
                msize /= r.nelems;
                moff += (off - moff) / msize * msize;
                mid = r.elem_id;
            }
            let mt = btf
                .type_by_id(btf.skip_modifiers(mid).unwrap_or(0))
                .map_err(|e| walk_invalid(format!("bad kernel type [{mid}]: {e}")))?;
            match mt.kind() {
                BtfKind::Struct | BtfKind::Union => {
                    if off == moff {
                        return Ok(Walk::Struct(mid));
                    }
                    descend = Some((btf.skip_modifiers(mid).unwrap_or(0), off - moff));
                    break;
                }
                BtfKind::Ptr => {
                    if msize != size || off != moff {
                        return Err(walk_access(format!(
                            "cannot access ptr member {mname} with moff {moff} in struct {tname} with off {off} size {size}"
                        )));
                    }
                    // Only a tag right after the pointer counts.
                    if let Ok(tag) = btf.type_by_id(mt.size_or_type) {
                        if tag.kind() == BtfKind::TypeTag {
                            match btf.str_at(tag.name_off) {
                                "user" => flags.user = true,
                                "percpu" => flags.percpu = true,
                                "rcu" => flags.rcu = true,
                                _ => {}
                            }
                        }
                    }
                    let to = btf.skip_modifiers(mt.size_or_type).unwrap_or(0);
                    if btf
                        .type_by_id(to)
                        .is_ok_and(|x| matches!(x.kind(), BtfKind::Struct | BtfKind::Union))
                    {
                        return Ok(Walk::Ptr {
                            type_id: to,
                            member: mname,
                        });
                    }
                }
                _ => {}
            }
            // An int (or an int array, as scratch space) read within the
            // member's true end.
            if off + size > mtrue_end && !flags.untrusted {
                return Err(walk_access(format!(
                    "access beyond the end of member {mname} (mend:{mtrue_end}) in struct {tname} with off {off} size {size}"
                )));
            }
            return Ok(Walk::Scalar);
        }
        match descend {
            Some((next, at)) => {
                id = next;
                off = at;
            }
            None => {
                return Err(walk_invalid(format!(
                    "struct {tname} doesn't have field at offset {off}"
                )))
            }
        }
    }
    Err(walk_invalid(format!("type [{type_id}] nests too deep")))
}

/// A read no member allows (EACCES).
fn walk_access(reason: String) -> bpfvm_verifier::VerifierError {
    bpfvm_verifier::VerifierError::Unsafe { reason }
}

/// A read of no field, or of a type that is not a struct (EINVAL).
fn walk_invalid(reason: String) -> bpfvm_verifier::VerifierError {
    bpfvm_verifier::VerifierError::Invalid { reason }
}

/// `__btf_resolve_size` of a member's type: its size (all elements of a
/// possibly multi-dimensional array), and for an array the element count and
/// the innermost element's type.
struct MemberSize {
    size: u32,
    /// The type after modifiers (the outer array for an array).
    id: u32,
    is_array: bool,
    nelems: u32,
    elem_id: u32,
}

fn resolve_size(btf: &Btf, type_id: u32) -> Option<MemberSize> {
    use bpfvm_obj::btf::BtfTypeData;
    let mut id = type_id;
    let mut nelems: u32 = 1;
    let mut array: Option<u32> = None;
    let mut elem_id = 0;
    for _ in 0..32 {
        let t = btf.type_by_id(id).ok()?;
        let size = match t.kind() {
            BtfKind::Int
            | BtfKind::Struct
            | BtfKind::Union
            | BtfKind::Enum
            | BtfKind::Enum64
            | BtfKind::Float => t.size_or_type,
            BtfKind::Ptr => 8,
            BtfKind::Typedef
            | BtfKind::Volatile
            | BtfKind::Const
            | BtfKind::Restrict
            | BtfKind::TypeTag => {
                id = t.size_or_type;
                continue;
            }
            BtfKind::Array => {
                let BtfTypeData::Array(a) = &t.data else {
                    return None;
                };
                array.get_or_insert(id);
                nelems = nelems.checked_mul(a.nelems)?;
                elem_id = a.elem_type;
                id = a.elem_type;
                continue;
            }
            _ => return None,
        };
        return Some(MemberSize {
            size: nelems.checked_mul(size)?,
            id: array.unwrap_or(id),
            is_array: array.is_some(),
            nelems,
            elem_id,
        });
    }
    None
}

/// The kernel's `BTF_TYPE_SAFE_RCU` members: pointers freed only after an
/// RCU grace period, so a read inside an RCU section may be used until it
/// ends.
fn safe_rcu(strukt: &str, member: &str) -> bool {
    matches!(
        (strukt, member),
        (
            "task_struct",
            "cpus_ptr" | "cgroups" | "real_parent" | "group_leader"
        ) | ("cgroup", "kn")
            | ("css_set", "dfl_cgrp")
    )
}

/// libbpf's log fixup for CO-RE: a poisoned instruction the verifier reached
/// names the relocation that could not be resolved.
fn poisoned_core_error(e: BpfError, applied: &[CoreApplied]) -> BpfError {
    let BpfError::Verifier { name, mut source } = e else {
        return e;
    };
    let poison = format!("invalid func unknown#{}", bpfvm_obj::btf::POISON_HELPER_ID);
    if source.error.reason() != poison {
        return BpfError::Verifier { name, source };
    }
    let poisoned: Vec<&CoreApplied> = applied.iter().filter(|a| a.poisoned).collect();
    let hit = match source.insn {
        Some(i) => poisoned
            .iter()
            .find(|a| a.insn_idx == i || a.insn_idx + 1 == i),
        None if poisoned.len() == 1 => poisoned.first(),
        None => None,
    };
    if let Some(a) = hit {
        let msg = format!(
            "insn {}: failed to resolve CO-RE relocation <{}> {}",
            a.insn_idx,
            a.kind.name(),
            a.what
        );
        source
            .log
            .push_str(&format!("{}: <invalid CO-RE relocation>\n", a.insn_idx));
        source.log.push_str(&msg);
        source.log.push('\n');
        source.error = bpfvm_verifier::VerifierError::Invalid { reason: msg };
    }
    BpfError::Verifier { name, source }
}

/// Kernel object names keep 15 characters.
fn truncate_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        .take(15)
        .collect()
}

#[cfg(test)]
mod struct_walk_oracle {
    use super::*;

    /// Reads of every size at offsets across the host's `task_struct`
    /// (members, their ends, holes, bitfields, nested structs, unions,
    /// arrays, pointers, the end of the struct), through a tp_btf argument:
    /// bpfvm's walk must give the host kernel's verdict and errno class on
    /// each. Needs root and /sys/kernel/btf/vmlinux (skips otherwise).
    #[test]
    fn struct_walk_matches_the_host_kernel() {
        use bpfvm_testsupport::sys::{prog_load, ProgLoad};
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: asking the host kernel needs root");
            return;
        }
        let Some((btf, _)) = host_vmlinux() else {
            eprintln!("skipped: no readable {HOST_VMLINUX}");
            return;
        };
        let task = btf
            .find_by_name_kind("task_struct", BtfKind::Struct)
            .expect("task_struct");
        let target = btf
            .find_by_name_kind("btf_trace_task_newtask", BtfKind::Typedef)
            .expect("btf_trace_task_newtask");
        let tsize = btf.type_by_id(task).unwrap().size_or_type;
        let mut differ = Vec::new();
        let mut n = 0;
        // Every offset of the first 512 bytes, then every 7th, and the end.
        let offs: Vec<u32> = (0..512)
            .chain((512..tsize + 16).step_by(7))
            .chain(tsize - 8..tsize + 8)
            .collect();
        for off in offs {
            for (size, code) in [(1u32, 0x71u8), (2, 0x69), (4, 0x61), (8, 0x79)] {
                let insns = [
                    bpfvm_isa::Insn::new(0x79, 1, 1, 0, 0),
                    bpfvm_isa::Insn::new(code, 0, 1, off as i16, 0),
                    bpfvm_isa::Insn::new(0xb7, 0, 0, 0, 0),
                    bpfvm_isa::Insn::new(0x95, 0, 0, 0, 0),
                ];
                let host = prog_load(&ProgLoad {
                    prog_type: bpfvm_isa::uapi::BPF_PROG_TYPE_TRACING,
                    expected_attach_type: bpfvm_isa::uapi::BPF_TRACE_RAW_TP,
                    attach_btf_id: target,
                    insns: &insns,
                    log_level: 1,
                    ..Default::default()
                });
                let ours = struct_walk(&btf, task, off, size);
                n += 1;
                let agree = match (&host, &ours) {
                    (Ok(_), Ok(_)) => true,
                    (Err(h), Err(o)) => h.errno == o.errno(),
                    _ => false,
                };
                if !agree {
                    differ.push(format!(
                        "off {off} size {size}: host {:?}, bpfvm {:?}",
                        host.as_ref()
                            .map(|_| ())
                            .map_err(|e| (e.errno, e.error_line())),
                        ours.as_ref()
                            .map(|_| ())
                            .map_err(|e| (e.errno(), e.reason().to_string()))
                    ));
                }
            }
        }
        eprintln!("{n} reads of task_struct, {} verdicts differ", differ.len());
        assert!(
            differ.is_empty(),
            "{}",
            differ[..differ.len().min(20)].join("\n")
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ring_buffer_sizes_round_up_as_libbpf_rounds_them() {
        for (given, made) in [
            (0, 0),
            (2, 4096),
            (8, 4096),
            (4096, 4096),
            (4097, 8192),
            (3 * 4096, 4 * 4096),
            (1 << 20, 1 << 20),
            (u32::MAX - 1, u32::MAX - 1),
        ] {
            assert_eq!(super::ringbuf_size(given), made, "{given}");
        }
    }
}
