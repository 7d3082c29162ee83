/* A loop of hash-map lookups: 512 keys (i * 13) mod 2048 looked up in a hash
 * map that the harness fills with the even keys 0..2046 (value k * k + 7), so
 * about half the lookups hit. Returns the sum of the values found, folded to
 * 32 bits. Runs as an XDP program (so the kernel's test run can repeat it);
 * it does not look at the packet. */
#include "bench.h"

#define LOOKUPS 512

#ifdef __bpf__
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, u64);
} table SEC(".maps");
#define LOOKUP(key) ((u64 *)bpf_map_lookup_elem(&table, &(key)))
#else
/* The native stand-in for the hash map: open addressing with linear probing
 * over 2048 slots, filled through hashmap_update. */
#define SLOTS 2048
struct slot {
	u32 used;
	u32 key;
	u64 value;
};
static struct slot BENCH(table)[SLOTS];

static inline u32 slot_of(u32 key)
{
	return (key * 2654435761u) >> 21;
}

static u64 *lookup(u32 key)
{
	for (u32 i = 0, s = slot_of(key); i < SLOTS; i++, s = (s + 1) & (SLOTS - 1)) {
		struct slot *e = &BENCH(table)[s];

		if (!e->used)
			return 0;
		if (e->key == key)
			return &e->value;
	}
	return 0;
}

int BENCH(hashmap_update)(u32 key, u64 value)
{
	for (u32 i = 0, s = slot_of(key); i < SLOTS; i++, s = (s + 1) & (SLOTS - 1)) {
		struct slot *e = &BENCH(table)[s];

		if (!e->used || e->key == key) {
			e->used = 1;
			e->key = key;
			e->value = value;
			return 0;
		}
	}
	return -1;
}
#define LOOKUP(key) lookup(key)
#endif

SEC("xdp")
int BENCH(hashmap)(struct xdp_md *ctx)
{
	u64 sum = 0;

	(void)ctx;
	for (u32 i = 0; i < LOOKUPS; i++) {
		u32 key = (i * 13) & 2047;
		u64 *v = LOOKUP(key);

		if (v)
			sum += *v;
	}
	return (int)(u32)(sum ^ (sum >> 32));
}

#ifdef __bpf__
char LICENSE[] SEC("license") = "GPL";
#endif
