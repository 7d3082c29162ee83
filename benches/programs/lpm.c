/* Longest-prefix-match lookups: 256 IPv4 addresses looked up in a
 * BPF_MAP_TYPE_LPM_TRIE that the harness fills with 64 prefixes of lengths
 * 8 to 32 (value: the prefix's number + 1). Returns the sum of the values
 * found. */
#include "bench.h"

#define LOOKUPS 256

struct lpm_key {
	u32 prefixlen;
	u32 addr; /* network byte order */
};

#ifdef __bpf__
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, 1); /* BPF_F_NO_PREALLOC, which LPM tries require */
	__type(key, struct lpm_key);
	__type(value, u64);
} routes SEC(".maps");
#define LOOKUP(key) ((u64 *)bpf_map_lookup_elem(&routes, &(key)))
#else
/* Native stand-in: a linear scan for the longest matching prefix. */
static struct {
	u32 len;
	u32 addr; /* host order */
	u64 value;
} BENCH(routes)[256];
static u32 BENCH(nroutes);

static inline u32 host32(u32 be)
{
	return __builtin_bswap32(be);
}

static u64 *lookup(const struct lpm_key *k)
{
	u32 a = host32(k->addr);
	u64 *best = 0;
	u32 best_len = 0;

	for (u32 i = 0; i < BENCH(nroutes); i++) {
		u32 len = BENCH(routes)[i].len;
		u32 mask = len ? ~0u << (32 - len) : 0;

		if ((a & mask) == BENCH(routes)[i].addr && (!best || len > best_len)) {
			best = &BENCH(routes)[i].value;
			best_len = len;
		}
	}
	return best;
}

int BENCH(lpm_update)(const void *key, const void *value)
{
	const struct lpm_key *k = key;
	u32 len = k->prefixlen;
	u32 mask = len ? ~0u << (32 - len) : 0;

	if (BENCH(nroutes) >= 256 || len > 32)
		return -1;
	BENCH(routes)[BENCH(nroutes)].len = len;
	BENCH(routes)[BENCH(nroutes)].addr = host32(k->addr) & mask;
	BENCH(routes)[BENCH(nroutes)].value = *(const u64 *)value;
	BENCH(nroutes)++;
	return 0;
}
#define LOOKUP(key) lookup(&(key))
#endif

SEC("xdp")
int BENCH(lpm)(struct xdp_md *ctx)
{
	u64 sum = 0;

	(void)ctx;
	for (u32 i = 0; i < LOOKUPS; i++) {
		struct lpm_key key;
		u32 a = i * 0x9e3779b1u;
		u64 *v;

		key.prefixlen = 32;
		/* 10.x.y.z: the prefixes the harness adds are all inside 10/8. */
		key.addr = __builtin_bswap32(0x0a000000u | (a >> 8));
		v = LOOKUP(key);
		if (v)
			sum += *v;
	}
	return (int)(u32)(sum ^ (sum >> 32));
}

#ifdef __bpf__
char LICENSE[] SEC("license") = "GPL";
#endif
