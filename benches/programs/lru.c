/* LRU hash map lookups: the hashmap program's loop (512 keys (i * 13) mod 2048,
 * half of them present) on a BPF_MAP_TYPE_LRU_HASH of 1,024 entries that the
 * harness fills with the even keys 0..2046 (value k * k + 7). Lookups only, so
 * nothing is evicted and the result is the same on every run. */
#include "bench.h"

#define LOOKUPS 512

#ifdef __bpf__
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, u64);
} lru_table SEC(".maps");
#define LOOKUP(key) ((u64 *)bpf_map_lookup_elem(&lru_table, &(key)))
#else
/* Native stand-in: open addressing over 2048 slots (as in hashmap.c). */
#define SLOTS 2048
struct slot {
	u32 used;
	u32 key;
	u64 value;
};
static struct slot BENCH(lru_slots)[SLOTS];

static inline u32 slot_of(u32 key)
{
	return (key * 2654435761u) >> 21;
}

static u64 *lookup(u32 key)
{
	for (u32 i = 0, s = slot_of(key); i < SLOTS; i++, s = (s + 1) & (SLOTS - 1)) {
		struct slot *e = &BENCH(lru_slots)[s];

		if (!e->used)
			return 0;
		if (e->key == key)
			return &e->value;
	}
	return 0;
}

int BENCH(lru_update)(const void *k, const void *v)
{
	u32 key = *(const u32 *)k;

	for (u32 i = 0, s = slot_of(key); i < SLOTS; i++, s = (s + 1) & (SLOTS - 1)) {
		struct slot *e = &BENCH(lru_slots)[s];

		if (!e->used || e->key == key) {
			e->used = 1;
			e->key = key;
			e->value = *(const u64 *)v;
			return 0;
		}
	}
	return -1;
}
#define LOOKUP(key) lookup(key)
#endif

SEC("xdp")
int BENCH(lru)(struct xdp_md *ctx)
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
