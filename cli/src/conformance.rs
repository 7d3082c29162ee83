//! `bpfvm conformance`: runs bpf_conformance `.data` tests on the interpreter (or,
//! with `--jit`, on the x86-64 JIT in checked mode), or
//! serves as an upstream bpf_conformance plugin.
//!
//! ```text
//! bpfvm conformance [--jit] DIR        one line per failure, then "N passed, N failed"
//! bpfvm conformance --plugin [MEMHEX]  program as hex bytes on stdin, r0 in hex on stdout
//! ```
//!
//! The plugin speaks the upstream runner's protocol: the runner starts the plugin
//! with the input memory as hex bytes in the first argument (and plugin options in
//! the second), writes the program's bytes as hex on stdin, reads r0 in hex from
//! stdout, and takes a non-zero exit status as a failed load or run.

use bpfvm::vm::conformance::{self, run_conformance_dir, Outcome};
use std::io::Read;
use std::path::Path;

const USAGE: &str = bpfvm_cli::man::CONFORMANCE_USAGE;

pub fn main(args: &[String]) -> i32 {
    let mut jit = false;
    let mut plugin = false;
    let mut rest = Vec::new();
    for a in args {
        match a.as_str() {
            "--jit" => jit = true,
            "--plugin" => plugin = true,
            "help" | "-h" | "--help" => {
                println!("{USAGE}");
                return 0;
            }
            _ => rest.push(a.as_str()),
        }
    }
    if plugin {
        return plugin_main(rest.first().copied().unwrap_or(""));
    }
    let [dir] = rest.as_slice() else {
        eprintln!("{USAGE}");
        return 2;
    };
    let report = match run_conformance_dir(Path::new(dir), jit) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: {}", conformance::error_chain(&e));
            return 2;
        }
    };
    for c in report.failures() {
        if let Outcome::Failed { reason } = &c.outcome {
            println!("FAIL {}: {reason}", c.file.display());
        }
    }
    println!("{} passed, {} failed", report.passed(), report.failed());
    i32::from(report.failed() != 0)
}

fn plugin_main(mem_hex: &str) -> i32 {
    let mem = match conformance::parse_hex_bytes(mem_hex) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("Error: memory argument: {e}");
            return 2;
        }
    };
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("Error: reading the program from stdin: {e}");
        return 2;
    }
    let bytes = match conformance::parse_hex_bytes(&input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("Error: program on stdin: {e}");
            return 2;
        }
    };
    let insns = match bpfvm::isa::insns_from_bytes(&bytes) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("Error: program on stdin: {e}");
            return 2;
        }
    };
    match conformance::run_program(&insns, &mem) {
        Ok(r0) => {
            println!("{r0:x}");
            0
        }
        Err((stage, msg)) => {
            eprintln!("Error: {stage}: {msg}");
            1
        }
    }
}
