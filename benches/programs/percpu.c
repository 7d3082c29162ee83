/* Per-CPU array map updates: 512 increments of counters (i * 7) mod 256 in a
 * BPF_MAP_TYPE_PERCPU_ARRAY of 256 u64. Returns how many lookups found their
 * slot (always 512: the counters change, the result does not). */
#include "bench.h"

#define STEPS 512

#ifdef __bpf__
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, u32);
	__type(value, u64);
} counters SEC(".maps");
#define COUNTER(key) ((u64 *)bpf_map_lookup_elem(&counters, &(key)))
#else
/* Native stand-in: one CPU's array, bounds-checked. */
static u64 BENCH(counters)[256];
#define COUNTER(key) ((key) < 256 ? &BENCH(counters)[(key)] : (u64 *)0)
#endif

SEC("xdp")
int BENCH(percpu)(struct xdp_md *ctx)
{
	u32 hits = 0;

	(void)ctx;
	for (u32 i = 0; i < STEPS; i++) {
		u32 key = (i * 7) & 255;
		u64 *c = COUNTER(key);

		if (c) {
			*c += i;
			hits++;
		}
	}
	return (int)hits;
}

#ifdef __bpf__
char LICENSE[] SEC("license") = "GPL";
#endif
