//! Precision tracking (`mark_chain_precision`): scalars start imprecise, and
//! pruning ignores the value of an imprecise scalar. When a scalar's value
//! decides safety (a branch the bounds decide, a pointer offset, a size
//! argument), it and every register or stack slot it was computed from are
//! marked precise, walking back through the instructions this path executed
//! (`Hist`) and into the checkpoints it descends from. What the walk cannot
//! follow (calls into subprograms, stack slots reached through unknown
//! offsets, atomics on the stack) makes every scalar on the path precise:
//! less pruning, never less safety. Unprivileged programs keep every scalar
//! precise, as in the kernel.

use super::*;

/// One executed instruction, with what the backward walk needs to know of
/// the state it ran in.
#[derive(Clone, Copy, Debug)]
pub(super) struct Hist {
    pub pc: u32,
    /// The stack slot a load or store touched in the current frame.
    pub slot: Option<u16>,
    /// A load or store through a stack pointer whose slot is not known here
    /// (variable offset or another frame's stack).
    pub slot_unknown: bool,
    /// Registers sharing a scalar id with a conditional jump's operands: the
    /// jump refined them all.
    pub linked: u16,
    /// Spilled scalars sharing such an id (the walk does not follow them).
    pub linked_stack: bool,
    /// The frame depth changed (subprogram call, return, callback).
    pub frame_change: bool,
}

/// A path's history since its last checkpoint: a shared list, newest first,
/// so that pushing a branch does not copy it.
pub(super) type HistList = Option<std::rc::Rc<HistNode>>;

pub(super) struct HistNode {
    h: Hist,
    prev: HistList,
    len: usize,
    /// Entries the kernel's jump history would hold (see [`hist_push`]).
    marks: usize,
}

impl Drop for HistNode {
    // Long histories would otherwise drop recursively, node by node.
    fn drop(&mut self) {
        let mut next = self.prev.take();
        while let Some(rc) = next {
            match std::rc::Rc::try_unwrap(rc) {
                Ok(mut node) => next = node.prev.take(),
                Err(_) => break,
            }
        }
    }
}

/// Appends one executed instruction. `mark`: the kernel would record it in
/// its jump history too (a jump target, a stack slot access, a jump that
/// refined linked registers); the history keeps every instruction.
pub(super) fn hist_push(list: &mut HistList, h: Hist, mark: bool) {
    let prev = list.take();
    let len = prev.as_ref().map_or(0, |n| n.len) + 1;
    let marks = prev.as_ref().map_or(0, |n| n.marks) + usize::from(mark);
    *list = Some(std::rc::Rc::new(HistNode {
        h,
        prev,
        len,
        marks,
    }));
}

pub(super) fn hist_len(list: &HistList) -> usize {
    list.as_ref().map_or(0, |n| n.len)
}

/// How many entries the kernel's jump history would hold for this path
/// since its last checkpoint.
pub(super) fn hist_marks(list: &HistList) -> usize {
    list.as_ref().map_or(0, |n| n.marks)
}

/// Newest first.
fn hist_iter(list: &HistList) -> impl Iterator<Item = &Hist> {
    let mut cur = list.as_deref();
    std::iter::from_fn(move || {
        let n = cur?;
        cur = n.prev.as_deref();
        Some(&n.h)
    })
}

enum Walk {
    Done,
    /// Give up on following sources: make every scalar precise.
    All,
}

impl Verifier<'_> {
    pub(super) fn precision_on(&self) -> bool {
        self.privileged()
    }

    /// What the history entry of `pc` must remember, taken before it runs.
    pub(super) fn hist_before(&self, st: &State, pc: usize, d: &Decoded) -> Hist {
        let mut h = Hist {
            pc: pc as u32,
            slot: None,
            slot_unknown: false,
            linked: 0,
            linked_stack: false,
            frame_change: false,
        };
        let base = match d.op.shape() {
            Shape::Ldx | Shape::LoadAcq => Some(d.src),
            Shape::St | Shape::Stx | Shape::Atomic | Shape::StoreRel => Some(d.dst),
            _ => None,
        };
        if let Some(b) = base {
            let r = st.reg(b);
            if r.ty == RegType::Stack {
                if r.var_off.is_const() && r.frameno == st.curframe() {
                    let addr = r.off as i64 + r.var_off.value as i64 + d.off as i64;
                    if (-512..0).contains(&addr) {
                        h.slot = Some(((-addr - 1) / 8) as u16);
                    } else {
                        h.slot_unknown = true;
                    }
                } else {
                    h.slot_unknown = true;
                }
            }
        }
        if matches!(d.op.shape(), Shape::JmpK | Shape::JmpX) {
            let mut ids = Vec::new();
            for r in [Some(d.dst), (d.op.shape() == Shape::JmpX).then_some(d.src)]
                .into_iter()
                .flatten()
            {
                let reg = st.reg(r);
                if reg.is_scalar() && reg.id != 0 {
                    ids.push(reg.base_id());
                }
            }
            if !ids.is_empty() {
                let f = st.cur();
                for (i, r) in f.regs.iter().enumerate() {
                    if r.is_scalar() && r.id != 0 && ids.contains(&r.base_id()) {
                        h.linked |= 1 << i;
                    }
                }
                h.linked_stack = f.stack.iter().any(|s| {
                    s.ty.contains(&STACK_SPILL)
                        && s.spill.is_scalar()
                        && s.spill.id != 0
                        && ids.contains(&s.spill.base_id())
                });
            }
        }
        h
    }

    /// Marks registers `regs` (bit per register of the current frame)
    /// precise in `st` and, through the path's history, whatever they were
    /// computed from in the checkpoints above.
    pub(super) fn mark_precise(&mut self, st: &mut State, regs: u16) {
        self.mark_precise_with(st, regs, 0);
    }

    pub(super) fn mark_precise_with(&mut self, st: &mut State, mut regs: u16, mut stack: u64) {
        if !self.precision_on() {
            return;
        }
        // Only scalars carry precision.
        {
            let f = st.cur_mut();
            for (i, r) in f.regs.iter_mut().enumerate() {
                if regs & (1 << i) != 0 {
                    if r.is_scalar() {
                        r.precise = true;
                    } else {
                        regs &= !(1 << i);
                    }
                }
            }
            for (spi, s) in f.stack.iter_mut().enumerate().take(64) {
                if stack & (1 << spi) != 0 {
                    if s.ty.contains(&STACK_SPILL) && s.spill.is_scalar() {
                        s.spill.precise = true;
                    } else {
                        stack &= !(1 << spi);
                    }
                }
            }
        }
        if regs == 0 && stack == 0 {
            return;
        }
        let depth = st.frames.len();
        let hist = self.history.clone();
        let mut r = self.backtrack(&hist, &mut regs, &mut stack);
        let mut cp = self.cur_parent;
        while matches!(r, Walk::Done) && (regs != 0 || stack != 0) {
            let Some(c) = cp else { break };
            let Some(state) = self.checkpoints[c].state.as_mut() else {
                // The root: program entry, where only the context is set.
                break;
            };
            if state.frames.len() != depth {
                r = Walk::All;
                break;
            }
            let mut new = false;
            let f = state.frames.last_mut().expect("a frame");
            for (i, reg) in f.regs.iter_mut().enumerate() {
                if regs & (1 << i) != 0 {
                    if !reg.is_scalar() {
                        regs &= !(1 << i);
                    } else if !reg.precise {
                        reg.precise = true;
                        new = true;
                    }
                }
            }
            for spi in 0..64 {
                if stack & (1 << spi) == 0 {
                    continue;
                }
                match f.stack.get_mut(spi) {
                    Some(s) if s.ty.contains(&STACK_SPILL) && s.spill.is_scalar() => {
                        if !s.spill.precise {
                            s.spill.precise = true;
                            new = true;
                        }
                    }
                    _ => stack &= !(1 << spi),
                }
            }
            // Already precise here means already followed further up.
            if !new {
                break;
            }
            let seg = self.checkpoints[c].seg.clone();
            r = self.backtrack(&seg, &mut regs, &mut stack);
            cp = self.checkpoints[c].parent;
        }
        if matches!(r, Walk::All) {
            self.mark_all_precise(st);
        }
    }

    /// The fallback: every scalar in `st` and in every checkpoint above it.
    pub(super) fn mark_all_precise(&mut self, st: &mut State) {
        st.for_each_reg(|r| {
            if r.is_scalar() {
                r.precise = true;
            }
        });
        let mut cp = self.cur_parent;
        while let Some(c) = cp {
            if self.checkpoints[c].all_precise {
                break;
            }
            self.checkpoints[c].all_precise = true;
            if let Some(s) = self.checkpoints[c].state.as_mut() {
                s.for_each_reg(|r| {
                    if r.is_scalar() {
                        r.precise = true;
                    }
                });
            }
            cp = self.checkpoints[c].parent;
        }
    }

    /// Walks `hist` backwards: which registers and stack slots before it
    /// the values in `regs`/`stack` after it were computed from.
    fn backtrack(&self, hist: &HistList, regs: &mut u16, stack: &mut u64) -> Walk {
        for h in hist_iter(hist) {
            if *regs == 0 && *stack == 0 {
                return Walk::Done;
            }
            if h.frame_change {
                return Walk::All;
            }
            let d = self.dec(h.pc as usize);
            let bit = |r: u8| 1u16 << r;
            let has = |m: u16, r: u8| m & bit(r) != 0;
            let slot_bit = h.slot.filter(|&s| s < 64).map(|s| 1u64 << s);
            match d.op.shape() {
                // A cast keeps the low half of src (a refused insn: no path
                // gets past it, but the walk must know what it reads).
                Shape::AsCast => {
                    if has(*regs, d.dst) {
                        *regs &= !bit(d.dst);
                        *regs |= bit(d.src);
                    }
                }
                Shape::AluK | Shape::AluX | Shape::Neg | Shape::End | Shape::MovSx => {
                    let is_mov = d.op.code() & 0xf0 == 0xb0 || d.op.shape() == Shape::MovSx;
                    let from_reg = matches!(d.op.shape(), Shape::AluX | Shape::MovSx);
                    if has(*regs, d.dst) {
                        if is_mov {
                            *regs &= !bit(d.dst);
                        }
                        if from_reg {
                            *regs |= bit(d.src);
                        }
                    }
                }
                Shape::LdImm64 => *regs &= !bit(d.dst),
                Shape::LdAbs | Shape::LdInd => *regs &= !0x3f,
                Shape::Ldx | Shape::LoadAcq => {
                    if has(*regs, d.dst) {
                        *regs &= !bit(d.dst);
                        if let Some(b) = slot_bit {
                            *stack |= b;
                        } else if h.slot_unknown {
                            return Walk::All;
                        }
                    }
                }
                Shape::St | Shape::Stx | Shape::StoreRel => {
                    if let Some(b) = slot_bit {
                        if *stack & b != 0 {
                            *stack &= !b;
                            if d.op.shape() != Shape::St {
                                *regs |= bit(d.src);
                            }
                        }
                    } else if h.slot_unknown && *stack != 0 {
                        return Walk::All;
                    }
                }
                Shape::Atomic => {
                    let touches_stack = slot_bit.is_some_and(|b| *stack & b != 0);
                    if touches_stack
                        || (h.slot_unknown && *stack != 0)
                        || has(*regs, d.src)
                        || has(*regs, 0)
                    {
                        return Walk::All;
                    }
                }
                Shape::JmpK | Shape::JmpX => {
                    let mut ops = bit(d.dst) | h.linked;
                    if d.op.shape() == Shape::JmpX {
                        ops |= bit(d.src);
                    }
                    if *regs & ops != 0 {
                        if h.linked_stack {
                            return Walk::All;
                        }
                        *regs |= ops;
                    }
                }
                Shape::Call => {
                    if d.op == Op::CallLocal {
                        return Walk::All;
                    }
                    // r0 is the helper's result; r1-r5 are dead after a call.
                    *regs &= !0x3f;
                }
                Shape::Ja | Shape::Ja32 | Shape::MayGoto => {}
                Shape::CallX | Shape::Exit => return Walk::All,
            }
        }
        Walk::Done
    }
}

impl Verifier<'_> {
    /// The path was pruned by completed checkpoint `ci`: what was precise
    /// there is what this path's values must match, so it becomes precise
    /// in this path's checkpoints too (`propagate_precision`).
    pub(super) fn propagate_precision(&mut self, st: &mut State, ci: usize) {
        if !self.precision_on() {
            return;
        }
        let Some(old) = self.checkpoints[ci].state.as_ref() else {
            return;
        };
        let precise_spill =
            |s: &Slot| s.ty.contains(&STACK_SPILL) && s.spill.is_scalar() && s.spill.precise;
        let n = old.frames.len();
        let outer = old.frames[..n - 1].iter().any(|f| {
            f.regs.iter().any(|r| r.is_scalar() && r.precise) || f.stack.iter().any(precise_spill)
        });
        let f = &old.frames[n - 1];
        let mut regs = 0u16;
        for (i, r) in f.regs.iter().enumerate() {
            if r.is_scalar() && r.precise {
                regs |= 1 << i;
            }
        }
        let mut stack = 0u64;
        let mut deep = false;
        for (spi, s) in f.stack.iter().enumerate() {
            if precise_spill(s) {
                if spi < 64 {
                    stack |= 1 << spi;
                } else {
                    deep = true;
                }
            }
        }
        if outer || deep || n != st.frames.len() {
            self.mark_all_precise(st);
            return;
        }
        self.mark_precise_with(st, regs, stack);
    }
}

impl Verifier<'_> {
    /// A constant stack key decided something: the spilled scalar it was
    /// read from becomes precise.
    pub(super) fn mark_key_precise(&mut self, st: &mut State, key: &Reg) {
        if !self.precision_on() {
            return;
        }
        let addr = key.off as i64 + key.var_off.value as i64;
        let spi = (-addr - 1) / 8;
        if key.frameno != st.curframe() || !(0..64).contains(&spi) {
            self.mark_all_precise(st);
            return;
        }
        self.mark_precise_with(st, 0, 1 << spi);
    }
}
