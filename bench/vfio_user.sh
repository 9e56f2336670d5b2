#!/usr/bin/env bash
# IOPS over vfio-user next to the in-process emulator, same run: 4 KiB random
# reads on the null namespace (nsid 2) at QD 1 and 32, polled, one thread.
#   in-process : nvmekeep bench emu        (emulator in the driver's process)
#   vfu-mmap   : nvmekeep bench vfio-user: (nvmekeep-emu, doorbells mmap'd)
#   vfu-trap   : same, NVMEKEEP_VFIO_USER_DOORBELLS=trap (a message per ring)
# Prints IOPS, p50/p99 latency and the ratio to in-process, RUNS times, each
# table under the load average it ran at (the figures move with the load of a
# shared machine: compare ratios within one table, and several tables).
# Usage: bench/vfio_user.sh [BUILD_DIR] [SECONDS] [MODE poll|irq] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
secs=${2:-5}
mode=${3:-poll}
runs=${4:-1}
dir=$(mktemp -d)
emu_pid=
cleanup() {
	[ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
"$build/tools/nvmekeep-emu" --socket "$dir/s" 2>/dev/null &
emu_pid=$!
for _ in $(seq 1 200); do [ -S "$dir/s" ] && break; sleep 0.02; done

run() { # device qd [env] -> "iops p50_us p99_us"
	env ${3:-} "$build/tools/nvmekeep" bench "$1" -n 2 --rw randread --bs 4K --qd "$2" \
		--time "$secs" --mode "$mode" -o json 2>/dev/null |
		python3 -c 'import json,sys; r=json.load(sys.stdin); l=r["latency_ns"]; print("%.0f %.1f %.1f" % (r["iops"], l["p50"]/1e3, l["p99"]/1e3))'
}
for r in $(seq 1 "$runs"); do
	printf 'run %d/%d, load average %s\n' "$r" "$runs" "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf '%-11s %-4s %-5s %10s %9s %9s %7s\n' backing mode qd IOPS p50_us p99_us ratio
	for qd in 1 32; do
		read -r base b50 b99 < <(run emu "$qd")
		printf '%-11s %-4s %-5d %10.0f %9.1f %9.1f %7s\n' in-process "$mode" "$qd" "$base" "$b50" "$b99" 1.00
		for variant in mmap trap; do
			envs=
			[ "$variant" = trap ] && envs=NVMEKEEP_VFIO_USER_DOORBELLS=trap
			read -r iops p50 p99 < <(run "vfio-user:$dir/s" "$qd" "$envs")
			printf '%-11s %-4s %-5d %10.0f %9.1f %9.1f %7.2f\n' "vfu-$variant" "$mode" "$qd" "$iops" \
				"$p50" "$p99" "$(python3 -c "print($iops / $base if $base else 0)")"
		done
	done
done
