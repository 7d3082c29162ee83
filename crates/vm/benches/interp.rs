//! bpfvm's interpreter against rbpf's, on the same bytecode in the same run.
//!
//! `cargo bench -p bpfvm-vm --bench interp` prints, per program (prime and arith;
//! memsum for memory accesses, where checked mode pays; moves and chain to separate
//! dispatch cost from dependency chains), the instructions one run executes, ns per
//! executed instruction for bpfvm (unchecked and checked mode) and rbpf's
//! interpreter, and the ratio (rbpf time / bpfvm time). Each figure is
//! the best single run over interleaved rounds, since the machine is shared. Set
//! BPFVM_BENCH_MS to change the time spent per engine and program (default 1000 ms)
//! and BPFVM_BENCH_FILTER to run only the programs whose name contains it.

use bpfvm_isa::asm::assemble;
use bpfvm_isa::insns_to_bytes;
use bpfvm_vm::{LoadOptions, Region, RegionKind, RunOptions, VmProgram};
mod common;

use common::{best_run, ARITH, MEMSUM, PRIME};
use std::time::Duration;

const ROUNDS: u32 = 8;

/// Independent moves: dispatch cost alone.
const MOVES: &str = "
    mov %r1, 0
loop:
    mov %r2, 1
    mov %r3, 2
    mov %r4, 3
    mov %r5, 4
    mov %r6, 5
    mov %r7, 6
    add %r1, 1
    jlt %r1, 1000000, loop
    exit
";

/// A dependent chain of adds on one register (an ALU run).
const CHAIN: &str = "
    mov %r1, 0
    mov %r0, 0
loop:
    add %r0, 1
    add %r0, 2
    add %r0, 3
    add %r0, 4
    add %r0, 5
    add %r0, 6
    add %r1, 1
    jlt %r1, 1000000, loop
    exit
";

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary
    // without it, as a quick check that the engines agree.
    let bench = std::env::args().any(|a| a == "--bench");
    let ms = std::env::var("BPFVM_BENCH_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if bench { 1000 } else { 1 });
    let budget = Duration::from_millis(ms);
    if !bench {
        println!("quick check (not a measurement; run `cargo bench` for numbers)");
    }
    println!(
        "{:<8} {:>10} {:>12} {:>12} {:>12} {:>9} {:>9}",
        "program", "insns/run", "bpfvm ns/i", "checked ns/i", "rbpf ns/i", "x unchk", "x chk"
    );
    let programs = [
        ("prime", PRIME),
        ("arith", ARITH),
        ("memsum", MEMSUM),
        ("moves", MOVES),
        ("chain", CHAIN),
    ];
    // BPFVM_BENCH_FILTER=name runs only the programs whose name contains it.
    let filter = std::env::var("BPFVM_BENCH_FILTER").unwrap_or_default();
    for (name, src) in programs {
        if !name.contains(filter.as_str()) {
            continue;
        }
        let insns = assemble(src).expect("benchmark program assembles");
        let prog = VmProgram::new(&insns, &LoadOptions::default()).expect("loads");
        // Every program gets r1 = a 4096-byte buffer (only memsum reads it).
        let mut mem: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
        let executed = prog.run_with_memory(&mut mem).expect("runs").executed;
        let (p, len) = (mem.as_mut_ptr() as u64, mem.len() as u64);
        let opts = || {
            RunOptions::new()
                .args([p, len, 0, 0, 0])
                .region(Region::new(p, len, true, RegionKind::Mem))
        };

        let bytes = insns_to_bytes(&insns);
        let rb = rbpf::EbpfVmRaw::new(Some(&bytes)).expect("rbpf loads");
        let mut rb_mem = mem.clone();
        let mut engines: [&mut dyn FnMut() -> u64; 3] = [
            // SAFETY: the programs read only the buffer, which outlives the runs.
            &mut || unsafe { prog.run_unchecked(opts()).expect("runs").r0 },
            &mut || prog.run(opts()).expect("runs").r0,
            &mut || rb.execute_program(&mut rb_mem).expect("rbpf runs"),
        ];
        // Rounds interleave the engines so that a burst of load hits all of them.
        let mut best = [f64::MAX; 3];
        let mut r0 = [0u64; 3];
        for _ in 0..ROUNDS {
            for (k, f) in engines.iter_mut().enumerate() {
                let (t, r) = best_run(budget / ROUNDS, *f);
                best[k] = best[k].min(t);
                r0[k] = r;
            }
        }
        assert!(
            r0.iter().all(|r| *r == r0[2]),
            "{name}: engines disagree on r0: {r0:?}"
        );
        let [u, c, r] = best.map(|t| t / executed as f64);
        println!(
            "{name:<8} {executed:>10} {u:>12.3} {c:>12.3} {r:>12.3} {:>9.1} {:>9.1}",
            r / u,
            r / c
        );
    }
}
