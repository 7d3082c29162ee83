//! Program types (`enum bpf_prog_type`) and what depends on them: the
//! context layouts and their access rules (`is_valid_access` per type), which
//! types may touch packet data directly, and the range a program's return
//! value must fall in (`check_return_code`).
//!
//! Offsets are the UAPI structs' (`struct __sk_buff`, `struct bpf_sock`,
//! `struct bpf_sock_addr`, ...) as the program sees them.

use crate::reg::RegType;

// The kernel's numbers (program, attach and map types, flags) are written
// once, in bpfvm-isa; the rules below match on them.
pub use bpfvm_isa::uapi::*;

/// What a context access gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtxField {
    Scalar,
    Ptr(RegType),
    /// A pointer that may be NULL (`PTR_TO_SOCKET_OR_NULL`, `skb->sk`).
    PtrOrNull(RegType),
    /// An access the kernel allows to something bpfvm's verifier does not model
    /// yet (a socket or BTF-typed kernel object behind a pointer field, memory
    /// before a tracepoint's record): refused, naming it.
    Unmodelled(&'static str),
    /// A trusted `PTR_TO_BTF_ID` to the named kernel struct (netfilter's
    /// `state` and `skb`): loads through it need the kernel's types.
    TrustedBtf(&'static str),
}

/// One context access, as `is_valid_access` sees it.
#[derive(Clone, Copy, Debug)]
pub struct CtxAccess {
    pub prog_type: u32,
    pub attach: u32,
    pub off: i32,
    pub size: i32,
    pub write: bool,
    /// A sign-extending load (`BPF_MEMSX`).
    pub ldsx: bool,
    /// CAP_BPF (cgroup_skb packet pointers and `tstamp` writes need it).
    pub privileged: bool,
}

// `struct __sk_buff` offsets.
const SKB_MARK: i32 = 8;
const SKB_QUEUE_MAPPING: i32 = 12;
const SKB_PRIORITY: i32 = 32;
const SKB_TC_INDEX: i32 = 44;
const SKB_CB: i32 = 48;
const SKB_CB_END: i32 = 68;
const SKB_TC_CLASSID: i32 = 72;
const SKB_DATA: i32 = 76;
const SKB_DATA_END: i32 = 80;
const SKB_FAMILY: i32 = 88;
const SKB_REMOTE_IP4: i32 = 92;
const SKB_LOCAL_PORT_END: i32 = 140;
const SKB_DATA_META: i32 = 140;
const SKB_FLOW_KEYS: i32 = 144;
const SKB_TSTAMP: i32 = 152;
const SKB_WIRE_LEN: i32 = 160;
const SKB_SK: i32 = 168;
const SKB_TSTAMP_TYPE: i32 = 180;
const SKB_HWTSTAMP: i32 = 184;
const SKB_SIZE: i32 = 192;

/// `sizeof(struct bpf_flow_keys)`: what a flow_keys pointer may reach.
pub const FLOW_KEYS_SIZE: i32 = 56;

/// `off` lies in the field `[start, start + len)` (`bpf_ctx_range`).
fn within(off: i32, start: i32, len: i32) -> bool {
    off >= start && off < start + len
}

/// `bpf_ctx_narrow_access_ok`: a load of a power-of-two part of a field.
fn narrow_ok(size: i32, field: i32) -> bool {
    size <= field && size & (size - 1) == 0
}

/// `bpf_ctx_wide_access_ok`: an aligned 8-byte access inside an array of u32s.
fn wide_ok(off: i32, size: i32, start: i32, len: i32) -> bool {
    size == 8 && off >= start && off + 8 <= start + len && off % 8 == 0
}

/// `bpf_skb_is_valid_access`: the checks every `__sk_buff` type shares.
fn skb_common(a: &CtxAccess) -> Option<CtxField> {
    let (off, size, write) = (a.off, a.size, a.write);
    if !(0..SKB_SIZE).contains(&off) || off % size != 0 {
        return None;
    }
    let ok = if within(off, SKB_CB, SKB_CB_END - SKB_CB) {
        off + size <= SKB_CB_END
    } else if within(off, SKB_DATA, 8) || within(off, SKB_DATA_META, 4) {
        !a.ldsx && size == 4
    } else if within(off, SKB_REMOTE_IP4, 40) {
        // remote_ip4, local_ip4, remote_ip6[4], local_ip6[4]
        size == 4
    } else if within(off, SKB_FLOW_KEYS, 8) {
        false
    } else if within(off, SKB_HWTSTAMP, 8) {
        !write && size == 8
    } else if within(off, SKB_TSTAMP, 8) {
        size == 8
    } else if within(off, SKB_SK, 8) {
        return (!write && size == 8).then_some(CtxField::PtrOrNull(RegType::SockCommon));
    } else if (SKB_TSTAMP_TYPE..SKB_HWTSTAMP).contains(&off) {
        // tstamp_type is the tc types' own; the rest is padding.
        false
    } else if write {
        size == 4
    } else {
        narrow_ok(size, 4)
    };
    ok.then_some(CtxField::Scalar)
}

/// The packet pointers `__sk_buff` gives, per field.
fn skb_ptr(off: i32, meta: bool) -> Option<RegType> {
    if within(off, SKB_DATA, 4) {
        Some(RegType::Packet)
    } else if within(off, SKB_DATA_END, 4) {
        Some(RegType::PacketEnd)
    } else if meta && within(off, SKB_DATA_META, 4) {
        Some(RegType::PacketMeta)
    } else {
        None
    }
}

/// `skb_common` with the packet pointer types filled in.
fn skb_with_ptrs(a: &CtxAccess, meta: bool) -> Option<CtxField> {
    let f = skb_common(a)?;
    Some(match (f, skb_ptr(a.off, meta)) {
        (CtxField::Scalar, Some(t)) => CtxField::Ptr(t),
        (f, _) => f,
    })
}

fn socket_filter(a: &CtxAccess) -> Option<CtxField> {
    let off = a.off;
    let banned = within(off, SKB_TC_CLASSID, 4)
        || within(off, SKB_DATA, 8)
        || within(off, SKB_DATA_META, 4)
        || (SKB_FAMILY..SKB_LOCAL_PORT_END).contains(&off)
        || within(off, SKB_TSTAMP, 8)
        || within(off, SKB_WIRE_LEN, 4)
        || within(off, SKB_HWTSTAMP, 8);
    if banned || (a.write && !within(off, SKB_CB, SKB_CB_END - SKB_CB)) {
        return None;
    }
    skb_common(a)
}

fn cgroup_skb(a: &CtxAccess) -> Option<CtxField> {
    let off = a.off;
    if within(off, SKB_TC_CLASSID, 4)
        || within(off, SKB_DATA_META, 4)
        || within(off, SKB_WIRE_LEN, 4)
    {
        return None;
    }
    if within(off, SKB_DATA, 8) && !a.privileged {
        return None;
    }
    if a.write {
        let ok = within(off, SKB_MARK, 4)
            || within(off, SKB_PRIORITY, 4)
            || within(off, SKB_CB, SKB_CB_END - SKB_CB)
            || (within(off, SKB_TSTAMP, 8) && a.privileged);
        if !ok {
            return None;
        }
    }
    skb_with_ptrs(a, false)
}

fn tc(a: &CtxAccess) -> Option<CtxField> {
    let off = a.off;
    if a.write {
        let ok = within(off, SKB_MARK, 4)
            || within(off, SKB_TC_INDEX, 4)
            || within(off, SKB_PRIORITY, 4)
            || within(off, SKB_TC_CLASSID, 4)
            || within(off, SKB_CB, SKB_CB_END - SKB_CB)
            || within(off, SKB_TSTAMP, 8)
            || within(off, SKB_QUEUE_MAPPING, 4);
        if !ok {
            return None;
        }
    }
    if (SKB_FAMILY..SKB_LOCAL_PORT_END).contains(&off) {
        return None;
    }
    if off == SKB_TSTAMP_TYPE {
        return (a.size == 1).then_some(CtxField::Scalar);
    }
    skb_with_ptrs(a, true)
}

fn lwt(a: &CtxAccess) -> Option<CtxField> {
    let off = a.off;
    let banned = within(off, SKB_TC_CLASSID, 4)
        || (SKB_FAMILY..SKB_LOCAL_PORT_END).contains(&off)
        || within(off, SKB_DATA_META, 4)
        || within(off, SKB_TSTAMP, 8)
        || within(off, SKB_WIRE_LEN, 4)
        || within(off, SKB_HWTSTAMP, 8);
    if banned {
        return None;
    }
    if a.write {
        let ok = within(off, SKB_MARK, 4)
            || within(off, SKB_PRIORITY, 4)
            || within(off, SKB_CB, SKB_CB_END - SKB_CB);
        if !ok {
            return None;
        }
    }
    skb_with_ptrs(a, false)
}

fn sk_skb(a: &CtxAccess) -> Option<CtxField> {
    let off = a.off;
    let banned = within(off, SKB_TC_CLASSID, 4)
        || within(off, SKB_DATA_META, 4)
        || within(off, SKB_TSTAMP, 8)
        || within(off, SKB_WIRE_LEN, 4)
        || within(off, SKB_HWTSTAMP, 8)
        || within(off, SKB_MARK, 4);
    if banned {
        return None;
    }
    if a.write && !(within(off, SKB_TC_INDEX, 4) || within(off, SKB_PRIORITY, 4)) {
        return None;
    }
    skb_with_ptrs(a, false)
}

fn flow_dissector(a: &CtxAccess) -> Option<CtxField> {
    let (off, size) = (a.off, a.size);
    if !(0..SKB_SIZE).contains(&off) || off % size != 0 || a.write {
        return None;
    }
    if within(off, SKB_DATA, 4) || within(off, SKB_DATA_END, 4) {
        return (!a.ldsx && size == 4)
            .then(|| CtxField::Ptr(skb_ptr(off, false).unwrap_or(RegType::Packet)));
    }
    if within(off, SKB_FLOW_KEYS, 8) {
        return (size == 8).then_some(CtxField::Ptr(RegType::FlowKeys));
    }
    None
}

/// `bpf_sock_is_valid_access` (`struct bpf_sock`, 80 bytes).
fn bpf_sock(off: i32, size: i32) -> bool {
    if !(0..80).contains(&off) || off % size != 0 {
        return false;
    }
    match off {
        // state, family, type, protocol, src_port, rx_queue_mapping
        72 | 4 | 8 | 12 | 44 | 76 => narrow_ok(size, 4),
        // src_ip4, src_ip6[4], dst_ip4, dst_ip6[4]
        24..=43 | 52..=71 => narrow_ok(size, 4),
        // dst_port is a __be16 the kernel also lets 4-byte loads read.
        48..=49 => narrow_ok(size, if size == 4 { 4 } else { 2 }),
        50..=51 => false,
        _ => size == 4,
    }
}

/// `sock_filter_is_valid_access`: cgroup/sock programs see `struct bpf_sock`,
/// with per-attach-type limits.
fn cgroup_sock(a: &CtxAccess) -> Option<CtxField> {
    if !bpf_sock(a.off, a.size) {
        return None;
    }
    let ok = match a.off {
        // bound_dev_if, mark, priority
        0 | 16 | 20 => matches!(
            a.attach,
            BPF_CGROUP_INET_SOCK_CREATE | BPF_CGROUP_INET_SOCK_RELEASE
        ),
        24..=27 => a.attach == BPF_CGROUP_INET4_POST_BIND && !a.write,
        28..=43 => a.attach == BPF_CGROUP_INET6_POST_BIND && !a.write,
        44..=47 => {
            matches!(
                a.attach,
                BPF_CGROUP_INET4_POST_BIND | BPF_CGROUP_INET6_POST_BIND
            ) && !a.write
        }
        _ => !a.write,
    };
    ok.then_some(CtxField::Scalar)
}

/// `struct bpf_sock_addr` (72 bytes).
fn sock_addr(a: &CtxAccess) -> Option<CtxField> {
    let (off, size, at) = (a.off, a.size, a.attach);
    if !(0..72).contains(&off) || off % size != 0 {
        return None;
    }
    let family_ok = match off {
        4..=7 => matches!(
            at,
            BPF_CGROUP_INET4_BIND
                | BPF_CGROUP_INET4_CONNECT
                | BPF_CGROUP_INET4_GETPEERNAME
                | BPF_CGROUP_INET4_GETSOCKNAME
                | BPF_CGROUP_UDP4_SENDMSG
                | BPF_CGROUP_UDP4_RECVMSG
        ),
        8..=23 => matches!(
            at,
            BPF_CGROUP_INET6_BIND
                | BPF_CGROUP_INET6_CONNECT
                | BPF_CGROUP_INET6_GETPEERNAME
                | BPF_CGROUP_INET6_GETSOCKNAME
                | BPF_CGROUP_UDP6_SENDMSG
                | BPF_CGROUP_UDP6_RECVMSG
        ),
        40..=43 => at == BPF_CGROUP_UDP4_SENDMSG,
        44..=59 => at == BPF_CGROUP_UDP6_SENDMSG,
        _ => true,
    };
    if !family_ok {
        return None;
    }
    match off {
        // user_ip4, user_ip6, user_port, msg_src_ip4, msg_src_ip6
        4..=27 | 40..=59 => {
            let wide = wide_ok(off, size, 8, 16) || wide_ok(off, size, 44, 16);
            let ok = wide
                || if a.write {
                    size == 4
                } else {
                    narrow_ok(size, 4)
                };
            ok.then_some(CtxField::Scalar)
        }
        64..=71 => (!a.write && size == 8).then_some(CtxField::Ptr(RegType::Sock)),
        // user_family, family, type, protocol
        0..=3 | 28..=39 => (!a.write && size == 4).then_some(CtxField::Scalar),
        _ => None,
    }
}

/// `struct bpf_sock_ops` (224 bytes).
fn sock_ops(a: &CtxAccess) -> Option<CtxField> {
    let (off, size) = (a.off, a.size);
    if !(0..224).contains(&off) || off % size != 0 {
        return None;
    }
    if a.write {
        // reply, sk_txhash
        return (matches!(off, 4 | 164) && size == 4).then_some(CtxField::Scalar);
    }
    match off {
        // bytes_received, bytes_acked, skb_hwtstamp
        168..=183 | 216..=223 => (size == 8).then_some(CtxField::Scalar),
        184..=191 => (size == 8).then_some(CtxField::PtrOrNull(RegType::Sock)),
        192..=199 => (size == 8).then_some(CtxField::Ptr(RegType::Packet)),
        200..=207 => (size == 8).then_some(CtxField::Ptr(RegType::PacketEnd)),
        // skb_tcp_flags
        212 => narrow_ok(size, 4).then_some(CtxField::Scalar),
        _ => (size == 4).then_some(CtxField::Scalar),
    }
}

/// `struct sk_msg_md` (80 bytes).
fn sk_msg(a: &CtxAccess) -> Option<CtxField> {
    let (off, size) = (a.off, a.size);
    if a.write || off % size != 0 {
        return None;
    }
    match off {
        0..=7 => (size == 8).then_some(CtxField::Ptr(RegType::Packet)),
        8..=15 => (size == 8).then_some(CtxField::Ptr(RegType::PacketEnd)),
        72..=79 => (size == 8).then_some(CtxField::Ptr(RegType::Sock)),
        // family, remote/local ip4 and ip6, ports, size
        16..=71 => (size == 4).then_some(CtxField::Scalar),
        _ => None,
    }
}

/// `struct sk_reuseport_md` (56 bytes).
fn sk_reuseport(a: &CtxAccess) -> Option<CtxField> {
    let (off, size) = (a.off, a.size);
    if !(0..56).contains(&off) || off % size != 0 || a.write {
        return None;
    }
    match off {
        0 => (size == 8).then_some(CtxField::Ptr(RegType::Packet)),
        8 => (size == 8).then_some(CtxField::Ptr(RegType::PacketEnd)),
        32 => (size == 4).then_some(CtxField::Scalar),
        40 => (size == 8).then_some(CtxField::Ptr(RegType::Sock)),
        48 => (size == 8).then_some(CtxField::PtrOrNull(RegType::SockCommon)),
        // eth_protocol is a 16-bit skb field: no single-byte loads.
        20..=23 if size < 2 => None,
        // eth_protocol, ip_protocol, bind_inany, len
        16..=31 => narrow_ok(size, 4).then_some(CtxField::Scalar),
        _ => None,
    }
}

/// `struct bpf_sk_lookup` (72 bytes).
fn sk_lookup(a: &CtxAccess) -> Option<CtxField> {
    let (off, size) = (a.off, a.size);
    if !(0..72).contains(&off) || off % size != 0 || a.write {
        return None;
    }
    match off {
        0..=7 => (size == 8).then_some(CtxField::PtrOrNull(RegType::Sock)),
        // remote_port: 4-byte loads kept for old programs; the 2 bytes after
        // it are zero padding programs may read.
        36..=37 => (size == 4 || narrow_ok(size, 2)).then_some(CtxField::Scalar),
        38..=39 => narrow_ok(size, 2).then_some(CtxField::Scalar),
        8..=35 | 40..=67 => narrow_ok(size, 4).then_some(CtxField::Scalar),
        _ => None,
    }
}

/// `struct bpf_sockopt` (40 bytes).
fn sockopt(a: &CtxAccess) -> Option<CtxField> {
    let (off, size) = (a.off, a.size);
    if !(0..40).contains(&off) || off % size != 0 {
        return None;
    }
    if a.write {
        let ok = match off {
            36 => size == 4 && a.attach == BPF_CGROUP_GETSOCKOPT,
            24 | 28 => size == 4 && a.attach == BPF_CGROUP_SETSOCKOPT,
            32 => size == 4,
            _ => false,
        };
        return ok.then_some(CtxField::Scalar);
    }
    match off {
        0..=7 => (size == 8).then_some(CtxField::Ptr(RegType::Sock)),
        8..=15 => (size == 8).then_some(CtxField::Ptr(RegType::Packet)),
        16..=23 => (size == 8).then_some(CtxField::Ptr(RegType::PacketEnd)),
        36 if a.attach != BPF_CGROUP_GETSOCKOPT => None,
        _ => (size == 4).then_some(CtxField::Scalar),
    }
}

/// Whether a context access is allowed, and what a load gives, per program
/// type (the kernel's `is_valid_access` callbacks).
pub fn ctx_access(a: &CtxAccess) -> Option<CtxField> {
    use CtxField::*;
    let (off, size, write) = (a.off, a.size, a.write);
    if size <= 0 {
        return None;
    }
    match a.prog_type {
        BPF_PROG_TYPE_XDP => {
            if write || !(0..24).contains(&off) || off % size != 0 || size != 4 {
                return None;
            }
            if off == 20 && a.attach != BPF_XDP_DEVMAP {
                return None;
            }
            if off < 12 && a.ldsx {
                return None;
            }
            Some(match off {
                0 => Ptr(RegType::Packet),
                4 => Ptr(RegType::PacketEnd),
                8 => Ptr(RegType::PacketMeta),
                _ => Scalar,
            })
        }
        BPF_PROG_TYPE_SOCKET_FILTER => socket_filter(a),
        BPF_PROG_TYPE_CGROUP_SKB => cgroup_skb(a),
        BPF_PROG_TYPE_SCHED_CLS | BPF_PROG_TYPE_SCHED_ACT => tc(a),
        BPF_PROG_TYPE_LWT_IN
        | BPF_PROG_TYPE_LWT_OUT
        | BPF_PROG_TYPE_LWT_XMIT
        | BPF_PROG_TYPE_LWT_SEG6LOCAL => lwt(a),
        BPF_PROG_TYPE_SK_SKB => sk_skb(a),
        BPF_PROG_TYPE_FLOW_DISSECTOR => flow_dissector(a),
        BPF_PROG_TYPE_CGROUP_SOCK => cgroup_sock(a),
        BPF_PROG_TYPE_CGROUP_SOCK_ADDR => sock_addr(a),
        BPF_PROG_TYPE_SOCK_OPS => sock_ops(a),
        BPF_PROG_TYPE_SK_MSG => sk_msg(a),
        BPF_PROG_TYPE_SK_REUSEPORT => sk_reuseport(a),
        BPF_PROG_TYPE_SK_LOOKUP => sk_lookup(a),
        BPF_PROG_TYPE_CGROUP_SOCKOPT => sockopt(a),
        BPF_PROG_TYPE_CGROUP_DEVICE => {
            // struct bpf_cgroup_dev_ctx: access_type, major, minor
            let ok = !write && off >= 0 && off + size <= 12 && off % size == 0;
            let ok = ok
                && if off < 4 {
                    narrow_ok(size, 4)
                } else {
                    size == 4
                };
            ok.then_some(Scalar)
        }
        BPF_PROG_TYPE_CGROUP_SYSCTL => {
            // struct bpf_sysctl: write (read only), file_pos
            if off < 0 || off + size > 8 || off % size != 0 {
                return None;
            }
            let ok = match off {
                0..=3 => !write && narrow_ok(size, 4),
                _ if write => size == 4,
                _ => narrow_ok(size, 4),
            };
            ok.then_some(Scalar)
        }
        BPF_PROG_TYPE_NETFILTER => {
            // struct bpf_nf_ctx { state, skb }: trusted BTF-typed pointers.
            if write || size != 8 {
                return None;
            }
            match off {
                0 => Some(TrustedBtf("nf_hook_state")),
                8 => Some(TrustedBtf("sk_buff")),
                _ => None,
            }
        }
        BPF_PROG_TYPE_RAW_TRACEPOINT => {
            (!write && (0..96).contains(&off) && off % size == 0).then_some(Scalar)
        }
        BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE => {
            if off == 0 {
                // The first argument is the tracepoint's writable buffer.
                return (!write && size == 8).then_some(Ptr(RegType::TpBuffer));
            }
            (!write && (0..96).contains(&off) && off % size == 0).then_some(Scalar)
        }
        BPF_PROG_TYPE_KPROBE => {
            // struct pt_regs on x86-64 is 168 bytes.
            (!write && off >= 0 && off + size <= 168 && off % size == 0).then_some(Scalar)
        }
        BPF_PROG_TYPE_PERF_EVENT => {
            // struct bpf_perf_event_data: pt_regs, sample_period, addr.
            if write || !(0..184).contains(&off) || off % size != 0 {
                return None;
            }
            let ok = if off >= 168 {
                narrow_ok(size, 8)
            } else {
                size == 8
            };
            ok.then_some(Scalar)
        }
        BPF_PROG_TYPE_TRACEPOINT => {
            if write || off % size != 0 {
                return None;
            }
            // The kernel compares the offset with sizeof(void *) unsigned, so
            // negative offsets pass its check; bpfvm has nothing there.
            if off < 0 {
                return Some(Unmodelled("memory before a tracepoint's record"));
            }
            (8..2048).contains(&off).then_some(Scalar)
        }
        BPF_PROG_TYPE_SYSCALL => {
            ((0..u16::MAX as i32).contains(&off) && off % size == 0).then_some(Scalar)
        }
        _ => None,
    }
}

/// Size of the context the VM passes, for bounds in tests and fuzzing
/// (the program type table's, or 64 KiB for types without one).
pub fn ctx_size(prog_type: u32) -> usize {
    ProgType::from_u32(prog_type)
        .and_then(ProgType::ctx_size)
        .map_or(65535, |n| n as usize)
}

/// `may_access_direct_pkt_data`: whether the program may read (or, with
/// `write`, write) packet data through packet pointers, and pass them to
/// helpers that take memory (`helper` : the helper's `pkt_access`).
pub fn may_access_pkt(prog_type: u32, write: bool, helper: Option<bool>) -> bool {
    match prog_type {
        BPF_PROG_TYPE_LWT_IN
        | BPF_PROG_TYPE_LWT_OUT
        | BPF_PROG_TYPE_LWT_SEG6LOCAL
        | BPF_PROG_TYPE_SK_REUSEPORT
        | BPF_PROG_TYPE_FLOW_DISSECTOR
        | BPF_PROG_TYPE_CGROUP_SKB
            if write =>
        {
            false
        }
        BPF_PROG_TYPE_LWT_IN
        | BPF_PROG_TYPE_LWT_OUT
        | BPF_PROG_TYPE_LWT_SEG6LOCAL
        | BPF_PROG_TYPE_SK_REUSEPORT
        | BPF_PROG_TYPE_FLOW_DISSECTOR
        | BPF_PROG_TYPE_CGROUP_SKB
        | BPF_PROG_TYPE_SCHED_CLS
        | BPF_PROG_TYPE_SCHED_ACT
        | BPF_PROG_TYPE_XDP
        | BPF_PROG_TYPE_LWT_XMIT
        | BPF_PROG_TYPE_SK_SKB
        | BPF_PROG_TYPE_SK_MSG => helper.unwrap_or(true),
        BPF_PROG_TYPE_CGROUP_SOCKOPT => true,
        _ => false,
    }
}

/// The range the main program's R0 must be in at exit (`check_return_code`),
/// or `None` where any value goes.
pub fn retval_range(prog_type: u32, attach: u32) -> Option<(i32, i32)> {
    match prog_type {
        BPF_PROG_TYPE_CGROUP_SOCK_ADDR => Some(match attach {
            BPF_CGROUP_UDP4_RECVMSG
            | BPF_CGROUP_UDP6_RECVMSG
            | BPF_CGROUP_UNIX_RECVMSG
            | BPF_CGROUP_INET4_GETPEERNAME
            | BPF_CGROUP_INET6_GETPEERNAME
            | BPF_CGROUP_UNIX_GETPEERNAME
            | BPF_CGROUP_INET4_GETSOCKNAME
            | BPF_CGROUP_INET6_GETSOCKNAME
            | BPF_CGROUP_UNIX_GETSOCKNAME => (1, 1),
            BPF_CGROUP_INET4_BIND | BPF_CGROUP_INET6_BIND => (0, 3),
            _ => (0, 1),
        }),
        BPF_PROG_TYPE_CGROUP_SKB if attach == BPF_CGROUP_INET_EGRESS => Some((0, 3)),
        BPF_PROG_TYPE_CGROUP_SKB
        | BPF_PROG_TYPE_CGROUP_SOCK
        | BPF_PROG_TYPE_SOCK_OPS
        | BPF_PROG_TYPE_CGROUP_DEVICE
        | BPF_PROG_TYPE_CGROUP_SYSCTL
        | BPF_PROG_TYPE_CGROUP_SOCKOPT
        | BPF_PROG_TYPE_SK_LOOKUP
        | BPF_PROG_TYPE_NETFILTER => Some((0, 1)),
        BPF_PROG_TYPE_TRACING => match attach {
            BPF_TRACE_FENTRY | BPF_TRACE_FEXIT => Some((0, 0)),
            BPF_TRACE_ITER => Some((0, 1)),
            _ => None,
        },
        BPF_PROG_TYPE_KPROBE if attach == BPF_TRACE_KPROBE_SESSION => Some((0, 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The program type table's context sizes agree with the layouts here.
    #[test]
    fn ctx_size_matches_the_layouts() {
        for t in [
            BPF_PROG_TYPE_SOCKET_FILTER,
            BPF_PROG_TYPE_SCHED_CLS,
            BPF_PROG_TYPE_CGROUP_SKB,
            BPF_PROG_TYPE_SK_SKB,
            BPF_PROG_TYPE_FLOW_DISSECTOR,
        ] {
            assert_eq!(ctx_size(t), SKB_SIZE as usize, "{t}");
        }
        assert_eq!(ctx_size(BPF_PROG_TYPE_XDP), 24);
        // Types without a modelled context: the 64 KiB bound.
        assert_eq!(ctx_size(BPF_PROG_TYPE_SYSCALL), 65535);
        assert_eq!(ctx_size(999), 65535);
    }
}
