/* SPDX-License-Identifier: MIT */
/*
 * PRP construction (NVMe Base 2.0, 4.1.1): turn device addresses of a data
 * buffer into PRP Entry 1/2 and, when more than two memory pages are touched,
 * a PRP list in preallocated list pages, chained when one page is not enough.
 *
 * Pure functions over device addresses: no device, no allocation, so they are
 * unit tested on their own (tests/driver/test_prp.c).
 */
#ifndef NVMK_DRV_PRP_H
#define NVMK_DRV_PRP_H

#include <errno.h>
#include <stdint.h>

#include "nvmekeep/backing.h"

#define DRV_PAGE_SIZE  4096u
#define DRV_PAGE_MASK  4095u
#define DRV_PAGE_SHIFT 12
/* PRP entries per list page (8 bytes each). */
#define DRV_PRP_PER_PAGE (DRV_PAGE_SIZE / 8u)

/* List pages given to the builder: @npages pages, virtually contiguous at
 * @va, page i seen by the device at @iova[i]. */
struct drv_prp_list {
	uint64_t *va;
	const uint64_t *iova;
	unsigned npages;
};

/* One IOVA-contiguous piece of a buffer. */
struct drv_prp_seg {
	uint64_t iova;
	uint64_t len;
};

/*
 * drv_prp_build_segs - PRPs for a buffer made of @nseg segments, which must
 * follow the PRP rules: every address dword aligned, only the first segment
 * may start inside a page, only the last may end inside one, no empty
 * segment. Return: 0, -EINVAL (rule broken), -E2BIG (list pages too few).
 */
int drv_prp_build_segs(const struct drv_prp_seg *seg, unsigned nseg,
		       const struct drv_prp_list *list, uint64_t *prp1, uint64_t *prp2);

/* drv_prp_build_pages - PRPs for @len bytes at byte @off of a buffer whose
 * pages are at @page_iova[] (no-IOMMU buffers). */
int drv_prp_build_pages(const uint64_t *page_iova, uint64_t off, uint64_t len,
			const struct drv_prp_list *list, uint64_t *prp1, uint64_t *prp2);

/* Out-of-line part of drv_prp_build_contig: more than two pages. */
int drv_prp_build_list_contig(uint64_t iova, uint64_t len, const struct drv_prp_list *list,
			      uint64_t *prp1, uint64_t *prp2);

/*
 * drv_prp_build_contig - PRPs for @len (> 0) bytes at device address @iova,
 * contiguous in device address space. The one- and two-page cases, which
 * are most I/O, need no list and stay inline.
 */
static inline __attribute__((always_inline)) int
drv_prp_build_contig(uint64_t iova, uint64_t len, const struct drv_prp_list *list, uint64_t *prp1,
		     uint64_t *prp2)
{
	uint64_t first = DRV_PAGE_SIZE - (iova & DRV_PAGE_MASK);

	if (__builtin_expect((iova & 3) != 0 || len == 0, 0))
		return -EINVAL;
	*prp1 = iova;
	if (len <= first) {
		*prp2 = 0;
		return 0;
	}
	if (len - first <= DRV_PAGE_SIZE) {
		*prp2 = iova + first;
		return 0;
	}
	return drv_prp_build_list_contig(iova, len, list, prp1, prp2);
}

/* drv_prp_build_buf - PRPs for @len bytes at byte @off of a mapped DMA block. */
static inline __attribute__((always_inline)) int drv_prp_build_buf(const struct nvmk_dma_buf *buf,
								   uint64_t off, uint64_t len,
								   const struct drv_prp_list *list,
								   uint64_t *prp1, uint64_t *prp2)
{
	if (__builtin_expect(off + len > buf->mem.size || off + len < off, 0))
		return -EINVAL;
	if (__builtin_expect(buf->page_iova == NULL, 1))
		return drv_prp_build_contig(buf->iova + off, len, list, prp1, prp2);
	return drv_prp_build_pages(buf->page_iova, off, len, list, prp1, prp2);
}

/* Number of memory pages [iova, iova + len) touches. */
static inline uint64_t drv_prp_npages(uint64_t iova, uint64_t len)
{
	return ((iova & DRV_PAGE_MASK) + len + DRV_PAGE_MASK) >> DRV_PAGE_SHIFT;
}

#endif /* NVMK_DRV_PRP_H */
