//! Program tags, as `bpftool prog show` prints them (`tag 614b434cd8324ecc`).
//!
//! The kernel computes the tag once, in `bpf_prog_calc_tag()`, over the
//! instructions exactly as the loader submitted them (after libbpf's
//! relocations, before any verifier rewrite). Map file descriptors differ from
//! one load to the next, so the immediates of map-referencing `BPF_LD | BPF_IMM |
//! BPF_DW` pairs are zeroed first, which makes the tag stable across loads.
//!
//! Facts observed on Linux 6.18 (see `tests/data/tag/README.md` for how they were
//! captured):
//! - the digest is SHA-256 (kernels before 6.18 used SHA-1; 6.18 switched to
//!   SHA-256 for exclusive maps and program signing and kept the first 8 bytes as
//!   the tag), standard padding, over the raw 8-byte slots;
//! - only `src_reg == BPF_PSEUDO_MAP_FD` and `BPF_PSEUDO_MAP_VALUE` are zeroed,
//!   in both slots (so the map-value offset in the second slot is zeroed too);
//!   the fd-array forms `BPF_PSEUDO_MAP_IDX` / `BPF_PSEUDO_MAP_IDX_VALUE` are
//!   hashed as submitted, as are `BPF_PSEUDO_FUNC`, `BPF_PSEUDO_BTF_ID` and plain
//!   64-bit constants.

use bpfvm_isa::consts::{BPF_DW, BPF_IMM, BPF_LD, BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE};
use bpfvm_isa::Insn;
use sha2::{Digest, Sha256};

/// Size of a program tag (`BPF_TAG_SIZE`).
pub const BPF_TAG_SIZE: usize = 8;

const LD_IMM64: u8 = BPF_LD | BPF_IMM | BPF_DW;

/// The instructions as the kernel hashes them: map fd / map value immediates zeroed.
///
/// The second slot is zeroed only when it has the shape of a valid second half
/// (code, registers and offset all zero), as the kernel checks; anything else
/// would be rejected by the verifier anyway.
pub fn tag_input(insns: &[Insn]) -> Vec<Insn> {
    let mut out = Vec::with_capacity(insns.len());
    let mut was_ld_map = false;
    for insn in insns {
        let mut i = *insn;
        if !was_ld_map
            && i.code == LD_IMM64
            && (i.src_reg == BPF_PSEUDO_MAP_FD || i.src_reg == BPF_PSEUDO_MAP_VALUE)
        {
            was_ld_map = true;
            i.imm = 0;
        } else if was_ld_map && i.code == 0 && i.dst_reg == 0 && i.src_reg == 0 && i.off == 0 {
            was_ld_map = false;
            i.imm = 0;
        } else {
            was_ld_map = false;
        }
        out.push(i);
    }
    out
}

/// The program's SHA-256 digest as Linux 6.18 keeps it (`prog->digest`); the tag is
/// its first [`BPF_TAG_SIZE`] bytes.
pub fn prog_digest(insns: &[Insn]) -> [u8; 32] {
    let mut h = Sha256::new();
    for i in tag_input(insns) {
        h.update(i.to_bytes());
    }
    h.finalize().into()
}

/// The kernel's program tag (`bpf_prog_calc_tag`), as Linux 6.18 computes it.
#[doc(alias = "bpf_prog_calc_tag")]
pub fn prog_tag(insns: &[Insn]) -> [u8; BPF_TAG_SIZE] {
    let d = prog_digest(insns);
    let mut tag = [0u8; BPF_TAG_SIZE];
    tag.copy_from_slice(&d[..BPF_TAG_SIZE]);
    tag
}

/// A tag as bpftool prints it: 16 lowercase hex digits, no separators.
pub fn tag_hex(tag: &[u8; BPF_TAG_SIZE]) -> String {
    tag.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses the form [`tag_hex`] prints, as `bpftool prog show tag TAG` takes it:
/// exactly 16 hex digits, either case.
pub fn parse_tag(s: &str) -> Option<[u8; BPF_TAG_SIZE]> {
    let b = s.as_bytes();
    if b.len() != 2 * BPF_TAG_SIZE {
        return None;
    }
    let mut tag = [0u8; BPF_TAG_SIZE];
    for (k, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        tag[k] = (hi * 16 + lo) as u8;
    }
    Some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_standard_vector() {
        // FIPS 180-2 example "abc": the kernel hashes with an ordinary SHA-256.
        let d: [u8; 32] = Sha256::digest(b"abc").into();
        assert_eq!(tag_hex(&d[..8].try_into().unwrap()), "ba7816bf8f01cfea");
    }

    #[test]
    fn hex_round_trip() {
        let t = [0x61, 0x4b, 0x43, 0x4c, 0xd8, 0x32, 0x4e, 0xcc];
        assert_eq!(tag_hex(&t), "614b434cd8324ecc");
        assert_eq!(parse_tag("614b434cd8324ecc"), Some(t));
        assert_eq!(parse_tag("614B434CD8324ECC"), Some(t));
        assert_eq!(parse_tag("614b434cd8324ec"), None);
        assert_eq!(parse_tag("614b434cd8324ecg"), None);
    }
}
