//! Program types, attach types, and libbpf's `SEC()` name conventions that
//! map an ELF section name to both.
//!
//! Numbers are the kernel's (`enum bpf_prog_type`, `enum bpf_attach_type`),
//! names are the ones bpftool prints (`prog show`: "xdp", "sched_cls", ...).

macro_rules! kernel_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($variant:ident = $value:literal, $kname:literal, $text:literal;)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum $name {
            $(#[doc = $kname] #[doc(alias = $kname)] $variant = $value,)*
        }

        impl $name {
            /// Every value, in kernel order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The kernel's number.
            pub fn as_u32(self) -> u32 {
                self as u32
            }

            /// The value with this kernel number, if it is known.
            pub fn from_u32(v: u32) -> Option<Self> {
                match v {
                    $($value => Some($name::$variant),)*
                    _ => None,
                }
            }

            /// The name bpftool prints.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The kernel constant's name.
            pub fn kernel_name(self) -> &'static str {
                match self {
                    $($name::$variant => $kname,)*
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
    };
}

kernel_enum! {
    /// `enum bpf_prog_type`.
    #[doc(alias = "bpf_prog_type")]
    pub enum ProgType {
        Unspec = 0, "BPF_PROG_TYPE_UNSPEC", "unspec";
        SocketFilter = 1, "BPF_PROG_TYPE_SOCKET_FILTER", "socket_filter";
        Kprobe = 2, "BPF_PROG_TYPE_KPROBE", "kprobe";
        SchedCls = 3, "BPF_PROG_TYPE_SCHED_CLS", "sched_cls";
        SchedAct = 4, "BPF_PROG_TYPE_SCHED_ACT", "sched_act";
        Tracepoint = 5, "BPF_PROG_TYPE_TRACEPOINT", "tracepoint";
        Xdp = 6, "BPF_PROG_TYPE_XDP", "xdp";
        PerfEvent = 7, "BPF_PROG_TYPE_PERF_EVENT", "perf_event";
        CgroupSkb = 8, "BPF_PROG_TYPE_CGROUP_SKB", "cgroup_skb";
        CgroupSock = 9, "BPF_PROG_TYPE_CGROUP_SOCK", "cgroup_sock";
        LwtIn = 10, "BPF_PROG_TYPE_LWT_IN", "lwt_in";
        LwtOut = 11, "BPF_PROG_TYPE_LWT_OUT", "lwt_out";
        LwtXmit = 12, "BPF_PROG_TYPE_LWT_XMIT", "lwt_xmit";
        SockOps = 13, "BPF_PROG_TYPE_SOCK_OPS", "sock_ops";
        SkSkb = 14, "BPF_PROG_TYPE_SK_SKB", "sk_skb";
        CgroupDevice = 15, "BPF_PROG_TYPE_CGROUP_DEVICE", "cgroup_device";
        SkMsg = 16, "BPF_PROG_TYPE_SK_MSG", "sk_msg";
        RawTracepoint = 17, "BPF_PROG_TYPE_RAW_TRACEPOINT", "raw_tracepoint";
        CgroupSockAddr = 18, "BPF_PROG_TYPE_CGROUP_SOCK_ADDR", "cgroup_sock_addr";
        LwtSeg6local = 19, "BPF_PROG_TYPE_LWT_SEG6LOCAL", "lwt_seg6local";
        LircMode2 = 20, "BPF_PROG_TYPE_LIRC_MODE2", "lirc_mode2";
        SkReuseport = 21, "BPF_PROG_TYPE_SK_REUSEPORT", "sk_reuseport";
        FlowDissector = 22, "BPF_PROG_TYPE_FLOW_DISSECTOR", "flow_dissector";
        CgroupSysctl = 23, "BPF_PROG_TYPE_CGROUP_SYSCTL", "cgroup_sysctl";
        RawTracepointWritable = 24, "BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE", "raw_tracepoint_writable";
        CgroupSockopt = 25, "BPF_PROG_TYPE_CGROUP_SOCKOPT", "cgroup_sockopt";
        Tracing = 26, "BPF_PROG_TYPE_TRACING", "tracing";
        StructOps = 27, "BPF_PROG_TYPE_STRUCT_OPS", "struct_ops";
        Ext = 28, "BPF_PROG_TYPE_EXT", "ext";
        Lsm = 29, "BPF_PROG_TYPE_LSM", "lsm";
        SkLookup = 30, "BPF_PROG_TYPE_SK_LOOKUP", "sk_lookup";
        Syscall = 31, "BPF_PROG_TYPE_SYSCALL", "syscall";
        Netfilter = 32, "BPF_PROG_TYPE_NETFILTER", "netfilter";
    }
}

kernel_enum! {
    /// `enum bpf_attach_type`.
    #[doc(alias = "bpf_attach_type")]
    pub enum AttachType {
        CgroupInetIngress = 0, "BPF_CGROUP_INET_INGRESS", "cgroup_inet_ingress";
        CgroupInetEgress = 1, "BPF_CGROUP_INET_EGRESS", "cgroup_inet_egress";
        CgroupInetSockCreate = 2, "BPF_CGROUP_INET_SOCK_CREATE", "cgroup_inet_sock_create";
        CgroupSockOps = 3, "BPF_CGROUP_SOCK_OPS", "cgroup_sock_ops";
        SkSkbStreamParser = 4, "BPF_SK_SKB_STREAM_PARSER", "sk_skb_stream_parser";
        SkSkbStreamVerdict = 5, "BPF_SK_SKB_STREAM_VERDICT", "sk_skb_stream_verdict";
        CgroupDevice = 6, "BPF_CGROUP_DEVICE", "cgroup_device";
        SkMsgVerdict = 7, "BPF_SK_MSG_VERDICT", "sk_msg_verdict";
        CgroupInet4Bind = 8, "BPF_CGROUP_INET4_BIND", "cgroup_inet4_bind";
        CgroupInet6Bind = 9, "BPF_CGROUP_INET6_BIND", "cgroup_inet6_bind";
        CgroupInet4Connect = 10, "BPF_CGROUP_INET4_CONNECT", "cgroup_inet4_connect";
        CgroupInet6Connect = 11, "BPF_CGROUP_INET6_CONNECT", "cgroup_inet6_connect";
        CgroupInet4PostBind = 12, "BPF_CGROUP_INET4_POST_BIND", "cgroup_inet4_post_bind";
        CgroupInet6PostBind = 13, "BPF_CGROUP_INET6_POST_BIND", "cgroup_inet6_post_bind";
        CgroupUdp4Sendmsg = 14, "BPF_CGROUP_UDP4_SENDMSG", "cgroup_udp4_sendmsg";
        CgroupUdp6Sendmsg = 15, "BPF_CGROUP_UDP6_SENDMSG", "cgroup_udp6_sendmsg";
        LircMode2 = 16, "BPF_LIRC_MODE2", "lirc_mode2";
        FlowDissector = 17, "BPF_FLOW_DISSECTOR", "flow_dissector";
        CgroupSysctl = 18, "BPF_CGROUP_SYSCTL", "cgroup_sysctl";
        CgroupUdp4Recvmsg = 19, "BPF_CGROUP_UDP4_RECVMSG", "cgroup_udp4_recvmsg";
        CgroupUdp6Recvmsg = 20, "BPF_CGROUP_UDP6_RECVMSG", "cgroup_udp6_recvmsg";
        CgroupGetsockopt = 21, "BPF_CGROUP_GETSOCKOPT", "cgroup_getsockopt";
        CgroupSetsockopt = 22, "BPF_CGROUP_SETSOCKOPT", "cgroup_setsockopt";
        TraceRawTp = 23, "BPF_TRACE_RAW_TP", "trace_raw_tp";
        TraceFentry = 24, "BPF_TRACE_FENTRY", "trace_fentry";
        TraceFexit = 25, "BPF_TRACE_FEXIT", "trace_fexit";
        ModifyReturn = 26, "BPF_MODIFY_RETURN", "modify_return";
        LsmMac = 27, "BPF_LSM_MAC", "lsm_mac";
        TraceIter = 28, "BPF_TRACE_ITER", "trace_iter";
        CgroupInet4Getpeername = 29, "BPF_CGROUP_INET4_GETPEERNAME", "cgroup_inet4_getpeername";
        CgroupInet6Getpeername = 30, "BPF_CGROUP_INET6_GETPEERNAME", "cgroup_inet6_getpeername";
        CgroupInet4Getsockname = 31, "BPF_CGROUP_INET4_GETSOCKNAME", "cgroup_inet4_getsockname";
        CgroupInet6Getsockname = 32, "BPF_CGROUP_INET6_GETSOCKNAME", "cgroup_inet6_getsockname";
        XdpDevmap = 33, "BPF_XDP_DEVMAP", "xdp_devmap";
        CgroupInetSockRelease = 34, "BPF_CGROUP_INET_SOCK_RELEASE", "cgroup_inet_sock_release";
        XdpCpumap = 35, "BPF_XDP_CPUMAP", "xdp_cpumap";
        SkLookup = 36, "BPF_SK_LOOKUP", "sk_lookup";
        Xdp = 37, "BPF_XDP", "xdp";
        SkSkbVerdict = 38, "BPF_SK_SKB_VERDICT", "sk_skb_verdict";
        SkReuseportSelect = 39, "BPF_SK_REUSEPORT_SELECT", "sk_reuseport_select";
        SkReuseportSelectOrMigrate = 40, "BPF_SK_REUSEPORT_SELECT_OR_MIGRATE", "sk_reuseport_select_or_migrate";
        PerfEvent = 41, "BPF_PERF_EVENT", "perf_event";
        TraceKprobeMulti = 42, "BPF_TRACE_KPROBE_MULTI", "trace_kprobe_multi";
        LsmCgroup = 43, "BPF_LSM_CGROUP", "lsm_cgroup";
        StructOps = 44, "BPF_STRUCT_OPS", "struct_ops";
        Netfilter = 45, "BPF_NETFILTER", "netfilter";
        TcxIngress = 46, "BPF_TCX_INGRESS", "tcx_ingress";
        TcxEgress = 47, "BPF_TCX_EGRESS", "tcx_egress";
        TraceUprobeMulti = 48, "BPF_TRACE_UPROBE_MULTI", "trace_uprobe_multi";
        CgroupUnixConnect = 49, "BPF_CGROUP_UNIX_CONNECT", "cgroup_unix_connect";
        CgroupUnixSendmsg = 50, "BPF_CGROUP_UNIX_SENDMSG", "cgroup_unix_sendmsg";
        CgroupUnixRecvmsg = 51, "BPF_CGROUP_UNIX_RECVMSG", "cgroup_unix_recvmsg";
        CgroupUnixGetpeername = 52, "BPF_CGROUP_UNIX_GETPEERNAME", "cgroup_unix_getpeername";
        CgroupUnixGetsockname = 53, "BPF_CGROUP_UNIX_GETSOCKNAME", "cgroup_unix_getsockname";
        NetkitPrimary = 54, "BPF_NETKIT_PRIMARY", "netkit_primary";
        NetkitPeer = 55, "BPF_NETKIT_PEER", "netkit_peer";
        TraceKprobeSession = 56, "BPF_TRACE_KPROBE_SESSION", "trace_kprobe_session";
        TraceUprobeSession = 57, "BPF_TRACE_UPROBE_SESSION", "trace_uprobe_session";
    }
}

/// `BPF_F_SLEEPABLE`: program flag for sleepable programs (`*.s` sections).
pub const BPF_F_SLEEPABLE: u32 = 1 << 4;
/// `BPF_F_XDP_HAS_FRAGS`: program flag for `xdp.frags` sections.
pub const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// What a section name says about the programs in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecDef {
    pub prog_type: ProgType,
    /// `None` where libbpf leaves `expected_attach_type` at 0 meaning "none".
    pub expected_attach_type: Option<AttachType>,
    /// `BPF_F_SLEEPABLE` / `BPF_F_XDP_HAS_FRAGS`, passed as `prog_flags`.
    pub prog_flags: u32,
    /// The part after `PREFIX/` for prefix sections (`kprobe/do_exit`
    /// -> `do_exit`, `tp/syscalls/sys_enter_execve` -> `syscalls/sys_enter_execve`);
    /// `None` when it is empty or the section is an exact name.
    pub attach_to: Option<String>,
}

const SLEEP: u32 = BPF_F_SLEEPABLE;
const FRAGS: u32 = BPF_F_XDP_HAS_FRAGS;

/// libbpf's section table, in its matching order. A pattern ending in `+`
/// matches the bare prefix or `PREFIX/anything`; any other pattern matches
/// exactly (libbpf 1.x has no sloppy prefix matching).
const SEC_DEFS: &[(&str, ProgType, Option<AttachType>, u32)] = {
    use AttachType as A;
    use ProgType as P;
    &[
        ("socket", P::SocketFilter, None, 0),
        (
            "sk_reuseport/migrate",
            P::SkReuseport,
            Some(A::SkReuseportSelectOrMigrate),
            0,
        ),
        (
            "sk_reuseport",
            P::SkReuseport,
            Some(A::SkReuseportSelect),
            0,
        ),
        ("kprobe+", P::Kprobe, None, 0),
        ("uprobe+", P::Kprobe, None, 0),
        ("uprobe.s+", P::Kprobe, None, SLEEP),
        ("kretprobe+", P::Kprobe, None, 0),
        ("uretprobe+", P::Kprobe, None, 0),
        ("uretprobe.s+", P::Kprobe, None, SLEEP),
        ("kprobe.multi+", P::Kprobe, Some(A::TraceKprobeMulti), 0),
        ("kretprobe.multi+", P::Kprobe, Some(A::TraceKprobeMulti), 0),
        ("kprobe.session+", P::Kprobe, Some(A::TraceKprobeSession), 0),
        ("uprobe.multi+", P::Kprobe, Some(A::TraceUprobeMulti), 0),
        ("uretprobe.multi+", P::Kprobe, Some(A::TraceUprobeMulti), 0),
        ("uprobe.session+", P::Kprobe, Some(A::TraceUprobeSession), 0),
        (
            "uprobe.multi.s+",
            P::Kprobe,
            Some(A::TraceUprobeMulti),
            SLEEP,
        ),
        (
            "uretprobe.multi.s+",
            P::Kprobe,
            Some(A::TraceUprobeMulti),
            SLEEP,
        ),
        (
            "uprobe.session.s+",
            P::Kprobe,
            Some(A::TraceUprobeSession),
            SLEEP,
        ),
        ("ksyscall+", P::Kprobe, None, 0),
        ("kretsyscall+", P::Kprobe, None, 0),
        ("usdt+", P::Kprobe, None, 0),
        ("usdt.s+", P::Kprobe, None, SLEEP),
        ("tc/ingress", P::SchedCls, Some(A::TcxIngress), 0),
        ("tc/egress", P::SchedCls, Some(A::TcxEgress), 0),
        ("tcx/ingress", P::SchedCls, Some(A::TcxIngress), 0),
        ("tcx/egress", P::SchedCls, Some(A::TcxEgress), 0),
        ("netkit/primary", P::SchedCls, Some(A::NetkitPrimary), 0),
        ("netkit/peer", P::SchedCls, Some(A::NetkitPeer), 0),
        ("tc", P::SchedCls, None, 0),
        ("classifier", P::SchedCls, None, 0),
        ("action", P::SchedAct, None, 0),
        ("tracepoint+", P::Tracepoint, None, 0),
        ("tp+", P::Tracepoint, None, 0),
        ("raw_tracepoint+", P::RawTracepoint, None, 0),
        ("raw_tp+", P::RawTracepoint, None, 0),
        ("raw_tracepoint.w+", P::RawTracepointWritable, None, 0),
        ("raw_tp.w+", P::RawTracepointWritable, None, 0),
        ("tp_btf+", P::Tracing, Some(A::TraceRawTp), 0),
        ("fentry+", P::Tracing, Some(A::TraceFentry), 0),
        ("fmod_ret+", P::Tracing, Some(A::ModifyReturn), 0),
        ("fexit+", P::Tracing, Some(A::TraceFexit), 0),
        ("fentry.s+", P::Tracing, Some(A::TraceFentry), SLEEP),
        ("fmod_ret.s+", P::Tracing, Some(A::ModifyReturn), SLEEP),
        ("fexit.s+", P::Tracing, Some(A::TraceFexit), SLEEP),
        ("freplace+", P::Ext, None, 0),
        ("lsm+", P::Lsm, Some(A::LsmMac), 0),
        ("lsm.s+", P::Lsm, Some(A::LsmMac), SLEEP),
        ("lsm_cgroup+", P::Lsm, Some(A::LsmCgroup), 0),
        ("iter+", P::Tracing, Some(A::TraceIter), 0),
        ("iter.s+", P::Tracing, Some(A::TraceIter), SLEEP),
        ("syscall", P::Syscall, None, SLEEP),
        ("xdp.frags/devmap", P::Xdp, Some(A::XdpDevmap), FRAGS),
        ("xdp/devmap", P::Xdp, Some(A::XdpDevmap), 0),
        ("xdp.frags/cpumap", P::Xdp, Some(A::XdpCpumap), FRAGS),
        ("xdp/cpumap", P::Xdp, Some(A::XdpCpumap), 0),
        ("xdp.frags", P::Xdp, Some(A::Xdp), FRAGS),
        ("xdp", P::Xdp, Some(A::Xdp), 0),
        ("perf_event", P::PerfEvent, None, 0),
        ("lwt_in", P::LwtIn, None, 0),
        ("lwt_out", P::LwtOut, None, 0),
        ("lwt_xmit", P::LwtXmit, None, 0),
        ("lwt_seg6local", P::LwtSeg6local, None, 0),
        ("sockops", P::SockOps, Some(A::CgroupSockOps), 0),
        (
            "sk_skb/stream_parser",
            P::SkSkb,
            Some(A::SkSkbStreamParser),
            0,
        ),
        (
            "sk_skb/stream_verdict",
            P::SkSkb,
            Some(A::SkSkbStreamVerdict),
            0,
        ),
        ("sk_skb/verdict", P::SkSkb, Some(A::SkSkbVerdict), 0),
        ("sk_skb", P::SkSkb, None, 0),
        ("sk_msg", P::SkMsg, Some(A::SkMsgVerdict), 0),
        ("lirc_mode2", P::LircMode2, Some(A::LircMode2), 0),
        (
            "flow_dissector",
            P::FlowDissector,
            Some(A::FlowDissector),
            0,
        ),
        (
            "cgroup_skb/ingress",
            P::CgroupSkb,
            Some(A::CgroupInetIngress),
            0,
        ),
        (
            "cgroup_skb/egress",
            P::CgroupSkb,
            Some(A::CgroupInetEgress),
            0,
        ),
        ("cgroup/skb", P::CgroupSkb, None, 0),
        (
            "cgroup/sock_create",
            P::CgroupSock,
            Some(A::CgroupInetSockCreate),
            0,
        ),
        (
            "cgroup/sock_release",
            P::CgroupSock,
            Some(A::CgroupInetSockRelease),
            0,
        ),
        (
            "cgroup/sock",
            P::CgroupSock,
            Some(A::CgroupInetSockCreate),
            0,
        ),
        (
            "cgroup/post_bind4",
            P::CgroupSock,
            Some(A::CgroupInet4PostBind),
            0,
        ),
        (
            "cgroup/post_bind6",
            P::CgroupSock,
            Some(A::CgroupInet6PostBind),
            0,
        ),
        (
            "cgroup/bind4",
            P::CgroupSockAddr,
            Some(A::CgroupInet4Bind),
            0,
        ),
        (
            "cgroup/bind6",
            P::CgroupSockAddr,
            Some(A::CgroupInet6Bind),
            0,
        ),
        (
            "cgroup/connect4",
            P::CgroupSockAddr,
            Some(A::CgroupInet4Connect),
            0,
        ),
        (
            "cgroup/connect6",
            P::CgroupSockAddr,
            Some(A::CgroupInet6Connect),
            0,
        ),
        (
            "cgroup/connect_unix",
            P::CgroupSockAddr,
            Some(A::CgroupUnixConnect),
            0,
        ),
        (
            "cgroup/sendmsg4",
            P::CgroupSockAddr,
            Some(A::CgroupUdp4Sendmsg),
            0,
        ),
        (
            "cgroup/sendmsg6",
            P::CgroupSockAddr,
            Some(A::CgroupUdp6Sendmsg),
            0,
        ),
        (
            "cgroup/sendmsg_unix",
            P::CgroupSockAddr,
            Some(A::CgroupUnixSendmsg),
            0,
        ),
        (
            "cgroup/recvmsg4",
            P::CgroupSockAddr,
            Some(A::CgroupUdp4Recvmsg),
            0,
        ),
        (
            "cgroup/recvmsg6",
            P::CgroupSockAddr,
            Some(A::CgroupUdp6Recvmsg),
            0,
        ),
        (
            "cgroup/recvmsg_unix",
            P::CgroupSockAddr,
            Some(A::CgroupUnixRecvmsg),
            0,
        ),
        (
            "cgroup/getpeername4",
            P::CgroupSockAddr,
            Some(A::CgroupInet4Getpeername),
            0,
        ),
        (
            "cgroup/getpeername6",
            P::CgroupSockAddr,
            Some(A::CgroupInet6Getpeername),
            0,
        ),
        (
            "cgroup/getpeername_unix",
            P::CgroupSockAddr,
            Some(A::CgroupUnixGetpeername),
            0,
        ),
        (
            "cgroup/getsockname4",
            P::CgroupSockAddr,
            Some(A::CgroupInet4Getsockname),
            0,
        ),
        (
            "cgroup/getsockname6",
            P::CgroupSockAddr,
            Some(A::CgroupInet6Getsockname),
            0,
        ),
        (
            "cgroup/getsockname_unix",
            P::CgroupSockAddr,
            Some(A::CgroupUnixGetsockname),
            0,
        ),
        ("cgroup/sysctl", P::CgroupSysctl, Some(A::CgroupSysctl), 0),
        (
            "cgroup/getsockopt",
            P::CgroupSockopt,
            Some(A::CgroupGetsockopt),
            0,
        ),
        (
            "cgroup/setsockopt",
            P::CgroupSockopt,
            Some(A::CgroupSetsockopt),
            0,
        ),
        ("cgroup/dev", P::CgroupDevice, Some(A::CgroupDevice), 0),
        ("struct_ops+", P::StructOps, None, 0),
        ("struct_ops.s+", P::StructOps, None, SLEEP),
        ("sk_lookup", P::SkLookup, Some(A::SkLookup), 0),
        ("netfilter", P::Netfilter, Some(A::Netfilter), 0),
    ]
};

/// What libbpf derives from a `SEC()` name; `None` for names it does not
/// recognise (the loader then needs an explicit type, as with
/// `bpftool prog load ... type TYPE`).
pub fn section_def(section: &str) -> Option<SecDef> {
    SEC_DEFS
        .iter()
        .find_map(|&(pattern, prog_type, expected_attach_type, prog_flags)| {
            let attach_to = match pattern.strip_suffix('+') {
                Some(prefix) => {
                    let rest = section.strip_prefix(prefix)?;
                    if rest.is_empty() {
                        None
                    } else {
                        let target = rest.strip_prefix('/')?;
                        (!target.is_empty()).then(|| target.to_string())
                    }
                }
                None if section == pattern => None,
                None => return None,
            };
            Some(SecDef {
                prog_type,
                expected_attach_type,
                prog_flags,
                attach_to,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &t in ProgType::ALL {
            assert_eq!(ProgType::from_name(t.name()), Some(t));
            assert_eq!(ProgType::from_u32(t.as_u32()), Some(t));
        }
        for &t in AttachType::ALL {
            assert_eq!(AttachType::from_name(t.name()), Some(t));
            assert_eq!(AttachType::from_u32(t.as_u32()), Some(t));
        }
    }

    #[test]
    fn prefix_needs_slash() {
        assert_eq!(section_def("kprobe").unwrap().attach_to, None);
        assert_eq!(
            section_def("kprobe/do_exit").unwrap().attach_to.as_deref(),
            Some("do_exit")
        );
        assert!(section_def("kprobex").is_none());
        assert!(section_def("xdp/foo").is_none());
        assert_eq!(
            section_def("kprobe.multi/foo*")
                .unwrap()
                .expected_attach_type,
            Some(AttachType::TraceKprobeMulti)
        );
    }
}
