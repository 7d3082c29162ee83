#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
__u64 packets = 0;            /* .bss */
__u32 limit = 7;              /* .data */
__u32 other = 9;              /* .data, non-zero offset */
const volatile __u32 mult = 3; /* .rodata */
SEC("xdp")
int xdp_global(struct xdp_md *ctx) {
    packets++;
    other += mult;
    bpf_printk("pkt %llu limit %u", packets, limit);
    return packets > limit ? XDP_DROP : XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
