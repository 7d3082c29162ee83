/* Data-dependent branches in a tight loop: the total number of Collatz steps
 * (n = n odd ? 3n + 1 : n / 2) of 256 start values read from the input. */
#include "bench.h"

SEC("bench")
u64 BENCH(bench_collatz)(u8 *mem, u64 len)
{
	const u32 *v = (const u32 *)mem;
	u64 steps = 0;

	for (u64 i = 0; i < len / 4; i++) {
		u64 n = v[i];

		while (n > 1) {
			if (n & 1)
				n = 3 * n + 1;
			else
				n >>= 1;
			steps++;
		}
	}
	return steps;
}
