#!/usr/bin/env bash
# The CLI's error contract and bench's reporting: malformed DEVICE strings and
# numbers are usage errors (exit 2) naming what was wrong and what is
# accepted; numbers are decimal or 0x hex (a leading 0 is decimal, never
# octal); transfers larger than one command are split (read/write) or refused
# before any I/O (bench); no raw errno text such as "Argument list too long";
# bench shows the current rate and time left, prints its summary on Ctrl-C,
# and writes JSON floats without noise digits. TAP output.
set -u
CLI=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n=0
fail=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); echo "not ok $n - $1"; fail=$((fail + 1)); }

# expect CODE 'REGEX' -- ARGS...
expect() {
	local code=$1 re=$2
	shift 3
	local out rc
	out=$("$CLI" "$@" 2>&1 </dev/null)
	rc=$?
	if [ "$rc" -eq "$code" ] && grep -Eq -- "$re" <<<"$out" &&
		! grep -q "Argument list too long" <<<"$out"; then
		ok "nvmekeep $* -> $code"
	else
		bad "nvmekeep $* -> expected exit $code and /$re/, got exit $rc:"
		sed 's/^/#   /' <<<"$out"
	fi
}

# malformed DEVICE strings: usage errors naming DEVICE and the accepted forms
expect 2 "invalid DEVICE '0000:zz': not a PCI address: DDDD:BB:DD.F has 12 characters, 7 given; DEVICE is 'emu', 'emu:FILE', a PCI address DDDD:BB:DD.F" -- id-ctrl 0000:zz
expect 2 "invalid DEVICE 'emu:': a FILE must follow the colon" -- id-ns emu: -n 1
expect 2 "invalid DEVICE 'disk0': not a device name; DEVICE is 'emu'" -- list disk0
expect 2 "invalid DEVICE 'vfio-user:': a SOCKET path must follow the colon" -- id-ctrl vfio-user:
expect 2 "invalid DEVICE '0000:00:20.0': not a PCI address: device 20 is above 1f" -- id-ctrl 0000:00:20.0
expect 2 "invalid DEVICE '/dev/nvme0x': not a kernel NVMe device: /dev/nvmeXnY" -- read /dev/nvme0x -s 0
expect 2 "nvmekeep read: invalid DEVICE '0000:zz'"       -- read 0000:zz -s 0
expect 2 "nvmekeep bench: invalid DEVICE 'emu:'"         -- bench emu: --time 1
# well-formed but absent is not a usage error: the operation fails (1)
expect 1 "no PCI function 0000:00:1f.0"                  -- id-ctrl 0000:00:1f.0
# the short form BB:DD.F is the same function in domain 0000
expect 1 "no PCI function 0000:00:1f.0"                  -- id-ctrl 00:1f.0

# numbers: decimal or 0x hex
expect 1 "namespace 10 is not active"                    -- id-ns -n 010
expect 1 "namespace 16 is not active"                    -- id-ns -n 0x10
expect 2 "invalid value '0x' for --namespace-id.*decimal or 0x hex" -- id-ns -n 0x
expect 2 "invalid value '0x1g' for --namespace-id"       -- id-ns -n 0x1g
expect 2 "invalid value '08x' for --start-block"         -- read -s 08x
expect 2 "invalid value ' 1' for --start-block"          -- read -s " 1"
expect 2 "invalid value '0' for --timeout: expected an integer from 1 to 3600" -- service --timeout 0
expect 2 "invalid value '10s' for --timeout"                -- service --timeout 10s

# transfers: read/write split a large range into commands the device takes
head -c $((4096 * 1024)) /dev/urandom >"$TMP/big"
expect 0 "write: success \(4194304 bytes at block 100\)" -- write "emu:$TMP/img" -s 100 -c 8191 -d "$TMP/big"
expect 0 "read: success \(4194304 bytes from block 100\)" -- read "emu:$TMP/img" -s 100 -c 8191 -d "$TMP/big.back"
if cmp -s "$TMP/big" "$TMP/big.back"; then ok "4 MiB written and read back, split by MDTS"; else bad "4 MiB read back differs"; fi
expect 0 "read: success \(33553920 bytes from block 0\)"  -- read -s 0 -c 65534 -d "$TMP/x"
# bench: one command per I/O, so a larger --bs is refused before any I/O
expect 2 "--bs 4194304 is more than the largest transfer emu namespace 2 takes in one command \(128 KiB, from MDTS\); use --bs 128K or less" -- bench --bs 4M --mode irq --time 1

# bench: progress line (current rate, time left), Ctrl-C prints the summary
"$CLI" bench --mode irq --time 60 >"$TMP/bench.out" 2>"$TMP/bench.err" &
pid=$!
for _ in $(seq 50); do # up to 10 s for two progress lines
	[ "$(grep -c 's left' "$TMP/bench.err" 2>/dev/null)" -ge 2 ] && break
	sleep 0.2
done
kill -INT "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
	kill -KILL "$pid"
	bad "bench did not stop within 10 s of SIGINT"
fi
wait "$pid"
rc=$?
if grep -Eq '^bench: [0-9]+/60 s, now [0-9]+ IOPS [0-9.]+ MiB/s, [0-9]+ s left$' "$TMP/bench.err"; then
	ok "progress line shows the current rate and the time left"
else
	bad "no progress line with rate and time left:"
	sed 's/^/#   /' "$TMP/bench.err"
fi
if [ "$rc" -eq 130 ] && grep -q "IOPS      :" "$TMP/bench.out" &&
	grep -Eq "I/Os      : [1-9][0-9]* completed, 0 errors \(interrupted\)" "$TMP/bench.out"; then
	ok "Ctrl-C: summary of what ran, exit 130"
else
	bad "Ctrl-C: expected a summary and exit 130, got exit $rc:"
	sed 's/^/#   /' "$TMP/bench.out"
fi

# bench -o json: floats with fixed decimals (json-c's default shows %.17g noise)
out=$("$CLI" bench --mode irq --ios 2000 -o json 2>&1)
if grep -Eq '"seconds":[0-9]+\.[0-9]{3},?$' <<<"$out" && grep -Eq '"iops":[0-9]+\.[0-9],?$' <<<"$out" &&
	grep -Eq '"mib_per_s":[0-9]+\.[0-9],?$' <<<"$out" && grep -q '"interrupted":false' <<<"$out" &&
	python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); assert d["ios"] == 2000' <<<"$out"; then
	ok "bench -o json: seconds with 3 decimals, iops and mib_per_s with 1"
else
	bad "bench -o json floats:"
	sed 's/^/#   /' <<<"$out"
fi

echo "1..$n"
[ "$fail" -eq 0 ]
