// SPDX-License-Identifier: MIT
/*
 * I/O queue pairs: creation on the device, per-thread lookup, completion
 * processing and waiting, and re-creation after a controller reset.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver/queue.h"

/* ---- creation on the device ---- */

static int qp_create_on_device(struct nvmk_qpair *qp)
{
	struct nvmk_ctrl *ctrl = qp->ctrl;
	struct drv_queue *q = &qp->q;
	struct nvme_sqe c;
	int rc;

	if (q->cq_mem.page_iova || q->sq_mem.page_iova) {
		/* PC = 1 needs the ring contiguous in device address space */
		for (size_t off = DRV_PAGE_SIZE; off < q->cq_mem.mem.size; off += DRV_PAGE_SIZE)
			if (nvmk_dma_buf_iova(&q->cq_mem, off) !=
			    nvmk_dma_buf_iova(&q->cq_mem, 0) + off)
				return -EINVAL;
		for (size_t off = DRV_PAGE_SIZE; off < q->sq_mem.mem.size; off += DRV_PAGE_SIZE)
			if (nvmk_dma_buf_iova(&q->sq_mem, off) !=
			    nvmk_dma_buf_iova(&q->sq_mem, 0) + off)
				return -EINVAL;
	}
	drv_queue_reset_ring(q);
	/* Base 2.0 5.4: Create I/O Completion Queue. */
	memset(&c, 0, sizeof(c));
	c.opc = NVME_ADM_CREATE_CQ;
	c.prp1 = nvmk_dma_buf_iova(&q->cq_mem, 0);
	c.cdw10 = NVME_CREATE_Q_CDW10(q->qid, q->depth - 1);
	c.cdw11 = NVME_CQ_FLAGS_PC;
	if (qp->mode == NVMK_CPL_INTERRUPT && qp->irq_fd >= 0)
		c.cdw11 |= NVME_CQ_FLAGS_IEN | ((uint32_t)qp->vector << 16);
	rc = drv_admin_sync(ctrl, &c, NULL, 0, NULL);
	if (rc) {
		nvmk_err(ctrl->name, q->qid, "Create I/O CQ failed: %d", rc);
		return rc;
	}
	/* Base 2.0 5.5: Create I/O Submission Queue bound to it. */
	memset(&c, 0, sizeof(c));
	c.opc = NVME_ADM_CREATE_SQ;
	c.prp1 = nvmk_dma_buf_iova(&q->sq_mem, 0);
	c.cdw10 = NVME_CREATE_Q_CDW10(q->qid, q->depth - 1);
	c.cdw11 = NVME_SQ_FLAGS_PC | ((uint32_t)q->qid << 16);
	rc = drv_admin_sync(ctrl, &c, NULL, 0, NULL);
	if (rc) {
		nvmk_err(ctrl->name, q->qid, "Create I/O SQ failed: %d", rc);
		memset(&c, 0, sizeof(c));
		c.opc = NVME_ADM_DELETE_CQ;
		c.cdw10 = q->qid;
		drv_admin_sync(ctrl, &c, NULL, 0, NULL);
		return rc;
	}
	return 0;
}

static void qp_delete_on_device(struct nvmk_qpair *qp)
{
	struct nvme_sqe c = {.opc = NVME_ADM_DELETE_SQ, .cdw10 = qp->q.qid};

	if (drv_failed(qp->ctrl) || qp->dead)
		return;
	if (drv_admin_sync(qp->ctrl, &c, NULL, 0, NULL) == 0) {
		c.opc = NVME_ADM_DELETE_CQ;
		drv_admin_sync(qp->ctrl, &c, NULL, 0, NULL);
	}
}

static void qp_free(struct nvmk_qpair *qp)
{
	struct nvmk_ctrl *ctrl = qp->ctrl;

	drv_queue_free(ctrl, &qp->q);
	free(qp->segs);
	free(qp->parts);
	if (qp->shared)
		pthread_mutex_destroy(&qp->lock);
	pthread_mutex_lock(&ctrl->qp_lock);
	ctrl->qid_used[qp->q.qid] = 0;
	pthread_mutex_unlock(&ctrl->qp_lock);
	free(qp);
}

int nvmk_qpair_create(struct nvmk_ctrl *ctrl, const struct nvmk_qpair_opts *opts,
		      struct nvmk_qpair **out)
{
	struct nvmk_qpair_opts o = {0};
	struct nvmk_qpair *qp;
	uint16_t qid = 0;
	char tag[16];
	int rc;

	if (!ctrl || !out)
		return -EINVAL;
	if (opts)
		o = *opts;
	rc = drv_failed(ctrl);
	if (rc)
		return rc;
	/* relaxed: a hint; save stops clients before it quiesces */
	if (atomic_load_explicit(&ctrl->svc_quiesced, memory_order_relaxed))
		return -EAGAIN;
	qp = calloc(1, sizeof(*qp));
	if (!qp)
		return -ENOMEM;
	pthread_mutex_lock(&ctrl->qp_lock);
	for (uint16_t i = 1; i <= ctrl->granted; i++)
		if (!ctrl->qid_used[i]) {
			qid = i;
			ctrl->qid_used[i] = 1;
			break;
		}
	pthread_mutex_unlock(&ctrl->qp_lock);
	if (!qid) {
		free(qp);
		return -EBUSY;
	}
	qp->ctrl = ctrl;
	qp->io_timeout_ms = ctrl->opts.io_timeout_ms;
	qp->mode = o.mode;
	qp->shared = (o.flags & NVMK_QPAIR_SHARED) != 0;
	/* recursive: a callback may submit on the queue it completes on */
	if (qp->shared)
		drv_mutex_init_recursive(&qp->lock);
	uint32_t depth = o.depth ? o.depth : ctrl->io_depth;

	if (depth > ctrl->max_io_depth)
		depth = ctrl->max_io_depth;
	if (depth < 2)
		depth = 2;
	snprintf(tag, sizeof(tag), "io%u", qid);
	rc = drv_queue_alloc(ctrl, &qp->q, qid, depth, tag);
	if (rc) {
		qp->q.qid = qid;
		qp_free(qp);
		return rc;
	}
	qp->max_segs = (unsigned)(ctrl->max_xfer / DRV_PAGE_SIZE) + 1;
	qp->segs = calloc(qp->max_segs, sizeof(*qp->segs));
	qp->parts = calloc(qp->q.ntrk, sizeof(*qp->parts));
	if (!qp->segs || !qp->parts) {
		qp_free(qp);
		return -ENOMEM;
	}
	/* Vector: its own while they last, else shared (then waits poll in
	 * short slices, since another queue's waiter may eat the wakeup). */
	qp->irq_fd = -1;
	if (ctrl->nvec > 1) {
		qp->vector = (uint16_t)(1 + (qid - 1) % (ctrl->nvec - 1));
		qp->irq_shared = qid >= ctrl->nvec;
		qp->irq_fd = ctrl->b->ops->irq_fd(ctrl->b, qp->vector);
	}
	if (ctrl->dbbuf) {
		uint32_t stride = 4u << ctrl->dstrd;
		char *sdb = ctrl->dbbuf_mem.mem.vaddr;
		char *ei = sdb + DRV_PAGE_SIZE;

		qp->q.sdb_sq = (uint32_t *)(sdb + 2u * qid * stride);
		qp->q.sdb_cq = (uint32_t *)(sdb + (2u * qid + 1u) * stride);
		qp->q.ei_sq = (uint32_t *)(ei + 2u * qid * stride);
		qp->q.ei_cq = (uint32_t *)(ei + (2u * qid + 1u) * stride);
	}
	/* acquire: see the admin state of the reset that set this epoch */
	drv_qp_set_epoch(qp, atomic_load_explicit(&ctrl->epoch, memory_order_acquire));
	rc = qp_create_on_device(qp);
	if (rc) {
		qp_free(qp);
		return rc;
	}
	qp->next_check = drv_now(ctrl) + ctrl->tick_ms;
	pthread_mutex_lock(&ctrl->qp_lock);
	qp->next = ctrl->qpairs;
	ctrl->qpairs = qp;
	pthread_mutex_unlock(&ctrl->qp_lock);
	nvmk_debug(ctrl->name, qid, "queue pair created: %u entries, %s, vector %u%s", depth,
		   qp->mode == NVMK_CPL_POLL ? "polled" : "interrupts", qp->vector,
		   qp->shared ? ", shared" : "");
	*out = qp;
	return 0;
}

static void qp_unlink(struct nvmk_qpair *qp)
{
	struct nvmk_ctrl *ctrl = qp->ctrl;

	pthread_mutex_lock(&ctrl->qp_lock);
	for (struct nvmk_qpair **pp = &ctrl->qpairs; *pp; pp = &(*pp)->next)
		if (*pp == qp) {
			*pp = qp->next;
			break;
		}
	pthread_mutex_unlock(&ctrl->qp_lock);
}

static void qp_destroy(struct nvmk_qpair *qp)
{
	qp_unlink(qp);
	/* a failed device may still be running: stop it before freeing */
	pthread_mutex_lock(&qp->ctrl->qp_lock);
	drv_ctrl_quiesce(qp->ctrl);
	pthread_mutex_unlock(&qp->ctrl->qp_lock);
	drv_qp_lock(qp);
	qp_delete_on_device(qp);
	drv_queue_doom_all(&qp->q);
	drv_queue_fail_doomed(&qp->q, -ECANCELED);
	drv_qp_unlock(qp);
	qp_free(qp);
}

void nvmk_qpair_destroy(struct nvmk_qpair *qp)
{
	if (!qp || qp->from_get)
		return;
	if (qp->kern) {
		drv_kns_qpair_destroy(qp);
		return;
	}
	qp_destroy(qp);
}

void drv_qpair_destroy_all(struct nvmk_ctrl *ctrl)
{
	for (;;) {
		struct nvmk_qpair *qp;

		pthread_mutex_lock(&ctrl->qp_lock);
		qp = ctrl->qpairs;
		pthread_mutex_unlock(&ctrl->qp_lock);
		if (!qp)
			break;
		qp_destroy(qp);
	}
	ctrl->n_get_qps = 0;
}

uint16_t nvmk_qpair_id(const struct nvmk_qpair *qp)
{
	return qp->q.qid;
}

/* Requests, not trackers: a split request holds a PARENT tracker plus one
 * per part on the device; the parts are not counted. A scan of the trackers
 * (control path: callers poll it while draining, not per I/O), under a
 * SHARED qpair's lock since its trackers change under it. */
unsigned nvmk_qpair_outstanding(const struct nvmk_qpair *qp)
{
	struct nvmk_qpair *lq = (struct nvmk_qpair *)qp;
	const struct drv_queue *q = &qp->q;
	unsigned busy, parts = 0;

	drv_qp_lock(lq);
	busy = q->ntrk - q->nfree;
	if (busy && q->trk) /* kernel-path qpairs keep only the counts */
		for (uint32_t i = 0; i < q->ntrk; i++)
			parts += q->trk[i].state == TRK_ACTIVE && q->trk[i].parent != NULL;
	drv_qp_unlock(lq);
	return busy - parts;
}

/* ---- per-thread qpairs ---- */

#define DRV_TLS_SLOTS 4
static __thread struct {
	uint64_t uid;
	struct nvmk_qpair *qp;
} drv_tls_qp[DRV_TLS_SLOTS];

struct nvmk_qpair *nvmk_ctrl_get_qpair(struct nvmk_ctrl *ctrl)
{
	struct nvmk_qpair_opts o = {.mode = ctrl->opts.cpl_mode, .flags = NVMK_QPAIR_SHARED};
	struct nvmk_qpair *qp = NULL;
	unsigned idx;

	for (unsigned i = 0; i < DRV_TLS_SLOTS; i++)
		if (drv_tls_qp[i].uid == ctrl->uid)
			return drv_tls_qp[i].qp;

	/* get_lock serialises the slow path, creation included, so that
	 * concurrent first calls see each other's queues (control path). */
	pthread_mutex_lock(&ctrl->get_lock);
	idx = ctrl->n_threads++;
	if (idx < ctrl->n_get_qps) {
		qp = ctrl->get_qps[idx]; /* restored: hand them out again first */
	} else if (ctrl->n_get_qps < ctrl->get_budget) {
		int rc = nvmk_qpair_create(ctrl, &o, &qp);

		if (rc == 0) {
			qp->from_get = true;
			ctrl->get_qps[ctrl->n_get_qps++] = qp;
		} else if (rc == -EAGAIN) {
			ctrl->n_threads--; /* servicing: not a lack of queues */
		} else {
			/* no more queues: from now on threads share the existing ones */
			nvmk_warn(ctrl->name, NVMK_LOG_NOQ,
				  "no new I/O queue for thread %u (%d): sharing %u queue(s)", idx,
				  rc, ctrl->n_get_qps);
			ctrl->get_budget = ctrl->n_get_qps;
		}
	}
	if (!qp && ctrl->n_get_qps)
		qp = ctrl->get_qps[idx % ctrl->n_get_qps];
	pthread_mutex_unlock(&ctrl->get_lock);
	if (!qp)
		return NULL;
	for (unsigned i = 0; i < DRV_TLS_SLOTS; i++)
		if (drv_tls_qp[i].uid == 0 || i == DRV_TLS_SLOTS - 1) {
			drv_tls_qp[i].uid = ctrl->uid;
			drv_tls_qp[i].qp = qp;
			break;
		}
	return qp;
}

/* ---- recovery of one qpair (its user's thread) ---- */

/*
 * The controller was reset or failed since this qpair last looked. Fail
 * what was outstanding (it is gone from the device), re-create the queues
 * when the controller is usable, and only then run the callbacks, so that a
 * callback that submits again lands on a working queue.
 */
int drv_qpair_recover(struct nvmk_qpair *qp)
{
	struct nvmk_ctrl *ctrl = qp->ctrl;
	/* acquire: pairs with the release bump in reset/fail */
	uint32_t epoch = atomic_load_explicit(&ctrl->epoch, memory_order_acquire);
	int failed = drv_failed(ctrl);
	int rc = 0;

	/* acquire: pairs with the release store of save (servicing): the queue
	 * is frozen for the snapshot, nothing may change on it */
	if (atomic_load_explicit(&ctrl->svc_quiesced, memory_order_acquire))
		return -EAGAIN;
	if (qp->dead && !failed)
		failed = qp->dead;
	drv_queue_doom_all(&qp->q);
	if (!failed) {
		rc = qp_create_on_device(qp);
		if (rc) {
			nvmk_err(ctrl->name, qp->q.qid, "re-creating the queue pair failed: %d",
				 rc);
			qp->dead = rc;
		} else {
			drv_qp_set_epoch(qp, epoch);
		}
	}
	drv_queue_fail_doomed(&qp->q, failed ? failed : -ETIMEDOUT);
	if (failed)
		return failed;
	return rc;
}

/* ---- completion processing ---- */

/* The rare end of a poll, out of line so that the common poll keeps few
 * values live across the callbacks (fewer callee-saved registers to save):
 * an invalid CQE (@n < 0) fails the controller; a due deadline scan runs
 * and drains what it aborted. Returns the poll's result. */
static __attribute__((noinline)) int qp_process_rare(struct nvmk_qpair *qp, int n, uint64_t now)
{
	struct nvmk_ctrl *ctrl = qp->ctrl;
	struct drv_queue *q = &qp->q;

	if (n < 0) {
		drv_ctrl_fail(ctrl, -EIO, "invalid completion");
		q->batching--;
		drv_qpair_recover(qp);
		return -EIO;
	}
	drv_qpair_check_timeouts(qp, now);
	if (drv_qp_check(qp) == 0) {
		int m = drv_q_drain(q, 0); /* an aborted command completes now */

		if (m > 0)
			n += m;
	}
	q->batching--;
	drv_q_ring_sq(q);
	return n;
}

/* A poll of a qpair known current (drv_qp_check or drv_qp_fast passed). */
drv_inline int qp_process_current(struct nvmk_qpair *qp, unsigned max)
{
	struct drv_queue *q = &qp->q;
	uint64_t now;
	int n;

	q->batching++;
	n = drv_q_drain(q, max);
	/* qp->ctrl is read again here rather than kept from before the drain:
	 * one load instead of a callee-saved register across the callbacks */
	now = drv_now(qp->ctrl);
	if (drv_unlikely(n < 0 || (now >= qp->next_check && q->nfree != q->ntrk)))
		return qp_process_rare(qp, n, now);
	q->batching--;
	drv_q_ring_sq(q);
	return n;
}

drv_inline int qp_process_nolock(struct nvmk_qpair *qp, unsigned max)
{
	int rc = drv_qp_check(qp);

	if (drv_unlikely(rc))
		return rc;
	return qp_process_current(qp, max);
}

/* A SHARED qpair (under its lock), or one whose controller was reset or
 * failed since the last call: out of line, so that the common poll keeps
 * neither the lock's address nor the recovery live. */
static __attribute__((noinline)) int qp_process_slow(struct nvmk_qpair *qp, unsigned max)
{
	int n;

	if (qp->kern) /* kernel qpair: its io_uring ring (kernel_ns.c) */
		return drv_kns_process(qp, max);
	if (!qp->shared)
		return qp_process_nolock(qp, max);
	pthread_mutex_lock(&qp->lock);
	n = qp_process_nolock(qp, max);
	pthread_mutex_unlock(&qp->lock);
	return n;
}

int nvmk_qpair_process_completions(struct nvmk_qpair *qp, unsigned max)
{
	/* one compare: exclusive and current (drv_qp_fast) */
	if (drv_unlikely(!drv_qp_fast(qp)))
		return qp_process_slow(qp, max);
	return qp_process_current(qp, max);
}

int nvmk_qpair_irq_fd(const struct nvmk_qpair *qp)
{
	if (qp->kern || qp->mode != NVMK_CPL_INTERRUPT || qp->irq_shared || qp->shared)
		return -1;
	return qp->irq_fd;
}

static void qp_irq_clear(struct nvmk_qpair *qp)
{
	uint64_t v;

	if (qp->irq_fd >= 0 && read(qp->irq_fd, &v, sizeof(v)) < 0)
		(void)0; /* nothing pending (nonblocking eventfd) */
}

int nvmk_qpair_wait(struct nvmk_qpair *qp, int timeout_ms)
{
	struct nvmk_ctrl *ctrl = qp->ctrl;
	uint64_t start = drv_clock_ms();
	uint64_t end = timeout_ms < 0 ? UINT64_MAX : start + (uint64_t)timeout_ms;

	if (drv_unlikely(qp->kern))
		return drv_kns_wait(qp, timeout_ms);
	for (;;) {
		uint64_t now;
		int n, slice, pr = 0;

		if (qp->mode == NVMK_CPL_INTERRUPT)
			qp_irq_clear(qp);
		n = nvmk_qpair_process_completions(qp, 0);
		if (n != 0)
			return n;
		now = drv_clock_ms();
		drv_now_advance(ctrl, now);
		if (now >= end)
			return -ETIMEDOUT;
		if (qp->mode == NVMK_CPL_POLL) {
			sched_yield();
			continue;
		}
		/* Sleep until an interrupt, bounded by the clock tick so that
		 * deadlines are checked (and a completion whose interrupt was lost
		 * is found) even when the device stays silent. */
		slice = (int)ctrl->tick_ms;
		if (qp->irq_shared || qp->irq_fd < 0)
			slice = 1;
		if (end - now < (uint64_t)slice)
			slice = (int)(end - now);
		if (qp->irq_fd >= 0) {
			struct pollfd p = {.fd = qp->irq_fd, .events = POLLIN};

			pr = poll(&p, 1, slice);
		} else {
			struct timespec ts = {0, (long)slice * 1000000L};

			nanosleep(&ts, NULL);
		}
		qp_irq_clear(qp);
		n = nvmk_qpair_process_completions(qp, 0);
		if (n > 0 && pr == 0 && qp->irq_fd >= 0 && !qp->irq_shared && !qp->shared &&
		    !qp->lost_irq_warned) {
			qp->lost_irq_warned = true;
			nvmk_warn(ctrl->name, qp->q.qid,
				  "completion found without an interrupt (lost MSI-X?)");
		}
		if (n != 0)
			return n;
	}
}
