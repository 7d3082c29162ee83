//! Packet helpers of tc and XDP programs, and the process helpers real
//! programs call beside them, with the semantics Linux 6.18 shows through
//! `BPF_PROG_TEST_RUN`:
//!
//! - checksums: `bpf_l3_csum_replace`, `bpf_l4_csum_replace`, `bpf_csum_update`,
//!   `bpf_csum_level`;
//! - the sk_buff's shape: `bpf_skb_store_bytes`, `bpf_skb_pull_data`,
//!   `bpf_skb_change_tail`, `bpf_skb_change_head`, `bpf_skb_change_proto`,
//!   `bpf_skb_adjust_room`, `bpf_skb_vlan_push`, `bpf_skb_vlan_pop`,
//!   `bpf_skb_ecn_set_ce`;
//! - the flow hash: `bpf_get_hash_recalc`, `bpf_set_hash_invalid`;
//! - forwarding: `bpf_redirect` (tc and XDP verdicts), `bpf_redirect_peer`,
//!   `bpf_redirect_neigh`, `bpf_clone_redirect`, and `bpf_fib_lookup` over
//!   tables the embedder gives ([`fib`]);
//! - XDP: `bpf_xdp_get_buff_len`, `bpf_xdp_load_bytes`, `bpf_xdp_store_bytes`;
//! - the task: `bpf_get_current_task`, `bpf_get_ns_current_pid_tgid`.
//!
//! bpfvm's sk_buffs are linear and `CHECKSUM_NONE`, or `CHECKSUM_COMPLETE`
//! with `BPF_F_TEST_SKB_CHECKSUM_COMPLETE`, as the kernel's test runs build
//! them; the helpers keep `skb->csum` as the kernel's do. Every helper that
//! changes the packet recomputes the `__sk_buff` fields a program reads
//! (`len`, `data`, `data_end`, `protocol`, the vlan fields, `hash`) and the
//! run's packet region, as the kernel's `bpf_compute_data_pointers` does; the
//! verifier has already invalidated the program's packet pointers at the call
//! (the registry marks these helpers `ChangesPkt`, as the kernel's
//! `bpf_helper_changes_pkt_data` lists them).

pub mod fib;

use crate::env::{Redirect, RunEnv};
use bpfvm_vm::{HelperCtx, HelperError, HelperOutcome, HelperTable, Leaves, Region, RegionKind};

type HResult = Result<HelperOutcome, HelperError>;

fn ret(v: i64) -> HResult {
    Ok(HelperOutcome::Return(v as u64))
}

fn err(e: i32) -> HResult {
    ret(-(e as i64))
}

/// The kernel's internal `ENOTSUPP` (524), which these helpers return as is.
const ENOTSUPP: i32 = 524;

const ETH_HLEN: u64 = 14;
const VLAN_HLEN: u64 = 4;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

/// `BPF_SKB_MAX_LEN` (`SKB_MAX_ALLOC`: four pages less the shared info).
pub const SKB_MAX_LEN: u32 = 16384 - 320;

/// `struct __sk_buff` offsets the helpers keep up to date.
mod off {
    pub const LEN: usize = 0;
    pub const PKT_TYPE: usize = 4;
    pub const TSTAMP: usize = 152;
    pub const TSTAMP_TYPE: usize = 180;
    pub const PROTOCOL: usize = 16;
    pub const VLAN_PRESENT: usize = 20;
    pub const VLAN_TCI: usize = 24;
    pub const VLAN_PROTO: usize = 28;
    pub const HASH: usize = 68;
    pub const DATA: usize = 76;
    pub const DATA_END: usize = 80;
    pub const DATA_META: usize = 140;
}

/// The sk_buff of a run, as far as the helpers change it. Addresses are in
/// the run's packet buffer (`head .. buf_end`), below 4 GiB so that
/// `__sk_buff->data` holds them.
pub struct SkbState {
    /// The `__sk_buff` the program reads (192 bytes, alive for the run).
    pub ctx: *mut u8,
    /// Start of the buffer (`skb->head`).
    pub head: u64,
    /// End of the buffer (`skb->end`).
    pub buf_end: u64,
    /// Start of the packet (`skb->data`).
    pub data: u64,
    /// Packet length (`skb->len`).
    pub len: u32,
    /// `skb->mac_header`.
    pub mac: u64,
    /// `skb->network_header`.
    pub network: u64,
    /// `skb->transport_header`, when set.
    pub transport: Option<u64>,
    /// `skb->protocol`, host order.
    pub protocol: u16,
    /// The offloaded vlan tag (`skb->vlan_proto` host order, `vlan_tci`).
    pub vlan: Option<(u16, u16)>,
    /// `skb->hash` while valid (`sw_hash`/`l4_hash`), else None.
    pub hash: Option<u32>,
    /// `skb->encapsulation`.
    pub encapsulation: bool,
    /// `skb->ip_summed` (and `skb->csum`, `skb->csum_level`).
    pub summed: Summed,
    /// `skb->csum` as it stayed when the skb stopped being `CHECKSUM_COMPLETE`.
    pub csum_seen: u32,
    /// `skb->pkt_type`.
    pub pkt_type: u32,
    /// `skb->tstamp` and `tstamp_type` once `bpf_skb_set_tstamp` set them.
    pub tstamp: Option<(u64, u8)>,
    /// The cookie of the run's socket, once asked for.
    pub sk_cookie: Option<u64>,
}

/// `skb->ip_summed`: a test run's skb is `CHECKSUM_NONE`, or
/// `CHECKSUM_COMPLETE` with `BPF_F_TEST_SKB_CHECKSUM_COMPLETE`; `bpf_csum_level`
/// makes it `CHECKSUM_UNNECESSARY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Summed {
    /// `CHECKSUM_NONE`.
    None,
    /// `CHECKSUM_COMPLETE` with `skb->csum`, the sum from the network header on.
    Complete(u32),
    /// `CHECKSUM_UNNECESSARY` with `skb->csum_level`.
    Unnecessary(u8),
}

/// x86-64's `csum_partial` of `buf` at an address of parity `odd`: an odd
/// start is summed from the next byte on and the 16-bit result byte-swapped.
fn csum_partial_at(buf: &[u8], odd: bool, sum: u32) -> u32 {
    use crate::helpers_pure::{csum_from32to16, csum_partial};
    if !odd || buf.is_empty() {
        return csum_partial(buf, sum);
    }
    let t = sum.rotate_right(8) as u64 + ((buf[0] as u64) << 8);
    let t = ((t & 0xffff_ffff) + (t >> 32)) as u32;
    csum_from32to16(csum_partial(&buf[1..], t)).swap_bytes() as u32
}

/// `csum_block_add`: `csum2` of a block at `offset` added to `csum`.
fn csum_block_add(csum: u32, csum2: u32, offset: u64) -> u32 {
    let c2 = if offset & 1 != 0 {
        csum2.rotate_right(8)
    } else {
        csum2
    };
    csum_add(csum, c2)
}

impl SkbState {
    /// The sum of `n` packet bytes from `from` (relative to data).
    fn partial(&self, from: u64, n: u64) -> u32 {
        csum_partial_at(self.bytes(from, n), (self.data + from) & 1 != 0, 0)
    }

    /// `__skb_postpull_rcsum`: bytes at `from` are about to leave the sum.
    fn postpull_rcsum(&mut self, from: u64, n: u64, off: u64) {
        if let Summed::Complete(c) = self.summed {
            let p = self.partial(from, n);
            self.summed = Summed::Complete(csum_block_add(c, !p, off));
        }
    }

    /// `skb_postpull_rcsum`: `-(csum_partial(bytes, -csum))`.
    fn postpull_rcsum_neg(&mut self, from: u64, n: u64) {
        if let Summed::Complete(c) = self.summed {
            let b = self.bytes(from, n);
            let odd = (self.data + from) & 1 != 0;
            let r = csum_partial_at(b, odd, c.wrapping_neg());
            self.summed = Summed::Complete(r.wrapping_neg());
        }
    }

    /// `__skb_postpush_rcsum`: bytes at `from` have joined the sum.
    fn postpush_rcsum(&mut self, from: u64, n: u64, off: u64) {
        if let Summed::Complete(c) = self.summed {
            let p = self.partial(from, n);
            self.summed = Summed::Complete(csum_block_add(c, p, off));
        }
    }

    /// The sum of the packet from the network header, as the test run
    /// compares it with `skb->csum` at the end.
    pub fn network_csum(&self) -> u32 {
        let off = self.network.saturating_sub(self.data);
        let n = (self.len as u64).saturating_sub(off);
        self.partial(off.min(self.len as u64), n)
    }
}

impl SkbState {
    /// Writes what the program reads of the skb into its `__sk_buff`.
    pub fn sync(&self) {
        let put = |o: usize, v: u32| {
            // SAFETY: ctx points at the run's 192-byte __sk_buff.
            unsafe { std::ptr::write_unaligned(self.ctx.add(o) as *mut u32, v) }
        };
        put(off::LEN, self.len);
        put(off::PKT_TYPE, self.pkt_type);
        if let Some((t, kind)) = self.tstamp {
            // SAFETY: as above; tstamp is a u64 at 152, tstamp_type a u8 at 180.
            unsafe {
                std::ptr::write_unaligned(self.ctx.add(off::TSTAMP) as *mut u64, t);
                *self.ctx.add(off::TSTAMP_TYPE) = kind;
            }
        }
        put(off::PROTOCOL, self.protocol.to_be() as u32);
        let (present, proto, tci) = match self.vlan {
            Some((p, t)) => (1, p.to_be() as u32, t as u32),
            None => (0, 0, 0),
        };
        put(off::VLAN_PRESENT, present);
        put(off::VLAN_TCI, tci);
        put(off::VLAN_PROTO, proto);
        put(off::HASH, self.hash.unwrap_or(0));
        put(off::DATA, self.data as u32);
        put(off::DATA_END, (self.data + self.len as u64) as u32);
        put(off::DATA_META, self.data as u32);
    }

    fn end(&self) -> u64 {
        self.data + self.len as u64
    }

    /// The packet bytes `[data + from, data + from + n)`; the caller checked
    /// that they lie in the packet.
    #[allow(clippy::mut_from_ref)]
    fn bytes(&self, from: u64, n: u64) -> &mut [u8] {
        // SAFETY: data..data+len lies in the run's packet buffer, which the
        // skb state does not outlive; callers stay within len.
        unsafe { std::slice::from_raw_parts_mut((self.data + from) as *mut u8, n as usize) }
    }

    /// `skb_push`: `n` more bytes in front (the buffer keeps room for the
    /// largest skb the helpers allow).
    fn push(&mut self, n: u64) -> bool {
        if self.data - self.head < n {
            return false;
        }
        self.data -= n;
        self.len += n as u32;
        true
    }

    fn pull(&mut self, n: u64) {
        self.data += n;
        self.len -= n as u32;
    }
}

/// Runs `f` on the run's sk_buff, then refreshes the `__sk_buff` and the
/// packet region from it.
fn with_skb(ctx: &mut HelperCtx<'_, '_>, f: impl FnOnce(&mut SkbState) -> i64) -> HResult {
    let e = ctx.env::<RunEnv>()?;
    let Some(s) = e.skb.as_mut() else {
        return Err(HelperError::Other(
            "the helper needs an sk_buff and the run has none".into(),
        ));
    };
    let r = f(s);
    s.sync();
    let (d, l) = (s.data, s.len as u64);
    ctx.set_region(Region::new(d, l, true, RegionKind::Packet));
    ret(r)
}

// One's complement arithmetic as the kernel's checksum.h does it, on values
// as they are in memory (loads in host order).

fn csum_add(a: u32, b: u32) -> u32 {
    let r = a.wrapping_add(b);
    r.wrapping_add((r < b) as u32)
}

fn csum_sub(a: u32, b: u32) -> u32 {
    csum_add(a, !b)
}

fn csum_fold(c: u32) -> u16 {
    let s = (c & 0xffff) + (c >> 16);
    let s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

fn csum16_add(c: u16, a: u16) -> u16 {
    let r = c.wrapping_add(a);
    r.wrapping_add((r < a) as u16)
}

fn csum16_sub(c: u16, a: u16) -> u16 {
    csum16_add(c, !a)
}

fn csum_replace_by_diff(sum: u16, diff: u32) -> u16 {
    csum_fold(csum_add(diff, !(sum as u32)))
}

fn csum_replace4(sum: u16, from: u32, to: u32) -> u16 {
    csum_fold(csum_add(csum_sub(!(sum as u32), from), to))
}

fn csum_replace2(sum: u16, from: u16, to: u16) -> u16 {
    !csum16_add(csum16_sub(!sum, from), to)
}

const BPF_F_HDR_FIELD_MASK: u64 = 0xf;
const BPF_F_PSEUDO_HDR: u64 = 1 << 4;
const BPF_F_MARK_MANGLED_0: u64 = 1 << 5;
const BPF_F_MARK_ENFORCE: u64 = 1 << 6;
const BPF_F_IPV6: u64 = 1 << 7;

/// The checksum field at `offset`, or the errno: an offset past 0xffff or odd
/// is -EFAULT, as is a field past the packet (`skb_ensure_writable`).
fn csum_field(s: &SkbState, offset: u32) -> Result<&mut [u8], i32> {
    if offset > 0xffff || offset & 1 != 0 || offset as u64 + 2 > s.len as u64 {
        return Err(libc::EFAULT);
    }
    Ok(s.bytes(offset as u64, 2))
}

/// `bpf_l3_csum_replace(skb, offset, from, to, flags)`.
fn l3_csum_replace(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (offset, from, to, flags) = (a[1] as u32, a[2], a[3], a[4]);
    if flags & !BPF_F_HDR_FIELD_MASK != 0 {
        return err(libc::EINVAL);
    }
    with_skb(ctx, |s| {
        let f = match csum_field(s, offset) {
            Ok(f) => f,
            Err(e) => return -(e as i64),
        };
        let sum = u16::from_ne_bytes([f[0], f[1]]);
        let new = match flags & BPF_F_HDR_FIELD_MASK {
            0 if from != 0 => return -(libc::EINVAL as i64),
            0 => csum_replace_by_diff(sum, to as u32),
            2 => csum_replace2(sum, from as u16, to as u16),
            4 => csum_replace4(sum, from as u32, to as u32),
            _ => return -(libc::EINVAL as i64),
        };
        f.copy_from_slice(&new.to_ne_bytes());
        0
    })
}

/// `bpf_l4_csum_replace(skb, offset, from, to, flags)`. The skb is never
/// `CHECKSUM_PARTIAL`, so `BPF_F_PSEUDO_HDR` changes only the sum of a
/// `CHECKSUM_COMPLETE` skb.
fn l4_csum_replace(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (offset, from, to, flags) = (a[1] as u32, a[2], a[3], a[4]);
    let allowed = BPF_F_MARK_MANGLED_0
        | BPF_F_MARK_ENFORCE
        | BPF_F_PSEUDO_HDR
        | BPF_F_HDR_FIELD_MASK
        | BPF_F_IPV6;
    if flags & !allowed != 0 {
        return err(libc::EINVAL);
    }
    let mangled0 = flags & BPF_F_MARK_MANGLED_0 != 0;
    let enforce = flags & BPF_F_MARK_ENFORCE != 0;
    with_skb(ctx, |s| {
        let f = match csum_field(s, offset) {
            Ok(f) => f,
            Err(e) => return -(e as i64),
        };
        let sum = u16::from_ne_bytes([f[0], f[1]]);
        if mangled0 && !enforce && sum == 0 {
            return 0;
        }
        let mut new = match flags & BPF_F_HDR_FIELD_MASK {
            0 if from != 0 => return -(libc::EINVAL as i64),
            0 => csum_replace_by_diff(sum, to as u32),
            2 => csum_replace4(sum, from as u16 as u32, to as u16 as u32),
            4 => csum_replace4(sum, from as u32, to as u32),
            _ => return -(libc::EINVAL as i64),
        };
        if mangled0 && new == 0 {
            // CSUM_MANGLED_0
            new = 0xffff;
        }
        f.copy_from_slice(&new.to_ne_bytes());
        // The pseudo header's share of a CHECKSUM_COMPLETE sum.
        if let (Summed::Complete(c), true) = (s.summed, flags & BPF_F_PSEUDO_HDR != 0) {
            let c = match flags & BPF_F_HDR_FIELD_MASK {
                0 if flags & BPF_F_IPV6 == 0 => Some(!csum_sub(to as u32, c)),
                0 => None,
                2 => Some(!csum_add(
                    csum_sub(!c, from as u16 as u32),
                    to as u16 as u32,
                )),
                _ => Some(!csum_add(csum_sub(!c, from as u32), to as u32)),
            };
            if let Some(c) = c {
                s.summed = Summed::Complete(c);
            }
        }
        0
    })
}

/// `bpf_skb_store_bytes(skb, offset, from, len, flags)`: copy into the
/// packet; `BPF_F_RECOMPUTE_CSUM` keeps a `CHECKSUM_COMPLETE` sum up to date,
/// `BPF_F_INVALIDATE_HASH` clears the hash.
pub(crate) fn skb_store_bytes(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    const BPF_F_RECOMPUTE_CSUM: u64 = 1;
    const BPF_F_INVALIDATE_HASH: u64 = 2;
    let (offset, from, len, flags) = (a[1] as u32 as u64, a[2], a[3] as u32 as u64, a[4]);
    if flags & !(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH) != 0 {
        return err(libc::EINVAL);
    }
    let data = ctx.read_bytes(from, len as usize)?;
    with_skb(ctx, |s| {
        if offset > i32::MAX as u64 || offset + len > s.len as u64 {
            return -(libc::EFAULT as i64);
        }
        let recompute = flags & BPF_F_RECOMPUTE_CSUM != 0;
        if recompute {
            s.postpull_rcsum(offset, len, offset);
        }
        s.bytes(offset, len).copy_from_slice(&data);
        if recompute {
            s.postpush_rcsum(offset, len, offset);
        }
        if flags & BPF_F_INVALIDATE_HASH != 0 {
            s.hash = None;
        }
        0
    })
}

/// `bpf_skb_pull_data(skb, len)`: the skb is linear already; asking for
/// more than it holds is -ENOMEM (`pskb_may_pull`).
fn skb_pull_data(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let want = a[1] as u32;
    with_skb(ctx, |s| {
        if want > s.len {
            -(libc::ENOMEM as i64)
        } else {
            0
        }
    })
}

/// `bpf_skb_change_tail(skb, new_len, flags)`: grows (zero-filled) or trims
/// the packet at its end.
fn skb_change_tail(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (new_len, flags) = (a[1] as u32, a[2]);
    with_skb(ctx, |s| {
        // The network header, or the transport header when set, must stay.
        let mut min_len = 0;
        let net = s.network as i64 - s.data as i64;
        if net > 0 {
            min_len = net as u32;
        }
        if let Some(t) = s.transport {
            let t = t as i64 - s.data as i64;
            if t > 0 {
                min_len = t as u32;
            }
        }
        if flags != 0 || new_len > SKB_MAX_LEN || new_len < min_len {
            return -(libc::EINVAL as i64);
        }
        if s.encapsulation {
            return -(ENOTSUPP as i64);
        }
        if let (true, Summed::Complete(c)) = (new_len != s.len, s.summed) {
            // __skb_grow_rcsum / __skb_trim_rcsum; skb->csum stays as it was.
            s.summed = Summed::None;
            s.csum_seen = c;
        }
        if new_len > s.len {
            let old = s.len as u64;
            if s.data + new_len as u64 > s.buf_end {
                return -(libc::ENOMEM as i64);
            }
            s.len = new_len;
            s.bytes(old, new_len as u64 - old).fill(0);
        } else {
            s.len = new_len;
        }
        0
    })
}

/// `bpf_skb_change_head(skb, head_room, flags)`: `head_room` zero bytes in
/// front; the MAC header starts there, the network header stays.
fn skb_change_head(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (room, flags) = (a[1] as u32, a[2]);
    with_skb(ctx, |s| {
        let new_len = s.len.wrapping_add(room);
        if flags != 0 || new_len > SKB_MAX_LEN || new_len < s.len {
            return -(libc::EINVAL as i64);
        }
        if !s.push(room as u64) {
            return -(libc::ENOMEM as i64);
        }
        s.bytes(0, room as u64).fill(0);
        s.mac = s.data;
        0
    })
}

const ADJ_FIXED_GSO: u64 = 1 << 0;
const ADJ_ENCAP_L3_IPV4: u64 = 1 << 1;
const ADJ_ENCAP_L3_IPV6: u64 = 1 << 2;
const ADJ_ENCAP_L4_GRE: u64 = 1 << 3;
const ADJ_ENCAP_L4_UDP: u64 = 1 << 4;
const ADJ_NO_CSUM_RESET: u64 = 1 << 5;
const ADJ_ENCAP_L2_ETH: u64 = 1 << 6;
const ADJ_DECAP_L3_IPV4: u64 = 1 << 7;
const ADJ_DECAP_L3_IPV6: u64 = 1 << 8;
const ADJ_ENCAP_L2_SHIFT: u64 = 56;
const ADJ_ENCAP_L3_MASK: u64 = ADJ_ENCAP_L3_IPV4 | ADJ_ENCAP_L3_IPV6;
const ADJ_DECAP_L3_MASK: u64 = ADJ_DECAP_L3_IPV4 | ADJ_DECAP_L3_IPV6;
const ADJ_MASK: u64 = ADJ_FIXED_GSO
    | ADJ_ENCAP_L3_MASK
    | ADJ_ENCAP_L4_GRE
    | ADJ_ENCAP_L4_UDP
    | ADJ_ENCAP_L2_ETH
    | (0xff << ADJ_ENCAP_L2_SHIFT)
    | ADJ_DECAP_L3_MASK;
const BPF_ADJ_ROOM_NET: u32 = 0;
const BPF_ADJ_ROOM_MAC: u32 = 1;

/// `bpf_skb_net_hdr_push`: `len` zero bytes at `off` from the start (the
/// `off` bytes before them move to the front); the MAC and network headers
/// move with the front part.
fn net_hdr_push(s: &mut SkbState, off: u64, len: u64) -> Result<(), i64> {
    let trans_same = s.transport == Some(s.network);
    if !s.push(len) {
        return Err(-(libc::ENOMEM as i64));
    }
    // SAFETY: the packet buffer holds data .. data + off + len (pushed above).
    unsafe { std::ptr::copy((s.data + len) as *const u8, s.data as *mut u8, off as usize) };
    s.bytes(off, len).fill(0);
    s.mac -= len;
    s.network -= len;
    if trans_same {
        s.transport = Some(s.network);
    }
    Ok(())
}

/// `bpf_skb_net_hdr_pop`: removes `len` bytes at `off`; -ENOMEM if the
/// packet is shorter than `off + len` (`pskb_may_pull`).
fn net_hdr_pop(s: &mut SkbState, off: u64, len: u64) -> Result<(), i64> {
    let trans_same = s.transport == Some(s.network);
    if off + len > s.len as u64 {
        return Err(-(libc::ENOMEM as i64));
    }
    s.postpull_rcsum_neg(off, len);
    let old = s.data;
    s.pull(len);
    // SAFETY: both ranges lie in the packet buffer (off + len <= old len).
    unsafe { std::ptr::copy(old as *const u8, s.data as *mut u8, off as usize) };
    s.mac += len;
    s.network += len;
    if trans_same {
        s.transport = Some(s.network);
    }
    Ok(())
}

/// `bpf_skb_change_proto(skb, proto, flags)`: IPv4 to IPv6 makes 20 (zeroed)
/// bytes of room after the MAC header, IPv6 to IPv4 takes 20 away; the
/// program writes the new header. Other pairs are -ENOTSUPP.
fn skb_change_proto(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (to, flags) = (u16::from_be(a[1] as u16), a[2]);
    if flags != 0 {
        return err(libc::EINVAL);
    }
    with_skb(ctx, |s| {
        let off = s.network.wrapping_sub(s.mac);
        let r = match (s.protocol, to) {
            (ETH_P_IP, ETH_P_IPV6) => net_hdr_push(s, off, 20),
            (ETH_P_IPV6, ETH_P_IP) => net_hdr_pop(s, off, 20),
            _ => return -(ENOTSUPP as i64),
        };
        if let Err(e) = r {
            return e;
        }
        s.protocol = to;
        s.hash = None;
        0
    })
}

fn net_base_len(proto: u16) -> u32 {
    match proto {
        ETH_P_IP => 20,
        ETH_P_IPV6 => 40,
        _ => u32::MAX,
    }
}

/// `bpf_skb_adjust_room(skb, len_diff, mode, flags)`: room (zeroed) or less
/// of it after the MAC header (`BPF_ADJ_ROOM_MAC`) or after the network
/// header (`BPF_ADJ_ROOM_NET`), with the encapsulation flags' effects on the
/// headers and `skb->protocol`. GSO is not modelled (test-run skbs are not GSO).
fn skb_adjust_room(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (diff, mode, flags) = (a[1] as u32 as i32, a[2] as u32, a[3]);
    with_skb(ctx, |s| {
        let r = adjust_room(s, diff, mode, flags);
        if r == 0 && flags & ADJ_NO_CSUM_RESET == 0 {
            reset_checksum_unnecessary(s);
        }
        r
    })
}

/// `__skb_reset_checksum_unnecessary`.
fn reset_checksum_unnecessary(s: &mut SkbState) {
    if let Summed::Unnecessary(_) = s.summed {
        s.summed = Summed::None;
    }
}

/// `bpf_csum_update(skb, csum)`: adds to a `CHECKSUM_COMPLETE` sum and
/// returns it; -ENOTSUPP for other skbs.
fn csum_update(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    with_skb(ctx, |s| match s.summed {
        Summed::Complete(c) => {
            let n = csum_add(c, a[1] as u32);
            s.summed = Summed::Complete(n);
            n as i64
        }
        _ => -(ENOTSUPP as i64),
    })
}

/// `bpf_csum_level(skb, level)`: `BPF_CSUM_LEVEL_QUERY` (0), `_INC`,
/// `_DEC`, `_RESET` on `CHECKSUM_UNNECESSARY`'s level.
fn csum_level(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    with_skb(ctx, |s| {
        match (a[1], s.summed) {
            (0, Summed::Unnecessary(l)) => return l as i64,
            (0, _) => return -(libc::EACCES as i64),
            (1, Summed::Unnecessary(l)) => s.summed = Summed::Unnecessary((l + 1).min(3)),
            (1, Summed::None) => s.summed = Summed::Unnecessary(0),
            (2, Summed::Unnecessary(0)) => s.summed = Summed::None,
            (2, Summed::Unnecessary(l)) => s.summed = Summed::Unnecessary(l - 1),
            (3, _) => reset_checksum_unnecessary(s),
            (1 | 2, _) => {}
            _ => return -(libc::EINVAL as i64),
        }
        0
    })
}

fn adjust_room(s: &mut SkbState, diff: i32, mode: u32, flags: u64) -> i64 {
    const EINVAL: i64 = -(libc::EINVAL as i64);
    const NOTSUPP: i64 = -(ENOTSUPP as i64);
    let abs = diff.unsigned_abs();
    let shrink = diff < 0;
    let mut len_min = net_base_len(s.protocol);
    if flags & !(ADJ_MASK | ADJ_NO_CSUM_RESET) != 0 {
        return EINVAL;
    }
    if abs > 0xfff {
        return -(libc::EFAULT as i64);
    }
    if s.protocol != ETH_P_IP && s.protocol != ETH_P_IPV6 {
        return NOTSUPP;
    }
    let mac_len = s.network.wrapping_sub(s.mac);
    let off = match mode {
        BPF_ADJ_ROOM_NET => mac_len + net_base_len(s.protocol) as u64,
        BPF_ADJ_ROOM_MAC => mac_len,
        _ => return NOTSUPP,
    };
    if flags & ADJ_DECAP_L3_MASK != 0 {
        if !shrink {
            return EINVAL;
        }
        len_min = match flags & ADJ_DECAP_L3_MASK {
            ADJ_DECAP_L3_IPV4 => 20,
            ADJ_DECAP_L3_IPV6 => 40,
            _ => return EINVAL,
        };
    }
    let len_cur = (s.len as i64 - (s.network as i64 - s.data as i64)) as u32;
    if (shrink && (abs >= len_cur || len_cur - abs < len_min))
        || (!shrink && s.len as u64 + abs as u64 > SKB_MAX_LEN as u64)
    {
        return NOTSUPP;
    }
    let abs = abs as u64;
    if shrink {
        if flags & !(ADJ_FIXED_GSO | ADJ_DECAP_L3_MASK | ADJ_NO_CSUM_RESET) != 0 {
            return EINVAL;
        }
        if let Err(e) = net_hdr_pop(s, off, abs) {
            return e;
        }
        if s.protocol == ETH_P_IP && flags & ADJ_DECAP_L3_IPV6 != 0 {
            s.protocol = ETH_P_IPV6;
        } else if s.protocol == ETH_P_IPV6 && flags & ADJ_DECAP_L3_IPV4 != 0 {
            s.protocol = ETH_P_IP;
        }
        return 0;
    }
    let encap = flags & ADJ_ENCAP_L3_MASK != 0;
    let inner_mac_len = (flags >> ADJ_ENCAP_L2_SHIFT) as u8 as u64;
    if encap {
        if flags & ADJ_ENCAP_L3_MASK == ADJ_ENCAP_L3_MASK {
            return EINVAL;
        }
        if flags & ADJ_ENCAP_L4_GRE != 0 && flags & ADJ_ENCAP_L4_UDP != 0 {
            return EINVAL;
        }
        if flags & ADJ_ENCAP_L2_ETH != 0 && inner_mac_len < ETH_HLEN {
            return EINVAL;
        }
        if s.encapsulation {
            return -(libc::EALREADY as i64);
        }
        if inner_mac_len > abs {
            return EINVAL;
        }
    }
    if let Err(e) = net_hdr_push(s, off, abs) {
        return e;
    }
    if encap {
        s.encapsulation = true;
        s.network = s.data + mac_len;
        if flags & (ADJ_ENCAP_L4_GRE | ADJ_ENCAP_L4_UDP) != 0 {
            let nh = if flags & ADJ_ENCAP_L3_IPV6 != 0 {
                40
            } else {
                20
            };
            s.transport = Some(s.data + mac_len + nh);
        }
        if s.protocol == ETH_P_IP && flags & ADJ_ENCAP_L3_IPV6 != 0 {
            s.protocol = ETH_P_IPV6;
        } else if s.protocol == ETH_P_IPV6 && flags & ADJ_ENCAP_L3_IPV4 != 0 {
            s.protocol = ETH_P_IP;
        }
    }
    0
}

fn is_vlan(proto: u16) -> bool {
    proto == ETH_P_8021Q || proto == ETH_P_8021AD
}

/// `__skb_vlan_pop`: takes the tag after the MAC addresses out of the packet.
fn vlan_pop_payload(s: &mut SkbState) -> Result<u16, i64> {
    if s.data != s.mac {
        return Err(-(libc::EINVAL as i64));
    }
    if (s.len as u64) < ETH_HLEN + VLAN_HLEN {
        return Err(-(libc::ENOMEM as i64));
    }
    s.postpull_rcsum_neg(2 * 6, VLAN_HLEN);
    let b = s.bytes(0, ETH_HLEN + VLAN_HLEN);
    let tci = u16::from_be_bytes([b[14], b[15]]);
    let inner = u16::from_be_bytes([b[16], b[17]]);
    b.copy_within(0..12, 4);
    s.protocol = if inner >= 0x600 {
        inner
    } else if s.len >= 20 && s.bytes(18, 2) == [0xff, 0xff] {
        0x0001 // ETH_P_802_3
    } else {
        0x0004 // ETH_P_802_2
    };
    s.pull(VLAN_HLEN);
    s.mac += VLAN_HLEN;
    if (s.network as i64 - s.data as i64) < ETH_HLEN as i64 {
        s.network = s.data + ETH_HLEN;
    }
    Ok(tci)
}

/// `bpf_skb_vlan_push(skb, vlan_proto, vlan_tci)`: the tag goes to the
/// offload fields (`__sk_buff->vlan_*`); a tag already there moves into the
/// packet first. A protocol other than 802.1Q/802.1ad counts as 802.1Q.
fn skb_vlan_push(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let mut proto = u16::from_be(a[1] as u16);
    let tci = a[2] as u16;
    if !is_vlan(proto) {
        proto = ETH_P_8021Q;
    }
    with_skb(ctx, |s| {
        if let Some((p, t)) = s.vlan {
            if s.data != s.mac {
                return -(libc::EINVAL as i64);
            }
            if !s.push(VLAN_HLEN) {
                return -(libc::ENOMEM as i64);
            }
            let b = s.bytes(0, ETH_HLEN + VLAN_HLEN);
            b.copy_within(4..16, 0);
            b[12..14].copy_from_slice(&p.to_be_bytes());
            b[14..16].copy_from_slice(&t.to_be_bytes());
            s.mac = s.data;
            s.protocol = p;
            s.network -= VLAN_HLEN;
            s.postpush_rcsum(2 * 6, VLAN_HLEN, 0);
        }
        s.vlan = Some((proto, tci));
        0
    })
}

/// `bpf_skb_vlan_pop(skb)`: drops the offloaded tag, or the packet's outer
/// tag; a further tag in the packet then moves to the offload fields.
fn skb_vlan_pop(ctx: &mut HelperCtx<'_, '_>, _a: [u64; 5]) -> HResult {
    with_skb(ctx, |s| {
        if s.vlan.is_some() {
            s.vlan = None;
        } else {
            if !is_vlan(s.protocol) {
                return 0;
            }
            if let Err(e) = vlan_pop_payload(s) {
                return e;
            }
        }
        if !is_vlan(s.protocol) {
            return 0;
        }
        let p = s.protocol;
        match vlan_pop_payload(s) {
            Ok(tci) => {
                s.vlan = Some((p, tci));
                0
            }
            Err(e) => e,
        }
    })
}

/// `bpf_skb_ecn_set_ce(skb)`: marks an ECN-capable IPv4 or IPv6 packet
/// Congestion Experienced (IPv4: with the header checksum updated). 1 if the
/// packet is CE afterwards, else 0. Frames whose protocol is a vlan tag in the
/// packet are left alone (bpfvm does not walk in-packet vlan tags here).
fn skb_ecn_set_ce(ctx: &mut HelperCtx<'_, '_>, _a: [u64; 5]) -> HResult {
    with_skb(ctx, |s| {
        let hlen = match s.protocol {
            ETH_P_IP => 20,
            ETH_P_IPV6 => 40,
            _ => return 0,
        };
        if (s.len as u64) < hlen || s.network < s.data || s.network + hlen > s.end() {
            return 0;
        }
        let h = s.bytes(s.network - s.data, hlen);
        if s.protocol == ETH_P_IP {
            let ecn = (h[1].wrapping_add(1) & 3) as u16;
            if ecn & 2 == 0 {
                return (ecn == 0) as i64;
            }
            let add = 0xfffbu16.to_be().wrapping_add(ecn.to_be());
            let check = u16::from_ne_bytes([h[10], h[11]]);
            h[10..12].copy_from_slice(&csum16_add(check, add).to_ne_bytes());
            h[1] |= 3;
            1
        } else {
            // The traffic class straddles bytes 0 and 1; ECN is bits 4-5 of byte 1.
            if (h[1] >> 4) & 3 == 0 {
                return 0;
            }
            let from = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]);
            h[1] |= 0x30;
            let to = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]);
            if let Summed::Complete(c) = s.summed {
                s.summed = Summed::Complete(csum_add(csum_sub(c, from), to));
            }
            1
        }
    })
}

/// bpfvm's flow hash: FNV-1a over the protocol and, for IPv4/IPv6, the
/// addresses, the L4 protocol and (TCP/UDP/SCTP) the ports. It is not the
/// kernel's value (the kernel's `skb_get_hash` seeds its jhash at random
/// per boot), only as stable: the same flow gives the same non-zero hash.
fn flow_hash(s: &SkbState) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut mix = |b: &[u8]| {
        for &x in b {
            h ^= x as u32;
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    mix(&s.protocol.to_be_bytes());
    let nh = s.network.wrapping_sub(s.data);
    let avail = (s.len as u64).saturating_sub(nh);
    if s.network >= s.data {
        let (addrs, l4, ports) = match s.protocol {
            ETH_P_IP if avail >= 20 => {
                let h = s.bytes(nh, 20);
                let ihl = (h[0] & 0xf) as u64 * 4;
                (h[12..20].to_vec(), h[9], nh + ihl)
            }
            ETH_P_IPV6 if avail >= 40 => {
                let h = s.bytes(nh, 40);
                (h[8..40].to_vec(), h[6], nh + 40)
            }
            _ => (Vec::new(), 0, 0),
        };
        mix(&addrs);
        mix(&[l4]);
        if matches!(l4, 6 | 17 | 132) && ports + 4 <= s.len as u64 {
            mix(s.bytes(ports, 4));
        }
    }
    h.max(1)
}

/// `bpf_get_hash_recalc(skb)`: `skb->hash`, computed if it is not valid.
/// The value is bpfvm's own (see [`flow_hash`]).
fn get_hash_recalc(ctx: &mut HelperCtx<'_, '_>, _a: [u64; 5]) -> HResult {
    with_skb(ctx, |s| {
        let h = s.hash.unwrap_or_else(|| flow_hash(s));
        s.hash = Some(h);
        h as i64
    })
}

/// `bpf_set_hash_invalid(skb)`: the next `bpf_get_hash_recalc` computes it.
fn set_hash_invalid(ctx: &mut HelperCtx<'_, '_>, _a: [u64; 5]) -> HResult {
    with_skb(ctx, |s| {
        s.hash = None;
        0
    })
}

/// Whether the host has a network interface with this index (bpfvm's
/// programs see the host's interfaces, as the datapath attaches to them).
fn host_ifindex_exists(ifindex: u32) -> bool {
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: name has IF_NAMESIZE bytes as if_indextoname requires.
    ifindex != 0 && !unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr()) }.is_null()
}

/// `bpf_clone_redirect(skb, ifindex, flags)`: a copy of the packet goes out
/// of (or, with `BPF_F_INGRESS`, into) the interface; the program's packet
/// stays. bpfvm checks the arguments as the kernel does (flags, an existing
/// interface of the host, a MAC header before the network header) and
/// returns the kernel's result for a delivered copy, 0; it sends nothing.
fn clone_redirect(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    const BPF_F_INGRESS: u64 = 1;
    let (ifindex, flags) = (a[1] as u32, a[2]);
    if flags & !BPF_F_INGRESS != 0 {
        return err(libc::EINVAL);
    }
    if !host_ifindex_exists(ifindex) {
        return err(libc::EINVAL);
    }
    with_skb(ctx, |s| {
        if s.mac >= s.network || s.len == 0 {
            return -(libc::ERANGE as i64);
        }
        0
    })
}

/// `bpf_redirect(ifindex, flags)`. XDP: `XDP_REDIRECT`, or `XDP_ABORTED` for
/// any flag. tc: `TC_ACT_REDIRECT`, or `TC_ACT_SHOT` for a flag other than
/// `BPF_F_INGRESS`. The target is the run's [`Redirect`].
fn redirect(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (ifindex, flags) = (a[0] as u32, a[1]);
    let e = ctx.env::<RunEnv>()?;
    let tc = e.skb.is_some();
    let refused = if tc { flags & !1 != 0 } else { flags != 0 };
    if refused {
        return ret(if tc { TC_ACT_SHOT } else { 0 });
    }
    e.redirect = Some(Redirect::Ifindex { ifindex, flags });
    ret(if tc { TC_ACT_REDIRECT } else { 4 })
}

const TC_ACT_SHOT: i64 = 2;
const TC_ACT_REDIRECT: i64 = 7;
/// The kernel's internal redirect flags (`BPF_F_NEIGH`, `BPF_F_PEER`), kept in
/// the run's [`Redirect`] to tell the helpers apart.
const BPF_F_NEIGH: u64 = 1 << 16;
const BPF_F_PEER: u64 = 1 << 17;

/// `bpf_redirect_peer(ifindex, flags)`: `TC_ACT_REDIRECT`, `TC_ACT_SHOT` for
/// any flag.
fn redirect_peer(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    if a[1] != 0 {
        return ret(TC_ACT_SHOT);
    }
    ctx.env::<RunEnv>()?.redirect = Some(Redirect::Ifindex {
        ifindex: a[0] as u32,
        flags: BPF_F_PEER,
    });
    ret(TC_ACT_REDIRECT)
}

/// `bpf_redirect_neigh(ifindex, params, plen, flags)`: `TC_ACT_REDIRECT`;
/// `TC_ACT_SHOT` for any flag or a `plen` short of `struct bpf_redir_neigh`.
fn redirect_neigh(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let plen = a[2] as u32 as i32;
    if (plen != 0 && plen < 20) || a[3] != 0 {
        return ret(TC_ACT_SHOT);
    }
    ctx.env::<RunEnv>()?.redirect = Some(Redirect::Ifindex {
        ifindex: a[0] as u32,
        flags: BPF_F_NEIGH,
    });
    ret(TC_ACT_REDIRECT)
}

/// The XDP packet `[data, data_end)` of the run.
fn xdp_packet(ctx: &mut HelperCtx<'_, '_>) -> Result<(u64, u64), HelperError> {
    let e = ctx.env::<RunEnv>()?;
    let Some(x) = e.xdp.as_ref() else {
        return Err(HelperError::Other(
            "the helper needs an xdp_buff and the run has none".into(),
        ));
    };
    // SAFETY: ctx points at the run's xdp_md, alive for the whole run.
    let md = unsafe { &*x.ctx };
    Ok((md.data as u64, md.data_end as u64))
}

/// `bpf_xdp_get_buff_len(xdp)`: bpfvm's frames are one buffer (no frags).
fn xdp_get_buff_len(ctx: &mut HelperCtx<'_, '_>, _a: [u64; 5]) -> HResult {
    let (d, e) = xdp_packet(ctx)?;
    ret((e - d) as i64)
}

/// The packet address of `[offset, offset + len)` for the XDP byte helpers:
/// -EFAULT past 0xffff, -EINVAL past the packet (`bpf_xdp_pointer`).
fn xdp_range(
    ctx: &mut HelperCtx<'_, '_>,
    offset: u32,
    len: u32,
) -> Result<Result<u64, i32>, HelperError> {
    let (d, e) = xdp_packet(ctx)?;
    if offset > 0xffff || len > 0xffff {
        return Ok(Err(libc::EFAULT));
    }
    if offset as u64 + len as u64 > e - d {
        return Ok(Err(libc::EINVAL));
    }
    Ok(Ok(d + offset as u64))
}

/// `bpf_xdp_load_bytes(xdp, offset, buf, len)`.
fn xdp_load_bytes(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (offset, buf, len) = (a[1] as u32, a[2], a[3] as u32);
    ctx.check_write(buf, len as u64)?;
    match xdp_range(ctx, offset, len)? {
        Ok(p) => {
            let b = ctx.read_bytes(p, len as usize)?;
            ctx.write_bytes(buf, &b)?;
            ret(0)
        }
        Err(e) => err(e),
    }
}

/// `bpf_xdp_store_bytes(xdp, offset, buf, len)`.
fn xdp_store_bytes(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (offset, buf, len) = (a[1] as u32, a[2], a[3] as u32);
    let b = ctx.read_bytes(buf, len as usize)?;
    match xdp_range(ctx, offset, len)? {
        Ok(p) => {
            ctx.write_bytes(p, &b)?;
            ret(0)
        }
        Err(e) => err(e),
    }
}

/// `bpf_get_ns_current_pid_tgid(dev, ino, nsdata, size)`: the pid and tgid
/// in the pid namespace `dev`/`ino` names, which must be the process's own
/// (`/proc/self/ns/pid`: `st_dev`, `st_ino`); else -EINVAL with `*nsdata`
/// zeroed, as is a `size` other than 8.
fn get_ns_current_pid_tgid(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (dev, ino, out, size) = (a[0], a[1], a[2], a[3] as u32);
    ctx.check_write(out, size as u64)?;
    let (pid, tgid) = {
        let e = ctx.env::<RunEnv>()?;
        (e.pid, e.tgid)
    };
    let ok = size == 8
        && dev <= u32::MAX as u64
        && own_pidns().is_some_and(|(d, i)| d == dev && i == ino);
    if !ok {
        ctx.write_bytes(out, &vec![0u8; size as usize])?;
        return err(libc::EINVAL);
    }
    let mut v = pid.to_le_bytes().to_vec();
    v.extend_from_slice(&tgid.to_le_bytes());
    ctx.write_bytes(out, &v)?;
    ret(0)
}

/// `st_dev` and `st_ino` of `/proc/self/ns/pid`, read once.
fn own_pidns() -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    static NS: std::sync::OnceLock<Option<(u64, u64)>> = std::sync::OnceLock::new();
    *NS.get_or_init(|| {
        std::fs::metadata("/proc/self/ns/pid")
            .ok()
            .map(|m| (m.dev(), m.ino()))
    })
}

/// `bpf_fib_lookup(ctx, params, plen, flags)` over the runtime's routing
/// tables (see [`fib`]). A tc program's packet is then checked against the
/// output device's MTU when `tot_len` was 0 (`is_skb_forwardable`).
fn fib_lookup(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (addr, plen, flags) = (a[1], a[2] as u32, a[3] as u32);
    let n = (plen as usize).min(fib::PARAMS_SIZE);
    let mut p = ctx.read_bytes(addr, n)?;
    p.resize(fib::PARAMS_SIZE, 0);
    let (table, xdp, skb_len) = {
        let e = ctx.env::<RunEnv>()?;
        (e.rt.fib(), e.xdp.is_some(), e.skb.as_ref().map(|s| s.len))
    };
    let r = fib::lookup(&table, &mut p, plen, flags, xdp);
    let mut ret_val = r.ret;
    if let Some(mtu) = r.dev_mtu {
        // The device's hard header and one vlan tag on top of its MTU.
        if skb_len.is_some_and(|l| l as u64 > mtu as u64 + ETH_HLEN + VLAN_HLEN) {
            ret_val = 8; // BPF_FIB_LKUP_RET_FRAG_NEEDED
        }
        p[6..8].copy_from_slice(&(mtu as u16).to_ne_bytes());
    }
    // Only what the kernel changes in place differs from what was read.
    ctx.write_bytes(addr, &p[..n])?;
    ret(ret_val)
}

impl crate::Runtime {
    /// Gives `bpf_fib_lookup` its routing tables (replacing the ones it had;
    /// a new runtime has none).
    pub fn set_fib(&self, fib: fib::Fib) {
        *self.k.fib.write().unwrap_or_else(|e| e.into_inner()) = std::sync::Arc::new(fib);
    }

    /// The routing tables `bpf_fib_lookup` reads.
    pub fn fib(&self) -> std::sync::Arc<fib::Fib> {
        self.k.fib.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// `bpf_skb_change_type(skb, pkt_type)`: between `PACKET_HOST` and
/// `PACKET_OTHERHOST` (0..=3) only, else -EINVAL.
fn skb_change_type(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let to = a[1] as u32;
    with_skb(ctx, |s| {
        if s.pkt_type > 3 || to > 3 {
            return -(libc::EINVAL as i64);
        }
        s.pkt_type = to;
        0
    })
}

/// `bpf_set_hash(skb, hash)`: a software L4 hash, what `bpf_get_hash_recalc`
/// and `__sk_buff->hash` then give.
fn set_hash(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    with_skb(ctx, |s| {
        s.hash = Some(a[1] as u32);
        0
    })
}

/// `bpf_skb_load_bytes_relative(skb, offset, to, len, start_header)`: from
/// the MAC (`BPF_HDR_START_MAC`, 0) or network (`BPF_HDR_START_NET`, 1)
/// header; -EFAULT (and `to` zeroed) past the packet's end, for an offset
/// past 0xffff or another start.
fn skb_load_bytes_relative(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (offset, to, len, start) = (a[1] as u32 as u64, a[2], a[3] as u32 as u64, a[4] as u32);
    ctx.check_write(to, len)?;
    let src = {
        let e = ctx.env::<RunEnv>()?;
        let Some(s) = e.skb.as_ref() else {
            return Err(HelperError::Other(
                "the helper needs an sk_buff and the run has none".into(),
            ));
        };
        let base = match start {
            0 => Some(s.mac),
            1 => Some(s.network),
            _ => None,
        };
        base.filter(|_| offset <= 0xffff)
            .map(|b| b + offset)
            .filter(|p| p + len <= s.end())
    };
    let bytes = match src {
        // SAFETY: [p, p + len) lies between the skb's headers and its end,
        // inside the run's packet buffer.
        Some(p) => unsafe { std::slice::from_raw_parts(p as *const u8, len as usize) }.to_vec(),
        None => {
            ctx.write_bytes(to, &vec![0u8; len as usize])?;
            return err(libc::EFAULT);
        }
    };
    ctx.write_bytes(to, &bytes)?;
    ret(0)
}

/// A host interface's MTU and hard header length (`lo` for ifindex 1),
/// from sysfs.
fn host_dev_mtu(ifindex: u32) -> Option<(u32, u32)> {
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: name has IF_NAMESIZE bytes as if_indextoname requires.
    if ifindex == 0 || unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr()) }.is_null() {
        return None;
    }
    // SAFETY: if_indextoname wrote a NUL-terminated name.
    let name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_string_lossy();
    let read = |f: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{name}/{f}"))
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
    };
    // Ethernet (1) and loopback (772) devices have a 14-byte hard header.
    let hh = match read("type") {
        Some(1 | 772) => 14,
        _ => 0,
    };
    Some((read("mtu")?, hh))
}

/// `bpf_check_mtu(ctx, ifindex, &mtu_len, len_diff, flags)`: whether the
/// packet (or `*mtu_len`, an L3 length, when set) grown by `len_diff` fits
/// the MTU of the interface (0: the one the packet came in on, loopback in
/// test runs); `*mtu_len` becomes that MTU. tc takes `BPF_MTU_CHK_SEGS`
/// (GSO is not modelled), XDP no flag.
fn check_mtu(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    const BPF_MTU_CHK_SEGS: u64 = 1;
    const FRAG_NEEDED: i64 = 1;
    let (ifindex, mtu_addr, len_diff, flags) = (a[1] as u32, a[2], a[3] as u32 as i32, a[4]);
    let mtu_in = u32::from_le_bytes(ctx.read_bytes(mtu_addr, 4)?.try_into().unwrap_or([0; 4]));
    let pkt_len = {
        let e = ctx.env::<RunEnv>()?;
        match (&e.skb, &e.xdp) {
            (Some(s), _) => Some(s.len as i64),
            // SAFETY: ctx points at the run's xdp_md, alive for the whole run.
            (None, Some(x)) => Some(unsafe { (*x.ctx).data_end as i64 - (*x.ctx).data as i64 }),
            _ => None,
        }
    };
    let skb = ctx.env::<RunEnv>()?.skb.is_some();
    let mut mtu = 0u32;
    let r = (|| {
        let bad_flags = if skb {
            flags & !BPF_MTU_CHK_SEGS != 0
                || (flags & BPF_MTU_CHK_SEGS != 0 && (len_diff != 0 || mtu_in != 0))
        } else {
            flags != 0
        };
        if bad_flags {
            return -(libc::EINVAL as i64);
        }
        let Some((m, hh)) = host_dev_mtu(if ifindex == 0 { 1 } else { ifindex }) else {
            return -(libc::ENODEV as i64);
        };
        mtu = m;
        let len = if mtu_in != 0 {
            mtu_in as i64 + hh as i64
        } else {
            pkt_len.unwrap_or(0)
        };
        // The kernel sums in an int.
        let len = (len as i32).wrapping_add(len_diff);
        if len > (m as i32).wrapping_add(hh as i32) {
            FRAG_NEEDED
        } else {
            0
        }
    })();
    // Linux 6.18 leaves *mtu_len alone on an error (bad flags, no device).
    if r >= 0 {
        ctx.write_bytes(mtu_addr, &mtu.to_le_bytes())?;
    }
    ret(r)
}

/// `bpf_skb_set_tstamp(skb, tstamp, tstamp_type)`: `BPF_SKB_CLOCK_REALTIME`
/// (0), `_MONOTONIC` (1) or `_TAI` (2; these two not with 0) into
/// `__sk_buff->tstamp` and `tstamp_type`; IPv4 and IPv6 packets only
/// (-EOPNOTSUPP).
fn skb_set_tstamp(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5]) -> HResult {
    let (tstamp, kind) = (a[1], a[2] as u32);
    with_skb(ctx, |s| {
        if s.protocol != ETH_P_IP && s.protocol != ETH_P_IPV6 {
            return -(libc::EOPNOTSUPP as i64);
        }
        if kind > 2 || (kind != 0 && tstamp == 0) {
            return -(libc::EINVAL as i64);
        }
        s.tstamp = Some((tstamp, kind as u8));
        0
    })
}

/// The cgroup v2 path of this process (`0::PATH` in /proc/self/cgroup) and
/// the cgroup2 mount point.
fn own_cgroup() -> Option<(String, String)> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cg.lines().find_map(|l| l.strip_prefix("0::"))?.to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mnt = mounts.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        post.starts_with("cgroup2 ")
            .then(|| pre.split(' ').nth(4).map(str::to_string))
            .flatten()
    })?;
    Some((path, mnt))
}

/// The id (the cgroup2 inode) of this process's cgroup, or of its ancestor
/// at `level` (0: the root, whose id is 1); 0 past the cgroup's own level.
pub fn current_cgroup_id(level: Option<u32>) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Some((path, mnt)) = own_cgroup() else {
        return 0;
    };
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let take = match level {
        Some(l) if l as usize > parts.len() => return 0,
        Some(l) => l as usize,
        None => parts.len(),
    };
    if take == 0 {
        return 1;
    }
    let p = format!("{mnt}/{}", parts[..take].join("/"));
    std::fs::metadata(p).map_or(0, |m| m.ino())
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `bpf_skb_get_tunnel_key(skb, key, size, flags)` and
/// `bpf_skb_get_tunnel_opt(skb, opt, size)`: bpfvm's skbs carry no tunnel
/// metadata, so the buffer is zeroed and the result is the kernel's for
/// that case: -EINVAL for the key, -ENOENT for the options.
fn get_tunnel(ctx: &mut HelperCtx<'_, '_>, a: [u64; 5], errno: i32) -> HResult {
    let (to, size) = (a[1], a[2] as u32 as usize);
    ctx.write_bytes(to, &vec![0u8; size])?;
    err(errno)
}

/// `bpf_get_socket_cookie(skb)`: the cookie of the socket a test run's skb
/// carries (the kernel gives it a fresh socket each run): one value per run,
/// never 0, from a counter of bpfvm's own.
fn get_socket_cookie(ctx: &mut HelperCtx<'_, '_>, _a: [u64; 5]) -> HResult {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    with_skb(ctx, |s| {
        let c = *s
            .sk_cookie
            .get_or_insert_with(|| NEXT.fetch_add(1, Ordering::Relaxed));
        c as i64
    })
}

/// Registers the helpers of this module in `t`.
pub fn register(t: &mut HelperTable) {
    let n = |id: u32| bpfvm_isa::helpers::helper_name(id as i64).unwrap_or("unknown");
    t.register(9, n(9), skb_store_bytes)
        .register(10, n(10), l3_csum_replace)
        .register(11, n(11), l4_csum_replace)
        .register(13, n(13), clone_redirect)
        .register(18, n(18), skb_vlan_push)
        .register(23, n(23), redirect)
        .register(19, n(19), skb_vlan_pop)
        .register(31, n(31), skb_change_proto)
        .register(34, n(34), get_hash_recalc)
        .register(40, n(40), csum_update)
        .register(135, n(135), csum_level)
        // The run's stand-in task, the one bpf_get_current_task_btf gives.
        .register(35, n(35), crate::task::get_current_task)
        .register(38, n(38), skb_change_tail)
        .register(39, n(39), skb_pull_data)
        .register(41, n(41), set_hash_invalid)
        .register(43, n(43), skb_change_head)
        .register(50, n(50), skb_adjust_room)
        .register(69, n(69), fib_lookup)
        .register(97, n(97), skb_ecn_set_ce)
        .register(152, n(152), redirect_neigh)
        .register(155, n(155), redirect_peer)
        .register(120, n(120), Leaves(get_ns_current_pid_tgid))
        .register(188, n(188), Leaves(xdp_get_buff_len))
        .register(189, n(189), Leaves(xdp_load_bytes))
        .register(190, n(190), xdp_store_bytes)
        .register(
            17,
            n(17),
            Leaves(|_: &mut HelperCtx<'_, '_>, _: [u64; 5]| ret(0)),
        )
        .register(20, n(20), |c: &mut HelperCtx<'_, '_>, a| {
            get_tunnel(c, a, libc::EINVAL)
        })
        .register(
            24,
            n(24),
            Leaves(|_: &mut HelperCtx<'_, '_>, _: [u64; 5]| ret(0)),
        )
        .register(29, n(29), |c: &mut HelperCtx<'_, '_>, a| {
            get_tunnel(c, a, libc::ENOENT)
        })
        .register(32, n(32), skb_change_type)
        .register(46, n(46), get_socket_cookie)
        // The test run's socket has no file: uid 0 of its namespace.
        .register(
            47,
            n(47),
            Leaves(|_: &mut HelperCtx<'_, '_>, _: [u64; 5]| ret(0)),
        )
        // No skb of bpfvm went through IPsec: no xfrm state to give.
        .register(66, n(66), |c: &mut HelperCtx<'_, '_>, a: [u64; 5]| {
            let (to, size) = (a[2], a[3] as u32 as usize);
            c.write_bytes(to, &vec![0u8; size])?;
            err(libc::EINVAL)
        })
        .register(48, n(48), set_hash)
        .register(68, n(68), Leaves(skb_load_bytes_relative))
        .register(
            79,
            n(79),
            Leaves(|_: &mut HelperCtx<'_, '_>, _: [u64; 5]| ret(current_cgroup_id(None) as i64)),
        )
        .register(
            80,
            n(80),
            Leaves(|_: &mut HelperCtx<'_, '_>, _: [u64; 5]| ret(current_cgroup_id(None) as i64)),
        )
        .register(
            83,
            n(83),
            Leaves(|_: &mut HelperCtx<'_, '_>, a: [u64; 5]| {
                ret(current_cgroup_id(Some(a[1] as u32)) as i64)
            }),
        )
        .register(
            123,
            n(123),
            Leaves(|_: &mut HelperCtx<'_, '_>, a: [u64; 5]| {
                ret(current_cgroup_id(Some(a[0] as u32)) as i64)
            }),
        )
        .register(
            151,
            n(151),
            Leaves(|_: &mut HelperCtx<'_, '_>, _: [u64; 5]| ret(0)),
        )
        .register(163, n(163), check_mtu)
        .register(192, n(192), skb_set_tstamp)
        .register(
            208,
            n(208),
            Leaves(|_: &mut HelperCtx<'_, '_>, _: [u64; 5]| ret(clock_ns(libc::CLOCK_TAI) as i64)),
        );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_checksums_equal_a_full_recompute() {
        // An IPv4 header with its checksum; the source address changes.
        let mut h: [u8; 20] = [
            0x45, 0, 0, 0x54, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let full = |h: &[u8]| {
            let mut s = 0u32;
            for c in h.chunks(2) {
                s += u16::from_be_bytes([c[0], c[1]]) as u32;
            }
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            !(s as u16)
        };
        let c = full(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        let from = u32::from_ne_bytes([10, 0, 0, 1]);
        let to = u32::from_ne_bytes([192, 168, 1, 77]);
        h[12..16].copy_from_slice(&to.to_ne_bytes());
        let old = u16::from_ne_bytes([h[10], h[11]]);
        let new = csum_replace4(old, from, to);
        h[10..12].copy_from_slice(&new.to_ne_bytes());
        let mut z = h;
        z[10..12].fill(0);
        assert_eq!(new.to_ne_bytes(), full(&z).to_be_bytes());
        // The 16-bit form agrees on one half-word change.
        let (f2, t2) = (u16::from_ne_bytes([0, 0x54]), u16::from_ne_bytes([0, 0x60]));
        let a = csum_replace2(new, f2, t2);
        let b = csum_replace4(new, f2 as u32, t2 as u32);
        assert_eq!(a, b);
    }
}
