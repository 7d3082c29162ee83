// SPDX-License-Identifier: MIT OR Apache-2.0
//
// tv_fill: the programs test_verifier builds at run time (its fill helpers:
// ld_abs, ld_dw, jit, scale, bpf_loop_inline), built by test_verifier.c's own
// helpers so that they are the same programs. test_verifier.c is #included
// at build time from the unpacked 6.12 tree (never copied into the project:
// GPL-2.0), its main() renamed; only tv_fill() below is called. The helpers'
// random programs (ld_dw) use rand(): it is seeded with 1 before each, so a
// program is the same on every build.
#define main tv_test_verifier_main
#include TV_TEST_VERIFIER_C
#undef main

/* The program of the test named `descr` that has a fill helper: its
 * instructions (*insns, *len), its expected retval as the helper sets it,
 * and its func_info offsets (the helper may move them). 0 on success, -1 if
 * there is no such test. Each program is built once (a helper may read and
 * then overwrite the test's retval). */
int tv_fill(const char *descr, struct bpf_insn **insns, int *len, uint32_t *retval,
	    uint32_t *func_info_off, int *nfunc_info)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(tests); i++) {
		struct bpf_test *t = &tests[i];
		if (!t->fill_helper || strcmp(t->descr, descr))
			continue;
		if (!t->fill_insns) {
			srand(1);
			t->fill_insns = calloc(MAX_TEST_INSNS, sizeof(struct bpf_insn));
			if (!t->fill_insns)
				return -1;
			t->fill_helper(t);
		}
		*insns = t->fill_insns;
		*len = t->prog_len;
		*retval = t->retval;
		*nfunc_info = t->func_info_cnt;
		for (int j = 0; j < t->func_info_cnt && j < MAX_FUNC_INFOS; j++)
			func_info_off[j] = t->func_info[j].insn_off;
		return 0;
	}
	return -1;
}

/* test_verifier.c refers to these selftest helpers in code never run here. */
int cap_enable_effective(__u64 caps, __u64 *old_caps)
{
	(void)caps, (void)old_caps;
	return -1;
}
int cap_disable_effective(__u64 caps, __u64 *old_caps)
{
	(void)caps, (void)old_caps;
	return -1;
}
bool get_unpriv_disabled(void)
{
	return true;
}
bool is_jit_enabled(void)
{
	return false;
}
int get_xlated_program(int fd_prog, struct bpf_insn **buf, __u32 *cnt)
{
	(void)fd_prog, (void)buf, (void)cnt;
	return -1;
}
int load_bpf_testmod(bool verbose)
{
	(void)verbose;
	return -1;
}
int unload_bpf_testmod(bool verbose)
{
	(void)verbose;
	return -1;
}
int testing_prog_flags(void)
{
	return 0;
}
