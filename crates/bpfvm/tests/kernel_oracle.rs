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
