//! The daemon: one [`Runtime`] kept alive between commands, served over a Unix
//! socket in the state directory (see [`crate::proto`] for the wire format).
//!
//! - `transport`: the socket, peer credentials, framing, connection threads,
//!   busy replies and cancelling runs whose client went away;
//! - `handlers`: one function per command;
//! - [`reads`]: the typed results of the read commands (the client renders them);
//! - `persist` and `store`: what survives a restart (journal + snapshot);
//! - [`pinfs`]: the pin files under `STATE/fs/`.
//!
//! State directory layout (all made by the daemon or the client, 0700/0600, and
//! trusted only if it is the caller's and nobody else can write it; see
//! [`crate::safefs`]):
//! - `sock` (0600), `daemon.lock` (flock: one daemon per directory), `daemon.pid`,
//!   `daemon.log` (stdout/stderr of a daemon started in the background);
//! - `fs/`: one file per pin at its pin path (`/sys/fs/bpf/hello` ->
//!   `fs/sys/fs/bpf/hello`); removing the file unpins the object, as `rm` does on
//!   bpffs;
//! - `store/`: see [`store`].
//!
//! Locking: the runtime locks per object; the catalog of records (how each live
//! object was made) has its own short-held lock, and the store's lock is held
//! while a change is applied and journaled. No lock is held while a program runs,
//! so `prog list` never waits for a `prog run`.

mod fault;
mod handlers;
mod persist;
pub mod pinfs;
pub mod reads;
pub mod store;
mod transport;
mod values;

pub use handlers::parse_object;
pub(crate) use handlers::{kconfig_opt, target_btf_opt};
pub use transport::peer_uid;

use crate::safefs::{Dir, SafeFsError};
use bpfvm::{MapObj, ProgObj, Runtime};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use store::{Source, Store, StoreError};
use thiserror::Error;

/// Errors that stop the daemon from starting.
#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    Fs(#[from] SafeFsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a daemon is already running for {path}")]
    AlreadyRunning { path: String },
    #[error("cannot listen on {path}")]
    Listen {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot restore the saved state: {reason}")]
    Restore { reason: String },
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A record: how a set of objects (one object file's programs and maps, or one
/// `map create`) was made, enough to make them again. It lives while any of its
/// objects does.
pub(crate) struct Record {
    pub id: u64,
    pub source: Source,
    pub progs: Vec<(String, Weak<ProgObj>)>,
    pub maps: Vec<(String, Weak<MapObj>)>,
    /// (map, value file) of its file-backed arrays.
    pub files: Vec<(String, String)>,
}

impl Record {
    /// The value file of map `name`, if it has one.
    pub fn file_of(&self, name: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|(m, _)| m == name)
            .map(|(_, f)| f.as_str())
    }

    fn alive(&self) -> bool {
        self.progs.iter().any(|(_, w)| w.strong_count() > 0)
            || self.maps.iter().any(|(_, w)| w.strong_count() > 0)
    }
}

#[derive(Default)]
pub(crate) struct Catalog {
    pub records: Vec<Record>,
    pub next_record: u64,
    /// Saved records that could not be made again at start (their object no
    /// longer loads, ...): kept as saved, with their files, and written into
    /// every snapshot, so that nothing is lost; tried again at the next start.
    pub failed: BTreeMap<u64, Vec<store::Loaded>>,
}

impl Catalog {
    /// The record and name of the program with id `id`.
    pub fn prog_ref(&self, id: u32) -> Option<(u64, String)> {
        self.records.iter().find_map(|r| {
            r.progs
                .iter()
                .find(|(_, w)| w.upgrade().is_some_and(|p| p.id == id))
                .map(|(n, _)| (r.id, n.clone()))
        })
    }

    /// The record and name of the map with id `id`.
    pub fn map_ref(&self, id: u32) -> Option<(u64, String)> {
        self.records.iter().find_map(|r| {
            r.maps
                .iter()
                .find(|(_, w)| w.upgrade().is_some_and(|m| m.id == id))
                .map(|(n, _)| (r.id, n.clone()))
        })
    }
}

/// The daemon's shared state.
pub struct Daemon {
    pub(crate) rt: Runtime,
    pub(crate) state: Dir,
    pub(crate) fs: pinfs::PinFs,
    pub(crate) cat: Mutex<Catalog>,
    pub(crate) store: Mutex<Store>,
    pub(crate) values: values::Values,
    /// A hash of each map's contents as last journaled after a run (map id ->
    /// hash), so that a run that changed nothing writes nothing.
    pub(crate) run_saved: Mutex<std::collections::HashMap<u32, u64>>,
    pub(crate) trace_next: Mutex<u64>,
    pub(crate) net: crate::netglue::NetState,
}

/// Takes the directory's daemon lock (held until the process exits).
fn take_lock(dir: &Dir) -> Result<std::fs::File, DaemonError> {
    let f = dir.open_rw("daemon.lock")?;
    // SAFETY: flock on an fd we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        return Err(DaemonError::AlreadyRunning {
            path: dir.path().display().to_string(),
        });
    }
    Ok(f)
}

/// Runs the daemon in the foreground until `daemon stop`.
pub fn run(dir: &std::path::Path) -> Result<(), DaemonError> {
    let state = Dir::open_state(dir, true)?;
    let _lock = take_lock(&state)?;
    let fs = pinfs::PinFs::open(&state)?;
    let store_dir = state.subdir("store", true)?;
    let values = values::Values::open(&store_dir)?;
    let (store, mut entries, warnings) = Store::open(store_dir)?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    // State written by an earlier version: imported when the store is empty.
    let v1 = if entries.is_empty() {
        store.read_v1()?
    } else {
        None
    };
    let importing = v1.is_some();
    if let Some(e) = v1 {
        entries = e;
    }
    let d = Arc::new(Daemon {
        rt: Runtime::with_config(crate::runtime_config()),
        state,
        fs,
        cat: Mutex::new(Catalog::default()),
        store: Mutex::new(store),
        values,
        run_saved: Mutex::new(std::collections::HashMap::new()),
        trace_next: Mutex::new(0),
        net: crate::netglue::NetState::default(),
    });
    d.restore(entries)
        .map_err(|reason| DaemonError::Restore { reason })?;
    if importing {
        // Into the new store first (a snapshot), then the old file moved aside.
        let cat = lock(&d.cat);
        let mut store = lock(&d.store);
        d.compact(&cat, &mut store)?;
        let to = store.retire_v1()?;
        eprintln!("imported the state of an earlier version; the old file is now {to}");
    }
    let listener = transport::listen(&d.state)?;
    if let Ok(mut f) = d
        .state
        .unlink("daemon.pid")
        .or(Ok::<(), SafeFsError>(()))
        .and_then(|_| d.state.create_new("daemon.pid"))
    {
        let _ = writeln!(f, "{}", std::process::id());
    }
    eprintln!(
        "bpfvm daemon {} listening on {}",
        std::process::id(),
        d.state.path().join("sock").display()
    );
    let bg = d.clone();
    std::thread::spawn(move || bg.background());
    transport::serve(d, listener);
    Ok(())
}

impl Daemon {
    /// Waits for pin files to be removed (no polling), and exits when the socket
    /// is gone (state directory removed, or another daemon took over).
    fn background(&self) {
        let ino = || self.state.stat("sock").map(|st| st.st_ino);
        let mine = ino();
        loop {
            self.fs.wait(1000);
            if ino() != mine {
                eprintln!(
                    "bpfvm daemon {}: socket {} is gone, exiting",
                    std::process::id(),
                    self.state.path().join("sock").display()
                );
                std::process::exit(0);
            }
            self.sync_pins();
        }
    }

    /// Unpins objects whose file was removed, then forgets records nothing holds.
    pub(crate) fn sync_pins(&self) {
        let removed = self.fs.removed();
        if removed.is_empty() {
            return;
        }
        let mut unpinned = Vec::new();
        for (path, _) in self.rt.pins() {
            if removed.iter().any(|r| pinfs::under(&path, r)) {
                let parts = crate::safefs::check_pin_path(&path)
                    .map(|(_, p)| p)
                    .unwrap_or_default();
                if !self.fs.is_pin_file(&parts) {
                    let _ = self.rt.unpin(&path);
                    unpinned.push(store::Entry::Unpin { path });
                }
            }
        }
        if !unpinned.is_empty() {
            let mut cat = lock(&self.cat);
            let mut store = lock(&self.store);
            // The removed file is what makes the unpin durable (a pin whose file is
            // gone is not restored); the journal entry only keeps it tidy.
            let _ = store.append(&unpinned);
            self.gc(&mut cat, &mut store);
        }
    }

    /// Drops records none of whose objects is alive any more.
    pub(crate) fn gc(&self, cat: &mut Catalog, store: &mut Store) {
        let mut dropped = Vec::new();
        cat.records.retain(|r| {
            let keep = r.alive();
            if !keep {
                dropped.push((r.id, r.source.clone(), r.files.clone()));
            }
            keep
        });
        for (id, source, files) in dropped {
            if store.append(&[store::Entry::Drop { record: id }]).is_ok() {
                for f in source.stored_files() {
                    store.remove_object(&f);
                }
                self.values.remove(files.into_iter().map(|(_, f)| f));
            }
        }
    }

    /// `daemon stop`: folds the journal into a snapshot, removes the socket, exits.
    pub(crate) fn shutdown(&self) {
        self.sync_pins();
        {
            let cat = lock(&self.cat);
            let mut store = lock(&self.store);
            if let Err(e) = self.compact(&cat, &mut store) {
                // The journal still holds everything; the snapshot is an optimisation.
                eprintln!("warning: {}", crate::render::error_chain(&e));
            }
        }
        let _ = self.state.unlink("sock");
        let _ = self.state.unlink("daemon.pid");
        eprintln!("bpfvm daemon {} stopping", std::process::id());
    }
}
