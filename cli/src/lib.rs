//! The `bpfvm` command line as a library: bpftool's grammar
//! (`bpfvm [OPTIONS] OBJECT {COMMAND | help}`), a thin client that turns each
//! command into a request ([`proto`]) for the daemon ([`daemon`]), which holds the
//! runtime between commands, and bpftool's output formats ([`render`]).
//!
//! Flow: `main` splits global options, picks the object by prefix ([`select`]),
//! the object's module parses its command line into a [`proto::Command`],
//! [`client::run`] sends it (starting the daemon if needed) and prints the reply.
//! Commands that need no state (`btf dump file`, `verify`, `objdump`) run locally.

pub mod batch;
pub mod btf;
pub mod client;
pub mod counts;
pub mod coverage;
pub mod daemon;
pub mod dap;
pub mod debug;
pub mod man;
pub mod map;
pub mod net;
pub mod netglue;
pub mod profile;
pub mod prog;
pub mod proto;
pub mod render;
pub mod replay;
pub mod safefs;
pub mod session;
pub mod verify;

use proto::Target;

/// Global options, parsed before the object name (and accepted anywhere, as bpftool does).
#[derive(Debug, Default, Clone)]
pub struct Opts {
    pub json: bool,
    pub pretty: bool,
    pub debug: bool,
    pub state_dir: Option<String>,
}

/// A command handler: options and the words after the command.
pub type Handler = fn(&Opts, &[String]) -> i32;

/// The runtime configuration of this process: the defaults, with the JIT
/// off when `BPFVM_NO_JIT` is set (the library itself reads no environment).
pub fn runtime_config() -> bpfvm::RuntimeConfig {
    bpfvm::RuntimeConfig::new().jit(std::env::var_os("BPFVM_NO_JIT").is_none())
}

/// The first table entry that `word` is a prefix of (bpftool's `is_prefix` walk).
pub fn select<'a, T>(table: &'a [(&'a str, T)], word: &str) -> Option<&'a (&'a str, T)> {
    if word.is_empty() {
        return None;
    }
    table.iter().find(|(name, _)| name.starts_with(word))
}

/// Runs the command `args[0]` of an object's table; no command runs the first
/// entry (`bpfvm prog` = `bpfvm prog show`).
pub fn dispatch(
    opts: &Opts,
    object: &str,
    table: &[(&str, Handler)],
    args: &[String],
    usage: fn(),
) -> i32 {
    let Some(word) = args.first() else {
        return (table[0].1)(opts, args);
    };
    match select(table, word) {
        Some((_, h)) => h(opts, &args[1..]),
        None => {
            let code = client::print_error(
                opts,
                &format!("unknown command '{word}' for object '{object}'"),
            );
            if !opts.json {
                usage();
            }
            code
        }
    }
}

/// The OPTIONS line of every usage text.
pub const OPTIONS_USAGE: &str =
    "       OPTIONS := { {-j|--json} [{-p|--pretty}] | {-d|--debug} | --state-dir DIR }";

/// Parses `id N | name NAME | tag TAG | pinned PATH` at `args[*i..]`. Relative
/// pinned paths are taken from the current directory (so the `STATE/fs/...` file
/// of a pin names it too).
pub fn parse_target(args: &[String], i: &mut usize, what: &str) -> Result<Target, String> {
    let Some(kw) = args.get(*i) else {
        return Err(format!("expected {what}: id, name, tag or pinned"));
    };
    let Some(val) = args.get(*i + 1) else {
        return Err(format!("expected a value after '{kw}'"));
    };
    let t = match kw.as_str() {
        "id" => Target::Id(
            val.parse()
                .map_err(|_| format!("can't parse {val} as ID"))?,
        ),
        "name" => Target::Name(val.clone()),
        "tag" => {
            if val.len() != 16 || !val.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!("can't parse tag {val}"));
            }
            Target::Tag(val.to_ascii_lowercase())
        }
        "pinned" => Target::Pinned(pin_arg(val)),
        _ => {
            return Err(format!(
                "expected 'id', 'name', 'tag' or 'pinned', got: '{kw}'"
            ))
        }
    };
    *i += 2;
    Ok(t)
}

/// A pin path argument: absolute paths are names in bpfvm's pin namespace
/// (`/sys/fs/bpf/x`); relative ones are made absolute (they usually name a file
/// under the state directory's `fs/`).
pub fn pin_arg(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        client::absolute(std::path::Path::new(p))
            .to_string_lossy()
            .into_owned()
    }
}

/// Fails with bpftool's message when arguments are left over.
pub fn no_more(args: &[String], i: usize) -> Result<(), String> {
    match args.get(i) {
        Some(w) => Err(format!("unexpected argument '{w}'")),
        None => Ok(()),
    }
}
