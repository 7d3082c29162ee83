//! The raw 8-byte instruction slot, exactly as it sits in an object file or in
//! `bpf_attr.insns`: `{code, dst_reg:4, src_reg:4, off, imm}`, little-endian.

use thiserror::Error;

/// One 64-bit instruction slot (`struct bpf_insn`). LD_IMM64 takes two slots;
/// the second has `code == 0` and carries the high 32 bits of the constant.
#[doc(alias = "bpf_insn")]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Insn {
    pub code: u8,
    pub dst_reg: u8,
    pub src_reg: u8,
    pub off: i16,
    pub imm: i32,
}

impl std::fmt::Debug for Insn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Insn {{ code: {:#04x}, dst: {}, src: {}, off: {}, imm: {} }}",
            self.code, self.dst_reg, self.src_reg, self.off, self.imm
        )
    }
}

/// Errors turning bytes into instruction slots.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum InsnError {
    #[error("program length {len} is not a multiple of 8 bytes")]
    BadLength { len: usize },
}

impl Insn {
    pub const SIZE: usize = 8;

    pub const fn new(code: u8, dst_reg: u8, src_reg: u8, off: i16, imm: i32) -> Self {
        Insn {
            code,
            dst_reg,
            src_reg,
            off,
            imm,
        }
    }

    /// Little-endian encoding, registers packed dst in the low nibble.
    pub fn to_bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.dst_reg & 0x0f) | (self.src_reg << 4);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }

    pub fn from_bytes(b: [u8; 8]) -> Self {
        Insn {
            code: b[0],
            dst_reg: b[1] & 0x0f,
            src_reg: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// The slot as one little-endian u64 (the form bpf_conformance's `-- raw` uses).
    pub fn to_u64(&self) -> u64 {
        u64::from_le_bytes(self.to_bytes())
    }

    pub fn from_u64(v: u64) -> Self {
        Self::from_bytes(v.to_le_bytes())
    }
}

/// Splits a byte buffer into instruction slots.
pub fn insns_from_bytes(bytes: &[u8]) -> Result<Vec<Insn>, InsnError> {
    if !bytes.len().is_multiple_of(Insn::SIZE) {
        return Err(InsnError::BadLength { len: bytes.len() });
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| Insn::from_bytes(c.try_into().expect("chunk of 8")))
        .collect())
}

/// Joins instruction slots into bytes.
pub fn insns_to_bytes(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.to_bytes()).collect()
}
