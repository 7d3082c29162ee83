//! The code generator: one pass over the pre-decoded instructions, one native
//! sequence per instruction (a few patterns fused), BPF registers pinned to host
//! registers.
//!
//! Beyond the one-to-one translation, measured on the benchmark programs
//! (benches/): `d = a; d += b` is one `lea`, or with the load/store through d
//! that follows, one indexed access (when d's sum is dead after it, by a
//! liveness pass); shifts by a register use BMI2 `shlx`/`shrx`/`sarx` where the
//! host has them; backward jumps are rel8 when close; the divisor-0/-1 paths of
//! a division are out of line. Found on the broadened suite (issue 14): unsigned
//! division and modulo by a constant multiply by a magic number; multiplies by
//! 2^k, 3, 5, 9 are shifts and `lea`s (a multiply-add one `lea`); compares with
//! 0 are `test`; `d = s; d &= k; if d ==/!= 0` with d dead is one `test`;
//! clang's v2 extension idiom `d <<= 32; d >>= 32` is one `mov r32`; loop heads
//! are aligned to 16 bytes; a bpf-to-bpf call saves only the r6..r9 its callee
//! can write. Later: without metering, a tree of compares on one register
//! against constants (what clang makes of a `switch`) whose leaves only set one
//! register to constants (a `switch` returning values) is a table of the
//! values (other trees stay compares, see [`value_switches`]); a
//! conditional jump over a few flag-preserving moves/leas that rejoin its
//! target is if-converted (the moves run, `cmov` undoes them when the jump
//! would have been taken); a 64-bit unsigned division of two values known
//! to be zero-extended is a 32-bit `div`.
//!
//! Register map (BPF -> x86-64): r0 rax, r1 rdi, r2 rsi, r3 rdx, r4 rcx, r5 r8,
//! r6 rbx, r7 r13, r8 r14, r9 r15, r10 rbp. r1..r5 sit in the System V argument
//! registers so a helper's arguments are already in place for the trampoline's
//! spill; r6..r10 are callee-saved. r12 holds the run context, r9 the remaining
//! fuel (signed; negative = out of fuel; a scratch register when metering is off),
//! r10 and r11 are scratch.
//!
//! Fuel: each basic block subtracts its length when it starts; the count is tested
//! where the interpreter tests it (on taken jumps, after calls and returns), so
//! `executed` and whether a run runs out of fuel match it exactly. The position
//! in an out-of-fuel error differs for jumps: the interpreter names the jump, the
//! JIT the instruction jumped to (the test sits at the target, shared by every
//! jump there, which keeps taken jumps to one native jump).

use super::runtime::{self, ctx_off, FaultKind};
use super::x86::{alu, cc, shift, Asm, Label, Size};
use super::x86::{R10, R11, R12, R13, R14, R15, R8, R9, RAX, RBP, RBX, RCX, RDI, RDX, RSI, RSP};
use super::MapLookup;
use crate::error::Access;
use crate::program::{jmp_k_taken, tree_node, VInsn, VmProgram, SWITCH_DEPTH};
use bpfvm_isa::consts::{BPF_MAX_LOOPS, MAX_BPF_STACK, MAX_CALL_FRAMES};
use bpfvm_isa::uapi::{BPF_FUNC_MAP_LOOKUP_ELEM, BPF_FUNC_TAIL_CALL};
use bpfvm_isa::{Op, Shape};

/// BPF register -> host register.
const HOST: [u8; 11] = [RAX, RDI, RSI, RDX, RCX, R8, RBX, R13, R14, R15, RBP];

fn h(r: u8) -> u8 {
    HOST[(r as usize).min(10)]
}

const FRAME: i32 = MAX_BPF_STACK as i32;

pub(crate) struct Generated {
    pub(crate) code: Vec<u8>,
    /// Native offset of each slot's first instruction (an LD_IMM64's second slot
    /// maps to the same offset as its first).
    pub(crate) slot_offsets: Vec<u32>,
    /// Per entry: where a jump or call lands (fuel test first).
    pub(crate) entry_chk: Vec<u32>,
    /// Per entry: where a run or a callback starts (no fuel test).
    pub(crate) entry_nochk: Vec<u32>,
    /// Where the out-of-line code starts.
    pub(crate) main_end: u32,
    /// Some(frames) when calls do not count the depth (see [`static_frames`]):
    /// the most frames a run from depth 0 uses.
    pub(crate) frames: Option<usize>,
    /// Where the context-free entry starts, when the code never reads the run
    /// context (see [`Gen::fast_entry`]).
    pub(crate) fast_entry: Option<u32>,
}

pub(crate) struct Params<'a> {
    pub(crate) checked: bool,
    pub(crate) proven_safe: Option<&'a [bool]>,
    pub(crate) metering: bool,
    /// The program's data block (passed to trampolines to find helpers).
    pub(crate) data: u64,
    /// The per-entry table of function addresses (for callx).
    pub(crate) func_table: u64,
    /// `bpf_map_lookup_elem` compiled specially, by map address.
    pub(crate) map_lookups: &'a [(u64, MapLookup)],
    /// Calls count the depth even when [`static_frames`] bounds it (a tail
    /// call entering at a depth the bound does not cover).
    pub(crate) count_depth: bool,
}

struct MemSlow {
    slow: Label,
    resume: Label,
    base: u8,
    size: usize,
    access: Access,
    slot: usize,
}

/// The out-of-line divisor-0 and divisor-(-1) paths of a division by a register.
struct DivEdge {
    zero: Label,
    m1: Option<Label>,
    done: Label,
    w: bool,
    is_mod: bool,
    dst: u8,
}

struct Fault {
    at: Label,
    kind: FaultKind,
    slot: usize,
    info: u32,
}

struct Gen<'a> {
    a: Asm,
    p: &'a Params<'a>,
    prog: &'a VmProgram,
    chk: Vec<Label>,
    nochk: Vec<Label>,
    unwind: Label,
    status: Label,
    slows: Vec<MemSlow>,
    faults: Vec<Fault>,
    div_edges: Vec<DivEdge>,
    /// Per instruction: registers live after it (see [`live_out`]).
    live_out: Vec<u16>,
    /// Value tables to emit after the code: (table label, value per key).
    value_tables: Vec<(Label, Vec<u64>)>,
    /// Per instruction: whether a basic block starts there.
    start: Vec<bool>,
    /// Per instruction: whether a jump or call lands there.
    target: Vec<bool>,
    /// Per instruction: registers with zero upper halves (see [`hi_zero`]).
    hi_zero: Vec<u16>,
    /// Instructions after the current one that an if-converted branch (see
    /// [`Gen::branch`]) emitted already.
    consumed: usize,
    /// The program has `may_goto`: function entries set its count.
    has_may_goto: bool,
    /// Per function entry: which of r6..r9 (register bits) the function and
    /// what it calls may write; a call saves only those (see [`func_writes`]).
    func_writes: Vec<u16>,
    /// Emitting a copy of a loop latch after a conditional jump (see
    /// [`latch_after`]): no copy inside a copy.
    copying: bool,
    /// No code can observe the call depth and calls cannot nest past the
    /// limit from depth 0 (see [`static_frames`]): calls do not count it.
    depth_free: bool,
}

/// `ctx.may_goto[ctx.depth] = BPF_MAX_LOOPS` (clobbers r11).
fn emit_reset_may_goto(a: &mut Asm) {
    a.load(Size::W, false, R11, R12, ctx_off::DEPTH);
    a.shift_ri(true, shift::SHL, R11, 3);
    a.alu_rr(true, 0x01, R11, R12);
    a.store_imm(Size::Dw, BPF_MAX_LOOPS as i32, R11, ctx_off::MAY_GOTO);
}

/// Whether the host has BMI2, asked of the CPU once per process and only when
/// a program first shifts by a register: std's feature detection reads every
/// leaf (about 8 µs in a VM, where each `cpuid` exits to the hypervisor: most
/// of a small program's compile), two leaves are enough here.
fn has_bmi2() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    // 0: not asked yet, 1: no, 2: yes.
    static BMI2: AtomicU8 = AtomicU8::new(0);
    match BMI2.load(Ordering::Relaxed) {
        0 => {
            let yes = cpu_bmi2();
            BMI2.store(1 + u8::from(yes), Ordering::Relaxed);
            yes
        }
        v => v == 2,
    }
}

#[cfg(target_arch = "x86_64")]
fn cpu_bmi2() -> bool {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    // Leaf 7 only when leaf 0 says it is there (EBX bit 8: BMI2).
    __cpuid(0).eax >= 7 && __cpuid_count(7, 0).ebx & (1 << 8) != 0
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_bmi2() -> bool {
    false
}

/// What ends a basic block, and whether the interpreter tests fuel after it when
/// execution continues with the next instruction.
fn ends_block(op: Op) -> Option<bool> {
    match op.shape() {
        Shape::JmpK | Shape::JmpX | Shape::Ja | Shape::Ja32 | Shape::MayGoto | Shape::Exit => {
            Some(false)
        }
        Shape::Call | Shape::CallX | Shape::LdAbs | Shape::LdInd => Some(true),
        _ => None,
    }
}

pub(crate) fn generate(prog: &VmProgram, p: &Params<'_>) -> Generated {
    let code = &prog.code;
    let n = code.len();
    // One pass: jump and call targets; loop heads (targets of backward jumps,
    // aligned to 16 bytes so that a short loop's body sits in as few fetch
    // blocks as possible); block starts (targets, and the instruction after a
    // block end). Compile time of small programs is mostly fixed costs, each
    // pass and allocation counts.
    let mut target = vec![false; n];
    let mut loop_head = vec![false; n];
    let mut start = vec![false; n];
    let (mut local_calls, mut has_may_goto) = (false, false);
    for (e, v) in code.iter().enumerate() {
        let shape = v.op.shape();
        if matches!(
            shape,
            Shape::JmpK | Shape::JmpX | Shape::Ja | Shape::Ja32 | Shape::MayGoto
        ) {
            let t = v.off as usize;
            target[t] = true;
            start[t] = true;
            if t <= e && shape != Shape::MayGoto {
                loop_head[t] = true;
            }
        }
        local_calls |= v.op == Op::CallLocal;
        has_may_goto |= v.op == Op::MayGoto;
        if prog.func_start[e] {
            target[e] = true;
            start[e] = true;
        }
        if e + 1 < n && ends_block(v.op).is_some() {
            start[e + 1] = true;
        }
    }
    start[0] = true;

    let mut a = Asm::for_insns(n);
    let chk: Vec<Label> = (0..n).map(|_| a.label()).collect();
    let nochk: Vec<Label> = (0..n).map(|_| a.label()).collect();
    let unwind = a.label();
    let status = a.label();
    let mut g = Gen {
        a,
        p,
        prog,
        chk,
        nochk,
        unwind,
        status,
        slows: Vec::new(),
        faults: Vec::new(),
        div_edges: Vec::new(),
        live_out: live_out(code),
        value_tables: Vec::new(),
        hi_zero: hi_zero(code, &target),
        start,
        target,
        consumed: 0,
        has_may_goto,
        // Read at local calls only.
        func_writes: if local_calls {
            func_writes(prog)
        } else {
            Vec::new()
        },
        depth_free: false,
        copying: false,
    };
    let frames = if local_calls && p.count_depth {
        None
    } else if local_calls {
        static_frames(prog)
    } else {
        Some(1)
    };
    g.depth_free = frames.is_some();
    g.entry_thunk();

    // Compare trees (a compiled `switch`) that return constants become a
    // table of values. Without metering only: the table skips the tree's
    // instructions, which metering would have to count.
    let mut values = if p.metering || prog.switches.is_empty() {
        Vec::new()
    } else {
        value_switches(prog)
    };
    let mut slot_offsets = vec![0u32; prog.insns().len()];
    // Instructions still to skip: already emitted by a fused sequence.
    let mut fused_rest = 0usize;
    for e in 0..n {
        // The block prologue (fuel) belongs to the instruction that starts it.
        let slot = prog.slot(e);
        let pos = g.a.pos() as u32;
        slot_offsets[slot] = pos;
        if slot + 1 < slot_offsets.len() && code[e].op == Op::LdImm64 {
            slot_offsets[slot + 1] = pos;
        }
        if fused_rest > 0 {
            // Never a block start (`fused` checks), so no label here is a target.
            fused_rest -= 1;
            let (c, nc) = (g.chk[e], g.nochk[e]);
            g.a.bind(c);
            g.a.bind(nc);
            continue;
        }
        if g.start[e] && loop_head[e] && fused_rest == 0 {
            g.a.align(16);
            let pos = g.a.pos() as u32;
            slot_offsets[slot] = pos;
            if slot + 1 < slot_offsets.len() && code[e].op == Op::LdImm64 {
                slot_offsets[slot + 1] = pos;
            }
        }
        if g.start[e] {
            let prev_checks = e > 0 && ends_block(code[e - 1].op) == Some(true);
            let prev_falls =
                e > 0 && !matches!(code[e - 1].op, Op::Ja | Op::Ja32 | Op::Exit) && !prev_checks;
            let needs_chk = g.target[e] || prev_checks;
            if p.metering && needs_chk {
                if prev_falls {
                    // Straight-line fall-through is not a point where the
                    // interpreter tests fuel.
                    let l = g.nochk[e];
                    g.a.jmp(l);
                }
                let l = g.chk[e];
                g.a.bind(l);
                g.a.alu_rr(true, 0x85, R9, R9);
                let f = g.fault(FaultKind::OutOfFuel, prog.slot(e), 0);
                g.a.jcc(cc::S, f);
            } else {
                let l = g.chk[e];
                g.a.bind(l);
            }
            let l = g.nochk[e];
            g.a.bind(l);
            if p.metering {
                let len = (e + 1..n).position(|k| g.start[k]).map_or(n - e, |k| k + 1);
                g.a.alu_ri(true, alu::SUB, R9, len as i32);
            }
        } else {
            let (c, nc) = (g.chk[e], g.nochk[e]);
            g.a.bind(c);
            g.a.bind(nc);
        }
        if let Some((x, d, join, values)) = values.get_mut(e).and_then(Option::take) {
            g.dispatch_values(x, d, join, values);
        }
        let mut k = g.fused_test(e);
        if k == 0 {
            k = g.fused(e);
        }
        if k == 0 {
            k = g.fused_load(e);
        }
        match k {
            0 => g.insn(e, &code[e]),
            k => fused_rest = k - 1,
        }
        fused_rest += std::mem::take(&mut g.consumed);
    }
    let main_end = g.a.pos() as u32;
    // Code that never reaches the run context (r12) or the fuel register:
    // no helper, legacy packet load or call-out of any kind, no fault
    // (unchecked, no metering, no call depth counted, no kfunc), no
    // may_goto. Such a run needs nothing but its registers and stack.
    let ctx_free = !p.checked
        && !p.metering
        && !has_may_goto
        && g.depth_free
        && g.faults.is_empty()
        && g.slows.is_empty()
        && code.iter().all(|c| {
            !matches!(
                c.op.shape(),
                Shape::Call | Shape::CallX | Shape::LdAbs | Shape::LdInd
            ) || c.op == Op::CallLocal
        });
    let fast_entry = ctx_free.then(|| g.fast_entry());
    g.stubs();
    g.a.align(8);
    for (table, values) in std::mem::take(&mut g.value_tables) {
        g.a.bind(table);
        for v in values {
            g.a.data64(v);
        }
    }
    let entry_chk = g
        .chk
        .iter()
        .map(|l| g.a.offset_of(*l).unwrap_or(0))
        .collect();
    let entry_nochk = g
        .nochk
        .iter()
        .map(|l| g.a.offset_of(*l).unwrap_or(0))
        .collect();
    let code = g.a.finish().unwrap_or_default();
    Generated {
        code,
        slot_offsets,
        entry_chk,
        entry_nochk,
        main_end,
        frames,
        fast_entry,
    }
}

/// Registers as bits (r0 = bit 0 .. r10 = bit 10).
const ALL_REGS: u16 = 0x7ff;
/// r0..r5: what a call clobbers.
const CALLER_SAVED: u16 = 0x3f;

/// Per instruction: the registers whose value may still be read after it runs
/// (a backward data-flow over the jumps; calls read r1..r5 and clobber
/// r0..r5, `exit` reads r0; anything unusual is taken to read everything).
fn live_out(code: &[VInsn]) -> Vec<u16> {
    use Shape::*;
    let n = code.len();
    let bit = |r: u8| 1u16 << r.min(10);
    // (uses, defs, successors) per instruction.
    let info: Vec<(u16, u16, [Option<usize>; 2])> = code
        .iter()
        .enumerate()
        .map(|(e, c)| {
            let (d, s) = (bit(c.dst), bit(c.src));
            let next = Some(e + 1);
            let to = Some(c.off as usize);
            match c.op.shape() {
                AluK if matches!(c.op, Op::Mov64K | Op::Mov32K) => (0, d, [next, None]),
                AluK | Neg | End => (d, d, [next, None]),
                AluX if matches!(c.op, Op::Mov64X | Op::Mov32X) => (s, d, [next, None]),
                AluX => (d | s, d, [next, None]),
                MovSx => (s, d, [next, None]),
                LdImm64 => (0, d, [next, None]),
                Ldx => (s, d, [next, None]),
                St => (d, 0, [next, None]),
                Stx => (d | s, 0, [next, None]),
                JmpK => (d, 0, [next, to]),
                JmpX => (d | s, 0, [next, to]),
                Ja | Ja32 => (0, 0, [to, None]),
                MayGoto => (0, 0, [next, to]),
                AsCast => (s, d, [next, None]),
                LoadAcq => (s, d, [next, None]),
                StoreRel => (d | s, 0, [next, None]),
                Exit => (1, 0, [None, None]),
                // A helper reads r1..r5. A bpf-to-bpf callee (callx may be one)
                // is not checked to leave r6..r9 alone, so it reads everything.
                Call if c.op == Op::Call => (CALLER_SAVED & !1, CALLER_SAVED, [next, None]),
                Call | CallX => (ALL_REGS, CALLER_SAVED, [next, None]),
                // Atomics, legacy packet loads: read everything, kill nothing.
                _ => (ALL_REGS, 0, [next, None]),
            }
        })
        .collect();
    let mut live_in = vec![0u16; n];
    let mut out = vec![0u16; n];
    let mut changed = true;
    while changed {
        changed = false;
        for e in (0..n).rev() {
            let (uses, defs, succ) = info[e];
            // Falling off the end cannot happen in a loaded program; be safe.
            let lo = succ
                .iter()
                .flatten()
                .map(|&t| live_in.get(t).copied().unwrap_or(ALL_REGS))
                .fold(0, |a, b| a | b);
            let li = uses | (lo & !defs);
            if lo != out[e] || li != live_in[e] {
                out[e] = lo;
                live_in[e] = li;
                changed = true;
            }
        }
    }
    out
}

/// Per instruction: the registers whose upper 32 bits are known to be zero
/// before it runs (a forward pass over straight-line code; nothing is known
/// where a jump lands). A 64-bit unsigned division of two such values is a
/// 32-bit `div`, several times faster than a 64-bit one on many cores (clang
/// without ALU32, `-mcpu=v2`, writes 32-bit arithmetic as 64-bit operations on
/// zero-extended values).
fn hi_zero(code: &[VInsn], target: &[bool]) -> Vec<u16> {
    use Shape::*;
    let bit = |r: u8| 1u16 << r.min(10);
    let mut out = vec![0u16; code.len()];
    let mut z = 0u16;
    for (e, c) in code.iter().enumerate() {
        if target[e] || (e > 0 && matches!(code[e - 1].op.shape(), Ja | Ja32 | Exit)) {
            z = 0;
        }
        out[e] = z;
        let d = bit(c.dst);
        z = match c.op.shape() {
            AluK | AluX | Neg | MovSx if c.op.is_32bit() => z | d,
            AluX if c.op == Op::Mov64X => {
                if z & bit(c.src) != 0 {
                    z | d
                } else {
                    z & !d
                }
            }
            AluX if c.op == Op::And64X && z & (d | bit(c.src)) != 0 => z | d,
            AluK if c.op == Op::Mov64K || c.op == Op::And64K => {
                if c.imm >= 0 {
                    z | d
                } else {
                    z & !d
                }
            }
            AluK if c.op == Op::Rsh64K && c.imm & 63 >= 32 => z | d,
            AluK | AluX | Neg | MovSx | End => z & !d,
            LdImm64 if (c.imm as u64) >> 32 == 0 => z | d,
            LdImm64 => z & !d,
            Ldx if c.op.mem_size() < 8 && !matches!(c.op, Op::LdxSB | Op::LdxSH | Op::LdxSW) => {
                z | d
            }
            Ldx => z & !d,
            JmpK | JmpX | Ja | Ja32 | Exit | St | Stx | MayGoto => z,
            Call | CallX | LdAbs | LdInd => z & !CALLER_SAVED,
            // Atomics (a fetch writes src or r0), whatever else: forget.
            _ => 0,
        };
    }
    out
}

/// r6..r9 as register bits: what a bpf-to-bpf callee must give back unchanged.
const CALLEE_SAVED: u16 = 0x3c0;

/// Per function entry (0 elsewhere): the callee-saved registers r6..r9 that the
/// function may change, itself or through the functions it calls (to a fixed
/// point over the call graph). A tail call (`BPF_FUNC_TAIL_CALL`) or an
/// indirect call may run anything, so it counts as writing all four. A local
/// call saves only these instead of all of r6..r10: a leaf that keeps to r0..r5
/// costs no pushes at all.
fn func_writes(prog: &VmProgram) -> Vec<u16> {
    let code = &prog.code;
    let n = code.len();
    let bit = |r: u8| 1u16 << r.min(10);
    // The function each instruction belongs to: the last entry at or before it.
    let mut owner = vec![0usize; n];
    let mut cur = 0;
    for (e, o) in owner.iter_mut().enumerate() {
        if prog.func_start[e] {
            cur = e;
        }
        *o = cur;
    }
    let mut writes = vec![0u16; n];
    let mut calls: Vec<(usize, usize)> = Vec::new();
    for (e, c) in code.iter().enumerate() {
        let w = match c.op.shape() {
            Shape::AluK | Shape::AluX | Shape::Neg | Shape::End | Shape::MovSx => bit(c.dst),
            Shape::LdImm64 | Shape::Ldx => bit(c.dst),
            // An atomic with fetch writes src (cmpxchg r0): count both.
            Shape::Atomic => bit(c.src) | 1,
            Shape::Call if c.op == Op::CallLocal => {
                calls.push((owner[e], c.off as usize));
                0
            }
            Shape::Call if c.op == Op::Call && c.imm == i64::from(BPF_FUNC_TAIL_CALL) => {
                CALLEE_SAVED
            }
            Shape::CallX => CALLEE_SAVED,
            _ => 0,
        };
        writes[owner[e]] |= w & CALLEE_SAVED;
    }
    let mut changed = true;
    while changed {
        changed = false;
        for &(f, callee) in &calls {
            let w = writes.get(callee).copied().unwrap_or(CALLEE_SAVED);
            if writes[f] | w != writes[f] {
                writes[f] |= w;
                changed = true;
            }
        }
    }
    writes
}

/// The most frames (the entry function's included) a run from depth 0 can
/// use, when that is within [`MAX_CALL_FRAMES`] and nothing but the depth limit
/// reads the depth: no helper call (tail calls, callbacks and their frames),
/// no callx, no `may_goto` (its count is per frame), no function address
/// taken. Then bpf-to-bpf calls need not count the depth at run time: a chain
/// of in-memory increments and decrements of the counter that measured about
/// 15% of calls/v2's run time. None otherwise (recursion included).
fn static_frames(prog: &VmProgram) -> Option<usize> {
    let code = &prog.code;
    let mut owner = 0;
    let mut calls: Vec<(usize, usize)> = Vec::new();
    for (e, c) in code.iter().enumerate() {
        if prog.func_start[e] {
            owner = e;
        }
        match c.op.shape() {
            Shape::Call if c.op == Op::CallLocal => calls.push((owner, c.off as usize)),
            Shape::Call | Shape::CallX | Shape::MayGoto => return None,
            Shape::LdImm64 if c.src == bpfvm_isa::consts::BPF_PSEUDO_FUNC => return None,
            _ => {}
        }
    }
    let mut frames = vec![1usize; code.len()];
    let mut changed = true;
    while changed {
        changed = false;
        for &(f, callee) in &calls {
            let d = 1 + *frames.get(callee)?;
            if d > MAX_CALL_FRAMES {
                // Too deep, or a cycle (which grows past any bound).
                return None;
            }
            if d > frames[f] {
                frames[f] = d;
                changed = true;
            }
        }
    }
    Some(frames[0])
}

/// Per instruction: Some((x, d, join, values)) where a compare tree on x
/// starts that is a `switch` returning constants (see [`value_table`]). The
/// trees are the ones the interpreter tabulates ([`crate::program::compare_trees`],
/// found once at load). Other trees stay compares: a jump table's indirect
/// jump measured slower than the tree's conditional jumps on the suite's
/// `switch` (47 against 25 µs), as clang's own jump table is (native 45 µs),
/// since the branch predictor learns a tree's outcomes better than an
/// indirect jump's targets. Values of x above the table (as an unsigned 64-bit
/// number) run the tree as before; the leaf a tabulated value reaches is the
/// same whether the compares are 32- or 64-bit (a small non-negative value
/// reads the same either way).
#[allow(clippy::type_complexity)]
fn value_switches(prog: &VmProgram) -> Vec<Option<(u8, u8, usize, Vec<u64>)>> {
    let code = &prog.code;
    let mut out = vec![None; code.len()];
    for sw in prog.switches.iter() {
        let root = sw.root as usize;
        let leaves = &sw.leaves;
        // Values past the last change of leaf run the tree itself.
        let last = leaves[leaves.len() - 1].0;
        let hi = leaves
            .iter()
            .rposition(|l| l.0 != last)
            .map_or(0, |k| k + 1);
        let x = code[root].dst;
        out[root] = value_table(code, root, x, hi).map(|(d, join, v)| (x, d, join, v));
    }
    out
}

/// Longest block an if-conversion executes unconditionally.
const IFCONV_MAX: usize = 4;

/// Whether the conditional jump at `b` (to t) skips a short block of plain ALU
/// instructions that then goes on at t: `if c goto t; S; t:` or `if c goto t;
/// S; goto t`. S must not be entered other than from b, nor change more than
/// two registers live at t. `Some((end of S, whether a goto t follows,
/// registers to restore))`.
fn if_convert(
    code: &[VInsn],
    target: &[bool],
    live_out: &[u16],
    b: usize,
) -> Option<(usize, bool, u16)> {
    use Op::*;
    let t = code.get(b)?.off as usize;
    if !matches!(code[b].op.shape(), Shape::JmpK | Shape::JmpX) || t == b + 1 {
        return None;
    }
    let plain = |c: &VInsn| {
        c.dst < 10
            && matches!(
                c.op,
                Add64K
                    | Sub64K
                    | And64K
                    | Or64K
                    | Xor64K
                    | Add32K
                    | Sub32K
                    | And32K
                    | Or32K
                    | Xor32K
                    | Add64X
                    | Sub64X
                    | And64X
                    | Or64X
                    | Xor64X
                    | Add32X
                    | Sub32X
                    | And32X
                    | Or32X
                    | Xor32X
                    | Mul64K
                    | Mul32K
                    | Mul64X
                    | Mul32X
                    | Lsh64K
                    | Rsh64K
                    | Arsh64K
                    | Lsh32K
                    | Rsh32K
                    | Arsh32K
                    | Mov64K
                    | Mov32K
                    | Mov64X
                    | Mov32X
                    | Neg64
                    | Neg32
                    | MovSx8To64
                    | MovSx16To64
                    | MovSx32To64
                    | MovSx8To32
                    | MovSx16To32
                    | LdImm64
            )
    };
    let mut end = b + 1;
    while end < code.len() && end - b - 1 < IFCONV_MAX && end != t && plain(&code[end]) {
        end += 1;
    }
    if end == b + 1 || (b + 1..end).any(|k| target[k]) {
        return None;
    }
    let ja = end != t;
    if ja {
        let j = code.get(end)?;
        if !matches!(j.op, Ja | Ja32) || j.off as usize != t || target[end] {
            return None;
        }
    }
    // Live at t: what the last instruction of S (or the goto) leaves live.
    // S runs between the compare and the cmov: every instruction must be one
    // the code generator emits without touching the flags (mov, movsx, lea).
    // A setcc/test pair instead would lengthen the dependency chain through
    // the branch's registers, measured slower than the jump on collatz.
    let mut k = b + 1;
    while k < end {
        let c = &code[k];
        let mul_lea = matches!(c.op, Mul64K | Mul32K) && matches!(c.imm, 3 | 5 | 9);
        let next_add = code.get(k + 1).filter(|n| {
            k + 1 < end && n.dst == c.dst && n.op == if c.op == Mul64K { Add64K } else { Add32K }
        });
        k += match c.op {
            Mov64X | Mov32X | MovSx8To64 | MovSx16To64 | MovSx32To64 | MovSx8To32 | MovSx16To32 => {
                1
            }
            Mov64K | Mov32K | LdImm64 if c.imm != 0 => 1,
            // Fused into one lea with the add that follows (see fused_test).
            _ if mul_lea && next_add.is_some() => 2,
            _ if mul_lea => 1,
            Mul64K if c.imm == 1 => 1,
            _ => return None,
        };
    }
    let live_t = live_out[if ja { end } else { end - 1 }];
    let written = (b + 1..end).fold(0u16, |w, k| w | 1 << code[k].dst);
    let restore = written & live_t;
    (restore.count_ones() <= 2).then_some((end, ja, restore))
}

/// Longest loop latch copied after a conditional jump.
const LATCH_MAX: usize = 12;

/// Whether the forward conditional jump at `b` leads to a loop's latch: a
/// block t..=j (t its target) that ends in `goto h` back to h <= b, with no
/// exit, call or other `goto` on the way (conditional jumps may leave it).
/// clang often places such a latch after the loop's exit path, so that each
/// iteration takes two jumps (to the latch, and back); copying the latch
/// after the jump, which is inverted to go to the exit path, leaves one.
/// `Some(j)`.
fn latch_after(code: &[VInsn], b: usize) -> Option<usize> {
    let t = code.get(b)?.off as usize;
    if t <= b + 1 {
        return None;
    }
    for (j, c) in code.iter().enumerate().skip(t).take(LATCH_MAX) {
        match c.op.shape() {
            Shape::Ja => return (c.op == Op::Ja && (c.off as usize) <= b).then_some(j),
            Shape::JmpK | Shape::JmpX => {}
            Shape::Ja32
            | Shape::Exit
            | Shape::Call
            | Shape::CallX
            | Shape::LdAbs
            | Shape::LdInd
            | Shape::MayGoto => return None,
            _ => {}
        }
    }
    None
}

/// The constant a `d = k` instruction sets (`Some((d, value))`): mov of an
/// immediate at 64 or 32 bits, or LD_IMM64 (already resolved at load).
fn const_set(c: &VInsn) -> Option<(u8, u64)> {
    match c.op {
        Op::Mov64K => Some((c.dst, c.imm as u64)),
        Op::Mov32K => Some((c.dst, c.imm as u32 as u64)),
        Op::LdImm64 => Some((c.dst, c.imm as u64)),
        _ => None,
    }
}

/// A compare tree whose every leaf, for the tabulated values, only sets one
/// register `d` to a constant (possibly among further compares on x) and then
/// goes on at one instruction `join`: a `switch` returning constants. Then
/// `d = values[x]; goto join` replaces the indirect jump, which mispredicts on
/// every unpredictable key. `Some((d, join, values))`.
fn value_table(code: &[VInsn], root: usize, x: u8, hi: usize) -> Option<(u8, usize, Vec<u64>)> {
    let mut d = None;
    let mut join = None;
    let mut values = Vec::with_capacity(hi + 1);
    for v in 0..=hi as u64 {
        let mut i = root;
        let mut val = None;
        let mut steps = 0;
        loop {
            steps += 1;
            if steps > 2 * SWITCH_DEPTH as usize {
                return None;
            }
            let c = code.get(i)?;
            if tree_node(c, x) {
                i = if c.op.shape() != Shape::JmpK || jmp_k_taken(c.op, v, c.imm) {
                    c.off as usize
                } else {
                    i + 1
                };
                continue;
            }
            match const_set(c) {
                Some((r, k)) if r != x && r < 10 && *d.get_or_insert(r) == r => {
                    val = Some(k);
                    i += 1;
                }
                _ => break,
            }
        }
        if *join.get_or_insert(i) != i {
            return None;
        }
        values.push(val?);
    }
    Some((d?, join?, values))
}

impl Gen<'_> {
    /// The value-table form of a compare tree (see [`value_table`]):
    /// `if x <= hi { d = values[x]; goto join }`, else fall into the tree.
    fn dispatch_values(&mut self, x: u8, d: u8, join: usize, values: Vec<u64>) {
        let (hx, hd) = (h(x), h(d));
        let tree = self.a.label();
        self.a.alu_ri(true, alu::CMP, hx, values.len() as i32 - 1);
        self.a.jcc(cc::A, tree);
        let table = self.a.label();
        self.a.load_table(table, hx, hd);
        let j = self.chk[join];
        self.a.jmp(j);
        self.a.bind(tree);
        self.value_tables.push((table, values));
    }

    fn fault(&mut self, kind: FaultKind, slot: usize, info: u32) -> Label {
        let at = self.a.label();
        self.faults.push(Fault {
            at,
            kind,
            slot,
            info,
        });
        at
    }

    /// `extern "sysv64" fn(ctx, target, args: *const [u64; 5], r10) -> r0`:
    /// saves the callee-saved registers, loads r1..r5, calls the BPF function at
    /// `target`, and returns r0; again while runs are left (`ctx.loop_left`) and
    /// the last one called no helper (`ctx.called_out`), each run with r1..r5
    /// reloaded and the fuel register reset (repeated test runs). Errors come
    /// back through `unwind`, which resets the stack pointer saved here.
    fn entry_thunk(&mut self) {
        let reset_may_goto = self.has_may_goto;
        let a = &mut self.a;
        for r in [RBX, RBP, R12, R13, R14, R15] {
            a.push(r);
        }
        // Target and arguments live at [rsp + 8] and [rsp + 16] across runs;
        // rsp stays 16-byte aligned for the call.
        a.alu_ri(true, alu::SUB, RSP, 24);
        a.mov_rr(true, R12, RDI);
        a.store(Size::Dw, RSP, R12, ctx_off::SAVED_RSP);
        a.mov_rr(true, RBP, RCX);
        a.store(Size::Dw, RSI, RSP, 8);
        a.store(Size::Dw, RDX, RSP, 16);
        let again = a.label();
        a.bind(again);
        // Each run (and each callback, entered here one frame deeper) starts
        // its frame's may_goto count afresh.
        if reset_may_goto {
            emit_reset_may_goto(a);
        }
        a.load(Size::Dw, false, R9, R12, ctx_off::FUEL);
        a.load(Size::Dw, false, RDX, RSP, 16);
        a.load(Size::Dw, false, RDI, RDX, 0);
        a.load(Size::Dw, false, RSI, RDX, 8);
        a.load(Size::Dw, false, RCX, RDX, 24);
        a.load(Size::Dw, false, R8, RDX, 32);
        a.load(Size::Dw, false, RDX, RDX, 16);
        for r in [RAX, RBX, R13, R14, R15] {
            a.alu_rr(false, 0x31, r, r);
        }
        a.load(Size::Dw, false, R11, RSP, 8);
        // Counted before the run: a run that unwinds (a fault, or a legacy
        // packet load out of range ending it with r0 = 0) is done too.
        a.incdec_m32(true, R12, ctx_off::LOOP_LEFT);
        a.call_r(R11);
        let ret_point = a.label();
        a.cmp_m32_i8(R12, ctx_off::LOOP_LEFT, 0);
        a.jcc(cc::E, ret_point);
        a.cmp_m32_i8(R12, ctx_off::CALLED_OUT, 0);
        a.jcc(cc::E, again);
        a.bind(ret_point);
        a.store(Size::Dw, R9, R12, ctx_off::FUEL);
        a.alu_ri(true, alu::ADD, RSP, 24);
        for r in [R15, R14, R13, R12, RBP, RBX] {
            a.pop(r);
        }
        a.ret();
        let unwind = self.unwind;
        a.bind(unwind);
        a.load(Size::Dw, false, RSP, R12, ctx_off::SAVED_RSP);
        a.jmp(ret_point);
        // After a call-out: status 2 is a tail call, anything else unwinds.
        let status = self.status;
        a.bind(status);
        a.cmp_m32_i8(R12, ctx_off::STATUS, runtime::STATUS_TAIL_CALL as i8);
        a.jcc(cc::NE, unwind);
        a.store_imm32(R12, ctx_off::STATUS, 0);
        a.jmp_m(R12, ctx_off::TAIL_ADDR);
    }

    /// `extern "sysv64" fn(r1, r2, r3, r4, r5, r10) -> r0` for code that
    /// never reads the run context: r1..r5 arrive where the register map puts
    /// them (the System V argument registers), r10 in r9; saves the
    /// callee-saved registers BPF code uses, calls the first instruction and
    /// returns r0. What a run of a short program costs beside its code is
    /// mostly its entry and the context a full one fills in.
    fn fast_entry(&mut self) -> u32 {
        let a = &mut self.a;
        a.align(16);
        let at = a.pos() as u32;
        // Five pushes: rsp is 8 mod 16 inside BPF code, as after the full entry.
        for r in [RBX, RBP, R13, R14, R15] {
            a.push(r);
        }
        a.mov_rr(true, RBP, R9);
        for r in [RAX, RBX, R13, R14, R15] {
            a.alu_rr(false, 0x31, r, r);
        }
        let start = self.nochk[0];
        a.call(start);
        for r in [R15, R14, R13, RBP, RBX] {
            a.pop(r);
        }
        a.ret();
        at
    }

    /// Calls a Rust function at `f` (`mov r11, f; call r11`).
    fn call_abs(&mut self, f: usize) {
        self.a.mov_ri64(R11, f as u64);
        self.a.call_r(R11);
    }

    fn check_status(&mut self) {
        self.a.cmp_m32_i8(R12, ctx_off::STATUS, 0);
        let s = self.status;
        self.a.jcc(cc::NE, s);
    }

    /// Peephole fusion inside a basic block: `d = a; d += b` (b a register or
    /// an immediate) is one `lea d, [a + b]`, and when the next instruction
    /// loads or stores through d without a run-time check and the sum is dead
    /// after it (the load overwrites d, or liveness says no one reads d), one
    /// indexed access `*(size *)(a + b + off)`.
    /// Returns how many instructions were emitted (0: none fused).
    fn fused(&mut self, e: usize) -> usize {
        let code = &self.prog.code;
        let start = &self.start;
        let (Some(i0), Some(i1)) = (code.get(e), code.get(e + 1)) else {
            return 0;
        };
        if i0.op != Op::Mov64X || start[e + 1] || i1.dst != i0.dst {
            return 0;
        }
        let (d, a) = (i0.dst, i0.src);
        if d == a || d >= 10 || a > 10 {
            return 0;
        }
        let (index, imm) = match i1.op {
            Op::Add64X if i1.src != d && i1.src <= 10 => (Some(h(i1.src)), 0i64),
            Op::Add64K => (None, i1.imm as i32 as i64),
            _ => return 0,
        };
        if let Some(i2) = code.get(e + 2) {
            let shape = i2.op.shape();
            let disp = imm + i2.off as i64;
            // The access goes through d, and d's sum is not needed afterwards:
            // a load overwrites it, or nothing reads d before writing it.
            let base = if shape == Shape::Ldx { i2.src } else { i2.dst };
            let dead = (shape == Shape::Ldx && i2.dst == d) || self.live_out[e + 2] & (1 << d) == 0;
            if matches!(shape, Shape::Ldx | Shape::St | Shape::Stx)
                && !start[e + 2]
                && base == d
                && !(shape == Shape::Stx && i2.src == d)
                && dead
                && super::x86::fits_i32(disp)
                && !self.mem_checked(d, i2.off, i2.op.mem_size(), self.prog.slot(e + 2))
            {
                let size = Size::from_bytes(i2.op.mem_size());
                let (b, disp) = (h(a), disp as i32);
                match shape {
                    Shape::Ldx => {
                        let sign = matches!(i2.op, Op::LdxSB | Op::LdxSH | Op::LdxSW);
                        self.a.load_x(size, sign, h(i2.dst), b, index, disp);
                    }
                    Shape::St => self.a.store_imm_x(size, i2.imm as i32, b, index, disp),
                    _ => self.a.store_x(size, h(i2.src), b, index, disp),
                }
                return 3;
            }
        }
        match index {
            Some(b) => self.a.lea_x(h(d), h(a), b, 0),
            None => self.a.lea(h(d), h(a), imm as i32),
        }
        2
    }

    /// A load whose value only feeds the next instruction, inside a basic
    /// block: `t = *(size *)(s + off); d op= t` with t dead afterwards is one
    /// `op d, [s + off]` (add, sub, and, or, xor, imul: 64-bit with a u64 load,
    /// 32-bit with a u32 load), and `t = *(s + off); d = t` a load into d.
    /// Clang's code for more live values than BPF has registers keeps them in
    /// stack slots and reads each through a register right before its use:
    /// folded, each such read costs no instruction of its own. Returns how many
    /// instructions were emitted (0: none fused).
    fn fused_load(&mut self, e: usize) -> usize {
        use Op::*;
        let code = &self.prog.code;
        let (Some(ld), Some(op)) = (code.get(e), code.get(e + 1)) else {
            return 0;
        };
        if ld.op.shape() != Shape::Ldx || self.start[e + 1] || op.op.shape() != Shape::AluX {
            return 0;
        }
        let (t, d) = (ld.dst, op.dst);
        if op.src != t || d == t || d >= 10 || self.live_out[e + 1] & (1 << t) != 0 {
            return 0;
        }
        let size = ld.op.mem_size();
        let sign = matches!(ld.op, LdxSB | LdxSH | LdxSW);
        let form = match op.op {
            Mov64X => None,
            Add64X | Sub64X | And64X | Or64X | Xor64X | Mul64X if size == 8 => Some(true),
            Add32X | Sub32X | And32X | Or32X | Xor32X | Mul32X if size == 4 && !sign => Some(false),
            _ => return 0,
        };
        if self.mem_checked(ld.src, ld.off, size, self.prog.slot(e)) {
            return 0;
        }
        let (dst, base, disp) = (h(d), h(ld.src), ld.off);
        let Some(w) = form else {
            self.a.load(Size::from_bytes(size), sign, dst, base, disp);
            return 2;
        };
        match op.op {
            Mul64X | Mul32X => self.a.imul_rm(w, dst, base, disp),
            _ => {
                let opcode = match op.op {
                    Add64X | Add32X => 0x03,
                    Sub64X | Sub32X => 0x2b,
                    And64X | And32X => 0x23,
                    Or64X | Or32X => 0x0b,
                    _ => 0x33,
                };
                self.a.alu_rm(w, opcode, dst, base, disp);
            }
        }
        2
    }

    /// Peephole fusion of a bit test and of a multiply-add, inside a basic block:
    /// `d = s; d &= k; if d ==/!= 0 goto L` (or without the move) is
    /// `test s, k; je/jne L` when d is dead after the jump; `d *= 3|5|9;
    /// d += k` is one `lea d, [d + d * (m - 1) + k]`. Returns how many
    /// instructions were emitted (0: none fused).
    fn fused_test(&mut self, e: usize) -> usize {
        let code = &self.prog.code;
        let start = &self.start;
        let get = |k: usize| code.get(e + k).filter(|_| k == 0 || !start[e + k]);
        let Some(i0) = get(0) else { return 0 };
        // 32-to-64-bit extension as clang writes it without ALU32 (-mcpu=v2):
        // `[d = s;] d <<= 32; d >>= 32` is `mov d32, s32`, and with `s>>=`
        // a `movsxd`.
        let ext = |k: usize| -> Option<bool> {
            let (a, b) = (get(k)?, get(k + 1)?);
            let same = a.dst == b.dst && a.dst < 10;
            if !(same && a.op == Op::Lsh64K && a.imm == 32 && b.imm == 32) {
                return None;
            }
            match b.op {
                Op::Rsh64K => Some(false),
                Op::Arsh64K => Some(true),
                _ => None,
            }
        };
        let (src, n) = match (i0.op, ext(0), ext(1)) {
            (_, Some(sign), _) => (Some((i0.dst, sign)), 2),
            (Op::Mov64X, _, Some(sign))
                if get(1).is_some_and(|i1| i1.dst == i0.dst) && i0.src <= 10 =>
            {
                (Some((i0.src, sign)), 3)
            }
            _ => (None, 0),
        };
        if let Some((s, sign)) = src {
            let d = h(get(n - 1).map_or(i0.dst, |i| i.dst));
            if sign {
                self.a.movsx(true, Size::W, d, h(s));
            } else {
                self.a.mov_rr(false, d, h(s));
            }
            return n;
        }
        // Multiply-add.
        if let (Op::Mul64K | Op::Mul32K, Some(i1)) = (i0.op, get(1)) {
            let w = i0.op == Op::Mul64K;
            let add = if w { Op::Add64K } else { Op::Add32K };
            if i1.op == add && i1.dst == i0.dst && matches!(i0.imm, 3 | 5 | 9) && i0.dst < 10 {
                let d = h(i0.dst);
                let scale = ((i0.imm - 1) as u32).trailing_zeros() as u8;
                self.a.lea_scaled(w, d, d, d, scale, i1.imm as i32);
                return 2;
            }
            return 0;
        }
        // Bit test: [mov d, s;] and d, k; jeq/jne d, 0.
        let (src, and, jmp, n) = match (i0.op, get(1), get(2)) {
            (Op::Mov64X, Some(i1), Some(i2)) if i1.op == Op::And64K => (i0.src, i1, i2, 3),
            (Op::And64K, Some(i1), _) => (i0.dst, i0, i1, 2),
            _ => return 0,
        };
        let d = and.dst;
        let mov_ok = n == 2 || (i0.dst == d && src != d && src <= 10);
        if !mov_ok
            || d >= 10
            || !matches!(jmp.op, Op::JeqK | Op::JneK)
            || jmp.dst != d
            || jmp.imm != 0
            || self.live_out[e + n - 1] & (1 << d) != 0
        {
            return 0;
        }
        let t = self.chk[jmp.off as usize];
        let c = cond(jmp.op);
        let k = and.imm as i32;
        // BPF's imm is sign-extended, as test's imm32 is; a non-negative one has
        // no high bits, so the 32-bit test gives the same ZF.
        self.a.test_ri(k < 0, h(src), k);
        self.branch(e + n - 1, c, t);
        n
    }

    /// Whether a load or store through `breg + off` is checked at run time.
    fn mem_checked(&self, breg: u8, off: i32, size: usize, slot: usize) -> bool {
        let proven = self
            .p
            .proven_safe
            .is_some_and(|v| v.get(slot).copied().unwrap_or(false));
        // r10 is read-only and frames are 512 bytes, so `[r10 + off]` inside the
        // current frame always passes the interpreter's check.
        let in_frame = breg == 10 && off >= -FRAME && off + size as i32 <= 0;
        self.p.checked && !proven && !in_frame
    }

    /// `cmp`/`test` and a conditional jump to `t`.
    fn cond_jump(&mut self, e: usize, i: &VInsn, t: Label) {
        use Op::*;
        let (dst, src) = (h(i.dst), h(i.src));
        let w = !i.op.is_32bit();
        let a = &mut self.a;
        if i.op.shape() == Shape::JmpK {
            if matches!(i.op, JsetK | Jset32K) {
                a.test_ri(w, dst, i.imm as i32);
            } else if i.imm == 0 {
                // Same flags as `cmp dst, 0` (CF = OF = 0), shorter.
                a.alu_rr(w, 0x85, dst, dst);
            } else {
                a.alu_ri(w, alu::CMP, dst, i.imm as i32);
            }
        } else {
            let opc = if matches!(i.op, JsetX | Jset32X) {
                0x85
            } else {
                0x39
            };
            a.alu_rr(w, opc, dst, src);
        }
        self.branch(e, cond(i.op), t);
    }

    /// The jump of the conditional jump at `b` (flags set by its compare):
    /// `j<c> t`, or if-converted (see [`if_convert`]): the skipped
    /// instructions run whatever the condition (they leave the flags alone),
    /// and the registers they change that are live at the target get their old
    /// values back by `cmov<c>`. A data-dependent branch in a loop mispredicts
    /// often; this costs a move or two.
    fn branch(&mut self, b: usize, c: u8, t: Label) {
        let conv = if self.p.metering {
            None
        } else {
            if_convert(&self.prog.code, &self.target, &self.live_out, b)
        };
        let Some((end, ja, restore)) = conv else {
            match self.latch_copy(b) {
                Some(j) => self.emit_latch_copy(b, c, j),
                None => self.a.jcc(c, t),
            }
            return;
        };
        // r10 and (metering off) r9 hold the old values.
        let saves: Vec<(u8, u8)> = (0..10u8)
            .filter(|r| restore & (1 << r) != 0)
            .zip([R10, R9])
            .map(|(r, s)| (h(r), s))
            .collect();
        for &(r, s) in &saves {
            self.a.mov_rr(true, s, r);
        }
        let mut k = b + 1;
        while k < end {
            let f = match self.fused_test(k) {
                0 => {
                    let i = self.prog.code[k];
                    self.insn(k, &i);
                    1
                }
                f => f,
            };
            k += f;
        }
        debug_assert_eq!(k, end, "a fused sequence ran past an if-converted block");
        for &(r, s) in &saves {
            self.a.cmov(c, r, s);
        }
        let after = if ja {
            let l = self.chk[self.prog.code[end].off as usize];
            self.a.jmp(l);
            end + 1
        } else {
            end
        };
        self.consumed = after - b - 1;
    }

    /// The end of the loop latch the conditional jump at `b` leads to, if it
    /// is to be copied after the jump (see [`latch_after`]): without metering
    /// (the copy would need its own fuel count), and not inside a copy.
    fn latch_copy(&self, b: usize) -> Option<usize> {
        if self.p.metering || self.copying {
            return None;
        }
        latch_after(&self.prog.code, b)
    }

    /// `j<!c> next; <copy of t..=j>`: the loop's path falls through the
    /// jump and its latch, one taken jump (the back edge) per iteration
    /// instead of two. The latch stays in place too, for other entries.
    fn emit_latch_copy(&mut self, b: usize, c: u8, j: usize) {
        let next = self.chk[b + 1];
        self.a.jcc(c ^ 1, next);
        self.copying = true;
        let mut k = self.prog.code[b].off as usize;
        while k <= j {
            let mut step = self.fused_test(k);
            if step == 0 {
                step = self.fused(k);
            }
            if step == 0 {
                step = self.fused_load(k);
            }
            if step == 0 {
                let i = self.prog.code[k];
                self.insn(k, &i);
                step = 1;
            }
            k += step + std::mem::take(&mut self.consumed);
        }
        self.copying = false;
    }

    /// Whether the store at `e` is `*(r10 + off) = r` right after `r = *(r10 +
    /// off)` of the same size, with no jump landing between them: the bytes
    /// already hold r's low bytes, so the store changes nothing. The stack is
    /// always writable, and the load checked the same bytes.
    fn stores_what_it_loaded(&self, e: usize) -> bool {
        let code = &self.prog.code;
        let (Some(l), Some(st)) = (e.checked_sub(1).and_then(|k| code.get(k)), code.get(e)) else {
            return false;
        };
        !self.start[e]
            && l.op.shape() == Shape::Ldx
            && st.op.shape() == Shape::Stx
            && l.src == 10
            && st.dst == 10
            && l.off == st.off
            && l.dst == st.src
            && l.dst < 10
            && l.op.mem_size() == st.op.mem_size()
    }

    fn insn(&mut self, e: usize, i: &VInsn) {
        let slot = self.prog.slot(e);
        let (dst, src) = (h(i.dst), h(i.src));
        let imm = i.imm;
        let a = &mut self.a;
        use Op::*;
        match i.op {
            // ---- ALU ----
            Add64K | Sub64K | And64K | Or64K | Xor64K | Add32K | Sub32K | And32K | Or32K
            | Xor32K => {
                let w = !i.op.is_32bit();
                let ext = match i.op {
                    Add64K | Add32K => alu::ADD,
                    Sub64K | Sub32K => alu::SUB,
                    And64K | And32K => alu::AND,
                    Or64K | Or32K => alu::OR,
                    _ => alu::XOR,
                };
                a.alu_ri(w, ext, dst, imm as i32);
            }
            Add64X | Sub64X | And64X | Or64X | Xor64X | Add32X | Sub32X | And32X | Or32X
            | Xor32X => {
                let w = !i.op.is_32bit();
                let opc = match i.op {
                    Add64X | Add32X => 0x01,
                    Sub64X | Sub32X => 0x29,
                    And64X | And32X => 0x21,
                    Or64X | Or32X => 0x09,
                    _ => 0x31,
                };
                a.alu_rr(w, opc, dst, src);
            }
            Mul64K | Mul32K => mul_k(a, !i.op.is_32bit(), dst, imm as i32),
            Mul64X | Mul32X => a.imul_rr(!i.op.is_32bit(), dst, src),
            Div64K | Div32K | Mod64K | Mod32K | SDiv64K | SDiv32K | SMod64K | SMod32K => {
                let is_mod = matches!(i.op, Mod64K | Mod32K | SMod64K | SMod32K);
                let signed = matches!(i.op, SDiv64K | SDiv32K | SMod64K | SMod32K);
                let live = self.live_out[e];
                self.divmod_k(!i.op.is_32bit(), signed, is_mod, dst, imm, live);
            }
            Div64X | Div32X | Mod64X | Mod32X | SDiv64X | SDiv32X | SMod64X | SMod32X => {
                let is_mod = matches!(i.op, Mod64X | Mod32X | SMod64X | SMod32X);
                let signed = matches!(i.op, SDiv64X | SDiv32X | SMod64X | SMod32X);
                // Both operands below 2^32: quotient and remainder are the
                // same at 32 bits (and zero-extended, as 32-bit results are).
                let both = (1u16 << i.dst) | (1 << i.src.min(10));
                let narrow = !signed && self.hi_zero[e] & both == both;
                let live = self.live_out[e];
                self.divmod_x(!i.op.is_32bit() && !narrow, signed, is_mod, dst, src, live);
            }
            Lsh64K | Rsh64K | Arsh64K | Lsh32K | Rsh32K | Arsh32K => {
                let w = !i.op.is_32bit();
                let ext = match i.op {
                    Lsh64K | Lsh32K => shift::SHL,
                    Rsh64K | Rsh32K => shift::SHR,
                    _ => shift::SAR,
                };
                let count = (imm as u8) & if w { 63 } else { 31 };
                if count != 0 {
                    a.shift_ri(w, ext, dst, count);
                } else if !w {
                    a.mov_rr(false, dst, dst);
                }
            }
            Lsh64X | Rsh64X | Arsh64X | Lsh32X | Rsh32X | Arsh32X => {
                let w = !i.op.is_32bit();
                let ext = match i.op {
                    Lsh64X | Lsh32X => shift::SHL,
                    Rsh64X | Rsh32X => shift::SHR,
                    _ => shift::SAR,
                };
                self.shift_x(w, ext, dst, src);
            }
            // Flags are dead between BPF instructions: zero with xor (2 bytes).
            Mov64K | Mov32K if imm == 0 => a.alu_rr(false, 0x31, dst, dst),
            Mov64K => a.mov_ri(dst, imm as u64),
            Mov32K => a.mov_ri32(dst, imm as u32),
            Mov64X => {
                if dst != src {
                    a.mov_rr(true, dst, src)
                }
            }
            Mov32X => a.mov_rr(false, dst, src),
            Neg64 => a.neg(true, dst),
            Neg32 => a.neg(false, dst),
            MovSx8To64 => a.movsx(true, Size::B, dst, src),
            MovSx16To64 => a.movsx(true, Size::H, dst, src),
            MovSx32To64 => a.movsx(true, Size::W, dst, src),
            MovSx8To32 => a.movsx(false, Size::B, dst, src),
            MovSx16To32 => a.movsx(false, Size::H, dst, src),
            // ---- byte swaps ----
            Le16 => a.movzx(Size::H, dst, dst),
            Le32 => a.mov_rr(false, dst, dst),
            Le64 => {}
            Be16 | Bswap16 => {
                a.ror16_8(dst);
                a.movzx(Size::H, dst, dst);
            }
            Be32 | Bswap32 => a.bswap(false, dst),
            Be64 | Bswap64 => a.bswap(true, dst),
            // ---- jumps ----
            Ja | Ja32 => {
                let t = self.chk[i.off as usize];
                a.jmp(t);
            }
            JeqK | JneK | JgtK | JgeK | JltK | JleK | JsgtK | JsgeK | JsltK | JsleK | JsetK
            | Jeq32K | Jne32K | Jgt32K | Jge32K | Jlt32K | Jle32K | Jsgt32K | Jsge32K | Jslt32K
            | Jsle32K | Jset32K | JeqX | JneX | JgtX | JgeX | JltX | JleX | JsgtX | JsgeX
            | JsltX | JsleX | JsetX | Jeq32X | Jne32X | Jgt32X | Jge32X | Jlt32X | Jle32X
            | Jsgt32X | Jsge32X | Jslt32X | Jsle32X | Jset32X => {
                let t = self.chk[i.off as usize];
                self.cond_jump(e, i, t);
            }
            MayGoto => {
                let t = self.chk[i.off as usize];
                self.may_goto(t);
            }
            // Without arena maps: the 32-bit arena offset (see the interpreter).
            AddrSpaceCast => a.mov_rr(false, dst, src),
            // x86-64 orders plain loads and stores as acquire and release
            // (the kernel's JIT emits plain moves too); alignment as for atomics.
            LoadAcqB | LoadAcqH | LoadAcqW | LoadAcqDw => {
                let size = Size::from_bytes(i.op.mem_size());
                let (base, disp) =
                    self.mem_operand(i.src, i.off, i.op.mem_size(), Access::Read, slot, true);
                self.a.load(size, false, dst, base, disp);
            }
            StoreRelB | StoreRelH | StoreRelW | StoreRelDw => {
                let size = Size::from_bytes(i.op.mem_size());
                let (base, disp) =
                    self.mem_operand(i.dst, i.off, i.op.mem_size(), Access::Write, slot, true);
                self.a.store(size, src, base, disp);
            }
            Exit => a.ret(),
            CallLocal => {
                let t = self.chk[i.off as usize];
                let saves = self
                    .func_writes
                    .get(i.off as usize)
                    .copied()
                    .unwrap_or(CALLEE_SAVED);
                self.call_local(slot, saves, |a| a.call(t));
            }
            Call => match self.map_lookup_at(e, i) {
                Some(how) => self.map_lookup(how),
                None => self.helper_call(slot, HelperKind::Index(i.off as u32)),
            },
            CallX => self.callx(slot, dst),
            CallKfunc => {
                let f = self.fault(FaultKind::BadInsn, slot, 0);
                self.a.jmp(f);
            }
            LdAbsB | LdAbsH | LdAbsW | LdIndB | LdIndH | LdIndW => {
                self.ld_packet(slot, i);
            }
            // ---- memory ----
            LdImm64 if imm == 0 => a.alu_rr(false, 0x31, dst, dst),
            LdImm64 => a.mov_ri(dst, imm as u64),
            LdxB | LdxH | LdxW | LdxDw | LdxSB | LdxSH | LdxSW => {
                let size = Size::from_bytes(i.op.mem_size());
                let sign = matches!(i.op, LdxSB | LdxSH | LdxSW);
                let (base, disp) =
                    self.mem_operand(i.src, i.off, i.op.mem_size(), Access::Read, slot, false);
                self.a.load(size, sign, dst, base, disp);
            }
            StB | StH | StW | StDw => {
                let size = Size::from_bytes(i.op.mem_size());
                let (base, disp) =
                    self.mem_operand(i.dst, i.off, i.op.mem_size(), Access::Write, slot, false);
                self.a.store_imm(size, imm as i32, base, disp);
            }
            // clang's spill code reloads a stack slot and stores it back.
            StxB | StxH | StxW | StxDw if self.stores_what_it_loaded(e) => {}
            StxB | StxH | StxW | StxDw => {
                let size = Size::from_bytes(i.op.mem_size());
                let (base, disp) =
                    self.mem_operand(i.dst, i.off, i.op.mem_size(), Access::Write, slot, false);
                self.a.store(size, src, base, disp);
            }
            AtomicAdd32 | AtomicOr32 | AtomicAnd32 | AtomicXor32 | AtomicAdd64 | AtomicOr64
            | AtomicAnd64 | AtomicXor64 => {
                let w = !i.op.is_32bit();
                let (base, disp) =
                    self.mem_operand(i.dst, i.off, i.op.mem_size(), Access::Atomic, slot, true);
                let opc = match i.op {
                    AtomicAdd32 | AtomicAdd64 => 0x01,
                    AtomicOr32 | AtomicOr64 => 0x09,
                    AtomicAnd32 | AtomicAnd64 => 0x21,
                    _ => 0x31,
                };
                self.a.lock_alu(w, opc, src, base, disp);
            }
            AtomicFetchAdd32 | AtomicFetchAdd64 | AtomicXchg32 | AtomicXchg64 => {
                let w = !i.op.is_32bit();
                let (base, disp) =
                    self.mem_operand(i.dst, i.off, i.op.mem_size(), Access::Atomic, slot, true);
                let a = &mut self.a;
                a.mov_rr(true, R10, src);
                if matches!(i.op, AtomicFetchAdd32 | AtomicFetchAdd64) {
                    a.lock_xadd(w, R10, base, disp);
                } else {
                    a.xchg(w, R10, base, disp);
                }
                a.mov_rr(w, src, R10);
            }
            AtomicFetchOr32 | AtomicFetchAnd32 | AtomicFetchXor32 | AtomicFetchOr64
            | AtomicFetchAnd64 | AtomicFetchXor64 => {
                let w = !i.op.is_32bit();
                let (base, disp) =
                    self.mem_operand(i.dst, i.off, i.op.mem_size(), Access::Atomic, slot, true);
                let opc = match i.op {
                    AtomicFetchOr32 | AtomicFetchOr64 => 0x0b,
                    AtomicFetchAnd32 | AtomicFetchAnd64 => 0x23,
                    _ => 0x33,
                };
                // A compare-exchange loop: rax holds the old value, r10 the new one,
                // the operand is kept on the stack (it may be r0 itself).
                let a = &mut self.a;
                let base = if base == RAX {
                    a.mov_rr(true, R11, RAX);
                    R11
                } else {
                    base
                };
                a.push(RAX);
                a.push(src);
                a.load(if w { Size::Dw } else { Size::W }, false, RAX, base, disp);
                let l = a.label();
                a.bind(l);
                a.mov_rr(true, R10, RAX);
                a.alu_rm(w, opc, R10, RSP, 0);
                a.lock_cmpxchg(w, R10, base, disp);
                a.jcc(cc::NE, l);
                a.mov_rr(true, R10, RAX);
                a.alu_ri(true, alu::ADD, RSP, 8);
                a.pop(RAX);
                a.mov_rr(w, src, R10);
            }
            AtomicCmpXchg32 | AtomicCmpXchg64 => {
                let w = !i.op.is_32bit();
                let (base, disp) =
                    self.mem_operand(i.dst, i.off, i.op.mem_size(), Access::Atomic, slot, true);
                self.a.lock_cmpxchg(w, src, base, disp);
                if !w {
                    // Zero-extends r0 whether or not the exchange happened.
                    self.a.mov_rr(false, RAX, RAX);
                }
            }
        }
    }

    /// The memory operand of a load, store or atomic, after its check. Returns
    /// (base, displacement) to use.
    fn mem_operand(
        &mut self,
        breg: u8,
        off: i32,
        size: usize,
        access: Access,
        slot: usize,
        atomic: bool,
    ) -> (u8, i32) {
        let base = h(breg);
        let check = self.mem_checked(breg, off, size, slot);
        if !check && !atomic {
            return (base, off);
        }
        let a = &mut self.a;
        a.lea(R11, base, off);
        if check {
            // Fast path: the stack frames in use, [r10 - 512, stack top - size].
            let slow = a.label();
            let resume = a.label();
            a.lea(R10, RBP, -FRAME);
            a.alu_rr(true, 0x39, R11, R10);
            a.jcc(cc::B, slow);
            let k = size.trailing_zeros() as i32;
            a.alu_rm(true, 0x3b, R11, R12, ctx_off::STACK_LIMIT + 8 * k);
            a.jcc(cc::A, slow);
            a.bind(resume);
            self.slows.push(MemSlow {
                slow,
                resume,
                base,
                size,
                access,
                slot,
            });
        }
        if atomic {
            self.a.test_ri(false, R11, size as i32 - 1);
            let f = self.fault(FaultKind::Misaligned, slot, size as u32);
            self.a.jcc(cc::NE, f);
        }
        (R11, 0)
    }

    /// `live`: the BPF registers live after the instruction.
    fn divmod_k(&mut self, w: bool, signed: bool, is_mod: bool, dst: u8, imm: i64, live: u16) {
        let divisor = if w { imm as u64 } else { imm as u32 as u64 };
        if !signed && divisor > 1 {
            self.udivmod_const(w, is_mod, dst, divisor, live);
            return;
        }
        let a = &mut self.a;
        let minus_one = if w { u64::MAX } else { u32::MAX as u64 };
        if divisor == 0 {
            if is_mod {
                if !w {
                    a.mov_rr(false, dst, dst);
                }
            } else {
                a.alu_rr(false, 0x31, dst, dst);
            }
        } else if signed && divisor == minus_one {
            if is_mod {
                a.alu_rr(false, 0x31, dst, dst);
            } else {
                a.neg(w, dst);
            }
        } else {
            a.mov_ri(R11, divisor);
            self.div_core(w, signed, is_mod, dst, R11, live);
        }
    }

    /// `dst /= d` or `dst %= d` unsigned, `d > 1` a constant: a shift or mask for
    /// a power of two, else a multiply by a magic number (see [`udiv_magic`])
    /// instead of `div` (tens of cycles). `mul` uses rax and rdx (BPF r0 and
    /// r3), saved around it in r10 and in r9 (no metering) or on the stack
    /// when still live after it (`live`, BPF register bits).
    fn udivmod_const(&mut self, w: bool, is_mod: bool, dst: u8, d: u64, live: u16) {
        let a = &mut self.a;
        if d.is_power_of_two() {
            let k = d.trailing_zeros() as u8;
            if !is_mod {
                if !w {
                    // The 32-bit operand: the shift's 32-bit form zero-extends.
                    a.shift_ri(false, shift::SHR, dst, k);
                } else {
                    a.shift_ri(true, shift::SHR, dst, k);
                }
            } else if !w || d - 1 <= i32::MAX as u64 {
                a.alu_ri(w, alu::AND, dst, (d - 1) as i32);
            } else {
                a.mov_ri(R11, d - 1);
                a.alu_rr(true, 0x21, dst, R11);
            }
            return;
        }
        let (m, shift_by, add) = udiv_magic(d);
        let save_rax = dst != RAX && live & 1 != 0;
        let save_rdx = dst != RDX && live & (1 << 3) != 0;
        // n: the dividend, multiplied in place when it is a 64-bit operand in
        // a register `mul` does not write, else a copy in r11 (the low 32
        // bits for a 32-bit operation). Each copy is an instruction on the
        // dependency chain of a loop of divisions (a digit sum).
        let n = if w && dst != RAX && dst != RDX {
            dst
        } else {
            a.mov_rr(w, R11, dst);
            R11
        };
        if save_rax {
            a.mov_rr(true, R10, RAX);
        }
        if save_rdx {
            if self.p.metering {
                a.push(RDX);
            } else {
                a.mov_rr(true, R9, RDX);
            }
        }
        a.mov_ri(RAX, m);
        a.mul_r(n);
        // rdx = hi(n * m); q = add ? (((n - hi) >> 1) + hi) >> s : hi >> s
        let q = if add {
            a.mov_rr(true, RAX, n);
            a.alu_rr(true, 0x29, RAX, RDX);
            a.shift_ri(true, shift::SHR, RAX, 1);
            a.alu_rr(true, 0x01, RAX, RDX);
            RAX
        } else {
            RDX
        };
        if shift_by > 0 {
            a.shift_ri(true, shift::SHR, q, shift_by);
        }
        let result = if is_mod {
            // n - q * d
            if d <= i32::MAX as u64 {
                a.imul_ri(true, q, d as i32);
            } else {
                let t = if q == RAX { RDX } else { RAX };
                a.mov_ri(t, d);
                a.imul_rr(true, q, t);
            }
            a.alu_rr(true, 0x29, n, q);
            n
        } else {
            q
        };
        // Into dst before rax and rdx get their values back: neither is dst
        // when it is saved. The result is below 2^32 for a 32-bit operation:
        // zero-extended either way.
        if result != dst {
            a.mov_rr(true, dst, result);
        }
        if save_rax {
            a.mov_rr(true, RAX, R10);
        }
        if save_rdx {
            if self.p.metering {
                a.pop(RDX);
            } else {
                a.mov_rr(true, RDX, R9);
            }
        }
    }

    /// `live`: the BPF registers live after the instruction.
    fn divmod_x(&mut self, w: bool, signed: bool, is_mod: bool, dst: u8, src: u8, live: u16) {
        let a = &mut self.a;
        let (zero, done) = (a.label(), a.label());
        // `div` takes the divisor from any register but rax and rdx, which it
        // writes: there it is copied to r11 first.
        let d = if src == RAX || src == RDX {
            a.mov_rr(w, R11, src);
            R11
        } else {
            src
        };
        a.alu_rr(w, 0x85, d, d);
        a.jcc(cc::E, zero);
        let m1 = signed.then(|| a.label());
        if let Some(m1) = m1 {
            a.alu_ri(w, alu::CMP, d, -1);
            a.jcc(cc::E, m1);
        }
        self.div_core(w, signed, is_mod, dst, d, live);
        self.a.bind(done);
        // The divisor 0 and -1 cases are out of line: the common case falls
        // through without a taken jump.
        self.div_edges.push(DivEdge {
            zero,
            m1,
            done,
            w,
            is_mod,
            dst,
        });
    }

    /// dst = dst / d or dst % d (d nonzero, and not -1 when signed; neither rax
    /// nor rdx). `div` works in rax and rdx (BPF r0 and r3): each is kept
    /// around it (rax in r10, rdx in r9 without metering, else on the stack)
    /// only when it is not dst and still live after it (`live`, BPF register
    /// bits), so a loop's `n % d` is `div` and a few moves.
    fn div_core(&mut self, w: bool, signed: bool, is_mod: bool, dst: u8, d: u8, live: u16) {
        let a = &mut self.a;
        let save_rax = dst != RAX && live & 1 != 0;
        let save_rdx = dst != RDX && live & (1 << 3) != 0;
        if dst != RAX {
            if save_rax {
                a.mov_rr(true, R10, RAX);
            }
            a.mov_rr(true, RAX, dst);
        }
        if save_rdx {
            if self.p.metering {
                a.push(RDX);
            } else {
                a.mov_rr(true, R9, RDX);
            }
        }
        if signed {
            a.sign_extend_rax(w);
        } else {
            a.alu_rr(false, 0x31, RDX, RDX);
        }
        a.div(w, signed, d);
        // A 32-bit `div` zero-extends what it writes; a 32-bit result moved
        // is zero-extended by the move.
        let result = if is_mod { RDX } else { RAX };
        if result != dst {
            a.mov_rr(w, dst, result);
        }
        if save_rax {
            a.mov_rr(true, RAX, R10);
        }
        if save_rdx {
            if self.p.metering {
                a.pop(RDX);
            } else {
                a.mov_rr(true, RDX, R9);
            }
        }
    }

    /// Shifts by a register: the count must be in cl, and rcx is BPF r4.
    fn shift_x(&mut self, w: bool, ext: u8, dst: u8, src: u8) {
        let a = &mut self.a;
        // BMI2 (`shlx`/`shrx`/`sarx`): shifts by any register without moving
        // the count into cl (which is BPF r4).
        if has_bmi2() {
            // The 32-bit form zero-extends, as every VEX write does.
            a.shiftx(w, ext, dst, dst, src);
            return;
        }
        if src == RCX && dst != RCX {
            a.shift_cl(w, ext, dst);
            if !w {
                a.mov_rr(false, dst, dst);
            }
            return;
        }
        a.mov_rr(true, R11, RCX);
        if src != RCX {
            a.mov_rr(true, RCX, src);
        }
        let t = if dst == RCX { R11 } else { dst };
        a.shift_cl(w, ext, t);
        if !w {
            a.mov_rr(false, t, t);
        }
        a.mov_rr(true, RCX, R11);
    }

    /// `may_goto`: the current frame's count (`ctx.may_goto[ctx.depth]`) is
    /// decremented, or, when it is 0, the jump to `t` is taken.
    fn may_goto(&mut self, t: Label) {
        let a = &mut self.a;
        a.load(Size::W, false, R11, R12, ctx_off::DEPTH);
        a.shift_ri(true, shift::SHL, R11, 3);
        a.alu_rr(true, 0x01, R11, R12);
        a.load(Size::Dw, false, R10, R11, ctx_off::MAY_GOTO);
        a.alu_rr(true, 0x85, R10, R10);
        a.jcc(cc::E, t);
        a.alu_ri(true, alu::SUB, R10, 1);
        a.store(Size::Dw, R10, R11, ctx_off::MAY_GOTO);
    }

    /// Sets the current frame's `may_goto` count (a function was entered), in
    /// programs that have `may_goto`.
    fn reset_may_goto(&mut self) {
        if self.has_may_goto {
            emit_reset_may_goto(&mut self.a);
        }
    }

    /// A bpf-to-bpf call: depth check (unless [`static_frames`] bounds the
    /// depth), save the callee-saved registers the
    /// callee may write (`saves`, register bits of r6..r9), new frame,
    /// `emit_call`. r10 is moved down and back up rather than saved: nothing
    /// writes it, and a frame is always 512 bytes.
    fn call_local(&mut self, slot: usize, saves: u16, emit_call: impl FnOnce(&mut Asm)) {
        let count = !self.depth_free;
        if count {
            let f = self.fault(FaultKind::CallDepth, slot, 0);
            let a = &mut self.a;
            a.cmp_m32_i8(R12, ctx_off::DEPTH, (MAX_CALL_FRAMES - 1) as i8);
            a.jcc(cc::AE, f);
            a.incdec_m32(false, R12, ctx_off::DEPTH);
        }
        self.reset_may_goto();
        let a = &mut self.a;
        let mut pushed: Vec<u8> = (6..10u8).filter(|r| saves & (1 << r) != 0).map(h).collect();
        // rsp is 8 mod 16 inside BPF code (helper calls rely on it): an odd
        // number of pushes keeps it so across the call's return address.
        if pushed.len().is_multiple_of(2) {
            pushed.push(R10);
        }
        for &r in &pushed {
            a.push(r);
        }
        a.alu_ri(true, alu::SUB, RBP, FRAME);
        emit_call(a);
        a.alu_ri(true, alu::ADD, RBP, FRAME);
        for &r in pushed.iter().rev() {
            a.pop(r);
        }
        if count {
            a.incdec_m32(true, R12, ctx_off::DEPTH);
        }
    }

    /// How to compile the call at `e` if it is `bpf_map_lookup_elem` on a map
    /// [`Params::map_lookups`] lists: r1 must be that map's address on every path
    /// to the call, which holds when the last write to r1 before it in its basic
    /// block (nothing jumps into the middle of a block) is an LD_IMM64 of the
    /// address.
    fn map_lookup_at(&self, e: usize, i: &VInsn) -> Option<MapLookup> {
        if i.imm != i64::from(BPF_FUNC_MAP_LOOKUP_ELEM) || self.p.map_lookups.is_empty() {
            return None;
        }
        let code = &self.prog.code;
        let mut k = e;
        while !self.start[k] && k > 0 {
            k -= 1;
            let c = &code[k];
            let writes_r1 = match c.op.shape() {
                // Stores write memory; an atomic's fetch writes src (or r0).
                Shape::St | Shape::Stx => false,
                Shape::Atomic => c.dst == 1 || c.src == 1,
                // Block ends never sit inside the scanned range; be safe anyway.
                Shape::JmpK | Shape::JmpX | Shape::Ja | Shape::Ja32 | Shape::Exit => false,
                Shape::Call | Shape::CallX | Shape::LdAbs | Shape::LdInd => true,
                _ => c.dst == 1,
            };
            if writes_r1 {
                if c.op != Op::LdImm64 || c.dst != 1 {
                    return None;
                }
                let map = c.imm as u64;
                return self
                    .p
                    .map_lookups
                    .iter()
                    .find(|(m, _)| *m == map)
                    .map(|(_, how)| *how)
                    .filter(|how| match how {
                        // imul takes a 32-bit immediate.
                        MapLookup::Array { stride, .. } => {
                            stride.is_power_of_two() || *stride <= i32::MAX as u32
                        }
                        MapLookup::PercpuArray { stride, ncpus, .. } => {
                            (*stride as u64) * (*ncpus as u64) <= i32::MAX as u64
                        }
                        MapLookup::Call { .. } => true,
                    });
            }
        }
        None
    }

    /// `r0 = bpf_map_lookup_elem(r1, r2)` without the trampoline (see
    /// [`MapLookup`]); r1..r5 and the fuel register are kept.
    fn map_lookup(&mut self, how: MapLookup) {
        let a = &mut self.a;
        match how {
            MapLookup::Array {
                values,
                max_entries,
                stride,
            } => {
                let done = a.label();
                a.load(Size::W, false, R11, h(2), 0);
                a.alu_rr(false, 0x31, RAX, RAX);
                a.alu_ri(false, alu::CMP, R11, max_entries as i32);
                a.jcc(cc::AE, done);
                if stride.is_power_of_two() {
                    a.shift_ri(true, shift::SHL, R11, stride.trailing_zeros() as u8);
                } else {
                    a.imul_ri(true, R11, stride as i32);
                }
                a.mov_ri(RAX, values);
                a.alu_rr(true, 0x01, RAX, R11);
                a.bind(done);
            }
            MapLookup::PercpuArray {
                values,
                max_entries,
                stride,
                ncpus,
            } => {
                let done = a.label();
                a.load(Size::W, false, R11, h(2), 0);
                a.alu_rr(false, 0x31, RAX, RAX);
                a.alu_ri(false, alu::CMP, R11, max_entries as i32);
                a.jcc(cc::AE, done);
                a.load(Size::Dw, false, R10, R12, ctx_off::CPU);
                a.alu_ri(true, alu::CMP, R10, ncpus as i32);
                a.jcc(cc::AE, done);
                // (key * ncpus + cpu) * stride, shifts for powers of two.
                mul_k(a, true, R11, ncpus as i32);
                a.alu_rr(true, 0x01, R11, R10);
                mul_k(a, true, R11, stride as i32);
                a.mov_ri(RAX, values);
                a.alu_rr(true, 0x01, RAX, R11);
                a.bind(done);
            }
            MapLookup::Call { f, obj } => {
                // Inside BPF code rsp is 8 mod 16: six pushes and 8 bytes align it.
                for r in [RDI, RSI, RDX, RCX, R8, R9] {
                    a.push(r);
                }
                a.alu_ri(true, alu::SUB, RSP, 8);
                a.mov_ri(RDI, obj);
                // The key pointer (BPF r2) is in rsi already.
                self.call_abs(f as usize);
                let a = &mut self.a;
                a.alu_ri(true, alu::ADD, RSP, 8);
                for r in [R9, R8, RCX, RDX, RSI, RDI] {
                    a.pop(r);
                }
            }
        }
    }

    /// A helper call through the trampoline. r0..r5 are spilled (r1..r5 become the
    /// argument array; r0 is given back on a tail call), fuel is stored for
    /// callbacks and reloaded after.
    fn helper_call(&mut self, slot: usize, kind: HelperKind) {
        let data = self.p.data;
        let a = &mut self.a;
        if let HelperKind::Value(r) = kind {
            a.mov_rr(true, R10, r);
        }
        a.store(Size::Dw, R9, R12, ctx_off::FUEL);
        for r in [RAX, R8, RCX, RDX, RSI, RDI] {
            a.push(r);
        }
        a.alu_ri(true, alu::SUB, RSP, 8);
        a.mov_rr(true, RDI, R12);
        match kind {
            HelperKind::Index(k) => a.mov_ri32(RSI, k),
            HelperKind::Value(_) => a.mov_rr(true, RSI, R10),
        }
        a.mov_rr(true, RDX, RBP);
        a.lea(RCX, RSP, 8);
        a.mov_ri64(R8, data);
        a.mov_ri32(R9, slot as u32);
        let f = match kind {
            HelperKind::Index(_) => runtime::jit_helper as *const () as usize,
            HelperKind::Value(_) => runtime::jit_callx as *const () as usize,
        };
        self.call_abs(f);
        let a = &mut self.a;
        a.alu_ri(true, alu::ADD, RSP, 8);
        for r in [RDI, RSI, RDX, RCX, R8] {
            a.pop(r);
        }
        a.alu_ri(true, alu::ADD, RSP, 8);
        a.load(Size::Dw, false, R9, R12, ctx_off::FUEL);
        self.check_status();
    }

    /// `callx dst`: a function of this program (BPF_PSEUDO_FUNC value) is called
    /// natively through the function table; anything else goes to the trampoline.
    fn callx(&mut self, slot: usize, dst: u8) {
        let n = self.prog.code.len() as i32;
        let table = self.p.func_table;
        let a = &mut self.a;
        let (helper, done) = (a.label(), a.label());
        a.mov_ri64(R10, crate::program::FUNC_ADDR_BASE.wrapping_neg());
        a.alu_rr(true, 0x01, R10, dst);
        a.alu_ri(true, alu::CMP, R10, n);
        a.jcc(cc::AE, helper);
        a.shift_ri(true, shift::SHL, R10, 3);
        a.mov_ri64(R11, table);
        a.alu_rr(true, 0x01, R11, R10);
        a.load(Size::Dw, false, R11, R11, 0);
        a.alu_rr(true, 0x85, R11, R11);
        a.jcc(cc::E, helper);
        self.call_local(slot, CALLEE_SAVED, |a| a.call_r(R11));
        self.a.jmp(done);
        self.a.bind(helper);
        self.helper_call(slot, HelperKind::Value(dst));
        self.a.bind(done);
    }

    /// BPF_LD_ABS / BPF_LD_IND through the runtime (r0 = the big-endian value).
    fn ld_packet(&mut self, slot: usize, i: &VInsn) {
        let a = &mut self.a;
        if matches!(i.op, Op::LdAbsB | Op::LdAbsH | Op::LdAbsW) {
            a.mov_ri32(R10, i.imm as u32);
        } else {
            a.mov_rr(false, R10, h(i.src));
            a.alu_ri(false, alu::ADD, R10, i.imm as i32);
        }
        for r in [R9, R8, RCX, RDX, RSI, RDI] {
            a.push(r);
        }
        a.alu_ri(true, alu::SUB, RSP, 8);
        a.mov_rr(true, RDI, R12);
        a.mov_rr(true, RSI, R10);
        a.mov_ri(RDX, i.op.mem_size() as u64 | (slot as u64) << 8);
        self.call_abs(runtime::jit_ld_packet as *const () as usize);
        let a = &mut self.a;
        a.alu_ri(true, alu::ADD, RSP, 8);
        for r in [RDI, RSI, RDX, RCX, R8, R9] {
            a.pop(r);
        }
        self.check_status();
    }

    /// Out-of-line code: memory check slow paths and faults.
    fn stubs(&mut self) {
        for d in std::mem::take(&mut self.div_edges) {
            let a = &mut self.a;
            a.bind(d.zero);
            // Division by zero: dst = 0; modulo: dst unchanged (truncated at 32).
            if d.is_mod {
                if !d.w {
                    a.mov_rr(false, d.dst, d.dst);
                }
            } else {
                a.alu_rr(false, 0x31, d.dst, d.dst);
            }
            a.jmp(d.done);
            if let Some(m1) = d.m1 {
                // Signed by -1: dst = -dst (INT_MIN stays); modulo: 0.
                a.bind(m1);
                if d.is_mod {
                    a.alu_rr(false, 0x31, d.dst, d.dst);
                } else {
                    a.neg(d.w, d.dst);
                }
                a.jmp(d.done);
            }
        }
        for s in std::mem::take(&mut self.slows) {
            let a = &mut self.a;
            a.bind(s.slow);
            // The region the last slow check found (see runtime::RunCtx).
            let (start, limit) = if s.access == Access::Read {
                (ctx_off::RC_START, ctx_off::RC_LIMIT)
            } else {
                (ctx_off::WC_START, ctx_off::WC_LIMIT)
            };
            let call = a.label();
            a.alu_rm(true, 0x3b, R11, R12, start);
            a.jcc(cc::B, call);
            a.alu_rm(
                true,
                0x3b,
                R11,
                R12,
                limit + 8 * s.size.trailing_zeros() as i32,
            );
            a.jcc(cc::BE, s.resume);
            a.bind(call);
            for r in [RAX, RCX, RDX, RSI, RDI, R8, R9, R11] {
                a.push(r);
            }
            a.alu_ri(true, alu::SUB, RSP, 8);
            a.mov_rr(true, RDX, s.base);
            a.mov_rr(true, RSI, R11);
            a.mov_rr(true, RDI, R12);
            let access = match s.access {
                Access::Read => 0u64,
                Access::Write => 1,
                Access::Atomic => 2,
            };
            a.mov_ri(RCX, s.size as u64 | access << 8 | (s.slot as u64) << 16);
            self.call_abs(runtime::jit_mem_check as *const () as usize);
            let a = &mut self.a;
            a.alu_ri(true, alu::ADD, RSP, 8);
            a.alu_rr(false, 0x85, RAX, RAX);
            for r in [R11, R9, R8, RDI, RSI, RDX, RCX, RAX] {
                a.pop(r);
            }
            a.jcc(cc::NE, s.resume);
            let u = self.unwind;
            a.jmp(u);
        }
        for f in std::mem::take(&mut self.faults) {
            let a = &mut self.a;
            a.bind(f.at);
            a.store_imm32(R12, ctx_off::FAULT_KIND, f.kind as u32);
            a.store_imm32(R12, ctx_off::FAULT_PC, f.slot as u32);
            a.store_imm32(R12, ctx_off::FAULT_INFO, f.info);
            a.store(Size::Dw, R11, R12, ctx_off::FAULT_ADDR);
            a.store(Size::Dw, R9, R12, ctx_off::FUEL);
            a.store_imm32(R12, ctx_off::STATUS, runtime::STATUS_FAULT);
            let u = self.unwind;
            a.jmp(u);
        }
        self.a.ud2();
    }
}

#[derive(Clone, Copy)]
enum HelperKind {
    /// A `call N` resolved at load: index into the program's helpers.
    Index(u32),
    /// `callx` with a value that is not a function of the program.
    Value(u8),
}

/// `dst *= k`: a shift for a power of two, `lea` for 3, 5 and 9, else `imul`.
/// The 32-bit forms zero-extend as BPF's 32-bit multiply does.
fn mul_k(a: &mut Asm, w: bool, dst: u8, k: i32) {
    match k {
        0 => a.alu_rr(false, 0x31, dst, dst),
        1 if w => {}
        1 => a.mov_rr(false, dst, dst),
        3 | 5 | 9 => a.lea_scaled(w, dst, dst, dst, ((k - 1) as u32).trailing_zeros() as u8, 0),
        k if k > 0 && (k as u32).is_power_of_two() => {
            a.shift_ri(w, shift::SHL, dst, (k as u32).trailing_zeros() as u8)
        }
        k => a.imul_ri(w, dst, k),
    }
}

/// Magic number for unsigned 64-bit division by `d` (not 0, not a power of
/// two): `(m, s, add)` with `q = hi(n * m) >> s` when `!add`, else
/// `q = (((n - hi) >> 1) + hi) >> s`, where `hi = (n * m) >> 64` (Granlund and
/// Montgomery's method: the smallest power `2^(64 + s)` whose rounding error
/// stays below `2^s`, else a 65-bit multiplier with its top bit folded into the
/// add-and-halve step). Exact for every 64-bit `n` (tested against `/`).
pub(crate) fn udiv_magic(d: u64) -> (u64, u8, bool) {
    debug_assert!(d > 1 && !d.is_power_of_two());
    let log = 63 - d.leading_zeros();
    let num = 1u128 << (64 + log);
    let m = (num / d as u128) as u64;
    let rem = (num % d as u128) as u64;
    let e = d - rem;
    if e < (1u64 << log) {
        (m.wrapping_add(1), log as u8, false)
    } else {
        let mut m2 = m.wrapping_add(m);
        let twice = rem.wrapping_add(rem);
        if twice >= d || twice < rem {
            m2 = m2.wrapping_add(1);
        }
        (m2.wrapping_add(1), log as u8, true)
    }
}

fn cond(op: Op) -> u8 {
    use Op::*;
    match op {
        JeqK | JeqX | Jeq32K | Jeq32X => cc::E,
        JneK | JneX | Jne32K | Jne32X | JsetK | JsetX | Jset32K | Jset32X => cc::NE,
        JgtK | JgtX | Jgt32K | Jgt32X => cc::A,
        JgeK | JgeX | Jge32K | Jge32X => cc::AE,
        JltK | JltX | Jlt32K | Jlt32X => cc::B,
        JleK | JleX | Jle32K | Jle32X => cc::BE,
        JsgtK | JsgtX | Jsgt32K | Jsgt32X => cc::G,
        JsgeK | JsgeX | Jsge32K | Jsge32X => cc::GE,
        JsltK | JsltX | Jslt32K | Jslt32X => cc::L,
        _ => cc::LE,
    }
}
