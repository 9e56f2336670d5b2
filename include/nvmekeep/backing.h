/* SPDX-License-Identifier: MIT */
/*
 * Device backing: how the driver reaches one NVMe controller.
 *
 * One small vtable with four concerns:
 *  - BAR0 register access: @bar0 is a mapped pointer when the backing has one
 *    (VFIO mmap); the driver then uses plain volatile loads/stores on the fast
 *    path. Otherwise (emulator, vfio-user, VFIO without mmap) it calls ops.
 *  - DMA memory: blocks from the DMA layer (ephemeral or private pool) mapped
 *    into the device's address space; the device address (IOVA) of any byte of
 *    a mapped block can be looked up.
 *  - Interrupts: MSI-X vectors signalled on eventfds the backing owns.
 *  - Identity and lifecycle: a name, a function reset, destroy.
 *
 * Implementations: local (in-process emulator), vfio (type1 and no-IOMMU),
 * vfio-user client.
 *
 * Threading: register accessors and nvmk_backing_iova() may be called from
 * any thread concurrently. dma_map/dma_unmap and irq setup are control-path
 * calls; the caller serialises them per backing.
 */
#ifndef NVMEKEEP_BACKING_H
#define NVMEKEEP_BACKING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvmekeep/dma.h"

struct nvmk_backing;
struct nvmk_emu;

/* A mapped DMA block: the memory plus where the device sees it. */
struct nvmk_dma_buf {
	struct nvmk_dma_mem mem;
	uint64_t iova;       /* device address of mem.vaddr when @page_iova is NULL */
	uint64_t *page_iova; /* per-4KiB-page device addresses (no-IOMMU), else NULL */
};

/** nvmk_dma_buf_iova - device address of byte @off of @buf. */
static inline uint64_t nvmk_dma_buf_iova(const struct nvmk_dma_buf *buf, size_t off)
{
	if (!buf->page_iova)
		return buf->iova + off;
	return buf->page_iova[off >> NVMK_DMA_PAGE_SHIFT] + (off & (NVMK_DMA_PAGE_SIZE - 1));
}

struct nvmk_backing_ops {
	const char *kind; /* "local", "vfio", "vfio-user" */
	uint32_t (*read32)(struct nvmk_backing *b, uint32_t off);
	uint64_t (*read64)(struct nvmk_backing *b, uint32_t off);
	void (*write32)(struct nvmk_backing *b, uint32_t off, uint32_t val);
	void (*write64)(struct nvmk_backing *b, uint32_t off, uint64_t val);

	/* Make @buf->mem visible to the device; fill @buf->iova / @buf->page_iova. */
	int (*dma_map)(struct nvmk_backing *b, struct nvmk_dma_buf *buf);
	/* Remove the device's access; the memory itself stays. */
	void (*dma_unmap)(struct nvmk_backing *b, struct nvmk_dma_buf *buf);
	/* Servicing: make the device address @buf->iova (mapped by a predecessor,
	 * possibly still mapped to an old host address) reach @buf->mem now, without
	 * a window where it reaches nothing (VFIO_DMA_MAP_FLAG_VADDR for type1).
	 * May be NULL: the backing cannot keep a device alive across a restore. */
	int (*dma_remap)(struct nvmk_backing *b, struct nvmk_dma_buf *buf);

	/* Number of MSI-X vectors the function offers. */
	unsigned (*irq_count)(struct nvmk_backing *b);
	/* Enable vectors [0, nvec); eventfds are created and owned by the backing. */
	int (*irq_enable)(struct nvmk_backing *b, unsigned nvec);
	void (*irq_disable)(struct nvmk_backing *b);
	/* The eventfd of @vector, or -1 when not enabled. */
	int (*irq_fd)(struct nvmk_backing *b, unsigned vector);

	/* Function level reset (or the closest the backing has). */
	int (*reset)(struct nvmk_backing *b);
	void (*destroy)(struct nvmk_backing *b);
};

struct nvmk_backing {
	const struct nvmk_backing_ops *ops;
	char name[64];             /* device id: PCI address or emulator name */
	volatile uint8_t *bar0;    /* mapped BAR0, or NULL: use ops */
	size_t bar0_size;
	struct nvmk_dma_pool *pool; /* DMA source for nvmk_backing_dma_alloc (NULL = ephemeral) */
};

/* ---- register access: fast path through the mapping when there is one ---- */

static inline uint32_t nvmk_backing_read32(struct nvmk_backing *b, uint32_t off)
{
	if (b->bar0)
		return *(volatile uint32_t *)(b->bar0 + off);
	return b->ops->read32(b, off);
}

static inline void nvmk_backing_write32(struct nvmk_backing *b, uint32_t off, uint32_t val)
{
	if (b->bar0)
		*(volatile uint32_t *)(b->bar0 + off) = val;
	else
		b->ops->write32(b, off, val);
}

/* 64-bit registers (CAP, ASQ, ACQ). Base 2.0 3.1.3 allows a controller to
 * see them as two 32-bit accesses, low dword first; backings decide. */
static inline uint64_t nvmk_backing_read64(struct nvmk_backing *b, uint32_t off)
{
	return b->ops->read64(b, off);
}

static inline void nvmk_backing_write64(struct nvmk_backing *b, uint32_t off, uint64_t val)
{
	b->ops->write64(b, off, val);
}

/* ---- DMA ---- */

/**
 * nvmk_backing_dma_alloc - allocate DMA memory from the backing's source and
 * map it for the device.
 * @owner/@tag: see nvmk_dma_alloc (pool bookkeeping); @owner may be NULL to
 *              use the backing's name.
 * Return: 0 or negative errno; nothing is left allocated on failure.
 */
int nvmk_backing_dma_alloc(struct nvmk_backing *b, size_t size, const char *tag,
			   struct nvmk_dma_buf *buf);
/** nvmk_backing_dma_free - unmap and free a block from nvmk_backing_dma_alloc. */
void nvmk_backing_dma_free(struct nvmk_backing *b, struct nvmk_dma_buf *buf);

/**
 * nvmk_backing_dma_reclaim - servicing: take back a pool block by its tag
 * (nvmk_dma_reclaim with the backing's name as owner) and make its saved
 * device address @iova reach it (ops->dma_remap).
 * Return: 0, -EOPNOTSUPP (no pool, or the backing has no dma_remap), or the
 * error of nvmk_dma_reclaim / dma_remap (the block then stays reclaimed, so
 * it is not reported leaked, and is left to the device).
 */
int nvmk_backing_dma_reclaim(struct nvmk_backing *b, const char *tag, uint64_t iova,
			     struct nvmk_dma_buf *buf);
/**
 * nvmk_backing_dma_forget - servicing: drop the host-side record of a block
 * from nvmk_backing_dma_alloc without unmapping or freeing it: the device
 * keeps using it and a successor reclaims it by its tag.
 */
void nvmk_backing_dma_forget(struct nvmk_backing *b, struct nvmk_dma_buf *buf);

/**
 * nvmk_backing_iova - device address of @vaddr, which must lie inside a block
 * mapped through @b, together with the number of bytes from @vaddr that are
 * contiguous in device address space (at least to the end of its page).
 * Return: 0, or -EFAULT when @vaddr is not inside any mapped block.
 */
int nvmk_backing_iova(struct nvmk_backing *b, const void *vaddr, uint64_t *iova, size_t *contig);

/* ---- construction ---- */

/**
 * nvmk_backing_local_create - a backing over an in-process emulated
 * controller. The backing creates the emulator from @cfg (its dma callback
 * and context are supplied by the backing) and owns it.
 * @emu_out: optional, receives the emulator for fault injection in tests.
 */
struct nvmk_emu_config;
int nvmk_backing_local_create(const struct nvmk_emu_config *cfg, struct nvmk_backing **out,
			      struct nvmk_emu **emu_out);

/** nvmk_backing_destroy - release everything the backing holds. NULL is a no-op. */
void nvmk_backing_destroy(struct nvmk_backing *b);

#endif /* NVMEKEEP_BACKING_H */
