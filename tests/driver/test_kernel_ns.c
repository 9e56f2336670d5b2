// SPDX-License-Identifier: MIT
/*
 * The kernel namespace path (kernel_ns.h) on the host: a regular file served
 * through io_uring exactly as a /dev/nvmeXnY is (buffered, 512-byte blocks),
 * and a loop device over such a file (O_DIRECT, BLKZEROOUT/BLKDISCARD) when
 * the host lets us attach one. Every case skips with a message when io_uring
 * is unavailable (seccomp, io_uring_disabled).
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/loop.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmocka.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/dma.h"
#include "nvmekeep/driver.h"
#include "nvmekeep/emu.h"
#include "nvmekeep/kernel_ns.h"

#define FILE_BYTES (4u << 20)

struct fixture {
	struct nvmk_qpair *qp; /* async tests: destroyed before the ns closes */
	char file[64];
	char loopdev[32];
	int loop_fd;
	struct nvmk_ns *ns;
};

static bool uring_ok(void)
{
	struct io_uring r;
	int ret = io_uring_queue_init(2, &r, 0);

	if (ret) {
		fprintf(stderr, "test_kernel_ns: io_uring unavailable (%s): skipping\n",
			strerror(-ret));
		return false;
	}
	io_uring_queue_exit(&r);
	return true;
}

static void fill(void *p, size_t len, unsigned seed)
{
	unsigned char *c = p;

	for (size_t i = 0; i < len; i++)
		c[i] = (unsigned char)(seed * 131u + i * 7u + (i >> 9));
}

static int make_file(struct fixture *f)
{
	int fd;

	snprintf(f->file, sizeof(f->file), "kns-test-XXXXXX");
	fd = mkstemp(f->file);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, FILE_BYTES)) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int setup_file(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->loop_fd = -1;
	if (make_file(f))
		return -1;
	*state = f;
	return 0;
}

/* A loop device over the file: the block-device branch (O_DIRECT, ioctls).
 * Not every host allows one (containers); the tests using it then skip. */
static int setup_loop(void **state)
{
	struct fixture *f;
	int ctl, n, ffd;

	if (setup_file(state))
		return -1;
	f = *state;
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return 0;
	n = ioctl(ctl, LOOP_CTL_GET_FREE);
	close(ctl);
	if (n < 0)
		return 0;
	snprintf(f->loopdev, sizeof(f->loopdev), "/dev/loop%d", n);
	f->loop_fd = open(f->loopdev, O_RDWR | O_CLOEXEC);
	ffd = open(f->file, O_RDWR | O_CLOEXEC);
	if (f->loop_fd < 0 || ffd < 0 || ioctl(f->loop_fd, LOOP_SET_FD, ffd)) {
		if (f->loop_fd >= 0)
			close(f->loop_fd);
		f->loop_fd = -1;
		f->loopdev[0] = 0;
	}
	if (ffd >= 0)
		close(ffd);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nvmk_qpair_destroy(f->qp);
	nvmk_ns_close(f->ns);
	if (f->loop_fd >= 0) {
		ioctl(f->loop_fd, LOOP_CLR_FD, 0);
		close(f->loop_fd);
	}
	unlink(f->file);
	free(f);
	return 0;
}

static const char *dev_of(struct fixture *f, bool loop)
{
	if (!uring_ok()) {
		skip();
		return NULL;
	}
	if (loop && !f->loopdev[0]) {
		fprintf(stderr, "test_kernel_ns: no loop device here: skipping\n");
		skip();
		return NULL;
	}
	return loop ? f->loopdev : f->file;
}

/* Read, write (aligned and not), vectored, compare, flush, zeroes, discard,
 * range and argument errors: the same expectations on both devices. */
static void exercise(struct fixture *f, const char *dev, bool is_blk)
{
	struct nvmk_ns_info info;
	struct nvmk_range r[2] = {{.slba = 16, .nlb = 8}, {.slba = 100, .nlb = 4}};
	size_t n = 64 * 512;
	unsigned char *wbuf = NULL, *rbuf = NULL, *raw;
	struct iovec iov[3];

	assert_int_equal(nvmk_kns_open(dev, 0, &f->ns), 0);
	assert_true(nvmk_ns_is_kernel(f->ns));
	assert_null(nvmk_ns_ctrl(f->ns));
	nvmk_ns_info(f->ns, &info);
	assert_int_equal(info.block_size, 512);
	assert_int_equal(info.nblocks, FILE_BYTES / 512);
	assert_int_equal(info.capacity, FILE_BYTES);
	assert_true(info.max_xfer_blocks >= 8);

	assert_int_equal(posix_memalign((void **)&wbuf, 4096, n), 0);
	assert_int_equal(posix_memalign((void **)&rbuf, 4096, n), 0);
	raw = malloc(n + 1);
	fill(wbuf, n, 1);
	assert_int_equal(nvmk_ns_write(f->ns, NULL, wbuf, 0, 64), 0);
	memset(rbuf, 0, n);
	assert_int_equal(nvmk_ns_read(f->ns, NULL, rbuf, 0, 64), 0);
	assert_memory_equal(wbuf, rbuf, n);

	/* unaligned buffer (bounced under O_DIRECT) */
	fill(raw + 1, n, 2);
	assert_int_equal(nvmk_ns_write(f->ns, NULL, raw + 1, 1000, 64), 0);
	assert_int_equal(nvmk_ns_read(f->ns, NULL, rbuf, 1000, 64), 0);
	assert_memory_equal(raw + 1, rbuf, n);
	memset(raw, 0, n + 1);
	assert_int_equal(nvmk_ns_read(f->ns, NULL, raw + 1, 1000, 64), 0);
	assert_memory_equal(raw + 1, rbuf, n);

	/* vectored: three elements, one read back whole */
	fill(wbuf, n, 3);
	iov[0] = (struct iovec){wbuf, 4096};
	iov[1] = (struct iovec){wbuf + 4096, 8192};
	iov[2] = (struct iovec){wbuf + 12288, n - 12288};
	assert_int_equal(nvmk_ns_writev(f->ns, NULL, iov, 3, 2000, 64), 0);
	assert_int_equal(nvmk_ns_read(f->ns, NULL, rbuf, 2000, 64), 0);
	assert_memory_equal(wbuf, rbuf, n);
	memset(rbuf, 0, n);
	iov[0] = (struct iovec){rbuf, 512};
	iov[1] = (struct iovec){rbuf + 512, n - 512};
	assert_int_equal(nvmk_ns_readv(f->ns, NULL, iov, 2, 2000, 64), 0);
	assert_memory_equal(wbuf, rbuf, n);

	/* compare: equal, then one byte off */
	assert_int_equal(nvmk_ns_compare(f->ns, NULL, wbuf, 2000, 64), 0);
	wbuf[777] ^= 1;
	assert_int_equal(nvmk_ns_compare(f->ns, NULL, wbuf, 2000, 64), -EILSEQ);

	assert_int_equal(nvmk_ns_flush(f->ns, NULL), 0);

	/* write zeroes over data */
	assert_int_equal(nvmk_ns_write_zeroes(f->ns, NULL, 2008, 16, 0), 0);
	assert_int_equal(nvmk_ns_read(f->ns, NULL, rbuf, 2000, 64), 0);
	for (size_t i = 8 * 512; i < 24 * 512; i++)
		assert_int_equal(rbuf[i], 0);
	assert_int_not_equal(rbuf[8 * 512 - 1] | rbuf[8 * 512 - 2], 0);
	assert_int_not_equal(rbuf[24 * 512] | rbuf[24 * 512 + 1], 0);

	/* deallocate: a loop device over a file and a file punch holes, so the
	 * blocks read back as zeroes */
	assert_int_equal(nvmk_ns_deallocate(f->ns, NULL, r, 2), 0);
	assert_int_equal(nvmk_ns_read(f->ns, NULL, rbuf, 0, 64), 0);
	for (size_t i = 16 * 512; i < 24 * 512; i++)
		assert_int_equal(rbuf[i], 0);

	/* errors: out of range, length mismatch, nothing, reservations */
	assert_int_equal(nvmk_ns_read(f->ns, NULL, rbuf, info.nblocks - 1, 2), -ERANGE);
	assert_int_equal(nvmk_ns_write(f->ns, NULL, rbuf, info.nblocks, 1), -ERANGE);
	assert_int_equal(nvmk_ns_write_zeroes(f->ns, NULL, info.nblocks - 1, 2, 0), -ERANGE);
	assert_int_equal(nvmk_ns_write_zeroes(f->ns, NULL, 0, 0, 0), -EINVAL);
	assert_int_equal(nvmk_ns_deallocate(f->ns, NULL, r, 0), -EINVAL);
	iov[0] = (struct iovec){rbuf, 100};
	assert_int_equal(nvmk_ns_readv(f->ns, NULL, iov, 1, 0, 1), -EINVAL);
	assert_int_equal(nvmk_ns_resv_register(f->ns, NULL, 0, 0, 1, false), -EOPNOTSUPP);
	/* the last block is reachable */
	assert_int_equal(nvmk_ns_write(f->ns, NULL, wbuf, info.nblocks - 1, 1), 0);
	assert_int_equal(nvmk_ns_read(f->ns, NULL, rbuf, info.nblocks - 1, 1), 0);
	assert_memory_equal(wbuf, rbuf, 512);
	(void)is_blk;

	free(raw);
	free(wbuf);
	free(rbuf);
}

static void test_file(void **state)
{
	struct fixture *f = *state;
	const char *dev = dev_of(f, false);
	int fd;
	unsigned char b[512], w[512];

	exercise(f, dev, false);
	/* the data is in the file, where the next reader finds it */
	nvmk_ns_close(f->ns);
	f->ns = NULL;
	fill(w, sizeof(w), 9);
	assert_int_equal(nvmk_kns_open(dev, 0, &f->ns), 0);
	assert_int_equal(nvmk_ns_write(f->ns, NULL, w, 5, 1), 0);
	fd = open(dev, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, b, sizeof(b), 5 * 512), (ssize_t)sizeof(b));
	close(fd);
	assert_memory_equal(b, w, sizeof(b));
}

static void test_loop(void **state)
{
	struct fixture *f = *state;
	const char *dev = dev_of(f, true);
	unsigned char w[512], b[512];
	int fd;

	exercise(f, dev, true);
	/* written through O_DIRECT on the loop device, visible in its file */
	fill(w, sizeof(w), 11);
	assert_int_equal(nvmk_ns_write(f->ns, NULL, w, 7, 1), 0);
	assert_int_equal(nvmk_ns_flush(f->ns, NULL), 0);
	fd = open(f->file, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, b, sizeof(b), 7 * 512), (ssize_t)sizeof(b));
	close(fd);
	assert_memory_equal(b, w, sizeof(b));
}

static void test_open_errors(void **state)
{
	struct nvmk_ns *ns = (void *)1;
	char p[64];

	(void)state;
	if (!uring_ok()) {
		skip();
		return;
	}
	assert_int_equal(nvmk_kns_open("/dev/null", 0, &ns), -ENOTBLK);
	assert_null(ns);
	assert_int_equal(nvmk_kns_open("/nonexistent/nvme9n9", 0, &ns), -ENOENT);
	assert_int_equal(nvmk_kns_open("", 0, &ns), -EINVAL);
	/* a PCI address that is not there / not bound to nvme */
	assert_int_equal(nvmk_kns_open("0000:ff:1f.7", 1, &ns), -ENODEV);
	assert_int_equal(nvmk_kns_find_blockdev("0000:ff:1f.7", 1, p, sizeof(p)), -ENODEV);
	assert_int_equal(nvmk_kns_find_blockdev("../x", 1, p, sizeof(p)), -EINVAL);
	/* the short form and a kernel controller are looked up, not opened */
	assert_int_equal(nvmk_kns_open("ff:1f.7", 1, &ns), -ENODEV);
	assert_int_equal(nvmk_kns_find_blockdev("ff:1f.7", 1, p, sizeof(p)), -ENODEV);
	assert_int_equal(nvmk_kns_find_blockdev("0000:zz", 1, p, sizeof(p)), -EINVAL);
	assert_int_equal(nvmk_kns_open("/dev/nvme987654", 1, &ns), -ENODEV);
	assert_int_equal(nvmk_kns_find_blockdev_at(NULL, "/dev/nvme987654", 1, p, sizeof(p)),
			 -ENODEV);
	assert_null(ns);
	assert_false(nvmk_ns_is_kernel(NULL));
}

/* ---- asynchronous calls on a kernel qpair ---- */

#define QD 32

/* One request's completion record: the callback must run exactly once. */
struct areq {
	int calls;
	int err;
	uint16_t status;
};

static void acb(void *arg, const struct nvmk_cpl *cpl)
{
	struct areq *r = arg;

	r->calls++;
	r->err = cpl->err;
	r->status = cpl->status;
}

/* Process until every one of @n records has been completed (bounded). */
static void drain(struct nvmk_qpair *qp, struct areq *r, unsigned n)
{
	for (int spins = 0; spins < 2000; spins++) {
		unsigned done = 0;

		for (unsigned i = 0; i < n; i++)
			done += r[i].calls != 0;
		if (done == n)
			break;
		int rc = nvmk_qpair_wait(qp, 100);

		assert_true(rc > 0 || rc == -ETIMEDOUT);
	}
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(r[i].calls, 1);
	assert_int_equal(nvmk_qpair_outstanding(qp), 0);
}

static void expect_ok(struct areq *r, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(r[i].err, 0);
		assert_int_equal(r[i].status, 0);
	}
}

static void async_exercise(struct fixture *f, const char *dev, enum nvmk_cpl_mode mode)
{
	struct nvmk_qpair_opts o = {.mode = mode, .depth = 64};
	struct nvmk_range rg[2] = {{.slba = 200, .nlb = 8}, {.slba = 240, .nlb = 8}};
	struct areq r[QD + 1];
	struct nvmk_dma_buf wb = {0}, rb = {0};
	struct nvmk_ns_info info;
	struct iovec iov[3];
	unsigned char *w, *rd;
	const size_t io = 4096; /* 8 blocks per request */

	assert_int_equal(nvmk_kns_open(dev, 0, &f->ns), 0);
	nvmk_ns_info(f->ns, &info);
	assert_int_equal(nvmk_kns_qpair_create(f->ns, &o, &f->qp), 0);
	assert_int_equal(nvmk_qpair_outstanding(f->qp), 0);
	/* data buffers: ephemeral DMA memory (no controller on this path) */
	assert_int_equal(nvmk_dma_alloc_ephemeral(QD * io, 0, &wb.mem), 0);
	assert_int_equal(nvmk_dma_alloc_ephemeral(QD * io, 0, &rb.mem), 0);
	w = wb.mem.vaddr;
	rd = rb.mem.vaddr;

	/* QD 32 writes, all in flight at once, then QD 32 reads, verified */
	fill(w, QD * io, 21 + mode);
	memset(r, 0, sizeof(r));
	for (unsigned i = 0; i < QD; i++)
		assert_int_equal(
		    nvmk_ns_submit_write(f->ns, f->qp, &wb, i * io, 8 * i + 8, 8, 0, acb, &r[i]),
		    0);
	assert_true(nvmk_qpair_outstanding(f->qp) <= QD);
	drain(f->qp, r, QD);
	expect_ok(r, QD);
	memset(r, 0, sizeof(r));
	memset(rd, 0, QD * io);
	for (unsigned i = 0; i < QD; i++)
		assert_int_equal(
		    nvmk_ns_submit_read(f->ns, f->qp, &rb, i * io, 8 * i + 8, 8, 0, acb, &r[i]), 0);
	drain(f->qp, r, QD);
	expect_ok(r, QD);
	assert_memory_equal(w, rd, QD * io);

	/* vectored write, read back vectored into different pieces */
	fill(w, 3 * io, 31);
	iov[0] = (struct iovec){w, io};
	iov[1] = (struct iovec){w + io, 2 * io};
	memset(r, 0, sizeof(r));
	assert_int_equal(nvmk_ns_submit_writev(f->ns, f->qp, iov, 2, 1000, 24, 0, acb, &r[0]), 0);
	drain(f->qp, r, 1);
	expect_ok(r, 1);
	memset(rd, 0, 3 * io);
	iov[0] = (struct iovec){rd, 512};
	iov[1] = (struct iovec){rd + 512, 3 * io - 1024};
	iov[2] = (struct iovec){rd + 3 * io - 512, 512};
	memset(r, 0, sizeof(r));
	assert_int_equal(nvmk_ns_submit_readv(f->ns, f->qp, iov, 3, 1000, 24, 0, acb, &r[0]), 0);
	drain(f->qp, r, 1);
	expect_ok(r, 1);
	assert_memory_equal(w, rd, 3 * io);

	/* compare: equal, then one byte off (Compare Failure) */
	memset(r, 0, sizeof(r));
	assert_int_equal(nvmk_ns_submit_compare(f->ns, f->qp, &wb, 0, 1000, 24, 0, acb, &r[0]), 0);
	drain(f->qp, r, 1);
	expect_ok(r, 1);
	w[4097] ^= 0x40;
	memset(r, 0, sizeof(r));
	assert_int_equal(nvmk_ns_submit_compare(f->ns, f->qp, &wb, 0, 1000, 24, 0, acb, &r[0]), 0);
	drain(f->qp, r, 1);
	assert_int_equal(r[0].err, -EILSEQ);
	assert_int_equal(r[0].status, NVME_SF(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILED));

	/* flush; write zeroes over the middle of the vectored data;
	 * deallocate two ranges of the QD data (file and loop punch holes:
	 * they read back as zeroes) */
	memset(r, 0, sizeof(r));
	assert_int_equal(nvmk_ns_submit_flush(f->ns, f->qp, acb, &r[0]), 0);
	assert_int_equal(nvmk_ns_submit_write_zeroes(f->ns, f->qp, 1008, 8, 0, acb, &r[1]), 0);
	assert_int_equal(nvmk_ns_submit_deallocate(f->ns, f->qp, rg, 2, acb, &r[2]), 0);
	drain(f->qp, r, 3);
	expect_ok(r, 3);
	assert_int_equal(nvmk_ns_read(f->ns, NULL, rd, 1000, 24), 0);
	for (size_t i = 0; i < 3 * io; i++)
		assert_int_equal(rd[i], i >= io && i < 2 * io ? 0 : w[i] ^ (i == 4097 ? 0x40 : 0));
	assert_int_equal(nvmk_ns_read(f->ns, NULL, rd, 196, 16), 0);
	for (size_t i = 4 * 512; i < 12 * 512; i++)
		assert_int_equal(rd[i], 0);
	/* blocks 196 and 208 (written by the QD writes) kept their data */
	assert_int_not_equal(rd[0] | rd[1] | rd[2], 0);
	assert_int_not_equal(rd[12 * 512] | rd[12 * 512 + 1] | rd[12 * 512 + 2], 0);
	assert_int_equal(nvmk_ns_read(f->ns, NULL, rd, 240, 8), 0);
	for (size_t i = 0; i < 8 * 512; i++)
		assert_int_equal(rd[i], 0);

	/* refused before submission: no callback, nothing outstanding */
	memset(r, 0, sizeof(r));
	assert_int_equal(
	    nvmk_ns_submit_read(f->ns, f->qp, &rb, 0, info.nblocks - 1, 2, 0, acb, &r[0]), -ERANGE);
	assert_int_equal(nvmk_ns_submit_write(f->ns, f->qp, &wb, 0, info.nblocks, 1, 0, acb, &r[0]),
			 -ERANGE);
	assert_int_equal(nvmk_ns_submit_write_zeroes(f->ns, f->qp, info.nblocks, 1, 0, acb, &r[0]),
			 -ERANGE);
	rg[1].slba = info.nblocks - 4;
	assert_int_equal(nvmk_ns_submit_deallocate(f->ns, f->qp, rg, 2, acb, &r[0]), -ERANGE);
	assert_int_equal(nvmk_ns_submit_read(f->ns, f->qp, &rb, 0, 0, 0, 0, acb, &r[0]), -EINVAL);
	assert_int_equal(nvmk_ns_submit_read(f->ns, f->qp, &rb, QD * io - 512, 0, 2, 0, acb, &r[0]),
			 -EINVAL); /* past the end of the buffer */
	assert_int_equal(nvmk_ns_submit_deallocate(f->ns, f->qp, rg, 0, acb, &r[0]), -EINVAL);
	assert_int_equal(nvmk_qpair_process_completions(f->qp, 0), 0);
	assert_int_equal(r[0].calls, 0);
	assert_int_equal(nvmk_qpair_outstanding(f->qp), 0);
	/* the last block is reachable asynchronously */
	assert_int_equal(
	    nvmk_ns_submit_read(f->ns, f->qp, &rb, 0, info.nblocks - 1, 1, 0, acb, &r[0]), 0);
	drain(f->qp, r, 1);
	expect_ok(r, 1);

	nvmk_dma_free(&wb.mem);
	nvmk_dma_free(&rb.mem);
}

/* ---- PCI address / controller -> block device, on a fake sysfs ---- */

static void fake_ns(const char *root, const char *dir, const char *nsid)
{
	char p[512], cmd[700];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", root, dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", p);
	assert_int_equal(system(cmd), 0);
	strncat(p, "/nsid", sizeof(p) - strlen(p) - 1);
	f = fopen(p, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", nsid);
	fclose(f);
}

static void test_find_blockdev_fake_sysfs(void **state)
{
	char root[] = "/tmp/nvmk-kns-sysfs-XXXXXX", p[64], cmd[128];
	const char *pci = "bus/pci/devices/0000:00:03.0/nvme/nvme0";

	(void)state;
	assert_non_null(mkdtemp(root));
	snprintf(p, sizeof(p), "%s/nvme0n1", pci);
	fake_ns(root, p, "1");
	/* native multipath: the path nvme1c0n2 of head disk nvme1n2 */
	snprintf(p, sizeof(p), "%s/nvme1c0n2", pci);
	fake_ns(root, p, "2");
	fake_ns(root, "class/nvme/nvme3/nvme3n7", "7");

	assert_int_equal(nvmk_kns_find_blockdev_at(root, "0000:00:03.0", 1, p, sizeof(p)), 0);
	assert_string_equal(p, "/dev/nvme0n1");
	assert_int_equal(nvmk_kns_find_blockdev_at(root, "00:03.0", 2, p, sizeof(p)), 0);
	assert_string_equal(p, "/dev/nvme1n2");
	assert_int_equal(nvmk_kns_find_blockdev_at(root, "0000:00:03.0", 3, p, sizeof(p)), -ENODEV);
	assert_int_equal(nvmk_kns_find_blockdev_at(root, "0000:00:04.0", 1, p, sizeof(p)), -ENODEV);
	assert_int_equal(nvmk_kns_find_blockdev_at(root, "/dev/nvme3", 7, p, sizeof(p)), 0);
	assert_string_equal(p, "/dev/nvme3n7");
	assert_int_equal(nvmk_kns_find_blockdev_at(root, "/dev/nvme3", 1, p, sizeof(p)), -ENODEV);
	assert_int_equal(nvmk_kns_find_blockdev_at(root, "/dev/nvme4", 1, p, sizeof(p)), -ENODEV);
	/* what is neither a PCI function nor a controller */
	assert_int_equal(nvmk_kns_find_blockdev_at(root, "/dev/nvme3n7", 7, p, sizeof(p)), -EINVAL);
	assert_int_equal(nvmk_kns_find_blockdev_at(root, "emu", 1, p, sizeof(p)), -EINVAL);
	assert_int_equal(nvmk_kns_find_blockdev_at(root, "0000:zz", 1, p, sizeof(p)), -EINVAL);
	/* too small a buffer */
	assert_int_equal(nvmk_kns_find_blockdev_at(root, "0000:00:03.0", 1, p, 5), -ENAMETOOLONG);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

static void test_async_file_irq(void **state)
{
	struct fixture *f = *state;
	const char *dev = dev_of(f, false);

	async_exercise(f, dev, NVMK_CPL_INTERRUPT);
}

static void test_async_file_poll(void **state)
{
	struct fixture *f = *state;
	const char *dev = dev_of(f, false);

	async_exercise(f, dev, NVMK_CPL_POLL);
}

static void test_async_loop_irq(void **state)
{
	struct fixture *f = *state;
	const char *dev = dev_of(f, true);

	async_exercise(f, dev, NVMK_CPL_INTERRUPT);
}

static void test_async_loop_poll(void **state)
{
	struct fixture *f = *state;
	const char *dev = dev_of(f, true);

	async_exercise(f, dev, NVMK_CPL_POLL);
}

/* A full qpair refuses (-EAGAIN, no callback); destroy completes what is in
 * flight with -ECANCELED exactly once; a read the kernel cuts short (the
 * file shrank under the namespace) completes -ERANGE with Host Aborted
 * Command; mismatched ns/qpair kinds are refused. */
static void test_async_errors(void **state)
{
	struct fixture *f = *state;
	const char *dev = dev_of(f, false);
	struct nvmk_qpair_opts o = {.mode = NVMK_CPL_POLL, .depth = 4};
	struct areq r[5];
	void *buf = NULL;
	struct nvmk_dma_buf b = {0};

	assert_int_equal(nvmk_kns_open(dev, 0, &f->ns), 0);
	assert_int_equal(nvmk_kns_qpair_create(f->ns, &o, &f->qp), 0);
	assert_int_equal(posix_memalign(&buf, 4096, 5 * 4096), 0);
	b.mem.vaddr = buf; /* plain page-aligned memory works on this path */
	b.mem.size = 5 * 4096;
	memset(r, 0, sizeof(r));
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(
		    nvmk_ns_submit_read(f->ns, f->qp, &b, i * 4096, 8 * i, 8, 0, acb, &r[i]), 0);
	assert_int_equal(nvmk_qpair_outstanding(f->qp), 4);
	assert_int_equal(nvmk_ns_submit_read(f->ns, f->qp, &b, 4 * 4096, 64, 8, 0, acb, &r[4]),
			 -EAGAIN);
	nvmk_qpair_destroy(f->qp);
	f->qp = NULL;
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].err, -ECANCELED);
	}
	assert_int_equal(r[4].calls, 0);

	/* shrink the file: the namespace still believes in its old size */
	assert_int_equal(truncate(f->file, FILE_BYTES / 2), 0);
	assert_int_equal(nvmk_kns_qpair_create(f->ns, &o, &f->qp), 0);
	memset(r, 0, sizeof(r));
	assert_int_equal(
	    nvmk_ns_submit_read(f->ns, f->qp, &b, 0, FILE_BYTES / 512 - 8, 8, 0, acb, &r[0]), 0);
	drain(f->qp, r, 1);
	assert_int_equal(r[0].err, -ERANGE);
	assert_int_equal(r[0].status, NVME_SF(NVME_SCT_PATH, NVME_SC_HOST_ABORTED_CMD));

	/* creation refuses what is not a kernel namespace, and bad depths */
	struct nvmk_qpair *q2;

	assert_int_equal(nvmk_kns_qpair_create(NULL, &o, &q2), -EINVAL);
	o.depth = 1;
	assert_int_equal(nvmk_kns_qpair_create(f->ns, &o, &q2), -EINVAL);
	free(buf);
}

/* A SHARED kernel qpair used by two threads at once: each submits and waits
 * on it; every callback runs exactly once, whichever thread reaps it. */
#define SH_THREADS 2
#define SH_IOS	   64

struct sh_ctx {
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	unsigned idx;
	unsigned char *buf;
	atomic_uint calls[SH_IOS];
	atomic_int err;
};

static void sh_cb(void *arg, const struct nvmk_cpl *cpl)
{
	atomic_uint *c = arg;

	atomic_fetch_add(c, 1);
	if (cpl->err)
		fprintf(stderr, "test_kernel_ns: shared qpair I/O failed: %d\n", cpl->err);
}

static void *sh_thread(void *arg)
{
	struct sh_ctx *x = arg;
	struct nvmk_dma_buf b = {.mem = {.vaddr = x->buf, .size = SH_IOS * 512}};
	unsigned next = 0;

	for (int spins = 0; spins < 20000; spins++) {
		unsigned done = 0;

		while (next < SH_IOS) {
			int rc = nvmk_ns_submit_write(x->ns, x->qp, &b, next * 512,
						      x->idx * SH_IOS + next, 1, 0, sh_cb,
						      &x->calls[next]);
			if (rc == -EAGAIN)
				break;
			if (rc) {
				atomic_store(&x->err, rc);
				return NULL;
			}
			next++;
		}
		for (unsigned i = 0; i < SH_IOS; i++)
			done += atomic_load(&x->calls[i]) != 0;
		if (done == SH_IOS)
			break;
		nvmk_qpair_wait(x->qp, 10);
	}
	return NULL;
}

static void test_async_shared(void **state)
{
	struct fixture *f = *state;
	const char *dev = dev_of(f, false);
	struct nvmk_qpair_opts o = {
	    .mode = NVMK_CPL_INTERRUPT, .depth = 16, .flags = NVMK_QPAIR_SHARED};
	struct sh_ctx x[SH_THREADS];
	pthread_t th[SH_THREADS];
	unsigned char *rd = NULL;

	assert_int_equal(nvmk_kns_open(dev, 0, &f->ns), 0);
	assert_int_equal(nvmk_kns_qpair_create(f->ns, &o, &f->qp), 0);
	assert_int_equal(posix_memalign((void **)&rd, 4096, SH_IOS * 512), 0);
	for (unsigned t = 0; t < SH_THREADS; t++) {
		memset(&x[t], 0, sizeof(x[t]));
		x[t].ns = f->ns;
		x[t].qp = f->qp;
		x[t].idx = t;
		assert_int_equal(posix_memalign((void **)&x[t].buf, 4096, SH_IOS * 512), 0);
		fill(x[t].buf, SH_IOS * 512, 50 + t);
	}
	for (unsigned t = 0; t < SH_THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, sh_thread, &x[t]), 0);
	for (unsigned t = 0; t < SH_THREADS; t++)
		pthread_join(th[t], NULL);
	assert_int_equal(nvmk_qpair_outstanding(f->qp), 0);
	for (unsigned t = 0; t < SH_THREADS; t++) {
		assert_int_equal(atomic_load(&x[t].err), 0);
		for (unsigned i = 0; i < SH_IOS; i++)
			assert_int_equal(atomic_load(&x[t].calls[i]), 1);
		assert_int_equal(nvmk_ns_read(f->ns, NULL, rd, t * SH_IOS, SH_IOS), 0);
		assert_memory_equal(rd, x[t].buf, SH_IOS * 512);
		free(x[t].buf);
	}
	free(rd);
}

/*
 * A kernel namespace and an NVMe-queue qpair (of an emulated controller), or
 * the other way round, belong to different implementations of the
 * namespace and queue-pair operations: every asynchronous call refuses the
 * mix with -EINVAL, queues nothing and calls no callback. The kernel
 * namespace never passes the NVMe-queue fast path's gate, even on an
 * exclusive current qpair (it has no namespace state to look at there).
 */
static void test_mixed_paths(void **state)
{
	struct fixture *f = *state;
	struct nvmk_qpair_opts po = {.mode = NVMK_CPL_POLL};
	struct nvmk_emu_config cfg;
	struct nvmk_backing *b;
	struct nvmk_emu *emu;
	struct nvmk_ctrl *ctrl;
	struct nvmk_ns *nns;
	struct nvmk_qpair *nqp;
	struct nvmk_dma_buf buf;
	struct nvmk_ns_info info;
	struct nvmk_range rg = {.slba = 0, .nlb = 8};
	struct areq r = {0};
	struct iovec v;

	assert_int_equal(nvmk_kns_open(dev_of(f, false), 0, &f->ns), 0);
	assert_int_equal(nvmk_kns_qpair_create(f->ns, &po, &f->qp), 0);
	nvmk_ns_info(f->ns, &info);
	assert_int_equal(info.max_xfer_blocks, (1u << 20) >> 9); /* file: 1 MiB per request */
	assert_int_equal(info.nblocks, FILE_BYTES / 512);

	nvmk_emu_config_default(&cfg);
	cfg.name = "emu-mixed";
	assert_int_equal(nvmk_backing_local_create(&cfg, &b, &emu), 0);
	assert_int_equal(nvmk_ctrl_open(b, NULL, &ctrl), 0);
	assert_int_equal(nvmk_ns_open(ctrl, 1, 0, &nns), 0);
	assert_int_equal(nvmk_qpair_create(ctrl, &po, &nqp), 0);
	assert_int_equal(nvmk_ctrl_dma_alloc(ctrl, 8192, &buf), 0);
	v = (struct iovec){buf.mem.vaddr, 4096};

	/* kernel namespace, exclusive NVMe-queue qpair: the fast path's case */
	assert_int_equal(nvmk_ns_submit_read(f->ns, nqp, &buf, 0, 0, 8, 0, acb, &r), -EINVAL);
	assert_int_equal(nvmk_ns_submit_write(f->ns, nqp, &buf, 0, 0, 8, 0, acb, &r), -EINVAL);
	assert_int_equal(nvmk_ns_submit_readv(f->ns, nqp, &v, 1, 0, 8, 0, acb, &r), -EINVAL);
	assert_int_equal(nvmk_ns_submit_flush(f->ns, nqp, acb, &r), -EINVAL);
	assert_int_equal(nvmk_ns_submit_write_zeroes(f->ns, nqp, 0, 8, 0, acb, &r), -EINVAL);
	assert_int_equal(nvmk_ns_submit_deallocate(f->ns, nqp, &rg, 1, acb, &r), -EINVAL);
	/* NVMe-queue namespace, kernel qpair */
	assert_int_equal(nvmk_ns_submit_read(nns, f->qp, &buf, 0, 0, 8, 0, acb, &r), -EINVAL);
	assert_int_equal(nvmk_ns_submit_writev(nns, f->qp, &v, 1, 0, 8, 0, acb, &r), -EINVAL);
	assert_int_equal(nvmk_ns_submit_flush(nns, f->qp, acb, &r), -EINVAL);
	assert_int_equal(nvmk_ns_submit_write_zeroes(nns, f->qp, 0, 8, 0, acb, &r), -EINVAL);
	assert_int_equal(nvmk_ns_submit_deallocate(nns, f->qp, &rg, 1, acb, &r), -EINVAL);
	/* the synchronous calls of an NVMe-queue namespace refuse a kernel qpair
	 * (those of a kernel namespace ignore the qpair: kernel_ns.h) */
	assert_int_equal(nvmk_ns_read(nns, f->qp, buf.mem.vaddr, 0, 8), -EINVAL);
	assert_int_equal(nvmk_ns_flush(nns, f->qp), -EINVAL);
	assert_int_equal(nvmk_ns_write_zeroes(nns, f->qp, 0, 8, 0), -EINVAL);
	assert_int_equal(nvmk_ns_deallocate(nns, f->qp, &rg, 1), -EINVAL);
	assert_int_equal(nvmk_ns_resv_register(nns, f->qp, NVME_RESV_REG_REGISTER, 0, 1, false),
			 -EINVAL);
	assert_int_equal(nvmk_ns_read(f->ns, nqp, buf.mem.vaddr, 0, 8), 0);
	assert_int_equal(nvmk_qpair_outstanding(nqp), 0);
	assert_int_equal(nvmk_qpair_outstanding(f->qp), 0);
	assert_int_equal(nvmk_qpair_process_completions(nqp, 0), 0);
	assert_int_equal(nvmk_qpair_process_completions(f->qp, 0), 0);
	assert_int_equal(r.calls, 0);

	/* each on its own path still works */
	assert_int_equal(nvmk_ns_submit_read(nns, nqp, &buf, 0, 0, 8, 0, acb, &r), 0);
	/* the emulator's worker thread completes it: wait up to 10 s */
	for (int i = 0; i < 1000 && r.calls == 0; i++)
		nvmk_qpair_wait(nqp, 10);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	memset(&r, 0, sizeof(r));
	assert_int_equal(nvmk_ns_submit_read(f->ns, f->qp, &buf, 0, 0, 8, 0, acb, &r), 0);
	drain(f->qp, &r, 1);
	assert_int_equal(r.err, 0);
	/* the kernel qpair has no interrupt fd; batches are accepted and do nothing */
	assert_int_equal(nvmk_qpair_irq_fd(f->qp), -1);
	assert_int_equal(nvmk_qpair_batch_begin(f->qp), 0);
	assert_int_equal(nvmk_qpair_batch_end(f->qp), 0);
	/* reservations are not offered on a kernel namespace */
	assert_int_equal(nvmk_ns_resv_register(f->ns, NULL, NVME_RESV_REG_REGISTER, 0, 1,
					       false),
			 -EOPNOTSUPP);

	nvmk_ctrl_dma_free(ctrl, &buf);
	nvmk_qpair_destroy(nqp);
	nvmk_ns_close(nns);
	nvmk_ctrl_close(ctrl);
	nvmk_backing_destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_file, setup_file, teardown),
	    cmocka_unit_test_setup_teardown(test_loop, setup_loop, teardown),
	    cmocka_unit_test(test_open_errors),
	    cmocka_unit_test(test_find_blockdev_fake_sysfs),
	    cmocka_unit_test_setup_teardown(test_async_file_irq, setup_file, teardown),
	    cmocka_unit_test_setup_teardown(test_async_file_poll, setup_file, teardown),
	    cmocka_unit_test_setup_teardown(test_async_loop_irq, setup_loop, teardown),
	    cmocka_unit_test_setup_teardown(test_async_loop_poll, setup_loop, teardown),
	    cmocka_unit_test_setup_teardown(test_async_errors, setup_file, teardown),
	    cmocka_unit_test_setup_teardown(test_async_shared, setup_file, teardown),
	    cmocka_unit_test_setup_teardown(test_mixed_paths, setup_file, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
