//! The host kernel's `bpf(2)`, for tests that compare bpfvm with it.
//!
//! `union bpf_attr` is written as 128 zeroed bytes by field offset
//! (include/uapi/linux/bpf.h), so one buffer serves every command and the
//! fields a command does not use stay zero, as the kernel requires.

use bpfvm_isa::Insn;
use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

// `enum bpf_cmd`: only the host kernel is asked these by number.
const BPF_MAP_CREATE: i64 = 0;
const BPF_MAP_LOOKUP_ELEM: i64 = 1;
const BPF_MAP_UPDATE_ELEM: i64 = 2;
const BPF_PROG_LOAD: i64 = 5;
const BPF_OBJ_PIN: i64 = 6;
const BPF_OBJ_GET: i64 = 7;
const BPF_PROG_TEST_RUN: i64 = 10;
const BPF_BTF_LOAD: i64 = 18;
const BPF_MAP_FREEZE: i64 = 22;

/// The uid and gid tests drop to for the kernel's unprivileged rules (`nobody`).
const NOBODY: u32 = 65534;

/// `union bpf_attr`, as zeroed bytes written by field offset.
#[repr(C, align(8))]
#[derive(Clone)]
pub struct Attr(pub [u8; 128]);

impl Default for Attr {
    fn default() -> Attr {
        Attr([0; 128])
    }
}

impl Attr {
    /// Sets the `u32` field at byte `off`.
    pub fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }

    /// Sets the `u64` field (or pointer) at byte `off`.
    pub fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }

    /// Reads the `u32` field at byte `off` (what the kernel wrote back).
    pub fn get_u32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.0[off..off + 4]);
        u32::from_ne_bytes(b)
    }

    /// Sets a `char name[BPF_OBJ_NAME_LEN]` at byte `off`: the characters the
    /// kernel takes (`[A-Za-z0-9_.]`), at most 15 of them.
    pub fn name(&mut self, off: usize, name: &str) -> &mut Self {
        let n: Vec<u8> = name
            .bytes()
            .filter(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
            .take(bpfvm_isa::uapi::BPF_OBJ_NAME_LEN - 1)
            .collect();
        self.0[off..off + n.len()].copy_from_slice(&n);
        self
    }
}

/// bpf(2) on the host: the result, or errno.
pub fn sys_bpf(cmd: i64, attr: &mut Attr) -> io::Result<i64> {
    // SAFETY: attr is a valid, writable, zero-padded 128-byte bpf_attr.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.0.as_mut_ptr(), attr.0.len()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A file descriptor the kernel gave, closed on drop.
#[derive(Debug)]
pub struct Fd(i32);

impl Fd {
    /// The descriptor's number (for `BPF_PSEUDO_MAP_FD` immediates and attrs).
    pub fn raw(&self) -> i32 {
        self.0
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: our own descriptor, closed once.
        unsafe { libc::close(self.0) };
    }
}

fn fd_of(r: i64) -> Fd {
    Fd(r as i32)
}

/// The effective uid is 0.
pub fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `kernel.unprivileged_bpf_disabled` is 0: a process without capabilities
/// may load socket filters, so unprivileged verdicts can be asked for.
pub fn unprivileged_bpf_enabled() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/unprivileged_bpf_disabled")
        .is_ok_and(|s| s.trim() == "0")
}

/// Why the host kernel cannot be asked here (not root, or it refuses a
/// trivial `BPF_PROG_LOAD`), or `None` when it can. Tests that need it skip
/// with this reason.
pub fn host_kernel_unavailable() -> Option<String> {
    if !is_root() {
        return Some("not root: loading programs into the host kernel needs CAP_BPF".into());
    }
    let insns = [Insn::new(0xb7, 0, 0, 0, 0), Insn::new(0x95, 0, 0, 0, 0)];
    let load = ProgLoad {
        prog_type: bpfvm_isa::uapi::BPF_PROG_TYPE_SOCKET_FILTER,
        insns: &insns,
        ..ProgLoad::default()
    };
    match prog_load(&load) {
        Ok(_) => None,
        Err(e) => Some(format!(
            "the host kernel refuses BPF_PROG_LOAD of `r0 = 0; exit`: {}",
            io::Error::from_raw_os_error(e.errno)
        )),
    }
}

/// Why bpftool cannot ask the host kernel here (not root, no bpftool, no
/// bpffs at /sys/fs/bpf), or `None` when it can.
pub fn bpftool_unavailable() -> Option<String> {
    if !is_root() {
        return Some("not root".into());
    }
    let bpftool = std::process::Command::new("bpftool")
        .arg("version")
        .output();
    if !bpftool.is_ok_and(|o| o.status.success()) {
        return Some("bpftool not found".into());
    }
    if !Path::new("/sys/fs/bpf").is_dir() {
        return Some("bpffs not mounted at /sys/fs/bpf".into());
    }
    None
}

/// `BPF_MAP_CREATE`'s attributes.
#[derive(Clone, Debug, Default)]
pub struct MapCreate {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub inner_map_fd: u32,
    pub name: String,
    /// Created by a thread without capabilities (uid `nobody`), so the map's
    /// creator lacks CAP_PERFMON as the kernel's unprivileged rules see it.
    pub unprivileged: bool,
}

impl MapCreate {
    fn attr(&self) -> Attr {
        let mut a = Attr::default();
        a.u32(0, self.map_type)
            .u32(4, self.key_size)
            .u32(8, self.value_size)
            .u32(12, self.max_entries)
            .u32(16, self.map_flags)
            .u32(20, self.inner_map_fd)
            .name(28, &self.name);
        a
    }
}

/// `BPF_MAP_CREATE`.
pub fn map_create(m: &MapCreate) -> io::Result<Fd> {
    let mut a = m.attr();
    if !m.unprivileged {
        return sys_bpf(BPF_MAP_CREATE, &mut a).map(fd_of);
    }
    if !unprivileged_bpf_enabled() {
        return Err(io::Error::from_raw_os_error(libc::EPERM));
    }
    // The raw syscall changes only this thread's credentials (glibc's
    // setresuid would change every thread's), and they end with the thread.
    std::thread::spawn(move || {
        // SAFETY: setresuid on this thread only; no memory is involved.
        if unsafe { libc::syscall(libc::SYS_setresuid, NOBODY, NOBODY, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        sys_bpf(BPF_MAP_CREATE, &mut a)
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::from_raw_os_error(libc::EIO)))
    .map(fd_of)
}

/// `BPF_MAP_UPDATE_ELEM` with `flags` (`BPF_ANY`, ...).
pub fn map_update(map: &Fd, key: &[u8], value: &[u8], flags: u64) -> io::Result<()> {
    let mut a = Attr::default();
    a.u32(0, map.raw() as u32)
        .u64(8, key.as_ptr() as u64)
        .u64(16, value.as_ptr() as u64)
        .u64(24, flags);
    sys_bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(drop)
}

/// `BPF_MAP_LOOKUP_ELEM` into `value` (which must be the map's value size).
pub fn map_lookup(map: &Fd, key: &[u8], value: &mut [u8]) -> io::Result<()> {
    let mut a = Attr::default();
    a.u32(0, map.raw() as u32)
        .u64(8, key.as_ptr() as u64)
        .u64(16, value.as_mut_ptr() as u64);
    sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut a).map(drop)
}

/// `BPF_MAP_FREEZE`.
pub fn map_freeze(map: &Fd) -> io::Result<()> {
    let mut a = Attr::default();
    a.u32(0, map.raw() as u32);
    sys_bpf(BPF_MAP_FREEZE, &mut a).map(drop)
}

/// `BPF_BTF_LOAD` of a raw BTF blob (header, types, strings).
pub fn btf_load(blob: &[u8]) -> io::Result<Fd> {
    let mut a = Attr::default();
    a.u64(0, blob.as_ptr() as u64).u32(16, blob.len() as u32);
    sys_bpf(BPF_BTF_LOAD, &mut a).map(fd_of)
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// `BPF_OBJ_PIN`: pins `fd` at `path` in a bpffs.
pub fn obj_pin(fd: &Fd, path: &Path) -> io::Result<()> {
    let p = c_path(path)?;
    let mut a = Attr::default();
    a.u64(0, p.as_ptr() as u64).u32(8, fd.raw() as u32);
    sys_bpf(BPF_OBJ_PIN, &mut a).map(drop)
}

/// `BPF_OBJ_GET`: opens the object pinned at `path`.
pub fn obj_get(path: &Path) -> io::Result<Fd> {
    let p = c_path(path)?;
    let mut a = Attr::default();
    a.u64(0, p.as_ptr() as u64);
    sys_bpf(BPF_OBJ_GET, &mut a).map(fd_of)
}

/// `BPF_PROG_LOAD`'s attributes.
#[derive(Clone, Debug)]
pub struct ProgLoad<'a> {
    pub prog_type: u32,
    pub insns: &'a [Insn],
    pub license: &'a CStr,
    pub prog_flags: u32,
    pub expected_attach_type: u32,
    /// `attach_btf_id`: a tracing program's target in the kernel's BTF.
    pub attach_btf_id: u32,
    pub name: &'a str,
    /// `prog_btf_fd`, for `func_info`.
    pub prog_btf_fd: u32,
    /// `struct bpf_func_info` records as (`insn_off`, `type_id`) pairs.
    pub func_info: &'a [u32],
    /// `log_level`; with 0 no log is asked for.
    pub log_level: u32,
    /// Bytes of verifier log to ask for (when `log_level` is not 0).
    pub log_size: usize,
    /// Load from a forked child that gave up root (uid and gid `nobody`, no
    /// capabilities): the kernel then applies its unprivileged rules. The
    /// program's fd dies with the child.
    pub unprivileged: bool,
}

impl Default for ProgLoad<'_> {
    fn default() -> Self {
        ProgLoad {
            prog_type: 0,
            insns: &[],
            license: c"GPL",
            prog_flags: 0,
            expected_attach_type: 0,
            attach_btf_id: 0,
            name: "",
            prog_btf_fd: 0,
            func_info: &[],
            log_level: 0,
            log_size: 1 << 16,
            unprivileged: false,
        }
    }
}

/// A program the kernel accepted.
#[derive(Debug)]
pub struct Loaded {
    /// `None` for an unprivileged load (the child that held it has exited).
    pub fd: Option<Fd>,
    /// The verifier log.
    pub log: String,
}

/// A program the kernel refused.
#[derive(Clone, Debug)]
pub struct LoadError {
    pub errno: i32,
    /// The verifier log.
    pub log: String,
}

impl LoadError {
    /// The kernel's error: the last line of the log before its statistics.
    pub fn error_line(&self) -> String {
        crate::mask::error_line(&self.log)
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}",
            io::Error::from_raw_os_error(self.errno),
            self.error_line()
        )
    }
}

fn log_text(log: &[u8]) -> String {
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    String::from_utf8_lossy(&log[..end]).into_owned()
}

/// `BPF_PROG_LOAD`: the program's fd and log, or errno and log.
pub fn prog_load(p: &ProgLoad) -> Result<Loaded, LoadError> {
    let code = bpfvm_isa::insns_to_bytes(p.insns);
    let mut log = vec![0u8; if p.log_level > 0 { p.log_size } else { 0 }];
    let mut a = Attr::default();
    a.u32(0, p.prog_type)
        .u32(4, p.insns.len() as u32)
        .u64(8, code.as_ptr() as u64)
        .u64(16, p.license.as_ptr() as u64)
        .u32(44, p.prog_flags)
        .name(48, p.name)
        .u32(68, p.expected_attach_type)
        .u32(108, p.attach_btf_id);
    if !p.func_info.is_empty() {
        a.u32(72, p.prog_btf_fd)
            .u32(76, 8)
            .u64(80, p.func_info.as_ptr() as u64)
            .u32(88, (p.func_info.len() / 2) as u32);
    }
    if !log.is_empty() {
        a.u32(24, p.log_level)
            .u32(28, log.len() as u32)
            .u64(32, log.as_mut_ptr() as u64);
    }
    if p.unprivileged {
        let errno = load_unprivileged(&mut a, &mut log);
        let log = log_text(&log);
        return if errno == 0 {
            Ok(Loaded { fd: None, log })
        } else {
            Err(LoadError { errno, log })
        };
    }
    match sys_bpf(BPF_PROG_LOAD, &mut a) {
        Ok(fd) => Ok(Loaded {
            fd: Some(fd_of(fd)),
            log: log_text(&log),
        }),
        Err(e) => Err(LoadError {
            errno: e.raw_os_error().unwrap_or(0),
            log: log_text(&log),
        }),
    }
}

/// Issues `BPF_PROG_LOAD` from a forked child that has given up root; the
/// child sends back errno (0 when accepted, -1 when it could not drop root)
/// and its log through a pipe. Returns the errno.
fn load_unprivileged(attr: &mut Attr, log: &mut [u8]) -> i32 {
    let mut pipe = [0i32; 2];
    // SAFETY: pipe writes two fds into the array.
    if unsafe { libc::pipe(pipe.as_mut_ptr()) } != 0 {
        return libc::EIO;
    }
    // SAFETY: fork; the child below makes only async-signal-safe calls (the
    // test binary is threaded) and ends in _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: as above; the buffers are the child's copies.
        unsafe {
            libc::close(pipe[0]);
            let ok = libc::setgroups(0, std::ptr::null()) == 0
                && libc::setresgid(NOBODY, NOBODY, NOBODY) == 0
                && libc::setresuid(NOBODY, NOBODY, NOBODY) == 0;
            let fd = if ok {
                libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, attr.0.as_mut_ptr(), 128usize)
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
    // SAFETY: closing our copy of the write end; the read end becomes a File.
    unsafe { libc::close(pipe[1]) };
    let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(pipe[0]) };
    let mut buf = Vec::new();
    let _ = std::io::Read::read_to_end(&mut f, &mut buf);
    if pid > 0 {
        let mut status = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
    if buf.len() < 4 {
        return libc::EIO;
    }
    let errno = i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if !log.is_empty() {
        let n = (buf.len() - 4).min(log.len() - 1);
        log[..n].copy_from_slice(&buf[4..4 + n]);
        log[n] = 0;
    }
    if errno == -1 {
        return libc::EPERM;
    }
    errno
}

/// `BPF_PROG_TEST_RUN`'s inputs. `ctx_in` is mutable: a syscall program's
/// test run writes its context back into it.
#[derive(Clone, Debug, Default)]
pub struct TestRun {
    pub data_in: Vec<u8>,
    /// Room for `data_out` (0: none asked for).
    pub data_out_size: usize,
    pub ctx_in: Vec<u8>,
    /// Room for `ctx_out` (0: none asked for).
    pub ctx_out_size: usize,
    pub repeat: u32,
    pub flags: u32,
}

/// What `BPF_PROG_TEST_RUN` gave back.
#[derive(Clone, Debug, Default)]
pub struct TestRunOut {
    pub retval: u32,
    /// Mean nanoseconds per run, as the kernel measures it.
    pub duration: u32,
    pub data_out: Vec<u8>,
    pub ctx_out: Vec<u8>,
}

fn ptr_or_null(b: &[u8]) -> u64 {
    if b.is_empty() {
        0
    } else {
        b.as_ptr() as u64
    }
}

/// `BPF_PROG_TEST_RUN` of `prog`.
pub fn test_run(prog: &Fd, run: &mut TestRun) -> io::Result<TestRunOut> {
    let mut data_out = vec![0u8; run.data_out_size];
    let mut ctx_out = vec![0u8; run.ctx_out_size];
    let mut a = Attr::default();
    a.u32(0, prog.raw() as u32)
        .u32(8, run.data_in.len() as u32)
        .u32(12, data_out.len() as u32)
        .u64(16, ptr_or_null(&run.data_in))
        .u64(24, ptr_or_null(&data_out))
        .u32(32, run.repeat)
        .u32(40, run.ctx_in.len() as u32)
        .u32(44, ctx_out.len() as u32)
        .u64(48, ptr_or_null(&run.ctx_in))
        .u64(56, ptr_or_null(&ctx_out))
        .u32(64, run.flags);
    sys_bpf(BPF_PROG_TEST_RUN, &mut a)?;
    data_out.truncate(a.get_u32(12) as usize);
    ctx_out.truncate(a.get_u32(44) as usize);
    Ok(TestRunOut {
        retval: a.get_u32(4),
        duration: a.get_u32(36),
        data_out,
        ctx_out,
    })
}
