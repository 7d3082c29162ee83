//! Live oracle: load tests/data/elf/calls.o (BPF-to-BPF calls, a callback,
//! shared subprograms) into the host kernel with bpftool and compare each
//! program's tag with the tag of our linked instructions. Equal tags mean
//! the same instructions, in the same order, as libbpf produced.
//! Skips (with a message) unless root with bpftool and bpffs.

use std::path::Path;
use std::process::Command;

use bpfvm_obj::Object;

mod elf_common;
use elf_common::{prog_tag, Hash};

fn skip(why: &str) {
    eprintln!("skip: {why}");
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

#[test]
fn linked_programs_match_the_kernel_tags() {
    if !is_root() {
        return skip("not root");
    }
    if !Path::new("/sys/fs/bpf").is_dir() {
        return skip("no bpffs at /sys/fs/bpf");
    }
    if Command::new("bpftool").arg("version").output().is_err() {
        return skip("bpftool not found");
    }
    let obj_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/elf/calls.o");
    let obj = Object::open(&obj_path).unwrap();
    let pin = format!("/sys/fs/bpf/bpfvm_objelf_{}", std::process::id());
    let load = Command::new("bpftool")
        .args(["prog", "loadall"])
        .arg(&obj_path)
        .arg(&pin)
        .output()
        .unwrap();
    if !load.status.success() {
        let _ = std::fs::remove_dir_all(&pin);
        return skip(&format!(
            "the kernel refused calls.o: {}",
            String::from_utf8_lossy(&load.stderr)
        ));
    }
    let mut results = Vec::new();
    for p in &obj.programs {
        let show = Command::new("bpftool")
            .args(["-j", "prog", "show", "pinned"])
            .arg(format!("{pin}/{}", p.name))
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap_or_default();
        results.push((p, v["tag"].as_str().unwrap_or("").to_string()));
    }
    let _ = std::fs::remove_dir_all(&pin);
    assert_eq!(results.len(), 2);
    eprintln!(
        "comparing {} programs with the kernel's tags",
        results.len()
    );
    for (p, kernel_tag) in results {
        let ours = [
            prog_tag(&p.insns, Hash::Sha256),
            prog_tag(&p.insns, Hash::Sha1),
        ];
        assert!(
            ours.contains(&kernel_tag),
            "{}: kernel tag {kernel_tag}, ours {ours:?}",
            p.name
        );
    }
}
