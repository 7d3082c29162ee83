//! The kernel-syntax disassembler against text the kernel printed.
//!
//! `tests/golden/kernel_*.txt` hold, per line, `pc<TAB>bytes<TAB>(code) text` as
//! observed on a live kernel by `tests/golden/gen_kernel_golden.py`: a
//! `[verifier]` section (the 6.18 verifier log's instruction listing, i.e. the
//! kernel's own disasm.c) and an `[xlated]` section (`bpftool prog dump xlated
//! opcodes`, printed by bpftool's copy of disasm.c after the kernel's rewrites).
//!
//! Parts of a line that the kernel takes from a callback (kfunc names, the
//! kallsyms name of a rewritten helper address, bpftool's `pc+N#bpf_prog_...`,
//! map pointers) are environment, not format: the test feeds those back from the
//! expected line through [`KernelSymbols`] and checks everything else.
//!
//! With `BPFVM_BLESS=1`, as root with bpftool and python3, the goldens are
//! regenerated from the running kernel first.

use bpfvm_isa::disasm::{kernel_insn_line, KernelSymbols};
use bpfvm_isa::{decode_at, insns_from_bytes, Decoded, Op, Shape};
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Symbols that hand back what the kernel printed for callback-provided parts.
struct Oracle<'a> {
    expected: &'a str,
}

impl Oracle<'_> {
    /// Text between `prefix` and `#` (or end) in the expected line.
    fn after(&self, prefix: &str) -> Option<String> {
        let rest = &self.expected[self.expected.find(prefix)? + prefix.len()..];
        Some(rest.to_string())
    }
}

impl KernelSymbols for Oracle<'_> {
    fn call_name(&self, _pc: usize, d: &Decoded) -> Option<String> {
        let rest = self.after(if d.op == Op::CallLocal {
            "call pc"
        } else {
            "call "
        })?;
        if d.op == Op::CallLocal {
            // bpftool appends `#bpf_prog_<tag>_<name>` to the kernel's `+N`.
            return Some(rest);
        }
        Some(rest.rsplit_once('#')?.0.to_string())
    }
    fn imm64_text(&self, _pc: usize, d: &Decoded) -> Option<String> {
        // Map pseudo sources: a kernel pointer (verifier) or map[id:..] (bpftool).
        if matches!(d.src, 1 | 2 | 5 | 6) {
            return self.after(&format!("r{} = ", d.dst));
        }
        None
    }
}

/// Is this an op that bpftool 7.1's older copy of disasm.c cannot print in the
/// kernel's current form (cpu v4 additions)? Only used for the xlated section.
fn bpftool_predates(op: Op) -> bool {
    use Op::*;
    matches!(
        op,
        SDiv64K | SDiv64X | SMod64K | SMod64X | SDiv32K | SDiv32X | SMod32K | SMod32X
    ) || matches!(op.shape(), Shape::MovSx | Shape::Ja32)
        || matches!(op, Bswap16 | Bswap32 | Bswap64 | LdxSW | LdxSH | LdxSB)
}

fn maybe_bless(dir: &Path) {
    if std::env::var_os("BPFVM_BLESS").is_none() {
        return;
    }
    let script = dir.join("gen_kernel_golden.py");
    match std::process::Command::new("python3")
        .arg(&script)
        .arg(dir)
        .status()
    {
        Ok(s) if s.success() => eprintln!("re-blessed kernel goldens from the running kernel"),
        Ok(s) => panic!(
            "BPFVM_BLESS=1: {} failed: {s} (needs root, bpffs, bpftool)",
            script.display()
        ),
        Err(e) => panic!("BPFVM_BLESS=1: cannot run python3: {e}"),
    }
}

#[test]
fn kernel_text_matches_goldens() {
    let dir = golden_dir();
    maybe_bless(&dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/golden exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("kernel_") && n.ends_with(".txt"))
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "kernel goldens missing in {}",
        dir.display()
    );
    let (mut checked, mut internal, mut old_bpftool) = (0, 0, 0);
    let mut seen = std::collections::BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let mut section = "";
        for (n, line) in text.lines().enumerate() {
            let at = format!("{}:{}", f.display(), n + 1);
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            if line.starts_with('[') {
                section = if line == "[verifier]" {
                    "verifier"
                } else {
                    "xlated"
                };
                continue;
            }
            let mut cols = line.splitn(3, '\t');
            let (Some(pc), Some(hex), Some(want)) = (cols.next(), cols.next(), cols.next()) else {
                panic!("{at}: malformed golden line");
            };
            let pc: usize = pc.parse().unwrap_or_else(|e| panic!("{at}: pc: {e}"));
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| {
                    u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or_else(|e| panic!("{at}: {e}"))
                })
                .collect();
            let slots = insns_from_bytes(&bytes).unwrap_or_else(|e| panic!("{at}: {e}"));
            let d = match decode_at(&slots, 0) {
                Ok(d) => d,
                Err(e) => {
                    // Only the kernel's own rewrites may fall outside the ISA: the
                    // hidden register r11 (BPF_REG_AX), the per-cpu address mov, and
                    // bpf-to-bpf calls whose off the JIT fixup filled in.
                    let s = slots[0];
                    let kernel_internal = section == "xlated"
                        && (s.dst_reg == 11
                            || s.src_reg == 11
                            || (s.code == 0xbf && s.off == -1)
                            || (s.code == 0x85 && s.src_reg == 1));
                    assert!(
                        kernel_internal,
                        "{at}: kernel printed `{want}` for bytes we refuse: {e}"
                    );
                    internal += 1;
                    continue;
                }
            };
            let got = kernel_insn_line(&d, pc, &Oracle { expected: want });
            if got != want && section == "xlated" && bpftool_predates(d.op) {
                old_bpftool += 1;
                continue;
            }
            assert_eq!(got, want, "{at}: {d:?}");
            checked += 1;
            seen.insert(d.op);
        }
    }
    eprintln!(
        "checked {checked} lines ({} distinct ops); skipped {internal} kernel-internal and {old_bpftool} \
         lines bpftool 7.1 prints in its pre-cpu-v4 form",
        seen.len()
    );
    // Every op the kernel accepts appears in the goldens. callx (never accepted)
    // and LD_IND/ABS variants aside, that is the whole table.
    let missing: Vec<_> = Op::all()
        .filter(|op| !seen.contains(op) && *op != Op::CallX)
        .collect();
    assert!(
        missing.is_empty(),
        "ops without a kernel observation: {missing:?}"
    );
}
