#!/bin/sh
# guest_nbd.sh - nvmekeepd serving a QEMU NVMe controller over VFIO to an NBD
# client, with the Linux kernel nvme driver on either side, inside the test
# guest (busybox sh; cwd = the meson build dir). Copied next to the binaries
# by tests/vm/run.sh. One controller (the first bound to vfio-pci), ns 1:
#   1. the kernel writes pattern A (2 MiB, dd + fsync) to /dev/nvmeXn1,
#      `nvmekeep setup bind` gives the function to vfio-pci;
#   2. OPENHCL_NVME_VFIO=1 nvmekeepd --device ADDR --listen unix:SOCK; nbd_rw (libnbd) reads A
#      back over NBD (byte compare), writes pattern B (1 MiB, then
#      NBD_CMD_FLUSH) over NBD and reads it back;
#   3. SIGTERM: nvmekeepd exits 0 (CC.SHN shutdown) and removes its socket;
#   4. `nvmekeep setup unbind` gives the function back to nvme; dd reads B
#      (byte compare) and the part of A that B did not overwrite; the
#      function is bound to vfio-pci again, as found.
# Prints "PASS|FAIL <mode> nbd <case>" and "N passed, M failed".
NVMEKEEP=./tools/nvmekeep
NVMEKEEPD=./tools/nvmekeepd/nvmekeepd
NBD_RW=./tests/vm/nbd_rw
T=$(mktemp -d /tmp/nvmk-nbd.XXXXXX)
KIND=nbd
. "$(dirname "$0")/guest_lib.sh"
finish() {
	echo "$pass passed, $fail failed"
	[ $fail = 0 ]
	exit
}
# the block device of namespace $1 of $ADDR (waits up to 10 s for the probe)
blk() {
	i=0
	while [ $i -lt 100 ]; do
		for n in /sys/bus/pci/devices/$ADDR/nvme/nvme*/nvme*n*; do
			[ -e "$n/nsid" ] && [ "$(cat "$n/nsid")" = "$1" ] || continue
			b=${n##*/}
			[ -b "/dev/$b" ] && { echo "/dev/$b"; return 0; }
		done
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

: > $T/err
ADDR=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/class")" = 0x010802 ] || continue
	[ "$(basename "$(readlink "$d/driver")")" = vfio-pci ] && { ADDR=${d##*/}; break; }
done
[ -n "$ADDR" ]
res $? "an NVMe function bound to vfio-pci: ${ADDR:-none}"
[ -n "$ADDR" ] || finish

# A at LBA 40960 (20 MiB), 2 MiB; B overwrites A's second half (LBA 43008).
A_LBA=40960
B_LBA=43008
head -c 2097152 /dev/urandom > $T/a
head -c 1048576 /dev/urandom > $T/b

# 1. kernel writes A
$NVMEKEEP setup unbind "$ADDR" > /dev/null 2> $T/err
res $? "nvmekeep setup unbind $ADDR (-> nvme)"
B1=$(blk 1)
[ -n "$B1" ]
res $? "kernel block device of ns1: ${B1:-none}"
[ -n "$B1" ] || finish
dd if=$T/a of="$B1" bs=512 seek=$A_LBA conv=notrunc,fsync 2> $T/err
res $? "kernel driver writes 2 MiB to $B1 (dd, fsync)"
$NVMEKEEP setup bind "$ADDR" > /dev/null 2> $T/err
res $? "nvmekeep setup bind $ADDR (-> vfio-pci)"

# 2. nvmekeepd over VFIO, NBD client
# OPENHCL_NVME_VFIO=1: the manager takes a PCI address through the kernel
# unless the userspace driver is selected (OpenHCL's nvme_vfio).
OPENHCL_NVME_VFIO=1 $NVMEKEEPD --device "$ADDR" --listen "unix:$T/nbd.sock" \
	--control "$T/control.sock" > $T/d.log 2>&1 &
DPID=$!
# serving once the socket exists (60 s bound; VFIO bring-up is slow under TCG)
i=0
while [ ! -S $T/nbd.sock ] && kill -0 $DPID 2> /dev/null && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
S=0
if [ ! -S $T/nbd.sock ]; then
	S=1
	echo "no $T/nbd.sock after $i x 100 ms" > $T/err
	sed 's/^/    nvmekeepd: /' $T/d.log >> $T/err
fi
res $S "nvmekeepd --device $ADDR serves NBD on a unix socket"
if [ $S = 0 ]; then
	$NBD_RW $T/nbd.sock read $((A_LBA * 512)) 2097152 $T/ra 2> $T/err && cmp $T/ra $T/a 2>> $T/err
	r=$?
	[ $r = 0 ] || sed 's/^/    nvmekeepd: /' $T/d.log >> $T/err
	res $r "NBD client reads the kernel's 2 MiB through nvmekeepd over VFIO (byte compare)"
	$NBD_RW $T/nbd.sock write $((B_LBA * 512)) $T/b 2> $T/err
	res $? "NBD client writes 1 MiB through nvmekeepd (write + flush)"
	$NBD_RW $T/nbd.sock read $((B_LBA * 512)) 1048576 $T/rb 2> $T/err && cmp $T/rb $T/b 2>> $T/err
	res $? "NBD client reads its 1 MiB back (byte compare)"
fi

# 3. SIGTERM: clean shutdown, exit 0, socket removed (60 s bound)
kill -TERM $DPID 2> $T/err
i=0
while kill -0 $DPID 2> /dev/null && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
if kill -0 $DPID 2> /dev/null; then
	echo "nvmekeepd still running 60 s after SIGTERM" >> $T/err
	kill -KILL $DPID
	wait $DPID
	r=1
else
	wait $DPID
	r=$?
	[ $r = 0 ] || echo "nvmekeepd exit status $r" >> $T/err
	[ ! -e $T/nbd.sock ] || { echo "$T/nbd.sock left behind" >> $T/err; r=1; }
	# the manager logs this after nvmk_ctrl_close (CC.SHN, then CC.EN = 0)
	grep -q "$ADDR: shut down" $T/d.log || { echo "no '$ADDR: shut down' logged" >> $T/err; r=1; }
fi
[ $r = 0 ] || sed 's/^/    nvmekeepd: /' $T/d.log >> $T/err
res $r "SIGTERM: nvmekeepd shuts $ADDR down, exits 0, removes its socket"

# 4. kernel reads B and the rest of A
$NVMEKEEP setup unbind "$ADDR" > /dev/null 2> $T/err
res $? "nvmekeep setup unbind $ADDR (-> nvme) after nvmekeepd"
B1=$(blk 1)
[ -n "$B1" ]
res $? "kernel block device of ns1 again: ${B1:-none}"
if [ -n "$B1" ]; then
	dd if="$B1" bs=512 skip=$B_LBA count=2048 2> $T/err | cmp - $T/b 2>> $T/err
	res $? "kernel driver reads the NBD client's 1 MiB ($B1, byte compare)"
	head -c 1048576 $T/a > $T/a1
	dd if="$B1" bs=512 skip=$A_LBA count=2048 2> $T/err | cmp - $T/a1 2>> $T/err
	res $? "kernel driver reads the untouched first half of its own data"
fi
$NVMEKEEP setup bind "$ADDR" > /dev/null 2> $T/err
res $? "nvmekeep setup bind $ADDR (-> vfio-pci, as found)"
rm -rf $T
finish
