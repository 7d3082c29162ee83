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
            "clang-19 was not found when the harness was built (set BENCH_CLANG to another clang)",
        ))
    }
}

#[cfg(bench_native)]
mod imp {
    use super::*;
    use crate::engine::time_loop;
    use crate::programs::Block;

    type ComputeFn = unsafe extern "C" fn(*mut u8, u64) -> u64;
    type XdpFn = unsafe extern "C" fn(*mut NativeXdp) -> i32;

    /// The native build's `struct xdp_md` (bench.h).
    #[repr(C)]
    pub struct NativeXdp {
        data: *mut u8,
        data_end: *mut u8,
    }

    extern "C" {
        fn bench_prime_native(mem: *mut u8, len: u64) -> u64;
        fn bench_log2_int_native(mem: *mut u8, len: u64) -> u64;
        fn bench_memcpy_native(mem: *mut u8, len: u64) -> u64;
        fn bench_strcmp_native(mem: *mut u8, len: u64) -> u64;
        fn bench_switch_native(mem: *mut u8, len: u64) -> u64;
        fn xdp_count_native(ctx: *mut NativeXdp) -> i32;
        fn hashmap_native(ctx: *mut NativeXdp) -> i32;
        fn hashmap_update_native(key: u32, value: u64) -> i32;
        fn bench_prime_novec(mem: *mut u8, len: u64) -> u64;
        fn bench_log2_int_novec(mem: *mut u8, len: u64) -> u64;
        fn bench_memcpy_novec(mem: *mut u8, len: u64) -> u64;
        fn bench_strcmp_novec(mem: *mut u8, len: u64) -> u64;
        fn bench_switch_novec(mem: *mut u8, len: u64) -> u64;
        fn xdp_count_novec(ctx: *mut NativeXdp) -> i32;
        fn hashmap_novec(ctx: *mut NativeXdp) -> i32;
        fn hashmap_update_novec(key: u32, value: u64) -> i32;
    }

    enum Entry {
        Compute(ComputeFn),
        Xdp(XdpFn),
    }

    fn entry(function: &str, novec: bool) -> Option<Entry> {
        Some(match (function, novec) {
            ("bench_prime", false) => Entry::Compute(bench_prime_native),
            ("bench_prime", true) => Entry::Compute(bench_prime_novec),
            ("bench_log2_int", false) => Entry::Compute(bench_log2_int_native),
            ("bench_log2_int", true) => Entry::Compute(bench_log2_int_novec),
            ("bench_memcpy", false) => Entry::Compute(bench_memcpy_native),
            ("bench_memcpy", true) => Entry::Compute(bench_memcpy_novec),
            ("bench_strcmp", false) => Entry::Compute(bench_strcmp_native),
            ("bench_strcmp", true) => Entry::Compute(bench_strcmp_novec),
            ("bench_switch", false) => Entry::Compute(bench_switch_native),
            ("bench_switch", true) => Entry::Compute(bench_switch_novec),
            ("xdp_count", false) => Entry::Xdp(xdp_count_native),
            ("xdp_count", true) => Entry::Xdp(xdp_count_novec),
            ("hashmap", false) => Entry::Xdp(hashmap_native),
            ("hashmap", true) => Entry::Xdp(hashmap_novec),
            _ => return None,
        })
    }

    pub fn prepare(prog: &Program, input: &Input, novec: bool) -> Result<Box<dyn Runner>, Skip> {
        let e = entry(prog.function, novec)
            .ok_or_else(|| Skip::new("no native build of this program"))?;
        for (map, key, value) in &input.map_entries {
            let (Ok(k), Ok(v)) = (
                <[u8; 4]>::try_from(&key[..]),
                <[u8; 8]>::try_from(&value[..]),
            ) else {
                return Err(Skip::new(format!(
                    "map {map}: the native stand-in takes u32 keys and u64 values"
                )));
            };
            let update = if novec {
                hashmap_update_novec
            } else {
                hashmap_update_native
            };
            // SAFETY: plain C function over a static table.
            if unsafe { update(u32::from_le_bytes(k), u64::from_le_bytes(v)) } != 0 {
                return Err(Skip::new(format!("map {map}: the native stand-in is full")));
            }
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
                        Ok(unsafe { f(std::hint::black_box(&mut ctx)) } as u32 as u64)
                    })
                }
            }
        }
    }
}
