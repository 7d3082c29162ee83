//! Property tests of the wire protocol: decoding arbitrary bytes never panics,
//! and every request survives framing and decoding unchanged.

use bpfvm_cli::proto::{self, Command, Format, Request, Target};
use proptest::prelude::*;

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        any::<u32>().prop_map(Target::Id),
        "[a-z_.]{0,20}".prop_map(Target::Name),
        "[0-9a-f]{16}".prop_map(Target::Tag),
        "(/[a-z0-9_]{1,8}){1,4}".prop_map(Target::Pinned),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Ping),
        proptest::option::of(target()).prop_map(|target| Command::ProgShow { target }),
        (target(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(target, opcodes, linum, visual)| {
                Command::ProgDumpXlated {
                    target,
                    opcodes,
                    linum,
                    visual,
                }
            }
        ),
        (
            target(),
            proptest::collection::vec(any::<u8>(), 0..64),
            any::<u32>(),
            any::<bool>()
        )
            .prop_map(|(target, d, repeat, coverage)| {
                Command::ProgRun {
                    target,
                    data_in_hex: proto::to_hex(&d),
                    ctx_in_hex: None,
                    repeat,
                    coverage,
                    timeout_ms: (repeat % 3 == 0).then_some(repeat as u64),
                }
            }),
        (target(), proptest::collection::vec("[ -~]{0,6}", 0..8)).prop_map(|(target, args)| {
            Command::MapOp {
                op: "lookup".into(),
                target,
                args,
            }
        }),
        any::<u64>().prop_map(|wait_ms| Command::TraceRead { wait_ms }),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut r = &data[..];
        while let Ok(body) = proto::read_frame(&mut r, 256) {
            let _ = proto::decode_request(&body);
        }
        let _ = proto::decode_request(&data);
        let _ = proto::decode_response(&data);
    }

    #[test]
    fn json_shaped_garbage_is_an_error_not_a_panic(version in any::<i64>(), cmd in "[a-z_]{0,12}", extra in "[ -~]{0,40}") {
        let body = format!("{{\"version\":{version},\"cmd\":\"{cmd}\",{extra}}}");
        let _ = proto::decode_request(body.as_bytes());
    }

    #[test]
    fn requests_round_trip(cmd in command(), pretty in any::<bool>(), cut in any::<usize>()) {
        let req = Request::new(if pretty { Format::Pretty } else { Format::Plain }, cmd);
        let body = serde_json::to_vec(&req).unwrap();
        let mut framed = Vec::new();
        proto::write_frame(&mut framed, &body).unwrap();
        let got = proto::read_frame(&mut &framed[..], proto::MAX_MESSAGE).unwrap();
        prop_assert_eq!(proto::decode_request(&got).unwrap(), req);
        // Any strict prefix of a frame is a clean error.
        let cut = cut % framed.len();
        let r = proto::read_frame(&mut &framed[..cut], proto::MAX_MESSAGE);
        prop_assert!(r.is_err());
    }
}
