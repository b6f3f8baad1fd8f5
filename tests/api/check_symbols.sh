#!/bin/sh
# The dynamic symbols libbitnet exports must be exactly those named in the
# version script (plus the version node itself).
set -eu
lib="$1"
map="$2"
nm_tool="${NM:-nm}"
exported=$("$nm_tool" -D --defined-only "$lib" | awk '{print $NF}' | sed 's/@.*//' | grep -v '^BITNET_[0-9.]*$' | sort -u)
listed=$(sed -n 's/^[[:space:]]*\(bitnet_[A-Za-z0-9_]*\);.*/\1/p' "$map" | sort -u)
if [ "$exported" != "$listed" ]; then
    echo "exported symbols differ from $map:"
    printf '%s\n' "$exported" > /tmp/bitnet-exported.$$
    printf '%s\n' "$listed" > /tmp/bitnet-listed.$$
    diff /tmp/bitnet-listed.$$ /tmp/bitnet-exported.$$ || true
    rm -f /tmp/bitnet-exported.$$ /tmp/bitnet-listed.$$
    echo "0 passed, 1 failed"
    exit 1
fi
n=$(printf '%s\n' "$exported" | wc -l)
echo "all $n exported symbols are listed in the version script, and nothing else is exported"
echo "1 passed, 0 failed"
