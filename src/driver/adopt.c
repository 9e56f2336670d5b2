// SPDX-License-Identifier: MIT
/*
 * Adoption: take over the controller a crashed driver left running, from
 * the device's own view of it (struct nvmk_dev_view), without a reset.
 *
 * The sequence (docs/vfio-user.md, "A client that crashed without a saved
 * state"):
 *  1. Check everything that can refuse first: the view against the device's
 *     registers (enabled, ready, no fatal status, same admin queue) and the
 *     driver's queue layout (SQ y bound to CQ y, equal sizes).
 *  2. Take every queue's blocks back from the pool by their tags, at the
 *     device addresses the view says the device uses (the blocks the
 *     previous driver allocated were mapped one block per map).
 *  3. Drain: every command the device holds except AERs, and every one in
 *     an SQ it has not fetched yet, completes into the old CQs; the
 *     completions (and those that were already there, unconsumed) are
 *     consumed and dropped: their requesters died with the old process. The
 *     trackers are used again only after that: an old command may still
 *     read its tracker's PRP list page until it completes. A command that
 *     does not complete within the bound fails the adoption (the caller
 *     resets: a hung command has no other way out).
 *  4. Adopt: the queues at the device's positions (I/O queues are handed
 *     out by nvmk_ctrl_get_qpair), the AERs as outstanding; Identify
 *     Controller for the limits the driver keeps; the generation record
 *     marked so that no older saved state restores over this controller.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>

#include "driver/io_ops.h"
#include "driver/queue.h"
#include "driver/servicing.h"

#define ADOPT_DRAIN_MS 5000u
#define ADOPT_MAX_WAIT 4096u

static _Atomic uint64_t adopt_next_uid = 1;

/* What one queue waits for during the drain. */
struct adopt_q {
	struct drv_queue *q;
	const struct nvmk_dev_view_sq *sq;
	const struct nvmk_dev_view_cq *cq;
	uint16_t *wait; /* CIDs of commands still to complete */
	unsigned nwait;
	uint32_t old_cqes; /* completions already in the CQ at the snapshot */
	uint32_t consumed;
};

static const struct nvmk_dev_view_cq *view_cq(const struct nvmk_dev_view *v, uint16_t qid)
{
	for (unsigned i = 0; i < v->ncq; i++)
		if (v->cqs[i].qid == qid)
			return &v->cqs[i];
	return NULL;
}

/* The device address of a pool block of the previous driver: the map that
 * is exactly this block (the driver maps each block on its own). */
static int view_iova(const struct nvmk_dev_view *v, const struct nvmk_dma_mem *mem, uint64_t *iova)
{
	for (unsigned i = 0; i < v->nmaps; i++)
		if (v->maps[i].pool && v->maps[i].offset == mem->fd_offset &&
		    v->maps[i].size == mem->size) {
			*iova = v->maps[i].iova;
			return 0;
		}
	return -ENOENT;
}

/* Take the block @tag back at the address the device knows it by; @want
 * (when not 0) is where the device says it is. */
static int adopt_block(struct nvmk_ctrl *ctrl, const struct nvmk_dev_view *v, const char *tag,
		       uint64_t want, struct nvmk_dma_buf *buf)
{
	struct nvmk_dma_mem mem;
	uint64_t iova = 0;
	int rc;

	memset(buf, 0, sizeof(*buf));
	rc = nvmk_dma_reclaim(ctrl->b->pool, ctrl->b->name, tag, &mem);
	if (rc) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ, "adopt: pool block %s: %s", tag,
			 rc == -ENOENT ? "not in the pool" : strerror(-rc));
		return -EPROTO;
	}
	rc = view_iova(v, &mem, &iova);
	nvmk_dma_unclaim(&mem);
	if (rc || (want && iova != want)) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ,
			 "adopt: pool block %s is %s, the device uses 0x%llx", tag,
			 rc ? "mapped nowhere" : "at another address", (unsigned long long)want);
		return -EPROTO;
	}
	rc = nvmk_backing_dma_reclaim(ctrl->b, tag, iova, buf);
	if (rc) {
		if (buf->mem.vaddr)
			nvmk_dma_unclaim(&buf->mem);
		memset(buf, 0, sizeof(*buf));
		nvmk_err(ctrl->name, NVMK_LOG_NOQ, "adopt: pool block %s: %s", tag, strerror(-rc));
		return rc;
	}
	return 0;
}

static bool wait_add(struct adopt_q *a, uint16_t cid)
{
	for (unsigned i = 0; i < a->nwait; i++)
		if (a->wait[i] == cid)
			return true;
	if (a->nwait >= ADOPT_MAX_WAIT)
		return false;
	a->wait[a->nwait++] = cid;
	return true;
}

/*
 * Rebuild queue @qid over its pool blocks at the device's positions, with
 * what it must wait for. @tag: "admin" or "ioN".
 */
static int adopt_queue(struct nvmk_ctrl *ctrl, const struct nvmk_dev_view *v, struct adopt_q *a,
		       struct drv_queue *q, const char *tag)
{
	const struct nvmk_dev_view_sq *sq = a->sq;
	const struct nvmk_dev_view_cq *cq = a->cq;
	char t[32];
	int rc;

	drv_queue_geometry(ctrl, q, sq->qid, sq->size);
	snprintf(t, sizeof(t), "%s.sq", tag);
	rc = adopt_block(ctrl, v, t, sq->base, &q->sq_mem);
	if (rc)
		return rc;
	snprintf(t, sizeof(t), "%s.cq", tag);
	rc = adopt_block(ctrl, v, t, cq->base, &q->cq_mem);
	if (rc)
		return rc;
	snprintf(t, sizeof(t), "%s.prp", tag);
	rc = adopt_block(ctrl, v, t, 0, &q->prp_mem);
	if (rc)
		return rc;
	if (q->sq_mem.mem.size < (size_t)sq->size * sizeof(struct nvme_sqe) ||
	    q->cq_mem.mem.size < (size_t)cq->size * sizeof(struct nvme_cqe) ||
	    q->prp_mem.mem.size < (size_t)q->ntrk * DRV_PAGE_SIZE) {
		nvmk_err(ctrl->name, sq->qid,
			 "adopt: queue %u blocks are smaller than its %u "
			 "entries need",
			 sq->qid, sq->size);
		return -EPROTO;
	}
	rc = drv_queue_init_trackers(q);
	if (rc)
		return rc;
	/* commands in the SQ the device has not fetched yet: they will run */
	for (uint32_t i = sq->head; i != sq->tail; i = i + 1 == sq->size ? 0 : i + 1)
		if (!wait_add(a, q->sq[i].cid))
			return -ENOMEM;
	/* the commands it holds: AERs stay outstanding, the others complete */
	for (unsigned i = 0; i < v->ncmd; i++) {
		const struct nvmk_dev_view_cmd *c = &v->cmds[i];
		struct drv_tracker *tr;

		if (c->sqid != sq->qid)
			continue;
		if (!c->aer) {
			if (!wait_add(a, c->cid))
				return -ENOMEM;
			continue;
		}
		tr = &q->trk[c->cid & q->idx_mask];
		if ((c->cid & q->idx_mask) >= q->ntrk || tr->state != TRK_FREE ||
		    ctrl->aers_outstanding >= DRV_MAX_AERS) {
			nvmk_err(ctrl->name, 0,
				 "adopt: AER cid 0x%04x does not fit the admin "
				 "queue's trackers",
				 c->cid);
			return -EPROTO;
		}
		tr->cid = c->cid;
		tr->state = TRK_ACTIVE;
		tr->opc = NVME_ADM_ASYNC_EVENT;
		tr->cb = drv_aer_done;
		tr->cb_arg = ctrl;
		tr->deadline = DRV_NO_DEADLINE;
		ctrl->aers_outstanding++;
	}
	/* the free list without the AERs' trackers */
	q->free_head = DRV_TRK_NONE;
	q->nbusy = q->ntrk;
	for (uint32_t i = q->ntrk; i-- > 0;)
		if (q->trk[i].state == TRK_FREE) {
			q->trk[i].next_free = q->free_head;
			q->free_head = (uint16_t)i;
			q->nbusy--;
		}
	/* Positions. The driver consumes from the head the device knows; the
	 * entries up to its tail carry its phase, or (wrapped) the previous
	 * pass's from the head to the end of the ring. */
	q->sq_tail = q->sq_db_tail = sq->tail;
	q->sq_head = (uint16_t)sq->head;
	q->cq_head = q->cq_db_head = cq->head;
	q->phase = (uint16_t)(cq->head <= cq->tail ? cq->phase : !cq->phase);
	a->old_cqes = (cq->tail + cq->size - cq->head) % cq->size;
	return 0;
}

/* Consume what the device posted on @a's CQ; completions of AERs go to
 * their trackers, the others are dropped. Return: < 0 on an entry that
 * cannot be the device's (it is logged). */
static int adopt_drain_one(struct nvmk_ctrl *ctrl, struct adopt_q *a)
{
	struct drv_queue *q = a->q;

	for (;;) {
		const struct nvme_cqe *e = &q->cq[q->cq_head];
		uint16_t st = __atomic_load_n(&e->status, __ATOMIC_ACQUIRE);
		struct drv_tracker *t;
		uint16_t cid = e->cid;

		if ((st ^ q->phase) & 1u)
			break;
		if (e->sqid != q->qid || e->sqhd >= q->depth) {
			nvmk_err(ctrl->name, q->qid,
				 "adopt: completion with SQ %u, SQ head %u on queue %u: refused",
				 e->sqid, e->sqhd, q->qid);
			return -EIO;
		}
		/* A completion posted after the snapshot cannot report an SQ head
		 * past the tail the device reported: else it fetched commands the
		 * view did not show, and the queue positions are not the device's. */
		if (a->consumed >= a->old_cqes &&
		    (e->sqhd + q->depth - a->sq->head) % q->depth >
			(a->sq->tail + q->depth - a->sq->head) % q->depth) {
			nvmk_err(ctrl->name, q->qid,
				 "adopt: SQ head %u is beyond the tail %u the device reported: "
				 "refused",
				 e->sqhd, a->sq->tail);
			return -EPROTO;
		}
		q->sq_head = e->sqhd;
		if (++q->cq_head == q->depth) {
			q->cq_head = 0;
			q->phase ^= 1u;
		}
		a->consumed++;
		t = &q->trk[cid & q->idx_mask];
		if (t->key == (DRV_TRK_KEY_ACTIVE | cid)) {
			uint16_t sf = NVME_CQE_SF(st);

			drv_trk_complete(q, t, sf ? nvmk_status_to_errno(sf) : 0, sf, e->dw0);
			continue;
		}
		for (unsigned i = 0; i < a->nwait; i++)
			if (a->wait[i] == cid) {
				a->wait[i] = a->wait[--a->nwait];
				break;
			}
	}
	drv_q_ring_cq(q);
	return 0;
}

static int adopt_drain(struct nvmk_ctrl *ctrl, struct adopt_q *aq, unsigned n, uint32_t ms,
		       unsigned *dropped)
{
	uint64_t deadline = drv_clock_ms() + ms;
	struct timespec nap = {0, 200000};

	for (;;) {
		bool done = true;
		int rc;

		for (unsigned i = 0; i < n; i++) {
			rc = adopt_drain_one(ctrl, &aq[i]);
			if (rc)
				return rc;
			if (aq[i].nwait || aq[i].consumed < aq[i].old_cqes)
				done = false;
		}
		if (done)
			break;
		rc = drv_reg_health(ctrl);
		if (rc)
			return rc;
		if (drv_clock_ms() > deadline) {
			for (unsigned i = 0; i < n; i++)
				if (aq[i].nwait)
					nvmk_err(
					    ctrl->name, aq[i].q->qid,
					    "adopt: %u command(s) the device holds did not "
					    "complete within %u ms (first cid 0x%04x): a reset is "
					    "the only way on",
					    aq[i].nwait, ms, aq[i].wait[0]);
			return -ETIMEDOUT;
		}
		nanosleep(&nap, NULL);
	}
	*dropped = 0;
	for (unsigned i = 0; i < n; i++)
		*dropped += aq[i].consumed;
	return 0;
}

/* Register reads only: the device runs the admin queue of the view. */
static int adopt_check_device(struct nvmk_backing *b, const struct nvmk_dev_view *v)
{
	uint32_t csts = nvmk_backing_read32(b, NVME_REG_CSTS);
	uint32_t cc = nvmk_backing_read32(b, NVME_REG_CC);

	if (csts == 0xffffffffu)
		return -ENODEV;
	if ((csts & NVME_CSTS_CFS) || !(cc & NVME_CC_EN) || !(csts & NVME_CSTS_RDY) ||
	    NVME_CC_SHN(cc)) {
		nvmk_err(b->name, NVMK_LOG_NOQ,
			 "adopt refused: controller not running (CC 0x%08x, CSTS 0x%08x)", cc,
			 csts);
		return -EIO;
	}
	if (nvmk_backing_read64(b, NVME_REG_ASQ) != v->asq ||
	    nvmk_backing_read64(b, NVME_REG_ACQ) != v->acq) {
		nvmk_err(b->name, NVMK_LOG_NOQ,
			 "adopt refused: the admin queue registers differ from the device's view");
		return -EPROTO;
	}
	return 0;
}

/* The queue layout the driver makes: SQ y on CQ y, one size for both. */
static int adopt_check_view(struct nvmk_backing *b, const struct nvmk_dev_view *v)
{
	bool admin = false;

	for (unsigned i = 0; i < v->nsq; i++) {
		const struct nvmk_dev_view_cq *cq = view_cq(v, v->sqs[i].qid);

		if (!cq || v->sqs[i].cqid != v->sqs[i].qid || cq->size != v->sqs[i].size) {
			nvmk_err(b->name, v->sqs[i].qid,
				 "adopt refused: SQ %u (on CQ %u) is not a queue pair this driver "
				 "makes",
				 v->sqs[i].qid, v->sqs[i].cqid);
			return -EPROTO;
		}
		admin |= v->sqs[i].qid == 0;
	}
	if (!admin || v->ncq != v->nsq || v->asq != v->sqs[0].base) {
		nvmk_err(
		    b->name, NVMK_LOG_NOQ,
		    "adopt refused: the view has no admin queue pair at ASQ, or CQs without SQs");
		return -EPROTO;
	}
	if (!v->nsq_granted || !v->ncq_granted) {
		nvmk_err(b->name, NVMK_LOG_NOQ,
			 "adopt refused: Number of Queues was never set (the previous driver died "
			 "in its bring-up)");
		return -EPROTO;
	}
	return 0;
}

static struct nvmk_qpair *adopt_qpair_new(struct nvmk_ctrl *ctrl)
{
	struct nvmk_qpair *qp = calloc(1, sizeof(*qp));

	if (!qp)
		return NULL;
	qp->ops = &drv_nvme_io_ops;
	qp->ctrl = ctrl;
	qp->irq_fd = -1;
	/* linked first: a failure below is cleaned up by detach */
	qp->next = ctrl->qpairs;
	ctrl->qpairs = qp;
	qp->mode = ctrl->opts.cpl_mode;
	qp->from_get = true;
	qp->io_timeout_ms = ctrl->opts.io_timeout_ms;
	return qp;
}

int nvmk_ctrl_adopt(struct nvmk_backing *b, const struct nvmk_adopt_opts *opts,
		    struct nvmk_ctrl **out)
{
	const struct nvmk_dev_view *v = nvmk_backing_device_view(b);
	struct nvmk_adopt_opts o = {0};
	struct adopt_q *aq = NULL;
	struct nvmk_ctrl *ctrl = NULL;
	unsigned nq, dropped = 0, want;
	uint64_t cap;
	int rc;

	if (!b || !out)
		return -EINVAL;
	if (opts)
		o = *opts;
	if (!o.drain_timeout_ms)
		o.drain_timeout_ms = ADOPT_DRAIN_MS;
	if (!v || !b->pool || !b->ops->dma_remap) {
		nvmk_err(b->name, NVMK_LOG_NOQ, "adopt refused: %s",
			 !v ? "the device reports no view of a previous "
			      "driver's controller"
			    : "no private pool, or a backing that cannot remap");
		return -EOPNOTSUPP;
	}
	rc = drv_owner_busy(b, "adopt");
	if (rc)
		return rc;
	rc = adopt_check_view(b, v);
	if (!rc)
		rc = adopt_check_device(b, v);
	if (rc)
		goto out_view;
	/* process-unique, apart from ctrl.c's and restore.c's counters */
	ctrl = drv_ctrl_alloc(
	    b, (3ull << 62) | atomic_fetch_add_explicit(&adopt_next_uid, 1, memory_order_relaxed));
	if (!ctrl) {
		rc = -ENOMEM;
		goto out_view;
	}
	rc = drv_owner_claim(ctrl, "adopt");
	if (rc) {
		drv_ctrl_free_host(ctrl);
		ctrl = NULL;
		goto out_view;
	}
	drv_opts_resolve(ctrl, &o.ctrl);
	drv_now_refresh(ctrl);
	cap = nvmk_backing_read64(b, NVME_REG_CAP);
	ctrl->cap = cap;
	ctrl->dstrd = NVME_CAP_DSTRD(cap);
	ctrl->ready_timeout_ms = (NVME_CAP_TO(cap) ? NVME_CAP_TO(cap) : 1) * 500u;
	ctrl->max_io_depth = NVME_CAP_MQES(cap) + 1;
	want = ctrl->opts.io_queue_depth;
	ctrl->io_depth = want > ctrl->max_io_depth ? ctrl->max_io_depth : want < 2 ? 2 : want;
	ctrl->max_xfer = DRV_PAGE_SIZE; /* until Identify */
	ctrl->granted = v->nsq_granted < v->ncq_granted ? v->nsq_granted : v->ncq_granted;
	for (unsigned i = 0; i < v->nsq; i++)
		if (v->sqs[i].qid > ctrl->granted) {
			nvmk_err(b->name, v->sqs[i].qid,
				 "adopt refused: queue %u beyond the %u granted", v->sqs[i].qid,
				 ctrl->granted);
			rc = -EPROTO;
			goto fail;
		}
	ctrl->id = calloc(1, sizeof(*ctrl->id));
	ctrl->qid_used = calloc((size_t)ctrl->granted + 1, 1);
	ctrl->get_qps = calloc(ctrl->granted ? ctrl->granted : 1, sizeof(*ctrl->get_qps));
	ctrl->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	nq = v->nsq;
	aq = calloc(nq, sizeof(*aq));
	if (!ctrl->id || !ctrl->qid_used || !ctrl->get_qps || ctrl->wake_fd < 0 || !aq) {
		rc = -ENOMEM;
		goto fail;
	}
	/* from here on blocks are claimed: a failure gives the claims back */
	ctrl->saved = DRV_SAVED_RESTORE_REFUSED;

	/* interrupts: as the bring-up chooses them (none: polled) */
	drv_irq_setup(ctrl);
	if (v->dbbuf_shadow) {
		rc = adopt_block(ctrl, v, "dbbuf", v->dbbuf_shadow, &ctrl->dbbuf_mem);
		if (rc)
			goto fail;
		if (v->dbbuf_eventidx != v->dbbuf_shadow + DRV_PAGE_SIZE) {
			nvmk_err(b->name, NVMK_LOG_NOQ,
				 "adopt refused: EventIdx buffer is not the page after the shadow "
				 "doorbells");
			rc = -EPROTO;
			goto fail;
		}
		ctrl->dbbuf = true;
	}
	rc = adopt_block(ctrl, v, "admin.data", 0, &ctrl->admin_buf);
	if (rc)
		goto fail;
	/* the admin queue first (aq[0]), then the I/O queues */
	for (unsigned i = 0, k = 1; i < nq; i++) {
		const struct nvmk_dev_view_sq *sq = &v->sqs[i];
		struct adopt_q *a = sq->qid == 0 ? &aq[0] : &aq[k++];
		char tag[16];

		a->sq = sq;
		a->cq = view_cq(v, sq->qid);
		a->wait = calloc(ADOPT_MAX_WAIT, sizeof(*a->wait));
		if (!a->wait) {
			rc = -ENOMEM;
			goto fail;
		}
		if (sq->qid == 0) {
			a->q = &ctrl->aq;
			ctrl->admin_depth = sq->size;
			rc = adopt_queue(ctrl, v, a, &ctrl->aq, "admin");
		} else {
			struct nvmk_qpair *qp = adopt_qpair_new(ctrl);

			if (!qp) {
				rc = -ENOMEM;
				goto fail;
			}
			a->q = &qp->q;
			snprintf(tag, sizeof(tag), "io%u", sq->qid);
			rc = adopt_queue(ctrl, v, a, &qp->q, tag);
			if (!rc && ctrl->dbbuf)
				drv_q_dbbuf_attach(ctrl, &qp->q);
			if (!rc)
				drv_qp_cq_db_policy(qp);
			if (!rc && ctrl->nvec > 1 && a->cq->ien && a->cq->iv < ctrl->nvec) {
				qp->vector = a->cq->iv;
				qp->irq_shared = sq->qid >= ctrl->nvec;
				qp->irq_fd = b->ops->irq_fd(b, qp->vector);
			}
			ctrl->qid_used[sq->qid] = 1;
		}
		if (rc)
			goto fail;
	}

	/* Point of no return for the device's commands: it goes on now. */
	rc = adopt_drain(ctrl, aq, nq, o.drain_timeout_ms, &dropped);
	if (rc)
		goto fail;
	ctrl->saved = 0;
	/* no saved state restores over this controller any more */
	drv_gen_invalidate(b);
	b->ops->device_view_done(b);
	v = NULL;
	/* the previous driver's blocks nobody took back (its data buffers):
	 * nothing on the device points there any more */
	nvmk_dma_pool_release_unclaimed(b->pool, b->name);

	pthread_mutex_lock(&ctrl->admin_lock);
	rc = drv_ctrl_identify(ctrl);
	pthread_mutex_unlock(&ctrl->admin_lock);
	if (rc) {
		nvmk_err(b->name, NVMK_LOG_NOQ, "adopt: Identify Controller failed: %d", rc);
		goto fail_live;
	}
	for (struct nvmk_qpair *qp = ctrl->qpairs; qp; qp = qp->next) {
		qp->max_segs = (unsigned)(ctrl->max_xfer / DRV_PAGE_SIZE) + 1;
		qp->segs = calloc(qp->max_segs, sizeof(*qp->segs));
		qp->parts = calloc(qp->q.ntrk, sizeof(*qp->parts));
		if (!qp->segs || !qp->parts) {
			rc = -ENOMEM;
			goto fail_live;
		}
		drv_qp_set_epoch(qp, atomic_load_explicit(&ctrl->epoch, memory_order_relaxed));
		qp->next_check = drv_now(ctrl) + ctrl->tick_ms;
		ctrl->get_qps[ctrl->n_get_qps++] = qp;
	}
	ctrl->get_budget = ctrl->granted;
	drv_ns_scan_all(ctrl);
	pthread_mutex_lock(&ctrl->admin_lock);
	drv_aer_post_all(ctrl);
	pthread_mutex_unlock(&ctrl->admin_lock);
	rc = pthread_create(&ctrl->thread, NULL, drv_admin_thread, ctrl);
	if (rc) {
		rc = -rc;
		goto fail_live;
	}
	ctrl->thread_started = true;
	for (unsigned i = 0; i < nq; i++)
		free(aq[i].wait);
	free(aq);
	nvmk_info(ctrl->name, NVMK_LOG_NOQ,
		  "adopted without a reset: %u I/O queue pair(s) at the device's positions, %u "
		  "AER(s) outstanding, %u completion(s) of the previous driver dropped",
		  nq - 1, ctrl->aers_outstanding, dropped);
	*out = ctrl;
	return 0;

fail_live:
	/* adopted and consumed, but not usable: close it (a shutdown) */
	for (unsigned i = 0; i < nq; i++)
		free(aq[i].wait);
	free(aq);
	nvmk_ctrl_close(ctrl);
	return rc;
fail:
	if (aq)
		for (unsigned i = 0; i < nq; i++)
			free(aq[i].wait);
	free(aq);
	nvmk_err(b->name, NVMK_LOG_NOQ, "adopt failed: %s", strerror(-rc));
	nvmk_ctrl_detach(ctrl);
	return rc;
out_view:
	return rc;
}

int nvmk_ctrl_open_or_adopt(struct nvmk_backing *b, const struct nvmk_ctrl_opts *opts,
			    struct nvmk_ctrl **out, bool *adopted)
{
	struct nvmk_adopt_opts ao = {0};
	int rc;

	if (adopted)
		*adopted = false;
	if (!b || !out)
		return -EINVAL;
	if (!nvmk_backing_device_view(b))
		return nvmk_ctrl_open(b, opts, out);
	if (opts)
		ao.ctrl = *opts;
	rc = nvmk_ctrl_adopt(b, &ao, out);
	if (rc == 0) {
		if (adopted)
			*adopted = true;
		return 0;
	}
	if (rc == -EBUSY)
		return rc;
	nvmk_warn(b->name, NVMK_LOG_NOQ,
		  "the controller left by the previous driver could not be adopted (%s): "
		  "resetting it and bringing it up",
		  strerror(-rc));
	return nvmk_ctrl_open(b, opts, out); /* resets first: drv_adopt_abandon */
}

void drv_adopt_abandon(struct nvmk_backing *b)
{
	int rc;

	/* the reset first, so that nothing on the device points into the
	 * previous driver's blocks any more; then they go back to the pool */
	nvmk_info(b->name, NVMK_LOG_NOQ,
		  "the previous driver's controller is not adopted: function reset, its "
		  "memory released");
	rc = b->ops->reset(b);
	if (rc)
		nvmk_warn(b->name, NVMK_LOG_NOQ, "function reset failed: %s", strerror(-rc));
	if (b->ops->device_view_done)
		b->ops->device_view_done(b);
	if (b->pool)
		nvmk_dma_pool_release_unclaimed(b->pool, b->name);
}
