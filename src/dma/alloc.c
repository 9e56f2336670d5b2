/* SPDX-License-Identifier: MIT */
/*
 * Public entry points of the DMA layer: dispatch to ephemeral memory or to
 * the private pool.
 */
#include <errno.h>
#include <stddef.h>

#include "dma_internal.h"
#include "nvmekeep/dma.h"

int nvmk_dma_alloc(struct nvmk_dma_pool *pool, size_t size, const char *owner, const char *tag,
		   struct nvmk_dma_mem *out)
{
	if (!out || size == 0)
		return -EINVAL;
	if (!pool) {
		/* owner/tag only name pool slots; ephemeral blocks are anonymous. */
		(void)owner;
		(void)tag;
		return dma_ephemeral_alloc(size, false, out);
	}
	return dma_pool_alloc(pool, size, owner, tag, out);
}

int nvmk_dma_alloc_ephemeral(size_t size, unsigned int flags, struct nvmk_dma_mem *out)
{
	if (!out || size == 0 || (flags & ~NVMK_DMA_POPULATE))
		return -EINVAL;
	return dma_ephemeral_alloc(size, flags & NVMK_DMA_POPULATE, out);
}

void nvmk_dma_free(struct nvmk_dma_mem *mem)
{
	if (!mem || !mem->vaddr)
		return;
	if (mem->pool)
		dma_pool_free(mem);
	else
		dma_ephemeral_free(mem);
}
