// kfunc.bpf.c: what objects need beyond helpers, each an XDP program whose
// return value shows the result (compared with the host kernel's by
// crates/bpfvm/tests/kfuncs.rs). Build: see README.md beside this file.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_iter_num { __u64 __opaque[1]; } __attribute__((aligned(8)));
extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __ksym;
struct bpf_iter_bits { __u64 __opaque[2]; };
extern int bpf_iter_bits_new(struct bpf_iter_bits *it, const __u64 *unsafe_ptr__ign, __u32 nr_words) __ksym __weak;
extern int *bpf_iter_bits_next(struct bpf_iter_bits *it) __ksym __weak;
extern void bpf_iter_bits_destroy(struct bpf_iter_bits *it) __ksym __weak;
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;
extern int bpf_dynptr_from_xdp(struct xdp_md *x, __u64 flags, struct bpf_dynptr *ptr__uninit) __ksym;
extern void *bpf_dynptr_slice(const struct bpf_dynptr *p, __u32 offset, void *buffer__opt, __u32 buffer__szk) __ksym;
extern void bpf_kfunc_nobody_has(void) __ksym __weak;

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern _Bool LINUX_HAS_BPF_COOKIE __kconfig;
extern int CONFIG_HZ __kconfig;
extern int CONFIG_NOT_SET_ANYWHERE __kconfig __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, 4);
	__uint(value_size, 4);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 64);
	__type(value, __u32);
} bloom SEC(".maps");

/* sum of 0..99 = 4950 */
SEC("xdp") int iter_sum(struct xdp_md *ctx)
{
	struct bpf_iter_num it;
	int *v, sum = 0;

	bpf_iter_num_new(&it, 0, 100);
	while ((v = bpf_iter_num_next(&it)))
		sum += *v;
	bpf_iter_num_destroy(&it);
	return sum;
}

/* bits 1, 4, 8 and 70 of two words: 1 + 4 + 8 + 70 = 83 */
SEC("xdp") int bits_sum(struct xdp_md *ctx)
{
	__u64 words[2] = { 0x112, 1ULL << 6 };
	struct bpf_iter_bits it;
	int *b, sum = 0;

	bpf_iter_bits_new(&it, words, 2);
	while ((b = bpf_iter_bits_next(&it)))
		sum += *b;
	bpf_iter_bits_destroy(&it);
	return sum;
}

SEC("xdp") int kconfig(struct xdp_md *ctx)
{
	/* major.minor, cookie support, HZ and a weak unset option (0) */
	return ((LINUX_KERNEL_VERSION >> 8) & 0xffff) * 1000 + LINUX_HAS_BPF_COOKIE * 100 +
	       (CONFIG_HZ == 250) * 10 + CONFIG_NOT_SET_ANYWHERE;
}

/* no reader: -ENOENT; with one: 0 */
SEC("xdp") int perf_out(struct xdp_md *ctx)
{
	struct { __u32 a; __u8 b; } rec = { 0x11223344, 0x55 };

	return bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU | (4ULL << 32), &rec, 5);
}

SEC("xdp") int bloom_membership(struct xdp_md *ctx)
{
	__u32 k = 7, other = 8;

	bpf_map_push_elem(&bloom, &k, 0);
	return (bpf_map_peek_elem(&bloom, &k) == 0) * 10 + (bpf_map_peek_elem(&bloom, &other) == 0);
}

SEC("xdp") int kern_ctx(struct xdp_md *ctx)
{
	return bpf_cast_to_kern_ctx(ctx) != 0;
}

/* the packet's second byte, through a dynptr slice */
SEC("xdp") int dynptr_byte(struct xdp_md *ctx)
{
	struct bpf_dynptr p;
	__u8 buf[4], *s;

	if (bpf_dynptr_from_xdp(ctx, 0, &p))
		return -1;
	s = bpf_dynptr_slice(&p, 0, buf, sizeof(buf));
	if (!s)
		return -2;
	return s[1];
}

/* a kfunc no kernel has, declared __weak: the call is unreachable */
SEC("xdp") int weak_missing(struct xdp_md *ctx)
{
	if (!!bpf_kfunc_nobody_has)
		bpf_kfunc_nobody_has();
	return 7;
}

char LICENSE[] SEC("license") = "GPL";
