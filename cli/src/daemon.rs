//! The daemon: one [`Runtime`] kept alive between commands, served over a Unix
//! socket in the state directory (see [`crate::proto`] for the wire format).
//!
//! State directory layout:
//! - `sock` (0600), `daemon.lock` (flock: one daemon per directory), `daemon.pid`,
//!   `daemon.log` (stdout/stderr of a daemon started in the background);
//! - `fs/`: one file per pin at its pin path (`/sys/fs/bpf/hello` ->
//!   `fs/sys/fs/bpf/hello`); removing the file unpins the object, as `rm` does on
//!   bpffs (checked before every request and every 200 ms);
//! - `store/`: what brings pinned objects back after a restart: each loaded
//!   object's bytes and load options (`obj-N.o`), and `state.json` with the pins
//!   and the contents of the object's maps (saved after each change, every second
//!   and at `daemon stop`).
//!
//! Lifetimes are the runtime's: pins and attachments hold programs and maps; a
//! record of how an object was loaded lives while one of its pins or attachments
//! does.

use crate::proto::{self, Command, Format, ProtoError, Request, Response, Target};
use crate::render;
use bpfvm::maps::MapType;
use bpfvm::{
    BpfCmd, BpfReply, MapCreateAttr, MapObj, ObjKind, Object, Pinned, ProgObj, Runtime, TestRunAttr,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use thiserror::Error;

/// How many clients are served at once; more get an error reply.
const MAX_CLIENTS: usize = 64;
/// A client that starts a frame must finish it within this time.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a trace read may block.
const MAX_TRACE_WAIT_MS: u64 = 5000;
/// Entries saved per map (bigger maps keep only their first entries).
const MAX_SAVED_ENTRIES: usize = 1 << 16;

/// Errors that stop the daemon from starting.
#[derive(Debug, Error)]
pub enum DaemonError {
    #[error("state directory {path}")]
    StateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("a daemon is already running for {path}")]
    AlreadyRunning { path: String },
    #[error("socket path {path} is longer than a Unix socket address allows (107 bytes)")]
    SocketPathTooLong { path: String },
    #[error("cannot listen on {path}")]
    Listen {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How a record's objects were created, enough to create them again.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Source {
    Object {
        file_name: String,
        /// File in `store/`.
        stored: String,
        prog_type: Option<String>,
        /// The kernel config the load was given (`kconfig FILE`).
        #[serde(default)]
        kconfig: Option<String>,
    },
    Map {
        map_type: u32,
        key: u32,
        value: u32,
        entries: u32,
        flags: u32,
        name: String,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct PinEntry {
    /// `prog` or `map`.
    kind: String,
    /// The program's function name or the map's name in the object.
    name: String,
    path: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SavedMap {
    name: String,
    /// (key, value) as hex.
    entries: Vec<(String, String)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SavedRecord {
    id: u64,
    source: Source,
    pins: Vec<PinEntry>,
    maps: Vec<SavedMap>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedState {
    version: u32,
    records: Vec<SavedRecord>,
}

struct Record {
    id: u64,
    source: Source,
    pins: Vec<PinEntry>,
    progs: Vec<(String, Weak<ProgObj>)>,
    maps: Vec<(String, Weak<MapObj>)>,
}

#[derive(Default)]
struct State {
    records: Vec<Record>,
    next_record: u64,
}

/// The daemon's shared state.
pub struct Daemon {
    rt: Runtime,
    dir: PathBuf,
    fs_root: PathBuf,
    st: Mutex<State>,
    trace_next: Mutex<u64>,
    clients: AtomicUsize,
    net: crate::netglue::NetState,
    /// The last `state.json` written.
    last_saved: Mutex<Vec<u8>>,
}

/// Makes `dir` (0700) with `fs/` and `store/` inside.
fn prepare_dir(dir: &Path) -> Result<(), DaemonError> {
    let err = |source| DaemonError::StateDir {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir.join("fs")).map_err(err)?;
    std::fs::create_dir_all(dir.join("store")).map_err(err)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    Ok(())
}

/// Takes the directory's daemon lock (held until the process exits).
fn take_lock(dir: &Path) -> Result<std::fs::File, DaemonError> {
    let path = dir.join("daemon.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| DaemonError::StateDir {
            path: path.display().to_string(),
            source,
        })?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on an fd we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        return Err(DaemonError::AlreadyRunning {
            path: dir.display().to_string(),
        });
    }
    Ok(f)
}

/// Runs the daemon in the foreground until `daemon stop`.
pub fn run(dir: &Path) -> Result<(), DaemonError> {
    prepare_dir(dir)?;
    let _lock = take_lock(dir)?;
    let sock = dir.join("sock");
    if sock.as_os_str().len() > 107 {
        return Err(DaemonError::SocketPathTooLong {
            path: sock.display().to_string(),
        });
    }
    let d = Arc::new(Daemon {
        rt: Runtime::new(),
        dir: dir.to_path_buf(),
        fs_root: dir.join("fs"),
        st: Mutex::new(State::default()),
        trace_next: Mutex::new(0),
        clients: AtomicUsize::new(0),
        net: crate::netglue::NetState::default(),
        last_saved: Mutex::new(Vec::new()),
    });
    d.restore();
    let _ = std::fs::remove_file(&sock);
    // The socket is created with the umask's mode: make it owner-only from the start.
    // SAFETY: umask has no preconditions.
    let old = unsafe { libc::umask(0o077) };
    let listener = UnixListener::bind(&sock);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let listener = listener.map_err(|source| DaemonError::Listen {
        path: sock.display().to_string(),
        source,
    })?;
    let _ = std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600));
    let _ = std::fs::write(dir.join("daemon.pid"), format!("{}\n", std::process::id()));
    eprintln!(
        "bpfvm daemon {} listening on {}",
        std::process::id(),
        sock.display()
    );

    let bg = d.clone();
    std::thread::spawn(move || bg.background());
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        if d.clients.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
            d.clients.fetch_sub(1, Ordering::AcqRel);
            let mut s = stream;
            let _ = reply(&mut s, &Response::err("daemon busy: too many clients"));
            continue;
        }
        let d2 = d.clone();
        std::thread::spawn(move || {
            d2.serve(stream);
            d2.clients.fetch_sub(1, Ordering::AcqRel);
        });
    }
    Ok(())
}

fn reply(s: &mut UnixStream, r: &Response) -> Result<(), ProtoError> {
    let body = serde_json::to_vec(r).map_err(|e| ProtoError::BadJson {
        reason: e.to_string(),
    })?;
    proto::write_frame(s, &body)
}

impl Daemon {
    /// Pin checks every 200 ms, state saved every second.
    fn background(&self) {
        let mut tick = 0u64;
        let sock = self.dir.join("sock");
        let ino = |p: &Path| {
            std::fs::metadata(p)
                .ok()
                .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        };
        let mine = ino(&sock);
        loop {
            std::thread::sleep(Duration::from_millis(200));
            // Without its socket (state directory removed, or another daemon took
            // over) nobody can reach this daemon any more: exit rather than linger.
            if ino(&sock) != mine {
                eprintln!(
                    "bpfvm daemon {}: socket {} is gone, exiting",
                    std::process::id(),
                    sock.display()
                );
                std::process::exit(0);
            }
            let mut st = lock(&self.st);
            self.sync_pins(&mut st);
            tick += 1;
            if tick.is_multiple_of(5) && !st.records.is_empty() {
                self.save(&st);
            }
        }
    }

    /// One client: frames until it closes or breaks framing.
    fn serve(&self, mut s: UnixStream) {
        let _ = s.set_read_timeout(Some(CLIENT_TIMEOUT));
        let _ = s.set_write_timeout(Some(CLIENT_TIMEOUT));
        loop {
            let body = match proto::read_frame(&mut s, proto::MAX_MESSAGE) {
                Ok(b) => b,
                Err(ProtoError::Closed) => return,
                Err(e) => {
                    // Framing is lost: answer once and hang up.
                    let _ = reply(&mut s, &Response::err(e.to_string()));
                    return;
                }
            };
            let resp = match proto::decode_request(&body) {
                Ok(req) => {
                    if req.cmd == Command::Shutdown {
                        self.shutdown(&mut s);
                    }
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handle(req)))
                        .unwrap_or_else(|_| {
                            Response::err("internal error in the daemon (see daemon.log)")
                        })
                }
                Err(e) => Response::err(e.to_string()),
            };
            if reply(&mut s, &resp).is_err() {
                return;
            }
        }
    }

    fn shutdown(&self, s: &mut UnixStream) -> ! {
        {
            let mut st = lock(&self.st);
            self.sync_pins(&mut st);
            self.save(&st);
        }
        let _ = std::fs::remove_file(self.dir.join("sock"));
        let _ = std::fs::remove_file(self.dir.join("daemon.pid"));
        let _ = reply(s, &Response::out(String::new()));
        eprintln!("bpfvm daemon {} stopping", std::process::id());
        std::process::exit(0)
    }

    /// Where pin `path` appears as a file.
    fn fs_path(&self, pin: &str) -> PathBuf {
        self.fs_root.join(pin.trim_start_matches('/'))
    }

    /// A pin path as given by the user: bpffs-style, or the file under `fs/`.
    fn pin_name(&self, p: &str) -> String {
        let root = self.fs_root.to_string_lossy();
        match p.strip_prefix(root.as_ref()) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                format!("/{}", rest.trim_start_matches('/'))
            }
            _ => p.to_string(),
        }
    }

    /// Unpins objects whose file was removed, then forgets records nothing holds.
    fn sync_pins(&self, st: &mut State) {
        for (path, _) in self.rt.pins() {
            if !self.fs_path(&path).is_file() {
                let _ = self.rt.unpin(&path);
            }
        }
        let pins = self.rt.pins();
        let attached = self.net.attached_prog_ids();
        let before = st.records.len();
        st.records.retain_mut(|r| {
            r.pins
                .retain(|p| pins.iter().any(|(path, _)| *path == p.path));
            let held = r
                .progs
                .iter()
                .any(|(_, w)| w.upgrade().is_some_and(|p| attached.contains(&p.id)));
            let keep = !r.pins.is_empty() || held;
            if !keep {
                if let Source::Object { stored, .. } = &r.source {
                    let _ = std::fs::remove_file(self.dir.join("store").join(stored));
                }
            }
            keep
        });
        if st.records.len() != before {
            self.save(st);
        }
    }

    /// Pins `obj` at `path` and creates its file.
    fn pin(&self, path: &str, obj: Pinned, restoring: bool) -> Result<String, String> {
        let name = self.pin_name(path);
        let file = self.fs_path(&name);
        if !restoring && file.exists() {
            return Err(format!("can't pin the object ({name}): File exists"));
        }
        let (what, id) = match &obj {
            Pinned::Prog(p) => ("prog", p.id()),
            Pinned::Map(m) => ("map", m.id()),
        };
        self.rt
            .pin(&name, obj)
            .map_err(|e| format!("can't pin the object ({name}): {}", render::error_chain(&e)))?;
        let made = file
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::write(&file, format!("bpfvm {what} id {id}\n")));
        if let Err(e) = made {
            let _ = self.rt.unpin(&name);
            return Err(format!("can't pin the object ({name}): {e}"));
        }
        Ok(name)
    }

    /// Dispatches one request.
    pub fn handle(&self, req: Request) -> Response {
        if let Command::TraceRead { wait_ms } = req.cmd {
            return self.trace_read(wait_ms);
        }
        if let Command::MapEventPipe {
            target,
            cpu,
            index,
            wait_ms,
            close,
        } = &req.cmd
        {
            return self
                .event_pipe(target, *cpu, *index, *wait_ms, *close)
                .unwrap_or_else(Response::err);
        }
        let mut st = lock(&self.st);
        self.sync_pins(&mut st);
        let f = req.format;
        let mutating = matches!(
            req.cmd,
            Command::ProgLoad { .. }
                | Command::ProgPin { .. }
                | Command::MapCreate { .. }
                | Command::MapPin { .. }
                | Command::MapOp { .. }
                | Command::MapFreeze { .. }
                | Command::NetAttach { .. }
                | Command::NetDetach { .. }
        );
        let r = match req.cmd {
            Command::Ping => Ok(Response::out(String::new())),
            Command::Shutdown | Command::TraceRead { .. } | Command::MapEventPipe { .. } => {
                Ok(Response::out(String::new()))
            }
            Command::ProgLoad {
                file_name,
                object_hex,
                path,
                all,
                prog_type,
                pinmaps,
                kconfig,
            } => self.prog_load(
                &mut st,
                &file_name,
                &object_hex,
                &path,
                all,
                prog_type,
                pinmaps,
                kconfig,
            ),
            Command::ProgShow { target } => self.prog_show(f, target.as_ref()),
            Command::ProgDumpXlated {
                target,
                opcodes,
                linum,
                visual,
            } => self.prog_one(&target).map(|p| {
                let o = bpfvm::xlated::XlatedOpts {
                    opcodes,
                    linum,
                    visual,
                };
                if f.is_json() && !visual {
                    Response::out(render::json(f, &bpfvm::xlated::dump_xlated_json(&p, &o)))
                } else {
                    Response::out(bpfvm::xlated::dump_xlated(&p, &o))
                }
            }),
            Command::ProgDumpJited {
                target,
                opcodes,
                linum,
                arch,
            } => self.prog_one(&target).and_then(|p| {
                let arch = match arch.as_str() {
                    "x86_64" | "x86" | "" => bpfvm::xlated::JitArch::X86_64,
                    "aarch64" | "arm64" => bpfvm::xlated::JitArch::Aarch64,
                    other => {
                        return Err(format!("unknown arch '{other}' (x86_64 or aarch64)"))
                    }
                };
                let o = bpfvm::xlated::JitedOpts { opcodes, linum, arch };
                match bpfvm::xlated::dump_jited(&p, &o) {
                    Some(text) => Ok(Response::out(text)),
                    None => Err(
                        "the program was loaded with the JIT off (BPFVM_NO_JIT): it has no native code"
                            .to_string(),
                    ),
                }
            }),
            Command::ProgRun {
                target,
                data_in_hex,
                ctx_in_hex,
                repeat,
            } => self.prog_run(&target, &data_in_hex, ctx_in_hex.as_deref(), repeat),
            Command::ProgPin { target, path } => self.prog_pin(&mut st, &target, &path),
            Command::MapShow { target } => self.map_show(f, target.as_ref()),
            Command::MapDump { target } => self
                .map_one(&target)
                .and_then(|m| render::map_dump(&self.rt, &m, f)),
            Command::MapOp { op, target, args } => self.map_one(&target).and_then(|m| {
                render::map_op(&self.rt, &m, f, &op, &args, |t| {
                    self.resolve_value_target(t)
                })
            }),
            Command::MapCreate {
                path,
                map_type,
                key,
                value,
                entries,
                name,
                flags,
            } => self.map_create(&mut st, &path, &map_type, key, value, entries, &name, flags),
            Command::MapPin { target, path } => self.map_pin(&mut st, &target, &path),
            Command::MapFreeze { target } => self.map_one(&target).and_then(|m| {
                self.rt
                    .bpf(BpfCmd::MapFreeze { map_id: m.id })
                    .map(|_| Response::out(String::new()))
                    .map_err(|e| format!("failed to freeze map: {}", render::errno_text(&e)))
            }),
            Command::NetAttach {
                target,
                dev,
                overwrite,
            } => self
                .prog_one(&target)
                .and_then(|p| self.net.attach(&self.rt, &p, &dev, overwrite, f)),
            Command::NetDetach { dev } => self.net.detach(&dev, f),
            Command::NetList { dev } => self.net.list(dev.as_deref(), f),
            Command::BtfShow { id } => render::btf_show(&self.rt, f, id),
            Command::BtfDump { id, prog, map } => self.btf_dump(f, id, prog.as_ref(), map.as_ref()),
        };
        if mutating {
            self.sync_pins(&mut st);
            self.save(&st);
        }
        r.unwrap_or_else(Response::err)
    }

    fn trace_read(&self, wait_ms: u64) -> Response {
        let from = *lock(&self.trace_next);
        let wait = Duration::from_millis(wait_ms.min(MAX_TRACE_WAIT_MS));
        let (lines, next) = self.rt.trace_pipe().read_from(from, wait);
        {
            let mut n = lock(&self.trace_next);
            if *n < next {
                *n = next;
            }
        }
        Response::data(serde_json::json!({ "lines": lines }))
    }

    /// `map event_pipe`: readers at the slots asked for (every CPU's own by
    /// default, as bpftool opens them), then what they collected.
    fn event_pipe(
        &self,
        target: &Target,
        cpu: Option<u32>,
        index: Option<u32>,
        wait_ms: u64,
        close: bool,
    ) -> Result<Response, String> {
        let m = self.map_one(target)?;
        let Some(pea) = m.ops.as_any().downcast_ref::<bpfvm::maps::PerfEventArray>() else {
            return Err("map is not a perf event array".into());
        };
        let slots: Vec<(u32, u32)> = match (cpu, index) {
            (Some(c), Some(i)) => vec![(i, c)],
            _ => {
                let n = (self.rt.ncpus() as u32).min(m.attr().max_entries);
                (0..n).map(|c| (c, c)).collect()
            }
        };
        if close {
            for &(i, _) in &slots {
                pea.close(i);
            }
            return Ok(Response::out(String::new()));
        }
        for &(i, c) in &slots {
            pea.open(i, c)
                .map_err(|e| format!("failed to open perf event: {e}"))?;
        }
        let deadline =
            std::time::Instant::now() + Duration::from_millis(wait_ms.min(MAX_TRACE_WAIT_MS));
        let mut events = Vec::new();
        loop {
            for &(i, c) in &slots {
                for r in pea.read(i) {
                    events.push(serde_json::json!({
                        "cpu": c,
                        "index": i,
                        "timestamp": r.time_ns,
                        "data": crate::proto::to_hex(&r.data),
                    }));
                }
            }
            if !events.is_empty() || std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Response::data(serde_json::json!({ "events": events })))
    }

    // ---- object lookup -------------------------------------------------------

    fn progs_matching(&self, t: &Target) -> Result<Vec<Arc<ProgObj>>, String> {
        let all = || self.rt.progs();
        let v: Vec<Arc<ProgObj>> = match t {
            Target::Id(id) => {
                return self
                    .rt
                    .prog_by_id(*id)
                    .map(|p| vec![p])
                    .map_err(|_| format!("get by id ({id}): No such file or directory"))
            }
            Target::Name(n) => all()
                .into_iter()
                .filter(|p| name_matches(&p.name, n))
                .collect(),
            Target::Tag(tag) => all()
                .into_iter()
                .filter(|p| bpfvm::tag::tag_hex(&p.tag).eq_ignore_ascii_case(tag))
                .collect(),
            Target::Pinned(path) => {
                let name = self.pin_name(path);
                return match self.rt.pinned(&name) {
                    Ok(Pinned::Prog(p)) => Ok(vec![p.obj().clone()]),
                    Ok(Pinned::Map(_)) => {
                        Err(format!("incorrect object type: map pinned at {name}"))
                    }
                    Err(_) => Err(format!("bpf obj get ({name}): No such file or directory")),
                };
            }
        };
        if v.is_empty() {
            return Err(format!("no program matches {t}"));
        }
        Ok(v)
    }

    fn prog_one(&self, t: &Target) -> Result<Arc<ProgObj>, String> {
        let mut v = self.progs_matching(t)?;
        if v.len() > 1 {
            return Err(format!("{} programs match {t}; name one by id", v.len()));
        }
        Ok(v.remove(0))
    }

    fn maps_matching(&self, t: &Target) -> Result<Vec<Arc<MapObj>>, String> {
        let v: Vec<Arc<MapObj>> = match t {
            Target::Id(id) => {
                return self
                    .rt
                    .map_by_id(*id)
                    .map(|m| vec![m])
                    .map_err(|_| format!("get map by id ({id}): No such file or directory"))
            }
            Target::Name(n) => self
                .rt
                .maps()
                .into_iter()
                .filter(|m| name_matches(&m.name, n))
                .collect(),
            Target::Tag(_) => return Err("maps have no tag: use id, name or pinned".into()),
            Target::Pinned(path) => {
                let name = self.pin_name(path);
                return match self.rt.pinned(&name) {
                    Ok(Pinned::Map(m)) => Ok(vec![m.obj().clone()]),
                    Ok(Pinned::Prog(_)) => {
                        Err(format!("incorrect object type: program pinned at {name}"))
                    }
                    Err(_) => Err(format!("bpf obj get ({name}): No such file or directory")),
                };
            }
        };
        if v.is_empty() {
            return Err(format!("no map matches {t}"));
        }
        Ok(v)
    }

    fn map_one(&self, t: &Target) -> Result<Arc<MapObj>, String> {
        let mut v = self.maps_matching(t)?;
        if v.len() > 1 {
            return Err(format!("{} maps match {t}; name one by id", v.len()));
        }
        Ok(v.remove(0))
    }

    /// `value id N` / `value pinned P` for prog arrays and maps of maps.
    fn resolve_value_target(&self, t: &Target) -> Result<u32, String> {
        if let Ok(p) = self.prog_one(t) {
            return Ok(p.id);
        }
        self.map_one(t).map(|m| m.id)
    }

    // ---- commands ------------------------------------------------------------

    /// `btf dump id N | prog PROG | map MAP`: the whole BTF object, as bpftool's raw format.
    fn btf_dump(
        &self,
        f: Format,
        id: Option<u32>,
        prog: Option<&Target>,
        map: Option<&Target>,
    ) -> Result<Response, String> {
        let btf = if let Some(id) = id {
            self.rt
                .btf_by_id(id)
                .map_err(|_| format!("get btf by id ({id}): No such file or directory"))?
        } else if let Some(t) = prog {
            let p = self.prog_one(t)?;
            p.btf
                .clone()
                .ok_or_else(|| format!("program {} has no BTF", p.id))?
        } else if let Some(t) = map {
            let m = self.map_one(t)?;
            m.btf
                .clone()
                .ok_or_else(|| format!("map {} has no BTF", m.id))?
        } else {
            return Err("expected 'id', 'prog' or 'map'".into());
        };
        Ok(Response::out(render::btf_dump(&btf.btf, f)))
    }

    fn prog_show(&self, f: Format, t: Option<&Target>) -> Result<Response, String> {
        let (progs, single) = match t {
            Some(t) => {
                let v = self.progs_matching(t)?;
                let single = v.len() == 1;
                (v, single)
            }
            None => (self.rt.progs(), false),
        };
        let infos: Vec<bpfvm::ProgInfo> = progs
            .iter()
            .filter_map(|p| {
                match self.rt.bpf(BpfCmd::ObjGetInfoById {
                    kind: ObjKind::Prog,
                    id: p.id,
                }) {
                    Ok(BpfReply::ProgInfo(i)) => Some(i),
                    _ => None,
                }
            })
            .collect();
        Ok(Response::out(render::progs(f, &infos, single)))
    }

    fn map_show(&self, f: Format, t: Option<&Target>) -> Result<Response, String> {
        let (maps, single) = match t {
            Some(t) => {
                let v = self.maps_matching(t)?;
                let single = v.len() == 1;
                (v, single)
            }
            None => (self.rt.maps(), false),
        };
        Ok(Response::out(render::maps(f, &maps, single)))
    }

    #[allow(clippy::too_many_arguments)]
    fn prog_load(
        &self,
        st: &mut State,
        file_name: &str,
        object_hex: &str,
        path: &str,
        all: bool,
        prog_type: Option<String>,
        pinmaps: Option<String>,
        kconfig: Option<String>,
    ) -> Result<Response, String> {
        let bytes = proto::from_hex(object_hex).map_err(|e| e.to_string())?;
        let obj = parse_object(file_name, &bytes, prog_type.as_deref())?;
        if obj.programs.is_empty() {
            return Err(format!("{file_name}: the object has no programs"));
        }
        // Nothing may exist where the pins will go (bpffs refuses to overwrite).
        let base = self.pin_name(path);
        let mut planned: Vec<PinEntry> = Vec::new();
        let loaded = self
            .rt
            .load_object_with(
                &obj,
                None,
                &bpfvm::LoadOpts {
                    log_level: 1,
                    kconfig: kconfig_opt(kconfig.as_deref()),
                    ..Default::default()
                },
            )
            .map_err(|e| format!("failed to load object file: {}", render::load_error(&e)))?;
        if all {
            for (name, _) in &loaded.progs {
                planned.push(PinEntry {
                    kind: "prog".into(),
                    name: name.clone(),
                    path: format!("{}/{}", base.trim_end_matches('/'), name),
                });
            }
        } else if let Some((name, _)) = loaded.progs.first() {
            planned.push(PinEntry {
                kind: "prog".into(),
                name: name.clone(),
                path: base.clone(),
            });
        }
        if let Some(dir) = &pinmaps {
            let dir = self.pin_name(dir);
            for (name, _) in &loaded.maps {
                planned.push(PinEntry {
                    kind: "map".into(),
                    name: name.clone(),
                    path: format!("{}/{}", dir.trim_end_matches('/'), name.replace('.', "_")),
                });
            }
        }
        for p in &planned {
            if self.fs_path(&p.path).exists() || self.rt.pinned(&p.path).is_ok() {
                return Err(format!("can't pin the object ({}): File exists", p.path));
            }
        }
        let mut done: Vec<String> = Vec::new();
        for p in &planned {
            let obj = if p.kind == "prog" {
                loaded.prog(&p.name).map(|x| Pinned::Prog(x.clone()))
            } else {
                loaded.map(&p.name).map(|x| Pinned::Map(x.clone()))
            };
            let Some(obj) = obj else { continue };
            match self.pin(&p.path, obj, false) {
                Ok(n) => done.push(n),
                Err(e) => {
                    for d in &done {
                        let _ = self.rt.unpin(d);
                        let _ = std::fs::remove_file(self.fs_path(d));
                    }
                    return Err(e);
                }
            }
        }
        let id = st.next_record;
        st.next_record += 1;
        let stored = format!("obj-{id}.o");
        if let Err(e) = std::fs::write(self.dir.join("store").join(&stored), &bytes) {
            eprintln!("warning: cannot store {file_name} for restarts: {e}");
        }
        st.records.push(Record {
            id,
            source: Source::Object {
                file_name: file_name.to_string(),
                stored,
                prog_type,
                kconfig,
            },
            pins: planned,
            progs: loaded
                .progs
                .iter()
                .map(|(n, p)| (n.clone(), Arc::downgrade(p.obj())))
                .collect(),
            maps: loaded
                .maps
                .iter()
                .map(|(n, m)| (n.clone(), Arc::downgrade(m.obj())))
                .collect(),
        });
        Ok(Response::out(String::new()))
    }

    fn prog_pin(&self, st: &mut State, t: &Target, path: &str) -> Result<Response, String> {
        let p = self.prog_one(t)?;
        let fd = match self.rt.bpf(BpfCmd::ProgGetFdById { id: p.id }) {
            Ok(BpfReply::Prog(fd)) => fd,
            _ => return Err(format!("get by id ({}): No such file or directory", p.id)),
        };
        let name = self.pin(path, Pinned::Prog(fd), false)?;
        for r in &mut st.records {
            if let Some((n, _)) = r
                .progs
                .iter()
                .find(|(_, w)| w.upgrade().is_some_and(|x| x.id == p.id))
            {
                r.pins.push(PinEntry {
                    kind: "prog".into(),
                    name: n.clone(),
                    path: name,
                });
                break;
            }
        }
        Ok(Response::out(String::new()))
    }

    fn map_pin(&self, st: &mut State, t: &Target, path: &str) -> Result<Response, String> {
        let m = self.map_one(t)?;
        let fd = match self.rt.bpf(BpfCmd::MapGetFdById { id: m.id }) {
            Ok(BpfReply::Map(fd)) => fd,
            _ => {
                return Err(format!(
                    "get map by id ({}): No such file or directory",
                    m.id
                ))
            }
        };
        let name = self.pin(path, Pinned::Map(fd), false)?;
        for r in &mut st.records {
            if let Some((n, _)) = r
                .maps
                .iter()
                .find(|(_, w)| w.upgrade().is_some_and(|x| x.id == m.id))
            {
                r.pins.push(PinEntry {
                    kind: "map".into(),
                    name: n.clone(),
                    path: name,
                });
                break;
            }
        }
        Ok(Response::out(String::new()))
    }

    #[allow(clippy::too_many_arguments)]
    fn map_create(
        &self,
        st: &mut State,
        path: &str,
        map_type: &str,
        key: u32,
        value: u32,
        entries: u32,
        name: &str,
        flags: u32,
    ) -> Result<Response, String> {
        let mt = (0..64)
            .filter_map(MapType::from_u32)
            .find(|t| t.name() == map_type)
            .ok_or_else(|| format!("invalid map type: {map_type}"))?;
        let pin_name = self.pin_name(path);
        if self.fs_path(&pin_name).exists() {
            return Err(format!("can't pin the object ({pin_name}): File exists"));
        }
        let attr = MapCreateAttr {
            map_type: mt as u32,
            key_size: key,
            value_size: value,
            max_entries: entries,
            map_flags: flags,
            name: name.to_string(),
            ..MapCreateAttr::default()
        };
        let fd = match self.rt.bpf(BpfCmd::MapCreate(attr)) {
            Ok(BpfReply::Map(fd)) => fd,
            Ok(_) => return Err("map create failed: unexpected reply".into()),
            Err(e) => return Err(format!("map create failed: {}", render::error_chain(&e))),
        };
        let weak = Arc::downgrade(fd.obj());
        let pinned = self.pin(&pin_name, Pinned::Map(fd), false)?;
        let id = st.next_record;
        st.next_record += 1;
        st.records.push(Record {
            id,
            source: Source::Map {
                map_type: mt as u32,
                key,
                value,
                entries,
                flags,
                name: name.to_string(),
            },
            pins: vec![PinEntry {
                kind: "map".into(),
                name: name.to_string(),
                path: pinned,
            }],
            progs: Vec::new(),
            maps: vec![(name.to_string(), weak)],
        });
        Ok(Response::out(String::new()))
    }

    fn prog_run(
        &self,
        t: &Target,
        data_hex: &str,
        ctx_hex: Option<&str>,
        repeat: u32,
    ) -> Result<Response, String> {
        let p = self.prog_one(t)?;
        let data_in = proto::from_hex(data_hex).map_err(|e| e.to_string())?;
        let ctx_in = match ctx_hex {
            Some(h) => Some(proto::from_hex(h).map_err(|e| e.to_string())?),
            None => None,
        };
        let attr = TestRunAttr {
            prog_id: p.id,
            data_in,
            ctx_in,
            repeat,
            ..TestRunAttr::default()
        };
        match self.rt.bpf(BpfCmd::ProgTestRun(attr)) {
            Ok(BpfReply::TestRun(r)) => Ok(Response::data(serde_json::json!({
                "retval": r.retval,
                "duration": r.duration,
                "data_out_hex": proto::to_hex(&r.data_out),
                "ctx_out_hex": proto::to_hex(&r.ctx_out),
            }))),
            Ok(_) => Err("failed to run program: unexpected reply".into()),
            Err(e) => Err(format!(
                "failed to run program: {}",
                render::error_chain(&e)
            )),
        }
    }

    // ---- persistence ---------------------------------------------------------

    fn state_file(&self) -> PathBuf {
        self.dir.join("store").join("state.json")
    }

    /// Writes `state.json` (atomically: a temporary file renamed over it).
    fn save(&self, st: &State) {
        let records: Vec<SavedRecord> = st
            .records
            .iter()
            .map(|r| {
                let maps: Vec<SavedMap> = r
                    .maps
                    .iter()
                    .filter_map(|(n, w)| {
                        let m = w.upgrade()?;
                        snapshot_map(&self.rt, &m).map(|entries| SavedMap {
                            name: n.clone(),
                            entries,
                        })
                    })
                    .collect();
                SavedRecord {
                    id: r.id,
                    source: r.source.clone(),
                    pins: r.pins.clone(),
                    maps,
                }
            })
            .collect();
        let s = SavedState {
            version: 1,
            records,
        };
        let Ok(text) = serde_json::to_vec_pretty(&s) else {
            return;
        };
        // The periodic save writes only when something changed.
        let mut last = lock(&self.last_saved);
        if *last == text {
            return;
        }
        let tmp = self.dir.join("store").join("state.json.tmp");
        let ok = std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(&text).and_then(|_| f.sync_all()))
            .and_then(|_| std::fs::rename(&tmp, self.state_file()));
        match ok {
            Ok(()) => *last = text,
            Err(e) => eprintln!("warning: cannot save state: {e}"),
        }
    }

    /// Reloads the records of `state.json`: objects loaded again, map contents put
    /// back, pins whose file still exists re-made. Stale pin files are removed.
    fn restore(&self) {
        let mut st = lock(&self.st);
        let saved: Option<SavedState> = std::fs::read(self.state_file())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        for rec in saved.map(|s| s.records).unwrap_or_default() {
            match self.restore_record(&rec) {
                Ok(Some(r)) => {
                    st.next_record = st.next_record.max(r.id + 1);
                    st.records.push(r);
                }
                Ok(None) => {}
                Err(e) => eprintln!("warning: record {} not restored: {e}", rec.id),
            }
        }
        // Files under fs/ that are no pin (left by a crash or a failed restore).
        let pins: BTreeSet<PathBuf> = self
            .rt
            .pins()
            .iter()
            .map(|(p, _)| self.fs_path(p))
            .collect();
        remove_stale(&self.fs_root, &pins);
        self.save(&st);
    }

    fn restore_record(&self, rec: &SavedRecord) -> Result<Option<Record>, String> {
        let live_pins: Vec<&PinEntry> = rec
            .pins
            .iter()
            .filter(|p| self.fs_path(&p.path).is_file())
            .collect();
        if live_pins.is_empty() {
            if let Source::Object { stored, .. } = &rec.source {
                let _ = std::fs::remove_file(self.dir.join("store").join(stored));
            }
            return Ok(None);
        }
        let mut record = Record {
            id: rec.id,
            source: rec.source.clone(),
            pins: Vec::new(),
            progs: Vec::new(),
            maps: Vec::new(),
        };
        let mut map_fds = Vec::new();
        let mut prog_fds = Vec::new();
        match &rec.source {
            Source::Object {
                file_name,
                stored,
                prog_type,
                kconfig,
            } => {
                let bytes = std::fs::read(self.dir.join("store").join(stored))
                    .map_err(|e| format!("{stored}: {e}"))?;
                let obj = parse_object(file_name, &bytes, prog_type.as_deref())?;
                let opts = bpfvm::LoadOpts {
                    kconfig: kconfig_opt(kconfig.as_deref()),
                    ..Default::default()
                };
                let loaded = self
                    .rt
                    .load_object_with(&obj, None, &opts)
                    .map_err(|e| render::error_chain(&e))?;
                map_fds = loaded.maps.clone();
                prog_fds = loaded.progs.clone();
            }
            Source::Map {
                map_type,
                key,
                value,
                entries,
                flags,
                name,
            } => {
                let attr = MapCreateAttr {
                    map_type: *map_type,
                    key_size: *key,
                    value_size: *value,
                    max_entries: *entries,
                    map_flags: *flags,
                    name: name.clone(),
                    ..MapCreateAttr::default()
                };
                match self.rt.bpf(BpfCmd::MapCreate(attr)) {
                    Ok(BpfReply::Map(fd)) => map_fds.push((name.clone(), fd)),
                    Ok(_) => return Err("unexpected reply".into()),
                    Err(e) => return Err(render::error_chain(&e)),
                }
            }
        }
        for sm in &rec.maps {
            let Some((_, fd)) = map_fds.iter().find(|(n, _)| *n == sm.name) else {
                continue;
            };
            for (k, v) in &sm.entries {
                let (Ok(key), Ok(value)) = (proto::from_hex(k), proto::from_hex(v)) else {
                    continue;
                };
                if let Err(e) = self.rt.bpf(BpfCmd::MapUpdateElem {
                    map_id: fd.id(),
                    key,
                    value,
                    flags: 0,
                }) {
                    eprintln!(
                        "warning: map {}: entry not restored: {}",
                        sm.name,
                        render::error_chain(&e)
                    );
                }
            }
        }
        for p in live_pins {
            let obj = if p.kind == "prog" {
                prog_fds
                    .iter()
                    .find(|(n, _)| *n == p.name)
                    .map(|(_, x)| Pinned::Prog(x.clone()))
            } else {
                map_fds
                    .iter()
                    .find(|(n, _)| *n == p.name)
                    .map(|(_, x)| Pinned::Map(x.clone()))
            };
            let Some(obj) = obj else { continue };
            match self.pin(&p.path, obj, true) {
                Ok(_) => record.pins.push(p.clone()),
                Err(e) => eprintln!("warning: {e}"),
            }
        }
        if record.pins.is_empty() {
            return Ok(None);
        }
        record.progs = prog_fds
            .iter()
            .map(|(n, p)| (n.clone(), Arc::downgrade(p.obj())))
            .collect();
        record.maps = map_fds
            .iter()
            .map(|(n, m)| (n.clone(), Arc::downgrade(m.obj())))
            .collect();
        Ok(Some(record))
    }
}

/// bpftool's name match: the kernel keeps 15 characters of a name.
fn name_matches(obj_name: &str, wanted: &str) -> bool {
    obj_name == wanted || (wanted.len() > 15 && wanted.get(..15) == Some(obj_name))
}

/// Parses an object and applies `type TYPE` to every program.
pub fn parse_object(
    file_name: &str,
    bytes: &[u8],
    prog_type: Option<&str>,
) -> Result<Object, String> {
    let mut obj = Object::parse(file_name, bytes).map_err(|e| render::error_chain(&e))?;
    if let Some(t) = prog_type {
        let (pt, attach) = if let Some(pt) = bpfvm_obj::ProgType::from_name(t) {
            (pt, None)
        } else if let Some(def) = bpfvm_obj::section_def(t) {
            (def.prog_type, def.expected_attach_type)
        } else {
            return Err(format!("unknown program type '{t}'"));
        };
        for p in &mut obj.programs {
            p.prog_type = pt;
            if attach.is_some() {
                p.expected_attach_type = attach;
            }
        }
    }
    Ok(obj)
}

/// A map's entries for `state.json`, or `None` for maps whose contents are not
/// plain data (program and map references, queues, ring buffers) or are frozen
/// (their contents come back from the object).
fn snapshot_map(rt: &Runtime, m: &MapObj) -> Option<Vec<(String, String)>> {
    let kept = matches!(
        m.map_type(),
        MapType::Hash
            | MapType::Array
            | MapType::PercpuHash
            | MapType::PercpuArray
            | MapType::LruHash
            | MapType::LruPercpuHash
            | MapType::LpmTrie
    );
    if !kept || m.ops.is_frozen() {
        return None;
    }
    let mut out = Vec::new();
    let mut key: Option<Vec<u8>> = None;
    while out.len() < MAX_SAVED_ENTRIES {
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
            out.push((proto::to_hex(&next), proto::to_hex(&v)));
        }
        key = Some(next);
    }
    Some(out)
}

fn remove_stale(dir: &Path, keep: &BTreeSet<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => remove_stale(&p, keep),
            Ok(_) if !keep.contains(&p) => {
                let _ = std::fs::remove_file(&p);
            }
            _ => {}
        }
    }
}

/// The kernel configuration a load was given, if any.
fn kconfig_opt(text: Option<&str>) -> Option<Arc<bpfvm::Kconfig>> {
    text.map(|t| Arc::new(bpfvm::Kconfig::with_config_text(t)))
}
