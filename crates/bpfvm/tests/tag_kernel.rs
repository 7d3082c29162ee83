//! Program tags against tags the Linux kernel reported for the same instructions.
//!
//! `data/tag/kernel_tags.txt` holds, for each program, the instruction slots libbpf
//! submitted to BPF_PROG_LOAD and the tag the kernel (6.18) reported; it was
//! captured with `data/tag/kfload.c` and `data/tag/kfidx.c` (see the README there).
//! The live test at the end loads the committed objects into the host kernel with
//! bpftool and checks that the kernel still reports the committed tags; it skips
//! when the host cannot load BPF programs.

use bpfvm::isa::consts::{
    BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_IDX, BPF_PSEUDO_MAP_IDX_VALUE, BPF_PSEUDO_MAP_VALUE,
};
use bpfvm::isa::Insn;
use bpfvm::tag::{parse_tag, prog_tag, tag_hex, tag_input};
use std::path::PathBuf;
use std::process::Command;

const KERNEL_TAGS: &str = include_str!("data/tag/kernel_tags.txt");

struct Captured {
    name: String,
    object: String,
    tag: [u8; 8],
    insns: Vec<Insn>,
}

fn captured() -> Vec<Captured> {
    let mut out = Vec::new();
    let mut cur: Option<Captured> = None;
    for line in KERNEL_TAGS.lines().filter(|l| !l.starts_with('#')) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("prog") => {
                cur = Some(Captured {
                    name: words.next().expect("prog name").to_string(),
                    object: words.next().expect("object").to_string(),
                    tag: [0; 8],
                    insns: Vec::new(),
                })
            }
            Some("tag") => {
                let c = cur.as_mut().expect("tag inside prog");
                c.tag = parse_tag(words.next().expect("tag value")).expect("16 hex digits");
            }
            Some("insns") | None => {}
            Some("end") => out.push(cur.take().expect("end after prog")),
            Some(hex) => {
                let v = u64::from_str_radix(hex, 16).expect("slot as hex");
                let bytes = v.to_be_bytes(); // the file lists bytes in memory order
                cur.as_mut()
                    .expect("slot inside prog")
                    .insns
                    .push(Insn::from_bytes(bytes));
            }
        }
    }
    assert!(cur.is_none(), "unterminated program in kernel_tags.txt");
    out
}

#[test]
fn tags_equal_the_kernel_tags() {
    let progs = captured();
    assert!(
        progs.len() >= 12,
        "expected the committed programs, found {}",
        progs.len()
    );
    for p in &progs {
        assert_eq!(
            tag_hex(&prog_tag(&p.insns)),
            tag_hex(&p.tag),
            "tag of {} ({}), {} slots",
            p.name,
            p.object,
            p.insns.len()
        );
    }
}

fn is_map_ref(i: &Insn) -> bool {
    i.code == 0x18 && (i.src_reg == BPF_PSEUDO_MAP_FD || i.src_reg == BPF_PSEUDO_MAP_VALUE)
}

#[test]
fn map_fds_and_value_offsets_do_not_change_the_tag() {
    for p in captured() {
        let mut moved = p.insns.clone();
        let mut changed = false;
        for k in 0..moved.len() {
            if is_map_ref(&moved[k]) {
                moved[k].imm = moved[k].imm.wrapping_add(1000);
                moved[k + 1].imm = moved[k + 1].imm.wrapping_add(8);
                changed = true;
            }
        }
        assert_eq!(prog_tag(&moved), p.tag, "{}", p.name);
        if changed {
            // Without the zeroing the kernel's tag is not reproduced: the zeroing is real.
            let raw: Vec<u8> = p.insns.iter().flat_map(|i| i.to_bytes()).collect();
            let zeroed: Vec<u8> = tag_input(&p.insns)
                .iter()
                .flat_map(|i| i.to_bytes())
                .collect();
            assert_ne!(raw, zeroed, "{}", p.name);
        }
    }
}

#[test]
fn fd_array_forms_are_hashed_as_submitted() {
    // The kernel does not zero BPF_PSEUDO_MAP_IDX / _IDX_VALUE: the index is stable.
    let progs = captured();
    for name in ["idx", "idx_value"] {
        let p = progs.iter().find(|p| p.name == name).expect(name);
        assert!(p
            .insns
            .iter()
            .any(|i| i.src_reg == BPF_PSEUDO_MAP_IDX || i.src_reg == BPF_PSEUDO_MAP_IDX_VALUE));
        assert_eq!(tag_input(&p.insns), p.insns, "{name}: nothing zeroed");
        let mut other = p.insns.clone();
        other[0].imm = 0;
        assert_ne!(
            prog_tag(&other),
            p.tag,
            "{name}: the index is part of the tag"
        );
    }
}

#[test]
fn second_slot_is_zeroed_only_with_the_shape_of_a_second_slot() {
    let first = Insn::new(0x18, 1, BPF_PSEUDO_MAP_FD, 0, 7);
    let good = Insn::new(0, 0, 0, 0, 9);
    let odd = Insn::new(0, 0, 0, 1, 9);
    assert_eq!(tag_input(&[first, good])[1].imm, 0);
    assert_eq!(tag_input(&[first, odd])[1].imm, 9);
    // A zero-shaped slot that does not follow a map load keeps its immediate.
    assert_eq!(tag_input(&[good])[0].imm, 9);
    // Plain 64-bit constants keep both halves.
    let c = [
        Insn::new(0x18, 0, 0, 0, 0x55667788),
        Insn::new(0, 0, 0, 0, 0x11223344),
    ];
    assert_eq!(tag_input(&c), c.to_vec());
}

/// Kernel release as (major, minor), from /proc.
fn kernel_version() -> Option<(u32, u32)> {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut it = rel.trim().split(['.', '-']);
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

fn live_kernel_reason() -> Option<String> {
    if let Some(why) = bpfvm_testsupport::bpftool_unavailable() {
        return Some(why);
    }
    match kernel_version() {
        Some(v) if v >= (6, 18) => None,
        Some((a, b)) => Some(format!("kernel {a}.{b} predates SHA-256 tags (6.18)")),
        None => Some("kernel version unknown".into()),
    }
}

fn json_string_field(json: &str, field: &str) -> Option<String> {
    let key = format!("\"{field}\":\"");
    let start = json.find(&key)? + key.len();
    let end = json[start..].find('"')? + start;
    Some(json[start..end].to_string())
}

#[test]
fn host_kernel_still_reports_the_committed_tags() {
    if let Some(why) = live_kernel_reason() {
        eprintln!("skipping live tag check: {why}");
        return;
    }
    let objects: [(&str, &[u8]); 6] = [
        ("t_min.o", include_bytes!("data/tag/t_min.o")),
        ("t_map.o", include_bytes!("data/tag/t_map.o")),
        ("t_global.o", include_bytes!("data/tag/t_global.o")),
        ("t_call.o", include_bytes!("data/tag/t_call.o")),
        ("t_const64.o", include_bytes!("data/tag/t_const64.o")),
        ("t_multi.o", include_bytes!("data/tag/t_multi.o")),
    ];
    let progs = captured();
    let tmp = std::env::temp_dir().join(format!("bpfvm-tagtest-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    for (obj, bytes) in objects {
        let file = tmp.join(obj);
        std::fs::write(&file, bytes).expect("write object");
        let pin = PathBuf::from(format!(
            "/sys/fs/bpf/bpfvm_tagtest_{}_{}",
            std::process::id(),
            obj.trim_end_matches(".o")
        ));
        let load = Command::new("bpftool")
            .arg("prog")
            .arg("loadall")
            .arg(&file)
            .arg(&pin)
            .output()
            .expect("run bpftool");
        if !load.status.success() {
            let _ = std::fs::remove_dir_all(&pin);
            panic!(
                "bpftool prog loadall {obj} failed: {}",
                String::from_utf8_lossy(&load.stderr)
            );
        }
        for p in progs.iter().filter(|p| p.object == obj) {
            let show = Command::new("bpftool")
                .args(["prog", "show", "pinned"])
                .arg(pin.join(&p.name))
                .arg("-j")
                .output()
                .expect("run bpftool");
            let text = String::from_utf8_lossy(&show.stdout).into_owned();
            let tag = json_string_field(&text, "tag");
            let _ = std::fs::remove_file(pin.join(&p.name));
            assert_eq!(
                tag.as_deref(),
                Some(tag_hex(&p.tag).as_str()),
                "{obj}: {}",
                p.name
            );
        }
        let _ = std::fs::remove_dir_all(&pin);
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
