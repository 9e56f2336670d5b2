#!/usr/bin/env bash
# NBD export benchmark: the same fio job (nbd engine, 4 KiB random read and
# random write, QD 32, 1 and 4 jobs = connections) against
#   nvmekeepd   on the emulated controller's 1 GiB RAM namespace (emu/1),
#   nbdkit      memory plugin (1 GiB),
#   qemu-nbd    on a 1 GiB file in tmpfs (/dev/shm),
# all in the same run; prints IOPS and nvmekeepd's ratio to each.
# Each figure is the median of ROUNDS runs (default 3), the three servers
# interleaved within a round, so that a noisy machine hits all of them alike;
# the last column lists nvmekeepd / nbdkit of each round (same round, same
# load), the figure to look at on a shared machine, and the median of those.
# Usage: bench/nbd.sh [BUILD_DIR] [SECONDS per run, default 5] [ROUNDS, default 3]
# NBD_BENCH_BEFORE=OTHER_BUILD_DIR adds a fourth server, that build's nvmekeepd
# ("before"), interleaved in the same rounds: a before/after comparison in
# one sitting, printed as a second line per row.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
secs=${2:-5}
rounds=${3:-3}
nvmekeepd=$build/tools/nvmekeepd/nvmekeepd
before=${NBD_BENCH_BEFORE:+$(cd "$NBD_BENCH_BEFORE" && pwd)/tools/nvmekeepd/nvmekeepd}
for p in fio nbdkit qemu-nbd; do
	command -v $p >/dev/null || { echo "bench/nbd.sh: $p is missing (scripts/deps.sh)" >&2; exit 1; }
done
d=$(mktemp -d)
shm=$(mktemp -d /dev/shm/nvmk-bench-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$d" "$shm"
}
trap cleanup EXIT
wait_sock() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done; echo "no socket $1" >&2; exit 1; }

"$nvmekeepd" -q --device emu --listen "unix:$d/nvmk.sock" --control "$d/ctl.sock" 2>"$d/nvmk.log" &
pids+=($!)
if [ -n "$before" ]; then
	"$before" -q --device emu --listen "unix:$d/before.sock" --control "$d/before-ctl.sock" \
		2>"$d/before.log" &
	pids+=($!)
fi
nbdkit -f -U "$d/nbdkit.sock" memory 1G &
pids+=($!)
truncate -s 1G "$shm/disk.raw"
qemu-nbd -t -f raw -k "$d/qemu.sock" --shared=8 "$shm/disk.raw" 2>"$d/qemu.log" &
pids+=($!)
wait_sock "$d/nvmk.sock"
wait_sock "$d/nbdkit.sock"
wait_sock "$d/qemu.sock"
[ -z "$before" ] || wait_sock "$d/before.sock"

declare -A uri=(
	[nvmekeepd]="nbd+unix:///emu/1?socket=$d/nvmk.sock"
	[nbdkit]="nbd+unix:///?socket=$d/nbdkit.sock"
	[qemu-nbd]="nbd+unix:///?socket=$d/qemu.sock"
	[before]="nbd+unix:///emu/1?socket=$d/before.sock"
)
declare -A iops
load0=$(cut -d' ' -f1-3 /proc/loadavg)
servers=(nvmekeepd nbdkit qemu-nbd)
[ -z "$before" ] || servers+=(before)

run() { # server rw jobs
	local out
	out=$(fio --name=b --ioengine=nbd --uri="${uri[$1]}" --rw="$2" --bs=4k --iodepth=32 \
		--numjobs="$3" --size=512M --time_based --runtime="$secs" --group_reporting \
		--output-format=terse --terse-version=3 | grep '^3;')
	# terse v3: field 8 = read IOPS, field 49 = write IOPS
	if [ "$2" = randread ]; then echo "$out" | cut -d';' -f8; else echo "$out" | cut -d';' -f49; fi
}

# fill the RAM namespaces once so that reads do not hit never-written pages
for s in "${servers[@]}"; do
	fio --name=fill --ioengine=nbd --uri="${uri[$s]}" --rw=write --bs=128k --iodepth=8 \
		--size=512M >/dev/null
done

printf "%-10s %-5s %12s %12s %12s %10s %10s   %s\n" rw jobs nvmekeepd nbdkit qemu-nbd "/nbdkit" "/qemu-nbd" \
	"/nbdkit per round (median)"
for rw in randread randwrite; do
	for jobs in 1 4; do
		declare -A all=()
		for _ in $(seq "$rounds"); do
			for s in "${servers[@]}"; do
				all[$s]+="$(run "$s" "$rw" "$jobs") "
			done
		done
		for s in "${servers[@]}"; do
			iops[$s]=$(echo "${all[$s]}" | tr ' ' '\n' | grep . | sort -n |
				awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
		done
		awk -v rw="$rw" -v j="$jobs" -v a="${iops[nvmekeepd]}" -v b="${iops[nbdkit]}" \
			-v c="${iops[qemu-nbd]}" -v ra="${all[nvmekeepd]}" -v rb="${all[nbdkit]}" 'BEGIN {
			n = split(ra, x, " "); split(rb, y, " "); line = ""
			for (i = 1; i <= n; i++) {
				r[i] = y[i] ? x[i] / y[i] : 0
				line = line sprintf(" %.2f", r[i])
			}
			for (i = 1; i <= n; i++)	# insertion sort: n is small
				for (k = i; k > 1 && r[k - 1] > r[k]; k--) {
					t = r[k]; r[k] = r[k - 1]; r[k - 1] = t
				}
			printf "%-10s %-5s %12d %12d %12d %9.2fx %9.2fx  %s (%.2fx)\n", rw, j, a, b, c,
				b ? a / b : 0, c ? a / c : 0, line, r[int((n + 1) / 2)] }'
		[ -z "$before" ] || awk -v a="${iops[before]}" -v b="${iops[nbdkit]}" \
			-v ra="${all[before]}" -v rb="${all[nbdkit]}" 'BEGIN {
			n = split(ra, x, " "); split(rb, y, " "); line = ""
			for (i = 1; i <= n; i++) {
				r[i] = y[i] ? x[i] / y[i] : 0
				line = line sprintf(" %.2f", r[i])
			}
			for (i = 1; i <= n; i++)
				for (k = i; k > 1 && r[k - 1] > r[k]; k--) {
					t = r[k]; r[k] = r[k - 1]; r[k - 1] = t
				}
			printf "  (before) %5s %12d %12s %12s %9.2fx %10s  %s (%.2fx)\n", "", a, "", "",
				b ? a / b : 0, "", line, r[int((n + 1) / 2)] }'
		unset all
	done
done
echo "(load at start: $load0)"
echo "(median of $rounds runs of $secs s; 4 KiB, QD 32 per job, one connection per job; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
