//! The host kernel as the oracle: creating the same maps with bpftool must give the same
//! errno and the same `bytes_memlock`. Skips (with a message) unless running as root with
//! bpftool and a mounted bpffs.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use bpfvm_maps::*;

fn kernel_available() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let bpftool = Command::new("bpftool")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    let bpffs = std::path::Path::new("/sys/fs/bpf").is_dir();
    if !(root && bpftool && bpffs) {
        eprintln!("skipping kernel oracle: needs root, bpftool and /sys/fs/bpf (root={root} bpftool={bpftool} bpffs={bpffs})");
        return false;
    }
    // Probe: the kernel must accept a trivial map.
    match kernel_create(&MapAttr::new(MapType::Array, 4, 4, 1)) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipping kernel oracle: the host kernel refuses BPF maps ({e})");
            false
        }
    }
}

/// The number of possible CPUs (what the kernel sizes per-CPU maps by).
fn possible_cpus() -> usize {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap_or_default();
    s.trim()
        .split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap_or(0) + 1 - a.parse::<usize>().unwrap_or(0),
            None => usize::from(!r.is_empty()),
        })
        .sum::<usize>()
        .max(1)
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Create the map in the kernel; Ok(bytes_memlock) or Err(errno).
fn kernel_create(attr: &MapAttr) -> Result<u64, i32> {
    let path = format!(
        "/sys/fs/bpf/bpfvm_maps_test_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let out = Command::new("bpftool")
        .args(["map", "create", &path, "type", attr.map_type.name()])
        .args([
            "key",
            &attr.key_size.to_string(),
            "value",
            &attr.value_size.to_string(),
        ])
        .args(["entries", &attr.max_entries.to_string(), "name", "oracle"])
        .args(["flags", &attr.map_flags.to_string()])
        .output()
        .expect("run bpftool");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let errno = [
            ("Invalid argument", EINVAL),
            ("Argument list too long", E2BIG),
            ("Unknown error 524", ENOTSUPP),
            ("Operation not supported", EOPNOTSUPP),
            ("Cannot allocate memory", ENOMEM),
            ("Operation not permitted", EPERM),
        ]
        .iter()
        .find(|(m, _)| err.contains(m))
        .map(|e| e.1)
        .unwrap_or_else(|| panic!("unexpected bpftool error: {err}"));
        return Err(errno);
    }
    let show = Command::new("bpftool")
        .args(["-j", "map", "show", "pinned", &path])
        .output()
        .expect("run bpftool");
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&show.stdout);
    let memlock = text
        .split("\"bytes_memlock\":")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no bytes_memlock in {text}"));
    Ok(memlock)
}

fn ours(attr: &MapAttr) -> Result<u64, i32> {
    create_map(attr, possible_cpus())
        .map(|m| m.memory_usage())
        .map_err(|e| e.errno())
}

fn a(t: MapType, k: u32, v: u32, n: u32, flags: u32) -> MapAttr {
    MapAttr::new(t, k, v, n).with_flags(flags)
}

#[test]
fn create_matches_the_kernel() {
    if !kernel_available() {
        return;
    }
    use MapType::*;
    let cases = [
        a(Array, 4, 4, 1, 0),
        a(Array, 4, 12, 100, 0),
        a(Array, 4, 8, 10, BPF_F_MMAPABLE),
        a(Array, 4, 8, 10, BPF_F_RDONLY_PROG),
        a(Array, 8, 4, 1, 0),
        a(Array, 4, 0, 1, 0),
        a(Array, 4, 4, 0, 0),
        a(Array, 4, 4, 1, BPF_F_NO_PREALLOC),
        a(Array, 4, 4, 1, BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG),
        a(PercpuArray, 4, 4, 1, 0),
        a(PercpuArray, 4, 12, 10, 0),
        a(PercpuArray, 4, 40000, 1, 0),
        a(PercpuArray, 4, 4, 1, BPF_F_MMAPABLE),
        a(ProgArray, 4, 4, 10, 0),
        a(ProgArray, 4, 8, 10, 0),
        a(Hash, 4, 4, 1, 0),
        a(Hash, 4, 8, 10, 0),
        a(Hash, 8, 12, 100, 0),
        a(Hash, 600, 4, 1, 0),
        a(Hash, 4, 4, 100, BPF_F_NO_PREALLOC),
        a(Hash, 0, 4, 1, 0),
        a(Hash, 4, 0, 1, 0),
        a(Hash, 4, 4, 1, BPF_F_NO_COMMON_LRU),
        a(Hash, 4, 4, 1, BPF_F_MMAPABLE),
        a(Hash, 4, 4 << 20, 1, 0),
        a(PercpuHash, 4, 4, 1, 0),
        a(PercpuHash, 4, 8, 10, 0),
        a(PercpuHash, 4, 40000, 1, 0),
        a(LruHash, 4, 4, 1, 0),
        a(LruHash, 4, 8, 10, 0),
        a(LruHash, 4, 8, 10, BPF_F_NO_PREALLOC),
        a(LruPercpuHash, 4, 8, 10, 0),
        a(LruHash, 4, 4, 3, BPF_F_NO_COMMON_LRU),
        a(LruPercpuHash, 4, 4, 1, BPF_F_NO_COMMON_LRU),
        a(Queue, 0, 4, 10, 0),
        a(Queue, 4, 4, 10, 0),
        a(Queue, 0, 0, 10, 0),
        a(Stack, 0, 8, 10, 0),
        a(Stack, 0, 8, 10, BPF_F_NO_PREALLOC),
        a(LpmTrie, 8, 8, 10, BPF_F_NO_PREALLOC),
        a(LpmTrie, 8, 8, 10, 0),
        a(LpmTrie, 4, 8, 10, BPF_F_NO_PREALLOC),
        a(LpmTrie, 261, 8, 10, BPF_F_NO_PREALLOC),
        a(Devmap, 4, 8, 10, 0),
        a(Devmap, 4, 4, 10, 0),
        a(Devmap, 4, 6, 10, 0),
        a(DevmapHash, 4, 8, 10, 0),
        a(Cpumap, 4, 8, 2, 0),
        a(Cpumap, 4, 12, 2, 0),
        a(Ringbuf, 0, 0, 4096, 0),
        a(Ringbuf, 0, 0, 8192, 0),
        a(Ringbuf, 0, 0, 12288, 0),
        a(Ringbuf, 0, 0, 2048, 0),
        a(Ringbuf, 4, 0, 4096, 0),
        a(PerfEventArray, 4, 4, 2, 0),
        a(PerfEventArray, 4, 4, 16, BPF_F_PRESERVE_ELEMS),
        a(PerfEventArray, 4, 8, 2, 0),
        a(PerfEventArray, 8, 4, 2, 0),
        a(PerfEventArray, 4, 4, 0, 0),
        a(PerfEventArray, 4, 4, 2, BPF_F_NO_PREALLOC),
        a(StackTrace, 4, 8, 16, 0),
        a(StackTrace, 4, 1016, 16, 0),
        a(StackTrace, 4, 1024, 16, 0),
        a(StackTrace, 4, 12, 16, 0),
        a(StackTrace, 4, 0, 16, 0),
        a(StackTrace, 8, 8, 16, 0),
        a(StackTrace, 4, 8, 0, 0),
        a(StackTrace, 4, 8, 100, 0),
        a(StackTrace, 4, 64, 10, BPF_F_STACK_BUILD_ID),
        a(StackTrace, 4, 48, 10, BPF_F_STACK_BUILD_ID),
        a(StackTrace, 4, 8, 10, BPF_F_NO_PREALLOC),
        a(CgroupArray, 4, 4, 2, 0),
        a(CgroupArray, 4, 4, 100, 0),
        a(CgroupArray, 4, 8, 2, 0),
        a(CgroupArray, 4, 4, 2, BPF_F_PRESERVE_ELEMS),
        a(Xskmap, 4, 4, 2, 0),
        a(Xskmap, 4, 4, 64, 0),
        a(Xskmap, 4, 8, 2, 0),
        a(Xskmap, 8, 4, 2, 0),
        a(Xskmap, 4, 4, 2, BPF_F_RDONLY_PROG),
        a(BloomFilter, 0, 4, 100, 0),
        a(BloomFilter, 0, 8, 1000, 0),
        a(BloomFilter, 0, 16, 7, BPF_F_ZERO_SEED),
        a(BloomFilter, 4, 4, 100, 0),
        a(BloomFilter, 0, 0, 100, 0),
        a(BloomFilter, 0, 4, 0, 0),
        a(BloomFilter, 0, 4, 100, BPF_F_NO_PREALLOC),
        a(Sockmap, 4, 4, 10, 0),
        a(Sockmap, 4, 8, 10, 0),
        a(Sockmap, 4, 12, 10, 0),
        a(Sockmap, 8, 8, 10, 0),
        a(Sockhash, 4, 4, 10, 0),
        a(Sockhash, 8, 8, 100, 0),
        a(Sockhash, 4, 12, 10, 0),
        a(Sockhash, 0, 8, 10, 0),
        a(SkStorage, 4, 8, 0, BPF_F_NO_PREALLOC),
        a(ReuseportSockarray, 4, 4, 2, 0),
        a(ReuseportSockarray, 4, 8, 10, 0),
        a(ReuseportSockarray, 4, 12, 2, 0),
        a(ReuseportSockarray, 8, 8, 2, 0),
        a(ReuseportSockarray, 4, 8, 0, 0),
        a(CgroupStorage, 8, 8, 0, 0),
        a(CgroupStorage, 16, 64, 0, 0),
        a(CgroupStorage, 12, 8, 0, 0),
        a(CgroupStorage, 8, 0, 0, 0),
        a(CgroupStorage, 8, 8, 1, 0),
        a(CgroupStorage, 8, 8192, 0, 0),
        a(CgroupStorage, 8, 65407, 0, 0),
        a(CgroupStorage, 8, 65408, 0, 0),
        a(PercpuCgroupStorage, 8, 32768, 0, 0),
        a(PercpuCgroupStorage, 8, 32769, 0, 0),
        a(PercpuCgroupStorage, 8, 16, 0, 0),
        a(PercpuCgroupStorage, 16, 8, 0, 0),
        a(PercpuCgroupStorage, 12, 8, 0, 0),
    ];
    let mut mismatches = Vec::new();
    for attr in &cases {
        let (k, o) = (kernel_create(attr), ours(attr));
        if k != o {
            mismatches.push(format!(
                "{} key {} value {} entries {} flags {:#x}: kernel {k:?}, bpfvm {o:?}",
                attr.map_type, attr.key_size, attr.value_size, attr.max_entries, attr.map_flags
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "differences from the kernel:\n{}",
        mismatches.join("\n")
    );
}

/// Run bpftool, panicking with its stderr on failure.
fn bpftool(args: &[String]) -> String {
    let out = Command::new("bpftool")
        .args(args)
        .output()
        .expect("run bpftool");
    assert!(
        out.status.success(),
        "bpftool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn hex_bytes(b: &[u8]) -> Vec<String> {
    b.iter().map(|x| format!("0x{x:02x}")).collect()
}

#[test]
fn lpm_walk_order_matches_the_kernel() {
    if !kernel_available() {
        return;
    }
    let path = format!("/sys/fs/bpf/bpfvm_maps_test_lpm_{}", std::process::id());
    let _pin = PinGuard(path.clone());
    let s = |x: &str| x.to_string();
    bpftool(&[
        s("map"),
        s("create"),
        path.clone(),
        s("type"),
        s("lpm_trie"),
        s("key"),
        s("8"),
        s("value"),
        s("4"),
        s("entries"),
        s("64"),
        s("name"),
        s("oracle"),
        s("flags"),
        s("1"),
    ]);
    let ours = create_map(
        &MapAttr::new(MapType::LpmTrie, 8, 4, 64).with_flags(BPF_F_NO_PREALLOC),
        2,
    )
    .unwrap();
    let mut seed = 0x9e37_79b9u32;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for i in 0..40u32 {
        let plen = [0, 1, 7, 8, 9, 12, 16, 20, 24, 31, 32][(rnd() % 11) as usize];
        // Few distinct high bytes so that prefixes nest.
        let addr = (rnd() & 0x0303_ffff) | 0x0a00_0000;
        let mut key = [0u8; 8];
        key[..4].copy_from_slice(&(plen as u32).to_ne_bytes());
        key[4..].copy_from_slice(&addr.to_be_bytes());
        ours.update_user(&key, &i.to_ne_bytes(), BPF_ANY).unwrap();
        let mut args = vec![s("map"), s("update"), s("pinned"), path.clone(), s("key")];
        args.extend(hex_bytes(&key));
        args.push(s("value"));
        args.extend(hex_bytes(&i.to_ne_bytes()));
        bpftool(&args);
    }
    let dump = bpftool(&[s("-j"), s("map"), s("dump"), s("pinned"), path.clone()]);
    let _ = std::fs::remove_file(&path);
    // Keys in the kernel's get_next_key order, as hex strings.
    let kernel_keys: Vec<String> = dump
        .split("\"key\":[")
        .skip(1)
        .map(|chunk| chunk.split(']').next().unwrap_or("").replace('"', ""))
        .collect();
    let our_keys: Vec<String> = common::keys(ours.as_ref())
        .iter()
        .map(|k| hex_bytes(k).join(","))
        .collect();
    assert!(
        kernel_keys.len() > 20,
        "too few distinct prefixes: {}",
        kernel_keys.len()
    );
    assert_eq!(our_keys, kernel_keys);
}

/// One user-space operation, run on both the kernel map (through bpftool) and ours.
#[derive(Debug, Clone)]
enum Op {
    Update(Vec<u8>, Vec<u8>, u64),
    Lookup(Vec<u8>),
    Delete(Vec<u8>),
    Push(Vec<u8>),
    Pop,
    Freeze,
}

/// `vs`: value_size; bpftool takes one value for per-CPU maps and copies it to every CPU.
fn kernel_op(path: &str, vs: usize, op: &Op) -> Result<(), i32> {
    let mut args = vec!["map".to_string()];
    let flag = |f: u64| match f {
        BPF_NOEXIST => "noexist",
        BPF_EXIST => "exist",
        _ => "any",
    };
    match op {
        Op::Update(k, v, f) => {
            args.extend(["update", "pinned", path, "key"].map(String::from));
            args.extend(hex_bytes(k));
            args.push("value".into());
            args.extend(hex_bytes(&v[..vs.min(v.len())]));
            args.push(flag(*f).into());
        }
        Op::Delete(k) => {
            args.extend(["delete", "pinned", path, "key"].map(String::from));
            args.extend(hex_bytes(k));
        }
        Op::Lookup(k) => {
            args.extend(["lookup", "pinned", path, "key"].map(String::from));
            args.extend(hex_bytes(k));
        }
        Op::Push(v) => {
            args.extend(["push", "pinned", path, "value"].map(String::from));
            args.extend(hex_bytes(v));
        }
        Op::Pop => args.extend(["pop", "pinned", path].map(String::from)),
        Op::Freeze => args.extend(["freeze", "pinned", path].map(String::from)),
    }
    let out = Command::new("bpftool")
        .args(&args)
        .output()
        .expect("run bpftool");
    if out.status.success() {
        return Ok(());
    }
    // bpftool prints some errors ("empty map") on stdout.
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let table = [
        ("No such file or directory", ENOENT),
        ("empty map", ENOENT),
        ("Not found", ENOENT),
        ("File exists", EEXIST),
        ("Argument list too long", E2BIG),
        ("Invalid argument", EINVAL),
        ("No space left on device", ENOSPC),
        ("Operation not permitted", EPERM),
        ("Device or resource busy", EBUSY),
        ("No such device", ENODEV),
        ("Value too large", EOVERFLOW),
        ("Unknown error 524", ENOTSUPP),
        ("Operation not supported", EOPNOTSUPP),
        ("Bad file descriptor", EBADF),
        ("Socket operation on non-socket", ENOTSOCK),
    ];
    Err(table
        .iter()
        .find(|(m, _)| err.contains(m))
        .map(|e| e.1)
        .unwrap_or_else(|| panic!("unexpected bpftool error for {op:?}: {err}")))
}

fn our_op(m: &dyn MapOps, op: &Op) -> Result<(), i32> {
    let r = match op {
        Op::Update(k, v, f) => m.update_user(k, v, *f),
        Op::Delete(k) => m.delete_user(k),
        Op::Lookup(k) => {
            let mut out = vec![0u8; m.user_value_size()];
            m.lookup_user(k, &mut out, 0)
        }
        Op::Push(v) => m.update_user(&[], v, BPF_ANY),
        Op::Pop => {
            let mut out = vec![0u8; m.attr().value_size as usize];
            m.lookup_and_delete(None, &mut out, 0)
        }
        Op::Freeze => m.freeze(),
    };
    r.map_err(|e| e.errno())
}

fn k(v: u32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

fn lpm_key(plen: u32, a: [u8; 4]) -> Vec<u8> {
    let mut key = plen.to_ne_bytes().to_vec();
    key.extend_from_slice(&a);
    key
}

#[test]
fn operations_match_the_kernel() {
    if !kernel_available() {
        return;
    }
    use Op::*;
    let cases: Vec<(MapAttr, Vec<Op>)> = vec![
        (
            a(MapType::Array, 4, 4, 2, 0),
            vec![
                Update(k(0), k(1), BPF_ANY),
                Update(k(0), k(1), BPF_NOEXIST),
                Update(k(1), k(1), BPF_EXIST),
                Update(k(2), k(1), BPF_ANY),
                Delete(k(0)),
                Freeze,
                Update(k(0), k(1), BPF_ANY),
                Freeze,
            ],
        ),
        (
            a(MapType::Hash, 4, 4, 2, 0),
            vec![
                Update(k(1), k(1), BPF_EXIST),
                Update(k(1), k(1), BPF_NOEXIST),
                Update(k(1), k(2), BPF_NOEXIST),
                Update(k(2), k(2), BPF_ANY),
                Update(k(3), k(3), BPF_ANY),
                Update(k(2), k(3), BPF_ANY),
                Delete(k(3)),
                Delete(k(1)),
                Delete(k(1)),
                Update(k(3), k(3), BPF_ANY),
            ],
        ),
        (
            a(MapType::Hash, 4, 4, 2, BPF_F_NO_PREALLOC),
            vec![
                Update(k(1), k(1), BPF_ANY),
                Update(k(2), k(2), BPF_ANY),
                Update(k(3), k(3), BPF_ANY),
            ],
        ),
        (
            a(MapType::LruHash, 4, 4, 2, 0),
            vec![
                Update(k(1), k(1), BPF_ANY),
                Update(k(2), k(2), BPF_ANY),
                Update(k(3), k(3), BPF_ANY),
                Update(k(4), k(3), BPF_EXIST),
            ],
        ),
        (
            a(MapType::PercpuArray, 4, 4, 2, 0),
            vec![
                Update(k(0), vec![1; 8 * possible_cpus()], BPF_ANY),
                Update(k(0), vec![1; 8 * possible_cpus()], BPF_NOEXIST),
                Update(k(3), vec![1; 8 * possible_cpus()], BPF_ANY),
            ],
        ),
        (
            a(MapType::LpmTrie, 8, 4, 2, BPF_F_NO_PREALLOC),
            vec![
                Update(lpm_key(33, [1, 2, 3, 4]), k(0), BPF_ANY),
                Update(lpm_key(8, [1, 2, 3, 4]), k(0), BPF_EXIST),
                Update(lpm_key(8, [1, 2, 3, 4]), k(0), BPF_ANY),
                Update(lpm_key(8, [1, 9, 9, 9]), k(0), BPF_NOEXIST),
                Update(lpm_key(16, [1, 2, 3, 4]), k(0), BPF_ANY),
                Update(lpm_key(24, [1, 2, 3, 4]), k(0), BPF_ANY),
                Update(lpm_key(16, [1, 2, 0, 0]), k(5), BPF_ANY),
                Delete(lpm_key(12, [1, 2, 3, 4])),
                Delete(lpm_key(16, [1, 2, 3, 4])),
            ],
        ),
        (
            a(MapType::Queue, 0, 4, 2, 0),
            vec![
                Push(k(1)),
                Push(k(2)),
                Push(k(3)),
                Pop,
                Pop,
                Pop,
                Freeze,
                Push(k(1)),
            ],
        ),
        (
            a(MapType::Stack, 0, 4, 1, 0),
            vec![Push(k(1)), Push(k(2)), Pop, Pop],
        ),
        (
            a(MapType::Devmap, 4, 8, 4, 0),
            vec![
                Update(k(1), [k(1), k(0)].concat(), BPF_ANY),
                Update(k(1), [k(1), k(0)].concat(), BPF_NOEXIST),
                Update(k(4), [k(1), k(0)].concat(), BPF_ANY),
                Update(k(2), [k(0), k(0)].concat(), BPF_ANY),
                Delete(k(3)),
                Delete(k(9)),
            ],
        ),
        (
            a(MapType::PerfEventArray, 4, 4, 2, 0),
            vec![
                Lookup(k(0)),
                Update(k(0), k(1), BPF_ANY),
                Delete(k(0)),
                Delete(k(5)),
            ],
        ),
        (
            a(MapType::CgroupArray, 4, 4, 2, 0),
            vec![
                Lookup(k(1)),
                Update(k(1), k(1), BPF_ANY),
                Delete(k(1)),
                Delete(k(2)),
            ],
        ),
        (
            a(MapType::Xskmap, 4, 4, 2, 0),
            vec![
                Lookup(k(0)),
                Update(k(0), k(1), BPF_ANY),
                Delete(k(0)),
                Delete(k(5)),
            ],
        ),
        (
            a(MapType::StackTrace, 4, 8, 4, 0),
            vec![
                Lookup(k(0)),
                Update(k(0), vec![0; 8], BPF_ANY),
                Delete(k(0)),
            ],
        ),
        (
            a(MapType::Sockmap, 4, 4, 2, 0),
            vec![
                Lookup(k(0)),
                Update(k(0), k(1), BPF_ANY),
                Delete(k(0)),
                Delete(k(5)),
            ],
        ),
        (
            a(MapType::Sockmap, 4, 8, 2, 0),
            vec![
                Lookup(k(0)),
                Update(k(0), vec![1, 0, 0, 0, 0, 0, 0, 0], BPF_ANY),
            ],
        ),
        (
            a(MapType::ReuseportSockarray, 4, 8, 2, 0),
            vec![
                Lookup(k(0)),
                Update(k(0), vec![1, 0, 0, 0, 0, 0, 0, 0], BPF_ANY),
                Delete(k(0)),
            ],
        ),
        (
            a(MapType::ReuseportSockarray, 4, 4, 2, 0),
            vec![Lookup(k(0))],
        ),
        (
            a(MapType::Sockhash, 4, 4, 2, 0),
            vec![Lookup(k(0)), Update(k(0), k(1), BPF_ANY), Delete(k(0))],
        ),
        (
            a(MapType::CgroupStorage, 8, 8, 0, 0),
            vec![
                Lookup(vec![0; 8]),
                Update(vec![0; 8], vec![0; 8], BPF_ANY),
                Delete(vec![0; 8]),
            ],
        ),
        (
            a(MapType::BloomFilter, 0, 4, 100, 0),
            vec![Push(k(1)), Push(k(2)), Pop, Freeze, Push(k(3))],
        ),
        (
            a(MapType::Cpumap, 4, 8, 8, 0),
            vec![
                Update(k(1), [k(20000), k(0)].concat(), BPF_ANY),
                Update(k(7), [k(64), k(0)].concat(), BPF_ANY),
                Update(k(9), [k(64), k(0)].concat(), BPF_ANY),
                Update(k(1), [k(64), k(0)].concat(), BPF_NOEXIST),
                Delete(k(1)),
                Delete(k(8)),
            ],
        ),
    ];
    let mut mismatches = Vec::new();
    for (i, (attr, ops)) in cases.iter().enumerate() {
        let path = format!("/sys/fs/bpf/bpfvm_maps_test_ops_{}_{i}", std::process::id());
        let status = Command::new("bpftool")
            .args(["map", "create", &path, "type", attr.map_type.name()])
            .args([
                "key",
                &attr.key_size.to_string(),
                "value",
                &attr.value_size.to_string(),
            ])
            .args(["entries", &attr.max_entries.to_string(), "name", "oracle"])
            .args(["flags", &attr.map_flags.to_string()])
            .status()
            .expect("run bpftool");
        assert!(status.success(), "kernel refused {attr:?}");
        let _pin = PinGuard(path.clone());
        let ours = create_map(attr, possible_cpus()).unwrap();
        for op in ops {
            let (kr, or) = (
                kernel_op(&path, attr.value_size as usize, op),
                our_op(ours.as_ref(), op),
            );
            if kr != or {
                mismatches.push(format!(
                    "{}: {op:?}: kernel {kr:?}, bpfvm {or:?}",
                    attr.map_type
                ));
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    assert!(
        mismatches.is_empty(),
        "differences from the kernel:\n{}",
        mismatches.join("\n")
    );
}

/// Removes a pinned test map even when the test panics.
struct PinGuard(String);

impl Drop for PinGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
