//! Compares the tags of programs with CO-RE relocations as bpfvm loads them
//! (relocated against the host's /sys/kernel/btf/vmlinux) with the tags the
//! host kernel reports after `bpftool prog loadall` (libbpf relocating against
//! the same BTF). Needs root and bpftool; pins under /sys/fs/bpf are removed.
//!
//! cargo run --release -p bpfvm --example core_tags -- OBJ...

use bpfvm::{LoadOpts, Object, Runtime};
use std::path::PathBuf;
use std::process::Command;

fn kernel_tags(file: &str, pin: &PathBuf) -> Result<Vec<(String, String)>, String> {
    let out = Command::new("bpftool")
        .args(["prog", "loadall", file])
        .arg(pin)
        .output()
        .map_err(|e| e.to_string())?;
    let mut tags = Vec::new();
    if out.status.success() {
        for e in std::fs::read_dir(pin).map_err(|e| e.to_string())?.flatten() {
            let show = Command::new("bpftool")
                .args(["prog", "show", "pinned"])
                .arg(e.path())
                .arg("-j")
                .output()
                .map_err(|e| e.to_string())?;
            let v: serde_json::Value =
                serde_json::from_slice(&show.stdout).map_err(|e| e.to_string())?;
            tags.push((
                e.file_name().to_string_lossy().into_owned(),
                v["tag"].as_str().unwrap_or_default().to_string(),
            ));
            let _ = std::fs::remove_file(e.path());
        }
        let _ = std::fs::remove_dir(pin);
        Ok(tags)
    } else {
        let _ = std::fs::remove_dir_all(pin);
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        Err(format!("kernel refuses the object: {last}"))
    }
}

fn main() {
    let (mut equal, mut total, mut skipped) = (0, 0, 0);
    for (n, file) in std::env::args().skip(1).enumerate() {
        let Ok(obj) = Object::open(&file) else {
            println!("{file}: cannot parse");
            continue;
        };
        let with_core: Vec<&str> = obj
            .programs
            .iter()
            .filter(|p| p.autoload && !p.core_relos.is_empty())
            .map(|p| p.name.as_str())
            .collect();
        if with_core.is_empty() {
            continue;
        }
        let pin = PathBuf::from(format!(
            "/sys/fs/bpf/bpfvm_coretags_{}_{n}",
            std::process::id()
        ));
        let ktags = match kernel_tags(&file, &pin) {
            Ok(t) => t,
            Err(e) => {
                println!("{file}: {e}");
                skipped += with_core.len();
                continue;
            }
        };
        let rt = Runtime::with_cpus(1);
        for name in with_core {
            let Some((_, ktag)) = ktags.iter().find(|(k, _)| k == name) else {
                continue;
            };
            total += 1;
            let opts = LoadOpts {
                programs: Some(vec![name.to_string()]),
                ..Default::default()
            };
            match rt.load_object_with(&obj, None, &opts) {
                Ok(l) => {
                    let p = l.prog(name).expect("loaded");
                    let tag = bpfvm::tag::tag_hex(&p.obj().tag);
                    if &tag == ktag {
                        equal += 1;
                    } else {
                        println!("{file} {name}: tag {tag}, kernel {ktag}");
                    }
                }
                Err(e) => println!("{file} {name}: bpfvm refuses: {e}"),
            }
        }
    }
    println!("tags equal: {equal}/{total} (programs with CO-RE relocations the kernel loaded); {skipped} in objects the kernel refused");
}
