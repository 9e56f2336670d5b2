# Shared by the servicing tests: nvmekeep-emu + nvmekeepd over vfio-user in a
# fresh mktemp -d directory. Source with $build set; sets $d, $ctl, $sock.
set -euo pipefail
nvmekeepd=$build/tools/nvmekeepd/nvmekeepd
nvmekeep=$build/tools/nvmekeep
emu=$build/tools/nvmekeep-emu
d=$(mktemp -d)
emu_pid= daemon_pid= bg_pids=()
cleanup() {
	for p in "${bg_pids[@]}" $daemon_pid $emu_pid; do kill -KILL "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$d"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	[ -f "$d/log" ] && { echo "--- nvmekeepd log (tail)"; grep -v "debug:" "$d/log" | tail -25; } >&2
	[ -n "${NVMKD_KEEP_LOG:-}" ] && cp "$d/log" "$NVMKD_KEEP_LOG"
	exit 1
}
step() { echo "== $*"; }
# The system interpreter when there is one: a version manager's python3 shim
# (pyenv) in front of it costs about a second per call on a loaded machine,
# which the bounded polling loops below would count against the daemon.
python3() {
	if [ -x /usr/bin/python3 ]; then /usr/bin/python3 "$@"; else command python3 "$@"; fi
}
sock=$d/nbd.sock ctl=$d/ctl.sock
export NVMEKEEP_CONTROL=$ctl
uri() { echo "nbd+unix:///?socket=$sock"; }

start_emu() {
	"$emu" --socket "$d/emu.sock" --control "$d/emu.ctl" --ns ram:256M:512 >"$d/emu.log" 2>&1 &
	emu_pid=$!
	for _ in $(seq 100); do [ -S "$d/emu.ctl" ] && [ -S "$d/emu.sock" ] && break; sleep 0.05; done
	[ -S "$d/emu.sock" ] || fail "nvmekeep-emu did not start: $(cat "$d/emu.log")"
}

start_daemon() {
	rm -f "$ctl"
	"$nvmekeepd" --device "vfio-user:$d/emu.sock" --listen "unix:$sock" --control "$ctl" \
		--threads 2 -v ${NVMKD_EXTRA:-} >>"$d/log" 2>&1 &
	daemon_pid=$!
	for _ in $(seq 200); do [ -S "$ctl" ] && [ -S "$sock" ] && break; sleep 0.05; done
	[ -S "$ctl" ] || fail "nvmekeepd did not start"
	"$nvmekeep" status >/dev/null || fail "nvmekeepd does not answer"
}

# emu_stat KEY: a figure of the emulator's stats (controller 0): cc_enables,
# resets, admin:0xNN (admin command count by opcode)
emu_stat() {
	python3 - "$d/emu.ctl" "$1" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b'{"cmd":"stats"}\n')
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
c = json.loads(buf)["controllers"][0]
k = sys.argv[2]
if k.startswith("admin:"):
    print(c["admin_commands"].get(k[6:], 0))
else:
    print(c[k])
PY
}

# emu_fault JSON: arm a fault rule in the emulator ({"kind":"delay",...})
emu_fault() {
	python3 - "$d/emu.ctl" "$1" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
req = json.loads(sys.argv[2])
req["cmd"] = "fault"
s.sendall(json.dumps(req).encode() + b"\n")
r = json.loads(s.recv(65536))
if not r.get("ok"):
    sys.exit("fault refused: %s" % r)
PY
}

# wait_conns N: until nvmekeepd has N NBD connections in transmission (10 s)
wait_conns() {
	for _ in $(seq 200); do
		n=$("$nvmekeep" status -o json 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin)
print(sum(1 for c in j["export"]["connections"] if c.get("state") == "transmission"))' 2>/dev/null || echo 0)
		[ "$n" -ge "$1" ] && return 0
		sleep 0.05
	done
	fail "only $n of $1 NBD connections after 10 s"
}

# Wait until at least $1 NBD requests are in flight (read by the daemon and
# not answered yet), 10 s at most.
wait_inflight() {
	for _ in $(seq 200); do
		n=$("$nvmekeep" status -o json 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin)
print(sum(c.get("in_flight", 0) for c in j["export"]["connections"]))' 2>/dev/null || echo 0)
		[ "$n" -ge "$1" ] && return 0
		sleep 0.05
	done
	fail "only $n of $1 requests in flight after 10 s"
}
