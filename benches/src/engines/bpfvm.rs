//! bpfvm's interpreter: compute programs straight on `bpfvm::vm::VmProgram`
//! (unchecked mode is what a verified program gets; checked mode is shown in
//! the table only), packet programs through the bpfvm runtime's test run (maps
//! and helpers, checked mode, the same path as `bpfvm prog run`).
//!
//! [`BpfvmJit`]: bpfvm's x86-64 JIT (`VmProgram::jit`) on the compute
//! programs, the same path with the compile step timed; packet programs go
//! through [`RuntimePacket`] with the runtime's JIT switch on (array lookups
//! inline, hash lookups as direct calls, a repeated test run re-entering the
//! code without setting the run up again).

use crate::engine::{time_loop, Engine, Runner, Skip};
use crate::programs::{Block, Input, Kind, Program};
use bpfvm::vm::{JitOptions, JitProgram, LoadOptions, Region, RegionKind, RunOptions, VmProgram};
use bpfvm::{BpfCmd, BpfReply, LoadedObject, Object, Runtime, TestRunAttr};
use std::time::Instant;

/// `bpfvm-interp` (unchecked) or `bpfvm-interp-checked` (table only).
pub struct BpfvmInterp {
    pub checked: bool,
}

impl Engine for BpfvmInterp {
    fn name(&self) -> &'static str {
        if self.checked {
            "bpfvm-interp-checked"
        } else {
            "bpfvm-interp"
        }
    }

    fn in_report(&self) -> bool {
        !self.checked
    }

    fn prepare(&self, prog: &Program, input: &Input) -> Result<Box<dyn Runner>, Skip> {
        match prog.kind {
            Kind::Compute => {
                let insns = prog.insns().map_err(|e| Skip::from_err(&e))?;
                let start = Instant::now();
                let vm = VmProgram::new(&insns, &LoadOptions::default())
                    .map_err(|e| Skip::from_err(&e))?;
                let load_ns = start.elapsed().as_nanos() as u64;
                Ok(Box::new(Compute {
                    vm,
                    block: Block::new(&input.data),
                    checked: self.checked,
                    load_ns,
                }))
            }
            // The runtime's test run is checked mode already.
            Kind::Packet if self.checked => {
                Err(Skip::new("the runtime's test run is always checked mode"))
            }
            Kind::Packet => Ok(Box::new(RuntimePacket::load(prog, input, false)?)),
        }
    }
}

/// `bpfvm-jit` (unchecked, no instruction metering: what a verified program
/// gets) or `bpfvm-jit-checked` (table only: checked, metering on, the JIT's
/// defaults).
pub struct BpfvmJit {
    pub checked: bool,
}

impl Engine for BpfvmJit {
    fn name(&self) -> &'static str {
        if self.checked {
            "bpfvm-jit-checked"
        } else {
            "bpfvm-jit"
        }
    }

    fn in_report(&self) -> bool {
        !self.checked
    }

    fn prepare(&self, prog: &Program, input: &Input) -> Result<Box<dyn Runner>, Skip> {
        if !cfg!(target_arch = "x86_64") {
            return Err(Skip::new("bpfvm's JIT emits x86-64 code"));
        }
        if prog.kind == Kind::Packet {
            if self.checked {
                return Err(Skip::new(
                    "the runtime JIT-compiles verified programs with the verifier's proofs, not in checked mode",
                ));
            }
            return Ok(Box::new(RuntimePacket::load(prog, input, true)?));
        }
        let insns = prog.insns().map_err(|e| Skip::from_err(&e))?;
        let vm = VmProgram::new(&insns, &LoadOptions::default()).map_err(|e| Skip::from_err(&e))?;
        let opts = if self.checked {
            JitOptions::checked()
        } else {
            // SAFETY: the compute programs touch only their block (checked mode
            // and every other engine agree on their results).
            unsafe { JitOptions::unchecked() }.metering(false)
        };
        let start = Instant::now();
        let jit = vm.jit(&opts).map_err(|e| Skip::from_err(&e))?;
        let compile_ns = start.elapsed().as_nanos() as u64;
        Ok(Box::new(JitCompute {
            jit,
            block: Block::new(&input.data),
            checked: self.checked,
            compile_ns,
        }))
    }
}

struct JitCompute {
    jit: JitProgram,
    block: Block,
    checked: bool,
    compile_ns: u64,
}

impl Runner for JitCompute {
    fn compile_ns(&self) -> Option<u64> {
        (!self.checked).then_some(self.compile_ns)
    }

    fn note(&self) -> Option<String> {
        Some(if self.checked {
            "JitOptions::checked() (every access checked, instruction metering on); shown in the table only".into()
        } else {
            "JitOptions::unchecked().metering(false) (what a verified program gets); compile = VmProgram::jit after the pre-decode".into()
        })
    }

    fn run(&mut self, iters: u64) -> Result<(u64, f64), Skip> {
        let ptr = self.block.payload_ptr() as u64;
        let len = self.block.payload_len() as u64;
        let jit = &self.jit;
        let checked = self.checked;
        time_loop(iters, || {
            let mut opts = RunOptions::new().args([ptr, len, 0, 0, 0]);
            if checked {
                opts = opts.region(Region::new(ptr, len, true, RegionKind::Mem));
            }
            jit.run(opts).map(|r| r.r0).map_err(|e| Skip::from_err(&e))
        })
    }
}

struct Compute {
    vm: VmProgram,
    block: Block,
    checked: bool,
    load_ns: u64,
}

impl Runner for Compute {
    fn note(&self) -> Option<String> {
        Some(if self.checked {
            "checked mode (VmProgram::run: every load and store checked against the run's memory map, what an unverified program gets); shown in the table only, not in report.json".into()
        } else {
            "compute programs: VmProgram::run_unchecked (what a verified program gets), r1 = block, r2 = length".into()
        })
    }

    fn compile_ns(&self) -> Option<u64> {
        // The same pre-decode in both modes: reported once.
        (!self.checked).then_some(self.load_ns)
    }

    fn run(&mut self, iters: u64) -> Result<(u64, f64), Skip> {
        let ptr = self.block.payload_ptr() as u64;
        let len = self.block.payload_len() as u64;
        let vm = &self.vm;
        if self.checked {
            time_loop(iters, || {
                let opts = RunOptions::new()
                    .args([ptr, len, 0, 0, 0])
                    .region(Region::new(ptr, len, true, RegionKind::Mem));
                vm.run(opts).map(|r| r.r0).map_err(|e| Skip::from_err(&e))
            })
        } else {
            time_loop(iters, || {
                let opts = RunOptions::new().args([ptr, len, 0, 0, 0]);
                // SAFETY: the compute programs touch only their block (checked
                // mode and every other engine agree on their results).
                unsafe { vm.run_unchecked(opts) }
                    .map(|r| r.r0)
                    .map_err(|e| Skip::from_err(&e))
            })
        }
    }
}

/// A packet program loaded into a bpfvm runtime.
pub struct RuntimePacket {
    rt: Runtime,
    /// Holds the program and its maps (the runtime frees what nothing holds).
    _loaded: LoadedObject,
    prog_id: u32,
    data: Vec<u8>,
    load_ns: u64,
    jit: bool,
}

impl RuntimePacket {
    /// `jit`: the runtime's JIT on (verified code, checks only where unproven) or
    /// off (the interpreter, checked).
    pub fn load(prog: &Program, input: &Input, jit: bool) -> Result<RuntimePacket, Skip> {
        let path = prog.object_path();
        let obj = Object::open(&path).map_err(|e| Skip::from_err(&e))?;
        let rt = Runtime::new();
        rt.set_jit(jit);
        let start = Instant::now();
        let loaded = rt
            .load_object(&obj, Some(prog.function))
            .map_err(|e| Skip::from_err(&e))?;
        let load_ns = start.elapsed().as_nanos() as u64;
        let fd = loaded.prog(prog.function).ok_or_else(|| {
            Skip::new(format!(
                "no program {} in {}",
                prog.function,
                path.display()
            ))
        })?;
        for (map, key, value) in &input.map_entries {
            let m = loaded
                .map(map)
                .ok_or_else(|| Skip::new(format!("no map {map}")))?;
            rt.map_update_elem(m, key, value, 0)
                .map_err(|e| Skip::from_err(&e))?;
        }
        Ok(RuntimePacket {
            prog_id: fd.id(),
            _loaded: loaded,
            rt,
            data: input.data.clone(),
            load_ns,
            jit,
        })
    }
}

impl Runner for RuntimePacket {
    fn compile_ns(&self) -> Option<u64> {
        Some(self.load_ns)
    }

    fn run(&mut self, iters: u64) -> Result<(u64, f64), Skip> {
        let repeat = iters.clamp(1, u32::MAX as u64) as u32;
        // Timed here in thread CPU time rather than with the runtime's
        // `duration` (wall clock, whole ns): the machine is shared. One call
        // runs `repeat` times, so the call's own cost is spread thin.
        let start = crate::engine::thread_cpu_ns();
        let reply = self
            .rt
            .bpf(BpfCmd::ProgTestRun(TestRunAttr {
                prog_id: self.prog_id,
                data_in: self.data.clone(),
                repeat,
                ..Default::default()
            }))
            .map_err(|e| Skip::from_err(&e))?;
        match reply {
            BpfReply::TestRun(r) => Ok((r.retval as u64, crate::engine::thread_cpu_ns() - start)),
            other => Err(Skip::new(format!("unexpected reply {other:?}"))),
        }
    }

    fn note(&self) -> Option<String> {
        Some(if self.jit {
            "packet programs: through the bpfvm runtime's BPF_PROG_TEST_RUN with repeat (verified at load; the JIT with the verifier's proofs, array-map lookups inline, hash-map lookups as direct calls; the run set up once and the code re-entered per repeat, as the kernel reuses its buffer; timed in thread CPU time around the call)".into()
        } else {
            "packet programs: through the bpfvm runtime's BPF_PROG_TEST_RUN with repeat (verified at load; the checked interpreter; maps and helpers; timed in thread CPU time around the call, context setup per run included)".into()
        })
    }
}
