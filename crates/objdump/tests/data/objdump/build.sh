#!/bin/sh
# Rebuild the objdump test objects here from their sources (clang-19,
# llvm-mc-19, llvm-objcopy-19), then their goldens with
#   BPFVM_BLESS=1 cargo test -p bpfvm-obj --test objdump_golden
# The objects are committed; tests never need a compiler.
set -eu
cd "$(dirname "$0")"
MAP="-ffile-prefix-map=$PWD=."
INC="-I/usr/include/x86_64-linux-gnu"
clang-19 -target bpf -g -O2 -mcpu=v3 $INC $MAP -c atomics.bpf.c -o atomics.o
# The same without DWARF: llvm-objdump -S falls back to .BTF.ext line info.
llvm-objcopy-19 --strip-debug atomics.o atomics.btfonly.o
clang-19 -target bpf -g -O2 -mcpu=v3 $INC $MAP -c multi.bpf.c -o multi.o
# Big-endian (bpfeb): slots, DWARF and relocations in the other byte order.
clang-19 -target bpfeb -g -O2 -mcpu=v3 $INC $MAP -c multi.bpf.c -o multi.be.o
clang-19 -target bpf -gdwarf-4 -O2 -mcpu=v3 $INC $MAP -c multi.bpf.c -o multi.dwarf4.o
# A source that is gone after the build: -S warns "failed to find source".
cp multi.bpf.c gone.bpf.c
clang-19 -target bpf -g -O1 $INC $MAP -c gone.bpf.c -o gone.o
rm gone.bpf.c
# DWARF line info for the assembly itself (-g): -S shows the .s lines.
llvm-mc-19 -triple bpfel -filetype=obj -g quirks.s -o quirks.o
if strings -a *.o | grep -q "$PWD"; then echo "error: machine path in an object" >&2; exit 1; fi
echo ok
