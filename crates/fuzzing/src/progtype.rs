//! Soundness patterns for what depends on the program type: the value a
//! program returns (`check_return_code`), the helpers it may call, and its
//! context.
//!
//! Generated programs load context fields, compute a return value (constants
//! in and out of the type's range, masked or shifted loads, helper results,
//! the context or stack pointer itself), call helpers that take no arguments,
//! some of which the type is not offered, and read packets through the
//! context's packet pointers loaded every way (narrow, sign-extending, from
//! fields the type does not have). Whatever `verify` accepts runs on the
//! checked interpreter with a context region of the type's size, its packet
//! pointer fields holding real addresses above 2 GiB (so that a sign-extended
//! pointer is a wrong one), and a helper table holding only the helpers the
//! kernel offers the type (per the helper registry, for this attach type and
//! privilege). An escape is a call the table cannot resolve, a return value
//! outside the type's range, or an access outside the context and packet.

use crate::verifier::{ins, Rng};
use bpfvm_isa::helpers::{Cap, HELPERS};
use bpfvm_isa::Insn;
use bpfvm_verifier::*;
use bpfvm_vm::{
    HelperCtx, HelperError, HelperOutcome, HelperTable, LoadOptions, Region, RegionKind,
    RunOptions, VmError, VmProgram,
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
/// Where the packet starts in the harness's buffer, after the context.
const PKT_AT: usize = 8192;
/// Bytes of packet the harness provides at most.
const PKT_MAX: usize = 256;
/// Where flow keys start, after the packet.
const KEYS_AT: usize = 12288;

/// Where a type's context holds packet pointers: (data, data_end, data_meta)
/// offsets, and whether they are 8-byte pointers (else u32 addresses).
pub fn pkt_fields(prog_type: u32) -> Option<(i16, i16, Option<i16>, bool)> {
    Some(match prog_type {
        BPF_PROG_TYPE_XDP => (0, 4, Some(8), false),
        BPF_PROG_TYPE_SCHED_CLS => (76, 80, Some(140), false),
        BPF_PROG_TYPE_CGROUP_SKB
        | BPF_PROG_TYPE_LWT_IN
        | BPF_PROG_TYPE_SK_SKB
        | BPF_PROG_TYPE_FLOW_DISSECTOR => (76, 80, None, false),
        BPF_PROG_TYPE_SK_MSG => (0, 8, None, true),
        BPF_PROG_TYPE_CGROUP_SOCKOPT => (8, 16, None, true),
        _ => return None,
    })
}

/// The harness's memory: a context, a packet and flow keys in one mapping
/// placed above 2 GiB and below 4 GiB, where u32 context fields can hold
/// addresses and a sign extension changes them.
pub struct Buf {
    base: *mut u8,
}

impl Buf {
    pub fn new() -> Buf {
        let mut p = libc::MAP_FAILED;
        for hint in [0xc000_0000usize, 0xb000_0000, 0xd000_0000, 0xa000_0000] {
            // SAFETY: an anonymous private mapping at a free address (the
            // kernel refuses to replace an existing one); checked below.
            p = unsafe {
                libc::mmap(
                    hint as *mut libc::c_void,
                    1 << 16,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                break;
            }
        }
        assert!(p != libc::MAP_FAILED, "no free mapping between 2 and 4 GiB");
        Buf { base: p as *mut u8 }
    }
    fn addr(&self, off: usize) -> u64 {
        self.base as u64 + off as u64
    }
    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is 64 KiB and owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.base, 1 << 16) }
    }
}

impl Default for Buf {
    fn default() -> Self {
        Buf::new()
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `new`.
        unsafe { libc::munmap(self.base as *mut libc::c_void, 1 << 16) };
    }
}

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
            // A mutant loop that does not converge is refused early.
            complexity_limit: crate::verifier::FUZZ_COMPLEXITY_LIMIT,
            ..Default::default()
        }
    }

    fn ctx_len(&self) -> usize {
        ctx_size(self.prog_type).min(CTX_MAX)
    }

    /// The helpers the kernel offers this target, each returning a random value
    /// (set through `seed`); every other helper traps when called, which the
    /// harness reports (a call on a path the program never takes is fine, as
    /// in the kernel, which removes dead code).
    pub fn helper_table(&self, seed: u64) -> HelperTable {
        let mut t = HelperTable::new();
        for d in HELPERS {
            if t.get(d.id).is_some() {
                continue;
            }
            let offered =
                bpfvm_isa::helpers::helper(d.id as i64, self.prog_type).is_some_and(|x| {
                    x.allows(self.prog_type, self.attach)
                        && (self.privileged || x.cap == Cap::None)
                        && x.proto.is_some()
                });
            let id = d.id as u64;
            if offered {
                t.register(
                    d.id,
                    d.name,
                    move |_: &mut HelperCtx<'_, '_>, _: [u64; 5]| {
                        let mut x = seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                        x ^= x >> 29;
                        Ok(HelperOutcome::Return(x.wrapping_mul(0xbf58_476d_1ce4_e5b9)))
                    },
                );
            } else {
                t.register(d.id, d.name, |_: &mut HelperCtx<'_, '_>, _: [u64; 5]| {
                    Err(HelperError::InvalidArgument {
                        reason: NOT_OFFERED.into(),
                    })
                });
            }
        }
        t
    }
}

/// What a trapping helper says.
const NOT_OFFERED: &str = "helper not offered to this program type";

/// A random program for `t`: context loads, helper calls, and a return value
/// built from constants, masks and shifts, helper results or pointers.
pub fn gen(r: &mut Rng, t: &Target) -> Vec<Insn> {
    let ctx_len = t.ctx_len() as i16;
    let mut body: Vec<Vec<Insn>> = Vec::new();
    let n = 3 + r.below(10) as usize;
    for _ in 0..n * 3 {
        let b = match r.below(15) {
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
            11..=13 => pkt_block(r, t),
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

/// Loads the packet pointers (usually the right way, sometimes narrow,
/// sign-extended or from a neighbouring field), checks a length against the
/// end and reads or writes the packet.
fn pkt_block(r: &mut Rng, t: &Target) -> Vec<Insn> {
    let Some((data, end, meta, wide)) = pkt_fields(t.prog_type) else {
        return vec![ins(0xb7, 0, 0, 0, 0)];
    };
    let good = if wide { 0x79u8 } else { 0x61 };
    let load = |r: &mut Rng| {
        if r.below(4) == 0 {
            r.pick(&[0x61u8, 0x69, 0x71, 0x79, 0x81, 0x89, 0x91])
        } else {
            good
        }
    };
    let field = |r: &mut Rng, f: i16| {
        if r.below(6) == 0 {
            f + r.pick(&[-4i16, -2, 2, 4, 8])
        } else {
            f
        }
    };
    let base = match (meta, r.below(4)) {
        (Some(m), 0) => m,
        _ => data,
    };
    let len = r.pick(&[1i32, 2, 4, 8, 14, 20]);
    let (l1, f1) = (load(r), field(r, base));
    let (l2, f2) = (load(r), field(r, if base == data { end } else { data }));
    let access = if r.below(3) == 0 {
        ins(0x73, 2, 0, r.pick(&[0i16, 1, 3]), 0)
    } else {
        ins(r.pick(&[0x71u8, 0x69, 0x61]), 0, 2, 0, 0)
    };
    vec![
        ins(l1, 2, 6, f1, 0),
        ins(l2, 3, 6, f2, 0),
        ins(0xbf, 4, 2, 0, 0),
        ins(0x07, 4, 0, 0, len),
        ins(r.pick(&[0x2du8, 0x3d, 0xad]), 4, 3, 1, 0),
        access,
        ins(0xb7, 0, 0, 0, 0),
    ]
}

fn accepts(p: &[Insn], t: &Target) -> bool {
    verify(p, &|_| None, &t.opts()).is_ok()
}

/// Runs an accepted program on random contexts, packets and helper results;
/// returns the escape, if any.
pub fn run_checked(p: &[Insn], t: &Target, buf: &mut Buf, r: &mut Rng) -> Option<String> {
    let range = retval_range(t.prog_type, t.attach);
    for _ in 0..4 {
        let table = Arc::new(t.helper_table(r.next_u64()));
        let vp = match VmProgram::new(p, &LoadOptions::new(table)) {
            Ok(vp) => vp,
            Err(e) => return Some(format!("not runnable as this type: {e}")),
        };
        let len = r.pick(&[0usize, 1, 7, 14, 20, 60]).min(PKT_MAX);
        let (ctx, pkt, keys) = (buf.addr(0), buf.addr(PKT_AT), buf.addr(KEYS_AT));
        let b = buf.bytes();
        for x in b[..CTX_MAX].iter_mut() {
            *x = r.next_u64() as u8;
        }
        for x in b[PKT_AT..PKT_AT + PKT_MAX].iter_mut() {
            *x = r.next_u64() as u8;
        }
        if let Some((data, end, meta, wide)) = pkt_fields(t.prog_type) {
            let mut put = |off: i16, v: u64| {
                let o = off as usize;
                if wide {
                    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
                } else {
                    b[o..o + 4].copy_from_slice(&(v as u32).to_le_bytes());
                }
            };
            put(data, pkt);
            put(end, pkt + len as u64);
            if let Some(m) = meta {
                put(m, pkt);
            }
            if t.prog_type == BPF_PROG_TYPE_FLOW_DISSECTOR {
                b[144..152].copy_from_slice(&keys.to_le_bytes());
            }
        }
        let opts = RunOptions::new()
            .context(ctx, t.ctx_len() as u64, true)
            .packet(pkt, pkt + len as u64)
            .region(Region::new(
                keys,
                FLOW_KEYS_SIZE as u64,
                true,
                RegionKind::Mem,
            ))
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
            Err(VmError::Helper {
                pc,
                id,
                source: HelperError::InvalidArgument { reason },
            }) if reason == NOT_OFFERED => {
                return Some(format!(
                    "insn {pc}: called helper {id}, which the type is not offered"
                ))
            }
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
pub fn progtype_round(r: &mut Rng, buf: &mut Buf, report: &mut ProgTypeReport) {
    let t = Target::pick(r);
    let mut p = gen(r, &t);
    for _ in 0..4 {
        report.tried += 1;
        if accepts(&p, &t) {
            report.accepted += 1;
            if let Some(e) = run_checked(&p, &t, buf, r) {
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
