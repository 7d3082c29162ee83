//! Man pages made from the usage texts that `help` prints, so the two cannot
//! drift: `bpfvm help man DIR` writes them (section 8, as bpftool's), and a
//! test keeps the committed copies under `cli/man/` equal to what this makes.

use std::path::Path;

/// `bpfvm help`.
pub fn main_usage_text() -> String {
    format!(
        "Usage: bpfvm [OPTIONS] OBJECT {{ COMMAND | help }}
       bpfvm batch file FILE
       bpfvm help [man DIR]
       bpfvm version

       OBJECT := {{ prog | map | net | btf | objdump | verify | conformance | daemon }}
{}",
        crate::OPTIONS_USAGE
    )
}

/// `bpfvm daemon help`.
pub fn daemon_usage_text() -> String {
    format!(
        "Usage: bpfvm daemon [start]     run the runtime in the foreground
       bpfvm daemon stop        save pinned objects and stop the daemon
       bpfvm daemon status      is a daemon running for the state directory?
       bpfvm daemon help

       Any command that needs state starts the daemon in the background.
{}",
        crate::OPTIONS_USAGE
    )
}

/// `bpfvm objdump` (llvm-objdump's options).
pub const OBJDUMP_USAGE: &str = "Usage: bpfvm objdump [-d|--disassemble] [-S|--source] OBJ...\n\
     \n\
     \x20 -d, --disassemble  disassemble executable sections (the default)\n\
     \x20 -S, --source       interleave source lines (from DWARF or BTF line info)\n";

/// `bpfvm conformance`.
pub const CONFORMANCE_USAGE: &str =
    "Usage: bpfvm conformance [--jit] DIR\n       bpfvm conformance --plugin [MEMHEX]";

/// One page: file name, title, one-line summary, usage text, description.
struct Page {
    name: &'static str,
    summary: &'static str,
    usage: String,
    text: &'static str,
}

fn pages() -> Vec<Page> {
    vec![
        Page {
            name: "bpfvm",
            summary: "the Linux eBPF subsystem in user space, with bpftool's command line",
            usage: main_usage_text(),
            text: "bpfvm loads, verifies, runs and inspects eBPF programs built with \
                   clang -target bpf, as bpftool does with the kernel, without root. Objects \
                   and commands are matched by prefix (bpfvm p l is bpfvm prog list); \
                   -j and -p print bpftool's JSON. State (programs, maps, pins) lives in a \
                   daemon started by the first command that needs it.",
        },
        Page {
            name: "bpfvm-prog",
            summary: "load, show, dump, run, debug and profile eBPF programs",
            usage: crate::prog::usage_text(),
            text: "The prog commands take bpftool's arguments and print bpftool's formats. \
                   debug, profile and replay run the program in the command's own process. \
                   btf PATH gives the BTF that CO-RE relocations are resolved against (a raw \
                   BTF file such as a copy of /sys/kernel/btf/vmlinux, or an ELF file's .BTF) \
                   instead of the host's /sys/kernel/btf/vmlinux; kconfig FILE gives the \
                   kernel configuration that .kconfig externs read.",
        },
        Page {
            name: "bpfvm-map",
            summary: "create, inspect and change eBPF maps",
            usage: crate::map::usage_text(),
            text: "The map commands take bpftool's arguments and print bpftool's formats; \
                   peek, push, pop, enqueue and dequeue work on queues and stacks. \
                   map create of an array_of_maps or hash_of_maps takes inner_map MAP, the \
                   template its inner maps must match; dev NAME (offload) is refused, as \
                   no device offloads maps to bpfvm.",
        },
        Page {
            name: "bpfvm-net",
            summary: "attach XDP programs to network interfaces",
            usage: crate::net::usage_text(),
            text: "Attached programs run in bpfvm's daemon on frames read from an AF_PACKET \
                   ring (generic, copy mode).",
        },
        Page {
            name: "bpfvm-btf",
            summary: "list and dump BTF",
            usage: crate::btf::usage_text(),
            text: "btf dump prints bpftool's raw format, or with format c the types as a C \
                   header (vmlinux.h), as bpftool prints them.",
        },
        Page {
            name: "bpfvm-batch",
            summary: "run commands from a file",
            usage: crate::batch::usage_text(),
            text: "Each line is one command; '#' starts a comment, quotes and a backslash \
                   group words, a backslash at the end of a line continues it. The first \
                   failing command stops the batch with its exit code.",
        },
        Page {
            name: "bpfvm-verify",
            summary: "run the verifier on an object's programs",
            usage: crate::verify::USAGE.to_string(),
            text: "Prints the verifier's log in the kernel's words, with source lines. \
                   btf PATH gives the CO-RE target BTF, as for prog load.",
        },
        Page {
            name: "bpfvm-objdump",
            summary: "disassemble eBPF objects as llvm-objdump does",
            usage: OBJDUMP_USAGE.to_string(),
            text: "Output is llvm-objdump's, byte for byte.",
        },
        Page {
            name: "bpfvm-conformance",
            summary: "run the bpf_conformance suite",
            usage: CONFORMANCE_USAGE.to_string(),
            text: "Runs every test of a bpf_conformance directory on the interpreter (or \
                   the JIT) and prints the summary; --plugin speaks the suite's plugin \
                   protocol.",
        },
        Page {
            name: "bpfvm-daemon",
            summary: "the daemon that keeps bpfvm's state",
            usage: daemon_usage_text(),
            text: "The daemon holds loaded programs, maps and pins between commands, in a \
                   state directory that must be the caller's (see README).",
        },
    ]
}

/// troff escapes: a backslash, and a line starting with '.' or '\''.
fn roff(line: &str) -> String {
    let l = line.replace('\\', "\\e").replace('-', "\\-");
    if l.starts_with('.') || l.starts_with('\'') {
        format!("\\&{l}")
    } else {
        l
    }
}

fn render(p: &Page) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        ".\\\" Made by `bpfvm help man DIR` from the usage text; do not edit.\n\
         .TH {} 8 \"\" \"bpfvm {}\" \"System Manager's Manual\"\n",
        p.name.to_uppercase(),
        env!("CARGO_PKG_VERSION")
    ));
    s.push_str(&format!(
        ".SH NAME\n{} \\- {}\n",
        roff(p.name),
        roff(p.summary)
    ));
    s.push_str(".SH SYNOPSIS\n.nf\n");
    for l in p.usage.lines() {
        s.push_str(&roff(l));
        s.push('\n');
    }
    s.push_str(".fi\n.SH DESCRIPTION\n");
    s.push_str(&roff(p.text));
    s.push('\n');
    s.push_str(".SH SEE ALSO\n");
    let others: Vec<String> = pages()
        .iter()
        .filter(|o| o.name != p.name)
        .map(|o| format!("\\fB{}\\fR(8)", roff(o.name)))
        .collect();
    s.push_str(&others.join(",\n"));
    s.push_str(",\n\\fBbpftool\\fR(8)\n");
    s
}

/// Every page: (file name, text).
pub fn man_pages() -> Vec<(String, String)> {
    pages()
        .iter()
        .map(|p| (format!("{}.8", p.name), render(p)))
        .collect()
}

/// Writes every page into `dir` (made if missing); returns the file names.
pub fn write_pages(dir: &Path) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut names = Vec::new();
    for (name, text) in man_pages() {
        std::fs::write(dir.join(&name), text)?;
        names.push(name);
    }
    Ok(names)
}
