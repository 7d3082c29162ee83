//! bpfvm-bench — the benchmark harness of bpfvm (issue 7, item 5).
//!
//! The same programs (C sources in `benches/programs`, compiled to BPF once and
//! committed, and natively by `build.rs`) run on every engine side by side:
//! bpfvm's interpreter and JIT, rbpf's interpreter and JIT, DPDK's librte_bpf
//! interpreter and JIT (feature `dpdk`), the host kernel through
//! `BPF_PROG_TEST_RUN`, and the C functions called natively.
//!
//! Data flows: [`programs::PROGRAMS`] describes each program and makes its
//! input; every [`engine::Engine`] turns a program into a [`engine::Runner`] (or
//! says why it cannot run it); [`measure::measure`] times a runner in batches
//! and checks its r0 against native's; [`report`] prints the table and writes
//! the JSON files. Adding an engine is one `Engine` impl plus one line in
//! [`engines::all`] (as `bpfvm-jit` was).
//!
//! Dependencies: the `bpfvm` facade only (the runtime for programs that need
//! maps and helpers, `bpfvm::vm` for the raw interpreter and JIT, `bpfvm::Object`
//! for ELF objects), plus bpfvm-isa for raw instructions.

pub mod engine;
pub mod engines;
pub mod error;
pub mod measure;
pub mod programs;
pub mod report;

pub use engine::{Engine, Runner, Skip};
pub use error::BenchError;
pub use programs::{Program, Scale, PROGRAMS};
