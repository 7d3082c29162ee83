// sections.bpf.c: one program per common SEC() convention, plus the map
// attributes the fixtures do not otherwise use.
// Exercises: program type / expected attach type / attach target / flags
// derived from section names, a `version` section, and BTF map attributes
// key_size/value_size (sizes without types), map_flags, numa_node,
// pinning = LIBBPF_PIN_BY_NAME, map_extra (bloom filter).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef BPF_MAP_TYPE_BLOOM_FILTER
#define BPF_MAP_TYPE_BLOOM_FILTER 30
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(key_size, 8);
	__uint(value_size, 16);
	__uint(max_entries, 128);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE);
	__uint(numa_node, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sized SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 64);
	__type(value, __u32);
	__uint(map_extra, 3);
} bloom SEC(".maps");

#define PROG(sec, name) \
	SEC(sec) int name(void *ctx) { return 0; }

PROG("kprobe/do_unlinkat", kp)
PROG("kretprobe/do_unlinkat", krp)
PROG("uprobe//bin/bash:readline", up)
PROG("usdt/libc:setjmp", usdt_p)
PROG("ksyscall/openat", ksys)
PROG("tracepoint/syscalls/sys_enter_openat", tp_long)
PROG("tp/sched/sched_switch", tp_short)
PROG("raw_tracepoint/sched_switch", rawtp_long)
PROG("raw_tp.w/sched_switch", rawtp_w)
PROG("tp_btf/sched_switch", tpbtf)
PROG("fentry/do_unlinkat", fent)
PROG("fexit/do_unlinkat", fexi)
PROG("fmod_ret/security_file_open", fmodret)
PROG("fentry.s/do_unlinkat", fent_s)
PROG("lsm/file_open", lsm_p)
PROG("lsm.s/file_open", lsm_s)
PROG("iter/task", iter_task)
PROG("xdp.frags", xdp_frags)
PROG("xdp/devmap", xdp_devmap)
PROG("xdp/cpumap", xdp_cpumap)
PROG("tc/ingress", tc_in)
PROG("tcx/egress", tcx_out)
PROG("classifier", cls)
PROG("action", act)
PROG("socket", sock)
PROG("sk_reuseport", reuse)
PROG("sk_skb/stream_parser", skb_parser)
PROG("sk_skb/stream_verdict", skb_verdict)
PROG("sk_skb", skb_plain)
PROG("sk_msg", msg)
PROG("sk_lookup", lookup)
PROG("flow_dissector", flow)
PROG("cgroup_skb/ingress", cg_in)
PROG("cgroup_skb/egress", cg_out)
PROG("cgroup/skb", cg_skb)
PROG("cgroup/sock", cg_sock)
PROG("cgroup/connect4", cg_connect4)
PROG("cgroup/sendmsg6", cg_sendmsg6)
PROG("cgroup/dev", cg_dev)
PROG("cgroup/sysctl", cg_sysctl)
PROG("cgroup/getsockopt", cg_getsockopt)
PROG("cgroup/setsockopt", cg_setsockopt)
PROG("lwt_in", lwt_in_p)
PROG("lwt_seg6local", lwt_seg6)
PROG("sockops", sockops_p)
PROG("perf_event", perf)
PROG("syscall", sys)
PROG("netfilter", nf)
PROG("struct_ops/dctcp_init", sops)
PROG("my_custom_section", custom)

char LICENSE[] SEC("license") = "Proprietary";
__u32 VERSION SEC("version") = 0x060c00;
