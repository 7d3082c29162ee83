//! The trace pipe: lines written by bpf_trace_printk, kept in a bounded ring and
//! handed to readers in order (`bpfvm prog tracelog`).
//!
//! Lines are bytes (a message may hold any byte) in one circular buffer, written
//! one after the other the way the kernel's ring buffer fills its pages: a
//! `bpf_trace_printk` costs one copy into memory the previous line just warmed,
//! no allocation, and no system call (a writer wakes readers only when one
//! waits). The oldest lines go when the ring holds [`TRACE_RING_LINES`] lines or
//! its bytes are full; readers turn lines into text.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

const TRACE_RING_LINES: usize = 65536;
/// Bytes of line storage (allocated on the first line).
const TRACE_RING_BYTES: usize = 4 << 20;

/// The trace pipe (`/sys/kernel/tracing/trace_pipe`) that `bpf_trace_printk` writes lines to.
#[derive(Default)]
pub struct TracePipe {
    inner: Mutex<Ring>,
    cond: Condvar,
    /// Readers blocked in `read_from` (changed under the lock).
    waiting: AtomicUsize,
}

#[derive(Default)]
struct Ring {
    /// Sequence number of `lines[0]`.
    first: u64,
    /// (start, length) in `buf` of each line held, oldest first.
    lines: VecDeque<(usize, usize)>,
    buf: Vec<u8>,
    /// Where the next line goes.
    next: usize,
}

impl Ring {
    /// Drops the oldest line.
    fn pop(&mut self) {
        if self.lines.pop_front().is_some() {
            self.first += 1;
        }
    }

    /// Whether `[start, start + len)` overlaps the oldest line held.
    fn overlaps_oldest(&self, start: usize, len: usize) -> bool {
        self.lines
            .front()
            .is_some_and(|&(s, l)| start < s + l && s < start + len)
    }

    fn push(&mut self, line: &[u8]) {
        if self.buf.is_empty() {
            self.buf = vec![0; TRACE_RING_BYTES];
        }
        // A line longer than the ring keeps its tail (cannot happen for printk,
        // whose messages are at most 1 KiB).
        let line = &line[line.len().saturating_sub(self.buf.len())..];
        let mut start = self.next;
        if start + line.len() > self.buf.len() {
            start = 0;
        }
        while self.overlaps_oldest(start, line.len()) || self.lines.len() >= TRACE_RING_LINES {
            self.pop();
        }
        self.buf[start..start + line.len()].copy_from_slice(line);
        self.lines.push_back((start, line.len()));
        self.next = start + line.len();
    }
}

thread_local! {
    /// Where a writer lays out its line before taking the lock.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl TracePipe {
    /// Appends a line.
    pub fn push(&self, line: String) {
        self.push_bytes(line.into_bytes());
    }

    /// Adds a line (newline included).
    pub fn push_bytes(&self, line: Vec<u8>) {
        self.push_with(|b| b.extend_from_slice(&line));
    }

    /// Adds the line `write` appends to the (empty) buffer it is given.
    pub fn push_with(&self, write: impl FnOnce(&mut Vec<u8>)) {
        SCRATCH.with(|s| match s.try_borrow_mut() {
            Ok(mut b) => {
                b.clear();
                write(&mut b);
                self.store(&b);
            }
            Err(_) => {
                let mut b = Vec::new();
                write(&mut b);
                self.store(&b);
            }
        });
    }

    fn store(&self, line: &[u8]) {
        let mut r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        r.push(line);
        let wake = self.waiting.load(Ordering::Relaxed) > 0;
        drop(r);
        if wake {
            self.cond.notify_all();
        }
    }

    /// Lines with sequence numbers from `from` on, and the next sequence number.
    /// Waits up to `wait` for at least one line.
    pub fn read_from(&self, from: u64, wait: Duration) -> (Vec<String>, u64) {
        let mut r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let end = r.first + r.lines.len() as u64;
        if from >= end && !wait.is_zero() {
            // Counted under the lock: a writer that takes the lock after this
            // sees the count and wakes us.
            self.waiting.fetch_add(1, Ordering::Relaxed);
            r = self
                .cond
                .wait_timeout(r, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        let start = from.max(r.first);
        let skip = (start - r.first) as usize;
        let lines: Vec<String> = r
            .lines
            .iter()
            .skip(skip)
            .map(|&(s, l)| String::from_utf8_lossy(&r.buf[s..s + l]).into_owned())
            .collect();
        let next = start + lines.len() as u64;
        (lines, next)
    }

    /// All lines currently held (what `cat trace` shows).
    pub fn snapshot(&self) -> Vec<String> {
        self.read_from(0, Duration::ZERO).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_back_in_order_and_the_oldest_go_first() {
        let p = TracePipe::default();
        for i in 0..(TRACE_RING_LINES + 10) {
            p.push_with(|b| b.extend_from_slice(format!("line {i}\n").as_bytes()));
        }
        let (lines, next) = p.read_from(0, Duration::ZERO);
        assert_eq!(lines.len(), TRACE_RING_LINES);
        assert_eq!(lines[0], "line 10\n");
        assert_eq!(lines.last().map(String::as_str), Some("line 65545\n"));
        assert_eq!(next, TRACE_RING_LINES as u64 + 10);
        let (more, next2) = p.read_from(next - 2, Duration::ZERO);
        assert_eq!(more, ["line 65544\n", "line 65545\n"]);
        assert_eq!(next2, next);
    }

    #[test]
    fn long_lines_wrap_around_the_byte_ring() {
        let p = TracePipe::default();
        let long = vec![b'x'; 1000];
        // 5,000 lines of 1 KB: more bytes than the ring holds.
        for i in 0..5000u32 {
            p.push_with(|b| {
                b.extend_from_slice(format!("{i:05}").as_bytes());
                b.extend_from_slice(&long);
            });
        }
        let (lines, next) = p.read_from(0, Duration::ZERO);
        assert_eq!(next, 5000);
        assert!(lines.len() < 5000 && lines.len() > 3000, "{}", lines.len());
        for (k, l) in lines.iter().enumerate() {
            let i = 5000 - lines.len() + k;
            assert_eq!(l.len(), 1005);
            assert_eq!(&l[..5], format!("{i:05}"));
        }
    }
}
