//! Value memory: zeroed, 8-byte aligned allocations at stable addresses, and copies into and
//! out of them that are safe to race with BPF programs' atomic instructions.
//!
//! Programs reach values through raw pointers (and `BPF_ATOMIC` instructions operate on them
//! in place), so user-space copies go word by word through relaxed atomics: a concurrent
//! reader may see a torn value, as with the kernel, but there is no data race in Rust's sense.

use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Round `n` up to a multiple of 8 (`round_up(n, 8)`).
pub(crate) const fn round8(n: usize) -> usize {
    (n + 7) & !7
}

/// A zero-initialised allocation that never moves and lives as long as its map:
/// heap memory, or a shared mapping of a file ([`Arena::from_file`]).
pub(crate) struct Arena {
    ptr: NonNull<u8>,
    layout: Option<Layout>,
    /// Length of the file mapping, when the memory is one.
    mapped: Option<usize>,
}

// SAFETY: the arena is plain memory; all accesses through it go through raw pointers whose
// synchronisation is the callers' business (atomics, or the map's locks).
unsafe impl Send for Arena {}
// SAFETY: as above.
unsafe impl Sync for Arena {}

impl Arena {
    /// Allocate `bytes` zeroed bytes aligned to 8 (None if the allocation fails).
    pub(crate) fn new(bytes: usize) -> Option<Arena> {
        if bytes == 0 {
            return Some(Arena {
                ptr: NonNull::<u64>::dangling().cast(),
                layout: None,
                mapped: None,
            });
        }
        let layout = Layout::from_size_align(bytes, 8).ok()?;
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        NonNull::new(raw).map(|ptr| Arena {
            ptr,
            layout: Some(layout),
            mapped: None,
        })
    }

    /// `bytes` of `f` (at least that long) mapped shared, read-write: writes go to
    /// the file's pages. Page-aligned, so 8-byte aligned.
    pub(crate) fn from_file(f: &std::fs::File, bytes: usize) -> std::io::Result<Arena> {
        use std::os::fd::AsRawFd;
        if bytes == 0 {
            return Ok(Arena::new(0).unwrap_or(Arena {
                ptr: NonNull::<u64>::dangling().cast(),
                layout: None,
                mapped: None,
            }));
        }
        // SAFETY: a fresh shared mapping of an open file; the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Arena {
            ptr: NonNull::new(p.cast())
                .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOMEM))?,
            layout: None,
            mapped: Some(bytes),
        })
    }

    pub(crate) fn base(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.mapped
            .unwrap_or_else(|| self.layout.map_or(0, |l| l.size()))
    }

    /// Pointer `off` bytes into the arena. Callers keep `off` in bounds.
    #[inline]
    pub(crate) fn at(&self, off: usize) -> *mut u8 {
        debug_assert!(off <= self.len());
        // SAFETY: callers stay within the allocation (checked in debug builds).
        unsafe { self.ptr.as_ptr().add(off) }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        if let Some(len) = self.mapped {
            // SAFETY: mapped in `from_file` with this length, unmapped once.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), len) };
            return;
        }
        if let Some(layout) = self.layout {
            // SAFETY: allocated in `new` with this layout.
            unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}

/// Copy `src` into shared value memory at `dst` (8-byte aligned, `src.len()` bytes valid).
///
/// # Safety
/// `dst` must be 8-byte aligned and valid for `src.len()` bytes.
#[inline]
pub(crate) unsafe fn copy_in(dst: *mut u8, src: &[u8]) {
    let words = src.len() / 8;
    for i in 0..words {
        let mut w = [0u8; 8];
        w.copy_from_slice(&src[i * 8..i * 8 + 8]);
        // SAFETY: aligned and in bounds per the contract.
        let a = unsafe { AtomicU64::from_ptr(dst.add(i * 8).cast()) };
        a.store(u64::from_ne_bytes(w), Ordering::Relaxed);
    }
    for (i, b) in src.iter().enumerate().skip(words * 8) {
        // SAFETY: in bounds per the contract.
        let a = unsafe { AtomicU8::from_ptr(dst.add(i)) };
        a.store(*b, Ordering::Relaxed);
    }
}

/// Copy shared value memory at `src` (8-byte aligned) into `dst`.
///
/// # Safety
/// `src` must be 8-byte aligned and valid for `dst.len()` bytes.
#[inline]
pub(crate) unsafe fn copy_out(src: *const u8, dst: &mut [u8]) {
    let words = dst.len() / 8;
    for i in 0..words {
        // SAFETY: aligned and in bounds per the contract.
        let a = unsafe { AtomicU64::from_ptr(src.add(i * 8).cast_mut().cast()) };
        dst[i * 8..i * 8 + 8].copy_from_slice(&a.load(Ordering::Relaxed).to_ne_bytes());
    }
    for (i, d) in dst.iter_mut().enumerate().skip(words * 8) {
        // SAFETY: in bounds per the contract.
        let a = unsafe { AtomicU8::from_ptr(src.add(i).cast_mut()) };
        *d = a.load(Ordering::Relaxed);
    }
}

/// Fill shared value memory with zeros.
///
/// # Safety
/// `dst` must be 8-byte aligned and valid for `len` bytes.
#[inline]
pub(crate) unsafe fn zero(dst: *mut u8, len: usize) {
    for i in 0..len / 8 {
        // SAFETY: aligned and in bounds per the contract.
        unsafe { AtomicU64::from_ptr(dst.add(i * 8).cast()) }.store(0, Ordering::Relaxed);
    }
    for i in len / 8 * 8..len {
        // SAFETY: in bounds per the contract.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(0, Ordering::Relaxed);
    }
}

/// Take the `struct bpf_spin_lock` at `lock` (a `u32`: 0 free, 1 held).
///
/// The runtime's `bpf_spin_lock` helper must use this same protocol so that `BPF_F_LOCK`
/// copies from user space and programs exclude each other.
///
/// # Safety
/// `lock` must be 4-byte aligned and point into live value memory.
pub unsafe fn bpf_spin_lock(lock: *mut u8) {
    // SAFETY: per the contract.
    let a = unsafe { AtomicU32::from_ptr(lock.cast()) };
    let mut spins = 0u32;
    while a
        .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        spins += 1;
        if spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Release the `struct bpf_spin_lock` at `lock`.
///
/// # Safety
/// `lock` must be 4-byte aligned, point into live value memory and be held by the caller.
pub unsafe fn bpf_spin_unlock(lock: *mut u8) {
    // SAFETY: per the contract.
    unsafe { AtomicU32::from_ptr(lock.cast()) }.store(0, Ordering::Release);
}

/// Copy a value in, leaving the spin lock word (at `lock_off`, if any) untouched, as the
/// kernel's `copy_map_value` does. With `take_lock`, the copy happens under the lock.
///
/// # Safety
/// `dst` must be 8-byte aligned and valid for `src.len()` bytes; `lock_off + 4 <= src.len()`.
pub(crate) unsafe fn copy_value_in(
    dst: *mut u8,
    src: &[u8],
    lock_off: Option<usize>,
    take_lock: bool,
) {
    match lock_off {
        None => unsafe { copy_in(dst, src) },
        Some(off) => {
            // SAFETY: per the contract.
            unsafe {
                if take_lock {
                    bpf_spin_lock(dst.add(off));
                }
                copy_bytes_in(dst, &src[..off], 0);
                copy_bytes_in(dst, &src[off + 4..], off + 4);
                if take_lock {
                    bpf_spin_unlock(dst.add(off));
                }
            }
        }
    }
}

/// Copy a value out, zeroing the spin lock word in the copy (the kernel never exposes it).
///
/// # Safety
/// `src` must be 8-byte aligned and valid for `dst.len()` bytes; `lock_off + 4 <= dst.len()`.
pub(crate) unsafe fn copy_value_out(
    src: *mut u8,
    dst: &mut [u8],
    lock_off: Option<usize>,
    take_lock: bool,
) {
    // SAFETY: per the contract.
    unsafe {
        let locked = take_lock && lock_off.is_some();
        if let (true, Some(off)) = (locked, lock_off) {
            bpf_spin_lock(src.add(off));
        }
        copy_out(src, dst);
        if let Some(off) = lock_off {
            if locked {
                bpf_spin_unlock(src.add(off));
            }
            dst[off..off + 4].fill(0);
        }
    }
}

/// Byte-wise atomic copy to an arbitrary (unaligned) offset.
unsafe fn copy_bytes_in(dst: *mut u8, src: &[u8], off: usize) {
    for (i, b) in src.iter().enumerate() {
        // SAFETY: callers keep `off + src.len()` within the value.
        unsafe { AtomicU8::from_ptr(dst.add(off + i)) }.store(*b, Ordering::Relaxed);
    }
}

/// FxHash-style hash of a key (fast, not DoS-resistant; the seed is fixed so iteration order
/// is reproducible, as with `BPF_F_ZERO_SEED`).
#[inline]
pub(crate) fn hash_key(key: &[u8]) -> u32 {
    // The common key sizes get straight-line code (no chunk loop, no length tests); the
    // result is the same as the general path's.
    match key.len() {
        4 => {
            let w = u32::from_le_bytes(key[..4].try_into().unwrap_or_default()) as u64;
            fmix(((4u64.rotate_left(5)) ^ w).wrapping_mul(HASH_K))
        }
        8 => {
            let w = u64::from_le_bytes(key[..8].try_into().unwrap_or_default());
            fmix(((8u64.rotate_left(5)) ^ w).wrapping_mul(HASH_K))
        }
        _ => hash_key_any(key),
    }
}

/// The Fx multiplier.
const HASH_K: u64 = 0x517c_c1b7_2722_0a95;

/// Finalise (murmur3's fmix64 shape) so that the low bits used for buckets depend on every
/// input bit; Fx alone leaves them poorly mixed for small integer keys.
#[inline(always)]
fn fmix(mut h: u64) -> u32 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h as u32
}

/// [`hash_key`] for any key length.
fn hash_key_any(key: &[u8]) -> u32 {
    const K: u64 = HASH_K;
    let mut h: u64 = key.len() as u64;
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let mut rest = chunks.remainder();
    if !rest.is_empty() {
        // Fixed-size reads rather than a variable-length copy (which costs a memcpy call on
        // the common 4-byte keys).
        let mut w = 0u64;
        let mut shift = 0;
        if rest.len() >= 4 {
            w = u32::from_le_bytes(rest[..4].try_into().unwrap_or([0; 4])) as u64;
            rest = &rest[4..];
            shift = 32;
        }
        if rest.len() >= 2 {
            w |= (u16::from_le_bytes(rest[..2].try_into().unwrap_or([0; 2])) as u64) << shift;
            rest = &rest[2..];
            shift += 16;
        }
        if let Some(&b) = rest.first() {
            w |= (b as u64) << shift;
        }
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    fmix(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed-size arms must hash exactly as the general path, or `get_next_key` order
    /// would change with the key size's code path.
    #[test]
    fn hash_key_fast_paths_match_general_path() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_ne_bytes();
            assert_eq!(hash_key(&b[..4]), hash_key_any(&b[..4]));
            assert_eq!(hash_key(&b), hash_key_any(&b));
        }
    }
}
