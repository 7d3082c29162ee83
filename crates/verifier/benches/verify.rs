//! Verification time: bpfvm-verifier on the fixture programs and on a
//! generated 4,000-instruction program, beside the host kernel's
//! BPF_PROG_LOAD time for the same instructions when we are root.
//! Prints a table; `cargo bench -p bpfvm-verifier`.

#[path = "../tests/common/mod.rs"]
mod common;

use bpfvm_isa::Insn;
use bpfvm_verifier::*;
use common::*;
use std::time::Instant;

/// Best-of-n wall time of `f` in microseconds.
fn time_us(n: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..n {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64() * 1e6);
    }
    best
}

/// 4,000 instructions of XDP parsing: bounds checks, loads, branches, map
/// value updates, spread over 666 blocks of six.
fn generated() -> (Vec<Insn>, Vec<MapDesc>) {
    let mut p = vec![
        Insn::new(0x61, 2, 1, 0, 0),
        Insn::new(0x61, 3, 1, 4, 0),
        Insn::new(0xb7, 0, 0, 0, 0),
        Insn::new(0x18, 7, 2, 0, 1),
        Insn::new(0, 0, 0, 0, 0),
    ];
    let blocks = (4000 - p.len() - 2) / 6;
    for b in 0..blocks {
        let k = (b % 60) as i32 + 1;
        let remaining = (blocks - b - 1) * 6;
        p.push(Insn::new(0xbf, 4, 2, 0, 0)); // r4 = data
        p.push(Insn::new(0x07, 4, 0, 0, k)); // r4 += k
        p.push(Insn::new(0x2d, 4, 3, (remaining + 3) as i16, 0)); // if r4 > r3 goto end
        p.push(Insn::new(0x71, 5, 2, (k - 1) as i16, 0)); // r5 = *(u8 *)(r2 + k - 1)
        p.push(Insn::new(0x0f, 0, 5, 0, 0)); // r0 += r5
        p.push(Insn::new(0x7b, 7, 0, ((b % 6) * 8) as i16, 0)); // *(u64 *)(r7 + off) = r0
    }
    p.push(Insn::new(0xb7, 0, 0, 0, 2));
    p.push(Insn::new(0x95, 0, 0, 0, 0));
    let maps = vec![MapDesc {
        id: 1,
        map_type: BPF_MAP_TYPE_ARRAY,
        key_size: 4,
        value_size: 48,
        max_entries: 1,
        name: "global".into(),
        ..Default::default()
    }];
    (p, maps)
}

fn main() {
    let root = is_root();
    println!(
        "{:<36} {:>6} {:>10} {:>12} {:>12}",
        "program", "insns", "processed", "bpfvm (us)", "kernel (us)"
    );
    let mut rows: Vec<(String, Vec<Insn>, Vec<MapDesc>, VerifierOpts)> = Vec::new();
    let fixtures = [
        ("hello.o", "hello"),
        ("xdp_parse.o", "xdp_parse"),
        ("maps.o", "map_ops_run"),
        ("ringbuf.o", "rb_xdp"),
        ("loops.o", "loops_run"),
        ("cpuv4.o", "cpuv4_run"),
        ("globals.o", "globals_run"),
        ("gotol.o", "gotol_run"),
        ("skb.o", "sock_filter"),
        ("xdp_adjust.o", "push_tag"),
    ];
    for (obj, prog) in fixtures {
        if let Some(fx) = load_fixture(obj, prog) {
            let mut opts = fx.opts;
            opts.log_level = 0;
            rows.push((format!("{obj}/{prog}"), fx.insns, fx.maps, opts));
        }
    }
    let (g, gm) = generated();
    rows.push((
        "generated 4000-insn xdp".into(),
        g,
        gm,
        VerifierOpts {
            prog_type: BPF_PROG_TYPE_XDP,
            ..Default::default()
        },
    ));
    for (name, insns, maps, opts) in rows {
        let lookup = |id: u32| maps.iter().find(|m| m.id == id).cloned();
        let r = verify(&insns, &lookup, &opts);
        let processed = match &r {
            Ok(v) => v.stats.processed.to_string(),
            Err(e) => format!("refused: {}", e.error),
        };
        let ours = time_us(20, || {
            let _ = verify(&insns, &lookup, &opts);
        });
        let kernel = if root {
            kernel_load_time(&insns, &maps, opts.prog_type, 10)
                .map(|t| format!("{t:.0}"))
                .unwrap_or_else(|| "-".into())
        } else {
            "(not root)".into()
        };
        println!(
            "{name:<36} {:>6} {processed:>10} {ours:>12.0} {kernel:>12}",
            insns.len()
        );
    }
}
