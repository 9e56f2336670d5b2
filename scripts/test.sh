#!/usr/bin/env bash
# Run every test: a normal build, an ASan+UBSan build and a TSan build,
# each with the whole cmocka suite. Installs missing packages first.
# Usage: scripts/test.sh [--quick]   (--quick: normal build only)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

quick=0
[ "${1:-}" = "--quick" ] && quick=1

run() { # name, meson setup args...
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null
  fi
  ninja -C "$dir" >/dev/null
  echo "== $dir: meson test" >&2
  meson test -C "$dir" --print-errorlogs --num-processes 2 "${TEST_ARGS[@]}"
}

TEST_ARGS=()
run build
[ $quick -eq 1 ] && exit 0
run build-asan -Db_sanitize=address,undefined -Db_lundef=false
# TSan: the threaded parts (emulator worker, driver queues, manager).
TEST_ARGS=(--suite threaded)
run build-tsan -Db_sanitize=thread -Db_lundef=false
