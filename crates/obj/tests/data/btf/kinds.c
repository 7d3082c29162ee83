// Every BTF kind clang emits, plus BTF.ext func_info, line_info and CO-RE
// relocations, for `bpftool btf dump file` goldens and the .BTF.ext parser.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __ttag(x) __attribute__((btf_type_tag(x)))

struct undeclared_s;
union undeclared_u;

struct task {
	int pid __tag("member_tag");
	unsigned int flags : 4;
	unsigned int state : 12;
	struct undeclared_s *fwd_s;
	union undeclared_u *fwd_u;
	int __ttag("user") * __ttag("rcu") uptr;
	const volatile long cv;
} __tag("struct_tag");

enum e8 { E8_A = 1, E8_B = 255 } __attribute__((packed));
enum e64 { E64_NEG = -1, E64_BIG = 0x7fffffffffffffffLL };
enum neg { NEG_X = -5, NEG_Y = 5 };
typedef enum e64 e64_t;
typedef int (*vfn_t)(int, ...);

extern int bpf_kfunc_example(int x) __ksym __attribute__((weak));
extern int LINUX_KERNEL_VERSION __kconfig;

static int counter_static;
int global_tagged __tag("var_tag") = 1;
e64_t g_e64 = E64_BIG;
enum e8 g_e8 = E8_B;
enum neg g_neg = NEG_X;
vfn_t g_vfn;
double g_dbl = 1.0;
long double g_ldbl;
_Bool g_bool;
char *restrict g_restrict;
__int128 g_i128;

__attribute__((noinline)) static int helper_static(struct task *t __tag("param_tag"), int *restrict p)
{
	counter_static++;
	return t->pid + *p;
}

__attribute__((noinline)) int helper_global(int a) __tag("func_tag")
{
	return a * 3;
}

SEC("xdp")
int xdp_main(struct xdp_md *ctx)
{
	struct task *t = (void *)(long)ctx->data;
	int v = 0;

	if (bpf_core_field_exists(t->flags))
		v += BPF_CORE_READ(t, pid);
	if (bpf_core_type_exists(struct task))
		v += bpf_core_type_size(struct task);
	if (bpf_core_enum_value_exists(enum neg, NEG_Y))
		v += bpf_core_enum_value(enum neg, NEG_X);
	v += helper_static(t, &v);
	v += helper_global(v);
	if (bpf_kfunc_example)
		v += bpf_kfunc_example(v);
	return v + LINUX_KERNEL_VERSION + g_e8;
}

SEC("tc")
int tc_main(struct __sk_buff *skb)
{
	return skb->len > 100 ? helper_global(skb->len) : 0;
}

char LICENSE[] SEC("license") = "GPL";
