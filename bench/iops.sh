#!/usr/bin/env bash
# IOPS per core on the emulated null namespace: 4 KiB random reads at QD 1,
# 32 and 128, one thread, completions by polling, hybrid polling (poll a
# bounded time, then sleep on the interrupt) and interrupts, printed side by
# side. The emulator's worker thread needs a core of its own: on a machine
# with fewer idle cores than busy threads a pure poller starves it, which
# hybrid and irq avoid. Figures move a lot on a shared machine; the
# instruction counts of bench/instr_per_io.sh are the stable measure.
# Usage: bench/iops.sh [BUILD_DIR] [SECONDS] [HYBRID_POLL_US]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
secs=${2:-5}
hyb=${3:-20}
one() { # mode qd -> "IOPS p99_us"
	local extra=()
	[ "$1" = hybrid ] && extra=(--hybrid-poll-us "$hyb")
	"$build/tools/nvmekeep" bench --rw randread --bs 4K --qd "$2" --time "$secs" \
		--mode "$1" "${extra[@]}" -o json 2>/dev/null |
		python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.0f %.1f" % (r["iops"], r["latency_ns"]["p99"]/1e3))'
}
echo "4 KiB random reads, 1 thread, ${secs} s per point, hybrid polls ${hyb} us; load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
printf '%-5s | %12s %9s | %12s %9s | %12s %9s\n' qd poll_IOPS p99_us hybrid_IOPS p99_us irq_IOPS p99_us
for qd in 1 32 128; do
	read -r pi pl <<<"$(one poll "$qd")"
	read -r hi hl <<<"$(one hybrid "$qd")"
	read -r ii il <<<"$(one irq "$qd")"
	printf '%-5s | %12s %9s | %12s %9s | %12s %9s\n' "$qd" "$pi" "$pl" "$hi" "$hl" "$ii" "$il"
done
