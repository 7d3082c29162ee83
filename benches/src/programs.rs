//! The benchmark programs: which object and function each one is, and its input.

use crate::error::BenchError;
use bpfvm_isa::Insn;
use std::path::{Path, PathBuf};

/// How a program is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `u64 f(u8 *mem, u64 len)`: r1 = the memory block, r2 = its length.
    Compute,
    /// An XDP program that calls map helpers: run through a runtime's test run.
    Packet,
}

/// Input sizes: the benchmark's, or small ones for the smoke test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Full,
    Small,
}

/// A benchmark program at one `-mcpu` level.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    /// Name in the report: `<program>/<cpu>`.
    pub name: &'static str,
    /// Source and object stem: `programs/<source>.c`, `programs/<source>.v<cpu>.bpf.o`.
    pub source: &'static str,
    /// The function (BPF program) in the object.
    pub function: &'static str,
    /// An XDP variant of a compute program for the host kernel, if it has one.
    pub kernel_entry: Option<&'static str>,
    pub kind: Kind,
    /// `-mcpu` of the object: 2 or 4.
    pub cpu: u8,
    what: What,
}

#[derive(Debug, Clone, Copy)]
enum What {
    Prime,
    Log2,
    Memcpy,
    StrcmpEqual,
    StrcmpMismatch,
    Switch,
    Switch64,
    Straight,
    Collatz,
    Words,
    Udp,
    Parse,
    Hash,
    Percpu,
    Lpm,
}

/// One program at v2 and at v4 (two rows).
macro_rules! both {
    ($name:literal, $function:literal, $kernel:expr, $kind:expr, $what:expr) => {
        both!($name, $name, $function, $kernel, $kind, $what)
    };
    ($name:literal, $source:literal, $function:literal, $kernel:expr, $kind:expr, $what:expr) => {
        [
            Program {
                name: concat!($name, "/v2"),
                source: $source,
                function: $function,
                kernel_entry: $kernel,
                kind: $kind,
                cpu: 2,
                what: $what,
            },
            Program {
                name: concat!($name, "/v4"),
                source: $source,
                function: $function,
                kernel_entry: $kernel,
                kind: $kind,
                cpu: 4,
                what: $what,
            },
        ]
    };
}

const C: Kind = Kind::Compute;
const P: Kind = Kind::Packet;
const NAMES: usize = 20;

const ROWS: [[Program; 2]; NAMES] = [
    both!(
        "prime",
        "bench_prime",
        Some("bench_prime_xdp"),
        C,
        What::Prime
    ),
    both!("log2_int", "bench_log2_int", None, C, What::Log2),
    both!("memcpy", "bench_memcpy", None, C, What::Memcpy),
    both!("strcmp", "bench_strcmp", None, C, What::StrcmpEqual),
    both!(
        "strcmp_mismatch",
        "strcmp",
        "bench_strcmp",
        None,
        C,
        What::StrcmpMismatch
    ),
    both!("switch", "bench_switch", None, C, What::Switch),
    both!("switch64", "bench_switch64", None, C, What::Switch64),
    both!("straight", "bench_straight", None, C, What::Straight),
    both!("collatz", "bench_collatz", None, C, What::Collatz),
    both!("const64", "bench_const64", None, C, What::Words),
    both!("divconst", "bench_divconst", None, C, What::Words),
    both!("calls", "bench_calls", None, C, What::Words),
    both!("spill", "bench_spill", None, C, What::Words),
    both!("xdp_count", "xdp_count", None, P, What::Udp),
    both!("parse", "xdp_parse", None, P, What::Parse),
    both!("printk", "xdp_printk", None, P, What::Udp),
    both!("hashmap", "hashmap", None, P, What::Hash),
    both!("lru", "lru", None, P, What::Hash),
    both!("percpu", "percpu", None, P, What::Percpu),
    both!("lpm", "lpm", None, P, What::Lpm),
];

/// Every program, in report order (each at v2, then at v4).
pub const PROGRAMS: [Program; 2 * NAMES] = {
    let mut out = [ROWS[0][0]; 2 * NAMES];
    let mut i = 0;
    while i < NAMES {
        out[2 * i] = ROWS[i][0];
        out[2 * i + 1] = ROWS[i][1];
        i += 1;
    }
    out
};

/// A program's input.
#[derive(Debug, Clone)]
pub struct Input {
    /// Compute programs: the memory block (r1 points at its start, r2 = its
    /// length). Packet programs: the frame.
    pub data: Vec<u8>,
    /// Entries to put in the program's map before the runs: (map name, key, value).
    pub map_entries: Vec<(&'static str, Vec<u8>, Vec<u8>)>,
}

/// The hash map program's map contents: even keys 0..2046, value k * k + 7.
pub fn hash_entries() -> impl Iterator<Item = (u32, u64)> {
    (0..1024u32).map(|i| {
        let k = 2 * i;
        (k, (k as u64) * (k as u64) + 7)
    })
}

/// The LPM program's routes: 64 distinct prefixes inside 10.0.0.0/8 of lengths
/// 8 to 32, as (prefix length, address in host order, value = number + 1).
pub fn lpm_entries() -> impl Iterator<Item = (u32, u32, u64)> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    while out.len() < 64 {
        let len = 8 + (rng.next() % 25) as u32;
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let addr = (0x0a00_0000 | (rng.next() as u32 >> 8)) & mask;
        if seen.insert((len, addr)) {
            out.push((len, addr, out.len() as u64 + 1));
        }
    }
    out.into_iter()
}

/// xorshift64*: a fixed, portable pseudo-random sequence for the inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A 64-byte Ethernet / IPv4 / UDP frame to destination port 4789.
pub fn udp_frame() -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&50u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&1234u16.to_be_bytes());
    udp[2..4].copy_from_slice(&4789u16.to_be_bytes());
    udp[4..6].copy_from_slice(&30u16.to_be_bytes());
    f
}

/// An IPv6/TCP frame behind two VLAN tags (802.1ad, then 802.1Q), with a
/// hop-by-hop options header and TCP options (MSS, NOPs, timestamp): the parse
/// program walks all of it.
pub fn parse_frame() -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
    f.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0xc8, 0x86, 0xdd]);
    // IPv6: version 6, payload length, next header 0 (hop-by-hop), hop limit 64.
    let tcp_len = 36u16;
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(8 + tcp_len + 8).to_be_bytes());
    f.extend_from_slice(&[0, 64]);
    f.extend((0..16).map(|i| 0x20 + i as u8));
    f.extend((0..16).map(|i| 0x40 + i as u8));
    // Hop-by-hop: next header TCP, length 0 (8 bytes), PadN.
    f.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
    // TCP: ports 443 -> 51000, seq, ack, data offset 9 (36 bytes), ACK.
    f.extend_from_slice(&443u16.to_be_bytes());
    f.extend_from_slice(&51000u16.to_be_bytes());
    f.extend_from_slice(&[
        0, 0, 0x10, 0, 0, 0, 0x20, 0, 0x90, 0x10, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    // Options: MSS, NOP, NOP, timestamp.
    f.extend_from_slice(&[2, 4, 0x05, 0xb4, 1, 1]);
    f.extend_from_slice(&[8, 10, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0]);
    f.resize(f.len() + 8, 0);
    f
}

impl Program {
    /// The directory of the sources and committed objects.
    pub fn dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("programs")
    }

    /// The committed object of this row's `-mcpu` level.
    pub fn object_path(&self) -> PathBuf {
        Self::dir().join(format!("{}.v{}.bpf.o", self.source, self.cpu))
    }

    /// Instructions of `function` in the object at `path` (no map relocations
    /// applied: compute programs have none).
    pub fn insns_from(path: &Path, function: &str) -> Result<Vec<Insn>, BenchError> {
        let obj = bpfvm::Object::open(path).map_err(|source| BenchError::Object {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        obj.programs
            .into_iter()
            .find(|p| p.name == function)
            .map(|p| p.insns)
            .ok_or_else(|| BenchError::NoProgram {
                path: path.to_path_buf(),
                name: function.to_string(),
            })
    }

    /// The program's instructions.
    pub fn insns(&self) -> Result<Vec<Insn>, BenchError> {
        Self::insns_from(&self.object_path(), self.function)
    }

    /// Makes the program's input.
    pub fn input(&self, scale: Scale) -> Input {
        let big = match scale {
            Scale::Full => 1 << 20,
            Scale::Small => 1 << 14,
        };
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let data = match self.what {
            What::Prime => vec![0u8; 8],
            What::Log2 => (0..1024)
                .flat_map(|_| {
                    // Values of every magnitude, never 0.
                    let v = (rng.next() >> (rng.next() % 64)) | 1;
                    v.to_le_bytes()
                })
                .collect(),
            What::Memcpy => {
                let mut d: Vec<u8> = (0..big).map(|_| rng.next() as u8).collect();
                d.resize(2 * big, 0);
                d
            }
            What::StrcmpEqual | What::StrcmpMismatch => {
                let mut a: Vec<u8> = (0..big).map(|_| b'a' + (rng.next() % 26) as u8).collect();
                a[big - 1] = 0;
                let mut b = a.clone();
                if matches!(self.what, What::StrcmpMismatch) {
                    b[big * 27 / 100] = b'~';
                }
                a.extend_from_slice(&b);
                a
            }
            What::Switch | What::Switch64 => (0..4096).map(|_| (rng.next() % 64) as u8).collect(),
            What::Straight => (0..64).map(|_| rng.next() as u8).collect(),
            What::Collatz => (0..256)
                .flat_map(|_| ((1 + rng.next() % 100_000) as u32).to_le_bytes())
                .collect(),
            What::Words => (0..1024).flat_map(|_| rng.next().to_le_bytes()).collect(),
            What::Udp | What::Hash | What::Percpu | What::Lpm => udp_frame(),
            What::Parse => parse_frame(),
        };
        let map_entries = match self.what {
            What::Hash => hash_entries()
                .map(|(k, v)| {
                    let map = if self.source == "lru" {
                        "lru_table"
                    } else {
                        "table"
                    };
                    (map, k.to_le_bytes().to_vec(), v.to_le_bytes().to_vec())
                })
                .collect(),
            What::Lpm => lpm_entries()
                .map(|(len, addr, v)| {
                    let mut key = len.to_le_bytes().to_vec();
                    key.extend_from_slice(&addr.to_be_bytes());
                    ("routes", key, v.to_le_bytes().to_vec())
                })
                .collect(),
            _ => Vec::new(),
        };
        Input { data, map_entries }
    }
}

/// A compute program's memory block, 8-byte aligned, with an 8-byte header
/// holding the payload's length in front of it. Engines that can set r2 pass
/// r1 = the payload, r2 = its length; engines that set only r1 (rbpf, DPDK) get
/// r1 = the header and run the program behind a two-instruction prologue
/// ([`len_prologue`]) that loads r2 and steps r1 over the header.
pub struct Block {
    words: Vec<u64>,
    len: usize,
}

impl Block {
    pub fn new(payload: &[u8]) -> Block {
        let mut words = vec![0u64; 1 + payload.len().div_ceil(8)];
        words[0] = payload.len() as u64;
        // SAFETY: words holds 8 * words.len() >= 8 + payload.len() bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, words.len() * 8)
        };
        bytes[8..8 + payload.len()].copy_from_slice(payload);
        Block {
            words,
            len: payload.len(),
        }
    }

    /// r1 for engines that take r2.
    pub fn payload_ptr(&mut self) -> *mut u8 {
        // SAFETY: one word into the allocation.
        unsafe { (self.words.as_mut_ptr() as *mut u8).add(8) }
    }

    /// r2 for engines that take r2.
    pub fn payload_len(&self) -> usize {
        self.len
    }

    /// Header and payload, for engines that take only r1.
    pub fn with_header(&mut self) -> &mut [u8] {
        let n = 8 + self.len;
        // SAFETY: the allocation holds at least 8 + len bytes.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr() as *mut u8, n) }
    }

    /// The payload bytes.
    pub fn payload(&mut self) -> &mut [u8] {
        let n = self.len;
        &mut self.with_header()[8..8 + n]
    }
}

/// `r2 = *(u64 *)(r1 + 0); r1 += 8`: for engines that set only r1. Jumps are
/// relative, so the program behind it needs no change.
pub fn len_prologue() -> [Insn; 2] {
    [
        // BPF_LDX | BPF_MEM | BPF_DW
        Insn {
            code: 0x79,
            dst_reg: 2,
            src_reg: 1,
            off: 0,
            imm: 0,
        },
        // BPF_ALU64 | BPF_ADD | BPF_K
        Insn {
            code: 0x07,
            dst_reg: 1,
            src_reg: 0,
            off: 0,
            imm: 8,
        },
    ]
}
