// SPDX-License-Identifier: GPL-2.0
/* Types that exercise `btf dump ... format c`: bitfields with gaps, packed
 * and over-aligned structs, anonymous structs/unions/enums nested inline,
 * self-referencing and mutually referencing structs (forward declarations),
 * function pointers (arrays of them, returning pointers to functions),
 * multi-dimensional arrays, qualifiers in every position, 64-bit and signed
 * enums, enumerator and typedef name clashes, a forward-declared-only struct
 * and union, and an empty struct. Each type is reached from a global, so
 * clang emits it. Build: see build.sh beside this file. */
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char s8;

struct bits {
	u32 a : 3;
	u32 : 5;
	u32 b : 7;
	u64 c : 40;
	u8 d;
	u16 e : 9;
	int f : 2;
};

struct __attribute__((packed)) packed {
	u8 x;
	u32 y;
	u16 z;
};

struct aligned16 {
	u32 x;
	u64 y __attribute__((aligned(16)));
	u8 tail;
};

struct node;
struct list {
	struct node *first;
	struct list *self;
};
struct node {
	struct list owner;
	struct node *next;
	union {
		struct {
			u32 lo;
			u32 hi;
		};
		u64 whole;
		struct {
			u8 kind;
			enum {
				NODE_A,
				NODE_B = 5,
			} sub;
		} tagged;
	};
	const volatile u32 *const cv_ptr;
	char name[2][3][4];
};

typedef int (*handler_t)(void *ctx, const char *fmt, ...);
typedef void (*(*getter_t)(int))(long);

struct ops {
	handler_t handlers[4];
	getter_t get;
	int (*cmp)(const struct node *, const struct node *);
	void (*fire)(void);
	struct only_declared *opaque;
	union only_declared_u *opaque_u;
};

enum big64 {
	BIG_SMALL = 1,
	BIG_HUGE = 0xffffffff00ULL,
};

enum negative {
	NEG_MINUS = -3,
	NEG_PLUS = 3,
};

enum clash { NODE_A_CLASH = 1, u8_like = 2 };

struct empty {};

struct uses_empty {
	struct empty e;
	int after;
};

struct bits g_bits;
struct packed g_packed;
struct aligned16 g_aligned;
struct node g_node;
struct ops g_ops;
enum big64 g_big;
enum negative g_neg;
enum clash g_clash;
struct uses_empty g_empty;
volatile s8 g_arr[7];
const u16 *restrict g_restrict;

char LICENSE[] __attribute__((section("license"))) = "GPL";
