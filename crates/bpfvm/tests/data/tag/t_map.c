#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __type(key, __u32); __type(value, __u64); } counters SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16); __type(key, __u32); __type(value, __u32); } seen SEC(".maps");
SEC("xdp")
int xdp_map(struct xdp_md *ctx) {
    __u32 k = ctx->ingress_ifindex & 3;
    __u64 *v = bpf_map_lookup_elem(&counters, &k);
    if (v) __sync_fetch_and_add(v, 1);
    __u32 one = 1;
    bpf_map_update_elem(&seen, &k, &one, BPF_ANY);
    return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
