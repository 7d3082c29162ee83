//! Shared test helpers: fixture objects as verifier input, and the host kernel
//! as an oracle (BPF_MAP_CREATE + BPF_PROG_LOAD through bpf(2)).
#![allow(dead_code)]

use bpfvm_isa::Insn;
use bpfvm_obj::{MapRelocKind, Object};
use bpfvm_verifier::{LineRef, MapDesc, VerifierOpts};
use std::path::PathBuf;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One program of a fixture object, ready for `verify`: map references carry
/// map ids (index + 1).
pub struct FixtureProg {
    pub name: String,
    pub insns: Vec<Insn>,
    pub maps: Vec<MapDesc>,
    pub opts: VerifierOpts,
}

pub fn load_fixture(obj: &str, prog: &str) -> Option<FixtureProg> {
    let o = Object::open(repo().join("tests/fixtures/obj").join(obj)).ok()?;
    let p = o.program(prog)?;
    let mut insns = p.insns.clone();
    for r in &p.map_relocs {
        insns[r.insn_idx].imm = r.map_idx as i32 + 1;
        if let MapRelocKind::Value { offset } = r.kind {
            insns[r.insn_idx + 1].imm = offset as i32;
        }
    }
    let maps = o
        .maps
        .iter()
        .enumerate()
        .map(|(i, m)| MapDesc {
            id: i as u32 + 1,
            map_type: m.map_type,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            map_flags: m.map_flags,
            frozen: m.freeze_after_load(),
            frozen_data: Some(m.initial_data.clone().into()),
            name: m.name.clone(),
            has_btf: false,
            spin_lock_off: None,
            timer_off: None,
            kptrs: Vec::new(),
            created_unprivileged: false,
            inner: m.inner.as_ref().map(|inner| {
                Box::new(MapDesc {
                    id: 1000 + i as u32,
                    map_type: inner.map_type,
                    key_size: inner.key_size,
                    value_size: inner.value_size,
                    max_entries: inner.max_entries,
                    map_flags: inner.map_flags,
                    frozen: false,
                    name: inner.name.clone(),
                    inner: None,
                    frozen_data: None,
                    ..Default::default()
                })
            }),
        })
        .collect();
    let line_info = p
        .line_info
        .iter()
        .map(|l| LineRef {
            insn_idx: l.insn_idx,
            file: l.file_name.clone(),
            line: l.line.clone(),
            line_num: l.line_num,
            col: l.col,
        })
        .collect();
    let func_info = p
        .funcs
        .iter()
        .map(|f| (f.insn_off as u32, f.name.clone()))
        .collect();
    let opts = VerifierOpts {
        prog_type: p.prog_type.as_u32(),
        expected_attach_type: 0,
        privileged: true,
        // Levels 1|2 and BPF_LOG_STATS, as `bpftool -d` (the golden logs).
        log_level: 7,
        line_info,
        func_info,
        gpl_compatible: o.gpl_compatible,
        log_size: 16 << 20,
        extra_helpers: Vec::new(),
        record_regs: false,
        prog_flags: p.prog_flags,
        func_non_scalar_return: Vec::new(),
        global_funcs: Vec::new(),
        btf_structs: Vec::new(),
        ..Default::default()
    };
    Some(FixtureProg {
        name: prog.to_string(),
        insns,
        maps,
        opts,
    })
}

use bpfvm_testsupport::{self as host, MapCreate, ProgLoad};
pub use bpfvm_testsupport::{is_root, unprivileged_bpf_enabled};

/// The kernel's verdict on a program: Ok(log) or Err((errno, log)).
pub struct KernelResult {
    pub accepted: bool,
    pub errno: i32,
    pub log: String,
}

impl KernelResult {
    /// The last line before the statistics: the kernel's error.
    pub fn error_line(&self) -> String {
        host::error_line(&self.log)
    }
}

/// Loads `insns` into the host kernel, creating `maps` and patching LD_IMM64
/// map ids into fds. None when the kernel cannot be used (not root, EPERM).
pub fn kernel_load(
    insns: &[Insn],
    maps: &[MapDesc],
    prog_type: u32,
    log_level: u32,
) -> Option<KernelResult> {
    kernel_load_as(insns, maps, prog_type, log_level, false)
}

fn map_create(m: &MapDesc, inner_map_fd: u32) -> Option<host::Fd> {
    host::map_create(&MapCreate {
        map_type: m.map_type,
        key_size: m.key_size,
        value_size: m.value_size,
        max_entries: m.max_entries,
        map_flags: m.map_flags,
        inner_map_fd,
        name: m.name.clone(),
        unprivileged: m.created_unprivileged,
    })
    .ok()
}

/// As `kernel_load`, optionally as an unprivileged process.
pub fn kernel_load_as(
    insns: &[Insn],
    maps: &[MapDesc],
    prog_type: u32,
    log_level: u32,
    unprivileged: bool,
) -> Option<KernelResult> {
    if !is_root() || (unprivileged && !unprivileged_bpf_enabled()) {
        return None;
    }
    // The maps live until the load is done (the kernel holds its own references).
    let mut fds: Vec<(u32, host::Fd)> = Vec::new();
    let mut out = insns.to_vec();
    let mut i = 0;
    while i < out.len() {
        let ins = out[i];
        if ins.code == 0x18 && (ins.src_reg == 1 || ins.src_reg == 2) {
            let id = ins.imm as u32;
            let fd = match fds.iter().find(|f| f.0 == id) {
                Some(f) => f.1.raw(),
                None => {
                    let m = maps.iter().find(|m| m.id == id)?;
                    // A map of maps needs its template created first.
                    let inner_map_fd = match &m.inner {
                        Some(t) => {
                            let t = MapDesc {
                                created_unprivileged: false,
                                name: String::new(),
                                ..(**t).clone()
                            };
                            let fd = map_create(&t, 0)?;
                            let raw = fd.raw() as u32;
                            fds.push((u32::MAX, fd));
                            raw
                        }
                        None => 0,
                    };
                    let fd = map_create(m, inner_map_fd)?;
                    if m.frozen {
                        let _ = host::map_freeze(&fd);
                    }
                    let raw = fd.raw();
                    fds.push((id, fd));
                    raw
                }
            };
            out[i].imm = fd;
            i += 2;
            continue;
        }
        i += 1;
    }
    let load = ProgLoad {
        prog_type,
        insns: &out,
        log_level,
        log_size: 1 << 22,
        unprivileged,
        ..ProgLoad::default()
    };
    match host::prog_load(&load) {
        Ok(l) => Some(KernelResult {
            accepted: true,
            errno: 0,
            log: l.log,
        }),
        Err(e) if e.errno == libc::EPERM => None,
        Err(e) => Some(KernelResult {
            accepted: false,
            errno: e.errno,
            log: e.log,
        }),
    }
}

/// The kernel's load time for `insns` in microseconds (best of `n`).
pub fn kernel_load_time(insns: &[Insn], maps: &[MapDesc], prog_type: u32, n: usize) -> Option<f64> {
    let mut best = f64::MAX;
    for _ in 0..n {
        let t = std::time::Instant::now();
        let r = kernel_load(insns, maps, prog_type, 0)?;
        let dt = t.elapsed().as_secs_f64() * 1e6;
        if !r.accepted {
            return None;
        }
        best = best.min(dt);
    }
    Some(best)
}

/// Kernel log lines we compare: the trace, without liveness/precision notes
/// and with kernel addresses masked.
pub fn normalise(log: &str) -> Vec<String> {
    host::normalise_log(log)
}

/// Length of the longest common subsequence of lines.
pub fn lcs(a: &[String], b: &[String]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    for x in a {
        let mut cur = vec![0usize; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        prev = cur;
    }
    prev[b.len()]
}
