//! Broken objects, crafted by editing the fixtures byte by byte: each must
//! give a typed error whose text names the file and what is wrong (the
//! section, symbol or field), and never panic.

use std::path::Path;

use bpfvm_obj::{ObjError, ObjErrorKind, Object};

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

fn hello() -> Vec<u8> {
    read("../../tests/fixtures/obj/hello.o")
}

fn le16(b: &[u8], o: usize) -> usize {
    u16::from_le_bytes([b[o], b[o + 1]]) as usize
}
fn le32(b: &[u8], o: usize) -> usize {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize
}
fn le64(b: &[u8], o: usize) -> usize {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize
}
fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

/// File offset of section header `name`.
fn shdr(b: &[u8], name: &str) -> usize {
    let shoff = le64(b, 40);
    let shnum = le16(b, 60);
    let shstr = shoff + 64 * le16(b, 62);
    let strtab = le64(b, shstr + 24);
    (0..shnum)
        .map(|i| shoff + 64 * i)
        .find(|&h| {
            let n = strtab + le32(b, h);
            b[n..].split(|&c| c == 0).next().unwrap() == name.as_bytes()
        })
        .unwrap_or_else(|| panic!("no section {name}"))
}

/// File offset of symbol `name`'s entry in .symtab.
fn sym(b: &[u8], name: &str) -> usize {
    let st = shdr(b, ".symtab");
    let (off, size) = (le64(b, st + 24), le64(b, st + 32));
    let link = le32(b, st + 40);
    let strtab = le64(b, le64(b, 40) + 64 * link + 24);
    (0..size / 24)
        .map(|i| off + 24 * i)
        .find(|&e| {
            let n = strtab + le32(b, e);
            b[n..].split(|&c| c == 0).next().unwrap() == name.as_bytes()
        })
        .unwrap_or_else(|| panic!("no symbol {name}"))
}

fn err(bytes: &[u8]) -> ObjError {
    match Object::parse("crafted.o", bytes) {
        Ok(_) => panic!("crafted object parsed"),
        Err(e) => e,
    }
}

/// The error's text names the file and contains every `needle`.
fn says(e: &ObjError, needles: &[&str]) {
    let text = e.to_string();
    assert!(text.starts_with("crafted.o: "), "{text}");
    for n in needles {
        assert!(text.contains(n), "{text:?} lacks {n:?}");
    }
}

#[test]
fn wrong_machine() {
    let mut b = hello();
    put16(&mut b, 18, 62);
    let e = err(&b);
    assert!(matches!(e.kind, ObjErrorKind::WrongMachine { machine: 62 }));
    says(&e, &["machine 62", "EM_BPF (247)"]);
}

#[test]
fn big_endian_and_other_classes() {
    let mut b = hello();
    b[5] = 2;
    let e = err(&b);
    assert!(matches!(e.kind, ObjErrorKind::BigEndian));
    says(&e, &["big-endian"]);
    let mut b = hello();
    b[4] = 1;
    says(&err(&b), &["ELFCLASS64"]);
    let mut b = hello();
    put16(&mut b, 16, 2);
    says(&err(&b), &["ET_REL"]);
    says(&err(b"MZ\x90\x00 not an elf at all"), &["not an ELF file"]);
    says(&err(b""), &["not an ELF file"]);
}

#[test]
fn truncated_everywhere() {
    let b = hello();
    let shoff = le64(&b, 40);
    let xdp = shdr(&b, "xdp");
    let xdp_data = le64(&b, xdp + 24);
    for len in [
        4,
        5,
        6,
        16,
        40,
        63,
        64,
        100,
        xdp_data + 3,
        shoff - 1,
        shoff + 64,
        b.len() - 1,
    ] {
        let e = err(&b[..len]);
        let t = e.to_string();
        assert!(
            matches!(e.kind, ObjErrorKind::Truncated { .. }),
            "len {len}: {t}"
        );
        says(&e, &["truncated"]);
    }
    // A section whose data runs past the end is named.
    let mut b = hello();
    put64(&mut b, xdp + 32, 0x10000);
    says(&err(&b), &["truncated", "section 'xdp'"]);
}

#[test]
fn section_and_symbol_indices_out_of_range() {
    let mut b = hello();
    put16(&mut b, 62, 999);
    says(&err(&b), &["section name table index 999"]);

    let mut b = hello();
    let counter = sym(&b, "counter");
    put16(&mut b, counter + 6, 200);
    let e = err(&b);
    assert!(matches!(
        e.kind,
        ObjErrorKind::SymbolSectionOutOfRange { shndx: 200, .. }
    ));
    says(&e, &["symbol 'counter'", "section index 200"]);

    let mut b = hello();
    let st = shdr(&b, ".symtab");
    put32(&mut b, st + 40, 77);
    says(&err(&b), &["section '.symtab'", "77"]);

    let mut b = hello();
    let rel = shdr(&b, ".relxdp");
    put32(&mut b, rel + 44, 300); // sh_info: the section it relocates
    says(&err(&b), &["section '.relxdp'", "section index 300"]);

    let mut b = hello();
    let rel = shdr(&b, ".relxdp");
    let entry = le64(&b, rel + 24);
    put32(&mut b, entry + 12, 5000); // r_sym of the first relocation
    says(&err(&b), &["section '.relxdp'", "symbol index 5000"]);

    let mut b = hello();
    let xdp = shdr(&b, "xdp");
    let name_off = le32(&b, xdp);
    put32(&mut b, xdp, name_off as u32 + 0x10_0000);
    says(&err(&b), &[".shstrtab", "string offset"]);
}

#[test]
fn misaligned_code() {
    let mut b = hello();
    let xdp = shdr(&b, "xdp");
    put64(&mut b, xdp + 32, 0x5d);
    let e = err(&b);
    assert!(matches!(
        e.kind,
        ObjErrorKind::CodeSizeMisaligned { size: 0x5d, .. }
    ));
    says(&e, &["section 'xdp'", "not a multiple of 8"]);
}

#[test]
fn bad_functions() {
    let mut b = hello();
    let s = sym(&b, "hello");
    put64(&mut b, s + 16, 0x68);
    says(
        &err(&b),
        &[
            "section 'xdp'",
            "function 'hello'",
            "crosses the section end",
        ],
    );

    let mut b = hello();
    put64(&mut b, s + 8, 4);
    put64(&mut b, s + 16, 8);
    says(
        &err(&b),
        &["function 'hello'", "whole number of instructions"],
    );

    // Two functions sharing instructions.
    let mut b = read("tests/data/elf/calls.o");
    let cb = sym(&b, "loop_cb");
    put64(&mut b, cb + 8, 0x10);
    let e = err(&b);
    assert!(matches!(e.kind, ObjErrorKind::FunctionsOverlap { .. }));
    says(
        &e,
        &["section '.text'", "'global_helper'", "'loop_cb'", "overlap"],
    );
}

#[test]
fn bad_relocations() {
    let b0 = hello();
    let rel = shdr(&b0, ".relxdp");
    let entry = le64(&b0, rel + 24);

    let mut b = b0.clone();
    put64(&mut b, entry, 0x1000);
    says(
        &err(&b),
        &[
            "section '.relxdp'",
            "relocation #0",
            "past the end of section 'xdp'",
        ],
    );

    let mut b = b0.clone();
    put64(&mut b, entry, 4);
    says(&err(&b), &["section '.relxdp'", "not at an instruction"]);

    // insn 2 is a load from memory, not LD_IMM64 or a call.
    let mut b = b0.clone();
    put64(&mut b, entry, 16);
    says(
        &err(&b),
        &[
            "section '.relxdp'",
            "neither a call nor a 64-bit load",
            "'counter'",
        ],
    );

    let mut b = b0.clone();
    put32(&mut b, rel + 4, 4); // SHT_RELA
    says(&err(&b), &["section '.relxdp'", "RELA"]);

    // Against the license: not a map or data section.
    let mut b = b0.clone();
    let lic = sym(&b, "LICENSE");
    let st = shdr(&b, ".symtab");
    let idx = (lic - le64(&b, st + 24)) / 24;
    put32(&mut b, entry + 12, idx as u32);
    says(
        &err(&b),
        &[
            "'LICENSE'",
            "section 'license'",
            "not code, a map or global data",
        ],
    );

    // A call whose target is past every function.
    let mut b = read("../../tests/fixtures/obj/hello-func.o");
    let sec = shdr(&b, "raw_tp/");
    let code = le64(&b, sec + 24);
    put32(&mut b, code + 4, 40);
    says(
        &err(&b),
        &["section 'raw_tp/'", "insn 0", "not inside any function"],
    );
}

#[test]
fn version_and_license_sections() {
    // Rename "license" to "version": 13 bytes is not a u32.
    let mut b = hello();
    let lic = shdr(&b, "license");
    let shstr = le64(&b, le64(&b, 40) + 64 * le16(&b, 62) + 24);
    let n = shstr + le32(&b, lic);
    b[n..n + 7].copy_from_slice(b"version");
    says(&err(&b), &["section 'version'", "size 13"]);
}

#[test]
fn broken_btf() {
    // Without BTF-defined maps a broken .BTF is dropped with a warning, as
    // libbpf does.
    let mut b = hello();
    let btf = le64(&b, shdr(&b, ".BTF") + 24);
    b[btf] = 0;
    let o = Object::parse("crafted.o", &b).unwrap();
    assert!(o.btf.is_none() && o.btf_ext.is_none());
    assert!(
        o.warnings.iter().any(|w| w.contains(".BTF")),
        "{:?}",
        o.warnings
    );
    assert_eq!(o.programs.len(), 1);

    // With them it is an error, with the BTF error as its source.
    let mut b = read("../../tests/fixtures/obj/tailchain.o");
    let btf = le64(&b, shdr(&b, ".BTF") + 24);
    b[btf] = 0;
    let e = err(&b);
    assert!(matches!(e.kind, ObjErrorKind::Btf { .. }));
    says(&e, &["'.BTF'"]);
    assert!(std::error::Error::source(&e).is_some());

    // A .maps section and no .BTF at all.
    let mut b = read("../../tests/fixtures/obj/tailchain.o");
    let s = shdr(&b, ".BTF");
    let shstr = le64(&b, le64(&b, 40) + 64 * le16(&b, 62) + 24);
    let n = shstr + le32(&b, s);
    b[n..n + 4].copy_from_slice(b".XTF");
    says(&err(&b), &["'.maps' needs BTF"]);
}

#[test]
fn huge_bss_costs_nothing() {
    // SHT_NOBITS sizes are not bounded by the file: found by the fuzzer,
    // which ran out of memory zero-filling a 2 GiB .bss.
    let mut b = hello();
    let bss = shdr(&b, ".bss");
    put64(&mut b, bss + 32, 0x8000_0004);
    let o = Object::parse("crafted.o", &b).unwrap();
    let m = o.map("crafted.bss").unwrap();
    assert_eq!(m.value_size, 0x8000_0004);
    assert!(m.initial_data.is_empty());
    put64(&mut b, bss + 32, 1 << 40);
    says(&err(&b), &["'.bss'", "does not fit a map value"]);
}

#[test]
fn symtab_problems() {
    let mut b = hello();
    let st = shdr(&b, ".symtab");
    put32(&mut b, st + 4, 1); // no longer SHT_SYMTAB
    says(&err(&b), &["no symbol table"]);

    let mut b = hello();
    let other = shdr(&b, ".llvm_addrsig");
    put32(&mut b, other + 4, 2);
    says(&err(&b), &["more than one symbol table"]);

    let mut b = hello();
    let st = shdr(&b, ".symtab");
    put64(&mut b, st + 56, 16);
    says(&err(&b), &["section '.symtab'", "entry size 16"]);
}
