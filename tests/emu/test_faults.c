/* SPDX-License-Identifier: MIT */
/*
 * Emulator conformance: fault injection (emu.h). Every nvmk_emu_fault_kind
 * is armed and its effect observed the way a host would: through the raw
 * completion queue, the interrupt eventfds and the registers. Matching by
 * queue, opcode, skip and count, and the hit counters, are checked too.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

#define SQ_ENTRIES 16

static int setup(void **state)
{
	struct nvmk_emu_config cfg;
	struct host *h;

	host_config(&cfg, "faults");
	cfg.msix_vectors = 4;
	cfg.max_io_queues = 3;
	h = host_create(&cfg);
	if (!h)
		return -1;
	if (host_bringup(h) || host_create_qpair(h, 1, SQ_ENTRIES, 1) ||
	    host_create_qpair(h, 2, SQ_ENTRIES, 2)) {
		host_destroy(h);
		return -1;
	}
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	host_destroy(*state);
	return host_destroy_all(NULL);
}

static int add_rule(struct host *h, enum nvmk_emu_fault_kind kind, uint32_t qid, uint32_t opc,
		    uint32_t skip, uint32_t count)
{
	struct nvmk_emu_fault f = {
	    .kind = kind, .qid = qid, .opcode = opc, .skip = skip, .count = count};
	int id = nvmk_emu_fault_add(h->emu, &f);

	assert_true(id >= 0);
	return id;
}

static uint16_t submit_rw(struct host *h, uint16_t qid, uint8_t opc, uint64_t lba)
{
	struct nvme_sqe sqe;
	int cid;

	host_sqe(&sqe, opc, 1);
	sqe.cdw10 = (uint32_t)lba;
	sqe.prp1 = host_page_alloc(h->arena, 1, 1);
	cid = host_submit(h, qid, &sqe);
	assert_true(cid >= 0);
	return (uint16_t)cid;
}

static int rw(struct host *h, uint16_t qid, uint8_t opc, uint64_t lba)
{
	return host_wait(h, qid, submit_rw(h, qid, opc, lba), NULL, HOST_TIMEOUT_MS);
}

static void wait_fetched(struct host *h, bool admin, uint8_t opc, uint64_t before)
{
	uint64_t deadline = host_now_ms() + HOST_TIMEOUT_MS;

	while (nvmk_emu_cmd_count(h->emu, admin, opc) <= before) {
		if (host_now_ms() > deadline)
			fail_msg("opcode 0x%02x never fetched", opc);
		host_sleep_ms(1);
	}
}

static void test_delay(void **state)
{
	struct host *h = *state;
	struct nvmk_emu_fault f = {.kind = NVMK_FAULT_DELAY,
				   .qid = 1,
				   .opcode = NVME_CMD_READ,
				   .count = 1,
				   .delay_us = 50000};
	struct host_buf b;
	int id;

	assert_int_equal(host_buf_alloc(h, &b, 4096), 0);
	host_fill(b.va, 4096, 1);
	assert_ok(host_rw(h, 1, NVME_CMD_WRITE, 1, 8, 8, 0, b.iova, 4096, NULL));
	id = nvmk_emu_fault_add(h->emu, &f);
	assert_true(id >= 0);
	memset(b.va, 0, 4096);
	/* it completes (no timing asserted), with the right data */
	assert_ok(host_rw(h, 1, NVME_CMD_READ, 1, 8, 8, 0, b.iova, 4096, NULL));
	assert_int_equal(host_check_fill(b.va, 4096, 1), -1);
	assert_int_equal(nvmk_emu_fault_hits(h->emu, id), 1);
	host_buf_free(h, &b);
}

static void test_hang_until_reset(void **state)
{
	struct host *h = *state;
	uint64_t before = nvmk_emu_cmd_count(h->emu, false, NVME_CMD_READ);
	int id = add_rule(h, NVMK_FAULT_HANG, 1, NVME_CMD_READ, 0, 1);
	uint16_t cid = submit_rw(h, 1, NVME_CMD_READ, 0);

	wait_fetched(h, false, NVME_CMD_READ, before);
	assert_int_equal(host_wait(h, 1, cid, NULL, HOST_QUIET_MS), -ETIMEDOUT);
	assert_int_equal(nvmk_emu_fault_hits(h->emu, id), 1);
	/* other commands, on the same queue too, are not held up */
	assert_ok(rw(h, 1, NVME_CMD_READ, 1));
	assert_ok(rw(h, 2, NVME_CMD_WRITE, 1));
	/* a reset ends it; the queues come back empty */
	assert_int_equal(host_disable(h), 0);
	assert_int_equal(host_bringup(h), 0);
	assert_int_equal(host_create_qpair(h, 1, SQ_ENTRIES, 1), 0);
	assert_ok(rw(h, 1, NVME_CMD_READ, 0));
	{
		struct nvme_cqe cqe;

		assert_int_equal(host_cq_next(h, 1, &cqe, 50), -ETIMEDOUT);
	}
}

static void test_drop_irq(void **state)
{
	struct host *h = *state;
	int id = add_rule(h, NVMK_FAULT_DROP_IRQ, 1, NVME_CMD_READ, 0, 1);
	struct nvme_cqe cqe;

	host_irq_take(h, 1);
	/* the entry is there (we poll for it)... */
	assert_ok(host_wait(h, 1, submit_rw(h, 1, NVME_CMD_READ, 0), &cqe, HOST_TIMEOUT_MS));
	/* ...the interrupt is not */
	host_sleep_ms(HOST_QUIET_MS);
	assert_int_equal(host_irq_take(h, 1), 0);
	assert_int_equal(nvmk_emu_fault_hits(h->emu, id), 1);
	/* the rule is used up: the next one signals */
	assert_ok(rw(h, 1, NVME_CMD_READ, 0));
	assert_true(host_irq_wait(h, 1, HOST_TIMEOUT_MS));
}

static void test_status(void **state)
{
	struct host *h = *state;
	uint16_t st = NVME_SF(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULT) | NVME_SF_DNR;
	struct nvmk_emu_fault f = {.kind = NVMK_FAULT_STATUS,
				   .qid = 1,
				   .opcode = NVME_CMD_WRITE,
				   .count = 1,
				   .status = st};
	struct nvmk_emu_fault a = {.kind = NVMK_FAULT_STATUS,
				   .qid = 0,
				   .opcode = NVME_ADM_IDENTIFY,
				   .count = 1,
				   .status = NVME_SF(NVME_SCT_GENERIC, NVME_SC_INTERNAL)};
	struct nvme_id_ctrl id;
	uint32_t v;

	assert_true(nvmk_emu_fault_add(h->emu, &f) >= 0);
	/* the whole status field, DNR included, is what was asked */
	assert_int_equal(rw(h, 1, NVME_CMD_WRITE, 0), st);
	assert_ok(rw(h, 1, NVME_CMD_WRITE, 0));
	/* on the admin queue */
	assert_true(nvmk_emu_fault_add(h->emu, &a) >= 0);
	assert_ok(host_get_features(h, NVME_FEAT_ARBITRATION, 0, &v));
	assert_sf(host_identify(h, NVME_ID_CNS_CTRL, 0, &id), NVME_SCT_GENERIC, NVME_SC_INTERNAL);
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
}

static void test_bad_cid(void **state)
{
	struct host *h = *state;
	struct nvme_cqe cqe;
	uint16_t cid;

	add_rule(h, NVMK_FAULT_BAD_CID, 1, NVME_CMD_READ, 0, 1);
	cid = submit_rw(h, 1, NVME_CMD_READ, 0);
	assert_int_equal(host_cq_next(h, 1, &cqe, HOST_TIMEOUT_MS), 0);
	assert_int_equal(cqe.sqid, 1);
	assert_int_not_equal(cqe.cid, cid);
	/* and the real CID never completes */
	assert_int_equal(host_wait(h, 1, cid, NULL, HOST_QUIET_MS), -ETIMEDOUT);
}

static void test_bad_phase(void **state)
{
	struct host *h = *state;
	uint32_t slot = h->cq[1].head;
	uint16_t phase = h->cq[1].phase;
	uint64_t deadline;
	struct nvme_cqe raw;
	uint16_t cid;

	add_rule(h, NVMK_FAULT_BAD_PHASE, 1, NVME_CMD_READ, 0, 1);
	cid = submit_rw(h, 1, NVME_CMD_READ, 0);
	/* the entry gets written, with the old phase: a host polling the
	 * phase tag never sees it */
	deadline = host_now_ms() + HOST_TIMEOUT_MS;
	for (;;) {
		host_cq_raw(h, 1, slot, &raw);
		if (raw.cid == cid && raw.sqid == 1)
			break;
		if (host_now_ms() > deadline)
			fail_msg("no entry written at CQ slot %u", slot);
		host_sleep_ms(1);
	}
	assert_int_not_equal(NVME_CQE_PHASE(raw.status), phase);
	assert_int_equal(host_wait(h, 1, cid, NULL, HOST_QUIET_MS), -ETIMEDOUT);
}

static void test_bad_sqhd(void **state)
{
	struct host *h = *state;
	struct nvme_cqe cqe;

	add_rule(h, NVMK_FAULT_BAD_SQHD, 1, NVME_CMD_READ, 0, 1);
	assert_ok(host_wait(h, 1, submit_rw(h, 1, NVME_CMD_READ, 0), &cqe, HOST_TIMEOUT_MS));
	assert_true(cqe.sqhd >= SQ_ENTRIES);
	/* the next one is sane again */
	assert_ok(host_wait(h, 1, submit_rw(h, 1, NVME_CMD_READ, 0), &cqe, HOST_TIMEOUT_MS));
	assert_true(cqe.sqhd < SQ_ENTRIES);
}

static void test_duplicate(void **state)
{
	struct host *h = *state;
	struct nvme_cqe a, b;
	uint16_t cid;

	add_rule(h, NVMK_FAULT_DUPLICATE, 1, NVME_CMD_READ, 0, 1);
	cid = submit_rw(h, 1, NVME_CMD_READ, 0);
	assert_int_equal(host_cq_next(h, 1, &a, HOST_TIMEOUT_MS), 0);
	assert_int_equal(host_cq_next(h, 1, &b, HOST_TIMEOUT_MS), 0);
	assert_int_equal(a.cid, cid);
	assert_int_equal(b.cid, cid);
	assert_int_equal(a.sqid, 1);
	assert_int_equal(b.sqid, 1);
	/* nothing more after the pair */
	assert_int_equal(host_cq_next(h, 1, &b, HOST_QUIET_MS), -ETIMEDOUT);
	assert_ok(rw(h, 1, NVME_CMD_READ, 0));
}

static void test_fatal(void **state)
{
	struct host *h = *state;
	struct nvme_id_ctrl id;
	struct nvme_sqe sqe;
	uint32_t csts;
	uint16_t cid;

	add_rule(h, NVMK_FAULT_FATAL, 1, NVME_CMD_READ, 0, 1);
	cid = submit_rw(h, 1, NVME_CMD_READ, 0);
	assert_int_equal(host_wait_csts(h, NVME_CSTS_CFS, NVME_CSTS_CFS, HOST_TIMEOUT_MS, &csts),
			 0);
	/* nothing is processed any more */
	assert_int_equal(host_wait(h, 1, cid, NULL, HOST_QUIET_MS), -ETIMEDOUT);
	host_sqe(&sqe, NVME_ADM_IDENTIFY, 0);
	sqe.cdw10 = NVME_ID_CNS_CTRL;
	sqe.prp1 = host_page_alloc(h->arena, 1, 1);
	assert_int_equal(host_admin_timeout(h, &sqe, NULL, HOST_QUIET_MS), -ETIMEDOUT);
	/* the host's way out is a Controller Reset (Base 2.0 9.5) */
	nvmk_emu_fault_clear(h->emu);
	assert_int_equal(host_disable(h), 0);
	assert_int_equal(host_bringup(h), 0);
	assert_int_equal(host_rd32(h, NVME_REG_CSTS) & NVME_CSTS_CFS, 0);
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
}

static void test_set_fatal_now(void **state)
{
	struct host *h = *state;
	struct nvme_id_ctrl id;

	nvmk_emu_set_fatal(h->emu);
	assert_true(host_rd32(h, NVME_REG_CSTS) & NVME_CSTS_CFS);
	assert_int_equal(host_wait(h, 1, submit_rw(h, 1, NVME_CMD_READ, 0), NULL, HOST_QUIET_MS),
			 -ETIMEDOUT);
	assert_int_equal(host_disable(h), 0);
	assert_int_equal(host_bringup(h), 0);
	assert_int_equal(host_rd32(h, NVME_REG_CSTS) & NVME_CSTS_CFS, 0);
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
}

/* After surprise removal every register reads all ones and the device does
 * no more DMA and sends no more interrupts. */
static void check_removed(struct host *h)
{
	uint64_t dma;
	uint16_t v;

	assert_int_equal(host_rd64(h, NVME_REG_CAP), UINT64_MAX);
	assert_int_equal(host_rd32(h, NVME_REG_VS), UINT32_MAX);
	assert_int_equal(host_rd32(h, NVME_REG_CC), UINT32_MAX);
	assert_int_equal(host_rd32(h, NVME_REG_AQA), UINT32_MAX);
	assert_int_equal(host_rd32(h, NVME_REG_DBS), UINT32_MAX);
	for (v = 0; v < 4; v++)
		host_irq_take(h, v);
	dma = host_arena_dma_calls(h->arena);
	/* ring doorbells with real work behind them */
	submit_rw(h, 2, NVME_CMD_READ, 0);
	{
		struct nvme_sqe sqe;

		host_sqe(&sqe, NVME_ADM_IDENTIFY, 0);
		sqe.cdw10 = NVME_ID_CNS_CTRL;
		sqe.prp1 = host_page_alloc(h->arena, 1, 1);
		assert_true(host_submit(h, 0, &sqe) >= 0);
	}
	host_wr32(h, NVME_REG_CC, 0); /* writes go nowhere either */
	host_sleep_ms(HOST_QUIET_MS);
	assert_int_equal(host_arena_dma_calls(h->arena), dma);
	for (v = 0; v < 4; v++)
		assert_int_equal(host_irq_take(h, v), 0);
	assert_int_equal(host_rd32(h, NVME_REG_CSTS), UINT32_MAX);
}

static void test_remove_on_fetch(void **state)
{
	struct host *h = *state;
	uint32_t csts;
	uint16_t cid;

	add_rule(h, NVMK_FAULT_REMOVE, 1, NVME_CMD_READ, 0, 1);
	cid = submit_rw(h, 1, NVME_CMD_READ, 0);
	assert_int_equal(host_wait_csts(h, UINT32_MAX, UINT32_MAX, HOST_TIMEOUT_MS, &csts), 0);
	assert_int_equal(host_wait(h, 1, cid, NULL, HOST_QUIET_MS), -ETIMEDOUT);
	check_removed(h);
}

static void test_surprise_remove_now(void **state)
{
	struct host *h = *state;

	nvmk_emu_surprise_remove(h->emu);
	assert_int_equal(host_rd32(h, NVME_REG_CSTS), UINT32_MAX);
	check_removed(h);
}

static void test_skip_and_count(void **state)
{
	struct host *h = *state;
	uint16_t st = NVME_SF(NVME_SCT_GENERIC, NVME_SC_INTERNAL);
	struct nvmk_emu_fault f = {.kind = NVMK_FAULT_STATUS,
				   .qid = 1,
				   .opcode = NVME_CMD_READ,
				   .skip = 2,
				   .count = 3,
				   .status = st};
	int id = nvmk_emu_fault_add(h->emu, &f);
	unsigned i;

	assert_true(id >= 0);
	for (i = 0; i < 8; i++) {
		int sf;

		/* writes on the same queue neither match nor count */
		assert_ok(rw(h, 1, NVME_CMD_WRITE, i));
		sf = rw(h, 1, NVME_CMD_READ, i);
		if (i >= 2 && i < 5)
			assert_int_equal(sf, st);
		else
			assert_int_equal(sf, 0);
	}
	assert_int_equal(nvmk_emu_fault_hits(h->emu, id), 3);
}

static void test_queue_and_opcode_match(void **state)
{
	struct host *h = *state;
	uint16_t st = NVME_SF(NVME_SCT_GENERIC, NVME_SC_INTERNAL);
	struct nvmk_emu_fault q2 = {
	    .kind = NVMK_FAULT_STATUS, .qid = 2, .opcode = NVMK_FAULT_ANY_OPC, .status = st};
	struct nvmk_emu_fault anyq = {.kind = NVMK_FAULT_STATUS,
				      .qid = NVMK_FAULT_ANY_QID,
				      .opcode = NVME_CMD_FLUSH,
				      .status = st};
	struct nvme_sqe sqe;
	int id2, idany;

	id2 = nvmk_emu_fault_add(h->emu, &q2);
	assert_true(id2 >= 0);
	assert_ok(rw(h, 1, NVME_CMD_READ, 0));
	assert_ok(rw(h, 1, NVME_CMD_WRITE, 0));
	assert_int_equal(rw(h, 2, NVME_CMD_READ, 0), st);
	assert_int_equal(rw(h, 2, NVME_CMD_WRITE, 0), st);
	assert_int_equal(nvmk_emu_fault_hits(h->emu, id2), 2);
	nvmk_emu_fault_clear(h->emu);
	assert_ok(rw(h, 2, NVME_CMD_READ, 0));

	/* any queue, one opcode (no admin command is sent meanwhile: 00h is
	 * also Delete I/O SQ there) */
	idany = nvmk_emu_fault_add(h->emu, &anyq);
	assert_true(idany >= 0);
	host_sqe(&sqe, NVME_CMD_FLUSH, 1);
	assert_int_equal(host_cmd(h, 1, &sqe, NULL), st);
	host_sqe(&sqe, NVME_CMD_FLUSH, 1);
	assert_int_equal(host_cmd(h, 2, &sqe, NULL), st);
	assert_ok(rw(h, 1, NVME_CMD_READ, 0));
	assert_int_equal(nvmk_emu_fault_hits(h->emu, idany), 2);
}

static void test_first_rule_wins(void **state)
{
	struct host *h = *state;
	uint16_t a = NVME_SF(NVME_SCT_GENERIC, NVME_SC_INTERNAL);
	uint16_t b = NVME_SF(NVME_SCT_MEDIA, NVME_SC_READ_ERROR);
	struct nvmk_emu_fault fa = {
	    .kind = NVMK_FAULT_STATUS, .qid = 1, .opcode = NVME_CMD_READ, .status = a};
	struct nvmk_emu_fault fb = {
	    .kind = NVMK_FAULT_STATUS, .qid = 1, .opcode = NVME_CMD_READ, .status = b};
	int ia = nvmk_emu_fault_add(h->emu, &fa), ib = nvmk_emu_fault_add(h->emu, &fb);
	unsigned i;

	assert_true(ia >= 0 && ib >= 0 && ia != ib);
	for (i = 0; i < 3; i++)
		assert_int_equal(rw(h, 1, NVME_CMD_READ, 0), a);
	assert_int_equal(nvmk_emu_fault_hits(h->emu, ia), 3);
	assert_int_equal(nvmk_emu_fault_hits(h->emu, ib), 0);
	nvmk_emu_fault_clear(h->emu);
	assert_ok(rw(h, 1, NVME_CMD_READ, 0));
}

static void test_api_errors(void **state)
{
	struct host *h = *state;
	struct nvmk_emu_fault f = {.kind = 0, .qid = 1, .opcode = NVME_CMD_READ};

	assert_int_equal(nvmk_emu_fault_add(h->emu, &f), -EINVAL);
	f.kind = 99;
	assert_int_equal(nvmk_emu_fault_add(h->emu, &f), -EINVAL);
	/* nothing was armed */
	assert_ok(rw(h, 1, NVME_CMD_READ, 0));
}

/* Issue 11: the table reuses the slots of used-up rules (a long fault
 * campaign adds far more than 32 rules over time), and a rule put in a
 * reused slot still comes after the rules added before it. */
static void test_used_up_slots_reused(void **state)
{
	struct host *h = *state;
	uint16_t a = NVME_SF(NVME_SCT_GENERIC, NVME_SC_INTERNAL);
	uint16_t b = NVME_SF(NVME_SCT_MEDIA, NVME_SC_READ_ERROR);
	struct nvmk_emu_fault once = {
	    .kind = NVMK_FAULT_STATUS, .qid = 1, .opcode = NVME_CMD_READ, .count = 1, .status = a};
	struct nvmk_emu_fault forever = {
	    .kind = NVMK_FAULT_STATUS, .qid = 2, .opcode = NVME_CMD_READ, .status = b};
	int n = 0, id;

	/* one rule that never runs out, then fill the table with one-shot rules */
	assert_true(nvmk_emu_fault_add(h->emu, &forever) >= 0);
	while ((id = nvmk_emu_fault_add(h->emu, &once)) >= 0)
		n++;
	assert_int_equal(id, -ENOSPC);
	assert_true(n >= 8);
	/* use up all but the last: each read hits the next one-shot rule */
	for (int i = 0; i < n - 1; i++)
		assert_int_equal(rw(h, 1, NVME_CMD_READ, 0), a);
	/* n - 1 slots are free again; the forever rule's is not */
	for (int i = 0; i < n - 1; i++)
		assert_true(nvmk_emu_fault_add(h->emu, &once) >= 0);
	assert_int_equal(nvmk_emu_fault_add(h->emu, &once), -ENOSPC);
	/* order of addition stands: queue 2 still gets the old rule first */
	struct nvmk_emu_fault q2 = once;
	q2.qid = 2;
	q2.status = a;
	for (int i = 0; i < n; i++)
		assert_int_equal(rw(h, 1, NVME_CMD_READ, 0), a);
	assert_ok(rw(h, 1, NVME_CMD_READ, 0));
	assert_true(nvmk_emu_fault_add(h->emu, &q2) >= 0);
	assert_int_equal(rw(h, 2, NVME_CMD_READ, 0), b);
	nvmk_emu_fault_clear(h->emu);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_delay),	     T(test_hang_until_reset),
	    T(test_drop_irq),	     T(test_status),
	    T(test_bad_cid),	     T(test_bad_phase),
	    T(test_bad_sqhd),	     T(test_duplicate),
	    T(test_fatal),	     T(test_set_fatal_now),
	    T(test_remove_on_fetch), T(test_surprise_remove_now),
	    T(test_skip_and_count),  T(test_queue_and_opcode_match),
	    T(test_first_rule_wins), T(test_api_errors),
	    T(test_used_up_slots_reused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
