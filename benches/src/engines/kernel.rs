//! The host kernel: programs loaded with bpf(2) `BPF_PROG_LOAD` as XDP programs
//! (verifier + JIT) and run with `BPF_PROG_TEST_RUN` and `repeat`; the time is
//! the kernel's reported `duration` (mean ns per run, without the syscall).
//!
//! Compute programs take r1/r2 and a block of up to 2 MiB: a kernel program
//! gets r1 = its context only, and a test run's `data_in` holds at most a page
//! minus XDP's headroom and `skb_shared_info` (3520 bytes), so only programs
//! with an XDP entry of their own (`Program::kernel_entry`) are tried.

use crate::engine::{Engine, Runner, Skip};
use crate::programs::{Input, Kind, Program};
use bpfvm_isa::insns_to_bytes;
use std::time::Instant;

const BPF_MAP_CREATE: i64 = 0;
const BPF_MAP_UPDATE_ELEM: i64 = 2;
const BPF_PROG_LOAD: i64 = 5;
const BPF_PROG_TEST_RUN: i64 = 10;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_PSEUDO_MAP_FD: u8 = 1;
/// The largest `data_in` an XDP test run takes (4096 - 256 - 320).
const XDP_MAX_DATA_IN: usize = 3520;

pub struct Kernel;

/// `union bpf_attr`, as 128 zeroed bytes written by field offset (include/uapi/linux/bpf.h).
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn get_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes([
            self.0[off],
            self.0[off + 1],
            self.0[off + 2],
            self.0[off + 3],
        ])
    }
    fn name(&mut self, off: usize, name: &str) -> &mut Self {
        let n = name.len().min(15);
        self.0[off..off + n].copy_from_slice(&name.as_bytes()[..n]);
        self
    }
}

/// bpf(2); returns the result or errno's text.
fn sys_bpf(cmd: i64, attr: &mut Attr) -> Result<i64, String> {
    // SAFETY: attr is a valid, writable 128-byte bpf_attr.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.0.as_mut_ptr(), attr.0.len() as u32) };
    if r < 0 {
        Err(std::io::Error::last_os_error().to_string())
    } else {
        Ok(r)
    }
}

/// A file descriptor closed on drop.
struct Fd(i32);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: our own descriptor.
        unsafe { libc::close(self.0) };
    }
}

impl Engine for Kernel {
    fn name(&self) -> &'static str {
        "kernel"
    }

    fn prepare(&self, prog: &Program, input: &Input) -> Result<Box<dyn Runner>, Skip> {
        // SAFETY: no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(Skip::new(
                "not root: BPF_PROG_LOAD of XDP programs needs CAP_BPF + CAP_NET_ADMIN",
            ));
        }
        let (function, data) = match (prog.kind, prog.kernel_entry) {
            (Kind::Packet, _) => (prog.function, input.data.clone()),
            // The XDP entry reads no packet; a minimal frame will do.
            (Kind::Compute, Some(entry)) => (entry, vec![0u8; 14]),
            (Kind::Compute, None) => {
                return Err(Skip::new(format!(
                    "a {}-byte input block: a kernel program gets only r1 = its context, and a test run's data_in holds at most {XDP_MAX_DATA_IN} bytes",
                    input.data.len()
                )))
            }
        };
        let path = prog.object_path();
        let obj = bpfvm_obj::Object::open(&path).map_err(|e| Skip::from_err(&e))?;
        let p = obj
            .programs
            .iter()
            .find(|p| p.name == function)
            .ok_or_else(|| Skip::new(format!("no program {function} in {}", path.display())))?;
        let mut maps: Vec<(String, Fd)> = Vec::new();
        for def in &obj.maps {
            let mut a = Attr::new();
            a.u32(0, def.map_type)
                .u32(4, def.key_size)
                .u32(8, def.value_size)
                .u32(12, def.max_entries)
                .u32(16, def.map_flags)
                .name(28, &def.name);
            let fd = sys_bpf(BPF_MAP_CREATE, &mut a)
                .map_err(|e| Skip::new(format!("BPF_MAP_CREATE {}: {e}", def.name)))?;
            maps.push((def.name.clone(), Fd(fd as i32)));
        }
        let mut insns = p.insns.clone();
        for r in &p.map_relocs {
            let fd = maps
                .get(r.map_idx)
                .ok_or_else(|| Skip::new("map relocation out of range"))?
                .1
                 .0;
            let i = insns
                .get_mut(r.insn_idx)
                .ok_or_else(|| Skip::new("relocation out of range"))?;
            i.src_reg = BPF_PSEUDO_MAP_FD;
            i.imm = fd;
        }
        let bytes = insns_to_bytes(&insns);
        let license = c"GPL";
        let mut log = vec![0u8; 1 << 20];
        let mut a = Attr::new();
        a.u32(0, BPF_PROG_TYPE_XDP)
            .u32(4, insns.len() as u32)
            .u64(8, bytes.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .u32(24, 1)
            .u32(28, log.len() as u32)
            .u64(32, log.as_mut_ptr() as u64)
            .name(48, function);
        let start = Instant::now();
        let loaded = sys_bpf(BPF_PROG_LOAD, &mut a);
        let load_ns = start.elapsed().as_nanos() as u64;
        let prog_fd = match loaded {
            Ok(fd) => Fd(fd as i32),
            Err(e) => {
                let text =
                    String::from_utf8_lossy(&log[..log.iter().position(|b| *b == 0).unwrap_or(0)])
                        .to_string();
                let last: Vec<&str> = text.lines().rev().take(2).collect();
                return Err(Skip::new(format!(
                    "the verifier refuses it ({e}): {}",
                    last.into_iter().rev().collect::<Vec<_>>().join(" / ")
                )));
            }
        };
        drop(log);
        for (map, key, value) in &input.map_entries {
            let fd = maps
                .iter()
                .find(|(n, _)| n == map)
                .ok_or_else(|| Skip::new(format!("no map {map}")))?
                .1
                 .0;
            let mut a = Attr::new();
            a.u32(0, fd as u32)
                .u64(8, key.as_ptr() as u64)
                .u64(16, value.as_ptr() as u64);
            sys_bpf(BPF_MAP_UPDATE_ELEM, &mut a)
                .map_err(|e| Skip::new(format!("BPF_MAP_UPDATE_ELEM {map}: {e}")))?;
        }
        Ok(Box::new(KernelRunner {
            prog: prog_fd,
            _maps: maps,
            data,
            load_ns,
        }))
    }
}

struct KernelRunner {
    prog: Fd,
    _maps: Vec<(String, Fd)>,
    data: Vec<u8>,
    load_ns: u64,
}

impl Runner for KernelRunner {
    fn compile_ns(&self) -> Option<u64> {
        Some(self.load_ns)
    }

    fn run(&mut self, iters: u64) -> Result<(u64, f64), Skip> {
        let repeat = iters.clamp(1, u32::MAX as u64) as u32;
        let mut a = Attr::new();
        a.u32(0, self.prog.0 as u32)
            .u32(8, self.data.len() as u32)
            .u64(16, self.data.as_ptr() as u64)
            .u32(32, repeat);
        sys_bpf(BPF_PROG_TEST_RUN, &mut a)
            .map_err(|e| Skip::new(format!("BPF_PROG_TEST_RUN: {e}")))?;
        let (retval, duration) = (a.get_u32(4), a.get_u32(36));
        Ok((retval as u64, duration as f64 * repeat as f64))
    }

    fn note(&self) -> Option<String> {
        Some("BPF_PROG_LOAD as XDP + BPF_PROG_TEST_RUN repeat N; time = the kernel's duration (integer ns, syscall excluded); compile = BPF_PROG_LOAD (verifier + JIT)".into())
    }
}
