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
        BPF_RSH => {
            // Shifting right never grows an unsigned value.
            r.umax = a.umax;
            r.var_off = Tnum::range(0, a.umax);
        }
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
                Reg::bounded(u32::MAX as u64)
            }
        }
        BPF_LSH | BPF_RSH if !(b.is_const() && b.var_off.value < 32) => {
            Reg::bounded(u32::MAX as u64)
        }
        // As the kernel, division leaves even the upper half unknown.
        BPF_DIV | BPF_MOD if !(a.is_const() && b.is_const()) => return Reg::unknown(),
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
            Shape::Neg => {
                if dst.ty.is_ptr() {
                    return self.err(unsafe_(format!("R{} pointer arithmetic prohibited", d.dst)));
                }
                let z = Reg::konst(0);
                let r = if is32 {
                    scalar_op32(BPF_SUB, &z, &dst)
                } else {
                    scalar_op64(BPF_SUB, &z, &dst)
                };
                *st.reg_mut(d.dst) = r;
            }
            Shape::End => {
                if dst.ty.is_ptr() {
                    return self.err(unsafe_(format!("R{} pointer arithmetic prohibited", d.dst)));
                }
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
                    r.id = 0;
                    r.sync_bounds();
                    r
                } else if to_le {
                    let mut r = dst.clone();
                    r.id = 0;
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
                let mut r = sign_extend_load(&src.clone_low(size), size);
                if is32 {
                    trunc32(&mut r);
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
                let r = self.alu_binary(st, d, op, is32, &dst, &src)?;
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
        if dptr && sptr {
            if op != BPF_SUB {
                return self.err(unsafe_(format!(
                    "R{} pointer {opname} pointer prohibited",
                    d.dst
                )));
            }
            if !self.privileged() {
                return self.err(unsafe_(format!("R{} pointer -= pointer prohibited", d.dst)));
            }
            return Ok(Reg::unknown());
        }
        // One pointer, one scalar.
        let (ptr, off, ptr_reg) = if dptr {
            (dst, src, d.dst)
        } else {
            (src, dst, d.src)
        };
        if !dptr && op != BPF_ADD {
            // scalar -= pointer
            if op == BPF_SUB && self.privileged() {
                return Ok(Reg::unknown());
            }
            return self.err(unsafe_(format!("R{} pointer arithmetic prohibited", d.dst)));
        }
        if matches!(op, BPF_AND | BPF_OR | BPF_XOR) {
            return self.err(unsafe_(format!(
                "R{} bitwise operator {opname} on pointer prohibited",
                d.dst
            )));
        }
        if op != BPF_ADD && op != BPF_SUB {
            return self.err(unsafe_(format!(
                "R{} pointer arithmetic with {opname} operator prohibited",
                d.dst
            )));
        }
        let tyname = ptr.ty.name(ptr.maybe_null);
        if ptr.maybe_null {
            return self.err(unsafe_(format!(
                "R{ptr_reg} pointer arithmetic on {tyname} prohibited, null-check it first"
            )));
        }
        if matches!(ptr.ty, RegType::MapPtr | RegType::PacketEnd | RegType::Func)
            || ptr.ty.is_sock()
        {
            return self.err(unsafe_(format!(
                "R{ptr_reg} pointer arithmetic on {tyname} prohibited"
            )));
        }
        if ptr.ty == RegType::Ctx && !off.is_const() {
            // Variable context offsets are refused at access time; keep going.
        }
        // check_reg_sane_offset
        if off.is_const() {
            let v = off.var_off.value as i64;
            if !(-MAX_VAR_OFF + 1..MAX_VAR_OFF).contains(&v) {
                return self.err(unsafe_(format!(
                    "math between {tyname} pointer and {v} is not allowed"
                )));
            }
        } else {
            if off.smin == i64::MIN {
                return self.err(unsafe_(format!(
                    "math between {tyname} pointer and register with unbounded min value is not allowed"
                )));
            }
            if off.smin >= MAX_VAR_OFF || off.smin <= -MAX_VAR_OFF {
                return self.err(unsafe_(format!(
                    "value {} makes {tyname} pointer be out of bounds",
                    off.smin
                )));
            }
            if ptr.ty == RegType::Stack && !self.privileged() {
                let var = crate::tnum::Tnum::add(ptr.var_off, off.var_off);
                return self.err(unsafe_(format!(
                    "R{} variable stack access prohibited for !root, var_off={} off={}",
                    d.dst,
                    var.text(),
                    ptr.off
                )));
            }
        }
        let mut r = ptr.clone();
        if off.is_const() {
            let v = off.var_off.value as i64;
            let new_off = if op == BPF_ADD {
                r.off as i64 + v
            } else {
                r.off as i64 - v
            };
            if new_off.abs() >= MAX_VAR_OFF {
                return self.err(unsafe_(format!(
                    "value {new_off} makes {tyname} pointer be out of bounds"
                )));
            }
            r.off = new_off as i32;
            return Ok(r);
        }
        // Variable part: combine, then a fresh id (and no range) for packets.
        let var = scalar_op64(op, &strip(ptr), off);
        r.var_off = var.var_off;
        r.smin = var.smin;
        r.smax = var.smax;
        r.umin = var.umin;
        r.umax = var.umax;
        r.s32_min = var.s32_min;
        r.s32_max = var.s32_max;
        r.u32_min = var.u32_min;
        r.u32_max = var.u32_max;
        if r.smin <= -MAX_VAR_OFF || r.smin >= MAX_VAR_OFF {
            return self.err(unsafe_(format!(
                "value {} makes {tyname} pointer be out of bounds",
                r.smin
            )));
        }
        if r.ty.is_pkt() {
            r.id = self.new_id();
            r.range = 0;
        }
        Ok(r)
    }
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
