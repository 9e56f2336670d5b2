/* SPDX-License-Identifier: MIT */
/*
 * VFIO backing: one PCI function bound to vfio-pci, in type1 IOMMU mode
 * (container + group, VFIO_TYPE1v2_IOMMU) or in the kernel's unsafe
 * no-IOMMU mode (/dev/vfio/noiommu-N, VFIO_NOIOMMU_IOMMU).
 *
 * This file: open (with an explanation for every misconfiguration),
 * register access, reset, destroy, and the handover across execve. DMA is in
 * vfio_dma.c, MSI-X in vfio_irq.c, sysfs/config space in vfio_pci.c.
 *
 * What resets the function: vfio-pci resets it when the device file is
 * opened first and when it is released (last close of the fd *and* last
 * unmap of a BAR mapping, which holds its own reference). A handover
 * therefore keeps the device fd open across execve (FD_CLOEXEC cleared:
 * VFIO_GROUP_GET_DEVICE_FD returns it with O_CLOEXEC set) and the successor
 * adopts it without opening the device again.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nvmekeep/log.h"
#include "vfio_internal.h"

/* ---- register access (used when BAR0 could not be mmapped) ---- */

static uint32_t vfio_read32(struct nvmk_backing *b, uint32_t off)
{
	struct vfio_backing *vb = to_vfio(b);
	uint32_t v;

	if (vb->bar0_map)
		return *(volatile uint32_t *)((volatile uint8_t *)vb->bar0_map + off);
	if (off > vb->bar0_region_size - 4 ||
	    pread(vb->device, &v, 4, (off_t)(vb->bar0_off + off)) != 4)
		return 0xffffffffu; /* what a removed device reads as */
	return v;
}

static void vfio_write32(struct nvmk_backing *b, uint32_t off, uint32_t val)
{
	struct vfio_backing *vb = to_vfio(b);

	if (vb->bar0_map) {
		*(volatile uint32_t *)((volatile uint8_t *)vb->bar0_map + off) = val;
		return;
	}
	if (off > vb->bar0_region_size - 4 ||
	    pwrite(vb->device, &val, 4, (off_t)(vb->bar0_off + off)) != 4)
		nvmk_warn(b->name, NVMK_LOG_NOQ, "BAR0 write at %#x failed", off);
}

/* Two dword accesses, low dword first (NVMe Base 2.0, 3.1.3: 64-bit
 * properties may be accessed as two 32-bit halves). */
static uint64_t vfio_read64(struct nvmk_backing *b, uint32_t off)
{
	uint64_t lo = vfio_read32(b, off);

	return lo | (uint64_t)vfio_read32(b, off + 4) << 32;
}

static void vfio_write64(struct nvmk_backing *b, uint32_t off, uint64_t val)
{
	vfio_write32(b, off, (uint32_t)val);
	vfio_write32(b, off + 4, (uint32_t)(val >> 32));
}

static int vfio_reset(struct nvmk_backing *b)
{
	struct vfio_backing *vb = to_vfio(b);
	struct vfio_device_info di = {.argsz = sizeof(di)};

	if (ioctl(vb->device, VFIO_DEVICE_GET_INFO, &di) == 0 &&
	    !(di.flags & VFIO_DEVICE_FLAGS_RESET)) {
		nvmk_err(b->name, NVMK_LOG_NOQ, "function offers no reset (no FLR/PM/bus reset)");
		return -ENOTSUP;
	}
	if (ioctl(vb->device, VFIO_DEVICE_RESET) < 0) {
		int err = -errno;

		nvmk_err(b->name, NVMK_LOG_NOQ, "VFIO_DEVICE_RESET: %s", strerror(-err));
		return err;
	}
	/* The reset restores saved config space; make sure DMA stays enabled. */
	return vfio_cfg_enable_bus_master(vb);
}

static void vfio_destroy(struct nvmk_backing *b)
{
	struct vfio_backing *vb = to_vfio(b);

	if (!b)
		return;
	if (vb->device >= 0)
		vfio_irq_disable(b);
	vfio_dma_unmap_all(vb);
	if (vb->bar0_map)
		munmap(vb->bar0_map, vb->bar0_map_len);
	if (vb->device >= 0)
		close(vb->device);
	if (vb->group >= 0)
		close(vb->group);
	if (vb->container >= 0)
		close(vb->container);
	free(vb);
}

static const struct nvmk_backing_ops vfio_ops = {
    .kind = "vfio",
    .read32 = vfio_read32,
    .read64 = vfio_read64,
    .write32 = vfio_write32,
    .write64 = vfio_write64,
    .dma_map = vfio_dma_map,
    .dma_unmap = vfio_dma_unmap,
    .dma_remap = vfio_dma_remap,
    .irq_count = vfio_irq_count,
    .irq_enable = vfio_irq_enable,
    .irq_disable = vfio_irq_disable,
    .irq_fd = vfio_irq_fd,
    .reset = vfio_reset,
    .destroy = vfio_destroy,
};

bool nvmk_backing_is_vfio(const struct nvmk_backing *b)
{
	return b && b->ops == &vfio_ops;
}

bool nvmk_backing_vfio_is_noiommu(const struct nvmk_backing *b)
{
	return nvmk_backing_is_vfio(b) && ((const struct vfio_backing *)b)->noiommu;
}

static struct vfio_backing *vfio_alloc(const char *addr, const struct nvmk_vfio_opts *opts)
{
	struct vfio_backing *vb = calloc(1, sizeof(*vb));

	if (!vb)
		return NULL;
	vb->base.ops = &vfio_ops;
	snprintf(vb->base.name, sizeof(vb->base.name), "%s", addr);
	snprintf(vb->sysfs_root, sizeof(vb->sysfs_root), "%s",
		 opts && opts->sysfs_root ? opts->sysfs_root : "/sys");
	snprintf(vb->dev_root, sizeof(vb->dev_root), "%s",
		 opts && opts->dev_root ? opts->dev_root : "/dev");
	vb->require_huge = opts && opts->require_hugepages;
	vb->no_bar0_mmap = opts && opts->no_bar0_mmap;
	vb->container = vb->group = vb->device = -1;
	return vb;
}

/* Region offsets, BAR0 mapping (or the pread/pwrite fallback). */
static int vfio_regions(struct vfio_backing *vb)
{
	struct vfio_region_info ri = {.argsz = sizeof(ri), .index = VFIO_PCI_BAR0_REGION_INDEX};
	struct vfio_region_info ci = {.argsz = sizeof(ci), .index = VFIO_PCI_CONFIG_REGION_INDEX};
	void *p = MAP_FAILED;

	if (ioctl(vb->device, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0 ||
	    ioctl(vb->device, VFIO_DEVICE_GET_REGION_INFO, &ci) < 0) {
		nvmk_err(vb->base.name, NVMK_LOG_NOQ, "VFIO_DEVICE_GET_REGION_INFO: %s",
			 strerror(errno));
		return -EIO;
	}
	/* NVMe Base 2.0, 3.1: registers and admin doorbells need >= 0x1008 bytes. */
	if (ri.size < 0x1008 || !(ri.flags & VFIO_REGION_INFO_FLAG_READ) ||
	    !(ri.flags & VFIO_REGION_INFO_FLAG_WRITE)) {
		nvmk_err(vb->base.name, NVMK_LOG_NOQ,
			 "BAR0 is %llu bytes (flags %#x): not an NVMe register BAR",
			 (unsigned long long)ri.size, ri.flags);
		return -ENODEV;
	}
	vb->bar0_off = ri.offset;
	vb->bar0_region_size = ri.size;
	vb->cfg_off = ci.offset;
	if ((ri.flags & VFIO_REGION_INFO_FLAG_MMAP) && !vb->no_bar0_mmap)
		p = mmap(NULL, ri.size, PROT_READ | PROT_WRITE, MAP_SHARED, vb->device,
			 (off_t)ri.offset);
	if (p == MAP_FAILED) {
		nvmk_info(vb->base.name, NVMK_LOG_NOQ,
			  "BAR0 not mappable, using pread/pwrite on the device fd");
		vb->bar0_map = NULL;
		vb->base.bar0 = NULL;
	} else {
		vb->bar0_map = p;
		vb->bar0_map_len = ri.size;
		vb->base.bar0 = p;
	}
	vb->base.bar0_size = ri.size;
	return 0;
}

static int open_failed(struct vfio_backing *vb, int err)
{
	vfio_destroy(&vb->base);
	return err;
}

static int explain_open_errno(const char *addr, const char *path, int err)
{
	if (err == -EACCES || err == -EPERM)
		nvmk_err(addr, NVMK_LOG_NOQ,
			 "permission denied opening %s: run as root, or give the user the group "
			 "file (chown/udev rule) and enough RLIMIT_MEMLOCK",
			 path);
	else if (err == -EBUSY)
		nvmk_err(addr, NVMK_LOG_NOQ,
			 "%s is busy: another process (a VM, another nvmekeep) has the group open",
			 path);
	else
		nvmk_err(addr, NVMK_LOG_NOQ, "opening %s: %s", path, strerror(-err));
	return err;
}

/* Everything before the device fd exists: sysfs checks, container, group. */
static int vfio_open_group(struct vfio_backing *vb, const char *addr)
{
	char path[VFIO_PATH_MAX], drv[64];
	struct vfio_group_status gs = {.argsz = sizeof(gs)};
	struct stat st;
	int err, type, np;

	if (!vfio_sysfs_dev_exists(vb->sysfs_root, addr)) {
		nvmk_err(addr, NVMK_LOG_NOQ,
			 "no PCI function %s in %s/bus/pci/devices: check the address with "
			 "`nvmekeep setup list` or `lspci -D`",
			 addr, vb->sysfs_root);
		return -ENODEV;
	}
	err = vfio_sysfs_driver(vb->sysfs_root, addr, drv, sizeof(drv));
	if (err || strcmp(drv, "vfio-pci") != 0) {
		/* the bind hint names NVMe functions only: never suggest taking
		 * a network card or a disk controller of another class */
		if (nvmk_pci_is_nvme(vb->sysfs_root, addr))
			nvmk_err(addr, NVMK_LOG_NOQ,
				 "%s is %s%s, not to vfio-pci: bind it with `nvmekeep setup bind "
				 "%s`",
				 addr, drv[0] ? "bound to " : "not bound to any driver", drv, addr);
		else
			nvmk_err(addr, NVMK_LOG_NOQ,
				 "%s is not an NVMe controller (see `nvmekeep setup list`)", addr);
		return -EBUSY;
	}
	err = vfio_sysfs_iommu_group(vb->sysfs_root, addr, vb->group_name, sizeof(vb->group_name));
	if (err) {
		np = vfio_sysfs_noiommu_param(vb->sysfs_root);
		nvmk_err(addr, NVMK_LOG_NOQ,
			 "%s has no IOMMU group: enable the IOMMU (firmware VT-d/AMD-Vi and "
			 "intel_iommu=on / amd_iommu=on) or, without one, load vfio with "
			 "enable_unsafe_noiommu_mode=1 (needs CONFIG_VFIO_NOIOMMU%s) and rebind",
			 addr, np < 0 ? "; this vfio module lacks it" : "");
		return -ENOTSUP;
	}

	snprintf(path, sizeof(path), "%s/vfio/noiommu-%s", vb->dev_root, vb->group_name);
	vb->noiommu = stat(path, &st) == 0;
	if (!vb->noiommu)
		snprintf(path, sizeof(path), "%s/vfio/%s", vb->dev_root, vb->group_name);

	{
		char cpath[VFIO_PATH_MAX];

		snprintf(cpath, sizeof(cpath), "%s/vfio/vfio", vb->dev_root);
		vb->container = open(cpath, O_RDWR | O_CLOEXEC);
		if (vb->container < 0) {
			err = -errno;
			if (err == -ENOENT) {
				nvmk_err(addr, NVMK_LOG_NOQ,
					 "%s missing: load the vfio modules (modprobe vfio-pci)",
					 cpath);
				return -ENODEV;
			}
			return explain_open_errno(addr, cpath, err);
		}
	}
	if (ioctl(vb->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		nvmk_err(addr, NVMK_LOG_NOQ, "unknown VFIO API version");
		return -ENOTSUP;
	}
	type = vb->noiommu ? VFIO_NOIOMMU_IOMMU : VFIO_TYPE1v2_IOMMU;
	if (ioctl(vb->container, VFIO_CHECK_EXTENSION, type) != 1) {
		if (vb->noiommu)
			nvmk_err(addr, NVMK_LOG_NOQ,
				 "the container offers no no-IOMMU mode: load vfio with "
				 "enable_unsafe_noiommu_mode=1");
		else
			nvmk_err(addr, NVMK_LOG_NOQ,
				 "no type1v2 IOMMU driver: modprobe vfio_iommu_type1");
		return -ENOTSUP;
	}

	vb->group = open(path, O_RDWR | O_CLOEXEC);
	if (vb->group < 0) {
		err = -errno;
		if (err == -ENOENT) {
			np = vfio_sysfs_noiommu_param(vb->sysfs_root);
			nvmk_err(addr, NVMK_LOG_NOQ,
				 "%s missing although %s is on vfio-pci: without an IOMMU, vfio "
				 "must be loaded with enable_unsafe_noiommu_mode=1 (currently %s)",
				 path, addr,
				 np == 1   ? "on"
				 : np == 0 ? "off"
					   : "not supported");
			return -ENOTSUP;
		}
		return explain_open_errno(addr, path, err);
	}
	if (ioctl(vb->group, VFIO_GROUP_GET_STATUS, &gs) < 0) {
		err = -errno;
		nvmk_err(addr, NVMK_LOG_NOQ, "VFIO_GROUP_GET_STATUS: %s", strerror(-err));
		return err;
	}
	if (!(gs.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		char members[1024];

		vfio_sysfs_group_members(vb->sysfs_root, vb->group_name, members, sizeof(members));
		nvmk_err(addr, NVMK_LOG_NOQ,
			 "IOMMU group %s is not viable: every device in it must be bound to "
			 "vfio-pci or to no driver; group members: %s",
			 vb->group_name, members);
		return -EBUSY;
	}
	if (ioctl(vb->group, VFIO_GROUP_SET_CONTAINER, &vb->container) < 0) {
		err = -errno;
		nvmk_err(addr, NVMK_LOG_NOQ, "VFIO_GROUP_SET_CONTAINER: %s", strerror(-err));
		return err;
	}
	if (ioctl(vb->container, VFIO_SET_IOMMU, type) < 0) {
		err = -errno;
		nvmk_err(addr, NVMK_LOG_NOQ, "VFIO_SET_IOMMU(%s): %s",
			 vb->noiommu ? "no-IOMMU" : "type1v2", strerror(-err));
		return err;
	}
	return 0;
}

/* Whether a type1 container can take new virtual addresses for live
 * mappings; the extension only answers once an IOMMU is set. */
static void vfio_probe_handover(struct vfio_backing *vb)
{
	vb->handover_ok =
	    vb->noiommu || ioctl(vb->container, VFIO_CHECK_EXTENSION, VFIO_UPDATE_VADDR) == 1;
}

int nvmk_backing_vfio_open(const char *pci_addr, const struct nvmk_vfio_opts *opts,
			   struct nvmk_backing **out)
{
	char addr[16];
	struct vfio_backing *vb;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (vfio_pci_addr_normalize(pci_addr, addr) < 0) {
		nvmk_err(pci_addr ? pci_addr : "(null)", NVMK_LOG_NOQ,
			 "malformed PCI address '%s': expected DDDD:BB:DD.F, e.g. 0000:00:03.0",
			 pci_addr ? pci_addr : "(null)");
		return -EINVAL;
	}
	vb = vfio_alloc(addr, opts);
	if (!vb)
		return -ENOMEM;
	err = vfio_open_group(vb, addr);
	if (err)
		return open_failed(vb, err);
	vfio_probe_handover(vb);
	err = vfio_dma_setup(vb);
	if (err)
		return open_failed(vb, err);

	/* The kernel returns the device fd with O_CLOEXEC set. */
	vb->device = ioctl(vb->group, VFIO_GROUP_GET_DEVICE_FD, addr);
	if (vb->device < 0) {
		err = -errno;
		nvmk_err(addr, NVMK_LOG_NOQ, "VFIO_GROUP_GET_DEVICE_FD: %s%s", strerror(-err),
			 err == -EBUSY ? " (the device is open elsewhere)" : "");
		return open_failed(vb, err);
	}
	err = vfio_regions(vb);
	if (!err)
		err = vfio_cfg_enable_bus_master(vb);
	if (!err && !(opts && opts->no_reset) && vfio_reset(&vb->base) < 0)
		nvmk_warn(addr, NVMK_LOG_NOQ, "continuing without a function reset");
	if (!err)
		err = vfio_irq_probe(vb);
	if (err)
		return open_failed(vb, err);
	nvmk_info(addr, NVMK_LOG_NOQ, "opened via VFIO %s, group %s, %u MSI-X vectors, BAR0 %s%s",
		  vb->noiommu ? "no-IOMMU" : "type1v2", vb->group_name, vb->nirq_hw,
		  vb->bar0_map ? "mapped" : "via pread/pwrite",
		  vb->handover_ok ? "" : ", handover unsupported (no VFIO_UPDATE_VADDR)");
	*out = &vb->base;
	return 0;
}

/* ---- handover ---- */

int nvmk_backing_vfio_handover_supported(struct nvmk_backing *b)
{
	if (!nvmk_backing_is_vfio(b))
		return -ENOTSUP;
	if (!to_vfio(b)->handover_ok) {
		nvmk_err(b->name, NVMK_LOG_NOQ,
			 "handover unsupported: the type1 IOMMU driver lacks VFIO_UPDATE_VADDR "
			 "(Linux >= 5.12 needed), the DMA mappings could not follow a new "
			 "address space");
		return -ENOTSUP;
	}
	return 0;
}

static int set_cloexec(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		return -errno;
	fl = on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC;
	return fcntl(fd, F_SETFD, fl) < 0 ? -errno : 0;
}

static int export_cloexec(struct vfio_backing *vb, bool on)
{
	int fds[3] = {vb->container, vb->group, vb->device};
	unsigned i;
	int err = 0;

	for (i = 0; i < 3 && !err; i++)
		err = set_cloexec(fds[i], on);
	for (i = 0; i < vb->nirq && !err; i++)
		err = set_cloexec(vb->irq_fds[i], on);
	for (i = 0; i < NVMK_VFIO_MAX_MAPS && !err; i++)
		if (vb->maps[i].in_use)
			err = set_cloexec(vb->maps[i].fd, on);
	return err;
}

int nvmk_backing_vfio_export_fds(struct nvmk_backing *b, struct nvmk_vfio_handover *ho)
{
	struct vfio_backing *vb;
	unsigned i;
	int err;

	if (!ho)
		return -EINVAL;
	err = nvmk_backing_vfio_handover_supported(b);
	if (err)
		return err;
	vb = to_vfio(b);
	if (vb->exported)
		return -EALREADY;
	memset(ho, 0, sizeof(*ho));
	if (vfio_pci_addr_normalize(b->name, ho->pci_addr) < 0)
		return -EINVAL;
	ho->noiommu = vb->noiommu;
	ho->container_fd = vb->container;
	ho->group_fd = vb->group;
	ho->device_fd = vb->device;
	ho->nirqs = vb->nirq;
	memcpy(ho->irq_fds, vb->irq_fds, vb->nirq * sizeof(int));
	for (i = 0; i < NVMK_VFIO_MAX_MAPS; i++) {
		const struct vfio_map *m = &vb->maps[i];

		/* Blocks inherited and not re-attached yet travel on too. */
		if (!m->in_use)
			continue;
		ho->maps[ho->nmaps].iova = m->iova;
		ho->maps[ho->nmaps].size = m->size;
		ho->maps[ho->nmaps].fd = m->fd;
		ho->maps[ho->nmaps].fd_offset = m->fd_offset;
		ho->nmaps++;
	}
	err = export_cloexec(vb, false);
	if (!err)
		err = vfio_dma_vaddr_invalidate(vb);
	if (err) {
		export_cloexec(vb, true);
		nvmk_err(b->name, NVMK_LOG_NOQ, "preparing the handover: %s", strerror(-err));
		return err;
	}
	vb->exported = true;
	return 0;
}

int nvmk_backing_vfio_export_abort(struct nvmk_backing *b, const struct nvmk_vfio_handover *ho)
{
	struct vfio_backing *vb;
	int err;

	(void)ho;
	if (!nvmk_backing_is_vfio(b))
		return -EINVAL;
	vb = to_vfio(b);
	if (!vb->exported)
		return 0;
	err = vfio_dma_vaddr_restore(vb);
	export_cloexec(vb, true);
	vb->exported = false;
	return err;
}

int nvmk_vfio_handover_format(const struct nvmk_vfio_handover *ho, char *buf, size_t len)
{
	size_t used;
	unsigned i;
	int n;

#define HO_PUT(...)                                                                                \
	do {                                                                                       \
		n = snprintf(buf + used, len - used, __VA_ARGS__);                                 \
		if (n < 0 || (size_t)n >= len - used)                                              \
			return -ENOSPC;                                                            \
		used += (size_t)n;                                                                 \
	} while (0)

	if (!ho || !buf || !len)
		return -EINVAL;
	used = 0;
	HO_PUT("nvmk-vfio1;%s;%s;%d,%d,%d;irq", ho->pci_addr, ho->noiommu ? "noiommu" : "type1",
	       ho->container_fd, ho->group_fd, ho->device_fd);
	for (i = 0; i < ho->nirqs && i < NVMK_VFIO_MAX_IRQS; i++)
		HO_PUT("%c%d", i ? ',' : '=', ho->irq_fds[i]);
	HO_PUT(";map");
	for (i = 0; i < ho->nmaps && i < NVMK_VFIO_MAX_MAPS; i++)
		HO_PUT("%c%" PRIx64 ":%" PRIx64 ":%d:%" PRIx64, i ? ',' : '=', ho->maps[i].iova,
		       ho->maps[i].size, ho->maps[i].fd, ho->maps[i].fd_offset);
#undef HO_PUT
	return (int)used;
}

/* Parse a decimal fd (>= 0) at *p, advancing it. */
static int parse_fd(const char **p, int *fd)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(*p, &end, 10);
	if (errno || end == *p || v < 0 || v > 1 << 20)
		return -EINVAL;
	*fd = (int)v;
	*p = end;
	return 0;
}

static int parse_hex(const char **p, uint64_t *val)
{
	char *end;

	if (**p == '-' || **p == '+' || **p == ' ')
		return -EINVAL;
	errno = 0;
	*val = strtoull(*p, &end, 16);
	if (errno || end == *p)
		return -EINVAL;
	*p = end;
	return 0;
}

int nvmk_vfio_handover_parse(const char *s, struct nvmk_vfio_handover *ho)
{
	const char *p;
	char addr[13];

	if (!s || !ho || strncmp(s, "nvmk-vfio1;", 11) != 0)
		return -EINVAL;
	memset(ho, 0, sizeof(*ho));
	p = s + 11;
	if (strlen(p) < 13 || p[12] != ';')
		return -EINVAL;
	memcpy(addr, p, 12);
	addr[12] = '\0';
	if (vfio_pci_addr_normalize(addr, ho->pci_addr) < 0)
		return -EINVAL;
	p += 13;
	if (!strncmp(p, "type1;", 6)) {
		p += 6;
	} else if (!strncmp(p, "noiommu;", 8)) {
		ho->noiommu = true;
		p += 8;
	} else {
		return -EINVAL;
	}
	if (parse_fd(&p, &ho->container_fd) || *p++ != ',' || parse_fd(&p, &ho->group_fd) ||
	    *p++ != ',' || parse_fd(&p, &ho->device_fd) || strncmp(p, ";irq", 4))
		return -EINVAL;
	p += 4;
	while (*p == '=' || *p == ',') {
		if ((*p == '=') != (ho->nirqs == 0) || ho->nirqs >= NVMK_VFIO_MAX_IRQS)
			return -EINVAL;
		p++;
		if (parse_fd(&p, &ho->irq_fds[ho->nirqs]))
			return -EINVAL;
		ho->nirqs++;
	}
	if (strncmp(p, ";map", 4))
		return -EINVAL;
	p += 4;
	while (*p == '=' || *p == ',') {
		struct nvmk_vfio_handover_map *m = &ho->maps[ho->nmaps];

		if ((*p == '=') != (ho->nmaps == 0) || ho->nmaps >= NVMK_VFIO_MAX_MAPS)
			return -EINVAL;
		p++;
		if (parse_hex(&p, &m->iova) || *p++ != ':' || parse_hex(&p, &m->size) ||
		    *p++ != ':' || parse_fd(&p, &m->fd) || *p++ != ':' ||
		    parse_hex(&p, &m->fd_offset))
			return -EINVAL;
		if (!m->size || (m->size & (NVMK_DMA_PAGE_SIZE - 1)))
			return -EINVAL;
		ho->nmaps++;
	}
	return *p ? -EINVAL : 0;
}

int nvmk_backing_vfio_adopt(const struct nvmk_vfio_handover *ho, const struct nvmk_vfio_opts *opts,
			    struct nvmk_backing **out)
{
	struct vfio_backing *vb;
	struct vfio_device_info di = {.argsz = sizeof(di)};
	unsigned i;
	int err;

	if (!ho || !out || ho->nirqs > NVMK_VFIO_MAX_IRQS || ho->nmaps > NVMK_VFIO_MAX_MAPS)
		return -EINVAL;
	*out = NULL;
	vb = vfio_alloc(ho->pci_addr, opts);
	if (!vb)
		return -ENOMEM;
	vb->noiommu = ho->noiommu;
	/* A device fd that is not one: refuse before touching anything. */
	if (ioctl(ho->device_fd, VFIO_DEVICE_GET_INFO, &di) < 0 ||
	    !(di.flags & VFIO_DEVICE_FLAGS_PCI)) {
		nvmk_err(ho->pci_addr, NVMK_LOG_NOQ, "inherited fd %d is not a VFIO PCI device",
			 ho->device_fd);
		free(vb);
		return -EBADF;
	}
	vb->container = ho->container_fd;
	vb->group = ho->group_fd;
	vb->device = ho->device_fd;
	vfio_probe_handover(vb);
	err = vfio_dma_setup(vb);
	if (!err)
		err = vfio_regions(vb);
	if (!err)
		err = vfio_irq_probe(vb);
	for (i = 0; !err && i < ho->nmaps; i++) {
		struct vfio_map *m = &vb->maps[i];
		struct stat st;

		if (fstat(ho->maps[i].fd, &st) < 0) {
			nvmk_err(ho->pci_addr, NVMK_LOG_NOQ, "inherited memfd %d: %s",
				 ho->maps[i].fd, strerror(errno));
			err = -EBADF;
			break;
		}
		m->in_use = m->pending = true;
		m->iova = ho->maps[i].iova;
		m->size = ho->maps[i].size;
		m->fd = ho->maps[i].fd;
		m->fd_offset = ho->maps[i].fd_offset;
		m->st_dev = st.st_dev;
		m->st_ino = st.st_ino;
		if (!vb->noiommu && m->iova + m->size > vb->iova_next)
			vb->iova_next = m->iova + m->size;
	}
	if (err) {
		/* Leave the inherited fds open: the caller decides (a reset or a retry). */
		if (vb->bar0_map)
			munmap(vb->bar0_map, vb->bar0_map_len);
		free(vb);
		return err;
	}
	vb->nirq = ho->nirqs;
	memcpy(vb->irq_fds, ho->irq_fds, ho->nirqs * sizeof(int));
	/* Nothing the successor does not need crosses a further exec by accident. */
	export_cloexec(vb, true);
	nvmk_info(vb->base.name, NVMK_LOG_NOQ, "adopted from handover (%s, %u vectors, %u blocks)",
		  vb->noiommu ? "no-IOMMU" : "type1v2", vb->nirq, ho->nmaps);
	*out = &vb->base;
	return 0;
}
