//! `bpfvm verify OBJ [section S] [prog NAME] [type TYPE] [flags F...]
//! [unprivileged]`: runs the verifier on every program of an object (or of one
//! section, or one program) in a private runtime — no daemon, nothing is kept —
//! and prints its log in the kernel's words with source lines: level 1 (the
//! failing path, or the statistics line of an accepted program), level 2 with
//! `-d`. `flags` are `BPF_PROG_LOAD`'s `prog_flags`, `unprivileged` the rules for
//! a loader without CAP_BPF, as the kernel's selftests load their cases.

use crate::client::print_error;
use crate::Opts;
use bpfvm::{BpfError, LoadOpts, Runtime};

/// `prog_flags` names (`BPF_F_STRICT_ALIGNMENT` or `strict_alignment`).
const PROG_FLAGS: &[(&str, u32)] = &[
    ("BPF_F_STRICT_ALIGNMENT", 1 << 0),
    ("BPF_F_ANY_ALIGNMENT", 1 << 1),
    ("BPF_F_TEST_RND_HI32", 1 << 2),
    ("BPF_F_TEST_STATE_FREQ", 1 << 3),
    ("BPF_F_SLEEPABLE", 1 << 4),
    ("BPF_F_XDP_HAS_FRAGS", 1 << 5),
    ("BPF_F_XDP_DEV_BOUND_ONLY", 1 << 6),
    ("BPF_F_TEST_REG_INVARIANTS", 1 << 7),
];

/// One flag word: a name from `PROG_FLAGS` (with or without `BPF_F_`, any
/// case), a number (`0x3`), or several joined by `|`.
pub fn parse_flag(word: &str) -> Result<u32, String> {
    let mut v = 0;
    for part in word.split('|') {
        let up = part.trim().to_ascii_uppercase();
        let named = PROG_FLAGS
            .iter()
            .find(|(n, _)| *n == up || n.strip_prefix("BPF_F_") == Some(up.as_str()));
        v |= match named {
            Some((_, f)) => *f,
            None => {
                let num = match up.strip_prefix("0X") {
                    Some(h) => u32::from_str_radix(h, 16).ok(),
                    None => up.parse().ok(),
                };
                num.ok_or_else(|| format!("unknown program flag '{part}'"))?
            }
        };
    }
    Ok(v)
}

/// The words after `flags` up to the next keyword: (flags, index after them).
pub fn parse_flags(
    args: &[String],
    from: usize,
    keywords: &[&str],
) -> Result<(u32, usize), String> {
    let mut flags = 0;
    let mut i = from;
    while let Some(w) = args.get(i) {
        if keywords.contains(&w.as_str()) {
            break;
        }
        flags |= parse_flag(w)?;
        i += 1;
    }
    if i == from {
        return Err("expected a flag after 'flags'".into());
    }
    Ok((flags, i))
}

/// The usage text (also the man page's synopsis).
pub const USAGE: &str =
    "Usage: bpfvm verify OBJ [section SECTION] [prog NAME] [type TYPE] [flags FLAG...] [unprivileged] [btf PATH]";

pub fn main(opts: &Opts, args: &[String]) -> i32 {
    const KEYWORDS: &[&str] = &["section", "prog", "type", "flags", "unprivileged", "btf"];
    let Some(path) = args.first() else {
        eprintln!("{USAGE}");
        return 255;
    };
    let mut section = None;
    let mut prog = None;
    let mut prog_type = None;
    let mut prog_flags = 0;
    let mut unprivileged = false;
    let mut target_btf = None;
    let mut i = 1;
    while i < args.len() {
        match (args[i].as_str(), args.get(i + 1)) {
            ("section", Some(s)) => {
                section = Some(s.clone());
                i += 2;
            }
            ("prog", Some(s)) => {
                prog = Some(s.clone());
                i += 2;
            }
            ("type", Some(s)) => {
                prog_type = Some(s.clone());
                i += 2;
            }
            ("flags", _) => match parse_flags(args, i + 1, KEYWORDS) {
                Ok((f, next)) => {
                    prog_flags |= f;
                    i = next;
                }
                Err(e) => return print_error(opts, &e),
            },
            ("unprivileged" | "--unprivileged", _) => {
                unprivileged = true;
                i += 1;
            }
            // The CO-RE target BTF (libbpf's btf_custom_path).
            ("btf", Some(s)) => {
                match crate::btf::target_btf(s) {
                    Ok((_, btf)) => {
                        target_btf = Some(bpfvm::TargetBtf::Btf(std::sync::Arc::new(btf)))
                    }
                    Err(e) => return print_error(opts, &e),
                }
                i += 2;
            }
            ("section" | "prog" | "type" | "btf", None) => {
                return print_error(opts, &format!("expected a value after '{}'", args[i]))
            }
            (other, _) => return print_error(opts, &format!("unexpected argument '{other}'")),
        }
    }
    let bytes = match crate::safefs::read_input_capped(
        std::path::Path::new(path),
        crate::safefs::MAX_INPUT,
    ) {
        Ok(b) => b,
        Err(e) => {
            return print_error(
                opts,
                &format!(
                    "failed to open object file {}",
                    crate::render::error_chain(&e)
                ),
            )
        }
    };
    let obj = match crate::daemon::parse_object(path, &bytes, prog_type.as_deref()) {
        Ok(o) => o,
        Err(e) => return print_error(opts, &e),
    };
    let names: Vec<(String, String)> = obj
        .programs
        .iter()
        .filter(|p| section.as_ref().is_none_or(|s| &p.section == s))
        .filter(|p| prog.as_ref().is_none_or(|n| &p.name == n))
        .map(|p| (p.name.clone(), p.section.clone()))
        .collect();
    if names.is_empty() {
        return print_error(opts, &format!("{path}: no program to verify"));
    }
    let load = LoadOpts {
        log_level: if opts.debug { 2 } else { 1 },
        unprivileged,
        prog_flags,
        target_btf,
        ..Default::default()
    };
    // Programs a prog_array's initial slots name are loaded alongside, as
    // libbpf does, so that the slots can be filled.
    let slot_progs: Vec<String> = obj
        .maps
        .iter()
        .flat_map(|m| m.init_slots.iter().map(|(_, n)| n.clone()))
        .filter(|n| obj.programs.iter().any(|p| &p.name == n))
        .collect();
    let mut refused = 0;
    let mut results = Vec::new();
    for (name, sec) in &names {
        // Each program in a runtime of its own, with the object's maps, as a
        // loader that loads only it would see them.
        let rt = Runtime::with_config(crate::runtime_config().cpus(1));
        let mut programs = vec![name.clone()];
        programs.extend(slot_progs.iter().filter(|n| *n != name).cloned());
        let load = LoadOpts {
            programs: Some(programs),
            ..load.clone()
        };
        let (verdict, log) = match rt.load_object_with(&obj, None, &load) {
            Ok(l) => {
                let log = l
                    .prog(name)
                    .map(|p| p.obj().verifier_log.clone())
                    .unwrap_or_default();
                ("accepted".to_string(), log)
            }
            Err(BpfError::Verifier { source, .. }) => {
                refused += 1;
                (format!("refused: {}", source.error), source.log)
            }
            Err(e) => {
                refused += 1;
                (
                    format!("refused: {}", crate::render::error_chain(&e)),
                    String::new(),
                )
            }
        };
        if opts.json {
            results.push(serde_json::json!({
                "name": name, "section": sec, "verdict": verdict, "log": log,
            }));
        } else {
            println!("prog '{name}' (section {sec}): {verdict}");
            for line in log.lines() {
                println!("  {line}");
            }
        }
    }
    if opts.json {
        let f = if opts.pretty {
            crate::proto::Format::Pretty
        } else {
            crate::proto::Format::Json
        };
        print!(
            "{}",
            crate::render::json(f, &serde_json::Value::Array(results))
        );
    }
    if refused > 0 {
        1
    } else {
        0
    }
}
