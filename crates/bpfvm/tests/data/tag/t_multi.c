#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
__u32 hits[4] = {};
SEC("xdp")
int xdp_a(struct xdp_md *ctx) { hits[1]++; return XDP_PASS; }
SEC("xdp")
int xdp_b(struct xdp_md *ctx) { hits[3] += 2; return XDP_DROP; }
SEC("tc")
int tc_c(struct __sk_buff *skb) { return skb->len > 100 ? 2 : 0; }
char LICENSE[] SEC("license") = "GPL";
