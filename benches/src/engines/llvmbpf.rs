//! llvmbpf (eunomia-bpf/llvmbpf, bpftime's JIT): BPF lifted to LLVM IR,
//! optimised at -O3 and compiled by LLVM 15 (Debian's llvm-15-dev). Built
//! outside the project (with a small C shim over its C++
//! API) and linked when `BPFVM_BENCH_PEERS` points at the result (cfg
//! `bench_llvmbpf`). The JIT'd function takes r1 = memory, r2 = its length;
//! packet programs get the harness's maps ([`hostmaps`]) with
//! `bpf_map_lookup_elem` as external function 1 (LD_IMM64 immediates are used
//! as addresses) and r1 = an `xdp_md` below 4 GiB.

use crate::engine::{time_loop, Engine, Runner, Skip};
use crate::engines::hostmaps::{self, LowPage, PacketSetup};
use crate::programs::{Block, Input, Kind, Program};
use bpfvm_isa::insns_to_bytes;
use std::ffi::{c_char, c_void};
use std::time::Instant;

type JitFn = unsafe extern "C" fn(*mut c_void, usize) -> u64;

extern "C" {
    fn bench_llvmbpf_new() -> *mut c_void;
    fn bench_llvmbpf_free(vm: *mut c_void);
    fn bench_llvmbpf_register(
        vm: *mut c_void,
        idx: usize,
        name: *const c_char,
        f: *const c_void,
    ) -> i32;
    fn bench_llvmbpf_load(
        vm: *mut c_void,
        code: *const c_void,
        len: usize,
        err: *mut c_char,
        n: usize,
    ) -> i32;
    fn bench_llvmbpf_compile(vm: *mut c_void, err: *mut c_char, n: usize) -> Option<JitFn>;
}

unsafe extern "C" fn lookup(map: u64, key: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: registered only for programs whose map references PacketSetup
    // relocated to live HostMaps; the key is on the program's stack.
    unsafe { hostmaps::map_lookup_elem(map, key) }
}

fn err_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

pub struct Llvmbpf;

struct Vm(*mut c_void);

impl Drop for Vm {
    fn drop(&mut self) {
        // SAFETY: made by bench_llvmbpf_new, freed once (with its code).
        unsafe { bench_llvmbpf_free(self.0) };
    }
}

enum Mem {
    Block(Block),
    Packet(PacketSetup),
}

struct LlvmRunner {
    /// Owns the compiled code.
    _vm: Vm,
    f: JitFn,
    mem: Mem,
    compile_ns: u64,
}

impl Engine for Llvmbpf {
    fn name(&self) -> &'static str {
        "llvmbpf-jit"
    }

    fn prepare(&self, prog: &Program, input: &Input) -> Result<Box<dyn Runner>, Skip> {
        let (insns, mem) = match prog.kind {
            Kind::Compute => (
                prog.insns().map_err(|e| Skip::from_err(&e))?,
                Mem::Block(Block::new(&input.data)),
            ),
            Kind::Packet => {
                let setup = PacketSetup::new(prog, &prog.object_path(), input)?;
                (setup.insns.clone(), Mem::Packet(setup))
            }
        };
        let bytes = insns_to_bytes(&insns);
        let mut err = vec![0u8; 512];
        let start = Instant::now();
        // SAFETY: plain constructor.
        let vm = Vm(unsafe { bench_llvmbpf_new() });
        // SAFETY: a live VM; load copies the code; err is a writable buffer.
        let f = unsafe {
            bench_llvmbpf_register(
                vm.0,
                1,
                c"bpf_map_lookup_elem".as_ptr(),
                lookup as *const c_void,
            );
            if bench_llvmbpf_load(
                vm.0,
                bytes.as_ptr() as *const c_void,
                bytes.len(),
                err.as_mut_ptr() as *mut c_char,
                err.len(),
            ) != 0
            {
                return Err(Skip::new(format!("llvmbpf refuses it: {}", err_text(&err))));
            }
            bench_llvmbpf_compile(vm.0, err.as_mut_ptr() as *mut c_char, err.len())
        };
        let compile_ns = start.elapsed().as_nanos() as u64;
        let f =
            f.ok_or_else(|| Skip::new(format!("llvmbpf cannot compile it: {}", err_text(&err))))?;
        Ok(Box::new(LlvmRunner {
            _vm: vm,
            f,
            mem,
            compile_ns,
        }))
    }
}

impl Runner for LlvmRunner {
    fn compile_ns(&self) -> Option<u64> {
        Some(self.compile_ns)
    }

    fn note(&self) -> Option<String> {
        Some(match self.mem {
            Mem::Block(_) => "llvmbpf (eunomia-bpf/llvmbpf on LLVM 15, -O3; built outside the project): r1 = block, r2 = length; compile = load + LLVM JIT".into(),
            Mem::Packet(_) => "packet programs: the harness's maps and bpf_map_lookup_elem (hostmaps.rs) as external function 1, xdp_md below 4 GiB".into(),
        })
    }

    fn run(&mut self, iters: u64) -> Result<(u64, f64), Skip> {
        let (ptr, len, packet) = match &mut self.mem {
            Mem::Block(b) => (b.payload_ptr() as *mut c_void, b.payload_len(), false),
            Mem::Packet(s) => (s.packet.ctx() as *mut c_void, LowPage::CTX_LEN, true),
        };
        let f = self.f;
        // SAFETY: the program touches only its memory (its result is checked
        // against native's).
        time_loop(iters, || {
            let r = unsafe { f(std::hint::black_box(ptr), len) };
            Ok(if packet { r as u32 as u64 } else { r })
        })
    }
}
