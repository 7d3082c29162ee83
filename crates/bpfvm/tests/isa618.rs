//! Linux 6.18's ISA additions in compiled programs (tests/isa618: may_goto from
//! clang-19's `-mcpu=v4`, load-acquire/store-release from clang-22's): every
//! program loads, and its test runs on every packet of tests/golden/packets
//! give the retval and bytes the host kernel gave (kernel_runs.json, recorded
//! by tests/isa618/capture.py), with the JIT and with the interpreter.

use bpfvm::{BpfCmd, BpfReply, Object, Runtime, TestRunAttr};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn packet(name: &str) -> Vec<u8> {
    let p = root().join(format!("tests/golden/packets/{name}.bin"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn compiled_programs_run_as_in_the_kernel() {
    let dir = root().join("tests/isa618");
    let g: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("kernel_runs.json")).unwrap())
            .unwrap();
    let mut runs = 0;
    let mut bad = Vec::new();
    for jit in [true, false] {
        for o in g["objects"].as_array().unwrap() {
            let obj = o["object"].as_str().unwrap();
            let object =
                Object::open(dir.join("obj").join(obj)).unwrap_or_else(|e| panic!("{obj}: {e}"));
            let rt = Runtime::with_cpus(1);
            rt.set_jit(jit);
            let loaded = rt
                .load_object(&object, None)
                .unwrap_or_else(|e| panic!("{obj}: {e:?}"));
            for p in o["programs"].as_array().unwrap() {
                let name = p["program"].as_str().unwrap();
                let prog = loaded
                    .prog(name)
                    .unwrap_or_else(|| panic!("{obj}: no program {name}"));
                for run in p["runs"].as_array().unwrap() {
                    let pkt = run["packet"].as_str().unwrap();
                    let r = rt.bpf(BpfCmd::ProgTestRun(TestRunAttr {
                        prog_id: prog.id(),
                        data_in: packet(pkt),
                        repeat: 1,
                        ..Default::default()
                    }));
                    runs += 1;
                    let Ok(BpfReply::TestRun(r)) = r else {
                        bad.push(format!("{obj} {name} {pkt} (jit {jit}): {r:?}"));
                        continue;
                    };
                    if run["retval"].as_u64() != Some(r.retval as u64)
                        || run["data_out_hex"].as_str() != Some(hex(&r.data_out).as_str())
                    {
                        bad.push(format!(
                            "{obj} {name} {pkt} (jit {jit}): retval {} (kernel {})",
                            r.retval, run["retval"]
                        ));
                    }
                }
            }
        }
    }
    assert!(runs >= 80, "only {runs} runs");
    assert!(
        bad.is_empty(),
        "{} of {runs} differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
}
