//! The helper registry: one row per kernel helper (`enum bpf_func_id`) with its
//! name, the prototype bpfvm's verifier checks calls against, the program types
//! that may call it and what an unprivileged loader lacks to call it.
//!
//! The disassemblers take names from here, the verifier prototypes and
//! permissions, and the runtime (crates/bpfvm) registers implementations keyed
//! by the same ids (its tests check that every implemented helper has a row
//! with a prototype, under the same name). The facts are Linux's: names and ids
//! from `__BPF_FUNC_MAPPER` (uapi/linux/bpf.h), prototypes from the
//! `bpf_func_proto` definitions, permissions from each program type's
//! `get_func_proto`, as the Linux 6.18 host the tests record answers from
//! has them (the `helper_types_kernel` test in crates/verifier compares every
//! program type with that kernel's answers, `tests/golden/helper_types.txt`).
//!
//! A helper may have several rows when program types see different prototypes
//! under one id (`bpf_get_socket_cookie` takes a context in networking programs
//! and a BTF socket pointer in tracing ones); [`helper`] picks the row for a
//! program type.

/// `enum bpf_arg_type`, the subset bpfvm's verifier models.
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
    /// `ARG_PTR_TO_MEM (| MEM_RDONLY)`: initialised memory the helper reads;
    /// sized by the next argument.
    Mem { nullable: bool },
    /// `ARG_PTR_TO_MEM | MEM_UNINIT | MEM_WRITE`: memory the helper writes.
    UninitMem { nullable: bool },
    /// `ARG_PTR_TO_FIXED_SIZE_MEM | MEM_WRITE | MEM_ALIGNED` (`| MEM_UNINIT`
    /// when the helper does not read it first): `size` bytes the helper writes.
    FixedMem { size: u32, uninit: bool },
    #[doc(alias = "ARG_CONST_SIZE")]
    ConstSize,
    #[doc(alias = "ARG_CONST_SIZE_OR_ZERO")]
    ConstSizeOrZero,
    #[doc(alias = "ARG_CONST_ALLOC_SIZE_OR_ZERO")]
    AllocSize,
    #[doc(alias = "ARG_PTR_TO_CTX")]
    Ctx,
    #[doc(alias = "ARG_PTR_TO_CTX_OR_NULL")]
    CtxOrNull,
    /// `ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE`
    RingbufMemRelease,
    #[doc(alias = "ARG_PTR_TO_FUNC")]
    Func,
    #[doc(alias = "ARG_PTR_TO_STACK_OR_NULL")]
    StackOrNull,
    #[doc(alias = "ARG_PTR_TO_CONST_STR")]
    ConstStr,
    /// `ARG_PTR_TO_SPIN_LOCK`: the `struct bpf_spin_lock` of a map value.
    #[doc(alias = "ARG_PTR_TO_SPIN_LOCK")]
    SpinLock,
    /// `ARG_PTR_TO_SOCK_COMMON`: a socket of any kind, not NULL.
    #[doc(alias = "ARG_PTR_TO_SOCK_COMMON")]
    SockCommon,
    /// `ARG_PTR_TO_BTF_ID_SOCK_COMMON`, released when `release`
    /// (`OBJ_RELEASE`: `bpf_sk_release`).
    #[doc(alias = "ARG_PTR_TO_BTF_ID_SOCK_COMMON")]
    BtfIdSockCommon { release: bool },
    /// `ARG_PTR_TO_MAP_VALUE | PTR_MAYBE_NULL`: an initial value, or NULL.
    MapValueOrNull,
    /// `ARG_PTR_TO_BTF_ID`: a pointer to the kernel struct named `obj`
    /// (`task_struct` for `bpf_get_task_stack`, `seq_file` for `bpf_seq_*`).
    #[doc(alias = "ARG_PTR_TO_BTF_ID")]
    BtfId { obj: &'static str },
    /// `ARG_PTR_TO_DYNPTR | DYNPTR_TYPE_* | MEM_UNINIT`: stack where the
    /// helper makes a dynptr of type `kind` (`enum bpf_dynptr_type`).
    #[doc(alias = "ARG_PTR_TO_DYNPTR")]
    DynptrUninit { kind: u8 },
    /// `ARG_PTR_TO_DYNPTR`: an initialised dynptr on the stack, of type `kind`
    /// (0: any type); `release` (`OBJ_RELEASE`): the helper ends it.
    Dynptr { kind: u8, release: bool },
    /// `ARG_KPTR_XCHG_DEST`: a map value pointer at a referenced kptr field.
    #[doc(alias = "ARG_KPTR_XCHG_DEST")]
    KptrXchgDest,
    /// `ARG_PTR_TO_BTF_ID_OR_NULL | OBJ_RELEASE` of `bpf_kptr_xchg`: NULL, or
    /// a referenced pointer of the field's type, whose reference moves into
    /// the field.
    KptrXchgValue,
}

/// `enum bpf_dynptr_type`
pub const BPF_DYNPTR_TYPE_LOCAL: u8 = 1;
pub const BPF_DYNPTR_TYPE_RINGBUF: u8 = 2;
pub const BPF_DYNPTR_TYPE_SKB: u8 = 3;
pub const BPF_DYNPTR_TYPE_XDP: u8 = 4;

/// `dynptr_type_str`: a dynptr type as the verifier names it.
pub fn dynptr_type_str(kind: u8) -> &'static str {
    match kind {
        BPF_DYNPTR_TYPE_LOCAL => "local",
        BPF_DYNPTR_TYPE_RINGBUF => "ringbuf",
        BPF_DYNPTR_TYPE_SKB => "skb",
        BPF_DYNPTR_TYPE_XDP => "xdp",
        _ => "<unknown>",
    }
}

/// The socket pointer a socket helper returns (`RET_PTR_TO_*_OR_NULL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockKind {
    #[doc(alias = "PTR_TO_SOCK_COMMON")]
    SockCommon,
    #[doc(alias = "PTR_TO_SOCKET")]
    Sock,
    #[doc(alias = "PTR_TO_TCP_SOCK")]
    TcpSock,
    /// `PTR_TO_BTF_ID` of a kernel socket (the `bpf_skc_to_*` casts).
    #[doc(alias = "PTR_TO_BTF_ID")]
    BtfId,
}

/// `enum bpf_return_type`, the subset bpfvm's verifier models.
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
    SockOrNull(SockKind),
    /// `RET_PTR_TO_DYNPTR_MEM_OR_NULL`: memory of a dynptr, of the size the
    /// `ARG_CONST_ALLOC_SIZE_OR_ZERO` argument gives.
    #[doc(alias = "RET_PTR_TO_DYNPTR_MEM_OR_NULL")]
    DynptrMemOrNull,
    /// `RET_PTR_TO_BTF_ID_OR_NULL` of `bpf_kptr_xchg`: the field's old value,
    /// of the field's type, with a new reference.
    KptrOrNull,
}

/// What a helper does beyond its arguments and return value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    None,
    /// Changes the packet: every packet pointer becomes invalid
    /// (`bpf_helper_changes_pkt_data`).
    ChangesPkt,
    /// A tail call (the called program may change the packet too).
    TailCall,
    /// Calls the PTR_TO_FUNC argument (bpf_loop, for_each_map_elem,
    /// user_ringbuf_drain).
    Callback,
}

/// `struct bpf_func_proto`, as far as bpfvm's verifier reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proto {
    pub args: [Arg; 5],
    pub ret: Ret,
    pub effect: Effect,
    pub gpl_only: bool,
    /// `pkt_access`: packet pointers may be passed where memory is expected.
    pub pkt_access: bool,
}

impl Proto {
    /// A prototype with no effect, not GPL-only, without packet access.
    pub const fn new(args: [Arg; 5], ret: Ret) -> Proto {
        Proto {
            args,
            ret,
            effect: Effect::None,
            gpl_only: false,
            pkt_access: false,
        }
    }
    const fn gpl(mut self) -> Proto {
        self.gpl_only = true;
        self
    }
    const fn pkt(mut self) -> Proto {
        self.pkt_access = true;
        self
    }
    const fn effect(mut self, e: Effect) -> Proto {
        self.effect = e;
        self
    }
    /// Packet pointers are invalid after the call.
    pub fn changes_pkt(&self) -> bool {
        matches!(self.effect, Effect::ChangesPkt | Effect::TailCall)
    }
}

/// What a loader without capabilities lacks to call a helper that program
/// types reach through `bpf_base_func_proto` (only socket filters and
/// cgroup/skb programs load without them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    None,
    #[doc(alias = "CAP_BPF")]
    Bpf,
    #[doc(alias = "CAP_PERFMON")]
    Perfmon,
}

/// One helper, for a set of program types.
#[derive(Clone, Copy, Debug)]
pub struct HelperDef {
    /// `BPF_FUNC_*`
    pub id: u32,
    /// As the kernel prints it (`bpf_map_lookup_elem`).
    pub name: &'static str,
    /// `None` where bpfvm's verifier does not model the arguments yet.
    pub proto: Option<Proto>,
    /// Bit `1 << BPF_PROG_TYPE_*` for each program type that may call it.
    pub prog_types: u64,
    pub cap: Cap,
    /// A further condition on `(prog_type, expected_attach_type)`.
    pub attach: Option<fn(u32, u32) -> bool>,
}

impl HelperDef {
    /// The program type may call the helper (capabilities aside).
    pub fn allows(&self, prog_type: u32, attach: u32) -> bool {
        prog_type < 64
            && self.prog_types & (1 << prog_type) != 0
            && self.attach.is_none_or(|f| f(prog_type, attach))
    }
}

const fn t(prog_type: u32) -> u64 {
    1 << prog_type
}

// Program types (`enum bpf_prog_type`) as bits.
pub const SOCKET_FILTER: u64 = t(uapi::BPF_PROG_TYPE_SOCKET_FILTER);
pub const KPROBE: u64 = t(uapi::BPF_PROG_TYPE_KPROBE);
pub const TC: u64 = t(uapi::BPF_PROG_TYPE_SCHED_CLS) | t(uapi::BPF_PROG_TYPE_SCHED_ACT);
pub const TRACEPOINT: u64 = t(uapi::BPF_PROG_TYPE_TRACEPOINT);
pub const XDP: u64 = t(uapi::BPF_PROG_TYPE_XDP);
pub const PERF_EVENT: u64 = t(uapi::BPF_PROG_TYPE_PERF_EVENT);
pub const CGROUP_SKB: u64 = t(uapi::BPF_PROG_TYPE_CGROUP_SKB);
pub const CGROUP_SOCK: u64 = t(uapi::BPF_PROG_TYPE_CGROUP_SOCK);
pub const LWT_IN: u64 = t(uapi::BPF_PROG_TYPE_LWT_IN);
pub const LWT_OUT: u64 = t(uapi::BPF_PROG_TYPE_LWT_OUT);
pub const LWT_XMIT: u64 = t(uapi::BPF_PROG_TYPE_LWT_XMIT);
pub const SOCK_OPS: u64 = t(uapi::BPF_PROG_TYPE_SOCK_OPS);
pub const SK_SKB: u64 = t(uapi::BPF_PROG_TYPE_SK_SKB);
pub const CGROUP_DEVICE: u64 = t(uapi::BPF_PROG_TYPE_CGROUP_DEVICE);
pub const SK_MSG: u64 = t(uapi::BPF_PROG_TYPE_SK_MSG);
pub const RAW_TRACEPOINT: u64 = t(uapi::BPF_PROG_TYPE_RAW_TRACEPOINT);
pub const CGROUP_SOCK_ADDR: u64 = t(uapi::BPF_PROG_TYPE_CGROUP_SOCK_ADDR);
pub const LWT_SEG6LOCAL: u64 = t(uapi::BPF_PROG_TYPE_LWT_SEG6LOCAL);
pub const LIRC_MODE2: u64 = t(uapi::BPF_PROG_TYPE_LIRC_MODE2);
pub const SK_REUSEPORT: u64 = t(uapi::BPF_PROG_TYPE_SK_REUSEPORT);
pub const FLOW_DISSECTOR: u64 = t(uapi::BPF_PROG_TYPE_FLOW_DISSECTOR);
pub const CGROUP_SYSCTL: u64 = t(uapi::BPF_PROG_TYPE_CGROUP_SYSCTL);
pub const RAW_TRACEPOINT_WRITABLE: u64 = t(uapi::BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE);
pub const CGROUP_SOCKOPT: u64 = t(uapi::BPF_PROG_TYPE_CGROUP_SOCKOPT);
pub const TRACING: u64 = t(uapi::BPF_PROG_TYPE_TRACING);
pub const STRUCT_OPS: u64 = t(uapi::BPF_PROG_TYPE_STRUCT_OPS);
pub const EXT: u64 = t(uapi::BPF_PROG_TYPE_EXT);
pub const LSM: u64 = t(uapi::BPF_PROG_TYPE_LSM);
pub const SK_LOOKUP: u64 = t(uapi::BPF_PROG_TYPE_SK_LOOKUP);
pub const SYSCALL: u64 = t(uapi::BPF_PROG_TYPE_SYSCALL);
pub const NETFILTER: u64 = t(uapi::BPF_PROG_TYPE_NETFILTER);

/// Every LWT type.
pub const LWT: u64 = LWT_IN | LWT_OUT | LWT_XMIT | LWT_SEG6LOCAL;
/// Types whose helpers fall back to `bpf_sk_base_func_proto`.
pub const SK_BASE: u64 = SOCKET_FILTER
    | TC
    | XDP
    | CGROUP_SKB
    | LWT
    | SOCK_OPS
    | SK_SKB
    | SK_MSG
    | CGROUP_SOCK_ADDR
    | SK_REUSEPORT
    | FLOW_DISSECTOR
    | SK_LOOKUP;
/// Types whose helpers fall back to `bpf_tracing_func_proto`.
pub const TRACE: u64 = KPROBE
    | TRACEPOINT
    | PERF_EVENT
    | RAW_TRACEPOINT
    | RAW_TRACEPOINT_WRITABLE
    | TRACING
    | LSM
    | SYSCALL;
/// `tracing_prog_func_proto`'s own types.
pub const BTF_TRACE: u64 = TRACING | LSM | SYSCALL;
/// cgroup hooks with a current process (`cgroup_current_func_proto`).
pub const CG_CURRENT: u64 =
    CGROUP_SOCK | CGROUP_SOCK_ADDR | CGROUP_DEVICE | CGROUP_SYSCTL | CGROUP_SOCKOPT;
/// cgroup hooks (`cgroup_common_func_proto`).
pub const CG_COMMON: u64 = CG_CURRENT | CGROUP_SKB | SOCK_OPS;
/// The `bpf_skc_to_*` casts: sk_base types but sk_reuseport, and BTF tracing.
pub const SKC_TO: u64 = (SK_BASE & !SK_REUSEPORT) | BTF_TRACE;
/// Every type reaching `bpf_base_func_proto`.
pub const BASE: u64 = SK_BASE | TRACE | CG_CURRENT | NETFILTER | STRUCT_OPS | LIRC_MODE2 | EXT;

use crate::uapi;
use Arg::*;
const D: Arg = DontCare;
const A: Arg = Anything;
const NOARGS: [Arg; 5] = [D; 5];
const INT: Ret = Ret::Integer;
const MEM: Arg = Mem { nullable: false };
const MEM_OR_NULL: Arg = Mem { nullable: true };
const UMEM: Arg = UninitMem { nullable: false };

const SEQ_FILE: Arg = BtfId { obj: "seq_file" };
const DYNPTR_ANY: Arg = Dynptr {
    kind: 0,
    release: false,
};
const DYNPTR_RELEASE_RINGBUF: Arg = Dynptr {
    kind: BPF_DYNPTR_TYPE_RINGBUF,
    release: true,
};
const DYNPTR_NEW_LOCAL: Arg = DynptrUninit {
    kind: BPF_DYNPTR_TYPE_LOCAL,
};
const DYNPTR_NEW_RINGBUF: Arg = DynptrUninit {
    kind: BPF_DYNPTR_TYPE_RINGBUF,
};

const fn p(args: [Arg; 5]) -> Option<Proto> {
    Some(Proto::new(args, INT))
}
const fn some(p: Proto) -> Option<Proto> {
    Some(p)
}
const fn ctx_only() -> Option<Proto> {
    p([Ctx, D, D, D, D])
}
const fn ctx_changes(args: [Arg; 5]) -> Option<Proto> {
    some(Proto::new(args, INT).effect(Effect::ChangesPkt))
}
const PROBE: Proto = Proto::new([UMEM, ConstSizeOrZero, A, D, D], INT).gpl();
const STRTOL: Proto = Proto::new(
    [
        MEM,
        ConstSize,
        A,
        FixedMem {
            size: 8,
            uninit: true,
        },
        D,
    ],
    INT,
);
const CHECK_MTU: Proto = Proto::new(
    [
        Ctx,
        A,
        FixedMem {
            size: 4,
            uninit: false,
        },
        A,
        A,
    ],
    INT,
)
.gpl();
const PERF_OUTPUT: Proto = Proto::new([Ctx, MapPtr, A, MEM, ConstSizeOrZero], INT).gpl();

/// A row: most helpers have one prototype for every type allowed.
const fn h(id: u32, name: &'static str, proto: Option<Proto>, prog_types: u64) -> HelperDef {
    HelperDef {
        id,
        name,
        proto,
        prog_types,
        cap: Cap::None,
        attach: None,
    }
}
const fn base_bpf(id: u32, name: &'static str, proto: Option<Proto>, extra: u64) -> HelperDef {
    HelperDef {
        cap: Cap::Bpf,
        ..h(id, name, proto, BASE | extra)
    }
}
const fn base_perfmon(id: u32, name: &'static str, proto: Option<Proto>, extra: u64) -> HelperDef {
    HelperDef {
        cap: Cap::Perfmon,
        ..h(id, name, proto, BASE | extra)
    }
}
const fn attach(mut d: HelperDef, f: fn(u32, u32) -> bool) -> HelperDef {
    d.attach = Some(f);
    d
}

// `enum bpf_attach_type` values the attach rules test.
const SOCK_ADDR_TYPE: u32 = 18;
const CGROUP_SOCKOPT_TYPE: u32 = 25;
const INET4_CONNECT: u32 = 10;
const INET6_CONNECT: u32 = 11;
const SETSOCKOPT: u32 = 22;
const TRACE_ITER: u32 = 28;

/// `bpf_bind` only from connect hooks.
fn bind_attach(_: u32, attach: u32) -> bool {
    matches!(attach, INET4_CONNECT | INET6_CONNECT)
}
/// sock_addr hooks get set/getsockopt only where a socket is locked.
fn sockopt_attach(prog_type: u32, attach: u32) -> bool {
    match prog_type {
        SOCK_ADDR_TYPE => matches!(attach, 8..=11 | 14 | 15 | 19 | 20 | 29..=32 | 49..=53),
        CGROUP_SOCKOPT_TYPE => attach == SETSOCKOPT,
        _ => true,
    }
}
/// cgroup hooks that run before the socket call returns (`get_retval` /
/// `set_retval`).
fn retval_attach(_: u32, attach: u32) -> bool {
    !matches!(attach, 0 | 1 | 3 | 19 | 20 | 29..=32 | 51..=53)
}
fn iter_attach(_: u32, attach: u32) -> bool {
    attach == TRACE_ITER
}

/// Every helper Linux defines, by id (rows for one id are adjacent).
pub const HELPERS: &[HelperDef] = &[
    h(0, "bpf_unspec", None, 0),
    h(
        1,
        "bpf_map_lookup_elem",
        some(Proto::new([MapPtr, MapKey, D, D, D], Ret::MapValueOrNull).pkt()),
        BASE,
    ),
    h(
        2,
        "bpf_map_update_elem",
        some(Proto::new([MapPtr, MapKey, MapValue, A, D], INT).pkt()),
        BASE,
    ),
    h(
        3,
        "bpf_map_delete_elem",
        some(Proto::new([MapPtr, MapKey, D, D, D], INT).pkt()),
        BASE,
    ),
    h(4, "bpf_probe_read", some(PROBE), TRACE),
    h(5, "bpf_ktime_get_ns", p(NOARGS), BASE),
    base_perfmon(
        6,
        "bpf_trace_printk",
        some(Proto::new([MEM, ConstSize, D, D, D], INT).gpl()),
        0,
    ),
    h(7, "bpf_get_prandom_u32", p(NOARGS), BASE),
    h(8, "bpf_get_smp_processor_id", p(NOARGS), BASE),
    h(
        9,
        "bpf_skb_store_bytes",
        ctx_changes([Ctx, A, MEM, ConstSize, A]),
        TC | SK_SKB | LWT_XMIT,
    ),
    h(
        10,
        "bpf_l3_csum_replace",
        ctx_changes([Ctx, A, A, A, A]),
        TC | LWT_XMIT,
    ),
    h(
        11,
        "bpf_l4_csum_replace",
        ctx_changes([Ctx, A, A, A, A]),
        TC | LWT_XMIT,
    ),
    h(
        12,
        "bpf_tail_call",
        some(Proto::new([Ctx, MapPtr, A, D, D], Ret::Void).effect(Effect::TailCall)),
        BASE,
    ),
    h(
        13,
        "bpf_clone_redirect",
        ctx_changes([Ctx, A, A, D, D]),
        TC | LWT_XMIT,
    ),
    h(14, "bpf_get_current_pid_tgid", p(NOARGS), BASE),
    // Linux 6.18 offers the process helpers to every type (CAP_PERFMON).
    base_perfmon(15, "bpf_get_current_uid_gid", p(NOARGS), 0),
    base_perfmon(16, "bpf_get_current_comm", p([UMEM, ConstSize, D, D, D]), 0),
    h(17, "bpf_get_cgroup_classid", ctx_only(), TC | LWT),
    // Elsewhere it reads the current task's classid, without a context.
    base_perfmon(17, "bpf_get_cgroup_classid", p(NOARGS), 0),
    h(18, "bpf_skb_vlan_push", ctx_changes([Ctx, A, A, D, D]), TC),
    h(19, "bpf_skb_vlan_pop", ctx_changes([Ctx, D, D, D, D]), TC),
    h(
        20,
        "bpf_skb_get_tunnel_key",
        p([Ctx, UMEM, ConstSize, A, D]),
        TC | LWT_XMIT,
    ),
    h(
        21,
        "bpf_skb_set_tunnel_key",
        p([Ctx, MEM, ConstSize, A, D]),
        TC | LWT_XMIT,
    ),
    base_perfmon(22, "bpf_perf_event_read", p([MapPtr, A, D, D, D]), 0),
    h(23, "bpf_redirect", p([A, A, D, D, D]), TC | XDP | LWT_XMIT),
    h(24, "bpf_get_route_realm", ctx_only(), TC | LWT),
    h(
        25,
        "bpf_perf_event_output",
        some(PERF_OUTPUT),
        TRACE
            | TC
            | XDP
            | SOCKET_FILTER
            | CGROUP_SKB
            | LWT
            | SOCK_OPS
            | SK_SKB
            | SK_MSG
            | CG_CURRENT
            | SK_LOOKUP,
    ),
    h(
        26,
        "bpf_skb_load_bytes",
        p([Ctx, A, UMEM, ConstSize, D]),
        SOCKET_FILTER | CGROUP_SKB | TC | SK_SKB | FLOW_DISSECTOR | LWT | SK_REUSEPORT,
    ),
    h(
        27,
        "bpf_get_stackid",
        some(Proto::new([Ctx, MapPtr, A, D, D], INT).gpl()),
        TRACE,
    ),
    h(
        28,
        "bpf_csum_diff",
        some(
            Proto::new(
                [
                    MEM_OR_NULL,
                    ConstSizeOrZero,
                    MEM_OR_NULL,
                    ConstSizeOrZero,
                    A,
                ],
                INT,
            )
            .pkt(),
        ),
        TC | XDP | LWT,
    ),
    h(
        29,
        "bpf_skb_get_tunnel_opt",
        p([Ctx, UMEM, ConstSize, D, D]),
        TC | LWT_XMIT,
    ),
    h(
        30,
        "bpf_skb_set_tunnel_opt",
        p([Ctx, MEM, ConstSize, D, D]),
        TC | LWT_XMIT,
    ),
    h(
        31,
        "bpf_skb_change_proto",
        ctx_changes([Ctx, A, A, D, D]),
        TC,
    ),
    h(32, "bpf_skb_change_type", p([Ctx, A, D, D, D]), TC),
    h(
        33,
        "bpf_skb_under_cgroup",
        p([Ctx, MapPtr, A, D, D]),
        TC | LWT,
    ),
    h(34, "bpf_get_hash_recalc", ctx_only(), TC | LWT),
    base_perfmon(
        35,
        "bpf_get_current_task",
        some(Proto::new(NOARGS, INT).gpl()),
        TRACE,
    ),
    // Refused by the host kernel for every type (locked down).
    h(
        36,
        "bpf_probe_write_user",
        some(Proto::new([A, MEM, ConstSize, D, D], INT).gpl()),
        0,
    ),
    base_perfmon(
        37,
        "bpf_current_task_under_cgroup",
        p([MapPtr, A, D, D, D]),
        0,
    ),
    h(
        38,
        "bpf_skb_change_tail",
        ctx_changes([Ctx, A, A, D, D]),
        TC | SK_SKB | LWT_XMIT,
    ),
    h(
        39,
        "bpf_skb_pull_data",
        ctx_changes([Ctx, A, D, D, D]),
        TC | SK_SKB | LWT,
    ),
    h(40, "bpf_csum_update", p([Ctx, A, D, D, D]), TC | LWT_XMIT),
    h(41, "bpf_set_hash_invalid", ctx_only(), TC | LWT_XMIT),
    h(42, "bpf_get_numa_node_id", p(NOARGS), BASE),
    h(
        43,
        "bpf_skb_change_head",
        ctx_changes([Ctx, A, A, D, D]),
        TC | SK_SKB | LWT_XMIT,
    ),
    h(
        44,
        "bpf_xdp_adjust_head",
        ctx_changes([Ctx, A, D, D, D]),
        XDP,
    ),
    h(45, "bpf_probe_read_str", some(PROBE), TRACE),
    h(
        46,
        "bpf_get_socket_cookie",
        ctx_only(),
        SOCKET_FILTER | CGROUP_SKB | TC | SK_SKB | SOCK_OPS | CGROUP_SOCK | CGROUP_SOCK_ADDR,
    ),
    // sk_reuseport and BTF tracing programs pass a socket, not a context
    // (`bpf_get_socket_ptr_cookie_proto`).
    h(
        46,
        "bpf_get_socket_cookie",
        p([BtfIdSockCommon { release: false }, D, D, D, D]),
        BTF_TRACE | SK_REUSEPORT,
    ),
    h(
        47,
        "bpf_get_socket_uid",
        ctx_only(),
        SOCKET_FILTER | CGROUP_SKB | TC | SK_SKB,
    ),
    h(48, "bpf_set_hash", p([Ctx, A, D, D, D]), TC),
    attach(
        h(
            49,
            "bpf_setsockopt",
            p([Ctx, A, A, MEM, ConstSize]),
            SOCK_OPS | CGROUP_SOCK_ADDR,
        ),
        sockopt_attach,
    ),
    // cgroup/sockopt, LSM and struct_ops programs pass a BTF socket.
    attach(
        h(
            49,
            "bpf_setsockopt",
            None,
            CGROUP_SOCKOPT | LSM | STRUCT_OPS,
        ),
        sockopt_attach,
    ),
    h(
        50,
        "bpf_skb_adjust_room",
        ctx_changes([Ctx, A, A, A, D]),
        TC | SK_SKB,
    ),
    h(51, "bpf_redirect_map", p([MapPtr, A, A, D, D]), XDP),
    h(52, "bpf_sk_redirect_map", None, SK_SKB),
    h(53, "bpf_sock_map_update", None, SOCK_OPS),
    h(
        54,
        "bpf_xdp_adjust_meta",
        ctx_changes([Ctx, A, D, D, D]),
        XDP,
    ),
    base_perfmon(
        55,
        "bpf_perf_event_read_value",
        p([MapPtr, A, UMEM, ConstSize, D]),
        0,
    ),
    h(
        56,
        "bpf_perf_prog_read_value",
        p([Ctx, UMEM, ConstSize, D, D]),
        PERF_EVENT,
    ),
    attach(
        h(
            57,
            "bpf_getsockopt",
            p([Ctx, A, A, UMEM, ConstSize]),
            SOCK_OPS | CGROUP_SOCK_ADDR,
        ),
        sockopt_attach,
    ),
    // cgroup/sockopt, LSM and struct_ops programs pass a BTF socket.
    attach(
        h(
            57,
            "bpf_getsockopt",
            None,
            CGROUP_SOCKOPT | LSM | STRUCT_OPS,
        ),
        sockopt_attach,
    ),
    // The host kernel is built without CONFIG_BPF_KPROBE_OVERRIDE.
    h(
        58,
        "bpf_override_return",
        some(Proto::new([Ctx, A, D, D, D], INT).gpl()),
        0,
    ),
    h(
        59,
        "bpf_sock_ops_cb_flags_set",
        p([Ctx, A, D, D, D]),
        SOCK_OPS,
    ),
    h(60, "bpf_msg_redirect_map", None, SK_MSG),
    h(61, "bpf_msg_apply_bytes", p([Ctx, A, D, D, D]), SK_MSG),
    h(62, "bpf_msg_cork_bytes", p([Ctx, A, D, D, D]), SK_MSG),
    h(
        63,
        "bpf_msg_pull_data",
        ctx_changes([Ctx, A, A, A, D]),
        SK_MSG,
    ),
    attach(
        h(
            64,
            "bpf_bind",
            p([Ctx, MEM, ConstSize, D, D]),
            CGROUP_SOCK_ADDR,
        ),
        bind_attach,
    ),
    h(
        65,
        "bpf_xdp_adjust_tail",
        ctx_changes([Ctx, A, D, D, D]),
        XDP,
    ),
    h(
        66,
        "bpf_skb_get_xfrm_state",
        p([Ctx, A, UMEM, ConstSize, A]),
        TC,
    ),
    h(
        67,
        "bpf_get_stack",
        some(Proto::new([Ctx, UMEM, ConstSizeOrZero, A, D], INT).gpl()),
        TRACE,
    ),
    h(
        68,
        "bpf_skb_load_bytes_relative",
        p([Ctx, A, UMEM, ConstSize, A]),
        SOCKET_FILTER | CGROUP_SKB | TC | SK_REUSEPORT,
    ),
    h(
        69,
        "bpf_fib_lookup",
        some(Proto::new([Ctx, MEM, ConstSize, A, D], INT).gpl()),
        TC | XDP,
    ),
    h(70, "bpf_sock_hash_update", None, SOCK_OPS),
    h(71, "bpf_msg_redirect_hash", None, SK_MSG),
    h(72, "bpf_sk_redirect_hash", None, SK_SKB),
    h(
        73,
        "bpf_lwt_push_encap",
        ctx_changes([Ctx, A, MEM, ConstSize, D]),
        LWT_IN | LWT_XMIT,
    ),
    // The seg6local helpers are not built into the host kernel
    // (CONFIG_IPV6_SEG6_BPF).
    h(
        74,
        "bpf_lwt_seg6_store_bytes",
        ctx_changes([Ctx, A, MEM, ConstSize, D]),
        0,
    ),
    h(
        75,
        "bpf_lwt_seg6_adjust_srh",
        ctx_changes([Ctx, A, A, D, D]),
        0,
    ),
    h(
        76,
        "bpf_lwt_seg6_action",
        ctx_changes([Ctx, A, MEM, ConstSize, D]),
        0,
    ),
    h(77, "bpf_rc_repeat", ctx_only(), LIRC_MODE2),
    h(78, "bpf_rc_keydown", p([Ctx, A, A, A, D]), LIRC_MODE2),
    h(79, "bpf_skb_cgroup_id", ctx_only(), TC | CGROUP_SKB),
    base_bpf(80, "bpf_get_current_cgroup_id", p(NOARGS), TRACE),
    h(81, "bpf_get_local_storage", None, CG_COMMON),
    h(82, "bpf_sk_select_reuseport", None, SK_REUSEPORT),
    h(
        83,
        "bpf_skb_ancestor_cgroup_id",
        p([Ctx, A, D, D, D]),
        TC | CGROUP_SKB,
    ),
    h(
        84,
        "bpf_sk_lookup_tcp",
        None,
        TC | XDP | CGROUP_SKB | SK_SKB | CGROUP_SOCK_ADDR,
    ),
    h(
        85,
        "bpf_sk_lookup_udp",
        None,
        TC | XDP | CGROUP_SKB | SK_SKB | CGROUP_SOCK_ADDR,
    ),
    h(
        86,
        "bpf_sk_release",
        None,
        TC | XDP | CGROUP_SKB | SK_SKB | CGROUP_SOCK_ADDR | SK_LOOKUP,
    ),
    h(
        87,
        "bpf_map_push_elem",
        some(Proto::new([MapPtr, MapValue, A, D, D], INT).pkt()),
        BASE,
    ),
    h(
        88,
        "bpf_map_pop_elem",
        p([MapPtr, MapValueUninit, D, D, D]),
        BASE,
    ),
    h(
        89,
        "bpf_map_peek_elem",
        p([MapPtr, MapValueUninit, D, D, D]),
        BASE,
    ),
    h(
        90,
        "bpf_msg_push_data",
        ctx_changes([Ctx, A, A, A, D]),
        SK_MSG,
    ),
    h(
        91,
        "bpf_msg_pop_data",
        ctx_changes([Ctx, A, A, A, D]),
        SK_MSG,
    ),
    h(92, "bpf_rc_pointer_rel", p([Ctx, A, A, D, D]), LIRC_MODE2),
    base_bpf(
        93,
        "bpf_spin_lock",
        some(Proto::new([SpinLock, D, D, D, D], Ret::Void)),
        LSM,
    ),
    base_bpf(
        94,
        "bpf_spin_unlock",
        some(Proto::new([SpinLock, D, D, D, D], Ret::Void)),
        LSM,
    ),
    h(95, "bpf_sk_fullsock", None, TC | CGROUP_SKB),
    h(
        96,
        "bpf_tcp_sock",
        None,
        TC | CGROUP_SKB | SOCK_OPS | CGROUP_SOCKOPT,
    ),
    h(97, "bpf_skb_ecn_set_ce", ctx_only(), TC | CGROUP_SKB),
    h(98, "bpf_get_listener_sock", None, TC | CGROUP_SKB),
    h(
        99,
        "bpf_skc_lookup_tcp",
        None,
        TC | XDP | CGROUP_SKB | SK_SKB | CGROUP_SOCK_ADDR,
    ),
    h(100, "bpf_tcp_check_syncookie", None, TC | XDP),
    h(
        101,
        "bpf_sysctl_get_name",
        p([Ctx, UMEM, ConstSize, A, D]),
        CGROUP_SYSCTL,
    ),
    h(
        102,
        "bpf_sysctl_get_current_value",
        p([Ctx, UMEM, ConstSize, D, D]),
        CGROUP_SYSCTL,
    ),
    h(
        103,
        "bpf_sysctl_get_new_value",
        p([Ctx, UMEM, ConstSize, D, D]),
        CGROUP_SYSCTL,
    ),
    h(
        104,
        "bpf_sysctl_set_new_value",
        p([Ctx, MEM, ConstSize, D, D]),
        CGROUP_SYSCTL,
    ),
    h(105, "bpf_strtol", some(STRTOL), BASE),
    h(106, "bpf_strtoul", some(STRTOL), BASE),
    h(
        107,
        "bpf_sk_storage_get",
        None,
        CGROUP_SKB
            | TC
            | SOCK_OPS
            | SK_MSG
            | CGROUP_SOCK
            | CGROUP_SOCK_ADDR
            | CGROUP_SOCKOPT
            | BTF_TRACE,
    ),
    h(
        108,
        "bpf_sk_storage_delete",
        None,
        CGROUP_SKB | TC | SOCK_OPS | SK_MSG | CGROUP_SOCK_ADDR | CGROUP_SOCKOPT | BTF_TRACE,
    ),
    base_perfmon(109, "bpf_send_signal", p([A, D, D, D, D]), 0),
    h(110, "bpf_tcp_gen_syncookie", None, TC | XDP),
    h(111, "bpf_skb_output", None, BTF_TRACE),
    base_perfmon(112, "bpf_probe_read_user", some(PROBE), TRACE),
    base_perfmon(113, "bpf_probe_read_kernel", some(PROBE), TRACE),
    base_perfmon(114, "bpf_probe_read_user_str", some(PROBE), TRACE),
    base_perfmon(115, "bpf_probe_read_kernel_str", some(PROBE), TRACE),
    h(116, "bpf_tcp_send_ack", None, STRUCT_OPS),
    base_perfmon(117, "bpf_send_signal_thread", p([A, D, D, D, D]), 0),
    base_bpf(118, "bpf_jiffies64", p(NOARGS), TRACE),
    h(
        119,
        "bpf_read_branch_records",
        p([Ctx, MEM_OR_NULL, ConstSizeOrZero, A, D]),
        PERF_EVENT,
    ),
    h(
        120,
        "bpf_get_ns_current_pid_tgid",
        p([A, A, UMEM, ConstSize, D]),
        BASE,
    ),
    h(121, "bpf_xdp_output", None, BTF_TRACE),
    h(
        122,
        "bpf_get_netns_cookie",
        p([CtxOrNull, D, D, D, D]),
        CGROUP_SOCK
            | CGROUP_SOCK_ADDR
            | SOCK_OPS
            | SK_MSG
            | CGROUP_SOCKOPT
            | SOCKET_FILTER
            | TC
            | CGROUP_SKB,
    ),
    base_bpf(
        123,
        "bpf_get_current_ancestor_cgroup_id",
        p([A, D, D, D, D]),
        TRACE,
    ),
    h(124, "bpf_sk_assign", None, TC | SK_LOOKUP),
    h(125, "bpf_ktime_get_boot_ns", p(NOARGS), BASE),
    attach(
        h(
            126,
            "bpf_seq_printf",
            some(
                Proto::new(
                    [SEQ_FILE, MEM, ConstSize, MEM_OR_NULL, ConstSizeOrZero],
                    INT,
                )
                .gpl(),
            ),
            TRACING,
        ),
        iter_attach,
    ),
    attach(
        h(
            127,
            "bpf_seq_write",
            some(Proto::new([SEQ_FILE, MEM, ConstSizeOrZero, D, D], INT).gpl()),
            TRACING,
        ),
        iter_attach,
    ),
    h(128, "bpf_sk_cgroup_id", None, CGROUP_SKB),
    h(129, "bpf_sk_ancestor_cgroup_id", None, CGROUP_SKB),
    h(
        130,
        "bpf_ringbuf_output",
        p([MapPtr, MEM, ConstSizeOrZero, A, D]),
        BASE,
    ),
    h(
        131,
        "bpf_ringbuf_reserve",
        some(Proto::new(
            [MapPtr, AllocSize, A, D, D],
            Ret::RingbufMemOrNull,
        )),
        BASE,
    ),
    h(
        132,
        "bpf_ringbuf_submit",
        some(Proto::new([RingbufMemRelease, A, D, D, D], Ret::Void)),
        BASE,
    ),
    h(
        133,
        "bpf_ringbuf_discard",
        some(Proto::new([RingbufMemRelease, A, D, D, D], Ret::Void)),
        BASE,
    ),
    h(134, "bpf_ringbuf_query", p([MapPtr, A, D, D, D]), BASE),
    h(135, "bpf_csum_level", p([Ctx, A, D, D, D]), TC | LWT_XMIT),
    // The skc_to_* casts need CAP_PERFMON (sk_base) and a BTF socket.
    HelperDef {
        cap: Cap::Perfmon,
        ..h(136, "bpf_skc_to_tcp6_sock", None, SKC_TO)
    },
    HelperDef {
        cap: Cap::Perfmon,
        ..h(137, "bpf_skc_to_tcp_sock", None, SKC_TO)
    },
    HelperDef {
        cap: Cap::Perfmon,
        ..h(138, "bpf_skc_to_tcp_timewait_sock", None, SKC_TO)
    },
    HelperDef {
        cap: Cap::Perfmon,
        ..h(139, "bpf_skc_to_tcp_request_sock", None, SKC_TO)
    },
    HelperDef {
        cap: Cap::Perfmon,
        ..h(140, "bpf_skc_to_udp6_sock", None, SKC_TO)
    },
    base_perfmon(
        141,
        "bpf_get_task_stack",
        p([BtfId { obj: "task_struct" }, UMEM, ConstSizeOrZero, A, D]),
        0,
    ),
    h(
        142,
        "bpf_load_hdr_opt",
        p([Ctx, UMEM, ConstSize, A, D]),
        SOCK_OPS,
    ),
    h(
        143,
        "bpf_store_hdr_opt",
        ctx_changes([Ctx, MEM, ConstSize, A, D]),
        SOCK_OPS,
    ),
    h(144, "bpf_reserve_hdr_opt", p([Ctx, A, A, D, D]), SOCK_OPS),
    h(145, "bpf_inode_storage_get", None, LSM),
    h(146, "bpf_inode_storage_delete", None, LSM),
    h(147, "bpf_d_path", None, BTF_TRACE),
    base_perfmon(148, "bpf_copy_from_user", None, 0),
    base_perfmon(149, "bpf_snprintf_btf", None, TRACE),
    attach(h(150, "bpf_seq_printf_btf", None, TRACING), iter_attach),
    h(151, "bpf_skb_cgroup_classid", ctx_only(), TC),
    h(
        152,
        "bpf_redirect_neigh",
        p([A, MEM_OR_NULL, ConstSizeOrZero, A, D]),
        TC,
    ),
    base_bpf(153, "bpf_per_cpu_ptr", None, TRACE),
    base_bpf(154, "bpf_this_cpu_ptr", None, TRACE),
    h(155, "bpf_redirect_peer", p([A, A, D, D, D]), TC),
    base_perfmon(156, "bpf_task_storage_get", None, 0),
    base_perfmon(157, "bpf_task_storage_delete", None, 0),
    base_perfmon(158, "bpf_get_current_task_btf", None, TRACE),
    h(159, "bpf_bprm_opts_set", None, LSM),
    h(
        160,
        "bpf_ktime_get_coarse_ns",
        p(NOARGS),
        SK_BASE | CGROUP_SOCK | CGROUP_SYSCTL,
    ),
    h(161, "bpf_ima_inode_hash", None, LSM),
    h(162, "bpf_sock_from_file", None, BTF_TRACE),
    h(163, "bpf_check_mtu", some(CHECK_MTU), TC | XDP),
    base_bpf(
        164,
        "bpf_for_each_map_elem",
        some(Proto::new([MapPtr, Func, StackOrNull, A, D], INT).effect(Effect::Callback)),
        0,
    ),
    base_perfmon(
        165,
        "bpf_snprintf",
        p([
            UninitMem { nullable: true },
            ConstSizeOrZero,
            ConstStr,
            MEM_OR_NULL,
            ConstSizeOrZero,
        ]),
        0,
    ),
    h(166, "bpf_sys_bpf", None, SYSCALL),
    h(167, "bpf_btf_find_by_name_kind", None, SYSCALL),
    h(168, "bpf_sys_close", p([A, D, D, D, D]), SYSCALL),
    base_bpf(169, "bpf_timer_init", None, 0),
    base_bpf(170, "bpf_timer_set_callback", None, 0),
    base_bpf(171, "bpf_timer_start", None, 0),
    base_bpf(172, "bpf_timer_cancel", None, 0),
    h(173, "bpf_get_func_ip", ctx_only(), KPROBE),
    // Elsewhere it needs a trampoline or refuses plain contexts.
    h(173, "bpf_get_func_ip", None, TRACE & !KPROBE),
    h(174, "bpf_get_attach_cookie", ctx_only(), TRACE & !SYSCALL),
    base_perfmon(175, "bpf_task_pt_regs", None, TRACE),
    base_perfmon(176, "bpf_get_branch_snapshot", None, 0),
    base_perfmon(
        177,
        "bpf_trace_vprintk",
        some(Proto::new([MEM, ConstSize, MEM_OR_NULL, ConstSizeOrZero, D], INT).gpl()),
        0,
    ),
    HelperDef {
        cap: Cap::Perfmon,
        ..h(178, "bpf_skc_to_unix_sock", None, SKC_TO)
    },
    h(179, "bpf_kallsyms_lookup_name", None, SYSCALL),
    base_perfmon(180, "bpf_find_vma", None, 0),
    base_bpf(
        181,
        "bpf_loop",
        some(Proto::new([A, Func, StackOrNull, A, D], INT).effect(Effect::Callback)),
        0,
    ),
    h(
        182,
        "bpf_strncmp",
        p([MEM, ConstSize, ConstStr, D, D]),
        BASE,
    ),
    h(183, "bpf_get_func_arg", None, TRACING | LSM),
    h(184, "bpf_get_func_ret", None, TRACING | LSM),
    h(185, "bpf_get_func_arg_cnt", ctx_only(), TRACING | LSM),
    attach(
        h(186, "bpf_get_retval", p(NOARGS), CG_COMMON),
        retval_attach,
    ),
    attach(
        h(187, "bpf_set_retval", p([A, D, D, D, D]), CG_COMMON),
        retval_attach,
    ),
    h(188, "bpf_xdp_get_buff_len", ctx_only(), XDP),
    h(188, "bpf_xdp_get_buff_len", None, BTF_TRACE),
    h(
        189,
        "bpf_xdp_load_bytes",
        p([Ctx, A, UMEM, ConstSize, D]),
        XDP,
    ),
    h(
        190,
        "bpf_xdp_store_bytes",
        p([Ctx, A, MEM, ConstSize, D]),
        XDP,
    ),
    base_perfmon(191, "bpf_copy_from_user_task", None, 0),
    h(192, "bpf_skb_set_tstamp", p([Ctx, A, A, D, D]), TC),
    h(193, "bpf_ima_file_hash", None, LSM),
    base_bpf(
        194,
        "bpf_kptr_xchg",
        some(Proto::new(
            [KptrXchgDest, KptrXchgValue, D, D, D],
            Ret::KptrOrNull,
        )),
        0,
    ),
    h(195, "bpf_map_lookup_percpu_elem", None, BASE),
    HelperDef {
        cap: Cap::Perfmon,
        ..h(196, "bpf_skc_to_mptcp_sock", None, SKC_TO)
    },
    base_bpf(
        197,
        "bpf_dynptr_from_mem",
        p([UMEM, ConstSizeOrZero, A, DYNPTR_NEW_LOCAL, D]),
        0,
    ),
    base_bpf(
        198,
        "bpf_ringbuf_reserve_dynptr",
        p([MapPtr, A, A, DYNPTR_NEW_RINGBUF, D]),
        0,
    ),
    base_bpf(
        199,
        "bpf_ringbuf_submit_dynptr",
        some(Proto::new([DYNPTR_RELEASE_RINGBUF, A, D, D, D], Ret::Void)),
        0,
    ),
    base_bpf(
        200,
        "bpf_ringbuf_discard_dynptr",
        some(Proto::new([DYNPTR_RELEASE_RINGBUF, A, D, D, D], Ret::Void)),
        0,
    ),
    base_bpf(
        201,
        "bpf_dynptr_read",
        p([UMEM, ConstSizeOrZero, DYNPTR_ANY, A, A]),
        0,
    ),
    base_bpf(
        202,
        "bpf_dynptr_write",
        p([DYNPTR_ANY, A, MEM, ConstSizeOrZero, A]),
        0,
    ),
    base_bpf(
        203,
        "bpf_dynptr_data",
        some(Proto::new(
            [DYNPTR_ANY, A, AllocSize, D, D],
            Ret::DynptrMemOrNull,
        )),
        0,
    ),
    h(204, "bpf_tcp_raw_gen_syncookie_ipv4", None, TC | XDP),
    h(205, "bpf_tcp_raw_gen_syncookie_ipv6", None, TC | XDP),
    h(206, "bpf_tcp_raw_check_syncookie_ipv4", None, TC | XDP),
    h(207, "bpf_tcp_raw_check_syncookie_ipv6", None, TC | XDP),
    h(208, "bpf_ktime_get_tai_ns", p(NOARGS), BASE),
    base_bpf(
        209,
        "bpf_user_ringbuf_drain",
        some(Proto::new([MapPtr, Func, StackOrNull, A, D], INT).effect(Effect::Callback)),
        0,
    ),
    base_bpf(210, "bpf_cgrp_storage_get", None, TRACE),
    base_bpf(211, "bpf_cgrp_storage_delete", None, TRACE),
];

/// One past the highest helper id.
pub const HELPER_COUNT: usize = 212;

const fn names() -> [&'static str; HELPER_COUNT] {
    let mut out = [""; HELPER_COUNT];
    let mut i = 0;
    while i < HELPERS.len() {
        out[HELPERS[i].id as usize] = HELPERS[i].name;
        i += 1;
    }
    out
}

const NAMES: [&str; HELPER_COUNT] = names();

/// Helper names by id (`call bpf_map_lookup_elem#1`), from [`HELPERS`].
#[doc(alias = "bpf_func_id")]
#[doc(alias = "__BPF_FUNC_MAPPER")]
pub static HELPER_NAMES: &[&str] = &NAMES;

/// The helper's name, if `id` is one.
pub fn helper_name(id: i64) -> Option<&'static str> {
    usize::try_from(id)
        .ok()
        .and_then(|i| HELPER_NAMES.get(i))
        .copied()
}

/// The row for helper `id` as program type `prog_type` sees it: the row
/// whose types include it, else the id's first row.
pub fn helper(id: i64, prog_type: u32) -> Option<&'static HelperDef> {
    let id = u32::try_from(id).ok()?;
    let rows = HELPERS.iter().filter(|d| d.id == id);
    let mut first = None;
    for d in rows {
        if prog_type < 64 && d.prog_types & (1 << prog_type) != 0 {
            return Some(d);
        }
        first.get_or_insert(d);
    }
    first
}

/// The helper id for a name, with or without the `bpf_` prefix.
pub fn helper_id(name: &str) -> Option<i32> {
    let full = if name.starts_with("bpf_") {
        name.to_string()
    } else {
        format!("bpf_{name}")
    };
    HELPER_NAMES
        .iter()
        .position(|n| *n == full)
        .map(|i| i as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_sorted_and_complete() {
        let mut last = 0;
        for d in HELPERS {
            assert!(d.id >= last, "row {} out of order", d.id);
            last = d.id;
            assert_eq!(
                HELPER_NAMES[d.id as usize], d.name,
                "rows of {} disagree",
                d.id
            );
        }
        for (id, n) in HELPER_NAMES.iter().enumerate() {
            assert!(!n.is_empty(), "helper {id} has no row");
        }
        assert_eq!(HELPER_NAMES.len(), 212);
        assert_eq!(HELPER_NAMES[9], "bpf_skb_store_bytes");
        assert_eq!(HELPER_NAMES[177], "bpf_trace_vprintk");
        assert_eq!(helper_id("ringbuf_output"), Some(130));
        assert_eq!(helper_id("bpf_cgrp_storage_delete"), Some(211));
    }

    #[test]
    fn func_id_constants_match_the_registry() {
        assert_eq!(uapi::BPF_FUNC_IDS.len(), HELPER_COUNT);
        for (i, &(name, id)) in uapi::BPF_FUNC_IDS.iter().enumerate() {
            assert_eq!(id as usize, i, "{name} out of order");
            let row = HELPER_NAMES[i].strip_prefix("bpf_").unwrap();
            assert_eq!(name, format!("BPF_FUNC_{}", row.to_uppercase()), "id {id}");
        }
        assert_eq!(helper_id("tail_call"), Some(uapi::BPF_FUNC_TAIL_CALL));
    }

    #[test]
    fn sizes_follow_memory() {
        // A size argument always follows a memory argument (check_arg_pair_ok).
        for d in HELPERS {
            let Some(p) = d.proto else { continue };
            for i in 0..5 {
                let sized = matches!(p.args[i], Arg::ConstSize | Arg::ConstSizeOrZero);
                let mem = i > 0 && matches!(p.args[i - 1], Arg::Mem { .. } | Arg::UninitMem { .. });
                assert_eq!(sized, mem, "{} argument {}", d.name, i + 1);
            }
        }
    }

    #[test]
    fn per_type_rows() {
        const SOCK_ADDR: u32 = 18;
        assert!(helper(46, 3).unwrap().proto.is_some());
        // Tracing programs pass a BTF socket, not a context.
        assert_eq!(
            helper(46, 26).unwrap().proto.unwrap().args[0],
            Arg::BtfIdSockCommon { release: false }
        );
        assert!(!helper(160, 2).unwrap().allows(2, 0));
        assert!(helper(160, 3).unwrap().allows(3, 0));
        assert!(helper(64, SOCK_ADDR).unwrap().allows(SOCK_ADDR, 10));
        assert!(!helper(64, SOCK_ADDR).unwrap().allows(SOCK_ADDR, 8));
        assert_eq!(helper(17, 9).unwrap().proto.unwrap().args[0], Arg::DontCare);
    }
}
