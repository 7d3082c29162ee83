//! The object dumper never panics: truncated and corrupted objects give an
//! error or some output, nothing else.

use bpfvm_objdump::{objdump_with, ObjdumpOptions};
use std::path::Path;

fn corpus() -> Vec<Vec<u8>> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = Vec::new();
    for dir in [
        here.join("tests/data/objdump"),
        here.join("../../tests/fixtures/obj"),
    ] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        names.sort();
        for p in names
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "o"))
        {
            let b = std::fs::read(&p).unwrap();
            // gotol.o is 1.4 MB of code: too slow to mutate many times.
            if b.len() < 64 * 1024 {
                v.push(b);
            }
        }
    }
    v
}

#[test]
fn corrupted_objects_do_not_panic() {
    let opts = ObjdumpOptions {
        with_source: true,
        ..Default::default()
    };
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift64*: a fixed, reproducible sequence.
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let corpus = corpus();
    assert!(!corpus.is_empty());
    for obj in &corpus {
        for cut in [
            0,
            4,
            16,
            63,
            64,
            200,
            obj.len() / 2,
            obj.len().saturating_sub(1),
        ] {
            let _ = objdump_with("t.o", &obj[..cut.min(obj.len())], &opts);
        }
        for _ in 0..150 {
            let mut b = obj.clone();
            for _ in 0..1 + next() % 8 {
                let i = (next() % b.len() as u64) as usize;
                b[i] = next() as u8;
            }
            let _ = objdump_with("t.o", &b, &opts);
        }
    }
}
