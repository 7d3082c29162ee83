//! The one opcode table.
//!
//! Every instruction bpfvm knows is one row of `bpf_ops!` below. The macro generates
//! the `Op` enum (dense, `repr(u8)`, so a `match` on it is a jump table), and the
//! static `OPS` table with each row's encoding, field constraints and names. Decode,
//! encode, both disassemblers, the assembler and the interpreter's dispatch are all
//! driven from here, so an instruction added here is known everywhere at once.
//!
//! Several instructions share an opcode byte and are told apart by another field
//! (the "discriminator"): sdiv/smod by `off = 1`, movsx by `off = 8/16/32`, byte
//! swaps by `imm = 16/32/64`, atomics by `imm`, calls by `src_reg`.

use crate::consts::*;
use crate::insn::Insn;
use std::sync::OnceLock;
use thiserror::Error;

/// Which field, beside the opcode byte, selects the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disc {
    None,
    Off(i16),
    Imm(i32),
    Src(u8),
}

/// The operand shape of a row: which fields it uses (the rest must be zero, as RFC
/// 9669 requires) and how it is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `dst op= imm` (ALU/ALU64, BPF_K).
    AluK,
    /// `dst op= src` (ALU/ALU64, BPF_X).
    AluX,
    /// `dst = -dst`.
    Neg,
    /// Byte swap of dst; width in imm.
    End,
    /// `dst = (sN) src`; width in off.
    MovSx,
    /// `if dst op imm goto +off`.
    JmpK,
    /// `if dst op src goto +off`.
    JmpX,
    /// `goto +off`.
    Ja,
    /// `gotol +imm` (JMP32 | JA).
    Ja32,
    /// `call imm` (helper id, pc-relative local function, or kfunc BTF id).
    Call,
    /// `callx dst`.
    CallX,
    Exit,
    /// `dst = imm64` over two slots; src_reg is a pseudo source (0..=6).
    LdImm64,
    /// Legacy packet load `r0 = *(size *)skb[imm]`.
    LdAbs,
    /// Legacy packet load `r0 = *(size *)skb[src + imm]`.
    LdInd,
    /// `dst = *(size *)(src + off)` (BPF_MEM or sign-extending BPF_MEMSX).
    Ldx,
    /// `*(size *)(dst + off) = imm`.
    St,
    /// `*(size *)(dst + off) = src`.
    Stx,
    /// Atomic read-modify-write on `*(size *)(dst + off)` with src; op in imm.
    Atomic,
    /// `may_goto +off` (JMP | JCOND, src_reg BPF_MAY_GOTO): falls through while
    /// the hidden loop counter lasts, jumps once it is exhausted.
    MayGoto,
    /// `dst = addr_space_cast(src, to_as, from_as)` (ALU64 | MOV | X, off 1):
    /// imm holds `to_as << 16 | from_as`.
    AsCast,
    /// `dst = load_acquire((size *)(src + off))` (STX | ATOMIC, imm BPF_LOAD_ACQ).
    LoadAcq,
    /// `store_release((size *)(dst + off), src)` (STX | ATOMIC, imm BPF_STORE_REL).
    StoreRel,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct OpInfo {
    pub op: Op,
    pub code: u8,
    pub disc: Disc,
    pub shape: Shape,
    /// The mnemonic of the bpf_conformance assembler syntax (`add32`, `ldxdw`, `lock fetch add`).
    pub mnemonic: &'static str,
    /// The C-like operator the kernel and llvm disassemblers print (`+=`, `s>=`, `be16`, ...).
    pub sym: &'static str,
}

macro_rules! bpf_ops {
    ( $( $v:ident = $code:literal, $disc:expr, $shape:ident, $mn:literal, $sym:literal; )* ) => {
        /// Every instruction bpfvm knows, one variant per table row.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Op { $( $v, )* }

        /// Number of rows (and of `Op` variants).
        pub const OP_COUNT: usize = [$( Op::$v, )*].len();

        /// The table, indexed by `Op as usize`.
        pub static OPS: &[OpInfo] = &[
            $( OpInfo { op: Op::$v, code: $code, disc: $disc, shape: Shape::$shape, mnemonic: $mn, sym: $sym }, )*
        ];
    };
}

use Disc::{Imm as I, None as N, Off as O, Src as S};

bpf_ops! {
    // ---- ALU64, BPF_K ----
    Add64K   = 0x07, N,     AluK, "add",  "+=";
    Sub64K   = 0x17, N,     AluK, "sub",  "-=";
    Mul64K   = 0x27, N,     AluK, "mul",  "*=";
    Div64K   = 0x37, O(0),  AluK, "div",  "/=";
    SDiv64K  = 0x37, O(1),  AluK, "sdiv", "s/=";
    Or64K    = 0x47, N,     AluK, "or",   "|=";
    And64K   = 0x57, N,     AluK, "and",  "&=";
    Lsh64K   = 0x67, N,     AluK, "lsh",  "<<=";
    Rsh64K   = 0x77, N,     AluK, "rsh",  ">>=";
    Neg64    = 0x87, N,     Neg,  "neg",  "-";
    Mod64K   = 0x97, O(0),  AluK, "mod",  "%=";
    SMod64K  = 0x97, O(1),  AluK, "smod", "s%=";
    Xor64K   = 0xa7, N,     AluK, "xor",  "^=";
    Mov64K   = 0xb7, N,     AluK, "mov",  "=";
    Arsh64K  = 0xc7, N,     AluK, "arsh", "s>>=";
    // ---- ALU64, BPF_X ----
    Add64X   = 0x0f, N,     AluX, "add",  "+=";
    Sub64X   = 0x1f, N,     AluX, "sub",  "-=";
    Mul64X   = 0x2f, N,     AluX, "mul",  "*=";
    Div64X   = 0x3f, O(0),  AluX, "div",  "/=";
    SDiv64X  = 0x3f, O(1),  AluX, "sdiv", "s/=";
    Or64X    = 0x4f, N,     AluX, "or",   "|=";
    And64X   = 0x5f, N,     AluX, "and",  "&=";
    Lsh64X   = 0x6f, N,     AluX, "lsh",  "<<=";
    Rsh64X   = 0x7f, N,     AluX, "rsh",  ">>=";
    Mod64X   = 0x9f, O(0),  AluX, "mod",  "%=";
    SMod64X  = 0x9f, O(1),  AluX, "smod", "s%=";
    Xor64X   = 0xaf, N,     AluX, "xor",  "^=";
    Mov64X   = 0xbf, O(0),  AluX, "mov",  "=";
    AddrSpaceCast = 0xbf, O(1), AsCast, "addr_space_cast", "addr_space_cast";
    MovSx8To64  = 0xbf, O(8),  MovSx, "movsx864",  "s8";
    MovSx16To64 = 0xbf, O(16), MovSx, "movsx1664", "s16";
    MovSx32To64 = 0xbf, O(32), MovSx, "movsx3264", "s32";
    Arsh64X  = 0xcf, N,     AluX, "arsh", "s>>=";
    // ---- ALU (32-bit), BPF_K ----
    Add32K   = 0x04, N,     AluK, "add32",  "+=";
    Sub32K   = 0x14, N,     AluK, "sub32",  "-=";
    Mul32K   = 0x24, N,     AluK, "mul32",  "*=";
    Div32K   = 0x34, O(0),  AluK, "div32",  "/=";
    SDiv32K  = 0x34, O(1),  AluK, "sdiv32", "s/=";
    Or32K    = 0x44, N,     AluK, "or32",   "|=";
    And32K   = 0x54, N,     AluK, "and32",  "&=";
    Lsh32K   = 0x64, N,     AluK, "lsh32",  "<<=";
    Rsh32K   = 0x74, N,     AluK, "rsh32",  ">>=";
    Neg32    = 0x84, N,     Neg,  "neg32",  "-";
    Mod32K   = 0x94, O(0),  AluK, "mod32",  "%=";
    SMod32K  = 0x94, O(1),  AluK, "smod32", "s%=";
    Xor32K   = 0xa4, N,     AluK, "xor32",  "^=";
    Mov32K   = 0xb4, N,     AluK, "mov32",  "=";
    Arsh32K  = 0xc4, N,     AluK, "arsh32", "s>>=";
    // ---- ALU (32-bit), BPF_X ----
    Add32X   = 0x0c, N,     AluX, "add32",  "+=";
    Sub32X   = 0x1c, N,     AluX, "sub32",  "-=";
    Mul32X   = 0x2c, N,     AluX, "mul32",  "*=";
    Div32X   = 0x3c, O(0),  AluX, "div32",  "/=";
    SDiv32X  = 0x3c, O(1),  AluX, "sdiv32", "s/=";
    Or32X    = 0x4c, N,     AluX, "or32",   "|=";
    And32X   = 0x5c, N,     AluX, "and32",  "&=";
    Lsh32X   = 0x6c, N,     AluX, "lsh32",  "<<=";
    Rsh32X   = 0x7c, N,     AluX, "rsh32",  ">>=";
    Mod32X   = 0x9c, O(0),  AluX, "mod32",  "%=";
    SMod32X  = 0x9c, O(1),  AluX, "smod32", "s%=";
    Xor32X   = 0xac, N,     AluX, "xor32",  "^=";
    Mov32X   = 0xbc, O(0),  AluX, "mov32",  "=";
    MovSx8To32  = 0xbc, O(8),  MovSx, "movsx832",  "s8";
    MovSx16To32 = 0xbc, O(16), MovSx, "movsx1632", "s16";
    Arsh32X  = 0xcc, N,     AluX, "arsh32", "s>>=";
    // ---- byte swaps ----
    Le16     = 0xd4, I(16), End,  "le16",    "le16";
    Le32     = 0xd4, I(32), End,  "le32",    "le32";
    Le64     = 0xd4, I(64), End,  "le64",    "le64";
    Be16     = 0xdc, I(16), End,  "be16",    "be16";
    Be32     = 0xdc, I(32), End,  "be32",    "be32";
    Be64     = 0xdc, I(64), End,  "be64",    "be64";
    Bswap16  = 0xd7, I(16), End,  "bswap16", "bswap16";
    Bswap32  = 0xd7, I(32), End,  "bswap32", "bswap32";
    Bswap64  = 0xd7, I(64), End,  "bswap64", "bswap64";
    // ---- JMP ----
    Ja       = 0x05, N,     Ja,   "ja",   "goto";
    JeqK     = 0x15, N,     JmpK, "jeq",  "==";
    JeqX     = 0x1d, N,     JmpX, "jeq",  "==";
    JgtK     = 0x25, N,     JmpK, "jgt",  ">";
    JgtX     = 0x2d, N,     JmpX, "jgt",  ">";
    JgeK     = 0x35, N,     JmpK, "jge",  ">=";
    JgeX     = 0x3d, N,     JmpX, "jge",  ">=";
    JsetK    = 0x45, N,     JmpK, "jset", "&";
    JsetX    = 0x4d, N,     JmpX, "jset", "&";
    JneK     = 0x55, N,     JmpK, "jne",  "!=";
    JneX     = 0x5d, N,     JmpX, "jne",  "!=";
    JsgtK    = 0x65, N,     JmpK, "jsgt", "s>";
    JsgtX    = 0x6d, N,     JmpX, "jsgt", "s>";
    JsgeK    = 0x75, N,     JmpK, "jsge", "s>=";
    JsgeX    = 0x7d, N,     JmpX, "jsge", "s>=";
    Call     = 0x85, S(0),  Call, "call", "call";
    CallLocal = 0x85, S(1), Call, "call local", "call pc";
    CallKfunc = 0x85, S(2), Call, "call kfunc", "call kernel-function";
    CallX    = 0x8d, N,     CallX, "callx", "callx";
    Exit     = 0x95, N,     Exit, "exit", "exit";
    JltK     = 0xa5, N,     JmpK, "jlt",  "<";
    JltX     = 0xad, N,     JmpX, "jlt",  "<";
    JleK     = 0xb5, N,     JmpK, "jle",  "<=";
    JleX     = 0xbd, N,     JmpX, "jle",  "<=";
    JsltK    = 0xc5, N,     JmpK, "jslt", "s<";
    JsltX    = 0xcd, N,     JmpX, "jslt", "s<";
    JsleK    = 0xd5, N,     JmpK, "jsle", "s<=";
    JsleX    = 0xdd, N,     JmpX, "jsle", "s<=";
    MayGoto  = 0xe5, S(0),  MayGoto, "may_goto", "may_goto";
    // ---- JMP32 ----
    Ja32     = 0x06, N,     Ja32, "ja32",   "gotol";
    Jeq32K   = 0x16, N,     JmpK, "jeq32",  "==";
    Jeq32X   = 0x1e, N,     JmpX, "jeq32",  "==";
    Jgt32K   = 0x26, N,     JmpK, "jgt32",  ">";
    Jgt32X   = 0x2e, N,     JmpX, "jgt32",  ">";
    Jge32K   = 0x36, N,     JmpK, "jge32",  ">=";
    Jge32X   = 0x3e, N,     JmpX, "jge32",  ">=";
    Jset32K  = 0x46, N,     JmpK, "jset32", "&";
    Jset32X  = 0x4e, N,     JmpX, "jset32", "&";
    Jne32K   = 0x56, N,     JmpK, "jne32",  "!=";
    Jne32X   = 0x5e, N,     JmpX, "jne32",  "!=";
    Jsgt32K  = 0x66, N,     JmpK, "jsgt32", "s>";
    Jsgt32X  = 0x6e, N,     JmpX, "jsgt32", "s>";
    Jsge32K  = 0x76, N,     JmpK, "jsge32", "s>=";
    Jsge32X  = 0x7e, N,     JmpX, "jsge32", "s>=";
    Jlt32K   = 0xa6, N,     JmpK, "jlt32",  "<";
    Jlt32X   = 0xae, N,     JmpX, "jlt32",  "<";
    Jle32K   = 0xb6, N,     JmpK, "jle32",  "<=";
    Jle32X   = 0xbe, N,     JmpX, "jle32",  "<=";
    Jslt32K  = 0xc6, N,     JmpK, "jslt32", "s<";
    Jslt32X  = 0xce, N,     JmpX, "jslt32", "s<";
    Jsle32K  = 0xd6, N,     JmpK, "jsle32", "s<=";
    Jsle32X  = 0xde, N,     JmpX, "jsle32", "s<=";
    // ---- LD ----
    LdImm64  = 0x18, N,     LdImm64, "lddw", "=";
    LdAbsW   = 0x20, N,     LdAbs, "ldabsw", "u32";
    LdAbsH   = 0x28, N,     LdAbs, "ldabsh", "u16";
    LdAbsB   = 0x30, N,     LdAbs, "ldabsb", "u8";
    LdIndW   = 0x40, N,     LdInd, "ldindw", "u32";
    LdIndH   = 0x48, N,     LdInd, "ldindh", "u16";
    LdIndB   = 0x50, N,     LdInd, "ldindb", "u8";
    // ---- LDX ----
    LdxW     = 0x61, N,     Ldx,  "ldxw",  "u32";
    LdxH     = 0x69, N,     Ldx,  "ldxh",  "u16";
    LdxB     = 0x71, N,     Ldx,  "ldxb",  "u8";
    LdxDw    = 0x79, N,     Ldx,  "ldxdw", "u64";
    LdxSW    = 0x81, N,     Ldx,  "ldxsw", "s32";
    LdxSH    = 0x89, N,     Ldx,  "ldxsh", "s16";
    LdxSB    = 0x91, N,     Ldx,  "ldxsb", "s8";
    // ---- ST ----
    StW      = 0x62, N,     St,   "stw",   "u32";
    StH      = 0x6a, N,     St,   "sth",   "u16";
    StB      = 0x72, N,     St,   "stb",   "u8";
    StDw     = 0x7a, N,     St,   "stdw",  "u64";
    // ---- STX ----
    StxW     = 0x63, N,     Stx,  "stxw",  "u32";
    StxH     = 0x6b, N,     Stx,  "stxh",  "u16";
    StxB     = 0x73, N,     Stx,  "stxb",  "u8";
    StxDw    = 0x7b, N,     Stx,  "stxdw", "u64";
    // ---- ATOMIC (imm selects the operation) ----
    AtomicAdd32      = 0xc3, I(0x00), Atomic, "lock add32",       "+=";
    AtomicOr32       = 0xc3, I(0x40), Atomic, "lock or32",        "|=";
    AtomicAnd32      = 0xc3, I(0x50), Atomic, "lock and32",       "&=";
    AtomicXor32      = 0xc3, I(0xa0), Atomic, "lock xor32",       "^=";
    AtomicFetchAdd32 = 0xc3, I(0x01), Atomic, "lock fetch add32", "fetch_add";
    AtomicFetchOr32  = 0xc3, I(0x41), Atomic, "lock fetch or32",  "fetch_or";
    AtomicFetchAnd32 = 0xc3, I(0x51), Atomic, "lock fetch and32", "fetch_and";
    AtomicFetchXor32 = 0xc3, I(0xa1), Atomic, "lock fetch xor32", "fetch_xor";
    AtomicXchg32     = 0xc3, I(0xe1), Atomic, "lock xchg32",      "xchg";
    AtomicCmpXchg32  = 0xc3, I(0xf1), Atomic, "lock cmpxchg32",   "cmpxchg";
    AtomicAdd64      = 0xdb, I(0x00), Atomic, "lock add",         "+=";
    AtomicOr64       = 0xdb, I(0x40), Atomic, "lock or",          "|=";
    AtomicAnd64      = 0xdb, I(0x50), Atomic, "lock and",         "&=";
    AtomicXor64      = 0xdb, I(0xa0), Atomic, "lock xor",         "^=";
    AtomicFetchAdd64 = 0xdb, I(0x01), Atomic, "lock fetch add",   "fetch_add";
    AtomicFetchOr64  = 0xdb, I(0x41), Atomic, "lock fetch or",    "fetch_or";
    AtomicFetchAnd64 = 0xdb, I(0x51), Atomic, "lock fetch and",   "fetch_and";
    AtomicFetchXor64 = 0xdb, I(0xa1), Atomic, "lock fetch xor",   "fetch_xor";
    AtomicXchg64     = 0xdb, I(0xe1), Atomic, "lock xchg",        "xchg";
    AtomicCmpXchg64  = 0xdb, I(0xf1), Atomic, "lock cmpxchg",     "cmpxchg";
    // ---- load-acquire / store-release (STX | ATOMIC, any size) ----
    LoadAcqB  = 0xd3, I(0x100), LoadAcq,  "load_acqb",  "u8";
    LoadAcqH  = 0xcb, I(0x100), LoadAcq,  "load_acqh",  "u16";
    LoadAcqW  = 0xc3, I(0x100), LoadAcq,  "load_acqw",  "u32";
    LoadAcqDw = 0xdb, I(0x100), LoadAcq,  "load_acqdw", "u64";
    StoreRelB  = 0xd3, I(0x110), StoreRel, "store_relb",  "u8";
    StoreRelH  = 0xcb, I(0x110), StoreRel, "store_relh",  "u16";
    StoreRelW  = 0xc3, I(0x110), StoreRel, "store_relw",  "u32";
    StoreRelDw = 0xdb, I(0x110), StoreRel, "store_reldw", "u64";
}

impl Op {
    /// This op's table row.
    #[inline]
    pub fn info(self) -> &'static OpInfo {
        &OPS[self as usize]
    }
    pub fn code(self) -> u8 {
        self.info().code
    }
    pub fn shape(self) -> Shape {
        self.info().shape
    }
    pub fn mnemonic(self) -> &'static str {
        self.info().mnemonic
    }
    /// Instruction class (`BPF_ALU64`, `BPF_JMP32`, ...).
    pub fn class(self) -> u8 {
        bpf_class(self.code())
    }
    /// True for ops that operate on 32-bit subregisters (class ALU or JMP32).
    pub fn is_32bit(self) -> bool {
        matches!(self.class(), BPF_ALU | BPF_JMP32)
            || matches!(self.shape(), Shape::Atomic) && self.code() == 0xc3
    }
    /// Access size in bytes of a load, store or atomic (0 for other ops).
    pub fn mem_size(self) -> usize {
        let c = self.code();
        match self.shape() {
            Shape::Ldx
            | Shape::St
            | Shape::Stx
            | Shape::Atomic
            | Shape::LoadAcq
            | Shape::StoreRel
            | Shape::LdAbs
            | Shape::LdInd => match c & 0x18 {
                BPF_W => 4,
                BPF_H => 2,
                BPF_B => 1,
                _ => 8,
            },
            _ => 0,
        }
    }
    /// Number of 8-byte slots the instruction occupies.
    pub fn slots(self) -> usize {
        if self == Op::LdImm64 {
            2
        } else {
            1
        }
    }
    /// Ops that may jump (conditional jumps and `ja`/`gotol`, not calls or exit).
    pub fn is_jump(self) -> bool {
        matches!(
            self.shape(),
            Shape::JmpK | Shape::JmpX | Shape::Ja | Shape::Ja32 | Shape::MayGoto
        )
    }
    /// Ops that write `dst_reg`.
    pub fn writes_dst(self) -> bool {
        matches!(
            self.shape(),
            Shape::AluK
                | Shape::AluX
                | Shape::Neg
                | Shape::End
                | Shape::MovSx
                | Shape::LdImm64
                | Shape::Ldx
                | Shape::AsCast
                | Shape::LoadAcq
        )
    }
    /// All ops, in table order.
    pub fn all() -> impl Iterator<Item = Op> {
        OPS.iter().map(|r| r.op)
    }
}

/// A decoded instruction: the row plus its operands. For LD_IMM64 `imm` holds the
/// whole 64-bit constant (low word from the first slot, high word from the second);
/// otherwise it is the sign-extended 32-bit immediate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decoded {
    pub op: Op,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i64,
}

impl Decoded {
    /// The low 32 bits of the immediate (the first slot's imm).
    pub fn imm32(&self) -> i32 {
        self.imm as i32
    }
    /// For LD_IMM64: the second slot's imm.
    pub fn imm_hi(&self) -> i32 {
        (self.imm >> 32) as i32
    }
    pub fn slots(&self) -> usize {
        self.op.slots()
    }
}

/// Why a slot is not a valid instruction. Wording follows the kernel's
/// (`invalid BPF_LD_IMM insn`, `BPF_ALU uses reserved fields`, ...).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("insn {pc}: unknown opcode {code:#04x}")]
    UnknownOpcode { pc: usize, code: u8 },
    #[error("insn {pc}: opcode {code:#04x} ({mnemonic}) uses reserved fields: {field} must be {expected}, is {actual}")]
    ReservedField {
        pc: usize,
        code: u8,
        mnemonic: &'static str,
        field: &'static str,
        expected: i64,
        actual: i64,
    },
    #[error("insn {pc}: opcode {code:#04x} with {field}={actual} matches no instruction")]
    BadDiscriminator {
        pc: usize,
        code: u8,
        field: &'static str,
        actual: i64,
    },
    #[error("insn {pc}: R{reg} is invalid")]
    BadRegister { pc: usize, reg: u8 },
    #[error("insn {pc}: invalid BPF_LD_IMM insn: missing second slot")]
    LdImm64Truncated { pc: usize },
    #[error(
        "insn {pc}: invalid BPF_LD_IMM insn: second slot must have code, registers and offset zero"
    )]
    LdImm64BadSecondSlot { pc: usize },
    #[error("insn {pc}: invalid BPF_LD_IMM insn: unknown pseudo source {src}")]
    LdImm64BadPseudo { pc: usize, src: u8 },
}

/// For each opcode byte, the rows that use it (at most a handful; atomics have ten).
fn rows_by_code() -> &'static [Vec<Op>; 256] {
    static T: OnceLock<[Vec<Op>; 256]> = OnceLock::new();
    T.get_or_init(|| {
        let mut t: [Vec<Op>; 256] = std::array::from_fn(|_| Vec::new());
        for r in OPS {
            t[r.code as usize].push(r.op);
        }
        t
    })
}

fn disc_matches(d: Disc, i: &Insn) -> bool {
    match d {
        Disc::None => true,
        Disc::Off(o) => i.off == o,
        Disc::Imm(v) => i.imm == v,
        Disc::Src(s) => i.src_reg == s,
    }
}

fn need(
    pc: usize,
    info: &OpInfo,
    field: &'static str,
    actual: i64,
    expected: i64,
) -> Result<(), DecodeError> {
    if actual == expected {
        Ok(())
    } else {
        Err(DecodeError::ReservedField {
            pc,
            code: info.code,
            mnemonic: info.mnemonic,
            field,
            expected,
            actual,
        })
    }
}

/// Decodes the instruction at `pc` (which may span two slots). Checks every field
/// RFC 9669 says must be zero, and register numbers.
pub fn decode_at(insns: &[Insn], pc: usize) -> Result<Decoded, DecodeError> {
    let i = insns[pc];
    let rows = &rows_by_code()[i.code as usize];
    if rows.is_empty() {
        return Err(DecodeError::UnknownOpcode { pc, code: i.code });
    }
    let Some(&op) = rows.iter().find(|op| disc_matches(op.info().disc, &i)) else {
        let (field, actual) = match rows[0].info().disc {
            Disc::Off(_) => ("off", i.off as i64),
            Disc::Imm(_) => ("imm", i.imm as i64),
            Disc::Src(_) => ("src_reg", i.src_reg as i64),
            Disc::None => ("code", i.code as i64),
        };
        return Err(DecodeError::BadDiscriminator {
            pc,
            code: i.code,
            field,
            actual,
        });
    };
    let info = op.info();
    if i.dst_reg > 10 {
        return Err(DecodeError::BadRegister { pc, reg: i.dst_reg });
    }
    if i.src_reg > 10 && info.shape != Shape::LdImm64 {
        return Err(DecodeError::BadRegister { pc, reg: i.src_reg });
    }
    let (src, off, imm, dst) = (
        i.src_reg as i64,
        i.off as i64,
        i.imm as i64,
        i.dst_reg as i64,
    );
    let off_is_disc = matches!(info.disc, Disc::Off(_));
    match info.shape {
        Shape::AluK => {
            need(pc, info, "src_reg", src, 0)?;
            if !off_is_disc {
                need(pc, info, "off", off, 0)?;
            }
        }
        Shape::AluX => {
            need(pc, info, "imm", imm, 0)?;
            if !off_is_disc {
                need(pc, info, "off", off, 0)?;
            }
        }
        Shape::Neg => {
            need(pc, info, "src_reg", src, 0)?;
            need(pc, info, "off", off, 0)?;
            need(pc, info, "imm", imm, 0)?;
        }
        Shape::End => {
            need(pc, info, "src_reg", src, 0)?;
            need(pc, info, "off", off, 0)?;
        }
        Shape::MovSx => need(pc, info, "imm", imm, 0)?,
        Shape::JmpK => need(pc, info, "src_reg", src, 0)?,
        Shape::JmpX => need(pc, info, "imm", imm, 0)?,
        Shape::Ja => {
            need(pc, info, "dst_reg", dst, 0)?;
            need(pc, info, "src_reg", src, 0)?;
            need(pc, info, "imm", imm, 0)?;
        }
        Shape::Ja32 => {
            need(pc, info, "dst_reg", dst, 0)?;
            need(pc, info, "src_reg", src, 0)?;
            need(pc, info, "off", off, 0)?;
        }
        Shape::Call => {
            need(pc, info, "dst_reg", dst, 0)?;
            need(pc, info, "off", off, 0)?;
        }
        Shape::CallX => {
            need(pc, info, "src_reg", src, 0)?;
            need(pc, info, "off", off, 0)?;
            need(pc, info, "imm", imm, 0)?;
        }
        Shape::Exit => {
            need(pc, info, "dst_reg", dst, 0)?;
            need(pc, info, "src_reg", src, 0)?;
            need(pc, info, "off", off, 0)?;
            need(pc, info, "imm", imm, 0)?;
        }
        Shape::LdImm64 => {
            need(pc, info, "off", off, 0)?;
            if i.src_reg > BPF_PSEUDO_MAP_IDX_VALUE {
                return Err(DecodeError::LdImm64BadPseudo { pc, src: i.src_reg });
            }
            let Some(hi) = insns.get(pc + 1) else {
                return Err(DecodeError::LdImm64Truncated { pc });
            };
            if hi.code != 0 || hi.dst_reg != 0 || hi.src_reg != 0 || hi.off != 0 {
                return Err(DecodeError::LdImm64BadSecondSlot { pc });
            }
            let v = (i.imm as u32 as u64) | ((hi.imm as u32 as u64) << 32);
            return Ok(Decoded {
                op,
                dst: i.dst_reg,
                src: i.src_reg,
                off: 0,
                imm: v as i64,
            });
        }
        Shape::LdAbs => {
            need(pc, info, "dst_reg", dst, 0)?;
            need(pc, info, "src_reg", src, 0)?;
            need(pc, info, "off", off, 0)?;
        }
        Shape::LdInd => {
            need(pc, info, "dst_reg", dst, 0)?;
            need(pc, info, "off", off, 0)?;
        }
        Shape::Ldx => need(pc, info, "imm", imm, 0)?,
        Shape::St => need(pc, info, "src_reg", src, 0)?,
        Shape::Stx | Shape::Atomic | Shape::StoreRel | Shape::LoadAcq => {
            if info.shape == Shape::Stx {
                need(pc, info, "imm", imm, 0)?;
            }
        }
        Shape::MayGoto => {
            need(pc, info, "dst_reg", dst, 0)?;
            need(pc, info, "imm", imm, 0)?;
        }
        // Only the pairs the kernel knows (1 -> 0, 0 -> 1); `off = 1` is a
        // reserved field of `mov` for RFC 9669 otherwise.
        Shape::AsCast => {
            if imm != 1 && imm != 1 << 16 {
                need(pc, info, "imm", imm, 1)?;
            }
        }
    }
    Ok(Decoded {
        op,
        dst: i.dst_reg,
        src: i.src_reg,
        off: i.off,
        imm: i.imm as i64,
    })
}

/// Decodes a whole program. The result has one entry per instruction (an LD_IMM64
/// is one entry), each paired with its slot index.
pub fn decode_program(insns: &[Insn]) -> Result<Vec<(usize, Decoded)>, DecodeError> {
    let mut out = Vec::with_capacity(insns.len());
    let mut pc = 0;
    while pc < insns.len() {
        let d = decode_at(insns, pc)?;
        out.push((pc, d));
        pc += d.slots();
    }
    Ok(out)
}

/// Encodes a decoded instruction back into its slot(s). Discriminator fields are
/// taken from the row, so `encode` never produces a different op than it was given.
pub fn encode(d: &Decoded) -> Vec<Insn> {
    let info = d.op.info();
    let mut i = Insn {
        code: info.code,
        dst_reg: d.dst,
        src_reg: d.src,
        off: d.off,
        imm: d.imm as i32,
    };
    match info.disc {
        Disc::None => {}
        Disc::Off(o) => i.off = o,
        Disc::Imm(v) => i.imm = v,
        Disc::Src(s) => i.src_reg = s,
    }
    if d.op == Op::LdImm64 {
        i.off = 0;
        let hi = Insn {
            imm: (d.imm as u64 >> 32) as i32,
            ..Insn::default()
        };
        vec![i, hi]
    } else {
        vec![i]
    }
}

/// Encodes a program of decoded instructions.
pub fn encode_program(ds: &[Decoded]) -> Vec<Insn> {
    ds.iter().flat_map(encode).collect()
}
