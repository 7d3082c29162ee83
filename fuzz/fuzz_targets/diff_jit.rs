#![no_main]
//! The JIT (checked) against the checked interpreter on programs made from the fuzzer's bytes.
use bpfvm_fuzzing::{case_from_bytes, compare, InterpChecked, JitEngine};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(m) = compare(&[&InterpChecked, &JitEngine], &case_from_bytes(data)) {
        panic!("{m}");
    }
});
