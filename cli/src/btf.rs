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
       bpfvm btf dump BTF_SRC
       bpfvm btf help

       BTF_SRC := {{ id BTF_ID | prog PROG | map MAP | file FILE }}
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

fn dump(opts: &Opts, args: &[String]) -> i32 {
    match (args.first().map(String::as_str), args.get(1)) {
        (Some("id"), Some(v)) => match v.parse() {
            Ok(id) => client::run(
                opts,
                Command::BtfDump {
                    id: Some(id),
                    prog: None,
                    map: None,
                },
            ),
            Err(_) => print_error(opts, &format!("can't parse {v} as ID")),
        },
        (Some("file"), Some(path)) => match btf_from_file(path) {
            Ok(btf) => {
                print!("{}", crate::render::btf_dump(&btf, client::format_of(opts)));
                0
            }
            Err(e) => print_error(opts, &e),
        },
        (Some(w @ ("prog" | "map")), _) => {
            let mut i = 1;
            let what = if w == "prog" { "PROG" } else { "MAP" };
            let t = match crate::parse_target(args, &mut i, what) {
                Ok(t) => t,
                Err(e) => return print_error(opts, &e),
            };
            // bpftool's `map MAP {key | value | kv | all}` selects types; the whole BTF is shown.
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
                },
            )
        }
        _ => print_error(
            opts,
            "expected 'id BTF_ID', 'prog PROG', 'map MAP' or 'file FILE'",
        ),
    }
}

/// The `.BTF` section of an ELF object as written (no fix-ups: `btf dump file`
/// shows what the compiler emitted), or a raw BTF file.
pub fn btf_from_file(path: &str) -> Result<Btf, String> {
    let data =
        crate::safefs::read_input_capped(std::path::Path::new(path), crate::safefs::MAX_INPUT)
            .map_err(|e| format!("failed to read {}", crate::render::error_chain(&e)))?;
    let raw = if data.starts_with(b"\x7fELF") {
        elf_section(&data, ".BTF").ok_or_else(|| format!("{path}: no .BTF section"))?
    } else {
        &data[..]
    };
    Btf::parse(raw).map_err(|e| format!("{path}: {}", crate::render::error_chain(&e)))
}

fn rd<const N: usize>(d: &[u8], off: usize) -> Option<[u8; N]> {
    d.get(off..off.checked_add(N)?)?.try_into().ok()
}

/// A section's bytes from a 64-bit little-endian ELF file, every offset checked.
fn elf_section<'a>(d: &'a [u8], name: &str) -> Option<&'a [u8]> {
    if d.get(4) != Some(&2) || d.get(5) != Some(&1) {
        return None; // not ELFCLASS64 / ELFDATA2LSB
    }
    let shoff = u64::from_le_bytes(rd(d, 0x28)?) as usize;
    let shentsize = u16::from_le_bytes(rd(d, 0x3a)?) as usize;
    let shnum = u16::from_le_bytes(rd(d, 0x3c)?) as usize;
    let shstrndx = u16::from_le_bytes(rd(d, 0x3e)?) as usize;
    let sh = |i: usize| -> Option<(u32, usize, usize)> {
        let base = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let n = u32::from_le_bytes(rd(d, base)?);
        let off = u64::from_le_bytes(rd(d, base + 0x18)?) as usize;
        let size = u64::from_le_bytes(rd(d, base + 0x20)?) as usize;
        Some((n, off, size))
    };
    let (_, str_off, str_size) = sh(shstrndx)?;
    let strtab = d.get(str_off..str_off.checked_add(str_size)?)?;
    for i in 0..shnum {
        let (n, off, size) = sh(i)?;
        let s = strtab.get(n as usize..)?;
        let end = s.iter().position(|&b| b == 0)?;
        if &s[..end] == name.as_bytes() {
            return d.get(off..off.checked_add(size)?);
        }
    }
    None
}
