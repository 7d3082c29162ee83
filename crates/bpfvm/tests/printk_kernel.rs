//! bpf_trace_printk, bpf_trace_vprintk, bpf_snprintf and trace_pipe lines against
//! what Linux 6.18 produced for the same formats, arguments and memory.
//!
//! The cases in `data/printk/` were captured from the host kernel by running XDP
//! programs with BPF_PROG_TEST_RUN and reading the trace (see the README there).
//! They run without the kernel.

use bpfvm::printk::{
    check_data_len, format_bpf_snprintf, format_trace_printk, format_trace_vprintk,
    trace_line_bytes, PrintkError, TraceFlags,
};
use std::collections::BTreeMap;

const PRINTK_CASES: &str = include_str!("data/printk/trace_printk_cases.txt");
const SNPRINTF_CASES: &str = include_str!("data/printk/snprintf_cases.txt");
const TRACE_LINES: &str = include_str!("data/printk/trace_lines.txt");

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() & 1 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|k| u8::from_str_radix(&s[k..k + 2], 16).expect("hex"))
        .collect()
}

/// Memory objects placed at made-up addresses; everything else faults.
struct Memory {
    objects: Vec<(u64, Vec<u8>)>,
    names: BTreeMap<String, u64>,
}

impl Memory {
    fn new() -> Self {
        Memory {
            objects: Vec::new(),
            names: BTreeMap::new(),
        }
    }
    fn add(&mut self, name: &str, bytes: Vec<u8>) {
        let addr = 0x1000_0000 + 0x1_0000 * self.objects.len() as u64;
        self.objects.push((addr, bytes));
        self.names.insert(name.to_string(), addr);
    }
    fn arg(&self, tok: &str) -> u64 {
        match tok {
            "@null" => 0,
            "@fault" => 0x10,
            t if t.starts_with('@') => *self
                .names
                .get(&t[1..])
                .unwrap_or_else(|| panic!("unknown object {t}")),
            t => u64::from_str_radix(t.trim_start_matches("0x"), 16).expect("hex argument"),
        }
    }
    fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        let (base, bytes) = self
            .objects
            .iter()
            .find(|(b, v)| addr >= *b && addr < b + v.len() as u64)?;
        let start = (addr - base) as usize;
        Some(bytes[start..bytes.len().min(start + len)].to_vec())
    }
}

/// One case block: `key value` lines until a blank line.
type Block = BTreeMap<String, String>;

fn parse(text: &str) -> (Memory, Vec<Block>) {
    let mut mem = Memory::new();
    let mut blocks = Vec::new();
    let mut cur: Option<Block> = None;
    for line in text.lines().chain(std::iter::once("")) {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if let Some(b) = cur.take() {
                blocks.push(b);
            }
            continue;
        }
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        if key == "mem" {
            let (name, hex) = value.split_once(' ').expect("mem NAME HEX");
            mem.add(name, unhex(hex));
            continue;
        }
        let b = cur.get_or_insert_with(Block::new);
        let slot = b.entry(key.to_string()).or_default();
        if !slot.is_empty() {
            slot.push(' ');
        }
        slot.push_str(value);
    }
    (mem, blocks)
}

fn args_of(mem: &Memory, b: &Block) -> Vec<u64> {
    b["args"].split_whitespace().map(|t| mem.arg(t)).collect()
}

fn ret_of<T>(r: &Result<T, PrintkError>, ok: impl Fn(&T) -> i64) -> i64 {
    match r {
        Ok(v) => ok(v),
        Err(e) => -(e.errno() as i64),
    }
}

/// Same length, same bytes except where both sides have a hex digit: the kernel's
/// hashed pointers use a per-boot key.
fn same_shape(ours: &[u8], kernel: &[u8]) -> bool {
    ours.len() == kernel.len()
        && ours
            .iter()
            .zip(kernel)
            .all(|(a, b)| a == b || (a.is_ascii_hexdigit() && b.is_ascii_hexdigit()))
}

#[test]
fn trace_printk_matches_the_kernel() {
    let (mem, cases) = parse(PRINTK_CASES);
    assert!(cases.len() >= 130, "cases: {}", cases.len());
    let mut checked = 0;
    for b in &cases {
        let id = &b["case"];
        let notes = b.get("note").map(String::as_str).unwrap_or("");
        if notes.contains("kernel-oob") {
            continue;
        }
        let fmt = unhex(&b["fmt"]);
        let a = args_of(&mem, b);
        let r = format_trace_printk(&fmt, [a[0], a[1], a[2]], &mut |addr, len| {
            mem.read(addr, len)
        });
        let want_ret: i64 = b["ret"].parse().expect("ret");
        let ctx = format!("case {id}: fmt {:?}", String::from_utf8_lossy(&fmt));
        assert_eq!(
            ret_of(&r, |v| v.ret),
            want_ret,
            "{ctx}: return value ({r:?})"
        );
        match (b["msg"].as_str(), &r) {
            ("-", Err(_)) => {}
            (hex, Ok(v)) if hex != "-" => {
                let want = unhex(hex);
                if notes.contains("hashed") {
                    assert!(
                        same_shape(&v.msg, &want),
                        "{ctx}: {:?} vs kernel {:?}",
                        v.text(),
                        String::from_utf8_lossy(&want)
                    );
                } else {
                    assert_eq!(v.text(), String::from_utf8_lossy(&want), "{ctx}");
                    assert_eq!(v.msg, want, "{ctx}");
                }
            }
            (hex, r) => panic!("{ctx}: kernel message {hex}, ours {r:?}"),
        }
        checked += 1;
    }
    assert!(checked >= 130);
}

#[test]
fn snprintf_and_vprintk_match_the_kernel() {
    let (mem, cases) = parse(SNPRINTF_CASES);
    assert!(cases.len() >= 18);
    for b in &cases {
        let id = &b["case"];
        let fmt = unhex(&b["fmt"]);
        let args = args_of(&mem, b);
        let data_len: u32 = b["data_len"].parse().expect("data_len");
        let want_ret: i64 = b["ret"].parse().expect("ret");
        let mut read = |addr, len| mem.read(addr, len);
        // The helpers check data_len before anything else.
        let n = match check_data_len(data_len) {
            Ok(n) => n,
            Err(e) => {
                assert_eq!(
                    -(e.errno() as i64),
                    want_ret,
                    "case {id}: data_len {data_len}"
                );
                continue;
            }
        };
        assert_eq!(n, args.len(), "case {id}: data file args");
        match b["helper"].as_str() {
            "snprintf" => {
                let size: u32 = b["str_size"].parse().expect("str_size");
                let r = format_bpf_snprintf(&fmt, &args, size, &mut read);
                assert_eq!(ret_of(&r, |v| v.ret), want_ret, "case {id}");
                let buf = unhex(&b["buf"]);
                let written = r.map(|v| v.out).unwrap_or_default();
                assert!(written.len() <= size as usize, "case {id}");
                let mut ours = vec![b'Z'; buf.len()];
                ours[..written.len()].copy_from_slice(&written);
                assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&buf),
                    "case {id}"
                );
            }
            "vprintk" => {
                let r = format_trace_vprintk(&fmt, &args, &mut read);
                assert_eq!(ret_of(&r, |v| v.ret), want_ret, "case {id}");
                let want = b["msg"].as_str();
                let ours = r.ok().map(|v| v.msg);
                assert_eq!(ours, (want != "-").then(|| unhex(want)), "case {id}");
            }
            h => panic!("unknown helper {h}"),
        }
    }
}

#[test]
fn trace_lines_match_the_kernel_layout() {
    let (_, events) = parse(TRACE_LINES);
    assert!(events.len() >= 30);
    for b in &events {
        let mut comm = "";
        let mut flags = "";
        let mut msg = Vec::new();
        for kv in b["event"].split(' ') {
            match kv.split_once('=') {
                Some(("comm", v)) => comm = v,
                Some(("flags", v)) => flags = v,
                Some(("msg", v)) => msg = if v == "-" { Vec::new() } else { unhex(v) },
                _ => panic!("bad event field {kv}"),
            }
        }
        let raw: Vec<u64> = b["raw"]
            .split(' ')
            .map(|v| v.parse().expect("raw field"))
            .collect();
        let line = trace_line_bytes(
            comm.as_bytes(),
            raw[0] as u32,
            raw[1] as u32,
            flags,
            raw[2],
            &msg,
        );
        let want = unhex(&b["text"]);
        assert_eq!(
            String::from_utf8_lossy(&line),
            String::from_utf8_lossy(&want)
        );
    }
}

#[test]
fn flag_presets_are_what_the_kernel_showed() {
    let (_, events) = parse(TRACE_LINES);
    let count = |f: TraceFlags| {
        events
            .iter()
            .filter(|b| b["event"].contains(&format!("flags={} ", f.render())))
            .count()
    };
    let (run, xdp) = (
        count(TraceFlags::PROG_TEST_RUN),
        count(TraceFlags::XDP_SOFTIRQ),
    );
    assert!(run >= 20 && xdp >= 3, "prog test run {run}, xdp {xdp}");
    let ksoftirqd = TraceFlags {
        preempt_depth: 1,
        ..TraceFlags::XDP_SOFTIRQ
    };
    assert_eq!(run + xdp + count(ksoftirqd), events.len());
}

#[test]
fn errors_carry_the_kernel_errno() {
    let mut none = |_: u64, _: usize| None;
    let e = format_trace_printk(b"%d %d %d %d\0", [1, 2, 3], &mut none).unwrap_err();
    assert_eq!(
        (
            e.errno(),
            e.to_string().starts_with("format has more conversions")
        ),
        (22, true)
    );
    let e = format_trace_printk(b"%5.2d\0", [0; 3], &mut none).unwrap_err();
    assert_eq!(e, PrintkError::BadConversion { offset: 0 });
    assert_eq!(check_data_len(100).unwrap_err().errno(), 22);
    assert_eq!(check_data_len(96), Ok(12));
}
