#!/usr/bin/env bash
# Records the host kernel's answers on the corpus of real BPF objects into
# tests/corpus/ (see tests/corpus/README.md): regenerates the packet set, then
# runs capture.py (libbpf through ctypes; verdicts, tags, test runs, maps).
#
# usage: sudo scripts/corpus/capture.sh [OBJ...]
#   BPFVM_CORPUS_DIR  the built corpus (MANIFEST.tsv, obj/); default ../corpus
#   CORPUS_LIBBPF     libbpf.so to load with; default the corpus's own build
#                     (../corpus-src/libbpf-build/libbpf.so.1), else the system's
# Nothing is pinned; every program and map is released when its load ends.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "capture.sh: needs root (loads programs into the host kernel)" >&2; exit 1; }
corpus=${BPFVM_CORPUS_DIR:-../corpus}
[ -f "$corpus/MANIFEST.tsv" ] || { echo "capture.sh: no corpus at $corpus (MANIFEST.tsv missing)" >&2; exit 1; }
python3 scripts/corpus/make_packets.py
if [ $# = 0 ]; then
  rm -rf tests/corpus/kernel
  # provenance of the objects the answers belong to
  cp "$corpus/MANIFEST.tsv" tests/corpus/MANIFEST.tsv
fi
python3 scripts/corpus/capture.py --corpus "$corpus" "$@"
