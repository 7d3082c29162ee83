//! `bpfvm verify OBJ [section S]`. This build has no verifier: the command says
//! so and runs the structural checks a load performs (ELF, license, BTF, maps,
//! instruction decoding, map references, helper ids), printing each.

use crate::client::print_error;
use crate::Opts;
use bpfvm::{Object, Runtime};

pub fn main(opts: &Opts, args: &[String]) -> i32 {
    let Some(path) = args.first() else {
        eprintln!("Usage: bpfvm verify OBJ [section SECTION]");
        return 255;
    };
    let section = match (args.get(1).map(String::as_str), args.get(2)) {
        (None, _) => None,
        (Some("section"), Some(s)) => Some(s.clone()),
        _ => return print_error(opts, "expected 'section SECTION'"),
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return print_error(opts, &format!("failed to open object file {path}: {e}")),
    };
    println!("Note: this build of bpfvm has no verifier yet: programs are not checked for safety.");
    println!("      The structural checks of a load ran instead:");
    let obj = match Object::parse(path, &bytes) {
        Ok(o) => o,
        Err(e) => return print_error(opts, &crate::render::error_chain(&e)),
    };
    println!(
        "  object {path}: ELF parsed, license \"{}\"{}, {}, {}",
        obj.license,
        if obj.gpl_compatible {
            " (GPL-compatible)"
        } else {
            ""
        },
        match &obj.btf {
            Some(b) => format!("BTF with {} types", b.nr_types()),
            None => "no BTF".into(),
        },
        if obj.btf_ext.is_some() {
            "BTF.ext (func and line info)"
        } else {
            "no BTF.ext"
        }
    );
    for w in &obj.warnings {
        println!("  warning: {w}");
    }
    let mut obj = obj;
    if let Some(s) = &section {
        obj.programs.retain(|p| &p.section == s);
        if obj.programs.is_empty() {
            return print_error(opts, &format!("{path}: no program in section '{s}'"));
        }
    }
    let rt = Runtime::new();
    match rt.load_object(&obj, None) {
        Ok(loaded) => {
            for (name, m) in &loaded.maps {
                let a = m.obj().attr();
                println!(
                    "  map {name}: {} key {}B value {}B max_entries {}: created",
                    a.map_type.name(),
                    a.key_size,
                    a.value_size,
                    a.max_entries
                );
            }
            for (name, p) in &loaded.progs {
                let o = p.obj();
                let section = obj.program(name).map_or("?", |x| x.section.as_str());
                println!(
                    "  prog {name} (section {section}, type {}): {} instructions decoded, \
                     map references resolved ({} maps), helper calls known, tag {}: loaded",
                    bpfvm::prog_type_name(o.prog_type),
                    o.xlated.len(),
                    o.used_maps.len(),
                    bpfvm::tag::tag_hex(&o.tag)
                );
            }
            println!(
                "Result: {} program(s) loaded (not verified)",
                loaded.progs.len()
            );
            0
        }
        Err(e) => print_error(
            opts,
            &format!("load refused: {}", crate::render::error_chain(&e)),
        ),
    }
}
