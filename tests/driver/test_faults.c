// SPDX-License-Identifier: MIT
/* Fault injection: every emulator fault kind and the recovery it triggers.
 * Timeouts are short (I/O 300 ms, admin 500 ms) so the suite stays fast. */
#include <errno.h>
#include <time.h>

#include "drv_test.h"

struct fixture {
	struct tenv t;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct nvmk_dma_buf buf;
};

struct acb {
	int calls;
	struct nvmk_cpl cpl;
};

static void acb_fn(void *arg, const struct nvmk_cpl *cpl)
{
	struct acb *a = arg;

	a->calls++;
	a->cpl = *cpl;
}

static int setup_mode(void **state, enum nvmk_cpl_mode mode)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o;
	struct nvmk_qpair_opts qo = {.mode = mode};

	tlog_reset();
	tcfg_default(&cfg, "emu-fault");
	topts_default(&o);
	o.admin_timeout_ms = 500;
	if (tenv_open(&f->t, &cfg, &o) || nvmk_ns_open(f->t.ctrl, 1, 0, &f->ns) ||
	    nvmk_qpair_create(f->t.ctrl, &qo, &f->qp) ||
	    nvmk_ctrl_dma_alloc(f->t.ctrl, 64 * 1024, &f->buf))
		return -1;
	*state = f;
	return 0;
}

static int setup_irq(void **state)
{
	return setup_mode(state, NVMK_CPL_INTERRUPT);
}

static int setup_poll(void **state)
{
	return setup_mode(state, NVMK_CPL_POLL);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nvmk_ctrl_dma_free(f->t.ctrl, &f->buf);
	nvmk_qpair_destroy(f->qp);
	nvmk_ns_close(f->ns);
	tenv_close(&f->t);
	free(f);
	return 0;
}

static int add_fault(struct fixture *f, enum nvmk_emu_fault_kind kind, uint32_t qid, uint32_t opc,
		     uint32_t skip, uint32_t count)
{
	struct nvmk_emu_fault ft = {
	    .kind = kind, .qid = qid, .opcode = opc, .skip = skip, .count = count};

	if (kind == NVMK_FAULT_DELAY)
		ft.delay_us = 50000;
	int id = nvmk_emu_fault_add(f->t.emu, &ft);
	assert_true(id >= 0);
	return id;
}

/* Wait until every callback in @a[0..n) ran; a bounded number of waits. */
static void wait_all(struct fixture *f, struct acb *a, int n)
{
	for (int iter = 0; iter < 400; iter++) {
		int done = 1;

		for (int i = 0; i < n; i++)
			if (!a[i].calls)
				done = 0;
		if (done)
			break;
		nvmk_qpair_wait(f->qp, 20);
	}
	/* a few more rounds must not complete anything twice */
	for (int i = 0; i < 3; i++)
		nvmk_qpair_process_completions(f->qp, 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(a[i].calls, 1);
}

static int submit_reads(struct fixture *f, struct acb *a, int n)
{
	for (int i = 0; i < n; i++) {
		int rc = nvmk_ns_submit_read(f->ns, f->qp, &f->buf, (size_t)i * 4096,
					     (uint64_t)i * 8, 8, 0, acb_fn, &a[i]);
		if (rc)
			return rc;
	}
	return 0;
}

static void test_delay_ok(void **state)
{
	struct fixture *f = *state;
	struct acb a[2] = {{0}};
	int id = add_fault(f, NVMK_FAULT_DELAY, NVMK_FAULT_ANY_QID, NVME_CMD_READ, 0, 1);

	assert_int_equal(submit_reads(f, a, 2), 0);
	wait_all(f, a, 2);
	assert_int_equal(a[0].cpl.err, 0);
	assert_int_equal(a[1].cpl.err, 0);
	assert_int_equal(nvmk_emu_fault_hits(f->t.emu, id), 1);
}

static void test_hang_abort(void **state)
{
	struct fixture *f = *state;
	struct acb a[1] = {{0}};

	add_fault(f, NVMK_FAULT_HANG, NVMK_FAULT_ANY_QID, NVME_CMD_READ, 0, 1);
	uint64_t ab0 = nvmk_emu_cmd_count(f->t.emu, true, NVME_ADM_ABORT);
	assert_int_equal(submit_reads(f, a, 1), 0);
	wait_all(f, a, 1);
	assert_int_equal(a[0].cpl.err, -ETIMEDOUT);
	assert_int_equal(a[0].cpl.status & 0x7ff, NVME_SF(NVME_SCT_GENERIC, NVME_SC_ABORT_REQ));
	assert_int_equal(nvmk_emu_cmd_count(f->t.emu, true, NVME_ADM_ABORT) - ab0, 1);
	assert_int_equal(nvmk_emu_reset_count(f->t.emu), 0);
	assert_true(tlog_has("timed out after 300 ms: aborting"));
	/* the queue keeps working */
	char b[512];
	assert_int_equal(nvmk_ns_read(f->ns, f->qp, b, 0, 1), 0);
}

/*
 * The same hang, found by a caller that only polls (no nvmk_qpair_wait,
 * which reads the precise clock itself): the poll's fast path has no
 * deadline test, so detection rests on the clock ticks of the admin thread
 * sending the first poll after each tick down the slow path (ctrl->gate).
 * Bounded: 300 ms timeout, 20 ms tick, 5 s of polling at most.
 */
static void test_hang_abort_poll_only(void **state)
{
	struct fixture *f = *state;
	struct acb a[1] = {{0}};
	struct timespec ts = {0, 1000000};

	add_fault(f, NVMK_FAULT_HANG, NVMK_FAULT_ANY_QID, NVME_CMD_READ, 0, 1);
	assert_int_equal(submit_reads(f, a, 1), 0);
	for (int i = 0; i < 5000 && !a[0].calls; i++) {
		assert_true(nvmk_qpair_process_completions(f->qp, 0) >= 0);
		nanosleep(&ts, NULL);
	}
	assert_int_equal(a[0].calls, 1);
	assert_int_equal(a[0].cpl.err, -ETIMEDOUT);
	assert_true(tlog_has("timed out after 300 ms: aborting"));
	assert_int_equal(nvmk_emu_reset_count(f->t.emu), 0);
}

static void test_hang_abort_hangs_reset(void **state)
{
	struct fixture *f = *state;
	struct acb a[3] = {{0}};

	add_fault(f, NVMK_FAULT_HANG, NVMK_FAULT_ANY_QID, NVME_CMD_READ, 1, 1);
	add_fault(f, NVMK_FAULT_HANG, 0, NVME_ADM_ABORT, 0, 1);
	uint64_t r0 = nvmk_emu_reset_count(f->t.emu);
	assert_int_equal(submit_reads(f, a, 3), 0);
	wait_all(f, a, 3);
	/* the hung read (and anything else lost by the reset) fails -ETIMEDOUT */
	assert_int_equal(a[1].cpl.err, -ETIMEDOUT);
	assert_true(nvmk_emu_reset_count(f->t.emu) > r0);
	assert_true(tlog_has("resetting controller"));
	assert_int_equal(nvmk_ctrl_failed(f->t.ctrl), 0);
	/* queues were re-created: later I/O works on the same qpair */
	char w[512] = "after reset", r[512];
	assert_int_equal(nvmk_ns_write(f->ns, f->qp, w, 77, 1), 0);
	assert_int_equal(nvmk_ns_read(f->ns, f->qp, r, 77, 1), 0);
	assert_memory_equal(w, r, 512);
	/* and admin works */
	uint32_t ids[4];
	assert_int_equal(nvmk_ctrl_active_ns(f->t.ctrl, ids, 4), 1);
}

static void test_drop_irq(void **state)
{
	struct fixture *f = *state;
	struct acb a[1] = {{0}};

	/* Interrupt mode: the CQE is posted without an interrupt. The waiter's
	 * sleep is bounded by the clock tick, so the completion is found on the
	 * next tick (long before the command's timeout) and delivered normally. */
	add_fault(f, NVMK_FAULT_DROP_IRQ, NVMK_FAULT_ANY_QID, NVME_CMD_READ, 0, 1);
	assert_int_equal(submit_reads(f, a, 1), 0);
	wait_all(f, a, 1);
	assert_int_equal(a[0].cpl.err, 0);
	assert_int_equal(nvmk_emu_cmd_count(f->t.emu, true, NVME_ADM_ABORT), 0);
}

static void test_status_mapping(void **state)
{
	struct fixture *f = *state;
	static const struct {
		uint16_t sf;
		int err;
	} map[] = {
	    {NVME_SF(0, NVME_SC_INVALID_FIELD) | NVME_SF_DNR, -EINVAL},
	    {NVME_SF(0, NVME_SC_LBA_RANGE), -ERANGE},
	    {NVME_SF(0, NVME_SC_RESERVATION_CONFLICT), -EBADE},
	    {NVME_SF(0, NVME_SC_NS_NOT_READY), -EAGAIN},
	    {NVME_SF(0, NVME_SC_INVALID_NS), -ENODEV},
	    {NVME_SF(2, NVME_SC_READ_ERROR), -EIO},
	    {NVME_SF(1, NVME_SC_READ_ONLY), -EROFS},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		struct nvmk_emu_fault ft = {.kind = NVMK_FAULT_STATUS,
					    .qid = NVMK_FAULT_ANY_QID,
					    .opcode = NVME_CMD_READ,
					    .count = 1,
					    .status = map[i].sf};
		struct acb a[1] = {{0}};

		nvmk_emu_fault_clear(f->t.emu);
		assert_true(nvmk_emu_fault_add(f->t.emu, &ft) >= 0);
		assert_int_equal(submit_reads(f, a, 1), 0);
		wait_all(f, a, 1);
		assert_int_equal(a[0].cpl.err, map[i].err);
		assert_int_equal(a[0].cpl.status, map[i].sf);
		assert_int_equal(nvmk_status_to_errno(map[i].sf), map[i].err);
	}
	char s[80];
	assert_string_equal(nvmk_status_str(NVME_SF(0, 0x80), s, sizeof(s)),
			    "LBA Out of Range (0/80h)");
	/* sync path keeps the status too */
	struct nvmk_emu_fault ft = {.kind = NVMK_FAULT_STATUS,
				    .qid = NVMK_FAULT_ANY_QID,
				    .opcode = NVME_CMD_WRITE,
				    .count = 1,
				    .status = NVME_SF(0, NVME_SC_INTERNAL)};
	nvmk_emu_fault_clear(f->t.emu);
	nvmk_emu_fault_add(f->t.emu, &ft);
	char b[512] = {0};
	assert_int_equal(nvmk_ns_write(f->ns, f->qp, b, 1, 1), -EIO);
	assert_int_equal(nvmk_last_status(), NVME_SF(0, NVME_SC_INTERNAL));
}

static void bad_cqe_case(struct fixture *f, enum nvmk_emu_fault_kind kind)
{
	struct acb a[6] = {{0}};

	add_fault(f, kind, NVMK_FAULT_ANY_QID, NVME_CMD_READ, 2, 1);
	/* with the third read the device misbehaves */
	assert_int_equal(submit_reads(f, a, 6), 0);
	wait_all(f, a, 6);
	int errors = 0;
	for (int i = 0; i < 6; i++)
		if (a[i].cpl.err) {
			assert_int_equal(a[i].cpl.err, -EIO);
			errors++;
		}
	assert_true(errors >= 1);
	assert_int_equal(nvmk_ctrl_failed(f->t.ctrl), -EIO);
	assert_true(tlog_has("invalid completion"));
	/* everything after fails at once, without the device */
	struct acb b = {0};
	assert_int_equal(nvmk_ns_submit_read(f->ns, f->qp, &f->buf, 0, 0, 1, 0, acb_fn, &b), -EIO);
	assert_int_equal(b.calls, 0);
	char x[512];
	assert_int_equal(nvmk_ns_read(f->ns, f->qp, x, 0, 1), -EIO);
	assert_int_equal(nvmk_qpair_outstanding(f->qp), 0);
}

static void test_bad_cid(void **state)
{
	bad_cqe_case(*state, NVMK_FAULT_BAD_CID);
}

static void test_bad_sqhd(void **state)
{
	bad_cqe_case(*state, NVMK_FAULT_BAD_SQHD);
}

static void test_duplicate(void **state)
{
	bad_cqe_case(*state, NVMK_FAULT_DUPLICATE);
}

static void test_bad_phase(void **state)
{
	bad_cqe_case(*state, NVMK_FAULT_BAD_PHASE);
}

static void test_fatal(void **state)
{
	struct fixture *f = *state;
	struct acb a[2] = {{0}};

	add_fault(f, NVMK_FAULT_FATAL, NVMK_FAULT_ANY_QID, NVME_CMD_READ, 0, 1);
	assert_int_equal(submit_reads(f, a, 2), 0);
	wait_all(f, a, 2);
	assert_int_equal(a[0].cpl.err, -EIO);
	assert_int_equal(nvmk_ctrl_failed(f->t.ctrl), -EIO);
	assert_true(tlog_has("CSTS.CFS"));
}

static void test_remove(void **state)
{
	struct fixture *f = *state;
	struct acb a[2] = {{0}};

	add_fault(f, NVMK_FAULT_REMOVE, NVMK_FAULT_ANY_QID, NVME_CMD_READ, 0, 1);
	assert_int_equal(submit_reads(f, a, 2), 0);
	wait_all(f, a, 2);
	assert_int_equal(a[0].cpl.err, -ENODEV);
	assert_int_equal(a[1].cpl.err, -ENODEV);
	assert_int_equal(nvmk_ctrl_failed(f->t.ctrl), -ENODEV);
	char x[512];
	assert_int_equal(nvmk_ns_read(f->ns, f->qp, x, 0, 1), -ENODEV);
	assert_int_equal(nvmk_ns_flush(f->ns, NULL), -ENODEV);
	uint32_t ids[2];
	assert_int_equal(nvmk_ctrl_active_ns(f->t.ctrl, ids, 2), -ENODEV);
	struct nvmk_ns *ns2;
	assert_int_equal(nvmk_ns_open(f->t.ctrl, 1, NVMK_NS_SHARED, &ns2), -ENODEV);
}

static void test_admin_hang_reset(void **state)
{
	struct fixture *f = *state;
	struct nvme_sqe c = {.opc = NVME_ADM_GET_FEATURES, .cdw10 = NVME_FEAT_NUM_QUEUES};
	struct nvmk_cpl cpl;

	add_fault(f, NVMK_FAULT_HANG, 0, NVME_ADM_GET_FEATURES, 0, 1);
	uint64_t r0 = nvmk_emu_reset_count(f->t.emu);
	assert_int_equal(nvmk_ctrl_admin_passthru(f->t.ctrl, &c, NULL, 0, &cpl), -ETIMEDOUT);
	assert_int_equal(cpl.err, -ETIMEDOUT);
	/* the admin thread resets the controller */
	for (int i = 0; i < 200 && nvmk_emu_reset_count(f->t.emu) == r0; i++)
		tsleep_ms(10);
	assert_true(nvmk_emu_reset_count(f->t.emu) > r0);
	assert_int_equal(nvmk_ctrl_admin_passthru(f->t.ctrl, &c, NULL, 0, &cpl), 0);
	assert_int_equal(NVME_FEAT_NUMQ_NSQ(cpl.dw0) + 1 >= 4, 1);
	char b[512];
	assert_int_equal(nvmk_ns_read(f->ns, f->qp, b, 0, 1), 0);
}

static void test_manual_reset(void **state)
{
	struct fixture *f = *state;
	struct acb a[2] = {{0}};

	/* a command the device holds is lost by an explicit reset: it completes
	 * -ETIMEDOUT once the qpair's user looks again; the queues come back */
	int id = add_fault(f, NVMK_FAULT_HANG, NVMK_FAULT_ANY_QID, NVME_CMD_READ, 0, 1);
	assert_int_equal(submit_reads(f, a, 1), 0);
	for (int i = 0; i < 200 && nvmk_emu_fault_hits(f->t.emu, id) == 0; i++)
		tsleep_ms(1); /* the device holds it now */
	assert_int_equal(nvmk_emu_fault_hits(f->t.emu, id), 1);
	nvmk_qpair_process_completions(f->qp, 0);
	assert_int_equal(a[0].calls, 0);
	uint64_t r0 = nvmk_emu_reset_count(f->t.emu);
	assert_int_equal(nvmk_ctrl_reset(f->t.ctrl), 0);
	assert_true(nvmk_emu_reset_count(f->t.emu) > r0);
	nvmk_qpair_process_completions(f->qp, 0);
	assert_int_equal(a[0].calls, 1);
	assert_int_equal(a[0].cpl.err, -ETIMEDOUT);
	assert_int_equal(a[0].cpl.status, NVME_SF(NVME_SCT_PATH, NVME_SC_HOST_ABORTED_CMD));
	assert_int_equal(submit_reads(f, &a[1], 1), 0);
	wait_all(f, &a[1], 1);
	assert_int_equal(a[1].cpl.err, 0);
	assert_int_equal(a[0].calls, 1);
}

#define T(fn, s) cmocka_unit_test_setup_teardown(fn, s, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_delay_ok, setup_irq),
	    T(test_hang_abort, setup_irq),
	    T(test_hang_abort, setup_poll),
	    T(test_hang_abort_poll_only, setup_poll),
	    T(test_hang_abort_hangs_reset, setup_irq),
	    T(test_hang_abort_hangs_reset, setup_poll),
	    T(test_drop_irq, setup_irq),
	    T(test_status_mapping, setup_irq),
	    T(test_bad_cid, setup_irq),
	    T(test_bad_sqhd, setup_poll),
	    T(test_duplicate, setup_irq),
	    T(test_bad_phase, setup_irq),
	    T(test_fatal, setup_irq),
	    T(test_remove, setup_irq),
	    T(test_remove, setup_poll),
	    T(test_admin_hang_reset, setup_irq),
	    T(test_manual_reset, setup_poll),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
