//! Soundness patterns for what depends on the program type: the value a
//! program returns (`check_return_code`), the helpers it may call, and its
//! context.
//!
//! Generated programs load context fields, compute a return value (constants
//! in and out of the type's range, masked or shifted loads, helper results,
//! the context or stack pointer itself) and call helpers that take no
//! arguments, some of which the type is not offered. Whatever `verify` accepts
//! runs on the checked interpreter with a context region of the type's size and
//! a helper table holding only the helpers the kernel offers the type (per the
//! helper registry, for this attach type and privilege). An escape is a call the
//! table cannot resolve, a return value outside the type's range, or an access
//! outside the context.

use crate::verifier::{ins, Rng};
use bpfvm_isa::helpers::{Cap, HELPERS};
use bpfvm_isa::Insn;
use bpfvm_verifier::*;
use bpfvm_vm::{
    HelperCtx, HelperOutcome, HelperTable, LoadOptions, RunOptions, VmError, VmProgram,
};
use std::sync::Arc;

/// A program type, an attach type and the loader's privilege.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub prog_type: u32,
    pub attach: u32,
    pub privileged: bool,
}

/// Program types with their attach types: every return-value range and the
/// types whose helper sets differ most.
const TARGETS: &[(u32, &[u32])] = &[
    (
        BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
        &[
            8, 9, 10, 11, 14, 15, 19, 20, 29, 30, 31, 32, 49, 50, 51, 52, 53,
        ],
    ),
    (BPF_PROG_TYPE_CGROUP_SKB, &[0, 1]),
    (BPF_PROG_TYPE_CGROUP_SOCK, &[2, 12, 13, 34]),
    (BPF_PROG_TYPE_SOCK_OPS, &[3]),
    (BPF_PROG_TYPE_CGROUP_DEVICE, &[6]),
    (BPF_PROG_TYPE_CGROUP_SYSCTL, &[18]),
    (BPF_PROG_TYPE_CGROUP_SOCKOPT, &[21, 22]),
    (BPF_PROG_TYPE_SK_LOOKUP, &[36]),
    (BPF_PROG_TYPE_NETFILTER, &[45]),
    (BPF_PROG_TYPE_KPROBE, &[0]),
    (BPF_PROG_TYPE_TRACEPOINT, &[0]),
    (BPF_PROG_TYPE_RAW_TRACEPOINT, &[0]),
    (BPF_PROG_TYPE_PERF_EVENT, &[0]),
    (BPF_PROG_TYPE_SOCKET_FILTER, &[0]),
    (BPF_PROG_TYPE_SCHED_CLS, &[0]),
    (BPF_PROG_TYPE_XDP, &[0]),
    (BPF_PROG_TYPE_LWT_IN, &[0]),
    (BPF_PROG_TYPE_SK_SKB, &[0]),
    (BPF_PROG_TYPE_SK_MSG, &[7]),
    (BPF_PROG_TYPE_FLOW_DISSECTOR, &[17]),
];

/// Helpers without arguments, offered to different sets of types.
const NOARG_HELPERS: &[i32] = &[5, 7, 8, 14, 15, 42, 80, 118, 125, 160, 186, 208, 35];

/// Largest context the harness allocates (tracepoints' is 2 KiB).
const CTX_MAX: usize = 4096;

impl Target {
    pub fn pick(r: &mut Rng) -> Target {
        let (prog_type, attaches) = r.pick(TARGETS);
        let unpriv_ok = matches!(
            prog_type,
            BPF_PROG_TYPE_SOCKET_FILTER | BPF_PROG_TYPE_CGROUP_SKB
        );
        Target {
            prog_type,
            attach: r.pick(attaches),
            privileged: !unpriv_ok || r.below(3) != 0,
        }
    }

    fn opts(&self) -> VerifierOpts {
        VerifierOpts {
            prog_type: self.prog_type,
            expected_attach_type: self.attach,
            privileged: self.privileged,
            ..Default::default()
        }
    }

    fn ctx_len(&self) -> usize {
        ctx_size(self.prog_type).min(CTX_MAX)
    }

    /// The helpers the kernel offers this target, each returning a random value
    /// (set through `seed`).
    pub fn helper_table(&self, seed: u64) -> HelperTable {
        let mut t = HelperTable::new();
        for d in HELPERS {
            let offered = d.allows(self.prog_type, self.attach)
                && (self.privileged || d.cap == Cap::None)
                && d.proto.is_some();
            if offered && t.get(d.id).is_none() {
                let id = d.id as u64;
                t.register(
                    d.id,
                    d.name,
                    move |_: &mut HelperCtx<'_, '_>, _: [u64; 5]| {
                        let mut x = seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                        x ^= x >> 29;
                        Ok(HelperOutcome::Return(x.wrapping_mul(0xbf58_476d_1ce4_e5b9)))
                    },
                );
            }
        }
        t
    }
}

/// A random program for `t`: context loads, helper calls, and a return value
/// built from constants, masks and shifts, helper results or pointers.
pub fn gen(r: &mut Rng, t: &Target) -> Vec<Insn> {
    let ctx_len = t.ctx_len() as i16;
    let mut body: Vec<Vec<Insn>> = Vec::new();
    let n = 3 + r.below(10) as usize;
    for _ in 0..n * 3 {
        let b = match r.below(12) {
            0 | 1 => vec![ins(
                0xb7,
                0,
                0,
                0,
                r.pick(&[0, 1, 2, 3, 4, -1, 0x7fff_ffff, i32::MIN, 5, 1]),
            )],
            2 | 3 => {
                let size = r.pick(&[0x00u8, 0x08, 0x10, 0x18]);
                let off = (r.below(ctx_len.max(8) as u64 / 4 + 2) as i16) * 4
                    - r.pick(&[0i16, 0, 0, 4, 2]);
                vec![ins(0x61 | size, r.pick(&[0u8, 0, 7]), 6, off, 0)]
            }
            4 => vec![ins(0x57, 0, 0, 0, r.pick(&[1, 3, 7, 0xff, 2]))],
            5 => vec![ins(
                r.pick(&[0x07u8, 0x47, 0x77, 0xc7, 0x04, 0x87, 0xb4]),
                0,
                0,
                0,
                r.pick(&[1, 2, 31, 63, -1, 0]),
            )],
            6 | 7 => {
                // A helper call without arguments; r0 takes its result.
                vec![ins(0x85, 0, 0, 0, r.pick(NOARG_HELPERS))]
            }
            8 => {
                // Branch on r0 so the range is learned or lost on some paths.
                let op = r.pick(&[0x25u8, 0xa5, 0x65, 0xc5, 0x15, 0x55, 0x35]);
                vec![
                    ins(op, 0, 0, 2, r.pick(&[0, 1, 2, 3, 4])),
                    ins(0xb7, 0, 0, 0, r.pick(&[0, 1, 2, 3])),
                    ins(0x05, 0, 0, 0, 0),
                ]
            }
            9 => vec![ins(0xbf, 0, r.pick(&[6u8, 10, 7]), 0, 0)],
            10 => vec![ins(0xbf, 7, 0, 0, 0)],
            _ => vec![ins(0xbf, 0, 7, 0, 0)],
        };
        body.push(b);
    }
    let mut out = vec![
        ins(0xbf, 6, 1, 0, 0), // r6 = ctx
        ins(0xb7, 7, 0, 0, 0),
        ins(0xb7, 0, 0, 0, 0),
    ];
    let mut kept = 0;
    for b in body {
        if kept >= n {
            break;
        }
        // Keep a block while the program still verifies, so that accepted
        // programs are long; the last block is kept either way (the
        // interesting refusals sit at the exit).
        let mut p = out.clone();
        p.extend(b);
        p.push(ins(0x95, 0, 0, 0, 0));
        if accepts(&p, t) || kept + 1 == n {
            p.pop();
            out = p;
            kept += 1;
        }
    }
    out.push(ins(0x95, 0, 0, 0, 0));
    out
}

fn accepts(p: &[Insn], t: &Target) -> bool {
    verify(p, &|_| None, &t.opts()).is_ok()
}

/// Runs an accepted program on random contexts and helper results; returns the
/// escape, if any.
pub fn run_checked(p: &[Insn], t: &Target, r: &mut Rng) -> Option<String> {
    let mut ctx = vec![0u8; CTX_MAX];
    let range = retval_range(t.prog_type, t.attach);
    for _ in 0..4 {
        let table = Arc::new(t.helper_table(r.next_u64()));
        let vp = match VmProgram::new(p, &LoadOptions::new(table)) {
            Ok(vp) => vp,
            Err(e) => return Some(format!("not runnable as this type: {e}")),
        };
        for b in ctx.iter_mut() {
            *b = r.next_u64() as u8;
        }
        let opts = RunOptions::new()
            .context(ctx.as_mut_ptr() as u64, t.ctx_len() as u64, true)
            .fuel(100_000);
        match vp.run(opts) {
            Ok(res) => {
                if let Some((lo, hi)) = range {
                    let v = res.r0 as i64;
                    if v < lo as i64 || v > hi as i64 {
                        return Some(format!("returned {v}, outside [{lo}, {hi}]"));
                    }
                }
            }
            Err(e @ VmError::MemoryViolation { .. }) => return Some(e.to_string()),
            Err(_) => {}
        }
    }
    None
}

/// What one round of program-type fuzzing saw.
#[derive(Debug, Default)]
pub struct ProgTypeReport {
    pub tried: u64,
    pub accepted: u64,
    /// Escapes: the violation, the target and the program.
    pub escapes: Vec<String>,
}

/// One generated program for a random target and three mutations of it.
pub fn progtype_round(r: &mut Rng, report: &mut ProgTypeReport) {
    let t = Target::pick(r);
    let mut p = gen(r, &t);
    for _ in 0..4 {
        report.tried += 1;
        if accepts(&p, &t) {
            report.accepted += 1;
            if let Some(e) = run_checked(&p, &t, r) {
                report.escapes.push(format!(
                    "{e} ({t:?})\n{}",
                    bpfvm_isa::asm::disassemble_conformance(&p)
                ));
            }
        }
        mutate(r, &mut p);
    }
}

fn mutate(r: &mut Rng, p: &mut [Insn]) {
    let i = 1 + r.below(p.len() as u64 - 1) as usize;
    if p[i].code == 0x95 {
        return;
    }
    match r.below(3) {
        0 => p[i].imm = r.pick(&[0, 1, 2, 3, 4, -1, 160, 5, 15, 80]),
        1 => p[i].off = p[i].off.wrapping_add(r.pick(&[-4i16, -1, 1, 4, 8])),
        _ => p[i].src_reg = r.pick(&[0u8, 6, 7, 10]),
    }
}
