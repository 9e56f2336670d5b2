#!/bin/bash
# nvmekeep over VFIO against the Linux kernel NVMe driver, on the same QEMU
# NVMe controller and namespace, in ONE guest boot (TCG, --smp 1, no-IOMMU
# mode, nvme.poll_queues=1 so fio --hipri can poll). 4 KiB random reads, one
# thread, QD 1 and 32:
#   bench/raw_loop ADDR: a polling loop without checks (the limit), in
#     three rounds of adjacent pairs with nvmekeep polled at QD 1 and 32
#   nvmekeep bench ADDR --mode poll|irq (shadow doorbells auto, and off at QD 32)
#   `nvmekeep setup unbind ADDR`, then fio io_uring and io_uring --hipri
# Prints a table of IOPS and the ratios nvmekeep/kernel.
#   bench/vm/run.sh [SECONDS_PER_PHASE]   (default 5)
#   bench/vm/run.sh --parse CONSOLE_LOG   (the table of an earlier run)
# Uses the VM test setup (tests/vm/setup.sh) and scratch ($NVMK_VM_SCRATCH);
# fio and its libraries are copied from the host into the shared build dir.
# Software emulation on a shared host: absolute numbers are QEMU's and vary
# with the host's load; the ratios within one boot mean more.
set -uo pipefail
. "$(dirname "$0")/../../tests/vm/common.sh"

table() { # console log, seconds per phase
	tr -d '\r' < "$1" | awk -v secs="$2" '
/^BENCH-INFO/ { sub(/^BENCH-INFO /, ""); info[++ni] = $0; next }
/^BENCH-ERROR/ { print; err = 1; next }
/^BENCH / { iops[$2] = $3; note[$2] = $4 " " $5 " " $6; order[++n] = $2; next }
END {
	printf "4 KiB random read, 1 thread, %s s per phase, QEMU TCG --smp 1, no-IOMMU\n", secs
	for (i = 1; i <= ni; i++) print "  " info[i]
	printf "\n%-34s %10s  %s\n", "path", "IOPS", "notes"
	for (i = 1; i <= n; i++) printf "%-34s %10.0f  %s\n", order[i], iops[order[i]], note[order[i]]
	printf "\nratios nvmekeep / kernel, same QD:   vs io_uring          vs io_uring --hipri\n"
	split("poll-qd1 irq-qd1 poll-qd32 irq-qd32 poll-qd32-nodbbuf irq-qd32-nodbbuf", v, " ")
	for (i = 1; i <= 6; i++) {
		k = "nvmekeep-" v[i]
		qd = (v[i] ~ /qd32/) ? "qd32" : "qd1"
		a = iops["kernel-io_uring-" qd]
		b = iops["kernel-io_uring-hipri-" qd]
		ra = (a > 0) ? sprintf("%.2fx", iops[k] / a) : "n/a (kernel failed)"
		rb = (b > 0) ? sprintf("%.2fx", iops[k] / b) : "n/a (kernel failed)"
		printf "  %-34s %-20s %s\n", k, ra, rb
	}
	printf "\nnvmekeep polled / raw polling loop (bench/raw_loop: no checks), adjacent pairs, median of the rounds:\n"
	for (q = 1; q <= 2; q++) {
		qd = (q == 1) ? "qd1" : "qd32"
		m = 0
		line = ""
		for (r = 1; r <= 9; r++) {
			a = iops["pair" r "-nvmekeep-" qd]
			b = iops["pair" r "-raw-" qd]
			if (b > 0 && a != "") {
				rt[++m] = a / b
				line = line sprintf(" %.0f/%.0f", a, b)
			}
		}
		# median by insertion sort (m is small)
		for (i = 2; i <= m; i++)
			for (j = i; j > 1 && rt[j - 1] > rt[j]; j--) {
				t = rt[j]; rt[j] = rt[j - 1]; rt[j - 1] = t
			}
		med = (m == 0) ? "n/a" : sprintf("%.2fx", (m % 2) ? rt[(m + 1) / 2] : (rt[m / 2] + rt[m / 2 + 1]) / 2)
		printf "  %-6s %s   (nvmekeep/loop IOPS per round:%s)\n", qd, med, line
	}
	exit err
}'
}

if [ "${1:-}" = --parse ]; then
	table "$2" "?"
	exit
fi
SECS=${1:-5}
[ "$(id -u)" = 0 ] || die "run as root"
command -v fio > /dev/null || die "fio is not installed (apt-get install fio)"

"$NVMK_VM_DIR/setup.sh" all || die "setup failed"
BUILD="$NVMK_VM_SCRATCH/build"
if [ "$(cat "$BUILD/.nvmk-src" 2>/dev/null)" != "$NVMK_SRC_ROOT" ]; then
	rm -rf "$BUILD"
fi
if [ ! -f "$BUILD/build.ninja" ]; then
	meson setup "$BUILD" "$NVMK_SRC_ROOT" > /dev/null || die "meson setup failed"
	echo "$NVMK_SRC_ROOT" > "$BUILD/.nvmk-src"
fi
ninja -C "$BUILD" -j2 tools/nvmekeep bench/raw_loop > /dev/null ||
	die "building the CLI and bench/raw_loop failed"
# the guest image must carry every library these programs link (libpci
# brings libmount, libudev, ...), as tests/vm/run.sh does for its programs
NVMK_VM_EXTRA_LIBS="$(ldd "$BUILD"/tools/nvmekeep "$BUILD"/bench/raw_loop 2>/dev/null |
	awk '$2 == "=>" && $3 ~ /^\// { n = split($3, p, "/"); print p[n] }' | sort -u | tr '\n' ' ')"
export NVMK_VM_EXTRA_LIBS
"$NVMK_VM_DIR/setup.sh" host || die "setup (guest libraries) failed"

# fio + every library it links (the initramfs has only glibc and a few more)
VB="$BUILD/vmbench"
if [ ! -x "$VB/fio" ] || [ /usr/bin/fio -nt "$VB/fio" ]; then
	rm -rf "$VB"
	mkdir -p "$VB/lib"
	cp /usr/bin/fio "$VB/fio"
	ldd /usr/bin/fio | awk '$3 ~ /^\// { print $3 }' | while read -r l; do
		cp -L "$l" "$VB/lib/"
	done
fi
install -m 0755 "$NVMK_SRC_ROOT/bench/vm/guest_bench.sh" "$VB/guest_bench.sh"

OUT="$NVMK_VM_SCRATCH/bench-vm.out"
TIMEOUT=$((60 + SECS * 15 + 15 * (SECS + 40)))
"$NVMK_VM_DIR/boot.sh" --noiommu --quiet --timeout "$TIMEOUT" --share "$BUILD" \
	--append "nvme.poll_queues=1" -- sh ./vmbench/guest_bench.sh "$SECS" > "$OUT" 2>&1
rc=$?
LOG=$(sed -n 's/.*log=\(.*console.log\).*/\1/p' "$OUT" | tail -1)
[ -f "$LOG" ] || { cat "$OUT"; die "no console log (boot.sh rc $rc)"; }
table "$LOG" "$SECS"
arc=$?
echo "(console: $LOG)"
[ $rc = 0 ] && [ $arc = 0 ]
