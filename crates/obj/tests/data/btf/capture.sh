#!/bin/sh
# Re-captures the bpftool goldens in this directory from the host kernel.
# Needs root, bpffs at /sys/fs/bpf, bpftool and clang-19. Run from this directory.
set -eu
CFLAGS="-target bpf -g -O2 -c -I/usr/include/x86_64-linux-gnu"
for src in values kinds; do
	clang-19 $CFLAGS $src.c -o $src.o
	bpftool btf dump file $src.o > $src.btf.txt
	bpftool -j btf dump file $src.o > $src.btf.json
	bpftool -p btf dump file $src.o > $src.btf.pretty.json
done

pins=/sys/fs/bpf/btft_values
maps=/sys/fs/bpf/btft_values_maps
rm -rf $pins $maps
bpftool prog loadall values.o $pins pinmaps $maps
trap 'rm -rf $pins $maps' EXIT
bpftool map update pinned $maps/hmap key hex 01 00 61 62 63 00 value hex ed 9a 78 56 34 12 c8 01
bpftool map update pinned $maps/hmap key hex ff ff 01 02 03 04 value hex 00 00 00 00 00 00 00 00
bpftool map update pinned $maps/amap key 1 0 0 0 value hex 41 42 00 43
bpftool map update pinned $maps/pcpu key 0 0 0 0 value hex 05 00 00 00 00 00 00 80
for m in values_bss values_data values_rodata _data_floats hmap amap pcpu; do
	bpftool map dump pinned $maps/$m > map.$m.txt
	bpftool -j map dump pinned $maps/$m > map.$m.json
	bpftool -p map dump pinned $maps/$m > map.$m.pretty.json
done
