//! The JIT against the interpreter and rbpf (interpreter and JIT), on the same
//! bytecode in the same run, plus the JIT's compile time.
//!
//! `cargo bench -p bpfvm-vm --bench jit` prints, per program (prime: the primes
//! below 10000 by trial division; arith: a tight arithmetic loop; memsum: byte
//! loads from a buffer, where checked mode pays), ns per run for each engine and
//! the ratios interpreter / JIT and rbpf JIT / bpfvm JIT; then the JIT's compile
//! time per 1,000 instructions. Each figure is the best single run over
//! interleaved rounds (the machine is shared). BPFVM_BENCH_MS sets the time per
//! engine and program (default 1000 ms).

use bpfvm_isa::asm::assemble;
use bpfvm_isa::insns_to_bytes;
use bpfvm_vm::{JitOptions, LoadOptions, Region, RegionKind, RunOptions, VmProgram};
mod common;

use common::{best_run, ARITH, MEMSUM, PRIME};
use std::time::Duration;

const ROUNDS: u32 = 6;

/// A straight-line mix of ALU, memory (through r1 and r10) and jump instructions,
/// `n` long; compiled only.
fn mixed_program(n: usize) -> String {
    let mut s = String::from("mov %r0, 0\nmov %r2, 3\n");
    for k in 0..n.saturating_sub(4) {
        s.push_str(match k % 8 {
            0 => "add %r0, 7\n",
            1 => "mul %r0, %r2\n",
            2 => "stxdw [%r1+8], %r0\n",
            3 => "ldxdw %r3, [%r10-8]\n",
            4 => "div %r0, %r2\n",
            5 => "jgt %r3, 100, +0\n",
            6 => "lsh %r3, %r2\n",
            _ => "xor %r0, %r3\n",
        });
    }
    s.push_str("exit\n");
    s
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let ms = std::env::var("BPFVM_BENCH_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if bench { 1000 } else { 1 });
    let budget = Duration::from_millis(ms);
    if !bench {
        println!("quick check (not a measurement; run `cargo bench` for numbers)");
    }
    let names = [
        "interp",
        "interp chk",
        "jit",
        "jit chk",
        "jit nometer",
        "rbpf interp",
        "rbpf jit",
    ];
    print!("{:<8}", "ns/run");
    for n in names {
        print!(" {n:>12}");
    }
    println!(" {:>10} {:>10}", "interp/jit", "rbpfjit/jit");
    for (name, src) in [("prime", PRIME), ("arith", ARITH), ("memsum", MEMSUM)] {
        let insns = assemble(src).expect("benchmark program assembles");
        let prog = VmProgram::new(&insns, &LoadOptions::default()).expect("loads");
        let mut mem: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
        let (p, len) = (mem.as_mut_ptr() as u64, mem.len() as u64);
        let opts = || {
            RunOptions::new()
                .args([p, len, 0, 0, 0])
                .region(Region::new(p, len, true, RegionKind::Mem))
        };
        // SAFETY: the programs read only the buffer, which outlives the runs.
        let jit = prog.jit(&unsafe { JitOptions::unchecked() }).expect("jit");
        let jit_chk = prog.jit(&JitOptions::checked()).expect("jit");
        // SAFETY: as above.
        let jit_nometer = prog
            .jit(&unsafe { JitOptions::unchecked() }.metering(false))
            .expect("jit");
        let bytes = insns_to_bytes(&insns);
        let rb = rbpf::EbpfVmRaw::new(Some(&bytes)).expect("rbpf loads");
        let mut rbj = rbpf::EbpfVmRaw::new(Some(&bytes)).expect("rbpf loads");
        rbj.jit_compile().expect("rbpf jit compiles");
        let mut rb_mem = mem.clone();
        let mut rbj_mem = mem.clone();
        let mut engines: [&mut dyn FnMut() -> u64; 7] = [
            // SAFETY: as above.
            &mut || unsafe { prog.run_unchecked(opts()).expect("runs").r0 },
            &mut || prog.run(opts()).expect("runs").r0,
            &mut || jit.run(opts()).expect("runs").r0,
            &mut || jit_chk.run(opts()).expect("runs").r0,
            &mut || jit_nometer.run(opts()).expect("runs").r0,
            &mut || rb.execute_program(&mut rb_mem).expect("rbpf runs"),
            // SAFETY: rbpf's JIT code touches only the buffer it is given.
            &mut || unsafe {
                rbj.execute_program_jit(&mut rbj_mem)
                    .expect("rbpf jit runs")
            },
        ];
        let mut best = [f64::MAX; 7];
        let mut r0 = [0u64; 7];
        for _ in 0..ROUNDS {
            for (k, f) in engines.iter_mut().enumerate() {
                let (t, r) = best_run(budget / ROUNDS, *f);
                best[k] = best[k].min(t);
                r0[k] = r;
            }
        }
        assert!(
            r0.iter().all(|r| *r == r0[0]),
            "{name}: engines disagree on r0: {r0:?}"
        );
        print!("{name:<8}");
        for b in best {
            print!(" {b:>12.0}");
        }
        println!(" {:>10.1} {:>10.2}", best[0] / best[2], best[6] / best[2]);
    }

    // Compile time per 1,000 instructions.
    let insns = assemble(&mixed_program(1000)).expect("assembles");
    let prog = VmProgram::new(&insns, &LoadOptions::default()).expect("loads");
    for (label, opts) in [
        ("checked", JitOptions::checked()),
        // SAFETY: compiled only, never run.
        ("unchecked", unsafe { JitOptions::unchecked() }),
    ] {
        let (t, bytes) = best_run(budget / 2, &mut || {
            prog.jit(&opts).expect("jit").bytes_jited() as u64
        });
        println!(
            "compile {label}: {:.3} ms per 1000 instructions ({} insns, {bytes} bytes of x86)",
            t / 1e6 * 1000.0 / insns.len() as f64,
            insns.len()
        );
    }
}
