//! The commands against bpftool's formats: golden files of our own output (masked
//! for times; re-bless with BPFVM_BLESS=1) and the real bpftool/kernel outputs in
//! tests/golden (compared after masking map ids and helper call numbers).

mod common;

use common::{golden, kernel_golden, mask_times, Env};
use serde_json::Value;

// Map ids and helper call numbers differ from the kernel's; the rest must not.
use bpfvm_testsupport::mask_xlated;

#[test]
fn prog_load_list_show_by_every_name() {
    let env = Env::new();
    env.run(&["prog", "load", "obj/hello.o", "/sys/fs/bpf/hello"])
        .ok();
    let list = env.run(&["prog", "list"]).ok().stdout;
    golden("prog_list.txt", &mask_times(&list));
    let by_id = env.run(&["prog", "show", "id", "1"]).ok().stdout;
    assert_eq!(by_id, list);
    for t in [
        &["name", "hello"][..],
        &["tag", "eb25a4958caccc29"],
        &["pinned", "/sys/fs/bpf/hello"],
    ] {
        let mut a = vec!["prog", "show"];
        a.extend_from_slice(t);
        assert_eq!(env.run(&a).ok().stdout, by_id, "prog show {t:?}");
    }
    // The pin's file under the state directory names it too.
    let file = env.state().join("fs/sys/fs/bpf/hello");
    assert!(file.is_file());
    let f = file.to_string_lossy().into_owned();
    assert_eq!(env.run(&["prog", "show", "pinned", &f]).ok().stdout, by_id);
    // Prefixes, as bpftool matches them.
    assert_eq!(env.run(&["p", "l"]).ok().stdout, list);

    let pretty = env
        .run(&["prog", "show", "id", "1", "--pretty"])
        .ok()
        .stdout;
    golden("prog_show.pretty.json", &mask_times(&pretty));
    let compact = env.run(&["-j", "prog", "show", "id", "1"]).ok().stdout;
    golden("prog_show.json", &mask_times(&compact));
    let ours: Value = serde_json::from_str(&compact).unwrap();
    let kernel = &kernel_golden("hello")["programs"]["hello"]["show"];
    for k in [
        "type",
        "name",
        "tag",
        "gpl_compatible",
        "uid",
        "bytes_xlated",
        "bytes_memlock",
    ] {
        assert_eq!(ours[k], kernel[k], "field {k}");
    }
    assert_eq!(ours["map_ids"].as_array().unwrap().len(), 2);
    assert_eq!(ours["jited"], Value::Bool(true));
    // Same fields in the same order, apart from the JIT's.
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "bytes_jited")
            .cloned()
            .collect()
    };
    assert_eq!(keys(&ours), keys(kernel));
    let list_json: Value =
        serde_json::from_str(&env.run(&["-j", "prog", "list"]).ok().stdout).unwrap();
    assert_eq!(list_json.as_array().unwrap().len(), 1);
}

#[test]
fn xlated_matches_the_kernel() {
    let env = Env::new();
    for obj in ["hello", "hello-func"] {
        let pin = format!("/sys/fs/bpf/{}", obj.replace('-', "_"));
        env.run(&["prog", "loadall", &format!("obj/{obj}.o"), &pin])
            .ok();
        let k = kernel_golden(obj);
        for (name, p) in k["programs"].as_object().unwrap() {
            let target = format!("{pin}/{name}");
            for (extra, key) in [
                (None, "xlated"),
                (Some("linum"), "xlated_linum"),
                (Some("opcodes"), "xlated_opcodes"),
            ] {
                let mut args = vec!["prog", "dump", "xlated", "pinned", &target];
                args.extend(extra);
                let ours = env.run(&args).ok().stdout;
                let theirs = p[key].as_str().unwrap();
                if key == "xlated_opcodes" {
                    // Instruction bytes of map loads and helper calls carry the ids.
                    let strip = |s: &str| -> String {
                        mask_xlated(s)
                            .lines()
                            .filter(|l| !l.starts_with("       "))
                            .map(|l| format!("{l}\n"))
                            .collect()
                    };
                    assert_eq!(strip(&ours), strip(theirs), "{obj}/{name} {key}");
                    assert_eq!(
                        ours.lines().count(),
                        theirs.lines().count(),
                        "{obj}/{name} {key}"
                    );
                } else {
                    assert_eq!(
                        mask_xlated(&ours),
                        mask_xlated(theirs),
                        "{obj}/{name} {key}"
                    );
                }
            }
        }
    }
    let dot = env
        .run(&[
            "prog",
            "dump",
            "xlated",
            "pinned",
            "/sys/fs/bpf/hello_func/hello",
            "visual",
        ])
        .ok()
        .stdout;
    golden("hello_func.dot", &dot);
    let json = env
        .run(&["-j", "prog", "dump", "xlated", "name", "hello", "linum"])
        .stdout;
    // Two programs are named hello: bpftool-style refusal names the ambiguity.
    assert!(json.contains("error"), "{json}");
    let one = env
        .run(&[
            "-j",
            "prog",
            "dump",
            "xlated",
            "pinned",
            "/sys/fs/bpf/hello/hello",
        ])
        .ok()
        .stdout;
    let v: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(v[0]["proto"], "int hello(struct xdp_md * ctx)");
    // The native code, with the source lines above the instructions they produced.
    let jited = env
        .run(&[
            "prog",
            "dump",
            "jited",
            "pinned",
            "/sys/fs/bpf/hello/hello",
            "opcodes",
        ])
        .ok()
        .stdout;
    assert!(
        jited.starts_with("int hello(struct xdp_md * ctx):\nbpf_prog_"),
        "{jited}"
    );
    assert!(
        jited.contains("; bpf_printk(\"Hello World %d\", counter);\n"),
        "{jited}"
    );
    assert!(
        jited.contains("\tret\n") || jited.contains(":\tret"),
        "{jited}"
    );
    let arm = env
        .run(&[
            "prog",
            "dump",
            "jited",
            "pinned",
            "/sys/fs/bpf/hello/hello",
            "arch",
            "aarch64",
        ])
        .ok()
        .stdout;
    assert!(
        arm.contains("; counter++;\n") && arm.contains("\tret"),
        "{arm}"
    );
}

#[test]
fn map_dump_with_btf_matches_bpftool() {
    let env = Env::new();
    env.run(&["prog", "load", "obj/hello.o", "/sys/fs/bpf/hello"])
        .ok();
    let plain = env.run(&["map", "dump", "name", "hello.bss"]).ok().stdout;
    golden("map_dump_bss.txt", &plain);
    let rodata = env
        .run(&["map", "dump", "name", "hello.rodata"])
        .ok()
        .stdout;
    assert!(
        rodata.contains("\"hello.____fmt\": \"Hello World %d\""),
        "{rodata}"
    );
    let k = kernel_golden("hello");
    for (name, pin) in [("hello.bss", "hello_bss"), ("hello.rodata", "hello_rodata")] {
        let ours: Value =
            serde_json::from_str(&env.run(&["-j", "map", "dump", "name", name]).ok().stdout)
                .unwrap();
        assert_eq!(ours, k["maps"][pin]["dump"], "{name}");
        let show: Value =
            serde_json::from_str(&env.run(&["-j", "map", "show", "name", name]).ok().stdout)
                .unwrap();
        for f in [
            "type",
            "name",
            "flags",
            "bytes_key",
            "bytes_value",
            "max_entries",
            "bytes_memlock",
            "frozen",
        ] {
            assert_eq!(show[f], k["maps"][pin]["show"][f], "{name} {f}");
        }
    }
    golden("map_list.txt", &env.run(&["map", "list"]).ok().stdout);
    golden(
        "map_dump_rodata.pretty.json",
        &env.run(&["-p", "map", "dump", "name", "hello.rodata"])
            .ok()
            .stdout,
    );
    // Counter after three runs.
    for _ in 0..3 {
        let r = env
            .run(&[
                "prog",
                "run",
                "name",
                "hello",
                "data_in",
                "../golden/packets/ipv4_udp.bin",
            ])
            .ok();
        assert!(
            r.stdout.starts_with("Return value: 2, duration: "),
            "{}",
            r.stdout
        );
    }
    let after = env
        .run(&[
            "map",
            "lookup",
            "name",
            "hello.bss",
            "key",
            "0",
            "0",
            "0",
            "0",
        ])
        .ok()
        .stdout;
    assert!(after.contains("\"counter\": 3"), "{after}");
    let trace = env
        .run(&["prog", "tracelog", "--max-lines", "3", "--timeout", "5"])
        .ok()
        .stdout;
    for i in 0..3 {
        assert!(
            trace.contains(&format!("bpf_trace_printk: Hello World {i}\n")),
            "{trace}"
        );
    }
}

#[test]
fn map_hex_form_and_key_parsing() {
    let env = Env::new();
    env.run(&[
        "map",
        "create",
        "/sys/fs/bpf/m",
        "type",
        "hash",
        "key",
        "4",
        "value",
        "4",
        "entries",
        "8",
        "name",
        "m",
    ])
    .ok();
    env.run(&[
        "map",
        "update",
        "pinned",
        "/sys/fs/bpf/m",
        "key",
        "1",
        "0",
        "0",
        "0",
        "value",
        "0x19",
        "1",
        "0",
        "0",
    ])
    .ok();
    env.run(&[
        "map", "update", "name", "m", "key", "hex", "02", "00", "00", "00", "value", "hex", "20",
        "00", "00", "00",
    ])
    .ok();
    let dump = env.run(&["map", "dump", "name", "m"]).ok().stdout;
    let mut lines: Vec<&str> = dump.lines().collect();
    assert_eq!(lines.pop(), Some("Found 2 elements"));
    lines.sort();
    assert_eq!(
        lines,
        [
            "key: 01 00 00 00  value: 19 01 00 00",
            "key: 02 00 00 00  value: 20 00 00 00"
        ]
    );
    let one = env
        .run(&["map", "lookup", "name", "m", "key", "1", "0", "0", "0"])
        .ok()
        .stdout;
    assert_eq!(one, "key: 01 00 00 00  value: 19 01 00 00\n");
    let j = env
        .run(&[
            "-j", "map", "lookup", "name", "m", "key", "1", "0", "0", "0",
        ])
        .ok()
        .stdout;
    assert_eq!(j, "{\"key\":[\"0x01\",\"0x00\",\"0x00\",\"0x00\"],\"value\":[\"0x19\",\"0x01\",\"0x00\",\"0x00\"]}\n");
    let nf = env.run(&["map", "lookup", "name", "m", "key", "9", "0", "0", "0"]);
    assert_eq!(
        (nf.code, nf.stdout.as_str()),
        (254, "key:\n09 00 00 00\n\nNot found\n")
    );
    let short = env.run(&[
        "map", "update", "name", "m", "key", "1", "0", "0", "0", "value", "1", "2",
    ]);
    assert_eq!(short.code, 255);
    assert_eq!(short.stderr, "Error: value expected 4 bytes got 2\n");
    let bad = env.run(&[
        "map", "update", "name", "m", "key", "1", "0", "0", "value", "1", "2", "3", "4",
    ]);
    assert_eq!(bad.stderr, "Error: error parsing byte: value\n");
    let first = env.run(&["map", "getnext", "name", "m"]).ok().stdout;
    assert!(first.starts_with("key: None\nnext key:\n0"), "{first}");
    env.run(&["map", "delete", "name", "m", "key", "1", "0", "0", "0"])
        .ok();
    let del = env.run(&["map", "delete", "name", "m", "key", "1", "0", "0", "0"]);
    assert_eq!(
        del.stderr,
        "Error: delete failed: No such file or directory\n"
    );
    env.run(&["map", "freeze", "name", "m"]).ok();
    let frozen = env.run(&[
        "map", "update", "name", "m", "key", "3", "0", "0", "0", "value", "1", "1", "1", "1",
    ]);
    assert_eq!(
        frozen.stderr,
        "Error: update failed: Operation not permitted\n"
    );
    let show = env.run(&["map", "show", "name", "m"]).ok().stdout;
    assert!(show.ends_with("\n\tfrozen\n"), "{show}");
    assert_eq!(
        env.run(&["-j", "map", "delete", "name", "m", "key", "2", "0", "0", "0"])
            .code,
        255
    );
    assert_eq!(env.run(&["-j", "map", "freeze", "name", "m"]).code, 255);
}

#[test]
fn btf_dump_file_is_bpftool_exact() {
    let env = Env::new();
    let dir = common::root().join("tests/golden/btf");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("txt") {
            continue;
        }
        let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
        let obj = format!("obj/{stem}.o");
        let plain = env.run(&["btf", "dump", "file", &obj]).ok().stdout;
        assert_eq!(plain, std::fs::read_to_string(&p).unwrap(), "{stem}");
        let json = env.run(&["-j", "btf", "dump", "file", &obj]).ok().stdout;
        assert_eq!(
            json,
            std::fs::read_to_string(p.with_extension("json")).unwrap(),
            "{stem} -j"
        );
        n += 1;
    }
    assert!(n >= 10, "only {n} btf goldens");
    // The loaded BTF (sizes and offsets fixed up) is what the kernel holds.
    env.run(&["prog", "load", "obj/hello.o", "/sys/fs/bpf/hello"])
        .ok();
    let id = env.run(&["btf", "dump", "id", "1"]).ok().stdout;
    assert_eq!(id, kernel_golden("hello")["btf_loaded"].as_str().unwrap());
    assert_eq!(
        env.run(&["btf", "dump", "prog", "name", "hello"])
            .ok()
            .stdout,
        id
    );
    // A map's whole BTF with `all`; by default only its key and value
    // types, as bpftool (compared with bpftool in tests/btf_c.rs).
    assert_eq!(
        env.run(&["btf", "dump", "map", "name", "hello.bss", "all"])
            .ok()
            .stdout,
        id
    );
    let kv = env
        .run(&["btf", "dump", "map", "name", "hello.bss"])
        .ok()
        .stdout;
    assert!(kv.starts_with("[0] UNKNOWN '(anon)'\n["), "{kv}");
    let list = env.run(&["btf", "list"]).ok().stdout;
    assert!(list.starts_with("1: name hello  size "), "{list}");
    assert!(list.contains("prog_ids 1  map_ids 1,2"), "{list}");
}

#[test]
fn errors_name_the_object_and_follow_bpftool() {
    let env = Env::new();
    let e = env.run(&["bogus"]);
    assert_eq!(e.code, 255);
    assert!(
        e.stderr.starts_with("Error: unrecognized object 'bogus'"),
        "{}",
        e.stderr
    );
    let j = env.run(&["-j", "bogus"]);
    assert_eq!(j.stdout, "{\"error\":\"unrecognized object 'bogus'\"}\n");
    let p = env.run(&["prog", "show", "id", "999"]);
    assert_eq!(
        p.stderr,
        "Error: get by id (999): No such file or directory\n"
    );
    let pj = env.run(&["-j", "prog", "show", "id", "999"]);
    assert_eq!(
        pj.stdout,
        "{\"error\":\"get by id (999): No such file or directory\"}\n"
    );
    let n = env.run(&["prog", "show", "name", "nosuch"]);
    assert_eq!(n.code, 255);
    assert!(n.stderr.contains("name nosuch"), "{}", n.stderr);
    let m = env.run(&["map", "dump", "pinned", "/sys/fs/bpf/none"]);
    assert_eq!(
        m.stderr,
        "Error: bpf obj get (/sys/fs/bpf/none): No such file or directory\n"
    );
    let load = env.run(&["prog", "load", "obj/nonexistent.o", "/sys/fs/bpf/x"]);
    assert!(load.stderr.contains("obj/nonexistent.o"), "{}", load.stderr);
    env.run(&["prog", "load", "obj/hello.o", "/sys/fs/bpf/x"])
        .ok();
    let again = env.run(&["prog", "load", "obj/hello.o", "/sys/fs/bpf/x"]);
    assert!(
        again.stderr.contains("/sys/fs/bpf/x): File exists"),
        "{}",
        again.stderr
    );
    for obj in ["prog", "map", "net", "btf", "daemon"] {
        let h = env.run(&[obj, "help"]);
        assert_eq!(h.code, 0);
        assert!(
            h.stderr.starts_with(&format!("Usage: bpfvm {obj}")),
            "{}",
            h.stderr
        );
    }
    assert!(env
        .run(&["help"])
        .stderr
        .starts_with("Usage: bpfvm [OPTIONS] OBJECT"));
}

#[test]
fn prog_run_prints_data_out() {
    let env = Env::new();
    env.run(&["prog", "load", "obj/hello.o", "/sys/fs/bpf/hello"])
        .ok();
    let r = env
        .run(&[
            "prog",
            "run",
            "name",
            "hello",
            "data_in",
            "../golden/packets/ipv4_udp.bin",
            "data_out",
            "-",
            "repeat",
            "2",
        ])
        .ok()
        .stdout;
    let lines: Vec<&str> = r.lines().collect();
    assert_eq!(
        lines[0],
        "0000000\t0200 0000 0002 0200 0000 0001 0800 4500 | ........ ......E."
    );
    assert_eq!(
        lines[3],
        "0000030\t6270 6676 6d                            | bpfvm"
    );
    assert!(
        lines[4].starts_with("Return value: 2, duration (average): "),
        "{r}"
    );
    let j = env
        .run(&[
            "-j",
            "prog",
            "run",
            "name",
            "hello",
            "data_in",
            "../golden/packets/ipv4_udp.bin",
        ])
        .ok()
        .stdout;
    let v: Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["retval"], 2);
}

#[test]
fn verify_prints_the_verifier_log_with_source_lines() {
    let env = Env::new();
    let v = env.run(&["verify", "obj/hello.o"]).ok().stdout;
    assert!(
        v.starts_with("prog 'hello' (section xdp): accepted\n"),
        "{v}"
    );
    assert!(v.contains("processed 10 insns (limit 1000000)"), "{v}");
    // The kernel's words for a refused program, with the source line.
    let bad = env.run(&["verify", "obj/refused_pkt.o"]);
    assert_eq!(bad.code, 1);
    for want in [
        "refused: R1 offset is outside of the packet",
        "; return data[12] == 0x08 ? XDP_PASS : XDP_DROP; @ refused_pkt.bpf.c:10",
        "invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)",
    ] {
        assert!(
            bad.stdout.contains(want),
            "missing {want:?} in {}",
            bad.stdout
        );
    }
    // A refused `prog load` prints the log too.
    let load = env.run(&["prog", "load", "obj/refused_null.o", "/sys/fs/bpf/x"]);
    assert_ne!(load.code, 0);
    assert!(
        load.stderr
            .contains("R0 invalid mem access 'map_value_or_null'"),
        "{}",
        load.stderr
    );
    assert!(
        load.stderr.contains("-- BEGIN PROG LOAD LOG --"),
        "{}",
        load.stderr
    );
    let none = env.run(&["verify", "obj/hello.o", "section", "nope"]);
    assert_eq!(none.code, 255);
}

/// `verify ... prog NAME flags ... unprivileged` and `prog load ... flags
/// unprivileged` load as the kernel's selftests load their cases.
#[test]
fn verify_and_load_take_prog_flags_and_unprivileged() {
    let env = Env::new();
    let obj = "../selftests/obj/verifier_unpriv.o";
    // A comparison of the context pointer with 0: fine with CAP_BPF, not without.
    let ok = env.run(&["verify", obj, "prog", "unpriv_cmp_pointer_with_const"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(
        ok.stdout
            .starts_with("prog 'unpriv_cmp_pointer_with_const' (section socket): accepted\n"),
        "{}",
        ok.stdout
    );
    assert_eq!(ok.stdout.matches("prog '").count(), 1, "{}", ok.stdout);
    let no = env.run(&[
        "verify",
        obj,
        "prog",
        "unpriv_cmp_pointer_with_const",
        "unprivileged",
    ]);
    assert_eq!(no.code, 1);
    assert!(
        no.stdout
            .contains("refused: R1 pointer comparison prohibited"),
        "{}",
        no.stdout
    );
    // Misaligned packet access is refused only under BPF_F_STRICT_ALIGNMENT;
    // BPF_F_ANY_ALIGNMENT overrides it.
    let pkt = "../selftests/obj/verifier_direct_packet_access.o";
    let name = "packet_access_test17_pruning_alignment";
    let plain = env.run(&["verify", pkt, "prog", name]);
    assert_eq!(plain.code, 0, "{}", plain.stdout);
    let strict = env.run(&[
        "verify",
        pkt,
        "prog",
        name,
        "flags",
        "BPF_F_STRICT_ALIGNMENT",
    ]);
    assert_eq!(strict.code, 1);
    assert!(
        strict
            .stdout
            .contains("misaligned packet access off 2+0+15+-4 size 4"),
        "{}",
        strict.stdout
    );
    let any = env.run(&[
        "verify",
        pkt,
        "prog",
        name,
        "flags",
        "strict_alignment",
        "0x2",
    ]);
    assert_eq!(any.code, 0, "{}", any.stdout);
    let bad = env.run(&["verify", pkt, "flags", "BPF_F_NOPE"]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("unknown program flag 'BPF_F_NOPE'"),
        "{}",
        bad.stderr
    );
    // `prog load` passes the same to the daemon's loader.
    let load = env.run(&[
        "prog",
        "load",
        "obj/hello.o",
        "/sys/fs/bpf/hello_strict",
        "flags",
        "BPF_F_STRICT_ALIGNMENT",
        "unprivileged",
    ]);
    assert_ne!(load.code, 0, "{}", load.stdout);
    // Unprivileged: the verifier ran under the rules for a loader without CAP_BPF.
    assert!(
        load.stderr
            .contains("program of this type cannot use helper bpf_trace_printk#6"),
        "{}",
        load.stderr
    );
    let load = env.run(&[
        "prog",
        "load",
        "obj/hello.o",
        "/sys/fs/bpf/hello_flags",
        "flags",
        "BPF_F_TEST_STATE_FREQ",
    ]);
    assert_eq!(load.code, 0, "{}", load.stderr);
}

/// Every map of every fixture the kernel loaded, right after `prog loadall ...
/// pinmaps`: `-j map dump` (raw bytes and BTF-formatted values) and `map show`
/// fields equal the kernel's. Hash maps are compared as sets (bucket order is
/// random in the kernel); maps holding program or map ids are skipped (ids
/// differ). The gcc objects are skipped: the kernel refuses gcc's BTF and libbpf
/// loads them without it, which the runtime's loader does not imitate yet.
#[test]
fn map_dumps_match_the_kernel_for_every_fixture() {
    let env = Env::new();
    let dir = common::root().join("tests/golden/kernel");
    let mut compared = 0;
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .map(String::from)
        })
        .collect();
    names.sort();
    for name in names {
        if name.ends_with(".gcc") {
            continue;
        }
        let k = kernel_golden(&name);
        if k.get("loaded") != Some(&Value::Bool(true)) {
            continue;
        }
        let pin: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let (progs, maps) = (
            format!("/sys/fs/bpf/fx_{pin}"),
            format!("/sys/fs/bpf/fx_{pin}_maps"),
        );
        env.run(&[
            "prog",
            "loadall",
            &format!("obj/{name}.o"),
            &progs,
            "pinmaps",
            &maps,
        ])
        .ok();
        for (m, v) in k["maps"].as_object().unwrap() {
            let path = format!("{maps}/{m}");
            let t = v["show"]["type"].as_str().unwrap();
            if matches!(
                t,
                "prog_array"
                    | "array_of_maps"
                    | "hash_of_maps"
                    | "queue"
                    | "stack"
                    | "ringbuf"
                    | "devmap"
                    | "devmap_hash"
                    | "cpumap"
            ) {
                continue;
            }
            let show: Value =
                serde_json::from_str(&env.run(&["-j", "map", "show", "pinned", &path]).ok().stdout)
                    .unwrap();
            for f in [
                "type",
                "name",
                "flags",
                "bytes_key",
                "bytes_value",
                "max_entries",
                "frozen",
                "bytes_memlock",
            ] {
                assert_eq!(show[f], v["show"][f], "{name} {m} {f}");
            }
            let ours: Value =
                serde_json::from_str(&env.run(&["-j", "map", "dump", "pinned", &path]).ok().stdout)
                    .unwrap();
            let set = |v: &Value| {
                let mut s: Vec<String> = v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e.to_string())
                    .collect();
                s.sort();
                s
            };
            assert_eq!(set(&ours), set(&v["dump"]), "{name} {m}");
            compared += 1;
        }
        for (p, pv) in k["programs"].as_object().unwrap() {
            if pv["verdict"] != "accepted" {
                continue;
            }
            let s: Value = serde_json::from_str(
                &env.run(&["-j", "prog", "show", "pinned", &format!("{progs}/{p}")])
                    .ok()
                    .stdout,
            )
            .unwrap();
            // bytes_xlated differs where the kernel's verifier rewrites (inlined helpers).
            for f in ["type", "name", "tag", "gpl_compatible"] {
                assert_eq!(s[f], pv["show"][f], "{name}/{p} {f}");
            }
        }
    }
    assert!(compared >= 15, "only {compared} map dumps compared");
}

#[test]
fn version_and_help_flags_answer_as_bpftool() {
    let env = Env::new();
    for flag in ["-V", "--version", "version"] {
        let out = env.run(&[flag]).ok().stdout;
        assert!(out.starts_with("bpfvm v"), "{flag}: {out}");
        assert!(out.contains("verifier"), "{flag}: {out}");
        assert!(!out.contains("no verifier"), "{flag}: {out}");
    }
    let out = env.run(&["-j", "version"]).ok().stdout;
    assert!(
        out.ends_with("}\n"),
        "bpftool ends -j version with a newline: {out:?}"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["features"]["verifier"], true);
    assert_eq!(
        v["features"]["jit"],
        cfg!(target_arch = "x86_64"),
        "the JIT runs natively on x86_64 only"
    );
    for flag in ["-h", "--help", "help"] {
        let r = env.run(&[flag]).ok();
        assert!(r.stderr.contains("Usage: bpfvm"), "{flag}: {}", r.stderr);
    }
}

/// `map peek|push|pop|enqueue|dequeue` on queues, stacks and a hash, as bpftool
/// prints them (stdout and exit code); with root and bpftool, the same script runs
/// on the kernel's maps too. A pop survives a daemon restart.
#[test]
fn queue_and_stack_words_match_bpftool() {
    let script: &[&[&str]] = &[
        &["map", "push", "M", "value", "1", "2", "3", "4"],
        &["map", "enqueue", "M", "value", "5", "6", "7", "8"],
        &["map", "push", "M", "value", "9", "0", "0", "0"],
        &["map", "peek", "M"],
        &["-j", "map", "peek", "M"],
        &["map", "lookup", "M"],
        &["map", "pop", "M"],
        &["-j", "map", "dequeue", "M"],
        &["map", "push", "M", "value", "1", "0", "0"],
        &["map", "pop", "M"],
        &["map", "pop", "M"],
        &["-j", "map", "pop", "M"],
        &["map", "peek", "M"],
        &["map", "lookup", "M", "key", "0", "0", "0", "0"],
        &["map", "pop", "H"],
        &["map", "push", "H", "value", "1", "2", "3", "4"],
        &["map", "peek", "H"],
    ];
    let run_all = |run: &mut dyn FnMut(&[&str]) -> (i32, String), kind: &str| -> String {
        let mut log = String::new();
        for (i, words) in script.iter().enumerate() {
            let (code, out) = run(words);
            log.push_str(&format!(
                "[{kind}] {i} {}\nexit {code}\n{out}",
                words.join(" ")
            ));
        }
        log
    };
    let mut ours = String::new();
    for kind in ["queue", "stack"] {
        let env = Env::new();
        for (name, args) in [
            ("q", ["type", kind, "key", "0", "value", "4"]),
            ("h", ["type", "hash", "key", "4", "value", "4"]),
        ] {
            let path = format!("/sys/fs/bpf/{name}");
            let mut a = vec!["map", "create", &path];
            a.extend(args);
            a.extend(["entries", "4", "name", name]);
            env.run(&a).ok();
        }
        let mut run = |w: &[&str]| {
            let w: Vec<&str> = w
                .iter()
                .map(|x| match *x {
                    "M" => "pinned\u{0}/sys/fs/bpf/q",
                    "H" => "pinned\u{0}/sys/fs/bpf/h",
                    x => x,
                })
                .flat_map(|x| x.split('\u{0}'))
                .collect();
            let o = env.run(&w);
            (o.code, o.stdout)
        };
        let log = run_all(&mut run, kind);
        ours.push_str(&log);
        // bpftool beside us, on the kernel's maps.
        if let Some(dir) = bpftool_dir() {
            let q = dir.join("q");
            let h = dir.join("h");
            let mk = |p: &std::path::Path, args: &[&str]| {
                let st = std::process::Command::new("bpftool")
                    .args(["map", "create"])
                    .arg(p)
                    .args(args)
                    .args(["entries", "4", "name", "t"])
                    .status();
                assert!(st.is_ok_and(|s| s.success()), "bpftool map create");
            };
            mk(&q, &["type", kind, "key", "0", "value", "4"]);
            mk(&h, &["type", "hash", "key", "4", "value", "4"]);
            let mut run = |w: &[&str]| {
                let mut c = std::process::Command::new("bpftool");
                for x in w {
                    match *x {
                        "M" => c.arg("pinned").arg(&q),
                        "H" => c.arg("pinned").arg(&h),
                        x => c.arg(x),
                    };
                }
                let o = c.output().expect("bpftool");
                (
                    o.status.code().unwrap_or(-1),
                    String::from_utf8_lossy(&o.stdout).into_owned(),
                )
            };
            let theirs = run_all(&mut run, kind);
            let _ = std::fs::remove_dir_all(&dir);
            for (a, b) in log.lines().zip(theirs.lines()) {
                assert_eq!(a, b, "bpfvm (left) and bpftool (right) differ");
            }
            assert_eq!(log, theirs, "bpfvm (left) and bpftool (right) differ");
        } else if kind == "queue" {
            eprintln!("skip: bpftool beside bpfvm needs root, bpftool and /sys/fs/bpf");
        }
        // What was popped stays popped after a restart; what was pushed stays.
        env.run(&[
            "map",
            "push",
            "pinned",
            "/sys/fs/bpf/q",
            "value",
            "7",
            "0",
            "0",
            "0",
        ])
        .ok();
        env.run(&[
            "map",
            "push",
            "pinned",
            "/sys/fs/bpf/q",
            "value",
            "8",
            "0",
            "0",
            "0",
        ])
        .ok();
        env.run(&["map", "pop", "pinned", "/sys/fs/bpf/q"]).ok();
        env.stop();
        let left = env.run(&["map", "peek", "pinned", "/sys/fs/bpf/q"]).ok();
        let want = if kind == "queue" { "08" } else { "07" };
        assert_eq!(
            left.stdout,
            format!("value: {want} 00 00 00\n"),
            "{kind} after a restart"
        );
    }
    golden("queue_stack_words.txt", &ours);
}

/// A fresh directory under /sys/fs/bpf for bpftool's pins, when bpftool can
/// run there (root, bpffs mounted).
fn bpftool_dir() -> Option<std::path::PathBuf> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let ok = std::process::Command::new("bpftool")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        return None;
    }
    let d = bpftool_dir_path();
    std::fs::create_dir(&d).ok()?;
    Some(d)
}

/// `batch file FILE` beside bpftool's: the same file (comments, quotes, a
/// continued line, a failing command that stops the batch), plain and JSON,
/// the same stdout and exit code.
#[test]
fn batch_files_run_as_bpftool_runs_them() {
    let dir = format!("/sys/fs/bpf/bpfvm-batch-{}", std::process::id());
    let ok = format!(
        "# a comment\n\
         map create {dir}/bq type queue key 0 value 4 entries 4 name bq\n\
         map push pinned {dir}/bq value 1 2 3 4   # trailing\n\
         map peek \\\n  pinned {dir}/bq\n\
         map \"pop\" pinned '{dir}/bq'\n"
    );
    let failing = format!(
        "map create {dir}/bs type stack key 0 value 4 entries 2 name bs\n\
         map pop pinned {dir}/bs\n\
         map peek pinned {dir}/bs\n"
    );
    let unterminated = "map show \"open\n".to_string();
    let env = Env::new();
    let tmp = env.state().join("batch-files");
    std::fs::create_dir_all(&tmp).expect("mkdir");
    let cases = [
        ("ok", ok),
        ("failing", failing),
        ("unterminated", unterminated),
    ];
    let kernel = bpftool_dir().is_some();
    if kernel {
        let _ = std::fs::remove_dir_all(bpftool_dir_path());
    }
    for (name, text) in &cases {
        let file = tmp.join(format!("{name}.txt"));
        std::fs::write(&file, text).expect("write");
        let file = file.to_string_lossy().into_owned();
        for json in [false, true] {
            // Fresh maps for each run, on both sides.
            let fresh = Env::new();
            let mut args = vec![];
            if json {
                args.push("-j");
            }
            args.extend(["batch", "file", file.as_str()]);
            let ours = fresh.run(&args);
            let want_code = if *name == "ok" { 0 } else { 254 };
            if *name != "unterminated" {
                assert_eq!(ours.code, want_code, "{name} json={json}: {}", ours.stderr);
            }
            if kernel {
                std::fs::create_dir_all(&dir).expect("mkdir bpffs");
                let o = std::process::Command::new("bpftool")
                    .args(&args)
                    .output()
                    .expect("bpftool");
                let _ = std::fs::remove_dir_all(&dir);
                assert_eq!(
                    (ours.code, ours.stdout.as_str()),
                    (
                        o.status.code().unwrap_or(-1),
                        &*String::from_utf8_lossy(&o.stdout)
                    ),
                    "{name} json={json}: bpfvm (left), bpftool (right)"
                );
            }
        }
    }
    if !kernel {
        eprintln!("skip: bpftool beside bpfvm needs root, bpftool and /sys/fs/bpf");
    }
}

fn bpftool_dir_path() -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/sys/fs/bpf/bpfvm-test-{}", std::process::id()))
}

/// `map update` of a per-CPU map takes one value and writes it to every CPU's
/// slot, as bpftool does; a value per CPU and a short value are refused with
/// bpftool's exit code. Beside bpftool on the kernel's maps where it can run.
#[test]
fn percpu_update_takes_one_value_as_bpftool() {
    let words: &[&[&str]] = &[
        &[
            "map", "update", "M", "key", "1", "0", "0", "0", "value", "7", "0", "0", "0",
        ],
        &["map", "lookup", "M", "key", "1", "0", "0", "0"],
        &[
            "map", "update", "M", "key", "0", "0", "0", "0", "value", "1", "0", "0", "0", "2", "0",
            "0", "0",
        ],
        &[
            "map", "update", "M", "key", "1", "0", "0", "0", "value", "7", "0", "0",
        ],
    ];
    let ncpus = std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| {
            s.trim()
                .rsplit('-')
                .next()
                .and_then(|n| n.parse::<usize>().ok())
        })
        .map_or(1, |n| n + 1);
    for kind in ["percpu_array", "percpu_hash"] {
        let env = Env::new();
        env.run(&[
            "map",
            "create",
            "/sys/fs/bpf/pc",
            "type",
            kind,
            "key",
            "4",
            "value",
            "4",
            "entries",
            "2",
            "name",
            "pc",
        ])
        .ok();
        let mut ours = Vec::new();
        for w in words {
            let w: Vec<&str> = w
                .iter()
                .flat_map(|x| {
                    if *x == "M" {
                        vec!["pinned", "/sys/fs/bpf/pc"]
                    } else {
                        vec![*x]
                    }
                })
                .collect();
            let o = env.run(&w);
            ours.push((o.code, o.stdout));
        }
        assert_eq!(ours[0].0, 0, "{kind}: one value");
        // Every CPU the runtime has got the value.
        let want: String = (0..env_cpus(&env))
            .map(|c| format!("value (CPU {c:02}): 07 00 00 00\n"))
            .collect();
        assert_eq!(ours[1].1, format!("key:\n01 00 00 00\n{want}"), "{kind}");
        assert_eq!((ours[2].0, ours[3].0), (255, 255), "{kind}: refusals");
        if let Some(dir) = bpftool_dir() {
            let p = dir.join("pc");
            let st = std::process::Command::new("bpftool")
                .args(["map", "create"])
                .arg(&p)
                .args([
                    "type", kind, "key", "4", "value", "4", "entries", "2", "name", "pc",
                ])
                .status();
            assert!(st.is_ok_and(|s| s.success()));
            for (w, o) in words.iter().zip(&ours) {
                let mut c = std::process::Command::new("bpftool");
                for x in *w {
                    match *x {
                        "M" => c.arg("pinned").arg(&p),
                        x => c.arg(x),
                    };
                }
                let k = c.output().expect("bpftool");
                let theirs = (
                    k.status.code().unwrap_or(-1),
                    String::from_utf8_lossy(&k.stdout).into_owned(),
                );
                // The CPU count can differ (bpfvm's runtime vs the host's possible CPUs).
                if env_cpus(&env) == ncpus {
                    assert_eq!(o, &theirs, "{kind} {w:?}: bpfvm (left), bpftool (right)");
                } else {
                    assert_eq!(o.0, theirs.0, "{kind} {w:?}: exit codes");
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// The CPUs the daemon's runtime has (from `bpfvm map` of a per-CPU lookup).
fn env_cpus(env: &Env) -> usize {
    let o = env.run(&[
        "map",
        "lookup",
        "pinned",
        "/sys/fs/bpf/pc",
        "key",
        "1",
        "0",
        "0",
        "0",
    ]);
    o.stdout
        .lines()
        .filter(|l| l.starts_with("value (CPU"))
        .count()
}

/// An object with maps and no program: `prog loadall` creates its maps and pins
/// them under `pinmaps` (no program pinned), `prog load` refuses it; bpftool's
/// exit codes and pins beside ours where it can run.
#[test]
fn objects_without_programs_load_as_bpftool_loads_them() {
    let env = Env::new();
    let load = env.run(&["prog", "load", "obj/maps_only.o", "/sys/fs/bpf/mo"]);
    assert_eq!(load.code, 255);
    assert!(
        load.stderr
            .contains("object file doesn't contain any bpf program"),
        "{}",
        load.stderr
    );
    env.run(&[
        "prog",
        "loadall",
        "obj/maps_only.o",
        "/sys/fs/bpf/mo",
        "pinmaps",
        "/sys/fs/bpf/mo/maps",
    ])
    .ok();
    let show = env.run(&["-j", "map", "show"]).ok().stdout;
    let maps: Value = serde_json::from_str(&show).expect("json");
    let names: Vec<&str> = maps
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(names, ["shared_hash", "shared_array"]);
    for m in ["shared_hash", "shared_array"] {
        env.run(&["map", "show", "pinned", &format!("/sys/fs/bpf/mo/maps/{m}")])
            .ok();
    }
    assert!(env.run(&["prog", "show"]).ok().stdout.is_empty());
    // The same with bpftool and the kernel.
    if let Some(dir) = bpftool_dir() {
        let obj = common::fixtures().join("obj/maps_only.o");
        let l = std::process::Command::new("bpftool")
            .args(["prog", "load"])
            .arg(&obj)
            .arg(dir.join("p"))
            .output()
            .expect("bpftool");
        assert_eq!(l.status.code(), Some(255));
        let st = std::process::Command::new("bpftool")
            .args(["prog", "loadall"])
            .arg(&obj)
            .arg(&dir)
            .arg("pinmaps")
            .arg(dir.join("maps"))
            .status();
        assert!(st.is_ok_and(|s| s.success()));
        let mut pins: Vec<String> = std::fs::read_dir(dir.join("maps"))
            .expect("pins")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        pins.sort();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(pins, ["shared_array", "shared_hash"]);
    }
}
