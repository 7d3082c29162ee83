#![no_main]
use bpfvm_fuzzing::{case_from_bytes, compare, InterpChecked, InterpUnchecked};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(m) = compare(&[&InterpChecked, &InterpUnchecked], &case_from_bytes(data)) {
        panic!("{m}");
    }
});
