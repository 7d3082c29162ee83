// Globals and maps of many BTF kinds, loaded into the host kernel so that
// `bpftool map dump` shows how each kind is rendered.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <stdbool.h>

enum color { RED = 0, GREEN = 1, BLUE = 7 };
enum sgn { NEG = -2, POS = 3 };
enum big { BIG_A = 0x100000000ULL, BIG_B = 1 };

struct bits {
	unsigned int a : 3;
	int b : 5;
	unsigned long long c : 40;
	unsigned char d;
	bool flag : 1;
};

union un {
	int i;
	unsigned char bytes[4];
};

struct inner {
	short s;
	char tag[4];
};

struct outer {
	int x;
	struct {
		int ax;
		int ay;
	};
	union {
		int u1;
		unsigned int u2;
	};
	struct inner in;
	struct inner arr2[2];
	int grid[2][3];
	void *ptr;
	enum color c;
	unsigned __int128 wide;
	__int128 swide;
	bool b;
	char name[8];
	unsigned char raw[3];
	signed char sc;
	long long ll;
	enum sgn sg;
	enum big bg;
};

struct bits g_bits = { .a = 5, .b = -3, .c = 0x123456789aULL, .d = 200, .flag = 1 };
union un g_un = { .i = 0x01020304 };
struct outer g_outer = {
	.x = -7, .ax = 1, .ay = 2, .u1 = -1,
	.in = { .s = -5, .tag = "ab" },
	.arr2 = { { 1, "x" }, { 2, "yz" } },
	.grid = { { 1, 2, 3 }, { 4, 5, 6 } },
	.ptr = (void *)0,
	.c = BLUE,
	.wide = ((unsigned __int128)1 << 64) | 5, .swide = -1,
	.b = true, .name = "hello", .raw = { 1, 2, 255 }, .sc = -100,
	.ll = -1234567890123LL, .sg = NEG, .bg = BIG_A,
};
char g_str[16] = "printable";
char g_bin[4] = { 1, 2, 3, 4 };
char g_full[4] = { 'a', 'b', 'c', 'd' };
char g_mid[6] = { 'a', 0, 'b', 0, 0, 0 };
char g_empty[4];
unsigned char g_ustr[6] = "uchar";
int g_counter;
const volatile int g_ro = 42;
const volatile char g_rostr[6] = "ro";
enum color g_unknown_color = (enum color)5;
long g_long = -1;
unsigned long g_ulong = 0xffffffffffffffffUL;
short g_short = -2;
bool g_bool_false;
int *g_intptr;
unsigned long long g_u64arr[3] = { 1, 2, 3 };
struct bits g_bitsarr[2] = { { .a = 1 }, { .b = -1 } };
char g_quote[8] = "a\"b\\c'd";
char g_negchar[2] = { (char)0x80, 'a' };
char g_hichar[4] = { 'a', (char)0xe9, 0, 0 };
enum color g_neg_color = (enum color)0xfffffff0;
enum big g_big_unknown = (enum big)0xfffffffffffffff0ULL;
typedef char mychar;
mychar g_tdchar[4] = "ab";
struct flex {
	int n;
	volatile int v;
	int z[0];
};
struct flex g_flex = { 3, 4 };
typedef struct inner inner_t;
inner_t g_tdinner = { 7, "q" };
int __attribute__((btf_type_tag("user"))) *g_tagged = 0;
int (*g_fp)(int, ...);
enum e8 { E8_A = 1, E8_B = 255 } __attribute__((packed));
enum e8 g_e8 = E8_B;
enum e8 g_e8_a = E8_A;

/* bpftool 7.1 cannot print FLOAT; keep floats in their own map so the error
 * they cause does not hide the rest of .data. */
struct fl {
	int before;
	float f;
	double d;
	int after;
};
struct fl g_fl SEC(".data.floats") = { 1, 1.5f, -2.25, 2 };
int g_after_fl SEC(".data.floats") = 9;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, struct inner);
	__type(value, struct bits);
} hmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, int);
	__type(value, union un);
} amap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, long);
} pcpu SEC(".maps");

SEC("xdp")
int prog(struct xdp_md *ctx)
{
	int k = 0;
	g_counter++;
	bpf_map_lookup_elem(&amap, &k);
	bpf_map_lookup_elem(&hmap, &g_outer.in);
	bpf_map_lookup_elem(&pcpu, &k);
	return g_ro + g_bits.a + g_un.i + g_str[0] + g_bin[0] + g_full[0] + g_mid[0] +
	       g_empty[0] + g_ustr[0] + g_rostr[0] + g_unknown_color + 
	       g_long + g_ulong + g_short + g_bool_false + (long)g_intptr +
	       g_u64arr[1] + g_bitsarr[0].a + g_outer.x;
}

char LICENSE[] SEC("license") = "GPL";
