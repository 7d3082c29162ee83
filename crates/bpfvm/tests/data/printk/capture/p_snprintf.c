#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
static long (*snp)(char *, __u32, const char *, __u64 *, __u32) = (void *)165;
static long (*vpk)(const char *, __u32, const void *, __u32) = (void *)177;
static long (*tp)(const char *, __u32, __u64, __u64, __u64) = (void *)6;
struct { long ret[32]; char out[16][80]; } R;
#define ret R.ret
#define out R.out
static __u64 P(const void *p) { __u64 v = (__u64)(long)p; asm volatile("" : "+r"(v)); return v; }
static const char s_hello[] = "hello";
static const char marker[] = "@@%d";
#define FILL(k) __builtin_memset(out[k], 'Z', sizeof(out[k]))
SEC("xdp")
int snprintf_cases(struct xdp_md *ctx) {
    __u64 a[13] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
    /* bpf_snprintf: sizes, truncation and return values */
    { static const char f[] = "n=%d s=%s"; __u64 v[2]; v[0] = 42; v[1] = P(s_hello);
      FILL(0); ret[0] = snp(out[0], 80, f, v, 16);
      FILL(1); ret[1] = snp(out[1], 5, f, v, 16);
      FILL(2); ret[2] = snp(out[2], 1, f, v, 16);
      FILL(3); ret[3] = snp(out[3], 0, f, v, 16);
      FILL(4); ret[4] = snp(out[4], 10, f, v, 16); }
    { static const char f[] = "%d %d %d %d %d %d %d %d %d %d %d %d";
      FILL(5); ret[5] = snp(out[5], 80, f, a, 96); }
    { static const char f[] = "no args";
      FILL(6); ret[6] = snp(out[6], 80, f, 0, 0);
      FILL(7); ret[7] = snp(out[7], 80, f, a, 8); }
    { static const char f[] = "[%c]after"; __u64 v[1] = {0};
      FILL(8); ret[8] = snp(out[8], 80, f, v, 8); }
    { static const char f[] = "%d"; 
      FILL(9); ret[9] = snp(out[9], 80, f, a, 104); }
    { static const char f[] = "[%5s|%-6d|%pI4]"; __u64 v[3]; v[0] = P(s_hello); v[1] = 7; v[2] = P(s_hello);
      FILL(10); ret[10] = snp(out[10], 80, f, v, 24); }
    /* bpf_trace_vprintk */
    { static const char f[] = "v %d %d %d %d %d %d %d %d %d %d %d %d";
      ret[16] = vpk(f, sizeof(f), a, 96); tp(marker, sizeof(marker), 16, 0, 0);
      ret[17] = vpk(f, sizeof(f), a, 104); tp(marker, sizeof(marker), 17, 0, 0);
      ret[18] = vpk(f, sizeof(f), a, 88); tp(marker, sizeof(marker), 18, 0, 0); }
    { static const char f[] = "v no args";
      ret[19] = vpk(f, sizeof(f), 0, 0); tp(marker, sizeof(marker), 19, 0, 0); }
    { static const char f[] = "v %d";
      ret[20] = vpk(f, sizeof(f), 0, 0); tp(marker, sizeof(marker), 20, 0, 0);
      ret[21] = vpk(f, sizeof(f), a, 12); tp(marker, sizeof(marker), 21, 0, 0);
      ret[22] = vpk(f, sizeof(f), a, 8); tp(marker, sizeof(marker), 22, 0, 0); }
    /* width on %p forms via trace_printk */
    { static const char f[] = "[%20p] [%-20pB] [%20pK]";
      ret[24] = tp(f, sizeof(f), 0x1234, 0x1234, 0); tp(marker, sizeof(marker), 24, 0, 0); }
    return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
