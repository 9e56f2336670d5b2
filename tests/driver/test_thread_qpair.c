// SPDX-License-Identifier: MIT
/* Per-thread queue pairs (nvmk_ctrl_get_qpair, the synchronous calls): each
 * thread gets an EXCLUSIVE qpair of its own (no lock on its fast path) while
 * the controller has queues; one SHARED qpair is kept for the threads that
 * find none left. Data written by every thread through the sync calls reads
 * back; the failure case (device refuses a queue) is in test_ctrl.c. */
#include <errno.h>

#include "drv_test.h"

#define NTHREADS 8

struct fixture {
	struct tenv t;
	struct nvmk_ns *ns;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o;

	tlog_reset();
	tcfg_default(&cfg, "emu-tqp");
	topts_default(&o);
	o.max_io_queues = 4;
	o.io_timeout_ms = 5000;
	if (tenv_open(&f->t, &cfg, &o) || nvmk_ns_open(f->t.ctrl, 1, 0, &f->ns))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nvmk_ns_close(f->ns);
	tenv_close(&f->t);
	free(f);
	return 0;
}

/* shared flag of the qpair with queue ID @qid in the controller's stats */
static int qid_shared(struct nvmk_ctrl *ctrl, uint16_t qid)
{
	struct nvmk_queue_stat st[16];
	int n = nvmk_ctrl_queue_stats(ctrl, st, 16);

	for (int i = 0; i < n && i < 16; i++)
		if (st[i].qid == qid)
			return st[i].shared;
	return -1;
}

static void test_own_qpair(void **state)
{
	struct fixture *f = *state;
	struct nvmk_queue_stat st[16];
	struct nvmk_qpair *qp = nvmk_ctrl_get_qpair(f->t.ctrl);
	char wr[512], rd[512];
	int n, shared = 0;

	assert_non_null(qp);
	assert_ptr_equal(nvmk_ctrl_get_qpair(f->t.ctrl), qp);
	assert_int_equal(qid_shared(f->t.ctrl, nvmk_qpair_id(qp)), 0); /* its own, no lock */
	n = nvmk_ctrl_queue_stats(f->t.ctrl, st, 16);
	assert_int_equal(n, 2);
	for (int i = 0; i < n; i++)
		shared += st[i].shared;
	assert_int_equal(shared, 1); /* the one kept for threads without a queue */
	memset(wr, 0x3c, sizeof(wr));
	assert_int_equal(nvmk_ns_write(f->ns, NULL, wr, 7, 1), 0);
	assert_int_equal(nvmk_ns_read(f->ns, NULL, rd, 7, 1), 0);
	assert_memory_equal(wr, rd, sizeof(wr));
}

struct targ {
	struct fixture *f;
	pthread_barrier_t *bar;
	unsigned id;
	struct nvmk_qpair *qp;
	int err;
};

static void *thread_main(void *p)
{
	struct targ *a = p;
	char wr[4096], rd[4096];

	a->qp = nvmk_ctrl_get_qpair(a->f->t.ctrl);
	/* everyone holds a qpair before anyone does I/O or exits: no thread's
	 * TLS slot is reused by another */
	pthread_barrier_wait(a->bar);
	for (unsigned r = 0; r < 50 && !a->err; r++) {
		uint64_t lba = a->id * 1024u + r * 8u;

		memset(wr, (int)(a->id * 16 + r), sizeof(wr));
		a->err = nvmk_ns_write(a->f->ns, NULL, wr, lba, 8);
		if (!a->err)
			a->err = nvmk_ns_read(a->f->ns, NULL, rd, lba, 8);
		if (!a->err && memcmp(wr, rd, sizeof(wr)))
			a->err = -EILSEQ;
	}
	pthread_barrier_wait(a->bar);
	return NULL;
}

/* More threads than queues: as many own qpairs as there are queues but the
 * shared one, every other thread on the shared one, all data intact. */
static void test_more_threads_than_queues(void **state)
{
	struct fixture *f = *state;
	struct targ a[NTHREADS];
	pthread_t tid[NTHREADS];
	pthread_barrier_t bar;
	struct nvmk_queue_stat st[16];
	unsigned exclusive = 0, on_shared = 0;
	int n, nshared = 0;

	assert_int_equal(pthread_barrier_init(&bar, NULL, NTHREADS), 0);
	for (unsigned i = 0; i < NTHREADS; i++) {
		a[i] = (struct targ){.f = f, .bar = &bar, .id = i};
		assert_int_equal(pthread_create(&tid[i], NULL, thread_main, &a[i]), 0);
	}
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_join(tid[i], NULL);
	pthread_barrier_destroy(&bar);
	n = nvmk_ctrl_queue_stats(f->t.ctrl, st, 16);
	assert_true(n >= 2 && n <= 4);
	for (int i = 0; i < n; i++)
		nshared += st[i].shared;
	assert_int_equal(nshared, 1);
	for (unsigned i = 0; i < NTHREADS; i++) {
		assert_int_equal(a[i].err, 0);
		assert_non_null(a[i].qp);
		if (qid_shared(f->t.ctrl, nvmk_qpair_id(a[i].qp))) {
			on_shared++;
			continue;
		}
		exclusive++;
		for (unsigned k = 0; k < NTHREADS; k++) /* nobody else has it */
			assert_true(k == i || a[k].qp != a[i].qp);
	}
	assert_int_equal(exclusive, (unsigned)n - 1);
	assert_int_equal(on_shared, NTHREADS - exclusive);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_own_qpair, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_more_threads_than_queues, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
