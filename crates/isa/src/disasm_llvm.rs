//! llvm-objdump syntax: the C-like text LLVM 19's BPF instruction printer gives
//! one instruction (`r1 = *(u32 *)(r6 + 0x0)`, `if w1 > 0x8 goto +0x1`,
//! `r0 = atomic_fetch_add((u64 *)(r1 + 0x0), r0)`, ...).
//!
//! Operators come from the opcode table's `sym` column; this module only knows
//! LLVM's layout around them. The text follows llvm-objdump's default subtarget
//! (no `+alu32`): registers of 32-bit loads and stores print as `rN`, and of the
//! 32-bit atomics only `lock *(u32 *)(..) += rN` has a syntax (LLVM's decoder
//! also takes `BPF_FETCH` there and ignores it); the others print as
//! [`LLVM_UNKNOWN`], as llvm-objdump does. Immediates are in hex
//! (`--print-imm-hex` is llvm-objdump's default), negative ones as `-0x..`.
//!
//! Two entry points: [`llvm_insn_text`] prints what the table accepts (strict
//! RFC 9669 decoding); [`llvm_decode`] decodes raw bytes as LLVM's own decoder
//! does, lenient about reserved fields, which is what `bpfvm objdump` needs to
//! match llvm-objdump on any input.

use crate::opcode::{decode_at, DecodeError, Decoded, Op, Shape};
use crate::Insn;

/// What llvm-objdump prints for bytes its BPF decoder rejects.
pub const LLVM_UNKNOWN: &str = "<unknown>";

/// `MCInstPrinter::formatHex` for a signed value: `0x1f`, `-0x8`.
pub fn llvm_hex(v: i64) -> String {
    if v < 0 {
        format!("-{:#x}", (v as i128).unsigned_abs())
    } else {
        format!("{v:#x}")
    }
}

/// The `(rN + 0x8)` / `(rN - 0x8)` memory operand.
fn mem(reg: u8, off: i16) -> String {
    let off = off as i64;
    if off >= 0 {
        format!("r{reg} + {}", llvm_hex(off))
    } else {
        format!("r{reg} - {}", llvm_hex(-off))
    }
}

/// The C type LLVM names an access of `size` bytes by.
fn utype(size: usize) -> &'static str {
    match size {
        1 => "u8",
        2 => "u16",
        4 => "u32",
        _ => "u64",
    }
}

/// Register prefix of an ALU/JMP op: `w` for the 32-bit classes.
fn reg_prefix(op: Op) -> char {
    if op.is_32bit() {
        'w'
    } else {
        'r'
    }
}

/// Text of the instruction at `pc` (which may span two slots), as llvm-objdump
/// prints it after the raw bytes. Instructions LLVM cannot decode with its default
/// subtarget give [`LLVM_UNKNOWN`]; slots that are no instruction at all give the
/// table's [`DecodeError`].
///
/// Jump offsets print as LLVM does (`goto +0x3`); the ` <sym+0x..>` target
/// annotation is the object dumper's job (see [`llvm_branch_target`]). A `pc`
/// past the end of `insns` is reported as a truncated instruction.
pub fn llvm_insn_text(insns: &[Insn], pc: usize) -> Result<String, DecodeError> {
    if pc >= insns.len() {
        return Err(DecodeError::LdImm64Truncated { pc });
    }
    let d = decode_at(insns, pc)?;
    Ok(llvm_text(&d))
}

/// Text of an already decoded instruction (see [`llvm_insn_text`]).
pub fn llvm_text(d: &Decoded) -> String {
    let op = d.op;
    let info = op.info();
    let sym = info.sym;
    let w = reg_prefix(op);
    let (dst, src) = (d.dst, d.src);
    match info.shape {
        Shape::AluK => format!("{w}{dst} {sym} {}", llvm_hex(d.imm32() as i64)),
        Shape::AluX => format!("{w}{dst} {sym} {w}{src}"),
        Shape::Neg => format!("{w}{dst} = -{w}{dst}"),
        // le/be are ALU-class but LLVM prints them on the 64-bit register.
        Shape::End => format!("r{dst} = {sym} r{dst}"),
        Shape::MovSx => format!("{w}{dst} = ({sym}){w}{src}"),
        Shape::JmpK => format!(
            "if {w}{dst} {sym} {} goto {}",
            llvm_hex(d.imm32() as i64),
            signed_off(d.off as i64)
        ),
        Shape::JmpX => format!(
            "if {w}{dst} {sym} {w}{src} goto {}",
            signed_off(d.off as i64)
        ),
        Shape::Ja => format!("goto {}", signed_off(d.off as i64)),
        Shape::Ja32 => format!("gotol {}", signed_off(d.imm32() as i64)),
        // LLVM prints the immediate whatever src_reg says (helper, local, kfunc).
        Shape::Call => format!("call {}", llvm_hex(d.imm32() as i64)),
        Shape::CallX => format!("callx r{dst}"),
        Shape::Exit => "exit".to_string(),
        Shape::LdImm64 => {
            if src == 0 {
                format!("r{dst} = {} ll", llvm_hex(d.imm))
            } else {
                // LD_pseudo: LLVM folds the second slot's imm into the pseudo
                // operand, printed as 32 bits, and shows the first imm unsigned.
                format!(
                    "ld_pseudo\tr{dst}, {}, {}",
                    llvm_hex(src as i64),
                    llvm_hex(d.imm32() as u32 as i64)
                )
            }
        }
        Shape::LdAbs => format!("r0 = *({} *)skb[{}]", sym, llvm_hex(d.imm32() as i64)),
        Shape::LdInd => format!("r0 = *({} *)skb[r{src}]", sym),
        Shape::Ldx => format!("r{dst} = *({} *)({})", sym, mem(src, d.off)),
        Shape::St => format!(
            "*({} *)({}) = {}",
            sym,
            mem(dst, d.off),
            llvm_hex(d.imm32() as i64)
        ),
        Shape::Stx => format!("*({} *)({}) = r{src}", sym, mem(dst, d.off)),
        Shape::Atomic => atomic_text(d),
        Shape::MayGoto => format!("may_goto {}", signed_off(d.off as i64)),
        Shape::AsCast => format!(
            "r{dst} = addr_space_cast(r{src}, {}, {})",
            llvm_hex((d.imm32() as u32 >> 16) as i64),
            llvm_hex((d.imm32() as u32 & 0xffff) as i64)
        ),
        // LLVM 19 has no syntax for these (its decoder reads the bytes as
        // `lock ... +=` or gives up, see `llvm_decode`); this is LLVM 22's,
        // which names sub-64-bit values by their `w` register.
        Shape::LoadAcq => {
            let w = if op.mem_size() == 8 { 'r' } else { 'w' };
            format!("{w}{dst} = load_acquire(({sym} *)({}))", mem(src, d.off))
        }
        Shape::StoreRel => {
            let w = if op.mem_size() == 8 { 'r' } else { 'w' };
            format!("store_release(({sym} *)({}), {w}{src})", mem(dst, d.off))
        }
    }
}

fn signed_off(v: i64) -> String {
    if v >= 0 {
        format!("+{}", llvm_hex(v))
    } else {
        llvm_hex(v)
    }
}

fn atomic_text(d: &Decoded) -> String {
    let op = d.op;
    let sym = op.info().sym;
    let m = mem(d.dst, d.off);
    let src = d.src;
    if op.mem_size() == 4 {
        // Without +alu32 only XADDW exists for 32-bit atomics; its decoder
        // accepts imm 0 (add) and 1 (fetch add) alike.
        return match op {
            Op::AtomicAdd32 | Op::AtomicFetchAdd32 => format!("lock *(u32 *)({m}) += r{src}"),
            _ => LLVM_UNKNOWN.to_string(),
        };
    }
    let ty = utype(op.mem_size());
    match op {
        Op::AtomicXchg64 => format!("r{src} = xchg_64({m}, r{src})"),
        Op::AtomicCmpXchg64 => format!("r0 = cmpxchg_64({m}, r0, r{src})"),
        _ if sym.starts_with("fetch_") => format!("r{src} = atomic_{sym}(({ty} *)({m}), r{src})"),
        _ => format!("lock *({ty} *)({m}) {sym} r{src}"),
    }
}

/// What LLVM's BPF decoder makes of the bytes at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LlvmDecoded {
    /// Bytes consumed: 16 for `lddw`, 8 otherwise, 1 when fewer than 8 (or, for
    /// `lddw`, 16) bytes are left (llvm-objdump then skips one byte).
    pub size: usize,
    /// The instruction, with the register numbers as encoded (LLVM knows
    /// `r11`); `None` prints as [`LLVM_UNKNOWN`].
    pub insn: Option<Decoded>,
}

impl LlvmDecoded {
    /// The text llvm-objdump prints after the bytes.
    pub fn text(&self) -> String {
        self.insn
            .as_ref()
            .map_or_else(|| LLVM_UNKNOWN.to_string(), llvm_text)
    }
}

/// Which register fields LLVM decodes (and so must be r0..r11) for a shape.
fn llvm_regs(shape: Shape) -> (bool, bool) {
    match shape {
        Shape::AluK
        | Shape::Neg
        | Shape::End
        | Shape::JmpK
        | Shape::CallX
        | Shape::St
        | Shape::LdImm64 => (true, false),
        Shape::AluX | Shape::MovSx | Shape::JmpX | Shape::Ldx | Shape::Stx | Shape::Atomic => {
            (true, true)
        }
        Shape::LdInd => (false, true),
        Shape::AsCast | Shape::LoadAcq | Shape::StoreRel => (true, true),
        Shape::Ja | Shape::Ja32 | Shape::Call | Shape::Exit | Shape::LdAbs | Shape::MayGoto => {
            (false, false)
        }
    }
}

/// LLVM's atomic decoding: only the low byte of imm counts; for 64 bits the
/// high nibble picks add/or/and/xor and a low nibble of 1 means BPF_FETCH (any
/// other low nibble is the plain op), `xchg` and `cmpxchg` are exact; for 32
/// bits (no +alu32) only add exists and the low nibble is ignored.
fn llvm_atomic_imm(code: u8, imm: i32) -> Option<i32> {
    let b = imm & 0xff;
    let (hi, lo) = (b >> 4, b & 0xf);
    if code == 0xc3 {
        return (hi == 0).then_some(0);
    }
    match b {
        0xe1 | 0xf1 => Some(b),
        _ if matches!(hi, 0x0 | 0x4 | 0x5 | 0xa) => Some(hi << 4 | i32::from(lo == 1)),
        _ => None,
    }
}

/// Decodes the instruction at the start of `bytes` the way LLVM 19's BPF
/// disassembler (default subtarget) does: the table says what each opcode is,
/// but LLVM ignores most fields the table insists are zero (a `call`'s
/// registers, an `exit`'s offset, the second slot of `lddw` but its imm, an
/// ALU-K's src, ...), accepts register 11, and reads atomics by a few imm bits.
/// `may_goto` is read by its offset alone; load-acquire and store-release,
/// which LLVM 19 predates, come out as atomic adds (32/64 bits) or unknown.
pub fn llvm_decode(bytes: &[u8]) -> LlvmDecoded {
    const UNKNOWN8: LlvmDecoded = LlvmDecoded {
        size: 8,
        insn: None,
    };
    let Some(first) = bytes.get(..8) else {
        return LlvmDecoded {
            size: 1.min(bytes.len()),
            insn: None,
        };
    };
    let raw = Insn::from_bytes(first.try_into().unwrap_or([0; 8]));
    let Some(row) = crate::OPS.iter().find(|r| r.code == raw.code) else {
        return UNKNOWN8;
    };
    // `addr_space_cast` shares its opcode with `mov`; LLVM tells them by off.
    let shape = if raw.code == 0xbf && raw.off == crate::consts::BPF_ADDR_SPACE_CAST {
        Shape::AsCast
    } else {
        row.shape
    };
    // Load-acquire and store-release came with LLVM 21: at 0xc3/0xdb LLVM 19
    // reads them as atomic adds (below), the other sizes it does not know.
    if shape == Shape::LoadAcq || shape == Shape::StoreRel {
        return UNKNOWN8;
    }
    let (uses_dst, uses_src) = llvm_regs(shape);
    if (uses_dst && raw.dst_reg > 11) || (uses_src && raw.src_reg > 11) {
        return UNKNOWN8;
    }
    // The same bits with every field LLVM ignores set to what the table wants.
    let mut n = Insn {
        dst_reg: 0,
        src_reg: 0,
        ..raw
    };
    let mut slots = vec![n];
    match shape {
        Shape::AluX | Shape::MovSx | Shape::JmpX | Shape::Ja | Shape::Ldx | Shape::Stx => n.imm = 0,
        Shape::Neg | Shape::CallX | Shape::LdInd => {
            n.imm = 0;
            n.off = 0;
        }
        Shape::End | Shape::Ja32 | Shape::LdAbs => n.off = 0,
        Shape::Call => {
            n.off = 0;
            // src picks call/local/kfunc in the table; LLVM prints all alike.
            n.src_reg = if raw.src_reg <= 2 { raw.src_reg } else { 0 };
        }
        Shape::Exit => n.off = 0,
        Shape::Atomic => match llvm_atomic_imm(raw.code, raw.imm) {
            Some(imm) => n.imm = imm,
            None => return UNKNOWN8,
        },
        Shape::LdImm64 => {
            let Some(second) = bytes.get(8..16) else {
                return LlvmDecoded {
                    size: 1,
                    insn: None,
                };
            };
            let hi = Insn::from_bytes(second.try_into().unwrap_or([0; 8]));
            slots.push(Insn {
                imm: hi.imm,
                ..Insn::default()
            });
        }
        // LLVM reads only the offset of may_goto.
        Shape::MayGoto => n.imm = 0,
        Shape::AluK | Shape::JmpK | Shape::St | Shape::AsCast => {}
        Shape::LoadAcq | Shape::StoreRel => return UNKNOWN8,
    }
    slots[0] = n;
    let size = slots.len() * 8;
    // LLVM prints any address-space pair; the table knows only the two the
    // kernel accepts.
    if shape == Shape::AsCast {
        if raw.dst_reg > 11 || raw.src_reg > 11 {
            return UNKNOWN8;
        }
        return LlvmDecoded {
            size,
            insn: Some(Decoded {
                op: Op::AddrSpaceCast,
                dst: raw.dst_reg,
                src: raw.src_reg,
                off: raw.off,
                imm: raw.imm as i64,
            }),
        };
    }
    match decode_at(&slots, 0) {
        Ok(mut d) => {
            if uses_dst {
                d.dst = raw.dst_reg;
            }
            if uses_src || shape == Shape::LdImm64 {
                d.src = raw.src_reg;
            }
            LlvmDecoded {
                size,
                insn: Some(d),
            }
        }
        Err(_) => UNKNOWN8,
    }
}

/// The slot a jump lands on, as LLVM's `evaluateBranch` computes it: `pc + 1 +
/// off` (or `+ imm` for `gotol`). Calls and exits are not branches for LLVM.
/// The result may lie outside the program; llvm-objdump annotates it anyway.
pub fn llvm_branch_target(d: &Decoded, pc: usize) -> Option<i64> {
    match d.op.shape() {
        Shape::JmpK | Shape::JmpX | Shape::Ja | Shape::MayGoto => {
            Some(pc as i64 + 1 + d.off as i64)
        }
        Shape::Ja32 => Some(pc as i64 + 1 + d.imm32() as i64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opcode::encode;

    fn text(op: Op, dst: u8, src: u8, off: i16, imm: i64) -> String {
        let insns = encode(&Decoded {
            op,
            dst,
            src,
            off,
            imm,
        });
        llvm_insn_text(&insns, 0).unwrap()
    }

    #[test]
    fn forms_seen_in_llvm_output() {
        assert_eq!(text(Op::LdImm64, 1, 0, 0, 0), "r1 = 0x0 ll");
        assert_eq!(text(Op::LdImm64, 1, 0, 0, -1), "r1 = -0x1 ll");
        assert_eq!(text(Op::LdxW, 3, 6, 0, 0), "r3 = *(u32 *)(r6 + 0x0)");
        assert_eq!(text(Op::StxDw, 10, 1, -8, 0), "*(u64 *)(r10 - 0x8) = r1");
        assert_eq!(text(Op::Mov32K, 0, 0, 0, 0), "w0 = 0x0");
        assert_eq!(text(Op::JgtK, 1, 0, 3, 2), "if r1 > 0x2 goto +0x3");
        assert_eq!(text(Op::Ja, 0, 0, -5, 0), "goto -0x5");
        assert_eq!(text(Op::Call, 0, 0, 0, 6), "call 0x6");
        assert_eq!(text(Op::CallLocal, 0, 1, 0, -1), "call -0x1");
        assert_eq!(
            text(Op::AtomicAdd64, 1, 2, 0, 0),
            "lock *(u64 *)(r1 + 0x0) += r2"
        );
        assert_eq!(
            text(Op::AtomicFetchAdd64, 1, 0, 0, 0),
            "r0 = atomic_fetch_add((u64 *)(r1 + 0x0), r0)"
        );
        assert_eq!(text(Op::Be16, 1, 0, 0, 0), "r1 = be16 r1");
        assert_eq!(text(Op::Bswap64, 1, 0, 0, 0), "r1 = bswap64 r1");
        assert_eq!(text(Op::MovSx8To64, 1, 2, 0, 0), "r1 = (s8)r2");
        assert_eq!(text(Op::Ja32, 0, 0, 0, 1), "gotol +0x1");
        assert_eq!(text(Op::CallX, 2, 0, 0, 0), "callx r2");
        assert_eq!(text(Op::LdAbsB, 0, 0, 0, 12), "r0 = *(u8 *)skb[0xc]");
        assert_eq!(text(Op::Add64K, 4, 0, 0, -100000), "r4 += -0x186a0");
        assert_eq!(text(Op::AtomicOr32, 1, 2, 0, 0), LLVM_UNKNOWN);
    }

    #[test]
    fn decoder_leniency() {
        let w = |code, dst, src, off, imm| Insn::new(code, dst, src, off, imm).to_bytes();
        // exit ignores registers and offset, not imm.
        assert_eq!(llvm_decode(&w(0x95, 1, 1, 3, 0)).text(), "exit");
        assert_eq!(llvm_decode(&w(0x95, 0, 0, 0, 1)).text(), LLVM_UNKNOWN);
        // r11 exists for LLVM, r12 does not.
        assert_eq!(llvm_decode(&w(0x07, 11, 0, 0, 3)).text(), "r11 += 0x3");
        assert_eq!(llvm_decode(&w(0x07, 12, 0, 0, 3)).text(), LLVM_UNKNOWN);
        // Atomic imm: low nibble other than BPF_FETCH is the plain op.
        assert_eq!(
            llvm_decode(&w(0xdb, 1, 2, 0, 5)).text(),
            "lock *(u64 *)(r1 + 0x0) += r2"
        );
        // Short buffers: one byte at a time.
        let d = llvm_decode(&[0x95, 0, 0]);
        assert_eq!((d.size, d.insn), (1, None));
        let lddw = w(0x18, 1, 0, 0, 5);
        assert_eq!(llvm_decode(&lddw).size, 1);
        let mut two = lddw.to_vec();
        two.extend_from_slice(&w(7, 7, 7, 7, 1));
        let d = llvm_decode(&two);
        assert_eq!((d.size, d.text()), (16, "r1 = 0x100000005 ll".to_string()));
    }

    #[test]
    fn hex_extremes() {
        assert_eq!(llvm_hex(i64::MIN), "-0x8000000000000000");
        assert_eq!(llvm_hex(0), "0x0");
        assert_eq!(llvm_hex(-16), "-0x10");
    }
}
