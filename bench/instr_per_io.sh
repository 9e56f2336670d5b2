#!/usr/bin/env bash
# Instructions per I/O (4 KiB read, one PRP entry) counted by callgrind, in
# the five configurations of issue 13, each as two figures:
#   driver  instructions in the driver's own code (src/driver/ and the inline
#           fast path in include/nvmekeep/): submit + complete
#   caller  everything the calling thread executed inside the driver calls
#           of the loop: the driver, the built-in emulator's doorbell
#           handling (it runs on the caller's thread when a doorbell is
#           written), the backing, libc (mutex, futex wake), io_loop's
#           callback. The emulator's worker thread is not counted, nor the
#           kernel side of a system call.
# Collection is on only inside nvmk_ns_submit_read, nvmk_ns_submit_read_batch,
# nvmk_qpair_process_completions and nvmk_qpair_batch_begin/_end.
#
# Per mode three runs: C = setup only; B = K polls of an idle queue; A = N
# reads, sleeping 100 us before each poll so that nearly every poll finds
# its completion; the E polls that still found nothing are subtracted:
#   empty poll cost e = (B - C) / K
#   per I/O           = (A - C - E * e) / N
# Usage: bench/instr_per_io.sh [BUILD_DIR] [N] [MODE...]
#   MODE: excl batch pbatch shared locked shadow, and (default: all ten)
#         (batch: one nvmk_ns_submit_read_batch call of 32; pbatch: 32
#         nvmk_ns_submit_read calls inside nvmk_qpair_batch_begin/_end)
#         handle hbatch hshadow: excl, batch, shadow submitting through an
#         I/O handle (nvmk_io_read, hbatch: nvmk_io_read_batch;
#         nvmekeep/driver/io_handle.h); phbatch: pbatch with nvmk_io_read
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
n=${2:-5000}
shift $(($# < 2 ? $# : 2))
modes=("$@")
[ ${#modes[@]} -eq 0 ] && modes=(excl batch pbatch shared locked shadow handle hbatch phbatch hshadow)
n=$((n - n % 32))
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run() { # mode name args...
	local mode=$1 name=$2
	shift 2
	valgrind --tool=callgrind --callgrind-out-file="$out/cg.$mode.$name" \
		--toggle-collect='nvmk_ns_submit_read' \
		--toggle-collect='nvmk_io_read' \
		--toggle-collect='nvmk_ns_submit_read_batch' \
		--toggle-collect='nvmk_io_read_batch' \
		--toggle-collect='nvmk_qpair_process_completions' \
		--toggle-collect='nvmk_qpair_batch_begin' \
		--toggle-collect='nvmk_qpair_batch_end' \
		"$build/bench/io_loop" -m "$mode" "$@" >"$out/stdout.$mode.$name" 2>"$out/vg.$mode.$name"
}
driver_ir() {
	callgrind_annotate --auto=no --threshold=100 --inclusive=no "$out/cg.$1" 2>/dev/null |
		awk '/src\/driver\/|include\/nvmekeep\// { gsub(",", "", $1); s += $1 } END { print s + 0 }'
}
total_ir() {
	callgrind_annotate --inclusive=no "$out/cg.$1" 2>/dev/null |
		awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 + 0; exit }'
}
per_io() { # mode driver|total -> figure
	local m=$1 f=${2}_ir
	local a b c e
	a=$($f "$m.A")
	b=$($f "$m.B")
	c=$($f "$m.C")
	e=$(sed -n 's/^empty_polls=//p' "$out/stdout.$m.A")
	awk -v a="$a" -v b="$b" -v c="$c" -v e="$e" -v n="$n" \
		'BEGIN { printf "%.1f", (a - c - e * (b - c) / n) / n }'
}

declare -A drv tot
for m in "${modes[@]}"; do
	run "$m" C 0 0
	run "$m" B 0 "$n"
	run "$m" A "$n" 0 100
	drv[$m]=$(per_io "$m" driver)
	tot[$m]=$(per_io "$m" total)
	echo "$m: $(sed -n 's/^empty_polls=/empty polls in the read run: /p' "$out/stdout.$m.A")" >&2
done
label() {
	case $1 in
	excl) echo "exclusive polled qpair, QD 1, submit + complete (MMIO doorbells)" ;;
	batch) echo "batch of 32 in one nvmk_ns_submit_read_batch call, then polls" ;;
	pbatch) echo "batch of 32, per call (nvmk_qpair_batch_begin/_end), then polls" ;;
	shared) echo "per-thread qpair (nvmk_ctrl_get_qpair: sync calls, CLI), QD 1" ;;
	locked) echo "SHARED qpair (NVMK_QPAIR_SHARED), QD 1, its lock included" ;;
	shadow) echo "shadow doorbells (the default), exclusive, QD 1" ;;
	handle) echo "I/O handle (nvmk_io_read), exclusive, QD 1 (MMIO doorbells)" ;;
	hbatch) echo "I/O handle, batch of 32 in one nvmk_io_read_batch call" ;;
	phbatch) echo "I/O handle, batch of 32, per call (batch_begin/_end)" ;;
	hshadow) echo "I/O handle, shadow doorbells, exclusive, QD 1" ;;
	esac
}
echo "instructions per 4 KiB read, N = $n, $(git describe --always --dirty 2>/dev/null || echo '?')"
printf '%-68s %8s %8s\n' path driver caller
for m in "${modes[@]}"; do
	printf '%-68s %8s %8s\n' "$(label "$m")" "${drv[$m]}" "${tot[$m]}"
done
for m in excl shadow; do
	[ -n "${tot[$m]:-}" ] &&
		printf '%-68s %8s %8s\n' "caller's thread total, built-in emulator ($([ $m = excl ] && echo MMIO || echo shadow) doorbells)" "-" "${tot[$m]}"
done
first=${modes[0]}
echo "top driver functions in the $first read run (self instructions for $n reads):"
callgrind_annotate --auto=no --threshold=100 --inclusive=no "$out/cg.$first.A" 2>/dev/null |
	grep -E 'src/driver/|include/nvmekeep/' | head -12
