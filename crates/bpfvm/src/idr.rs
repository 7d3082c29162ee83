//! Object ids, allocated cyclically from 1 as the kernel's idr_alloc_cyclic does: a
//! freed id is not reused until the counter wraps at INT_MAX.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

pub(crate) struct Idr<T> {
    next: u32,
    /// `None` while reserved (the object is being built).
    slots: BTreeMap<u32, Option<Weak<T>>>,
}

impl<T> Idr<T> {
    pub(crate) fn new() -> Self {
        Idr {
            next: 1,
            slots: BTreeMap::new(),
        }
    }

    /// Reserves the next free id. The object is stored with [`Idr::set`] once built.
    pub(crate) fn alloc(&mut self) -> Option<u32> {
        self.gc();
        let start = self.next;
        loop {
            let id = self.next;
            self.next = if self.next >= i32::MAX as u32 {
                1
            } else {
                self.next + 1
            };
            if let std::collections::btree_map::Entry::Vacant(e) = self.slots.entry(id) {
                e.insert(None);
                return Some(id);
            }
            if self.next == start {
                return None;
            }
        }
    }

    pub(crate) fn set(&mut self, id: u32, obj: &Arc<T>) {
        self.slots.insert(id, Some(Arc::downgrade(obj)));
    }

    pub(crate) fn get(&self, id: u32) -> Option<Arc<T>> {
        self.slots.get(&id).and_then(|w| w.as_ref()?.upgrade())
    }

    /// The live object with the smallest id greater than `after` (BPF_*_GET_NEXT_ID).
    pub(crate) fn next_after(&self, after: u32) -> Option<(u32, Arc<T>)> {
        self.slots
            .range(after.saturating_add(1)..)
            .find_map(|(id, w)| w.as_ref()?.upgrade().map(|o| (*id, o)))
    }

    /// Drops a reservation whose object was never built.
    pub(crate) fn release(&mut self, id: u32) {
        if matches!(self.slots.get(&id), Some(None)) {
            self.slots.remove(&id);
        }
    }

    /// Forgets ids whose objects are gone (reserved ids have no object yet and stay).
    fn gc(&mut self) {
        self.slots
            .retain(|_, w| w.as_ref().is_none_or(|w| w.strong_count() > 0));
    }
}
