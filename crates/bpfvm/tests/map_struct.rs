//! A map's kernel struct read through the map pointer:
//! tests/fixtures/src/map_struct.bpf.c, run on bpfvm's interpreter and JIT
//! and compared with what Linux 6.18 returned (`bpftool prog run`), and with
//! the host kernel again where it can be asked. The reads are CO-RE
//! relocated and checked against the host's `struct bpf_map` (the target
//! BTF), so without /sys/kernel/btf/vmlinux the programs are refused and the
//! test says so.

mod fixture_kernel;
use bpfvm::{Object, Runtime, RuntimeConfig};
use fixture_kernel::{bpfvm_retval, fixture, kernel_retvals};

const PROGS: &[&str] = &["array_fields", "hash_fields", "hash_flags"];
/// max_entries | key_size << 8 | value_size << 16 | map_type << 24, and the
/// hash map's flags (BPF_F_NO_PREALLOC).
const LINUX_6_18: &[u32] = &[
    7 | 4 << 8 | 24 << 16 | 2 << 24,
    33 | 8 << 8 | 4 << 16 | 1 << 24,
    1,
];

fn host_btf() -> bool {
    std::path::Path::new("/sys/kernel/btf/vmlinux").exists()
}

fn retvals(jit: bool) -> Vec<u32> {
    let rt = Runtime::with_config(RuntimeConfig::new().cpus(1).jit(jit));
    let obj = Object::open(fixture("map_struct.o")).expect("map_struct.o");
    PROGS
        .iter()
        .map(|p| bpfvm_retval(&rt, &obj, p, &[0; 64]).unwrap_or_else(|e| panic!("{p}: {e}")))
        .collect()
}

#[test]
fn fields_read_as_the_kernel_lays_them_out() {
    if !host_btf() {
        eprintln!("skipped: no /sys/kernel/btf/vmlinux to check the reads against");
        return;
    }
    assert_eq!(retvals(false), LINUX_6_18, "interpreter");
    assert_eq!(retvals(true), LINUX_6_18, "JIT");
}

#[test]
fn host_kernel_agrees() {
    match kernel_retvals(&fixture("map_struct.o"), &[0; 64], PROGS) {
        Ok(got) => {
            let want: Vec<Option<u32>> = LINUX_6_18.iter().map(|v| Some(*v)).collect();
            assert_eq!(got, want);
        }
        Err(why) => eprintln!("skipped: {why}"),
    }
}
