/* Shared definitions for the benchmark programs.
 *
 * Every program is one C source compiled three ways: to BPF (clang -target bpf,
 * see build.sh) and natively twice (by the harness's build.rs, with and without
 * the auto-vectorizers). Compute programs have the conformance-suite signature
 * u64 f(u8 *mem, u64 len): r1 = the memory block, r2 = its length. Packet
 * programs are XDP programs; natively they get a small context with real
 * pointers and C stand-ins for the two helpers they call.
 */
#ifndef BENCH_H
#define BENCH_H

typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

#ifdef __bpf__
#define SEC(name) __attribute__((section(name), used))
/* Natively each build gets its own suffix, so both builds link into one binary. */
#define BENCH(name) name
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_LRU_HASH 9
#define BPF_MAP_TYPE_LPM_TRIE 11
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;

struct xdp_md {
	u32 data;
	u32 data_end;
	u32 data_meta;
	u32 ingress_ifindex;
	u32 rx_queue_index;
	u32 egress_ifindex;
};
#define XDP_DATA(ctx) ((void *)(long)(ctx)->data)
#define XDP_DATA_END(ctx) ((void *)(long)(ctx)->data_end)
#else
#define SEC(name)
#define BENCH_CAT2(a, b) a##b
#define BENCH_CAT(a, b) BENCH_CAT2(a, b)
#define BENCH(name) BENCH_CAT(name, BENCH_SUFFIX)
/* Natively the context carries real pointers (they do not fit the u32 fields). */
struct xdp_md {
	void *data;
	void *data_end;
};
#define XDP_DATA(ctx) ((ctx)->data)
#define XDP_DATA_END(ctx) ((ctx)->data_end)
#endif

#define XDP_DROP 1
#define XDP_PASS 2

#endif
