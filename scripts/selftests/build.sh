#!/usr/bin/env bash
# Builds the kernel's verifier selftests (tools/testing/selftests/bpf/progs/
# verifier_*.c of Linux 6.12) as the selftests Makefile builds them (clang-19,
# -O2 -g -mcpu=v3, the 6.12 libbpf headers, a vmlinux.h of the host kernel)
# into tests/selftests/obj/. The DWARF sections are stripped afterwards: the
# kernel never sees them; BTF and BTF.ext (func and line info) stay.
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
OUT="$ROOT/tests/selftests/obj"
mkdir -p "$OUT"
srcs=("$SELF"/progs/verifier_*.c)
n=0
for src in "${srcs[@]}"; do
  n=$((n + 1))
  b="$(basename "$src" .c)"
  printf '[%d/%d] %s\n' "$n" "${#srcs[@]}" "$b" >&2
  (cd "$SELF" && "$CLANG" -g -O2 --target=bpfel -mcpu=v3 -D__TARGET_ARCH_x86 \
    -Wall -Wno-compare-distinct-pointer-types -std=gnu11 -fno-strict-aliasing \
    -ffile-prefix-map="$KSRC"=. -ffile-prefix-map="$CACHE"=. \
    -I "$INC" -I "$LIBBPF/include" -I "$SELF" -I "$SELF/progs" \
    -I "$KSRC/tools/include/uapi" -I "$KSRC/tools/include" \
    -idirafter /usr/local/include -idirafter /usr/include/x86_64-linux-gnu -idirafter /usr/include \
    -c "progs/$b.c" -o "$CACHE/$b.o")
  "$STRIP" --strip-debug "$CACHE/$b.o" -o "$OUT/$b.o"
done
echo "built ${#srcs[@]} objects into $OUT" >&2
