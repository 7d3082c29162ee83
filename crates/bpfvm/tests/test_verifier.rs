//! The kernel's raw-instruction verifier tests (test_verifier's table,
//! `tools/testing/selftests/bpf/verifier/*.c` of Linux 6.12) as a test table.
//!
//! `tests/selftests/test_verifier/tests.jsonl` holds every test as data
//! (instructions, program type, flags, expected results, map fixups, test
//! runs), extracted by `scripts/selftests/test_verifier.sh` (the GPL sources
//! are not in the project; `fill.jsonl` has the programs test_verifier
//! builds at run time, by its fill helpers); `kernel.jsonl` there holds the host kernel's
//! answers, per test and mode (privileged, and unprivileged for socket filters
//! and cgroup_skb programs, as test_verifier runs them). This test loads every
//! test into bpfvm as test_verifier loads it into the kernel (the maps of each
//! fixup kind created through `BPF_MAP_CREATE`, their ids patched into the
//! instructions, the same flags and privilege) and compares:
//! - the verdict: an ESCAPE is a program bpfvm accepts and the kernel refuses,
//!   printed on every run, listed in the known differences or not;
//! - for refusals (and VERBOSE_ACCEPT), the test's `errstr` in bpfvm's log,
//!   where the kernel's own log has it;
//! - the test runs' return values (`retval`), where both ran the program.
//!
//! Differences are listed in `tests/selftests/test_verifier/known-diffs.txt`;
//! the test fails on one not listed and on a listed one that is gone (re-bless
//! with `BPFVM_BLESS=1` and review: an escape is a verifier bug to fix, listed
//! only so that they can be fixed one at a time). `BPFVM_TEST_VERIFIER_LIVE`
//! names a fresh capture (`scripts/selftests/test_verifier.sh FILE`) to compare
//! against as well; `BPFVM_TEST_VERIFIER_ONLY=FILE[:NAME]` runs only those
//! tests and prints bpfvm's logs; `BPFVM_TEST_VERIFIER_VERBOSE` describes every
//! difference.

mod known_diffs;
use bpfvm::isa::Insn;
use bpfvm::maps::MapType;
use bpfvm::{
    AttachType, BpfCmd, BpfError, BpfReply, FuncInfo, MapCreateAttr, MapFd, ProgLoadAttr, ProgType,
    Runtime, TestRunAttr,
};
use known_diffs::error_chain;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const EPERM: i64 = 1;
/// `POINTER_VALUE` of test_verifier (0xcafe4a): a run returning a pointer,
/// whose value is not compared.
const POINTER_VALUE: u32 = 0xcafe4a;
/// The flags test_verifier adds to every load where the kernel takes them:
/// BPF_F_TEST_RND_HI32 | BPF_F_TEST_REG_INVARIANTS.
const BASE_FLAGS: u32 = 4 | 128;
const BPF_F_STRICT_ALIGNMENT: u32 = 1;
const BPF_F_ANY_ALIGNMENT: u32 = 2;
const BPF_F_NO_PREALLOC: u32 = 1;
const BPF_F_RDONLY_PROG: u32 = 1 << 7;
const BPF_F_WRONLY_PROG: u32 = 1 << 8;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/selftests/test_verifier")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect()
}

/// One run of an accepted program: its input and expected return values.
#[derive(Clone, Debug)]
struct Run {
    retval: u32,
    retval_unpriv: u32,
    data: Vec<u8>,
}

/// One test of the table (a line of `tests.jsonl`).
#[derive(Clone, Debug)]
struct Test {
    file: String,
    name: String,
    prog_type: u32,
    attach: u32,
    flags: u32,
    result: String,
    result_unpriv: Option<String>,
    errstr: Option<String>,
    errstr_unpriv: Option<String>,
    insns: Vec<Insn>,
    fixups: Vec<(String, Vec<usize>)>,
    kfunc_fixups: Vec<String>,
    runs: Vec<Run>,
    func_info: Vec<(u32, u32)>,
    btf_types: Vec<u32>,
    btf_strings: Option<Vec<u8>>,
}

impl Test {
    fn parse(v: &Value) -> Test {
        let s = |k: &str| v[k].as_str().map(str::to_string);
        let u = |k: &str| v[k].as_u64().unwrap_or(0) as u32;
        let insns = v["insns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                let b = hex(h.as_str().unwrap_or_default());
                Insn::from_bytes(b.try_into().unwrap_or([0; 8]))
            })
            .collect();
        let fixups = v["fixups"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, idx)| {
                let idx = idx.as_array().into_iter().flatten();
                (
                    k.clone(),
                    idx.filter_map(|i| i.as_u64()).map(|i| i as usize).collect(),
                )
            })
            .collect();
        let kfunc_fixups = v["kfunc_fixups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p[0].as_str().map(str::to_string))
            .collect();
        let runs = v["retvals"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| Run {
                retval: r["retval"].as_u64().unwrap_or(0) as u32,
                retval_unpriv: r["retval_unpriv"].as_u64().unwrap_or(0) as u32,
                data: hex(r["data"].as_str().unwrap_or_default()),
            })
            .collect();
        let func_info = v["func_info"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p[0].as_u64().unwrap_or(0) as u32,
                    p[1].as_u64().unwrap_or(0) as u32,
                )
            })
            .collect();
        let btf_types = v["btf_types"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| x.as_u64().unwrap_or(0) as u32)
            .collect();
        Test {
            file: s("file").unwrap_or_default(),
            name: s("name").unwrap_or_default(),
            prog_type: u("prog_type"),
            attach: u("expected_attach_type"),
            flags: u("flags"),
            result: s("result").unwrap_or_default(),
            result_unpriv: s("result_unpriv"),
            errstr: s("errstr"),
            errstr_unpriv: s("errstr_unpriv"),
            insns,
            fixups,
            kfunc_fixups,
            runs,
            func_info,
            btf_types,
            btf_strings: s("btf_strings").map(|h| hex(&h)),
        }
    }

    fn expected(&self, unpriv: bool) -> &str {
        match (&self.result_unpriv, unpriv) {
            (Some(r), true) => r,
            _ => &self.result,
        }
    }

    fn errstr(&self, unpriv: bool) -> Option<&str> {
        match (&self.errstr_unpriv, unpriv) {
            (Some(e), true) => Some(e.as_str()),
            _ => self.errstr.as_deref(),
        }
        .filter(|e| !e.is_empty())
    }

    fn expected_retval(&self, run: usize, unpriv: bool) -> u32 {
        let r = &self.runs[run];
        if unpriv && r.retval_unpriv != 0 {
            r.retval_unpriv
        } else {
            r.retval
        }
    }
}

/// The host kernel's answer on one test and mode (a line of `kernel.jsonl`).
#[derive(Clone, Debug, Default)]
struct Answer {
    stage: String,
    skip: String,
    load_ok: bool,
    errno: i64,
    log_tail: String,
    errstr_ok: Option<bool>,
    /// Each run's return value, `None` where the run failed (ENOTSUPP, ...).
    runs: Vec<Option<u32>>,
}

impl Answer {
    fn parse(v: &Value) -> Answer {
        Answer {
            stage: v["stage"].as_str().unwrap_or_default().to_string(),
            skip: v["skip"].as_str().unwrap_or_default().to_string(),
            load_ok: v["load"] == "ok",
            errno: v["errno"].as_i64().unwrap_or(0),
            log_tail: v["log_tail"].as_str().unwrap_or_default().to_string(),
            errstr_ok: v["errstr_ok"].as_bool(),
            runs: v["runs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| r["retval"].as_u64().map(|x| x as u32))
                .collect(),
        }
    }

    /// Why the kernel's answer is no verdict on the program, if it is not: a
    /// case the capture skipped, or this host's blanket EPERM for tracing
    /// programs in a privileged run (no log at all).
    fn unjudged(&self, unpriv: bool) -> Option<String> {
        if self.stage != "verifier" {
            return Some(format!("host skipped: {}", self.skip));
        }
        if !self.load_ok && !unpriv && self.errno == EPERM && self.log_tail.trim().is_empty() {
            return Some("host: EPERM before the verifier (tracing)".into());
        }
        None
    }
}

type Key = (String, String, String);

fn read_jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

fn read_answers(path: &Path) -> BTreeMap<Key, Answer> {
    read_jsonl(path)
        .iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            ((s("file"), s("name"), s("mode")), Answer::parse(v))
        })
        .collect()
}

/// bpfvm's answer on one test and mode.
#[derive(Clone, Debug, Default)]
struct Ours {
    /// bpfvm could not set the test up (a fixup it has no map for, ...).
    setup: Option<String>,
    ok: bool,
    log: String,
    error: String,
    runs: Vec<Result<u32, String>>,
}

/// The BTF of test_verifier's BTF-described maps, built from its description
/// (type ids are fixed: the maps name them): [1] int, [2] struct
/// bpf_spin_lock {int val}, [3] struct val {int cnt; struct bpf_spin_lock l},
/// [4] struct bpf_timer (16 bytes), [5] struct timer {struct bpf_timer t},
/// [6] struct prog_test_ref_kfunc, [7] struct prog_test_member, [8] 6 tagged
/// kptr_untrusted, [9] 6 tagged kptr, [10] 7 tagged kptr, [11..13] pointers to
/// 8, 9, 10, [14] struct btf_ptr {11 ptr; 12 ptr; 13 ptr} (24 bytes).
fn map_btf() -> Vec<u8> {
    let names = [
        "int",
        "bpf_spin_lock",
        "val",
        "cnt",
        "l",
        "bpf_timer",
        "timer",
        "t",
        "btf_ptr",
        "prog_test_ref_kfunc",
        "ptr",
        "kptr",
        "kptr_untrusted",
        "prog_test_member",
    ];
    let mut strs = vec![0u8];
    let mut off = BTreeMap::new();
    for n in names {
        off.insert(n, strs.len() as u32);
        strs.extend_from_slice(n.as_bytes());
        strs.push(0);
    }
    let info = |kind: u32, vlen: u32| (kind << 24) | vlen;
    const INT: u32 = 1;
    const PTR: u32 = 2;
    const STRUCT: u32 = 4;
    const TYPE_TAG: u32 = 18;
    let mut t: Vec<u32> = Vec::new();
    t.extend([off["int"], info(INT, 0), 4, (1 << 24) | 32]);
    t.extend([off["bpf_spin_lock"], info(STRUCT, 1), 4, off["val"], 1, 0]);
    t.extend([
        off["val"],
        info(STRUCT, 2),
        8,
        off["cnt"],
        1,
        0,
        off["l"],
        2,
        32,
    ]);
    t.extend([off["bpf_timer"], info(STRUCT, 0), 16]);
    t.extend([off["timer"], info(STRUCT, 1), 16, off["t"], 4, 0]);
    t.extend([off["prog_test_ref_kfunc"], info(STRUCT, 0), 0]);
    t.extend([off["prog_test_member"], info(STRUCT, 0), 0]);
    t.extend([off["kptr_untrusted"], info(TYPE_TAG, 0), 6]);
    t.extend([off["kptr"], info(TYPE_TAG, 0), 6]);
    t.extend([off["kptr"], info(TYPE_TAG, 0), 7]);
    t.extend([0, info(PTR, 0), 8, 0, info(PTR, 0), 9, 0, info(PTR, 0), 10]);
    t.extend([off["btf_ptr"], info(STRUCT, 3), 24]);
    t.extend([off["ptr"], 11, 0, off["ptr"], 12, 64, off["ptr"], 13, 128]);
    btf_blob(&t, &strs)
}

/// A raw BTF blob: header, types, strings.
fn btf_blob(types: &[u32], strs: &[u8]) -> Vec<u8> {
    let tlen = (types.len() * 4) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(&0xeb9fu16.to_le_bytes());
    b.push(1); // version
    b.push(0); // flags
    for v in [24u32, 0, tlen, tlen, strs.len() as u32] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    for v in types {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(strs);
    b
}

/// test_verifier's `struct test_val` with index = 7 * sizeof(int) and
/// foo[6] = 0xabcdef12 (48 bytes).
fn test_val() -> Vec<u8> {
    let mut v = vec![0u8; 48];
    v[0..4].copy_from_slice(&28u32.to_le_bytes());
    v[4 + 24..4 + 28].copy_from_slice(&0xabcdef12u32.to_le_bytes());
    v
}

struct Setup<'a> {
    rt: &'a Runtime,
    prog_type: ProgType,
    unpriv: bool,
}

impl Setup<'_> {
    fn map(&self, map_type: MapType, key: u32, value: u32, max: u32, flags: u32) -> MapCreateAttr {
        MapCreateAttr {
            map_type,
            key_size: key,
            value_size: value,
            max_entries: max,
            map_flags: if map_type == MapType::Hash {
                BPF_F_NO_PREALLOC | flags
            } else {
                flags
            },
            unprivileged: self.unpriv,
            ..Default::default()
        }
    }

    fn create(&self, a: MapCreateAttr) -> Result<MapFd, String> {
        self.rt
            .create_map(&a)
            .map_err(|e| format!("{:?}: {}", a.map_type, error_chain(&e)))
    }

    /// A prog array of `max` slots: k1 -> returns 42, k2 -> tail-calls slot
    /// k2 again and returns 41, k3 -> returns 24 (test_verifier's dummies).
    fn prog_array(&self, max: u32, k1: u32, k2: u32, k3: u32) -> Result<MapFd, String> {
        let m = self.create(self.map(MapType::ProgArray, 4, 4, max, 0))?;
        let simple = |ret: i32| vec![mov64_imm(0, ret), exit()];
        let tail = vec![
            mov64_imm(3, k2 as i32),
            Insn {
                code: 0x18,
                dst_reg: 2,
                src_reg: 1,
                off: 0,
                imm: m.id() as i32,
            },
            Insn::default(),
            Insn {
                code: 0x85,
                imm: 12,
                ..Default::default()
            },
            mov64_imm(0, 41),
            exit(),
        ];
        for (key, insns) in [(k1, simple(42)), (k2, tail), (k3, simple(24))] {
            let p = self
                .rt
                .load_program(ProgLoadAttr {
                    prog_type: self.prog_type,
                    insns,
                    license: "GPL".into(),
                    unprivileged: self.unpriv,
                    ..Default::default()
                })
                .map_err(|e| format!("prog array dummy: {}", error_chain(&e)))?;
            self.rt
                .map_update_elem(&m, &key.to_le_bytes(), &p.id().to_le_bytes(), 0)
                .map_err(|e| format!("prog array update: {}", error_chain(&e)))?;
        }
        Ok(m)
    }

    fn btf_map(
        &self,
        value: u32,
        value_id: u32,
        map_type: MapType,
        flags: u32,
    ) -> Result<MapFd, String> {
        let btf = self
            .rt
            .btf_load(&map_btf(), "test_verifier")
            .map_err(|e| format!("map BTF: {}", error_chain(&e)))?;
        let mut a = self.map(map_type, 4, value, 1, flags);
        if map_type == MapType::SkStorage {
            a.max_entries = 0;
        }
        a.name = "test_map".into();
        a.btf_id = Some(btf.id);
        a.btf_key_type_id = 1;
        a.btf_value_type_id = value_id;
        self.create(a)
    }

    /// The map of a fixup kind, as test_verifier creates it.
    fn fixup(&self, kind: &str) -> Result<MapFd, String> {
        // The arrays hold test_val at key 0 (of which the kernel copies
        // value_size bytes).
        let with_val = |size: usize, m: MapFd| -> Result<MapFd, String> {
            let v = test_val();
            self.rt
                .map_update_elem(&m, &0u32.to_le_bytes(), &v[..size.min(v.len())], 0)
                .map_err(|e| format!("map update: {}", error_chain(&e)))?;
            Ok(m)
        };
        match kind {
            "map_hash_8b" => self.create(self.map(MapType::Hash, 8, 8, 1, 0)),
            "map_hash_48b" => self.create(self.map(MapType::Hash, 8, 48, 1, 0)),
            "map_hash_16b" => self.create(self.map(MapType::Hash, 8, 16, 1, 0)),
            "map_array_48b" => with_val(48, self.create(self.map(MapType::Array, 4, 48, 1, 0))?),
            "map_array_ro" => with_val(
                48,
                self.create(self.map(MapType::Array, 4, 48, 1, BPF_F_RDONLY_PROG))?,
            ),
            "map_array_wo" => with_val(
                48,
                self.create(self.map(MapType::Array, 4, 48, 1, BPF_F_WRONLY_PROG))?,
            ),
            "map_array_small" => with_val(1, self.create(self.map(MapType::Array, 4, 1, 1, 0))?),
            "prog1" => self.prog_array(4, 0, 1, 2),
            "prog2" => self.prog_array(8, 7, 1, 2),
            "map_in_map" => {
                let inner = self.create(self.map(MapType::Array, 4, 4, 1, 0))?;
                let mut a = self.map(MapType::ArrayOfMaps, 4, 4, 1, 0);
                a.inner_map_id = Some(inner.id());
                self.create(a)
            }
            "cgroup_storage" => self.create(self.map(MapType::CgroupStorage, 12, 64, 0, 0)),
            "percpu_cgroup_storage" => {
                self.create(self.map(MapType::PercpuCgroupStorage, 12, 64, 0, 0))
            }
            "map_sockmap" => self.create(self.map(MapType::Sockmap, 4, 4, 1, 0)),
            "map_sockhash" => self.create(self.map(MapType::Sockhash, 4, 4, 1, 0)),
            "map_xskmap" => self.create(self.map(MapType::Xskmap, 4, 4, 1, 0)),
            "map_stacktrace" => self.create(self.map(MapType::StackTrace, 4, 8, 1, 0)),
            "map_event_output" => self.create(self.map(MapType::PerfEventArray, 4, 4, 1, 0)),
            "map_reuseport_array" => self.create(self.map(MapType::ReuseportSockarray, 4, 8, 1, 0)),
            "map_ringbuf" => self.create(self.map(MapType::Ringbuf, 0, 0, 4096, 0)),
            "map_spin_lock" => self.btf_map(8, 3, MapType::Array, 0),
            "sk_storage_map" => self.btf_map(8, 3, MapType::SkStorage, BPF_F_NO_PREALLOC),
            "map_timer" => self.btf_map(16, 5, MapType::Array, 0),
            "map_kptr" => self.btf_map(24, 14, MapType::Array, 0),
            other => Err(format!("fixup kind {other} not modelled")),
        }
    }
}

fn mov64_imm(dst: u8, imm: i32) -> Insn {
    Insn {
        code: 0xb7,
        dst_reg: dst,
        imm,
        ..Default::default()
    }
}

fn exit() -> Insn {
    Insn {
        code: 0x95,
        ..Default::default()
    }
}

fn run_test(t: &Test, unpriv: bool, want_log: bool) -> Ours {
    let setup_failed = |why: String| Ours {
        setup: Some(why),
        ..Default::default()
    };
    let Some(prog_type) = ProgType::from_u32(t.prog_type) else {
        return setup_failed(format!("program type {} unknown to bpfvm", t.prog_type));
    };
    if let Some(k) = t.kfunc_fixups.first() {
        return setup_failed(format!("kfunc fixup {k} (bpf_testmod) not modelled"));
    }
    let rt = Runtime::with_cpus(1);
    let s = Setup {
        rt: &rt,
        prog_type,
        unpriv,
    };
    let mut insns = t.insns.clone();
    let mut maps = Vec::new();
    for (kind, idx) in &t.fixups {
        let m = match s.fixup(kind) {
            Ok(m) => m,
            Err(e) => return setup_failed(e),
        };
        for &i in idx {
            if let Some(insn) = insns.get_mut(i) {
                insn.imm = m.id() as i32;
            }
        }
        maps.push(m);
    }
    let mut flags = BASE_FLAGS;
    if t.flags & 1 != 0 {
        flags |= BPF_F_ANY_ALIGNMENT;
    }
    if t.flags & 2 != 0 {
        flags |= BPF_F_STRICT_ALIGNMENT;
    }
    if t.flags & !3 != 0 {
        flags |= t.flags;
    }
    let mut btf_id = None;
    let mut _btf = None;
    if !t.btf_types.is_empty() {
        let strs = t.btf_strings.clone().unwrap_or_default();
        match rt.btf_load(&btf_blob(&t.btf_types, &strs), "test") {
            Ok(b) => {
                btf_id = Some(b.id);
                _btf = Some(b);
            }
            Err(e) => return setup_failed(format!("test BTF: {}", error_chain(&e))),
        }
    }
    let func_info: Vec<FuncInfo> = t
        .func_info
        .iter()
        .map(|&(idx, type_id)| FuncInfo {
            insn_off: idx * 8,
            insn_idx: idx,
            type_id,
        })
        .collect();
    let verbose = t.expected(unpriv) == "VERBOSE_ACCEPT";
    let load = |log_level: u32| {
        rt.load_program(ProgLoadAttr {
            prog_type,
            expected_attach_type: AttachType::from_u32(t.attach).unwrap_or_default(),
            insns: insns.clone(),
            license: "GPL".into(),
            btf_id,
            func_info: func_info.clone(),
            log_level,
            unprivileged: unpriv,
            prog_flags: flags,
            ..Default::default()
        })
    };
    let mut r = load(if verbose { 2 } else { 0 });
    // As libbpf does: the log of a refusal comes from a second load at level
    // 1, done only where the log is read.
    if r.is_err() && !verbose && want_log {
        r = load(1);
    }
    match r {
        Ok(p) => {
            let mut runs = Vec::new();
            for run in &t.runs {
                let attr = TestRunAttr {
                    prog_id: p.id(),
                    data_in: run.data.clone(),
                    repeat: 1,
                    ..Default::default()
                };
                runs.push(match rt.bpf(BpfCmd::ProgTestRun(attr)) {
                    Ok(BpfReply::TestRun(tr)) => Ok(tr.retval),
                    Ok(other) => Err(format!("unexpected reply {other:?}")),
                    Err(e) => Err(error_chain(&e)),
                });
            }
            Ours {
                setup: None,
                ok: true,
                log: p.obj().verifier_log.clone(),
                error: String::new(),
                runs,
            }
        }
        Err(e) => Ours {
            setup: None,
            ok: false,
            log: e.verifier_log().unwrap_or_default().to_string(),
            error: match &e {
                BpfError::Verifier { source, .. } => source.error.to_string(),
                other => error_chain(other),
            },
            runs: Vec::new(),
        },
    }
}

/// Every tab-separated part of `exp` is in `log`, in order (test_verifier's
/// `cmp_str_seq`).
fn str_seq(log: &str, exp: &str) -> bool {
    let mut at = 0;
    for part in exp.split('\t') {
        match log[at..].find(part) {
            Some(i) => at += i + part.len(),
            None => return false,
        }
    }
    true
}

struct Outcome {
    key: Key,
    /// Why this case is not compared, if it is not.
    unjudged: Option<String>,
    kernel: Answer,
    ours: Ours,
    expect_reject: bool,
    /// Some(found): the test's errstr is in the kernel's log; is it in ours?
    errstr: Option<bool>,
    /// (runs compared, runs equal) and the first differing run.
    retvals: (usize, usize),
    retval_diff: Option<String>,
}

impl Outcome {
    fn diffs(&self) -> Vec<&'static str> {
        let mut d = Vec::new();
        if self.unjudged.is_some() {
            return d;
        }
        match (self.ours.ok, self.kernel.load_ok) {
            (true, false) => d.push("escape"),
            (false, true) => d.push("false-refusal"),
            _ => {}
        }
        if self.errstr == Some(false) {
            d.push("errstr");
        }
        if self.retvals.0 != self.retvals.1 {
            d.push("retval");
        }
        d
    }
}

fn evaluate(t: &Test, unpriv: bool, ans: &Answer, done: Option<&Ours>) -> Outcome {
    let key = (
        t.file.clone(),
        t.name.clone(),
        if unpriv { "unpriv" } else { "priv" }.to_string(),
    );
    let errstr = t.errstr(unpriv);
    let mut unjudged = ans.unjudged(unpriv);
    let ours = match done {
        Some(o) => o.clone(),
        None if unjudged.is_some() && ans.stage != "verifier" => Ours::default(),
        None => run_test(t, unpriv, errstr.is_some() || only().is_some()),
    };
    if unjudged.is_none() {
        if let Some(s) = &ours.setup {
            unjudged = Some(format!("bpfvm: {s}"));
        }
    }
    let verbose = t.expected(unpriv) == "VERBOSE_ACCEPT";
    let errstr_cmp = match errstr {
        Some(e) if ans.errstr_ok == Some(true) => {
            let both_refused = !ans.load_ok && !ours.ok;
            let both_verbose = verbose && ans.load_ok && ours.ok;
            (both_refused || both_verbose).then(|| str_seq(&ours.log, e))
        }
        _ => None,
    };
    let mut retvals = (0, 0);
    let mut retval_diff = None;
    if ans.load_ok && ours.ok {
        for (i, k) in ans.runs.iter().enumerate() {
            let (Some(k), Some(o)) = (k, ours.runs.get(i)) else {
                continue;
            };
            if t.expected_retval(i, unpriv) == POINTER_VALUE {
                continue;
            }
            retvals.0 += 1;
            match o {
                Ok(v) if v == k => retvals.1 += 1,
                _ if retval_diff.is_none() => {
                    retval_diff = Some(format!("run {}: kernel {k}, bpfvm {o:?}", i + 1))
                }
                _ => {}
            }
        }
    }
    Outcome {
        key,
        unjudged,
        kernel: ans.clone(),
        expect_reject: t.expected(unpriv) == "REJECT",
        ours,
        errstr: errstr_cmp,
        retvals,
        retval_diff,
    }
}

fn only() -> Option<String> {
    std::env::var("BPFVM_TEST_VERIFIER_ONLY").ok()
}

fn selected(only: &str, k: &Key) -> bool {
    match only.split_once(':') {
        Some((f, n)) => k.0 == f && k.1 == n,
        None => k.0 == only,
    }
}

fn evaluate_all(
    tests: &BTreeMap<(String, String), Test>,
    answers: &BTreeMap<Key, Answer>,
    done: &BTreeMap<Key, Ours>,
) -> Vec<Outcome> {
    let only = only();
    let cases: Vec<(&Test, &Key, &Answer)> = answers
        .iter()
        .filter(|(k, _)| only.as_deref().is_none_or(|o| selected(o, k)))
        .filter_map(|(k, a)| tests.get(&(k.0.clone(), k.1.clone())).map(|t| (t, k, a)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((t, k, a)) = cases.get(i) else {
                    break;
                };
                let out = evaluate(t, k.2 == "unpriv", a, done.get(*k));
                results.lock().unwrap_or_else(|e| e.into_inner()).push(out);
            });
        }
    });
    let mut r = results.into_inner().unwrap_or_else(|e| e.into_inner());
    r.sort_by(|a, b| a.key.cmp(&b.key));
    r
}

#[derive(Default)]
struct Tally {
    cases: usize,
    judged: usize,
    agree: usize,
    escapes: usize,
    false_refusals: usize,
    errstr: usize,
    errstr_found: usize,
    retvals: usize,
    retvals_equal: usize,
}

impl Tally {
    fn add(&mut self, o: &Outcome) {
        self.cases += 1;
        if o.unjudged.is_some() {
            return;
        }
        self.judged += 1;
        match (o.ours.ok, o.kernel.load_ok) {
            (true, false) => self.escapes += 1,
            (false, true) => self.false_refusals += 1,
            _ => self.agree += 1,
        }
        if let Some(f) = o.errstr {
            self.errstr += 1;
            self.errstr_found += f as usize;
        }
        self.retvals += o.retvals.0;
        self.retvals_equal += o.retvals.1;
    }

    fn row(&self, name: &str) -> String {
        format!(
            "{name:<28} {:>5} {:>6} {:>6} {:>6} {:>6} {:>9} {:>9}",
            self.cases,
            self.judged,
            self.agree,
            self.escapes,
            self.false_refusals,
            format!("{}/{}", self.errstr_found, self.errstr),
            format!("{}/{}", self.retvals_equal, self.retvals),
        )
    }
}

fn report(outcomes: &[Outcome], against: &str) -> String {
    let mut per_file: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut unjudged: BTreeMap<String, usize> = BTreeMap::new();
    for o in outcomes {
        per_file.entry(o.key.0.as_str()).or_default().add(o);
        total.add(o);
        if let Some(u) = &o.unjudged {
            *unjudged.entry(u.clone()).or_default() += 1;
        }
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "test_verifier's table (verifier/*.c, Linux 6.12) against {against}"
    );
    let _ = writeln!(
        s,
        "{:<28} {:>5} {:>6} {:>6} {:>6} {:>6} {:>9} {:>9}",
        "file", "cases", "judged", "agree", "escape", "refuse", "errstr", "retval"
    );
    for (f, t) in &per_file {
        let _ = writeln!(s, "{}", t.row(f));
    }
    let _ = writeln!(s, "{}", total.row("total"));
    let _ = writeln!(
        s,
        "verdicts equal {}/{}, escapes {}, false refusals {}, errstr found {}/{}, retvals equal {}/{}; {} cases not compared:",
        total.agree,
        total.judged,
        total.escapes,
        total.false_refusals,
        total.errstr_found,
        total.errstr,
        total.retvals_equal,
        total.retvals,
        total.cases - total.judged
    );
    for (why, n) in &unjudged {
        let _ = writeln!(s, "  {n:>4} {why}");
    }
    s
}

fn last_line(s: &str) -> &str {
    s.lines()
        .rev()
        .find(|l| {
            let l = l.trim();
            !l.is_empty()
                && !l.starts_with("processed ")
                && !l.starts_with("stack depth")
                && !l.starts_with("verification time")
        })
        .unwrap_or("")
}

fn describe(o: &Outcome) -> String {
    let kernel = if o.kernel.load_ok {
        "kernel accepts".to_string()
    } else {
        format!(
            "kernel refuses (errno {}): {}",
            o.kernel.errno,
            last_line(&o.kernel.log_tail)
        )
    };
    let ours = if o.ours.ok {
        "bpfvm accepts".to_string()
    } else {
        format!("bpfvm refuses: {}", o.ours.error)
    };
    let mut s = format!("{kernel}; {ours}");
    if let Some(r) = &o.retval_diff {
        let _ = write!(s, "; retval {r}");
    }
    s
}

fn line(o: &Outcome, kind: &str) -> String {
    format!("{}: {} [{}] {kind}", o.key.0, o.key.1, o.key.2)
}

const HEADER: &str = "\
# Cases of test_verifier's table where bpfvm and the host kernel
# (tests/selftests/test_verifier/kernel.jsonl) differ: `FILE: NAME [MODE] KIND`,
# KIND one of escape (bpfvm accepts what the kernel refuses), false-refusal,
# errstr (the test's errstr, in the kernel's log, missing from bpfvm's), retval.
# Written by BPFVM_BLESS=1 cargo test -p bpfvm --test test_verifier. Escapes
# are listed so that they can be fixed one at a time; they are printed as
# ESCAPE lines on every run. Remove them as they are fixed.
";

#[test]
fn kernel_test_verifier_table() {
    let started = std::time::Instant::now();
    // fill.jsonl: the programs test_verifier builds at run time, in place of
    // their tests' empty ones.
    let mut tests: BTreeMap<(String, String), Test> = BTreeMap::new();
    for f in ["tests.jsonl", "fill.jsonl"] {
        for t in read_jsonl(&dir().join(f)).iter().map(Test::parse) {
            tests.insert((t.file.clone(), t.name.clone()), t);
        }
    }
    let answers = read_answers(&dir().join("kernel.jsonl"));
    let outcomes = evaluate_all(&tests, &answers, &BTreeMap::new());
    let mut summary = report(&outcomes, "the recorded answers of Linux 6.18");
    print!("{summary}");

    if only().is_some() {
        for o in &outcomes {
            println!(
                "== {} {} {}: {}\n{}",
                o.key.0,
                o.key.1,
                o.key.2,
                o.unjudged.clone().unwrap_or_else(|| describe(o)),
                o.ours.log
            );
        }
        return;
    }

    let by_line: BTreeMap<String, &Outcome> = outcomes
        .iter()
        .flat_map(|o| o.diffs().into_iter().map(move |d| (line(o, d), o)))
        .collect();
    let now: BTreeSet<String> = by_line.keys().cloned().collect();
    let known_path = dir().join("known-diffs.txt");
    let known = known_diffs::bless_or_read(&known_path, HEADER, &now);
    let verbose = std::env::var_os("BPFVM_TEST_VERIFIER_VERBOSE").is_some();
    let mut escapes = 0;
    for (l, o) in &by_line {
        let tag = if known.contains(l) { "" } else { "NEW " };
        if l.ends_with(" escape") {
            escapes += 1;
            println!("ESCAPE {tag}{l}: {}", describe(o));
        } else if verbose || !known.contains(l) {
            println!("{tag}{l}: {}", describe(o));
        }
    }
    if escapes > 0 {
        let l = format!(
            "ESCAPES: {escapes} cases of test_verifier's table that bpfvm accepts and the kernel refuses\n"
        );
        print!("{l}");
        summary.push_str(&l);
    }
    // Where the host could not judge, the test's own expectation says what
    // Linux 6.12 does: REJECT and accepted by bpfvm is a likely escape.
    let unjudged: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.unjudged.is_some() && o.expect_reject && o.ours.ok)
        .collect();
    for o in &unjudged {
        println!(
            "UNJUDGED {}: {} [{}]: expected REJECT, bpfvm accepts; {}",
            o.key.0,
            o.key.1,
            o.key.2,
            o.unjudged.as_deref().unwrap_or_default()
        );
    }
    let gone: Vec<&String> = known.difference(&now).collect();
    for l in &gone {
        println!("FIXED (remove from tests/selftests/test_verifier/known-diffs.txt): {l}");
    }
    let new = now.difference(&known).count();

    let mut live_escapes = Vec::new();
    if let Some(p) = std::env::var_os("BPFVM_TEST_VERIFIER_LIVE") {
        let live = read_answers(Path::new(&p));
        let changed = live
            .iter()
            .filter(|(k, a)| answers.get(*k).is_none_or(|g| g.load_ok != a.load_ok))
            .count();
        let done: BTreeMap<Key, Ours> = outcomes
            .iter()
            .map(|o| (o.key.clone(), o.ours.clone()))
            .collect();
        let live_outcomes = evaluate_all(&tests, &live, &done);
        let r = report(&live_outcomes, "the live host kernel");
        print!("{r}");
        println!("{changed} verdicts of the live kernel differ from the recorded ones");
        summary.push_str(&r);
        live_escapes = live_outcomes
            .iter()
            .filter(|o| o.diffs().contains(&"escape"))
            .map(|o| line(o, "escape"))
            .filter(|l| !known.contains(l))
            .collect();
    }
    let _ = writeln!(summary, "run time {:.1?}", started.elapsed());
    let _ = std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-verifier-report.txt"),
        &summary,
    );
    println!("run time {:.1?}", started.elapsed());
    assert!(
        live_escapes.is_empty(),
        "bpfvm accepts programs the live kernel refuses: {live_escapes:#?}"
    );
    assert!(
        new == 0 && gone.is_empty(),
        "{new} new differences, {} listed differences gone (BPFVM_BLESS=1 to re-list after review)",
        gone.len()
    );
}
