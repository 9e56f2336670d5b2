// SPDX-License-Identifier: MIT
/*
 * Backing-independent DMA helpers: allocate + map, unmap + free, and the
 * process-wide registry that answers "which device address is this host
 * address?" for nvmk_backing_iova().
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "backing/registry.h"
#include "nvmekeep/backing.h"
#include "nvmekeep/log.h"

/* Host virtual address -> (backing, device address). Every block mapped by
 * nvmk_backing_dma_alloc is in here until nvmk_backing_dma_free. */
static struct bk_registry vaddr_registry = BK_REGISTRY_INIT;

/*
 * backing.h lets implementations assume dma_map/dma_unmap are serialised per
 * backing (the VFIO backing's map table and IOVA cursor take no lock), while
 * driver.h allows DMA allocation and qpair creation from any thread at once:
 * serialise them here. Control path only; one lock for all backings is
 * enough. Found by tests/vm/driver_vfio (threads creating qpairs together
 * got the same IOVA and the device read another queue's memory).
 */
static pthread_mutex_t dma_map_lock = PTHREAD_MUTEX_INITIALIZER;

/* Record @buf (mapped for @b) so nvmk_backing_iova finds it. */
static int vaddr_register(struct nvmk_backing *b, const struct nvmk_dma_buf *buf)
{
	struct bk_range r = {
	    .start = (uintptr_t)buf->mem.vaddr,
	    .len = buf->mem.size,
	    .owner = b,
	    .target = buf->iova,
	    .page_target = buf->page_iova,
	};

	return bk_registry_add(&vaddr_registry, &r);
}

/* Take the device's access away, then free the memory and clear @buf. */
static void dma_unmap_free(struct nvmk_backing *b, struct nvmk_dma_buf *buf)
{
	pthread_mutex_lock(&dma_map_lock);
	b->ops->dma_unmap(b, buf);
	pthread_mutex_unlock(&dma_map_lock);
	nvmk_dma_free(&buf->mem);
	memset(buf, 0, sizeof(*buf));
}

int nvmk_backing_dma_alloc(struct nvmk_backing *b, size_t size, const char *tag,
			   struct nvmk_dma_buf *buf)
{
	int rc;

	if (!b || !buf || size == 0)
		return -EINVAL;
	memset(buf, 0, sizeof(*buf));
	rc = nvmk_dma_alloc(b->pool, size, b->name, tag ? tag : "dma", &buf->mem);
	if (rc) {
		nvmk_err(b->name, NVMK_LOG_NOQ, "DMA allocation of %zu bytes (%s) failed: %d", size,
			 tag ? tag : "dma", rc);
		return rc;
	}
	pthread_mutex_lock(&dma_map_lock);
	rc = b->ops->dma_map(b, buf);
	pthread_mutex_unlock(&dma_map_lock);
	if (rc) {
		nvmk_err(b->name, NVMK_LOG_NOQ, "DMA map of %zu bytes (%s) failed: %d", size,
			 tag ? tag : "dma", rc);
		nvmk_dma_free(&buf->mem);
		memset(buf, 0, sizeof(*buf));
		return rc;
	}
	rc = vaddr_register(b, buf);
	if (rc)
		dma_unmap_free(b, buf);
	return rc;
}

void nvmk_backing_dma_free(struct nvmk_backing *b, struct nvmk_dma_buf *buf)
{
	if (!b || !buf || !buf->mem.vaddr)
		return;
	bk_registry_remove(&vaddr_registry, (uintptr_t)buf->mem.vaddr, b);
	dma_unmap_free(b, buf);
}

int nvmk_backing_dma_reclaim(struct nvmk_backing *b, const char *tag, uint64_t iova,
			     struct nvmk_dma_buf *buf)
{
	int rc;

	if (!b || !tag || !buf)
		return -EINVAL;
	memset(buf, 0, sizeof(*buf));
	if (!b->pool || !b->ops->dma_remap)
		return -EOPNOTSUPP;
	rc = nvmk_dma_reclaim(b->pool, b->name, tag, &buf->mem);
	if (rc)
		return rc;
	buf->iova = iova;
	rc = b->ops->dma_remap(b, buf);
	if (rc) {
		nvmk_err(b->name, NVMK_LOG_NOQ, "DMA remap of %s at IOVA 0x%llx failed: %d", tag,
			 (unsigned long long)iova, rc);
		return rc;
	}
	return vaddr_register(b, buf);
}

void nvmk_backing_dma_unclaim(struct nvmk_backing *b, struct nvmk_dma_buf *buf)
{
	if (!b || !buf || !buf->mem.vaddr)
		return;
	bk_registry_remove(&vaddr_registry, (uintptr_t)buf->mem.vaddr, b);
	if (buf->mem.pool)
		nvmk_dma_unclaim(&buf->mem);
	memset(buf, 0, sizeof(*buf));
}

void nvmk_backing_dma_forget(struct nvmk_backing *b, struct nvmk_dma_buf *buf)
{
	if (!b || !buf || !buf->mem.vaddr)
		return;
	bk_registry_remove(&vaddr_registry, (uintptr_t)buf->mem.vaddr, b);
	memset(buf, 0, sizeof(*buf));
}

int nvmk_backing_iova(struct nvmk_backing *b, const void *vaddr, uint64_t *iova, size_t *contig)
{
	struct bk_range r;
	uint64_t off;
	int rc;

	rc = bk_registry_find(&vaddr_registry, (uintptr_t)vaddr, &r);
	if (rc || r.owner != b)
		return -EFAULT;
	off = (uintptr_t)vaddr - r.start;
	if (!r.page_target) {
		*iova = r.target + off;
		if (contig)
			*contig = r.len - off;
		return 0;
	}
	/* Page-wise translation (no-IOMMU): contiguous while pages follow on. */
	uint64_t page = off >> NVMK_DMA_PAGE_SHIFT;
	uint64_t npages = r.len >> NVMK_DMA_PAGE_SHIFT;
	size_t run = NVMK_DMA_PAGE_SIZE - (off & (NVMK_DMA_PAGE_SIZE - 1));

	*iova = r.page_target[page] + (off & (NVMK_DMA_PAGE_SIZE - 1));
	while (page + 1 < npages &&
	       r.page_target[page + 1] == r.page_target[page] + NVMK_DMA_PAGE_SIZE) {
		run += NVMK_DMA_PAGE_SIZE;
		page++;
	}
	if (contig)
		*contig = run;
	return 0;
}

struct nvmk_backing *nvmk_backing_of(const void *vaddr)
{
	struct bk_range r;

	if (!vaddr || bk_registry_find(&vaddr_registry, (uintptr_t)vaddr, &r))
		return NULL;
	/* registered as a (non-const) struct nvmk_backing by vaddr_register */
	return (struct nvmk_backing *)(uintptr_t)r.owner;
}

void nvmk_backing_destroy(struct nvmk_backing *b)
{
	size_t left;

	if (!b)
		return;
	left = bk_registry_remove_owner(&vaddr_registry, b);
	if (left)
		nvmk_warn(b->name, NVMK_LOG_NOQ, "destroyed with %zu DMA blocks still mapped",
			  left);
	b->ops->destroy(b);
}
