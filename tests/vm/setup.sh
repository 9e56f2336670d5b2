#!/bin/bash
# One-time (cached) preparation of the VM tests, Debian 12 as root; only
# Debian's archive is used.
#   setup.sh host       packages + guest kernel unpacked + initramfs
#   setup.sh noiommu    vfio.ko with CONFIG_VFIO_NOIOMMU (from linux-source-6.1)
#   setup.sh            both
# Every step is skipped when its output exists and is newer than its inputs.
set -euo pipefail
. "$(dirname "$0")/common.sh"

step_host() {
	local pkgs=(qemu-system-x86 busybox-static cpio kmod gcc libc6-dev make xz-utils
		    meson ninja-build pkg-config libcmocka-dev
		    "linux-headers-$KVER")
	local missing=() p
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		vm_log "installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
	mkdir -p "$NVMK_VM_SCRATCH/pkg"
	if [ ! -f "$KERNEL" ]; then
		vm_log "unpacking linux-image-$KVER into $KROOT"
		(cd "$NVMK_VM_SCRATCH/pkg" && apt-get -o APT::Sandbox::User=root download -qq "linux-image-$KVER")
		rm -rf "$KROOT"; mkdir -p "$KROOT"
		dpkg-deb -x "$NVMK_VM_SCRATCH"/pkg/linux-image-"$KVER"_*.deb "$KROOT"
		depmod -b "$KROOT" "$KVER" # the .deb ships no modules.dep
	fi
	if [ ! -f "$INITRAMFS" ] || [ "$NVMK_VM_DIR/guest-init.sh" -nt "$INITRAMFS" ] ||
	   [ "$NVMK_VM_DIR/setup.sh" -nt "$INITRAMFS" ] || ! libs_staged; then
		build_initramfs
	fi
}

# The shared libraries the guest needs: glibc and the sanitizer runtimes, plus
# whatever the test programs link (run.sh passes the list ldd gives for the
# binaries it built in NVMK_VM_EXTRA_LIBS, so a new dependency of the project
# rebuilds the image instead of failing in the guest).
guest_libs() {
	printf '%s\n' ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libgcc_s.so.1 libpthread.so.0 \
		libdl.so.2 librt.so.1 libstdc++.so.6 libasan.so.8 libubsan.so.1 \
		libjson-c.so.5 liburing.so.2 libprotobuf-c.so.1 ${NVMK_VM_EXTRA_LIBS:-} | sort -u
}

# true when every library of guest_libs is in the cached image
libs_staged() {
	local l
	for l in $(guest_libs); do
		grep -qx "$l" "$INITRAMFS.libs" 2>/dev/null || return 1
	done
}

# busybox + the vfio/9p/virtio/nvme modules + glibc (the test programs are
# dynamic binaries straight from the meson build dir) + /init.
build_initramfs() {
	local stage="$NVMK_VM_SCRATCH/initramfs.d" mdir="$KROOT/lib/modules/$KVER" m ko rel a l
	ldd /bin/busybox >/dev/null 2>&1 && die "/bin/busybox is dynamic: install busybox-static"
	rm -rf "$stage"
	mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,host,ctl,lib64,etc} \
		 "$stage/lib/x86_64-linux-gnu" "$stage/lib/modules/$KVER"
	cp /bin/busybox "$stage/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ -e "$stage/bin/$a" ] || ln -s busybox "$stage/bin/$a"
	done
	for m in vfio vfio_iommu_type1 vfio-pci 9p 9pnet_virtio virtio_pci nvme; do
		modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
	done | sort -u | while read -r ko; do
		rel="${ko#"$mdir"/}"
		mkdir -p "$stage/lib/modules/$KVER/$(dirname "$rel")"
		cp "$ko" "$stage/lib/modules/$KVER/$rel"
	done
	cp "$mdir"/modules.builtin* "$mdir/modules.order" "$stage/lib/modules/$KVER/"
	depmod -b "$stage" "$KVER"
	# libasan/libubsan: run.sh --asan runs the smoke test sanitized in the guest
	for l in $(guest_libs); do
		for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu; do
			if [ -e "$d/$l" ]; then
				cp -L "$d/$l" "$stage/lib/x86_64-linux-gnu/"
				break
			fi
		done
	done
	ln -sf ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$stage/lib64/ld-linux-x86-64.so.2"
	install -m 0755 "$NVMK_VM_DIR/guest-init.sh" "$stage/init"
	(cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$INITRAMFS.tmp"
	mv "$INITRAMFS.tmp" "$INITRAMFS"
	guest_libs > "$INITRAMFS.libs"
	vm_log "built $INITRAMFS ($(du -h "$INITRAMFS" | cut -f1))"
}

# Debian builds 6.1 with "# CONFIG_VFIO_NOIOMMU is not set": rebuild only
# vfio.ko (vfio_main.c, container.c, iova_bitmap.c) out of tree against the
# matching headers with the option forced on. The other vfio modules stay
# stock: the option changes no structure they share with vfio.ko.
step_noiommu() {
	[ -f "$NOIOMMU_VFIO_KO" ] && [ "$NOIOMMU_VFIO_KO" -nt "$NVMK_VM_DIR/setup.sh" ] && return 0
	local src="$NVMK_VM_SCRATCH/src/linux-source-6.1"
	mkdir -p "$NVMK_VM_SCRATCH/pkg" "$NVMK_VM_SCRATCH/src"
	if [ ! -f "$src/drivers/vfio/vfio_main.c" ]; then
		(cd "$NVMK_VM_SCRATCH/pkg" &&
		 { ls linux-source-6.1_*.deb >/dev/null 2>&1 || apt-get -o APT::Sandbox::User=root download -qq linux-source-6.1; })
		vm_log "extracting drivers/vfio from linux-source-6.1"
		dpkg-deb --fsys-tarfile "$NVMK_VM_SCRATCH"/pkg/linux-source-6.1_*.deb |
			tar -xO ./usr/src/linux-source-6.1.tar.xz |
			tar -xJ -C "$NVMK_VM_SCRATCH/src" linux-source-6.1/drivers/vfio
	fi
	rm -rf "$NOIOMMU_DIR"; mkdir -p "$NOIOMMU_DIR"
	cp "$src"/drivers/vfio/{vfio_main.c,container.c,iova_bitmap.c,vfio.h} "$NOIOMMU_DIR"/
	cat > "$NOIOMMU_DIR/Kbuild" <<'KB'
obj-m := vfio.o
vfio-y := vfio_main.o iova_bitmap.o container.o
ccflags-y := -DCONFIG_VFIO_NOIOMMU=1
KB
	make -s -C "/usr/src/linux-headers-$KVER" M="$NOIOMMU_DIR" modules >/dev/null
	modinfo -p "$NOIOMMU_VFIO_KO" | grep -q enable_unsafe_noiommu_mode ||
		die "built vfio.ko lacks enable_unsafe_noiommu_mode"
	vm_log "built $NOIOMMU_VFIO_KO"
}

case "${1:-all}" in
	host) step_host ;;
	noiommu) step_noiommu ;;
	all) step_host; step_noiommu ;;
	*) die "usage: setup.sh [host|noiommu|all]" ;;
esac
