#!/bin/sh
# guest_bench.sh SECONDS - runs inside the bench guest (bench/vm/run.sh):
# 4 KiB random reads, one thread, on namespace 1 of the first NVMe function,
# first through nvmekeep over VFIO, then through the kernel NVMe driver with
# fio after `nvmekeep setup unbind`. Prints one line per phase:
#   BENCH <name> <IOPS> [note]
# fio comes from the share (vmbench/fio + vmbench/lib), copied there with its
# libraries by run.sh. Every phase is bounded by `timeout`.
T=${1:-5}
NVMEKEEP=./tools/nvmekeep
B=./vmbench
ADDR=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/class")" = 0x010802 ] || continue
	[ "$(basename "$(readlink "$d/driver")")" = vfio-pci ] && { ADDR=${d##*/}; break; }
done
[ -n "$ADDR" ] || { echo "BENCH-ERROR no vfio-pci function"; exit 1; }
echo "BENCH-INFO device $ADDR ns1, $T s per phase, kernel cmdline: $(cat /proc/cmdline)"

# nvmekeep bench -o json: pull "iops" out with sed (no python in the guest)
NT= # seconds of the next nvmk phase when set, else T
nvmk() { # name, bench args...
	name=$1
	shift
	secs=${NT:-$T}
	out=$(timeout $((secs + 30)) $NVMEKEEP bench "$ADDR" --rw randread --bs 4K --threads 1 \
		--time "$secs" -o json "$@" 2> /tmp/bench.err)
	rc=$?
	iops=$(echo "$out" | tr ',' '\n' | sed -n 's/.*"iops": *\([0-9.]*\).*/\1/p' | head -1)
	errs=$(echo "$out" | tr ',' '\n' | sed -n 's/.*"errors": *\([0-9]*\).*/\1/p' | head -1)
	echo "BENCH $name ${iops:-0} rc=$rc errors=${errs:-?}"
	[ $rc = 0 ] || sed 's/^/    /' /tmp/bench.err | head -5
}
# the limit: bench/raw_loop, a polling loop without checks on the same
# controller (its own queues, SQEs written straight in)
raw() { # name, qd, seconds
	out=$(timeout $(($3 + 30)) ./bench/raw_loop "$ADDR" "$3" "$2" 2> /tmp/raw.err)
	rc=$?
	iops=$(echo "$out" | sed -n 's/^RAW .*iops=\([0-9]*\).*/\1/p')
	echo "BENCH $1 ${iops:-0} rc=$rc"
	[ $rc = 0 ] || sed 's/^/    /' /tmp/raw.err | head -5
}
nvmk nvmekeep-poll-qd1 --qd 1 --mode poll
nvmk nvmekeep-irq-qd1 --qd 1 --mode irq
nvmk nvmekeep-poll-qd32 --qd 32 --mode poll
nvmk nvmekeep-irq-qd32 --qd 32 --mode irq
nvmk nvmekeep-poll-qd32-nodbbuf --qd 32 --mode poll --dbbuf off
nvmk nvmekeep-irq-qd32-nodbbuf --qd 32 --mode irq --dbbuf off
nvmk nvmekeep-poll-qd1-nodbbuf --qd 1 --mode poll --dbbuf off
# nvmekeep polled against the raw loop in adjacent pairs, three rounds of
# PT seconds each: the host's share of the vCPU drifts during a boot, so
# each ratio is taken between neighbours and the script prints the median
PT=$(( (T + 1) / 2 ))
for r in 1 2 3; do
	raw pair$r-raw-qd1 1 "$PT"
	NT=$PT
	nvmk pair$r-nvmekeep-qd1 --qd 1 --mode poll
	raw pair$r-raw-qd32 32 "$PT"
	nvmk pair$r-nvmekeep-qd32 --qd 32 --mode poll
	NT=
done

$NVMEKEEP setup unbind "$ADDR" > /dev/null 2>&1 || { echo "BENCH-ERROR unbind failed"; exit 1; }
BLK=
i=0
while [ -z "$BLK" ] && [ $i -lt 100 ]; do
	for n in /sys/bus/pci/devices/$ADDR/nvme/nvme*/nvme*n1; do
		[ -b "/dev/${n##*/}" ] && BLK=/dev/${n##*/}
	done
	sleep 0.1
	i=$((i + 1))
done
[ -n "$BLK" ] || { echo "BENCH-ERROR no block device after unbind"; exit 1; }
echo "BENCH-INFO kernel block device $BLK, poll queues: $(cat /sys/module/nvme/parameters/poll_queues 2>/dev/null)"

# fio --minimal (terse v3): field 8 is read IOPS
kfio() { # name, timeout extra, fio args...
	name=$1
	shift
	start=$(cut -d' ' -f1 /proc/uptime)
	out=$(timeout -s KILL $((T + 40)) env LD_LIBRARY_PATH=$B/lib $B/fio --name=bench \
		--filename="$BLK" --rw=randread --bs=4k --direct=1 --numjobs=1 --thread \
		--runtime="$T" --time_based --minimal --norandommap --randrepeat=0 "$@" \
		2> /tmp/fio.err)
	rc=$?
	end=$(cut -d' ' -f1 /proc/uptime)
	iops=$(echo "$out" | tail -1 | cut -d';' -f8)
	echo "BENCH $name ${iops:-0} rc=$rc wall=${start}-${end}s"
	[ $rc = 0 ] || { sed 's/^/    /' /tmp/fio.err | head -5; dmesg | grep -i nvme | tail -5 | sed 's/^/    /'; }
}
kfio kernel-io_uring-qd1 --ioengine=io_uring --iodepth=1
kfio kernel-io_uring-hipri-qd1 --ioengine=io_uring --iodepth=1 --hipri
kfio kernel-io_uring-qd32 --ioengine=io_uring --iodepth=32
kfio kernel-io_uring-hipri-qd32 --ioengine=io_uring --iodepth=32 --hipri
echo "BENCH-INFO kernel nvme messages: $(dmesg | grep -ci 'nvme.*timeout') timeout lines"
dmesg | grep -i 'nvme' | grep -iE 'timeout|abort|reset' | tail -4 | sed 's/^/BENCH-INFO   /'
exit 0
