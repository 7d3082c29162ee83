//! `native` and `native-novec`: the programs' C sources compiled by build.rs
//! with clang-19 -O2 (with and without the auto-vectorizers) and called
//! directly. The packet programs get a context with real pointers and C
//! stand-ins for their maps (see the sources).

use crate::engine::{Engine, Runner, Skip};
use crate::programs::Input;
use crate::programs::Program;

pub struct Native {
    pub novec: bool,
}

impl Engine for Native {
    fn name(&self) -> &'static str {
        if self.novec {
            "native-novec"
        } else {
            "native"
        }
    }

    fn prepare(&self, prog: &Program, input: &Input) -> Result<Box<dyn Runner>, Skip> {
        imp::prepare(prog, input, self.novec)
    }
}

#[cfg(not(bench_native))]
mod imp {
    use super::*;

    pub fn prepare(_: &Program, _: &Input, _: bool) -> Result<Box<dyn Runner>, Skip> {
        Err(Skip::new(
            "clang-19 was not found when the harness was built (set BPFVM_BENCH_CLANG to another clang)",
        ))
    }
}

#[cfg(bench_native)]
mod imp {
    use super::*;
    use crate::engine::time_loop;
    use crate::programs::Block;

    type ComputeFn = unsafe extern "C" fn(*mut u8, u64) -> u64;
    /// `int f(struct xdp_md *)`, declared with a second, ignored argument.
    type XdpFn = unsafe extern "C" fn(*mut NativeXdp, u64) -> u64;

    /// The native build's `struct xdp_md` (bench.h).
    #[repr(C)]
    pub struct NativeXdp {
        data: *mut u8,
        data_end: *mut u8,
    }

    enum Entry {
        Compute(ComputeFn),
        Xdp(XdpFn),
    }

    /// Declares each program's native and novec builds and maps a BPF
    /// function name to them.
    macro_rules! natives {
        ($(($bpf:literal, $kind:ident, $native:ident, $novec:ident)),* $(,)?) => {
            extern "C" {
                $(
                    fn $native(a: natives!(@arg $kind), b: u64) -> u64;
                    fn $novec(a: natives!(@arg $kind), b: u64) -> u64;
                )*
            }

            fn entry(function: &str, novec: bool) -> Option<Entry> {
                match function {
                    $($bpf => Some(natives!(@entry $kind, if novec { $novec } else { $native })),)*
                    _ => None,
                }
            }
        };
        (@arg Compute) => { *mut u8 };
        (@arg Xdp) => { *mut NativeXdp };
        (@entry Compute, $f:expr) => { Entry::Compute($f) };
        // The XDP functions take one argument; the extra one is ignored (an
        // extra argument register is harmless in the C calling convention).
        (@entry Xdp, $f:expr) => { Entry::Xdp($f) };
    }

    natives! {
        ("bench_prime", Compute, bench_prime_native, bench_prime_novec),
        ("bench_log2_int", Compute, bench_log2_int_native, bench_log2_int_novec),
        ("bench_memcpy", Compute, bench_memcpy_native, bench_memcpy_novec),
        ("bench_strcmp", Compute, bench_strcmp_native, bench_strcmp_novec),
        ("bench_switch", Compute, bench_switch_native, bench_switch_novec),
        ("bench_switch64", Compute, bench_switch64_native, bench_switch64_novec),
        ("bench_straight", Compute, bench_straight_native, bench_straight_novec),
        ("bench_collatz", Compute, bench_collatz_native, bench_collatz_novec),
        ("bench_const64", Compute, bench_const64_native, bench_const64_novec),
        ("bench_divconst", Compute, bench_divconst_native, bench_divconst_novec),
        ("bench_calls", Compute, bench_calls_native, bench_calls_novec),
        ("bench_spill", Compute, bench_spill_native, bench_spill_novec),
        ("xdp_count", Xdp, xdp_count_native, xdp_count_novec),
        ("xdp_parse", Xdp, xdp_parse_native, xdp_parse_novec),
        ("xdp_printk", Xdp, xdp_printk_native, xdp_printk_novec),
        ("hashmap", Xdp, hashmap_native, hashmap_novec),
        ("lru", Xdp, lru_native, lru_novec),
        ("percpu", Xdp, percpu_native, percpu_novec),
        ("lpm", Xdp, lpm_native, lpm_novec),
    }

    extern "C" {
        fn hashmap_update_native(key: u32, value: u64) -> i32;
        fn hashmap_update_novec(key: u32, value: u64) -> i32;
        fn lru_update_native(key: *const u8, value: *const u8) -> i32;
        fn lru_update_novec(key: *const u8, value: *const u8) -> i32;
        fn lpm_update_native(key: *const u8, value: *const u8) -> i32;
        fn lpm_update_novec(key: *const u8, value: *const u8) -> i32;
    }

    /// Puts one map entry into the program's C stand-in.
    fn update(function: &str, novec: bool, key: &[u8], value: &[u8]) -> Result<(), Skip> {
        let bytes_fn = match (function, novec) {
            ("lru", false) => Some(lru_update_native as unsafe extern "C" fn(_, _) -> i32),
            ("lru", true) => Some(lru_update_novec as unsafe extern "C" fn(_, _) -> i32),
            ("lpm", false) => Some(lpm_update_native as unsafe extern "C" fn(_, _) -> i32),
            ("lpm", true) => Some(lpm_update_novec as unsafe extern "C" fn(_, _) -> i32),
            _ => None,
        };
        let rc = if let Some(f) = bytes_fn {
            // SAFETY: the stand-ins read a key and a value of the map's sizes,
            // which the harness's entries have.
            unsafe { f(key.as_ptr(), value.as_ptr()) }
        } else if function == "hashmap" {
            let (Ok(k), Ok(v)) = (<[u8; 4]>::try_from(key), <[u8; 8]>::try_from(value)) else {
                return Err(Skip::new(
                    "the native stand-in takes u32 keys and u64 values",
                ));
            };
            let f = if novec {
                hashmap_update_novec
            } else {
                hashmap_update_native
            };
            // SAFETY: plain C function over a static table.
            unsafe { f(u32::from_le_bytes(k), u64::from_le_bytes(v)) }
        } else {
            return Err(Skip::new("no native stand-in for this program's map"));
        };
        if rc != 0 {
            return Err(Skip::new("the native stand-in is full"));
        }
        Ok(())
    }

    pub fn prepare(prog: &Program, input: &Input, novec: bool) -> Result<Box<dyn Runner>, Skip> {
        let e = entry(prog.function, novec)
            .ok_or_else(|| Skip::new("no native build of this program"))?;
        for (map, key, value) in &input.map_entries {
            update(prog.function, novec, key, value)
                .map_err(|s| Skip::new(format!("map {map}: {}", s.reason)))?;
        }
        Ok(Box::new(NativeRunner {
            entry: e,
            block: Block::new(&input.data),
        }))
    }

    struct NativeRunner {
        entry: Entry,
        block: Block,
    }

    impl Runner for NativeRunner {
        fn run(&mut self, iters: u64) -> Result<(u64, f64), Skip> {
            let ptr = self.block.payload_ptr();
            let len = self.block.payload_len();
            match self.entry {
                Entry::Compute(f) => time_loop(iters, || {
                    // SAFETY: the function reads and writes only mem[..len].
                    Ok(unsafe { f(std::hint::black_box(ptr), len as u64) })
                }),
                Entry::Xdp(f) => {
                    let mut ctx = NativeXdp {
                        data: ptr,
                        // SAFETY: one past the end of the frame.
                        data_end: unsafe { ptr.add(len) },
                    };
                    time_loop(iters, || {
                        // SAFETY: ctx points at the frame, which the program
                        // reads only after checking data_end.
                        Ok(unsafe { f(std::hint::black_box(&mut ctx), 0) } as u32 as u64)
                    })
                }
            }
        }
    }
}
