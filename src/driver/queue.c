// SPDX-License-Identifier: MIT
/*
 * Queue core, control-path half: allocation of the rings, trackers and PRP
 * list pages (once per queue, never per I/O), ring reset, and failing the
 * outstanding commands of a queue exactly once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver/queue.h"

void drv_db_ring_shadow_reg(struct drv_queue *q, bool cq, uint32_t val)
{
	/* as drv_db_ring: the choice drv_queue_set_doorbells made */
	volatile uint32_t *reg = cq ? q->cq_db_reg : q->sq_db_reg;

	if (reg)
		*reg = val;
	else
		q->db_write32(q->b, cq ? q->cq_db : q->sq_db, val);
}

/* The doorbell writer of a queue whose doorbells lie beyond BAR0: nothing
 * is written (the queue then makes no progress, and recovery takes over). */
static void drv_db_refuse(struct nvmk_backing *b, uint32_t off, uint32_t val)
{
	static atomic_bool logged;

	(void)val;
	/* relaxed: a log-once flag */
	if (!atomic_exchange_explicit(&logged, true, memory_order_relaxed))
		nvmk_err(b->name, NVMK_LOG_NOQ,
			 "doorbell write at 0x%x refused: beyond BAR0 (%zu bytes)", off,
			 b->bar0_size);
}

/* Doorbell register offsets of queue @qid (Base 2.0 3.1.3.21/22: SQyTDBL
 * at 1000h + 2y * (4 << DSTRD), CQyHDBL after it) and, for drv_db_ring, how to write
 * them: an address in the mapped BAR0 or the backing's write32. q->b set. */
void drv_queue_set_doorbells(struct drv_queue *q, uint16_t qid, uint32_t dstrd)
{
	struct nvmk_backing *b = q->b;

	q->sq_db = nvme_sq_doorbell(qid, dstrd);
	q->cq_db = nvme_cq_doorbell(qid, dstrd);
	if (b->bar0_size && (uint64_t)q->cq_db + 4u > b->bar0_size) {
		/* Bring-up and qpair creation refuse this; a restored state
		 * could still name such a queue: never write outside BAR0. */
		q->sq_db_reg = q->cq_db_reg = NULL;
		q->db_write32 = drv_db_refuse;
		return;
	}
	q->sq_db_reg = b->bar0 ? (volatile uint32_t *)(b->bar0 + q->sq_db) : NULL;
	q->cq_db_reg = b->bar0 ? (volatile uint32_t *)(b->bar0 + q->cq_db) : NULL;
	q->db_write32 = b->ops->write32;
}

/* Geometry of a queue: IDs, doorbells, tracker count and CID layout. */
void drv_queue_geometry(struct nvmk_ctrl *ctrl, struct drv_queue *q, uint16_t qid, uint32_t depth)
{
	uint32_t ntrk = depth - 1;
	unsigned shift = 0;

	memset(q, 0, sizeof(*q));
	q->b = ctrl->b;
	q->name = ctrl->name;
	q->qid = qid;
	q->sqid_key = (uint32_t)qid << 16;
	q->depth = depth;
	drv_queue_set_doorbells(q, qid, ctrl->dstrd);
	if (ntrk > DRV_MAX_TRACKERS)
		ntrk = DRV_MAX_TRACKERS;
	while ((1u << shift) < ntrk)
		shift++;
	q->ntrk = ntrk;
	q->cid_shift = (uint8_t)shift;
	q->idx_mask = (1u << shift) - 1;
	q->gen_inc = (uint16_t)(1u << shift);
}

/* Trackers over the queue's memory (sq_mem, cq_mem, prp_mem set), all free. */
int drv_queue_init_trackers(struct drv_queue *q)
{
	uint32_t ntrk = q->ntrk;

	/* idx_mask + 1 entries: a CQE's CID index always lands inside the array;
	 * entries beyond ntrk stay FREE and so never match */
	q->trk = calloc((size_t)q->idx_mask + 1, sizeof(*q->trk));
	if (!q->trk)
		return -ENOMEM;
	q->sq = q->sq_mem.mem.vaddr;
	q->cq = q->cq_mem.mem.vaddr;
	for (uint32_t i = 0; i < ntrk; i++) {
		q->trk[i].cid = (uint16_t)i;
		q->trk[i].idx = (uint16_t)i;
		q->trk[i].prp_va =
		    (uint64_t *)((char *)q->prp_mem.mem.vaddr + (size_t)i * DRV_PAGE_SIZE);
		q->trk[i].prp_iova = nvmk_dma_buf_iova(&q->prp_mem, (size_t)i * DRV_PAGE_SIZE);
		q->trk[i].prp_list.va = q->trk[i].prp_va;
		q->trk[i].prp_list.iova = &q->trk[i].prp_iova;
		q->trk[i].prp_list.npages = 1;
	}
	q->free_head = DRV_TRK_NONE;
	for (uint32_t i = ntrk; i-- > 0;) {
		q->trk[i].next_free = q->free_head;
		q->free_head = (uint16_t)i;
	}
	q->nbusy = 0;
	return 0;
}

int drv_queue_alloc(struct nvmk_ctrl *ctrl, struct drv_queue *q, uint16_t qid, uint32_t depth,
		    const char *tag)
{
	char t[32];
	int rc;

	drv_queue_geometry(ctrl, q, qid, depth);
	snprintf(t, sizeof(t), "%s.sq", tag);
	rc = nvmk_backing_dma_alloc(q->b, (size_t)depth * sizeof(struct nvme_sqe), t, &q->sq_mem);
	if (rc)
		goto fail;
	snprintf(t, sizeof(t), "%s.cq", tag);
	rc = nvmk_backing_dma_alloc(q->b, (size_t)depth * sizeof(struct nvme_cqe), t, &q->cq_mem);
	if (rc)
		goto fail;
	snprintf(t, sizeof(t), "%s.prp", tag);
	rc = nvmk_backing_dma_alloc(q->b, (size_t)q->ntrk * DRV_PAGE_SIZE, t, &q->prp_mem);
	if (rc)
		goto fail;
	rc = drv_queue_init_trackers(q);
	if (rc)
		goto fail;
	drv_queue_reset_ring(q);
	return 0;
fail:
	nvmk_err(ctrl->name, qid, "allocating queue memory (%u entries) failed: %d", depth, rc);
	drv_queue_free(ctrl, q);
	return rc;
}

void drv_queue_free(struct nvmk_ctrl *ctrl, struct drv_queue *q)
{
	nvmk_backing_dma_free(ctrl->b, &q->sq_mem);
	nvmk_backing_dma_free(ctrl->b, &q->cq_mem);
	nvmk_backing_dma_free(ctrl->b, &q->prp_mem);
	free(q->trk);
	q->trk = NULL;
	q->sq = NULL;
	q->cq = NULL;
}

/* A new queue on the device starts empty: head = tail = 0, phase 1, and the
 * CQ must not contain stale entries that look new (Base 2.0 4.6). */
void drv_queue_reset_ring(struct drv_queue *q)
{
	q->sq_tail = q->sq_db_tail = 0;
	q->cq_head = q->cq_db_head = 0;
	q->sq_head = 0;
	q->phase = 1;
	memset(q->cq, 0, (size_t)q->depth * sizeof(struct nvme_cqe));
	if (q->sdb_sq) {
		/* relaxed: the device does not use these until the queue is created */
		__atomic_store_n(q->sdb_sq, 0, __ATOMIC_RELAXED);
		__atomic_store_n(q->sdb_cq, 0, __ATOMIC_RELAXED);
		__atomic_store_n(q->ei_sq, 0, __ATOMIC_RELAXED);
		__atomic_store_n(q->ei_cq, 0, __ATOMIC_RELAXED);
	}
}

void drv_queue_bad_cqe(struct drv_queue *q, const struct nvme_cqe *e, const char *why)
{
	nvmk_err(q->name, q->qid,
		 "invalid completion (%s): cid 0x%04x sqid %u sqhd %u status 0x%04x; "
		 "failing the controller",
		 why, e->cid, e->sqid, e->sqhd, e->status);
}

__attribute__((noinline, cold)) int drv_queue_reject_cqe(struct drv_queue *q,
							 const struct nvme_cqe *e, uint16_t st)
{
	struct nvme_cqe c = *e;
	const struct drv_tracker *t = &q->trk[c.cid & q->idx_mask];

	c.status = st;
	drv_queue_bad_cqe(q, &c,
			  (t->key & ~DRV_TRK_KEY_PART) != (DRV_TRK_KEY_ACTIVE | c.cid)
			      ? "CID not outstanding"
			  : c.sqid != q->qid ? "wrong SQID"
					     : "SQ head out of range");
	drv_q_ring_cq(q);
	return -EIO;
}

__attribute__((noinline)) int drv_q_cqe_other(struct drv_queue *q, const struct nvme_cqe *e,
					      struct drv_tracker *t, uint16_t st, uint16_t cid,
					      uint32_t hd_id)
{
	/* the straight path's two compares (on the values it read: the
	 * entry is not read twice), the key without DRV_TRK_PART: a split
	 * part is valid under the same rules as any command */
	if ((t->key & ~DRV_TRK_KEY_PART) != (DRV_TRK_KEY_ACTIVE | cid) ||
	    hd_id - q->sqid_key >= q->depth)
		return drv_queue_reject_cqe(q, e, st);
	q->sq_head = (uint16_t)hd_id;
	drv_trk_complete_cqe(q, t, NVME_CQE_SF(st), e->dw0);
	return 0;
}

__attribute__((noinline)) int drv_q_cqe_status(struct drv_queue *q, const struct nvme_cqe *e,
					       uint16_t st)
{
	uint32_t head = q->cq_head;
	/* read once: the device may rewrite the entry, and the tracker picked
	 * by the CID must be the one validated against it */
	uint16_t cid = e->cid;
	uint32_t hd_id;

	memcpy(&hd_id, &e->sqhd, sizeof(hd_id));
	if (++head == q->depth) {
		head = 0;
		q->phase ^= 1u;
	}
	q->cq_head = head;
	/* the same two compares as drv_q_drain's, split parts included */
	return drv_q_cqe_other(q, e, &q->trk[cid & q->idx_mask], st, cid, hd_id);
}

__attribute__((noinline)) void drv_trk_complete_cqe(struct drv_queue *q, struct drv_tracker *t,
						    uint16_t sf, uint32_t dw0)
{
	drv_trk_complete(q, t, drv_cpl_err(t, sf), sf, dw0);
}

unsigned drv_queue_doom_all(struct drv_queue *q)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < q->ntrk; i++)
		if (q->trk[i].state == TRK_ACTIVE) {
			q->trk[i].flags |= TRK_F_DOOMED;
			n++;
		}
	return n;
}

/* Complete every DOOMED tracker with @err. Callbacks may submit new commands
 * (they get fresh, undoomed trackers), so a tracker is completed only while
 * still ACTIVE and DOOMED: each exactly once. */
unsigned drv_queue_fail_doomed(struct drv_queue *q, int err)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < q->ntrk; i++) {
		struct drv_tracker *t = &q->trk[i];

		if (t->state == TRK_ACTIVE && (t->flags & TRK_F_DOOMED)) {
			drv_trk_complete(q, t, err, DRV_SF_HOST_ABORTED, 0);
			n++;
		}
	}
	return n;
}

/*
 * Point an I/O queue at its shadow doorbell and EventIdx slots (Base 2.0
 * 5.8: page 0 of dbbuf_mem holds the shadow doorbells, page 1 the EventIdx
 * values, both laid out as the doorbell registers with CAP.DSTRD). Used by
 * creation, restore and adoption, so all three agree on the layout.
 */
void drv_q_dbbuf_attach(struct nvmk_ctrl *ctrl, struct drv_queue *q)
{
	uint32_t stride = 4u << ctrl->dstrd;
	char *sdb = ctrl->dbbuf_mem.mem.vaddr;

	q->sdb_sq = (uint32_t *)(sdb + 2u * q->qid * stride);
	q->sdb_cq = (uint32_t *)(sdb + (2u * q->qid + 1u) * stride);
	/* each EventIdx slot one page after its shadow slot: drv_db_ring
	 * finds it there without loading ei_sq / ei_cq */
	q->ei_sq = (uint32_t *)((char *)q->sdb_sq + DRV_PAGE_SIZE);
	q->ei_cq = (uint32_t *)((char *)q->sdb_cq + DRV_PAGE_SIZE);
	/* from now on drv_q_commit_at takes drv_db_ring's shadow path */
	q->sq_shadow = 1;
}
