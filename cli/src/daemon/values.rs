//! Array maps' value memory as files in `STATE/store/values/` (`v-N.bin`), mapped
//! shared by the maps themselves: what programs and clients write is in the file
//! at once (it survives kill -9 of the daemon), nothing is copied while the daemon
//! is idle, and a snapshot only names the file. Each file's blocks are allocated
//! when it is made, so a write through the mapping never meets a full disk; a
//! map whose file cannot be made fails to be created ("No space left on device").
//!
//! Arrays larger than [`MAX_FILE_BACKED`] stay in memory (a huge, mostly empty
//! `.bss` costs nothing until touched there) and are saved by snapshot.

use crate::safefs::Dir;
use bpfvm::maps::{MapAttr, MapType, ValueFile};
use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest array whose values live in a file (bytes).
pub const MAX_FILE_BACKED: u64 = 1 << 30;

pub struct Values {
    pub dir: Dir,
    next: AtomicU64,
}

pub fn file_name(id: u64) -> String {
    format!("v-{id}.bin")
}

fn id_of(name: &str) -> Option<u64> {
    name.strip_prefix("v-")?.strip_suffix(".bin")?.parse().ok()
}

impl Values {
    pub fn open(store: &Dir) -> Result<Values, crate::safefs::SafeFsError> {
        let dir = store.subdir("values", true)?;
        let next = dir
            .entries()?
            .iter()
            .filter_map(|(n, _)| id_of(n))
            .max()
            .map_or(0, |m| m + 1);
        Ok(Values {
            dir,
            next: AtomicU64::new(next),
        })
    }

    /// Makes a new value file of `bytes` bytes, blocks allocated.
    fn create(&self, bytes: u64) -> std::io::Result<ValueFile> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let name = file_name(id);
        let f = self
            .dir
            .open_rw_new(&name)
            .map_err(|e| std::io::Error::other(crate::render::error_chain(&e)))?;
        // SAFETY: fallocate on an open file; the result is checked.
        let r = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, bytes as libc::off_t) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            drop(f);
            let _ = self.dir.unlink(&name);
            return Err(e);
        }
        Ok(ValueFile { file: f, id })
    }

    /// Runs `body` with every array map it creates on this thread (up to
    /// [`MAX_FILE_BACKED`]) given a value file; returns the ids of the files made.
    pub fn with_files<R>(&self, body: impl FnOnce() -> R) -> (R, Vec<u64>) {
        let made = RefCell::new(Vec::new());
        let provider = |attr: &MapAttr, bytes: u64| -> Option<std::io::Result<ValueFile>> {
            let array = matches!(attr.map_type, MapType::Array | MapType::PercpuArray);
            if !array || bytes == 0 || bytes > MAX_FILE_BACKED {
                return None;
            }
            let r = self.create(bytes);
            if let Ok(vf) = &r {
                made.borrow_mut().push(vf.id);
            }
            Some(r)
        };
        let r = bpfvm::maps::with_value_files(&provider, body);
        (r, made.into_inner())
    }

    /// Removes value files (of a failed or dropped record, or stray ones).
    pub fn remove(&self, names: impl IntoIterator<Item = String>) {
        for n in names {
            let _ = self.dir.unlink(&n);
        }
    }

    /// Flushes a value file's pages to disk.
    pub fn sync(&self, name: &str) -> std::io::Result<()> {
        let f = self
            .dir
            .open_rw(name)
            .map_err(|e| std::io::Error::other(crate::render::error_chain(&e)))?;
        if let Some(e) = super::fault::injected("values-sync") {
            return Err(e);
        }
        f.sync_data()
    }

    /// Copies the contents of value file `from` into `to` (after a restart: the
    /// new map's file gets the old one's values). Returns the bytes copied.
    pub fn copy(&self, from: &str, to: &str) -> std::io::Result<u64> {
        let err =
            |e: crate::safefs::SafeFsError| std::io::Error::other(crate::render::error_chain(&e));
        let src = self.dir.open_read(from).map_err(err)?;
        let dst = self.dir.open_rw(to).map_err(err)?;
        let (a, b) = (src.metadata()?.len(), dst.metadata()?.len());
        if a != b {
            return Err(std::io::Error::other(format!(
                "{from} has {a} bytes, the map {b} (was the CPU count different?)"
            )));
        }
        let mut off = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        use std::os::unix::fs::FileExt;
        while off < a {
            let n = src.read_at(&mut buf, off)?;
            if n == 0 {
                break;
            }
            // Zero blocks need no copy: the new file is zero-filled.
            if buf[..n].iter().any(|&x| x != 0) {
                dst.write_all_at(&buf[..n], off)?;
            }
            off += n as u64;
        }
        Ok(off)
    }

    /// Value files not in `keep`.
    pub fn strays(&self, keep: &[String]) -> Vec<String> {
        self.dir
            .entries()
            .unwrap_or_default()
            .into_iter()
            .filter(|(n, d)| !d && id_of(n).is_some() && !keep.contains(n))
            .map(|(n, _)| n)
            .collect()
    }
}

/// Value files made while creating a record's maps: removed unless kept (the
/// creation failed, or a file went to no map of the record).
pub struct FilesGuard<'a> {
    values: &'a Values,
    made: Vec<u64>,
}

impl<'a> FilesGuard<'a> {
    pub fn new(values: &'a Values, made: Vec<u64>) -> Self {
        FilesGuard { values, made }
    }

    /// (map, file) for each of `maps` whose values are in a file made here;
    /// files no map uses are removed now.
    pub fn assign<'m>(
        &mut self,
        maps: impl IntoIterator<Item = (&'m str, &'m bpfvm::MapObj)>,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, m) in maps {
            if let Some(id) = m.value_file().filter(|id| self.made.contains(id)) {
                out.push((name.to_string(), file_name(id)));
            }
        }
        let used: Vec<String> = out.iter().map(|(_, f)| f.clone()).collect();
        self.values.remove(
            self.made
                .iter()
                .map(|&id| file_name(id))
                .filter(|f| !used.contains(f)),
        );
        self.made.retain(|&id| used.contains(&file_name(id)));
        out
    }

    /// The record was made: its files stay.
    pub fn keep(&mut self) {
        self.made.clear();
    }
}

impl Drop for FilesGuard<'_> {
    fn drop(&mut self) {
        self.values
            .remove(self.made.iter().map(|&id| file_name(id)));
    }
}
