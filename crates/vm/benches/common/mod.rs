//! Programs and timing shared by the interpreter and JIT benchmarks.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Counts the primes below 10000 by trial division (`%`) up to the square root.
pub const PRIME: &str = "
    mov %r0, 0
    mov %r1, 2
outer:
    jge %r1, 10000, done
    mov %r2, 2
inner:
    mov %r3, %r2
    mul %r3, %r2
    jgt %r3, %r1, prime
    mov %r4, %r1
    mod %r4, %r2
    jeq %r4, 0, next
    add %r2, 1
    ja inner
prime:
    add %r0, 1
next:
    add %r1, 1
    ja outer
done:
    exit
";

/// A tight arithmetic loop: a multiplicative hash over 0..1_000_000.
pub const ARITH: &str = "
    mov %r0, 0
    mov %r1, 0
loop:
    mul %r0, 31
    add %r0, %r1
    mov %r2, %r0
    rsh %r2, 7
    xor %r0, %r2
    add %r1, 1
    jlt %r1, 1000000, loop
    exit
";

/// Bytes summed by MEMSUM, 4096 of them, 16 times over.
pub const MEMSUM: &str = "
    mov %r0, 0
    mov %r3, 0
outer:
    mov %r2, %r1
    mov %r4, 0
inner:
    ldxb %r5, [%r2]
    add %r0, %r5
    add %r2, 1
    add %r4, 1
    jlt %r4, 4096, inner
    add %r3, 1
    jlt %r3, 16, outer
    exit
";

/// Runs `f` repeatedly for `budget`; returns the best time of one run (the machine
/// is shared, so the minimum is the least disturbed measurement) and r0.
pub fn best_run(budget: Duration, f: &mut dyn FnMut() -> u64) -> (f64, u64) {
    let r0 = f();
    let start = Instant::now();
    let mut best = f64::MAX;
    while start.elapsed() < budget {
        let t = Instant::now();
        black_box(f());
        best = best.min(t.elapsed().as_nanos() as f64);
    }
    (best, r0)
}
