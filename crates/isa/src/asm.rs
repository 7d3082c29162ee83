//! Assembler and disassembler for the bpf_conformance `.data` syntax.
//!
//! The bpf_conformance suite (and uBPF before it) writes programs as
//! `mov %r1, 67`, `ldxdw %r0, [%r1+8]`, `jgt %r1, 0x2, L3`, `lock fetch add [%r10-8], %r1`.
//! Every mnemonic is looked up in the one opcode table ([`OPS`]); the row's
//! [`Shape`] decides which operands it takes and which fields they fill. The
//! `.data` file around a program (sections `-- asm`, `-- raw`, `-- mem`, `-- result`,
//! `-- error`, ...) is read by [`parse_data_file`].
//!
//! Upstream conventions kept here: a jump target that starts with `+`/`-` is a
//! numeric offset, anything else is a label; the name `exit`, unless declared as a
//! label, means the first `exit` instruction of the program; `call N` is a helper
//! call, `call local L` a bpf-to-bpf call, `call %rN` a `callx`. Decimal 32-bit
//! immediates must fit `i32`, hex ones may use all 32 bits (`0xffffffff` is -1).

use crate::consts::*;
use crate::insn::Insn;
use crate::opcode::{decode_at, encode, Decoded, Op, Shape, OPS};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::OnceLock;
use thiserror::Error;

/// Why a program or a `.data` file was refused. `line` is 1-based in the text
/// given to [`assemble`] or [`parse_data_file`]; `text` is the offending piece.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AsmError {
    #[error("line {line}: invalid mnemonic `{text}`")]
    InvalidMnemonic { line: usize, text: String },
    #[error("line {line}: `{text}`: {mnemonic} takes {expected} operand(s), found {found}")]
    OperandCount {
        line: usize,
        text: String,
        mnemonic: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("line {line}: invalid register `{text}`")]
    InvalidRegister { line: usize, text: String },
    #[error("line {line}: invalid immediate `{text}`")]
    InvalidImmediate { line: usize, text: String },
    #[error("line {line}: immediate `{text}` out of {bits}-bit range")]
    ImmediateRange {
        line: usize,
        text: String,
        bits: u32,
    },
    #[error("line {line}: invalid memory operand `{text}`, expected [%rN+off]")]
    InvalidMemOperand { line: usize, text: String },
    #[error("line {line}: offset `{text}` out of 16-bit range")]
    OffsetRange { line: usize, text: String },
    #[error("line {line}: invalid jump target `{text}`")]
    InvalidJumpTarget { line: usize, text: String },
    #[error("line {line}: invalid label `{text}`")]
    InvalidLabel { line: usize, text: String },
    #[error("line {line}: duplicate label `{text}` (first declared on line {first_line})")]
    DuplicateLabel {
        line: usize,
        text: String,
        first_line: usize,
    },
    #[error("line {line}: jump to `{text}` does not fit the {bits}-bit offset field")]
    JumpRange {
        line: usize,
        text: String,
        bits: u32,
    },
    #[error("line {line}: unknown directive `{text}`")]
    UnknownDirective { line: usize, text: String },
    #[error("line {line}: invalid raw instruction `{text}`")]
    InvalidRaw { line: usize, text: String },
    #[error("line {line}: invalid memory byte `{text}`")]
    InvalidMem { line: usize, text: String },
    #[error("line {line}: invalid result `{text}`")]
    InvalidResult { line: usize, text: String },
    #[error("line {line}: raw section ends in a partial instruction `{text}`")]
    PartialRaw { line: usize, text: String },
    #[error("line {line}: file has neither an `-- asm` nor a `-- raw` section")]
    NoProgram { line: usize },
}

impl AsmError {
    /// The 1-based line the error refers to.
    pub fn line(&self) -> usize {
        match self {
            AsmError::InvalidMnemonic { line, .. }
            | AsmError::OperandCount { line, .. }
            | AsmError::InvalidRegister { line, .. }
            | AsmError::InvalidImmediate { line, .. }
            | AsmError::ImmediateRange { line, .. }
            | AsmError::InvalidMemOperand { line, .. }
            | AsmError::OffsetRange { line, .. }
            | AsmError::InvalidJumpTarget { line, .. }
            | AsmError::InvalidLabel { line, .. }
            | AsmError::DuplicateLabel { line, .. }
            | AsmError::JumpRange { line, .. }
            | AsmError::UnknownDirective { line, .. }
            | AsmError::InvalidRaw { line, .. }
            | AsmError::InvalidMem { line, .. }
            | AsmError::InvalidResult { line, .. }
            | AsmError::PartialRaw { line, .. }
            | AsmError::NoProgram { line, .. } => *line,
        }
    }
}

/// Table rows by conformance mnemonic (`add` gives both `Add64K` and `Add64X`).
fn rows_by_mnemonic() -> &'static HashMap<&'static str, Vec<Op>> {
    static T: OnceLock<HashMap<&'static str, Vec<Op>>> = OnceLock::new();
    T.get_or_init(|| {
        let mut m: HashMap<&'static str, Vec<Op>> = HashMap::new();
        for r in OPS {
            m.entry(r.mnemonic).or_default().push(r.op);
        }
        m
    })
}

/// Resolves a mnemonic, including the spellings upstream accepts beside the
/// table's: `swap16` for `bswap16`, `add64` for `add`, `call runtime`/`call helper`.
fn lookup(mnemonic: &str) -> Option<&'static [Op]> {
    let t = rows_by_mnemonic();
    if let Some(v) = t.get(mnemonic) {
        return Some(v);
    }
    if let Some(w) = mnemonic.strip_prefix("swap") {
        return t.get(format!("bswap{w}").as_str()).map(|v| &v[..]);
    }
    match mnemonic {
        "call helper" => return t.get("call").map(|v| &v[..]),
        "call runtime" => return t.get("call kfunc").map(|v| &v[..]),
        _ => {}
    }
    // `add64` etc.: explicit 64-bit spelling of an ALU64 row.
    let base = mnemonic.strip_suffix("64")?;
    let v = t.get(base)?;
    v.iter()
        .all(|op| {
            op.class() == BPF_ALU64 && matches!(op.shape(), Shape::AluK | Shape::AluX | Shape::Neg)
        })
        .then_some(&v[..])
}

fn operand_count(shape: Shape) -> usize {
    match shape {
        Shape::Exit => 0,
        Shape::Neg
        | Shape::End
        | Shape::Ja
        | Shape::Ja32
        | Shape::Call
        | Shape::CallX
        | Shape::LdAbs => 1,
        Shape::JmpK | Shape::JmpX => 3,
        Shape::MayGoto => 1,
        Shape::AsCast => 4,
        _ => 2,
    }
}

/// A parsed integer literal: decimal or `0x` hex, optional sign.
struct Num {
    value: i128,
    hex: bool,
}

fn parse_num(s: &str) -> Option<Num> {
    let s = s.trim();
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (hex, digits) = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(h) => (true, h),
        None => (false, body),
    };
    if digits.is_empty() || digits.len() > 32 {
        return None;
    }
    let v = if hex {
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        i128::from_str_radix(digits, 16).ok()?
    } else {
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<i128>().ok()?
    };
    Some(Num {
        value: if neg { -v } else { v },
        hex,
    })
}

/// State for one `assemble` run.
struct Ctx {
    line: usize,
}

impl Ctx {
    fn reg(&self, s: &str) -> Result<u8, AsmError> {
        let s = s.trim();
        let n = s
            .strip_prefix("%r")
            .filter(|d| !d.is_empty() && d.len() <= 2 && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<u8>().ok())
            .filter(|&n| n <= BPF_REG_FP);
        n.ok_or_else(|| AsmError::InvalidRegister {
            line: self.line,
            text: s.to_string(),
        })
    }

    /// A 32-bit immediate: decimal must fit i32, hex may use all 32 bits.
    fn imm32(&self, s: &str) -> Result<i32, AsmError> {
        let n = parse_num(s).ok_or_else(|| AsmError::InvalidImmediate {
            line: self.line,
            text: s.trim().to_string(),
        })?;
        let ok = if n.hex && n.value >= 0 {
            n.value <= u32::MAX as i128
        } else {
            (i32::MIN as i128..=i32::MAX as i128).contains(&n.value)
        };
        if !ok {
            return Err(AsmError::ImmediateRange {
                line: self.line,
                text: s.trim().to_string(),
                bits: 32,
            });
        }
        Ok(n.value as u32 as i32)
    }

    /// An address space number of `addr_space_cast` (16 bits).
    fn addr_space(&self, s: &str) -> Result<u32, AsmError> {
        let n = parse_num(s).ok_or_else(|| AsmError::InvalidImmediate {
            line: self.line,
            text: s.trim().to_string(),
        })?;
        u16::try_from(n.value)
            .map(u32::from)
            .map_err(|_| AsmError::ImmediateRange {
                line: self.line,
                text: s.trim().to_string(),
                bits: 16,
            })
    }

    fn imm64(&self, s: &str) -> Result<i64, AsmError> {
        let n = parse_num(s).ok_or_else(|| AsmError::InvalidImmediate {
            line: self.line,
            text: s.trim().to_string(),
        })?;
        if !(i64::MIN as i128..=u64::MAX as i128).contains(&n.value) {
            return Err(AsmError::ImmediateRange {
                line: self.line,
                text: s.trim().to_string(),
                bits: 64,
            });
        }
        Ok(n.value as u64 as i64)
    }

    fn off16(&self, s: &str) -> Result<i16, AsmError> {
        let n = parse_num(s).ok_or_else(|| AsmError::InvalidMemOperand {
            line: self.line,
            text: s.trim().to_string(),
        })?;
        i16::try_from(n.value).map_err(|_| AsmError::OffsetRange {
            line: self.line,
            text: s.trim().to_string(),
        })
    }

    /// `[%rN]`, `[%rN+off]`, `[%rN-off]`.
    fn mem(&self, s: &str) -> Result<(u8, i16), AsmError> {
        let s = s.trim();
        let bad = || AsmError::InvalidMemOperand {
            line: self.line,
            text: s.to_string(),
        };
        let inner = s
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .ok_or_else(bad)?;
        match inner.find(['+', '-']) {
            None => Ok((self.reg(inner)?, 0)),
            Some(i) => {
                let reg = self.reg(&inner[..i])?;
                let off: String = inner[i..].chars().filter(|c| !c.is_whitespace()).collect();
                Ok((reg, self.off16(&off)?))
            }
        }
    }
}

/// A jump or local-call target still to be resolved.
enum Target {
    Label(String),
    Offset(i64),
}

fn is_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b'.')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
}

fn target(ctx: &Ctx, s: &str) -> Result<Target, AsmError> {
    let s = s.trim();
    if s.starts_with(['+', '-']) {
        let n = parse_num(s).ok_or_else(|| AsmError::InvalidJumpTarget {
            line: ctx.line,
            text: s.to_string(),
        })?;
        let v = i64::try_from(n.value).map_err(|_| AsmError::InvalidJumpTarget {
            line: ctx.line,
            text: s.to_string(),
        })?;
        Ok(Target::Offset(v))
    } else if is_label_name(s) {
        Ok(Target::Label(s.to_string()))
    } else {
        Err(AsmError::InvalidJumpTarget {
            line: ctx.line,
            text: s.to_string(),
        })
    }
}

/// One instruction before label resolution.
struct Pending {
    line: usize,
    slot: usize,
    d: Decoded,
    target: Option<Target>,
}

/// Splits `lock fetch add32 [%r10-8], %r1` into (`lock fetch add32`, operands).
fn split_mnemonic(text: &str) -> (String, &str) {
    let mut rest = text.trim();
    let mut words: Vec<&str> = Vec::new();
    loop {
        let (w, r) = match rest.find(char::is_whitespace) {
            Some(i) => (&rest[..i], rest[i..].trim_start()),
            None => (rest, ""),
        };
        let more = match words.as_slice() {
            [] => true,
            ["lock"] => true,
            ["lock", "fetch"] => true,
            ["call"] => matches!(w, "local" | "helper" | "kfunc" | "runtime"),
            _ => false,
        };
        if !more || w.is_empty() {
            break;
        }
        words.push(w);
        rest = r;
        if !matches!(words.as_slice(), ["lock"] | ["lock", "fetch"] | ["call"]) {
            break;
        }
    }
    (words.join(" "), rest)
}

fn parse_insn(ctx: &Ctx, text: &str) -> Result<(Decoded, Option<Target>), AsmError> {
    let (mnemonic, rest) = split_mnemonic(text);
    let ops: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split(',').map(str::trim).collect()
    };
    let Some(rows) = lookup(&mnemonic) else {
        // `lock` with a missing or unknown operation is an operand problem upstream.
        if mnemonic.starts_with("lock") {
            return Err(AsmError::OperandCount {
                line: ctx.line,
                text: text.trim().to_string(),
                mnemonic: "lock",
                expected: 3,
                found: ops.len() + mnemonic.split(' ').count() - 1,
            });
        }
        return Err(AsmError::InvalidMnemonic {
            line: ctx.line,
            text: mnemonic,
        });
    };
    let is_reg = |s: &str| s.trim_start().starts_with('%');
    // Pick among rows sharing the mnemonic: BPF_K vs BPF_X by the source operand;
    // `call %rN` is callx.
    let op = match rows {
        [one] if one.shape() == Shape::Call && ops.len() == 1 && is_reg(ops[0]) => Op::CallX,
        [one] => *one,
        [] => {
            return Err(AsmError::InvalidMnemonic {
                line: ctx.line,
                text: mnemonic,
            })
        }
        many => {
            // The source operand is the second one for both ALU and jumps.
            let src_is_reg = ops.get(1).is_some_and(|s| is_reg(s));
            let want = |s: Shape| matches!(s, Shape::AluX | Shape::JmpX) == src_is_reg;
            *many.iter().find(|op| want(op.shape())).unwrap_or(&many[0])
        }
    };
    let info = op.info();
    let expected = operand_count(info.shape);
    if ops.len() != expected {
        return Err(AsmError::OperandCount {
            line: ctx.line,
            text: text.trim().to_string(),
            mnemonic: info.mnemonic,
            expected,
            found: ops.len(),
        });
    }
    let mut d = Decoded {
        op,
        dst: 0,
        src: 0,
        off: 0,
        imm: 0,
    };
    let mut tgt = None;
    match info.shape {
        Shape::AluK => {
            d.dst = ctx.reg(ops[0])?;
            d.imm = ctx.imm32(ops[1])? as i64;
        }
        Shape::AluX | Shape::MovSx => {
            d.dst = ctx.reg(ops[0])?;
            d.src = ctx.reg(ops[1])?;
        }
        Shape::Neg | Shape::End | Shape::CallX => d.dst = ctx.reg(ops[0])?,
        Shape::JmpK => {
            d.dst = ctx.reg(ops[0])?;
            d.imm = ctx.imm32(ops[1])? as i64;
            tgt = Some(target(ctx, ops[2])?);
        }
        Shape::JmpX => {
            d.dst = ctx.reg(ops[0])?;
            d.src = ctx.reg(ops[1])?;
            tgt = Some(target(ctx, ops[2])?);
        }
        Shape::Ja | Shape::Ja32 => tgt = Some(target(ctx, ops[0])?),
        Shape::Call => {
            if op == Op::CallLocal {
                tgt = Some(target(ctx, ops[0])?);
            } else {
                d.imm = ctx.imm32(ops[0])? as i64;
            }
        }
        Shape::Exit => {}
        Shape::LdImm64 => {
            d.dst = ctx.reg(ops[0])?;
            d.imm = ctx.imm64(ops[1])?;
        }
        Shape::LdAbs => d.imm = ctx.imm32(ops[0])? as i64,
        Shape::LdInd => {
            d.src = ctx.reg(ops[0])?;
            d.imm = ctx.imm32(ops[1])? as i64;
        }
        Shape::Ldx => {
            d.dst = ctx.reg(ops[0])?;
            (d.src, d.off) = ctx.mem(ops[1])?;
        }
        Shape::St => {
            (d.dst, d.off) = ctx.mem(ops[0])?;
            d.imm = ctx.imm32(ops[1])? as i64;
        }
        Shape::Stx | Shape::Atomic | Shape::StoreRel => {
            (d.dst, d.off) = ctx.mem(ops[0])?;
            d.src = ctx.reg(ops[1])?;
        }
        Shape::LoadAcq => {
            d.dst = ctx.reg(ops[0])?;
            (d.src, d.off) = ctx.mem(ops[1])?;
        }
        Shape::MayGoto => tgt = Some(target(ctx, ops[0])?),
        // `addr_space_cast %rD, %rS, TO_AS, FROM_AS`
        Shape::AsCast => {
            d.dst = ctx.reg(ops[0])?;
            d.src = ctx.reg(ops[1])?;
            let to = ctx.addr_space(ops[2])?;
            let from = ctx.addr_space(ops[3])?;
            d.imm = ((to << 16) | from) as i32 as i64;
        }
    }
    Ok((d, tgt))
}

/// Assembles a program in bpf_conformance syntax into instruction slots.
pub fn assemble(src: &str) -> Result<Vec<Insn>, AsmError> {
    assemble_from_line(src, 1)
}

/// As [`assemble`], numbering `src`'s first line `first_line` (for `.data` files).
fn assemble_from_line(src: &str, first_line: usize) -> Result<Vec<Insn>, AsmError> {
    let mut labels: HashMap<String, (usize, usize)> = HashMap::new();
    let mut pending: Vec<Pending> = Vec::new();
    let mut slot = 0usize;
    let mut first_exit: Option<usize> = None;
    for (i, raw) in src.lines().enumerate() {
        let line = first_line + i;
        let ctx = Ctx { line };
        let mut text = raw.split('#').next().unwrap_or("").trim();
        // `name:` declares a label at the next instruction; an instruction may follow.
        if let Some(colon) = text.find(':') {
            let name = text[..colon].trim();
            if is_label_name(name) && !name.contains(char::is_whitespace) {
                if let Some(&(_, first)) = labels.get(name) {
                    return Err(AsmError::DuplicateLabel {
                        line,
                        text: name.to_string(),
                        first_line: first,
                    });
                }
                labels.insert(name.to_string(), (slot, line));
                text = text[colon + 1..].trim();
            }
        }
        if text.is_empty() {
            continue;
        }
        let (d, target) = parse_insn(&ctx, text)?;
        if d.op == Op::Exit && first_exit.is_none() {
            first_exit = Some(slot);
        }
        pending.push(Pending {
            line,
            slot,
            d,
            target,
        });
        slot += d.slots();
    }
    let mut out = Vec::with_capacity(slot);
    for mut p in pending {
        if let Some(t) = p.target.take() {
            let (delta, text) = match t {
                Target::Offset(v) => (v, format!("{v:+}")),
                Target::Label(name) => {
                    // Upstream: `exit`, unless declared, names the first exit instruction.
                    let implicit = if name == "exit" { first_exit } else { None };
                    let to = match labels.get(&name).map(|&(s, _)| s).or(implicit) {
                        Some(s) => s,
                        None => {
                            return Err(AsmError::InvalidLabel {
                                line: p.line,
                                text: name,
                            })
                        }
                    };
                    (to as i64 - p.slot as i64 - 1, name)
                }
            };
            let wide = matches!(p.d.op.shape(), Shape::Ja32 | Shape::Call);
            if wide {
                p.d.imm = i32::try_from(delta).map_err(|_| AsmError::JumpRange {
                    line: p.line,
                    text,
                    bits: 32,
                })? as i64;
            } else {
                p.d.off = i16::try_from(delta).map_err(|_| AsmError::JumpRange {
                    line: p.line,
                    text,
                    bits: 16,
                })?;
            }
        }
        out.extend(encode(&p.d));
    }
    Ok(out)
}

/// Prints one decoded instruction in conformance syntax. Jump targets are numeric
/// (`+3`, `-2`), so the text needs no labels and re-assembles to the same slots.
pub fn conformance_insn_text(d: &Decoded) -> String {
    let info = d.op.info();
    let m = info.mnemonic;
    let (dst, src, off, imm) = (d.dst, d.src, d.off, d.imm32());
    let mem = |r: u8| {
        if off < 0 {
            format!("[%r{r}-{}]", -(off as i32))
        } else {
            format!("[%r{r}+{off}]")
        }
    };
    match info.shape {
        Shape::AluK => format!("{m} %r{dst}, {imm}"),
        Shape::AluX | Shape::MovSx => format!("{m} %r{dst}, %r{src}"),
        Shape::Neg | Shape::End => format!("{m} %r{dst}"),
        Shape::JmpK => format!("{m} %r{dst}, {imm}, {off:+}"),
        Shape::JmpX => format!("{m} %r{dst}, %r{src}, {off:+}"),
        Shape::Ja => format!("{m} {off:+}"),
        Shape::Ja32 => format!("{m} {imm:+}"),
        Shape::Call if d.op == Op::CallLocal => format!("{m} {imm:+}"),
        Shape::Call => format!("{m} {imm}"),
        // Upstream spells callx as `call %rN`.
        Shape::CallX => format!("call %r{dst}"),
        Shape::Exit => m.to_string(),
        Shape::LdImm64 => format!("{m} %r{dst}, {:#x}", d.imm as u64),
        Shape::LdAbs => format!("{m} {imm}"),
        Shape::LdInd => format!("{m} %r{src}, {imm}"),
        Shape::Ldx => format!("{m} %r{dst}, {}", mem(src)),
        Shape::St => format!("{m} {}, {imm}", mem(dst)),
        Shape::Stx | Shape::Atomic | Shape::StoreRel => format!("{m} {}, %r{src}", mem(dst)),
        Shape::LoadAcq => format!("{m} %r{dst}, {}", mem(src)),
        Shape::MayGoto => format!("{m} {off:+}"),
        Shape::AsCast => format!(
            "{m} %r{dst}, %r{src}, {}, {}",
            (imm as u32) >> 16,
            imm as u32 & 0xffff
        ),
    }
}

/// Disassembles slots into conformance syntax, one instruction per line, such that
/// `assemble(&disassemble_conformance(p)) == p` for every valid program without
/// pseudo sources. Slots that do not decode are printed as `# ` comments carrying
/// the raw value and the reason, so the output never lies about them.
pub fn disassemble_conformance(insns: &[Insn]) -> String {
    let mut out = String::new();
    let mut pc = 0;
    while pc < insns.len() {
        match decode_at(insns, pc) {
            Ok(d) => {
                out.push_str(&conformance_insn_text(&d));
                if d.op == Op::LdImm64 && d.src != 0 {
                    // The syntax has no pseudo sources; say so rather than drop it silently.
                    let _ = write!(out, " # src_reg={}", d.src);
                }
                out.push('\n');
                pc += d.slots();
            }
            Err(e) => {
                let _ = writeln!(out, "# {:#018x}: {e}", insns[pc].to_u64());
                pc += 1;
            }
        }
    }
    out
}

/// One bpf_conformance test file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataFile {
    /// The `-- asm` section verbatim (comments included).
    pub asm: Option<String>,
    /// The `-- raw` section: one `0x...` u64 per line, or 8 hex bytes per slot.
    pub raw: Option<Vec<Insn>>,
    /// The `-- mem` section: the input buffer the program gets in r1 (length in r2).
    pub mem: Vec<u8>,
    /// The `-- result` section: the expected r0.
    pub result: Option<u64>,
    /// The `-- error` section: the expected failure text (may be empty).
    pub error: Option<String>,
    /// The `-- c` section (source the program was compiled from), verbatim.
    pub c: Option<String>,
    /// Flag sections such as `no register offset`.
    pub options: Vec<String>,
    /// 1-based line of the first `-- asm` body line, so errors point into the file.
    pub asm_line: usize,
}

impl DataFile {
    /// The program: `-- raw` if present (it is authoritative upstream), else the
    /// assembled `-- asm`.
    pub fn program(&self) -> Result<Vec<Insn>, AsmError> {
        if let Some(raw) = &self.raw {
            return Ok(raw.clone());
        }
        match &self.asm {
            Some(a) => assemble_from_line(a, self.asm_line),
            None => Err(AsmError::NoProgram { line: 1 }),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Preamble,
    Asm,
    Raw,
    Mem,
    Result,
    Error,
    C,
    Ignored,
}

/// Parses a bpf_conformance `.data` file. The `-- asm` section is kept as text
/// (assemble it with [`DataFile::program`]); the others are parsed here.
pub fn parse_data_file(text: &str) -> Result<DataFile, AsmError> {
    let mut f = DataFile::default();
    let mut sec = Section::Preamble;
    let mut raw_bytes: Vec<u8> = Vec::new();
    let mut raw_last = (0usize, String::new());
    let mut raw_slots: Vec<Insn> = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        let l = l.strip_suffix('\r').unwrap_or(l);
        if let Some(dir) = l.trim_start().strip_prefix("--") {
            let dir = dir.trim();
            sec = match dir {
                "asm" => {
                    f.asm.get_or_insert_with(String::new);
                    f.asm_line = line + 1;
                    Section::Asm
                }
                "raw" => {
                    f.raw.get_or_insert_with(Vec::new);
                    Section::Raw
                }
                "mem" => Section::Mem,
                "result" => Section::Result,
                "error" => {
                    f.error.get_or_insert_with(String::new);
                    Section::Error
                }
                "c" => {
                    f.c.get_or_insert_with(String::new);
                    Section::C
                }
                "no register offset" => {
                    f.options.push(dir.to_string());
                    Section::Ignored
                }
                _ => {
                    return Err(AsmError::UnknownDirective {
                        line,
                        text: dir.to_string(),
                    })
                }
            };
            continue;
        }
        let body = l.split('#').next().unwrap_or("").trim();
        match sec {
            Section::Preamble | Section::Ignored => {}
            Section::Asm => {
                let a = f.asm.get_or_insert_with(String::new);
                a.push_str(l);
                a.push('\n');
            }
            Section::C => {
                let c = f.c.get_or_insert_with(String::new);
                c.push_str(l);
                c.push('\n');
            }
            Section::Error => {
                if !l.trim().is_empty() {
                    let e = f.error.get_or_insert_with(String::new);
                    if !e.is_empty() {
                        e.push('\n');
                    }
                    e.push_str(l.trim());
                }
            }
            Section::Result if !body.is_empty() => {
                let n = parse_num(body)
                    .filter(|n| (i64::MIN as i128..=u64::MAX as i128).contains(&n.value))
                    .ok_or_else(|| AsmError::InvalidResult {
                        line,
                        text: body.to_string(),
                    })?;
                f.result = Some(n.value as u64);
            }
            Section::Mem => {
                for tok in body.split_whitespace() {
                    let t = tok.strip_prefix("0x").unwrap_or(tok);
                    let b = (t.len() <= 2)
                        .then(|| u8::from_str_radix(t, 16).ok())
                        .flatten()
                        .ok_or_else(|| AsmError::InvalidMem {
                            line,
                            text: tok.to_string(),
                        })?;
                    f.mem.push(b);
                }
            }
            Section::Raw if !body.is_empty() => {
                let toks: Vec<&str> = body.split_whitespace().collect();
                let bad = || AsmError::InvalidRaw {
                    line,
                    text: body.to_string(),
                };
                if toks.len() == 1 && raw_bytes.is_empty() {
                    // One little-endian u64 per slot.
                    let n =
                        parse_num(toks[0]).filter(|n| (0..=u64::MAX as i128).contains(&n.value));
                    raw_slots.push(Insn::from_u64(n.ok_or_else(bad)?.value as u64));
                } else {
                    for t in toks {
                        let b = (t.len() == 2)
                            .then(|| u8::from_str_radix(t, 16).ok())
                            .flatten()
                            .ok_or_else(bad)?;
                        raw_bytes.push(b);
                        if raw_bytes.len() == 8 {
                            let arr: [u8; 8] = raw_bytes[..].try_into().map_err(|_| bad())?;
                            raw_slots.push(Insn::from_bytes(arr));
                            raw_bytes.clear();
                        }
                    }
                    raw_last = (line, body.to_string());
                }
            }
            Section::Result | Section::Raw => {}
        }
    }
    if !raw_bytes.is_empty() {
        return Err(AsmError::PartialRaw {
            line: raw_last.0,
            text: raw_last.1,
        });
    }
    if let Some(r) = f.raw.as_mut() {
        *r = raw_slots;
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str) -> Insn {
        let p = assemble(src).unwrap();
        assert_eq!(p.len(), 1, "{src}");
        p[0]
    }

    #[test]
    fn encodes_each_shape() {
        assert_eq!(one("mov %r1, 67"), Insn::new(0xb7, 1, 0, 0, 67));
        assert_eq!(one("mov32 %r0, 0xffffffff"), Insn::new(0xb4, 0, 0, 0, -1));
        assert_eq!(one("add64 %r1, %r2"), Insn::new(0x0f, 1, 2, 0, 0));
        assert_eq!(one("sdiv32 %r1, 3"), Insn::new(0x34, 1, 0, 1, 3));
        assert_eq!(one("smod %r1, %r2"), Insn::new(0x9f, 1, 2, 1, 0));
        assert_eq!(one("movsx1664 %r1, %r2"), Insn::new(0xbf, 1, 2, 16, 0));
        assert_eq!(one("swap16 %r3"), Insn::new(0xd7, 3, 0, 0, 16));
        assert_eq!(one("be64 %r3"), Insn::new(0xdc, 3, 0, 0, 64));
        assert_eq!(one("neg32 %r3"), Insn::new(0x84, 3, 0, 0, 0));
        assert_eq!(one("ldxsh %r0, [%r1-2]"), Insn::new(0x89, 0, 1, -2, 0));
        assert_eq!(one("ldxdw %r0, [%r1]"), Insn::new(0x79, 0, 1, 0, 0));
        assert_eq!(one("stw [%r1+2], 0x12"), Insn::new(0x62, 1, 0, 2, 0x12));
        assert_eq!(one("stxw [%r10-8], %r1"), Insn::new(0x63, 10, 1, -8, 0));
        assert_eq!(
            one("lock fetch add32 [%r10-4], %r1"),
            Insn::new(0xc3, 10, 1, -4, 1)
        );
        assert_eq!(
            one("lock cmpxchg [%r10-8], %r1"),
            Insn::new(0xdb, 10, 1, -8, 0xf1)
        );
        assert_eq!(one("call 5"), Insn::new(0x85, 0, 0, 0, 5));
        assert_eq!(one("call %r2"), Insn::new(0x8d, 2, 0, 0, 0));
        assert_eq!(one("jeq %r1, 0, -3"), Insn::new(0x15, 1, 0, -3, 0));
        assert_eq!(one("jsgt32 %r1, %r2, +7"), Insn::new(0x6e, 1, 2, 7, 0));
        assert_eq!(one("ja32 -1"), Insn::new(0x06, 0, 0, 0, -1));
        assert_eq!(one("exit"), Insn::new(0x95, 0, 0, 0, 0));
        assert_eq!(
            assemble("lddw %r0, 0x1122334455667788").unwrap(),
            vec![
                Insn::from_u64(0x5566778800000018),
                Insn::from_u64(0x1122334400000000)
            ]
        );
    }

    #[test]
    fn labels_and_the_implicit_exit_label() {
        let p = assemble("ja exit\nL: mov %r0, 1\nexit\njne %r0, 0, L\ncall local f\nf:\nexit")
            .unwrap();
        assert_eq!(p[0].off, 1);
        assert_eq!(p[3].off, -3);
        assert_eq!(p[4].imm, 0);
        assert!(matches!(
            assemble("ja nowhere\nexit"),
            Err(AsmError::InvalidLabel { line: 1, .. })
        ));
        assert!(matches!(
            assemble("a:\na:\nexit"),
            Err(AsmError::DuplicateLabel { line: 2, .. })
        ));
    }

    #[test]
    fn ranges() {
        assert!(assemble("mov32 %r0, 2147483647").is_ok());
        assert!(assemble("mov32 %r0, -2147483648").is_ok());
        assert!(matches!(
            assemble("mov32 %r0, 2147483648"),
            Err(AsmError::ImmediateRange { .. })
        ));
        assert!(matches!(
            assemble("mov32 %r0, 0x100000000"),
            Err(AsmError::ImmediateRange { .. })
        ));
        assert!(matches!(
            assemble("ldxb %r0, [%r1+0x10000]"),
            Err(AsmError::OffsetRange { .. })
        ));
        assert!(matches!(
            assemble("ldxb %r0, [%r1+32768]"),
            Err(AsmError::OffsetRange { .. })
        ));
        assert!(assemble("ldxb %r0, [%r1-32768]").is_ok());
        assert!(matches!(
            assemble("or %r0, %r11"),
            Err(AsmError::InvalidRegister { .. })
        ));
        assert!(matches!(
            assemble("lock"),
            Err(AsmError::OperandCount { .. })
        ));
        assert!(matches!(
            assemble("lock or [%r10-8]"),
            Err(AsmError::OperandCount { .. })
        ));
    }
}
