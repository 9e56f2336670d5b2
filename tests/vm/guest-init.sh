#!/bin/sh
# /init of the nvmekeep test guest (busybox ash), installed by setup.sh.
# Kernel command line (set by boot.sh):
#   nvmk.mode=type1|noiommu   VFIO with intel-iommu, or unsafe no-IOMMU mode
#   nvmk.bind=nvme|none       bind every NVMe function (class 0x010802) to vfio-pci
# 9p shares: "ctl" -> /ctl (cmd.sh in, rc out, vfio.ko for no-IOMMU),
#            "host" -> /host (the meson build dir; the command's cwd)
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp

MODE=type1 BIND=nvme
for a in $(cat /proc/cmdline); do
	case "$a" in
	nvmk.mode=*) MODE="${a#*=}" ;;
	nvmk.bind=*) BIND="${a#*=}" ;;
	esac
done
log() { echo "nvmk-init: $*"; }
finish() {
	echo "NVMK-EXIT=$1 uptime=$(cut -d' ' -f1 /proc/uptime)"
	[ -d /ctl ] && echo "$1" > /ctl/rc
	sync; umount /host /ctl 2>/dev/null
	poweroff -f
}

modprobe virtio_pci && modprobe 9pnet_virtio && modprobe 9p || log "9p modules failed"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ctl /ctl || { log "no ctl share"; finish 126; }
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 host /host || { log "no host share"; finish 126; }

if [ "$MODE" = noiommu ]; then
	insmod /ctl/vfio.ko enable_unsafe_noiommu_mode=1 || { log "noiommu vfio.ko failed"; finish 126; }
else
	modprobe vfio && modprobe vfio_iommu_type1 || { log "vfio modules failed"; finish 126; }
fi
modprobe vfio-pci || { log "vfio-pci failed"; finish 126; }

if [ "$BIND" = nvme ]; then
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/class")" = 0x010802 ] || continue
		a=${d##*/}
		echo vfio-pci > "$d/driver_override"
		[ -e "$d/driver" ] && echo "$a" > "$d/driver/unbind"
		echo "$a" > /sys/bus/pci/drivers_probe
		log "bound $a -> $(basename "$(readlink "$d/driver")") group $(basename "$(readlink "$d/iommu_group")")"
	done
fi
# nvme after the binding: driver_override keeps it off the bound functions,
# and `nvmekeep setup` can hand functions back to it.
modprobe nvme || log "nvme module failed"
log "mode=$MODE /dev/vfio: $(ls /dev/vfio | tr '\n' ' ')"

cd /host || finish 126
echo "NVMK-START uptime=$(cut -d' ' -f1 /proc/uptime)"
sh /ctl/cmd.sh
finish $?
