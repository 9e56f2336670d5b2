/* SPDX-License-Identifier: MIT */
/*
 * The queue fast path, static inline so that submit + complete of one
 * command stays a straight line: take a tracker, write the SQE, move the
 * tail, ring the doorbell once per batch (shadow doorbell + EventIdx first);
 * drain the CQ by phase, validate each CQE, complete, ring the head once.
 *
 * No allocation, no lock, no atomic read-modify-write: a queue is used by
 * one thread at a time (a SHARED qpair's mutex is taken by the caller).
 */
#ifndef NVMK_DRV_QUEUE_H
#define NVMK_DRV_QUEUE_H

#include "driver/drv.h"

/* ---- trackers ---- */

drv_inline struct drv_tracker *drv_trk_get(struct drv_queue *q)
{
	struct drv_tracker *t;

	if (drv_unlikely(q->free_head == DRV_TRK_NONE))
		return NULL;
	t = &q->trk[q->free_head];
	q->free_head = t->next_free;
	q->nfree--;
	/* New generation in the CID's upper bits: a late or forged CQE carrying
	 * the previous use's CID no longer matches. */
	t->cid = (uint16_t)(t->cid + q->gen_inc);
	t->flags = 0;
	t->parent = NULL;
	return t;
}

drv_inline void drv_trk_put(struct drv_queue *q, struct drv_tracker *t)
{
	t->state = TRK_FREE;
	t->next_free = q->free_head;
	q->free_head = t->idx;
	q->nfree++;
}

/* Complete @t (exactly once): free it, then call the callback, so that the
 * callback may submit again. A part of a split request completes its parent
 * after the last part, with the first error. */
drv_inline void drv_trk_complete(struct drv_queue *q, struct drv_tracker *t, int err,
				 uint16_t status, uint32_t dw0)
{
	struct nvmk_cpl cpl;
	struct drv_tracker *p = t->parent;
	nvmk_cpl_fn cb;
	void *arg;

	if (drv_unlikely(p != NULL)) {
		drv_trk_put(q, t);
		if (err && !p->err) {
			p->err = err;
			p->status = status;
		}
		p->dw0 = dw0;
		if (--p->remaining)
			return;
		t = p;
		err = p->err;
		status = p->status;
	}
	cb = t->cb;
	arg = t->cb_arg;
	drv_trk_put(q, t);
	if (cb) {
		cpl.err = err;
		cpl.status = status;
		cpl.dw0 = dw0;
		cb(arg, &cpl);
	}
}

/* ---- doorbells ---- */

#if defined(__SANITIZE_THREAD__)
#define DRV_WMB() __atomic_signal_fence(__ATOMIC_RELEASE)
#else
#define DRV_WMB() __atomic_thread_fence(__ATOMIC_RELEASE)
#endif

/*
 * Write a doorbell value: with shadow doorbells, store the value in the
 * shadow buffer and write the register only when the controller's EventIdx
 * says it wants to hear about it (Base 2.0 5.8; the test is the usual
 * "new - event - 1 < new - old" in 16-bit arithmetic, which errs towards
 * writing the register at a wrap).
 */
drv_inline void drv_db_write(struct drv_queue *q, uint32_t off, uint32_t *shadow,
			     uint32_t *eventidx, uint32_t old, uint32_t val)
{
	if (shadow) {
		uint16_t ev;

		/* seq_cst store + seq_cst load: queue entries before the shadow
		 * value (release), and the shadow store before the EventIdx load
		 * (store-load order; pairs with the controller's EventIdx store
		 * followed by its shadow re-read) */
		__atomic_store_n(shadow, val, __ATOMIC_SEQ_CST);
		ev = (uint16_t)__atomic_load_n(eventidx, __ATOMIC_SEQ_CST);
		if ((uint16_t)(val - ev - 1) >= (uint16_t)(val - old))
			return;
	} else {
		/* release: do not reorder SQE stores / CQE loads with the doorbell
		 * store. (TSan does not model fences and GCC refuses them there;
		 * its builds reach the device through the backing's ops, whose own
		 * atomics order the hand-over.) */
		DRV_WMB();
	}
	nvmk_backing_write32(q->b, off, val);
}

drv_inline void drv_q_ring_sq(struct drv_queue *q)
{
	if (q->sq_tail != q->sq_db_tail) {
		drv_db_write(q, q->sq_db, q->sdb_sq, q->ei_sq, q->sq_db_tail, q->sq_tail);
		q->sq_db_tail = q->sq_tail;
	}
}

drv_inline void drv_q_ring_cq(struct drv_queue *q)
{
	if (q->cq_head != q->cq_db_head) {
		drv_db_write(q, q->cq_db, q->sdb_cq, q->ei_cq, q->cq_db_head, q->cq_head);
		q->cq_db_head = q->cq_head;
	}
}

/* ---- submission ---- */

/* The SQ slot the next command goes to. */
drv_inline struct nvme_sqe *drv_q_slot(struct drv_queue *q, uint32_t ahead)
{
	uint32_t i = q->sq_tail + ahead;

	if (i >= q->depth)
		i -= q->depth;
	return &q->sq[i];
}

/* Make @n commands written at drv_q_slot(q, 0..n-1) visible: move the tail,
 * and ring unless completions are being processed (then the doorbell is
 * written once at the end of the batch). */
drv_inline void drv_q_commit(struct drv_queue *q, uint32_t n)
{
	q->sq_tail += n;
	if (q->sq_tail >= q->depth)
		q->sq_tail -= q->depth;
	if (!q->batching)
		drv_q_ring_sq(q);
}

/* ---- completion ---- */

/* Error of a completion: the table of driver.h, except that a command the
 * driver timed out and aborted reports -ETIMEDOUT. */
drv_inline int drv_cpl_err(const struct drv_tracker *t, uint16_t sf)
{
	if (drv_likely(sf == 0))
		return 0;
	if (t->flags & TRK_F_TIMED_OUT)
		return -ETIMEDOUT;
	return nvmk_status_to_errno(sf);
}

void drv_queue_bad_cqe(struct drv_queue *q, const struct nvme_cqe *e, const char *why);

/*
 * Drain up to @max (0 = all) new completions. Every CQE is validated before
 * it is believed (Base 2.0 4.6): CID index in range, a command outstanding
 * under that CID with the same generation, SQID ours, SQHD inside the queue.
 * Return: number completed, or -EIO after an invalid CQE (nothing is
 * completed for it; the caller fails the controller).
 */
drv_inline int drv_q_drain(struct drv_queue *q, unsigned max)
{
	int n = 0;

	for (;;) {
		struct nvme_cqe *e = &q->cq[q->cq_head];
		/* acquire: the phase tag before the rest of the entry */
		uint16_t st = __atomic_load_n(&e->status, __ATOMIC_ACQUIRE);
		struct drv_tracker *t;
		struct nvme_cqe c;
		uint32_t idx;

		if ((st & 1u) != q->phase)
			break;
		c = *e;
		c.status = st;
		if (++q->cq_head == q->depth) {
			q->cq_head = 0;
			q->phase ^= 1u;
		}
		idx = c.cid & q->idx_mask;
		t = &q->trk[idx]; /* the array covers every index the mask allows */
		if (drv_unlikely(t->key != (DRV_TRK_KEY_ACTIVE | c.cid) || c.sqid != q->qid ||
				 c.sqhd >= q->depth)) {
			drv_queue_bad_cqe(q, &c,
					  t->key != (DRV_TRK_KEY_ACTIVE | c.cid)
					      ? "CID not outstanding"
					  : c.sqid != q->qid ? "wrong SQID"
							     : "SQ head out of range");
			drv_q_ring_cq(q);
			return -EIO;
		}
		q->sq_head = c.sqhd;
		drv_trk_complete(q, t, drv_cpl_err(t, NVME_CQE_SF(st)), NVME_CQE_SF(st), c.dw0);
		if ((unsigned)++n == max)
			break;
	}
	drv_q_ring_cq(q);
	return n;
}

/* A qpair's user checks, once per call, that the controller was neither
 * reset nor failed since the queue was last (re)created. */
drv_inline int drv_qp_check(struct nvmk_qpair *qp)
{
	/* relaxed: only a hint; drv_qpair_recover re-reads with acquire */
	if (drv_likely(qp->epoch == atomic_load_explicit(&qp->ctrl->epoch, memory_order_relaxed)))
		return 0;
	return drv_qpair_recover(qp);
}

#endif /* NVMK_DRV_QUEUE_H */
