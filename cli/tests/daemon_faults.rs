//! The daemon under faults: a full disk, damaged and truncated state, kill -9 in
//! the middle of a storm of loads and updates, restarts that must keep every map
//! entry, reference and attachment, a run that never ends beside other clients,
//! idle connections. Root-only parts (tmpfs, network namespaces) skip with a
//! message without root.

mod common;

use bpfvm_cli::proto::{self, Command, Format, Request, Response, Target};
use common::{Env, Out};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command as Proc, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// One request over the socket, without the CLI (fast, for storms).
fn request(sock: &Path, cmd: Command) -> Result<Response, String> {
    let mut s = UnixStream::connect(sock).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = serde_json::to_vec(&Request::new(Format::Plain, cmd)).unwrap();
    proto::write_frame(&mut s, &body).map_err(|e| e.to_string())?;
    let r = proto::read_frame(&mut s, proto::MAX_MESSAGE).map_err(|e| e.to_string())?;
    proto::decode_response(&r).map_err(|e| e.to_string())
}

fn update(map: &str, key: u32, value: u64) -> Command {
    let mut args = vec!["key".to_string()];
    args.extend(key.to_le_bytes().iter().map(|b| b.to_string()));
    args.push("value".into());
    args.extend(value.to_le_bytes().iter().map(|b| b.to_string()));
    Command::MapOp {
        op: "update".into(),
        target: Target::Pinned(map.into()),
        args,
    }
}

fn lookup(map: &str, key: u32) -> Command {
    let mut args = vec!["key".to_string()];
    args.extend(key.to_le_bytes().iter().map(|b| b.to_string()));
    Command::MapOp {
        op: "lookup".into(),
        target: Target::Pinned(map.into()),
        args,
    }
}

/// A reply as the CLI prints it (plain): the daemon answers with data, the
/// client renders it.
fn shown(r: &Response) -> String {
    let mut s = r.stdout.clone();
    if let Some(l) = r
        .data
        .as_ref()
        .and_then(|d| serde_json::from_value::<proto::Listing>(d.clone()).ok())
    {
        s.push_str(&bpfvm_cli::render::listing(Format::Plain, &l));
    }
    s
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The plain `map lookup` line for a 4-byte key and 8-byte value.
fn entry_line(key: u32, value: u64) -> String {
    format!(
        "key: {}  value: {}\n",
        hex(&key.to_le_bytes()),
        hex(&value.to_le_bytes())
    )
}

fn create_hash(env: &Env, path: &str, name: &str) {
    env.run(&[
        "map", "create", path, "type", "hash", "key", "4", "value", "8", "entries", "100000",
        "name", name,
    ])
    .ok();
}

fn kill9(pid: i32) {
    // SAFETY: signalling the daemon this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    for _ in 0..200 {
        // SAFETY: probing it.
        if unsafe { libc::kill(pid, 0) } != 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn cpu_ticks(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12) // utime + stime (fields 14 and 15)
}

/// A small tmpfs mounted by the test, unmounted (with the daemon on it killed)
/// when dropped.
struct Tmpfs {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("state");
        std::fs::create_dir(&path).map_err(|e| e.to_string())?;
        let o = Proc::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(&path)
            .output()
            .map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err(String::from_utf8_lossy(&o.stderr).into_owned());
        }
        Ok(Tmpfs { _dir: dir, path })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(self.path.join("daemon.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            kill9(pid);
        }
        let _ = Proc::new("umount").arg(&self.path).output();
    }
}

#[test]
fn a_full_disk_is_an_error_and_nothing_acknowledged_is_lost() {
    if !is_root() {
        eprintln!("skipping: needs root (mounts a small tmpfs)");
        return;
    }
    let fs = match Tmpfs::mount("192k") {
        Ok(f) => f,
        Err(e) => {
            eprintln!("skipping: cannot mount a tmpfs: {e}");
            return;
        }
    };
    let env = Env::new();
    let at = |args: &[&str]| -> Out {
        let o = env
            .cmd()
            .env("BPFVM_STATE_DIR", &fs.path)
            .args(args)
            .output()
            .unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    };
    at(&[
        "map",
        "create",
        "/sys/fs/bpf/m",
        "type",
        "hash",
        "key",
        "4",
        "value",
        "8",
        "entries",
        "100000",
        "name",
        "m",
    ])
    .ok();
    let sock = fs.path.join("sock");
    let mut acked = Vec::new();
    let mut refused = None;
    for k in 0..20_000u32 {
        let r = request(&sock, update("/sys/fs/bpf/m", k, k as u64 * 3)).unwrap();
        if r.ok {
            acked.push(k);
        } else {
            refused = Some((k, r.error.unwrap_or_default()));
            break;
        }
    }
    let (k, e) = refused.expect("the disk never filled");
    assert!(e.contains("No space left on device"), "{e}");
    assert!(acked.len() > 100, "only {} updates fit", acked.len());
    // The refused update is not in the map either (undone).
    let r = request(&sock, lookup("/sys/fs/bpf/m", k)).unwrap();
    assert!(shown(&r).contains("Not found"), "{r:?}");
    // A load that cannot be saved fails and leaves nothing behind.
    let r = at(&["prog", "load", "obj/durable.o", "/sys/fs/bpf/d"]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("No space left on device"), "{}", r.stderr);
    assert!(!fs.path.join("fs/sys/fs/bpf/d").exists());
    assert_eq!(at(&["prog", "list"]).ok().stdout, "");
    // A pin that cannot be saved: the same.
    let r = at(&["map", "pin", "pinned", "/sys/fs/bpf/m", "/sys/fs/bpf/m2"]);
    if r.code != 0 {
        assert!(!fs.path.join("fs/sys/fs/bpf/m2").exists());
    }

    // Killed, restarted on the still-full disk: every acknowledged update is there.
    let pid: i32 = std::fs::read_to_string(fs.path.join("daemon.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kill9(pid);
    at(&["map", "show", "pinned", "/sys/fs/bpf/m"]).ok();
    for &k in &acked {
        let r = request(&sock, lookup("/sys/fs/bpf/m", k)).unwrap();
        assert_eq!(shown(&r), entry_line(k, k as u64 * 3), "key {k}");
    }
}

#[test]
fn damaged_state_is_refused_by_name_and_a_torn_tail_is_cut() {
    let env = Env::new();
    create_hash(&env, "/sys/fs/bpf/m", "m");
    let sock = env.state().join("sock");
    for k in 0..10 {
        assert!(
            request(&sock, update("/sys/fs/bpf/m", k, 100 + k as u64))
                .unwrap()
                .ok
        );
    }
    env.run(&["daemon", "stop"]).ok();
    let snap = env.state().join("store/snapshot");
    let good = std::fs::read(&snap).unwrap();

    // A flipped byte: refused, the file named, and left where it was.
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 20] ^= 0x5a;
    std::fs::write(&snap, &bad).unwrap();
    let start = Instant::now();
    let r = env.run(&["prog", "list"]);
    assert!(start.elapsed() < Duration::from_secs(8), "slow to report");
    assert_eq!(r.code, 255);
    assert!(
        r.stderr.contains("store/snapshot") && r.stderr.contains("will not start"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read(&snap).unwrap(),
        bad,
        "the damaged file was changed"
    );
    // Truncated: the same.
    std::fs::write(&snap, &good[..good.len() - 7]).unwrap();
    let r = env.run(&["prog", "list"]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("store/snapshot"), "{}", r.stderr);
    std::fs::write(&snap, &good).unwrap();

    // A torn last journal entry (a write never acknowledged): cut off, said in
    // the log, and everything acknowledged is there.
    env.run(&["map", "show", "pinned", "/sys/fs/bpf/m"]).ok();
    assert!(
        request(&sock, update("/sys/fs/bpf/m", 50, 5050))
            .unwrap()
            .ok
    );
    let pid = env.daemon_pid().unwrap();
    kill9(pid);
    let j = env.state().join("store/journal");
    let mut jb = std::fs::read(&j).unwrap();
    jb.extend_from_slice(&1000u64.to_le_bytes());
    jb.extend_from_slice(b"\x01\x02\x03\x04\x00{\"op\":");
    std::fs::write(&j, &jb).unwrap();
    for k in 0..10 {
        let r = request_after_start(&env, lookup("/sys/fs/bpf/m", k));
        assert_eq!(shown(&r), entry_line(k, 100 + k as u64));
    }
    let r = request(&sock, lookup("/sys/fs/bpf/m", 50)).unwrap();
    assert_eq!(shown(&r), entry_line(50, 5050));
    let log = std::fs::read_to_string(env.state().join("daemon.log")).unwrap();
    assert!(log.contains("was cut off"), "{log}");

    // A record whose object no longer loads is kept as saved (object, pins,
    // journal entries), said in the log, and back once the object loads again.
    env.run(&["prog", "load", "obj/hello.o", "/sys/fs/bpf/hello"])
        .ok();
    env.run(&["daemon", "stop"]).ok();
    let obj = std::fs::read_dir(env.state().join("store"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("obj-"))
        .expect("stored object");
    let original = std::fs::read(&obj).unwrap();
    std::fs::write(&obj, b"\x7fELF but not any more").unwrap();
    assert_eq!(env.run(&["prog", "list"]).ok().stdout, "");
    let log = std::fs::read_to_string(env.state().join("daemon.log")).unwrap();
    assert!(log.contains("could not be made again"), "{log}");
    env.run(&["daemon", "stop"]).ok();
    env.run(&["prog", "list"]).ok();
    env.run(&["daemon", "stop"]).ok();
    assert!(
        obj.exists(),
        "the stored object of a failed record was removed"
    );
    std::fs::write(&obj, &original).unwrap();
    env.run(&["prog", "show", "pinned", "/sys/fs/bpf/hello"])
        .ok();
}

/// A request after making sure a daemon runs (the CLI starts it).
fn request_after_start(env: &Env, cmd: Command) -> Response {
    env.run(&["prog", "list"]).ok();
    request(&env.state().join("sock"), cmd).unwrap()
}

#[test]
fn kill_9_during_a_storm_loses_nothing_acknowledged() {
    let env = Env::new();
    create_hash(&env, "/sys/fs/bpf/storm", "storm");
    let sock = env.state().join("sock");
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(u32, u64)>>> = Arc::default();
    let loaded: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut threads = Vec::new();
    for t in 0..2u32 {
        let (sock, stop, acked) = (sock.clone(), stop.clone(), acked.clone());
        threads.push(std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let k = t * 1_000_000 + i;
                match request(&sock, update("/sys/fs/bpf/storm", k, k as u64 + 7)) {
                    Ok(r) if r.ok => acked.lock().unwrap().push((k, k as u64 + 7)),
                    _ => return,
                }
                i += 1;
            }
        }));
    }
    {
        let (stop, loaded) = (stop.clone(), loaded.clone());
        let mut cmd = env.cmd();
        cmd.args(["prog", "load", "obj/hello.o"]);
        let state = env.state().to_path_buf();
        threads.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let pin = format!("/sys/fs/bpf/s{i}");
                let o = Proc::new(env!("CARGO_BIN_EXE_bpfvm"))
                    .env("BPFVM_STATE_DIR", &state)
                    .current_dir(common::fixtures())
                    .args(["prog", "load", "obj/hello.o", &pin])
                    .stdin(Stdio::null())
                    .output()
                    .unwrap();
                if o.status.success() && !stop.load(Ordering::Relaxed) {
                    loaded.lock().unwrap().push(pin);
                }
                i += 1;
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let pid = env.daemon_pid().unwrap();
    kill9(pid);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let loaded = loaded.lock().unwrap().clone();
    assert!(acked.len() > 50, "only {} updates", acked.len());
    assert!(!loaded.is_empty());
    env.run(&["map", "show", "pinned", "/sys/fs/bpf/storm"])
        .ok();
    for (k, v) in &acked {
        let r = request(&sock, lookup("/sys/fs/bpf/storm", *k)).unwrap();
        assert_eq!(
            shown(&r),
            entry_line(*k, *v),
            "acknowledged update {k} lost"
        );
    }
    for pin in &loaded {
        env.run(&["prog", "show", "pinned", pin]).ok();
    }
}

/// Network namespace with a veth pair, removed when dropped.
struct Netns(String);

impl Netns {
    fn create() -> Result<Netns, String> {
        let name = format!("bpfvm-df-{}", std::process::id());
        let ip = |args: &[&str]| -> Result<(), String> {
            let o = Proc::new("ip")
                .args(args)
                .output()
                .map_err(|e| e.to_string())?;
            if !o.status.success() {
                return Err(String::from_utf8_lossy(&o.stderr).into_owned());
            }
            Ok(())
        };
        ip(&["netns", "add", &name])?;
        let ns = Netns(name);
        ip(&[
            "-n", &ns.0, "link", "add", "vd0", "type", "veth", "peer", "name", "vd1",
        ])?;
        ip(&["-n", &ns.0, "link", "set", "vd0", "up"])?;
        ip(&["-n", &ns.0, "link", "set", "vd1", "up"])?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Proc::new("ip").args(["netns", "del", &self.0]).output();
    }
}

#[test]
fn a_restart_keeps_every_entry_reference_and_attachment() {
    let env = Env::new();
    let ns = if is_root() {
        match Netns::create() {
            Ok(n) => Some(n),
            Err(e) => {
                eprintln!("XDP part skipped: cannot make a network namespace: {e}");
                None
            }
        }
    } else {
        eprintln!("XDP part skipped: needs root (network namespace, veth)");
        None
    };
    // Inside the namespace when there is one (the daemon it starts stays there).
    let b = |args: &[&str]| -> Out {
        let mut c = match &ns {
            Some(n) => {
                let mut c = Proc::new("ip");
                c.args(["netns", "exec", &n.0, env!("CARGO_BIN_EXE_bpfvm")]);
                c
            }
            None => Proc::new(env!("CARGO_BIN_EXE_bpfvm")),
        };
        let o = c
            .args(args)
            .env("BPFVM_STATE_DIR", env.state())
            .current_dir(common::fixtures())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    };
    b(&[
        "prog",
        "loadall",
        "obj/durable.o",
        "/sys/fs/bpf/d",
        "pinmaps",
        "/sys/fs/bpf/dm",
    ])
    .ok();
    b(&[
        "map",
        "update",
        "pinned",
        "/sys/fs/bpf/dm/jumps",
        "key",
        "0",
        "0",
        "0",
        "0",
        "value",
        "pinned",
        "/sys/fs/bpf/d/target",
    ])
    .ok();
    b(&[
        "map",
        "update",
        "pinned",
        "/sys/fs/bpf/dm/outer",
        "key",
        "1",
        "0",
        "0",
        "0",
        "value",
        "pinned",
        "/sys/fs/bpf/dm/inner2",
    ])
    .ok();
    // Entries past 65,535, from the command line and from the program.
    b(&[
        "map",
        "update",
        "pinned",
        "/sys/fs/bpf/dm/big",
        "key",
        "0x9f",
        "0x86",
        "1",
        "0",
        "value",
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
        "7",
        "8",
    ])
    .ok();
    for _ in 0..3 {
        let r = b(&[
            "prog",
            "run",
            "pinned",
            "/sys/fs/bpf/d/count",
            "data_in",
            "../golden/packets/arp.bin",
        ])
        .ok();
        assert!(
            r.stdout.contains("Return value: 1"),
            "tail call: {}",
            r.stdout
        );
    }
    if ns.is_some() {
        b(&[
            "net",
            "attach",
            "xdp",
            "pinned",
            "/sys/fs/bpf/d/target",
            "dev",
            "vd0",
        ])
        .ok();
    }
    let dumps = |b: &dyn Fn(&[&str]) -> Out| -> Vec<String> {
        [
            vec![
                "map",
                "lookup",
                "pinned",
                "/sys/fs/bpf/dm/big",
                "key",
                "0x70",
                "0x11",
                "1",
                "0",
            ],
            vec![
                "map",
                "lookup",
                "pinned",
                "/sys/fs/bpf/dm/big",
                "key",
                "0x9f",
                "0x86",
                "1",
                "0",
            ],
            vec!["map", "dump", "pinned", "/sys/fs/bpf/dm/counts"],
            vec!["map", "dump", "pinned", "/sys/fs/bpf/dm/jumps"],
            vec!["map", "dump", "pinned", "/sys/fs/bpf/dm/outer"],
            vec!["map", "dump", "name", "durable.bss"],
        ]
        .iter()
        .map(|a| b(a).ok().stdout)
        .collect()
    };
    let before = dumps(&b);
    assert!(before[0].contains("\"value\": 3"), "{}", before[0]);
    assert!(before[3].contains("\"key\": 0"), "{}", before[3]);
    assert!(before[1].contains("\"key\": 99999"), "{}", before[1]);
    assert!(before[4].contains("key: 01 00 00 00"), "{}", before[4]);

    // A clean restart, then a crash: both keep everything.
    for crash in [false, true] {
        let before = dumps(&b);
        if crash {
            kill9(env.daemon_pid().unwrap());
        } else {
            b(&["daemon", "stop"]).ok();
        }
        let after = dumps(&b);
        for (x, y) in before.iter().zip(&after) {
            // Everything, the program's writes included (array values live in
            // files; a run's changes to hash maps are journaled before its reply).
            assert_eq!(x, y, "crash={crash}");
        }
        let r = b(&[
            "prog",
            "run",
            "pinned",
            "/sys/fs/bpf/d/count",
            "data_in",
            "../golden/packets/arp.bin",
        ])
        .ok();
        assert!(
            r.stdout.contains("Return value: 1"),
            "prog_array lost: {}",
            r.stdout
        );
        if ns.is_some() {
            let nl = b(&["net", "list"]).ok().stdout;
            assert!(nl.contains("vd0(") && nl.contains("generic id"), "{nl}");
        }
    }
    if ns.is_some() {
        b(&["net", "detach", "xdp", "dev", "vd0"]).ok();
        b(&["daemon", "stop"]).ok();
        let nl = b(&["net", "list"]).ok().stdout;
        assert!(!nl.contains("vd0("), "a detach is kept too: {nl}");
        b(&["daemon", "stop"]).ok();
    }
}

#[test]
fn a_long_run_blocks_nobody_and_stops_with_its_client() {
    let env = Env::new();
    env.run(&["prog", "loadall", "obj/durable.o", "/sys/fs/bpf/d"])
        .ok();
    let mut runner = env
        .cmd()
        .args([
            "prog",
            "run",
            "pinned",
            "/sys/fs/bpf/d/spin",
            "data_in",
            "../golden/packets/arp.bin",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let pid = env.daemon_pid().unwrap();
    let t0 = cpu_ticks(pid);
    for args in [
        vec!["prog", "list"],
        vec!["map", "list"],
        vec!["map", "dump", "name", "durable.bss"],
    ] {
        let start = Instant::now();
        env.run(&args).ok();
        let took = start.elapsed();
        assert!(took < Duration::from_secs(1), "{args:?} took {took:?}");
    }
    assert!(
        runner.try_wait().unwrap().is_none(),
        "the nested bpf_loop run ended on its own"
    );
    // (Not checked through CPU time: the run's thread is niced, and on a busy
    // machine it may get next to none.)
    let _ = t0;
    // The client goes: the run stops (the daemon's CPU time stops growing).
    runner.kill().unwrap();
    runner.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let a = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let b = cpu_ticks(pid);
    assert!(
        b - a < 20,
        "the daemon used {} ticks in 1 s after the client left",
        b - a
    );
    // A time limit stops it too, with the kernel's EINTR wording.
    let start = Instant::now();
    let r = env.run(&[
        "prog",
        "run",
        "pinned",
        "/sys/fs/bpf/d/spin",
        "data_in",
        "../golden/packets/arp.bin",
        "timeout",
        "300",
    ]);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(r.code, 255);
    assert!(
        r.stderr.contains("Interrupted system call") && r.stderr.contains("300 ms timeout"),
        "{}",
        r.stderr
    );
    // And a repeat count too large to finish.
    let r = env.run(&[
        "prog",
        "run",
        "pinned",
        "/sys/fs/bpf/d/target",
        "data_in",
        "../golden/packets/arp.bin",
        "repeat",
        "4000000000",
        "timeout",
        "200",
    ]);
    assert!(r.stderr.contains("Interrupted system call"), "{}", r.stderr);
}

#[test]
fn idle_connections_cannot_lock_anyone_out() {
    let env = Env::new();
    // The daemon takes its idle timeout from the client that starts it.
    env.cmd()
        .env("BPFVM_DAEMON_IDLE_MS", "3000")
        .args(["prog", "list"])
        .output()
        .unwrap();
    let sock = env.state().join("sock");
    let idle: Vec<UnixStream> = (0..64)
        .map(|_| UnixStream::connect(&sock).unwrap())
        .collect();
    let start = Instant::now();
    env.run(&["prog", "list"]).ok();
    assert!(start.elapsed() < Duration::from_secs(2));
    drop(idle);
    // More idle connections than the daemon keeps: the client hears "busy",
    // retries with backoff, and gets through once the idle ones time out.
    let many: Vec<UnixStream> = (0..530)
        .filter_map(|_| UnixStream::connect(&sock).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let r = env.run(&["-d", "prog", "list"]).ok();
    assert!(
        start.elapsed() < Duration::from_secs(14),
        "{:?}",
        start.elapsed()
    );
    assert!(r.stderr.contains("busy"), "{}", r.stderr);
    assert!(!r.stderr.contains("Broken pipe"), "{}", r.stderr);
    drop(many);
}

/// The state file of the previous version (`store/state.json`) is imported once
/// and moved aside, not ignored.
#[test]
fn an_earlier_versions_state_is_imported() {
    let env = Env::new();
    let st = env.state();
    std::fs::create_dir_all(st.join("store")).unwrap();
    std::fs::create_dir_all(st.join("fs/sys/fs/bpf")).unwrap();
    std::fs::copy(
        common::fixtures().join("obj/hello.o"),
        st.join("store/obj-0.o"),
    )
    .unwrap();
    std::fs::write(st.join("fs/sys/fs/bpf/hello"), "bpfvm prog id 1\n").unwrap();
    std::fs::write(
        st.join("store/state.json"),
        r#"{"version":1,"records":[{"id":0,
            "source":{"kind":"object","file_name":"obj/hello.o","stored":"obj-0.o","prog_type":null},
            "pins":[{"kind":"prog","name":"hello","path":"/sys/fs/bpf/hello"}],
            "maps":[{"name":"hello.bss","entries":[["00000000","07000000"]]}]}]}"#,
    )
    .unwrap();
    env.run(&["prog", "show", "pinned", "/sys/fs/bpf/hello"])
        .ok();
    let bss = env.run(&["map", "dump", "name", "hello.bss"]).ok().stdout;
    assert!(bss.contains("\"counter\": 7"), "{bss}");
    assert!(!st.join("store/state.json").exists());
    assert!(st.join("store/state.json.imported").exists());
    let log = std::fs::read_to_string(st.join("daemon.log")).unwrap();
    assert!(
        log.contains("imported the state of an earlier version"),
        "{log}"
    );
    // Once imported it is in the new store.
    env.run(&["daemon", "stop"]).ok();
    let bss = env.run(&["map", "dump", "name", "hello.bss"]).ok().stdout;
    assert!(bss.contains("\"counter\": 7"), "{bss}");
    // An unreadable one is refused by name.
    env.run(&["daemon", "stop"]).ok();
    for f in ["snapshot", "journal"] {
        let _ = std::fs::remove_file(st.join("store").join(f));
    }
    std::fs::write(st.join("store/state.json"), "{\"version\":1,\"recor").unwrap();
    let r = env.run(&["prog", "list"]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("state.json"), "{}", r.stderr);
}

/// The journal's write or fdatasync fails (EIO, injected through the
/// `fault-injection` feature the test build of the daemon has: see
/// cli/src/daemon/fault.rs), and an array map's value file cannot be synced:
/// each change is refused with the error, undone, and after kill -9 and a
/// restart every acknowledged change is there and no refused one is.
#[test]
fn a_failed_write_or_fdatasync_is_refused_undone_and_nothing_acknowledged_is_lost() {
    if !cfg!(feature = "fault-injection") {
        eprintln!("skipping: built without the fault-injection feature");
        return;
    }
    let env = Env::new();
    let faults = tempfile::NamedTempFile::new().unwrap();
    let set_fault = |w: &str| std::fs::write(faults.path(), w).unwrap();
    let at = |args: &[&str]| -> Out {
        let o = env
            .cmd()
            .env("BPFVM_FAULT_FILE", faults.path())
            .args(args)
            .output()
            .unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    };
    // The daemon starts with the knob (the first command starts it).
    at(&[
        "map",
        "create",
        "/sys/fs/bpf/m",
        "type",
        "hash",
        "key",
        "4",
        "value",
        "8",
        "entries",
        "64",
        "name",
        "m",
    ])
    .ok();
    at(&[
        "map",
        "create",
        "/sys/fs/bpf/a",
        "type",
        "array",
        "key",
        "4",
        "value",
        "8",
        "entries",
        "4",
        "name",
        "a",
    ])
    .ok();
    let sock = env.state().join("sock");
    let ask = |cmd: Command| request(&sock, cmd).unwrap();
    let delete = |key: u32| Command::MapOp {
        op: "delete".into(),
        target: Target::Pinned("/sys/fs/bpf/m".into()),
        args: std::iter::once("key".to_string())
            .chain(key.to_le_bytes().iter().map(|b| b.to_string()))
            .collect(),
    };
    assert!(ask(update("/sys/fs/bpf/m", 1, 10)).ok);
    assert!(ask(update("/sys/fs/bpf/a", 1, 7)).ok);

    for (i, fault) in ["journal-fdatasync", "journal-write"].iter().enumerate() {
        set_fault(fault);
        let refused = |r: &Response, what: &str| {
            assert!(!r.ok, "{fault}: {what} acknowledged");
            let e = r.error.clone().unwrap_or_default();
            assert!(
                e.contains("not saved") && e.contains("Input/output error"),
                "{fault}: {what}: {e}"
            );
        };
        // A new entry: refused, and not in the map.
        let new_key = 100 + i as u32;
        refused(&ask(update("/sys/fs/bpf/m", new_key, 1)), "insert");
        let r = ask(lookup("/sys/fs/bpf/m", new_key));
        assert!(shown(&r).contains("Not found"), "{fault}: {r:?}");
        // A changed and a deleted entry: refused, the old value back.
        refused(&ask(update("/sys/fs/bpf/m", 1, 11)), "update");
        assert_eq!(shown(&ask(lookup("/sys/fs/bpf/m", 1))), entry_line(1, 10));
        refused(&ask(delete(1)), "delete");
        assert_eq!(shown(&ask(lookup("/sys/fs/bpf/m", 1))), entry_line(1, 10));
        // A load and a pin: refused, nothing left behind.
        let r = at(&["prog", "load", "obj/durable.o", "/sys/fs/bpf/d"]);
        assert_eq!(r.code, 255, "{fault}: {}", r.stdout);
        assert!(r.stderr.contains("Input/output error"), "{}", r.stderr);
        assert!(!env.state().join("fs/sys/fs/bpf/d").exists());
        assert_eq!(at(&["prog", "list"]).ok().stdout, "");
        let r = at(&["map", "pin", "pinned", "/sys/fs/bpf/m", "/sys/fs/bpf/m2"]);
        assert_eq!(r.code, 255, "{fault}: pin acknowledged");
        assert!(!env.state().join("fs/sys/fs/bpf/m2").exists());
        // The fault gone, changes are saved again.
        set_fault("");
        assert!(ask(update("/sys/fs/bpf/m", 200 + i as u32, 2)).ok);
    }
    // An array map's values live in a file: a failed sync of it refuses the
    // update and puts the old value back.
    set_fault("values-sync");
    let r = ask(update("/sys/fs/bpf/a", 1, 8));
    assert!(!r.ok, "values-sync: update acknowledged");
    assert!(
        r.error
            .clone()
            .unwrap_or_default()
            .contains("Input/output error"),
        "{r:?}"
    );
    assert_eq!(shown(&ask(lookup("/sys/fs/bpf/a", 1))), entry_line(1, 7));
    set_fault("");

    // Killed and restarted: the acknowledged changes are there, the refused
    // ones are not, and the journal holds no torn entry.
    kill9(env.daemon_pid().expect("daemon pid"));
    at(&["map", "show", "pinned", "/sys/fs/bpf/m"]).ok();
    assert_eq!(shown(&ask(lookup("/sys/fs/bpf/m", 1))), entry_line(1, 10));
    assert_eq!(shown(&ask(lookup("/sys/fs/bpf/a", 1))), entry_line(1, 7));
    for k in [200, 201] {
        assert_eq!(shown(&ask(lookup("/sys/fs/bpf/m", k))), entry_line(k, 2));
    }
    for k in [100, 101] {
        assert!(shown(&ask(lookup("/sys/fs/bpf/m", k))).contains("Not found"));
    }
    let dump = at(&["map", "dump", "pinned", "/sys/fs/bpf/m"]).ok().stdout;
    assert!(dump.ends_with("Found 3 elements\n"), "{dump}");
    assert_eq!(at(&["prog", "list"]).ok().stdout, "");
    assert!(!env.state().join("fs/sys/fs/bpf/d").exists());
    assert!(!env.state().join("fs/sys/fs/bpf/m2").exists());
    let log = std::fs::read_to_string(env.state().join("daemon.log")).unwrap();
    assert!(
        !log.contains("cut off"),
        "a refused write left a torn entry: {log}"
    );
}
