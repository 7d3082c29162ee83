#!/usr/bin/env bash
# Daemon benchmark (not a test): idle CPU with a 256 MiB map and with 10,000 pins,
# `prog list` latency during another client's long run, map update throughput
# with durability on beside durability off. Progress on stderr, a summary on
# stdout, JSON in target/bench/daemon.json.
#
# Usage: bash scripts/bench-daemon.sh [--quick] [--json PATH]
#        BPFVM_BENCH_DIR=/some/dir bash scripts/bench-daemon.sh   (where state dirs go; /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p bpfvm-cli --bin bpfvm --example bench_daemon >&2
exec target/release/examples/bench_daemon "$@"
