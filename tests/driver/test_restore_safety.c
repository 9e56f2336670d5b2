// SPDX-License-Identifier: MIT
/* Restore safety (issue 14): what a successor that crashes and is re-run, or
 * an operator who retries, can do with saved states, checked through the
 * public API on the emulator.
 *  - Only the latest save restores, and a restore consumes it: an older or
 *    already restored state is refused before anything is touched, so no
 *    completion is ever delivered twice.
 *  - A refused restore claims nothing in the pool: the right state can
 *    follow on the same pool handle.
 *  - One owner per device: a second open or restore on a backing in use is
 *    refused before any register write (a live controller is never reset).
 *  - A device reset and re-enabled by someone else behind a saved state is
 *    found by restore, which brings the controller up afresh and fails the
 *    requests that were in flight exactly once.
 *  - nvmk_qpair_outstanding counts requests, not the parts of a split one. */
#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "dma/pool_table.h"
#include "sr_test.h"

/* A second handle on the pool, as a successor gets after exec; the old one
 * stays mapped (the device may still use its blocks) until the end. */
static struct nvmk_dma_pool *handover(struct senv *s)
{
	struct nvmk_dma_pool *np, *old = s->pool;

	assert_int_equal(nvmk_dma_pool_open(dup(nvmk_dma_pool_fd(s->pool)), &np), 0);
	s->pool = s->b->pool = np;
	return old;
}

static void save_detach(struct senv *s, bool keep_alive, void **blob, size_t *len)
{
	struct nvmk_save_opts so = {.keep_alive = keep_alive, .drain_timeout_ms = 3000};

	assert_int_equal(nvmk_ctrl_save(s->ctrl, &so, blob, len), 0);
	nvmk_ctrl_detach(s->ctrl);
	s->ctrl = NULL;
}

/* @n reads of 8 blocks that the device holds for @delay_ms, fetched by it
 * before this returns (so that a save finds them in flight). */
static void delayed_reads(struct senv *s, struct nvmk_ns *ns, struct nvmk_qpair *qp,
			  const struct nvmk_dma_buf *d, unsigned n, unsigned delay_ms,
			  unsigned *ids)
{
	uint64_t r0 = nvmk_emu_cmd_count(s->emu, false, NVME_CMD_READ);

	nvmk_emu_fault_add(s->emu, &(struct nvmk_emu_fault){.kind = NVMK_FAULT_DELAY,
							    .qid = nvmk_qpair_id(qp),
							    .opcode = NVME_CMD_READ,
							    .count = n,
							    .delay_us = delay_ms * 1000ull});
	for (unsigned i = 0; i < n; i++) {
		ids[i] = req_new();
		assert_int_equal(nvmk_ns_submit_read(ns, qp, d, i * 4096, 8 * i, 8, 0, req_cb,
						     (void *)(uintptr_t)ids[i]),
				 0);
	}
	for (int i = 0; i < 2000 && nvmk_emu_cmd_count(s->emu, false, NVME_CMD_READ) < r0 + n; i++)
		tsleep_ms(1);
	assert_int_equal(nvmk_emu_cmd_count(s->emu, false, NVME_CMD_READ), r0 + n);
}

static void assert_done(const unsigned *ids, unsigned n, int times)
{
	for (unsigned i = 0; i < n; i++)
		if (req_done(ids[i]) != times)
			fail_msg("request %u completed %d times, expected %d", ids[i],
				 req_done(ids[i]), times);
}

static uint32_t cc_of(struct senv *s)
{
	return nvmk_emu_reg_read32(s->emu, NVME_REG_CC);
}

/* ---- 1. only the latest save restores; a restore consumes it ---- */

static void test_stale_state_refused(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = sopts();
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL};
	struct senv s;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct nvmk_dma_buf d;
	struct nvmk_dma_pool *old[4];
	unsigned ids[8];
	uint16_t qid;
	void *b1, *b2, *b3;
	size_t l1, l2, l3;
	struct counts c0, c1;
	uint32_t cc0;
	uint64_t resets0;

	(void)state;
	tcfg_default(&cfg, "emu-stale");
	senv_open(&s, &cfg, &o);
	assert_int_equal(nvmk_ns_open(s.ctrl, 1, 0, &ns), 0);
	assert_int_equal(nvmk_qpair_create(s.ctrl, &qo, &qp), 0);
	qid = nvmk_qpair_id(qp);
	dbuf_alloc(&s, 8 * 4096, &d);

	/* B1 with four reads in flight, restored: each completes once */
	delayed_reads(&s, ns, qp, &d, 4, 30, ids);
	save_detach(&s, true, &b1, &l1);
	old[0] = handover(&s);
	assert_int_equal(nvmk_ctrl_restore(s.b, b1, l1, &s.ro, &s.ctrl), 0);
	assert_int_equal(nvmk_dma_pool_finish_restore(s.pool), 0);
	qp = nvmk_ctrl_restored_qpair(s.ctrl, qid);
	ns = nvmk_ctrl_restored_ns(s.ctrl, 1);
	assert_non_null(qp);
	wait_all(&qp, 1, ids, 4);

	/* I/O between the saves, then B2 */
	delayed_reads(&s, ns, qp, &d, 4, 30, ids + 4);
	save_detach(&s, true, &b2, &l2);
	old[1] = handover(&s);
	c0 = counts(&s);
	cc0 = cc_of(&s);
	resets0 = nvmk_emu_reset_count(s.emu);

	/* the older B1 is refused, before anything is touched or delivered */
	tlog_reset();
	assert_int_equal(nvmk_ctrl_restore(s.b, b1, l1, &s.ro, &s.ctrl), -ESTALE);
	assert_null(s.ctrl);
	assert_true(tlog_has("older than the latest save"));
	tsleep_ms(60); /* B2's reads complete on the device meanwhile */
	assert_done(ids, 4, 1);
	assert_done(ids + 4, 4, 0);
	c1 = counts(&s);
	assert_memory_equal(&c0, &c1, sizeof(c0));
	assert_int_equal(cc_of(&s), cc0);
	assert_int_equal(nvmk_emu_reset_count(s.emu), resets0);

	/* B2 on the same pool handle: its own requests, once */
	assert_int_equal(nvmk_ctrl_restore(s.b, b2, l2, &s.ro, &s.ctrl), 0);
	assert_int_equal(nvmk_dma_pool_finish_restore(s.pool), 0);
	qp = nvmk_ctrl_restored_qpair(s.ctrl, qid);
	assert_non_null(qp);
	wait_all(&qp, 1, ids + 4, 4);
	assert_done(ids, 4, 1);

	/* the successor dies after its restore (no save) and is re-run with B2:
	 * refused, nothing is delivered again */
	nvmk_ctrl_detach(s.ctrl);
	s.ctrl = NULL;
	old[2] = handover(&s);
	tlog_reset();
	assert_int_equal(nvmk_ctrl_restore(s.b, b2, l2, &s.ro, &s.ctrl), -ESTALE);
	assert_true(tlog_has("already restored"));
	assert_null(s.ctrl);
	/* B1 as well */
	assert_int_equal(nvmk_ctrl_restore(s.b, b1, l1, &s.ro, &s.ctrl), -ESTALE);
	assert_done(ids, 8, 1);

	/* the way out for the operator: declare the old blocks leaked, bring the
	 * device up afresh (a reset), release the leaked blocks */
	assert_int_equal(nvmk_dma_pool_finish_restore(s.pool), -EUCLEAN);
	assert_int_equal(nvmk_ctrl_open(s.b, &o, &s.ctrl), 0);
	assert_true(nvmk_emu_reset_count(s.emu) > resets0);
	/* a state saved before a fresh bring-up (a reset) is stale as well */
	save_detach(&s, true, &b3, &l3);
	old[3] = handover(&s);
	assert_int_equal(nvmk_dma_pool_finish_restore(s.pool), -EUCLEAN);
	assert_int_equal(nvmk_ctrl_open(s.b, &o, &s.ctrl), 0);
	nvmk_ctrl_close(s.ctrl);
	s.ctrl = NULL;
	assert_int_equal(nvmk_ctrl_restore(s.b, b3, l3, &s.ro, &s.ctrl), -ESTALE);
	assert_int_equal(nvmk_ctrl_open(s.b, &o, &s.ctrl), 0);
	assert_done(ids, 8, 1);
	free(b1);
	free(b2);
	free(b3);
	nvmk_backing_dma_free(s.b, &d);
	senv_close(&s);
	for (int i = 0; i < 4; i++)
		nvmk_dma_pool_destroy(old[i]);
}

/* ---- 2. a refused restore claims nothing ---- */

static void m_last_prp_gone(Nvmk__CtrlState *st)
{
	Nvmk__Queue *q = st->qpairs[st->n_qpairs - 1]->queue;

	SET_PTR(q->prp->tag, (char *)"io99.prp");
}

/* The admin CQ's saved device address inside the doorbell buffer's range:
 * only the backing's remap finds that (after earlier blocks were claimed). */
static void m_admin_cq_iova(Nvmk__CtrlState *st)
{
	assert_non_null(st->dbbuf_mem);
	st->admin->cq->iova = st->dbbuf_mem->iova + 4096;
}

static void test_refused_restore_claims_nothing(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = sopts();
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL};
	struct senv s;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp[2];
	struct nvmk_dma_buf d;
	struct nvmk_dma_pool *old;
	struct nvmk_dma_pool_stats st0, st1;
	unsigned ids[4];
	uint16_t qid[2];
	void *blob, *bad;
	size_t len, blen;
	struct counts c0, c1;

	(void)state;
	tcfg_default(&cfg, "emu-noclaim");
	senv_open(&s, &cfg, &o);
	assert_int_equal(nvmk_ns_open(s.ctrl, 1, 0, &ns), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(nvmk_qpair_create(s.ctrl, &qo, &qp[i]), 0);
		qid[i] = nvmk_qpair_id(qp[i]);
	}
	dbuf_alloc(&s, 8 * 4096, &d);
	delayed_reads(&s, ns, qp[0], &d, 4, 30, ids);
	save_detach(&s, true, &blob, &len);
	old = handover(&s);
	nvmk_dma_pool_get_stats(s.pool, &st0);
	c0 = counts(&s);

	/* a state whose last queue block is no longer in the pool: refused, and
	 * every block before it is still unclaimed */
	bad = remake(blob, len, m_last_prp_gone, NVMK_CTRL_STATE_VERSION, &blen);
	tlog_reset();
	assert_int_equal(nvmk_ctrl_restore(s.b, bad, blen, &s.ro, &s.ctrl), -ENOENT);
	assert_true(tlog_has("io99.prp"));
	free(bad);
	nvmk_dma_pool_get_stats(s.pool, &st1);
	assert_int_equal(st1.unclaimed_slots, st0.unclaimed_slots);
	assert_int_equal(st1.used_slots, st0.used_slots);
	c1 = counts(&s);
	assert_memory_equal(&c0, &c1, sizeof(c0));
	/* refused by the backing's remap, after claims: all given back */
	bad = remake(blob, len, m_admin_cq_iova, NVMK_CTRL_STATE_VERSION, &blen);
	assert_int_not_equal(nvmk_ctrl_restore(s.b, bad, blen, &s.ro, &s.ctrl), 0);
	assert_true(tlog_has("DMA remap of admin.cq"));
	free(bad);
	nvmk_dma_pool_get_stats(s.pool, &st1);
	assert_int_equal(st1.unclaimed_slots, st0.unclaimed_slots);
	assert_int_equal(st1.used_slots, st0.used_slots);

	/* the right state follows on the same pool handle */
	assert_int_equal(nvmk_ctrl_restore(s.b, blob, len, &s.ro, &s.ctrl), 0);
	assert_int_equal(nvmk_dma_pool_finish_restore(s.pool), 0);
	qp[0] = nvmk_ctrl_restored_qpair(s.ctrl, qid[0]);
	qp[1] = nvmk_ctrl_restored_qpair(s.ctrl, qid[1]);
	assert_non_null(qp[0]);
	assert_non_null(qp[1]);
	wait_all(qp, 2, ids, 4);
	free(blob);
	nvmk_qpair_destroy(qp[0]);
	nvmk_qpair_destroy(qp[1]);
	/* the namespace handle is not taken back: close frees it (LeakSanitizer) */
	nvmk_backing_dma_free(s.b, &d);
	senv_close(&s);
	nvmk_dma_pool_destroy(old);
}

/* ---- 3. one owner per device ---- */

static void test_one_owner(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = sopts();
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL};
	struct senv s;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct nvmk_ctrl *c2 = NULL;
	struct nvmk_dma_pool *old;
	char buf[512] = "owner";
	void *blob;
	size_t len;
	struct counts c0, c1;
	uint32_t cc0;
	uint64_t resets0;
	uint16_t qid;

	(void)state;
	tcfg_default(&cfg, "emu-owner");
	senv_open(&s, &cfg, &o);
	assert_int_equal(nvmk_ns_open(s.ctrl, 1, 0, &ns), 0);
	assert_int_equal(nvmk_qpair_create(s.ctrl, &qo, &qp), 0);
	qid = nvmk_qpair_id(qp);
	c0 = counts(&s);
	cc0 = cc_of(&s);
	resets0 = nvmk_emu_reset_count(s.emu);

	/* a second open on the backing in use: refused before any register write */
	tlog_reset();
	assert_int_equal(nvmk_ctrl_open(s.b, &o, &c2), -EBUSY);
	assert_null(c2);
	assert_true(tlog_has("in use by another controller"));
	c1 = counts(&s);
	assert_memory_equal(&c0, &c1, sizeof(c0));
	assert_int_equal(cc_of(&s), cc0);
	assert_int_equal(nvmk_emu_reset_count(s.emu), resets0);
	assert_int_equal(nvmk_ns_write(ns, qp, buf, 7, 1), 0);

	/* keep-alive off: a second restore of the state while the controller
	 * restored from it runs is refused, the live controller is not touched */
	save_detach(&s, false, &blob, &len);
	assert_int_equal(nvmk_ctrl_restore(s.b, blob, len, &s.ro, &s.ctrl), 0);
	qp = nvmk_ctrl_restored_qpair(s.ctrl, qid);
	ns = nvmk_ctrl_restored_ns(s.ctrl, 1);
	assert_non_null(qp);
	resets0 = nvmk_emu_reset_count(s.emu);
	cc0 = cc_of(&s);
	tlog_reset();
	assert_int_equal(nvmk_ctrl_restore(s.b, blob, len, &s.ro, &c2), -EBUSY);
	assert_null(c2);
	assert_true(tlog_has("in use by another controller"));
	assert_int_equal(cc_of(&s), cc0);
	assert_int_equal(nvmk_emu_reset_count(s.emu), resets0);
	assert_int_equal(nvmk_ns_write(ns, qp, buf, 8, 1), 0);
	free(blob);

	/* keep-alive: the state of a controller that runs again is refused too */
	save_detach(&s, true, &blob, &len);
	old = handover(&s);
	assert_int_equal(nvmk_ctrl_restore(s.b, blob, len, &s.ro, &s.ctrl), 0);
	assert_int_equal(nvmk_dma_pool_finish_restore(s.pool), 0);
	qp = nvmk_ctrl_restored_qpair(s.ctrl, qid);
	ns = nvmk_ctrl_restored_ns(s.ctrl, 1);
	assert_int_equal(nvmk_ctrl_restore(s.b, blob, len, &s.ro, &c2), -EBUSY);
	assert_int_equal(nvmk_ns_write(ns, qp, buf, 9, 1), 0);
	free(blob);

	/* once closed, the device can be opened again */
	nvmk_qpair_destroy(qp);
	nvmk_ns_close(ns);
	nvmk_ctrl_close(s.ctrl);
	assert_int_equal(nvmk_ctrl_open(s.b, &o, &s.ctrl), 0);
	senv_close(&s);
	nvmk_dma_pool_destroy(old);
}

/* ---- 4. reset and re-enabled by someone else behind a saved state ---- */

static void reset_behind_state(bool defer)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = sopts();
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL};
	struct senv s;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct nvmk_dma_buf d;
	struct nvmk_dma_pool *old;
	unsigned ids[4];
	uint16_t qid;
	void *blob;
	size_t len;
	uint32_t cc, aqa;
	uint64_t asq, acq, identify0;
	char buf[4096];

	tcfg_default(&cfg, "emu-reset-behind");
	senv_open(&s, &cfg, &o);
	s.ro.defer_completions = defer;
	assert_int_equal(nvmk_ns_open(s.ctrl, 1, 0, &ns), 0);
	assert_int_equal(nvmk_qpair_create(s.ctrl, &qo, &qp), 0);
	qid = nvmk_qpair_id(qp);
	dbuf_alloc(&s, 8 * 4096, &d);
	delayed_reads(&s, ns, qp, &d, 4, 400, ids);
	save_detach(&s, true, &blob, &len);
	old = handover(&s);

	/* someone resets the controller and enables it again with the same
	 * admin queue registers (Base 2.0 3.5.1): the registers look as saved */
	cc = nvmk_emu_reg_read32(s.emu, NVME_REG_CC);
	aqa = nvmk_emu_reg_read32(s.emu, NVME_REG_AQA);
	asq = nvmk_emu_reg_read64(s.emu, NVME_REG_ASQ);
	acq = nvmk_emu_reg_read64(s.emu, NVME_REG_ACQ);
	nvmk_emu_reg_write32(s.emu, NVME_REG_CC, cc & ~NVME_CC_EN);
	for (int i = 0; i < 500 && (nvmk_emu_reg_read32(s.emu, NVME_REG_CSTS) & NVME_CSTS_RDY); i++)
		tsleep_ms(1);
	nvmk_emu_reg_write32(s.emu, NVME_REG_AQA, aqa);
	nvmk_emu_reg_write64(s.emu, NVME_REG_ASQ, asq);
	nvmk_emu_reg_write64(s.emu, NVME_REG_ACQ, acq);
	nvmk_emu_reg_write32(s.emu, NVME_REG_CC, cc);
	for (int i = 0; i < 500 && !(nvmk_emu_reg_read32(s.emu, NVME_REG_CSTS) & NVME_CSTS_RDY);
	     i++)
		tsleep_ms(1);
	identify0 = nvmk_emu_cmd_count(s.emu, true, NVME_ADM_IDENTIFY);

	/* restore finds out, brings the controller up afresh and fails the
	 * requests that were in flight, each once, before it returns */
	tlog_reset();
	assert_int_equal(nvmk_ctrl_restore(s.b, blob, len, &s.ro, &s.ctrl), 0);
	assert_true(tlog_has("was reset"));
	assert_int_equal(nvmk_dma_pool_finish_restore(s.pool), 0);
	qp = nvmk_ctrl_restored_qpair(s.ctrl, qid);
	ns = nvmk_ctrl_restored_ns(s.ctrl, 1);
	assert_non_null(qp);
	assert_non_null(ns);
	assert_int_equal(nvmk_emu_cmd_count(s.emu, true, NVME_ADM_IDENTIFY), identify0);
	if (defer) { /* failed at the qpair's first call instead */
		assert_done(ids, 4, 0);
		assert_true(nvmk_qpair_process_completions(qp, 0) >= 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(req_done(ids[i]), 1);
		assert_true(reqs[ids[i]].err < 0);
	}
	/* nothing completes twice later, and the qpair works again */
	tsleep_ms(450);
	assert_true(nvmk_qpair_process_completions(qp, 0) >= 0);
	assert_done(ids, 4, 1);
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(nvmk_ns_write(ns, qp, buf, 100, 8), 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(nvmk_ns_read(ns, qp, buf, 100, 8), 0);
	assert_int_equal((unsigned char)buf[4095], 0x5a);
	assert_int_equal(nvmk_ctrl_failed(s.ctrl), 0);
	free(blob);
	nvmk_qpair_destroy(qp);
	nvmk_ns_close(ns);
	nvmk_backing_dma_free(s.b, &d);
	senv_close(&s);
	nvmk_dma_pool_destroy(old);
}

static void test_reset_behind_state(void **state)
{
	(void)state;
	reset_behind_state(false);
}

static void test_reset_behind_state_deferred(void **state)
{
	(void)state;
	reset_behind_state(true);
}

/* ---- 6. outstanding requests, not parts ---- */

static void test_outstanding_counts_requests(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = sopts();
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL};
	struct senv s;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct nvmk_dma_buf d;
	const size_t big = 256 * 1024; /* above MDTS (128 KiB): two parts */
	unsigned ids[2];

	(void)state;
	tcfg_default(&cfg, "emu-outstanding");
	senv_open(&s, &cfg, &o);
	assert_true(nvmk_ctrl_mdts_bytes(s.ctrl) < big);
	assert_int_equal(nvmk_ns_open(s.ctrl, 1, 0, &ns), 0);
	assert_int_equal(nvmk_qpair_create(s.ctrl, &qo, &qp), 0);
	dbuf_alloc(&s, 2 * big, &d);
	nvmk_emu_fault_add(s.emu, &(struct nvmk_emu_fault){.kind = NVMK_FAULT_DELAY,
							   .qid = nvmk_qpair_id(qp),
							   .opcode = NVMK_FAULT_ANY_OPC,
							   .delay_us = 20000});
	ids[0] = req_new();
	assert_int_equal(nvmk_ns_submit_write(ns, qp, &d, 0, 0, (uint32_t)(big >> 9), 0, req_cb,
					      (void *)(uintptr_t)ids[0]),
			 0);
	assert_int_equal(nvmk_qpair_outstanding(qp), 1);
	ids[1] = req_new();
	assert_int_equal(
	    nvmk_ns_submit_read(ns, qp, &d, big, 0, 8, 0, req_cb, (void *)(uintptr_t)ids[1]), 0);
	assert_int_equal(nvmk_qpair_outstanding(qp), 2);
	wait_all(&qp, 1, ids, 2);
	assert_int_equal(nvmk_qpair_outstanding(qp), 0);
	nvmk_emu_fault_clear(s.emu);
	nvmk_qpair_destroy(qp);
	nvmk_ns_close(ns);
	nvmk_backing_dma_free(s.b, &d);
	senv_close(&s);
}

/* ---- 5. data buffers from the pool, reclaimed by their tags ---- */

static void test_pool_data_buffers(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = sopts();
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL};
	struct senv s;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct nvmk_dma_buf named, numbered, eph, x;
	struct nvmk_dma_pool *old;
	char tag_named[NVMK_DMA_TAG_MAX + 1], tag_num[NVMK_DMA_TAG_MAX + 1];
	uint64_t iova_named, iova_num;
	unsigned ids[8];
	uint16_t qid;
	void *blob;
	size_t len;

	(void)state;
	tcfg_default(&cfg, "emu-userbuf");
	senv_open(&s, &cfg, &o);
	assert_int_equal(nvmk_ns_open(s.ctrl, 1, 0, &ns), 0);
	assert_int_equal(nvmk_qpair_create(s.ctrl, &qo, &qp), 0);
	qid = nvmk_qpair_id(qp);

	/* tags the caller names, and the rules for them */
	assert_int_equal(nvmk_ctrl_dma_alloc_tagged(s.ctrl, 4 * 4096, "user.nbd0", &named), 0);
	tlog_reset();
	assert_int_equal(nvmk_ctrl_dma_alloc_tagged(s.ctrl, 4096, "nbd0", &x), -EINVAL);
	assert_true(tlog_has("\"user.\" followed by"));
	assert_int_equal(nvmk_ctrl_dma_alloc_tagged(s.ctrl, 4096, "user.", &x), -EINVAL);
	assert_int_equal(nvmk_ctrl_dma_alloc_tagged(s.ctrl, 4096, "user.a/b", &x), -EINVAL);
	assert_int_equal(nvmk_ctrl_dma_alloc_tagged(s.ctrl, 4096, NULL, &x), -EINVAL);
	assert_int_equal(
	    nvmk_ctrl_dma_alloc_tagged(s.ctrl, 4096, "user.0123456789012345678901234567", &x),
	    -EINVAL);
	assert_int_equal(nvmk_ctrl_dma_alloc_tagged(s.ctrl, 4096, "user.nbd0", &x), -EEXIST);
	/* ... and the tag of a numbered buffer, learnt */
	assert_int_equal(nvmk_ctrl_dma_alloc(s.ctrl, 4 * 4096, &numbered), 0);
	assert_int_equal(nvmk_dma_tag(&named.mem, tag_named, sizeof(tag_named)), 0);
	assert_string_equal(tag_named, "user.nbd0");
	assert_int_equal(nvmk_dma_tag(&numbered.mem, tag_num, sizeof(tag_num)), 0);
	assert_int_equal(strncmp(tag_num, "user", 4), 0);
	assert_int_equal(nvmk_dma_tag(&numbered.mem, tag_num, 3), -ENOSPC);
	dbuf_alloc(&s, 4096, &eph);
	assert_int_equal(nvmk_dma_tag(&eph.mem, tag_num, sizeof(tag_num)), -EINVAL);
	assert_int_equal(nvmk_dma_tag(&numbered.mem, tag_num, sizeof(tag_num)), 0);

	/* reads in flight into both pool buffers across a keep-alive servicing */
	for (unsigned i = 0; i < 4; i++) {
		char blk[4096];

		pattern(blk, sizeof(blk), 700 + i);
		assert_int_equal(nvmk_ns_write(ns, qp, blk, 1000 + 8 * i, 8), 0);
	}
	nvmk_emu_fault_add(s.emu, &(struct nvmk_emu_fault){.kind = NVMK_FAULT_DELAY,
							   .qid = qid,
							   .opcode = NVME_CMD_READ,
							   .count = 8,
							   .delay_us = 40000});
	for (unsigned i = 0; i < 8; i++) {
		ids[i] = req_new();
		assert_int_equal(nvmk_ns_submit_read(ns, qp, i < 4 ? &named : &numbered,
						     (i % 4) * 4096, 1000 + 8 * (i % 4), 8, 0,
						     req_cb, (void *)(uintptr_t)ids[i]),
				 0);
	}
	iova_named = nvmk_dma_buf_iova(&named, 0);
	iova_num = nvmk_dma_buf_iova(&numbered, 0);
	assert_int_equal(nvmk_ctrl_save(s.ctrl, NULL, &blob, &len), 0);
	/* the caller's buffers: forgotten here, the device keeps writing */
	nvmk_backing_dma_forget(s.b, &named);
	nvmk_backing_dma_forget(s.b, &numbered);
	nvmk_ctrl_detach(s.ctrl);
	s.ctrl = NULL;
	old = handover(&s);
	tsleep_ms(60); /* the reads land during the blackout */
	/* the successor reclaims them by tag at the same device address, first */
	assert_int_equal(nvmk_backing_dma_reclaim(s.b, tag_named, iova_named, &named), 0);
	assert_int_equal(nvmk_backing_dma_reclaim(s.b, tag_num, iova_num, &numbered), 0);
	assert_int_equal(nvmk_ctrl_restore(s.b, blob, len, &s.ro, &s.ctrl), 0);
	free(blob);
	/* every pool block found its owner */
	assert_int_equal(nvmk_dma_pool_finish_restore(s.pool), 0);
	qp = nvmk_ctrl_restored_qpair(s.ctrl, qid);
	assert_non_null(qp);
	wait_all(&qp, 1, ids, 8);
	for (unsigned i = 0; i < 8; i++) {
		char exp[4096];
		struct nvmk_dma_buf *b = i < 4 ? &named : &numbered;

		pattern(exp, sizeof(exp), 700 + i % 4);
		assert_memory_equal((char *)b->mem.vaddr + (i % 4) * 4096, exp, 4096);
	}
	nvmk_ns_close(nvmk_ctrl_restored_ns(s.ctrl, 1));
	nvmk_ctrl_dma_free(s.ctrl, &named);
	nvmk_ctrl_dma_free(s.ctrl, &numbered);
	nvmk_backing_dma_free(s.b, &eph);
	nvmk_emu_fault_clear(s.emu);
	senv_close(&s);
	nvmk_dma_pool_destroy(old);
}

/* ---- 7. many cycles, delays straddling the blackout, counters ---- */

static pthread_mutex_t res_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned res_calls[MAXREQ];

static int resolve_counted(void *ctx, uint64_t token, nvmk_cpl_fn *cb, void **cb_arg)
{
	(void)ctx;
	if (token == 0 || token >= MAXREQ)
		return -1;
	pthread_mutex_lock(&res_lock);
	res_calls[token]++;
	pthread_mutex_unlock(&res_lock);
	*cb = req_cb;
	*cb_arg = (void *)(uintptr_t)token;
	return 0;
}

static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void test_cycles_straddling_blackout(void **state)
{
	enum { CYCLES = 6, PER = 4 };
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = sopts();
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_INTERRUPT};
	struct senv s;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct nvmk_dma_buf d;
	struct nvmk_dma_pool_stats ps0, ps;
	uint64_t adm0[256], resets0;
	unsigned fds0 = 0, all[CYCLES * 3 * PER], nall = 0;
	uint16_t qid;

	(void)state;
	tcfg_default(&cfg, "emu-cycles");
	senv_open(&s, &cfg, &o);
	memset(res_calls, 0, sizeof(res_calls));
	s.ro.resolve = resolve_counted;
	assert_int_equal(nvmk_ns_open(s.ctrl, 1, 0, &ns), 0);
	assert_int_equal(nvmk_qpair_create(s.ctrl, &qo, &qp), 0);
	qid = nvmk_qpair_id(qp);
	dbuf_alloc(&s, 3 * PER * 4096, &d);
	for (unsigned c = 0; c < CYCLES; c++) {
		static const unsigned delay_ms[3] = {2, 40, 250};
		unsigned ids[3 * PER]; /* group g at [g * PER, (g + 1) * PER) */
		struct nvmk_dma_pool *old;
		void *blob;
		size_t len;

		/* I/O between the cycles: sync, on the restored handles */
		char blk[512];
		memset(blk, (int)c, sizeof(blk));
		assert_int_equal(nvmk_ns_write(ns, qp, blk, 5000 + c, 1), 0);
		/* some complete before the save (on the device, not yet reaped),
		 * some during the 100 ms blackout, some after the restore */
		for (unsigned g = 0; g < 3; g++) {
			uint64_t r0 = nvmk_emu_cmd_count(s.emu, false, NVME_CMD_READ);

			nvmk_emu_fault_add(
			    s.emu, &(struct nvmk_emu_fault){.kind = NVMK_FAULT_DELAY,
							    .qid = qid,
							    .opcode = NVME_CMD_READ,
							    .count = PER,
							    .delay_us = delay_ms[g] * 1000ull});
			for (unsigned i = 0; i < PER; i++) {
				ids[g * PER + i] = all[nall++] = req_new();
				assert_int_equal(nvmk_ns_submit_read(
						     ns, qp, &d, (g * PER + i) * 4096, 8 * i, 8, 0,
						     req_cb, (void *)(uintptr_t)ids[g * PER + i]),
						 0);
			}
			/* each group fetched before the next rule is armed */
			for (int k = 0;
			     k < 2000 && nvmk_emu_cmd_count(s.emu, false, NVME_CMD_READ) < r0 + PER;
			     k++)
				tsleep_ms(1);
		}
		tsleep_ms(15);
		assert_int_equal(nvmk_qpair_outstanding(qp), 3 * PER);
		if (c == 1) { /* the first cycle settles lazily made things */
			fds0 = open_fds();
			nvmk_dma_pool_get_stats(s.pool, &ps0);
		}
		for (unsigned k = 0; k < 256; k++)
			adm0[k] = nvmk_emu_cmd_count(s.emu, true, (uint8_t)k);
		resets0 = nvmk_emu_reset_count(s.emu);

		save_detach(&s, true, &blob, &len);
		old = handover(&s);
		tsleep_ms(100);
		assert_int_equal(nvmk_ctrl_restore(s.b, blob, len, &s.ro, &s.ctrl), 0);
		free(blob);
		assert_int_equal(nvmk_dma_pool_finish_restore(s.pool), 0);
		nvmk_dma_pool_destroy(old);
		qp = nvmk_ctrl_restored_qpair(s.ctrl, qid);
		ns = nvmk_ctrl_restored_ns(s.ctrl, 1);
		assert_non_null(qp);
		assert_non_null(ns);
		/* delivered inside the restore: what completed before and during
		 * (at least some of it: the emulator's timing is not asserted) */
		unsigned in_restore = 0;
		for (unsigned g = 0; g < 2; g++)
			for (unsigned i = 0; i < PER; i++)
				in_restore += req_done(ids[g * PER + i]);
		assert_true(in_restore > 0);
		wait_all(&qp, 1, ids, 2 * PER);
		/* the resolver was asked once per pending request, in the restore */
		for (unsigned g = 0; g < 3; g++)
			for (unsigned i = 0; i < PER; i++)
				assert_int_equal(res_calls[ids[g * PER + i]], 1);
		/* a keep-alive servicing: no reset, no admin command but the one
		 * probe (Get Features) */
		assert_int_equal(nvmk_emu_reset_count(s.emu), resets0);
		for (unsigned k = 0; k < 256; k++)
			if (nvmk_emu_cmd_count(s.emu, true, (uint8_t)k) !=
			    adm0[k] + (k == NVME_ADM_GET_FEATURES))
				fail_msg(
				    "cycle %u: admin opcode 0x%02x count %llu, before %llu", c, k,
				    (unsigned long long)nvmk_emu_cmd_count(s.emu, true, (uint8_t)k),
				    (unsigned long long)adm0[k]);
		wait_all(&qp, 1, ids + 2 * PER, PER);
		if (c >= 1) {
			assert_int_equal(open_fds(), fds0);
			nvmk_dma_pool_get_stats(s.pool, &ps);
			assert_int_equal(ps.used_pages, ps0.used_pages);
			assert_int_equal(ps.used_slots, ps0.used_slots);
			assert_int_equal(ps.leaked_pages, 0);
		}
	}
	/* nothing completed twice over all cycles, nothing was resolved twice */
	assert_done(all, nall, 1);
	for (unsigned i = 0; i < nall; i++)
		assert_int_equal(res_calls[all[i]], 1);
	nvmk_emu_fault_clear(s.emu);
	nvmk_qpair_destroy(qp);
	nvmk_ns_close(ns);
	nvmk_backing_dma_free(s.b, &d);
	senv_close(&s);
}

/* ---- keep-alive off: with a pool a state restores once; without one it is a bring-up ---- */

static void test_keep_alive_off_states(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = sopts();
	struct senv s;
	struct nvmk_dma_pool *pool;
	void *blob;
	size_t len;

	(void)state;
	tcfg_default(&cfg, "emu-off-gen");
	senv_open(&s, &cfg, &o);
	/* with a pool: recorded; restored once, then stale (even after a close) */
	save_detach(&s, false, &blob, &len);
	assert_int_equal(nvmk_ctrl_restore(s.b, blob, len, &s.ro, &s.ctrl), 0);
	nvmk_ctrl_close(s.ctrl);
	s.ctrl = NULL;
	tlog_reset();
	assert_int_equal(nvmk_ctrl_restore(s.b, blob, len, &s.ro, &s.ctrl), -ESTALE);
	assert_true(tlog_has("already restored"));
	free(blob);

	/* ephemeral memory (no pool): nothing recorded, nothing replayed; the
	 * same state brings the device up again each time it is given */
	assert_int_equal(nvmk_ctrl_open(s.b, &o, &s.ctrl), 0);
	pool = s.b->pool;
	s.b->pool = NULL;
	save_detach(&s, false, &blob, &len);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(nvmk_ctrl_restore(s.b, blob, len, &s.ro, &s.ctrl), 0);
		/* and never while a controller runs */
		struct nvmk_ctrl *c2 = NULL;
		assert_int_equal(nvmk_ctrl_restore(s.b, blob, len, &s.ro, &c2), -EBUSY);
		nvmk_ctrl_close(s.ctrl);
		s.ctrl = NULL;
	}
	free(blob);
	s.b->pool = pool;
	assert_int_equal(nvmk_ctrl_open(s.b, &o, &s.ctrl), 0);
	senv_close(&s);
}

/* ---- a state of format 1 (no generation), as an older binary wrote it ---- */

static void m_format1(Nvmk__CtrlState *st)
{
	st->has_generation = false;
	st->generation = 0;
}

/* Remove @owner's generation record from the pool behind @fd, as a pool an
 * older binary used never had one (re-sealing the table's checksum). */
static void drop_gen_record(int fd, const char *owner)
{
	struct stat sb;
	struct pool_hdr *h;
	struct pool_slot *sl;
	uint8_t *p;
	bool found = false;

	assert_int_equal(fstat(fd, &sb), 0);
	p = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	h = (struct pool_hdr *)p;
	sl = (struct pool_slot *)(p + sizeof(*h));
	for (uint32_t i = 0; i < h->slot_count; i++)
		if (sl[i].state == POOL_SLOT_GENERATION && strcmp(sl[i].owner, owner) == 0) {
			memset(&sl[i], 0, sizeof(sl[i]));
			found = true;
		}
	assert_true(found);
	h->checksum = pool_table_checksum(h, sl, h->slot_count);
	munmap(p, (size_t)sb.st_size);
}

static void test_format1_state(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = sopts();
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL};
	struct senv s;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct nvmk_dma_buf d;
	struct nvmk_dma_pool *old[3];
	unsigned ids[4];
	uint16_t qid;
	void *blob, *v1;
	size_t len, l1;

	(void)state;
	tcfg_default(&cfg, "emu-format1");
	senv_open(&s, &cfg, &o);
	assert_int_equal(nvmk_ns_open(s.ctrl, 1, 0, &ns), 0);
	assert_int_equal(nvmk_qpair_create(s.ctrl, &qo, &qp), 0);
	qid = nvmk_qpair_id(qp);
	dbuf_alloc(&s, 8 * 4096, &d);
	delayed_reads(&s, ns, qp, &d, 4, 30, ids);
	save_detach(&s, true, &blob, &len);
	v1 = remake(blob, len, m_format1, 1, &l1);
	free(blob);

	/* a pool that has a record of the device: the format-1 state is older
	 * than that save, refused */
	old[0] = handover(&s);
	tlog_reset();
	assert_int_equal(nvmk_ctrl_restore(s.b, v1, l1, &s.ro, &s.ctrl), -ESTALE);
	assert_true(tlog_has("no generation (format 1)"));

	/* the pool as an older binary left it, without records: the first
	 * restore after the upgrade is accepted, and every request completes */
	drop_gen_record(nvmk_dma_pool_fd(s.pool), "emu-format1");
	old[1] = handover(&s);
	assert_int_equal(nvmk_ctrl_restore(s.b, v1, l1, &s.ro, &s.ctrl), 0);
	assert_int_equal(nvmk_dma_pool_finish_restore(s.pool), 0);
	qp = nvmk_ctrl_restored_qpair(s.ctrl, qid);
	assert_non_null(qp);
	wait_all(&qp, 1, ids, 4);
	/* ... once: a re-run with it is refused */
	nvmk_ctrl_detach(s.ctrl);
	s.ctrl = NULL;
	old[2] = handover(&s);
	assert_int_equal(nvmk_ctrl_restore(s.b, v1, l1, &s.ro, &s.ctrl), -ESTALE);
	assert_done(ids, 4, 1);
	free(v1);
	assert_int_equal(nvmk_dma_pool_finish_restore(s.pool), -EUCLEAN);
	assert_int_equal(nvmk_ctrl_open(s.b, &o, &s.ctrl), 0);
	nvmk_backing_dma_free(s.b, &d);
	senv_close(&s);
	for (int i = 0; i < 3; i++)
		nvmk_dma_pool_destroy(old[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stale_state_refused),
	    cmocka_unit_test(test_refused_restore_claims_nothing),
	    cmocka_unit_test(test_one_owner),
	    cmocka_unit_test(test_reset_behind_state),
	    cmocka_unit_test(test_reset_behind_state_deferred),
	    cmocka_unit_test(test_outstanding_counts_requests),
	    cmocka_unit_test(test_pool_data_buffers),
	    cmocka_unit_test(test_cycles_straddling_blackout),
	    cmocka_unit_test(test_keep_alive_off_states),
	    cmocka_unit_test(test_format1_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
