//! rbpf (crates.io `rbpf` 0.4): its interpreter and its x86-64 JIT. Compute
//! programs run through `EbpfVmRaw` (r1 = the memory block; r2 is not set, so
//! the program runs behind [`len_prologue`]). Packet programs run through
//! `EbpfVmMbuff` (r1 = the `xdp_md`, the frame as rbpf's packet memory) with
//! the harness's maps and `bpf_map_lookup_elem` registered as helper 1
//! ([`hostmaps`]); the map values are registered as allowed memory for the
//! interpreter's checks.

use crate::engine::{time_loop, Engine, Runner, Skip};
use crate::engines::hostmaps::{self, LowPage, PacketSetup};
use crate::programs::{len_prologue, Block, Input, Kind, Program};
use bpfvm_isa::insns_to_bytes;
use bpfvm_isa::uapi::BPF_FUNC_MAP_LOOKUP_ELEM;
use std::time::Instant;

pub struct Rbpf {
    pub jit: bool,
}

impl Engine for Rbpf {
    fn name(&self) -> &'static str {
        if self.jit {
            "rbpf-jit"
        } else {
            "rbpf-interp"
        }
    }

    fn prepare(&self, prog: &Program, input: &Input) -> Result<Box<dyn Runner>, Skip> {
        if self.jit && !cfg!(target_arch = "x86_64") {
            return Err(Skip::new("rbpf's JIT emits x86-64 code only"));
        }
        if prog.kind == Kind::Packet {
            return prepare_packet(prog, input, self.jit);
        }
        let mut insns = len_prologue().to_vec();
        insns.extend(prog.insns().map_err(|e| Skip::from_err(&e))?);
        // rbpf borrows the bytecode for the VM's lifetime; the harness keeps
        // every prepared program until it exits, so leaking it is simplest.
        let bytes: &'static [u8] = Box::leak(insns_to_bytes(&insns).into_boxed_slice());
        let start = Instant::now();
        let mut vm = rbpf::EbpfVmRaw::new(Some(bytes))
            .map_err(|e| Skip::new(format!("rbpf refuses it: {e}")))?;
        if self.jit {
            vm.jit_compile()
                .map_err(|e| Skip::new(format!("rbpf's JIT refuses it: {e}")))?;
        }
        let compile_ns = start.elapsed().as_nanos() as u64;
        Ok(Box::new(RbpfRunner {
            vm,
            block: Block::new(&input.data),
            jit: self.jit,
            compile_ns,
        }))
    }
}

struct RbpfRunner {
    vm: rbpf::EbpfVmRaw<'static>,
    block: Block,
    jit: bool,
    compile_ns: u64,
}

impl Runner for RbpfRunner {
    fn compile_ns(&self) -> Option<u64> {
        // The interpreter's load is only rbpf's verifier pass: not a compile.
        self.jit.then_some(self.compile_ns)
    }

    fn note(&self) -> Option<String> {
        Some("compute programs: EbpfVmRaw (r1 = block with an 8-byte length header, behind a 2-insn prologue that loads r2)".into())
    }

    fn run(&mut self, iters: u64) -> Result<(u64, f64), Skip> {
        let mem = self.block.with_header();
        let (ptr, len) = (mem.as_mut_ptr(), mem.len());
        let vm = &self.vm;
        let jit = self.jit;
        time_loop(iters, || {
            // SAFETY: the slice is the runner's block, alive and not otherwise
            // borrowed during the call; rbpf keeps no reference after it.
            let mem: &'static mut [u8] = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
            if jit {
                // SAFETY: the program touches only its block (every engine's
                // result is checked against native's).
                unsafe { vm.execute_program_jit(mem) }
            } else {
                vm.execute_program(mem)
            }
            .map_err(|e| Skip::new(format!("rbpf: {e}")))
        })
    }
}

/// Helper 1 for packet programs.
fn lookup_helper(map: u64, key: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: registered only for programs whose map references PacketSetup
    // relocated to live HostMaps; the key is on the program's stack.
    unsafe { hostmaps::map_lookup_elem(map, key) }
}

extern "C" fn lookup_c(map: u64, key: u64) -> u64 {
    lookup_helper(map, key, 0, 0, 0)
}

// rbpf 0.4's JIT calls helpers with the stack 8 bytes off the 16-byte alignment
// the System V ABI promises (compiled Rust then faults on an aligned SSE
// store), so its helper is this trampoline, which realigns the stack first.
#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".globl bench_aligned_lookup",
    "bench_aligned_lookup:",
    "push rbp",
    "mov rbp, rsp",
    "and rsp, -16",
    "call {f}",
    "mov rsp, rbp",
    "pop rbp",
    "ret",
    f = sym lookup_c,
);

#[cfg(target_arch = "x86_64")]
extern "C" {
    /// `lookup_c` behind a stack realignment (the global_asm above).
    fn bench_aligned_lookup(map: u64, key: u64, a3: u64, a4: u64, a5: u64) -> u64;
}

/// The helper for the JIT: the realigning trampoline.
#[cfg(target_arch = "x86_64")]
fn jit_helper() -> rbpf::ebpf::Helper {
    // SAFETY: rbpf's JIT only takes the function's address and calls it with
    // the System V convention, which the trampoline follows.
    unsafe {
        std::mem::transmute::<
            unsafe extern "C" fn(u64, u64, u64, u64, u64) -> u64,
            rbpf::ebpf::Helper,
        >(bench_aligned_lookup)
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn jit_helper() -> rbpf::ebpf::Helper {
    lookup_helper
}

fn prepare_packet(prog: &Program, input: &Input, jit: bool) -> Result<Box<dyn Runner>, Skip> {
    let setup = PacketSetup::new(prog, &prog.object_path(), input)?;
    let bytes: &'static [u8] = Box::leak(insns_to_bytes(&setup.insns).into_boxed_slice());
    let start = Instant::now();
    let mut vm = rbpf::EbpfVmMbuff::new(Some(bytes))
        .map_err(|e| Skip::new(format!("rbpf refuses it: {e}")))?;
    let helper: rbpf::ebpf::Helper = if jit { jit_helper() } else { lookup_helper };
    vm.register_helper(BPF_FUNC_MAP_LOOKUP_ELEM as u32, helper)
        .map_err(|e| Skip::new(format!("rbpf: {e}")))?;
    for m in &setup.maps {
        vm.register_allowed_memory(m.value_range());
    }
    if jit {
        vm.jit_compile()
            .map_err(|e| Skip::new(format!("rbpf's JIT refuses it: {e}")))?;
    }
    let compile_ns = start.elapsed().as_nanos() as u64;
    Ok(Box::new(RbpfPacket {
        vm,
        setup,
        jit,
        compile_ns,
    }))
}

struct RbpfPacket {
    vm: rbpf::EbpfVmMbuff<'static>,
    /// Keeps the maps and the packet alive.
    setup: PacketSetup,
    jit: bool,
    compile_ns: u64,
}

impl Runner for RbpfPacket {
    fn compile_ns(&self) -> Option<u64> {
        self.jit.then_some(self.compile_ns)
    }

    fn run(&mut self, iters: u64) -> Result<(u64, f64), Skip> {
        let page = &self.setup.packet;
        let (frame, len, ctx) = (page.frame_ptr(), page.frame_len(), page.ctx());
        let vm = &self.vm;
        let jit = self.jit;
        time_loop(iters, || {
            // SAFETY: both slices lie in the setup's page, alive for the call;
            // rbpf keeps no reference after it.
            let (mem, mbuff): (&mut [u8], &'static mut [u8]) = unsafe {
                (
                    std::slice::from_raw_parts_mut(frame, len),
                    std::slice::from_raw_parts_mut(ctx, LowPage::CTX_LEN),
                )
            };
            if jit {
                // SAFETY: the program reads the packet after checking
                // data_end and map values the helper returned.
                unsafe { vm.execute_program_jit(mem, mbuff) }
            } else {
                vm.execute_program(mem, mbuff)
            }
            .map(|r| r as u32 as u64)
            .map_err(|e| Skip::new(format!("rbpf: {e}")))
        })
    }

    fn note(&self) -> Option<String> {
        Some("packet programs: EbpfVmMbuff with the harness's maps and bpf_map_lookup_elem as helper 1 (hostmaps.rs: a Rust HashMap with FNV-1a for the hash map; the JIT calls it through a stack-realigning trampoline, see rbpf.rs), frame below 4 GiB for xdp_md's u32 pointers".into())
    }
}
