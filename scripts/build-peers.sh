#!/usr/bin/env bash
# Build the optional benchmark peers uBPF (iovisor/ubpf) and llvmbpf
# (eunomia-bpf/llvmbpf, the LLVM JIT of bpftime) outside the project's tree, for
# scripts/bench.sh. Nothing here is needed by the tests.
#
# Usage: bash scripts/build-peers.sh SRC OUT
#   SRC  a directory holding the checkouts SRC/ubpf and SRC/llvmbpf (their own
#        repositories; either may be missing, and is then skipped)
#   OUT  where the libraries go; then run
#        BENCH_PEERS=OUT bash scripts/bench.sh
#
# Needs: cmake and a C compiler (uBPF); llvm-15-dev, libspdlog-dev (which brings
# libfmt-dev) and clang++ (llvmbpf):
#   apt-get install -y cmake llvm-15-dev libspdlog-dev
#
# Results:
#   OUT/ubpf/lib/libubpf.a          uBPF's VM (interpreter and x86-64 JIT)
#   OUT/llvmbpf/libbench_llvmbpf.a  llvmbpf's VM and a small C shim over its C++
#                                   API (bench_llvmbpf_*), linked against
#                                   Debian's shared libLLVM-15
set -euo pipefail
if [ $# -ne 2 ]; then
    sed -n '2,22p' "$0" >&2
    exit 2
fi
src=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

if [ -f "$src/ubpf/vm/ubpf_vm.c" ]; then
    echo "build-peers: uBPF from $src/ubpf ($(git -C "$src/ubpf" rev-parse --short HEAD 2>/dev/null || echo '?'))" >&2
    cmake -S "$src/ubpf" -B "$out/ubpf" -DCMAKE_BUILD_TYPE=Release \
        -DUBPF_SKIP_EXTERNAL=ON -DUBPF_ENABLE_TESTS=OFF >"$out/ubpf.cmake.log"
    cmake --build "$out/ubpf" --target ubpf -j "$jobs" >"$out/ubpf.build.log"
    echo "build-peers: $out/ubpf/lib/libubpf.a" >&2
else
    echo "build-peers: no $src/ubpf checkout: uBPF skipped" >&2
fi

if [ -f "$src/llvmbpf/src/compiler.cpp" ]; then
    echo "build-peers: llvmbpf from $src/llvmbpf ($(git -C "$src/llvmbpf" rev-parse --short HEAD 2>/dev/null || echo '?'))" >&2
    llvm_config=${LLVM_CONFIG:-llvm-config-15}
    cxx=${CXX:-$(command -v clang++-19 || command -v clang++ || echo c++)}
    dir="$out/llvmbpf"
    mkdir -p "$dir"
    # The C shim: llvmbpf's API is C++ (bpftime::llvmbpf_vm).
    cat >"$dir/shim.cpp" <<'EOF'
#include "llvmbpf.hpp"
#include <cstring>
using bpftime::llvmbpf_vm;
static void copy_err(llvmbpf_vm *v, char *err, size_t n)
{
	if (n == 0)
		return;
	std::string m = v->get_error_message();
	strncpy(err, m.c_str(), n - 1);
	err[n - 1] = 0;
}
extern "C" {
void *bench_llvmbpf_new(void) { return new llvmbpf_vm(); }
void bench_llvmbpf_free(void *vm) { delete static_cast<llvmbpf_vm *>(vm); }
int bench_llvmbpf_register(void *vm, size_t idx, const char *name, void *fn)
{
	return static_cast<llvmbpf_vm *>(vm)->register_external_function(idx, name, fn);
}
int bench_llvmbpf_load(void *vm, const void *code, size_t len, char *err, size_t n)
{
	auto v = static_cast<llvmbpf_vm *>(vm);
	int rc = v->load_code(code, len);
	if (rc)
		copy_err(v, err, n);
	return rc;
}
void *bench_llvmbpf_compile(void *vm, char *err, size_t n)
{
	auto v = static_cast<llvmbpf_vm *>(vm);
	auto f = v->compile();
	if (!f) {
		copy_err(v, err, n);
		return nullptr;
	}
	return (void *)*f;
}
}
EOF
    # shellcheck disable=SC2207
    flags=($("$llvm_config" --cxxflags | sed 's/-fno-exceptions//') -std=c++20 -O2 -fPIC
        -I"$src/llvmbpf/include" -I"$src/llvmbpf/src")
    objs=()
    for f in "$src"/llvmbpf/src/{llvm_jit_context,compiler,compiler_utils,vm}.cpp "$dir/shim.cpp"; do
        o="$dir/$(basename "$f" .cpp).o"
        "$cxx" -c "${flags[@]}" "$f" -o "$o"
        objs+=("$o")
    done
    rm -f "$dir/libbench_llvmbpf.a"
    ar rcs "$dir/libbench_llvmbpf.a" "${objs[@]}"
    "$llvm_config" --libdir >"$dir/llvm-libdir"
    echo "build-peers: $dir/libbench_llvmbpf.a (LLVM $("$llvm_config" --version))" >&2
else
    echo "build-peers: no $src/llvmbpf checkout: llvmbpf skipped" >&2
fi
