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
#include <time.h>
#include <unistd.h>

#include "driver/io_ops.h"
#include "driver/queue.h"

/* ---- creation on the device ---- */

/* The device answered the command itself (with an error status): it did not
 * act on it. A timeout or a failed controller leaves that unknown. */

static bool qp_device_refused(const struct nvmk_cpl *cpl)
{
	return cpl->status != 0 && cpl->status != DRV_SF_HOST_ABORTED;
}

/* qp_create_on_device with admin_lock held. */
static int qp_create_locked(struct nvmk_qpair *qp, uint32_t *epoch)
{
	struct nvmk_ctrl *ctrl = qp->ctrl;
	struct drv_queue *q = &qp->q;
	struct nvmk_cpl cpl = {0};
	struct nvme_sqe c;
	int rc;

	drv_queue_reset_ring(q);
	drv_qp_cq_db_policy(qp);
	/* from here on the device may hold the queue memory */
	qp->dev_released = false;
	/* acquire: pairs with the release bumps (recovery.c) */
	qp->dev_gen = atomic_load_explicit(&ctrl->disable_gen, memory_order_acquire);
	/* acquire: see the admin state of the reset that set this epoch */
	*epoch = atomic_load_explicit(&ctrl->epoch, memory_order_acquire);
	/* Base 2.0 5.4: Create I/O Completion Queue. */
	memset(&c, 0, sizeof(c));
	c.opc = NVME_ADM_CREATE_CQ;
	c.prp1 = nvmk_dma_buf_iova(&q->cq_mem, 0);
	c.cdw10 = NVME_CREATE_Q_CDW10(q->qid, q->depth - 1);
	c.cdw11 = NVME_CQ_FLAGS_PC;
	if (qp->mode == NVMK_CPL_INTERRUPT && qp->irq_fd >= 0)
		c.cdw11 |= NVME_CQ_FLAGS_IEN | ((uint32_t)qp->vector << 16);
	rc = drv_admin_sync(ctrl, &c, NULL, 0, &cpl);
	if (rc) {
		nvmk_err(ctrl->name, q->qid, "Create I/O CQ failed: %d", rc);
		if (qp_device_refused(&cpl))
			qp->dev_released = true;
		return rc;
	}
	/* Base 2.0 5.5: Create I/O Submission Queue bound to it. */
	memset(&c, 0, sizeof(c));
	c.opc = NVME_ADM_CREATE_SQ;
	c.prp1 = nvmk_dma_buf_iova(&q->sq_mem, 0);
	c.cdw10 = NVME_CREATE_Q_CDW10(q->qid, q->depth - 1);
	c.cdw11 = NVME_SQ_FLAGS_PC | ((uint32_t)q->qid << 16);
	rc = drv_admin_sync(ctrl, &c, NULL, 0, &cpl);
	if (rc) {
		bool sq_refused = qp_device_refused(&cpl);

		nvmk_err(ctrl->name, q->qid, "Create I/O SQ failed: %d", rc);
		memset(&c, 0, sizeof(c));
		c.opc = NVME_ADM_DELETE_CQ;
		c.cdw10 = q->qid;
		if (drv_admin_sync(ctrl, &c, NULL, 0, NULL) == 0 && sq_refused)
			qp->dev_released = true;
		return rc;
	}
	return 0;
}

/*
 * Create the qpair's CQ and SQ on the device. *@epoch is set to the epoch of
 * the controller the queues were created on (or tried on).
 *
 * admin_lock (recursive) is held across both commands: a reset takes it to
 * bring the controller up again and bumps disable_gen and the epoch before
 * releasing it, so what is read here belongs to the controller the commands
 * reach. Read before taking it, a reset in between left the queues created
 * on the new controller under the old epoch: the qpair's next use
 * "re-created" them, the device refused the existing queue ID (Base 2.0
 * 5.4, Invalid Queue Identifier) and the qpair was dead (-EIO) until the
 * next reset; and a destroy took the stale dev_gen for a reset that dropped
 * the queues and left them on the device.
 */
static int qp_create_on_device(struct nvmk_qpair *qp, uint32_t *epoch)
{
	struct nvmk_ctrl *ctrl = qp->ctrl;
	struct drv_queue *q = &qp->q;
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
	pthread_mutex_lock(&ctrl->admin_lock);
	rc = qp_create_locked(qp, epoch);
	pthread_mutex_unlock(&ctrl->admin_lock);
	return rc;
}

static bool qp_gone(struct nvmk_qpair *qp);

/* Base 2.0 5.6/5.7: Delete I/O SQ, then its CQ; both done means the device
 * no longer holds the queue memory. */
static void qp_delete_on_device(struct nvmk_qpair *qp)
{
	struct nvme_sqe c = {.opc = NVME_ADM_DELETE_SQ, .cdw10 = qp->q.qid};
	int rc;

	if (drv_failed(qp->ctrl) || qp_gone(qp))
		return;
	rc = drv_admin_sync(qp->ctrl, &c, NULL, 0, NULL);
	if (rc == 0) {
		c.opc = NVME_ADM_DELETE_CQ;
		rc = drv_admin_sync(qp->ctrl, &c, NULL, 0, NULL);
	}
	if (rc == 0)
		qp->dev_released = true;
	else
		nvmk_err(qp->ctrl->name, qp->q.qid, "deleting the queue pair failed: %d", rc);
}

/*
 * Whether the device can no longer write the qpair's queue memory: it never
 * had the queues, deleted them, or the controller was reset since (a reset
 * passes through CSTS.RDY = 0, Base 2.0 3.7.2) or failed and stopped (a
 * removed device does no more DMA).
 */
static bool qp_gone(struct nvmk_qpair *qp)
{
	struct nvmk_ctrl *ctrl = qp->ctrl;

	if (qp->dev_released || drv_failed(ctrl) == -ENODEV)
		return true;
	/* acquire: pairs with the release bumps (recovery.c) */
	return atomic_load_explicit(&ctrl->disable_gen, memory_order_acquire) != qp->dev_gen;
}

/* Make sure the device lets go of the qpair's queues before their memory is
 * freed: when it would not delete them (or did not answer), reset the
 * controller, which drops every I/O queue. Returns qp_gone() after it. */
static bool qp_release_device(struct nvmk_qpair *qp)
{
	if (qp_gone(qp))
		return true;
	nvmk_err(qp->ctrl->name, qp->q.qid,
		 "the device may still use the queue pair's memory: resetting the controller "
		 "before it is freed");
	/* acquire: the epoch to reset from, see drv_ctrl_reset */
	drv_ctrl_reset(qp->ctrl, -EIO,
		       atomic_load_explicit(&qp->ctrl->epoch, memory_order_acquire));
	if (qp_gone(qp))
		return true;
	nvmk_err(qp->ctrl->name, qp->q.qid,
		 "the controller did not stop: the queue pair's memory and queue ID are left "
		 "to it (leaked)");
	return false;
}

/* Free the qpair; its rings and queue ID only when @rings_free (the device
 * let go of them), else they are leaked on purpose. */
static void qp_free(struct nvmk_qpair *qp, bool rings_free)
{
	struct nvmk_ctrl *ctrl = qp->ctrl;

	if (rings_free) {
		drv_queue_free(ctrl, &qp->q);
	} else {
		free(qp->q.trk);
		qp->q.trk = NULL;
	}
	free(qp->segs);
	free(qp->parts);
	if (rings_free) {
		pthread_mutex_lock(&ctrl->qp_lock);
		ctrl->qid_used[qp->q.qid] = 0;
		pthread_mutex_unlock(&ctrl->qp_lock);
	}
	free(qp);
}

int nvmk_qpair_create(struct nvmk_ctrl *ctrl, const struct nvmk_qpair_opts *opts,
		      struct nvmk_qpair **out)
{
	struct nvmk_qpair_opts o = {0};
	struct nvmk_qpair *qp;
	uint16_t qid = 0;
	uint32_t epoch;
	char tag[16];
	int rc;

	if (!ctrl || !out)
		return -EINVAL;
	if (opts)
		o = *opts;
	if (o.hybrid_poll_us && o.mode != NVMK_CPL_INTERRUPT) {
		nvmk_err(
		    ctrl->name, NVMK_LOG_NOQ,
		    "qpair: hybrid_poll_us needs interrupt mode (a polled qpair never sleeps)");
		return -EINVAL;
	}
	if (o.hybrid_poll_us > NVMK_HYBRID_POLL_MAX_US) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ,
			 "qpair: hybrid_poll_us %u too large (accepted 0..%u)", o.hybrid_poll_us,
			 NVMK_HYBRID_POLL_MAX_US);
		return -EINVAL;
	}
	rc = drv_failed(ctrl);
	if (rc)
		return rc;
	/* relaxed: a hint; save stops clients before it quiesces */
	if (atomic_load_explicit(&ctrl->svc_quiesced, memory_order_relaxed))
		return -EAGAIN;
	qp = calloc(1, sizeof(*qp));
	if (!qp)
		return -ENOMEM;
	qp->ops = &drv_nvme_io_ops;
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
	/* granted was cut to what BAR0 holds (ctrl.c); a backing's size may
	 * not be, so check what is about to be written (Base 2.0 3.1.3.21) */
	if (ctrl->b->bar0_size &&
	    (uint64_t)nvme_cq_doorbell(qid, ctrl->dstrd) + 4u > ctrl->b->bar0_size) {
		nvmk_err(ctrl->name, qid, "the doorbells of queue %u lie beyond BAR0 (%zu bytes)",
			 qid, ctrl->b->bar0_size);
		pthread_mutex_lock(&ctrl->qp_lock);
		ctrl->qid_used[qid] = 0;
		pthread_mutex_unlock(&ctrl->qp_lock);
		free(qp);
		return -EINVAL;
	}
	qp->ctrl = ctrl;
	qp->io_timeout_ms = ctrl->opts.io_timeout_ms;
	qp->mode = o.mode;
	qp->hybrid_poll_us = o.hybrid_poll_us;
	qp->shared = (o.flags & NVMK_QPAIR_SHARED) != 0;
	/* recursive: a callback may submit on the queue it completes on */
	if (qp->shared)
		drv_rlock_init(&qp->lock);
	uint32_t depth = o.depth ? o.depth : ctrl->io_depth;

	if (depth > ctrl->max_io_depth)
		depth = ctrl->max_io_depth;
	if (depth < 2)
		depth = 2;
	snprintf(tag, sizeof(tag), "io%u", qid);
	rc = drv_queue_alloc(ctrl, &qp->q, qid, depth, tag);
	if (rc) {
		qp->q.qid = qid;
		qp_free(qp, true);
		return rc;
	}
	qp->max_segs = (unsigned)(ctrl->max_xfer / DRV_PAGE_SIZE) + 1;
	qp->segs = calloc(qp->max_segs, sizeof(*qp->segs));
	qp->parts = calloc(qp->q.ntrk, sizeof(*qp->parts));
	if (!qp->segs || !qp->parts) {
		qp_free(qp, true);
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
	if (ctrl->dbbuf)
		drv_q_dbbuf_attach(ctrl, &qp->q);
	/* acquire: see the admin state of the reset that set this epoch */
	epoch = atomic_load_explicit(&ctrl->epoch, memory_order_acquire);
	drv_qp_set_epoch(qp, epoch);
	rc = qp_create_on_device(qp, &epoch);
	if (rc) {
		qp_free(qp, qp_release_device(qp));
		return rc;
	}
	/* the epoch the queues were created in (a reset may have come between) */
	drv_qp_set_epoch(qp, epoch);
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
	bool rings_free;

	qp_unlink(qp);
	/* a failed device may still be running: stop it before freeing */
	pthread_mutex_lock(&qp->ctrl->qp_lock);
	drv_ctrl_quiesce(qp->ctrl);
	pthread_mutex_unlock(&qp->ctrl->qp_lock);
	drv_qp_lock(qp);
	qp_delete_on_device(qp);
	/* before the commands complete: their buffers are the caller's again */
	rings_free = qp_release_device(qp);
	drv_queue_doom_all(&qp->q);
	drv_queue_fail_doomed(&qp->q, -ECANCELED);
	drv_qp_unlock(qp);
	qp_free(qp, rings_free);
}

void drv_nvme_qp_destroy(struct nvmk_qpair *qp)
{
	qp_destroy(qp);
}

void nvmk_qpair_destroy(struct nvmk_qpair *qp)
{
	if (!qp || qp->from_get)
		return;
	qp->ops->qp_destroy(qp);
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
	busy = q->nbusy;
	if (busy && q->trk) /* kernel-path qpairs keep only the counts */
		for (uint32_t i = 0; i < q->ntrk; i++)
			parts += q->trk[i].state == TRK_ACTIVE && q->trk[i].part;
	drv_qp_unlock(lq);
	return busy - parts;
}

/* ---- per-thread qpairs ---- */

/*
 * Each thread's synchronous calls run on its own queue pair, EXCLUSIVE (no
 * lock on the fast path), created on the thread's first call while the
 * controller has queues for it. One SHARED per-thread qpair is kept for the
 * threads that find none left (granted too few, or the device refused a
 * creation): it is created together with the first exclusive one, while a
 * queue is still there for it; if it cannot be, that first qpair becomes the
 * shared one before any thread has it. With a single granted queue every
 * thread shares it, as before. Restored per-thread qpairs are handed out
 * again first, an exclusive one to one thread only.
 *
 * A thread's exclusive qpair stays its own until the controller closes (a
 * thread that exits does not give it back), and a thread that uses more
 * controllers than DRV_TLS_SLOTS may be given a new one for an evicted
 * controller; both only cost queues, which later threads then share.
 */
#define DRV_TLS_SLOTS 8
static __thread struct {
	uint64_t uid;
	struct nvmk_qpair *qp;
} drv_tls_qp[DRV_TLS_SLOTS];

/* The SHARED per-thread qpair number @idx modulo their count, or NULL. */
static struct nvmk_qpair *get_pick_shared(struct nvmk_ctrl *ctrl, unsigned idx)
{
	unsigned n = 0;

	for (unsigned i = 0; i < ctrl->n_get_qps; i++)
		n += ctrl->get_qps[i]->shared;
	if (!n)
		return NULL;
	idx %= n;
	for (unsigned i = 0; i < ctrl->n_get_qps; i++)
		if (ctrl->get_qps[i]->shared && idx-- == 0)
			return ctrl->get_qps[i];
	return NULL;
}

/* Create a per-thread qpair (@shared or exclusive); get_lock held. */
static int get_create(struct nvmk_ctrl *ctrl, bool shared, struct nvmk_qpair **out)
{
	struct nvmk_qpair_opts o = {.mode = ctrl->opts.cpl_mode,
				    .flags = shared ? NVMK_QPAIR_SHARED : 0};
	int rc = nvmk_qpair_create(ctrl, &o, out);

	if (rc == 0) {
		(*out)->from_get = true;
		ctrl->get_qps[ctrl->n_get_qps++] = *out;
	}
	return rc;
}

/* A new exclusive qpair nobody has yet becomes the one to share: its lock
 * and its fast_epoch (never equal to an epoch) are set before any thread
 * sees it (get_lock, then the TLS of the thread it goes to). */
static void get_make_shared(struct nvmk_qpair *qp)
{
	drv_rlock_init(&qp->lock);
	qp->shared = true;
	drv_qp_set_epoch(qp, qp->epoch);
}

struct nvmk_qpair *nvmk_ctrl_get_qpair(struct nvmk_ctrl *ctrl)
{
	struct nvmk_qpair *qp = NULL;
	unsigned idx;

	for (unsigned i = 0; i < DRV_TLS_SLOTS; i++)
		if (drv_tls_qp[i].uid == ctrl->uid)
			return drv_tls_qp[i].qp;

	/* get_lock serialises the slow path, creation included, so that
	 * concurrent first calls see each other's queues (control path). */
	pthread_mutex_lock(&ctrl->get_lock);
	idx = ctrl->n_threads++;
	/* restored: an exclusive one nobody has yet goes first */
	for (unsigned i = 0; i < ctrl->n_get_qps && !qp; i++)
		if (!ctrl->get_qps[i]->shared && !ctrl->get_qps[i]->get_taken)
			qp = ctrl->get_qps[i];
	if (!qp && ctrl->n_get_qps < ctrl->get_budget) {
		bool have_shared = get_pick_shared(ctrl, 0) != NULL;
		int rc = get_create(ctrl, false, &qp);

		if (rc == 0 && !have_shared) {
			struct nvmk_qpair *spare = NULL;
			int rs = ctrl->n_get_qps < ctrl->get_budget ? get_create(ctrl, true, &spare)
								    : -EBUSY;

			if (rs) {
				/* no queue to spare: this one is the one threads share */
				get_make_shared(qp);
				if (rs != -EAGAIN)
					ctrl->get_budget = ctrl->n_get_qps;
			}
		} else if (rc == -EAGAIN) {
			ctrl->n_threads--; /* servicing: not a lack of queues */
		} else if (rc) {
			/* no more queues: from now on threads share the shared ones */
			nvmk_warn(ctrl->name, NVMK_LOG_NOQ,
				  "no new I/O queue for thread %u (%s): sharing", idx,
				  strerror(-rc));
			ctrl->get_budget = ctrl->n_get_qps;
		}
	}
	if (qp && !qp->shared)
		qp->get_taken = true;
	if (!qp)
		qp = get_pick_shared(ctrl, idx);
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
	unsigned n;
	int rc = 0;

	/* acquire: pairs with the release store of save (servicing): the queue
	 * is frozen for the snapshot, nothing may change on it */
	if (atomic_load_explicit(&ctrl->svc_quiesced, memory_order_acquire))
		return -EAGAIN;
	/* refused in this epoch already: wait for the next reset to try again */
	if (qp->dead && qp->dead_epoch == epoch && !failed)
		failed = qp->dead;
	drv_queue_doom_all(&qp->q);
	if (!failed) {
		/* the epoch of the controller the queues were created on: a reset
		 * since the load above already dropped what was outstanding */
		uint32_t cur = epoch;

		rc = qp_create_on_device(qp, &cur);
		if (rc) {
			nvmk_err(ctrl->name, qp->q.qid,
				 "re-creating the queue pair failed: %d; unusable (-EIO) until the "
				 "next controller reset",
				 rc);
			/* submit's documented error, whatever the admin command got */
			qp->dead = rc == -ENODEV ? -ENODEV : -EIO;
			qp->dead_epoch = cur;
			rc = qp->dead;
		} else {
			qp->dead = 0;
			drv_qp_set_epoch(qp, cur);
		}
	}
	/* Counted: a waiter whose command this was must see a completion, or it
	 * sleeps on with nothing outstanding (issue 11, defect 1). */
	n = drv_queue_fail_doomed(&qp->q, failed ? failed : -ETIMEDOUT);
	if (failed)
		return failed;
	return rc ? rc : (int)n;
}

/* ---- completion processing ---- */

const struct nvmk_cpl drv_cpl_ok = {0};

/* Fewer than this many completions stay unacknowledged after a fast poll,
 * and fewer than an eighth of the CQ (a CQ of fewer than 8 entries: none):
 * a device holds back completions only when the queue is nearly full
 * (drv_q_drain_impl). */
#define QP_CQ_DB_LAZY_MAX 32u

void drv_qp_cq_db_policy(struct nvmk_qpair *qp)
{
	struct drv_queue *q = &qp->q;
	uint32_t lazy = q->depth / 8u;

	if (lazy > QP_CQ_DB_LAZY_MAX)
		lazy = QP_CQ_DB_LAZY_MAX;
	/* Interrupt mode rings every poll: the wait after it sleeps on the
	 * interrupt, and a device whose interrupt stays asserted while the
	 * CQ holds entries the head doorbell has not acknowledged (the
	 * pin-based and MSI models of the NVMe over PCIe interrupt scheme)
	 * would wake it again at once. */
	if (qp->mode != NVMK_CPL_POLL)
		lazy = 0;
	q->cq_db_lazy = lazy;
	q->cq_db_credit = (int32_t)lazy;
}

/* The rare end of a poll, out of line so that the common poll keeps few
 * values live across the callbacks (fewer callee-saved registers to save):
 * an invalid CQE (@n < 0) fails the controller; a due deadline scan runs
 * and drains what it aborted. Returns the poll's result. */
static __attribute__((noinline)) int qp_process_rare(struct nvmk_qpair *qp, int n)
{
	struct nvmk_ctrl *ctrl = qp->ctrl;
	struct drv_queue *q = &qp->q;
	uint64_t now = drv_now(ctrl);

	if (n < 0) {
		drv_ctrl_fail(ctrl, -EIO, "invalid completion");
		q->batching--;
		drv_qpair_recover(qp);
		return -EIO;
	}
	drv_qpair_check_timeouts(qp, now);
	if (drv_qp_current(qp)) {
		int m = drv_q_drain(q, 0); /* an aborted command completes now */

		if (m > 0)
			n += m;
	} else {
		/* the scan reset the controller: recovery completes the commands */
		int m = drv_qpair_recover(qp);

		if (m > 0)
			n += m;
		else if (m < 0 && n == 0)
			n = m;
	}
	q->batching--;
	drv_q_ring_sq(q);
	return n;
}

/* A poll of a qpair known current (drv_qp_check passed: the slow path),
 * with the deadline scan when something is outstanding and its time has
 * come (qp->next_check). */
drv_inline int qp_process_checked(struct nvmk_qpair *qp, unsigned max)
{
	struct drv_queue *q = &qp->q;
	int n;

	q->batching++;
	n = drv_q_drain(q, max);
	/* A deadline scan only when something is outstanding: tested first, so
	 * that a qpair with nothing in flight does not read the clock. */
	if (drv_unlikely(n < 0 || (q->nbusy != 0 && drv_now(qp->ctrl) >= qp->next_check)))
		return qp_process_rare(qp, n);
	q->batching--;
	drv_q_ring_sq(q);
	return n;
}

/* The slow poll, under a SHARED qpair's lock: recovery after a reset or a
 * failure; then, on an exclusive qpair, the gate taken again (the first
 * poll after a tick of the clock, see ctrl->gate) with a deadline scan
 * due now, so that scans keep their once-per-tick pace although the fast
 * poll never tests for them. */
drv_inline int qp_process_nolock(struct nvmk_qpair *qp, unsigned max)
{
	if (drv_unlikely(!drv_qp_current(qp))) {
		/* what recovery completed counts as completed by this call */
		int rc = drv_qpair_recover(qp);

		if (rc != 0)
			return rc;
	}
	if (!qp->shared) {
		/* relaxed: as in drv_qp_fast; a gate of another epoch (a reset
		 * not synced into it yet) is not taken: the next poll comes
		 * here again */
		uint64_t g = atomic_load_explicit(&qp->ctrl->gate, memory_order_relaxed);

		if ((uint32_t)(g >> 32) == qp->epoch && qp->fast_epoch != g) {
			qp->fast_epoch = g;
			qp->next_check = 0; /* a tick passed: the scan is due */
		}
	}
	return qp_process_checked(qp, max);
}

/* A SHARED qpair (under its lock), or one whose controller was reset or
 * failed or whose clock ticked since the last call: out of line, so that
 * the common poll keeps neither the lock's address nor the recovery live. */
int drv_nvme_qp_process(struct nvmk_qpair *qp, unsigned max)
{
	int n;

	if (!qp->shared)
		return qp_process_nolock(qp, max);
	drv_rlock_lock(&qp->lock);
	n = qp_process_nolock(qp, max);
	drv_rlock_unlock(&qp->lock);
	return n;
}

/*
 * The fast poll: exclusive, current, and no clock tick since the last slow
 * poll (drv_qp_fast, one compare). It has no deadline test: the first poll
 * after each tick takes the slow path, which scans (qp_process_nolock). A
 * stuck command on a qpair polled at least once per tick is therefore still
 * found at most two ticks after its timeout (timeout.c), and never before.
 */
DRV_POLL_LOOP int nvmk_qpair_process_completions(struct nvmk_qpair *qp, unsigned max)
{
	struct drv_queue *q;
	int n;

	if (drv_unlikely(!drv_qp_fast(qp))) {
		/* a SHARED qpair, a tick or a recovery of the NVMe-queue path: a
		 * direct call; every kernel qpair through its table */
		if (drv_likely(qp->ops == &drv_nvme_io_ops))
			return drv_nvme_qp_process(qp, max);
		return qp->ops->qp_process(qp, max);
	}
	q = &qp->q;
	q->batching++;
	n = drv_q_drain_lazy(q, max);
	if (drv_unlikely(n < 0))
		return qp_process_rare(qp, n);
	q->batching--;
	drv_q_ring_sq(q);
	return n;
}

int nvmk_qpair_irq_fd(const struct nvmk_qpair *qp)
{
	return qp->ops->qp_irq_fd(qp);
}

int drv_nvme_qp_irq_fd(const struct nvmk_qpair *qp)
{
	if (qp->mode != NVMK_CPL_INTERRUPT || qp->irq_shared || qp->shared)
		return -1;
	return qp->irq_fd;
}

/* ---- batched submission ---- */

/*
 * A user batch shares q->batching with completion processing (which also
 * defers the SQ doorbell while callbacks submit): every submit path tests
 * only "batching != 0", and whoever brings the count back to 0 rings. A
 * batch stays open across a reset (recovery re-creates the queues; what was
 * written and not rung is failed by it like everything else outstanding).
 */
#define QP_BATCH_MAX 127 /* below the uint8_t counter, leaving room for process nesting */

int nvmk_qpair_batch_begin(struct nvmk_qpair *qp)
{
	return qp->ops->qp_batch_begin(qp);
}

int nvmk_qpair_batch_end(struct nvmk_qpair *qp)
{
	return qp->ops->qp_batch_end(qp);
}

int drv_nvme_qp_batch_begin(struct nvmk_qpair *qp)
{
	int rc = 0;

	drv_qp_lock(qp);
	if (qp->q.batching >= QP_BATCH_MAX)
		rc = -EOVERFLOW;
	else
		qp->q.batching++;
	drv_qp_unlock(qp);
	return rc;
}

int drv_nvme_qp_batch_end(struct nvmk_qpair *qp)
{
	struct drv_queue *q = &qp->q;
	int rc = 0;

	drv_qp_lock(qp);
	if (q->batching == 0) {
		rc = -EINVAL;
		nvmk_warn(qp->ctrl->name, q->qid, "batch end without a batch begin");
	} else if (--q->batching == 0 && drv_qp_current(qp)) {
		/* a stale qpair rings nothing: its queues are re-created by the
		 * next call, which fails what was written */
		drv_q_ring_sq(q);
	}
	drv_qp_unlock(qp);
	return rc;
}

static void qp_irq_clear(struct nvmk_qpair *qp)
{
	uint64_t v;

	if (qp->irq_fd >= 0 && read(qp->irq_fd, &v, sizeof(v)) < 0)
		(void)0; /* nothing pending (nonblocking eventfd) */
}

static uint64_t qp_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Hybrid polling: poll the CQ for up to hybrid_poll_us (not past the wait's
 * end, @end_ms) before the caller sleeps on the interrupt. A completion
 * arriving within the bound costs no system call and no wake-up latency;
 * one that takes longer leaves the core to others (on a machine with fewer
 * cores than busy threads, a pure poller starves the device's thread).
 * The interrupt that may have fired meanwhile is cleared by the caller
 * after its sleep (the eventfd stays readable, so that sleep ends at once).
 * Returns the first non-zero result of processing, or 0.
 */
static int qp_hybrid_poll(struct nvmk_qpair *qp, uint64_t end_ms)
{
	uint64_t stop = qp_clock_ns() + (uint64_t)qp->hybrid_poll_us * 1000u;

	/* drv_clock_ms is CLOCK_MONOTONIC too */
	if (end_ms < stop / 1000000u)
		stop = end_ms * 1000000u;

	do {
		int n = nvmk_qpair_process_completions(qp, 0);

		if (n != 0)
			return n;
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause(); /* spin-wait hint: leave the pipeline to an SMT sibling */
#endif
	} while (qp_clock_ns() < stop);
	return 0;
}

int nvmk_qpair_wait(struct nvmk_qpair *qp, int timeout_ms)
{
	return qp->ops->qp_wait(qp, timeout_ms);
}

int drv_nvme_qp_wait(struct nvmk_qpair *qp, int timeout_ms)
{
	struct nvmk_ctrl *ctrl = qp->ctrl;
	uint64_t start = drv_clock_ms();
	uint64_t end = timeout_ms < 0 ? UINT64_MAX : start + (uint64_t)timeout_ms;

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
		if (qp->hybrid_poll_us) {
			n = qp_hybrid_poll(qp, end);
			if (n != 0)
				return n;
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
