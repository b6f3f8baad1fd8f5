#!/bin/sh
# Cross-build libbitnet for aarch64 and run the kernel suite under
# qemu-aarch64 -cpu max (NEON + dotprod), then once more on a CPU model
# without dotprod so that the detection fallback is exercised too.
#
#   .ci/kernels-arm.sh [BUILD_DIR]      (default: /tmp/build-aarch64)
#
# Needs gcc-aarch64-linux-gnu, qemu-user and libcmocka-dev:arm64 (the test
# tree is only configured when cmocka is found); installs them with apt-get
# when run as root and they are missing.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-/tmp/build-aarch64}
sysroot=/usr/aarch64-linux-gnu

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else echo "kernels-arm: not root, cannot run: $*" >&2; return 1; fi
}

if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc-aarch64-linux-gnu qemu-user
fi
if [ ! -e /usr/lib/aarch64-linux-gnu/pkgconfig/cmocka.pc ]; then
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        as_root dpkg --add-architecture arm64
    fi
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q libcmocka-dev:arm64
fi

rm -rf "$build"
meson setup "$build" "$src" --cross-file "$src/.ci/aarch64-linux-gnu.txt" \
    -Dtests=enabled -Dexamples=false
ninja -C "$build"
# the cross file's exe_wrapper runs every test under qemu-aarch64 -cpu max
meson test -C "$build" --suite kernels --print-errorlogs

# Same program on a core without dotprod (NEON level only): CPU detection
# must fall back, and the NEON kernels must still match the reference.
qemu-aarch64 -cpu cortex-a57 -L "$sysroot" "$build/tests/kernels/test_kernels" | tee "$build/kernels-a57.log"
grep -q 'level dotprod  skipped' "$build/kernels-a57.log"
qemu-aarch64 -cpu cortex-a57 -L "$sysroot" "$build/tests/kernels/test_layer" | tail -3
