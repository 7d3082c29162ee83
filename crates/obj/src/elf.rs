//! A small, strict ELF64 little-endian reader for BPF relocatable objects.
//!
//! Everything the rest of the crate indexes (section headers, names, data
//! ranges, the symbol table and its section indices) is validated here once,
//! so later stages can index without panicking. Records are read through the
//! `object` crate's low-level ELF types (`FileHeader64`, `SectionHeader64`,
//! `Sym64`, `Rel64`); the checks and their order are our own so that each
//! failure is a typed error naming what was being read (object's own errors
//! are generic strings).
//!
//! Misaligned input (e.g. a slice at an odd offset of a larger buffer) is
//! not an error: the crate enables object's `unaligned` feature, which makes
//! its ELF integer types alignment-1, so no aligned copy of the input is made
//! and [`Elf::data`] can keep borrowing the caller's bytes.

use object::elf::{FileHeader64, Rel64, SectionHeader64, Sym64};
use object::read::elf::{FileHeader as _, Rel as _, SectionHeader as _, Sym as _};
use object::read::StringTable;
use object::{pod, Endianness};

use crate::error::ObjErrorKind;

pub use object::elf::{
    EM_BPF, ET_REL, SHN_LORESERVE, SHN_UNDEF, SHN_XINDEX, SHT_NOBITS, SHT_NULL, SHT_PROGBITS,
    SHT_REL, SHT_RELA, SHT_SYMTAB, STB_LOCAL, STT_FUNC, STT_SECTION,
};

pub const SHF_EXECINSTR: u64 = object::elf::SHF_EXECINSTR as u64;

type Ehdr = FileHeader64<Endianness>;
type Shdr = SectionHeader64<Endianness>;
type ElfSym = Sym64<Endianness>;
type ElfRel = Rel64<Endianness>;

/// Big-endian objects are refused before any multi-byte field is read.
const LE: Endianness = Endianness::Little;

const EHDR_SIZE: u64 = size_of::<Ehdr>() as u64;
const SHDR_SIZE: u64 = size_of::<Shdr>() as u64;
const SYM_SIZE: u64 = size_of::<ElfSym>() as u64;
const REL_SIZE: u64 = size_of::<ElfRel>() as u64;

/// One section header, with its name resolved.
#[derive(Debug, Clone)]
pub struct Section {
    pub index: usize,
    pub name: String,
    pub sh_type: u32,
    pub flags: u64,
    pub offset: u64,
    pub size: u64,
    pub link: u32,
    pub info: u32,
    pub entsize: u64,
}

impl Section {
    pub fn is_exec(&self) -> bool {
        self.sh_type == SHT_PROGBITS && self.flags & SHF_EXECINSTR != 0
    }
}

/// One symbol; `shndx` is either a valid section index, `SHN_UNDEF` or one
/// of the reserved values (`SHN_ABS`, `SHN_COMMON`).
#[derive(Debug, Clone)]
pub struct Symbol {
    pub name: String,
    pub value: u64,
    pub size: u64,
    pub bind: u8,
    pub sym_type: u8,
    /// `ELF64_ST_VISIBILITY(st_other)` (`STV_HIDDEN` = 2).
    pub visibility: u8,
    pub shndx: u16,
}

impl Symbol {
    /// Index of the section this symbol is defined in, if any.
    pub fn section(&self) -> Option<usize> {
        (self.shndx != SHN_UNDEF && self.shndx < SHN_LORESERVE).then_some(self.shndx as usize)
    }
}

/// One `Elf64_Rel` entry.
#[derive(Debug, Clone, Copy)]
pub struct Rel {
    pub offset: u64,
    pub sym: usize,
    pub r_type: u32,
}

pub struct Elf<'a> {
    data: &'a [u8],
    pub sections: Vec<Section>,
    pub symbols: Vec<Symbol>,
    pub symtab_index: usize,
}

/// The bytes `offset..offset+len` of `data`, or a `Truncated` error saying
/// what was being read.
fn range(
    data: &[u8],
    offset: u64,
    len: u64,
    what: impl FnOnce() -> String,
) -> Result<&[u8], ObjErrorKind> {
    let end = offset.checked_add(len);
    match end {
        Some(end) if end <= data.len() as u64 => Ok(&data[offset as usize..end as usize]),
        _ => Err(ObjErrorKind::Truncated {
            what: what(),
            offset,
            end: end.unwrap_or(u64::MAX),
            file_len: data.len(),
        }),
    }
}

/// `bytes` (already range-checked, a multiple of the record size) as a
/// slice of ELF records; `bad` is only reached if that precondition broke.
fn records<T: pod::Pod>(
    bytes: &[u8],
    bad: impl FnOnce() -> ObjErrorKind,
) -> Result<&[T], ObjErrorKind> {
    pod::slice_from_all_bytes(bytes).map_err(|()| bad())
}

/// A NUL-terminated string at `offset` in string table `table`.
fn str_at(table: &[u8], offset: u32, table_name: &str) -> Result<String, ObjErrorKind> {
    let strings = StringTable::new(table, 0, table.len() as u64);
    let bytes = strings.get(offset).map_err(|()| ObjErrorKind::BadString {
        section: table_name.to_string(),
        offset: u64::from(offset),
    })?;
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

impl<'a> Elf<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Elf<'a>, ObjErrorKind> {
        if data.len() < 4 || data[..4] != object::elf::ELFMAG {
            return Err(ObjErrorKind::NotElf);
        }
        if data.len() < 6 {
            range(data, 0, EHDR_SIZE, || "ELF header".into())?;
        }
        match data[4] {
            object::elf::ELFCLASS64 => {}
            class => return Err(ObjErrorKind::NotElf64 { class }),
        }
        match data[5] {
            object::elf::ELFDATA2LSB => {}
            object::elf::ELFDATA2MSB => return Err(ObjErrorKind::BigEndian),
            encoding => return Err(ObjErrorKind::BadEncoding { encoding }),
        }
        let hdr_bytes = range(data, 0, EHDR_SIZE, || "ELF header".into())?;
        let (hdr, _) =
            pod::from_bytes::<Ehdr>(hdr_bytes).map_err(|()| ObjErrorKind::BadHeader {
                reason: "cannot read the ELF header".into(),
            })?;
        let e_type = hdr.e_type(LE);
        let e_machine = hdr.e_machine(LE);
        let e_version = hdr.e_version(LE);
        if e_machine != EM_BPF {
            return Err(ObjErrorKind::WrongMachine { machine: e_machine });
        }
        if e_type != ET_REL {
            return Err(ObjErrorKind::NotRelocatable { e_type });
        }
        if e_version != u32::from(object::elf::EV_CURRENT)
            || hdr.e_ident().version != object::elf::EV_CURRENT
        {
            return Err(ObjErrorKind::BadVersion { version: e_version });
        }
        let e_shoff = hdr.e_shoff(LE);
        let e_shentsize = hdr.e_shentsize(LE);
        let mut shnum = u64::from(hdr.e_shnum(LE));
        let mut shstrndx = u64::from(hdr.e_shstrndx(LE));
        if e_shoff == 0 {
            return Err(ObjErrorKind::BadHeader {
                reason: "no section header table".into(),
            });
        }
        if u64::from(e_shentsize) != SHDR_SIZE {
            return Err(ObjErrorKind::BadHeader {
                reason: format!("section header size {e_shentsize} is not {SHDR_SIZE}"),
            });
        }
        // Extended numbering: the real counts live in section header 0.
        let sh0_bytes = range(data, e_shoff, SHDR_SIZE, || "section header #0".into())?;
        let sh0 = &records::<Shdr>(sh0_bytes, || ObjErrorKind::BadSectionHeader {
            index: 0,
            reason: "cannot read the section header".into(),
        })?[0];
        if shnum == 0 {
            shnum = sh0.sh_size(LE);
        }
        if shstrndx == u64::from(SHN_XINDEX) {
            shstrndx = u64::from(sh0.sh_link(LE));
        }
        let table_len = shnum.saturating_mul(SHDR_SIZE);
        let table_bytes = range(data, e_shoff, table_len, || {
            format!("section header table ({shnum} entries)")
        })?;
        if shstrndx >= shnum {
            return Err(ObjErrorKind::BadHeader {
                reason: format!(
                    "section name table index {shstrndx} is out of range ({shnum} sections)"
                ),
            });
        }
        let table = records::<Shdr>(table_bytes, || ObjErrorKind::BadHeader {
            reason: format!("cannot read the section header table ({shnum} entries)"),
        })?;
        let count = table.len();

        let shstr = &table[shstrndx as usize];
        if shstr.sh_type(LE) == SHT_NOBITS {
            return Err(ObjErrorKind::BadSectionHeader {
                index: shstrndx as usize,
                reason: "the section name table has no data (SHT_NOBITS)".into(),
            });
        }
        let shstrtab = range(data, shstr.sh_offset(LE), shstr.sh_size(LE), || {
            format!("section name table (section #{shstrndx})")
        })?;

        let mut sections = Vec::with_capacity(count);
        for (index, h) in table.iter().enumerate() {
            let sh_type = h.sh_type(LE);
            let (offset, size) = (h.sh_offset(LE), h.sh_size(LE));
            let name = if index == 0 {
                String::new()
            } else {
                str_at(shstrtab, h.sh_name(LE), ".shstrtab")?
            };
            if index != 0 && sh_type != SHT_NOBITS && sh_type != SHT_NULL {
                range(data, offset, size, || format!("section '{name}'"))?;
            }
            sections.push(Section {
                index,
                name,
                sh_type,
                flags: h.sh_flags(LE),
                offset,
                size,
                link: h.sh_link(LE),
                info: h.sh_info(LE),
                entsize: h.sh_entsize(LE),
            });
        }
        // Section 0 carries the extended counts, never data.
        if let Some(s0) = sections.first_mut() {
            s0.sh_type = SHT_NULL;
            s0.size = 0;
        }

        // A relocation section names the section it applies to in sh_info.
        for s in sections
            .iter()
            .filter(|s| s.sh_type == SHT_REL || s.sh_type == SHT_RELA)
        {
            if s.info as usize >= count {
                return Err(ObjErrorKind::SectionIndexOutOfRange {
                    section: s.name.clone(),
                    target: u64::from(s.info),
                    count,
                });
            }
        }

        let mut symtabs = sections.iter().filter(|s| s.sh_type == SHT_SYMTAB);
        let symtab = symtabs.next().ok_or(ObjErrorKind::NoSymtab)?.clone();
        if symtabs.next().is_some() {
            return Err(ObjErrorKind::MultipleSymtabs);
        }
        let symbols = Self::read_symbols(data, &sections, &symtab)?;
        Ok(Elf {
            data,
            sections,
            symbols,
            symtab_index: symtab.index,
        })
    }

    fn read_symbols(
        data: &[u8],
        sections: &[Section],
        symtab: &Section,
    ) -> Result<Vec<Symbol>, ObjErrorKind> {
        let bad = |reason: String| ObjErrorKind::BadSymtab {
            section: symtab.name.clone(),
            reason,
        };
        if symtab.entsize != SYM_SIZE {
            return Err(bad(format!(
                "entry size {} is not {SYM_SIZE}",
                symtab.entsize
            )));
        }
        if !symtab.size.is_multiple_of(SYM_SIZE) {
            return Err(bad(format!(
                "size {} is not a multiple of {SYM_SIZE}",
                symtab.size
            )));
        }
        let strtab = sections.get(symtab.link as usize).ok_or_else(|| {
            ObjErrorKind::SectionIndexOutOfRange {
                section: symtab.name.clone(),
                target: u64::from(symtab.link),
                count: sections.len(),
            }
        })?;
        if strtab.sh_type == SHT_NOBITS || strtab.index == 0 {
            return Err(bad(format!(
                "linked string table '{}' has no data",
                strtab.name
            )));
        }
        let strs = range(data, strtab.offset, strtab.size, || {
            format!("section '{}'", strtab.name)
        })?;
        let bytes = range(data, symtab.offset, symtab.size, || {
            format!("section '{}'", symtab.name)
        })?;
        let entries = records::<ElfSym>(bytes, || bad("cannot read the symbol entries".into()))?;
        let mut symbols = Vec::with_capacity(entries.len());
        for (index, e) in entries.iter().enumerate() {
            let name = str_at(strs, e.st_name(LE), &strtab.name)?;
            let shndx = e.st_shndx(LE);
            if shndx == SHN_XINDEX {
                return Err(bad(format!(
                    "symbol '{name}' (#{index}) uses SHN_XINDEX, which BPF objects never need"
                )));
            }
            if shndx != SHN_UNDEF && shndx < SHN_LORESERVE && shndx as usize >= sections.len() {
                return Err(ObjErrorKind::SymbolSectionOutOfRange {
                    name,
                    index,
                    shndx,
                    count: sections.len(),
                });
            }
            symbols.push(Symbol {
                name,
                value: e.st_value(LE),
                size: e.st_size(LE),
                bind: e.st_bind(),
                sym_type: e.st_type(),
                visibility: e.st_visibility(),
                shndx,
            });
        }
        Ok(symbols)
    }

    /// The file bytes of a section (empty for `SHT_NOBITS`); validated in
    /// [`Elf::parse`].
    pub fn data(&self, section: &Section) -> &'a [u8] {
        if section.sh_type == SHT_NOBITS || section.sh_type == SHT_NULL {
            return &[];
        }
        let start = section.offset as usize;
        &self.data[start..start + section.size as usize]
    }

    pub fn section_by_name(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Entries of a `SHT_REL` section, with symbol indices checked.
    pub fn rels(&self, rel: &Section) -> Result<Vec<Rel>, ObjErrorKind> {
        let bad = |reason: String| ObjErrorKind::BadRelSection {
            section: rel.name.clone(),
            reason,
        };
        if rel.entsize != REL_SIZE {
            return Err(bad(format!("entry size {} is not {REL_SIZE}", rel.entsize)));
        }
        if !rel.size.is_multiple_of(REL_SIZE) {
            return Err(bad(format!(
                "size {} is not a multiple of {REL_SIZE}",
                rel.size
            )));
        }
        if rel.link as usize != self.symtab_index {
            return Err(bad(format!(
                "linked symbol table is section #{}, not the symbol table #{}",
                rel.link, self.symtab_index
            )));
        }
        let entries = records::<ElfRel>(self.data(rel), || {
            bad("cannot read the relocation entries".into())
        })?;
        let mut out = Vec::with_capacity(entries.len());
        for (index, e) in entries.iter().enumerate() {
            let sym = e.r_sym(LE) as usize;
            if sym >= self.symbols.len() {
                return Err(bad(format!(
                    "relocation #{index}: symbol index {sym} is out of range ({} symbols)",
                    self.symbols.len()
                )));
            }
            out.push(Rel {
                offset: e.r_offset(LE),
                sym,
                r_type: e.r_type(LE),
            });
        }
        Ok(out)
    }
}
