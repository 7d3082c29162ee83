//! `BPF_MAP_TYPE_QUEUE` and `BPF_MAP_TYPE_STACK` (kernel `queue_stack_maps.c`).
//!
//! A ring of `max_entries + 1` slots under a mutex. Values are copied in and out (programs
//! never get pointers). `push` with `BPF_EXIST` on a full map overwrites the oldest value,
//! for both queue and stack. From user space, `update_user` pushes, `lookup_user` peeks and
//! `lookup_and_delete` pops, with an empty key.

use std::any::Any;
use std::sync::{Mutex, MutexGuard};

use crate::error::MapError;
use crate::ops::{Common, MapOps, ValueRegion};
use crate::types::*;

struct Ring {
    buf: Box<[u8]>,
    /// Next slot to write.
    head: usize,
    /// Oldest slot.
    tail: usize,
    /// Slots (`max_entries + 1`: one stays empty to tell full from empty).
    size: usize,
}

impl Ring {
    fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    fn is_full(&self) -> bool {
        (self.head + 1) % self.size == self.tail
    }

    fn len(&self) -> usize {
        (self.head + self.size - self.tail) % self.size
    }
}

/// A queue (FIFO) or stack (LIFO) map.
pub struct QueueStack {
    c: Common,
    stack: bool,
    ring: Mutex<Ring>,
}

impl QueueStack {
    pub(crate) fn new(attr: &MapAttr, ncpus: usize) -> Result<QueueStack, MapError> {
        let c = Common::new(attr, ncpus);
        let size = attr.max_entries as usize + 1;
        let bytes = size as u64 * attr.value_size as u64;
        let mut buf = Vec::new();
        if bytes > crate::create::MAX_MAP_BYTES
            || usize::try_from(bytes).map_or(true, |b| buf.try_reserve_exact(b).is_err())
        {
            return Err(MapError::NoMemory {
                map: c.label(),
                bytes,
            });
        }
        buf.resize(bytes as usize, 0);
        Ok(QueueStack {
            c,
            stack: attr.map_type == MapType::Stack,
            ring: Mutex::new(Ring {
                buf: buf.into(),
                head: 0,
                tail: 0,
                size,
            }),
        })
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_out(&self, out: &[u8]) -> Result<(), MapError> {
        self.c.check_value(out)
    }

    /// Copy the next value out (oldest for a queue, newest for a stack), removing it if `pop`.
    fn get(&self, out: &mut [u8], pop: bool) -> Result<(), MapError> {
        self.check_out(out)?;
        let vs = self.c.value_size();
        let mut r = self.ring();
        if r.is_empty() {
            return Err(self.c.not_found());
        }
        let slot = if self.stack {
            (r.head + r.size - 1) % r.size
        } else {
            r.tail
        };
        out.copy_from_slice(&r.buf[slot * vs..(slot + 1) * vs]);
        if pop {
            if self.stack {
                r.head = slot;
            } else {
                r.tail = (r.tail + 1) % r.size;
            }
        }
        Ok(())
    }

    fn check_empty_key(&self, key: &[u8]) -> Result<(), MapError> {
        if !key.is_empty() {
            return Err(self.c.invalid("queue and stack maps take no key"));
        }
        Ok(())
    }
}

impl MapOps for QueueStack {
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
        Err(self.c.invalid("queue and stack maps are updated with push"))
    }

    fn delete(&self, _key: &[u8]) -> Result<(), MapError> {
        Err(self
            .c
            .invalid("queue and stack maps have no delete, use pop"))
    }

    fn get_next_key(&self, _key: Option<&[u8]>, _next: &mut [u8]) -> Result<(), MapError> {
        Err(self.c.invalid("queue and stack maps have no keys"))
    }

    fn lookup_user(&self, key: &[u8], out: &mut [u8], flags: u64) -> Result<(), MapError> {
        self.c.check_user_read()?;
        self.check_empty_key(key)?;
        self.c.check_lookup_flags(flags)?;
        self.peek(out)
    }

    fn update_user(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        self.c.check_user_write()?;
        self.check_empty_key(key)?;
        self.push(value, flags)
    }

    fn delete_user(&self, key: &[u8]) -> Result<(), MapError> {
        self.c.check_user_write()?;
        self.delete(key)
    }

    fn lookup_and_delete(
        &self,
        key: Option<&[u8]>,
        out: &mut [u8],
        flags: u64,
    ) -> Result<(), MapError> {
        self.c.check_user_write()?;
        self.c.check_user_read()?;
        if let Some(k) = key {
            self.check_empty_key(k)?;
        }
        if flags != 0 {
            return Err(self
                .c
                .invalid(format!("pop takes no flags, got {flags:#x}")));
        }
        self.pop(out)
    }

    fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        if flags & BPF_NOEXIST != 0 || flags > BPF_EXIST {
            return Err(self.c.invalid(format!("invalid push flags {flags:#x}")));
        }
        self.c.check_value(value)?;
        let vs = self.c.value_size();
        let mut r = self.ring();
        if r.is_full() {
            if flags & BPF_EXIST == 0 {
                return Err(self.c.too_big(format!(
                    "{} is full ({} entries)",
                    if self.stack { "stack" } else { "queue" },
                    self.c.attr.max_entries
                )));
            }
            // Drop the oldest value to make room.
            r.tail = (r.tail + 1) % r.size;
        }
        let head = r.head;
        r.buf[head * vs..(head + 1) * vs].copy_from_slice(value);
        r.head = (head + 1) % r.size;
        Ok(())
    }

    fn pop(&self, out: &mut [u8]) -> Result<(), MapError> {
        self.get(out, true)
    }

    fn peek(&self, out: &mut [u8]) -> Result<(), MapError> {
        self.get(out, false)
    }

    fn pushed_values(&self) -> Option<Vec<Vec<u8>>> {
        let vs = self.c.value_size();
        let r = self.ring();
        let mut out = Vec::with_capacity(r.len());
        let mut slot = r.tail;
        while slot != r.head {
            out.push(r.buf[slot * vs..(slot + 1) * vs].to_vec());
            slot = (slot + 1) % r.size;
        }
        Some(out)
    }

    fn freeze(&self) -> Result<(), MapError> {
        self.c.freeze()
    }

    fn is_frozen(&self) -> bool {
        self.c.is_frozen()
    }

    fn value_regions(&self) -> Vec<ValueRegion> {
        Vec::new()
    }

    fn memory_usage(&self) -> u64 {
        crate::create::SIZEOF_BPF_QUEUE_STACK + self.ring().buf.len() as u64
    }

    fn entries(&self) -> u64 {
        self.ring().len() as u64
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
