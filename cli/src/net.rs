//! `bpfvm net`: attach XDP programs to live interfaces (the daemon's datapath).

use crate::client::{self, print_error};
use crate::proto::Command;
use crate::{dispatch, parse_target, Handler, Opts};

const COMMANDS: &[(&str, Handler)] = &[
    ("show", list),
    ("list", list),
    ("attach", attach),
    ("detach", detach),
    ("help", help),
];

pub fn main(opts: &Opts, args: &[String]) -> i32 {
    dispatch(opts, "net", COMMANDS, args, usage)
}

/// The usage text (`help`, and the man page: one source, so they cannot drift).
pub fn usage_text() -> String {
    format!(
        "Usage: bpfvm net {{ show | list }} [dev <devname>]
       bpfvm net attach ATTACH_TYPE PROG dev <devname> [ overwrite ]
       bpfvm net detach ATTACH_TYPE dev <devname>
       bpfvm net help

       PROG := {{ id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME }}
       ATTACH_TYPE := {{ xdp | xdpgeneric }}
{}

Note: programs run in bpfvm's daemon, which reads frames from AF_PACKET sockets:
      the host stack still receives its own copy of every frame.",
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

fn attach_type(opts: &Opts, w: Option<&String>) -> Result<(), i32> {
    match w.map(String::as_str) {
        Some("xdp" | "xdpgeneric") => Ok(()),
        Some(t @ ("xdpdrv" | "xdpoffload")) => Err(print_error(
            opts,
            &format!("attach type '{t}' needs a driver; bpfvm attaches in generic mode ('xdp' or 'xdpgeneric')"),
        )),
        Some(t) => Err(print_error(opts, &format!("invalid net attach/detach type: {t}"))),
        None => Err(print_error(opts, "expected an attach type")),
    }
}

fn attach(opts: &Opts, args: &[String]) -> i32 {
    if let Err(c) = attach_type(opts, args.first()) {
        return c;
    }
    let mut i = 1;
    let target = match parse_target(args, &mut i, "PROG") {
        Ok(t) => t,
        Err(e) => return print_error(opts, &e),
    };
    if args.get(i).map(String::as_str) != Some("dev") {
        return print_error(opts, "expected 'dev <devname>'");
    }
    let Some(dev) = args.get(i + 1) else {
        return print_error(opts, "expected a device name after 'dev'");
    };
    let overwrite = match args.get(i + 2).map(String::as_str) {
        None => false,
        Some("overwrite") => true,
        Some(w) => return print_error(opts, &format!("expected 'overwrite', got: '{w}'")),
    };
    client::run(
        opts,
        Command::NetAttach {
            target,
            dev: dev.clone(),
            overwrite,
        },
    )
}

fn detach(opts: &Opts, args: &[String]) -> i32 {
    if let Err(c) = attach_type(opts, args.first()) {
        return c;
    }
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("dev"), Some(dev)) => client::run(opts, Command::NetDetach { dev: dev.clone() }),
        _ => print_error(opts, "expected 'dev <devname>'"),
    }
}

fn list(opts: &Opts, args: &[String]) -> i32 {
    let dev = match (args.first().map(String::as_str), args.get(1)) {
        (None, _) => None,
        (Some("dev"), Some(d)) => Some(d.clone()),
        _ => return print_error(opts, "expected 'dev <devname>'"),
    };
    client::run(opts, Command::NetList { dev })
}
