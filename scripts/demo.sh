#!/usr/bin/env bash
# The main job on the built-in emulated NVMe controller: install what is
# missing, build, start the storage daemon nvmekeepd, look at its export with
# nbdinfo, copy an image in and out with qemu-img and compare, run a short fio
# over NBD (fio's nbd engine) and print its figures, show `nvmekeep status`,
# stop the daemon. Needs no hardware; about half a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
nvmekeepd=build/tools/nvmekeepd/nvmekeepd
nvmekeep=build/tools/nvmekeep

d=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	rm -rf "$d"
}
trap cleanup EXIT
sock=$d/nbd.sock
export NVMEKEEP_CONTROL=$d/control.sock
uri="nbd+unix:///emu/1?socket=$sock"

echo "== nvmekeepd on the emulated controller (log: daemon.log lines below)"
"$nvmekeepd" --device emu --listen "unix:$sock" --control "$NVMEKEEP_CONTROL" >"$d/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$NVMEKEEP_CONTROL" ] && break; sleep 0.1; done
grep -E "KEEP_ALIVE|exported|serving" "$d/daemon.log"

set -x
nbdinfo "$uri"
head -c $((64 << 20)) /dev/urandom >"$d/image.raw"
qemu-img convert -n -f raw -O raw "$d/image.raw" "$uri"
qemu-img convert -f raw -O raw "$uri" "$d/back.raw"
cmp -n $((64 << 20)) "$d/image.raw" "$d/back.raw"
fio --name=nbd-randread --ioengine=nbd --uri="$uri" --rw=randread --bs=4k --iodepth=32 \
	--size=256M --time_based --runtime=3 --group_reporting | grep -E "IOPS| lat \(usec\)" 
fio --name=nbd-randwrite --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=32 \
	--size=256M --time_based --runtime=3 --group_reporting | grep -E "IOPS| lat \(usec\)" 
"$nvmekeep" status
"$nvmekeep" stop
set +x
wait "$pid"
pid=
echo "== nvmekeepd stopped: $(tail -1 "$d/daemon.log")"
