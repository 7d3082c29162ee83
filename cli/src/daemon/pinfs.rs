//! The pin files: `STATE/fs/sys/fs/bpf/...` shows each pin as a file, as bpffs
//! does, and removing the file unpins the object as `rm` does on bpffs.
//!
//! Every directory and file is made relative to its parent's descriptor without
//! following links; a pin file is created with O_EXCL, so a planted file or
//! symlink makes the pin fail ("File exists") instead of writing through it.
//! Removals are noticed through inotify (no polling: an idle daemon does no work,
//! however many pins it holds); pending events are read before each request.

use crate::safefs::{Dir, SafeFsError};
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;

pub struct PinFs {
    root: Dir,
    inotify: OwnedFd,
    /// Watch descriptor -> the pin path of the watched directory
    /// (`/sys/fs/bpf/dir`).
    watches: Mutex<HashMap<i32, String>>,
}

const MASK: u32 = libc::IN_DELETE | libc::IN_MOVED_FROM | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF;

impl PinFs {
    /// `fs/` in the state directory (made if missing), watched whole.
    pub fn open(state: &Dir) -> Result<PinFs, SafeFsError> {
        let root = state.subdir("fs", true)?;
        // SAFETY: inotify_init1 has no preconditions; the result is checked.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(SafeFsError::Io {
                path: "inotify".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        let p = PinFs {
            root,
            // SAFETY: just created, owned here.
            inotify: unsafe { OwnedFd::from_raw_fd(fd) },
            watches: Mutex::new(HashMap::new()),
        };
        Ok(p)
    }

    pub fn inotify_fd(&self) -> i32 {
        self.inotify.as_raw_fd()
    }

    fn watch(&self, d: &Dir, pin_dir: &str) {
        let path = d.proc_path("");
        let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
            return;
        };
        // SAFETY: the inotify fd is open; c is NUL-terminated.
        let wd = unsafe {
            libc::inotify_add_watch(
                self.inotify.as_raw_fd(),
                c.as_ptr(),
                MASK | libc::IN_ONLYDIR,
            )
        };
        if wd >= 0 {
            self.watches
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(wd, pin_dir.to_string());
        }
    }

    /// Opens (with `create`, makes) the directories `sys/fs/bpf/<parts>` and watches
    /// them. Returns the innermost directory and the names of directories made.
    fn walk(&self, parts: &[String], create: bool) -> Result<(Dir, Vec<String>), SafeFsError> {
        let mut made = Vec::new();
        let mut d = self.open_dir_chain(&["sys", "fs", "bpf"], create)?;
        self.watch(&d, crate::safefs::BPFFS);
        let mut pin_dir = crate::safefs::BPFFS.to_string();
        for p in parts {
            let existed = d.exists(p);
            let sub = d.subdir(p, create)?;
            pin_dir = format!("{pin_dir}/{p}");
            if !existed {
                made.push(pin_dir.clone());
            }
            self.watch(&sub, &pin_dir);
            d = sub;
        }
        Ok((d, made))
    }

    fn open_dir_chain(&self, names: &[&str], create: bool) -> Result<Dir, SafeFsError> {
        let mut d = self.root.subdir(names[0], create)?;
        for n in &names[1..] {
            d = d.subdir(n, create)?;
        }
        Ok(d)
    }

    /// Creates the file of a pin (`parts` below /sys/fs/bpf). Fails with
    /// `AlreadyExists` if anything is there; on any failure nothing is left behind
    /// (directories it made are removed again). Returns the directories it made
    /// (pin paths), for [`PinFs::remove_dirs_made`].
    pub fn create(&self, parts: &[String], text: &str) -> Result<Vec<String>, SafeFsError> {
        let (last, dirs) = parts.split_last().ok_or_else(|| SafeFsError::BadName {
            path: self.root.path().display().to_string(),
            name: String::new(),
        })?;
        let (d, made) = self.walk(dirs, true)?;
        let r = (|| {
            let mut f = d.create_new(last)?;
            if let Err(source) = f.write_all(text.as_bytes()) {
                let _ = d.unlink(last);
                return Err(SafeFsError::Io {
                    path: d.path().join(last).display().to_string(),
                    source,
                });
            }
            Ok(())
        })();
        if r.is_err() {
            self.remove_dirs(dirs, &made);
        }
        r.map(|_| made)
    }

    /// Removes directories [`PinFs::create`] made (pin paths), innermost first,
    /// if they are empty.
    pub fn remove_dirs_made(&self, made: &[String]) {
        let mut v: Vec<&String> = made.iter().collect();
        v.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for d in v {
            let Ok((_, parts)) = crate::safefs::check_pin_path(d) else {
                continue;
            };
            if let Some((last, up)) = parts.split_last() {
                if let Ok((parent, _)) = self.walk(up, false) {
                    let _ = parent.rmdir(last);
                }
            }
        }
    }

    /// Removes the directories `made` (innermost first) if they are empty.
    fn remove_dirs(&self, dirs: &[String], made: &[String]) {
        for n in (0..dirs.len()).rev() {
            let pin_dir = format!("{}/{}", crate::safefs::BPFFS, dirs[..=n].join("/"));
            if !made.contains(&pin_dir) {
                break;
            }
            if let Ok((parent, _)) = self.walk(&dirs[..n], false) {
                let _ = parent.rmdir(&dirs[n]);
            }
        }
    }

    /// Does the pin's file exist (as a regular file)?
    pub fn exists(&self, parts: &[String]) -> bool {
        let Some((last, dirs)) = parts.split_last() else {
            return false;
        };
        match self.walk(dirs, false) {
            Ok((d, _)) => d.stat(last).is_some(),
            Err(_) => false,
        }
    }

    /// Is the pin's file there and a regular file (not something planted)?
    pub fn is_pin_file(&self, parts: &[String]) -> bool {
        let Some((last, dirs)) = parts.split_last() else {
            return false;
        };
        match self.walk(dirs, false) {
            Ok((d, _)) => d
                .stat(last)
                .is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG),
            Err(_) => false,
        }
    }

    /// Removes a pin's file (after a failed operation).
    pub fn remove(&self, parts: &[String]) {
        if let Some((last, dirs)) = parts.split_last() {
            if let Ok((d, _)) = self.walk(dirs, false) {
                let _ = d.unlink(last);
            }
        }
    }

    /// Pin paths whose files were removed since the last call (non-blocking).
    /// A removed directory stands for every pin below it.
    pub fn removed(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            // SAFETY: the fd is open; buf is writable for its length.
            let n =
                unsafe { libc::read(self.inotify.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            let n = n as usize;
            let mut off = 0;
            let mut watches = self.watches.lock().unwrap_or_else(|e| e.into_inner());
            let hdr = std::mem::size_of::<libc::inotify_event>();
            while off + hdr <= n {
                // SAFETY: the kernel wrote a whole event header at `off`.
                let ev: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf.as_ptr().add(off).cast()) };
                let name_bytes = &buf[off + hdr..(off + hdr + ev.len as usize).min(n)];
                let name = std::str::from_utf8(name_bytes)
                    .unwrap_or("")
                    .trim_end_matches('\0');
                off += hdr + ev.len as usize;
                let Some(dir) = watches.get(&ev.wd) else {
                    continue;
                };
                if ev.mask & (libc::IN_DELETE_SELF | libc::IN_MOVE_SELF) != 0 {
                    out.push(dir.clone());
                } else if !name.is_empty() {
                    out.push(format!("{dir}/{name}"));
                }
                if ev.mask & libc::IN_IGNORED != 0 {
                    // The directory is gone: its watch with it.
                    watches.remove(&ev.wd);
                }
            }
        }
        out
    }

    /// Blocks until the fs tree changes or `ms` pass.
    pub fn wait(&self, ms: i32) {
        let mut p = libc::pollfd {
            fd: self.inotify.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, ms) };
    }
}

/// Is `pin` equal to or below the path `dir`?
pub fn under(pin: &str, dir: &str) -> bool {
    pin == dir || (pin.starts_with(dir) && pin.as_bytes().get(dir.len()) == Some(&b'/'))
}
