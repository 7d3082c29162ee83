//! Timing one (program, engine) cell: warm up, calibrate a batch size, run
//! several batches, take the median ns per run.

use crate::engine::{Runner, Skip};
use std::time::Duration;

/// How long to measure each cell.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Total time of the timed batches of one cell.
    pub budget: Duration,
    /// Number of timed batches (the median is reported).
    pub batches: usize,
}

impl Settings {
    pub fn full() -> Settings {
        Settings {
            budget: Duration::from_millis(300),
            batches: 7,
        }
    }

    pub fn quick() -> Settings {
        Settings {
            budget: Duration::from_millis(30),
            batches: 3,
        }
    }
}

/// A measured cell.
#[derive(Debug, Clone, Copy)]
pub struct Cell {
    /// Median over the batches.
    pub ns_per_run: f64,
    /// Smallest and largest batch, ns per run.
    pub min: f64,
    pub max: f64,
    /// Runs per batch.
    pub iters: u64,
    /// r0 of the runs (the same in every batch).
    pub r0: u64,
}

/// Measures `r`. Fails if a run fails or r0 changes between batches.
pub fn measure(r: &mut dyn Runner, s: &Settings) -> Result<Cell, Skip> {
    // Warm-up and calibration: grow the batch until it takes a millisecond (or
    // the time of one batch, if that is less).
    let per_batch = (s.budget.as_nanos() as f64 / s.batches as f64).max(1.0);
    let (r0, mut t) = r.run(1)?;
    let mut iters = 1u64;
    while t < per_batch.min(1e6) && iters < (1 << 30) {
        iters *= 4;
        let (r, ns) = r.run(iters)?;
        if r != r0 {
            return Err(Skip::new(format!(
                "r0 changed between runs: {r0:#x} then {r:#x}"
            )));
        }
        t = ns;
    }
    let per_run = (t / iters as f64).max(0.1);
    let iters = ((per_batch / per_run) as u64).max(1);
    let mut times = Vec::with_capacity(s.batches);
    for _ in 0..s.batches {
        let (r, ns) = r.run(iters)?;
        if r != r0 {
            return Err(Skip::new(format!(
                "r0 changed between runs: {r0:#x} then {r:#x}"
            )));
        }
        times.push(ns / iters as f64);
    }
    times.sort_by(f64::total_cmp);
    Ok(Cell {
        ns_per_run: times[times.len() / 2],
        min: times[0],
        max: times[times.len() - 1],
        iters,
        r0,
    })
}
