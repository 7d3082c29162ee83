//! The `bpfvm` command line: bpftool's grammar (`bpfvm [OPTIONS] OBJECT {COMMAND | help}`),
//! objects and commands matched by prefix in table order as bpftool matches them, so
//! `bpfvm p l` is `bpfvm prog list`. Each object lives in its own module of the
//! `bpfvm_cli` library; state lives in the daemon (`bpfvm daemon`).

mod conformance;
mod objdump;

use bpfvm_cli::{client, select, Handler, Opts};
use std::process::ExitCode;

/// The object table. Order matters: the first entry that the word is a prefix of wins.
const OBJECTS: &[(&str, Handler)] = &[
    ("batch", bpfvm_cli::batch::main),
    ("prog", bpfvm_cli::prog::main),
    ("map", bpfvm_cli::map::main),
    ("net", bpfvm_cli::net::main),
    ("btf", bpfvm_cli::btf::main),
    ("objdump", run_objdump),
    ("verify", bpfvm_cli::verify::main),
    ("conformance", run_conformance),
    ("daemon", daemon),
    ("version", version),
    ("help", help_cmd),
];

fn run_objdump(_: &Opts, args: &[String]) -> i32 {
    objdump::main(args)
}

fn run_conformance(_: &Opts, args: &[String]) -> i32 {
    conformance::main(args)
}

/// The JIT runs natively only on x86-64 (elsewhere programs run on the
/// interpreter; arm64 code is produced for listings only).
const NATIVE_JIT: bool = cfg!(target_arch = "x86_64");

/// `bpfvm version`, `-V`, `--version`: what this build does, in bpftool's
/// layout (`bpftool v7.1.0` / `using libbpf ...` / `features: ...`).
fn version(opts: &Opts, _: &[String]) -> i32 {
    let arch = std::env::consts::ARCH;
    if opts.json {
        let v = serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": bpfvm_cli::proto::PROTO_VERSION,
            "arch": arch,
            "features": {
                "interpreter": true,
                "jit": NATIVE_JIT,
                "jit_listing_archs": ["x86_64", "aarch64"],
                "verifier": true,
                "daemon": true,
            },
        });
        // bpftool ends its JSON with a newline, as every other command here does.
        println!(
            "{}",
            bpfvm_cli::render::json(client::format_of(opts), &v).trim_end()
        );
    } else {
        println!("bpfvm v{}", env!("CARGO_PKG_VERSION"));
        println!("daemon protocol v{}", bpfvm_cli::proto::PROTO_VERSION);
        let jit = if NATIVE_JIT {
            "jit (x86_64)".to_string()
        } else {
            format!("no native jit on {arch} (listings only)")
        };
        println!("features: interpreter, {jit}, verifier, daemon");
    }
    0
}

/// `bpfvm daemon [start | stop | status | help]`. Unlike other commands, a
/// prefix must name one command only (`st` could be start, stop or status, and
/// guessing start would leave a daemon in the foreground).
fn daemon(opts: &Opts, args: &[String]) -> i32 {
    const SUB: &[(&str, Handler)] = &[
        ("start", daemon_run),
        ("stop", daemon_stop),
        ("status", daemon_status),
        ("help", daemon_help),
    ];
    match args.first() {
        None => daemon_run(opts, args),
        Some(w) => {
            let hits: Vec<&(&str, Handler)> = SUB
                .iter()
                .filter(|(n, _)| !w.is_empty() && n.starts_with(w.as_str()))
                .collect();
            let exact = SUB.iter().find(|(n, _)| *n == w.as_str());
            match (exact, hits.as_slice()) {
                (Some((_, h)), _) | (None, [(_, h)]) => h(opts, &args[1..]),
                (None, []) => {
                    daemon_help(opts, args);
                    client::print_error(opts, &format!("unknown command '{w}' for object 'daemon'"))
                }
                (None, many) => {
                    let names: Vec<&str> = many.iter().map(|(n, _)| *n).collect();
                    client::print_error(
                        opts,
                        &format!(
                            "ambiguous command '{w}' for object 'daemon': {}",
                            names.join(", ")
                        ),
                    )
                }
            }
        }
    }
}

fn daemon_run(opts: &Opts, _: &[String]) -> i32 {
    let dir = match client::state_dir(opts) {
        Ok(d) => d,
        Err(e) => return client::print_error(opts, &e),
    };
    match bpfvm_cli::daemon::run(&dir) {
        Ok(()) => 0,
        Err(e) => client::print_error(opts, &bpfvm_cli::render::error_chain(&e)),
    }
}

fn daemon_stop(opts: &Opts, _: &[String]) -> i32 {
    client::stop(opts)
}

fn daemon_status(opts: &Opts, _: &[String]) -> i32 {
    client::status(opts)
}

fn daemon_help(_: &Opts, _: &[String]) -> i32 {
    eprintln!("{}", bpfvm_cli::man::daemon_usage_text());
    0
}

/// `bpfvm help`, and `bpfvm help man DIR`: the man pages, made from the same
/// usage texts, written into DIR.
fn help_cmd(opts: &Opts, args: &[String]) -> i32 {
    match args {
        [] => {
            print_usage();
            0
        }
        [m, dir] if m == "man" => match bpfvm_cli::man::write_pages(std::path::Path::new(dir)) {
            Ok(names) => {
                for n in names {
                    println!("{}", std::path::Path::new(dir).join(n).display());
                }
                0
            }
            Err(e) => client::print_error(opts, &format!("can't write man pages into {dir}: {e}")),
        },
        _ => {
            print_usage();
            client::print_error(opts, "expected 'help' or 'help man DIR'")
        }
    }
}

fn print_usage() {
    eprintln!("{}", bpfvm_cli::man::main_usage_text());
}

/// Splits global options from the rest of the arguments.
fn parse_opts(args: Vec<String>) -> Result<(Opts, Vec<String>), String> {
    let mut opts = Opts {
        state_dir: std::env::var("BPFVM_STATE_DIR")
            .ok()
            .filter(|s| !s.is_empty()),
        ..Opts::default()
    };
    let mut rest = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-j" | "--json" => opts.json = true,
            "-p" | "--pretty" => {
                opts.json = true;
                opts.pretty = true
            }
            "-d" | "--debug" => opts.debug = true,
            // bpftool's -h/--help and -V/--version, as the first word.
            "-h" | "--help" if rest.is_empty() => rest.push("help".to_string()),
            "-V" | "--version" if rest.is_empty() => rest.push("version".to_string()),
            "--state-dir" => {
                opts.state_dir = Some(it.next().ok_or("option --state-dir needs a directory")?);
            }
            _ => match a.strip_prefix("--state-dir=") {
                Some(d) => opts.state_dir = Some(d.to_string()),
                None => rest.push(a),
            },
        }
    }
    Ok((opts, rest))
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`bpfvm ... | head`), as C tools do, instead of
    // panicking in println!.
    // SAFETY: setting a signal disposition to its default has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    // Arguments that are not UTF-8 are refused by name, not a panic.
    let mut args: Vec<String> = Vec::new();
    for (i, a) in std::env::args_os().skip(1).enumerate() {
        match a.into_string() {
            Ok(s) => args.push(s),
            Err(raw) => {
                eprintln!(
                    "Error: argument {} ({}) is not valid UTF-8; bpfvm takes UTF-8 names and paths",
                    i + 1,
                    raw.to_string_lossy()
                );
                return exit(255);
            }
        }
    }
    // Commands with their own option syntax (objdump -d/-S) take their arguments raw.
    if let Some(first) = args.first() {
        if let Some(("objdump", h)) = select(OBJECTS, first) {
            return exit(h(&Opts::default(), &args[1..]));
        }
    }
    let (opts, rest) = match parse_opts(args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("Error: {e}");
            return exit(255);
        }
    };
    let Some(obj) = rest.first() else {
        print_usage();
        return exit(255);
    };
    match select(OBJECTS, obj) {
        Some((_, handler)) => exit(handler(&opts, &rest[1..])),
        None => {
            let code = client::print_error(&opts, &format!("unrecognized object '{obj}'"));
            if !opts.json {
                print_usage();
            }
            exit(code)
        }
    }
}
