#!/usr/bin/env bash
# ABI baseline check (see "ABI baseline" in docs/abi.md).
#
#   .ci/abi-check.sh            compare the library built from this tree with
#                               the committed baseline; fail on a change that
#                               is not backward compatible
#   .ci/abi-check.sh --update   (re)write the baseline from this tree
#
# The baseline is lib/abi/libbitnet.so.<BITNET_ABI_VERSION>.abi (abidw XML:
# exported functions with their full signatures and every public type they
# reach; opaque objects stay opaque) plus lib/abi/libbitnet.so.<N>.constants
# (the value of every BITNET_* enum constant and macro in bitnet.h, which
# DWARF does not describe).
#
# abidw needs DWARF to see types and the CI build is release without -g, so
# the script builds the library alone with -Dbuildtype=debugoptimized in a
# temporary directory (~30 s on 2 cores). When .ci/install-check.sh calls it
# (DESTDIR_ROOT and LIBDIR set), the staged, installed library is also
# checked at the symbol level (names and symbol versions) against the same
# baseline.
#
# Compatible (passes): new functions; new constants; fields appended at the
# end of a bitnet_*_params struct (the struct_size mechanism). Anything else
# that abidiff reports fails: a removed function or symbol version, a
# changed parameter or return type, a changed or inserted field, a changed
# size of bitnet_logit_bias / bitnet_chat_message, a changed constant value.
# Such a change needs a new ABI: bump BITNET_ABI_VERSION in include/bitnet.h
# (the soname follows) and run --update, which writes the baseline for the
# new soname and removes the old one.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
mode=check
case "${1:-}" in
    "") ;;
    --update) mode=update ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--update]" >&2; exit 2 ;;
esac
say() { printf '[abi] %s\n' "$*"; }
fail() { echo "abi-check: FAIL: $*" >&2; exit 1; }

for tool in abidw abidiff; do
    if ! command -v "$tool" >/dev/null; then
        SUDO=""
        [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        say "installing abigail-tools"
        $SUDO apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends abigail-tools >/dev/null
        break
    fi
done

abi=$(sed -n 's/^#define BITNET_ABI_VERSION \([0-9]*\)$/\1/p' include/bitnet.h)
[ -n "$abi" ] || fail "cannot read BITNET_ABI_VERSION from include/bitnet.h"
soname="libbitnet.so.$abi"
basedir=lib/abi
baseline="$basedir/$soname.abi"
baseconst="$basedir/$soname.constants"

work=$(mktemp -d /tmp/bitnet-abi.XXXXXX)
trap 'rm -rf "$work"' EXIT

# ---- the library with debug info, built from this tree ------------------------------
say "building $soname with debug info (buildtype=debugoptimized, library only)"
meson setup "$work/build" "$src" -Dbuildtype=debugoptimized -Dtests=disabled \
    -Dexamples=false > "$work/setup.log" 2>&1 || { cat "$work/setup.log"; fail "meson setup"; }
ninja -C "$work/build" > "$work/build.log" 2>&1 || { tail -50 "$work/build.log"; fail "build"; }
lib="$work/build/lib/$soname"
[ -e "$lib" ] || fail "$lib was not built"

# Only the exported interface and the types it reaches; types defined outside
# the public header are dropped (opaque); no paths, locations or build
# directories, so the dump only changes when the ABI does.
dump() {
    abidw --no-corpus-path --no-comp-dir-path --short-locs --no-show-locs \
        --drop-private-types --exported-interfaces-only --type-id-style hash \
        --headers-dir "$src/include" --out-file "$2" "$1"
}
dump "$lib" "$work/current.abi"

# ---- constants: every BITNET_* enum value and macro of the header --------------------
constants() {
    {
        echo '#include <stdio.h>'
        echo '#include <bitnet.h>'
        echo 'int main(void) {'
        { sed -n 's/^ *\(BITNET_[A-Z0-9_]*\) *=.*/\1/p' include/bitnet.h
          sed -n 's/^# *define \(BITNET_[A-Z0-9_]*\)[ (].*/\1/p' include/bitnet.h; } |
            grep -v -x -E 'BITNET_(H|API|VERSION|VERSION_MAJOR|VERSION_MINOR|VERSION_PATCH|ABI_VERSION)' |
            sort -u | while read -r name; do
                printf '    printf("%%s %%lld\\n", "%s", (long long)(%s));\n' "$name" "$name"
            done
        echo '    return 0;'
        echo '}'
    } > "$work/constants.c"
    cc -std=c11 -I include -o "$work/constants" "$work/constants.c" || fail "constants program"
    "$work/constants" > "$1"
}
constants "$work/current.constants"

if [ "$mode" = update ]; then
    mkdir -p "$basedir"
    cp "$work/current.abi" "$baseline"
    cp "$work/current.constants" "$baseconst"
    for old in "$basedir"/libbitnet.so.*.abi "$basedir"/libbitnet.so.*.constants; do
        case "$old" in "$baseline"|"$baseconst") ;; *) [ -e "$old" ] && rm -v "$old" ;; esac
    done
    say "wrote $baseline ($(grep -c '<elf-symbol ' "$baseline") symbols) and $baseconst ($(wc -l < "$baseconst") constants)"
    say "commit them (git add $basedir) together with the change that needs them"
    exit 0
fi

# ---- check ---------------------------------------------------------------------------
if [ ! -f "$baseline" ]; then
    others=$(ls "$basedir"/libbitnet.so.*.abi 2>/dev/null || true)
    if [ -n "$others" ]; then
        fail "BITNET_ABI_VERSION is $abi but the baseline is $others: the ABI was bumped" \
             "without refreshing the baseline; run .ci/abi-check.sh --update and commit $basedir"
    fi
    fail "no baseline $baseline; create it with .ci/abi-check.sh --update"
fi
grep -q "soname='$soname'" "$baseline" || fail "$baseline does not describe $soname"

# Fields appended at the end of a bitnet_*_params struct are compatible:
# drop them (and the growth) from the current dump so abidiff checks the
# old prefix exactly; an insertion anywhere else still shows up.
python3 - "$baseline" "$work/current.abi" "$work/current-cmp.abi" > "$work/appended.txt" <<'PY'
import re
import sys
import xml.etree.ElementTree as ET

base = ET.parse(sys.argv[1]).getroot()
cur_tree = ET.parse(sys.argv[2])
params = re.compile(r"^bitnet_[a-z0-9_]*_params$")

def members(c):
    return [m for m in c if m.tag == "data-member"]

def name(m):
    v = m.find("var-decl")
    return v.get("name") if v is not None else None

known = {}
for c in base.iter("class-decl"):
    n = c.get("name", "")
    if params.match(n) and c.get("is-declaration-only") != "yes":
        known[n] = (int(c.get("size-in-bits", "0")), [name(m) for m in members(c)])
seen = set()
for c in cur_tree.getroot().iter("class-decl"):
    n = c.get("name", "")
    if n not in known or c.get("is-declaration-only") == "yes":
        continue
    size, names = known[n]
    ms = members(c)
    if len(ms) > len(names) and [name(m) for m in ms[:len(names)]] == names:
        if n not in seen:
            print("%s: appended %s" % (n, ", ".join(name(m) for m in ms[len(names):])))
            seen.add(n)
        for m in ms[len(names):]:
            c.remove(m)
        if int(c.get("size-in-bits", "0")) >= size:
            c.set("size-in-bits", str(size))
cur_tree.write(sys.argv[3])
PY

set +e
abidiff --no-added-syms "$baseline" "$work/current-cmp.abi" > "$work/abidiff.txt" 2>&1
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
    cat "$work/abidiff.txt"
    fail "incompatible ABI change against $baseline (abidiff exit $rc). If it is intended," \
         "bump BITNET_ABI_VERSION in include/bitnet.h and run .ci/abi-check.sh --update (docs/abi.md)."
fi

# constants: every baseline constant must keep its value
missing=$(awk 'NR == FNR { cur[$1] = $2; next }
               !($1 in cur) { print $1 " removed" ; next }
               cur[$1] != $2 { print $1 " " $2 " -> " cur[$1] }' \
          "$work/current.constants" "$baseconst")
[ -z "$missing" ] || fail "constants changed against $baseconst: $missing"

# ---- the staged install, symbols only (release build, no DWARF) ----------------------
if [ -n "${LIBDIR:-}" ] && [ -e "$LIBDIR/$soname" ]; then
    set +e
    abidiff --no-added-syms "$baseline" "$LIBDIR/$soname" > "$work/abidiff-staged.txt" 2>&1
    rc=$?
    set -e
    if [ "$rc" -ne 0 ]; then
        cat "$work/abidiff-staged.txt"
        fail "installed $LIBDIR/$soname lost symbols against $baseline (abidiff exit $rc)"
    fi
    say "installed $soname: every baseline symbol and symbol version present"
fi

# ---- compatible additions: report, and remind to record them -------------------------
added=$(abidiff "$baseline" "$work/current.abi" 2>/dev/null | sed -n "s/^  \[A\] 'function \(.*\)'.*/\1/p" || true)
newconst=$(awk 'NR == FNR { base[$1] = 1; next } !($1 in base) { print $1 }' "$baseconst" "$work/current.constants")
if [ -n "$added" ] || [ -s "$work/appended.txt" ] || [ -n "$newconst" ]; then
    say "compatible additions not yet in the baseline (record them with .ci/abi-check.sh --update):"
    [ -z "$added" ] || echo "$added" | sed 's/^/  added function: /'
    [ ! -s "$work/appended.txt" ] || sed 's/^/  /' "$work/appended.txt"
    [ -z "$newconst" ] || echo "$newconst" | sed 's/^/  new constant: /'
fi
say "ABI compatible with $baseline ($(grep -c '<elf-symbol ' "$baseline") symbols, $(wc -l < "$baseconst") constants)"
