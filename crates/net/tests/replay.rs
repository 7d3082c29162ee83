//! Pcap replay against the host kernel's verdicts: the golden frames of
//! tests/golden/packets go into a capture, through xdp_parse (three builds), and
//! every verdict, output frame and the final per-class counters must match what
//! `bpftool prog run` gave on the kernel (tests/golden/kernel/xdp_runs.json).

use bpfvm::{BpfCmd, BpfReply, Object, Runtime};
use bpfvm_net::{replay_pcap, PcapReader, PcapWriter, ReplayOptions, XdpAction, LINKTYPE_ETHERNET};
use serde_json::Value;
use std::fs::File;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn json(rel: &str) -> Value {
    let p = root().join(rel);
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A scratch file removed on drop.
struct TempFile(PathBuf);
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp(name: &str) -> TempFile {
    TempFile(std::env::temp_dir().join(format!("bpfvm-net-{}-{name}", std::process::id())))
}

/// The golden packets, in index.json order, as a capture file.
fn golden_capture(names: &mut Vec<String>) -> TempFile {
    let t = temp("golden.pcap");
    let mut w = PcapWriter::new(File::create(&t.0).unwrap(), LINKTYPE_ETHERNET, 65535).unwrap();
    for (i, p) in json("tests/golden/packets/index.json")
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let file = p["file"].as_str().unwrap();
        let data = std::fs::read(root().join("tests/golden/packets").join(file)).unwrap();
        assert_eq!(data.len() as u64, p["len"].as_u64().unwrap(), "{file}");
        w.write(1_700_000_000 + i as u32, 0, &data).unwrap();
        names.push(p["name"].as_str().unwrap().to_string());
    }
    t
}

#[test]
fn xdp_parse_replay_matches_kernel() {
    let mut names = Vec::new();
    let cap = golden_capture(&mut names);
    let golden = json("tests/golden/kernel/xdp_runs.json");
    for obj in [
        "obj/xdp_parse.o",
        "obj/xdp_parse.O1.o",
        "obj/xdp_parse.v1.o",
    ] {
        let g = golden["programs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["object"] == obj && p["program"] == "xdp_parse")
            .unwrap_or_else(|| panic!("{obj}: no golden runs"));
        let runs = g["runs"].as_array().unwrap();
        let rt = Runtime::new();
        let o = Object::open(root().join("tests/fixtures").join(obj)).unwrap();
        let loaded = rt.load_object(&o, None).unwrap();
        let prog = loaded.prog("xdp_parse").unwrap();
        let out = temp("out.pcap");
        let opts = ReplayOptions {
            output: Some(out.0.clone()),
            ..ReplayOptions::default()
        };
        let sum = replay_pcap(&rt, prog, &cap.0, &opts).unwrap();

        assert_eq!(sum.results.len(), runs.len(), "{obj}");
        let mut expect_written = Vec::new();
        for (r, run) in sum.results.iter().zip(runs) {
            let pkt = run["packet"].as_str().unwrap();
            assert_eq!(names[r.index as usize], pkt);
            let retval = run["retval"].as_u64().unwrap() as u32;
            assert_eq!(
                r.action,
                Some(XdpAction::from_retval(retval)),
                "{obj} {pkt}: {:?}",
                r.error
            );
            assert_eq!(
                r.len_out as u64,
                run["data_out_len"].as_u64().unwrap(),
                "{obj} {pkt}"
            );
            if matches!(
                r.action,
                Some(XdpAction::Pass | XdpAction::Tx | XdpAction::Redirect)
            ) {
                expect_written.push(hex(run["data_out_hex"].as_str().unwrap()));
            }
        }
        // The capture written holds exactly the surviving frames, as the kernel left them.
        let written: Vec<Vec<u8>> = PcapReader::new(File::open(&out.0).unwrap())
            .unwrap()
            .map(|r| r.unwrap().data)
            .collect();
        assert_eq!(sum.written as usize, written.len());
        assert_eq!(written, expect_written, "{obj}");

        // Verdict counters agree with the per-frame results.
        let count =
            |a: XdpAction| sum.results.iter().filter(|r| r.action == Some(a)).count() as u64;
        let s = sum.stats;
        assert_eq!(s.rx_frames, runs.len() as u64);
        assert_eq!(
            (s.aborted, s.drop, s.pass, s.tx, s.redirect),
            (
                count(XdpAction::Aborted),
                count(XdpAction::Drop),
                count(XdpAction::Pass),
                count(XdpAction::Tx),
                count(XdpAction::Redirect)
            )
        );
        assert_eq!(s.tx, 1, "{obj}: one echo frame");
        assert_eq!(s.drop, 1, "{obj}: one blocked frame");

        // The program's own counters equal the kernel's after the last packet.
        let stats_map = loaded.map("proto_stats").unwrap();
        let last = &runs.last().unwrap()["maps"]["proto_stats"]["dump"];
        for e in last.as_array().unwrap() {
            let key = e["formatted"]["key"].as_u64().unwrap() as u32;
            let want = e["formatted"]["value"].as_u64().unwrap();
            let BpfReply::Bytes(v) = rt
                .bpf(BpfCmd::MapLookupElem {
                    map_id: stats_map.id(),
                    key: key.to_le_bytes().to_vec(),
                    flags: 0,
                })
                .unwrap()
            else {
                panic!("lookup reply")
            };
            assert_eq!(
                u64::from_le_bytes(v[..8].try_into().unwrap()),
                want,
                "{obj} proto_stats[{key}]"
            );
        }
    }
}

#[test]
fn replay_reports_bad_files() {
    let rt = Runtime::new();
    let o = Object::open(root().join("tests/fixtures/obj/hello.o")).unwrap();
    let loaded = rt.load_object(&o, None).unwrap();
    let prog = loaded.prog("hello").unwrap();

    let missing =
        replay_pcap(&rt, prog, "/nonexistent/x.pcap", &ReplayOptions::default()).unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/x.pcap"),
        "{missing}"
    );

    let bad = temp("bad.pcap");
    std::fs::write(&bad.0, b"definitely not a capture file").unwrap();
    let e = replay_pcap(&rt, prog, &bad.0, &ReplayOptions::default()).unwrap_err();
    assert!(
        std::error::Error::source(&e)
            .unwrap()
            .to_string()
            .contains("not a pcap file"),
        "{e}"
    );

    // Frames an XDP run cannot take are counted as skipped, not fatal.
    let odd = temp("odd.pcap");
    let mut w = PcapWriter::new(File::create(&odd.0).unwrap(), LINKTYPE_ETHERNET, 65535).unwrap();
    w.write(0, 0, &[0u8; 10]).unwrap();
    w.write(0, 0, &[0u8; 5000]).unwrap();
    w.write(0, 0, &[0u8; 60]).unwrap();
    drop(w);
    let s = replay_pcap(&rt, prog, &odd.0, &ReplayOptions::default()).unwrap();
    assert_eq!(
        (s.stats.rx_frames, s.stats.skipped, s.stats.pass),
        (3, 2, 1)
    );
    assert!(s.results[0].error.as_deref().unwrap().contains("10 bytes"));
    let trace = rt.trace_pipe().snapshot();
    assert_eq!(trace.len(), 1, "{trace:?}");
    assert!(trace[0].contains("Hello World 0"), "{trace:?}");
}

/// Many frames without keeping per-frame results: counts add up, and the rate is
/// printed (the per-frame cost of a run through the runtime's test run).
#[test]
fn replay_many_frames() {
    let rt = Runtime::new();
    let o = Object::open(root().join("tests/fixtures/obj/xdp_parse.o")).unwrap();
    let loaded = rt.load_object(&o, None).unwrap();
    let prog = loaded.prog("xdp_parse").unwrap();
    let echo = std::fs::read(root().join("tests/golden/packets/ipv4_udp_echo.bin")).unwrap();
    let udp = std::fs::read(root().join("tests/golden/packets/ipv4_udp.bin")).unwrap();
    let cap = temp("many.pcap");
    let mut w = PcapWriter::new(File::create(&cap.0).unwrap(), LINKTYPE_ETHERNET, 65535).unwrap();
    let n = 2000u64;
    for i in 0..n {
        w.write(0, 0, if i % 2 == 0 { &echo } else { &udp })
            .unwrap();
    }
    drop(w);
    let opts = ReplayOptions {
        keep_results: false,
        ..ReplayOptions::default()
    };
    let s = replay_pcap(&rt, prog, &cap.0, &opts).unwrap();
    assert!(s.results.is_empty());
    assert_eq!(
        (s.stats.rx_frames, s.stats.tx, s.stats.pass),
        (n, n / 2, n / 2)
    );
    eprintln!(
        "pcap replay: {n} frames in {:.1} ms = {:.0} frames/s; {} ns/frame in the program",
        s.elapsed_ns as f64 / 1e6,
        n as f64 * 1e9 / s.elapsed_ns.max(1) as f64,
        s.stats.prog_ns / n
    );
}
