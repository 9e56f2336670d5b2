#!/usr/bin/env bash
# IOPS per core on the emulated null namespace: 4 KiB random reads at QD 1,
# 32 and 128, polled and interrupt driven, one thread. Prints a table.
# The emulator's worker thread runs on the second core: this measures the
# driver against a device that answers as fast as one core can.
# Usage: bench/iops.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
secs=${2:-5}
printf '%-6s %-5s %12s %10s %10s %10s\n' mode qd IOPS p50_us p99_us p99.9_us
for mode in poll irq; do
	for qd in 1 32 128; do
		"$build/tools/nvmekeep" bench --rw randread --bs 4K --qd "$qd" --time "$secs" \
			--mode "$mode" -o json 2>/dev/null |
			python3 -c 'import json,sys; r=json.load(sys.stdin); l=r["latency_ns"]; print("%-6s %-5d %12.0f %10.1f %10.1f %10.1f" % (r["mode"], r["qd"], r["iops"], l["p50"]/1e3, l["p99"]/1e3, l["p99_9"]/1e3))'
	done
done
