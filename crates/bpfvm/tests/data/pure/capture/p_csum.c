#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
/* packet: from_size u32, to_size u32, seed u32, from[512], to[512] */
struct { long res; __u32 hdr[3]; unsigned char buf[1024]; } R;
SEC("xdp")
int csum_case(struct xdp_md *ctx) {
    if (bpf_xdp_load_bytes(ctx, 0, R.hdr, 12)) return 1;
    if (bpf_xdp_load_bytes(ctx, 12, R.buf, 1024)) return 1;
    __u32 fs = R.hdr[0], ts = R.hdr[1];
    if (fs > 512 || ts > 512) return 1;
    R.res = bpf_csum_diff(fs ? (void *)R.buf : 0, fs, ts ? (void *)(R.buf + 512) : 0, ts, R.hdr[2]);
    return 2;
}
char LICENSE[] SEC("license") = "GPL";
