//! The bash completion file parses and completes objects, commands and keywords.

use std::process::Command;

fn complete(words: &[&str]) -> String {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/completion/bpfvm.bash");
    let arr = words
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let script = format!(
        "source '{file}'; COMP_WORDS=({arr}); COMP_CWORD={}; _bpfvm; echo \"${{COMPREPLY[*]}}\"",
        words.len() - 1
    );
    let o = Command::new("bash")
        .args(["--norc", "-c", &script])
        .output()
        .expect("bash");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[test]
fn completes_like_bpftool() {
    if Command::new("bash").arg("--version").output().is_err() {
        eprintln!("skipping: no bash");
        return;
    }
    assert_eq!(complete(&["bpfvm", "pr"]), "prog");
    assert_eq!(complete(&["bpfvm", "-j", "ma"]), "map");
    assert_eq!(complete(&["bpfvm", "prog", "d"]), "dump");
    assert_eq!(complete(&["bpfvm", "prog", "dump", "x"]), "xlated");
    assert_eq!(complete(&["bpfvm", "net", "attach", ""]), "xdp xdpgeneric");
    assert_eq!(complete(&["bpfvm", "map", "show", "p"]), "pinned");
    assert_eq!(complete(&["bpfvm", "map", "pu"]), "push");
    assert_eq!(complete(&["bpfvm", "map", "de"]), "delete dequeue");
    assert_eq!(complete(&["bpfvm", "ba"]), "batch");
    assert_eq!(complete(&["bpfvm", "batch", ""]), "file help");
    assert_eq!(complete(&["bpfvm", "daemon", "st"]), "start stop status");
}
