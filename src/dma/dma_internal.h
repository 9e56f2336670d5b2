/* SPDX-License-Identifier: MIT */
/*
 * Internal interface between the DMA layer's public entry points (alloc.c)
 * and its two memory sources: ephemeral memfds (ephemeral.c) and the private
 * pool (pool.c). Nothing outside src/dma/ includes this header.
 */
#ifndef NVMEKEEP_DMA_INTERNAL_H
#define NVMEKEEP_DMA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvmekeep/dma.h"

/* Name used in log lines that concern ephemeral memory (no device of its own). */
#define DMA_EPHEMERAL_LOG_NAME "dma"

/* Round @size up to a whole number of DMA pages; 0 on overflow or if @size is 0. */
static inline size_t dma_round_up(size_t size)
{
	if (size == 0 || size > SIZE_MAX - (NVMK_DMA_PAGE_SIZE - 1))
		return 0;
	return (size + NVMK_DMA_PAGE_SIZE - 1) & ~(size_t)(NVMK_DMA_PAGE_SIZE - 1);
}

/*
 * dma_ephemeral_alloc - one memfd per block, mapped MAP_SHARED, zeroed.
 * @populate: pre-fault the pages (MAP_POPULATE) so the first DMA does not fault.
 */
int dma_ephemeral_alloc(size_t size, bool populate, struct nvmk_dma_mem *out);
void dma_ephemeral_free(struct nvmk_dma_mem *mem);

/* Pool side of nvmk_dma_alloc()/nvmk_dma_free(); see pool.c. */
int dma_pool_alloc(struct nvmk_dma_pool *pool, size_t size, const char *owner, const char *tag,
		   struct nvmk_dma_mem *out);
void dma_pool_free(struct nvmk_dma_mem *mem);

#endif /* NVMEKEEP_DMA_INTERNAL_H */
