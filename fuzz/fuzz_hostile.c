// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the driver against a hostile device (tests/support/
 * hostile.h). The input decides what the device does -- CAP, CSTS, BAR0
 * size, Identify fields, Number of Queues and Abort answers, and a script
 * forging completion entries and mutating admin data -- while a fixed
 * workload runs: bring-up, a namespace, a queue pair, writes and reads in
 * flight, a clean verification once the device stops lying, close with
 * whatever is still outstanding, release of the handle and buffers.
 *
 * Invariants (a violation aborts, which libFuzzer reports as a crash):
 *  - no crash or sanitizer report;
 *  - every request completes exactly once, and not after close returned;
 *  - every error is one driver.h lists for that call;
 *  - no wait outlives its bound, and the workload ends within its bound;
 *  - data is correct whenever a read succeeded and the device told no lie
 *    since the request was submitted (a device that forges a success for
 *    another command is believed: nothing can tell), and always in the
 *    clean phase;
 *  - no register access outside the BAR0 the device declares.
 *
 * Input layout: a 19-byte header (zero-padded when shorter; decode() says
 * what each byte means), then the completion script and, when header byte
 * 17 bit 0 is set, a data script in its last quarter.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hostile.h"
#include "nvmekeep/driver.h"
#include "nvmekeep/log.h"

#define HDR	 19
#define NREQ	 8
#define BLK	 512u
#define ADMIN_MS 150u
#define IO_MS	 100u
#define READY_MS 1500u /* CAP.TO is at most 2 here: 1.5 s */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(void *ctx, enum nvmk_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	if (getenv("NVMK_FUZZ_VERBOSE"))
		fprintf(stderr, "%s\n", line);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_hostile: invariant broken: " __VA_ARGS__);           \
			fprintf(stderr, " (%s:%d)\n", __FILE__, __LINE__);                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct req {
	int calls;
	int err;
	bool sent; /* submit returned 0: exactly one completion is owed */
};

static int g_closed;

/* Completion errors of the driver.h table and the driver's own. */
static bool cpl_err_listed(int e)
{
	switch (e) {
	case 0:
	case -EOPNOTSUPP:
	case -EINVAL:
	case -ECANCELED:
	case -ETIMEDOUT:
	case -ENODEV:
	case -EACCES:
	case -EBUSY:
	case -EROFS:
	case -EAGAIN:
	case -ERANGE:
	case -ENOSPC:
	case -EBADE:
	case -E2BIG:
	case -EILSEQ:
	case -EIO:
		return true;
	default:
		return false;
	}
}

/* Errors driver.h lists for the submit functions. */
static bool submit_err_listed(int e)
{
	return e == 0 || e == -EAGAIN || e == -ENODEV || e == -EIO || e == -EINVAL || e == -E2BIG;
}

static void req_done(void *arg, const struct nvmk_cpl *cpl)
{
	struct req *r = arg;

	CHECK(!g_closed, "callback after close");
	CHECK(r->calls == 0, "request completed twice");
	CHECK(cpl_err_listed(cpl->err), "completion error %d not in driver.h", cpl->err);
	r->calls++;
	r->err = cpl->err;
}

static void fill(uint8_t *p, unsigned lba, uint8_t salt)
{
	for (unsigned i = 0; i < BLK; i++)
		p[i] = (uint8_t)(lba * 31u + i * 7u + salt);
}

static bool lied_since(struct hostile *h, uint64_t forged_then, uint64_t mutated_then)
{
	return atomic_load(&h->forged) != forged_then || atomic_load(&h->mutated) != mutated_then;
}

/* Wait for every request in @r (bounded); checks each wait's own bound. */
static void wait_all(struct nvmk_qpair *qp, struct req *r, unsigned n, uint64_t bound)
{
	uint64_t end = now_ms() + bound;

	for (;;) {
		unsigned left = 0;

		for (unsigned i = 0; i < n; i++)
			left += r[i].sent && r[i].calls == 0;
		if (!left)
			return;
		uint64_t t0 = now_ms();
		int rc = nvmk_qpair_wait(qp, 10);
		uint64_t took = now_ms() - t0;

		/* one wait: its 10 ms, plus recovery it may run itself (an Abort,
		 * a reset of a few admin commands, two CSTS.RDY waits) */
		CHECK(took <= 10 + 6 * ADMIN_MS + 2 * READY_MS + 1000, "a wait took %llu ms",
		      (unsigned long long)took);
		CHECK(rc >= 0 || rc == -ETIMEDOUT || rc == -EIO || rc == -ENODEV || rc == -EAGAIN,
		      "nvmk_qpair_wait returned %d", rc);
		if (now_ms() > end) {
			/* nothing is lost: close completes the rest (-ECANCELED) */
			return;
		}
	}
}

static void decode(const uint8_t *d, size_t size, struct hostile_cfg *hc, uint8_t *flags2)
{
	uint8_t h[HDR] = {0};
	uint64_t mask = 0, val = 0;

	memcpy(h, d, size < HDR ? size : HDR);
	if (h[0] & 0x01) { /* MQES 0..7 */
		mask |= 0xffffull;
		val |= h[1] % 8u;
	}
	if (h[0] & 0x02) { /* DSTRD */
		mask |= 0xfull << 32;
		val |= (uint64_t)(h[2] % 16u) << 32;
	}
	if (h[0] & 0x04) { /* TO: at most 1 s */
		mask |= 0xffull << 24;
		val |= (uint64_t)(h[3] % 3u) << 24;
	}
	if (h[0] & 0x08) { /* CSS */
		mask |= 0xffull << 37;
		val |= (uint64_t)h[4] << 37;
	}
	if (h[0] & 0x10) { /* MPSMIN */
		mask |= 0xfull << 48;
		val |= (uint64_t)(h[5] % 2u) << 48;
	}
	hc->cap_mask = mask;
	hc->cap_val = val;
	if (h[0] & 0x20)
		hc->bar0_size = 0x1000u + (size_t)h[6] * 8u;
	if (h[0] & 0x40) {
		hc->set_rtd3e = true;
		memcpy(&hc->rtd3e, &h[7], 4);
	}
	if (h[0] & 0x80) {
		hc->set_aerl = true;
		hc->aerl = h[11] % 16u;
	}
	if (h[12] & 0x01) {
		hc->set_numq = true;
		memcpy(&hc->numq_dw0, &h[13], 4);
	}
	if (h[12] & 0x02) {
		hc->set_abort = true;
		hc->abort_dw0 = h[17] & 1u;
	}
	hc->forge_every = h[18] % 16u + 1u;
	hc->forge_after = (unsigned)(h[18] >> 4) * 4u + (h[17] >> 1);
	*flags2 = h[12];
	if (size > HDR) {
		/* the first part forges completions, the rest mutates admin data
		 * (its share set by header byte 17) */
		size_t n = size - HDR, cut = n - n * (h[17] & 1u ? 1u : 0u) / 4u;

		hc->script = d + HDR;
		hc->script_len = cut;
		hc->data_script = d + HDR + cut;
		hc->data_script_len = n - cut;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvmk_emu_config ecfg;
	struct hostile_cfg hc = {0};
	struct nvmk_ctrl_opts o = {0};
	struct nvmk_qpair_opts qo = {0};
	struct req wr[NREQ] = {{0}}, rd[NREQ] = {{0}};
	struct nvmk_dma_buf wbuf = {0}, rbuf = {0};
	struct nvmk_ctrl *ctrl = NULL;
	struct nvmk_qpair *qp = NULL;
	struct nvmk_ns *ns = NULL;
	struct hostile *h;
	uint64_t start = now_ms(), forged0, mutated0;
	uint8_t flags2 = 0;
	int rc;

	nvmk_log_set_sink(quiet, NULL);
	nvmk_log_set_level(getenv("NVMK_FUZZ_VERBOSE") ? NVMK_LOG_DEBUG : NVMK_LOG_ERR);
	g_closed = 0;
	decode(data, size, &hc, &flags2);
	nvmk_emu_config_default(&ecfg);
	ecfg.name = "fuzz";
	ecfg.ns[0].nblocks = 4096;
	ecfg.max_io_queues = 4;
	ecfg.msix_vectors = 5;
	if (hostile_create(&ecfg, &hc, &h))
		return 0;
	o.admin_timeout_ms = ADMIN_MS;
	o.io_timeout_ms = IO_MS;
	o.shutdown_timeout_ms = 100;
	o.health_check_ms = 5;
	o.max_io_queues = 2;
	o.admin_queue_depth = (uint16_t)(2u + (flags2 >> 6) * 4u);
	o.io_queue_depth = 16;
	o.dbbuf = (flags2 & 0x20) ? NVMK_DBBUF_OFF : NVMK_DBBUF_AUTO;
	rc = nvmk_ctrl_open(&h->b, &o, &ctrl);
	CHECK(rc == 0 || rc == -EINVAL || rc == -ETIMEDOUT || rc == -EIO || rc == -ENODEV ||
		  rc == -ENOMEM || rc == -EBUSY || rc == -ENOSPC || rc == -EOPNOTSUPP ||
		  rc == -ERANGE || rc == -EACCES || rc == -EAGAIN || rc == -EROFS || rc == -EBADE ||
		  rc == -E2BIG || rc == -EILSEQ || rc == -ECANCELED,
	      "nvmk_ctrl_open returned %d", rc);
	if (rc)
		goto out;
	qo.mode = (flags2 & 0x04) ? NVMK_CPL_INTERRUPT : NVMK_CPL_POLL;
	qo.flags = (flags2 & 0x08) ? NVMK_QPAIR_SHARED : 0;
	if (nvmk_ns_open(ctrl, 1, 0, &ns) || nvmk_qpair_create(ctrl, &qo, &qp) ||
	    nvmk_ctrl_dma_alloc(ctrl, NREQ * BLK, &wbuf) ||
	    nvmk_ctrl_dma_alloc(ctrl, NREQ * BLK, &rbuf))
		goto close;
	if (flags2 & 0x10) /* the device fails while I/O runs */
		__atomic_store_n(&h->cfg.csts_set, NVME_CSTS_CFS, __ATOMIC_RELAXED);

	/* hostile phase: writes, then reads of the same blocks, all in flight */
	forged0 = atomic_load(&h->forged);
	mutated0 = atomic_load(&h->mutated);
	for (unsigned i = 0; i < NREQ; i++) {
		fill((uint8_t *)wbuf.mem.vaddr + i * BLK, i, 0x5a);
		rc = nvmk_ns_submit_write(ns, qp, &wbuf, i * BLK, i, 1, 0, req_done, &wr[i]);
		CHECK(submit_err_listed(rc), "submit write returned %d", rc);
		wr[i].sent = rc == 0;
	}
	wait_all(qp, wr, NREQ, 3 * IO_MS + 8 * ADMIN_MS + 2 * READY_MS);
	bool writes_ok = !lied_since(h, forged0, mutated0);
	for (unsigned i = 0; i < NREQ; i++)
		writes_ok = writes_ok && wr[i].calls == 1 && wr[i].err == 0;
	for (unsigned i = 0; i < NREQ; i++) {
		rc = nvmk_ns_submit_read(ns, qp, &rbuf, i * BLK, i, 1, 0, req_done, &rd[i]);
		CHECK(submit_err_listed(rc), "submit read returned %d", rc);
		rd[i].sent = rc == 0;
	}
	wait_all(qp, rd, NREQ, 3 * IO_MS + 8 * ADMIN_MS + 2 * READY_MS);
	if (writes_ok && !lied_since(h, forged0, mutated0))
		for (unsigned i = 0; i < NREQ; i++)
			if (rd[i].sent && rd[i].calls == 1 && rd[i].err == 0)
				CHECK(!memcmp((uint8_t *)wbuf.mem.vaddr + i * BLK,
					      (uint8_t *)rbuf.mem.vaddr + i * BLK, BLK),
				      "read %u succeeded with wrong data", i);

	/* clean phase: the device stops lying; if the controller is still
	 * usable, what it says it wrote must read back */
	pthread_mutex_lock(&h->lock);
	h->cfg.script_len = h->pos;
	pthread_mutex_unlock(&h->lock);
	if (!nvmk_ctrl_failed(ctrl) && !(flags2 & 0x10)) {
		uint8_t w[BLK], r[BLK];
		uint64_t f0 = atomic_load(&h->forged);

		fill(w, 100, 0xa5);
		memset(r, 0, sizeof(r));
		int wrc = nvmk_ns_write(ns, qp, w, 100, 1);
		int rrc = nvmk_ns_read(ns, qp, r, 100, 1);

		CHECK(cpl_err_listed(wrc) && cpl_err_listed(rrc), "sync errors %d %d", wrc, rrc);
		if (wrc == 0 && rrc == 0 && atomic_load(&h->forged) == f0)
			CHECK(!memcmp(w, r, BLK), "clean read-back differs");
	}
close:
	nvmk_ctrl_close(ctrl);
	g_closed = 1;
	for (unsigned i = 0; i < NREQ; i++) {
		CHECK(wr[i].calls == (wr[i].sent ? 1 : 0), "write %u completed %d times by close",
		      i, wr[i].calls);
		CHECK(rd[i].calls == (rd[i].sent ? 1 : 0), "read %u completed %d times by close", i,
		      rd[i].calls);
	}
	/* released after close */
	nvmk_ns_close(ns);
	nvmk_ctrl_dma_free(NULL, &wbuf);
	nvmk_ctrl_dma_free(NULL, &rbuf);
out:
	CHECK(atomic_load(&h->oob_accesses) == 0, "register access at 0x%x outside BAR0",
	      atomic_load(&h->oob_last_off));
	hostile_destroy(h);
	CHECK(now_ms() - start < 60000, "one input took %llu ms",
	      (unsigned long long)(now_ms() - start));
	return 0;
}
