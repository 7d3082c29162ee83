//! Kernel functions (kfuncs) bpfvm knows: one row per kfunc, keyed by its
//! BTF name, with its C prototype (from which the runtime builds the BTF
//! `FUNC`s kfunc calls resolve against) and what the verifier needs beyond
//! the types: the kernel's `KF_*` flags, how each argument is checked (the
//! kernel derives this from the parameter's BTF type and name suffix:
//! `__k`, `__ign`, `__opt`, `__szk`, `__uninit`, iterator and dynptr
//! structs), and the program types whose kfunc sets include it.
//!
//! Kept apart from the helper prototypes so the two tables can merge into
//! one registry later; a row here is data, the checks are in
//! `check/kfunc.rs`.

use crate::prog::*;
use crate::reg::{Reg, RegType};

/// `KF_ACQUIRE`: the result is a reference the program must release.
pub const KF_ACQUIRE: u32 = 1 << 0;
/// `KF_RELEASE`: the first pointer argument is released.
pub const KF_RELEASE: u32 = 1 << 1;
/// `KF_RET_NULL`: the result may be NULL.
pub const KF_RET_NULL: u32 = 1 << 2;
/// `KF_TRUSTED_ARGS`: pointer arguments must be trusted.
pub const KF_TRUSTED_ARGS: u32 = 1 << 4;
/// `KF_SLEEPABLE`: only sleepable programs may call it.
pub const KF_SLEEPABLE: u32 = 1 << 5;
/// `KF_RCU`: pointer arguments may be RCU-protected.
pub const KF_RCU: u32 = 1 << 7;
/// `KF_ITER_NEW`, `KF_ITER_NEXT`, `KF_ITER_DESTROY`: an open-coded
/// iterator's constructor, step and destructor.
pub const KF_ITER_NEW: u32 = 1 << 8;
pub const KF_ITER_NEXT: u32 = 1 << 9;
pub const KF_ITER_DESTROY: u32 = 1 << 10;
/// `KF_FASTCALL`: clobbers only r0 (the `bpf_fastcall` contract).
pub const KF_FASTCALL: u32 = 1 << 14;

/// A C type in a kfunc prototype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CType {
    Void,
    Bool,
    /// An integer of `size` bytes.
    Int {
        size: u8,
        signed: bool,
    },
    /// A pointer to `pointee`.
    Ptr(Pointee),
}

/// What a pointer parameter or result points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pointee {
    Void,
    Int {
        size: u8,
        signed: bool,
    },
    /// A struct, by its kernel name (`task_struct`, `bpf_iter_num`).
    Struct(&'static str),
}

/// How the verifier checks one argument (the kernel's `KF_ARG_*` kinds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KArg {
    /// A scalar.
    Scalar,
    /// A scalar the verifier must know (`__k`).
    Const,
    /// Not checked (`__ign`).
    Ignored,
    /// The program's context (`PTR_TO_CTX`).
    Ctx,
    /// An open-coded iterator on the stack, of kind `iter`.
    Iter(Iter),
    /// A dynptr on the stack; `uninit`: the kfunc initialises it.
    Dynptr { uninit: bool },
    /// A kernel object (`PTR_TO_BTF_ID`) of this kind.
    Obj(Obj),
    /// Writable memory of the pointee's size (`u64 *timestamp`).
    OutMem { size: u32 },
    /// Memory sized by the next argument (`buffer__opt` when `nullable`).
    Mem { nullable: bool },
    /// The constant size of the previous memory argument (`__szk`).
    MemSizeConst,
}

/// What R0 holds after the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KRet {
    Void,
    Scalar,
    /// A kernel object (`PTR_TO_BTF_ID`), trusted.
    Obj(Obj),
    /// `PTR_TO_MEM` of `size` bytes (an iterator's current element).
    Mem {
        size: u32,
    },
    /// `bpf_cast_to_kern_ctx`: the kernel's own context object.
    KernCtx,
    /// `bpf_rdonly_cast`: an untrusted pointer.
    Untrusted,
    /// `bpf_dynptr_slice{,_rdwr}`: memory of the `__szk` size.
    Slice {
        writable: bool,
    },
}

/// Kinds of open-coded iterators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Iter {
    Num,
    Bits,
}

impl Iter {
    /// `iter_num`: the name in the kernel's messages.
    pub fn name(self) -> &'static str {
        match self {
            Iter::Num => "num",
            Iter::Bits => "bits",
        }
    }
    /// Stack bytes of `struct bpf_iter_<name>`.
    pub fn size(self) -> u32 {
        match self {
            Iter::Num => 8,
            Iter::Bits => 16,
        }
    }
    fn from_u8(v: u8) -> Option<Iter> {
        match v {
            1 => Some(Iter::Num),
            2 => Some(Iter::Bits),
            _ => None,
        }
    }
    fn as_u8(self) -> u8 {
        match self {
            Iter::Num => 1,
            Iter::Bits => 2,
        }
    }
}

/// Kernel objects kfuncs hand out (`PTR_TO_BTF_ID` targets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Obj {
    Task,
    Cgroup,
    BpfCpumask,
    Cpumask,
    Key,
    SkBuff,
    XdpBuff,
    /// Kernel sockets `bpf_skc_to_*` casts to.
    TcpSock,
    Tcp6Sock,
    TcpTimewaitSock,
    TcpRequestSock,
    Udp6Sock,
    UnixSock,
    /// `struct sock` and `struct sock_common` as BTF-typed programs see them.
    Sock,
    SockCommon,
    /// An iterator's output (`bpf_seq_printf`, `bpf_seq_write`).
    SeqFile,
}

/// Every [`Obj`], index + 1 is its number in [`KfInfo::obj`].
pub const OBJS: &[(Obj, &str)] = &[
    (Obj::Task, "task_struct"),
    (Obj::Cgroup, "cgroup"),
    (Obj::BpfCpumask, "bpf_cpumask"),
    (Obj::Cpumask, "cpumask"),
    (Obj::Key, "bpf_key"),
    (Obj::SkBuff, "sk_buff"),
    (Obj::XdpBuff, "xdp_buff"),
    (Obj::TcpSock, "tcp_sock"),
    (Obj::Tcp6Sock, "tcp6_sock"),
    (Obj::TcpTimewaitSock, "tcp_timewait_sock"),
    (Obj::TcpRequestSock, "tcp_request_sock"),
    (Obj::Udp6Sock, "udp6_sock"),
    (Obj::UnixSock, "unix_sock"),
    (Obj::Sock, "sock"),
    (Obj::SockCommon, "sock_common"),
    (Obj::SeqFile, "seq_file"),
];

impl Obj {
    /// A socket of the kernel's (`sock_common` first), as `bpf_sk_release`
    /// and the socket helpers take.
    pub fn is_sock(self) -> bool {
        matches!(
            self,
            Obj::TcpSock
                | Obj::Tcp6Sock
                | Obj::TcpTimewaitSock
                | Obj::TcpRequestSock
                | Obj::Udp6Sock
                | Obj::UnixSock
                | Obj::Sock
                | Obj::SockCommon
        )
    }
    pub fn name(self) -> &'static str {
        OBJS.iter()
            .find(|(o, _)| *o == self)
            .map_or("?", |(_, n)| n)
    }
    pub fn as_u8(self) -> u8 {
        OBJS.iter()
            .position(|(o, _)| *o == self)
            .map_or(0, |i| i as u8 + 1)
    }
    /// The object a kernel struct name stands for.
    pub fn from_name(name: &str) -> Option<Obj> {
        OBJS.iter().find(|(_, n)| *n == name).map(|(o, _)| *o)
    }
    pub fn from_u8(v: u8) -> Option<Obj> {
        OBJS.get((v as usize).checked_sub(1)?).map(|(o, _)| *o)
    }
}

/// Type information the register state keeps for kfuncs: which kernel
/// object a `PTR_TO_BTF_ID` points to and how far it is trusted, or what
/// a special stack slot holds (an iterator and its state, a dynptr).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KfInfo {
    /// [`Obj`] number; for an iterator slot its [`Iter`]; for a dynptr its
    /// [`DynptrKind`].
    pub obj: u8,
    /// `KFI_*` flags.
    pub flags: u16,
    /// An iterator's depth: how many `next` calls returned an element on
    /// this path (not compared by pruning, as in the kernel).
    pub depth: u32,
}

/// `PTR_TRUSTED`
pub const KFI_TRUSTED: u16 = 1 << 0;
/// `MEM_RCU`
pub const KFI_RCU: u16 = 1 << 1;
/// `PTR_UNTRUSTED`
pub const KFI_UNTRUSTED: u16 = 1 << 2;
/// `MEM_RDONLY` (on `PTR_TO_MEM`).
pub const KFI_RDONLY: u16 = 1 << 3;
/// Iterator slot: `BPF_ITER_STATE_DRAINED` (else active).
pub const KFI_DRAINED: u16 = 1 << 4;
/// Dynptr: the slot holding its first half.
pub const KFI_FIRST_SLOT: u16 = 1 << 5;
/// `PTR_TO_MEM` from `bpf_dynptr_slice{,_rdwr}` of an skb or xdp dynptr: it
/// points into the packet, so it goes when the packet may change.
pub const KFI_PKT_SLICE: u16 = 1 << 6;
/// `MEM_USER`: a kernel pointer to user memory (`__user`), not to be
/// dereferenced.
pub const KFI_USER: u16 = 1 << 7;
/// `MEM_PERCPU`: a per-CPU pointer (`__percpu`), dereferenced only through
/// `bpf_per_cpu_ptr` / `bpf_this_cpu_ptr`.
pub const KFI_PERCPU: u16 = 1 << 8;

impl KfInfo {
    pub const NONE: KfInfo = KfInfo {
        obj: 0,
        flags: 0,
        depth: 0,
    };
    pub fn object(obj: Obj, flags: u16) -> KfInfo {
        KfInfo {
            obj: obj.as_u8(),
            flags,
            depth: 0,
        }
    }
    pub fn iter(kind: Iter) -> KfInfo {
        KfInfo {
            obj: kind.as_u8(),
            flags: 0,
            depth: 0,
        }
    }
    pub fn iter_kind(&self) -> Option<Iter> {
        Iter::from_u8(self.obj)
    }
    /// Pruning: equal but for the iterator depth.
    pub fn same_kind(&self, o: &KfInfo) -> bool {
        self.obj == o.obj && self.flags == o.flags
    }
}

/// Dynptr types (`enum bpf_dynptr_type`), as [`KfInfo::obj`] of a dynptr
/// slot holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DynptrKind {
    Local = bpfvm_isa::helpers::BPF_DYNPTR_TYPE_LOCAL as isize,
    Ringbuf = bpfvm_isa::helpers::BPF_DYNPTR_TYPE_RINGBUF as isize,
    Skb = bpfvm_isa::helpers::BPF_DYNPTR_TYPE_SKB as isize,
    Xdp = bpfvm_isa::helpers::BPF_DYNPTR_TYPE_XDP as isize,
}

/// `is_trusted_reg` for a kernel object pointer: it holds a reference, or is
/// marked trusted and not untrusted (an RCU pointer is not trusted).
pub fn is_trusted(r: &Reg) -> bool {
    r.ty == RegType::BtfId
        && (r.ref_obj_id != 0 || (r.kf.flags & KFI_TRUSTED != 0 && r.kf.flags & KFI_UNTRUSTED == 0))
}

/// `reg_type_str`: a register's type with its flags (`trusted_ptr_`).
pub fn reg_type_str(r: &Reg) -> String {
    if r.ty != RegType::BtfId {
        return r.ty.name(r.maybe_null);
    }
    let mut s = btf_ptr_name(r);
    if let Some(o) = Obj::from_u8(r.kf.obj) {
        s.truncate(s.len() - o.name().len());
    }
    s
}

/// `reg_type_str` plus the object's name, as `print_reg_state` prints a
/// `PTR_TO_BTF_ID`: `trusted_ptr_or_null_task_struct`.
pub fn btf_ptr_name(r: &Reg) -> String {
    let f = r.kf.flags;
    let mut s = String::new();
    if f & KFI_USER != 0 {
        s.push_str("user_");
    }
    if f & KFI_PERCPU != 0 {
        s.push_str("percpu_");
    }
    if f & KFI_RCU != 0 {
        s.push_str("rcu_");
    }
    if f & KFI_UNTRUSTED != 0 {
        s.push_str("untrusted_");
    }
    if f & KFI_TRUSTED != 0 {
        s.push_str("trusted_");
    }
    s.push_str(&RegType::BtfId.name(r.maybe_null));
    if let Some(o) = Obj::from_u8(r.kf.obj) {
        s.push_str(o.name());
    }
    s
}

/// One kfunc.
#[derive(Clone, Copy, Debug)]
pub struct Kfunc {
    pub name: &'static str,
    pub ret: CType,
    /// `(type, name)` per parameter, as the kernel declares it.
    pub params: &'static [(CType, &'static str)],
    /// How each parameter is checked (same length as `params`).
    pub args: &'static [KArg],
    pub kret: KRet,
    /// `KF_*`
    pub flags: u32,
    /// The program types whose kfunc sets include it.
    pub progs: Progs,
}

/// Program types a kfunc set is registered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progs {
    /// `BPF_PROG_TYPE_UNSPEC`: every type (the common set).
    All,
    /// The generic set (tasks, cgroups), registered for tracing, tc
    /// (`sched_cls` only), XDP, struct_ops, syscall and cgroup_skb.
    Generic,
    /// The cpumask set: tracing, struct_ops, syscall.
    Cpumask,
    /// Key verification kfuncs: registered for tracing.
    Tracing,
    /// `bpf_dynptr_from_skb`: the skb program types.
    Skb,
    Xdp,
}

/// `enum btf_kfunc_hook`: a kfunc set registered for one program type
/// serves every type of the same hook (`bpf_prog_type_to_kfunc_hook`), so a
/// set registered for `BPF_PROG_TYPE_TRACING` also serves tracepoints,
/// perf events and LSM programs, and one registered for cgroup_skb every
/// cgroup program type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hook {
    Xdp,
    Tc,
    StructOps,
    Tracing,
    Syscall,
    Cgroup,
    SchedAct,
    SkSkb,
    SocketFilter,
    Lwt,
    Netfilter,
    Other,
}

fn hook(prog_type: u32) -> Hook {
    match prog_type {
        BPF_PROG_TYPE_XDP => Hook::Xdp,
        BPF_PROG_TYPE_SCHED_CLS => Hook::Tc,
        BPF_PROG_TYPE_STRUCT_OPS => Hook::StructOps,
        BPF_PROG_TYPE_TRACING
        | BPF_PROG_TYPE_TRACEPOINT
        | BPF_PROG_TYPE_PERF_EVENT
        | BPF_PROG_TYPE_LSM => Hook::Tracing,
        BPF_PROG_TYPE_SYSCALL => Hook::Syscall,
        BPF_PROG_TYPE_CGROUP_SKB
        | BPF_PROG_TYPE_CGROUP_SOCK
        | BPF_PROG_TYPE_CGROUP_DEVICE
        | BPF_PROG_TYPE_CGROUP_SOCK_ADDR
        | BPF_PROG_TYPE_CGROUP_SOCKOPT
        | BPF_PROG_TYPE_CGROUP_SYSCTL => Hook::Cgroup,
        BPF_PROG_TYPE_SCHED_ACT => Hook::SchedAct,
        BPF_PROG_TYPE_SK_SKB => Hook::SkSkb,
        BPF_PROG_TYPE_SOCKET_FILTER => Hook::SocketFilter,
        BPF_PROG_TYPE_LWT_IN
        | BPF_PROG_TYPE_LWT_OUT
        | BPF_PROG_TYPE_LWT_XMIT
        | BPF_PROG_TYPE_LWT_SEG6LOCAL => Hook::Lwt,
        BPF_PROG_TYPE_NETFILTER => Hook::Netfilter,
        _ => Hook::Other,
    }
}

impl Progs {
    /// The hooks the set is registered for, as Linux 6.12 registers it.
    fn hooks(self) -> &'static [Hook] {
        match self {
            Progs::All => &[],
            Progs::Generic => &[
                Hook::Tracing,
                Hook::Tc,
                Hook::Xdp,
                Hook::StructOps,
                Hook::Syscall,
                Hook::Cgroup,
            ],
            Progs::Cpumask => &[Hook::Tracing, Hook::StructOps, Hook::Syscall],
            Progs::Tracing => &[Hook::Tracing],
            Progs::Skb => &[
                Hook::Tc,
                Hook::SchedAct,
                Hook::SkSkb,
                Hook::SocketFilter,
                Hook::Cgroup,
                Hook::Lwt,
                Hook::Netfilter,
                Hook::Tracing,
            ],
            Progs::Xdp => &[Hook::Xdp],
        }
    }

    pub fn allows(self, prog_type: u32) -> bool {
        self == Progs::All || self.hooks().contains(&hook(prog_type))
    }
}

const fn int(size: u8, signed: bool) -> CType {
    CType::Int { size, signed }
}
const fn ptr(s: &'static str) -> CType {
    CType::Ptr(Pointee::Struct(s))
}
const S32: CType = int(4, true);
const U32: CType = int(4, false);
const U64: CType = int(8, false);
const VOIDP: CType = CType::Ptr(Pointee::Void);

const fn k(
    name: &'static str,
    ret: CType,
    params: &'static [(CType, &'static str)],
    args: &'static [KArg],
    kret: KRet,
    flags: u32,
    progs: Progs,
) -> Kfunc {
    Kfunc {
        name,
        ret,
        params,
        args,
        kret,
        flags,
        progs,
    }
}

/// Every kfunc bpfvm implements.
pub const KFUNCS: &[Kfunc] = &[
    // Open-coded iterators over a range of numbers and over bits.
    k(
        "bpf_iter_num_new",
        S32,
        &[(ptr("bpf_iter_num"), "it"), (S32, "start"), (S32, "end")],
        &[KArg::Iter(Iter::Num), KArg::Scalar, KArg::Scalar],
        KRet::Scalar,
        KF_ITER_NEW,
        Progs::All,
    ),
    k(
        "bpf_iter_num_next",
        CType::Ptr(Pointee::Int {
            size: 4,
            signed: true,
        }),
        &[(ptr("bpf_iter_num"), "it")],
        &[KArg::Iter(Iter::Num)],
        KRet::Mem { size: 4 },
        KF_ITER_NEXT | KF_RET_NULL,
        Progs::All,
    ),
    k(
        "bpf_iter_num_destroy",
        CType::Void,
        &[(ptr("bpf_iter_num"), "it")],
        &[KArg::Iter(Iter::Num)],
        KRet::Void,
        KF_ITER_DESTROY,
        Progs::All,
    ),
    k(
        "bpf_iter_bits_new",
        S32,
        &[
            (ptr("bpf_iter_bits"), "it"),
            (
                CType::Ptr(Pointee::Int {
                    size: 8,
                    signed: false,
                }),
                "unsafe_ptr__ign",
            ),
            (U32, "nr_words"),
        ],
        &[KArg::Iter(Iter::Bits), KArg::Ignored, KArg::Scalar],
        KRet::Scalar,
        KF_ITER_NEW,
        Progs::All,
    ),
    k(
        "bpf_iter_bits_next",
        CType::Ptr(Pointee::Int {
            size: 4,
            signed: true,
        }),
        &[(ptr("bpf_iter_bits"), "it")],
        &[KArg::Iter(Iter::Bits)],
        KRet::Mem { size: 4 },
        KF_ITER_NEXT | KF_RET_NULL,
        Progs::All,
    ),
    k(
        "bpf_iter_bits_destroy",
        CType::Void,
        &[(ptr("bpf_iter_bits"), "it")],
        &[KArg::Iter(Iter::Bits)],
        KRet::Void,
        KF_ITER_DESTROY,
        Progs::All,
    ),
    // Casts.
    k(
        "bpf_cast_to_kern_ctx",
        VOIDP,
        &[(VOIDP, "obj")],
        &[KArg::Ctx],
        KRet::KernCtx,
        KF_FASTCALL,
        Progs::All,
    ),
    k(
        "bpf_rdonly_cast",
        VOIDP,
        &[(VOIDP, "obj__ign"), (U32, "btf_id__k")],
        &[KArg::Ignored, KArg::Const],
        KRet::Untrusted,
        KF_FASTCALL,
        Progs::All,
    ),
    k(
        "bpf_rcu_read_lock",
        CType::Void,
        &[],
        &[],
        KRet::Void,
        0,
        Progs::All,
    ),
    k(
        "bpf_rcu_read_unlock",
        CType::Void,
        &[],
        &[],
        KRet::Void,
        0,
        Progs::All,
    ),
    k(
        "bpf_preempt_disable",
        CType::Void,
        &[],
        &[],
        KRet::Void,
        0,
        Progs::All,
    ),
    k(
        "bpf_preempt_enable",
        CType::Void,
        &[],
        &[],
        KRet::Void,
        0,
        Progs::All,
    ),
    // Tasks, cgroups and cpumasks: acquire/release references.
    k(
        "bpf_task_from_pid",
        ptr("task_struct"),
        &[(S32, "pid")],
        &[KArg::Scalar],
        KRet::Obj(Obj::Task),
        KF_ACQUIRE | KF_RET_NULL,
        Progs::Generic,
    ),
    k(
        "bpf_task_acquire",
        ptr("task_struct"),
        &[(ptr("task_struct"), "p")],
        &[KArg::Obj(Obj::Task)],
        KRet::Obj(Obj::Task),
        KF_ACQUIRE | KF_RCU | KF_RET_NULL,
        Progs::Generic,
    ),
    k(
        "bpf_task_release",
        CType::Void,
        &[(ptr("task_struct"), "p")],
        &[KArg::Obj(Obj::Task)],
        KRet::Void,
        KF_RELEASE,
        Progs::Generic,
    ),
    k(
        "bpf_cgroup_from_id",
        ptr("cgroup"),
        &[(U64, "cgid")],
        &[KArg::Scalar],
        KRet::Obj(Obj::Cgroup),
        KF_ACQUIRE | KF_RET_NULL,
        Progs::Generic,
    ),
    k(
        "bpf_cgroup_acquire",
        ptr("cgroup"),
        &[(ptr("cgroup"), "cgrp")],
        &[KArg::Obj(Obj::Cgroup)],
        KRet::Obj(Obj::Cgroup),
        KF_ACQUIRE | KF_RCU | KF_RET_NULL,
        Progs::Generic,
    ),
    k(
        "bpf_cgroup_release",
        CType::Void,
        &[(ptr("cgroup"), "cgrp")],
        &[KArg::Obj(Obj::Cgroup)],
        KRet::Void,
        KF_RELEASE,
        Progs::Generic,
    ),
    k(
        "bpf_cpumask_create",
        ptr("bpf_cpumask"),
        &[],
        &[],
        KRet::Obj(Obj::BpfCpumask),
        KF_ACQUIRE | KF_RET_NULL,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_acquire",
        ptr("bpf_cpumask"),
        &[(ptr("bpf_cpumask"), "cpumask")],
        &[KArg::Obj(Obj::BpfCpumask)],
        KRet::Obj(Obj::BpfCpumask),
        KF_ACQUIRE | KF_TRUSTED_ARGS,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_release",
        CType::Void,
        &[(ptr("bpf_cpumask"), "cpumask")],
        &[KArg::Obj(Obj::BpfCpumask)],
        KRet::Void,
        KF_RELEASE,
        Progs::Cpumask,
    ),
    // The cpumask set (kernel/bpf/cpumask.c): every operation takes RCU
    // pointers (KF_RCU), and a `struct bpf_cpumask` where a `struct cpumask`
    // is read (its first member).
    k(
        "bpf_cpumask_first",
        U32,
        &[(ptr("cpumask"), "cpumask")],
        &[KArg::Obj(Obj::Cpumask)],
        KRet::Scalar,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_first_zero",
        U32,
        &[(ptr("cpumask"), "cpumask")],
        &[KArg::Obj(Obj::Cpumask)],
        KRet::Scalar,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_first_and",
        U32,
        &[(ptr("cpumask"), "src1"), (ptr("cpumask"), "src2")],
        &[KArg::Obj(Obj::Cpumask), KArg::Obj(Obj::Cpumask)],
        KRet::Scalar,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_set_cpu",
        CType::Void,
        &[(U32, "cpu"), (ptr("bpf_cpumask"), "cpumask")],
        &[KArg::Scalar, KArg::Obj(Obj::BpfCpumask)],
        KRet::Void,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_clear_cpu",
        CType::Void,
        &[(U32, "cpu"), (ptr("bpf_cpumask"), "cpumask")],
        &[KArg::Scalar, KArg::Obj(Obj::BpfCpumask)],
        KRet::Void,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_test_cpu",
        CType::Bool,
        &[(U32, "cpu"), (ptr("cpumask"), "cpumask")],
        &[KArg::Scalar, KArg::Obj(Obj::Cpumask)],
        KRet::Scalar,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_test_and_set_cpu",
        CType::Bool,
        &[(U32, "cpu"), (ptr("bpf_cpumask"), "cpumask")],
        &[KArg::Scalar, KArg::Obj(Obj::BpfCpumask)],
        KRet::Scalar,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_test_and_clear_cpu",
        CType::Bool,
        &[(U32, "cpu"), (ptr("bpf_cpumask"), "cpumask")],
        &[KArg::Scalar, KArg::Obj(Obj::BpfCpumask)],
        KRet::Scalar,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_setall",
        CType::Void,
        &[(ptr("bpf_cpumask"), "cpumask")],
        &[KArg::Obj(Obj::BpfCpumask)],
        KRet::Void,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_clear",
        CType::Void,
        &[(ptr("bpf_cpumask"), "cpumask")],
        &[KArg::Obj(Obj::BpfCpumask)],
        KRet::Void,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_and",
        CType::Bool,
        &[
            (ptr("bpf_cpumask"), "dst"),
            (ptr("cpumask"), "src1"),
            (ptr("cpumask"), "src2"),
        ],
        &[
            KArg::Obj(Obj::BpfCpumask),
            KArg::Obj(Obj::Cpumask),
            KArg::Obj(Obj::Cpumask),
        ],
        KRet::Scalar,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_or",
        CType::Void,
        &[
            (ptr("bpf_cpumask"), "dst"),
            (ptr("cpumask"), "src1"),
            (ptr("cpumask"), "src2"),
        ],
        &[
            KArg::Obj(Obj::BpfCpumask),
            KArg::Obj(Obj::Cpumask),
            KArg::Obj(Obj::Cpumask),
        ],
        KRet::Void,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_xor",
        CType::Void,
        &[
            (ptr("bpf_cpumask"), "dst"),
            (ptr("cpumask"), "src1"),
            (ptr("cpumask"), "src2"),
        ],
        &[
            KArg::Obj(Obj::BpfCpumask),
            KArg::Obj(Obj::Cpumask),
            KArg::Obj(Obj::Cpumask),
        ],
        KRet::Void,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_equal",
        CType::Bool,
        &[(ptr("cpumask"), "src1"), (ptr("cpumask"), "src2")],
        &[KArg::Obj(Obj::Cpumask), KArg::Obj(Obj::Cpumask)],
        KRet::Scalar,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_intersects",
        CType::Bool,
        &[(ptr("cpumask"), "src1"), (ptr("cpumask"), "src2")],
        &[KArg::Obj(Obj::Cpumask), KArg::Obj(Obj::Cpumask)],
        KRet::Scalar,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_subset",
        CType::Bool,
        &[(ptr("cpumask"), "src1"), (ptr("cpumask"), "src2")],
        &[KArg::Obj(Obj::Cpumask), KArg::Obj(Obj::Cpumask)],
        KRet::Scalar,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_empty",
        CType::Bool,
        &[(ptr("cpumask"), "cpumask")],
        &[KArg::Obj(Obj::Cpumask)],
        KRet::Scalar,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_full",
        CType::Bool,
        &[(ptr("cpumask"), "cpumask")],
        &[KArg::Obj(Obj::Cpumask)],
        KRet::Scalar,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_copy",
        CType::Void,
        &[(ptr("bpf_cpumask"), "dst"), (ptr("cpumask"), "src")],
        &[KArg::Obj(Obj::BpfCpumask), KArg::Obj(Obj::Cpumask)],
        KRet::Void,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_any_distribute",
        U32,
        &[(ptr("cpumask"), "src")],
        &[KArg::Obj(Obj::Cpumask)],
        KRet::Scalar,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_any_and_distribute",
        U32,
        &[(ptr("cpumask"), "src1"), (ptr("cpumask"), "src2")],
        &[KArg::Obj(Obj::Cpumask), KArg::Obj(Obj::Cpumask)],
        KRet::Scalar,
        KF_RCU,
        Progs::Cpumask,
    ),
    k(
        "bpf_cpumask_weight",
        U32,
        &[(ptr("cpumask"), "cpumask")],
        &[KArg::Obj(Obj::Cpumask)],
        KRet::Scalar,
        KF_RCU,
        Progs::Cpumask,
    ),
    // Keys for signature verification.
    k(
        "bpf_lookup_user_key",
        ptr("bpf_key"),
        &[(U32, "serial"), (U64, "flags")],
        &[KArg::Scalar, KArg::Scalar],
        KRet::Obj(Obj::Key),
        KF_ACQUIRE | KF_RET_NULL | KF_SLEEPABLE,
        Progs::Tracing,
    ),
    k(
        "bpf_lookup_system_key",
        ptr("bpf_key"),
        &[(U64, "id")],
        &[KArg::Scalar],
        KRet::Obj(Obj::Key),
        KF_ACQUIRE | KF_RET_NULL,
        Progs::Tracing,
    ),
    k(
        "bpf_key_put",
        CType::Void,
        &[(ptr("bpf_key"), "bkey")],
        &[KArg::Obj(Obj::Key)],
        KRet::Void,
        KF_RELEASE,
        Progs::Tracing,
    ),
    // Dynptrs over packets.
    k(
        "bpf_dynptr_from_skb",
        S32,
        &[
            (ptr("__sk_buff"), "s"),
            (U64, "flags"),
            (ptr("bpf_dynptr"), "ptr__uninit"),
        ],
        &[KArg::Ctx, KArg::Scalar, KArg::Dynptr { uninit: true }],
        KRet::Scalar,
        0,
        Progs::Skb,
    ),
    k(
        "bpf_dynptr_from_xdp",
        S32,
        &[
            (ptr("xdp_md"), "x"),
            (U64, "flags"),
            (ptr("bpf_dynptr"), "ptr__uninit"),
        ],
        &[KArg::Ctx, KArg::Scalar, KArg::Dynptr { uninit: true }],
        KRet::Scalar,
        0,
        Progs::Xdp,
    ),
    k(
        "bpf_dynptr_slice",
        VOIDP,
        &[
            (ptr("bpf_dynptr"), "p"),
            (U32, "offset"),
            (VOIDP, "buffer__opt"),
            (U32, "buffer__szk"),
        ],
        &[
            KArg::Dynptr { uninit: false },
            KArg::Scalar,
            KArg::Mem { nullable: true },
            KArg::MemSizeConst,
        ],
        KRet::Slice { writable: false },
        KF_RET_NULL,
        Progs::All,
    ),
    k(
        "bpf_dynptr_slice_rdwr",
        VOIDP,
        &[
            (ptr("bpf_dynptr"), "p"),
            (U32, "offset"),
            (VOIDP, "buffer__opt"),
            (U32, "buffer__szk"),
        ],
        &[
            KArg::Dynptr { uninit: false },
            KArg::Scalar,
            KArg::Mem { nullable: true },
            KArg::MemSizeConst,
        ],
        KRet::Slice { writable: true },
        KF_RET_NULL,
        Progs::All,
    ),
    // Dynptrs of any type.
    k(
        "bpf_dynptr_adjust",
        S32,
        &[(ptr("bpf_dynptr"), "p"), (U32, "start"), (U32, "end")],
        &[KArg::Dynptr { uninit: false }, KArg::Scalar, KArg::Scalar],
        KRet::Scalar,
        0,
        Progs::All,
    ),
    k(
        "bpf_dynptr_is_null",
        CType::Bool,
        &[(ptr("bpf_dynptr"), "p")],
        &[KArg::Dynptr { uninit: false }],
        KRet::Scalar,
        0,
        Progs::All,
    ),
    k(
        "bpf_dynptr_is_rdonly",
        CType::Bool,
        &[(ptr("bpf_dynptr"), "p")],
        &[KArg::Dynptr { uninit: false }],
        KRet::Scalar,
        0,
        Progs::All,
    ),
    k(
        "bpf_dynptr_size",
        U32,
        &[(ptr("bpf_dynptr"), "p")],
        &[KArg::Dynptr { uninit: false }],
        KRet::Scalar,
        0,
        Progs::All,
    ),
    k(
        "bpf_dynptr_clone",
        S32,
        &[
            (ptr("bpf_dynptr"), "p"),
            (ptr("bpf_dynptr"), "clone__uninit"),
        ],
        &[
            KArg::Dynptr { uninit: false },
            KArg::Dynptr { uninit: true },
        ],
        KRet::Scalar,
        0,
        Progs::All,
    ),
    // XDP metadata: refused unless the program is bound to a device; bound,
    // bpfvm's "device" has no metadata (-EOPNOTSUPP).
    k(
        "bpf_xdp_metadata_rx_timestamp",
        S32,
        &[
            (ptr("xdp_md"), "ctx"),
            (
                CType::Ptr(Pointee::Int {
                    size: 8,
                    signed: false,
                }),
                "timestamp",
            ),
        ],
        &[KArg::Ctx, KArg::OutMem { size: 8 }],
        KRet::Scalar,
        0,
        Progs::Xdp,
    ),
    k(
        "bpf_xdp_metadata_rx_hash",
        S32,
        &[
            (ptr("xdp_md"), "ctx"),
            (
                CType::Ptr(Pointee::Int {
                    size: 4,
                    signed: false,
                }),
                "hash",
            ),
            (
                CType::Ptr(Pointee::Int {
                    size: 4,
                    signed: false,
                }),
                "rss_type",
            ),
        ],
        &[
            KArg::Ctx,
            KArg::OutMem { size: 4 },
            KArg::OutMem { size: 4 },
        ],
        KRet::Scalar,
        0,
        Progs::Xdp,
    ),
    k(
        "bpf_xdp_metadata_rx_vlan_tag",
        S32,
        &[
            (ptr("xdp_md"), "ctx"),
            (
                CType::Ptr(Pointee::Int {
                    size: 2,
                    signed: false,
                }),
                "vlan_proto",
            ),
            (
                CType::Ptr(Pointee::Int {
                    size: 2,
                    signed: false,
                }),
                "vlan_tci",
            ),
        ],
        &[
            KArg::Ctx,
            KArg::OutMem { size: 2 },
            KArg::OutMem { size: 2 },
        ],
        KRet::Scalar,
        0,
        Progs::Xdp,
    ),
];

/// Kfuncs the kernel has that bpfvm cannot provide, with the subsystem they
/// need: programs calling them are refused with this reason.
pub const UNAVAILABLE: &[(&str, &str)] = &[
    ("bpf_skb_ct_lookup", "conntrack (nf_conntrack)"),
    ("bpf_xdp_ct_lookup", "conntrack (nf_conntrack)"),
    ("bpf_skb_ct_alloc", "conntrack (nf_conntrack)"),
    ("bpf_xdp_ct_alloc", "conntrack (nf_conntrack)"),
    ("bpf_ct_insert_entry", "conntrack (nf_conntrack)"),
    ("bpf_ct_release", "conntrack (nf_conntrack)"),
    ("bpf_ct_set_timeout", "conntrack (nf_conntrack)"),
    ("bpf_ct_change_timeout", "conntrack (nf_conntrack)"),
    ("bpf_ct_set_status", "conntrack (nf_conntrack)"),
    ("bpf_ct_change_status", "conntrack (nf_conntrack)"),
    ("bpf_ct_set_nat_info", "conntrack (nf_conntrack)"),
    ("bpf_xdp_flow_lookup", "the netfilter flowtable"),
];

/// The kfunc with this name.
pub fn by_name(name: &str) -> Option<&'static Kfunc> {
    KFUNCS.iter().find(|k| k.name == name)
}

/// One type of bpfvm's kernel BTF, declared here so that the verifier knows
/// every kfunc's BTF id (its type id in that BTF) without the BTF itself:
/// the runtime builds the BTF from [`btf_decls`], in order (the first is
/// type id 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BtfDecl {
    /// An integer type (`BTF_KIND_INT`).
    Int {
        name: &'static str,
        size: u8,
        signed: bool,
        is_bool: bool,
    },
    /// `BTF_KIND_PTR` to the type with this id (0: void).
    Ptr(u32),
    /// `BTF_KIND_ARRAY` of `nelems` of type `elem` (index type: `u32`).
    Array { elem: u32, index: u32, nelems: u32 },
    /// A struct with one `__opaque` member (an array type id) of `size`
    /// bytes, or a forward declaration when `opaque` is `None`.
    Struct {
        name: &'static str,
        size: u32,
        opaque: Option<u32>,
    },
    /// `BTF_KIND_FUNC_PROTO`: return type id, then `(name, type id)`.
    FuncProto {
        ret: u32,
        params: Vec<(&'static str, u32)>,
    },
    /// `BTF_KIND_FUNC` (global linkage) with its prototype.
    Func { name: &'static str, proto: u32 },
}

struct KernelBtf {
    decls: Vec<BtfDecl>,
    /// Kfunc name -> FUNC type id.
    funcs: Vec<(&'static str, i32)>,
}

fn kernel_btf() -> &'static KernelBtf {
    static B: std::sync::OnceLock<KernelBtf> = std::sync::OnceLock::new();
    B.get_or_init(|| {
        let mut decls: Vec<BtfDecl> = Vec::new();
        let intern = |d: BtfDecl, decls: &mut Vec<BtfDecl>| -> u32 {
            match decls.iter().position(|x| *x == d) {
                Some(i) => i as u32 + 1,
                None => {
                    decls.push(d);
                    decls.len() as u32
                }
            }
        };
        let int_name = |size: u8, signed: bool| match (size, signed) {
            (1, false) => "unsigned char",
            (1, true) => "signed char",
            (2, false) => "short unsigned int",
            (2, true) => "short int",
            (4, false) => "unsigned int",
            (4, true) => "int",
            (8, false) => "long long unsigned int",
            _ => "long long int",
        };
        let ty = |c: CType, decls: &mut Vec<BtfDecl>| -> u32 {
            let int = |size: u8, signed: bool, decls: &mut Vec<BtfDecl>| {
                intern(
                    BtfDecl::Int {
                        name: int_name(size, signed),
                        size,
                        signed,
                        is_bool: false,
                    },
                    decls,
                )
            };
            match c {
                CType::Void => 0,
                CType::Bool => intern(
                    BtfDecl::Int {
                        name: "_Bool",
                        size: 1,
                        signed: false,
                        is_bool: true,
                    },
                    decls,
                ),
                CType::Int { size, signed } => int(size, signed, decls),
                CType::Ptr(p) => {
                    let target = match p {
                        Pointee::Void => 0,
                        Pointee::Int { size, signed } => int(size, signed, decls),
                        Pointee::Struct(name) => {
                            let size = match name {
                                "bpf_iter_num" => 8,
                                "bpf_iter_bits" | "bpf_dynptr" => 16,
                                _ => 0,
                            };
                            let opaque = if size > 0 {
                                let u64_id = int(8, false, decls);
                                let u32_id = int(4, false, decls);
                                Some(intern(
                                    BtfDecl::Array {
                                        elem: u64_id,
                                        index: u32_id,
                                        nelems: size / 8,
                                    },
                                    decls,
                                ))
                            } else {
                                None
                            };
                            intern(BtfDecl::Struct { name, size, opaque }, decls)
                        }
                    };
                    intern(BtfDecl::Ptr(target), decls)
                }
            }
        };
        let mut funcs = Vec::new();
        for k in KFUNCS {
            let ret = ty(k.ret, &mut decls);
            let params = k
                .params
                .iter()
                .map(|(c, n)| (*n, ty(*c, &mut decls)))
                .collect();
            let proto = intern(BtfDecl::FuncProto { ret, params }, &mut decls);
            let id = intern(
                BtfDecl::Func {
                    name: k.name,
                    proto,
                },
                &mut decls,
            );
            funcs.push((k.name, id as i32));
        }
        KernelBtf { decls, funcs }
    })
}

/// The types of bpfvm's kernel BTF, type id 1 first.
pub fn btf_decls() -> &'static [BtfDecl] {
    &kernel_btf().decls
}

/// The BTF id of kfunc `name` in bpfvm's kernel BTF.
pub fn btf_id(name: &str) -> Option<i32> {
    kernel_btf()
        .funcs
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, id)| *id)
}

/// The kfunc whose BTF id is `id`.
pub fn by_btf_id(id: i32) -> Option<&'static Kfunc> {
    let (name, _) = kernel_btf().funcs.iter().find(|(_, i)| *i == id)?;
    by_name(name)
}
