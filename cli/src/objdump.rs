//! `bpfvm objdump [-d|-S] OBJ...`: llvm-objdump-19's `-d` / `-S` output for BPF
//! objects, byte for byte (see `bpfvm::objdump`).
//!
//! As llvm-objdump: objects are dumped in order, source files are found from the
//! working directory, warnings go to stderr as `bpfvm: warning: 'OBJ': ...`, and
//! the first object that cannot be read stops the run with
//! `bpfvm: error: 'OBJ': ...` and exit status 1.

use bpfvm::objdump::{objdump_with, ObjdumpOptions};
use std::io::Write;

const TOOL: &str = "bpfvm";

fn usage() -> &'static str {
    bpfvm_cli::man::OBJDUMP_USAGE
}

/// The reason an object could not be read, worded as llvm-objdump words it.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "Permission denied".to_string(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

/// Runs `bpfvm objdump` with the arguments after `objdump`; returns the exit status.
pub fn main(args: &[String]) -> i32 {
    let mut with_source = false;
    let mut files = Vec::new();
    let mut only_files = false;
    for a in args {
        if only_files || !a.starts_with('-') || a == "-" {
            files.push(a.clone());
            continue;
        }
        match a.as_str() {
            "--" => only_files = true,
            "--disassemble" => {}
            "--source" => with_source = true,
            "-h" | "--help" | "help" => {
                print!("{}", usage());
                return 0;
            }
            s if s.len() > 1 && s[1..].chars().all(|c| c == 'd' || c == 'S') => {
                with_source |= s.contains('S');
            }
            _ => {
                eprintln!("{TOOL}: error: unknown option '{a}'\n{}", usage());
                return 2;
            }
        }
    }
    if files.is_empty() {
        eprintln!("{TOOL}: error: no input files\n{}", usage());
        return 2;
    }
    let opts = ObjdumpOptions {
        with_source,
        source_dir: None,
        tool_name: TOOL.to_string(),
    };
    let stdout = std::io::stdout();
    for f in &files {
        let bytes = match bpfvm_cli::safefs::read_input_capped(
            std::path::Path::new(f),
            bpfvm_cli::safefs::MAX_INPUT,
        ) {
            Ok(b) => b,
            Err(bpfvm_cli::safefs::SafeFsError::Io { source, .. }) => {
                eprintln!("{TOOL}: error: '{f}': {}", io_reason(&source));
                return 1;
            }
            Err(e) => {
                eprintln!("{TOOL}: error: '{f}': {e}");
                return 1;
            }
        };
        let out = match objdump_with(f, &bytes, &opts) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("{TOOL}: error: {e}");
                return 1;
            }
        };
        for w in &out.warnings {
            eprintln!("{w}");
        }
        let mut lock = stdout.lock();
        if lock
            .write_all(out.text.as_bytes())
            .and_then(|_| lock.flush())
            .is_err()
        {
            // Closed pipe (`| head`): stop quietly, as a C tool killed by SIGPIPE would.
            return 1;
        }
    }
    0
}
