//! What the tests that ask the host kernel through bpftool share.

use std::process::Command;

/// Why bpftool cannot ask the host kernel here (not root, no bpftool, no
/// bpffs at /sys/fs/bpf), or None when it can.
pub fn bpftool_unavailable() -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        return Some("not root".into());
    }
    if Command::new("bpftool")
        .arg("version")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        return Some("bpftool not found".into());
    }
    if !std::path::Path::new("/sys/fs/bpf").is_dir() {
        return Some("bpffs not mounted at /sys/fs/bpf".into());
    }
    None
}
