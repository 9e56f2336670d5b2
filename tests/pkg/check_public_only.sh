#!/usr/bin/env bash
# Programs (tools/, bench/, examples/) are built as a user of the installed
# library would build them: public headers only. Only tests/ and fuzz/ see
# src/ (docs/architecture.md, "Headers"). TAP output.
# Usage: check_public_only.sh SOURCE_ROOT
set -u
root=$1
n=0 fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); echo "not ok $n - $1"; fail=$((fail + 1)); }

# the internal include path (nvmekeep_dep) in a program's build file
hits=$(grep -rnw --include=meson.build 'nvmekeep_dep' "$root"/tools "$root"/bench \
	"$root"/examples 2>/dev/null)
if [ -z "$hits" ]; then
	ok "tools/, bench/, examples/ build with nvmekeep_public_dep only"
else
	bad "a program is built with nvmekeep_dep (src/ on its include path):"
	sed 's/^/#   /' <<<"$hits"
fi

# an include of an internal header: "<folder of src/>/<name>.h"
layers=$(cd "$root/src" && ls -d */ | tr -d / | paste -sd'|')
hits=$(grep -rnE "#include \"($layers)/" "$root"/tools "$root"/bench "$root"/examples \
	--include='*.c' --include='*.h' 2>/dev/null)
if [ -z "$hits" ]; then
	ok "no program includes a header of src/ ($layers)"
else
	bad "a program includes an internal header:"
	sed 's/^/#   /' <<<"$hits"
fi
echo "1..$n"
[ "$fail" -eq 0 ]
