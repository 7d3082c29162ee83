//! `bpfvm verify OBJ [section S]`: runs the verifier on every program of an object
//! (or of one section) in a private runtime — no daemon, nothing is kept — and
//! prints its log in the kernel's words with source lines: level 1 (the failing
//! path, or the statistics line of an accepted program), level 2 with `-d`.

use crate::client::print_error;
use crate::Opts;
use bpfvm::{BpfError, LoadOpts, Object, Runtime};

pub fn main(opts: &Opts, args: &[String]) -> i32 {
    let Some(path) = args.first() else {
        eprintln!("Usage: bpfvm verify OBJ [section SECTION] [unprivileged]");
        return 255;
    };
    let mut section = None;
    let mut unprivileged = false;
    let mut i = 1;
    while i < args.len() {
        match (args[i].as_str(), args.get(i + 1)) {
            ("section", Some(s)) => {
                section = Some(s.clone());
                i += 2;
            }
            ("unprivileged" | "--unprivileged", _) => {
                unprivileged = true;
                i += 1;
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
    let obj = match Object::parse(path, &bytes) {
        Ok(o) => o,
        Err(e) => return print_error(opts, &crate::render::error_chain(&e)),
    };
    let names: Vec<(String, String)> = obj
        .programs
        .iter()
        .filter(|p| section.as_ref().is_none_or(|s| &p.section == s))
        .map(|p| (p.name.clone(), p.section.clone()))
        .collect();
    if names.is_empty() {
        return print_error(opts, &format!("{path}: no program to verify"));
    }
    let load = LoadOpts {
        log_level: if opts.debug { 2 } else { 1 },
        unprivileged,
    };
    let mut refused = 0;
    let mut results = Vec::new();
    for (name, sec) in &names {
        // Each program in a runtime of its own, with the object's maps, as a
        // loader that loads only it would see them.
        let rt = Runtime::with_cpus(1);
        let (verdict, log) = match rt.load_object_with(&obj, Some(name), &load) {
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
