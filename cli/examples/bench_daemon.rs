//! Daemon benchmark (not a test): what an idle daemon costs with a 256 MiB map and
//! with 10,000 pins, how fast `prog list` answers while another client's run goes
//! on, and map update throughput with durability on (journal fsynced before each
//! reply) beside durability off (`BPFVM_DAEMON_FSYNC=0`), in the same run.
//!
//! Usage: cargo run --release -p bpfvm-cli --example bench_daemon [-- --quick] [--json PATH]
//! (or scripts/bench-daemon.sh). Progress goes to stderr; a summary table to
//! stdout; the figures as JSON to target/bench/daemon.json (or PATH).

use bpfvm_cli::proto::{self, Command, Format, Request, Response, Target};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/release/examples/bench_daemon -> target/release/bpfvm
    exe.parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("bpfvm"))
        .expect("bpfvm next to the examples directory")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

struct Daemon {
    dir: tempfile::TempDir,
}

impl Daemon {
    fn start(fsync: bool) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("bpfvm-bench")
            .tempdir_in(std::env::var("BPFVM_BENCH_DIR").unwrap_or_else(|_| "/tmp".into()))
            .expect("tempdir");
        let d = Daemon { dir };
        let o = d
            .cli()
            .env("BPFVM_DAEMON_FSYNC", if fsync { "1" } else { "0" })
            .args(["prog", "list"])
            .output()
            .expect("bpfvm");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        d
    }

    fn cli(&self) -> std::process::Command {
        let mut c = std::process::Command::new(bin());
        c.env("BPFVM_STATE_DIR", self.dir.path())
            .current_dir(fixtures())
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) {
        let o = self.cli().args(args).output().expect("bpfvm");
        assert!(
            o.status.success(),
            "bpfvm {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn pid(&self) -> i32 {
        std::fs::read_to_string(self.dir.path().join("daemon.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn request(&self, cmd: Command) -> Response {
        request(&self.sock(), cmd)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.cli().args(["daemon", "stop"]).output();
    }
}

fn request(sock: &Path, cmd: Command) -> Response {
    let mut s = UnixStream::connect(sock).expect("connect");
    let body = serde_json::to_vec(&Request::new(Format::Plain, cmd)).unwrap();
    proto::write_frame(&mut s, &body).expect("send");
    proto::decode_response(&proto::read_frame(&mut s, proto::MAX_MESSAGE).expect("reply"))
        .expect("decode")
}

fn cpu_ns(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = s
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let n = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    (n(11) + n(12)) * 1_000_000_000 / hz
}

/// Share of one core the daemon used over `secs` seconds of idleness.
fn idle_cpu(d: &Daemon, secs: u64) -> f64 {
    let pid = d.pid();
    let a = cpu_ns(pid);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let b = cpu_ns(pid);
    (b - a) as f64 / t.elapsed().as_nanos() as f64 * 100.0
}

fn update(map: &str, key: u32, value: &[u8]) -> Command {
    let mut args = vec!["key".to_string()];
    args.extend(key.to_le_bytes().iter().map(|b| b.to_string()));
    args.push("value".into());
    args.push("hex".into());
    args.extend(value.iter().map(|b| format!("{b:02x}")));
    Command::MapOp {
        op: "update".into(),
        target: Target::Pinned(map.into()),
        args,
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let json_path = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench/daemon.json")
        });
    let idle_secs = if quick { 3 } else { 10 };
    let pins = if quick { 1000 } else { 10_000 };
    let secs = if quick { 2 } else { 5 };
    let mut report = serde_json::Map::new();

    // 1. Idle with a 256 MiB array, every page written.
    eprintln!("[1/4] idle daemon with a 256 MiB array map ({idle_secs} s)...");
    // Filled without fsync (set-up, not a measurement: 65,536 fsyncs take minutes).
    let d = Daemon::start(false);
    d.run(&[
        "map",
        "create",
        "/sys/fs/bpf/big",
        "type",
        "array",
        "key",
        "4",
        "value",
        "4096",
        "entries",
        "65536",
        "name",
        "big",
    ]);
    let page = vec![0xabu8; 4096];
    let t = Instant::now();
    for k in 0..65536u32 {
        if k % 8192 == 0 {
            eprintln!("      filling: {k}/65536 pages");
        }
        assert!(d.request(update("/sys/fs/bpf/big", k, &page)).ok);
    }
    let fill_s = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(1));
    let idle_big = idle_cpu(&d, idle_secs);
    let t = Instant::now();
    let r = d.request(Command::ProgShow { target: None });
    assert!(r.ok);
    let list_big_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    d.run(&["daemon", "stop"]);
    let stop_big_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    d.run(&["map", "show", "pinned", "/sys/fs/bpf/big"]);
    let restart_big_s = t.elapsed().as_secs_f64();
    // Blocks allocated under store/ (value files included).
    let store_bytes: u64 = std::process::Command::new("du")
        .args(["-sb"])
        .arg(d.dir.path().join("store"))
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    drop(d);
    report.insert(
        "idle_256mib_map".into(),
        serde_json::json!({
            "cpu_percent_of_a_core": idle_big,
            "fill_65536_updates_s": fill_s,
            "fill_durability": "off",
            "prog_list_ms": list_big_ms,
            "daemon_stop_s": stop_big_s,
            "restart_and_first_command_s": restart_big_s,
            "store_bytes": store_bytes,
        }),
    );

    // 2. Idle with 10,000 pins.
    eprintln!("[2/4] idle daemon with {pins} pins ({idle_secs} s)...");
    let d = Daemon::start(true);
    d.run(&[
        "map",
        "create",
        "/sys/fs/bpf/p0",
        "type",
        "hash",
        "key",
        "4",
        "value",
        "8",
        "entries",
        "16",
        "name",
        "p",
    ]);
    let t = Instant::now();
    for i in 1..pins {
        if i % 2000 == 0 {
            eprintln!("      pinning: {i}/{pins}");
        }
        let r = d.request(Command::MapPin {
            target: Target::Pinned("/sys/fs/bpf/p0".into()),
            path: format!("/sys/fs/bpf/pins/{}/p{i}", i / 1000),
        });
        assert!(r.ok, "{r:?}");
    }
    let pin_rate = (pins - 1) as f64 / t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(1));
    let idle_pins = idle_cpu(&d, idle_secs);
    let t = Instant::now();
    d.run(&["daemon", "stop"]);
    let last = format!("/sys/fs/bpf/pins/{}/p{}", (pins - 1) / 1000, pins - 1);
    d.run(&["map", "show", "pinned", &last]);
    let restart_pins_s = t.elapsed().as_secs_f64();
    drop(d);
    report.insert(
        "idle_10000_pins".into(),
        serde_json::json!({
            "pins": pins,
            "cpu_percent_of_a_core": idle_pins,
            "pins_per_s": pin_rate,
            "stop_restart_first_command_s": restart_pins_s,
        }),
    );

    // 3. prog list while another client's run goes on.
    eprintln!("[3/4] prog list latency during a long run...");
    let d = Daemon::start(true);
    d.run(&["prog", "loadall", "obj/durable.o", "/sys/fs/bpf/d"]);
    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let sock = d.sock();
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = request(
                    &sock,
                    Command::ProgRun {
                        target: Target::Pinned("/sys/fs/bpf/d/spin".into()),
                        data_in_hex: proto::to_hex(&[0u8; 64]),
                        ctx_in_hex: None,
                        repeat: 1,
                        timeout_ms: Some(3000),
                        coverage: false,
                    },
                );
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let sample = |d: &Daemon| -> Vec<f64> {
        let mut lat = Vec::new();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(secs) {
            let s = Instant::now();
            assert!(d.request(Command::ProgShow { target: None }).ok);
            lat.push(s.elapsed().as_secs_f64() * 1e3);
            std::thread::sleep(Duration::from_millis(20));
        }
        lat
    };
    let mut lat = sample(&d);
    stop.store(true, Ordering::Relaxed);
    runner.join().unwrap();
    // The same with no run going on: the baseline beside it.
    let mut base = sample(&d);
    drop(d);
    let n = lat.len();
    let (p50, p99, max) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99), pct(&mut lat, 1.0));
    let (b50, b99, bmax) = (
        pct(&mut base, 0.5),
        pct(&mut base, 0.99),
        pct(&mut base, 1.0),
    );
    // SAFETY: getloadavg writes at most 3 doubles.
    let mut load = [0f64; 3];
    unsafe { libc::getloadavg(load.as_mut_ptr(), 3) };
    report.insert(
        "prog_list_during_run".into(),
        serde_json::json!({
            "samples": n, "p50_ms": p50, "p99_ms": p99, "max_ms": max,
            "no_run_p50_ms": b50, "no_run_p99_ms": b99, "no_run_max_ms": bmax,
            "p99_over_no_run_p99": p99 / b99,
            "host_load_average_1min": load[0],
        }),
    );

    // 4. Update throughput, durability on and off, side by side: a hash map
    // (changes journaled) and an array map (values in a file, fdatasynced).
    eprintln!("[4/4] map update throughput, durability on vs off ({secs} s each)...");
    let mut rates = Vec::new();
    for kind in ["hash", "array"] {
        for fsync in [true, false] {
            let d = Daemon::start(fsync);
            d.run(&[
                "map",
                "create",
                "/sys/fs/bpf/u",
                "type",
                kind,
                "key",
                "4",
                "value",
                "8",
                "entries",
                "100000",
                "name",
                "u",
            ]);
            let mut s = UnixStream::connect(d.sock()).unwrap();
            let t = Instant::now();
            let mut k = 0u32;
            while t.elapsed() < Duration::from_secs(secs) {
                let body = serde_json::to_vec(&Request::new(
                    Format::Plain,
                    update("/sys/fs/bpf/u", k % 100_000, &(k as u64).to_le_bytes()),
                ))
                .unwrap();
                proto::write_frame(&mut s, &body).unwrap();
                let r =
                    proto::decode_response(&proto::read_frame(&mut s, proto::MAX_MESSAGE).unwrap())
                        .unwrap();
                assert!(r.ok);
                k += 1;
            }
            rates.push(k as f64 / t.elapsed().as_secs_f64());
        }
    }
    let fs_type = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(std::env::var("BPFVM_BENCH_DIR").unwrap_or_else(|_| "/tmp".into()))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    report.insert(
        "map_update_throughput".into(),
        serde_json::json!({
            "filesystem": fs_type,
            "hash_durable_ops_per_s": rates[0],
            "hash_not_durable_ops_per_s": rates[1],
            "hash_durable_over_not_durable": rates[0] / rates[1],
            "array_durable_ops_per_s": rates[2],
            "array_not_durable_ops_per_s": rates[3],
            "array_durable_over_not_durable": rates[2] / rates[3],
        }),
    );

    println!(
        "daemon benchmark ({})",
        if quick { "quick" } else { "full" }
    );
    println!("  idle, 256 MiB array map      {idle_big:>8.3} % of a core (target < 1 %)");
    println!("  idle, {pins} pins         {idle_pins:>8.3} % of a core (target < 1 %)");
    println!("  prog list during a run       p50 {p50:.2} ms  p99 {p99:.2} ms  max {max:.2} ms (target < 10 ms)");
    println!(
        "  prog list, no run            p50 {b50:.2} ms  p99 {b99:.2} ms  max {bmax:.2} ms  (load average {:.1})",
        load[0]
    );
    for (i, kind) in ["hash (journal)", "array (value file)"].iter().enumerate() {
        let (on, off) = (rates[2 * i], rates[2 * i + 1]);
        println!(
            "  {kind:<19} update  durable {on:>7.0} /s  not durable {off:>7.0} /s  ratio {:.3}  ({fs_type})",
            on / off
        );
    }
    println!(
        "  256 MiB map: fill {fill_s:.1} s, daemon stop {stop_big_s:.2} s, restart {restart_big_s:.2} s, store {:.0} MiB",
        store_bytes as f64 / (1 << 20) as f64
    );
    if let Some(p) = json_path.parent() {
        let _ = std::fs::create_dir_all(p);
    }
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(report)).unwrap();
    std::fs::write(&json_path, text + "\n").expect("write json");
    eprintln!("wrote {}", json_path.display());
}
