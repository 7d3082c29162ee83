//! Array maps whose value memory is a shared mapping of a file, for a runtime that
//! must keep map contents across its own restarts (the daemon): what programs and
//! user space write lands in the file's pages at once, so it survives the process
//! being killed, and costs nothing while idle.
//!
//! A provider installed for the calling thread ([`with_value_files`]) is asked for
//! a file when an array map is created on that thread; it returns a file of the
//! needed size (zero-filled, with its blocks allocated so that a write through the
//! mapping can never fail for want of space) and an id the map reports back
//! through [`crate::MapOps::value_file`]. Without a provider, or when it declines,
//! value memory comes from the heap as usual.

use crate::types::MapAttr;
use std::cell::RefCell;
use std::fs::File;

/// A file to map as an array's value memory, and the provider's name for it.
pub struct ValueFile {
    pub file: File,
    pub id: u64,
}

type Provider<'a> = &'a dyn Fn(&MapAttr, u64) -> Option<std::io::Result<ValueFile>>;

thread_local! {
    static PROVIDER: RefCell<Option<Provider<'static>>> = const { RefCell::new(None) };
}

/// Runs `body` with `provider` asked for the value memory of every array map
/// created on this thread meanwhile (`None`: use the heap; `Some(Err)`: the map
/// creation fails with that error).
pub fn with_value_files<R>(
    provider: &dyn Fn(&MapAttr, u64) -> Option<std::io::Result<ValueFile>>,
    body: impl FnOnce() -> R,
) -> R {
    struct Reset(Option<Provider<'static>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let prev = self.0.take();
            PROVIDER.with(|p| *p.borrow_mut() = prev);
        }
    }
    // SAFETY: the provider reference is only reachable through PROVIDER until the
    // guard below restores the previous value, which happens before `provider`'s
    // borrow ends (at the end of this function, or while unwinding from `body`).
    let erased: Provider<'static> = unsafe { std::mem::transmute(provider) };
    let prev = PROVIDER.with(|p| p.borrow_mut().replace(erased));
    let _reset = Reset(prev);
    body()
}

/// The current provider's file for a map, if any.
pub(crate) fn value_file(attr: &MapAttr, bytes: u64) -> Option<std::io::Result<ValueFile>> {
    let p = PROVIDER.with(|p| *p.borrow())?;
    p(attr, bytes)
}
