//! CO-RE relocation at load time (LoadOpts::target_btf), on the fixtures
//! tests/fixtures/obj/core_reloc.o (every `enum bpf_core_relo_kind`) and
//! core_poison.o (an unresolvable relocation on a reachable path).
//!
//! * A table `{name, program, input, expected}` against a stand-in kernel:
//!   the BTF of tests/fixtures/obj/core_target.o, whose layouts are spelled out
//!   in its source, run on the interpreter and the JIT.
//! * Against the host kernel (root, bpftool, /sys/kernel/btf/vmlinux): the
//!   same object loaded by bpfvm (default target: the host's vmlinux) and by
//!   `bpftool prog loadall` (libbpf relocating against the same BTF) must give
//!   equal tags, equal translated instructions and equal `prog run` results;
//!   core_poison.o is refused by both. Skipped with a message when not root.

use bpfvm::xlated::{dump_xlated, XlatedOpts};
use bpfvm::{BpfError, LoadOpts, Object, Runtime, TargetBtf};
use bpfvm_testsupport::mask_xlated;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/obj")
        .join(name)
}

fn open(name: &str) -> Object {
    Object::open(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A 64-byte packet (XDP test runs need at least an Ethernet header).
fn packet() -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[12] = 0x08;
    p
}

struct Case {
    name: &'static str,
    /// The value against core_target.o's layouts (worked out in the comments).
    expected: u32,
    /// Whether the kernel's translated program is the submitted one: it is
    /// not where the verifier removes dead code (a poisoned instruction behind
    /// a failed check) or rewrites context loads (xdp_md into xdp_buff),
    /// which bpfvm's xlated listing does not show.
    xlated_same: bool,
}

const CASES: &[Case] = &[
    // pid at 16, se.vlag at 40 + 40 (through the anonymous union), the
    // uncheckable offsetof(comm[3]) = 3 << 16, task_struct___v2.pid at 16
    Case {
        name: "field_offset",
        expected: 16 ^ (80 << 4) ^ (3 << 16) ^ (16 << 20),
        xlated_same: true,
    },
    // &t->comm[3]: comm at 24
    Case {
        name: "field_array",
        expected: 27,
        xlated_same: true,
    },
    // size of se.vruntime 8, pid exists, no_such_field does not, flags
    // unsigned, prio signed
    Case {
        name: "field_info",
        expected: 8 | 1 << 8 | 1 << 11,
        xlated_same: true,
    },
    // sched_reset_on_fork: bit 772 -> 4-byte load at 96, lshift 64-5,
    // rshift 63; in_execve: bit 768, lshift 63
    Case {
        name: "bitfield",
        expected: 96 ^ (4 << 12) ^ (59 << 16) ^ (63 << 24) ^ (63 << 8),
        xlated_same: true,
    },
    // task_struct exists, no_such_type does not, list_head matches, its
    // ___bad flavour does not, list_head is 16 bytes, pid_t 4
    Case {
        name: "type_info",
        expected: 1 | 1 << 2 | 16 << 4 | 4 << 12,
        xlated_same: true,
    },
    // target id of task_struct 1, local id 6, absent type 0
    Case {
        name: "type_id",
        expected: 1 ^ (6 << 20),
        xlated_same: true,
    },
    // ktime_get_ns exists (5), no_such_helper does not, map_lookup_elem 1;
    // the poisoned instruction is behind the failed existence check
    Case {
        name: "enum_value",
        expected: 1 | 5 << 4 | 1 << 12,
        xlated_same: false,
    },
    // ingress_ifindex at 12, rx_queue_index at 16, its 8-byte load narrowed
    // to the target's 4 bytes (queue 0), + 7
    Case {
        name: "ctx_load",
        expected: 7,
        xlated_same: false,
    },
    // the missing field's existence check is 0: its poisoned use is dead
    Case {
        name: "guarded",
        expected: 7,
        xlated_same: false,
    },
];

fn stand_in() -> LoadOpts {
    let target = open("core_target.o").btf.expect("core_target.o has BTF");
    LoadOpts {
        target_btf: Some(TargetBtf::Btf(Arc::new(target))),
        ..Default::default()
    }
}

#[test]
fn relocated_against_a_stand_in_kernel() {
    let obj = open("core_reloc.o");
    let opts = stand_in();
    let mut failures = Vec::new();
    for jit in [false, true] {
        let rt = Runtime::with_cpus(1);
        rt.set_jit(jit);
        let l = rt
            .load_object_with(&obj, None, &opts)
            .unwrap_or_else(|e| panic!("load: {e}: {:?}", e.verifier_log()));
        for c in CASES {
            let p = l
                .prog(c.name)
                .unwrap_or_else(|| panic!("{} not loaded", c.name));
            let engine = if jit { "jit" } else { "interpreter" };
            match rt.run_packet(p, &packet()) {
                Ok(r) if r.retval == c.expected => {}
                Ok(r) => failures.push(format!(
                    "{} ({engine}): {:#x}, expected {:#x}",
                    c.name, r.retval, c.expected
                )),
                Err(e) => failures.push(format!("{} ({engine}): {e}", c.name)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn own_btf_keeps_the_compiled_values() {
    let obj = open("core_reloc.o");
    let rt = Runtime::with_cpus(1);
    // (ctx_load's compiled offsets read the context at 8 with 8 bytes: refused)
    let opts = LoadOpts {
        target_btf: Some(TargetBtf::Object),
        programs: Some(vec!["field_offset".into()]),
        ..Default::default()
    };
    let l = rt
        .load_object_with(&obj, None, &opts)
        .unwrap_or_else(|e| panic!("load: {e}: {:?}", e.verifier_log()));
    // clang's own offsets: pid at 16, se.vlag at 40 (se at 32 + 8), 3, 0.
    let p = l.prog("field_offset").expect("field_offset");
    let r = rt.run_packet(p, &packet()).expect("run");
    assert_eq!(r.retval, 16 ^ (40 << 4) ^ (3 << 16));
}

#[test]
fn unresolved_relocation_on_a_reachable_path_is_refused() {
    let obj = open("core_poison.o");
    let rt = Runtime::with_cpus(1);
    let err = rt
        .load_object_with(&obj, None, &stand_in())
        .expect_err("the poisoned call is reachable");
    let BpfError::Verifier { source, .. } = &err else {
        panic!("expected a verifier refusal, got {err}");
    };
    let reason = source.error.to_string();
    assert!(
        reason.contains("insn 0: failed to resolve CO-RE relocation <byte_off>")
            && reason.contains("struct task_struct___v3.no_such_field"),
        "{reason}"
    );
    assert!(
        source.log.contains("0: <invalid CO-RE relocation>"),
        "{}",
        source.log
    );
    assert_eq!(err.errno(), libc_einval());
}

fn libc_einval() -> i32 {
    22
}

#[test]
fn a_bad_target_file_is_an_error() {
    let obj = open("core_reloc.o");
    let rt = Runtime::with_cpus(1);
    let opts = LoadOpts {
        target_btf: Some(TargetBtf::File(fixture("core_reloc.bpf.c.missing"))),
        ..Default::default()
    };
    let err = rt.load_object_with(&obj, None, &opts).expect_err("no file");
    assert!(err.to_string().contains("target btf"), "{err}");
}

// ---- the host kernel ------------------------------------------------------

fn live_reason() -> Option<String> {
    if let Some(why) = bpfvm_testsupport::bpftool_unavailable() {
        return Some(why);
    }
    if std::fs::read(bpfvm::HOST_VMLINUX).is_err() {
        return Some(format!("{} not readable", bpfvm::HOST_VMLINUX));
    }
    None
}

fn bpftool(args: &[&str]) -> Result<String, String> {
    let out = Command::new("bpftool")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "bpftool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn json_field(json: &str, field: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    match &v[field] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A pin directory removed on drop, whatever happens.
struct Pins(PathBuf);

impl Drop for Pins {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(&self.0) {
            for e in rd.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn host_kernel_agrees() {
    if let Some(why) = live_reason() {
        eprintln!("skipping the host kernel comparison: {why}");
        return;
    }
    let obj = open("core_reloc.o");
    let rt = Runtime::with_cpus(1);
    let ours = rt
        .load_object_with(&obj, None, &LoadOpts::default())
        .unwrap_or_else(|e| panic!("bpfvm load: {e}: {:?}", e.verifier_log()));
    let pins = Pins(PathBuf::from(format!(
        "/sys/fs/bpf/bpfvm_core_{}",
        std::process::id()
    )));
    let file = fixture("core_reloc.o");
    bpftool(&[
        "prog",
        "loadall",
        file.to_str().expect("utf-8 path"),
        pins.0.to_str().expect("utf-8 path"),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let data = std::env::temp_dir().join(format!("bpfvm_core_{}.pkt", std::process::id()));
    std::fs::write(&data, packet()).expect("packet file");
    let mut failures = Vec::new();
    let mut tags_equal = 0;
    let mut xlated_equal = 0;
    for c in CASES {
        let pin = pins.0.join(c.name);
        let pin = pin.to_str().expect("utf-8 path");
        let show = bpftool(&["prog", "show", "pinned", pin, "-j"]).expect("prog show");
        let ktag = json_field(&show, "tag").unwrap_or_default();
        let p = ours.prog(c.name).expect("loaded by bpfvm");
        let tag = bpfvm::tag::tag_hex(&p.obj().tag);
        if tag == ktag {
            tags_equal += 1;
        } else {
            failures.push(format!("{}: tag {tag}, kernel {ktag}", c.name));
        }
        let kx = bpftool(&["prog", "dump", "xlated", "pinned", pin]).expect("dump xlated");
        let bx = dump_xlated(p.obj(), &XlatedOpts::default());
        // Map ids and helper call targets (the kernel prints addresses)
        // differ by design.
        if mask_xlated(&kx) == mask_xlated(&bx) {
            xlated_equal += 1;
        } else if c.xlated_same {
            failures.push(format!(
                "{}: xlated differs\n--- kernel\n{kx}\n--- bpfvm\n{bx}",
                c.name
            ));
        }
        let run = bpftool(&[
            "prog",
            "run",
            "pinned",
            pin,
            "data_in",
            data.to_str().expect("utf-8 path"),
        ])
        .expect("prog run");
        let kret = run
            .lines()
            .find_map(|l| l.trim().strip_prefix("Return value: "))
            .and_then(|v| v.split(',').next()?.trim().parse::<u32>().ok());
        for jit in [false, true] {
            rt.set_jit(jit);
            let r = rt.run_packet(p, &packet()).map(|r| r.retval).ok();
            if r != kret {
                failures.push(format!(
                    "{} ({}): returns {r:?}, kernel {kret:?}",
                    c.name,
                    if jit { "jit" } else { "interpreter" }
                ));
            }
        }
    }
    let _ = std::fs::remove_file(&data);
    eprintln!(
        "tags equal to the kernel's: {tags_equal}/{n}; xlated equal: {xlated_equal}/{n}",
        n = CASES.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The unresolvable relocation on a reachable path: both refuse.
    let poison = fixture("core_poison.o");
    let ppins = Pins(PathBuf::from(format!(
        "/sys/fs/bpf/bpfvm_core_poison_{}",
        std::process::id()
    )));
    let k = bpftool(&[
        "prog",
        "loadall",
        poison.to_str().expect("utf-8 path"),
        ppins.0.to_str().expect("utf-8 path"),
    ]);
    let kerr = k.expect_err("the kernel refuses core_poison.o");
    assert!(
        kerr.contains("failed to resolve CO-RE relocation"),
        "{kerr}"
    );
    let ours = rt.load_object_with(&open("core_poison.o"), None, &LoadOpts::default());
    let e = ours.expect_err("bpfvm refuses core_poison.o");
    assert!(e.to_string().contains("unguarded") || matches!(e, BpfError::Verifier { .. }));
}
