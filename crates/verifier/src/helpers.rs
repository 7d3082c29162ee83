//! Helper prototypes (`struct bpf_func_proto`) for the helpers bpfvm's
//! runtime provides: what each argument register must hold and what R0 holds
//! after the call.

/// `enum bpf_arg_type`, the subset these helpers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// `ARG_DONTCARE`: not checked.
    DontCare,
    #[doc(alias = "ARG_ANYTHING")]
    Anything,
    #[doc(alias = "ARG_CONST_MAP_PTR")]
    MapPtr,
    #[doc(alias = "ARG_PTR_TO_MAP_KEY")]
    MapKey,
    #[doc(alias = "ARG_PTR_TO_MAP_VALUE")]
    MapValue,
    /// `ARG_PTR_TO_MAP_VALUE | MEM_UNINIT`: the helper writes the value.
    MapValueUninit,
    /// `ARG_PTR_TO_MEM | MEM_RDONLY`: initialised memory the helper reads;
    /// sized by the next argument.
    Mem { nullable: bool },
    /// `ARG_PTR_TO_MEM | MEM_UNINIT`: memory the helper writes.
    UninitMem { nullable: bool },
    #[doc(alias = "ARG_CONST_SIZE")]
    ConstSize,
    #[doc(alias = "ARG_CONST_SIZE_OR_ZERO")]
    ConstSizeOrZero,
    #[doc(alias = "ARG_CONST_ALLOC_SIZE_OR_ZERO")]
    AllocSize,
    #[doc(alias = "ARG_PTR_TO_CTX")]
    Ctx,
    /// `ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE`
    RingbufMemRelease,
    #[doc(alias = "ARG_PTR_TO_FUNC")]
    Func,
    #[doc(alias = "ARG_PTR_TO_STACK_OR_NULL")]
    StackOrNull,
    #[doc(alias = "ARG_PTR_TO_CONST_STR")]
    ConstStr,
    /// `ARG_PTR_TO_SOCK_COMMON`: a socket of any kind, not NULL.
    #[doc(alias = "ARG_PTR_TO_SOCK_COMMON")]
    SockCommon,
    /// `ARG_PTR_TO_BTF_ID_SOCK_COMMON`, released when `release`
    /// (`OBJ_RELEASE`: `bpf_sk_release`).
    #[doc(alias = "ARG_PTR_TO_BTF_ID_SOCK_COMMON")]
    BtfIdSockCommon { release: bool },
    /// `ARG_PTR_TO_MAP_VALUE | PTR_MAYBE_NULL`: an initial value, or NULL.
    MapValueOrNull,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    #[doc(alias = "RET_INTEGER")]
    Integer,
    #[doc(alias = "RET_VOID")]
    Void,
    #[doc(alias = "RET_PTR_TO_MAP_VALUE_OR_NULL")]
    MapValueOrNull,
    /// `RET_PTR_TO_RINGBUF_MEM_OR_NULL`, acquires a reference.
    RingbufMemOrNull,
    /// `RET_PTR_TO_SOCKET_OR_NULL` (and the other socket kinds).
    #[doc(alias = "RET_PTR_TO_SOCKET_OR_NULL")]
    SockOrNull(crate::reg::RegType),
}

/// What a helper does beyond its arguments and return value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    None,
    /// Changes the packet: every packet pointer becomes invalid.
    ChangesPkt,
    TailCall,
    /// Calls the PTR_TO_FUNC argument (bpf_loop, for_each_map_elem).
    Callback,
}

#[derive(Clone, Copy, Debug)]
pub struct Proto {
    pub args: [Arg; 5],
    pub ret: Ret,
    pub effect: Effect,
    pub gpl_only: bool,
}

const D: Arg = Arg::DontCare;

const fn p(args: [Arg; 5], ret: Ret) -> Proto {
    Proto {
        args,
        ret,
        effect: Effect::None,
        gpl_only: false,
    }
}

/// The prototype of helper `id`, if bpfvm's runtime provides it.
pub fn proto(id: i32) -> Option<Proto> {
    use Arg::*;
    let none = [D; 5];
    let probe = Proto {
        gpl_only: true,
        ..p(
            [
                UninitMem { nullable: false },
                ConstSizeOrZero,
                Anything,
                D,
                D,
            ],
            Ret::Integer,
        )
    };
    Some(match id {
        1 => p([MapPtr, MapKey, D, D, D], Ret::MapValueOrNull),
        2 => p([MapPtr, MapKey, MapValue, Anything, D], Ret::Integer),
        3 => p([MapPtr, MapKey, D, D, D], Ret::Integer),
        4 | 45 | 112..=115 => probe,
        5 | 7 | 8 | 14 | 15 | 42 | 118 | 125 | 160 => p(none, Ret::Integer),
        6 => Proto {
            gpl_only: true,
            ..p([Mem { nullable: false }, ConstSize, D, D, D], Ret::Integer)
        },
        12 => Proto {
            effect: Effect::TailCall,
            ..p([Ctx, MapPtr, Anything, D, D], Ret::Void)
        },
        16 => p(
            [UninitMem { nullable: false }, ConstSize, D, D, D],
            Ret::Integer,
        ),
        23 => p([Anything, Anything, D, D, D], Ret::Integer),
        9 => Proto {
            effect: Effect::ChangesPkt,
            ..p(
                [Ctx, Anything, Mem { nullable: false }, ConstSize, Anything],
                Ret::Integer,
            )
        },
        26 => p(
            [Ctx, Anything, UninitMem { nullable: false }, ConstSize, D],
            Ret::Integer,
        ),
        28 => p(
            [
                Mem { nullable: true },
                ConstSizeOrZero,
                Mem { nullable: true },
                ConstSizeOrZero,
                Anything,
            ],
            Ret::Integer,
        ),
        44 | 54 | 65 => Proto {
            effect: Effect::ChangesPkt,
            ..p([Ctx, Anything, D, D, D], Ret::Integer)
        },
        51 => p([MapPtr, Anything, Anything, D, D], Ret::Integer),
        87 => p([MapPtr, MapValue, Anything, D, D], Ret::Integer),
        88 | 89 => p([MapPtr, MapValueUninit, D, D, D], Ret::Integer),
        130 => p(
            [
                MapPtr,
                Mem { nullable: false },
                ConstSizeOrZero,
                Anything,
                D,
            ],
            Ret::Integer,
        ),
        131 => p([MapPtr, AllocSize, Anything, D, D], Ret::RingbufMemOrNull),
        132 | 133 => p([RingbufMemRelease, Anything, D, D, D], Ret::Void),
        134 => p([MapPtr, Anything, D, D, D], Ret::Integer),
        164 => Proto {
            effect: Effect::Callback,
            ..p([MapPtr, Func, StackOrNull, Anything, D], Ret::Integer)
        },
        165 => p(
            [
                UninitMem { nullable: true },
                ConstSizeOrZero,
                ConstStr,
                Mem { nullable: true },
                ConstSizeOrZero,
            ],
            Ret::Integer,
        ),
        181 => Proto {
            effect: Effect::Callback,
            ..p([Anything, Func, StackOrNull, Anything, D], Ret::Integer)
        },
        182 => p(
            [Mem { nullable: false }, ConstSize, ConstStr, D, D],
            Ret::Integer,
        ),
        _ => return None,
    })
}

/// Program types a helper may be called from (`get_func_proto` per type).
pub fn allowed_in(id: i32, prog_type: u32, privileged: bool) -> bool {
    use crate::prog::*;
    let tracing = matches!(
        prog_type,
        BPF_PROG_TYPE_KPROBE
            | BPF_PROG_TYPE_TRACEPOINT
            | BPF_PROG_TYPE_PERF_EVENT
            | BPF_PROG_TYPE_RAW_TRACEPOINT
    );
    let skb = matches!(prog_type, BPF_PROG_TYPE_SCHED_CLS | BPF_PROG_TYPE_SCHED_ACT);
    // Base helpers the kernel offers only with CAP_BPF (spin locks, jiffies,
    // per-cpu pointers, timers, for_each/loop, strncmp/strtol, kptrs,
    // dynptrs) or CAP_PERFMON (printk family, probe_read_*, current task).
    const NEEDS_CAPS: &[i32] = &[
        6, 35, 93, 94, 105, 106, 112, 113, 114, 115, 118, 149, 153, 154, 158, 164, 165, 169, 170,
        171, 172, 175, 177, 181, 182, 194, 195, 197, 198, 199, 200, 201, 202, 203, 209,
    ];
    if !privileged && NEEDS_CAPS.contains(&id) {
        return false;
    }
    match id {
        4 | 45 | 14 | 15 | 16 => tracing || prog_type == BPF_PROG_TYPE_SYSCALL,
        23 => skb || prog_type == BPF_PROG_TYPE_XDP,
        9 => skb,
        26 => {
            skb || matches!(
                prog_type,
                BPF_PROG_TYPE_SOCKET_FILTER | BPF_PROG_TYPE_CGROUP_SKB
            )
        }
        28 => skb || prog_type == BPF_PROG_TYPE_XDP || prog_type == BPF_PROG_TYPE_SOCKET_FILTER,
        44 | 54 | 65 | 51 => prog_type == BPF_PROG_TYPE_XDP,
        _ => true,
    }
}
