//! Compiles the benchmark programs natively, twice: `clang-19 -O2` (suffix
//! `_native`) and `clang-19 -O2 -fno-vectorize -fno-slp-vectorize` (suffix
//! `_novec`). The same clang that builds the committed BPF objects builds the
//! native code, from the same sources, so the comparison is compiler-for-
//! compiler; without clang-19 the native engines are left out (cfg
//! `bench_native` unset) and the harness says so. `-fno-builtin` keeps the byte
//! loops loops (clang would otherwise call libc's memcpy, which is not the
//! program under test).
//!
//! With the `dpdk` feature, links DPDK's librte_bpf statically (the archive
//! exports the internal `bpf_jit` entry point the harness needs) and its
//! dependencies dynamically, found through pkg-config.

use std::path::Path;
use std::process::Command;

const PROGRAMS: [&str; 19] = [
    "prime",
    "log2_int",
    "memcpy",
    "strcmp",
    "switch",
    "switch64",
    "straight",
    "collatz",
    "const64",
    "divconst",
    "calls",
    "spill",
    "xdp_count",
    "parse",
    "printk",
    "hashmap",
    "lru",
    "percpu",
    "lpm",
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(bench_native)");
    println!("cargo:rerun-if-changed=programs");
    println!("cargo:rerun-if-env-changed=BPFVM_BENCH_CLANG");
    let clang = std::env::var("BPFVM_BENCH_CLANG").unwrap_or_else(|_| "clang-19".into());
    let have_clang = Command::new(&clang)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if have_clang {
        for (suffix, novec) in [("_native", false), ("_novec", true)] {
            let mut b = cc::Build::new();
            b.compiler(&clang)
                .opt_level(2)
                .debug(false)
                .warnings(false)
                .flag("-fno-builtin")
                .define("BENCH_SUFFIX", suffix);
            if novec {
                b.flag("-fno-vectorize").flag("-fno-slp-vectorize");
            }
            for p in PROGRAMS {
                b.file(Path::new("programs").join(format!("{p}.c")));
            }
            b.compile(&format!("bench{suffix}"));
        }
        println!("cargo:rustc-cfg=bench_native");
    } else {
        println!("cargo:warning={clang} not found: the native engines will be skipped");
    }

    if std::env::var_os("CARGO_FEATURE_DPDK").is_some() {
        link_dpdk();
    }
    link_peers();
}

/// uBPF and llvmbpf, when `BPFVM_BENCH_PEERS` names a directory holding them, built
/// outside this repository (`ubpf/lib/libubpf.a`; `llvmbpf/libbench_llvmbpf.a`,
/// a static library exporting the C functions `engines/llvmbpf.rs` declares,
/// `llvmbpf/llvm-libdir` and optionally `llvmbpf/link-libs`): cfg `bench_ubpf` / `bench_llvmbpf`, else the
/// harness's columns say what is missing. Their sources and how they are built
/// are not part of the project.
fn link_peers() {
    println!("cargo::rustc-check-cfg=cfg(bench_ubpf)");
    println!("cargo::rustc-check-cfg=cfg(bench_llvmbpf)");
    println!("cargo:rerun-if-env-changed=BPFVM_BENCH_PEERS");
    let Some(dir) = std::env::var_os("BPFVM_BENCH_PEERS") else {
        return;
    };
    let dir = Path::new(&dir);
    let ubpf = dir.join("ubpf/lib/libubpf.a");
    println!("cargo:rerun-if-changed={}", ubpf.display());
    if ubpf.exists() {
        println!("cargo:rustc-link-arg={}", ubpf.display());
        println!("cargo:rustc-link-arg=-lm");
        println!("cargo:rustc-cfg=bench_ubpf");
    } else {
        println!("cargo:warning=BPFVM_BENCH_PEERS: no {}", ubpf.display());
    }
    let llvmbpf = dir.join("llvmbpf/libbench_llvmbpf.a");
    println!("cargo:rerun-if-changed={}", llvmbpf.display());
    if llvmbpf.exists() {
        let libdir = std::fs::read_to_string(dir.join("llvmbpf/llvm-libdir"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "/usr/lib/llvm-15/lib".into());
        println!("cargo:rustc-link-arg={}", llvmbpf.display());
        println!("cargo:rustc-link-arg=-L{libdir}");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{libdir}");
        // The peer's build may need more libraries than these (a system
        // spdlog, say): it lists them, one per line, in llvmbpf/link-libs.
        let extra = std::fs::read_to_string(dir.join("llvmbpf/link-libs")).unwrap_or_default();
        for lib in ["LLVM-15", "fmt", "stdc++"]
            .into_iter()
            .chain(extra.lines().map(str::trim).filter(|l| !l.is_empty()))
        {
            println!("cargo:rustc-link-arg=-l{lib}");
        }
        println!("cargo:rustc-cfg=bench_llvmbpf");
    } else {
        println!("cargo:warning=BPFVM_BENCH_PEERS: no {}", llvmbpf.display());
    }
}

fn link_dpdk() {
    let libdir = Command::new("pkg-config")
        .args(["--variable=libdir", "libdpdk"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| {
            panic!("the dpdk feature needs DPDK (apt-get install libdpdk-dev): pkg-config finds no libdpdk")
        });
    let archive = Path::new(&libdir).join("librte_bpf.a");
    assert!(
        archive.exists(),
        "{} is missing (libdpdk-dev ships it)",
        archive.display()
    );
    println!("cargo:rustc-link-arg={}", archive.display());
    for lib in [
        "rte_eal",
        "rte_mbuf",
        "rte_mempool",
        "rte_ring",
        "rte_kvargs",
        "rte_telemetry",
        "rte_ethdev",
        "rte_net",
        "elf",
    ] {
        println!("cargo:rustc-link-arg=-l{lib}");
    }
    println!("cargo:rustc-link-search=native={libdir}");
    let version = Command::new("pkg-config")
        .args(["--modversion", "libdpdk"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=BENCH_DPDK_VERSION={version}");
}
