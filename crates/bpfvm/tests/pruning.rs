//! State pruning against the kernel's: tests/fixtures/src/loop_prune.bpf.c,
//! nested bounded loops whose every inner iteration forks on an unknown
//! byte. Linux 6.18 accepts it after 670,719 processed insns (19,992
//! states); bpfvm refused it ("BPF program is too large") until a conditional jump
//! became a prune point and a path with a long jump history took a forced
//! checkpoint, as in the kernel. Where the host kernel can be asked, it is,
//! and the tags must be equal.

mod fixture_kernel;
use bpfvm::Runtime;
use fixture_kernel::{bpfvm_load, kernel_load};

const OBJECT: &str = "loop_prune.o";
const PROGRAM: &str = "scan";

#[test]
fn nested_loops_converge_below_the_insn_limit() {
    let rt = Runtime::with_cpus(1);
    let (verdict, tag) = bpfvm_load(&rt, OBJECT, PROGRAM);
    assert_eq!(verdict, Ok(()), "{OBJECT} {PROGRAM}");
    assert!(tag.is_some(), "{OBJECT} {PROGRAM}: no tag");
}

#[test]
fn host_kernel_agrees() {
    if let Some(why) = bpfvm_testsupport::bpftool_unavailable() {
        eprintln!("skipping the host kernel comparison: {why}");
        return;
    }
    let rt = Runtime::with_cpus(1);
    let kernel =
        kernel_load(OBJECT).unwrap_or_else(|e| panic!("the host kernel refused {OBJECT}: {e:?}"));
    let ktag = kernel
        .iter()
        .find(|(n, _, _)| n == PROGRAM)
        .map(|(_, t, _)| t.clone());
    let (verdict, tag) = bpfvm_load(&rt, OBJECT, PROGRAM);
    assert_eq!(
        verdict,
        Ok(()),
        "the kernel accepts {PROGRAM}, bpfvm refuses it"
    );
    assert_eq!(tag.map(|(t, _)| t), ktag, "{PROGRAM}: tags differ");
}
