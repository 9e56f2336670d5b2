/* SPDX-License-Identifier: MIT */
/*
 * DMA memory: page-aligned, fd-backed blocks that a backing maps into a
 * device's address space.
 *
 * Two sources:
 *  - ephemeral: each block is its own memfd; gone when the process exits.
 *  - private pool: one memfd (hugetlb when available) mapped once; a slot
 *    table inside the pool records every block as Free, Allocated{owner, tag}
 *    or Leaked, so a successor process that inherits the pool fd can reclaim
 *    the blocks of a live device by (owner, tag) after exec.
 *
 * Every block is backed by a file descriptor so that it can be shared with a
 * vfio-user server, mapped by VFIO at a new virtual address after exec, and
 * resolved to physical addresses in no-IOMMU mode.
 *
 * Threading: the pool is internally locked; a block is owned by one user.
 */
#ifndef NVMEKEEP_DMA_H
#define NVMEKEEP_DMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NVMK_DMA_PAGE_SIZE 4096u
#define NVMK_DMA_PAGE_SHIFT 12

struct nvmk_dma_pool;

/* A block of DMA memory. */
struct nvmk_dma_mem {
	void *vaddr;                 /* page aligned */
	size_t size;                 /* multiple of NVMK_DMA_PAGE_SIZE */
	int fd;                      /* memfd holding the block */
	uint64_t fd_offset;          /* offset of the block inside @fd */
	struct nvmk_dma_pool *pool;  /* NULL for ephemeral memory */
	uint32_t slot;               /* pool slot index */
};

/**
 * nvmk_dma_alloc - allocate zeroed DMA memory.
 * @pool:  private pool, or NULL for ephemeral memory
 * @size:  bytes, rounded up to NVMK_DMA_PAGE_SIZE
 * @owner: device id the block belongs to (pool only; at most 63 bytes)
 * @tag:   what the block is for, unique per owner ("asq", "io3.cq"; pool only)
 * @out:   filled on success
 *
 * Return: 0, -ENOMEM (pool exhausted: the log names pool size and usage),
 *         -EEXIST (owner/tag already allocated), -EINVAL.
 */
int nvmk_dma_alloc(struct nvmk_dma_pool *pool, size_t size, const char *owner, const char *tag,
		   struct nvmk_dma_mem *out);
/** nvmk_dma_free - release a block (unmaps ephemeral memory; marks pool slot Free). */
void nvmk_dma_free(struct nvmk_dma_mem *mem);

/* Flags of nvmk_dma_alloc_ephemeral(). */
#define NVMK_DMA_POPULATE (1u << 0) /* pre-fault the pages (MAP_POPULATE) */

/**
 * nvmk_dma_alloc_ephemeral - allocate zeroed ephemeral DMA memory with options.
 * @size:  bytes, rounded up to NVMK_DMA_PAGE_SIZE
 * @flags: NVMK_DMA_POPULATE or 0
 * @out:   filled on success (own memfd in @out->fd, @out->fd_offset 0); free with
 *         nvmk_dma_free()
 *
 * nvmk_dma_alloc(NULL, ...) is this call with @flags 0.
 *
 * Return: 0, -EINVAL (size 0 or too large, unknown flag), or the error of
 *         memfd_create/ftruncate/mmap.
 */
int nvmk_dma_alloc_ephemeral(size_t size, unsigned int flags, struct nvmk_dma_mem *out);

#endif /* NVMEKEEP_DMA_H */
