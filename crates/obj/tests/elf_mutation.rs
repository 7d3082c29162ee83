//! Mutation test: bit flips, byte and word overwrites (aimed at the ELF
//! header, section headers, symbol table, relocations and BTF, where the
//! parser's bounds checks live) and truncations of every fixture object.
//! Object::parse must return, never panic, and stay fast.
//!
//! `BPFVM_MUTATIONS=N` sets the iterations per object (default 300).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bpfvm_obj::Object;

/// xorshift64*: deterministic, so a failure names a reproducible seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn objects() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [
        root.join("../../tests/fixtures/obj"),
        root.join("tests/data/elf"),
    ] {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "o") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn rd(b: &[u8], o: usize, n: usize) -> usize {
    let mut v = 0usize;
    for i in (0..n).rev() {
        v = (v << 8) | *b.get(o + i).unwrap_or(&0) as usize;
    }
    v
}

/// Byte ranges where the structure lives: the ELF header, the section
/// header table, and the symbol table, relocation and BTF sections.
fn hot_ranges(b: &[u8]) -> Vec<(usize, usize)> {
    let mut r = vec![(0, 64)];
    let shoff = rd(b, 40, 8);
    let shnum = rd(b, 60, 2);
    r.push((shoff, shoff + 64 * shnum));
    for i in 0..shnum {
        let h = shoff + 64 * i;
        let ty = rd(b, h + 4, 4);
        let (off, size) = (rd(b, h + 24, 8), rd(b, h + 32, 8));
        // SYMTAB, REL, and the first bytes of every PROGBITS (BTF, maps,
        // code) section.
        match ty {
            2 | 9 => r.push((off, off + size)),
            1 => r.push((off, off + size.min(256))),
            _ => {}
        }
    }
    r.retain(|&(a, z)| a < z && z <= b.len());
    r
}

fn mutate(rng: &mut Rng, orig: &[u8], hot: &[(usize, usize)]) -> Vec<u8> {
    let mut b = orig.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        if b.is_empty() {
            break;
        }
        let at = if rng.below(4) != 0 && !hot.is_empty() {
            let (a, z) = hot[rng.below(hot.len())];
            a + rng.below(z - a)
        } else {
            rng.below(b.len())
        }
        .min(b.len() - 1);
        match rng.below(6) {
            0 | 1 => b[at] ^= 1 << rng.below(8),
            2 => b[at] = [0, 0xff, 0x7f, 0x80, 1, 8][rng.below(6)],
            3 => {
                let v: u32 = [0, u32::MAX, 0x7fff_ffff, 0x8000_0000, 1, 8, 0xffff][rng.below(7)];
                let end = (at + 4).min(b.len());
                b[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
            }
            4 => {
                let v: u64 = [0, u64::MAX, 1 << 63, 64, rng.next()][rng.below(5)];
                let end = (at + 8).min(b.len());
                b[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
            }
            _ => b.truncate(at),
        }
    }
    b
}

#[test]
fn mutated_objects_never_panic() {
    let iters: usize = std::env::var("BPFVM_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut total = 0;
    let mut accepted = 0;
    let mut slowest = Duration::ZERO;
    for path in objects() {
        let orig = std::fs::read(&path).unwrap();
        let hot = hot_ranges(&orig);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for i in 0..iters {
            let seed = 0x9e37_79b9_7f4a_7c15 ^ ((total as u64 + 1) * 0x1000_0001);
            let mut rng = Rng(seed);
            let bytes = mutate(&mut rng, &orig, &hot);
            let start = Instant::now();
            let r = catch_unwind(AssertUnwindSafe(|| Object::parse(&name, &bytes)));
            slowest = slowest.max(start.elapsed());
            match r {
                Ok(Ok(_)) => accepted += 1,
                Ok(Err(e)) => assert!(e.to_string().starts_with(&format!("{name}: "))),
                Err(_) => {
                    let dump = std::env::temp_dir().join(format!("bpfvm-obj-crash-{name}-{i}"));
                    std::fs::write(&dump, &bytes).unwrap();
                    panic!(
                        "{name}: mutation {i} (seed {seed:#x}) panicked; input in {}",
                        dump.display()
                    );
                }
            }
            total += 1;
        }
    }
    eprintln!("{total} mutated objects, {accepted} still parsed, slowest {slowest:?}");
    assert!(total >= 5000, "only {total} mutations");
    assert!(
        slowest < Duration::from_secs(5),
        "a mutated object took {slowest:?}"
    );
}

#[test]
fn every_truncation_of_hello_fails_cleanly() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/obj/hello.o");
    let b = std::fs::read(path).unwrap();
    for len in 0..b.len() {
        let r = catch_unwind(|| Object::parse("hello.o", &b[..len]));
        match r {
            Ok(r) => assert!(r.is_err(), "truncated to {len} still parsed"),
            Err(_) => panic!("truncated to {len}: panic"),
        }
    }
}
