#!/bin/sh
# Rebuild the objects in this directory from their sources (clang-19).
# The objects are committed; run this only after changing a source.
set -eu
cd "$(dirname "$0")"
for f in calls sections extern_kconfig kfunc static_prog core; do
    clang-19 -target bpf -g -O2 -mcpu=v3 -I/usr/include/x86_64-linux-gnu \
        -ffile-prefix-map="$PWD"=. -c "$f.bpf.c" -o "$f.o"
done
