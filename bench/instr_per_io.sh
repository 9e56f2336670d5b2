#!/usr/bin/env bash
# Driver instructions per I/O (submit + complete, 4 KiB read, one PRP entry),
# counted by callgrind inside nvmk_ns_submit_read and
# nvmk_qpair_process_completions, attributing only instructions in the
# driver's own code (src/driver/ and the inline fast path in
# include/nvmekeep/). Emulator and backing instructions are excluded.
#
# Three runs: C = setup only; B = K polls of an idle queue; A = N reads at
# QD 1, sleeping 100 us before each poll so that nearly every poll finds the
# completion; the E polls that still found nothing are subtracted.
#   empty poll cost e = (B - C) / K
#   per I/O           = (A - C - E * e) / N
# Usage: bench/instr_per_io.sh [BUILD_DIR] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
n=${2:-20000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run() { # name args...
	local name=$1
	shift
	valgrind --tool=callgrind --callgrind-out-file="$out/cg.$name" \
		--toggle-collect='nvmk_ns_submit_read' \
		--toggle-collect='nvmk_qpair_process_completions' \
		"$build/bench/io_loop" "$@" >"$out/stdout.$name" 2>"$out/vg.$name"
}
driver_ir() {
	callgrind_annotate --threshold=100 --inclusive=no "$out/cg.$1" 2>/dev/null |
		awk '/src\/driver\/|include\/nvmekeep\// { gsub(",", "", $1); s += $1 } END { print s + 0 }'
}

run C 0 0
run B 0 "$n"
run A "$n" 0 100
C=$(driver_ir C)
B=$(driver_ir B)
A=$(driver_ir A)
E=$(sed -n 's/^empty_polls=//p' "$out/stdout.A")
echo "setup: $C, idle polls: $B for $n polls, reads: $A for $n reads with $E empty polls"
awk -v a="$A" -v b="$B" -v c="$C" -v e="$E" -v n="$n" 'BEGIN {
	ep = (b - c) / n
	printf "empty poll: %.1f instructions\n", ep
	printf "driver instructions per I/O (submit + complete): %.1f\n", (a - c - e * ep) / n
}'
echo "top driver functions in the read run (self instructions):"
callgrind_annotate --threshold=100 --inclusive=no "$out/cg.A" 2>/dev/null |
	grep -E 'src/driver/|include/nvmekeep/' | head -12
