//! Kfuncs, `.kconfig` externs and the map types holding kernel objects, as
//! programs see them: a table `{name, program, input, expected}` over
//! tests/data/kfunc/kfunc.o (source beside it), run on the interpreter and
//! the JIT. The expected return values are the ones Linux 6.18 gave for the
//! same programs and packet (`bpftool prog run`); where the host kernel can
//! load programs (root, bpftool) they are asked live as well.
//!
//! missing.o checks that an object loads per program: one program calling a
//! kfunc nobody has, one calling conntrack, one calling an XDP metadata kfunc
//! without a device; the plain one loads, the others are refused with the
//! kfunc (or the kernel's reason) named.

mod fixture_kernel;

use bpfvm::{BpfError, LoadOpts, Object, Runtime};
use fixture_kernel::{bpfvm_retval, kernel_retvals};
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/kfunc")
        .join(name)
}

/// The packet: 0x00 0x7f then 62 bytes of 0x01.
fn packet() -> Vec<u8> {
    let mut p = vec![1u8; 64];
    p[0] = 0;
    p[1] = 0x7f;
    p
}

struct Case {
    name: &'static str,
    /// What Linux 6.18 returned (as a u32, the way test runs report it).
    expected: u32,
}

const CASES: &[Case] = &[
    // sum of bpf_iter_num over [0, 100)
    Case {
        name: "iter_sum",
        expected: 4950,
    },
    // bit indexes 1+4+8+70 from bpf_iter_bits over two words
    Case {
        name: "bits_sum",
        expected: 83,
    },
    // (6.18 version >> 8) * 1000 + HAS_BPF_COOKIE * 100 + (HZ == 250) * 10
    // + a weak CONFIG_ nobody sets
    Case {
        name: "kconfig",
        expected: 1_554_110,
    },
    // bpf_perf_event_output with no perf event open: -ENOENT
    Case {
        name: "perf_out",
        expected: -2i32 as u32,
    },
    // pushed value found, another value not
    Case {
        name: "bloom_membership",
        expected: 10,
    },
    Case {
        name: "kern_ctx",
        expected: 1,
    },
    // the packet's second byte through bpf_dynptr_slice
    Case {
        name: "dynptr_byte",
        expected: 0x7f,
    },
    // a __weak kfunc nobody has: bpf_ksym_exists is false, the call dead
    Case {
        name: "weak_missing",
        expected: 7,
    },
];

#[test]
fn kfunc_programs_return_what_the_kernel_returns() {
    let obj = Object::open(data("kfunc.o")).expect("kfunc.o");
    let mut failures = Vec::new();
    for jit in [false, true] {
        let rt = Runtime::with_cpus(1);
        rt.set_jit(jit);
        for c in CASES {
            match bpfvm_retval(&rt, &obj, c.name, &packet()) {
                Ok(v) if v == c.expected => {}
                Ok(v) => failures.push(format!(
                    "{} ({}): {v:#x}, kernel {:#x}",
                    c.name,
                    if jit { "jit" } else { "interpreter" },
                    c.expected
                )),
                Err(e) => failures.push(format!("{}: {e}", c.name)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// With a reader on its CPU's slot the record is kept (and the helper
/// returns 0); the data is the bytes given, then the packet bytes asked for.
#[test]
fn perf_event_output_reaches_an_open_reader() {
    let obj = Object::open(data("kfunc.o")).expect("kfunc.o");
    let rt = Runtime::with_cpus(1);
    let l = rt
        .load_object_with(
            &obj,
            None,
            &LoadOpts {
                programs: Some(vec!["perf_out".into()]),
                ..Default::default()
            },
        )
        .expect("load");
    let m = l.map("events").expect("events map");
    assert_eq!(
        m.obj().attr().max_entries,
        1,
        "sized to the CPUs, as libbpf"
    );
    let pea = m.obj().perf_event_array().expect("perf_event_array");
    pea.open(0, 0).unwrap();
    let p = l.prog("perf_out").unwrap();
    assert_eq!(rt.run_packet(p, &packet()).unwrap().retval, 0);
    let recs = pea.read(0);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].data, [0x44, 0x33, 0x22, 0x11, 0x55, 0, 0x7f, 1, 1]);
    pea.close(0);
    assert_eq!(rt.run_packet(p, &packet()).unwrap().retval as i32, -2);
}

#[test]
fn unresolvable_externs_refuse_only_their_programs() {
    let obj = Object::open(data("missing.o")).expect("missing.o");
    let rt = Runtime::with_cpus(1);
    let only = |n: &str| LoadOpts {
        programs: Some(vec![n.to_string()]),
        ..Default::default()
    };
    let l = rt
        .load_object_with(&obj, None, &only("plain"))
        .expect("plain loads");
    assert_eq!(
        rt.run_packet(l.prog("plain").unwrap(), &packet())
            .unwrap()
            .retval,
        2
    );
    let e = rt
        .load_object_with(&obj, None, &only("strong_missing"))
        .unwrap_err();
    assert!(
        matches!(&e, BpfError::Extern { name, .. } if name == "bpf_kfunc_nobody_has"),
        "{e}"
    );
    let e = rt
        .load_object_with(&obj, None, &only("conntrack"))
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("bpf_xdp_ct_lookup") && msg.contains("conntrack"),
        "{msg}"
    );
    let e = rt
        .load_object_with(&obj, None, &only("rx_timestamp"))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("metadata kfuncs require device-bound program"),
        "{e}"
    );
    // The whole object fails, as libbpf fails it.
    assert!(rt.load_object(&obj, None).is_err());
}

/// A `.kconfig` value that a given config sets, and a strong one it lacks.
#[test]
fn kconfig_from_a_config_file() {
    let obj = Object::open(data("kfunc.o")).expect("kfunc.o");
    let rt = Runtime::with_cpus(1);
    let k = bpfvm::Kconfig::with_config_text("CONFIG_HZ=100\n# CONFIG_FOO is not set\n");
    let opts = LoadOpts {
        programs: Some(vec!["kconfig".into()]),
        kconfig: Some(std::sync::Arc::new(k)),
        ..Default::default()
    };
    let l = rt.load_object_with(&obj, None, &opts).expect("load");
    let r = rt
        .run_packet(l.prog("kconfig").unwrap(), &packet())
        .unwrap();
    assert_eq!(r.retval, 1_554_100, "HZ is 100 there");
    let none = bpfvm::Kconfig::with_config_text("");
    let opts = LoadOpts {
        kconfig: Some(std::sync::Arc::new(none)),
        ..opts
    };
    let e = rt.load_object_with(&obj, None, &opts).unwrap_err();
    assert!(
        matches!(&e, BpfError::Extern { name, .. } if name == "CONFIG_HZ"),
        "{e}"
    );
}

/// The same programs in the host kernel, when it can be asked.
#[test]
fn live_kernel_agrees() {
    let names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    let got = match kernel_retvals(&data("kfunc.o"), &packet(), &names) {
        Ok(g) => g,
        Err(why) => {
            eprintln!("skipping: {why}");
            return;
        }
    };
    let diffs: Vec<String> = CASES
        .iter()
        .zip(got)
        .filter(|(c, got)| *got != Some(c.expected))
        .map(|(c, got)| format!("{}: kernel {got:?}, recorded {}", c.name, c.expected))
        .collect();
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
