//! Mutation loop over real BTF and BTF.ext (from the test objects): bit
//! flips, interesting bytes and words, truncations. Parsing, serialising,
//! the type dumps and the value printer must never panic, and whatever
//! parses must survive a round trip through `to_bytes`.
//! Deterministic (fixed seeds); BPFVM_FUZZ_ITERS raises the iteration count.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use bpfvm_obj::btf::{
    dump_btf_json, dump_btf_plain, dump_value, write_bpftool_pretty, Btf, BtfExt, DumpMode,
};
use object::{Object, ObjectSection};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: small, deterministic, good enough to pick mutations.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn sections(obj: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/btf")
        .join(obj);
    let elf = std::fs::read(&path).unwrap();
    let file = object::File::parse(&*elf).unwrap();
    let get = |n: &str| file.section_by_name(n).map(|s| s.data().unwrap().to_vec());
    (get(".BTF").unwrap(), get(".BTF.ext"))
}

fn iterations() -> usize {
    std::env::var("BPFVM_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

fn mutate(rng: &mut Rng, orig: &[u8]) -> Vec<u8> {
    let mut b = orig.to_vec();
    for _ in 0..1 + rng.below(4) {
        if b.is_empty() {
            break;
        }
        let pos = rng.below(b.len());
        match rng.below(5) {
            0 => b[pos] ^= 1 << rng.below(8),
            1 => b[pos] = [0, 0xff, 0x7f, 0x80, 1][rng.below(5)],
            2 => {
                // Whole little-endian words hit counts, ids and offsets.
                let p = pos & !3;
                let v: u32 =
                    [0, 1, 0xffff, 0xffff_ffff, 0x8000_0000, 0x7fff_ffff, 64][rng.below(7)];
                if p + 4 <= b.len() {
                    b[p..p + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            3 => b.truncate(pos),
            _ => {
                let v = rng.next() as u8;
                b[pos] = v;
            }
        }
    }
    b
}

/// Returns whether the mutated blob still parsed.
fn exercise(blob: &[u8], data: &[u8]) -> bool {
    let Ok(btf) = Btf::parse(blob) else {
        return false;
    };
    let again = Btf::parse(&btf.to_bytes()).expect("to_bytes of a parsed btf parses");
    assert_eq!(again, btf);
    let _ = dump_btf_plain(&btf);
    let _ = bpfvm_obj::btf::dump_btf_c(&btf);
    let _ = write_bpftool_pretty(&dump_btf_json(&btf));
    for id in 0..=btf.nr_types().min(400) + 1 {
        let _ = btf.resolve_size(id);
        let _ = btf.skip_modifiers(id);
        let _ = btf.name(id);
        for mode in [DumpMode::Plain, DumpMode::Json] {
            let v = dump_value(&btf, id, data, mode);
            let _ = v.value.to_bpftool_pretty();
            let _ = v.value.to_json();
        }
    }
    true
}

fn run(obj: &str, seed: u64) {
    let (btf_raw, ext_raw) = sections(obj);
    let base = Btf::parse(&btf_raw).unwrap();
    let mut rng = Rng(seed);
    let data: Vec<u8> = (0..512).map(|_| rng.next() as u8).collect();
    let mut parsed = 0;
    for i in 0..iterations() {
        let m = mutate(&mut rng, &btf_raw);
        let len = rng.below(data.len());
        let r = catch_unwind(AssertUnwindSafe(|| exercise(&m, &data[..len])));
        if let Ok(true) = r {
            parsed += 1;
        }
        if r.is_err() {
            let path = std::env::temp_dir().join(format!("btf_fuzz_{obj}_{i}.btf"));
            let _ = std::fs::write(&path, &m);
            panic!(
                "{obj}: iteration {i} panicked; input saved to {}",
                path.display()
            );
        }
        if let Some(ext) = &ext_raw {
            let m = mutate(&mut rng, ext);
            let r = catch_unwind(AssertUnwindSafe(|| {
                let _ = BtfExt::parse(&m, &base);
            }));
            assert!(r.is_ok(), "{obj}: btf.ext iteration {i} panicked");
        }
    }
    eprintln!("{obj}: {parsed} of {} mutants parsed", iterations());
    // Most single mutations land in names or ids that still validate; if
    // almost none parse, the printer is not being exercised.
    assert!(parsed * 10 > iterations(), "only {parsed} mutants parsed");
}

#[test]
fn fuzz_values_btf() {
    run("values.o", 0x9e37_79b9_7f4a_7c15);
}

#[test]
fn fuzz_kinds_btf() {
    run("kinds.o", 0xd1b5_4a32_d192_ed03);
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    for obj in ["values.o", "kinds.o"] {
        let (btf_raw, ext_raw) = sections(obj);
        let btf = Btf::parse(&btf_raw).unwrap();
        for len in 0..btf_raw.len() {
            assert!(Btf::parse(&btf_raw[..len]).is_err(), "{obj}: prefix {len}");
        }
        if let Some(ext) = ext_raw {
            for len in 0..ext.len() {
                assert!(
                    BtfExt::parse(&ext[..len], &btf).is_err(),
                    "{obj}: ext prefix {len}"
                );
            }
        }
    }
}
