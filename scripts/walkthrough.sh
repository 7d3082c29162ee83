#!/usr/bin/env bash
# The chapter's walkthrough with bpfvm instead of bpftool: load hello.o, list and
# show it, dump its translated code, attach it to a network interface's XDP hook,
# send it three frames, read the trace pipe and its global variables (by their BTF
# names), detach, and unload it with `rm`.
#
# As root with `ip netns` available, it runs on a veth pair in two fresh network
# namespaces (removed at the end). Otherwise it feeds the same program three frames
# with `prog run` and a packet file. The state directory is temporary; the daemon
# it starts is stopped on exit.
#
#   bash scripts/walkthrough.sh            (BPFVM=path/to/bpfvm to use a given binary)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

BPFVM=${BPFVM:-}
if [ -z "$BPFVM" ]; then
    cargo build --release -q -p bpfvm-cli
    BPFVM=${CARGO_TARGET_DIR:-$ROOT/target}/release/bpfvm
fi
export BPFVM_STATE_DIR
BPFVM_STATE_DIR=$(mktemp -d /tmp/bpfvm-walkthrough.XXXXXX)
NS_A=bpfvm-walk-a-$$
NS_B=bpfvm-walk-b-$$
LIVE=0

cleanup() {
    "$BPFVM" daemon stop >/dev/null 2>&1 || true
    if [ "$LIVE" = 1 ]; then
        ip netns del "$NS_A" 2>/dev/null || true
        ip netns del "$NS_B" 2>/dev/null || true
    fi
    rm -rf "$BPFVM_STATE_DIR"
}
trap cleanup EXIT

if [ "$(id -u)" = 0 ] && ip netns add "$NS_A" 2>/dev/null; then
    if ip netns add "$NS_B" &&
        for n in "$NS_A" "$NS_B"; do
            ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || true
        done &&
        ip link add veth0 netns "$NS_A" type veth peer name veth1 netns "$NS_B" &&
        ip -n "$NS_A" link set veth0 up && ip -n "$NS_B" link set veth1 up &&
        ip -n "$NS_A" addr add 10.99.0.1/24 dev veth0 && ip -n "$NS_B" addr add 10.99.0.2/24 dev veth1; then
        LIVE=1
    else
        ip netns del "$NS_A" 2>/dev/null || true
        ip netns del "$NS_B" 2>/dev/null || true
    fi
fi

# Every bpfvm command runs inside the namespace (the daemon the first one starts
# lives there, next to veth0) and from tests/fixtures, where the objects are.
bpfvm() {
    echo "\$ bpfvm $*" >&2
    if [ "$LIVE" = 1 ]; then
        (cd "$ROOT/tests/fixtures" && ip netns exec "$NS_A" "$BPFVM" "$@")
    else
        (cd "$ROOT/tests/fixtures" && "$BPFVM" "$@")
    fi
}
step() { printf '\n== %s\n' "$*" >&2; }

step "load the program and pin it"
bpfvm prog load obj/hello.o /sys/fs/bpf/hello
ls -l "$BPFVM_STATE_DIR/fs/sys/fs/bpf/"
step "list and show it"
bpfvm prog list
ID=$(bpfvm -j prog show name hello | sed 's/^{"id":\([0-9]*\),.*/\1/')
bpfvm prog show id "$ID" --pretty
bpfvm prog show name hello
bpfvm prog show tag eb25a4958caccc29
bpfvm prog show pinned /sys/fs/bpf/hello
step "the translated instructions"
bpfvm prog dump xlated name hello
bpfvm prog dump jited name hello || true
step "its maps"
bpfvm map list

if [ "$LIVE" = 1 ]; then
    step "attach to veth0 and send three frames from the peer (veth1)"
    bpfvm net attach xdp id "$ID" dev veth0
    bpfvm net list
    # bash's /dev/udp: no ping or packet tools needed (the first datagram also
    # sends an ARP request, so veth0 sees at least three frames).
    echo "\$ ip netns exec $NS_B bash -c 'echo frame > /dev/udp/10.99.0.1/9' (3 times)" >&2
    for _ in 1 2 3; do
        ip netns exec "$NS_B" bash -c 'echo frame > /dev/udp/10.99.0.1/9' || true
        sleep 0.2
    done
else
    step "no network namespace here (needs root and ip netns): three frames through prog run"
    for _ in 1 2 3; do
        bpfvm prog run name hello data_in ../golden/packets/ipv4_udp.bin
    done
fi

step "the trace pipe"
bpfvm prog tracelog --max-lines 3 --timeout 5
step "the global variables, by their BTF names"
bpfvm map dump name hello.bss
bpfvm map dump name hello.rodata

if [ "$LIVE" = 1 ]; then
    step "detach"
    bpfvm net detach xdp dev veth0
    bpfvm net list
fi
step "still loaded"
bpfvm prog show id "$ID"
step "unload it by removing its pin"
echo "\$ rm $BPFVM_STATE_DIR/fs/sys/fs/bpf/hello" >&2
rm "$BPFVM_STATE_DIR/fs/sys/fs/bpf/hello"
bpfvm prog show id "$ID" || echo "(gone, as expected)"
