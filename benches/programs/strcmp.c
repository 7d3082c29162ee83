/* Compare two NUL-terminated strings, the two halves of the block, byte by
 * byte. Returns the index of the first difference (or of the terminating NUL)
 * times two, plus one if the first string's byte there is the smaller. */
#include "bench.h"

SEC("bench")
u64 BENCH(bench_strcmp)(u8 *mem, u64 len)
{
	u64 n = len / 2;
	const u8 *a = mem;
	const u8 *b = mem + n;
	u64 i = 0;

	while (i < n && a[i] != 0 && a[i] == b[i])
		i++;
	if (i == n)
		return 2 * n;
	return 2 * i + (a[i] < b[i]);
}
