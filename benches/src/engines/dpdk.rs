//! DPDK's librte_bpf (22.11, Debian's libdpdk-dev): its interpreter
//! (`rte_bpf_exec`) and its x86-64 JIT, behind the `dpdk` feature.
//!
//! DPDK runs the `-mcpu=v2` objects: 22.11 has no BPF_JMP32 class. Its loader,
//! `rte_bpf_load`, validates first, and the validator refuses every program with
//! a loop (a back edge in the control-flow graph), which is every compute
//! program here. The harness asks `rte_bpf_load` anyway and records what the
//! validator said; when it refuses, the harness builds the `struct rte_bpf`
//! itself (the layout of lib/bpf/bpf_impl.h in 22.11) and calls the internal
//! JIT entry point `bpf_jit`, which the static archive exports, and
//! `rte_bpf_exec` for the interpreter. DPDK's interpreter sets only r1, so the
//! program runs behind [`len_prologue`]. No EAL initialisation is needed:
//! librte_bpf only maps memory and logs.
//!
//! Packet programs get the harness's maps ([`hostmaps`]): their map references
//! relocated to the maps' addresses, `call 1` (bpf_map_lookup_elem) turned into
//! `call 0`, the index of the one external function DPDK is given (`xsym`),
//! and r1 = an `xdp_md` below 4 GiB.

use crate::engine::{time_loop, Engine, Runner, Skip};
use crate::engines::hostmaps::{self, LowPage, PacketSetup};
use crate::programs::{len_prologue, Block, Input, Kind, Program};
use bpfvm_isa::uapi::BPF_FUNC_MAP_LOOKUP_ELEM;
use bpfvm_isa::{insns_to_bytes, Insn};
use std::ffi::{c_int, c_void};
use std::io::{Read, Seek};
use std::os::fd::FromRawFd;
use std::time::Instant;

const RTE_BPF_ARG_PTR: u32 = 0x10;
/// MAX_BPF_STACK_SIZE in bpf_impl.h.
const STACK_SIZE: u32 = 512;

#[repr(C)]
struct RteBpfArg {
    ty: u32,
    size: usize,
    buf_size: usize,
}

#[repr(C)]
struct RteBpfPrm {
    ins: *const u8,
    nb_ins: u32,
    xsym: *const c_void,
    nb_xsym: u32,
    prog_arg: RteBpfArg,
}

/// `struct rte_bpf_xsym` with its union's function member (the larger one).
#[repr(C)]
struct RteBpfXsym {
    name: *const std::ffi::c_char,
    ty: u32,
    val: unsafe extern "C" fn(u64, u64, u64, u64, u64) -> u64,
    nb_args: u32,
    args: [RteBpfArg; 5],
    ret: RteBpfArg,
}

const RTE_BPF_XTYPE_FUNC: u32 = 0;
const RTE_BPF_ARG_RAW: u32 = 1;

unsafe extern "C" fn lookup_xsym(map: u64, key: u64, _: u64, _: u64, _: u64) -> u64 {
    // SAFETY: given only to programs whose map references PacketSetup
    // relocated to live HostMaps; the key is on the program's stack.
    unsafe { hostmaps::map_lookup_elem(map, key) }
}

#[repr(C)]
struct RteBpfJit {
    func: Option<unsafe extern "C" fn(*mut c_void) -> u64>,
    sz: usize,
}

/// `struct rte_bpf` (lib/bpf/bpf_impl.h, DPDK 22.11).
#[repr(C)]
struct RteBpf {
    prm: RteBpfPrm,
    jit: RteBpfJit,
    sz: usize,
    stack_sz: u32,
}

extern "C" {
    fn rte_bpf_load(prm: *const RteBpfPrm) -> *mut RteBpf;
    fn rte_bpf_destroy(bpf: *mut RteBpf);
    fn rte_bpf_exec(bpf: *const RteBpf, ctx: *mut c_void) -> u64;
    fn rte_bpf_get_jit(bpf: *const RteBpf, jit: *mut RteBpfJit) -> c_int;
    /// Internal (lib/bpf/bpf_impl.h): JIT-compiles `bpf->prm.ins` into `bpf->jit`.
    fn bpf_jit(bpf: *mut RteBpf) -> c_int;
    fn rte_openlog_stream(f: *mut libc::FILE) -> c_int;
}

pub struct Dpdk {
    pub jit: bool,
}

/// How the program was loaded.
enum Loaded {
    /// `rte_bpf_load` accepted it.
    Validated(*mut RteBpf),
    /// Built by the harness; `_insns` backs `bpf.prm.ins`.
    Bypassed { bpf: Box<RteBpf>, _insns: Vec<u8> },
}

impl Loaded {
    fn ptr(&self) -> *const RteBpf {
        match self {
            Loaded::Validated(p) => *p,
            Loaded::Bypassed { bpf, .. } => &**bpf,
        }
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        match self {
            // SAFETY: returned by rte_bpf_load, destroyed once.
            Loaded::Validated(p) => unsafe { rte_bpf_destroy(*p) },
            Loaded::Bypassed { bpf, .. } => {
                if let Some(f) = bpf.jit.func {
                    // SAFETY: the JIT's own mapping, unmapped once (what
                    // rte_bpf_destroy does for it).
                    unsafe { libc::munmap(f as *mut c_void, bpf.jit.sz) };
                }
            }
        }
    }
}

/// Runs `f` with DPDK's log going to a temporary file; returns what was logged.
fn capture_log<T>(f: impl FnOnce() -> T) -> (T, String) {
    // SAFETY: tmpfile has no preconditions; the stream is handed to DPDK and
    // taken back (stderr) before it is closed.
    let file = unsafe { libc::tmpfile() };
    if file.is_null() {
        return (f(), String::new());
    }
    unsafe { rte_openlog_stream(file) };
    let r = f();
    let mut text = String::new();
    unsafe {
        libc::fflush(file);
        rte_openlog_stream(std::ptr::null_mut());
        let fd = libc::dup(libc::fileno(file));
        libc::fclose(file);
        if fd >= 0 {
            let mut fh = std::fs::File::from_raw_fd(fd);
            let _ = fh.rewind();
            let _ = fh.read_to_string(&mut text);
        }
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // "validate(0x7ffc...): ..." -> "validate: ...": the address is noise.
    let text = match (text.find("(0x"), text.find(')')) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &text[..a], &text[b + 1..]),
        _ => text,
    };
    (r, text)
}

impl Engine for Dpdk {
    fn name(&self) -> &'static str {
        if self.jit {
            "dpdk-jit"
        } else {
            "dpdk-interp"
        }
    }

    fn prepare(&self, prog: &Program, input: &Input) -> Result<Box<dyn Runner>, Skip> {
        if prog.cpu != 2 {
            return Err(Skip::new(
                "DPDK 22.11 runs -mcpu=v2 code only (no BPF_JMP32 class, no v4 instructions): see the /v2 rows",
            ));
        }
        if prog.kind == Kind::Packet {
            return prepare_packet(prog, input, self.jit);
        }
        let body = Program::insns_from(&prog.object_path(), prog.function)
            .map_err(|e| Skip::from_err(&e))?;
        // BPF_JMP | BPF_CALL with src_reg BPF_PSEUDO_CALL: DPDK would take it for
        // a call to an external function and crash.
        if body.iter().any(|i| i.code == 0x85 && i.src_reg == 1) {
            return Err(Skip::new(
                "DPDK 22.11 has no BPF-to-BPF calls (it takes every call for an external function)",
            ));
        }
        let mut insns = len_prologue().to_vec();
        insns.extend(body);
        let block = Block::new(&input.data);
        let l = load(&insns, 8 + block.payload_len(), self.jit, &[])?;
        Ok(Box::new(DpdkRunner {
            loaded: l.loaded,
            block,
            jit: l.jit,
            compile_ns: l.compile_ns,
            validator: l.validator,
        }))
    }
}

type JitFn = unsafe extern "C" fn(*mut c_void) -> u64;

/// A program in librte_bpf.
struct Prepared {
    loaded: Loaded,
    /// What rte_bpf_load said when it refused the program (None: accepted).
    validator: Option<String>,
    /// rte_bpf_load's time (validate + JIT) or bpf_jit's.
    compile_ns: u64,
    jit: Option<JitFn>,
}

/// Loads `insns` (whose r1 points at `arg_size` bytes; external functions
/// `xsym`, which must outlive the result) with rte_bpf_load, or past its
/// validator when it refuses them; JIT-compiles them if `jit`.
fn load(insns: &[Insn], arg_size: usize, jit: bool, xsym: &[RteBpfXsym]) -> Result<Prepared, Skip> {
    let bytes = insns_to_bytes(insns);
    let prm = RteBpfPrm {
        ins: bytes.as_ptr(),
        nb_ins: insns.len() as u32,
        xsym: if xsym.is_empty() {
            std::ptr::null()
        } else {
            xsym.as_ptr() as *const c_void
        },
        nb_xsym: xsym.len() as u32,
        prog_arg: RteBpfArg {
            ty: RTE_BPF_ARG_PTR,
            size: arg_size,
            buf_size: 0,
        },
    };
    let start = Instant::now();
    // SAFETY: prm points at valid instructions; rte_bpf_load copies them.
    let (bpf, log) = capture_log(|| unsafe { rte_bpf_load(&prm) });
    let mut compile_ns = start.elapsed().as_nanos() as u64;
    let (loaded, validator) = if !bpf.is_null() {
        (Loaded::Validated(bpf), None)
    } else {
        let mut own = Box::new(RteBpf {
            prm,
            jit: RteBpfJit { func: None, sz: 0 },
            sz: 0,
            stack_sz: STACK_SIZE,
        });
        if jit {
            let start = Instant::now();
            // SAFETY: own is a complete rte_bpf whose instructions stay alive
            // (moved into Loaded with it).
            let rc = unsafe { bpf_jit(&mut *own) };
            compile_ns = start.elapsed().as_nanos() as u64;
            if rc != 0 || own.jit.func.is_none() {
                return Err(Skip::new(format!(
                    "bpf_jit fails ({rc}); rte_bpf_load said: {log}"
                )));
            }
        }
        (
            Loaded::Bypassed {
                bpf: own,
                _insns: bytes,
            },
            Some(log),
        )
    };
    let mut j = RteBpfJit { func: None, sz: 0 };
    if jit {
        // SAFETY: a loaded program and a place for the result.
        if unsafe { rte_bpf_get_jit(loaded.ptr(), &mut j) } != 0 {
            return Err(Skip::new("rte_bpf_get_jit fails"));
        }
        if j.func.is_none() {
            return Err(Skip::new("DPDK's JIT produced no code"));
        }
    }
    Ok(Prepared {
        loaded,
        validator,
        compile_ns,
        jit: j.func,
    })
}

fn prepare_packet(prog: &Program, input: &Input, jit: bool) -> Result<Box<dyn Runner>, Skip> {
    let mut setup = PacketSetup::new(prog, &prog.object_path(), input)?;
    for i in setup.insns.iter_mut() {
        // BPF_JMP | BPF_CALL to a helper: DPDK's imm is an index into xsym.
        if i.code == 0x85 && i.src_reg == 0 {
            if i.imm != BPF_FUNC_MAP_LOOKUP_ELEM {
                return Err(Skip::new(format!(
                    "calls helper {}, which the harness does not provide",
                    i.imm
                )));
            }
            i.imm = 0;
        }
    }
    let arg = |ty, size| RteBpfArg {
        ty,
        size,
        buf_size: 0,
    };
    let xsym = Box::new([RteBpfXsym {
        name: c"bpf_map_lookup_elem".as_ptr(),
        ty: RTE_BPF_XTYPE_FUNC,
        val: lookup_xsym,
        nb_args: 2,
        args: [
            arg(RTE_BPF_ARG_RAW, 8),
            arg(RTE_BPF_ARG_PTR, 4),
            arg(0, 0),
            arg(0, 0),
            arg(0, 0),
        ],
        ret: arg(RTE_BPF_ARG_PTR, 16),
    }]);
    let l = load(&setup.insns, LowPage::CTX_LEN, jit, &*xsym)?;
    Ok(Box::new(DpdkPacket {
        l,
        _xsym: xsym,
        setup,
    }))
}

struct DpdkPacket {
    l: Prepared,
    /// Referenced by the loaded program.
    _xsym: Box<[RteBpfXsym; 1]>,
    /// Keeps the maps and the packet alive.
    setup: PacketSetup,
}

impl Runner for DpdkPacket {
    fn compile_ns(&self) -> Option<u64> {
        self.l.jit.is_some().then_some(self.l.compile_ns)
    }

    fn run(&mut self, iters: u64) -> Result<(u64, f64), Skip> {
        let ctx = self.setup.packet.ctx() as *mut c_void;
        let bpf = self.l.loaded.ptr();
        match self.l.jit {
            // SAFETY: the program reads the packet after checking data_end and
            // the map values the helper returns.
            Some(f) => time_loop(iters, || {
                Ok(unsafe { f(std::hint::black_box(ctx)) } as u32 as u64)
            }),
            None => time_loop(iters, || {
                Ok(unsafe { rte_bpf_exec(bpf, std::hint::black_box(ctx)) } as u32 as u64)
            }),
        }
    }

    fn note(&self) -> Option<String> {
        Some("packet programs: the harness's maps and bpf_map_lookup_elem (hostmaps.rs) as external function 0, xdp_md below 4 GiB".into())
    }

    fn detail(&self) -> Option<String> {
        if self.l.jit.is_some() {
            return None;
        }
        Some(match &self.l.validator {
            None => "rte_bpf_load accepts it".into(),
            Some(log) => format!("rte_bpf_load refuses it: \"{log}\""),
        })
    }
}

struct DpdkRunner {
    loaded: Loaded,
    block: Block,
    jit: Option<JitFn>,
    compile_ns: u64,
    validator: Option<String>,
}

impl Runner for DpdkRunner {
    fn compile_ns(&self) -> Option<u64> {
        self.jit.is_some().then_some(self.compile_ns)
    }

    fn run(&mut self, iters: u64) -> Result<(u64, f64), Skip> {
        let ctx = self.block.with_header().as_mut_ptr() as *mut c_void;
        let bpf = self.loaded.ptr();
        match self.jit {
            // SAFETY: the program touches only its block (its result is
            // checked against native's).
            Some(f) => time_loop(iters, || Ok(unsafe { f(std::hint::black_box(ctx)) })),
            None => time_loop(iters, || {
                Ok(unsafe { rte_bpf_exec(bpf, std::hint::black_box(ctx)) })
            }),
        }
    }

    fn note(&self) -> Option<String> {
        Some(format!(
            "DPDK {}; runs the -mcpu=v2 objects (22.11 has no JMP32) behind a 2-insn prologue that loads r2; \
             programs rte_bpf_load refuses (see the per-program notes; its validator refuses any back edge, \
             i.e. every loop) run with the validator bypassed, through DPDK's internal bpf_jit and rte_bpf_exec",
            env!("BENCH_DPDK_VERSION")
        ))
    }

    fn detail(&self) -> Option<String> {
        // Once per program (the interpreter's cell), not again for the JIT.
        if self.jit.is_some() {
            return None;
        }
        Some(match &self.validator {
            None => "rte_bpf_load accepts it".into(),
            Some(log) => format!("rte_bpf_load refuses it: \"{log}\""),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfvm_isa::asm::assemble;

    fn run(l: &Prepared, mem: &mut [u8]) -> u64 {
        let ctx = mem.as_mut_ptr() as *mut c_void;
        match l.jit {
            // SAFETY: the test programs read at most 8 bytes of mem.
            Some(f) => unsafe { f(ctx) },
            None => unsafe { rte_bpf_exec(l.loaded.ptr(), ctx) },
        }
    }

    /// What the notes claim about DPDK's validator: straight-line code is
    /// accepted, a bounded loop is refused as a loop, and the bypass runs it.
    #[test]
    fn validator_refuses_loops_only() {
        let mut mem = 5u64.to_le_bytes();
        let straight = assemble("ldxdw %r0, [%r1]\nadd %r0, 37\nexit").expect("assembles");
        let looping = assemble(
            "mov %r0, 0\nldxdw %r2, [%r1]\nL: add %r0, 3\nsub %r2, 1\njne %r2, 0, L\nexit",
        )
        .expect("assembles");
        for jit in [false, true] {
            let l = load(&straight, 8, jit, &[]).expect("loads");
            assert!(
                l.validator.is_none(),
                "straight-line code refused: {:?}",
                l.validator
            );
            assert_eq!(run(&l, &mut mem), 42);
            let l = load(&looping, 8, jit, &[]).expect("loads past the validator");
            let said = l.validator.clone().expect("rte_bpf_load refuses a loop");
            assert!(said.contains("loop"), "{said}");
            assert_eq!(run(&l, &mut mem), 15);
        }
    }
}
