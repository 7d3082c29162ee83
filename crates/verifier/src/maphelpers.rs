//! What the verifier knows of map types beyond their sizes: which helpers
//! each map type may be passed to and which map types each helper takes
//! (the kernel's `check_map_func_compatibility`), and the prototypes of the
//! helpers that exist for those map types (perf event output, stack ids,
//! cgroup arrays and storage) and for kernel objects
//! (`bpf_get_current_task_btf`).
//!
//! Kept apart from the main helper table so the two can merge into one
//! registry; `proto` answers only for the ids listed here, and only for the
//! program types the kernel offers them to.

use crate::helpers::{Arg, Effect, Proto, Ret, SockKind};
use crate::prog::*;
use crate::reg::RegType;
// Named through this module by the call checks (check/calls.rs).
pub use bpfvm_isa::uapi::{BPF_MAP_TYPE_SOCKHASH, BPF_MAP_TYPE_SOCKMAP, BPF_MAP_TYPE_XSKMAP};

/// Short names for the `BPF_FUNC_*` ids the tables below use.
mod id {
    pub use bpfvm_isa::uapi::BPF_FUNC_CGRP_STORAGE_DELETE as CGRP_STORAGE_DELETE;
    pub use bpfvm_isa::uapi::BPF_FUNC_CGRP_STORAGE_GET as CGRP_STORAGE_GET;
    pub use bpfvm_isa::uapi::BPF_FUNC_COPY_FROM_USER as COPY_FROM_USER;
    pub use bpfvm_isa::uapi::BPF_FUNC_COPY_FROM_USER_TASK as COPY_FROM_USER_TASK;
    pub use bpfvm_isa::uapi::BPF_FUNC_CURRENT_TASK_UNDER_CGROUP as CURRENT_TASK_UNDER_CGROUP;
    pub use bpfvm_isa::uapi::BPF_FUNC_GET_CURRENT_TASK_BTF as GET_CURRENT_TASK_BTF;
    pub use bpfvm_isa::uapi::BPF_FUNC_GET_LISTENER_SOCK as GET_LISTENER_SOCK;
    pub use bpfvm_isa::uapi::BPF_FUNC_GET_LOCAL_STORAGE as GET_LOCAL_STORAGE;
    pub use bpfvm_isa::uapi::BPF_FUNC_GET_STACK as GET_STACK;
    pub use bpfvm_isa::uapi::BPF_FUNC_GET_STACKID as GET_STACKID;
    pub use bpfvm_isa::uapi::BPF_FUNC_INODE_STORAGE_DELETE as INODE_STORAGE_DELETE;
    pub use bpfvm_isa::uapi::BPF_FUNC_INODE_STORAGE_GET as INODE_STORAGE_GET;
    pub use bpfvm_isa::uapi::BPF_FUNC_KPTR_XCHG as KPTR_XCHG;
    pub use bpfvm_isa::uapi::BPF_FUNC_MAP_DELETE_ELEM as DELETE;
    pub use bpfvm_isa::uapi::BPF_FUNC_MAP_LOOKUP_ELEM as LOOKUP;
    pub use bpfvm_isa::uapi::BPF_FUNC_MAP_LOOKUP_PERCPU_ELEM as MAP_LOOKUP_PERCPU;
    pub use bpfvm_isa::uapi::BPF_FUNC_MAP_PEEK_ELEM as MAP_PEEK;
    pub use bpfvm_isa::uapi::BPF_FUNC_MAP_POP_ELEM as MAP_POP;
    pub use bpfvm_isa::uapi::BPF_FUNC_MAP_PUSH_ELEM as MAP_PUSH;
    pub use bpfvm_isa::uapi::BPF_FUNC_MAP_UPDATE_ELEM as UPDATE;
    pub use bpfvm_isa::uapi::BPF_FUNC_MSG_REDIRECT_HASH as MSG_REDIRECT_HASH;
    pub use bpfvm_isa::uapi::BPF_FUNC_MSG_REDIRECT_MAP as MSG_REDIRECT_MAP;
    pub use bpfvm_isa::uapi::BPF_FUNC_PERF_EVENT_OUTPUT as PERF_EVENT_OUTPUT;
    pub use bpfvm_isa::uapi::BPF_FUNC_PERF_EVENT_READ as PERF_EVENT_READ;
    pub use bpfvm_isa::uapi::BPF_FUNC_PERF_EVENT_READ_VALUE as PERF_EVENT_READ_VALUE;
    pub use bpfvm_isa::uapi::BPF_FUNC_REDIRECT_MAP as REDIRECT_MAP;
    pub use bpfvm_isa::uapi::BPF_FUNC_RINGBUF_DISCARD_DYNPTR as RINGBUF_DISCARD_DYNPTR;
    pub use bpfvm_isa::uapi::BPF_FUNC_RINGBUF_OUTPUT as RINGBUF_OUTPUT;
    pub use bpfvm_isa::uapi::BPF_FUNC_RINGBUF_QUERY as RINGBUF_QUERY;
    pub use bpfvm_isa::uapi::BPF_FUNC_RINGBUF_RESERVE as RINGBUF_RESERVE;
    pub use bpfvm_isa::uapi::BPF_FUNC_RINGBUF_RESERVE_DYNPTR as RINGBUF_RESERVE_DYNPTR;
    pub use bpfvm_isa::uapi::BPF_FUNC_RINGBUF_SUBMIT_DYNPTR as RINGBUF_SUBMIT_DYNPTR;
    pub use bpfvm_isa::uapi::BPF_FUNC_SKB_OUTPUT as SKB_OUTPUT;
    pub use bpfvm_isa::uapi::BPF_FUNC_SKB_UNDER_CGROUP as SKB_UNDER_CGROUP;
    pub use bpfvm_isa::uapi::BPF_FUNC_SKC_LOOKUP_TCP as SKC_LOOKUP_TCP;
    pub use bpfvm_isa::uapi::BPF_FUNC_SKC_TO_TCP6_SOCK as SKC_TO_TCP6_SOCK;
    pub use bpfvm_isa::uapi::BPF_FUNC_SKC_TO_TCP_REQUEST_SOCK as SKC_TO_TCP_REQUEST_SOCK;
    pub use bpfvm_isa::uapi::BPF_FUNC_SKC_TO_TCP_SOCK as SKC_TO_TCP_SOCK;
    pub use bpfvm_isa::uapi::BPF_FUNC_SKC_TO_TCP_TIMEWAIT_SOCK as SKC_TO_TCP_TIMEWAIT_SOCK;
    pub use bpfvm_isa::uapi::BPF_FUNC_SKC_TO_UDP6_SOCK as SKC_TO_UDP6_SOCK;
    pub use bpfvm_isa::uapi::BPF_FUNC_SKC_TO_UNIX_SOCK as SKC_TO_UNIX_SOCK;
    pub use bpfvm_isa::uapi::BPF_FUNC_SK_FULLSOCK as SK_FULLSOCK;
    pub use bpfvm_isa::uapi::BPF_FUNC_SK_LOOKUP_TCP as SK_LOOKUP_TCP;
    pub use bpfvm_isa::uapi::BPF_FUNC_SK_LOOKUP_UDP as SK_LOOKUP_UDP;
    pub use bpfvm_isa::uapi::BPF_FUNC_SK_REDIRECT_HASH as SK_REDIRECT_HASH;
    pub use bpfvm_isa::uapi::BPF_FUNC_SK_REDIRECT_MAP as SK_REDIRECT_MAP;
    pub use bpfvm_isa::uapi::BPF_FUNC_SK_RELEASE as SK_RELEASE;
    pub use bpfvm_isa::uapi::BPF_FUNC_SK_SELECT_REUSEPORT as SK_SELECT_REUSEPORT;
    pub use bpfvm_isa::uapi::BPF_FUNC_SK_STORAGE_DELETE as SK_STORAGE_DELETE;
    pub use bpfvm_isa::uapi::BPF_FUNC_SK_STORAGE_GET as SK_STORAGE_GET;
    pub use bpfvm_isa::uapi::BPF_FUNC_SOCK_HASH_UPDATE as SOCK_HASH_UPDATE;
    pub use bpfvm_isa::uapi::BPF_FUNC_SOCK_MAP_UPDATE as SOCK_MAP_UPDATE;
    pub use bpfvm_isa::uapi::BPF_FUNC_TAIL_CALL as TAIL_CALL;
    pub use bpfvm_isa::uapi::BPF_FUNC_TASK_STORAGE_DELETE as TASK_STORAGE_DELETE;
    pub use bpfvm_isa::uapi::BPF_FUNC_TASK_STORAGE_GET as TASK_STORAGE_GET;
    pub use bpfvm_isa::uapi::BPF_FUNC_TCP_SOCK as TCP_SOCK;
    pub use bpfvm_isa::uapi::BPF_FUNC_USER_RINGBUF_DRAIN as USER_RINGBUF_DRAIN;
    pub use bpfvm_isa::uapi::BPF_FUNC_XDP_OUTPUT as XDP_OUTPUT;
}

/// `may_update_sockmap`: program types that may update or delete sockmap
/// and sockhash elements with the generic helpers.
fn may_update_sockmap(func: i32, prog_type: u32, attach: u32) -> bool {
    if func != id::UPDATE && func != id::DELETE {
        return false;
    }
    match prog_type {
        BPF_PROG_TYPE_SOCK_OPS => func == id::DELETE,
        BPF_PROG_TYPE_TRACING => attach == BPF_TRACE_ITER,
        BPF_PROG_TYPE_SOCKET_FILTER
        | BPF_PROG_TYPE_SCHED_CLS
        | BPF_PROG_TYPE_SCHED_ACT
        | BPF_PROG_TYPE_XDP
        | BPF_PROG_TYPE_SK_REUSEPORT
        | BPF_PROG_TYPE_FLOW_DISSECTOR
        | BPF_PROG_TYPE_SK_LOOKUP => true,
        _ => false,
    }
}

/// `check_map_func_compatibility`: may map type `map` be passed to helper
/// `func`? (`Err`: the kernel's message.)
pub fn map_func_compat(
    map: u32,
    func: i32,
    func_name: &str,
    prog_type: u32,
    attach: u32,
) -> Result<(), String> {
    use id::*;
    let any = |ids: &[i32]| ids.contains(&func);
    let map_ok = match map {
        BPF_MAP_TYPE_PROG_ARRAY => func == TAIL_CALL,
        BPF_MAP_TYPE_PERF_EVENT_ARRAY => any(&[
            PERF_EVENT_READ,
            PERF_EVENT_OUTPUT,
            SKB_OUTPUT,
            PERF_EVENT_READ_VALUE,
            XDP_OUTPUT,
        ]),
        BPF_MAP_TYPE_RINGBUF => any(&[
            RINGBUF_OUTPUT,
            RINGBUF_RESERVE,
            RINGBUF_QUERY,
            RINGBUF_RESERVE_DYNPTR,
            RINGBUF_SUBMIT_DYNPTR,
            RINGBUF_DISCARD_DYNPTR,
        ]),
        BPF_MAP_TYPE_USER_RINGBUF => func == USER_RINGBUF_DRAIN,
        BPF_MAP_TYPE_STACK_TRACE => func == GET_STACKID,
        BPF_MAP_TYPE_CGROUP_ARRAY => any(&[SKB_UNDER_CGROUP, CURRENT_TASK_UNDER_CGROUP]),
        BPF_MAP_TYPE_CGROUP_STORAGE | BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE => {
            func == GET_LOCAL_STORAGE
        }
        BPF_MAP_TYPE_DEVMAP | BPF_MAP_TYPE_DEVMAP_HASH => any(&[REDIRECT_MAP, LOOKUP]),
        BPF_MAP_TYPE_CPUMAP => func == REDIRECT_MAP,
        BPF_MAP_TYPE_XSKMAP => any(&[REDIRECT_MAP, LOOKUP]),
        BPF_MAP_TYPE_ARRAY_OF_MAPS | BPF_MAP_TYPE_HASH_OF_MAPS => func == LOOKUP,
        BPF_MAP_TYPE_SOCKMAP => {
            any(&[
                SK_REDIRECT_MAP,
                SOCK_MAP_UPDATE,
                MSG_REDIRECT_MAP,
                SK_SELECT_REUSEPORT,
                LOOKUP,
            ]) || (any(&[UPDATE, DELETE]) && may_update_sockmap(func, prog_type, attach))
        }
        BPF_MAP_TYPE_SOCKHASH => {
            any(&[
                SK_REDIRECT_HASH,
                SOCK_HASH_UPDATE,
                MSG_REDIRECT_HASH,
                SK_SELECT_REUSEPORT,
                LOOKUP,
            ]) || (any(&[UPDATE, DELETE]) && may_update_sockmap(func, prog_type, attach))
        }
        BPF_MAP_TYPE_REUSEPORT_SOCKARRAY => func == SK_SELECT_REUSEPORT,
        BPF_MAP_TYPE_QUEUE | BPF_MAP_TYPE_STACK => any(&[MAP_PEEK, MAP_POP, MAP_PUSH]),
        BPF_MAP_TYPE_SK_STORAGE => any(&[SK_STORAGE_GET, SK_STORAGE_DELETE, KPTR_XCHG]),
        BPF_MAP_TYPE_INODE_STORAGE => any(&[INODE_STORAGE_GET, INODE_STORAGE_DELETE]),
        BPF_MAP_TYPE_TASK_STORAGE => any(&[TASK_STORAGE_GET, TASK_STORAGE_DELETE]),
        BPF_MAP_TYPE_CGRP_STORAGE => any(&[CGRP_STORAGE_GET, CGRP_STORAGE_DELETE]),
        BPF_MAP_TYPE_BLOOM_FILTER => any(&[MAP_PEEK, MAP_PUSH]),
        _ => true,
    };
    let func_ok = match func {
        TAIL_CALL => map == BPF_MAP_TYPE_PROG_ARRAY,
        PERF_EVENT_READ | PERF_EVENT_OUTPUT | PERF_EVENT_READ_VALUE | SKB_OUTPUT | XDP_OUTPUT => {
            map == BPF_MAP_TYPE_PERF_EVENT_ARRAY
        }
        RINGBUF_OUTPUT
        | RINGBUF_RESERVE
        | RINGBUF_QUERY
        | RINGBUF_RESERVE_DYNPTR
        | RINGBUF_SUBMIT_DYNPTR
        | RINGBUF_DISCARD_DYNPTR => map == BPF_MAP_TYPE_RINGBUF,
        USER_RINGBUF_DRAIN => map == BPF_MAP_TYPE_USER_RINGBUF,
        GET_STACKID => map == BPF_MAP_TYPE_STACK_TRACE,
        CURRENT_TASK_UNDER_CGROUP | SKB_UNDER_CGROUP => map == BPF_MAP_TYPE_CGROUP_ARRAY,
        REDIRECT_MAP => matches!(
            map,
            BPF_MAP_TYPE_DEVMAP
                | BPF_MAP_TYPE_DEVMAP_HASH
                | BPF_MAP_TYPE_CPUMAP
                | BPF_MAP_TYPE_XSKMAP
        ),
        SK_REDIRECT_MAP | MSG_REDIRECT_MAP | SOCK_MAP_UPDATE => map == BPF_MAP_TYPE_SOCKMAP,
        SK_REDIRECT_HASH | MSG_REDIRECT_HASH | SOCK_HASH_UPDATE => map == BPF_MAP_TYPE_SOCKHASH,
        GET_LOCAL_STORAGE => matches!(
            map,
            BPF_MAP_TYPE_CGROUP_STORAGE | BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE
        ),
        SK_SELECT_REUSEPORT => matches!(
            map,
            BPF_MAP_TYPE_REUSEPORT_SOCKARRAY | BPF_MAP_TYPE_SOCKMAP | BPF_MAP_TYPE_SOCKHASH
        ),
        MAP_POP => matches!(map, BPF_MAP_TYPE_QUEUE | BPF_MAP_TYPE_STACK),
        MAP_PEEK | MAP_PUSH => matches!(
            map,
            BPF_MAP_TYPE_QUEUE | BPF_MAP_TYPE_STACK | BPF_MAP_TYPE_BLOOM_FILTER
        ),
        MAP_LOOKUP_PERCPU => matches!(
            map,
            BPF_MAP_TYPE_PERCPU_ARRAY | BPF_MAP_TYPE_PERCPU_HASH | BPF_MAP_TYPE_LRU_PERCPU_HASH
        ),
        SK_STORAGE_GET | SK_STORAGE_DELETE => map == BPF_MAP_TYPE_SK_STORAGE,
        INODE_STORAGE_GET | INODE_STORAGE_DELETE => map == BPF_MAP_TYPE_INODE_STORAGE,
        TASK_STORAGE_GET | TASK_STORAGE_DELETE => map == BPF_MAP_TYPE_TASK_STORAGE,
        CGRP_STORAGE_GET | CGRP_STORAGE_DELETE => map == BPF_MAP_TYPE_CGRP_STORAGE,
        _ => true,
    };
    if map_ok && func_ok {
        Ok(())
    } else {
        Err(format!(
            "cannot pass map_type {map} into func {func_name}#{func}"
        ))
    }
}

/// The line the kernel logs before refusing a socket map update or delete
/// in a program type that may not make one.
pub fn map_func_note(map: u32, func: i32, prog_type: u32, attach: u32) -> Option<&'static str> {
    let sockmap = matches!(map, BPF_MAP_TYPE_SOCKMAP | BPF_MAP_TYPE_SOCKHASH);
    (sockmap
        && matches!(func, id::UPDATE | id::DELETE)
        && !may_update_sockmap(func, prog_type, attach))
    .then_some("cannot update sockmap in this context")
}

/// Program types with the tracing helpers (`bpf_tracing_func_proto`).
fn tracing(prog_type: u32) -> bool {
    matches!(
        prog_type,
        BPF_PROG_TYPE_KPROBE
            | BPF_PROG_TYPE_TRACEPOINT
            | BPF_PROG_TYPE_PERF_EVENT
            | BPF_PROG_TYPE_RAW_TRACEPOINT
            | BPF_PROG_TYPE_TRACING
            | BPF_PROG_TYPE_LSM
            | 24 /* raw_tracepoint_writable */
    )
}

/// Program types that see a `struct __sk_buff`.
fn skb(prog_type: u32) -> bool {
    matches!(
        prog_type,
        BPF_PROG_TYPE_SOCKET_FILTER
            | BPF_PROG_TYPE_SCHED_CLS
            | BPF_PROG_TYPE_SCHED_ACT
            | BPF_PROG_TYPE_CGROUP_SKB
            | BPF_PROG_TYPE_LWT_IN
            ..=BPF_PROG_TYPE_LWT_XMIT | BPF_PROG_TYPE_SK_SKB | BPF_PROG_TYPE_LWT_SEG6LOCAL
    )
}

const fn p(args: [Arg; 5], ret: Ret, gpl_only: bool) -> Proto {
    Proto {
        args,
        ret,
        effect: Effect::None,
        gpl_only,
        pkt_access: false,
    }
}

/// The helpers bpfvm models whose kernel prototype says `might_sleep`: only
/// sleepable programs (`BPF_F_SLEEPABLE`) may call them, and not inside an
/// RCU read-side section.
pub fn might_sleep(func: i32, prog_type: u32, sleepable: bool) -> bool {
    match func {
        id::COPY_FROM_USER | id::COPY_FROM_USER_TASK => true,
        // A sleepable kprobe (uprobe.s) gets the variant that may fault
        // user stacks in.
        id::GET_STACK => sleepable && prog_type == BPF_PROG_TYPE_KPROBE,
        _ => false,
    }
}

/// The prototype of helper `id` in a program of `prog_type`, for the
/// helpers this module adds; `None` when `id` is not one of them or the
/// program type may not call it.
pub fn proto(id: i32, prog_type: u32, privileged: bool) -> Option<Proto> {
    use Arg::*;
    const D: Arg = Arg::DontCare;
    let out = Mem { nullable: false };
    Some(match id {
        id::PERF_EVENT_OUTPUT
            if tracing(prog_type)
                || skb(prog_type)
                || matches!(
                    prog_type,
                    BPF_PROG_TYPE_XDP
                        | BPF_PROG_TYPE_SOCK_OPS
                        | BPF_PROG_TYPE_SK_MSG
                        | BPF_PROG_TYPE_CGROUP_SOCK
                        | BPF_PROG_TYPE_CGROUP_SOCK_ADDR
                ) =>
        {
            p(
                [Ctx, MapPtr, Anything, out, ConstSizeOrZero],
                Ret::Integer,
                true,
            )
        }
        id::PERF_EVENT_READ if tracing(prog_type) => {
            p([MapPtr, Anything, D, D, D], Ret::Integer, true)
        }
        id::PERF_EVENT_READ_VALUE if tracing(prog_type) => p(
            [
                MapPtr,
                Anything,
                UninitMem { nullable: false },
                ConstSize,
                D,
            ],
            Ret::Integer,
            true,
        ),
        id::GET_STACKID if tracing(prog_type) => {
            p([Ctx, MapPtr, Anything, D, D], Ret::Integer, true)
        }
        id::GET_STACK if tracing(prog_type) => p(
            [
                Ctx,
                UninitMem { nullable: false },
                ConstSizeOrZero,
                Anything,
                D,
            ],
            Ret::Integer,
            true,
        ),
        id::CURRENT_TASK_UNDER_CGROUP if tracing(prog_type) => {
            p([MapPtr, Anything, D, D, D], Ret::Integer, false)
        }
        id::SKB_UNDER_CGROUP if skb(prog_type) && prog_type != BPF_PROG_TYPE_SOCKET_FILTER => {
            p([Ctx, MapPtr, Anything, D, D], Ret::Integer, false)
        }
        // Every program type that runs attached to a cgroup, and tracing ones
        // reaching cgroup storage through an attached program.
        id::GET_LOCAL_STORAGE => p([MapPtr, Anything, D, D, D], Ret::MapValueOrNull, false),
        id::GET_CURRENT_TASK_BTF if tracing(prog_type) || prog_type == BPF_PROG_TYPE_SYSCALL => {
            p([D; 5], Ret::Integer, true)
        }
        // The registry offers it to every type whose loader has CAP_PERFMON;
        // the caller refuses it in programs that may not sleep.
        id::COPY_FROM_USER => p(
            [
                UninitMem { nullable: false },
                ConstSizeOrZero,
                Anything,
                D,
                D,
            ],
            Ret::Integer,
            false,
        ),
        id::COPY_FROM_USER_TASK => p(
            [
                UninitMem { nullable: false },
                ConstSizeOrZero,
                Anything,
                BtfId { obj: "task_struct" },
                Anything,
            ],
            Ret::Integer,
            true,
        ),
        // Sockets.
        id::SK_LOOKUP_TCP | id::SK_LOOKUP_UDP | id::SKC_LOOKUP_TCP if sk_lookup(prog_type) => {
            let t = if id == id::SKC_LOOKUP_TCP {
                SockKind::SockCommon
            } else {
                SockKind::Sock
            };
            // The tuple may be in the packet (every variant's `pkt_access`).
            Proto {
                pkt_access: true,
                ..p(
                    [Ctx, Mem { nullable: false }, ConstSize, Anything, Anything],
                    Ret::SockOrNull(t),
                    false,
                )
            }
        }
        id::SK_RELEASE if sk_lookup(prog_type) => p(
            [BtfIdSockCommon { release: true }, D, D, D, D],
            Ret::Integer,
            false,
        ),
        id::SK_FULLSOCK | id::TCP_SOCK | id::GET_LISTENER_SOCK
            if matches!(
                prog_type,
                BPF_PROG_TYPE_CGROUP_SKB | BPF_PROG_TYPE_SCHED_CLS | BPF_PROG_TYPE_SCHED_ACT
            ) || (id != id::GET_LISTENER_SOCK && prog_type == BPF_PROG_TYPE_SOCK_OPS) =>
        {
            let t = if id == id::TCP_SOCK {
                SockKind::TcpSock
            } else {
                SockKind::Sock
            };
            p([SockCommon, D, D, D, D], Ret::SockOrNull(t), false)
        }
        id::SK_STORAGE_GET | id::SK_STORAGE_DELETE if sk_storage(prog_type) => {
            if id == id::SK_STORAGE_GET {
                p(
                    [
                        MapPtr,
                        BtfIdSockCommon { release: false },
                        MapValueOrNull,
                        Anything,
                        D,
                    ],
                    Ret::MapValueOrNull,
                    false,
                )
            } else {
                p(
                    [MapPtr, BtfIdSockCommon { release: false }, D, D, D],
                    Ret::Integer,
                    false,
                )
            }
        }
        id::SOCK_MAP_UPDATE | id::SOCK_HASH_UPDATE if prog_type == BPF_PROG_TYPE_SOCK_OPS => {
            p([Ctx, MapPtr, MapKey, Anything, D], Ret::Integer, false)
        }
        id::SK_REDIRECT_MAP | id::SK_REDIRECT_HASH if prog_type == BPF_PROG_TYPE_SK_SKB => {
            let key = if id == id::SK_REDIRECT_MAP {
                Anything
            } else {
                MapKey
            };
            p([Ctx, MapPtr, key, Anything, D], Ret::Integer, false)
        }
        id::MSG_REDIRECT_MAP | id::MSG_REDIRECT_HASH if prog_type == BPF_PROG_TYPE_SK_MSG => {
            let key = if id == id::MSG_REDIRECT_MAP {
                Anything
            } else {
                MapKey
            };
            p([Ctx, MapPtr, key, Anything, D], Ret::Integer, false)
        }
        // The BTF casts of a socket (CAP_PERFMON).
        id::SKC_TO_TCP6_SOCK..=id::SKC_TO_UDP6_SOCK | id::SKC_TO_UNIX_SOCK
            if privileged && sk_base(prog_type) =>
        {
            p(
                [BtfIdSockCommon { release: false }, D, D, D, D],
                Ret::SockOrNull(SockKind::BtfId),
                false,
            )
        }
        id::SK_SELECT_REUSEPORT if prog_type == BPF_PROG_TYPE_SK_REUSEPORT => {
            p([Ctx, MapPtr, MapKey, Anything, D], Ret::Integer, false)
        }
        _ => return None,
    })
}

/// Program types with `bpf_sk_lookup_*` and `bpf_sk_release`.
fn sk_lookup(prog_type: u32) -> bool {
    matches!(
        prog_type,
        BPF_PROG_TYPE_SCHED_CLS
            | BPF_PROG_TYPE_SCHED_ACT
            | BPF_PROG_TYPE_XDP
            | BPF_PROG_TYPE_CGROUP_SKB
            | BPF_PROG_TYPE_SK_SKB
            | BPF_PROG_TYPE_CGROUP_SOCK_ADDR
    )
}

/// Program types with `bpf_sk_storage_{get,delete}`.
fn sk_storage(prog_type: u32) -> bool {
    matches!(
        prog_type,
        BPF_PROG_TYPE_SCHED_CLS
            | BPF_PROG_TYPE_SCHED_ACT
            | BPF_PROG_TYPE_CGROUP_SKB
            | BPF_PROG_TYPE_CGROUP_SOCK
            | BPF_PROG_TYPE_CGROUP_SOCK_ADDR
            | BPF_PROG_TYPE_SOCK_OPS
            | BPF_PROG_TYPE_SK_MSG
            | 25 /* cgroup_sockopt */
    )
}

/// Program types with `bpf_sk_base_func_proto`'s socket casts.
fn sk_base(prog_type: u32) -> bool {
    matches!(
        prog_type,
        BPF_PROG_TYPE_SOCKET_FILTER
            | BPF_PROG_TYPE_SCHED_CLS
            | BPF_PROG_TYPE_SCHED_ACT
            | BPF_PROG_TYPE_XDP
            | BPF_PROG_TYPE_CGROUP_SKB
            | BPF_PROG_TYPE_CGROUP_SOCK
            | BPF_PROG_TYPE_LWT_IN
            ..=BPF_PROG_TYPE_LWT_XMIT
                | BPF_PROG_TYPE_SOCK_OPS
                | BPF_PROG_TYPE_SK_SKB
                | BPF_PROG_TYPE_SK_MSG
                | BPF_PROG_TYPE_CGROUP_SOCK_ADDR
                | BPF_PROG_TYPE_LWT_SEG6LOCAL
                | BPF_PROG_TYPE_SK_REUSEPORT
                | BPF_PROG_TYPE_FLOW_DISSECTOR
                | 25
                | BPF_PROG_TYPE_TRACING
                | BPF_PROG_TYPE_LSM
                | BPF_PROG_TYPE_SK_LOOKUP
    )
}

/// The kernel socket a `bpf_skc_to_*` cast gives.
pub fn skc_to_obj(id: i32) -> Option<crate::kfuncs::Obj> {
    use crate::kfuncs::Obj;
    Some(match id {
        id::SKC_TO_TCP6_SOCK => Obj::Tcp6Sock,
        id::SKC_TO_TCP_SOCK => Obj::TcpSock,
        id::SKC_TO_TCP_TIMEWAIT_SOCK => Obj::TcpTimewaitSock,
        id::SKC_TO_TCP_REQUEST_SOCK => Obj::TcpRequestSock,
        id::SKC_TO_UDP6_SOCK => Obj::Udp6Sock,
        id::SKC_TO_UNIX_SOCK => Obj::UnixSock,
        _ => return None,
    })
}

/// Helpers whose result is a new reference (`is_acquire_function`).
pub fn acquires(id: i32) -> bool {
    matches!(
        id,
        id::SK_LOOKUP_TCP | id::SK_LOOKUP_UDP | id::SKC_LOOKUP_TCP
    )
}

/// Helpers whose result is their argument seen as another type, sharing
/// its reference (`is_ptr_cast_function`).
pub fn is_ptr_cast(id: i32) -> bool {
    matches!(id, id::SK_FULLSOCK | id::TCP_SOCK) || skc_to_obj(id).is_some()
}

/// Helpers whose result is at most their buffer size, or a negative errno
/// (`do_refine_retval_range`): `bpf_get_stack`.
pub fn returns_size_or_errno(id: i32) -> bool {
    id == id::GET_STACK
}

/// `bpf_get_local_storage` returns the storage itself, never NULL.
pub fn never_null(id: i32) -> bool {
    id == id::GET_LOCAL_STORAGE
}

/// Whether a load of `size` bytes at `off` is allowed through a socket
/// pointer of type `t` (`bpf_sock_is_valid_access` and the common, TCP and
/// AF_XDP variants, on the UAPI layouts).
pub fn sock_access_ok(t: RegType, off: i32, size: i32) -> bool {
    // struct bpf_sock
    const SOCK_SIZE: i32 = 80;
    const TYPE: i32 = 8;
    const PRIORITY_END: i32 = 24;
    const SRC_IP4: i32 = 24;
    const SRC_IP6: i32 = 28;
    const SRC_PORT: i32 = 44;
    const DST_PORT: i32 = 48;
    const DST_IP4: i32 = 52;
    const DST_IP6: i32 = 56;
    const STATE: i32 = 72;
    const RX_QUEUE_MAPPING: i32 = 76;
    // struct bpf_tcp_sock
    const TCP_SOCK_END: i32 = 112;
    const BYTES_RECEIVED: i32 = 80;
    const BYTES_ACKED: i32 = 88;
    let narrow_ok = |off: i32, size: i32, field: i32| {
        // bpf_ctx_narrow_access_ok: a power of two inside the field.
        matches!(size, 1 | 2 | 4 | 8) && size <= field && off % field + size <= field
    };
    let sock = |off: i32, size: i32| -> bool {
        if !(0..SOCK_SIZE).contains(&off) || off % size != 0 {
            return false;
        }
        let f4 = off - off % 4;
        match f4 {
            STATE | 4 | TYPE | 12 | SRC_PORT | RX_QUEUE_MAPPING => narrow_ok(off, size, 4),
            SRC_IP4 | DST_IP4 => narrow_ok(off, size, 4),
            o if (SRC_IP6..SRC_IP6 + 16).contains(&o) || (DST_IP6..DST_IP6 + 16).contains(&o) => {
                narrow_ok(off, size, 4)
            }
            DST_PORT => {
                // A word load still works (backward compatibility); else the
                // 2-byte field.
                if off == DST_PORT && size == 4 {
                    true
                } else {
                    off < DST_PORT + 2 && narrow_ok(off, size, 2)
                }
            }
            _ => size == 4 && off % 4 == 0,
        }
    };
    match t {
        RegType::Sock => sock(off, size),
        RegType::SockCommon => !(TYPE..PRIORITY_END).contains(&off) && sock(off, size),
        RegType::TcpSock => {
            if !(0..TCP_SOCK_END).contains(&off) || off % size != 0 {
                return false;
            }
            if off == BYTES_RECEIVED || off == BYTES_ACKED {
                size == 8
            } else {
                size == 4
            }
        }
        RegType::XdpSock => off == 0 && size == 4,
        _ => false,
    }
}
