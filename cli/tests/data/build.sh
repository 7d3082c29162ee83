#!/bin/sh
# Rebuilds btf_c_types.o (committed; tests never need a compiler).
set -eu
cd "$(dirname "$0")"
${CLANG:-clang-19} -target bpf -g -O2 -ffile-prefix-map="$PWD"=. -c btf_c_types.bpf.c -o btf_c_types.o
