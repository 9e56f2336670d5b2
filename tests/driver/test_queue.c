// SPDX-License-Identifier: MIT
/* The queue core against hostile completions, without a device: random and
 * crafted CQEs are written into a CQ and drained. Whatever the "device"
 * writes, the drain never completes a request twice, never completes one
 * that was not submitted, and stops at the first invalid entry. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driver/queue.h"

#define DEPTH 64u

struct fake {
	struct drv_queue q;
	struct nvme_sqe sq[DEPTH];
	struct nvme_cqe cq[DEPTH];
	uint64_t prp[DEPTH - 1][512];
	int calls[DEPTH - 1];
	uint32_t dev_tail; /* the fake device's CQ tail */
	uint8_t dev_phase;
};

static struct nvmk_backing fake_backing;

static void write32_ignore(struct nvmk_backing *b, uint32_t off, uint32_t v)
{
	(void)b;
	(void)off;
	(void)v;
}

static struct nvmk_backing_ops ops_ignore = {.write32 = write32_ignore};

static void cb(void *arg, const struct nvmk_cpl *cpl)
{
	(void)cpl;
	(*(int *)arg)++;
}

static void fake_init(struct fake *f)
{
	struct drv_queue *q = &f->q;
	unsigned shift = 0;

	memset(f, 0, sizeof(*f));
	fake_backing.ops = &ops_ignore;
	q->b = &fake_backing;
	drv_queue_set_doorbells(q, 3, 0); /* the write32 above, as queue setup does */
	q->sq = f->sq;
	q->cq = f->cq;
	q->depth = DEPTH;
	q->qid = 3;
	q->sqid_key = 3u << 16; /* as drv_queue_geometry sets it */
	q->ntrk = DEPTH - 1;
	while ((1u << shift) < q->ntrk)
		shift++;
	q->cid_shift = (uint8_t)shift;
	q->idx_mask = (uint16_t)((1u << shift) - 1);
	q->gen_inc = (uint16_t)(1u << shift);
	q->trk = calloc((size_t)q->idx_mask + 1, sizeof(*q->trk));
	q->name = "fake";
	q->free_head = DRV_TRK_NONE;
	for (uint32_t i = q->ntrk; i-- > 0;) {
		q->trk[i].cid = (uint16_t)i;
		q->trk[i].idx = (uint16_t)i;
		q->trk[i].next_free = q->free_head;
		q->free_head = (uint16_t)i;
	}
	q->nbusy = 0;
	q->phase = 1;
	f->dev_phase = 1;
}

/* Submit: a tracker per command, callback counting into calls[idx]. */
static struct drv_tracker *fake_submit(struct fake *f)
{
	struct drv_tracker *t = drv_trk_get(&f->q);

	if (!t)
		return NULL;
	t->state = TRK_ACTIVE;
	t->cb = cb;
	t->cb_arg = &f->calls[t->idx];
	t->deadline = DRV_NO_DEADLINE;
	drv_q_commit(&f->q, 1);
	return t;
}

static void dev_post(struct fake *f, uint16_t cid, uint16_t sqid, uint16_t sqhd, uint16_t sf,
		     int phase_override)
{
	struct nvme_cqe *e = &f->cq[f->dev_tail];
	uint16_t ph = phase_override >= 0 ? (uint16_t)phase_override : f->dev_phase;

	e->cid = cid;
	e->sqid = sqid;
	e->sqhd = sqhd;
	e->dw0 = 0;
	__atomic_store_n(&e->status, (uint16_t)(sf << 1 | ph), __ATOMIC_RELEASE);
	if (++f->dev_tail == DEPTH) {
		f->dev_tail = 0;
		f->dev_phase ^= 1;
	}
}

static void test_good_then_duplicate(void **state)
{
	struct fake *f = malloc(sizeof(*f));
	(void)state;
	fake_init(f);
	struct drv_tracker *a = fake_submit(f), *b = fake_submit(f);
	uint16_t ca = a->cid, cb_ = b->cid;

	dev_post(f, ca, 3, 1, 0, -1);
	assert_int_equal(drv_q_drain(&f->q, 0), 1);
	assert_int_equal(f->calls[a->idx], 1);
	/* the same CQE again: refused, nothing completed */
	dev_post(f, ca, 3, 1, 0, -1);
	assert_int_equal(drv_q_drain(&f->q, 0), -EIO);
	assert_int_equal(f->calls[a->idx], 1);
	assert_int_equal(f->calls[b->idx], 0);
	(void)cb_;
	free(f->q.trk);
	free(f);
}

static void test_crafted(void **state)
{
	struct fake *f = malloc(sizeof(*f));
	(void)state;

	struct {
		int kind;
	} cases[] = {{0}, {1}, {2}, {3}, {4}};
	for (unsigned k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		fake_init(f);
		struct drv_tracker *t = fake_submit(f);
		uint16_t cid = t->cid, sqid = 3, sqhd = 1;

		switch (cases[k].kind) {
		case 0: /* previous generation of the same slot */
			cid = (uint16_t)(cid - f->q.gen_inc);
			break;
		case 1: /* index of a tracker never submitted */
			cid = (uint16_t)((cid & ~f->q.idx_mask) | 5);
			break;
		case 2: /* index beyond ntrk but inside the mask */
			cid = (uint16_t)((cid & ~f->q.idx_mask) | f->q.idx_mask);
			break;
		case 3:
			sqid = 4;
			break;
		case 4:
			sqhd = DEPTH;
			break;
		}
		dev_post(f, cid, sqid, sqhd, 0, -1);
		assert_int_equal(drv_q_drain(&f->q, 0), -EIO);
		assert_int_equal(f->calls[t->idx], 0);
		free(f->q.trk);
	}
	free(f);
}

static void test_random_garbage(void **state)
{
	struct fake *f = malloc(sizeof(*f));
	unsigned seed = 12345;
	(void)state;

	for (int round = 0; round < 2000; round++) {
		fake_init(f);
		int n = 1 + round % (int)(DEPTH - 1);
		for (int i = 0; i < n; i++)
			assert_non_null(fake_submit(f));
		/* the device writes random entries, some of them valid */
		for (int i = 0; i < n + 3; i++) {
			seed = seed * 1103515245u + 12345u;
			uint16_t cid = (uint16_t)(seed >> 16);
			if (seed & 1) /* pick a real outstanding CID half the time */
				cid = f->q.trk[(seed >> 8) % f->q.ntrk].cid;
			dev_post(f, cid, (seed & 2) ? 3 : (uint16_t)(seed >> 5),
				 (uint16_t)((seed >> 3) % (DEPTH + 2)),
				 (uint16_t)(seed >> 20) & 0x7fff,
				 (seed & 4) ? -1 : (int)((seed >> 9) & 1));
		}
		for (int i = 0; i < 4; i++)
			if (drv_q_drain(&f->q, 0) < 0)
				break;
		for (uint32_t i = 0; i < f->q.ntrk; i++)
			assert_true(f->calls[i] <= 1);
		/* whatever happened, the free list and the counts agree */
		unsigned active = 0;
		for (uint32_t i = 0; i < f->q.ntrk; i++)
			if (f->q.trk[i].state == TRK_ACTIVE)
				active++;
		assert_int_equal(active, f->q.nbusy);
		/* failing the rest completes each remaining one exactly once */
		drv_queue_doom_all(&f->q);
		drv_queue_fail_doomed(&f->q, -EIO);
		for (uint32_t i = 0; i < f->q.ntrk; i++)
			assert_true(f->calls[i] <= 1);
		for (int i = 0; i < n; i++)
			assert_int_equal(f->calls[i], 1);
		free(f->q.trk);
	}
	free(f);
}

/* ---- the straight path's one compare (phase tag and Status Field) ---- */

static int last_err;

static void cb_err(void *arg, const struct nvmk_cpl *cpl)
{
	(*(int *)arg)++;
	last_err = cpl->err;
}

/* Completions with and without an error status, across two wraps of the
 * CQ (the phase flips on both paths), each completed once with its error;
 * an entry of the previous pass (phase tag old) is never consumed, with
 * or without a status; an error status does not make a CQE with a bad
 * CID, a wrong SQ id or an SQ head out of range acceptable. */
static void test_status_phase_and_wrap(void **state)
{
	struct fake *f = malloc(sizeof(*f));
	(void)state;

	fake_init(f);
	for (unsigned i = 0; i < 2 * DEPTH + 5; i++) {
		struct drv_tracker *t = fake_submit(f);
		uint16_t sf = i % 3 == 1 ? 0x0002 /* Invalid Field in Command */ : 0;

		assert_non_null(t);
		t->cb = cb_err;
		f->calls[t->idx] = 0;
		last_err = 12345;
		dev_post(f, t->cid, 3, 1, sf, -1);
		assert_int_equal(i % 2 ? drv_q_drain_lazy(&f->q, 0) : drv_q_drain(&f->q, 0), 1);
		assert_int_equal(f->calls[t->idx], 1);
		assert_int_equal(last_err, sf ? -EINVAL : 0);
		/* the next slot holds the previous pass's entry, with a
		 * status: not new */
		assert_int_equal(drv_q_drain(&f->q, 0), 0);
	}
	assert_int_equal(f->q.phase, 1); /* two laps and a bit: back to 1 */
	/* a status word whose phase tag is old but the rest differs from
	 * the expected one */
	{
		struct drv_tracker *t = fake_submit(f);

		f->calls[t->idx] = 0;
		dev_post(f, t->cid, 3, 1, 0x0002, f->dev_phase ^ 1);
		assert_int_equal(drv_q_drain_lazy(&f->q, 0), 0);
		assert_int_equal(f->calls[t->idx], 0);
	}
	free(f->q.trk);
	for (int kind = 0; kind < 3; kind++) {
		struct drv_tracker *t;
		uint16_t cid, sqid = 3, sqhd = 1;

		fake_init(f);
		t = fake_submit(f);
		cid = t->cid;
		if (kind == 0)
			cid = (uint16_t)(cid - f->q.gen_inc); /* the previous generation */
		else if (kind == 1)
			sqid = 4;
		else
			sqhd = DEPTH;
		dev_post(f, cid, sqid, sqhd, 0x0002, -1);
		assert_int_equal(drv_q_drain_lazy(&f->q, 0), -EIO);
		assert_int_equal(f->calls[t->idx], 0);
		free(f->q.trk);
	}
	free(f);
}

/* The last outstanding command completes and its callback submits
 * another: the poll stops there (nothing was outstanding before the
 * callback), the new command's doorbell is the caller's (batching), and
 * the next poll completes it. */
static struct fake *resubmit_f;
static int resubmits;

static void cb_resubmit(void *arg, const struct nvmk_cpl *cpl)
{
	struct drv_tracker *t;

	(void)cpl;
	(*(int *)arg)++;
	if (resubmits-- <= 0)
		return;
	t = fake_submit(resubmit_f);
	assert_non_null(t);
	t->cb = cb_resubmit;
}

static void test_callback_submits_last(void **state)
{
	struct fake *f = malloc(sizeof(*f));
	struct drv_tracker *t;
	(void)state;

	fake_init(f);
	resubmit_f = f;
	resubmits = 3;
	t = fake_submit(f);
	t->cb = cb_resubmit;
	for (int round = 0; round < 4; round++) {
		uint16_t cid = 0;

		assert_int_equal(f->q.nbusy, 1);
		for (uint32_t i = 0; i < f->q.ntrk; i++)
			if (f->q.trk[i].state == TRK_ACTIVE)
				cid = f->q.trk[i].cid;
		dev_post(f, cid, 3, 1, 0, -1);
		f->q.batching++; /* as every caller of the drain does */
		assert_int_equal(drv_q_drain_lazy(&f->q, 0), 1);
		f->q.batching--;
		assert_int_equal(f->q.nbusy, round < 3 ? 1 : 0);
	}
	assert_int_equal(drv_q_drain_lazy(&f->q, 0), 0);
	free(f->q.trk);
	free(f);
}

/* ---- the lazy CQ head doorbell of the fast poll (drv_q_drain_lazy) ---- */

/* Doorbell writes the fake device saw: the last CQ head and their count. */
static struct {
	uint32_t cq_off, sq_off;
	uint32_t cq_head, sq_tail;
	unsigned cq_writes, sq_writes;
} db_seen;

static void write32_record(struct nvmk_backing *b, uint32_t off, uint32_t v)
{
	(void)b;
	if (off == db_seen.cq_off) {
		db_seen.cq_head = v;
		db_seen.cq_writes++;
	} else if (off == db_seen.sq_off) {
		db_seen.sq_tail = v;
		db_seen.sq_writes++;
	}
}

static struct nvmk_backing_ops ops_record = {.write32 = write32_record};

static void fake_init_lazy(struct fake *f, uint32_t lazy)
{
	fake_init(f);
	fake_backing.ops = &ops_record;
	drv_queue_set_doorbells(&f->q, 3, 0);
	memset(&db_seen, 0, sizeof(db_seen));
	db_seen.cq_off = f->q.cq_db;
	f->q.cq_db_lazy = lazy;
	f->q.cq_db_credit = (int32_t)lazy;
}

/* Shadow doorbells (Base 2.0 5.8): every ring stores the shadow value;
 * the register is written exactly when the EventIdx the device left lies
 * in [old, new) as the usual "new - event - 1 < new - old" (16-bit)
 * decides, for every old and new tail of a 64-entry queue and EventIdx
 * values anywhere in 32 bits (the device writes them). */
static void test_shadow_doorbell_eventidx(void **state)
{
	struct fake *f = malloc(sizeof(*f));
	uint32_t *page = aligned_alloc(4096, 2 * 4096);
	uint32_t *ei = page + 4096 / sizeof(uint32_t);
	static const uint32_t far[] = {0xffff, 0xfffe, 0x8000, 0x10000, 0x1003f, 0xffffffffu};
	(void)state;

	assert_non_null(page);
	fake_init_lazy(f, 8);
	db_seen.sq_off = f->q.sq_db;
	f->q.sdb_sq = page; /* drv_q_dbbuf_attach's layout: EventIdx a page on */
	for (uint32_t old = 0; old < DEPTH; old++)
		for (uint32_t val = 0; val < DEPTH; val++)
			for (uint32_t k = 0; k < DEPTH + sizeof(far) / sizeof(far[0]); k++) {
				uint32_t ev = k < DEPTH ? k : far[k - DEPTH];
				bool due = (uint16_t)(val - ev - 1) < (uint16_t)(val - old);
				unsigned before = db_seen.sq_writes;

				f->q.sq_db_tail = old;
				page[0] = 0xdead;
				*ei = ev;
				drv_db_ring(&f->q, false, val);
				assert_int_equal(page[0], val);
				assert_int_equal(f->q.sq_db_tail, val);
				assert_int_equal(db_seen.sq_writes - before, due ? 1 : 0);
				if (due)
					assert_int_equal(db_seen.sq_tail, val);
			}
	free(page);
	free(f->q.trk);
	free(f);
}

/* Completions the host consumed but did not give back yet. */
static uint32_t unacked(const struct fake *f)
{
	return (f->q.cq_head + DEPTH - f->q.cq_db_head) % DEPTH;
}

/* QD 1: one completion per poll, nothing outstanding after it, so the poll
 * never reads the empty slot. The head is given back once every @lazy
 * completions (never more unacknowledged), and a poll that finds nothing
 * gives back what was consumed before it. */
static void test_lazy_cq_doorbell_qd1(void **state)
{
	struct fake *f = malloc(sizeof(*f));
	(void)state;

	fake_init_lazy(f, 8);
	for (unsigned i = 1; i <= 20; i++) {
		struct drv_tracker *t = fake_submit(f);

		assert_non_null(t);
		f->calls[t->idx] = 0; /* the same tracker comes back each time */
		dev_post(f, t->cid, 3, (uint16_t)(i % DEPTH), 0, -1);
		assert_int_equal(drv_q_drain_lazy(&f->q, 0), 1);
		assert_int_equal(f->calls[t->idx], 1);
		assert_int_equal(db_seen.cq_writes, i / 8);
		assert_true(unacked(f) < 8);
		assert_int_equal(f->q.cq_db_head, db_seen.cq_writes ? db_seen.cq_head : 0);
	}
	/* 20 consumed, 16 given back: an empty poll gives back the other 4 */
	assert_int_equal(unacked(f), 4);
	assert_int_equal(drv_q_drain_lazy(&f->q, 0), 0);
	assert_int_equal(db_seen.cq_writes, 3);
	assert_int_equal(db_seen.cq_head, 20);
	assert_int_equal(unacked(f), 0);
	/* and an empty poll with nothing to give back writes nothing */
	assert_int_equal(drv_q_drain_lazy(&f->q, 0), 0);
	assert_int_equal(db_seen.cq_writes, 3);
	/* the eager drain (admin queue, slow paths) rings after every
	 * completion it consumed */
	for (unsigned i = 0; i < 3; i++) {
		struct drv_tracker *t = fake_submit(f);

		dev_post(f, t->cid, 3, 1, 0, -1);
		assert_int_equal(drv_q_drain(&f->q, 0), 1);
		assert_int_equal(db_seen.cq_writes, 4 + i);
		assert_int_equal(unacked(f), 0);
	}
	/* lazy 0 (interrupt mode): every poll that consumed something rings */
	f->q.cq_db_lazy = 0;
	f->q.cq_db_credit = 0;
	for (unsigned i = 0; i < 3; i++) {
		struct drv_tracker *t = fake_submit(f);

		dev_post(f, t->cid, 3, 1, 0, -1);
		assert_int_equal(drv_q_drain_lazy(&f->q, 0), 1);
		assert_int_equal(db_seen.cq_writes, 7 + i);
		assert_int_equal(unacked(f), 0);
	}
	free(f->q.trk);
	free(f);
}

/* The queue kept full (every tracker outstanding) against a device that,
 * as Base 2.0 3.3.1.2.1 allows, posts a completion only while the CQ has a
 * free slot as far as the head doorbell tells it. Polls of all sizes (a
 * @max of 1 or 2 is the other early exit) never leave lazy or more
 * completions unacknowledged, so the device is never blocked on a CQ the
 * host sees empty, and every poll or two completes something. */
static void test_lazy_cq_doorbell_full_queue(void **state)
{
	struct fake *f = malloc(sizeof(*f));
	unsigned seed = 7, done = 0, idle = 0;
	uint32_t pending[DEPTH]; /* CIDs fetched, not yet posted */
	unsigned npending = 0;
	(void)state;

	fake_init_lazy(f, 8);
	while (done < 2000) {
		struct drv_tracker *t;
		int n;

		/* keep every tracker busy (their callbacks only count) */
		while ((t = fake_submit(f)) != NULL) {
			f->calls[t->idx] = 0;
			pending[npending++] = t->cid;
		}
		/* the device posts a random number of them, as room allows:
		 * full when tail + 1 == the head it was given */
		seed = seed * 1103515245u + 12345u;
		for (unsigned k = (seed >> 16) % 9; k > 0 && npending > 0; k--) {
			if ((f->dev_tail + 1) % DEPTH == db_seen.cq_head)
				break;
			dev_post(f, (uint16_t)pending[0], 3, 1, 0, -1);
			memmove(pending, pending + 1, --npending * sizeof(pending[0]));
		}
		n = drv_q_drain_lazy(&f->q, (seed >> 8) % 3); /* 0 (all), 1 or 2 */
		assert_true(n >= 0);
		assert_true(unacked(f) < 8 || n == 0);
		done += (unsigned)n;
		/* progress: the device posts up to 8 per round (0 in one of
		 * nine), never blocked for long on a full CQ */
		idle = n ? 0 : idle + 1;
		assert_true(idle < 20);
	}
	free(f->q.trk);
	free(f);
}

static void quiet(void *ctx, enum nvmk_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	(void)line;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_then_duplicate),
	    cmocka_unit_test(test_crafted),
	    cmocka_unit_test(test_random_garbage),
	    cmocka_unit_test(test_status_phase_and_wrap),
	    cmocka_unit_test(test_callback_submits_last),
	    cmocka_unit_test(test_shadow_doorbell_eventidx),
	    cmocka_unit_test(test_lazy_cq_doorbell_qd1),
	    cmocka_unit_test(test_lazy_cq_doorbell_full_queue),
	};
	nvmk_log_set_sink(quiet, NULL); /* thousands of "invalid completion" lines */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
