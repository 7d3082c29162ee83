/* 64-bit constants: more distinct 64-bit multipliers and offsets in the loop
 * body than BPF has registers, so the compiled code materialises them inside
 * the loop (LD_IMM64). 1,024 input words. */
#include "bench.h"

SEC("bench")
u64 BENCH(bench_const64)(u8 *mem, u64 len)
{
	const u64 *v = (const u64 *)mem;
	u64 acc = 0x6a09e667f3bcc908ull;

	for (u64 i = 0; i < len / 8; i++) {
		u64 x = v[i] + 0x9e3779b97f4a7c15ull;

		x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
		x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
		x ^= x >> 31;
		acc ^= x + 0x3c6ef372fe94f82bull;
		acc = acc * 0xff51afd7ed558ccdull + 0xa54ff53a5f1d36f1ull;
		acc ^= (acc >> 33) + 0x510e527fade682d1ull;
		acc = acc * 0xc4ceb9fe1a85ec53ull - 0x9b05688c2b3e6c1full;
		acc ^= x * 0x1f83d9abfb41bd6bull;
	}
	return acc;
}
