#!/bin/bash
# Boot a throw-away guest under QEMU (TCG; KVM with NVMK_VM_KVM=1) with two
# emulated NVMe controllers bound to vfio-pci, run one command, return its
# exit status.
#   boot.sh [--noiommu] [--share DIR] [--timeout SEC] [--append KARGS] [--quiet] -- CMD [ARGS]
# --append adds kernel command line arguments (e.g. nvme.poll_queues=1).
# Controllers: nvme0 (serial NVMK0000) with namespaces 1 and 2, nvme1
# (NVMK0001) with namespace 1, and in type1 mode nvme2/nvme3 behind a
# PCIe-to-PCI bridge (one shared IOMMU group); backing images are sparse
# files in scratch.
# CMD runs as root under busybox sh with cwd = DIR (default: $PWD), shared
# read-write over 9p. Exit: CMD's status; 124 timeout; 125 harness failure.
set -uo pipefail
. "$(dirname "$0")/common.sh"

MODE=type1 SHARE="$PWD" TIMEOUT=240 QUIET=0 EXTRA_APPEND=
while [ $# -gt 0 ]; do
	case "$1" in
	--noiommu) MODE=noiommu ;;
	--share) SHARE="$2"; shift ;;
	--timeout) TIMEOUT="$2"; shift ;;
	--append) EXTRA_APPEND="$2"; shift ;;
	--quiet) QUIET=1 ;;
	--) shift; break ;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
	shift
done
[ $# -gt 0 ] || die "usage: boot.sh [--noiommu] [--share DIR] -- CMD [ARGS]"
[ -f "$KERNEL" ] && [ -f "$INITRAMFS" ] || die "run tests/vm/setup.sh first"
SHARE="$(cd "$SHARE" && pwd)" || die "bad --share"

mkdir -p "$NVMK_VM_SCRATCH/runs" "$NVMK_VM_SCRATCH/img"
CTL="$(mktemp -d "$NVMK_VM_SCRATCH/runs/$(date +%Y%m%d-%H%M%S)-$MODE.XXXX")"
printf '%q ' "$@" > "$CTL/cmd.sh"; echo >> "$CTL/cmd.sh"
if [ "$MODE" = noiommu ]; then
	[ -f "$NOIOMMU_VFIO_KO" ] || die "no $NOIOMMU_VFIO_KO (setup.sh noiommu)"
	cp "$NOIOMMU_VFIO_KO" "$CTL/vfio.ko"
fi

img() { # name size
	local f="$NVMK_VM_SCRATCH/img/$1.img"
	[ -f "$f" ] || truncate -s "$2" "$f"
	echo "$f"
}
NVME=(
	-drive "file=$(img c0n1 64M),if=none,id=c0n1,format=raw,cache=unsafe"
	-drive "file=$(img c0n2 32M),if=none,id=c0n2,format=raw,cache=unsafe"
	-drive "file=$(img c1n1 64M),if=none,id=c1n1,format=raw,cache=unsafe"
	-device "nvme,id=nvme0,serial=NVMK0000"
	-device "nvme-ns,drive=c0n1,bus=nvme0,nsid=1"
	-device "nvme-ns,drive=c0n2,bus=nvme0,nsid=2"
	-device "nvme,id=nvme1,serial=NVMK0001"
	-device "nvme-ns,drive=c1n1,bus=nvme1,nsid=1"
)
# type1 only: two more controllers behind a PCIe-to-PCI bridge. The IOMMU
# sees their requests as the bridge's, so they share one IOMMU group: the
# "group not viable" case needs that.
if [ "$MODE" = type1 ]; then
	NVME+=(
		-drive "file=$(img c2n1 16M),if=none,id=c2n1,format=raw,cache=unsafe"
		-drive "file=$(img c3n1 16M),if=none,id=c3n1,format=raw,cache=unsafe"
		-device "pcie-pci-bridge,id=br0,bus=pcie.0"
		-device "nvme,id=nvme2,serial=NVMK0002,bus=br0,addr=1"
		-device "nvme-ns,drive=c2n1,bus=nvme2,nsid=1"
		-device "nvme,id=nvme3,serial=NVMK0003,bus=br0,addr=2"
		-device "nvme-ns,drive=c3n1,bus=nvme3,nsid=1"
	)
fi

# hugepages=8: 2 MiB pages for hugetlb memfds (preferred in no-IOMMU mode).
APPEND="console=ttyS0 panic=-1 quiet loglevel=4 hugepages=8 nvmk.mode=$MODE nvmk.bind=nvme"
if [ "$MODE" = type1 ]; then
	# intel-iommu must come before the devices it translates.
	MACHINE=(-machine q35,kernel-irqchip=split -device intel-iommu,intremap=on,caching-mode=on)
	APPEND+=" intel_iommu=on"
else
	MACHINE=(-machine q35)
fi
[ -n "$EXTRA_APPEND" ] && APPEND+=" $EXTRA_APPEND"
QEMU=(qemu-system-x86_64 "${MACHINE[@]}" -cpu max -m 768M -smp 1 -nographic -no-reboot
      -net none -vga none -kernel "$KERNEL" -initrd "$INITRAMFS" -append "$APPEND"
      -virtfs "local,path=$CTL,mount_tag=ctl,security_model=none,id=ctl"
      -virtfs "local,path=$SHARE,mount_tag=host,security_model=none,id=host"
      "${NVME[@]}")
# QEMU's own record of what its NVMe controllers were told (the "log" trace
# backend, into $CTL, which the guest sees as /ctl/qemu-trace.log): enables,
# shutdowns, Identify, queue creation and Asynchronous Event Requests. Rare
# events only, so tracing does not slow the guest. guest_service.sh checks
# with it that servicing resets nothing and that an AER stays outstanding.
QEMU+=(-D "$CTL/qemu-trace.log")
for ev in pci_nvme_mmio_start_success pci_nvme_mmio_stopped pci_nvme_mmio_shutdown_set \
	pci_nvme_identify pci_nvme_create_sq pci_nvme_create_cq pci_nvme_del_sq \
	pci_nvme_aer pci_nvme_aer_post_cqe; do
	QEMU+=(-trace "enable=$ev")
done
# TCG by default: a /dev/kvm may exist where KVM cannot run these guests
# (nested, MSR filtering). NVMK_VM_KVM=1 opts in.
if [ "${NVMK_VM_KVM:-0}" = 1 ]; then QEMU+=(-accel kvm); else QEMU+=(-accel tcg); fi
echo "${QEMU[*]}" > "$CTL/qemu-cmdline"

T0=$(date +%s.%N)
timeout --foreground -k 5 "$TIMEOUT" "${QEMU[@]}" < /dev/null 2>&1 |
while IFS= read -r line; do
	line="${line%$'\r'}"
	case "$line" in *NVMK-START*) date +%s.%N > "$CTL/t_start" ;; esac
	echo "$line" >> "$CTL/console.log"
	[ "$QUIET" = 1 ] || echo "$line"
done
QRC=${PIPESTATUS[0]}
T1=$(date +%s.%N)
BOOT=NA
[ -f "$CTL/t_start" ] && BOOT=$(awk -v a="$(cat "$CTL/t_start")" -v b="$T0" 'BEGIN{printf "%.1fs", a-b}')
vm_log "mode=$MODE boot-to-command=$BOOT total=$(awk -v a="$T1" -v b="$T0" 'BEGIN{printf "%.1fs", a-b}') log=$CTL/console.log"
[ -f "$CTL/rc" ] && exit "$(cat "$CTL/rc")"
[ "$QRC" = 124 ] && { vm_log "timed out after ${TIMEOUT}s"; exit 124; }
vm_log "no exit status came back (qemu rc=$QRC)"
exit 125
