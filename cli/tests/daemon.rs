//! The daemon under abuse: garbage, oversized, truncated and wrong-version
//! requests, clients that vanish mid-request; then a restart with pins in place
//! (pins come back, map contents are restored, removed pins stay removed).

mod common;

use bpfvm_cli::proto::{self, Command, Format, Request};
use common::Env;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn connect(env: &Env) -> UnixStream {
    let s = UnixStream::connect(env.state().join("sock")).expect("daemon socket");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Sends raw bytes, returns the decoded reply (if the daemon sent one).
fn raw(env: &Env, bytes: &[u8]) -> Option<proto::Response> {
    let mut s = connect(env);
    s.write_all(bytes).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let body = proto::read_frame(&mut s, proto::MAX_MESSAGE).ok()?;
    Some(proto::decode_response(&body).expect("daemon replies are valid"))
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

#[test]
fn survives_bad_clients_and_restores_pins_after_restart() {
    let env = Env::new();
    env.run(&["prog", "load", "obj/hello.o", "/sys/fs/bpf/hello"])
        .ok();
    env.run(&[
        "prog",
        "loadall",
        "obj/hello-func.o",
        "/sys/fs/bpf/hf",
        "pinmaps",
        "/sys/fs/bpf/hf_maps",
    ])
    .ok();
    env.run(&[
        "map",
        "create",
        "/sys/fs/bpf/counts",
        "type",
        "hash",
        "key",
        "4",
        "value",
        "8",
        "entries",
        "16",
        "name",
        "counts",
    ])
    .ok();
    env.run(&[
        "map", "update", "name", "counts", "key", "7", "0", "0", "0", "value", "1", "2", "3", "4",
        "5", "6", "7", "8",
    ])
    .ok();
    for _ in 0..3 {
        env.run(&[
            "prog",
            "run",
            "pinned",
            "/sys/fs/bpf/hello",
            "data_in",
            "../golden/packets/arp.bin",
        ])
        .ok();
    }

    // Permissions: only the owner may talk to the daemon.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.state().join("sock")), 0o600);
    // An existing state directory keeps its mode (it is never chmod-ed).
    assert_eq!(mode(env.state()) & 0o022, 0);

    // Garbage in a well-formed frame: an error, and the connection stays usable.
    let mut s = connect(&env);
    proto::write_frame(&mut s, b"\xff\xfe not json").unwrap();
    let r =
        proto::decode_response(&proto::read_frame(&mut s, proto::MAX_MESSAGE).unwrap()).unwrap();
    assert!(
        !r.ok && r.error.as_deref().unwrap().contains("not valid JSON"),
        "{r:?}"
    );
    let ping = serde_json::to_vec(&Request::new(Format::Plain, Command::Ping)).unwrap();
    proto::write_frame(&mut s, &ping).unwrap();
    let r =
        proto::decode_response(&proto::read_frame(&mut s, proto::MAX_MESSAGE).unwrap()).unwrap();
    assert!(r.ok, "{r:?}");
    drop(s);

    let bad_version = raw(&env, &frame(br#"{"version":99,"cmd":"ping"}"#)).unwrap();
    assert!(bad_version
        .error
        .unwrap()
        .contains("protocol version 99 is not supported"));
    let no_version = raw(&env, &frame(br#"{"cmd":"prog_show"}"#)).unwrap();
    assert!(no_version.error.unwrap().contains("version"));
    let unknown = raw(&env, &frame(br#"{"version":1,"cmd":"format_disk"}"#)).unwrap();
    assert!(unknown.error.unwrap().contains("bad request"));
    let wrong_types = raw(
        &env,
        &frame(br#"{"version":1,"cmd":"prog_show","target":{"id":"x"}}"#),
    )
    .unwrap();
    assert!(!wrong_types.ok);
    let bad_hex = raw(
        &env,
        &frame(br#"{"version":1,"cmd":"prog_load","file_name":"x.o","object_hex":"zz","path":"/a","all":false,"prog_type":null,"pinmaps":null}"#),
    )
    .unwrap();
    assert!(!bad_hex.ok);
    let junk_obj = raw(
        &env,
        &frame(br#"{"version":1,"cmd":"prog_load","file_name":"x.o","object_hex":"7f454c46","path":"/a","all":false,"prog_type":null,"pinmaps":null}"#),
    )
    .unwrap();
    assert!(junk_obj.error.unwrap().contains("x.o"));
    // Oversized: refused before reading the body, then the connection closes.
    let big = raw(&env, &u32::MAX.to_be_bytes()).unwrap();
    assert!(big.error.unwrap().contains("larger than"));
    // Truncated: the length promises more than comes before the client hangs up.
    let mut t = frame(br#"{"version":1,"cmd":"ping"}"#);
    t.truncate(10);
    let trunc = raw(&env, &t).unwrap();
    assert!(trunc.error.unwrap().contains("truncated"));
    // Half a length header, then gone.
    let _ = raw(&env, &[0, 0]);
    // Clients that vanish: before sending, mid-header, mid-body, before reading.
    for cut in [0usize, 2, 7] {
        let mut s = connect(&env);
        let f = frame(&ping);
        s.write_all(&f[..cut]).unwrap();
        drop(s);
    }
    let mut s = connect(&env);
    let show = serde_json::to_vec(&Request::new(
        Format::Plain,
        Command::ProgShow { target: None },
    ))
    .unwrap();
    proto::write_frame(&mut s, &show).unwrap();
    drop(s);
    // Many at once.
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let sock = env.state().join("sock");
            std::thread::spawn(move || {
                let mut s = UnixStream::connect(sock).unwrap();
                let junk: Vec<u8> = (0..64u32).map(|j| (i * 31 + j * 7) as u8).collect();
                let _ = s.write_all(&frame(&junk));
                let mut buf = [0u8; 4];
                let _ = s.read(&mut buf);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }

    // Still serving.
    let before = env.run(&["map", "dump", "name", "hello.bss"]).ok().stdout;
    assert!(before.contains("\"counter\": 3"), "{before}");
    let pid = env.daemon_pid().expect("pid file");

    // Restart with the pins in place; one pin removed while the daemon is down.
    env.run(&["daemon", "stop"]).ok();
    // Gone, or a zombie its parent (init) has not reaped yet.
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = state
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().next());
    assert!(
        matches!(state, None | Some("Z")),
        "daemon {pid} still running ({state:?})"
    );
    assert!(!env.state().join("sock").exists());
    std::fs::remove_file(env.state().join("fs/sys/fs/bpf/hf_maps/hello_fu_rodata")).unwrap();

    let after = env.run(&["map", "dump", "name", "hello.bss"]).ok().stdout;
    assert_eq!(after, before, "map contents restored");
    assert_ne!(env.daemon_pid(), Some(pid), "a new daemon");
    let show = env
        .run(&["prog", "show", "pinned", "/sys/fs/bpf/hello"])
        .ok()
        .stdout;
    assert!(show.contains("name hello  tag eb25a4958caccc29"), "{show}");
    env.run(&["prog", "show", "pinned", "/sys/fs/bpf/hf/hello"])
        .ok();
    let counts = env
        .run(&[
            "map",
            "lookup",
            "pinned",
            "/sys/fs/bpf/counts",
            "key",
            "7",
            "0",
            "0",
            "0",
        ])
        .ok()
        .stdout;
    assert_eq!(counts, "key: 07 00 00 00  value: 01 02 03 04 05 06 07 08\n");
    let gone = env.run(&[
        "map",
        "show",
        "pinned",
        "/sys/fs/bpf/hf_maps/hello_fu_rodata",
    ]);
    assert_eq!(
        gone.code, 255,
        "a pin removed while the daemon was down stays removed"
    );
    // The program keeps running where it left off.
    env.run(&[
        "prog",
        "run",
        "pinned",
        "/sys/fs/bpf/hello",
        "data_in",
        "../golden/packets/arp.bin",
    ])
    .ok();
    let four = env.run(&["map", "dump", "name", "hello.bss"]).ok().stdout;
    assert!(four.contains("\"counter\": 4"), "{four}");

    // rm unloads: the program and the maps only it held go.
    std::fs::remove_file(env.state().join("fs/sys/fs/bpf/hello")).unwrap();
    let list = env.run(&["prog", "list"]).ok().stdout;
    assert!(
        !list.contains("eb25a4958caccc29") || list.matches("name hello").count() == 1,
        "{list}"
    );
    let maps = env.run(&["map", "list"]).ok().stdout;
    assert!(!maps.contains("hello.bss"), "{maps}");
}

#[test]
fn concurrent_first_commands_share_one_daemon() {
    let env = Env::new();
    let children: Vec<_> = (0..4)
        .map(|_| {
            env.cmd()
                .args(["prog", "list"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success());
    }
    let pid = env.daemon_pid().unwrap();
    env.run(&["map", "list"]).ok();
    assert_eq!(env.daemon_pid(), Some(pid));
    let st = env.run(&["daemon", "status"]).ok().stdout;
    assert!(st.contains(&format!("pid {pid}")), "{st}");
}
