//! Loops whose latch clang-style sits after the exit path (`if c goto latch;
//! ...; latch: ...; goto head`): the JIT without metering copies the latch
//! after the jump (see `codegen::latch_after`). Random programs of that shape,
//! with conditional jumps and if-convertible skips inside the latch, on the
//! interpreter and the JIT, checked and unchecked.

use bpfvm_isa::asm::assemble;
use bpfvm_vm::{JitOptions, LoadOptions, RunOptions, VmProgram};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random ALU instruction on r0..r5 (r6 is the loop counter).
fn op(rng: &mut Rng) -> String {
    const OPS: [&str; 10] = [
        "add", "sub", "xor", "or", "and", "mul", "lsh", "rsh", "arsh", "mov",
    ];
    let o = OPS[rng.below(OPS.len() as u64) as usize];
    let w = if rng.below(3) == 0 { "32" } else { "" };
    let d = rng.below(6);
    if rng.below(2) == 0 {
        let s = rng.below(6);
        match o {
            // Shifts by a register: mask to keep them defined.
            "lsh" | "rsh" | "arsh" => format!("and{w} %r{s}, 31\n{o}{w} %r{d}, %r{s}\n"),
            _ => format!("{o}{w} %r{d}, %r{s}\n"),
        }
    } else {
        let k = match o {
            "lsh" | "rsh" | "arsh" => rng.below(32) as i64,
            "mul" => [3, 5, 9, 7, -1][rng.below(5) as usize],
            _ => rng.next() as i32 as i64,
        };
        format!("{o}{w} %r{d}, {k}\n")
    }
}

fn cond(rng: &mut Rng) -> String {
    const C: [&str; 11] = [
        "jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt", "jsge", "jslt", "jsle", "jset",
    ];
    let c = C[rng.below(C.len() as u64) as usize];
    let w = if rng.below(3) == 0 { "32" } else { "" };
    let d = rng.below(6);
    if rng.below(3) == 0 {
        format!("{c}{w} %r{d}, %r{}", rng.below(6))
    } else {
        format!(
            "{c}{w} %r{d}, {}",
            rng.next() as i32 as i64 >> rng.below(31)
        )
    }
}

fn program(rng: &mut Rng) -> String {
    let mut s = String::new();
    for r in 0..6 {
        s.push_str(&format!("lddw %r{r}, {:#x}\n", rng.next()));
    }
    s.push_str(&format!("mov %r6, {}\nhead:\n", 1 + rng.below(60)));
    for _ in 0..rng.below(3) {
        s.push_str(&op(rng));
    }
    s.push_str("sub %r6, 1\njeq %r6, 0, out\n");
    for _ in 0..rng.below(3) {
        s.push_str(&op(rng));
    }
    s.push_str(&format!("{}, latch\n", cond(rng)));
    for _ in 0..rng.below(4) {
        s.push_str(&op(rng));
    }
    s.push_str(if rng.below(4) == 0 {
        "ja out\n"
    } else {
        "ja head\n"
    });
    s.push_str("latch:\n");
    let n = rng.below(6);
    for k in 0..n {
        match rng.below(4) {
            // A skip of one or two moves (if-convertible) or of any op.
            0 => {
                let skip = 1 + rng.below(2);
                s.push_str(&format!("{}, +{skip}\n", cond(rng)));
                for _ in 0..skip {
                    s.push_str(&format!("mov %r{}, %r{}\n", rng.below(6), rng.below(6)));
                }
            }
            1 if k + 1 < n => s.push_str(&format!("{}, out\n", cond(rng))),
            _ => s.push_str(&op(rng)),
        }
    }
    s.push_str("ja head\nout:\nexit\n");
    s
}

#[test]
fn loops_with_latches_after_their_exit_agree_with_the_interpreter() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let mut rng = Rng(0x5851_f42d_4c95_7f2d);
    for _ in 0..2000 {
        let src = program(&mut rng);
        let insns = assemble(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let p = VmProgram::new(&insns, &LoadOptions::default()).expect("loads");
        let want = p
            .run(RunOptions::new())
            .map(|r| r.r0)
            .map_err(|e| e.to_string());
        let checked = p
            .jit(&JitOptions::checked().metering(false))
            .expect("compiles");
        // SAFETY: the programs touch no memory.
        let fast = p
            .jit(&unsafe { JitOptions::unchecked() }.metering(false))
            .expect("compiles");
        let metered = p.jit(&JitOptions::checked()).expect("compiles");
        for jit in [&checked, &fast, &metered] {
            let got = jit
                .run(RunOptions::new())
                .map(|r| r.r0)
                .map_err(|e| e.to_string());
            assert_eq!(got, want, "\n{src}");
        }
    }
}
