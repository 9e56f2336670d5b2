#!/bin/sh
# nvmekeep CLI against an nvmekeep-emu process: vfio-user:PATH as a device,
# `nvmekeep emu stats|fault --control`, and a clean stop on SIGTERM with the
# file namespace's data on disk.
# usage: test_cli_vfu.sh NVMEKEEP NVMEKEEP_EMU
set -u
CLI=$1
EMU=$2
D=$(mktemp -d)
PID=
fails=0
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null
	rm -rf "$D"
}
trap cleanup EXIT
check() { # name, expected exit code, command...
	name=$1 want=$2
	shift 2
	"$@" >"$D/out" 2>"$D/err"
	got=$?
	if [ "$got" != "$want" ]; then
		echo "not ok - $name: exit $got, expected $want"
		sed 's/^/#   /' "$D/err"
		fails=$((fails + 1))
	else
		echo "ok - $name"
	fi
}

"$EMU" --socket "$D/s" --control "$D/c" --ns "file:$D/disk:512" --serial CLITEST 2>"$D/emu.log" &
PID=$!
for i in $(seq 1 200); do [ -S "$D/c" ] && break; sleep 0.02; done

check "id-ctrl over vfio-user" 0 "$CLI" id-ctrl "vfio-user:$D/s"
grep -q "CLITEST" "$D/out" || { echo "not ok - serial shown"; fails=$((fails + 1)); }
head -c 65536 /dev/urandom >"$D/in"
check "write over vfio-user" 0 "$CLI" write "vfio-user:$D/s" -s 64 -c 127 -d "$D/in"
check "read over vfio-user" 0 "$CLI" read "vfio-user:$D/s" -s 64 -c 127 -d "$D/back"
cmp -s "$D/in" "$D/back" && echo "ok - data read back" || { echo "not ok - data read back"; fails=$((fails + 1)); }
check "missing socket" 1 "$CLI" id-ctrl "vfio-user:$D/nope"
grep -q "no vfio-user server socket" "$D/err" || { echo "not ok - missing socket message"; fails=$((fails + 1)); }
check "emu stats json" 0 "$CLI" emu stats --control "$D/c" -o json
grep -q '"cc_enables":' "$D/out" || { echo "not ok - stats fields"; fails=$((fails + 1)); }
check "emu stats" 0 "$CLI" emu stats --control "$D/c"
grep -q "identify" "$D/out" || { echo "not ok - admin opcode names"; fails=$((fails + 1)); }
grep -q "adopted *: 0" "$D/out" || { echo "not ok - adopted shown"; fails=$((fails + 1)); }
check "emu fault" 0 "$CLI" emu fault --control "$D/c" --kind status --opcode 2 --count 1 --status 641
check "read fails once" 1 "$CLI" read "vfio-user:$D/s" -s 0 -c 0 -d "$D/x"
check "read works again" 0 "$CLI" read "vfio-user:$D/s" -s 0 -c 0 -d "$D/x"
check "emu fault bad kind" 1 "$CLI" emu fault --control "$D/c" --kind sparkle
check "emu fault no control" 2 "$CLI" emu fault --kind hang
check "emu stats bad -o" 2 "$CLI" emu stats --control "$D/c" -o yaml
check "emu stats unreachable" 1 "$CLI" emu stats --control "$D/none"

kill -TERM "$PID"
wait "$PID"
rc=$?
PID=
[ "$rc" = 0 ] && echo "ok - SIGTERM stops cleanly" || { echo "not ok - SIGTERM exit $rc"; fails=$((fails + 1)); }
[ ! -e "$D/s" ] && echo "ok - socket removed" || { echo "not ok - socket left"; fails=$((fails + 1)); }
dd if="$D/disk" of="$D/ondisk" bs=512 skip=64 count=128 2>/dev/null
cmp -s "$D/in" "$D/ondisk" && echo "ok - file namespace holds the data" || { echo "not ok - file data"; fails=$((fails + 1)); }
check "bad --ns" 2 "$EMU" --socket "$D/s2" --ns tape:1G
check "bad --fd" 2 "$EMU" --fd 0 </dev/null
echo "1..$fails failures"
[ "$fails" = 0 ]
