#!/usr/bin/env bash
# The shared library exports exactly the public API: every function declared
# in a public header (include/nvmekeep/*.h, include/nvmekeep/driver/*.h, and
# the generated version.h) and
# defined in the library is exported, and nothing else is (the version script
# written by src/gen_libnvmekeep_map.py decides). Also: the soname is
# libnvmekeep.so.0. TAP output.
# Usage: check_exports.sh LIB.so LIB.a HEADER_DIR...
set -u
so=$1 ar=$2
shift 2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n=0 fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); echo "not ok $n - $1"; fail=$((fail + 1)); }

# names followed by '(' in the public headers, comments left out:
# declarations, and also macros and inline helpers, which are never defined in
# the archive
for d in "$@"; do cat "$d"/*.h; done | python3 -c '
import re, sys
t = re.sub(r"/\*.*?\*/", " ", sys.stdin.read(), flags=re.S)
t = re.sub(r"//[^\n]*", " ", t)
print("\n".join(sorted(set(re.findall(r"\b(nvmk_\w+)\s*\(", t)))))' >"$TMP/public"
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
	bad "exported but not declared in a public header (see src/gen_libnvmekeep_map.py):"
	sed 's/^/#   /' <<<"$extra"
fi

missing=$(comm -12 "$TMP/defined" "$TMP/public" | comm -23 - "$TMP/exported")
if [ -z "$missing" ]; then
	ok "every public function the library defines is exported ($(wc -l <"$TMP/exported"))"
else
	bad "public but not exported (see src/gen_libnvmekeep_map.py):"
	sed 's/^/#   /' <<<"$missing"
fi

internal=$(comm -23 "$TMP/defined" "$TMP/public" | grep -c .)
[ "$internal" -gt 0 ] && ok "$internal internal global symbols of the archive stay local" ||
	bad "the archive has no internal symbols: is $ar the right file?"

soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libnvmekeep.so.0 ] && ok "soname $soname" || bad "soname '$soname', expected libnvmekeep.so.0"

echo "1..$n"
[ "$fail" -eq 0 ]
