#!/usr/bin/env bash
# The kernel's raw-instruction verifier tests (tools/testing/selftests/bpf/
# verifier/*.c of Linux 6.12, test_verifier's table) as data, and the host
# kernel's answers on them:
#  - tests/selftests/test_verifier/tests.jsonl: every test (instructions,
#    program type, flags, expected results, fixups, test runs);
#  - tests/selftests/test_verifier/kernel.jsonl: the host kernel's verdict,
#    errno, log tail and test runs, per test and mode (root only; skipped
#    otherwise), or into the file given as $1 (a live run).
# scripts/selftests/tv.c is compiled with the 6.12 test files #included from
# the unpacked tree (see common.sh); nothing of them is copied here.
source "$(dirname "$0")/common.sh"
unpack
build_libbpf
OUTDIR="$ROOT/tests/selftests/test_verifier"
GEN="$CACHE/tv"
mkdir -p "$GEN" "$OUTDIR"
# The list of files: one array per file, then the table.
{
  for f in "$SELF"/verifier/*.c; do
    b="$(basename "$f" .c)"
    printf 'static struct bpf_test tv_%s[] = {\n#include "%s"\n};\n' "$b" "$f"
  done
  echo 'static const struct test_file tv_files[] = {'
  for f in "$SELF"/verifier/*.c; do
    b="$(basename "$f" .c)"
    printf '\t{"%s", tv_%s, ARRAY_SIZE(tv_%s)},\n' "$b" "$b" "$b"
  done
  echo '};'
} > "$GEN/tests.h"
# Stubs for the fill helpers the tests name (their programs are generated at
# run time by test_verifier; those tests are reported as skipped).
grep -ho 'fill_helper *= *[a-z_0-9]*' "$SELF"/verifier/*.c | sed 's/.*= *//' | sort -u |
  sed 's/.*/static void &(struct bpf_test *self) { (void)self; }/' > "$GEN/fill.h"
tool="$GEN/tv"
# The fill helpers' programs come from test_verifier.c itself (tv_fill.c),
# compiled apart: it has its own struct bpf_test. Its verifier/tests.h is
# generated as the selftests Makefile does.
mkdir -p "$GEN/fill/verifier"
{
  echo '#ifdef FILL_ARRAY'
  for f in "$SELF"/verifier/*.c; do printf '#include "%s"\n' "$f"; done
  echo '#endif'
} > "$GEN/fill/verifier/tests.h"
cc -O1 -w -c -o "$GEN/tv_fill.o" "$ROOT/scripts/selftests/tv_fill.c" \
  -I "$GEN/fill" -I "$SELF" -I "$KSRC/tools/include" -I "$KSRC/tools/include/uapi" \
  -I "$LIBBPF/include" -DTV_TEST_VERIFIER_C="\"$SELF/test_verifier.c\""
cc -O1 -Wall -Wno-missing-braces -Wno-unused-function -o "$tool" "$ROOT/scripts/selftests/tv.c" "$GEN/tv_fill.o" \
  -I "$LIBBPF/include" -I "$KSRC/tools/include/uapi" -I "$KSRC/tools/include" -I "$SELF" \
  -DTV_FILTER_H="\"$KSRC/tools/include/linux/filter.h\"" \
  -DTV_TEST_BTF_H="\"$SELF/test_btf.h\"" \
  -DTV_TESTS_H="\"$GEN/tests.h\"" -DTV_FILL_H="\"$GEN/fill.h\"" \
  "$LIBBPF/lib64/libbpf.a" -lelf -lz
"$tool" extract > "$OUTDIR/tests.jsonl"
"$tool" extract-fill > "$OUTDIR/fill.jsonl"
echo "test_verifier: $(wc -l < "$OUTDIR/tests.jsonl") tests into $OUTDIR/tests.jsonl, the $(wc -l < "$OUTDIR/fill.jsonl") built by fill helpers into fill.jsonl" >&2
if [ "$(id -u)" != 0 ]; then
  echo "test_verifier: not root, the host kernel's answers are not captured" >&2
  exit 0
fi
out="${1:-$OUTDIR/kernel.jsonl}"
knob=/proc/sys/kernel/unprivileged_bpf_disabled
old="$(cat "$knob" 2>/dev/null || echo 1)"
if [ "$old" != 0 ]; then
  trap 'echo "$old" > "$knob" || true' EXIT
  echo 0 > "$knob" || true
fi
"$tool" capture > "$out.tmp"
mv "$out.tmp" "$out"
echo "test_verifier: $(wc -l < "$out") answers from $(uname -r) into $out" >&2
