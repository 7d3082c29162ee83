//! The one error type of the object reader: which file, and what is wrong
//! with it (naming the section, symbol or map involved).

use thiserror::Error;

use crate::btf::{BtfError, BtfExtError};

/// An object file that cannot be read. Displays as `FILE: WHAT`.
#[derive(Debug)]
pub struct ObjError {
    /// The name the object was opened or parsed under.
    pub file: String,
    pub kind: ObjErrorKind,
}

impl ObjError {
    pub(crate) fn new(file: &str, kind: ObjErrorKind) -> Self {
        ObjError {
            file: file.to_string(),
            kind,
        }
    }
}

impl std::fmt::Display for ObjError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.kind)
    }
}

impl std::error::Error for ObjError {
    // The kind is part of this error's own message; its cause comes next.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

/// What is wrong with an object file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ObjErrorKind {
    #[error("cannot read the file")]
    Io {
        #[source]
        source: std::io::Error,
    },

    // --- ELF container ---
    #[error("not an ELF file (bad magic)")]
    NotElf,
    #[error("truncated: {what} needs bytes {offset}..{end}, but the file has {file_len} bytes")]
    Truncated {
        what: String,
        offset: u64,
        end: u64,
        file_len: usize,
    },
    #[error("ELF class {class} is not ELFCLASS64 (2)")]
    NotElf64 { class: u8 },
    #[error("big-endian ELF is not supported: BPF objects are little-endian (ELFDATA2LSB)")]
    BigEndian,
    #[error("ELF data encoding {encoding} is not ELFDATA2LSB (1)")]
    BadEncoding { encoding: u8 },
    #[error("ELF version {version} is not EV_CURRENT (1)")]
    BadVersion { version: u32 },
    #[error(
        "ELF type {e_type} is not ET_REL (1): only relocatable objects (clang -c) are BPF objects"
    )]
    NotRelocatable { e_type: u16 },
    #[error("ELF machine {machine} is not EM_BPF (247)")]
    WrongMachine { machine: u16 },
    #[error("bad ELF header: {reason}")]
    BadHeader { reason: String },
    /// The `object` crate could not read the file as ELF (section lookup of
    /// any ELF, e.g. a vmlinux image, not only BPF objects).
    #[error("malformed ELF")]
    Elf {
        #[source]
        source: object::read::Error,
    },
    #[error("section '{section}': no file data ({reason})")]
    BadSectionData {
        section: String,
        #[source]
        reason: object::read::Error,
    },
    #[error("section #{index}: {reason}")]
    BadSectionHeader { index: usize, reason: String },
    #[error(
        "section '{section}': link to section index {target} is out of range ({count} sections)"
    )]
    SectionIndexOutOfRange {
        section: String,
        target: u64,
        count: usize,
    },
    #[error("section '{section}': string offset {offset} is out of range or unterminated")]
    BadString { section: String, offset: u64 },
    #[error("no symbol table (.symtab): stripped object file?")]
    NoSymtab,
    #[error("more than one symbol table")]
    MultipleSymtabs,
    #[error("section '{section}': {reason}")]
    BadSymtab { section: String, reason: String },
    #[error(
        "symbol '{name}' (#{index}): section index {shndx} is out of range ({count} sections)"
    )]
    SymbolSectionOutOfRange {
        name: String,
        index: usize,
        shndx: u16,
        count: usize,
    },
    #[error("section '{section}': {reason}")]
    BadRelSection { section: String, reason: String },

    // --- code ---
    #[error("section '{section}': code size {size} is not a multiple of 8 (one instruction)")]
    CodeSizeMisaligned { section: String, size: u64 },
    #[error("section '{section}': function '{name}' at offset {offset} size {size}: {reason}")]
    BadFunction {
        section: String,
        name: String,
        offset: u64,
        size: u64,
        reason: String,
    },
    #[error("section '{section}': functions '{first}' and '{second}' overlap")]
    FunctionsOverlap {
        section: String,
        first: String,
        second: String,
    },
    #[error("section '{section}': program '{name}' is static, which libbpf does not support outside .text")]
    StaticProgram { section: String, name: String },
    #[error("section '{section}': program '{name}' is defined twice")]
    DuplicateProgram { section: String, name: String },
    #[error("section '{section}': relocation #{index} at offset {offset}: {reason}")]
    BadRelocation {
        section: String,
        index: usize,
        offset: u64,
        reason: String,
    },
    #[error("section '{section}': insn {insn}: {reason}")]
    BadCall {
        section: String,
        insn: usize,
        reason: String,
    },
    /// An extern symbol libbpf would not accept (no BTF, wrong section,
    /// unsupported `.kconfig` type).
    #[error("extern '{name}': {reason}")]
    BadExtern { name: String, reason: String },
    #[error("program '{name}': {len} instructions exceed the limit of {limit}")]
    ProgramTooLarge {
        name: String,
        len: usize,
        limit: usize,
    },

    // --- maps and data ---
    #[error("section '{section}': {reason}")]
    BadLegacyMaps { section: String, reason: String },
    #[error("map '{map}': {reason}")]
    BadMapDef { map: String, reason: String },
    #[error("section '.maps': relocation #{index}: {reason}")]
    BadMapSlot { index: usize, reason: String },
    #[error("section '{section}' is not supported yet: {reason}")]
    UnsupportedSection { section: String, reason: String },
    #[error("section 'version': size {size} is not 4")]
    BadVersionSection { size: u64 },

    // --- BTF ---
    #[error("section '.maps' needs BTF, but the object has no .BTF section")]
    MapsNeedBtf,
    #[error("section '.BTF' is required (BTF-defined maps) but cannot be parsed")]
    Btf {
        #[source]
        source: BtfError,
    },
    #[error("section '.BTF': fixing up DATASEC '{datasec}'")]
    BtfFixup {
        datasec: String,
        #[source]
        source: BtfError,
    },
    #[error("section '.BTF.ext' cannot be parsed")]
    BtfExt {
        #[source]
        source: BtfExtError,
    },
}
