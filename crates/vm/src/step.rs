//! Observed runs: the interpreter one instruction at a time, with an
//! [`Observer`] called before each, for debuggers, profilers and coverage.
//!
//! This is a separate, slow entry point ([`VmProgram::run_observed`]); the
//! threaded fast path is untouched. It executes exactly the fast path's
//! semantics: each instruction goes through the same per-code body
//! (`interp::step`), but on a copy of the program without superinstructions,
//! so every instruction is seen on its own, and control returns here after
//! each. Programs entered by tail calls get the same treatment, and so do
//! callbacks (`bpf_loop`): the machine carries the stepper, and
//! `interp::call_function` hands callbacks to `call_function`. Runs are
//! always checked (every memory access against the run's regions).

use crate::error::VmError;
use crate::interp::{Frame, Live, Machine, Run, RunOptions, RunResult};
use crate::memory::{MemoryMap, Region};
use crate::program::{VInsn, VmProgram};
use bpfvm_isa::consts::{MAX_BPF_STACK, MAX_CALL_FRAMES};
use std::ptr;

/// What an observer tells the run after looking at an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Run the instruction.
    Continue,
    /// End the run here with [`VmError::Stopped`].
    Stop,
}

/// Called before every instruction of an observed run.
pub trait Observer {
    fn before(&mut self, at: &At<'_>) -> Flow;
}

impl<F: FnMut(&At<'_>) -> Flow> Observer for F {
    fn before(&mut self, at: &At<'_>) -> Flow {
        self(at)
    }
}

/// A caller's frame: where it called from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallSite {
    /// Index of the program in [`At::origin_of`] order (0: the entry program).
    pub prog: usize,
    /// Entry index (LD_IMM64 counted once) of the call instruction.
    pub entry: usize,
    /// Slot index of the call instruction.
    pub slot: usize,
    /// The caller's frame pointer (r10 in that frame).
    pub fp: u64,
}

/// The machine just before an instruction runs.
pub struct At<'a> {
    /// The program executing (a copy of the one the run started with, or of a
    /// tail-called one; the same instructions).
    pub program: &'a VmProgram,
    /// Index of that program among those the run has entered (0: the entry
    /// program, then tail-called ones in the order they were first entered).
    pub prog: usize,
    /// Entry index of the instruction about to run (LD_IMM64 counted once).
    pub entry: usize,
    /// Its slot index (as `prog dump xlated` numbers instructions).
    pub slot: usize,
    /// r0..r10.
    pub regs: &'a [u64; 11],
    /// Frames below the current one (0 in the program's main function).
    pub depth: usize,
    /// Instructions executed before this one.
    pub executed: u64,
    /// Callers, outermost first (`depth` of them).
    pub callers: Vec<CallSite>,
    /// Tail calls taken to get here: (program, slot of the helper call), in order.
    pub tail_calls: &'a [(usize, usize)],
    /// Callbacks (run by helpers such as `bpf_loop`) active at this point.
    pub in_callback: usize,
    progs: &'a [(*const VmProgram, Box<VmProgram>)],
    mem: &'a MemoryMap<'a>,
}

impl At<'_> {
    /// `len` bytes at `addr`, if the run may read them (stack frames in use,
    /// the run's regions, map memory the oracle knows).
    pub fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        if len == 0 || !self.mem.ok(addr, len as u64, false) {
            return None;
        }
        let mut v = vec![0u8; len];
        // SAFETY: the memory map says these bytes are readable for the run.
        unsafe { ptr::copy_nonoverlapping(addr as *const u8, v.as_mut_ptr(), len) };
        Some(v)
    }

    /// The run's regions besides the stack (context, packet, metadata, ...).
    pub fn regions(&self) -> &[Region] {
        &self.mem.regions
    }

    /// The stack frames in use: `[lo, hi)` (r10 of the main function is `hi`).
    pub fn stack(&self) -> (u64, u64) {
        (self.mem.stack_lo, self.mem.stack_hi)
    }

    /// Identity of program `i` (see [`At::prog`]): the address of the
    /// [`VmProgram`] the run was given or a helper tail-called into, to match
    /// with the caller's own programs.
    pub fn origin_of(&self, i: usize) -> Option<*const VmProgram> {
        self.progs.get(i).map(|p| p.0)
    }

    /// Program `i` (see [`At::prog`]).
    pub fn program_at(&self, i: usize) -> Option<&VmProgram> {
        self.progs.get(i).map(|p| &*p.1)
    }
}

/// The observer and the plain copies of the programs the run entered.
pub(crate) struct Stepper<'o> {
    observer: &'o mut dyn Observer,
    /// (the program as given or tail-called, its copy without superinstructions).
    progs: Vec<(*const VmProgram, Box<VmProgram>)>,
    tail_calls: Vec<(usize, usize)>,
    callbacks: usize,
}

impl Stepper<'_> {
    /// The index of `p` (an original or one of the copies), copying it on first sight.
    fn index_of(&mut self, p: *const VmProgram) -> usize {
        if let Some(i) = self
            .progs
            .iter()
            .position(|(o, c)| *o == p || ptr::eq(&**c, p))
        {
            return i;
        }
        // SAFETY: p is the entry program (alive for the run) or a tail-called
        // one kept alive in the machine's `keep`.
        let copy = plain(unsafe { &*p });
        self.progs.push((p, Box::new(copy)));
        self.progs.len() - 1
    }
}

/// A copy of `p` in which every instruction dispatches on its own code: the
/// fused heads keep their operands (the plain handlers do not read the fields
/// fusion reuses: `off` of ALU and mov instructions).
fn plain(p: &VmProgram) -> VmProgram {
    let mut c = p.clone();
    for v in c.code.iter_mut() {
        v.code = v.op as u8;
    }
    c
}

type StepFn = unsafe fn(*mut Run, &mut Live) -> bool;

/// # Safety
/// As for `interp::step`.
unsafe fn one<const CODE: u8>(run: *mut Run, s: &mut Live) -> bool {
    // SAFETY: the caller's promise.
    unsafe { crate::interp::step::<true, CODE>(run, s) }
}

macro_rules! steps {
    ($($n:literal)*) => {
        const STEPS: [StepFn; 256] = [$(one::<$n> as StepFn),*];
    };
}
steps!(
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

impl VmProgram {
    /// Runs the program in checked mode, one instruction at a time, calling
    /// `observer` before each (callbacks and tail-called programs included).
    /// Results, errors and side effects are those of [`VmProgram::run`]; an
    /// observer that returns [`Flow::Stop`] ends the run with
    /// [`VmError::Stopped`].
    pub fn run_observed(
        &self,
        opts: RunOptions<'_>,
        observer: &mut dyn Observer,
    ) -> Result<RunResult, VmError> {
        let args = opts.args;
        // The whole entry frame starts zeroed: an observed run does not need the
        // fast path's economy.
        let mut m = Machine::new(opts, true, bpfvm_isa::consts::MAX_BPF_STACK);
        let mut st = Stepper {
            observer,
            progs: Vec::new(),
            tail_calls: Vec::new(),
            callbacks: 0,
        };
        let i = st.index_of(self);
        let entry: *const VmProgram = &*st.progs[i].1;
        m.step = (&mut st as *mut Stepper<'_>).cast();
        let mut regs = [0u64; 16];
        regs[1..6].copy_from_slice(&args);
        regs[10] = m.mem.stack_hi;
        // SAFETY: entry points into st.progs, which outlives the run.
        let r = exec_observed(&mut m, unsafe { &*entry }, 0, regs);
        m.step = ptr::null_mut();
        let r0 = r?;
        Ok(RunResult {
            r0,
            executed: m.executed,
            tail_calls: m.tail_calls,
        })
    }
}

/// A callback (helper -> function of the program) in an observed run: a new
/// frame, as `interp::call_function` makes one.
pub(crate) fn call_function(
    m: &mut Machine<'_>,
    prog: &VmProgram,
    entry: usize,
    args: [u64; 5],
    call_pc: usize,
) -> Result<u64, VmError> {
    if m.depth + 1 >= MAX_CALL_FRAMES {
        return Err(VmError::CallStackTooDeep {
            pc: call_pc,
            frames: m.depth + 2,
        });
    }
    let (depth, lo) = (m.depth, m.mem.stack_lo);
    // The frame records where the helper was called, for backtraces (an exit
    // at the callback's base depth never reads it).
    let call_entry = prog.slot_of.partition_point(|s| (*s as usize) < call_pc);
    m.frames[depth] = Frame {
        ret: call_entry + 1,
        prog,
        saved: [0; 4],
    };
    m.depth += 1;
    m.may_goto[m.depth] = bpfvm_isa::consts::BPF_MAX_LOOPS;
    let mut regs = [0u64; 16];
    regs[1..6].copy_from_slice(&args);
    regs[10] = lo;
    m.mem.stack_lo = lo - MAX_BPF_STACK as u64;
    // SAFETY: m.step is the stepper of this run (set by run_observed).
    let st = unsafe { &mut *(m.step as *mut Stepper<'_>) };
    st.callbacks += 1;
    // `prog` is the program that called the helper: an entry of the stepper.
    let i = st.index_of(prog);
    let p: *const VmProgram = &*st.progs[i].1;
    // SAFETY: the copy lives in the stepper for the whole run.
    let res = exec_observed(m, unsafe { &*p }, entry, regs);
    let st = unsafe { &mut *(m.step as *mut Stepper<'_>) };
    st.callbacks -= 1;
    m.depth = depth;
    m.mem.stack_lo = lo;
    res
}

/// Runs frame `entry_pc` of `prog` (a plain copy owned by the stepper) until it
/// exits, observing every instruction.
fn exec_observed(
    m: &mut Machine<'_>,
    prog: &VmProgram,
    entry_pc: usize,
    regs: [u64; 16],
) -> Result<u64, VmError> {
    let base_depth = m.depth;
    let saved_prog = m.prog;
    m.prog = prog;
    let code = prog.code.as_ptr();
    // SAFETY: entry_pc is an entry index of the program.
    let ip = unsafe { code.add(entry_pc) };
    let mut s = Live {
        ip,
        code,
        base: m.executed.wrapping_sub(ip as u64 >> 4),
    };
    let mut run = Run {
        regs,
        m: (m as *mut Machine<'_>).cast(),
        fuel: m.fuel,
        base_depth,
        out: None,
        ret: None,
        cont: s,
    };
    let res = loop {
        // SAFETY: run.m is the machine, used only through this pointer while
        // the loop runs; s.ip is an entry of s.code, the code of m.prog.
        let e = unsafe { s.ip.offset_from(s.code) } as usize;
        let (flow, slot) = unsafe {
            let m = &mut *run.m;
            m.executed = s.base.wrapping_add(s.ip as u64 >> 4);
            let st = &mut *(m.step as *mut Stepper<'static>);
            let cur = st.index_of(m.prog);
            let callers = callers(m, st);
            let Stepper {
                observer,
                progs,
                tail_calls,
                callbacks,
            } = st;
            let prog = &*progs[cur].1;
            let mut r = [0u64; 11];
            r.copy_from_slice(&run.regs[..11]);
            let slot = prog.slot(e);
            let at = At {
                program: prog,
                prog: cur,
                entry: e,
                slot,
                regs: &r,
                depth: m.depth,
                executed: m.executed,
                callers,
                tail_calls,
                in_callback: *callbacks,
                progs,
                mem: &m.mem,
            };
            (observer.before(&at), slot)
        };
        if flow == Flow::Stop {
            break Err(VmError::Stopped { pc: slot });
        }
        // SAFETY: as above; the loader and `plain` leave only table codes.
        let (before, depth_before, was_call) = unsafe {
            (
                (*run.m).prog,
                (*run.m).depth,
                (*s.ip).op == bpfvm_isa::Op::Call,
            )
        };
        let done = unsafe { STEPS[(*s.ip).code as usize](&mut run, &mut s) };
        if done {
            break match run.ret.take() {
                Some(r0) => Ok(r0),
                None => run.out.take().unwrap_or(Ok(0)),
            };
        }
        // A tail call (or a return) may have switched programs: continue in
        // the plain copy of the new one, at the same entry.
        unsafe {
            let m = &mut *run.m;
            let st = &mut *(m.step as *mut Stepper<'static>);
            let i = st.index_of(m.prog);
            let copy: *const VmProgram = &*st.progs[i].1;
            if was_call && m.prog != before && m.depth == depth_before {
                let from = st.index_of(before);
                st.tail_calls.push((from, (*before).slot(e)));
            }
            if !ptr::eq(copy, m.prog) || s.code != (*copy).code.as_ptr() {
                let at = s.ip.offset_from(s.code) as usize;
                let executed = s.base.wrapping_add(s.ip as u64 >> 4);
                m.prog = copy;
                s.code = (*copy).code.as_ptr();
                s.ip = s.code.add(at);
                s.base = executed.wrapping_sub(s.ip as u64 >> 4);
            }
        }
    };
    m.prog = saved_prog;
    res
}

/// The callers of the current frame, outermost first.
///
/// # Safety
/// `m.frames[..m.depth]` hold programs alive for the run.
unsafe fn callers(m: &Machine<'_>, st: &mut Stepper<'_>) -> Vec<CallSite> {
    let hi = m.mem.stack_hi;
    (0..m.depth)
        .map(|k| {
            let f = m.frames[k];
            let prog = if f.prog.is_null() {
                0
            } else {
                st.index_of(f.prog)
            };
            let entry = f.ret.saturating_sub(1);
            let slot = if f.prog.is_null() {
                entry
            } else {
                // SAFETY: the caller's promise.
                unsafe { &*f.prog }.slot(entry)
            };
            CallSite {
                prog,
                entry,
                slot,
                fp: hi - (k as u64) * MAX_BPF_STACK as u64,
            }
        })
        .collect()
}

// The entry's size is what the `base` arithmetic assumes.
const _: () = assert!(std::mem::size_of::<VInsn>() == 16);
