//! `BPF_MAP_TYPE_USER_RINGBUF` (kernel `ringbuf.c`): a ring of variable-length samples that
//! user space produces and programs consume with `bpf_user_ringbuf_drain`.
//!
//! The layout is the ring buffer's (see `ringbuf.rs`): a data area of `max_entries` bytes
//! addressed by ever-growing positions, each sample an 8-byte header (`u32 len` with
//! `BPF_RINGBUF_BUSY_BIT` while reserved and `BPF_RINGBUF_DISCARD_BIT` once discarded, then
//! `u32 pg_off`) followed by its bytes, padded to 8. The data area is allocated twice as long
//! so that a sample starting near the end stays contiguous, as the kernel's double mapping
//! makes it.
//!
//! The producer side is what libbpf's `user_ring_buffer__reserve`/`__submit`/`__discard` do
//! on the mmap-ed ring: [`UserRingBuf::reserve`] advances the producer position over a busy
//! sample (`E2BIG` when it could never fit, `ENOSPC` when it does not fit now, `EPERM` when
//! the map is frozen or `BPF_F_RDONLY`) and
//! [`UserRingBuf::commit`] fills it and clears the busy bit, or marks it discarded. The
//! consumer side, [`UserRingBuf::drain`], follows `bpf_user_ringbuf_drain`: one drain at a
//! time (`-EBUSY`), samples in order, discarded ones skipped, a busy one ends the drain,
//! at most `BPF_MAX_USER_RINGBUF_SAMPLES` per call, each sample consumed once its callback
//! returned, whether or not the callback asked to stop.

use std::any::Any;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::error::MapError;
use crate::mem::{round8, Arena};
use crate::ops::{Common, MapOps, ValueRegion};
use crate::types::*;

/// Most samples one `bpf_user_ringbuf_drain` call looks at (`BPF_MAX_USER_RINGBUF_SAMPLES`),
/// discarded ones included.
pub const BPF_MAX_USER_RINGBUF_SAMPLES: u64 = 128 * 1024;
/// Largest sample a drain hands to a program: what fits a dynptr (`DYNPTR_MAX_SIZE`).
pub const USER_RINGBUF_MAX_SAMPLE: u32 = (1 << 24) - 1;

const EINVAL: i64 = 22;
const E2BIG: i64 = 7;
const EBUSY: i64 = 16;

/// A user ring buffer map.
pub struct UserRingBuf {
    c: Common,
    /// 2 × size bytes; see the module docs.
    data: Arena,
    mask: u64,
    consumer_pos: AtomicU64,
    producer_pos: AtomicU64,
    /// Serialises producers (libbpf leaves that to the application; here several clients
    /// of one runtime may produce).
    producer: Mutex<()>,
    /// Samples reserved and not yet committed, by position, with their size:
    /// a commit must name one, and writes no more than its size (the header
    /// sits in memory programs reach through stale slices, so it is not
    /// trusted for that).
    reserved: Mutex<BTreeMap<u64, u32>>,
    /// The kernel's `rb->busy`: a drain is running.
    busy: AtomicBool,
    /// Wakeups the drains sent to the producer (`irq_work_queue`).
    wakeups: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What `__bpf_user_ringbuf_peek` found at the consumer position.
enum Peek {
    /// Nothing committed there (empty, or a sample still reserved).
    NoData,
    /// A discarded sample (consumed by the peek).
    Discarded,
    /// A sample: header offset in the data area and length.
    Sample(usize, u32),
    /// A broken ring: the negative errno the drain returns.
    Error(i64),
}

impl UserRingBuf {
    pub(crate) fn new(attr: &MapAttr, ncpus: usize) -> Result<UserRingBuf, MapError> {
        let c = Common::new(attr, ncpus);
        let size = attr.max_entries as u64;
        let data = crate::create::alloc_arena(&c, 2 * size)?;
        Ok(UserRingBuf {
            c,
            data,
            mask: size - 1,
            consumer_pos: AtomicU64::new(0),
            producer_pos: AtomicU64::new(0),
            producer: Mutex::new(()),
            reserved: Mutex::new(BTreeMap::new()),
            busy: AtomicBool::new(false),
            wakeups: AtomicU64::new(0),
        })
    }

    /// Size of the data area (`max_entries`).
    pub fn size(&self) -> u64 {
        self.mask + 1
    }

    fn header(&self, off: usize) -> &AtomicU32 {
        // SAFETY: `off` is a masked, 8-aligned position inside the data area, which lives as
        // long as self.
        unsafe { AtomicU32::from_ptr(self.data.at(off).cast()) }
    }

    /// `user_ring_buffer__reserve`: room for a `size`-byte sample, marked busy, at the
    /// producer position, which moves past it. Returns the sample's position (what
    /// [`commit`](Self::commit) takes). `E2BIG` when the sample could never fit the ring,
    /// `ENOSPC` when it does not fit until programs drain more.
    pub fn reserve(&self, size: u32) -> Result<u64, MapError> {
        // A frozen (or BPF_F_RDONLY) map cannot be mapped writable.
        self.c.check_user_write()?;
        let total = round8(size as usize + BPF_RINGBUF_HDR_SZ) as u64;
        if total > self.size() {
            return Err(self.c.too_big(format!(
                "a {size}-byte sample needs {total} bytes, the ring has {}",
                self.size()
            )));
        }
        let _p = lock(&self.producer);
        let cons = self.consumer_pos.load(Ordering::Acquire);
        let prod = self.producer_pos.load(Ordering::Relaxed);
        let avail = self.size() - (prod - cons);
        if avail < total {
            return Err(MapError::NoRoom {
                map: self.c.label(),
                reason: format!("{avail} bytes free, a {size}-byte sample needs {total}"),
            });
        }
        let off = (prod & self.mask) as usize;
        // SAFETY: the header's second word is inside the data area (off + 8 <= size).
        unsafe { AtomicU32::from_ptr(self.data.at(off + 4).cast()) }.store(0, Ordering::Relaxed);
        self.header(off)
            .store(size | BPF_RINGBUF_BUSY_BIT, Ordering::Relaxed);
        lock(&self.reserved).insert(prod, size);
        // Release: the busy header is visible before the producer position that covers it.
        self.producer_pos.store(prod + total, Ordering::Release);
        Ok(prod)
    }

    /// `user_ring_buffer__submit` (or `__discard` when `discard`) of the sample reserved at
    /// `pos`, after copying `data` (at most the sample's size) to its start. `EINVAL` when
    /// `pos` is not a sample reserved and not yet committed, or `data` is too long.
    pub fn commit(&self, pos: u64, data: &[u8], discard: bool) -> Result<(), MapError> {
        let mut reserved = lock(&self.reserved);
        let Some(&size) = reserved.get(&pos) else {
            return Err(self
                .c
                .invalid(format!("no sample is reserved at position {pos}")));
        };
        let off = (pos & self.mask) as usize;
        let hdr = self.header(off);
        if data.len() > size as usize {
            return Err(self.c.invalid(format!(
                "{} bytes do not fit the {size}-byte sample",
                data.len()
            )));
        }
        reserved.remove(&pos);
        // SAFETY: the sample lies in [off + 8, off + 8 + size) of the double-length data
        // area; no drain reads it while it is busy and no producer reuses it before then.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.data.at(off + BPF_RINGBUF_HDR_SZ),
                data.len(),
            )
        };
        let len = if discard {
            size | BPF_RINGBUF_DISCARD_BIT
        } else {
            size
        };
        // Release: the sample's bytes are visible before it stops being busy.
        hdr.store(len, Ordering::Release);
        Ok(())
    }

    /// Bytes free for producers now.
    pub fn available(&self) -> u64 {
        let cons = self.consumer_pos.load(Ordering::Acquire);
        let prod = self.producer_pos.load(Ordering::Acquire);
        self.size() - (prod - cons)
    }

    /// The consumer position (what drains have consumed, in bytes since creation).
    pub fn consumer_pos(&self) -> u64 {
        self.consumer_pos.load(Ordering::Acquire)
    }

    /// The producer position.
    pub fn producer_pos(&self) -> u64 {
        self.producer_pos.load(Ordering::Acquire)
    }

    /// How many wakeups drains sent the producer (`BPF_RB_NO_WAKEUP`/`BPF_RB_FORCE_WAKEUP`
    /// decide, as in the kernel).
    pub fn wakeup_count(&self) -> u64 {
        self.wakeups.load(Ordering::Relaxed)
    }

    /// `__bpf_user_ringbuf_peek`: the sample at the consumer position. A discarded one is
    /// consumed here.
    fn peek(&self) -> Peek {
        let prod = self.producer_pos.load(Ordering::Acquire);
        if !prod.is_multiple_of(8) {
            return Peek::Error(-EINVAL);
        }
        let cons = self.consumer_pos.load(Ordering::Acquire);
        if cons >= prod {
            return Peek::NoData;
        }
        let off = (cons & self.mask) as usize;
        let hdr = self.header(off).load(Ordering::Acquire);
        let flags = hdr & (BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
        let len = hdr & !flags;
        let total = round8(len as usize + BPF_RINGBUF_HDR_SZ) as u64;
        if total > prod - cons {
            return Peek::Error(-EINVAL);
        }
        if total > self.size() || len > USER_RINGBUF_MAX_SAMPLE {
            return Peek::Error(-E2BIG);
        }
        if flags & BPF_RINGBUF_DISCARD_BIT != 0 {
            self.consumer_pos.store(cons + total, Ordering::Release);
            return Peek::Discarded;
        }
        if flags & BPF_RINGBUF_BUSY_BIT != 0 {
            return Peek::NoData;
        }
        Peek::Sample(off, len)
    }

    /// `bpf_user_ringbuf_drain`'s work after its flags check: calls `cb` with a pointer to
    /// each committed sample and its length, in order, until the ring is empty, a sample is
    /// still reserved, `cb` breaks, or `BPF_MAX_USER_RINGBUF_SAMPLES` samples were looked
    /// at. Returns how many samples `cb` got, or a negative errno: `-EBUSY` when another
    /// drain runs, `-EINVAL`/`-E2BIG` for a sample that cannot be handed out (what was
    /// consumed before it stays consumed). `flags` are the wakeup flags.
    pub fn drain(&self, flags: u64, cb: &mut dyn FnMut(*mut u8, u32) -> ControlFlow<()>) -> i64 {
        if self
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return -EBUSY;
        }
        let mut samples: u64 = 0;
        let mut discarded: u64 = 0;
        let mut result = None;
        let mut stop = false;
        while samples < BPF_MAX_USER_RINGBUF_SAMPLES && !stop {
            match self.peek() {
                Peek::NoData => break,
                Peek::Discarded => discarded += 1,
                Peek::Error(e) => {
                    result = Some(e);
                    break;
                }
                Peek::Sample(off, len) => {
                    let p = self.data.at(off + BPF_RINGBUF_HDR_SZ);
                    stop = cb(p, len).is_break();
                    let total = round8(len as usize + BPF_RINGBUF_HDR_SZ) as u64;
                    let cons = self.consumer_pos.load(Ordering::Relaxed);
                    // Release: done with the sample before the producer may reuse it.
                    self.consumer_pos.store(cons + total, Ordering::Release);
                }
            }
            samples += 1;
        }
        self.busy.store(false, Ordering::Release);
        if flags & BPF_RB_FORCE_WAKEUP != 0 || (flags & BPF_RB_NO_WAKEUP == 0 && samples > 0) {
            self.wakeups.fetch_add(1, Ordering::Relaxed);
        }
        result.unwrap_or((samples - discarded) as i64)
    }
}

impl MapOps for UserRingBuf {
    fn attr(&self) -> &MapAttr {
        &self.c.attr
    }

    fn ncpus(&self) -> usize {
        self.c.ncpus
    }

    fn lookup(&self, _key: &[u8], _cpu: usize) -> Option<*mut u8> {
        None
    }

    fn update(&self, _key: &[u8], _value: &[u8], _flags: u64, _cpu: usize) -> Result<(), MapError> {
        Err(self.not_supported("update"))
    }

    fn delete(&self, _key: &[u8]) -> Result<(), MapError> {
        Err(self.not_supported("delete"))
    }

    fn get_next_key(&self, _key: Option<&[u8]>, _next: &mut [u8]) -> Result<(), MapError> {
        Err(self.not_supported("get_next_key"))
    }

    fn lookup_user(&self, _key: &[u8], _out: &mut [u8], _flags: u64) -> Result<(), MapError> {
        Err(self.not_supported("lookup"))
    }

    fn update_user(&self, _key: &[u8], _value: &[u8], _flags: u64) -> Result<(), MapError> {
        Err(self.not_supported("update"))
    }

    fn delete_user(&self, _key: &[u8]) -> Result<(), MapError> {
        Err(self.not_supported("delete"))
    }

    fn freeze(&self) -> Result<(), MapError> {
        self.c.freeze()
    }

    fn is_frozen(&self) -> bool {
        self.c.is_frozen()
    }

    /// None: a program reaches a sample only through the dynptr a drain gives its
    /// callback, and the drain opens that sample alone to it.
    fn value_regions(&self) -> Vec<ValueRegion> {
        Vec::new()
    }

    fn memory_usage(&self) -> u64 {
        use crate::create::{RINGBUF_NR_META_PAGES, SIZEOF_BPF_RINGBUF_MAP};
        let data_pages = self.size() / crate::create::PAGE_SIZE as u64;
        SIZEOF_BPF_RINGBUF_MAP
            + (RINGBUF_NR_META_PAGES + data_pages) * crate::create::PAGE_SIZE as u64
            + (RINGBUF_NR_META_PAGES + 2 * data_pages) * 8
    }

    fn entries(&self) -> u64 {
        0
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(size: u32) -> UserRingBuf {
        UserRingBuf::new(&MapAttr::new(MapType::UserRingbuf, 0, 0, size), 1).expect("ring")
    }

    fn drain_all(r: &UserRingBuf, stop_after: usize) -> (i64, Vec<Vec<u8>>) {
        let mut got = Vec::new();
        let n = r.drain(0, &mut |p, len| {
            // SAFETY: the drain hands out a committed sample of len bytes.
            got.push(unsafe { std::slice::from_raw_parts(p, len as usize) }.to_vec());
            if got.len() == stop_after {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        (n, got)
    }

    #[test]
    fn samples_drain_in_order_skipping_discarded_and_stopping_at_busy() {
        let r = ring(4096);
        let a = r.reserve(3).unwrap();
        r.commit(a, b"abc", false).unwrap();
        let b = r.reserve(5).unwrap();
        r.commit(b, b"x", true).unwrap();
        let c = r.reserve(2).unwrap();
        r.commit(c, b"de", false).unwrap();
        let busy = r.reserve(1).unwrap();
        let (n, got) = drain_all(&r, usize::MAX);
        assert_eq!(n, 2);
        assert_eq!(got, vec![b"abc".to_vec(), b"de".to_vec()]);
        // The busy sample holds the rest back until it is committed.
        r.commit(busy, b"z", false).unwrap();
        assert_eq!(drain_all(&r, usize::MAX), (1, vec![b"z".to_vec()]));
        assert_eq!(r.available(), 4096);
        assert!(r.commit(busy, b"z", false).is_err(), "committed twice");
    }

    #[test]
    fn a_stopping_callback_consumes_up_to_its_sample() {
        let r = ring(4096);
        for s in [&b"1"[..], b"2", b"3"] {
            let p = r.reserve(1).unwrap();
            r.commit(p, s, false).unwrap();
        }
        assert_eq!(drain_all(&r, 2), (2, vec![b"1".to_vec(), b"2".to_vec()]));
        assert_eq!(drain_all(&r, usize::MAX), (1, vec![b"3".to_vec()]));
        assert_eq!(drain_all(&r, usize::MAX), (0, vec![]));
    }

    #[test]
    fn reserve_errors_and_wraparound() {
        let r = ring(4096);
        assert_eq!(r.reserve(4089).unwrap_err().errno(), crate::E2BIG);
        let big = r.reserve(4000).unwrap();
        assert_eq!(r.reserve(100).unwrap_err().errno(), crate::ENOSPC);
        r.commit(big, &[7; 4000], false).unwrap();
        assert_eq!(drain_all(&r, usize::MAX).0, 1);
        // This one crosses the end of the data area and still reads back whole.
        let w = r.reserve(1000).unwrap();
        let bytes: Vec<u8> = (0..1000).map(|i| i as u8).collect();
        r.commit(w, &bytes, false).unwrap();
        assert_eq!(drain_all(&r, usize::MAX), (1, vec![bytes]));
    }

    #[test]
    fn one_drain_at_a_time_and_wakeups() {
        let r = ring(4096);
        let p = r.reserve(1).unwrap();
        r.commit(p, b"a", false).unwrap();
        let mut inner = 0;
        let n = r.drain(BPF_RB_NO_WAKEUP, &mut |_, _| {
            inner = r.drain(0, &mut |_, _| ControlFlow::Continue(()));
            ControlFlow::Continue(())
        });
        assert_eq!((n, inner), (1, -EBUSY));
        assert_eq!(r.wakeup_count(), 0);
        r.drain(0, &mut |_, _| ControlFlow::Continue(()));
        assert_eq!(r.wakeup_count(), 0, "nothing drained, no wakeup");
        r.drain(BPF_RB_FORCE_WAKEUP, &mut |_, _| ControlFlow::Continue(()));
        assert_eq!(r.wakeup_count(), 1);
    }
}
