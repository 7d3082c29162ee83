//! The parsed fixtures against what the host kernel saw when bpftool
//! (libbpf 1.1) loaded the same objects: tests/golden/kernel/*.json.
//!
//! Checked per object: the programs, in order, with their types and GPL
//! flag; each program's tag (the kernel's SHA-256 over the instructions as
//! loaded, map imms masked), which only matches if subprograms were
//! appended in libbpf's order with the same call offsets and relocations;
//! the function order (func_info) and the source line sequence (line_info)
//! per program; and every pinned map's name, type, sizes and flags.

use std::path::{Path, PathBuf};

use bpfvm_obj::{MapKind, Object};
use serde_json::Value;

mod elf_common;
use elf_common::{prog_tag, Hash};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// bpftool's map type names.
fn map_type_name(t: u32) -> &'static str {
    match t {
        1 => "hash",
        2 => "array",
        3 => "prog_array",
        4 => "perf_event_array",
        5 => "percpu_hash",
        6 => "percpu_array",
        7 => "stack_trace",
        8 => "cgroup_array",
        9 => "lru_hash",
        10 => "lru_percpu_hash",
        11 => "lpm_trie",
        12 => "array_of_maps",
        13 => "hash_of_maps",
        14 => "devmap",
        15 => "sockmap",
        16 => "cpumap",
        17 => "xskmap",
        18 => "sockhash",
        22 => "queue",
        23 => "stack",
        27 => "ringbuf",
        _ => "?",
    }
}

/// `(file, line, col)` of every `; ... [file:F line_num:N line_col:C]`
/// line, and the function names of the `TYPE NAME(ARGS):` headers.
fn linum(text: &str) -> (Vec<(String, u32, u32)>, Vec<String>) {
    let mut lines = Vec::new();
    let mut funcs = Vec::new();
    for l in text.lines() {
        if l.starts_with(';') {
            if let Some(p) = l.rfind(" [file:") {
                let tail = l[p + 7..].trim_end_matches(']');
                let mut parts = tail.split(' ');
                let file = parts.next().unwrap().to_string();
                let num = parts
                    .next()
                    .unwrap()
                    .trim_start_matches("line_num:")
                    .parse()
                    .unwrap();
                let col = parts
                    .next()
                    .unwrap()
                    .trim_start_matches("line_col:")
                    .parse()
                    .unwrap();
                lines.push((file, num, col));
            }
        } else if !l.starts_with(' ') && l.ends_with("):") {
            let head = &l[..l.find('(').unwrap()];
            let name = head.rsplit([' ', '*']).next().unwrap();
            funcs.push(name.to_string());
        }
    }
    (lines, funcs)
}

#[test]
fn fixtures_match_the_kernel() {
    let dir = root().join("tests/golden/kernel");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skip: no {}", dir.display());
        return;
    };
    let mut checked_progs = 0;
    let mut checked_maps = 0;
    for e in entries {
        let path = e.unwrap().path();
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let golden: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(progs) = golden.get("programs").and_then(Value::as_object) else {
            continue;
        };
        let obj_path = root().join("tests/fixtures/obj").join(format!("{stem}.o"));
        let obj = match Object::open(&obj_path) {
            Ok(o) => o,
            Err(e) => panic!("{stem}: {e}"),
        };
        // Program order is libbpf's (ELF symbol order within each section).
        let names: Vec<&str> = obj.programs.iter().map(|p| p.name.as_str()).collect();
        let golden_names: Vec<&str> = progs.keys().map(String::as_str).collect();
        assert_eq!(names, golden_names, "{stem}: programs");
        for (name, gp) in progs {
            let p = obj.program(name).unwrap();
            assert_eq!(
                Some(p.section.as_str()),
                gp["section"].as_str(),
                "{stem}/{name}: section"
            );
            if gp["verdict"] != "accepted" {
                continue;
            }
            assert_eq!(
                Some(p.prog_type.name()),
                gp["type"].as_str(),
                "{stem}/{name}: type"
            );
            assert_eq!(
                Some(obj.gpl_compatible),
                gp["show"]["gpl_compatible"].as_bool(),
                "{stem}/{name}: gpl_compatible"
            );
            assert_eq!(
                prog_tag(&p.insns, Hash::Sha256),
                gp["tag"].as_str().unwrap(),
                "{stem}/{name}: tag (linked instructions differ from libbpf's)"
            );
            checked_progs += 1;
            // Very long programs (gotol) have no xlated text in the golden.
            let Some(text) = gp["xlated_linum"].as_str() else {
                continue;
            };
            let (lines, funcs) = linum(text);
            let ours: Vec<(String, u32, u32)> = p
                .line_info
                .iter()
                .map(|l| (l.file_name.clone(), l.line_num, l.col))
                .collect();
            assert_eq!(ours, lines, "{stem}/{name}: line info");
            if funcs.is_empty() {
                assert!(
                    p.func_info.is_empty(),
                    "{stem}/{name}: kernel had no func info"
                );
            } else {
                let ours: Vec<&str> = p.funcs.iter().map(|f| f.name.as_str()).collect();
                assert_eq!(ours, funcs, "{stem}/{name}: functions");
                assert_eq!(p.func_info.len(), funcs.len(), "{stem}/{name}: func info");
                for (fi, fr) in p.func_info.iter().zip(&p.funcs) {
                    assert_eq!(
                        fi.insn_idx as usize, fr.insn_off,
                        "{stem}/{name}: func info offset"
                    );
                }
            }
        }
        let Some(maps) = golden.get("maps").and_then(Value::as_object) else {
            continue;
        };
        for (pin, gm) in maps {
            let show = &gm["show"];
            let gname = show["name"].as_str().unwrap();
            let m = obj
                .maps
                .iter()
                .find(|m| {
                    // The kernel keeps 15 characters of a user map's name.
                    m.name.chars().take(15).collect::<String>() == gname
                })
                .unwrap_or_else(|| panic!("{stem}: no map {gname} (pinned as {pin})"));
            assert_eq!(
                Some(map_type_name(m.map_type)),
                show["type"].as_str(),
                "{stem}/{gname}: type"
            );
            assert_eq!(
                Some(u64::from(m.key_size)),
                show["bytes_key"].as_u64(),
                "{stem}/{gname}: key"
            );
            assert_eq!(
                Some(u64::from(m.value_size)),
                show["bytes_value"].as_u64(),
                "{stem}/{gname}: value"
            );
            assert_eq!(
                Some(u64::from(m.max_entries)),
                show["max_entries"].as_u64(),
                "{stem}/{gname}: max_entries"
            );
            // The kernel adds BPF_F_RDONLY_PROG to devmaps itself.
            let flags = if map_type_name(m.map_type) == "devmap" {
                m.map_flags | 0x80
            } else {
                m.map_flags
            };
            assert_eq!(
                Some(u64::from(flags)),
                show["flags"].as_u64(),
                "{stem}/{gname}: flags"
            );
            assert_eq!(
                m.freeze_after_load(),
                show["frozen"].as_u64() == Some(1),
                "{stem}/{gname}: frozen"
            );
            // Right after load, a global data map holds the object's
            // initial data.
            if m.kind != MapKind::User {
                let value: Vec<u8> = gm["dump"][0]["value"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| {
                        u8::from_str_radix(b.as_str().unwrap().trim_start_matches("0x"), 16)
                            .unwrap()
                    })
                    .collect();
                assert_eq!(m.initial_value(), value, "{stem}/{gname}: initial data");
            }
            checked_maps += 1;
        }
    }
    assert!(checked_progs >= 20, "only {checked_progs} programs checked");
    assert!(checked_maps >= 20, "only {checked_maps} maps checked");
}
