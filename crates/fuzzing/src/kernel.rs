//! The host kernel as a differential engine: a generated program is loaded as a
//! sleepable `BPF_PROG_TYPE_SYSCALL` program (r1 = its context, which is the memory
//! block) and run once with BPF_PROG_TEST_RUN. Programs the kernel's verifier
//! refuses are "unsupported" here (it is stricter than the generator), not
//! mismatches. Needs root and a BPF-enabled kernel; [`KernelEngine::probe`] says
//! whether they are there.

use crate::{Case, DiffEngine, Outcome};
use bpfvm_isa::insns_to_bytes;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_PROG_TYPE_SYSCALL: u32 = 31;
const BPF_F_SLEEPABLE: u32 = 1 << 4;

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
    // The rest of union bpf_attr's load part, zeroed.
    _rest: [u64; 16],
}

#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

fn sys_bpf<T>(cmd: libc::c_long, attr: &mut T) -> libc::c_long {
    // SAFETY: attr is a valid, fully initialised bpf_attr prefix of size_of::<T>().
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) }
}

/// Loads and runs programs in the host kernel.
pub struct KernelEngine;

impl KernelEngine {
    /// Whether the host kernel takes BPF programs from this process, and if not why.
    pub fn probe() -> Result<KernelEngine, String> {
        let case = Case {
            insns: bpfvm_isa::asm::assemble("mov %r0, 0\nexit").map_err(|e| e.to_string())?,
            mem: vec![0; 8],
        };
        match KernelEngine.run(&case) {
            Outcome::Ok { .. } => Ok(KernelEngine),
            Outcome::Unsupported(why) | Outcome::Refused(why) | Outcome::Faulted(why) => Err(why),
        }
    }
}

impl DiffEngine for KernelEngine {
    fn name(&self) -> &str {
        "kernel"
    }

    fn r0_bits(&self) -> u32 {
        32
    }

    fn run(&self, case: &Case) -> Outcome {
        let code = insns_to_bytes(&case.insns);
        let license = b"GPL\0";
        let mut log = vec![0u8; 4096];
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_SYSCALL,
            insn_cnt: case.insns.len() as u32,
            insns: code.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 1,
            log_size: log.len() as u32,
            log_buf: log.as_mut_ptr() as u64,
            prog_flags: BPF_F_SLEEPABLE,
            ..Default::default()
        };
        let fd = sys_bpf(BPF_PROG_LOAD, &mut attr);
        if fd < 0 {
            let err = std::io::Error::last_os_error();
            let text = String::from_utf8_lossy(&log);
            // The error is the last line before the closing statistics.
            let last = text
                .trim_end_matches('\0')
                .lines()
                .rev()
                .find(|l| !l.starts_with("processed ") && !l.trim().is_empty())
                .unwrap_or("")
                .to_string();
            return Outcome::Unsupported(format!("kernel refused the program ({err}): {last}"));
        }
        // A syscall program's test run writes the context back into ctx_in (and
        // refuses ctx_out).
        let mut ctx = case.mem.clone();
        let mut run = TestRunAttr {
            prog_fd: fd as u32,
            ctx_size_in: ctx.len() as u32,
            ctx_in: ctx.as_mut_ptr() as u64,
            ..Default::default()
        };
        let r = sys_bpf(BPF_PROG_TEST_RUN, &mut run);
        let err = std::io::Error::last_os_error();
        // SAFETY: closing the fd the load returned.
        unsafe { libc::close(fd as i32) };
        if r < 0 {
            return Outcome::Unsupported(format!("kernel test run failed: {err}"));
        }
        Outcome::Ok {
            r0: run.retval as u64,
            mem: ctx,
        }
    }
}

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_MAP_TYPE_ARRAY: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    _rest: [u32; 27],
}

/// The host kernel's verifier as a judge of verdicts: XDP programs over one
/// array map whose value the programs address with `BPF_PSEUDO_MAP_VALUE`
/// (the soundness generator's global, `value_size` bytes).
pub struct KernelVerifier {
    map_fd: i32,
}

impl KernelVerifier {
    /// Creates the map; `Err` says why the host kernel cannot judge.
    pub fn new(value_size: u32) -> Result<KernelVerifier, String> {
        let mut attr = MapCreateAttr {
            map_type: BPF_MAP_TYPE_ARRAY,
            key_size: 4,
            value_size,
            max_entries: 1,
            ..Default::default()
        };
        let fd = sys_bpf(BPF_MAP_CREATE, &mut attr);
        if fd < 0 {
            return Err(format!(
                "the host kernel does not create BPF maps here: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(KernelVerifier { map_fd: fd as i32 })
    }

    /// Loads `insns` (map references: `BPF_PSEUDO_MAP_VALUE` slots, whatever
    /// their id) as a privileged XDP program with `prog_flags`: `Ok` if the
    /// kernel accepts, else the kernel's last log line.
    pub fn verdict(&self, insns: &[bpfvm_isa::Insn], prog_flags: u32) -> Result<(), String> {
        let mut v = insns.to_vec();
        for x in v.iter_mut() {
            if x.code == 0x18 && matches!(x.src_reg, 1 | 2) {
                x.imm = self.map_fd;
            }
        }
        let code = insns_to_bytes(&v);
        let license = b"GPL\0";
        let mut log = vec![0u8; 1 << 16];
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt: v.len() as u32,
            insns: code.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 1,
            log_size: log.len() as u32,
            log_buf: log.as_mut_ptr() as u64,
            prog_flags,
            ..Default::default()
        };
        let fd = sys_bpf(BPF_PROG_LOAD, &mut attr);
        if fd >= 0 {
            // SAFETY: closing the fd the load returned.
            unsafe { libc::close(fd as i32) };
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ENOSPC) {
            // The log, not the program, overflowed (long loops): the verdict
            // comes from a load without a log.
            attr.log_level = 0;
            attr.log_size = 0;
            attr.log_buf = 0;
            let fd = sys_bpf(BPF_PROG_LOAD, &mut attr);
            if fd >= 0 {
                // SAFETY: closing the fd the load returned.
                unsafe { libc::close(fd as i32) };
                return Ok(());
            }
        }
        let text = String::from_utf8_lossy(&log);
        let last = text
            .trim_end_matches('\0')
            .lines()
            .rev()
            .find(|l| !l.starts_with("processed ") && !l.trim().is_empty())
            .unwrap_or("")
            .to_string();
        Err(format!("{err}: {last}"))
    }
}

impl Drop for KernelVerifier {
    fn drop(&mut self) {
        // SAFETY: closing the map fd `new` created.
        unsafe { libc::close(self.map_fd) };
    }
}
