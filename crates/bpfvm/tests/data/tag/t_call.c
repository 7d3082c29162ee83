#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
static __attribute__((noinline)) int add3(int a, int b, int c) { return a * b + c; }
static __attribute__((noinline)) int twice(int a) { return add3(a, 2, 1) + add3(a, a, 0); }
SEC("xdp")
int xdp_call(struct xdp_md *ctx) {
    int x = (int)(ctx->data_end - ctx->data);
    return twice(x) > 100 ? XDP_DROP : XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
