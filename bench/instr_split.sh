#!/usr/bin/env bash
# The two halves of bench/instr_per_io.sh's figure, each counted on its own
# by callgrind (--toggle-collect), instructions per 4 KiB read:
#   submit  inside the submit call (nvmk_ns_submit_read, nvmk_io_read or
#           nvmk_ns_submit_read_batch;
#           batch modes: nvmk_qpair_batch_begin/_end too). No polls: exact,
#           except the one submit per clock tick that takes the general path
#           (ctrl->gate; ~0.05 per tick over N reads).
#   poll    inside nvmk_qpair_process_completions, sleeping S us (default
#           500) before each poll so that nearly every poll finds its
#           completion; the E polls that found nothing are subtracted at the
#           cost of an idle poll (measured: K = N idle polls).
# Each as driver / caller (see bench/instr_per_io.sh for what they cover).
# Usage: bench/instr_split.sh [BUILD_DIR] [N] [S] [MODE...]  (default: all ten)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
n=${2:-3200}
s=${3:-500}
shift $(($# < 3 ? $# : 3))
modes=("$@")
[ ${#modes[@]} -eq 0 ] && modes=(excl batch pbatch shared locked shadow handle hbatch phbatch hshadow)
n=$((n - n % 32))
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

cg() { # out-file toggles... -- io_loop args...
	local f=$1
	shift
	local tc=()
	while [ "$1" != -- ]; do
		tc+=("--toggle-collect=$1")
		shift
	done
	shift
	valgrind --tool=callgrind --callgrind-out-file="$out/$f" "${tc[@]}" \
		"$build/bench/io_loop" "$@" >"$out/$f.out" 2>/dev/null
}
driver_ir() {
	callgrind_annotate --auto=no --threshold=100 --inclusive=no "$out/$1" 2>/dev/null |
		awk '/src\/driver\/|include\/nvmekeep\// { gsub(",", "", $1); s += $1 } END { print s + 0 }'
}
total_ir() {
	callgrind_annotate --inclusive=no "$out/$1" 2>/dev/null |
		awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 + 0; exit }'
}
echo "instructions per 4 KiB read, halves counted apart, N = $n, S = $s us, $(git describe --always --dirty 2>/dev/null || echo '?')"
printf '%-8s %16s %16s %16s %s\n' mode "submit drv/call" "poll drv/call" "sum drv/call" "(empty polls)"
for m in "${modes[@]}"; do
	cg "s.$m" nvmk_ns_submit_read nvmk_io_read nvmk_ns_submit_read_batch nvmk_io_read_batch nvmk_qpair_batch_begin nvmk_qpair_batch_end \
		-- -m "$m" "$n" 0 "$s"
	cg "p.$m" nvmk_qpair_process_completions -- -m "$m" "$n" 0 "$s"
	cg "i.$m" nvmk_qpair_process_completions -- -m "$m" 0 "$n"
	e=$(sed -n 's/^empty_polls=//p' "$out/p.$m.out")
	awk -v m="$m" -v n="$n" -v e="$e" \
		-v sd="$(driver_ir "s.$m")" -v st="$(total_ir "s.$m")" \
		-v pd="$(driver_ir "p.$m")" -v pt="$(total_ir "p.$m")" \
		-v id="$(driver_ir "i.$m")" -v it="$(total_ir "i.$m")" \
		'BEGIN { a = sd / n; b = st / n; c = (pd - e * id / n) / n; d = (pt - e * it / n) / n
			 printf "%-8s %7.1f /%7.1f %7.1f /%7.1f %7.1f /%7.1f (%d)\n", m, a, b, c, d, a + c, b + d, e }'
done
