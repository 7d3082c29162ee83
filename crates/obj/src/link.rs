//! From code sections to loadable programs, the way libbpf links them.
//!
//! Every `STT_FUNC` symbol in an executable section is a function. The
//! global ones outside `.text` are programs; `.text` holds subprograms.
//! A program is its function's instructions followed by every function it
//! calls or takes the address of, transitively, each appended once in the
//! order a depth-first walk from the entry meets them (as libbpf's
//! `bpf_object__reloc_code` does). Calls and `BPF_PSEUDO_FUNC` loads are then
//! rewritten to be pc-relative inside the program, map and global data
//! references become `BPF_PSEUDO_MAP_FD` / `BPF_PSEUDO_MAP_VALUE` loads whose
//! imm is the map's index in the object (listed in `map_relocs` for the
//! loader to replace), and BTF.ext func/line info is cut and renumbered per
//! program.

use std::collections::HashMap;

use bpfvm_isa::consts::{
    BPF_PSEUDO_CALL, BPF_PSEUDO_FUNC, BPF_PSEUDO_KFUNC_CALL, BPF_PSEUDO_MAP_FD,
    BPF_PSEUDO_MAP_VALUE,
};
use bpfvm_isa::Insn;

use crate::btf::{BtfExt, CoreRelo, FuncInfo, LineInfo};
use crate::elf::{self, Elf, Rel, Section};
use crate::error::ObjErrorKind;
use crate::progtype::{section_def, AttachType, ProgType};

/// `BPF_JMP | BPF_CALL`
const CALL: u8 = 0x85;
/// `BPF_LD | BPF_IMM | BPF_DW`
const LD_IMM64: u8 = 0x18;
/// `R_BPF_NONE`
const R_BPF_NONE: u32 = 0;
/// The kernel's limit on a program's length (`BPF_COMPLEXITY_LIMIT_INSNS`).
pub const MAX_PROG_INSNS: usize = 1_000_000;

/// One program, ready for `BPF_PROG_LOAD` once the loader has replaced the
/// map indices in `map_relocs` with real maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The function's symbol name.
    pub name: String,
    /// The ELF section (`SEC()` name).
    pub section: String,
    /// From the section name; [`ProgType::Unspec`] if libbpf does not know
    /// it (the loader then needs a type from the user).
    pub prog_type: ProgType,
    pub expected_attach_type: Option<AttachType>,
    /// The attach target from the section name (`kprobe/do_exit` ->
    /// `do_exit`), if any.
    pub attach_to: Option<String>,
    /// `BPF_F_SLEEPABLE` / `BPF_F_XDP_HAS_FRAGS` from the section name.
    pub prog_flags: u32,
    /// libbpf's autoload: false for a section named `?SEC` (loaded only when
    /// asked for by name).
    pub autoload: bool,
    /// The linked instructions: the program, then its subprograms.
    pub insns: Vec<Insn>,
    /// The `LD_IMM64` instructions that refer to maps.
    pub map_relocs: Vec<MapReloc>,
    /// The instructions that refer to externs (kfunc calls, `__ksym` and
    /// `.kconfig` loads), for the loader to resolve; a `.kconfig` load is
    /// also in `map_relocs` (a value in the `.kconfig` map).
    pub extern_refs: Vec<ExternRef>,
    /// The functions in `insns`, in order; the first is the program itself.
    pub funcs: Vec<FuncRange>,
    /// `bpf_func_info` for the kernel: one record per function, `insn_idx`
    /// (and `insn_off`, in bytes) relative to this program.
    pub func_info: Vec<FuncInfo>,
    /// `bpf_line_info`, renumbered like `func_info`.
    pub line_info: Vec<LineInfo>,
    /// CO-RE relocation records (`bpf_core_relo`) of the program and its
    /// subprograms, `insn_idx` relative to this program, for the loader to
    /// resolve against a target BTF ([`crate::btf::core::relocate`]).
    pub core_relos: Vec<CoreRelo>,
    /// Instruction index of the program's first instruction in its section.
    pub sec_insn_off: usize,
}

/// An `LD_IMM64` that names a map: `insns[insn_idx]` carries `map_idx`
/// (index into `Object::maps`) in its imm until the loader replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapReloc {
    pub insn_idx: usize,
    pub map_idx: usize,
    pub kind: MapRelocKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapRelocKind {
    /// `src_reg = BPF_PSEUDO_MAP_FD`: the map itself (`&my_map`).
    #[doc(alias = "BPF_PSEUDO_MAP_FD")]
    Fd,
    /// `src_reg = BPF_PSEUDO_MAP_VALUE`: an address inside the map's value
    /// (a global variable); `offset` is also in `insns[insn_idx + 1].imm`.
    #[doc(alias = "BPF_PSEUDO_MAP_VALUE")]
    Value { offset: u32 },
}

/// An instruction that names an extern symbol (`Object::externs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternRef {
    pub insn_idx: usize,
    /// The extern's name (its index in `Object::externs` is `ext_idx`).
    pub name: String,
    pub ext_idx: usize,
}

/// Where one function sits in a linked program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuncRange {
    pub name: String,
    pub section: String,
    /// First instruction in its section.
    pub sec_insn_off: usize,
    /// First instruction in the program.
    pub insn_off: usize,
    pub insn_cnt: usize,
}

/// A function symbol in an executable section.
#[derive(Debug, Clone)]
pub(crate) struct Func {
    pub name: String,
    pub sec: usize,
    pub start: usize,
    pub len: usize,
    pub global: bool,
}

/// What a relocation (or libbpf's rules for unrelocated calls) asks for at
/// one instruction.
#[derive(Debug, Clone, Copy)]
enum Target {
    Call {
        sec: usize,
        insn: i64,
    },
    FuncAddr {
        sec: usize,
        insn: i64,
    },
    Map {
        map_idx: usize,
    },
    Data {
        map_idx: usize,
        offset: u32,
    },
    /// A `.kconfig` value: a load from the `.kconfig` map.
    Kconfig {
        map_idx: usize,
        offset: u32,
        ext: usize,
    },
    /// A call of a kfunc (`BPF_PSEUDO_KFUNC_CALL`).
    Kfunc {
        ext: usize,
    },
    /// The address of a `__ksym` variable or function.
    Ksym {
        ext: usize,
    },
}

/// How symbols in map and data sections find their map.
pub(crate) struct MapIndex {
    /// (section index, offset in section) -> map index, for `.maps`/`maps`.
    pub by_def: HashMap<(usize, u64), usize>,
    /// section index -> map index, for global data.
    pub by_data_sec: HashMap<usize, usize>,
    /// Section indices of `.maps` and `maps`.
    pub map_secs: Vec<usize>,
    /// The object's externs ([`crate::Object::externs`]).
    pub externs: Vec<crate::externs::Extern>,
    /// The `.kconfig` map, when there are `.kconfig` externs.
    pub kconfig_map: Option<usize>,
}

pub(crate) struct CodeSection {
    pub index: usize,
    pub name: String,
    pub insns: Vec<Insn>,
    relocs: HashMap<usize, Target>,
}

/// The code sections, found by section index in constant time.
pub(crate) struct Code {
    pub sections: Vec<CodeSection>,
    by_index: HashMap<usize, usize>,
}

impl Code {
    pub fn get(&self, sec: usize) -> Option<&CodeSection> {
        self.by_index.get(&sec).map(|&i| &self.sections[i])
    }

    pub fn is_text(&self, sec: usize) -> bool {
        self.get(sec).is_some_and(|c| c.name == ".text")
    }

    fn name(&self, sec: usize) -> &str {
        self.get(sec).map_or("?", |c| c.name.as_str())
    }
}

/// Every function, plus per-section spans for finding the function that
/// holds an instruction by binary search.
pub(crate) struct Funcs {
    pub list: Vec<Func>,
    /// section index -> (start, end, index in `list`), sorted, disjoint.
    spans: HashMap<usize, Vec<(usize, usize, usize)>>,
}

impl Funcs {
    /// The function whose instructions include `insn` of section `sec`.
    pub fn at(&self, sec: usize, insn: i64) -> Option<usize> {
        let insn = usize::try_from(insn).ok()?;
        let spans = self.spans.get(&sec)?;
        let k = spans.partition_point(|&(start, _, _)| start <= insn);
        let &(_, end, f) = spans.get(k.checked_sub(1)?)?;
        (insn < end).then_some(f)
    }
}

/// Reads the instructions of every non-empty executable section.
pub(crate) fn code_sections(elf: &Elf<'_>) -> Result<Code, ObjErrorKind> {
    let mut out = Vec::new();
    for s in elf.sections.iter().filter(|s| s.is_exec() && s.size > 0) {
        let insns = bpfvm_isa::insns_from_bytes(elf.data(s)).map_err(|_| {
            ObjErrorKind::CodeSizeMisaligned {
                section: s.name.clone(),
                size: s.size,
            }
        })?;
        out.push(CodeSection {
            index: s.index,
            name: s.name.clone(),
            insns,
            relocs: HashMap::new(),
        });
    }
    let by_index = out.iter().enumerate().map(|(i, c)| (c.index, i)).collect();
    Ok(Code {
        sections: out,
        by_index,
    })
}

/// Every function symbol, validated; grouped by section in section order,
/// in symbol-table order within a section (libbpf's program order).
pub(crate) fn functions(elf: &Elf<'_>, code: &Code) -> Result<Funcs, ObjErrorKind> {
    let mut funcs = Vec::new();
    let mut spans = HashMap::new();
    for cs in &code.sections {
        let sec_len = cs.insns.len() as u64 * 8;
        let first = funcs.len();
        for s in elf
            .symbols
            .iter()
            .filter(|s| s.sym_type == elf::STT_FUNC && s.section() == Some(cs.index))
        {
            let bad = |reason: &str| ObjErrorKind::BadFunction {
                section: cs.name.clone(),
                name: s.name.clone(),
                offset: s.value,
                size: s.size,
                reason: reason.to_string(),
            };
            if s.value.checked_add(s.size).is_none_or(|end| end > sec_len) {
                return Err(bad("crosses the section end"));
            }
            if s.size == 0 || s.size % 8 != 0 || s.value % 8 != 0 {
                return Err(bad("not a whole number of instructions"));
            }
            let global = s.bind != elf::STB_LOCAL;
            if cs.name != ".text" && !global {
                return Err(ObjErrorKind::StaticProgram {
                    section: cs.name.clone(),
                    name: s.name.clone(),
                });
            }
            funcs.push(Func {
                name: s.name.clone(),
                sec: cs.index,
                start: (s.value / 8) as usize,
                len: (s.size / 8) as usize,
                global,
            });
        }
        let mut sorted: Vec<(usize, usize, usize)> = (first..funcs.len())
            .map(|i| (funcs[i].start, funcs[i].start + funcs[i].len, i))
            .collect();
        sorted.sort_unstable();
        for pair in sorted.windows(2) {
            if pair[1].0 < pair[0].1 {
                return Err(ObjErrorKind::FunctionsOverlap {
                    section: cs.name.clone(),
                    first: funcs[pair[0].2].name.clone(),
                    second: funcs[pair[1].2].name.clone(),
                });
            }
        }
        spans.insert(cs.index, sorted);
    }
    Ok(Funcs { list: funcs, spans })
}

/// Reads the `.rel<section>` entries of every code section and decides what
/// each asks for, rejecting what libbpf rejects. Relocations outside any
/// function are skipped, as libbpf does.
pub(crate) fn collect_relocs(
    elf: &Elf<'_>,
    code: &mut Code,
    funcs: &Funcs,
    maps: &MapIndex,
) -> Result<(), ObjErrorKind> {
    for rel_sec in elf.sections.iter() {
        if rel_sec.sh_type != elf::SHT_REL && rel_sec.sh_type != elf::SHT_RELA {
            continue;
        }
        let Some(&ci) = code.by_index.get(&(rel_sec.info as usize)) else {
            continue;
        };
        let cs = &mut code.sections[ci];
        if rel_sec.sh_type == elf::SHT_RELA {
            return Err(ObjErrorKind::BadRelSection {
                section: rel_sec.name.clone(),
                reason: "RELA relocations for code are not supported (BPF uses REL)".into(),
            });
        }
        for (index, rel) in elf.rels(rel_sec)?.into_iter().enumerate() {
            if rel.r_type == R_BPF_NONE {
                continue;
            }
            let target = reloc_target(elf, cs, funcs, maps, rel_sec, index, &rel)?;
            if let Some((insn, t)) = target {
                if cs.relocs.insert(insn, t).is_some() {
                    return Err(ObjErrorKind::BadRelocation {
                        section: rel_sec.name.clone(),
                        index,
                        offset: rel.offset,
                        reason: format!("second relocation for insn {insn}"),
                    });
                }
            }
        }
    }
    Ok(())
}

fn reloc_target(
    elf: &Elf<'_>,
    cs: &CodeSection,
    funcs: &Funcs,
    maps: &MapIndex,
    rel_sec: &Section,
    index: usize,
    rel: &Rel,
) -> Result<Option<(usize, Target)>, ObjErrorKind> {
    let bad = |reason: String| ObjErrorKind::BadRelocation {
        section: rel_sec.name.clone(),
        index,
        offset: rel.offset,
        reason,
    };
    if !rel.offset.is_multiple_of(8) {
        return Err(bad("offset is not at an instruction".into()));
    }
    let insn_idx = usize::try_from(rel.offset / 8)
        .ok()
        .filter(|&i| i < cs.insns.len())
        .ok_or_else(|| bad(format!("offset is past the end of section '{}'", cs.name)))?;
    if funcs.at(cs.index, insn_idx as i64).is_none() {
        return Ok(None);
    }
    let sym = &elf.symbols[rel.sym];
    let insn = cs.insns[insn_idx];
    let is_call = insn.code == CALL;
    let is_ld64 = insn.code == LD_IMM64;
    if !is_call && !is_ld64 {
        return Err(bad(format!(
            "insn {insn_idx} (code {:#04x}) is neither a call nor a 64-bit load; relocation against '{}'",
            insn.code, sym.name
        )));
    }
    if sym.shndx == elf::SHN_UNDEF {
        use crate::externs::ExternKind;
        let ext = maps
            .externs
            .iter()
            .position(|e| e.name == sym.name)
            .ok_or_else(|| {
                bad(format!(
                    "relocation against undefined symbol '{}'",
                    sym.name
                ))
            })?;
        let target = match (&maps.externs[ext].kind, is_call) {
            (ExternKind::Kfunc, true) => Target::Kfunc { ext },
            (_, true) => {
                return Err(bad(format!(
                    "call of extern '{}', which is not a function",
                    sym.name
                )))
            }
            (ExternKind::Kconfig { data_off, .. }, false) => {
                let map_idx = maps
                    .kconfig_map
                    .ok_or_else(|| bad("no .kconfig map".into()))?;
                let offset = i64::from(*data_off)
                    .checked_add(i64::from(insn.imm))
                    .and_then(|o| u32::try_from(o).ok())
                    .ok_or_else(|| bad(format!("offset of '{}' out of range", sym.name)))?;
                Target::Kconfig {
                    map_idx,
                    offset,
                    ext,
                }
            }
            (_, false) => {
                if insn_idx + 1 >= cs.insns.len() {
                    return Err(bad(format!(
                        "64-bit load at insn {insn_idx} has no second slot"
                    )));
                }
                Target::Ksym { ext }
            }
        };
        return Ok(Some((insn_idx, target)));
    }
    let Some(sym_sec) = sym.section() else {
        return Err(bad(format!(
            "symbol '{}' is in special section {:#x}; forgot to initialise a global variable?",
            sym.name, sym.shndx
        )));
    };
    let target_sec = &elf.sections[sym_sec];
    let imm = i64::from(insn.imm);
    let value = i64::try_from(sym.value).map_err(|_| bad("symbol value out of range".into()))?;
    if is_call {
        if insn.src_reg != BPF_PSEUDO_CALL {
            return Err(bad(format!(
                "call at insn {insn_idx} against '{}' is not a BPF-to-BPF call (src_reg {})",
                sym.name, insn.src_reg
            )));
        }
        if !target_sec.is_exec() {
            return Err(bad(format!(
                "call against '{}' in non-code section '{}'",
                sym.name, target_sec.name
            )));
        }
        if value % 8 != 0 {
            return Err(bad(format!("call target '{}' is misaligned", sym.name)));
        }
        // clang: for a section symbol imm holds the target index - 1; for a
        // function symbol imm is -1.
        return Ok(Some((
            insn_idx,
            Target::Call {
                sec: sym_sec,
                insn: value / 8 + imm + 1,
            },
        )));
    }
    if insn_idx + 1 >= cs.insns.len() {
        return Err(bad(format!(
            "64-bit load at insn {insn_idx} has no second slot"
        )));
    }
    if target_sec.is_exec() {
        if value % 8 != 0 || imm % 8 != 0 {
            return Err(bad(format!(
                "function address of '{}' is misaligned",
                sym.name
            )));
        }
        return Ok(Some((
            insn_idx,
            Target::FuncAddr {
                sec: sym_sec,
                insn: (value + imm) / 8,
            },
        )));
    }
    if maps.map_secs.contains(&sym_sec) {
        let map_idx = maps
            .by_def
            .get(&(sym_sec, sym.value))
            .copied()
            .ok_or_else(|| {
                bad(format!(
                    "no map defined at offset {} of section '{}' (symbol '{}')",
                    sym.value, target_sec.name, sym.name
                ))
            })?;
        return Ok(Some((insn_idx, Target::Map { map_idx })));
    }
    if let Some(&map_idx) = maps.by_data_sec.get(&sym_sec) {
        // clang: a section symbol's offset sits in imm; a named variable's
        // in the symbol value. Either way the sum is the offset.
        let offset = value
            .checked_add(imm)
            .and_then(|o| u32::try_from(o).ok())
            .ok_or_else(|| bad(format!("offset of '{}' out of range", sym.name)))?;
        return Ok(Some((insn_idx, Target::Data { map_idx, offset })));
    }
    Err(bad(format!(
        "symbol '{}' is in section '{}', which is not code, a map or global data",
        sym.name, target_sec.name
    )))
}

/// Links one program: its entry function plus everything reachable.
pub(crate) fn link_program(
    code: &Code,
    funcs: &Funcs,
    externs: &[crate::externs::Extern],
    entry: usize,
    btf_ext: Option<&BtfExt>,
    warnings: &mut Vec<String>,
) -> Result<Program, ObjErrorKind> {
    let code_of = |sec: usize| code.get(sec);
    let list = &funcs.list;
    let ef = &list[entry];
    // Every Func comes from a CodeSection, so the lookups below succeed.
    let ecs = code_of(ef.sec).ok_or_else(|| ObjErrorKind::BadHeader {
        reason: "internal: function outside code".into(),
    })?;
    let mut insns: Vec<Insn> = ecs.insns[ef.start..ef.start + ef.len].to_vec();
    let mut placed: HashMap<usize, usize> = HashMap::from([(entry, 0)]);
    let mut order = vec![entry];
    let mut map_relocs = Vec::new();
    let mut extern_refs = Vec::new();
    // (function, base in program, next instruction): an explicit stack, so
    // a long call chain in a crafted file cannot overflow ours.
    let mut stack: Vec<(usize, usize, usize)> = vec![(entry, 0, 0)];
    while let Some(top) = stack.last_mut() {
        let (f, base, i) = *top;
        let func = &list[f];
        if i >= func.len {
            stack.pop();
            continue;
        }
        top.2 += 1;
        let cs = code_of(func.sec).ok_or_else(|| ObjErrorKind::BadHeader {
            reason: "internal: function outside code".into(),
        })?;
        let sec_insn = func.start + i;
        let at = base + i;
        let insn = insns[at];
        let bad_call = |reason: String| ObjErrorKind::BadCall {
            section: cs.name.clone(),
            insn: sec_insn,
            reason,
        };
        let target = match cs.relocs.get(&sec_insn) {
            Some(t) => *t,
            // Calls inside one section need no relocation: imm is already
            // relative to the call's place in the section.
            None if insn.code == CALL && insn.src_reg == BPF_PSEUDO_CALL => Target::Call {
                sec: func.sec,
                insn: sec_insn as i64 + i64::from(insn.imm) + 1,
            },
            None if insn.code == LD_IMM64 && insn.src_reg == BPF_PSEUDO_FUNC => Target::FuncAddr {
                sec: func.sec,
                insn: sec_insn as i64 + i64::from(insn.imm) + 1,
            },
            None => continue,
        };
        let (tsec, tinsn, is_addr) = match target {
            Target::Call { sec, insn } => (sec, insn, false),
            Target::FuncAddr { sec, insn } => (sec, insn, true),
            Target::Kfunc { ext } | Target::Ksym { ext } => {
                if let Target::Kfunc { .. } = target {
                    // libbpf: the BTF id (set by the loader) goes in imm.
                    insns[at].src_reg = BPF_PSEUDO_KFUNC_CALL;
                    insns[at].imm = 0;
                } else {
                    insns[at].imm = 0;
                    insns[at + 1].imm = 0;
                }
                extern_refs.push(ExternRef {
                    insn_idx: at,
                    name: externs[ext].name.clone(),
                    ext_idx: ext,
                });
                continue;
            }
            Target::Kconfig {
                map_idx,
                offset,
                ext,
            } => {
                extern_refs.push(ExternRef {
                    insn_idx: at,
                    name: externs[ext].name.clone(),
                    ext_idx: ext,
                });
                insns[at].src_reg = BPF_PSEUDO_MAP_VALUE;
                insns[at].imm = map_idx as i32;
                insns[at + 1].imm = offset as i32;
                map_relocs.push(MapReloc {
                    insn_idx: at,
                    map_idx,
                    kind: MapRelocKind::Value { offset },
                });
                continue;
            }
            Target::Map { map_idx } | Target::Data { map_idx, .. } => {
                if i + 1 >= func.len {
                    return Err(bad_call(format!(
                        "64-bit load at the end of function '{}'",
                        func.name
                    )));
                }
                let (src, kind, second) = match target {
                    Target::Data { offset, .. } => (
                        BPF_PSEUDO_MAP_VALUE,
                        MapRelocKind::Value { offset },
                        offset as i32,
                    ),
                    _ => (BPF_PSEUDO_MAP_FD, MapRelocKind::Fd, 0),
                };
                insns[at].src_reg = src;
                insns[at].imm = map_idx as i32;
                insns[at + 1].imm = second;
                map_relocs.push(MapReloc {
                    insn_idx: at,
                    map_idx,
                    kind,
                });
                continue;
            }
        };
        let g = funcs.at(tsec, tinsn).ok_or_else(|| {
            let tname = code.name(tsec);
            bad_call(format!(
                "{} target insn {tinsn} in section '{tname}' is not inside any function",
                if is_addr { "function address" } else { "call" }
            ))
        })?;
        let gbase = match placed.get(&g) {
            Some(&b) => b,
            None => {
                let gf = &list[g];
                let gcs = code_of(gf.sec).ok_or_else(|| ObjErrorKind::BadHeader {
                    reason: "internal: function outside code".into(),
                })?;
                let b = insns.len();
                if b + gf.len > MAX_PROG_INSNS {
                    return Err(ObjErrorKind::ProgramTooLarge {
                        name: ef.name.clone(),
                        len: b + gf.len,
                        limit: MAX_PROG_INSNS,
                    });
                }
                insns.extend_from_slice(&gcs.insns[gf.start..gf.start + gf.len]);
                placed.insert(g, b);
                order.push(g);
                stack.push((g, b, 0));
                b
            }
        };
        // tinsn lies inside g, so this is where the target landed.
        let landed = gbase + (tinsn as usize - list[g].start);
        let rel = landed as i64 - at as i64 - 1;
        let imm = i32::try_from(rel).map_err(|_| bad_call("call distance overflows imm".into()))?;
        insns[at].imm = imm;
        if is_addr {
            insns[at].src_reg = BPF_PSEUDO_FUNC;
        }
    }

    let name_of = |sec: usize| code.name(sec).to_string();
    let ranges: Vec<FuncRange> = order
        .iter()
        .map(|&f| FuncRange {
            name: list[f].name.clone(),
            section: name_of(list[f].sec),
            sec_insn_off: list[f].start,
            insn_off: placed[&f],
            insn_cnt: list[f].len,
        })
        .collect();
    let section = name_of(ef.sec);
    let autoload = !section.starts_with('?');
    let def = section_def(section.strip_prefix('?').unwrap_or(&section));
    let (func_info, line_info) = match btf_ext {
        Some(ext) => remap_ext(ext, &ef.name, &ranges, warnings),
        None => (Vec::new(), Vec::new()),
    };
    // CO-RE relocation records of every function, renumbered like func and
    // line info; the loader resolves them against its target BTF.
    let core_relos = match btf_ext {
        Some(ext) => ranges
            .iter()
            .flat_map(|r| {
                ext.core_relos_for(&r.section).iter().filter_map(move |c| {
                    let i = c.insn_idx as usize;
                    (i >= r.sec_insn_off && i < r.sec_insn_off + r.insn_cnt).then(|| {
                        let idx =
                            u32::try_from(i - r.sec_insn_off + r.insn_off).unwrap_or(u32::MAX);
                        CoreRelo {
                            insn_off: idx.saturating_mul(8),
                            insn_idx: idx,
                            ..c.clone()
                        }
                    })
                })
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(Program {
        name: ef.name.clone(),
        section,
        prog_type: def.as_ref().map_or(ProgType::Unspec, |d| d.prog_type),
        expected_attach_type: def.as_ref().and_then(|d| d.expected_attach_type),
        attach_to: def.as_ref().and_then(|d| d.attach_to.clone()),
        prog_flags: def.as_ref().map_or(0, |d| d.prog_flags),
        autoload,
        insns,
        map_relocs,
        extern_refs,
        funcs: ranges,
        func_info,
        line_info,
        core_relos,
        sec_insn_off: ef.start,
    })
}

/// libbpf's `adjust_prog_btf_ext_info` for func and line info: for each
/// function of the program, the records of its section that fall inside it,
/// moved to where it landed. If the program's own section has no records of
/// a kind, that kind is dropped for the program; if a later function's
/// section has none, too (the kernel wants all or nothing).
fn remap_ext(
    ext: &BtfExt,
    prog: &str,
    ranges: &[FuncRange],
    warnings: &mut Vec<String>,
) -> (Vec<FuncInfo>, Vec<LineInfo>) {
    fn has_section<T>(secs: &[crate::btf::BtfExtSection<T>], name: &str) -> bool {
        secs.iter().any(|s| s.sec_name == name)
    }
    let move_to = |r: &FuncRange, idx: u32| -> Option<u32> {
        let idx = idx as usize;
        (idx >= r.sec_insn_off && idx < r.sec_insn_off + r.insn_cnt)
            .then(|| u32::try_from(idx - r.sec_insn_off + r.insn_off).ok())
            .flatten()
    };

    let mut func_info = Vec::new();
    let mut ok = true;
    for (k, r) in ranges.iter().enumerate() {
        if !has_section(&ext.func_info, &r.section) {
            warnings.push(if k == 0 {
                format!("prog '{prog}': missing .BTF.ext function info for the main program, skipping all of .BTF.ext func info")
            } else {
                format!("prog '{prog}': missing .BTF.ext function info for '{}', skipping all of .BTF.ext func info", r.name)
            });
            ok = false;
            break;
        }
        for rec in ext.func_info_for(&r.section) {
            if let Some(idx) = move_to(r, rec.insn_idx) {
                func_info.push(FuncInfo {
                    insn_off: idx.saturating_mul(8),
                    insn_idx: idx,
                    type_id: rec.type_id,
                });
            }
        }
    }
    if !ok {
        func_info.clear();
    }

    let mut line_info = Vec::new();
    let mut ok = true;
    for (k, r) in ranges.iter().enumerate() {
        if !has_section(&ext.line_info, &r.section) {
            warnings.push(if k == 0 {
                format!("prog '{prog}': missing .BTF.ext line info for the main program, skipping all of .BTF.ext line info")
            } else {
                format!("prog '{prog}': missing .BTF.ext line info for '{}', skipping all of .BTF.ext line info", r.name)
            });
            ok = false;
            break;
        }
        for rec in ext.line_info_for(&r.section) {
            if let Some(idx) = move_to(r, rec.insn_idx) {
                let mut li = rec.clone();
                li.insn_off = idx.saturating_mul(8);
                li.insn_idx = idx;
                line_info.push(li);
            }
        }
    }
    if !ok {
        line_info.clear();
    }
    (func_info, line_info)
}
