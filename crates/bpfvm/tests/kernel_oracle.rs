//! The runtime against the host kernel's recorded behaviour (tests/golden/kernel,
//! captured with bpftool on Linux 6.18 by tests/golden/capture.sh): for every
//! fixture program the kernel accepted, the same tag; for every XDP fixture and
//! every packet of the table, the same return value, output bytes and map contents.
//! The expectations are committed, so these tests mean something without a kernel.

use bpfvm::{BpfCmd, BpfReply, MapObj, Object, Runtime, TestRunAttr};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn golden(name: &str) -> Value {
    let p = root().join("tests/golden/kernel").join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .expect("golden json")
}

fn open(obj: &str) -> Object {
    let p = root().join("tests/fixtures").join(obj);
    Object::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Fixture objects the kernel loaded whole.
fn accepted_objects() -> Vec<(String, Value)> {
    let dir = root().join("tests/golden/kernel");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).expect("golden/kernel") {
        let p = e.expect("entry").path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.contains("runs") || name == "host.json" {
            continue;
        }
        let g = golden(&name);
        if g["loaded"].as_bool() == Some(true) {
            out.push((g["object"].as_str().unwrap_or_default().to_string(), g));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn tags_equal_the_kernel_tags() {
    let mut compared = 0;
    for (obj, g) in accepted_objects() {
        let rt = Runtime::with_cpus(1);
        let o = open(&obj);
        let loaded = rt
            .load_object(&o, None)
            .unwrap_or_else(|e| panic!("{obj}: {e:?}"));
        for (name, exp) in g["programs"].as_object().expect("programs") {
            if exp["verdict"] != "accepted" {
                continue;
            }
            let p = loaded
                .prog(name)
                .unwrap_or_else(|| panic!("{obj}: program {name} not loaded"));
            let tag = bpfvm::tag::tag_hex(&p.obj().tag);
            assert_eq!(tag, exp["tag"].as_str().unwrap(), "{obj}: tag of {name}");
            compared += 1;
        }
    }
    assert!(compared >= 20, "only {compared} tags compared");
}

fn packet(name: &str) -> Vec<u8> {
    std::fs::read(
        root()
            .join("tests/golden/packets")
            .join(format!("{name}.bin")),
    )
    .expect("packet")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// bpftool pins maps under their names with characters other than [A-Za-z0-9_] as '_'.
fn pin_name(n: &str) -> String {
    n.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn golden_bytes(v: &Value) -> Option<Vec<u8>> {
    v.as_array()?
        .iter()
        .map(|b| u8::from_str_radix(b.as_str()?.trim_start_matches("0x"), 16).ok())
        .collect()
}

/// (key, value) pairs as the kernel's dump shows them; per-CPU maps by CPU 0's value
/// (the runs were pinned to CPU 0 and the runtime here has one CPU).
fn dump(rt: &Runtime, m: &MapObj) -> BTreeSet<(Vec<u8>, Vec<u8>)> {
    let mut out = BTreeSet::new();
    let mut key: Option<Vec<u8>> = None;
    loop {
        let next = match rt.bpf(BpfCmd::MapGetNextKey {
            map_id: m.id,
            key: key.clone(),
        }) {
            Ok(BpfReply::Bytes(k)) => k,
            _ => break,
        };
        if let Ok(BpfReply::Bytes(v)) = rt.bpf(BpfCmd::MapLookupElem {
            map_id: m.id,
            key: next.clone(),
            flags: 0,
        }) {
            let vs = m.attr().value_size as usize;
            out.insert((next.clone(), v[..vs.min(v.len())].to_vec()));
        }
        key = Some(next);
    }
    out
}

fn golden_dump(entries: &Value) -> Option<BTreeSet<(Vec<u8>, Vec<u8>)>> {
    let mut out = BTreeSet::new();
    for e in entries.as_array()? {
        let k = golden_bytes(&e["key"])?;
        let v = if e.get("value").is_some() {
            golden_bytes(&e["value"])?
        } else {
            let cpu0 = e["values"].as_array()?.iter().find(|c| c["cpu"] == 0)?;
            golden_bytes(&cpu0["value"])?
        };
        out.insert((k, v));
    }
    Some(out)
}

#[test]
fn xdp_test_runs_match_the_kernel() {
    compare_runs("xdp_runs.json", 200);
}

#[test]
fn skb_test_runs_match_the_kernel() {
    compare_runs("skb_runs.json", 10);
}

fn compare_runs(file: &str, min_runs: usize) {
    let g = golden(file);
    let mut runs = 0;
    let mut mismatches = Vec::new();
    for prog in g["programs"].as_array().expect("programs") {
        let obj = prog["object"].as_str().unwrap();
        let name = prog["program"].as_str().unwrap();
        let rt = Runtime::with_cpus(1);
        let loaded = rt
            .load_object(&open(obj), None)
            .unwrap_or_else(|e| panic!("{obj}: {e:?}"));
        let p = loaded
            .prog(name)
            .unwrap_or_else(|| panic!("{obj}: no program {name}"));
        for run in prog["runs"].as_array().expect("runs") {
            let pkt = run["packet"].as_str().unwrap();
            let r = rt.bpf(BpfCmd::ProgTestRun(TestRunAttr {
                prog_id: p.id(),
                data_in: packet(pkt),
                repeat: 1,
                ..Default::default()
            }));
            runs += 1;
            if let Some(kerr) = run.get("error") {
                // The kernel refused the run (EINVAL); so must we, leaving maps alone.
                match &r {
                    Err(e) if e.errno() == 22 => continue,
                    other => {
                        mismatches.push(format!(
                            "{obj} {name} {pkt}: kernel refused ({kerr}), we gave {other:?}"
                        ));
                        continue;
                    }
                }
            }
            let r = match r {
                Ok(BpfReply::TestRun(r)) => r,
                other => {
                    mismatches.push(format!("{obj} {name} {pkt}: run failed: {other:?}"));
                    continue;
                }
            };
            if run["retval"].as_u64() != Some(r.retval as u64) {
                mismatches.push(format!(
                    "{obj} {name} {pkt}: retval {} (kernel {})",
                    r.retval, run["retval"]
                ));
            }
            if run["data_out_hex"].as_str() != Some(hex(&r.data_out).as_str()) {
                mismatches.push(format!(
                    "{obj} {name} {pkt}: data_out {} (kernel {})",
                    hex(&r.data_out),
                    run["data_out_hex"]
                ));
            }
            for (mname, m) in &loaded.maps {
                let Some(exp) = run["maps"].get(pin_name(mname)) else {
                    continue;
                };
                use bpfvm::maps::MapType::*;
                // Slots holding ids differ from one load to the next.
                if matches!(m.obj().map_type(), ProgArray | ArrayOfMaps | HashOfMaps) {
                    continue;
                }
                let Some(want) = golden_dump(&exp["dump"]) else {
                    continue;
                };
                let got = dump(&rt, m.obj());
                if got != want {
                    mismatches.push(format!(
                        "{obj} {name} {pkt}: map {mname} differs:\n  got  {got:?}\n  want {want:?}"
                    ));
                }
            }
        }
    }
    assert!(runs >= min_runs, "only {runs} runs");
    assert!(
        mismatches.is_empty(),
        "{} of {runs} runs differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// The same comparisons against the live host kernel, where this process may load
/// programs with bpftool (root, bpffs mounted): tags of every program of a few
/// objects, and `bpftool prog run` on every packet for their XDP programs.
#[test]
fn live_kernel_agrees() {
    use std::process::Command;
    let bpftool_ok = Command::new("bpftool")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    if !bpftool_ok || !is_root || !Path::new("/sys/fs/bpf").is_dir() {
        eprintln!("skipping: needs root, bpftool and a mounted bpffs to load programs into the host kernel");
        return;
    }
    let fixtures = root_dir_fixtures();
    let packets: Vec<String> = [
        "ipv4_udp",
        "ipv4_tcp",
        "arp",
        "ipv4_truncated",
        "ipv4_blocked",
        "ipv4_udp_echo",
        "ipv6_udp",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut compared_tags = 0;
    let mut compared_runs = 0;
    for obj in [
        "obj/hello.o",
        "obj/hello-func.o",
        "obj/xdp_parse.o",
        "obj/globals.o",
        "obj/hop.o",
        "obj/xdp_adjust.o",
    ] {
        let pin = format!(
            "/sys/fs/bpf/bpfvm_oracle_{}_{}",
            std::process::id(),
            obj.replace(['/', '.', '-'], "_")
        );
        let _ = std::fs::remove_dir_all(&pin);
        let out = Command::new("bpftool")
            .current_dir(&fixtures)
            .args(["prog", "loadall", obj, &pin])
            .output()
            .expect("bpftool");
        if !out.status.success() {
            eprintln!(
                "skipping {obj}: the kernel refused it: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            let _ = std::fs::remove_dir_all(&pin);
            continue;
        }
        let rt = Runtime::with_cpus(1);
        let loaded = rt.load_object(&open(obj), None).expect("load");
        for entry in std::fs::read_dir(&pin).expect("pins") {
            let path = entry.expect("entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let show = Command::new("bpftool")
                .args(["-j", "prog", "show", "pinned"])
                .arg(&path)
                .output()
                .expect("bpftool");
            let show: Value = serde_json::from_slice(&show.stdout).expect("prog show json");
            let ours = loaded
                .prog(&name)
                .unwrap_or_else(|| panic!("{obj}: no program {name}"));
            assert_eq!(
                show["tag"].as_str(),
                Some(bpfvm::tag::tag_hex(&ours.obj().tag).as_str()),
                "{obj} {name}: tag"
            );
            compared_tags += 1;
            if show["type"] != "xdp" {
                continue;
            }
            for pkt in &packets {
                let pkt_path = root()
                    .join("tests/golden/packets")
                    .join(format!("{pkt}.bin"));
                let out_path = std::env::temp_dir().join(format!(
                    "bpfvm_oracle_{}_{name}_{pkt}.out",
                    std::process::id()
                ));
                let run = Command::new("bpftool")
                    .args(["-j", "prog", "run", "pinned"])
                    .arg(&path)
                    .arg("data_in")
                    .arg(&pkt_path)
                    .arg("data_out")
                    .arg(&out_path)
                    .output()
                    .expect("bpftool");
                let kernel: Value = serde_json::from_slice(&run.stdout).unwrap_or(Value::Null);
                let kernel_out = std::fs::read(&out_path).unwrap_or_default();
                let _ = std::fs::remove_file(&out_path);
                let ours = rt.run_packet(ours, &packet(pkt));
                match (kernel.get("retval"), ours) {
                    (Some(rv), Ok(r)) => {
                        assert_eq!(
                            rv.as_u64(),
                            Some(r.retval as u64),
                            "{obj} {name} {pkt}: retval"
                        );
                        assert_eq!(
                            hex(&kernel_out),
                            hex(&r.data_out),
                            "{obj} {name} {pkt}: data_out"
                        );
                    }
                    (None, Err(_)) => {}
                    (k, o) => panic!("{obj} {name} {pkt}: kernel {k:?} vs ours {o:?}"),
                }
                compared_runs += 1;
            }
        }
        let _ = std::fs::remove_dir_all(&pin);
    }
    eprintln!("live kernel: {compared_tags} tags and {compared_runs} XDP runs compared");
    // Not vacuous: most fixtures load on any host. A host may refuse one
    // (6.18.44-fc refuses bpf_xdp_adjust_meta in XDP, so xdp_adjust.o).
    assert!(
        compared_tags >= 5,
        "only {compared_tags} tags compared: the host refused most fixtures"
    );
}

fn root_dir_fixtures() -> PathBuf {
    root().join("tests/fixtures")
}
