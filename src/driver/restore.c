// SPDX-License-Identifier: MIT
/*
 * Servicing, second half: rebuild a controller from its saved state.
 *
 * Keep-alive state: another entry into the life of a running controller,
 * not a bring-up. The state is validated completely (state.c), then checked
 * against the device with register reads only (enabled, ready, no fatal
 * status, same CAP); only then is anything allocated. The queues are taken
 * back from the pool by tag and mapped at their saved device addresses, the
 * trackers rebuilt with each request's callback from the caller's resolver,
 * and the completions that arrived during the blackout are delivered. No
 * IDENTIFY, no queue creation: the device sees nothing but doorbells.
 *
 * Shut-down state: a normal bring-up (nvmk_ctrl_open) with the saved
 * options, then the saved qpairs and namespace handles are re-created.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "driver/io_ops.h"
#include "driver/queue.h"
#include "driver/servicing.h"
#include "driver/state.h"

static _Atomic uint64_t restore_next_uid = 1;

static void restore_opts(const Nvmk__CtrlOptions *m, const struct nvmk_restore_opts *ro,
			 struct nvmk_ctrl_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->admin_queue_depth = (uint16_t)m->admin_queue_depth;
	o->io_queue_depth = m->io_queue_depth;
	o->max_io_queues = (uint16_t)m->max_io_queues;
	o->cpl_mode = (enum nvmk_cpl_mode)m->cpl_mode;
	o->admin_timeout_ms = m->admin_timeout_ms;
	o->io_timeout_ms = m->io_timeout_ms;
	o->shutdown_timeout_ms = m->shutdown_timeout_ms;
	o->health_check_ms = m->health_check_ms;
	o->dbbuf = (enum nvmk_dbbuf_mode)m->dbbuf_mode;
	o->host_id = m->host_id;
	if (ro) {
		o->event_cb = ro->event_cb;
		o->event_ctx = ro->event_ctx;
	}
}

/* ---- handing restored objects back ---- */

struct nvmk_qpair *nvmk_ctrl_restored_qpair(struct nvmk_ctrl *ctrl, uint16_t qid)
{
	struct nvmk_qpair *found = NULL;

	if (!ctrl)
		return NULL;
	pthread_mutex_lock(&ctrl->qp_lock);
	for (struct nvmk_qpair *qp = ctrl->qpairs; qp; qp = qp->next)
		if (qp->restored && qp->saved_qid == qid) {
			/* per-thread qpairs stay the controller's: not handed over */
			if (!qp->from_get)
				qp->restored = false;
			found = qp;
			break;
		}
	pthread_mutex_unlock(&ctrl->qp_lock);
	return found;
}

struct nvmk_ns *nvmk_ctrl_restored_ns(struct nvmk_ctrl *ctrl, uint32_t nsid)
{
	struct nvmk_ns *found = NULL;

	if (!ctrl)
		return NULL;
	pthread_mutex_lock(&ctrl->ns_lock);
	for (struct nvmk_ns *ns = ctrl->handles; ns; ns = ns->next_handle)
		if (ns->restored && ns->nsid == nsid) {
			ns->restored = false;
			found = ns;
			break;
		}
	pthread_mutex_unlock(&ctrl->ns_lock);
	return found;
}

/* ---- keep-alive ---- */

/* Register reads only: is this the controller that was saved, still running? */
static int restore_check_device(struct nvmk_backing *b, const Nvmk__CtrlState *st)
{
	uint32_t csts = nvmk_backing_read32(b, NVME_REG_CSTS);
	uint32_t cc = nvmk_backing_read32(b, NVME_REG_CC);
	uint64_t cap = nvmk_backing_read64(b, NVME_REG_CAP);

	if (csts == 0xffffffffu) {
		nvmk_err(b->name, NVMK_LOG_NOQ, "restore refused: device gone (CSTS all ones)");
		return -ENODEV;
	}
	if (csts & NVME_CSTS_CFS) {
		nvmk_err(b->name, NVMK_LOG_NOQ,
			 "restore refused: controller fatal status (CSTS 0x%08x)", csts);
		return -EIO;
	}
	if (!(cc & NVME_CC_EN) || !(csts & NVME_CSTS_RDY) || NVME_CC_SHN(cc)) {
		nvmk_err(b->name, NVMK_LOG_NOQ,
			 "restore refused: controller not running (CC 0x%08x, CSTS 0x%08x): it "
			 "was reset or shut down, its queues are gone",
			 cc, csts);
		return -EIO;
	}
	if (cap != st->cap) {
		nvmk_err(b->name, NVMK_LOG_NOQ,
			 "restore refused: CAP 0x%llx differs from the saved 0x%llx",
			 (unsigned long long)cap, (unsigned long long)st->cap);
		return -EIO;
	}
	return 0;
}

/* Read only: the block is in the pool, unclaimed, of the saved size. */
static int restore_check_block(struct nvmk_backing *b, const Nvmk__DmaBlock *m)
{
	uint64_t size = 0;
	int rc;

	if (!m)
		return 0;
	rc = nvmk_dma_reclaim_check(b->pool, b->name, m->tag, &size);
	if (rc) {
		nvmk_err(b->name, NVMK_LOG_NOQ, "restore refused: DMA block %s %s (%d)", m->tag,
			 rc == -ENOENT	 ? "is not in the pool"
			 : rc == -ESTALE ? "was declared leaked by an earlier restore"
			 : rc == -EBUSY	 ? "is already held by this process"
					 : "cannot be reclaimed",
			 rc);
		return rc;
	}
	if (size != m->size) {
		nvmk_err(b->name, NVMK_LOG_NOQ,
			 "restore refused: DMA block %s is %llu bytes in the pool, %llu saved",
			 m->tag, (unsigned long long)size, (unsigned long long)m->size);
		return -EBADMSG;
	}
	return 0;
}

static int restore_check_queue_blocks(struct nvmk_backing *b, const Nvmk__Queue *q)
{
	int rc;

	if ((rc = restore_check_block(b, q->sq)) || (rc = restore_check_block(b, q->cq)) ||
	    (rc = restore_check_block(b, q->prp)))
		return rc;
	return 0;
}

/* Every pool block of the state, before any is claimed: a refusal claims nothing. */
static int restore_check_blocks(struct nvmk_backing *b, const Nvmk__CtrlState *st)
{
	int rc;

	if ((st->dbbuf && (rc = restore_check_block(b, st->dbbuf_mem))) ||
	    (rc = restore_check_block(b, st->admin_data)) ||
	    (rc = restore_check_queue_blocks(b, st->admin)))
		return rc;
	for (size_t i = 0; i < st->n_qpairs; i++) {
		rc = restore_check_queue_blocks(b, st->qpairs[i]->queue);
		if (rc)
			return rc;
	}
	return 0;
}

static int restore_block(struct nvmk_ctrl *ctrl, const Nvmk__DmaBlock *m, struct nvmk_dma_buf *buf)
{
	int rc = nvmk_backing_dma_reclaim(ctrl->b, m->tag, m->iova, buf);

	if (rc) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ, "restore: DMA block %s: %d", m->tag, rc);
		/* reclaimed but not remapped: give the claim back */
		if (buf->mem.vaddr)
			nvmk_dma_unclaim(&buf->mem);
		memset(buf, 0, sizeof(*buf));
		return rc;
	}
	if (buf->mem.size != m->size) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ,
			 "restore: DMA block %s is %zu bytes in the pool, %llu saved", m->tag,
			 buf->mem.size, (unsigned long long)m->size);
		nvmk_backing_dma_unclaim(ctrl->b, buf);
		return -EBADMSG;
	}
	return 0;
}

/* The three blocks of a queue: SQ, CQ, PRP lists. */
static int restore_queue_mem(struct nvmk_ctrl *ctrl, const Nvmk__Queue *m,
			     struct nvmk_dma_buf mem[3])
{
	int rc;

	if ((rc = restore_block(ctrl, m->sq, &mem[0])) ||
	    (rc = restore_block(ctrl, m->cq, &mem[1])) ||
	    (rc = restore_block(ctrl, m->prp, &mem[2])))
		return rc;
	return 0;
}

static void restore_trk_cb(struct nvmk_ctrl *ctrl, const struct nvmk_restore_opts *ro, uint16_t qid,
			   const Nvmk__PendingCmd *p, struct drv_tracker *t)
{
	nvmk_cpl_fn cb = NULL;
	void *arg = NULL;

	t->cb = NULL;
	t->cb_arg = NULL;
	if (!p->has_callback)
		return;
	if (!ro || !ro->resolve || ro->resolve(ro->resolve_ctx, p->token, &cb, &arg) != 0) {
		nvmk_warn(ctrl->name, qid,
			  "restore: request token 0x%llx (cid 0x%04x) does not resolve: its "
			  "completion will be dropped",
			  (unsigned long long)p->token, p->cid);
		return;
	}
	t->cb = cb;
	t->cb_arg = arg;
}

/* Rebuild a queue from the state over its reclaimed memory. */
static int restore_queue(struct nvmk_ctrl *ctrl, struct drv_queue *q, const Nvmk__Queue *m,
			 const struct nvmk_dma_buf mem[3], const struct nvmk_restore_opts *ro,
			 uint32_t timeout_ms)
{
	uint64_t deadline = drv_now(ctrl) + timeout_ms;
	uint32_t ntrk;
	int rc;

	drv_queue_geometry(ctrl, q, (uint16_t)m->qid, m->depth);
	q->sq_mem = mem[0];
	q->cq_mem = mem[1];
	q->prp_mem = mem[2];
	rc = drv_queue_init_trackers(q);
	if (rc)
		return rc;
	ntrk = q->ntrk;
	/* generations go on where they were (validated: index bits match) */
	for (size_t i = 0; i < m->n_trk_cid; i++)
		q->trk[i].cid = (uint16_t)m->trk_cid[i];
	for (size_t k = 0; k < m->n_pending; k++) {
		const Nvmk__PendingCmd *p = m->pending[k];
		struct drv_tracker *t = &q->trk[p->index];

		t->cid = (uint16_t)p->cid;
		t->opc = (uint8_t)p->opcode;
		t->flags = (uint8_t)(p->flags & TRK_F_TIMED_OUT);
		/* the blackout does not count against a command's deadline */
		t->deadline = deadline;
		switch (p->kind) {
		case NVMK__PENDING_CMD__KIND__AER:
			t->state = TRK_ACTIVE;
			t->cb = drv_aer_done;
			t->cb_arg = ctrl;
			t->deadline = DRV_NO_DEADLINE;
			ctrl->aers_outstanding++;
			break;
		case NVMK__PENDING_CMD__KIND__ORPHAN:
			t->state = TRK_ACTIVE; /* its completion is consumed, then dropped */
			break;
		case NVMK__PENDING_CMD__KIND__PARENT:
			t->state = TRK_PARENT;
			t->remaining = p->remaining;
			t->err = p->err;
			t->status = (uint16_t)p->status;
			t->dw0 = p->dw0;
			restore_trk_cb(ctrl, ro, q->qid, p, t);
			break;
		default: /* IO */
			t->state = TRK_ACTIVE;
			if (p->has_parent && p->parent) {
				t->parent = &q->trk[p->parent - 1];
				t->part = DRV_TRK_PART;
			} else
				restore_trk_cb(ctrl, ro, q->qid, p, t);
			break;
		}
	}
	/* the free list again, without the trackers that are in use */
	q->free_head = DRV_TRK_NONE;
	q->nbusy = q->ntrk;
	for (uint32_t i = ntrk; i-- > 0;)
		if (q->trk[i].state == TRK_FREE) {
			q->trk[i].next_free = q->free_head;
			q->free_head = (uint16_t)i;
			q->nbusy--;
		}
	q->sq_tail = m->sq_tail;
	q->sq_db_tail = m->sq_db_tail;
	q->sq_head = m->sq_head;
	q->cq_head = m->cq_head;
	q->cq_db_head = m->cq_db_head;
	q->phase = (uint16_t)m->cq_phase;
	return 0;
}

static int restore_namespaces(struct nvmk_ctrl *ctrl, const Nvmk__CtrlState *st)
{
	for (size_t i = 0; i < st->n_namespaces; i++) {
		const Nvmk__Namespace *m = st->namespaces[i];
		struct drv_ns_state *s = drv_ns_state_get(ctrl, m->nsid, true);
		uint64_t maxb;

		if (!s)
			return -ENOMEM;
		s->lba_shift = (uint8_t)m->lba_shift;
		s->rescap = (uint8_t)m->rescap;
		s->known = m->known;
		atomic_store_explicit(&s->nblocks, m->nblocks, memory_order_relaxed);
		atomic_store_explicit(&s->removed, m->removed, memory_order_relaxed);
		for (size_t k = 0; k < m->n_handle_flags; k++) {
			struct nvmk_ns *ns = calloc(1, sizeof(*ns));

			if (!ns)
				return -ENOMEM;
			ns->ops = &drv_nvme_io_ops;
			ns->ctrl = ctrl;
			ns->s = s;
			ns->nsid = m->nsid;
			ns->sqe_nsid = (uint64_t)m->nsid << 32;
			ns->lba_shift = s->lba_shift;
			ns->lba_bytes = 1u << s->lba_shift;
			ns->shared = (m->handle_flags[k] & NVMK_NS_SHARED) != 0;
			maxb = ctrl->max_xfer >> s->lba_shift;
			if (maxb > NVME_MAX_NLB)
				maxb = NVME_MAX_NLB;
			ns->max_blocks = (uint32_t)(maxb ? maxb : 1);
			drv_ns_gate_update(ns);
			ns->restored = true;
			s->nopen++;
			s->open_shared = ns->shared;
			drv_ns_handle_link(ctrl, ns);
		}
	}
	return 0;
}

static int restore_qpair(struct nvmk_ctrl *ctrl, const Nvmk__Qpair *m,
			 const struct nvmk_restore_opts *ro)
{
	struct nvmk_qpair *qp = calloc(1, sizeof(*qp));
	const Nvmk__Queue *mq = m->queue;
	struct nvmk_dma_buf mem[3] = {0};
	int rc;

	if (!qp)
		return -ENOMEM;
	qp->ops = &drv_nvme_io_ops;
	qp->ctrl = ctrl;
	qp->irq_fd = -1;
	/* linked first, so that a failure below is cleaned up by detach */
	qp->next = ctrl->qpairs;
	ctrl->qpairs = qp;
	qp->mode = (enum nvmk_cpl_mode)m->mode;
	qp->shared = m->shared;
	qp->from_get = m->from_get;
	qp->irq_shared = m->irq_shared;
	qp->vector = (uint16_t)m->vector;
	qp->dead = m->has_dead ? m->dead : 0;
	qp->io_timeout_ms = ctrl->opts.io_timeout_ms;
	qp->restored = true;
	qp->saved_qid = (uint16_t)mq->qid;
	/* recursive: a callback may submit on the queue it completes on */
	if (qp->shared)
		drv_rlock_init(&qp->lock);
	rc = restore_queue_mem(ctrl, mq, mem);
	if (!rc)
		rc = restore_queue(ctrl, &qp->q, mq, mem, ro, ctrl->opts.io_timeout_ms);
	if (rc) {
		/* keep the reclaimed blocks on the qpair, so that detach forgets them */
		qp->q.sq_mem = mem[0];
		qp->q.cq_mem = mem[1];
		qp->q.prp_mem = mem[2];
		return rc;
	}
	qp->max_segs = (unsigned)(ctrl->max_xfer / DRV_PAGE_SIZE) + 1;
	qp->segs = calloc(qp->max_segs, sizeof(*qp->segs));
	qp->parts = calloc(qp->q.ntrk, sizeof(*qp->parts));
	if (!qp->segs || !qp->parts)
		return -ENOMEM;
	if (ctrl->nvec > 1 && qp->vector)
		qp->irq_fd = ctrl->b->ops->irq_fd(ctrl->b, qp->vector);
	if (ctrl->dbbuf)
		drv_q_dbbuf_attach(ctrl, &qp->q);
	drv_qp_cq_db_policy(qp);
	drv_qp_set_epoch(qp, atomic_load_explicit(&ctrl->epoch, memory_order_relaxed));
	qp->next_check = drv_now(ctrl) + ctrl->tick_ms;
	ctrl->qid_used[qp->q.qid] = 1;
	return 0;
}

static int restore_interrupts(struct nvmk_ctrl *ctrl, unsigned nvec)
{
	struct nvmk_backing *b = ctrl->b;

	ctrl->nvec = nvec;
	if (!nvec)
		return 0;
	/* In the same process the vectors are still enabled (detach leaves them
	 * so); after exec the backing enables them again on the same device. */
	if (b->ops->irq_fd(b, nvec - 1) < 0 && b->ops->irq_enable(b, nvec) != 0) {
		nvmk_warn(ctrl->name, NVMK_LOG_NOQ,
			  "restore: cannot re-arm %u interrupt vectors: completions are polled",
			  nvec);
		return 0;
	}
	ctrl->admin_irq_fd = b->ops->irq_fd(b, 0);
	return 0;
}

/*
 * The first device access after the state was consumed: find a controller
 * that was reset and enabled again behind the state (restore_probe.c) and
 * bring it up afresh. The reset fails every command that was in flight,
 * once, with -ETIMEDOUT: admin ones here, I/O ones when their qpair is next
 * used (which restore does itself unless completions are deferred). A
 * controller that fails here is returned failed: its requests then complete
 * with its error.
 */
static void restore_probe_or_reset(struct nvmk_ctrl *ctrl)
{
	/* relaxed: no other thread runs yet */
	uint32_t epoch = atomic_load_explicit(&ctrl->epoch, memory_order_relaxed);
	int rc;

	pthread_mutex_lock(&ctrl->admin_lock);
	rc = drv_restore_probe(ctrl);
	pthread_mutex_unlock(&ctrl->admin_lock);
	if (rc < 0) {
		drv_ctrl_fail(ctrl, rc == -ENODEV ? -ENODEV : -EIO,
			      "device gone or fatal status at restore");
		return;
	}
	if (rc == 0)
		return;
	nvmk_warn(ctrl->name, NVMK_LOG_NOQ,
		  "restore: the controller was reset behind the saved state: bringing it up "
		  "afresh; the commands that were in flight fail with -ETIMEDOUT");
	if (drv_ctrl_reset(ctrl, -EIO, epoch) == 0)
		nvmk_info(ctrl->name, NVMK_LOG_NOQ,
			  "restore: brought up afresh after the reset behind the saved state");
}

static int restore_keep_alive(struct nvmk_backing *b, const Nvmk__CtrlState *st,
			      const struct nvmk_restore_opts *ro, struct nvmk_ctrl **out)
{
	struct nvmk_ctrl_opts o;
	struct nvmk_ctrl *ctrl;
	struct nvmk_dma_buf amem[3] = {0};
	unsigned delivered = 0;
	int rc;

	/* Everything that can refuse the state first, reading only: the
	 * generation, the device's registers, every pool block. */
	if (!b->pool || !b->ops->dma_remap) {
		nvmk_err(b->name, NVMK_LOG_NOQ,
			 "restore refused: keep-alive state needs the handed-over DMA pool and a "
			 "backing that can remap (%s)",
			 b->pool ? "backing cannot remap" : "no pool");
		return -EOPNOTSUPP;
	}
	rc = drv_gen_check(b, st->has_generation, st->generation, true);
	if (rc)
		return rc;
	rc = restore_check_device(b, st);
	if (rc)
		return rc;
	rc = restore_check_blocks(b, st);
	if (rc)
		return rc;
	/* a uid never handed out before in this process: stale per-thread
	 * qpair caches of the old controller must not match (top bit: apart
	 * from ctrl.c's counter) */
	ctrl = drv_ctrl_alloc(b, (1ull << 63) | atomic_fetch_add_explicit(&restore_next_uid, 1,
									  memory_order_relaxed));
	if (!ctrl)
		return -ENOMEM;
	rc = drv_owner_claim(ctrl, "restore");
	if (rc) {
		drv_ctrl_free_host(ctrl);
		return rc;
	}
	restore_opts(st->options, ro, &o);
	drv_opts_resolve(ctrl, &o);
	drv_now_refresh(ctrl);

	ctrl->cap = st->cap;
	ctrl->dstrd = NVME_CAP_DSTRD(st->cap);
	ctrl->ready_timeout_ms = (NVME_CAP_TO(st->cap) ? NVME_CAP_TO(st->cap) : 1) * 500u;
	ctrl->max_io_depth = NVME_CAP_MQES(st->cap) + 1;
	ctrl->admin_depth = st->admin_depth;
	ctrl->io_depth = st->io_depth;
	ctrl->max_xfer = st->max_xfer;
	ctrl->granted = (uint16_t)st->granted;
	ctrl->aer_limit = st->aer->limit;
	ctrl->dbbuf = st->dbbuf;
	ctrl->id = calloc(1, sizeof(*ctrl->id));
	ctrl->qid_used = calloc((size_t)ctrl->granted + 1, 1);
	ctrl->get_qps = calloc(ctrl->granted, sizeof(*ctrl->get_qps));
	ctrl->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!ctrl->id || !ctrl->qid_used || !ctrl->get_qps || ctrl->wake_fd < 0) {
		rc = -ENOMEM;
		goto fail;
	}
	memcpy(ctrl->id, st->identify_ctrl.data, sizeof(*ctrl->id));
	/* From here on blocks are claimed: a failure gives every claim back
	 * (detach unclaims, the device keeps its mappings), never frees one, so
	 * that the restore can be tried again on the same pool handle. */
	ctrl->saved = DRV_SAVED_RESTORE_REFUSED;
	rc = restore_interrupts(ctrl, st->nvec);
	if (rc)
		goto fail;
	if (ctrl->dbbuf && (rc = restore_block(ctrl, st->dbbuf_mem, &ctrl->dbbuf_mem)))
		goto fail;
	if ((rc = restore_block(ctrl, st->admin_data, &ctrl->admin_buf)))
		goto fail;
	rc = restore_queue_mem(ctrl, st->admin, amem);
	if (!rc)
		rc = restore_queue(ctrl, &ctrl->aq, st->admin, amem, ro,
				   ctrl->opts.admin_timeout_ms);
	if (rc) {
		for (int i = 0; i < 3; i++)
			nvmk_backing_dma_unclaim(b, &amem[i]);
		goto fail;
	}
	/* the admin queue never uses shadow doorbells (Base 2.0 5.8: I/O queues only) */
	for (size_t i = 0; i < st->aer->n_pending_dw0; i++)
		ctrl->aer_pending[ctrl->naer_pending++] = st->aer->pending_dw0[i];
	rc = restore_namespaces(ctrl, st);
	if (rc)
		goto fail;
	for (size_t i = 0; i < st->n_qpairs; i++) {
		rc = restore_qpair(ctrl, st->qpairs[i], ro);
		if (rc)
			goto fail;
	}
	for (size_t i = 0; i < st->n_get_qpair_qids; i++)
		for (struct nvmk_qpair *qp = ctrl->qpairs; qp; qp = qp->next)
			if (qp->q.qid == st->get_qpair_qids[i])
				ctrl->get_qps[ctrl->n_get_qps++] = qp;
	ctrl->get_budget = st->get_budget > ctrl->n_get_qps ? st->get_budget : ctrl->n_get_qps;

	/* Point of no return: the state is consumed (it never restores again),
	 * then the device is written to for the first time: the probe. */
	rc = drv_gen_consume(b, st->has_generation, st->generation);
	if (rc)
		goto fail;
	ctrl->saved = 0;
	restore_probe_or_reset(ctrl);
	rc = pthread_create(&ctrl->thread, NULL, drv_admin_thread, ctrl);
	if (rc) {
		/* Consumed and live, but no admin thread: shut it down; every
		 * pending request completes once (-ECANCELED) as its qpair goes. */
		nvmk_err(b->name, NVMK_LOG_NOQ,
			 "restore: cannot start the admin thread (%d): closing the controller", rc);
		nvmk_ctrl_close(ctrl);
		return -rc;
	}
	ctrl->thread_started = true;
	pthread_mutex_lock(&ctrl->admin_lock);
	drv_admin_poll_locked(ctrl);
	pthread_mutex_unlock(&ctrl->admin_lock);
	if (!ro || !ro->defer_completions)
		for (struct nvmk_qpair *qp = ctrl->qpairs; qp; qp = qp->next) {
			int n = nvmk_qpair_process_completions(qp, 0);

			if (n > 0)
				delivered += (unsigned)n;
		}
	drv_ctrl_wake_all(ctrl);
	nvmk_info(ctrl->name, NVMK_LOG_NOQ,
		  "restored (keep-alive): %zu I/O queue pair(s), %u completion(s) from the "
		  "blackout delivered",
		  st->n_qpairs, delivered);
	*out = ctrl;
	return 0;
fail:
	nvmk_err(b->name, NVMK_LOG_NOQ, "restore failed: %d", rc);
	nvmk_ctrl_detach(ctrl);
	return rc;
}

/* ---- keep-alive off: bring-up ---- */

static int restore_bringup(struct nvmk_backing *b, const Nvmk__CtrlState *st,
			   const struct nvmk_restore_opts *ro, struct nvmk_ctrl **out)
{
	struct nvmk_ctrl_opts o;
	struct nvmk_ctrl *ctrl;
	int rc;

	rc = drv_gen_check(b, st->has_generation, st->generation, false);
	if (rc)
		return rc;
	restore_opts(st->options, ro, &o);
	/* claims the device first; its bring-up marks the state consumed */
	rc = nvmk_ctrl_open(b, &o, &ctrl);
	if (rc)
		return rc;
	/* ascending saved qid: the same qids come back when they are free */
	for (uint32_t want = 1; want <= 65535; want++) {
		const Nvmk__Qpair *m = NULL;
		struct nvmk_qpair_opts qo = {0};
		struct nvmk_qpair *qp;

		for (size_t i = 0; i < st->n_qpairs; i++)
			if (st->qpairs[i]->queue->qid == want)
				m = st->qpairs[i];
		if (!m)
			continue;
		qo.mode = (enum nvmk_cpl_mode)m->mode;
		qo.depth = m->queue->depth;
		qo.flags = (m->shared || m->from_get) ? NVMK_QPAIR_SHARED : 0;
		rc = nvmk_qpair_create(ctrl, &qo, &qp);
		if (rc) {
			nvmk_warn(ctrl->name, NVMK_LOG_NOQ,
				  "restore: cannot re-create saved qpair %u: %d", want, rc);
			continue;
		}
		qp->restored = true;
		qp->saved_qid = (uint16_t)want;
		if (m->from_get) {
			qp->from_get = true;
			pthread_mutex_lock(&ctrl->get_lock);
			if (ctrl->n_get_qps < ctrl->granted)
				ctrl->get_qps[ctrl->n_get_qps++] = qp;
			pthread_mutex_unlock(&ctrl->get_lock);
		}
	}
	for (size_t i = 0; i < st->n_namespaces; i++) {
		const Nvmk__Namespace *m = st->namespaces[i];

		for (size_t k = 0; k < m->n_handle_flags; k++) {
			struct nvmk_ns *ns;

			rc = nvmk_ns_open(ctrl, m->nsid, m->handle_flags[k], &ns);
			if (rc) {
				nvmk_warn(ctrl->name, NVMK_LOG_NOQ,
					  "restore: cannot re-open namespace %u: %d", m->nsid, rc);
				continue;
			}
			ns->restored = true;
		}
	}
	nvmk_info(ctrl->name, NVMK_LOG_NOQ, "restored (bring-up after shutdown)");
	*out = ctrl;
	return 0;
}

int nvmk_ctrl_restore(struct nvmk_backing *b, const void *blob, size_t len,
		      const struct nvmk_restore_opts *opts, struct nvmk_ctrl **out)
{
	Nvmk__CtrlState *st = NULL;
	char why[256];
	int rc;

	if (!b || !out)
		return -EINVAL;
	rc = drv_state_unpack(blob, len, &st, why, sizeof(why));
	if (rc) {
		nvmk_err(b->name, NVMK_LOG_NOQ, "restore refused: %s",
			 why[0] ? why : strerror(-rc));
		return rc;
	}
	if (strcmp(st->name, b->name) != 0) {
		nvmk_err(b->name, NVMK_LOG_NOQ, "restore refused: the state is of device %s",
			 st->name);
		nvmk__ctrl_state__free_unpacked(st, NULL);
		return -ENODEV;
	}
	/* a device in use is never touched, whatever the state (the claim
	 * itself comes with the controller object) */
	rc = drv_owner_busy(b, "restore");
	if (rc) {
		nvmk__ctrl_state__free_unpacked(st, NULL);
		return rc;
	}
	if (st->keep_alive)
		rc = restore_keep_alive(b, st, opts, out);
	else
		rc = restore_bringup(b, st, opts, out);
	nvmk__ctrl_state__free_unpacked(st, NULL);
	return rc;
}
