/* An XDP program: parse Ethernet / IPv4 / UDP and count the packet and its
 * bytes per UDP destination port (mod 256) in an array map. Non-UDP traffic
 * passes uncounted; a frame cut short is dropped. */
#include "bench.h"

struct counter {
	u64 packets;
	u64 bytes;
};

#ifdef __bpf__
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, u32);
	__type(value, struct counter);
} udp_ports SEC(".maps");
#define COUNTER(key) ((struct counter *)bpf_map_lookup_elem(&udp_ports, &(key)))
#else
/* The native stand-in for the array map: a bounds-checked array lookup. */
static struct counter BENCH(udp_ports)[256];
#define COUNTER(key) ((key) < 256 ? &BENCH(udp_ports)[(key)] : (struct counter *)0)
struct counter *BENCH(xdp_count_counter)(u32 key)
{
	return COUNTER(key);
}
#endif

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define IPPROTO_UDP 17

static inline __attribute__((always_inline)) u16 be16(const u8 *p)
{
	return (u16)(p[0] << 8 | p[1]);
}

SEC("xdp")
int BENCH(xdp_count)(struct xdp_md *ctx)
{
	u8 *data = XDP_DATA(ctx);
	u8 *end = XDP_DATA_END(ctx);
	u8 *ip, *udp;
	u32 ihl, port;
	struct counter *c;

	if (data + ETH_HLEN > end)
		return XDP_DROP;
	if (be16(data + 12) != ETH_P_IP)
		return XDP_PASS;
	ip = data + ETH_HLEN;
	if (ip + 20 > end)
		return XDP_DROP;
	if (ip[9] != IPPROTO_UDP)
		return XDP_PASS;
	ihl = (ip[0] & 0xf) * 4;
	if (ihl < 20)
		return XDP_DROP;
	udp = ip + ihl;
	if (udp + 8 > end)
		return XDP_DROP;
	port = be16(udp + 2) & 0xff;
	c = COUNTER(port);
	if (!c)
		return XDP_PASS;
	c->packets += 1;
	c->bytes += (u64)(end - data);
	return XDP_PASS;
}

#ifdef __bpf__
char LICENSE[] SEC("license") = "GPL";
#endif
