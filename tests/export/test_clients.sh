#!/usr/bin/env bash
# nvmekeepd with real, unmodified clients: nbdinfo (list, --map), qemu-img
# convert in and out + cmp, qemu-io pattern writes on four connections at
# once then reads on others (multi-conn flush), nbdcopy, fio's nbd engine with
# crc32c verification, nbdfuse + mkfs.ext4 + a file copied in + e2fsck (skipped
# with a reason without FUSE), the CLI over the control socket (status, remove
# refused then forced, add, malformed request), SIGTERM with fio running: exit
# 0, sockets removed; sd_notify READY=1/STATUS=; TLS with PSK and X.509 (qemu-img, nbdinfo). Usage: test_clients.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
nvmekeepd=$build/tools/nvmekeepd/nvmekeepd
nvmekeep=$build/tools/nvmekeep
d=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
	mountpoint -q "$d/fuse" 2>/dev/null && fusermount3 -u "$d/fuse" 2>/dev/null || true
	rm -rf "$d"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$d/log" ] && tail -20 "$d/log" >&2; exit 1; }
step() { echo "== $*"; }

step "bad arguments: exit 2 with a message naming what is wrong"
expect_usage() { # expected-text command...
	local want=$1 rc=0
	shift
	"$@" >/dev/null 2>"$d/err" || rc=$?
	[ "$rc" = 2 ] || fail "$* exited $rc, expected 2"
	grep -q -- "$want" "$d/err" || fail "$*: message lacks '$want': $(cat "$d/err")"
}
expect_usage "--threads" "$nvmekeepd" --threads 0
expect_usage "invalid device 'bogus': not a device name" "$nvmekeepd" --device bogus
expect_usage "needs --tls-creds" "$nvmekeepd" --tls require
expect_usage "expected off, on or require" "$nvmekeepd" --tls maybe
expect_usage "unexpected argument" "$nvmekeepd" emu
expect_usage "--emu-exec 'fast': expected auto, worker or inline" "$nvmekeepd" --emu-exec fast
expect_usage "DEVICE is required" "$nvmekeep" add
expect_usage "remove only" "$nvmekeep" status --force
rc=0
NVMEKEEP_CONTROL=$d/none.sock "$nvmekeep" status 2>"$d/err" || rc=$?
[ "$rc" = 1 ] && grep -q "cannot reach nvmekeepd" "$d/err" || fail "status without a daemon: rc $rc"
"$nvmekeepd" --listen bogus:x --control "$d/x.sock" >/dev/null 2>"$d/err" && fail "bad --listen accepted"
grep -q "unix:PATH" "$d/err" || fail "bad --listen: $(cat "$d/err")"

sock=$d/nbd.sock ctl=$d/ctl.sock
export NVMEKEEP_CONTROL=$ctl
uri() { echo "nbd+unix:///$1?socket=$sock"; }

"$build/tests/export/notify_listen" "$d/notify.sock" 10000 >"$d/notify" &
notify_pid=$!
for _ in $(seq 50); do [ -S "$d/notify.sock" ] && break; sleep 0.1; done
# the emulator's I/O commands inline, as bench/nbd.sh runs them on 2 CPUs
NOTIFY_SOCKET=$d/notify.sock "$nvmekeepd" --device emu --listen "unix:$sock" --control "$ctl" \
	--threads 2 --emu-exec inline >"$d/log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$ctl" ] && break; sleep 0.1; done
[ -S "$ctl" ] || fail "nvmekeepd did not start"
wait "$notify_pid" || fail "no READY=1 on NOTIFY_SOCKET: $(cat "$d/notify")"
grep -q "STATUS=serving" "$d/notify" || fail "no STATUS= with READY=1"
[ "$(stat -c %a "$ctl")" = 600 ] || fail "control socket mode $(stat -c %a "$ctl"), expected 600"
grep -q "OPENHCL_NVME_KEEP_ALIVE=" "$d/log" || fail "keep-alive string not logged"
grep -q "I/O commands run inline" "$d/log" || fail "--emu-exec inline: the emulator does not say so"

step nbdinfo
nbdinfo --list "$(uri '')" >"$d/list" || fail "nbdinfo --list"
grep -q 'export="emu/1"' "$d/list" && grep -q 'export="emu/2"' "$d/list" || fail "exports not listed"
grep -q "serial NVMKEMU0001" "$d/list" || fail "description missing"
nbdinfo --map "$(uri emu/1)" | grep -q "1073741824 *0 *data" || fail "nbdinfo --map"

step "qemu-img convert in and out"
head -c $((24 << 20)) /dev/urandom >"$d/in.img"
qemu-img convert -n -f raw -O raw "$d/in.img" "$(uri emu/1)" || fail "convert in"
qemu-img convert -f raw -O raw "$(uri emu/1)" "$d/out.img" || fail "convert out"
cmp -n $((24 << 20)) "$d/in.img" "$d/out.img" || fail "qemu-img round trip differs"

step "qemu-io: four writers at once, readers on other connections"
qpids=()
for i in 1 2 3 4; do
	qemu-io -f raw -c "write -P 0x$i$i $((64 + i))M 1M" -c flush "$(uri emu/1)" >"$d/qio$i" &
	qpids+=($!)
done
wait "${qpids[@]}" || true
for i in 1 2 3 4; do
	grep -q "wrote 1048576" "$d/qio$i" || fail "qemu-io writer $i: $(cat "$d/qio$i")"
done
for i in 1 2 3 4; do
	qemu-io -f raw -c "read -P 0x$i$i $((64 + i))M 1M" "$(uri emu/1)" >"$d/qr$i" || fail "read $i"
	grep -q "Pattern verification failed" "$d/qr$i" && fail "qemu-io pattern $i"
done

step nbdcopy
nbdcopy "$(uri emu/1)" "$d/copy.img" || fail "nbdcopy"
cmp -n $((24 << 20)) "$d/in.img" "$d/copy.img" || fail "nbdcopy data differs"

step "fio nbd engine, crc32c verify"
fio --name=v --ioengine=nbd --uri="$(uri emu/1)" --rw=randwrite --bs=4k --iodepth=16 \
	--size=16M --offset=128M --verify=crc32c --do_verify=1 --output="$d/fio" >/dev/null ||
	fail "fio: $(cat "$d/fio")"
grep -q "err= 0" "$d/fio" || fail "fio reported errors"

step "CLI"
"$nvmekeep" status >"$d/st" || fail "status"
grep -q "emu/1" "$d/st" || fail "status lists no export"
"$nvmekeep" status -o json | grep -q '"connections"' || fail "status -o json"
qemu-io -f raw -c "sleep 3000" "$(uri emu/2)" >/dev/null 2>&1 &
sleeper=$!
sleep 0.5
"$nvmekeep" status | grep -q "transmission *emu/2" || fail "status shows no connection"
"$nvmekeep" remove emu 2>"$d/err" && fail "remove with a client connected succeeded"
grep -q "clients are connected" "$d/err" || fail "remove refusal: $(cat "$d/err")"
"$nvmekeep" remove --force emu || fail "remove --force"
nbdinfo "$(uri emu/1)" >/dev/null 2>&1 && fail "removed export still served"
# the manager let go of it too: status no longer lists the device
"$nvmekeep" status -o json >"$d/st.json" || fail "status -o json after remove"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(any(x["id"] == "emu" for x in d["manager"]["devices"]))' "$d/st.json" ||
	fail "removed device still listed: $(cat "$d/st.json")"
"$nvmekeep" remove emu 2>"$d/err" && fail "second remove succeeded"
grep -q "no such device" "$d/err" || fail "second remove: $(cat "$d/err")"
"$nvmekeep" add emu || fail "add"
nbdinfo "$(uri emu/1)" >/dev/null || fail "export back after add"
"$nvmekeep" status -o json >"$d/st.json" || fail "status -o json after add"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(not any(x["id"] == "emu" and x["state"] == "ready" for x in d["manager"]["devices"]))' "$d/st.json" ||
	fail "re-added device not ready: $(cat "$d/st.json")"
"$nvmekeep" add nonsense 2>"$d/err" && fail "add of a bad name succeeded"
grep -q "invalid device 'nonsense': not a device name" "$d/err" || fail "add nonsense: $(cat "$d/err")"
"$nvmekeep" add emu: 2>"$d/err" && fail "add of emu: succeeded"
grep -q "a FILE must follow the colon" "$d/err" || fail "add emu:: $(cat "$d/err")"
wait "$sleeper" || true

step "nbdfuse + mkfs.ext4 + copy + e2fsck"
if [ ! -e /dev/fuse ] || ! command -v fusermount3 >/dev/null || ! command -v mkfs.ext4 >/dev/null; then
	echo "SKIP nbdfuse: /dev/fuse, fusermount3 or mkfs.ext4 missing"
else
	mkdir "$d/fuse"
	nbdfuse "$d/fuse" "$(uri emu/1)" 2>"$d/fuse.err" &
	fuse_pid=$!
	for _ in $(seq 50); do [ -e "$d/fuse/nbd" ] && break; sleep 0.1; done
	if [ ! -e "$d/fuse/nbd" ]; then
		echo "SKIP nbdfuse: mount failed: $(cat "$d/fuse.err")"
	else
		mkfs.ext4 -q -F "$d/fuse/nbd" 256M >/dev/null || fail "mkfs.ext4"
		debugfs -w -R "write $d/in.img in.img" "$d/fuse/nbd" >/dev/null 2>&1 || fail "debugfs write"
		e2fsck -fn "$d/fuse/nbd" >/dev/null 2>&1 || fail "e2fsck"
		debugfs -R "dump in.img $d/back.img" "$d/fuse/nbd" >/dev/null 2>&1 || fail "debugfs dump"
		cmp "$d/in.img" "$d/back.img" || fail "file copied through ext4 on NBD differs"
		fusermount3 -u "$d/fuse"
	fi
	wait "$fuse_pid" || true
fi

step "TLS (PSK) on a TCP listener: nbdinfo, qemu-img in and out; plaintext refused"
printf 'alice:%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$d/keys.psk"
"$nvmekeepd" --device emu --listen tcp:127.0.0.1:0 --control "$d/tls-ctl.sock" --threads 1 \
	--tls require --tls-psk "$d/keys.psk" >"$d/tls.log" 2>&1 &
tls_pid=$!
for _ in $(seq 100); do grep -q "serving NBD on tcp:" "$d/tls.log" && break; sleep 0.1; done
port=$(sed -n 's/.*serving NBD on tcp:127.0.0.1:\([0-9]*\).*/\1/p' "$d/tls.log")
[ -n "$port" ] || fail "TLS daemon: no port: $(cat "$d/tls.log")"
nbdinfo "nbds://alice@127.0.0.1:$port/emu/1?tls-psk-file=$d/keys.psk" | grep -q "with TLS" ||
	fail "nbdinfo over TLS"
nbdinfo "nbd://127.0.0.1:$port/emu/1" >/dev/null 2>&1 && fail "plaintext accepted with --tls require"
tlsobj="tls-creds-psk,id=tls0,dir=$d,endpoint=client,username=alice"
qemu-img convert -n --object "$tlsobj" -f raw "$d/in.img" \
	--target-image-opts "driver=nbd,host=127.0.0.1,port=$port,export=emu/1,tls-creds=tls0" ||
	fail "qemu-img convert in over TLS"
qemu-img convert --object "$tlsobj" --image-opts \
	"driver=nbd,host=127.0.0.1,port=$port,export=emu/1,tls-creds=tls0" -O raw "$d/tls-out.img" ||
	fail "qemu-img convert out over TLS"
cmp -n $((24 << 20)) "$d/in.img" "$d/tls-out.img" || fail "TLS round trip differs"
kill -TERM "$tls_pid"
wait "$tls_pid" || fail "TLS daemon exit status"

step "TLS (X.509) on a TCP listener: nbdinfo and qemu-img verify the server"
if ! command -v openssl >/dev/null; then
	echo "SKIP X.509: openssl missing (it only makes the test certificates)"
else
	x=$d/x509
	mkdir -p "$x/client"
	(cd "$x" &&
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca-cert.pem \
			-subj /CN=nvmekeep-test-ca -days 1 &&
		openssl req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr \
			-subj /CN=127.0.0.1 &&
		printf '%s\n' subjectAltName=IP:127.0.0.1 extendedKeyUsage=serverAuth \
			basicConstraints=CA:FALSE keyUsage=digitalSignature,keyEncipherment >ext &&
		openssl x509 -req -in server.csr -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial \
			-out server-cert.pem -days 1 -extfile ext) >/dev/null 2>&1 || fail "openssl"
	cp "$x/ca-cert.pem" "$x/client/"
	"$nvmekeepd" --device emu --listen tcp:127.0.0.1:0 --control "$d/x509-ctl.sock" --threads 1 \
		--tls require --tls-creds "$x" >"$d/x509.log" 2>&1 &
	x_pid=$!
	for _ in $(seq 100); do grep -q "serving NBD on tcp:" "$d/x509.log" && break; sleep 0.1; done
	port=$(sed -n 's/.*serving NBD on tcp:127.0.0.1:\([0-9]*\).*/\1/p' "$d/x509.log")
	[ -n "$port" ] || fail "X.509 daemon: $(cat "$d/x509.log")"
	nbdinfo "nbds://127.0.0.1:$port/emu/1?tls-certificates=$x/client" | grep -q "with TLS" ||
		fail "nbdinfo over TLS (X.509)"
	qemu-img info --object "tls-creds-x509,id=tls1,dir=$x/client,endpoint=client" --image-opts \
		"driver=nbd,host=127.0.0.1,port=$port,export=emu/1,tls-creds=tls1" | grep -q "1 GiB" ||
		fail "qemu-img over TLS (X.509)"
	kill -TERM "$x_pid"
	wait "$x_pid" || fail "X.509 daemon exit status"
fi

step "kernel path: a regular file as the device (io_uring), data lands in it"
truncate -s 64M "$d/kdisk.img"
"$nvmekeepd" --device "$d/kdisk.img" --listen "unix:$d/k.sock" --control "$d/k-ctl.sock" \
	--threads 1 >"$d/k.log" 2>&1 &
k_pid=$!
for _ in $(seq 100); do [ -S "$d/k-ctl.sock" ] && break; sleep 0.1; done
kuri="nbd+unix:///$d/kdisk.img/1?socket=$d/k.sock"
head -c $((8 << 20)) "$d/in.img" >"$d/in8.img"
qemu-img convert -n -f raw -O raw "$d/in8.img" "$kuri" || fail "convert into the kernel path"
qemu-img convert -f raw -O raw "$kuri" "$d/k-out.img" || fail "convert out of the kernel path"
cmp -n $((8 << 20)) "$d/in8.img" "$d/k-out.img" || fail "kernel path round trip differs"
kill -TERM "$k_pid"
wait "$k_pid" || fail "kernel-path daemon exit status"
cmp -n $((8 << 20)) "$d/in8.img" "$d/kdisk.img" || fail "data not in the file"

step "vfio-user: nvmekeepd drives a controller served by nvmekeep-emu"
"$build/tools/nvmekeep-emu" --socket "$d/vfu.sock" --ns ram:64M:512 >"$d/vfu-emu.log" 2>&1 &
vfu_emu=$!
for _ in $(seq 50); do [ -S "$d/vfu.sock" ] && break; sleep 0.1; done
"$nvmekeepd" --device "vfio-user:$d/vfu.sock" --listen "unix:$d/v.sock" --control "$d/v-ctl.sock" \
	--threads 1 >"$d/v.log" 2>&1 &
v_pid=$!
for _ in $(seq 100); do [ -S "$d/v-ctl.sock" ] && break; sleep 0.1; done
vuri="nbd+unix:///vfio-user:$d/vfu.sock/1?socket=$d/v.sock"
qemu-img convert -n -f raw -O raw "$d/in8.img" "$vuri" || fail "convert into vfio-user: $(tail -5 "$d/v.log")"
qemu-img convert -f raw -O raw "$vuri" "$d/v-out.img" || fail "convert out of vfio-user"
cmp -n $((8 << 20)) "$d/in8.img" "$d/v-out.img" || fail "vfio-user round trip differs"
kill -TERM "$v_pid"
wait "$v_pid" || fail "vfio-user daemon exit status"
kill -TERM "$vfu_emu"
wait "$vfu_emu" || true

step "SIGTERM with fio running"
fio --name=bg --ioengine=nbd --uri="$(uri emu/1)" --rw=randwrite --bs=4k --iodepth=32 \
	--size=64M --time_based --runtime=20 >/dev/null 2>&1 &
fio_pid=$!
sleep 1
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "nvmekeepd exited $rc after SIGTERM"
wait "$fio_pid" || true
[ -e "$sock" ] && fail "NBD socket left behind"
[ -e "$ctl" ] && fail "control socket left behind"
grep -q "emu: shut down" "$d/log" || fail "controller not shut down"
echo "OK"
