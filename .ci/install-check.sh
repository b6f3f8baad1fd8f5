#!/usr/bin/env bash
# Install libbitnet into a temporary prefix and use it the way a
# distribution or an application would: pkg-config, the soname, the header,
# and only bitnet_* symbols exported.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=$(mktemp -d /tmp/bitnet-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
prefix=/usr/local
meson install -C build --destdir "$dest" --quiet
libdir=$(find "$dest" -name 'libbitnet.so.*' -type f -printf '%h\n' | head -1)
pcdir=$(find "$dest" -name bitnet.pc -printf '%h\n' | head -1)
abi=$(sed -n 's/^#define BITNET_ABI_VERSION \([0-9]*\)$/\1/p' include/bitnet.h)
test -e "$libdir/libbitnet.so.$abi" || { echo "missing libbitnet.so.$abi"; exit 1; }
test -f "$dest$prefix/include/bitnet.h" || { echo "missing installed bitnet.h"; exit 1; }
soname=$(readelf -d "$libdir/libbitnet.so.$abi" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "libbitnet.so.$abi" ] || { echo "soname is '$soname'"; exit 1; }
bad=$(nm -D --defined-only "$libdir/libbitnet.so.$abi" | awk '{print $NF}' | grep -v '^bitnet_' | grep -v '^BITNET_[0-9.]*$' || true)
[ -z "$bad" ] || { echo "non-API symbols exported: $bad"; exit 1; }

# pkg-config against the staged prefix
export PKG_CONFIG_PATH="$pcdir"
export PKG_CONFIG_SYSROOT_DIR="$dest"
cat > "$dest/hello.c" <<'C'
#include <stdio.h>
#include <bitnet.h>
int main(void)
{
    if (bitnet_version() >> 16 != BITNET_VERSION_MAJOR)
        return 1;
    printf("libbitnet %s\n", bitnet_version_string());
    return 0;
}
C
cc -o "$dest/hello" "$dest/hello.c" $(pkg-config --cflags --libs bitnet)
out=$(LD_LIBRARY_PATH="$libdir" "$dest/hello")
echo "$out"
case "$out" in "libbitnet "*) ;; *) echo "unexpected output"; exit 1;; esac
echo "installed library, header and bitnet.pc work (soname $soname)"

# language bindings and the ABI baseline, when present
for s in .ci/bindings.sh .ci/abi-check.sh; do
    if [ -f "$s" ]; then
        DESTDIR_ROOT="$dest" LIBDIR="$libdir" PKG_CONFIG_PATH="$pcdir" \
        PKG_CONFIG_SYSROOT_DIR="$dest" bash "$s"
    fi
done
