/* A packet parser with many bounds checks: Ethernet, up to two VLAN tags,
 * IPv4 (with options) or IPv6 (with up to two extension headers), then TCP
 * (walking its options for the timestamp) or UDP. Returns a 32-bit hash of
 * what it found (addresses, ports, TCP timestamp); XDP_DROP on a short frame.
 * No maps. The harness sends an IPv6/TCP frame behind two VLAN tags with a
 * hop-by-hop header and TCP options. */
#include "bench.h"

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_HOPOPTS 0
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ROUTING 43
#define IPPROTO_DSTOPTS 60

static inline __attribute__((always_inline)) u32 be16(const u8 *p)
{
	return (u32)p[0] << 8 | p[1];
}

static inline __attribute__((always_inline)) u32 be32(const u8 *p)
{
	return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3];
}

static inline __attribute__((always_inline)) u32 mix(u32 h, u32 v)
{
	h ^= v;
	h *= 0x01000193u;
	return h ^ (h >> 15);
}

SEC("xdp")
int BENCH(xdp_parse)(struct xdp_md *ctx)
{
	u8 *data = XDP_DATA(ctx);
	u8 *end = XDP_DATA_END(ctx);
	u8 *p = data + ETH_HLEN;
	u32 proto, h = 0x811c9dc5u;
	int i;

	if (p > end)
		return XDP_DROP;
	proto = be16(data + 12);
#pragma clang loop unroll(full)
	for (i = 0; i < 2; i++) {
		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
			break;
		if (p + 4 > end)
			return XDP_DROP;
		h = mix(h, be16(p) & 0xfff);
		proto = be16(p + 2);
		p += 4;
	}
	if (proto == ETH_P_IP) {
		u32 ihl;

		if (p + 20 > end)
			return XDP_DROP;
		ihl = (p[0] & 0xf) * 4;
		if (ihl < 20 || p + ihl > end)
			return XDP_DROP;
		h = mix(h, be32(p + 12));
		h = mix(h, be32(p + 16));
		proto = p[9];
		p += ihl;
	} else if (proto == ETH_P_IPV6) {
		if (p + 40 > end)
			return XDP_DROP;
#pragma clang loop unroll(full)
		for (i = 0; i < 8; i += 4)
			h = mix(h, be32(p + 8 + i) ^ be32(p + 24 + i));
		proto = p[6];
		p += 40;
#pragma clang loop unroll(full)
		for (i = 0; i < 2; i++) {
			if (proto != IPPROTO_HOPOPTS && proto != IPPROTO_ROUTING &&
			    proto != IPPROTO_DSTOPTS)
				break;
			if (p + 8 > end)
				return XDP_DROP;
			proto = p[0];
			p += (p[1] & 7) * 8 + 8; /* at most 64 bytes: keeps offsets bounded */
		}
	} else {
		return XDP_PASS;
	}
	if (proto == IPPROTO_UDP) {
		if (p + 8 > end)
			return XDP_DROP;
		h = mix(h, be32(p));
	} else if (proto == IPPROTO_TCP) {
		u32 doff, off;

		if (p + 20 > end)
			return XDP_DROP;
		h = mix(h, be32(p));
		doff = (p[12] >> 4) * 4;
		if (doff < 20)
			return XDP_DROP;
		/* Options: offsets kept small and bounded so that every access is
		 * checked against the packet's end. */
		off = 20;
		for (i = 0; i < 6; i++) {
			u8 *o;
			u32 kind, len;

			if (off >= doff)
				break;
			o = p + (off & 63);
			if (o + 2 > end)
				return XDP_DROP;
			kind = o[0];
			if (kind == 0)
				break;
			if (kind == 1) {
				off++;
				continue;
			}
			len = o[1];
			if (len < 2)
				return XDP_DROP;
			if (kind == 8 && len == 10) {
				if (o + 10 > end)
					return XDP_DROP;
				h = mix(h, be32(o + 2));
			}
			off += len;
		}
	} else {
		return XDP_PASS;
	}
	return (int)(h & 0x7fffffff);
}

#ifdef __bpf__
char LICENSE[] SEC("license") = "GPL";
#endif
