#!/usr/bin/env bash
# NBD export benchmark: the same fio job (nbd engine, 4 KiB random read and
# random write, QD 32, 1 and 4 jobs = connections) against
#   nvmekeepd   on the emulated controller's 1 GiB RAM namespace (emu/1),
#   nbdkit      memory plugin (1 GiB),
#   qemu-nbd    on a 1 GiB file in tmpfs (/dev/shm),
# all in the same run; prints IOPS and nvmekeepd's ratio to each.
# Each figure is the median of ROUNDS runs (default 3), the three servers
# interleaved within a round, so that a noisy machine hits all of them alike.
# Usage: bench/nbd.sh [BUILD_DIR] [SECONDS per run, default 5] [ROUNDS, default 3]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
secs=${2:-5}
rounds=${3:-3}
nvmekeepd=$build/tools/nvmekeepd/nvmekeepd
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
nbdkit -f -U "$d/nbdkit.sock" memory 1G &
pids+=($!)
truncate -s 1G "$shm/disk.raw"
qemu-nbd -t -f raw -k "$d/qemu.sock" --shared=8 "$shm/disk.raw" 2>"$d/qemu.log" &
pids+=($!)
wait_sock "$d/nvmk.sock"
wait_sock "$d/nbdkit.sock"
wait_sock "$d/qemu.sock"

declare -A uri=(
	[nvmekeepd]="nbd+unix:///emu/1?socket=$d/nvmk.sock"
	[nbdkit]="nbd+unix:///?socket=$d/nbdkit.sock"
	[qemu-nbd]="nbd+unix:///?socket=$d/qemu.sock"
)
declare -A iops
servers=(nvmekeepd nbdkit qemu-nbd)

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

printf "%-10s %-5s %12s %12s %12s %10s %10s\n" rw jobs nvmekeepd nbdkit qemu-nbd "/nbdkit" "/qemu-nbd"
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
		unset all
		awk -v rw="$rw" -v j="$jobs" -v a="${iops[nvmekeepd]}" -v b="${iops[nbdkit]}" \
			-v c="${iops[qemu-nbd]}" 'BEGIN {
			printf "%-10s %-5s %12d %12d %12d %9.2fx %9.2fx\n", rw, j, a, b, c,
				b ? a / b : 0, c ? a / c : 0 }'
	done
done
echo "(median of $rounds runs of $secs s; 4 KiB, QD 32 per job, one connection per job; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
