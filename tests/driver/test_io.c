// SPDX-License-Identifier: MIT
/* Data path against the emulator: every NVM command, both LBA formats, MDTS
 * splitting (counted by the emulator), iovec I/O and the bounce path. */
#include <errno.h>
#include <sys/uio.h>

#include "drv_test.h"

struct fixture {
	struct tenv t;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	unsigned bs;
};

static void fill(void *p, size_t len, unsigned seed)
{
	unsigned char *c = p;

	for (size_t i = 0; i < len; i++)
		c[i] = (unsigned char)(seed * 131u + i * 7u + (i >> 9));
}

static int setup_fmt(void **state, uint8_t lba_shift, enum nvmk_cpl_mode mode)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o;
	struct nvmk_qpair_opts qo = {.mode = mode};

	tlog_reset();
	tcfg_default(&cfg, lba_shift == 12 ? "emu-4k" : "emu-512");
	cfg.mdts = 3; /* 32 KiB: small, to see splitting */
	cfg.ns[0].lba_shift = lba_shift;
	cfg.ns[0].nblocks = (64u << 20) >> lba_shift;
	topts_default(&o);
	o.cpl_mode = mode;
	if (lba_shift == 9 && mode == NVMK_CPL_INTERRUPT)
		o.dbbuf = NVMK_DBBUF_AUTO;
	if (tenv_open(&f->t, &cfg, &o))
		return -1;
	if (nvmk_ns_open(f->t.ctrl, 1, 0, &f->ns))
		return -1;
	if (nvmk_qpair_create(f->t.ctrl, &qo, &f->qp))
		return -1;
	f->bs = 1u << lba_shift;
	*state = f;
	return 0;
}

static int setup_512(void **state)
{
	return setup_fmt(state, 9, NVMK_CPL_INTERRUPT);
}
static int setup_4k(void **state)
{
	return setup_fmt(state, 12, NVMK_CPL_INTERRUPT);
}
static int setup_512_poll(void **state)
{
	return setup_fmt(state, 9, NVMK_CPL_POLL);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nvmk_qpair_destroy(f->qp);
	nvmk_ns_close(f->ns);
	tenv_close(&f->t);
	free(f);
	return 0;
}

static void test_info(void **state)
{
	struct fixture *f = *state;
	struct nvmk_ns_info info;

	nvmk_ns_info(f->ns, &info);
	assert_int_equal(info.nsid, 1);
	assert_int_equal(info.block_size, f->bs);
	assert_int_equal(info.capacity, 64u << 20);
	assert_int_equal(info.max_xfer_blocks, (32u * 1024) / f->bs);
	assert_false(info.removed);
	/* one owner unless shared */
	struct nvmk_ns *other;
	assert_int_equal(nvmk_ns_open(f->t.ctrl, 1, 0, &other), -EBUSY);
	assert_int_equal(nvmk_ns_open(f->t.ctrl, 1, NVMK_NS_SHARED, &other), -EBUSY);
	assert_int_equal(nvmk_ns_open(f->t.ctrl, 2, 0, &other), -ENODEV);
}

static void test_rw_sync(void **state)
{
	struct fixture *f = *state;
	size_t len = 16 * f->bs;
	char *wr = malloc(len), *rd = malloc(len);

	fill(wr, len, 1);
	assert_int_equal(nvmk_ns_write(f->ns, f->qp, wr, 10, 16), 0);
	memset(rd, 0, len);
	assert_int_equal(nvmk_ns_read(f->ns, f->qp, rd, 10, 16), 0);
	assert_memory_equal(wr, rd, len);
	assert_int_equal(nvmk_last_status(), 0);
	/* different data at a different LBA does not disturb the first */
	fill(wr, f->bs, 2);
	assert_int_equal(nvmk_ns_write(f->ns, f->qp, wr, 9, 1), 0);
	assert_int_equal(nvmk_ns_read(f->ns, f->qp, rd, 9, 1), 0);
	assert_memory_equal(wr, rd, f->bs);
	/* out of range: device error, mapped and kept */
	struct nvmk_ns_info info;
	nvmk_ns_info(f->ns, &info);
	assert_int_equal(nvmk_ns_read(f->ns, f->qp, rd, info.nblocks, 1), -ERANGE);
	assert_int_equal(NVME_SF_SC(nvmk_last_status()), NVME_SC_LBA_RANGE);
	assert_int_equal(NVME_SF_SCT(nvmk_last_status()), NVME_SCT_GENERIC);
	free(wr);
	free(rd);
}

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

static void wait_cb(struct fixture *f, struct acb *a)
{
	for (int i = 0; i < 10000 && !a->calls; i++)
		nvmk_qpair_wait(f->qp, 100);
	assert_int_equal(a->calls, 1);
}

static void test_mdts_split_async(void **state)
{
	struct fixture *f = *state;
	struct nvmk_dma_buf buf;
	size_t len = 256 * 1024 + 3 * f->bs; /* 8 full commands + a part */
	uint32_t nlb = (uint32_t)(len / f->bs);
	struct acb a = {0};

	assert_int_equal(nvmk_ctrl_dma_alloc(f->t.ctrl, len, &buf), 0);
	fill(buf.mem.vaddr, len, 3);
	uint64_t w0 = nvmk_emu_cmd_count(f->t.emu, false, NVME_CMD_WRITE);
	assert_int_equal(
	    nvmk_ns_submit_write(f->ns, f->qp, &buf, 0, 1000, nlb, NVMK_IO_FUA, acb_fn, &a), 0);
	wait_cb(f, &a);
	assert_int_equal(a.cpl.err, 0);
	/* ceil(len / 32 KiB) commands reached the device */
	assert_int_equal(nvmk_emu_cmd_count(f->t.emu, false, NVME_CMD_WRITE) - w0, 9);
	assert_int_equal(nvmk_qpair_outstanding(f->qp), 0);

	memset(buf.mem.vaddr, 0, len);
	a.calls = 0;
	uint64_t r0 = nvmk_emu_cmd_count(f->t.emu, false, NVME_CMD_READ);
	assert_int_equal(nvmk_ns_submit_read(f->ns, f->qp, &buf, 0, 1000, nlb, 0, acb_fn, &a), 0);
	wait_cb(f, &a);
	assert_int_equal(a.cpl.err, 0);
	assert_int_equal(nvmk_emu_cmd_count(f->t.emu, false, NVME_CMD_READ) - r0, 9);
	char *ref = malloc(len);
	fill(ref, len, 3);
	assert_memory_equal(ref, buf.mem.vaddr, len);

	/* unaligned offset inside the buffer: PRP1 with an offset, lists */
	a.calls = 0;
	assert_int_equal(nvmk_ns_submit_read(f->ns, f->qp, &buf, f->bs == 512 ? 512 : 0, 1000, 64,
					     0, acb_fn, &a),
			 0);
	wait_cb(f, &a);
	assert_int_equal(a.cpl.err, 0);
	/* a split request whose second part fails completes once, with the error */
	struct nvmk_ns_info info;
	nvmk_ns_info(f->ns, &info);
	a.calls = 0;
	uint32_t per = info.max_xfer_blocks;
	assert_int_equal(
	    nvmk_ns_submit_read(f->ns, f->qp, &buf, 0, info.nblocks - per, 2 * per, 0, acb_fn, &a),
	    0);
	wait_cb(f, &a);
	for (int i = 0; i < 5; i++)
		nvmk_qpair_process_completions(f->qp, 0);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.cpl.err, -ERANGE);
	assert_int_equal(nvmk_qpair_outstanding(f->qp), 0);
	/* a buffer too small for the request is refused before anything is sent */
	assert_int_equal(
	    nvmk_ns_submit_read(f->ns, f->qp, &buf, buf.mem.size - f->bs, 0, 2, 0, acb_fn, &a),
	    -EINVAL);
	free(ref);
	nvmk_ctrl_dma_free(f->t.ctrl, &buf);
}

static void test_flush_wz_dealloc_compare(void **state)
{
	struct fixture *f = *state;
	size_t len = 8 * f->bs;
	char *wr = malloc(len), *rd = malloc(len), *zero = calloc(1, len);

	fill(wr, len, 4);
	assert_int_equal(nvmk_ns_write(f->ns, NULL, wr, 200, 8), 0);
	assert_int_equal(nvmk_ns_flush(f->ns, NULL), 0);
	assert_int_equal(nvmk_ns_compare(f->ns, NULL, wr, 200, 8), 0);
	wr[5] ^= 1;
	assert_int_equal(nvmk_ns_compare(f->ns, NULL, wr, 200, 8), -EILSEQ);
	assert_int_equal(nvmk_last_status() & 0x7ff,
			 NVME_SF(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILED));
	wr[5] ^= 1;

	/* write zeroes over the middle */
	assert_int_equal(nvmk_ns_write_zeroes(f->ns, NULL, 202, 2, 0), 0);
	assert_int_equal(nvmk_ns_read(f->ns, NULL, rd, 200, 8), 0);
	assert_memory_equal(rd, wr, 2 * f->bs);
	assert_memory_equal(rd + 2 * f->bs, zero, 2 * f->bs);
	assert_memory_equal(rd + 4 * f->bs, wr + 4 * f->bs, 4 * f->bs);

	/* large write zeroes: split on the 16-bit NLB field */
	uint64_t wz0 = nvmk_emu_cmd_count(f->t.emu, false, NVME_CMD_WRITE_ZEROES);
	struct nvmk_ns_info info;
	nvmk_ns_info(f->ns, &info);
	if (info.nblocks > 70000) {
		assert_int_equal(nvmk_ns_write_zeroes(f->ns, NULL, 0, 70000, NVMK_IO_DEAC), 0);
		assert_int_equal(nvmk_emu_cmd_count(f->t.emu, false, NVME_CMD_WRITE_ZEROES) - wz0,
				 2);
	}

	/* deallocate two ranges (reads back zeroes: DLFEAT) */
	assert_int_equal(nvmk_ns_write(f->ns, NULL, wr, 300, 8), 0);
	struct nvmk_range r[2] = {{300, 1}, {305, 2}};
	assert_int_equal(nvmk_ns_deallocate(f->ns, NULL, r, 2), 0);
	assert_int_equal(nvmk_ns_read(f->ns, NULL, rd, 300, 8), 0);
	assert_memory_equal(rd, zero, f->bs);
	assert_memory_equal(rd + f->bs, wr + f->bs, 4 * f->bs);
	assert_memory_equal(rd + 5 * f->bs, zero, 2 * f->bs);
	assert_memory_equal(rd + 7 * f->bs, wr + 7 * f->bs, f->bs);
	assert_int_equal(nvmk_ns_deallocate(f->ns, NULL, r, 0), -EINVAL);
	assert_int_equal(nvmk_ns_deallocate(f->ns, NULL, r, 257), -EINVAL);
	free(wr);
	free(rd);
	free(zero);
}

static void test_iovec(void **state)
{
	struct fixture *f = *state;
	struct nvmk_dma_buf buf;
	size_t page = 4096;

	assert_int_equal(nvmk_ctrl_dma_alloc(f->t.ctrl, 16 * page, &buf), 0);
	char *base = buf.mem.vaddr;
	/* first element ends on a page, middle whole pages, last starts on one */
	struct iovec v[3] = {
	    {base + page - 512 * (f->bs == 512 ? 1 : 0) - (f->bs == 512 ? 0 : 0), 0},
	    {base + 4 * page, 2 * page},
	    {base + 10 * page, f->bs},
	};
	if (f->bs == 512) {
		v[0].iov_base = base + page - 1024;
		v[0].iov_len = 1024;
	} else {
		v[0].iov_base = base;
		v[0].iov_len = page;
	}
	size_t total = v[0].iov_len + v[1].iov_len + v[2].iov_len;
	uint32_t nlb = (uint32_t)(total / f->bs);
	char *ref = malloc(total), *got = malloc(total);
	fill(ref, total, 9);
	size_t o = 0;
	for (int i = 0; i < 3; i++) {
		memcpy(v[i].iov_base, ref + o, v[i].iov_len);
		o += v[i].iov_len;
	}
	struct acb a = {0};
	assert_int_equal(nvmk_ns_submit_writev(f->ns, f->qp, v, 3, 5000, nlb, 0, acb_fn, &a), 0);
	wait_cb(f, &a);
	assert_int_equal(a.cpl.err, 0);
	assert_int_equal(nvmk_ns_read(f->ns, f->qp, got, 5000, nlb), 0);
	assert_memory_equal(ref, got, total);

	/* read back through a scattered iovec */
	memset(base, 0, 16 * page);
	a.calls = 0;
	assert_int_equal(nvmk_ns_submit_readv(f->ns, f->qp, v, 3, 5000, nlb, 0, acb_fn, &a), 0);
	wait_cb(f, &a);
	o = 0;
	for (int i = 0; i < 3; i++) {
		assert_memory_equal(v[i].iov_base, ref + o, v[i].iov_len);
		o += v[i].iov_len;
	}

	/* PRP rule broken (middle element not page aligned): async refuses... */
	struct iovec bad[3] = {v[0], {base + 4 * page + 512, page}, v[2]};
	size_t badlen = bad[0].iov_len + bad[1].iov_len + bad[2].iov_len;
	assert_int_equal(nvmk_ns_submit_readv(f->ns, f->qp, bad, 3, 5000,
					      (uint32_t)(badlen / f->bs), 0, acb_fn, &a),
			 -EINVAL);
	/* ...the sync wrapper bounces */
	fill(ref, badlen, 10);
	o = 0;
	for (int i = 0; i < 3; i++) {
		memcpy(bad[i].iov_base, ref + o, bad[i].iov_len);
		o += bad[i].iov_len;
	}
	assert_int_equal(nvmk_ns_writev(f->ns, f->qp, bad, 3, 6000, (uint32_t)(badlen / f->bs)), 0);
	char *got2 = malloc(badlen);
	assert_int_equal(nvmk_ns_read(f->ns, f->qp, got2, 6000, (uint32_t)(badlen / f->bs)), 0);
	assert_memory_equal(ref, got2, badlen);
	/* plain user memory, not DMA: async refuses, sync bounces */
	struct iovec user = {got2, f->bs};
	assert_int_equal(nvmk_ns_submit_readv(f->ns, f->qp, &user, 1, 0, 1, 0, acb_fn, &a),
			 -EFAULT);
	/* wrong total length */
	assert_int_equal(nvmk_ns_submit_readv(f->ns, f->qp, v, 3, 0, nlb + 1, 0, acb_fn, &a),
			 -EINVAL);
	free(got2);
	free(ref);
	free(got);
	nvmk_ctrl_dma_free(f->t.ctrl, &buf);
}

static void test_bounce_large(void **state)
{
	struct fixture *f = *state;
	/* unaligned user memory, larger than 8 * MDTS: bounced and chunked */
	size_t len = 1024 * 1024;
	char *raw = malloc(len + 8), *wr = raw + 4, *rd = malloc(len);
	uint32_t nlb = (uint32_t)(len / f->bs);

	fill(wr, len, 11);
	uint64_t w0 = nvmk_emu_cmd_count(f->t.emu, false, NVME_CMD_WRITE);
	assert_int_equal(nvmk_ns_write(f->ns, NULL, wr, 4096, nlb), 0);
	assert_int_equal(nvmk_emu_cmd_count(f->t.emu, false, NVME_CMD_WRITE) - w0, len / 32768);
	assert_int_equal(nvmk_ns_read(f->ns, NULL, rd, 4096, nlb), 0);
	assert_memory_equal(wr, rd, len);
	free(raw);
	free(rd);
}

static void test_queue_full(void **state)
{
	struct fixture *f = *state;
	struct nvmk_qpair *small;
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL, .depth = 4};
	struct nvmk_dma_buf buf;
	struct acb a[8] = {{0}};
	int submitted = 0, rc;

	assert_int_equal(nvmk_qpair_create(f->t.ctrl, &qo, &small), 0);
	assert_int_equal(nvmk_ctrl_dma_alloc(f->t.ctrl, 8 * 4096, &buf), 0);
	for (int i = 0; i < 8; i++) {
		rc = nvmk_ns_submit_read(f->ns, small, &buf, (size_t)i * 4096, (uint64_t)i * 8,
					 4096 / f->bs, 0, acb_fn, &a[i]);
		if (rc == -EAGAIN)
			break;
		assert_int_equal(rc, 0);
		submitted++;
	}
	assert_int_equal(submitted, 3); /* depth 4: three commands at most */
	while (nvmk_qpair_outstanding(small))
		nvmk_qpair_process_completions(small, 0);
	for (int i = 0; i < submitted; i++)
		assert_int_equal(a[i].calls, 1);
	nvmk_qpair_destroy(small);
	nvmk_ctrl_dma_free(f->t.ctrl, &buf);
}

#define IO_TESTS(setup)                                                                            \
	cmocka_unit_test_setup_teardown(test_info, setup, teardown),                               \
	    cmocka_unit_test_setup_teardown(test_rw_sync, setup, teardown),                        \
	    cmocka_unit_test_setup_teardown(test_mdts_split_async, setup, teardown),               \
	    cmocka_unit_test_setup_teardown(test_flush_wz_dealloc_compare, setup, teardown),       \
	    cmocka_unit_test_setup_teardown(test_iovec, setup, teardown),                          \
	    cmocka_unit_test_setup_teardown(test_bounce_large, setup, teardown),                   \
	    cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    IO_TESTS(setup_512),
	    IO_TESTS(setup_4k),
	    IO_TESTS(setup_512_poll),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
