#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __u64 pid_tgid, uid_gid, j0, ns, bootns, j1; long cmp[16]; } R;
static const char s_abc[] = "abc";
static const char s_abd[] = "abd";
static const char s_ab[] = "ab";
static const char s_empty[] = "";
static const char s_hi[] = "\xff";
SEC("xdp")
int misc(struct xdp_md *ctx) {
    R.j0 = bpf_jiffies64();
    R.ns = bpf_ktime_get_ns();
    R.bootns = bpf_ktime_get_boot_ns();
    R.j1 = bpf_jiffies64();
    char a[4] = {'a', 'b', 'c', 0};
    char b[4] = {'a', 'b', 'c', 'd'};
    char c[2] = {'a', 0x80};
    asm volatile("" ::: "memory");
    R.cmp[0] = bpf_strncmp(a, 4, s_abc);
    R.cmp[1] = bpf_strncmp(a, 4, s_abd);
    R.cmp[2] = bpf_strncmp(a, 4, s_ab);
    R.cmp[3] = bpf_strncmp(a, 2, s_abd);
    R.cmp[4] = bpf_strncmp(b, 4, s_abc);
    R.cmp[5] = bpf_strncmp(b, 3, s_abc);
    R.cmp[6] = bpf_strncmp(a, 4, s_empty);
    R.cmp[7] = bpf_strncmp(c, 2, s_hi);
    R.cmp[8] = bpf_strncmp(c, 2, s_ab);
    R.cmp[9] = bpf_strncmp(b, 4, s_ab);
    R.cmp[10] = bpf_strncmp(a, 1, s_empty);
    return 2;
}
SEC("xdp")
int ids(struct xdp_md *ctx) {
    R.pid_tgid = bpf_get_current_pid_tgid();
    R.uid_gid = bpf_get_current_uid_gid();
    return 2;
}
char LICENSE[] SEC("license") = "GPL";
