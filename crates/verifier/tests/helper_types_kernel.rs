//! Which helpers each program type may call, against the kernel: for each
//! program type (and attach types that change the set), a call of every helper
//! id is loaded into the host kernel; "program of this type cannot use helper"
//! (or "invalid func") means the type is not offered it, any other verdict that
//! it is. The helper registry (bpfvm_isa::helpers) must say the same.
//!
//! The answers are recorded in `tests/golden/helper_types.txt`;
//! `BPFVM_HELPERS_LIVE=1` asks the live kernel (root), and with `BPFVM_BLESS=1`
//! rewrites the recording.

use bpfvm_isa::helpers::{helper, HELPER_COUNT};
use bpfvm_isa::Insn;
use bpfvm_verifier::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/helper_types.txt")
}

/// (program type, expected attach type).
const TARGETS: &[(u32, u32)] = &[
    (BPF_PROG_TYPE_SOCKET_FILTER, 0),
    (BPF_PROG_TYPE_KPROBE, 0),
    (BPF_PROG_TYPE_SCHED_CLS, 0),
    (BPF_PROG_TYPE_SCHED_ACT, 0),
    (BPF_PROG_TYPE_TRACEPOINT, 0),
    (BPF_PROG_TYPE_XDP, 0),
    (BPF_PROG_TYPE_PERF_EVENT, 0),
    (BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_INGRESS),
    (BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_EGRESS),
    (BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_CREATE),
    (BPF_PROG_TYPE_LWT_IN, 0),
    (BPF_PROG_TYPE_LWT_OUT, 0),
    (BPF_PROG_TYPE_LWT_XMIT, 0),
    (BPF_PROG_TYPE_SOCK_OPS, BPF_CGROUP_SOCK_OPS),
    (BPF_PROG_TYPE_SK_SKB, 0),
    (BPF_PROG_TYPE_CGROUP_DEVICE, 6),
    (BPF_PROG_TYPE_SK_MSG, 7),
    (BPF_PROG_TYPE_RAW_TRACEPOINT, 0),
    (BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_BIND),
    (BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_CONNECT),
    (BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP4_RECVMSG),
    (BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UNIX_GETPEERNAME),
    (BPF_PROG_TYPE_LWT_SEG6LOCAL, 0),
    (BPF_PROG_TYPE_SK_REUSEPORT, 39),
    (BPF_PROG_TYPE_FLOW_DISSECTOR, 17),
    (BPF_PROG_TYPE_CGROUP_SYSCTL, 18),
    (BPF_PROG_TYPE_CGROUP_SOCKOPT, BPF_CGROUP_GETSOCKOPT),
    (BPF_PROG_TYPE_CGROUP_SOCKOPT, BPF_CGROUP_SETSOCKOPT),
    (BPF_PROG_TYPE_SK_LOOKUP, 36),
    (BPF_PROG_TYPE_SYSCALL, 0),
    (BPF_PROG_TYPE_NETFILTER, 45),
];

/// Whether the kernel offers helper `id` to the target: None when it cannot
/// be asked.
fn kernel_offers(id: i32, prog_type: u32, attach: u32) -> Option<bool> {
    let p = [
        Insn::new(0x85, 0, 0, 0, id),
        Insn::new(
            0xb7,
            0,
            0,
            0,
            retval_range(prog_type, attach).map_or(0, |r| r.0),
        ),
        Insn::new(0x95, 0, 0, 0, 0),
    ];
    // Syscall programs may be sleepable, which some helpers need.
    let load = bpfvm_testsupport::ProgLoad {
        prog_type,
        insns: &p,
        log_level: 1,
        log_size: 1 << 16,
        prog_flags: sleepable_if_syscall(prog_type),
        expected_attach_type: attach,
        ..Default::default()
    };
    let e = match bpfvm_testsupport::prog_load(&load) {
        Ok(_) => return Some(true),
        Err(e) => e,
    };
    let errno = Some(e.errno);
    let text = e.log;
    if text.contains("program of this type cannot use helper") || text.contains("invalid func") {
        return Some(false);
    }
    // Any other refusal comes after the helper was found: it is offered
    // (arguments, sleepability, an unsupported JIT feature...).
    match errno {
        Some(libc::EACCES) | Some(libc::EINVAL) | Some(libc::EPERM) | Some(524) => Some(true),
        _ => {
            eprintln!(
                "helper {id} type {prog_type}: {errno:?} {}",
                text.trim_end_matches('\0')
            );
            None
        }
    }
}

fn key(prog_type: u32, attach: u32) -> String {
    format!("{prog_type} {attach}")
}

#[test]
fn helper_types_match_the_kernel() {
    let live = std::env::var_os("BPFVM_HELPERS_LIVE").is_some();
    let mut answers: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    if live {
        for &(t, a) in TARGETS {
            let mut ids = Vec::new();
            for id in 1..HELPER_COUNT as i32 {
                match kernel_offers(id, t, a) {
                    Some(true) => ids.push(id),
                    Some(false) => {}
                    None => {
                        eprintln!("skipping the live comparison: the kernel cannot be asked (helper {id}, type {t})");
                        return;
                    }
                }
            }
            answers.insert(key(t, a), ids);
        }
        if std::env::var_os("BPFVM_BLESS").is_some() {
            let mut text = String::from(
                "# Helper ids the host kernel offers each program type: PROG_TYPE ATTACH IDS.\n\
                 # Written by BPFVM_HELPERS_LIVE=1 BPFVM_BLESS=1 cargo test -p bpfvm-verifier --test helper_types_kernel.\n",
            );
            for (k, v) in &answers {
                let ids: Vec<String> = v.iter().map(|x| x.to_string()).collect();
                text.push_str(&format!("{k} {}\n", ids.join(",")));
            }
            std::fs::write(golden_path(), text).unwrap();
        }
    } else {
        let text = std::fs::read_to_string(golden_path()).expect("tests/golden/helper_types.txt");
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let mut it = l.splitn(3, ' ');
            let (t, a, ids) = (
                it.next().unwrap(),
                it.next().unwrap(),
                it.next().unwrap_or(""),
            );
            answers.insert(
                format!("{t} {a}"),
                ids.split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap())
                    .collect(),
            );
        }
    }
    let mut diffs = Vec::new();
    for &(t, a) in TARGETS {
        let kernel = &answers[&key(t, a)];
        for id in 1..HELPER_COUNT as i32 {
            let ours = helper(id as i64, t).is_some_and(|d| d.allows(t, a));
            if ours != kernel.contains(&id) {
                let name = bpfvm_isa::helpers::helper_name(id as i64).unwrap_or("?");
                diffs.push(format!(
                    "type {t} attach {a}: {name}#{id}: kernel {}, registry {}",
                    if kernel.contains(&id) {
                        "offers"
                    } else {
                        "refuses"
                    },
                    if ours { "offers" } else { "refuses" }
                ));
            }
        }
    }
    eprintln!(
        "helper availability: {} program types x {} helpers, {} differences",
        TARGETS.len(),
        HELPER_COUNT - 1,
        diffs.len()
    );
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// Helpers whose arguments are contexts and plain values, called with the
/// context and with NULL where the context goes: bpfvm's prototypes must give
/// the kernel's verdicts (ARG_PTR_TO_CTX against ARG_PTR_TO_CTX_OR_NULL).
/// Live only (root).
#[test]
fn context_arguments_match_the_kernel() {
    use bpfvm_isa::helpers::{Arg, HELPERS};
    if std::env::var_os("BPFVM_HELPERS_LIVE").is_none() {
        return;
    }
    let mut diffs = Vec::new();
    let mut tried = 0;
    for &(t, a) in TARGETS {
        for d in HELPERS {
            let Some(p) = d.proto else { continue };
            if !d.allows(t, a) || helper(d.id as i64, t).map(|x| x.id) != Some(d.id) {
                continue;
            }
            if helper(d.id as i64, t).and_then(|x| x.proto) != Some(p) {
                continue;
            }
            let simple = p
                .args
                .iter()
                .all(|x| matches!(x, Arg::Anything | Arg::Ctx | Arg::CtxOrNull | Arg::DontCare));
            if !simple
                || !p
                    .args
                    .iter()
                    .any(|x| matches!(x, Arg::Ctx | Arg::CtxOrNull))
            {
                continue;
            }
            for null in [false, true] {
                let mut prog = vec![Insn::new(0xbf, 6, 1, 0, 0)];
                for (i, x) in p.args.iter().enumerate() {
                    let r = i as u8 + 1;
                    prog.push(match x {
                        Arg::Ctx | Arg::CtxOrNull if !null => Insn::new(0xbf, r, 6, 0, 0),
                        _ => Insn::new(0xb7, r, 0, 0, 0),
                    });
                }
                prog.push(Insn::new(0x85, 0, 0, 0, d.id as i32));
                prog.push(Insn::new(
                    0xb7,
                    0,
                    0,
                    0,
                    retval_range(t, a).map_or(0, |r| r.0),
                ));
                prog.push(Insn::new(0x95, 0, 0, 0, 0));
                let Some(kernel) = kernel_loads(&prog, t, a) else {
                    return;
                };
                let opts = VerifierOpts {
                    prog_type: t,
                    expected_attach_type: a,
                    ..Default::default()
                };
                let ours = verify(&prog, &|_| None, &opts);
                tried += 1;
                if ours.is_ok() != kernel {
                    diffs.push(format!(
                        "type {t} attach {a}: {} with {}: kernel {}, bpfvm {}",
                        d.name,
                        if null { "NULL" } else { "the context" },
                        if kernel { "accepts" } else { "refuses" },
                        match &ours {
                            Ok(_) => "accepts".to_string(),
                            Err(e) => format!("refuses ({})", e.error),
                        }
                    ));
                }
            }
        }
    }
    eprintln!(
        "context arguments: {tried} calls, {} differences",
        diffs.len()
    );
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

fn kernel_loads(p: &[Insn], prog_type: u32, attach: u32) -> Option<bool> {
    let load = bpfvm_testsupport::ProgLoad {
        prog_type,
        insns: p,
        prog_flags: sleepable_if_syscall(prog_type),
        expected_attach_type: attach,
        ..Default::default()
    };
    match bpfvm_testsupport::prog_load(&load) {
        Ok(_) => Some(true),
        Err(e) if matches!(e.errno, libc::EACCES | libc::EINVAL | libc::EPERM | 524) => Some(false),
        Err(_) => None,
    }
}

/// Syscall programs load sleepable, which some helpers need.
fn sleepable_if_syscall(prog_type: u32) -> u32 {
    if prog_type == BPF_PROG_TYPE_SYSCALL {
        BPF_F_SLEEPABLE
    } else {
        0
    }
}

/// Where a packet-typed program's context holds data and data_end (u32).
fn packet_fields(prog_type: u32) -> Option<(i16, i16)> {
    match prog_type {
        BPF_PROG_TYPE_XDP => Some((0, 4)),
        BPF_PROG_TYPE_SCHED_CLS
        | BPF_PROG_TYPE_SCHED_ACT
        | BPF_PROG_TYPE_CGROUP_SKB
        | BPF_PROG_TYPE_LWT_IN
        | BPF_PROG_TYPE_LWT_OUT
        | BPF_PROG_TYPE_LWT_XMIT
        | BPF_PROG_TYPE_SK_SKB => Some((76, 80)),
        _ => None,
    }
}

/// Helpers taking contexts, values and memory, called with stack memory,
/// with NULL and a zero size, and with packet memory: bpfvm's prototypes
/// (memory read or written, sizes that may be zero, NULL allowed, packet
/// access) must give the kernel's verdicts. Live only (root).
#[test]
fn memory_arguments_match_the_kernel() {
    use bpfvm_isa::helpers::{Arg, HELPERS};
    if std::env::var_os("BPFVM_HELPERS_LIVE").is_none() {
        return;
    }
    let mut diffs = Vec::new();
    let mut tried = 0;
    for &(t, a) in TARGETS {
        for d in HELPERS {
            if helper(d.id as i64, t).map(|x| x.prog_types) != Some(d.prog_types) || !d.allows(t, a)
            {
                continue;
            }
            let Some(p) = d.proto else { continue };
            let ok_args = p.args.iter().all(|x| {
                matches!(
                    x,
                    Arg::Anything
                        | Arg::Ctx
                        | Arg::CtxOrNull
                        | Arg::DontCare
                        | Arg::Mem { .. }
                        | Arg::UninitMem { .. }
                        | Arg::FixedMem { .. }
                        | Arg::ConstSize
                        | Arg::ConstSizeOrZero
                )
            });
            let has_mem = p.args.iter().any(|x| {
                matches!(
                    x,
                    Arg::Mem { .. } | Arg::UninitMem { .. } | Arg::FixedMem { .. }
                )
            });
            if !ok_args || !has_mem {
                continue;
            }
            for variant in ["stack", "null", "packet"] {
                let pkt = packet_fields(t);
                if variant == "packet" && pkt.is_none() {
                    continue;
                }
                let mut prog = vec![
                    Insn::new(0xbf, 6, 1, 0, 0),
                    // 16 initialised stack bytes at fp-16.
                    Insn::new(0x7a, 10, 0, -16, 0),
                    Insn::new(0x7a, 10, 0, -8, 0),
                ];
                let ret = retval_range(t, a).map_or(0, |r| r.0);
                if variant == "packet" {
                    let (data, end) = pkt.unwrap_or((0, 4));
                    prog.extend([
                        Insn::new(0x61, 7, 6, data, 0),
                        Insn::new(0x61, 8, 6, end, 0),
                        Insn::new(0xbf, 9, 7, 0, 0),
                        Insn::new(0x07, 9, 0, 0, 16),
                        // if r9 > r8: exit with r0 = ret
                        Insn::new(0x2d, 9, 8, 2, 0),
                        Insn::new(0x05, 0, 0, 0, 2),
                        Insn::new(0xb7, 0, 0, 0, ret),
                        Insn::new(0x95, 0, 0, 0, 0),
                    ]);
                }
                for (i, x) in p.args.iter().enumerate() {
                    let r = i as u8 + 1;
                    let mem = |prog: &mut Vec<Insn>| match variant {
                        "null" => prog.push(Insn::new(0xb7, r, 0, 0, 0)),
                        "packet" => prog.push(Insn::new(0xbf, r, 7, 0, 0)),
                        _ => {
                            prog.push(Insn::new(0xbf, r, 10, 0, 0));
                            prog.push(Insn::new(0x07, r, 0, 0, -16));
                        }
                    };
                    match x {
                        Arg::Ctx | Arg::CtxOrNull => prog.push(Insn::new(0xbf, r, 6, 0, 0)),
                        Arg::Mem { .. } | Arg::UninitMem { .. } | Arg::FixedMem { .. } => {
                            mem(&mut prog)
                        }
                        Arg::ConstSize | Arg::ConstSizeOrZero => {
                            let size = if variant == "null" { 0 } else { 8 };
                            prog.push(Insn::new(0xb7, r, 0, 0, size))
                        }
                        _ => prog.push(Insn::new(0xb7, r, 0, 0, 0)),
                    }
                }
                prog.push(Insn::new(0x85, 0, 0, 0, d.id as i32));
                prog.push(Insn::new(0xb7, 0, 0, 0, ret));
                prog.push(Insn::new(0x95, 0, 0, 0, 0));
                let Some(kernel) = kernel_loads(&prog, t, a) else {
                    return;
                };
                let opts = VerifierOpts {
                    prog_type: t,
                    expected_attach_type: a,
                    ..Default::default()
                };
                let ours = verify(&prog, &|_| None, &opts);
                tried += 1;
                if ours.is_ok() != kernel {
                    diffs.push(format!(
                        "type {t} attach {a}: {} with {variant} memory: kernel {}, bpfvm {}",
                        d.name,
                        if kernel { "accepts" } else { "refuses" },
                        match &ours {
                            Ok(_) => "accepts".to_string(),
                            Err(e) => format!("refuses ({})", e.error),
                        }
                    ));
                }
            }
        }
    }
    eprintln!(
        "memory arguments: {tried} calls, {} differences",
        diffs.len()
    );
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
