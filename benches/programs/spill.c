/* Stack-heavy code: sixteen running sums of different functions of each input
 * word are live across the loop, more than BPF's registers, so the compiled
 * code spills and fills stack slots every iteration. 1,024 input words. */
#include "bench.h"

SEC("bench")
u64 BENCH(bench_spill)(u8 *mem, u64 len)
{
	const u64 *v = (const u64 *)mem;
	u64 s0 = 1, s1 = 2, s2 = 3, s3 = 4, s4 = 5, s5 = 6, s6 = 7, s7 = 8;
	u64 s8 = 9, s9 = 10, s10 = 11, s11 = 12, s12 = 13, s13 = 14, s14 = 15, s15 = 16;

	for (u64 i = 0; i < len / 8; i++) {
		u64 x = v[i];

		s0 += x;
		s1 ^= x + s0;
		s2 += x >> 3;
		s3 ^= s2 << 1;
		s4 += x * 3;
		s5 ^= s4 >> 7;
		s6 += s5 | x;
		s7 ^= s6 + 9;
		s8 += s7 >> 1;
		s9 ^= x & s8;
		s10 += s9 ^ 0x55;
		s11 ^= s10 + x;
		s12 += s11 >> 5;
		s13 ^= s12 * 5;
		s14 += s13 ^ x;
		s15 ^= s14 + s1;
	}
	return s0 ^ s1 ^ s2 ^ s3 ^ s4 ^ s5 ^ s6 ^ s7 ^ s8 ^ s9 ^ s10 ^ s11 ^ s12 ^
	       s13 ^ s14 ^ s15;
}
