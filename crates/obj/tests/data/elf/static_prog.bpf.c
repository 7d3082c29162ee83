// static_prog.bpf.c: a static function in a program section, which libbpf
// refuses ("program is static and not supported").
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
static __attribute__((used, noinline)) int hidden_entry(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int visible(struct xdp_md *ctx)
{
	return hidden_entry(ctx);
}

char LICENSE[] SEC("license") = "GPL";
