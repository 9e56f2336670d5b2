#!/bin/sh
# guest_service.sh - servicing nvmekeepd while it drives a QEMU NVMe
# controller over VFIO (type1 or no-IOMMU, whichever the guest booted in)
# and an NBD client writes and verifies (issue 10). Busybox sh in the test
# guest, cwd = the meson build dir; copied next to the binaries by run.sh.
#   1. OPENHCL_NVME_VFIO=1 nvmekeepd on the first vfio-pci NVMe function;
#      keep-alive is inferred on (host,privatepool);
#   2. nbd_svc keeps 8 requests in flight (4 KiB writes and verified reads);
#   3. `nvmekeep service` 5 times: each succeeds with keep-alive and the
#      successor adopts the VFIO device from the handover; the client sees no
#      error; QEMU's trace (/ctl/qemu-trace.log, boot.sh) shows no enable,
#      disable or shutdown, no Identify, no queue created or deleted and no
#      new Asynchronous Event Request from the first servicing to the last,
#      and the AERs posted at bring-up were never completed: the controller
#      kept its queues and the AER commands posted before the first
#      servicing are still outstanding after the last;
#   4. the client stops: flush, every block read back and checked;
#   5. keep-alive off (OPENHCL_NVME_KEEP_ALIVE=disabled): one servicing under
#      the client shuts the controller down (CC.SHN) and brings it up again
#      (trace), the client's connection is handed over (no error);
#   6. SIGTERM, exit 0.
# Prints the blackout of each servicing (server: quiesce -> serving; client:
# longest request around it) and "N passed, M failed".
NVMEKEEP=./tools/nvmekeep
NVMEKEEPD=./tools/nvmekeepd/nvmekeepd
NBD_SVC=./tests/vm/nbd_svc
TRACE=/ctl/qemu-trace.log
T=$(mktemp -d /tmp/nvmk-svc.XXXXXX)
N=5
KIND=service
. "$(dirname "$0")/guest_lib.sh"
finish() {
	[ -n "$CPID" ] && kill $CPID 2> /dev/null
	[ -n "$DPID" ] && kill -KILL $DPID 2> /dev/null
	# the whole daemon log next to the console log, on the host
	cat $T/d1.log $T/d.log > /ctl/service-daemon.log 2> /dev/null
	echo "$pass passed, $fail failed"
	rm -rf $T
	[ $fail = 0 ]
	exit
}
tlines() { [ -f $TRACE ] && wc -l < $TRACE || echo 0; }
# trace lines after line $1 naming event $2 (the word, not a prefix of another)
tcount() { tail -n +$(($1 + 1)) $TRACE 2> /dev/null | grep -c "$2 "; }
daemon_log() { sed 's/^/    nvmekeepd: /' $T/d.log | grep -v " debug: " | tail -${1:-25} >> $T/err; }

start_daemon() { # extra environment assignments
	rm -f $T/nbd.sock $T/ctl.sock
	env OPENHCL_NVME_VFIO=1 "$@" $NVMEKEEPD --device "$ADDR" --listen "unix:$T/nbd.sock" \
		--control "$T/ctl.sock" > $T/d.log 2>&1 &
	DPID=$!
	i=0 # 60 s: VFIO bring-up is slow under TCG
	while { [ ! -S $T/nbd.sock ] || [ ! -S $T/ctl.sock ]; } && kill -0 $DPID 2> /dev/null &&
		[ $i -lt 600 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -S $T/ctl.sock ] && [ -S $T/nbd.sock ] && return 0
	echo "nvmekeepd does not serve after $i x 100 ms" > $T/err
	daemon_log
	return 1
}
start_client() {
	rm -f $T/mark $T/stop
	$NBD_SVC $T/nbd.sock $((32 << 20)) $((4 << 20)) $T/mark $T/stop > $T/c.out 2> $T/c.err &
	CPID=$!
	i=0
	while ! grep -q running $T/c.out && kill -0 $CPID 2> /dev/null && [ $i -lt 600 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	sleep 1 # requests flowing
	grep -q running $T/c.out && kill -0 $CPID 2> /dev/null && return 0
	cat $T/c.out $T/c.err > $T/err
	return 1
}
stop_client() {
	touch $T/stop
	wait $CPID
	r=$?
	CPID=
	[ $r = 0 ] || { cat $T/c.out $T/c.err > $T/err; daemon_log; }
	return $r
}
# one servicing inside a client latency window; prints the server's answer
service() {
	touch $T/mark
	sleep 0.1
	timeout 120 $NVMEKEEP service > $T/svc.out 2>&1
	r=$?
	sleep 0.4
	rm -f $T/mark
	sleep 0.1
	[ $r = 0 ] || { cat $T/svc.out > $T/err; daemon_log; }
	return $r
}
export NVMEKEEP_CONTROL=$T/ctl.sock
# exec'd from the guest's RAM, not paged in over 9p at each servicing: the
# blackout measured is the daemon's, not the share's
cp $NVMEKEEPD $T/nvmekeepd && NVMEKEEPD=$T/nvmekeepd
CPID= DPID=
: > $T/err

ADDR=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/class")" = 0x010802 ] || continue
	[ "$(basename "$(readlink "$d/driver")")" = vfio-pci ] && { ADDR=${d##*/}; break; }
done
[ -n "$ADDR" ]
res $? "an NVMe function bound to vfio-pci: ${ADDR:-none}"
[ -n "$ADDR" ] || finish
[ -f $TRACE ]
res $? "QEMU's NVMe trace is readable ($TRACE)"

# 1. the daemon, keep-alive inferred
L0=$(tlines)
start_daemon
r=$?
res $r "nvmekeepd --device $ADDR over VFIO serves NBD"
[ $r = 0 ] || finish
$NVMEKEEP status > $T/st 2> $T/err && grep -q "keep-alive: host,privatepool (on)" $T/st
r=$?
[ $r = 0 ] || cat $T/st >> $T/err
res $r "keep-alive inferred on for a VFIO device (host,privatepool)"

# 2. the client
start_client
r=$?
res $r "nbd_svc writes and verifies with 8 requests in flight"
[ $r = 0 ] || finish

# 3. five servicings
L1=$(tlines)
AERS=$(tail -n +$((L0 + 1)) $TRACE | grep "pci_nvme_aer " | sed 's/.*cid \([0-9]*\).*/\1/' | tr '\n' ' ')
ncpl=$(tcount $L0 pci_nvme_aer_post_cqe)
[ -n "$AERS" ] && [ "$ncpl" = 0 ]
r=$?
[ $r = 0 ] || echo "AERs posted: '$AERS', completed: $ncpl" > $T/err
res $r "the driver has Asynchronous Event Requests outstanding before servicing (cid $AERS)"
blk=
k=1
while [ $k -le $N ]; do
	service
	r=$?
	b=$(sed -n 's/.*blackout \([0-9.]*\) ms.*/\1/p' $T/svc.out)
	blk="$blk $b"
	res $r "servicing $k with keep-alive: $(cat $T/svc.out)"
	[ $r = 0 ] || break
	k=$((k + 1))
done
kill -0 $CPID 2> /dev/null
r=$?
[ $r = 0 ] || cat $T/c.out $T/c.err > $T/err
res $r "the client is still running after $N servicings"
n=$(grep -c "adopted from handover" $T/d.log)
[ "$n" = $N ] || { echo "$n adoptions logged" > $T/err; daemon_log; }
res $? "each successor adopted $ADDR from the handover (no reset, no new open)"
bad=
for ev in pci_nvme_mmio_start_success pci_nvme_mmio_stopped pci_nvme_mmio_shutdown_set \
	pci_nvme_identify pci_nvme_create_sq pci_nvme_create_cq pci_nvme_del_sq pci_nvme_aer \
	pci_nvme_aer_post_cqe; do
	c=$(tcount $L1 $ev)
	[ "$c" = 0 ] || bad="$bad $ev x$c"
done
[ -z "$bad" ]
r=$?
[ $r = 0 ] || { echo "QEMU trace during the servicings:$bad" > $T/err; tail -n +$((L1 + 1)) $TRACE | head -20 >> $T/err; }
res $r "QEMU: no enable/disable/shutdown, Identify, queue creation or deletion, new AER during $N servicings"
# posted once, never completed, and the controller never disabled since
[ "$(tcount $L0 pci_nvme_aer_post_cqe)" = 0 ] && [ "$(tcount $L0 pci_nvme_aer)" -gt 0 ] &&
	[ "$(tcount $L0 pci_nvme_mmio_stopped)" = 0 ] && [ "$(tcount $L1 pci_nvme_aer)" = 0 ]
res $? "the AERs posted before the first servicing (cid $AERS) are still outstanding after the last"

# 4. the client's verdict
stop_client
res $? "client: no error, every block reads back ($(tail -1 $T/c.out))"
grep "^window" $T/c.out > $T/win
echo "blackout per servicing ($MODE, keep-alive on), server (quiesce -> serving), ms:$blk"
echo "  (floor under TCG, issue 10: 17-27 ms = a bare exec + VFIO_UPDATE_VADDR + one IDENTIFY)"
grep "done: blackout" $T/d.log | sed 's/.*servicing: /    /'
echo "client's longest request per servicing:"
sed 's/^/    /' $T/win
[ "$(wc -l < $T/win)" = $N ]
res $? "the client timed $N servicing windows"

# 5. keep-alive off: shutdown, exec, fresh bring-up, the connection handed over
kill -TERM $DPID
wait $DPID
DPID=
mv $T/d.log $T/d1.log
start_daemon OPENHCL_NVME_KEEP_ALIVE=disabled
r=$?
res $r "nvmekeepd with OPENHCL_NVME_KEEP_ALIVE=disabled"
[ $r = 0 ] || finish
start_client
r=$?
res $r "client running"
[ $r = 0 ] || finish
L2=$(tlines)
service
res $? "servicing with keep-alive off: $(cat $T/svc.out)"
grep -q "keep-alive off" $T/svc.out
res $? "the servicing ran with keep-alive off"
[ "$(tcount $L2 pci_nvme_mmio_shutdown_set)" -ge 1 ] &&
	[ "$(tcount $L2 pci_nvme_mmio_start_success)" -ge 1 ] &&
	[ "$(tcount $L2 pci_nvme_identify)" -ge 1 ]
r=$?
[ $r = 0 ] || { echo "trace:" > $T/err; tail -n +$((L2 + 1)) $TRACE | head -20 >> $T/err; }
res $r "QEMU: CC.SHN shutdown, then enable and Identify (fresh bring-up)"
stop_client
res $? "client: no error across the keep-alive-off servicing ($(tail -1 $T/c.out))"
echo "keep-alive off ($MODE): $(cat $T/svc.out); client: $(grep '^window' $T/c.out)"

# 6. stop
kill -TERM $DPID
i=0
while kill -0 $DPID 2> /dev/null && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
kill -0 $DPID 2> /dev/null && { kill -KILL $DPID; echo "still running 60 s after SIGTERM" > $T/err; }
wait $DPID
r=$?
DPID=
[ $r = 0 ] || daemon_log
res $r "SIGTERM after servicing: nvmekeepd exits 0"
finish
