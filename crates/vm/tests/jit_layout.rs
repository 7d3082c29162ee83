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

/// A store of what was just loaded from the same stack bytes is dropped by the
/// JIT; a store a jump lands on, or of another size, is not.
#[test]
fn stores_back_of_loaded_stack_slots_agree_with_the_interpreter() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let cases: [(&str, [u64; 2]); 4] = [
        (
            "lddw %r3, 0x1111\nstxdw [%r10-8], %r3\nmov %r1, 0x2222\njeq %r2, 0, L\n\
             ldxdw %r1, [%r10-8]\nL:\nstxdw [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit",
            [0x2222, 0x1111],
        ),
        (
            "lddw %r1, -1\nstxdw [%r10-8], %r1\nstw [%r10-8], 5\nldxw %r1, [%r10-8]\n\
             stxdw [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit",
            [5, 5],
        ),
        (
            "lddw %r1, 0x8877665544332211\nstxdw [%r10-16], %r1\nldxw %r4, [%r10-12]\n\
             stxw [%r10-12], %r4\nldxh %r5, [%r10-16]\nstxh [%r10-16], %r5\n\
             ldxdw %r0, [%r10-16]\nexit",
            [0x8877_6655_4433_2211, 0x8877_6655_4433_2211],
        ),
        (
            "stdw [%r10-8], 3\nmov %r3, 0\nL:\nldxdw %r1, [%r10-8]\nstxdw [%r10-8], %r1\n\
             add %r1, 1\nstxdw [%r10-8], %r1\nadd %r3, 1\njlt %r3, 10, L\nldxdw %r0, [%r10-8]\nexit",
            [13, 13],
        ),
    ];
    for (src, want) in cases {
        let insns = assemble(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let p = VmProgram::new(&insns, &LoadOptions::default()).expect("loads");
        // SAFETY: the programs touch only their stack.
        let jits = [
            p.jit(&JitOptions::checked()).expect("compiles"),
            p.jit(&unsafe { JitOptions::unchecked() }.metering(false))
                .expect("compiles"),
        ];
        for (r2, want) in [0u64, 1].into_iter().zip(want) {
            let opts = || RunOptions::new().args([0, r2, 0, 0, 0]);
            assert_eq!(p.run(opts()).expect("runs").r0, want, "{src}");
            for j in &jits {
                assert_eq!(j.run(opts()).expect("runs").r0, want, "{src}");
            }
        }
    }
}
