//! bpfvm-objdump — internal dependency of bpfvm (re-exported as `bpfvm::objdump`).
//!
//! `llvm-objdump -d` / `-S` for BPF objects, byte for byte as LLVM 19 prints them.
//!
//! The object is read with `object`'s ELF view; every executable section is cut
//! into symbol ranges the way llvm-objdump does (symbols sorted by address, name
//! and type, one header per address, a section-named dummy when nothing starts at
//! 0), and each instruction is printed with `bpfvm_isa::disasm_llvm` (so the
//! opcode table drives the text). With source, line numbers come from DWARF
//! `.debug_line` (read with gimli, relocations applied as LLVM's DWARF reader
//! applies them, the section of each sequence taken from its `DW_LNE_set_address`
//! relocation), or from `.BTF.ext` line info when the object has no `.debug*`
//! section; source text is read from disk like llvm-objdump does.

use bpfvm_isa::disasm_llvm::{llvm_branch_target, llvm_decode};
use bpfvm_obj::btf::{Btf, BtfExt};
use object::elf;
use object::read::elf::{ElfFile64, FileHeader, SectionHeader, Sym};
use object::Endianness;
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why an object could not be dumped at all.
#[derive(Debug, Error)]
pub enum ObjdumpError {
    #[error("'{path}': the file was not recognized as a valid object file")]
    NotElf {
        path: String,
        #[source]
        source: object::Error,
    },
    #[error("'{path}': not a BPF object (e_machine {machine})")]
    NotBpf { path: String, machine: u16 },
    #[error("'{path}': bad section {section}")]
    BadSection {
        path: String,
        section: usize,
        #[source]
        source: object::Error,
    },
    #[error("'{path}': bad symbol table")]
    BadSymbols {
        path: String,
        #[source]
        source: object::Error,
    },
}

/// How to dump.
#[derive(Debug, Clone)]
pub struct ObjdumpOptions {
    /// `-S`: interleave source lines.
    pub with_source: bool,
    /// Directory relative source paths are resolved against (llvm-objdump uses
    /// its working directory; `None` does the same).
    pub source_dir: Option<PathBuf>,
    /// Program name warnings start with (`llvm-objdump-19: warning: ...`).
    pub tool_name: String,
}

impl Default for ObjdumpOptions {
    fn default() -> Self {
        ObjdumpOptions {
            with_source: false,
            source_dir: None,
            tool_name: "bpfvm".into(),
        }
    }
}

/// What llvm-objdump would print: `text` on stdout, `warnings` (whole lines,
/// without newline) on stderr.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjdumpOutput {
    pub text: String,
    pub warnings: Vec<String>,
}

/// `llvm-objdump -d` (or `-S` with `with_source`) of one object; `path_as_printed`
/// is the name the output shows (and relative source paths resolve against the
/// working directory). Warnings are dropped; see [`objdump_with`].
pub fn objdump(
    path_as_printed: &str,
    bytes: &[u8],
    with_source: bool,
) -> Result<String, ObjdumpError> {
    let opts = ObjdumpOptions {
        with_source,
        ..Default::default()
    };
    Ok(objdump_with(path_as_printed, bytes, &opts)?.text)
}

/// One symbol as llvm-objdump keeps it for a section.
#[derive(Debug, Clone)]
struct SymInfo {
    addr: u64,
    name: String,
    ty: u8,
}

/// `llvm-objdump -d/-S` of one object, with its warnings.
pub fn objdump_with(
    path: &str,
    bytes: &[u8],
    opts: &ObjdumpOptions,
) -> Result<ObjdumpOutput, ObjdumpError> {
    let file = ElfFile64::<Endianness>::parse(bytes).map_err(|source| ObjdumpError::NotElf {
        path: path.into(),
        source,
    })?;
    let endian = file.endian();
    let header = file.elf_header();
    let machine = header.e_machine(endian);
    if machine != elf::EM_BPF {
        return Err(ObjdumpError::NotBpf {
            path: path.into(),
            machine,
        });
    }
    let big_endian = !header.is_little_endian();
    let sections = file.elf_section_table();
    let symtab = file.elf_symbol_table();

    // Symbols per section, as llvm-objdump collects them: named, not
    // STT_SECTION/STT_FILE, defined in a section.
    let mut by_section: HashMap<usize, Vec<SymInfo>> = HashMap::new();
    for (i, sym) in symtab.iter().enumerate() {
        if i == 0 {
            continue;
        }
        let ty = sym.st_type();
        if ty == elf::STT_SECTION || ty == elf::STT_FILE {
            continue;
        }
        let name = symtab
            .symbol_name(endian, sym)
            .map_err(|source| ObjdumpError::BadSymbols {
                path: path.into(),
                source,
            })?;
        if name.is_empty() {
            continue;
        }
        let shndx = sym.st_shndx(endian);
        if shndx == elf::SHN_UNDEF || shndx >= elf::SHN_LORESERVE {
            continue;
        }
        by_section.entry(shndx as usize).or_default().push(SymInfo {
            addr: sym.st_value(endian),
            name: String::from_utf8_lossy(name).into_owned(),
            ty,
        });
    }

    let mut out = ObjdumpOutput::default();
    let _ = write!(out.text, "\n{path}:\tfile format elf64-bpf\n");
    let mut src = if opts.with_source {
        Some(SourcePrinter::new(path, opts))
    } else {
        None
    };

    for (index, sh) in sections.iter().enumerate() {
        let flags = sh.sh_flags(endian);
        if flags & u64::from(elf::SHF_EXECINSTR) == 0 || sh.sh_type(endian) == elf::SHT_NOBITS {
            continue;
        }
        let name =
            String::from_utf8_lossy(sections.section_name(endian, sh).unwrap_or(b"")).into_owned();
        let data = sh
            .data(endian, bytes)
            .map_err(|source| ObjdumpError::BadSection {
                path: path.into(),
                section: index,
                source,
            })?;
        let mut syms = by_section.remove(&index).unwrap_or_default();
        // SymbolInfoTy's order: address, then name, then type.
        syms.sort_by(|a, b| {
            (a.addr, a.name.as_bytes(), a.ty).cmp(&(b.addr, b.name.as_bytes(), b.ty))
        });
        if syms.first().is_none_or(|s| s.addr != 0) {
            syms.insert(
                0,
                SymInfo {
                    addr: 0,
                    name: name.clone(),
                    ty: elf::STT_FUNC,
                },
            );
        }
        let size = data.len() as u64;
        let le: Cow<'_, [u8]> = if big_endian {
            Cow::Owned(to_little_endian(data))
        } else {
            Cow::Borrowed(data)
        };
        let mut printed_section = false;
        let mut si = 0;
        while si < syms.len() {
            let first = si;
            let start = syms[si].addr;
            while si < syms.len() && syms[si].addr == start {
                si += 1;
            }
            let here = &syms[first..si];
            let mut end = size;
            if si < syms.len() {
                end = end.min(syms[si].addr);
            }
            if start >= end {
                continue;
            }
            if !printed_section {
                printed_section = true;
                let _ = write!(out.text, "\nDisassembly of section {name}:\n");
            }
            // Show the last code symbol here; data only if all are data.
            let mut as_data = true;
            let mut shown = here.len() - 1;
            for (i, s) in here.iter().enumerate() {
                if s.ty != elf::STT_OBJECT && s.ty != elf::STT_COMMON {
                    as_data = false;
                    shown = i;
                }
            }
            let _ = write!(out.text, "\n{:016x} <{}>:\n", start, here[shown].name);
            if as_data {
                dump_data(&mut out.text, start as usize, end as usize, data);
                continue;
            }
            let ctx = SectionCtx {
                index,
                data,
                le: &le,
                syms: &syms,
            };
            disassemble_range(
                &mut out,
                &ctx,
                start as usize,
                end as usize,
                src.as_mut(),
                &file,
            );
        }
    }
    if let Some(sp) = src {
        out.warnings.extend(sp.warnings);
    }
    Ok(out)
}

struct SectionCtx<'a> {
    index: usize,
    data: &'a [u8],
    /// `data` with every whole slot in little-endian layout, what the decoder
    /// reads (the same bytes for a little-endian object).
    le: &'a [u8],
    syms: &'a [SymInfo],
}

/// A big-endian (bpfeb) section's slots rewritten little-endian: registers
/// swap nibbles, `off` and `imm` swap bytes. A partial last slot stays as is.
fn to_little_endian(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    for s in v.chunks_exact_mut(8) {
        s[1] = s[1].rotate_left(4);
        s.swap(2, 3);
        s[4..8].reverse();
    }
    v
}

/// llvm-objdump's `dumpELFData`: eight bytes a line, hex then printable ASCII.
fn dump_data(out: &mut String, mut index: usize, end: usize, data: &[u8]) {
    let mut ascii = Vec::with_capacity(8);
    while index < end {
        if ascii.is_empty() {
            let _ = write!(out, "{index:8x}:");
        }
        let b = data.get(index).copied().unwrap_or(0);
        let _ = write!(out, " {b:02x}");
        ascii.push(if (0x20..0x7f).contains(&b) {
            b as char
        } else {
            '.'
        });
        if index == end - 1 || ascii.len() == 8 {
            out.push_str(&" ".repeat(3 * (8 - ascii.len())));
            out.push_str("         ");
            out.extend(ascii.drain(..));
            out.push('\n');
        }
        index += 1;
    }
}

fn disassemble_range(
    out: &mut ObjdumpOutput,
    ctx: &SectionCtx<'_>,
    start: usize,
    end: usize,
    mut src: Option<&mut SourcePrinter>,
    file: &ElfFile64<'_, Endianness>,
) {
    let data = ctx.data;
    let mut index = start;
    while index < end {
        // Runs of at least eight zero bytes are skipped, in multiples of four.
        let zeros = data[index..end].iter().take_while(|&&b| b == 0).count();
        if zeros >= 8 {
            out.text.push_str("\t\t...\n");
            index += zeros & !3;
            continue;
        }
        if let Some(sp) = src.as_deref_mut() {
            sp.print_source_line(&mut out.text, index as u64, ctx.index, file);
        }
        let dec = llvm_decode(&ctx.le[index..]);
        let size = dec.size.max(1);
        let bytes = &data[index..(index + size).min(data.len())];
        let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let _ = write!(
            out.text,
            "{:8}:\t{}\t{}",
            index / 8,
            hex.join(" "),
            dec.text()
        );
        if let Some(rel) = dec.insn.as_ref().and_then(|d| llvm_branch_target(d, 0)) {
            // LLVM's evaluateBranch: Addr + 8 + imm * 8, modulo 2^64.
            let target = (index as u64).wrapping_add((rel as u64).wrapping_mul(8));
            annotate(&mut out.text, ctx.syms, target);
        }
        out.text.push('\n');
        index += size;
    }
}

/// ` <sym>` or ` <sym+0x..>`: the last symbol at or before the target.
fn annotate(out: &mut String, syms: &[SymInfo], target: u64) {
    let n = syms.partition_point(|s| s.addr <= target);
    if n == 0 {
        return;
    }
    let s = &syms[n - 1];
    let disp = target.wrapping_sub(s.addr);
    if disp == 0 {
        let _ = write!(out, " <{}>", s.name);
    } else {
        let _ = write!(out, " <{}+{:#x}>", s.name, disp);
    }
}

// ---------------------------------------------------------------------------
// Source lines
// ---------------------------------------------------------------------------

/// `DILineInfo::BadString`.
const BAD_STRING: &str = "<invalid>";

#[derive(Debug, Clone, PartialEq, Eq)]
struct LineInfo {
    file: String,
    line: u64,
    /// The line's text when the debug info carries it (BTF).
    text: Option<String>,
}

impl Default for LineInfo {
    fn default() -> Self {
        LineInfo {
            file: BAD_STRING.into(),
            line: 0,
            text: None,
        }
    }
}

enum LineSource {
    Dwarf(DwarfLines),
    Btf(BtfLines),
    None,
}

/// llvm-objdump's `SourcePrinter`: one per object, remembering the last line
/// printed across functions and sections.
struct SourcePrinter {
    obj_path: String,
    tool: String,
    source_dir: Option<PathBuf>,
    lines: Option<LineSource>,
    old: LineInfo,
    cache: HashMap<String, Vec<String>>,
    missing: BTreeSet<String>,
    warnings: Vec<String>,
}

impl SourcePrinter {
    fn new(obj_path: &str, opts: &ObjdumpOptions) -> Self {
        SourcePrinter {
            obj_path: obj_path.into(),
            tool: opts.tool_name.clone(),
            source_dir: opts.source_dir.clone(),
            lines: None,
            old: LineInfo::default(),
            cache: HashMap::new(),
            missing: BTreeSet::new(),
            warnings: Vec::new(),
        }
    }

    fn warn(&mut self, msg: String) {
        self.warnings.push(format!(
            "{}: warning: '{}': {}",
            self.tool, self.obj_path, msg
        ));
    }

    fn print_source_line(
        &mut self,
        out: &mut String,
        addr: u64,
        section: usize,
        file: &ElfFile64<'_, Endianness>,
    ) {
        if self.lines.is_none() {
            // Like LLVM, the debug info is read on the first lookup.
            let (src, warnings) = load_line_source(file);
            self.warnings.extend(warnings);
            self.lines = Some(src);
        }
        let info = match self.lines.as_ref() {
            Some(LineSource::Dwarf(d)) => d.lookup(addr, section),
            Some(LineSource::Btf(b)) => b.lookup(addr, section),
            _ => LineInfo::default(),
        };
        self.print_sources(out, &info);
        self.old = info;
    }

    fn print_sources(&mut self, out: &mut String, info: &LineInfo) {
        if info.file == BAD_STRING
            || info.line == 0
            || (self.old.line == info.line && self.old.file == info.file)
        {
            return;
        }
        if let Some(text) = &info.text {
            let _ = writeln!(out, "; {text}");
            return;
        }
        if !self.cache.contains_key(&info.file) {
            let p = Path::new(&info.file);
            let full = match &self.source_dir {
                Some(dir) if p.is_relative() => dir.join(p),
                _ => p.to_path_buf(),
            };
            match std::fs::read(&full) {
                Ok(bytes) => {
                    self.cache.insert(info.file.clone(), split_lines(&bytes));
                }
                Err(_) => {
                    if self.missing.insert(info.file.clone()) {
                        self.warn(format!("failed to find source {}", info.file));
                    }
                    return;
                }
            }
        }
        let Some(lines) = self.cache.get(&info.file) else {
            return;
        };
        if info.line > lines.len() as u64 {
            let msg = format!(
                "debug info line number {} exceeds the number of lines in {}",
                info.line, info.file
            );
            self.warn(msg);
            return;
        }
        let _ = writeln!(out, "; {}", lines[info.line as usize - 1]);
    }
}

/// Lines as llvm-objdump cuts a source file: on `\n`, dropping a `\r` before it,
/// keeping a last line without newline.
fn split_lines(bytes: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            let mut e = i;
            if e > start && bytes[e - 1] == b'\r' {
                e -= 1;
            }
            lines.push(String::from_utf8_lossy(&bytes[start..e]).into_owned());
            start = i + 1;
        }
    }
    if start < bytes.len() {
        lines.push(String::from_utf8_lossy(&bytes[start..]).into_owned());
    }
    lines
}

fn section_by_name<'d>(file: &ElfFile64<'d, Endianness>, name: &str) -> Option<(usize, &'d [u8])> {
    let endian = file.endian();
    let data = file.data();
    let sections = file.elf_section_table();
    sections.iter().enumerate().find_map(|(i, sh)| {
        let n = sections.section_name(endian, sh).ok()?;
        if n != name.as_bytes() {
            return None;
        }
        Some((i, sh.data(endian, data).ok()?))
    })
}

/// DWARF if the object has any `.debug*` section, else BTF line info if it has
/// `.BTF` and `.BTF.ext` (as LLVM's symbolizer chooses), else nothing.
fn load_line_source(file: &ElfFile64<'_, Endianness>) -> (LineSource, Vec<String>) {
    let endian = file.endian();
    let sections = file.elf_section_table();
    let has_debug = sections.iter().any(|sh| {
        sections
            .section_name(endian, sh)
            .is_ok_and(|n| n.starts_with(b".debug"))
    });
    if has_debug {
        let mut warnings = Vec::new();
        let lines = DwarfLines::load(file, &mut warnings);
        return (LineSource::Dwarf(lines), warnings);
    }
    // bpfvm's BTF reader is little-endian only.
    let le = file.elf_header().is_little_endian();
    if let (true, Some((_, btf)), Some((_, ext))) = (
        le,
        section_by_name(file, ".BTF"),
        section_by_name(file, ".BTF.ext"),
    ) {
        if let Some(lines) = BtfLines::load(file, btf, ext) {
            return (LineSource::Btf(lines), Vec::new());
        }
    }
    (LineSource::None, Vec::new())
}

// ---- BTF ----

struct BtfLines {
    /// Per ELF section index: (byte offset, info), sorted by offset.
    by_section: HashMap<usize, Vec<(u64, LineInfo)>>,
}

impl BtfLines {
    fn load(file: &ElfFile64<'_, Endianness>, btf: &[u8], ext: &[u8]) -> Option<Self> {
        let btf = Btf::parse(btf).ok()?;
        let ext = BtfExt::parse(ext, &btf).ok()?;
        let mut by_section: HashMap<usize, Vec<(u64, LineInfo)>> = HashMap::new();
        for sec in &ext.line_info {
            let Some((index, _)) = section_by_name(file, &sec.sec_name) else {
                continue;
            };
            let v = by_section.entry(index).or_default();
            for r in &sec.records {
                let info = LineInfo {
                    file: r.file_name.clone(),
                    line: r.line_num as u64,
                    text: Some(r.line.clone()),
                };
                v.push((r.insn_off as u64, info));
            }
            v.sort_by_key(|(off, _)| *off);
        }
        Some(BtfLines { by_section })
    }

    /// Only an exact instruction offset has a line (BTFParser::findLineInfo).
    fn lookup(&self, addr: u64, section: usize) -> LineInfo {
        let Some(v) = self.by_section.get(&section) else {
            return LineInfo::default();
        };
        let i = v.partition_point(|(off, _)| *off < addr);
        match v.get(i) {
            Some((off, info)) if *off == addr => info.clone(),
            _ => LineInfo::default(),
        }
    }
}

// ---- DWARF ----

/// `SectionedAddress::UndefSection`.
const UNDEF_SECTION: u64 = u64::MAX;
/// Relocated addresses carry their symbol's section in the bits above this, so
/// the line program can tell which section a sequence describes.
const TAG_SHIFT: u32 = 48;
const ADDR_MASK: u64 = (1 << TAG_SHIFT) - 1;

fn split_tag(v: u64) -> (u64, u64) {
    let tag = v >> TAG_SHIFT;
    let sec = if tag == 0 { UNDEF_SECTION } else { tag - 1 };
    (sec, v & ADDR_MASK)
}

// ELF relocation types for EM_BPF (the `object` crate lacks the newer ones).
const R_BPF_NONE: u32 = 0;
const R_BPF_64_64: u32 = 1;
const R_BPF_64_ABS64: u32 = 2;
const R_BPF_64_ABS32: u32 = 3;
const R_BPF_64_NODYLD32: u32 = 4;
const R_BPF_64_32: u32 = 10;

/// One resolved relocation of a debug section: symbol value and section.
#[derive(Debug, Clone, Copy)]
struct Reloc {
    r_type: u32,
    sym_value: u64,
    /// ELF index of the symbol's section, if it has one.
    sym_section: Option<usize>,
}

#[derive(Debug, Default)]
struct RelocMap(HashMap<usize, Reloc>);

impl gimli::read::Relocate for &RelocMap {
    fn relocate_address(&self, offset: usize, value: u64) -> gimli::Result<u64> {
        let Some(r) = self.0.get(&offset) else {
            return Ok(value);
        };
        let v = resolve(r, value) & ADDR_MASK;
        Ok(match r.sym_section {
            Some(s) => v | ((s as u64 + 1) << TAG_SHIFT),
            None => v,
        })
    }

    fn relocate_offset(&self, offset: usize, value: usize) -> gimli::Result<usize> {
        let Some(r) = self.0.get(&offset) else {
            return Ok(value);
        };
        Ok(resolve(r, value as u64) as usize)
    }
}

/// LLVM's `resolveBPF`: the in-place value plus the symbol's.
fn resolve(r: &Reloc, loc: u64) -> u64 {
    match r.r_type {
        R_BPF_64_ABS32 => r.sym_value.wrapping_add(loc) & 0xffff_ffff,
        _ => r.sym_value.wrapping_add(loc),
    }
}

fn bpf_reloc_name(t: u32) -> &'static str {
    match t {
        R_BPF_NONE => "R_BPF_NONE",
        R_BPF_64_64 => "R_BPF_64_64",
        R_BPF_64_ABS64 => "R_BPF_64_ABS64",
        R_BPF_64_ABS32 => "R_BPF_64_ABS32",
        R_BPF_64_NODYLD32 => "R_BPF_64_NODYLD32",
        R_BPF_64_32 => "R_BPF_64_32",
        _ => "Unknown",
    }
}

/// Debug sections LLVM reads through its relocation maps (not `.debug_aranges`,
/// `.debug_str`, `.debug_abbrev`, ...): their unsupported relocations are warned
/// about.
const RELOCATED_DWARF: &[&str] = &[
    ".debug_info",
    ".debug_types",
    ".debug_loc",
    ".debug_loclists",
    ".debug_line",
    ".debug_frame",
    ".eh_frame",
    ".debug_ranges",
    ".debug_rnglists",
    ".debug_str_offsets",
    ".debug_addr",
    ".debug_names",
    ".debug_pubnames",
    ".debug_pubtypes",
    ".debug_gnu_pubnames",
    ".debug_gnu_pubtypes",
];

type Reader<'a> =
    gimli::read::RelocateReader<gimli::EndianSlice<'a, gimli::RunTimeEndian>, &'a RelocMap>;

struct Seq {
    section: u64,
    low: u64,
    high: u64,
    /// (address, file index, line) of every row but the end_sequence one.
    rows: Vec<(u64, u64, u64)>,
}

struct UnitLines {
    ranges: Vec<(u64, u64)>,
    seqs: Vec<Seq>,
    /// File names by file index, resolved as LLVM's AbsoluteFilePath.
    files: HashMap<u64, String>,
}

struct DwarfLines {
    units: Vec<UnitLines>,
}

impl DwarfLines {
    fn load(file: &ElfFile64<'_, Endianness>, warnings: &mut Vec<String>) -> DwarfLines {
        let endian = file.endian();
        let data = file.data();
        let sections = file.elf_section_table();
        let symtab = file.elf_symbol_table();
        // Relocation maps keyed by the name of the section they patch.
        let mut maps: HashMap<Vec<u8>, RelocMap> = HashMap::new();
        for sh in sections.iter() {
            let Ok(Some((rels, _))) = sh.rel(endian, data) else {
                continue;
            };
            let target = sh.sh_info(endian) as usize;
            let Ok(tsh) = sections.section(object::SectionIndex(target)) else {
                continue;
            };
            let Ok(tname) = sections.section_name(endian, tsh) else {
                continue;
            };
            let Ok(tname_str) = std::str::from_utf8(tname) else {
                continue;
            };
            if !RELOCATED_DWARF.contains(&tname_str) {
                continue;
            }
            let map = maps.entry(tname.to_vec()).or_default();
            for rel in rels {
                let r_type = rel.r_type(endian);
                if r_type != R_BPF_64_ABS64 && r_type != R_BPF_64_ABS32 {
                    warnings.push(format!(
                        "warning: failed to compute relocation: {}, Invalid data was encountered while parsing the file",
                        bpf_reloc_name(r_type)
                    ));
                    continue;
                }
                let sym_index = rel.r_sym(endian) as usize;
                let (sym_value, sym_section) = match symtab.symbol(object::SymbolIndex(sym_index)) {
                    Ok(sym) if sym_index != 0 => {
                        let shndx = sym.st_shndx(endian);
                        let sec = (shndx != elf::SHN_UNDEF && shndx < elf::SHN_LORESERVE)
                            .then_some(shndx as usize);
                        (sym.st_value(endian), sec)
                    }
                    _ => (0, None),
                };
                map.0.insert(
                    rel.r_offset.get(endian) as usize,
                    Reloc {
                        r_type,
                        sym_value,
                        sym_section,
                    },
                );
            }
        }
        let empty = RelocMap::default();
        let maps = &maps;
        let empty = &empty;
        let dwarf_endian = if file.elf_header().is_little_endian() {
            gimli::RunTimeEndian::Little
        } else {
            gimli::RunTimeEndian::Big
        };
        let load = |id: gimli::SectionId| -> Result<Reader<'_>, gimli::Error> {
            let bytes = section_by_name(file, id.name())
                .map(|(_, b)| b)
                .unwrap_or(&[]);
            let map = maps.get(id.name().as_bytes()).unwrap_or(empty);
            Ok(gimli::read::RelocateReader::new(
                gimli::EndianSlice::new(bytes, dwarf_endian),
                map,
            ))
        };
        let mut units = Vec::new();
        if let Ok(dwarf) = gimli::Dwarf::load(load) {
            let mut iter = dwarf.units();
            while let Ok(Some(header)) = iter.next() {
                let Ok(unit) = dwarf.unit(header) else {
                    continue;
                };
                units.push(unit_lines(&dwarf, &unit));
            }
        }
        DwarfLines { units }
    }

    fn lookup(&self, addr: u64, section: usize) -> LineInfo {
        let Some(unit) = self
            .units
            .iter()
            .find(|u| u.ranges.iter().any(|&(lo, hi)| lo <= addr && addr < hi))
        else {
            return LineInfo::default();
        };
        let row = unit
            .find_row(section as u64, addr)
            .or_else(|| unit.find_row(UNDEF_SECTION, addr));
        let Some((file, line)) = row else {
            return LineInfo::default();
        };
        match unit.files.get(&file) {
            Some(name) => LineInfo {
                file: name.clone(),
                line,
                text: None,
            },
            None => LineInfo::default(),
        }
    }
}

impl UnitLines {
    /// `LineTable::lookupAddressImpl`: the first sequence (sorted by section and
    /// end address) ending after `addr`, then the last row at or before it.
    fn find_row(&self, section: u64, addr: u64) -> Option<(u64, u64)> {
        let i = self
            .seqs
            .partition_point(|s| (s.section, s.high) <= (section, addr));
        let s = self.seqs.get(i)?;
        if s.section != section || !(s.low <= addr && addr < s.high) {
            return None;
        }
        let n = s.rows.partition_point(|r| r.0 <= addr);
        let r = s.rows.get(n.checked_sub(1)?)?;
        Some((r.1, r.2))
    }
}

fn attr_str(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &gimli::Unit<Reader<'_>>,
    v: gimli::AttributeValue<Reader<'_>>,
) -> Option<String> {
    use gimli::Reader as _;
    let r = dwarf.attr_string(unit, v).ok()?;
    Some(r.to_string_lossy().ok()?.into_owned())
}

fn unit_lines(dwarf: &gimli::Dwarf<Reader<'_>>, unit: &gimli::Unit<Reader<'_>>) -> UnitLines {
    use gimli::Reader as _;
    let mut ranges = Vec::new();
    if let Ok(mut it) = dwarf.unit_ranges(unit) {
        while let Ok(Some(r)) = it.next() {
            ranges.push((r.begin & ADDR_MASK, r.end & ADDR_MASK));
        }
    }
    let comp_dir = unit
        .comp_dir
        .as_ref()
        .and_then(|d| d.to_string_lossy().ok().map(|s| s.into_owned()))
        .unwrap_or_default();
    let mut seqs = Vec::new();
    let mut files = HashMap::new();
    if let Some(program) = &unit.line_program {
        let header = program.header();
        let version = header.version();
        // File names, LLVM's getFileNameByIndex with AbsoluteFilePath.
        let count = header.file_names().len() as u64;
        let indices: Vec<u64> = if version >= 5 {
            (0..count).collect()
        } else {
            (1..=count).collect()
        };
        for idx in indices {
            let Some(entry) = header.file(idx) else {
                continue;
            };
            let Some(name) = attr_str(dwarf, unit, entry.path_name()) else {
                continue;
            };
            files.insert(
                idx,
                file_path(
                    dwarf,
                    unit,
                    header,
                    entry.directory_index(),
                    &name,
                    &comp_dir,
                ),
            );
        }
        seqs = run_line_program(header);
    }
    seqs.sort_by_key(|s| (s.section, s.high));
    UnitLines {
        ranges,
        seqs,
        files,
    }
}

fn is_absolute(p: &str) -> bool {
    // isPathAbsoluteOnWindowsOrPosix
    let b = p.as_bytes();
    p.starts_with('/')
        || p.starts_with('\\')
        || (b.len() >= 3
            && b[0].is_ascii_alphabetic()
            && b[1] == b':'
            && (b[2] == b'/' || b[2] == b'\\'))
}

/// `sys::path::append` (POSIX style): joins with `/`, skipping empty parts.
fn path_append(path: &mut String, part: &str) {
    if part.is_empty() {
        return;
    }
    if path.ends_with('/') {
        path.push_str(part.trim_start_matches('/'));
        return;
    }
    if !part.starts_with('/') && !path.is_empty() {
        path.push('/');
    }
    path.push_str(part);
}

fn file_path(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &gimli::Unit<Reader<'_>>,
    header: &gimli::LineProgramHeader<Reader<'_>>,
    dir_idx: u64,
    name: &str,
    comp_dir: &str,
) -> String {
    if is_absolute(name) {
        return name.to_string();
    }
    let dirs = header.include_directories();
    let version = header.version();
    let include_dir = if version >= 5 {
        dirs.get(dir_idx as usize).cloned()
    } else if dir_idx > 0 {
        dirs.get(dir_idx as usize - 1).cloned()
    } else {
        None
    }
    .and_then(|v| attr_str(dwarf, unit, v))
    .unwrap_or_default();
    let mut path = String::new();
    if (version < 5 || dir_idx != 0) && !comp_dir.is_empty() && !is_absolute(&include_dir) {
        path_append(&mut path, comp_dir);
    }
    path_append(&mut path, &include_dir);
    path_append(&mut path, name);
    path
}

/// The DWARF line state machine, as LLVM runs it (no tombstone skipping).
fn run_line_program(header: &gimli::LineProgramHeader<Reader<'_>>) -> Vec<Seq> {
    use gimli::LineInstruction as L;
    let min_len = header.minimum_instruction_length() as u64;
    let line_base = header.line_base() as i64;
    let line_range = header.line_range().max(1) as u64;
    let opcode_base = header.opcode_base() as u64;

    #[derive(Clone, Copy)]
    struct State {
        section: u64,
        addr: u64,
        file: u64,
        line: u64,
    }
    let fresh = State {
        section: UNDEF_SECTION,
        addr: 0,
        file: 1,
        line: 1,
    };
    let mut st = fresh;
    let mut rows: Vec<(u64, u64, u64)> = Vec::new();
    let mut seqs = Vec::new();
    let mut insns = header.instructions();
    while let Ok(Some(ins)) = insns.next_instruction(header) {
        match ins {
            L::Special(op) => {
                let adj = op as u64 - opcode_base.min(op as u64);
                st.addr = st.addr.wrapping_add(min_len * (adj / line_range));
                st.line =
                    (st.line as i64).wrapping_add(line_base + (adj % line_range) as i64) as u64;
                rows.push((st.addr, st.file, st.line));
            }
            L::Copy => rows.push((st.addr, st.file, st.line)),
            L::AdvancePc(n) => st.addr = st.addr.wrapping_add(n.wrapping_mul(min_len)),
            L::AdvanceLine(n) => st.line = (st.line as i64).wrapping_add(n) as u64,
            L::SetFile(f) => st.file = f,
            L::ConstAddPc => {
                let adj = 255u64.saturating_sub(opcode_base);
                st.addr = st.addr.wrapping_add(min_len * (adj / line_range));
            }
            L::FixedAddPc(n) => st.addr = st.addr.wrapping_add(n as u64),
            L::SetAddress(a) => {
                let (sec, addr) = split_tag(a);
                st.section = sec;
                st.addr = addr;
            }
            L::EndSequence => {
                if let Some(&(low, _, _)) = rows.first() {
                    if low < st.addr {
                        seqs.push(Seq {
                            section: st.section,
                            low,
                            high: st.addr,
                            rows: std::mem::take(&mut rows),
                        });
                    }
                }
                rows.clear();
                st = fresh;
            }
            _ => {}
        }
    }
    seqs
}
