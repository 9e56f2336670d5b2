/* SPDX-License-Identifier: MIT */
/*
 * Emulator conformance: concurrency. Several host threads, each with its own
 * I/O queue pair, write and read disjoint LBA ranges at the same time while
 * the main thread keeps the admin queue busy; every block must read back
 * what its thread wrote. Run under TSan too (suite 'threaded').
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host.h"

#define NTHREADS      4
#define ROUNDS	      40
#define BLOCKS_PER_IO 16   /* 8 KiB: PRP2 is a data pointer */
#define REGION	      4096 /* blocks per thread */

struct worker {
	struct host *h;
	uint16_t qid;
	pthread_t tid;
	char err[256];
	bool failed;  /* atomic; err[] is only read after the join */
	unsigned ios; /* atomic */
};

static void worker_fail(struct worker *w)
{
	/* release: orders nothing the main thread reads before the join */
	__atomic_store_n(&w->failed, true, __ATOMIC_RELEASE);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct host_buf wb, rb;
	uint64_t base = (uint64_t)w->qid * REGION;
	size_t len = BLOCKS_PER_IO * 512;
	unsigned i;
	int sf;

	/* no cmocka asserts here: they longjmp; report through err[] */
	if (host_buf_alloc(w->h, &wb, len) || host_buf_alloc(w->h, &rb, len)) {
		snprintf(w->err, sizeof(w->err), "q%u: out of DMA memory", w->qid);
		worker_fail(w);
		return NULL;
	}
	for (i = 0; i < ROUNDS; i++) {
		uint64_t lba = base + (i * BLOCKS_PER_IO) % REGION;
		uint64_t seed = ((uint64_t)w->qid << 32) | i;
		long bad;

		host_fill(wb.va, len, seed);
		sf = host_rw(w->h, w->qid, NVME_CMD_WRITE, 1, lba, BLOCKS_PER_IO, 0, wb.iova, len,
			     NULL);
		if (sf) {
			snprintf(w->err, sizeof(w->err), "q%u: write %u: status %d", w->qid, i, sf);
			worker_fail(w);
			break;
		}
		memset(rb.va, 0, len);
		sf = host_rw(w->h, w->qid, NVME_CMD_READ, 1, lba, BLOCKS_PER_IO, 0, rb.iova, len,
			     NULL);
		if (sf) {
			snprintf(w->err, sizeof(w->err), "q%u: read %u: status %d", w->qid, i, sf);
			worker_fail(w);
			break;
		}
		bad = host_check_fill(rb.va, len, seed);
		if (bad >= 0) {
			snprintf(w->err, sizeof(w->err), "q%u: round %u: data differs at byte %ld",
				 w->qid, i, bad);
			worker_fail(w);
			break;
		}
		/* relaxed: progress counter, polled by the main thread */
		__atomic_fetch_add(&w->ios, 2, __ATOMIC_RELAXED);
	}
	host_buf_free(w->h, &wb);
	host_buf_free(w->h, &rb);
	return NULL;
}

static void run_threads(struct host *h, uint16_t first_qid)
{
	struct worker w[NTHREADS];
	struct nvme_id_ctrl id;
	unsigned i, admin = 0;
	int admin_sf = 0;
	bool done;

	memset(w, 0, sizeof(w));
	for (i = 0; i < NTHREADS; i++) {
		w[i].h = h;
		w[i].qid = (uint16_t)(first_qid + i);
		assert_int_equal(pthread_create(&w[i].tid, NULL, worker_main, &w[i]), 0);
	}
	/* admin traffic at the same time (no assert until the join: the
	 * workers still use the host) */
	do {
		admin_sf = host_identify(h, NVME_ID_CNS_CTRL, 0, &id);
		if (admin_sf)
			break;
		admin++;
		done = true;
		for (i = 0; i < NTHREADS; i++)
			if (__atomic_load_n(&w[i].ios, __ATOMIC_RELAXED) < 2 * ROUNDS &&
			    !__atomic_load_n(&w[i].failed, __ATOMIC_ACQUIRE))
				done = false;
	} while (!done && admin < 100000);
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(w[i].tid, NULL), 0);
	assert_ok(admin_sf);
	for (i = 0; i < NTHREADS; i++) {
		if (w[i].err[0])
			fail_msg("%s", w[i].err);
		assert_int_equal(w[i].ios, 2 * ROUNDS);
	}
}

/* Each thread's region holds exactly its last round's data, and nothing
 * leaked into a neighbour's region. */
static void verify_regions(struct host *h)
{
	struct host_buf b;
	size_t len = BLOCKS_PER_IO * 512;
	uint16_t q;

	assert_int_equal(host_buf_alloc(h, &b, len), 0);
	for (q = 1; q <= NTHREADS; q++) {
		unsigned i = ROUNDS - 1;
		uint64_t lba = (uint64_t)q * REGION + (i * BLOCKS_PER_IO) % REGION;

		assert_ok(
		    host_rw(h, q, NVME_CMD_READ, 1, lba, BLOCKS_PER_IO, 0, b.iova, len, NULL));
		assert_int_equal(host_check_fill(b.va, len, ((uint64_t)q << 32) | i), -1);
	}
	host_buf_free(h, &b);
}

static void test_four_queue_pairs(void **state)
{
	struct nvmk_emu_config cfg;
	struct host *h;
	uint16_t q;

	(void)state;
	host_config(&cfg, "conc");
	h = host_create(&cfg);
	assert_non_null(h);
	assert_int_equal(host_bringup(h), 0);
	for (q = 1; q <= NTHREADS; q++)
		assert_int_equal(host_create_qpair(h, q, 8, q), 0);
	run_threads(h, 1);
	verify_regions(h);
	host_destroy(h);
}

/* The same with shadow doorbells: the controller reads queue state that
 * several threads update. */
static void test_four_queue_pairs_shadow(void **state)
{
	struct nvmk_emu_config cfg;
	struct host *h;
	uint16_t q;

	(void)state;
	host_config(&cfg, "conc-shadow");
	h = host_create(&cfg);
	assert_non_null(h);
	assert_int_equal(host_bringup(h), 0);
	assert_ok(host_dbbuf_config(h, HOST_DB_SHADOW_MMIO));
	for (q = 1; q <= NTHREADS; q++)
		assert_int_equal(host_create_qpair(h, q, 8, -1), 0);
	run_threads(h, 1);
	verify_regions(h);
	host_destroy(h);
}

static void sleep_us(unsigned us)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)us * 1000};

	nanosleep(&ts, NULL);
}

/*
 * Doorbell wake-up: the worker spins for a while after its last piece of
 * work, then sleeps until a doorbell (or another event) kicks it. Ring a
 * doorbell after idle gaps on both sides of that spin and across it, from
 * two threads at once, so that kicks land while the worker spins, while it
 * is deciding to sleep and while it sleeps: a lost wake-up leaves a command
 * unanswered and host_rw() fails after its timeout (HOST_TIMEOUT_MS).
 * Nothing here measures time.
 */
struct ring_arg {
	struct host *h;
	uint16_t qid;
	unsigned seed;
	int bad_sf; /* read after the join */
	unsigned bad_round;
};

static void *ring_after_gaps(void *arg)
{
	struct ring_arg *a = arg;
	struct host_buf b;

	a->bad_sf = host_buf_alloc(a->h, &b, 4096) ? -ENOMEM : 0;
	for (unsigned i = 0; i < 300 && !a->bad_sf; i++) {
		/* 0-63 us, now and then 1 ms: the worker is surely asleep then */
		unsigned gap = (i % 50 == 49) ? 1000 : ((i * 37u + a->seed) & 63u);

		if (gap)
			sleep_us(gap);
		a->bad_sf = host_rw(a->h, a->qid, NVME_CMD_READ, 1, i, 8, 0, b.iova, 4096, NULL);
		a->bad_round = i;
	}
	if (a->bad_sf != -ENOMEM)
		host_buf_free(a->h, &b);
	return NULL;
}

static void test_doorbell_wakeup(void **state)
{
	struct nvmk_emu_config cfg;
	struct ring_arg args[2];
	pthread_t tid[2];
	struct host *h;

	(void)state;
	host_config(&cfg, "conc-wake");
	h = host_create(&cfg);
	assert_non_null(h);
	assert_int_equal(host_bringup(h), 0);
	for (unsigned t = 0; t < 2; t++) {
		assert_int_equal(host_create_qpair(h, (uint16_t)(t + 1), 8, -1), 0);
		args[t] = (struct ring_arg){.h = h, .qid = (uint16_t)(t + 1), .seed = t * 29u};
		assert_int_equal(pthread_create(&tid[t], NULL, ring_after_gaps, &args[t]), 0);
	}
	for (unsigned t = 0; t < 2; t++)
		pthread_join(tid[t], NULL);
	for (unsigned t = 0; t < 2; t++) {
		if (args[t].bad_sf)
			fail_msg("q%u round %u: read status %d", t + 1, args[t].bad_round,
				 args[t].bad_sf);
	}
	host_destroy(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_four_queue_pairs, host_destroy_all),
	    cmocka_unit_test_teardown(test_four_queue_pairs_shadow, host_destroy_all),
	    cmocka_unit_test_teardown(test_doorbell_wakeup, host_destroy_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
