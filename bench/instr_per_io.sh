#!/usr/bin/env bash
# Driver instructions per I/O (submit + complete, 4 KiB read, one PRP entry),
# counted by callgrind inside nvmk_ns_submit_read and
# nvmk_qpair_process_completions, attributing only instructions in the
# driver's own code (src/driver/ and the inline fast path in
# include/nvmekeep/). Emulator and backing instructions are excluded.
# Usage: bench/instr_per_io.sh [BUILD_DIR] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
n=${2:-20000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# the empty run measures the fixed cost outside the loop (bring-up paths
# that call the same two functions, if any) so it can be subtracted
for count in 0 "$n"; do
	valgrind --tool=callgrind --callgrind-out-file="$out/cg.$count" \
		--toggle-collect='nvmk_ns_submit_read' \
		--toggle-collect='nvmk_qpair_process_completions' \
		"$build/bench/io_loop" "$count" >/dev/null 2>"$out/vg.$count"
done

driver_ir() {
	callgrind_annotate --threshold=100 --inclusive=no "$1" 2>/dev/null |
		awk '/src\/driver\/|include\/nvmekeep\// { gsub(",", "", $1); s += $1 } END { print s + 0 }'
}
base=$(driver_ir "$out/cg.0")
total=$(driver_ir "$out/cg.$n")
echo "driver instructions: $total over $n I/Os (fixed part $base)"
awk -v t="$total" -v b="$base" -v n="$n" 'BEGIN { printf "instructions per I/O (submit + complete): %.1f\n", (t - b) / n }'
echo "top driver functions (self instructions):"
callgrind_annotate --threshold=100 --inclusive=no "$out/cg.$n" 2>/dev/null |
	grep -E 'src/driver/|include/nvmekeep/' | head -12
