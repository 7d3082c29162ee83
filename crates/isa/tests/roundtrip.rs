//! The table's round-trip property: for every valid instruction, decoding its
//! encoding gives it back, and encoding a decoded slot gives the same bytes.

use bpfvm_isa::*;
use proptest::prelude::*;

/// A valid instruction of the given row with random operands in the fields it uses.
fn arb_decoded() -> impl Strategy<Value = Decoded> {
    (
        0..OPS.len(),
        0u8..=10,
        0u8..=10,
        any::<i16>(),
        any::<i32>(),
        any::<i64>(),
        0u8..=6,
    )
        .prop_map(|(row, dst, src, off, imm, imm64, pseudo)| {
            let info = &OPS[row];
            let mut d = Decoded {
                op: info.op,
                dst,
                src,
                off,
                imm: imm as i64,
            };
            match info.shape {
                Shape::AluK => {
                    d.src = 0;
                    d.off = 0;
                }
                Shape::AluX => {
                    d.imm = 0;
                    d.off = 0;
                }
                Shape::Neg => {
                    d.src = 0;
                    d.off = 0;
                    d.imm = 0;
                }
                Shape::End => {
                    d.src = 0;
                    d.off = 0;
                }
                Shape::MovSx => {
                    d.imm = 0;
                }
                Shape::JmpK => {
                    d.src = 0;
                }
                Shape::JmpX => {
                    d.imm = 0;
                }
                Shape::Ja => {
                    d.dst = 0;
                    d.src = 0;
                    d.imm = 0;
                }
                Shape::Ja32 => {
                    d.dst = 0;
                    d.src = 0;
                    d.off = 0;
                }
                Shape::Call => {
                    d.dst = 0;
                    d.off = 0;
                }
                Shape::CallX => {
                    d.src = 0;
                    d.off = 0;
                    d.imm = 0;
                }
                Shape::Exit => {
                    d.dst = 0;
                    d.src = 0;
                    d.off = 0;
                    d.imm = 0;
                }
                Shape::LdImm64 => {
                    d.off = 0;
                    d.src = pseudo;
                    d.imm = imm64;
                }
                Shape::LdAbs => {
                    d.dst = 0;
                    d.src = 0;
                    d.off = 0;
                }
                Shape::LdInd => {
                    d.dst = 0;
                    d.off = 0;
                }
                Shape::Ldx => {
                    d.imm = 0;
                }
                Shape::St => {
                    d.src = 0;
                }
                Shape::Stx => {
                    d.imm = 0;
                }
                Shape::Atomic | Shape::LoadAcq | Shape::StoreRel => {}
                Shape::AsCast => {
                    d.imm = if imm & 1 == 0 { 1 } else { 1 << 16 };
                }
                Shape::MayGoto => {
                    d.dst = 0;
                    d.imm = 0;
                }
            }
            // Discriminator fields come from the row.
            match info.disc {
                Disc::None => {}
                Disc::Off(o) => d.off = o,
                Disc::Imm(v) => d.imm = v as i64,
                Disc::Src(s) => d.src = s,
            }
            d
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]
    #[test]
    fn decode_encode_is_identity(d in arb_decoded()) {
        let slots = encode(&d);
        let back = decode_at(&slots, 0).unwrap();
        prop_assert_eq!(back, d);
        prop_assert_eq!(slots.len(), d.slots());
    }

    #[test]
    fn encode_decode_is_identity_on_valid_bytes(raw in any::<[u8; 16]>()) {
        let slots = insns_from_bytes(&raw).unwrap();
        if let Ok(d) = decode_at(&slots, 0) {
            prop_assert_eq!(&encode(&d)[..], &slots[..d.slots()]);
        }
    }
}

#[test]
fn every_row_is_reachable_and_unique() {
    // No two rows may claim the same (code, discriminator): decode would be ambiguous.
    for (a, ra) in OPS.iter().enumerate() {
        assert_eq!(ra.op as usize, a, "table order must match Op discriminants");
        for rb in &OPS[a + 1..] {
            assert!(
                !(ra.code == rb.code && ra.disc == rb.disc),
                "{:?} and {:?} collide",
                ra.op,
                rb.op
            );
        }
    }
}

#[test]
fn reserved_fields_are_refused() {
    // add64 imm with off=1 (conformance negative/unused-add64_imm-offset)
    let p = [Insn::new(0x07, 0, 0, 1, 1)];
    assert!(matches!(
        decode_at(&p, 0),
        Err(DecodeError::ReservedField { field: "off", .. })
    ));
    // exit with dst set
    let p = [Insn::new(0x95, 1, 0, 0, 0)];
    assert!(decode_at(&p, 0).is_err());
    // lddw without its second slot
    let p = [Insn::new(0x18, 1, 0, 0, 0)];
    assert_eq!(
        decode_at(&p, 0),
        Err(DecodeError::LdImm64Truncated { pc: 0 })
    );
    // unknown opcode
    let p = [Insn::new(0xff, 0, 0, 0, 0)];
    assert!(matches!(
        decode_at(&p, 0),
        Err(DecodeError::UnknownOpcode { .. })
    ));
}
