#!/usr/bin/env bash
# TLS connections across a servicing (issue 10, docs/servicing.md "TLS"):
# they are not handed over (the GnuTLS session lives in the process, and
# kernel TLS is not used), so the daemon closes them cleanly: TLS
# close_notify, then the end of the stream, which the client sees as the
# server's disconnect. A plaintext connection on the same TCP listener is
# handed over, and a new TLS connection to the successor works.
# Usage: test_tls.sh BUILD_DIR
build=$(cd "${1:?build dir}" && pwd)
. "$(dirname "$0")/lib.sh"

mkdir "$d/creds"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
	-subj /CN=localhost -keyout "$d/creds/server-key.pem" -out "$d/creds/server-cert.pem" \
	>"$d/openssl.log" 2>&1 || fail "openssl: $(cat "$d/openssl.log")"
start_emu
"$nvmekeepd" --device "vfio-user:$d/emu.sock" --listen tcp:127.0.0.1:0 --control "$ctl" \
	--threads 2 --tls on --tls-creds "$d/creds" -v >>"$d/log" 2>&1 &
daemon_pid=$!
for _ in $(seq 200); do grep -q "serving NBD on tcp:" "$d/log" && [ -S "$ctl" ] && break; sleep 0.05; done
port=$(sed -n 's/.*serving NBD on tcp:127.0.0.1:\([0-9]*\).*/\1/p' "$d/log" | head -1)
[ -n "$port" ] || fail "nvmekeepd on TCP with TLS did not start"
python3 "$(dirname "$0")/nbd_tls.py" "$port" "$d/go" >"$d/tls" 2>&1 &
cl=$!
bg_pids+=("$cl")
for _ in $(seq 200); do grep -q ready "$d/tls" && break; sleep 0.05; done
grep -q ready "$d/tls" || fail "client: $(cat "$d/tls")"
timeout 60 "$nvmekeep" service >"$d/svc.out" 2>&1 || fail "servicing: $(cat "$d/svc.out")"
cat "$d/svc.out"
grep -q "closing or TLS: closed" "$d/log" || fail "the TLS connection was not closed at the save"
grep -q "adopted 1 listener(s), 1 of 1 connection(s)" "$d/log" ||
	fail "the plaintext connection was not handed over: $(grep adopted "$d/log" | tail -2)"
touch "$d/go"
timeout 60 tail --pid="$cl" -f /dev/null || fail "the client hangs: $(cat "$d/tls")"
wait "$cl" || fail "client: $(cat "$d/tls")"
cat "$d/tls"
"$nvmekeep" stop >/dev/null
wait "$daemon_pid" || fail "stop"
daemon_pid=
echo "PASS"
