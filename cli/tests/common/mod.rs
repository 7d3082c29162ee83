//! Test harness: the real `bpfvm` binary with a temporary state directory; the
//! daemon it starts is stopped when the harness goes (and killed if it will not).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

pub struct Env {
    pub dir: tempfile::TempDir,
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(self) -> Out {
        assert_eq!(
            self.code, 0,
            "command failed: stdout {:?} stderr {:?}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::Builder::new()
                .prefix("bpfvm-t")
                .tempdir_in("/tmp")
                .expect("tempdir"),
        }
    }

    pub fn state(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bpfvm"));
        c.env("BPFVM_STATE_DIR", self.state())
            .current_dir(fixtures())
            .stdin(Stdio::null());
        c
    }

    /// Runs `bpfvm ARGS` from tests/fixtures.
    pub fn run(&self, args: &[&str]) -> Out {
        let o: Output = self.cmd().args(args).output().expect("run bpfvm");
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    pub fn daemon_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.state().join("daemon.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    pub fn stop(&self) {
        let pid = self.daemon_pid();
        let _ = self.run(&["daemon", "stop"]);
        if let Some(pid) = pid {
            // SAFETY: signal 0 only probes; SIGKILL is sent to the daemon we started.
            if unsafe { libc::kill(pid, 0) } == 0 {
                std::thread::sleep(std::time::Duration::from_millis(200));
                if unsafe { libc::kill(pid, 0) } == 0 {
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Compares with a golden file under cli/tests/golden; `BPFVM_BLESS=1` rewrites it.
pub fn golden(name: &str, actual: &str) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("BPFVM_BLESS").is_some() {
        std::fs::write(&p, actual).expect("bless");
        return;
    }
    let expected = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run with BPFVM_BLESS=1 to create it)", p.display()));
    if expected != actual {
        for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
            assert_eq!(e, a, "{name}: line {} differs", i + 1);
        }
        panic!("{name}: differs in length\nexpected:\n{expected}\nactual:\n{actual}");
    }
}

/// Masks what changes from run to run: `loaded_at` times, and the size of the JIT's
/// code (it embeds host addresses, whose encodings vary in length).
pub fn mask_times(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let line = &mask_jited(line);
        let l = if let Some(i) = line.find("loaded_at ") {
            let rest = &line[i + 10..];
            let end = rest.find(' ').unwrap_or(rest.len());
            format!("{}loaded_at TIME{}", &line[..i], &rest[end..])
        } else if let Some(i) = line.find("\"loaded_at\":") {
            let rest = &line[i + 12..];
            let end = rest.find([',', '}']).unwrap_or(rest.len());
            format!("{}\"loaded_at\":TIME{}", &line[..i], &rest[end..])
        } else {
            line.to_string()
        };
        out.push_str(&l);
        out.push('\n');
    }
    out
}

fn mask_jited(line: &str) -> String {
    for key in ["jited ", "\"bytes_jited\": ", "\"bytes_jited\":"] {
        if let Some(i) = line.find(key) {
            let rest = &line[i + key.len()..];
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if end > 0 {
                return format!("{}{key}N{}", &line[..i], &rest[end..]);
            }
        }
    }
    line.to_string()
}

pub fn kernel_golden(obj: &str) -> serde_json::Value {
    let p = root()
        .join("tests/golden/kernel")
        .join(format!("{obj}.json"));
    serde_json::from_str(&std::fs::read_to_string(p).expect("kernel golden")).expect("json")
}
