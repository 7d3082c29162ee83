// acq_rel.bpf.c: load-acquire and store-release (BPF_STX | BPF_ATOMIC with
// imm BPF_LOAD_ACQ / BPF_STORE_REL). clang emits them for -mcpu=v4 from LLVM
// 21 on: compiled with clang-22.
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

// Globals (.bss), so the accesses stay in the program.
unsigned long long g_d;
unsigned int g_w;
unsigned short g_h;
unsigned char g_b;

// Stores the frame's first bytes with release semantics into globals of each
// size, reads them back with acquire semantics and mixes them.
SEC("xdp")
int acq_rel(struct xdp_md *ctx)
{
	unsigned char *data = (unsigned char *)(long)ctx->data;
	unsigned char *end = (unsigned char *)(long)ctx->data_end;

	if (data + 8 > end)
		return 1;
	__atomic_store_n(&g_d, *(unsigned long long *)data, __ATOMIC_RELEASE);
	__atomic_store_n(&g_w, *(unsigned int *)data, __ATOMIC_RELEASE);
	__atomic_store_n(&g_h, *(unsigned short *)data, __ATOMIC_RELEASE);
	__atomic_store_n(&g_b, data[7], __ATOMIC_RELEASE);
	unsigned long long x = __atomic_load_n(&g_d, __ATOMIC_ACQUIRE);
	x ^= __atomic_load_n(&g_w, __ATOMIC_ACQUIRE);
	x += __atomic_load_n(&g_h, __ATOMIC_ACQUIRE);
	x += __atomic_load_n(&g_b, __ATOMIC_ACQUIRE);
	return (x ^ (x >> 32)) & 0xff;
}

char _license[] SEC("license") = "GPL";
