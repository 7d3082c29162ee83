//! What depends on the program type inside do_check: context accesses
//! (`check_ctx_access`, `check_ptr_off_reg` for the context pointer), flow
//! keys, and the main program's return value (`check_return_code`).

use super::*;

/// `verbose_invalid_scalar`'s bounds: only the ones that say something.
pub(super) fn scalar_bounds_text(r: &Reg) -> String {
    let mut s = String::new();
    if r.smin > i64::MIN {
        s.push_str(&format!(" smin={}", r.smin));
    }
    if r.smax < i64::MAX {
        s.push_str(&format!(" smax={}", r.smax));
    }
    if s.is_empty() {
        s.push_str(" unknown scalar value");
    }
    s
}

impl Verifier<'_> {
    /// `__check_ptr_off_reg` for a context pointer: it must be used as it came,
    /// without a fixed or a variable offset.
    pub(super) fn check_ctx_ptr_off(&self, regno: u8, r: &Reg) -> Result<(), Fail> {
        if r.off < 0 {
            return self.err(unsafe_(format!(
                "negative offset ctx ptr R{regno} off={} disallowed",
                r.off
            )));
        }
        if r.off != 0 {
            return self.err(unsafe_(format!(
                "dereference of modified ctx ptr R{regno} off={} disallowed",
                r.off
            )));
        }
        if !r.is_const() || r.var_off.value != 0 {
            return self.err(unsafe_(format!(
                "variable ctx access var_off={} disallowed",
                r.var_off.text()
            )));
        }
        Ok(())
    }

    /// A load or store through the context pointer in R`regno`; returns what
    /// a load gives (`None`: a scalar of the access size).
    pub(super) fn check_ctx_mem(
        &mut self,
        regno: u8,
        reg: &Reg,
        off: i32,
        size: i32,
        write: bool,
        ldsx: bool,
    ) -> Result<Option<Reg>, Fail> {
        self.check_ctx_ptr_off(regno, reg)?;
        if let Some(c) = self.opts.btf_ctx.clone() {
            return self.check_btf_ctx(&c, off, size, write);
        }
        let a = CtxAccess {
            prog_type: self.opts.prog_type,
            attach: self.opts.expected_attach_type,
            off,
            size,
            write,
            ldsx,
            privileged: self.privileged(),
        };
        match ctx_access(&a) {
            None => self.err(unsafe_(format!(
                "invalid bpf_context access off={off} size={size}"
            ))),
            Some(CtxField::Ptr(t)) => Ok(Some(Reg::ptr(t))),
            Some(CtxField::PtrOrNull(t)) => {
                let mut r = Reg::ptr(t);
                r.maybe_null = true;
                r.id = self.new_id();
                Ok(Some(r))
            }
            Some(CtxField::Scalar) => Ok(None),
            Some(CtxField::TrustedBtf(_)) => {
                // Neither the kernel's types (btf_id 0) nor a known object:
                // loads through it are refused (the kernel walks its own
                // layout, member by member, which bpfvm does not have here),
                // and no kfunc or helper takes it.
                let mut r = Reg::ptr(RegType::BtfId);
                r.kf.flags |= crate::kfuncs::KFI_TRUSTED;
                Ok(Some(r))
            }
            Some(CtxField::Unmodelled(what)) => self.err(unsafe_(format!(
                "bpfvm does not model {what} (context offset {off}) yet"
            ))),
        }
    }

    /// `check_flow_keys_access`.
    pub(super) fn check_flow_keys(&self, reg: &Reg, off: i32, size: i32) -> Result<(), Fail> {
        let off = off as i64 + reg.off as i64;
        if size < 0 || off < 0 || off + size as i64 > FLOW_KEYS_SIZE as i64 {
            return self.err(unsafe_(format!(
                "invalid access to flow keys off={off} size={size}"
            )));
        }
        Ok(())
    }

    /// `check_return_code` at the main program's exit: R0 must be a scalar in
    /// the range the program type (and attach type) gives it.
    pub(super) fn check_return_code(&mut self, st: &mut State) -> Result<(), Fail> {
        // An LSM hook's range comes from the hook and holds for the 32-bit
        // return value (`return_32bit`).
        let lsm = self.opts.prog_type == bpfvm_isa::uapi::BPF_PROG_TYPE_LSM
            && self.opts.expected_attach_type == bpfvm_isa::uapi::BPF_LSM_MAC;
        let range = if lsm {
            self.opts.btf_ctx.as_ref().and_then(|c| c.ret_range)
        } else {
            retval_range(self.opts.prog_type, self.opts.expected_attach_type)
        };
        let Some((lo, hi)) = range else {
            return Ok(());
        };
        let r0 = st.reg(0).clone();
        if !r0.is_scalar() {
            return self.err(invalid(format!(
                "At program exit the register R0 is not a known value ({})",
                crate::kfuncs::reg_type_str(&r0)
            )));
        }
        self.mark_precise(st, 1);
        let outside = if lsm {
            r0.s32_min < lo || r0.s32_max > hi
        } else {
            r0.smin < lo as i64 || r0.smax > hi as i64
        };
        if outside {
            return self.err(invalid(format!(
                "At program exit the register R0 has{} should have been in [{lo}, {hi}]",
                scalar_bounds_text(&r0)
            )));
        }
        Ok(())
    }
}
