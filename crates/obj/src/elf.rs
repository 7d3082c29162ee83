//! A small, strict ELF64 little-endian reader for BPF relocatable objects.
//!
//! Everything the rest of the crate indexes (section headers, names, data
//! ranges, the symbol table and its section indices) is validated here once,
//! so later stages can index without panicking. Hand-written rather than
//! through `object` so that a misaligned input buffer is not an error and
//! each failure names what it was reading.

use crate::error::ObjErrorKind;

pub const EM_BPF: u16 = 247;
pub const ET_REL: u16 = 1;

pub const SHT_NULL: u32 = 0;
pub const SHT_PROGBITS: u32 = 1;
pub const SHT_SYMTAB: u32 = 2;
pub const SHT_RELA: u32 = 4;
pub const SHT_NOBITS: u32 = 8;
pub const SHT_REL: u32 = 9;

pub const SHF_EXECINSTR: u64 = 0x4;

pub const SHN_UNDEF: u16 = 0;
pub const SHN_LORESERVE: u16 = 0xff00;
pub const SHN_XINDEX: u16 = 0xffff;

pub const STB_LOCAL: u8 = 0;

pub const STT_FUNC: u8 = 2;
pub const STT_SECTION: u8 = 3;

const EHDR_SIZE: usize = 64;
const SHDR_SIZE: u64 = 64;
const SYM_SIZE: u64 = 24;
const REL_SIZE: u64 = 16;

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

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
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

/// A NUL-terminated string at `offset` in string table `table`.
fn str_at(table: &[u8], offset: u64, table_name: &str) -> Result<String, ObjErrorKind> {
    let bad = || ObjErrorKind::BadString {
        section: table_name.to_string(),
        offset,
    };
    let rest = usize::try_from(offset)
        .ok()
        .and_then(|o| table.get(o..))
        .ok_or_else(bad)?;
    let end = rest.iter().position(|&b| b == 0).ok_or_else(bad)?;
    Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
}

impl<'a> Elf<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Elf<'a>, ObjErrorKind> {
        if data.len() < 4 || data[..4] != [0x7f, b'E', b'L', b'F'] {
            return Err(ObjErrorKind::NotElf);
        }
        if data.len() < 6 {
            range(data, 0, EHDR_SIZE as u64, || "ELF header".into())?;
        }
        match data[4] {
            2 => {}
            class => return Err(ObjErrorKind::NotElf64 { class }),
        }
        match data[5] {
            1 => {}
            2 => return Err(ObjErrorKind::BigEndian),
            encoding => return Err(ObjErrorKind::BadEncoding { encoding }),
        }
        let hdr = range(data, 0, EHDR_SIZE as u64, || "ELF header".into())?;
        let e_type = u16_at(hdr, 16);
        let e_machine = u16_at(hdr, 18);
        let e_version = u32_at(hdr, 20);
        if e_machine != EM_BPF {
            return Err(ObjErrorKind::WrongMachine { machine: e_machine });
        }
        if e_type != ET_REL {
            return Err(ObjErrorKind::NotRelocatable { e_type });
        }
        if e_version != 1 || data[6] != 1 {
            return Err(ObjErrorKind::BadVersion { version: e_version });
        }
        let e_shoff = u64_at(hdr, 40);
        let e_shentsize = u16_at(hdr, 58);
        let mut shnum = u64::from(u16_at(hdr, 60));
        let mut shstrndx = u64::from(u16_at(hdr, 62));
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
        let sh0 = range(data, e_shoff, SHDR_SIZE, || "section header #0".into())?;
        if shnum == 0 {
            shnum = u64_at(sh0, 32);
        }
        if shstrndx == u64::from(SHN_XINDEX) {
            shstrndx = u64::from(u32_at(sh0, 40));
        }
        let table_len = shnum.saturating_mul(SHDR_SIZE);
        let table = range(data, e_shoff, table_len, || {
            format!("section header table ({shnum} entries)")
        })?;
        if shstrndx >= shnum {
            return Err(ObjErrorKind::BadHeader {
                reason: format!(
                    "section name table index {shstrndx} is out of range ({shnum} sections)"
                ),
            });
        }
        let count = shnum as usize;

        struct Raw {
            name_off: u32,
            sh_type: u32,
            flags: u64,
            offset: u64,
            size: u64,
            link: u32,
            info: u32,
            entsize: u64,
        }
        let mut raws = Vec::with_capacity(count);
        for i in 0..count {
            let h = &table[i * SHDR_SIZE as usize..(i + 1) * SHDR_SIZE as usize];
            raws.push(Raw {
                name_off: u32_at(h, 0),
                sh_type: u32_at(h, 4),
                flags: u64_at(h, 8),
                offset: u64_at(h, 24),
                size: u64_at(h, 32),
                link: u32_at(h, 40),
                info: u32_at(h, 44),
                entsize: u64_at(h, 56),
            });
        }
        let shstr = &raws[shstrndx as usize];
        if shstr.sh_type == SHT_NOBITS {
            return Err(ObjErrorKind::BadSectionHeader {
                index: shstrndx as usize,
                reason: "the section name table has no data (SHT_NOBITS)".into(),
            });
        }
        let shstrtab = range(data, shstr.offset, shstr.size, || {
            format!("section name table (section #{shstrndx})")
        })?;

        let mut sections = Vec::with_capacity(count);
        for (index, r) in raws.iter().enumerate() {
            let name = if index == 0 {
                String::new()
            } else {
                str_at(shstrtab, u64::from(r.name_off), ".shstrtab")?
            };
            if index != 0 && r.sh_type != SHT_NOBITS && r.sh_type != SHT_NULL {
                range(data, r.offset, r.size, || format!("section '{name}'"))?;
            }
            sections.push(Section {
                index,
                name,
                sh_type: r.sh_type,
                flags: r.flags,
                offset: r.offset,
                size: r.size,
                link: r.link,
                info: r.info,
                entsize: r.entsize,
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
        let mut symbols = Vec::with_capacity(bytes.len() / SYM_SIZE as usize);
        for (index, e) in bytes.chunks_exact(SYM_SIZE as usize).enumerate() {
            let name = str_at(strs, u64::from(u32_at(e, 0)), &strtab.name)?;
            let info = e[4];
            let shndx = u16_at(e, 6);
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
                value: u64_at(e, 8),
                size: u64_at(e, 16),
                bind: info >> 4,
                sym_type: info & 0xf,
                visibility: e[5] & 3,
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
        let mut out = Vec::with_capacity(rel.size as usize / REL_SIZE as usize);
        for (index, e) in self.data(rel).chunks_exact(REL_SIZE as usize).enumerate() {
            let info = u64_at(e, 8);
            let sym = (info >> 32) as usize;
            if sym >= self.symbols.len() {
                return Err(bad(format!(
                    "relocation #{index}: symbol index {sym} is out of range ({} symbols)",
                    self.symbols.len()
                )));
            }
            out.push(Rel {
                offset: u64_at(e, 0),
                sym,
                r_type: info as u32,
            });
        }
        Ok(out)
    }
}
