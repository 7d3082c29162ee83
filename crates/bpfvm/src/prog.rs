//! `BPF_PROG_LOAD`: check the instructions, resolve map references, compute the
//! tag, and prepare the program for the interpreter.
//!
//! Two instruction streams come out of a load: `xlated` keeps map references as
//! map ids (what `prog dump xlated` prints and the tag is computed on, with the
//! references zeroed as the kernel does), and the VM's copy has them replaced by the
//! addresses helpers and loads use at run time.

use crate::error::{BpfError, Result};
use crate::kernel::{JitUnavailable, MapObj, ProgFd, ProgLoadAttr, ProgObj, Runtime};
use bpfvm_isa::consts::{
    BPF_PSEUDO_BTF_ID, BPF_PSEUDO_KFUNC_CALL, BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_IDX,
    BPF_PSEUDO_MAP_IDX_VALUE, BPF_PSEUDO_MAP_VALUE,
};
use bpfvm_isa::uapi::{AttachType, ProgType};
use bpfvm_isa::{decode_program, Insn, Op};
use bpfvm_maps::MapType;
use bpfvm_vm::{LoadOptions, VmProgram};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::SystemTime;

use bpfvm_obj::btf::{BtfKind, BtfTypeData};
use bpfvm_obj::license_is_gpl_compatible;

/// Binds the kernel BTF ids in `a.insns` to bpfvm's kfuncs: a kfunc call's
/// id (in `a.vmlinux_btf`, else bpfvm's own kernel BTF) becomes the id of the
/// kfunc of that name in bpfvm's kernel BTF, and a `BPF_PSEUDO_BTF_ID` load
/// of a kfunc (`bpf_ksym_exists`) becomes the kfunc's address, as the kernel
/// gives the function's address. Ids bpfvm cannot bind refuse the program.
fn bind_kernel_btf_ids(a: &mut ProgLoadAttr) -> Result<()> {
    let vmlinux = a.vmlinux_btf.clone();
    let own = crate::kfuncs::kernel_btf();
    let btf: &bpfvm_obj::Btf = vmlinux.as_deref().unwrap_or(own);
    let name = a.name.clone();
    let invalid = |pc: usize, reason: String| BpfError::ProgInvalid {
        name: name.clone(),
        reason: format!("insn {pc}: {reason}"),
    };
    // The kfunc a kernel BTF id names, as bpfvm's id.
    let bind = |pc: usize, id: i32| -> Result<i32> {
        let t = u32::try_from(id)
            .ok()
            .and_then(|id| btf.type_by_id(id).ok())
            .filter(|t| t.kind() == BtfKind::Func)
            .ok_or_else(|| invalid(pc, format!("kernel btf_id {id} is not a function")))?;
        let fname = btf.str_at(t.name_off);
        crate::kfuncs::resolve(fname)
            .map_err(|why| invalid(pc, format!("kernel function {fname}: {why}")))
    };
    let mut pc = 0;
    while pc < a.insns.len() {
        let i = a.insns[pc];
        if i.code == 0x85 && i.src_reg == BPF_PSEUDO_KFUNC_CALL && i.off == 0 && vmlinux.is_some() {
            a.insns[pc].imm = bind(pc, i.imm)?;
        } else if i.code == 0x18 && pc + 1 < a.insns.len() {
            if i.src_reg == BPF_PSEUDO_BTF_ID && a.insns[pc + 1].imm == 0 {
                let is_func = u32::try_from(i.imm)
                    .ok()
                    .and_then(|id| btf.type_by_id(id).ok())
                    .is_some_and(|t| t.kind() == BtfKind::Func);
                // Kernel variables (typed ksyms) are not modelled: left for
                // the refusal below.
                if is_func {
                    let addr = crate::kfuncs::kfunc_addr(bind(pc, i.imm)?);
                    a.insns[pc].src_reg = 0;
                    set_imm64(&mut a.insns, pc, addr);
                }
            }
            pc += 1;
        }
        pc += 1;
    }
    Ok(())
}

/// Kernel object names: at most 15 characters of `[A-Za-z0-9_.]`.
fn check_obj_name(name: &str) -> Result<()> {
    if name.len() > 15
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    {
        return Err(BpfError::Invalid(format!(
            "object name '{name}' must be at most 15 characters of [A-Za-z0-9_.]"
        )));
    }
    Ok(())
}

pub(crate) fn load(rt: &Runtime, mut a: ProgLoadAttr) -> Result<ProgFd> {
    check_obj_name(&a.name)?;
    let name = a.name.clone();
    // The tag is taken over the instructions as submitted, before kernel BTF
    // ids are bound to bpfvm's kfuncs.
    let tag = crate::tag::prog_tag(&a.insns);
    bind_kernel_btf_ids(&mut a)?;
    let decoded = match decode_program(&a.insns) {
        Ok(d) => d,
        Err(e) => {
            // The kernel's verifier finds malformed instructions, with a log.
            verify(rt, &a, &name)?;
            return Err(BpfError::ProgLoad {
                name,
                source: e.into(),
            });
        }
    };

    // Resolve map references: ids -> maps (used_maps), and the VM's copy gets addresses.
    let mut used_maps: Vec<Arc<MapObj>> = Vec::new();
    let mut vm_insns = a.insns.clone();
    for (pc, d) in &decoded {
        // Kfunc calls run as helper calls (see kfuncs.rs); a poisoned call
        // (an unresolved __weak kfunc) only exists where the verifier will
        // prove it unreachable.
        if d.op == Op::CallKfunc {
            vm_insns[*pc].src_reg = 0;
            vm_insns[*pc].imm = (crate::kfuncs::KFUNC_HELPER_BASE as i32).wrapping_add(d.imm32());
            continue;
        }
        if d.op == Op::Call && d.imm32() >= crate::loader::POISON_CALL_KFUNC_BASE {
            vm_insns[*pc].imm = crate::kfuncs::POISON_HELPER as i32;
            continue;
        }
        if d.op != Op::LdImm64 || d.src == 0 {
            continue;
        }
        let pc = *pc;
        let map_id = a.insns[pc].imm as u32;
        let resolve = |used: &mut Vec<Arc<MapObj>>| -> Result<Arc<MapObj>> {
            let Ok(m) = rt.map_by_id(map_id) else {
                // The kernel's log says it; the verifier says it with a log
                // when a path reaches the reference.
                verify(rt, &a, &name)?;
                return Err(BpfError::ProgInvalid {
                    name: name.clone(),
                    reason: format!("insn {pc}: fd {map_id} is not pointing to valid bpf_map"),
                });
            };
            if !used.iter().any(|u| u.id == m.id) {
                used.push(m.clone());
            }
            Ok(m)
        };
        match d.src {
            BPF_PSEUDO_MAP_FD => {
                let m = resolve(&mut used_maps)?;
                set_imm64(&mut vm_insns, pc, m.prog_addr());
            }
            BPF_PSEUDO_MAP_VALUE => {
                let m = resolve(&mut used_maps)?;
                let off = a.insns[pc + 1].imm as u32;
                let addr = map_value_addr(&m, off).ok_or_else(|| BpfError::ProgInvalid {
                    name: name.clone(),
                    reason: format!(
                        "insn {pc}: direct value access on map '{}' (type {}) at offset {off} is not possible",
                        m.name,
                        m.map_type().name()
                    ),
                })?;
                set_imm64(&mut vm_insns, pc, addr);
            }
            BPF_PSEUDO_MAP_IDX | BPF_PSEUDO_MAP_IDX_VALUE => {
                return Err(BpfError::NotSupported {
                    what: format!("insn {pc}: fd_array map references (BPF_PSEUDO_MAP_IDX)"),
                })
            }
            // PSEUDO_FUNC is resolved by the VM; BTF ids need kernel BTF.
            4 => {}
            src => {
                return Err(BpfError::NotSupported {
                    what: format!("insn {pc}: LD_IMM64 with pseudo source {src} (kernel BTF ids)"),
                })
            }
        }
    }

    // A struct_ops program implements a member of a kernel struct_ops type
    // (its attach_btf_id); bpfvm's kernel has none, as a kernel without
    // that type refuses.
    if a.prog_type == ProgType::StructOps {
        return Err(BpfError::ProgInvalid {
            name,
            reason:
                "attach_btf_id 0 is not a supported struct (bpfvm's kernel has no struct_ops types)"
                    .into(),
        });
    }
    let verified = verify(rt, &a, &name)?;
    if verified.reads_map_structs {
        let types = a
            .kernel_types
            .clone()
            .or_else(|| a.btf_ctx.as_ref().map(|c| c.types.clone()));
        if let Some(types) = types {
            for m in &used_maps {
                fill_kernel_image(m, types.as_ref());
            }
        }
    }
    // Dead code is never checked (it may even write r10); as the kernel's
    // `sanitize_dead_code` does, it becomes `goto pc-1`.
    for (pc, d) in &decoded {
        if !verified.visited.get(*pc).copied().unwrap_or(true) {
            for slot in vm_insns.iter_mut().skip(*pc).take(d.slots()) {
                *slot = Insn::new(0x05, 0, 0, -1, 0);
            }
        }
    }
    let helpers =
        rt.k.helpers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
    let vm =
        VmProgram::new(&vm_insns, &LoadOptions::new(helpers)).map_err(|e| BpfError::ProgLoad {
            name: name.clone(),
            source: e,
        })?;
    let (lookups, keep) = map_lookups(&used_maps);
    // SAFETY: as with_map_lookups below: each lookup gives what helper 1 gives,
    // and the verifier proved every lookup key readable; safe_mem marks the
    // accesses it proved in bounds (as for the JIT's `proven` below).
    let vm = unsafe {
        vm.with_map_lookups(lookups, keep)
            .with_proven_mem(&verified.safe_mem)
    };
    // Checked native code until the verifier's proofs let it drop checks; a host
    // the JIT does not target runs the interpreter.
    // Native code checks only the accesses the verifier could not prove safe; a
    // verified program terminates, so it needs no fuel metering. A host the JIT
    // does not target runs the interpreter (checked).
    let (jit, jit_error) = if rt.jit_enabled() {
        // SAFETY: safe_mem comes from the verifier for exactly these instructions
        // and the memory the runtime gives runs (context, packet, stack, map values).
        let opts =
            unsafe { bpfvm_vm::JitOptions::proven(verified.safe_mem.clone()) }.metering(false);
        // A program the JIT cannot compile runs on the interpreter; the reason
        // stays with it for `prog show` and `prog dump jited`.
        match vm.jit(&with_map_lookups(opts, &used_maps)) {
            Ok(j) => (Some(j), None),
            Err(source) => (None, Some(JitUnavailable::Failed { source })),
        }
    } else {
        (None, Some(JitUnavailable::Disabled))
    };
    let btf = match a.btf_id {
        Some(id) => Some(rt.btf_by_id(id)?),
        None => None,
    };
    let gpl = license_is_gpl_compatible(&a.license);
    let task_layout = if crate::task::calls_task_helper(&a.insns) {
        a.core_target
            .as_deref()
            .and_then(crate::task::TaskLayout::from_btf)
            .or_else(|| {
                btf.as_ref()
                    .and_then(|b| crate::task::TaskLayout::from_btf(&b.btf))
            })
            .or_else(|| {
                crate::loader::host_vmlinux_btf()
                    .and_then(|b| crate::task::TaskLayout::from_btf(&b))
            })
    } else {
        None
    };
    let ctx_slots = crate::testrun::ctx_slots(
        a.prog_type,
        a.expected_attach_type,
        a.btf_ctx.as_deref(),
        a.core_target.as_deref(),
    );
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    rt.register_prog(|id| {
        Ok(ProgObj {
            id,
            name: a.name,
            prog_type: a.prog_type.as_u32(),
            expected_attach_type: a.expected_attach_type.as_u32(),
            tag,
            xlated: a.insns,
            vm: Arc::new(vm),
            jit,
            jit_error,
            used_maps,
            reads_map_structs: verified.reads_map_structs,
            gpl_compatible: gpl,
            loaded_at: SystemTime::now(),
            uid,
            btf,
            func_info: a.func_info,
            line_info: a.line_info,
            run_cnt: AtomicU64::new(0),
            run_time_ns: AtomicU64::new(0),
            verifier_log: verified.log,
            verifier_stats: verified.stats,
            task_layout,
            ctx_slots,
        })
    })
}

/// `bpf_map_lookup_elem` on the program's own maps without the helper trampoline:
/// arrays inline (the kernel's `array_map_gen_lookup`), hash maps as a direct
/// call of the map's lookup, per-CPU arrays inline for the run's CPU (the test
/// run passes it: `run_repeat_on_cpu`). All return exactly what helper 1
/// returns (`helpers.rs`: `m.ops.lookup(key, cpu)`); per-CPU hash maps keep the
/// helper. The options keep the maps alive with the code.
fn with_map_lookups(
    mut opts: bpfvm_vm::JitOptions,
    used_maps: &[Arc<MapObj>],
) -> bpfvm_vm::JitOptions {
    let (lookups, keep) = map_lookups(used_maps);
    for (map, how) in lookups {
        // SAFETY: see map_lookups.
        opts = unsafe { opts.map_lookup(map, how) };
    }
    for k in keep {
        opts = opts.keep_alive(k);
    }
    opts
}

/// What [`with_map_lookups`] compiles (and the interpreter does) for each map:
/// (map address, how) and the objects the lookups point into. Each map says
/// how through its ops' `gen_lookup` (the kernel's `map_gen_lookup`).
#[allow(clippy::type_complexity)]
fn map_lookups(
    used_maps: &[Arc<MapObj>],
) -> (
    Vec<(u64, bpfvm_vm::jit::MapLookup)>,
    Vec<Arc<dyn std::any::Any + Send + Sync>>,
) {
    use bpfvm_maps::GenLookup;
    use bpfvm_vm::jit::MapLookup;
    let mut lookups = Vec::new();
    let mut keep: Vec<Arc<dyn std::any::Any + Send + Sync>> = Vec::new();
    for m in used_maps {
        let how = match m.ops.gen_lookup() {
            None => continue,
            Some(GenLookup::Array {
                values,
                max_entries,
                stride,
            }) => MapLookup::Array {
                values: values as u64,
                max_entries,
                stride,
            },
            Some(GenLookup::PercpuArray {
                values,
                max_entries,
                stride,
                ncpus,
            }) => MapLookup::PercpuArray {
                values: values as u64,
                max_entries,
                stride,
                ncpus,
            },
            Some(GenLookup::Call { f, obj }) => MapLookup::Call { f, obj },
            Some(GenLookup::Lookup) => {
                let d = Arc::new(DirectLookup {
                    ops: m.ops.clone(),
                    key_size: m.attr().key_size as usize,
                });
                let how = MapLookup::Call {
                    f: direct_lookup,
                    obj: Arc::as_ptr(&d) as u64,
                };
                keep.push(d);
                how
            }
        };
        // `how` gives what the helper gives for this map (the map's promise);
        // the storage it points into never moves while the map lives, and
        // `keep` keeps the map alive with the code; the runtime loads only
        // verified programs, whose lookup keys the verifier proved readable.
        lookups.push((m.prog_addr(), how));
        keep.push(m.clone());
    }
    (lookups, keep)
}

/// What [`direct_lookup`] gets as its object: the map and its key size.
struct DirectLookup {
    ops: Arc<dyn bpfvm_maps::MapOps>,
    key_size: usize,
}

/// `bpf_map_lookup_elem` on a map whose lookup does not depend on the CPU
/// ([`bpfvm_maps::GenLookup::Lookup`]: hash, LRU, LPM trie), called straight
/// from JIT code: `obj` is a [`DirectLookup`], `key` points to `key_size`
/// readable bytes.
unsafe extern "sysv64" fn direct_lookup(obj: u64, key: u64) -> u64 {
    // SAFETY: the JIT options that embed `obj` keep it alive; the verifier
    // proved the key readable.
    let d = unsafe { &*(obj as *const DirectLookup) };
    let key = unsafe { std::slice::from_raw_parts(key as *const u8, d.key_size) };
    // Unwinding out of an extern "sysv64" fn aborts; a lookup that panics finds nothing.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.ops.lookup(key, 0)))
        .ok()
        .flatten()
        .map_or(0, |p| p as u64)
}

fn set_imm64(insns: &mut [Insn], pc: usize, v: u64) {
    insns[pc].src_reg = 0;
    insns[pc].imm = v as u32 as i32;
    insns[pc + 1].imm = (v >> 32) as u32 as i32;
}

/// Address of byte `off` of a map's value for a direct value access (as
/// `.data`/`.bss`/`.rodata` references use), as the map's ops give it.
fn map_value_addr(m: &MapObj, off: u32) -> Option<u64> {
    m.ops.direct_value_addr(off)
}

/// What the verifier knows of a map.
fn map_desc(m: &MapObj) -> bpfvm_verifier::MapDesc {
    fn from_attr(a: &bpfvm_maps::MapAttr, id: u32, frozen: bool) -> bpfvm_verifier::MapDesc {
        bpfvm_verifier::MapDesc {
            id,
            map_type: a.map_type as u32,
            key_size: a.key_size,
            value_size: a.value_size,
            max_entries: a.max_entries,
            map_flags: a.map_flags,
            frozen,
            name: a.name.clone(),
            inner: a
                .inner
                .as_ref()
                .map(|i| Box::new(from_attr(i.attr(), 0, i.is_frozen()))),
            frozen_data: None,
            has_btf: a.btf_value_type_id != 0,
            spin_lock_off: a.spin_lock_off,
            timer_off: None,
            kptrs: Vec::new(),
            created_unprivileged: false,
        }
    }
    let mut d = from_attr(m.attr(), m.id, m.ops.is_frozen());
    d.has_btf = m.btf.is_some() && m.btf_value_type_id != 0;
    d.created_unprivileged = m.created_unprivileged;
    d.timer_off = m
        .btf
        .as_ref()
        .and_then(|b| crate::loader::timer_offset(&b.btf, m.btf_value_type_id));
    d.kptrs = m.kptrs.clone();
    // Its program sees no kptr, lock or timer ("R1 has no valid kptr").
    if m.fields_overflow {
        d.spin_lock_off = None;
        d.timer_off = None;
    }
    // `.rodata`: the verifier folds constant loads from it, as the kernel does.
    if d.frozen
        && d.map_flags & bpfvm_verifier::BPF_F_RDONLY_PROG != 0
        && m.map_type() == MapType::Array
        && d.max_entries == 1
    {
        if let Some(p) = m.ops.lookup(&0u32.to_le_bytes(), 0) {
            // SAFETY: an array's value lives as long as the map, and a frozen
            // map cannot change under us.
            let v = unsafe { std::slice::from_raw_parts(p as *const u8, d.value_size as usize) };
            d.frozen_data = Some(v.into());
        }
    }
    d
}

/// Sizes of the kernel structs kfuncs hand out, as the program's BTF
/// declares them (its copy of the kernel's layout, from vmlinux.h).
fn kernel_struct_sizes(btf: &bpfvm_obj::Btf) -> Vec<(String, u32)> {
    use bpfvm_obj::btf::BtfKind;
    let mut out = Vec::new();
    for (_, name) in bpfvm_verifier::kfuncs::OBJS {
        if let Some(id) = btf.find_by_name_kind(name, BtfKind::Struct) {
            if let Ok(t) = btf.type_by_id(id) {
                out.push((name.to_string(), t.size_or_type));
            }
        }
    }
    out
}

/// Runs the verifier as BPF_PROG_LOAD does, before anything is registered.
fn verify(rt: &Runtime, a: &ProgLoadAttr, name: &str) -> Result<bpfvm_verifier::Verified> {
    verify_with(rt, a, name, false)
}

/// Runs the verifier again on a loaded program, keeping each instruction's
/// register states ([`bpfvm_verifier::Verified::insn_regs`]).
pub(crate) fn reg_states(rt: &Runtime, p: &ProgObj) -> Result<Vec<[Vec<String>; 11]>> {
    let a = ProgLoadAttr {
        prog_type: ProgType::from_u32(p.prog_type).unwrap_or_default(),
        expected_attach_type: AttachType::from_u32(p.expected_attach_type).unwrap_or_default(),
        insns: p.xlated.clone(),
        license: if p.gpl_compatible {
            "GPL"
        } else {
            "Proprietary"
        }
        .into(),
        name: p.name.clone(),
        btf_id: p.btf.as_ref().map(|b| b.id),
        func_info: p.func_info.clone(),
        line_info: p.line_info.clone(),
        ..Default::default()
    };
    verify_with(rt, &a, &p.name, true).map(|v| v.insn_regs)
}

fn verify_with(
    rt: &Runtime,
    a: &ProgLoadAttr,
    name: &str,
    record_regs: bool,
) -> Result<bpfvm_verifier::Verified> {
    let btf = match a.btf_id {
        Some(id) => Some(rt.btf_by_id(id)?),
        None => None,
    };
    // BPF exceptions (bpf_throw and its callback) are not modelled: a program
    // naming an exception callback is refused rather than verified without
    // the rules that callback is under (it may not be called directly, nor
    // throw).
    if let (Some(b), Some(main)) = (&btf, a.func_info.first()) {
        if let Some(cb) = b.btf.iter().find_map(|(_, t)| {
            let on_main = matches!(t.data, BtfTypeData::DeclTag { component_idx: -1 })
                && t.size_or_type == main.type_id;
            on_main
                .then(|| b.btf.str_at(t.name_off).strip_prefix("exception_callback:"))
                .flatten()
        }) {
            return Err(BpfError::NotSupported {
                what: format!("the exception callback '{cb}' of program '{name}' (BPF exceptions)"),
            });
        }
    }
    let opts = bpfvm_verifier::VerifierOpts {
        prog_type: a.prog_type.as_u32(),
        expected_attach_type: a.expected_attach_type.as_u32(),
        privileged: !a.unprivileged,
        log_level: a.log_level,
        prog_flags: a.prog_flags,
        line_info: a
            .line_info
            .iter()
            .map(|l| bpfvm_verifier::LineRef {
                insn_idx: l.insn_idx,
                file: l.file_name.clone(),
                line: l.line.clone(),
                line_num: l.line_num,
                col: l.col,
            })
            .collect(),
        func_info: a
            .func_info
            .iter()
            .map(|f| {
                let name = btf
                    .as_ref()
                    .map(|b| b.btf.name(f.type_id).to_string())
                    .unwrap_or_default();
                (f.insn_idx, name)
            })
            .collect(),
        func_non_scalar_return: a
            .func_info
            .iter()
            .filter(|f| {
                let Some(b) = btf.as_ref() else { return false };
                let scalar = crate::globalfn::return_type(&b.btf, f.type_id).is_some_and(|t| {
                    matches!(t.kind(), BtfKind::Enum | BtfKind::Enum64)
                        || (t.kind() == BtfKind::Int && t.size().is_some_and(|s| s <= 8))
                });
                !scalar
            })
            .map(|f| f.insn_idx)
            .collect(),
        gpl_compatible: license_is_gpl_compatible(&a.license),
        global_funcs: btf
            .as_ref()
            .map(|b| crate::globalfn::global_funcs(&b.btf, &a.func_info, a.prog_type.as_u32()))
            .unwrap_or_default(),
        // The kernel's layouts where the loader had them, the program's
        // (its vmlinux.h) for structs they lack.
        btf_structs: {
            let mut sizes = a
                .core_target
                .as_deref()
                .map(kernel_struct_sizes)
                .unwrap_or_default();
            if let Some(b) = btf.as_ref() {
                for (name, size) in kernel_struct_sizes(&b.btf) {
                    if !sizes.iter().any(|(n, _)| *n == name) {
                        sizes.push((name, size));
                    }
                }
            }
            sizes
        },
        extra_helpers: rt
            .k
            .custom_helpers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, proto)| (*id as i32, *proto))
            .collect(),
        record_regs,
        btf_ctx: a.btf_ctx.clone(),
        kernel_types: a.kernel_types.clone(),
        ..Default::default()
    };
    let maps = |id: u32| rt.map_by_id(id).ok().map(|m| map_desc(&m));
    bpfvm_verifier::verify(&a.insns, &maps, &opts).map_err(|r| BpfError::Verifier {
        name: name.to_string(),
        source: Box::new(r),
    })
}

/// Lays out map `m`'s kernel struct (`struct bpf_array`, ...) in its image
/// after `types`, the kernel types the verifier checked the reads with: the
/// `struct bpf_map` fields a program may read (type, sizes, flags, id,
/// name). Other fields read as zero. Done once per map.
fn fill_kernel_image(m: &MapObj, types: &dyn bpfvm_verifier::KernelTypes) {
    let Some(image) = m.attr().kernel_image.as_ref() else {
        return;
    };
    let Some(id) = types.struct_id(bpfvm_verifier::map_struct(m.map_type() as u32)) else {
        return;
    };
    if !image.claim_fill() {
        return;
    }
    let a = m.attr();
    let mut name = [0u8; 16];
    let n = a.name.len().min(15);
    name[..n].copy_from_slice(&a.name.as_bytes()[..n]);
    let ints: [(&str, u64); 8] = [
        ("map_type", m.map_type() as u64),
        ("key_size", a.key_size.into()),
        ("value_size", a.value_size.into()),
        ("max_entries", a.max_entries.into()),
        ("map_extra", a.map_extra),
        ("map_flags", a.map_flags.into()),
        ("numa_node", a.numa_node.into()),
        ("id", m.id.into()),
    ];
    for (field, v) in ints {
        if let Some((off, size)) = types.member(id, field) {
            let size = (size as usize).min(8);
            image.write(off as usize, &v.to_le_bytes()[..size]);
        }
    }
    if let Some((off, size)) = types.member(id, "name") {
        image.write(off as usize, &name[..(size as usize).min(16)]);
    }
}
