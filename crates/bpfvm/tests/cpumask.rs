//! `struct bpf_cpumask` objects and `bpf_kptr_xchg`: the syscall programs of
//! tests/fixtures/src/cpumask.bpf.c, run on bpfvm's interpreter and JIT,
//! give what Linux 6.18 gave (`BPF_PROG_TEST_RUN`), and where the host
//! kernel can be asked it is asked again.

mod fixture_kernel;
use bpfvm::{Object, Runtime, RuntimeConfig};
use fixture_kernel::fixture;

/// Program, and what the host kernel returned (decimal digits, one per
/// check, as the program packs them).
const CASES: &[(&str, u32)] = &[
    // empty; test 0 in a; first of b; first zero of a; a, b intersect;
    // weight of a|b; b subset of a; test-and-clear, test-and-set
    ("bits", 1_111_102_110),
    // and non-empty, its first; first and weight of xor; and of empty;
    // copy equal, not equal to b
    ("combine", 11_101_010),
    // xchg gave NULL; own reference still set; read under RCU; taken out
    // with its CPU; the field is NULL again
    ("stored", 111_311),
];

fn bpfvm_retvals(jit: bool) -> Vec<u32> {
    let rt = Runtime::with_config(RuntimeConfig::new().cpus(2).jit(jit));
    let obj = Object::open(fixture("cpumask.o")).expect("fixture object");
    let l = rt
        .load_object(&obj, None)
        .unwrap_or_else(|e| panic!("{e}: {:?}", e.verifier_log()));
    CASES
        .iter()
        .map(|(name, _)| {
            let p = l.prog(name).expect("program");
            rt.run_context(p, &[0; 8]).expect("run").retval
        })
        .collect()
}

#[test]
fn cpumask_programs_return_what_the_kernel_returns() {
    let want: Vec<u32> = CASES.iter().map(|c| c.1).collect();
    assert_eq!(bpfvm_retvals(false), want, "interpreter");
    assert_eq!(bpfvm_retvals(true), want, "JIT");
}

/// keep, lookup, peek, update with a made-up pointer, peek: the field's bytes
/// as user space reads them, then what `peek` returns before and after.
const USER_VIEW: ([u8; 8], u32, u32) = ([0; 8], 2, 1);

fn value_with_pointer() -> Vec<u8> {
    let mut v = vec![0u8; 16];
    v[8..].copy_from_slice(&0x4141_4141_4141_4141u64.to_le_bytes());
    v
}

#[test]
fn user_space_never_sees_or_writes_kptrs() {
    let rt = Runtime::with_config(RuntimeConfig::new().cpus(2));
    let obj = Object::open(fixture("cpumask.o")).expect("fixture object");
    let l = rt.load_object(&obj, None).expect("load");
    let run = |name: &str| {
        rt.run_context(l.prog(name).unwrap(), &[0; 8])
            .unwrap()
            .retval
    };
    let map = l.map("slots").expect("map");
    assert_eq!(run("keep"), 1);
    let v = rt.map_lookup(map, &0u32.to_le_bytes()).unwrap();
    let field: [u8; 8] = v[8..16].try_into().unwrap();
    let before = run("peek");
    rt.map_update_elem(map, &0u32.to_le_bytes(), &value_with_pointer(), 0)
        .unwrap();
    let after = run("peek");
    assert_eq!((field, before, after), USER_VIEW);
}

#[test]
fn live_kernel_agrees() {
    use bpfvm_testsupport::sys::{obj_get, test_run, TestRun};
    if let Some(why) = bpfvm_testsupport::bpftool_unavailable() {
        eprintln!("skipping the host kernel comparison: {why}");
        return;
    }
    let dir = format!("/sys/fs/bpf/bpfvm_cpumask_{}", std::process::id());
    let load = std::process::Command::new("bpftool")
        .args(["prog", "loadall"])
        .arg(fixture("cpumask.o"))
        .arg(&dir)
        .output()
        .expect("bpftool");
    assert!(
        load.status.success(),
        "the host kernel refused cpumask.o: {}",
        String::from_utf8_lossy(&load.stderr)
    );
    // A syscall program's test run takes only a context (repeat 0).
    let got: Vec<u32> = CASES
        .iter()
        .map(|(name, _)| {
            let fd = obj_get(std::path::Path::new(&format!("{dir}/{name}"))).expect("pinned");
            let mut run = TestRun {
                ctx_in: vec![0; 8],
                ..Default::default()
            };
            test_run(&fd, &mut run).expect("test run").retval
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let want: Vec<u32> = CASES.iter().map(|c| c.1).collect();
    assert_eq!(got, want, "the host kernel now");
}

#[test]
fn live_kernel_user_view_agrees() {
    use bpfvm_testsupport::sys::{map_lookup, map_update, obj_get, test_run, TestRun};
    use std::path::Path;
    if let Some(why) = bpfvm_testsupport::bpftool_unavailable() {
        eprintln!("skipping the host kernel comparison: {why}");
        return;
    }
    let dir = format!("/sys/fs/bpf/bpfvm_cpumask_u_{}", std::process::id());
    let maps = format!("{dir}_maps");
    std::fs::create_dir_all(&maps).expect("bpffs dir");
    let load = std::process::Command::new("bpftool")
        .args(["prog", "loadall"])
        .arg(fixture("cpumask.o"))
        .arg(&dir)
        .arg("pinmaps")
        .arg(&maps)
        .output()
        .expect("bpftool");
    let result = (|| {
        if !load.status.success() {
            return Err(String::from_utf8_lossy(&load.stderr).into_owned());
        }
        let run = |name: &str| {
            let fd = obj_get(Path::new(&format!("{dir}/{name}"))).expect("pinned");
            let mut r = TestRun {
                ctx_in: vec![0; 8],
                ..Default::default()
            };
            test_run(&fd, &mut r).expect("test run").retval
        };
        let map = obj_get(Path::new(&format!("{maps}/slots"))).expect("pinned map");
        assert_eq!(run("keep"), 1);
        let mut v = vec![0u8; 16];
        map_lookup(&map, &0u32.to_le_bytes(), &mut v).expect("lookup");
        let field: [u8; 8] = v[8..16].try_into().unwrap();
        let before = run("peek");
        map_update(&map, &0u32.to_le_bytes(), &value_with_pointer(), 0).expect("update");
        let after = run("peek");
        Ok((field, before, after))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&maps);
    assert_eq!(result, Ok(USER_VIEW), "the host kernel now");
}
