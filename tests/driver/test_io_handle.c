// SPDX-License-Identifier: MIT
/*
 * I/O handles (nvmekeep/driver/io_handle.h): data written and read back through
 * the straight path and the general one (PRP list, split, FUA), every bad
 * request refused as the general API refuses it, a removed namespace and a
 * controller reset noticed, and forged completions of handle commands
 * refused (CID generation, neighbour CID, SQ id, SQ head) through the
 * hostile device (tests/support/hostile.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "driver/queue.h" /* the SQ, to look at what a submit wrote */
#include "drv_test.h"
#include "hostile.h"
#include "nvmekeep/kernel_ns.h"

struct done {
	int calls;
	int err;
	uint16_t status;
};

static void on_done(void *arg, const struct nvmk_cpl *cpl)
{
	struct done *d = arg;

	d->calls++;
	d->err = cpl->err;
	d->status = cpl->status;
}

/* Poll until @d completed (bounded: 5 s). */
static int wait_done(struct nvmk_qpair *qp, struct done *d)
{
	for (int i = 0; i < 500000 && d->calls == 0; i++) {
		int n = nvmk_qpair_process_completions(qp, 0);

		if (n < 0)
			return n;
		if (n == 0)
			usleep(10);
	}
	return d->calls ? 0 : -ETIMEDOUT;
}

struct fixture {
	struct tenv t;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct nvmk_dma_buf buf;
	struct nvmk_io_handle *h;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o;
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL, .depth = 64};

	tlog_reset();
	tcfg_default(&cfg, "emu-ioh");
	cfg.mdts = 3; /* 32 KiB per command: a 64 KiB read is split */
	topts_default(&o);
	o.io_timeout_ms = 5000;
	if (!f || tenv_open(&f->t, &cfg, &o) || nvmk_ns_open(f->t.ctrl, 1, 0, &f->ns) ||
	    nvmk_qpair_create(f->t.ctrl, &qo, &f->qp) ||
	    nvmk_ctrl_dma_alloc(f->t.ctrl, 128u << 10, &f->buf) ||
	    nvmk_io_handle_create(f->qp, f->ns, &f->buf, 0, &f->h))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nvmk_io_handle_destroy(f->h);
	nvmk_ctrl_dma_free(f->t.ctrl, &f->buf);
	nvmk_qpair_destroy(f->qp);
	nvmk_ns_close(f->ns);
	tenv_close(&f->t);
	free(f);
	return 0;
}

static void fill(struct fixture *f, size_t off, size_t len, unsigned seed)
{
	unsigned char *p = (unsigned char *)f->buf.mem.vaddr + off;

	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(seed + i * 7u);
}

static void check(struct fixture *f, size_t off, size_t len, unsigned seed)
{
	const unsigned char *p = (const unsigned char *)f->buf.mem.vaddr + off;

	for (size_t i = 0; i < len; i++)
		if (p[i] != (unsigned char)(seed + i * 7u))
			fail_msg("byte %zu of [%zu, +%zu) differs", i, off, len);
}

static void rw(struct fixture *f, bool write, size_t off, uint64_t slba, uint32_t nlb)
{
	struct done d = {0};

	if (write)
		assert_int_equal(nvmk_io_write(f->h, off, slba, nlb, on_done, &d), 0);
	else
		assert_int_equal(nvmk_io_read(f->h, off, slba, nlb, on_done, &d), 0);
	assert_int_equal(wait_done(f->qp, &d), 0);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.err, 0);
}

/* One and two pages (straight path), a PRP list and a split (general path),
 * unaligned-to-the-page data (512 B blocks): all read back intact. */
static void test_write_read_back(void **state)
{
	struct fixture *f = *state;
	static const struct {
		size_t off;
		uint32_t nlb;
	} c[] = {{0, 8}, {4096 - 512, 2}, {512, 8}, {8192, 32}, {0, 128}, {1024, 1}};

	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t len = (size_t)c[i].nlb * 512u;
		uint64_t slba = 1000u * i;

		fill(f, c[i].off, len, i + 1);
		rw(f, true, c[i].off, slba, c[i].nlb);
		memset((char *)f->buf.mem.vaddr + c[i].off, 0, len);
		rw(f, false, c[i].off, slba, c[i].nlb);
		check(f, c[i].off, len, i + 1);
	}
	/* the same data through the general API */
	fill(f, 0, 4096, 77);
	rw(f, true, 0, 5000, 8);
	memset(f->buf.mem.vaddr, 0, 4096);
	assert_int_equal(nvmk_ns_read(f->ns, f->qp, f->buf.mem.vaddr, 5000, 8), 0);
	check(f, 0, 4096, 77);
}

/* What the general API refuses, the handle refuses with the same error, and
 * nothing reaches the device. */
static void test_bad_requests(void **state)
{
	struct fixture *f = *state;
	uint64_t reads = nvmk_emu_cmd_count(f->t.emu, false, NVME_CMD_READ);
	size_t size = f->buf.mem.size;
	struct done d = {0};
	struct nvmk_io_handle *h2;

	assert_int_equal(nvmk_io_read(f->h, 0, 0, 0, on_done, &d), -EINVAL);	/* no blocks */
	assert_int_equal(nvmk_io_read(f->h, size, 0, 1, on_done, &d), -EINVAL); /* outside */
	assert_int_equal(nvmk_io_read(f->h, size - 512, 0, 2, on_done, &d), -EINVAL); /* past end */
	assert_int_equal(nvmk_io_read(f->h, SIZE_MAX - 100, 0, 1, on_done, &d), -EINVAL);
	assert_int_equal(nvmk_io_read(f->h, 2, 0, 1, on_done, &d), -EINVAL); /* not dword aligned */
	assert_int_equal(nvmk_io_read(f->h, 0, 0, 257, on_done, &d), -EINVAL); /* > buffer */
	assert_int_equal(d.calls, 0);
	assert_int_equal(nvmk_emu_cmd_count(f->t.emu, false, NVME_CMD_READ), reads);

	assert_int_equal(nvmk_io_handle_create(NULL, f->ns, &f->buf, 0, &h2), -EINVAL);
	assert_null(h2);
	assert_int_equal(nvmk_io_handle_create(f->qp, NULL, &f->buf, 0, &h2), -EINVAL);
	assert_int_equal(nvmk_io_handle_create(f->qp, f->ns, NULL, 0, &h2), -EINVAL);
	assert_int_equal(nvmk_io_handle_create(f->qp, f->ns, &f->buf, 0x80, &h2), -EINVAL);
	assert_int_equal(nvmk_io_handle_create(f->qp, f->ns, &f->buf, 0, NULL), -EINVAL);
	nvmk_io_handle_destroy(NULL);
}

/* The SQE a submit just wrote (the slot before the tail). */
static const struct nvme_sqe *last_sqe(struct nvmk_qpair *qp)
{
	const struct drv_queue *q = &qp->q;

	return &q->sq[(q->sq_tail + q->depth - 1u) % q->depth];
}

/* FUA set on a handle reaches the device in CDW12 of its writes only; a
 * handle without it sets no FUA. */
static void test_fua(void **state)
{
	struct fixture *f = *state;
	struct nvmk_io_handle *h2;
	struct done d = {0};

	assert_int_equal(nvmk_io_handle_create(f->qp, f->ns, &f->buf, NVMK_IO_FUA, &h2), 0);
	assert_int_equal(nvmk_io_write(h2, 0, 10, 8, on_done, &d), 0);
	assert_true(last_sqe(f->qp)->cdw12 & NVME_RW_FUA);
	assert_int_equal(last_sqe(f->qp)->cdw12 & 0xffffu, 7);
	assert_int_equal(wait_done(f->qp, &d), 0);
	d.calls = 0;
	assert_int_equal(nvmk_io_read(h2, 0, 10, 8, on_done, &d), 0);
	assert_false(last_sqe(f->qp)->cdw12 & NVME_RW_FUA);
	assert_int_equal(wait_done(f->qp, &d), 0);
	d.calls = 0;
	assert_int_equal(nvmk_io_write(f->h, 0, 10, 8, on_done, &d), 0);
	assert_false(last_sqe(f->qp)->cdw12 & NVME_RW_FUA);
	assert_int_equal(last_sqe(f->qp)->opc, NVME_CMD_WRITE);
	assert_int_equal(wait_done(f->qp, &d), 0);
	assert_int_equal(d.err, 0);
	nvmk_io_handle_destroy(h2);
}

/* A removed namespace: -ENODEV without touching the device. */
static void test_removed_ns(void **state)
{
	struct fixture *f = *state;
	struct done d = {0};

	assert_int_equal(tns_remove_wait(f->t.emu, f->ns, 1), 0);
	uint64_t reads = nvmk_emu_cmd_count(f->t.emu, false, NVME_CMD_READ);
	assert_int_equal(nvmk_io_read(f->h, 0, 0, 1, on_done, &d), -ENODEV);
	assert_int_equal(nvmk_io_write(f->h, 0, 0, 1, on_done, &d), -ENODEV);
	assert_int_equal(nvmk_emu_cmd_count(f->t.emu, false, NVME_CMD_READ), reads);
	assert_int_equal(d.calls, 0);
}

/* After a controller reset the handle's next I/O re-creates the qpair's
 * queues (general path) and works; the one after takes the straight path. */
static void test_reset(void **state)
{
	struct fixture *f = *state;

	fill(f, 0, 4096, 3);
	rw(f, true, 0, 42, 8);
	assert_int_equal(nvmk_ctrl_reset(f->t.ctrl), 0);
	memset(f->buf.mem.vaddr, 0, 4096);
	rw(f, false, 0, 42, 8);
	check(f, 0, 4096, 3);
	memset(f->buf.mem.vaddr, 0, 4096);
	rw(f, false, 0, 42, 8);
	check(f, 0, 4096, 3);
}

/* ---- arrays: nvmk_io_read_batch / nvmk_io_write_batch ---- */

/* Poll until @d has @want calls (bounded: 5 s). */
static int wait_calls(struct nvmk_qpair *qp, struct done *d, int want)
{
	for (int i = 0; i < 500000 && d->calls < want; i++) {
		int n = nvmk_qpair_process_completions(qp, 0);

		if (n < 0)
			return n;
		if (n == 0)
			usleep(10);
	}
	return d->calls == want ? 0 : -ETIMEDOUT;
}

/* Every tracker of @qp free and unarmed (its key no CQE matches). */
static void assert_all_trackers_free(struct nvmk_qpair *qp)
{
	const struct drv_queue *q = &qp->q;

	assert_int_equal(nvmk_qpair_outstanding(qp), 0u);
	for (uint32_t i = 0; i < q->ntrk; i++)
		if (q->trk[i].state != TRK_FREE)
			fail_msg("tracker %u left in state %u", i, q->trk[i].state);
}

static struct nvmk_io_hreq hreq(size_t off, uint64_t slba, uint32_t nlb, struct done *d)
{
	return (struct nvmk_io_hreq){
	    .off = off, .slba = slba, .nlb = nlb, .cb = on_done, .cb_arg = d};
}

/* A handle on a kernel namespace and qpair (io_uring on a regular file):
 * every request takes the general path, data intact. */
static void test_kernel_ns(void **state)
{
	char dir[] = "/tmp/nvmk-ioh-XXXXXX", path[64];
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL, .depth = 16};
	struct nvmk_dma_buf wb = {0}, rb = {0};
	struct nvmk_io_handle *hw, *hr;
	struct nvmk_qpair *qp;
	struct nvmk_ns *ns;
	struct done d = {0};
	int fd, rc;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	fd = open(path, O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	rc = nvmk_kns_open(path, 0, &ns);
	if (rc == -ENOSYS || rc == -EPERM || rc == -EOPNOTSUPP) {
		fprintf(stderr, "test_io_handle: no io_uring here (%d): skipping\n", rc);
		unlink(path);
		rmdir(dir);
		skip();
		return;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(nvmk_kns_qpair_create(ns, &qo, &qp), 0);
	assert_int_equal(nvmk_dma_alloc_ephemeral(8192, 0, &wb.mem), 0);
	assert_int_equal(nvmk_dma_alloc_ephemeral(8192, 0, &rb.mem), 0);
	assert_int_equal(nvmk_io_handle_create(qp, ns, &wb, 0, &hw), 0);
	assert_int_equal(nvmk_io_handle_create(qp, ns, &rb, 0, &hr), 0);
	for (unsigned i = 0; i < 8192; i++)
		((unsigned char *)wb.mem.vaddr)[i] = (unsigned char)(i * 13u + 5u);
	assert_int_equal(nvmk_io_write(hw, 0, 64, 16, on_done, &d), 0);
	assert_int_equal(wait_done(qp, &d), 0);
	assert_int_equal(d.err, 0);
	d.calls = 0;
	assert_int_equal(nvmk_io_read(hr, 0, 64, 16, on_done, &d), 0);
	assert_int_equal(wait_done(qp, &d), 0);
	assert_int_equal(d.err, 0);
	assert_memory_equal(wb.mem.vaddr, rb.mem.vaddr, 8192);
	/* past the buffer: refused as by the general API */
	assert_int_equal(nvmk_io_read(hr, 4096, 0, 16, on_done, &d), -EINVAL);
	/* the array calls on the kernel path (their general path): two 4 KiB
	 * halves each, data compared; a bad request refuses the array */
	{
		struct nvmk_io_hreq hq[2] = {{0, 200, 8, on_done, &d}, {4096, 208, 8, on_done, &d}};
		struct nvmk_io_req nq[2] = {{&wb, 0, 300, 8, 0, on_done, &d},
					    {&wb, 4096, 308, 8, 0, on_done, &d}};

		d.calls = 0;
		assert_int_equal(nvmk_io_write_batch(hw, hq, 2), 2);
		assert_int_equal(nvmk_ns_submit_write_batch(ns, qp, nq, 2), 2);
		assert_int_equal(wait_calls(qp, &d, 4), 0);
		assert_int_equal(d.err, 0);
		memset(rb.mem.vaddr, 0, 8192);
		assert_int_equal(nvmk_io_read_batch(hr, hq, 2), 2);
		assert_int_equal(wait_calls(qp, &d, 6), 0);
		assert_memory_equal(wb.mem.vaddr, rb.mem.vaddr, 8192);
		memset(rb.mem.vaddr, 0, 8192);
		nq[0].buf = nq[1].buf = &rb;
		assert_int_equal(nvmk_ns_submit_read_batch(ns, qp, nq, 2), 2);
		assert_int_equal(wait_calls(qp, &d, 8), 0);
		assert_int_equal(d.err, 0);
		assert_memory_equal(wb.mem.vaddr, rb.mem.vaddr, 8192);
		nq[1].off = 8192;
		assert_int_equal(nvmk_ns_submit_read_batch(ns, qp, nq, 2), -EINVAL);
		hq[1].nlb = 0;
		assert_int_equal(nvmk_io_read_batch(hr, hq, 2), -EINVAL);
		assert_int_equal(nvmk_qpair_outstanding(qp), 0u);
	}
	nvmk_io_handle_destroy(hw);
	nvmk_io_handle_destroy(hr);
	nvmk_dma_free(&wb.mem);
	nvmk_dma_free(&rb.mem);
	nvmk_qpair_destroy(qp);
	nvmk_ns_close(ns);
	unlink(path);
	rmdir(dir);
}

/* A forged completion of a handle command is refused: the poll fails with
 * -EIO, the controller is failed, no success is reported. */
static void forged(uint8_t op)
{
	static uint8_t script[2];
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o;
	struct hostile_cfg hc = {0};
	struct hostile *hs;
	struct nvmk_ctrl *ctrl;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL};
	struct nvmk_dma_buf buf;
	struct nvmk_io_handle *h;
	struct done d = {0};
	int rc = 0;

	tlog_reset();
	tcfg_default(&cfg, "emu-ioh-hostile");
	topts_default(&o);
	o.dbbuf = NVMK_DBBUF_OFF;
	assert_int_equal(hostile_create(&cfg, &hc, &hs), 0);
	assert_int_equal(nvmk_ctrl_open(&hs->b, &o, &ctrl), 0);
	assert_int_equal(nvmk_ns_open(ctrl, 1, 0, &ns), 0);
	assert_int_equal(nvmk_qpair_create(ctrl, &qo, &qp), 0);
	assert_int_equal(nvmk_ctrl_dma_alloc(ctrl, 8192, &buf), 0);
	assert_int_equal(nvmk_io_handle_create(qp, ns, &buf, 0, &h), 0);
	/* one good read first, then forge the next completion */
	assert_int_equal(nvmk_io_read(h, 0, 0, 8, on_done, &d), 0);
	assert_int_equal(wait_done(qp, &d), 0);
	assert_int_equal(d.err, 0);
	script[0] = op;
	script[1] = 0;
	pthread_mutex_lock(&hs->lock);
	hs->cfg.script = script;
	hs->cfg.script_len = sizeof(script);
	hs->pos = 0;
	hs->cfg.forge_after = hs->ncqe;
	pthread_mutex_unlock(&hs->lock);
	d = (struct done){0};
	assert_int_equal(nvmk_io_read(h, 0, 8, 8, on_done, &d), 0);
	for (int i = 0; i < 500000 && rc == 0; i++) {
		rc = nvmk_qpair_process_completions(qp, 0);
		if (rc == 0)
			usleep(10);
	}
	/* refused: -EIO from the poll (recovery may then fail the command
	 * itself, never with success) */
	assert_true(rc < 0);
	assert_true(d.calls == 0 || d.err != 0);
	assert_true(tlog_has("invalid completion") || tlog_has("CQE"));
	nvmk_io_handle_destroy(h);
	nvmk_ctrl_dma_free(ctrl, &buf);
	nvmk_qpair_destroy(qp);
	nvmk_ns_close(ns);
	nvmk_ctrl_close(ctrl);
	hostile_destroy(hs);
}

static void test_forged_generation(void **state)
{
	(void)state;
	forged(1);
}

static void test_forged_neighbour_cid(void **state)
{
	(void)state;
	forged(2);
}

static void test_forged_sqid(void **state)
{
	(void)state;
	forged(3);
}

static void test_forged_sqhd(void **state)
{
	(void)state;
	forged(4);
}

/* 16 writes then 16 reads in one call each, data compared; FUA of the
 * handle in every write of the array; split and PRP-list requests in the
 * middle of an array (the general path) are queued with the rest. */
static void test_array_write_read(void **state)
{
	struct fixture *f = *state;
	struct nvmk_io_handle *hf;
	struct nvmk_io_hreq r[16];
	struct done d = {0};

	assert_int_equal(nvmk_io_handle_create(f->qp, f->ns, &f->buf, NVMK_IO_FUA, &hf), 0);
	fill(f, 0, 65536, 11);
	for (unsigned i = 0; i < 16; i++)
		r[i] = hreq(i * 4096u, 1000u + i * 8u, 8, &d);
	assert_int_equal(nvmk_io_write_batch(hf, r, 16), 16);
	for (unsigned i = 1; i <= 16; i++) {
		const struct drv_queue *q = &f->qp->q;
		const struct nvme_sqe *e = &q->sq[(q->sq_tail + q->depth - i) % q->depth];

		assert_int_equal(e->opc, NVME_CMD_WRITE);
		assert_true(e->cdw12 & NVME_RW_FUA);
		assert_int_equal(e->cdw12 & 0xffffu, 7);
	}
	assert_int_equal(wait_calls(f->qp, &d, 16), 0);
	assert_int_equal(d.err, 0);
	memset(f->buf.mem.vaddr, 0, 65536);
	assert_int_equal(nvmk_io_read_batch(f->h, r, 16), 16);
	assert_false(last_sqe(f->qp)->cdw12 & NVME_RW_FUA);
	assert_int_equal(wait_calls(f->qp, &d, 32), 0);
	assert_int_equal(d.err, 0);
	check(f, 0, 65536, 11);
	/* general requests in the middle: 64 KiB (split at 32 KiB), 12 KiB
	 * from an offset inside a page (PRP list) */
	memset(f->buf.mem.vaddr, 0, 131072);
	r[0] = hreq(0, 1000, 8, &d);
	r[1] = hreq(65536, 1000, 128, &d);
	r[2] = hreq(4096, 1008, 8, &d);
	r[3] = hreq(8192 + 512, 1016, 24, &d);
	assert_int_equal(nvmk_io_read_batch(f->h, r, 4), 4);
	assert_int_equal(wait_calls(f->qp, &d, 36), 0);
	assert_int_equal(d.err, 0);
	check(f, 0, 8192, 11);
	check(f, 65536, 65536, 11);
	{
		/* 12 KiB from LBA 1016 = bytes 8192.. of what was written */
		const unsigned char *p = (const unsigned char *)f->buf.mem.vaddr + 8192 + 512;

		for (size_t i = 0; i < 12288; i++)
			if (p[i] != (unsigned char)(11u + (8192 + i) * 7u))
				fail_msg("byte %zu of the PRP-list read differs", i);
	}
	nvmk_io_handle_destroy(hf);
}

/* Bad requests anywhere: nothing queued, the request named; n = 0 and NULL
 * refused; the fixed array then fits whole. */
static void test_array_bad(void **state)
{
	struct fixture *f = *state;
	struct nvmk_io_hreq r[8];
	struct done d = {0};
	struct {
		unsigned idx;
		size_t off;
		uint32_t nlb;
		bool no_cb;
		const char *why;
	} bad[] = {
	    {3, 128u << 10, 8, false, "request 3 of 8 refused: range outside the buffer"},
	    {4, (128u << 10) - 2048u, 8, false, "request 4 of 8 refused: range outside the buffer"},
	    {5, 0, 0, false, "request 5 of 8 refused: nlb 0"},
	    {6, 2, 8, false, "request 6 of 8 refused: data not dword aligned"},
	    {7, 0, 8, true, "request 7 of 8 refused: no callback"},
	};

	for (unsigned i = 0; i < 8; i++)
		r[i] = hreq(i * 4096u, i * 8u, 8, &d);
	assert_int_equal(nvmk_io_read_batch(f->h, r, 0), -EINVAL);
	assert_int_equal(nvmk_io_read_batch(f->h, NULL, 8), -EINVAL);
	assert_int_equal(nvmk_io_read_batch(NULL, r, 8), -EINVAL);
	for (unsigned b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
		struct nvmk_io_hreq keep = r[bad[b].idx];

		r[bad[b].idx].off = bad[b].off;
		r[bad[b].idx].nlb = bad[b].nlb;
		if (bad[b].no_cb)
			r[bad[b].idx].cb = NULL;
		tlog_reset();
		assert_int_equal(nvmk_io_read_batch(f->h, r, 8), -EINVAL);
		assert_int_equal(nvmk_qpair_outstanding(f->qp), 0u);
		if (!tlog_has(bad[b].why))
			fail_msg("log has no \"%s\"", bad[b].why);
		/* the trackers the straight loop armed before the bad request
		 * are free again: no CQE would be accepted for them */
		assert_all_trackers_free(f->qp);
		r[bad[b].idx] = keep;
	}
	/* the namespace's array call: the same, after five good requests */
	{
		struct nvmk_io_req nr[8];

		for (unsigned i = 0; i < 8; i++)
			nr[i] = (struct nvmk_io_req){.buf = &f->buf,
						     .off = i * 4096u,
						     .slba = i * 8u,
						     .nlb = 8,
						     .cb = on_done,
						     .cb_arg = &d};
		nr[5].off = 2;
		assert_int_equal(nvmk_ns_submit_read_batch(f->ns, f->qp, nr, 8), -EINVAL);
		assert_int_equal(nvmk_qpair_outstanding(f->qp), 0u);
		assert_all_trackers_free(f->qp);
	}
	assert_int_equal(d.calls, 0);
	assert_int_equal(nvmk_io_read_batch(f->h, r, 8), 8);
	assert_int_equal(wait_calls(f->qp, &d, 8), 0);
	assert_int_equal(d.err, 0);
}

/* A queue of 64 (63 commands): 70 requests queue 63, then -EAGAIN, then
 * the rest after the completions; a removed namespace: -ENODEV. */
static void test_array_full_and_removed(void **state)
{
	struct fixture *f = *state;
	struct nvmk_io_hreq r[70];
	struct done d = {0};

	for (unsigned i = 0; i < 70; i++)
		r[i] = hreq((i % 32u) * 4096u, i * 8u, 8, &d);
	assert_int_equal(nvmk_io_read_batch(f->h, r, 70), 63);
	assert_int_equal(nvmk_qpair_outstanding(f->qp), 63u);
	assert_int_equal(nvmk_io_read_batch(f->h, r + 63, 7), -EAGAIN);
	assert_int_equal(wait_calls(f->qp, &d, 63), 0);
	assert_int_equal(nvmk_io_read_batch(f->h, r + 63, 7), 7);
	assert_int_equal(wait_calls(f->qp, &d, 70), 0);
	assert_int_equal(d.err, 0);
	assert_int_equal(tns_remove_wait(f->t.emu, f->ns, 1), 0);
	assert_int_equal(nvmk_io_read_batch(f->h, r, 8), -ENODEV);
	assert_int_equal(nvmk_qpair_outstanding(f->qp), 0u);
	assert_int_equal(d.calls, 70);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_write_read_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fua, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_removed_ns, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_array_write_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_array_bad, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_array_full_and_removed, setup, teardown),
	    cmocka_unit_test(test_kernel_ns),
	    cmocka_unit_test(test_forged_generation),
	    cmocka_unit_test(test_forged_neighbour_cid),
	    cmocka_unit_test(test_forged_sqid),
	    cmocka_unit_test(test_forged_sqhd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
