//! Files the daemon and the client touch, opened so that nobody else can redirect
//! them: the state directory is trusted only if the caller owns it, it is no
//! symlink and nobody else can write it (nor any directory above it, unless
//! sticky like /tmp); everything under it is opened relative to a directory
//! descriptor with `O_NOFOLLOW` (and `O_EXCL` when created), and replaced by
//! write-temporary + fsync + `renameat` + fsync of the directory.
//!
//! Nothing here changes the mode of, empties or replaces an existing directory.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use thiserror::Error;

/// Why a directory or file is refused.
#[derive(Debug, Error)]
pub enum SafeFsError {
    #[error("state directory {path} is not safe to use: {reason}")]
    Untrusted { path: String, reason: String },
    #[error("{path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: file of {size} bytes is larger than the {max}-byte limit")]
    TooLarge { path: String, size: u64, max: u64 },
    #[error("{path}: invalid file name {name:?}")]
    BadName { path: String, name: String },
}

fn io_err(path: &Path, source: std::io::Error) -> SafeFsError {
    SafeFsError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

fn cstr(b: &[u8]) -> std::io::Result<CString> {
    CString::new(b).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
}

fn fstat(fd: RawFd) -> std::io::Result<libc::stat> {
    // SAFETY: an all-zero stat is a valid buffer for fstat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open; st is a valid buffer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st)
}

fn lstat(p: &Path) -> std::io::Result<libc::stat> {
    let c = cstr(p.as_os_str().as_bytes())?;
    // SAFETY: as in fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: c is NUL-terminated; st is a valid buffer.
    if unsafe { libc::lstat(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st)
}

fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// Why `st` (a directory the caller will write into) is not trusted, if it is not.
fn distrust(st: &libc::stat) -> Option<String> {
    let kind = st.st_mode & libc::S_IFMT;
    if kind == libc::S_IFLNK {
        return Some("it is a symbolic link".into());
    }
    if kind != libc::S_IFDIR {
        return Some("it is not a directory".into());
    }
    if st.st_uid != euid() {
        return Some(format!(
            "it is owned by uid {}, not by uid {} (you)",
            st.st_uid,
            euid()
        ));
    }
    if st.st_mode & 0o022 != 0 {
        return Some(format!(
            "it is writable by group or others (mode {:04o}); it must not be",
            st.st_mode & 0o7777
        ));
    }
    None
}

/// The directories above `dir` must not let anyone else swap it: each owned by root
/// or the caller, and writable by others only if sticky (as /tmp is).
fn check_ancestors(dir: &Path) -> Result<(), SafeFsError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    let Ok(real) = std::fs::canonicalize(parent) else {
        return Ok(()); // Reported when the directory itself is opened.
    };
    let mut p = PathBuf::new();
    for c in real.components() {
        p.push(c);
        let st = lstat(&p).map_err(|e| io_err(&p, e))?;
        let writable_by_others = st.st_mode & 0o022 != 0;
        let sticky = st.st_mode & libc::S_ISVTX as libc::mode_t != 0;
        if (st.st_uid != 0 && st.st_uid != euid()) || (writable_by_others && !sticky) {
            return Err(SafeFsError::Untrusted {
                path: dir.display().to_string(),
                reason: format!(
                    "{} above it is owned by uid {} with mode {:04o}: another user could replace it",
                    p.display(),
                    st.st_uid,
                    st.st_mode & 0o7777
                ),
            });
        }
    }
    Ok(())
}

/// A name of one entry in a directory: no `/`, not empty, not `.` or `..`.
fn check_name(dir: &Path, name: &str) -> Result<CString, SafeFsError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(SafeFsError::BadName {
            path: dir.display().to_string(),
            name: name.to_string(),
        });
    }
    cstr(name.as_bytes()).map_err(|e| io_err(dir, e))
}

/// An open directory that was checked to be trusted; every operation is relative
/// to its descriptor and never follows a symlink.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl Dir {
    /// Opens the state directory `path`, creating it (0700; missing parents with
    /// the default mode) when `create` is set and it does not exist. Refuses a
    /// directory that is a symlink, is not the caller's, or that group or others
    /// can write, naming the path and the reason. Never changes an existing one.
    pub fn open_state(path: &Path, create: bool) -> Result<Dir, SafeFsError> {
        match lstat(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
                }
                check_ancestors(path)?;
                let c = cstr(path.as_os_str().as_bytes()).map_err(|e| io_err(path, e))?;
                // SAFETY: c is NUL-terminated.
                if unsafe { libc::mkdir(c.as_ptr(), 0o700) } != 0 {
                    let e = std::io::Error::last_os_error();
                    // Another client made it at the same time: checked below.
                    if e.kind() != std::io::ErrorKind::AlreadyExists {
                        return Err(io_err(path, e));
                    }
                }
            }
            Err(e) => return Err(io_err(path, e)),
        }
        check_ancestors(path)?;
        let st = lstat(path).map_err(|e| io_err(path, e))?;
        if let Some(reason) = distrust(&st) {
            return Err(SafeFsError::Untrusted {
                path: path.display().to_string(),
                reason,
            });
        }
        let c = cstr(path.as_os_str().as_bytes()).map_err(|e| io_err(path, e))?;
        // SAFETY: c is NUL-terminated; the result is checked.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io_err(path, std::io::Error::last_os_error()));
        }
        // SAFETY: fd was just opened and is owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // The directory opened is the one checked (not swapped in between).
        let st2 = fstat(fd.as_raw_fd()).map_err(|e| io_err(path, e))?;
        if st2.st_dev != st.st_dev || st2.st_ino != st.st_ino {
            return Err(SafeFsError::Untrusted {
                path: path.display().to_string(),
                reason: "it was replaced while being opened".into(),
            });
        }
        if let Some(reason) = distrust(&st2) {
            return Err(SafeFsError::Untrusted {
                path: path.display().to_string(),
                reason,
            });
        }
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// A path naming `name` in this directory through the descriptor
    /// (`/proc/self/fd/N/name`): for calls that take no directory descriptor
    /// (bind, connect), so that no symlink above can redirect them.
    pub fn proc_path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}/{name}", self.fd.as_raw_fd()))
    }

    fn child_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The subdirectory `name`, made (0700) if missing and `create`; refused if it is
    /// a symlink, not ours, or writable by others.
    pub fn subdir(&self, name: &str, create: bool) -> Result<Dir, SafeFsError> {
        let c = check_name(&self.path, name)?;
        let path = self.child_path(name);
        if create {
            // SAFETY: fd is a directory; c is NUL-terminated.
            if unsafe { libc::mkdirat(self.raw_fd(), c.as_ptr(), 0o700) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::AlreadyExists {
                    return Err(io_err(&path, e));
                }
            }
        }
        // SAFETY: as above; the result is checked.
        let fd = unsafe {
            libc::openat(
                self.raw_fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::ENOTDIR) {
                return Err(SafeFsError::Untrusted {
                    path: path.display().to_string(),
                    reason: "it is a symbolic link or not a directory".into(),
                });
            }
            return Err(io_err(&path, e));
        }
        // SAFETY: just opened, owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let st = fstat(fd.as_raw_fd()).map_err(|e| io_err(&path, e))?;
        if let Some(reason) = distrust(&st) {
            return Err(SafeFsError::Untrusted {
                path: path.display().to_string(),
                reason,
            });
        }
        Ok(Dir { fd, path })
    }

    fn openat(&self, name: &str, flags: i32, mode: libc::mode_t) -> Result<File, SafeFsError> {
        let c = check_name(&self.path, name)?;
        // SAFETY: fd is a directory; c is NUL-terminated; the result is checked.
        let fd = unsafe {
            libc::openat(
                self.raw_fd(),
                c.as_ptr(),
                // O_NONBLOCK: a FIFO planted where a file is expected must not
                // block the open (it is then refused as not a regular file); it
                // changes nothing for regular files.
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK,
                mode as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(io_err(
                &self.child_path(name),
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: just opened, owned by the File.
        let f = unsafe { File::from_raw_fd(fd) };
        // A regular file only (not a FIFO or device someone planted).
        let st = fstat(f.as_raw_fd()).map_err(|e| io_err(&self.child_path(name), e))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(SafeFsError::Untrusted {
                path: self.child_path(name).display().to_string(),
                reason: "it is not a regular file".into(),
            });
        }
        Ok(f)
    }

    /// Opens `name` for reading (no symlink, regular file only).
    pub fn open_read(&self, name: &str) -> Result<File, SafeFsError> {
        self.openat(name, libc::O_RDONLY, 0)
    }

    /// Creates `name` (mode 0600); fails if anything exists there.
    pub fn create_new(&self, name: &str) -> Result<File, SafeFsError> {
        self.openat(name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o600)
    }

    /// Opens `name` for appending, creating it (0600) if missing.
    pub fn open_append(&self, name: &str) -> Result<File, SafeFsError> {
        self.openat(name, libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT, 0o600)
    }

    /// Creates `name` (0600) for reading and writing; fails if anything is there.
    pub fn open_rw_new(&self, name: &str) -> Result<File, SafeFsError> {
        self.openat(name, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, 0o600)
    }

    /// Opens `name` for reading and writing, creating it (0600) if missing.
    pub fn open_rw(&self, name: &str) -> Result<File, SafeFsError> {
        self.openat(name, libc::O_RDWR | libc::O_CREAT, 0o600)
    }

    /// Reads `name` whole, refusing files above `max` bytes before reading.
    pub fn read_capped(&self, name: &str, max: u64) -> Result<Vec<u8>, SafeFsError> {
        let f = self.open_read(name)?;
        read_file_capped(f, &self.child_path(name), max)
    }

    /// Is there an entry `name` (of any kind, links not followed)?
    pub fn exists(&self, name: &str) -> bool {
        self.stat(name).is_some()
    }

    /// The entry `name`'s lstat, if it exists.
    pub fn stat(&self, name: &str) -> Option<libc::stat> {
        let c = check_name(&self.path, name).ok()?;
        // SAFETY: as in fstat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fd is a directory; c is NUL-terminated; st is a valid buffer.
        let r = unsafe {
            libc::fstatat(
                self.raw_fd(),
                c.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        (r == 0).then_some(st)
    }

    /// Removes the file `name` (a symlink is removed, never followed).
    pub fn unlink(&self, name: &str) -> Result<(), SafeFsError> {
        let c = check_name(&self.path, name)?;
        // SAFETY: fd is a directory; c is NUL-terminated.
        if unsafe { libc::unlinkat(self.raw_fd(), c.as_ptr(), 0) } != 0 {
            return Err(io_err(
                &self.child_path(name),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Removes the empty directory `name`.
    pub fn rmdir(&self, name: &str) -> Result<(), SafeFsError> {
        let c = check_name(&self.path, name)?;
        // SAFETY: as in unlink.
        if unsafe { libc::unlinkat(self.raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) } != 0 {
            return Err(io_err(
                &self.child_path(name),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Renames `from` to `to` within this directory (replacing `to`).
    pub fn rename(&self, from: &str, to: &str) -> Result<(), SafeFsError> {
        let a = check_name(&self.path, from)?;
        let b = check_name(&self.path, to)?;
        // SAFETY: both names NUL-terminated, relative to the same directory fd.
        if unsafe { libc::renameat(self.raw_fd(), a.as_ptr(), self.raw_fd(), b.as_ptr()) } != 0 {
            return Err(io_err(
                &self.child_path(to),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Flushes the directory's entries (after a create, rename or unlink).
    pub fn sync(&self) -> Result<(), SafeFsError> {
        // SAFETY: fd is open.
        if unsafe { libc::fsync(self.raw_fd()) } != 0 {
            return Err(io_err(&self.path, std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Replaces `name` with `bytes` atomically and durably: a new temporary file
    /// (O_EXCL), fsync, renameat over `name`, fsync of the directory. On failure
    /// the temporary file is removed and `name` is unchanged.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), SafeFsError> {
        let tmp = format!(
            ".{name}.tmp.{}.{}",
            std::process::id(),
            TMP_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let r = (|| {
            let mut f = self.create_new(&tmp)?;
            f.write_all(bytes)
                .and_then(|_| f.sync_all())
                .map_err(|e| io_err(&self.child_path(name), e))?;
            drop(f);
            self.rename(&tmp, name)?;
            self.sync()
        })();
        if r.is_err() {
            let _ = self.unlink(&tmp);
        }
        r
    }

    /// Names in this directory with whether each is a directory (links not followed).
    pub fn entries(&self) -> Result<Vec<(String, bool)>, SafeFsError> {
        // Read through a fresh descriptor of this directory (readdir consumes its
        // position), reached without following links.
        // SAFETY: fd is open; the result is checked.
        let fd = unsafe {
            libc::openat(
                self.raw_fd(),
                c".".as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io_err(&self.path, std::io::Error::last_os_error()));
        }
        // SAFETY: fd is a directory descriptor we own; fdopendir takes it over.
        let d = unsafe { libc::fdopendir(fd) };
        if d.is_null() {
            // SAFETY: fdopendir failed, so fd is still ours to close.
            unsafe { libc::close(fd) };
            return Err(io_err(&self.path, std::io::Error::last_os_error()));
        }
        let mut out = Vec::new();
        loop {
            // SAFETY: d is a valid DIR*.
            let e = unsafe { libc::readdir(d) };
            if e.is_null() {
                break;
            }
            // SAFETY: readdir returns a valid dirent with a NUL-terminated name.
            let name = unsafe { std::ffi::CStr::from_ptr((*e).d_name.as_ptr()) };
            let name = OsStr::from_bytes(name.to_bytes());
            let Some(name) = name.to_str() else { continue };
            if name == "." || name == ".." {
                continue;
            }
            let is_dir = self.stat(name).is_some_and(|st| is_dir(&st));
            out.push((name.to_string(), is_dir));
        }
        // SAFETY: d came from fdopendir and is closed once.
        unsafe { libc::closedir(d) };
        out.sort();
        Ok(out)
    }
}

/// Reads an open file whole, after checking with fstat that it is a regular file
/// of at most `max` bytes; the read itself is capped too (the file may grow).
pub fn read_file_capped(mut f: File, path: &Path, max: u64) -> Result<Vec<u8>, SafeFsError> {
    let st = fstat(f.as_raw_fd()).map_err(|e| io_err(path, e))?;
    if st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_size as u64 > max {
        return Err(SafeFsError::TooLarge {
            path: path.display().to_string(),
            size: st.st_size as u64,
            max,
        });
    }
    let mut buf = Vec::new();
    (&mut f)
        .take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_err(path, e))?;
    if buf.len() as u64 > max {
        return Err(SafeFsError::TooLarge {
            path: path.display().to_string(),
            size: buf.len() as u64,
            max,
        });
    }
    Ok(buf)
}

/// The largest input file a command reads (an object, BTF, a packet).
pub const MAX_INPUT: u64 = 64 << 20;

/// Reads a user-named input file (an object, a packet) capped at `max` bytes:
/// size checked before reading, reading stops past the limit (pipes included).
pub fn read_input_capped(path: &Path, max: u64) -> Result<Vec<u8>, SafeFsError> {
    let f = File::open(path).map_err(|e| io_err(path, e))?;
    read_file_capped(f, path, max)
}

/// Why a pin path is refused, as the kernel would refuse it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PinPathError {
    #[error(
        "can't pin the object ({path}): Operation not permitted (pins live under /sys/fs/bpf)"
    )]
    NotBpffs { path: String },
    #[error("can't pin the object ({path}): Invalid argument ({reason})")]
    Invalid { path: String, reason: String },
    #[error("can't pin the object ({path}...): File name too long")]
    TooLong { path: String },
}

/// The bpffs mount point: pins are names under it.
pub const BPFFS: &str = "/sys/fs/bpf";

/// A pin path checked lexically (nothing on the host is looked at): absolute, no
/// `..`, no empty or `.` components once normalised, under /sys/fs/bpf and not
/// /sys/fs/bpf itself. Returns the normalised path and its components below
/// /sys/fs/bpf.
pub fn check_pin_path(p: &str) -> Result<(String, Vec<String>), PinPathError> {
    let invalid = |reason: &str| PinPathError::Invalid {
        path: p.to_string(),
        reason: reason.into(),
    };
    if !p.starts_with('/') {
        return Err(PinPathError::NotBpffs { path: p.into() });
    }
    if p.contains('\0') {
        return Err(invalid("NUL in path"));
    }
    if p.len() >= 4096 {
        return Err(PinPathError::TooLong {
            path: p.chars().take(64).collect(),
        });
    }
    let mut parts: Vec<String> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err(invalid("'..' in a pin path")),
            Component::Normal(s) => {
                let s = s.to_str().ok_or_else(|| invalid("pin path is not UTF-8"))?;
                parts.push(s.to_string());
            }
            Component::Prefix(_) => return Err(invalid("unexpected path prefix")),
        }
    }
    let under = ["sys", "fs", "bpf"];
    if parts.len() <= 3 || parts[..3] != under {
        return Err(PinPathError::NotBpffs { path: p.into() });
    }
    if parts.iter().any(|s| s.len() > 255) {
        return Err(invalid("a path component is longer than 255 bytes"));
    }
    let rest = parts.split_off(3);
    Ok((format!("{BPFFS}/{}", rest.join("/")), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_paths_are_checked_lexically() {
        assert_eq!(
            check_pin_path("/sys/fs/bpf/a/./b").unwrap(),
            ("/sys/fs/bpf/a/b".to_string(), vec!["a".into(), "b".into()])
        );
        assert_eq!(
            check_pin_path("//sys/fs/bpf//x/").unwrap().0,
            "/sys/fs/bpf/x"
        );
        for bad in [
            "/tmp/x",
            "/sys/fs/bpf",
            "/sys/fs/bpf/",
            "/sys/fs/bpfx/y",
            "rel/x",
        ] {
            assert!(
                matches!(check_pin_path(bad), Err(PinPathError::NotBpffs { .. })),
                "{bad}"
            );
        }
        for bad in ["/sys/fs/bpf/../../../etc/passwd", "/sys/fs/bpf/a/../b"] {
            assert!(
                matches!(check_pin_path(bad), Err(PinPathError::Invalid { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn untrusted_directories_are_refused_and_left_alone() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("state");
        let dir = Dir::open_state(&d, true).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // A symlink planted where a file is written is refused, not followed.
        let outside = t.path().join("outside");
        std::fs::write(&outside, b"precious").unwrap();
        std::os::unix::fs::symlink(&outside, d.join("f")).unwrap();
        assert!(dir.write_atomic("f.new", b"x").is_ok());
        assert!(dir.open_append("f").is_err());
        assert!(dir.create_new("f").is_err());
        assert!(dir.open_read("f").is_err());
        dir.write_atomic("f", b"replaced").unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), b"precious");
        // Group-writable: refused, mode untouched.
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o770)).unwrap();
        let e = Dir::open_state(&d, true).unwrap_err().to_string();
        assert!(e.contains("writable by group or others"), "{e}");
        assert_eq!(
            std::fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o770
        );
        // A symlink to a good directory: refused.
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        let l = t.path().join("link");
        std::os::unix::fs::symlink(&d, &l).unwrap();
        let e = Dir::open_state(&l, true).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        // A symlinked subdirectory: refused.
        std::os::unix::fs::symlink(t.path(), d.join("sub")).unwrap();
        assert!(dir.subdir("sub", true).is_err());
    }
}
