//! The native code as text (iced-x86's decoder and Intel formatter, built in), for
//! `prog dump jited`.

use super::JitProgram;
use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
use std::fmt::Write;

/// One decoded x86 instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeInsn {
    /// Offset in the code.
    pub offset: usize,
    pub bytes: Vec<u8>,
    /// Intel syntax, e.g. `add rax,rdi`; branch targets as offsets in the code.
    pub text: String,
}

pub(crate) fn decode(code: &[u8], _base: u64) -> Vec<NativeInsn> {
    let mut dec = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
    let mut fmt = IntelFormatter::new();
    fmt.options_mut().set_hex_prefix("0x");
    fmt.options_mut().set_hex_suffix("");
    fmt.options_mut().set_uppercase_hex(false);
    fmt.options_mut().set_space_after_operand_separator(true);
    let mut out = Vec::new();
    let mut text = String::new();
    while dec.can_decode() {
        let ins = dec.decode();
        text.clear();
        fmt.format(&ins, &mut text);
        let off = ins.ip() as usize;
        out.push(NativeInsn {
            offset: off,
            bytes: code[off..off + ins.len()].to_vec(),
            text: text.clone(),
        });
    }
    out
}

pub(crate) fn listing(p: &JitProgram) -> String {
    let insns = p.disassemble();
    let offsets = p.insn_offsets();
    let prog = p.program();
    let slots = prog.insns();
    let mut out = String::new();
    let mut k = 0;
    let line = |out: &mut String, n: &super::NativeInsn| {
        let bytes: Vec<String> = n.bytes.iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(
            out,
            "  {:5x}:  {:<30} {}",
            n.offset,
            bytes.join(" "),
            n.text
        );
    };
    let first = offsets.first().copied().unwrap_or(0) as usize;
    out.push_str("; entry\n");
    while k < insns.len() && insns[k].offset < first {
        line(&mut out, &insns[k]);
        k += 1;
    }
    let mut pc = 0;
    while pc < slots.len() {
        let Ok(d) = bpfvm_isa::decode_at(slots, pc) else {
            break;
        };
        let next = pc + d.slots();
        let end = offsets
            .get(next)
            .map_or(p.out_of_line_offset(), |o| *o as usize);
        let text = bpfvm_isa::disasm::kernel_insn_text(&d, pc, &bpfvm_isa::disasm::NoSymbols);
        let _ = writeln!(out, "; {pc}: {text}");
        while k < insns.len() && insns[k].offset < end {
            line(&mut out, &insns[k]);
            k += 1;
        }
        pc = next;
    }
    if k < insns.len() {
        out.push_str("; out of line\n");
        while k < insns.len() {
            line(&mut out, &insns[k]);
            k += 1;
        }
    }
    out
}
