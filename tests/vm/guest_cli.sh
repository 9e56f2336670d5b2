#!/bin/sh
# guest_cli.sh - the nvmekeep CLI and the Linux kernel NVMe driver on the same
# controller, inside the test guest (busybox sh; cwd = the meson build dir).
# Copied next to the binaries by tests/vm/run.sh.
#   1. nvmekeep writes over VFIO (namespaces 1 and 2), `nvmekeep setup unbind`
#      gives the function to the kernel, dd reads /dev/nvmeXnY: byte compare;
#   2. the CLI's kernel path (io_uring): read/write on /dev/nvmeXnY, and on the
#      PCI address while it is bound to nvme (OPENHCL_NVME_VFIO unset), and the
#      refusal with OPENHCL_NVME_VFIO=1;
#   3. the kernel writes (dd), `nvmekeep setup bind`, nvmekeep reads over
#      VFIO: byte compare.
# Prints "PASS|FAIL <mode> cli <case>" and "N passed, M failed".
NVMEKEEP=./tools/nvmekeep
T=/tmp/nvmk-cli
KIND=cli
. "$(dirname "$0")/guest_lib.sh"
finish() {
	echo "$pass passed, $fail failed"
	[ $fail = 0 ]
	exit
}
# the block device of namespace $1 of $ADDR (waits for the kernel's probe)
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

mkdir -p $T
: > $T/err
ADDR=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/class")" = 0x010802 ] || continue
	[ "$(basename "$(readlink "$d/driver")")" = vfio-pci ] && { ADDR=${d##*/}; break; }
done
[ -n "$ADDR" ]
res $? "an NVMe function bound to vfio-pci: ${ADDR:-none}"
[ -n "$ADDR" ] || finish

head -c 1048576 /dev/urandom > $T/a # 2048 blocks of 512 bytes
head -c 65536 /dev/urandom > $T/b
head -c 262144 /dev/urandom > $T/c

# 1. nvmekeep -> kernel
$NVMEKEEP write "$ADDR" -s 2048 -c 2047 -d $T/a > /dev/null 2> $T/err
res $? "nvmekeep write 1 MiB over VFIO ($ADDR ns1)"
$NVMEKEEP write "$ADDR" -n 2 -s 100 -c 127 -d $T/b > /dev/null 2> $T/err
res $? "nvmekeep write 64 KiB over VFIO ($ADDR ns2)"
$NVMEKEEP setup unbind "$ADDR" > /dev/null 2> $T/err
res $? "nvmekeep setup unbind $ADDR (-> nvme)"
B1=$(blk 1)
B2=$(blk 2)
[ -n "$B1" ] && [ -n "$B2" ]
res $? "kernel block devices of ns1/ns2: ${B1:-none} ${B2:-none}"
[ -n "$B1" ] && [ -n "$B2" ] || finish
dd if="$B1" bs=512 skip=2048 count=2048 2> $T/err | cmp - $T/a 2>> $T/err
res $? "kernel driver reads nvmekeep's data ($B1, 1 MiB, byte compare)"
dd if="$B2" bs=512 skip=100 count=128 2> $T/err | cmp - $T/b 2>> $T/err
res $? "kernel driver reads nvmekeep's data ($B2, 64 KiB, byte compare)"

# 2. the CLI's kernel path (io_uring)
$NVMEKEEP read "$B1" -s 2048 -c 2047 > $T/r1 2> $T/err && cmp $T/r1 $T/a 2>> $T/err
res $? "nvmekeep read $B1 (kernel path, io_uring) returns the data"
$NVMEKEEP write "$B1" -s 8192 -c 511 -d $T/c > /dev/null 2> $T/err &&
	dd if="$B1" bs=512 skip=8192 count=512 2>> $T/err | cmp - $T/c 2>> $T/err
res $? "nvmekeep write $B1 (kernel path, O_DIRECT), dd reads it back"
$NVMEKEEP read "$ADDR" -n 2 -s 100 -c 127 > $T/r2 2> $T/err && cmp $T/r2 $T/b 2>> $T/err
res $? "nvmekeep read $ADDR while bound to nvme, OPENHCL_NVME_VFIO unset: kernel path"
OPENHCL_NVME_VFIO=1 $NVMEKEEP read "$ADDR" -s 0 -c 0 > /dev/null 2> /dev/null
[ $? != 0 ]
res $? "OPENHCL_NVME_VFIO=1: the nvme-bound function is not taken through the kernel"

# 3. kernel -> nvmekeep
dd if=$T/c of="$B1" bs=512 seek=30000 conv=notrunc,fsync 2> $T/err
res $? "kernel driver writes 256 KiB to $B1 (dd, fsync)"
$NVMEKEEP setup bind "$ADDR" > /dev/null 2> $T/err
res $? "nvmekeep setup bind $ADDR (-> vfio-pci)"
$NVMEKEEP read "$ADDR" -s 30000 -c 511 > $T/r3 2> $T/err && cmp $T/r3 $T/c 2>> $T/err
res $? "nvmekeep reads the kernel's data over VFIO (byte compare)"
finish
