//! The interpreter: threaded code over the pre-decoded array. Every dispatch code
//! (one per opcode table row, [`Op`], plus the superinstructions the loader forms:
//! `mov`+ALU and `add`+branch pairs, indexed loads, loads and stores a verifier
//! proved, in-place map lookups) has its own handler function, the one
//! `match` arm of `step` for that code; a handler ends by calling the next
//! instruction's handler through a table, a tail call that LLVM compiles to a jump
//! in release builds, so each handler carries its own indirect jump
//! (`handlers_do_not_grow_the_stack` fails if one does not). Debug builds return
//! to a loop after each instruction instead.
//!
//! Handlers are generic over `CHECKED`: in checked mode every load, store and
//! atomic is compared with the run's memory map; in unchecked mode (verified
//! programs only) it is not. Registers live in `Run`, in memory; the next
//! instruction, the code array and the instruction count travel in host
//! registers as arguments. Calls, exits and legacy packet loads go through
//! `control`. Executed instructions are counted at taken branches, calls and exits
//! (a straight run counts itself as the instruction pointer advances), which also
//! bounds the run by fuel: every loop has a taken branch.

use crate::error::{Access, HelperError, VmError};
use crate::helpers::{Helper, HelperCtx, HelperOutcome, TAIL_CALL_LIMIT_ERR};
use crate::memory::{MemoryMap, MemoryOracle, Region, RegionKind};
use crate::program::{fused, VInsn, VmProgram};
use bpfvm_isa::consts::{BPF_MAX_LOOPS, MAX_BPF_STACK, MAX_CALL_FRAMES, MAX_TAIL_CALL_CNT};
use bpfvm_isa::Op;
use std::any::Any;
use std::ptr;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

const FRAME: u64 = MAX_BPF_STACK as u64;

/// Everything a run needs besides the program.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// r1..r5 at entry (r1 is usually the context pointer).
    pub args: [u64; 5],
    /// Memory the program may touch besides its stack (checked mode).
    pub regions: Vec<Region>,
    /// Asked about addresses no region covers (checked mode).
    pub oracle: Option<&'a dyn MemoryOracle>,
    /// The runtime's environment, handed to helpers ([`HelperCtx::env`]).
    pub env: Option<&'a mut dyn Any>,
    /// Stop with [`VmError::OutOfFuel`] after about this many instructions (checked
    /// at taken branches and calls).
    pub fuel: Option<u64>,
    /// Where the MAC header starts when the packet (`data`) starts after it (a
    /// socket filter sees an skb from its network header): BPF_LD_ABS/IND at
    /// SKF_LL_OFF / SKF_NET_OFF offsets read from there.
    pub mac_header: Option<u64>,
}

impl<'a> RunOptions<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets r1 (the context pointer).
    pub fn arg1(mut self, r1: u64) -> Self {
        self.args[0] = r1;
        self
    }

    pub fn args(mut self, args: [u64; 5]) -> Self {
        self.args = args;
        self
    }

    pub fn region(mut self, r: Region) -> Self {
        self.regions.push(r);
        self
    }

    /// The context: r1 = `ctx`, and a region of kind Context over it.
    pub fn context(mut self, ctx: u64, len: u64, writable: bool) -> Self {
        self.args[0] = ctx;
        self.regions
            .push(Region::new(ctx, len, writable, RegionKind::Context));
        self
    }

    /// The MAC header's address, before the packet's `data` (see
    /// [`RunOptions::mac_header`]).
    pub fn mac_header(mut self, addr: u64) -> Self {
        self.mac_header = Some(addr);
        self
    }

    /// Packet data `data .. data_end` (writable, as for XDP and tc programs).
    pub fn packet(mut self, data: u64, data_end: u64) -> Self {
        self.regions.push(Region {
            start: data,
            end: data_end.max(data),
            writable: true,
            kind: RegionKind::Packet,
        });
        self
    }

    /// Packet metadata `data_meta .. data` (writable).
    pub fn packet_meta(mut self, data_meta: u64, data: u64) -> Self {
        self.regions.push(Region {
            start: data_meta,
            end: data.max(data_meta),
            writable: true,
            kind: RegionKind::PacketMeta,
        });
        self
    }

    pub fn oracle(mut self, o: &'a dyn MemoryOracle) -> Self {
        self.oracle = Some(o);
        self
    }

    pub fn env(mut self, env: &'a mut dyn Any) -> Self {
        self.env = Some(env);
        self
    }

    pub fn fuel(mut self, fuel: u64) -> Self {
        self.fuel = Some(fuel);
        self
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunResult {
    /// r0 at the final exit.
    pub r0: u64,
    /// Instructions executed (an LD_IMM64 counts once), callbacks and tail-called
    /// programs included.
    pub executed: u64,
    /// Tail calls taken.
    pub tail_calls: u32,
}

/// A caller's state, saved by `call local`.
#[derive(Clone, Copy)]
pub(crate) struct Frame {
    pub(crate) ret: usize,
    pub(crate) prog: *const VmProgram,
    pub(crate) saved: [u64; 4],
}

const NO_FRAME: Frame = Frame {
    ret: 0,
    prog: ptr::null(),
    saved: [0; 4],
};

/// The state of one run, shared by nested callback runs.
pub(crate) struct Machine<'r> {
    pub(crate) mem: MemoryMap<'r>,
    pub(crate) env: Option<&'r mut dyn Any>,
    pub(crate) checked: bool,
    pub(crate) tail_calls: u32,
    /// Frames in use minus one (0 in the main program).
    pub(crate) depth: usize,
    pub(crate) frames: [Frame; MAX_CALL_FRAMES],
    pub(crate) executed: u64,
    pub(crate) fuel: u64,
    /// The program executing now (the entry program, a callback's program or a
    /// tail-called one).
    pub(crate) prog: *const VmProgram,
    /// Tail-called programs, kept alive for the run (frames point into them).
    pub(crate) keep: Vec<Arc<VmProgram>>,
    /// Backing memory of the stack frames; only reached through `mem.stack_*` pointers.
    _stack: Vec<u64>,
    /// The JIT's run context when the JIT runs on this machine (null for the
    /// interpreter); callbacks then run native code.
    pub(crate) jit: *mut (),
    /// The observer of an observed run ([`crate::step`]; null otherwise):
    /// callbacks then run one instruction at a time too.
    pub(crate) step: *mut (),
    /// Per frame, the `may_goto` executions left before it jumps: set to
    /// BPF_MAX_LOOPS when the frame's function is entered (the kernel keeps this
    /// count in the frame's stack and sets it on entry; a jump back to the
    /// function's first instruction does not reset it).
    pub(crate) may_goto: [u64; MAX_CALL_FRAMES],
    /// A helper that may change the run's setup ran ([`Helper::changes_run`]).
    called_out: bool,
    /// The simulated CPU (per-CPU map lookups done in place; see
    /// `VmProgram::run_repeat_on_cpu`).
    cpu: u32,
    /// [`RunOptions::mac_header`].
    mac_header: Option<u64>,
}

const STACK_WORDS: usize = MAX_CALL_FRAMES * MAX_BPF_STACK / 8;

thread_local! {
    /// Stacks of finished runs, reused: a packet program runs in well under a
    /// microsecond, and allocating and freeing 4 KiB per run cost more than that.
    static STACK_POOL: std::cell::RefCell<Vec<Vec<u64>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A stack for a run. The entry frame starts zeroed as deep as the program can
/// read it (`VmProgram::entry_zero`, at most its 512 bytes); deeper
/// frames of a reused stack hold what earlier runs on this thread left there, as
/// the kernel's stack holds garbage — only a program reading uninitialised stack
/// can tell, and zeroing all 4 KiB per run cost more than most packet programs.
fn take_stack(zero_bytes: usize) -> Vec<u64> {
    let pooled = STACK_POOL.with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.pop()));
    match pooled {
        Some(mut s) => {
            // Only what the program can read (VmProgram::entry_zero).
            let top = STACK_WORDS - zero_bytes.min(MAX_BPF_STACK).div_ceil(8);
            s[top..].fill(0);
            s
        }
        None => vec![0u64; STACK_WORDS],
    }
}

impl Drop for Machine<'_> {
    fn drop(&mut self) {
        let stack = std::mem::take(&mut self._stack);
        if stack.len() == STACK_WORDS {
            STACK_POOL.with(|p| {
                if let Ok(mut p) = p.try_borrow_mut() {
                    if p.len() < 4 {
                        p.push(stack);
                    }
                }
            });
        }
    }
}

impl<'r> Machine<'r> {
    /// `zero_bytes`: how much of the entry frame's top starts zeroed.
    pub(crate) fn new(opts: RunOptions<'r>, checked: bool, zero_bytes: usize) -> Machine<'r> {
        let mut stack = take_stack(zero_bytes);
        let lo = stack.as_mut_ptr() as u64;
        let hi = lo + (MAX_CALL_FRAMES * MAX_BPF_STACK) as u64;
        Machine {
            mem: MemoryMap {
                stack_lo: hi - FRAME,
                stack_hi: hi,
                stack_base: lo,
                regions: opts.regions,
                oracle: opts.oracle,
            },
            env: opts.env,
            checked,
            tail_calls: 0,
            depth: 0,
            frames: [NO_FRAME; MAX_CALL_FRAMES],
            executed: 0,
            fuel: opts.fuel.unwrap_or(u64::MAX),
            prog: ptr::null(),
            keep: Vec::new(),
            _stack: stack,
            jit: ptr::null_mut(),
            step: ptr::null_mut(),
            may_goto: [BPF_MAX_LOOPS; MAX_CALL_FRAMES],
            called_out: false,
            cpu: 0,
            mac_header: opts.mac_header,
        }
    }

    /// The program executing now.
    fn cur(&self) -> &VmProgram {
        // SAFETY: set by exec before any use; points to the entry program (alive
        // for the run) or into m.keep.
        unsafe { &*self.prog }
    }

    #[cold]
    #[inline(never)]
    fn violation(&self, e: usize, base: u64, addr: u64, size: usize, access: Access) -> VmError {
        VmError::MemoryViolation {
            pc: self.cur().slot(e),
            addr,
            size,
            access,
            what: self.mem.describe_violation(base, addr, access),
        }
    }

    /// Big-endian packet load for BPF_LD_ABS/BPF_LD_IND; None if out of range.
    pub(crate) fn packet_load(&self, off: u64, size: usize) -> Result<Option<u64>, ()> {
        let Some(p) = self
            .mem
            .regions
            .iter()
            .find(|r| r.kind == RegionKind::Packet)
        else {
            return Err(());
        };
        // Negative offsets (as the kernel's `int k`) count from the network
        // header (SKF_NET_OFF) or the MAC header (SKF_LL_OFF): with a MAC
        // header before `data` the packet starts at the network header,
        // otherwise at the MAC header, with an Ethernet header before the
        // network one (as the kernel's test runs set up an skb).
        const SKF_NET_OFF: i64 = -0x10_0000;
        const SKF_LL_OFF: i64 = -0x20_0000;
        const ETH_HLEN: u64 = 14;
        let k = off as u32 as i32 as i64;
        let mac = self.mac_header.filter(|&m| m <= p.start).unwrap_or(p.start);
        let addr = if k >= 0 {
            p.start + off
        } else if k >= SKF_NET_OFF {
            let net = if mac < p.start {
                p.start
            } else {
                p.start + ETH_HLEN
            };
            net + (k - SKF_NET_OFF) as u64
        } else if k >= SKF_LL_OFF {
            mac + (k - SKF_LL_OFF) as u64
        } else {
            return Ok(None);
        };
        if addr < mac || addr > p.end || (size as u64) > p.end - addr {
            return Ok(None);
        }
        let mut b = [0u8; 8];
        // SAFETY: between the MAC header and the packet's end, which the caller
        // keeps alive for the run.
        unsafe { ptr::copy(addr as *const u8, b.as_mut_ptr(), size) };
        Ok(Some(
            b[..size].iter().fold(0u64, |a, x| (a << 8) | *x as u64),
        ))
    }
}

/// `bpf_map_lookup_elem` as `how` describes (see `VmProgram::with_map_lookups`).
///
/// # Safety
/// `key` points to the map's key; `how` is valid for the map.
unsafe fn direct_map_lookup(how: crate::jit::MapLookup, key: u64, cpu: u32) -> u64 {
    use crate::jit::MapLookup;
    match how {
        MapLookup::Array {
            values,
            max_entries,
            stride,
        } => {
            // SAFETY: the caller's promise (an array key is 4 bytes).
            let k = unsafe { (key as *const u32).read_unaligned() };
            if k < max_entries {
                values + k as u64 * stride as u64
            } else {
                0
            }
        }
        // SAFETY: the caller's promise.
        MapLookup::Call { f, obj } => unsafe { f(obj, key) },
        MapLookup::PercpuArray {
            values,
            max_entries,
            stride,
            ncpus,
        } => {
            // SAFETY: the caller's promise (an array key is 4 bytes).
            let k = unsafe { (key as *const u32).read_unaligned() };
            if k < max_entries && cpu < ncpus {
                values + (k as u64 * ncpus as u64 + cpu as u64) * stride as u64
            } else {
                0
            }
        }
    }
}

fn run_mode<const CHECKED: bool>(
    prog: &VmProgram,
    opts: RunOptions<'_>,
) -> Result<RunResult, VmError> {
    let args = opts.args;
    let mut m = Machine::new(opts, CHECKED, prog.entry_zero);
    let fp = m.mem.stack_hi;
    let r0 = exec::<CHECKED>(&mut m, prog, 0, &args, fp)?;
    Ok(RunResult {
        r0,
        executed: m.executed,
        tail_calls: m.tail_calls,
    })
}

/// Runs function `entry` of `prog` in a new frame (a callback from a helper).
pub(crate) fn call_function(
    m: &mut Machine<'_>,
    prog: &VmProgram,
    entry: usize,
    args: [u64; 5],
    call_pc: usize,
) -> Result<u64, VmError> {
    if !m.jit.is_null() {
        return crate::jit::runtime::call_function(m, prog, entry, args, call_pc);
    }
    if !m.step.is_null() {
        return crate::step::call_function(m, prog, entry, args, call_pc);
    }
    if m.depth + 1 >= MAX_CALL_FRAMES {
        return Err(VmError::CallStackTooDeep {
            pc: call_pc,
            frames: m.depth + 2,
        });
    }
    let (depth, lo) = (m.depth, m.mem.stack_lo);
    m.depth += 1;
    m.may_goto[m.depth] = BPF_MAX_LOOPS;
    m.mem.stack_lo = lo - FRAME;
    let res = if m.checked {
        exec::<true>(m, prog, entry, &args, lo)
    } else {
        exec::<false>(m, prog, entry, &args, lo)
    };
    // Restored whatever happened: a helper may swallow the error and go on.
    m.depth = depth;
    m.mem.stack_lo = lo;
    res
}

/// The dispatch `match` over the loop's code byte: one arm per opcode table row
/// (named by its [`Op`] variant; the code of a row is `Op as u8`), then the fused
/// pairs of [`crate::program::fused`]. A flat `match` on one byte compiles to one
/// jump table.
macro_rules! dispatch {
    ($code:expr; $( $($name:ident)|+ => $body:expr, )+ ; $( $f:pat => $fbody:expr, )* ) => {{
        $( $( const $name: u8 = Op::$name as u8; )+ )+
        // Compile-time proof that every row of the table has an arm: this match
        // must be exhaustive over `Op`.
        const _: fn(Op) = |op| match op {
            $( $( Op::$name )|+ => {} )+
        };
        // ... and that every fused code has one (the codes are distinct constants
        // in MOV_ADD_K..END; a repeated arm is an unreachable-pattern error).
        const _: () = assert!(
            0 $( + { let _ = stringify!($f); 1 } )* == (fused::END - fused::MOV_ADD_K) as usize
        );
        match $code {
            $( $( $name )|+ => $body, )+
            $( $f => $fbody, )*
            // SAFETY: the loader only produces table codes and fused codes, and
            // both lists are covered above.
            _ => unsafe { std::hint::unreachable_unchecked() },
        }
    }};
}

/// What a control instruction tells the loop.
enum Ctl {
    /// Continue at this entry of `m.prog` (which may have changed).
    Next(usize),
    /// The frame the loop started in exited with this r0.
    Return(u64),
}

/// The loop's live values, handed from one handler to the next in host registers.
#[derive(Clone, Copy)]
pub(crate) struct Live {
    /// The next instruction. A pointer rather than an index keeps the dispatch short.
    pub(crate) ip: *const VInsn,
    /// The current program's entries.
    pub(crate) code: *const VInsn,
    /// Instructions executed so far, minus the entry count of `ip`'s address
    /// (`ip as u64 >> 4`, entries being 16 bytes): a straight run counts itself as
    /// `ip` advances, so only taken jumps, calls and exits touch it (`executed!`).
    pub(crate) base: u64,
}

/// What handlers share through memory: the registers, the rarely used values and
/// the result.
#[repr(C)]
pub(crate) struct Run {
    /// r0..r10 (indices up to 15 so that a masked index needs no bounds check).
    pub(crate) regs: [u64; 16],
    /// The machine; a raw pointer because handlers are plain functions without
    /// lifetimes. Valid (and not otherwise used) while the handlers run.
    pub(crate) m: *mut Machine<'static>,
    pub(crate) fuel: u64,
    pub(crate) base_depth: usize,
    /// Set by the handler that ends the loop.
    pub(crate) out: Option<Result<u64, VmError>>,
    /// Set instead of `out` when the frame returns normally: r0 (no error
    /// value to build and move on the way out of every run).
    pub(crate) ret: Option<u64>,
    /// Where a handler left off when it returned without a tail call (debug builds).
    pub(crate) cont: Live,
}

/// One instruction's handler: runs it, then tail-calls the next instruction's
/// handler (in release builds, where LLVM turns the call into a jump; see
/// [`handler`]). Returns when the loop ends (`Run::out` set), or after every
/// instruction in debug builds, which do not turn calls into jumps.
type Handler = unsafe fn(*const VInsn, *mut Run, *const VInsn, u64);

/// The handler of dispatch code `CODE`: [`step`] specialised to one code, so its
/// `match` folds to one arm, followed by its own copy of the dispatch (one
/// indirect jump per handler predicts better than one shared by all, and saves
/// the jump back to a shared loop head). Four arguments, so that most handlers
/// find enough scratch registers and save none.
///
/// # Safety
/// `ip` points at an entry of `code` whose dispatch code is `CODE`, and `run` is
/// valid.
unsafe fn handler<const CHECKED: bool, const CODE: u8>(
    ip: *const VInsn,
    run: *mut Run,
    code: *const VInsn,
    base: u64,
) {
    let mut s = Live { ip, code, base };
    // SAFETY: the caller's promise.
    if unsafe { step::<CHECKED, CODE>(run, &mut s) } {
        return;
    }
    if cfg!(debug_assertions) {
        // SAFETY: as above.
        unsafe { (*run).cont = s };
        return;
    }
    // SAFETY: step leaves ip at an entry of the (possibly new) code array.
    let next = Table::<CHECKED>::H[unsafe { (*s.ip).code } as usize];
    unsafe { next(s.ip, run, s.code, s.base) }
}

/// The handlers, indexed by dispatch code.
struct Table<const CHECKED: bool>;

macro_rules! table {
    ($($n:literal)*) => {
        impl<const CHECKED: bool> Table<CHECKED> {
            const H: [Handler; 256] = [$(handler::<CHECKED, $n> as Handler),*];
        }
    };
}
table!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32
    33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61
    62 63 64 65 66 67 68 69 70 71 72 73 74 75 76 77 78 79 80 81 82 83 84 85 86 87 88 89 90
    91 92 93 94 95 96 97 98 99 100 101 102 103 104 105 106 107 108 109 110 111 112 113 114
    115 116 117 118 119 120 121 122 123 124 125 126 127 128 129 130 131 132 133 134 135 136
    137 138 139 140 141 142 143 144 145 146 147 148 149 150 151 152 153 154 155 156 157 158
    159 160 161 162 163 164 165 166 167 168 169 170 171 172 173 174 175 176 177 178 179 180
    181 182 183 184 185 186 187 188 189 190 191 192 193 194 195 196 197 198 199 200 201 202
    203 204 205 206 207 208 209 210 211 212 213 214 215 216 217 218 219 220 221 222 223 224
    225 226 227 228 229 230 231 232 233 234 235 236 237 238 239 240 241 242 243 244 245 246
    247 248 249 250 251 252 253 254 255
);

/// Ends the loop with `out`. Out of line: handlers stay free of the result's
/// stack space and drop code.
#[inline(never)]
unsafe fn finish(run: *mut Run, out: Result<u64, VmError>) -> bool {
    // SAFETY: run is valid while handlers run.
    unsafe { (*run).out = Some(out) };
    true
}

/// Ends the loop with the frame's r0.
#[inline(always)]
unsafe fn finish_ok(run: *mut Run, r0: u64) -> bool {
    // SAFETY: run is valid while handlers run.
    unsafe { (*run).ret = Some(r0) };
    true
}

/// Ends the loop with [`VmError::OutOfFuel`] at entry `e`.
#[cold]
#[inline(never)]
unsafe fn out_of_fuel(run: *mut Run, e: usize, executed: u64) -> bool {
    // SAFETY: run and its machine are valid while handlers run.
    let m = unsafe { &mut *(*run).m };
    m.executed = executed;
    let pc = m.cur().slot(e);
    unsafe { finish(run, Err(VmError::OutOfFuel { pc, executed })) }
}

/// Ends the loop with a memory violation by entry `e`.
#[cold]
#[inline(never)]
unsafe fn violation(
    run: *mut Run,
    e: usize,
    base: u64,
    addr: u64,
    size: usize,
    access: Access,
) -> bool {
    // SAFETY: as for out_of_fuel.
    let err = unsafe { &*(*run).m }.violation(e, base, addr, size, access);
    unsafe { finish(run, Err(err)) }
}

/// Ends the loop with [`VmError::MisalignedAtomic`] at entry `e`.
#[cold]
#[inline(never)]
unsafe fn misaligned(run: *mut Run, e: usize, addr: u64, size: usize) -> bool {
    // SAFETY: as for out_of_fuel.
    let pc = unsafe { &*(*run).m }.cur().slot(e);
    unsafe { finish(run, Err(VmError::MisalignedAtomic { pc, addr, size })) }
}

/// Runs frame `entry_pc` of `entry_prog`, with r1..r5 = `args` and r10 = `fp`,
/// until it exits. Returns its r0.
///
/// Straight-line instructions, jumps, memory accesses and bpf-to-bpf calls and
/// returns are handled inline; helper calls, tail calls and legacy packet
/// loads go through [`control`].
#[inline(never)]
fn exec<const CHECKED: bool>(
    m: &mut Machine<'_>,
    entry_prog: &VmProgram,
    entry_pc: usize,
    args: &[u64; 5],
    fp: u64,
) -> Result<u64, VmError> {
    let base_depth = m.depth;
    let saved_prog = m.prog;
    m.prog = entry_prog;
    let code = entry_prog.code.as_ptr();
    // SAFETY: entry_pc is an entry index of the program (0, or a function start).
    let ip = unsafe { code.add(entry_pc) };
    let mut s = Live {
        ip,
        code,
        base: m.executed.wrapping_sub(ip as u64 >> 4),
    };
    // The registers are built in place rather than copied in: a copy read
    // back with wide loads what the caller had just written with narrow
    // stores, a store-forwarding stall that cost a packet program's test run
    // a sixth of its time.
    let mut run = Run {
        regs: [0; 16],
        m: (m as *mut Machine<'_>).cast(),
        fuel: m.fuel,
        base_depth,
        out: None,
        ret: None,
        cont: s,
    };
    run.regs[1..6].copy_from_slice(args);
    run.regs[10] = fp;
    let res = loop {
        // SAFETY: s.ip is an entry of s.code (see handler); the handlers use the
        // machine only through run.m while this loop does not touch `m`.
        unsafe {
            let h = Table::<CHECKED>::H[(*s.ip).code as usize];
            h(s.ip, &mut run, s.code, s.base);
        }
        if let Some(r0) = run.ret.take() {
            break Ok(r0);
        }
        if let Some(out) = run.out.take() {
            break out;
        }
        s = run.cont;
    };
    m.prog = saved_prog;
    res
}

/// One instruction at `s.ip`, whose dispatch code is `CODE`: updates `s`, or
/// ends the loop (sets `run.out`, returns true: the frame exited, or an error).
// The dispatch arms are named by the opcode table's variants.
#[allow(non_upper_case_globals)]
#[inline(always)]
pub(crate) unsafe fn step<const CHECKED: bool, const CODE: u8>(
    run: *mut Run,
    s: &mut Live,
) -> bool {
    // SAFETY (for every `prog` dereference): m.prog points to the entry program or
    // to a tail-called program kept alive in m.keep for the whole run. `run` is
    // valid while handlers run.
    let Live {
        mut ip,
        mut code,
        mut base,
    } = *s;
    let r = unsafe { &mut (*run).regs };
    // Instructions executed up to `ip`.
    macro_rules! executed {
        () => {
            base.wrapping_add(ip as u64 >> 4)
        };
    }
    macro_rules! m {
        () => {
            unsafe { &mut *(*run).m }
        };
    }

    // Index of the next instruction (for messages and control instructions).
    macro_rules! pc {
        () => {
            // SAFETY: ip and code point into the same array.
            (unsafe { ip.offset_from(code) } as usize)
        };
    }
    macro_rules! reg {
        ($n:expr) => {
            r[($n & 15) as usize]
        };
    }
    macro_rules! jump {
        ($i:expr) => {{
            let executed = executed!();
            // SAFETY: run is valid while handlers run.
            if executed > unsafe { (*run).fuel } {
                let e = pc!() - 1;
                return unsafe { out_of_fuel(run, e, executed) };
            }
            // SAFETY: the loader checked every target is an entry index in range.
            ip = unsafe { code.add($i.off as usize) };
            base = executed.wrapping_sub(ip as u64 >> 4);
        }};
    }
    macro_rules! cond {
        ($i:expr, $c:expr) => {
            if $c {
                jump!($i);
            }
        };
    }
    macro_rules! alu64 {
        ($i:expr, |$a:ident, $b:ident| $e:expr, K) => {{
            let $a = reg!($i.dst);
            let $b = $i.imm as u64;
            reg!($i.dst) = $e;
        }};
        ($i:expr, |$a:ident, $b:ident| $e:expr, X) => {{
            let $a = reg!($i.dst);
            let $b = reg!($i.src);
            reg!($i.dst) = $e;
        }};
    }
    macro_rules! alu32 {
        ($i:expr, |$a:ident, $b:ident| $e:expr, K) => {{
            let $a = reg!($i.dst) as u32;
            let $b = $i.imm as u32;
            reg!($i.dst) = ($e) as u32 as u64;
        }};
        ($i:expr, |$a:ident, $b:ident| $e:expr, X) => {{
            let $a = reg!($i.dst) as u32;
            let $b = reg!($i.src) as u32;
            reg!($i.dst) = ($e) as u32 as u64;
        }};
    }
    macro_rules! check {
        ($base:expr, $addr:expr, $size:expr, $access:expr) => {
            if CHECKED && !m!().mem.ok($addr, $size as u64, $access != Access::Read) {
                let e = pc!() - 1;
                return unsafe { violation(run, e, $base, $addr, $size, $access) };
            }
        };
    }
    macro_rules! ldx {
        ($i:expr, $t:ty, $conv:expr) => {{
            let base = reg!($i.src);
            let addr = base.wrapping_add($i.off as i64 as u64);
            check!(base, addr, std::mem::size_of::<$t>(), Access::Read);
            // SAFETY: checked against the run's regions, or (unchecked mode) proved
            // by the verifier, as the caller of run_unchecked promised.
            let v = unsafe { ptr::read_unaligned(addr as *const $t) };
            reg!($i.dst) = $conv(v);
        }};
    }
    macro_rules! store {
        ($i:expr, $t:ty, $v:expr) => {{
            let base = reg!($i.dst);
            let addr = base.wrapping_add($i.off as i64 as u64);
            check!(base, addr, std::mem::size_of::<$t>(), Access::Write);
            // SAFETY: as for loads.
            unsafe { ptr::write_unaligned(addr as *mut $t, $v as $t) };
        }};
    }
    // Calls, exits and legacy packet loads: out of line, through `control`.
    macro_rules! control {
        ($i:expr) => {{
            let i = $i;
            let m = m!();
            m.executed = executed!();
            // SAFETY: run is valid while handlers run.
            let base_depth = unsafe { (*run).base_depth };
            if i.op == Op::Exit && m.depth == base_depth {
                // The frame returns: no need for the general path.
                return unsafe { finish_ok(run, r[0]) };
            }
            match control::<CHECKED>(m, pc!(), r, base_depth) {
                Err(e) => return unsafe { finish(run, Err(e)) },
                Ok(Ctl::Next(next)) => {
                    // SAFETY: see the top of the function; control returns an
                    // entry index of m.prog (a return address or a call target).
                    code = unsafe { (*m.prog).code.as_ptr() };
                    ip = unsafe { code.add(next) };
                    let executed = m.executed;
                    base = executed.wrapping_sub(ip as u64 >> 4);
                    if executed > unsafe { (*run).fuel } {
                        return unsafe { out_of_fuel(run, next, executed) };
                    }
                }
                Ok(Ctl::Return(v)) => return unsafe { finish_ok(run, v) },
            }
        }};
    }
    // A load or store a verifier proved safe: no check in either mode.
    macro_rules! ldx_proven {
        ($i:expr, $t:ty) => {{
            let addr = reg!($i.src).wrapping_add($i.off as i64 as u64);
            // SAFETY: VmProgram::with_proven_mem's contract.
            let v = unsafe { ptr::read_unaligned(addr as *const $t) };
            reg!($i.dst) = v as u64;
        }};
    }
    macro_rules! stx_proven {
        ($i:expr, $t:ty) => {{
            let addr = reg!($i.dst).wrapping_add($i.off as i64 as u64);
            // SAFETY: as for ldx_proven.
            unsafe { ptr::write_unaligned(addr as *mut $t, reg!($i.src) as $t) };
        }};
    }
    macro_rules! atomic_addr {
        ($i:expr, $size:expr) => {{
            let base = reg!($i.dst);
            let addr = base.wrapping_add($i.off as i64 as u64);
            check!(base, addr, $size, Access::Atomic);
            if addr % $size != 0 {
                let e = pc!() - 1;
                return unsafe { misaligned(run, e, addr, $size) };
            }
            addr
        }};
    }
    macro_rules! atomic32 {
        ($i:expr, $method:ident, $fetch:expr) => {{
            let addr = atomic_addr!($i, 4);
            // SAFETY: checked (or verified) and 4-byte aligned; other threads touch
            // shared map values only through atomics or plain racy accesses, as in
            // the kernel.
            let a = unsafe { AtomicU32::from_ptr(addr as *mut u32) };
            let old = a.$method(reg!($i.src) as u32, Ordering::SeqCst);
            if $fetch {
                reg!($i.src) = old as u64;
            }
        }};
    }
    macro_rules! atomic64 {
        ($i:expr, $method:ident, $fetch:expr) => {{
            let addr = atomic_addr!($i, 8);
            // SAFETY: as for atomic32, 8-byte aligned.
            let a = unsafe { AtomicU64::from_ptr(addr as *mut u64) };
            let old = a.$method(reg!($i.src), Ordering::SeqCst);
            if $fetch {
                reg!($i.src) = old;
            }
        }};
    }

    // Load-acquire: `dst = *(src + off)`, an aligned atomic load (the verifier
    // checks alignment strictly; unverified runs stop at a misaligned one).
    macro_rules! load_acq {
        ($i:expr, $atomic:ident, $size:expr) => {{
            let base = reg!($i.src);
            let addr = base.wrapping_add($i.off as i64 as u64);
            check!(base, addr, $size, Access::Read);
            if !aligned(addr, $size) {
                let e = pc!() - 1;
                return unsafe { misaligned(run, e, addr, $size) };
            }
            // SAFETY: checked (or verified) and aligned, as for atomic32!.
            let a = unsafe { $atomic::from_ptr(addr as *mut _) };
            reg!($i.dst) = a.load(Ordering::SeqCst) as u64;
        }};
    }
    // Store-release: `*(dst + off) = src`, an aligned atomic store.
    macro_rules! store_rel {
        ($i:expr, $atomic:ident, $t:ty, $size:expr) => {{
            let base = reg!($i.dst);
            let addr = base.wrapping_add($i.off as i64 as u64);
            check!(base, addr, $size, Access::Write);
            if !aligned(addr, $size) {
                let e = pc!() - 1;
                return unsafe { misaligned(run, e, addr, $size) };
            }
            // SAFETY: as for load_acq!.
            let a = unsafe { $atomic::from_ptr(addr as *mut _) };
            a.store(reg!($i.src) as $t, Ordering::SeqCst);
        }};
    }

    // `mov dst, src` + `op dst, operand`: dst = src op operand; skips the second.
    // An X operand is register `i.off` (see program::fused).
    macro_rules! mov3 {
        ($i:expr, |$a:ident, $b:ident| $e:expr, K) => {{
            // SAFETY: a fused instruction is never last (the loader pairs it with the next).
            let j = unsafe { &*ip };
            ip = unsafe { ip.add(1) };
            let $a = reg!($i.src);
            let $b = j.imm as u64;
            reg!($i.dst) = $e;
        }};
        ($i:expr, |$a:ident, $b:ident| $e:expr, X) => {{
            ip = unsafe { ip.add(1) };
            let $a = reg!($i.src);
            let $b = reg!($i.off);
            reg!($i.dst) = $e;
        }};
    }
    // The same for `w` moves and ops.
    macro_rules! mov3_32 {
        ($i:expr, |$a:ident, $b:ident| $e:expr, K) => {{
            // SAFETY: as for mov3.
            let j = unsafe { &*ip };
            ip = unsafe { ip.add(1) };
            let $a = reg!($i.src) as u32;
            let $b = j.imm as u32;
            reg!($i.dst) = ($e) as u32 as u64;
        }};
        ($i:expr, |$a:ident, $b:ident| $e:expr, X) => {{
            ip = unsafe { ip.add(1) };
            let $a = reg!($i.src) as u32;
            let $b = reg!($i.off) as u32;
            reg!($i.dst) = ($e) as u32 as u64;
        }};
    }
    // `add dst, imm` + `if dst cond operand goto`; `i.off` is 0 for a 32-bit add
    // (the sum keeps its low half), -1 for a 64-bit one.
    macro_rules! addj {
        ($i:expr, |$a:ident, $b:ident| $c:expr, K) => {{
            // SAFETY: as for mov3.
            let j = unsafe { &*ip };
            ip = unsafe { ip.add(1) };
            let $a = reg!($i.dst).wrapping_add($i.imm as u64)
                & ((($i.off as i64 as u64) << 32) | 0xffff_ffff);
            reg!($i.dst) = $a;
            let $b = j.imm as u64;
            if $c {
                jump!(j);
            }
        }};
        ($i:expr, |$a:ident, $b:ident| $c:expr, X) => {{
            // SAFETY: as for mov3.
            let j = unsafe { &*ip };
            ip = unsafe { ip.add(1) };
            let $a = reg!($i.dst).wrapping_add($i.imm as u64)
                & ((($i.off as i64 as u64) << 32) | 0xffff_ffff);
            reg!($i.dst) = $a;
            let $b = reg!(j.src);
            if $c {
                jump!(j);
            }
        }};
    }
    // `mov d, a` + `add d, b` + `ldx v, [d + off]`.
    macro_rules! ldx_idx {
        ($i:expr, $t:ty) => {{
            // SAFETY: the loader formed the group from three existing instructions.
            let l = unsafe { &*ip.add(1) };
            ip = unsafe { ip.add(2) };
            let base = reg!($i.src).wrapping_add(reg!($i.off));
            reg!($i.dst) = base;
            let addr = base.wrapping_add(l.off as i64 as u64);
            check!(base, addr, std::mem::size_of::<$t>(), Access::Read);
            // SAFETY: as in ldx!.
            let v = unsafe { ptr::read_unaligned(addr as *const $t) };
            reg!(l.dst) = v as u64;
        }};
    }

    {
        // SAFETY: the loader guarantees every jump and call target is an entry index
        // in range and that the last entry is an exit or unconditional jump, so `ip`
        // is always in range here.
        let i = unsafe { &*ip };
        ip = unsafe { ip.add(1) };
        dispatch! { CODE;
            // ---- ALU64 ----
            Add64K => alu64!(i, |a, b| a.wrapping_add(b), K),
            Add64X => alu64!(i, |a, b| a.wrapping_add(b), X),
            Sub64K => alu64!(i, |a, b| a.wrapping_sub(b), K),
            Sub64X => alu64!(i, |a, b| a.wrapping_sub(b), X),
            Mul64K => alu64!(i, |a, b| a.wrapping_mul(b), K),
            Mul64X => alu64!(i, |a, b| a.wrapping_mul(b), X),
            Div64K => alu64!(i, |a, b| a.checked_div(b).unwrap_or(0), K),
            Div64X => alu64!(i, |a, b| a.checked_div(b).unwrap_or(0), X),
            SDiv64K => alu64!(i, |a, b| sdiv64(a, b), K),
            SDiv64X => alu64!(i, |a, b| sdiv64(a, b), X),
            Mod64K => alu64!(i, |a, b| a.checked_rem(b).unwrap_or(a), K),
            Mod64X => alu64!(i, |a, b| a.checked_rem(b).unwrap_or(a), X),
            SMod64K => alu64!(i, |a, b| smod64(a, b), K),
            SMod64X => alu64!(i, |a, b| smod64(a, b), X),
            Or64K => alu64!(i, |a, b| a | b, K),
            Or64X => alu64!(i, |a, b| a | b, X),
            And64K => alu64!(i, |a, b| a & b, K),
            And64X => alu64!(i, |a, b| a & b, X),
            Xor64K => alu64!(i, |a, b| a ^ b, K),
            Xor64X => alu64!(i, |a, b| a ^ b, X),
            Lsh64K => alu64!(i, |a, b| a << (b & 63), K),
            Lsh64X => alu64!(i, |a, b| a << (b & 63), X),
            Rsh64K => alu64!(i, |a, b| a >> (b & 63), K),
            Rsh64X => alu64!(i, |a, b| a >> (b & 63), X),
            Arsh64K => alu64!(i, |a, b| ((a as i64) >> (b & 63)) as u64, K),
            Arsh64X => alu64!(i, |a, b| ((a as i64) >> (b & 63)) as u64, X),
            Mov64K => reg!(i.dst) = i.imm as u64,
            Mov64X => reg!(i.dst) = reg!(i.src),
            // Without arena maps there is no user address space to add: both
            // directions keep the 32-bit arena offset, as the kernel's rewrite of
            // a cast to the kernel space (a 32-bit move) does.
            AddrSpaceCast => reg!(i.dst) = reg!(i.src) as u32 as u64,
            Neg64 => reg!(i.dst) = reg!(i.dst).wrapping_neg(),
            MovSx8To64 => reg!(i.dst) = reg!(i.src) as i8 as i64 as u64,
            MovSx16To64 => reg!(i.dst) = reg!(i.src) as i16 as i64 as u64,
            MovSx32To64 => reg!(i.dst) = reg!(i.src) as i32 as i64 as u64,
            // ---- ALU32: operate on the low halves, zero-extend the result ----
            Add32K => alu32!(i, |a, b| a.wrapping_add(b), K),
            Add32X => alu32!(i, |a, b| a.wrapping_add(b), X),
            Sub32K => alu32!(i, |a, b| a.wrapping_sub(b), K),
            Sub32X => alu32!(i, |a, b| a.wrapping_sub(b), X),
            Mul32K => alu32!(i, |a, b| a.wrapping_mul(b), K),
            Mul32X => alu32!(i, |a, b| a.wrapping_mul(b), X),
            Div32K => alu32!(i, |a, b| a.checked_div(b).unwrap_or(0), K),
            Div32X => alu32!(i, |a, b| a.checked_div(b).unwrap_or(0), X),
            SDiv32K => alu32!(i, |a, b| sdiv32(a, b), K),
            SDiv32X => alu32!(i, |a, b| sdiv32(a, b), X),
            Mod32K => alu32!(i, |a, b| a.checked_rem(b).unwrap_or(a), K),
            Mod32X => alu32!(i, |a, b| a.checked_rem(b).unwrap_or(a), X),
            SMod32K => alu32!(i, |a, b| smod32(a, b), K),
            SMod32X => alu32!(i, |a, b| smod32(a, b), X),
            Or32K => alu32!(i, |a, b| a | b, K),
            Or32X => alu32!(i, |a, b| a | b, X),
            And32K => alu32!(i, |a, b| a & b, K),
            And32X => alu32!(i, |a, b| a & b, X),
            Xor32K => alu32!(i, |a, b| a ^ b, K),
            Xor32X => alu32!(i, |a, b| a ^ b, X),
            Lsh32K => alu32!(i, |a, b| a << (b & 31), K),
            Lsh32X => alu32!(i, |a, b| a << (b & 31), X),
            Rsh32K => alu32!(i, |a, b| a >> (b & 31), K),
            Rsh32X => alu32!(i, |a, b| a >> (b & 31), X),
            Arsh32K => alu32!(i, |a, b| (a as i32) >> (b & 31), K),
            Arsh32X => alu32!(i, |a, b| (a as i32) >> (b & 31), X),
            Mov32K => reg!(i.dst) = i.imm as u32 as u64,
            Mov32X => reg!(i.dst) = reg!(i.src) as u32 as u64,
            Neg32 => reg!(i.dst) = (reg!(i.dst) as u32).wrapping_neg() as u64,
            MovSx8To32 => reg!(i.dst) = reg!(i.src) as i8 as i32 as u32 as u64,
            MovSx16To32 => reg!(i.dst) = reg!(i.src) as i16 as i32 as u32 as u64,
            // ---- byte swaps (the host, like the BPF target here, is little-endian) ----
            Le16 => reg!(i.dst) = u16::to_le(reg!(i.dst) as u16) as u64,
            Le32 => reg!(i.dst) = u32::to_le(reg!(i.dst) as u32) as u64,
            Le64 => reg!(i.dst) = u64::to_le(reg!(i.dst)),
            Be16 => reg!(i.dst) = u16::to_be(reg!(i.dst) as u16) as u64,
            Be32 => reg!(i.dst) = u32::to_be(reg!(i.dst) as u32) as u64,
            Be64 => reg!(i.dst) = u64::to_be(reg!(i.dst)),
            Bswap16 => reg!(i.dst) = (reg!(i.dst) as u16).swap_bytes() as u64,
            Bswap32 => reg!(i.dst) = (reg!(i.dst) as u32).swap_bytes() as u64,
            Bswap64 => reg!(i.dst) = reg!(i.dst).swap_bytes(),
            // ---- JMP ----
            Ja | Ja32 => jump!(i),
            JeqK => cond!(i, reg!(i.dst) == i.imm as u64),
            JeqX => cond!(i, reg!(i.dst) == reg!(i.src)),
            JneK => cond!(i, reg!(i.dst) != i.imm as u64),
            JneX => cond!(i, reg!(i.dst) != reg!(i.src)),
            JgtK => cond!(i, reg!(i.dst) > i.imm as u64),
            JgtX => cond!(i, reg!(i.dst) > reg!(i.src)),
            JgeK => cond!(i, reg!(i.dst) >= i.imm as u64),
            JgeX => cond!(i, reg!(i.dst) >= reg!(i.src)),
            JltK => cond!(i, reg!(i.dst) < i.imm as u64),
            JltX => cond!(i, reg!(i.dst) < reg!(i.src)),
            JleK => cond!(i, reg!(i.dst) <= i.imm as u64),
            JleX => cond!(i, reg!(i.dst) <= reg!(i.src)),
            JsetK => cond!(i, reg!(i.dst) & i.imm as u64 != 0),
            JsetX => cond!(i, reg!(i.dst) & reg!(i.src) != 0),
            JsgtK => cond!(i, (reg!(i.dst) as i64) > i.imm),
            JsgtX => cond!(i, (reg!(i.dst) as i64) > reg!(i.src) as i64),
            JsgeK => cond!(i, (reg!(i.dst) as i64) >= i.imm),
            JsgeX => cond!(i, (reg!(i.dst) as i64) >= reg!(i.src) as i64),
            JsltK => cond!(i, (reg!(i.dst) as i64) < i.imm),
            JsltX => cond!(i, (reg!(i.dst) as i64) < reg!(i.src) as i64),
            JsleK => cond!(i, (reg!(i.dst) as i64) <= i.imm),
            JsleX => cond!(i, (reg!(i.dst) as i64) <= reg!(i.src) as i64),
            // Falls through while the frame's count lasts, then always jumps.
            MayGoto => {
                let m = m!();
                let left = &mut m.may_goto[m.depth % MAX_CALL_FRAMES];
                if *left == 0 {
                    jump!(i);
                } else {
                    *left -= 1;
                }
            },
            // ---- JMP32: compare the low halves ----
            Jeq32K => cond!(i, reg!(i.dst) as u32 == i.imm as u32),
            Jeq32X => cond!(i, reg!(i.dst) as u32 == reg!(i.src) as u32),
            Jne32K => cond!(i, reg!(i.dst) as u32 != i.imm as u32),
            Jne32X => cond!(i, reg!(i.dst) as u32 != reg!(i.src) as u32),
            Jgt32K => cond!(i, reg!(i.dst) as u32 > i.imm as u32),
            Jgt32X => cond!(i, reg!(i.dst) as u32 > reg!(i.src) as u32),
            Jge32K => cond!(i, reg!(i.dst) as u32 >= i.imm as u32),
            Jge32X => cond!(i, reg!(i.dst) as u32 >= reg!(i.src) as u32),
            Jlt32K => cond!(i, (reg!(i.dst) as u32) < i.imm as u32),
            Jlt32X => cond!(i, (reg!(i.dst) as u32) < reg!(i.src) as u32),
            Jle32K => cond!(i, reg!(i.dst) as u32 <= i.imm as u32),
            Jle32X => cond!(i, reg!(i.dst) as u32 <= reg!(i.src) as u32),
            Jset32K => cond!(i, reg!(i.dst) as u32 & i.imm as u32 != 0),
            Jset32X => cond!(i, reg!(i.dst) as u32 & reg!(i.src) as u32 != 0),
            Jsgt32K => cond!(i, reg!(i.dst) as i32 > i.imm as i32),
            Jsgt32X => cond!(i, reg!(i.dst) as i32 > reg!(i.src) as i32),
            Jsge32K => cond!(i, reg!(i.dst) as i32 >= i.imm as i32),
            Jsge32X => cond!(i, reg!(i.dst) as i32 >= reg!(i.src) as i32),
            Jslt32K => cond!(i, (reg!(i.dst) as i32) < i.imm as i32),
            Jslt32X => cond!(i, (reg!(i.dst) as i32) < reg!(i.src) as i32),
            Jsle32K => cond!(i, reg!(i.dst) as i32 <= i.imm as i32),
            Jsle32X => cond!(i, reg!(i.dst) as i32 <= reg!(i.src) as i32),
            // ---- calls, exit, legacy packet loads: out of line ----
            Call | CallX | CallKfunc | LdAbsB | LdAbsH | LdAbsW | LdIndB | LdIndH | LdIndW => control!(i),
            // bpf-to-bpf calls and returns in place (what `control` does for
            // them, without its general decoding); a call past the frame limit
            // takes `control` for its error.
            CallLocal => {
                let m = m!();
                if m.depth + 1 >= MAX_CALL_FRAMES {
                    control!(i);
                } else {
                    let executed = executed!();
                    enter_frame(m, pc!(), r);
                    // SAFETY: the loader checked the target is an entry in range.
                    ip = unsafe { code.add(i.off as usize) };
                    base = executed.wrapping_sub(ip as u64 >> 4);
                    if executed > unsafe { (*run).fuel } {
                        m.executed = executed;
                        return unsafe { out_of_fuel(run, i.off as usize, executed) };
                    }
                }
            },
            Exit => {
                let m = m!();
                // SAFETY: run is valid while handlers run.
                if m.depth == unsafe { (*run).base_depth } {
                    m.executed = executed!();
                    return unsafe { finish_ok(run, r[0]) };
                }
                let executed = executed!();
                let f = leave_frame(m, r);
                // SAFETY: a frame's program is the entry program or one kept
                // alive in m.keep, and its return entry is in range.
                code = unsafe { (*f.prog).code.as_ptr() };
                ip = unsafe { code.add(f.ret) };
                base = executed.wrapping_sub(ip as u64 >> 4);
                if executed > unsafe { (*run).fuel } {
                    m.executed = executed;
                    return unsafe { out_of_fuel(run, f.ret, executed) };
                }
            },
            // ---- loads and stores ----
            LdImm64 => reg!(i.dst) = i.imm as u64,
            LdxB => ldx!(i, u8, |v: u8| v as u64),
            LdxH => ldx!(i, u16, |v: u16| v as u64),
            LdxW => ldx!(i, u32, |v: u32| v as u64),
            LdxDw => ldx!(i, u64, |v: u64| v),
            LdxSB => ldx!(i, i8, |v: i8| v as i64 as u64),
            LdxSH => ldx!(i, i16, |v: i16| v as i64 as u64),
            LdxSW => ldx!(i, i32, |v: i32| v as i64 as u64),
            StB => store!(i, u8, i.imm),
            StH => store!(i, u16, i.imm),
            StW => store!(i, u32, i.imm),
            StDw => store!(i, u64, i.imm),
            StxB => store!(i, u8, reg!(i.src)),
            StxH => store!(i, u16, reg!(i.src)),
            StxW => store!(i, u32, reg!(i.src)),
            StxDw => store!(i, u64, reg!(i.src)),
            // ---- atomics ----
            AtomicAdd32 => atomic32!(i, fetch_add, false),
            AtomicOr32 => atomic32!(i, fetch_or, false),
            AtomicAnd32 => atomic32!(i, fetch_and, false),
            AtomicXor32 => atomic32!(i, fetch_xor, false),
            AtomicFetchAdd32 => atomic32!(i, fetch_add, true),
            AtomicFetchOr32 => atomic32!(i, fetch_or, true),
            AtomicFetchAnd32 => atomic32!(i, fetch_and, true),
            AtomicFetchXor32 => atomic32!(i, fetch_xor, true),
            AtomicXchg32 => atomic32!(i, swap, true),
            AtomicAdd64 => atomic64!(i, fetch_add, false),
            AtomicOr64 => atomic64!(i, fetch_or, false),
            AtomicAnd64 => atomic64!(i, fetch_and, false),
            AtomicXor64 => atomic64!(i, fetch_xor, false),
            AtomicFetchAdd64 => atomic64!(i, fetch_add, true),
            AtomicFetchOr64 => atomic64!(i, fetch_or, true),
            AtomicFetchAnd64 => atomic64!(i, fetch_and, true),
            AtomicFetchXor64 => atomic64!(i, fetch_xor, true),
            AtomicXchg64 => atomic64!(i, swap, true),
            AtomicCmpXchg32 => {
                let addr = atomic_addr!(i, 4);
                // SAFETY: as in atomic32!.
                let a = unsafe { AtomicU32::from_ptr(addr as *mut u32) };
                let old = match a.compare_exchange(
                    r[0] as u32,
                    reg!(i.src) as u32,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                ) {
                    Ok(v) | Err(v) => v,
                };
                r[0] = old as u64;
            },
            // ---- load-acquire, store-release: aligned, sequentially consistent ----
            LoadAcqB => load_acq!(i, AtomicU8, 1),
            LoadAcqH => load_acq!(i, AtomicU16, 2),
            LoadAcqW => load_acq!(i, AtomicU32, 4),
            LoadAcqDw => load_acq!(i, AtomicU64, 8),
            StoreRelB => store_rel!(i, AtomicU8, u8, 1),
            StoreRelH => store_rel!(i, AtomicU16, u16, 2),
            StoreRelW => store_rel!(i, AtomicU32, u32, 4),
            StoreRelDw => store_rel!(i, AtomicU64, u64, 8),
            AtomicCmpXchg64 => {
                let addr = atomic_addr!(i, 8);
                // SAFETY: as in atomic64!.
                let a = unsafe { AtomicU64::from_ptr(addr as *mut u64) };
                let old =
                    match a.compare_exchange(r[0], reg!(i.src), Ordering::SeqCst, Ordering::SeqCst)
                    {
                        Ok(v) | Err(v) => v,
                    };
                r[0] = old;
            },
            // ---- superinstructions (see program::fused) ----
            ;
            fused::MOV_ADD_K => mov3!(i, |a, b| a.wrapping_add(b), K),
            fused::MOV_ADD_X => mov3!(i, |a, b| a.wrapping_add(b), X),
            fused::MOV_SUB_K => mov3!(i, |a, b| a.wrapping_sub(b), K),
            fused::MOV_SUB_X => mov3!(i, |a, b| a.wrapping_sub(b), X),
            fused::MOV_MUL_K => mov3!(i, |a, b| a.wrapping_mul(b), K),
            fused::MOV_MUL_X => mov3!(i, |a, b| a.wrapping_mul(b), X),
            fused::MOV_DIV_K => mov3!(i, |a, b| a.checked_div(b).unwrap_or(0), K),
            fused::MOV_DIV_X => mov3!(i, |a, b| a.checked_div(b).unwrap_or(0), X),
            fused::MOV_MOD_K => mov3!(i, |a, b| a.checked_rem(b).unwrap_or(a), K),
            fused::MOV_MOD_X => mov3!(i, |a, b| a.checked_rem(b).unwrap_or(a), X),
            fused::MOV_OR_K => mov3!(i, |a, b| a | b, K),
            fused::MOV_OR_X => mov3!(i, |a, b| a | b, X),
            fused::MOV_AND_K => mov3!(i, |a, b| a & b, K),
            fused::MOV_AND_X => mov3!(i, |a, b| a & b, X),
            fused::MOV_XOR_K => mov3!(i, |a, b| a ^ b, K),
            fused::MOV_XOR_X => mov3!(i, |a, b| a ^ b, X),
            fused::MOV_LSH_K => mov3!(i, |a, b| a << (b & 63), K),
            fused::MOV_LSH_X => mov3!(i, |a, b| a << (b & 63), X),
            fused::MOV_RSH_K => mov3!(i, |a, b| a >> (b & 63), K),
            fused::MOV_RSH_X => mov3!(i, |a, b| a >> (b & 63), X),
            fused::MOV_ARSH_K => mov3!(i, |a, b| ((a as i64) >> (b & 63)) as u64, K),
            fused::MOV32_ADD_K => mov3_32!(i, |a, b| a.wrapping_add(b), K),
            fused::MOV32_ADD_X => mov3_32!(i, |a, b| a.wrapping_add(b), X),
            fused::MOV32_SUB_K => mov3_32!(i, |a, b| a.wrapping_sub(b), K),
            fused::MOV32_SUB_X => mov3_32!(i, |a, b| a.wrapping_sub(b), X),
            fused::MOV32_MUL_K => mov3_32!(i, |a, b| a.wrapping_mul(b), K),
            fused::MOV32_MUL_X => mov3_32!(i, |a, b| a.wrapping_mul(b), X),
            fused::MOV32_DIV_K => mov3_32!(i, |a, b| a.checked_div(b).unwrap_or(0), K),
            fused::MOV32_DIV_X => mov3_32!(i, |a, b| a.checked_div(b).unwrap_or(0), X),
            fused::MOV32_MOD_K => mov3_32!(i, |a, b| a.checked_rem(b).unwrap_or(a), K),
            fused::MOV32_MOD_X => mov3_32!(i, |a, b| a.checked_rem(b).unwrap_or(a), X),
            fused::MOV32_OR_K => mov3_32!(i, |a, b| a | b, K),
            fused::MOV32_OR_X => mov3_32!(i, |a, b| a | b, X),
            fused::MOV32_AND_K => mov3_32!(i, |a, b| a & b, K),
            fused::MOV32_AND_X => mov3_32!(i, |a, b| a & b, X),
            fused::MOV32_XOR_K => mov3_32!(i, |a, b| a ^ b, K),
            fused::MOV32_XOR_X => mov3_32!(i, |a, b| a ^ b, X),
            fused::MOV32_LSH_K => mov3_32!(i, |a, b| a << (b & 31), K),
            fused::MOV32_LSH_X => mov3_32!(i, |a, b| a << (b & 31), X),
            fused::MOV32_RSH_K => mov3_32!(i, |a, b| a >> (b & 31), K),
            fused::MOV32_RSH_X => mov3_32!(i, |a, b| a >> (b & 31), X),
            fused::MOV32_ARSH_K => mov3_32!(i, |a, b| ((a as i32) >> (b & 31)), K),
            fused::ADD_JEQ_K => addj!(i, |a, b| a == b, K),
            fused::ADD_JEQ_X => addj!(i, |a, b| a == b, X),
            fused::ADD_JNE_K => addj!(i, |a, b| a != b, K),
            fused::ADD_JNE_X => addj!(i, |a, b| a != b, X),
            fused::ADD_JGT_K => addj!(i, |a, b| a > b, K),
            fused::ADD_JGT_X => addj!(i, |a, b| a > b, X),
            fused::ADD_JGE_K => addj!(i, |a, b| a >= b, K),
            fused::ADD_JGE_X => addj!(i, |a, b| a >= b, X),
            fused::ADD_JLT_K => addj!(i, |a, b| a < b, K),
            fused::ADD_JLT_X => addj!(i, |a, b| a < b, X),
            fused::ADD_JLE_K => addj!(i, |a, b| a <= b, K),
            fused::ADD_JLE_X => addj!(i, |a, b| a <= b, X),
            fused::ADD_JSGT_K => addj!(i, |a, b| (a as i64) > b as i64, K),
            fused::ADD_JSGT_X => addj!(i, |a, b| (a as i64) > b as i64, X),
            fused::ADD_JSGE_K => addj!(i, |a, b| (a as i64) >= b as i64, K),
            fused::ADD_JSGE_X => addj!(i, |a, b| (a as i64) >= b as i64, X),
            fused::ADD_JSLT_K => addj!(i, |a, b| (a as i64) < b as i64, K),
            fused::ADD_JSLT_X => addj!(i, |a, b| (a as i64) < b as i64, X),
            fused::ADD_JSLE_K => addj!(i, |a, b| (a as i64) <= b as i64, K),
            fused::ADD_JSLE_X => addj!(i, |a, b| (a as i64) <= b as i64, X),
            fused::ADD_JSET_K => addj!(i, |a, b| a & b != 0, K),
            fused::ADD_JSET_X => addj!(i, |a, b| a & b != 0, X),
            fused::RSH_AND_K => {
                // SAFETY: as for mov3.
                let j = unsafe { &*ip };
                ip = unsafe { ip.add(1) };
                reg!(i.dst) = (reg!(i.dst) >> (i.imm as u64 & 63)) & j.imm as u64;
            },
            fused::LDX_IDX_B => ldx_idx!(i, u8),
            fused::LDX_IDX_H => ldx_idx!(i, u16),
            fused::LDX_IDX_W => ldx_idx!(i, u32),
            fused::LDX_IDX_DW => ldx_idx!(i, u64),
            fused::PROVEN_LDX_B => ldx_proven!(i, u8),
            fused::PROVEN_LDX_H => ldx_proven!(i, u16),
            fused::PROVEN_LDX_W => ldx_proven!(i, u32),
            fused::PROVEN_LDX_DW => ldx_proven!(i, u64),
            fused::PROVEN_STX_B => stx_proven!(i, u8),
            fused::PROVEN_STX_H => stx_proven!(i, u16),
            fused::PROVEN_STX_W => stx_proven!(i, u32),
            fused::PROVEN_STX_DW => stx_proven!(i, u64),
            fused::MAP_LOOKUP => {
                // SAFETY: m.prog is the program running (see the top of the function).
                let prog = unsafe { &*(*(*run).m).prog };
                match prog.map_lookups.iter().find(|(map, _)| *map == r[1]) {
                    // SAFETY: VmProgram::with_map_lookups' contract, as in `control`.
                    Some((_, how)) => {
                        r[0] = unsafe { direct_map_lookup(*how, r[2], (*(*run).m).cpu) }
                    }
                    None => control!(i),
                }
            },
            fused::SWITCH => {
                // SAFETY: m.prog is the program running (see the top of the function).
                let prog = unsafe { &*(*(*run).m).prog };
                let v = reg!(i.dst);
                let leaf = prog.switch_leaf(pc!() - 1, v).and_then(|(leaf, n)| {
                    // The tree's instructions after the root count as run; runs
                    // that would run out of fuel inside it take the compares
                    // one by one, which stop where the interpreter always does.
                    let executed = executed!().wrapping_add(u64::from(n)).wrapping_sub(1);
                    (executed <= unsafe { (*run).fuel }).then_some((leaf, executed))
                });
                match leaf {
                    Some((leaf, executed)) => {
                        // SAFETY: switch_tables records entries of this program.
                        ip = unsafe { code.add(leaf as usize) };
                        base = executed.wrapping_sub(ip as u64 >> 4);
                    }
                    None => cond!(i, crate::program::jmp_k_taken(i.op, v, i.imm)),
                }
            },
            fused::ADD_JA => {
                // SAFETY: as for mov3.
                let j = unsafe { &*ip };
                ip = unsafe { ip.add(1) };
                reg!(i.dst) = reg!(i.dst).wrapping_add(i.imm as u64) & (((i.off as i64 as u64) << 32) | 0xffff_ffff);
                jump!(j);
            },
        }
    }
    *s = Live { ip, code, base };
    false
}

/// Pushes a frame for a bpf-to-bpf call to entry `target`, returning at `*pc`.
#[inline(always)]
fn push_frame(
    m: &mut Machine<'_>,
    target: usize,
    pc: &mut usize,
    r: &mut [u64; 16],
) -> Result<(), VmError> {
    if m.depth + 1 >= MAX_CALL_FRAMES {
        return Err(VmError::CallStackTooDeep {
            pc: m.cur().slot(*pc - 1),
            frames: m.depth + 2,
        });
    }
    enter_frame(m, *pc, r);
    *pc = target;
    Ok(())
}

/// Saves the caller's frame (callee-saved registers, return entry, program) and
/// gives the callee its own stack and may_goto budget. The caller checked depth.
#[inline(always)]
fn enter_frame(m: &mut Machine<'_>, ret: usize, r: &mut [u64; 16]) {
    m.frames[m.depth] = Frame {
        ret,
        prog: m.prog,
        saved: [r[6], r[7], r[8], r[9]],
    };
    m.depth += 1;
    m.may_goto[m.depth] = BPF_MAX_LOOPS;
    r[10] -= FRAME;
    m.mem.stack_lo -= FRAME;
}

/// Undoes `enter_frame` on a subprogram's exit and returns the caller's frame.
#[inline(always)]
fn leave_frame(m: &mut Machine<'_>, r: &mut [u64; 16]) -> Frame {
    m.depth -= 1;
    let f = m.frames[m.depth];
    r[6..10].copy_from_slice(&f.saved);
    r[10] += FRAME;
    m.mem.stack_lo += FRAME;
    m.prog = f.prog;
    f
}

/// Calls, exits and legacy packet loads. `next` is the entry after the instruction;
/// `m.executed` is up to date on entry and must be on return.
#[inline(never)]
fn control<const CHECKED: bool>(
    m: &mut Machine<'_>,
    next: usize,
    r: &mut [u64; 16],
    base_depth: usize,
) -> Result<Ctl, VmError> {
    // SAFETY: m.prog is alive for the run (see exec_loop); the reference is not
    // tied to `m` so that helpers can borrow `m` mutably.
    let prog: &VmProgram = unsafe { &*m.prog };
    let i = prog.code[next - 1];
    let slot = prog.slot(next - 1);
    let mut pc = next;
    let pc = &mut pc;
    match i.op {
        Op::Exit => {
            if m.depth == base_depth {
                return Ok(Ctl::Return(r[0]));
            }
            *pc = leave_frame(m, r).ret;
        }
        Op::CallLocal => push_frame(m, i.off as usize, pc, r)?,
        Op::Call | Op::CallX => {
            let (id, helper): (i64, &dyn Helper) = if i.op == Op::Call {
                let h = &prog.helpers[i.off as usize];
                (h.0, &*h.1)
            } else {
                let target = r[(i.dst & 15) as usize];
                if let Some(e) = prog.func_entry(target) {
                    // callx to a BPF_PSEUDO_FUNC value: a bpf-to-bpf call.
                    push_frame(m, e, pc, r)?;
                    return Ok(Ctl::Next(*pc));
                }
                match u32::try_from(target).ok().and_then(|id| prog.table.get(id)) {
                    Some(h) => (target as i64, &*h.helper),
                    None => return Err(VmError::BadCallx { pc: slot, target }),
                }
            };
            if id == 1 {
                if let Some((_, how)) = prog.map_lookups.iter().find(|(map, _)| *map == r[1]) {
                    // SAFETY: VmProgram::with_map_lookups' contract: r2 points to
                    // the map's key, and `how` returns what helper 1 would.
                    r[0] = unsafe { direct_map_lookup(*how, r[2], m.cpu) };
                    return Ok(Ctl::Next(*pc));
                }
            }
            let args = [r[1], r[2], r[3], r[4], r[5]];
            m.called_out |= helper.changes_run();
            let out = helper.call(&mut HelperCtx { m, prog, pc: slot }, args);
            match out {
                Ok(HelperOutcome::Return(v)) => r[0] = v,
                Ok(HelperOutcome::TailCall(target)) => {
                    if m.tail_calls >= MAX_TAIL_CALL_CNT {
                        r[0] = TAIL_CALL_LIMIT_ERR;
                    } else {
                        m.tail_calls += 1;
                        // The new program's entry initialises its own count.
                        m.may_goto[m.depth] = BPF_MAX_LOOPS;
                        m.prog = Arc::as_ptr(&target);
                        // Kept until the run ends, so m.prog and frames stay valid.
                        m.keep.push(target);
                        *pc = 0;
                        r[1] = args[0];
                    }
                }
                Err(HelperError::Callback(e)) => return Err(*e),
                Err(source) => {
                    return Err(VmError::Helper {
                        pc: slot,
                        id,
                        source,
                    })
                }
            }
        }
        Op::LdAbsB | Op::LdAbsH | Op::LdAbsW | Op::LdIndB | Op::LdIndH | Op::LdIndW => {
            let size = i.op.mem_size();
            let off = match i.op {
                Op::LdAbsB | Op::LdAbsH | Op::LdAbsW => i.imm as i32 as u32 as u64,
                // src + imm as a 32-bit quantity, as the kernel computes it.
                _ => (r[(i.src & 15) as usize] as u32).wrapping_add(i.imm as u32) as u64,
            };
            match m.packet_load(off, size) {
                Ok(Some(v)) => r[0] = v,
                // Out of range: the kernel ends the program with r0 = 0.
                Ok(None) => return Ok(Ctl::Return(0)),
                Err(()) => return Err(VmError::NoPacket { pc: slot }),
            }
        }
        // Refused at load; an error rather than a panic all the same.
        _ => {
            return Err(VmError::BadCallx {
                pc: slot,
                target: i.imm as u64,
            })
        }
    }
    Ok(Ctl::Next(*pc))
}

/// `addr` is a multiple of `size` (a power of two; 1 always is).
#[inline(always)]
fn aligned(addr: u64, size: u64) -> bool {
    addr & (size - 1) == 0
}

#[inline(always)]
fn sdiv64(a: u64, b: u64) -> u64 {
    if b == 0 {
        0
    } else {
        (a as i64).wrapping_div(b as i64) as u64
    }
}

#[inline(always)]
fn smod64(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        (a as i64).wrapping_rem(b as i64) as u64
    }
}

#[inline(always)]
fn sdiv32(a: u32, b: u32) -> u32 {
    if b == 0 {
        0
    } else {
        (a as i32).wrapping_div(b as i32) as u32
    }
}

#[inline(always)]
fn smod32(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        (a as i32).wrapping_rem(b as i32) as u32
    }
}

impl VmProgram {
    /// Runs the program in checked mode: every memory access is checked against the
    /// stack frames in use, `opts.regions` and `opts.oracle`.
    pub fn run(&self, opts: RunOptions<'_>) -> Result<RunResult, VmError> {
        run_mode::<true>(self, opts)
    }

    /// Runs the program without memory checks (helpers' `check_*` pass too).
    ///
    /// # Safety
    /// The program must have been verified for the memory `opts` describes: every
    /// load, store and atomic it makes, and every pointer it passes to a helper,
    /// must be valid for the run.
    pub unsafe fn run_unchecked(&self, opts: RunOptions<'_>) -> Result<RunResult, VmError> {
        run_mode::<false>(self, opts)
    }

    /// [`Self::run`] `repeat` times (at least once) on one machine, as
    /// `JitProgram::run_repeat` does: the machine is set up once and the stack
    /// reused (the kernel reuses its buffer too); only after a run that called a
    /// helper that may change the setup ([`Helper::changes_run`]) does `refresh`
    /// put the regions and environment as a fresh run sees them. Returns the
    /// last run's result; the first error ends the runs.
    pub fn run_repeat(
        &self,
        opts: RunOptions<'_>,
        repeat: u32,
        refresh: impl FnMut(&mut crate::jit::Rerun<'_>),
    ) -> Result<RunResult, VmError> {
        self.run_repeat_on_cpu(opts, repeat, 0, refresh)
    }

    /// [`Self::run_repeat`] on the simulated CPU `cpu`, which per-CPU array
    /// lookups done in place index by (see [`VmProgram::with_map_lookups`]).
    pub fn run_repeat_on_cpu(
        &self,
        opts: RunOptions<'_>,
        repeat: u32,
        cpu: u32,
        mut refresh: impl FnMut(&mut crate::jit::Rerun<'_>),
    ) -> Result<RunResult, VmError> {
        let args = opts.args;
        let fuel = opts.fuel.unwrap_or(u64::MAX);
        let mut m = Machine::new(opts, true, self.entry_zero);
        m.cpu = cpu;
        let fp = m.mem.stack_hi;
        let mut left = repeat.max(1);
        loop {
            let r0 = exec::<true>(&mut m, self, 0, &args, fp)?;
            left -= 1;
            if left == 0 {
                return Ok(RunResult {
                    r0,
                    executed: m.executed,
                    tail_calls: m.tail_calls,
                });
            }
            if std::mem::take(&mut m.called_out) {
                refresh(&mut crate::jit::Rerun {
                    regions: &mut m.mem.regions,
                    env: m.env.as_deref_mut(),
                });
            }
            m.executed = 0;
            m.fuel = fuel;
            m.tail_calls = 0;
            m.depth = 0;
            m.keep.clear();
            m.mem.stack_lo = m.mem.stack_hi - FRAME;
        }
    }

    /// Convenience for tests and the conformance suite: r1 = `mem`, r2 = its length,
    /// `mem` writable, checked mode.
    pub fn run_with_memory(&self, mem: &mut [u8]) -> Result<RunResult, VmError> {
        let len = mem.len() as u64;
        let opts = RunOptions::new()
            .args([mem.as_mut_ptr() as u64, len, 0, 0, 0])
            .region(Region::from_mut_slice(mem, RegionKind::Mem));
        self.run(opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::{fused, LoadOptions};
    use bpfvm_isa::{encode, Decoded, Insn, Shape};

    fn insn(op: Op, dst: u8, src: u8, off: i16, imm: i64) -> Vec<Insn> {
        encode(&Decoded {
            op,
            dst,
            src,
            off,
            imm,
        })
    }

    /// Handlers pass control to the next one by tail calls: a handler that grew
    /// the stack instead would overflow this thread's small stack within a few
    /// thousand iterations. Every dispatch code but helper calls and legacy packet
    /// loads runs in a loop here (debug builds return to a loop after each
    /// instruction and pass trivially).
    #[test]
    fn handlers_do_not_grow_the_stack() {
        const ITERS: i64 = 20_000;
        let mut bodies: Vec<Vec<Insn>> = Vec::new();
        for op in Op::all() {
            let body = match op.shape() {
                Shape::AluK | Shape::Neg | Shape::End => insn(op, 3, 0, 0, 5),
                Shape::AluX | Shape::MovSx => insn(op, 3, 4, 0, 0),
                Shape::JmpK | Shape::Ja => insn(op, 3, 0, 0, 0),
                Shape::JmpX => insn(op, 3, 4, 0, 0),
                Shape::Ja32 => insn(op, 0, 0, 0, 0),
                Shape::LdImm64 => insn(op, 3, 0, 0, 7),
                Shape::Ldx => insn(op, 3, 10, -8, 0),
                Shape::St => insn(op, 10, 0, -8, 1),
                Shape::Stx | Shape::Atomic | Shape::StoreRel => insn(op, 10, 4, -8, 0),
                Shape::LoadAcq => insn(op, 3, 10, -8, 0),
                Shape::AsCast => insn(op, 3, 4, 0, 1),
                Shape::MayGoto => insn(op, 0, 0, 0, 0),
                _ => continue,
            };
            bodies.push(body);
        }
        for a in Op::all() {
            for b in Op::all() {
                if fused::pair(a, b).is_none() {
                    continue;
                }
                let first = if a.shape() == Shape::AluX {
                    insn(a, 3, 4, 0, 0)
                } else {
                    insn(a, 3, 0, 0, 1)
                };
                let second = match b.shape() {
                    Shape::AluX | Shape::JmpX => insn(b, 3, 4, 0, 0),
                    Shape::Ja => insn(b, 0, 0, 0, 0),
                    _ => insn(b, 3, 0, 0, 3),
                };
                bodies.push([first, second].concat());
            }
        }
        let asm = |src: &str| bpfvm_isa::asm::assemble(src).unwrap();
        bodies.push(asm("add %r3, 1\nxor %r3, 5\nmul %r3, 3"));
        for size in ["b", "h", "w", "dw"] {
            bodies.push(asm(&format!(
                "mov %r5, %r10\nadd %r5, %r6\nldx{size} %r5, [%r5]"
            )));
        }
        // A bpf-to-bpf call and its exit.
        bodies.push(asm("call local +0"));
        let mut covered = std::collections::HashSet::new();
        let mut ran = 0;
        for body in &bodies {
            let n = body.len() as i16;
            let mut call_target = Vec::new();
            if body[0].code == 0x85 {
                // `call local` to an `exit` placed after the main exit.
                call_target = asm("exit");
            }
            let prog = [
                asm(&format!(
                    "mov %r1, {ITERS}\nmov %r3, 5\nmov %r4, 3\nmov %r6, -8\nstdw [%r10-8], 0"
                )),
                body.clone(),
                asm(&format!("add %r1, -1\njne %r1, 0, {}\nexit", -(n + 2))),
                call_target,
            ]
            .concat();
            let mut prog = prog;
            if body[0].code == 0x85 {
                // Relative to the slot after the call: skip add, jne and exit.
                prog[5].imm = 3;
            }
            let Ok(p) = VmProgram::new(&prog, &LoadOptions::default()) else {
                continue;
            };
            // Every access of these bodies is to the stack, in bounds (the
            // checked run below succeeds): a copy with every slot marked proven
            // is a valid use of with_proven_mem.
            // SAFETY: as just said.
            let proven = unsafe { p.clone().with_proven_mem(&vec![true; prog.len()]) };
            covered.extend(p.code.iter().map(|v| v.code));
            covered.extend(proven.code.iter().map(|v| v.code));
            let out = std::thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || {
                    let unchecked = unsafe { p.run_unchecked(RunOptions::new()) }.map(|r| r.r0);
                    let checked = p.run(RunOptions::new()).map(|r| r.r0);
                    (
                        checked,
                        unchecked,
                        proven.run(RunOptions::new()).map(|r| r.r0),
                    )
                })
                .unwrap()
                .join()
                .expect("no stack overflow");
            assert!(out.0.is_ok(), "{out:?}");
            assert_eq!(out.0.as_ref().ok(), out.1.as_ref().ok());
            assert_eq!(out.0.as_ref().ok(), out.2.as_ref().ok());
            ran += 1;
        }
        assert!(ran > 200, "{ran}");
        // MAP_LOOKUP needs maps: map_lookups_in_the_handler_match_the_helper.
        for c in fused::MOV_ADD_K..fused::MAP_LOOKUP {
            assert!(covered.contains(&c), "fused code {c} not covered");
        }
    }

    /// A compare tree run as one table lookup (fused::SWITCH) gives what its
    /// compares give: the same r0, the same count of executed instructions,
    /// and the same out-of-fuel error at every fuel limit, for values inside
    /// the table and outside it (large, negative, 32-bit aliases).
    #[test]
    fn switch_tables_match_the_compares() {
        // A balanced tree over keys 0..24 as clang emits for a `switch`
        // (signed and unsigned, 64- and 32-bit compares), each leaf setting r0
        // and joining at `out`.
        fn tree(lo: u32, hi: u32, w: &mut String, n: &mut u32) {
            if hi - lo < 2 {
                for k in lo..=hi {
                    *n += 1;
                    w.push_str(&format!("jeq %r1, {k}, leaf{k}\n"));
                }
                w.push_str("ja dflt\n");
                return;
            }
            let mid = (lo + hi) / 2;
            *n += 1;
            let (op, l) = match mid % 3 {
                0 => ("jsgt", *n),
                1 => ("jgt32", *n),
                _ => ("jgt", *n),
            };
            w.push_str(&format!("{op} %r1, {mid}, right{l}\n"));
            tree(lo, mid, w, n);
            w.push_str(&format!("right{l}:\n"));
            tree(mid + 1, hi, w, n);
        }
        let mut src = String::from("ldxdw %r1, [%r1]\n");
        tree(0, 23, &mut src, &mut 0);
        for k in 0..24 {
            src.push_str(&format!("leaf{k}:\nmov %r0, {}\nja out\n", k * 7 + 1));
        }
        src.push_str("dflt:\nmov %r0, 999\nout:\nexit\n");
        let prog = bpfvm_isa::asm::assemble(&src).unwrap();
        let fused = VmProgram::new(&prog, &LoadOptions::default()).unwrap();
        assert_eq!(
            fused
                .code
                .iter()
                .filter(|v| v.code == fused::SWITCH)
                .count(),
            1
        );
        let mut plain = fused.clone();
        for v in plain.code.iter_mut() {
            if v.code == fused::SWITCH {
                v.code = v.op as u8;
            }
        }
        let keys = (0..300u64).chain([
            u64::MAX,
            1 << 32,
            (1 << 32) + 3,
            0x8000_0000,
            i64::MIN as u64,
        ]);
        for key in keys {
            let mut mem = key.to_le_bytes();
            for fuel in (1..16).chain([u64::MAX]) {
                let mut run = |p: &VmProgram| {
                    let opts = RunOptions::new()
                        .args([mem.as_mut_ptr() as u64, 8, 0, 0, 0])
                        .region(Region::from_mut_slice(&mut mem, RegionKind::Mem))
                        .fuel(fuel);
                    // The error's text names its position and count.
                    p.run(opts).map_err(|e| e.to_string())
                };
                let (want, got) = (run(&plain), run(&fused));
                assert_eq!(got, want, "key {key:#x} fuel {fuel}");
                if fuel == u64::MAX {
                    assert!(want.is_ok(), "{want:?}");
                }
            }
        }
    }

    /// bpf-to-bpf calls and returns done in their handlers: callee-saved
    /// registers restored, instructions counted, fuel checked where `control`
    /// checked it (on arrival at the callee and at the return point), and the
    /// frame limit's error.
    #[test]
    fn local_calls_count_and_stop_as_before() {
        let asm = |src: &str| bpfvm_isa::asm::assemble(src).unwrap();
        // 0 mov, 1 mov, 2 call, 3 add, 4 exit | 5 mov, 6 add, 7 exit
        let p = VmProgram::new(
            &asm(
                "mov %r0, 0\nmov %r6, 5\ncall local +2\nadd %r0, %r6\nexit\n\
                  mov %r6, 100\nadd %r0, 1\nexit",
            ),
            &LoadOptions::default(),
        )
        .unwrap();
        let run = |fuel: u64| p.run(RunOptions::new().fuel(fuel));
        let done = run(u64::MAX).unwrap();
        assert_eq!((done.r0, done.executed), (6, 8));
        for fuel in 0..3 {
            assert!(
                matches!(run(fuel), Err(VmError::OutOfFuel { pc: 5, executed: 3 })),
                "{:?}",
                run(fuel)
            );
        }
        for fuel in 3..6 {
            assert!(
                matches!(run(fuel), Err(VmError::OutOfFuel { pc: 3, executed: 6 })),
                "{:?}",
                run(fuel)
            );
        }
        assert_eq!(run(6).map(|r| r.r0).ok(), Some(6));
        // A function calling itself until the frames run out.
        let deep = VmProgram::new(&asm("call local -1\nexit"), &LoadOptions::default()).unwrap();
        let e = deep.run(RunOptions::new()).unwrap_err();
        assert!(
            matches!(e, VmError::CallStackTooDeep { pc: 0, frames } if frames == MAX_CALL_FRAMES + 1),
            "{e:?}"
        );
        // SAFETY: the program touches no memory.
        let e2 = unsafe { deep.run_unchecked(RunOptions::new()) }.unwrap_err();
        assert_eq!(e2.to_string(), e.to_string());
    }

    /// `call 1` done by the MAP_LOOKUP handler gives what the helper gives, for
    /// a map it knows, and falls back to the helper for a map it does not.
    #[test]
    fn map_lookups_in_the_handler_match_the_helper() {
        const KNOWN: u64 = 0x1000;
        const OTHER: u64 = 0x2000;
        let values: Box<[u64; 4]> = Box::new([11, 22, 33, 44]);
        let base = values.as_ptr() as u64;
        // Helper 1: the array for KNOWN, element 0 for any other map.
        let lookup = move |_: &mut HelperCtx<'_, '_>, a: [u64; 5]| {
            // SAFETY: the test programs pass a 4-byte key on their stack.
            let k = unsafe { (a[1] as *const u32).read_unaligned() } as u64;
            let v = match a[0] {
                KNOWN if k < 4 => base + 8 * k,
                KNOWN => 0,
                _ => base,
            };
            Ok(HelperOutcome::Return(v))
        };
        let mut table = crate::helpers::HelperTable::new();
        table.register(1, "bpf_map_lookup_elem", lookup);
        let opts = LoadOptions::new(Arc::new(table));
        for map in [KNOWN, OTHER] {
            for key in [0u32, 2, 3, 4, 100] {
                let src = format!(
                    "stw [%r10-4], {key}\nmov %r2, %r10\nadd %r2, -4\nlddw %r1, {map}\ncall 1\n\
                     jne %r0, 0, +2\nmov %r0, 7\nexit\nldxdw %r0, [%r0]\nexit"
                );
                let prog = bpfvm_isa::asm::assemble(&src).unwrap();
                let plain = VmProgram::new(&prog, &opts).unwrap();
                let how = crate::jit::MapLookup::Array {
                    values: base,
                    max_entries: 4,
                    stride: 8,
                };
                // SAFETY: `how` returns what helper 1 returns for KNOWN, and the
                // key is on the stack.
                let direct = unsafe {
                    plain
                        .clone()
                        .with_map_lookups(vec![(KNOWN, how)], Vec::new())
                };
                assert!(direct.code.iter().any(|v| v.code == fused::MAP_LOOKUP));
                let region = Region::new(base, 32, false, RegionKind::MapValue);
                let want = plain.run(RunOptions::new().region(region)).map(|r| r.r0);
                let got = direct.run(RunOptions::new().region(region)).map(|r| r.r0);
                // SAFETY: every access is to the stack or the array.
                let unchecked = unsafe { direct.run_unchecked(RunOptions::new()) }.map(|r| r.r0);
                assert!(want.is_ok(), "{want:?}");
                assert_eq!(
                    got.as_ref().ok(),
                    want.as_ref().ok(),
                    "map {map:#x} key {key}"
                );
                assert_eq!(
                    unchecked.as_ref().ok(),
                    want.as_ref().ok(),
                    "map {map:#x} key {key}"
                );
            }
        }
        drop(values);
    }
}
