//! The engine interface: what the harness needs from anything that runs BPF.

use crate::programs::{Input, Program};

/// Why an engine leaves a program out (printed in the report's notes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub reason: String,
}

impl Skip {
    pub fn new(reason: impl Into<String>) -> Skip {
        Skip {
            reason: reason.into(),
        }
    }
}

impl Skip {
    /// An engine's own error as a note, with its cause chain spelled out.
    pub fn from_err(e: &dyn std::error::Error) -> Skip {
        let mut s = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            s.push_str(": ");
            s.push_str(&c.to_string());
            cause = c.source();
        }
        Skip::new(s)
    }
}

/// One way of running BPF programs.
pub trait Engine {
    /// The engine's name in the report (`bpfvm-interp`, `rbpf-jit`, ...).
    fn name(&self) -> &'static str;

    /// Whether the engine's times go into report.json (false for variants shown
    /// only in the table, like bpfvm's checked mode).
    fn in_report(&self) -> bool {
        true
    }

    /// Loads (and compiles) `prog` for runs on `input`, or says why it cannot.
    fn prepare(&self, prog: &Program, input: &Input) -> Result<Box<dyn Runner>, Skip>;
}

/// A program prepared by an engine, with its input.
pub trait Runner {
    /// Nanoseconds the load took, if it includes a compilation step worth
    /// reporting (JIT compile, the kernel's verify + JIT, bpfvm's pre-decode).
    fn compile_ns(&self) -> Option<u64> {
        None
    }

    /// Runs the program `iters` times; returns the last r0 and the total time
    /// in nanoseconds: the thread's CPU time ([`time_loop`]), or the engine's
    /// own figure when it measures itself (the kernel's test run).
    fn run(&mut self, iters: u64) -> Result<(u64, f64), Skip>;

    /// How this engine runs programs (one note per engine in the report).
    fn note(&self) -> Option<String> {
        None
    }

    /// Something about this program on this engine (a note of its own).
    fn detail(&self) -> Option<String> {
        None
    }
}

/// CPU time of the calling thread, in nanoseconds (CLOCK_THREAD_CPUTIME_ID).
/// The machine is shared: time the thread spends descheduled is not the
/// engine's, so in-process engines are timed with this rather than the wall
/// clock.
pub fn thread_cpu_ns() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec; the clock id is supported on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
}

/// Times `iters` calls of `f` in thread CPU time; the helper in-process
/// engines use for [`Runner::run`].
pub fn time_loop(iters: u64, mut f: impl FnMut() -> Result<u64, Skip>) -> Result<(u64, f64), Skip> {
    let start = thread_cpu_ns();
    let mut r0 = 0;
    for _ in 0..iters {
        r0 = std::hint::black_box(f()?);
    }
    Ok((r0, thread_cpu_ns() - start))
}
