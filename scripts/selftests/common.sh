# Shared by build.sh and capture.sh: where the Linux 6.12 sources come from
# (Debian's linux-source-6.12, never copied into the project: they are GPL-2.0)
# and where they are unpacked (a cache outside the project).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARBALL="${LINUX_SOURCE_TARBALL:-/usr/src/linux-source-6.12.tar.xz}"
CACHE="${BPFVM_SELFTESTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bpfvm/selftests-6.12}"
KSRC="$CACHE/linux-source-6.12"
SELF="$KSRC/tools/testing/selftests/bpf"
LIBBPF="$CACHE/libbpf"

# Unpacks the parts of the kernel tree the selftests and libbpf need.
unpack() {
  if [ -f "$CACHE/.unpacked" ]; then return; fi
  if [ ! -f "$TARBALL" ]; then
    echo "error: $TARBALL not found (apt-get install linux-source-6.12, or set LINUX_SOURCE_TARBALL)" >&2
    return 1
  fi
  mkdir -p "$CACHE"
  echo "unpacking the selftests and libbpf from $TARBALL" >&2
  tar -C "$CACHE" -xJf "$TARBALL" --wildcards \
    'linux-source-6.12/tools/testing/selftests/bpf/*' \
    'linux-source-6.12/tools/lib/*' 'linux-source-6.12/tools/include/*' \
    'linux-source-6.12/tools/build/*' 'linux-source-6.12/tools/scripts/*' \
    'linux-source-6.12/tools/arch/*' 'linux-source-6.12/scripts/*' \
    'linux-source-6.12/include/uapi/*' 'linux-source-6.12/include/linux/filter.h'
  touch "$CACHE/.unpacked"
}

# Builds the 6.12 libbpf (static) and installs its headers, bpf_helper_defs.h
# included, into $LIBBPF.
build_libbpf() {
  if [ -f "$LIBBPF/lib64/libbpf.a" ]; then return; fi
  echo "building libbpf 1.5 from the 6.12 tree" >&2
  mkdir -p "$CACHE/libbpf-build"
  make -s -C "$KSRC/tools/lib/bpf" -j"$(nproc)" BUILD_STATIC_ONLY=1 \
    OUTPUT="$CACHE/libbpf-build/" DESTDIR="$LIBBPF" prefix= install_headers install >&2
}
