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
        prog_flags: 0,
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

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

#[repr(C)]
#[derive(Clone, Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
    map_ifindex: u32,
    btf_fd: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
    btf_vmlinux_value_type_id: u32,
    map_extra: u64,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

const BPF_MAP_CREATE: i64 = 0;
const BPF_PROG_LOAD: i64 = 5;
const BPF_MAP_FREEZE: i64 = 22;

fn bpf(cmd: i64, attr: *const u8, size: usize) -> i64 {
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr, size) }
}

/// The kernel's verdict on a program: Ok(log) or Err((errno, log)).
pub struct KernelResult {
    pub accepted: bool,
    pub errno: i32,
    pub log: String,
}

impl KernelResult {
    /// The last line before the statistics: the kernel's error.
    pub fn error_line(&self) -> String {
        let lines: Vec<&str> = self.log.lines().collect();
        let end = lines
            .iter()
            .rposition(|l| l.starts_with("processed "))
            .unwrap_or(lines.len());
        let mut line = lines[..end]
            .iter()
            .rev()
            .find(|l| {
                !l.trim().is_empty() && !l.starts_with("cur state:") && !l.starts_with("old state:")
            })
            .map(|s| s.to_string())
            .unwrap_or_default();
        // Some kernel messages lack their newline and run into the statistics.
        if let Some(i) = line.find("processed ") {
            line.truncate(i);
        }
        line
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

/// `kernel.unprivileged_bpf_disabled` is 0: a process without capabilities
/// may load socket filters, so unprivileged verdicts can be asked for.
pub fn unprivileged_bpf_enabled() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/unprivileged_bpf_disabled")
        .is_ok_and(|s| s.trim() == "0")
}

/// Issues BPF_PROG_LOAD from a forked child that has given up root (uid and
/// gid 65534, so no capabilities): the kernel then applies its unprivileged
/// rules. The maps were created by the parent; the child inherits the fds.
/// Returns the fd or -errno, and the log.
fn load_unprivileged(attr: &ProgLoadAttr, log: &mut [u8]) -> (i64, i32) {
    let mut pipe = [0i32; 2];
    if unsafe { libc::pipe(pipe.as_mut_ptr()) } != 0 {
        return (-1, libc::EIO);
    }
    // Only async-signal-safe calls in the child: the test binary is threaded.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            libc::close(pipe[0]);
            let ok = libc::setgroups(0, std::ptr::null()) == 0
                && libc::setresgid(65534, 65534, 65534) == 0
                && libc::setresuid(65534, 65534, 65534) == 0;
            let fd = if ok {
                libc::syscall(
                    libc::SYS_bpf,
                    BPF_PROG_LOAD,
                    attr as *const _ as *const u8,
                    std::mem::size_of::<ProgLoadAttr>(),
                )
            } else {
                -1
            };
            let errno = if fd < 0 { *libc::__errno_location() } else { 0 };
            let head = [if ok { errno } else { -1 }];
            libc::write(pipe[1], head.as_ptr() as *const libc::c_void, 4);
            let end = log.iter().position(|&b| b == 0).unwrap_or(0);
            let mut off = 0;
            while off < end {
                let n = libc::write(
                    pipe[1],
                    log[off..].as_ptr() as *const libc::c_void,
                    end - off,
                );
                if n <= 0 {
                    break;
                }
                off += n as usize;
            }
            libc::_exit(0);
        }
    }
    unsafe { libc::close(pipe[1]) };
    let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(pipe[0]) };
    let mut buf = Vec::new();
    let _ = std::io::Read::read_to_end(&mut f, &mut buf);
    if pid > 0 {
        let mut status = 0;
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
    if buf.len() < 4 {
        return (-1, libc::EIO);
    }
    let errno = i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let n = (buf.len() - 4).min(log.len().saturating_sub(1));
    log[..n].copy_from_slice(&buf[4..4 + n]);
    log[n] = 0;
    if errno == -1 {
        return (-1, libc::EPERM);
    }
    (if errno == 0 { 1 } else { -1 }, errno)
}

/// BPF_MAP_CREATE from a thread whose effective uid is 65534, so the map's
/// creator lacks CAP_PERFMON (`bypass_spec_v1` false). The raw syscall
/// changes only that thread's credentials (glibc's setresuid would change
/// every thread's), and they end with the thread. Returns the fd or -1.
fn map_create_unprivileged(a: &MapCreateAttr) -> i64 {
    if !unprivileged_bpf_enabled() {
        return -1;
    }
    let attr = a.clone();
    std::thread::spawn(move || unsafe {
        if libc::syscall(libc::SYS_setresuid, 65534, 65534, 0) != 0 {
            return -1;
        }
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_CREATE,
            &attr as *const _ as *const u8,
            std::mem::size_of::<MapCreateAttr>(),
        )
    })
    .join()
    .unwrap_or(-1)
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
    let mut fds: Vec<(u32, i32)> = Vec::new();
    let mut out = insns.to_vec();
    let mut i = 0;
    let mut ok = true;
    while i < out.len() {
        let ins = out[i];
        if ins.code == 0x18 && (ins.src_reg == 1 || ins.src_reg == 2) {
            let id = ins.imm as u32;
            let fd = match fds.iter().find(|f| f.0 == id) {
                Some(f) => f.1,
                None => {
                    let Some(m) = maps.iter().find(|m| m.id == id) else {
                        ok = false;
                        break;
                    };
                    // A map of maps needs its template created first.
                    let inner_map_fd = match &m.inner {
                        Some(t) => {
                            let ta = MapCreateAttr {
                                map_type: t.map_type,
                                key_size: t.key_size,
                                value_size: t.value_size,
                                max_entries: t.max_entries,
                                map_flags: t.map_flags,
                                ..Default::default()
                            };
                            let fd = bpf(
                                BPF_MAP_CREATE,
                                &ta as *const _ as *const u8,
                                std::mem::size_of::<MapCreateAttr>(),
                            );
                            if fd < 0 {
                                ok = false;
                                break;
                            }
                            fds.push((u32::MAX, fd as i32));
                            fd as u32
                        }
                        None => 0,
                    };
                    let mut a = MapCreateAttr {
                        map_type: m.map_type,
                        key_size: m.key_size,
                        value_size: m.value_size,
                        max_entries: m.max_entries,
                        map_flags: m.map_flags,
                        inner_map_fd,
                        ..Default::default()
                    };
                    let n = m.name.as_bytes();
                    let n: Vec<u8> = n
                        .iter()
                        .copied()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
                        .take(15)
                        .collect();
                    a.map_name[..n.len()].copy_from_slice(&n);
                    let fd = if m.created_unprivileged {
                        map_create_unprivileged(&a)
                    } else {
                        bpf(
                            BPF_MAP_CREATE,
                            &a as *const _ as *const u8,
                            std::mem::size_of::<MapCreateAttr>(),
                        )
                    };
                    if fd < 0 {
                        ok = false;
                        break;
                    }
                    if m.frozen {
                        let fa: [u32; 2] = [fd as u32, 0];
                        bpf(BPF_MAP_FREEZE, fa.as_ptr() as *const u8, 8);
                    }
                    fds.push((id, fd as i32));
                    fd as i32
                }
            };
            out[i].imm = fd;
            i += 2;
            continue;
        }
        i += 1;
    }
    let result = if ok {
        let bytes = bpfvm_isa::insns_to_bytes(&out);
        let mut log = vec![0u8; 1 << 22];
        let license = b"GPL\0";
        let a = ProgLoadAttr {
            prog_type,
            insn_cnt: out.len() as u32,
            insns: bytes.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level,
            log_size: if log_level > 0 { log.len() as u32 } else { 0 },
            log_buf: if log_level > 0 {
                log.as_mut_ptr() as u64
            } else {
                0
            },
            ..Default::default()
        };
        let (fd, errno) = if unprivileged {
            // The child's fd dies with it.
            load_unprivileged(&a, &mut log)
        } else {
            let fd = bpf(
                BPF_PROG_LOAD,
                &a as *const _ as *const u8,
                std::mem::size_of::<ProgLoadAttr>(),
            );
            let errno = if fd < 0 {
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
            } else {
                0
            };
            if fd >= 0 {
                unsafe { libc::close(fd as i32) };
            }
            (fd, errno)
        };
        let end = log.iter().position(|&b| b == 0).unwrap_or(0);
        let log = String::from_utf8_lossy(&log[..end]).to_string();
        if errno == libc::EPERM {
            None
        } else {
            Some(KernelResult {
                accepted: fd >= 0,
                errno,
                log,
            })
        }
    } else {
        None
    };
    for (_, fd) in fds {
        unsafe { libc::close(fd) };
    }
    result
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
    let mut out = Vec::new();
    for l in log.lines() {
        if l.starts_with("libbpf:")
            || l.starts_with("mark_precise")
            || l.starts_with("(0)")
            || l.starts_with("Live regs")
            || l.starts_with("func#")
            || l.starts_with("verification time")
            || l.trim().is_empty()
            || l.starts_with('#')
            || l.contains("-- BEGIN PROG LOAD LOG --")
            || is_live_regs_line(l)
        {
            continue;
        }
        let mut s = String::new();
        let mut rest = l;
        while let Some(i) = rest.find("0xffff") {
            s.push_str(&rest[..i]);
            s.push_str("ADDR");
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !c.is_ascii_hexdigit() && c != 'x')
                .unwrap_or(tail.len());
            rest = &tail[end..];
        }
        s.push_str(rest);
        // Our LD_IMM64 text.
        let s = regex_lite_replace_map(&s);
        out.push(s);
    }
    out
}

/// `      7: 0......... (79) r1 = ...`: the kernel's liveness listing.
pub fn is_live_regs_line(l: &str) -> bool {
    let t = l.trim_start();
    let Some(colon) = t.find(": ") else {
        return false;
    };
    t[..colon].chars().all(|c| c.is_ascii_digit())
        && t.len() > colon + 12
        && t[colon + 2..colon + 12]
            .chars()
            .all(|c| c == '.' || c.is_ascii_digit())
        && l.starts_with(' ')
}

fn regex_lite_replace_map(s: &str) -> String {
    let mut out = s.to_string();
    while let Some(i) = out.find("map[id:") {
        let end = out[i..].find(']').map(|e| i + e + 1).unwrap_or(out.len());
        let mut end2 = end;
        // `map[id:N][0]+off`
        if out[end..].starts_with("[0]+") {
            end2 = end
                + 4
                + out[end + 4..]
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(out.len() - end - 4);
        }
        out.replace_range(i..end2, "ADDR");
    }
    out
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
