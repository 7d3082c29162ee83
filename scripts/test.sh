#!/usr/bin/env bash
# The test command (README.md): every crate's tests (the workspace's default members;
# the benchmark crate has its own smoke test, run by scripts/bench.sh), then the
# conformance suite through the command line. The last line is its summary.
set -euo pipefail
cd "$(dirname "$0")/.."
export BPF_CONFORMANCE_DIR="${BPF_CONFORMANCE_DIR:-$PWD/../shared/conformance}"
cargo build --release -p bpfvm-cli
cargo test --release 2>&1
# The kernel's verifier selftests and test_verifier's table, per file (written by
# crates/bpfvm/tests/selftests.rs and test_verifier.rs).
for report in selftests-report.txt test-verifier-report.txt; do
  report="${CARGO_TARGET_DIR:-target}/tmp/$report"
  if [ -f "$report" ]; then cat "$report"; fi
done
"${CARGO_TARGET_DIR:-target}/release/bpfvm" conformance "$BPF_CONFORMANCE_DIR/tests"
