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
    // Every kind of enum bpf_core_relo_kind appears in the fixture.
    assert_eq!(kinds.len(), 13, "{kinds:?}");
    // task_struct.pid's relocated offset is the kernel's, read off its BTF.
    let ts = vmlinux
        .find_by_name_kind("task_struct", bpfvm_obj::btf::BtfKind::Struct)
        .expect("task_struct");
    let pid = vmlinux
        .type_by_id(ts)
        .unwrap()
        .members()
        .iter()
        .find(|m| vmlinux.str_at(m.name_off) == "pid")
        .expect("pid")
        .bits_offset
        / 8;
    let p = obj
        .programs
        .iter()
        .find(|p| p.name == "field_offset")
        .unwrap();
    let mut insns = p.insns.clone();
    let applied = relocate(&p.name, &mut insns, &p.core_relos, btf, &vmlinux, &index).unwrap();
    assert_eq!(applied[0].new_val, u64::from(pid), "{:?}", applied[0]);
    assert_eq!(insns[applied[0].insn_idx].imm as u32, pid);
}

/// Relocation records mangled every way a hostile object could (kinds,
/// type ids, access strings, instruction indices) never panic: each gives a
/// typed error, a poisoned instruction or a value.
#[test]
fn mangled_records_do_not_panic() {
    let obj = fixture("core_reloc.o");
    let btf = obj.btf.as_ref().expect("btf");
    let targets: Vec<(Btf, CoreTarget)> = {
        let mut v = vec![(btf.clone(), CoreTarget::identity())];
        let t = fixture("core_target.o").btf.expect("core_target btf");
        let i = CoreTarget::new(&t);
        v.push((t, i));
        v
    };
    let accesses = [
        "0", "0:0", "1:2:3", "0:99", "", ":", "0:-1", "4294967295", "0:4294967295:1", "x",
        "0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0",
        "0:6", "0:5", "0:0:15", "0:0:16",
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut ok, mut err) = (0, 0);
    for p in &obj.programs {
        for _ in 0..300 {
            let mut relos = p.core_relos.clone();
            for r in &mut relos {
                match next() % 5 {
                    0 => r.kind = CoreReloKind::from_raw((next() % 15) as u32),
                    1 => r.type_id = (next() % (u64::from(btf.nr_types()) + 3)) as u32,
                    2 => r.access_str = accesses[(next() % accesses.len() as u64) as usize].into(),
                    3 => r.insn_idx = (next() % (p.insns.len() as u64 + 3)) as u32,
                    _ => {}
                }
            }
            for (t, i) in &targets {
                let mut insns = p.insns.clone();
                match relocate(&p.name, &mut insns, &relos, btf, t, i) {
                    Ok(_) => ok += 1,
                    Err(e) => {
                        assert!(!e.to_string().is_empty());
                        err += 1;
                    }
                }
            }
        }
    }
    eprintln!("{ok} relocated, {err} refused");
    assert!(ok > 0 && err > 0);
}
