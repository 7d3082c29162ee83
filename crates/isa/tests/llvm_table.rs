//! Every row of the opcode table, with a few operand sets each, printed by
//! `llvm_insn_text` and by llvm-objdump-19 itself: the texts must be equal.
//!
//! The instructions are assembled as raw `.quad`s with llvm-mc-19 (so no LLVM
//! assembler syntax is needed) and disassembled with llvm-objdump-19 -d. The test
//! skips, saying so, when either tool is missing.

use bpfvm_isa::disasm_llvm::{llvm_branch_target, llvm_insn_text};
use bpfvm_isa::{decode_at, encode, Decoded, Insn, Op, Shape};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

fn tool(name: &str) -> Option<()> {
    Command::new(name)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| ())
}

/// A few operand sets per shape: small and large, positive and negative.
fn samples(op: Op) -> Vec<Decoded> {
    let d = |dst, src, off, imm| Decoded {
        op,
        dst,
        src,
        off,
        imm,
    };
    match op.shape() {
        Shape::AluK => vec![
            d(1, 0, 0, 0),
            d(9, 0, 0, -1),
            d(0, 0, 0, 0x7fff_ffff),
            d(3, 0, 0, i32::MIN as i64),
        ],
        Shape::AluX | Shape::MovSx => vec![d(1, 2, 0, 0), d(10, 0, 0, 0), d(0, 9, 0, 0)],
        Shape::Neg | Shape::End | Shape::CallX => vec![d(1, 0, 0, 0), d(9, 0, 0, 0)],
        Shape::JmpK => vec![d(1, 0, 3, 2), d(9, 0, -3, -7), d(0, 0, 0, 0x1000)],
        Shape::JmpX => vec![d(1, 2, 3, 0), d(9, 0, -2, 0)],
        Shape::Ja => vec![d(0, 0, 2, 0), d(0, 0, -1, 0), d(0, 0, 0, 0)],
        Shape::Ja32 => vec![d(0, 0, 0, 3), d(0, 0, 0, -2)],
        Shape::Call => vec![d(0, 0, 0, 6), d(0, 0, 0, -1), d(0, 0, 0, 0x1234)],
        Shape::Exit => vec![d(0, 0, 0, 0)],
        Shape::LdImm64 => vec![
            d(1, 0, 0, 0),
            d(2, 0, 0, -1),
            d(3, 0, 0, 0x0102_0304_0506_0708),
            d(4, 1, 0, 7),
            d(5, 2, 0, -5),
            d(6, 5, 0, 0x1_0000_0003),
        ],
        Shape::LdAbs => vec![d(0, 0, 0, 12), d(0, 0, 0, -1)],
        Shape::LdInd => vec![d(0, 3, 0, 0), d(0, 9, 0, 4)],
        Shape::Ldx | Shape::Stx | Shape::Atomic => {
            vec![
                d(1, 2, 0, 0),
                d(10, 1, -8, 0),
                d(3, 10, 0x7fff, 0),
                d(0, 9, i16::MIN, 0),
            ]
        }
        Shape::St => vec![d(10, 0, -8, 5), d(1, 0, 16, -1)],
        Shape::MayGoto => vec![d(0, 0, 2, 0), d(0, 0, -1, 0), d(0, 0, 0, 0)],
        Shape::AsCast => vec![d(1, 2, 0, 1), d(3, 4, 0, 1 << 16), d(0, 9, 0, 1)],
        Shape::LoadAcq | Shape::StoreRel => vec![
            d(1, 2, 0, 0),
            d(10, 1, -8, 0),
            d(3, 10, 0x7fff, 0),
            d(0, 9, i16::MIN, 0),
        ],
    }
}

/// Rows LLVM 19 predates (load-acquire, store-release came with LLVM 21): their
/// text is checked against llvm-objdump-22's, recorded in
/// `tests/golden/llvm22_acq_rel.txt` (`pc<TAB>text`), re-recorded with
/// `BPFVM_BLESS=1` where llvm-mc-22 and llvm-objdump-22 are installed.
fn newer_than_llvm19(op: Op) -> bool {
    matches!(op.shape(), Shape::LoadAcq | Shape::StoreRel)
}

fn llvm_disassemble(insns: &[Insn]) -> Option<BTreeMap<usize, String>> {
    llvm_disassemble_with(insns, "19")
}

fn llvm_disassemble_with(insns: &[Insn], v: &str) -> Option<BTreeMap<usize, String>> {
    let (mc, objdump) = (format!("llvm-mc-{v}"), format!("llvm-objdump-{v}"));
    tool(&mc)?;
    tool(&objdump)?;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("llvm_table_{v}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut src = String::from("\t.section xdp,\"ax\",@progbits\n\t.globl f\nf:\n");
    for i in insns {
        src.push_str(&format!("\t.quad {:#018x}\n", i.to_u64()));
    }
    let s = dir.join("t.s");
    let o = dir.join("t.o");
    std::fs::write(&s, src).unwrap();
    let st = Command::new(&mc)
        .args(["-triple", "bpfel", "-filetype=obj", "-o"])
        .arg(&o)
        .arg(&s)
        .status()
        .unwrap();
    assert!(st.success(), "{mc} failed");
    let out = Command::new(&objdump).arg("-d").arg(&o).output().unwrap();
    assert!(out.status.success());
    let _ = std::fs::remove_dir_all(&dir);
    let mut map = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        // "      12:\t<bytes>\t<text>"
        let mut parts = line.splitn(3, '\t');
        let (Some(addr), Some(_bytes), Some(text)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(pc) = addr.trim().trim_end_matches(':').parse::<usize>() else {
            continue;
        };
        map.insert(pc, text.to_string());
    }
    Some(map)
}

#[test]
fn every_table_row_matches_llvm_objdump() {
    let mut insns = Vec::new();
    let mut cases = Vec::new();
    for op in Op::all().filter(|op| !newer_than_llvm19(*op)) {
        for d in samples(op) {
            let enc = encode(&d);
            // Make sure the sample is valid for the table itself.
            let pc = insns.len();
            insns.extend_from_slice(&enc);
            decode_at(&insns, pc).unwrap_or_else(|e| panic!("sample {d:?}: {e}"));
            cases.push((pc, d));
        }
    }
    let Some(llvm) = llvm_disassemble(&insns) else {
        eprintln!("SKIP: llvm-mc-19 or llvm-objdump-19 not installed");
        return;
    };
    let mut bad = Vec::new();
    for (pc, d) in &cases {
        let mut ours = llvm_insn_text(&insns, *pc).unwrap();
        if let Some(t) = llvm_branch_target(d, *pc) {
            // llvm-objdump annotates targets: <f> or <f+0xNN> (byte offset).
            let disp = (t as u64).wrapping_mul(8);
            if disp == 0 {
                ours.push_str(" <f>");
            } else {
                ours.push_str(&format!(" <f+{disp:#x}>"));
            }
        }
        let theirs = llvm.get(pc).cloned().unwrap_or_else(|| "(no line)".into());
        if ours != theirs {
            bad.push(format!(
                "{:?} {:?}\n   ours:  {ours}\n   llvm:  {theirs}",
                d.op, d
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} differ:\n{}",
        bad.len(),
        cases.len(),
        bad.join("\n")
    );
}

#[test]
fn load_acquire_store_release_match_llvm22() {
    let mut insns = Vec::new();
    for op in Op::all().filter(|op| newer_than_llvm19(*op)) {
        for d in samples(op) {
            insns.extend(encode(&d));
        }
    }
    let golden_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/llvm22_acq_rel.txt");
    if std::env::var_os("BPFVM_BLESS").is_some() {
        match llvm_disassemble_with(&insns, "22") {
            Some(map) => {
                let mut text = String::from(
                    "# llvm-objdump-22 -d of the load-acquire/store-release samples (llvm_table.rs)\n",
                );
                for (pc, t) in &map {
                    text.push_str(&format!("{pc}\t{t}\n"));
                }
                std::fs::write(&golden_path, text).unwrap();
            }
            None => eprintln!("not blessed: llvm-mc-22 or llvm-objdump-22 not installed"),
        }
    }
    let golden = std::fs::read_to_string(&golden_path).unwrap();
    let expected: BTreeMap<usize, String> = golden
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (pc, t) = l.split_once('\t')?;
            Some((pc.parse().ok()?, t.to_string()))
        })
        .collect();
    assert_eq!(expected.len(), insns.len(), "golden is stale: bless it");
    for (pc, t) in &expected {
        assert_eq!(&llvm_insn_text(&insns, *pc).unwrap(), t, "insn {pc}");
    }
}
