// missing.bpf.c: one program calls a kfunc bpfvm (and the kernel) lacks,
// another calls conntrack, another an XDP metadata kfunc without a device;
// the one using none of them must still load.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_ct_opts;
struct nf_conn;
struct bpf_sock_tuple;
extern void bpf_kfunc_nobody_has(void) __ksym;
extern struct nf_conn *bpf_xdp_ct_lookup(struct xdp_md *xdp_ctx, struct bpf_sock_tuple *bpf_tuple,
					 __u32 len_tuple, struct bpf_ct_opts *opts, __u32 len_opts) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;
extern int bpf_xdp_metadata_rx_timestamp(const struct xdp_md *ctx, __u64 *timestamp) __ksym;

SEC("xdp") int plain(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp") int strong_missing(struct xdp_md *ctx)
{
	bpf_kfunc_nobody_has();
	return XDP_PASS;
}

SEC("xdp") int conntrack(struct xdp_md *ctx)
{
	struct nf_conn *ct = bpf_xdp_ct_lookup(ctx, 0, 0, 0, 0);

	if (ct)
		bpf_ct_release(ct);
	return XDP_PASS;
}

/* refused unless bound to a device ("metadata kfuncs require device-bound
 * program") */
SEC("xdp") int rx_timestamp(struct xdp_md *ctx)
{
	__u64 ts = 0;

	return bpf_xdp_metadata_rx_timestamp(ctx, &ts);
}

char LICENSE[] SEC("license") = "GPL";
