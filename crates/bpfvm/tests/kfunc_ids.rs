//! Kfunc calls carry the kernel BTF ids the loader links them against, and a
//! program's tag is taken over them: the object loader links against its CO-RE
//! target (the host's `/sys/kernel/btf/vmlinux` by default), as libbpf does, so
//! bpfvm's tags are the host kernel's. The fixture is
//! tests/fixtures/src/kfunc_ids.bpf.c: kfunc calls, and `bpf_ksym_exists`-style
//! checks, which libbpf writes as `BPF_PSEUDO_BTF_ID` loads of the kfunc's id.

mod fixture_kernel;

use bpfvm::btf::{Btf, BtfParam, BtfType, BtfTypeData};
use bpfvm::isa::consts::{BPF_PSEUDO_BTF_ID, BPF_PSEUDO_KFUNC_CALL};
use bpfvm::isa::Insn;
use bpfvm::{
    BpfCmd, BpfError, BpfReply, LoadOpts, Object, ProgLoadAttr, ProgType, Runtime, TargetBtf,
    TestRunAttr,
};
use fixture_kernel::{bpfvm_load, fixture, kernel_load};
use std::sync::Arc;

const OBJECT: &str = "kfunc_ids.o";

fn ty(name_off: u32, size_or_type: u32, data: BtfTypeData) -> BtfType {
    BtfType {
        name_off,
        kind_flag: false,
        size_or_type,
        func_linkage: 0,
        data,
    }
}

/// A kernel BTF whose kfuncs sit at ids no bpfvm kernel BTF gives them: `pad`
/// INT types first, then `void (void)` and a FUNC per name.
fn target_btf(pad: u32, funcs: &[&str]) -> (Arc<Btf>, Vec<u32>) {
    let mut b = Btf::new();
    let int = b.add_string("int");
    for _ in 0..pad {
        b.add_type(ty(
            int,
            4,
            BtfTypeData::Int {
                encoding: 0,
                offset: 0,
                bits: 32,
            },
        ));
    }
    let proto = b.add_type(ty(0, 0, BtfTypeData::FuncProto(Vec::<BtfParam>::new())));
    let ids = funcs
        .iter()
        .map(|f| {
            let name = b.add_string(f);
            b.add_type(ty(name, proto, BtfTypeData::Func))
        })
        .collect();
    (Arc::new(b), ids)
}

fn load(rt: &Runtime, target: TargetBtf) -> bpfvm::LoadedObject {
    let obj = Object::open(fixture(OBJECT)).expect("fixture object");
    let opts = LoadOpts {
        target_btf: Some(target),
        ..Default::default()
    };
    rt.load_object_with(&obj, None, &opts)
        .unwrap_or_else(|e| panic!("{OBJECT}: {e}"))
}

fn run(rt: &Runtime, loaded: &bpfvm::LoadedObject, prog: &str) -> u32 {
    let id = loaded.prog(prog).expect(prog).id();
    match rt.bpf(BpfCmd::ProgTestRun(TestRunAttr {
        prog_id: id,
        data_in: vec![0; 64],
        repeat: 1,
        ..Default::default()
    })) {
        Ok(BpfReply::TestRun(r)) => r.retval,
        other => panic!("{prog}: test run failed: {other:?}"),
    }
}

fn tag(loaded: &bpfvm::LoadedObject, prog: &str) -> [u8; 8] {
    loaded.prog(prog).expect(prog).obj().tag
}

/// The instructions libbpf submits for `prog` when the kfuncs have `ids` (by
/// name): calls get `BPF_PSEUDO_KFUNC_CALL` and the id, address loads
/// `BPF_PSEUDO_BTF_ID` and the id with the second imm 0 (vmlinux).
fn as_libbpf_links(prog: &str, ids: &[(&str, u32)]) -> Vec<Insn> {
    let obj = Object::open(fixture(OBJECT)).expect("fixture object");
    let p = obj.programs.iter().find(|p| p.name == prog).expect(prog);
    let mut insns = p.insns.clone();
    for r in &p.extern_refs {
        let (_, id) = ids.iter().find(|(n, _)| *n == r.name).expect("extern");
        let at = r.insn_idx;
        if insns[at].code == 0x85 {
            insns[at].src_reg = BPF_PSEUDO_KFUNC_CALL;
            insns[at].off = 0;
        } else {
            insns[at].src_reg = BPF_PSEUDO_BTF_ID;
            insns[at + 1].imm = 0;
        }
        insns[at].imm = *id as i32;
    }
    insns
}

#[test]
fn kfunc_ids_are_the_target_btfs() {
    let rt = Runtime::with_cpus(1);
    let names = ["bpf_rcu_read_lock", "bpf_rcu_read_unlock"];
    let (target, ids) = target_btf(40_000, &names);
    let linked = load(&rt, TargetBtf::Btf(target));
    let own = load(&rt, TargetBtf::Object);
    for (prog, retval) in [("kfunc_ids", 1), ("kfunc_calls", 2)] {
        // Bound to bpfvm's kfuncs by name, they run as with bpfvm's own ids.
        assert_eq!(run(&rt, &linked, prog), retval, "{prog}");
        assert_eq!(run(&rt, &own, prog), retval, "{prog}");
        let by_name: Vec<(&str, u32)> = names.iter().copied().zip(ids.iter().copied()).collect();
        assert_eq!(
            tag(&linked, prog),
            bpfvm::tag::prog_tag(&as_libbpf_links(prog, &by_name)),
            "{prog}: the tag is taken over the target's ids"
        );
        let own_ids: Vec<(&str, u32)> = names
            .iter()
            .map(|n| (*n, bpfvm::kfuncs::resolve(n).unwrap() as u32))
            .collect();
        assert_eq!(
            tag(&own, prog),
            bpfvm::tag::prog_tag(&as_libbpf_links(prog, &own_ids)),
            "{prog}: without a kernel target, bpfvm's own ids"
        );
    }
    // The weak kfunc nobody has stays unresolved, its call dead.
    assert_eq!(run(&rt, &linked, "kfunc_missing"), 3);
}

#[test]
fn a_target_lacking_a_kfunc_bpfvm_has_keeps_bpfvms_ids() {
    // libbpf would poison the call of a kfunc the target lacks; bpfvm has it,
    // so that program keeps bpfvm's own ids and runs.
    let rt = Runtime::with_cpus(1);
    let (target, _) = target_btf(10, &["bpf_rcu_read_lock"]);
    let linked = load(&rt, TargetBtf::Btf(target));
    let own = load(&rt, TargetBtf::Object);
    assert_eq!(run(&rt, &linked, "kfunc_calls"), 2);
    assert_eq!(tag(&linked, "kfunc_calls"), tag(&own, "kfunc_calls"));
}

#[test]
fn ids_that_name_no_kfunc_are_refused_with_the_id() {
    let rt = Runtime::with_cpus(1);
    let (target, ids) = target_btf(
        3,
        &[
            "bpf_rcu_read_lock",
            "bpf_rcu_read_unlock",
            "not_a_kfunc_of_bpfvm",
        ],
    );
    // lock; call imm; r0 = 0; exit
    let call = |imm: u32| ProgLoadAttr {
        prog_type: ProgType::Xdp,
        insns: vec![
            Insn::new(0x85, 0, BPF_PSEUDO_KFUNC_CALL, 0, ids[0] as i32),
            Insn::new(0x85, 0, BPF_PSEUDO_KFUNC_CALL, 0, imm as i32),
            Insn::new(0xb7, 0, 0, 0, 0),
            Insn::new(0x95, 0, 0, 0, 0),
        ],
        license: "GPL".into(),
        name: "k".into(),
        vmlinux_btf: Some(target.clone()),
        ..Default::default()
    };
    if let Err(e) = rt.load_program(call(ids[1])) {
        panic!("lock; unlock: {e}");
    }
    for (imm, want) in [
        (1, "insn 1: kernel btf_id 1 is not a function"),
        (999_999, "insn 1: kernel btf_id 999999 is not a function"),
        (
            ids[2],
            "insn 1: kernel function not_a_kfunc_of_bpfvm: kfunc not found",
        ),
    ] {
        let e = rt.load_program(call(imm)).expect_err("refused");
        assert!(matches!(e, BpfError::ProgInvalid { .. }), "{e:?}");
        assert!(e.to_string().contains(want), "{e}");
    }
}

#[test]
fn tags_equal_the_host_kernels() {
    if let Some(why) = bpfvm_testsupport::bpftool_unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    if std::fs::metadata(bpfvm::HOST_VMLINUX).is_err() {
        eprintln!("skipping: no {}", bpfvm::HOST_VMLINUX);
        return;
    }
    let kernel = match kernel_load(OBJECT) {
        Ok(k) => k,
        Err((errno, text)) => {
            eprintln!("skipping: the host kernel refused {OBJECT} (errno {errno}): {text}");
            return;
        }
    };
    let rt = Runtime::with_cpus(1);
    // kfunc_missing is left out: libbpf before 1.2 (Debian 12's bpftool) and
    // after write the dead call of a missing weak kfunc differently.
    for prog in ["kfunc_ids", "kfunc_calls"] {
        let (verdict, ours) = bpfvm_load(&rt, OBJECT, prog);
        assert!(verdict.is_ok(), "{prog}: {verdict:?}");
        let (_, ktag, _) = kernel
            .iter()
            .find(|(n, _, _)| n == prog)
            .unwrap_or_else(|| panic!("{prog} not pinned by bpftool"));
        assert_eq!(&ours.expect("tag").0, ktag, "{prog}: tag");
    }
}
