#!/usr/bin/env bash
# Servicing blackout under load (issue 10): nvmekeep-emu + nvmekeepd over
# vfio-user, a steady fio load over NBD (nbd engine, 4 KiB random reads and
# writes, QD 16, two connections, 2000 IOPS each), COUNT servicings with
# `nvmekeep service`, keep-alive on and off. Prints, as p50 / p99 / max over
# the servicings:
#   server blackout  quiesce start -> the successor serving again (its I/O
#                    threads running with the adopted connections and
#                    requests), measured by the daemon (CLOCK_MONOTONIC,
#                    across the exec) and returned to `nvmekeep service`;
#                    and quiesce start -> the first reply the successor sent
#                    (status "first_reply_us", read before the next servicing)
#   client latency   per servicing, the longest completion latency of an I/O
#                    completing between the request to service and 100 ms
#                    after its answer (fio's per-I/O latency log, Unix time)
# Usage: bench/servicing.sh [BUILD_DIR] [COUNT, default 100] [MODES, default "on off"]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
count=${2:-100}
modes=${3:-on off}
nvmekeepd=$build/tools/nvmekeepd/nvmekeepd
nvmekeep=$build/tools/nvmekeep
emu=$build/tools/nvmekeep-emu
command -v fio >/dev/null || { echo "bench/servicing.sh: fio is missing (scripts/deps.sh)" >&2; exit 1; }
d=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -n "${BENCH_KEEP:-}" ] && echo "kept $d" >&2 || rm -rf "$d"
}
trap cleanup EXIT
now_ms() { date +%s%3N; }

run_mode() {
	local mode=$1 m=$d/$1
	mkdir -p "$m"
	"$emu" --socket "$m/emu.sock" --ns ram:256M:512 2>"$m/emu.log" &
	pids+=($!)
	for _ in $(seq 100); do [ -S "$m/emu.sock" ] && break; sleep 0.05; done
	if [ "$mode" = off ]; then export OPENHCL_NVME_KEEP_ALIVE=disabled; else unset OPENHCL_NVME_KEEP_ALIVE; fi
	"$nvmekeepd" -q --device "vfio-user:$m/emu.sock" --listen "unix:$m/nbd.sock" \
		--control "$m/ctl.sock" --threads 2 >"$m/d.out" 2>"$m/d.log" &
	pids+=($!)
	for _ in $(seq 200); do [ -S "$m/ctl.sock" ] && break; sleep 0.05; done
	(cd "$m" && exec fio --name=load --ioengine=nbd --uri="nbd+unix:///?socket=$m/nbd.sock" \
		--rw=randrw --bs=4k --iodepth=16 --numjobs=2 --size=64m --rate_iops=1000,1000 \
		--time_based --runtime=$((count + 60)) --write_lat_log="$m/lat" --log_avg_msec=0 \
		--log_unix_epoch=1 --output="$m/fio.out" >/dev/null 2>&1) &
	local fio=$!
	pids+=($fio)
	sleep 2
	: >"$m/svc"
	for i in $(seq "$count"); do
		local t0 t1
		t0=$(now_ms)
		"$nvmekeep" service --control "$m/ctl.sock" -o json >"$m/one" 2>&1 ||
			{ echo "servicing $i failed: $(cat "$m/one")" >&2; exit 1; }
		t1=$(now_ms)
		sleep 0.2
		# the first reply after the restore is known once it went out
		"$nvmekeep" status --control "$m/ctl.sock" -o json >"$m/st"
		python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); k=json.load(open(sys.argv[2]))["servicing"]; print(j["blackout_us"], j["save_us"], j["exec_us"], j["restore_us"], k.get("first_reply_us", -1), j.get("quiesce_us", -1), j.get("manager_restore_us", -1), j.get("loaded_us", -1))' "$m/one" "$m/st" |
			sed "s/^/$t0 $t1 /" >>"$m/svc"
	done
	sleep 0.3
	kill -INT "$fio" 2>/dev/null || true
	wait "$fio" || true
	grep -q "err= 0" "$m/fio.out" || { echo "fio reported errors ($mode):" >&2; cat "$m/fio.out" >&2; exit 1; }
	python3 - "$mode" "$m/svc" "$m"/lat_clat.*.log <<'PY'
import sys
mode, svc, logs = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = [tuple(int(x) for x in l.split()) for l in open(svc)]
comp = []  # (completion time ms since epoch, latency us)
for f in logs:
    for line in open(f):
        p = [x.strip() for x in line.split(",")]
        comp.append((int(p[0]), int(p[1]) / 1000.0))
comp.sort()
def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]
import bisect
times = [c[0] for c in comp]
client = []
for t0, t1, *_ in rows:
    a, b = bisect.bisect_left(times, t0), bisect.bisect_right(times, t1 + 100)
    client.append(max((comp[k][1] for k in range(a, b)), default=0.0))
server = [r[2] / 1000.0 for r in rows]
first = [r[6] / 1000.0 for r in rows if r[6] >= 0]
print("keep-alive %-3s %4d servicings  server blackout ms p50 %7.2f  p99 %7.2f  max %7.2f"
      % (mode, len(rows), pct(server, .5), pct(server, .99), max(server)))
if first:
    print("                          to the first reply ms p50 %7.2f  p99 %7.2f  max %7.2f  (%d)"
          % (pct(first, .5), pct(first, .99), max(first), len(first)))
print("                                client latency ms p50 %7.2f  p99 %7.2f  max %7.2f"
      % (pct(client, .5) / 1000, pct(client, .99) / 1000, max(client) / 1000))
for name, k in (("quiesce", 7), ("save (incl. quiesce)", 3), ("exec + loading", 4),
                ("  of it to constructors", 9),
                ("restore", 5), ("  of it manager", 8)):
    v = [r[k] / 1000.0 for r in rows if len(r) > k and r[k] >= 0]
    if v:
        print("                                %-20s ms p50 %7.2f  p99 %7.2f  max %7.2f"
              % (name, pct(v, .5), pct(v, .99), max(v)))
print("                                (%d I/Os logged, longest overall %.2f ms)"
      % (len(comp), max(c[1] for c in comp) / 1000))
PY
	"$nvmekeep" stop --control "$m/ctl.sock" >/dev/null
}

echo "bench/servicing.sh: $count servicings per mode under fio (randrw 4k QD16, 2 connections, 2x2000 IOPS), $(nproc) CPUs"
for mode in $modes; do run_mode "$mode"; done
