//! bpfvm-isa — internal dependency of bpfvm.
//!
//! The eBPF instruction set (RFC 9669, cpu v1 to v4, and what Linux 6.18 adds: may_goto,
//! addr_space_cast, load-acquire and store-release) as data. Bytes become [`Insn`]
//! slots (`insn`), slots become [`Decoded`] instructions through the one opcode table
//! (`opcode`), and the same table drives encoding, the disassemblers, the assembler
//! and the interpreter's dispatch in bpfvm-vm.

pub mod asm;
pub mod consts;
pub mod disasm;
pub mod disasm_llvm;
pub mod helpers;
pub mod insn;
pub mod opcode;
pub mod uapi;

pub use insn::{insns_from_bytes, insns_to_bytes, Insn, InsnError};
pub use opcode::{
    decode_at, decode_program, encode, encode_program, DecodeError, Decoded, Disc, Op, OpInfo,
    Shape, OPS, OP_COUNT,
};
