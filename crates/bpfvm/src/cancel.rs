//! Stopping a test run from outside, as the kernel's `bpf_prog_test_run` stops on a
//! signal: a flag set for the calling thread, checked between repeats and on every
//! callback of the helpers that call back into the program (`bpf_loop`,
//! `bpf_for_each_map_elem`), the only ways a verified program runs unbounded.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

thread_local! {
    static FLAG: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Runs on this thread stop (with [`crate::BpfError::Interrupted`]) once `flag`
/// is set, until the guard is dropped.
pub struct CancelGuard {
    prev: Option<Arc<AtomicBool>>,
}

/// Makes `flag` the current thread's cancel flag while the guard lives.
pub fn set_cancel_flag(flag: Arc<AtomicBool>) -> CancelGuard {
    let prev = FLAG.with(|f| f.borrow_mut().replace(flag));
    CancelGuard { prev }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        FLAG.with(|f| *f.borrow_mut() = prev);
    }
}

/// The current thread's flag, if one is set.
pub(crate) fn current() -> Option<Arc<AtomicBool>> {
    FLAG.with(|f| f.borrow().clone())
}

/// Has the current thread's run been cancelled?
#[inline]
pub(crate) fn cancelled() -> bool {
    FLAG.with(|f| {
        f.borrow()
            .as_ref()
            .is_some_and(|a| a.load(Ordering::Relaxed))
    })
}
