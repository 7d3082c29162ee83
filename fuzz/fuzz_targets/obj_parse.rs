#![no_main]
use libfuzzer_sys::fuzz_target;

// Any byte string: Object::parse must return (Ok or a typed error), never panic.
fuzz_target!(|data: &[u8]| drop(bpfvm::Object::parse("fuzz.o", data)));
