//! Context layouts against the kernel: for each program type (and the attach
//! types that change its layout), every load, sign-extending load and store of
//! 1, 2, 4 and 8 bytes at every offset of its context, accepted or refused as the
//! host kernel (Linux 6.18) does.
//!
//! The kernel's answers are recorded in `tests/golden/ctx_access.txt` (one line
//! per program type, attach type and access: the offsets the kernel accepts).
//! `BPFVM_CTX_LIVE=1` asks the live kernel instead (root); with `BPFVM_BLESS=1`
//! it rewrites the recording. bpfvm may refuse only fields whose pointer types
//! it does not model (sockets, BTF objects), with its own message; never accept
//! what the kernel refuses.

use bpfvm_isa::Insn;
use bpfvm_verifier::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/ctx_access.txt")
}

/// (program type, expected attach type, offsets to try: 0..end).
const TARGETS: &[(u32, u32, i32)] = &[
    (BPF_PROG_TYPE_SOCKET_FILTER, 0, 196),
    (BPF_PROG_TYPE_KPROBE, 0, 172),
    (BPF_PROG_TYPE_SCHED_CLS, 0, 196),
    (BPF_PROG_TYPE_SCHED_ACT, 0, 196),
    (BPF_PROG_TYPE_TRACEPOINT, 0, 32),
    (BPF_PROG_TYPE_XDP, 0, 28),
    (BPF_PROG_TYPE_XDP, BPF_XDP_DEVMAP, 28),
    (BPF_PROG_TYPE_PERF_EVENT, 0, 188),
    (BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_INGRESS, 196),
    (BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_EGRESS, 196),
    (BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_CREATE, 84),
    (BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET4_POST_BIND, 84),
    (BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET6_POST_BIND, 84),
    (BPF_PROG_TYPE_LWT_IN, 0, 196),
    (BPF_PROG_TYPE_LWT_OUT, 0, 196),
    (BPF_PROG_TYPE_LWT_XMIT, 0, 196),
    (BPF_PROG_TYPE_SOCK_OPS, BPF_CGROUP_SOCK_OPS, 228),
    (BPF_PROG_TYPE_SK_SKB, 0, 196),
    (BPF_PROG_TYPE_CGROUP_DEVICE, 6, 16),
    (BPF_PROG_TYPE_SK_MSG, 7, 84),
    (BPF_PROG_TYPE_RAW_TRACEPOINT, 0, 100),
    (BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_CONNECT, 76),
    (BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET6_CONNECT, 76),
    (BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP4_SENDMSG, 76),
    (BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP6_SENDMSG, 76),
    (BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UNIX_CONNECT, 76),
    (BPF_PROG_TYPE_SK_REUSEPORT, 39, 60),
    (BPF_PROG_TYPE_FLOW_DISSECTOR, 17, 196),
    (BPF_PROG_TYPE_CGROUP_SYSCTL, 18, 12),
    (BPF_PROG_TYPE_CGROUP_SOCKOPT, BPF_CGROUP_GETSOCKOPT, 44),
    (BPF_PROG_TYPE_CGROUP_SOCKOPT, BPF_CGROUP_SETSOCKOPT, 44),
    (BPF_PROG_TYPE_SK_LOOKUP, 36, 76),
    (BPF_PROG_TYPE_NETFILTER, 45, 20),
];

/// (name, opcode) of each access tried.
const KINDS: &[(&str, u8)] = &[
    ("r1", 0x71),
    ("r2", 0x69),
    ("r4", 0x61),
    ("r8", 0x79),
    ("s1", 0x91),
    ("s2", 0x89),
    ("s4", 0x81),
    ("w1", 0x73),
    ("w2", 0x6b),
    ("w4", 0x63),
    ("w8", 0x7b),
];

fn program(op: u8, off: i32, prog_type: u32, attach: u32) -> Vec<Insn> {
    let ret = retval_range(prog_type, attach).map_or(0, |r| r.0);
    let access = if op & 0x07 == 0x03 {
        // BPF_STX from r2 (BPF_ST into the context is refused on its own).
        vec![
            Insn::new(0xb7, 2, 0, 0, 0),
            Insn::new(op, 1, 2, off as i16, 0),
        ]
    } else {
        vec![Insn::new(op, 0, 1, off as i16, 0)]
    };
    let mut p = access;
    p.push(Insn::new(0xb7, 0, 0, 0, ret));
    p.push(Insn::new(0x95, 0, 0, 0, 0));
    p
}

fn key(prog_type: u32, attach: u32, kind: &str) -> String {
    format!("{prog_type} {attach} {kind}")
}

/// Offsets as `a..b,c,...` (inclusive ranges).
fn ranges(v: &[i32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}..{}", v[i], v[j])
        });
        i = j + 1;
    }
    if out.is_empty() {
        "-".into()
    } else {
        out.join(",")
    }
}

fn parse_ranges(s: &str) -> Vec<i32> {
    if s == "-" {
        return Vec::new();
    }
    s.split(',')
        .flat_map(|r| match r.split_once("..") {
            Some((a, b)) => (a.parse::<i32>().unwrap()..=b.parse::<i32>().unwrap()).collect(),
            None => vec![r.parse::<i32>().unwrap()],
        })
        .collect()
}

/// The live kernel's verdict, or None when it cannot be asked.
fn kernel_accepts(p: &[Insn], prog_type: u32, attach: u32) -> Option<bool> {
    let load = bpfvm_testsupport::ProgLoad {
        prog_type,
        insns: p,
        expected_attach_type: attach,
        ..Default::default()
    };
    match bpfvm_testsupport::prog_load(&load) {
        Ok(_) => Some(true),
        Err(e) if matches!(e.errno, libc::EACCES | libc::EINVAL) => Some(false),
        Err(_) => None,
    }
}

fn capture_live() -> Option<BTreeMap<String, Vec<i32>>> {
    let mut out = BTreeMap::new();
    for &(t, a, end) in TARGETS {
        for &(kind, op) in KINDS {
            let mut ok = Vec::new();
            for off in -4..end {
                if kernel_accepts(&program(op, off, t, a), t, a)? {
                    ok.push(off);
                }
            }
            out.insert(key(t, a, kind), ok);
        }
    }
    Some(out)
}

fn read_golden() -> BTreeMap<String, Vec<i32>> {
    let text = std::fs::read_to_string(golden_path()).expect("tests/golden/ctx_access.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut it = l.rsplitn(2, ' ');
            let offs = it.next().unwrap();
            (it.next().unwrap().to_string(), parse_ranges(offs))
        })
        .collect()
}

#[test]
fn ctx_access_matches_the_kernel() {
    let live = std::env::var_os("BPFVM_CTX_LIVE").is_some();
    let answers = if live {
        match capture_live() {
            Some(a) => a,
            None => {
                eprintln!("skipping the live comparison: the kernel cannot be asked (root needed)");
                return;
            }
        }
    } else {
        read_golden()
    };
    if live && std::env::var_os("BPFVM_BLESS").is_some() {
        let mut text = String::from(
            "# Context accesses the host kernel accepts: PROG_TYPE ATTACH KIND OFFSETS\n\
             # (KIND r = load, s = sign-extending load, w = store, then the size).\n\
             # Written by BPFVM_CTX_LIVE=1 BPFVM_BLESS=1 cargo test -p bpfvm-verifier --test ctx_kernel.\n",
        );
        for (k, v) in &answers {
            text.push_str(&format!("{k} {}\n", ranges(v)));
        }
        std::fs::write(golden_path(), text).unwrap();
    }
    let mut escapes = Vec::new();
    let mut refusals = Vec::new();
    let mut unmodelled = 0;
    let mut tried = 0;
    for &(t, a, end) in TARGETS {
        for &(kind, op) in KINDS {
            let ok = answers
                .get(&key(t, a, kind))
                .unwrap_or_else(|| panic!("no answer for {}", key(t, a, kind)));
            for off in -4..end {
                tried += 1;
                let opts = VerifierOpts {
                    prog_type: t,
                    expected_attach_type: a,
                    ..Default::default()
                };
                let ours = verify(&program(op, off, t, a), &|_| None, &opts);
                let kernel = ok.contains(&off);
                match (ours, kernel) {
                    (Ok(_), false) => escapes.push(format!("{} off {off}", key(t, a, kind))),
                    (Err(e), true) => {
                        if e.error.reason().starts_with("bpfvm does not model") {
                            unmodelled += 1;
                        } else {
                            refusals.push(format!("{} off {off}: {}", key(t, a, kind), e.error))
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    eprintln!(
        "context accesses: {tried} tried, {} escapes, {} false refusals, {unmodelled} refused as unmodelled pointers",
        escapes.len(),
        refusals.len()
    );
    assert!(
        escapes.is_empty(),
        "bpfvm accepts what the kernel refuses:\n{}",
        escapes.join("\n")
    );
    assert!(
        refusals.is_empty(),
        "bpfvm refuses what the kernel accepts:\n{}",
        refusals.join("\n")
    );
}
