/* A packet program that calls bpf_trace_printk once per packet with two
 * integer arguments (the frame's length and its EtherType), the way programs
 * log while being debugged. Returns XDP_PASS. The format is built on the
 * stack (no global data). Natively the call is an snprintf into a buffer. */
#include "bench.h"

#ifdef __bpf__
static long (*bpf_trace_printk)(const char *fmt, u32 fmt_size, ...) = (void *)6;
#define PRINTK(fmt, ...) bpf_trace_printk(fmt, sizeof(fmt), __VA_ARGS__)
#else
#include <stdio.h>
static char BENCH(printk_buf)[128];
#define PRINTK(fmt, ...) snprintf(BENCH(printk_buf), sizeof(BENCH(printk_buf)), fmt, __VA_ARGS__)
#endif

SEC("xdp")
int BENCH(xdp_printk)(struct xdp_md *ctx)
{
	u8 *data = XDP_DATA(ctx);
	u8 *end = XDP_DATA_END(ctx);
	char fmt[] = "len %d proto %x\n";
	u32 proto;

	if (data + 14 > end)
		return XDP_DROP;
	proto = (u32)data[12] << 8 | data[13];
	PRINTK(fmt, (int)(end - data), proto);
	return XDP_PASS;
}

#ifdef __bpf__
char LICENSE[] SEC("license") = "GPL";
#endif
