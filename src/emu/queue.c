/* SPDX-License-Identifier: MIT */
/*
 * Queues: SQ fetch, CQ posting with the phase tag, interrupts (MSI-X via
 * eventfd, per-vector mask with pending bit), held commands (delayed, hung,
 * AER), queue creation/deletion, shadow doorbells and EventIdx.
 *
 * Base 2.0 references: 3.3.1 (queue mechanics: full when head = tail + 1,
 * phase tag inverted on every wrap), 4.6 (CQE), 5.8 (Doorbell Buffer Config).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emu/emu_internal.h"

static bool sq_refresh_tail(struct nvmk_emu *emu, struct emu_sq *sq);
static bool cq_wait_room(struct nvmk_emu *emu, struct emu_cq *cq);

#define SF_GEN(sc) NVME_SF(NVME_SCT_GENERIC, sc)
#define SF_CMD(sc) NVME_SF(NVME_SCT_CMD_SPECIFIC, sc)

/* ---- interrupts ---- */

static void irq_fire(int fd)
{
	uint64_t one = 1;
	ssize_t r;

	if (fd < 0)
		return;
	/* An eventfd write only fails if the counter would overflow: the host has
	 * lost track of interrupts, and another write adds nothing. */
	r = write(fd, &one, sizeof(one));
	(void)r;
}

/*
 * Interrupts raised during one pass of the worker (emu_irq_batch_begin ..
 * _end) are sent once per vector at the end of the pass, not once per
 * completion: the host reaps every CQE posted so far on each interrupt, so
 * one per pass loses nothing and saves an eventfd write (a system call and,
 * often, a wake-up of the host's thread) per completion. A pass is bounded
 * (EMU_BATCH commands per SQ), so the delay is that of a few commands.
 * Thread-local: only the worker batches; any other caller fires at once.
 */
#define EMU_IRQ_BATCH_MAX 64
static __thread struct {
	bool on;
	unsigned n;
	uint16_t vec[EMU_IRQ_BATCH_MAX];
} irq_batch;

static void irq_signal_now(struct nvmk_emu *emu, uint16_t vector);

void emu_irq_batch_begin(void)
{
	irq_batch.on = true;
	irq_batch.n = 0;
}

void emu_irq_batch_end(struct nvmk_emu *emu)
{
	irq_batch.on = false;
	for (unsigned i = 0; i < irq_batch.n; i++)
		irq_signal_now(emu, irq_batch.vec[i]);
	irq_batch.n = 0;
}

void emu_irq_signal(struct nvmk_emu *emu, uint16_t vector)
{
	if (irq_batch.on) {
		for (unsigned i = 0; i < irq_batch.n; i++)
			if (irq_batch.vec[i] == vector)
				return;
		if (irq_batch.n < EMU_IRQ_BATCH_MAX) {
			irq_batch.vec[irq_batch.n++] = vector;
			return;
		}
	}
	irq_signal_now(emu, vector);
}

static void irq_signal_now(struct nvmk_emu *emu, uint16_t vector)
{
	if (vector >= emu->cfg.msix_vectors || atomic_load(&emu->removed))
		return;
	pthread_mutex_lock(&emu->irq_lock);
	if (emu->irq_masked[vector])
		emu->irq_pending[vector] = true; /* MSI-X Pending Bit (PCI 3.0 6.8.2.9) */
	else
		irq_fire(emu->irq_fd[vector]);
	pthread_mutex_unlock(&emu->irq_lock);
}

int nvmk_emu_set_irq_fd(struct nvmk_emu *emu, uint16_t vector, int fd)
{
	if (vector >= emu->cfg.msix_vectors || fd < -1)
		return -EINVAL;
	pthread_mutex_lock(&emu->irq_lock);
	emu->irq_fd[vector] = fd;
	pthread_mutex_unlock(&emu->irq_lock);
	return 0;
}

/* The MSI-X table size: vectors that can be bound with nvmk_emu_set_irq_fd. */
unsigned nvmk_emu_irq_count(const struct nvmk_emu *emu)
{
	return emu->cfg.msix_vectors;
}

int nvmk_emu_irq_mask(struct nvmk_emu *emu, uint16_t vector, bool masked)
{
	if (vector >= emu->cfg.msix_vectors)
		return -EINVAL;
	pthread_mutex_lock(&emu->irq_lock);
	emu->irq_masked[vector] = masked;
	if (!masked && emu->irq_pending[vector]) {
		emu->irq_pending[vector] = false;
		if (!atomic_load(&emu->removed))
			irq_fire(emu->irq_fd[vector]);
	}
	pthread_mutex_unlock(&emu->irq_lock);
	return 0;
}

/* ---- completion queue ---- */

static uint32_t cq_used(const struct emu_cq *cq)
{
	return (cq->tail + cq->size - cq->head) % cq->size;
}

/* Free entries not yet promised to a fetched command (one slot stays empty:
 * a queue is full when tail + 1 == head, Base 2.0 3.3.1.5). */
static uint32_t cq_room(const struct emu_cq *cq)
{
	uint32_t used = cq_used(cq) + cq->reserved;

	return used >= cq->size - 1 ? 0 : cq->size - 1 - used;
}

static bool cq_write(struct nvmk_emu *emu, struct emu_cq *cq, const struct nvme_cqe *e,
		     bool bad_phase)
{
	struct nvme_cqe *slot;
	uint16_t st;

	if (cq_used(cq) >= cq->size - 1) {
		nvmk_warn(emu->name, cq->qid, "CQ full, completion for cid %u lost", e->cid);
		return false;
	}
	uint64_t iova = cq->base + (uint64_t)cq->tail * sizeof(*slot);

	slot = emu->cfg.dma(emu->cfg.dma_ctx, iova, sizeof(*slot), true);
	if (!slot) {
		emu_fatal(emu, cq->qid, "CQ memory not translatable");
		return false;
	}
	memcpy(slot, e, offsetof(struct nvme_cqe, status));
	st = (uint16_t)(e->status << 1) | (uint16_t)(bad_phase ? !cq->phase : cq->phase);
	/* Release: the CQE body must be visible before the phase tag that marks it new. */
	__atomic_store_n(&slot->status, st, __ATOMIC_RELEASE);
	emu_dma_done(emu, slot, iova, sizeof(*slot), true);
	if (++cq->tail == cq->size) {
		cq->tail = 0;
		cq->phase ^= 1;
	}
	return true;
}

bool emu_cq_post(struct nvmk_emu *emu, uint16_t sqid, uint16_t cid, uint16_t status, uint32_t dw0,
		 int fault_kind)
{
	struct emu_sq *sq = &emu->sqs[sqid];
	struct emu_cq *cq;
	struct nvme_cqe e = {0};

	if (!sq->valid || atomic_load(&emu->removed))
		return false;
	cq = &emu->cqs[sq->cqid];
	if (!cq->valid)
		return false;
	e.dw0 = dw0;
	e.sqhd = (uint16_t)sq->head;
	e.sqid = sqid;
	e.cid = cid;
	e.status = status & 0x7fff;
	if (emu->tamper.cqe) {
		bool flip = false;
		unsigned copies = emu->tamper.cqe(emu->tamper.ctx, sqid, &e, &flip);

		e.status &= 0x7fff;
		for (unsigned i = 0; i < copies; i++)
			cq_write(emu, cq, &e, flip);
		if (cq->ien)
			emu_irq_signal(emu, cq->iv);
		return copies > 0;
	}
	if (fault_kind == NVMK_FAULT_BAD_CID)
		e.cid = cid ^ 0x8000; /* a CID the host did not submit (with high probability) */
	if (fault_kind == NVMK_FAULT_BAD_SQHD)
		e.sqhd = (uint16_t)(sq->size + 7); /* beyond the end of the SQ */
	if (!cq_write(emu, cq, &e, fault_kind == NVMK_FAULT_BAD_PHASE))
		return false;
	if (fault_kind == NVMK_FAULT_DUPLICATE)
		cq_write(emu, cq, &e, false);
	if (status)
		emu_errlog_record(emu, sqid, cid, status, 0);
	if (cq->ien && fault_kind != NVMK_FAULT_DROP_IRQ)
		emu_irq_signal(emu, cq->iv);
	return true;
}

/* ---- held commands ---- */

void emu_pending_add(struct nvmk_emu *emu, struct emu_cmd *c)
{
	c->next = emu->pending;
	emu->pending = c;
	emu->cqs[emu->sqs[c->sqid].cqid].reserved++;
}

/* Unlink @c (found via @link) and post its completion. */
static void pending_complete(struct nvmk_emu *emu, struct emu_cmd **link, uint16_t status,
			     uint32_t dw0, int fault_kind)
{
	struct emu_cmd *c = *link;
	struct emu_cq *cq = &emu->cqs[emu->sqs[c->sqid].cqid];

	*link = c->next;
	if (cq->reserved)
		cq->reserved--;
	if (c->state == EMU_CMD_AER && emu->nr_aer)
		emu->nr_aer--;
	emu_cq_post(emu, c->sqid, c->cid, status, dw0, fault_kind);
	free(c);
}

uint64_t emu_pending_run(struct nvmk_emu *emu, uint64_t now)
{
	struct emu_cmd **link = &emu->pending;
	uint64_t next = 0;

	while (*link) {
		struct emu_cmd *c = *link;

		if (c->state == EMU_CMD_DELAYED && c->deadline_ns <= now) {
			pending_complete(emu, link, c->status, c->dw0, c->fault_kind);
			continue;
		}
		if (c->state == EMU_CMD_DELAYED && (!next || c->deadline_ns < next))
			next = c->deadline_ns;
		link = &c->next;
	}
	return next;
}

void emu_pending_flush_sq(struct nvmk_emu *emu, uint16_t sqid, uint16_t status)
{
	struct emu_cmd **link = &emu->pending;

	while (*link) {
		if ((*link)->sqid == sqid)
			pending_complete(emu, link, status, 0, 0);
		else
			link = &(*link)->next;
	}
}

/*
 * Preempt and Abort (NVM-CS 1.0 3.2.4 / Base 2.0 8.19.8): commands of a
 * preempted host on that namespace are aborted with Command Aborted due to
 * Preempt and Abort. Only commands the emulator holds (fault-injected delays
 * and hangs) can still be outstanding; everything else has completed.
 */
void emu_preempt_run(struct nvmk_emu *emu)
{
	struct emu_preempt_req req[EMU_MAX_PREEMPT];
	unsigned n;
	bool all;

	pthread_mutex_lock(&emu->aer_lock);
	n = emu->nr_preempt;
	all = emu->preempt_overflow;
	memcpy(req, emu->preempt, n * sizeof(req[0]));
	emu->nr_preempt = 0;
	emu->preempt_overflow = false;
	pthread_mutex_unlock(&emu->aer_lock);
	if (!n && !all)
		return;
	for (unsigned i = 0; i < n || (all && i == 0); i++) {
		struct emu_cmd **link = &emu->pending;

		while (*link) {
			struct emu_cmd *c = *link;
			bool hit = c->sqid != 0 && c->state != EMU_CMD_AER &&
				   (all || (c->nsid == req[i].nsid &&
					    emu_resv_host_matches(&req[i].host, &emu->host)));

			if (hit)
				pending_complete(emu, link, SF_GEN(NVME_SC_ABORT_PREEMPT), 0, 0);
			else
				link = &c->next;
		}
	}
}

/* AER completion: take the oldest outstanding AER (the list is LIFO, so the
 * last one found) and complete it with @dw0. Returns false if none. */
bool emu_aer_complete_one(struct nvmk_emu *emu, uint32_t dw0)
{
	struct emu_cmd **link = &emu->pending, **found = NULL;

	for (; *link; link = &(*link)->next)
		if ((*link)->state == EMU_CMD_AER)
			found = link;
	if (!found)
		return false;
	pending_complete(emu, found, 0, dw0, 0);
	return true;
}

/* Copy SQ entry @idx out of host memory; false when it does not translate. */
static bool sq_entry(struct nvmk_emu *emu, struct emu_sq *sq, uint32_t idx, struct nvme_sqe *out)
{
	uint64_t iova = sq->base + (uint64_t)idx * sizeof(struct nvme_sqe);
	void *p = emu->cfg.dma(emu->cfg.dma_ctx, iova, sizeof(struct nvme_sqe), false);

	if (!p)
		return false;
	memcpy(out, p, sizeof(*out));
	emu_dma_done(emu, p, iova, sizeof(struct nvme_sqe), false);
	return true;
}

bool emu_abort_cmd(struct nvmk_emu *emu, uint16_t sqid, uint16_t cid)
{
	struct emu_cmd **link;
	struct emu_sq *sq;

	/* A command held by fault injection (hung or delayed) is aborted now. */
	for (link = &emu->pending; *link; link = &(*link)->next) {
		struct emu_cmd *c = *link;

		if (c->sqid == sqid && c->cid == cid && c->state != EMU_CMD_AER) {
			pending_complete(emu, link, SF_GEN(NVME_SC_ABORT_REQ), 0, 0);
			return true;
		}
	}
	if (sqid > emu->nq || !emu->sqs[sqid].valid)
		return false;
	/* A command still in the SQ (submitted, not yet fetched) is marked and
	 * completed with Command Abort Requested when fetched (Base 2.0 5.1). */
	sq = &emu->sqs[sqid];
	if (!sq_refresh_tail(emu, sq))
		return false;
	for (uint32_t i = sq->head; i != sq->tail; i = (i + 1) % sq->size) {
		struct nvme_sqe e;

		if (!sq_entry(emu, sq, i, &e))
			return false;
		if (e.cid == cid && sq->nr_abort < EMU_SQ_ABORT_SLOTS) {
			sq->abort_cid[sq->nr_abort++] = cid;
			return true;
		}
	}
	return false;
}

static bool sq_take_abort(struct emu_sq *sq, uint16_t cid)
{
	for (unsigned i = 0; i < sq->nr_abort; i++) {
		if (sq->abort_cid[i] == cid) {
			sq->abort_cid[i] = sq->abort_cid[--sq->nr_abort];
			return true;
		}
	}
	return false;
}

/* ---- doorbells ---- */

static uint64_t dbbuf_iova(struct nvmk_emu *emu, uint64_t base, unsigned idx)
{
	return base + idx * (4ull << emu->cfg.dstrd);
}

/* Load slot @idx of a doorbell buffer with memory order @mo; false when the
 * buffer does not translate. */
static bool dbbuf_load(struct nvmk_emu *emu, uint64_t base, unsigned idx, int mo, uint32_t *v)
{
	uint64_t iova = dbbuf_iova(emu, base, idx);
	uint32_t *p = emu->cfg.dma(emu->cfg.dma_ctx, iova, 4, false);

	if (!p)
		return false;
	*v = __atomic_load_n(p, mo);
	emu_dma_done(emu, p, iova, 4, false);
	return true;
}

/* Store @v into slot @idx of a doorbell buffer with memory order @mo. */
static bool dbbuf_store(struct nvmk_emu *emu, uint64_t base, unsigned idx, uint32_t v, int mo)
{
	uint64_t iova = dbbuf_iova(emu, base, idx);
	uint32_t *p = emu->cfg.dma(emu->cfg.dma_ctx, iova, 4, true);

	if (!p)
		return false;
	__atomic_store_n(p, v, mo);
	emu_dma_done(emu, p, iova, 4, true);
	return true;
}

/*
 * Current doorbell value for doorbell @idx (2*qid SQ tail, 2*qid+1 CQ head).
 * With shadow doorbells (Base 2.0 5.8) the host always updates the shadow
 * buffer first and writes the register only when EventIdx asks for it, so for
 * I/O queues the shadow value is authoritative and a register write is just a
 * wake-up (its value may be older than the shadow by the time it is seen).
 * The admin queue uses the registers only (hosts such as Linux never shadow it).
 */
static bool db_read(struct nvmk_emu *emu, unsigned idx, uint32_t *val, uint32_t *last_shadow)
{
	_Atomic uint32_t *mmio = &emu->db[idx];

	if (!emu->dbbuf_shadow || idx < 2) {
		volatile uint32_t *page = emu_db_page(emu);

		/* A doorbell page holds the register values themselves (the host
		 * stores there; a trapped write of the same value stores there
		 * too): read them where they are, so there is one value only. */
		if (page) {
			*val = emu_db_page_read(emu, page, idx);
			return true;
		}
		/* Acquire: pairs with the release in the register write, so the SQEs
		 * the host wrote before ringing are visible to the fetch that follows. */
		*val = atomic_load_explicit(mmio, memory_order_acquire);
		return true;
	}
	/* Acquire: the host wrote the SQEs (or consumed the CQEs) before the value. */
	if (!dbbuf_load(emu, emu->dbbuf_shadow, idx, __ATOMIC_ACQUIRE, last_shadow)) {
		emu_fatal(emu, (int)(idx / 2), "shadow doorbell buffer not translatable");
		return false;
	}
	*val = *last_shadow;
	return true;
}

static void eventidx_write(struct nvmk_emu *emu, unsigned idx, uint32_t v)
{
	if (!emu->dbbuf_eventidx || idx < 2)
		return;
	/* seq_cst: this store must be ordered before the shadow re-read that
	 * follows it (store->load), or a host update racing with it is missed. */
	if (!dbbuf_store(emu, emu->dbbuf_eventidx, idx, v, __ATOMIC_SEQ_CST))
		emu_fatal(emu, (int)(idx / 2), "EventIdx buffer not translatable");
}

/*
 * Start shadow doorbell slot @idx at @v (and EventIdx likewise, asking for
 * the first update): a queue created, or existing when Doorbell Buffer Config
 * arrives, must not pick up a stale value a previous queue left in the host's
 * buffer. Done before the command that causes it completes, so it cannot race
 * with the host's own updates.
 */
void emu_dbbuf_init_slot(struct nvmk_emu *emu, unsigned idx, uint32_t v)
{
	if (!emu->dbbuf_shadow || idx < 2)
		return;
	/* Release: published with (before) the completion of the causing command.
	 * Both buffers were checked by Doorbell Buffer Config; a failure here means
	 * the host unmapped them since. */
	if (!dbbuf_store(emu, emu->dbbuf_shadow, idx, v, __ATOMIC_RELEASE) ||
	    !dbbuf_store(emu, emu->dbbuf_eventidx, idx, v, __ATOMIC_RELEASE)) {
		emu_fatal(emu, (int)(idx / 2), "doorbell buffers not translatable");
		return;
	}
	if (idx & 1) {
		emu->cqs[idx / 2].last_shadow = v;
		emu->cqs[idx / 2].eventidx = v;
	} else {
		emu->sqs[idx / 2].last_shadow = v;
		emu->sqs[idx / 2].eventidx = v;
	}
}

/*
 * EventIdx policy (Base 2.0 5.8). The host writes the doorbell register iff
 * its update from old to new passes EventIdx, (new - EventIdx - 1) mod 2^16 <
 * (new - old) mod 2^16, that is iff EventIdx is one of old .. new - 1. The
 * values a queue's doorbell takes stay below its size, so an EventIdx the
 * host cannot reach before the controller looks again keeps it from writing:
 *  - SQ tail: the host can fill the SQ up to one entry before the head the
 *    controller fetched from, so head - 1 is out of its reach. While the
 *    worker is awake it reads the shadow tails itself (every pass, and while
 *    it spins) and leaves EventIdx there: a busy queue costs the host no
 *    register write. Only before it sleeps does it ask (emu_db_arm: EventIdx
 *    = the tail it has seen, so the next submission writes the register).
 *  - CQ head: the controller needs the head only when it waits for room
 *    (cq->blocked: EventIdx = head, the next update writes); otherwise head - 1,
 *    which the host cannot pass before the controller posts a lap of entries.
 * EventIdx is written again only when the host could come within half a
 * queue of the value left there (it is read by the host on every doorbell,
 * so a store per pass would move that cache line every pass); an EventIdx
 * reached early costs a register write, never a lost update.
 */
static void sq_eventidx(struct nvmk_emu *emu, struct emu_sq *sq, bool ask)
{
	uint32_t v = ask ? sq->tail : (sq->head + sq->size - 1) % sq->size;

	if (!ask && sq->eventidx < sq->size &&
	    (sq->eventidx + sq->size - sq->tail) % sq->size >= sq->size / 2)
		return; /* still out of reach (an "ask" value is at the tail: 0) */
	if (v == sq->eventidx)
		return;
	sq->eventidx = v;
	eventidx_write(emu, 2u * sq->qid, v);
}

/* ---- command fetch and dispatch ---- */

static void cmd_hold(struct nvmk_emu *emu, uint16_t sqid, const struct nvme_sqe *sqe,
		     enum emu_cmd_state st, uint16_t status, uint32_t dw0, uint64_t deadline,
		     int fault_kind)
{
	struct emu_cmd *c = calloc(1, sizeof(*c));

	if (!c) {
		/* Cannot hold it: complete now rather than lose it. */
		emu_cq_post(emu, sqid, sqe->cid, status, dw0, fault_kind);
		return;
	}
	c->state = st;
	c->sqid = sqid;
	c->cid = sqe->cid;
	c->opc = sqe->opc;
	c->nsid = sqe->nsid;
	c->status = status;
	c->dw0 = dw0;
	c->deadline_ns = deadline;
	c->fault_kind = fault_kind;
	emu_pending_add(emu, c);
}

static void cmd_process(struct nvmk_emu *emu, struct emu_sq *sq, const struct nvme_sqe *sqe)
{
	struct nvmk_emu_fault f;
	struct emu_result r;

	atomic_fetch_add_explicit(&emu->cmd_count[sq->qid == 0][sqe->opc], 1, memory_order_relaxed);
	if (emu->tamper.fetched)
		emu->tamper.fetched(emu->tamper.ctx, sq->qid, sqe);
	/* Aborted while still in the SQ: completes before any fault applies. */
	if (sq_take_abort(sq, sqe->cid)) {
		emu_cq_post(emu, sq->qid, sqe->cid, SF_GEN(NVME_SC_ABORT_REQ), 0, 0);
		return;
	}
	/* no rule installed (the common case): no fault_lock per command */
	f = atomic_load_explicit(&emu->faults_armed, memory_order_acquire)
		? emu_fault_match(emu, sq->qid, sqe->opc)
		: (struct nvmk_emu_fault){0};
	switch (f.kind) {
	case NVMK_FAULT_FATAL:
		emu_fatal(emu, sq->qid, "fault injection on fetch");
		return;
	case NVMK_FAULT_REMOVE:
		nvmk_emu_surprise_remove(emu);
		return;
	case NVMK_FAULT_HANG:
		nvmk_debug(emu->name, sq->qid, "fault: hanging cid %u opc 0x%02x", sqe->cid,
			   sqe->opc);
		cmd_hold(emu, sq->qid, sqe, EMU_CMD_HUNG, 0, 0, 0, 0);
		return;
	default:
		break;
	}
	if (f.kind == NVMK_FAULT_STATUS) {
		r = (struct emu_result){.status = f.status};
	} else if (sq->qid == 0) {
		r = emu_admin_exec(emu, sqe);
	} else {
		r = emu_io_exec(emu, sq->qid, sqe);
	}
	if (r.deferred)
		return;
	if (f.kind == NVMK_FAULT_DELAY) {
		cmd_hold(emu, sq->qid, sqe, EMU_CMD_DELAYED, r.status, r.dw0,
			 emu_now_ns() + f.delay_us * 1000ull, 0);
		return;
	}
	emu_cq_post(emu, sq->qid, sqe->cid, r.status, r.dw0, (int)f.kind);
}

/*
 * An Invalid Doorbell Write Value (Base 2.0 3.1.3.21/22 and Figure 147): the
 * write is ignored, logged once per queue, and reported as an error event
 * (type 0, info 01h, Error Information log) until a valid value arrives.
 */
static void db_invalid(struct nvmk_emu *emu, bool *flag, int qid, const char *what, uint32_t v,
		       uint32_t size)
{
	if (*flag)
		return;
	*flag = true;
	nvmk_warn(emu->name, qid, "invalid %s doorbell value %u (queue size %u) ignored", what, v,
		  size);
	emu_aer_event(emu, NVME_AER_TYPE_ERROR, 0x01, NVME_LOG_ERROR);
}

/* Pick up the latest SQ tail (MMIO or shadow doorbell); false on a fatal error. */
static bool sq_refresh_tail(struct nvmk_emu *emu, struct emu_sq *sq)
{
	uint32_t tail = sq->tail;

	if (!db_read(emu, 2u * sq->qid, &tail, &sq->last_shadow))
		return false;
	if (tail >= sq->size) {
		db_invalid(emu, &sq->bad_db, sq->qid, "SQ tail", tail, sq->size);
	} else {
		sq->bad_db = false;
		sq->tail = tail;
	}
	return true;
}

/* After EventIdx was written: did the host move the shadow tail meanwhile? */
static bool sq_shadow_moved(struct nvmk_emu *emu, struct emu_sq *sq)
{
	uint32_t v;

	if (!emu->dbbuf_shadow || sq->qid == 0)
		return false;
	/* seq_cst: pairs with the seq_cst EventIdx store (see eventidx_write). */
	return dbbuf_load(emu, emu->dbbuf_shadow, 2u * sq->qid, __ATOMIC_SEQ_CST, &v) &&
	       v != sq->last_shadow;
}

static bool sq_process(struct nvmk_emu *emu, struct emu_sq *sq)
{
	struct emu_cq *cq = &emu->cqs[sq->cqid];
	unsigned n = 0;

	if (!sq_refresh_tail(emu, sq))
		return false;
	while (sq->head != sq->tail && n < EMU_BATCH) {
		struct nvme_sqe sqe;

		if (!cq_room(cq)) {
			/* Host has not consumed completions yet. */
			if (cq_wait_room(emu, cq))
				n++; /* shadow head moved meanwhile: go round again */
			break;
		}
		if (!sq_entry(emu, sq, sq->head, &sqe)) {
			emu_fatal(emu, sq->qid, "SQ memory not translatable");
			return false;
		}
		sq->head = (sq->head + 1) % sq->size;
		n++;
		emu->io_fetched += sq->qid != 0;
		cmd_process(emu, sq, &sqe);
		if (atomic_load(&emu->fatal) || atomic_load(&emu->removed) || !sq->valid)
			return true;
	}
	if (sq->qid)
		sq_eventidx(emu, sq, false);
	return n > 0 || sq_shadow_moved(emu, sq);
}

/* CQ head EventIdx (policy above sq_eventidx): while blocked the head itself,
 * so the next update rings; otherwise one behind the head, so the host rings
 * at most once per lap of the queue. */
static void cq_eventidx(struct nvmk_emu *emu, struct emu_cq *cq)
{
	uint32_t v = cq->blocked ? cq->head : (cq->head + cq->size - 1) % cq->size;

	if (!cq->blocked && cq->eventidx < cq->size && cq->eventidx != cq->head &&
	    (cq->eventidx + cq->size - cq->head) % cq->size >= cq->size / 2)
		return; /* still out of reach */
	if (v == cq->eventidx || !emu->dbbuf_eventidx || cq->qid == 0)
		return;
	cq->eventidx = v;
	eventidx_write(emu, 2u * cq->qid + 1u, v);
}

/* The CQ has no room: ask for a doorbell, then look once more at the shadow
 * head in case the host moved it before it could see the request. */
static bool cq_wait_room(struct nvmk_emu *emu, struct emu_cq *cq)
{
	uint32_t v;

	cq->blocked = true;
	if (!emu->dbbuf_shadow || cq->qid == 0)
		return false;
	cq_eventidx(emu, cq);
	/* seq_cst: pairs with the seq_cst EventIdx store just made. */
	return dbbuf_load(emu, emu->dbbuf_shadow, 2u * cq->qid + 1u, __ATOMIC_SEQ_CST, &v) &&
	       v != cq->last_shadow;
}

static void cq_update_head(struct nvmk_emu *emu, struct emu_cq *cq)
{
	uint32_t head = cq->head;

	if (!db_read(emu, 2u * cq->qid + 1u, &head, &cq->last_shadow))
		return;
	/* The new head may only move forward over entries already posted. */
	if (head >= cq->size ||
	    (head + cq->size - cq->head) % cq->size > (cq->tail + cq->size - cq->head) % cq->size) {
		db_invalid(emu, &cq->bad_db, cq->qid, "CQ head", head, cq->size);
		return;
	}
	cq->bad_db = false;
	cq->head = head;
	if (cq_room(cq))
		cq->blocked = false;
	cq_eventidx(emu, cq);
}

/* The shadow doorbell page (or the slots of it that translate as one piece:
 * a buffer is one memory page, Base 2.0 5.8): *@n gets the number of slots.
 * NULL if nothing translates. Release with emu_dma_done(.., *@len, ..). */
static uint32_t *dbbuf_span(struct nvmk_emu *emu, uint64_t base, bool write, unsigned *n,
			    size_t *len)
{
	size_t stride = 4u << emu->cfg.dstrd;

	*n = 2u * (emu->nq + 1u);
	if ((size_t)*n * stride > emu->page_size)
		*n = (unsigned)(emu->page_size / stride);
	*len = (size_t)*n * stride;
	return emu->cfg.dma(emu->cfg.dma_ctx, base, *len, write);
}

/* Has the shadow value of doorbell @idx moved from @last? (@mo: memory order) */
static bool shadow_moved(struct nvmk_emu *emu, const uint32_t *span, unsigned n, unsigned idx,
			 uint32_t last, int mo)
{
	uint32_t v;

	if (idx < n)
		return __atomic_load_n(&span[(size_t)idx << emu->cfg.dstrd], mo) != last;
	return dbbuf_load(emu, emu->dbbuf_shadow, idx, mo, &v) && v != last;
}

static bool shadows_moved(struct nvmk_emu *emu, int mo)
{
	unsigned n;
	size_t len;
	uint32_t *span;
	bool moved = false;

	if (!emu->dbbuf_shadow)
		return false;
	span = dbbuf_span(emu, emu->dbbuf_shadow, false, &n, &len);
	if (!span)
		return true; /* let a pass find out (and report) what is wrong */
	for (unsigned q = 1; q <= emu->nq && !moved; q++) {
		if (emu->sqs[q].valid)
			moved = shadow_moved(emu, span, n, 2u * q, emu->sqs[q].last_shadow, mo);
		if (!moved && emu->cqs[q].valid && emu->cqs[q].blocked)
			moved =
			    shadow_moved(emu, span, n, 2u * q + 1u, emu->cqs[q].last_shadow, mo);
	}
	emu_dma_done(emu, span, emu->dbbuf_shadow, len, false);
	return moved;
}

bool emu_db_moved(struct nvmk_emu *emu)
{
	/* Relaxed: the pass that follows reads the values again with acquire
	 * (db_read) before it reads the queue entries published with them. */
	if (emu->enabled && !atomic_load_explicit(&emu->fatal, memory_order_relaxed) &&
	    !atomic_load_explicit(&emu->removed, memory_order_relaxed) &&
	    shadows_moved(emu, __ATOMIC_RELAXED))
		return true;
	return emu_db_page(emu) && emu_db_page_scan(emu);
}

bool emu_db_arm(struct nvmk_emu *emu)
{
	/* a failed or removed controller touches no host memory */
	if (!emu->dbbuf_eventidx || !emu->enabled || atomic_load(&emu->fatal) ||
	    atomic_load(&emu->removed))
		return false;
	for (unsigned q = 1; q <= emu->nq; q++)
		if (emu->sqs[q].valid)
			sq_eventidx(emu, &emu->sqs[q], true);
	/* seq_cst loads after the seq_cst EventIdx stores: a host that stored a
	 * new shadow value before it could see the request is seen here. */
	return shadows_moved(emu, __ATOMIC_SEQ_CST);
}

bool emu_queues_process(struct nvmk_emu *emu)
{
	bool busy = false;

	for (unsigned q = 0; q <= emu->nq; q++)
		if (emu->cqs[q].valid)
			cq_update_head(emu, &emu->cqs[q]);
	/* Round robin (CAP.AMS = 0): admin first, then every I/O SQ, each at most
	 * EMU_BATCH commands per round so no queue starves another. */
	for (unsigned q = 0; q <= emu->nq; q++) {
		if (atomic_load(&emu->fatal) || atomic_load(&emu->removed))
			break;
		if (emu->sqs[q].valid)
			busy |= sq_process(emu, &emu->sqs[q]);
	}
	return busy;
}

/* ---- inline execution (inline.c; exec_lock held) ---- */

bool emu_sq_run(struct nvmk_emu *emu, uint16_t qid)
{
	struct emu_sq *sq = &emu->sqs[qid];
	struct emu_cq *cq;

	if (qid > emu->nq || !sq->valid)
		return false;
	cq = &emu->cqs[sq->cqid];
	if (!cq->valid)
		return false;
	cq_update_head(emu, cq);
	/* EMU_BATCH per sq_process, as a worker pass does; bounded to a lap of
	 * the queue so a writer never runs without end (what is left goes to
	 * the worker). */
	for (uint32_t done = 0; done < sq->size; done += EMU_BATCH) {
		if (!sq_process(emu, sq))
			break;
		if (atomic_load(&emu->fatal) || atomic_load(&emu->removed) || !sq->valid)
			return false;
	}
	/* Left over because the CQ is full: the next CQ head doorbell runs it
	 * (emu_cq_run, or the worker when that write cannot run inline). */
	return sq->head == sq->tail || cq->blocked;
}

bool emu_cq_run(struct nvmk_emu *emu, uint16_t qid)
{
	struct emu_cq *cq = &emu->cqs[qid];
	bool blocked, ok = true;

	if (qid > emu->nq || !cq->valid)
		return false;
	/* before the new head: whether SQs were waiting for room */
	blocked = cq->blocked;
	cq_update_head(emu, cq);
	if (!blocked)
		return true;
	/* SQs waited for room in this CQ (Base 2.0 3.3.1.5: a full CQ holds
	 * back the commands whose completions would go there). */
	for (unsigned q = 1; q <= emu->nq; q++)
		if (emu->sqs[q].valid && emu->sqs[q].cqid == qid)
			ok &= emu_sq_run(emu, (uint16_t)q);
	return ok;
}

/* ---- queue creation / deletion (Base 2.0 5.4 - 5.7) ---- */

uint16_t emu_cq_create(struct nvmk_emu *emu, uint16_t qid, uint32_t size, uint64_t base, bool ien,
		       uint16_t iv)
{
	struct emu_cq *cq = &emu->cqs[qid];

	*cq = (struct emu_cq){.valid = true,
			      .qid = qid,
			      .size = size,
			      .base = base,
			      .ien = ien,
			      .iv = iv,
			      .phase = 1};
	atomic_store(emu_cq_db(emu, qid), 0);
	emu_db_page_zero(emu, 2u * qid + 1u);
	emu_dbbuf_init_slot(emu, 2u * qid + 1u, 0);
	emu->queues_created = true;
	return 0;
}

uint16_t emu_sq_create(struct nvmk_emu *emu, uint16_t qid, uint16_t cqid, uint32_t size,
		       uint64_t base)
{
	struct emu_sq *sq = &emu->sqs[qid];

	*sq = (struct emu_sq){.valid = true, .qid = qid, .cqid = cqid, .size = size, .base = base};
	atomic_store(emu_sq_db(emu, qid), 0);
	emu_db_page_zero(emu, 2u * qid);
	emu_dbbuf_init_slot(emu, 2u * qid, 0);
	emu->cqs[cqid].nr_sq++;
	emu->queues_created = true;
	return 0;
}

uint16_t emu_sq_delete(struct nvmk_emu *emu, uint16_t qid)
{
	struct emu_sq *sq = &emu->sqs[qid];
	struct emu_cq *cq = &emu->cqs[sq->cqid];
	uint32_t tail = sq->tail;

	/* Base 2.0 5.6: commands of the SQ are aborted with Command Aborted due
	 * to SQ Deletion before the Delete completes: held ones, and the ones
	 * submitted but not fetched (as far as the CQ has room). */
	emu_pending_flush_sq(emu, qid, SF_GEN(NVME_SC_ABORT_SQ_DELETED));
	if (db_read(emu, 2u * qid, &tail, &sq->last_shadow) && tail < sq->size)
		sq->tail = tail;
	while (sq->head != sq->tail && cq_room(cq)) {
		struct nvme_sqe e;
		bool ok = sq_entry(emu, sq, sq->head, &e);

		sq->head = (sq->head + 1) % sq->size;
		if (ok)
			emu_cq_post(emu, qid, e.cid, SF_GEN(NVME_SC_ABORT_SQ_DELETED), 0, 0);
	}
	sq->valid = false;
	atomic_store(emu_sq_db(emu, qid), EMU_DB_NOQ);
	if (cq->nr_sq)
		cq->nr_sq--;
	return 0;
}

uint16_t emu_cq_delete(struct nvmk_emu *emu, uint16_t qid)
{
	if (emu->cqs[qid].nr_sq)
		return SF_CMD(NVME_SC_INVALID_QUEUE_DELETION);
	emu->cqs[qid].valid = false;
	atomic_store(emu_cq_db(emu, qid), EMU_DB_NOQ);
	return 0;
}

void emu_db_reset(struct nvmk_emu *emu)
{
	/* The admin doorbells belong to the admin queues, which exist whenever
	 * the controller is enabled; they are not checked. */
	atomic_store(emu_sq_db(emu, 0), 0);
	atomic_store(emu_cq_db(emu, 0), 0);
	for (unsigned q = 1; q <= emu->nq; q++) {
		atomic_store(emu_sq_db(emu, q), EMU_DB_NOQ);
		atomic_store(emu_cq_db(emu, q), EMU_DB_NOQ);
	}
	/* A doorbell page is zeroed as the registers are (a reset, or a new
	 * controller): the host starts again from 0 and so does the scan. */
	for (unsigned i = 0; i < 2u * (emu->nq + 1u); i++)
		emu_db_page_zero(emu, i);
	atomic_store(&emu->stray_db_logged, false);
}

void emu_queues_reset(struct nvmk_emu *emu)
{
	struct emu_cmd *c;

	/* Controller reset: outstanding commands are dropped, never completed. */
	while ((c = emu->pending)) {
		emu->pending = c->next;
		free(c);
	}
	emu->nr_aer = 0;
	memset(emu->sqs, 0, (emu->nq + 1u) * sizeof(*emu->sqs));
	memset(emu->cqs, 0, (emu->nq + 1u) * sizeof(*emu->cqs));
	emu_db_reset(emu);
	emu->dbbuf_shadow = 0;
	emu->dbbuf_eventidx = 0;
	emu->queues_created = false;
}
