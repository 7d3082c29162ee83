//! uBPF (iovisor/ubpf): its interpreter (`ubpf_exec`, bounds checks off, as a
//! verified program runs on bpfvm) and its x86-64 JIT (`ubpf_compile`), built
//! outside the project and linked when `BPFVM_BENCH_PEERS`
//! points at the result (cfg `bench_ubpf`). uBPF passes r1 = memory and
//! r2 = its length, so compute programs run unchanged; packet programs get the
//! harness's maps ([`hostmaps`]) with `bpf_map_lookup_elem` registered as
//! external function 1, and r1 = an `xdp_md` below 4 GiB.

use crate::engine::{time_loop, Engine, Runner, Skip};
use crate::engines::hostmaps::{self, LowPage, PacketSetup};
use crate::programs::{Block, Input, Kind, Program};
use bpfvm_isa::insns_to_bytes;
use std::ffi::{c_char, c_void, CStr};
use std::time::Instant;

#[repr(C)]
struct UbpfVm {
    _opaque: [u8; 0],
}

type JitFn = unsafe extern "C" fn(*mut c_void, usize) -> u64;
type ExtFn = unsafe extern "C" fn(u64, u64, u64, u64, u64) -> u64;

extern "C" {
    fn ubpf_create() -> *mut UbpfVm;
    fn ubpf_destroy(vm: *mut UbpfVm);
    fn ubpf_toggle_bounds_check(vm: *mut UbpfVm, enable: bool) -> bool;
    fn ubpf_register(vm: *mut UbpfVm, idx: u32, name: *const c_char, f: ExtFn) -> i32;
    fn ubpf_load(vm: *mut UbpfVm, code: *const c_void, len: u32, err: *mut *mut c_char) -> i32;
    fn ubpf_compile(vm: *mut UbpfVm, err: *mut *mut c_char) -> Option<JitFn>;
    fn ubpf_exec(vm: *const UbpfVm, mem: *mut c_void, len: usize, ret: *mut u64) -> i32;
}

unsafe extern "C" fn lookup(map: u64, key: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: registered only for programs whose map references PacketSetup
    // relocated to live HostMaps; the key is on the program's stack.
    unsafe { hostmaps::map_lookup_elem(map, key) }
}

/// uBPF's error message (malloc'ed by uBPF), freed here.
fn take_err(e: *mut c_char) -> String {
    if e.is_null() {
        return "no message".into();
    }
    // SAFETY: a NUL-terminated string uBPF allocated with malloc.
    let s = unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned();
    unsafe { libc::free(e as *mut c_void) };
    s
}

pub struct Ubpf {
    pub jit: bool,
}

struct Vm(*mut UbpfVm);

impl Drop for Vm {
    fn drop(&mut self) {
        // SAFETY: created by ubpf_create, destroyed once.
        unsafe { ubpf_destroy(self.0) };
    }
}

/// What the program's r1 points at.
enum Mem {
    Block(Block),
    Packet(PacketSetup),
}

struct UbpfRunner {
    vm: Vm,
    jit: Option<JitFn>,
    mem: Mem,
    compile_ns: u64,
}

impl Engine for Ubpf {
    fn name(&self) -> &'static str {
        if self.jit {
            "ubpf-jit"
        } else {
            "ubpf-interp"
        }
    }

    fn prepare(&self, prog: &Program, input: &Input) -> Result<Box<dyn Runner>, Skip> {
        if self.jit && !cfg!(target_arch = "x86_64") {
            return Err(Skip::new("the harness runs uBPF's x86-64 JIT only"));
        }
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
        let start = Instant::now();
        // SAFETY: plain constructor; checked for NULL.
        let vm = Vm(unsafe { ubpf_create() });
        if vm.0.is_null() {
            return Err(Skip::new("ubpf_create fails"));
        }
        // SAFETY: a live VM; the code is copied by ubpf_load.
        unsafe {
            ubpf_toggle_bounds_check(vm.0, false);
            if ubpf_register(vm.0, 1, c"bpf_map_lookup_elem".as_ptr(), lookup) != 0 {
                return Err(Skip::new("ubpf_register fails"));
            }
            let mut err = std::ptr::null_mut();
            if ubpf_load(
                vm.0,
                bytes.as_ptr() as *const c_void,
                bytes.len() as u32,
                &mut err,
            ) != 0
            {
                return Err(Skip::new(format!(
                    "ubpf_load refuses it: {}",
                    take_err(err)
                )));
            }
        }
        let jit = if self.jit {
            let mut err = std::ptr::null_mut();
            // SAFETY: a loaded VM.
            match unsafe { ubpf_compile(vm.0, &mut err) } {
                Some(f) => Some(f),
                None => {
                    return Err(Skip::new(format!(
                        "ubpf_compile refuses it: {}",
                        take_err(err)
                    )))
                }
            }
        } else {
            None
        };
        let compile_ns = start.elapsed().as_nanos() as u64;
        Ok(Box::new(UbpfRunner {
            vm,
            jit,
            mem,
            compile_ns,
        }))
    }
}

impl Runner for UbpfRunner {
    fn compile_ns(&self) -> Option<u64> {
        self.jit.is_some().then_some(self.compile_ns)
    }

    fn note(&self) -> Option<String> {
        Some(match self.mem {
            Mem::Block(_) => "uBPF (iovisor/ubpf, built outside the project): r1 = block, r2 = length; bounds checks off; compile = ubpf_load + ubpf_compile".into(),
            Mem::Packet(_) => "packet programs: the harness's maps and bpf_map_lookup_elem (hostmaps.rs) as external function 1, xdp_md below 4 GiB".into(),
        })
    }

    fn run(&mut self, iters: u64) -> Result<(u64, f64), Skip> {
        let (ptr, len, packet) = match &mut self.mem {
            Mem::Block(b) => (b.payload_ptr() as *mut c_void, b.payload_len(), false),
            Mem::Packet(s) => (s.packet.ctx() as *mut c_void, LowPage::CTX_LEN, true),
        };
        let fold = |r: u64| if packet { r as u32 as u64 } else { r };
        let vm = self.vm.0;
        match self.jit {
            // SAFETY: the program touches only its memory (every engine's
            // result is checked against native's).
            Some(f) => time_loop(iters, || {
                Ok(fold(unsafe { f(std::hint::black_box(ptr), len) }))
            }),
            None => time_loop(iters, || {
                let mut r = 0u64;
                // SAFETY: as above.
                if unsafe { ubpf_exec(vm, std::hint::black_box(ptr), len, &mut r) } != 0 {
                    return Err(Skip::new("ubpf_exec fails"));
                }
                Ok(fold(r))
            }),
        }
    }
}
