/* SPDX-License-Identifier: MIT */
/*
 * The worker watches the doorbells itself: shadow doorbells with EventIdx
 * (Base 2.0 5.8) and a doorbell page (nvmk_emu_set_db_page).
 *
 * EventIdx: the host writes the doorbell register iff its update from old to
 * new passes EventIdx. A worker that is awake reads the shadow values itself
 * and leaves EventIdx where the host does not reach it; only before it
 * sleeps does it ask for the next write. These tests check both sides and
 * that no wake-up is lost when the two race (the controller is configured
 * not to look at the shadow buffer on a timer, so a lost wake-up is a
 * command that never completes, not a slow one).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host.h"

#define QSIZE 16

static uint64_t host_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool need_event(uint16_t ev, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - ev - 1) < (uint16_t)(new_idx - old);
}

static uint32_t eventidx_of(struct host *h, unsigned idx)
{
	return __atomic_load_n(&h->eventidx[idx << h->dstrd], __ATOMIC_SEQ_CST);
}

static struct host *eventidx_host(const char *name, unsigned nqpairs, bool page, bool no_spin)
{
	struct nvmk_emu_config cfg;
	struct host *h;

	host_config(&cfg, name);
	cfg.no_shadow_poll = true;
	cfg.no_spin = no_spin;
	h = host_create(&cfg);
	assert_non_null(h);
	if (page)
		assert_int_equal(host_use_db_page(h), 0);
	assert_int_equal(host_bringup(h), 0);
	assert_ok(host_dbbuf_config(h, HOST_DB_EVENTIDX));
	for (unsigned q = 1; q <= nqpairs; q++)
		assert_int_equal(host_create_qpair(h, (uint16_t)q, QSIZE, -1), 0);
	return h;
}

static void read_sqe(struct nvme_sqe *sqe, const struct host_buf *b, uint64_t slba)
{
	host_sqe(sqe, NVME_CMD_READ, 1);
	sqe->prp1 = b->iova;
	sqe->cdw10 = (uint32_t)slba;
	sqe->cdw11 = (uint32_t)(slba >> 32);
	sqe->cdw12 = 0; /* one block */
}

/* ---- a worker held inside a pass (tamper hook on fetch of SQ 2) ---- */

struct gate {
	atomic_uint arrived;
	atomic_uint released;
};

static void gate_hook(void *ctx, uint16_t sqid, const struct nvme_sqe *sqe)
{
	struct gate *g = ctx;
	unsigned me;
	uint64_t end = host_now_ms() + HOST_TIMEOUT_MS;

	(void)sqe;
	if (sqid != 2)
		return;
	me = atomic_fetch_add(&g->arrived, 1) + 1;
	while (atomic_load(&g->released) < me && host_now_ms() < end)
		usleep(20);
}

static void wait_arrived(struct gate *g, unsigned n)
{
	uint64_t end = host_now_ms() + HOST_TIMEOUT_MS;

	while (atomic_load(&g->arrived) < n && host_now_ms() < end)
		usleep(20);
	assert_int_equal(atomic_load(&g->arrived), n);
}

/*
 * A busy worker leaves EventIdx out of the host's reach. The worker is held
 * on a command of SQ 2 after a pass in which it caught up with SQ 1 (same
 * pass, SQ 1 comes first): it is awake, and the host's next SQ 1 submission
 * must not need a register write. (A controller that sets EventIdx to the
 * tail after each pass asks for exactly that write.)
 */
static void test_busy_worker_suppresses(void **state)
{
	struct host *h = eventidx_host("evidx-busy", 2, false, false);
	struct gate g = {0};
	struct nvmk_emu_tamper t = {.ctx = &g, .fetched = gate_hook};
	struct nvme_sqe z, x, w, v;
	struct host_buf b;
	uint64_t rings;
	uint16_t tail;
	int cz, cx, cw, cv;

	(void)state;
	assert_int_equal(host_buf_alloc(h, &b, 4096), 0);
	nvmk_emu_set_tamper(h->emu, &t);
	read_sqe(&z, &b, 0);
	cz = host_io_submit(h, 2, &z);
	assert_true(cz >= 0);
	wait_arrived(&g, 1); /* held on Z, in a pass that has done SQ 1 */
	read_sqe(&x, &b, 1);
	cx = host_io_submit(h, 1, &x);
	read_sqe(&w, &b, 2);
	cw = host_io_submit(h, 2, &w);
	assert_true(cx >= 0 && cw >= 0);
	atomic_store(&g.released, 1);
	wait_arrived(&g, 2); /* held on W, in the pass that fetched X */

	tail = (uint16_t)h->sq[1].tail;
	assert_false(need_event((uint16_t)eventidx_of(h, 2), (uint16_t)((tail + 1) % QSIZE), tail));
	rings = h->mmio_doorbell_writes;
	read_sqe(&v, &b, 3);
	cv = host_io_submit(h, 1, &v);
	assert_true(cv >= 0);
	assert_int_equal(h->mmio_doorbell_writes, rings);

	atomic_store(&g.released, 2);
	assert_ok(host_io_wait(h, 1, (uint16_t)cx, NULL, HOST_TIMEOUT_MS));
	assert_ok(host_io_wait(h, 1, (uint16_t)cv, NULL, HOST_TIMEOUT_MS));
	assert_ok(host_io_wait(h, 2, (uint16_t)cz, NULL, HOST_TIMEOUT_MS));
	assert_ok(host_io_wait(h, 2, (uint16_t)cw, NULL, HOST_TIMEOUT_MS));
	nvmk_emu_set_tamper(h->emu, NULL);
	host_buf_free(h, &b);
	host_destroy(h);
}

/*
 * A worker with nothing to do asks for the next SQ tail write before it
 * sleeps (EventIdx = the tail it has seen); that write wakes it (no timer
 * looks at the shadow buffer here).
 */
static void test_sleeping_worker_asks(void **state)
{
	struct host *h = eventidx_host("evidx-sleep", 1, false, false);
	struct host_buf b;
	uint64_t end, rings;

	(void)state;
	assert_int_equal(host_buf_alloc(h, &b, 4096), 0);
	for (unsigned round = 0; round < 3; round++) {
		end = host_now_ms() + HOST_TIMEOUT_MS;
		while (eventidx_of(h, 2) != h->sq[1].tail && host_now_ms() < end)
			usleep(100);
		assert_int_equal(eventidx_of(h, 2), h->sq[1].tail);
		rings = h->mmio_doorbell_writes;
		assert_ok(host_rw(h, 1, NVME_CMD_READ, 1, round, 1, 0, b.iova, 512, NULL));
		assert_true(h->mmio_doorbell_writes > rings);
	}
	host_buf_free(h, &b);
	host_destroy(h);
}

/*
 * No lost wake-up: submissions at random moments around the time the worker
 * decides to sleep (it spins about 200 us after its last work), single ones
 * and bursts. Each must complete; a wake-up lost between the worker's
 * EventIdx store and its sleep would leave one hanging (and fail after
 * HOST_TIMEOUT_MS). Under ThreadSanitizer this also checks the protocol's
 * atomics.
 */
static void stress(struct host *h, unsigned iters)
{
	struct host_buf b;
	unsigned seed = 12345;
	uint64_t rings0 = h->mmio_doorbell_writes;

	assert_int_equal(host_buf_alloc(h, &b, 4 * 4096), 0);
	for (unsigned i = 0; i < iters; i++) {
		unsigned burst = 1 + (rand_r(&seed) % 4);
		unsigned pause = rand_r(&seed) % 400; /* us, around the spin time */
		int cid[4];

		for (unsigned k = 0; k < burst; k++) {
			struct nvme_sqe sqe;
			struct host_buf sub = {.iova = b.iova + k * 4096u};

			read_sqe(&sqe, &sub, i * 4 + k);
			cid[k] = host_io_submit(h, 1, &sqe);
			assert_true(cid[k] >= 0);
		}
		for (unsigned k = 0; k < burst; k++) {
			int sf = host_io_wait(h, 1, (uint16_t)cid[k], NULL, HOST_TIMEOUT_MS);

			if (sf < 0)
				fail_msg("iteration %u: command %u of %u lost (no wake-up)", i, k,
					 burst);
			assert_ok(sf);
		}
		if (pause < 130)
			continue; /* right away: the worker is still awake */
		if (pause < 260) {
			/* about when the worker stops spinning and asks (200 us after
			 * its last work): the race the EventIdx re-check covers */
			uint64_t until = host_now_ns() + 170000u + (pause - 130) * 400u;

			while (host_now_ns() < until)
				;
		} else {
			for (uint64_t end = host_now_ms() + 1; host_now_ms() < end;)
				sched_yield();
		}
	}
	print_message("%u iterations: %llu doorbell register writes\n", iters,
		      (unsigned long long)(h->mmio_doorbell_writes - rings0));
	host_buf_free(h, &b);
}

static void test_no_lost_wakeup(void **state)
{
	struct host *h = eventidx_host("evidx-stress", 1, false, false);

	(void)state;
	stress(h, 1500);
	host_destroy(h);
	/* a worker that sleeps whenever it is idle: every submission races with
	 * its EventIdx store and sleep */
	h = eventidx_host("evidx-nospin", 1, false, true);
	stress(h, 2000);
	host_destroy(h);
}

/* ---- the doorbell page ---- */

/* Every doorbell a store on the page: the worker finds them by itself. */
static void test_db_page_io(void **state)
{
	struct nvmk_emu_config cfg;
	struct host *h;
	struct host_buf b;

	(void)state;
	host_config(&cfg, "dbpage-io");
	h = host_create(&cfg);
	assert_non_null(h);
	assert_int_equal(host_use_db_page(h), 0);
	assert_int_equal(host_use_db_page(h), -EBUSY);
	assert_int_equal(host_bringup(h), 0);
	assert_int_equal(host_create_qpair(h, 1, 8, -1), 0);
	assert_int_equal(host_buf_alloc(h, &b, 4096), 0);
	for (unsigned i = 0; i < 40; i++) { /* wraps the 8-entry queue */
		host_fill(b.va, 512, i);
		assert_ok(host_rw(h, 1, NVME_CMD_WRITE, 1, i, 1, 0, b.iova, 512, NULL));
		memset(b.va, 0, 512);
		assert_ok(host_rw(h, 1, NVME_CMD_READ, 1, i, 1, 0, b.iova, 512, NULL));
		assert_int_equal(host_check_fill(b.va, 512, i), -1);
	}
	/* consecutive values of a doorbell always differ: no register write */
	assert_int_equal(h->db_page_reg_writes, 0);

	/* a reset zeroes the page, as it does the registers */
	assert_int_equal(host_disable(h), 0);
	for (size_t i = 0; i < h->db_page_len / 4; i++)
		assert_int_equal(h->db_page[i], 0);
	assert_int_equal(host_bringup(h), 0);
	assert_int_equal(host_create_qpair(h, 1, 8, -1), 0);
	assert_ok(host_rw(h, 1, NVME_CMD_READ, 1, 3, 1, 0, b.iova, 512, NULL));
	assert_int_equal(host_check_fill(b.va, 512, 3), -1);

	/* shadow doorbells on top: the page only carries what EventIdx asks */
	assert_ok(host_dbbuf_config(h, HOST_DB_EVENTIDX));
	assert_int_equal(host_create_qpair(h, 2, QSIZE, -1), 0);
	stress(h, 200);
	host_buf_free(h, &b);
	host_destroy(h);
}

static void test_db_page_bad_args(void **state)
{
	struct nvmk_emu_config cfg;
	struct host *h;
	static uint32_t page[1024];

	(void)state;
	host_config(&cfg, "dbpage-args");
	h = host_create(&cfg);
	assert_non_null(h);
	assert_int_equal(nvmk_emu_set_db_page(h->emu, NULL, 4, 8), -EINVAL);
	assert_int_equal(nvmk_emu_set_db_page(h->emu, page, 2, 8), -EINVAL);
	assert_int_equal(nvmk_emu_set_db_page(h->emu, page, 6, 8), -EINVAL);
	assert_int_equal(nvmk_emu_set_db_page(h->emu, page, 4, 0), -EINVAL);
	assert_int_equal(nvmk_emu_set_db_page(h->emu, page, 4, 1024), 0);
	assert_int_equal(nvmk_emu_set_db_page(h->emu, page, 4, 1024), -EBUSY);
	host_destroy(h);
}

/* AER with an Error event of @info expected after @poke; log read to unmask. */
static void expect_error_event(struct host *h, void (*poke)(struct host *), uint8_t info,
			       const char *what)
{
	struct nvme_cqe cqe;
	struct nvme_sqe sqe;
	uint8_t log[64];
	int cid, sf;

	host_sqe(&sqe, NVME_ADM_ASYNC_EVENT, 0);
	cid = host_submit(h, 0, &sqe);
	assert_true(cid >= 0);
	poke(h);
	sf = host_wait(h, 0, (uint16_t)cid, &cqe, 2000);
	if (sf < 0)
		fail_msg("%s: no Error event (AER still outstanding)", what);
	assert_ok(sf);
	assert_int_equal(NVME_AER_DW0_TYPE(cqe.dw0), NVME_AER_TYPE_ERROR);
	assert_int_equal(NVME_AER_DW0_INFO(cqe.dw0), info);
	assert_ok(host_get_log(h, NVME_LOG_ERROR, NVME_NSID_ALL, log, sizeof(log), false));
}

static void poke_bad_tail(struct host *h)
{
	/* straight onto the page: SQ 1 has 8 entries, 200 is not a valid tail */
	__atomic_store_n(&h->db_page[(nvme_sq_doorbell(1, h->dstrd) - NVME_REG_DBS) / 4], 200,
			 __ATOMIC_RELEASE);
}

static void poke_missing_queue(struct host *h)
{
	__atomic_store_n(&h->db_page[(nvme_sq_doorbell(3, h->dstrd) - NVME_REG_DBS) / 4], 1,
			 __ATOMIC_RELEASE);
}

static void poke_missing_queue_same(struct host *h)
{
	/* the page already holds 1 there: host_wr32 also writes the register */
	uint64_t before = h->db_page_reg_writes;

	host_wr32(h, nvme_sq_doorbell(3, h->dstrd), 1);
	assert_int_equal(h->db_page_reg_writes, before + 1);
}

/* Invalid values on the page are handled as register writes of them are. */
static void test_db_page_invalid(void **state)
{
	struct nvmk_emu_config cfg;
	struct host *h;
	struct host_buf b;

	(void)state;
	host_config(&cfg, "dbpage-bad");
	h = host_create(&cfg);
	assert_non_null(h);
	assert_int_equal(host_use_db_page(h), 0);
	assert_int_equal(host_bringup(h), 0);
	assert_int_equal(host_create_qpair(h, 1, 8, -1), 0);
	/* Invalid Doorbell Write Value (info 01h), then the queue still works
	 * once the host stores a valid value again */
	expect_error_event(h, poke_bad_tail, 0x01, "SQ tail 200 on the page");
	__atomic_store_n(&h->db_page[(nvme_sq_doorbell(1, h->dstrd) - NVME_REG_DBS) / 4],
			 h->sq[1].tail, __ATOMIC_RELEASE);
	assert_int_equal(host_buf_alloc(h, &b, 4096), 0);
	assert_ok(host_rw(h, 1, NVME_CMD_READ, 1, 0, 1, 0, b.iova, 512, NULL));
	/* Write to Invalid Doorbell Register (info 00h): by a store, and by a
	 * register write of the value the page already holds */
	expect_error_event(h, poke_missing_queue, 0x00, "SQ 3 tail on the page");
	expect_error_event(h, poke_missing_queue_same, 0x00, "SQ 3 tail, same value");
	assert_ok(host_rw(h, 1, NVME_CMD_READ, 1, 1, 1, 0, b.iova, 512, NULL));
	host_buf_free(h, &b);
	host_destroy(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_busy_worker_suppresses, host_destroy_all),
	    cmocka_unit_test_teardown(test_sleeping_worker_asks, host_destroy_all),
	    cmocka_unit_test_teardown(test_no_lost_wakeup, host_destroy_all),
	    cmocka_unit_test_teardown(test_db_page_io, host_destroy_all),
	    cmocka_unit_test_teardown(test_db_page_bad_args, host_destroy_all),
	    cmocka_unit_test_teardown(test_db_page_invalid, host_destroy_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
