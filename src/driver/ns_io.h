/* SPDX-License-Identifier: MIT */
/*
 * The NVMe-queue path's namespace commands, shared by ns_io.c (submission),
 * ns_sync.c (synchronous wrappers) and ns_resv.c (reservations): the
 * removal test, filling an NVM command, and a request that may be larger
 * than one command (struct drv_io).
 */
#ifndef NVMK_DRV_NS_IO_H
#define NVMK_DRV_NS_IO_H

#include <errno.h>
#include <sys/uio.h>

#include "driver/drv.h"

drv_inline int ns_gone(const struct nvmk_ns *ns)
{
	/* relaxed: a removal racing with a submit may still reach the device,
	 * which then answers Invalid Namespace (-ENODEV as well) */
	if (drv_unlikely(atomic_load_explicit(&ns->s->removed, memory_order_relaxed)))
		return -ENODEV;
	return 0;
}

/*
 * Fill an NVM command. MPTR, CDW2/3 and CDW13-15 are not written: no command
 * the driver puts on an I/O queue uses them, so they keep the zeroes the SQ
 * memory was allocated with (one store per field less per I/O).
 */
drv_inline void ns_sqe(struct nvme_sqe *sqe, uint8_t opc, uint16_t cid, uint32_t nsid,
		       uint64_t slba, uint32_t cdw12)
{
	sqe->opc = opc;
	sqe->flags = 0;
	sqe->cid = cid;
	sqe->nsid = nsid;
	sqe->cdw10 = (uint32_t)slba;
	sqe->cdw11 = (uint32_t)(slba >> 32);
	sqe->cdw12 = cdw12;
}

static inline uint32_t ns_rw_flags(uint32_t io_flags)
{
	return (io_flags & NVMK_IO_FUA) ? NVME_RW_FUA : 0;
}

/* A request, possibly larger than one command. */
struct drv_io {
	uint8_t opc;
	uint32_t cdw12;
	uint64_t slba;
	uint64_t nlb;
	uint32_t max_blocks;
	const struct nvmk_dma_buf *buf; /* data in a DMA buffer at off, or */
	const struct iovec *iov;	/* data in iovec elements, from byte off */
	int iovcnt;
	size_t off;
	nvmk_cpl_fn cb;
	void *arg;
};

/* General path: any size (split at max_blocks), buffer or iovec; nothing is
 * queued on failure. The qpair's lock is taken when it is SHARED. */
int drv_ns_submit_io(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct drv_io *io);

/* ---- array submits (ns_batch.c), shared by nvmk_ns_submit_*_batch and
 * the I/O handle's nvmk_io_*_batch ---- */

/* Request @i of an array in the form of nvmk_ns_submit_read_batch. */
typedef void (*drv_batch_get_fn)(const void *ctx, unsigned i, struct nvmk_io_req *out);
/* Check requests [@from, @n): 0, or the error of the first one breaking a
 * rule of the API (a warning names its index and the rule). Cold. */
__attribute__((cold)) int drv_batch_check(const struct nvmk_ns *ns, const struct nvmk_qpair *qp,
					  drv_batch_get_fn get, const void *ctx, unsigned from,
					  unsigned n);
/* The general path of an array (nothing of it queued yet): check all, then
 * the single-request API for each inside one batch, a SHARED qpair locked
 * once around them. Returns how many were queued, or the error of the
 * first when none was. Cold. */
__attribute__((cold)) int drv_batch_general(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
					    drv_batch_get_fn get, const void *ctx, unsigned n);
/* Give back the @taken trackers a straight loop armed without moving the
 * free list's head (they are its first @taken); their new CID generation is
 * harmless, no CQE can carry it. Cold. */
__attribute__((cold)) void drv_batch_untake(struct drv_queue *q, unsigned taken);
/* The submit gate failed: take it again after a clock tick (as the single
 * submit does); false when the qpair is SHARED, stale or failed. Cold. */
__attribute__((cold)) bool drv_batch_catch_up(struct nvmk_qpair *qp);

static inline int ns_iov_len(const struct iovec *iov, int iovcnt, uint64_t *len)
{
	uint64_t total = 0;

	if (!iov || iovcnt <= 0)
		return -EINVAL;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len == 0)
			return -EINVAL;
		total += iov[i].iov_len;
	}
	*len = total;
	return 0;
}

/* PRP rules at the element level (Base 2.0 4.1.1), checked up front so that
 * splitting cannot hide a broken request. */
static inline int ns_iov_rules(const struct iovec *iov, int iovcnt)
{
	for (int i = 0; i < iovcnt; i++) {
		uintptr_t b = (uintptr_t)iov[i].iov_base, e = b + iov[i].iov_len;

		if (b & 3)
			return -EINVAL;
		if (i > 0 && (b & DRV_PAGE_MASK))
			return -EINVAL;
		if (i + 1 < iovcnt && (e & DRV_PAGE_MASK))
			return -EINVAL;
	}
	return 0;
}

#endif /* NVMK_DRV_NS_IO_H */
