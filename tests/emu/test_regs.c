/* SPDX-License-Identifier: MIT */
/*
 * Emulator conformance: controller registers (NVMe Base 2.0, 3.1.3), the
 * enable / disable / shutdown state machine (3.5, 3.6) and controller reset
 * (3.7.2). Black box: only emu.h and the raw test host.
 */
#include <errno.h>
#include <string.h>

#include "host.h"

static struct host *new_host(struct nvmk_emu_config *cfg)
{
	struct host *h = host_create(cfg);

	assert_non_null(h);
	return h;
}

/* A Read of block 0 on qid 1, nsid 1; status field or < 0. */
static int read_block0(struct host *h)
{
	struct host_buf b;
	int sf;

	assert_int_equal(host_buf_alloc(h, &b, 4096), 0);
	sf = host_rw(h, 1, NVME_CMD_READ, 1, 0, 1, 0, b.iova, 512, NULL);
	host_buf_free(h, &b);
	return sf;
}

/* Base 2.0 3.1.3.1: CAP reports what the controller was built with. */
static void test_cap_reflects_config(void **state)
{
	struct nvmk_emu_config cfg;
	struct host *h;
	uint64_t cap;

	(void)state;
	host_config(&cfg, "regs-cap");
	cfg.mqes = 255;
	cfg.dstrd = 2;
	cfg.cap_to = 7;
	cfg.mpsmin = 1;
	cfg.mpsmax = 3;
	h = new_host(&cfg);
	cap = host_rd64(h, NVME_REG_CAP);
	assert_int_equal(NVME_CAP_MQES(cap), 255);
	assert_int_equal(NVME_CAP_DSTRD(cap), 2);
	assert_int_equal(NVME_CAP_TO(cap), 7);
	assert_int_equal(NVME_CAP_MPSMIN(cap), 1);
	assert_int_equal(NVME_CAP_MPSMAX(cap), 3);
	/* NVM command set supported (Base 2.0 Figure 36 CSS bit 0) */
	assert_true(NVME_CAP_CSS(cap) & NVME_CAP_CSS_NVM);
	/* The two 32-bit halves read the same as the 64-bit access. */
	assert_int_equal(host_rd32(h, NVME_REG_CAP), (uint32_t)cap);
	assert_int_equal(host_rd32(h, NVME_REG_CAP + 4), (uint32_t)(cap >> 32));
	/* BAR0 holds a doorbell pair for the admin queue and each I/O queue,
	 * with the configured stride (Base 2.0 3.1.3.21/22). */
	assert_true(nvmk_emu_bar_size(h->emu) >=
		    nvme_cq_doorbell(cfg.max_io_queues, cfg.dstrd) + (4u << cfg.dstrd));
	host_destroy(h);

	/* cap_to 0 means 1 (emu.h): CAP.TO of 0 would be meaningless. */
	host_config(&cfg, "regs-cap0");
	cfg.cap_to = 0;
	h = new_host(&cfg);
	assert_int_equal(NVME_CAP_TO(host_rd64(h, NVME_REG_CAP)), 1);
	assert_int_equal(NVME_CAP_MQES(host_rd64(h, NVME_REG_CAP)), cfg.mqes);
	assert_int_equal(NVME_CAP_MPSMIN(host_rd64(h, NVME_REG_CAP)), 0);
	host_destroy(h);
}

/* Base 2.0 3.1.3.2 and 5.17.2.1: VS is a known version and Identify
 * Controller VER reports the same value. */
static void test_version(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvme_id_ctrl id;
	struct host *h;
	uint32_t vs;

	(void)state;
	host_config(&cfg, "regs-vs");
	h = new_host(&cfg);
	vs = host_rd32(h, NVME_REG_VS);
	/* The features this suite tests (CNS 03h, Changed NS log, DBBUF)
	 * need at least 1.3; the header says the emulator follows 2.0. */
	assert_true(vs >= NVME_VS(1, 3, 0));
	assert_true(NVME_VS_MJR(vs) <= 2);
	assert_int_equal(host_enable(h, 8), 0);
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
	assert_int_equal(id.ver, vs);
	host_destroy(h);
}

/* Base 2.0 3.1.3: RO registers ignore writes; AQA/ASQ/ACQ are RW; out of
 * range or misaligned accesses read 0 (emu.h). */
static void test_readonly_and_rw_fields(void **state)
{
	struct nvmk_emu_config cfg;
	struct host *h;
	uint64_t cap;
	uint32_t vs, csts;

	(void)state;
	host_config(&cfg, "regs-ro");
	h = new_host(&cfg);
	cap = host_rd64(h, NVME_REG_CAP);
	vs = host_rd32(h, NVME_REG_VS);
	host_wr32(h, NVME_REG_CAP, 0);
	host_wr32(h, NVME_REG_CAP + 4, 0xffffffffu);
	host_wr64(h, NVME_REG_CAP, 0x1234);
	host_wr32(h, NVME_REG_VS, 0xdeadbeef);
	assert_int_equal(host_rd64(h, NVME_REG_CAP), cap);
	assert_int_equal(host_rd32(h, NVME_REG_VS), vs);

	/* CSTS.RDY/CFS/SHST are RO: writing ones does not make the
	 * controller ready or failed. */
	host_wr32(h, NVME_REG_CSTS, NVME_CSTS_RDY | NVME_CSTS_CFS | NVME_CSTS_SHST_MASK);
	csts = host_rd32(h, NVME_REG_CSTS);
	assert_int_equal(csts & (NVME_CSTS_RDY | NVME_CSTS_CFS | NVME_CSTS_SHST_MASK), 0);

	/* Admin queue attributes are plain RW registers (Base 2.0 3.1.3.8-10). */
	host_wr32(h, NVME_REG_AQA, NVME_AQA(15, 31));
	host_wr64(h, NVME_REG_ASQ, HOST_IOVA_BASE + 0x3000);
	host_wr64(h, NVME_REG_ACQ, HOST_IOVA_BASE + 0x7000);
	assert_int_equal(host_rd32(h, NVME_REG_AQA), NVME_AQA(15, 31));
	assert_int_equal(host_rd64(h, NVME_REG_ASQ), HOST_IOVA_BASE + 0x3000);
	assert_int_equal(host_rd64(h, NVME_REG_ACQ), HOST_IOVA_BASE + 0x7000);

	/* Misaligned and out of range reads are 0 (emu.h). */
	assert_int_equal(host_rd32(h, NVME_REG_VS + 1), 0);
	assert_int_equal(host_rd32(h, (uint32_t)nvmk_emu_bar_size(h->emu) + 0x1000), 0);
	host_wr32(h, (uint32_t)nvmk_emu_bar_size(h->emu) + 0x1000, 1); /* ignored, no crash */
	host_wr32(h, NVME_REG_CC + 2, 0xffffffffu);		       /* misaligned: ignored */
	assert_int_equal(host_rd32(h, NVME_REG_CC) & NVME_CC_EN, 0);
	assert_int_equal(host_rd32(h, NVME_REG_CSTS) & NVME_CSTS_RDY, 0);

	/* Once enabled, writing CSTS does not clear RDY either. */
	assert_int_equal(host_enable(h, 8), 0);
	host_wr32(h, NVME_REG_CSTS, 0);
	assert_true(host_rd32(h, NVME_REG_CSTS) & NVME_CSTS_RDY);
	assert_int_equal(host_rd64(h, NVME_REG_CAP), cap);
	host_destroy(h);
}

/* Base 2.0 3.5.1 / 3.7.2: EN 0->1 makes RDY 1; EN 1->0 makes RDY 0 and
 * counts as a controller reset. */
static void test_enable_disable(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvme_id_ctrl id;
	struct host *h;
	uint64_t resets;

	(void)state;
	host_config(&cfg, "regs-en");
	h = new_host(&cfg);
	resets = nvmk_emu_reset_count(h->emu);
	assert_int_equal(host_rd32(h, NVME_REG_CSTS) & NVME_CSTS_RDY, 0);
	assert_int_equal(host_enable(h, 2), 0); /* the smallest admin queue */
	assert_true(host_rd32(h, NVME_REG_CC) & NVME_CC_EN);
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
	assert_int_equal(host_disable(h), 0);
	assert_int_equal(host_rd32(h, NVME_REG_CSTS) & (NVME_CSTS_RDY | NVME_CSTS_CFS), 0);
	assert_int_equal(nvmk_emu_reset_count(h->emu), resets + 1);
	assert_int_equal(host_enable(h, 4096), 0); /* the largest admin queue */
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
	assert_int_equal(host_disable(h), 0);
	assert_int_equal(nvmk_emu_reset_count(h->emu), resets + 2);
	/* EN 0 -> 0 is not a reset. */
	host_wr32(h, NVME_REG_CC, 0);
	assert_int_equal(nvmk_emu_reset_count(h->emu), resets + 2);
	host_destroy(h);
}

/*
 * rdy_delay_ms: RDY follows EN only after the delay, both ways. Timing is
 * only checked as a lower bound, which a correct emulator meets whatever
 * the load: RDY must never be seen changed before the delay has passed
 * since the CC write (t0 is taken before the write).
 */
static void test_rdy_delay(void **state)
{
	struct nvmk_emu_config cfg;
	struct host *h;
	uint64_t t0, t;
	uint32_t csts, cc;
	const unsigned delay = 150;

	(void)state;
	host_config(&cfg, "regs-rdyd");
	cfg.rdy_delay_ms = delay;
	cfg.cap_to = 4; /* 2 s: the delay fits well inside CAP.TO */
	h = new_host(&cfg);

	/* host_enable() waits; check the bound by hand around it. */
	t0 = host_now_ms();
	assert_int_equal(host_enable(h, 8), 0);
	t = host_now_ms();
	assert_true(t - t0 + 1 >= delay);

	cc = host_rd32(h, NVME_REG_CC);
	t0 = host_now_ms();
	host_wr32(h, NVME_REG_CC, cc & ~NVME_CC_EN);
	for (;;) {
		csts = host_rd32(h, NVME_REG_CSTS);
		t = host_now_ms();
		if (!(csts & NVME_CSTS_RDY))
			break;
		assert_true(t - t0 < host_rdy_timeout_ms(h));
		host_sleep_ms(1);
	}
	/* observed RDY = 0 at t: the delay must have passed */
	assert_true(t - t0 + 1 >= delay);

	t0 = host_now_ms();
	host_wr32(h, NVME_REG_CC, cc | NVME_CC_EN);
	csts = host_rd32(h, NVME_REG_CSTS);
	t = host_now_ms();
	if (csts & NVME_CSTS_RDY)
		assert_true(t - t0 + 1 >= delay);
	assert_int_equal(
	    host_wait_csts(h, NVME_CSTS_RDY, NVME_CSTS_RDY, host_rdy_timeout_ms(h), &csts), 0);
	assert_true(host_now_ms() - t0 + 1 >= delay);
	host_destroy(h);
}

/* rdy_never: a broken device; RDY stays 0 for the whole CAP.TO window. The
 * host sees a timeout and can still disable it. */
static void test_rdy_never(void **state)
{
	struct nvmk_emu_config cfg;
	struct host *h;
	uint32_t csts;

	(void)state;
	host_config(&cfg, "regs-rdyn");
	cfg.rdy_never = true;
	cfg.cap_to = 1;
	h = new_host(&cfg);
	assert_int_equal(host_enable(h, 8), -ETIMEDOUT);
	csts = host_rd32(h, NVME_REG_CSTS);
	assert_int_equal(csts & NVME_CSTS_RDY, 0);
	assert_int_equal(host_disable(h), 0);
	host_destroy(h);
}

/*
 * An enable with a CC the controller cannot run with must not produce a
 * normally ready controller: either CSTS.CFS is set or RDY does not become
 * 1 within CAP.TO (Base 2.0 3.1.3.5: MPS shall be within MPSMIN..MPSMAX;
 * CSS shall be a value CAP.CSS supports). A reset then recovers.
 */
static void check_refused_enable(struct host *h, uint32_t cc)
{
	uint64_t deadline;
	uint32_t csts;

	host_wr32(h, NVME_REG_CC, cc & ~NVME_CC_EN);
	host_wr32(h, NVME_REG_CC, cc | NVME_CC_EN);
	deadline = host_now_ms() + host_rdy_timeout_ms(h);
	for (;;) {
		csts = host_rd32(h, NVME_REG_CSTS);
		if (csts & NVME_CSTS_CFS)
			break;
		if (csts & NVME_CSTS_RDY)
			fail_msg("controller became ready with CC=0x%08x (CSTS=0x%08x)", cc, csts);
		if (host_now_ms() >= deadline)
			break;
		host_sleep_ms(2);
	}
	assert_int_equal(host_disable(h), 0);
	assert_int_equal(host_rd32(h, NVME_REG_CSTS) & NVME_CSTS_RDY, 0);
	/* Let a lingering CFS go before the next step, so that this test is
	 * about the refusal only (test_reenable_after_refused_enable checks
	 * that no waiting is needed). */
	host_wait_csts(h, NVME_CSTS_CFS, 0, host_rdy_timeout_ms(h), NULL);
}

static uint32_t good_cc(uint32_t mps)
{
	return NVME_CC_SET_CSS(0) | NVME_CC_SET_MPS(mps) | NVME_CC_SET_IOSQES(6) |
	       NVME_CC_SET_IOCQES(4);
}

static void test_bad_mps_refused(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvme_id_ctrl id;
	struct host *h;
	uint64_t asq, acq;

	(void)state;
	host_config(&cfg, "regs-mps");
	cfg.mpsmin = 1; /* 8 KiB */
	cfg.mpsmax = 2; /* 16 KiB */
	cfg.cap_to = 1;
	h = new_host(&cfg);
	/* A valid admin queue, so that only CC is wrong. */
	asq = host_page_alloc(h->arena, 4, 4);
	acq = host_page_alloc(h->arena, 4, 4);
	host_wr32(h, NVME_REG_AQA, NVME_AQA(7, 7));
	host_wr64(h, NVME_REG_ASQ, asq);
	host_wr64(h, NVME_REG_ACQ, acq);
	check_refused_enable(h, good_cc(0)); /* below MPSMIN */
	check_refused_enable(h, good_cc(3)); /* above MPSMAX */
	/* Within the range works, with 8 KiB pages for the data too. */
	h->mps = 1;
	assert_int_equal(host_enable(h, 8), 0);
	assert_int_equal(host_rd32(h, NVME_REG_CSTS) & NVME_CSTS_CFS, 0);
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
	assert_int_equal(id.sqes & 0xf, 6);
	h->mps = 2;
	assert_int_equal(host_enable(h, 8), 0);
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
	host_destroy(h);
}

static void test_bad_css_refused(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvme_id_ctrl id;
	struct host *h;
	uint64_t asq, acq;

	(void)state;
	host_config(&cfg, "regs-css");
	cfg.cap_to = 1;
	h = new_host(&cfg);
	asq = host_page_alloc(h->arena, 1, 1);
	acq = host_page_alloc(h->arena, 1, 1);
	host_wr32(h, NVME_REG_AQA, NVME_AQA(7, 7));
	host_wr64(h, NVME_REG_ASQ, asq);
	host_wr64(h, NVME_REG_ACQ, acq);
	/* 001b and 101b are reserved values of CC.CSS (Base 2.0 Figure 41). */
	check_refused_enable(h, good_cc(0) | NVME_CC_SET_CSS(1));
	check_refused_enable(h, good_cc(0) | NVME_CC_SET_CSS(5));
	if (!(NVME_CAP_CSS(h->cap) & NVME_CAP_CSS_ADMIN_ONLY))
		check_refused_enable(h, good_cc(0) | NVME_CC_SET_CSS(7));
	assert_int_equal(host_enable(h, 8), 0);
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
	host_destroy(h);
}

/*
 * Base 2.0 3.1.3.5 CC.EN: once EN is cleared and CSTS.RDY reads 0 the
 * controller is ready to be re-enabled. After an enable that failed with CFS
 * (RDY never became 1) the host clears EN, sees RDY = 0 at once and may
 * enable again right away: a valid configuration must then give a ready
 * controller without CFS, and the reset is counted.
 */
static void test_reenable_after_refused_enable(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvme_id_ctrl id;
	struct host *h;
	unsigned i;
	uint64_t asq, acq, resets, deadline;
	uint32_t csts;

	(void)state;
	host_config(&cfg, "regs-reen");
	cfg.mpsmin = 1;
	cfg.mpsmax = 1;
	cfg.cap_to = 1;
	h = new_host(&cfg);
	asq = host_page_alloc(h->arena, 2, 2);
	acq = host_page_alloc(h->arena, 2, 2);
	for (i = 0; i < 5; i++) {
		host_wr32(h, NVME_REG_AQA, NVME_AQA(7, 7));
		host_wr64(h, NVME_REG_ASQ, asq);
		host_wr64(h, NVME_REG_ACQ, acq);
		/* MPS 0 is below MPSMIN: refused, with CFS */
		host_wr32(h, NVME_REG_CC, good_cc(0) | NVME_CC_EN);
		assert_int_equal(
		    host_wait_csts(h, NVME_CSTS_CFS, NVME_CSTS_CFS, host_rdy_timeout_ms(h), &csts),
		    0);
		assert_int_equal(csts & NVME_CSTS_RDY, 0);
		resets = nvmk_emu_reset_count(h->emu);
		host_wr32(h, NVME_REG_CC, good_cc(0));
		assert_int_equal(host_wait_csts(h, NVME_CSTS_RDY, 0, host_rdy_timeout_ms(h), &csts),
				 0);
		/* RDY = 0: ready to be re-enabled, now; a host that sees CFS
		 * on the way to RDY = 1 gives up on the controller */
		host_wr32(h, NVME_REG_CC, good_cc(1) | NVME_CC_EN);
		deadline = host_now_ms() + host_rdy_timeout_ms(h);
		do {
			csts = host_rd32(h, NVME_REG_CSTS);
			if (csts & NVME_CSTS_CFS)
				fail_msg("round %u: CSTS.CFS set after re-enabling with a valid CC "
					 "(CSTS 0x%08x)",
					 i, csts);
			if (host_now_ms() > deadline)
				fail_msg("round %u: not ready after re-enable (CSTS 0x%08x)", i,
					 csts);
		} while (!(csts & NVME_CSTS_RDY));
		assert_int_equal(nvmk_emu_reset_count(h->emu), resets + 1);
		assert_int_equal(host_disable(h), 0);
	}
	h->mps = 1;
	assert_int_equal(host_enable(h, 8), 0);
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
	host_destroy(h);
}

/*
 * Base 2.0 3.6.1: CC.SHN starts a shutdown; SHST goes 01b (occurring) then
 * 10b (complete). With shn_delay_ms the occurring state is visible and
 * complete is never reported before the delay. After a reset the
 * controller is usable again and SHST is back to 00b.
 */
static void test_shutdown_normal(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvme_id_ctrl id;
	struct host *h;
	uint64_t t0, t;
	uint32_t cc, csts, shst, last = NVME_SHST_NORMAL;
	bool seen_occurring = false;
	const unsigned delay = 120;

	(void)state;
	host_config(&cfg, "regs-shn");
	cfg.shn_delay_ms = delay;
	h = new_host(&cfg);
	assert_int_equal(host_bringup(h), 0);
	assert_int_equal(host_create_qpair(h, 1, 16, -1), 0);

	cc = host_rd32(h, NVME_REG_CC);
	t0 = host_now_ms();
	host_wr32(h, NVME_REG_CC, (cc & ~NVME_CC_SHN_MASK) | NVME_CC_SET_SHN(NVME_CC_SHN_NORMAL));
	for (;;) {
		csts = host_rd32(h, NVME_REG_CSTS);
		t = host_now_ms();
		shst = NVME_CSTS_SHST(csts);
		assert_int_not_equal(shst, 3); /* reserved */
		/* never goes backwards: 00b -> 01b -> 10b */
		assert_true(shst >= last);
		last = shst;
		if (shst == NVME_SHST_OCCURRING)
			seen_occurring = true;
		if (shst == NVME_SHST_COMPLETE)
			break;
		if (t - t0 > 10000)
			fail_msg("SHST never reached complete (CSTS=0x%08x)", csts);
		host_sleep_ms(1);
	}
	assert_true(t - t0 + 1 >= delay);
	assert_true(seen_occurring);
	assert_int_equal(csts & NVME_CSTS_CFS, 0);

	/* A reset is needed before new commands (3.6.1); after it SHST = 00b. */
	assert_int_equal(host_disable(h), 0);
	assert_int_equal(host_enable(h, 8), 0);
	assert_int_equal(NVME_CSTS_SHST(host_rd32(h, NVME_REG_CSTS)), NVME_SHST_NORMAL);
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
	host_destroy(h);
}

static void test_shutdown_abrupt(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvme_id_ctrl id;
	struct host *h;

	(void)state;
	host_config(&cfg, "regs-shna");
	h = new_host(&cfg);
	assert_int_equal(host_enable(h, 8), 0);
	assert_int_equal(host_shutdown(h, NVME_CC_SHN_ABRUPT, 10000), 0);
	assert_int_equal(host_rd32(h, NVME_REG_CSTS) & NVME_CSTS_CFS, 0);
	assert_int_equal(host_disable(h), 0);
	assert_int_equal(host_enable(h, 8), 0);
	assert_int_equal(NVME_CSTS_SHST(host_rd32(h, NVME_REG_CSTS)), NVME_SHST_NORMAL);
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
	host_destroy(h);
}

/*
 * Base 2.0 3.7.2: a Controller Reset deletes every I/O queue. An I/O SQ
 * doorbell written afterwards does nothing (no fetch, no DMA); the queue
 * ID is free again and must be re-created before use.
 */
static void test_reset_drops_queues(void **state)
{
	struct nvmk_emu_config cfg;
	struct host *h;
	struct nvme_sqe sqe;
	uint64_t reads, dma, buf, ring;
	struct nvme_sqe *ringp;

	(void)state;
	host_config(&cfg, "regs-rst");
	h = new_host(&cfg);
	assert_int_equal(host_bringup(h), 0);
	assert_int_equal(host_create_qpair(h, 1, 16, -1), 0);
	assert_ok(read_block0(h));

	assert_int_equal(host_disable(h), 0);
	assert_int_equal(host_bringup(h), 0);

	/* Put a valid Read where the old SQ 1 was and ring its doorbell. */
	ring = host_page_alloc(h->arena, 1, 1);
	buf = host_page_alloc(h->arena, 1, 1);
	ringp = host_va(h->arena, ring);
	host_sqe(&sqe, NVME_CMD_READ, 1);
	sqe.cid = 77;
	sqe.prp1 = buf;
	ringp[0] = sqe;
	reads = nvmk_emu_cmd_count(h->emu, false, NVME_CMD_READ);
	dma = host_arena_dma_calls(h->arena);
	host_wr32(h, nvme_sq_doorbell(1, h->dstrd), 1);
	host_sleep_ms(HOST_QUIET_MS);
	assert_int_equal(nvmk_emu_cmd_count(h->emu, false, NVME_CMD_READ), reads);
	assert_int_equal(host_arena_dma_calls(h->arena), dma);
	/* The admin queue still works, and qid 1 can be created again. */
	assert_int_equal(host_create_qpair(h, 1, 16, -1), 0);
	assert_ok(read_block0(h));
	host_destroy(h);
}

/* Base 2.0 3.1.3.21/22: doorbells are 4 << DSTRD bytes apart; the bytes
 * between two doorbells are not doorbells. */
static void test_doorbell_stride(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvme_id_ctrl id;
	struct host *h;
	uint16_t q;

	(void)state;
	host_config(&cfg, "regs-dstrd");
	cfg.dstrd = 3; /* 32 bytes */
	cfg.max_io_queues = 4;
	cfg.msix_vectors = 5;
	h = new_host(&cfg);
	assert_int_equal(h->dstrd, 3);
	assert_int_equal(host_bringup(h), 0);
	/* With DSTRD 0 this offset would be the admin CQ head doorbell. */
	host_wr32(h, NVME_REG_DBS + 4, 5);
	host_wr32(h, NVME_REG_DBS + 12, 3);
	assert_ok(host_identify(h, NVME_ID_CNS_CTRL, 0, &id));
	for (q = 1; q <= 4; q++)
		assert_int_equal(host_create_qpair(h, q, 8, -1), 0);
	for (q = 1; q <= 4; q++) {
		struct host_buf b;
		int i;

		assert_int_equal(host_buf_alloc(h, &b, 4096), 0);
		for (i = 0; i < 10; i++) /* wraps the 8-entry queues */
			assert_ok(host_rw(h, q, NVME_CMD_READ, 1, q, 1, 0, b.iova, 512, NULL));
		host_buf_free(h, &b);
	}
	assert_true(nvmk_emu_bar_size(h->emu) >= nvme_cq_doorbell(4, 3) + 4);
	host_destroy(h);
}

/* emu.h: queue memory the DMA callback refuses makes the controller fatal
 * (CSTS.CFS); nothing is touched outside the arena. */
static void test_admin_queue_unmapped(void **state)
{
	struct nvmk_emu_config cfg;
	struct host *h;
	uint32_t csts;

	(void)state;
	host_config(&cfg, "regs-aqbad");
	h = new_host(&cfg);
	assert_string_equal(nvmk_emu_name(h->emu), "regs-aqbad");
	host_wr32(h, NVME_REG_AQA, NVME_AQA(7, 7));
	host_wr64(h, NVME_REG_ASQ, HOST_IOVA_BASE + HOST_ARENA_SIZE); /* just past the end */
	host_wr64(h, NVME_REG_ACQ, HOST_IOVA_BASE + HOST_ARENA_SIZE + HOST_PAGE);
	host_wr32(h, NVME_REG_CC, good_cc(0) | NVME_CC_EN);
	/* either the enable already fails, or the first command does */
	if (host_wait_csts(h, NVME_CSTS_RDY | NVME_CSTS_CFS, NVME_CSTS_RDY, 2000, &csts) == 0)
		host_wr32(h, nvme_sq_doorbell(0, h->dstrd), 1);
	assert_int_equal(host_wait_csts(h, NVME_CSTS_CFS, NVME_CSTS_CFS, HOST_TIMEOUT_MS, &csts),
			 0);
	/* a reset with good queues recovers */
	assert_int_equal(host_disable(h), 0);
	host_wait_csts(h, NVME_CSTS_CFS, 0, host_rdy_timeout_ms(h), NULL);
	assert_int_equal(host_enable(h, 8), 0);
	host_destroy(h);
}

/* emu.h: invalid configurations are refused with -EINVAL. */
static void test_bad_config_refused(void **state)
{
	struct nvmk_emu_config cfg;
	struct host *h = NULL;

	(void)state;
	host_config(&cfg, "regs-badcfg");
	cfg.msix_vectors = 0; /* must be >= 1 */
	assert_int_equal(host_try_create(&cfg, &h), -EINVAL);
	assert_null(h);

	host_config(&cfg, "regs-badcfg2");
	cfg.ns[0].lba_shift = 10; /* only 9 or 12 */
	assert_int_equal(host_try_create(&cfg, &h), -EINVAL);

	host_config(&cfg, "regs-badcfg3");
	cfg.serial = "012345678901234567890123"; /* > 20 characters */
	assert_int_equal(host_try_create(&cfg, &h), -EINVAL);

	host_config(&cfg, "regs-badcfg4");
	cfg.mpsmin = 2;
	cfg.mpsmax = 1; /* max below min */
	assert_int_equal(host_try_create(&cfg, &h), -EINVAL);

	nvmk_emu_destroy(NULL); /* documented no-op */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_cap_reflects_config, host_destroy_all),
	    cmocka_unit_test_teardown(test_version, host_destroy_all),
	    cmocka_unit_test_teardown(test_readonly_and_rw_fields, host_destroy_all),
	    cmocka_unit_test_teardown(test_enable_disable, host_destroy_all),
	    cmocka_unit_test_teardown(test_rdy_delay, host_destroy_all),
	    cmocka_unit_test_teardown(test_rdy_never, host_destroy_all),
	    cmocka_unit_test_teardown(test_bad_mps_refused, host_destroy_all),
	    cmocka_unit_test_teardown(test_bad_css_refused, host_destroy_all),
	    cmocka_unit_test_teardown(test_reenable_after_refused_enable, host_destroy_all),
	    cmocka_unit_test_teardown(test_shutdown_normal, host_destroy_all),
	    cmocka_unit_test_teardown(test_shutdown_abrupt, host_destroy_all),
	    cmocka_unit_test_teardown(test_reset_drops_queues, host_destroy_all),
	    cmocka_unit_test_teardown(test_doorbell_stride, host_destroy_all),
	    cmocka_unit_test_teardown(test_admin_queue_unmapped, host_destroy_all),
	    cmocka_unit_test_teardown(test_bad_config_refused, host_destroy_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
