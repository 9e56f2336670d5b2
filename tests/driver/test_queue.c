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
	q->nfree = q->ntrk;
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
		assert_int_equal(active + f->q.nfree, f->q.ntrk);
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
	};
	nvmk_log_set_sink(quiet, NULL); /* thousands of "invalid completion" lines */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
