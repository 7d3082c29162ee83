//! Shared by the tests that ask the host kernel about fixture objects
//! (tests/fixtures/obj): `bpftool prog loadall` of a whole object, pinned
//! under a name of this process and removed again.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use bpfvm::{LoadOpts, Object, Runtime};
use std::path::{Path, PathBuf};
use std::process::Command;

/// tests/fixtures/obj/`name`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/obj")
        .join(name)
}

/// Map ids differ between two loads.
pub fn without_map_ids(xlated: &str) -> String {
    let mut out = String::new();
    let mut rest = xlated;
    while let Some(i) = rest.find("map[id:") {
        out.push_str(&rest[..i + 7]);
        rest = rest[i + 7..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// The kernel's verdict on a whole object (every program of these objects
/// shares one): Ok((program, tag, xlated)...) or Err((errno, libbpf's output)).
#[allow(clippy::type_complexity)]
pub fn kernel_load(object: &str) -> Result<Vec<(String, String, String)>, (i32, String)> {
    let pin = PathBuf::from(format!(
        "/sys/fs/bpf/bpfvm_fixture_{}_{}",
        std::process::id(),
        object.trim_end_matches(".o")
    ));
    let out = Command::new("bpftool")
        .args(["prog", "loadall"])
        .arg(fixture(object))
        .arg(&pin)
        .output()
        .expect("run bpftool");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&pin);
        let errno = text
            .lines()
            .find_map(|l| {
                let l = l.trim_end();
                l.contains("failed to load: -")
                    .then(|| l.rsplit('-').next()?.parse::<i32>().ok())
                    .flatten()
            })
            .unwrap_or(0);
        return Err((errno, text));
    }
    let mut tags = Vec::new();
    for e in std::fs::read_dir(&pin).expect("pins").flatten() {
        let show = Command::new("bpftool")
            .args(["prog", "show", "pinned"])
            .arg(e.path())
            .arg("-j")
            .output()
            .expect("bpftool prog show");
        let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap_or_default();
        let xlated = Command::new("bpftool")
            .args(["prog", "dump", "xlated", "pinned"])
            .arg(e.path())
            .output()
            .expect("bpftool prog dump xlated");
        tags.push((
            e.file_name().to_string_lossy().into_owned(),
            v["tag"].as_str().unwrap_or_default().to_string(),
            String::from_utf8_lossy(&xlated.stdout).into_owned(),
        ));
        let _ = std::fs::remove_file(e.path());
    }
    let _ = std::fs::remove_dir(&pin);
    Ok(tags)
}

/// A verdict the kernel gave on a fixture program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    Accepted,
    /// errno and a line the verifier log (or libbpf) has.
    Refused(i32, &'static str),
}

/// A verdict: accepted, or refused with errno and the message and log.
pub type Verdict = Result<(), (i32, String)>;

/// One row of a verdict table: a program of a fixture object and what the
/// host kernel said of it.
pub struct VerdictCase {
    pub object: &'static str,
    pub program: &'static str,
    pub expected: Expected,
    /// Where bpfvm stops at another refusal of the same program (its paths
    /// are explored in another order), the line it prints instead.
    pub ours: Option<&'static str>,
}

/// The rows where bpfvm's load disagrees with the table.
pub fn bpfvm_verdict_failures(rt: &Runtime, cases: &[VerdictCase]) -> Vec<String> {
    let mut failures = Vec::new();
    for c in cases {
        let got = bpfvm_load(rt, c.object, c.program).0;
        match (c.expected, &got) {
            (Expected::Accepted, Ok(())) => {}
            (Expected::Refused(errno, line), Err((e, text)))
                if *e == errno && text.contains(c.ours.unwrap_or(line)) => {}
            _ => failures.push(format!(
                "{} {}: expected {:?}, bpfvm {got:?}",
                c.object, c.program, c.expected
            )),
        }
    }
    failures
}

/// The rows where the host kernel now disagrees with the table (each
/// object loaded once with `bpftool prog loadall`); None: it cannot be
/// asked (printed).
pub fn host_verdict_failures(cases: &[VerdictCase]) -> Option<Vec<String>> {
    if let Some(why) = bpfvm_testsupport::bpftool_unavailable() {
        eprintln!("skipping the host kernel comparison: {why}");
        return None;
    }
    let mut failures = Vec::new();
    let mut objects: Vec<&str> = cases.iter().map(|c| c.object).collect();
    objects.dedup();
    for object in objects {
        let kernel = kernel_load(object);
        for c in cases.iter().filter(|c| c.object == object) {
            let agrees = match (&kernel, c.expected) {
                (Ok(progs), Expected::Accepted) => progs.iter().any(|(n, _, _)| n == c.program),
                (Err((e, text)), Expected::Refused(errno, line)) => {
                    *e == errno && text.contains(line)
                }
                _ => false,
            };
            if !agrees {
                failures.push(format!(
                    "{object} {}: recorded {:?}, the host kernel now: {kernel:?}",
                    c.program, c.expected
                ));
            }
        }
    }
    Some(failures)
}

/// bpfvm's return value for program `name` of `obj`, loaded alone and run once
/// on `packet`; Err: the load's error and verifier log, or the run's error.
pub fn bpfvm_retval(rt: &Runtime, obj: &Object, name: &str, packet: &[u8]) -> Result<u32, String> {
    let opts = LoadOpts {
        programs: Some(vec![name.to_string()]),
        ..Default::default()
    };
    let l = rt
        .load_object_with(obj, None, &opts)
        .map_err(|e| format!("{e}: {:?}", e.verifier_log()))?;
    let p = l.prog(name).ok_or("program missing")?;
    let r = rt.run_packet(p, packet).map_err(|e| e.to_string())?;
    Ok(r.retval as u32)
}

/// bpfvm's verdict, and the program's tag and xlated listing when accepted.
pub fn bpfvm_load(
    rt: &Runtime,
    object: &str,
    program: &str,
) -> (Verdict, Option<(String, String)>) {
    let obj = Object::open(fixture(object)).unwrap_or_else(|e| panic!("{object}: {e}"));
    let opts = LoadOpts {
        programs: Some(vec![program.to_string()]),
        log_level: 1,
        ..Default::default()
    };
    match rt.load_object_with(&obj, None, &opts) {
        Ok(l) => {
            let tag = l.prog(program).map(|p| {
                (
                    bpfvm::tag::tag_hex(&p.obj().tag),
                    bpfvm::xlated::dump_xlated(p.obj(), &Default::default()),
                )
            });
            (Ok(()), tag)
        }
        Err(e) => {
            let mut text = e.to_string();
            if let Some(log) = e.verifier_log() {
                text.push('\n');
                text.push_str(log);
            }
            (Err((e.errno(), text)), None)
        }
    }
}

/// The host kernel's return value for each of `progs` of the object at
/// `path`, each run once on `packet` (`bpftool prog loadall` and `prog run`,
/// pinned under a name of this process and removed again); Err: why the
/// kernel cannot be asked, or its refusal of the object.
pub fn kernel_retvals(
    path: &Path,
    packet: &[u8],
    progs: &[&str],
) -> Result<Vec<Option<u32>>, String> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let bpftool = Command::new("bpftool")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !root || !bpftool || !Path::new("/sys/fs/bpf").is_dir() {
        return Err("asking the host kernel needs root, bpftool and /sys/fs/bpf".into());
    }
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let dir = format!("/sys/fs/bpf/bpfvm_retvals_{}_{stem}", std::process::id());
    let pkt = std::env::temp_dir().join(format!("bpfvm_retvals_{}_{stem}", std::process::id()));
    std::fs::write(&pkt, packet).map_err(|e| format!("{}: {e}", pkt.display()))?;
    let load = Command::new("bpftool")
        .args(["prog", "loadall"])
        .arg(path)
        .arg(&dir)
        .output()
        .expect("bpftool");
    if !load.status.success() {
        let _ = std::fs::remove_file(&pkt);
        return Err(format!(
            "the host kernel refused {}: {}",
            path.display(),
            String::from_utf8_lossy(&load.stderr)
        ));
    }
    let got = progs
        .iter()
        .map(|name| {
            let out = Command::new("bpftool")
                .args(["prog", "run", "pinned", &format!("{dir}/{name}")])
                .arg("data_in")
                .arg(&pkt)
                .output()
                .expect("bpftool");
            String::from_utf8_lossy(&out.stdout)
                .split("Return value: ")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .and_then(|s| s.trim().parse::<u32>().ok())
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&pkt);
    Ok(got)
}
