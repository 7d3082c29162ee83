// may_goto.bpf.c: loops bounded by may_goto (compile with clang-19 -mcpu=v4).
// `can_loop` is true while the program's hidden may_goto count lasts: the
// kernel (and bpfvm) let such loops through the verifier without proving
// their bound, and stop them at run time.
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

// may_goto jumps to l_out once the count is exhausted.
#define can_loop                                                         \
	({                                                               \
		__label__ l_out, l_in;                                   \
		int __more = 1;                                          \
		asm volatile goto("may_goto %l[l_out]" :::: l_out);      \
		goto l_in;                                               \
	l_out:                                                           \
		__more = 0;                                              \
	l_in:                                                            \
		__more;                                                  \
	})

// The sum of the frame's first 32 bytes: the index bounds the loop, and
// may_goto would end it if it did not.
SEC("xdp")
int sum_bytes(struct xdp_md *ctx)
{
	unsigned char *data = (unsigned char *)(long)ctx->data;
	unsigned char *end = (unsigned char *)(long)ctx->data_end;
	unsigned int sum = 0;

	for (int i = 0; i < 32 && can_loop; i++) {
		if (data + i + 1 > end)
			break;
		sum += data[i];
	}
	return sum & 0xff;
}

// A hash of the frame's length, 100 rounds of a loop that only may_goto
// and the round count end.
SEC("xdp")
int rounds(struct xdp_md *ctx)
{
	unsigned int x = ctx->data_end - ctx->data;
	unsigned int n = 0;

	while (can_loop) {
		x = x * 1103515245 + 12345;
		if (++n == 100)
			break;
	}
	return (x >> 16) & 0xff;
}

// Counts up to the first zero byte of the frame, at most 64.
SEC("xdp")
int first_zero(struct xdp_md *ctx)
{
	unsigned char *data = (unsigned char *)(long)ctx->data;
	unsigned char *end = (unsigned char *)(long)ctx->data_end;
	int i = 0;

	for (i = 0; i < 64 && can_loop; i++) {
		if (data + i + 1 > end || data[i] == 0)
			break;
	}
	return i;
}

char _license[] SEC("license") = "GPL";
