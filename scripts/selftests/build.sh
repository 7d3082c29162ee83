#!/usr/bin/env bash
# Builds the kernel's verifier selftests as the selftests Makefile builds them
# (clang-19, -O2 -g -mcpu=v3, the 6.12 libbpf headers, a vmlinux.h of the host
# kernel). Two sets:
#  - tests/selftests/obj/: tools/testing/selftests/bpf/progs/verifier_*.c of
#    Linux 6.12;
#  - tests/selftests/runtests/obj/: every other program file the test_loader
#    runs with the same annotations, i.e. every RUN_TESTS(x) of
#    prog_tests/*.c (x a verifier_* file is in the first set already). A file
#    that does not build here is listed with the reason in
#    tests/selftests/runtests/skipped.txt.
# The DWARF sections are stripped afterwards: the kernel never sees them; BTF
# and BTF.ext (func and line info) stay.
#
# Needs: linux-source-6.12, clang-19, llvm-19 (llvm-strip), bpftool, libelf-dev,
# zlib1g-dev, and /sys/kernel/btf/vmlinux for vmlinux.h.
source "$(dirname "$0")/common.sh"
unpack
build_libbpf
CLANG="${CLANG:-clang-19}"
STRIP="${LLVM_STRIP:-llvm-strip-19}"
INC="$CACHE/include"
mkdir -p "$INC"
if [ ! -s "$INC/vmlinux.h" ]; then
  bpftool btf dump file "${VMLINUX_BTF:-/sys/kernel/btf/vmlinux}" format c > "$INC/vmlinux.h"
fi

# build_one NAME OUTDIR: progs/NAME.c -> OUTDIR/NAME.o; the compiler's
# messages are left in $CACHE/NAME.err.
build_one() {
  local b="$1" out="$2"
  (cd "$SELF" && "$CLANG" -g -O2 --target=bpfel -mcpu=v3 -D__TARGET_ARCH_x86 \
    -Wall -Wno-compare-distinct-pointer-types -std=gnu11 -fno-strict-aliasing \
    -ffile-prefix-map="$KSRC"=. -ffile-prefix-map="$CACHE"=. \
    -I "$INC" -I "$LIBBPF/include" -I "$SELF" -I "$SELF/progs" \
    -I "$KSRC/tools/include/uapi" -I "$KSRC/tools/include" \
    -idirafter /usr/local/include -idirafter /usr/include/x86_64-linux-gnu -idirafter /usr/include \
    -c "progs/$b.c" -o "$CACHE/$b.o") 2> "$CACHE/$b.err" || return 1
  "$STRIP" --strip-debug "$CACHE/$b.o" -o "$out/$b.o"
}

OUT="$ROOT/tests/selftests/obj"
mkdir -p "$OUT"
srcs=("$SELF"/progs/verifier_*.c)
n=0
for src in "${srcs[@]}"; do
  n=$((n + 1))
  b="$(basename "$src" .c)"
  printf '[%d/%d] %s\n' "$n" "${#srcs[@]}" "$b" >&2
  if ! build_one "$b" "$OUT"; then
    cat "$CACHE/$b.err" >&2
    exit 1
  fi
done
echo "built ${#srcs[@]} objects into $OUT" >&2

# The test_loader's other files: RUN_TESTS(x) in prog_tests/*.c.
ROUT="$ROOT/tests/selftests/runtests/obj"
mkdir -p "$ROUT"
mapfile -t rsrcs < <(grep -ho 'RUN_TESTS([a-z0-9_]*)' "$SELF"/prog_tests/*.c |
  sed 's/RUN_TESTS(\(.*\))/\1/' | grep -v '^verifier_' | sort -u)
skipped="$ROOT/tests/selftests/runtests/skipped.txt"
{
  echo "# RUN_TESTS files of Linux 6.12 that scripts/selftests/build.sh could not"
  echo "# build: FILE REASON (the compiler's first error)."
} > "$skipped"
n=0 built=0
for b in "${rsrcs[@]}"; do
  n=$((n + 1))
  printf '[%d/%d] %s\n' "$n" "${#rsrcs[@]}" "$b" >&2
  if [ ! -f "$SELF/progs/$b.c" ]; then
    echo "$b no progs/$b.c in the 6.12 tree" >> "$skipped"
  elif build_one "$b" "$ROUT"; then
    built=$((built + 1))
  else
    rm -f "$ROUT/$b.o"
    reason="$(grep -m1 'error:' "$CACHE/$b.err" | sed "s|$SELF/||; s|^\./||")"
    echo "$b ${reason:-clang failed}" >> "$skipped"
    echo "  skipped: ${reason:-clang failed}" >&2
  fi
done
echo "built $built of ${#rsrcs[@]} RUN_TESTS objects into $ROUT" >&2
