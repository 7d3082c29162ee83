//! Dynptrs at run time: the helpers that make, read, write and release them
//! (ids 197–203) and the kfuncs over them (`bpf_dynptr_from_skb/xdp`,
//! `_slice`, `_adjust`, `_clone`, ...), with the kernel's return codes.
//!
//! `struct bpf_dynptr` in the program's stack is the kernel's
//! `bpf_dynptr_kern`: `{ u64 data; u32 size; u32 offset; }`, the size's top
//! bits holding the type (bits 28–30) and the read-only flag (bit 31). `data`
//! is the memory's address for local and ring buffer dynptrs, the context's
//! for skb and xdp ones (whose bytes are the run's packet); 0 is a null
//! dynptr, what every failed constructor leaves.

use super::{env, err, errno_of, ret, ringbuf_of, HResult};
use bpfvm_isa::helpers::{
    BPF_DYNPTR_TYPE_LOCAL as LOCAL, BPF_DYNPTR_TYPE_RINGBUF as RINGBUF, BPF_DYNPTR_TYPE_SKB as SKB,
    BPF_DYNPTR_TYPE_XDP as XDP,
};
use bpfvm_vm::{HelperCtx, HelperError, HelperTable, Region, RegionKind};

/// The largest size a dynptr may have (the size field's 24 bits).
const DYNPTR_MAX_SIZE: u64 = (1 << 24) - 1;
const TYPE_SHIFT: u32 = 28;
const SIZE_MASK: u32 = 0x00ff_ffff;
const RDONLY_BIT: u32 = 1 << 31;

/// A dynptr as the program's stack holds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Dynptr {
    pub data: u64,
    pub size: u32,
    pub kind: u8,
    pub rdonly: bool,
    pub offset: u32,
}

impl Dynptr {
    pub fn new(data: u64, kind: u8, size: u32) -> Dynptr {
        Dynptr {
            data,
            size: size & SIZE_MASK,
            kind,
            rdonly: false,
            offset: 0,
        }
    }

    fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        let meta = (self.size & SIZE_MASK)
            | (u32::from(self.kind & 7) << TYPE_SHIFT)
            | if self.rdonly { RDONLY_BIT } else { 0 };
        b[..8].copy_from_slice(&self.data.to_le_bytes());
        b[8..12].copy_from_slice(&meta.to_le_bytes());
        b[12..].copy_from_slice(&self.offset.to_le_bytes());
        b
    }

    fn from_bytes(b: &[u8]) -> Dynptr {
        let word = |r: std::ops::Range<usize>| {
            let mut a = [0u8; 8];
            a[..r.len()].copy_from_slice(&b[r]);
            u64::from_le_bytes(a)
        };
        let meta = word(8..12) as u32;
        Dynptr {
            data: word(0..8),
            size: meta & SIZE_MASK,
            kind: ((meta & !RDONLY_BIT) >> TYPE_SHIFT) as u8,
            rdonly: meta & RDONLY_BIT != 0,
            offset: word(12..16) as u32,
        }
    }

    /// `bpf_dynptr_check_off_len`: `[offset, offset + len)` lies inside.
    fn covers(&self, offset: u64, len: u64) -> bool {
        let size = u64::from(self.size);
        len <= size && offset <= size - len
    }
}

pub(crate) fn load(c: &HelperCtx<'_, '_>, p: u64) -> Result<Dynptr, HelperError> {
    Ok(Dynptr::from_bytes(&c.read_bytes(p, 16)?))
}

pub(crate) fn store(c: &HelperCtx<'_, '_>, p: u64, d: Dynptr) -> Result<(), HelperError> {
    c.write_bytes(p, &d.to_bytes())
}

/// `bpf_dynptr_set_null`
pub(crate) fn set_null(c: &HelperCtx<'_, '_>, p: u64) -> Result<(), HelperError> {
    c.write_bytes(p, &[0; 16])
}

/// The run's packet as `(start, len)`: skb and xdp dynptrs see it.
fn packet(c: &HelperCtx<'_, '_>) -> Option<(u64, u64)> {
    c.packet().map(|p| (p.start, p.len()))
}

/// The address of `len` bytes at `offset` into `d`'s data, if they are in
/// memory the program may reach directly: the memory itself for local and
/// ring buffer dynptrs, the packet (linear here) for skb and xdp ones.
fn direct(c: &HelperCtx<'_, '_>, d: &Dynptr, offset: u64, len: u64) -> Option<u64> {
    if d.data == 0 || !d.covers(offset, len) {
        return None;
    }
    let at = u64::from(d.offset) + offset;
    match d.kind {
        LOCAL | RINGBUF => d.data.checked_add(at),
        SKB | XDP => {
            // The packet may have shrunk since the dynptr was made.
            let (start, plen) = packet(c)?;
            if at.checked_add(len)? > plen {
                return None;
            }
            start.checked_add(at)
        }
        _ => None,
    }
}

/// `bpf_dynptr_from_skb` / `bpf_dynptr_from_xdp(ctx, flags, ptr)`.
pub(crate) fn from_packet(c: &mut HelperCtx<'_, '_>, a: [u64; 5], kind: u8) -> HResult {
    let (ctx, flags, p) = (a[0], a[1], a[2]);
    if flags != 0 {
        set_null(c, p)?;
        return err(libc::EINVAL);
    }
    let len = packet(c).map_or(0, |(_, l)| l) as u32;
    store(c, p, Dynptr::new(ctx, kind, len))?;
    ret(0)
}

/// `bpf_dynptr_from_mem(data, size, flags, ptr)`
fn from_mem(c: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (data, size, flags, p) = (a[0], a[1] as u32, a[2], a[3]);
    if u64::from(size) > DYNPTR_MAX_SIZE {
        set_null(c, p)?;
        return err(libc::E2BIG);
    }
    if flags != 0 {
        set_null(c, p)?;
        return err(libc::EINVAL);
    }
    store(c, p, Dynptr::new(data, LOCAL, size))?;
    ret(0)
}

/// `bpf_ringbuf_reserve_dynptr(map, size, flags, ptr)`: the dynptr is null
/// when nothing was reserved, and must be released all the same.
fn ringbuf_reserve(c: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (size, flags, p) = (a[1] as u32, a[2], a[3]);
    let m = ringbuf_of(c, a[0])?;
    if flags != 0 {
        set_null(c, p)?;
        return err(libc::EINVAL);
    }
    if u64::from(size) > DYNPTR_MAX_SIZE {
        set_null(c, p)?;
        return err(libc::E2BIG);
    }
    let Some(rec) = m
        .ops
        .as_ringbuf()
        .and_then(|r| r.reserve(u64::from(size), 0))
    else {
        set_null(c, p)?;
        return err(libc::EINVAL);
    };
    let rec = rec as u64;
    c.register_region(Region::new(rec, u64::from(size), true, RegionKind::Mem));
    env(c)?.reservations.push((rec, m));
    store(c, p, Dynptr::new(rec, RINGBUF, size))?;
    ret(0)
}

/// `bpf_ringbuf_submit_dynptr` / `_discard_dynptr(ptr, flags)`: a null
/// dynptr has nothing to commit; the dynptr is null afterwards.
fn ringbuf_commit(c: &mut HelperCtx<'_, '_>, a: [u64; 5], discard: bool) -> HResult {
    let (p, flags) = (a[0], a[1]);
    let d = load(c, p)?;
    if d.data == 0 {
        return ret(0);
    }
    let e = env(c)?;
    let Some(i) = e.reservations.iter().position(|(r, _)| *r == d.data) else {
        return Err(HelperError::InvalidArgument {
            reason: format!(
                "dynptr at {p:#x} holds {:#x}, not a reserved ring buffer record",
                d.data
            ),
        });
    };
    let (rec, m) = e.reservations.swap_remove(i);
    c.unregister_region(rec);
    set_null(c, p)?;
    if let Some(rb) = m.ops.as_ringbuf() {
        let r = if discard {
            rb.discard(rec as *mut u8, flags)
        } else {
            rb.submit(rec as *mut u8, flags)
        };
        if let Err(e) = r {
            return err(errno_of(&e));
        }
    }
    ret(0)
}

/// `bpf_dynptr_read(dst, len, src, offset, flags)`
fn read(c: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (dst, len, offset, flags) = (a[0], a[1] as u32 as u64, a[3] as u32 as u64, a[4]);
    let d = load(c, a[2])?;
    if d.data == 0 || flags != 0 {
        return err(libc::EINVAL);
    }
    if !d.covers(offset, len) {
        return err(libc::E2BIG);
    }
    let Some(from) = direct(c, &d, offset, len) else {
        // An skb or xdp dynptr past the packet's end: the skb load fails
        // zeroing the destination, the xdp one fails as bpf_xdp_pointer.
        if d.kind == SKB {
            c.write_bytes(dst, &vec![0; len as usize])?;
            return err(libc::EFAULT);
        }
        return err(libc::EINVAL);
    };
    // Source and destination may overlap (two dynptrs over one value).
    let bytes = c.read_bytes(from, len as usize)?;
    c.write_bytes(dst, &bytes)?;
    ret(0)
}

/// `bpf_dynptr_write(dst, offset, src, len, flags)`
fn write(c: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (offset, src, len, flags) = (a[1] as u32 as u64, a[2], a[3] as u32 as u64, a[4]);
    let d = load(c, a[0])?;
    if d.data == 0 || d.rdonly {
        return err(libc::EINVAL);
    }
    if !d.covers(offset, len) {
        return err(libc::E2BIG);
    }
    // An skb is written as bpf_skb_store_bytes writes it (its flags ask
    // for checksum and hash updates); the others take no flags.
    if d.kind == SKB {
        let at = u64::from(d.offset) + offset;
        return crate::nethelpers::skb_store_bytes(c, [d.data, at, src, len, flags]);
    }
    if flags != 0 {
        return err(libc::EINVAL);
    }
    let Some(to) = direct(c, &d, offset, len) else {
        return err(libc::EINVAL);
    };
    let bytes = c.read_bytes(src, len as usize)?;
    c.write_bytes(to, &bytes)?;
    ret(0)
}

/// `bpf_dynptr_data(ptr, offset, len)`: a pointer into local or ring buffer
/// memory, NULL for anything else (skb and xdp dynptrs have `_slice`).
fn data(c: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (offset, len) = (a[1] as u32 as u64, a[2] as u32 as u64);
    let d = load(c, a[0])?;
    if d.rdonly || !matches!(d.kind, LOCAL | RINGBUF) {
        return ret(0);
    }
    ret(direct(c, &d, offset, len).unwrap_or(0) as i64)
}

/// `bpf_dynptr_slice` / `_rdwr(ptr, offset, buffer, buffer__szk)`: the
/// packet is linear here, so the slice is always the data itself (the
/// buffer is never needed); NULL outside the dynptr.
pub(crate) fn slice(c: &mut HelperCtx<'_, '_>, a: [u64; 5], writable: bool) -> HResult {
    let (offset, len) = (a[1] as u32 as u64, a[3] as u32 as u64);
    let d = load(c, a[0])?;
    if writable && d.rdonly {
        return ret(0);
    }
    ret(direct(c, &d, offset, len).unwrap_or(0) as i64)
}

/// `bpf_dynptr_adjust(ptr, start, end)`
pub(crate) fn adjust(c: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (p, start, end) = (a[0], a[1] as u32, a[2] as u32);
    let mut d = load(c, p)?;
    if d.data == 0 || start > end {
        return err(libc::EINVAL);
    }
    if start > d.size || end > d.size {
        return err(libc::ERANGE);
    }
    d.offset = d.offset.wrapping_add(start);
    d.size = end - start;
    store(c, p, d)?;
    ret(0)
}

/// `bpf_dynptr_is_null(ptr)`
pub(crate) fn is_null(c: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    ret(i64::from(load(c, a[0])?.data == 0))
}

/// `bpf_dynptr_is_rdonly(ptr)`
pub(crate) fn is_rdonly(c: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let d = load(c, a[0])?;
    ret(i64::from(d.data != 0 && d.rdonly))
}

/// `bpf_dynptr_size(ptr)`: a `u32`, so a null dynptr's -EINVAL wraps.
pub(crate) fn size(c: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let d = load(c, a[0])?;
    if d.data == 0 {
        return ret(i64::from(-(libc::EINVAL) as u32));
    }
    ret(i64::from(d.size))
}

/// `bpf_dynptr_clone(ptr, clone)`
pub(crate) fn clone(c: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let d = load(c, a[0])?;
    if d.data == 0 {
        set_null(c, a[1])?;
        return err(libc::EINVAL);
    }
    store(c, a[1], d)?;
    ret(0)
}

/// Registers helpers 197–203.
pub(crate) fn register(t: &mut HelperTable) {
    use bpfvm_isa::uapi::{
        BPF_FUNC_DYNPTR_DATA, BPF_FUNC_DYNPTR_FROM_MEM, BPF_FUNC_DYNPTR_READ,
        BPF_FUNC_DYNPTR_WRITE, BPF_FUNC_RINGBUF_DISCARD_DYNPTR, BPF_FUNC_RINGBUF_RESERVE_DYNPTR,
        BPF_FUNC_RINGBUF_SUBMIT_DYNPTR,
    };
    let id = |f: i32| f as u32;
    let name = |f: i32| super::named(f as u32);
    t.register(
        id(BPF_FUNC_DYNPTR_FROM_MEM),
        name(BPF_FUNC_DYNPTR_FROM_MEM),
        from_mem,
    )
    .register(
        id(BPF_FUNC_RINGBUF_RESERVE_DYNPTR),
        name(BPF_FUNC_RINGBUF_RESERVE_DYNPTR),
        ringbuf_reserve,
    )
    .register(
        id(BPF_FUNC_RINGBUF_SUBMIT_DYNPTR),
        name(BPF_FUNC_RINGBUF_SUBMIT_DYNPTR),
        |c: &mut HelperCtx<'_, '_>, a| ringbuf_commit(c, a, false),
    )
    .register(
        id(BPF_FUNC_RINGBUF_DISCARD_DYNPTR),
        name(BPF_FUNC_RINGBUF_DISCARD_DYNPTR),
        |c: &mut HelperCtx<'_, '_>, a| ringbuf_commit(c, a, true),
    )
    .register(id(BPF_FUNC_DYNPTR_READ), name(BPF_FUNC_DYNPTR_READ), read)
    .register(
        id(BPF_FUNC_DYNPTR_WRITE),
        name(BPF_FUNC_DYNPTR_WRITE),
        write,
    )
    .register(id(BPF_FUNC_DYNPTR_DATA), name(BPF_FUNC_DYNPTR_DATA), data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_round_trips_the_kernel_fields() {
        let d = Dynptr {
            data: 0x1234_5678_9abc,
            size: 0xff_ffff,
            kind: RINGBUF,
            rdonly: true,
            offset: 7,
        };
        let b = d.to_bytes();
        assert_eq!(u32::from_le_bytes([b[8], b[9], b[10], b[11]]), 0xa0ff_ffff);
        assert_eq!(Dynptr::from_bytes(&b), d);
    }

    #[test]
    fn covers_is_the_kernels_off_len_check() {
        let d = Dynptr::new(1, LOCAL, 8);
        assert!(d.covers(0, 8));
        assert!(d.covers(8, 0));
        assert!(!d.covers(1, 8));
        assert!(!d.covers(9, 0));
        assert!(!d.covers(0, u64::from(u32::MAX)));
    }
}
