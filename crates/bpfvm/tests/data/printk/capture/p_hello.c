#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
long ret[8];
SEC("xdp")
int hello(struct xdp_md *ctx) {
    ret[0] = bpf_printk("Hello World %d", 0);
    ret[1] = bpf_printk("with newline\n");
    ret[2] = bpf_printk("two newlines\n\n");
    ret[3] = bpf_printk("");
    return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
