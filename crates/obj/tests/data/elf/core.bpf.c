// core.bpf.c: a CO-RE field access (BTF.ext core_relo). bpfvm keeps the
// compiled offset (there is no kernel BTF to relocate against) and warns.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct pt {
	int x;
	int y;
} __attribute__((preserve_access_index));

SEC("xdp")
int core_read(struct xdp_md *ctx)
{
	struct pt p = { 1, 2 };
	struct pt *pp = &p;
	return __builtin_preserve_access_index(pp->y) == 2 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
