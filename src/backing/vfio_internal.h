/* SPDX-License-Identifier: MIT */
/*
 * Internal interfaces of the VFIO backing (vfio.c, vfio_pci.c, vfio_dma.c,
 * vfio_irq.c) and of pci_setup.c. Tests include this header to exercise the
 * sysfs and pagemap parsers with fake inputs.
 */
#ifndef NVMK_BACKING_VFIO_INTERNAL_H
#define NVMK_BACKING_VFIO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "nvmekeep/backing.h"

#define VFIO_PATH_MAX	     512
#define VFIO_MAX_IOVA_RANGES 16

/* One DMA mapping made through the backing. */
struct vfio_map {
	bool in_use;
	bool pending;	  /* inherited through a handover, not re-attached yet */
	bool vaddr_valid; /* type1: the kernel knows a valid vaddr for it */
	void *vaddr;
	uint64_t size;
	uint64_t iova; /* type1 IOVA; no-IOMMU: physical address of page 0 */
	int fd;	       /* memfd of the block (owned by the DMA layer) */
	uint64_t fd_offset;
	dev_t st_dev; /* identity of the memfd, to match it after exec */
	ino_t st_ino;
	uint64_t *page_iova; /* no-IOMMU: per-page physical addresses (owned) */
};

struct vfio_iova_span {
	uint64_t start, end; /* inclusive */
};

struct vfio_backing {
	struct nvmk_backing base;
	char sysfs_root[VFIO_PATH_MAX / 2];
	char dev_root[VFIO_PATH_MAX / 2];
	char group_name[32];
	bool noiommu;
	bool handover_ok; /* type1: VFIO_UPDATE_VADDR; no-IOMMU: always */
	bool require_huge;
	bool no_bar0_mmap;
	bool warned_small_pages;
	bool exported;
	int container, group, device;
	uint64_t bar0_off, bar0_region_size, cfg_off;
	void *bar0_map;
	size_t bar0_map_len;
	/* type1 IOVA space: bump allocation through the usable ranges */
	struct vfio_iova_span ranges[VFIO_MAX_IOVA_RANGES];
	unsigned nranges;
	uint64_t iova_next;
	struct vfio_map maps[NVMK_VFIO_MAX_MAPS];
	/* MSI-X */
	unsigned nirq_hw;
	unsigned nirq;
	int irq_fds[NVMK_VFIO_MAX_IRQS];
};

static inline struct vfio_backing *to_vfio(struct nvmk_backing *b)
{
	return (struct vfio_backing *)b;
}

/* ---- vfio_pci.c: sysfs and PCI config space ---- */

/* Canonical lower-case copy of a "DDDD:BB:DD.F" address into @out[16]. */
int vfio_pci_addr_normalize(const char *addr, char out[16]);
int vfio_sysfs_dev_path(const char *root, const char *addr, const char *attr, char *buf,
			size_t len);
bool vfio_sysfs_dev_exists(const char *root, const char *addr);
/* The IOMMU group number as a string; -ENODEV no device, -ENOENT no group. */
int vfio_sysfs_iommu_group(const char *root, const char *addr, char *group, size_t len);
/* Bound driver name, "" when none. */
int vfio_sysfs_driver(const char *root, const char *addr, char *drv, size_t len);
int vfio_sysfs_read_hex(const char *root, const char *addr, const char *attr, uint64_t *val);
/* The devices in IOMMU group @group, each with its driver, as one line. */
int vfio_sysfs_group_members(const char *root, const char *group, char *buf, size_t len);
/* enable_unsafe_noiommu_mode of the vfio module: 1, 0, or -ENOENT. */
int vfio_sysfs_noiommu_param(const char *root);
int vfio_cfg_enable_bus_master(struct vfio_backing *vb);

/* ---- vfio_dma.c ---- */

/* Physical address from one /proc/self/pagemap entry (4 KiB pages). */
int vfio_pagemap_entry_phys(uint64_t entry, uint64_t *phys);
/* Physical addresses of @npages pages from @va, read from pagemap fd @pmfd. */
int vfio_pagemap_resolve(int pmfd, const void *va, size_t npages, uint64_t *out);
/* Usable IOVA ranges from a VFIO_IOMMU_GET_INFO answer of @len bytes. */
int vfio_iova_ranges_parse(const void *info, size_t len, struct vfio_iova_span *out, unsigned max,
			   unsigned *n);
/* Take @size bytes of IOVA space; -ENOSPC when the ranges are exhausted. */
int vfio_iova_alloc(struct vfio_backing *vb, uint64_t size, uint64_t *iova);
int vfio_dma_setup(struct vfio_backing *vb);
int vfio_dma_map(struct nvmk_backing *b, struct nvmk_dma_buf *buf);
void vfio_dma_unmap(struct nvmk_backing *b, struct nvmk_dma_buf *buf);
int vfio_dma_remap(struct nvmk_backing *b, struct nvmk_dma_buf *buf);
void vfio_dma_unmap_all(struct vfio_backing *vb);
/* type1 handover: invalidate (true) or restore (false) every vaddr. */
int vfio_dma_vaddr_invalidate(struct vfio_backing *vb);
int vfio_dma_vaddr_restore(struct vfio_backing *vb);
/* Explain an mlock/MAP_DMA failure for @size bytes (RLIMIT_MEMLOCK). */
void vfio_dma_explain_lock_failure(const struct vfio_backing *vb, int err, uint64_t size);

/* ---- vfio_irq.c ---- */

unsigned vfio_irq_count(struct nvmk_backing *b);
int vfio_irq_enable(struct nvmk_backing *b, unsigned nvec);
void vfio_irq_disable(struct nvmk_backing *b);
int vfio_irq_fd(struct nvmk_backing *b, unsigned vector);
int vfio_irq_probe(struct vfio_backing *vb);

#endif /* NVMK_BACKING_VFIO_INTERNAL_H */
