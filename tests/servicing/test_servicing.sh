#!/usr/bin/env bash
# Servicing under load (issue 10): nvmekeep-emu + nvmekeepd over vfio-user,
# fio (nbd engine: random writes verified with crc32c while writing, i.e.
# reads too, QD 16, two connections) running while nvmekeepd is serviced
# COUNT times with `nvmekeep service`. fio must finish with no error; data
# written before the first servicing reads back after the last; the
# emulator's stats: keep-alive on: no reset, no CC.EN transition, no
# IDENTIFY, no Create I/O SQ/CQ after the first bring-up; keep-alive off: one
# shutdown and bring-up (CC.EN 0 -> 1) per servicing.
# Usage: test_servicing.sh BUILD_DIR on|off [COUNT]
build=$(cd "${1:?build dir}" && pwd)
mode=${2:-on}
count=${3:-20}
. "$(dirname "$0")/lib.sh"
[ "$mode" = off ] && export OPENHCL_NVME_KEEP_ALIVE=disabled

start_emu
start_daemon
grep -q "OPENHCL_NVME_KEEP_ALIVE=$([ "$mode" = off ] && echo disabled || echo host,privatepool)" \
	"$d/log" || fail "keep-alive is not $mode: $(grep KEEP_ALIVE "$d/log" | tail -1)"

step "data written before the first servicing"
head -c $((4 << 20)) /dev/urandom >"$d/before.img"
qemu-img convert -n -f raw -O raw "$d/before.img" "$(uri)" >/dev/null || fail "write before"
# the first bring-up is done: these must not move (keep-alive on)
resets0=$(emu_stat resets) en0=$(emu_stat cc_enables)
id0=$(emu_stat admin:0x06) csq0=$(emu_stat admin:0x01) ccq0=$(emu_stat admin:0x05)

if [ "$mode" = on ]; then
	step "requests at the device during the servicing are answered by the successor"
	head -c 65536 /dev/urandom >"$d/inflight.img"
	qemu-io -f raw -c "write -s $d/inflight.img 150M 64k" "$(uri)" >/dev/null || fail "write"
	# every I/O queue (one per nbd thread) holds its next read and write 800 ms
	for q in 1 2; do
		for opc in 1 2; do
			emu_fault "{\"kind\":\"delay\",\"qid\":$q,\"opcode\":$opc,\"count\":1,\"delay_us\":1500000}"
		done
	done
	qemu-io -f raw -c "write -P 0x5a 200M 64k" "$(uri)" >"$d/qw" 2>&1 &
	qw=$!
	qemu-io -f raw -c "read -v 150M 64k" "$(uri)" >"$d/qr" 2>&1 &
	qr=$!
	bg_pids+=("$qw" "$qr")
	wait_conns 2
	# both requests read by the daemon and held at the device (the delay
	# faults above), not a guess at how long that takes on a loaded machine
	wait_inflight 2
	timeout 60 "$nvmekeep" service >"$d/svc.out" 2>&1 || fail "servicing: $(cat "$d/svc.out")"
	grep -q "saved .* [1-9][0-9]* request(s) at the device" "$d/log" ||
		fail "no request was at the device when the state was saved"
	grep "saved .* request(s) at the device" "$d/log" | tail -1
	wait "$qw" || fail "delayed write: $(cat "$d/qw")"
	wait "$qr" || fail "delayed read: $(cat "$d/qr")"
	grep -q "wrote 65536" "$d/qw" || fail "delayed write: $(cat "$d/qw")"
	qemu-io -f raw -c "read -P 0x5a 200M 64k" "$(uri)" >"$d/qv" 2>&1 || fail "read back"
	grep -q "Pattern verification failed" "$d/qv" && fail "the write answered by the successor is not on the device"
	# the read was answered from the request buffer the successor inherited
	python3 - "$d/qr" "$d/inflight.img" <<'PY' || fail "the read answered by the successor returned other data"
import sys, re
got = bytearray()
for line in open(sys.argv[1]):
    if re.match(r"^[0-9a-f]{8}:  ", line):
        got += bytes(int(x, 16) for x in line[11:11 + 48].split())
want = open(sys.argv[2], "rb").read()
sys.exit(0 if got == want else "got %d bytes, %s" % (len(got), "differ" if len(got) == len(want) else "short"))
PY
	before_fio=1
else
	before_fio=0
fi

step "fio: 2 connections, randwrite QD16, crc32c verify (backlog reads), $count servicings"
cat >"$d/job.fio" <<JOB
[global]
ioengine=nbd
uri=$(uri)
rw=randwrite
bs=4k
iodepth=16
size=24m
rate_iops=1500
verify=crc32c
verify_backlog=256
verify_fatal=1
do_verify=1
[c1]
offset=16m
[c2]
offset=64m
JOB
(cd "$d" && exec fio "$d/job.fio" --output="$d/fio.out" >"$d/fio.err" 2>&1) &
fio_pid=$!
bg_pids+=("$fio_pid")
sleep 0.5
under_load=0
for i in $(seq "$count"); do
	kill -0 "$fio_pid" 2>/dev/null && under_load=$((under_load + 1))
	timeout 60 "$nvmekeep" service --timeout 10 >"$d/svc.out" 2>&1 ||
		fail "servicing $i: $(cat "$d/svc.out")"
	grep -q "servicing $((i + before_fio)), keep-alive $mode" "$d/svc.out" ||
		fail "servicing $i: $(cat "$d/svc.out")"
	sed -n 's/.*blackout \([0-9.]*\) ms.*/\1/p' "$d/svc.out" >>"$d/blackouts"
	sleep 0.05
done
for _ in $(seq 600); do kill -0 "$fio_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$fio_pid" 2>/dev/null && fail "fio still running 60 s after the last servicing"
wait "$fio_pid" || fail "fio failed: $(cat "$d/fio.err"; grep -i err "$d/fio.out")"
[ "$(grep -c 'err= 0' "$d/fio.out")" = 2 ] || fail "fio errors: $(cat "$d/fio.out")"
[ "$under_load" -ge 1 ] || fail "fio ended before the first servicing"
carried=$(sed -n 's/.*servicing: saved .*, \([0-9]*\) request(s) at the device/\1/p' "$d/log" |
	awk '{s += $1} END {print s + 0}')
echo "NBD requests at the device across the exec, all servicings: $carried"
echo "$under_load of $count servicings ran with fio running;" \
	"blackouts (ms): $(sort -n "$d/blackouts" | tr '\n' ' ')"

step "data from before the first servicing"
qemu-img convert -f raw -O raw "$(uri)" "$d/after.img" >/dev/null || fail "read after"
cmp -n $((4 << 20)) "$d/before.img" "$d/after.img" || fail "data written before differs"

step "emulator stats (keep-alive $mode)"
resets1=$(emu_stat resets) en1=$(emu_stat cc_enables)
id1=$(emu_stat admin:0x06) csq1=$(emu_stat admin:0x01) ccq1=$(emu_stat admin:0x05)
echo "resets $resets0 -> $resets1, CC.EN 0->1 $en0 -> $en1, IDENTIFY $id0 -> $id1," \
	"Create SQ $csq0 -> $csq1, Create CQ $ccq0 -> $ccq1"
if [ "$mode" = on ]; then
	[ "$resets1" = "$resets0" ] || fail "controller reset during servicing"
	[ "$en1" = "$en0" ] || fail "CC.EN went 0 -> 1 again with keep-alive"
	[ "$id1" = "$id0" ] || fail "IDENTIFY sent after the first bring-up"
	[ "$csq1" = "$csq0" ] && [ "$ccq1" = "$ccq0" ] || fail "I/O queue created after bring-up"
else
	# CC.EN = 0 after CC.SHN is a controller reset (NVMe base 2.0 3.7.2)
	[ "$resets1" = $((resets0 + count)) ] || fail "expected $count shutdowns, saw $((resets1 - resets0))"
	[ "$en1" = $((en0 + count)) ] || fail "expected $count bring-ups, saw $((en1 - en0))"
fi

step "status and stop"
"$nvmekeep" status -o json >"$d/st" || fail "status"
grep -q "\"count\":$((count + before_fio))" "$d/st" || fail "status does not show the servicings"
"$nvmekeep" status | grep "^servicing: $((count + before_fio)) done" || fail "status (text): no servicing line"
grep -q '"first_reply_us":[0-9]' "$d/st" || fail "status: no first reply after the last servicing"
"$nvmekeep" stop >/dev/null || fail "stop"
for _ in $(seq 200); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.05; done
wait "$daemon_pid" || fail "nvmekeepd exited with an error after servicing"
daemon_pid=
echo "PASS"
