#!/usr/bin/env bash
# The shared library exports exactly the public API: every function declared
# in a public header (include/nvmekeep/*.h, and the generated version.h) and
# defined in the library is exported, and nothing else is (src/libnvmekeep.map
# decides). Also: the soname is libnvmekeep.so.0. TAP output.
# Usage: check_exports.sh LIB.so LIB.a HEADER_DIR...
set -u
so=$1 ar=$2
shift 2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n=0 fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); echo "not ok $n - $1"; fail=$((fail + 1)); }

# names followed by '(' in the public headers: declarations, and also macros
# and inline helpers, which are never defined in the archive
for d in "$@"; do cat "$d"/*.h; done | grep -oE '\bnvmk_[A-Za-z0-9_]+[[:space:]]*\(' | sed 's/[[:space:]]*($//' |
	sort -u >"$TMP/public"
nm -D --defined-only "$so" | awk '$2 ~ /^[TDRBVW]$/ {sub(/@.*/, "", $3); print $3}' |
	sort -u >"$TMP/exported"
nm -g --defined-only "$ar" 2>/dev/null | awk 'NF == 3 && $2 ~ /^[TDRBVW]$/ {print $3}' |
	sort -u >"$TMP/defined"

[ -s "$TMP/public" ] && ok "public headers declare $(wc -l <"$TMP/public") nvmk_ names" ||
	bad "no nvmk_ declaration found in $*"

extra=$(comm -23 "$TMP/exported" "$TMP/public")
if [ -z "$extra" ]; then
	ok "every exported symbol is declared in a public header"
else
	bad "exported but not in a public header (make it static, rename it, or list it under local: in src/libnvmekeep.map):"
	sed 's/^/#   /' <<<"$extra"
fi

missing=$(comm -12 "$TMP/defined" "$TMP/public" | comm -23 - "$TMP/exported")
if [ -z "$missing" ]; then
	ok "every public function the library defines is exported ($(wc -l <"$TMP/exported"))"
else
	bad "public but not exported (see the patterns in src/libnvmekeep.map):"
	sed 's/^/#   /' <<<"$missing"
fi

internal=$(comm -23 "$TMP/defined" "$TMP/public" | grep -c .)
[ "$internal" -gt 0 ] && ok "$internal internal global symbols of the archive stay local" ||
	bad "the archive has no internal symbols: is $ar the right file?"

soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libnvmekeep.so.0 ] && ok "soname $soname" || bad "soname '$soname', expected libnvmekeep.so.0"

echo "1..$n"
[ "$fail" -eq 0 ]
