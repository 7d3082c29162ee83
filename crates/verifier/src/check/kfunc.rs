//! Kfunc calls (`BPF_PSEUDO_KFUNC_CALL`, `check_kfunc_call`): arguments
//! against the kfunc's row in [`crate::kfuncs`], acquired and released
//! references, open-coded iterators on the stack (`bpf_iter_*_new/next/
//! destroy`, with the kernel's convergence rule at `next`), dynptrs over
//! packets, and loads through the kernel-object pointers kfuncs return.

use super::*;
use crate::kfuncs::{
    self, Iter, KArg, KRet, KfInfo, Kfunc, Obj, KFI_DRAINED, KFI_RCU, KFI_RDONLY, KFI_TRUSTED,
    KFI_UNTRUSTED, KF_ACQUIRE, KF_ITER_DESTROY, KF_ITER_NEW, KF_ITER_NEXT, KF_RCU, KF_RELEASE,
    KF_RET_NULL, KF_SLEEPABLE, KF_TRUSTED_ARGS,
};

/// Stack slot holding (part of) an open-coded iterator.
pub(super) const STACK_ITER: u8 = 5;
/// Stack slot holding (part of) a dynptr.
pub(super) const STACK_DYNPTR: u8 = 6;

pub(super) use bpfvm_isa::uapi::{BPF_F_SLEEPABLE, BPF_F_XDP_DEV_BOUND_ONLY};

#[derive(Default)]
struct KMeta {
    /// The reference the call releases.
    release: Option<u32>,
    /// The iterator argument's frame and first slot.
    iter: Option<(usize, usize)>,
    /// The constant size of a `__szk` argument.
    const_size: Option<u64>,
    /// The initialised dynptr argument.
    dynptr: Option<super::dynptr::DynInfo>,
}

impl Verifier<'_> {
    /// The kfunc a call instruction names, if it is one bpfvm knows.
    fn kfunc_at(&self, pc: usize) -> Option<&'static Kfunc> {
        let d = self.cfg().dec.get(pc).copied().flatten()?;
        if d.op != Op::CallKfunc {
            return None;
        }
        kfuncs::by_btf_id(d.imm32())
    }

    /// A call of an iterator's `next` (a convergence point).
    pub(super) fn is_iter_next(&self, pc: usize) -> bool {
        self.kfunc_at(pc)
            .is_some_and(|k| k.flags & KF_ITER_NEXT != 0)
    }

    /// At an iterator's `next` with the iterator still active, the kernel
    /// prunes a path whose state lies within one seen here before (even one
    /// still being explored): the loop has converged.
    pub(super) fn iter_next_converged(&self, st: &State, pc: usize, live: &[u16]) -> Option<usize> {
        let (fi, spi) = self.iter_slot_of(st, 1)?;
        let slot = st.frames[fi].stack.get(spi)?;
        if slot.ty[0] != STACK_ITER || slot.spill.kf.flags & KFI_DRAINED != 0 {
            return None;
        }
        self.all_states.get(&pc)?.iter().rev().copied().find(|&ci| {
            self.checkpoints[ci]
                .state
                .as_ref()
                .is_some_and(|old| subsumes(old, st, live, false, self.explore_alu_limits))
        })
    }

    /// The frame and slot index a stack pointer argument names, when its
    /// offset is constant and slot-aligned.
    fn iter_slot_of(&self, st: &State, regno: u8) -> Option<(usize, usize)> {
        let r = st.reg(regno);
        if r.ty != RegType::Stack || !r.is_const() {
            return None;
        }
        let addr = r.off as i64 + r.var_off.value as i64;
        if !(-MAX_STACK..0).contains(&addr) || addr % 8 != 0 {
            return None;
        }
        Some((Self::stack_frame_of(st, r), ((-addr - 1) / 8) as usize))
    }

    /// RCU read-side sections, per path: `bpf_rcu_read_lock` opens one,
    /// `bpf_rcu_read_unlock` closes it; they do not nest, an unlock needs a
    /// lock on the same path, and nothing inside one may sleep.
    fn rcu_section(&mut self, st: &mut State, k: &Kfunc) -> Result<(), Fail> {
        let (lock, unlock) = (
            k.name == "bpf_rcu_read_lock",
            k.name == "bpf_rcu_read_unlock",
        );
        if st.active_rcu_lock {
            if lock {
                return self.err(invalid(format!(
                    "nested rcu read lock (kernel function {})",
                    k.name
                )));
            }
            if unlock {
                // RCU-protected pointers are only good inside the section.
                st.for_each_reg(|r| {
                    if r.kf.flags & KFI_RCU != 0 {
                        r.kf.flags = (r.kf.flags & !KFI_RCU) | KFI_UNTRUSTED;
                        r.maybe_null = false;
                    }
                });
                st.active_rcu_lock = false;
            } else if k.flags & KF_SLEEPABLE != 0 {
                return self.err(invalid(format!(
                    "kernel func {} is sleepable within rcu_read_lock region",
                    k.name
                )));
            }
        } else if lock {
            st.active_rcu_lock = true;
        } else if unlock {
            return self.err(invalid(format!(
                "unmatched rcu read unlock (kernel function {})",
                k.name
            )));
        }
        Ok(())
    }

    /// Sections without preemption, per path: `bpf_preempt_disable` and
    /// `bpf_preempt_enable` nest and must match; nothing inside may sleep.
    fn preempt_section(&mut self, st: &mut State, k: &Kfunc) -> Result<(), Fail> {
        let (disable, enable) = (
            k.name == "bpf_preempt_disable",
            k.name == "bpf_preempt_enable",
        );
        if disable {
            st.active_preempt_lock += 1;
        } else if enable {
            if st.active_preempt_lock == 0 {
                return self.err(invalid(format!(
                    "unmatched attempt to enable preemption (kernel function {})",
                    k.name
                )));
            }
            st.active_preempt_lock -= 1;
        } else if st.active_preempt_lock > 0 && k.flags & KF_SLEEPABLE != 0 {
            return self.err(unsafe_(format!(
                "kernel func {} is sleepable within non-preemptible region",
                k.name
            )));
        }
        Ok(())
    }

    /// Subprogram `sp` may sleep: it, or a subprogram it calls, calls a
    /// sleeping helper or kfunc (the kernel refuses calling such a global
    /// function inside an RCU read-side section).
    pub(super) fn subprog_might_sleep(&self, sp: usize) -> bool {
        let sleepable = self.opts.prog_flags & BPF_F_SLEEPABLE != 0;
        self.subprog_calls_any(sp, |d| match d.op {
            Op::CallKfunc => {
                kfuncs::by_btf_id(d.imm32()).is_some_and(|k| k.flags & KF_SLEEPABLE != 0)
            }
            _ => crate::maphelpers::might_sleep(d.imm32(), self.opts.prog_type, sleepable),
        })
    }

    pub(super) fn check_kfunc_call(
        &mut self,
        st: &mut State,
        pc: usize,
        d: &Decoded,
        parent: &mut Option<usize>,
    ) -> Result<Next, Fail> {
        if !self.privileged() {
            return self.err(call_err(
                "calling kernel functions are not allowed in unprivileged programs",
            ));
        }
        let id = d.imm32();
        if d.off != 0 {
            return self.err(invalid(format!(
                "kfunc btf_id {id} in module BTF fd index {} is not supported",
                d.off
            )));
        }
        let Some(k) = kfuncs::by_btf_id(id) else {
            return self.err(invalid(format!("kernel btf_id {id} is not a function")));
        };
        if !k.progs.allows(self.opts.prog_type) {
            // fetch_kfunc_meta's -EACCES.
            return self.err(unsafe_(format!(
                "calling kernel function {} is not allowed",
                k.name
            )));
        }
        // The XDP metadata kfuncs read a device's descriptors: only a
        // program bound to a device may call them (bpfvm's have none).
        if k.name.starts_with("bpf_xdp_metadata_")
            && self.opts.prog_flags & BPF_F_XDP_DEV_BOUND_ONLY == 0
        {
            return self.err(invalid("metadata kfuncs require device-bound program"));
        }
        if k.flags & KF_SLEEPABLE != 0 && self.opts.prog_flags & BPF_F_SLEEPABLE == 0 {
            return self.err(call_err(format!(
                "program must be sleepable to call sleepable kfunc {}",
                k.name
            )));
        }
        let mut meta = KMeta::default();
        for (i, arg) in k.args.iter().enumerate() {
            let regno = (i + 1) as u8;
            self.check_kfunc_arg(st, pc, k, i, regno, *arg, &mut meta)?;
        }
        if k.flags & KF_RELEASE != 0 && meta.release.is_none() {
            return self.err(call_err(format!(
                "release kernel function {} expects refcounted PTR_TO_BTF_ID",
                k.name
            )));
        }
        self.rcu_section(st, k)?;
        self.preempt_section(st, k)?;
        if let Some(rid) = meta.release {
            self.release_ref(st, rid);
        }
        for r in 1..=5u8 {
            *st.reg_mut(r) = Reg::not_init();
            self.scratch_reg(r);
        }
        self.scratch_reg(0);
        let mut r0 = match k.kret {
            KRet::Void => Reg::not_init(),
            KRet::Scalar => Reg::unknown(),
            KRet::Obj(o) => {
                let mut r = Reg::ptr(RegType::BtfId);
                r.kf = KfInfo::object(
                    o,
                    if k.flags & KF_ACQUIRE != 0 {
                        0
                    } else {
                        KFI_TRUSTED
                    },
                );
                r
            }
            KRet::Mem { size } => {
                let mut r = Reg::ptr(RegType::Mem);
                r.mem_size = size;
                r
            }
            KRet::KernCtx => {
                let obj = match self.opts.prog_type {
                    BPF_PROG_TYPE_XDP => Obj::XdpBuff,
                    _ => Obj::SkBuff,
                };
                let mut r = Reg::ptr(RegType::BtfId);
                r.kf = KfInfo::object(obj, KFI_TRUSTED);
                r
            }
            KRet::Untrusted => {
                let mut r = Reg::ptr(RegType::BtfId);
                r.kf.flags = KFI_UNTRUSTED;
                r
            }
            KRet::Slice { writable } => {
                if writable && !crate::prog::may_access_pkt(self.opts.prog_type, true, None) {
                    return self.err(invalid("the prog does not allow writes to packet data"));
                }
                let d = meta.dynptr.unwrap_or_default();
                let mut r = Reg::ptr(RegType::Mem);
                r.mem_size = meta.const_size.unwrap_or(0) as u32;
                // A slice of the packet goes when the packet may change.
                if matches!(
                    d.kind,
                    bpfvm_isa::helpers::BPF_DYNPTR_TYPE_SKB
                        | bpfvm_isa::helpers::BPF_DYNPTR_TYPE_XDP
                ) {
                    r.kf.flags = crate::kfuncs::KFI_PKT_SLICE;
                }
                if !writable {
                    r.kf.flags |= KFI_RDONLY;
                }
                r.dynptr_id = d.id;
                // A ring buffer slice dies with its record (Linux 6.18 ties
                // it to the record's reference; 6.12 did not, letting it
                // outlive the record).
                r.ref_obj_id = d.ref_obj_id;
                r
            }
        };
        if k.flags & KF_ITER_NEXT != 0 {
            return self.iter_next(st, pc, meta, r0, parent);
        }
        if k.flags & KF_RET_NULL != 0 && r0.ty.is_ptr() {
            r0.maybe_null = true;
            r0.id = self.new_id();
        }
        if k.flags & KF_ACQUIRE != 0 {
            // The kernel spends one id on the reference; a nullable result
            // shares it.
            let id = self.new_id();
            if r0.maybe_null {
                r0.id = id;
            }
            r0.ref_obj_id = id;
            st.refs.push((id, pc));
        }
        *st.reg_mut(0) = r0;
        Ok(Next::Go(pc + 1))
    }

    /// `release_reference`: the reference goes, and every register holding
    /// it is invalidated (unknown for a privileged loader, as the kernel
    /// lets it keep the scalar; unreadable otherwise).
    pub(super) fn release_ref(&self, st: &mut State, rid: u32) {
        st.refs.retain(|r| r.0 != rid);
        let privileged = self.privileged();
        st.for_each_reg(|r| {
            if r.ref_obj_id == rid {
                *r = if privileged {
                    Reg::unknown()
                } else {
                    Reg::not_init()
                };
            }
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn check_kfunc_arg(
        &mut self,
        st: &mut State,
        pc: usize,
        k: &Kfunc,
        i: usize,
        regno: u8,
        arg: KArg,
        meta: &mut KMeta,
    ) -> Result<(), Fail> {
        self.check_reg_read(st, regno)?;
        let r = st.reg(regno).clone();
        match arg {
            KArg::Ignored => {}
            KArg::Scalar | KArg::Const => {
                if !r.is_scalar() {
                    return self.err(call_err(format!("R{regno} is not a scalar")));
                }
                if arg == KArg::Const {
                    if !r.is_const() {
                        return self.err(call_err(format!("R{regno} must be a known constant")));
                    }
                    self.mark_precise(st, 1 << regno);
                }
            }
            KArg::MemSizeConst => {
                if !r.is_scalar() {
                    return self.err(call_err(format!("R{regno} must be a known constant")));
                }
                // The buffer before it, unless NULL, must hold as many bytes
                // as the size may be, read and written
                // (check_kfunc_mem_size_reg), before the size must be known.
                let prev = regno - 1;
                if !st.reg(prev).is_null_const() {
                    let pair = |e: (VerifierError, Option<usize>), v: &mut Self| {
                        if v.logging() {
                            v.log.push_str(&format!("{}\n", e.0));
                        }
                        (
                            call_err(format!(
                                "arg#{} arg#{i} memory, len pair leads to invalid memory access",
                                i - 1
                            )),
                            e.1,
                        )
                    };
                    let bad = if r.smin < 0 {
                        Some(format!(
                            "R{regno} min value is negative, either use unsigned or 'var &= const'"
                        ))
                    } else if r.umax >= 1 << 29 {
                        Some(format!("R{regno} unbounded memory access, use 'var &= const' or 'if (var < const)'"))
                    } else {
                        None
                    };
                    if let Some(b) = bad {
                        return Err(pair((call_err(b), Some(self.cur_insn)), self));
                    }
                    if r.umax > 0 {
                        if let Err(e) = self.check_helper_mem(st, prev, r.umax as i64, false) {
                            return Err(pair(e, self));
                        }
                        if let Err(e) = self.check_helper_mem(st, prev, r.umax as i64, true) {
                            return Err(pair(e, self));
                        }
                    }
                }
                if !r.is_const() {
                    return self.err(call_err(format!("R{regno} must be a known constant")));
                }
                self.mark_precise(st, 1 << regno);
                meta.const_size = Some(r.var_off.value);
            }
            KArg::Mem { nullable } => {
                if nullable && r.is_null_const() {
                    return Ok(());
                }
                if !matches!(
                    r.ty,
                    RegType::Stack
                        | RegType::Packet
                        | RegType::PacketMeta
                        | RegType::MapValue
                        | RegType::RingbufMem
                        | RegType::Mem
                ) || r.maybe_null
                {
                    return self.type_err(regno, &r, "fp");
                }
            }
            KArg::OutMem { size } => {
                if !matches!(
                    r.ty,
                    RegType::Stack
                        | RegType::Packet
                        | RegType::PacketMeta
                        | RegType::MapValue
                        | RegType::RingbufMem
                        | RegType::Mem
                ) || r.maybe_null
                {
                    return self.err(call_err(format!(
                        "arg#{i} pointer type {} must point to scalar, or struct with scalar",
                        r.ty.name(r.maybe_null)
                    )));
                }
                self.check_helper_mem(st, regno, size as i64, false)?;
                self.check_helper_mem(st, regno, size as i64, true)?;
            }
            KArg::Ctx => {
                if r.ty != RegType::Ctx {
                    return self.err(call_err(format!(
                        "arg#{i} expected pointer to ctx, but got {}",
                        r.ty.name(r.maybe_null)
                    )));
                }
                if r.off != 0 || !r.is_const() || r.var_off.value != 0 {
                    return self.err(call_err(format!(
                        "dereference of modified ctx ptr R{regno} off={} disallowed",
                        r.off
                    )));
                }
            }
            KArg::Obj(want) => {
                let trusted_args = k.flags & (KF_TRUSTED_ARGS | KF_RELEASE | KF_RCU) != 0;
                if r.is_null_const() || r.maybe_null {
                    if trusted_args {
                        return self.err(call_err(format!(
                            "Possibly NULL pointer passed to trusted arg{i}"
                        )));
                    }
                    return self.err(call_err(format!(
                        "arg#{i} pointer type STRUCT {} must point to scalar, or struct with scalar",
                        want.name()
                    )));
                }
                if r.ty != RegType::BtfId {
                    return self.err(call_err(format!(
                        "arg#{i} is {} expected ptr_ or socket",
                        r.ty.name(false)
                    )));
                }
                // check_kfunc_args asks how far the pointer is trusted before
                // it looks at its type.
                let trusted = kfuncs::is_trusted(&r);
                if trusted_args && !trusted {
                    if k.flags & KF_RCU == 0 {
                        return self
                            .err(call_err(format!("R{regno} must be referenced or trusted")));
                    }
                    if r.kf.flags & KFI_RCU == 0 {
                        return self.err(call_err(format!("R{regno} must be a rcu pointer")));
                    }
                }
                if r.kf.flags & KFI_UNTRUSTED != 0 {
                    return self.err(call_err(format!(
                        "arg#{i} is {} expected ptr_ or socket",
                        crate::kfuncs::reg_type_str(&r)
                    )));
                }
                let have = Obj::from_u8(r.kf.obj);
                // `struct bpf_cpumask` starts with a `struct cpumask`.
                let same =
                    have == Some(want) || (want == Obj::Cpumask && have == Some(Obj::BpfCpumask));
                if !same {
                    return self.err(call_err(format!(
                        "kernel function {} args#{i} expected pointer to STRUCT {} but R{regno} has a pointer to STRUCT {}",
                        k.name,
                        want.name(),
                        have.map_or("?", |o| o.name())
                    )));
                }
                if k.flags & KF_RELEASE != 0 && r.ref_obj_id != 0 {
                    if r.off != 0 || !r.is_const() || r.var_off.value != 0 {
                        return self.err(VerifierError::Reference {
                            reason: format!("R{regno} must have zero offset when passed to release func or trusted arg to kfunc"),
                        });
                    }
                    meta.release = Some(r.ref_obj_id);
                }
            }
            KArg::Iter(kind) => self.check_iter_arg(st, pc, k, i, regno, kind, meta)?,
            KArg::Dynptr { uninit } => {
                use super::dynptr::DynArg;
                use bpfvm_isa::helpers::{BPF_DYNPTR_TYPE_SKB, BPF_DYNPTR_TYPE_XDP};
                if uninit {
                    // The type of dynptr the kfunc makes: a clone's is its
                    // parent's, with the parent's reference.
                    let (kind, clone_ref) =
                        match k.name {
                            "bpf_dynptr_from_skb" => (BPF_DYNPTR_TYPE_SKB, 0),
                            "bpf_dynptr_from_xdp" => (BPF_DYNPTR_TYPE_XDP, 0),
                            _ => match meta.dynptr {
                                Some(d) => (d.kind, d.ref_obj_id),
                                None => return self.err(invalid(
                                    "verifier internal error: no dynptr type for parent of clone",
                                )),
                            },
                        };
                    self.process_dynptr(st, pc, regno, DynArg::Uninit { kind, clone_ref })?;
                } else {
                    meta.dynptr = self.process_dynptr(st, pc, regno, DynArg::Init { kind: 0 })?;
                }
            }
        }
        Ok(())
    }

    /// An iterator argument: `new` wants uninitialised stack, `next` and
    /// `destroy` an iterator of this kind.
    #[allow(clippy::too_many_arguments)]
    fn check_iter_arg(
        &mut self,
        st: &mut State,
        pc: usize,
        k: &Kfunc,
        i: usize,
        regno: u8,
        kind: Iter,
        meta: &mut KMeta,
    ) -> Result<(), Fail> {
        let r = st.reg(regno).clone();
        if r.ty != RegType::Stack {
            return self.err(call_err(format!(
                "arg#{i} expected pointer to an iterator on stack"
            )));
        }
        let nr = (kind.size() / 8) as usize;
        let Some((fi, spi)) = self.iter_slot_of(st, regno).filter(|&(_, s)| s + 1 >= nr) else {
            return self.err(call_err(format!(
                "arg#{i} expected pointer to an iterator on stack"
            )));
        };
        let slots: Vec<usize> = (0..nr).map(|j| spi - j).collect();
        if k.flags & KF_ITER_NEW != 0 {
            let f = &st.frames[fi];
            let busy = slots.iter().any(|&s| {
                f.stack
                    .get(s)
                    .is_some_and(|x| x.ty.contains(&STACK_ITER) || x.ty.contains(&STACK_DYNPTR))
            });
            if busy {
                return self.err(call_err(format!(
                    "expected uninitialized iter_{} as arg #{i}",
                    kind.name()
                )));
            }
            let lowest = -((spi as i64 + 1) * 8);
            self.record_depth(st, fi, lowest);
            let id = self.new_id();
            for (j, &s) in slots.iter().enumerate() {
                let slot = st.frames[fi].slot_mut(s);
                slot.ty = [STACK_ITER; 8];
                let mut sp = Reg::ptr(RegType::Stack);
                sp.kf = KfInfo::iter(kind);
                if j == 0 {
                    sp.ref_obj_id = id;
                }
                slot.spill = sp;
                if s < 64 {
                    self.scratched_stack |= 1 << s;
                }
            }
            st.refs.push((id, pc));
            return Ok(());
        }
        let f = &st.frames[fi];
        let valid = slots.iter().enumerate().all(|(j, &s)| {
            f.stack.get(s).is_some_and(|x| {
                x.ty == [STACK_ITER; 8]
                    && x.spill.kf.iter_kind() == Some(kind)
                    && (j != 0 || x.spill.ref_obj_id != 0)
            })
        });
        if !valid {
            return self.err(call_err(format!(
                "expected an initialized iter_{} as arg #{i}",
                kind.name()
            )));
        }
        if k.flags & KF_ITER_DESTROY != 0 {
            let rid = f.stack[spi].spill.ref_obj_id;
            for &s in &slots {
                let slot = st.frames[fi].slot_mut(s);
                slot.ty = [STACK_INVALID; 8];
                slot.spill = Reg::not_init();
                if s < 64 {
                    self.scratched_stack |= 1 << s;
                }
            }
            st.refs.retain(|r| r.0 != rid);
        } else {
            meta.iter = Some((fi, spi));
        }
        Ok(())
    }

    /// `process_iter_next_call`: an active iterator forks. This path sees it
    /// drained (R0 = NULL); the queued one sees an element (R0 not NULL,
    /// depth + 1), with the scalars that changed since the previous
    /// iteration and never mattered widened to unknown, so that the loop
    /// reaches a state it has seen and converges.
    fn iter_next(
        &mut self,
        st: &mut State,
        pc: usize,
        meta: KMeta,
        elem: Reg,
        parent: &mut Option<usize>,
    ) -> Result<Next, Fail> {
        let Some((fi, spi)) = meta.iter else {
            return self.err(call_err("iterator next without an iterator"));
        };
        let active = st.frames[fi].stack[spi].spill.kf.flags & KFI_DRAINED == 0;
        if active {
            let mut queued = st.clone();
            if let Some(s) = queued.frames[fi].stack.get_mut(spi) {
                s.spill.kf.depth = s.spill.kf.depth.saturating_add(1);
            }
            // The previous arrival here on this path (not this arrival's own
            // checkpoint): the kernel's find_prev_entry.
            let mut cp = match *parent {
                Some(c) if self.checkpoints[c].pc == pc => self.checkpoints[c].parent,
                other => other,
            };
            let mut prev = None;
            while let Some(c) = cp {
                let ck = &self.checkpoints[c];
                if ck.pc == pc && ck.state.is_some() {
                    prev = Some(c);
                    break;
                }
                cp = ck.parent;
            }
            if let Some(p) = prev {
                if let Some(old) = self.checkpoints[p].state.as_ref() {
                    widen_imprecise(old, &mut queued);
                }
            }
            *queued.reg_mut(0) = elem;
            self.push_branch(queued, pc + 1, pc, *parent)?;
        }
        let s = st.frames[fi].slot_mut(spi);
        s.spill.kf.flags |= KFI_DRAINED;
        *st.reg_mut(0) = Reg::konst(0);
        Ok(Next::Go(pc + 1))
    }

    /// A load or store through a kernel object pointer (`PTR_TO_BTF_ID`):
    /// reads of a field inside the object, as the program's own BTF lays
    /// the object out, give a scalar; writes are refused.
    pub(super) fn check_btf_access(
        &mut self,
        regno: u8,
        reg: &Reg,
        off: i64,
        size: i32,
        write: bool,
        in_rcu: bool,
    ) -> Result<Option<Reg>, Fail> {
        if !self.opts.gpl_compatible {
            let tname = match (reg.btf_id, self.kernel_types()) {
                (id, Some(t)) if id != 0 => t.name(id),
                _ => Obj::from_u8(reg.kf.obj)
                    .map(|o| o.name().to_string())
                    .unwrap_or_default(),
            };
            return self.err(invalid(format!(
                "Cannot access kernel 'struct {tname}' from non-GPL compatible program"
            )));
        }
        if reg.btf_id != 0 {
            return self.check_btf_struct_load(regno, reg, off, size, write, in_rcu);
        }
        let name = Obj::from_u8(reg.kf.obj).map(|o| o.name());
        // Where the kernel's types are known, an object a helper or kfunc
        // handed out (`bpf_skc_to_tcp_request_sock`) is read through its
        // struct's layout as the kernel does, so a pointer member stays a
        // pointer.
        let kernel_id = name.and_then(|n| self.kernel_types()?.struct_id(n));
        if let Some(id) = kernel_id {
            let mut typed = reg.clone();
            typed.btf_id = id;
            return self.check_btf_struct_load(regno, &typed, off, size, write, in_rcu);
        }
        if name.is_none() && !write {
            return self.err(unsafe_(format!(
                "bpfvm does not model reads through R{regno} ({}, off={off} size={size}) yet",
                kfuncs::btf_ptr_name(reg)
            )));
        }
        if write {
            return self.err(unsafe_(format!(
                "only read is supported (R{regno} is {})",
                kfuncs::btf_ptr_name(reg)
            )));
        }
        if !reg.is_const() {
            return self.err(unsafe_(format!(
                "R{regno} is ptr_{} invalid variable offset: off={}, var_off={}",
                name.unwrap_or(""),
                reg.off,
                reg.var_off.text()
            )));
        }
        let off = off + reg.var_off.value as i64;
        if off < 0 {
            return self.err(unsafe_(format!(
                "R{regno} is ptr_{} invalid negative access: off={off}",
                name.unwrap_or("")
            )));
        }
        let struct_size = name.and_then(|n| {
            self.opts
                .btf_structs
                .iter()
                .find(|(s, _)| s == n)
                .map(|(_, sz)| *sz)
        });
        match struct_size {
            Some(sz) if off + size as i64 <= sz as i64 => Ok(Some(Reg::unknown().clone_low(size))),
            _ => self.err(unsafe_(format!(
                "access beyond struct {} at off {off} size {size}",
                name.unwrap_or("(unknown)")
            ))),
        }
    }
}

/// `widen_imprecise_scalars`: a scalar neither state relied on that differs
/// between the previous iteration (`old`) and this one becomes unknown.
pub(super) fn widen_imprecise(old: &State, cur: &mut State) {
    let widen = |o: &Reg, c: &mut Reg| {
        if o.is_scalar() && c.is_scalar() && !o.precise && !c.precise && o != c {
            let id = 0;
            *c = Reg::unknown();
            c.id = id;
        }
    };
    for (fo, fc) in old.frames.iter().zip(cur.frames.iter_mut()) {
        for (ro, rc) in fo.regs.iter().zip(fc.regs.iter_mut()) {
            widen(ro, rc);
        }
        for (so, sc) in fo.stack.iter().zip(fc.stack.iter_mut()) {
            if so.ty.contains(&STACK_SPILL) && sc.ty == so.ty {
                widen(&so.spill, &mut sc.spill);
            }
        }
    }
}

/// Pruning for special slots: the same kind of iterator or dynptr, in the
/// same state, with references that map onto each other.
pub(super) fn special_slot_safe(old: &Slot, cur: &Slot, idmap: &mut IdMap) -> bool {
    old.ty == cur.ty
        && old.spill.kf.same_kind(&cur.spill.kf)
        && idmap.check(old.spill.ref_obj_id, cur.spill.ref_obj_id)
        && idmap.check(old.spill.id, cur.spill.id)
}

/// What `bpf_get_current_task_btf` (helper 158) returns: a trusted task.
pub(super) fn current_task_btf() -> Reg {
    let mut r = Reg::ptr(RegType::BtfId);
    r.kf = KfInfo::object(Obj::Task, KFI_TRUSTED);
    r
}
