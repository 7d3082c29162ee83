// multi.bpf.c: two programs in two sections plus a .text subprogram, with
// code inlined from inc/multi.h (line info from two files).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "inc/multi.h"

int seen;

__attribute__((noinline)) int scale(int v)
{
    return clamp(v * 3, -100, 100);
}

SEC("xdp")
int multi_xdp(struct xdp_md *ctx)
{
    int len = ctx->data_end - ctx->data;

    seen = scale(len);
    return clamp(len, 1, 3);
}

SEC("tc")
int multi_tc(struct __sk_buff *skb)
{
    if (skb->len > 64)
        return scale(skb->len);
    return clamp(skb->protocol, 0, 1);
}

char LICENSE[] SEC("license") = "GPL";
