//! Program types (`enum bpf_prog_type`) and their context rules
//! (`is_valid_access` per type).

use crate::reg::RegType;

pub const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
pub const BPF_PROG_TYPE_KPROBE: u32 = 2;
pub const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
pub const BPF_PROG_TYPE_SCHED_ACT: u32 = 4;
pub const BPF_PROG_TYPE_TRACEPOINT: u32 = 5;
pub const BPF_PROG_TYPE_XDP: u32 = 6;
pub const BPF_PROG_TYPE_PERF_EVENT: u32 = 7;
pub const BPF_PROG_TYPE_CGROUP_SKB: u32 = 8;
pub const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;
pub const BPF_PROG_TYPE_SYSCALL: u32 = 31;

pub const BPF_MAP_TYPE_HASH: u32 = 1;
pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
pub const BPF_MAP_TYPE_PROG_ARRAY: u32 = 3;
pub const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
pub const BPF_MAP_TYPE_ARRAY_OF_MAPS: u32 = 12;
pub const BPF_MAP_TYPE_HASH_OF_MAPS: u32 = 13;
pub const BPF_MAP_TYPE_QUEUE: u32 = 22;
pub const BPF_MAP_TYPE_STACK: u32 = 23;
pub const BPF_MAP_TYPE_RINGBUF: u32 = 27;
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
pub const BPF_F_WRONLY_PROG: u32 = 1 << 8;
pub const BPF_XDP_DEVMAP: u32 = 40;

/// What a context load gives: a scalar, or a packet pointer.
pub enum CtxField {
    Scalar,
    Ptr(RegType),
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
const SKB_LOCAL_PORT_END: i32 = 140;
const SKB_DATA_META: i32 = 140;
const SKB_FLOW_KEYS: i32 = 144;
const SKB_TSTAMP: i32 = 152;
const SKB_WIRE_LEN: i32 = 160;
const SKB_SK: i32 = 168;
const SKB_TSTAMP_TYPE: i32 = 180;
const SKB_HWTSTAMP: i32 = 184;
const SKB_SIZE: i32 = 192;

fn in_field(off: i32, start: i32, len: i32) -> bool {
    off >= start && off < start + len
}

/// `bpf_skb_is_valid_access`: the checks shared by the skb program types.
fn skb_common(off: i32, size: i32, write: bool) -> bool {
    if !(0..SKB_SIZE).contains(&off) || off % size != 0 {
        return false;
    }
    if in_field(off, SKB_CB, SKB_CB_END - SKB_CB) {
        return off + size <= SKB_CB_END;
    }
    if in_field(off, SKB_DATA, 8) || in_field(off, SKB_DATA_META, 4) || in_field(off, 92, 40) {
        return size == 4;
    }
    if in_field(off, SKB_FLOW_KEYS, 8) || in_field(off, SKB_SK, 8) {
        // flow_keys is not readable; sk gives a socket pointer bpfvm lacks.
        return false;
    }
    if in_field(off, SKB_HWTSTAMP, 8) {
        return !write && size == 8;
    }
    if in_field(off, SKB_TSTAMP, 8) {
        return size == 8;
    }
    if (SKB_TSTAMP_TYPE..SKB_HWTSTAMP).contains(&off) {
        return false;
    }
    if write {
        size == 4
    } else {
        // Narrow loads of a u32 field.
        matches!(size, 1 | 2 | 4) && off % 4 + size <= 4
    }
}

/// Whether a context access is allowed (and what a load gives), per program type.
pub fn ctx_access(
    prog_type: u32,
    attach: u32,
    off: i32,
    size: i32,
    write: bool,
) -> Option<CtxField> {
    use CtxField::*;
    if size <= 0 {
        return None;
    }
    // `__sk_buff->sk`: the skb's socket, or NULL (bpf_skb_is_valid_access).
    if off == SKB_SK
        && matches!(
            prog_type,
            BPF_PROG_TYPE_SOCKET_FILTER
                | BPF_PROG_TYPE_CGROUP_SKB
                | BPF_PROG_TYPE_SCHED_CLS
                | BPF_PROG_TYPE_SCHED_ACT
        )
    {
        return (size == 8 && !write).then_some(Ptr(RegType::SockCommon));
    }
    match prog_type {
        BPF_PROG_TYPE_XDP => {
            if write || !(0..24).contains(&off) || off % size != 0 || size != 4 {
                return None;
            }
            if off == 20 && attach != BPF_XDP_DEVMAP {
                return None;
            }
            Some(match off {
                0 => Ptr(RegType::Packet),
                4 => Ptr(RegType::PacketEnd),
                8 => Ptr(RegType::PacketMeta),
                _ => Scalar,
            })
        }
        BPF_PROG_TYPE_SOCKET_FILTER | BPF_PROG_TYPE_CGROUP_SKB => {
            let banned = in_field(off, SKB_TC_CLASSID, 4)
                || (prog_type == BPF_PROG_TYPE_SOCKET_FILTER
                    && (in_field(off, SKB_DATA, 8) || in_field(off, SKB_DATA_META, 4)))
                || ((SKB_FAMILY..SKB_LOCAL_PORT_END).contains(&off)
                    && prog_type == BPF_PROG_TYPE_SOCKET_FILTER)
                || in_field(off, SKB_TSTAMP, 8)
                || in_field(off, SKB_WIRE_LEN, 4)
                || in_field(off, SKB_HWTSTAMP, 8);
            if banned {
                return None;
            }
            let writable = in_field(off, SKB_CB, SKB_CB_END - SKB_CB)
                || (prog_type == BPF_PROG_TYPE_CGROUP_SKB
                    && in_field(off, SKB_MARK, 4) | in_field(off, SKB_PRIORITY, 4));
            if write && !writable {
                return None;
            }
            if !skb_common(off, size, write) {
                return None;
            }
            Some(match off {
                SKB_DATA => Ptr(RegType::Packet),
                SKB_DATA_END => Ptr(RegType::PacketEnd),
                _ => Scalar,
            })
        }
        BPF_PROG_TYPE_SCHED_CLS | BPF_PROG_TYPE_SCHED_ACT => {
            if write {
                let ok = in_field(off, SKB_MARK, 4)
                    || in_field(off, SKB_TC_INDEX, 4)
                    || in_field(off, SKB_PRIORITY, 4)
                    || in_field(off, SKB_CB, SKB_CB_END - SKB_CB)
                    || in_field(off, SKB_TC_CLASSID, 4)
                    || in_field(off, SKB_TSTAMP, 8)
                    || in_field(off, SKB_QUEUE_MAPPING, 4);
                if !ok {
                    return None;
                }
            }
            if (SKB_FAMILY..SKB_LOCAL_PORT_END).contains(&off) {
                return None;
            }
            if !skb_common(off, size, write) {
                return None;
            }
            Some(match off {
                SKB_DATA => Ptr(RegType::Packet),
                SKB_DATA_END => Ptr(RegType::PacketEnd),
                SKB_DATA_META => Ptr(RegType::PacketMeta),
                _ => Scalar,
            })
        }
        BPF_PROG_TYPE_RAW_TRACEPOINT => {
            (!write && (0..96).contains(&off) && off % size == 0).then_some(Scalar)
        }
        BPF_PROG_TYPE_KPROBE | BPF_PROG_TYPE_PERF_EVENT => {
            // struct pt_regs on x86-64 is 168 bytes.
            (!write && off >= 0 && off + size <= 168 && off % size == 0).then_some(Scalar)
        }
        BPF_PROG_TYPE_TRACEPOINT => {
            (!write && (8..2048).contains(&off) && off % size == 0).then_some(Scalar)
        }
        BPF_PROG_TYPE_SYSCALL => {
            ((0..u16::MAX as i32).contains(&off) && off % size == 0).then_some(Scalar)
        }
        _ => None,
    }
}

/// Size of the context the VM passes, for bounds in tests and fuzzing.
pub fn ctx_size(prog_type: u32) -> usize {
    match prog_type {
        BPF_PROG_TYPE_XDP => 24,
        BPF_PROG_TYPE_SOCKET_FILTER
        | BPF_PROG_TYPE_SCHED_CLS
        | BPF_PROG_TYPE_SCHED_ACT
        | BPF_PROG_TYPE_CGROUP_SKB => SKB_SIZE as usize,
        BPF_PROG_TYPE_RAW_TRACEPOINT => 96,
        BPF_PROG_TYPE_KPROBE | BPF_PROG_TYPE_PERF_EVENT => 168,
        BPF_PROG_TYPE_TRACEPOINT => 2048,
        _ => 65535,
    }
}

/// Program types whose context pointer may be passed to packet-changing helpers
/// and which have direct packet access.
pub fn has_pkt(prog_type: u32) -> bool {
    matches!(
        prog_type,
        BPF_PROG_TYPE_XDP
            | BPF_PROG_TYPE_SCHED_CLS
            | BPF_PROG_TYPE_SCHED_ACT
            | BPF_PROG_TYPE_CGROUP_SKB
    )
}
