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
use std::time::Instant;

use bpfvm_isa::consts::BPF_PSEUDO_MAP_FD;
use bpfvm_isa::uapi::{BPF_ANY, BPF_PROG_TYPE_XDP};
use bpfvm_testsupport::{self as host, Fd, MapCreate, ProgLoad, TestRun};

/// The largest `data_in` an XDP test run takes (4096 - 256 - 320).
const XDP_MAX_DATA_IN: usize = 3520;

pub struct Kernel;

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
        let obj = bpfvm::Object::open(&path).map_err(|e| Skip::from_err(&e))?;
        let p = obj
            .programs
            .iter()
            .find(|p| p.name == function)
            .ok_or_else(|| Skip::new(format!("no program {function} in {}", path.display())))?;
        let mut maps: Vec<(String, Fd)> = Vec::new();
        for def in &obj.maps {
            let fd = host::map_create(&MapCreate {
                map_type: def.map_type,
                key_size: def.key_size,
                value_size: def.value_size,
                max_entries: def.max_entries,
                map_flags: def.map_flags,
                name: def.name.clone(),
                ..MapCreate::default()
            })
            .map_err(|e| Skip::new(format!("BPF_MAP_CREATE {}: {e}", def.name)))?;
            maps.push((def.name.clone(), fd));
        }
        let mut insns = p.insns.clone();
        for r in &p.map_relocs {
            let fd = maps
                .get(r.map_idx)
                .ok_or_else(|| Skip::new("map relocation out of range"))?
                .1
                .raw();
            let i = insns
                .get_mut(r.insn_idx)
                .ok_or_else(|| Skip::new("relocation out of range"))?;
            i.src_reg = BPF_PSEUDO_MAP_FD;
            i.imm = fd;
        }
        let load = ProgLoad {
            prog_type: BPF_PROG_TYPE_XDP,
            insns: &insns,
            name: function,
            log_level: 1,
            log_size: 1 << 20,
            ..ProgLoad::default()
        };
        let start = Instant::now();
        let loaded = host::prog_load(&load);
        let load_ns = start.elapsed().as_nanos() as u64;
        let prog_fd = match loaded {
            Ok(l) => l.fd.ok_or_else(|| Skip::new("BPF_PROG_LOAD gave no fd"))?,
            Err(e) => {
                let last: Vec<&str> = e.log.lines().rev().take(2).collect();
                return Err(Skip::new(format!(
                    "the verifier refuses it ({}): {}",
                    std::io::Error::from_raw_os_error(e.errno),
                    last.into_iter().rev().collect::<Vec<_>>().join(" / ")
                )));
            }
        };
        for (map, key, value) in &input.map_entries {
            let fd = &maps
                .iter()
                .find(|(n, _)| n == map)
                .ok_or_else(|| Skip::new(format!("no map {map}")))?
                .1;
            host::map_update(fd, key, value, BPF_ANY)
                .map_err(|e| Skip::new(format!("BPF_MAP_UPDATE_ELEM {map}: {e}")))?;
        }
        Ok(Box::new(KernelRunner {
            prog: prog_fd,
            _maps: maps,
            run: TestRun {
                data_in: data,
                ..TestRun::default()
            },
            load_ns,
        }))
    }
}

struct KernelRunner {
    prog: Fd,
    _maps: Vec<(String, Fd)>,
    run: TestRun,
    load_ns: u64,
}

impl Runner for KernelRunner {
    fn compile_ns(&self) -> Option<u64> {
        Some(self.load_ns)
    }

    fn run(&mut self, iters: u64) -> Result<(u64, f64), Skip> {
        let repeat = iters.clamp(1, u32::MAX as u64) as u32;
        self.run.repeat = repeat;
        let out = host::test_run(&self.prog, &mut self.run)
            .map_err(|e| Skip::new(format!("BPF_PROG_TEST_RUN: {e}")))?;
        let (retval, duration) = (out.retval, out.duration);
        Ok((retval as u64, duration as f64 * repeat as f64))
    }

    fn note(&self) -> Option<String> {
        Some("BPF_PROG_LOAD as XDP + BPF_PROG_TEST_RUN repeat N; time = the kernel's duration (integer ns, syscall excluded); compile = BPF_PROG_LOAD (verifier + JIT)".into())
    }
}
