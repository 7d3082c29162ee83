//! Program types, attach types, and libbpf's `SEC()` name conventions that
//! map an ELF section name to both.
//!
//! The enums themselves, with the kernel's numbers and bpftool's names, are
//! `bpfvm_isa::uapi`'s; this module adds libbpf's section table over them.

pub use bpfvm_isa::uapi::{AttachType, ProgType, BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS};

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
