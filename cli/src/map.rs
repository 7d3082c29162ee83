//! `bpfvm map`: show, dump, lookup, update, delete, getnext, create, pin, freeze.

use crate::client::{self, print_error};
use crate::proto::Command;
use crate::{dispatch, no_more, parse_target, pin_arg, Handler, Opts, OPTIONS_USAGE};

/// In bpftool's order, which decides prefixes.
const COMMANDS: &[(&str, Handler)] = &[
    ("show", show),
    ("list", show),
    ("help", help),
    ("dump", dump),
    ("update", update),
    ("lookup", lookup),
    ("getnext", getnext),
    ("delete", delete),
    ("pin", pin),
    ("create", create),
    ("freeze", freeze),
];

pub fn main(opts: &Opts, args: &[String]) -> i32 {
    dispatch(opts, "map", COMMANDS, args, usage)
}

pub fn usage() {
    eprintln!(
        "Usage: bpfvm map {{ show | list }}   [MAP]
       bpfvm map create     FILE type TYPE key KEY_SIZE value VALUE_SIZE \\
                                  entries MAX_ENTRIES name NAME [flags FLAGS]
       bpfvm map dump       MAP
       bpfvm map update     MAP [key DATA] [value VALUE] [UPDATE_FLAGS]
       bpfvm map lookup     MAP [key DATA]
       bpfvm map getnext    MAP [key DATA]
       bpfvm map delete     MAP  key DATA
       bpfvm map pin        MAP  FILE
       bpfvm map freeze     MAP
       bpfvm map help

       MAP := {{ id MAP_ID | pinned FILE | name MAP_NAME }}
       DATA := {{ [hex] BYTES }}
       PROG := {{ id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME }}
       VALUE := {{ DATA | MAP | PROG }}
       UPDATE_FLAGS := {{ any | exist | noexist }}
       TYPE := {{ hash | array | prog_array | perf_event_array | percpu_hash |
                 percpu_array | stack_trace | cgroup_array | lru_hash |
                 lru_percpu_hash | lpm_trie | array_of_maps | hash_of_maps |
                 devmap | devmap_hash | cpumap | queue | stack | ringbuf |
                 bloom_filter }}
{OPTIONS_USAGE}"
    );
}

fn help(_: &Opts, _: &[String]) -> i32 {
    usage();
    0
}

fn show(opts: &Opts, args: &[String]) -> i32 {
    let target = if args.is_empty() {
        None
    } else {
        let mut i = 0;
        match parse_target(args, &mut i, "MAP").and_then(|t| no_more(args, i).map(|_| t)) {
            Ok(t) => Some(t),
            Err(e) => return print_error(opts, &e),
        }
    };
    client::run(opts, Command::MapShow { target })
}

fn one(
    opts: &Opts,
    args: &[String],
    build: impl FnOnce(crate::proto::Target, &[String]) -> Result<Command, String>,
) -> i32 {
    let mut i = 0;
    let cmd = parse_target(args, &mut i, "MAP").and_then(|t| build(t, &args[i..]));
    match cmd {
        Ok(c) => client::run(opts, c),
        Err(e) => print_error(opts, &e),
    }
}

fn dump(opts: &Opts, args: &[String]) -> i32 {
    one(opts, args, |target, rest| {
        no_more(rest, 0)?;
        Ok(Command::MapDump { target })
    })
}

fn map_op(opts: &Opts, args: &[String], op: &str) -> i32 {
    one(opts, args, |target, rest| {
        Ok(Command::MapOp {
            op: op.into(),
            target,
            args: rest.to_vec(),
        })
    })
}

fn update(opts: &Opts, args: &[String]) -> i32 {
    map_op(opts, args, "update")
}
fn lookup(opts: &Opts, args: &[String]) -> i32 {
    map_op(opts, args, "lookup")
}
fn getnext(opts: &Opts, args: &[String]) -> i32 {
    map_op(opts, args, "getnext")
}
fn delete(opts: &Opts, args: &[String]) -> i32 {
    map_op(opts, args, "delete")
}

fn pin(opts: &Opts, args: &[String]) -> i32 {
    one(opts, args, |target, rest| {
        let path = rest.first().ok_or("expected a pin path")?;
        no_more(rest, 1)?;
        Ok(Command::MapPin {
            target,
            path: pin_arg(path),
        })
    })
}

fn freeze(opts: &Opts, args: &[String]) -> i32 {
    one(opts, args, |target, rest| {
        no_more(rest, 0)?;
        Ok(Command::MapFreeze { target })
    })
}

/// A number as bpftool reads sizes and flags (`strtoul(.., 0)`).
fn number(v: &str, what: &str) -> Result<u32, String> {
    let r = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()
    } else if v.len() > 1 && v.starts_with('0') {
        u32::from_str_radix(&v[1..], 8).ok()
    } else {
        v.parse().ok()
    };
    r.ok_or_else(|| format!("can't parse {what} {v}"))
}

fn create(opts: &Opts, args: &[String]) -> i32 {
    let r = (|| -> Result<Command, String> {
        let path = args.first().ok_or("expected a pin path")?;
        let (mut ty, mut key, mut value, mut entries, mut name, mut flags) =
            (None, None, None, None, None, 0);
        let mut i = 1;
        while let Some(w) = args.get(i) {
            let v = args
                .get(i + 1)
                .ok_or_else(|| format!("expected a value after '{w}'"))?;
            match w.as_str() {
                "type" => ty = Some(v.clone()),
                "key" => key = Some(number(v, "key size")?),
                "value" => value = Some(number(v, "value size")?),
                "entries" => entries = Some(number(v, "max entries")?),
                "name" => name = Some(v.clone()),
                "flags" => flags = number(v, "flags")?,
                other => return Err(format!("unknown arg {other}")),
            }
            i += 2;
        }
        Ok(Command::MapCreate {
            path: pin_arg(path),
            map_type: ty.ok_or("map type not specified")?,
            key: key.ok_or("key size not specified")?,
            value: value.ok_or("value size not specified")?,
            entries: entries.ok_or("max entries not specified")?,
            name: name.ok_or("map name not specified")?,
            flags,
        })
    })();
    match r {
        Ok(c) => client::run(opts, c),
        Err(e) => print_error(opts, &e),
    }
}
