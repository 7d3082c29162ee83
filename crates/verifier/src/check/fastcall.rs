//! bpf_fastcall stack accounting.
//!
//! A compiler that knows a call keeps some of r0-r5 intact (`bpf_fastcall`)
//! still spills the live ones around it, at the lowest stack offsets of the
//! function, so that older kernels run the program. The kernel recognises
//! such spill/call/fill patterns and, where it inlines the call and no other
//! instruction touches those slots, drops the spills and does not count
//! their slots in the function's stack depth. bpfvm counts the stack the
//! same way, so that a program the kernel fits in 512 bytes fits here too
//! (bpfvm itself keeps the spills; its frames are 512 bytes each).
//!
//! On an x86-64 kernel with the JIT, the inlined calls are the helper
//! `bpf_get_smp_processor_id` and the kfuncs `bpf_cast_to_kern_ctx` and
//! `bpf_rdonly_cast`. Around any other call a pattern keeps the function's
//! stack as it is; there the registers the call may clobber are not worked
//! out: every one of r0-r5 may be spilled, which finds at least the patterns
//! the kernel finds and so never counts less stack than it does.

use super::Verifier;
use crate::cfg::Cfg;
use bpfvm_isa::consts::*;
use bpfvm_isa::Insn;

use bpfvm_isa::uapi::BPF_FUNC_GET_SMP_PROCESSOR_ID as GET_SMP_PROCESSOR_ID;
const ALL_CALLER_SAVED: u32 = 0x3f;
const STX_DW: u8 = 0x7b; // BPF_STX | BPF_MEM | BPF_DW
const LDX_DW: u8 = 0x79; // BPF_LDX | BPF_MEM | BPF_DW

/// The patterns found before verification and what verification learnt.
#[derive(Clone, Debug, Default)]
pub(crate) struct Fastcall {
    /// Per instruction: a spill or fill of a pattern.
    pattern: Vec<bool>,
    /// Per call instruction: spill/fill pairs the kernel removes.
    spills: Vec<u8>,
    /// Per subprogram: where its fastcall slots end (offsets below are
    /// theirs); `i32::MIN` once something else touched them.
    stack_off: Vec<i32>,
    /// Per subprogram: a pattern around a call the kernel does not inline.
    keep: Vec<bool>,
}

impl Fastcall {
    /// `mark_fastcall_patterns`.
    pub(crate) fn find(insns: &[Insn], cfg: &Cfg) -> Fastcall {
        let n = insns.len();
        let mut f = Fastcall {
            pattern: vec![false; n],
            spills: vec![0; n],
            stack_off: vec![0; cfg.subprogs.len()],
            keep: vec![false; cfg.subprogs.len()],
        };
        let mut jump_target = vec![false; n + 1];
        for (pc, d) in cfg.dec.iter().enumerate() {
            let Some(d) = d else { continue };
            let code = insns[pc].code;
            let class = code & 7;
            if class != BPF_JMP && class != BPF_JMP32 {
                continue;
            }
            let op = code & 0xf0;
            if op == BPF_CALL || op == BPF_EXIT {
                continue;
            }
            let t = crate::cfg::target(pc, d);
            if (0..n as i64).contains(&t) {
                jump_target[t as usize] = true;
            }
        }
        for (s, &start) in cfg.subprogs.iter().enumerate() {
            let end = cfg.subprogs.get(s + 1).copied().unwrap_or(n);
            let lowest = (start..end)
                .filter(|&i| insns[i].code == STX_DW && insns[i].dst_reg == 10)
                .map(|i| insns[i].off as i32)
                .min()
                .unwrap_or(0)
                .min(0);
            for pc in start..end {
                let c = &insns[pc];
                if c.code != BPF_JMP | BPF_CALL || cfg.dec[pc].is_none() {
                    continue;
                }
                // (registers the call may clobber, the kernel inlines it)
                let (clobbers, inlined) = match c.src_reg {
                    0 if c.imm == GET_SMP_PROCESSOR_ID => (1, true),
                    0 => (0, false),
                    BPF_PSEUDO_KFUNC_CALL => {
                        match crate::kfuncs::by_btf_id(c.imm).map(|k| k.name) {
                            Some("bpf_cast_to_kern_ctx") => (0b11, true),
                            Some("bpf_rdonly_cast") => (0b111, true),
                            _ => (0, false),
                        }
                    }
                    _ => continue,
                };
                let mut expected = !clobbers & ALL_CALLER_SAVED;
                let mut off = lowest;
                let mut i = 1usize;
                while i <= 5 {
                    if pc < i || pc + i >= n {
                        break;
                    }
                    if jump_target[pc - i + 1] || jump_target[pc + i] {
                        break;
                    }
                    let (stx, ldx) = (&insns[pc - i], &insns[pc + i]);
                    if stx.code != STX_DW
                        || ldx.code != LDX_DW
                        || stx.dst_reg != 10
                        || ldx.src_reg != 10
                        || stx.src_reg != ldx.dst_reg
                        || stx.src_reg > 5
                        || expected & (1 << stx.src_reg) == 0
                        || stx.off as i32 != off
                        || ldx.off as i32 != off
                    {
                        break;
                    }
                    expected &= !(1 << stx.src_reg);
                    f.pattern[pc - i] = true;
                    f.pattern[pc + i] = true;
                    i += 1;
                    off += 8;
                }
                if i == 1 {
                    continue;
                }
                if inlined {
                    f.spills[pc] = (i - 1) as u8;
                } else {
                    f.keep[s] = true;
                }
                f.stack_off[s] = f.stack_off[s].min(off);
            }
        }
        f
    }
}

impl Verifier<'_> {
    /// `check_fastcall_stack_contract`: a load or store at `off` of subprogram
    /// `sp`'s stack by an instruction outside the patterns, into their slots,
    /// keeps every spill of that subprogram.
    pub(super) fn fastcall_contract(&mut self, sp: usize, off: i64) {
        let pc = self.cur_insn;
        let f = &mut self.fastcall;
        let Some(&end) = f.stack_off.get(sp) else {
            return;
        };
        if end as i64 <= off || f.pattern.get(pc).copied().unwrap_or(false) {
            return;
        }
        f.stack_off[sp] = i32::MIN;
        let cfg = self.cfg.as_ref().expect("cfg ran");
        let start = cfg.subprogs[sp];
        let stop = cfg.subprogs.get(sp + 1).copied().unwrap_or(f.pattern.len());
        for i in start..stop {
            f.pattern[i] = false;
            f.spills[i] = 0;
        }
    }

    /// `remove_fastcall_spills_fills`: a subprogram whose patterns the
    /// kernel removes counts only the stack above their slots.
    pub(super) fn fastcall_stack_depth(&mut self) {
        let Some(cfg) = self.cfg.as_ref() else { return };
        let f = &self.fastcall;
        for (s, &start) in cfg.subprogs.iter().enumerate() {
            let end = cfg.subprogs.get(s + 1).copied().unwrap_or(f.spills.len());
            let removed = f.spills[start..end].iter().any(|&n| n > 0);
            if removed && !f.keep[s] && f.stack_off[s] != i32::MIN {
                if let Some(d) = self.stack_depth.get_mut(s) {
                    *d = (-f.stack_off[s]).max(0) as u32;
                }
            }
        }
    }
}
