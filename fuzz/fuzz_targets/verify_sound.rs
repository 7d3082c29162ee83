#![no_main]
// The fuzzer's bytes seed the generator: each input is one soundness round
// (a generated XDP program and three mutations, verified, then run checked).
use bpfvm_fuzzing::verifier::{soundness_round, Mem, Rng, SoundnessReport};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for (i, b) in data.iter().enumerate() {
        seed ^= (*b as u64) << ((i % 8) * 8);
        seed = seed.rotate_left(7).wrapping_mul(0x2545_f491_4f6c_dd1d);
    }
    let mem = Mem::new();
    let mut report = SoundnessReport::default();
    soundness_round(&mut Rng(seed | 1), &mem, &mut report);
    if let Some(e) = report.escapes.first() {
        panic!("verifier escape: {e}");
    }
});
