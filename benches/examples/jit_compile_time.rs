//! Times bpfvm's JIT compile of every compute program: the first compile in the
//! process and the median of later ones, per program, with the allocations the
//! first one made. `COLD=1` evicts the caches (a 64 MiB write) before each
//! later compile.
//!
//! `cargo run --release -p bpfvm-bench --example jit_compile_time -- [FILTER] [REPS]`
use bpfvm::vm::{JitOptions, LoadOptions, VmProgram};
use bpfvm_bench::programs::{Kind, PROGRAMS};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(l.size(), Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(n, Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}
#[global_allocator]
static A: Counting = Counting;

fn main() {
    let filter = std::env::args().nth(1);
    let reps: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    for p in PROGRAMS.iter() {
        if p.kind != Kind::Compute || filter.as_deref().is_some_and(|f| !p.name.contains(f)) {
            continue;
        }
        let insns = p.insns().unwrap();
        let vm = VmProgram::new(&insns, &LoadOptions::default()).unwrap();
        // SAFETY: only compiled, never run.
        let opts = unsafe { JitOptions::unchecked() }.metering(false);
        let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
        let t = Instant::now();
        let j = vm.jit(&opts).unwrap();
        let first = t.elapsed().as_nanos();
        let (a1, b1) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
        print!("allocs {:>4} bytes {:>7} ", a1 - a0, b1 - b0);
        drop(j);
        let mut trash = vec![0u8; 64 << 20];
        let cold = std::env::var_os("COLD").is_some();
        let mut v: Vec<u128> = (0..reps)
            .map(|i| {
                if cold {
                    for k in (0..trash.len()).step_by(64) {
                        trash[k] = trash[k].wrapping_add(i as u8);
                    }
                    std::hint::black_box(&trash);
                }
                let t = Instant::now();
                let j = vm.jit(&opts).unwrap();
                let ns = t.elapsed().as_nanos();
                drop(j);
                ns
            })
            .collect();
        v.sort();
        println!(
            "{:<20} {:>5} insns first {:>8.2} µs median {:>8.2} µs  per1k(first) {:>8.1} µs",
            p.name,
            insns.len(),
            first as f64 / 1e3,
            v[v.len() / 2] as f64 / 1e3,
            first as f64 / insns.len() as f64
        );
    }
}
