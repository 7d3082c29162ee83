//! What one `JitProgram::run` of a compute program costs beyond its code:
//! times `r0 = 0; exit` and a program of the suite, run after run, in thread
//! CPU time (the machine is shared): ns per run, median of 7 batches; then
//! the same runs inside one `run_repeat` call (the code and its entry only),
//! and an indirect call of an empty function for the floor.
//!
//! `cargo run --release -p bpfvm-bench --example run_overhead -- [PROGRAM]`
use bpfvm::vm::{JitOptions, LoadOptions, RunOptions, VmProgram};
use bpfvm_bench::programs::{Block, Scale, PROGRAMS};

fn cpu_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn time(name: &str, vm: &VmProgram, ptr: u64, len: u64) {
    // SAFETY: the programs touch only their block (the bench checks them).
    let jit = vm
        .jit(&unsafe { JitOptions::unchecked() }.metering(false))
        .unwrap();
    let run = || {
        jit.run(RunOptions::new().args([ptr, len, 0, 0, 0]))
            .unwrap()
            .r0
    };
    let mut n = 1u64;
    loop {
        let t = cpu_ns();
        for _ in 0..n {
            std::hint::black_box(run());
        }
        if cpu_ns() - t > 20_000_000 {
            break;
        }
        n *= 2;
    }
    let mut v: Vec<f64> = (0..7)
        .map(|_| {
            let t = cpu_ns();
            for _ in 0..n {
                std::hint::black_box(run());
            }
            (cpu_ns() - t) as f64 / n as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    println!(
        "{name}: {:.1} ns/run (spread {:.1} .. {:.1})",
        v[3], v[0], v[6]
    );
    // The same runs inside one call (run_repeat): the code and its entry only.
    let t = cpu_ns();
    let reps = 1_000_000u32;
    for _ in 0..20 {
        std::hint::black_box(
            jit.run_repeat(
                RunOptions::new().args([ptr, len, 0, 0, 0]),
                reps / 20,
                |_| {},
            )
            .unwrap(),
        );
    }
    println!(
        "{name}: {:.1} ns/run in run_repeat",
        (cpu_ns() - t) as f64 / reps as f64
    );
}

#[inline(never)]
extern "C" fn trivial(args: *const [u64; 5]) -> u64 {
    // SAFETY: a valid pointer.
    unsafe { (*args)[0] }
}

fn floor() {
    let f: extern "C" fn(*const [u64; 5]) -> u64 = std::hint::black_box(trivial);
    let n = 10_000_000u64;
    let t = cpu_ns();
    for i in 0..n {
        let a = [i, 0, 0, 0, 0];
        std::hint::black_box(f(std::hint::black_box(&a)));
    }
    println!(
        "an indirect call: {:.1} ns",
        (cpu_ns() - t) as f64 / n as f64
    );
}

fn main() {
    floor();
    let name = std::env::args().nth(1).unwrap_or("straight/v2".into());
    let empty = bpfvm_isa::asm::assemble("mov %r0, 0\nexit").unwrap();
    let vm = VmProgram::new(&empty, &LoadOptions::default()).unwrap();
    time("r0 = 0; exit", &vm, 0, 0);
    let p = PROGRAMS
        .iter()
        .find(|p| p.name == name)
        .expect("no such program");
    let input = p.input(Scale::Full);
    let mut block = Block::new(&input.data);
    let vm = VmProgram::new(&p.insns().unwrap(), &LoadOptions::default()).unwrap();
    time(
        &name,
        &vm,
        block.payload_ptr() as u64,
        block.payload_len() as u64,
    );
}
