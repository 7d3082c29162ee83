//! Hand-built BTF: kinds and flags clang does not emit (CHAR ints, unsigned
//! ENUM with high values, FWD union, static/extern VAR, variadic protos,
//! kind_flag=0 structs), and every parse error.
//!
//! The crafted blob and bpftool's dump of it are committed
//! (tests/data/btf/crafted.btf, crafted.btf.txt, crafted.btf.json); when
//! bpftool is installed the test also runs it live on the blob.
//! BPFVM_BLESS=1 rewrites crafted.btf and, with bpftool present, the dumps.

use std::path::{Path, PathBuf};
use std::process::Command;

use bpfvm_obj::btf::{
    dump_btf_json, dump_btf_plain, dump_value, write_bpftool_compact, Btf, BtfArray, BtfEnum,
    BtfEnum64, BtfError, BtfKind, BtfMember, BtfParam, BtfType, BtfTypeData, BtfVarSecinfo,
    DumpMode, Dumped,
};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/btf")
}

fn ty(btf: &mut Btf, name: &str, kind_flag: bool, size_or_type: u32, data: BtfTypeData) -> u32 {
    let name_off = btf.add_string(name);
    btf.add_type(BtfType {
        name_off,
        kind_flag,
        size_or_type,
        func_linkage: 0,
        data,
    })
}

fn int(encoding: u8, offset: u8, bits: u8) -> BtfTypeData {
    BtfTypeData::Int {
        encoding,
        offset,
        bits,
    }
}

fn crafted() -> Btf {
    let mut b = Btf::new();
    let int_id = ty(&mut b, "int", false, 4, int(1, 0, 32)); // 1
    let wchar = ty(&mut b, "wchar", false, 1, int(2, 0, 8)); // 2
    let odd = ty(&mut b, "odd", false, 4, int(0, 0, 24)); // 3
    let boolean = ty(&mut b, "bool", false, 1, int(4, 0, 8)); // 4
    let a = b.add_string("A");
    let bb = b.add_string("B");
    ty(
        &mut b,
        "e_u",
        false,
        4,
        BtfTypeData::Enum(vec![
            BtfEnum {
                name_off: a,
                val: 0xffff_ffff,
            },
            BtfEnum {
                name_off: bb,
                val: 1,
            },
        ]),
    ); // 5
    let n = b.add_string("N");
    ty(
        &mut b,
        "e_s",
        true,
        4,
        BtfTypeData::Enum(vec![BtfEnum {
            name_off: n,
            val: -7i32 as u32,
        }]),
    ); // 6
    let x = b.add_string("X");
    ty(
        &mut b,
        "e64u",
        false,
        8,
        BtfTypeData::Enum64(vec![BtfEnum64 {
            name_off: x,
            val: u64::MAX,
        }]),
    ); // 7
    ty(&mut b, "fu", true, 0, BtfTypeData::Fwd); // 8
    let pa = b.add_string("a");
    let proto = ty(
        &mut b,
        "",
        false,
        int_id,
        BtfTypeData::FuncProto(vec![
            BtfParam {
                name_off: pa,
                type_id: int_id,
            },
            BtfParam {
                name_off: 0,
                type_id: 0,
            },
        ]),
    ); // 9
    let f_static = ty(&mut b, "f_static", false, proto, BtfTypeData::Func); // 10
    let name_off = b.add_string("f_extern");
    b.add_type(BtfType {
        name_off,
        kind_flag: false,
        size_or_type: proto,
        func_linkage: 2,
        data: BtfTypeData::Func,
    }); // 11
    let v_static = ty(
        &mut b,
        "v_static",
        false,
        int_id,
        BtfTypeData::Var { linkage: 0 },
    ); // 12
    let v_extern = ty(
        &mut b,
        "v_extern",
        false,
        int_id,
        BtfTypeData::Var { linkage: 2 },
    ); // 13
    ty(&mut b, "float", false, 4, BtfTypeData::Float); // 14
    ty(&mut b, "tt", false, int_id, BtfTypeData::TypeTag); // 15
    ty(
        &mut b,
        "dt",
        false,
        f_static,
        BtfTypeData::DeclTag { component_idx: 0 },
    );
    let mx = b.add_string("x");
    let my = b.add_string("y");
    let mz = b.add_string("z");
    let arr = ty(
        &mut b,
        "",
        false,
        0,
        BtfTypeData::Array(BtfArray {
            elem_type: wchar,
            index_type: int_id,
            nelems: 4,
        }),
    );
    // kind_flag=0: the old encoding, where the INT itself carries the width.
    let old = ty(
        &mut b,
        "old",
        false,
        12,
        BtfTypeData::Struct(vec![
            BtfMember {
                name_off: mx,
                type_id: odd,
                bits_offset: 0,
                bitfield_size: 0,
            },
            BtfMember {
                name_off: 0,
                type_id: boolean,
                bits_offset: 24,
                bitfield_size: 0,
            },
            BtfMember {
                name_off: my,
                type_id: arr,
                bits_offset: 32,
                bitfield_size: 0,
            },
            BtfMember {
                name_off: mz,
                type_id: wchar,
                bits_offset: 64,
                bitfield_size: 0,
            },
        ]),
    );
    ty(
        &mut b,
        "u",
        true,
        4,
        BtfTypeData::Union(vec![
            BtfMember {
                name_off: mx,
                type_id: int_id,
                bits_offset: 0,
                bitfield_size: 0,
            },
            BtfMember {
                name_off: my,
                type_id: int_id,
                bits_offset: 3,
                bitfield_size: 7,
            },
        ]),
    );
    ty(&mut b, "", false, 0, BtfTypeData::Volatile);
    ty(&mut b, "", false, 0, BtfTypeData::Ptr);
    ty(
        &mut b,
        ".data",
        false,
        8,
        BtfTypeData::Datasec(vec![
            BtfVarSecinfo {
                type_id: v_static,
                offset: 0,
                size: 4,
            },
            BtfVarSecinfo {
                type_id: v_extern,
                offset: 4,
                size: 4,
            },
        ]),
    );
    let _ = old;
    b
}

fn bless() -> bool {
    std::env::var_os("BPFVM_BLESS").is_some()
}

fn bpftool_dump(path: &Path, json: bool) -> Option<String> {
    let mut cmd = Command::new("bpftool");
    if json {
        cmd.arg("-j");
    }
    let out = cmd.args(["btf", "dump", "file"]).arg(path).output().ok()?;
    if !out.status.success() {
        panic!(
            "bpftool rejected {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn crafted_btf_matches_bpftool() {
    let btf = crafted();
    let bytes = btf.to_bytes();
    let dir = data_dir();
    let blob = dir.join("crafted.btf");
    let txt = dir.join("crafted.btf.txt");
    let json = dir.join("crafted.btf.json");
    if bless() {
        std::fs::write(&blob, &bytes).unwrap();
    }
    assert_eq!(std::fs::read(&blob).unwrap(), bytes, "crafted.btf is stale");
    let parsed = Btf::parse(&bytes).unwrap();
    assert_eq!(parsed, btf);

    match (bpftool_dump(&blob, false), bpftool_dump(&blob, true)) {
        (Some(live_txt), Some(live_json)) => {
            if bless() {
                std::fs::write(&txt, &live_txt).unwrap();
                std::fs::write(&json, &live_json).unwrap();
            }
            assert_eq!(live_txt, std::fs::read_to_string(&txt).unwrap());
            assert_eq!(live_json, std::fs::read_to_string(&json).unwrap());
        }
        _ => eprintln!("bpftool not found: comparing with the committed dump only"),
    }
    assert_eq!(
        dump_btf_plain(&parsed),
        std::fs::read_to_string(&txt).unwrap()
    );
    assert_eq!(
        write_bpftool_compact(&dump_btf_json(&parsed)),
        std::fs::read_to_string(&json).unwrap()
    );
}

#[test]
fn crafted_values() {
    let btf = crafted();
    let plain = |id, data: &[u8]| dump_value(&btf, id, data, DumpMode::Plain);
    let json = |id, data: &[u8]| dump_value(&btf, id, data, DumpMode::Json);
    // kind_flag=0 struct: 24-bit INT is printed as a bitfield, CHAR ints as
    // quoted characters or, unprintable, as hex / \u escapes.
    let data = [0x01, 0x02, 0x03, 0x01, b'h', b'i', 0, 0, 0x07, 0, 0, 0];
    let old = btf.find_by_name_kind("old", BtfKind::Struct).unwrap();
    let p = plain(old, &data);
    assert_eq!(p.error, None);
    assert_eq!(
        p.value,
        Dumped::Object(vec![
            ("x".into(), Dumped::Raw("0x30201".into())),
            ("".into(), Dumped::Bool(true)),
            ("y".into(), Dumped::Str("hi".into())),
            ("z".into(), Dumped::Raw("0x7".into())),
        ])
    );
    let j = json(old, &data);
    assert_eq!(
        j.value.to_bpftool_compact(),
        "{\"x\":\"0x30201\",\"\":true,\"y\":\"hi\",\"z\":\"\\u0007\"}\n"
    );
    // An unsigned 4-byte enum is read sign-extended and still matches its
    // 0xffffffff enumerator, which the format stores as the same 32 bits.
    let e_u = btf.find_by_name_kind("e_u", BtfKind::Enum).unwrap();
    assert_eq!(plain(e_u, &[0xff; 4]).value, Dumped::Str("A".into()));
    assert_eq!(plain(e_u, &[2, 0, 0, 0]).value, Dumped::Raw("2".into()));
    let e64 = btf.find_by_name_kind("e64u", BtfKind::Enum64).unwrap();
    assert_eq!(plain(e64, &[0xff; 8]).value, Dumped::Str("X".into()));
    assert_eq!(
        plain(e64, &[0xfe; 8]).value.to_json(),
        serde_json::json!(-72340172838076674i64)
    );
    // Union with a bitfield member: bits 3..10 of the first 4 bytes.
    let u = btf.find_by_name_kind("u", BtfKind::Union).unwrap();
    let v = plain(u, &[0xf8, 0x03, 0, 0]).value;
    assert_eq!(
        v,
        Dumped::Object(vec![
            ("x".into(), Dumped::Raw("1016".into())),
            ("y".into(), Dumped::Raw("0x7f".into())),
        ])
    );
    // DATASEC of VARs.
    let ds = btf.find_by_name_kind(".data", BtfKind::Datasec).unwrap();
    assert_eq!(
        plain(ds, &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])
            .value
            .to_bpftool_compact(),
        "{\".data\":[{\"v_static\":1},{\"v_extern\":-1}]}\n"
    );
    // Kinds bpftool refuses: FLOAT prints "(unsupported-kind", FWD
    // "(fwd-kind-invalid)", both with an error; void prints "(unknown)".
    let float = btf.find_by_name_kind("float", BtfKind::Float).unwrap();
    let f = plain(float, &[0; 4]);
    assert_eq!(f.value, Dumped::Raw("(unsupported-kind".into()));
    assert!(matches!(
        f.error,
        Some(BtfError::UnsupportedValueKind { .. })
    ));
    let fwd = btf.find_by_name_kind("fu", BtfKind::Fwd).unwrap();
    assert_eq!(
        plain(fwd, &[]).value,
        Dumped::Raw("(fwd-kind-invalid)".into())
    );
    assert_eq!(plain(0, &[]).value, Dumped::Raw("(unknown)".into()));
    // volatile void cannot be resolved: nothing printed, an error.
    let first_of = |k| btf.iter().find(|(_, t)| t.kind() == k).unwrap().0;
    let vv = first_of(BtfKind::Volatile);
    let r = plain(vv, &[0; 8]);
    assert_eq!((r.value, r.error.is_some()), (Dumped::Nothing, true));
    // Pointers: %p in plain mode, decimal in JSON.
    let ptr = first_of(BtfKind::Ptr);
    let addr = 0xffff_8880_1234_5678u64.to_le_bytes();
    assert_eq!(
        plain(ptr, &addr).value,
        Dumped::Raw("0xffff888012345678".into())
    );
    assert_eq!(plain(ptr, &[0; 8]).value, Dumped::Raw("(nil)".into()));
    assert_eq!(
        json(ptr, &addr).value,
        Dumped::Raw(0xffff_8880_1234_5678u64.to_string())
    );
    // Short data is an error, never a panic.
    let r = plain(old, &data[..5]);
    assert!(
        matches!(r.error, Some(BtfError::ValueTruncated { .. })),
        "{r:?}"
    );
}

/// A minimal valid blob with one INT, for mutating into each error.
fn one_int() -> Vec<u8> {
    let mut b = Btf::new();
    ty(&mut b, "int", false, 4, int(1, 0, 32));
    b.to_bytes()
}

#[test]
fn parse_errors_are_typed_and_name_the_place() {
    let good = one_int();
    assert!(Btf::parse(&good).is_ok());

    let e = Btf::parse(&good[..10]).unwrap_err();
    assert!(matches!(e, BtfError::Truncated { .. }), "{e}");

    let mut other_endian = good.clone();
    other_endian.swap(0, 1);
    let e = Btf::parse(&other_endian).unwrap_err();
    assert!(matches!(e, BtfError::WrongEndian { .. }), "{e}");
    assert_eq!(e.to_string(), e.to_string().to_lowercase());

    let mut bad_magic = good.clone();
    bad_magic[0] = 0;
    assert!(matches!(
        Btf::parse(&bad_magic).unwrap_err(),
        BtfError::BadMagic { .. }
    ));

    let mut bad_version = good.clone();
    bad_version[2] = 2;
    assert!(matches!(
        Btf::parse(&bad_version).unwrap_err(),
        BtfError::BadVersion { version: 2 }
    ));

    // Type section cut in the middle of the INT's extra word.
    let mut cut = good.clone();
    cut[12..16].copy_from_slice(&14u32.to_le_bytes()); // type_len
    cut[16..20].copy_from_slice(&14u32.to_le_bytes()); // str_off
    cut[20..24].copy_from_slice(&(good.len() as u32 - 24 - 14).to_le_bytes());
    let e = Btf::parse(&cut).unwrap_err();
    assert!(
        matches!(
            e,
            BtfError::TypeTruncated {
                type_id: 1,
                offset: 24,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("[1]") && e.to_string().contains("offset 24"));

    // Kind 31 does not exist.
    let mut unknown = good.clone();
    unknown[24 + 7] = 31;
    let e = Btf::parse(&unknown).unwrap_err();
    assert!(
        matches!(
            e,
            BtfError::UnknownKind {
                type_id: 1,
                kind: 31,
                ..
            }
        ),
        "{e}"
    );

    // Name offset past the string section.
    let mut bad_str = good.clone();
    bad_str[24..28].copy_from_slice(&1000u32.to_le_bytes());
    let e = Btf::parse(&bad_str).unwrap_err();
    assert!(
        matches!(
            e,
            BtfError::BadStringOffset {
                type_id: 1,
                name_off: 1000,
                ..
            }
        ),
        "{e}"
    );

    // Reference to a type id that does not exist.
    let mut b = Btf::new();
    ty(&mut b, "", false, 7, BtfTypeData::Ptr);
    let e = Btf::parse(&b.to_bytes()).unwrap_err();
    assert!(
        matches!(
            e,
            BtfError::BadTypeRef {
                type_id: 1,
                ref_id: 7,
                nr_types: 1,
                ..
            }
        ),
        "{e}"
    );

    // typedef a -> const -> typedef a: a loop; via a pointer it is fine.
    let mut b = Btf::new();
    ty(&mut b, "a", false, 2, BtfTypeData::Typedef);
    ty(&mut b, "", false, 1, BtfTypeData::Const);
    assert!(matches!(
        Btf::parse(&b.to_bytes()).unwrap_err(),
        BtfError::Loop { .. }
    ));
    let mut b = Btf::new();
    let s_name = b.add_string("next");
    ty(
        &mut b,
        "list",
        false,
        8,
        BtfTypeData::Struct(vec![BtfMember {
            name_off: s_name,
            type_id: 2,
            bits_offset: 0,
            bitfield_size: 0,
        }]),
    );
    ty(&mut b, "", false, 1, BtfTypeData::Ptr);
    let list = Btf::parse(&b.to_bytes()).unwrap();
    assert_eq!(list.resolve_size(1).unwrap(), 8);

    // A struct that contains itself.
    let mut b = Btf::new();
    ty(
        &mut b,
        "self",
        false,
        8,
        BtfTypeData::Struct(vec![BtfMember {
            name_off: 0,
            type_id: 1,
            bits_offset: 0,
            bitfield_size: 0,
        }]),
    );
    let e = Btf::parse(&b.to_bytes()).unwrap_err();
    assert!(
        matches!(
            e,
            BtfError::Loop {
                type_id: 1,
                offset: 24
            }
        ),
        "{e}"
    );
}

#[test]
fn resolve_limits() {
    // 40 chained typedefs: beyond libbpf's depth of 32.
    let mut b = Btf::new();
    ty(&mut b, "int", false, 4, int(1, 0, 32));
    for i in 0..40 {
        ty(&mut b, &format!("t{i}"), false, i + 1, BtfTypeData::Typedef);
    }
    let b = Btf::parse(&b.to_bytes()).unwrap();
    assert_eq!(b.resolve_size(30).unwrap(), 4);
    assert!(matches!(b.resolve_size(41), Err(BtfError::TooDeep { .. })));
    assert!(matches!(
        b.skip_modifiers(41),
        Err(BtfError::TooDeep { .. })
    ));

    // int[65536][65536][2]: more than 4 GiB.
    let mut b = Btf::new();
    ty(&mut b, "int", false, 4, int(1, 0, 32));
    let mut elem = 1;
    for n in [2, 65536, 65536] {
        elem = ty(
            &mut b,
            "",
            false,
            0,
            BtfTypeData::Array(BtfArray {
                elem_type: elem,
                index_type: 1,
                nelems: n,
            }),
        );
    }
    assert!(matches!(
        b.resolve_size(elem),
        Err(BtfError::SizeOverflow { .. })
    ));
}
