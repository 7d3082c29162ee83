/* Division and modulo by constants in a loop: the decimal digit sum and the
 * base-7 digit sum of 1,024 input words. */
#include "bench.h"

SEC("bench")
u64 BENCH(bench_divconst)(u8 *mem, u64 len)
{
	const u64 *v = (const u64 *)mem;
	u64 sum = 0;

	for (u64 i = 0; i < len / 8; i++) {
		u64 n = v[i], m = v[i] >> 20;

		while (n) {
			sum += n % 10;
			n /= 10;
		}
		while (m) {
			sum += (m % 7) << 8;
			m /= 7;
		}
	}
	return sum;
}
