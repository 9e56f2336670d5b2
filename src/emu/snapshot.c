// SPDX-License-Identifier: MIT
/*
 * Pause and snapshot: what a device keeps for the next driver after its
 * driver's process died (nvmekeep-emu --persist, docs/vfio-user.md).
 *
 * The queue state is the worker's alone, so the worker takes the snapshot
 * itself, at the top of its loop (between two commands: nothing half done).
 * A pause stops the loop there as well: a paused controller fetches,
 * completes and touches nothing, so a server can look at the memory of the
 * client that went (and hand it to the next one) without the controller
 * moving underneath.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emu/emu_internal.h"

void emu_snap_init(struct nvmk_emu *emu)
{
	pthread_mutex_init(&emu->snap_lock, NULL);
	pthread_cond_init(&emu->snap_cv, NULL);
}

void emu_snap_fini(struct nvmk_emu *emu)
{
	pthread_mutex_destroy(&emu->snap_lock);
	pthread_cond_destroy(&emu->snap_cv);
}

/* The doorbell value the controller will act on for slot @idx: the shadow
 * value for I/O queues with shadow doorbells (Base 2.0 5.8: authoritative),
 * else the register, else (no queue behind the register) @fallback. */
static uint32_t snap_db(struct nvmk_emu *emu, unsigned idx, uint32_t fallback)
{
	uint32_t v = atomic_load(&emu->db[idx]);
	volatile uint32_t *page = emu_db_page(emu);

	if (v & EMU_DB_NOQ)
		return fallback;
	/* with a doorbell page (nvmekeep-emu's sparse-mmap'd BAR) the register
	 * value is the page's: emu->db keeps only the queue-exists flag */
	if (page)
		v = emu_db_page_read(emu, page, idx);
	if (emu->dbbuf_shadow && idx >= 2) {
		uint64_t iova = emu->dbbuf_shadow + idx * (4ull << emu->cfg.dstrd);
		uint32_t *p = emu->cfg.dma(emu->cfg.dma_ctx, iova, 4, false);

		if (p) {
			v = __atomic_load_n(p, __ATOMIC_ACQUIRE);
			emu_dma_done(emu, p, iova, 4, false);
		}
	}
	return v & 0xffffu;
}

static int snap_take(struct nvmk_emu *emu, struct nvmk_emu_snapshot *s)
{
	unsigned nq = (unsigned)emu->nq + 1u, ncmd = 0;

	memset(s, 0, sizeof(*s));
	s->enabled = emu->enabled;
	s->ready = (atomic_load(&emu->csts) & NVME_CSTS_RDY) != 0;
	s->cc = atomic_load(&emu->cc);
	s->aqa = atomic_load(&emu->aqa);
	s->asq = atomic_load(&emu->asq);
	s->acq = atomic_load(&emu->acq);
	s->dbbuf_shadow = emu->dbbuf_shadow;
	s->dbbuf_eventidx = emu->dbbuf_eventidx;
	if (emu->numq_set) {
		s->nsq_granted = emu->nsq_granted;
		s->ncq_granted = emu->ncq_granted;
	}
	for (struct emu_cmd *c = emu->pending; c; c = c->next)
		ncmd++;
	s->sqs = calloc(nq, sizeof(*s->sqs));
	s->cqs = calloc(nq, sizeof(*s->cqs));
	s->cmds = calloc(ncmd ? ncmd : 1, sizeof(*s->cmds));
	if (!s->sqs || !s->cqs || !s->cmds) {
		nvmk_emu_snapshot_free(s);
		return -ENOMEM;
	}
	if (!emu->enabled)
		return 0; /* no queues exist */
	for (unsigned q = 0; q < nq; q++) {
		const struct emu_sq *sq = &emu->sqs[q];
		const struct emu_cq *cq = &emu->cqs[q];

		if (sq->valid)
			s->sqs[s->nsq++] =
			    (struct nvmk_emu_snap_sq){.qid = sq->qid,
						      .cqid = sq->cqid,
						      .size = sq->size,
						      .base = sq->base,
						      .head = sq->head,
						      .tail = snap_db(emu, 2u * q, sq->tail)};
		if (cq->valid)
			s->cqs[s->ncq++] =
			    (struct nvmk_emu_snap_cq){.qid = cq->qid,
						      .iv = cq->iv,
						      .ien = cq->ien,
						      .phase = cq->phase,
						      .size = cq->size,
						      .base = cq->base,
						      .head = snap_db(emu, 2u * q + 1u, cq->head),
						      .tail = cq->tail};
	}
	for (struct emu_cmd *c = emu->pending; c; c = c->next)
		s->cmds[s->ncmd++] = (struct nvmk_emu_snap_cmd){
		    .sqid = c->sqid,
		    .cid = c->cid,
		    .opc = c->opc,
		    .kind = c->state == EMU_CMD_AER    ? NVMK_EMU_SNAP_CMD_AER
			    : c->state == EMU_CMD_HUNG ? NVMK_EMU_SNAP_CMD_HUNG
						       : NVMK_EMU_SNAP_CMD_DELAYED};
	return 0;
}

bool emu_snap_step(struct nvmk_emu *emu)
{
	/* the request's number before its flag (the requester writes them in
	 * the other order): a number seen here comes with its flag set */
	uint32_t seq = atomic_load(&emu->pause_seq);
	bool pause = atomic_load(&emu->pause_req);

	/* cheap loads on every pass of the worker: the lock only when
	 * a snapshot was asked for */
	if (atomic_load_explicit(&emu->snap_pending, memory_order_acquire)) {
		pthread_mutex_lock(&emu->snap_lock);
		if (emu->snap_req && !emu->snap_done) {
			emu->snap_rc = snap_take(emu, emu->snap_req);
			emu->snap_done = true;
			atomic_store(&emu->snap_pending, false);
			pthread_cond_broadcast(&emu->snap_cv);
		}
		pthread_mutex_unlock(&emu->snap_lock);
	}
	/* acknowledged only at a boundary, with the flag seen set; release:
	 * whoever sees it also sees the worker's last accesses done */
	if (pause && atomic_load_explicit(&emu->paused_seq, memory_order_relaxed) != seq)
		atomic_store_explicit(&emu->paused_seq, seq, memory_order_release);
	return pause;
}

static void deadline_after(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int nvmk_emu_pause(struct nvmk_emu *emu, bool on, unsigned timeout_ms)
{
	uint64_t end = emu_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct timespec nap = {0, 100000};
	uint32_t seq;

	atomic_store(&emu->pause_req, on);
	if (!on) {
		emu_kick(emu);
		return 0;
	}
	seq = atomic_fetch_add(&emu->pause_seq, 1) + 1;
	emu_kick(emu);
	while (atomic_load_explicit(&emu->paused_seq, memory_order_acquire) != seq) {
		if (emu_now_ns() > end) {
			nvmk_warn(emu->name, NVMK_LOG_NOQ,
				  "pause: the worker did not stop within %u ms", timeout_ms);
			return -ETIMEDOUT;
		}
		emu_kick(emu);
		nanosleep(&nap, NULL);
	}
	return 0;
}

int nvmk_emu_snapshot(struct nvmk_emu *emu, struct nvmk_emu_snapshot *out, unsigned timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	deadline_after(&ts, timeout_ms);
	pthread_mutex_lock(&emu->snap_lock);
	emu->snap_req = out;
	emu->snap_done = false;
	atomic_store(&emu->snap_pending, true);
	pthread_mutex_unlock(&emu->snap_lock);
	emu_kick(emu);
	pthread_mutex_lock(&emu->snap_lock);
	while (!emu->snap_done && rc == 0) {
		/* the worker may be asleep in a paused loop: kick it again now and then */
		struct timespec step;

		deadline_after(&step, 10);
		if (step.tv_sec > ts.tv_sec ||
		    (step.tv_sec == ts.tv_sec && step.tv_nsec > ts.tv_nsec))
			step = ts;
		if (pthread_cond_timedwait(&emu->snap_cv, &emu->snap_lock, &step) == ETIMEDOUT) {
			struct timespec now;

			clock_gettime(CLOCK_REALTIME, &now);
			if (now.tv_sec > ts.tv_sec ||
			    (now.tv_sec == ts.tv_sec && now.tv_nsec >= ts.tv_nsec))
				rc = -ETIMEDOUT;
			else {
				pthread_mutex_unlock(&emu->snap_lock);
				emu_kick(emu);
				pthread_mutex_lock(&emu->snap_lock);
			}
		}
	}
	if (emu->snap_done)
		rc = emu->snap_rc;
	emu->snap_req = NULL;
	emu->snap_done = false;
	atomic_store(&emu->snap_pending, false);
	pthread_mutex_unlock(&emu->snap_lock);
	if (rc == -ETIMEDOUT)
		nvmk_warn(emu->name, NVMK_LOG_NOQ,
			  "snapshot: the worker did not answer within %u ms", timeout_ms);
	return rc;
}

void nvmk_emu_snapshot_free(struct nvmk_emu_snapshot *s)
{
	if (!s)
		return;
	free(s->sqs);
	free(s->cqs);
	free(s->cmds);
	s->sqs = NULL;
	s->cqs = NULL;
	s->cmds = NULL;
	s->nsq = s->ncq = s->ncmd = 0;
}
