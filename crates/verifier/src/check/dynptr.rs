//! Dynptrs (`struct bpf_dynptr`): 16 bytes of stack, two slots of
//! STACK_DYNPTR, made by a helper or kfunc whose argument is uninitialised
//! (`bpf_dynptr_from_mem`, `bpf_ringbuf_reserve_dynptr`, `bpf_dynptr_from_skb`,
//! `bpf_dynptr_clone`), used through initialised ones, and ended by a
//! release (`bpf_ringbuf_{submit,discard}_dynptr`) or by a write over it.
//!
//! The first (higher) slot's spill register carries the dynptr's type, its
//! id (what slices from it are tied to) and, for ring buffer dynptrs, the
//! reference the program must release; clones share that reference, so
//! releasing one ends them all. A ring buffer dynptr may not be overwritten
//! (its reference would be lost); any other is simply destroyed, with its
//! slices.

use super::kfunc::STACK_DYNPTR;
use super::*;
use crate::kfuncs::{KfInfo, KFI_FIRST_SLOT};
use bpfvm_isa::helpers::{dynptr_type_str, BPF_DYNPTR_TYPE_RINGBUF};

/// Why `dynptr_get_spi` found no slot.
enum SpiErr {
    /// Refused, with the line the kernel logs.
    Msg(String),
    /// Outside the stack (`-ERANGE`): nothing logged.
    Range,
}

/// What a dynptr argument must be.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum DynArg {
    /// `MEM_UNINIT`: the callee makes a dynptr of this type there; a ring
    /// buffer dynptr takes the reference given (a clone's), or a new one.
    Uninit { kind: u8, clone_ref: u32 },
    /// An initialised dynptr, of this type (0: any).
    Init { kind: u8 },
}

/// An initialised dynptr argument: where it is and what it is.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct DynInfo {
    pub fi: usize,
    /// Its first (higher) slot.
    pub spi: usize,
    pub kind: u8,
    pub id: u32,
    pub ref_obj_id: u32,
}

impl Verifier<'_> {
    fn log_line(&mut self, line: &str) {
        if self.logging() {
            self.log.push_str(line);
            self.log.push('\n');
        }
    }

    /// `dynptr_get_spi`: the frame and first slot of the dynptr R`regno`
    /// points to.
    fn dynptr_spi(&self, st: &State, r: &Reg) -> Result<(usize, usize), SpiErr> {
        if !r.is_const() {
            return Err(SpiErr::Msg("dynptr has to be at a constant offset".into()));
        }
        let off = (r.off as i64).wrapping_add(r.var_off.value as i64) as i32 as i64;
        // Truncating division, as the kernel's: fp+0 is "slot" 0.
        let spi = (-off - 1) / 8;
        if off % 8 != 0 || spi + 1 < 2 {
            return Err(SpiErr::Msg(format!(
                "cannot pass in dynptr at an offset={off}"
            )));
        }
        if spi >= MAX_STACK / 8 {
            return Err(SpiErr::Range);
        }
        Ok((Self::stack_frame_of(st, r), spi as usize))
    }

    /// The dynptr whose first slot is `spi`, if the 16 bytes hold one.
    fn dynptr_at(st: &State, fi: usize, spi: usize) -> Option<DynInfo> {
        let f = &st.frames[fi];
        let hi = f.stack.get(spi)?;
        let lo = f.stack.get(spi.checked_sub(1)?)?;
        let whole = hi.ty == [STACK_DYNPTR; 8] && lo.ty == [STACK_DYNPTR; 8];
        (whole && hi.spill.kf.flags & KFI_FIRST_SLOT != 0).then_some(DynInfo {
            fi,
            spi,
            kind: hi.spill.kf.obj,
            id: hi.spill.id,
            ref_obj_id: hi.spill.ref_obj_id,
        })
    }

    /// `process_dynptr_func`: a dynptr argument in R`regno` (the kernel's
    /// arg #`regno - 1`). Gives the dynptr an initialised argument is.
    pub(super) fn process_dynptr(
        &mut self,
        st: &mut State,
        pc: usize,
        regno: u8,
        want: DynArg,
    ) -> Result<Option<DynInfo>, Fail> {
        let r = st.reg(regno).clone();
        if !matches!(r.ty, RegType::Stack | RegType::ConstDynptr) {
            return self.err(invalid(format!(
                "arg#{} expected pointer to stack or const struct bpf_dynptr",
                regno - 1
            )));
        }
        if r.ty == RegType::ConstDynptr {
            self.check_const_dynptr_off(regno, &r, false)?;
            // A dynptr the kernel made can neither be made again here nor
            // handed to a helper that changes it; every initialised dynptr
            // argument bpfvm models is `const struct bpf_dynptr *`
            // (MEM_RDONLY), so it is read only.
            return match want {
                DynArg::Uninit { .. } => {
                    self.err(invalid("Dynptr has to be an uninitialized dynptr"))
                }
                DynArg::Init { kind } if kind != 0 && r.kf.obj != kind => {
                    self.err(invalid(format!(
                        "Expected a dynptr of type {} as arg #{}",
                        dynptr_type_str(kind),
                        regno - 1
                    )))
                }
                DynArg::Init { .. } => Ok(Some(DynInfo {
                    fi: Self::stack_frame_of(st, &r),
                    spi: 0,
                    kind: r.kf.obj,
                    id: r.id,
                    ref_obj_id: r.ref_obj_id,
                })),
            };
        }
        match want {
            DynArg::Uninit { kind, clone_ref } => {
                if let Err(SpiErr::Msg(m)) = self.dynptr_spi(st, &r) {
                    self.log_line(&m);
                    return self.err(invalid("Dynptr has to be an uninitialized dynptr"));
                }
                // The callee writes both halves, 8 bytes at a time: what
                // was there goes (a ring buffer dynptr may not).
                for off in [0, 8] {
                    self.check_stack_access(
                        st,
                        regno,
                        &r,
                        off,
                        8,
                        Access::Write(Reg::unknown(), None),
                    )?;
                }
                let Ok((fi, spi)) = self.dynptr_spi(st, &r) else {
                    return self.err(invalid(format!(
                        "verifier internal error: no stack slot for the dynptr in R{regno}"
                    )));
                };
                self.destroy_dynptr(st, fi, spi)?;
                self.destroy_dynptr(st, fi, spi - 1)?;
                let id = self.new_id();
                let ref_obj_id = if kind != BPF_DYNPTR_TYPE_RINGBUF {
                    0
                } else if clone_ref != 0 {
                    clone_ref
                } else {
                    let rid = self.new_id();
                    st.refs.push((rid, pc));
                    rid
                };
                for (s, first) in [(spi, true), (spi - 1, false)] {
                    let slot = st.frames[fi].slot_mut(s);
                    slot.ty = [STACK_DYNPTR; 8];
                    let mut sp = Reg::ptr(RegType::Stack);
                    sp.id = id;
                    sp.ref_obj_id = ref_obj_id;
                    sp.kf = KfInfo {
                        obj: kind,
                        flags: if first { KFI_FIRST_SLOT } else { 0 },
                        depth: 0,
                    };
                    slot.spill = sp;
                    if s < 64 {
                        self.scratched_stack |= 1 << s;
                    }
                }
                Ok(None)
            }
            DynArg::Init { kind } => {
                let found = match self.dynptr_spi(st, &r) {
                    Ok((fi, spi)) => Self::dynptr_at(st, fi, spi),
                    Err(SpiErr::Msg(m)) => {
                        self.log_line(&m);
                        None
                    }
                    Err(SpiErr::Range) => None,
                };
                let Some(d) = found else {
                    return self.err(invalid(format!(
                        "Expected an initialized dynptr as arg #{}",
                        regno - 1
                    )));
                };
                if kind != 0 && d.kind != kind {
                    return self.err(invalid(format!(
                        "Expected a dynptr of type {} as arg #{}",
                        dynptr_type_str(kind),
                        regno - 1
                    )));
                }
                Ok(Some(d))
            }
        }
    }

    /// `check_func_arg_reg_off` for a `CONST_PTR_TO_DYNPTR` argument: only
    /// the pointer as the kernel gave it (a release function, which refuses
    /// it anyway, says so about a fixed offset first).
    pub(super) fn check_const_dynptr_off(
        &self,
        regno: u8,
        r: &Reg,
        release: bool,
    ) -> Result<(), Fail> {
        if r.ty != RegType::ConstDynptr {
            return Ok(());
        }
        if release && r.off != 0 {
            return self.err(VerifierError::Reference {
                reason: format!(
                    "R{regno} must have zero offset when passed to release func or trusted arg to kfunc"
                ),
            });
        }
        if r.off < 0 {
            return self.err(unsafe_(format!(
                "negative offset dynptr_ptr ptr R{regno} off={} disallowed",
                r.off
            )));
        }
        if r.off != 0 {
            return self.err(unsafe_(format!(
                "dereference of modified dynptr_ptr ptr R{regno} off={} disallowed",
                r.off
            )));
        }
        if !r.is_const() || r.var_off.value != 0 {
            return self.err(unsafe_(format!(
                "variable dynptr_ptr access var_off={} disallowed",
                r.var_off.text()
            )));
        }
        Ok(())
    }

    /// The release check of an `OBJ_RELEASE` dynptr argument: it must be a
    /// dynptr holding a reference.
    pub(super) fn check_dynptr_release(&mut self, st: &State, regno: u8) -> Result<(), Fail> {
        let r = st.reg(regno).clone();
        let held = match self.dynptr_spi(st, &r) {
            Ok((fi, spi)) => st.frames[fi]
                .stack
                .get(spi)
                .is_some_and(|s| s.spill.ref_obj_id != 0),
            Err(SpiErr::Msg(m)) => {
                self.log_line(&m);
                false
            }
            Err(SpiErr::Range) => false,
        };
        if !held {
            return self.err(invalid(format!("arg {regno} is an unacquired reference")));
        }
        Ok(())
    }

    /// Slices of dynptr `id` become unusable (`mark_reg_invalid`).
    fn invalidate_slices(&self, st: &mut State, id: u32) {
        let privileged = self.privileged();
        st.for_each_reg(|r| {
            if r.ty == RegType::Mem && r.dynptr_id == id {
                *r = if privileged {
                    Reg::unknown()
                } else {
                    Reg::not_init()
                };
            }
        });
    }

    /// Both slots of the dynptr with first slot `spi` become unused stack.
    fn clear_dynptr_slots(&mut self, st: &mut State, fi: usize, spi: usize) {
        for s in [spi, spi.saturating_sub(1)] {
            let slot = st.frames[fi].slot_mut(s);
            *slot = Slot::default();
            if s < 64 {
                self.scratched_stack |= 1 << s;
            }
        }
    }

    /// `destroy_if_dynptr_stack_slot`: a write to slot `spi` ends the dynptr
    /// it belongs to, and that dynptr's slices; refused for a ring buffer
    /// dynptr, whose reference would be lost.
    pub(super) fn destroy_dynptr(
        &mut self,
        st: &mut State,
        fi: usize,
        spi: usize,
    ) -> Result<(), Fail> {
        let Some(slot) = st.frames[fi].stack.get(spi) else {
            return Ok(());
        };
        if slot.ty[0] != STACK_DYNPTR {
            return Ok(());
        }
        let first = if slot.spill.kf.flags & KFI_FIRST_SLOT != 0 {
            spi
        } else {
            spi + 1
        };
        let Some(head) = st.frames[fi].stack.get(first) else {
            return Ok(());
        };
        if head.spill.kf.obj == BPF_DYNPTR_TYPE_RINGBUF || head.spill.ref_obj_id != 0 {
            return self.err(invalid("cannot overwrite referenced dynptr"));
        }
        let id = head.spill.id;
        self.clear_dynptr_slots(st, fi, first);
        self.invalidate_slices(st, id);
        Ok(())
    }

    /// `unmark_stack_slots_dynptr`: a release helper ended dynptr `d`. A ring
    /// buffer dynptr's reference goes, and with it every clone and every
    /// slice of any of them.
    pub(super) fn release_dynptr(&mut self, st: &mut State, d: DynInfo) {
        if d.kind != BPF_DYNPTR_TYPE_RINGBUF || d.ref_obj_id == 0 {
            self.clear_dynptr_slots(st, d.fi, d.spi);
            self.invalidate_slices(st, d.id);
            return;
        }
        let rid = d.ref_obj_id;
        self.release_ref(st, rid);
        // Clones in any frame (the kernel looks in the released one's only;
        // a clone elsewhere would outlive its record).
        let mut ended = Vec::new();
        for (fi, f) in st.frames.iter().enumerate() {
            for (spi, s) in f.stack.iter().enumerate() {
                if s.ty[0] == STACK_DYNPTR
                    && s.spill.ref_obj_id == rid
                    && s.spill.kf.flags & KFI_FIRST_SLOT != 0
                    && spi >= 1
                {
                    ended.push((fi, spi, s.spill.id));
                }
            }
        }
        for (fi, spi, id) in ended {
            self.clear_dynptr_slots(st, fi, spi);
            self.invalidate_slices(st, id);
        }
    }
}
