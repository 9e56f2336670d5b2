# Shared settings of the nvmekeep VM tests (sourced by the other scripts).
# Everything large lives in $NVMK_VM_SCRATCH (default /tmp/nvmekeep-vm).
NVMK_VM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NVMK_SRC_ROOT="$(cd "$NVMK_VM_DIR/../.." && pwd)"
NVMK_VM_SCRATCH="${NVMK_VM_SCRATCH:-/tmp/nvmekeep-vm}"
# Debian bookworm kernel ABI of the guest. Only unpacked into scratch
# (dpkg-deb -x); the host's own kernel is never touched.
KVER="${KVER:-6.1.0-56-amd64}"
KROOT="$NVMK_VM_SCRATCH/kroot"
KERNEL="$KROOT/boot/vmlinuz-$KVER"
INITRAMFS="$NVMK_VM_SCRATCH/initramfs.cpio.gz"
# vfio.ko rebuilt with CONFIG_VFIO_NOIOMMU (Debian's lacks it); reaches the
# guest over the 9p share, so the initramfs does not wait for it.
NOIOMMU_DIR="$NVMK_VM_SCRATCH/vfio-noiommu"
NOIOMMU_VFIO_KO="$NOIOMMU_DIR/vfio.ko"

vm_log() { echo "nvmekeep-vm: $*" >&2; }
die() { vm_log "$*"; exit 125; }
