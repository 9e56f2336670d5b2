// SPDX-License-Identifier: MIT
/*
 * PRP list construction, NVMe Base 2.0 4.1.1 (Figure 86/87): PRP1 is the
 * first entry and may carry a page offset; every further entry is a page
 * base. Two entries fit in PRP1/PRP2; beyond that PRP2 points at a list whose
 * last entry, when more entries follow than the page can hold, points at the
 * next list page (chaining).
 */
#include "driver/prp.h"

#include <stdbool.h>
#include <stddef.h>

/* Streaming writer of PRP entries once their total is known. */
struct prp_emit {
	const struct drv_prp_list *list;
	uint64_t total; /* entries in all */
	uint64_t done;	/* entries emitted */
	unsigned page;	/* current list page */
	unsigned slot;	/* next slot in it */
	uint64_t *prp1;
	uint64_t *prp2;
};

static int prp_emit_init(struct prp_emit *e, const struct drv_prp_list *list, uint64_t total,
			 uint64_t *prp1, uint64_t *prp2)
{
	e->list = list;
	e->total = total;
	e->done = 0;
	e->page = 0;
	e->slot = 0;
	e->prp1 = prp1;
	e->prp2 = prp2;
	*prp2 = 0;
	if (total > 2) {
		/* Entries 2..total in lists; a full page holds 511 plus a chain
		 * pointer, the last page up to 512. */
		uint64_t in_list = total - 1;
		uint64_t pages =
		    in_list <= DRV_PRP_PER_PAGE ? 1 : 1 + (in_list - 2) / (DRV_PRP_PER_PAGE - 1);

		if (!list || pages > list->npages)
			return -E2BIG;
		*prp2 = list->iova[0];
	}
	return 0;
}

static inline void prp_emit(struct prp_emit *e, uint64_t addr)
{
	uint64_t idx = e->done++;

	if (idx == 0) {
		*e->prp1 = addr;
		return;
	}
	if (e->total == 2) {
		*e->prp2 = addr;
		return;
	}
	/* Last slot of a page with more than this entry still to come: chain. */
	if (e->slot == DRV_PRP_PER_PAGE - 1 && e->total - idx > 1) {
		e->list->va[(size_t)e->page * DRV_PRP_PER_PAGE + e->slot] =
		    e->list->iova[e->page + 1];
		e->page++;
		e->slot = 0;
	}
	e->list->va[(size_t)e->page * DRV_PRP_PER_PAGE + e->slot++] = addr;
}

int drv_prp_build_list_contig(uint64_t iova, uint64_t len, const struct drv_prp_list *list,
			      uint64_t *prp1, uint64_t *prp2)
{
	struct prp_emit e;
	uint64_t n = drv_prp_npages(iova, len);
	uint64_t page = iova & ~(uint64_t)DRV_PAGE_MASK;
	int rc;

	if ((iova & 3) || len == 0)
		return -EINVAL;
	rc = prp_emit_init(&e, list, n, prp1, prp2);
	if (rc)
		return rc;
	prp_emit(&e, iova);
	for (uint64_t i = 1; i < n; i++)
		prp_emit(&e, page + ((uint64_t)i << DRV_PAGE_SHIFT));
	return 0;
}

int drv_prp_build_pages(const uint64_t *page_iova, uint64_t off, uint64_t len,
			const struct drv_prp_list *list, uint64_t *prp1, uint64_t *prp2)
{
	struct prp_emit e;
	uint64_t n = drv_prp_npages(off, len);
	uint64_t first = off >> DRV_PAGE_SHIFT;
	int rc;

	if ((off & 3) || len == 0)
		return -EINVAL;
	for (uint64_t i = 0; i < n; i++)
		if (page_iova[first + i] & DRV_PAGE_MASK)
			return -EINVAL;
	rc = prp_emit_init(&e, list, n, prp1, prp2);
	if (rc)
		return rc;
	prp_emit(&e, page_iova[first] + (off & DRV_PAGE_MASK));
	for (uint64_t i = 1; i < n; i++)
		prp_emit(&e, page_iova[first + i]);
	return 0;
}

int drv_prp_build_segs(const struct drv_prp_seg *seg, unsigned nseg,
		       const struct drv_prp_list *list, uint64_t *prp1, uint64_t *prp2)
{
	struct prp_emit e;
	uint64_t total = 0;
	int rc;

	if (nseg == 0)
		return -EINVAL;
	for (unsigned i = 0; i < nseg; i++) {
		uint64_t end = seg[i].iova + seg[i].len;

		if (seg[i].len == 0 || (seg[i].iova & 3) || end < seg[i].iova)
			return -EINVAL;
		/* Base 2.0 4.1.1: entries after the first have offset 0, and the
		 * data of one entry runs to its page end unless it is the last. */
		if (i > 0 && (seg[i].iova & DRV_PAGE_MASK))
			return -EINVAL;
		if (i + 1 < nseg && (end & DRV_PAGE_MASK))
			return -EINVAL;
		total += drv_prp_npages(seg[i].iova, seg[i].len);
	}
	rc = prp_emit_init(&e, list, total, prp1, prp2);
	if (rc)
		return rc;
	for (unsigned i = 0; i < nseg; i++) {
		uint64_t n = drv_prp_npages(seg[i].iova, seg[i].len);
		uint64_t page = seg[i].iova & ~(uint64_t)DRV_PAGE_MASK;

		prp_emit(&e, seg[i].iova);
		for (uint64_t j = 1; j < n; j++)
			prp_emit(&e, page + (j << DRV_PAGE_SHIFT));
	}
	return 0;
}
