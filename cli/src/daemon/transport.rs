//! The socket: who may connect (the daemon's own uid, checked with SO_PEERCRED on
//! every connection), one thread per connection, frames in and out, and limits
//! that no client can exhaust: a connection idle between requests is closed
//! after [`IDLE_TIMEOUT`], and a request slot is taken only while a request is
//! being handled ([`MAX_ACTIVE`]); past either limit the client gets a "busy"
//! reply it can retry on. A `prog run` is cancelled when its client hangs up.

use super::Daemon;
use crate::proto::{self, Command, ProtoError, Response};
use crate::safefs::Dir;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Requests handled at once.
pub const MAX_ACTIVE: usize = 64;
/// Connections open at once (each has a thread; idle ones are closed soon).
pub const MAX_CONNECTIONS: usize = 512;
/// A connection with no request for this long is closed
/// (`BPFVM_DAEMON_IDLE_MS` changes it, for tests).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

fn idle_timeout() -> Duration {
    std::env::var("BPFVM_DAEMON_IDLE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(IDLE_TIMEOUT, Duration::from_millis)
}
/// A request (or reply) must be sent within this time once begun.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static CONNECTIONS: AtomicUsize = AtomicUsize::new(0);

/// Binds `sock` in the state directory (through its descriptor, owner-only from
/// the start). A stale socket from a dead daemon is removed first (the directory
/// lock says no daemon is running); unlink never follows a link.
pub fn listen(state: &Dir) -> Result<UnixListener, super::DaemonError> {
    if state.exists("sock") {
        state.unlink("sock")?;
    }
    let path = state.proc_path("sock");
    // SAFETY: umask has no preconditions.
    let old = unsafe { libc::umask(0o177) };
    let l = UnixListener::bind(&path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    l.map_err(|source| super::DaemonError::Listen {
        path: state.path().join("sock").display().to_string(),
        source,
    })
}

/// [`MAX_CONNECTIONS`], or fewer when the descriptor limit is low (half of it,
/// so that loads, maps and files always have descriptors left).
fn max_connections() -> usize {
    // SAFETY: getrlimit writes the struct it is given.
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    let nofile = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
        r.rlim_cur as usize
    } else {
        1024
    };
    MAX_CONNECTIONS.min(nofile / 2).max(8)
}

/// The uid of the process at the other end of `s`.
pub fn peer_uid(s: &UnixStream) -> Option<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(cred.uid)
}

fn reply(s: &mut UnixStream, r: &Response) -> Result<(), ProtoError> {
    let body = serde_json::to_vec(r).map_err(|e| ProtoError::BadJson {
        reason: e.to_string(),
    })?;
    proto::write_frame(s, &body)
}

/// Accepts connections until the process exits.
pub fn serve(d: Arc<Daemon>, listener: UnixListener) {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let max_conns = max_connections();
    for conn in listener.incoming() {
        let mut s = match conn {
            Ok(s) => s,
            Err(_) => {
                // Out of descriptors (or memory): the connection waits in the
                // queue; do not spin on it.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
        match peer_uid(&s) {
            Some(uid) if uid == me => {}
            other => {
                let who = other.map_or("an unknown user".to_string(), |u| format!("uid {u}"));
                eprintln!("refused a connection from {who}");
                let _ = reply(
                    &mut s,
                    &Response::err(format!(
                        "permission denied: this daemon serves uid {me} only, not {who}"
                    )),
                );
                continue;
            }
        }
        if CONNECTIONS.fetch_add(1, Ordering::AcqRel) >= max_conns {
            CONNECTIONS.fetch_sub(1, Ordering::AcqRel);
            let _ = reply(&mut s, &Response::busy("too many connections"));
            continue;
        }
        let d = d.clone();
        let spawned = std::thread::Builder::new().spawn(move || {
            connection(&d, s);
            CONNECTIONS.fetch_sub(1, Ordering::AcqRel);
        });
        if spawned.is_err() {
            CONNECTIONS.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// One client: requests until it closes, idles too long or breaks framing.
fn connection(d: &Daemon, mut s: UnixStream) {
    let _ = s.set_write_timeout(Some(IO_TIMEOUT));
    let idle = idle_timeout();
    loop {
        let _ = s.set_read_timeout(Some(idle));
        let body = match proto::read_frame(&mut s, proto::MAX_MESSAGE) {
            Ok(b) => b,
            Err(ProtoError::Closed) => return,
            Err(ProtoError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return;
            }
            Err(e) => {
                // Framing is lost: answer once and hang up.
                let _ = reply(&mut s, &Response::err(e.to_string()));
                return;
            }
        };
        let resp = match proto::decode_request(&body) {
            Ok(req) => {
                if req.cmd == Command::Shutdown {
                    d.shutdown();
                    let _ = reply(&mut s, &Response::out(String::new()));
                    std::process::exit(0);
                }
                if ACTIVE.fetch_add(1, Ordering::AcqRel) >= MAX_ACTIVE {
                    ACTIVE.fetch_sub(1, Ordering::AcqRel);
                    Response::busy("too many requests at once")
                } else {
                    let r = handle_watched(d, &s, req);
                    ACTIVE.fetch_sub(1, Ordering::AcqRel);
                    r
                }
            }
            Err(e) => Response::err(e.to_string()),
        };
        if reply(&mut s, &resp).is_err() {
            return;
        }
    }
}

/// Sets the calling thread's nice value.
fn set_nice(n: i32) -> bool {
    // SAFETY: gettid and setpriority on the calling thread have no preconditions.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, n) == 0
    }
}

/// Handles a request; a run is cancelled if the client hangs up meanwhile.
fn handle_watched(d: &Daemon, s: &UnixStream, req: proto::Request) -> Response {
    let cancel = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = if matches!(req.cmd, Command::ProgRun { .. }) {
        let fd = s.as_raw_fd();
        let (cancel, done) = (cancel.clone(), done.clone());
        // The connection outlives the watcher: it is joined before returning.
        Some(std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLRDHUP,
                    revents: 0,
                };
                // SAFETY: one valid pollfd on a descriptor kept open by the caller
                // until this thread is joined.
                let n = unsafe { libc::poll(&mut p, 1, 100) };
                if n > 0 && p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
                    cancel.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }))
    } else {
        None
    };
    // A run yields the CPU to everything else the daemon does (list, show, map
    // operations of other clients): its thread runs at a lower priority.
    let niced = watcher.is_some() && set_nice(10);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.handle(req, cancel)))
        .unwrap_or_else(|_| Response::err("internal error in the daemon (see daemon.log)"));
    if niced {
        // Back to normal where allowed (raising priority needs CAP_SYS_NICE; a
        // thread that cannot stays nice for the rest of its connection).
        set_nice(0);
    }
    done.store(true, Ordering::Relaxed);
    if let Some(w) = watcher {
        let _ = w.join();
    }
    r
}
