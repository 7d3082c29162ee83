//! A map update that overwrites a referenced kptr field releases the object
//! it held, as the kernel's `bpf_obj_free_fields` runs the destructor: a
//! `struct bpf_cpumask` left in a map by tests/fixtures/src/cpumask.bpf.c's
//! `keep` is freed when user space or a program updates the value. Alone in
//! its test binary: the count of live masks is process-wide.

use bpfvm::{Object, Runtime, RuntimeConfig};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/obj")
        .join(name)
}

#[test]
fn overwritten_kptrs_are_released() {
    let rt = Runtime::with_config(RuntimeConfig::new().cpus(2));
    let obj = Object::open(fixture("cpumask.o")).expect("fixture object");
    let l = rt.load_object(&obj, None).expect("load");
    let run = |name: &str| {
        rt.run_context(l.prog(name).unwrap(), &[0; 8])
            .unwrap()
            .retval
    };
    let map = l.map("slots").expect("map");
    let zero = 0u32.to_le_bytes();
    let base = bpfvm::live_cpumasks();
    assert_eq!(run("keep"), 1);
    assert_eq!(bpfvm::live_cpumasks(), base + 1, "the kept mask");
    // keep again: the program releases the mask it swapped out
    assert_eq!(run("keep"), 1);
    assert_eq!(bpfvm::live_cpumasks(), base + 1, "one mask in the map");
    rt.map_update_elem(map, &zero, &[0; 16], 0).unwrap();
    assert_eq!(bpfvm::live_cpumasks(), base, "released by the user update");
    assert_eq!(run("keep"), 1);
    // an update that fails (BPF_NOEXIST on an array) releases nothing
    assert!(rt.map_update_elem(map, &zero, &[0; 16], 1).is_err());
    assert_eq!(bpfvm::live_cpumasks(), base + 1, "a failed update keeps it");
    rt.map_update_elem(map, &zero, &[0; 16], 0).unwrap();
    assert_eq!(bpfvm::live_cpumasks(), base);
}
