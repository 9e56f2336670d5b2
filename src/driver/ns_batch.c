// SPDX-License-Identifier: MIT
/*
 * Batch submit of Read and Write (nvmk_ns_submit_read_batch/_write_batch,
 * nvmekeep/driver/ns.h): an array of requests in one call.
 *
 * The straight path is ns_rw's (ns_io.c) with the per-qpair and
 * per-namespace part of its gate taken once per call instead of once per
 * command: exclusive, current and no clock tick (ctrl->gate), the namespace
 * of this qpair's controller and not removed, its limit, block size and
 * NSID word. Per request it checks only what the request carries (buffer,
 * range, alignment, blocks, callback, flags); the free-list head, the tail,
 * the queue's arrays are kept in registers across the loop, the free count
 * and the tail are stored once, the doorbell is rung once.
 *
 * Nothing is made visible before every request has been checked: the
 * trackers are taken from the free list without moving its head, the SQEs
 * are written past the tail without moving it. A request the straight path
 * does not take (above the per-command limit, more than two pages, a buffer
 * made of pages, a SHARED qpair, a reset to notice, a kernel namespace)
 * hands the whole array, nothing yet queued, to ns_batch_general, which
 * checks every request and then submits them one by one through the
 * single-request API inside one batch (one doorbell).
 */
#include <errno.h>

#include "driver/io_ops.h"
#include "driver/ns_io.h"
#include "driver/queue.h"

/* the loop turns NVMK_IO_FUA (the only flag it accepts) into CDW12's bit */
_Static_assert(NVMK_IO_FUA == 1u && NVME_RW_FUA == 1u << 30, "FUA: flags << 30");

/* Why @r breaks a rule of the batch API, or NULL (*@err: the error). */
static const char *batch_req_bad(const struct nvmk_ns *ns, const struct nvmk_qpair *qp,
				 const struct nvmk_io_req *r, int *err)
{
	uint64_t len;

	*err = -EINVAL;
	if (!r->buf)
		return "no buffer";
	if (!r->cb)
		return "no callback";
	if (r->nlb == 0)
		return "nlb 0 (1 or more blocks accepted)";
	if (r->io_flags & ~(uint32_t)NVMK_IO_FUA)
		return "unknown io_flags (0 or NVMK_IO_FUA accepted)";
	len = (uint64_t)r->nlb << ns->lba_shift;
	if (r->off > r->buf->mem.size || len > r->buf->mem.size - r->off)
		return "range outside the buffer";
	/* PRP entries are dword aligned (Base 2.0 4.1.1) */
	if (nvmk_dma_buf_iova(r->buf, r->off) & 3)
		return "data not dword aligned (Base 2.0 4.1.1)";
	if (ns->ops == &drv_nvme_io_ops && qp->ops == &drv_nvme_io_ops) {
		/* as drv_ns_submit_io: the parts and their parent at once */
		uint64_t parts = ((uint64_t)r->nlb + ns->max_blocks - 1) / ns->max_blocks;

		if (parts + (parts > 1) > qp->q.ntrk) {
			*err = -E2BIG;
			return "split into more commands than the queue pair holds";
		}
	}
	return NULL;
}

static void ns_req_get(const void *ctx, unsigned i, struct nvmk_io_req *out)
{
	*out = ((const struct nvmk_io_req *)ctx)[i];
}

int drv_batch_check(const struct nvmk_ns *ns, const struct nvmk_qpair *qp, drv_batch_get_fn get,
		    const void *ctx, unsigned from, unsigned n)
{
	for (unsigned i = from; i < n; i++) {
		struct nvmk_io_req r;
		const char *why;
		int err;

		get(ctx, i, &r);
		why = batch_req_bad(ns, qp, &r, &err);
		if (why) {
			nvmk_warn(qp->ctrl->name, qp->q.qid,
				  "batch submit: request %u of %u refused: %s; nothing queued", i,
				  n, why);
			return err;
		}
	}
	return 0;
}

int drv_batch_general(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc, drv_batch_get_fn get,
		      const void *ctx, unsigned n)
{
	bool nvme, batched;
	unsigned i;
	int rc;

	nvme = qp->ops == &drv_nvme_io_ops;
	if (!drv_io_ops_of(ns, qp) || (nvme && ns->ctrl != qp->ctrl)) {
		nvmk_warn(qp->ctrl->name, qp->q.qid,
			  "batch submit: the namespace is not one of this queue pair's controller");
		return -EINVAL;
	}
	rc = drv_batch_check(ns, qp, get, ctx, 0, n);
	if (rc)
		return rc;
	if (nvme)
		drv_qp_lock(qp);
	batched = nvmk_qpair_batch_begin(qp) == 0;
	for (i = 0; i < n; i++) {
		struct nvmk_io_req r;

		get(ctx, i, &r);
		if (opc == NVME_CMD_WRITE)
			rc = nvmk_ns_submit_write(ns, qp, r.buf, r.off, r.slba, r.nlb, r.io_flags,
						  r.cb, r.cb_arg);
		else
			rc = nvmk_ns_submit_read(ns, qp, r.buf, r.off, r.slba, r.nlb, r.io_flags,
						 r.cb, r.cb_arg);
		if (rc)
			break;
	}
	if (batched)
		nvmk_qpair_batch_end(qp);
	if (nvme)
		drv_qp_unlock(qp);
	return i ? (int)i : rc;
}

/*
 * Everything the straight loop does not take, with nothing of the array
 * queued yet: check every request, then submit them in order through the
 * single-request API inside one batch, a SHARED qpair locked once around
 * all of them (recursive lock: the submits take it again). Stops at the
 * first request refused (-EAGAIN when the queue is full, or the qpair
 * became unusable) and returns how many were queued, or that error when
 * none was.
 */
static __attribute__((noinline, cold)) int ns_batch_general(struct nvmk_ns *ns,
							    struct nvmk_qpair *qp, uint8_t opc,
							    const struct nvmk_io_req *reqs,
							    unsigned n)
{
	if (!ns || !qp || !reqs || n == 0)
		return -EINVAL;
	return drv_batch_general(ns, qp, opc, ns_req_get, reqs, n);
}

void drv_batch_untake(struct drv_queue *q, unsigned taken)
{
	uint16_t h = q->free_head;

	for (unsigned i = 0; i < taken; i++) {
		struct drv_tracker *t = &q->trk[h];

		t->state = TRK_FREE;
		h = t->next_free;
	}
}

/* The straight loop stopped at a request it does not take, or a request it
 * did not reach is invalid: give back the trackers it armed
 * (drv_batch_untake) and leave the decision to ns_batch_general. The SQEs
 * written past the tail are not the device's to read. */
static __attribute__((noinline, cold)) int ns_batch_undo(struct nvmk_ns *ns, struct nvmk_qpair *qp,
							 uint8_t opc,
							 const struct nvmk_io_req *reqs, unsigned n,
							 unsigned taken)
{
	drv_batch_untake(&qp->q, taken);
	return ns_batch_general(ns, qp, opc, reqs, n);
}

bool drv_batch_catch_up(struct nvmk_qpair *qp)
{
	drv_qp_submit_catch_up(qp);
	return drv_qp_fast_submit(qp);
}

drv_inline int ns_rw_batch(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
			   const struct nvmk_io_req *reqs, unsigned n)
{
	const struct nvmk_io_req *r, *end_r;
	struct drv_queue *q;
	struct nvme_sqe *sqe, *sq_end;
	uint64_t word;
	uint32_t head, k;

	/* The gate, once: n >= 1, the qpair exclusive, current and no tick
	 * (one compare, drv_qp_fast_submit; after a tick, taken again), the
	 * namespace of its controller
	 * (a kernel namespace has none: it goes to the general path before
	 * its state is read) and present. NULLs go there too, which refuses
	 * them. */
	if (drv_unlikely(!ns || !qp || !reqs || n == 0 ||
			 (!drv_qp_fast_submit(qp) && !drv_batch_catch_up(qp)) ||
			 ns->ctrl != qp->ctrl || ns_gone(ns)))
		return ns_batch_general(ns, qp, opc, reqs, n);
	q = &qp->q;
	/* as many as there are free trackers (an SQ of depth entries holds
	 * ntrk <= depth - 1 commands, Base 2.0 4.1.3: the tail cannot catch up
	 * with the head either) */
	k = drv_trk_nfree(q);
	if (n < k)
		k = n;
	if (drv_unlikely(k == 0))
		return ns_batch_general(ns, qp, opc, reqs, n);
	/* Kept across the loop: the request and the end of the array, the
	 * free-list head, the SQ slot and the end of the ring, the SQE's first
	 * word. The tracker array, the CID increment and the limit are read
	 * where used (one memory operand each: no register held for them). */
	word = ns->sqe_nsid | opc;
	head = q->free_head;
	sqe = &q->sq[q->sq_tail];
	sq_end = q->sq + q->depth;
	end_r = reqs + k;
	for (r = reqs; r != end_r; r++) {
		const struct nvmk_dma_buf *buf = r->buf;
		uint32_t n1 = r->nlb - 1u; /* wraps for 0 */
		size_t off = r->off;
		nvmk_cpl_fn cb = r->cb;
		uint64_t len, iova, end, lim;
		struct drv_tracker *t;
		uint32_t cid;

		/* What varies per request: nlb in 1..limit (one compare), a
		 * contiguous buffer, a callback, known flags; then the range
		 * inside the buffer (no wrap), dword alignment (Base 2.0
		 * 4.1.1), at most two pages (PRP1 + PRP2, no list). */
		if (drv_unlikely(n1 >= ns->max_blocks || !buf || buf->page_iova != NULL || !cb ||
				 r->io_flags > NVMK_IO_FUA))
			break;
		len = (uint64_t)(n1 + 1u) * ns->lba_bytes; /* a multiply: no count in %cl */
		iova = buf->iova + off;
		end = (iova & DRV_PAGE_MASK) + len;
		if (drv_unlikely(__builtin_add_overflow(off, len, &lim) || lim > buf->mem.size ||
				 (iova & 3) || end > 2u * DRV_PAGE_SIZE))
			break;
		/* the SQE as ns_rw_straight writes it; its first word (with the
		 * CID) last */
		sqe->prp1 = iova;
		sqe->prp2 = end > DRV_PAGE_SIZE ? (iova | DRV_PAGE_MASK) + 1u : 0;
		drv_sqe_put64(&sqe->cdw10, r->slba);
		/* NVMK_IO_FUA is bit 0: FUA is CDW12 bit 30 (NVM-CS 1.0 3.2.4) */
		sqe->cdw12 = n1 | r->io_flags << 30;
		/* the next free tracker (drv_trk_take without the empty test:
		 * k free), its CID a new generation, armed as drv_trk_arm
		 * does: the key store writes the CID too (its low 16 bits) */
		t = &q->trk[head];
		head = t->next_free;
		cid = (uint16_t)(t->cid + q->gen_inc);
		t->key = DRV_TRK_KEY_ACTIVE | cid;
		t->meta = (uint32_t)opc << 8; /* flags = 0, opc */
		t->cb = cb;
		t->cb_arg = r->cb_arg;
		drv_sqe_put64(sqe, word | (uint64_t)cid << 16);
		if (drv_unlikely(++sqe == sq_end))
			sqe = q->sq;
	}
	/* all k taken, and the rest (queue full) valid too: or nothing */
	if (drv_unlikely(r != end_r || (k < n && drv_batch_check(ns, qp, ns_req_get, reqs, k, n))))
		return ns_batch_undo(ns, qp, opc, reqs, n, (unsigned)(r - reqs));
	q->free_head = (uint16_t)head;
	drv_trk_took(q, k);
	q->sq_tail = (uint32_t)(sqe - q->sq);
	/* the tail moved: one doorbell for the k commands, unless completions
	 * are being processed or a batch is open (drv_q_commit_at) */
	if (drv_likely(q->sq_db_defer == 0))
		drv_db_ring_reg(q, false, q->sq_tail);
	else if (!q->batching)
		drv_db_ring_shadow(q, false, q->sq_tail);
	return (int)k;
}

int nvmk_ns_submit_read_batch(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			      const struct nvmk_io_req *reqs, unsigned n)
{
	return ns_rw_batch(ns, qp, NVME_CMD_READ, reqs, n);
}

int nvmk_ns_submit_write_batch(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			       const struct nvmk_io_req *reqs, unsigned n)
{
	return ns_rw_batch(ns, qp, NVME_CMD_WRITE, reqs, n);
}
