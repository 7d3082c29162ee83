//! check_cfg: the static pass before path exploration. Decodes every slot,
//! splits the program into subprograms (entry, bpf-to-bpf call targets,
//! `BPF_PSEUDO_FUNC` targets), checks that jumps stay inside their subprogram
//! and land on instruction starts, that every subprogram ends in an exit or a
//! jump, that no instruction is unreachable, and finds back-edges (loops; only
//! privileged programs may have them). Also marks prune points for [`crate::check`].

use crate::VerifierError;
use bpfvm_isa::consts::*;
use bpfvm_isa::{decode_at, DecodeError, Decoded, Insn, Op, Shape};

pub struct Cfg {
    /// The decoded instruction starting at each slot (`None` for the second
    /// slot of an LD_IMM64).
    pub dec: Vec<Option<Decoded>>,
    /// Subprogram entry slots, sorted; `[0]` is 0.
    pub subprogs: Vec<usize>,
    /// Subprogram index of each slot.
    pub subprog_of: Vec<usize>,
    /// Jump targets, the instruction after a conditional jump or a call.
    pub prune_point: Vec<bool>,
    /// Targets of back-edges: a checkpoint is always taken there.
    pub loop_head: Vec<bool>,
    /// Registers live before each instruction (bit N: rN may be read before
    /// it is written); dead registers are ignored when comparing states.
    pub live_in: Vec<u16>,
}

/// (used, defined) register masks of one instruction.
fn use_def(d: &Decoded) -> (u16, u16) {
    let bit = |r: u8| 1u16 << r;
    let args: u16 = 0b11_1110;
    let (dst, src) = (d.dst, d.src);
    match d.op.shape() {
        Shape::AluK | Shape::Neg | Shape::End => {
            if d.op.code() & 0xf0 == BPF_MOV && d.op.shape() == Shape::AluK {
                (0, bit(dst))
            } else {
                (bit(dst), bit(dst))
            }
        }
        Shape::AluX | Shape::MovSx => {
            if d.op.code() & 0xf0 == BPF_MOV {
                (bit(src), bit(dst))
            } else {
                (bit(dst) | bit(src), bit(dst))
            }
        }
        Shape::JmpK => (bit(dst), 0),
        Shape::JmpX => (bit(dst) | bit(src), 0),
        Shape::Ja | Shape::Ja32 | Shape::MayGoto => (0, 0),
        Shape::AsCast | Shape::LoadAcq => (bit(src), bit(dst)),
        Shape::StoreRel => (bit(dst) | bit(src), 0),
        Shape::Call if d.op == Op::Call => {
            // A helper reads only the arguments its prototype names.
            let n = crate::helpers::proto(d.imm32())
                .map(|p| {
                    p.args
                        .iter()
                        .filter(|a| **a != crate::helpers::Arg::DontCare)
                        .count()
                })
                .unwrap_or(5);
            (((1u16 << (n + 1)) - 1) & !1, 0b11_1111)
        }
        Shape::Call | Shape::CallX => (args, 0b11_1111),
        Shape::Exit => (1, 0),
        Shape::LdImm64 => (0, bit(dst)),
        Shape::LdAbs => (1 << 6, 0b11_1111),
        Shape::LdInd => ((1 << 6) | bit(src), 0b11_1111),
        Shape::Ldx => (bit(src), bit(dst)),
        Shape::St => (bit(dst), 0),
        Shape::Stx => (bit(dst) | bit(src), 0),
        Shape::Atomic => {
            let imm = d.imm32();
            if imm == BPF_CMPXCHG {
                (bit(dst) | bit(src) | 1, 1)
            } else if imm & BPF_FETCH != 0 {
                (bit(dst) | bit(src), bit(src))
            } else {
                (bit(dst) | bit(src), 0)
            }
        }
    }
}

/// Backward dataflow to a fixed point; calls do not flow into the callee
/// (the callee's frame has its own registers).
fn liveness(dec: &[Option<Decoded>]) -> Vec<u16> {
    let n = dec.len();
    let mut live = vec![0u16; n];
    let succs = |pc: usize, d: &Decoded| -> [Option<usize>; 2] {
        let next = pc + d.slots();
        match d.op.shape() {
            Shape::Exit => [None, None],
            Shape::Ja | Shape::Ja32 => [Some(target(pc, d) as usize), None],
            Shape::JmpK | Shape::JmpX | Shape::MayGoto => {
                [Some(next), Some(target(pc, d) as usize)]
            }
            _ => [Some(next), None],
        }
    };
    let mut changed = true;
    while changed {
        changed = false;
        for pc in (0..n).rev() {
            let Some(d) = dec[pc] else { continue };
            let mut out = 0u16;
            for t in succs(pc, &d).into_iter().flatten() {
                if t < n {
                    out |= live[t];
                }
            }
            let (u, df) = use_def(&d);
            let inn = u | (out & !df) | (1 << 10);
            if inn != live[pc] {
                live[pc] = inn;
                changed = true;
            }
        }
    }
    live
}

/// The target slot of the jump or local call `d` at `pc`.
pub fn target(pc: usize, d: &Decoded) -> i64 {
    let delta = if d.op.shape() == Shape::Ja32 {
        d.imm
    } else if d.op.shape() == Shape::Call || d.op == Op::LdImm64 {
        d.imm32() as i64
    } else {
        d.off as i64
    };
    pc as i64 + 1 + delta
}

fn decode_error_text(insns: &[Insn], e: &DecodeError) -> String {
    // Instructions the kernel decodes more loosely and refuses in do_check,
    // with messages of their own.
    let pc = match e {
        DecodeError::UnknownOpcode { pc, .. }
        | DecodeError::ReservedField { pc, .. }
        | DecodeError::BadDiscriminator { pc, .. }
        | DecodeError::BadRegister { pc, .. }
        | DecodeError::LdImm64Truncated { pc }
        | DecodeError::LdImm64BadSecondSlot { pc }
        | DecodeError::LdImm64BadPseudo { pc, .. } => *pc,
    };
    if let (Some(i), false) = (insns.get(pc), matches!(e, DecodeError::BadRegister { .. })) {
        const RMW: [i32; 10] = [0x00, 0x40, 0x50, 0xa0, 0x01, 0x41, 0x51, 0xa1, 0xe1, 0xf1];
        match i.code {
            0xe5 => return format!("invalid may_goto imm {}", i.imm),
            0xbf if i.off == BPF_ADDR_SPACE_CAST => {
                return "addr_space_cast insn can only convert between address space 1 and 0"
                    .to_string()
            }
            0xbf | 0xbc if matches!(e, DecodeError::BadDiscriminator { .. }) => {
                return "BPF_MOV uses reserved fields".to_string()
            }
            0xd3 | 0xcb if RMW.contains(&i.imm) => {
                return "invalid atomic operand size".to_string()
            }
            0xc3 | 0xdb | 0xd3 | 0xcb if matches!(e, DecodeError::BadDiscriminator { .. }) => {
                return format!("BPF_ATOMIC uses invalid atomic opcode {:02x}", i.imm)
            }
            _ => {}
        }
    }
    match e {
        DecodeError::UnknownOpcode { code, .. } | DecodeError::BadDiscriminator { code, .. } => {
            format!("unknown opcode {code:02x}")
        }
        DecodeError::ReservedField { code, .. } => {
            let what = match bpf_class(*code) {
                BPF_ALU | BPF_ALU64 => "BPF_ALU",
                BPF_LDX => "BPF_LDX",
                BPF_ST => "BPF_ST",
                BPF_STX => "BPF_STX",
                BPF_LD if *code == 0x18 => "BPF_LD_IMM64",
                BPF_LD => "BPF_LD",
                _ => match code & 0xf0 {
                    0x00 => "BPF_JA",
                    0x80 => "BPF_CALL",
                    0x90 => "BPF_EXIT",
                    _ => "BPF_JMP/JMP32",
                },
            };
            format!("{what} uses reserved fields")
        }
        DecodeError::BadRegister { reg, .. } => format!("R{reg} is invalid"),
        // resolve_pseudo_ldimm64's wording: it runs before any other check.
        DecodeError::LdImm64Truncated { .. } | DecodeError::LdImm64BadSecondSlot { .. } => {
            "invalid bpf_ld_imm64 insn".to_string()
        }
        DecodeError::LdImm64BadPseudo { .. } => {
            let _ = insns;
            "unrecognized bpf_ld_imm64 insn".to_string()
        }
    }
}

fn cfg_err(reason: String) -> VerifierError {
    VerifierError::Cfg { reason }
}

/// Runs the static checks; on error also returns the instruction index.
pub fn check_cfg(insns: &[Insn], privileged: bool) -> Result<Cfg, (VerifierError, Option<usize>)> {
    let n = insns.len();
    if n == 0 {
        return Err((cfg_err("empty program".into()), None));
    }
    let mut dec: Vec<Option<Decoded>> = vec![None; n];
    let mut pc = 0;
    while pc < n {
        match decode_at(insns, pc) {
            Ok(d) => {
                // resolve_pseudo_ldimm64: a map fd (or index) load has nothing
                // in its second half's imm.
                if insns[pc].code == 0x18
                    && matches!(insns[pc].src_reg, 1 | 5)
                    && insns.get(pc + 1).is_some_and(|i| i.imm != 0)
                {
                    return Err((cfg_err("unrecognized bpf_ld_imm64 insn".into()), Some(pc)));
                }
                dec[pc] = Some(d);
                pc += d.slots();
            }
            Err(e) => {
                let reason = decode_error_text(insns, &e);
                return Err((VerifierError::BadInsn { reason }, Some(pc)));
            }
        }
    }
    // Subprograms.
    let mut subprogs = vec![0usize];
    for (pc, d) in dec.iter().enumerate() {
        let Some(d) = d else { continue };
        let is_local_call = d.op == Op::CallLocal;
        let is_func = d.op == Op::LdImm64 && d.src == BPF_PSEUDO_FUNC;
        if d.op.shape() == Shape::CallX {
            return Err((
                VerifierError::BadInsn {
                    reason: format!("unknown opcode {:02x}", d.op.code()),
                },
                Some(pc),
            ));
        }
        if (is_local_call || is_func || d.op == Op::CallKfunc) && !privileged {
            return Err((
                VerifierError::Invalid {
                    reason: "loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN".into(),
                },
                Some(pc),
            ));
        }
        if is_local_call || is_func {
            let t = target(pc, d);
            if t < 0 || t >= n as i64 || dec[t as usize].is_none() {
                let reason = if is_func {
                    "invalid pseudo func"
                } else {
                    "call to invalid destination"
                };
                return Err((cfg_err(reason.into()), Some(pc)));
            }
            subprogs.push(t as usize);
        }
    }
    subprogs.sort_unstable();
    subprogs.dedup();
    let mut subprog_of = vec![0usize; n];
    for (i, &s) in subprogs.iter().enumerate() {
        let end = subprogs.get(i + 1).copied().unwrap_or(n);
        for slot in subprog_of.iter_mut().take(end).skip(s) {
            *slot = i;
        }
    }
    // Jumps inside their subprogram; each subprogram ends in exit or ja.
    for (i, &s) in subprogs.iter().enumerate() {
        let end = subprogs.get(i + 1).copied().unwrap_or(n);
        let mut last = s;
        for (pc, d) in dec.iter().enumerate().take(end).skip(s) {
            let Some(d) = *d else { continue };
            last = pc;
            if d.op.is_jump() {
                let t = target(pc, &d);
                if t < s as i64 || t >= end as i64 {
                    return Err((
                        cfg_err(format!("jump out of range from insn {pc} to {t}")),
                        Some(pc),
                    ));
                }
            }
        }
        let ld = dec[last].map(|d| d.op);
        let ok = matches!(ld, Some(op) if op == Op::Exit || op.shape() == Shape::Ja || op.shape() == Shape::Ja32);
        if !ok {
            return Err((
                cfg_err("last insn is not an exit or jmp".into()),
                Some(last),
            ));
        }
    }
    // Depth-first walk: reachability and back-edges.
    let mut prune_point = vec![false; n];
    let mut loop_head = vec![false; n];
    const WHITE: u8 = 0;
    const GREY: u8 = 1;
    const BLACK: u8 = 2;
    let mut color = vec![WHITE; n];
    let succs = |pc: usize| -> Vec<(usize, bool)> {
        // (successor, is_branch_target)
        let Some(d) = dec[pc] else { return vec![] };
        let next = pc + d.slots();
        match d.op.shape() {
            Shape::Exit => vec![],
            Shape::Ja | Shape::Ja32 => vec![(target(pc, &d) as usize, true)],
            Shape::JmpK | Shape::JmpX | Shape::MayGoto => {
                vec![(next, true), (target(pc, &d) as usize, true)]
            }
            Shape::Call if d.op == Op::CallLocal => {
                vec![(next, true), (target(pc, &d) as usize, false)]
            }
            Shape::Call => vec![(next, true)],
            Shape::LdImm64 if d.src == BPF_PSEUDO_FUNC => {
                vec![(next, false), (target(pc, &d) as usize, false)]
            }
            _ => vec![(next, false)],
        }
    };
    let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
    color[0] = GREY;
    while let Some(&mut (pc, ref mut k)) = stack.last_mut() {
        let s = succs(pc);
        if *k < s.len() {
            let (t, prune) = s[*k];
            *k += 1;
            if t >= n {
                return Err((
                    cfg_err(format!("jump out of range from insn {pc} to {t}")),
                    Some(pc),
                ));
            }
            if prune {
                prune_point[t] = true;
            }
            match color[t] {
                WHITE => {
                    color[t] = GREY;
                    stack.push((t, 0));
                }
                GREY => {
                    if !privileged {
                        return Err((
                            cfg_err(format!("back-edge from insn {pc} to {t}")),
                            Some(pc),
                        ));
                    }
                    loop_head[t] = true;
                    prune_point[t] = true;
                }
                _ => {}
            }
        } else {
            color[pc] = BLACK;
            stack.pop();
        }
    }
    for (pc, d) in dec.iter().enumerate() {
        if d.is_some() && color[pc] != BLACK {
            return Err((cfg_err(format!("unreachable insn {pc}")), Some(pc)));
        }
    }
    // Jumps into the middle of an LD_IMM64.
    for (pc, d) in dec.iter().enumerate() {
        let Some(d) = d else { continue };
        if d.op.is_jump() {
            let t = target(pc, d) as usize;
            if dec[t].is_none() {
                return Err((
                    cfg_err(format!("jump into the middle of ldimm64 insn {}", t - 1)),
                    Some(pc),
                ));
            }
        }
    }
    for &s in &subprogs {
        prune_point[s] = true;
    }
    // The kernel checkpoints every may_goto (a forced checkpoint): its loops
    // converge there. A conditional jump is a prune point too (the
    // kernel's `visit_insn`): a state covered there prunes both branches.
    for (pc, d) in dec.iter().enumerate() {
        if d.is_some_and(|d| matches!(d.op.shape(), Shape::JmpK | Shape::JmpX | Shape::MayGoto)) {
            prune_point[pc] = true;
        }
    }
    let live_in = liveness(&dec);
    Ok(Cfg {
        dec,
        subprogs,
        subprog_of,
        prune_point,
        loop_head,
        live_in,
    })
}
