//! Looking inside programs: the debugger driven by a script and over DAP,
//! profiles checked against counts known from the input, lcov coverage
//! rendered by genhtml, pcap replay against `prog run` frame by frame. The
//! captures are made here from the golden packets.

mod common;

use common::{fixtures, root, Env};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SRC: &str = "src/xdp_prof.bpf.c";

fn packet(name: &str) -> Vec<u8> {
    std::fs::read(
        root()
            .join("tests/golden/packets")
            .join(format!("{name}.bin")),
    )
    .expect("packet")
}

/// UDP to port 9 (discard): xdp_prof drops it.
fn discard_packet() -> Vec<u8> {
    let mut p = packet("ipv4_udp");
    p[36] = 0;
    p[37] = 9;
    p
}

/// The frames of the test capture, in order.
fn frames() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "ipv4_udp",
        "ipv4_tcp",
        "arp",
        "ipv4_truncated",
        "ipv4_blocked",
        "ipv4_udp_echo",
        "ipv6_udp",
        "ipv4_icmp",
    ]
    .iter()
    .map(|n| packet(n))
    .collect();
    v.push(discard_packet());
    v
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut b = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    for (i, f) in frames.iter().enumerate() {
        for v in [i as u32, 0, f.len() as u32, f.len() as u32] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(f);
    }
    std::fs::write(path, b).expect("write pcap");
}

fn write_pcapng(path: &Path, frames: &[Vec<u8>]) {
    fn block(ty: u32, body: &[u8]) -> Vec<u8> {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let total = (body.len() + 12) as u32;
        [
            &ty.to_le_bytes()[..],
            &total.to_le_bytes(),
            &body,
            &total.to_le_bytes(),
        ]
        .concat()
    }
    let mut b = block(
        0x0a0d_0d0a,
        &[
            &0x1a2b_3c4du32.to_le_bytes()[..],
            &[1, 0, 0, 0],
            &(-1i64).to_le_bytes(),
        ]
        .concat(),
    );
    b.extend(block(1, &[1, 0, 0, 0, 0, 0, 0, 0]));
    for f in frames {
        let mut epb = vec![0u8; 12];
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(f);
        b.extend(block(6, &epb));
    }
    std::fs::write(path, b).expect("write pcapng");
}

fn tmp(env: &Env, name: &str) -> PathBuf {
    env.state().join(name)
}

/// The line number of the first source line containing `text`.
fn line_of(text: &str) -> u32 {
    let src = std::fs::read_to_string(fixtures().join(SRC)).expect("source");
    src.lines()
        .position(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with {text}")) as u32
        + 1
}

#[test]
fn debugger_from_a_script() {
    let env = Env::new();
    let script = tmp(&env, "dbg.gdb");
    let bp = line_of("if ((void *)(eth + 1) > data_end)");
    std::fs::write(
        &script,
        format!(
            "break {SRC}:{bp}\nrun\ninfo registers\nnext\nprint r2\nx/16xb $pkt\nbt\nstep\nstepi\nbreak sum_bytes\ncontinue\nfinish\ncontinue\n"
        ),
    )
    .unwrap();
    let pkt = root().join("tests/golden/packets/ipv4_udp.bin");
    let out = env
        .run(&[
            "prog",
            "debug",
            "obj/xdp_prof.o",
            "data_in",
            pkt.to_str().unwrap(),
            "-x",
            script.to_str().unwrap(),
        ])
        .ok()
        .stdout;
    let has = |s: &str| assert!(out.contains(s), "missing {s:?} in:\n{out}");
    has("Program xdp_prof (xdp) stopped before its first instruction.");
    has(&format!("Breakpoint 1, classify () at ./{SRC}:{bp}"));
    has(&format!("{bp}\t    if ((void *)(eth + 1) > data_end)"));
    // The verifier's register types, where known.
    assert!(
        out.lines()
            .any(|l| l.starts_with("r1 ") && l.ends_with("R1=pkt(r=0)")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("r10 ") && l.ends_with("R10=fp0")),
        "{out}"
    );
    has(&format!(
        "{}\t    if (eth->h_proto != bpf_htons(ETH_P_IP))",
        bp + 2
    ));
    has("[pkt_end()]");
    // The packet's first 16 bytes, as the file has them.
    let p = packet("ipv4_udp");
    let row2: Vec<String> = p[8..16].iter().map(|b| format!("{b:#04x}")).collect();
    has(&format!("<pkt+8>:\t{}", row2.join("\t")));
    has("#1  insn 1 in xdp_prof () at");
    has("Breakpoint 2, sum_bytes () at");
    has("Value returned is r0 = ");
    has("[program exited with return value 2 (XDP_PASS)]");
    // The sum of the bytes (sum_bytes' result) is what finish printed.
    let sum: u32 = p.iter().map(|b| *b as u32).sum();
    has(&format!("Value returned is r0 = {sum}"));
}

#[test]
fn debugger_on_a_daemon_program_sees_its_maps() {
    let env = Env::new();
    env.run(&["prog", "load", "obj/xdp_prof.o", "/sys/fs/bpf/xp"])
        .ok();
    let pkt = root().join("tests/golden/packets/ipv4_udp.bin");
    let pkt = pkt.to_str().unwrap();
    env.run(&[
        "prog",
        "run",
        "pinned",
        "/sys/fs/bpf/xp",
        "data_in",
        pkt,
        "repeat",
        "3",
    ])
    .ok();
    let script = tmp(&env, "maps.gdb");
    std::fs::write(
        &script,
        "info maps\nmap lookup verdicts key 2 0 0 0\nkill\n",
    )
    .unwrap();
    let out = env
        .run(&[
            "prog",
            "debug",
            "pinned",
            "/sys/fs/bpf/xp",
            "data_in",
            pkt,
            "-x",
            script.to_str().unwrap(),
        ])
        .ok()
        .stdout;
    assert!(
        out.contains("name verdicts  key 4B  value 8B  max_entries 5"),
        "{out}"
    );
    assert!(
        out.contains("\"value\": 3"),
        "the daemon's counts were copied: {out}"
    );
    assert!(out.contains("[program killed]"), "{out}");
    // `prog run ... coverage` on the daemon's program: counted there, and its
    // map changes stay (the counter goes on from 3).
    let info = tmp(&env, "d.info");
    for _ in 0..2 {
        env.run(&[
            "prog",
            "run",
            "pinned",
            "/sys/fs/bpf/xp",
            "data_in",
            pkt,
            "coverage",
            info.to_str().unwrap(),
        ])
        .ok();
    }
    let text = std::fs::read_to_string(&info).unwrap();
    assert!(text.contains("FNDA:2,classify\n"), "{text}");
    let n = line_of("sum += p[i];");
    assert!(
        text.contains(&format!("DA:{n},{}\n", 2 * packet("ipv4_udp").len())),
        "{text}"
    );
    let dump = env
        .run(&[
            "map", "lookup", "name", "verdicts", "key", "2", "0", "0", "0",
        ])
        .ok()
        .stdout;
    assert!(dump.contains("\"value\": 5"), "{dump}");
}

/// A DAP client over the debugger's stdin and stdout.
struct Dap {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
    seq: i64,
    seen: Vec<Value>,
}

impl Dap {
    fn send(&mut self, command: &str, arguments: Value) {
        self.seq += 1;
        let body = json!({ "seq": self.seq, "type": "request", "command": command, "arguments": arguments }).to_string();
        let stdin = self.child.stdin.as_mut().unwrap();
        write!(stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        stdin.flush().unwrap();
    }

    fn recv(&mut self) -> Value {
        let mut len = 0;
        loop {
            let mut line = String::new();
            assert!(
                self.out.read_line(&mut line).unwrap() > 0,
                "adapter closed; seen {:?}",
                self.seen
            );
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.strip_prefix("Content-Length: ") {
                len = v.parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        self.out.read_exact(&mut body).unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        self.seen.push(v.clone());
        v
    }

    /// Sends a request and returns its response (events before it are kept).
    fn request(&mut self, command: &str, arguments: Value) -> Value {
        self.send(command, arguments);
        loop {
            let v = self.recv();
            if v["type"] == "response" && v["command"] == command {
                assert_eq!(v["success"], true, "{v}");
                return v["body"].clone();
            }
        }
    }

    fn event(&mut self, name: &str) -> Value {
        if let Some(i) = self.seen.iter().position(|v| v["event"] == name) {
            return self.seen.remove(i)["body"].clone();
        }
        loop {
            let v = self.recv();
            if v["event"] == name {
                self.seen.pop();
                return v["body"].clone();
            }
        }
    }
}

#[test]
fn debugger_over_dap() {
    let env = Env::new();
    let pkt = root().join("tests/golden/packets/ipv4_udp.bin");
    let mut child = env
        .cmd()
        .args([
            "prog",
            "debug",
            "obj/xdp_prof.o",
            "data_in",
            pkt.to_str().unwrap(),
            "dap",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the adapter");
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut d = Dap {
        child,
        out,
        seq: 0,
        seen: Vec::new(),
    };
    let caps = d.request(
        "initialize",
        json!({ "adapterID": "bpfvm", "linesStartAt1": true }),
    );
    assert_eq!(caps["supportsConfigurationDoneRequest"], true);
    d.event("initialized");
    d.request("launch", json!({ "stopOnEntry": false }));
    let path = fixtures().join(SRC);
    let l1 = line_of("if ((void *)(eth + 1) > data_end)");
    let l2 = line_of("last_sum = sum_bytes(ctx);");
    let bps = d.request(
        "setBreakpoints",
        json!({ "source": { "path": path }, "breakpoints": [{ "line": l1 }, { "line": l2 }, { "line": 1 }] }),
    );
    let b = bps["breakpoints"].as_array().unwrap();
    assert_eq!(
        (b[0]["verified"].clone(), b[0]["line"].clone()),
        (json!(true), json!(l1))
    );
    assert_eq!(b[1]["verified"], true);
    assert_eq!(b[2]["verified"], false, "line 1 has no code");
    d.request("configurationDone", json!({}));
    let st = d.event("stopped");
    assert_eq!(st["reason"], "breakpoint");
    let frames = d.request("stackTrace", json!({ "threadId": 1 }))["stackFrames"].clone();
    assert_eq!(frames[0]["name"], "classify");
    assert_eq!(frames[0]["line"], l1);
    assert_eq!(frames[1]["name"], "xdp_prof");
    let src_path = frames[0]["source"]["path"].as_str().unwrap().to_string();
    assert_eq!(Path::new(&src_path), path.canonicalize().unwrap());
    let scopes = d.request("scopes", json!({ "frameId": 0 }))["scopes"].clone();
    assert_eq!(scopes[0]["name"], "Registers");
    let regs = d.request(
        "variables",
        json!({ "variablesReference": scopes[0]["variablesReference"] }),
    )["variables"]
        .clone();
    assert_eq!(regs[1]["name"], "r1");
    assert_eq!(regs[1]["type"], "pkt(r=0)");
    let pkt_vars = d.request(
        "variables",
        json!({ "variablesReference": scopes[1]["variablesReference"] }),
    )["variables"]
        .clone();
    let first: Vec<String> = packet("ipv4_udp")[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(pkt_vars[0]["value"], first.join(" "));
    d.request("next", json!({ "threadId": 1 }));
    assert_eq!(d.event("stopped")["reason"], "step");
    let f = d.request("stackTrace", json!({ "threadId": 1 }))["stackFrames"][0].clone();
    assert_eq!(
        f["line"],
        line_of("if (eth->h_proto != bpf_htons(ETH_P_IP))")
    );
    d.request("stepIn", json!({ "threadId": 1 }));
    assert_eq!(d.event("stopped")["reason"], "step");
    let ev = d.request(
        "evaluate",
        json!({ "expression": "x/2xb $pkt", "context": "repl" }),
    );
    assert!(
        ev["result"].as_str().unwrap().ends_with("0x02\t0x00"),
        "{ev}"
    );
    d.request("continue", json!({ "threadId": 1 }));
    let st = d.event("stopped");
    assert_eq!(st["hitBreakpointIds"], json!([2]));
    let f = d.request("stackTrace", json!({ "threadId": 1 }))["stackFrames"][0].clone();
    assert_eq!(
        (f["name"].clone(), f["line"].clone()),
        (json!("xdp_prof"), json!(l2))
    );
    d.request("stepIn", json!({ "threadId": 1 }));
    d.event("stopped");
    let f = d.request("stackTrace", json!({ "threadId": 1 }))["stackFrames"].clone();
    assert_eq!(f[0]["name"], "sum_bytes", "stepped into the call");
    d.request("stepOut", json!({ "threadId": 1 }));
    d.event("stopped");
    let f = d.request("stackTrace", json!({ "threadId": 1 }))["stackFrames"].clone();
    assert_eq!(f.as_array().unwrap().len(), 1);
    d.request("continue", json!({ "threadId": 1 }));
    assert_eq!(d.event("exited")["exitCode"], 2);
    d.event("terminated");
    d.request("disconnect", json!({}));
    let status = d.child.wait().unwrap();
    assert!(status.success());
}

/// The profile's counts per line against what the input decides: the loop
/// of sum_bytes runs once per byte of the frame.
#[test]
fn profile_counts_land_on_the_right_lines() {
    let env = Env::new();
    let repeat = 3u64;
    for name in ["ipv4_udp", "arp"] {
        let len = packet(name).len() as u64;
        let pkt = root().join(format!("tests/golden/packets/{name}.bin"));
        let out = env
            .run(&[
                "-j",
                "prog",
                "profile",
                "obj/xdp_prof.o",
                "data_in",
                pkt.to_str().unwrap(),
                "repeat",
                &repeat.to_string(),
                "time",
                "0",
            ])
            .ok()
            .stdout;
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["runs"], repeat);
        assert_eq!(v["timing"]["method"], "instruction counts");
        let line = |text: &str| -> Value {
            let n = line_of(text);
            v["lines"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["line"] == n)
                .cloned()
                .unwrap_or_else(|| panic!("no line {n} in {v}"))
        };
        // The loop body: once per byte; the bounds check once more (the
        // iteration that breaks out).
        assert_eq!(line("sum += p[i];")["count"], len * repeat, "{name}");
        assert_eq!(line("if (p + i + 1 > end)")["count"], (len + 1) * repeat);
        // Every instruction of the body ran once per byte.
        let body = line_of("sum += p[i];");
        for i in v["insns"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["line"] == body)
        {
            assert_eq!(i["count"], len * repeat, "{i}");
        }
        // Once per run: the program's entry and each function.
        assert_eq!(line("int kind = classify(ctx);")["count"], repeat);
        assert_eq!(
            line("__u64 *n = bpf_map_lookup_elem(&verdicts, &verdict);")["count"],
            repeat
        );
        // The IPv4-only lines run for IPv4 frames only.
        let ip = line("if (ip->protocol != IPPROTO_UDP || ip->ihl != 5)")["count"].clone();
        assert_eq!(ip, if name == "arp" { 0 } else { repeat });
        // All instructions add up, and sum_bytes' share is in its stack.
        let total: u64 = v["insns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["count"].as_u64().unwrap())
            .sum();
        assert_eq!(v["instructions"], total);
        let stacks = v["stacks"].as_array().unwrap();
        let in_sum = stacks
            .iter()
            .find(|s| s["stack"] == "xdp_prof;sum_bytes")
            .unwrap();
        // 4 instructions before the loop, 9 per byte, 5 for the last check, exit.
        assert_eq!(in_sum["count"], (4 + 9 * len + 5 + 1) * repeat);
    }
}

#[test]
fn profile_samples_the_jit_and_draws_a_flame_graph() {
    let env = Env::new();
    let pkt = root().join("tests/golden/packets/ipv4_udp.bin");
    let svg = tmp(&env, "flame.svg");
    let out = env
        .run(&[
            "prog",
            "profile",
            "obj/xdp_prof.o",
            "data_in",
            pkt.to_str().unwrap(),
            "time",
            "200",
            "flamegraph",
            svg.to_str().unwrap(),
        ])
        .ok()
        .stdout;
    assert!(out.contains("time%: x86-64 JIT, sampled: "), "{out}");
    assert!(
        out.contains("Source code & Disassembly of sum_bytes"),
        "{out}"
    );
    assert!(out.contains("Hottest source lines:"), "{out}");
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
    for f in ["xdp_prof (", "classify (", "sum_bytes ("] {
        assert!(
            svg.contains(&format!("<title>{f}")),
            "{f} in the flame graph"
        );
    }
}

#[test]
fn coverage_of_a_pcap_renders_with_genhtml() {
    let env = Env::new();
    let pcap = tmp(&env, "frames.pcap");
    write_pcap(&pcap, &frames()[..3]);
    let info = tmp(&env, "cov.info");
    env.run(&[
        "prog",
        "replay",
        "obj/xdp_prof.o",
        "pcap",
        pcap.to_str().unwrap(),
        "coverage",
        info.to_str().unwrap(),
    ])
    .ok();
    let text = std::fs::read_to_string(&info).unwrap();
    let da = |text: &str, n: u32| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("DA:{n},")))
            .unwrap_or_else(|| panic!("no DA for line {n}:\n{text}"))
            .parse()
            .unwrap()
    };
    // Lines with a line record of their own (`return K_DISCARD;` shares
    // its instructions with the compare).
    let discard = line_of("verdict = XDP_DROP;");
    let udp = line_of("if (udp->dest == bpf_htons(9))");
    // UDP, TCP and ARP: two IPv4 frames, one UDP; nothing to port 9.
    assert_eq!(da(&text, line_of("if ((void *)(ip + 1) > data_end)")), 2);
    assert_eq!(da(&text, udp), 1);
    assert_eq!(da(&text, discard), 0);
    assert!(text.contains("FNDA:3,classify\n"), "{text}");
    // Runs accumulate: prog run of the port-9 frame adds to the same file.
    let p9 = tmp(&env, "p9.bin");
    std::fs::write(&p9, discard_packet()).unwrap();
    let r = env
        .run(&[
            "prog",
            "run",
            "obj/xdp_prof.o",
            "data_in",
            p9.to_str().unwrap(),
            "coverage",
            info.to_str().unwrap(),
        ])
        .ok();
    assert!(r.stdout.starts_with("Return value: 1,"), "{}", r.stdout);
    let text = std::fs::read_to_string(&info).unwrap();
    assert_eq!(da(&text, discard), 1);
    assert_eq!(da(&text, udp), 2);
    assert!(text.contains("FNDA:4,classify\n"), "{text}");
    // The port-9 compare: taken once (discard), not taken once.
    assert!(
        text.contains(&format!("BRDA:{udp},0,0,1\n"))
            && text.contains(&format!("BRDA:{udp},0,1,1\n")),
        "{text}"
    );
    let Ok(genhtml) = which("genhtml") else {
        eprintln!("skipped: genhtml not installed (Debian's lcov package)");
        return;
    };
    let html = tmp(&env, "html");
    let o = Command::new(genhtml)
        .args(["--branch-coverage", "-q", "-o"])
        .arg(&html)
        .arg(&info)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "genhtml: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(html.join("index.html").is_file());
    let page = find_file(&html, "xdp_prof.bpf.c.gcov.html").expect("the source page");
    let page = std::fs::read_to_string(page).unwrap();
    // genhtml marks each line: hit (lineCov) or not (lineNoCov).
    let marked = |n: u32, class: &str| {
        page.lines().any(|l| {
            l.contains(&format!("<span class=\"lineNum\">{n:>8} </span>")) && l.contains(class)
        })
    };
    assert!(marked(discard, "lineCov"), "line {discard} hit");
    assert!(marked(line_of("sum += p[i];"), "lineCov"));
    assert!(
        marked(line_of("verdict = XDP_ABORTED;"), "lineNoCov"),
        "never aborted"
    );
}

/// The frames of a little-endian pcap file.
fn pcap_frames(out: &[u8]) -> Vec<Vec<u8>> {
    let mut at = 24;
    let mut got = Vec::new();
    while at + 16 <= out.len() {
        let len = u32::from_le_bytes(out[at + 8..at + 12].try_into().unwrap()) as usize;
        got.push(out[at + 16..at + 16 + len].to_vec());
        at += 16 + len;
    }
    got
}

fn which(cmd: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
        .ok_or(())
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find_file(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

#[test]
fn replay_gives_prog_runs_verdicts_frame_by_frame() {
    let env = Env::new();
    let frames = frames();
    let pcap = tmp(&env, "frames.pcap");
    let pcapng = tmp(&env, "frames.pcapng");
    write_pcap(&pcap, &frames);
    write_pcapng(&pcapng, &frames);
    env.run(&["prog", "load", "obj/xdp_parse.o", "/sys/fs/bpf/parse"])
        .ok();
    let out_pcap = tmp(&env, "out.pcap");
    let mut per_format = Vec::new();
    for file in [&pcap, &pcapng] {
        let out = env
            .run(&[
                "-j",
                "prog",
                "replay",
                "pinned",
                "/sys/fs/bpf/parse",
                "pcap",
                file.to_str().unwrap(),
                "out",
                out_pcap.to_str().unwrap(),
                "each",
            ])
            .ok()
            .stdout;
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["frames"], frames.len());
        assert!(v["frames_per_second"].as_f64().unwrap() > 0.0);
        per_format.push((v, std::fs::read(&out_pcap).unwrap()));
    }
    assert_eq!(
        per_format[0].0["results"], per_format[1].0["results"],
        "pcap and pcapng agree"
    );
    assert_eq!(pcap_frames(&per_format[0].1), pcap_frames(&per_format[1].1));
    let v = &per_format[0].0;
    let results = v["results"].as_array().unwrap();
    let mut passed = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let file = tmp(&env, &format!("f{i}.bin"));
        std::fs::write(&file, f).unwrap();
        let out_file = tmp(&env, &format!("f{i}.out"));
        let r = env
            .run(&[
                "-j",
                "prog",
                "run",
                "pinned",
                "/sys/fs/bpf/parse",
                "data_in",
                file.to_str().unwrap(),
                "data_out",
                out_file.to_str().unwrap(),
            ])
            .ok()
            .stdout;
        let r: Value = serde_json::from_str(&r).unwrap();
        assert_eq!(results[i]["retval"], r["retval"], "frame {i}");
        if matches!(r["retval"].as_u64(), Some(2..=4)) {
            passed.push(std::fs::read(&out_file).unwrap());
        }
    }
    // Every verdict of xdp_parse shows up: ABORTED, DROP, PASS, TX.
    let verdicts = &v["verdicts"];
    for k in ["XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX"] {
        assert!(verdicts[k].as_u64().unwrap_or(0) > 0, "{k}: {verdicts}");
    }
    // OUT holds the frames that left the hook, as the program left them
    // (the echo frame with its addresses swapped).
    assert_eq!(v["written"], passed.len());
    assert_eq!(pcap_frames(&per_format[0].1), passed);
    // Plain output: counts per action and the rate.
    let plain = env
        .run(&[
            "prog",
            "replay",
            "obj/xdp_parse.o",
            "pcap",
            pcap.to_str().unwrap(),
            "repeat",
            "2",
        ])
        .ok()
        .stdout;
    assert!(
        plain.contains(&format!("{} frames from", 2 * frames.len())),
        "{plain}"
    );
    assert!(plain.contains(" frames/s ("), "{plain}");
}

#[test]
fn bad_input_gets_clear_errors() {
    let env = Env::new();
    let junk = tmp(&env, "junk.pcap");
    std::fs::write(&junk, b"not a capture at all").unwrap();
    let r = env.run(&[
        "prog",
        "replay",
        "obj/xdp_prof.o",
        "pcap",
        junk.to_str().unwrap(),
    ]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("not a pcap file"), "{}", r.stderr);
    let r = env.run(&["prog", "profile", "obj/maps.o", "data_in", "x"]);
    assert!(
        r.stderr.contains("choose one with 'prog NAME'"),
        "{}",
        r.stderr
    );
    let r = env.run(&["prog", "debug", "obj/hello-func.o", "data_in", "x"]);
    assert_ne!(r.code, 0);
    let r = env.run(&["prog", "debug", "obj/xdp_prof.o"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("cannot run the program: invalid argument: xdp test run needs 14"),
        "{}",
        r.stderr
    );
    let r = env.run(&[
        "prog",
        "replay",
        "obj/hello-func.o",
        "pcap",
        junk.to_str().unwrap(),
    ]);
    assert!(r.stderr.contains("takes no packet"), "{}", r.stderr);
}

#[test]
fn debugger_follows_tail_calls_and_reads_map_memory() {
    let env = Env::new();
    let pkt = root().join("tests/golden/packets/ipv4_udp.bin");
    let script = tmp(&env, "tail.gdb");
    // tailchain tail-calls itself: the second stop has a tail call below it.
    std::fs::write(&script, "break *3\nrun\ncontinue\nbt\ninf reg r1\nkill\n").unwrap();
    let out = env
        .run(&[
            "prog",
            "debug",
            "obj/tailchain.o",
            "data_in",
            pkt.to_str().unwrap(),
            "-x",
            script.to_str().unwrap(),
        ])
        .ok()
        .stdout;
    assert!(
        out.contains("#1  insn 8 in chain () at ./src/tailchain.bpf.c:29 [tail call to chain]"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("r1 ") && l.ends_with("R1=ctx()")),
        "{out}"
    );
    // After the lookup, r0 points into the map's value: x reads it, display
    // shows it at every stop.
    let n = line_of("if (n)");
    std::fs::write(
        &script,
        format!("break {n}\nrun\ndisplay/x r0\nx/8xb r0\nnext\nnext\nx/8xb r0\ncontinue\n"),
    )
    .unwrap();
    let out = env
        .run(&[
            "prog",
            "debug",
            "obj/xdp_prof.o",
            "data_in",
            pkt.to_str().unwrap(),
            "-x",
            script.to_str().unwrap(),
        ])
        .ok()
        .stdout;
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("0x") && l.contains(":\t"))
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].ends_with(":\t0x00\t0x00\t0x00\t0x00\t0x00\t0x00\t0x00\t0x00"),
        "{out}"
    );
    // __sync_fetch_and_add ran: the counter is 1.
    assert!(
        rows[1].ends_with(":\t0x01\t0x00\t0x00\t0x00\t0x00\t0x00\t0x00\t0x00"),
        "{out}"
    );
    assert!(out.matches("1: /x r0 = 0x").count() >= 3, "{out}");
}
