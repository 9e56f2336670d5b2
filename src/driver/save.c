// SPDX-License-Identifier: MIT
/*
 * Servicing, first half: quiesce a controller, snapshot it into the saved
 * state of ctrl_state.proto, and detach the host-side objects without
 * touching the device.
 *
 * Keep-alive: the device keeps running. Nothing is written to it; the
 * snapshot records where every queue lives (pool tag + IOVA), the ring
 * positions the host knows, and every tracker with the caller's token, so
 * that a successor can pick the queues up where they are and complete each
 * request to its original caller.
 *
 * Without keep-alive: drain (bounded), shut the controller down (Base 2.0
 * 3.6.1: CC.SHN = normal, wait CSTS.SHST = complete, then CC.EN = 0), fail
 * what is left with -ETIMEDOUT once the device can no longer touch memory,
 * and record only what a normal bring-up needs to give the caller its
 * qpairs and namespace handles back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "driver/queue.h"
#include "driver/servicing.h"
#include "driver/state.h"

/* ---- namespace handle list (ns_state.c links, under ns_lock) ---- */

void drv_ns_handle_link(struct nvmk_ctrl *ctrl, struct nvmk_ns *ns)
{
	ns->next_handle = ctrl->handles;
	ctrl->handles = ns;
}

void drv_ns_handle_unlink(struct nvmk_ctrl *ctrl, struct nvmk_ns *ns)
{
	for (struct nvmk_ns **pp = &ctrl->handles; *pp; pp = &(*pp)->next_handle)
		if (*pp == ns) {
			*pp = ns->next_handle;
			return;
		}
}

/* ---- building the message: every allocation is recorded and freed at the end ---- */

struct arena {
	void **v;
	size_t n, cap;
	bool oom;
};

static void *arena_alloc(struct arena *a, size_t size)
{
	void *p;

	if (a->oom)
		return NULL;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		void **v = realloc(a->v, cap * sizeof(*v));

		if (!v) {
			a->oom = true;
			return NULL;
		}
		a->v = v;
		a->cap = cap;
	}
	p = calloc(1, size ? size : 1);
	if (!p) {
		a->oom = true;
		return NULL;
	}
	a->v[a->n++] = p;
	return p;
}

static void arena_free(struct arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
}

#define ARENA_NEW(a, type, init)                                                                   \
	({                                                                                         \
		type *p_ = arena_alloc((a), sizeof(type));                                         \
		if (p_)                                                                            \
			*p_ = (type)init;                                                          \
		p_;                                                                                \
	})

static char *arena_str(struct arena *a, const char *s)
{
	char *p = arena_alloc(a, strlen(s) + 1);

	if (p)
		memcpy(p, s, strlen(s) + 1);
	return p;
}

static Nvmk__DmaBlock *save_block(struct arena *a, const struct nvmk_dma_buf *buf, const char *tag)
{
	Nvmk__DmaBlock *b = ARENA_NEW(a, Nvmk__DmaBlock, NVMK__DMA_BLOCK__INIT);

	if (!b)
		return NULL;
	b->tag = arena_str(a, tag);
	b->has_iova = b->has_size = true;
	b->iova = nvmk_dma_buf_iova(buf, 0);
	b->size = buf->mem.size;
	return b;
}

/* The queue tags queue.c gives: "<prefix>.sq", ".cq", ".prp". */
static Nvmk__Queue *save_queue(struct arena *a, const struct drv_queue *q, const char *prefix,
			       bool admin)
{
	Nvmk__Queue *m = ARENA_NEW(a, Nvmk__Queue, NVMK__QUEUE__INIT);
	char tag[40];
	uint32_t *slot_of; /* tracker index -> SQ slot + 1 holding its SQE */
	size_t n = 0;

	if (!m)
		return NULL;
	m->has_qid = m->has_depth = m->has_ntrk = true;
	m->qid = q->qid;
	m->depth = q->depth;
	m->ntrk = q->ntrk;
	snprintf(tag, sizeof(tag), "%s.sq", prefix);
	m->sq = save_block(a, &q->sq_mem, tag);
	snprintf(tag, sizeof(tag), "%s.cq", prefix);
	m->cq = save_block(a, &q->cq_mem, tag);
	snprintf(tag, sizeof(tag), "%s.prp", prefix);
	m->prp = save_block(a, &q->prp_mem, tag);
	m->has_sq_tail = m->has_sq_db_tail = m->has_sq_head = true;
	m->has_cq_head = m->has_cq_db_head = m->has_cq_phase = true;
	m->sq_tail = q->sq_tail;
	m->sq_db_tail = q->sq_db_tail;
	m->sq_head = q->sq_head;
	m->cq_head = q->cq_head;
	m->cq_db_head = q->cq_db_head;
	m->cq_phase = q->phase;
	if (q->sdb_sq) {
		/* relaxed: diagnostics only; the buffer itself is what the successor uses */
		m->has_shadow_sq = m->has_shadow_cq = m->has_eventidx_sq = m->has_eventidx_cq =
		    true;
		m->shadow_sq = __atomic_load_n(q->sdb_sq, __ATOMIC_RELAXED);
		m->shadow_cq = __atomic_load_n(q->sdb_cq, __ATOMIC_RELAXED);
		m->eventidx_sq = __atomic_load_n(q->ei_sq, __ATOMIC_RELAXED);
		m->eventidx_cq = __atomic_load_n(q->ei_cq, __ATOMIC_RELAXED);
	}
	m->trk_cid = arena_alloc(a, (size_t)q->ntrk * sizeof(*m->trk_cid));
	if (!m->trk_cid)
		return NULL;
	for (uint32_t i = 0; i < q->ntrk; i++)
		m->trk_cid[i] = q->trk[i].cid;
	m->n_trk_cid = q->ntrk;
	m->pending = arena_alloc(a, (size_t)q->ntrk * sizeof(*m->pending));
	slot_of = arena_alloc(a, (size_t)q->ntrk * sizeof(*slot_of));
	if (!m->pending || !slot_of)
		return NULL;
	/* The SQE of a command is still in the ring unless the slot was reused
	 * (the device fetched it and the host wrapped around): informational. */
	for (uint32_t s = 0; s < q->depth; s++) {
		uint16_t cid = q->sq[s].cid;
		const struct drv_tracker *t = &q->trk[cid & q->idx_mask];

		if ((cid & q->idx_mask) < q->ntrk && t->state == TRK_ACTIVE && t->cid == cid)
			slot_of[cid & q->idx_mask] = s + 1;
	}
	for (uint32_t i = 0; i < q->ntrk; i++) {
		const struct drv_tracker *t = &q->trk[i];
		Nvmk__PendingCmd *p;

		if (t->state != TRK_ACTIVE && t->state != TRK_PARENT)
			continue;
		p = ARENA_NEW(a, Nvmk__PendingCmd, NVMK__PENDING_CMD__INIT);
		if (!p)
			return NULL;
		p->has_index = p->has_cid = p->has_kind = p->has_opcode = p->has_flags = true;
		p->index = i;
		p->cid = t->cid;
		p->opcode = t->opc;
		p->flags = t->flags & TRK_F_TIMED_OUT;
		if (admin) {
			p->kind = (t->opc == NVME_ADM_ASYNC_EVENT && t->cb == drv_aer_done)
				      ? NVMK__PENDING_CMD__KIND__AER
				      : NVMK__PENDING_CMD__KIND__ORPHAN;
		} else if (t->state == TRK_PARENT) {
			p->kind = NVMK__PENDING_CMD__KIND__PARENT;
			p->has_remaining = p->has_err = p->has_status = p->has_dw0 = true;
			p->remaining = t->remaining;
			p->err = t->err;
			p->status = t->status;
			p->dw0 = t->dw0;
		} else {
			p->kind = NVMK__PENDING_CMD__KIND__IO;
		}
		if (!admin && t->state == TRK_ACTIVE && t->part && t->parent) {
			p->has_parent = true;
			p->parent = (uint32_t)(t->parent - q->trk) + 1u;
		} else if (!admin) {
			/* the token: the caller's cb_arg, as an opaque integer */
			p->has_token = p->has_has_callback = true;
			p->token = (uint64_t)(uintptr_t)t->cb_arg;
			p->has_callback = t->cb != NULL;
		}
		if (t->state == TRK_ACTIVE && slot_of[i]) {
			p->has_sqe = true;
			p->sqe.len = sizeof(struct nvme_sqe);
			p->sqe.data = (uint8_t *)&q->sq[slot_of[i] - 1];
		}
		m->pending[n++] = p;
	}
	m->n_pending = n;
	return m;
}

static Nvmk__CtrlOptions *save_options(struct arena *a, const struct nvmk_ctrl_opts *o)
{
	Nvmk__CtrlOptions *m = ARENA_NEW(a, Nvmk__CtrlOptions, NVMK__CTRL_OPTIONS__INIT);

	if (!m)
		return NULL;
	m->has_admin_queue_depth = m->has_io_queue_depth = m->has_max_io_queues = true;
	m->has_cpl_mode = m->has_admin_timeout_ms = m->has_io_timeout_ms = true;
	m->has_shutdown_timeout_ms = m->has_health_check_ms = m->has_dbbuf_mode = true;
	m->has_host_id = true;
	m->admin_queue_depth = o->admin_queue_depth;
	m->io_queue_depth = o->io_queue_depth;
	m->max_io_queues = o->max_io_queues;
	m->cpl_mode = o->cpl_mode;
	m->admin_timeout_ms = o->admin_timeout_ms;
	m->io_timeout_ms = o->io_timeout_ms;
	m->shutdown_timeout_ms = o->shutdown_timeout_ms;
	m->health_check_ms = o->health_check_ms;
	m->dbbuf_mode = o->dbbuf;
	m->host_id = o->host_id;
	return m;
}

/* ns_lock held. */
static int save_namespaces(struct arena *a, struct nvmk_ctrl *ctrl, Nvmk__CtrlState *st,
			   bool keep_alive)
{
	st->namespaces = arena_alloc(a, (size_t)ctrl->nns * sizeof(*st->namespaces));
	if (!st->namespaces && ctrl->nns)
		return -ENOMEM;
	for (unsigned i = 0; i < ctrl->nns; i++) {
		struct drv_ns_state *s = ctrl->ns[i];
		Nvmk__Namespace *m = ARENA_NEW(a, Nvmk__Namespace, NVMK__NAMESPACE__INIT);
		size_t nh = 0;

		if (!m)
			return -ENOMEM;
		m->has_nsid = true;
		m->nsid = s->nsid;
		if (keep_alive) {
			m->has_nblocks = m->has_lba_shift = m->has_rescap = true;
			m->has_removed = m->has_known = true;
			m->nblocks = atomic_load_explicit(&s->nblocks, memory_order_relaxed);
			m->lba_shift = s->lba_shift;
			m->rescap = s->rescap;
			m->removed = atomic_load_explicit(&s->removed, memory_order_relaxed);
			m->known = s->known;
		}
		for (struct nvmk_ns *h = ctrl->handles; h; h = h->next_handle)
			nh += h->s == s;
		m->handle_flags = arena_alloc(a, nh * sizeof(*m->handle_flags));
		if (!m->handle_flags)
			return -ENOMEM;
		for (struct nvmk_ns *h = ctrl->handles; h; h = h->next_handle)
			if (h->s == s)
				m->handle_flags[m->n_handle_flags++] =
				    h->shared ? NVMK_NS_SHARED : 0;
		st->namespaces[st->n_namespaces++] = m;
	}
	return 0;
}

/* qp_lock held, and every qpair's own lock. */
static int save_qpairs(struct arena *a, struct nvmk_ctrl *ctrl, Nvmk__CtrlState *st,
		       bool keep_alive)
{
	size_t nq = 0;

	for (struct nvmk_qpair *qp = ctrl->qpairs; qp; qp = qp->next)
		nq++;
	st->qpairs = arena_alloc(a, nq * sizeof(*st->qpairs));
	st->get_qpair_qids = arena_alloc(a, (ctrl->n_get_qps + 1) * sizeof(uint32_t));
	if (!st->qpairs || !st->get_qpair_qids)
		return -ENOMEM;
	for (struct nvmk_qpair *qp = ctrl->qpairs; qp; qp = qp->next) {
		Nvmk__Qpair *m = ARENA_NEW(a, Nvmk__Qpair, NVMK__QPAIR__INIT);
		char prefix[16];

		if (!m)
			return -ENOMEM;
		snprintf(prefix, sizeof(prefix), "io%u", qp->q.qid);
		if (keep_alive) {
			m->queue = save_queue(a, &qp->q, prefix, false);
		} else {
			m->queue = ARENA_NEW(a, Nvmk__Queue, NVMK__QUEUE__INIT);
			if (m->queue) {
				m->queue->has_qid = m->queue->has_depth = true;
				m->queue->qid = qp->q.qid;
				m->queue->depth = qp->q.depth;
			}
		}
		if (!m->queue)
			return -ENOMEM;
		m->has_mode = m->has_vector = m->has_shared = m->has_from_get = true;
		m->has_irq_shared = m->has_dead = true;
		m->mode = qp->mode;
		m->vector = qp->vector;
		m->shared = qp->shared;
		m->from_get = qp->from_get;
		m->irq_shared = qp->irq_shared;
		m->dead = qp->dead;
		st->qpairs[st->n_qpairs++] = m;
	}
	for (unsigned i = 0; i < ctrl->n_get_qps; i++)
		st->get_qpair_qids[st->n_get_qpair_qids++] = ctrl->get_qps[i]->q.qid;
	st->has_get_budget = true;
	st->get_budget = ctrl->get_budget;
	return 0;
}

/* Admin lock, qp_lock, ns_lock and every qpair lock held; admin thread stopped. */
static int save_snapshot(struct nvmk_ctrl *ctrl, bool keep_alive, uint64_t gen, void **blob,
			 size_t *len)
{
	struct arena a = {0};
	Nvmk__CtrlState *st = ARENA_NEW(&a, Nvmk__CtrlState, NVMK__CTRL_STATE__INIT);
	int rc = -ENOMEM;

	if (!st)
		goto out;
	st->name = (char *)ctrl->name;
	st->has_keep_alive = true;
	st->keep_alive = keep_alive;
	st->has_generation = gen != 0;
	st->generation = gen;
	st->options = save_options(&a, &ctrl->opts);
	if (!st->options)
		goto out;
	if (keep_alive) {
		Nvmk__AerState *aer = ARENA_NEW(&a, Nvmk__AerState, NVMK__AER_STATE__INIT);

		st->has_identify_ctrl = true;
		st->identify_ctrl.data = (uint8_t *)ctrl->id;
		st->identify_ctrl.len = sizeof(*ctrl->id);
		st->has_cap = st->has_granted = st->has_nvec = true;
		st->has_admin_depth = st->has_io_depth = st->has_max_xfer = st->has_dbbuf = true;
		st->cap = ctrl->cap;
		st->granted = ctrl->granted;
		st->nvec = ctrl->nvec;
		st->admin_depth = ctrl->admin_depth;
		st->io_depth = ctrl->io_depth;
		st->max_xfer = ctrl->max_xfer;
		st->dbbuf = ctrl->dbbuf;
		if (ctrl->dbbuf && !(st->dbbuf_mem = save_block(&a, &ctrl->dbbuf_mem, "dbbuf")))
			goto out;
		st->admin_data = save_block(&a, &ctrl->admin_buf, "admin.data");
		st->admin = save_queue(&a, &ctrl->aq, "admin", true);
		if (!aer || !st->admin_data || !st->admin)
			goto out;
		aer->has_limit = true;
		aer->limit = ctrl->aer_limit;
		aer->pending_dw0 = ctrl->aer_pending;
		aer->n_pending_dw0 = ctrl->naer_pending;
		st->aer = aer;
	}
	if (save_namespaces(&a, ctrl, st, keep_alive) || save_qpairs(&a, ctrl, st, keep_alive) ||
	    a.oom)
		goto out;
	rc = drv_state_pack(st, blob, len);
out:
	arena_free(&a);
	return rc;
}

/* ---- quiesce ---- */

static void save_stop_admin_thread(struct nvmk_ctrl *ctrl)
{
	uint64_t one = 1;

	if (!ctrl->thread_started)
		return;
	/* release: the flag before the wakeup that makes the thread look at it */
	atomic_store_explicit(&ctrl->stop, true, memory_order_release);
	if (write(ctrl->wake_fd, &one, sizeof(one)) < 0)
		(void)0;
	pthread_join(ctrl->thread, NULL);
	ctrl->thread_started = false;
}

static int save_start_admin_thread(struct nvmk_ctrl *ctrl)
{
	int rc;

	atomic_store_explicit(&ctrl->stop, false, memory_order_release);
	rc = pthread_create(&ctrl->thread, NULL, drv_admin_thread, ctrl);
	if (rc)
		return -rc;
	ctrl->thread_started = true;
	return 0;
}

static void save_lock_all(struct nvmk_ctrl *ctrl)
{
	pthread_mutex_lock(&ctrl->admin_lock);
	pthread_mutex_lock(&ctrl->qp_lock);
	pthread_mutex_lock(&ctrl->ns_lock);
	for (struct nvmk_qpair *qp = ctrl->qpairs; qp; qp = qp->next)
		drv_qp_lock(qp);
}

static void save_unlock_all(struct nvmk_ctrl *ctrl)
{
	for (struct nvmk_qpair *qp = ctrl->qpairs; qp; qp = qp->next)
		drv_qp_unlock(qp);
	pthread_mutex_unlock(&ctrl->ns_lock);
	pthread_mutex_unlock(&ctrl->qp_lock);
	pthread_mutex_unlock(&ctrl->admin_lock);
}

/* Undo the quiesce after a failed keep-alive save. */
static void save_resume(struct nvmk_ctrl *ctrl)
{
	/* acquire: the epoch of our own quiesce bump */
	uint32_t epoch = atomic_load_explicit(&ctrl->epoch, memory_order_acquire);

	pthread_mutex_lock(&ctrl->qp_lock);
	for (struct nvmk_qpair *qp = ctrl->qpairs; qp; qp = qp->next) {
		drv_qp_lock(qp);
		drv_qp_set_epoch(qp, epoch);
		drv_qp_unlock(qp);
	}
	pthread_mutex_unlock(&ctrl->qp_lock);
	/* release: the qpair epochs before users may run again */
	atomic_store_explicit(&ctrl->svc_quiesced, false, memory_order_release);
	if (save_start_admin_thread(ctrl))
		nvmk_err(ctrl->name, NVMK_LOG_NOQ,
			 "cannot restart the admin thread after a "
			 "failed save");
}

/* ---- keep-alive off: drain and shut down ---- */

static unsigned save_drain_once(struct nvmk_ctrl *ctrl)
{
	unsigned left = 0;

	pthread_mutex_lock(&ctrl->qp_lock);
	for (struct nvmk_qpair *qp = ctrl->qpairs; qp; qp = qp->next) {
		struct drv_queue *q = &qp->q;
		int n;

		drv_qp_lock(qp);
		if (!qp->dead && !drv_failed(ctrl)) {
			q->batching++;
			n = drv_q_drain(q, 0);
			q->batching--;
			drv_q_ring_sq(q);
			if (n < 0)
				drv_ctrl_fail(ctrl, -EIO, "invalid completion while draining");
		}
		left += q->nbusy;
		drv_qp_unlock(qp);
	}
	pthread_mutex_unlock(&ctrl->qp_lock);
	return left;
}

static void save_drain_and_shutdown(struct nvmk_ctrl *ctrl, uint32_t drain_ms)
{
	uint64_t deadline = drv_clock_ms() + drain_ms;
	struct timespec ts = {0, 200000};
	unsigned left, failed = 0;

	while ((left = save_drain_once(ctrl)) && drv_clock_ms() < deadline)
		nanosleep(&ts, NULL);
	drv_ctrl_shutdown_device(ctrl);
	/* The device is disabled: it no longer touches the buffers of what did
	 * not complete, so failing those now is safe. */
	pthread_mutex_lock(&ctrl->qp_lock);
	for (struct nvmk_qpair *qp = ctrl->qpairs; qp; qp = qp->next) {
		drv_qp_lock(qp);
		drv_queue_doom_all(&qp->q);
		failed += drv_queue_fail_doomed(&qp->q, -ETIMEDOUT);
		drv_qp_unlock(qp);
	}
	pthread_mutex_unlock(&ctrl->qp_lock);
	if (left || failed)
		nvmk_warn(ctrl->name, NVMK_LOG_NOQ,
			  "save: %u command(s) did not complete within the %u ms drain: failed "
			  "with -ETIMEDOUT",
			  failed, drain_ms);
	nvmk_info(ctrl->name, NVMK_LOG_NOQ, "save: drained and shut down (keep-alive off)");
}

int nvmk_ctrl_save(struct nvmk_ctrl *ctrl, const struct nvmk_save_opts *opts, void **blob,
		   size_t *len)
{
	bool keep_alive = opts ? opts->keep_alive : true;
	uint64_t gen;
	uint32_t epoch;
	int rc;

	if (!ctrl || !blob || !len)
		return -EINVAL;
	if (ctrl->saved) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ, "save: controller already saved");
		return -EINVAL;
	}
	rc = drv_failed(ctrl);
	if (rc) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ, "save: controller failed: %s", strerror(-rc));
		return rc;
	}
	if (keep_alive && (!ctrl->b->pool || !ctrl->b->ops->dma_remap)) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ,
			 "save: keep-alive needs the queues in a private DMA pool and a backing "
			 "that can remap them (%s)",
			 ctrl->b->pool ? "backing cannot remap" : "no pool");
		return -EOPNOTSUPP;
	}
	/* release: the flag before the epoch bump that sends every qpair call
	 * into drv_qpair_recover, which then answers -EAGAIN */
	atomic_store_explicit(&ctrl->svc_quiesced, true, memory_order_release);
	save_stop_admin_thread(ctrl);
	/* acquire: a reset the admin thread finished before it stopped */
	epoch = atomic_load_explicit(&ctrl->epoch, memory_order_acquire);
	if (keep_alive) {
		bool stale = false;

		pthread_mutex_lock(&ctrl->qp_lock);
		for (struct nvmk_qpair *qp = ctrl->qpairs; qp; qp = qp->next)
			stale |= qp->epoch != epoch;
		pthread_mutex_unlock(&ctrl->qp_lock);
		if (stale) {
			/* a reset happened that some qpair has not caught up with:
			 * its trackers describe commands the device no longer has */
			nvmk_err(ctrl->name, NVMK_LOG_NOQ,
				 "save: a qpair has not recovered from a reset yet; retry");
			save_resume(ctrl);
			return -EBUSY;
		}
	}
	/* release: pairs with the acquire in drv_qpair_recover */
	drv_epoch_bump(ctrl);
	if (!keep_alive)
		save_drain_and_shutdown(ctrl, opts && opts->drain_timeout_ms
						  ? opts->drain_timeout_ms
						  : ctrl->opts.io_timeout_ms);
	/* the next generation: recorded in the pool once the state exists, so
	 * that from then on only this state restores (generation.c) */
	gen = drv_gen_next(ctrl->b);
	save_lock_all(ctrl);
	rc = save_snapshot(ctrl, keep_alive, gen, blob, len);
	save_unlock_all(ctrl);
	if (!rc) {
		rc = drv_gen_record(ctrl->b, gen);
		if (rc) {
			free(*blob);
			*blob = NULL;
		}
	}
	if (rc) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ, "save failed: %d", rc);
		if (keep_alive)
			save_resume(ctrl);
		else
			ctrl->saved = DRV_SAVED_SHUTDOWN;
		return rc;
	}
	ctrl->saved = keep_alive ? DRV_SAVED_KEEP_ALIVE : DRV_SAVED_SHUTDOWN;
	nvmk_info(ctrl->name, NVMK_LOG_NOQ, "saved (%s): %zu bytes, generation %llu",
		  keep_alive ? "keep-alive" : "shut down", *len, (unsigned long long)gen);
	return 0;
}

/* ---- detach ---- */

static void detach_buf(struct nvmk_ctrl *ctrl, struct nvmk_dma_buf *buf, bool keep)
{
	if (!keep)
		nvmk_backing_dma_free(ctrl->b, buf);
	else if (ctrl->saved == DRV_SAVED_RESTORE_REFUSED)
		nvmk_backing_dma_unclaim(ctrl->b, buf); /* waits for the next restore */
	else
		nvmk_backing_dma_forget(ctrl->b, buf);
}

static void detach_queue(struct nvmk_ctrl *ctrl, struct drv_queue *q, bool keep)
{
	detach_buf(ctrl, &q->sq_mem, keep);
	detach_buf(ctrl, &q->cq_mem, keep);
	detach_buf(ctrl, &q->prp_mem, keep);
	free(q->trk);
	q->trk = NULL;
}

void nvmk_ctrl_detach(struct nvmk_ctrl *ctrl)
{
	bool keep;

	if (!ctrl)
		return;
	save_stop_admin_thread(ctrl);
	/* Memory the device may still use stays allocated and mapped: always
	 * after a keep-alive save, and for an unsaved controller whose memory a
	 * successor can reclaim (pool). */
	keep = ctrl->saved == DRV_SAVED_KEEP_ALIVE || ctrl->saved == DRV_SAVED_RESTORE_REFUSED ||
	       (!ctrl->saved && ctrl->b->pool);
	while (ctrl->qpairs) {
		struct nvmk_qpair *qp = ctrl->qpairs;

		ctrl->qpairs = qp->next;
		detach_queue(ctrl, &qp->q, keep);
		free(qp->segs);
		free(qp->parts);
		free(qp);
	}
	while (ctrl->handles) {
		struct nvmk_ns *ns = ctrl->handles;

		ctrl->handles = ns->next_handle;
		free(ns);
	}
	if (ctrl->dbbuf_mem.mem.vaddr)
		detach_buf(ctrl, &ctrl->dbbuf_mem, keep);
	/* separately: a restore that failed on the admin queue has the admin
	 * data page already (found by fuzz/fuzz_ctrl_restore.c) */
	if (ctrl->admin_buf.mem.vaddr)
		detach_buf(ctrl, &ctrl->admin_buf, keep);
	if (ctrl->aq.trk)
		detach_queue(ctrl, &ctrl->aq, keep);
	/* Interrupts stay enabled for the device that keeps running: its
	 * eventfds are what the successor waits on. */
	if (ctrl->nvec && !keep)
		ctrl->b->ops->irq_disable(ctrl->b);
	nvmk_info(ctrl->name, NVMK_LOG_NOQ, "detached%s", keep ? " (device left running)" : "");
	drv_ctrl_free_host(ctrl);
}
