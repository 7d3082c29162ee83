//! The kernel's instruction text, as `kernel/bpf/disasm.c` prints it in verifier
//! logs and (through bpftool) in `bpftool prog dump xlated`.
//!
//! Each [`Decoded`] instruction is printed from its table row: the row's [`Shape`]
//! picks the sentence and the row's `sym` the operator, so the text follows the
//! opcode table. Names the kernel gets from callbacks (kfunc names, map ids, the
//! targets of rewritten helper calls) come from a [`KernelSymbols`] implementation;
//! [`NoSymbols`] prints what the kernel prints when it has none.
//!
//! Forms were checked byte for byte against a 6.18 kernel's verifier log; the
//! observations live in `tests/golden/kernel_*.txt`.

use crate::consts::*;
use crate::insn::Insn;
use crate::opcode::{decode_at, Decoded, Op, Shape};
use std::fmt::Write as _;

pub use crate::helpers::{helper_id, HELPER_NAMES};

/// What the kernel's disassembler asks its caller (`struct bpf_insn_cbs`). Every
/// method has the kernel's no-callback behaviour as its default.
pub trait KernelSymbols {
    /// The name printed for helper `id` (`func_id_str`). The kernel consults this
    /// table before any callback, for `src_reg == 0` and ids in range.
    fn helper_name(&self, id: i32) -> Option<String> {
        usize::try_from(id)
            .ok()
            .and_then(|i| HELPER_NAMES.get(i))
            .map(|s| s.to_string())
    }

    /// The kernel's `cb_call`: a name for a call the helper table does not name —
    /// a kfunc (`src_reg = 2`), a rewritten helper address in xlated code, or a
    /// bpf-to-bpf call (`src_reg = 1`, printed after `call pc`). `None` gives the
    /// kernel's fallbacks: `+N` for local calls, `kernel-function` for kfuncs,
    /// `unknown` otherwise.
    fn call_name(&self, pc: usize, d: &Decoded) -> Option<String> {
        let _ = (pc, d);
        None
    }

    /// The map id behind an LD_IMM64 with a map pseudo source (`src_reg` 1, 2, 5
    /// or 6), whose first immediate is `imm` (an fd or fd_array index before load,
    /// the map id in xlated code). Used by the default [`Self::imm64_text`].
    fn map_id(&self, src: u8, imm: i32) -> Option<u32> {
        let _ = (src, imm);
        None
    }

    /// The kernel's `cb_imm`: the text after `rN = ` for an LD_IMM64. The default
    /// prints `map[id:N]` / `map[id:N][0]+off` when [`Self::map_id`] knows the map
    /// (bpftool's form), else the constant as `0x...`.
    fn imm64_text(&self, pc: usize, d: &Decoded) -> Option<String> {
        let _ = pc;
        let id = self.map_id(d.src, d.imm32())?;
        match d.src {
            BPF_PSEUDO_MAP_FD | BPF_PSEUDO_MAP_IDX => Some(format!("map[id:{id}]")),
            BPF_PSEUDO_MAP_VALUE | BPF_PSEUDO_MAP_IDX_VALUE => {
                Some(format!("map[id:{id}][0]+{}", d.imm_hi() as u32))
            }
            _ => None,
        }
    }
}

/// The kernel's disassembler with no callbacks: helper names from
/// [`HELPER_NAMES`], constants in hex, `call kernel-function#ID` for kfuncs.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSymbols;

impl KernelSymbols for NoSymbols {}

/// Symbols for translated (`xlated`) programs, where the loader has already put
/// map ids into the LD_IMM64 immediates: prints `map[id:N]` like bpftool.
#[derive(Clone, Copy, Debug, Default)]
pub struct XlatedSymbols;

impl KernelSymbols for XlatedSymbols {
    fn map_id(&self, src: u8, imm: i32) -> Option<u32> {
        matches!(src, BPF_PSEUDO_MAP_FD | BPF_PSEUDO_MAP_VALUE).then_some(imm as u32)
    }
}

/// Register prefix: `w` for the 32-bit subregister views of ALU and JMP32.
fn rp(op: Op) -> char {
    if matches!(op.class(), BPF_ALU | BPF_JMP32) {
        'w'
    } else {
        'r'
    }
}

fn size_name(op: Op) -> &'static str {
    match op.mem_size() {
        1 => "u8",
        2 => "u16",
        4 => "u32",
        _ => "u64",
    }
}

/// `(r10 -8)`: the kernel prints the offset with an explicit sign after a space.
fn addr(reg: u8, off: i16) -> String {
    format!("(r{reg} {off:+})")
}

/// The instruction's text without the `(code) ` prefix, e.g. `r1 += -8`,
/// `if w1 != 0x0 goto pc+3`, `call bpf_trace_printk#6`. `pc` is the slot index
/// (passed to the callbacks).
pub fn kernel_insn_text(d: &Decoded, pc: usize, cbs: &dyn KernelSymbols) -> String {
    let info = d.op.info();
    let sym = info.sym;
    let r = rp(d.op);
    let (dst, src, off, imm) = (d.dst, d.src, d.off, d.imm32());
    match info.shape {
        Shape::AluK => format!("{r}{dst} {sym} {imm}"),
        Shape::AluX => format!("{r}{dst} {sym} {r}{src}"),
        Shape::Neg => format!("{r}{dst} = -{r}{dst}"),
        // Byte swaps always name the 64-bit register.
        Shape::End => format!("r{dst} = {sym} r{dst}"),
        Shape::MovSx => format!("{r}{dst} = ({sym}){r}{src}"),
        Shape::JmpK => format!("if {r}{dst} {sym} {:#x} goto pc{off:+}", imm as u32),
        Shape::JmpX => format!("if {r}{dst} {sym} {r}{src} goto pc{off:+}"),
        Shape::Ja => format!("goto pc{off:+}"),
        Shape::Ja32 => format!("gotol pc{imm:+}"),
        // The kernel selects the call sentence on BPF_OP alone, so callx (never
        // accepted by the kernel) reads as a helper call with its imm.
        Shape::Call | Shape::CallX => {
            let named = if src == 0 { cbs.helper_name(imm) } else { None };
            let name = named.or_else(|| cbs.call_name(pc, d));
            match (d.op, name) {
                (Op::CallLocal, n) => format!("call pc{}", n.unwrap_or_else(|| format!("{imm:+}"))),
                (Op::CallKfunc, n) => {
                    format!("call {}#{imm}", n.as_deref().unwrap_or("kernel-function"))
                }
                (_, n) => format!("call {}#{imm}", n.as_deref().unwrap_or("unknown")),
            }
        }
        Shape::Exit => "exit".to_string(),
        Shape::LdImm64 => {
            let v = cbs
                .imm64_text(pc, d)
                .unwrap_or_else(|| format!("{:#x}", d.imm as u64));
            format!("r{dst} = {v}")
        }
        Shape::LdAbs => format!("r0 = *({sym} *)skb[{imm}]"),
        Shape::LdInd => format!("r0 = *({sym} *)skb[r{src} + {imm}]"),
        Shape::Ldx => format!("r{dst} = *({sym} *){}", addr(src, off)),
        Shape::St => format!("*({sym} *){} = {imm}", addr(dst, off)),
        Shape::Stx => format!("*({sym} *){} = r{src}", addr(dst, off)),
        Shape::Atomic => {
            let width = if d.op.mem_size() == 8 { "64" } else { "" };
            let at = addr(dst, off);
            let size = size_name(d.op);
            match imm {
                BPF_CMPXCHG => format!("r0 = atomic{width}_{sym}(({size} *){at}, r0, r{src})"),
                i if i & BPF_FETCH != 0 => {
                    format!("r{src} = atomic{width}_{sym}(({size} *){at}, r{src})")
                }
                _ => format!("lock *({size} *){at} {sym} r{src}"),
            }
        }
        Shape::MayGoto => format!("may_goto pc{off:+}"),
        Shape::AsCast => format!(
            "r{dst} = addr_space_cast(r{src}, {}, {})",
            (imm as u32) >> 16,
            imm as u32 & 0xffff
        ),
        Shape::LoadAcq => format!("r{dst} = load_acquire(({sym} *){})", addr(src, off)),
        Shape::StoreRel => format!("store_release(({sym} *){}, r{src})", addr(dst, off)),
    }
}

/// The whole line the kernel prints for an instruction: `(b7) r0 = 0`.
pub fn kernel_insn_line(d: &Decoded, pc: usize, cbs: &dyn KernelSymbols) -> String {
    format!("({:02x}) {}", d.op.code(), kernel_insn_text(d, pc, cbs))
}

/// A listing in the layout of `bpftool prog dump xlated` (`   0: (b7) r0 = 0`),
/// with each instruction's bytes on the next line when `opcodes` is set (as
/// bpftool's `opcodes` keyword does). A slot that does not decode is printed as
/// `(code) invalid: reason` and the listing continues with the next slot.
pub fn kernel_listing(insns: &[Insn], cbs: &dyn KernelSymbols, opcodes: bool) -> String {
    let mut out = String::new();
    let mut pc = 0;
    while pc < insns.len() {
        let n = match decode_at(insns, pc) {
            Ok(d) => {
                let _ = writeln!(out, "{pc:4}: {}", kernel_insn_line(&d, pc, cbs));
                d.slots()
            }
            Err(e) => {
                let _ = writeln!(out, "{pc:4}: ({:02x}) invalid: {e}", insns[pc].code);
                1
            }
        };
        if opcodes {
            out.push_str("      ");
            for i in &insns[pc..(pc + n).min(insns.len())] {
                for b in i.to_bytes() {
                    let _ = write!(out, " {b:02x}");
                }
            }
            out.push('\n');
        }
        pc += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(i: &[Insn]) -> String {
        let d = decode_at(i, 0).unwrap();
        kernel_insn_line(&d, 0, &NoSymbols)
    }

    #[test]
    fn fallbacks() {
        assert_eq!(
            text(&[Insn::new(0x85, 0, 0, 0, 195896080)]),
            "(85) call unknown#195896080"
        );
        assert_eq!(
            text(&[Insn::new(0x85, 0, 2, 0, 1234)]),
            "(85) call kernel-function#1234"
        );
        assert_eq!(text(&[Insn::new(0x85, 0, 1, 0, -5)]), "(85) call pc-5");
        let ld = [Insn::new(0x18, 1, 1, 0, 7), Insn::new(0, 0, 0, 0, 0)];
        assert_eq!(text(&ld), "(18) r1 = 0x7");
        let d = decode_at(&ld, 0).unwrap();
        assert_eq!(kernel_insn_text(&d, 0, &XlatedSymbols), "r1 = map[id:7]");
        let ld = [Insn::new(0x18, 2, 2, 0, 27), Insn::new(0, 0, 0, 0, 16)];
        let d = decode_at(&ld, 0).unwrap();
        assert_eq!(
            kernel_insn_text(&d, 0, &XlatedSymbols),
            "r2 = map[id:27][0]+16"
        );
    }

    #[test]
    fn listing_layout() {
        let p = [
            Insn::new(0x18, 1, 0, 0, 1),
            Insn::new(0, 0, 0, 0, 0),
            Insn::new(0x95, 0, 0, 0, 0),
            Insn::new(0xff, 0, 0, 0, 0),
        ];
        let l = kernel_listing(&p, &NoSymbols, true);
        let lines: Vec<&str> = l.lines().collect();
        assert_eq!(lines[0], "   0: (18) r1 = 0x1");
        assert_eq!(
            lines[1],
            "       18 01 00 00 01 00 00 00 00 00 00 00 00 00 00 00"
        );
        assert_eq!(lines[2], "   2: (95) exit");
        assert!(lines[4].starts_with("   3: (ff) invalid: "));
    }
}
