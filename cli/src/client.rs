//! The client side: find the state directory, reach the daemon (starting it in the
//! background when it is not running), send one request, print the reply as
//! bpftool would.

use crate::proto::{self, Command, Format, Request, Response};
use crate::safefs::Dir;
use crate::Opts;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a client waits for a daemon it started to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The state directory: `--state-dir`, `$BPFVM_STATE_DIR`, `$XDG_RUNTIME_DIR/bpfvm`,
/// `~/.local/state/bpfvm`, else `/tmp/bpfvm-$UID`; always absolute. (Whichever
/// it is, it is used only if it passes [`Dir::open_state`]'s checks.)
pub fn state_dir(opts: &Opts) -> Result<PathBuf, String> {
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
            PathBuf::from(format!("/tmp/bpfvm-{}", unsafe { libc::geteuid() }))
        });
    Ok(absolute(&dir))
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

/// Why there is no connection.
enum NoConn {
    /// No daemon listens there (no socket, or a stale one).
    NotRunning(String),
    /// The daemon's backlog is full.
    Busy,
    /// Something is there that must not be talked to.
    Refused(String),
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// Connects to `sock` in the trusted directory `dir`, after checking that it is a
/// socket of ours, and then that the process listening is ours (SO_PEERCRED): no
/// other user's daemon can receive our requests.
fn connect(dir: &Dir) -> Result<UnixStream, NoConn> {
    let path = dir.path().join("sock");
    let Some(st) = dir.stat("sock") else {
        return Err(NoConn::NotRunning(format!(
            "no socket at {}",
            path.display()
        )));
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        // Not a socket (a leftover in our own directory): no daemon there; one
        // started now replaces it.
        return Err(NoConn::NotRunning(format!(
            "{} is not a socket",
            path.display()
        )));
    }
    if st.st_uid != euid() {
        return Err(NoConn::Refused(format!(
            "{} is not a socket owned by uid {} (you): refusing to use it",
            path.display(),
            euid()
        )));
    }
    let target = dir.proc_path("sock");
    let bytes = target.as_os_str().as_encoded_bytes();
    // SAFETY: socket has no preconditions; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(NoConn::NotRunning(
            std::io::Error::last_os_error().to_string(),
        ));
    }
    // SAFETY: fd was just created and is owned here.
    let s = unsafe { UnixStream::from_raw_fd(fd) };
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if bytes.len() >= addr.sun_path.len() {
        return Err(NoConn::NotRunning("socket path too long".into()));
    }
    for (d, b) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *b as libc::c_char;
    }
    // SAFETY: addr is a valid sockaddr_un of the given size.
    let r = unsafe {
        libc::connect(
            s.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EAGAIN) => NoConn::Busy,
            _ => NoConn::NotRunning(format!("{}: {e}", path.display())),
        });
    }
    let _ = s.set_nonblocking(false);
    match crate::daemon::peer_uid(&s) {
        Some(u) if u == euid() => Ok(s),
        other => Err(NoConn::Refused(format!(
            "the daemon at {} runs as uid {}, not uid {} (you): refusing to talk to it",
            path.display(),
            other.map_or("?".to_string(), |u| u.to_string()),
            euid()
        ))),
    }
}

/// Starts `bpfvm daemon` for `dir`, detached: its own session, stdin from
/// /dev/null, stdout and stderr to `daemon.log` (never the caller's streams, which
/// scripts and CI wait on).
fn spawn_daemon(dir: &Dir) -> Result<std::process::Child, String> {
    let log = dir
        .open_append("daemon.log")
        .map_err(|e| format!("daemon log: {}", crate::render::error_chain(&e)))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the bpfvm binary: {e}"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--state-dir")
        .arg(dir.path())
        .arg("daemon")
        .arg("start")
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
        .map_err(|e| format!("cannot start the daemon: {e}"))
}

/// The state directory, checked (and made when `create`): an error names the
/// path and why it is not trusted.
pub fn open_state(dir: &Path, create: bool) -> Result<Dir, String> {
    Dir::open_state(dir, create).map_err(|e| crate::render::error_chain(&e))
}

/// The last line of `daemon.log` (for errors about a daemon that did not start).
fn last_log_line(dir: &Dir) -> String {
    let log = dir.read_capped("daemon.log", 16 << 20).unwrap_or_default();
    String::from_utf8_lossy(&log)
        .lines()
        .last()
        .unwrap_or("")
        .to_string()
}

/// A connection to the daemon of `dir`, started if needed. A busy daemon is
/// retried with backoff up to [`BUSY_TIMEOUT`].
pub fn connect_or_start(path: &Path) -> Result<UnixStream, String> {
    let dir = open_state(path, true)?;
    let start = Instant::now();
    let mut spawned: Option<std::process::Child> = None;
    // When the daemon this client started exited (another client's daemon won
    // the directory lock, or it could not start), how long to keep trying.
    let mut exited_at: Option<Instant> = None;
    let mut backoff = Duration::from_millis(10);
    loop {
        match connect(&dir) {
            Ok(s) => return Ok(s),
            Err(NoConn::Refused(e)) => return Err(e),
            Err(NoConn::Busy) if start.elapsed() > BUSY_TIMEOUT => {
                return Err(format!(
                    "daemon busy: no connection accepted in {}s",
                    BUSY_TIMEOUT.as_secs()
                ))
            }
            Err(NoConn::Busy) => {}
            Err(NoConn::NotRunning(e)) => {
                if let Some(child) = spawned.as_mut() {
                    if exited_at.is_none() && matches!(child.try_wait(), Ok(Some(_))) {
                        exited_at = Some(Instant::now());
                    }
                }
                let gave_up = exited_at.is_some_and(|t| t.elapsed() > Duration::from_secs(1));
                if spawned.is_none() {
                    spawned = Some(spawn_daemon(&dir)?);
                } else if gave_up {
                    return Err(format!(
                        "the daemon could not start ({e}); last line of {}: {}",
                        dir.path().join("daemon.log").display(),
                        last_log_line(&dir)
                    ));
                } else if start.elapsed() > START_TIMEOUT {
                    return Err(format!(
                        "the daemon did not start in {}s ({e}); last line of {}: {}",
                        START_TIMEOUT.as_secs(),
                        dir.path().join("daemon.log").display(),
                        last_log_line(&dir)
                    ));
                }
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_millis(500));
    }
}

/// How long a client keeps retrying a busy daemon.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a client waits for a reply (runs wait as long as they were told to);
/// `BPFVM_CLIENT_TIMEOUT_MS` changes it.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

pub fn reply_timeout() -> Duration {
    std::env::var("BPFVM_CLIENT_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(REPLY_TIMEOUT, Duration::from_millis)
}

/// One request/reply exchange on an open connection, waiting at most `wait`
/// for the reply (`None`: as long as it takes).
pub fn exchange(
    s: &mut UnixStream,
    req: &Request,
    wait: Option<Duration>,
) -> Result<Response, String> {
    let body = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    let _ = s.set_write_timeout(Some(Duration::from_secs(30)));
    let _ = s.set_read_timeout(wait);
    let sent = proto::write_frame(s, &body);
    // A daemon that refused the connection (busy, not ours) replied before
    // reading: its reply explains a failed send.
    let reply = match proto::read_frame(s, proto::MAX_MESSAGE) {
        Ok(r) => r,
        Err(e) => {
            if let Err(se) = sent {
                return Err(format!(
                    "sending to the daemon: {}",
                    crate::render::error_chain(&se)
                ));
            }
            let timed_out = matches!(&e, proto::ProtoError::Io(io)
                if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
            if timed_out {
                return Err(format!(
                    "no reply from the daemon in {} ms",
                    wait.unwrap_or_default().as_millis()
                ));
            }
            return Err(format!(
                "reading the daemon's reply: {}",
                crate::render::error_chain(&e)
            ));
        }
    };
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
    call_waiting(opts, cmd, Some(reply_timeout()))
}

/// [`call`], waiting at most `wait` for the reply. A "busy" reply is retried
/// with backoff.
pub fn call_waiting(opts: &Opts, cmd: Command, wait: Option<Duration>) -> Result<Response, String> {
    let dir = state_dir(opts)?;
    let req = Request::new(format_of(opts), cmd);
    if opts.debug {
        let mut text = serde_json::to_string(&req).unwrap_or_default();
        if text.len() > 300 {
            text.truncate(text.char_indices().nth(300).map_or(text.len(), |(i, _)| i));
            text.push_str("...");
        }
        eprintln!("bpfvm: state directory {}, request {text}", dir.display());
    }
    let start = Instant::now();
    let mut backoff = Duration::from_millis(20);
    loop {
        let mut s = connect_or_start(&dir)?;
        let r = exchange(&mut s, &req, wait)?;
        if r.busy && start.elapsed() < BUSY_TIMEOUT {
            if opts.debug {
                eprintln!("bpfvm: daemon busy, retrying in {} ms", backoff.as_millis());
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(1));
            continue;
        }
        if opts.debug {
            eprintln!("bpfvm: reply ok={} exit={}", r.ok, r.exit);
        }
        return Ok(r);
    }
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
    // Typed results are rendered here, in the format asked for.
    let listing = r
        .data
        .as_ref()
        .and_then(|d| serde_json::from_value::<proto::Listing>(d.clone()).ok());
    if let Some(l) = &listing {
        match crate::render::try_listing(format_of(opts), l) {
            Ok(text) => {
                let _ = out.write_all(text.as_bytes());
            }
            Err(e) => {
                let _ = out.flush();
                return print_error(opts, &e);
            }
        }
    }
    // Data other than a listing: only a note for stderr (other data is read by
    // the command that asked for it, not printed here).
    let note_only = r
        .data
        .as_ref()
        .is_none_or(|d| d.as_object().is_some_and(|o| o.keys().all(|k| k == "note")));
    if r.ok && opts.json && r.stdout.is_empty() && note_only && listing.is_none() {
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

/// The running daemon's pid, from `daemon.pid`.
fn daemon_pid(dir: &Dir) -> Option<i32> {
    let b = dir.read_capped("daemon.pid", 64).ok()?;
    String::from_utf8_lossy(&b).trim().parse().ok()
}

/// The state directory if it exists (and is trusted), for commands that do not
/// start a daemon.
fn existing_state(opts: &Opts) -> Result<Option<Dir>, String> {
    let path = state_dir(opts)?;
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    open_state(&path, false).map(Some)
}

/// `bpfvm daemon stop`: asks the daemon to save and exit, waits until it has.
pub fn stop(opts: &Opts) -> i32 {
    let dir = match existing_state(opts) {
        Ok(Some(d)) => d,
        Ok(None) => {
            eprintln!("bpfvm: no daemon running");
            return 0;
        }
        Err(e) => return print_error(opts, &e),
    };
    let mut s = match connect(&dir) {
        Ok(s) => s,
        Err(NoConn::Refused(e)) => return print_error(opts, &e),
        Err(_) => {
            eprintln!("bpfvm: no daemon running for {}", dir.path().display());
            return 0;
        }
    };
    let pid = daemon_pid(&dir);
    let req = Request::new(Format::Plain, Command::Shutdown);
    if let Err(e) = exchange(&mut s, &req, Some(reply_timeout())) {
        return print_error(opts, &format!("stopping the daemon: {e}"));
    }
    // Wait for the process to have exited, so a new daemon can take the
    // directory (an exited daemon may stay a zombie until its parent, often
    // init, reaps it: that counts as gone).
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if pid.is_none_or(exited) && lock_is_free(&dir) && connect(&dir).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    0
}

/// Has process `pid` exited (gone, or a zombie)?
fn exited(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return true;
    }
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                == Some("Z")
        })
        .unwrap_or(true)
}

/// Is no daemon holding the directory's lock?
fn lock_is_free(dir: &Dir) -> bool {
    let Ok(f) = dir.open_read("daemon.lock") else {
        return true;
    };
    // SAFETY: flock on a descriptor we own; released when `f` closes.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// `bpfvm daemon status`.
pub fn status(opts: &Opts) -> i32 {
    let dir = match existing_state(opts) {
        Ok(Some(d)) => d,
        Ok(None) => {
            println!("not running (no state directory)");
            return 1;
        }
        Err(e) => return print_error(opts, &e),
    };
    match connect(&dir) {
        Ok(mut s) => {
            let req = Request::new(Format::Plain, Command::Ping);
            match exchange(&mut s, &req, Some(Duration::from_secs(10))) {
                Ok(_) => {
                    println!(
                        "running: pid {}, state directory {}",
                        daemon_pid(&dir).map_or("?".into(), |p| p.to_string()),
                        dir.path().display()
                    );
                    0
                }
                Err(e) => print_error(opts, &e),
            }
        }
        Err(NoConn::Refused(e)) => print_error(opts, &e),
        Err(_) => {
            println!("not running (state directory {})", dir.path().display());
            1
        }
    }
}
