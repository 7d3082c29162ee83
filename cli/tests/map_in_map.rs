//! `map create ... inner_map MAP`: array_of_maps and hash_of_maps from the
//! command line, the template named by pinned path, name or id, beside
//! bpftool on the host kernel where it can run (the same commands succeed, the same
//! `map show -j` fields but the id); the template survives a daemon restart.

mod common;

use common::Env;
use serde_json::Value;

/// bpftool's words and ours for one scenario, in a bpffs directory `{D}`.
fn script() -> Vec<Vec<String>> {
    [
        "map create {D}/inner type array key 4 value 8 entries 4 name inner",
        "map create {D}/outer type array_of_maps key 4 value 4 entries 2 name outer inner_map pinned {D}/inner",
        "map create {D}/hom type hash_of_maps key 4 value 4 entries 2 name hom inner_map name inner",
        // refused: no template, a value that is not 4 bytes, a template that
        // does not exist, a keyword without its value
        "map create {D}/bad1 type array_of_maps key 4 value 4 entries 2 name bad1",
        "map create {D}/bad2 type hash_of_maps key 4 value 8 entries 2 name bad2 inner_map pinned {D}/inner",
        "map create {D}/bad3 type array_of_maps key 4 value 4 entries 2 name bad3 inner_map pinned {D}/nonexistent",
        "map create {D}/bad4 type array_of_maps key 4 value 4 entries 2 name bad4 inner_map",
        // a template given to a type that has no use for it is ignored
        "map create {D}/plain type array key 4 value 4 entries 2 name plain inner_map pinned {D}/inner",
        // an inner map of the template's shape goes in
        "map create {D}/inner2 type array key 4 value 8 entries 4 name inner2",
        "map update pinned {D}/outer key 1 0 0 0 value pinned {D}/inner2",
        "map update pinned {D}/hom key 7 0 0 0 value pinned {D}/inner2",
        // one of another shape does not
        "map create {D}/odd type array key 4 value 16 entries 4 name odd",
        "map update pinned {D}/outer key 0 0 0 0 value pinned {D}/odd",
    ]
    .iter()
    .map(|l| l.split(' ').map(String::from).collect())
    .collect()
}

fn shown(text: &str) -> Value {
    let mut v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    v.as_object_mut().expect("object").remove("id");
    v
}

fn bpftool_runs() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root && std::path::Path::new("/sys/fs/bpf").is_dir()
        && std::process::Command::new("bpftool")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
}

fn bpftool(args: &[String]) -> (i32, String) {
    let o = std::process::Command::new("bpftool")
        .args(args)
        .output()
        .expect("bpftool");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn map_in_map_create_as_bpftool() {
    let env = Env::new();
    let ours_dir = "/sys/fs/bpf/mim";
    let kernel_dir = format!("/sys/fs/bpf/bpfvm-mim-{}", std::process::id());
    let live = bpftool_runs();
    if live {
        std::fs::create_dir(&kernel_dir).expect("mkdir in bpffs");
    } else {
        eprintln!("skip: bpftool beside bpfvm needs root, bpftool and /sys/fs/bpf");
    }
    let mut failures = Vec::new();
    for words in script() {
        let ours_args: Vec<String> = words.iter().map(|w| w.replace("{D}", ours_dir)).collect();
        let ours = env.run(&ours_args.iter().map(String::as_str).collect::<Vec<_>>());
        if live {
            let k_args: Vec<String> = words
                .iter()
                .map(|w| w.replace("{D}", &kernel_dir))
                .collect();
            let (code, _) = bpftool(&k_args);
            // Success against failure: a failed update exits with 256 - errno
            // in bpftool and 255 in bpfvm (not this test's subject).
            if (code == 0) != (ours.code == 0) {
                failures.push(format!(
                    "{}: bpfvm {} ({}), bpftool {code}",
                    words.join(" "),
                    ours.code,
                    ours.stderr.trim()
                ));
            }
        }
    }
    for name in ["outer", "hom", "plain"] {
        let o = env
            .run(&["-j", "map", "show", "pinned", &format!("{ours_dir}/{name}")])
            .ok();
        let ours = shown(&o.stdout);
        if live {
            let (_, k) = bpftool(&[
                "-j".into(),
                "map".into(),
                "show".into(),
                "pinned".into(),
                format!("{kernel_dir}/{name}"),
            ]);
            if shown(&k) != ours {
                failures.push(format!("{name}: bpfvm {ours}, bpftool {}", shown(&k)));
            }
        }
    }
    // The entries: one each (values are map ids, which differ).
    for name in ["outer", "hom"] {
        let o = env
            .run(&["-j", "map", "dump", "pinned", &format!("{ours_dir}/{name}")])
            .ok();
        let v: Value = serde_json::from_str(&o.stdout).expect("json");
        assert_eq!(v.as_array().map(Vec::len), Some(1), "{name}: {}", o.stdout);
    }
    if live {
        let _ = std::fs::remove_dir_all(&kernel_dir);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // After a restart the maps are made again with their template: an inner
    // map of the template's shape still goes in, another does not.
    env.stop();
    env.run(&[
        "map",
        "update",
        "pinned",
        "/sys/fs/bpf/mim/hom",
        "key",
        "8",
        "0",
        "0",
        "0",
        "value",
        "pinned",
        "/sys/fs/bpf/mim/inner2",
    ])
    .ok();
    let odd = env.run(&[
        "map",
        "update",
        "pinned",
        "/sys/fs/bpf/mim/hom",
        "key",
        "9",
        "0",
        "0",
        "0",
        "value",
        "pinned",
        "/sys/fs/bpf/mim/odd",
    ]);
    assert_ne!(odd.code, 0, "an inner map of another shape after a restart");
}
