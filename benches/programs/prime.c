/* Count the primes below 10,000 by trial division with %. Reads no input.
 * bench_prime_xdp is the same loop as an XDP program, so the host kernel's
 * verifier can be asked about it (it has no way to pass r2 to a program). */
#include "bench.h"

static inline __attribute__((always_inline)) u32 count_primes(void)
{
	u32 count = 0;

	for (u32 n = 2; n < 10000; n++) {
		u32 d = 2;

		while (d * d <= n && n % d != 0)
			d++;
		if (d * d > n)
			count++;
	}
	return count;
}

SEC("bench")
u64 BENCH(bench_prime)(u8 *mem, u64 len)
{
	(void)mem;
	(void)len;
	return count_primes();
}

SEC("xdp")
int BENCH(bench_prime_xdp)(struct xdp_md *ctx)
{
	(void)ctx;
	return (int)count_primes();
}
