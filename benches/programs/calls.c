/* Calls between subprograms (BPF-to-BPF calls): three small functions that
 * clang may not inline, called for each of 1,024 input words. */
#include "bench.h"

static __attribute__((noinline)) u64 mix(u64 a, u64 b)
{
	a ^= b + 0x9e3779b9u + (a << 6) + (a >> 2);
	return a;
}

static __attribute__((noinline)) u64 rot(u64 x, u64 k)
{
	k &= 63;
	return k ? (x << k | x >> (64 - k)) : x;
}

static __attribute__((noinline)) u64 step(u64 acc, u64 w)
{
	return mix(rot(acc, w), w) * 31 + 7;
}

SEC("bench")
u64 BENCH(bench_calls)(u8 *mem, u64 len)
{
	const u64 *v = (const u64 *)mem;
	u64 acc = 1;

	for (u64 i = 0; i < len / 8; i++)
		acc = step(acc, v[i]);
	return acc;
}
