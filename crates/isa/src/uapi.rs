//! The kernel's enums and flags from `include/uapi/linux/bpf.h`, each written
//! once: program types, attach types and map types as one table per enum (a row
//! gives the typed value, the `BPF_*` constant, bpftool's name and, for program
//! types, what bpfvm knows of the type's context and test run), and the `BPF_F_*`
//! flags. Every crate (verifier, object reader, maps, runtime, tests) takes them
//! from here, so that a number cannot be written twice and disagree.

/// One kernel enum as a table: a Rust enum plus, for each row, a `pub const`
/// under the kernel's name with the kernel's number, and the lookups both ways.
macro_rules! kernel_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $value:literal, $kname:ident, $text:literal;)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum $name {
            $($(#[$vmeta])* #[doc = concat!("`", stringify!($kname), "`")] $variant = $value,)*
        }

        $(#[doc = concat!("`", stringify!($name), "::", stringify!($variant), "` as a number.")]
        pub const $kname: u32 = $value;)*

        impl $name {
            /// Every value, in kernel order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The kernel's number.
            pub const fn as_u32(self) -> u32 {
                self as u32
            }

            /// The value with this kernel number, if it is known.
            pub const fn from_u32(v: u32) -> Option<Self> {
                match v {
                    $($value => Some($name::$variant),)*
                    _ => None,
                }
            }

            /// The name bpftool prints.
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The kernel constant's name.
            pub const fn kernel_name(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($kname),)*
                }
            }

            /// Parses a bpftool name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl From<$name> for u32 {
            fn from(v: $name) -> u32 {
                v as u32
            }
        }
    };
}

kernel_enum! {
    /// `enum bpf_prog_type`.
    #[doc(alias = "bpf_prog_type")]
    pub enum ProgType {
        Unspec = 0, BPF_PROG_TYPE_UNSPEC, "unspec";
        SocketFilter = 1, BPF_PROG_TYPE_SOCKET_FILTER, "socket_filter";
        Kprobe = 2, BPF_PROG_TYPE_KPROBE, "kprobe";
        SchedCls = 3, BPF_PROG_TYPE_SCHED_CLS, "sched_cls";
        SchedAct = 4, BPF_PROG_TYPE_SCHED_ACT, "sched_act";
        Tracepoint = 5, BPF_PROG_TYPE_TRACEPOINT, "tracepoint";
        Xdp = 6, BPF_PROG_TYPE_XDP, "xdp";
        PerfEvent = 7, BPF_PROG_TYPE_PERF_EVENT, "perf_event";
        CgroupSkb = 8, BPF_PROG_TYPE_CGROUP_SKB, "cgroup_skb";
        CgroupSock = 9, BPF_PROG_TYPE_CGROUP_SOCK, "cgroup_sock";
        LwtIn = 10, BPF_PROG_TYPE_LWT_IN, "lwt_in";
        LwtOut = 11, BPF_PROG_TYPE_LWT_OUT, "lwt_out";
        LwtXmit = 12, BPF_PROG_TYPE_LWT_XMIT, "lwt_xmit";
        SockOps = 13, BPF_PROG_TYPE_SOCK_OPS, "sock_ops";
        SkSkb = 14, BPF_PROG_TYPE_SK_SKB, "sk_skb";
        CgroupDevice = 15, BPF_PROG_TYPE_CGROUP_DEVICE, "cgroup_device";
        SkMsg = 16, BPF_PROG_TYPE_SK_MSG, "sk_msg";
        RawTracepoint = 17, BPF_PROG_TYPE_RAW_TRACEPOINT, "raw_tracepoint";
        CgroupSockAddr = 18, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup_sock_addr";
        LwtSeg6local = 19, BPF_PROG_TYPE_LWT_SEG6LOCAL, "lwt_seg6local";
        LircMode2 = 20, BPF_PROG_TYPE_LIRC_MODE2, "lirc_mode2";
        SkReuseport = 21, BPF_PROG_TYPE_SK_REUSEPORT, "sk_reuseport";
        FlowDissector = 22, BPF_PROG_TYPE_FLOW_DISSECTOR, "flow_dissector";
        CgroupSysctl = 23, BPF_PROG_TYPE_CGROUP_SYSCTL, "cgroup_sysctl";
        RawTracepointWritable = 24, BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, "raw_tracepoint_writable";
        CgroupSockopt = 25, BPF_PROG_TYPE_CGROUP_SOCKOPT, "cgroup_sockopt";
        Tracing = 26, BPF_PROG_TYPE_TRACING, "tracing";
        StructOps = 27, BPF_PROG_TYPE_STRUCT_OPS, "struct_ops";
        Ext = 28, BPF_PROG_TYPE_EXT, "ext";
        Lsm = 29, BPF_PROG_TYPE_LSM, "lsm";
        SkLookup = 30, BPF_PROG_TYPE_SK_LOOKUP, "sk_lookup";
        Syscall = 31, BPF_PROG_TYPE_SYSCALL, "syscall";
        Netfilter = 32, BPF_PROG_TYPE_NETFILTER, "netfilter";
    }
}

/// How `BPF_PROG_TEST_RUN` builds a program type's context, for the types
/// bpfvm can test-run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TestRunKind {
    /// An `xdp_buff` over `data_in` (`bpf_prog_test_run_xdp`).
    Xdp,
    /// An skb over `data_in`, `ctx_in` as `struct __sk_buff` (`bpf_prog_test_run_skb`).
    Skb,
    /// The raw tracepoint's arguments from `ctx_in` (`bpf_prog_test_run_raw_tp`).
    RawTracepoint,
    /// A writable context from `ctx_in` (`bpf_prog_test_run_syscall`).
    Syscall,
}

impl ProgType {
    /// Size in bytes of the context the program sees (`struct xdp_md`,
    /// `struct __sk_buff`, `struct pt_regs`, ...), where bpfvm's verifier
    /// models it; `None` for the types whose context it does not bound.
    pub const fn ctx_size(self) -> Option<u32> {
        use ProgType as P;
        Some(match self {
            P::Xdp => 24,
            P::SocketFilter
            | P::SchedCls
            | P::SchedAct
            | P::CgroupSkb
            | P::LwtIn
            | P::LwtOut
            | P::LwtXmit
            | P::LwtSeg6local
            | P::SkSkb
            | P::FlowDissector => 192,
            P::CgroupSock | P::SkMsg => 80,
            P::CgroupSockAddr | P::SkLookup => 72,
            P::SockOps => 224,
            P::SkReuseport => 56,
            P::CgroupSockopt => 40,
            P::RawTracepoint => 96,
            P::Kprobe => 168,
            P::PerfEvent => 184,
            P::Tracepoint => 2048,
            _ => return None,
        })
    }

    /// How a test run builds this type's context; `None` where bpfvm cannot
    /// test-run the type.
    pub const fn test_run(self) -> Option<TestRunKind> {
        use ProgType as P;
        Some(match self {
            P::Xdp => TestRunKind::Xdp,
            P::SocketFilter
            | P::SchedCls
            | P::SchedAct
            | P::CgroupSkb
            | P::LwtIn
            | P::LwtOut
            | P::LwtXmit => TestRunKind::Skb,
            P::RawTracepoint => TestRunKind::RawTracepoint,
            P::Syscall => TestRunKind::Syscall,
            _ => return None,
        })
    }
}

kernel_enum! {
    /// `enum bpf_attach_type`.
    #[doc(alias = "bpf_attach_type")]
    pub enum AttachType {
        CgroupInetIngress = 0, BPF_CGROUP_INET_INGRESS, "cgroup_inet_ingress";
        CgroupInetEgress = 1, BPF_CGROUP_INET_EGRESS, "cgroup_inet_egress";
        CgroupInetSockCreate = 2, BPF_CGROUP_INET_SOCK_CREATE, "cgroup_inet_sock_create";
        CgroupSockOps = 3, BPF_CGROUP_SOCK_OPS, "cgroup_sock_ops";
        SkSkbStreamParser = 4, BPF_SK_SKB_STREAM_PARSER, "sk_skb_stream_parser";
        SkSkbStreamVerdict = 5, BPF_SK_SKB_STREAM_VERDICT, "sk_skb_stream_verdict";
        CgroupDevice = 6, BPF_CGROUP_DEVICE, "cgroup_device";
        SkMsgVerdict = 7, BPF_SK_MSG_VERDICT, "sk_msg_verdict";
        CgroupInet4Bind = 8, BPF_CGROUP_INET4_BIND, "cgroup_inet4_bind";
        CgroupInet6Bind = 9, BPF_CGROUP_INET6_BIND, "cgroup_inet6_bind";
        CgroupInet4Connect = 10, BPF_CGROUP_INET4_CONNECT, "cgroup_inet4_connect";
        CgroupInet6Connect = 11, BPF_CGROUP_INET6_CONNECT, "cgroup_inet6_connect";
        CgroupInet4PostBind = 12, BPF_CGROUP_INET4_POST_BIND, "cgroup_inet4_post_bind";
        CgroupInet6PostBind = 13, BPF_CGROUP_INET6_POST_BIND, "cgroup_inet6_post_bind";
        CgroupUdp4Sendmsg = 14, BPF_CGROUP_UDP4_SENDMSG, "cgroup_udp4_sendmsg";
        CgroupUdp6Sendmsg = 15, BPF_CGROUP_UDP6_SENDMSG, "cgroup_udp6_sendmsg";
        LircMode2 = 16, BPF_LIRC_MODE2, "lirc_mode2";
        FlowDissector = 17, BPF_FLOW_DISSECTOR, "flow_dissector";
        CgroupSysctl = 18, BPF_CGROUP_SYSCTL, "cgroup_sysctl";
        CgroupUdp4Recvmsg = 19, BPF_CGROUP_UDP4_RECVMSG, "cgroup_udp4_recvmsg";
        CgroupUdp6Recvmsg = 20, BPF_CGROUP_UDP6_RECVMSG, "cgroup_udp6_recvmsg";
        CgroupGetsockopt = 21, BPF_CGROUP_GETSOCKOPT, "cgroup_getsockopt";
        CgroupSetsockopt = 22, BPF_CGROUP_SETSOCKOPT, "cgroup_setsockopt";
        TraceRawTp = 23, BPF_TRACE_RAW_TP, "trace_raw_tp";
        TraceFentry = 24, BPF_TRACE_FENTRY, "trace_fentry";
        TraceFexit = 25, BPF_TRACE_FEXIT, "trace_fexit";
        ModifyReturn = 26, BPF_MODIFY_RETURN, "modify_return";
        LsmMac = 27, BPF_LSM_MAC, "lsm_mac";
        TraceIter = 28, BPF_TRACE_ITER, "trace_iter";
        CgroupInet4Getpeername = 29, BPF_CGROUP_INET4_GETPEERNAME, "cgroup_inet4_getpeername";
        CgroupInet6Getpeername = 30, BPF_CGROUP_INET6_GETPEERNAME, "cgroup_inet6_getpeername";
        CgroupInet4Getsockname = 31, BPF_CGROUP_INET4_GETSOCKNAME, "cgroup_inet4_getsockname";
        CgroupInet6Getsockname = 32, BPF_CGROUP_INET6_GETSOCKNAME, "cgroup_inet6_getsockname";
        XdpDevmap = 33, BPF_XDP_DEVMAP, "xdp_devmap";
        CgroupInetSockRelease = 34, BPF_CGROUP_INET_SOCK_RELEASE, "cgroup_inet_sock_release";
        XdpCpumap = 35, BPF_XDP_CPUMAP, "xdp_cpumap";
        SkLookup = 36, BPF_SK_LOOKUP, "sk_lookup";
        Xdp = 37, BPF_XDP, "xdp";
        SkSkbVerdict = 38, BPF_SK_SKB_VERDICT, "sk_skb_verdict";
        SkReuseportSelect = 39, BPF_SK_REUSEPORT_SELECT, "sk_reuseport_select";
        SkReuseportSelectOrMigrate = 40, BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, "sk_reuseport_select_or_migrate";
        PerfEvent = 41, BPF_PERF_EVENT, "perf_event";
        TraceKprobeMulti = 42, BPF_TRACE_KPROBE_MULTI, "trace_kprobe_multi";
        LsmCgroup = 43, BPF_LSM_CGROUP, "lsm_cgroup";
        StructOps = 44, BPF_STRUCT_OPS, "struct_ops";
        Netfilter = 45, BPF_NETFILTER, "netfilter";
        TcxIngress = 46, BPF_TCX_INGRESS, "tcx_ingress";
        TcxEgress = 47, BPF_TCX_EGRESS, "tcx_egress";
        TraceUprobeMulti = 48, BPF_TRACE_UPROBE_MULTI, "trace_uprobe_multi";
        CgroupUnixConnect = 49, BPF_CGROUP_UNIX_CONNECT, "cgroup_unix_connect";
        CgroupUnixSendmsg = 50, BPF_CGROUP_UNIX_SENDMSG, "cgroup_unix_sendmsg";
        CgroupUnixRecvmsg = 51, BPF_CGROUP_UNIX_RECVMSG, "cgroup_unix_recvmsg";
        CgroupUnixGetpeername = 52, BPF_CGROUP_UNIX_GETPEERNAME, "cgroup_unix_getpeername";
        CgroupUnixGetsockname = 53, BPF_CGROUP_UNIX_GETSOCKNAME, "cgroup_unix_getsockname";
        NetkitPrimary = 54, BPF_NETKIT_PRIMARY, "netkit_primary";
        NetkitPeer = 55, BPF_NETKIT_PEER, "netkit_peer";
        TraceKprobeSession = 56, BPF_TRACE_KPROBE_SESSION, "trace_kprobe_session";
        TraceUprobeSession = 57, BPF_TRACE_UPROBE_SESSION, "trace_uprobe_session";
    }
}

kernel_enum! {
    /// `enum bpf_map_type`: every map type the kernel knows, with its number.
    ///
    /// Only some are implemented by bpfvm's maps; the rest exist so that
    /// objects and tools can name them.
    #[doc(alias = "bpf_map_type")]
    #[derive(Default)]
    pub enum MapType {
        #[default]
        Unspec = 0, BPF_MAP_TYPE_UNSPEC, "unspec";
        Hash = 1, BPF_MAP_TYPE_HASH, "hash";
        Array = 2, BPF_MAP_TYPE_ARRAY, "array";
        ProgArray = 3, BPF_MAP_TYPE_PROG_ARRAY, "prog_array";
        PerfEventArray = 4, BPF_MAP_TYPE_PERF_EVENT_ARRAY, "perf_event_array";
        PercpuHash = 5, BPF_MAP_TYPE_PERCPU_HASH, "percpu_hash";
        PercpuArray = 6, BPF_MAP_TYPE_PERCPU_ARRAY, "percpu_array";
        StackTrace = 7, BPF_MAP_TYPE_STACK_TRACE, "stack_trace";
        CgroupArray = 8, BPF_MAP_TYPE_CGROUP_ARRAY, "cgroup_array";
        LruHash = 9, BPF_MAP_TYPE_LRU_HASH, "lru_hash";
        LruPercpuHash = 10, BPF_MAP_TYPE_LRU_PERCPU_HASH, "lru_percpu_hash";
        LpmTrie = 11, BPF_MAP_TYPE_LPM_TRIE, "lpm_trie";
        ArrayOfMaps = 12, BPF_MAP_TYPE_ARRAY_OF_MAPS, "array_of_maps";
        HashOfMaps = 13, BPF_MAP_TYPE_HASH_OF_MAPS, "hash_of_maps";
        Devmap = 14, BPF_MAP_TYPE_DEVMAP, "devmap";
        Sockmap = 15, BPF_MAP_TYPE_SOCKMAP, "sockmap";
        Cpumap = 16, BPF_MAP_TYPE_CPUMAP, "cpumap";
        Xskmap = 17, BPF_MAP_TYPE_XSKMAP, "xskmap";
        Sockhash = 18, BPF_MAP_TYPE_SOCKHASH, "sockhash";
        CgroupStorage = 19, BPF_MAP_TYPE_CGROUP_STORAGE, "cgroup_storage";
        ReuseportSockarray = 20, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, "reuseport_sockarray";
        PercpuCgroupStorage = 21, BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE, "percpu_cgroup_storage";
        Queue = 22, BPF_MAP_TYPE_QUEUE, "queue";
        Stack = 23, BPF_MAP_TYPE_STACK, "stack";
        SkStorage = 24, BPF_MAP_TYPE_SK_STORAGE, "sk_storage";
        DevmapHash = 25, BPF_MAP_TYPE_DEVMAP_HASH, "devmap_hash";
        StructOps = 26, BPF_MAP_TYPE_STRUCT_OPS, "struct_ops";
        Ringbuf = 27, BPF_MAP_TYPE_RINGBUF, "ringbuf";
        InodeStorage = 28, BPF_MAP_TYPE_INODE_STORAGE, "inode_storage";
        TaskStorage = 29, BPF_MAP_TYPE_TASK_STORAGE, "task_storage";
        BloomFilter = 30, BPF_MAP_TYPE_BLOOM_FILTER, "bloom_filter";
        UserRingbuf = 31, BPF_MAP_TYPE_USER_RINGBUF, "user_ringbuf";
        CgrpStorage = 32, BPF_MAP_TYPE_CGRP_STORAGE, "cgrp_storage";
        Arena = 33, BPF_MAP_TYPE_ARENA, "arena";
    }
}

impl MapType {
    /// Whether the type keeps one value per CPU (user-space values are then `ncpus` values,
    /// each rounded up to 8 bytes).
    pub const fn is_percpu(self) -> bool {
        matches!(
            self,
            MapType::PercpuHash
                | MapType::PercpuArray
                | MapType::LruPercpuHash
                | MapType::PercpuCgroupStorage
        )
    }

    /// Whether the type is a map of maps (values are inner maps).
    pub const fn is_map_in_map(self) -> bool {
        matches!(self, MapType::ArrayOfMaps | MapType::HashOfMaps)
    }
}

/// `BPF_OBJ_NAME_LEN`: object names hold at most 15 bytes and a NUL.
pub const BPF_OBJ_NAME_LEN: usize = 16;

// `BPF_MAP_UPDATE_ELEM` and `BPF_MAP_LOOKUP_ELEM` flags (`u64 flags`).

/// Update flag: create a new element or update an existing one.
pub const BPF_ANY: u64 = 0;
/// Update flag: create a new element only if it did not exist.
pub const BPF_NOEXIST: u64 = 1;
/// Update flag: update an existing element only.
pub const BPF_EXIST: u64 = 2;
/// Update/lookup flag: take the value's `bpf_spin_lock` while copying.
pub const BPF_F_LOCK: u64 = 4;

// `BPF_MAP_CREATE` flags (`map_flags`).

/// Map flag: do not preallocate elements (accepted; bpfvm always preallocates).
pub const BPF_F_NO_PREALLOC: u32 = 1 << 0;
/// Map flag: per-CPU LRU lists instead of one common list (accepted; bpfvm keeps one exact list).
pub const BPF_F_NO_COMMON_LRU: u32 = 1 << 1;
/// Map flag: `numa_node` is valid.
pub const BPF_F_NUMA_NODE: u32 = 1 << 2;
/// Map flag: user space may only read.
pub const BPF_F_RDONLY: u32 = 1 << 3;
/// Map flag: user space may only write.
pub const BPF_F_WRONLY: u32 = 1 << 4;
/// Map flag (stack trace maps): store build ids.
pub const BPF_F_STACK_BUILD_ID: u32 = 1 << 5;
/// Map flag: hash seed zero (bpfvm's hash seed is always fixed, so iteration order is stable).
pub const BPF_F_ZERO_SEED: u32 = 1 << 6;
/// Map flag: programs may only read.
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// Map flag: programs may only write.
pub const BPF_F_WRONLY_PROG: u32 = 1 << 8;
/// Map flag: clone local storage.
pub const BPF_F_CLONE: u32 = 1 << 9;
/// Map flag: array memory may be mmap()ed.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;
/// Map flag (perf event arrays): keep elements after the last user reference.
pub const BPF_F_PRESERVE_ELEMS: u32 = 1 << 11;
/// Map flag (inner map templates): inner maps may have any max_entries.
pub const BPF_F_INNER_MAP: u32 = 1 << 12;
/// Map flag (struct_ops): create a link.
pub const BPF_F_LINK: u32 = 1 << 13;
/// Flag for BPF_OBJ_GET: path fd.
pub const BPF_F_PATH_FD: u32 = 1 << 14;
/// Map flag (struct_ops): value type BTF object fd.
pub const BPF_F_VTYPE_BTF_OBJ_FD: u32 = 1 << 15;
/// Flag: BPF token fd.
pub const BPF_F_TOKEN_FD: u32 = 1 << 16;
/// Map flag (arena): fault on unmapped accesses.
pub const BPF_F_SEGV_ON_FAULT: u32 = 1 << 17;
/// Map flag (arena): no user-space address conversion.
pub const BPF_F_NO_USER_CONV: u32 = 1 << 18;

/// The access flags (`BPF_F_ACCESS_MASK` in the kernel).
pub const BPF_F_ACCESS_MASK: u32 =
    BPF_F_RDONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY | BPF_F_WRONLY_PROG;

// `BPF_PROG_LOAD` flags (`prog_flags`).

/// Program flag: check alignment strictly, as on an architecture without
/// efficient unaligned access.
pub const BPF_F_STRICT_ALIGNMENT: u32 = 1 << 0;
/// Program flag: skip alignment checks.
pub const BPF_F_ANY_ALIGNMENT: u32 = 1 << 1;
/// Program flag for sleepable programs (`*.s` sections).
pub const BPF_F_SLEEPABLE: u32 = 1 << 4;
/// Program flag for `xdp.frags` sections.
pub const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;
/// Program flag: an XDP program bound to its device's kfuncs only.
pub const BPF_F_XDP_DEV_BOUND_ONLY: u32 = 1 << 6;

// `BPF_PROG_TEST_RUN` flags (`test.flags`).

/// Test-run flag: the frame arrived on a live interface (the datapath sets
/// it); the run then looks like the kernel's XDP hook, e.g. in the trace
/// pipe's context flags (`..s2.`, softirq) instead of a test run's (`b..11`).
pub const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;
/// Test-run flag: the skb starts `CHECKSUM_COMPLETE` with the sum of the
/// packet from the network header, and the run fails with -EBADMSG if
/// `skb->csum` no longer sums the packet at the end.
pub const BPF_F_TEST_SKB_CHECKSUM_COMPLETE: u32 = 1 << 2;

/// `enum bpf_func_id`: the helper ids a `call` instruction's `imm` names,
/// upper-cased (`BPF_FUNC_map_lookup_elem` is [`BPF_FUNC_MAP_LOOKUP_ELEM`]).
/// The helper registry (`helpers::HELPERS`) has the same ids and names; its
/// tests check every constant here against it.
macro_rules! func_ids {
    ($($name:ident = $id:literal,)*) => {
        $(#[doc = concat!("Helper id ", stringify!($id), ".")]
        pub const $name: i32 = $id;)*

        /// Every `BPF_FUNC_*` constant with its name, in id order.
        pub const BPF_FUNC_IDS: &[(&str, i32)] = &[$((stringify!($name), $id),)*];
    };
}

func_ids! {
    BPF_FUNC_UNSPEC = 0,
    BPF_FUNC_MAP_LOOKUP_ELEM = 1,
    BPF_FUNC_MAP_UPDATE_ELEM = 2,
    BPF_FUNC_MAP_DELETE_ELEM = 3,
    BPF_FUNC_PROBE_READ = 4,
    BPF_FUNC_KTIME_GET_NS = 5,
    BPF_FUNC_TRACE_PRINTK = 6,
    BPF_FUNC_GET_PRANDOM_U32 = 7,
    BPF_FUNC_GET_SMP_PROCESSOR_ID = 8,
    BPF_FUNC_SKB_STORE_BYTES = 9,
    BPF_FUNC_L3_CSUM_REPLACE = 10,
    BPF_FUNC_L4_CSUM_REPLACE = 11,
    BPF_FUNC_TAIL_CALL = 12,
    BPF_FUNC_CLONE_REDIRECT = 13,
    BPF_FUNC_GET_CURRENT_PID_TGID = 14,
    BPF_FUNC_GET_CURRENT_UID_GID = 15,
    BPF_FUNC_GET_CURRENT_COMM = 16,
    BPF_FUNC_GET_CGROUP_CLASSID = 17,
    BPF_FUNC_SKB_VLAN_PUSH = 18,
    BPF_FUNC_SKB_VLAN_POP = 19,
    BPF_FUNC_SKB_GET_TUNNEL_KEY = 20,
    BPF_FUNC_SKB_SET_TUNNEL_KEY = 21,
    BPF_FUNC_PERF_EVENT_READ = 22,
    BPF_FUNC_REDIRECT = 23,
    BPF_FUNC_GET_ROUTE_REALM = 24,
    BPF_FUNC_PERF_EVENT_OUTPUT = 25,
    BPF_FUNC_SKB_LOAD_BYTES = 26,
    BPF_FUNC_GET_STACKID = 27,
    BPF_FUNC_CSUM_DIFF = 28,
    BPF_FUNC_SKB_GET_TUNNEL_OPT = 29,
    BPF_FUNC_SKB_SET_TUNNEL_OPT = 30,
    BPF_FUNC_SKB_CHANGE_PROTO = 31,
    BPF_FUNC_SKB_CHANGE_TYPE = 32,
    BPF_FUNC_SKB_UNDER_CGROUP = 33,
    BPF_FUNC_GET_HASH_RECALC = 34,
    BPF_FUNC_GET_CURRENT_TASK = 35,
    BPF_FUNC_PROBE_WRITE_USER = 36,
    BPF_FUNC_CURRENT_TASK_UNDER_CGROUP = 37,
    BPF_FUNC_SKB_CHANGE_TAIL = 38,
    BPF_FUNC_SKB_PULL_DATA = 39,
    BPF_FUNC_CSUM_UPDATE = 40,
    BPF_FUNC_SET_HASH_INVALID = 41,
    BPF_FUNC_GET_NUMA_NODE_ID = 42,
    BPF_FUNC_SKB_CHANGE_HEAD = 43,
    BPF_FUNC_XDP_ADJUST_HEAD = 44,
    BPF_FUNC_PROBE_READ_STR = 45,
    BPF_FUNC_GET_SOCKET_COOKIE = 46,
    BPF_FUNC_GET_SOCKET_UID = 47,
    BPF_FUNC_SET_HASH = 48,
    BPF_FUNC_SETSOCKOPT = 49,
    BPF_FUNC_SKB_ADJUST_ROOM = 50,
    BPF_FUNC_REDIRECT_MAP = 51,
    BPF_FUNC_SK_REDIRECT_MAP = 52,
    BPF_FUNC_SOCK_MAP_UPDATE = 53,
    BPF_FUNC_XDP_ADJUST_META = 54,
    BPF_FUNC_PERF_EVENT_READ_VALUE = 55,
    BPF_FUNC_PERF_PROG_READ_VALUE = 56,
    BPF_FUNC_GETSOCKOPT = 57,
    BPF_FUNC_OVERRIDE_RETURN = 58,
    BPF_FUNC_SOCK_OPS_CB_FLAGS_SET = 59,
    BPF_FUNC_MSG_REDIRECT_MAP = 60,
    BPF_FUNC_MSG_APPLY_BYTES = 61,
    BPF_FUNC_MSG_CORK_BYTES = 62,
    BPF_FUNC_MSG_PULL_DATA = 63,
    BPF_FUNC_BIND = 64,
    BPF_FUNC_XDP_ADJUST_TAIL = 65,
    BPF_FUNC_SKB_GET_XFRM_STATE = 66,
    BPF_FUNC_GET_STACK = 67,
    BPF_FUNC_SKB_LOAD_BYTES_RELATIVE = 68,
    BPF_FUNC_FIB_LOOKUP = 69,
    BPF_FUNC_SOCK_HASH_UPDATE = 70,
    BPF_FUNC_MSG_REDIRECT_HASH = 71,
    BPF_FUNC_SK_REDIRECT_HASH = 72,
    BPF_FUNC_LWT_PUSH_ENCAP = 73,
    BPF_FUNC_LWT_SEG6_STORE_BYTES = 74,
    BPF_FUNC_LWT_SEG6_ADJUST_SRH = 75,
    BPF_FUNC_LWT_SEG6_ACTION = 76,
    BPF_FUNC_RC_REPEAT = 77,
    BPF_FUNC_RC_KEYDOWN = 78,
    BPF_FUNC_SKB_CGROUP_ID = 79,
    BPF_FUNC_GET_CURRENT_CGROUP_ID = 80,
    BPF_FUNC_GET_LOCAL_STORAGE = 81,
    BPF_FUNC_SK_SELECT_REUSEPORT = 82,
    BPF_FUNC_SKB_ANCESTOR_CGROUP_ID = 83,
    BPF_FUNC_SK_LOOKUP_TCP = 84,
    BPF_FUNC_SK_LOOKUP_UDP = 85,
    BPF_FUNC_SK_RELEASE = 86,
    BPF_FUNC_MAP_PUSH_ELEM = 87,
    BPF_FUNC_MAP_POP_ELEM = 88,
    BPF_FUNC_MAP_PEEK_ELEM = 89,
    BPF_FUNC_MSG_PUSH_DATA = 90,
    BPF_FUNC_MSG_POP_DATA = 91,
    BPF_FUNC_RC_POINTER_REL = 92,
    BPF_FUNC_SPIN_LOCK = 93,
    BPF_FUNC_SPIN_UNLOCK = 94,
    BPF_FUNC_SK_FULLSOCK = 95,
    BPF_FUNC_TCP_SOCK = 96,
    BPF_FUNC_SKB_ECN_SET_CE = 97,
    BPF_FUNC_GET_LISTENER_SOCK = 98,
    BPF_FUNC_SKC_LOOKUP_TCP = 99,
    BPF_FUNC_TCP_CHECK_SYNCOOKIE = 100,
    BPF_FUNC_SYSCTL_GET_NAME = 101,
    BPF_FUNC_SYSCTL_GET_CURRENT_VALUE = 102,
    BPF_FUNC_SYSCTL_GET_NEW_VALUE = 103,
    BPF_FUNC_SYSCTL_SET_NEW_VALUE = 104,
    BPF_FUNC_STRTOL = 105,
    BPF_FUNC_STRTOUL = 106,
    BPF_FUNC_SK_STORAGE_GET = 107,
    BPF_FUNC_SK_STORAGE_DELETE = 108,
    BPF_FUNC_SEND_SIGNAL = 109,
    BPF_FUNC_TCP_GEN_SYNCOOKIE = 110,
    BPF_FUNC_SKB_OUTPUT = 111,
    BPF_FUNC_PROBE_READ_USER = 112,
    BPF_FUNC_PROBE_READ_KERNEL = 113,
    BPF_FUNC_PROBE_READ_USER_STR = 114,
    BPF_FUNC_PROBE_READ_KERNEL_STR = 115,
    BPF_FUNC_TCP_SEND_ACK = 116,
    BPF_FUNC_SEND_SIGNAL_THREAD = 117,
    BPF_FUNC_JIFFIES64 = 118,
    BPF_FUNC_READ_BRANCH_RECORDS = 119,
    BPF_FUNC_GET_NS_CURRENT_PID_TGID = 120,
    BPF_FUNC_XDP_OUTPUT = 121,
    BPF_FUNC_GET_NETNS_COOKIE = 122,
    BPF_FUNC_GET_CURRENT_ANCESTOR_CGROUP_ID = 123,
    BPF_FUNC_SK_ASSIGN = 124,
    BPF_FUNC_KTIME_GET_BOOT_NS = 125,
    BPF_FUNC_SEQ_PRINTF = 126,
    BPF_FUNC_SEQ_WRITE = 127,
    BPF_FUNC_SK_CGROUP_ID = 128,
    BPF_FUNC_SK_ANCESTOR_CGROUP_ID = 129,
    BPF_FUNC_RINGBUF_OUTPUT = 130,
    BPF_FUNC_RINGBUF_RESERVE = 131,
    BPF_FUNC_RINGBUF_SUBMIT = 132,
    BPF_FUNC_RINGBUF_DISCARD = 133,
    BPF_FUNC_RINGBUF_QUERY = 134,
    BPF_FUNC_CSUM_LEVEL = 135,
    BPF_FUNC_SKC_TO_TCP6_SOCK = 136,
    BPF_FUNC_SKC_TO_TCP_SOCK = 137,
    BPF_FUNC_SKC_TO_TCP_TIMEWAIT_SOCK = 138,
    BPF_FUNC_SKC_TO_TCP_REQUEST_SOCK = 139,
    BPF_FUNC_SKC_TO_UDP6_SOCK = 140,
    BPF_FUNC_GET_TASK_STACK = 141,
    BPF_FUNC_LOAD_HDR_OPT = 142,
    BPF_FUNC_STORE_HDR_OPT = 143,
    BPF_FUNC_RESERVE_HDR_OPT = 144,
    BPF_FUNC_INODE_STORAGE_GET = 145,
    BPF_FUNC_INODE_STORAGE_DELETE = 146,
    BPF_FUNC_D_PATH = 147,
    BPF_FUNC_COPY_FROM_USER = 148,
    BPF_FUNC_SNPRINTF_BTF = 149,
    BPF_FUNC_SEQ_PRINTF_BTF = 150,
    BPF_FUNC_SKB_CGROUP_CLASSID = 151,
    BPF_FUNC_REDIRECT_NEIGH = 152,
    BPF_FUNC_PER_CPU_PTR = 153,
    BPF_FUNC_THIS_CPU_PTR = 154,
    BPF_FUNC_REDIRECT_PEER = 155,
    BPF_FUNC_TASK_STORAGE_GET = 156,
    BPF_FUNC_TASK_STORAGE_DELETE = 157,
    BPF_FUNC_GET_CURRENT_TASK_BTF = 158,
    BPF_FUNC_BPRM_OPTS_SET = 159,
    BPF_FUNC_KTIME_GET_COARSE_NS = 160,
    BPF_FUNC_IMA_INODE_HASH = 161,
    BPF_FUNC_SOCK_FROM_FILE = 162,
    BPF_FUNC_CHECK_MTU = 163,
    BPF_FUNC_FOR_EACH_MAP_ELEM = 164,
    BPF_FUNC_SNPRINTF = 165,
    BPF_FUNC_SYS_BPF = 166,
    BPF_FUNC_BTF_FIND_BY_NAME_KIND = 167,
    BPF_FUNC_SYS_CLOSE = 168,
    BPF_FUNC_TIMER_INIT = 169,
    BPF_FUNC_TIMER_SET_CALLBACK = 170,
    BPF_FUNC_TIMER_START = 171,
    BPF_FUNC_TIMER_CANCEL = 172,
    BPF_FUNC_GET_FUNC_IP = 173,
    BPF_FUNC_GET_ATTACH_COOKIE = 174,
    BPF_FUNC_TASK_PT_REGS = 175,
    BPF_FUNC_GET_BRANCH_SNAPSHOT = 176,
    BPF_FUNC_TRACE_VPRINTK = 177,
    BPF_FUNC_SKC_TO_UNIX_SOCK = 178,
    BPF_FUNC_KALLSYMS_LOOKUP_NAME = 179,
    BPF_FUNC_FIND_VMA = 180,
    BPF_FUNC_LOOP = 181,
    BPF_FUNC_STRNCMP = 182,
    BPF_FUNC_GET_FUNC_ARG = 183,
    BPF_FUNC_GET_FUNC_RET = 184,
    BPF_FUNC_GET_FUNC_ARG_CNT = 185,
    BPF_FUNC_GET_RETVAL = 186,
    BPF_FUNC_SET_RETVAL = 187,
    BPF_FUNC_XDP_GET_BUFF_LEN = 188,
    BPF_FUNC_XDP_LOAD_BYTES = 189,
    BPF_FUNC_XDP_STORE_BYTES = 190,
    BPF_FUNC_COPY_FROM_USER_TASK = 191,
    BPF_FUNC_SKB_SET_TSTAMP = 192,
    BPF_FUNC_IMA_FILE_HASH = 193,
    BPF_FUNC_KPTR_XCHG = 194,
    BPF_FUNC_MAP_LOOKUP_PERCPU_ELEM = 195,
    BPF_FUNC_SKC_TO_MPTCP_SOCK = 196,
    BPF_FUNC_DYNPTR_FROM_MEM = 197,
    BPF_FUNC_RINGBUF_RESERVE_DYNPTR = 198,
    BPF_FUNC_RINGBUF_SUBMIT_DYNPTR = 199,
    BPF_FUNC_RINGBUF_DISCARD_DYNPTR = 200,
    BPF_FUNC_DYNPTR_READ = 201,
    BPF_FUNC_DYNPTR_WRITE = 202,
    BPF_FUNC_DYNPTR_DATA = 203,
    BPF_FUNC_TCP_RAW_GEN_SYNCOOKIE_IPV4 = 204,
    BPF_FUNC_TCP_RAW_GEN_SYNCOOKIE_IPV6 = 205,
    BPF_FUNC_TCP_RAW_CHECK_SYNCOOKIE_IPV4 = 206,
    BPF_FUNC_TCP_RAW_CHECK_SYNCOOKIE_IPV6 = 207,
    BPF_FUNC_KTIME_GET_TAI_NS = 208,
    BPF_FUNC_USER_RINGBUF_DRAIN = 209,
    BPF_FUNC_CGRP_STORAGE_GET = 210,
    BPF_FUNC_CGRP_STORAGE_DELETE = 211,
}

/// `BPF_PROG_TYPE_UNSPEC`, as the zeroed `bpf_attr` has it.
impl Default for ProgType {
    fn default() -> Self {
        ProgType::Unspec
    }
}

/// Attach type 0 (`BPF_CGROUP_INET_INGRESS`), as the zeroed `bpf_attr` has it
/// for programs that take none.
impl Default for AttachType {
    fn default() -> Self {
        AttachType::from_u32(0).expect("attach type 0 exists")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_round_trip() {
        for &p in ProgType::ALL {
            assert_eq!(ProgType::from_u32(p.as_u32()), Some(p));
            assert_eq!(ProgType::from_name(p.name()), Some(p));
            assert!(p.kernel_name().starts_with("BPF_PROG_TYPE_"));
        }
        for &a in AttachType::ALL {
            assert_eq!(AttachType::from_u32(a.as_u32()), Some(a));
            assert_eq!(AttachType::from_name(a.name()), Some(a));
        }
        for &m in MapType::ALL {
            assert_eq!(MapType::from_u32(m.as_u32()), Some(m));
            assert_eq!(MapType::from_name(m.name()), Some(m));
            assert!(m.kernel_name().starts_with("BPF_MAP_TYPE_"));
        }
        assert_eq!(BPF_PROG_TYPE_XDP, ProgType::Xdp as u32);
        assert_eq!(BPF_XDP_DEVMAP, 33);
        assert_eq!(BPF_MAP_TYPE_ARENA, 33);
        assert_eq!(MapType::default(), MapType::Unspec);
    }
}
