/* SPDX-License-Identifier: MIT */
/*
 * PRP walker, Base 2.0 4.1.1 ("Physical Region Page Entry and List").
 *
 * Rules enforced:
 *  - every PRP entry has bits 1:0 cleared (dword aligned), else PRP Offset Invalid;
 *  - PRP1 may carry a page offset; the data pointers that follow it (PRP2 used
 *    as a data pointer, and every data entry of a PRP list) must be page aligned;
 *  - PRP2 used as a PRP List pointer may have an offset (the list then starts
 *    there and ends at the page end); when the list still needs more than the
 *    entries left in its page, the last entry of the page points to the next
 *    list page (Base 2.0 Figure 86).
 */
#include "emu/prp.h"

#include "nvmekeep/spec.h"

#define PRP_SF(sc) NVME_SF(NVME_SCT_GENERIC, sc)

static uint16_t prp_data(const struct emu_prp_ctx *ctx, uint64_t iova, size_t len,
			 emu_prp_seg_fn fn, void *arg)
{
	void *host = ctx->dma(ctx->dma_ctx, iova, len, ctx->write);
	uint16_t st;

	if (!host)
		return PRP_SF(NVME_SC_DATA_XFER_ERROR);
	st = fn ? fn(arg, host, len) : 0;
	if (ctx->done)
		ctx->done(ctx->dma_ctx, host, iova, len, ctx->write);
	return st;
}

static uint64_t prp_list_entry(const struct emu_prp_ctx *ctx, uint64_t list, bool *ok)
{
	/* The list is read by the controller: host-to-device direction. */
	const void *p = ctx->dma(ctx->dma_ctx, list, sizeof(uint64_t), false);
	uint64_t v;

	if (!p) {
		*ok = false;
		return 0;
	}
	/* Host memory the guest may change concurrently: one relaxed 8-byte load,
	 * no ordering needed beyond the command fetch that preceded the walk. */
	v = __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED);
	if (ctx->done)
		ctx->done(ctx->dma_ctx, (void *)p, list, sizeof(uint64_t), false);
	*ok = true;
	return v;
}

uint16_t emu_prp_walk(const struct emu_prp_ctx *ctx, uint64_t prp1, uint64_t prp2, uint64_t len,
		      emu_prp_seg_fn fn, void *arg)
{
	uint64_t ps = ctx->page_size;
	uint64_t mask = ps - 1;
	uint64_t first, left, list, hops = 0;
	uint16_t st;
	bool ok;

	if (len == 0)
		return 0;
	if (prp1 & NVME_PRP_ALIGN_MASK)
		return PRP_SF(NVME_SC_PRP_INVALID_OFFSET);

	first = ps - (prp1 & mask);
	if (first > len)
		first = len;
	st = prp_data(ctx, prp1, first, fn, arg);
	if (st)
		return st;
	left = len - first;
	if (!left)
		return 0;

	if (left <= ps) {
		/* PRP2 is the data pointer to the second (and last) page. */
		if (prp2 & mask)
			return PRP_SF(NVME_SC_PRP_INVALID_OFFSET);
		return prp_data(ctx, prp2, left, fn, arg);
	}

	/* PRP2 is a PRP List pointer; it may have a dword-aligned offset. */
	if (prp2 & NVME_PRP_ALIGN_MASK)
		return PRP_SF(NVME_SC_PRP_INVALID_OFFSET);
	list = prp2;
	while (left) {
		uint64_t in_page = (ps - (list & mask)) / sizeof(uint64_t);
		uint64_t e;

		if (in_page == 0) /* offset leaves no room for an entry */
			return PRP_SF(NVME_SC_PRP_INVALID_OFFSET);
		e = prp_list_entry(ctx, list, &ok);
		if (!ok)
			return PRP_SF(NVME_SC_DATA_XFER_ERROR);
		if (in_page == 1 && left > ps) {
			/* Last entry of a list page with more than one page of data to go:
			 * pointer to the next PRP list page. */
			if (e & NVME_PRP_ALIGN_MASK)
				return PRP_SF(NVME_SC_PRP_INVALID_OFFSET);
			/* A list chaining to itself would loop forever: a valid
			 * chain has fewer list pages than data pages. */
			if (++hops > len / ps + 1)
				return PRP_SF(NVME_SC_PRP_INVALID_OFFSET);
			list = e;
			continue;
		}
		if (e & mask)
			return PRP_SF(NVME_SC_PRP_INVALID_OFFSET);
		uint64_t n = left < ps ? left : ps;
		st = prp_data(ctx, e, n, fn, arg);
		if (st)
			return st;
		left -= n;
		list += sizeof(uint64_t);
	}
	return 0;
}
