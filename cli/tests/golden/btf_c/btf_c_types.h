#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)
#endif

typedef unsigned int u32;

typedef unsigned long long u64;

typedef unsigned char u8;

typedef unsigned short u16;

struct bits {
	u32 a: 3;
	char: 5;
	u32 b: 7;
	u64 c: 40;
	u8 d;
	u16 e: 9;
	int f: 2;
};

struct packed {
	u8 x;
	u32 y;
	u16 z;
} __attribute__((packed));

struct aligned16 {
	u32 x;
	long: 64;
	u64 y;
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
				NODE_A = 0,
				NODE_B = 5,
			} sub;
		} tagged;
	};
	volatile const u32 * const cv_ptr;
	char name[2][3][4];
};

typedef int (*handler_t)(void *, const char *, ...);

typedef void (* (*getter_t)(int))(long);

struct only_declared;

union only_declared_u;

struct ops {
	handler_t handlers[4];
	getter_t get;
	int (*cmp)(const struct node *, const struct node *);
	void (*fire)(void);
	struct only_declared *opaque;
	union only_declared_u *opaque_u;
};

enum big64 {
	BIG_SMALL = 1ULL,
	BIG_HUGE = 1099511627520ULL,
};

enum negative {
	NEG_MINUS = -3,
	NEG_PLUS = 3,
};

enum clash {
	NODE_A_CLASH = 1,
	u8_like = 2,
};

struct empty {};

struct uses_empty {
	struct empty e;
	int after;
};

typedef signed char s8;

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute pop
#endif

#endif /* __VMLINUX_H__ */
