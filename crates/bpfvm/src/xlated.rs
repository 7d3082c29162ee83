//! `bpftool prog dump xlated` for programs of this runtime: the plain listing
//! (function signatures from BTF, `; source` lines from line info, `[file:..]`
//! with `linum`, instruction bytes with `opcodes`), its JSON form, and the DOT
//! control-flow graph of `visual`.
//!
//! The instructions are [`ProgObj::xlated`]: map references carry map ids, so
//! they print as `map[id:N]` / `map[id:N][0]+off`. Helper calls print their
//! helper id (`call bpf_trace_printk#6`) where the kernel prints the helper's
//! address relative to `__bpf_call_base`; everything else follows bpftool's text.

use crate::kernel::ProgObj;
use bpfvm_isa::disasm::{kernel_insn_line, KernelSymbols, XlatedSymbols};
use bpfvm_isa::{decode_at, Decoded, Insn, Op, Shape};
use bpfvm_obj::btf::{Btf, BtfKind, BtfTypeData};
use serde_json::{json, Map, Value};
use std::fmt::Write as _;

/// The keywords of `prog dump xlated PROG [opcodes] [linum] [visual]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XlatedOpts {
    /// Each instruction's bytes after it.
    pub opcodes: bool,
    /// `[file:F line_num:N line_col:C]` after each source line.
    pub linum: bool,
    /// A DOT graph of the basic blocks instead of the listing.
    pub visual: bool,
}

/// How deep a BTF type chain may go when rendering a signature (BTF can be cyclic
/// through pointers only via ids, but a corrupt chain must not recurse forever).
const MAX_TYPE_DEPTH: usize = 32;

/// bpftool's one-line C rendering of a BTF type (`__btf_dumper_type_only`): each
/// piece ends with a space, pointers print as `* `.
fn type_only(btf: &Btf, type_id: u32, out: &mut String, depth: usize) -> Option<()> {
    if depth > MAX_TYPE_DEPTH {
        return None;
    }
    if type_id == 0 {
        out.push_str("void ");
        return Some(());
    }
    let t = btf.type_by_id(type_id).ok()?;
    let name = btf.name(type_id);
    match t.kind() {
        BtfKind::Int | BtfKind::Typedef | BtfKind::Float => {
            let _ = write!(out, "{name} ");
        }
        BtfKind::Struct => {
            let _ = write!(out, "struct {name} ");
        }
        BtfKind::Union => {
            let _ = write!(out, "union {name} ");
        }
        BtfKind::Enum | BtfKind::Enum64 => {
            let _ = write!(out, "enum {name} ");
        }
        BtfKind::Array => {
            if let BtfTypeData::Array(a) = &t.data {
                type_only(btf, a.elem_type, out, depth + 1)?;
                let _ = write!(out, "[{}]", a.nelems);
            }
        }
        BtfKind::Ptr => {
            type_only(btf, t.type_ref()?, out, depth + 1)?;
            out.push_str("* ");
        }
        BtfKind::Fwd => {
            let kw = if t.kind_flag { "union" } else { "struct" };
            let _ = write!(out, "{kw} {name} ");
        }
        BtfKind::Volatile => {
            out.push_str("volatile ");
            type_only(btf, t.type_ref()?, out, depth + 1)?;
        }
        BtfKind::Const => {
            out.push_str("const ");
            type_only(btf, t.type_ref()?, out, depth + 1)?;
        }
        BtfKind::Restrict => {
            out.push_str("restrict ");
            type_only(btf, t.type_ref()?, out, depth + 1)?;
        }
        BtfKind::FuncProto => func_sig(btf, type_id, None, out, depth + 1)?,
        BtfKind::Func => func_sig(btf, t.type_ref()?, Some(name), out, depth + 1)?,
        _ => return None,
    }
    Some(())
}

/// `RET NAME(T1 a, T2 b)` from a FUNC_PROTO.
fn func_sig(
    btf: &Btf,
    proto_id: u32,
    name: Option<&str>,
    out: &mut String,
    depth: usize,
) -> Option<()> {
    let proto = btf.type_by_id(proto_id).ok()?;
    let BtfTypeData::FuncProto(params) = &proto.data else {
        return None;
    };
    type_only(btf, proto.type_ref().unwrap_or(0), out, depth + 1)?;
    match name {
        Some(n) => {
            let _ = write!(out, "{n}(");
        }
        None => out.push('('),
    }
    for (i, p) in params.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if p.type_id == 0 {
            out.push_str("...");
            continue;
        }
        type_only(btf, p.type_id, out, depth + 1)?;
        let pname = btf.str_at(p.name_off);
        if pname.is_empty() {
            if out.ends_with(' ') {
                out.pop();
            }
        } else {
            out.push_str(pname);
        }
    }
    out.push(')');
    Some(())
}

/// The C signature of BTF FUNC `func_type_id`, as bpftool prints it before each
/// function of a dump (`int hello(struct xdp_md * ctx)`).
pub fn func_signature(btf: &Btf, func_type_id: u32) -> Option<String> {
    let mut s = String::new();
    type_only(btf, func_type_id, &mut s, 0)?;
    while s.ends_with(' ') {
        s.pop();
    }
    Some(s)
}

/// A function of the program: its first and past-the-last instruction in
/// [`ProgObj::xlated`] and its BTF FUNC (0: none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XlatedFunc {
    /// First instruction.
    pub start: usize,
    /// Past the last instruction.
    pub end: usize,
    /// Its `BTF_KIND_FUNC` in the program's BTF; 0 without func info.
    pub type_id: u32,
}

type Func = XlatedFunc;

/// The program's functions: from its func info, else from the targets of its
/// bpf-to-bpf calls.
pub fn functions(prog: &ProgObj) -> Vec<XlatedFunc> {
    let n = prog.xlated.len();
    let mut starts: Vec<(usize, u32)> = prog
        .func_info
        .iter()
        .map(|f| (f.insn_idx as usize, f.type_id))
        .filter(|(s, _)| *s < n)
        .collect();
    if starts.is_empty() {
        // Without func info, bpf-to-bpf call targets still start functions.
        starts.push((0, 0));
        let mut pc = 0;
        while pc < n {
            let Ok(d) = decode_at(&prog.xlated, pc) else {
                pc += 1;
                continue;
            };
            if d.op == Op::CallLocal {
                let t = pc as i64 + 1 + d.imm32() as i64;
                // Repeats are removed by the sort and dedup below.
                if t > 0 && (t as usize) < n {
                    starts.push((t as usize, 0));
                }
            }
            pc += d.slots();
        }
    }
    starts.sort_unstable();
    starts.dedup_by_key(|(s, _)| *s);
    let mut out = Vec::new();
    for (i, (s, t)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(n, |(e, _)| *e);
        out.push(Func {
            start: *s,
            end,
            type_id: *t,
        });
    }
    out
}

/// Symbols for the listing: map ids from the instructions, bpf-to-bpf calls named
/// `pc+N#bpf_prog_TAG_FUNC` as the kernel names its subprograms.
struct ListingSymbols<'a> {
    prog: &'a ProgObj,
    funcs: &'a [Func],
}

impl KernelSymbols for ListingSymbols<'_> {
    fn map_id(&self, src: u8, imm: i32) -> Option<u32> {
        XlatedSymbols.map_id(src, imm)
    }

    fn call_name(&self, pc: usize, d: &Decoded) -> Option<String> {
        if d.op != Op::CallLocal {
            return None;
        }
        let target = pc as i64 + 1 + d.imm32() as i64;
        let f = self.funcs.iter().find(|f| f.start as i64 == target)?;
        let body = self.prog.xlated.get(f.start..f.end)?;
        let tag = crate::tag::tag_hex(&crate::tag::prog_tag(body));
        let name = match (&self.prog.btf, f.type_id) {
            (Some(b), t) if t != 0 => b.btf.name(t).to_string(),
            _ => String::new(),
        };
        Some(format!("{:+}#bpf_prog_{tag}_{name}", d.imm32()))
    }
}

/// Line info by instruction, built once per listing (a lookup per
/// instruction by scanning would make listings quadratic in program size).
fn lines_by_insn(prog: &ProgObj) -> std::collections::HashMap<usize, &crate::LineInfo> {
    let mut m = std::collections::HashMap::with_capacity(prog.line_info.len());
    for l in &prog.line_info {
        // The first entry for an instruction wins, as a scan would find it.
        m.entry(l.insn_idx as usize).or_insert(l);
    }
    m
}

/// The line info of instruction `pc`, if one starts there.
pub fn source_line(prog: &ProgObj, pc: usize) -> Option<&crate::LineInfo> {
    prog.line_info.iter().find(|l| l.insn_idx as usize == pc)
}

/// `; source text` (with `linum`: ` [file:F line_num:N line_col:C]`), as bpftool
/// prints it above the instructions of a line.
fn source_annotation(l: &crate::LineInfo, linum: bool) -> String {
    let mut out = format!("; {}", l.line.trim_start());
    if linum {
        out.push_str(&format!(" [file:{} line_num:{}", l.file_name, l.line_num));
        if l.col != 0 {
            out.push_str(&format!(" line_col:{}", l.col));
        }
        out.push(']');
    }
    out.push('\n');
    out
}

fn sig_for(prog: &ProgObj, f: &Func) -> Option<String> {
    let btf = prog.btf.as_ref()?;
    if f.type_id == 0 {
        return None;
    }
    func_signature(&btf.btf, f.type_id)
}

fn insn_bytes(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.to_bytes()).collect()
}

/// One instruction of the xlated listing.
#[derive(Clone, Debug)]
pub struct XlatedLine<'a> {
    /// Its index in [`ProgObj::xlated`].
    pub pc: usize,
    /// Its instruction slots (2 for LD_IMM64).
    pub slots: usize,
    /// The C signature of the function starting here, from BTF.
    pub proto: Option<String>,
    /// The source line starting here.
    pub source: Option<&'a crate::LineInfo>,
    /// The kernel's text of the instruction.
    pub disasm: String,
}

/// The xlated listing as data: one entry per instruction, with the function
/// signature and the source line that start at it. The plain and JSON dumps,
/// and clients that render their own, are made from this.
pub fn xlated_lines(prog: &ProgObj) -> Vec<XlatedLine<'_>> {
    let funcs = functions(prog);
    let syms = ListingSymbols {
        prog,
        funcs: &funcs,
    };
    let lines = lines_by_insn(prog);
    let insns = &prog.xlated;
    let mut out = Vec::with_capacity(insns.len());
    let mut pc = 0;
    let mut next_func = funcs.iter().peekable();
    while pc < insns.len() {
        // Functions are in order; skip any that start inside an LD_IMM64.
        while next_func.peek().is_some_and(|f| f.start < pc) {
            next_func.next();
        }
        let proto = next_func
            .next_if(|f| f.start == pc)
            .and_then(|f| sig_for(prog, f));
        let (disasm, n) = match decode_at(insns, pc) {
            Ok(d) => (kernel_insn_line(&d, pc, &syms), d.slots()),
            Err(e) => (format!("({:02x}) invalid: {e}", insns[pc].code), 1),
        };
        let slots = n.min(insns.len() - pc);
        out.push(XlatedLine {
            pc,
            slots,
            proto,
            source: lines.get(&pc).copied(),
            disasm,
        });
        pc += slots;
    }
    out
}

/// The plain listing (or, with `visual`, the DOT graph).
pub fn dump_xlated(prog: &ProgObj, opts: &XlatedOpts) -> String {
    if opts.visual {
        return dump_xlated_dot(prog);
    }
    let mut out = String::new();
    for l in xlated_lines(prog) {
        if let Some(sig) = &l.proto {
            let _ = writeln!(out, "{sig}:");
        }
        if let Some(src) = l.source {
            out.push_str(&source_annotation(src, opts.linum));
        }
        let _ = writeln!(out, "{:4}: {}", l.pc, l.disasm);
        if opts.opcodes {
            out.push_str("      ");
            for b in insn_bytes(&prog.xlated[l.pc..l.pc + l.slots]) {
                let _ = write!(out, " {b:02x}");
            }
            out.push('\n');
        }
    }
    out
}

fn hex_list(bytes: &[u8]) -> Value {
    Value::Array(
        bytes
            .iter()
            .map(|b| Value::String(format!("0x{b:02x}")))
            .collect(),
    )
}

/// `bpftool -j prog dump xlated`: one object per instruction with `disasm`, and
/// `proto` / `src` (`file`, `line_num`, `line_col` with linum) / `opcodes` where
/// bpftool prints them.
pub fn dump_xlated_json(prog: &ProgObj, opts: &XlatedOpts) -> Value {
    let mut items = Vec::new();
    for l in xlated_lines(prog) {
        let mut o = Map::new();
        if let Some(sig) = l.proto {
            o.insert("proto".into(), Value::String(sig));
        }
        if let Some(src) = l.source {
            o.insert(
                "src".into(),
                Value::String(src.line.trim_start().to_string()),
            );
            if opts.linum {
                o.insert("file".into(), Value::String(src.file_name.clone()));
                o.insert("line_num".into(), json!(src.line_num));
                if src.col != 0 {
                    o.insert("line_col".into(), json!(src.col));
                }
            }
        }
        o.insert("disasm".into(), Value::String(l.disasm));
        if opts.opcodes {
            let bytes = insn_bytes(&prog.xlated[l.pc..l.pc + l.slots]);
            let i = prog.xlated[l.pc];
            o.insert(
                "opcodes".into(),
                json!({
                    "code": format!("0x{:02x}", i.code),
                    "src_reg": format!("{:#x}", i.src_reg),
                    "dst_reg": format!("{:#x}", i.dst_reg),
                    "off": hex_list(&bytes[2..4]),
                    "imm": hex_list(&bytes[4..]),
                }),
            );
        }
        items.push(Value::Object(o));
    }
    Value::Array(items)
}

/// Escapes a listing line for a DOT record label.
fn dot_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '<' | '>' | '|' | '&' | '{' | '}' | '"') {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

/// `prog dump xlated PROG visual`: a cluster per function, a record node per basic
/// block (leaders: the function's first instruction, jump targets, and the
/// instruction after a jump), ENTRY and EXIT nodes, fall-through edges before jump
/// edges. Instruction indexes restart at 0 in each function, as bpftool prints them.
pub fn dump_xlated_dot(prog: &ProgObj) -> String {
    let starts: Vec<usize> = functions(prog).iter().map(|f| f.start).collect();
    xlated_dot(&prog.xlated, &starts)
}

/// The DOT graph of [`dump_xlated_dot`] from the instructions and where their
/// functions start (a client holding only a listing draws it with this). Local
/// calls print bare (`call pc+7`) and map references as `map[id:N]`, so the
/// instructions alone are enough.
pub fn xlated_dot(all: &[Insn], func_starts: &[usize]) -> String {
    let mut starts: Vec<usize> = func_starts
        .iter()
        .copied()
        .filter(|s| *s < all.len())
        .collect();
    if starts.is_empty() && !all.is_empty() {
        starts.push(0);
    }
    let mut out = String::from("digraph \"DOT graph for eBPF program\" {\n");
    for (fi, &fstart) in starts.iter().enumerate() {
        let fend = starts.get(fi + 1).copied().unwrap_or(all.len());
        let insns = &all[fstart..fend];
        // Decode the function once: (pc relative to the function, decoded).
        let mut decoded: Vec<(usize, Option<Decoded>)> = Vec::new();
        let mut pc = 0;
        while pc < insns.len() {
            match decode_at(insns, pc) {
                Ok(d) => {
                    let n = d.slots();
                    decoded.push((pc, Some(d)));
                    pc += n;
                }
                Err(_) => {
                    decoded.push((pc, None));
                    pc += 1;
                }
            }
        }
        let jump_target = |pc: usize, d: &Decoded| -> Option<usize> {
            let rel = match d.op.info().shape {
                Shape::Ja32 => d.imm32() as i64,
                Shape::JmpK | Shape::JmpX | Shape::Ja => d.off as i64,
                _ => return None,
            };
            let t = pc as i64 + 1 + rel;
            (t >= 0 && (t as usize) < insns.len()).then_some(t as usize)
        };
        let mut leaders = std::collections::BTreeSet::new();
        leaders.insert(0usize);
        for (pc, d) in &decoded {
            let Some(d) = d else { continue };
            if d.op.is_jump() {
                if let Some(t) = jump_target(*pc, d) {
                    leaders.insert(t);
                }
                let next = pc + d.slots();
                if next < insns.len() {
                    leaders.insert(next);
                }
            }
        }
        let leaders: Vec<usize> = leaders.into_iter().collect();
        let block_of =
            |pc: usize| -> usize { leaders.partition_point(|l| *l <= pc).saturating_sub(1) };
        // Node numbers: 0 ENTRY, 1 EXIT, blocks from 2.
        let _ = writeln!(out, "subgraph \"cluster_{fi}\" {{");
        out.push_str("\tstyle=\"dashed\";\n\tcolor=\"black\";\n");
        let _ = writeln!(out, "\tlabel=\"func_{fi} ()\";");
        let _ = writeln!(
            out,
            "\tfn_{fi}_bb_0 [shape=Mdiamond,style=filled,label=\"ENTRY\"];\n"
        );
        let mut edges: Vec<(usize, usize)> = vec![(0, 2)];
        for (bi, start) in leaders.iter().enumerate() {
            let end = leaders.get(bi + 1).copied().unwrap_or(insns.len());
            let _ = write!(
                out,
                "\tfn_{fi}_bb_{} [shape=record,style=filled,label=\"{{",
                bi + 2
            );
            let mut first = true;
            let mut last: Option<(usize, Decoded)> = None;
            for (pc, d) in decoded.iter().filter(|(pc, _)| *pc >= *start && *pc < end) {
                let text = match d {
                    Some(d) => kernel_insn_line(d, fstart + pc, &XlatedSymbols),
                    None => format!("({:02x}) invalid", insns[*pc].code),
                };
                if !first {
                    out.push_str(" | ");
                }
                first = false;
                let _ = writeln!(out, "{pc:4}: {}\\l\\", dot_escape(&text));
                last = d.map(|d| (*pc, d));
            }
            out.push_str("}\"];\n\n");
            let me = bi + 2;
            match last {
                Some((_, d)) if d.op == Op::Exit => edges.push((me, 1)),
                Some((pc, d)) if d.op.is_jump() => {
                    let uncond = matches!(d.op.info().shape, Shape::Ja | Shape::Ja32);
                    if !uncond && end < insns.len() {
                        edges.push((me, block_of(end) + 2));
                    }
                    if let Some(t) = jump_target(pc, &d) {
                        edges.push((me, block_of(t) + 2));
                    }
                }
                _ => {
                    if end < insns.len() {
                        edges.push((me, block_of(end) + 2));
                    } else {
                        edges.push((me, 1));
                    }
                }
            }
        }
        let _ = writeln!(
            out,
            "\tfn_{fi}_bb_1 [shape=Mdiamond,style=filled,label=\"EXIT\"];\n"
        );
        for (a, b) in edges {
            let _ = writeln!(
                out,
                "\tfn_{fi}_bb_{a}:s -> fn_{fi}_bb_{b}:n [style=\"solid,bold\", color=black, weight=10, constraint=true];"
            );
        }
        let _ = writeln!(
            out,
            "\tfn_{fi}_bb_0:s -> fn_{fi}_bb_1:n [style=\"invis\", constraint=true];"
        );
        out.push_str("}\n");
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Object, Runtime};
    use std::path::Path;

    fn fixture(name: &str) -> Object {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/obj")
            .join(name);
        let bytes = std::fs::read(&p).unwrap();
        Object::parse(&format!("obj/{name}"), &bytes).unwrap()
    }

    fn golden(name: &str) -> Value {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/golden/kernel")
            .join(format!("{name}.json"));
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    // Helper calls print `#ID` here and `#ADDR` on the kernel; map ids differ.
    use bpfvm_testsupport::mask_xlated as mask;

    #[test]
    fn hello_and_hello_func_match_the_kernel() {
        for obj in ["hello", "hello-func"] {
            let rt = Runtime::new();
            let loaded = rt.load_object(&fixture(&format!("{obj}.o")), None).unwrap();
            let g = golden(obj);
            for (name, p) in &loaded.progs {
                let gp = &g["programs"][name];
                let plain = dump_xlated(p.obj(), &XlatedOpts::default());
                assert_eq!(
                    mask(&plain),
                    mask(gp["xlated"].as_str().unwrap()),
                    "{obj}/{name}"
                );
                let linum = dump_xlated(
                    p.obj(),
                    &XlatedOpts {
                        linum: true,
                        ..Default::default()
                    },
                );
                assert_eq!(
                    mask(&linum),
                    mask(gp["xlated_linum"].as_str().unwrap()),
                    "{obj}/{name} linum"
                );
            }
        }
    }

    #[test]
    fn hello_dot_graph_has_one_block() {
        let rt = Runtime::new();
        let loaded = rt.load_object(&fixture("hello.o"), None).unwrap();
        let dot = dump_xlated_dot(loaded.progs[0].1.obj());
        assert!(
            dot.starts_with("digraph \"DOT graph for eBPF program\" {\nsubgraph \"cluster_0\" {\n")
        );
        assert!(dot.contains("fn_0_bb_2:s -> fn_0_bb_1:n"));
        assert!(dot.contains("{   0: (18) r6 = map[id:"));
        assert!(!dot.contains("fn_0_bb_3"));
    }

    #[test]
    fn json_has_proto_src_and_disasm() {
        let rt = Runtime::new();
        let loaded = rt.load_object(&fixture("hello.o"), None).unwrap();
        let v = dump_xlated_json(
            loaded.progs[0].1.obj(),
            &XlatedOpts {
                opcodes: true,
                ..Default::default()
            },
        );
        assert_eq!(v[0]["proto"], "int hello(struct xdp_md * ctx)");
        assert_eq!(v[0]["src"], "bpf_printk(\"Hello World %d\", counter);");
        assert_eq!(v[0]["opcodes"]["imm"].as_array().unwrap().len(), 12);
        assert_eq!(v[3]["disasm"], "(b4) w2 = 15");
    }
}

/// Architectures `prog dump jited` can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum JitArch {
    /// The code the runtime runs.
    #[default]
    X86_64,
    /// arm64 code generated for the listing (as the chapter's listing is arm64).
    Aarch64,
}

/// Options of `prog dump jited`.
#[derive(Clone, Copy, Debug, Default)]
pub struct JitedOpts {
    /// Print each instruction's native bytes (`opcodes`).
    pub opcodes: bool,
    /// Print source lines above the code (`linum`).
    pub linum: bool,
    /// The architecture to list code for.
    pub arch: JitArch,
}

/// Native instructions and where each BPF slot's code starts.
struct NativeListing {
    insns: Vec<(usize, Vec<u8>, String)>,
    offsets: Vec<u32>,
}

fn native_listing(prog: &ProgObj, arch: JitArch) -> Option<NativeListing> {
    match arch {
        JitArch::X86_64 => {
            let j = prog.jit.as_ref()?;
            Some(NativeListing {
                insns: j
                    .disassemble()
                    .into_iter()
                    .map(|n| (n.offset, n.bytes, n.text))
                    .collect(),
                offsets: j.insn_offsets().to_vec(),
            })
        }
        JitArch::Aarch64 => {
            let l = prog.vm.aarch64_listing(&bpfvm_vm::JitOptions::checked());
            Some(NativeListing {
                insns: l
                    .insns()
                    .iter()
                    .map(|i| (i.offset, i.word.to_le_bytes().to_vec(), i.text.clone()))
                    .collect(),
                offsets: l.insn_offsets().to_vec(),
            })
        }
    }
}

/// One line of a `prog dump jited` listing.
#[derive(Clone, Debug)]
pub enum JitedItem {
    /// The source line of the BPF instructions whose code starts here.
    Source(crate::LineInfo),
    /// A native instruction: its offset in the image, bytes and text.
    Insn {
        /// Offset in the native image.
        offset: usize,
        /// Its bytes.
        bytes: Vec<u8>,
        /// Intel (x86-64) or A64 syntax.
        text: String,
    },
}

/// A function of a `prog dump jited` listing.
#[derive(Clone, Debug)]
pub struct JitedFunction {
    /// Its C signature from BTF, when it has one.
    pub proto: Option<String>,
    /// `bpf_prog_TAG_NAME`, as the kernel names its images.
    pub label: String,
    /// Source lines and native instructions, in address order.
    pub items: Vec<JitedItem>,
}

/// The native code of `prog` for `arch`, per function, with the source lines
/// above the instructions they produced. None when the program has no native
/// code ([`ProgObj::jit_error`] says why).
pub fn jited_listing(prog: &ProgObj, arch: JitArch) -> Option<Vec<JitedFunction>> {
    let native = native_listing(prog, arch)?;
    let funcs = functions(prog);
    let lines = lines_by_insn(prog);
    let n = prog.xlated.len();
    let code_start = |pc: usize| native.offsets.get(pc).map_or(usize::MAX, |o| *o as usize);
    let mut out = Vec::with_capacity(funcs.len());
    let mut k = 0;
    for (fi, f) in funcs.iter().enumerate() {
        let body = prog.xlated.get(f.start..f.end).unwrap_or(&[]);
        let tag = crate::tag::tag_hex(&crate::tag::prog_tag(body));
        let name = match (&prog.btf, f.type_id) {
            (Some(b), t) if t != 0 => b.btf.name(t).to_string(),
            _ if fi == 0 => prog.name.clone(),
            _ => String::new(),
        };
        let end = funcs
            .get(fi + 1)
            .map_or(usize::MAX, |next| code_start(next.start));
        let mut items = Vec::new();
        let mut pc = f.start;
        while k < native.insns.len() && native.insns[k].0 < end {
            let (off, bytes, text) = &native.insns[k];
            // Source lines of every BPF instruction whose code starts here.
            while pc < f.end.min(n) && code_start(pc) <= *off {
                if let Some(l) = lines.get(&pc) {
                    items.push(JitedItem::Source((*l).clone()));
                }
                pc += 1;
            }
            items.push(JitedItem::Insn {
                offset: *off,
                bytes: bytes.clone(),
                text: text.clone(),
            });
            k += 1;
        }
        out.push(JitedFunction {
            proto: sig_for(prog, f),
            label: format!("bpf_prog_{tag}_{name}"),
            items,
        });
    }
    Some(out)
}

/// `bpftool prog dump jited`: per function its signature and `bpf_prog_TAG_NAME:`
/// label, source lines above the native instructions they produced, `opcodes` adds
/// the bytes of each instruction. None when the program has no native code.
pub fn dump_jited(prog: &ProgObj, opts: &JitedOpts) -> Option<String> {
    let funcs = jited_listing(prog, opts.arch)?;
    let mut out = String::new();
    for (fi, f) in funcs.iter().enumerate() {
        if let Some(sig) = &f.proto {
            let _ = writeln!(out, "{sig}:");
        }
        let _ = writeln!(out, "{}:", f.label);
        for item in &f.items {
            match item {
                JitedItem::Source(l) => out.push_str(&source_annotation(l, opts.linum)),
                JitedItem::Insn {
                    offset,
                    bytes,
                    text,
                } => {
                    let _ = writeln!(out, "{offset:4x}:\t{text}");
                    if opts.opcodes {
                        let b: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
                        let _ = writeln!(out, "\t{}", b.join(" "));
                    }
                }
            }
        }
        if fi + 1 < funcs.len() {
            out.push('\n');
        }
    }
    Some(out)
}
