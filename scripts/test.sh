#!/usr/bin/env bash
# Run every test: a normal build, an ASan+UBSan build and a TSan build,
# each with the whole cmocka suite, a 2-minute soak under ASan+UBSan, the
# hostile-device fuzzer for 2 minutes, then the VM tests (tests/vm/run.sh: QEMU
# guests with NVMe controllers bound to vfio-pci, type1 and no-IOMMU; TCG,
# no KVM needed) when the host can run them. Installs missing packages first.
# Usage: scripts/test.sh [--quick]   (--quick: normal build only)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

quick=0
[ "${1:-}" = "--quick" ] && quick=1

run() { # name, meson setup args...
  local dir=$1; shift
  # quiet when it works; the whole output when it does not
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
  fi
  ninja -C "$dir" >"$dir.ninja.log" 2>&1 || { grep -v '^\[' "$dir.ninja.log" | tail -60; return 1; }
  echo "== $dir: meson test" >&2
  meson test -C "$dir" --print-errorlogs --num-processes 2 "${TEST_ARGS[@]}"
}

TEST_ARGS=()
run build
# what `meson install` puts out, used as a user would (pkg-config, examples/)
echo "== build: install check" >&2
scripts/check_install.sh build
[ $quick -eq 1 ] && exit 0
# Every build type builds with GCC and Clang; CI checks the combination that
# differs most from the default tree: Clang, release (-O3, NDEBUG). Quick
# suites only: the full suite runs in the trees above and below.
TEST_ARGS=(--suite util --suite pkg --suite cli)
CC=clang run build-clang-release --buildtype=release
TEST_ARGS=()
run build-asan -Db_sanitize=address,undefined -Db_lundef=false
# TSan: the threaded parts (emulator worker, driver queues, manager).
TEST_ARGS=(--suite threaded)
run build-tsan -Db_sanitize=thread -Db_lundef=false

# Soak: verified I/O under random faults, resets and namespace changes, two
# minutes under ASan+UBSan (bench/soak.sh; 0 data errors and 0 exactly-once
# violations, or it fails).
echo "== soak: 2 minutes, ASan+UBSan" >&2
BUILD=build-asan bench/soak.sh "${NVMK_SOAK_MINUTES:-2}" 4

# Fuzz: the driver against a hostile device (fuzz/fuzz_hostile.c), from the
# checked-in corpus, for a bounded time (clang + libFuzzer; docs/reliability.md
# says how to run a long campaign). A broken invariant fails the run and
# leaves the input in build-fuzz/crash-*.
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false >/dev/null
fi
ninja -C build-fuzz fuzz/fuzz_hostile >/dev/null
fuzz_corpus=$(mktemp -d)
cp fuzz/corpus/hostile/* "$fuzz_corpus"/
echo "== fuzz_hostile: ${NVMK_FUZZ_SECONDS:-120} s" >&2
build-fuzz/fuzz/fuzz_hostile -max_total_time="${NVMK_FUZZ_SECONDS:-120}" -timeout=60 \
  -max_len=512 -rss_limit_mb=4096 -artifact_prefix=build-fuzz/ "$fuzz_corpus" 2>&1 |
  grep -E '^(#[0-9]+ +DONE|Done|==|SUMMARY|fuzz_hostile: invariant)' >&2
rm -rf "$fuzz_corpus"

# VM tests: need root (apt-get, QEMU's 9p share of root-owned files) and an
# x86-64 host (the guest kernel is Debian's amd64 one; TCG, so no KVM). They
# reuse the normal build dir.
vm_skip="" vm_sudo=()
[ "$(id -u)" = 0 ] || { sudo -n true 2>/dev/null && vm_sudo=(sudo -n); } || vm_skip="not root, no sudo"
[ "$(uname -m)" = x86_64 ] || vm_skip="not an x86-64 host"
if [ -n "$vm_skip" ]; then
  echo "== tests/vm: SKIPPED ($vm_skip)" >&2
else
  echo "== tests/vm: QEMU guests, type1 and no-IOMMU" >&2
  "${vm_sudo[@]}" env NVMK_VM_BUILD=build tests/vm/run.sh
fi
