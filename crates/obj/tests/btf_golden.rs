//! BTF against bpftool: `btf dump file` text and JSON, and `map dump` of
//! maps loaded into the host kernel, all captured by
//! tests/data/btf/capture.sh (bpftool v7.1, kernel 6.18). These goldens are
//! bpftool's output, not ours, so BPFVM_BLESS does not rewrite them; re-run
//! capture.sh instead. The project-wide goldens in tests/golden/btf/ are
//! compared read-only when present.

use std::path::{Path, PathBuf};

use bpfvm_obj::btf::{
    dump_btf_json, dump_btf_plain, hex_byte_array, map_entry_dump, write_bpftool_compact,
    write_bpftool_pretty, Btf, BtfExt, BtfKind, BtfTypeData, CoreReloKind, DumpMode, Dumped,
    MapValues,
};
use object::{Object, ObjectSection, ObjectSymbol};
use serde_json::Value;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/btf")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn read_text(path: &Path) -> String {
    String::from_utf8(read(path)).expect("golden is utf-8")
}

fn elf_section(elf: &[u8], name: &str) -> Option<Vec<u8>> {
    let file = object::File::parse(elf).expect("valid ELF");
    let sec = file.section_by_name(name)?;
    Some(sec.data().expect("section data").to_vec())
}

fn load_btf(obj: &Path) -> Btf {
    let elf = read(obj);
    let raw = elf_section(&elf, ".BTF").expect(".BTF section");
    Btf::parse(&raw).unwrap_or_else(|e| panic!("{}: {e}", obj.display()))
}

/// libbpf's DATASEC fixup, fed from the ELF: section sizes and symbol values.
fn fixup_like_libbpf(btf: &mut Btf, elf: &[u8]) {
    let file = object::File::parse(elf).expect("valid ELF");
    let secs: Vec<(String, u32)> = btf
        .iter()
        .filter(|(_, t)| t.kind() == BtfKind::Datasec)
        .map(|(_, t)| (btf.str_at(t.name_off).to_string(), 0))
        .collect();
    for (name, _) in secs {
        let Some(sec) = file.section_by_name(&name) else {
            continue; // .kconfig/.ksyms have no ELF section
        };
        let idx = sec.index();
        let size = sec.size() as u32;
        btf.fixup_datasec(&name, size, |var| {
            file.symbols()
                .find(|s| s.section_index() == Some(idx) && s.name() == Ok(var))
                .map(|s| s.address() as u32)
        })
        .unwrap_or_else(|e| panic!("fixup {name}: {e}"));
    }
}

/// Fails with the first differing line, which is what one needs to see.
fn assert_text_eq(what: &str, expected: &str, actual: &str) {
    if expected == actual {
        return;
    }
    for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            panic!(
                "{what}: line {} differs\nexpected: {e:?}\n  actual: {a:?}",
                i + 1
            );
        }
    }
    panic!(
        "{what}: differs in length or trailing bytes (expected {} lines / {} bytes, got {} / {})",
        expected.lines().count(),
        expected.len(),
        actual.lines().count(),
        actual.len()
    );
}

#[test]
fn btf_dump_file_matches_bpftool() {
    for name in ["values", "kinds", "values_char"] {
        let dir = data_dir();
        let btf = load_btf(&dir.join(format!("{name}.o")));
        assert_text_eq(
            &format!("{name} plain"),
            &read_text(&dir.join(format!("{name}.btf.txt"))),
            &dump_btf_plain(&btf),
        );
        let json = dump_btf_json(&btf);
        assert_text_eq(
            &format!("{name} -j"),
            &read_text(&dir.join(format!("{name}.btf.json"))),
            &write_bpftool_compact(&json),
        );
        assert_text_eq(
            &format!("{name} -p"),
            &read_text(&dir.join(format!("{name}.btf.pretty.json"))),
            &write_bpftool_pretty(&json),
        );
    }
}

/// `bpftool [-j] btf dump file X`, or `None` when bpftool is not installed.
fn bpftool_btf_dump(path: &Path, json: bool) -> Option<String> {
    let mut cmd = std::process::Command::new("bpftool");
    if json {
        cmd.arg("-j");
    }
    let out = cmd.args(["btf", "dump", "file"]).arg(path).output().ok()?;
    assert!(
        out.status.success(),
        "bpftool failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).expect("utf-8"))
}

#[test]
fn project_fixtures_match_golden_btf_dumps() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let Ok(entries) = std::fs::read_dir(root.join("tests/fixtures/obj")) else {
        eprintln!("skipping: tests/fixtures/obj does not exist yet");
        return;
    };
    let mut compared = 0;
    let mut live_checked = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("o") {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let golden = root.join("tests/golden/btf").join(format!("{stem}.txt"));
        let elf = read(&path);
        let Some(raw) = elf_section(&elf, ".BTF") else {
            continue;
        };
        let btf = Btf::parse(&raw).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(btf.to_bytes(), raw, "{}: round trip", path.display());
        if let Some(ext) = elf_section(&elf, ".BTF.ext") {
            BtfExt::parse(&ext, &btf).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        let ours = dump_btf_plain(&btf);
        if golden.exists() {
            assert_text_eq(stem, &read_text(&golden), &ours);
            compared += 1;
        }
        let golden_json = golden.with_extension("json");
        if golden_json.exists() {
            let json = write_bpftool_compact(&dump_btf_json(&btf));
            assert_text_eq(&format!("{stem} -j"), &read_text(&golden_json), &json);
        }
        if let Some(live) = bpftool_btf_dump(&path, false) {
            assert_text_eq(&format!("{stem} (live bpftool)"), &live, &ours);
            let live_json = bpftool_btf_dump(&path, true).unwrap_or_default();
            let json = write_bpftool_compact(&dump_btf_json(&btf));
            assert_text_eq(&format!("{stem} -j (live bpftool)"), &live_json, &json);
            live_checked += 1;
        }
    }
    eprintln!(
        "compared {compared} fixture btf dumps with goldens, {live_checked} with live bpftool"
    );
}

#[test]
fn round_trip_is_byte_exact() {
    for name in ["values", "kinds"] {
        let elf = read(&data_dir().join(format!("{name}.o")));
        let raw = elf_section(&elf, ".BTF").unwrap();
        let btf = Btf::parse(&raw).unwrap();
        assert_eq!(
            btf.to_bytes(),
            raw,
            "{name}: clang's layout is the canonical one"
        );
        assert_eq!(Btf::parse(&btf.to_bytes()).unwrap(), btf);
        // After the fixup too: what the runtime hands to its loader.
        let mut fixed = btf.clone();
        fixup_like_libbpf(&mut fixed, &elf);
        assert_ne!(fixed, btf);
        assert_eq!(Btf::parse(&fixed.to_bytes()).unwrap(), fixed);
    }
}

#[test]
fn sizes_agree_with_clang_datasec_entries() {
    let btf = load_btf(&data_dir().join("values.o"));
    let mut checked = 0;
    for (_, t) in btf.iter() {
        if let BtfTypeData::Datasec(vars) = &t.data {
            for v in vars {
                let var = btf.type_by_id(v.type_id).unwrap();
                assert_eq!(
                    btf.resolve_size(var.size_or_type).unwrap(),
                    v.size,
                    "{}",
                    btf.name(v.type_id)
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 30);
    let outer = btf.find_by_name_kind("outer", BtfKind::Struct).unwrap();
    assert_eq!(btf.name(outer), "outer");
    assert_eq!(btf.resolve_size(outer).unwrap(), 160);
    let ro = btf.find_by_name_kind("g_ro", BtfKind::Var).unwrap();
    let int = btf.find_by_name_kind("int", BtfKind::Int).unwrap();
    // VAR -> CONST -> VOLATILE -> int
    let cv = btf.type_by_id(ro).unwrap().size_or_type;
    assert_eq!(btf.skip_modifiers(cv).unwrap(), int);
    assert_eq!(btf.resolve_size(cv).unwrap(), 4);
    assert!(btf.type_by_id(0).is_err());
    assert!(btf.type_by_id(btf.nr_types() + 1).is_err());
    assert!(btf.resolve_size(0).is_err());
}

#[test]
fn fixup_matches_the_btf_libbpf_gave_the_kernel() {
    let elf = read(&data_dir().join("values.o"));
    let mut btf = load_btf(&data_dir().join("values.o"));
    fixup_like_libbpf(&mut btf, &elf);
    assert_text_eq(
        "bpftool btf dump id (kernel copy)",
        &read_text(&data_dir().join("values.kernel.btf.txt")),
        &dump_btf_plain(&btf),
    );
}

#[test]
fn fixup_sets_sizes_offsets_and_sorts() {
    let elf = read(&data_dir().join("values.o"));
    let mut btf = load_btf(&data_dir().join("values.o"));
    fixup_like_libbpf(&mut btf, &elf);
    let id = btf.find_by_name_kind(".data", BtfKind::Datasec).unwrap();
    let t = btf.type_by_id(id).unwrap();
    let BtfTypeData::Datasec(vars) = &t.data else {
        panic!("not a datasec")
    };
    let data_len = elf_section(&elf, ".data").unwrap().len() as u32;
    assert_eq!(t.size_or_type, data_len);
    assert!(vars.windows(2).all(|w| w[0].offset <= w[1].offset));
    assert!(vars.iter().all(|v| v.offset + v.size <= data_len));
    let missing = btf.fixup_datasec(".data", 1, |_| None).unwrap_err();
    assert!(missing.to_string().contains("no offset known"), "{missing}");
}

/// Key and value type ids of a map defined in `.maps` (BTF-defined maps:
/// `__type(key, T)` is a member `key` of type `T *`).
fn map_kv_types(btf: &Btf, map: &str) -> (u32, u32) {
    let var = btf.find_by_name_kind(map, BtfKind::Var).unwrap();
    let def = btf
        .skip_modifiers(btf.type_by_id(var).unwrap().size_or_type)
        .unwrap();
    // A map declared with key_size/value_size instead has no type: 0, as the
    // kernel's btf_key_type_id then is.
    let member = |n: &str| {
        btf.type_by_id(def)
            .unwrap()
            .members()
            .iter()
            .find(|m| btf.str_at(m.name_off) == n)
            .map_or(0, |m| btf.type_by_id(m.type_id).unwrap().size_or_type)
    };
    (member("key"), member("value"))
}

fn hex_list(v: &Value) -> Vec<u8> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| u8::from_str_radix(b.as_str().unwrap().trim_start_matches("0x"), 16).unwrap())
        .collect()
}

#[test]
fn map_dumps_match_bpftool() {
    let dir = data_dir();
    let fixed = |obj: &str| {
        let elf = read(&dir.join(obj));
        let mut btf = load_btf(&dir.join(obj));
        fixup_like_libbpf(&mut btf, &elf);
        btf
    };
    let values = fixed("values.o");
    let values_char = fixed("values_char.o");
    let datasec = |btf: &Btf, n: &str| btf.find_by_name_kind(n, BtfKind::Datasec).unwrap();
    let (hk, hv) = map_kv_types(&values, "hmap");
    let (ak, av) = map_kv_types(&values, "amap");
    let (pk, pv) = map_kv_types(&values, "pcpu");
    let maps: Vec<(&Btf, &str, u32, u32, bool)> = vec![
        (&values, "values_bss", 0, datasec(&values, ".bss"), false),
        (&values, "values_data", 0, datasec(&values, ".data"), false),
        (
            &values,
            "values_rodata",
            0,
            datasec(&values, ".rodata"),
            false,
        ),
        (
            &values,
            "_data_floats",
            0,
            datasec(&values, ".data.floats"),
            false,
        ),
        (&values, "hmap", hk, hv, false),
        (&values, "amap", ak, av, false),
        (&values, "pcpu", pk, pv, true),
        (
            &values_char,
            "char_data",
            0,
            datasec(&values_char, ".data"),
            false,
        ),
    ];
    for (btf, map, key_id, value_id, per_cpu) in maps {
        let json_golden = read_text(&dir.join(format!("map.{map}.json")));
        // bpftool's output is not always JSON (FLOAT prints a bare
        // "(unsupported-kind"); patch that only to read the raw bytes back.
        let entries: Value =
            serde_json::from_str(&json_golden.replace("(unsupported-kind", "null")).unwrap();
        let mut plain = Vec::new();
        let mut json = Vec::new();
        for e in entries.as_array().unwrap() {
            let key = hex_list(&e["key"]);
            let (raw_values, per_cpu_values): (Dumped, Vec<Vec<u8>>) = if per_cpu {
                let vals: Vec<Vec<u8>> = e["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| hex_list(&c["value"]))
                    .collect();
                let raw = Dumped::Array(
                    vals.iter()
                        .enumerate()
                        .map(|(cpu, v)| {
                            Dumped::Object(vec![
                                ("cpu".into(), Dumped::Raw(cpu.to_string())),
                                ("value".into(), hex_byte_array(v)),
                            ])
                        })
                        .collect(),
                );
                (raw, vals)
            } else {
                let v = hex_list(&e["value"]);
                (hex_byte_array(&v), vec![v])
            };
            let slices: Vec<&[u8]> = per_cpu_values.iter().map(|v| &v[..]).collect();
            let values = if per_cpu {
                MapValues::PerCpu(&slices)
            } else {
                MapValues::Single(slices[0])
            };
            plain.push(map_entry_dump(btf, key_id, value_id, &key, values, DumpMode::Plain).value);
            let formatted = map_entry_dump(btf, key_id, value_id, &key, values, DumpMode::Json);
            json.push(Dumped::Object(vec![
                ("key".into(), hex_byte_array(&key)),
                (if per_cpu { "values" } else { "value" }.into(), raw_values),
                ("formatted".into(), formatted.value),
            ]));
            if map == "_data_floats" {
                let err = formatted.error.expect("FLOAT is not printable");
                assert!(err.to_string().contains("FLOAT"), "{err}");
            } else {
                assert_eq!(formatted.error, None, "{map}");
            }
        }
        let plain = Dumped::Array(plain);
        let json = Dumped::Array(json);
        assert_text_eq(
            &format!("{map} plain"),
            &read_text(&dir.join(format!("map.{map}.txt"))),
            &plain.to_bpftool_pretty(),
        );
        assert_text_eq(
            &format!("{map} -j"),
            &json_golden,
            &json.to_bpftool_compact(),
        );
        assert_text_eq(
            &format!("{map} -p"),
            &read_text(&dir.join(format!("map.{map}.pretty.json"))),
            &json.to_bpftool_pretty(),
        );
    }
}

#[test]
fn value_to_json_gives_plain_serde_values() {
    let dir = data_dir();
    let elf = read(&dir.join("values.o"));
    let mut btf = load_btf(&dir.join("values.o"));
    fixup_like_libbpf(&mut btf, &elf);
    let data = elf_section(&elf, ".data").unwrap();
    let id = btf.find_by_name_kind(".data", BtfKind::Datasec).unwrap();
    let v = bpfvm_obj::btf::value_to_json(&btf, id, &data).unwrap();
    let vars = v[".data"].as_array().unwrap();
    let get = |n: &str| {
        vars.iter()
            .find_map(|o| o.get(n))
            .unwrap_or_else(|| panic!("{n}"))
            .clone()
    };
    assert_eq!(get("g_str"), Value::from("printable"));
    assert_eq!(get("g_bits")["a"], Value::from("0x5"));
    assert_eq!(get("g_bits")["d"], Value::from(200));
    assert_eq!(get("g_outer")["c"], Value::from("BLUE"));
    assert_eq!(get("g_outer")["b"], Value::from(true));
    assert_eq!(get("g_outer")["ll"], Value::from(-1234567890123i64));
    assert_eq!(get("g_ulong"), Value::from(u64::MAX));
    assert_eq!(get("g_u64arr"), serde_json::json!([1, 2, 3]));
    // Keys keep bpftool's order.
    let bits = get("g_bits");
    let keys: Vec<&String> = bits.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["a", "b", "c", "d", "flag"]);
}

#[test]
fn btf_ext_of_kinds() {
    let dir = data_dir();
    let elf = read(&dir.join("kinds.o"));
    let btf = load_btf(&dir.join("kinds.o"));
    let ext = BtfExt::parse(&elf_section(&elf, ".BTF.ext").unwrap(), &btf).unwrap();
    let file = object::File::parse(&*elf).unwrap();
    let source = read_text(&dir.join("kinds.c"));
    let source_lines: Vec<&str> = source.lines().collect();

    // func_info: every record names the FUNC whose ELF symbol sits at that
    // instruction of that section.
    let mut funcs = Vec::new();
    for sec in &ext.func_info {
        let elf_sec = file.section_by_name(&sec.sec_name).unwrap();
        for fi in &sec.records {
            assert_eq!(fi.insn_idx * 8, fi.insn_off);
            let t = btf.type_by_id(fi.type_id).unwrap();
            assert_eq!(t.kind(), BtfKind::Func);
            let name = btf.name(fi.type_id);
            let sym = file
                .symbols()
                .find(|s| s.section_index() == Some(elf_sec.index()) && s.name() == Ok(name))
                .unwrap_or_else(|| panic!("no symbol {name} in {}", sec.sec_name));
            assert_eq!(sym.address(), u64::from(fi.insn_off), "{name}");
            funcs.push((sec.sec_name.clone(), name.to_string()));
        }
    }
    assert!(
        funcs.contains(&("xdp".into(), "xdp_main".into())),
        "{funcs:?}"
    );
    assert!(
        funcs.contains(&("tc".into(), "tc_main".into())),
        "{funcs:?}"
    );
    assert!(
        funcs.contains(&(".text".into(), "helper_global".into())),
        "{funcs:?}"
    );

    // line_info: the recorded text is the source line at that line number.
    let mut n = 0;
    for sec in &ext.line_info {
        let mut last = 0;
        for li in &sec.records {
            assert!(li.insn_off >= last, "sorted by instruction");
            last = li.insn_off;
            assert!(li.file_name.ends_with("kinds.c"), "{}", li.file_name);
            assert_eq!(li.line_num, li.line_col >> 10);
            assert_eq!(li.col, li.line_col & 0x3ff);
            let src = source_lines[li.line_num as usize - 1];
            assert_eq!(li.line, src, "line {}", li.line_num);
            n += 1;
        }
    }
    assert!(n > 10);
    assert!(!ext.line_info_for("xdp").is_empty());

    // CO-RE: the three kinds kinds.c asks for, with local types that exist.
    let relos = ext.core_relos_for("xdp");
    let kinds: Vec<CoreReloKind> = relos.iter().map(|r| r.kind).collect();
    for k in [
        CoreReloKind::FieldExists,
        CoreReloKind::FieldByteOffset,
        CoreReloKind::TypeExists,
        CoreReloKind::TypeSize,
        CoreReloKind::EnumvalExists,
        CoreReloKind::EnumvalValue,
    ] {
        assert!(kinds.contains(&k), "{k:?} missing from {kinds:?}");
    }
    let task = btf.find_by_name_kind("task", BtfKind::Struct).unwrap();
    let exists = relos
        .iter()
        .find(|r| r.kind == CoreReloKind::FieldExists)
        .unwrap();
    assert_eq!(exists.type_id, task);
    assert_eq!(exists.access_str, "0:1", "task.flags is member 1");
    let neg = btf.find_by_name_kind("neg", BtfKind::Enum).unwrap();
    let ev = relos
        .iter()
        .find(|r| r.kind == CoreReloKind::EnumvalExists)
        .unwrap();
    assert_eq!(
        (ev.type_id, ev.access_str.as_str()),
        (neg, "1"),
        "NEG_Y is enumerator 1"
    );
}

/// The host kernel's own BTF (~130k types, every kind the kernel uses):
/// round trip and `bpftool btf dump file /sys/kernel/btf/vmlinux`, plain and
/// JSON. Skipped where either is missing.
#[test]
fn host_vmlinux_btf_matches_bpftool() {
    let path = Path::new("/sys/kernel/btf/vmlinux");
    let Ok(raw) = std::fs::read(path) else {
        eprintln!("skipping: /sys/kernel/btf/vmlinux not readable");
        return;
    };
    let btf = Btf::parse(&raw).expect("vmlinux btf parses");
    assert_eq!(btf.to_bytes(), raw);
    let Some(live) = bpftool_btf_dump(path, false) else {
        eprintln!("skipping the bpftool comparison: bpftool not installed");
        return;
    };
    assert_text_eq("vmlinux", &live, &dump_btf_plain(&btf));
    let live_json = bpftool_btf_dump(path, true).unwrap_or_default();
    assert_text_eq(
        "vmlinux -j",
        &live_json,
        &write_bpftool_compact(&dump_btf_json(&btf)),
    );
}

/// The project's kernel captures (tests/golden/kernel/X.json, made by
/// another capture script from the fixtures): the BTF the kernel received
/// must equal our fixed-up BTF, and every formatted map dump must equal our
/// rendering of the raw bytes next to it. Compared as parsed JSON, since
/// the captures store parsed values.
#[test]
fn project_kernel_captures_match() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let Ok(entries) = std::fs::read_dir(root.join("tests/golden/kernel")) else {
        eprintln!("skipping: tests/golden/kernel does not exist");
        return;
    };
    let (mut btf_checked, mut dumps_checked) = (0, 0);
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let capture: Value = serde_json::from_str(&read_text(&path)).unwrap();
        let (Some(object), Some(true)) = (
            capture.get("object").and_then(Value::as_str),
            capture.get("loaded").and_then(Value::as_bool),
        ) else {
            continue;
        };
        let elf = read(&root.join("tests/fixtures").join(object));
        let Some(raw) = elf_section(&elf, ".BTF") else {
            continue;
        };
        let mut btf = Btf::parse(&raw).unwrap();
        fixup_like_libbpf(&mut btf, &elf);
        if let Some(loaded) = capture.get("btf_loaded").and_then(Value::as_str) {
            assert_text_eq(
                &format!("{object} loaded btf"),
                loaded,
                &dump_btf_plain(&btf),
            );
            btf_checked += 1;
        }
        let Some(maps) = capture.get("maps").and_then(Value::as_object) else {
            continue;
        };
        for (pin, map) in maps {
            let Some(dump) = map.get("dump").and_then(Value::as_array) else {
                continue;
            };
            let show_name = map["show"]["name"].as_str().unwrap_or_default();
            let section = match show_name.find('.') {
                Some(0) => show_name.to_string(),
                Some(i) => show_name[i..].to_string(),
                None => String::new(),
            };
            let (key_id, value_id) = match btf.find_by_name_kind(&section, BtfKind::Datasec) {
                Some(ds) => (0, ds),
                None if btf.find_by_name_kind(pin, BtfKind::Var).is_some() => {
                    map_kv_types(&btf, pin)
                }
                None => continue,
            };
            for e in dump {
                let Some(formatted) = e.get("formatted") else {
                    continue;
                };
                let key = hex_list(&e["key"]);
                let per_cpu: Vec<Vec<u8>> = match e.get("values") {
                    Some(vs) => vs
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| hex_list(&c["value"]))
                        .collect(),
                    None => vec![hex_list(&e["value"])],
                };
                let slices: Vec<&[u8]> = per_cpu.iter().map(|v| &v[..]).collect();
                let values = if e.get("values").is_some() {
                    MapValues::PerCpu(&slices)
                } else {
                    MapValues::Single(slices[0])
                };
                let ours = map_entry_dump(&btf, key_id, value_id, &key, values, DumpMode::Json);
                assert_eq!(ours.error, None, "{object} {pin}");
                assert_eq!(&ours.value.to_json(), formatted, "{object} {pin}");
                dumps_checked += 1;
            }
        }
    }
    eprintln!("checked {btf_checked} loaded btf dumps and {dumps_checked} formatted map entries");
}
