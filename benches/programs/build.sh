#!/bin/sh
# Rebuild the committed BPF objects from the C sources in this directory.
#
# Usage: benches/programs/build.sh   (from anywhere; needs clang-19)
#
# Every program is built twice from the same source with the same optimiser:
# NAME.v2.bpf.o  -mcpu=v2: no BPF_JMP32 class, no v4 instructions (what DPDK
#                22.11's librte_bpf and older engines take);
# NAME.v4.bpf.o  -mcpu=v4: JMP32, sign-extending loads and moves, bswap,
#                signed division (and gotox where a clang emits it).
# The suite runs both, one table row each (NAME/v2, NAME/v4).
#
# Reproducible: the script works from this directory with relative paths and
# maps $PWD to "." so no machine path ends up in DWARF or BTF.
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
MAP="-ffile-prefix-map=$PWD=."

for src in prime log2_int memcpy strcmp switch switch64 straight collatz const64 \
    divconst calls spill xdp_count parse printk hashmap lru percpu lpm; do
    for cpu in v2 v4; do
        out=$src.$cpu.bpf.o
        echo "  CLANG  $out"
        $CLANG -target bpf -O2 -g -mcpu=$cpu $MAP -c "$src.c" -o "$out"
    done
done
