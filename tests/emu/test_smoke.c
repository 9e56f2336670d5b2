/* SPDX-License-Identifier: MIT */
/*
 * Emulator smoke test: bring a controller up through the public API with a
 * tiny raw host (registers, admin queue, one I/O queue pair), move data and
 * check the MSI-X eventfd fires, then disable.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "nvmekeep/emu.h"

#define MEM_BASE 0x10000000ull
#define MEM_SIZE (4u << 20)
#define PAGE	 4096u
#define QD	 32u
#define NQ	 5 /* admin + 4 I/O queues */

struct host {
	uint8_t *mem;
	struct nvmk_emu *emu;
	int efd[NQ];
	uint32_t sq_tail[NQ];
	uint32_t cq_head[NQ];
	uint8_t phase[NQ];
	uint64_t sq_iova[NQ], cq_iova[NQ];
	uint16_t cid[NQ]; /* per queue: each queue is driven by one thread */
};

static void *host_dma(void *ctx, uint64_t iova, size_t len, bool write)
{
	struct host *h = ctx;

	(void)write;
	if (iova < MEM_BASE || iova - MEM_BASE > MEM_SIZE || len > MEM_SIZE - (iova - MEM_BASE))
		return NULL;
	return h->mem + (iova - MEM_BASE);
}

static void *ptr(struct host *h, uint64_t iova)
{
	return h->mem + (iova - MEM_BASE);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool wait_csts(struct host *h, uint32_t mask, uint32_t want)
{
	uint64_t end = now_ms() + 5000;

	while (now_ms() < end) {
		if ((nvmk_emu_reg_read32(h->emu, NVME_REG_CSTS) & mask) == want)
			return true;
		usleep(100);
	}
	return false;
}

/* Put @sqe on queue @q and ring; returns the CID. */
static uint16_t post(struct host *h, unsigned q, struct nvme_sqe *sqe)
{
	struct nvme_sqe *sq = ptr(h, h->sq_iova[q]);

	sqe->cid = ++h->cid[q];
	sq[h->sq_tail[q]] = *sqe;
	h->sq_tail[q] = (h->sq_tail[q] + 1) % QD;
	/* The emulator stores the doorbell with release order: the SQE is visible first. */
	nvmk_emu_reg_write32(h->emu, nvme_sq_doorbell(q, 0), h->sq_tail[q]);
	return sqe->cid;
}

/* Wait for the next completion on queue @q (fails the test after 5 s, or
 * returns an all-zero CQE when @may_timeout_ms elapses). */
static struct nvme_cqe reap(struct host *h, unsigned q, unsigned may_timeout_ms)
{
	struct nvme_cqe *cq = ptr(h, h->cq_iova[q]), out = {0};
	uint64_t end = now_ms() + (may_timeout_ms ? may_timeout_ms : 5000);

	while (now_ms() < end) {
		volatile struct nvme_cqe *e = &cq[h->cq_head[q]];

		if ((__atomic_load_n(&e->status, __ATOMIC_ACQUIRE) & 1) == h->phase[q]) {
			out = *(struct nvme_cqe *)e;
			if (++h->cq_head[q] == QD) {
				h->cq_head[q] = 0;
				h->phase[q] ^= 1;
			}
			nvmk_emu_reg_write32(h->emu, nvme_cq_doorbell(q, 0), h->cq_head[q]);
			return out;
		}
		usleep(50);
	}
	if (!may_timeout_ms)
		fail_msg("no completion on queue %u", q);
	return out;
}

/* Submit @sqe on queue @q and wait for its completion. */
static struct nvme_cqe submit(struct host *h, unsigned q, struct nvme_sqe *sqe)
{
	post(h, q, sqe);
	return reap(h, q, 0);
}

static uint16_t sc(struct nvme_cqe c)
{
	return NVME_SF_SC(NVME_CQE_SF(c.status));
}

static uint16_t sct(struct nvme_cqe c)
{
	return NVME_SF_SCT(NVME_CQE_SF(c.status));
}

static int setup(void **state)
{
	struct host *h = calloc(1, sizeof(*h));
	struct nvmk_emu_config cfg;

	h->mem = aligned_alloc(PAGE, MEM_SIZE);
	memset(h->mem, 0, MEM_SIZE);
	nvmk_emu_config_default(&cfg);
	cfg.name = "smoke";
	cfg.ns[0].nblocks = 2048;
	cfg.dma = host_dma;
	cfg.dma_ctx = h;
	assert_int_equal(nvmk_emu_create(&cfg, &h->emu), 0);
	for (int i = 0; i < NQ; i++) {
		h->efd[i] = eventfd(0, EFD_NONBLOCK);
		assert_true(h->efd[i] >= 0);
		assert_int_equal(nvmk_emu_set_irq_fd(h->emu, (uint16_t)i, h->efd[i]), 0);
		h->phase[i] = 1;
		/* Queues 0 and 1 in pages 0-3; the others far from test buffers. */
		h->sq_iova[i] = MEM_BASE + (i < 2 ? 2u * i : 200u + 2u * i) * PAGE;
		h->cq_iova[i] = h->sq_iova[i] + PAGE;
	}
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	struct host *h = *state;

	nvmk_emu_destroy(h->emu);
	for (int i = 0; i < NQ; i++)
		close(h->efd[i]);
	free(h->mem);
	free(h);
	return 0;
}

static void enable(struct host *h)
{
	nvmk_emu_reg_write32(h->emu, NVME_REG_AQA, NVME_AQA(QD - 1, QD - 1));
	nvmk_emu_reg_write64(h->emu, NVME_REG_ASQ, h->sq_iova[0]);
	nvmk_emu_reg_write64(h->emu, NVME_REG_ACQ, h->cq_iova[0]);
	nvmk_emu_reg_write32(h->emu, NVME_REG_CC,
			     NVME_CC_EN | NVME_CC_SET_IOSQES(6) | NVME_CC_SET_IOCQES(4));
	assert_true(wait_csts(h, NVME_CSTS_RDY | NVME_CSTS_CFS, NVME_CSTS_RDY));
}

static void test_registers(void **state)
{
	struct host *h = *state;
	uint64_t cap = nvmk_emu_reg_read64(h->emu, NVME_REG_CAP);

	assert_int_equal(NVME_CAP_MQES(cap), 1023);
	assert_int_equal(NVME_CAP_CQR(cap), 1);
	assert_int_equal(NVME_CAP_CSS(cap) & NVME_CAP_CSS_NVM, NVME_CAP_CSS_NVM);
	assert_int_equal(nvmk_emu_reg_read32(h->emu, NVME_REG_VS), NVME_VS(2, 0, 0));
	assert_int_equal(nvmk_emu_reg_read32(h->emu, NVME_REG_CSTS) & NVME_CSTS_RDY, 0);
	/* CAP is read-only; misaligned access reads 0. */
	nvmk_emu_reg_write32(h->emu, NVME_REG_CAP, 0);
	assert_int_equal(nvmk_emu_reg_read64(h->emu, NVME_REG_CAP), cap);
	assert_int_equal(nvmk_emu_reg_read32(h->emu, 2), 0);
	assert_int_equal(nvmk_emu_reg_read32(h->emu, (uint32_t)nvmk_emu_bar_size(h->emu)), 0);
}

static void test_bringup_io(void **state)
{
	struct host *h = *state;
	const uint64_t idbuf = MEM_BASE + 8 * PAGE, wbuf = MEM_BASE + 16 * PAGE,
		       rbuf = MEM_BASE + 32 * PAGE, list = MEM_BASE + 48 * PAGE;
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;
	uint64_t cnt = 0;

	enable(h);

	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_ADM_IDENTIFY;
	sqe.prp1 = idbuf;
	sqe.cdw10 = NVME_ID_CNS_CTRL;
	cqe = submit(h, 0, &sqe);
	assert_int_equal(NVME_CQE_SF(cqe.status), 0);
	struct nvme_id_ctrl *id = ptr(h, idbuf);
	assert_memory_equal(id->sn, "NVMKEMU0001", 11);
	assert_int_equal(id->nn, NVMK_EMU_MAX_NS);
	assert_int_equal(id->sqes, 0x66);
	assert_true(id->cntlid >= 1);

	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_ADM_IDENTIFY;
	sqe.nsid = 1;
	sqe.prp1 = idbuf;
	sqe.cdw10 = NVME_ID_CNS_NS;
	cqe = submit(h, 0, &sqe);
	assert_int_equal(NVME_CQE_SF(cqe.status), 0);
	assert_int_equal(((struct nvme_id_ns *)ptr(h, idbuf))->nsze, 2048);

	/* Unknown admin opcode. */
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = 0x7f;
	cqe = submit(h, 0, &sqe);
	assert_int_equal(NVME_SF_SC(NVME_CQE_SF(cqe.status)), NVME_SC_INVALID_OPCODE);

	/* One I/O queue pair on vector 1. */
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_ADM_CREATE_CQ;
	sqe.prp1 = h->cq_iova[1];
	sqe.cdw10 = NVME_CREATE_Q_CDW10(1, QD - 1);
	sqe.cdw11 = NVME_CQ_FLAGS_PC | NVME_CQ_FLAGS_IEN | (1u << 16);
	cqe = submit(h, 0, &sqe);
	assert_int_equal(NVME_CQE_SF(cqe.status), 0);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_ADM_CREATE_SQ;
	sqe.prp1 = h->sq_iova[1];
	sqe.cdw10 = NVME_CREATE_Q_CDW10(1, QD - 1);
	sqe.cdw11 = NVME_SQ_FLAGS_PC | (1u << 16);
	cqe = submit(h, 0, &sqe);
	assert_int_equal(NVME_CQE_SF(cqe.status), 0);
	/* Drain interrupts of the admin phase. */
	while (read(h->efd[1], &cnt, sizeof(cnt)) == sizeof(cnt))
		;

	/* Write 8 KiB (16 blocks) with PRP1 + PRP2 data pointer. */
	uint8_t *w = ptr(h, wbuf);
	for (unsigned i = 0; i < 8192; i++)
		w[i] = (uint8_t)(i * 7 + 3);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_CMD_WRITE;
	sqe.nsid = 1;
	sqe.prp1 = wbuf;
	sqe.prp2 = wbuf + PAGE;
	sqe.cdw10 = 100;
	sqe.cdw12 = 15;
	cqe = submit(h, 1, &sqe);
	assert_int_equal(NVME_CQE_SF(cqe.status), 0);
	assert_int_equal(cqe.sqid, 1);

	struct pollfd pfd = {.fd = h->efd[1], .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(read(h->efd[1], &cnt, sizeof(cnt)), sizeof(cnt));
	assert_true(cnt >= 1);

	/* Read back at a 512-byte offset: three pages, PRP2 is a PRP list. */
	uint64_t *l = ptr(h, list);
	l[0] = rbuf + PAGE;
	l[1] = rbuf + 2 * PAGE;
	memset(ptr(h, rbuf), 0xee, 3 * PAGE);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_CMD_READ;
	sqe.nsid = 1;
	sqe.prp1 = rbuf + 512;
	sqe.prp2 = list;
	sqe.cdw10 = 100;
	sqe.cdw12 = 15;
	cqe = submit(h, 1, &sqe);
	assert_int_equal(NVME_CQE_SF(cqe.status), 0);
	assert_memory_equal((uint8_t *)ptr(h, rbuf) + 512, w, 8192);

	/* Out of range LBA. */
	sqe.cdw10 = 2040;
	cqe = submit(h, 1, &sqe);
	assert_int_equal(NVME_SF_SC(NVME_CQE_SF(cqe.status)), NVME_SC_LBA_RANGE);

	assert_true(nvmk_emu_cmd_count(h->emu, false, NVME_CMD_WRITE) == 1);
	assert_true(nvmk_emu_cmd_count(h->emu, false, NVME_CMD_READ) == 2);
	assert_true(nvmk_emu_cmd_count(h->emu, true, NVME_ADM_IDENTIFY) == 2);

	/* Disable: RDY clears, the reset is counted. */
	nvmk_emu_reg_write32(h->emu, NVME_REG_CC, 0);
	assert_true(wait_csts(h, NVME_CSTS_RDY, 0));
	assert_int_equal(nvmk_emu_reset_count(h->emu), 1);
}

static void test_masked_vector_defers_irq(void **state)
{
	struct host *h = *state;
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;
	uint64_t cnt;

	enable(h);
	while (read(h->efd[0], &cnt, sizeof(cnt)) == sizeof(cnt))
		;
	assert_int_equal(nvmk_emu_irq_mask(h->emu, 0, true), 0);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_ADM_KEEP_ALIVE;
	cqe = submit(h, 0, &sqe);
	assert_int_equal(NVME_CQE_SF(cqe.status), 0);
	assert_int_equal(read(h->efd[0], &cnt, sizeof(cnt)), -1);
	assert_int_equal(nvmk_emu_irq_mask(h->emu, 0, false), 0);
	assert_int_equal(read(h->efd[0], &cnt, sizeof(cnt)), sizeof(cnt));
}

static void create_io_pair(struct host *h)
{
	struct nvme_sqe sqe;

	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_ADM_CREATE_CQ;
	sqe.prp1 = h->cq_iova[1];
	sqe.cdw10 = NVME_CREATE_Q_CDW10(1, QD - 1);
	sqe.cdw11 = NVME_CQ_FLAGS_PC | NVME_CQ_FLAGS_IEN | (1u << 16);
	assert_int_equal(submit(h, 0, &sqe).status >> 1, 0);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_ADM_CREATE_SQ;
	sqe.prp1 = h->sq_iova[1];
	sqe.cdw10 = NVME_CREATE_Q_CDW10(1, QD - 1);
	sqe.cdw11 = NVME_SQ_FLAGS_PC | (1u << 16);
	assert_int_equal(submit(h, 0, &sqe).status >> 1, 0);
}

static struct nvme_sqe rw(uint8_t opc, uint64_t buf, uint32_t slba)
{
	struct nvme_sqe sqe = {.opc = opc, .nsid = 1, .prp1 = buf, .cdw10 = slba, .cdw12 = 7};

	return sqe;
}

static void test_aer_and_ns_change(void **state)
{
	struct host *h = *state;
	const uint64_t buf = MEM_BASE + 8 * PAGE;
	struct nvmk_emu_ns_config ns = {
	    .nsid = 2, .nblocks = 64, .lba_shift = 12, .backing = NVMK_EMU_BACK_RAM};
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;

	enable(h);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_ADM_SET_FEATURES;
	sqe.cdw10 = NVME_FEAT_ASYNC_EVENT;
	sqe.cdw11 = NVME_AEC_NS_ATTR;
	assert_int_equal(submit(h, 0, &sqe).status >> 1, 0);
	/* AERL 3: four may be outstanding, the fifth is refused. */
	for (int i = 0; i < 4; i++) {
		memset(&sqe, 0, sizeof(sqe));
		sqe.opc = NVME_ADM_ASYNC_EVENT;
		post(h, 0, &sqe);
	}
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_ADM_ASYNC_EVENT;
	cqe = submit(h, 0, &sqe);
	assert_int_equal(sct(cqe), NVME_SCT_CMD_SPECIFIC);
	assert_int_equal(sc(cqe), NVME_SC_AER_LIMIT);

	assert_int_equal(nvmk_emu_ns_add(h->emu, &ns), 0);
	cqe = reap(h, 0, 0);
	assert_int_equal(cqe.status >> 1, 0);
	assert_int_equal(cqe.dw0, NVME_AER_DW0(NVME_AER_TYPE_NOTICE, NVME_AER_NOTICE_NS_CHANGED,
					       NVME_LOG_CHANGED_NS));
	/* Masked until the log is read: a resize only adds to the list. */
	assert_int_equal(nvmk_emu_ns_resize(h->emu, 2, 128), 0);
	cqe = reap(h, 0, 100);
	assert_int_equal(cqe.cid, 0);

	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_ADM_GET_LOG_PAGE;
	sqe.nsid = NVME_NSID_ALL;
	sqe.prp1 = buf;
	sqe.cdw10 = NVME_LOG_CDW10(NVME_LOG_CHANGED_NS, 1023, false);
	assert_int_equal(submit(h, 0, &sqe).status >> 1, 0);
	uint32_t *list = ptr(h, buf);
	assert_int_equal(list[0], 2);
	assert_int_equal(list[1], 0);
	/* Read again: cleared. */
	assert_int_equal(submit(h, 0, &sqe).status >> 1, 0);
	assert_int_equal(list[0], 0);

	/* Re-armed: removal raises the next notice. */
	assert_int_equal(nvmk_emu_ns_remove(h->emu, 2), 0);
	cqe = reap(h, 0, 0);
	assert_int_equal(NVME_AER_DW0_LID(cqe.dw0), NVME_LOG_CHANGED_NS);

	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_ADM_IDENTIFY;
	sqe.prp1 = buf;
	sqe.cdw10 = NVME_ID_CNS_NS_ACTIVE_LIST;
	assert_int_equal(submit(h, 0, &sqe).status >> 1, 0);
	assert_int_equal(list[0], 1);
	assert_int_equal(list[1], 0);
}

static void test_faults_abort_sq_delete(void **state)
{
	struct host *h = *state;
	const uint64_t buf = MEM_BASE + 8 * PAGE;
	struct nvmk_emu_fault f = {
	    .kind = NVMK_FAULT_HANG, .qid = 1, .opcode = NVME_CMD_READ, .count = 1};
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;
	uint16_t cid;
	int id;

	enable(h);
	create_io_pair(h);
	id = nvmk_emu_fault_add(h->emu, &f);
	assert_true(id >= 0);
	sqe = rw(NVME_CMD_READ, buf, 0);
	cid = post(h, 1, &sqe);
	/* Wait until it is fetched (and hung), so the abort finds it held. */
	for (uint64_t end = now_ms() + 5000;
	     nvmk_emu_fault_hits(h->emu, id) == 0 && now_ms() < end;)
		usleep(100);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_ADM_ABORT;
	sqe.cdw10 = NVME_ABORT_CDW10(1, cid);
	cqe = submit(h, 0, &sqe);
	assert_int_equal(cqe.status >> 1, 0);
	assert_int_equal(cqe.dw0 & NVME_ABORT_DW0_NOT_ABORTED, 0);
	cqe = reap(h, 1, 0);
	assert_int_equal(cqe.cid, cid);
	assert_int_equal(sc(cqe), NVME_SC_ABORT_REQ);
	assert_int_equal(nvmk_emu_fault_hits(h->emu, id), 1);
	/* Nothing to abort any more. */
	cqe = submit(h, 0, &sqe);
	assert_int_equal(cqe.dw0 & NVME_ABORT_DW0_NOT_ABORTED, 1);

	/* STATUS and DELAY. */
	nvmk_emu_fault_clear(h->emu);
	f = (struct nvmk_emu_fault){.kind = NVMK_FAULT_STATUS,
				    .qid = NVMK_FAULT_ANY_QID,
				    .opcode = NVME_CMD_WRITE,
				    .skip = 1,
				    .count = 1,
				    .status = NVME_SF(NVME_SCT_GENERIC, NVME_SC_INTERNAL)};
	id = nvmk_emu_fault_add(h->emu, &f);
	f = (struct nvmk_emu_fault){.kind = NVMK_FAULT_DELAY,
				    .qid = 1,
				    .opcode = NVMK_FAULT_ANY_OPC,
				    .count = 1,
				    .delay_us = 2000};
	int id2 = nvmk_emu_fault_add(h->emu, &f);
	sqe = rw(NVME_CMD_WRITE, buf, 0);
	assert_int_equal(submit(h, 1, &sqe).status >> 1, 0); /* skipped by rule 0, delayed */
	assert_int_equal(nvmk_emu_fault_hits(h->emu, id2), 1);
	sqe = rw(NVME_CMD_WRITE, buf, 0);
	assert_int_equal(sc(submit(h, 1, &sqe)), NVME_SC_INTERNAL);
	assert_int_equal(nvmk_emu_fault_hits(h->emu, id), 1);

	/* A hung command is aborted by deleting its SQ. */
	f = (struct nvmk_emu_fault){
	    .kind = NVMK_FAULT_HANG, .qid = 1, .opcode = NVMK_FAULT_ANY_OPC};
	nvmk_emu_fault_add(h->emu, &f);
	sqe = rw(NVME_CMD_READ, buf, 0);
	cid = post(h, 1, &sqe);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_ADM_DELETE_CQ;
	sqe.cdw10 = 1;
	cqe = submit(h, 0, &sqe);
	assert_int_equal(sc(cqe), NVME_SC_INVALID_QUEUE_DELETION);
	sqe.opc = NVME_ADM_DELETE_SQ;
	assert_int_equal(submit(h, 0, &sqe).status >> 1, 0);
	cqe = reap(h, 1, 0);
	assert_int_equal(cqe.cid, cid);
	assert_int_equal(sc(cqe), NVME_SC_ABORT_SQ_DELETED);
	sqe.opc = NVME_ADM_DELETE_CQ;
	assert_int_equal(submit(h, 0, &sqe).status >> 1, 0);
}

/* Linux's rule: ring MMIO if the EventIdx lies in [old, new). */
static bool need_event(uint16_t ev, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - ev - 1) < (uint16_t)(new_idx - old);
}

/* Submit on queue 1 through the shadow doorbell, ringing MMIO only when the
 * EventIdx asks for it; the CQ head goes to the shadow buffer the same way. */
static struct nvme_cqe shadow_submit(struct host *h, struct nvme_sqe *sqe, uint32_t *sh,
				     uint32_t *ev, unsigned *mmio)
{
	struct nvme_sqe *sq = ptr(h, h->sq_iova[1]);
	struct nvme_cqe *cq = ptr(h, h->cq_iova[1]), out = {0};
	uint16_t old = (uint16_t)h->sq_tail[1];
	uint64_t end = now_ms() + 5000;

	sqe->cid = ++h->cid[1];
	sq[old] = *sqe;
	h->sq_tail[1] = (old + 1) % QD;
	/* seq_cst: shadow store before the EventIdx load (store->load order) */
	__atomic_store_n(&sh[2], h->sq_tail[1], __ATOMIC_SEQ_CST);
	if (need_event((uint16_t)__atomic_load_n(&ev[2], __ATOMIC_SEQ_CST), (uint16_t)h->sq_tail[1],
		       old)) {
		nvmk_emu_reg_write32(h->emu, nvme_sq_doorbell(1, 0), h->sq_tail[1]);
		(*mmio)++;
	}
	while (now_ms() < end) {
		struct nvme_cqe *e = &cq[h->cq_head[1]];

		if ((__atomic_load_n(&e->status, __ATOMIC_ACQUIRE) & 1) == h->phase[1]) {
			uint16_t cold = (uint16_t)h->cq_head[1];

			out = *e;
			if (++h->cq_head[1] == QD) {
				h->cq_head[1] = 0;
				h->phase[1] ^= 1;
			}
			__atomic_store_n(&sh[3], h->cq_head[1], __ATOMIC_SEQ_CST);
			if (need_event((uint16_t)__atomic_load_n(&ev[3], __ATOMIC_SEQ_CST),
				       (uint16_t)h->cq_head[1], cold)) {
				nvmk_emu_reg_write32(h->emu, nvme_cq_doorbell(1, 0), h->cq_head[1]);
				(*mmio)++;
			}
			return out;
		}
		usleep(50);
	}
	fail_msg("no completion through shadow doorbells");
	return out;
}

static void test_shadow_doorbells(void **state)
{
	struct host *h = *state;
	const uint64_t shadow = MEM_BASE + 60 * PAGE, evidx = MEM_BASE + 61 * PAGE;
	const uint64_t wbuf = MEM_BASE + 8 * PAGE, rbuf = MEM_BASE + 9 * PAGE;
	uint32_t *sh = ptr(h, shadow), *ev = ptr(h, evidx);
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;
	unsigned mmio = 0;

	enable(h);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_ADM_DBBUF_CONFIG;
	sqe.prp1 = shadow;
	sqe.prp2 = evidx;
	assert_int_equal(submit(h, 0, &sqe).status >> 1, 0);
	create_io_pair(h);

	for (unsigned i = 0; i < 3 * QD; i++) {
		memset(ptr(h, wbuf), (int)i, PAGE);
		sqe = rw(NVME_CMD_WRITE, wbuf, i % 64);
		cqe = shadow_submit(h, &sqe, sh, ev, &mmio);
		assert_int_equal(cqe.status >> 1, 0);
		assert_int_equal(cqe.cid, h->cid[1]);
	}
	/* EventIdx spares the CQ head doorbell writes: fewer than one per command
	 * (and SQ tail writes too while the worker is awake and reads the shadow
	 * tails itself, so there may be none at all). */
	assert_true(mmio < 2 * 3 * QD);
	sqe = rw(NVME_CMD_READ, rbuf, (3 * QD - 1) % 64);
	assert_int_equal(shadow_submit(h, &sqe, sh, ev, &mmio).status >> 1, 0);
	assert_int_equal(((uint8_t *)ptr(h, rbuf))[100], (3 * QD - 1) & 0xff);
}

static struct nvme_cqe admin_simple(struct host *h, uint8_t opc, uint32_t nsid, uint64_t prp1,
				    uint32_t cdw10, uint32_t cdw11)
{
	struct nvme_sqe sqe = {
	    .opc = opc, .nsid = nsid, .prp1 = prp1, .cdw10 = cdw10, .cdw11 = cdw11};

	return submit(h, 0, &sqe);
}

static void test_features_logs(void **state)
{
	struct host *h = *state;
	const uint64_t buf = MEM_BASE + 8 * PAGE;
	struct nvme_cqe cqe;
	struct nvme_sqe sqe;

	enable(h);
	/* Number of Queues: FFFFh invalid; grant is capped; fixed after creation. */
	cqe = admin_simple(h, NVME_ADM_SET_FEATURES, 0, 0, NVME_FEAT_NUM_QUEUES,
			   NVME_FEAT_NUMQ(0xffff, 3));
	assert_int_equal(sc(cqe), NVME_SC_INVALID_FIELD);
	cqe = admin_simple(h, NVME_ADM_SET_FEATURES, 0, 0, NVME_FEAT_NUM_QUEUES,
			   NVME_FEAT_NUMQ(0, 999));
	assert_int_equal(cqe.status >> 1, 0);
	assert_int_equal(NVME_FEAT_NUMQ_NSQ(cqe.dw0), 0);
	assert_int_equal(NVME_FEAT_NUMQ_NCQ(cqe.dw0), 63);
	create_io_pair(h);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_ADM_CREATE_SQ;
	sqe.prp1 = MEM_BASE + 20 * PAGE;
	sqe.cdw10 = NVME_CREATE_Q_CDW10(2, QD - 1);
	sqe.cdw11 = NVME_SQ_FLAGS_PC | (1u << 16);
	cqe = submit(h, 0, &sqe);
	assert_int_equal(sct(cqe), NVME_SCT_CMD_SPECIFIC);
	assert_int_equal(sc(cqe), NVME_SC_QID_INVALID);
	cqe = admin_simple(h, NVME_ADM_SET_FEATURES, 0, 0, NVME_FEAT_NUM_QUEUES, 0);
	assert_int_equal(sc(cqe), NVME_SC_CMD_SEQ_ERROR);
	cqe = admin_simple(h, NVME_ADM_GET_FEATURES, 0, 0, NVME_FEAT_NUM_QUEUES, 0);
	assert_int_equal(cqe.dw0, NVME_FEAT_NUMQ(0, 63));
	/* Volatile write cache: current and default. */
	cqe = admin_simple(h, NVME_ADM_SET_FEATURES, 0, 0, NVME_FEAT_VOLATILE_WC, 0);
	assert_int_equal(cqe.status >> 1, 0);
	cqe = admin_simple(h, NVME_ADM_GET_FEATURES, 0, 0, NVME_FEAT_VOLATILE_WC, 0);
	assert_int_equal(cqe.dw0, 0);
	cqe = admin_simple(h, NVME_ADM_GET_FEATURES, 0, 0, NVME_FEAT_VOLATILE_WC | (1u << 8), 0);
	assert_int_equal(cqe.dw0, NVME_FEAT_VWC_WCE);

	/* Mandatory features: temperature threshold, power management. */
	cqe = admin_simple(h, NVME_ADM_SET_FEATURES, 0, 0, NVME_FEAT_TEMP_THRESH, 350);
	assert_int_equal(cqe.status >> 1, 0);
	cqe = admin_simple(h, NVME_ADM_GET_FEATURES, 0, 0, NVME_FEAT_TEMP_THRESH, 0);
	assert_int_equal(cqe.dw0 & 0xffff, 350);
	cqe = admin_simple(h, NVME_ADM_SET_FEATURES, 0, 0, NVME_FEAT_POWER_MGMT, 1);
	assert_int_equal(sc(cqe), NVME_SC_INVALID_FIELD);
	cqe = admin_simple(h, NVME_ADM_SET_FEATURES, 0, 0, NVME_FEAT_TIMESTAMP, 0);
	assert_int_equal(sc(cqe), NVME_SC_INVALID_FIELD);

	/* One successful write and one invalid-namespace failure. */
	sqe = rw(NVME_CMD_WRITE, buf, 0);
	assert_int_equal(submit(h, 1, &sqe).status >> 1, 0);
	sqe = rw(NVME_CMD_READ, buf, 0);
	sqe.nsid = 9;
	cqe = submit(h, 1, &sqe);
	assert_int_equal(sc(cqe), NVME_SC_INVALID_NS);

	cqe = admin_simple(h, NVME_ADM_GET_LOG_PAGE, NVME_NSID_ALL, buf,
			   NVME_LOG_CDW10(NVME_LOG_SMART, 127, false), 0);
	assert_int_equal(cqe.status >> 1, 0);
	struct nvme_smart_log *sl = ptr(h, buf);
	assert_int_equal(sl->host_writes[0], 1);
	assert_int_equal(sl->data_units_written[0], 1);
	assert_int_equal(sl->host_reads[0], 0);

	cqe = admin_simple(h, NVME_ADM_GET_LOG_PAGE, 0, buf,
			   NVME_LOG_CDW10(NVME_LOG_ERROR, 15, false), 0);
	assert_int_equal(cqe.status >> 1, 0);
	struct nvme_error_log *el = ptr(h, buf);
	assert_true(el->error_count >= 1);
	assert_int_equal(el->sqid, 1);
	assert_int_equal(NVME_SF_SC(NVME_CQE_SF(el->status)), NVME_SC_INVALID_NS);
	/* LPO beyond the page and an unknown log. */
	struct nvme_sqe lp = {.opc = NVME_ADM_GET_LOG_PAGE,
			      .prp1 = buf,
			      .cdw10 = NVME_LOG_CDW10(NVME_LOG_SMART, 0, false),
			      .cdw12 = 512};
	assert_int_equal(sc(submit(h, 0, &lp)), NVME_SC_INVALID_FIELD);
	cqe = admin_simple(h, NVME_ADM_GET_LOG_PAGE, 0, buf, NVME_LOG_CDW10(0x7e, 0, false), 0);
	assert_int_equal(sc(cqe), NVME_SC_INVALID_LOG_PAGE);
}

static void test_nvm_commands(void **state)
{
	struct host *h = *state;
	const uint64_t buf = MEM_BASE + 8 * PAGE, rbuf = MEM_BASE + 10 * PAGE;
	uint8_t *b = ptr(h, buf), *r = ptr(h, rbuf);
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;

	enable(h);
	create_io_pair(h);
	memset(b, 0x5a, PAGE);
	sqe = rw(NVME_CMD_WRITE, buf, 8);
	assert_int_equal(submit(h, 1, &sqe).status >> 1, 0);
	sqe = rw(NVME_CMD_COMPARE, buf, 8);
	assert_int_equal(submit(h, 1, &sqe).status >> 1, 0);
	b[4095] ^= 1;
	cqe = submit(h, 1, &sqe);
	assert_int_equal(sct(cqe), NVME_SCT_MEDIA);
	assert_int_equal(sc(cqe), NVME_SC_COMPARE_FAILED);

	/* Write Zeroes over blocks 8..11, then DSM deallocate 12..15. */
	sqe = (struct nvme_sqe){.opc = NVME_CMD_WRITE_ZEROES, .nsid = 1, .cdw10 = 8, .cdw12 = 3};
	assert_int_equal(submit(h, 1, &sqe).status >> 1, 0);
	struct nvme_dsm_range *rg = ptr(h, MEM_BASE + 12 * PAGE);
	rg[0] = (struct nvme_dsm_range){.nlb = 4, .slba = 12};
	sqe = (struct nvme_sqe){.opc = NVME_CMD_DSM,
				.nsid = 1,
				.prp1 = MEM_BASE + 12 * PAGE,
				.cdw10 = 0,
				.cdw11 = NVME_DSM_AD};
	assert_int_equal(submit(h, 1, &sqe).status >> 1, 0);
	memset(r, 0xff, PAGE);
	sqe = rw(NVME_CMD_READ, rbuf, 8);
	assert_int_equal(submit(h, 1, &sqe).status >> 1, 0);
	for (unsigned i = 0; i < PAGE; i++)
		assert_int_equal(r[i], 0);
	/* A range past the end is refused. */
	rg[1] = (struct nvme_dsm_range){.nlb = 4, .slba = 2046};
	sqe.opc = NVME_CMD_DSM;
	sqe.prp1 = MEM_BASE + 12 * PAGE;
	sqe.cdw10 = 1;
	sqe.cdw11 = NVME_DSM_AD;
	sqe.cdw12 = 0;
	assert_int_equal(sc(submit(h, 1, &sqe)), NVME_SC_LBA_RANGE);

	/* Flush of one and of every namespace; misaligned PRP1; too large a transfer. */
	sqe = (struct nvme_sqe){.opc = NVME_CMD_FLUSH, .nsid = 1};
	assert_int_equal(submit(h, 1, &sqe).status >> 1, 0);
	sqe.nsid = NVME_NSID_ALL;
	assert_int_equal(submit(h, 1, &sqe).status >> 1, 0);
	sqe = rw(NVME_CMD_READ, rbuf + 2, 0);
	assert_int_equal(sc(submit(h, 1, &sqe)), NVME_SC_PRP_INVALID_OFFSET);
	sqe = rw(NVME_CMD_READ, rbuf, 0);
	sqe.cdw12 = 511; /* 256 KiB > MDTS 128 KiB */
	assert_int_equal(sc(submit(h, 1, &sqe)), NVME_SC_INVALID_FIELD);
	sqe = rw(NVME_CMD_READ, 0x10, 0);
	assert_int_equal(sc(submit(h, 1, &sqe)), NVME_SC_DATA_XFER_ERROR);
	sqe = (struct nvme_sqe){.opc = 0x7e, .nsid = 1};
	assert_int_equal(sc(submit(h, 1, &sqe)), NVME_SC_INVALID_OPCODE);
}

static void test_reservation_between_controllers(void **state)
{
	struct host *h = *state;
	const uint64_t buf = MEM_BASE + 8 * PAGE;
	struct nvmk_emu_config cfg;
	struct nvmk_emu *other;
	uint64_t *d = ptr(h, buf);
	struct nvme_sqe sqe;

	enable(h);
	create_io_pair(h);
	/* Host identifier, register key 0xabc, acquire Write Exclusive. */
	d[0] = 0x1122334455667788ull;
	assert_int_equal(
	    admin_simple(h, NVME_ADM_SET_FEATURES, 0, buf, NVME_FEAT_HOST_ID, 0).status >> 1, 0);
	d[0] = 0;
	d[1] = 0xabc;
	sqe = (struct nvme_sqe){.opc = NVME_CMD_RESV_REGISTER,
				.nsid = 1,
				.prp1 = buf,
				.cdw10 = NVME_RESV_CDW10(NVME_RESV_REG_REGISTER, false, 0)};
	assert_int_equal(submit(h, 1, &sqe).status >> 1, 0);
	d[0] = 0xabc;
	d[1] = 0;
	sqe = (struct nvme_sqe){
	    .opc = NVME_CMD_RESV_ACQUIRE,
	    .nsid = 1,
	    .prp1 = buf,
	    .cdw10 = NVME_RESV_CDW10(NVME_RESV_ACQ_ACQUIRE, false, NVME_RESV_WRITE_EXCLUSIVE)};
	assert_int_equal(submit(h, 1, &sqe).status >> 1, 0);
	sqe = rw(NVME_CMD_WRITE, buf, 0);
	assert_int_equal(submit(h, 1, &sqe).status >> 1, 0);

	/* A second controller of the subsystem shares the namespace. */
	nvmk_emu_config_default(&cfg);
	cfg.name = "smoke-b";
	cfg.nr_ns = 0;
	cfg.subsystem_of = h->emu;
	cfg.dma = host_dma;
	cfg.dma_ctx = h;
	assert_int_equal(nvmk_emu_create(&cfg, &other), 0);
	struct nvmk_emu *mine = h->emu;
	h->emu = other;
	memset(h->sq_tail, 0, sizeof(h->sq_tail));
	memset(h->cq_head, 0, sizeof(h->cq_head));
	h->phase[0] = h->phase[1] = 1;
	memset(ptr(h, MEM_BASE), 0, 4 * PAGE);
	enable(h);
	create_io_pair(h);
	assert_int_equal(
	    admin_simple(h, NVME_ADM_IDENTIFY, 0, buf, NVME_ID_CNS_CTRL, 0).status >> 1, 0);
	assert_int_equal(((struct nvme_id_ctrl *)ptr(h, buf))->cntlid, 2);
	d[0] = 0x99;
	assert_int_equal(
	    admin_simple(h, NVME_ADM_SET_FEATURES, 0, buf, NVME_FEAT_HOST_ID, 0).status >> 1, 0);
	sqe = rw(NVME_CMD_WRITE, buf, 0);
	assert_int_equal(sc(submit(h, 1, &sqe)), NVME_SC_RESERVATION_CONFLICT);
	sqe = rw(NVME_CMD_READ, buf + PAGE, 0);
	assert_int_equal(submit(h, 1, &sqe).status >> 1, 0);
	nvmk_emu_destroy(other);
	h->emu = mine;
}

static void test_cc_errors_shutdown_removal(void **state)
{
	struct host *h = *state;

	/* CC.MPS above MPSMAX: controller fatal status. */
	nvmk_emu_reg_write32(h->emu, NVME_REG_AQA, NVME_AQA(QD - 1, QD - 1));
	nvmk_emu_reg_write64(h->emu, NVME_REG_ASQ, h->sq_iova[0]);
	nvmk_emu_reg_write64(h->emu, NVME_REG_ACQ, h->cq_iova[0]);
	nvmk_emu_reg_write32(h->emu, NVME_REG_CC, NVME_CC_EN | NVME_CC_SET_MPS(9));
	assert_true(wait_csts(h, NVME_CSTS_CFS, NVME_CSTS_CFS));
	nvmk_emu_reg_write32(h->emu, NVME_REG_CC, 0);
	assert_true(wait_csts(h, NVME_CSTS_CFS | NVME_CSTS_RDY, 0));
	enable(h);
	nvmk_emu_reg_write32(h->emu, NVME_REG_CC,
			     NVME_CC_EN | NVME_CC_SET_IOSQES(6) | NVME_CC_SET_IOCQES(4) |
				 NVME_CC_SET_SHN(NVME_CC_SHN_NORMAL));
	assert_true(wait_csts(h, NVME_CSTS_SHST_MASK, NVME_CSTS_SET_SHST(NVME_SHST_COMPLETE)));
	nvmk_emu_surprise_remove(h->emu);
	assert_int_equal(nvmk_emu_reg_read32(h->emu, NVME_REG_CSTS), 0xffffffffu);
	assert_int_equal(nvmk_emu_reg_read64(h->emu, NVME_REG_CAP), ~0ull);
}

struct io_thread {
	struct host *h;
	unsigned q;
	int errors;
	pthread_t t;
};

static void *io_thread_fn(void *arg)
{
	struct io_thread *t = arg;
	struct host *h = t->h;
	const uint64_t wbuf = MEM_BASE + (300u + 4u * t->q) * PAGE, rbuf = wbuf + 2 * PAGE;
	uint8_t *w = ptr(h, wbuf), *r = ptr(h, rbuf);

	for (unsigned i = 0; i < 100; i++) {
		uint32_t lba = t->q * 128 + (i % 16) * 8;
		struct nvme_sqe sqe = rw(NVME_CMD_WRITE, wbuf, lba);
		struct nvme_cqe cqe;

		memset(w, (int)(t->q * 31 + i), PAGE);
		post(h, t->q, &sqe);
		cqe = reap(h, t->q, 5000);
		if (cqe.cid != sqe.cid || (cqe.status >> 1))
			t->errors++;
		sqe = rw(NVME_CMD_READ, rbuf, lba);
		post(h, t->q, &sqe);
		cqe = reap(h, t->q, 5000);
		if (cqe.cid != sqe.cid || (cqe.status >> 1) || memcmp(w, r, PAGE))
			t->errors++;
	}
	return NULL;
}

struct reg_thread {
	struct nvmk_emu *emu;
	atomic_bool stop;
	unsigned bad;
	pthread_t t;
};

static void *reg_thread_fn(void *arg)
{
	struct reg_thread *t = arg;
	uint64_t cap = nvmk_emu_reg_read64(t->emu, NVME_REG_CAP);

	while (!atomic_load(&t->stop)) {
		if (nvmk_emu_reg_read64(t->emu, NVME_REG_CAP) != cap)
			t->bad++;
		if (!(nvmk_emu_reg_read32(t->emu, NVME_REG_CSTS) & NVME_CSTS_RDY))
			t->bad++;
		nvmk_emu_reg_write32(t->emu, NVME_REG_INTMS, 0); /* harmless write */
		(void)nvmk_emu_cmd_count(t->emu, false, NVME_CMD_WRITE);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct host *h = *state;
	struct io_thread io[NQ - 1];
	struct reg_thread rt = {.emu = h->emu};
	struct nvmk_emu_ns_config ns = {
	    .nsid = 3, .nblocks = 16, .lba_shift = 9, .backing = NVMK_EMU_BACK_RAM};
	struct nvme_sqe sqe;

	enable(h);
	for (unsigned q = 1; q < NQ; q++) {
		sqe = (struct nvme_sqe){.opc = NVME_ADM_CREATE_CQ,
					.prp1 = h->cq_iova[q],
					.cdw10 = NVME_CREATE_Q_CDW10(q, QD - 1),
					.cdw11 = NVME_CQ_FLAGS_PC | NVME_CQ_FLAGS_IEN | (q << 16)};
		assert_int_equal(submit(h, 0, &sqe).status >> 1, 0);
		sqe = (struct nvme_sqe){.opc = NVME_ADM_CREATE_SQ,
					.prp1 = h->sq_iova[q],
					.cdw10 = NVME_CREATE_Q_CDW10(q, QD - 1),
					.cdw11 = NVME_SQ_FLAGS_PC | (q << 16)};
		assert_int_equal(submit(h, 0, &sqe).status >> 1, 0);
	}
	assert_int_equal(pthread_create(&rt.t, NULL, reg_thread_fn, &rt), 0);
	for (unsigned q = 1; q < NQ; q++) {
		io[q - 1] = (struct io_thread){.h = h, .q = q};
		assert_int_equal(pthread_create(&io[q - 1].t, NULL, io_thread_fn, &io[q - 1]), 0);
	}
	/* Namespace churn from this thread while the I/O runs. */
	for (unsigned i = 0; i < 20; i++) {
		assert_int_equal(nvmk_emu_ns_add(h->emu, &ns), 0);
		assert_int_equal(nvmk_emu_ns_resize(h->emu, 3, 32), 0);
		assert_int_equal(nvmk_emu_ns_remove(h->emu, 3), 0);
	}
	for (unsigned q = 1; q < NQ; q++) {
		pthread_join(io[q - 1].t, NULL);
		assert_int_equal(io[q - 1].errors, 0);
	}
	atomic_store(&rt.stop, true);
	pthread_join(rt.t, NULL);
	assert_int_equal(rt.bad, 0);
	assert_int_equal(nvmk_emu_cmd_count(h->emu, false, NVME_CMD_WRITE), 4 * 100);
}

static void test_invalid_doorbell_event(void **state)
{
	struct host *h = *state;
	struct nvme_sqe sqe = {.opc = NVME_ADM_ASYNC_EVENT};
	struct nvme_cqe cqe;

	enable(h);
	create_io_pair(h);
	post(h, 0, &sqe);
	nvmk_emu_reg_write32(h->emu, nvme_sq_doorbell(1, 0), QD + 5);
	cqe = reap(h, 0, 0);
	assert_int_equal(cqe.status >> 1, 0);
	assert_int_equal(NVME_AER_DW0_TYPE(cqe.dw0), NVME_AER_TYPE_ERROR);
	assert_int_equal(NVME_AER_DW0_INFO(cqe.dw0), 1);
	assert_int_equal(NVME_AER_DW0_LID(cqe.dw0), NVME_LOG_ERROR);
	/* The queue still works with a valid value. */
	nvmk_emu_reg_write32(h->emu, nvme_sq_doorbell(1, 0), 0);
	sqe = rw(NVME_CMD_READ, MEM_BASE + 8 * PAGE, 0);
	assert_int_equal(submit(h, 1, &sqe).status >> 1, 0);
}

static void resv_cmd(struct host *h, uint8_t opc, uint32_t cdw10, uint64_t k0, uint64_t k1,
		     uint16_t want_sc)
{
	const uint64_t buf = MEM_BASE + 70 * PAGE + (h->sq_iova[0] == MEM_BASE ? 0 : PAGE);
	uint64_t *d = ptr(h, buf);
	struct nvme_sqe sqe = {.opc = opc, .nsid = 1, .prp1 = buf, .cdw10 = cdw10};

	d[0] = k0;
	d[1] = k1;
	assert_int_equal(sc(submit(h, 1, &sqe)), want_sc);
}

static void set_hostid(struct host *h, uint64_t id)
{
	const uint64_t buf = MEM_BASE + 72 * PAGE + (h->sq_iova[0] == MEM_BASE ? 0 : PAGE);

	*(uint64_t *)ptr(h, buf) = id;
	assert_int_equal(
	    admin_simple(h, NVME_ADM_SET_FEATURES, 0, buf, NVME_FEAT_HOST_ID, 0).status >> 1, 0);
}

static void test_preempt_and_abort(void **state)
{
	struct host *a = *state, b;
	struct nvmk_emu_config cfg;
	struct nvmk_emu_fault f = {
	    .kind = NVMK_FAULT_HANG, .qid = 1, .opcode = NVME_CMD_READ, .count = 1};
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;
	uint16_t cid;

	enable(a);
	create_io_pair(a);
	nvmk_emu_config_default(&cfg);
	cfg.name = "smoke-b";
	cfg.nr_ns = 0;
	cfg.subsystem_of = a->emu;
	cfg.dma = host_dma;
	cfg.dma_ctx = a;
	b = *a;
	assert_int_equal(nvmk_emu_create(&cfg, &b.emu), 0);
	for (int i = 0; i < NQ; i++) {
		b.sq_iova[i] = MEM_BASE + (400u + 2u * i) * PAGE;
		b.cq_iova[i] = b.sq_iova[i] + PAGE;
		b.sq_tail[i] = b.cq_head[i] = 0;
		b.phase[i] = 1;
		b.cid[i] = 0;
	}
	enable(&b);
	create_io_pair(&b);

	set_hostid(a, 0xa);
	set_hostid(&b, 0xb);
	resv_cmd(a, NVME_CMD_RESV_REGISTER, NVME_RESV_CDW10(NVME_RESV_REG_REGISTER, false, 0), 0,
		 0xaa, 0);
	resv_cmd(&b, NVME_CMD_RESV_REGISTER, NVME_RESV_CDW10(NVME_RESV_REG_REGISTER, false, 0), 0,
		 0xbb, 0);
	resv_cmd(&b, NVME_CMD_RESV_ACQUIRE,
		 NVME_RESV_CDW10(NVME_RESV_ACQ_ACQUIRE, false, NVME_RESV_WRITE_EXCLUSIVE), 0xbb, 0,
		 0);
	/* B has a read hanging on namespace 1. */
	assert_true(nvmk_emu_fault_add(b.emu, &f) >= 0);
	sqe = rw(NVME_CMD_READ, MEM_BASE + 74 * PAGE, 0);
	cid = post(&b, 1, &sqe);
	for (uint64_t end = now_ms() + 5000;
	     nvmk_emu_cmd_count(b.emu, false, NVME_CMD_READ) == 0 && now_ms() < end;)
		usleep(100);
	/* A preempts B with abort: B's held read completes as aborted. */
	resv_cmd(a, NVME_CMD_RESV_ACQUIRE,
		 NVME_RESV_CDW10(NVME_RESV_ACQ_PREEMPT_ABORT, false, NVME_RESV_WRITE_EXCLUSIVE),
		 0xaa, 0xbb, 0);
	cqe = reap(&b, 1, 0);
	assert_int_equal(cqe.cid, cid);
	assert_int_equal(sc(cqe), NVME_SC_ABORT_PREEMPT);
	/* B is no longer registered: its writes conflict. */
	sqe = rw(NVME_CMD_WRITE, MEM_BASE + 74 * PAGE, 0);
	assert_int_equal(sc(submit(&b, 1, &sqe)), NVME_SC_RESERVATION_CONFLICT);
	nvmk_emu_destroy(b.emu);
}

static void test_bad_config(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_emu *e = NULL;

	(void)state;
	nvmk_emu_config_default(&cfg);
	cfg.dma = host_dma;
	cfg.msix_vectors = 0;
	assert_int_equal(nvmk_emu_create(&cfg, &e), -EINVAL);
	nvmk_emu_config_default(&cfg);
	cfg.dma = host_dma;
	cfg.nr_ns = 2;
	cfg.ns[1] = cfg.ns[0];
	assert_int_equal(nvmk_emu_create(&cfg, &e), -EINVAL);
	nvmk_emu_config_default(&cfg);
	cfg.dma = host_dma;
	cfg.ns[0].lba_shift = 10;
	assert_int_equal(nvmk_emu_create(&cfg, &e), -EINVAL);
	assert_null(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_registers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bringup_io, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_masked_vector_defers_irq, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_aer_and_ns_change, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_faults_abort_sq_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shadow_doorbells, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_features_logs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nvm_commands, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reservation_between_controllers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cc_errors_shutdown_removal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_invalid_doorbell_event, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_preempt_and_abort, setup, teardown),
	    cmocka_unit_test(test_bad_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
