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

#include <string.h>

#include "driver/drv.h"

/* ---- trackers ---- */

/*
 * The fast-path primitives, one definition for every submit path (the
 * exclusive straight paths and the general ones): take a tracker
 * (drv_trk_take), arm it (drv_trk_arm), write the SQE at drv_q_slot, make
 * it visible (drv_q_commit).
 */

/* Pop a free tracker and give its CID a new generation in the upper bits:
 * a late or forged CQE carrying the previous use's CID no longer matches.
 * The tracker stays FREE (no CQE is accepted for it) until drv_trk_arm;
 * drv_trk_put gives it back unarmed. NULL when all are in use. */
drv_inline struct drv_tracker *drv_trk_take(struct drv_queue *q)
{
	uint16_t i = q->free_head;
	struct drv_tracker *t;

	if (drv_unlikely(i == DRV_TRK_NONE))
		return NULL;
	t = &q->trk[i];
	q->free_head = t->next_free;
	q->nbusy++;
	t->cid = (uint16_t)(t->cid + q->gen_inc);
	return t;
}

/* Arm @t for a command @opc on the device: ACTIVE under its CID (one store
 * of the key: from now on its CQE is accepted), flags cleared with the
 * opcode (one store), the completion. The key clears DRV_TRK_PART: t->parent
 * is then not looked at, and need not be cleared. */
drv_inline void drv_trk_arm(struct drv_tracker *t, uint8_t opc, nvmk_cpl_fn cb, void *cb_arg)
{
	t->key = DRV_TRK_KEY_ACTIVE | t->cid;
	t->meta = (uint32_t)opc << 8; /* flags = 0, opc */
	t->cb = cb;
	t->cb_arg = cb_arg;
}

/* The array submits (ns_batch.c, io_handle.c) take trackers in a loop of
 * their own (the list head in a register, no empty test) and account for
 * them once: how many are free, and @k taken. The free-list count's only
 * readers and writer outside drv_trk_take/drv_trk_put, so that a change
 * of that count (free or busy) is made here. */
drv_inline uint32_t drv_trk_nfree(const struct drv_queue *q)
{
	return q->ntrk - q->nbusy;
}

drv_inline void drv_trk_took(struct drv_queue *q, uint32_t k)
{
	q->nbusy += k;
}

/* drv_trk_take for the general paths, which set fields one by one before
 * the state: flags and parent cleared. */
drv_inline struct drv_tracker *drv_trk_get(struct drv_queue *q)
{
	struct drv_tracker *t = drv_trk_take(q);

	if (drv_unlikely(t == NULL))
		return NULL;
	t->flags = 0;
	t->part = 0;
	t->parent = NULL;
	return t;
}

drv_inline void drv_trk_put(struct drv_queue *q, struct drv_tracker *t)
{
	t->state = TRK_FREE;
	t->next_free = q->free_head;
	q->free_head = t->idx;
	q->nbusy--;
}

/* Complete @t (exactly once): free it, then call the callback, so that the
 * callback may submit again. A part of a split request completes its parent
 * after the last part, with the first error. */
drv_inline void drv_trk_complete(struct drv_queue *q, struct drv_tracker *t, int err,
				 uint16_t status, uint32_t dw0)
{
	struct nvmk_cpl cpl;
	/* parent is meaningful only on a part (the fast submits do not clear it) */
	struct drv_tracker *p = t->part ? t->parent : NULL;
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

/* The register write of a shadow doorbell the EventIdx asked for (out of
 * line: rare while the controller is polling its shadow buffer). */
void drv_db_ring_shadow_reg(struct drv_queue *q, bool cq, uint32_t val);

/* The doorbell register write of drv_db_ring (no shadow doorbell): record
 * @val as given, then write it. */
drv_inline void drv_db_ring_reg(struct drv_queue *q, bool cq, uint32_t val)
{
	if (cq)
		q->cq_db_head = val;
	else
		q->sq_db_tail = val;
	/* release: do not reorder SQE stores / CQE loads with the doorbell
	 * store. (TSan does not model fences and GCC refuses them there; its
	 * builds reach the device through the backing's ops, whose own
	 * atomics order the hand-over.) */
	DRV_WMB();
	/* nvmk_backing_write32 with its choice made at queue setup
	 * (drv_queue_set_doorbells): one load tells the mapped register from
	 * the backing's ops, whose function is cached in the queue too */
	volatile uint32_t *reg = cq ? q->cq_db_reg : q->sq_db_reg;

	if (reg)
		*reg = val;
	else
		q->db_write32(q->b, cq ? q->cq_db : q->sq_db, val);
}

/* The shadow doorbell of drv_db_ring (Base 2.0 5.8; the queue has one):
 * inline, at each call site @cq is a constant, so only one queue's fields
 * are loaded. */
drv_inline void drv_db_ring_shadow(struct drv_queue *q, bool cq, uint32_t val)
{
	/* a relaxed atomic load (the queue's own field, no ordering needed)
	 * so that GCC does not merge it with drv_db_ring's test into a load
	 * kept in a register on the register path */
	uint32_t *shadow = __atomic_load_n(cq ? &q->sdb_cq : &q->sdb_sq, __ATOMIC_RELAXED);
	uint32_t old = cq ? q->cq_db_head : q->sq_db_tail;
	uint16_t ev;

	if (cq)
		q->cq_db_head = val;
	else
		q->sq_db_tail = val;
	/* seq_cst store + seq_cst load: queue entries before the shadow
	 * value (release), and the shadow store before the EventIdx load
	 * (store-load order; pairs with the controller's EventIdx store
	 * followed by its shadow re-read) */
	__atomic_store_n(shadow, val, __ATOMIC_SEQ_CST);
	/* the EventIdx slot lies one page after the shadow slot
	 * (drv_q_dbbuf_attach): no second pointer to load */
	ev = (uint16_t)__atomic_load_n(shadow + DRV_PAGE_SIZE / sizeof(*shadow), __ATOMIC_SEQ_CST);
	/* The register is due when the EventIdx lies in [old, new):
	 * "event - old < new - old" in 16-bit arithmetic, which errs
	 * towards writing the register at a wrap. The same test as
	 * "new - event - 1 < new - old" for every value (one
	 * instruction less: no new - 1). */
	if (drv_likely((uint16_t)(ev - old) >= (uint16_t)(val - old)))
		return;
	drv_db_ring_shadow_reg(q, cq, val);
}

/*
 * Give @val (new SQ tail, or CQ head when @cq) to the device and record it
 * as given. The record is written before the register write, so that
 * nothing needs to live across that (possibly indirect) call.
 */
drv_inline void drv_db_ring(struct drv_queue *q, bool cq, uint32_t val)
{
	/* unlikely: the register write falls through (the pointer is
	 * loaded again inside: a compare with memory outside) */
	if (drv_unlikely((cq ? q->sdb_cq : q->sdb_sq) != NULL))
		drv_db_ring_shadow(q, cq, val);
	else
		drv_db_ring_reg(q, cq, val);
}

drv_inline void drv_q_ring_sq(struct drv_queue *q)
{
	if (q->sq_tail != q->sq_db_tail)
		drv_db_ring(q, false, q->sq_tail);
}

drv_inline void drv_q_ring_cq(struct drv_queue *q)
{
	if (q->cq_head != q->cq_db_head)
		drv_db_ring(q, true, q->cq_head);
}

/* ---- submission ---- */

/* The SQ slot the next command goes to (the tail is always < depth);
 * *@tail gets its index, for drv_q_commit_at. */
drv_inline struct nvme_sqe *drv_q_tail_slot(struct drv_queue *q, uint32_t *tail)
{
	*tail = q->sq_tail;
	return &q->sq[*tail];
}

/* Store 8 bytes at @p (an SQE field pair: CDW0 + NSID, CDW10-11), one
 * store instead of two. */
drv_inline void drv_sqe_put64(void *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* The SQ slot @ahead places after the tail (commands written together). */
drv_inline struct nvme_sqe *drv_q_slot(struct drv_queue *q, uint32_t ahead)
{
	uint32_t i = q->sq_tail + ahead;

	if (i >= q->depth)
		i -= q->depth;
	return &q->sq[i];
}

/* Make @n (>= 1) commands written from slot @tail (the tail before them,
 * as drv_q_tail_slot gave it: no reload after the SQE stores) visible:
 * move the tail and ring, unless completions are being processed or a
 * batch is open (then the doorbell is written once at its end). The tail
 * moved, so the doorbell is due without comparing it with the last value
 * given. */
drv_inline void drv_q_commit_at(struct drv_queue *q, uint32_t tail, uint32_t n)
{
	/* one command (the common case, @n is a constant there): compare
	 * with the depth, no subtraction kept for a conditional move */
	if (n == 1) {
		tail = tail + 1u == q->depth ? 0 : tail + 1u;
	} else {
		tail += n;
		if (tail >= q->depth)
			tail -= q->depth;
	}
	q->sq_tail = tail;
	/* One test for the common case: no batch open, no completions being
	 * processed and no shadow doorbell: the register write. Otherwise,
	 * unless the doorbell is deferred, the SQ has a shadow doorbell
	 * (sq_shadow: the one other reason for a nonzero sq_db_defer). */
	if (drv_likely(q->sq_db_defer == 0))
		drv_db_ring_reg(q, false, tail);
	else if (!q->batching)
		drv_db_ring_shadow(q, false, tail);
}

/* drv_q_commit_at from the current tail. */
drv_inline void drv_q_commit(struct drv_queue *q, uint32_t n)
{
	drv_q_commit_at(q, q->sq_tail, n);
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

/* A success without data: what drv_q_drain gives the callback when the
 * CQE's Dword 0 is 0 (qpair.c). */
extern const struct nvmk_cpl drv_cpl_ok;

void drv_queue_bad_cqe(struct drv_queue *q, const struct nvme_cqe *e, const char *why);
/* Out of line (cold): log why @e (status @st) was refused, ring the CQ
 * head, return -EIO. */
int drv_queue_reject_cqe(struct drv_queue *q, const struct nvme_cqe *e, uint16_t st);
/* Out of line: completion of a split part, an error status, a timed-out
 * command, a Dword 0 other than zero: everything drv_q_drain's straight
 * path does not handle. */
void drv_trk_complete_cqe(struct drv_queue *q, struct drv_tracker *t, uint16_t sf, uint32_t dw0);
/* Out of line: a CQE whose tracker key did not match ACTIVE | cid or whose
 * Dword 2 was out of range: a part of a split request (valid: completed, 0)
 * or an invalid entry (drv_queue_reject_cqe: -EIO). */
int drv_q_cqe_other(struct drv_queue *q, const struct nvme_cqe *e, struct drv_tracker *t,
		    uint16_t st, uint16_t cid, uint32_t hd_id);
/* Out of line: a new CQE (phase tag tested) whose Status Field is not
 * zero: consumed, validated and completed as drv_q_drain does (0), or
 * refused (drv_queue_reject_cqe: -EIO). */
int drv_q_cqe_status(struct drv_queue *q, const struct nvme_cqe *e, uint16_t st);

/* The CQ head consumed so far to the device, if it moved; with @lazy the
 * lazy doorbell's credit starts again (drv_q_drain_impl). */
drv_inline void drv_q_cq_give_back(struct drv_queue *q, bool lazy)
{
	if (q->cq_head != q->cq_db_head) {
		if (lazy)
			q->cq_db_credit = (int32_t)q->cq_db_lazy;
		drv_db_ring(q, true, q->cq_head);
	}
}

/*
 * Drain up to @max (0 = all) new completions. Every CQE is validated before
 * it is believed (Base 2.0 4.6): CID index in range, a command outstanding
 * under that CID with the same generation, SQID ours, SQHD inside the queue.
 * Return: number completed, or -EIO after an invalid CQE (nothing is
 * completed for it; the caller fails the controller).
 *
 * The common case (success with Dword 0 zero, not part of a split request)
 * is a straight line: no copy of the CQE, two compares validate it (the
 * first one also sends split parts out of line, see DRV_TRK_PART), one
 * tests status and Dword 0 together, the tracker goes back on the free list
 * and the callback is called directly with the shared constant completion;
 * anything else leaves through an out-of-line function.
 *
 * The CQ head doorbell: a poll that saw the CQ empty (it read the slot
 * after the last completion, or found nothing) always gives back the head
 * consumed so far: the caller may wait next. With @lazy (the fast poll, a
 * constant at each call site) a poll that stopped before the empty slot
 * (@max reached, or nothing outstanding any more: every poll at QD 1)
 * rings only once q->cq_db_lazy completions are unacknowledged. The host
 * owes no doorbell per entry: one CQ head doorbell write may acknowledge
 * several entries (Base 2.0 3.3.1.2), and a device that finds the CQ full
 * holds its completions back until the head moves (3.3.1.2.1; full as in
 * 3.3.1.5). It never waits for long: with fewer than depth - 1
 * unacknowledged (drv_qp_cq_db_policy), a full CQ holds entries the host
 * has not consumed yet, and consuming them rings.
 */
drv_inline int drv_q_drain_impl(struct drv_queue *q, unsigned max, bool lazy)
{
	int n = 0;

	for (;;) {
		uint32_t head = q->cq_head; /* read once: the acquire below fences reloads */
		const struct nvme_cqe *e = &q->cq[head];
		/* acquire: the phase tag before the rest of the entry */
		uint16_t st = __atomic_load_n(&e->status, __ATOMIC_ACQUIRE);
		struct drv_tracker *t;
		nvmk_cpl_fn cb;
		uint32_t hd_id; /* SQHD | SQID << 16 (Dword 2), one load */
		uint32_t dw0;
		uint16_t cid;
		void *arg;

		/* One compare: the phase tag is this pass's and the Status
		 * Field (bits 15:1) is zero. Anything else is out of line: the
		 * empty slot (the phase tag still the previous pass's) or a
		 * completion with an error status. */
		if (drv_unlikely(st != q->phase)) {
			int rc;

			if ((st & 1u) != q->phase)
				break;
			rc = drv_q_cqe_status(q, e, st);
			if (rc < 0)
				return rc;
			n++;
			goto next;
		}
		n++; /* counted here, once for every way on */
		cid = e->cid;
		memcpy(&hd_id, &e->sqhd, sizeof(hd_id));
		dw0 = e->dw0;
		if (++head == q->depth) {
			head = 0;
			/* the phase flips: st is the tag just tested (its
			 * Status Field is zero), so no register keeps it */
			q->phase = (uint16_t)(st ^ 1u);
		}
		q->cq_head = head;
		t = &q->trk[cid & q->idx_mask]; /* the array covers every index the mask allows */
		/* Two compares validate the entry. The key is ACTIVE | cid only
		 * while a command with this CID, generation included, is on the
		 * device and is not a split part (those carry DRV_TRK_PART in
		 * the key and are validated again out of line). Dword 2 minus
		 * (qid << 16) is below the depth only when SQID is ours and SQHD
		 * is inside the queue (depth <= 65536; any other SQID lands at
		 * 65536 or above, or wraps). */
		if (drv_unlikely(t->key != (DRV_TRK_KEY_ACTIVE | cid) ||
				 hd_id - q->sqid_key >= q->depth)) {
			int rc = drv_q_cqe_other(q, e, t, st, cid, hd_id);

			if (rc < 0)
				return rc;
		} else {
			q->sq_head = (uint16_t)hd_id;
			/* Dword 0 zero (every Read and Write: it is reserved
			 * for them): the callback gets the shared constant, no
			 * structure is built */
			if (drv_likely(dw0 == 0)) {
				cb = t->cb;
				arg = t->cb_arg;
				/* free before the callback, so that it may submit again */
				drv_trk_put(q, t);
				/* Nothing outstanding any more: no valid entry
				 * can follow, so the empty slot after the last
				 * completion is not looked at (a phase test
				 * saved per poll at low queue depth). Tested
				 * before the callback, on the count the put
				 * just moved (no reload after the call): what
				 * the callback submits is not rung before this
				 * drain ends (every caller raises q->batching
				 * around it), so it cannot have completed yet.
				 * An invalid entry there is still found: every
				 * call looks at the head first. */
				if (q->nbusy == 0) {
					if (drv_likely(cb != NULL))
						cb(arg, &drv_cpl_ok);
					goto stopped;
				}
				if (drv_likely(cb != NULL))
					cb(arg, &drv_cpl_ok);
				if ((unsigned)n == max)
					goto stopped;
				continue;
			}
			drv_trk_complete_cqe(q, t, 0, dw0);
		}
	next:
		/* the out-of-line completions: as above, after the callback */
		if ((unsigned)n == max || q->nbusy == 0)
			goto stopped;
	}
	/* the CQ was seen empty: give back everything consumed */
	drv_q_cq_give_back(q, lazy);
	return n;
stopped:
	/* stopped before the empty slot: the lazy doorbell may wait */
	if (lazy) {
#if defined(__x86_64__) && defined(__GNUC__)
		/* one subtraction in memory and a jump on its flags (GCC
		 * loads, subtracts, stores and tests: 5 instructions) */
		__asm__ goto("subl %1, %0\n\tjg %l[wait]"
			     : "+m"(q->cq_db_credit)
			     : "r"(n)
			     : "cc"
			     : wait);
#else
		if ((q->cq_db_credit -= n) > 0)
			return n;
#endif
	}
	drv_q_cq_give_back(q, lazy);
	return n;
#if defined(__x86_64__) && defined(__GNUC__)
wait:
	return n;
#endif
}

/* drv_q_drain_impl, the CQ head doorbell rung at the end of every call
 * that consumed something. */
drv_inline int drv_q_drain(struct drv_queue *q, unsigned max)
{
	return drv_q_drain_impl(q, max, false);
}

/* drv_q_drain_impl with the lazy CQ head doorbell (the fast poll). */
drv_inline int drv_q_drain_lazy(struct drv_queue *q, unsigned max)
{
	return drv_q_drain_impl(q, max, true);
}

/* A qpair's user checks, once per call, that the controller was neither
 * reset nor failed since the queue was last (re)created. */
drv_inline bool drv_qp_current(const struct nvmk_qpair *qp)
{
	/* relaxed: only a hint; drv_qpair_recover re-reads with acquire */
	return qp->epoch == atomic_load_explicit(&qp->ctrl->epoch, memory_order_relaxed);
}

/* Exclusive (no lock to take), current (no reset or failure to notice
 * since the queues were created) and no clock tick since the last deadline
 * scan (ctrl->gate): the fast paths' one test. */
drv_inline bool drv_qp_fast(const struct nvmk_qpair *qp)
{
	/* relaxed: only a hint, as in drv_qp_current */
	return qp->fast_epoch == atomic_load_explicit(&qp->ctrl->gate, memory_order_relaxed);
}

/* drv_qp_fast for the submit paths (qp->submit_gate). */
drv_inline bool drv_qp_fast_submit(const struct nvmk_qpair *qp)
{
	/* relaxed: only a hint, as in drv_qp_current */
	return qp->submit_gate == atomic_load_explicit(&qp->ctrl->gate, memory_order_relaxed);
}

/* A submit found the gate closed on an exclusive, current qpair: a clock
 * tick. Take the gate for the submits (this request still goes the general
 * way); the deadline scan is left to the poll, whose own gate is apart. */
drv_inline void drv_qp_submit_catch_up(struct nvmk_qpair *qp)
{
	if (!qp->shared && drv_qp_current(qp)) {
		/* relaxed: as in drv_qp_fast */
		uint64_t g = atomic_load_explicit(&qp->ctrl->gate, memory_order_relaxed);

		if ((uint32_t)(g >> 32) == qp->epoch)
			qp->submit_gate = g;
	}
}

/* Submit paths: 0 when the qpair may be used, else the error (completions
 * the recovery delivered are not the submitter's business). */
drv_inline int drv_qp_check(struct nvmk_qpair *qp)
{
	int rc;

	if (drv_likely(drv_qp_current(qp)))
		return 0;
	rc = drv_qpair_recover(qp);
	return rc < 0 ? rc : 0;
}

#endif /* NVMK_DRV_QUEUE_H */
