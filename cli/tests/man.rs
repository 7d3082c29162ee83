//! The man pages under cli/man are what `bpfvm help man DIR` makes from the
//! usage texts (re-bless with BPFVM_BLESS=1), and each page's synopsis is the
//! text `help` prints, so the two cannot drift.

use std::path::Path;
use std::process::Command;

#[test]
fn man_pages_are_the_usage_texts() {
    let out = tempfile::tempdir().expect("tempdir");
    let o = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .args(["help", "man"])
        .arg(out.path())
        .output()
        .expect("bpfvm help man");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let bless = std::env::var_os("BPFVM_BLESS").is_some();
    let mut made: Vec<String> = std::fs::read_dir(out.path())
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    made.sort();
    assert!(made.len() >= 10, "{made:?}");
    if bless {
        let _ = std::fs::remove_dir_all(&committed);
        std::fs::create_dir_all(&committed).expect("mkdir");
    }
    for name in &made {
        let text = std::fs::read_to_string(out.path().join(name)).expect("read page");
        if bless {
            std::fs::write(committed.join(name), &text).expect("bless");
        }
        let want = std::fs::read_to_string(committed.join(name))
            .unwrap_or_else(|_| panic!("cli/man/{name} missing (BPFVM_BLESS=1 writes it)"));
        assert_eq!(
            text, want,
            "cli/man/{name} is stale (BPFVM_BLESS=1 rewrites it)"
        );
    }
    let mut have: Vec<String> = std::fs::read_dir(&committed)
        .expect("cli/man")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    have.sort();
    assert_eq!(have, made, "pages in cli/man that bpfvm no longer makes");
    // The synopsis of bpfvm-map.8 is `bpfvm map help`'s text, line for line.
    let help = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .args(["map", "help"])
        .output()
        .expect("bpfvm map help");
    let page = std::fs::read_to_string(committed.join("bpfvm-map.8")).expect("page");
    for line in String::from_utf8_lossy(&help.stderr).lines() {
        let escaped = line.replace('\\', "\\e").replace('-', "\\-");
        assert!(page.contains(&escaped), "bpfvm-map.8 lacks {line:?}");
    }
    // groff reads every page without a warning, where it is installed.
    if let Ok(o) = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .args(made.iter().map(|n| committed.join(n)))
        .output()
    {
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "groff: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    } else {
        eprintln!("skip: groff not installed, pages not rendered");
    }
}
