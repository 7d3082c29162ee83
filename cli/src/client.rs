//! The client side: find the state directory, reach the daemon (starting it in the
//! background when it is not running), send one request, print the reply as
//! bpftool would.

use crate::proto::{self, Command, Format, Request, Response};
use crate::Opts;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a client waits for a daemon it started to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The state directory: `--state-dir`, `$BPFVM_STATE_DIR`, `$XDG_RUNTIME_DIR/bpfvm`,
/// `~/.local/state/bpfvm`, else `/tmp/bpfvm-$UID`; always absolute.
pub fn state_dir(opts: &Opts) -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let dir = opts
        .state_dir
        .as_ref()
        .map(PathBuf::from)
        .or_else(|| env("XDG_RUNTIME_DIR").map(|d| d.join("bpfvm")))
        .or_else(|| env("HOME").map(|h| h.join(".local/state/bpfvm")))
        .unwrap_or_else(|| {
            // SAFETY: getuid has no preconditions.
            PathBuf::from(format!("/tmp/bpfvm-{}", unsafe { libc::getuid() }))
        });
    absolute(&dir)
}

/// `p` made absolute against the current directory (not resolving links).
pub fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    std::env::current_dir()
        .map(|c| c.join(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

fn connect(dir: &Path) -> std::io::Result<UnixStream> {
    UnixStream::connect(dir.join("sock"))
}

/// Starts `bpfvm daemon` for `dir`, detached: its own session, stdin from
/// /dev/null, stdout and stderr to `daemon.log` (never the caller's streams, which
/// scripts and CI wait on).
fn spawn_daemon(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("state directory {}: {e}", dir.display()))?;
    let _ = std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("daemon.log"))
        .map_err(|e| format!("daemon log in {}: {e}", dir.display()))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the bpfvm binary: {e}"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--state-dir")
        .arg(dir)
        .arg("daemon")
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2)
        .current_dir("/");
    // SAFETY: setsid is async-signal-safe; it detaches the daemon from the
    // caller's session and terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| format!("cannot start the daemon: {e}"))?;
    Ok(())
}

/// A connection to the daemon of `dir`, started if needed.
pub fn connect_or_start(dir: &Path) -> Result<UnixStream, String> {
    if let Ok(s) = connect(dir) {
        return Ok(s);
    }
    spawn_daemon(dir)?;
    let start = Instant::now();
    loop {
        match connect(dir) {
            Ok(s) => return Ok(s),
            Err(e) if start.elapsed() > START_TIMEOUT => {
                let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
                let last = log.lines().last().unwrap_or("").to_string();
                return Err(format!(
                    "the daemon did not start in {}s ({e}); last line of {}: {last}",
                    START_TIMEOUT.as_secs(),
                    dir.join("daemon.log").display()
                ));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// One request/reply exchange on an open connection.
pub fn exchange(s: &mut UnixStream, req: &Request) -> Result<Response, String> {
    let body = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    proto::write_frame(s, &body)
        .map_err(|e| format!("sending to the daemon: {}", crate::render::error_chain(&e)))?;
    let reply = proto::read_frame(s, proto::MAX_MESSAGE).map_err(|e| {
        format!(
            "reading the daemon's reply: {}",
            crate::render::error_chain(&e)
        )
    })?;
    proto::decode_response(&reply).map_err(|e| format!("daemon reply: {e}"))
}

pub fn format_of(opts: &Opts) -> Format {
    match (opts.json, opts.pretty) {
        (_, true) => Format::Pretty,
        (true, false) => Format::Json,
        _ => Format::Plain,
    }
}

/// Sends `cmd` to the daemon (starting it if needed).
pub fn call(opts: &Opts, cmd: Command) -> Result<Response, String> {
    let dir = state_dir(opts);
    let mut s = connect_or_start(&dir)?;
    let req = Request::new(format_of(opts), cmd);
    if opts.debug {
        let mut text = serde_json::to_string(&req).unwrap_or_default();
        if text.len() > 300 {
            text.truncate(text.char_indices().nth(300).map_or(text.len(), |(i, _)| i));
            text.push_str("...");
        }
        eprintln!("bpfvm: state directory {}, request {text}", dir.display());
    }
    let r = exchange(&mut s, &req)?;
    if opts.debug {
        eprintln!("bpfvm: reply ok={} exit={}", r.ok, r.exit);
    }
    Ok(r)
}

/// Prints an error as bpftool does: `Error: ...` on stderr, or `{"error":"..."}`
/// on stdout in JSON mode. Returns bpftool's exit status (255).
pub fn print_error(opts: &Opts, msg: &str) -> i32 {
    if opts.json {
        let v = serde_json::json!({ "error": msg });
        print!("{}", crate::render::json(format_of(opts), &v));
    } else {
        eprintln!("Error: {msg}");
    }
    255
}

/// Prints a reply; returns the exit status.
pub fn print_response(opts: &Opts, r: &Response) -> i32 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(r.stdout.as_bytes());
    if r.ok && opts.json && r.stdout.is_empty() && r.data.is_none() {
        // bpftool prints `null` for commands without output in JSON mode.
        let _ = out.write_all(b"null\n");
    }
    let _ = out.flush();
    if let Some(note) = r
        .data
        .as_ref()
        .and_then(|d| d.get("note"))
        .and_then(|n| n.as_str())
    {
        eprintln!("{note}");
    }
    if r.ok {
        return 0;
    }
    match &r.error {
        Some(e) => {
            print_error(opts, e);
            if r.exit == 0 {
                255
            } else {
                r.exit
            }
        }
        None => r.exit,
    }
}

/// Sends `cmd` and prints the reply.
pub fn run(opts: &Opts, cmd: Command) -> i32 {
    match call(opts, cmd) {
        Ok(r) => print_response(opts, &r),
        Err(e) => print_error(opts, &e),
    }
}

/// `bpfvm daemon stop`: asks the daemon to save and exit, waits until it has.
pub fn stop(opts: &Opts) -> i32 {
    let dir = state_dir(opts);
    let Ok(mut s) = connect(&dir) else {
        eprintln!("bpfvm: no daemon running for {}", dir.display());
        return 0;
    };
    let pid = std::fs::read_to_string(dir.join("daemon.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok());
    if let Err(e) = exchange(&mut s, &Request::new(Format::Plain, Command::Shutdown)) {
        return print_error(opts, &format!("stopping the daemon: {e}"));
    }
    // Wait for the process to be gone, so a new daemon can take the directory.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        // SAFETY: kill with signal 0 only checks that the process exists.
        let alive = pid.is_some_and(|p| unsafe { libc::kill(p, 0) } == 0);
        if !alive && connect(&dir).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    0
}

/// `bpfvm daemon status`.
pub fn status(opts: &Opts) -> i32 {
    let dir = state_dir(opts);
    match connect(&dir) {
        Ok(mut s) => match exchange(&mut s, &Request::new(Format::Plain, Command::Ping)) {
            Ok(_) => {
                let pid = std::fs::read_to_string(dir.join("daemon.pid")).unwrap_or_default();
                println!(
                    "running: pid {}, state directory {}",
                    pid.trim(),
                    dir.display()
                );
                0
            }
            Err(e) => print_error(opts, &e),
        },
        Err(_) => {
            println!("not running (state directory {})", dir.display());
            1
        }
    }
}
