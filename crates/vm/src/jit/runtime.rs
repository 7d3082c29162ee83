//! The run-time side of JIT code: the context block the code addresses through
//! r12, and the trampolines it calls for helpers, `callx`, legacy packet loads and
//! memory checks that miss the stack. Trampolines run on the interpreter's
//! [`Machine`], so helpers see exactly what they see under the interpreter.

use super::{JitInner, ProgData};
use crate::error::{Access, HelperError, VmError};
use crate::helpers::{Helper, HelperCtx, HelperOutcome, TAIL_CALL_LIMIT_ERR};
use crate::interp::Machine;
use crate::program::VmProgram;
use bpfvm_isa::consts::{BPF_MAX_LOOPS, MAX_BPF_STACK, MAX_CALL_FRAMES, MAX_TAIL_CALL_CNT};
use std::any::Any;
use std::mem::offset_of;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::addr_of_mut;
use std::sync::Arc;

pub(crate) const STATUS_OK: u32 = 0;
pub(crate) const STATUS_FAULT: u32 = 1;
pub(crate) const STATUS_TAIL_CALL: u32 = 2;
/// A legacy packet load out of range: the run ends with r0 = 0.
pub(crate) const STATUS_RETURN_ZERO: u32 = 3;

/// Faults the generated code detects itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum FaultKind {
    /// `ctx.error` holds the error (set by a trampoline).
    Recorded = 0,
    OutOfFuel = 1,
    CallDepth = 2,
    Misaligned = 3,
    BadInsn = 4,
}

/// What the generated code reads and writes through r12. The first fields are at
/// fixed offsets (see [`ctx_off`]); the rest is only touched from Rust.
#[repr(C)]
pub(crate) struct RunCtx {
    /// Remaining fuel, signed: negative means out of fuel.
    fuel: i64,
    status: u32,
    /// Frames in use minus one.
    depth: u32,
    saved_rsp: u64,
    tail_addr: u64,
    /// Highest address an access of 1, 2, 4, 8 bytes may start at on the stack.
    stack_limit: [u64; 4],
    fault_kind: u32,
    fault_pc: u32,
    fault_info: u32,
    _pad: u32,
    fault_addr: u64,
    /// A region the last slow-path read check found: accesses of 1 << k bytes
    /// starting in `rc_start ..= rc_limit[k]` pass without a call.
    rc_start: u64,
    rc_limit: [u64; 4],
    /// The same for writes and atomics (a writable region no earlier region overlaps).
    wc_start: u64,
    wc_limit: [u64; 4],
    /// Runs the entry thunk still has to make (it re-enters the code until this
    /// reaches 0 or a run called out).
    loop_left: u32,
    /// Nonzero when a trampoline ran a helper in this run (the regions or the
    /// environment may have changed; see `run`).
    called_out: u32,
    /// The simulated CPU of the run (per-CPU map lookups compiled inline).
    cpu: u64,
    /// Per frame (`depth`), the `may_goto` executions left before it jumps
    /// (the interpreter's `Machine::may_goto`): set on entry to a function by
    /// the entry thunk, local calls and tail calls.
    may_goto: [u64; MAX_CALL_FRAMES],
    // ---- Rust only ----
    fuel_start: i64,
    error: Option<VmError>,
    panic: Option<Box<dyn Any + Send>>,
    m: *mut Machine<'static>,
    /// The program whose code made the current helper call (for callbacks).
    cur: *const ProgData,
    /// Tail-called programs, alive until the run ends (frames return into them).
    keep: Vec<Arc<JitInner>>,
    checked: bool,
    metering: bool,
}

/// Offsets of [`RunCtx`] fields, as the code generator addresses them.
pub(crate) mod ctx_off {
    use super::*;
    pub(crate) const FUEL: i32 = offset_of!(RunCtx, fuel) as i32;
    pub(crate) const STATUS: i32 = offset_of!(RunCtx, status) as i32;
    pub(crate) const DEPTH: i32 = offset_of!(RunCtx, depth) as i32;
    pub(crate) const SAVED_RSP: i32 = offset_of!(RunCtx, saved_rsp) as i32;
    pub(crate) const TAIL_ADDR: i32 = offset_of!(RunCtx, tail_addr) as i32;
    pub(crate) const STACK_LIMIT: i32 = offset_of!(RunCtx, stack_limit) as i32;
    pub(crate) const FAULT_KIND: i32 = offset_of!(RunCtx, fault_kind) as i32;
    pub(crate) const FAULT_PC: i32 = offset_of!(RunCtx, fault_pc) as i32;
    pub(crate) const FAULT_INFO: i32 = offset_of!(RunCtx, fault_info) as i32;
    pub(crate) const FAULT_ADDR: i32 = offset_of!(RunCtx, fault_addr) as i32;
    pub(crate) const RC_START: i32 = offset_of!(RunCtx, rc_start) as i32;
    pub(crate) const RC_LIMIT: i32 = offset_of!(RunCtx, rc_limit) as i32;
    pub(crate) const WC_START: i32 = offset_of!(RunCtx, wc_start) as i32;
    pub(crate) const WC_LIMIT: i32 = offset_of!(RunCtx, wc_limit) as i32;
    pub(crate) const LOOP_LEFT: i32 = offset_of!(RunCtx, loop_left) as i32;
    pub(crate) const CALLED_OUT: i32 = offset_of!(RunCtx, called_out) as i32;
    pub(crate) const CPU: i32 = offset_of!(RunCtx, cpu) as i32;
    pub(crate) const MAY_GOTO: i32 = offset_of!(RunCtx, may_goto) as i32;
}

type Entry = unsafe extern "sysv64" fn(*mut RunCtx, u64, *const [u64; 5], u64) -> u64;

/// Runs `inner` from its first instruction on a new machine, `repeat` times (at
/// least once): the machine and the context are set up once (see
/// [`super::JitProgram::run_repeat`]).
pub(crate) fn run(
    inner: &Arc<JitInner>,
    opts: crate::RunOptions<'_>,
    repeat: u32,
    cpu: u32,
    refresh: &mut dyn FnMut(&mut super::Rerun<'_>),
) -> Result<crate::RunResult, VmError> {
    if let Some(entry) = inner.fast_entry {
        return Ok(run_fast(inner, entry, &opts.args, repeat));
    }
    let args = opts.args;
    let fuel = opts.fuel.unwrap_or(u64::MAX).min(i64::MAX as u64) as i64;
    let checked = inner.checked;
    if inner.leaf {
        return run_leaf(inner, args, fuel, repeat, cpu);
    }
    let mut m = Machine::new(opts, checked, inner.data.prog.entry_zero);
    let hi = m.mem.stack_hi;
    let stack_lo = m.mem.stack_lo;
    let mut ctx = RunCtx {
        fuel,
        status: STATUS_OK,
        depth: 0,
        saved_rsp: 0,
        tail_addr: 0,
        stack_limit: [hi - 1, hi - 2, hi - 4, hi - 8],
        fault_kind: 0,
        fault_pc: 0,
        fault_info: 0,
        _pad: 0,
        fault_addr: 0,
        rc_start: u64::MAX,
        rc_limit: [0; 4],
        wc_start: u64::MAX,
        wc_limit: [0; 4],
        loop_left: 0,
        called_out: 0,
        cpu: cpu as u64,
        may_goto: [BPF_MAX_LOOPS; MAX_CALL_FRAMES],
        fuel_start: fuel,
        error: None,
        panic: None,
        m: std::ptr::null_mut(),
        cur: &*inner.data,
        keep: Vec::new(),
        checked,
        metering: inner.opts.metering,
    };
    let ctx_ptr: *mut RunCtx = &mut ctx;
    // The machine's lifetime is erased in the context; the context does not
    // outlive this function.
    let m_ptr = (&mut m as *mut Machine<'_>).cast::<Machine<'static>>();
    // SAFETY: both pointers are to locals alive until the end of this function;
    // from here on both are reached only through these pointers.
    unsafe {
        (*ctx_ptr).m = m_ptr;
        (*m_ptr).jit = ctx_ptr.cast();
    }
    let data = &*inner.data;
    let start = data.addr(data.entry_nochk[0]);
    let mut left = repeat.max(1);
    let r0 = loop {
        // SAFETY: as above; no run is in progress between two `enter`s.
        unsafe {
            (*ctx_ptr).loop_left = left;
            // The entry thunk runs the code until `loop_left` runs out or a run
            // called out (see codegen's entry_thunk).
            let res = enter(ctx_ptr, data, start, &args, hi);
            if let Some(p) = (*ctx_ptr).panic.take() {
                std::panic::resume_unwind(p);
            }
            let r0 = res?;
            let c = &mut *ctx_ptr;
            left = c.loop_left;
            if left == 0 {
                break r0;
            }
            // A run called a helper: it may have moved or added regions, or
            // changed the environment; put them as a fresh run sees them.
            let m = &mut *m_ptr;
            c.called_out = 0;
            refresh(&mut super::Rerun {
                regions: &mut m.mem.regions,
                env: m.env.as_deref_mut(),
            });
            reset_cache(ctx_ptr);
            m.tail_calls = 0;
            m.keep.clear();
            c.keep.clear();
            m.mem.stack_lo = stack_lo;
            c.cur = data;
            c.fuel = fuel;
            c.depth = 0;
        }
    };
    // SAFETY: no run is in progress; the pointers are to the locals above.
    let (c, m) = unsafe { (&*ctx_ptr, &*m_ptr) };
    Ok(crate::RunResult {
        r0,
        // Without metering r9 is a scratch register (see codegen's div_core)
        // and nothing is counted.
        executed: if c.metering {
            (c.fuel_start - c.fuel) as u64
        } else {
            0
        },
        tail_calls: m.tail_calls,
    })
}

/// [`run`] for code that never leaves the native code ([`JitInner::leaf`]):
/// unchecked, no helper to give a machine to, so the frames are a buffer on
/// this stack (the entry frame's top zeroed as a machine's would be) and the
/// setup is the run context alone. What a short program spends per run.
fn run_leaf(
    inner: &Arc<JitInner>,
    args: [u64; 5],
    fuel: i64,
    repeat: u32,
    cpu: u32,
) -> Result<crate::RunResult, VmError> {
    const WORDS: usize = bpfvm_isa::consts::MAX_CALL_FRAMES * MAX_BPF_STACK / 8;
    let mut stack = std::mem::MaybeUninit::<[u64; WORDS]>::uninit();
    let base = stack.as_mut_ptr() as *mut u64;
    let zero = inner.data.prog.entry_zero.min(MAX_BPF_STACK).div_ceil(8);
    // SAFETY: the last `zero` words of the buffer.
    unsafe { std::ptr::write_bytes(base.add(WORDS - zero), 0, zero) };
    let hi = base as u64 + (WORDS * 8) as u64;
    let mut ctx = RunCtx {
        fuel,
        status: STATUS_OK,
        depth: 0,
        saved_rsp: 0,
        tail_addr: 0,
        stack_limit: [hi - 1, hi - 2, hi - 4, hi - 8],
        fault_kind: 0,
        fault_pc: 0,
        fault_info: 0,
        _pad: 0,
        fault_addr: 0,
        rc_start: u64::MAX,
        rc_limit: [0; 4],
        wc_start: u64::MAX,
        wc_limit: [0; 4],
        loop_left: repeat.max(1),
        called_out: 0,
        cpu: cpu as u64,
        may_goto: [BPF_MAX_LOOPS; MAX_CALL_FRAMES],
        fuel_start: fuel,
        error: None,
        panic: None,
        m: std::ptr::null_mut(),
        cur: &*inner.data,
        keep: Vec::new(),
        checked: false,
        metering: inner.opts.metering,
    };
    let data = &*inner.data;
    let start = data.addr(data.entry_nochk[0]);
    // SAFETY: the code never calls out (leaf), so nothing reaches the null
    // machine; ctx and the stack outlive the call.
    let r0 = unsafe { enter(&mut ctx, data, start, &args, hi) }?;
    Ok(crate::RunResult {
        r0,
        executed: if ctx.metering {
            (ctx.fuel_start - ctx.fuel) as u64
        } else {
            0
        },
        tail_calls: 0,
    })
}

/// `extern "sysv64" fn(r1, r2, r3, r4, r5, r10) -> r0`: codegen's `fast_entry`.
type FastEntry = unsafe extern "sysv64" fn(u64, u64, u64, u64, u64, u64) -> u64;

/// [`run`] for code that never reads the run context ([`JitInner::fast_entry`]:
/// unchecked, no metering, nothing that calls out or faults): the frames are a
/// buffer on this stack, as in [`run_leaf`], and there is no context to fill
/// in. Nothing is counted (no metering) and nothing can fail. A program
/// without bpf-to-bpf calls gets one frame, which keeps the frame of
/// [`run_fast_in`] under a page (no stack probe per run). r1..r5 and r10 go
/// to the code in the argument registers they live in there, and r0 comes
/// back in rax: a run's values do not make a round trip through memory,
/// whose reads right after differently sized writes stall store forwarding.
#[inline]
pub(crate) fn run_fast(
    inner: &JitInner,
    entry: u32,
    args: &[u64; 5],
    repeat: u32,
) -> crate::RunResult {
    const FRAME_WORDS: usize = MAX_BPF_STACK / 8;
    let r0 = if inner.frames == Some(1) {
        run_fast_in::<FRAME_WORDS>(inner, entry, *args, repeat)
    } else {
        run_fast_in::<{ MAX_CALL_FRAMES * FRAME_WORDS }>(inner, entry, *args, repeat)
    };
    crate::RunResult {
        r0,
        executed: 0,
        tail_calls: 0,
    }
}

/// Not inlined: each buffer size gets its own frame.
#[inline(never)]
fn run_fast_in<const WORDS: usize>(
    inner: &JitInner,
    entry: u32,
    [r1, r2, r3, r4, r5]: [u64; 5],
    repeat: u32,
) -> u64 {
    let mut stack = std::mem::MaybeUninit::<[u64; WORDS]>::uninit();
    let base = stack.as_mut_ptr() as *mut u64;
    let zero = inner.data.prog.entry_zero.min(MAX_BPF_STACK).div_ceil(8);
    // Word by word: a call to memset costs more than the few words a
    // program's entry frame usually needs (volatile keeps it from becoming one).
    for k in WORDS - zero..WORDS {
        // SAFETY: the last `zero` words of the buffer (WORDS >= one frame).
        unsafe { std::ptr::write_volatile(base.add(k), 0) };
    }
    let hi = base as u64 + (WORDS * 8) as u64;
    // SAFETY: the code at `entry` is a FastEntry (codegen::Gen::fast_entry);
    // the program's frames fit the buffer: one without calls uses one frame,
    // one with calls that do not count the depth at most MAX_CALL_FRAMES from
    // depth 0, where this code is always entered.
    let f: FastEntry = unsafe { std::mem::transmute::<u64, FastEntry>(inner.data.addr(entry)) };
    let mut r0 = 0;
    for _ in 0..repeat.max(1) {
        // SAFETY: as above; the stack outlives the call.
        r0 = unsafe { f(r1, r2, r3, r4, r5, hi) };
    }
    r0
}

/// Calls the entry thunk of `inner` for the function at `target`; turns a fault or
/// an early return into the result and restores the saved stack pointer (callbacks
/// nest).
unsafe fn enter(
    ctx: *mut RunCtx,
    inner: &ProgData,
    target: u64,
    args: &[u64; 5],
    r10: u64,
) -> Result<u64, VmError> {
    let saved = (*ctx).saved_rsp;
    // SAFETY: offset 0 of the code is the entry thunk, an `Entry`.
    let f: Entry = std::mem::transmute::<u64, Entry>(inner.addr(0));
    let r0 = f(ctx, target, args, r10);
    (*ctx).saved_rsp = saved;
    let status = std::mem::replace(&mut (*ctx).status, STATUS_OK);
    match status {
        STATUS_OK => Ok(r0),
        STATUS_RETURN_ZERO => Ok(0),
        _ => Err(take_fault(ctx)),
    }
}

unsafe fn take_fault(ctx: *mut RunCtx) -> VmError {
    let c = &mut *ctx;
    let pc = c.fault_pc as usize;
    match c.fault_kind {
        k if k == FaultKind::OutOfFuel as u32 => VmError::OutOfFuel {
            pc,
            executed: (c.fuel_start - c.fuel) as u64,
        },
        k if k == FaultKind::CallDepth as u32 => VmError::CallStackTooDeep {
            pc,
            frames: c.depth as usize + 2,
        },
        k if k == FaultKind::Misaligned as u32 => VmError::MisalignedAtomic {
            pc,
            addr: c.fault_addr,
            size: c.fault_info as usize,
        },
        k if k == FaultKind::BadInsn as u32 => VmError::BadCallx { pc, target: 0 },
        _ => c
            .error
            .take()
            .unwrap_or(VmError::BadCallx { pc, target: 0 }),
    }
}

/// Records an error and asks the code to unwind.
unsafe fn fail(ctx: *mut RunCtx, e: VmError) {
    (*ctx).error = Some(e);
    (*ctx).fault_kind = FaultKind::Recorded as u32;
    (*ctx).status = STATUS_FAULT;
}

/// The memory check's slow path: the listed regions, then the oracle. Returns 1
/// if the access may go ahead; otherwise records the violation and returns 0.
pub(crate) unsafe extern "sysv64" fn jit_mem_check(
    ctx: *mut RunCtx,
    addr: u64,
    base: u64,
    info: u64,
) -> u64 {
    let size = (info & 0xff) as usize;
    let access = match (info >> 8) & 0xff {
        0 => Access::Read,
        1 => Access::Write,
        _ => Access::Atomic,
    };
    let pc = (info >> 16) as usize;
    let m = &*(*ctx).m;
    let write = access != Access::Read;
    let regions = &m.mem.regions;
    // The first region that contains the access decides, as in MemoryMap::ok_slow.
    if let Some(k) = regions.iter().position(|r| r.contains(addr, size as u64)) {
        let r = regions[k];
        if r.writable || !write {
            let (start, limit) = cache_bounds(&r);
            (*ctx).rc_start = start;
            (*ctx).rc_limit = limit;
            if r.writable
                && !regions[..k]
                    .iter()
                    .any(|o| o.start < r.end && r.start < o.end)
            {
                (*ctx).wc_start = start;
                (*ctx).wc_limit = limit;
            }
            return 1;
        }
    } else if m.mem.ok_slow(addr, size as u64, write) {
        // The oracle vouched for it; its answers are not cached (map elements
        // come and go).
        return 1;
    }
    let what = m.mem.describe_violation(base, addr, access);
    fail(
        ctx,
        VmError::MemoryViolation {
            pc,
            addr,
            size,
            access,
            what,
        },
    );
    0
}

/// The cache entry for region `r`: its start (at least 1) and, per access size,
/// the last start address that fits (0 when none does).
fn cache_bounds(r: &crate::Region) -> (u64, [u64; 4]) {
    let start = r.start.max(1);
    let mut limit = [0u64; 4];
    for (k, l) in limit.iter_mut().enumerate() {
        let sz = 1u64 << k;
        if r.end >= sz && r.end - sz >= start {
            *l = r.end - sz;
        }
    }
    (start, limit)
}

/// Forgets the cached regions (helpers may add, remove or move regions).
unsafe fn reset_cache(ctx: *mut RunCtx) {
    (*ctx).rc_start = u64::MAX;
    (*ctx).rc_limit = [0; 4];
    (*ctx).wc_start = u64::MAX;
    (*ctx).wc_limit = [0; 4];
}

/// BPF_LD_ABS / BPF_LD_IND: `info` = size | slot << 8.
pub(crate) unsafe extern "sysv64" fn jit_ld_packet(ctx: *mut RunCtx, off: u64, info: u64) -> u64 {
    let size = (info & 0xff) as usize;
    let pc = (info >> 8) as usize;
    let m = &*(*ctx).m;
    match m.packet_load(off, size) {
        Ok(Some(v)) => v,
        Ok(None) => {
            (*ctx).status = STATUS_RETURN_ZERO;
            0
        }
        Err(()) => {
            fail(ctx, VmError::NoPacket { pc });
            0
        }
    }
}

/// `call N`: `regs` is r1..r5 then r0.
pub(crate) unsafe extern "sysv64" fn jit_helper(
    ctx: *mut RunCtx,
    index: u64,
    r10: u64,
    regs: *const [u64; 6],
    data: *const ProgData,
    slot: u64,
) -> u64 {
    let prog = &(*data).prog;
    let Some((id, helper)) = prog.helpers.get(index as usize) else {
        fail(
            ctx,
            VmError::BadCallx {
                pc: slot as usize,
                target: index,
            },
        );
        return 0;
    };
    call_helper(ctx, *id, &**helper, r10, &*regs, data, slot as usize)
}

/// `callx` with a value that is not a function of the program: a helper id.
pub(crate) unsafe extern "sysv64" fn jit_callx(
    ctx: *mut RunCtx,
    target: u64,
    r10: u64,
    regs: *const [u64; 6],
    data: *const ProgData,
    slot: u64,
) -> u64 {
    let prog = &(*data).prog;
    match u32::try_from(target).ok().and_then(|id| prog.table.get(id)) {
        Some(h) => {
            let helper = h.helper.clone();
            call_helper(
                ctx,
                target as i64,
                &*helper,
                r10,
                &*regs,
                data,
                slot as usize,
            )
        }
        None => {
            fail(
                ctx,
                VmError::BadCallx {
                    pc: slot as usize,
                    target,
                },
            );
            0
        }
    }
}

unsafe fn call_helper(
    ctx: *mut RunCtx,
    id: i64,
    helper: &dyn Helper,
    r10: u64,
    regs: &[u64; 6],
    data: *const ProgData,
    slot: usize,
) -> u64 {
    if helper.changes_run() {
        (*ctx).called_out = 1;
    }
    let m = &mut *(*ctx).m;
    m.mem.stack_lo = r10 - MAX_BPF_STACK as u64;
    let prog: &VmProgram = &(*data).prog;
    let saved_cur = std::mem::replace(&mut *addr_of_mut!((*ctx).cur), data);
    let args = [regs[0], regs[1], regs[2], regs[3], regs[4]];
    let out = catch_unwind(AssertUnwindSafe(|| {
        helper.call(&mut HelperCtx { m, prog, pc: slot }, args)
    }));
    *addr_of_mut!((*ctx).cur) = saved_cur;
    reset_cache(ctx);
    let out = match out {
        Ok(o) => o,
        Err(p) => {
            (*ctx).panic = Some(p);
            fail(
                ctx,
                VmError::BadCallx {
                    pc: slot,
                    target: id as u64,
                },
            );
            return 0;
        }
    };
    match out {
        Ok(HelperOutcome::Return(v)) => v,
        Ok(HelperOutcome::TailCall(target)) => {
            let m = &mut *(*ctx).m;
            if m.tail_calls >= MAX_TAIL_CALL_CNT {
                return TAIL_CALL_LIMIT_ERR;
            }
            let depth = (*ctx).depth as usize;
            match super::tail_call_jit(&target, (*ctx).checked, (*ctx).metering, depth) {
                Ok(inner) => {
                    m.tail_calls += 1;
                    // The new program's entry initialises its own count.
                    let depth = ((*ctx).depth as usize).min(MAX_CALL_FRAMES - 1);
                    (*ctx).may_goto[depth] = BPF_MAX_LOOPS;
                    (*ctx).tail_addr = inner.data.addr(inner.data.entry_chk[0]);
                    (*ctx).status = STATUS_TAIL_CALL;
                    (*addr_of_mut!((*ctx).keep)).push(inner);
                    m.keep.push(target);
                    // r0 is unchanged by a tail call.
                    regs[5]
                }
                Err(e) => {
                    fail(
                        ctx,
                        VmError::Helper {
                            pc: slot,
                            id,
                            source: HelperError::Other(Box::new(e)),
                        },
                    );
                    0
                }
            }
        }
        Err(HelperError::Callback(e)) => {
            fail(ctx, *e);
            0
        }
        Err(source) => {
            fail(
                ctx,
                VmError::Helper {
                    pc: slot,
                    id,
                    source,
                },
            );
            0
        }
    }
}

/// [`HelperCtx::call_function`] during a JIT run: runs function `entry` of the
/// program that made the helper call, natively, in a new frame.
pub(crate) fn call_function(
    m: &mut Machine<'_>,
    prog: &VmProgram,
    entry: usize,
    args: [u64; 5],
    call_pc: usize,
) -> Result<u64, VmError> {
    let ctx: *mut RunCtx = m.jit.cast();
    // SAFETY: m.jit is set by `run` to its context, alive for the run; the
    // current program data was set by the trampoline that called the helper.
    unsafe {
        let data = &*(*ctx).cur;
        if !std::ptr::eq(&data.prog, prog) {
            return Err(VmError::BadCallback {
                target: crate::program::FUNC_ADDR_BASE + entry as u64,
            });
        }
        let depth = (*ctx).depth;
        if depth as usize + 1 >= MAX_CALL_FRAMES {
            return Err(VmError::CallStackTooDeep {
                pc: call_pc,
                frames: depth as usize + 2,
            });
        }
        let lo = m.mem.stack_lo;
        (*ctx).depth = depth + 1;
        m.mem.stack_lo = lo - MAX_BPF_STACK as u64;
        (*ctx).m = (m as *mut Machine<'_>).cast();
        reset_cache(ctx);
        // One run of the callback; the outer thunk's count is kept.
        let left = std::mem::replace(&mut (*ctx).loop_left, 1);
        let res = enter(ctx, data, data.addr(data.entry_nochk[entry]), &args, lo);
        (*ctx).loop_left = left;
        (*ctx).depth = depth;
        m.mem.stack_lo = lo;
        res
    }
}
