//! The daemon against its own filesystem and its own users: state directories it
//! must not trust, symlinks planted at every path it writes, pin paths outside
//! bpffs, sockets and daemons of other users, non-UTF-8 arguments, huge inputs.
//! Tests needing root (chown to another uid, a second uid's process) skip with a
//! message without it.

mod common;

use common::{fixtures, Env, Out};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn bpfvm() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bpfvm"));
    c.current_dir(fixtures()).stdin(Stdio::null());
    c
}

fn out(o: std::process::Output) -> Out {
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `bpfvm --state-dir DIR ARGS`.
fn run_at(dir: &Path, args: &[&str]) -> Out {
    out(bpfvm()
        .env_remove("BPFVM_STATE_DIR")
        .arg("--state-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap())
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn chown(p: &Path, uid: u32) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: c is NUL-terminated.
    assert_eq!(unsafe { libc::lchown(c.as_ptr(), uid, uid) }, 0, "chown");
}

#[test]
fn untrusted_state_directories_are_refused_and_left_alone() {
    let t = tempfile::tempdir().unwrap();

    // /tmp itself: writable by others. Refused, and its mode is not touched.
    let before = mode(Path::new("/tmp"));
    let r = run_at(Path::new("/tmp"), &["prog", "list"]);
    assert_eq!(r.code, 255, "{r:?}", r = r.stderr);
    assert!(
        r.stderr.contains("state directory /tmp is not safe to use")
            && r.stderr.contains("writable by group or others"),
        "{}",
        r.stderr
    );
    assert_eq!(mode(Path::new("/tmp")), before);
    assert!(!Path::new("/tmp/sock").exists() && !Path::new("/tmp/fs").exists());

    // Group-writable: refused; mode and contents untouched.
    let g = t.path().join("group");
    std::fs::create_dir(&g).unwrap();
    std::fs::set_permissions(&g, std::fs::Permissions::from_mode(0o770)).unwrap();
    std::fs::create_dir(g.join("fs")).unwrap();
    std::fs::write(g.join("fs/keep"), b"mine").unwrap();
    let r = run_at(&g, &["prog", "list"]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("mode 0770"), "{}", r.stderr);
    assert_eq!(mode(&g), 0o770);
    assert_eq!(std::fs::read(g.join("fs/keep")).unwrap(), b"mine");
    // `daemon start` in the foreground refuses the same way (and returns).
    let r = run_at(&g, &["daemon", "start"]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("not safe to use"), "{}", r.stderr);

    // A symlink to a good directory: refused.
    let good = t.path().join("good");
    std::fs::create_dir(&good).unwrap();
    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = t.path().join("link");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    let r = run_at(&link, &["prog", "list"]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert!(std::fs::read_dir(&good).unwrap().next().is_none());

    // An existing directory of ours with foreign files: used, nothing removed,
    // its mode unchanged.
    let mine = t.path().join("mine");
    std::fs::create_dir_all(mine.join("fs/sys/fs/bpf")).unwrap();
    std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(mine.join("fs/sys/fs/bpf/notes.txt"), b"keep me").unwrap();
    std::fs::write(mine.join("state.json"), b"{}").unwrap();
    run_at(&mine, &["prog", "list"]).ok();
    run_at(&mine, &["daemon", "stop"]).ok();
    run_at(&mine, &["prog", "list"]).ok();
    run_at(&mine, &["daemon", "stop"]).ok();
    assert_eq!(
        std::fs::read(mine.join("fs/sys/fs/bpf/notes.txt")).unwrap(),
        b"keep me"
    );
    assert_eq!(std::fs::read(mine.join("state.json")).unwrap(), b"{}");
    assert_eq!(mode(&mine), 0o755);

    // A new directory is made 0700.
    let fresh = t.path().join("a/b/fresh");
    run_at(&fresh, &["prog", "list"]).ok();
    run_at(&fresh, &["daemon", "stop"]).ok();
    assert_eq!(mode(&fresh), 0o700);

    if !is_root() {
        eprintln!("skipping the foreign-owner cases: needs root (chown)");
        return;
    }
    // Owned by another user: refused, whoever we are (root too).
    let foreign = t.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o700)).unwrap();
    chown(&foreign, 65534);
    let r = run_at(&foreign, &["prog", "list"]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("owned by uid 65534"), "{}", r.stderr);
    assert!(std::fs::read_dir(&foreign).unwrap().next().is_none());
    // A directory above it that another user could rename: refused too.
    let other = t.path().join("other");
    std::fs::create_dir(&other).unwrap();
    chown(&other, 65534);
    let below = other.join("state");
    let r = run_at(&below, &["prog", "list"]);
    assert_eq!(r.code, 255);
    assert!(
        r.stderr.contains("another user could replace it"),
        "{}",
        r.stderr
    );
    assert!(!below.exists());
}

/// Without HOME, XDG_RUNTIME_DIR and BPFVM_STATE_DIR the state goes to
/// /tmp/bpfvm-$UID; one made in advance by another user is refused.
#[test]
fn tmp_fallback_made_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipping: needs root (a directory owned by another uid)");
        return;
    }
    // SAFETY: geteuid has no preconditions.
    let dir = std::path::PathBuf::from(format!("/tmp/bpfvm-{}", unsafe { libc::geteuid() }));
    if std::fs::symlink_metadata(&dir).is_ok() {
        eprintln!("skipping: {} exists (someone's real state)", dir.display());
        return;
    }
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    chown(&dir, 65534);
    let r = out(bpfvm()
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args(["prog", "list"])
        .output()
        .unwrap());
    let entries = std::fs::read_dir(&dir).unwrap().count();
    std::fs::remove_dir(&dir).unwrap();
    assert_eq!(r.code, 255, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("{} is not safe to use", dir.display()))
            && r.stderr.contains("owned by uid 65534"),
        "{}",
        r.stderr
    );
    assert_eq!(entries, 0, "nothing was written into it");
}

#[test]
fn symlinks_are_never_followed() {
    let env = Env::new();
    let t = tempfile::tempdir().unwrap();
    let victim = t.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let victim_dir = t.path().join("vdir");
    std::fs::create_dir(&victim_dir).unwrap();
    env.run(&["prog", "list"]).ok();
    let st = env.state();
    let bpffs = st.join("fs/sys/fs/bpf");
    std::fs::create_dir_all(&bpffs).unwrap();

    // At a pin path: "File exists", nothing written through the link.
    std::os::unix::fs::symlink(&victim, bpffs.join("evil")).unwrap();
    let r = env.run(&["prog", "load", "obj/hello.o", "/sys/fs/bpf/evil"]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("File exists"), "{}", r.stderr);
    // A directory on the way that is a link: refused.
    std::os::unix::fs::symlink(&victim_dir, bpffs.join("dlink")).unwrap();
    let r = env.run(&["prog", "load", "obj/hello.o", "/sys/fs/bpf/dlink/x"]);
    assert_eq!(r.code, 255, "{}", r.stdout);
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    let r = env.run(&[
        "prog",
        "loadall",
        "obj/durable.o",
        "/sys/fs/bpf/ok",
        "pinmaps",
        "/sys/fs/bpf/dlink",
    ]);
    assert_eq!(r.code, 255);
    // Nothing left of the failed loads: no pins, no programs, no files.
    assert!(!bpffs.join("ok").exists(), "a failed load left its pins");
    assert_eq!(env.run(&["prog", "list"]).ok().stdout, "");

    // At the store's object files: the load fails, nothing is written there.
    for i in 0..8 {
        std::os::unix::fs::symlink(&victim, st.join(format!("store/obj-{i}.o"))).unwrap();
    }
    let r = env.run(&["prog", "load", "obj/hello.o", "/sys/fs/bpf/h"]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("not saved"), "{}", r.stderr);
    assert!(!bpffs.join("h").exists());
    for i in 0..8 {
        std::fs::remove_file(st.join(format!("store/obj-{i}.o"))).unwrap();
    }
    env.run(&["prog", "load", "obj/hello.o", "/sys/fs/bpf/h"])
        .ok();
    // At the files that hold array maps' values.
    let values = st.join("store/values");
    let planted: Vec<_> = (0..64)
        .map(|i| values.join(format!("v-{i}.bin")))
        .filter(|p| !p.exists())
        .collect();
    for p in &planted {
        std::os::unix::fs::symlink(&victim, p).unwrap();
    }
    let r = env.run(&["prog", "load", "obj/durable.o", "/sys/fs/bpf/dur"]);
    assert_eq!(r.code, 255, "{}", r.stdout);
    assert!(r.stderr.contains("File exists"), "{}", r.stderr);
    assert!(!bpffs.join("dur").exists());
    for p in &planted {
        std::fs::remove_file(p).unwrap();
    }

    // At daemon.pid, daemon.log and sock while the daemon is down.
    env.run(&["daemon", "stop"]).ok();
    for f in ["daemon.pid", "sock"] {
        std::os::unix::fs::symlink(&victim, st.join(f)).unwrap();
    }
    std::fs::rename(st.join("daemon.log"), st.join("old.log")).unwrap();
    std::os::unix::fs::symlink(&victim, st.join("daemon.log")).unwrap();
    let r = env.run(&["prog", "list"]);
    assert_eq!(r.code, 255, "started with a linked daemon.log");
    assert!(r.stderr.contains("daemon.log"), "{}", r.stderr);
    std::fs::remove_file(st.join("daemon.log")).unwrap();
    // A FIFO there: refused at once, not waited on.
    let fifo =
        std::ffi::CString::new(st.join("daemon.log").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: fifo is NUL-terminated.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let start = Instant::now();
    let r = env.run(&["prog", "list"]);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("daemon.log"), "{}", r.stderr);
    std::fs::remove_file(st.join("daemon.log")).unwrap();
    env.run(&["prog", "show", "pinned", "/sys/fs/bpf/h"]).ok();
    assert!(std::fs::symlink_metadata(st.join("sock"))
        .unwrap()
        .file_type()
        .is_socket_like());

    // At the temporary files a snapshot is written through (their names are
    // predictable: the daemon's pid and a counter).
    let pid = env.daemon_pid().unwrap();
    let mut tmps = vec![st.join(format!("store/.snapshot.tmp.{pid}"))];
    tmps.extend((0..100).map(|i| st.join(format!("store/.journal.tmp.{pid}.{i}"))));
    for t in &tmps {
        std::os::unix::fs::symlink(&victim, t).unwrap();
    }
    env.run(&["daemon", "stop"]).ok();
    for t in &tmps {
        let _ = std::fs::remove_file(t);
    }
    env.run(&["prog", "show", "pinned", "/sys/fs/bpf/h"]).ok();

    // At the store's snapshot and at fs/: the daemon refuses to start, naming it.
    env.run(&["daemon", "stop"]).ok();
    let snap = st.join("store/snapshot");
    std::fs::rename(&snap, st.join("snapshot.real")).unwrap();
    std::os::unix::fs::symlink(&victim, &snap).unwrap();
    let r = env.run(&["prog", "list"]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("store/snapshot"), "{}", r.stderr);
    std::fs::remove_file(&snap).unwrap();
    std::fs::rename(st.join("snapshot.real"), &snap).unwrap();
    std::fs::rename(st.join("fs"), st.join("fs.real")).unwrap();
    std::os::unix::fs::symlink(&victim_dir, st.join("fs")).unwrap();
    let r = env.run(&["prog", "list"]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("/fs"), "{}", r.stderr);
    std::fs::remove_file(st.join("fs")).unwrap();
    std::fs::rename(st.join("fs.real"), st.join("fs")).unwrap();
    env.run(&["prog", "show", "pinned", "/sys/fs/bpf/h"]).ok();

    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(mode(&victim), 0o600);
    assert!(std::fs::read_dir(&victim_dir).unwrap().next().is_none());
}

trait SocketLike {
    fn is_socket_like(&self) -> bool;
}
impl SocketLike for std::fs::FileType {
    fn is_socket_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_socket()
    }
}

#[test]
fn pin_paths_are_checked_like_the_kernel() {
    let env = Env::new();
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("escape");
    let o = outside.to_str().unwrap();
    let r = env.run(&["prog", "load", "obj/hello.o", o]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("Operation not permitted"), "{}", r.stderr);
    let long = format!("/sys/fs/bpf/{}", "d/".repeat(3000));
    let r = env.run(&["prog", "load", "obj/hello.o", &long]);
    assert!(r.stderr.contains("File name too long"), "{}", r.stderr);
    let r = env.run(&["prog", "load", "obj/hello.o", "/sys/fs/bpf/../../../tmp/x"]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("Invalid argument"), "{}", r.stderr);
    let r = env.run(&[
        "map",
        "create",
        "/etc/bpfvm-x",
        "type",
        "hash",
        "key",
        "4",
        "value",
        "4",
        "entries",
        "4",
        "name",
        "x",
    ]);
    assert!(r.stderr.contains("Operation not permitted"), "{}", r.stderr);
    assert!(!outside.exists() && !Path::new("/etc/bpfvm-x").exists());
    assert_eq!(env.run(&["prog", "list"]).ok().stdout, "");
    assert_eq!(env.run(&["map", "list"]).ok().stdout, "");
    // A path under the state's fs/ names the pin too (as a file on bpffs would).
    let via_fs = env.state().join("fs/sys/fs/bpf/viafs");
    env.run(&["prog", "load", "obj/hello.o", via_fs.to_str().unwrap()])
        .ok();
    env.run(&["prog", "show", "pinned", "/sys/fs/bpf/viafs"])
        .ok();
    // A pin below a pin (a file, not a directory) fails and leaves nothing.
    let r = env.run(&["prog", "pin", "name", "hello", "/sys/fs/bpf/viafs/sub"]);
    assert_eq!(r.code, 255);
    let r = env.run(&["prog", "pin", "name", "hello", "/sys/fs/bpf/viafs"]);
    assert!(r.stderr.contains("File exists"), "{}", r.stderr);
    // A failed pin can be retried at once (no empty file left behind).
    env.run(&["prog", "pin", "name", "hello", "/sys/fs/bpf/second"])
        .ok();
}

#[test]
fn non_utf8_arguments_are_an_error_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    let bad = std::ffi::OsStr::from_bytes(b"obj/\xff\xfe.o");
    let o = out(env
        .cmd()
        .args(["prog", "load"])
        .arg(bad)
        .arg("/sys/fs/bpf/x")
        .output()
        .unwrap());
    assert_eq!(o.code, 255, "{}", o.stderr);
    assert!(o.stderr.contains("not valid UTF-8"), "{}", o.stderr);
    assert!(!o.stderr.contains("panicked"));
}

#[test]
fn daemon_subcommand_prefixes_must_be_unambiguous() {
    let env = Env::new();
    let start = Instant::now();
    let r = env.run(&["daemon", "st"]);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "it must not run a daemon"
    );
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("ambiguous"), "{}", r.stderr);
    assert!(!env.state().join("sock").exists());
    assert_eq!(env.run(&["daemon", "stat"]).code, 1, "status: not running");
}

#[test]
fn huge_and_sparse_inputs_are_refused_before_reading() {
    let env = Env::new();
    let t = tempfile::tempdir().unwrap();
    let sparse = t.path().join("sparse.bin");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let s = sparse.to_str().unwrap();
    for args in [
        vec!["prog", "load", s, "/sys/fs/bpf/x"],
        vec!["btf", "dump", "file", s],
        vec!["verify", s],
    ] {
        let start = Instant::now();
        let r = env.run(&args);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{args:?} read the file"
        );
        assert_eq!(r.code, 255, "{args:?}");
        assert!(r.stderr.contains("larger than"), "{args:?}: {}", r.stderr);
    }
    env.run(&["prog", "load", "obj/hello.o", "/sys/fs/bpf/hello"])
        .ok();
    let start = Instant::now();
    let r = env.run(&["prog", "run", "name", "hello", "data_in", s]);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(r.stderr.contains("larger than"), "{}", r.stderr);

    // A 1.8 GB .bss: allocated lazily (the daemon stays small and answers), and
    // saved without writing its zeros.
    env.run(&["prog", "load", "obj/huge_bss.o", "/sys/fs/bpf/huge"])
        .ok();
    env.run(&[
        "prog",
        "run",
        "name",
        "touch",
        "data_in",
        "../golden/packets/arp.bin",
    ])
    .ok();
    let pid = env.daemon_pid().unwrap();
    let rss_kb = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap();
    assert!(rss_kb < 512 << 10, "daemon RSS {rss_kb} kB");
    env.run(&["daemon", "stop"]).ok();
    let snap = std::fs::metadata(env.state().join("store/snapshot"))
        .unwrap()
        .len();
    assert!(snap < 1 << 20, "snapshot of {snap} bytes");
    let dump = env.run(&[
        "map",
        "lookup",
        "name",
        "huge_bss.bss",
        "key",
        "0",
        "0",
        "0",
        "0",
    ]);
    assert!(dump.code == 0 || dump.code == 255, "{}", dump.stderr);
    env.run(&["prog", "show", "name", "touch"]).ok();
}

/// A connection from another uid is refused by the daemon (SO_PEERCRED), and a
/// socket that is not ours is refused by the client.
#[test]
fn other_users_cannot_talk_to_the_daemon_or_squat_its_socket() {
    if !is_root() {
        eprintln!("skipping: needs root (a process of another uid)");
        return;
    }
    let env = Env::new();
    env.run(&["prog", "list"]).ok();
    let st = env.state();
    // Let uid 65534 reach the socket at all (the daemon does not recheck modes).
    let old = mode(st);
    std::fs::set_permissions(st, std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(st.join("sock"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let sock = std::ffi::CString::new(st.join("sock").as_os_str().as_encoded_bytes()).unwrap();
    let ping = br#"{"version":1,"cmd":"prog_show","target":null}"#;
    let mut frame = (ping.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(ping);
    // SAFETY: the child only makes async-signal-safe calls and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                libc::_exit(10);
            }
            let s = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            let mut a: libc::sockaddr_un = std::mem::zeroed();
            a.sun_family = libc::AF_UNIX as u16;
            for (d, b) in a.sun_path.iter_mut().zip(sock.as_bytes()) {
                *d = *b as libc::c_char;
            }
            if libc::connect(s, (&a as *const libc::sockaddr_un).cast(), 110) != 0 {
                libc::_exit(11);
            }
            libc::write(s, frame.as_ptr().cast(), frame.len());
            let mut buf = [0u8; 4096];
            let mut got = 0usize;
            loop {
                let n = libc::read(s, buf.as_mut_ptr().add(got).cast(), buf.len() - got);
                if n <= 0 {
                    break;
                }
                got += n as usize;
            }
            let text = &buf[..got];
            let needle = b"permission denied";
            let found = text.windows(needle.len()).any(|w| w == needle);
            libc::_exit(if found { 0 } else { 12 });
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    std::fs::set_permissions(st, std::fs::Permissions::from_mode(old)).unwrap();
    std::fs::set_permissions(st.join("sock"), std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(libc::WIFEXITED(status), "child status {status}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "uid 65534 was served (or could not connect)"
    );

    // A socket owned by someone else where ours should be: the client refuses it.
    chown(&st.join("sock"), 65534);
    let r = env.run(&["prog", "list"]);
    chown(&st.join("sock"), 0);
    assert_eq!(r.code, 255);
    assert!(
        r.stderr.contains("not a socket owned by uid 0"),
        "{}",
        r.stderr
    );
    env.run(&["prog", "list"]).ok();
    let meta = std::fs::metadata(st.join("sock")).unwrap();
    assert_eq!(meta.uid(), 0);
}

/// A "daemon" that accepts and never answers (hung, or a stand-in): the client
/// gives up after its timeout with a clear error, never hangs.
#[test]
fn the_client_never_waits_forever() {
    let env = Env::new();
    let listener = std::os::unix::net::UnixListener::bind(env.state().join("sock")).unwrap();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in listener.incoming().take(1) {
            conns.push(c);
        }
        std::thread::sleep(Duration::from_secs(3));
    });
    let start = Instant::now();
    let r = out(env
        .cmd()
        .env("BPFVM_CLIENT_TIMEOUT_MS", "500")
        .args(["prog", "list"])
        .output()
        .unwrap());
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(r.code, 255);
    assert!(
        r.stderr.contains("no reply from the daemon in 500 ms"),
        "{}",
        r.stderr
    );
    held.join().unwrap();
    let _ = std::fs::remove_file(env.state().join("sock"));
}
