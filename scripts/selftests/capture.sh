#!/usr/bin/env bash
# Asks the host kernel for its answer on every case of tests/selftests/obj and
# tests/selftests/runtests/obj and writes them as JSON lines: to the committed
# goldens (tests/selftests/kernel.jsonl and tests/selftests/runtests/
# kernel.jsonl), or both sets to the one file given as $1 (a live run, e.g. in
# CI; the test tells the sets apart by the objects' directories).
#
# Needs root, a kernel that takes BPF programs, linux-source-6.12 (the 6.12
# libbpf is built from it), libelf-dev and zlib1g-dev. Unprivileged cases need
# kernel.unprivileged_bpf_disabled=0; it is set for the run and restored.
source "$(dirname "$0")/common.sh"
out="${1:-$ROOT/tests/selftests/kernel.jsonl}"
rout="${1:-$ROOT/tests/selftests/runtests/kernel.jsonl}"
if [ "$(id -u)" != 0 ]; then
  echo "capture: needs root (the host kernel is the oracle)" >&2
  exit 2
fi
unpack
build_libbpf
tool="$CACHE/capture"
cc -O1 -Wall -o "$tool" "$ROOT/scripts/selftests/capture.c" -I "$LIBBPF/include" \
  "$LIBBPF/lib64/libbpf.a" -lelf -lz
knob=/proc/sys/kernel/unprivileged_bpf_disabled
old="$(cat "$knob" 2>/dev/null || echo 1)"
if [ "$old" = 2 ]; then
  trap 'echo 2 > "$knob" || true' EXIT
  echo 0 > "$knob" || true
fi
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
# prog_tests/verifier.c runs its files without CAP_SYS_ADMIN; RUN_TESTS keeps
# every capability.
CAPTURE_QUIET=1 "$tool" "$ROOT"/tests/selftests/obj/verifier_*.o > "$out.tmp"
if [ "$rout" = "$out" ]; then
  CAPTURE_QUIET=1 CAPTURE_KEEP_SYSADMIN=1 "$tool" "$ROOT"/tests/selftests/runtests/obj/*.o >> "$out.tmp"
  mv "$out.tmp" "$out"
  echo "capture: $(wc -l < "$out") cases from $(uname -r) into $out" >&2
else
  CAPTURE_QUIET=1 CAPTURE_KEEP_SYSADMIN=1 "$tool" "$ROOT"/tests/selftests/runtests/obj/*.o > "$rout.tmp"
  mv "$out.tmp" "$out"
  mv "$rout.tmp" "$rout"
  echo "capture: $(wc -l < "$out") + $(wc -l < "$rout") cases from $(uname -r) into $out and $rout" >&2
fi
# The third suite, test_verifier's raw-instruction table: its facts and the
# host's answers (tests/selftests/test_verifier/), for the committed goldens.
if [ -z "${1:-}" ]; then
  "$ROOT/scripts/selftests/test_verifier.sh"
fi
