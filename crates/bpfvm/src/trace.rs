//! The trace pipe: lines written by bpf_trace_printk, kept in a bounded ring and
//! handed to readers in order (`bpfvm prog tracelog`).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

const TRACE_RING_LINES: usize = 65536;

#[derive(Default)]
pub struct TracePipe {
    inner: Mutex<Ring>,
    cond: Condvar,
}

#[derive(Default)]
struct Ring {
    /// Sequence number of `lines[0]`.
    first: u64,
    lines: VecDeque<String>,
}

impl TracePipe {
    pub fn push(&self, line: String) {
        let mut r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if r.lines.len() == TRACE_RING_LINES {
            r.lines.pop_front();
            r.first += 1;
        }
        r.lines.push_back(line);
        self.cond.notify_all();
    }

    /// Lines with sequence numbers from `from` on, and the next sequence number.
    /// Waits up to `wait` for at least one line.
    pub fn read_from(&self, from: u64, wait: Duration) -> (Vec<String>, u64) {
        let mut r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let end = r.first + r.lines.len() as u64;
        if from >= end && !wait.is_zero() {
            r = self
                .cond
                .wait_timeout(r, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let start = from.max(r.first);
        let skip = (start - r.first) as usize;
        let lines: Vec<String> = r.lines.iter().skip(skip).cloned().collect();
        let next = start + lines.len() as u64;
        (lines, next)
    }

    /// All lines currently held (what `cat trace` shows).
    pub fn snapshot(&self) -> Vec<String> {
        self.read_from(0, Duration::ZERO).0
    }
}
