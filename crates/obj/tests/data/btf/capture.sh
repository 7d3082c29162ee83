#!/bin/sh
# Re-captures the bpftool goldens in this directory from the host kernel.
# Needs root, bpffs at /sys/fs/bpf, bpftool, clang-19 and python3. Run from
# this directory. Pins live under /sys/fs/bpf/btft_* and are removed on exit.
set -eu
CFLAGS="-target bpf -g -O2 -c -I/usr/include/x86_64-linux-gnu"
for src in values kinds; do
	clang-19 $CFLAGS $src.c -o $src.o
done
./patch_char.py
for obj in values kinds values_char; do
	bpftool btf dump file $obj.o > $obj.btf.txt
	bpftool -j btf dump file $obj.o > $obj.btf.json
	bpftool -p btf dump file $obj.o > $obj.btf.pretty.json
done

cleanup() { rm -rf /sys/fs/bpf/btft_values /sys/fs/bpf/btft_values_maps \
	/sys/fs/bpf/btft_vc /sys/fs/bpf/btft_vc_maps; }
trap cleanup EXIT
cleanup
maps=/sys/fs/bpf/btft_values_maps
bpftool prog loadall values.o /sys/fs/bpf/btft_values pinmaps $maps
# The BTF as libbpf handed it to the kernel (DATASEC sizes and offsets fixed up).
btf_id=$(bpftool -j map show pinned $maps/values_data | python3 -c 'import json,sys; print(json.load(sys.stdin)["btf_id"])')
bpftool btf dump id $btf_id > values.kernel.btf.txt
bpftool map update pinned $maps/hmap key hex 01 00 61 62 63 00 value hex ed 9a 78 56 34 12 c8 01
bpftool map update pinned $maps/hmap key hex ff ff 01 02 03 04 value hex 00 00 00 00 00 00 00 00
bpftool map update pinned $maps/amap key 1 0 0 0 value hex 41 42 00 43
bpftool map update pinned $maps/pcpu key 0 0 0 0 value hex 05 00 00 00 00 00 00 80
dump() {
	bpftool map dump pinned $1 > map.$2.txt
	bpftool -j map dump pinned $1 > map.$2.json
	bpftool -p map dump pinned $1 > map.$2.pretty.json
}
for m in values_bss values_data values_rodata _data_floats hmap amap pcpu; do
	dump $maps/$m $m
done
# The same .data with 'char' re-encoded as BTF_INT_CHAR.
bpftool prog loadall values_char.o /sys/fs/bpf/btft_vc pinmaps /sys/fs/bpf/btft_vc_maps
dump /sys/fs/bpf/btft_vc_maps/values_c_data char_data
