//! The verifier's soundness oracle: random and mutated XDP programs over
//! packet, stack, context and a 48-byte global; whatever `verify` accepts is
//! run on the checked interpreter with random packets, context and map
//! values. A memory violation the interpreter reports is a verifier bug.
//!
//! The XDP context is laid out below 4 GiB (MAP_32BIT) so the u32 `data` /
//! `data_end` fields hold real addresses, as the kernel's rewrite makes them.

use bpfvm_isa::Insn;
use bpfvm_verifier::*;
use bpfvm_vm::{HelperTable, LoadOptions, Region, RegionKind, RunOptions, VmError, VmProgram};
use std::sync::Arc;

/// xorshift64*: deterministic, seedable.
pub struct Rng(pub u64);
impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

pub const IMMS: &[i32] = &[
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    12,
    13,
    14,
    15,
    16,
    20,
    24,
    31,
    32,
    63,
    64,
    255,
    256,
    511,
    512,
    -1,
    -4,
    -8,
    -16,
    -512,
    0x7fff_ffff,
    i32::MIN,
];

/// The soundness rounds' verifier budget (the kernel's is 1,000,000): the
/// generated programs need far less, and a mutant that loops for ever would
/// make every round slow.
pub const FUZZ_COMPLEXITY_LIMIT: u64 = 10_000;

pub fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(code, dst, src, off, imm)
}

/// A random straight-line-with-forward-jumps XDP program over packet, stack,
/// context and a 48-byte global (map 3).
pub fn gen(r: &mut Rng) -> Vec<Insn> {
    let p = vec![
        ins(0xbf, 6, 1, 0, 0), // r6 = ctx
        ins(0x61, 2, 1, 0, 0), // r2 = data
        ins(0x61, 3, 1, 4, 0), // r3 = data_end
        ins(0x18, 7, 2, 0, 3), // r7 = &global
        ins(0, 0, 0, 0, 0),
        ins(0xb7, 0, 0, 0, 0),
        ins(0xbf, 4, 2, 0, 0),  // r4 = data
        ins(0xbf, 5, 10, 0, 0), // r5 = fp
        ins(0x07, 5, 0, 0, -64),
        ins(0xbf, 8, 7, 0, 0),  // r8 = &global
        ins(0x61, 9, 6, 12, 0), // r9 = ingress_ifindex
    ];
    let n = 4 + r.below(28) as usize;
    let mut body: Vec<Vec<Insn>> = Vec::new();
    for _ in 0..n * 3 {
        let reg = |r: &mut Rng| r.pick(&[0u8, 1, 2, 3, 4, 5, 7, 8, 9]);
        let base = |r: &mut Rng| r.pick(&[2u8, 4, 5, 7, 8, 10, 10, 6]);
        let size = |r: &mut Rng| r.pick(&[0x00u8, 0x08, 0x10, 0x18]);
        let off = |r: &mut Rng| {
            r.pick(&[
                -16i16, -8, -4, -1, 0, 0, 1, 2, 4, 6, 8, 12, 13, 14, 16, 20, 40, 44, 47,
            ])
        };
        let choice = r.below(24);
        let v = match choice {
            0 | 1 => {
                // ALU with an immediate (64 or 32 bit)
                let op = r.pick(&[
                    0x00u8, 0x10, 0x20, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0x30, 0x90,
                ]);
                let class = r.pick(&[0x07u8, 0x04]);
                let mut imm = r.pick(IMMS);
                if matches!(op, 0x60 | 0x70 | 0xc0) {
                    imm = (imm & 31).abs();
                }
                if matches!(op, 0x30 | 0x90) && imm == 0 {
                    imm = 3;
                }
                vec![ins(op | class, reg(r), 0, 0, imm)]
            }
            2 | 3 => {
                // ALU between registers, often pointer arithmetic
                let op = r.pick(&[0x00u8, 0x10, 0xb0, 0x50, 0x20, 0x70, 0x30, 0x90]);
                let class = r.pick(&[0x0fu8, 0x0f, 0x0c]);
                vec![ins(
                    op | class,
                    reg(r),
                    r.pick(&[0u8, 1, 2, 3, 4, 5, 7, 8, 9, 10]),
                    0,
                    0,
                )]
            }
            4 | 5 => {
                // load
                let sz = size(r);
                vec![ins(0x61 | sz, reg(r), base(r), off(r), 0)]
            }
            6 => {
                // store register
                vec![ins(0x63 | size(r), base(r), reg(r), off(r), 0)]
            }
            7 => vec![ins(0x62 | size(r), base(r), 0, off(r), r.pick(IMMS))],
            8 | 9 => {
                // forward conditional jump on a scalar or on packet pointers
                let op = r.pick(&[
                    0x10u8, 0x20, 0x30, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0, 0x40,
                ]);
                let fwd = 1 + r.below(4) as i16;
                if r.below(2) == 0 {
                    vec![ins(op | 0x05, reg(r), 0, fwd, r.pick(IMMS))]
                } else {
                    vec![ins(op | r.pick(&[0x0du8, 0x0e]), reg(r), reg(r), fwd, 0)]
                }
            }
            10 | 11 => {
                // the bounds-check idiom with a random length
                let len = r.pick(&[1i32, 2, 4, 8, 13, 14, 16, 20, 34]);
                let t = r.pick(&[4u8, 5, 8]);
                vec![
                    ins(0xbf, t, 2, 0, 0),
                    ins(0x07, t, 0, 0, len),
                    ins(
                        r.pick(&[0x2du8, 0x3d, 0xad, 0xbd]),
                        t,
                        3,
                        2 + r.below(3) as i16,
                        0,
                    ),
                ]
            }
            12 => {
                // masked variable offset added to a pointer
                let t = r.pick(&[2u8, 4, 7, 10]);
                let t = if t == 10 { 5 } else { t };
                vec![
                    ins(0x61, 9, 6, 12, 0),
                    ins(0x57, 9, 0, 0, r.pick(&[1, 3, 7, 15, 31, 255, 0xffff])),
                    ins(0x0f, t, 9, 0, 0),
                ]
            }
            13 => vec![
                ins(0xbf, reg(r), 10, 0, 0),
                ins(0x07, reg(r), 0, 0, r.pick(&[-8, -16, -512, -520, 0, 8])),
            ],
            14 => vec![ins(0x61, reg(r), 6, r.pick(&[0i16, 4, 8, 12, 16, 20]), 0)],
            15 if r.below(2) == 0 => {
                // A bounded loop walking the packet (a back-edge: exercises
                // checkpoints, loop-head pruning and liveness).
                let k = r.pick(&[2i32, 5, 16, 40]);
                vec![
                    ins(0xb7, 5, 0, 0, 0),
                    ins(0xbf, 4, 2, 0, 0),
                    ins(0x0f, 4, 5, 0, 0),
                    ins(0x07, 4, 0, 0, 1),
                    ins(0x2d, 4, 3, 3, 0),
                    ins(0x71, 0, 4, -1, 0),
                    ins(0x07, 5, 0, 0, 1),
                    ins(0xa5, 5, 0, -7, k),
                ]
            }
            // The kernel-rule patterns below come from escapes found against
            // the kernel's selftests; the kernel-verdict oracle judges them.
            16 => {
                // scalar -= pointer, pointer -= scalar, fp -= anything
                let p = r.pick(&[2u8, 5, 6, 7, 10]);
                let t = r.pick(&[0u8, 4, 8, 9]);
                match r.below(3) {
                    0 => vec![
                        ins(0xb7, t, 0, 0, r.pick(IMMS)),
                        ins(0x1f, t, p, 0, 0),
                        ins(0x71, 0, t, 0, 0),
                    ],
                    1 => vec![
                        ins(0xbf, 5, 10, 0, 0),
                        ins(0x1f, 5, t, 0, 0),
                        ins(0x71, 0, 5, -8, 0),
                    ],
                    _ => vec![
                        ins(0xbf, t, p, 0, 0),
                        ins(0x17, t, 0, 0, r.pick(&[-8, -1, 0, 1, 8, 16])),
                        ins(0x71, 0, t, 0, 0),
                    ],
                }
            }
            17 => {
                // a spilled pointer read back in part, or spilled in part
                let p = r.pick(&[2u8, 5, 6, 7, 10]);
                let sz = r.pick(&[0x00u8, 0x08, 0x10]);
                if r.below(2) == 0 {
                    vec![
                        ins(0x7b, 10, p, -24, 0),
                        ins(0x61 | sz, reg(r), 10, r.pick(&[-24i16, -20, -23, -18]), 0),
                    ]
                } else {
                    vec![ins(0x63 | sz, 10, p, -24, 0)]
                }
            }
            18 => {
                // one load instruction dereferencing the context on one path
                // and the stack on another
                let y = r.pick(&[0u8, 9]);
                let t = r.pick(&[4u8, 8]);
                vec![
                    ins(0x55, y, 0, 2, r.pick(&[0, 1])),
                    ins(0x7b, 10, 6, -32, 0),
                    ins(0x05, 0, 0, 1, 0),
                    ins(0x7b, 10, 5, -32, 0),
                    ins(0x79, t, 10, -32, 0),
                    ins(0x61, 0, t, r.pick(&[0i16, 8, 12]), 0),
                ]
            }
            19 => {
                // atomics at unaligned offsets of the global and the stack
                let (b, o) = r.pick(&[
                    (7u8, 0i16),
                    (7, 3),
                    (7, 4),
                    (7, 2),
                    (10, -8),
                    (10, -12),
                    (10, -6),
                ]);
                let sz = r.pick(&[0x00u8, 0x18]);
                vec![
                    ins(0x7a, 10, 0, -8, 0),
                    ins(0x7a, 10, 0, -16, 0),
                    ins(
                        0xc3 | sz,
                        b,
                        0,
                        o,
                        r.pick(&[0x00, 0x40, 0x50, 0xa0, 0x01, 0xe1]),
                    ),
                ]
            }
            20 => {
                // a pointer compared with 0: only map values are known non-NULL
                let p = r.pick(&[2u8, 5, 6, 7, 10]);
                vec![
                    ins(r.pick(&[0x15u8, 0x55, 0x16, 0x56]), p, 0, 1, 0),
                    ins(0x71, 0, r.pick(&[9u8, 3]), 0, 0),
                ]
            }
            21 => {
                // A loop bounded by a compare and by may_goto, whose counter
                // then indexes the stack (masked or not): the counter must stay
                // precise through the may_goto convergence and widening.
                let k = r.pick(&[3i32, 8, 40, 64, 65, 100]);
                let mut v = vec![
                    ins(0xb7, 5, 0, 0, 0),
                    ins(0xe5, 0, 0, 2, 0), // may_goto +2
                    ins(0x07, 5, 0, 0, 1),
                    ins(0xa5, 5, 0, -3, k), // if r5 < k goto the may_goto
                ];
                if r.below(2) == 0 {
                    v.push(ins(0x57, 5, 0, 0, r.pick(&[7, 63, 127])));
                }
                v.extend([
                    ins(0xbf, 4, 10, 0, 0),
                    ins(0x07, 4, 0, 0, -64),
                    ins(0x0f, 4, 5, 0, 0),
                    ins(0x71, 0, 4, 0, 0),
                ]);
                if r.below(2) == 0 {
                    // forward may_goto around the access
                    v.insert(v.len() - 1, ins(0xe5, 0, 0, 1, 0));
                }
                v
            }
            22 => {
                // load-acquire / store-release of any size at (un)aligned
                // offsets of the global, the stack and the packet
                let (b, o) = r.pick(&[
                    (7u8, 0i16),
                    (7, 3),
                    (7, 4),
                    (7, 44),
                    (7, 47),
                    (10, -8),
                    (10, -12),
                    (10, -6),
                    (2, 0),
                    (6, 0),
                ]);
                let code = r.pick(&[0xd3u8, 0xcb, 0xc3, 0xdb]);
                let mut v = vec![ins(0x7a, 10, 0, -8, 0), ins(0x7a, 10, 0, -16, 0)];
                if r.below(2) == 0 {
                    v.push(ins(code, reg(r), b, o, 0x100));
                } else {
                    v.push(ins(code, b, reg(r), o, 0x110));
                }
                v
            }
            _ => vec![ins(0xbf, reg(r), r.pick(&[2u8, 3, 6, 7, 10]), 0, 0)],
        };
        body.push(v);
    }
    let mut out = p;
    let mut kept = 0;
    for b in body {
        if kept >= n {
            break;
        }
        // Keep a block only if the program with it still verifies, so the
        // programs that reach the interpreter are long and varied.
        let mut t = out.clone();
        t.extend(b);
        finish(&mut t);
        if filter(&t) {
            t.truncate(t.len() - 2);
            out = t;
            kept += 1;
        }
    }
    finish(&mut out);
    out
}

/// The generator keeps what the verifier accepts.
pub fn filter(p: &[Insn]) -> bool {
    let maps = [global_map()];
    let opts = VerifierOpts {
        prog_type: BPF_PROG_TYPE_XDP,
        complexity_limit: FUZZ_COMPLEXITY_LIMIT,
        ..Default::default()
    };
    verify(p, &|id| maps.iter().find(|m| m.id == id).cloned(), &opts).is_ok()
}

/// Appends `r0 = 0; exit` and clamps forward jumps that run past it.
pub fn finish(p: &mut Vec<Insn>) {
    p.push(ins(0xb7, 0, 0, 0, 0));
    p.push(ins(0x95, 0, 0, 0, 0));
    let last = p.len() - 2;
    for (i, x) in p.iter_mut().enumerate() {
        let c = x.code;
        if matches!(c & 0x07, 0x05 | 0x06) && c & 0xf0 != 0x80 && c & 0xf0 != 0x90 {
            let t = i as i64 + 1 + x.off as i64;
            if t > last as i64 {
                x.off = (last - i - 1) as i16;
            }
        }
    }
}

pub fn mutate(r: &mut Rng, p: &mut [Insn]) {
    let i = r.below(p.len() as u64) as usize;
    if p[i].code == 0 || p[i].code == 0x18 {
        return;
    }
    // Mostly a field the opcode uses, so the mutant is still a well-formed
    // instruction and reaches the verifier's semantic checks; sometimes any
    // field, for the encoding checks ("uses reserved fields").
    let fields = if r.below(4) == 0 {
        &[0u8, 1, 2, 3][..]
    } else {
        used_fields(&p[i])
    };
    if fields.is_empty() {
        return;
    }
    match r.pick(fields) {
        0 => p[i].off = p[i].off.wrapping_add(r.pick(&[-8i16, -4, -1, 1, 4, 8])),
        1 => p[i].imm = r.pick(IMMS),
        2 => p[i].dst_reg = r.below(10) as u8,
        _ => p[i].src_reg = r.below(11) as u8,
    }
}

/// The fields [`mutate`] may change without making `insn` malformed: 0 off,
/// 1 imm, 2 dst, 3 src.
fn used_fields(insn: &Insn) -> &'static [u8] {
    let code = insn.code;
    let x = code & 0x08 != 0;
    match code & 0x07 {
        // ALU, ALU64: neg and byte swaps have only a destination; sdiv/smod
        // and movsx use `off` as part of the opcode.
        0x04 | 0x07 => match code & 0xf0 {
            0x80 | 0xd0 => &[2],
            _ if x => &[2, 3],
            _ => &[2, 1],
        },
        // LDX
        0x01 => &[2, 3, 0],
        // ST
        0x02 => &[2, 0, 1],
        // STX: atomics keep their operation in imm.
        0x03 => &[2, 3, 0],
        // JMP, JMP32: ja, call and exit are left alone.
        0x05 | 0x06 => match code & 0xf0 {
            0x00 | 0x80 | 0x90 | 0xe0 => &[],
            _ if x => &[2, 3, 0],
            _ => &[2, 1, 0],
        },
        _ => &[],
    }
}

/// 64 KiB below 4 GiB: context, packet and the global value.
pub struct Mem {
    base: *mut u8,
}

impl Mem {
    pub fn new() -> Mem {
        // SAFETY: anonymous private mapping; checked for failure.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                1 << 16,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
                -1,
                0,
            )
        };
        assert!(p != libc::MAP_FAILED, "mmap MAP_32BIT failed");
        Mem { base: p as *mut u8 }
    }
}

impl Default for Mem {
    fn default() -> Self {
        Mem::new()
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `new`.
        unsafe { libc::munmap(self.base as *mut libc::c_void, 1 << 16) };
    }
}

/// Runs a verified program on random inputs; returns the violation, if any.
pub fn run_checked(prog: &[Insn], mem: &Mem, r: &mut Rng) -> Option<String> {
    let mut vm_insns = prog.to_vec();
    let global = mem.base as u64 + 4096;
    for i in 0..vm_insns.len() {
        if vm_insns[i].code == 0x18 && vm_insns[i].src_reg == 2 {
            let addr = global + vm_insns[i + 1].imm as u32 as u64;
            vm_insns[i].src_reg = 0;
            vm_insns[i].imm = addr as u32 as i32;
            vm_insns[i + 1].imm = (addr >> 32) as i32;
        }
    }
    let vp = VmProgram::new(&vm_insns, &LoadOptions::new(Arc::new(HelperTable::new()))).ok()?;
    for _ in 0..4 {
        let ctx = mem.base as u64;
        let pkt = ctx + 256;
        let len = r.pick(&[0u64, 1, 7, 13, 14, 15, 20, 34, 60, 100]);
        // SAFETY: offsets stay inside the 64 KiB mapping.
        unsafe {
            for k in 0..200 {
                *mem.base.add(256 + k) = r.next_u64() as u8;
            }
            for k in 0..48 {
                *mem.base.add(4096 + k) = r.next_u64() as u8;
            }
            let c = mem.base as *mut u32;
            *c = pkt as u32;
            *c.add(1) = (pkt + len) as u32;
            *c.add(2) = pkt as u32;
            *c.add(3) = r.next_u64() as u32;
            *c.add(4) = r.next_u64() as u32;
            *c.add(5) = r.next_u64() as u32;
        }
        let opts = RunOptions::new()
            .context(ctx, 24, false)
            .region(Region::new(pkt, len, true, RegionKind::Packet))
            .region(Region::new(global, 48, true, RegionKind::MapValue));
        let opts = RunOptions {
            fuel: Some(100_000),
            ..opts
        };
        match vp.run(opts) {
            Err(e @ VmError::MemoryViolation { .. })
            | Err(e @ VmError::MisalignedAtomic { .. }) => return Some(e.to_string()),
            _ => {}
        }
    }
    None
}

/// The global (map id 3) every generated program may use.
pub fn global_map() -> MapDesc {
    MapDesc {
        id: 3,
        map_type: BPF_MAP_TYPE_ARRAY,
        key_size: 4,
        value_size: 48,
        max_entries: 1,
        name: "global".into(),
        ..Default::default()
    }
}

/// What one soundness round saw.
#[derive(Debug, Default)]
pub struct SoundnessReport {
    pub tried: u64,
    pub accepted: u64,
    /// The violation and the program, per escape.
    pub escapes: Vec<String>,
    /// Refusal reasons with digits removed, counted.
    pub reasons: std::collections::HashMap<String, u32>,
}

/// What the kernel-verdict oracle saw: programs bpfvm accepts that the host
/// kernel refuses are escapes of the kernel's rules even when they do not
/// fault (pointer arithmetic policy, spill sizes, mixed pointer types).
#[derive(Debug, Default)]
pub struct VerdictReport {
    pub tried: u64,
    pub accepted: u64,
    /// The kernel's error and the program, per escape.
    pub escapes: Vec<String>,
    /// bpfvm refuses, the kernel accepts.
    pub false_refusals: u64,
    /// bpfvm refused as too complex for the fuzzing budget: not sent to the
    /// kernel.
    pub too_complex: u64,
}

/// One generated program and three mutations, each judged by bpfvm and by
/// the host kernel (privileged XDP).
pub fn verdict_round(r: &mut Rng, kernel: &crate::KernelVerifier, report: &mut VerdictReport) {
    let maps = [global_map()];
    let lookup = |id: u32| maps.iter().find(|m| m.id == id).cloned();
    let opts = VerifierOpts {
        prog_type: BPF_PROG_TYPE_XDP,
        // As in the soundness rounds: a mutant loop that does not converge
        // is refused early (the kernel's verdict on it then counts as a
        // false refusal, not an escape).
        complexity_limit: FUZZ_COMPLEXITY_LIMIT,
        ..Default::default()
    };
    let mut p = gen(r);
    for _ in 0..4 {
        report.tried += 1;
        let ours = verify(&p, &lookup, &opts);
        // A mutant loop bpfvm gave up on (its budget here is small) would
        // cost the kernel up to a million instructions, for no escape.
        if matches!(&ours, Err(e) if matches!(e.error, VerifierError::TooComplex { .. })) {
            report.too_complex += 1;
            mutate(r, &mut p);
            continue;
        }
        let theirs = kernel.verdict(&p, 0);
        match (ours, theirs) {
            (Ok(_), Err(e)) => {
                report.accepted += 1;
                report.escapes.push(format!(
                    "kernel refuses: {e}\n{}",
                    bpfvm_isa::asm::disassemble_conformance(&p)
                ));
            }
            (Ok(_), Ok(())) => report.accepted += 1,
            (Err(_), Ok(())) => report.false_refusals += 1,
            (Err(_), Err(_)) => {}
        }
        mutate(r, &mut p);
    }
}

/// Mutation chains per generated program in [`soundness_round`].
pub const SOUNDNESS_CHAINS: usize = 4;
/// Programs per chain: the chain's start and its successive mutations.
pub const SOUNDNESS_CHAIN_LEN: usize = 4;

/// One generated program and [`SOUNDNESS_CHAINS`] chains of mutations of it
/// ([`SOUNDNESS_CHAIN_LEN`] programs each, the first chain starting with the
/// program itself): each is verified and, if accepted, run in the checked
/// interpreter. Generating costs dozens of verifications (each kept block is
/// verified), so several chains share one generated program.
pub fn soundness_round(r: &mut Rng, mem: &Mem, report: &mut SoundnessReport) {
    let maps = [global_map()];
    let lookup = |id: u32| maps.iter().find(|m| m.id == id).cloned();
    let opts = VerifierOpts {
        prog_type: BPF_PROG_TYPE_XDP,
        // A mutated loop that never converges (a pointer moving on each
        // may_goto iteration) would cost a million instructions: refused early.
        complexity_limit: FUZZ_COMPLEXITY_LIMIT,
        ..Default::default()
    };
    let unpriv = VerifierOpts {
        privileged: false,
        ..opts.clone()
    };
    let base = gen(r);
    for chain in 0..SOUNDNESS_CHAINS {
        let mut p = base.clone();
        if chain > 0 {
            mutate(r, &mut p);
        }
        for i in 0..SOUNDNESS_CHAIN_LEN {
            report.tried += 1;
            // Every other program under the unprivileged rules (sanitation,
            // pointer comparisons, no scalar spills).
            let o = if (i + chain) % 2 == 1 { &unpriv } else { &opts };
            match verify(&p, &lookup, o) {
                Err(e) => {
                    let key: String = e
                        .error
                        .reason()
                        .chars()
                        .filter(|c| !c.is_ascii_digit())
                        .collect();
                    *report.reasons.entry(key).or_default() += 1;
                }
                Ok(_) => {
                    report.accepted += 1;
                    if let Some(e) = run_checked(&p, mem, r) {
                        report.escapes.push(format!(
                            "{e}\n{}",
                            bpfvm_isa::asm::disassemble_conformance(&p)
                        ));
                    }
                }
            }
            mutate(r, &mut p);
        }
    }
}
