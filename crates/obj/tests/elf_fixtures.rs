//! What Object::parse makes of each fixture object (tests/fixtures/obj and
//! tests/data/elf): programs, types, maps, relocations, calls, line info.

use std::path::{Path, PathBuf};

use bpfvm_isa::consts::{
    BPF_PSEUDO_CALL, BPF_PSEUDO_FUNC, BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE,
};
use bpfvm_obj::btf::{BtfKind, BtfTypeData};
use bpfvm_obj::{
    internal_map_name, license_is_gpl_compatible, object_name, section_def, AttachType, MapKind,
    MapPinning, MapRelocKind, ObjErrorKind, Object, ProgType, Program, BPF_F_SLEEPABLE,
    BPF_F_XDP_HAS_FRAGS,
};

use bpfvm_isa::uapi::{BPF_F_MMAPABLE, BPF_F_RDONLY_PROG};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/obj")
        .join(name)
}

fn local(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/elf")
        .join(name)
}

fn open(path: PathBuf) -> Object {
    Object::open(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Where each BPF-to-BPF call or function address in `p` lands, as
/// `(insn, target insn)`.
fn call_targets(p: &Program) -> Vec<(usize, usize, u8)> {
    p.insns
        .iter()
        .enumerate()
        .filter(|(_, i)| {
            (i.code == 0x85 && i.src_reg == BPF_PSEUDO_CALL)
                || (i.code == 0x18 && i.src_reg == BPF_PSEUDO_FUNC)
        })
        .map(|(k, i)| (k, (k as i64 + i64::from(i.imm) + 1) as usize, i.src_reg))
        .collect()
}

fn func_start(p: &Program, name: &str) -> usize {
    p.funcs
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{}: no function {name}", p.name))
        .insn_off
}

#[test]
fn hello() {
    let o = open(fixture("hello.o"));
    assert_eq!(o.name, "hello");
    assert_eq!(o.license, "Dual BSD/GPL");
    assert!(o.gpl_compatible);
    assert_eq!(o.kern_version, None);
    assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    assert_eq!(o.programs.len(), 1);
    let p = o.program("hello").unwrap();
    assert_eq!(p.section, "xdp");
    assert_eq!(p.prog_type, ProgType::Xdp);
    assert_eq!(p.prog_type.name(), "xdp");
    assert_eq!(p.prog_type.as_u32(), 6);
    assert_eq!(p.expected_attach_type, Some(AttachType::Xdp));
    assert_eq!(p.attach_to, None);
    assert_eq!(p.insns.len(), 12);
    assert_eq!(p.sec_insn_off, 0);

    let names: Vec<&str> = o.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["hello.bss", "hello.rodata"]);
    let btf = o.btf.as_ref().unwrap();
    let bss = o.map("hello.bss").unwrap();
    assert_eq!(bss.kind, MapKind::Bss);
    assert_eq!(bss.section, ".bss");
    assert_eq!(
        (bss.map_type, bss.key_size, bss.value_size, bss.max_entries),
        (2, 4, 4, 1)
    );
    assert_eq!(bss.map_flags, BPF_F_MMAPABLE);
    assert!(bss.initial_data.is_empty());
    assert_eq!(&bss.initial_value()[..], [0, 0, 0, 0]);
    assert!(!bss.freeze_after_load());
    assert_eq!(btf.name(bss.btf_value_type_id), ".bss");
    assert_eq!(
        btf.type_by_id(bss.btf_value_type_id).unwrap().kind(),
        BtfKind::Datasec
    );
    assert_eq!(bss.btf_key_type_id, 0);
    let ro = o.map("hello.rodata").unwrap();
    assert_eq!(ro.kind, MapKind::Rodata);
    assert_eq!(ro.map_flags, BPF_F_RDONLY_PROG | BPF_F_MMAPABLE);
    assert_eq!(ro.initial_data, b"Hello World %d\0");
    assert!(ro.freeze_after_load());
    assert_eq!(btf.name(ro.btf_value_type_id), ".rodata");

    // counter++ and the printk format: both MAP_VALUE loads at offset 0.
    assert_eq!(p.map_relocs.len(), 2);
    for (r, map) in p.map_relocs.iter().zip(["hello.bss", "hello.rodata"]) {
        assert_eq!(o.maps[r.map_idx].name, map);
        assert_eq!(r.kind, MapRelocKind::Value { offset: 0 });
        let i = p.insns[r.insn_idx];
        assert_eq!(
            (i.code, i.src_reg, i.imm),
            (0x18, BPF_PSEUDO_MAP_VALUE, r.map_idx as i32)
        );
        assert_eq!(p.insns[r.insn_idx + 1].imm, 0);
    }
    assert_eq!(p.map_relocs[0].insn_idx, 0);
    assert_eq!(p.map_relocs[1].insn_idx, 3);

    // One function, with func info at 0 and three source lines.
    assert_eq!(p.funcs.len(), 1);
    assert_eq!(p.func_info.len(), 1);
    assert_eq!(p.func_info[0].insn_idx, 0);
    assert_eq!(btf.name(p.func_info[0].type_id), "hello");
    assert_eq!(p.line_info.len(), 3);
    assert!(p.line_info[0].line.contains("bpf_printk"));
}

#[test]
fn hello_variants_agree() {
    let base = open(fixture("hello.o"));
    for v in ["hello.O0.o", "hello.O1.o", "hello.nog.o", "hello.gcc.o"] {
        let o = open(fixture(v));
        assert_eq!(o.name, "hello", "{v}");
        assert_eq!(o.license, base.license, "{v}");
        let names: Vec<&str> = o.programs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["hello"], "{v}");
        assert_eq!(o.programs[0].prog_type, ProgType::Xdp, "{v}");
        for m in ["hello.bss", "hello.rodata"] {
            let m = o.map(m).unwrap_or_else(|| panic!("{v}: no {m}"));
            assert_eq!(
                m.initial_value(),
                base.map(&m.name).unwrap().initial_value(),
                "{v}"
            );
        }
    }
    // -O0 also emits a .data section, which becomes hello.data.
    assert!(open(fixture("hello.O0.o")).map("hello.data").is_some());
    let nog = open(fixture("hello.nog.o"));
    assert!(nog.btf.is_none() && nog.btf_ext.is_none());
    assert!(nog.programs[0].func_info.is_empty() && nog.programs[0].line_info.is_empty());
    // gcc 12 writes an empty .BTF.ext: libbpf warns and loads without.
    let gcc = open(fixture("hello.gcc.o"));
    assert!(gcc.btf.is_some());
    assert!(gcc.programs[0].func_info.is_empty());
    assert!(gcc
        .warnings
        .iter()
        .any(|w| w.contains("missing .BTF.ext function info")));
}

#[test]
fn hello_func_call_lands_on_get_opcode() {
    for v in [
        "hello-func.o",
        "hello-func.O1.o",
        "hello-func.nog.o",
        "hello-func.gcc.o",
    ] {
        let o = open(fixture(v));
        let p = o.program("hello").unwrap();
        assert_eq!(p.prog_type, ProgType::RawTracepoint, "{v}");
        assert_eq!(p.section, "raw_tp/", "{v}");
        assert_eq!(p.attach_to, None, "{v}");
        assert_eq!(p.expected_attach_type, None, "{v}");
        let names: Vec<&str> = p.funcs.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["hello", "get_opcode"], "{v}");
        let get_opcode = &p.funcs[1];
        assert_eq!(get_opcode.section, ".text", "{v}");
        assert_eq!(
            get_opcode.insn_off, p.funcs[0].insn_cnt,
            "{v}: appended right after"
        );
        assert_eq!(
            get_opcode.insn_off + get_opcode.insn_cnt,
            p.insns.len(),
            "{v}"
        );
        let calls = call_targets(p);
        assert_eq!(calls.len(), 1, "{v}");
        assert_eq!(calls[0].1, get_opcode.insn_off, "{v}: call target");
        assert_eq!(
            o.map("hello_fu.rodata").unwrap().initial_data,
            b"Syscall: %d\0",
            "{v}"
        );
    }
    let o = open(fixture("hello-func.o"));
    let p = o.program("hello").unwrap();
    // The kernel's xlated dump: `0: (85) call pc+7`.
    assert_eq!((p.insns[0].code, p.insns[0].imm), (0x85, 7));
    let btf = o.btf.as_ref().unwrap();
    let fi: Vec<(u32, &str)> = p
        .func_info
        .iter()
        .map(|f| (f.insn_idx, btf.name(f.type_id)))
        .collect();
    assert_eq!(fi, [(0, "hello"), (8, "get_opcode")]);
    // get_opcode's two lines were moved from .text offsets 0/1 to 8/9.
    let li: Vec<(u32, u32)> = p
        .line_info
        .iter()
        .map(|l| (l.insn_idx, l.line_num))
        .collect();
    assert_eq!(li, [(0, 13), (1, 14), (6, 15), (8, 8), (9, 8)]);
    for l in &p.line_info {
        assert_eq!(l.insn_off, l.insn_idx * 8);
        assert_eq!(l.file_name, "./src/hello-func.bpf.c");
    }
}

#[test]
fn calls_link_like_libbpf() {
    let o = open(local("calls.o"));
    let a = o.program("calls_a").unwrap();
    let names: Vec<&str> = a.funcs.iter().map(|f| f.name.as_str()).collect();
    // Depth-first in call order, as the kernel's xlated dump of the same
    // object loaded by bpftool shows.
    assert_eq!(
        names,
        ["calls_a", "loop_cb", "middle", "leaf", "global_helper"]
    );
    let targets: Vec<(usize, u8)> = call_targets(a).iter().map(|&(_, t, s)| (t, s)).collect();
    assert_eq!(
        targets,
        [
            (func_start(a, "loop_cb"), BPF_PSEUDO_FUNC),
            (func_start(a, "middle"), BPF_PSEUDO_CALL),
            (func_start(a, "global_helper"), BPF_PSEUDO_CALL),
            (func_start(a, "leaf"), BPF_PSEUDO_CALL),
            (func_start(a, "leaf"), BPF_PSEUDO_CALL),
        ]
    );
    let b = o.program("calls_b").unwrap();
    let names: Vec<&str> = b.funcs.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["calls_b", "leaf"]);
    assert_eq!(call_targets(b)[0].1, func_start(b, "leaf"));
    assert_eq!(b.prog_type, ProgType::SchedCls);
    // leaf's `total += x` is relocated in each copy.
    for p in [a, b] {
        assert_eq!(p.map_relocs.len(), 1);
        let r = p.map_relocs[0];
        let leaf = func_start(p, "leaf");
        assert_eq!(r.insn_idx, leaf + 4, "{}", p.name);
        assert_eq!(o.maps[r.map_idx].name, "calls.bss");
    }
    // func_info follows the functions, one record each, by name.
    let btf = o.btf.as_ref().unwrap();
    for p in [a, b] {
        let fi: Vec<(usize, &str)> = p
            .func_info
            .iter()
            .map(|f| (f.insn_idx as usize, btf.name(f.type_id)))
            .collect();
        let want: Vec<(usize, &str)> = p
            .funcs
            .iter()
            .map(|f| (f.insn_off, f.name.as_str()))
            .collect();
        assert_eq!(fi, want);
        // Line info stays sorted and inside the program.
        assert!(p
            .line_info
            .windows(2)
            .all(|w| w[0].insn_idx < w[1].insn_idx));
        assert!(p
            .line_info
            .iter()
            .all(|l| (l.insn_idx as usize) < p.insns.len()));
    }
}

#[test]
fn loops_callback_is_a_pseudo_func() {
    let o = open(fixture("loops.o"));
    let p = o.program("loops_run").unwrap();
    let funcs: Vec<&str> = p.funcs.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(funcs, ["loops_run", "loop_cb"]);
    let t = call_targets(p);
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].1, t[0].2),
        (func_start(p, "loop_cb"), BPF_PSEUDO_FUNC)
    );
    // String literals land in .rodata.str1.1, which libbpf maps unprefixed.
    let m = o.map(".rodata.str1.1").unwrap();
    assert_eq!(m.kind, MapKind::Rodata);
    assert!(m.initial_data.windows(5).any(|w| w == b"bpfvm"));
}

#[test]
fn tail_call_maps_get_their_slots() {
    let o = open(fixture("tailchain.o"));
    let jt = o.map("jmp_table").unwrap();
    assert_eq!(
        (jt.map_type, jt.key_size, jt.value_size, jt.max_entries),
        (3, 4, 4, 4)
    );
    assert_eq!(jt.init_slots, [(0, "chain".to_string())]);
    let p = o.program("chain").unwrap();
    let fd: Vec<_> = p
        .map_relocs
        .iter()
        .filter(|r| r.kind == MapRelocKind::Fd)
        .collect();
    assert_eq!(fd.len(), 1);
    assert_eq!(o.maps[fd[0].map_idx].name, "jmp_table");
    assert_eq!(p.insns[fd[0].insn_idx].src_reg, BPF_PSEUDO_MAP_FD);
    assert_eq!(o.map("tailchai.bss").unwrap().value_size, 16);

    let gcc = open(fixture("tailchain.gcc.o"));
    assert_eq!(gcc.map("jmp_table").unwrap().init_slots, jt.init_slots);

    let hop = open(fixture("hop.o"));
    let sc = hop.map("syscall").unwrap();
    let want: Vec<(u32, String)> = [
        (0, "ignore_opcode"),
        (1, "ignore_opcode"),
        (59, "hello_exec"),
        (222, "hello_timer"),
        (223, "hello_timer"),
    ]
    .iter()
    .map(|&(s, n)| (s, n.to_string()))
    .collect();
    assert_eq!(sc.init_slots, want);
    assert_eq!(sc.max_entries, 300);
    let names: Vec<&str> = hop.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["ignore_opcode", "hello_exec", "hello_timer", "hello"]
    );
}

#[test]
fn btf_defined_maps() {
    let o = open(fixture("maps.o"));
    let btf = o.btf.as_ref().unwrap();
    // (name, type, key, value, max_entries, flags)
    let want: &[(&str, u32, u32, u32, u32, u32)] = &[
        ("m_prog_array", 3, 4, 4, 2, 0),
        ("m_inner_a", 2, 4, 4, 4, 0),
        ("m_inner_b", 2, 4, 4, 4, 0),
        ("m_array_of_maps", 12, 4, 4, 3, 0),
        ("m_hash_of_maps", 13, 4, 4, 4, 0),
        ("m_array", 2, 4, 8, 8, 0),
        ("m_percpu_array", 6, 4, 8, 4, 0),
        ("m_hash", 1, 4, 8, 64, 0),
        ("m_percpu_hash", 5, 8, 4, 16, 0),
        ("m_lru_hash", 9, 4, 8, 32, 0),
        ("m_lru_percpu_hash", 10, 4, 8, 32, 0),
        ("m_queue", 22, 0, 4, 8, 0),
        ("m_stack", 23, 0, 8, 8, 0),
        ("m_lpm_trie", 11, 8, 4, 16, 1),
        ("m_ringbuf", 27, 0, 0, 4096, 0),
        ("m_devmap", 14, 4, 4, 4, 0),
        ("m_cpumap", 16, 4, 8, 2, 0),
        ("maps.bss", 2, 4, 8, 1, BPF_F_MMAPABLE),
    ];
    let got: Vec<(&str, u32, u32, u32, u32, u32)> = o
        .maps
        .iter()
        .map(|m| {
            (
                m.name.as_str(),
                m.map_type,
                m.key_size,
                m.value_size,
                m.max_entries,
                m.map_flags,
            )
        })
        .collect();
    assert_eq!(got, want);
    for m in o.maps.iter().filter(|m| m.kind == MapKind::User) {
        assert_eq!(m.section, ".maps");
        // The VAR in the .maps DATASEC, named like the map.
        let var = btf.type_by_id(m.btf_var_id).unwrap();
        assert_eq!(var.kind(), BtfKind::Var);
        assert_eq!(btf.name(m.btf_var_id), m.name);
        assert_eq!(m.pinning, MapPinning::None);
    }
    let hash = o.map("m_hash").unwrap();
    assert_eq!(btf.name(hash.btf_key_type_id), "__u32");
    assert_eq!(btf.name(hash.btf_value_type_id), "pair");
    assert_eq!(btf.resolve_size(hash.btf_value_type_id).unwrap(), 8);
    // prog_array's `values` has no value type (libbpf leaves it 0).
    assert_eq!(o.map("m_prog_array").unwrap().btf_value_type_id, 0);
    assert_eq!(
        o.map("m_prog_array").unwrap().init_slots,
        [(1, "prog_target".to_string())]
    );

    let aom = o.map("m_array_of_maps").unwrap();
    assert_eq!(
        aom.init_slots,
        [(0, "m_inner_a".into()), (1, "m_inner_b".into())]
    );
    let inner = aom.inner.as_ref().unwrap();
    assert_eq!(inner.name, "m_array_of_maps.inner");
    assert_eq!(
        (
            inner.map_type,
            inner.key_size,
            inner.value_size,
            inner.max_entries
        ),
        (2, 4, 4, 4)
    );
    assert!(inner.inner.is_none() && inner.init_slots.is_empty());
    let hom = o.map("m_hash_of_maps").unwrap();
    assert_eq!(hom.init_slots, [(2, "m_inner_b".into())]);
    assert_eq!(hom.inner.as_ref().unwrap().name, "m_hash_of_maps.inner");

    // Every &map in the code is a MAP_FD load of the right map.
    let p = o.program("redirect_dev").unwrap();
    assert_eq!(p.map_relocs.len(), 1);
    assert_eq!(o.maps[p.map_relocs[0].map_idx].name, "m_devmap");
    let p = o.program("tail_prog").unwrap();
    assert_eq!(o.maps[p.map_relocs[0].map_idx].name, "m_prog_array");
    let run = o.program("map_ops_run").unwrap();
    let used: std::collections::BTreeSet<&str> = run
        .map_relocs
        .iter()
        .map(|r| o.maps[r.map_idx].name.as_str())
        .collect();
    for m in [
        "m_array",
        "m_hash",
        "m_queue",
        "m_stack",
        "m_lpm_trie",
        "m_ringbuf",
        "maps.bss",
    ] {
        assert!(used.contains(m), "map_ops_run does not use {m}");
    }
    for r in &run.map_relocs {
        let i = run.insns[r.insn_idx];
        assert_eq!(i.code, 0x18);
        assert_eq!(i.imm, r.map_idx as i32);
        match r.kind {
            MapRelocKind::Fd => assert_eq!(i.src_reg, BPF_PSEUDO_MAP_FD),
            MapRelocKind::Value { offset } => {
                assert_eq!(i.src_reg, BPF_PSEUDO_MAP_VALUE);
                assert_eq!(run.insns[r.insn_idx + 1].imm, offset as i32);
            }
        }
    }
}

#[test]
fn legacy_maps_section() {
    let o = open(fixture("maps_legacy.o"));
    let got: Vec<(&str, &str, u32, u32, u32, u32, u32)> = o
        .maps
        .iter()
        .map(|m| {
            (
                m.name.as_str(),
                m.section.as_str(),
                m.map_type,
                m.key_size,
                m.value_size,
                m.max_entries,
                m.map_flags,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("legacy_counts", "maps", 2, 4, 8, 4, 0),
            ("legacy_hash", "maps", 1, 4, 4, 16, 1),
        ]
    );
    let p = o.program("legacy_count").unwrap();
    let targets: Vec<&str> = p
        .map_relocs
        .iter()
        .map(|r| o.maps[r.map_idx].name.as_str())
        .collect();
    assert_eq!(targets, ["legacy_counts", "legacy_hash"]);
}

#[test]
fn global_data_sections() {
    let o = open(fixture("globals.o"));
    let got: Vec<(&str, MapKind, u32, u32)> = o
        .maps
        .iter()
        .map(|m| (m.name.as_str(), m.kind, m.value_size, m.map_flags))
        .collect();
    let rw = BPF_F_MMAPABLE;
    let ro = BPF_F_MMAPABLE | BPF_F_RDONLY_PROG;
    assert_eq!(
        got,
        [
            ("globals.data", MapKind::Data, 52, rw),
            ("globals.rodata", MapKind::Rodata, 45, ro),
            (".data.foo", MapKind::Data, 24, rw),
            (".rodata.foo", MapKind::Rodata, 4, ro),
            ("globals.bss", MapKind::Bss, 61, rw),
        ]
    );
    let foo = o.map(".data.foo").unwrap();
    let mut want = 7u32.to_le_bytes().to_vec();
    want.extend_from_slice(&[0; 4]);
    want.extend_from_slice(&0x1111u64.to_le_bytes());
    want.extend_from_slice(&0x2222u64.to_le_bytes());
    assert_eq!(foo.initial_data, want);
    assert_eq!(
        o.map(".rodata.foo").unwrap().initial_data,
        0xfeedfaceu32.to_le_bytes()
    );
    assert_eq!(o.map("globals.bss").unwrap().initial_value(), vec![0; 61]);

    // Each MAP_VALUE offset is a variable's offset in its DATASEC (BTF
    // after libbpf's fix-up), whether clang relocated against the section
    // (offset in imm) or the variable (offset in the symbol).
    let btf = o.btf.as_ref().unwrap();
    let p = o.program("globals_run").unwrap();
    for r in &p.map_relocs {
        let MapRelocKind::Value { offset } = r.kind else {
            panic!("globals_run: unexpected {r:?}")
        };
        let m = &o.maps[r.map_idx];
        let ds = btf.type_by_id(m.btf_value_type_id).unwrap();
        assert_eq!(btf.name(m.btf_value_type_id), m.section);
        let BtfTypeData::Datasec(vars) = &ds.data else {
            panic!()
        };
        assert_eq!(
            ds.size_or_type, m.value_size,
            "{}: DATASEC size fixed up",
            m.name
        );
        assert!(
            vars.iter()
                .any(|v| offset >= v.offset && offset < v.offset + v.size),
            "{}: offset {offset} is inside no variable",
            m.name
        );
    }
    // `if (!cfg_enabled)` reads .rodata at cfg_enabled's offset.
    let ro_id = o.map("globals.rodata").unwrap().btf_value_type_id;
    let BtfTypeData::Datasec(vars) = &btf.type_by_id(ro_id).unwrap().data else {
        panic!()
    };
    let cfg = vars
        .iter()
        .find(|v| btf.name(v.type_id) == "cfg_enabled")
        .unwrap();
    let first = p
        .map_relocs
        .iter()
        .find(|r| o.maps[r.map_idx].name == "globals.rodata")
        .unwrap();
    assert_eq!(first.kind, MapRelocKind::Value { offset: cfg.offset });
}

#[test]
fn skb_ringbuf_cpuv4() {
    let o = open(fixture("skb.o"));
    let s = o.program("sock_filter").unwrap();
    assert_eq!(
        (s.prog_type, s.expected_attach_type),
        (ProgType::SocketFilter, None)
    );
    let t = o.program("tc_classify").unwrap();
    assert_eq!(
        (t.prog_type, t.prog_type.name()),
        (ProgType::SchedCls, "sched_cls")
    );

    let o = open(fixture("ringbuf.o"));
    let e = o.program("rb_exec").unwrap();
    assert_eq!(e.prog_type, ProgType::Tracepoint);
    assert_eq!(e.attach_to.as_deref(), Some("syscalls/sys_enter_execve"));
    let rb = o.map("events").unwrap();
    assert_eq!(
        (rb.map_type, rb.key_size, rb.value_size, rb.max_entries),
        (27, 0, 0, 16384)
    );

    let o = open(fixture("cpuv4.o"));
    assert_eq!(o.program("cpuv4_run").unwrap().prog_type, ProgType::Xdp);
}

#[test]
fn section_names() {
    let o = open(local("sections.o"));
    assert_eq!(o.license, "Proprietary");
    assert!(!o.gpl_compatible);
    assert_eq!(o.kern_version, Some(0x060c00));
    use AttachType as A;
    use ProgType as P;
    type Row<'a> = (&'a str, ProgType, Option<AttachType>, Option<&'a str>, u32);
    let want: &[Row] = &[
        ("kp", P::Kprobe, None, Some("do_unlinkat"), 0),
        ("krp", P::Kprobe, None, Some("do_unlinkat"), 0),
        ("up", P::Kprobe, None, Some("/bin/bash:readline"), 0),
        ("usdt_p", P::Kprobe, None, Some("libc:setjmp"), 0),
        ("ksys", P::Kprobe, None, Some("openat"), 0),
        (
            "tp_long",
            P::Tracepoint,
            None,
            Some("syscalls/sys_enter_openat"),
            0,
        ),
        (
            "tp_short",
            P::Tracepoint,
            None,
            Some("sched/sched_switch"),
            0,
        ),
        (
            "rawtp_long",
            P::RawTracepoint,
            None,
            Some("sched_switch"),
            0,
        ),
        (
            "rawtp_w",
            P::RawTracepointWritable,
            None,
            Some("sched_switch"),
            0,
        ),
        (
            "tpbtf",
            P::Tracing,
            Some(A::TraceRawTp),
            Some("sched_switch"),
            0,
        ),
        (
            "fent",
            P::Tracing,
            Some(A::TraceFentry),
            Some("do_unlinkat"),
            0,
        ),
        (
            "fexi",
            P::Tracing,
            Some(A::TraceFexit),
            Some("do_unlinkat"),
            0,
        ),
        (
            "fmodret",
            P::Tracing,
            Some(A::ModifyReturn),
            Some("security_file_open"),
            0,
        ),
        (
            "fent_s",
            P::Tracing,
            Some(A::TraceFentry),
            Some("do_unlinkat"),
            BPF_F_SLEEPABLE,
        ),
        ("lsm_p", P::Lsm, Some(A::LsmMac), Some("file_open"), 0),
        (
            "lsm_s",
            P::Lsm,
            Some(A::LsmMac),
            Some("file_open"),
            BPF_F_SLEEPABLE,
        ),
        ("iter_task", P::Tracing, Some(A::TraceIter), Some("task"), 0),
        ("xdp_frags", P::Xdp, Some(A::Xdp), None, BPF_F_XDP_HAS_FRAGS),
        ("xdp_devmap", P::Xdp, Some(A::XdpDevmap), None, 0),
        ("xdp_cpumap", P::Xdp, Some(A::XdpCpumap), None, 0),
        ("tc_in", P::SchedCls, Some(A::TcxIngress), None, 0),
        ("tcx_out", P::SchedCls, Some(A::TcxEgress), None, 0),
        ("cls", P::SchedCls, None, None, 0),
        ("act", P::SchedAct, None, None, 0),
        ("sock", P::SocketFilter, None, None, 0),
        ("reuse", P::SkReuseport, Some(A::SkReuseportSelect), None, 0),
        ("skb_parser", P::SkSkb, Some(A::SkSkbStreamParser), None, 0),
        (
            "skb_verdict",
            P::SkSkb,
            Some(A::SkSkbStreamVerdict),
            None,
            0,
        ),
        ("skb_plain", P::SkSkb, None, None, 0),
        ("msg", P::SkMsg, Some(A::SkMsgVerdict), None, 0),
        ("lookup", P::SkLookup, Some(A::SkLookup), None, 0),
        ("flow", P::FlowDissector, Some(A::FlowDissector), None, 0),
        ("cg_in", P::CgroupSkb, Some(A::CgroupInetIngress), None, 0),
        ("cg_out", P::CgroupSkb, Some(A::CgroupInetEgress), None, 0),
        ("cg_skb", P::CgroupSkb, None, None, 0),
        (
            "cg_sock",
            P::CgroupSock,
            Some(A::CgroupInetSockCreate),
            None,
            0,
        ),
        (
            "cg_connect4",
            P::CgroupSockAddr,
            Some(A::CgroupInet4Connect),
            None,
            0,
        ),
        (
            "cg_sendmsg6",
            P::CgroupSockAddr,
            Some(A::CgroupUdp6Sendmsg),
            None,
            0,
        ),
        ("cg_dev", P::CgroupDevice, Some(A::CgroupDevice), None, 0),
        ("cg_sysctl", P::CgroupSysctl, Some(A::CgroupSysctl), None, 0),
        (
            "cg_getsockopt",
            P::CgroupSockopt,
            Some(A::CgroupGetsockopt),
            None,
            0,
        ),
        (
            "cg_setsockopt",
            P::CgroupSockopt,
            Some(A::CgroupSetsockopt),
            None,
            0,
        ),
        ("lwt_in_p", P::LwtIn, None, None, 0),
        ("lwt_seg6", P::LwtSeg6local, None, None, 0),
        ("sockops_p", P::SockOps, Some(A::CgroupSockOps), None, 0),
        ("perf", P::PerfEvent, None, None, 0),
        ("sys", P::Syscall, None, None, BPF_F_SLEEPABLE),
        ("nf", P::Netfilter, Some(A::Netfilter), None, 0),
        ("sops", P::StructOps, None, Some("dctcp_init"), 0),
        ("custom", P::Unspec, None, None, 0),
    ];
    let got: Vec<Row> = o
        .programs
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.prog_type,
                p.expected_attach_type,
                p.attach_to.as_deref(),
                p.prog_flags,
            )
        })
        .collect();
    assert_eq!(got, want);

    let sized = o.map("sized").unwrap();
    assert_eq!(
        (
            sized.map_type,
            sized.key_size,
            sized.value_size,
            sized.max_entries
        ),
        (1, 8, 16, 128)
    );
    assert_eq!(sized.map_flags, 1 | 4);
    assert_eq!(sized.numa_node, 1);
    assert_eq!(sized.pinning, MapPinning::ByName);
    assert_eq!((sized.btf_key_type_id, sized.btf_value_type_id), (0, 0));
    let bloom = o.map("bloom").unwrap();
    assert_eq!(
        (bloom.map_type, bloom.key_size, bloom.value_size),
        (30, 0, 4)
    );
    assert_eq!(bloom.map_extra, 3);
}

#[test]
fn section_def_table() {
    let d = section_def("xdp.frags/devmap").unwrap();
    assert_eq!(
        (d.prog_type, d.expected_attach_type, d.prog_flags),
        (
            ProgType::Xdp,
            Some(AttachType::XdpDevmap),
            BPF_F_XDP_HAS_FRAGS
        )
    );
    assert_eq!(
        section_def("tc/egress").unwrap().expected_attach_type,
        Some(AttachType::TcxEgress)
    );
    assert_eq!(
        section_def("uprobe.s/x").unwrap().prog_flags,
        BPF_F_SLEEPABLE
    );
    assert_eq!(section_def("kprobe").unwrap().attach_to, None);
    // libbpf 1.x: exact names only, '/' required after a prefix.
    for bad in ["xdp/foo", "xdpfoo", "socket1", "kprobex/a", "tc/", ""] {
        assert!(section_def(bad).is_none(), "{bad}");
    }
    assert_eq!(
        ProgType::from_name("raw_tracepoint"),
        Some(ProgType::RawTracepoint)
    );
    assert_eq!(ProgType::SchedCls.kernel_name(), "BPF_PROG_TYPE_SCHED_CLS");
    assert_eq!(AttachType::Xdp.as_u32(), 37);
    assert_eq!(AttachType::TraceUprobeSession.as_u32(), 57);
    assert_eq!(ProgType::Netfilter.as_u32(), 32);
}

#[test]
fn licenses() {
    for l in [
        "GPL",
        "GPL v2",
        "GPL and additional rights",
        "Dual BSD/GPL",
        "Dual MIT/GPL",
        "Dual MPL/GPL",
    ] {
        assert!(license_is_gpl_compatible(l), "{l}");
    }
    for l in [
        "",
        "gpl",
        "GPL ",
        "GPLv2",
        "Dual BSD/GPL\n",
        "MIT",
        "Proprietary",
    ] {
        assert!(!license_is_gpl_compatible(l), "{l:?}");
    }
}

#[test]
fn global_data_map_names() {
    // Observed with bpftool 7.1 (libbpf 1.1) loading hello.o copied under
    // these file names.
    let cases = [
        ("hello.o", ".bss", "hello.bss"),
        ("/some/dir/hello.bpf.o", ".rodata", "hello.rodata"),
        ("hello_world_long.o", ".bss", "hello_wo.bss"),
        ("hello_world_long.o", ".rodata", "hello_wo.rodata"),
        ("ab.o", ".rodata", "ab.rodata"),
        ("x.bpf.o", ".bss", "x.bss"),
        ("abcdefgh.o", ".rodata", "abcdefgh.rodata"),
        ("abcdefghi.o", ".bss", "abcdefgh.bss"),
        ("we-ird+n.o", ".rodata", "we_ird_n.rodata"),
        ("globals_long_name.o", ".data", "globals_.data"),
        ("globals_long_name.o", ".data.foo", ".data.foo"),
        ("loops.o", ".rodata.str1.1", ".rodata.str1.1"),
        ("x.o", ".rodata.a_very_long_suffix", ".rodata.a_very_"),
    ];
    for (file, sec, want) in cases {
        assert_eq!(
            internal_map_name(&object_name(file), sec),
            want,
            "{file} {sec}"
        );
    }
}

#[test]
fn core_relocations_are_handed_to_the_loader() {
    let o = open(local("core.o"));
    let ext = o.btf_ext.as_ref().unwrap();
    let recs = ext.core_relos_for("xdp");
    assert!(!recs.is_empty());
    // Every record of the program's section, renumbered to the program.
    let p = o.programs.iter().find(|p| p.name == "core_read").unwrap();
    assert_eq!(p.core_relos.len(), recs.len());
    for r in &p.core_relos {
        assert!((r.insn_idx as usize) < p.insns.len());
        assert_eq!(r.insn_off, r.insn_idx * 8);
    }
}

#[test]
fn externs_are_collected() {
    use bpfvm_obj::{ExternKind, KcfgType, MapKind};
    // A .kconfig extern: a value in the .kconfig map, loaded from there.
    let o = open(local("extern_kconfig.o"));
    assert_eq!(o.externs.len(), 1);
    let e = &o.externs[0];
    assert_eq!(e.name, "LINUX_KERNEL_VERSION");
    assert!(!e.weak);
    assert_eq!(
        e.kind,
        ExternKind::Kconfig {
            data_off: 0,
            size: 4,
            ty: KcfgType::Int {
                size: 4,
                signed: false
            }
        }
    );
    let k = o
        .maps
        .iter()
        .position(|m| m.kind == MapKind::Kconfig)
        .unwrap();
    assert_eq!(o.maps[k].name, "extern_.kconfig");
    assert_eq!(o.maps[k].value_size, 4);
    assert!(o.maps[k].freeze_after_load());
    let p = &o.programs[0];
    assert_eq!(p.extern_refs.len(), 1);
    assert_eq!(p.extern_refs[0].name, "LINUX_KERNEL_VERSION");
    let r = p.map_relocs.iter().find(|r| r.map_idx == k).unwrap();
    assert_eq!(r.insn_idx, p.extern_refs[0].insn_idx);
    // kfuncs: calls become BPF_PSEUDO_KFUNC_CALL, resolved by the loader.
    let o = open(local("kfunc.o"));
    let names: Vec<&str> = o.externs.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["bpf_rcu_read_lock", "bpf_rcu_read_unlock"]);
    assert!(o.externs.iter().all(|e| e.kind == ExternKind::Kfunc));
    let p = &o.programs[0];
    assert_eq!(p.extern_refs.len(), 2);
    for r in &p.extern_refs {
        assert_eq!(p.insns[r.insn_idx].code, 0x85);
        assert_eq!(p.insns[r.insn_idx].src_reg, 2);
    }
}

#[test]
fn unsupported_features_are_named() {
    let e = Object::open(local("static_prog.o")).unwrap_err();
    assert!(
        e.to_string().contains("'hidden_entry'") && e.to_string().contains("'xdp'"),
        "{e}"
    );
    let e = Object::open(local("no_such_file.o")).unwrap_err();
    assert!(matches!(e.kind, ObjErrorKind::Io { .. }));
    assert!(std::error::Error::source(&e).is_some());
}

/// A buffer at an odd address (an object embedded in a larger file, a
/// `&bytes[1..]` slice) parses the same as an aligned one: the ELF reader
/// must not require the records to be naturally aligned.
#[test]
fn misaligned_buffer_parses_the_same() {
    for name in ["hello-func.o", "maps.o", "globals.o", "loops.o"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let aligned = Object::parse(name, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let mut shifted = vec![0u8; bytes.len() + 1];
        shifted[1..].copy_from_slice(&bytes);
        let odd = Object::parse(name, &shifted[1..]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(odd.programs, aligned.programs, "{name}");
        assert_eq!(odd.maps.len(), aligned.maps.len(), "{name}");
    }
}
