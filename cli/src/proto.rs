//! The daemon's wire protocol (version [`PROTO_VERSION`]).
//!
//! Every message, in both directions, is one frame: a 4-byte big-endian length
//! followed by that many bytes of UTF-8 JSON. Lengths above [`MAX_MESSAGE`] are
//! refused before anything is allocated. A request is a JSON object with a
//! `version` field (must equal [`PROTO_VERSION`]), a `cmd` field naming the command
//! (`prog_load`, `map_dump`, ...) and the command's fields; the reply is a
//! [`Response`]. Bytes (object files, packets) travel as lowercase hex strings.
//! A connection may carry any number of request/reply pairs; the daemon closes it
//! after a framing error (oversized or truncated frame), since it cannot find the
//! next frame boundary, and keeps it after a well-framed bad request.

use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use thiserror::Error;

/// The protocol version this build speaks.
pub const PROTO_VERSION: u32 = 1;
/// Largest frame accepted (an object file, hex-encoded, must fit).
pub const MAX_MESSAGE: usize = 64 << 20;

/// Errors of framing and decoding.
#[derive(Debug, Error)]
pub enum ProtoError {
    #[error("connection error")]
    Io(#[source] std::io::Error),
    #[error("message of {len} bytes is larger than the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("message truncated: expected {expected} bytes, got {got}")]
    Truncated { expected: usize, got: usize },
    #[error("connection closed")]
    Closed,
    #[error("message is not valid JSON: {reason}")]
    BadJson { reason: String },
    #[error("message has no numeric 'version' field")]
    NoVersion,
    #[error("protocol version {got} is not supported (this build speaks version {PROTO_VERSION})")]
    Version { got: u64 },
    #[error("bad request: {reason}")]
    BadRequest { reason: String },
}

/// Output format the client asked for (`-j`, `-p`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Plain,
    Json,
    Pretty,
}

impl Format {
    pub fn is_json(self) -> bool {
        self != Format::Plain
    }
}

/// `PROG` / `MAP`: how bpftool names an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Id(u32),
    Name(String),
    Tag(String),
    Pinned(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Id(i) => write!(f, "id {i}"),
            Target::Name(n) => write!(f, "name {n}"),
            Target::Tag(t) => write!(f, "tag {t}"),
            Target::Pinned(p) => write!(f, "pinned {p}"),
        }
    }
}

/// A request's command and its arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Is the daemon there (and which version)?
    Ping,
    /// `daemon stop`: save state and exit.
    Shutdown,
    /// `prog load` (first program pinned at `path`) and `prog loadall` (`all`:
    /// every program pinned under the directory `path`).
    ProgLoad {
        /// The path as the user gave it: names the object (global data map prefix).
        file_name: String,
        object_hex: String,
        path: String,
        all: bool,
        prog_type: Option<String>,
        pinmaps: Option<String>,
        /// `BPF_PROG_LOAD`'s `prog_flags` added to every program's.
        #[serde(default)]
        prog_flags: u32,
        /// Verify under the kernel's rules for a loader without CAP_BPF.
        #[serde(default)]
        unprivileged: bool,
        /// A kernel config's text (`CONFIG_*=...` lines) for `.kconfig`
        /// externs, instead of the emulated kernel's.
        #[serde(default)]
        kconfig: Option<String>,
        /// `btf PATH`: the raw BTF (read from a BTF file or an ELF's `.BTF`)
        /// CO-RE relocations are resolved against, instead of the host's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_btf_hex: Option<String>,
    },
    ProgShow {
        target: Option<Target>,
    },
    ProgDumpXlated {
        target: Target,
        opcodes: bool,
        linum: bool,
        visual: bool,
    },
    ProgDumpJited {
        target: Target,
        opcodes: bool,
        linum: bool,
        /// "x86_64" (the code that runs) or "aarch64" (a listing).
        arch: String,
    },
    ProgRun {
        target: Target,
        data_in_hex: String,
        ctx_in_hex: Option<String>,
        repeat: u32,
        /// Run on the observed interpreter and reply with instruction and
        /// branch counts (`prog run ... coverage FILE`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        coverage: bool,
        /// Stop the run after this many milliseconds (`timeout MS`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    ProgPin {
        target: Target,
        path: String,
    },
    /// What a client needs to run a program in its own process (`prog debug`,
    /// `profile`, `replay`, `run ... coverage`): the object it was loaded
    /// from, its name there, and the contents of the object's maps.
    ProgFetch {
        target: Target,
    },
    /// Lines written to the trace pipe since the last read (as reading
    /// trace_pipe consumes them), waiting up to `wait_ms` for the first.
    TraceRead {
        wait_ms: u64,
    },
    MapShow {
        target: Option<Target>,
    },
    MapDump {
        target: Target,
    },
    /// `lookup`, `update`, `delete`, `getnext`: the words after MAP, parsed by the
    /// daemon, which knows the key and value sizes (as bpftool parses exactly
    /// key_size bytes).
    MapOp {
        op: String,
        target: Target,
        args: Vec<String>,
    },
    MapCreate {
        path: String,
        map_type: String,
        key: u32,
        value: u32,
        entries: u32,
        name: String,
        flags: u32,
        /// `inner_map MAP`: the template of a map-in-map's inner maps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inner_map: Option<Target>,
    },
    MapPin {
        target: Target,
        path: String,
    },
    MapFreeze {
        target: Target,
    },
    /// `map event_pipe`: open perf events in a perf_event_array (each CPU's
    /// slot, or `index` bound to `cpu`) and take the records written since,
    /// waiting up to `wait_ms` for the first.
    MapEventPipe {
        target: Target,
        cpu: Option<u32>,
        index: Option<u32>,
        wait_ms: u64,
        /// Close the readers instead (the reader exits): their slots are
        /// empty again, as when bpftool's perf events close.
        #[serde(default)]
        close: bool,
    },
    NetAttach {
        target: Target,
        dev: String,
        overwrite: bool,
    },
    NetDetach {
        dev: String,
    },
    NetList {
        dev: Option<String>,
    },
    BtfShow {
        id: Option<u32>,
    },
    /// One of `id`, `prog`, `map`.
    BtfDump {
        id: Option<u32>,
        prog: Option<Target>,
        map: Option<Target>,
        /// `format c`: the types as a C header instead of bpftool's raw listing.
        #[serde(default)]
        c: bool,
        /// `map MAP {key | value | kv | all}`: which of the map's types
        /// (`None`: `kv`, as bpftool).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        map_types: Option<String>,
    },
}

/// A request: the command, the output format, and the protocol version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub version: u32,
    #[serde(default)]
    pub format: Format,
    #[serde(flatten)]
    pub cmd: Command,
}

impl Request {
    pub fn new(format: Format, cmd: Command) -> Request {
        Request {
            version: PROTO_VERSION,
            format,
            cmd,
        }
    }
}

/// An XDP attachment, as `net list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetAttachment {
    pub devname: String,
    pub ifindex: u32,
    pub mode: String,
    pub id: u32,
}

/// Results the daemon returns as data and the client renders (plain text or
/// JSON, bpftool's layouts, in [`crate::render`]): the daemon formats nothing
/// that the client can. Bytes (keys, values, instructions, BTF) travel as hex.
///
/// Version 1 grew these in place of text in [`Response::stdout`]; a client
/// prints both, so it still works with a daemon of this version that answers
/// in text. New kinds are added, never changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Listing {
    /// `prog show|list`; `single`: one program was asked for by name (bpftool
    /// then prints an object, not an array, in JSON).
    Progs {
        single: bool,
        items: Vec<bpfvm::ProgInfo>,
    },
    Maps {
        single: bool,
        items: Vec<bpfvm::MapInfo>,
    },
    Net {
        items: Vec<NetAttachment>,
    },
    /// `map dump`: every entry in `get_next_key` order. `slot_errors`: the
    /// map's slots hold kernel objects and answer lookups with errors, which
    /// bpftool prints per slot (perf event arrays, sockmaps, ...).
    MapDump {
        map: MapLayout,
        entries: Vec<MapEntry>,
        slot_errors: bool,
    },
    /// `map lookup`: the key asked for and its value (`None`: no such entry).
    MapLookup {
        map: MapLayout,
        key_hex: String,
        value_hex: Option<String>,
    },
    /// `map getnext`: the key given (`None`: the first key was asked for) and
    /// the next.
    MapGetNext {
        key_hex: Option<String>,
        next_hex: String,
    },
    /// `map pop|dequeue`: the value taken (`None`: the map was empty).
    MapPop {
        map: MapLayout,
        value_hex: Option<String>,
    },
    /// `prog dump xlated`: every instruction, with its source line and
    /// function signature, where each function starts, and the keywords given
    /// (`visual`: the client draws the control-flow graph).
    Xlated {
        opcodes: bool,
        linum: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        visual: bool,
        #[serde(default)]
        func_starts: Vec<u32>,
        insns: Vec<XlatedInsn>,
    },
    /// `prog dump jited`: per function, native instructions and source lines.
    Jited {
        opcodes: bool,
        linum: bool,
        funcs: Vec<JitedFunc>,
    },
    /// `btf show|list`; `single`: one id was asked for.
    Btfs {
        single: bool,
        items: Vec<BtfItem>,
    },
    /// `btf dump`: the BTF, as the kernel's blob (the client parses and prints
    /// it in the format asked for).
    BtfDump {
        data_hex: String,
        /// Only these types and what they refer to (`btf dump map`: the key
        /// and value types unless `all`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        roots: Option<Vec<u32>>,
        /// `format c`.
        #[serde(default)]
        c: bool,
    },
}

/// What the client needs to print a map's keys and values as bpftool does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapLayout {
    /// `BPF_MAP_TYPE_*` number.
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    /// The map's BTF, when it has a value type: values print formatted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub btf: Option<MapBtf>,
}

/// A map's BTF: the blob and the key and value types in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapBtf {
    pub data_hex: String,
    pub key_type_id: u32,
    pub value_type_id: u32,
}

/// One map entry: the key and the value (per-CPU maps: every CPU's value, each
/// padded to 8 bytes, as `BPF_MAP_LOOKUP_ELEM` returns them), or the errno of
/// the failed lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapEntry {
    pub key_hex: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
}

/// A line of the program's source (BTF line info).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrcLine {
    pub line: String,
    pub file: String,
    pub line_num: u32,
    /// 0: not known.
    pub line_col: u32,
}

/// One translated instruction (two slots for `ld_imm64`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XlatedInsn {
    pub pc: u32,
    /// The C signature of the function starting here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<SrcLine>,
    /// The kernel's disassembly (`(b7) r0 = 0`).
    pub disasm: String,
    /// The instruction's bytes.
    pub bytes_hex: String,
}

/// A function of a JITed program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JitedFunc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    /// `bpf_prog_TAG_NAME`.
    pub label: String,
    pub lines: Vec<JitedLine>,
}

/// A source line, or a native instruction at `offset` in the image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JitedLine {
    Src(SrcLine),
    Insn {
        offset: u64,
        text: String,
        bytes_hex: String,
    },
}

/// A BTF object, as `btf show` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BtfItem {
    pub id: u32,
    pub name: String,
    pub size: u64,
    pub prog_ids: Vec<u32>,
    pub map_ids: Vec<u32>,
}

/// The daemon's answer: `data` (a [`Listing`] the client renders, or the
/// results a command reads itself), `stdout` printed as is (text of older
/// daemons); on failure `error` holds the message (printed as `Error: ...` or
/// `{"error":"..."}`) and `exit` the status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub version: u32,
    pub ok: bool,
    #[serde(default)]
    pub stdout: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub exit: i32,
    /// Structured results (test runs, trace lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// The daemon had no free slot: nothing was done, try again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub busy: bool,
}

impl Response {
    pub fn out(stdout: String) -> Response {
        Response {
            version: PROTO_VERSION,
            ok: true,
            stdout,
            ..Response::default()
        }
    }
    pub fn data(v: serde_json::Value) -> Response {
        Response {
            version: PROTO_VERSION,
            ok: true,
            data: Some(v),
            ..Response::default()
        }
    }
    /// A typed result for the client to render.
    pub fn listing(l: &Listing) -> Response {
        Response::data(serde_json::to_value(l).unwrap_or_default())
    }

    /// A typed result that is also a failure without a message (bpftool's
    /// "Not found" and "empty map": printed on stdout, exit status 254).
    pub fn listing_failed(l: &Listing, exit: i32) -> Response {
        Response {
            ok: false,
            exit,
            ..Response::listing(l)
        }
    }

    /// "Busy": the request was not handled; the client retries.
    pub fn busy(why: &str) -> Response {
        Response {
            busy: true,
            ..Response::err(format!("daemon busy: {why}"))
        }
    }
    pub fn err(msg: impl Into<String>) -> Response {
        Response {
            version: PROTO_VERSION,
            ok: false,
            error: Some(msg.into()),
            exit: 255,
            ..Response::default()
        }
    }
}

/// Reads one frame. `Closed` when the peer closed cleanly before a frame began.
pub fn read_frame(r: &mut impl Read, max: usize) -> Result<Vec<u8>, ProtoError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Err(ProtoError::Closed),
            Ok(0) => return Err(ProtoError::Truncated { expected: 4, got }),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ProtoError::Io(e)),
        }
    }
    let n = u32::from_be_bytes(len) as usize;
    if n > max {
        return Err(ProtoError::TooLarge { len: n, max });
    }
    let mut body = Vec::new();
    let got = r
        .take(n as u64)
        .read_to_end(&mut body)
        .map_err(ProtoError::Io)?;
    if got != n {
        return Err(ProtoError::Truncated { expected: n, got });
    }
    Ok(body)
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, body: &[u8]) -> Result<(), ProtoError> {
    if body.len() > MAX_MESSAGE {
        return Err(ProtoError::TooLarge {
            len: body.len(),
            max: MAX_MESSAGE,
        });
    }
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(body);
    w.write_all(&buf).map_err(ProtoError::Io)?;
    w.flush().map_err(ProtoError::Io)
}

fn check_version(v: &serde_json::Value) -> Result<(), ProtoError> {
    let got = v
        .get("version")
        .and_then(|x| x.as_u64())
        .ok_or(ProtoError::NoVersion)?;
    if got != PROTO_VERSION as u64 {
        return Err(ProtoError::Version { got });
    }
    Ok(())
}

/// Decodes a request body: JSON, then the version, then the command.
pub fn decode_request(body: &[u8]) -> Result<Request, ProtoError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| ProtoError::BadJson {
        reason: e.to_string(),
    })?;
    check_version(&v)?;
    serde_json::from_value(v).map_err(|e| ProtoError::BadRequest {
        reason: e.to_string(),
    })
}

/// Decodes a response body.
pub fn decode_response(body: &[u8]) -> Result<Response, ProtoError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| ProtoError::BadJson {
        reason: e.to_string(),
    })?;
    check_version(&v)?;
    serde_json::from_value(v).map_err(|e| ProtoError::BadRequest {
        reason: e.to_string(),
    })
}

/// Bytes as lowercase hex.
pub fn to_hex(b: &[u8]) -> String {
    hex::encode(b)
}

/// Lowercase or uppercase hex to bytes.
pub fn from_hex(s: &str) -> Result<Vec<u8>, ProtoError> {
    hex::decode(s).map_err(|e| ProtoError::BadRequest {
        reason: match e {
            hex::FromHexError::OddLength => "hex string of odd length".into(),
            hex::FromHexError::InvalidHexCharacter { c, index } => {
                format!("bad hex character {c:?} at offset {index}")
            }
            e => format!("bad hex: {e}"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let r = Request::new(
            Format::Pretty,
            Command::ProgShow {
                target: Some(Target::Name("hello".into())),
            },
        );
        let body = serde_json::to_vec(&r).unwrap();
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(text.contains("\"cmd\":\"prog_show\""), "{text}");
        assert_eq!(decode_request(&body).unwrap(), r);
        let mut framed = Vec::new();
        write_frame(&mut framed, &body).unwrap();
        assert_eq!(read_frame(&mut &framed[..], MAX_MESSAGE).unwrap(), body);
    }

    #[test]
    fn listings_round_trip_as_data() {
        let layout = MapLayout {
            map_type: 1,
            key_size: 4,
            value_size: 8,
            btf: None,
        };
        let src = SrcLine {
            line: "return 0;".into(),
            file: "a.c".into(),
            line_num: 3,
            line_col: 2,
        };
        let all = [
            Listing::MapLookup {
                map: layout.clone(),
                key_hex: "01000000".into(),
                value_hex: None,
            },
            Listing::MapDump {
                map: layout.clone(),
                entries: vec![MapEntry {
                    key_hex: "00".into(),
                    value_hex: None,
                    errno: Some(2),
                }],
                slot_errors: true,
            },
            Listing::MapGetNext {
                key_hex: None,
                next_hex: "00000000".into(),
            },
            Listing::MapPop {
                map: layout,
                value_hex: Some("01".into()),
            },
            Listing::Xlated {
                opcodes: true,
                linum: false,
                visual: true,
                func_starts: vec![0],
                insns: vec![XlatedInsn {
                    pc: 0,
                    proto: Some("int f(void)".into()),
                    src: Some(src.clone()),
                    disasm: "(95) exit".into(),
                    bytes_hex: "9500000000000000".into(),
                }],
            },
            Listing::Jited {
                opcodes: false,
                linum: true,
                funcs: vec![JitedFunc {
                    proto: None,
                    label: "bpf_prog_0_f".into(),
                    lines: vec![
                        JitedLine::Src(src),
                        JitedLine::Insn {
                            offset: 0,
                            text: "ret".into(),
                            bytes_hex: "c3".into(),
                        },
                    ],
                }],
            },
            Listing::Btfs {
                single: false,
                items: vec![BtfItem {
                    id: 1,
                    name: String::new(),
                    size: 10,
                    prog_ids: vec![1],
                    map_ids: vec![],
                }],
            },
            Listing::BtfDump {
                data_hex: "9feb".into(),
                roots: Some(vec![1, 2]),
                c: true,
            },
        ];
        for l in all {
            let r = Response::listing(&l);
            let body = serde_json::to_vec(&r).unwrap();
            let back = decode_response(&body).unwrap();
            let got: Listing = serde_json::from_value(back.data.unwrap()).unwrap();
            assert_eq!(got, l);
        }
    }

    #[test]
    fn versions_and_garbage() {
        assert!(matches!(
            decode_request(br#"{"version":2,"cmd":"ping"}"#),
            Err(ProtoError::Version { got: 2 })
        ));
        assert!(matches!(
            decode_request(br#"{"cmd":"ping"}"#),
            Err(ProtoError::NoVersion)
        ));
        assert!(matches!(
            decode_request(b"\xff\x00"),
            Err(ProtoError::BadJson { .. })
        ));
        assert!(matches!(
            decode_request(br#"{"version":1,"cmd":"nope"}"#),
            Err(ProtoError::BadRequest { .. })
        ));
        let big = (MAX_MESSAGE as u32 + 1).to_be_bytes();
        assert!(matches!(
            read_frame(&mut &big[..], MAX_MESSAGE),
            Err(ProtoError::TooLarge { .. })
        ));
        assert!(matches!(
            read_frame(&mut &[0, 0, 0, 9, b'{'][..], MAX_MESSAGE),
            Err(ProtoError::Truncated {
                expected: 9,
                got: 1
            })
        ));
        assert_eq!(from_hex("00ff").unwrap(), vec![0, 255]);
        assert!(from_hex("0").is_err());
        assert!(from_hex("zz").is_err());
    }
}
