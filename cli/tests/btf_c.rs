//! `btf dump file OBJ format c` against bpftool's C output, byte for byte.
//!
//! Goldens of our own output (re-bless with BPFVM_BLESS=1): the whole header
//! for each fixture object (cli/tests/golden/btf_c/NAME.h), and a length and
//! FNV-1a hash per selftests object (btf_c_selftests.txt), so machines without
//! bpftool still check all of them. Where bpftool runs, every object (and the
//! host's /sys/kernel/btf/vmlinux) is compared with it live.

mod common;

use common::{golden, root, Env};
use std::path::{Path, PathBuf};

fn objects(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "o"))
        .collect();
    v.sort();
    v
}

fn has_btf(p: &Path) -> bool {
    let bytes = std::fs::read(p).expect("read object");
    bpfvm::Object::section_data(&p.display().to_string(), &bytes, ".BTF")
        .expect("ELF")
        .is_some()
}

fn ours(env: &Env, p: &Path) -> String {
    let o = env.run(&[
        "btf",
        "dump",
        "file",
        &p.display().to_string(),
        "format",
        "c",
    ]);
    assert_eq!(o.code, 0, "{}: {}", p.display(), o.stderr);
    o.stdout
}

/// bpftool's output, or `None` when bpftool cannot run here.
fn bpftool(p: &Path) -> Option<String> {
    let o = std::process::Command::new("bpftool")
        .args(["btf", "dump", "file"])
        .arg(p)
        .args(["format", "c"])
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn bpftool_present() -> bool {
    std::process::Command::new("bpftool")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn fixtures_as_bpftool_prints_them() {
    let env = Env::new();
    let live = bpftool_present();
    let (mut same, mut total) = (0, 0);
    for p in objects("tests/fixtures/obj").iter().filter(|p| has_btf(p)) {
        let text = ours(&env, p);
        golden(&format!("btf_c/{}.h", name(p)), &text);
        if let Some(want) = live.then(|| bpftool(p)).flatten() {
            total += 1;
            assert_eq!(text, want, "{}: bpfvm vs bpftool", p.display());
            same += 1;
        }
    }
    if live {
        eprintln!("fixtures: {same} of {total} byte for byte as bpftool");
    } else {
        eprintln!("skip: bpftool not installed; compared with the goldens only");
    }
}

#[test]
fn selftests_objects_as_bpftool_prints_them() {
    let env = Env::new();
    let live = bpftool_present();
    let mut sums = String::new();
    let (mut same, mut total) = (0, 0);
    let mut differ = Vec::new();
    for p in objects("tests/selftests/obj").iter().filter(|p| has_btf(p)) {
        let text = ours(&env, p);
        sums.push_str(&format!(
            "{} {} {:016x}\n",
            name(p),
            text.len(),
            fnv1a(&text)
        ));
        if let Some(want) = live.then(|| bpftool(p)).flatten() {
            total += 1;
            if text == want {
                same += 1;
            } else {
                differ.push(name(p));
            }
        }
    }
    golden("btf_c_selftests.txt", &sums);
    if live {
        eprintln!("selftests: {same} of {total} byte for byte as bpftool");
        assert!(differ.is_empty(), "differ from bpftool: {differ:?}");
    } else {
        eprintln!("skip: bpftool not installed; compared with the goldens only");
    }
}

/// The host kernel's BTF: tens of thousands of types, bitfields, packed
/// structs, anonymous unions, function pointers, name clashes.
#[test]
fn host_vmlinux_as_bpftool_prints_it() {
    let vmlinux = Path::new("/sys/kernel/btf/vmlinux");
    if !vmlinux.exists() || !bpftool_present() {
        eprintln!("skip: needs bpftool and /sys/kernel/btf/vmlinux");
        return;
    }
    let env = Env::new();
    let text = ours(&env, vmlinux);
    let want = bpftool(vmlinux).expect("bpftool dumps vmlinux");
    if text != want {
        let line = text
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .map_or(0, |i| i + 1);
        panic!("vmlinux differs from bpftool from line {line}");
    }
}

#[test]
fn format_words_as_bpftool() {
    let env = Env::new();
    let hello = "obj/hello.o";
    let cases: &[(&[&str], &str)] = &[
        (
            &["btf", "dump", "file", hello, "format", "x"],
            "Error: unrecognized format specifier: 'x', possible values: raw, c\n",
        ),
        (
            &["btf", "dump", "file", hello, "format"],
            "Error: expecting value for 'format' option\n",
        ),
        (
            &["btf", "dump", "file", hello, "foo"],
            "Error: unrecognized option: 'foo'\n",
        ),
    ];
    for (args, err) in cases {
        let o = env.run(args);
        assert_ne!(o.code, 0, "{args:?}");
        assert_eq!(o.stderr, *err, "{args:?}");
    }
    let raw = env
        .run(&["btf", "dump", "file", hello, "format", "raw"])
        .ok();
    let plain = env.run(&["btf", "dump", "file", hello]).ok();
    assert_eq!(raw.stdout, plain.stdout);
    let j = env.run(&["-j", "btf", "dump", "file", hello, "format", "c"]);
    assert_eq!(
        j.stdout,
        "{\"error\":\"JSON output for C-syntax dump is not supported\"}\n"
    );
    let missing = env.run(&["btf", "dump", "file", "obj/nonexistent.o", "format", "c"]);
    assert!(
        missing.stderr.contains("obj/nonexistent.o"),
        "{}",
        missing.stderr
    );
}

/// `btf dump id N format c` of a BTF the daemon holds: the object's types.
#[test]
fn by_id_from_the_daemon() {
    let env = Env::new();
    env.run(&["prog", "load", "obj/hello.o", "/sys/fs/bpf/hello"])
        .ok();
    let ids = env.run(&["-j", "btf", "list"]).ok().stdout;
    let v: serde_json::Value = serde_json::from_str(&ids).expect("json");
    let id = v[0]["id"].as_u64().expect("a btf id").to_string();
    let by_id = env.run(&["btf", "dump", "id", &id, "format", "c"]).ok();
    assert!(by_id.stdout.starts_with("#ifndef __VMLINUX_H__\n"));
    assert!(
        by_id.stdout.contains("struct xdp_md {\n"),
        "{}",
        by_id.stdout
    );
    assert!(by_id.stdout.ends_with("#endif /* __VMLINUX_H__ */\n"));
}

/// `btf dump map MAP [key | value | kv | all] [format c]`: only the map's key
/// and value types unless `all`, raw, JSON and C, beside bpftool on the
/// kernel's copy of the same maps (maps.o); golden of ours for CI machines.
#[test]
fn map_types_as_bpftool_selects_them() {
    let env = Env::new();
    env.run(&[
        "prog",
        "loadall",
        "obj/maps.o",
        "/sys/fs/bpf/m",
        "pinmaps",
        "/sys/fs/bpf/mm",
    ])
    .ok();
    let maps = [
        "m_hash",
        "m_array",
        "m_lpm_trie",
        "m_percpu_hash",
        "maps_bss",
    ];
    let mut ours_all = String::new();
    for m in maps {
        for (sel, fmt) in [("kv", "raw"), ("key", "c"), ("value", "c")] {
            let o = env
                .run(&[
                    "btf",
                    "dump",
                    "map",
                    "pinned",
                    &format!("/sys/fs/bpf/mm/{m}"),
                    sel,
                    "format",
                    fmt,
                ])
                .ok();
            ours_all.push_str(&format!("== {m} {sel} {fmt}\n{}", o.stdout));
        }
    }
    golden("btf_map_dump.txt", &ours_all);

    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root || !bpftool_present() || !Path::new("/sys/fs/bpf").is_dir() {
        eprintln!("skip: bpftool beside bpfvm needs root, bpftool and /sys/fs/bpf");
        return;
    }
    let dir = format!("/sys/fs/bpf/bpfvm-btfmap-{}", std::process::id());
    let loaded = std::process::Command::new("bpftool")
        .args(["prog", "loadall", "obj/maps.o", &dir, "pinmaps"])
        .arg(format!("{dir}/maps"))
        .current_dir(common::fixtures())
        .output()
        .expect("bpftool");
    if !loaded.status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!("skip: the kernel does not load maps.o");
        return;
    }
    let names: Vec<String> = std::fs::read_dir(format!("{dir}/maps"))
        .expect("pinned maps")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let (mut same, mut skipped) = (0, 0);
    let mut differ = Vec::new();
    for m in &names {
        for sel in [None, Some("key"), Some("value"), Some("kv"), Some("all")] {
            for fmt in [None, Some("c"), Some("-j"), Some("-p")] {
                let mut args: Vec<String> = Vec::new();
                if let Some(j @ ("-j" | "-p")) = fmt {
                    args.push(j.into());
                }
                args.extend(["btf".into(), "dump".into(), "map".into(), "pinned".into()]);
                let mut tail: Vec<String> = sel.map(String::from).into_iter().collect();
                if fmt == Some("c") {
                    tail.extend(["format".into(), "c".into()]);
                }
                let mut k_args = args.clone();
                k_args.push(format!("{dir}/maps/{m}"));
                k_args.extend(tail.iter().cloned());
                let k = std::process::Command::new("bpftool")
                    .args(&k_args)
                    .output()
                    .expect("bpftool");
                if !k.status.success() {
                    // The kernel kept no BTF for this map (libbpf retried
                    // without it); bpfvm keeps it.
                    skipped += 1;
                    continue;
                }
                let mut o_args = args.clone();
                o_args.push(format!("/sys/fs/bpf/mm/{m}"));
                o_args.extend(tail);
                let o = env.run(&o_args.iter().map(String::as_str).collect::<Vec<_>>());
                if o.stdout == String::from_utf8_lossy(&k.stdout) {
                    same += 1;
                } else {
                    differ.push(o_args.join(" "));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "btf dump map: {same} of {} as bpftool ({skipped} where the kernel kept no BTF)",
        same + differ.len()
    );
    assert!(differ.is_empty(), "differ from bpftool: {differ:#?}");
}

/// A crafted object (cli/tests/data/btf_c_types.bpf.c): bitfields with gaps,
/// packed and over-aligned structs, nested anonymous types, forward
/// declarations, function pointers, qualifiers, 64-bit and signed enums.
#[test]
fn crafted_types_as_bpftool_prints_them() {
    let env = Env::new();
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/btf_c_types.o");
    let text = ours(&env, &p);
    golden("btf_c/btf_c_types.h", &text);
    match bpftool_present().then(|| bpftool(&p)).flatten() {
        Some(want) => assert_eq!(text, want, "bpfvm vs bpftool"),
        None => eprintln!("skip: bpftool not installed; compared with the golden only"),
    }
}
