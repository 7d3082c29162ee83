//! Objects beyond plain helpers through the CLI: a `.kconfig` file given at
//! load, `map event_pipe` reading what bpf_perf_event_output writes (bpftool's
//! layout), and map dumps of maps whose values user space cannot read
//! (bpftool prints the lookup error per key).

mod common;

use common::Env;
use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};

const OBJ: &str = "../../crates/bpfvm/tests/data/kfunc/kfunc.o";
const PKT: &str = "../golden/packets/ipv4_udp.bin";

fn retval(env: &Env, prog: &str) -> i64 {
    let j = env
        .run(&["-j", "prog", "run", "name", prog, "data_in", PKT])
        .ok()
        .stdout;
    let v: Value = serde_json::from_str(&j).unwrap();
    v["retval"].as_i64().unwrap()
}

#[test]
fn kconfig_file_event_pipe_and_unreadable_dumps() {
    let env = Env::new();
    let cfg = env.state().join("kernel.config");
    std::fs::write(&cfg, "# a user's config\nCONFIG_HZ=100\n").unwrap();
    env.run(&[
        "prog",
        "loadall",
        OBJ,
        "/sys/fs/bpf/k",
        "kconfig",
        cfg.to_str().unwrap(),
    ])
    .ok();
    // 6.18, cookies, HZ from the file (not 250), the weak unset option 0.
    assert_eq!(retval(&env, "kconfig"), 1_554_100);

    // A perf_event_array's values are perf event fds: not readable.
    let dump = env.run(&["map", "dump", "name", "events"]).ok().stdout;
    assert!(
        dump.starts_with("key:\n00 00 00 00\nvalue:\nUnknown error 524\n"),
        "{dump}"
    );
    assert!(dump.ends_with("Found 0 elements\n"), "{dump}");

    // No reader: -ENOENT.
    assert_eq!(retval(&env, "perf_out") as u32 as i32, -2);
    let reader = env
        .cmd()
        .args([
            "map",
            "event_pipe",
            "name",
            "events",
            "--max-events",
            "1",
            "--timeout",
            "20",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the reader has opened its events the output succeeds.
    let start = Instant::now();
    while retval(&env, "perf_out") != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "reader never opened"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = reader.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("== @"), "{text}");
    assert!(lines[0].ends_with(" CPU: 0 index: 0 ====="), "{text}");
    // The record, then the packet's first 4 bytes (flags' upper half), padded.
    assert_eq!(lines[1], "44 33 22 11 55 02 00 00  00 00 00 00");
    // The reader closed its events on the way out.
    assert_eq!(retval(&env, "perf_out") as u32 as i32, -2);
}
