#!/usr/bin/env bash
# The main job on the built-in emulated NVMe controller: install what is
# missing, build, then identify the controller and its namespaces and run a
# short benchmark (4 KiB random reads on the null namespace, polled and
# interrupt-driven). Needs no hardware.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
nvmekeep=build/tools/nvmekeep

set -x
$nvmekeep list
$nvmekeep id-ctrl
$nvmekeep id-ns -n 1
$nvmekeep bench --rw randread --bs 4K --qd 32 --time 3 --mode poll
$nvmekeep bench --rw randread --bs 4K --qd 32 --time 3 --mode irq
