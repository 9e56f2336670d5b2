// SPDX-License-Identifier: MIT
/* Controller bring-up and shutdown against the emulator: CAP corners, slow
 * and missing RDY, queue creation failure with fallback sharing, clean
 * shutdown. */
#include <errno.h>

#include "drv_test.h"

static void test_basic_open_close(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o;
	struct tenv t;

	(void)state;
	tlog_reset();
	tcfg_default(&cfg, "emu-basic");
	cfg.mdts = 5;
	topts_default(&o);
	assert_int_equal(tenv_open(&t, &cfg, &o), 0);
	assert_non_null(nvmk_ctrl_identify(t.ctrl));
	assert_int_equal(nvmk_ctrl_mdts_bytes(t.ctrl), 128 * 1024);
	assert_int_equal(nvmk_ctrl_io_queues(t.ctrl), 4);
	assert_string_equal(nvmk_ctrl_name(t.ctrl), "emu-basic");
	assert_int_equal(NVME_CAP_MQES(nvmk_ctrl_cap(t.ctrl)), 1023);
	assert_int_equal(nvmk_ctrl_failed(t.ctrl), 0);
	assert_memory_equal(nvmk_ctrl_identify(t.ctrl)->mn,
			    cfg.model ? cfg.model : nvmk_ctrl_identify(t.ctrl)->mn, 4);
	uint32_t ids[8];
	assert_int_equal(nvmk_ctrl_active_ns(t.ctrl, ids, 8), 1);
	assert_int_equal(ids[0], 1);

	/* clean shutdown: SHST complete seen, then CC.EN = 0 */
	struct nvmk_emu *emu = t.emu;
	struct nvmk_backing *b = t.b;
	nvmk_ctrl_close(t.ctrl);
	assert_int_equal(nvmk_emu_reg_read32(emu, NVME_REG_CC) & NVME_CC_EN, 0);
	assert_int_equal(nvmk_emu_reg_read32(emu, NVME_REG_CSTS) & NVME_CSTS_RDY, 0);
	assert_false(tlog_has("shutdown complete (CSTS.SHST) not seen"));
	assert_true(tlog_has("closed"));
	nvmk_backing_destroy(b);
}

static void test_mqes_max(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o;
	struct tenv t;
	struct nvmk_qpair *qp;
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL, .depth = 65536};

	(void)state;
	tlog_reset();
	tcfg_default(&cfg, "emu-mqes");
	cfg.mqes = 0xffff;
	topts_default(&o);
	o.io_queue_depth = 65536;
	assert_int_equal(tenv_open(&t, &cfg, &o), 0);
	assert_int_equal(NVME_CAP_MQES(nvmk_ctrl_cap(t.ctrl)), 0xffff);
	assert_int_equal(nvmk_qpair_create(t.ctrl, &qo, &qp), 0);
	/* the queue works at full size */
	struct nvmk_ns *ns;
	assert_int_equal(nvmk_ns_open(t.ctrl, 1, 0, &ns), 0);
	char buf[512] = "hello";
	char rd[512];
	assert_int_equal(nvmk_ns_write(ns, qp, buf, 7, 1), 0);
	assert_int_equal(nvmk_ns_read(ns, qp, rd, 7, 1), 0);
	assert_memory_equal(buf, rd, 512);
	nvmk_ns_close(ns);
	nvmk_qpair_destroy(qp);
	tenv_close(&t);
}

static void test_mqes_zero_rejected(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o;
	struct tenv t;

	(void)state;
	tlog_reset();
	tcfg_default(&cfg, "emu-mqes0");
	cfg.mqes = 0;
	topts_default(&o);
	assert_int_equal(tenv_open(&t, &cfg, &o), -EINVAL);
	assert_true(tlog_has("CAP.MQES is 0"));
	assert_true(tlog_has("CHECK_CAP"));
}

static void test_mpsmin_rejected(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o;
	struct tenv t;

	(void)state;
	tlog_reset();
	tcfg_default(&cfg, "emu-mps");
	cfg.mpsmin = 1;
	cfg.mpsmax = 2;
	topts_default(&o);
	assert_int_equal(tenv_open(&t, &cfg, &o), -EINVAL);
	assert_true(tlog_has("CAP.MPSMIN 1"));
}

static void test_slow_rdy(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o;
	struct tenv t;

	(void)state;
	tlog_reset();
	tcfg_default(&cfg, "emu-slow");
	cfg.cap_to = 2;		/* 1 s */
	cfg.rdy_delay_ms = 150; /* well inside CAP.TO */
	topts_default(&o);
	assert_int_equal(tenv_open(&t, &cfg, &o), 0);
	tenv_close(&t);
}

static void test_rdy_never(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o;
	struct tenv t;

	(void)state;
	tlog_reset();
	tcfg_default(&cfg, "emu-never");
	cfg.cap_to = 1; /* 500 ms */
	cfg.rdy_never = true;
	topts_default(&o);
	assert_int_equal(tenv_open(&t, &cfg, &o), -ETIMEDOUT);
	assert_true(tlog_has("state WAIT_FOR_CSTS_RDY_1 timed out"));
}

static void test_create_sq_fails_fallback_share(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o;
	struct tenv t;

	(void)state;
	tlog_reset();
	tcfg_default(&cfg, "emu-qfail");
	topts_default(&o);
	assert_int_equal(tenv_open(&t, &cfg, &o), 0);
	/* the first queue is created, every later Create I/O SQ fails */
	struct nvmk_emu_fault f = {.kind = NVMK_FAULT_STATUS,
				   .qid = 0,
				   .opcode = NVME_ADM_CREATE_SQ,
				   .skip = 1,
				   .status = NVME_SF(NVME_SCT_CMD_SPECIFIC, NVME_SC_QID_INVALID)};
	int id = nvmk_emu_fault_add(t.emu, &f);
	assert_true(id >= 0);
	struct nvmk_qpair *q1 = nvmk_ctrl_get_qpair(t.ctrl);
	assert_non_null(q1);

	/* a second thread cannot get its own queue and shares the first */
	struct nvmk_qpair *q2 = NULL;
	pthread_t th;
	void *ret;
	assert_int_equal(pthread_create(&th, NULL, (void *(*)(void *))nvmk_ctrl_get_qpair, t.ctrl),
			 0);
	pthread_join(th, &ret);
	q2 = ret;
	assert_ptr_equal(q1, q2);
	assert_true(nvmk_emu_fault_hits(t.emu, id) >= 1);
	assert_true(tlog_has("Create I/O SQ failed"));

	/* explicit creation reports the device's error */
	struct nvmk_qpair *q3;
	assert_int_equal(nvmk_qpair_create(t.ctrl, NULL, &q3), -EINVAL);
	assert_int_equal(nvmk_last_status(), nvmk_last_status()); /* not a sync ns call */

	/* I/O through the shared queue still works */
	struct nvmk_ns *ns;
	assert_int_equal(nvmk_ns_open(t.ctrl, 1, 0, &ns), 0);
	char wr[1024], rd[1024];
	memset(wr, 0x5a, sizeof(wr));
	assert_int_equal(nvmk_ns_write(ns, NULL, wr, 100, 2), 0);
	assert_int_equal(nvmk_ns_read(ns, NULL, rd, 100, 2), 0);
	assert_memory_equal(wr, rd, sizeof(wr));
	nvmk_ns_close(ns);
	tenv_close(&t);
}

static void test_shutdown_bounds(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o;
	struct tenv t;

	(void)state;
	/* SHST completes after 100 ms, inside the bound: no warning */
	tlog_reset();
	tcfg_default(&cfg, "emu-shn");
	cfg.shn_delay_ms = 100;
	topts_default(&o);
	o.shutdown_timeout_ms = 2000;
	assert_int_equal(tenv_open(&t, &cfg, &o), 0);
	struct nvmk_emu *emu = t.emu;
	struct nvmk_backing *b = t.b;
	nvmk_ctrl_close(t.ctrl);
	assert_false(tlog_has("not seen within"));
	assert_int_equal(nvmk_emu_reg_read32(emu, NVME_REG_CC) & NVME_CC_EN, 0);
	nvmk_backing_destroy(b);

	/* SHST too slow for the bound: logged, and the controller is still
	 * disabled (CC.EN = 0) */
	tlog_reset();
	cfg.shn_delay_ms = 800;
	o.shutdown_timeout_ms = 100;
	assert_int_equal(tenv_open(&t, &cfg, &o), 0);
	emu = t.emu;
	b = t.b;
	nvmk_ctrl_close(t.ctrl);
	assert_true(tlog_has("shutdown complete (CSTS.SHST) not seen within 100 ms"));
	assert_int_equal(nvmk_emu_reg_read32(emu, NVME_REG_CC) & NVME_CC_EN, 0);
	nvmk_backing_destroy(b);
}

static void test_reopen_enabled(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o;
	struct nvmk_backing *b;
	struct nvmk_emu *emu;
	struct nvmk_dma_buf aq;
	struct nvmk_ctrl *ctrl;

	(void)state;
	/* a controller left enabled (e.g. by a crashed predecessor) is disabled
	 * first (Base 2.0 3.5.1) and brought up again */
	tlog_reset();
	tcfg_default(&cfg, "emu-reopen");
	topts_default(&o);
	assert_int_equal(nvmk_backing_local_create(&cfg, &b, &emu), 0);
	assert_int_equal(nvmk_backing_dma_alloc(b, 8192, "old-aq", &aq), 0);
	nvmk_backing_write32(b, NVME_REG_AQA, NVME_AQA(1, 1));
	nvmk_backing_write64(b, NVME_REG_ASQ, aq.iova);
	nvmk_backing_write64(b, NVME_REG_ACQ, aq.iova + 4096);
	nvmk_backing_write32(b, NVME_REG_CC,
			     NVME_CC_SET_IOSQES(6) | NVME_CC_SET_IOCQES(4) | NVME_CC_EN);
	for (int i = 0; i < 500 && !(nvmk_backing_read32(b, NVME_REG_CSTS) & NVME_CSTS_RDY); i++)
		tsleep_ms(1);
	assert_true(nvmk_backing_read32(b, NVME_REG_CSTS) & NVME_CSTS_RDY);
	uint64_t r0 = nvmk_emu_reset_count(emu);
	assert_int_equal(nvmk_ctrl_open(b, &o, &ctrl), 0);
	assert_true(nvmk_emu_reset_count(emu) > r0);
	uint32_t ids[2];
	assert_int_equal(nvmk_ctrl_active_ns(ctrl, ids, 2), 1);
	nvmk_ctrl_close(ctrl);
	nvmk_backing_dma_free(b, &aq);
	nvmk_backing_destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_basic_open_close),
	    cmocka_unit_test(test_mqes_max),
	    cmocka_unit_test(test_mqes_zero_rejected),
	    cmocka_unit_test(test_mpsmin_rejected),
	    cmocka_unit_test(test_slow_rdy),
	    cmocka_unit_test(test_rdy_never),
	    cmocka_unit_test(test_create_sq_fails_fallback_share),
	    cmocka_unit_test(test_shutdown_bounds),
	    cmocka_unit_test(test_reopen_enabled),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
