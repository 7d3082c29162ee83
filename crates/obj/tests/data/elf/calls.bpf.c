// calls.bpf.c: every way clang emits a BPF-to-BPF call or a function pointer.
// Exercises: static noinline subprograms in .text (call relocated against the
// .text section symbol), a global non-entry function in .text (relocated
// against its own symbol), a bpf_loop callback (LD_IMM64 with
// BPF_PSEUDO_FUNC), a subprogram shared by two programs, nested calls and a
// subprogram that reads a global (its data relocation must follow it).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u64 total = 0;

static __attribute__((noinline)) int leaf(int x)
{
	total += x;
	return x * 3;
}

static __attribute__((noinline)) int middle(int x)
{
	return leaf(x) + leaf(x + 1);
}

__attribute__((noinline)) int global_helper(int x)
{
	return x ^ 0x55;
}

static int loop_cb(__u32 idx, void *ctx)
{
	*(int *)ctx += idx;
	return 0;
}

SEC("xdp")
int calls_a(struct xdp_md *ctx)
{
	int acc = 0;
	bpf_loop(4, loop_cb, &acc, 0);
	return middle(acc) + global_helper(acc) > 0 ? XDP_PASS : XDP_DROP;
}

SEC("tc")
int calls_b(struct __sk_buff *skb)
{
	return leaf(skb->len) & 1;
}

char LICENSE[] SEC("license") = "GPL";
