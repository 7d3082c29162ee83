//! An arm64 (AArch64) code generator for listings only: the same instruction
//! walk, register pinning, per-block fuel metering (tested at every block start,
//! a simplification of the x86 placement) and memory-check structure as the
//! x86-64 JIT, emitted as
//! A64 words with their assembly text (the emitter writes the text beside each
//! word, so no disassembler is needed). The code is never executed on this host;
//! helper, trampoline and context addresses appear as symbolic placeholders.
//!
//! Register map: r0 x7, r1..r5 x0..x4 (the AAPCS64 argument registers), r6..r9
//! x19..x22, r10 x25; x26 the run context, x27 the fuel, x9..x11 scratch. A64's
//! division does not trap (by zero gives 0, `INT_MIN / -1` gives `INT_MIN`), which
//! is RFC 9669's result for division, and `msub` then gives its modulo.

use super::JitOptions;
use crate::program::{VInsn, VmProgram};
use bpfvm_isa::consts::{BPF_MAX_LOOPS, MAX_BPF_STACK};
use bpfvm_isa::{Op, Shape};
use std::fmt::Write;

const HOST: [u32; 11] = [7, 0, 1, 2, 3, 4, 19, 20, 21, 22, 25];
const CTX: u32 = 26;
const FUEL: u32 = 27;
const ADDR: u32 = 9;
const T1: u32 = 10;
const T2: u32 = 11;
const XZR: u32 = 31;

fn h(r: u8) -> u32 {
    HOST[(r as usize).min(10)]
}

/// One A64 instruction of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arm64Insn {
    pub offset: usize,
    pub word: u32,
    pub text: String,
}

/// A program compiled to arm64 for reading: the code, its text, and where each
/// BPF instruction starts.
#[derive(Clone, Debug)]
pub struct Aarch64Listing {
    insns: Vec<Arm64Insn>,
    insn_offsets: Vec<u32>,
    code: Vec<u8>,
    main_end: usize,
}

impl Aarch64Listing {
    /// The code, little-endian words.
    pub fn code(&self) -> &[u8] {
        &self.code
    }

    pub fn insns(&self) -> &[Arm64Insn] {
        &self.insns
    }

    /// Per BPF instruction slot, the byte offset where its code starts.
    pub fn insn_offsets(&self) -> &[u32] {
        &self.insn_offsets
    }

    /// Each BPF instruction (kernel syntax) above its arm64 instructions.
    pub fn listing(&self, prog: &VmProgram) -> String {
        let slots = prog.insns();
        let mut out = String::new();
        let mut k = 0;
        let mut pc = 0;
        while pc < slots.len() {
            let Ok(d) = bpfvm_isa::decode_at(slots, pc) else {
                break;
            };
            let next = pc + d.slots();
            let end = self
                .insn_offsets
                .get(next)
                .map_or(self.stub_start(), |o| *o as usize);
            let text = bpfvm_isa::disasm::kernel_insn_text(&d, pc, &bpfvm_isa::disasm::NoSymbols);
            let _ = writeln!(out, "; {pc}: {text}");
            while k < self.insns.len() && self.insns[k].offset < end {
                let i = &self.insns[k];
                let _ = writeln!(out, "  {:5x}:  {:08x}  {}", i.offset, i.word, i.text);
                k += 1;
            }
            pc = next;
        }
        if k < self.insns.len() {
            out.push_str("; out of line\n");
            for i in &self.insns[k..] {
                let _ = writeln!(out, "  {:5x}:  {:08x}  {}", i.offset, i.word, i.text);
            }
        }
        out
    }

    /// Where the out-of-line code (memory check slow paths, unwinding) starts.
    pub fn out_of_line_offset(&self) -> usize {
        self.main_end
    }

    fn stub_start(&self) -> usize {
        self.main_end
    }
}

#[derive(Clone, Copy)]
struct Label(usize);

#[derive(Clone, Copy)]
enum Fix {
    /// b / bl: imm26.
    Imm26,
    /// b.cond, cbz: imm19 at bit 5.
    Imm19,
    /// tbnz: imm14 at bit 5.
    Imm14,
}

#[derive(Default)]
struct A64 {
    insns: Vec<Arm64Insn>,
    labels: Vec<Option<usize>>,
    names: Vec<String>,
    fixups: Vec<(usize, Label, Fix)>,
}

fn x(r: u32) -> String {
    if r == 31 {
        "xzr".into()
    } else {
        format!("x{r}")
    }
}

fn w(r: u32) -> String {
    if r == 31 {
        "wzr".into()
    } else {
        format!("w{r}")
    }
}

fn reg(wide: bool, r: u32) -> String {
    if wide {
        x(r)
    } else {
        w(r)
    }
}

impl A64 {
    fn label(&mut self, name: String) -> Label {
        self.labels.push(None);
        self.names.push(name);
        Label(self.labels.len() - 1)
    }

    fn bind(&mut self, l: Label) {
        self.labels[l.0] = Some(self.insns.len());
    }

    fn pos(&self) -> usize {
        self.insns.len() * 4
    }

    fn emit(&mut self, word: u32, text: String) {
        let offset = self.pos();
        self.insns.push(Arm64Insn { offset, word, text });
    }

    fn branch(&mut self, word: u32, text: &str, l: Label, fix: Fix) {
        self.fixups.push((self.insns.len(), l, fix));
        let name = self.names[l.0].clone();
        self.emit(word, format!("{text} {name}"));
    }

    fn finish(mut self) -> Vec<Arm64Insn> {
        for &(at, l, fix) in &self.fixups {
            let Some(t) = self.labels[l.0] else { continue };
            let d = t as i64 - at as i64;
            let i = &mut self.insns[at];
            i.word |= match fix {
                Fix::Imm26 => (d as u32) & 0x03ff_ffff,
                Fix::Imm19 => ((d as u32) & 0x7ffff) << 5,
                Fix::Imm14 => ((d as u32) & 0x3fff) << 5,
            };
            let b = d * 4;
            let _ = if b < 0 {
                write!(i.text, "  // -{:#x}", -b)
            } else {
                write!(i.text, "  // +{b:#x}")
            };
        }
        self.insns
    }

    /// Any 64-bit constant with movz/movn + movk.
    fn mov_imm(&mut self, wide: bool, rd: u32, v: u64) {
        let v = if wide { v } else { v & 0xffff_ffff };
        let halves = if wide { 4 } else { 2 };
        let inverted = !v & if wide { u64::MAX } else { 0xffff_ffff };
        let ones = (0..halves)
            .filter(|k| (v >> (16 * k)) & 0xffff == 0xffff)
            .count();
        let zeros = (0..halves)
            .filter(|k| (v >> (16 * k)) & 0xffff == 0)
            .count();
        let sf = if wide { 1u32 << 31 } else { 0 };
        if ones > zeros {
            // movn then movk the halves that are not all ones.
            let k0 = (0..halves)
                .find(|k| (v >> (16 * k)) & 0xffff != 0xffff)
                .unwrap_or(0);
            let imm = ((inverted >> (16 * k0)) & 0xffff) as u32;
            self.emit(
                sf | 0x1280_0000 | (k0 as u32) << 21 | imm << 5 | rd,
                format!("movn {}, #{imm:#x}, lsl #{}", reg(wide, rd), 16 * k0),
            );
            for k in k0 + 1..halves {
                let part = ((v >> (16 * k)) & 0xffff) as u32;
                if part != 0xffff {
                    self.movk(wide, rd, part, k);
                }
            }
        } else {
            let k0 = (0..halves)
                .find(|k| (v >> (16 * k)) & 0xffff != 0)
                .unwrap_or(0);
            let imm = ((v >> (16 * k0)) & 0xffff) as u32;
            self.emit(
                sf | 0x5280_0000 | (k0 as u32) << 21 | imm << 5 | rd,
                format!("movz {}, #{imm:#x}, lsl #{}", reg(wide, rd), 16 * k0),
            );
            for k in k0 + 1..halves {
                let part = ((v >> (16 * k)) & 0xffff) as u32;
                if part != 0 {
                    self.movk(wide, rd, part, k);
                }
            }
        }
    }

    fn movk(&mut self, wide: bool, rd: u32, part: u32, k: usize) {
        let sf = if wide { 1u32 << 31 } else { 0 };
        self.emit(
            sf | 0x7280_0000 | (k as u32) << 21 | part << 5 | rd,
            format!("movk {}, #{part:#x}, lsl #{}", reg(wide, rd), 16 * k),
        );
    }

    /// Three-register data processing: `base` is the 32-bit opcode, bit 31 set for 64.
    fn rrr(&mut self, wide: bool, base: u32, mn: &str, rd: u32, rn: u32, rm: u32) {
        let sf = if wide { 1u32 << 31 } else { 0 };
        self.emit(
            sf | base | rm << 16 | rn << 5 | rd,
            format!(
                "{mn} {}, {}, {}",
                reg(wide, rd),
                reg(wide, rn),
                reg(wide, rm)
            ),
        );
    }

    fn mov(&mut self, wide: bool, rd: u32, rm: u32) {
        let sf = if wide { 1u32 << 31 } else { 0 };
        self.emit(
            sf | 0x2a00_03e0 | rm << 16 | rd,
            format!("mov {}, {}", reg(wide, rd), reg(wide, rm)),
        );
    }

    fn msub(&mut self, wide: bool, rd: u32, rn: u32, rm: u32, ra: u32) {
        let sf = if wide { 1u32 << 31 } else { 0 };
        self.emit(
            sf | 0x1b00_8000 | rm << 16 | ra << 10 | rn << 5 | rd,
            format!(
                "msub {}, {}, {}, {}",
                reg(wide, rd),
                reg(wide, rn),
                reg(wide, rm),
                reg(wide, ra)
            ),
        );
    }

    fn add_imm(&mut self, sub: bool, rd: u32, rn: u32, imm: u32) {
        let (op, mn) = if sub {
            (0xd100_0000, "sub")
        } else {
            (0x9100_0000, "add")
        };
        let sp = |r: u32| if r == 31 { "sp".to_string() } else { x(r) };
        self.emit(
            op | imm << 10 | rn << 5 | rd,
            format!("{mn} {}, {}, #{imm:#x}", sp(rd), sp(rn)),
        );
    }

    /// `ldr`/`str` of a context field (8-byte aligned offset).
    fn ctx_ldr(&mut self, load: bool, rt: u32, off: u32) {
        let (op, mn) = if load {
            (0xf940_0000, "ldr")
        } else {
            (0xf900_0000, "str")
        };
        self.emit(
            op | (off / 8) << 10 | CTX << 5 | rt,
            format!("{mn} {}, [x{CTX}, #{off:#x}]", x(rt)),
        );
    }

    fn mem(&mut self, op: u32, mn: &str, wide: bool, rt: u32, rn: u32) {
        self.emit(
            op | rn << 5 | rt,
            format!("{mn} {}, [{}]", reg(wide, rt), x(rn)),
        );
    }

    fn ret(&mut self) {
        self.emit(0xd65f_03c0, "ret".into());
    }

    fn blr(&mut self, rn: u32) {
        self.emit(0xd63f_0000 | rn << 5, format!("blr {}", x(rn)));
    }

    fn stp_push(&mut self, a: u32, b: u32) {
        self.emit(
            0xa9bf_0000 | b << 10 | 31 << 5 | a,
            format!("stp {}, {}, [sp, #-16]!", x(a), x(b)),
        );
    }

    fn ldp_pop(&mut self, a: u32, b: u32) {
        self.emit(
            0xa8c1_0000 | b << 10 | 31 << 5 | a,
            format!("ldp {}, {}, [sp], #16", x(a), x(b)),
        );
    }
}

/// A64 condition codes.
fn cond(op: Op) -> (u32, &'static str) {
    use Op::*;
    match op {
        JeqK | JeqX | Jeq32K | Jeq32X => (0, "eq"),
        JneK | JneX | Jne32K | Jne32X | JsetK | JsetX | Jset32K | Jset32X => (1, "ne"),
        JgtK | JgtX | Jgt32K | Jgt32X => (8, "hi"),
        JgeK | JgeX | Jge32K | Jge32X => (2, "hs"),
        JltK | JltX | Jlt32K | Jlt32X => (3, "lo"),
        JleK | JleX | Jle32K | Jle32X => (9, "ls"),
        JsgtK | JsgtX | Jsgt32K | Jsgt32X => (12, "gt"),
        JsgeK | JsgeX | Jsge32K | Jsge32X => (10, "ge"),
        JsltK | JsltX | Jslt32K | Jslt32X => (11, "lt"),
        _ => (13, "le"),
    }
}

/// Emits arm64 code for `prog` (a listing; see the module comment).
pub(crate) fn generate(prog: &VmProgram, opts: &JitOptions) -> Aarch64Listing {
    let code = &prog.code;
    let n = code.len();
    let mut start = vec![false; n];
    start[0] = true;
    for (e, v) in code.iter().enumerate() {
        if matches!(
            v.op.shape(),
            Shape::JmpK | Shape::JmpX | Shape::Ja | Shape::Ja32 | Shape::MayGoto
        ) {
            start[v.off as usize] = true;
        }
        if prog.func_start[e] {
            start[e] = true;
        }
        let ends = matches!(
            v.op.shape(),
            Shape::JmpK
                | Shape::JmpX
                | Shape::Ja
                | Shape::Ja32
                | Shape::MayGoto
                | Shape::Exit
                | Shape::Call
                | Shape::CallX
                | Shape::LdAbs
                | Shape::LdInd
        );
        if ends && e + 1 < n {
            start[e + 1] = true;
        }
    }
    let mut a = A64::default();
    let labels: Vec<Label> = (0..n)
        .map(|e| a.label(format!("L{}", prog.slot(e))))
        .collect();
    let fuel_out = a.label("out_of_fuel".into());
    let unwind = a.label("unwind".into());
    let mut slow: Vec<(Label, Label, usize)> = Vec::new();
    let mut offsets = vec![0u32; prog.insns().len()];
    for e in 0..n {
        let slot = prog.slot(e);
        offsets[slot] = a.pos() as u32;
        if code[e].op == Op::LdImm64 && slot + 1 < offsets.len() {
            offsets[slot + 1] = a.pos() as u32;
        }
        a.bind(labels[e]);
        if start[e] && opts.metering {
            let len = (e + 1..n).position(|k| start[k]).map_or(n - e, |k| k + 1);
            a.branch(
                0xb7f8_0000 | FUEL,
                &format!("tbnz {}, #63,", x(FUEL)),
                fuel_out,
                Fix::Imm14,
            );
            if len < 4096 {
                a.add_imm(true, FUEL, FUEL, len as u32);
            } else {
                a.mov_imm(true, T1, len as u64);
                a.rrr(true, 0x4b00_0000, "sub", FUEL, FUEL, T1);
            }
        }
        insn(&mut a, prog, opts, &labels, &mut slow, e, &code[e]);
    }
    let main_end = a.pos();
    // Out of line: memory check slow paths, fuel and unwinding.
    for (l, resume, slot) in slow {
        a.bind(l);
        for (p, q) in [(0, 1), (2, 3), (4, 7), (ADDR, 30)] {
            a.stp_push(p, q);
        }
        a.mov(true, 1, ADDR);
        a.mov_imm(true, 2, slot as u64);
        a.mov(true, 0, CTX);
        a.ctx_ldr(true, 16, 0x40);
        a.blr(16);
        a.mov(true, 16, 0);
        for (p, q) in [(ADDR, 30), (4, 7), (2, 3), (0, 1)] {
            a.ldp_pop(p, q);
        }
        a.branch(0x3500_0000 | 16, "cbnz w16,", resume, Fix::Imm19);
        a.branch(0x1400_0000, "b", unwind, Fix::Imm26);
    }
    a.bind(fuel_out);
    a.ctx_ldr(false, FUEL, 0);
    a.bind(unwind);
    a.ctx_ldr(true, 16, 0x10);
    a.emit(0x9100_021f, "mov sp, x16".into());
    a.ret();
    let insns = a.finish();
    let code = insns.iter().flat_map(|i| i.word.to_le_bytes()).collect();
    Aarch64Listing {
        insns,
        insn_offsets: offsets,
        code,
        main_end,
    }
}

#[allow(clippy::too_many_arguments)]
fn insn(
    a: &mut A64,
    prog: &VmProgram,
    opts: &JitOptions,
    labels: &[Label],
    slow: &mut Vec<(Label, Label, usize)>,
    e: usize,
    i: &VInsn,
) {
    use Op::*;
    let slot = prog.slot(e);
    let (dst, src) = (h(i.dst), h(i.src));
    let wide = !i.op.is_32bit();
    let imm = i.imm;
    // The second operand of an ALU or jump instruction: src, or imm in T1.
    let operand = |a: &mut A64, k: bool| -> u32 {
        if k {
            a.mov_imm(wide, T1, imm as u64);
            T1
        } else {
            src
        }
    };
    let k = matches!(i.op.shape(), Shape::AluK | Shape::JmpK);
    match i.op.shape() {
        Shape::AluK | Shape::AluX => {
            let m = match i.op {
                Mov64K | Mov32K => {
                    a.mov_imm(wide, dst, imm as u64);
                    return;
                }
                Mov64X | Mov32X => {
                    a.mov(wide, dst, src);
                    return;
                }
                _ => operand(a, k),
            };
            let (base, mn) = match i.op {
                Add64K | Add64X | Add32K | Add32X => (0x0b00_0000, "add"),
                Sub64K | Sub64X | Sub32K | Sub32X => (0x4b00_0000, "sub"),
                And64K | And64X | And32K | And32X => (0x0a00_0000, "and"),
                Or64K | Or64X | Or32K | Or32X => (0x2a00_0000, "orr"),
                Xor64K | Xor64X | Xor32K | Xor32X => (0x4a00_0000, "eor"),
                Mul64K | Mul64X | Mul32K | Mul32X => (0x1b00_7c00, "mul"),
                Div64K | Div64X | Div32K | Div32X | Mod64K | Mod64X | Mod32K | Mod32X => {
                    (0x1ac0_0800, "udiv")
                }
                SDiv64K | SDiv64X | SDiv32K | SDiv32X | SMod64K | SMod64X | SMod32K | SMod32X => {
                    (0x1ac0_0c00, "sdiv")
                }
                Lsh64K | Lsh64X | Lsh32K | Lsh32X => (0x1ac0_2000, "lsl"),
                Rsh64K | Rsh64X | Rsh32K | Rsh32X => (0x1ac0_2400, "lsr"),
                _ => (0x1ac0_2800, "asr"),
            };
            let is_mod = matches!(
                i.op,
                Mod64K | Mod64X | Mod32K | Mod32X | SMod64K | SMod64X | SMod32K | SMod32X
            );
            if is_mod {
                a.rrr(wide, base, mn, T2, dst, m);
                a.msub(wide, dst, T2, m, dst);
            } else {
                a.rrr(wide, base, mn, dst, dst, m);
            }
        }
        Shape::Neg => a.rrr(wide, 0x4b00_0000, "sub", dst, XZR, dst),
        Shape::MovSx => {
            let (word, mn, sw) = match i.op {
                MovSx8To64 => (0x9340_1c00, "sxtb", true),
                MovSx16To64 => (0x9340_3c00, "sxth", true),
                MovSx32To64 => (0x9340_7c00, "sxtw", true),
                MovSx8To32 => (0x1300_1c00, "sxtb", false),
                _ => (0x1300_3c00, "sxth", false),
            };
            a.emit(
                word | src << 5 | dst,
                format!("{mn} {}, {}", reg(sw, dst), w(src)),
            );
        }
        Shape::End => match i.op {
            Le16 => a.emit(
                0x5300_3c00 | dst << 5 | dst,
                format!("uxth {}, {}", w(dst), w(dst)),
            ),
            Le32 => a.mov(false, dst, dst),
            Le64 => {}
            Be16 | Bswap16 => {
                a.emit(
                    0x5ac0_0400 | dst << 5 | dst,
                    format!("rev16 {}, {}", w(dst), w(dst)),
                );
                a.emit(
                    0x5300_3c00 | dst << 5 | dst,
                    format!("uxth {}, {}", w(dst), w(dst)),
                );
            }
            Be32 | Bswap32 => a.emit(
                0x5ac0_0800 | dst << 5 | dst,
                format!("rev {}, {}", w(dst), w(dst)),
            ),
            _ => a.emit(
                0xdac0_0c00 | dst << 5 | dst,
                format!("rev {}, {}", x(dst), x(dst)),
            ),
        },
        Shape::Ja | Shape::Ja32 => a.branch(0x1400_0000, "b", labels[i.off as usize], Fix::Imm26),
        Shape::JmpK | Shape::JmpX => {
            let m = operand(a, k);
            let sf = if wide { 1u32 << 31 } else { 0 };
            if matches!(i.op, JsetK | JsetX | Jset32K | Jset32X) {
                a.emit(
                    sf | 0x6a00_001f | m << 16 | dst << 5,
                    format!("tst {}, {}", reg(wide, dst), reg(wide, m)),
                );
            } else {
                a.emit(
                    sf | 0x6b00_001f | m << 16 | dst << 5,
                    format!("cmp {}, {}", reg(wide, dst), reg(wide, m)),
                );
            }
            let (c, mn) = cond(i.op);
            a.branch(
                0x5400_0000 | c,
                &format!("b.{mn}"),
                labels[i.off as usize],
                Fix::Imm19,
            );
        }
        Shape::Exit => a.ret(),
        Shape::MayGoto => {
            // The frame's count, ctx.may_goto[ctx.depth]: 0 jumps, else one less.
            may_goto_slot(a);
            a.emit(
                0xf940_0000 | (MAY_GOTO_OFF / 8) << 10 | T2 << 5 | T1,
                format!("ldr {}, [{}, #{MAY_GOTO_OFF:#x}]", x(T1), x(T2)),
            );
            a.branch(
                0xb400_0000 | T1,
                &format!("cbz {},", x(T1)),
                labels[i.off as usize],
                Fix::Imm19,
            );
            a.add_imm(true, T1, T1, 1);
            a.emit(
                0xf900_0000 | (MAY_GOTO_OFF / 8) << 10 | T2 << 5 | T1,
                format!("str {}, [{}, #{MAY_GOTO_OFF:#x}]", x(T1), x(T2)),
            );
        }
        // Without arena maps: the 32-bit arena offset (see the interpreter).
        Shape::AsCast => a.mov(false, dst, src),
        Shape::Call | Shape::CallX => {
            if i.op == CallLocal {
                let has_may_goto = prog.code.iter().any(|v| v.op == MayGoto);
                for (p, q) in [(19, 20), (21, 22), (25, 30)] {
                    a.stp_push(p, q);
                }
                a.emit(
                    0xd100_0000 | (MAX_BPF_STACK as u32) << 10 | 25 << 5 | 25,
                    format!("sub x25, x25, #{:#x}", MAX_BPF_STACK),
                );
                if has_may_goto {
                    // One frame deeper, with a fresh may_goto count.
                    depth_add(a, false);
                    may_goto_slot(a);
                    a.mov_imm(true, T1, BPF_MAX_LOOPS);
                    a.emit(
                        0xf900_0000 | (MAY_GOTO_OFF / 8) << 10 | T2 << 5 | T1,
                        format!("str {}, [{}, #{MAY_GOTO_OFF:#x}]", x(T1), x(T2)),
                    );
                }
                a.branch(0x9400_0000, "bl", labels[i.off as usize], Fix::Imm26);
                if has_may_goto {
                    depth_add(a, true);
                }
                for (p, q) in [(25, 30), (21, 22), (19, 20)] {
                    a.ldp_pop(p, q);
                }
            } else {
                // The trampoline's address is in the context; r1..r5 are already
                // its argument registers x0..x4.
                a.stp_push(0, 1);
                a.stp_push(2, 3);
                a.stp_push(4, 7);
                a.mov_imm(true, 5, if i.op == Call { i.off as u64 } else { 0 });
                if i.op == CallX {
                    a.mov(true, 5, dst);
                }
                a.mov(true, 6, CTX);
                a.ctx_ldr(true, 16, 0x48);
                a.blr(16);
                a.mov(true, T1, 0);
                a.ldp_pop(4, 7);
                a.ldp_pop(2, 3);
                a.ldp_pop(0, 1);
                a.mov(true, 7, T1);
            }
        }
        Shape::LdAbs | Shape::LdInd => {
            a.stp_push(0, 1);
            a.stp_push(2, 3);
            a.stp_push(4, 30);
            if i.op.shape() == Shape::LdInd {
                a.mov_imm(false, 1, imm as u32 as u64);
                a.rrr(false, 0x0b00_0000, "add", 1, 1, src);
            } else {
                a.mov_imm(false, 1, imm as u32 as u64);
            }
            a.mov_imm(true, 2, i.op.mem_size() as u64);
            a.mov(true, 0, CTX);
            a.ctx_ldr(true, 16, 0x50);
            a.blr(16);
            a.mov(true, 7, 0);
            a.ldp_pop(4, 30);
            a.ldp_pop(2, 3);
            a.ldp_pop(0, 1);
        }
        Shape::LdImm64 => a.mov_imm(true, dst, imm as u64),
        Shape::Ldx | Shape::St | Shape::Stx | Shape::Atomic | Shape::LoadAcq | Shape::StoreRel => {
            let base = if matches!(i.op.shape(), Shape::Ldx | Shape::LoadAcq) {
                src
            } else {
                dst
            };
            let size = i.op.mem_size();
            let off = i.off as i64;
            if (0..4096).contains(&off) {
                a.add_imm(false, ADDR, base, off as u32);
            } else if off < 0 && -off < 4096 {
                a.add_imm(true, ADDR, base, (-off) as u32);
            } else {
                a.mov_imm(true, T1, off as u64);
                a.rrr(true, 0x0b00_0000, "add", ADDR, base, T1);
            }
            let proven = opts
                .proven_safe
                .as_ref()
                .is_some_and(|v| v.get(slot).copied().unwrap_or(false));
            let in_frame =
                base == HOST[10] && off >= -(MAX_BPF_STACK as i64) && off + size as i64 <= 0;
            if opts.checked && !proven && !in_frame {
                // Stack frames in use: [r10 - 512, stack top - size].
                let (l, resume) = (a.label(format!("slow{slot}")), a.label(format!("ok{slot}")));
                a.add_imm(true, T1, 25, MAX_BPF_STACK as u32);
                a.emit(
                    0xeb00_001f | T1 << 16 | ADDR << 5,
                    format!("cmp {}, {}", x(ADDR), x(T1)),
                );
                a.branch(0x5400_0003, "b.lo", l, Fix::Imm19);
                a.ctx_ldr(true, T1, 0x20 + 8 * size.trailing_zeros());
                a.emit(
                    0xeb00_001f | T1 << 16 | ADDR << 5,
                    format!("cmp {}, {}", x(ADDR), x(T1)),
                );
                a.branch(0x5400_0008, "b.hi", l, Fix::Imm19);
                a.bind(resume);
                slow.push((l, resume, slot));
            }
            let sz = match size {
                1 => 0u32,
                2 => 1,
                4 => 2,
                _ => 3,
            };
            match i.op.shape() {
                Shape::Ldx => {
                    let sign = matches!(i.op, LdxSB | LdxSH | LdxSW);
                    let (op, mn) = match (sz, sign) {
                        (0, false) => (0x3940_0000, "ldrb"),
                        (1, false) => (0x7940_0000, "ldrh"),
                        (2, false) => (0xb940_0000, "ldr"),
                        (0, true) => (0x3980_0000, "ldrsb"),
                        (1, true) => (0x7980_0000, "ldrsh"),
                        (2, true) => (0xb980_0000, "ldrsw"),
                        _ => (0xf940_0000, "ldr"),
                    };
                    a.mem(op, mn, sz == 3 || sign, dst, ADDR);
                }
                Shape::St | Shape::Stx => {
                    let v = if i.op.shape() == Shape::St {
                        a.mov_imm(true, T1, imm as u64);
                        T1
                    } else {
                        src
                    };
                    let (op, mn) = [
                        (0x3900_0000, "strb"),
                        (0x7900_0000, "strh"),
                        (0xb900_0000, "str"),
                        (0xf900_0000, "str"),
                    ][sz as usize];
                    a.mem(op, mn, sz == 3, v, ADDR);
                }
                Shape::LoadAcq => {
                    let (op, mn) = [
                        (0x08df_fc00, "ldarb"),
                        (0x48df_fc00, "ldarh"),
                        (0x88df_fc00, "ldar"),
                        (0xc8df_fc00, "ldar"),
                    ][sz as usize];
                    a.mem(op, mn, sz == 3, dst, ADDR);
                }
                Shape::StoreRel => {
                    let (op, mn) = [
                        (0x089f_fc00, "stlrb"),
                        (0x489f_fc00, "stlrh"),
                        (0x889f_fc00, "stlr"),
                        (0xc89f_fc00, "stlr"),
                    ][sz as usize];
                    a.mem(op, mn, sz == 3, src, ADDR);
                }
                _ => {
                    let wide = sz == 3;
                    let szb = if wide { 0xc000_0000u32 } else { 0x8000_0000 };
                    let fetch = matches!(
                        i.op,
                        AtomicFetchAdd32
                            | AtomicFetchAdd64
                            | AtomicFetchOr32
                            | AtomicFetchOr64
                            | AtomicFetchAnd32
                            | AtomicFetchAnd64
                            | AtomicFetchXor32
                            | AtomicFetchXor64
                            | AtomicXchg32
                            | AtomicXchg64
                    );
                    let rt = if fetch { src } else { XZR };
                    let (opc, mn, operand) = match i.op {
                        AtomicAdd32 | AtomicAdd64 | AtomicFetchAdd32 | AtomicFetchAdd64 => {
                            (0x0000, "ldaddal", src)
                        }
                        AtomicOr32 | AtomicOr64 | AtomicFetchOr32 | AtomicFetchOr64 => {
                            (0x3000, "ldsetal", src)
                        }
                        AtomicXor32 | AtomicXor64 | AtomicFetchXor32 | AtomicFetchXor64 => {
                            (0x2000, "ldeoral", src)
                        }
                        AtomicAnd32 | AtomicAnd64 | AtomicFetchAnd32 | AtomicFetchAnd64 => {
                            // and = clear the bits of the complement.
                            let sf = if wide { 1u32 << 31 } else { 0 };
                            a.emit(
                                sf | 0x2a20_03e0 | src << 16 | T1,
                                format!("mvn {}, {}", reg(wide, T1), reg(wide, src)),
                            );
                            (0x1000, "ldclral", T1)
                        }
                        AtomicXchg32 | AtomicXchg64 => (0x8000, "swpal", src),
                        _ => {
                            // cmpxchg: r0 is compared and receives the old value.
                            a.mov(true, T2, 7);
                            a.emit(
                                if wide { 0xc8e0_fc00 } else { 0x88e0_fc00 }
                                    | T2 << 16
                                    | ADDR << 5
                                    | src,
                                format!(
                                    "casal {}, {}, [{}]",
                                    reg(wide, T2),
                                    reg(wide, src),
                                    x(ADDR)
                                ),
                            );
                            a.mov(wide, 7, T2);
                            return;
                        }
                    };
                    a.emit(
                        szb | 0x38e0_0000 | opc | operand << 16 | ADDR << 5 | rt,
                        format!(
                            "{mn} {}, {}, [{}]",
                            reg(wide, operand),
                            reg(wide, rt),
                            x(ADDR)
                        ),
                    );
                }
            }
        }
    }
}

/// Where the run context keeps the depth (u32) and the per-frame `may_goto`
/// counts: the x86-64 JIT's layout.
const DEPTH_OFF: u32 = super::runtime::ctx_off::DEPTH as u32;
const MAY_GOTO_OFF: u32 = super::runtime::ctx_off::MAY_GOTO as u32;

/// T2 = the address of the current frame's count less `MAY_GOTO_OFF`
/// (`ctx + depth * 8`).
fn may_goto_slot(a: &mut A64) {
    a.emit(
        0xb940_0000 | (DEPTH_OFF / 4) << 10 | CTX << 5 | T1,
        format!("ldr {}, [x{CTX}, #{DEPTH_OFF:#x}]", w(T1)),
    );
    a.emit(
        0x8b00_0c00 | T1 << 16 | CTX << 5 | T2,
        format!("add {}, x{CTX}, {}, lsl #3", x(T2), x(T1)),
    );
}

/// ctx.depth += 1 (or -= 1).
fn depth_add(a: &mut A64, sub: bool) {
    a.emit(
        0xb940_0000 | (DEPTH_OFF / 4) << 10 | CTX << 5 | T1,
        format!("ldr {}, [x{CTX}, #{DEPTH_OFF:#x}]", w(T1)),
    );
    let (op, mn) = if sub {
        (0x5100_0400, "sub")
    } else {
        (0x1100_0400, "add")
    };
    a.emit(
        op | T1 << 5 | T1,
        format!("{mn} {}, {}, #0x1", w(T1), w(T1)),
    );
    a.emit(
        0xb900_0000 | (DEPTH_OFF / 4) << 10 | CTX << 5 | T1,
        format!("str {}, [x{CTX}, #{DEPTH_OFF:#x}]", w(T1)),
    );
}

impl VmProgram {
    /// Compiles the program to arm64 code for reading (never run here): the same
    /// structure as the x86-64 JIT's code, with the same options.
    pub fn aarch64_listing(&self, opts: &JitOptions) -> Aarch64Listing {
        generate(self, opts)
    }
}
