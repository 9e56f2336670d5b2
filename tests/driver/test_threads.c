// SPDX-License-Identifier: MIT
/* Many threads: each with its own exclusive qpair (async, pipelined), and
 * fewer queues than threads so that nvmk_ctrl_get_qpair shares them. Every
 * thread writes random blocks of its own region and verifies them. */
#include <errno.h>
#include <stdatomic.h>

#include "drv_test.h"

#define NTHREADS 8
#define REGION	 2048 /* blocks per thread */
#define ROUNDS	 200
#define QD	 8

struct targ {
	struct nvmk_ctrl *ctrl;
	struct nvmk_ns *ns;
	unsigned idx;
	bool own_qpair;
	enum nvmk_cpl_mode mode;
	int result;
	unsigned seed;
};

struct slot {
	int done;
	int err;
};

static void slot_cb(void *arg, const struct nvmk_cpl *cpl)
{
	struct slot *s = arg;

	s->err = cpl->err;
	s->done = 1;
}

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static void stamp(uint32_t *blk, unsigned thread, uint64_t lba, unsigned gen)
{
	for (unsigned i = 0; i < 128; i++)
		blk[i] = (uint32_t)(thread << 24) ^ (uint32_t)lba ^ (gen << 12) ^ i;
}

/* Exclusive qpair: keep QD writes in flight, remember what each block holds,
 * then read everything back. */
static void *worker_own(void *p)
{
	struct targ *a = p;
	struct nvmk_qpair *qp;
	struct nvmk_qpair_opts qo = {.mode = a->mode};
	struct nvmk_dma_buf buf;
	struct slot slots[QD] = {{0}};
	unsigned *gen = calloc(REGION, sizeof(unsigned));
	uint64_t base = (uint64_t)a->idx * REGION;
	int rc;

	a->result = -1;
	if (nvmk_qpair_create(a->ctrl, &qo, &qp))
		return NULL;
	if (nvmk_ctrl_dma_alloc(a->ctrl, QD * 512, &buf))
		return NULL;
	for (unsigned i = 0; i < QD; i++)
		slots[i].done = 1;
	for (unsigned r = 0; r < ROUNDS; r++) {
		unsigned s = r % QD;

		while (!slots[s].done)
			if (nvmk_qpair_wait(qp, 100) < 0 && nvmk_ctrl_failed(a->ctrl))
				goto out;
		if (slots[s].err)
			goto out;
		unsigned b = rnd(&a->seed) % REGION;
		uint32_t *blk = (uint32_t *)((char *)buf.mem.vaddr + s * 512);
		/* no two in-flight writes to one block: skip if a slot has it */
		gen[b]++;
		stamp(blk, a->idx, base + b, gen[b]);
		slots[s].done = 0;
		rc = nvmk_ns_submit_write(a->ns, qp, &buf, s * 512, base + b, 1, 0, slot_cb,
					  &slots[s]);
		if (rc)
			goto out;
		/* wait for it before another write may pick the same block */
		while (!slots[s].done)
			nvmk_qpair_process_completions(qp, 0), nvmk_qpair_wait(qp, 10);
	}
	for (unsigned s = 0; s < QD; s++)
		while (!slots[s].done)
			nvmk_qpair_wait(qp, 100);
	/* verify with the sync wrapper on the same qpair */
	uint32_t rd[128], want[128];
	for (unsigned b = 0; b < REGION; b++) {
		if (!gen[b])
			continue;
		if (nvmk_ns_read(a->ns, qp, rd, base + b, 1))
			goto out;
		stamp(want, a->idx, base + b, gen[b]);
		if (memcmp(rd, want, sizeof(rd)))
			goto out;
	}
	a->result = 0;
out:
	nvmk_ctrl_dma_free(a->ctrl, &buf);
	nvmk_qpair_destroy(qp);
	free(gen);
	return NULL;
}

/* Shared qpairs from nvmk_ctrl_get_qpair, sync wrappers with user memory. */
static void *worker_get(void *p)
{
	struct targ *a = p;
	unsigned *gen = calloc(REGION, sizeof(unsigned));
	uint64_t base = (uint64_t)a->idx * REGION;
	uint32_t blk[128 * 4], want[128];

	a->result = -1;
	for (unsigned r = 0; r < ROUNDS; r++) {
		unsigned b = rnd(&a->seed) % (REGION - 4);
		unsigned n = 1 + rnd(&a->seed) % 4;

		for (unsigned i = 0; i < n; i++) {
			gen[b + i]++;
			stamp(blk + 128 * i, a->idx, base + b + i, gen[b + i]);
		}
		if (nvmk_ns_write(a->ns, NULL, blk, base + b, n))
			goto out;
	}
	for (unsigned b = 0; b < REGION; b++) {
		if (!gen[b])
			continue;
		if (nvmk_ns_read(a->ns, NULL, blk, base + b, 1))
			goto out;
		stamp(want, a->idx, base + b, gen[b]);
		if (memcmp(blk, want, sizeof(want)))
			goto out;
	}
	a->result = 0;
out:
	free(gen);
	return NULL;
}

static void run(unsigned nqueues, bool own, enum nvmk_cpl_mode mode)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o;
	struct tenv t;
	struct nvmk_ns *ns;
	pthread_t th[NTHREADS];
	struct targ a[NTHREADS];

	tlog_reset();
	tcfg_default(&cfg, "emu-threads");
	topts_default(&o);
	o.max_io_queues = (uint16_t)nqueues;
	o.cpl_mode = mode;
	o.io_timeout_ms = 5000; /* sanitizers and 2 cores: be patient */
	assert_int_equal(tenv_open(&t, &cfg, &o), 0);
	assert_int_equal(nvmk_ns_open(t.ctrl, 1, 0, &ns), 0);
	for (unsigned i = 0; i < NTHREADS; i++) {
		a[i] = (struct targ){.ctrl = t.ctrl,
				     .ns = ns,
				     .idx = i,
				     .own_qpair = own,
				     .mode = mode,
				     .seed = 7 + i};
		assert_int_equal(pthread_create(&th[i], NULL, own ? worker_own : worker_get, &a[i]),
				 0);
	}
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	for (unsigned i = 0; i < NTHREADS; i++)
		assert_int_equal(a[i].result, 0);
	assert_int_equal(nvmk_ctrl_failed(t.ctrl), 0);
	assert_int_equal(nvmk_ctrl_io_queues(t.ctrl), nqueues);
	nvmk_ns_close(ns);
	tenv_close(&t);
}

static void test_own_qpairs_irq(void **state)
{
	(void)state;
	run(NTHREADS, true, NVMK_CPL_INTERRUPT);
}

static void test_own_qpairs_poll(void **state)
{
	(void)state;
	run(NTHREADS, true, NVMK_CPL_POLL);
}

static void test_shared_qpairs(void **state)
{
	(void)state;
	run(2, false, NVMK_CPL_INTERRUPT);
}

static void test_shared_qpairs_poll(void **state)
{
	(void)state;
	run(3, false, NVMK_CPL_POLL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_own_qpairs_irq),
	    cmocka_unit_test(test_own_qpairs_poll),
	    cmocka_unit_test(test_shared_qpairs),
	    cmocka_unit_test(test_shared_qpairs_poll),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
