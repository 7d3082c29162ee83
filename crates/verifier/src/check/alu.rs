//! ALU instructions: scalar bound tracking (`adjust_scalar_min_max_vals`) and
//! pointer arithmetic (`adjust_ptr_min_max_vals`).

use super::*;

/// The 32-bit view of a scalar, as a zero-extended 64-bit scalar.
fn as32(r: &Reg) -> Reg {
    let mut x = r.clone();
    x.var_off = r.var_off.subreg();
    x.umin = r.u32_min as u64;
    x.umax = r.u32_max as u64;
    x.smin = x.umin as i64;
    x.smax = x.umax as i64;
    x.s32_min = r.s32_min;
    x.s32_max = r.s32_max;
    x.sync_bounds();
    x
}

/// Keep the low 32 bits of a 64-bit result.
/// `coerce_reg_to_size_sx`: `r` sign-extended from its low `size` bytes.
/// When the signed range's bits above `size` are one value and the
/// extended ends have one sign, the range survives; else the type's range.
pub(super) fn coerce_reg_to_size_sx(r: &mut Reg, size: i32) {
    let bits = (size * 8) as u32;
    let sx = |v: i64| -> i64 {
        let sh = 64 - bits;
        (v << sh) >> sh
    };
    if r.is_const() {
        let v = sx(r.var_off.value as i64) as u64;
        r.set_const(v);
        return;
    }
    let top = |v: i64| ((v as u64) >> bits) << bits;
    if top(r.smax) == top(r.smin) {
        let (a, b) = (sx(r.smax), sx(r.smin));
        let (lo, hi) = (a.min(b), a.max(b));
        if (lo >= 0) == (hi >= 0) {
            r.smin = lo;
            r.smax = hi;
            r.s32_min = lo as i32;
            r.s32_max = hi as i32;
            r.umin = lo as u64;
            r.umax = hi as u64;
            r.u32_min = lo as u32;
            r.u32_max = hi as u32;
            r.var_off = Tnum::range(lo as u64, hi as u64);
            return;
        }
    }
    let half = 1i64 << (bits - 1);
    r.smin = -half;
    r.smax = half - 1;
    r.s32_min = (-half).max(i32::MIN as i64) as i32;
    r.s32_max = (half - 1).min(i32::MAX as i64) as i32;
    r.umin = 0;
    r.umax = u64::MAX;
    r.u32_min = 0;
    r.u32_max = u32::MAX;
    r.var_off = Tnum::UNKNOWN;
}

/// `coerce_subreg_to_size_sx`: the same for the low 32 bits (`w = (s8)w`,
/// `w = (s16)w`); the caller zero-extends.
fn coerce_subreg_to_size_sx(r: &mut Reg, size: i32) {
    let bits = (size * 8) as u32;
    let sx = |v: i32| -> i32 {
        let sh = 32 - bits;
        (v << sh) >> sh
    };
    if r.is_const() {
        let v = sx(r.var_off.value as i32) as u32;
        r.var_off = Tnum::konst(v as u64);
        r.s32_min = v as i32;
        r.s32_max = v as i32;
        r.u32_min = v;
        r.u32_max = v;
        return;
    }
    let top = |v: i32| ((v as u32) >> bits) << bits;
    if top(r.s32_max) == top(r.s32_min) {
        let (a, b) = (sx(r.s32_max), sx(r.s32_min));
        let (lo, hi) = (a.min(b), a.max(b));
        if (lo >= 0) == (hi >= 0) {
            r.s32_min = lo;
            r.s32_max = hi;
            r.u32_min = lo as u32;
            r.u32_max = hi as u32;
            r.var_off = Tnum::range(lo as u32 as u64, hi as u32 as u64).subreg();
            return;
        }
    }
    let half = 1i32 << (bits - 1);
    r.s32_min = -half;
    r.s32_max = half - 1;
    r.u32_min = 0;
    r.u32_max = u32::MAX;
    r.var_off = Tnum::UNKNOWN.subreg();
}

fn trunc32(r: &mut Reg) {
    let (u32min, u32max) = if r.umin >> 32 == r.umax >> 32 {
        (r.umin as u32, r.umax as u32)
    } else {
        (0, u32::MAX)
    };
    let (s32min, s32max) = if r.smin >= i32::MIN as i64 && r.smax <= i32::MAX as i64 {
        (r.smin as i32, r.smax as i32)
    } else {
        (i32::MIN, i32::MAX)
    };
    let t = r.var_off.subreg();
    *r = Reg::unknown();
    r.var_off = t;
    r.u32_min = u32min;
    r.u32_max = u32max;
    r.s32_min = s32min;
    r.s32_max = s32max;
    r.umax = u32::MAX as u64;
    r.smin = 0;
    r.smax = u32::MAX as i64;
    r.sync_bounds();
    r.zext32();
}

/// `dst op= src` on scalars, 64-bit.
pub(crate) fn scalar_op64(op: u8, a: &Reg, b: &Reg) -> Reg {
    let mut r = Reg::unknown();
    if a.is_const() && b.is_const() {
        let (x, y) = (a.var_off.value, b.var_off.value);
        let v = match op {
            BPF_ADD => Some(x.wrapping_add(y)),
            BPF_SUB => Some(x.wrapping_sub(y)),
            BPF_MUL => Some(x.wrapping_mul(y)),
            // The kernel does not fold division: the result is unknown.
            BPF_DIV | BPF_MOD => None,
            BPF_OR => Some(x | y),
            BPF_AND => Some(x & y),
            BPF_XOR => Some(x ^ y),
            BPF_LSH if y < 64 => Some(x << y),
            BPF_RSH if y < 64 => Some(x >> y),
            BPF_ARSH if y < 64 => Some(((x as i64) >> y) as u64),
            _ => None,
        };
        if let Some(v) = v {
            return Reg::konst(v);
        }
    }
    match op {
        BPF_ADD => {
            r.var_off = a.var_off.add(b.var_off);
            if let (Some(lo), Some(hi)) = (a.umin.checked_add(b.umin), a.umax.checked_add(b.umax)) {
                r.umin = lo;
                r.umax = hi;
            }
            if let (Some(lo), Some(hi)) = (a.smin.checked_add(b.smin), a.smax.checked_add(b.smax)) {
                r.smin = lo;
                r.smax = hi;
            }
        }
        BPF_SUB => {
            r.var_off = a.var_off.sub(b.var_off);
            if a.umin >= b.umax {
                r.umin = a.umin - b.umax;
                r.umax = a.umax - b.umin;
            }
            if let (Some(lo), Some(hi)) = (a.smin.checked_sub(b.smax), a.smax.checked_sub(b.smin)) {
                r.smin = lo;
                r.smax = hi;
            }
        }
        BPF_MUL => {
            r.var_off = a.var_off.mul(b.var_off);
            if a.smin >= 0 && b.smin >= 0 {
                if let Some(hi) = a.umax.checked_mul(b.umax) {
                    r.umin = a.umin * b.umin;
                    r.umax = hi;
                }
            }
        }
        BPF_AND => {
            r.var_off = a.var_off.and(b.var_off);
            r.umin = r.var_off.min();
            r.umax = a.umax.min(b.umax);
        }
        BPF_OR => {
            r.var_off = a.var_off.or(b.var_off);
            r.umin = a.umin.max(b.umin);
            r.umax = r.var_off.max();
        }
        BPF_XOR => {
            r.var_off = a.var_off.xor(b.var_off);
        }
        BPF_LSH | BPF_RSH | BPF_ARSH if b.is_const() && b.var_off.value < 64 => {
            let s = b.var_off.value as u32;
            match op {
                BPF_LSH => {
                    r.var_off = a.var_off.lshift(s);
                    if a.umax.leading_zeros() >= s {
                        r.umin = a.umin << s;
                        r.umax = a.umax << s;
                    }
                    // `<<= 32` (the first half of a sign extension) moves
                    // the low half's signed range to the top.
                    if s == 32 {
                        r.smin = (a.s32_min as i64) << 32;
                        r.smax = (a.s32_max as i64) << 32;
                    }
                }
                BPF_RSH => {
                    r.var_off = a.var_off.rshift(s);
                    r.umin = a.umin >> s;
                    r.umax = a.umax >> s;
                }
                _ => {
                    r.var_off = a.var_off.arshift(s, 64);
                    r.smin = a.smin >> s;
                    r.smax = a.smax >> s;
                }
            }
        }
        // A shift by an unknown amount: the kernel computes no range
        // (`is_safe_to_compute_dst_reg_range`), and neither may we, or we
        // would prove branches the kernel walks.
        _ => {}
    }
    r.sync_bounds();
    if r.is_empty() {
        return Reg::unknown();
    }
    r
}

/// 32-bit ALU: operate on the zero-extended low halves, keep the low half.
fn scalar_op32(op: u8, a: &Reg, b: &Reg) -> Reg {
    let (x, y) = (as32(a), as32(b));
    let mut r = match op {
        BPF_ARSH => {
            if b.is_const() && b.var_off.value < 32 {
                let s = b.var_off.value as u32;
                let mut r = Reg::unknown();
                r.var_off = a.var_off.subreg().arshift(s, 32).subreg();
                r.s32_min = a.s32_min >> s;
                r.s32_max = a.s32_max >> s;
                r.umax = u32::MAX as u64;
                r.sync_bounds();
                r
            } else {
                // As the kernel: not even the upper half is known.
                return Reg::unknown();
            }
        }
        BPF_LSH | BPF_RSH if !(b.is_const() && b.var_off.value < 32) => return Reg::unknown(),
        // As the kernel, division leaves even the upper half unknown, of
        // constants too (it computes no range for BPF_DIV / BPF_MOD).
        BPF_DIV | BPF_MOD => return Reg::unknown(),
        _ => scalar_op64(op, &x, &y),
    };
    trunc32(&mut r);
    r
}

impl Verifier<'_> {
    pub(super) fn check_alu(&mut self, st: &mut State, d: &Decoded) -> Result<(), Fail> {
        let shape = d.op.shape();
        let is32 = d.op.class() == BPF_ALU;
        let op = d.op.code() & 0xf0;
        if shape == Shape::AluX || shape == Shape::MovSx {
            self.check_reg_read(st, d.src)?;
        }
        if !(op == BPF_MOV && shape != Shape::End) || shape == Shape::Neg {
            self.check_reg_read(st, d.dst)?;
        }
        if matches!(shape, Shape::Neg | Shape::End) && self.is_pointer_value(st.reg(d.dst)) {
            return self.err(unsafe_(format!("R{} pointer arithmetic prohibited", d.dst)));
        }
        self.check_reg_write(d.dst)?;
        if shape == Shape::AluK && matches!(op, BPF_DIV | BPF_MOD) && d.imm32() == 0 {
            return self.err(VerifierError::BadInsn {
                reason: "div by zero".into(),
            });
        }
        if shape == Shape::AluK && matches!(op, BPF_LSH | BPF_RSH | BPF_ARSH) {
            let bits = if is32 { 32 } else { 64 };
            if d.imm32() < 0 || d.imm32() >= bits {
                return self.err(VerifierError::BadInsn {
                    reason: format!("invalid shift {}", d.imm32()),
                });
            }
        }
        let dst = st.reg(d.dst).clone();
        match shape {
            // Privileged: NEG/END of a pointer is just an unknown number.
            Shape::Neg | Shape::End if dst.ty.is_ptr() => {
                *st.reg_mut(d.dst) = Reg::unknown();
            }
            Shape::Neg => {
                let z = Reg::konst(0);
                let r = if is32 {
                    scalar_op32(BPF_SUB, &z, &dst)
                } else {
                    scalar_op64(BPF_SUB, &z, &dst)
                };
                *st.reg_mut(d.dst) = r;
            }
            Shape::End => {
                let bits = d.imm32() as u32;
                let to_le = d.op.code() & 0x08 == 0 && d.op.class() == BPF_ALU;
                let r = if dst.is_const() {
                    let v = dst.var_off.value;
                    let out = match (to_le, bits) {
                        (true, 16) => v & 0xffff,
                        (true, 32) => v & 0xffff_ffff,
                        (true, _) => v,
                        (false, 16) => (v as u16).swap_bytes() as u64,
                        (false, 32) => (v as u32).swap_bytes() as u64,
                        (false, _) => v.swap_bytes(),
                    };
                    Reg::konst(out)
                } else if to_le && bits < 64 {
                    let mut r = dst.clone();
                    r.var_off = r.var_off.cast(bits / 8);
                    r.reset64();
                    r.reset32();
                    r.clear_scalar_id();
                    r.sync_bounds();
                    r
                } else if to_le {
                    let mut r = dst.clone();
                    r.clear_scalar_id();
                    r
                } else if bits < 64 {
                    Reg::bounded((1u64 << bits) - 1)
                } else {
                    Reg::unknown()
                };
                *st.reg_mut(d.dst) = r;
            }
            Shape::MovSx => {
                let src = st.reg(d.src).clone();
                if src.ty.is_ptr() {
                    if !self.privileged() {
                        return self.err(unsafe_(format!(
                            "R{} sign-extension part of pointer",
                            d.src
                        )));
                    }
                    *st.reg_mut(d.dst) = if is32 {
                        Reg::bounded(u32::MAX as u64)
                    } else {
                        Reg::unknown()
                    };
                    return Ok(());
                }
                let size = (d.off / 8) as i32;
                let mut r = src.clone();
                r.clear_scalar_id();
                r.precise = false;
                if is32 {
                    coerce_subreg_to_size_sx(&mut r, size);
                    r.zext32();
                } else {
                    coerce_reg_to_size_sx(&mut r, size);
                    r.sync_bounds();
                }
                *st.reg_mut(d.dst) = r;
            }
            _ => {
                let src = if shape == Shape::AluX {
                    st.reg(d.src).clone()
                } else {
                    Reg::konst(d.imm32() as i64 as u64)
                };
                if op == BPF_MOV {
                    // A copy of `rY + K` links to nothing: only one
                    // constant is remembered (`assign_scalar_id_before_mov`).
                    if shape == Shape::AluX && st.reg(d.src).id & ADD_CONST != 0 {
                        st.reg_mut(d.src).clear_scalar_id();
                    }
                    let src = if shape == Shape::AluX {
                        st.reg(d.src).clone()
                    } else {
                        src
                    };
                    let r = if is32 {
                        if src.ty.is_ptr() {
                            if self.is_pointer_value(&src) {
                                return self
                                    .err(unsafe_(format!("R{} partial copy of pointer", d.src)));
                            }
                            Reg::bounded(u32::MAX as u64)
                        } else if shape == Shape::AluK {
                            Reg::konst(d.imm32() as u32 as u64)
                        } else {
                            let mut r = src.clone();
                            trunc32(&mut r);
                            // A copy that kept every value keeps the link.
                            if src.umax <= u32::MAX as u64 && !src.is_const() {
                                if st.reg(d.src).id == 0 {
                                    let id = self.new_id();
                                    st.reg_mut(d.src).id = id;
                                }
                                r.id = st.reg(d.src).id;
                            }
                            r
                        }
                    } else {
                        let mut r = src.clone();
                        if shape == Shape::AluX && r.is_scalar() && !r.is_const() && r.id == 0 {
                            {
                                let id = self.new_id();
                                st.reg_mut(d.src).id = id;
                                r.id = id;
                            }
                        }
                        r
                    };
                    *st.reg_mut(d.dst) = r;
                    return Ok(());
                }
                if shape == Shape::AluX && dst.ty.is_ptr() != src.ty.is_ptr() {
                    // A scalar moving a pointer: its bounds decide accesses.
                    let scalar = if dst.ty.is_ptr() { d.src } else { d.dst };
                    self.mark_precise(st, 1 << scalar);
                } else if shape == Shape::AluX && dst.is_scalar() && src.is_scalar() && dst.precise
                {
                    // A precise result keeps its flag: what it now depends
                    // on must be precise too.
                    self.mark_precise(st, 1 << d.src);
                }
                let mut r = self.alu_binary(st, d, op, is32, &dst, &src)?;
                // `rX += K` on a linked scalar keeps the link, with K
                // (`adjust_reg_min_max_vals`); any other operation breaks it.
                if r.is_scalar() && dst.is_scalar() && src.is_scalar() {
                    r.clear_scalar_id();
                    if self.privileged()
                        && op == BPF_ADD
                        && !is32
                        && dst.id != 0
                        && src.is_const()
                        && !(shape == Shape::AluX && d.src == d.dst)
                        && dst.id & ADD_CONST == 0
                        && src.var_off.value <= i32::MAX as u64
                    {
                        r.id = dst.id | ADD_CONST;
                        r.off = src.var_off.value as i32;
                    }
                }
                *st.reg_mut(d.dst) = r;
            }
        }
        Ok(())
    }

    fn alu_binary(
        &mut self,
        _st: &mut State,
        d: &Decoded,
        op: u8,
        is32: bool,
        dst: &Reg,
        src: &Reg,
    ) -> Result<Reg, Fail> {
        let dptr = dst.ty.is_ptr();
        let sptr = src.ty.is_ptr();
        if !dptr && !sptr {
            // Unprivileged: a register ADD/SUB here is masked as a scalar
            // operation; the same insn may not later move a pointer.
            if matches!(op, BPF_ADD | BPF_SUB) && self.sanitizes(d) {
                self.update_alu_aux(BPF_ALU_NON_POINTER, 0)
                    .map_err(|r| self.sanitize_err(d, r, false))?;
            }
            let mut r = if is32 {
                scalar_op32(op, dst, src)
            } else {
                scalar_op64(op, dst, src)
            };
            r.id = 0;
            return Ok(r);
        }
        let opname = bpfvm_isa::OPS
            .iter()
            .find(|i| i.code == d.op.code())
            .map(|i| i.sym)
            .unwrap_or("?");
        if dptr && sptr {
            // Combining two pointers yields an arbitrary scalar: only the
            // difference is allowed, and only where pointers may leak.
            if op == BPF_SUB && self.privileged() {
                return Ok(Reg::unknown());
            }
            return self.err(unsafe_(format!(
                "R{} pointer {opname} pointer prohibited",
                d.dst
            )));
        }
        // One pointer, one scalar (`adjust_ptr_min_max_vals`).
        let (ptr, off, dst_is_off) = if dptr {
            (dst, src, false)
        } else {
            (src, dst, true)
        };
        let known = off.is_const();
        if (known && (off.smin != off.smax || off.umin != off.umax))
            || off.smin > off.smax
            || off.umin > off.umax
        {
            // Bounds that came from a dead branch taint the result.
            return Ok(Reg::unknown());
        }
        if is32 {
            if op == BPF_SUB && self.privileged() {
                // The kernel leaves the result fully unknown (a superset).
                return Ok(Reg::unknown());
            }
            return self.err(unsafe_(format!(
                "R{} 32-bit pointer arithmetic prohibited",
                d.dst
            )));
        }
        let tyname = ptr.ty.name(ptr.maybe_null);
        if ptr.maybe_null {
            return self.err(unsafe_(format!(
                "R{} pointer arithmetic on {tyname} prohibited, null-check it first",
                d.dst
            )));
        }
        // Adding a known 0 to a map pointer leaves it as it is (privileged).
        if ptr.ty == RegType::MapPtr && op == BPF_ADD && known && off.smin == 0 {
            if !self.privileged() {
                return self.err(unsafe_(format!(
                    "R{} has pointer with unsupported alu operation, pointer arithmetic with it prohibited for !root",
                    d.dst
                )));
            }
            return Ok(ptr.clone());
        }
        let type_ok = matches!(
            ptr.ty,
            RegType::Ctx
                | RegType::MapValue
                | RegType::MapKey
                | RegType::Stack
                | RegType::Packet
                | RegType::PacketMeta
                | RegType::RingbufMem
                | RegType::FlowKeys
                | RegType::BtfId
                | RegType::Mem
                | RegType::TpBuffer
                | RegType::ConstDynptr
        );
        if !type_ok {
            return self.err(unsafe_(format!(
                "R{} pointer arithmetic on {tyname} prohibited",
                d.dst
            )));
        }
        if ptr.ty == RegType::FlowKeys && !off.is_const() {
            return self.err(unsafe_(format!(
                "R{} pointer arithmetic on {tyname} prohibited",
                d.dst
            )));
        }
        self.sane_offset(off, &tyname)?;
        self.sane_offset(ptr, &tyname)?;
        let sanitize = matches!(op, BPF_ADD | BPF_SUB) && self.sanitizes(d);
        let mut info = (0u32, 0u32, false);
        if sanitize {
            info = self
                .sanitize_ptr_first(ptr, off, op, dst_is_off)
                .map_err(|r| self.sanitize_err(d, r, dst_is_off))?;
        }
        let mut r = ptr.clone();
        match op {
            BPF_ADD | BPF_SUB => {
                if op == BPF_SUB && dst_is_off {
                    return self.err(unsafe_(format!(
                        "R{} tried to subtract pointer from scalar",
                        d.dst
                    )));
                }
                if op == BPF_SUB && ptr.ty == RegType::Stack {
                    // JITs may not cope with a frame pointer moving down by
                    // a register, so the kernel refuses any subtraction.
                    return self.err(unsafe_(format!(
                        "R{} subtraction from stack pointer prohibited",
                        d.dst
                    )));
                }
                if known {
                    // Accumulate a constant into the fixed offset.
                    let v = off.smin;
                    r.off = if op == BPF_ADD {
                        (ptr.off as i64 + v) as i32
                    } else {
                        (ptr.off as i64 - v) as i32
                    };
                } else {
                    // A new variable offset: combine, then a fresh id (and
                    // no range) for packets.
                    let var = scalar_op64(op, &strip(ptr), off);
                    r.var_off = var.var_off;
                    r.smin = var.smin;
                    r.smax = var.smax;
                    r.umin = var.umin;
                    r.umax = var.umax;
                    r.reset32();
                    if r.ty.is_pkt() {
                        r.id = self.new_id();
                        if op == BPF_ADD || off.smin < 0 {
                            r.range = 0;
                        }
                    }
                }
            }
            BPF_AND | BPF_OR | BPF_XOR => {
                return self.err(unsafe_(format!(
                    "R{} bitwise operator {opname} on pointer prohibited",
                    d.dst
                )));
            }
            _ => {
                return self.err(unsafe_(format!(
                    "R{} pointer arithmetic with {opname} operator prohibited",
                    d.dst
                )));
            }
        }
        self.sane_offset(&r, &tyname)?;
        r.sync_bounds();
        if !self.privileged() {
            self.sanitize_check_bounds(d.dst, &r)?;
        }
        if sanitize {
            self.sanitize_ptr_commit(&r, info)
                .map_err(|e| self.sanitize_err(d, e, dst_is_off))?;
        }
        Ok(r)
    }

    /// `check_reg_sane_offset`: constants, fixed offsets and variable
    /// bounds far outside any object are refused outright (EINVAL).
    fn sane_offset(&self, reg: &Reg, tyname: &str) -> Result<(), Fail> {
        let val = reg.var_off.value as i64;
        if reg.is_const() && (val >= MAX_VAR_OFF || val <= -MAX_VAR_OFF) {
            return self.err(invalid(format!(
                "math between {tyname} pointer and {val} is not allowed"
            )));
        }
        if reg.off as i64 >= MAX_VAR_OFF || reg.off as i64 <= -MAX_VAR_OFF {
            return self.err(invalid(format!(
                "{tyname} pointer offset {} is not allowed",
                reg.off
            )));
        }
        if reg.smin == i64::MIN {
            return self.err(invalid(format!(
                "math between {tyname} pointer and register with unbounded min value is not allowed"
            )));
        }
        if reg.smin >= MAX_VAR_OFF || reg.smin <= -MAX_VAR_OFF {
            return self.err(invalid(format!(
                "value {} makes {tyname} pointer be out of bounds",
                reg.smin
            )));
        }
        Ok(())
    }

    /// Unprivileged loads mask register-operand ADD/SUB against Spectre v1
    /// (`can_skip_alu_sanitation`).
    fn sanitizes(&self, d: &Decoded) -> bool {
        !self.privileged() && d.op.shape() == Shape::AluX
    }

    /// `update_alu_sanitation_state`: one instruction has one masking
    /// state on every path that reaches it.
    fn update_alu_aux(&mut self, state: u32, limit: u32) -> Result<(), SanitizeReason> {
        let pc = self.cur_insn;
        let aux = &mut self.insn_aux[pc];
        if aux.alu_state != 0 && (aux.alu_state != state || aux.alu_limit != limit) {
            return Err(SanitizeReason::Paths);
        }
        aux.alu_state = state;
        aux.alu_limit = limit;
        Ok(())
    }

    /// `retrieve_ptr_limit`: how far the pointer may move towards either end
    /// of its object.
    fn ptr_limit(&mut self, ptr: &Reg, mask_to_left: bool) -> Result<u32, SanitizeReason> {
        let (max, limit) = match ptr.ty {
            RegType::Stack => (
                MAX_STACK as u32 + mask_to_left as u32,
                (ptr.var_off.value as i64)
                    .wrapping_add(ptr.off as i64)
                    .wrapping_neg() as u32,
            ),
            RegType::MapValue => {
                let vs = self.map(ptr.map).map_or(0, |m| m.value_size);
                let base = if mask_to_left {
                    ptr.smin
                } else {
                    ptr.umax as i64
                };
                (vs, base.wrapping_add(ptr.off as i64) as u32)
            }
            _ => return Err(SanitizeReason::Type),
        };
        if limit >= max {
            return Err(SanitizeReason::Limit);
        }
        Ok(limit)
    }

    /// `sanitize_ptr_alu` before the operation: (state, limit, mask_to_left).
    fn sanitize_ptr_first(
        &mut self,
        ptr: &Reg,
        off: &Reg,
        op: u8,
        dst_is_off: bool,
    ) -> Result<(u32, u32, bool), SanitizeReason> {
        let off_is_imm = off.is_const();
        let off_is_neg = off.smin < 0;
        if !off_is_imm && (off.smin < 0) != (off.smax < 0) {
            return Err(SanitizeReason::Bounds);
        }
        let mask_to_left = (op == BPF_ADD && off_is_neg) || (op == BPF_SUB && !off_is_neg);
        let limit = self.ptr_limit(ptr, mask_to_left)?;
        let mut state = if off_is_neg { BPF_ALU_NEG_VALUE } else { 0 };
        if off_is_imm {
            state |= BPF_ALU_IMMEDIATE;
        }
        // The masked register is the scalar operand.
        state |= if dst_is_off {
            BPF_ALU_SANITIZE_DST
        } else {
            BPF_ALU_SANITIZE_SRC
        };
        if !off_is_imm {
            // Pruning must compare scalars exactly from now on, or a path
            // with another masking limit could be cut short.
            self.explore_alu_limits = true;
        }
        Ok((state, limit, mask_to_left))
    }

    /// `sanitize_ptr_alu` after the operation: record the masking window.
    fn sanitize_ptr_commit(
        &mut self,
        result: &Reg,
        (state, limit, mask_to_left): (u32, u32, bool),
    ) -> Result<(), SanitizeReason> {
        let after = self.ptr_limit(result, mask_to_left)?;
        let window = (limit.wrapping_sub(after) as i32).unsigned_abs();
        self.update_alu_aux(state, window)
    }

    /// `sanitize_err`: the kernel's wording per reason.
    fn sanitize_err(&self, d: &Decoded, reason: SanitizeReason, dst_is_off: bool) -> Fail {
        const ERR: &str = "pointer arithmetic with it prohibited for !root";
        let op = if d.op.code() & 0xf0 == BPF_ADD {
            "add"
        } else {
            "sub"
        };
        let (off_reg, ptr_reg) = if dst_is_off {
            (d.dst, d.src)
        } else {
            (d.src, d.dst)
        };
        let msg = match reason {
            SanitizeReason::Bounds => {
                format!("R{off_reg} has unknown scalar with mixed signed bounds, {ERR}")
            }
            SanitizeReason::Type => {
                format!("R{ptr_reg} has pointer with unsupported alu operation, {ERR}")
            }
            SanitizeReason::Paths => format!(
                "R{} tried to {op} from different maps, paths or scalars, {ERR}",
                d.dst
            ),
            SanitizeReason::Limit => {
                format!("R{} tried to {op} beyond pointer bounds, {ERR}", d.dst)
            }
        };
        (unsafe_(msg), Some(self.cur_insn))
    }

    /// `sanitize_check_bounds`: unprivileged pointer arithmetic must stay
    /// inside the object so that later accesses can be masked.
    fn sanitize_check_bounds(&mut self, dst: u8, r: &Reg) -> Result<(), Fail> {
        match r.ty {
            RegType::Stack => {
                let off = r.off as i64 + r.var_off.value as i64;
                if !r.is_const() {
                    return self.err(unsafe_(format!(
                        "R{dst} variable stack access prohibited for !root, var_off={} off={off}",
                        r.var_off.text()
                    )));
                }
                if !(-MAX_STACK..0).contains(&off) {
                    return self.err(unsafe_(format!(
                        "R{dst} stack pointer arithmetic goes out of range, prohibited for !root; off={off}"
                    )));
                }
            }
            RegType::MapValue => {
                let vs = self.map(r.map).map_or(0, |m| m.value_size);
                if let Err((e, _)) =
                    self.check_region(dst, r, r.off as i64, 1, vs as i64, "map value")
                {
                    if self.logging() {
                        self.log.push_str(e.reason());
                        self.log.push('\n');
                    }
                    return self.err(unsafe_(format!(
                        "R{dst} pointer arithmetic of map value goes out of range, prohibited for !root"
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

// `enum bpf_alu_state` bits: how an instruction's scalar operand is masked.
const BPF_ALU_SANITIZE_SRC: u32 = 1 << 0;
const BPF_ALU_SANITIZE_DST: u32 = 1 << 1;
const BPF_ALU_NEG_VALUE: u32 = 1 << 2;
const BPF_ALU_NON_POINTER: u32 = 1 << 3;
const BPF_ALU_IMMEDIATE: u32 = 1 << 4;

/// Why unprivileged pointer arithmetic cannot be masked.
#[derive(Clone, Copy, Debug)]
pub(super) enum SanitizeReason {
    Bounds,
    Type,
    Paths,
    Limit,
}

/// What the kernel's `bpf_insn_aux_data` remembers about one instruction
/// across every path: its masking state and the pointer type it accessed.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct InsnAux {
    pub alu_state: u32,
    pub alu_limit: u32,
    pub ptr_type: Option<RegType>,
}

/// The variable part of a pointer as a scalar.
fn strip(p: &Reg) -> Reg {
    let mut s = p.clone();
    s.ty = RegType::Scalar;
    s.off = 0;
    s.id = 0;
    s
}

impl Reg {
    /// The low `size` bytes of a scalar (zero-extended).
    pub(crate) fn clone_low(&self, size: i32) -> Reg {
        if size >= 8 {
            return self.clone();
        }
        if self.is_const() {
            return Reg::konst(self.var_off.value & ((1u64 << (size * 8)) - 1));
        }
        let mut r = Reg::unknown();
        r.var_off = self.var_off.cast(size as u32);
        let max = (1u64 << (size * 8)) - 1;
        if self.umax <= max {
            r.umin = self.umin;
            r.umax = self.umax;
        } else {
            r.umax = max;
        }
        r.sync_bounds();
        r
    }
}
