//! The assembler against the bpf_conformance corpus: every positive test assembles,
//! every negative one is refused at the stage upstream refuses it, and the
//! conformance disassembler round-trips every program.

use bpfvm_isa::asm::{assemble, disassemble_conformance, parse_data_file, AsmError, DataFile};
use bpfvm_isa::decode_program;
use bpfvm_isa::disasm::{kernel_listing, NoSymbols};
use std::path::PathBuf;

fn conformance_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("BPF_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    if dir.join("tests").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: bpf_conformance data not found at {} (set BPF_CONFORMANCE_DIR)",
            dir.display()
        );
        None
    }
}

fn data_files(dir: PathBuf) -> Vec<(String, String)> {
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "data"))
        .map(|p| {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            (name, text)
        })
        .collect();
    v.sort();
    v
}

fn parse(name: &str, text: &str) -> DataFile {
    parse_data_file(text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_positive_test_assembles_and_round_trips() {
    let Some(dir) = conformance_dir() else { return };
    let files = data_files(dir.join("tests"));
    assert!(
        files.len() >= 313,
        "expected the 313 upstream tests, found {}",
        files.len()
    );
    let mut with_raw = 0;
    for (name, text) in &files {
        let f = parse(name, text);
        assert!(f.asm.is_some(), "{name}: no asm section");
        assert!(
            f.result.is_some() || f.error.is_some(),
            "{name}: no expectation"
        );
        let asm = assemble(f.asm.as_deref().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!asm.is_empty(), "{name}: empty program");
        // Every assembled program is made of valid table rows.
        decode_program(&asm)
            .unwrap_or_else(|e| panic!("{name}: assembled program does not decode: {e}"));
        if let Some(raw) = &f.raw {
            with_raw += 1;
            assert_eq!(&asm, raw, "{name}: -- asm and -- raw differ");
        }
        assert_eq!(
            f.program().unwrap(),
            f.raw.clone().unwrap_or(asm.clone()),
            "{name}"
        );
        // The kernel-syntax listing covers every instruction of the corpus too.
        let listing = kernel_listing(&asm, &NoSymbols, false);
        assert_eq!(
            listing.lines().count(),
            decode_program(&asm).map(|d| d.len()).unwrap_or(0),
            "{name}"
        );
        assert!(!listing.contains("invalid"), "{name}:\n{listing}");
        let text = disassemble_conformance(&asm);
        let back = assemble(&text).unwrap_or_else(|e| panic!("{name}: re-assembling\n{text}\n{e}"));
        assert_eq!(back, asm, "{name}: round trip through\n{text}");
    }
    assert!(with_raw >= 1, "lddw.data carries both -- asm and -- raw");
}

#[test]
fn sections_are_read() {
    let Some(dir) = conformance_dir() else { return };
    let t = |n: &str| {
        let p = dir.join("tests").join(n);
        parse(
            n,
            &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        )
    };
    let f = t("lddw.data");
    assert_eq!(f.result, Some(0x1122334455667788));
    assert_eq!(f.raw.as_ref().map(Vec::len), Some(3));
    let f = t("callx.data");
    assert_eq!(f.options, vec!["no register offset".to_string()]);
    let f = t("prime.data");
    assert!(f.c.as_deref().is_some_and(|c| c.contains("uint64_t entry")));
    let f = t("be16.data");
    assert_eq!(f.mem, vec![0x11, 0x22]);
}

/// Upstream's negative corpus. Each file fails at a specific stage; files whose
/// program is fine but whose expectation is wrong (the suite checks that a runner
/// reports the mismatch) must assemble.
#[test]
fn negative_tests_are_refused() {
    let Some(dir) = conformance_dir() else { return };
    let files = data_files(dir.join("negative"));
    assert!(!files.is_empty());
    for (name, text) in &files {
        let stem = name.trim_end_matches(".data");
        let parsed = parse_data_file(text);
        match stem {
            "invalid_unknown_directive" => {
                assert!(
                    matches!(parsed, Err(AsmError::UnknownDirective { .. })),
                    "{name}: {parsed:?}"
                );
            }
            "empty" | "empty_instructions" => {
                let f = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(
                    matches!(f.program(), Err(AsmError::NoProgram { .. })),
                    "{name}"
                );
            }
            // Valid programs with a deliberately wrong expectation.
            "error" | "incorrect_return_value_high_bits" => {
                let f = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
                let p = f.program().unwrap_or_else(|e| panic!("{name}: {e}"));
                decode_program(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            s if s.starts_with("unused-") => {
                let f = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
                let p = f.program().unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(f.raw.is_some(), "{name}: expected a raw section");
                assert!(
                    decode_program(&p).is_err(),
                    "{name}: reserved field accepted"
                );
            }
            s if s.starts_with("invalid_") => {
                let f = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
                let r = f.program();
                assert!(r.is_err(), "{name}: assembled to {r:?}");
                let e = r.unwrap_err();
                // The error points at the offending line of the file.
                let bad_line = text.lines().nth(e.line() - 1).unwrap_or_default();
                assert!(
                    !bad_line.trim().is_empty(),
                    "{name}: {e} points at an empty line"
                );
                let want = match s {
                    "invalid_imm32_dec_range" | "invalid_imm32_hex_range" => {
                        matches!(e, AsmError::ImmediateRange { .. })
                    }
                    "invalid_label" => matches!(e, AsmError::InvalidLabel { .. }),
                    "invalid_lock" | "invalid_lock2" | "invalid_operand_count" => {
                        matches!(e, AsmError::OperandCount { .. })
                    }
                    "invalid_mnemonic" => matches!(e, AsmError::InvalidMnemonic { .. }),
                    "invalid_offset" => matches!(e, AsmError::InvalidMemOperand { .. }),
                    "invalid_offset_range" => matches!(e, AsmError::OffsetRange { .. }),
                    "invalid_register" => matches!(e, AsmError::InvalidRegister { .. }),
                    _ => true,
                };
                assert!(want, "{name}: unexpected error kind {e:?}");
            }
            _ => panic!("{name}: negative test not classified; decide what it expects"),
        }
    }
}

proptest::proptest! {
    /// Arbitrary text never panics the assembler or the `.data` reader.
    #[test]
    fn garbage_is_refused_not_panicked(src in "(?s)[-+%r0-9a-z\\[\\],:# \n\t\u{e9}x]{0,200}") {
        let _ = assemble(&src);
        let _ = parse_data_file(&src).map(|f| f.program());
        let _ = parse_data_file(&format!("-- asm\n{src}")).map(|f| f.program());
        let _ = parse_data_file(&format!("-- raw\n{src}\n-- mem\n{src}"));
    }
}
