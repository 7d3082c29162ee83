#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } out SEC(".maps");
static long cb(__u32 idx, void *data) { *(__u64 *)data += idx; return 0; }
SEC("xdp")
int xdp_const64(struct xdp_md *ctx) {
    __u32 k = 0;
    __u64 acc = 0x1122334455667788ULL;
    bpf_loop(10, cb, &acc, 0);
    __u64 *v = bpf_map_lookup_elem(&out, &k);
    if (v) *v = acc ^ 0xdeadbeefcafef00dULL;
    return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
