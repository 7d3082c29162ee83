/* XOR of the integer log2 of 1,024 u64 values, branch-free: each step turns
 * "is the upper half non-zero" into 0 or 1 with arithmetic ((t | -t) >> 63),
 * and an empty asm keeps the compiler from turning that back into a compare,
 * which BPF (no conditional move) would compile to a branch. */
#include "bench.h"

static inline __attribute__((always_inline)) u64 nonzero(u64 t)
{
	u64 neg = 0 - t;

	__asm__("" : "+r"(neg));
	return (t | neg) >> 63;
}

static inline __attribute__((always_inline)) u64 ilog2(u64 v)
{
	u64 r, s;

	r = nonzero(v >> 32) << 5;
	v >>= r;
	s = nonzero(v >> 16) << 4;
	v >>= s;
	r |= s;
	s = nonzero(v >> 8) << 3;
	v >>= s;
	r |= s;
	s = nonzero(v >> 4) << 2;
	v >>= s;
	r |= s;
	s = nonzero(v >> 2) << 1;
	v >>= s;
	r |= s;
	return r | nonzero(v >> 1);
}

/* mem: len / 8 u64 values. */
SEC("bench")
u64 BENCH(bench_log2_int)(u8 *mem, u64 len)
{
	const u64 *v = (const u64 *)mem;
	u64 acc = 0;

	for (u64 i = 0; i < len / 8; i++)
		acc ^= ilog2(v[i]);
	return acc;
}
