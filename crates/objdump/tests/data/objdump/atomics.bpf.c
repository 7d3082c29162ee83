// atomics.bpf.c: every BPF atomic (cpu v3) on 64 and 32 bits, plus a local
// call and a loop, for llvm-objdump's atomic syntax. Without +alu32 (its
// default) llvm-objdump prints most 32-bit atomics as <unknown>.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u64 c64;
__u32 c32;
__u64 out[16];

static __attribute__((noinline)) int twice(int x)
{
    return x * 2;
}

SEC("xdp")
int atomics(struct xdp_md *ctx)
{
    __u64 v = ctx->data_end - ctx->data;
    __u32 w = (__u32)v;

    __sync_fetch_and_add(&c64, v);
    __sync_fetch_and_or(&c64, v);
    __sync_fetch_and_and(&c64, v);
    __sync_fetch_and_xor(&c64, v);
    out[0] = __sync_fetch_and_add(&c64, v);
    out[1] = __sync_fetch_and_or(&c64, v);
    out[2] = __sync_fetch_and_and(&c64, v);
    out[3] = __sync_fetch_and_xor(&c64, v);
    out[4] = __sync_lock_test_and_set(&c64, v);
    out[5] = __sync_val_compare_and_swap(&c64, 7, v);

    __sync_fetch_and_add(&c32, w);
    __sync_fetch_and_or(&c32, w);
    out[6] = __sync_fetch_and_add(&c32, w);
    out[7] = __sync_fetch_and_xor(&c32, w);
    out[8] = __sync_lock_test_and_set(&c32, w);
    out[9] = __sync_val_compare_and_swap(&c32, 3, w);

    for (int i = 0; i < 4; i++)
        out[10 + i] = twice(i + (int)w);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
