//! The daemon's request decoder: framing and JSON decoding never panic, and a
//! frame that decodes is a request that re-encodes to the same request.
#![no_main]
use bpfvm_cli::proto::{decode_request, read_frame, MAX_MESSAGE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = data;
    while let Ok(body) = read_frame(&mut r, MAX_MESSAGE) {
        if let Ok(req) = decode_request(&body) {
            let again = serde_json::to_vec(&req).expect("requests serialise");
            assert_eq!(decode_request(&again).expect("re-decodes"), req);
        }
    }
    let _ = decode_request(data);
});
