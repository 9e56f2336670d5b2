#!/usr/bin/env bash
# Soak: mixed verified I/O on several threads with random fault injection,
# controller resets and namespace changes (bench/soak.c). Prints I/Os,
# faults, recoveries and errors; exits 1 on any data error, exactly-once
# violation or failed controller.
# Usage: bench/soak.sh [MINUTES] [THREADS]   (build dir: $BUILD, default
# build-asan when it exists, else build)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-1}
threads=${2:-4}
build=${BUILD:-}
if [ -z "$build" ]; then
	if [ -x build-asan/bench/soak ]; then build=build-asan; else build=build; fi
fi
ninja -C "$build" bench/soak >/dev/null
echo "soak: $build/bench/soak, $minutes minute(s), $threads threads" >&2
exec "$build/bench/soak" --minutes "$minutes" --threads "$threads"
