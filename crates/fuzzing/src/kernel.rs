//! The host kernel as a differential engine: a generated program is loaded as a
//! sleepable `BPF_PROG_TYPE_SYSCALL` program (r1 = its context, which is the memory
//! block) and run once with BPF_PROG_TEST_RUN. Programs the kernel's verifier
//! refuses are "unsupported" here (it is stricter than the generator), not
//! mismatches. Needs root and a BPF-enabled kernel; [`KernelEngine::probe`] says
//! whether they are there.

use crate::{Case, DiffEngine, Outcome};
use bpfvm_isa::uapi::{
    BPF_F_SLEEPABLE, BPF_MAP_TYPE_ARRAY, BPF_PROG_TYPE_SYSCALL, BPF_PROG_TYPE_XDP,
};
use bpfvm_testsupport::{self as host, MapCreate, ProgLoad, TestRun};

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
        let load = ProgLoad {
            prog_type: BPF_PROG_TYPE_SYSCALL,
            insns: &case.insns,
            log_level: 1,
            log_size: 4096,
            prog_flags: BPF_F_SLEEPABLE,
            ..ProgLoad::default()
        };
        let prog = match host::prog_load(&load) {
            Ok(p) => p,
            Err(e) => {
                let err = std::io::Error::from_raw_os_error(e.errno);
                return Outcome::Unsupported(format!(
                    "kernel refused the program ({err}): {}",
                    e.error_line()
                ));
            }
        };
        let Some(fd) = prog.fd else {
            return Outcome::Unsupported("kernel gave no program fd".into());
        };
        // A syscall program's test run writes the context back into ctx_in (and
        // refuses ctx_out).
        let mut run = TestRun {
            ctx_in: case.mem.clone(),
            ..TestRun::default()
        };
        match host::test_run(&fd, &mut run) {
            Ok(out) => Outcome::Ok {
                r0: out.retval as u64,
                mem: run.ctx_in,
            },
            Err(err) => Outcome::Unsupported(format!("kernel test run failed: {err}")),
        }
    }
}

/// The host kernel's verifier as a judge of verdicts: XDP programs over one
/// array map whose value the programs address with `BPF_PSEUDO_MAP_VALUE`
/// (the soundness generator's global, `value_size` bytes).
pub struct KernelVerifier {
    map: host::Fd,
}

impl KernelVerifier {
    /// Creates the map; `Err` says why the host kernel cannot judge.
    pub fn new(value_size: u32) -> Result<KernelVerifier, String> {
        let map = host::map_create(&MapCreate {
            map_type: BPF_MAP_TYPE_ARRAY,
            key_size: 4,
            value_size,
            max_entries: 1,
            ..MapCreate::default()
        })
        .map_err(|e| format!("the host kernel does not create BPF maps here: {e}"))?;
        Ok(KernelVerifier { map })
    }

    /// Loads `insns` (map references: `BPF_PSEUDO_MAP_VALUE` slots, whatever
    /// their id) as a privileged XDP program with `prog_flags`: `Ok` if the
    /// kernel accepts, else the kernel's last log line.
    pub fn verdict(&self, insns: &[bpfvm_isa::Insn], prog_flags: u32) -> Result<(), String> {
        let mut v = insns.to_vec();
        for x in v.iter_mut() {
            if x.code == 0x18 && matches!(x.src_reg, 1 | 2) {
                x.imm = self.map.raw();
            }
        }
        let mut load = ProgLoad {
            prog_type: BPF_PROG_TYPE_XDP,
            insns: &v,
            log_level: 1,
            log_size: 1 << 16,
            prog_flags,
            ..ProgLoad::default()
        };
        let e = match host::prog_load(&load) {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if e.errno == libc::ENOSPC {
            // The log, not the program, overflowed (long loops): the verdict
            // comes from a load without a log.
            load.log_level = 0;
            if host::prog_load(&load).is_ok() {
                return Ok(());
            }
        }
        Err(e.to_string())
    }
}
