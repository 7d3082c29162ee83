/* Copy the first half of the block to the second half, one byte at a time.
 * Returns a few of the copied bytes so that every engine's copy is checked. */
#include "bench.h"

SEC("bench")
u64 BENCH(bench_memcpy)(u8 *mem, u64 len)
{
	u64 n = len / 2;
	const u8 *src = mem;
	u8 *dst = mem + n;

	for (u64 i = 0; i < n; i++)
		dst[i] = src[i];
	if (n == 0)
		return 0;
	return dst[0] | (u64)dst[n / 3] << 8 | (u64)dst[n / 2] << 16 | (u64)dst[n - 1] << 24;
}
