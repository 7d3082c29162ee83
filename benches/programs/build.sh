#!/bin/sh
# Rebuild the committed BPF objects from the C sources in this directory.
#
# Usage: benches/programs/build.sh   (from anywhere; needs clang-19)
#
# NAME.bpf.o    -mcpu=v3: what every engine runs, except DPDK.
# NAME.v2.bpf.o -mcpu=v2: for DPDK 22.11's librte_bpf, which has no BPF_JMP32
#               class (v3 code uses it); same source, same optimiser.
#
# Reproducible: the script works from this directory with relative paths and
# maps $PWD to "." so no machine path ends up in DWARF or BTF.
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
MAP="-ffile-prefix-map=$PWD=."

for src in prime log2_int memcpy strcmp switch xdp_count hashmap; do
    for cpu in v3 v2; do
        if [ $cpu = v3 ]; then out=$src.bpf.o; else out=$src.v2.bpf.o; fi
        echo "  CLANG  $out"
        $CLANG -target bpf -O2 -g -mcpu=$cpu $MAP -c "$src.c" -o "$out"
    done
done
