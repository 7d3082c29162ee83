// SPDX-License-Identifier: MIT OR Apache-2.0
//
// tv: the kernel's raw-instruction verifier tests (tools/testing/selftests/bpf/
// verifier/*.c of Linux 6.12, run there by test_verifier) as data, and the
// host kernel's answers on them.
//
// The test files are struct initialisers; they are #included at build time
// from the unpacked 6.12 tree (never copied into the project: GPL-2.0) into
// this file's own `struct bpf_test`, which declares the field names the
// initialisers use. scripts/selftests/test_verifier.sh generates the list of
// files ($TV_TESTS_H) and stubs for the fill helpers they name ($TV_FILL_H).
//
//   tv extract > tests.jsonl   one JSON object per test: the facts
//   tv extract-fill > fill.jsonl  the same for the tests whose program
//                              test_verifier builds at run time (fill
//                              helpers, see tv_fill.c), with that program
//   tv capture > kernel.jsonl  one JSON object per test and mode: the host
//                              kernel's verdict, errno, log tail, test runs
//
// Semantics followed (facts read in test_verifier.c of 6.12): a test without
// prog_type is a socket filter; socket filters and cgroup_skb programs are
// also loaded unprivileged; the privileged run has CAP_BPF, CAP_PERFMON and
// CAP_NET_ADMIN but not CAP_SYS_ADMIN, the unprivileged one none of them;
// log level 4 (2 for VERBOSE_ACCEPT); prog flags BPF_F_TEST_RND_HI32 |
// BPF_F_TEST_REG_INVARIANTS where the kernel takes them, plus the test's
// (its bits 0 and 1 mean BPF_F_ANY_ALIGNMENT and BPF_F_STRICT_ALIGNMENT);
// maps of each fixup kind as listed in `struct fixup_kind` below; an
// accepted program is run `runs` times (1 when 0, none when negative) with
// 64 bytes of data, the unprivileged run with the capabilities back.

#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <limits.h>
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <linux/btf.h>
#include <linux/capability.h>
#include <linux/if_ether.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The 6.12 tools' instruction macros (BPF_MOV64_IMM, BPF_LD_MAP_FD, ...). */
#include TV_FILTER_H
/* The BTF encoding macros some tests use (BTF_TYPE_INT_ENC, ...). */
#include TV_TEST_BTF_H

typedef uint32_t u32;
typedef uint64_t u64;

#define MAX_INSNS BPF_MAXINSNS
#define MAX_EXPECTED_INSNS 32
#define MAX_UNEXPECTED_INSNS 32
#define MAX_FIXUPS 8
#define MAX_TEST_RUNS 8
#define POINTER_VALUE 0xcafe4all
#define TEST_DATA_LEN 64
#define MAX_FUNC_INFOS 8
#define MAX_BTF_STRINGS 256
#define MAX_BTF_TYPES 256
#define INSN_OFF_MASK ((__s16)0xFFFF)
#define INSN_IMM_MASK ((__s32)0xFFFFFFFF)
#define SKIP_INSNS() BPF_RAW_INSN(0xde, 0xa, 0xd, 0xbeef, 0xdeadbeef)
#define F_NEEDS_EFFICIENT_UNALIGNED_ACCESS (1 << 0)
#define F_LOAD_WITH_STRICT_ALIGNMENT (1 << 1)
#define F_NEEDS_JIT_ENABLED (1 << 2)
#define MAX_ENTRIES 11
#define ENOTSUPP 524
#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

#ifndef offsetofend
#define offsetofend(T, m) (offsetof(T, m) + sizeof(((T *)0)->m))
#endif

/* Instruction groups the test files use by name. Their lengths are part of
 * the tests (fixup indices count them), so they are fixed here:
 * - TV_SK_LOOKUP(func), 13 insns: a zeroed struct bpf_sock_tuple at fp-48
 *   (one 4-byte store at fp-8, five 8-byte stores from fp-16 down), then
 *   r0 = func(r1 = ctx, r2 = fp-48, r3 = sizeof(tuple), r4 = 0, r5 = 0);
 * - TV_DIRECT_PKT_R2, 7 insns: r0 = 0, r2 = skb->data, r3 = skb->data_end,
 *   exit unless r2 + 8 <= r3 (8 bytes of packet readable through r2);
 * - TV_RAND_UEXT_R7, 4 insns: r7 = a random u32 below 2^31, zero-extended;
 * - TV_RAND_SEXT_R7, 5 insns: r7 = a random negative s32, sign-extended. */
#define TV_ZERO_STACK(sz, off) BPF_STX_MEM(sz, BPF_REG_10, BPF_REG_2, off)
#define BPF_SK_LOOKUP(func)                                                                       \
	BPF_MOV64_IMM(BPF_REG_2, 0), TV_ZERO_STACK(BPF_W, -8), TV_ZERO_STACK(BPF_DW, -16),       \
		TV_ZERO_STACK(BPF_DW, -24), TV_ZERO_STACK(BPF_DW, -32),                           \
		TV_ZERO_STACK(BPF_DW, -40), TV_ZERO_STACK(BPF_DW, -48),                           \
		BPF_MOV64_REG(BPF_REG_2, BPF_REG_10), BPF_ALU64_IMM(BPF_ADD, BPF_REG_2, -48),     \
		BPF_MOV64_IMM(BPF_REG_3, sizeof(struct bpf_sock_tuple)),                          \
		BPF_MOV64_IMM(BPF_REG_4, 0), BPF_MOV64_IMM(BPF_REG_5, 0),                         \
		BPF_EMIT_CALL(BPF_FUNC_##func)
#define BPF_DIRECT_PKT_R2                                                                         \
	BPF_MOV64_IMM(BPF_REG_0, 0),                                                              \
		BPF_LDX_MEM(BPF_W, BPF_REG_2, BPF_REG_1, offsetof(struct __sk_buff, data)),       \
		BPF_LDX_MEM(BPF_W, BPF_REG_3, BPF_REG_1, offsetof(struct __sk_buff, data_end)),   \
		BPF_MOV64_REG(BPF_REG_4, BPF_REG_2), BPF_ALU64_IMM(BPF_ADD, BPF_REG_4, 8),        \
		BPF_JMP_REG(BPF_JLE, BPF_REG_4, BPF_REG_3, 1), BPF_EXIT_INSN()
#define TV_PRANDOM_R7                                                                             \
	BPF_RAW_INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_prandom_u32),                     \
		BPF_MOV64_REG(BPF_REG_7, BPF_REG_0)
#define BPF_RAND_UEXT_R7                                                                          \
	TV_PRANDOM_R7, BPF_ALU64_IMM(BPF_LSH, BPF_REG_7, 33), BPF_ALU64_IMM(BPF_RSH, BPF_REG_7, 33)
#define BPF_RAND_SEXT_R7                                                                          \
	TV_PRANDOM_R7, BPF_ALU64_IMM(BPF_OR, BPF_REG_7, 0x80000000),                              \
		BPF_ALU64_IMM(BPF_LSH, BPF_REG_7, 32), BPF_ALU64_IMM(BPF_ARSH, BPF_REG_7, 32)

struct test_val {
	unsigned int index;
	int foo[MAX_ENTRIES];
};

struct other_val {
	long long foo;
	long long bar;
};

struct kfunc_btf_id_pair {
	const char *kfunc;
	int insn_idx;
};

enum { UNDEF, ACCEPT, REJECT, VERBOSE_ACCEPT };

struct run_data {
	uint32_t retval, retval_unpriv;
	union {
		__u8 data[TEST_DATA_LEN];
		__u64 data64[TEST_DATA_LEN / 8];
	};
};

struct bpf_test {
	const char *descr;
	struct bpf_insn insns[MAX_INSNS];
	struct bpf_insn *fill_insns;
	struct bpf_insn expected_insns[MAX_EXPECTED_INSNS];
	struct bpf_insn unexpected_insns[MAX_UNEXPECTED_INSNS];
	int fixup_map_hash_8b[MAX_FIXUPS];
	int fixup_map_hash_48b[MAX_FIXUPS];
	int fixup_map_hash_16b[MAX_FIXUPS];
	int fixup_map_array_48b[MAX_FIXUPS];
	int fixup_map_sockmap[MAX_FIXUPS];
	int fixup_map_sockhash[MAX_FIXUPS];
	int fixup_map_xskmap[MAX_FIXUPS];
	int fixup_map_stacktrace[MAX_FIXUPS];
	int fixup_prog1[MAX_FIXUPS];
	int fixup_prog2[MAX_FIXUPS];
	int fixup_map_in_map[MAX_FIXUPS];
	int fixup_cgroup_storage[MAX_FIXUPS];
	int fixup_percpu_cgroup_storage[MAX_FIXUPS];
	int fixup_map_spin_lock[MAX_FIXUPS];
	int fixup_map_array_ro[MAX_FIXUPS];
	int fixup_map_array_wo[MAX_FIXUPS];
	int fixup_map_array_small[MAX_FIXUPS];
	int fixup_sk_storage_map[MAX_FIXUPS];
	int fixup_map_event_output[MAX_FIXUPS];
	int fixup_map_reuseport_array[MAX_FIXUPS];
	int fixup_map_ringbuf[MAX_FIXUPS];
	int fixup_map_timer[MAX_FIXUPS];
	int fixup_map_kptr[MAX_FIXUPS];
	struct kfunc_btf_id_pair fixup_kfunc_btf_id[MAX_FIXUPS];
	const char *errstr;
	const char *errstr_unpriv;
	uint32_t insn_processed;
	int prog_len;
	int result, result_unpriv;
	enum bpf_prog_type prog_type;
	uint8_t flags;
	void (*fill_helper)(struct bpf_test *self);
	int runs;
	union {
		struct {
			uint32_t retval, retval_unpriv;
			union {
				__u8 data[TEST_DATA_LEN];
				__u64 data64[TEST_DATA_LEN / 8];
			};
		};
		struct run_data retvals[MAX_TEST_RUNS];
	};
	enum bpf_attach_type expected_attach_type;
	const char *kfunc;
	struct bpf_func_info func_info[MAX_FUNC_INFOS];
	int func_info_cnt;
	char btf_strings[MAX_BTF_STRINGS];
	__u32 btf_types[MAX_BTF_TYPES];
};

/* Stand-ins for the fill helpers the tests name, so that the table
 * compiles here: the programs come from tv_fill.c. */
#include TV_FILL_H

struct test_file {
	const char *name;
	struct bpf_test *tests;
	int n;
};

/* static struct bpf_test tv_<file>[] = { #include "<file>.c" }; and the
 * table of them, tv_files[]. */
#include TV_TESTS_H

/* ---- the fixup kinds, in test_verifier's order ---- */

struct fixup_kind {
	const char *name;
	size_t off; /* of the int[MAX_FIXUPS] in struct bpf_test */
};

#define FX(n) {#n, offsetof(struct bpf_test, fixup_##n)}
static const struct fixup_kind kinds[] = {
	FX(map_hash_8b),	 FX(map_hash_48b),	  FX(map_hash_16b),
	FX(map_array_48b),	 FX(map_sockmap),	  FX(map_sockhash),
	FX(map_xskmap),		 FX(map_stacktrace),	  FX(prog1),
	FX(prog2),		 FX(map_in_map),	  FX(cgroup_storage),
	FX(percpu_cgroup_storage), FX(map_spin_lock),	  FX(map_array_ro),
	FX(map_array_wo),	 FX(map_array_small),	  FX(sk_storage_map),
	FX(map_event_output),	 FX(map_reuseport_array), FX(map_ringbuf),
	FX(map_timer),		 FX(map_kptr),
};
#define NKINDS ((int)ARRAY_SIZE(kinds))

static const int *fixups(const struct bpf_test *t, int k)
{
	return (const int *)((const char *)t + kinds[k].off);
}

static int prog_len(const struct bpf_test *t)
{
	int len;
	for (len = MAX_INSNS - 1; len > 0; --len)
		if (t->insns[len].code != 0 || t->insns[len].imm != 0)
			break;
	return len + 1;
}

static bool as_unpriv(const struct bpf_test *t)
{
	return !t->prog_type || t->prog_type == BPF_PROG_TYPE_SOCKET_FILTER ||
	       t->prog_type == BPF_PROG_TYPE_CGROUP_SKB;
}

/* ---- JSON ---- */

static void json_str(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_hex(FILE *f, const void *p, size_t n)
{
	const unsigned char *b = p;
	fputc('"', f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", b[i]);
	fputc('"', f);
}

static const char *result_name(int r)
{
	switch (r) {
	case ACCEPT:
		return "ACCEPT";
	case REJECT:
		return "REJECT";
	case VERBOSE_ACCEPT:
		return "VERBOSE_ACCEPT";
	default:
		return NULL;
	}
}

/* A test's name: its descr, with " (N)" after the second and later uses of
 * one descr in a file, so that (file, name) is a key. */
static const char *test_name(const struct test_file *f, int i)
{
	static char buf[512];
	int dup = 1;
	for (int j = 0; j < i; j++)
		if (!strcmp(f->tests[j].descr, f->tests[i].descr))
			dup++;
	if (dup == 1)
		return f->tests[i].descr;
	snprintf(buf, sizeof(buf), "%s (%d)", f->tests[i].descr, dup);
	return buf;
}

/* scripts/selftests/tv_fill.c: a fill helper's program. */
int tv_fill(const char *descr, struct bpf_insn **insns, int *len, uint32_t *retval,
	    uint32_t *func_info_off, int *nfunc_info);

/* Programs of more instructions than this (the scale tests, about a
 * million) are not committed: their tests are skipped. */
#define FILL_MAX 100000

/* The test's program: its instructions, or for a test with a fill helper
 * the one test_verifier builds (whose retval and func_info offsets the
 * helper sets, here into the test). NULL, with the reason in `why`, where
 * there is none to give. */
static struct bpf_insn *program(struct bpf_test *t, int *len, char *why, size_t n)
{
	if (!t->fill_helper) {
		*len = prog_len(t);
		return t->insns;
	}
	struct bpf_insn *insns;
	uint32_t retval, off[MAX_FUNC_INFOS];
	int nfi = 0;
	if (tv_fill(t->descr, &insns, len, &retval, off, &nfi)) {
		snprintf(why, n, "fill helper not found");
		return NULL;
	}
	if (*len > FILL_MAX) {
		snprintf(why, n, "program of %d insns built by a fill helper (not committed)", *len);
		return NULL;
	}
	t->retvals[0].retval = retval;
	for (int j = 0; j < nfi && j < t->func_info_cnt; j++)
		t->func_info[j].insn_off = off[j];
	return insns;
}

static void extract_one(const struct test_file *f, int i, bool fill)
{
	struct bpf_test *t = &f->tests[i];
	char why[256] = "";
	int n = 0;
	struct bpf_insn *insns = fill ? program(t, &n, why, sizeof(why)) : t->insns;
	if (!fill)
		n = t->fill_helper ? 0 : prog_len(t);
	FILE *o = stdout;
	fputs("{\"file\":", o);
	json_str(o, f->name);
	fputs(",\"name\":", o);
	json_str(o, test_name(f, i));
	fprintf(o, ",\"prog_type\":%d,\"expected_attach_type\":%d,\"flags\":%u",
		t->prog_type ? (int)t->prog_type : BPF_PROG_TYPE_SOCKET_FILTER,
		(int)t->expected_attach_type, t->flags);
	fputs(",\"result\":", o);
	json_str(o, result_name(t->result));
	fputs(",\"result_unpriv\":", o);
	json_str(o, result_name(t->result_unpriv));
	fputs(",\"errstr\":", o);
	json_str(o, t->errstr);
	fputs(",\"errstr_unpriv\":", o);
	json_str(o, t->errstr_unpriv);
	fprintf(o, ",\"unpriv\":%s", as_unpriv(t) ? "true" : "false");
	fputs(",\"fill_helper\":", o);
	fputs(t->fill_helper ? "true" : "false", o);
	if (why[0]) {
		fputs(",\"skip\":", o);
		json_str(o, why);
	}
	fputs(",\"insns\":[", o);
	for (int k = 0; insns && k < n; k++) {
		if (k)
			fputc(',', o);
		json_hex(o, &insns[k], 8);
	}
	fputs("],\"fixups\":{", o);
	bool first = true;
	for (int k = 0; k < NKINDS; k++) {
		const int *fx = fixups(t, k);
		if (!fx[0])
			continue;
		fprintf(o, "%s\"%s\":[", first ? "" : ",", kinds[k].name);
		first = false;
		for (int j = 0; j < MAX_FIXUPS && fx[j]; j++)
			fprintf(o, "%s%d", j ? "," : "", fx[j]);
		fputc(']', o);
	}
	fputs("},\"kfunc_fixups\":[", o);
	for (int j = 0; j < MAX_FIXUPS && t->fixup_kfunc_btf_id[j].kfunc; j++) {
		fputs(j ? ",[" : "[", o);
		json_str(o, t->fixup_kfunc_btf_id[j].kfunc);
		fprintf(o, ",%d]", t->fixup_kfunc_btf_id[j].insn_idx);
	}
	fputs("],\"kfunc\":", o);
	json_str(o, t->kfunc);
	fprintf(o, ",\"runs\":%d,\"retvals\":[", t->runs);
	int runs = t->runs ? t->runs : 1;
	for (int r = 0; t->runs >= 0 && r < runs && r < MAX_TEST_RUNS; r++) {
		fprintf(o, "%s{\"retval\":%u,\"retval_unpriv\":%u,\"data\":", r ? "," : "",
			t->retvals[r].retval, t->retvals[r].retval_unpriv);
		json_hex(o, t->retvals[r].data, TEST_DATA_LEN);
		fputc('}', o);
	}
	fprintf(o, "],\"insn_processed\":%u", t->insn_processed);
	fprintf(o, ",\"checks_xlated\":%s",
		(t->expected_insns[0].code || t->unexpected_insns[0].code) ? "true" : "false");
	fputs(",\"func_info\":[", o);
	for (int j = 0; j < t->func_info_cnt && j < MAX_FUNC_INFOS; j++)
		fprintf(o, "%s[%u,%u]", j ? "," : "", t->func_info[j].insn_off,
			t->func_info[j].type_id);
	fputs("],\"btf_types\":[", o);
	for (int j = 0; t->btf_types[0] && j < MAX_BTF_TYPES && t->btf_types[j] != BTF_END_RAW; j++)
		fprintf(o, "%s%u", j ? "," : "", t->btf_types[j]);
	fputs("],\"btf_strings\":", o);
	if (t->btf_types[0])
		json_hex(o, t->btf_strings, MAX_BTF_STRINGS);
	else
		fputs("null", o);
	fputs("}\n", o);
}

/* ---- capabilities (effective set only, as the selftests drop them) ---- */

#define CAPBIT(c) (1ULL << (c))
#define ADMIN_CAPS (CAPBIT(CAP_NET_ADMIN) | CAPBIT(CAP_PERFMON) | CAPBIT(CAP_BPF))

static int caps_rw(uint64_t *eff, bool set)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d))
		return -errno;
	if (!set) {
		*eff = ((uint64_t)d[1].effective << 32) | d[0].effective;
		return 0;
	}
	d[0].effective = (uint32_t)*eff;
	d[1].effective = (uint32_t)(*eff >> 32);
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

static void caps_set(uint64_t eff)
{
	if (caps_rw(&eff, true))
		perror("capset");
}

/* ---- maps, as test_verifier creates them per fixup kind ---- */

static int map_fds[NKINDS];
static char skip_reason[256];

static int mk(enum bpf_map_type type, u32 ksz, u32 vsz, u32 max, u32 flags, int btf_fd,
	      u32 key_id, u32 val_id, int inner)
{
	LIBBPF_OPTS(bpf_map_create_opts, o);
	o.map_flags = (type == BPF_MAP_TYPE_HASH ? BPF_F_NO_PREALLOC : 0) | flags;
	if (btf_fd >= 0) {
		o.btf_fd = btf_fd;
		o.btf_key_type_id = key_id;
		o.btf_value_type_id = val_id;
	}
	if (inner >= 0)
		o.inner_map_fd = inner;
	return bpf_map_create(type, btf_fd >= 0 ? "test_map" : NULL, ksz, vsz, max, &o);
}

static void fill_test_val(int fd)
{
	struct test_val v = {.index = (6 + 1) * sizeof(int), .foo[6] = 0xabcdef12};
	int k = 0;
	bpf_map_update_elem(fd, &k, &v, 0);
}

/* The BTF of test_verifier's BTF-described maps, written here from its
 * description: [1] int, [2] struct bpf_spin_lock {int val}, [3] struct val
 * {int cnt; struct bpf_spin_lock l}, [4] struct bpf_timer (16 bytes),
 * [5] struct timer {struct bpf_timer t}, [6] struct prog_test_ref_kfunc,
 * [7] struct prog_test_member, [8] kptr_untrusted tag of 6, [9] kptr tag of
 * 6, [10] kptr tag of 7, [11..13] pointers to 8, 9, 10, [14] struct btf_ptr
 * {11 ptr; 12 ptr; 13 ptr} of 24 bytes. */
static u32 soff(const char *s, size_t n, const char *name)
{
	/* the offset of the whole string `name` in the string section */
	for (size_t i = 1; i < n; i += strlen(s + i) + 1)
		if (!strcmp(s + i, name))
			return (u32)i;
	return 0;
}

static int map_btf(void)
{
	static const char str[] = "\0int\0bpf_spin_lock\0val\0cnt\0l\0bpf_timer\0timer\0t"
				  "\0btf_ptr\0prog_test_ref_kfunc\0ptr\0kptr\0kptr_untrusted"
				  "\0prog_test_member";
	u32 types[128];
	int n = 0;
#define W(v) (types[n++] = (v))
	u32 s_int = soff(str, sizeof(str), "int"), s_lock = soff(str, sizeof(str), "bpf_spin_lock"),
	    s_val = soff(str, sizeof(str), "val"), s_cnt = soff(str, sizeof(str), "cnt"),
	    s_l = soff(str, sizeof(str), "l"), s_timer_t = soff(str, sizeof(str), "bpf_timer"),
	    s_timer = soff(str, sizeof(str), "timer"), s_t = soff(str, sizeof(str), "t"),
	    s_btf_ptr = soff(str, sizeof(str), "btf_ptr"),
	    s_ref = soff(str, sizeof(str), "prog_test_ref_kfunc"),
	    s_ptr = soff(str, sizeof(str), "ptr"), s_kptr = soff(str, sizeof(str), "kptr"),
	    s_untr = soff(str, sizeof(str), "kptr_untrusted"),
	    s_member = soff(str, sizeof(str), "prog_test_member");
	W(s_int), W(BTF_INFO_ENC(BTF_KIND_INT, 0, 0)), W(4), W(BTF_INT_ENC(BTF_INT_SIGNED, 0, 32));
	W(s_lock), W(BTF_INFO_ENC(BTF_KIND_STRUCT, 0, 1)), W(4), W(s_val), W(1), W(0);
	W(s_val), W(BTF_INFO_ENC(BTF_KIND_STRUCT, 0, 2)), W(8), W(s_cnt), W(1), W(0), W(s_l), W(2),
		W(32);
	W(s_timer_t), W(BTF_INFO_ENC(BTF_KIND_STRUCT, 0, 0)), W(16);
	W(s_timer), W(BTF_INFO_ENC(BTF_KIND_STRUCT, 0, 1)), W(16), W(s_t), W(4), W(0);
	W(s_ref), W(BTF_INFO_ENC(BTF_KIND_STRUCT, 0, 0)), W(0);
	W(s_member), W(BTF_INFO_ENC(BTF_KIND_STRUCT, 0, 0)), W(0);
	W(s_untr), W(BTF_INFO_ENC(BTF_KIND_TYPE_TAG, 0, 0)), W(6);
	W(s_kptr), W(BTF_INFO_ENC(BTF_KIND_TYPE_TAG, 0, 0)), W(6);
	W(s_kptr), W(BTF_INFO_ENC(BTF_KIND_TYPE_TAG, 0, 0)), W(7);
	W(0), W(BTF_INFO_ENC(BTF_KIND_PTR, 0, 0)), W(8);
	W(0), W(BTF_INFO_ENC(BTF_KIND_PTR, 0, 0)), W(9);
	W(0), W(BTF_INFO_ENC(BTF_KIND_PTR, 0, 0)), W(10);
	W(s_btf_ptr), W(BTF_INFO_ENC(BTF_KIND_STRUCT, 0, 3)), W(24), W(s_ptr), W(11), W(0),
		W(s_ptr), W(12), W(64), W(s_ptr), W(13), W(128);
#undef W
	struct btf_header h = {
		.magic = BTF_MAGIC,
		.version = BTF_VERSION,
		.hdr_len = sizeof(h),
		.type_len = n * 4,
		.str_off = n * 4,
		.str_len = sizeof(str),
	};
	char raw[sizeof(h) + sizeof(types) + sizeof(str)];
	memcpy(raw, &h, sizeof(h));
	memcpy(raw + sizeof(h), types, n * 4);
	memcpy(raw + sizeof(h) + n * 4, str, sizeof(str));
	return bpf_btf_load(raw, sizeof(h) + n * 4 + sizeof(str), NULL);
}

static int dummy_prog(enum bpf_prog_type pt, int ret, int tail_map, int idx)
{
	struct bpf_insn simple[] = {BPF_MOV64_IMM(BPF_REG_0, ret), BPF_EXIT_INSN()};
	struct bpf_insn tail[] = {
		BPF_MOV64_IMM(BPF_REG_3, idx),
		BPF_LD_MAP_FD(BPF_REG_2, tail_map),
		BPF_RAW_INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_tail_call),
		BPF_MOV64_IMM(BPF_REG_0, ret),
		BPF_EXIT_INSN(),
	};
	if (tail_map < 0)
		return bpf_prog_load(pt, NULL, "GPL", simple, 2, NULL);
	return bpf_prog_load(pt, NULL, "GPL", tail, 5, NULL);
}

/* A prog array of `max` slots: p1key -> returns 42, p2key -> tail-calls
 * p2key again and returns 41, p3key -> returns 24. */
static int prog_array(enum bpf_prog_type pt, u32 max, int k1, int k2, int k3)
{
	int m = mk(BPF_MAP_TYPE_PROG_ARRAY, 4, 4, max, 0, -1, 0, 0, -1);
	if (m < 0)
		return -1;
	int p1 = dummy_prog(pt, 42, -1, 0), p2 = dummy_prog(pt, 41, m, k2),
	    p3 = dummy_prog(pt, 24, -1, 0);
	if (p1 < 0 || p2 < 0 || p3 < 0 || bpf_map_update_elem(m, &k1, &p1, 0) ||
	    bpf_map_update_elem(m, &k2, &p2, 0) || bpf_map_update_elem(m, &k3, &p3, 0)) {
		close(m);
		m = -1;
	}
	close(p1);
	close(p2);
	close(p3);
	return m;
}

static int create_for(int k, enum bpf_prog_type pt)
{
	const char *n = kinds[k].name;
	int fd = -1, btf = -1, inner = -1;
	if (!strcmp(n, "map_hash_8b"))
		fd = mk(BPF_MAP_TYPE_HASH, 8, 8, 1, 0, -1, 0, 0, -1);
	else if (!strcmp(n, "map_hash_48b"))
		fd = mk(BPF_MAP_TYPE_HASH, 8, sizeof(struct test_val), 1, 0, -1, 0, 0, -1);
	else if (!strcmp(n, "map_hash_16b"))
		fd = mk(BPF_MAP_TYPE_HASH, 8, sizeof(struct other_val), 1, 0, -1, 0, 0, -1);
	else if (!strcmp(n, "map_array_48b") || !strcmp(n, "map_array_ro") ||
		 !strcmp(n, "map_array_wo")) {
		u32 fl = n[10] == 'r' ? BPF_F_RDONLY_PROG : n[10] == 'w' ? BPF_F_WRONLY_PROG : 0;
		fd = mk(BPF_MAP_TYPE_ARRAY, 4, sizeof(struct test_val), 1, fl, -1, 0, 0, -1);
		if (fd >= 0)
			fill_test_val(fd);
	} else if (!strcmp(n, "map_array_small")) {
		/* a value of 1 byte, set from a test_val as test_verifier does:
		 * the kernel reads its first byte */
		fd = mk(BPF_MAP_TYPE_ARRAY, 4, 1, 1, 0, -1, 0, 0, -1);
		if (fd >= 0)
			fill_test_val(fd);
	} else if (!strcmp(n, "prog1"))
		fd = prog_array(pt, 4, 0, 1, 2);
	else if (!strcmp(n, "prog2"))
		fd = prog_array(pt, 8, 7, 1, 2);
	else if (!strcmp(n, "map_in_map")) {
		inner = mk(BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0, -1, 0, 0, -1);
		if (inner >= 0)
			fd = mk(BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 4, 1, 0, -1, 0, 0, inner);
	} else if (!strcmp(n, "cgroup_storage"))
		fd = mk(BPF_MAP_TYPE_CGROUP_STORAGE, sizeof(struct bpf_cgroup_storage_key),
			TEST_DATA_LEN, 0, 0, -1, 0, 0, -1);
	else if (!strcmp(n, "percpu_cgroup_storage"))
		fd = mk(BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE, sizeof(struct bpf_cgroup_storage_key),
			TEST_DATA_LEN, 0, 0, -1, 0, 0, -1);
	else if (!strcmp(n, "map_sockmap"))
		fd = mk(BPF_MAP_TYPE_SOCKMAP, 4, 4, 1, 0, -1, 0, 0, -1);
	else if (!strcmp(n, "map_sockhash"))
		fd = mk(BPF_MAP_TYPE_SOCKHASH, 4, 4, 1, 0, -1, 0, 0, -1);
	else if (!strcmp(n, "map_xskmap"))
		fd = mk(BPF_MAP_TYPE_XSKMAP, 4, 4, 1, 0, -1, 0, 0, -1);
	else if (!strcmp(n, "map_stacktrace"))
		fd = mk(BPF_MAP_TYPE_STACK_TRACE, 4, 8, 1, 0, -1, 0, 0, -1);
	else if (!strcmp(n, "map_event_output"))
		fd = mk(BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, 1, 0, -1, 0, 0, -1);
	else if (!strcmp(n, "map_reuseport_array"))
		fd = mk(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 4, 8, 1, 0, -1, 0, 0, -1);
	else if (!strcmp(n, "map_ringbuf"))
		fd = mk(BPF_MAP_TYPE_RINGBUF, 0, 0, getpagesize(), 0, -1, 0, 0, -1);
	else if ((btf = map_btf()) < 0)
		snprintf(skip_reason, sizeof(skip_reason), "BTF for %s: %s", n, strerror(errno));
	else if (!strcmp(n, "map_spin_lock"))
		fd = mk(BPF_MAP_TYPE_ARRAY, 4, 8, 1, 0, btf, 1, 3, -1);
	else if (!strcmp(n, "sk_storage_map"))
		fd = mk(BPF_MAP_TYPE_SK_STORAGE, 4, 8, 0, BPF_F_NO_PREALLOC, btf, 1, 3, -1);
	else if (!strcmp(n, "map_timer"))
		fd = mk(BPF_MAP_TYPE_ARRAY, 4, 16, 1, 0, btf, 1, 5, -1);
	else if (!strcmp(n, "map_kptr"))
		fd = mk(BPF_MAP_TYPE_ARRAY, 4, 24, 1, 0, btf, 1, 14, -1);
	if (fd < 0 && !skip_reason[0])
		snprintf(skip_reason, sizeof(skip_reason), "map for fixup %s: %s", n, strerror(errno));
	if (inner >= 0)
		close(inner);
	if (btf >= 0)
		close(btf);
	return fd;
}

/* ---- one test in one mode ---- */

#define LOG_SZ (16u << 20)
#define TAIL_LINES 12
static char *logbuf;
static int base_flags;
static struct btf *vmlinux;

static const char *tail(const char *log, int lines)
{
	const char *p = log + strlen(log);
	int n = 0;
	while (p > log) {
		p--;
		if (*p == '\n' && p[1] != '\0' && ++n > lines)
			return p + 1;
	}
	return log;
}

/* Every tab-separated part of `exp` is in `log`, in order. */
static bool str_seq(const char *log, const char *exp)
{
	char part[256];
	while (*exp) {
		size_t n = strcspn(exp, "\t");
		if (n >= sizeof(part))
			return false;
		memcpy(part, exp, n);
		part[n] = 0;
		const char *hit = n ? strstr(log, part) : log;
		if (!hit)
			return false;
		log = hit + n;
		exp += n;
		if (*exp)
			exp++;
	}
	return true;
}

static int load_test_btf(const struct bpf_test *t)
{
	int n = 0;
	while (n < MAX_BTF_TYPES && t->btf_types[n] != BTF_END_RAW)
		n++;
	struct btf_header h = {
		.magic = BTF_MAGIC,
		.version = BTF_VERSION,
		.hdr_len = sizeof(h),
		.type_len = n * 4,
		.str_off = n * 4,
		.str_len = MAX_BTF_STRINGS,
	};
	static char raw[sizeof(h) + MAX_BTF_TYPES * 4 + MAX_BTF_STRINGS];
	memcpy(raw, &h, sizeof(h));
	memcpy(raw + sizeof(h), t->btf_types, n * 4);
	memcpy(raw + sizeof(h) + n * 4, t->btf_strings, MAX_BTF_STRINGS);
	return bpf_btf_load(raw, sizeof(h) + n * 4 + MAX_BTF_STRINGS, NULL);
}

static void capture_one(const struct test_file *f, int i, bool unpriv, uint64_t caps_priv)
{
	struct bpf_test *t = &f->tests[i];
	FILE *o = stdout;
	enum bpf_prog_type pt = t->prog_type ? t->prog_type : BPF_PROG_TYPE_SOCKET_FILTER;
	int expected = unpriv && t->result_unpriv != UNDEF ? t->result_unpriv : t->result;
	int len = 0;
	int btf_fd = -1, prog = -1, err = 0;
	char out[TEST_DATA_LEN << 2];
	skip_reason[0] = 0;
	const struct bpf_insn *orig = program(t, &len, skip_reason, sizeof(skip_reason));
	struct bpf_insn *insns = calloc(len ? len : 1, sizeof(*insns));
	if (orig)
		memcpy(insns, orig, len * sizeof(*insns));
	for (int k = 0; k < NKINDS; k++)
		map_fds[k] = -1;

	fputs("{\"file\":", o);
	json_str(o, f->name);
	fputs(",\"name\":", o);
	json_str(o, test_name(f, i));
	fprintf(o, ",\"mode\":\"%s\"", unpriv ? "unpriv" : "priv");

	if (!orig)
		goto skip;
	/* Maps are created with the run's capabilities: test_verifier creates
	 * them in do_test_single, after dropping them for the unprivileged run. */
	for (int k = 0; k < NKINDS && !skip_reason[0]; k++) {
		const int *fx = fixups(t, k);
		if (!fx[0])
			continue;
		map_fds[k] = create_for(k, pt);
		if (map_fds[k] < 0)
			break;
		for (int j = 0; j < MAX_FIXUPS && fx[j]; j++)
			insns[fx[j]].imm = map_fds[k];
	}
	if (skip_reason[0])
		goto skip;
	int fd_array[2] = {-1, -1};
	for (int j = 0; j < MAX_FIXUPS && t->fixup_kfunc_btf_id[j].kfunc; j++) {
		const char *name = t->fixup_kfunc_btf_id[j].kfunc;
		int id = vmlinux ? btf__find_by_name_kind(vmlinux, name, BTF_KIND_FUNC) : -1;
		if (id <= 0) {
			snprintf(skip_reason, sizeof(skip_reason),
				 "kfunc %s not in vmlinux BTF (bpf_testmod)", name);
			goto skip;
		}
		insns[t->fixup_kfunc_btf_id[j].insn_idx].imm = id;
	}

	LIBBPF_OPTS(bpf_prog_load_opts, opts);
	u32 pflags = base_flags;
	if (t->flags & F_LOAD_WITH_STRICT_ALIGNMENT)
		pflags |= BPF_F_STRICT_ALIGNMENT;
	if (t->flags & F_NEEDS_EFFICIENT_UNALIGNED_ACCESS)
		pflags |= BPF_F_ANY_ALIGNMENT;
	if (t->flags & ~3)
		pflags |= t->flags;
	opts.prog_flags = pflags;
	opts.expected_attach_type = t->expected_attach_type;
	opts.log_level = expected == VERBOSE_ACCEPT ? 2 : 4;
	opts.log_buf = logbuf;
	opts.log_size = LOG_SZ;
	(void)fd_array;
	if ((pt == BPF_PROG_TYPE_TRACING || pt == BPF_PROG_TYPE_LSM) && t->kfunc) {
		int id = libbpf_find_vmlinux_btf_id(t->kfunc, opts.expected_attach_type);
		if (id < 0) {
			snprintf(skip_reason, sizeof(skip_reason), "no BTF id for attach target %s",
				 t->kfunc);
			goto skip;
		}
		opts.attach_btf_id = id;
	}
	if (t->btf_types[0]) {
		btf_fd = load_test_btf(t);
		if (btf_fd < 0) {
			snprintf(skip_reason, sizeof(skip_reason), "test BTF: %s", strerror(errno));
			goto skip;
		}
		opts.prog_btf_fd = btf_fd;
	}
	if (t->func_info_cnt) {
		opts.func_info = t->func_info;
		opts.func_info_cnt = t->func_info_cnt;
		opts.func_info_rec_size = sizeof(t->func_info[0]);
	}
	logbuf[0] = 0;
	prog = bpf_prog_load(pt, NULL, "GPL", insns, len, &opts);
	err = prog < 0 ? errno : 0;
	fprintf(o, ",\"stage\":\"verifier\",\"load\":\"%s\",\"errno\":%d", prog >= 0 ? "ok" : "fail",
		err);
	/* the time varies from run to run: left out, so that a new capture
	 * differs only where the kernel's answers do */
	char *vt = strstr(logbuf, "verification time ");
	if (vt) {
		char *e = strchr(vt, '\n');
		memmove(vt, e ? e + 1 : vt + strlen(vt), strlen(e ? e + 1 : vt + strlen(vt)) + 1);
	}
	fputs(",\"log_tail\":", o);
	json_str(o, tail(logbuf, TAIL_LINES));
	const char *errstr = unpriv && t->errstr_unpriv ? t->errstr_unpriv : t->errstr;
	if (errstr && *errstr)
		fprintf(o, ",\"errstr_ok\":%s", str_seq(logbuf, errstr) ? "true" : "false");
	fputs(",\"runs\":[", o);
	if (prog >= 0 && t->runs >= 0) {
		int runs = t->runs ? t->runs : 1;
		for (int r = 0; r < runs && r < MAX_TEST_RUNS; r++) {
			LIBBPF_OPTS(bpf_test_run_opts, topts, .data_in = t->retvals[r].data,
				    .data_size_in = TEST_DATA_LEN, .data_out = out,
				    .data_size_out = sizeof(out), .repeat = 1);
			if (unpriv)
				caps_set(caps_priv);
			int e = bpf_prog_test_run_opts(prog, &topts) ? errno : 0;
			if (unpriv)
				caps_set(caps_priv & ~ADMIN_CAPS);
			uint32_t want = unpriv && t->retvals[r].retval_unpriv ? t->retvals[r].retval_unpriv
									  : t->retvals[r].retval;
			if (e)
				fprintf(o, "%s{\"errno\":%d}", r ? "," : "", e);
			else if (want == POINTER_VALUE)
				/* an address: varies from run to run, not compared */
				fprintf(o, "%s{\"pointer\":true}", r ? "," : "");
			else
				fprintf(o, "%s{\"retval\":%u}", r ? "," : "", topts.retval);
		}
	}
	fputs("]}\n", o);
	goto out;
skip:
	fputs(",\"stage\":\"skip\",\"skip\":", o);
	json_str(o, skip_reason);
	fputs("}\n", o);
out:
	if (prog >= 0)
		close(prog);
	if (btf_fd >= 0)
		close(btf_fd);
	for (int k = 0; k < NKINDS; k++)
		if (map_fds[k] >= 0)
			close(map_fds[k]);
	free(insns);
	fflush(o);
}

static int probe_flags(void)
{
	static const int flags[] = {BPF_F_TEST_RND_HI32, BPF_F_TEST_REG_INVARIANTS};
	struct bpf_insn p[] = {BPF_MOV64_IMM(BPF_REG_0, 0), BPF_EXIT_INSN()};
	int out = 0;
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
		LIBBPF_OPTS(bpf_prog_load_opts, o, .prog_flags = flags[i]);
		int fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, NULL, "GPL", p, 2, &o);
		if (fd >= 0) {
			out |= flags[i];
			close(fd);
		}
	}
	return out;
}

static int quiet(enum libbpf_print_level l, const char *f, va_list a)
{
	(void)l, (void)f, (void)a;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || (strcmp(argv[1], "extract") && strcmp(argv[1], "extract-fill") &&
			 strcmp(argv[1], "capture"))) {
		fprintf(stderr, "usage: tv extract|extract-fill|capture [FILE...]\n");
		return 2;
	}
	bool capture = !strcmp(argv[1], "capture");
	bool fill = !strcmp(argv[1], "extract-fill");
	uint64_t caps = 0;
	if (capture) {
		libbpf_set_print(quiet);
		logbuf = malloc(LOG_SZ);
		base_flags = probe_flags();
		vmlinux = btf__load_vmlinux_btf();
		caps_rw(&caps, false);
		caps &= ~CAPBIT(CAP_SYS_ADMIN);
		if ((caps & ADMIN_CAPS) != ADMIN_CAPS) {
			fprintf(stderr, "tv: needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN\n");
			return 2;
		}
		caps_set(caps);
	}
	for (size_t fi = 0; fi < ARRAY_SIZE(tv_files); fi++) {
		const struct test_file *f = &tv_files[fi];
		bool want = argc <= 2;
		for (int a = 2; a < argc; a++)
			want |= !strcmp(argv[a], f->name);
		if (!want)
			continue;
		for (int i = 0; i < f->n; i++) {
			if (!capture) {
				if (!fill || f->tests[i].fill_helper)
					extract_one(f, i, fill);
				continue;
			}
			if (as_unpriv(&f->tests[i])) {
				caps_set(caps & ~ADMIN_CAPS);
				capture_one(f, i, true, caps);
				caps_set(caps);
			}
			capture_one(f, i, false, caps);
		}
	}
	return 0;
}
