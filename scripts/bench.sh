#!/usr/bin/env bash
# Run the benchmark suite: every program in benches/programs on every engine
# (bpfvm, rbpf, DPDK's librte_bpf, the host kernel, native), printing a table
# and writing target/bench/report.json and target/bench/compile.json.
#
# Usage: bash scripts/bench.sh [--quick] [--filter NAME] [--json PATH]
#
# Optional engines and what they need:
#   DPDK:    apt-get install -y libdpdk-dev   (the dpdk feature is turned on when
#            pkg-config finds libdpdk; without it the DPDK columns say why)
#   kernel:  root (BPF_PROG_LOAD of XDP programs), else the column says why
#   native:  clang-19 at build time (BENCH_CLANG=... for another clang)
# Set BENCH_DPDK=0 to build without DPDK even when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

features=()
if [ "${BENCH_DPDK:-1}" != 0 ] && pkg-config --exists libdpdk 2>/dev/null; then
    features=(--features dpdk)
else
    echo "bench.sh: building without DPDK (apt-get install -y libdpdk-dev to add its engines)" >&2
fi

exec cargo run --release -p bpfvm-bench "${features[@]}" -- "$@"
