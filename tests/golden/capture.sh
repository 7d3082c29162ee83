#!/bin/sh
# Regenerate every golden oracle file in tests/golden/ from the real tools.
#
# Usage (as root, on a kernel that accepts BPF, bpffs at /sys/fs/bpf):
#     tests/golden/capture.sh            # everything
#     tests/golden/capture.sh static     # only objdump/ and btf/ (no root needed)
#
# Needs llvm-objdump-19, bpftool, python3, taskset. Every command runs with
# cwd tests/fixtures and names objects obj/X.o, so that is the file name the
# tools print (llvm-objdump's header reads "obj/X.o:\tfile format elf64-bpf").
#
#   objdump/X.d.txt   llvm-objdump-19 -d obj/X.o
#   objdump/X.S.txt   llvm-objdump-19 -S obj/X.o   (not for gotol: 1.4 MB of -d already)
#   btf/X.txt         bpftool btf dump file obj/X.o        (objects with .BTF)
#   btf/X.json        bpftool -j btf dump file obj/X.o
#   packets/          make_packets.py (raw Ethernet frames + index.json)
#   kernel/           capture_kernel.py: loads, verdicts, xlated, map dumps,
#                     xdp_runs.json, skb_runs.json (see its docstring)
#
# Pins live under /sys/fs/bpf/fx_* and are removed again. Outputs that depend
# on the host (ids, map ids, loaded_at, helper offsets in xlated, durations)
# are recorded as they are: tests must ignore or normalise them.
set -eu
GOLDEN=$(cd "$(dirname "$0")" && pwd)
cd "$GOLDEN/../fixtures"

mkdir -p "$GOLDEN/objdump" "$GOLDEN/btf"
rm -f "$GOLDEN"/objdump/*.txt "$GOLDEN"/btf/*.txt "$GOLDEN"/btf/*.json

for o in obj/*.o; do
    x=$(basename "$o" .o)
    llvm-objdump-19 -d "$o" > "$GOLDEN/objdump/$x.d.txt"
    if [ "$x" != gotol ]; then
        # gcc objects: llvm cannot apply binutils' DWARF relocation type 11
        # (R_BPF_DATA_32) and warns once per relocation on stderr; dropped.
        llvm-objdump-19 -S "$o" > "$GOLDEN/objdump/$x.S.txt" 2>/dev/null
    fi
    if llvm-objdump-19 -h "$o" | grep -q ' \.BTF '; then
        bpftool btf dump file "$o" > "$GOLDEN/btf/$x.txt"
        bpftool -j btf dump file "$o" > "$GOLDEN/btf/$x.json"
    fi
done
echo "objdump/ and btf/: $(ls obj/*.o | wc -l) objects"

python3 "$GOLDEN/make_packets.py" > /dev/null
echo "packets/: $(ls "$GOLDEN"/packets/*.bin | wc -l) frames"

[ "${1:-}" = static ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "capture.sh: kernel/ needs root; rerun as root (or pass 'static')" >&2
    exit 1
fi
rm -rf "$GOLDEN/kernel"
mkdir -p "$GOLDEN/kernel"
python3 "$GOLDEN/capture_kernel.py"
# nothing of ours may stay pinned
if ls -d /sys/fs/bpf/fx_* >/dev/null 2>&1; then
    echo "capture.sh: leftover pins: $(ls -d /sys/fs/bpf/fx_*)" >&2
    exit 1
fi
