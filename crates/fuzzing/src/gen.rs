//! Random valid programs, built from the opcode table.
//!
//! What makes a generated program valid, and safe in unchecked mode:
//! - r1 (the memory block) and r10 (the frame pointer) are never written, so every
//!   memory access is `[r1 + off]` with `0 <= off <= MEM_LEN - size` or
//!   `[r10 + off]` with `-STACK_WINDOW <= off <= -size`, both in bounds, and the
//!   stack window is written by the prologue before the body reads it;
//! - every register is written before the program starts (a prologue), so no read
//!   is of an uninitialised register;
//! - jumps go forward, except for counted loops the generator shapes itself (a
//!   loop register counts down from a small constant), and fuel bounds everything;
//! - the last instruction is `exit`.

use bpfvm_isa::{encode, Decoded, Insn, Op, Shape, OPS};

/// Size of the memory block generated programs get in r1.
pub const MEM_LEN: usize = 64;
/// Bytes below r10 generated programs use (initialised by the prologue).
pub const STACK_WINDOW: usize = 64;

/// A program and its input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub insns: Vec<Insn>,
    pub mem: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Instructions in the body (before the prologue and the final exit).
    pub body_len: usize,
    /// Allow atomics on the stack and the memory block.
    pub atomics: bool,
    /// Allow counted backward loops.
    pub loops: bool,
    /// Keep to what the kernel's verifier accepts on its own terms: shift amounts in
    /// range, atomics only on the stack (it refuses atomics on a context).
    pub kernel_friendly: bool,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            body_len: 40,
            atomics: true,
            loops: true,
            kernel_friendly: false,
        }
    }
}

/// A small deterministic generator (SplitMix64), seeded by a number or by bytes.
pub struct Gen {
    state: u64,
    bytes: Vec<u8>,
    pos: usize,
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen {
            state: seed,
            bytes: Vec::new(),
            pos: 0,
        }
    }

    /// Draws from the fuzzer's bytes first, so mutations of the input steer the
    /// program; falls back to the PRNG when they run out.
    pub fn from_bytes(data: &[u8]) -> Gen {
        let mut seed = 0xcbf2_9ce4_8422_2325u64;
        for b in data.iter().take(8) {
            seed = (seed ^ *b as u64).wrapping_mul(0x100_0000_01b3);
        }
        Gen {
            state: seed,
            bytes: data.to_vec(),
            pos: 0,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        if self.pos + 8 <= self.bytes.len() {
            let v = u64::from_le_bytes(
                self.bytes[self.pos..self.pos + 8]
                    .try_into()
                    .expect("8 bytes"),
            );
            self.pos += 8;
            return v;
        }
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    /// An "interesting" immediate: edges of the ranges and small values, often.
    fn imm(&mut self) -> i64 {
        match self.below(6) {
            0 => self.pick(&[
                0,
                1,
                -1,
                2,
                31,
                32,
                63,
                64,
                i32::MIN as i64,
                i32::MAX as i64,
            ]),
            1 => self.below(16) as i64,
            _ => self.next_u64() as i32 as i64,
        }
    }

    /// Registers the body may write: never r1 (memory) or r10 (frame).
    fn wreg(&mut self) -> u8 {
        self.pick(&[0, 2, 3, 4, 5, 6, 7, 8, 9])
    }

    fn rreg(&mut self) -> u8 {
        self.pick(&[0, 2, 3, 4, 5, 6, 7, 8, 9])
    }

    /// One generated program and its memory.
    pub fn case(&mut self, cfg: &GenConfig) -> Case {
        let mut body: Vec<Decoded> = Vec::new();
        // Prologue: every register the body may read gets a value.
        for r in [0u8, 2, 3, 4, 5, 6, 7, 8, 9] {
            let v = self.next_u64() as i64;
            body.push(Decoded {
                op: Op::LdImm64,
                dst: r,
                src: 0,
                off: 0,
                imm: v,
            });
        }
        // The stack window the body uses starts initialised: reading uninitialised
        // stack is undefined (the kernel's stack holds garbage, ours zeroes).
        for slot in 1..=(STACK_WINDOW / 8) as i16 {
            let v = self.imm();
            body.push(Decoded {
                op: Op::StDw,
                dst: 10,
                src: 0,
                off: -8 * slot,
                imm: v,
            });
        }
        let start = body.len();
        let rows: Vec<&'static bpfvm_isa::OpInfo> = OPS
            .iter()
            .filter(|r| match r.shape {
                Shape::AluK | Shape::AluX | Shape::Neg | Shape::End | Shape::MovSx => true,
                Shape::JmpK | Shape::JmpX | Shape::Ja | Shape::MayGoto => true,
                Shape::Ldx | Shape::St | Shape::Stx => true,
                Shape::Atomic | Shape::LoadAcq | Shape::StoreRel => cfg.atomics,
                // The kernel refuses it without an arena map.
                Shape::AsCast => !cfg.kernel_friendly,
                _ => false,
            })
            .collect();
        while body.len() - start < cfg.body_len {
            let row = self.pick(&rows);
            let remaining = (cfg.body_len - (body.len() - start)) as i64;
            let d = self.insn(row, remaining, cfg.kernel_friendly);
            body.push(d);
            if cfg.loops && self.below(24) == 0 && remaining > 4 {
                self.counted_loop(&mut body);
            }
        }
        // Fold r0 to 32 bits (r0 ^= r0 >> 32; w0 = w0), so engines that report a
        // 32-bit return value (the kernel's test run) compare on the same terms.
        let fold = [
            (Op::Mov64X, 3, 0),
            (Op::Rsh64K, 3, 32),
            (Op::Xor64X, 0, 3),
            (Op::Mov32X, 0, 0),
        ];
        for (op, dst, x) in fold {
            let (src, imm) = if op.shape() == Shape::AluK {
                (0, x as i64)
            } else {
                (x, 0)
            };
            body.push(Decoded {
                op,
                dst,
                src,
                off: 0,
                imm,
            });
        }
        body.push(Decoded {
            op: Op::Exit,
            dst: 0,
            src: 0,
            off: 0,
            imm: 0,
        });
        let insns: Vec<Insn> = body.iter().flat_map(encode).collect();
        let mem = (0..MEM_LEN).map(|_| self.next_u64() as u8).collect();
        Case { insns, mem }
    }

    /// `rX = n; loop: <a few ALU ops>; rX -= 1; if rX != 0 goto loop`.
    fn counted_loop(&mut self, body: &mut Vec<Decoded>) {
        let counter = self.wreg();
        let n = 1 + self.below(8) as i64;
        body.push(Decoded {
            op: Op::Mov64K,
            dst: counter,
            src: 0,
            off: 0,
            imm: n,
        });
        let inner = 1 + self.below(3) as usize;
        // Sometimes the loop is also bounded by may_goto, which leaves it
        // (never, at 8M iterations) past the backward jump.
        let may_goto = self.below(3) == 0;
        if may_goto {
            body.push(Decoded {
                op: Op::MayGoto,
                dst: 0,
                src: 0,
                off: inner as i16 + 2,
                imm: 0,
            });
        }
        let inner = inner + may_goto as usize;
        for _ in 0..inner - may_goto as usize {
            let mut dst = self.wreg();
            while dst == counter {
                dst = self.wreg();
            }
            let op = self.pick(&[Op::Add64X, Op::Xor64X, Op::Mul64K, Op::Lsh32K, Op::Sub32X]);
            let src = self.rreg();
            let imm = if op.shape() == Shape::AluK {
                self.below(31) as i64
            } else {
                0
            };
            body.push(Decoded {
                op,
                dst,
                src: if op.shape() == Shape::AluX { src } else { 0 },
                off: 0,
                imm,
            });
        }
        body.push(Decoded {
            op: Op::Sub64K,
            dst: counter,
            src: 0,
            off: 0,
            imm: 1,
        });
        body.push(Decoded {
            op: Op::JneK,
            dst: counter,
            src: 0,
            off: -(inner as i16 + 2),
            imm: 0,
        });
    }

    fn insn(&mut self, row: &bpfvm_isa::OpInfo, remaining: i64, kernel_friendly: bool) -> Decoded {
        let mut d = Decoded {
            op: row.op,
            dst: self.wreg(),
            src: 0,
            off: 0,
            imm: 0,
        };
        let size = row.op.mem_size() as i64;
        match row.shape {
            Shape::AluK => {
                d.imm = self.imm();
                let shift = matches!(row.op.info().sym, "<<=" | ">>=" | "s>>=");
                if kernel_friendly && shift {
                    d.imm &= if row.op.is_32bit() { 31 } else { 63 };
                }
            }
            Shape::AluX => d.src = self.rreg(),
            Shape::MovSx => d.src = self.rreg(),
            Shape::Neg | Shape::End => {}
            Shape::JmpK | Shape::JmpX | Shape::Ja | Shape::MayGoto => {
                // Forward only, within the body (the final exit is a valid target).
                d.off = self.below(remaining.clamp(1, 16) as u64) as i16;
                if row.shape == Shape::JmpK {
                    d.imm = self.imm();
                } else if row.shape == Shape::JmpX {
                    d.src = self.rreg();
                } else {
                    d.dst = 0;
                }
            }
            Shape::AsCast => d.src = self.rreg(),
            Shape::LoadAcq => {
                let (mut base, mut off) = self.mem_operand(size);
                // The kernel refuses atomics on a context (r1 of its syscall programs).
                if kernel_friendly && base == 1 {
                    base = 10;
                    off = -(size as i16)
                        * (1 + self.below((STACK_WINDOW as i64 / size) as u64) as i16);
                }
                d.src = base;
                d.off = off;
            }
            Shape::StoreRel => {
                let (mut base, mut off) = self.mem_operand(size);
                if kernel_friendly && base == 1 {
                    base = 10;
                    off = -(size as i16)
                        * (1 + self.below((STACK_WINDOW as i64 / size) as u64) as i16);
                }
                d.dst = base;
                d.off = off;
                d.src = self.rreg();
            }
            Shape::Ldx => {
                let (base, off) = self.mem_operand(size);
                d.src = base;
                d.off = off;
            }
            Shape::St | Shape::Stx | Shape::Atomic => {
                let (mut base, mut off) = self.mem_operand(size);
                if kernel_friendly && row.shape == Shape::Atomic && base == 1 {
                    base = 10;
                    off = -(size as i16)
                        * (1 + self.below((STACK_WINDOW as i64 / size) as u64) as i16);
                }
                d.dst = base;
                d.off = off;
                if row.shape == Shape::St {
                    d.imm = self.imm();
                } else {
                    d.src = self.rreg();
                }
            }
            _ => {}
        }
        // Discriminators come from the row.
        match row.disc {
            bpfvm_isa::Disc::Off(o) => d.off = o,
            bpfvm_isa::Disc::Imm(v) => d.imm = v as i64,
            bpfvm_isa::Disc::Src(s) => d.src = s,
            bpfvm_isa::Disc::None => {}
        }
        if row.shape == Shape::AsCast {
            d.imm = self.pick(&[1, 1 << 16]);
        }
        d
    }

    /// A base register and an aligned offset that keep `size` bytes in bounds.
    fn mem_operand(&mut self, size: i64) -> (u8, i16) {
        if self.below(2) == 0 {
            let slots = (MEM_LEN as i64) / size;
            (1, (self.below(slots as u64) as i64 * size) as i16)
        } else {
            let slots = STACK_WINDOW as i64 / size;
            (10, (-(1 + self.below(slots as u64) as i64) * size) as i16)
        }
    }
}
