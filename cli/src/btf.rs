//! `bpfvm btf`: list the runtime's BTF objects, dump BTF from a file or by id.

use crate::client::{self, print_error};
use crate::proto::Command;
use crate::{dispatch, Handler, Opts};
use bpfvm::btf::Btf;

const COMMANDS: &[(&str, Handler)] = &[
    ("show", show),
    ("list", show),
    ("help", help),
    ("dump", dump),
];

pub fn main(opts: &Opts, args: &[String]) -> i32 {
    dispatch(opts, "btf", COMMANDS, args, usage)
}

/// The usage text (`help`, and the man page: one source, so they cannot drift).
pub fn usage_text() -> String {
    format!(
        "Usage: bpfvm btf {{ show | list }} [id BTF_ID]
       bpfvm btf dump BTF_SRC [format FORMAT]
       bpfvm btf help

       BTF_SRC := {{ id BTF_ID | prog PROG | map MAP [{{key | value | kv | all}}] | file FILE }}
       FORMAT  := {{ raw | c }}
{}",
        crate::OPTIONS_USAGE
    )
}

pub fn usage() {
    eprintln!("{}", usage_text());
}

fn help(_: &Opts, _: &[String]) -> i32 {
    usage();
    0
}

fn show(opts: &Opts, args: &[String]) -> i32 {
    let id = match (args.first().map(String::as_str), args.get(1)) {
        (None, _) => None,
        (Some("id"), Some(v)) => match v.parse() {
            Ok(n) => Some(n),
            Err(_) => return print_error(opts, &format!("can't parse {v} as ID")),
        },
        _ => return print_error(opts, "expected 'id BTF_ID'"),
    };
    client::run(opts, Command::BtfShow { id })
}

/// `btf dump`'s output format: bpftool's `raw` (the default) or `c`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DumpFormat {
    Raw,
    C,
}

/// Parses the words after the BTF source: `[format FORMAT]` (and, after
/// `map MAP`, bpftool's `key | value | kv | all`, which selects types; the
/// whole BTF is shown).
fn parse_dump_tail(args: &[String], is_map: bool) -> Result<(DumpFormat, Option<String>), String> {
    let mut format = DumpFormat::Raw;
    let mut map_types = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "format" => {
                let v = args
                    .get(i + 1)
                    .ok_or_else(|| "expecting value for 'format' option".to_string())?;
                format = match v.as_str() {
                    "raw" => DumpFormat::Raw,
                    "c" => DumpFormat::C,
                    _ => {
                        return Err(format!(
                            "unrecognized format specifier: '{v}', possible values: raw, c"
                        ))
                    }
                };
                i += 2;
            }
            w @ ("key" | "value" | "kv" | "all") if is_map && i == 0 => {
                map_types = Some(w.to_string());
                i += 1;
            }
            w => return Err(format!("unrecognized option: '{w}'")),
        }
    }
    Ok((format, map_types))
}

fn dump(opts: &Opts, args: &[String]) -> i32 {
    let (src_len, is_map) = match args.first().map(String::as_str) {
        Some("id" | "file") if args.len() >= 2 => (2, false),
        Some(w @ ("prog" | "map")) => {
            let mut i = 1;
            let what = if w == "prog" { "PROG" } else { "MAP" };
            if let Err(e) = crate::parse_target(args, &mut i, what) {
                return print_error(opts, &e);
            }
            (i, w == "map")
        }
        _ => {
            return print_error(
                opts,
                "expected 'id BTF_ID', 'prog PROG', 'map MAP' or 'file FILE'",
            )
        }
    };
    let (format, map_types) = match parse_dump_tail(&args[src_len..], is_map) {
        Ok(f) => f,
        Err(e) => return print_error(opts, &e),
    };
    if format == DumpFormat::C && opts.json {
        return print_error(opts, "JSON output for C-syntax dump is not supported");
    }
    let c = format == DumpFormat::C;
    match args[0].as_str() {
        "file" => {
            let path = &args[1];
            let btf = match btf_from_file(path) {
                Ok(b) => b,
                Err(e) => return print_error(opts, &e),
            };
            match crate::render::btf_dump_as(&btf, client::format_of(opts), None, c) {
                Ok(text) => {
                    print!("{text}");
                    0
                }
                Err(e) => print_error(opts, &format!("{path}: {e}")),
            }
        }
        "id" => match args[1].parse() {
            Ok(id) => client::run(
                opts,
                Command::BtfDump {
                    id: Some(id),
                    prog: None,
                    map: None,
                    c,
                    map_types: None,
                },
            ),
            Err(_) => print_error(opts, &format!("can't parse {} as ID", args[1])),
        },
        w => {
            let mut i = 1;
            let what = if w == "prog" { "PROG" } else { "MAP" };
            let t = match crate::parse_target(args, &mut i, what) {
                Ok(t) => t,
                Err(e) => return print_error(opts, &e),
            };
            let (prog, map) = if w == "prog" {
                (Some(t), None)
            } else {
                (None, Some(t))
            };
            client::run(
                opts,
                Command::BtfDump {
                    id: None,
                    prog,
                    map,
                    c,
                    map_types,
                },
            )
        }
    }
}

/// The CO-RE target BTF of `prog load|loadall|verify ... btf PATH`: a raw
/// BTF file (`/sys/kernel/btf/vmlinux` or a copy) or an ELF file's `.BTF`
/// (a BPF object or a vmlinux image), checked to parse. Returns the raw
/// bytes and the parsed types; errors name the file.
pub fn target_btf(path: &str) -> Result<(Vec<u8>, Btf), String> {
    let data =
        crate::safefs::read_input_capped(std::path::Path::new(path), crate::safefs::MAX_INPUT)
            .map_err(|e| format!("failed to read btf {}", crate::render::error_chain(&e)))?;
    let raw = if data.starts_with(b"\x7fELF") {
        bpfvm::Object::section_data(path, &data, ".BTF")
            .map_err(|e| format!("btf {}", crate::render::error_chain(&e)))?
            .ok_or_else(|| format!("btf {path}: no .BTF section"))?
            .to_vec()
    } else {
        data
    };
    let btf = Btf::parse(&raw)
        .map_err(|e| format!("btf {path}: not BTF: {}", crate::render::error_chain(&e)))?;
    Ok((raw, btf))
}

/// The `.BTF` section of an ELF object as written (no fix-ups: `btf dump file`
/// shows what the compiler emitted), or a raw BTF file. Errors begin as
/// bpftool's (`failed to load BTF from FILE: `) and say why.
pub fn btf_from_file(path: &str) -> Result<Btf, String> {
    let fail = |why: String| format!("failed to load BTF from {path}: {why}");
    let data =
        crate::safefs::read_input_capped(std::path::Path::new(path), crate::safefs::MAX_INPUT)
            .map_err(|e| match e {
                crate::safefs::SafeFsError::Io { source, .. } => fail(source.to_string()),
                e => fail(crate::render::error_chain(&e)),
            })?;
    let raw = if data.starts_with(b"\x7fELF") {
        bpfvm::Object::section_data(path, &data, ".BTF")
            .map_err(|e| fail(crate::render::error_chain(&e)))?
            .ok_or_else(|| fail("no .BTF section".into()))?
    } else {
        &data[..]
    };
    Btf::parse(raw).map_err(|e| fail(crate::render::error_chain(&e)))
}
