#!/usr/bin/env bash
# Connections in their NBD handshake are handed over by servicing (issue 10):
# four raw clients (nbd_handshake.py) stop before their flags, inside an
# option header, inside option data and between options; nvmekeepd is
# serviced; then each finishes NBD_OPT_GO with the successor, writes, flushes
# and reads back. The successor must have adopted all four.
# Usage: test_handshake.sh BUILD_DIR
build=$(cd "${1:?build dir}" && pwd)
. "$(dirname "$0")/lib.sh"

start_emu
start_daemon
python3 "$(dirname "$0")/nbd_handshake.py" "$sock" "$d/go" >"$d/hs" 2>&1 &
hs=$!
bg_pids+=("$hs")
for _ in $(seq 200); do grep -q stalled "$d/hs" && break; sleep 0.05; done
grep -q stalled "$d/hs" || fail "clients did not reach their stall points: $(cat "$d/hs")"
timeout 60 "$nvmekeep" service >"$d/svc.out" 2>&1 || fail "servicing: $(cat "$d/svc.out")"
cat "$d/svc.out"
grep -q "4 connection(s) in their handshake handed over" "$d/log" ||
	fail "the handshakes were not saved: $(grep -i "handshake\|closed" "$d/log" | tail -5)"
grep -q "adopted 4 of 4 connection(s) in their handshake" "$d/log" ||
	fail "the successor did not adopt the 4 handshakes: $(grep -i handshake "$d/log" | tail -5)"
grep "handshake adopted" "$d/log" | sed 's/^.*servicing: /  /'
touch "$d/go"
timeout 60 tail --pid="$hs" -f /dev/null || fail "the clients hang: $(cat "$d/hs")"
wait "$hs" || fail "clients: $(cat "$d/hs")"
cat "$d/hs"
[ "$(grep -c "handshake finished" "$d/hs")" = 4 ] || fail "not all four finished: $(cat "$d/hs")"

step "a second servicing right after, with a client stalled before its flags"
rm -f "$d/go"
python3 "$(dirname "$0")/nbd_handshake.py" "$sock" "$d/go" >"$d/hs" 2>&1 &
hs=$!
bg_pids+=("$hs")
for _ in $(seq 200); do grep -q stalled "$d/hs" && break; sleep 0.05; done
timeout 60 "$nvmekeep" service >"$d/svc.out" 2>&1 || fail "second servicing: $(cat "$d/svc.out")"
timeout 60 "$nvmekeep" service >"$d/svc.out" 2>&1 || fail "third servicing: $(cat "$d/svc.out")"
touch "$d/go"
timeout 60 tail --pid="$hs" -f /dev/null || fail "the clients hang: $(cat "$d/hs")"
wait "$hs" || fail "clients after two servicings: $(cat "$d/hs")"
echo "two servicings back to back: $(grep -c "handshake finished" "$d/hs") clients finished"
"$nvmekeep" stop >/dev/null
wait "$daemon_pid" || fail "stop"
daemon_pid=
echo "PASS"
