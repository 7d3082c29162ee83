/* Long straight-line code: an unrolled multiply/xor hash of eight input words
 * (128 rounds, no loop and no branch in the BPF code). */
#include "bench.h"

#define K1 0x9e3779b97f4a7c15ull
#define K2 0xc2b2ae3d27d4eb4full

SEC("bench")
u64 BENCH(bench_straight)(u8 *mem, u64 len)
{
	const u64 *w = (const u64 *)mem;
	u64 a = w[0], b = w[1], c = w[2], d = w[3];
	u64 e = w[4], f = w[5], g = w[6], h = w[7];

	(void)len;
#pragma clang loop unroll(full)
	for (int r = 0; r < 16; r++) {
		a = (a ^ e) * K1;
		b = (b ^ f) * K2;
		c = (c ^ g) * K1;
		d = (d ^ h) * K2;
		e ^= a >> 29;
		f ^= b >> 31;
		g ^= c >> 27;
		h ^= d >> 33;
		a += h;
		b += e;
		c += f;
		d += g;
	}
	return a ^ b ^ c ^ d ^ e ^ f ^ g ^ h;
}
