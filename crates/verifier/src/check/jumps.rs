//! Conditional jumps: deciding branches from known bounds (`is_branch_taken`),
//! refining bounds on each side (`reg_set_min_max`), NULL checks of nullable
//! pointers, and packet ranges learned from comparisons with data_end
//! (`find_good_pkt_pointers`).

use super::*;

/// The condition that holds on the fall-through side.
fn negate(op: u8) -> u8 {
    match op {
        BPF_JEQ => BPF_JNE,
        BPF_JNE => BPF_JEQ,
        BPF_JGT => BPF_JLE,
        BPF_JLE => BPF_JGT,
        BPF_JGE => BPF_JLT,
        BPF_JLT => BPF_JGE,
        BPF_JSGT => BPF_JSLE,
        BPF_JSLE => BPF_JSGT,
        BPF_JSGE => BPF_JSLT,
        BPF_JSLT => BPF_JSGE,
        // JSET's negation: (a & b) == 0; encoded as an out-of-band value.
        BPF_JSET => 0xe0,
        0xe0 => BPF_JSET,
        o => o,
    }
}

/// `a op b` with the operands swapped: `b op' a`.
fn flip(op: u8) -> u8 {
    match op {
        BPF_JGT => BPF_JLT,
        BPF_JLT => BPF_JGT,
        BPF_JGE => BPF_JLE,
        BPF_JLE => BPF_JGE,
        BPF_JSGT => BPF_JSLT,
        BPF_JSLT => BPF_JSGT,
        BPF_JSGE => BPF_JSLE,
        BPF_JSLE => BPF_JSGE,
        o => o,
    }
}

/// Bounds of one width, as (umin, umax, smin, smax, tnum) in 64-bit terms.
#[derive(Clone, Copy)]
struct B {
    umin: u64,
    umax: u64,
    smin: i64,
    smax: i64,
    t: Tnum,
}

fn view(r: &Reg, is32: bool) -> B {
    if is32 {
        B {
            umin: r.u32_min as u64,
            umax: r.u32_max as u64,
            smin: r.s32_min as i64,
            smax: r.s32_max as i64,
            t: r.var_off.subreg(),
        }
    } else {
        B {
            umin: r.umin,
            umax: r.umax,
            smin: r.smin,
            smax: r.smax,
            t: r.var_off,
        }
    }
}

fn store(r: &mut Reg, b: B, is32: bool) -> bool {
    if b.umin > b.umax || b.smin > b.smax || (b.t.value & b.t.mask) != 0 {
        return false;
    }
    if is32 {
        r.u32_min = b.umin as u32;
        r.u32_max = b.umax as u32;
        r.s32_min = b.smin as i32;
        r.s32_max = b.smax as i32;
        r.var_off = r.var_off.with_subreg(b.t);
    } else {
        r.umin = b.umin;
        r.umax = b.umax;
        r.smin = b.smin;
        r.smax = b.smax;
        r.var_off = b.t;
    }
    r.sync_bounds();
    !r.is_empty()
}

/// JNE against a constant: shave the constant off either end of the range.
fn jne_one(p: &mut B, q: &B, is32: bool, umax_lim: u64, smax_lim: i64, smin_lim: i64) -> bool {
    if !q.t.is_const() {
        return true;
    }
    let v = q.t.value;
    let sv = if is32 {
        v as u32 as i32 as i64
    } else {
        v as i64
    };
    if p.t.is_const() && p.t.value == v {
        return false;
    }
    if p.umin == v {
        if v == umax_lim {
            return false;
        }
        p.umin += 1;
    } else if p.umax == v {
        if v == 0 {
            return false;
        }
        p.umax -= 1;
    }
    if p.smin == sv {
        if sv == smax_lim {
            return false;
        }
        p.smin += 1;
    } else if p.smax == sv {
        if sv == smin_lim {
            return false;
        }
        p.smax -= 1;
    }
    true
}

/// Refines `a` and `b` assuming `a op b` holds. False: it cannot hold.
fn refine(op: u8, a: &mut Reg, b: &mut Reg, is32: bool) -> bool {
    let (mut x, mut y) = (view(a, is32), view(b, is32));
    let (smax_lim, smin_lim) = if is32 {
        (i32::MAX as i64, i32::MIN as i64)
    } else {
        (i64::MAX, i64::MIN)
    };
    let umax_lim = if is32 { u32::MAX as u64 } else { u64::MAX };
    match op {
        BPF_JEQ => {
            if (x.t.value ^ y.t.value) & !(x.t.mask | y.t.mask) != 0 {
                return false;
            }
            let t = x.t.intersect(y.t);
            let n = B {
                umin: x.umin.max(y.umin),
                umax: x.umax.min(y.umax),
                smin: x.smin.max(y.smin),
                smax: x.smax.min(y.smax),
                t,
            };
            x = n;
            y = n;
        }
        BPF_JNE => {
            let (x0, y0) = (x, y);
            if !jne_one(&mut x, &y0, is32, umax_lim, smax_lim, smin_lim)
                || !jne_one(&mut y, &x0, is32, umax_lim, smax_lim, smin_lim)
            {
                return false;
            }
        }
        BPF_JGT | BPF_JGE => {
            let strict = (op == BPF_JGT) as u64;
            // x > y: x.umin >= y.umin + 1, y.umax <= x.umax - 1
            let Some(lo) = y.umin.checked_add(strict) else {
                return false;
            };
            let Some(hi) = x.umax.checked_sub(strict) else {
                return false;
            };
            x.umin = x.umin.max(lo);
            y.umax = y.umax.min(hi);
        }
        BPF_JLT | BPF_JLE => return refine(flip(op), b, a, is32),
        BPF_JSGT | BPF_JSGE => {
            let strict = (op == BPF_JSGT) as i64;
            let Some(lo) = y.smin.checked_add(strict) else {
                return false;
            };
            let Some(hi) = x.smax.checked_sub(strict) else {
                return false;
            };
            if lo > smax_lim || hi < smin_lim {
                return false;
            }
            x.smin = x.smin.max(lo);
            y.smax = y.smax.min(hi);
        }
        BPF_JSLT | BPF_JSLE => return refine(flip(op), b, a, is32),
        BPF_JSET => {
            let ymax = y.t.value | y.t.mask;
            let xmax = x.t.value | x.t.mask;
            if xmax & ymax == 0 {
                return false;
            }
            if y.t.is_const() && y.t.value.is_power_of_two() {
                x.t = x.t.or(Tnum::konst(y.t.value));
            }
        }
        0xe0 => {
            if x.t.value & y.t.value != 0 {
                return false;
            }
            if y.t.is_const() {
                x.t = x.t.and(Tnum::konst(!y.t.value));
            }
            if x.t.is_const() {
                y.t = y.t.and(Tnum::konst(!x.t.value));
            }
        }
        _ => {}
    }
    let mut a2 = a.clone();
    let mut b2 = b.clone();
    if !store(&mut a2, x, is32) || !store(&mut b2, y, is32) {
        return false;
    }
    *a = a2;
    *b = b2;
    true
}

/// Copies refined bounds to every scalar linked to `r` by id
/// (`sync_linked_regs`): a copy gets them as they are, a copy plus a
/// constant (`ADD_CONST`) gets them moved by the difference of constants.
fn sync_linked(st: &mut State, r: &Reg) {
    if r.id == 0 || !r.is_scalar() {
        return;
    }
    let r = r.clone();
    st.for_each_reg(|x| {
        if !x.is_scalar() || x.base_id() != r.base_id() {
            return;
        }
        let flagged = |y: &Reg| y.id & ADD_CONST != 0;
        if (!flagged(x) && !flagged(&r)) || x.off == r.off {
            *x = r.clone();
        } else {
            let delta = x.off as i64 - r.off as i64;
            let (id, off) = (x.id, x.off);
            let mut moved = alu::scalar_op64(BPF_ADD, &r, &Reg::konst(delta as u64));
            moved.id = id;
            moved.off = off;
            moved.precise = r.precise;
            *x = moved;
        }
    });
}

/// `regs_exact`: the same register, ids mapped consistently; precision
/// marks do not count.
fn regs_exact(old: &Reg, cur: &Reg, idmap: &mut IdMap) -> bool {
    let norm = |r: &Reg| {
        let mut r = r.clone();
        r.precise = false;
        r.id = 0;
        r.ref_obj_id = 0;
        r
    };
    norm(old) == norm(cur)
        && idmap.check(old.id, cur.id)
        && idmap.check(old.ref_obj_id, cur.ref_obj_id)
}

/// `maybe_widen_reg`: a scalar that differs from the previous iteration's and
/// whose value nothing depended on (imprecise in both) becomes unknown, so
/// that the loop's states converge.
fn maybe_widen(old: &Reg, cur: &mut Reg, idmap: &mut IdMap) {
    if !old.is_scalar() || !cur.is_scalar() || old.precise || cur.precise {
        return;
    }
    if !regs_exact(old, cur, idmap) {
        *cur = Reg::unknown();
    }
}

/// `widen_imprecise_scalars`: `cur` against the loop's previous iteration
/// `old`, every frame's registers and spilled scalars.
fn widen_imprecise_scalars(old: &State, cur: &mut State) {
    let mut idmap = IdMap::default();
    for (fo, fc) in old.frames.iter().zip(cur.frames.iter_mut()) {
        for (ro, rc) in fo.regs.iter().zip(fc.regs.iter_mut()) {
            maybe_widen(ro, rc, &mut idmap);
        }
        for (so, sc) in fo.stack.iter().zip(fc.stack.iter_mut()) {
            if so.ty[7] == STACK_SPILL && sc.ty[7] == STACK_SPILL {
                maybe_widen(&so.spill, &mut sc.spill, &mut idmap);
            }
        }
    }
}

impl Verifier<'_> {
    /// `may_goto +off`: as the kernel explores it, the jump (the hidden loop
    /// count is exhausted) is followed first, and the fall-through (one more
    /// iteration) is queued with `may_goto_depth + 1`, its imprecise scalars
    /// widened against the previous iteration's state at this instruction
    /// (`find_prev_entry`). `is_state_visited` ends the loop when a state
    /// repeats with another depth.
    pub(super) fn check_may_goto(
        &mut self,
        st: &mut State,
        pc: usize,
        d: &Decoded,
        parent: Option<usize>,
    ) -> Result<Next, Fail> {
        let mut fall = st.clone();
        fall.may_goto_depth += 1;
        if self.privileged() {
            if let Some(prev) = self.prev_loop_entry(st, pc, parent) {
                widen_imprecise_scalars(&prev, &mut fall);
            }
        }
        self.push_branch(fall, pc + 1, pc, parent)?;
        Ok(Next::Go(target(pc, d) as usize))
    }

    /// The checkpoint at `pc` of the previous loop iteration: the nearest
    /// ancestor of the path's checkpoint (itself skipped when it was just
    /// taken at `pc`) at `pc` with the same call sites.
    fn prev_loop_entry(&self, st: &State, pc: usize, parent: Option<usize>) -> Option<State> {
        let mut cp = parent;
        if let Some(p) = cp {
            if self.checkpoints[p].pc == pc {
                cp = self.checkpoints[p].parent;
            }
        }
        while let Some(c) = cp {
            let ck = &self.checkpoints[c];
            if ck.pc == pc {
                if let Some(s) = ck.state.as_ref() {
                    let same_sites = s.frames.len() == st.frames.len()
                        && s.frames
                            .iter()
                            .zip(&st.frames)
                            .all(|(a, b)| a.callsite == b.callsite);
                    if same_sites {
                        return Some(s.clone());
                    }
                }
            }
            cp = ck.parent;
        }
        None
    }

    pub(super) fn check_cond_jmp(
        &mut self,
        st: &mut State,
        pc: usize,
        d: &Decoded,
        parent: &mut Option<usize>,
    ) -> Result<Next, Fail> {
        let op = d.op.code() & 0xf0;
        let is32 = d.op.class() == BPF_JMP32;
        self.check_reg_read(st, d.dst)?;
        let is_x = d.op.shape() == Shape::JmpX;
        if is_x {
            self.check_reg_read(st, d.src)?;
        }
        let next = pc + 1;
        let tgt = target(pc, d) as usize;
        let a = st.reg(d.dst).clone();
        let b = if is_x {
            st.reg(d.src).clone()
        } else {
            Reg::konst(d.imm32() as i64 as u64)
        };
        let b_for_32 = if is_x {
            b.clone()
        } else {
            Reg::konst(d.imm32() as u32 as u64)
        };
        let b = if is32 { b_for_32 } else { b };

        if a.ty.is_ptr() || b.ty.is_ptr() {
            return self.ptr_jmp(st, d, op, is32, is_x, &a, &b, next, tgt, parent);
        }
        // Scalars.
        let mut ta = a.clone();
        let mut tb = b.clone();
        let taken_ok = refine(op, &mut ta, &mut tb, is32);
        let mut fa = a.clone();
        let mut fb = b.clone();
        let fall_ok = refine(negate(op), &mut fa, &mut fb, is32);
        let mut m = 1u16 << d.dst;
        if is_x {
            m |= 1 << d.src;
        }
        if taken_ok != fall_ok || !taken_ok {
            // The bounds decided the branch: they must hold wherever this
            // path is used to prune.
            self.mark_precise(st, m);
        } else {
            // Both sides refine the operands and their linked copies from
            // each other: if any of them is precise, all must be.
            let ids = [a.base_id(), if is_x { b.base_id() } else { 0 }];
            let f = st.cur();
            for (i, r) in f.regs.iter().enumerate() {
                if r.is_scalar() && r.id != 0 && ids.contains(&r.base_id()) {
                    m |= 1 << i;
                }
            }
            let any_precise = (0..11).any(|i| m & (1 << i) != 0 && f.regs[i].precise)
                || f.stack.iter().any(|s| {
                    s.ty.contains(&STACK_SPILL)
                        && s.spill.precise
                        && s.spill.id != 0
                        && ids.contains(&s.spill.base_id())
                });
            if any_precise {
                self.mark_precise(st, m);
            }
        }
        match (taken_ok, fall_ok) {
            (true, false) => {
                return Ok(Next::Go(tgt));
            }
            (false, true) => {
                return Ok(Next::Go(next));
            }
            (false, false) => {
                // No value satisfies either side: the path cannot happen.
                return Ok(Next::Dead);
            }
            _ => {}
        }
        let mut other = st.clone();
        *other.reg_mut(d.dst) = ta.clone();
        sync_linked(&mut other, &ta);
        if is_x {
            *other.reg_mut(d.src) = tb.clone();
            sync_linked(&mut other, &tb);
        }
        *st.reg_mut(d.dst) = fa.clone();
        sync_linked(st, &fa);
        if is_x {
            *st.reg_mut(d.src) = fb.clone();
            sync_linked(st, &fb);
        }
        self.push_branch(other, tgt, pc, *parent)?;
        Ok(Next::Go(next))
    }

    #[allow(clippy::too_many_arguments)]
    fn ptr_jmp(
        &mut self,
        st: &mut State,
        d: &Decoded,
        op: u8,
        is32: bool,
        is_x: bool,
        a: &Reg,
        b: &Reg,
        next: usize,
        tgt: usize,
        parent: &mut Option<usize>,
    ) -> Result<Next, Fail> {
        let pc = self.cur_insn;
        let pkt_any = |r: &Reg| r.ty.is_pkt() || r.ty == RegType::PacketEnd;
        // The kernel looks at the source register first.
        if is_x && b.ty.is_ptr() && !self.privileged() && !(pkt_any(a) && pkt_any(b)) {
            return self.err(unsafe_(format!("R{} pointer comparison prohibited", d.src)));
        }
        // `is_branch_taken`: a pointer that cannot be NULL is never equal
        // to 0. Only these types are known non-NULL (`reg_not_null`).
        let (p, c) = if b.ty.is_ptr() || !b.is_const() {
            (b, a)
        } else {
            (a, b)
        };
        // A trusted kernel object (`is_trusted_reg`: referenced, or marked
        // trusted and not untrusted or merely RCU-protected) is not NULL; and
        // a pointer whose variable offset is unbounded may wrap to 0.
        let trusted_btf = crate::kfuncs::is_trusted(p);
        let not_null = !p.maybe_null
            && p.smin > -MAX_VAR_OFF
            && p.smax < MAX_VAR_OFF
            && (trusted_btf
                || matches!(
                    p.ty,
                    RegType::MapValue
                        | RegType::MapKey
                        | RegType::RingbufMem
                        | RegType::MapPtr
                        | RegType::Sock
                        | RegType::TcpSock
                        | RegType::XdpSock
                        | RegType::SockCommon
                        | RegType::Mem
                ));
        if !is32 && not_null && c.is_null_const() && matches!(op, BPF_JEQ | BPF_JNE) {
            return Ok(Next::Go(if op == BPF_JEQ { next } else { tgt }));
        }
        // A NULL check of a nullable pointer: only `if rX == 0` (an
        // immediate); a register that holds 0 teaches nothing, as in the kernel.
        if !is32 && !is_x && matches!(op, BPF_JEQ | BPF_JNE) && a.maybe_null && b.is_null_const() {
            let id = a.id;
            let mut other = st.clone();
            // On the JEQ-taken side the pointer is NULL.
            let (null_st, nonnull_st): (&mut State, &mut State) = if op == BPF_JEQ {
                (&mut other, st)
            } else {
                (st, &mut other)
            };
            // Map values of maps with a spin lock keep their id: it names
            // the lock (reg_may_point_to_spin_lock).
            let lock_maps = self.spin_lock_maps(nonnull_st, id);
            mark_null(null_st, id, true, &lock_maps);
            mark_null(nonnull_st, id, false, &lock_maps);
            self.push_branch(other, tgt, pc, *parent)?;
            return Ok(Next::Go(next));
        }
        // `try_match_pkt_pointers`: the comparisons that teach a packet range.
        let pkt_vs_end = |x: &Reg, y: &Reg| {
            (x.ty == RegType::Packet && y.ty == RegType::PacketEnd)
                || (x.ty == RegType::PacketMeta
                    && y.ty == RegType::Packet
                    && y.off == 0
                    && y.is_const()
                    && y.var_off.value == 0)
        };
        let pkt_match = is_x
            && !is32
            && matches!(op, BPF_JGT | BPF_JGE | BPF_JLT | BPF_JLE)
            && (pkt_vs_end(a, b) || pkt_vs_end(b, a));
        if !self.privileged() && a.ty.is_ptr() && !pkt_match {
            return self.err(unsafe_(format!("R{} pointer comparison prohibited", d.dst)));
        }
        // Packet pointer against its end.
        if is_x && !is32 {
            // The end of the metadata is `data` itself: only an unmoved packet
            // pointer bounds a meta pointer (found by the soundness fuzzer).
            let (pkt, pkt_on_left) = if pkt_vs_end(a, b) {
                (Some(a), true)
            } else if pkt_vs_end(b, a) {
                (Some(b), false)
            } else {
                (None, false)
            };
            if let Some(pkt) = pkt {
                let op_l = if pkt_on_left { op } else { flip(op) };
                let pkt_reg = if pkt_on_left { d.dst } else { d.src };
                // `is_pkt_ptr_branch_taken`: a pointer known to be at (-1)
                // or beyond (-2) the end decides the comparison.
                if pkt.ty == RegType::Packet {
                    let taken = match op_l {
                        BPF_JGT | BPF_JLE if pkt.range == -2 => Some(op_l == BPF_JGT),
                        BPF_JGE | BPF_JLT if pkt.range == -2 || pkt.range == -1 => {
                            Some(op_l == BPF_JGE)
                        }
                        _ => None,
                    };
                    if let Some(taken) = taken {
                        return Ok(Next::Go(if taken { tgt } else { next }));
                    }
                }
                // Which side learns `pkt <= end` (range = off)? The other side
                // knows the pointer is at (-1) or beyond (-2) the end.
                // `pkt < end` proves one byte more than `pkt <= end`.
                let (taken_learns, fall_learns, end_mark, extra) = match op_l {
                    BPF_JGT => (false, true, -2, 0),
                    BPF_JGE => (false, true, -1, 1),
                    BPF_JLT => (true, false, -1, 1),
                    BPF_JLE => (true, false, -2, 0),
                    _ => (false, false, 0, 0),
                };
                let mut other = st.clone();
                if taken_learns {
                    learn_pkt_range(&mut other, pkt, extra);
                    if pkt.ty == RegType::Packet {
                        st.reg_mut(pkt_reg).range = end_mark;
                    }
                }
                if fall_learns {
                    learn_pkt_range(st, pkt, extra);
                    if pkt.ty == RegType::Packet {
                        other.reg_mut(pkt_reg).range = end_mark;
                    }
                }
                self.push_branch(other, tgt, pc, *parent)?;
                return Ok(Next::Go(next));
            }
        }
        // Two pointers equal where only one may be NULL: on the equal side
        // neither is (the kernel skips kernel-object pointers).
        let mut other = st.clone();
        if is_x
            && !is32
            && matches!(op, BPF_JEQ | BPF_JNE)
            && a.ty.is_ptr()
            && b.ty.is_ptr()
            && a.maybe_null != b.maybe_null
            && a.ty != RegType::BtfId
            && b.ty != RegType::BtfId
        {
            let eq: &mut State = if op == BPF_JEQ { &mut other } else { st };
            let r = if b.maybe_null { d.src } else { d.dst };
            eq.reg_mut(r).maybe_null = false;
        }
        self.push_branch(other, tgt, pc, *parent)?;
        Ok(Next::Go(next))
    }
}

/// `mark_ptr_or_null_regs`: after a NULL check, every copy of the pointer.
pub(super) fn mark_null(st: &mut State, id: u32, is_null: bool, keep_id_maps: &[u32]) {
    if id == 0 {
        return;
    }
    let mut released = None;
    st.for_each_reg(|r| {
        if r.maybe_null && r.id == id {
            if is_null {
                // Only the acquired pointer itself being NULL drops the
                // reference (a cast of it shares the reference, not the id).
                if r.ref_obj_id != 0 && r.ref_obj_id == id {
                    released = Some(r.ref_obj_id);
                }
                *r = Reg::konst(0);
            } else {
                r.maybe_null = false;
                let lock = r.ty == RegType::MapValue && keep_id_maps.contains(&r.map);
                if r.ty != RegType::Packet && !lock {
                    r.id = 0;
                }
            }
        }
    });
    if let Some(rid) = released {
        st.refs.retain(|x| x.0 != rid);
    }
}

/// `find_good_pkt_pointers`: `pkt + off <= end` proves `[pkt, pkt + off)`.
fn learn_pkt_range(st: &mut State, pkt: &Reg, extra: i32) {
    if pkt.umax > MAX_PACKET_OFF || pkt.umax + pkt.off.max(0) as u64 > MAX_PACKET_OFF || pkt.off < 0
    {
        return;
    }
    let new_range = pkt.off + extra;
    let (ty, id) = (pkt.ty, pkt.id);
    st.for_each_reg(|r| {
        if r.ty == ty && r.id == id {
            r.range = r.range.max(new_range);
        }
    });
}
