#!/bin/sh
# Rebuild the objects of Linux 6.18's ISA additions (may_goto, load-acquire,
# store-release) in obj/ from src/. The objects are committed; run this only
# after changing a source. Needs clang-19 and, for acq_rel, clang-22 (LLVM 21
# and later emit load-acquire/store-release for -mcpu=v4).
set -eu
cd "$(dirname "$0")"
HERE=$PWD
INC="-I/usr/include/x86_64-linux-gnu"
MAP="-ffile-prefix-map=$HERE=."
mkdir -p obj
${CLANG:-clang-19} -target bpf -g -O2 -mcpu=v4 $INC $MAP -c src/may_goto.bpf.c -o obj/may_goto.o
${CLANG22:-clang-22} -target bpf -g -O2 -mcpu=v4 $INC $MAP -c src/acq_rel.bpf.c -o obj/acq_rel.o
if grep -l -a "$HERE" obj/*.o; then
    echo "error: objects above contain $HERE" >&2
    exit 1
fi
