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
#   native:  clang-19 at build time (BPFVM_BENCH_CLANG=... for another clang)
#   uBPF, llvmbpf: libraries built outside the project (benches/README.md);
#            BPFVM_BENCH_PEERS=OUT links them (default: ../peers/build beside the
#            repository, if it exists); without them their columns say why
# Set BENCH_DPDK=0 to build without DPDK even when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

features=()
if [ "${BENCH_DPDK:-1}" != 0 ] && pkg-config --exists libdpdk 2>/dev/null; then
    features=(--features dpdk)
else
    echo "bench.sh: building without DPDK (apt-get install -y libdpdk-dev to add its engines)" >&2
fi

if [ -z "${BPFVM_BENCH_PEERS:-}" ] && [ -d ../peers/build ]; then
    BPFVM_BENCH_PEERS=$(cd ../peers/build && pwd)
fi
peers_found=()
peers_absent=()
if [ -n "${BPFVM_BENCH_PEERS:-}" ] && [ -f "$BPFVM_BENCH_PEERS/ubpf/lib/libubpf.a" ]; then
    peers_found+=(uBPF)
else
    peers_absent+=(uBPF)
fi
if [ -n "${BPFVM_BENCH_PEERS:-}" ] && [ -f "$BPFVM_BENCH_PEERS/llvmbpf/libbench_llvmbpf.a" ]; then
    peers_found+=(llvmbpf)
else
    peers_absent+=(llvmbpf)
fi
if [ ${#peers_found[@]} -gt 0 ]; then
    echo "bench.sh: peers from BPFVM_BENCH_PEERS=$BPFVM_BENCH_PEERS: ${peers_found[*]}" >&2
    export BPFVM_BENCH_PEERS
fi
if [ ${#peers_absent[@]} -gt 0 ]; then
    echo "bench.sh: ABSENT peers: ${peers_absent[*]} (BPFVM_BENCH_PEERS names their libraries, built outside the project: benches/README.md)" >&2
fi

exec cargo run --release -p bpfvm-bench "${features[@]}" -- "$@"
