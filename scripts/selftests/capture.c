// SPDX-License-Identifier: MIT OR Apache-2.0
//
// capture: asks the host kernel for its verdict on every case of the kernel's
// verifier selftests, loading each program the way the selftests' loader does
// (facts taken from tools/testing/selftests/bpf/test_loader.c of Linux 6.12:
// the btf_decl_tag annotations, which programs load together, the flags, the
// capabilities dropped for the unprivileged run, the test run's buffers).
//
// Usage: capture OBJ... > answers.jsonl
// One JSON object per line and case: {"file","prog","mode","stage","load",
// "errno","retval","run_errno","log_tail","msgs_ok"}. Built against libbpf
// (scripts/selftests/build.sh builds the 6.12 libbpf from linux-source-6.12).

#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/capability.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOG_SZ (2u << 20)
#define TAIL_LINES 12
#define MAX_MSGS 64

enum { PRIV = 1, UNPRIV = 2 };

struct sub {
	bool fail;
	bool execute;
	int retval;
	const char *msgs[MAX_MSGS];
	int nmsgs;
};

struct spec {
	const char *name;
	struct sub priv, unpriv;
	int mode;
	int log_level;
	int flags;
	bool aux;
	bool arch_ok;
	const char *btf_path;
};

static char *logbuf;

/* libbpf's warnings for the current case: they tell a kernel refusal of the
 * program ("BPF program load failed") from a failure before it (maps, CO-RE,
 * kfunc resolution) that this host cannot get past. */
static char libbpf_msgs[8192];

static int collect(enum libbpf_print_level l, const char *f, va_list a)
{
	if (l == LIBBPF_DEBUG)
		return 0;
	size_t n = strlen(libbpf_msgs);
	if (n + 1 < sizeof(libbpf_msgs)) {
		va_list c;
		va_copy(c, a);
		vsnprintf(libbpf_msgs + n, sizeof(libbpf_msgs) - n, f, c);
		va_end(c);
	}
	if (getenv("CAPTURE_QUIET"))
		return 0;
	return vfprintf(stderr, f, a);
}

/* The first libbpf line that says why a load failed, without the object's
 * generated name. */
static const char *why(void)
{
	static char line[512];
	const char *p = libbpf_msgs;
	while (*p) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n && !memmem(p, n, "failed to load object", 21)) {
			if (n >= sizeof(line))
				n = sizeof(line) - 1;
			memcpy(line, p, n);
			line[n] = 0;
			return line;
		}
		if (!e)
			break;
		p = e + 1;
	}
	return "";
}
static int base_flags;

/* ---- capabilities (effective set only, as the selftests drop them) ---- */

static int caps_get(uint64_t *eff, struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	if (syscall(SYS_capget, &h, d))
		return -errno;
	*eff = ((uint64_t)d[1].effective << 32) | d[0].effective;
	return 0;
}

static int caps_set_eff(uint64_t eff)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];
	uint64_t cur;
	if (caps_get(&cur, d))
		return -1;
	d[0].effective = (uint32_t)eff;
	d[1].effective = (uint32_t)(eff >> 32);
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

static uint64_t caps_now(void)
{
	struct __user_cap_data_struct d[2];
	uint64_t e = 0;
	caps_get(&e, d);
	return e;
}

#define CAPBIT(c) (1ULL << (c))

/* ---- JSON output ---- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
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

/* ---- message patterns: text with {{regex}} parts, matched in order ---- */

static int to_regex(const char *pat, char *out, size_t n)
{
	size_t o = 0;
	bool in = false;
	while (*pat) {
		if (o + 3 >= n)
			return -1;
		if (!in && !strncmp(pat, "{{", 2)) {
			in = true;
			pat += 2;
			continue;
		}
		if (in && !strncmp(pat, "}}", 2)) {
			in = false;
			pat += 2;
			continue;
		}
		if (!in && strchr(".[]\\()*+?{}|^$", *pat))
			out[o++] = '\\';
		out[o++] = *pat++;
	}
	out[o] = 0;
	return in ? -1 : 0;
}

static bool msgs_match(const char *log, struct sub *s)
{
	const char *p = log;
	for (int i = 0; i < s->nmsgs; i++) {
		const char *m = s->msgs[i];
		if (!strstr(m, "{{")) {
			const char *hit = strstr(p, m);
			if (!hit)
				return false;
			p = hit + strlen(m);
		} else {
			char re[1024];
			regex_t r;
			regmatch_t mt;
			if (to_regex(m, re, sizeof(re)) || regcomp(&r, re, REG_EXTENDED | REG_NEWLINE))
				return false;
			int e = regexec(&r, p, 1, &mt, 0);
			regfree(&r);
			if (e)
				return false;
			p += mt.rm_eo;
		}
	}
	return true;
}

/* ---- annotations ---- */

static const char *after(const char *s, const char *pfx)
{
	size_t n = strlen(pfx);
	return strncmp(s, pfx, n) ? NULL : s + n;
}

/* "<counter>=<msg>" -> msg */
static const char *after_counter(const char *s, const char *pfx)
{
	const char *v = after(s, pfx);
	if (!v)
		return NULL;
	v = strchr(v, '=');
	return v ? v + 1 : NULL;
}

static int parse_num(const char *s)
{
	if (!strcmp(s, "INT_MIN"))
		return INT32_MIN;
	if (!strcmp(s, "POINTER_VALUE"))
		return 0xcafe4a11;
	if (!strcmp(s, "TEST_DATA_LEN"))
		return 64;
	return (int)strtol(s, NULL, 0);
}

static int flag_value(const char *v)
{
	static const struct {
		const char *n;
		int v;
	} t[] = {
		{"BPF_F_STRICT_ALIGNMENT", BPF_F_STRICT_ALIGNMENT},
		{"BPF_F_ANY_ALIGNMENT", BPF_F_ANY_ALIGNMENT},
		{"BPF_F_TEST_RND_HI32", BPF_F_TEST_RND_HI32},
		{"BPF_F_TEST_STATE_FREQ", BPF_F_TEST_STATE_FREQ},
		{"BPF_F_SLEEPABLE", BPF_F_SLEEPABLE},
		{"BPF_F_XDP_HAS_FRAGS", BPF_F_XDP_HAS_FRAGS},
		{"BPF_F_TEST_REG_INVARIANTS", 1U << 7},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(v, t[i].n))
			return t[i].v;
	return (int)strtol(v, NULL, 0);
}

static void parse_spec(struct btf *btf, const char *prog, struct spec *sp)
{
	memset(sp, 0, sizeof(*sp));
	sp->name = prog;
	sp->flags = base_flags;
	sp->arch_ok = true;
	bool has_unpriv_res = false, has_unpriv_ret = false, any_arch = false;
	int fid = btf__find_by_name_kind(btf, prog, BTF_KIND_FUNC);
	if (fid < 0)
		return;
	for (unsigned i = 1; i < btf__type_cnt(btf); i++) {
		const struct btf_type *t = btf__type_by_id(btf, i);
		if (!btf_is_decl_tag(t) || t->type != (unsigned)fid || btf_decl_tag(t)->component_idx != -1)
			continue;
		const char *s = btf__str_by_offset(btf, t->name_off), *v;
		if (!strcmp(s, "comment:test_expect_failure")) {
			sp->priv.fail = true;
			sp->mode |= PRIV;
		} else if (!strcmp(s, "comment:test_expect_success")) {
			sp->priv.fail = false;
			sp->mode |= PRIV;
		} else if (!strcmp(s, "comment:test_expect_failure_unpriv")) {
			sp->unpriv.fail = true;
			sp->mode |= UNPRIV;
			has_unpriv_res = true;
		} else if (!strcmp(s, "comment:test_expect_success_unpriv")) {
			sp->unpriv.fail = false;
			sp->mode |= UNPRIV;
			has_unpriv_res = true;
		} else if (!strcmp(s, "comment:test_auxiliary")) {
			sp->aux = true;
			sp->mode |= PRIV;
		} else if (!strcmp(s, "comment:test_auxiliary_unpriv")) {
			sp->aux = true;
			sp->mode |= UNPRIV;
		} else if ((v = after_counter(s, "comment:test_expect_msg="))) {
			if (sp->priv.nmsgs < MAX_MSGS)
				sp->priv.msgs[sp->priv.nmsgs++] = v;
			sp->mode |= PRIV;
		} else if ((v = after_counter(s, "comment:test_expect_msg_unpriv="))) {
			if (sp->unpriv.nmsgs < MAX_MSGS)
				sp->unpriv.msgs[sp->unpriv.nmsgs++] = v;
			sp->mode |= UNPRIV;
		} else if (after(s, "comment:test_expect_xlated=") || after(s, "comment:test_jited=")) {
			sp->mode |= PRIV;
		} else if (after(s, "comment:test_expect_xlated_unpriv=") ||
			   after(s, "comment:test_jited_unpriv=")) {
			sp->mode |= UNPRIV;
		} else if ((v = after(s, "comment:test_retval="))) {
			sp->priv.retval = parse_num(v);
			sp->priv.execute = true;
			sp->mode |= PRIV;
		} else if ((v = after(s, "comment:test_retval_unpriv="))) {
			sp->unpriv.retval = parse_num(v);
			sp->unpriv.execute = true;
			sp->mode |= UNPRIV;
			has_unpriv_ret = true;
		} else if ((v = after(s, "comment:test_log_level="))) {
			sp->log_level = (int)strtol(v, NULL, 0);
		} else if ((v = after(s, "comment:test_prog_flags="))) {
			bool clear = *v == '!';
			int f = flag_value(clear ? v + 1 : v);
			sp->flags = clear ? (sp->flags & ~f) : (sp->flags | f);
		} else if ((v = after(s, "comment:test_arch="))) {
			if (!any_arch)
				sp->arch_ok = false;
			any_arch = true;
			if (!strcmp(v, "X86_64"))
				sp->arch_ok = true;
		} else if ((v = after(s, "comment:test_btf_path="))) {
			sp->btf_path = v;
		}
	}
	if (!sp->mode)
		sp->mode = PRIV;
	if (!has_unpriv_res)
		sp->unpriv.fail = sp->priv.fail;
	if (!has_unpriv_ret) {
		sp->unpriv.retval = sp->priv.retval;
		sp->unpriv.execute = sp->priv.execute;
	}
	if (!sp->unpriv.nmsgs) {
		memcpy(sp->unpriv.msgs, sp->priv.msgs, sizeof(sp->priv.msgs));
		sp->unpriv.nmsgs = sp->priv.nmsgs;
	}
}

static bool unpriv_map_ok(struct bpf_map *m)
{
	switch (bpf_map__type(m)) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_HASH_OF_MAPS:
		return !(bpf_map__map_flags(m) & BPF_F_ZERO_SEED);
	case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE:
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_RINGBUF:
	case BPF_MAP_TYPE_PROG_ARRAY:
	case BPF_MAP_TYPE_CGROUP_ARRAY:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
	case BPF_MAP_TYPE_USER_RINGBUF:
	case BPF_MAP_TYPE_ARRAY_OF_MAPS:
	case BPF_MAP_TYPE_CGROUP_STORAGE:
	case BPF_MAP_TYPE_PERF_EVENT_ARRAY:
		return true;
	default:
		return false;
	}
}

/* The two files whose runs need a map value set first (prog_tests/verifier.c). */
static int pre_run(struct bpf_object *obj, const char *file)
{
	const char *map = NULL;
	if (strstr(file, "verifier_array_access"))
		map = "map_array_ro";
	else if (strstr(file, "verifier_value_ptr_arith"))
		map = "map_array_48b";
	if (!map)
		return 0;
	struct bpf_map *m = bpf_object__find_map_by_name(obj, map);
	if (!m)
		return -ENOENT;
	struct {
		unsigned int index;
		int foo[11];
	} val = {.index = 7 * sizeof(int)};
	val.foo[6] = 0xabcdef12;
	int key = 0;
	return bpf_map_update_elem(bpf_map__fd(m), &key, &val, 0) ? -errno : 0;
}

static const char *base(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static void run_case(const char *path, const void *bytes, size_t len, struct spec *specs, int n,
		     struct spec *sp, bool unpriv, uint64_t caps_base, bool unpriv_possible)
{
	struct sub *sub = unpriv ? &sp->unpriv : &sp->priv;
	const char *stage = "verifier", *file = base(path);
	int err = 0, retval = 0, run_errno = 0;
	bool ran = false, loaded = false;
	logbuf[0] = 0;
	libbpf_msgs[0] = 0;

	if (!sp->arch_ok) {
		stage = "skip-arch";
		goto out;
	}
	if (unpriv && !unpriv_possible) {
		stage = "skip-unpriv";
		goto out;
	}
	LIBBPF_OPTS(bpf_object_open_opts, oo, .btf_custom_path = sp->btf_path);
	struct bpf_object *obj = bpf_object__open_mem(bytes, len, &oo);
	if (!obj) {
		err = errno;
		stage = "open";
		goto out;
	}
	struct bpf_program *p, *target = NULL;
	int i = 0;
	bpf_object__for_each_program(p, obj) {
		struct spec *s = &specs[i++];
		bool load = false;
		if (!strcmp(bpf_program__name(p), sp->name)) {
			target = p;
			load = true;
		}
		if (s->aux && (s->mode & (unpriv ? UNPRIV : PRIV)))
			load = true;
		bpf_program__set_autoload(p, load);
	}
	bpf_program__set_log_buf(target, logbuf, LOG_SZ);
	bpf_program__set_log_level(target, sp->log_level);
	bpf_program__set_flags(target, bpf_program__flags(target) | sp->flags);
	struct bpf_map *m;
	bpf_object__for_each_map(m, obj)
		bpf_map__set_autocreate(m, !unpriv || unpriv_map_ok(m));

	if (unpriv)
		caps_set_eff(caps_base & ~(CAPBIT(CAP_SYS_ADMIN) | CAPBIT(CAP_NET_ADMIN) |
					   CAPBIT(CAP_PERFMON) | CAPBIT(CAP_BPF)));
	err = bpf_object__load(obj);
	err = err ? -err : 0;
	if (unpriv)
		caps_set_eff(caps_base);
	/* A failure before the program reached the verifier leaves fd < 0 and an
	 * empty log; libbpf reports those stages on stderr. */
	loaded = !err;
	if (err && !logbuf[0] && !strstr(libbpf_msgs, "BPF program load failed"))
		stage = "prepare";
	if (loaded && sub->execute) {
		int pe = pre_run(obj, file);
		char in[64] = {0}, out[256] = {0};
		LIBBPF_OPTS(bpf_test_run_opts, to, .data_in = in, .data_size_in = sizeof(in),
			    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);
		if (bpf_program__type(target) == BPF_PROG_TYPE_SYSCALL) {
			memset(&to, 0, sizeof(to));
			to.sz = sizeof(to);
		}
		if (pe)
			run_errno = -pe;
		else if (bpf_prog_test_run_opts(bpf_program__fd(target), &to))
			run_errno = errno;
		else {
			retval = (int)to.retval;
			ran = true;
		}
	}
	bpf_object__close(obj);
out:
	printf("{\"file\":");
	json_str(stdout, file);
	printf(",\"prog\":");
	json_str(stdout, sp->name);
	printf(",\"mode\":\"%s\",\"stage\":\"%s\",\"load\":\"%s\",\"errno\":%d", unpriv ? "unpriv" : "priv",
	       stage, loaded ? "ok" : (strncmp(stage, "skip", 4) ? "fail" : "skip"), err);
	if (ran)
		printf(",\"retval\":%d", retval);
	if (run_errno)
		printf(",\"run_errno\":%d", run_errno);
	printf(",\"msgs_ok\":%s", msgs_match(logbuf, sub) ? "true" : "false");
	if (err) {
		printf(",\"libbpf\":");
		json_str(stdout, why());
	}
	printf(",\"log_tail\":");
	json_str(stdout, tail(logbuf, TAIL_LINES));
	printf("}\n");
	fflush(stdout);
}



static int unpriv_disabled(void)
{
	FILE *f = fopen("/proc/sys/kernel/unprivileged_bpf_disabled", "r");
	int v = 1;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 1;
		fclose(f);
	}
	return v;
}

int main(int argc, char **argv)
{
	logbuf = calloc(1, LOG_SZ);
	libbpf_set_print(collect);
	/* What test_progs adds to every program when the kernel takes it. */
	{
		struct bpf_insn ins[] = {
			{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
			{.code = BPF_JMP | BPF_EXIT},
		};
		int fl[] = {BPF_F_TEST_RND_HI32, 1 << 7};
		for (int i = 0; i < 2; i++) {
			LIBBPF_OPTS(bpf_prog_load_opts, po, .prog_flags = fl[i]);
			int fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "flag", "GPL", ins, 2, &po);
			if (fd >= 0) {
				base_flags |= fl[i];
				close(fd);
			}
		}
	}
	bool unpriv_possible = unpriv_disabled() == 0;
	for (int a = 1; a < argc; a++) {
		const char *path = argv[a];
		FILE *f = fopen(path, "rb");
		if (!f) {
			perror(path);
			return 1;
		}
		fseek(f, 0, SEEK_END);
		size_t len = ftell(f);
		rewind(f);
		void *bytes = malloc(len);
		if (fread(bytes, 1, len, f) != len) {
			perror(path);
			return 1;
		}
		fclose(f);
		/* The whole file runs without CAP_SYS_ADMIN (prog_tests/verifier.c);
		 * verifier_mtu also without CAP_PERFMON. */
		uint64_t saved = caps_now(), run_caps = getenv("CAPTURE_KEEP_SYSADMIN") ? saved : (saved & ~CAPBIT(CAP_SYS_ADMIN));
		if (strstr(path, "verifier_mtu"))
			run_caps &= ~CAPBIT(CAP_PERFMON);
		struct bpf_object *obj = bpf_object__open_mem(bytes, len, NULL);
		if (!obj) {
			fprintf(stderr, "%s: cannot open\n", path);
			continue;
		}
		struct btf *btf = bpf_object__btf(obj);
		int n = 0;
		struct bpf_program *p;
		bpf_object__for_each_program(p, obj) n++;
		struct spec *specs = calloc(n ? n : 1, sizeof(*specs));
		char **names = calloc(n ? n : 1, sizeof(char *));
		int i = 0;
		bpf_object__for_each_program(p, obj) {
			names[i] = strdup(bpf_program__name(p));
			parse_spec(btf, names[i], &specs[i]);
			i++;
		}
		fprintf(stderr, "[%d/%d] %s: %d programs\n", a, argc - 1, base(path), n);
		caps_set_eff(run_caps);
		for (i = 0; i < n; i++) {
			struct spec *sp = &specs[i];
			if (sp->aux)
				continue;
			if (sp->mode & PRIV)
				run_case(path, bytes, len, specs, n, sp, false, run_caps, unpriv_possible);
			if (sp->mode & UNPRIV)
				run_case(path, bytes, len, specs, n, sp, true, run_caps, unpriv_possible);
		}
		caps_set_eff(saved);
		/* The specs point into this object's BTF strings. */
		bpf_object__close(obj);
		for (i = 0; i < n; i++)
			free(names[i]);
		free(names);
		free(specs);
		free(bytes);
	}
	return 0;
}
