//! `BPF_MAP_TYPE_RINGBUF` (kernel `ringbuf.c`): a multi-producer, single-consumer ring of
//! variable-length records.
//!
//! Layout as in the kernel: the data area is `max_entries` bytes (a power of two, multiple of
//! 4096); positions only grow and are masked into it. Each record starts with an 8-byte
//! header, `u32 len` whose bit 31 is `BPF_RINGBUF_BUSY_BIT` (reserved, not committed) and bit
//! 30 `BPF_RINGBUF_DISCARD_BIT`, then `u32 pg_off`; records are padded to 8 bytes. The kernel
//! maps the data pages twice so that a record crossing the end stays contiguous; here the
//! data area is allocated twice as long for the same effect (a record starting near the end
//! runs on into the second half, where the consumer reads it).
//!
//! Producers (`reserve`, `output`) serialise on a mutex; `submit`/`discard` only flip the
//! header bits. The consumer ([`RingBuf::consume`]) delivers committed records in order,
//! skips discarded ones and stops at the first record still busy.

use std::any::Any;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::MapError;
use crate::mem::{round8, Arena};
use crate::ops::{Common, MapOps, ValueRegion};
use crate::types::*;

/// Largest record the kernel accepts (`RINGBUF_MAX_RECORD_SZ`).
pub const RINGBUF_MAX_RECORD_SZ: u64 = (u32::MAX / 4) as u64;

/// A ring buffer map.
pub struct RingBuf {
    c: Common,
    /// 2 × size bytes; see the module docs.
    data: Arena,
    mask: u64,
    consumer_pos: AtomicU64,
    producer_pos: AtomicU64,
    /// Serialises producers (the kernel's spinlock).
    producer: Mutex<()>,
    /// Serialises consumers (user space has one consumer per ring).
    consumer: Mutex<()>,
    /// Wakeups sent to the consumer; waiters sleep on `wake_cv`.
    wakeups: Mutex<u64>,
    wake_cv: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RingBuf {
    pub(crate) fn new(attr: &MapAttr, ncpus: usize) -> Result<RingBuf, MapError> {
        let c = Common::new(attr, ncpus);
        let size = attr.max_entries as u64;
        let data = crate::create::alloc_arena(&c, 2 * size)?;
        Ok(RingBuf {
            c,
            data,
            mask: size - 1,
            consumer_pos: AtomicU64::new(0),
            producer_pos: AtomicU64::new(0),
            producer: Mutex::new(()),
            consumer: Mutex::new(()),
            wakeups: Mutex::new(0),
            wake_cv: Condvar::new(),
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

    /// `bpf_ringbuf_reserve`: reserve `size` bytes and return a pointer to them (after the
    /// header), or None when `flags != 0`, the record is too large, or there is no room.
    pub fn reserve(&self, size: u64, flags: u64) -> Option<*mut u8> {
        if flags != 0 || size > RINGBUF_MAX_RECORD_SZ {
            return None;
        }
        let len = round8(size as usize + BPF_RINGBUF_HDR_SZ) as u64;
        if len > self.size() {
            return None;
        }
        let _p = lock(&self.producer);
        let cons = self.consumer_pos.load(Ordering::Acquire);
        let prod = self.producer_pos.load(Ordering::Relaxed);
        let new_prod = prod + len;
        // Never let the producer get a full ring ahead of the consumer.
        if new_prod - cons > self.mask {
            return None;
        }
        let off = (prod & self.mask) as usize;
        // pg_off: the header's page offset in the data area (the kernel's is relative to the
        // ring structure; only used to find the ring from a record).
        let pg_off = (off >> 12) as u32;
        // SAFETY: the second header word is in bounds (off + 8 <= size).
        unsafe { AtomicU32::from_ptr(self.data.at(off + 4).cast()) }
            .store(pg_off, Ordering::Relaxed);
        self.header(off)
            .store(size as u32 | BPF_RINGBUF_BUSY_BIT, Ordering::Relaxed);
        // Release: the busy header is visible before the new producer position.
        self.producer_pos.store(new_prod, Ordering::Release);
        Some(self.data.at(off + BPF_RINGBUF_HDR_SZ))
    }

    /// Header offset of a record pointer returned by `reserve`, checked.
    fn record_off(&self, sample: *mut u8) -> Result<usize, MapError> {
        let base = self.data.base() as usize;
        let p = sample as usize;
        let bad = || MapError::Fault {
            map: self.c.label(),
            reason: format!("{sample:p} is not a record reserved in this ring buffer"),
        };
        if p < base + BPF_RINGBUF_HDR_SZ || p >= base + self.size() as usize + BPF_RINGBUF_HDR_SZ {
            return Err(bad());
        }
        let off = p - base - BPF_RINGBUF_HDR_SZ;
        if !off.is_multiple_of(8)
            || self.header(off).load(Ordering::Relaxed) & BPF_RINGBUF_BUSY_BIT == 0
        {
            return Err(bad());
        }
        Ok(off)
    }

    fn commit(&self, sample: *mut u8, flags: u64, discard: bool) -> Result<(), MapError> {
        // Unknown flags are ignored, as the kernel's bpf_ringbuf_commit does:
        // refusing them would leave the record busy, blocking the consumer.
        let off = self.record_off(sample)?;
        let hdr = self.header(off);
        let mut len = hdr.load(Ordering::Relaxed) & !BPF_RINGBUF_BUSY_BIT;
        if discard {
            len |= BPF_RINGBUF_DISCARD_BIT;
        }
        // Release: the record's contents are visible before it is marked committed.
        hdr.store(len, Ordering::Release);
        let cons = self.consumer_pos.load(Ordering::Acquire) & self.mask;
        // Default: wake the consumer only if it has caught up to this very record.
        let wake = flags & BPF_RB_FORCE_WAKEUP != 0
            || (flags & BPF_RB_NO_WAKEUP == 0 && cons == off as u64);
        if wake {
            *lock(&self.wakeups) += 1;
            self.wake_cv.notify_all();
        }
        Ok(())
    }

    /// `bpf_ringbuf_submit`: commit a reserved record.
    pub fn submit(&self, sample: *mut u8, flags: u64) -> Result<(), MapError> {
        self.commit(sample, flags, false)
    }

    /// `bpf_ringbuf_discard`: drop a reserved record (the consumer skips it).
    pub fn discard(&self, sample: *mut u8, flags: u64) -> Result<(), MapError> {
        self.commit(sample, flags, true)
    }

    /// `bpf_ringbuf_output`: copy `data` in as one record. `EAGAIN` when there is no room.
    pub fn output(&self, data: &[u8], flags: u64) -> Result<(), MapError> {
        if flags & !(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP) != 0 {
            return Err(self
                .c
                .invalid(format!("invalid ring buffer flags {flags:#x}")));
        }
        let p = self
            .reserve(data.len() as u64, 0)
            .ok_or_else(|| MapError::Again {
                map: self.c.label(),
                reason: format!("no room for a {}-byte record", data.len()),
            })?;
        // SAFETY: reserve returned room for data.len() bytes that only we write until submit.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        self.submit(p, flags)
    }

    /// `bpf_ringbuf_query`: `BPF_RB_AVAIL_DATA`, `BPF_RB_RING_SIZE`, `BPF_RB_CONS_POS`,
    /// `BPF_RB_PROD_POS`; 0 for anything else, as in the kernel.
    pub fn query(&self, flags: u64) -> u64 {
        let cons = self.consumer_pos.load(Ordering::Acquire);
        let prod = self.producer_pos.load(Ordering::Acquire);
        match flags {
            BPF_RB_AVAIL_DATA => prod - cons,
            BPF_RB_RING_SIZE => self.size(),
            BPF_RB_CONS_POS => cons,
            BPF_RB_PROD_POS => prod,
            _ => 0,
        }
    }

    /// Consume committed records in order, calling `cb` with each record's data (discarded
    /// records are skipped), stopping at a record still busy or when `cb` returns false.
    /// Returns the number of records delivered.
    pub fn consume(&self, cb: &mut dyn FnMut(&[u8]) -> bool) -> usize {
        let _c = lock(&self.consumer);
        let mut delivered = 0;
        let mut cons = self.consumer_pos.load(Ordering::Relaxed);
        loop {
            let prod = self.producer_pos.load(Ordering::Acquire);
            if cons >= prod {
                break;
            }
            let off = (cons & self.mask) as usize;
            let len = self.header(off).load(Ordering::Acquire);
            if len & BPF_RINGBUF_BUSY_BIT != 0 {
                break;
            }
            let size = (len & !BPF_RINGBUF_DISCARD_BIT) as usize;
            let mut go_on = true;
            if len & BPF_RINGBUF_DISCARD_BIT == 0 {
                // SAFETY: the committed record lies in [off + 8, off + 8 + size) of the
                // double-length data area and no producer writes it until consumer_pos moves.
                let rec = unsafe {
                    std::slice::from_raw_parts(self.data.at(off + BPF_RINGBUF_HDR_SZ), size)
                };
                delivered += 1;
                go_on = cb(rec);
            }
            cons += round8(size + BPF_RINGBUF_HDR_SZ) as u64;
            // Release: done reading before producers may reuse the space.
            self.consumer_pos.store(cons, Ordering::Release);
            if !go_on {
                break;
            }
        }
        delivered
    }

    /// The next committed record, copied (discarded records are skipped).
    pub fn next_record(&self) -> Option<Vec<u8>> {
        let mut out = None;
        self.consume(&mut |r| {
            out = Some(r.to_vec());
            false
        });
        out
    }

    /// Whether a committed or discarded record is waiting at the consumer position.
    pub fn has_data(&self) -> bool {
        let cons = self.consumer_pos.load(Ordering::Acquire);
        let prod = self.producer_pos.load(Ordering::Acquire);
        cons < prod
            && self
                .header((cons & self.mask) as usize)
                .load(Ordering::Acquire)
                & BPF_RINGBUF_BUSY_BIT
                == 0
    }

    /// Wait up to `timeout` for data (like epoll on the ring's fd). Returns whether data is
    /// available.
    pub fn wait(&self, timeout: Duration) -> bool {
        let mut w = lock(&self.wakeups);
        if self.has_data() {
            return true;
        }
        let seen = *w;
        let deadline = std::time::Instant::now() + timeout;
        while *w == seen {
            let now = std::time::Instant::now();
            if now >= deadline {
                break;
            }
            w = self
                .wake_cv
                .wait_timeout(w, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(w);
        self.has_data()
    }

    /// How many wakeups producers have sent (for observing `BPF_RB_*_WAKEUP`).
    pub fn wakeup_count(&self) -> u64 {
        *lock(&self.wakeups)
    }
}

impl MapOps for RingBuf {
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

    /// The whole data area (both halves): records are handed to programs as pointers into it.
    fn value_regions(&self) -> Vec<ValueRegion> {
        vec![ValueRegion {
            base: self.data.base(),
            stride: self.data.len(),
            count: 1,
            value_size: self.data.len(),
            writable_by_prog: true,
        }]
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

    fn as_ringbuf(&self) -> Option<&RingBuf> {
        Some(self)
    }
}
