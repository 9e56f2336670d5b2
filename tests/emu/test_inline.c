/* SPDX-License-Identifier: MIT */
/*
 * Emulator conformance with inline execution (nvmk_emu_config.inline_io): the
 * host sees the same controller (Base 2.0 queue mechanics, NVM-CS commands)
 * whether a doorbell write runs the commands itself or wakes the worker.
 * Reads, writes, flush, errors, a CQ smaller than its SQ (full CQ, then the
 * CQ head doorbell runs what was held back), wrap-around of both queues, two
 * threads on two queues against admin traffic (suite 'threaded', TSan), and
 * the fallbacks to the worker: fault rules, pause, a controller reset.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

static struct host *inline_host(void)
{
	struct nvmk_emu_config cfg;
	struct host *h;

	host_config(&cfg, "inl");
	cfg.inline_io = true;
	h = host_create(&cfg);
	assert_non_null(h);
	assert_int_equal(host_bringup(h), 0);
	return h;
}

/* Submit a 4 KiB Read or Write of LBA @slba (512 B blocks) from/to @b. */
static int submit_rw(struct host *h, uint16_t qid, uint8_t opc, uint64_t slba,
		     const struct host_buf *b)
{
	struct nvme_sqe sqe;

	host_sqe(&sqe, opc, 1);
	sqe.prp1 = b->iova;
	sqe.cdw10 = (uint32_t)slba;
	sqe.cdw11 = (uint32_t)(slba >> 32);
	sqe.cdw12 = 8 - 1;
	return host_submit(h, qid, &sqe);
}

static void test_inline_rw_flush(void **state)
{
	struct host *h = inline_host();
	struct host_buf wb, rb;
	struct nvme_sqe sqe;
	uint64_t n0;
	int cid;

	(void)state;
	assert_int_equal(host_create_qpair(h, 1, 32, 1), 0);
	assert_int_equal(host_buf_alloc(h, &wb, 4096), 0);
	assert_int_equal(host_buf_alloc(h, &rb, 4096), 0);
	n0 = nvmk_emu_inline_count(h->emu);
	for (unsigned i = 0; i < 20; i++) {
		host_fill(wb.va, 4096, 100 + i);
		cid = submit_rw(h, 1, NVME_CMD_WRITE, 64ull * i, &wb);
		assert_true(cid >= 0);
		assert_ok(host_wait(h, 1, (uint16_t)cid, NULL, HOST_TIMEOUT_MS));
		/* the CQ's vector was signalled, as by the worker */
		assert_true(host_irq_wait(h, 1, HOST_TIMEOUT_MS));
		host_irq_take(h, 1);
	}
	for (unsigned i = 0; i < 20; i++) {
		memset(rb.va, 0, 4096);
		cid = submit_rw(h, 1, NVME_CMD_READ, 64ull * i, &rb);
		assert_true(cid >= 0);
		assert_ok(host_wait(h, 1, (uint16_t)cid, NULL, HOST_TIMEOUT_MS));
		assert_int_equal(host_check_fill(rb.va, 4096, 100 + i), -1);
	}
	host_sqe(&sqe, NVME_CMD_FLUSH, 1);
	assert_ok(host_cmd(h, 1, &sqe, NULL));
	/* an error is reported inline exactly as by the worker */
	cid = submit_rw(h, 1, NVME_CMD_READ, (1ull << 30) / 512, &rb);
	assert_true(cid >= 0);
	assert_sf(host_wait(h, 1, (uint16_t)cid, NULL, HOST_TIMEOUT_MS), NVME_SCT_GENERIC,
		  NVME_SC_LBA_RANGE);
	/* Most of them ran on this thread (a doorbell written while the worker
	 * finishes a pass goes to the worker: only "some" is certain). */
	assert_true(nvmk_emu_inline_count(h->emu) > n0);
	host_buf_free(h, &wb);
	host_buf_free(h, &rb);
	host_destroy(h);
}

/* Entry @idx of CQ @cqid carries the phase of the current lap (posted). */
static bool cqe_posted(struct host *h, uint16_t cqid, uint32_t idx)
{
	struct nvme_cqe e;

	host_cq_raw(h, cqid, idx, &e);
	return (e.status & 1u) == h->cq[cqid].phase;
}

static void test_inline_cq_full_and_wrap(void **state)
{
	struct host *h = inline_host();
	struct host_buf b[10], rb;
	bool seen[11] = {false};
	uint64_t deadline;

	(void)state;
	/* a 4-entry CQ under a 16-entry SQ: 3 completions fit (Base 2.0 3.3.1.5) */
	assert_int_equal(host_create_cq(h, 1, 4, -1), 0);
	assert_int_equal(host_create_sq(h, 1, 1, 16), 0);
	for (unsigned i = 0; i < 10; i++) {
		struct nvme_sqe sqe;

		assert_int_equal(host_buf_alloc(h, &b[i], 4096), 0);
		host_fill(b[i].va, 4096, 500 + i);
		host_sqe(&sqe, NVME_CMD_WRITE, 1);
		sqe.cid = (uint16_t)(i + 1);
		sqe.prp1 = b[i].iova;
		sqe.cdw10 = 8 * i;
		sqe.cdw12 = 8 - 1;
		assert_int_equal(host_sq_put(h, 1, &sqe), 0);
	}
	host_sq_ring(h, 1);
	deadline = host_now_ms() + HOST_TIMEOUT_MS;
	while (!cqe_posted(h, 1, 2) && host_now_ms() < deadline)
		host_sleep_ms(1);
	assert_true(cqe_posted(h, 1, 0) && cqe_posted(h, 1, 1) && cqe_posted(h, 1, 2));
	/* the last slot stays free: the CQ is full with size - 1 entries */
	host_sleep_ms(HOST_QUIET_MS);
	assert_false(cqe_posted(h, 1, 3));
	/* each CQ head doorbell lets one more command complete */
	for (unsigned i = 0; i < 10; i++) {
		struct nvme_cqe e;

		assert_int_equal(host_cq_next(h, 1, &e, HOST_TIMEOUT_MS), 0);
		assert_ok(NVME_CQE_SF(e.status));
		assert_true(e.cid >= 1 && e.cid <= 10 && !seen[e.cid]);
		seen[e.cid] = true;
	}
	/* round trips over both queues: 20 laps of the CQ, 5 of the SQ */
	assert_int_equal(host_buf_alloc(h, &rb, 4096), 0);
	for (unsigned i = 0; i < 80; i++) {
		unsigned k = i % 10;
		int cid;

		memset(rb.va, 0, 4096);
		cid = submit_rw(h, 1, NVME_CMD_READ, 8 * k, &rb);
		assert_true(cid >= 0);
		assert_ok(host_wait(h, 1, (uint16_t)cid, NULL, HOST_TIMEOUT_MS));
		assert_int_equal(host_check_fill(rb.va, 4096, 500 + k), -1);
	}
	for (unsigned i = 0; i < 10; i++)
		host_buf_free(h, &b[i]);
	host_buf_free(h, &rb);
	host_destroy(h);
}

#define NTHREADS 2
#define ROUNDS	 300

struct writer {
	struct host *h;
	uint16_t qid;
	pthread_t tid;
	char err[160]; /* read after the join only */
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct host_buf wb, rb;

	/* no cmocka asserts off the main thread (they longjmp) */
	if (host_buf_alloc(w->h, &wb, 4096) || host_buf_alloc(w->h, &rb, 4096)) {
		snprintf(w->err, sizeof(w->err), "q%u: out of DMA memory", w->qid);
		return NULL;
	}
	for (unsigned i = 0; i < ROUNDS && !w->err[0]; i++) {
		uint64_t lba = 100000ull * w->qid + 8 * (i % 64);
		uint64_t seed = (uint64_t)w->qid << 32 | i;
		int cid, sf;

		host_fill(wb.va, 4096, seed);
		cid = submit_rw(w->h, w->qid, NVME_CMD_WRITE, lba, &wb);
		sf = cid < 0 ? cid : host_wait(w->h, w->qid, (uint16_t)cid, NULL, HOST_TIMEOUT_MS);
		if (sf) {
			snprintf(w->err, sizeof(w->err), "q%u: write %u: %d", w->qid, i, sf);
			break;
		}
		memset(rb.va, 0, 4096);
		cid = submit_rw(w->h, w->qid, NVME_CMD_READ, lba, &rb);
		sf = cid < 0 ? cid : host_wait(w->h, w->qid, (uint16_t)cid, NULL, HOST_TIMEOUT_MS);
		if (sf)
			snprintf(w->err, sizeof(w->err), "q%u: read %u: %d", w->qid, i, sf);
		else if (host_check_fill(rb.va, 4096, seed) >= 0)
			snprintf(w->err, sizeof(w->err), "q%u: round %u: data differs", w->qid, i);
	}
	host_buf_free(w->h, &wb);
	host_buf_free(w->h, &rb);
	return NULL;
}

/* Two threads ring two queues while the worker serves the admin queue: the
 * exec lock decides who runs what; nothing is lost or run twice. */
static void test_inline_two_threads(void **state)
{
	struct host *h = inline_host();
	struct writer w[NTHREADS];
	struct nvme_id_ctrl id;
	int admin_sf = 0;

	(void)state;
	memset(w, 0, sizeof(w));
	for (unsigned i = 0; i < NTHREADS; i++) {
		assert_int_equal(host_create_qpair(h, (uint16_t)(i + 1), 16, -1), 0);
		w[i].h = h;
		w[i].qid = (uint16_t)(i + 1);
	}
	for (unsigned i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&w[i].tid, NULL, writer_main, &w[i]), 0);
	for (unsigned i = 0; i < 50 && !admin_sf; i++)
		admin_sf = host_identify(h, NVME_ID_CNS_CTRL, 0, &id);
	for (unsigned i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(w[i].tid, NULL), 0);
	assert_ok(admin_sf);
	for (unsigned i = 0; i < NTHREADS; i++)
		if (w[i].err[0])
			fail_msg("%s", w[i].err);
	assert_true(nvmk_emu_inline_count(h->emu) > 0);
	host_destroy(h);
}

/* A fault rule sends every queue to the worker, which applies it; clearing
 * the rules brings inline execution back. */
static void test_inline_fault_fallback(void **state)
{
	struct host *h = inline_host();
	struct nvmk_emu_fault f = {.kind = NVMK_FAULT_STATUS,
				   .qid = 1,
				   .opcode = NVME_CMD_WRITE,
				   .count = 1,
				   .status = NVME_SF(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULT)};
	struct host_buf b;
	uint64_t n0, t0;
	int cid;

	(void)state;
	assert_int_equal(host_create_qpair(h, 1, 16, -1), 0);
	assert_int_equal(host_buf_alloc(h, &b, 4096), 0);
	assert_true(nvmk_emu_fault_add(h->emu, &f) >= 0);
	n0 = nvmk_emu_inline_count(h->emu);
	cid = submit_rw(h, 1, NVME_CMD_WRITE, 0, &b);
	assert_true(cid >= 0);
	assert_sf(host_wait(h, 1, (uint16_t)cid, NULL, HOST_TIMEOUT_MS), NVME_SCT_MEDIA,
		  NVME_SC_WRITE_FAULT);
	/* a delayed completion: held by the worker, on its timer */
	f = (struct nvmk_emu_fault){.kind = NVMK_FAULT_DELAY,
				    .qid = 1,
				    .opcode = NVME_CMD_READ,
				    .count = 1,
				    .delay_us = 50000};
	assert_true(nvmk_emu_fault_add(h->emu, &f) >= 0);
	t0 = host_now_ms();
	cid = submit_rw(h, 1, NVME_CMD_READ, 0, &b);
	assert_true(cid >= 0);
	assert_ok(host_wait(h, 1, (uint16_t)cid, NULL, HOST_TIMEOUT_MS));
	assert_true(host_now_ms() - t0 >= 50);
	/* with rules installed nothing ran inline, used up or not */
	assert_int_equal(nvmk_emu_inline_count(h->emu), n0);
	nvmk_emu_fault_clear(h->emu);
	for (unsigned i = 0; i < 10; i++) {
		cid = submit_rw(h, 1, NVME_CMD_WRITE, 8, &b);
		assert_true(cid >= 0);
		assert_ok(host_wait(h, 1, (uint16_t)cid, NULL, HOST_TIMEOUT_MS));
		host_sleep_ms(1);
	}
	assert_true(nvmk_emu_inline_count(h->emu) > n0);
	host_buf_free(h, &b);
	host_destroy(h);
}

/* A paused controller touches nothing, inline or not. */
static void test_inline_pause(void **state)
{
	struct host *h = inline_host();
	struct host_buf b;
	int cid;

	(void)state;
	assert_int_equal(host_create_qpair(h, 1, 16, -1), 0);
	assert_int_equal(host_buf_alloc(h, &b, 4096), 0);
	assert_int_equal(nvmk_emu_pause(h->emu, true, HOST_TIMEOUT_MS), 0);
	cid = submit_rw(h, 1, NVME_CMD_WRITE, 0, &b);
	assert_true(cid >= 0);
	assert_int_equal(host_wait(h, 1, (uint16_t)cid, NULL, HOST_QUIET_MS), -ETIMEDOUT);
	assert_int_equal(nvmk_emu_pause(h->emu, false, HOST_TIMEOUT_MS), 0);
	assert_ok(host_wait(h, 1, (uint16_t)cid, NULL, HOST_TIMEOUT_MS));
	host_buf_free(h, &b);
	host_destroy(h);
}

/* A controller reset (CC.EN 1 -> 0) is the worker's: the queues go, the data
 * stays, and new queues run inline again after the next enable. */
static void test_inline_reset(void **state)
{
	struct host *h = inline_host();
	struct host_buf b;
	uint64_t n0;
	int cid;

	(void)state;
	assert_int_equal(host_create_qpair(h, 1, 16, -1), 0);
	assert_int_equal(host_buf_alloc(h, &b, 4096), 0);
	host_fill(b.va, 4096, 77);
	cid = submit_rw(h, 1, NVME_CMD_WRITE, 800, &b);
	assert_true(cid >= 0);
	assert_ok(host_wait(h, 1, (uint16_t)cid, NULL, HOST_TIMEOUT_MS));
	assert_int_equal(host_disable(h), 0);
	assert_int_equal(host_bringup(h), 0);
	assert_int_equal(host_create_qpair(h, 1, 16, -1), 0);
	n0 = nvmk_emu_inline_count(h->emu);
	for (unsigned i = 0; i < 10; i++) {
		memset(b.va, 0, 4096);
		cid = submit_rw(h, 1, NVME_CMD_READ, 800, &b);
		assert_true(cid >= 0);
		assert_ok(host_wait(h, 1, (uint16_t)cid, NULL, HOST_TIMEOUT_MS));
		assert_int_equal(host_check_fill(b.va, 4096, 77), -1);
		host_sleep_ms(1);
	}
	assert_true(nvmk_emu_inline_count(h->emu) > n0);
	host_buf_free(h, &b);
	host_destroy(h);
}

/* Doorbells in memory would bypass the register writes inline runs on:
 * Doorbell Buffer Config is not offered, a doorbell page is refused. */
static void test_inline_no_memory_doorbells(void **state)
{
	struct host *h = inline_host();
	struct nvme_id_ctrl id;

	(void)state;
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
	assert_int_equal(id.oacs & NVME_OACS_DBBUF, 0);
	assert_int_equal(host_use_db_page(h), -EINVAL);
	host_destroy(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_inline_rw_flush, host_destroy_all),
	    cmocka_unit_test_teardown(test_inline_cq_full_and_wrap, host_destroy_all),
	    cmocka_unit_test_teardown(test_inline_two_threads, host_destroy_all),
	    cmocka_unit_test_teardown(test_inline_fault_fallback, host_destroy_all),
	    cmocka_unit_test_teardown(test_inline_pause, host_destroy_all),
	    cmocka_unit_test_teardown(test_inline_reset, host_destroy_all),
	    cmocka_unit_test_teardown(test_inline_no_memory_doorbells, host_destroy_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
