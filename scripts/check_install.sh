#!/usr/bin/env bash
# Install a build tree into a temporary directory and use it as a user would:
# build examples/emu_roundtrip.c out of tree with `pkg-config --cflags --libs
# nvmekeep` against the installed headers and shared library (and once against
# the static library), run it, and check what else `meson install` put there
# (soname, every program with --version, man page, bash completion).
# Usage: scripts/check_install.sh [BUILD_DIR]   (default: build, already built)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

meson install -C "$build" --destdir "$TMP/root" --quiet >/dev/null
prefix=$(meson introspect "$build" --buildoptions |
	python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"][0])')
root=$TMP/root$prefix
pcdir=$(dirname "$(find "$root" -name nvmekeep.pc | head -1)")
[ -f "$pcdir/nvmekeep.pc" ] || { echo "check_install: no nvmekeep.pc installed" >&2; exit 1; }
libdir=$(dirname "$pcdir")

fail() { echo "check_install: $*" >&2; exit 1; }
# the .pc file names the real prefix; point it at the staged copy
pc() { PKG_CONFIG_PATH=$pcdir pkg-config --define-variable=prefix="$root" "$@" nvmekeep; }

[ "$(pc --modversion)" = "$(meson introspect "$build" --projectinfo |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')" ] ||
	fail "pkg-config --modversion differs from the project version"
[ -f "$root/include/nvmekeep.h" ] && [ -f "$root/include/nvmekeep/driver.h" ] &&
	[ -f "$root/include/nvmekeep/version.h" ] || fail "public headers missing under $root/include"
[ ! -e "$root/include/nvmekeep/meson.build" ] || fail "meson.build installed with the headers"
# every installed header stands alone (the driver's per-object headers too)
[ -f "$root/include/nvmekeep/driver/ctrl.h" ] || fail "nvmekeep/driver/*.h missing under $root/include"
for h in "$root"/include/nvmekeep/*.h "$root"/include/nvmekeep/*/*.h; do
	echo "#include <${h#"$root"/include/}>" |
		cc -std=gnu11 -Wall -Wextra -Werror -fsyntax-only -I"$root/include" -x c - ||
		fail "installed header ${h#"$root"/include/} does not compile on its own"
done
[ -L "$libdir/libnvmekeep.so" ] && [ -e "$libdir/libnvmekeep.so.0" ] && [ -f "$libdir/libnvmekeep.a" ] ||
	fail "libnvmekeep.so -> .so.0 and libnvmekeep.a expected in $libdir"

# shared: only the installed files, none of the source tree
cc -std=gnu11 -Wall -Wextra -Werror -o "$TMP/emu_roundtrip" examples/emu_roundtrip.c $(pc --cflags --libs)
readelf -d "$TMP/emu_roundtrip" | grep -q 'NEEDED.*\[libnvmekeep.so.0\]' ||
	fail "example not linked against libnvmekeep.so.0"
LD_LIBRARY_PATH=$libdir "$TMP/emu_roundtrip"
# static: the archive and its dependencies from the .pc file's private fields
cc -std=gnu11 -Wall -Wextra -Werror -o "$TMP/emu_roundtrip_static" examples/emu_roundtrip.c \
	$(pc --cflags) "$libdir/libnvmekeep.a" $(pc --static --libs | sed 's/-lnvmekeep\b//')
! readelf -d "$TMP/emu_roundtrip_static" | grep -q 'libnvmekeep' || fail "static example needs libnvmekeep.so"
"$TMP/emu_roundtrip_static" >/dev/null

[ -x "$root/bin/nvmekeep" ] || fail "the nvmekeep CLI is not installed"
# every installed program answers --version with "NAME VERSION" (first line)
for prog in "$root"/bin/* "$root"/sbin/*; do
	[ -x "$prog" ] || continue
	name=${prog##*/}
	line=$(LD_LIBRARY_PATH=$libdir timeout 10 "$prog" --version </dev/null 2>&1 | head -1) || true
	[ "$line" = "$name $(pc --modversion)" ] ||
		fail "installed $name --version printed '$line', expected '$name $(pc --modversion)'"
done
[ -f "$root/share/man/man1/nvmekeep.1" ] || fail "man page nvmekeep.1 not installed"
[ -f "$root/share/bash-completion/completions/nvmekeep" ] || fail "bash completion not installed"
bash -n "$root/share/bash-completion/completions/nvmekeep" || fail "bash completion does not parse"
# completion at work: commands and options are read from the installed CLI
got=$(PATH="$root/bin:$PATH" LD_LIBRARY_PATH=$libdir bash -c '
	source /usr/share/bash-completion/bash_completion
	source "$1"
	t() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE="$*"
	      COMP_POINT=${#COMP_LINE}; _nvmekeep nvmekeep "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"
	      echo "${COMPREPLY[*]}"; }
	t nvmekeep id; t nvmekeep read --st' _ "$root/share/bash-completion/completions/nvmekeep")
[ "$got" = $'id-ctrl id-ns\n--start-block' ] || fail "bash completion offered '$got'"
echo "check_install: ok (installed into a staging prefix; example built with pkg-config, shared and static)"
