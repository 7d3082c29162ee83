//! The corpus of real programs (tests/corpus/README.md): objects built from public
//! eBPF projects, loaded by bpfvm as `bpfvm prog loadall` loads them and compared
//! with the host kernel's recorded answers (tests/corpus/kernel/, captured by
//! scripts/corpus/capture.sh): the object's verdict, each program's verdict and
//! tag, every `prog run` on the packet set and the maps before and after the runs.
//!
//! The objects are not in the repository (the terms under which their sources were
//! fetched forbid committing binaries built from them): they are read from
//! `$BPFVM_CORPUS_DIR`, else `../corpus` beside the repository. Without them only
//! the committed files are checked for consistency, and the test says so.
//!
//! Every check bpfvm fails must be listed in tests/corpus/known-gaps.txt, and every
//! listed check must still fail: the test fails on a regression and on an
//! unexpected success, so the list shrinks as the runtime improves. `BPFVM_BLESS=1`
//! rewrites the list from the current results (review the diff).
//!
//! Where the host kernel can be asked (root, python3, libbpf), the capture is also
//! rerun into a temporary directory and must equal the committed answers.

use bpfvm::{BpfCmd, BpfError, BpfReply, MapObj, Object, Runtime, TestRunAttr};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus_files() -> PathBuf {
    root().join("tests/corpus")
}

/// The directory holding the objects (MANIFEST.tsv and obj/), if present.
fn corpus_dir() -> Option<PathBuf> {
    let d = std::env::var_os("BPFVM_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../corpus"));
    d.join("MANIFEST.tsv").is_file().then_some(d)
}

fn read_json(p: &Path) -> Value {
    let s = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every golden (`kernel/**/*.json` but host.json), sorted by object path.
fn goldens(kdir: &Path) -> Vec<Value> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "json")
                && p.file_name().is_some_and(|n| n != "host.json")
            {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(kdir, &mut files);
    let mut g: Vec<Value> = files.iter().map(|p| read_json(p)).collect();
    g.sort_by(|a, b| a["object"].as_str().cmp(&b["object"].as_str()));
    g
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    object: String,
    program: String,
    check: String,
}

#[derive(Clone, Debug)]
struct Failure {
    key: Key,
    category: String,
    detail: String,
}

/// Counters for the summary, per project.
#[derive(Default, Clone)]
struct Stats {
    objects: usize,
    objects_kernel: usize,
    objects_ours: usize,
    programs: usize,
    programs_kernel: usize,
    programs_ours: usize,
    tags: usize,
    tags_equal: usize,
    runs: usize,
    runs_equal: usize,
    maps: usize,
    maps_equal: usize,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.objects += o.objects;
        self.objects_kernel += o.objects_kernel;
        self.objects_ours += o.objects_ours;
        self.programs += o.programs;
        self.programs_kernel += o.programs_kernel;
        self.programs_ours += o.programs_ours;
        self.tags += o.tags;
        self.tags_equal += o.tags_equal;
        self.runs += o.runs;
        self.runs_equal += o.runs_equal;
        self.maps += o.maps;
        self.maps_equal += o.maps_equal;
    }
}

/// The error with its causes, one line (a cause already quoted is not repeated).
fn chain(e: &BpfError) -> String {
    let mut s = e.to_string();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    if let Some(log) = e.verifier_log() {
        // the verifier's reason is the log's last line before the statistics
        let reason = log
            .lines()
            .rev()
            .find(|l| {
                !l.is_empty() && !l.starts_with("processed ") && !l.starts_with("verification time")
            })
            .unwrap_or("");
        if !s.contains(reason) {
            s.push_str(" | log: ");
            s.push_str(reason);
        }
    }
    s.replace(['\t', '\n'], " ")
}

/// The text after `pat` in `msg`, up to the next quote-free delimiter.
fn after<'a>(msg: &'a str, pat: &str) -> Option<&'a str> {
    let i = msg.find(pat)? + pat.len();
    Some(msg[i..].split([':', '|', ',']).next().unwrap_or("").trim())
}

/// A reason category for one of bpfvm's refusals, from its error text and the
/// program's type (the kernel's name) and section.
fn categorize(msg: &str, ptype: &str, section: &str) -> String {
    if let Some(h) = after(msg, "cannot use helper ") {
        return format!("helper {h} for {ptype}");
    }
    if let Some(h) = after(msg, "invalid func ") {
        return format!("helper {h} unknown");
    }
    if let Some(t) = after(msg, "map type ") {
        if msg.contains("not implemented") {
            return format!("map type {}", t.split(' ').next().unwrap_or(t));
        }
    }
    if msg.contains("cannot pass map_type") {
        return format!(
            "helper argument: {}",
            after(msg, "cannot pass ").unwrap_or("")
        );
    }
    if let Some(v) = after(msg, "extern '") {
        let name = v.split('\'').next().unwrap_or(v);
        return if msg.contains("kfunc") {
            format!("kfunc {name}")
        } else if msg.contains("(.kconfig)") {
            format!("extern .kconfig {name}")
        } else {
            format!("extern __ksym {name}")
        };
    }
    if let Some(v) = after(msg, "extern variable '") {
        let name = v.split('\'').next().unwrap_or(v);
        let sec = if msg.contains(".kconfig") {
            ".kconfig"
        } else {
            "__ksym"
        };
        return format!("extern {sec} {name}");
    }
    if let Some(k) = after(msg, "kfunc calls not supported yet") {
        let _ = k;
        let name = msg.rsplit(": ").next().unwrap_or("");
        return format!("kfunc {name}");
    }
    if msg.contains("invalid bpf_context access") {
        if matches!(ptype, "tracing" | "lsm" | "ext" | "struct_ops") {
            let kind = section.split(['/', '.']).next().unwrap_or(section);
            return format!("BTF-typed context: {ptype} {kind}");
        }
        let at = after(msg, "invalid bpf_context access ").unwrap_or("");
        return format!("context field: {ptype} {at}");
    }
    if msg.contains("struct_ops") {
        return "struct_ops maps".into();
    }
    if msg.contains("CO-RE") || msg.contains("core_relo") {
        return "CO-RE relocation".into();
    }
    if let Some(v) = msg.split("refused by the verifier: ").nth(1) {
        return format!("verifier: {}", v.split(" | ").next().unwrap_or(v));
    }
    format!("other: {msg}")
}

/// Why the kernel refused a program, as a category for bpfvm accepting it.
fn kernel_refusal(p: &Value) -> String {
    let libbpf: Vec<&str> = p["libbpf"]
        .as_array()
        .map(|l| l.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    let any = |pat: &str| libbpf.iter().any(|l| l.contains(pat));
    let log_has = |pat: &str| {
        p["log_tail"].as_array().is_some_and(|l| {
            l.iter()
                .any(|x| x.as_str().is_some_and(|x| x.contains(pat)))
        })
    };
    let why = if log_has("cannot use helper bpf_xdp_adjust_meta") {
        // Linux 6.12 (bpfvm's rules) and the host's earlier build allow it.
        "kernel: this host refuses bpf_xdp_adjust_meta in XDP"
    } else if any("missing BPF prog type") {
        "libbpf: no program type for the section"
    } else if any("not found in kernel") {
        "libbpf: extern or kfunc absent from the kernel's BTF"
    } else if any("failed to find kernel BTF type ID") {
        "libbpf: attach target absent from the kernel"
    } else if any("attach program FD is not set") {
        "libbpf: freplace target not given"
    } else if p["errno"] == 1 {
        "kernel: EPERM (attach-typed program refused on this host)"
    } else if p["log_first"].is_string() {
        "kernel: verifier"
    } else {
        "kernel: other"
    };
    format!("accepts what the kernel refuses ({why})")
}

/// CO-RE relocation records for a program's section and for .text (its subprograms).
fn core_relos(obj: &Object, section: &str) -> usize {
    obj.btf_ext.as_ref().map_or(0, |x| {
        x.core_relos
            .iter()
            .filter(|s| s.sec_name == section || s.sec_name == ".text")
            .map(|s| s.records.len())
            .sum()
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The object as the capture loaded it: section types and map sizes its setup gave.
fn open(corpus: &Path, g: &Value) -> Result<Object, String> {
    let rel = g["object"].as_str().unwrap_or_default();
    let path = corpus.join(rel);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut obj = Object::parse(
        Path::new(rel)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(rel),
        &bytes,
    )
    .map_err(|e| {
        let mut s = e.to_string();
        let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(c) = cur {
            s.push_str(": ");
            s.push_str(&c.to_string());
            cur = c.source();
        }
        s
    })?;
    if let Some(types) = g["setup"]["prog_types"].as_object() {
        for p in &mut obj.programs {
            if let Some(t) = types.get(&p.name).and_then(|t| t.as_str()) {
                if let Some(pt) = bpfvm_obj::ProgType::from_name(t) {
                    p.prog_type = pt;
                }
            }
        }
    }
    if let Some(sizes) = g["setup"]["max_entries"].as_object() {
        for m in &mut obj.maps {
            if let Some(n) = sizes.get(&m.name).and_then(|n| n.as_u64()) {
                m.max_entries = n as u32;
            }
        }
    }
    Ok(obj)
}

/// Loads as on the capture host: its `.kconfig` answers are those of its
/// release (kernel/host.json) and of libbpf's feature probes there; the one
/// that differs from bpfvm's emulated kernel is LINUX_HAS_SYSCALL_WRAPPER,
/// 0 on that host (no kprobes: the probe cannot attach), as its answer for
/// cilium-ebpf/testdata/kconfig.o records.
fn capture_host() -> bpfvm::LoadOpts {
    static K: std::sync::OnceLock<std::sync::Arc<bpfvm::Kconfig>> = std::sync::OnceLock::new();
    let k = K.get_or_init(|| {
        let host = read_json(&corpus_files().join("kernel/host.json"));
        let rel = host["kernel"].as_str().unwrap_or_default();
        let nums: Vec<u32> = rel
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .filter_map(|n| n.parse().ok())
            .collect();
        let mut k = bpfvm::Kconfig {
            has_syscall_wrapper: false,
            ..Default::default()
        };
        if let [a, b, c] = nums[..] {
            k.release = (a, b, c);
        }
        std::sync::Arc::new(k)
    });
    bpfvm::LoadOpts {
        kconfig: Some(k.clone()),
        ..Default::default()
    }
}

/// A map's contents normalised as the capture normalises them: array entries with a
/// non-zero value only, per-CPU maps by CPU 0 (the only CPU here).
fn dump(rt: &Runtime, m: &MapObj, array: bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut key: Option<Vec<u8>> = None;
    let vs = m.attr().value_size as usize;
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
            let v = &v[..vs.min(v.len())];
            if !(array && v.iter().all(|b| *b == 0)) {
                out.push((hex(&next), hex(v)));
            }
        }
        key = Some(next);
        if out.len() > 1 << 20 {
            break;
        }
    }
    out.sort();
    out
}

/// Compares the maps of `loaded` with a golden `{name: {type, entries|skipped}}`;
/// returns (compared, equal, first difference).
fn compare_maps(
    rt: &Runtime,
    loaded: &bpfvm::LoadedObject,
    want: &Value,
) -> (usize, usize, Option<String>) {
    let (mut n, mut eq, mut first) = (0, 0, None);
    let Some(want) = want.as_object() else {
        return (0, 0, None);
    };
    for (name, w) in want {
        if w.get("skipped").is_some() || w.get("volatile").is_some() {
            continue;
        }
        let Some(entries) = w["entries"].as_array() else {
            continue;
        };
        n += 1;
        let Some(m) = loaded.map(name) else {
            first.get_or_insert_with(|| format!("map {name}: not created by bpfvm"));
            continue;
        };
        let array = matches!(w["type"].as_str(), Some("array" | "percpu_array"));
        let got = dump(rt, m.obj(), array);
        let want: Vec<(String, String)> = entries
            .iter()
            .map(|e| {
                (
                    e[0].as_str().unwrap_or_default().to_string(),
                    e[1].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        if got == want {
            eq += 1;
        } else {
            let diff = want
                .iter()
                .find(|e| !got.contains(e))
                .map(|(k, v)| {
                    let ours = got
                        .iter()
                        .find(|(gk, _)| gk == k)
                        .map(|(_, gv)| gv.as_str());
                    format!("key {k}: kernel {v}, bpfvm {}", ours.unwrap_or("absent"))
                })
                .or_else(|| {
                    got.iter()
                        .find(|e| !want.contains(e))
                        .map(|(k, v)| format!("key {k}: kernel absent, bpfvm {v}"))
                })
                .unwrap_or_default();
            first.get_or_insert_with(|| format!("map {name}: {diff}"));
        }
    }
    (n, eq, first)
}

struct Packet {
    name: String,
    data: Vec<u8>,
}

fn packets() -> Vec<Packet> {
    let dir = corpus_files().join("packets");
    let idx = read_json(&dir.join("index.json"));
    idx.as_array()
        .expect("packets/index.json: a list")
        .iter()
        .map(|p| Packet {
            name: p["name"].as_str().unwrap_or_default().to_string(),
            data: std::fs::read(dir.join(p["file"].as_str().unwrap_or_default()))
                .expect("packet file"),
        })
        .collect()
}

/// Every check of one object.
fn check_object(corpus: &Path, g: &Value, pkts: &[Packet]) -> (Stats, Vec<Failure>) {
    let object = g["object"].as_str().unwrap_or_default().to_string();
    let mut st = Stats {
        objects: 1,
        ..Default::default()
    };
    let mut fails = Vec::new();
    let mut fail = |program: &str, check: &str, category: String, detail: String| {
        let category = category.replace('\t', " ");
        fails.push(Failure {
            key: Key {
                object: object.clone(),
                program: program.to_string(),
                check: check.to_string(),
            },
            category,
            detail,
        })
    };
    let kernel_whole = g["whole"]["loaded"].as_bool() == Some(true);
    st.objects_kernel += kernel_whole as usize;
    let programs = g["programs"].as_array().cloned().unwrap_or_default();
    st.programs = programs.len();

    let obj = match open(corpus, g) {
        Ok(o) => o,
        Err(e) => {
            if kernel_whole {
                fail("*", "load", categorize(&e, "", ""), e.clone());
            }
            for p in &programs {
                if p["verdict"] == "accepted" {
                    let name = p["name"].as_str().unwrap_or_default();
                    let t = p["type"].as_str().unwrap_or("");
                    let sec = p["section"].as_str().unwrap_or("");
                    fail(name, "load", categorize(&e, t, sec), e.clone());
                }
            }
            st.programs_kernel = programs
                .iter()
                .filter(|p| p["verdict"] == "accepted")
                .count();
            return (st, fails);
        }
    };

    // The whole object, as `prog loadall` loads it.
    let rt = Runtime::with_cpus(1);
    let whole = rt.load_object_with(&obj, None, &capture_host());
    st.objects_ours += (whole.is_ok() && kernel_whole) as usize;
    match (&whole, kernel_whole) {
        (Ok(_), false) => fail(
            "*",
            "load",
            programs
                .iter()
                .find(|p| p["verdict"] == "refused")
                .map_or("accepts what the kernel refuses".into(), kernel_refusal),
            format!(
                "kernel: errno {} {}",
                g["whole"]["errno"],
                g["whole"]["libbpf"]
                    .as_array()
                    .and_then(|l| l.iter().rev().find_map(|x| x.as_str()))
                    .unwrap_or("")
            ),
        ),
        (Err(e), true) => {
            let msg = chain(e);
            let failing = programs
                .iter()
                .find(|p| msg.contains(&format!("'{}'", p["name"].as_str().unwrap_or("?"))))
                .or(programs.first());
            let (t, sec) = failing.map_or(("", ""), |p| {
                (
                    p["type"].as_str().unwrap_or(""),
                    p["section"].as_str().unwrap_or(""),
                )
            });
            fail("*", "load", categorize(&msg, t, sec), msg)
        }
        _ => {}
    }
    if let (Ok(l), true) = (&whole, kernel_whole) {
        let (n, eq, first) = compare_maps(&rt, l, &g["maps_loaded"]);
        st.maps += n;
        st.maps_equal += eq;
        if let Some(d) = first {
            fail("*", "maps", "maps after load differ".into(), d);
        }
    }

    // Each program: its verdict (alone when the whole object was refused here or
    // there), its tag.
    let mut ours_ok: BTreeSet<String> = BTreeSet::new();
    for p in &programs {
        let name = p["name"].as_str().unwrap_or_default();
        let kernel_ok = p["verdict"] == "accepted";
        st.programs_kernel += kernel_ok as usize;
        let rt1;
        let (ours, rt_used): (Result<bpfvm::LoadedObject, String>, &Runtime) = match &whole {
            Ok(l) => (Ok(l.clone()), &rt),
            Err(_) => {
                rt1 = Runtime::with_cpus(1);
                (
                    rt1.load_object_with(&obj, Some(name), &capture_host())
                        .map_err(|e| chain(&e)),
                    &rt1,
                )
            }
        };
        let _ = rt_used;
        match (&ours, kernel_ok) {
            (Ok(l), true) => {
                st.programs_ours += 1;
                ours_ok.insert(name.to_string());
                let Some(pf) = l.prog(name) else {
                    fail(
                        name,
                        "load",
                        "program missing".into(),
                        "bpfvm loaded the object without it".into(),
                    );
                    continue;
                };
                st.tags += 1;
                let tag = bpfvm::tag::tag_hex(&pf.obj().tag);
                if Some(tag.as_str()) == p["tag"].as_str() {
                    st.tags_equal += 1;
                } else {
                    let n = core_relos(&obj, p["section"].as_str().unwrap_or(""));
                    let kfuncs = obj.program(name).is_some_and(|q| {
                        q.extern_refs
                            .iter()
                            .any(|r| obj.externs[r.ext_idx].kind == bpfvm_obj::ExternKind::Kfunc)
                    });
                    let cat = if n > 0 {
                        "CO-RE relocations not applied".to_string()
                    } else if kfuncs {
                        // The tag covers kfunc calls' BTF ids: the host's vmlinux
                        // ids there, bpfvm's own kernel BTF ids here.
                        "kfunc calls carry bpfvm's BTF ids".to_string()
                    } else {
                        "tag differs".to_string()
                    };
                    fail(
                        name,
                        "tag",
                        cat,
                        format!(
                            "bpfvm {tag}, kernel {}; {n} CO-RE relocation records",
                            p["tag"]
                        ),
                    );
                }
            }
            (Ok(_), false) => {
                let why = p["log_first"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| {
                        p["libbpf"]
                            .as_array()
                            .and_then(|l| l.iter().rev().find_map(|x| x.as_str()))
                            .map(str::to_string)
                    })
                    .unwrap_or_default();
                fail(
                    name,
                    "load",
                    kernel_refusal(p),
                    format!("kernel: errno {}: {why}", p["errno"]),
                );
            }
            (Err(e), true) => fail(
                name,
                "load",
                categorize(
                    e,
                    p["type"].as_str().unwrap_or(""),
                    p["section"].as_str().unwrap_or(""),
                ),
                e.clone(),
            ),
            (Err(_), false) => {}
        }
    }

    // Test runs: a fresh load per program, the packets in order, maps afterwards.
    if let Some(runs) = g["runs"].as_object() {
        for (name, r) in runs {
            if !ours_ok.contains(name) {
                continue;
            }
            let Some(results) = r["results"].as_array() else {
                continue;
            };
            let rt = Runtime::with_cpus(1);
            // as the kernel ran it; alone where bpfvm cannot load the whole object
            // (that is a load gap of its own; the maps are the same)
            let only = (r["load"] == "alone" || whole.is_err()).then_some(name.as_str());
            let loaded = match rt.load_object_with(&obj, only, &capture_host()) {
                Ok(l) => l,
                Err(e) => {
                    let m = chain(&e);
                    fail(name, "run", "reload failed".into(), m);
                    continue;
                }
            };
            let Some(pf) = loaded.prog(name) else {
                continue;
            };
            let mut first: Option<String> = None;
            for (res, pk) in results.iter().zip(pkts) {
                debug_assert_eq!(res["packet"].as_str(), Some(pk.name.as_str()));
                let got = rt.bpf(BpfCmd::ProgTestRun(TestRunAttr {
                    prog_id: pf.id(),
                    data_in: pk.data.clone(),
                    repeat: 1,
                    ..Default::default()
                }));
                let out_only = res["volatile"] == "out";
                if res.get("volatile").is_some() && !out_only {
                    continue;
                }
                st.runs += 1;
                let verdict = match (&got, res.get("errno")) {
                    (Err(e), Some(k)) if Some(e.errno() as u64) == k.as_u64() => None,
                    (Err(e), Some(k)) => Some(format!("errno {} (kernel errno {k})", e.errno())),
                    (Err(e), None) => Some(format!(
                        "error {} (kernel retval {})",
                        chain(e),
                        res["retval"]
                    )),
                    (Ok(_), Some(k)) => Some(format!("ran (kernel errno {k})")),
                    (Ok(BpfReply::TestRun(t)), None) => {
                        let out = if t.data_out == pk.data {
                            None
                        } else if out_only {
                            // time stamps in the frame: only the length is the kernel's
                            Some(format!("{} bytes", t.data_out.len()))
                        } else {
                            Some(hex(&t.data_out))
                        };
                        let want = if out_only {
                            res["out_len"].as_u64().map(|n| format!("{n} bytes"))
                        } else {
                            res["out"].as_str().map(str::to_string)
                        };
                        if Some(t.retval as u64) != res["retval"].as_u64() {
                            Some(format!("retval {} (kernel {})", t.retval, res["retval"]))
                        } else if out != want {
                            Some(format!(
                                "data_out {} (kernel {})",
                                out.unwrap_or_else(|| "= input".into()),
                                want.unwrap_or_else(|| "= input".into())
                            ))
                        } else {
                            None
                        }
                    }
                    (Ok(other), None) => Some(format!("unexpected reply {other:?}")),
                };
                match verdict {
                    None => st.runs_equal += 1,
                    Some(d) => {
                        first.get_or_insert_with(|| format!("{}: {d}", pk.name));
                    }
                }
            }
            let (n, eq, mfirst) = compare_maps(&rt, &loaded, &r["maps_after"]);
            st.maps += n;
            st.maps_equal += eq;
            if let Some(d) = first.or(mfirst.map(|m| format!("after the runs: {m}"))) {
                let section = programs
                    .iter()
                    .find(|p| p["name"] == name.as_str())
                    .and_then(|p| p["section"].as_str())
                    .unwrap_or("");
                let cat = if d.contains("is not supported yet") {
                    "test run: program type not supported".to_string()
                } else if d.contains(": ran (kernel errno") {
                    format!(
                        "test run: kernel refuses test runs of section {section}, bpfvm runs them"
                    )
                } else if core_relos(&obj, section) > 0 {
                    "CO-RE relocations not applied".to_string()
                } else if d.starts_with("after the runs") {
                    "maps after runs differ".to_string()
                } else {
                    "run result differs".to_string()
                };
                fail(name, "run", cat, d);
            }
        }
    }
    (st, fails)
}

fn project_of(object: &str) -> String {
    object
        .trim_start_matches("obj/")
        .split('/')
        .next()
        .unwrap_or("")
        .to_string()
}

/// known-gaps.txt: `object<TAB>program<TAB>check<TAB>category<TAB>detail`, '#' comments.
fn known_gaps(path: &Path) -> BTreeMap<Key, (String, String)> {
    let mut out = BTreeMap::new();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.splitn(5, '\t').collect();
        assert!(
            f.len() >= 4,
            "{}:{}: expected object, program, check, category[, detail] separated by tabs",
            path.display(),
            i + 1
        );
        let key = Key {
            object: f[0].to_string(),
            program: f[1].to_string(),
            check: f[2].to_string(),
        };
        assert!(
            ["load", "tag", "run", "maps"].contains(&f[2]),
            "{}:{}: check must be load, tag, run or maps, not {:?}",
            path.display(),
            i + 1,
            f[2]
        );
        let dup = out.insert(key, (f[3].to_string(), f.get(4).unwrap_or(&"").to_string()));
        assert!(dup.is_none(), "{}:{}: listed twice", path.display(), i + 1);
    }
    out
}

fn write_known_gaps(path: &Path, fails: &[Failure]) {
    let mut s = String::from(
        "# Checks of the corpus that bpfvm fails today (crates/bpfvm/tests/corpus.rs).\n\
         # object<TAB>program ('*': the object)<TAB>check (load|tag|run|maps)<TAB>category<TAB>detail\n\
         # The test fails when a check not listed here fails, and when a listed one passes:\n\
         # remove lines as gaps close (or rewrite the list with BPFVM_BLESS=1 and review the diff).\n",
    );
    let mut f: Vec<&Failure> = fails.iter().collect();
    f.sort_by(|a, b| a.key.cmp(&b.key));
    for x in f {
        let detail: String = x.detail.chars().take(300).collect();
        s.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            x.key.object, x.key.program, x.key.check, x.category, detail
        ));
    }
    std::fs::write(path, s).expect("write known-gaps.txt");
}

#[test]
fn corpus_matches_the_kernel() {
    let files = corpus_files();
    let gold = goldens(&files.join("kernel"));
    let gaps_path = files.join("known-gaps.txt");
    let gaps = known_gaps(&gaps_path);
    assert!(
        gold.len() >= 100,
        "only {} goldens in tests/corpus/kernel",
        gold.len()
    );
    // The committed files agree with each other: every listed gap names a golden
    // object and one of its programs.
    let by_obj: BTreeMap<&str, &Value> = gold
        .iter()
        .map(|g| (g["object"].as_str().unwrap_or_default(), g))
        .collect();
    for k in gaps.keys() {
        let g = by_obj
            .get(k.object.as_str())
            .unwrap_or_else(|| panic!("known-gaps.txt: {} has no golden", k.object));
        if k.program != "*" {
            assert!(
                g["programs"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == k.program.as_str())),
                "known-gaps.txt: {} has no program {}",
                k.object,
                k.program
            );
        }
    }

    let Some(corpus) = corpus_dir() else {
        eprintln!(
            "skipping the corpus comparison: no objects at $BPFVM_CORPUS_DIR or ../corpus \
             (they are built outside the repository, see tests/corpus/README.md); \
             {} goldens and {} known gaps checked for consistency only",
            gold.len(),
            gaps.len()
        );
        return;
    };
    check_manifest(&corpus, &gold);
    let pkts = packets();

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(String, Stats, Vec<Failure>)>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(g) = gold.get(i) else { break };
                let obj = g["object"].as_str().unwrap_or_default().to_string();
                let (st, f) = std::thread::Builder::new()
                    .stack_size(64 << 20)
                    .spawn({
                        let g = g.clone();
                        let corpus = corpus.clone();
                        let pkts: Vec<Packet> = pkts
                            .iter()
                            .map(|p| Packet {
                                name: p.name.clone(),
                                data: p.data.clone(),
                            })
                            .collect();
                        move || check_object(&corpus, &g, &pkts)
                    })
                    .expect("spawn")
                    .join()
                    .unwrap_or_else(|_| {
                        (
                            Stats {
                                objects: 1,
                                ..Default::default()
                            },
                            vec![Failure {
                                key: Key {
                                    object: obj.clone(),
                                    program: "*".into(),
                                    check: "load".into(),
                                },
                                category: "panic".into(),
                                detail: "bpfvm panicked on this object".into(),
                            }],
                        )
                    });
                results.lock().unwrap().push((obj, st, f));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by(|a, b| a.0.cmp(&b.0));

    // Summary by project.
    let mut per: BTreeMap<String, Stats> = BTreeMap::new();
    let mut total = Stats::default();
    let mut fails: Vec<Failure> = Vec::new();
    for (obj, st, f) in &results {
        per.entry(project_of(obj)).or_default().add(st);
        total.add(st);
        fails.extend(f.iter().cloned());
    }
    eprintln!(
        "{:<18} {:>15} {:>17} {:>11} {:>13} {:>11}",
        "project", "objects k/both", "programs k/both", "tags eq", "runs eq", "maps eq"
    );
    for (p, s) in per
        .iter()
        .chain(std::iter::once((&"total".to_string(), &total)))
    {
        eprintln!(
            "{:<18} {:>7}/{:<3} of {:<3} {:>5}/{:<3} of {:<4} {:>4}/{:<6} {:>6}/{:<6} {:>4}/{:<6}",
            p,
            s.objects_kernel,
            s.objects_ours,
            s.objects,
            s.programs_kernel,
            s.programs_ours,
            s.programs,
            s.tags_equal,
            s.tags,
            s.runs_equal,
            s.runs,
            s.maps_equal,
            s.maps
        );
    }
    let mut cats: BTreeMap<String, usize> = BTreeMap::new();
    for f in &fails {
        *cats
            .entry(format!("{} {}", f.key.check, f.category))
            .or_default() += 1;
    }
    eprintln!("failed checks by category ({}):", fails.len());
    let mut cv: Vec<_> = cats.into_iter().collect();
    cv.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (c, n) in &cv {
        eprintln!("  {n:>4}  {c}");
    }

    if std::env::var_os("BPFVM_BLESS").is_some() {
        write_known_gaps(&gaps_path, &fails);
        eprintln!("wrote {} ({} gaps)", gaps_path.display(), fails.len());
        return;
    }
    let failed: BTreeMap<&Key, &Failure> = fails.iter().map(|f| (&f.key, f)).collect();
    let new: Vec<String> = fails
        .iter()
        .filter(|f| !gaps.contains_key(&f.key))
        .map(|f| {
            format!(
                "  {} {} {}: {} ({})",
                f.key.object, f.key.program, f.key.check, f.category, f.detail
            )
        })
        .collect();
    let fixed: Vec<String> = gaps
        .keys()
        .filter(|k| !failed.contains_key(k))
        .map(|k| format!("  {} {} {}", k.object, k.program, k.check))
        .collect();
    assert!(
        new.is_empty() && fixed.is_empty(),
        "the corpus disagrees with tests/corpus/known-gaps.txt\n\
         {} checks fail that are not listed (regressions, or new checks):\n{}\n\
         {} listed checks now pass (remove them from the list):\n{}",
        new.len(),
        new.join("\n"),
        fixed.len(),
        fixed.join("\n")
    );
}

/// The objects are the ones the answers were recorded for.
fn check_manifest(corpus: &Path, gold: &[Value]) {
    use sha2::{Digest, Sha256};
    let mut stale = Vec::new();
    for g in gold {
        let rel = g["object"].as_str().unwrap_or_default();
        let sha = std::fs::read(corpus.join(rel))
            .map(|b| hex(&Sha256::digest(&b)))
            .unwrap_or_else(|_| "missing".into());
        if Some(sha.as_str()) != g["sha256"].as_str() {
            stale.push(format!("  {rel}: {sha}"));
        }
    }
    assert!(
        stale.is_empty(),
        "{} corpus objects in {} are not the ones tests/corpus/kernel was captured from \
         (rebuild them, or recapture with scripts/corpus/capture.sh):\n{}",
        stale.len(),
        corpus.display(),
        stale.join("\n")
    );
}

/// The host kernel, asked again now: the capture rerun into a temporary directory
/// gives the committed answers (volatile values aside).
#[test]
fn live_kernel_gives_the_recorded_answers() {
    let Some(corpus) = corpus_dir() else {
        eprintln!("skipping: no corpus objects (see tests/corpus/README.md)");
        return;
    };
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    let py = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !is_root || !py {
        eprintln!("skipping: asking the host kernel needs root and python3");
        return;
    }
    let files = corpus_files();
    let host = read_json(&files.join("kernel/host.json"));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    if host["kernel"].as_str() != Some(kernel.trim()) {
        eprintln!(
            "skipping: the answers were recorded on Linux {}, this is {}",
            host["kernel"],
            kernel.trim()
        );
        return;
    }
    let out = std::env::temp_dir().join(format!("bpfvm-corpus-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("temp dir");
    std::os::unix::fs::symlink(files.join("packets"), out.join("packets")).expect("symlink");
    let run = std::process::Command::new("python3")
        .arg(root().join("scripts/corpus/capture.py"))
        .arg("--corpus")
        .arg(&corpus)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("python3");
    if !run.status.success() {
        let _ = std::fs::remove_dir_all(&out);
        let err = String::from_utf8_lossy(&run.stderr);
        if err.contains("libbpf") && err.contains("OSError") {
            eprintln!(
                "skipping: no libbpf.so.1 to load with: {}",
                err.lines().last().unwrap_or("")
            );
            return;
        }
        panic!("capture failed: {err}");
    }
    let old = goldens(&files.join("kernel"));
    let new = goldens(&out.join("kernel"));
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!(old.len(), new.len(), "number of objects");
    let mut diffs = Vec::new();
    for (a, b) in old.iter().zip(&new) {
        let (a, b) = (strip_volatile(a), strip_volatile(b));
        if a != b {
            diffs.push(format!("  {}", a["object"]));
        }
    }
    assert!(
        diffs.is_empty(),
        "the live kernel answers differently from tests/corpus/kernel for {} objects:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    eprintln!(
        "live kernel: {} objects give the recorded answers",
        old.len()
    );
}

/// A golden without what legitimately changes between two captures: volatile run
/// results and maps, and libbpf's messages (they carry map fds and addresses).
fn strip_volatile(g: &Value) -> Value {
    let mut g = g.clone();
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                // libbpf's messages and verifier logs carry fds and kernel addresses
                m.remove("libbpf");
                m.remove("log_tail");
                if m.contains_key("volatile") {
                    m.retain(|k, _| k == "packet" || k == "type" || k == "volatile");
                    m.insert("volatile".into(), Value::Bool(true));
                    return;
                }
                for (_, x) in m.iter_mut() {
                    walk(x);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut g);
    g
}
