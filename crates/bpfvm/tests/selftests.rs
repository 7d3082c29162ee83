//! The Linux kernel's own verifier selftests as a test table.
//!
//! `tests/selftests/obj` holds `tools/testing/selftests/bpf/progs/verifier_*.c`
//! of Linux 6.12 built as the selftests build them (`scripts/selftests/build.sh`;
//! the GPL sources are not in the project). Each program carries its expected
//! behaviour as BTF decl tags (`__success`, `__failure`, `__msg(...)`,
//! `__retval(...)`, ...). This test reads those annotations, loads every case
//! into bpfvm the way the selftests' loader does (the program with the file's
//! auxiliary programs, its flags and log level, privileged and unprivileged),
//! and compares with the host kernel's answers recorded in
//! `tests/selftests/kernel.jsonl` (`scripts/selftests/capture.sh`), or with a
//! fresh capture named by `BPFVM_SELFTESTS_LIVE`.
//!
//! What is compared, on every case the host kernel could judge: the verdict; for
//! refusals, the annotated messages in bpfvm's log, in order (where the
//! kernel's own log has them); `__retval` against the kernel's test run. The
//! remaining differences are listed in `tests/selftests/known-diffs.txt`; the
//! test fails on a difference not listed there and on a listed one that is
//! gone (re-bless with `BPFVM_BLESS=1`, and review the diff).
//! `BPFVM_SELFTESTS_VERBOSE` describes every difference; `BPFVM_SELFTESTS_ONLY`
//! (`FILE` or `FILE:PROG`) runs only those cases and prints bpfvm's logs.
//!
//! A second set, reported apart, holds the other program files the selftests'
//! `test_loader` runs with the same annotations (every `RUN_TESTS(x)` of
//! `prog_tests/*.c`: dynptr_fail, iters, exceptions_fail, ...) in
//! `tests/selftests/runtests/` (objects, answers, known differences). Its
//! escapes are listed in its known-diffs.txt until the verifier is fixed, and
//! printed as `ESCAPE` lines on every run, with their count in the summary.

mod known_diffs;
use bpfvm::btf::{Btf, BtfKind, BtfTypeData};
use bpfvm::{BpfError, LoadOpts, LoadedObject, Object, Runtime, TestRunAttr};
use known_diffs::error_chain;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const PRIV: u8 = 1;
const UNPRIV: u8 = 2;
const EPERM: i64 = 1;
const POINTER_VALUE: i32 = 0xcafe4a11u32 as i32;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What one mode of a case expects (`struct test_subspec`).
#[derive(Clone, Debug, Default)]
struct Sub {
    fail: bool,
    execute: bool,
    retval: i32,
    msgs: Vec<String>,
}

/// A program's annotations (`struct test_spec`).
#[derive(Clone, Debug, Default)]
struct Spec {
    name: String,
    priv_: Sub,
    unpriv: Sub,
    mode: u8,
    log_level: u32,
    flags: u32,
    aux: bool,
    arch_ok: bool,
}

fn retval_of(s: &str) -> i32 {
    match s {
        "INT_MIN" => i32::MIN,
        "POINTER_VALUE" => POINTER_VALUE,
        "TEST_DATA_LEN" => 64,
        _ => match s.strip_prefix("0x") {
            Some(h) => i64::from_str_radix(h, 16).unwrap_or(0) as i32,
            None => s.parse::<i64>().unwrap_or(0) as i32,
        },
    }
}

fn flag_of(s: &str) -> u32 {
    match s {
        "BPF_F_STRICT_ALIGNMENT" => 1,
        "BPF_F_ANY_ALIGNMENT" => 2,
        "BPF_F_TEST_RND_HI32" => 4,
        "BPF_F_TEST_STATE_FREQ" => 8,
        "BPF_F_SLEEPABLE" => 16,
        "BPF_F_XDP_HAS_FRAGS" => 32,
        "BPF_F_TEST_REG_INVARIANTS" => 128,
        _ => match s.strip_prefix("0x") {
            Some(h) => u32::from_str_radix(h, 16).unwrap_or(0),
            None => s.parse().unwrap_or(0),
        },
    }
}

/// `<counter>=<text>` after `pfx` -> text.
fn counted<'a>(s: &'a str, pfx: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(pfx)?;
    rest.split_once('=').map(|(_, m)| m)
}

/// The flags the selftests add to every program where the kernel takes them
/// (`testing_prog_flags()`): BPF_F_TEST_RND_HI32 | BPF_F_TEST_REG_INVARIANTS.
const BASE_FLAGS: u32 = 4 | 128;

fn parse_spec(btf: &Btf, prog: &str) -> Spec {
    let mut sp = Spec {
        name: prog.to_string(),
        flags: BASE_FLAGS,
        arch_ok: true,
        ..Default::default()
    };
    let Some(fid) = btf.find_by_name_kind(prog, BtfKind::Func) else {
        return sp;
    };
    let (mut unpriv_res, mut unpriv_ret, mut any_arch) = (false, false, false);
    for (_, t) in btf.iter() {
        let BtfTypeData::DeclTag { component_idx: -1 } = t.data else {
            continue;
        };
        if t.size_or_type != fid {
            continue;
        }
        let s = btf.str_at(t.name_off);
        if s == "comment:test_expect_failure" {
            sp.priv_.fail = true;
            sp.mode |= PRIV;
        } else if s == "comment:test_expect_success" {
            sp.priv_.fail = false;
            sp.mode |= PRIV;
        } else if s == "comment:test_expect_failure_unpriv" {
            sp.unpriv.fail = true;
            sp.mode |= UNPRIV;
            unpriv_res = true;
        } else if s == "comment:test_expect_success_unpriv" {
            sp.unpriv.fail = false;
            sp.mode |= UNPRIV;
            unpriv_res = true;
        } else if s == "comment:test_auxiliary" {
            sp.aux = true;
            sp.mode |= PRIV;
        } else if s == "comment:test_auxiliary_unpriv" {
            sp.aux = true;
            sp.mode |= UNPRIV;
        } else if let Some(m) = counted(s, "comment:test_expect_msg=") {
            sp.priv_.msgs.push(m.to_string());
            sp.mode |= PRIV;
        } else if let Some(m) = counted(s, "comment:test_expect_msg_unpriv=") {
            sp.unpriv.msgs.push(m.to_string());
            sp.mode |= UNPRIV;
        } else if s.starts_with("comment:test_expect_xlated_unpriv=")
            || s.starts_with("comment:test_jited_unpriv=")
        {
            sp.mode |= UNPRIV;
        } else if s.starts_with("comment:test_expect_xlated=")
            || s.starts_with("comment:test_jited=")
        {
            sp.mode |= PRIV;
        } else if let Some(v) = s.strip_prefix("comment:test_retval_unpriv=") {
            sp.unpriv.retval = retval_of(v);
            sp.unpriv.execute = true;
            sp.mode |= UNPRIV;
            unpriv_ret = true;
        } else if let Some(v) = s.strip_prefix("comment:test_retval=") {
            sp.priv_.retval = retval_of(v);
            sp.priv_.execute = true;
            sp.mode |= PRIV;
        } else if let Some(v) = s.strip_prefix("comment:test_log_level=") {
            sp.log_level = v.parse().unwrap_or(0);
        } else if let Some(v) = s.strip_prefix("comment:test_prog_flags=") {
            match v.strip_prefix('!') {
                Some(f) => sp.flags &= !flag_of(f),
                None => sp.flags |= flag_of(v),
            }
        } else if let Some(v) = s.strip_prefix("comment:test_arch=") {
            if !any_arch {
                sp.arch_ok = false;
            }
            any_arch = true;
            sp.arch_ok |= v == "X86_64";
        }
    }
    if sp.mode == 0 {
        sp.mode = PRIV;
    }
    if !unpriv_res {
        sp.unpriv.fail = sp.priv_.fail;
    }
    if !unpriv_ret {
        sp.unpriv.retval = sp.priv_.retval;
        sp.unpriv.execute = sp.priv_.execute;
    }
    if sp.unpriv.msgs.is_empty() {
        sp.unpriv.msgs = sp.priv_.msgs.clone();
    }
    sp
}

/// A `__msg` pattern: text with `{{regex}}` parts (POSIX extended, lines).
fn pattern(msg: &str) -> Option<regex::Regex> {
    let mut re = String::from("(?m)");
    let mut rest = msg;
    let mut in_re = false;
    while !rest.is_empty() {
        if !in_re && rest.starts_with("{{") {
            in_re = true;
            rest = &rest[2..];
        } else if in_re && rest.starts_with("}}") {
            in_re = false;
            rest = &rest[2..];
        } else {
            let c = rest.chars().next()?;
            if in_re {
                re.push(c);
            } else {
                re.push_str(&regex::escape(&c.to_string()));
            }
            rest = &rest[c.len_utf8()..];
        }
    }
    regex::Regex::new(&re).ok()
}

/// The annotated messages appear in `log`, in order (`validate_msgs`).
fn msgs_match(log: &str, msgs: &[String]) -> bool {
    let mut at = 0;
    for m in msgs {
        if !m.contains("{{") {
            match log[at..].find(m.as_str()) {
                Some(i) => at += i + m.len(),
                None => return false,
            }
        } else {
            let Some(re) = pattern(m) else { return false };
            match re.find(&log[at..]) {
                Some(f) => at += f.end(),
                None => return false,
            }
        }
    }
    true
}

/// The host kernel's answer on one case (a line of `kernel.jsonl`).
#[derive(Clone, Debug)]
struct Answer {
    stage: String,
    load_ok: bool,
    errno: i64,
    retval: Option<i64>,
    msgs_ok: bool,
    log_tail: String,
    libbpf: String,
}

impl Answer {
    /// The kernel judged the program (not a loader failure before it, and not
    /// this host's blanket EPERM for tracing programs in a privileged run:
    /// without a log, or with one that says no instruction was looked at, as
    /// for verifier_sockmap_mutate's iter/sockmap program).
    fn judged(&self, mode: &str) -> bool {
        let walked = !self.log_tail.is_empty() && !self.log_tail.starts_with("processed 0 insns");
        self.stage == "verifier"
            && (self.load_ok || walked || mode == "unpriv" || self.errno != EPERM)
    }
}

type Key = (String, String, String);

fn read_answers(path: &Path) -> BTreeMap<Key, Answer> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let file = s("file").trim_end_matches(".o").to_string();
        out.insert(
            (file, s("prog"), s("mode")),
            Answer {
                stage: s("stage"),
                load_ok: v["load"] == "ok",
                errno: v["errno"].as_i64().unwrap_or(0),
                retval: v["retval"].as_i64(),
                msgs_ok: v["msgs_ok"].as_bool().unwrap_or(false),
                log_tail: s("log_tail"),
                libbpf: s("libbpf"),
            },
        );
    }
    out
}

/// bpfvm's answer on one case.
#[derive(Clone, Debug)]
struct Ours {
    ok: bool,
    log: String,
    /// The first line of the error, for the report.
    error: String,
    retval: Option<i64>,
}

/// Sets the map value the selftests set before these files' runs
/// (`init_test_val_map`): index = 7 * sizeof(int), foo[6] = 0xabcdef12.
fn pre_run(rt: &Runtime, file: &str, l: &LoadedObject) {
    let map = match file {
        "verifier_array_access" => "map_array_ro",
        "verifier_value_ptr_arith" => "map_array_48b",
        _ => return,
    };
    let Some(m) = l.map(map) else { return };
    let mut v = vec![0u8; 48];
    v[0..4].copy_from_slice(&28u32.to_le_bytes());
    v[4 + 24..4 + 28].copy_from_slice(&0xabcdef12u32.to_le_bytes());
    let _ = rt.map_update_elem(m, &0u32.to_le_bytes(), &v, 0);
}

fn run_case(file: &str, obj: &Object, specs: &[Spec], sp: &Spec, unpriv: bool, sub: &Sub) -> Ours {
    let execute = sub.execute;
    let mode = if unpriv { UNPRIV } else { PRIV };
    let mut programs = vec![sp.name.clone()];
    programs.extend(
        specs
            .iter()
            .filter(|s| s.aux && s.mode & mode != 0 && s.name != sp.name)
            .map(|s| s.name.clone()),
    );
    let load = |log_level: u32| {
        let rt = Runtime::with_cpus(1);
        let opts = LoadOpts {
            log_level,
            unprivileged: unpriv,
            prog_flags: sp.flags,
            programs: Some(programs.clone()),
            ..Default::default()
        };
        let r = rt.load_object_with(obj, None, &opts);
        (rt, r)
    };
    let (mut rt, mut r) = load(sp.log_level);
    // libbpf loads again at level 1 to have a log when a load without one
    // fails. Only the log comes from that second load, so it is done only
    // where the log is read (annotated messages, or a selection printing it):
    // a refusal after a million instructions costs seconds.
    let log_read = !sub.msgs.is_empty() || std::env::var_os("BPFVM_SELFTESTS_ONLY").is_some();
    if r.is_err() && sp.log_level == 0 && log_read {
        (rt, r) = load(1);
    }
    match r {
        Ok(l) => {
            let prog = l.prog(&sp.name).cloned();
            let log = prog
                .as_ref()
                .map(|p| p.obj().verifier_log.clone())
                .unwrap_or_default();
            let mut retval = None;
            let mut error = String::new();
            if let (true, Some(p)) = (execute, prog) {
                pre_run(&rt, file, &l);
                let syscall = p.obj().prog_type == bpfvm::ProgType::Syscall.as_u32();
                let attr = TestRunAttr {
                    prog_id: p.id(),
                    data_in: if syscall { Vec::new() } else { vec![0; 64] },
                    repeat: 1,
                    ..Default::default()
                };
                match rt.bpf(bpfvm::BpfCmd::ProgTestRun(attr)) {
                    Ok(bpfvm::BpfReply::TestRun(t)) => retval = Some(t.retval as i32 as i64),
                    Ok(other) => error = format!("test run: unexpected reply {other:?}"),
                    Err(e) => error = format!("test run: {}", error_chain(&e)),
                }
            }
            Ours {
                ok: true,
                log,
                error,
                retval,
            }
        }
        Err(e) => {
            let log = e.verifier_log().unwrap_or_default().to_string();
            let error = match &e {
                BpfError::Verifier { source, .. } => source.error.to_string(),
                other => error_chain(other),
            };
            Ours {
                ok: false,
                log,
                error,
                retval: None,
            }
        }
    }
}

/// One case's outcome.
struct Outcome {
    key: Key,
    judged: bool,
    kernel_ok: bool,
    ours: Ours,
    /// Some(found) where the kernel refused, both refused, and the annotated
    /// messages are in the kernel's own log.
    msgs: Option<bool>,
    /// Some(equal) where both ran the program.
    retval: Option<bool>,
    kernel: Answer,
    /// The annotation expects a refusal (`__failure`) in this mode.
    expect_fail: bool,
}

impl Outcome {
    fn diffs(&self) -> Vec<&'static str> {
        let mut d = Vec::new();
        if !self.judged {
            return d;
        }
        match (self.ours.ok, self.kernel_ok) {
            (true, false) => d.push("escape"),
            (false, true) => d.push("false-refusal"),
            _ => {}
        }
        if self.msgs == Some(false) {
            d.push("msg");
        }
        if self.retval == Some(false) {
            d.push("retval");
        }
        d
    }
}

/// One object of a set, parsed once for all its cases.
struct Prepared {
    file: String,
    /// The object, or why bpfvm cannot parse it.
    obj: Result<Object, String>,
    specs: Vec<Spec>,
}

fn prepare(path: &Path) -> Prepared {
    let file = path.file_stem().unwrap().to_string_lossy().to_string();
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match Object::parse(&path.to_string_lossy(), &bytes) {
        Ok(o) => {
            let btf = o.btf.as_ref().expect("selftest objects have BTF");
            let specs = o
                .programs
                .iter()
                .map(|p| parse_spec(btf, &p.name))
                .collect();
            Prepared {
                file,
                obj: Ok(o),
                specs,
            }
        }
        Err(e) => Prepared {
            file,
            obj: Err(error_chain(&e)),
            specs: Vec::new(),
        },
    }
}

/// Every case of the objects in `dir`, run on as many threads as there are
/// CPUs. The work is shared out case by case, not file by file: a few cases
/// take bpfvm's verifier many seconds, and their files' other cases need not
/// wait behind them. bpfvm's answer does not depend on the kernel's: a case
/// in `done` (the live comparison after the recorded one) is not run again.
fn evaluate(
    answers: &BTreeMap<Key, Answer>,
    dir: &Path,
    done: &BTreeMap<Key, Ours>,
) -> Vec<Outcome> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    files.sort();
    let prepared: Vec<Prepared> = files.iter().map(|p| prepare(p)).collect();
    // The cases come from the kernel's answers (one per program and mode), so
    // an object bpfvm cannot parse still has its cases counted.
    let only = std::env::var("BPFVM_SELFTESTS_ONLY").ok();
    let by_file: BTreeMap<&str, &Prepared> =
        prepared.iter().map(|p| (p.file.as_str(), p)).collect();
    let cases: Vec<(&Prepared, &Key, &Answer)> = answers
        .iter()
        .filter(|(k, _)| only.as_deref().is_none_or(|o| selected(o, k)))
        .filter_map(|(k, a)| by_file.get(k.0.as_str()).map(|p| (*p, k, a)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((p, key, ans)) = cases.get(i) else {
                    break;
                };
                let out = evaluate_case(p, key, ans, done.get(*key));
                results.lock().unwrap().push(out);
            });
        }
    });
    let mut r = results.into_inner().unwrap();
    r.sort_by(|a, b| a.key.cmp(&b.key));
    r
}

/// `BPFVM_SELFTESTS_ONLY=FILE[:PROG]`: one file, or one program of it.
fn selected(only: &str, k: &Key) -> bool {
    match only.split_once(':') {
        Some((f, p)) => k.0 == f && k.1 == p,
        None => k.0 == only,
    }
}

fn evaluate_case(p: &Prepared, key: &Key, ans: &Answer, done: Option<&Ours>) -> Outcome {
    let unpriv = key.2 == "unpriv";
    let judged = ans.judged(&key.2);
    let spec = p.specs.iter().find(|s| s.name == key.1);
    let sub = spec
        .map(|s| {
            if unpriv {
                s.unpriv.clone()
            } else {
                s.priv_.clone()
            }
        })
        .unwrap_or_default();
    let ours = match (done, &p.obj, spec) {
        (Some(o), _, _) => o.clone(),
        (None, Ok(o), Some(sp)) => run_case(&p.file, o, &p.specs, sp, unpriv, &sub),
        (None, Ok(_), None) => Ours {
            ok: false,
            log: String::new(),
            error: format!("program '{}' not found in the object", key.1),
            retval: None,
        },
        (None, Err(e), _) => Ours {
            ok: false,
            log: String::new(),
            error: e.clone(),
            retval: None,
        },
    };
    let sub_msgs = &sub.msgs;
    let msgs = (judged && !ans.load_ok && !ours.ok && !sub_msgs.is_empty() && ans.msgs_ok)
        .then(|| msgs_match(&ours.log, sub_msgs));
    // A program returning a pointer (`__retval(POINTER_VALUE)`) is not
    // compared, as in the selftests: the value is an address.
    let pointer = sub.retval == POINTER_VALUE;
    let retval = match (ans.retval, ours.retval) {
        (_, _) if pointer => None,
        (Some(k), Some(o)) if judged => Some(k == o),
        (Some(_), None) if judged && ours.ok => Some(false),
        _ => None,
    };
    Outcome {
        key: key.clone(),
        judged,
        kernel_ok: ans.load_ok,
        ours,
        msgs,
        retval,
        kernel: ans.clone(),
        expect_fail: sub.fail,
    }
}

#[derive(Default)]
struct Tally {
    cases: usize,
    judged: usize,
    agree: usize,
    escapes: usize,
    false_refusals: usize,
    msgs: usize,
    msgs_found: usize,
    retvals: usize,
    retvals_equal: usize,
}

impl Tally {
    fn add(&mut self, o: &Outcome) {
        self.cases += 1;
        if !o.judged {
            return;
        }
        self.judged += 1;
        match (o.ours.ok, o.kernel_ok) {
            (true, false) => self.escapes += 1,
            (false, true) => self.false_refusals += 1,
            _ => self.agree += 1,
        }
        if let Some(f) = o.msgs {
            self.msgs += 1;
            self.msgs_found += f as usize;
        }
        if let Some(e) = o.retval {
            self.retvals += 1;
            self.retvals_equal += e as usize;
        }
    }

    fn row(&self, name: &str) -> String {
        format!(
            "{name:<44} {:>5} {:>6} {:>6} {:>6} {:>6} {:>9} {:>9}",
            self.cases,
            self.judged,
            self.agree,
            self.escapes,
            self.false_refusals,
            format!("{}/{}", self.msgs_found, self.msgs),
            format!("{}/{}", self.retvals_equal, self.retvals),
        )
    }
}

fn report(outcomes: &[Outcome], title: &str, against: &str) -> String {
    let mut per_file: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    for o in outcomes {
        per_file.entry(o.key.0.as_str()).or_default().add(o);
        total.add(o);
    }
    let mut s = String::new();
    let _ = writeln!(s, "{title} against {against}");
    let _ = writeln!(
        s,
        "{:<44} {:>5} {:>6} {:>6} {:>6} {:>6} {:>9} {:>9}",
        "file", "cases", "judged", "agree", "escape", "refuse", "msgs", "retval"
    );
    for (f, t) in &per_file {
        let _ = writeln!(s, "{}", t.row(f));
    }
    let _ = writeln!(s, "{}", total.row("total"));
    let pct = |a: usize, b: usize| {
        if b == 0 {
            100.0
        } else {
            100.0 * a as f64 / b as f64
        }
    };
    let _ = writeln!(
        s,
        "verdicts equal {}/{} ({:.1}%), escapes {}, false refusals {}, messages found {}/{} ({:.1}%), retvals equal {}/{}; {} cases the host could not judge",
        total.agree,
        total.judged,
        pct(total.agree, total.judged),
        total.escapes,
        total.false_refusals,
        total.msgs_found,
        total.msgs,
        pct(total.msgs_found, total.msgs),
        total.retvals_equal,
        total.retvals,
        total.cases - total.judged
    );
    s
}

fn first_line(s: &str) -> &str {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with("processed "))
        .unwrap_or("")
}

fn diff_lines(outcomes: &[Outcome]) -> BTreeSet<String> {
    outcomes
        .iter()
        .flat_map(|o| {
            o.diffs()
                .into_iter()
                .map(move |d| format!("{} {} {} {d}", o.key.0, o.key.1, o.key.2))
        })
        .collect()
}

fn describe(o: &Outcome) -> String {
    let kernel = if o.kernel_ok {
        "kernel accepts".to_string()
    } else {
        format!("kernel refuses: {}", first_line(&o.kernel.log_tail))
    };
    let ours = if o.ours.ok {
        format!(
            "bpfvm accepts{}",
            if o.ours.error.is_empty() {
                String::new()
            } else {
                format!(" ({})", o.ours.error)
            }
        )
    } else {
        format!("bpfvm refuses: {}", o.ours.error)
    };
    let mut s = format!("{kernel}; {ours}");
    if let (Some(false), Some(k)) = (o.retval, o.kernel.retval) {
        let _ = write!(s, "; retval kernel {k}, bpfvm {:?}", o.ours.retval);
    }
    if !o.kernel.libbpf.is_empty() && !o.kernel_ok && o.kernel.log_tail.is_empty() {
        let _ = write!(s, " [{}]", o.kernel.libbpf);
    }
    s
}

/// A set of selftest objects with its recorded answers and known differences.
struct Set {
    title: &'static str,
    /// Under the repository: `obj/`, `kernel.jsonl`, `known-diffs.txt`.
    dir: &'static str,
    /// How BPFVM_BLESS introduces the known-diffs file.
    header: &'static str,
}

const SETS: [Set; 2] = [
    Set {
        title: "verifier selftests (Linux 6.12)",
        dir: "tests/selftests",
        header: "# Cases where bpfvm and the host kernel (tests/selftests/kernel.jsonl) differ:\n\
                 # FILE PROG MODE KIND, KIND one of escape (bpfvm accepts what the kernel\n\
                 # refuses), false-refusal, msg (annotated message missing from bpfvm's log),\n\
                 # retval. Written by BPFVM_BLESS=1 cargo test -p bpfvm --test selftests.\n",
    },
    Set {
        title: "test_loader RUN_TESTS selftests (Linux 6.12)",
        dir: "tests/selftests/runtests",
        header: "# Cases where bpfvm and the host kernel (tests/selftests/runtests/kernel.jsonl)\n\
                 # differ: FILE PROG MODE KIND, KIND one of escape (bpfvm accepts what the\n\
                 # kernel refuses), false-refusal, msg (annotated message missing from bpfvm's\n\
                 # log), retval. Written by BPFVM_BLESS=1 cargo test -p bpfvm --test selftests.\n\
                 # The escapes are listed so that the verifier can be fixed one at a time: the\n\
                 # test prints them as ESCAPE lines on every run. Remove them as they are fixed.\n",
    },
];

/// What one set's run found that fails the test.
#[derive(Default)]
struct Verdict {
    new: usize,
    gone: usize,
    live_escapes: Vec<String>,
}

fn check_set(set: &Set, live: Option<&BTreeMap<Key, Answer>>, summary: &mut String) -> Verdict {
    let base = repo().join(set.dir);
    let obj_dir = base.join("obj");
    let answers = read_answers(&base.join("kernel.jsonl"));
    let outcomes = evaluate(&answers, &obj_dir, &BTreeMap::new());
    let text = report(&outcomes, set.title, "the recorded answers of Linux 6.18");
    print!("{text}");
    summary.push_str(&text);

    // A selection prints bpfvm's logs and checks nothing.
    if std::env::var_os("BPFVM_SELFTESTS_ONLY").is_some() {
        for o in &outcomes {
            println!(
                "== {} {} {}: {}\n{}",
                o.key.0,
                o.key.1,
                o.key.2,
                describe(o),
                o.ours.log
            );
        }
        return Verdict::default();
    }
    let now = diff_lines(&outcomes);
    let known_path = base.join("known-diffs.txt");
    let known = known_diffs::bless_or_read(&known_path, set.header, &now);
    let by_line: BTreeMap<String, &Outcome> = outcomes
        .iter()
        .flat_map(|o| {
            o.diffs()
                .into_iter()
                .map(move |d| (format!("{} {} {} {d}", o.key.0, o.key.1, o.key.2), o))
        })
        .collect();
    let verbose = std::env::var_os("BPFVM_SELFTESTS_VERBOSE").is_some();
    // Escapes are never quiet, listed or not.
    let mut escapes = 0;
    for l in &now {
        let escape = l.ends_with(" escape");
        escapes += escape as usize;
        if escape {
            println!(
                "ESCAPE {}{l}: {}",
                if known.contains(l) { "" } else { "NEW " },
                describe(by_line[l])
            );
        } else if verbose || !known.contains(l) {
            println!(
                "{}{l}: {}",
                if known.contains(l) { "" } else { "NEW " },
                describe(by_line[l])
            );
        }
    }
    if escapes > 0 {
        let line = format!(
            "ESCAPES: {escapes} cases of {} that bpfvm accepts and the kernel refuses\n",
            set.title
        );
        print!("{line}");
        summary.push_str(&line);
    }
    // Where the host could not judge (a bpf_testmod kfunc, its blanket EPERM),
    // the annotation still says what Linux 6.12 does: a program it refuses
    // and bpfvm accepts is a likely escape. Informational: nothing to compare.
    let unjudged: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !o.judged && o.expect_fail && o.ours.ok)
        .collect();
    for o in &unjudged {
        println!(
            "UNJUDGED {} {} {}: annotated __failure, bpfvm accepts; the host: {}",
            o.key.0,
            o.key.1,
            o.key.2,
            if o.kernel.libbpf.is_empty() {
                o.kernel.stage.as_str()
            } else {
                o.kernel.libbpf.as_str()
            }
        );
    }
    if !unjudged.is_empty() {
        let line = format!(
            "{} cases of {} the host could not judge are annotated __failure and accepted by bpfvm (UNJUDGED lines)\n",
            unjudged.len(),
            set.title
        );
        print!("{line}");
        summary.push_str(&line);
    }
    let new: Vec<&String> = now.difference(&known).collect();
    let gone: Vec<&String> = known.difference(&now).collect();
    for l in &gone {
        println!(
            "FIXED (remove from {}): {l}",
            known_path
                .strip_prefix(repo())
                .unwrap_or(&known_path)
                .display()
        );
    }

    let mut live_escapes = Vec::new();
    if let Some(live) = live {
        let changed = live
            .iter()
            .filter(|(k, _)| obj_dir.join(format!("{}.o", k.0)).exists())
            .filter(|(k, a)| answers.get(*k).is_none_or(|g| g.load_ok != a.load_ok))
            .count();
        let done: BTreeMap<Key, Ours> = outcomes
            .iter()
            .map(|o| (o.key.clone(), o.ours.clone()))
            .collect();
        let live_outcomes = evaluate(live, &obj_dir, &done);
        let live_report = report(&live_outcomes, set.title, "the live host kernel");
        print!("{live_report}");
        println!("{changed} verdicts of the live kernel differ from the recorded ones");
        summary.push_str(&live_report);
        let _ = writeln!(
            summary,
            "{changed} verdicts of the live kernel differ from the recorded ones"
        );
        live_escapes = live_outcomes
            .iter()
            .filter(|o| o.diffs().contains(&"escape"))
            .map(|o| format!("{} {} {} escape", o.key.0, o.key.1, o.key.2))
            .filter(|l| !known.contains(l))
            .collect();
    }
    Verdict {
        new: new.len(),
        gone: gone.len(),
        live_escapes,
    }
}

#[test]
fn kernel_verifier_selftests() {
    let live = std::env::var_os("BPFVM_SELFTESTS_LIVE").map(|p| read_answers(Path::new(&p)));
    let mut summary = String::new();
    let verdicts: Vec<Verdict> = SETS
        .iter()
        .map(|set| check_set(set, live.as_ref(), &mut summary))
        .collect();
    // The table is long; scripts/test.sh prints this file after the tests.
    let _ = std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("selftests-report.txt"),
        &summary,
    );
    let live_escapes: Vec<&String> = verdicts.iter().flat_map(|v| &v.live_escapes).collect();
    assert!(
        live_escapes.is_empty(),
        "bpfvm accepts programs the live kernel refuses: {live_escapes:#?}"
    );
    let new: usize = verdicts.iter().map(|v| v.new).sum();
    let gone: usize = verdicts.iter().map(|v| v.gone).sum();
    assert!(
        new == 0 && gone == 0,
        "{new} new differences, {gone} listed differences gone (BPFVM_BLESS=1 to re-list after review)"
    );
}
