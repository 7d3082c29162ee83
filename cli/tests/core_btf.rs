//! `btf PATH` on `prog load`, `prog loadall` and `verify`: the CO-RE target
//! BTF given as a file. core_reloc.o is relocated against core_target.o, a
//! stand-in kernel whose layouts differ from the object's own (offsets worked
//! out in tests/fixtures/src/core_target.bpf.c), given as an ELF with .BTF
//! and as a raw BTF file; the relocated values survive a daemon restart and
//! hold in the client's own copy (`prog run ... coverage`); a
//! missing or garbage file is an error naming the file.

mod common;

use common::{fixtures, Env};

const PKT: &str = "../golden/packets/ipv4_udp.bin";

/// field_offset against core_target: pid at 16, se.vlag at 80, comm[3]
/// (not relocatable) 3, task_struct___v2.pid at 16.
const FIELD_OFFSET: u32 = 16 ^ (80 << 4) ^ (3 << 16) ^ (16 << 20);
/// field_array: &t->comm[3] with comm at 24.
const FIELD_ARRAY: u32 = 27;

fn retval(env: &Env, pinned: &str) -> u32 {
    let r = env
        .run(&["-j", "prog", "run", "pinned", pinned, "data_in", PKT])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    v["retval"].as_u64().expect("retval") as u32
}

/// The raw `.BTF` of core_target.o, written to a file (as
/// `/sys/kernel/btf/vmlinux` is raw BTF).
fn raw_target(env: &Env) -> String {
    let elf = std::fs::read(fixtures().join("obj/core_target.o")).expect("read");
    let raw = bpfvm::Object::section_data("core_target.o", &elf, ".BTF")
        .expect("ELF")
        .expect(".BTF");
    let p = env.state().join("target.btf");
    std::fs::write(&p, raw).expect("write");
    p.display().to_string()
}

#[test]
fn loadall_relocates_against_the_given_btf() {
    let env = Env::new();
    let raw = raw_target(&env);
    for (dir, btf) in [
        ("/sys/fs/bpf/elf", "obj/core_target.o"),
        ("/sys/fs/bpf/raw", &raw),
    ] {
        env.run(&["prog", "loadall", "obj/core_reloc.o", dir, "btf", btf])
            .ok();
        assert_eq!(
            retval(&env, &format!("{dir}/field_offset")),
            FIELD_OFFSET,
            "{btf}"
        );
        assert_eq!(
            retval(&env, &format!("{dir}/field_array")),
            FIELD_ARRAY,
            "{btf}"
        );
    }
    // `prog load` takes it too (the first program, field_offset).
    env.run(&[
        "prog",
        "load",
        "obj/core_reloc.o",
        "/sys/fs/bpf/one",
        "btf",
        "obj/core_target.o",
    ])
    .ok();
    assert_eq!(retval(&env, "/sys/fs/bpf/one"), FIELD_OFFSET);
    // Without `btf` the target is the host's vmlinux (or, without one, the
    // object's own types): other offsets, so the option was what counted.
    env.run(&["prog", "loadall", "obj/core_reloc.o", "/sys/fs/bpf/host"])
        .ok();
    assert_ne!(retval(&env, "/sys/fs/bpf/host/field_offset"), FIELD_OFFSET);
    // A run in the client's own process (coverage) loads its copy of the
    // object against the same BTF.
    let lcov = env.state().join("cov.lcov").display().to_string();
    let cov = env
        .run(&[
            "prog",
            "run",
            "pinned",
            "/sys/fs/bpf/raw/field_array",
            "data_in",
            PKT,
            "coverage",
            &lcov,
        ])
        .ok();
    assert!(
        cov.stdout
            .starts_with(&format!("Return value: {FIELD_ARRAY},")),
        "{}",
        cov.stdout
    );
    // A restarted daemon loads the pinned programs against the same BTF.
    env.stop();
    assert_eq!(retval(&env, "/sys/fs/bpf/raw/field_offset"), FIELD_OFFSET);
    assert_eq!(retval(&env, "/sys/fs/bpf/elf/field_array"), FIELD_ARRAY);
}

#[test]
fn verify_takes_the_given_btf() {
    let env = Env::new();
    for prog in ["field_offset", "bitfield", "enum_value", "guarded"] {
        let o = env
            .run(&[
                "verify",
                "obj/core_reloc.o",
                "prog",
                prog,
                "btf",
                "obj/core_target.o",
            ])
            .ok();
        assert!(o.stdout.contains(": accepted"), "{prog}: {}", o.stdout);
    }
}

#[test]
fn a_missing_or_garbage_btf_file_is_named() {
    let env = Env::new();
    let garbage = env.state().join("garbage.btf");
    std::fs::write(&garbage, b"this is not BTF at all").expect("write");
    let garbage = garbage.display().to_string();
    let cases = [
        ("obj/no-such-file.btf", "no-such-file.btf"),
        (garbage.as_str(), "garbage.btf: not BTF"),
        // An ELF without .BTF.
        ("obj/gotol.o", "obj/gotol.o: no .BTF section"),
    ];
    for (path, want) in cases {
        for args in [
            vec![
                "prog",
                "load",
                "obj/core_reloc.o",
                "/sys/fs/bpf/x",
                "btf",
                path,
            ],
            vec![
                "prog",
                "loadall",
                "obj/core_reloc.o",
                "/sys/fs/bpf/y",
                "btf",
                path,
            ],
            vec!["verify", "obj/core_reloc.o", "btf", path],
        ] {
            let o = env.run(&args);
            assert_ne!(o.code, 0, "{args:?}");
            assert!(
                o.stderr.starts_with("Error: ") && o.stderr.contains(want),
                "{args:?}: {}",
                o.stderr
            );
        }
    }
    let o = env.run(&["prog", "load", "obj/core_reloc.o", "/sys/fs/bpf/z", "btf"]);
    assert!(
        o.stderr.contains("expected a value after 'btf'"),
        "{}",
        o.stderr
    );
}

/// The host's BTF copied to a file relocates as the default target (the
/// host's /sys/kernel/btf/vmlinux) does.
#[test]
fn a_copy_of_the_host_vmlinux_relocates_as_the_host() {
    let vmlinux = std::path::Path::new("/sys/kernel/btf/vmlinux");
    if !vmlinux.exists() {
        eprintln!("skip: no /sys/kernel/btf/vmlinux");
        return;
    }
    let env = Env::new();
    let copy = env.state().join("vmlinux.btf");
    std::fs::copy(vmlinux, &copy).expect("copy vmlinux");
    let copy = copy.display().to_string();
    env.run(&[
        "prog",
        "loadall",
        "obj/core_reloc.o",
        "/sys/fs/bpf/file",
        "btf",
        &copy,
    ])
    .ok();
    env.run(&["prog", "loadall", "obj/core_reloc.o", "/sys/fs/bpf/host"])
        .ok();
    for p in [
        "field_offset",
        "field_info",
        "bitfield",
        "type_info",
        "enum_value",
    ] {
        assert_eq!(
            retval(&env, &format!("/sys/fs/bpf/file/{p}")),
            retval(&env, &format!("/sys/fs/bpf/host/{p}")),
            "{p}"
        );
    }
}
