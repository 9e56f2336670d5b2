# SPDX-License-Identifier: MIT
# guest_lib.sh - what the guest_*.sh cases share (sourced, POSIX sh): the
# boot's mode from the kernel command line and the PASS/FAIL line of a case.
# The sourcing script sets KIND (cli, nbd, service) and T (its scratch
# directory, where $T/err collects a case's error output).
MODE=$(sed -n 's/.*nvmk\.mode=\([a-z0-9]*\).*/\1/p' /proc/cmdline)
pass=0
fail=0
res() { # status, case
	if [ "$1" = 0 ]; then
		echo "PASS $MODE $KIND $2"
		pass=$((pass + 1))
	else
		echo "FAIL $MODE $KIND $2"
		fail=$((fail + 1))
		[ -s "$T/err" ] && sed 's/^/    /' "$T/err"
	fi
	: > "$T/err"
}
