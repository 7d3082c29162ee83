//! Buffers below 4 GiB, for packets and the memory context structs point at.
//!
//! Until the verifier rewrites context accesses (as the kernel's convert_ctx_access
//! does), a program reads `xdp_md->data` and `__sk_buff->data` as the u32 fields the
//! UAPI declares. Keeping packet memory in the low 4 GiB of the address space makes
//! those 32-bit values real pointers, so unmodified programs run correctly.

use std::ptr::NonNull;

/// A zeroed, page-aligned, writable mapping whose addresses all fit in 32 bits.
pub struct LowBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// The buffer is plain memory owned by this value.
unsafe impl Send for LowBuf {}
unsafe impl Sync for LowBuf {}

impl LowBuf {
    pub fn new(len: usize) -> std::io::Result<LowBuf> {
        let len = len.max(1).next_multiple_of(4096);
        // SAFETY: an anonymous private mapping; checked for failure below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | map_32bit(),
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let ptr = NonNull::new(p as *mut u8).ok_or_else(std::io::Error::last_os_error)?;
        if (ptr.as_ptr() as usize).saturating_add(len) > u32::MAX as usize {
            // SAFETY: unmapping the mapping made above.
            unsafe { libc::munmap(p, len) };
            return Err(std::io::Error::other(
                "no memory below 4 GiB for packet buffers",
            ));
        }
        Ok(LowBuf { ptr, len })
    }

    pub fn addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is valid for len bytes while self lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for LowBuf {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping.
        unsafe { libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.len) };
    }
}

/// Runs `f` with a zeroed low buffer of at least `len` bytes, reusing one per thread
/// (mapping a fresh buffer per packet costs more than running most programs).
pub fn with_low_buf<R>(len: usize, f: impl FnOnce(&mut LowBuf) -> R) -> std::io::Result<R> {
    thread_local!(static POOL: std::cell::RefCell<Option<LowBuf>> = const { std::cell::RefCell::new(None) });
    POOL.with(|pool| {
        // A nested use (none exists today) falls back to a private buffer.
        let Ok(mut slot) = pool.try_borrow_mut() else {
            return LowBuf::new(len).map(|mut b| f(&mut b));
        };
        if slot.as_ref().is_none_or(|b| b.as_slice().len() < len) {
            *slot = Some(LowBuf::new(len)?);
        }
        let buf = slot.as_mut().expect("just filled");
        let n = len.next_multiple_of(4096).min(buf.as_slice().len());
        buf.as_mut_slice()[..n].fill(0);
        Ok(f(buf))
    })
}

#[cfg(target_arch = "x86_64")]
fn map_32bit() -> libc::c_int {
    libc::MAP_32BIT
}

#[cfg(not(target_arch = "x86_64"))]
fn map_32bit() -> libc::c_int {
    0
}
