//! Persistence: what brings pinned objects, map entries and attachments back after
//! a restart, with no cost while the daemon is idle.
//!
//! The store (`STATE/store/`) holds:
//! - `obj-N.o`: the bytes of each loaded object (created with O_EXCL, fsynced
//!   before the load is acknowledged);
//! - `journal`: an append-only log of [`Entry`]s, one per change a client made
//!   (load, pin, map update/delete/push/pop/freeze, attach/detach), appended and
//!   fdatasynced before the change is acknowledged;
//! - `snapshot`: the same entries, written whole (temporary file, fsync, rename)
//!   when the journal has grown past the snapshot's size (and at `daemon stop`):
//!   the state of every live record, map contents included (arrays as one raw
//!   block). The journal is then started afresh. Nothing is written periodically.
//!
//! Both files are sequences of frames: `u64 length (LE) | u32 crc32 | u8 kind |
//! payload`. A frame cut short at the end of the journal is a write that was
//! never acknowledged (the daemon died in the middle): it is cut off with a
//! warning. Any other damage makes the daemon refuse to start, naming the file.

use crate::safefs::{Dir, SafeFsError};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use thiserror::Error;

/// Format of the files (in the header entry).
pub const STORE_VERSION: u32 = 2;
/// Largest frame read back (a raw array block of the largest map allowed, 4 GiB,
/// plus its header).
const MAX_FRAME: u64 = (1 << 32) + (1 << 20);
const KIND_JSON: u8 = 0;
const KIND_BLOB: u8 = 1;
const JOURNAL: &str = "journal";
const SNAPSHOT: &str = "snapshot";

#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    Fs(#[from] SafeFsError),
    #[error("{file}: {reason} at byte {offset}; the daemon will not start over damaged state (move the file aside to start without it)")]
    Corrupt {
        file: String,
        offset: u64,
        reason: String,
    },
    #[error("cannot save the change to {file}")]
    Write {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the state store is damaged by an earlier write failure; restart the daemon")]
    Broken,
}

/// A map value as saved: bytes, or (for prog arrays and maps of maps) the object it
/// refers to, which gets a new id after a restart.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SavedValue {
    Hex(String),
    Prog { record: u64, name: String },
    Map { record: u64, name: String },
}

/// How a record's objects were created, enough to create them again.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    Object {
        file_name: String,
        /// File in `store/`.
        stored: String,
        prog_type: Option<String>,
        /// `prog load ... flags F`: loaded again with the same flags.
        #[serde(default, skip_serializing_if = "is_zero")]
        prog_flags: u32,
        /// `prog load ... unprivileged`: loaded again under the same rules.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        unprivileged: bool,
        /// The kernel config the load was given (`kconfig FILE`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kconfig: Option<String>,
        /// File in `store/` holding the CO-RE target BTF the load was given
        /// (`btf PATH`), so that a restart relocates the same way.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_btf: Option<String>,
    },
    Map {
        map_type: u32,
        key: u32,
        value: u32,
        entries: u32,
        flags: u32,
        name: String,
        /// A map-in-map's inner map template (`inner_map MAP`), kept as its
        /// definition: only that is what the kernel keeps of it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inner: Option<InnerMap>,
    },
}

/// The definition of a map-in-map's inner map template.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct InnerMap {
    pub map_type: u32,
    pub key: u32,
    pub value: u32,
    pub entries: u32,
    pub flags: u32,
}

impl Source {
    /// The files in `store/` this record owns.
    pub fn stored_files(&self) -> Vec<String> {
        match self {
            Source::Object {
                stored, target_btf, ..
            } => std::iter::once(stored.clone())
                .chain(target_btf.clone())
                .collect(),
            Source::Map { .. } => Vec::new(),
        }
    }
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// One change, as journaled (and as a snapshot lists the state).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Entry {
    /// First entry of each file.
    Header {
        version: u32,
        generation: u64,
    },
    Record {
        id: u64,
        source: Source,
    },
    /// The record's objects are all gone; its stored object may be removed.
    Drop {
        record: u64,
    },
    Pin {
        record: u64,
        /// `prog` or `map`.
        kind: String,
        name: String,
        path: String,
    },
    Unpin {
        path: String,
    },
    MapSet {
        record: u64,
        map: String,
        key: String,
        value: SavedValue,
    },
    MapDelete {
        record: u64,
        map: String,
        key: String,
    },
    /// The whole contents of a map (after a `prog run` changed it): replaces what
    /// the map held.
    MapContents {
        record: u64,
        map: String,
        entries: Vec<(String, SavedValue)>,
    },
    MapPush {
        record: u64,
        map: String,
        value: String,
    },
    MapPop {
        record: u64,
        map: String,
    },
    MapFreeze {
        record: u64,
        map: String,
    },
    /// A raw array block follows in the frame (snapshots only): the `len` bytes
    /// of the map's values, of which only the `segments` (offset, length) that
    /// are not all zero are in the block, one after the other.
    MapArray {
        record: u64,
        map: String,
        len: u64,
        segments: Vec<(u64, u64)>,
    },
    /// The values of a record's array map live in `file` (in `store/values/`).
    ValueFile {
        record: u64,
        map: String,
        file: String,
    },
    Attach {
        dev: String,
        record: u64,
        prog: String,
    },
    Detach {
        dev: String,
    },
}

impl Entry {
    /// The record an entry is about, if any.
    pub fn record(&self) -> Option<u64> {
        match self {
            Entry::Record { id, .. } => Some(*id),
            Entry::Drop { record }
            | Entry::Pin { record, .. }
            | Entry::MapSet { record, .. }
            | Entry::MapDelete { record, .. }
            | Entry::MapContents { record, .. }
            | Entry::MapPush { record, .. }
            | Entry::MapPop { record, .. }
            | Entry::MapFreeze { record, .. }
            | Entry::MapArray { record, .. }
            | Entry::ValueFile { record, .. }
            | Entry::Attach { record, .. } => Some(*record),
            Entry::Header { .. } | Entry::Unpin { .. } | Entry::Detach { .. } => None,
        }
    }
}

/// An entry with the raw block a `MapArray` entry carries.
#[derive(Clone)]
pub struct Loaded {
    pub entry: Entry,
    pub blob: Vec<u8>,
}

/// CRC-32 (IEEE, reflected), one table lookup per byte.
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

fn crc32(parts: &[&[u8]]) -> u32 {
    let mut c = !0u32;
    for p in parts {
        for &b in *p {
            c = CRC_TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
        }
    }
    !c
}

fn encode(entry: &Entry, blob: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(entry).unwrap_or_default();
    let (kind, payload_len) = if blob.is_empty() {
        (KIND_JSON, json.len())
    } else {
        (KIND_BLOB, 4 + json.len() + blob.len())
    };
    let mut head = Vec::with_capacity(13 + 4 + json.len());
    head.extend_from_slice(&(payload_len as u64).to_le_bytes());
    let crc_at = head.len();
    head.extend_from_slice(&[0; 4]);
    head.push(kind);
    let body_start = head.len();
    if kind == KIND_BLOB {
        head.extend_from_slice(&(json.len() as u32).to_le_bytes());
    }
    head.extend_from_slice(&json);
    let crc = crc32(&[&[kind], &head[body_start..], blob]);
    head[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    head
}

/// Reads the frames of `f`. `tolerate_tail`: a last frame cut short (or with a bad
/// checksum and nothing after it) is dropped, and its offset returned so the
/// caller can cut it off.
fn read_frames(
    f: File,
    file: &str,
    tolerate_tail: bool,
) -> Result<(Vec<Loaded>, u64, Option<u64>), StoreError> {
    let size = f
        .metadata()
        .map_err(|source| StoreError::Write {
            file: file.into(),
            source,
        })?
        .len();
    let mut r = BufReader::with_capacity(1 << 16, f);
    let mut off = 0u64;
    let mut out = Vec::new();
    let corrupt = |offset: u64, reason: String| StoreError::Corrupt {
        file: file.into(),
        offset,
        reason,
    };
    while off < size {
        let start = off;
        let remaining = size - off;
        if remaining < 13 {
            if tolerate_tail {
                return Ok((out, start, Some(start)));
            }
            return Err(corrupt(start, "truncated frame header".into()));
        }
        let mut head = [0u8; 13];
        r.read_exact(&mut head)
            .map_err(|e| corrupt(start, e.to_string()))?;
        let len = u64::from_le_bytes(head[..8].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(head[8..12].try_into().unwrap_or_default());
        let kind = head[12];
        if len > MAX_FRAME || kind > KIND_BLOB {
            return Err(corrupt(
                start,
                format!("bad frame (kind {kind}, length {len})"),
            ));
        }
        if len > remaining - 13 {
            if tolerate_tail {
                return Ok((out, start, Some(start)));
            }
            return Err(corrupt(
                start,
                format!(
                    "truncated: a frame of {len} bytes with {} left",
                    remaining - 13
                ),
            ));
        }
        let mut payload = vec![0u8; len as usize];
        r.read_exact(&mut payload)
            .map_err(|e| corrupt(start, e.to_string()))?;
        off = start + 13 + len;
        if crc32(&[&[kind], &payload]) != crc {
            if tolerate_tail && off == size {
                return Ok((out, start, Some(start)));
            }
            return Err(corrupt(start, "checksum mismatch".into()));
        }
        let (json, blob) = if kind == KIND_BLOB {
            if payload.len() < 4 {
                return Err(corrupt(start, "short block header".into()));
            }
            let jl = u32::from_le_bytes(payload[..4].try_into().unwrap_or_default()) as usize;
            if jl > payload.len() - 4 {
                return Err(corrupt(start, "bad block header".into()));
            }
            let blob = payload.split_off(4 + jl);
            (payload[4..].to_vec(), blob)
        } else {
            (payload, Vec::new())
        };
        let entry: Entry = serde_json::from_slice(&json)
            .map_err(|e| corrupt(start, format!("unreadable entry: {e}")))?;
        out.push(Loaded { entry, blob });
    }
    Ok((out, off, None))
}

/// The store: the journal open for appending, and where the snapshot goes.
pub struct Store {
    dir: Dir,
    journal: File,
    /// Bytes in the journal (appends go here; a failed append is cut back to it).
    journal_len: u64,
    generation: u64,
    /// Size of the last snapshot: the journal is compacted when it outgrows it.
    snapshot_len: u64,
    /// fdatasync before acknowledging (off only for measurements).
    pub sync: bool,
    broken: bool,
}

impl Store {
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Opens the store in `dir` and reads back what it holds: the snapshot's
    /// entries, then the journal's of the same generation. Warnings (a cut-off
    /// unacknowledged tail) are returned for the log.
    pub fn open(dir: Dir) -> Result<(Store, Vec<Loaded>, Vec<String>), StoreError> {
        let mut warnings = Vec::new();
        let mut entries = Vec::new();
        let mut generation = 0u64;
        let mut snapshot_len = 0u64;
        let snap_path = dir.path().join(SNAPSHOT).display().to_string();
        if dir.exists(SNAPSHOT) {
            let f = dir.open_read(SNAPSHOT)?;
            let (snap, len, _) = read_frames(f, &snap_path, false)?;
            snapshot_len = len;
            match snap.first().map(|l| &l.entry) {
                Some(Entry::Header {
                    version: STORE_VERSION,
                    generation: g,
                }) => generation = *g,
                _ => {
                    return Err(StoreError::Corrupt {
                        file: snap_path,
                        offset: 0,
                        reason: format!("no version {STORE_VERSION} header"),
                    })
                }
            }
            entries.extend(snap.into_iter().skip(1));
        }
        let jpath = dir.path().join(JOURNAL).display().to_string();
        let mut journal_len = 0u64;
        let journal = if dir.exists(JOURNAL) {
            let f = dir.open_read(JOURNAL)?;
            let (jr, len, cut) = read_frames(f, &jpath, true)?;
            let jgen = match jr.first().map(|l| &l.entry) {
                Some(Entry::Header {
                    version: STORE_VERSION,
                    generation: g,
                }) => Some(*g),
                None if cut.is_some() || len == 0 => None,
                _ => {
                    return Err(StoreError::Corrupt {
                        file: jpath,
                        offset: 0,
                        reason: format!("no version {STORE_VERSION} header"),
                    })
                }
            };
            let f = dir.open_rw(JOURNAL)?;
            if let Some(at) = cut {
                warnings.push(format!(
                    "{jpath}: an incomplete last entry at byte {at} (a write the daemon never acknowledged) was cut off"
                ));
                f.set_len(at).map_err(|source| StoreError::Write {
                    file: jpath.clone(),
                    source,
                })?;
                f.sync_all().map_err(|source| StoreError::Write {
                    file: jpath.clone(),
                    source,
                })?;
            }
            match jgen {
                Some(g) if g == generation => {
                    entries.extend(jr.into_iter().skip(1));
                    journal_len = cut.unwrap_or(len);
                    Some(f)
                }
                // Older than the snapshot: already in it (a crash came between
                // writing the snapshot and starting the new journal).
                Some(g) if g < generation => None,
                Some(g) => {
                    return Err(StoreError::Corrupt {
                        file: jpath,
                        offset: 0,
                        reason: format!(
                            "journal generation {g} is newer than the snapshot's {generation}"
                        ),
                    })
                }
                None => None,
            }
        } else {
            None
        };
        let mut st = Store {
            journal: match journal {
                Some(f) => f,
                None => dir.open_rw(JOURNAL)?, // replaced just below
            },
            dir,
            journal_len,
            generation,
            snapshot_len,
            sync: std::env::var("BPFVM_DAEMON_FSYNC").map_or(true, |v| v != "0"),
            broken: false,
        };
        if st.journal_len == 0 {
            st.new_journal()?;
        }
        let _ = st.journal.seek(SeekFrom::Start(st.journal_len));
        Ok((st, entries, warnings))
    }

    /// Starts a journal of the current generation (header only), atomically.
    fn new_journal(&mut self) -> Result<(), StoreError> {
        let head = encode(
            &Entry::Header {
                version: STORE_VERSION,
                generation: self.generation,
            },
            &[],
        );
        self.dir.write_atomic(JOURNAL, &head)?;
        let mut f = self.dir.open_rw(JOURNAL)?;
        f.seek(SeekFrom::End(0))
            .map_err(|source| StoreError::Write {
                file: self.path(JOURNAL),
                source,
            })?;
        self.journal = f;
        self.journal_len = head.len() as u64;
        Ok(())
    }

    /// Appends entries durably (one write, then fdatasync). On failure the journal
    /// is cut back to where it was, so the entries are as if never written.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), StoreError> {
        if self.broken {
            return Err(StoreError::Broken);
        }
        if entries.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for e in entries {
            buf.extend_from_slice(&encode(e, &[]));
        }
        let r = match super::fault::injected("journal-write") {
            // A torn write: part of the bytes reach the file, then the error.
            Some(e) => self.journal.write_all(&buf[..buf.len() / 2]).and(Err(e)),
            None => self.journal.write_all(&buf),
        };
        let r = r.and_then(|_| {
            if self.sync {
                if let Some(e) = super::fault::injected("journal-fdatasync") {
                    return Err(e);
                }
                // SAFETY: the fd is open.
                if unsafe { libc::fdatasync(self.journal.as_raw_fd()) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
        match r {
            Ok(()) => {
                self.journal_len += buf.len() as u64;
                Ok(())
            }
            Err(source) => {
                let cut = self
                    .journal
                    .set_len(self.journal_len)
                    .and_then(|_| self.journal.seek(SeekFrom::Start(self.journal_len)));
                if cut.is_err() {
                    self.broken = true;
                }
                Err(StoreError::Write {
                    file: self.path(JOURNAL),
                    source,
                })
            }
        }
    }

    /// Should the journal be folded into a new snapshot? (It has grown past the
    /// snapshot's size and 1 MiB: the copy's cost is paid for by as many bytes of
    /// changes.)
    pub fn wants_compaction(&self) -> bool {
        self.journal_len > (1 << 20).max(self.snapshot_len)
    }

    /// Writes a new snapshot from `write` (which streams the entries of the current
    /// state) and starts a new journal. On failure the old snapshot and journal
    /// stay as they were.
    pub fn compact(
        &mut self,
        write: impl FnOnce(&mut SnapshotWriter) -> std::io::Result<()>,
    ) -> Result<(), StoreError> {
        if self.broken {
            return Err(StoreError::Broken);
        }
        let generation = self.generation + 1;
        let tmp = format!(".{SNAPSHOT}.tmp.{}", std::process::id());
        let _ = self.dir.unlink(&tmp);
        let f = self.dir.create_new(&tmp)?;
        let mut w = SnapshotWriter {
            out: BufWriter::with_capacity(1 << 20, f),
            len: 0,
        };
        let r = w
            .entry(&Entry::Header {
                version: STORE_VERSION,
                generation,
            })
            .and_then(|_| write(&mut w))
            .and_then(|_| w.out.flush())
            .and_then(|_| w.out.get_ref().sync_all());
        let len = w.len;
        drop(w);
        if let Err(source) = r {
            let _ = self.dir.unlink(&tmp);
            return Err(StoreError::Write {
                file: self.path(SNAPSHOT),
                source,
            });
        }
        if let Err(e) = self
            .dir
            .rename(&tmp, SNAPSHOT)
            .and_then(|_| self.dir.sync())
        {
            let _ = self.dir.unlink(&tmp);
            return Err(e.into());
        }
        // From here the snapshot holds everything; the old journal is ignored
        // (older generation) even if starting the new one fails.
        self.generation = generation;
        self.snapshot_len = len;
        // Appends to the old journal would be ignored at the next start (it is of
        // an older generation than the snapshot): without a new one, accept no
        // more changes until a restart (which starts one).
        let r = self.new_journal();
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    /// Stores an object's bytes durably in a new file `name` (refused if anything
    /// is there; removed again if it cannot be written whole).
    pub fn put_object(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let mut f = self.dir.create_new(name)?;
        let r = f
            .write_all(bytes)
            .and_then(|_| if self.sync { f.sync_all() } else { Ok(()) })
            .map_err(|source| StoreError::Write {
                file: self.path(name),
                source,
            })
            .and_then(|_| {
                if self.sync {
                    self.dir.sync()?;
                }
                Ok(())
            });
        if r.is_err() {
            let _ = self.dir.unlink(name);
        }
        r
    }

    pub fn read_object(&self, name: &str, max: u64) -> Result<Vec<u8>, StoreError> {
        Ok(self.dir.read_capped(name, max)?)
    }

    pub fn remove_object(&self, name: &str) {
        let _ = self.dir.unlink(name);
    }

    /// Files in the store that are no object of `keep` (left by a crash between
    /// storing an object and journaling it).
    pub fn stray_objects(&self, keep: &[String]) -> Vec<String> {
        self.dir
            .entries()
            .unwrap_or_default()
            .into_iter()
            .filter(|(n, d)| !d && n.starts_with("obj-") && !keep.contains(n))
            .map(|(n, _)| n)
            .collect()
    }
}

/// Streams a snapshot's frames.
pub struct SnapshotWriter {
    out: BufWriter<File>,
    len: u64,
}

impl SnapshotWriter {
    pub fn entry(&mut self, e: &Entry) -> std::io::Result<()> {
        let b = encode(e, &[]);
        self.len += b.len() as u64;
        self.out.write_all(&b)
    }

    /// An entry as read back (with its block, if any).
    pub fn loaded(&mut self, l: &Loaded) -> std::io::Result<()> {
        let head = encode(&l.entry, &l.blob);
        self.len += (head.len() + l.blob.len()) as u64;
        self.out.write_all(&head)?;
        self.out.write_all(&l.blob)
    }

    /// A `MapArray` entry: `len` bytes of values, of which the `segments` that
    /// are not zero are in `blob`.
    pub fn array(
        &mut self,
        record: u64,
        map: &str,
        len: u64,
        segments: Vec<(u64, u64)>,
        blob: &[u8],
    ) -> std::io::Result<()> {
        let e = Entry::MapArray {
            record,
            map: map.to_string(),
            len,
            segments,
        };
        let head = encode(&e, blob);
        self.len += (head.len() + blob.len()) as u64;
        self.out.write_all(&head)?;
        self.out.write_all(blob)
    }
}

/// The state file of earlier versions (`store/state.json`, version 1): records
/// with their pins and map entries in hex. Read once, when the store has nothing
/// else, and converted to entries.
#[derive(Deserialize)]
struct V1State {
    version: u32,
    records: Vec<V1Record>,
}

#[derive(Deserialize)]
struct V1Record {
    id: u64,
    source: Source,
    pins: Vec<V1Pin>,
    maps: Vec<V1Map>,
}

#[derive(Deserialize)]
struct V1Pin {
    kind: String,
    name: String,
    path: String,
}

#[derive(Deserialize)]
struct V1Map {
    name: String,
    entries: Vec<(String, String)>,
}

/// The name of the version 1 state file in the store.
pub const V1_STATE: &str = "state.json";

impl Store {
    /// Entries from a version 1 `state.json`, if the store has one. A file that
    /// cannot be read is an error naming it (the daemon will not start over it).
    pub fn read_v1(&self) -> Result<Option<Vec<Loaded>>, StoreError> {
        if !self.dir.exists(V1_STATE) {
            return Ok(None);
        }
        let path = self.path(V1_STATE);
        let bytes = self.dir.read_capped(V1_STATE, 4 << 30)?;
        let st: V1State = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            file: path.clone(),
            offset: 0,
            reason: format!("unreadable: {e}"),
        })?;
        if st.version != 1 {
            return Err(StoreError::Corrupt {
                file: path,
                offset: 0,
                reason: format!("version {} is not one this build reads", st.version),
            });
        }
        let mut out = Vec::new();
        let mut push = |entry| {
            out.push(Loaded {
                entry,
                blob: Vec::new(),
            })
        };
        for r in st.records {
            push(Entry::Record {
                id: r.id,
                source: r.source,
            });
            for m in r.maps {
                for (key, value) in m.entries {
                    push(Entry::MapSet {
                        record: r.id,
                        map: m.name.clone(),
                        key,
                        value: SavedValue::Hex(value),
                    });
                }
            }
            for p in r.pins {
                push(Entry::Pin {
                    record: r.id,
                    kind: p.kind,
                    name: p.name,
                    path: p.path,
                });
            }
        }
        Ok(Some(out))
    }

    /// Moves the version 1 state file aside once its contents are in the store.
    pub fn retire_v1(&self) -> Result<String, StoreError> {
        let to = format!("{V1_STATE}.imported");
        self.dir.rename(V1_STATE, &to)?;
        self.dir.sync()?;
        Ok(self.path(&to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(&[b"123456789"]), 0xcbf4_3926);
    }

    #[test]
    fn journal_round_trip_tail_cut_and_corruption() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("s");
        let open = || Store::open(Dir::open_state(&d, true).unwrap());
        let (mut s, e, w) = open().unwrap();
        assert!(e.is_empty() && w.is_empty());
        let a = Entry::Unpin {
            path: "/sys/fs/bpf/a".into(),
        };
        let b = Entry::Detach {
            dev: "veth0".into(),
        };
        s.append(std::slice::from_ref(&a)).unwrap();
        s.append(std::slice::from_ref(&b)).unwrap();
        drop(s);
        let (s, e, _) = open().unwrap();
        assert_eq!(
            e.iter().map(|l| l.entry.clone()).collect::<Vec<_>>(),
            [a.clone(), b.clone()]
        );
        drop(s);
        // A torn last write is cut off with a warning.
        let j = d.join("journal");
        let full = std::fs::read(&j).unwrap();
        std::fs::write(&j, &full[..full.len() - 3]).unwrap();
        let (mut s, e, w) = open().unwrap();
        assert_eq!(e.len(), 1);
        assert!(w[0].contains("cut off"), "{w:?}");
        // Compaction: a snapshot, and a new journal.
        s.compact(|w| {
            w.entry(&a)?;
            w.array(1, "m", 4096, vec![(0, 8)], &[1, 2, 3, 4, 0, 0, 0, 0])
        })
        .unwrap();
        s.append(std::slice::from_ref(&b)).unwrap();
        drop(s);
        let (_, e, _) = open().unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[1].blob, [1, 2, 3, 4, 0, 0, 0, 0]);
        // Damage in the middle of the snapshot: refused, file named.
        let sp = d.join("snapshot");
        let mut bytes = std::fs::read(&sp).unwrap();
        let n = bytes.len();
        bytes[n / 2] ^= 0xff;
        std::fs::write(&sp, &bytes).unwrap();
        let err = open().err().unwrap().to_string();
        assert!(
            err.contains("snapshot") && err.contains("checksum"),
            "{err}"
        );
        // Truncated snapshot: refused too.
        std::fs::write(&sp, &bytes[..n - 2]).unwrap();
        assert!(open().is_err());
    }
}
