#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp")
int xdp_attach_hello(struct xdp_md *ctx) {
    bpf_printk("Hello World %d", ctx->ingress_ifindex);
    return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
