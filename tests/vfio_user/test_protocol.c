// SPDX-License-Identifier: MIT
/*
 * nvmekeep-emu against malformed and hostile vfio-user messages, written
 * byte by byte from the protocol text: every bad message gets an error reply
 * (or, when the stream cannot be trusted any more, a disconnect) and the
 * server keeps serving. Also drives a controller through DMA maps WITHOUT a
 * file descriptor, where every access of the device is a DMA_READ/WRITE
 * message this test answers from its own memory.
 */
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "nvmekeep/log.h"
#include "nvmekeep/spec.h"
#include "nvmekeep/vfio_user.h"
#include "vfu_test.h"

static uint16_t next_id = 1;

/* Send a command (raw header fields allowed to lie when @h is given). */
static void raw_send(int fd, uint16_t cmd, const void *p, size_t len, const int *fds, unsigned nfds)
{
	struct nvmk_vfu_hdr h = {.msg_id = next_id++, .cmd = cmd, .flags = NVMK_VFU_F_TYPE_CMD};

	assert_int_equal(nvmk_vfu_send(fd, &h, p, len, fds, nfds), 0);
}

/* DMA_READ/WRITE of the server served from @mem (at IOVA @base), if any */
static uint8_t *dma_mem;
static uint64_t dma_base, dma_len;
static unsigned dma_msgs;

static void serve(int fd, const uint8_t *msg)
{
	struct nvmk_vfu_hdr h;
	struct nvmk_vfu_dma_rw rw;
	static uint8_t out[65536 + 16];

	memcpy(&h, msg, sizeof(h));
	memcpy(&rw, msg + sizeof(h), sizeof(rw));
	assert_true(h.cmd == NVMK_VFU_DMA_READ || h.cmd == NVMK_VFU_DMA_WRITE);
	assert_true(rw.addr >= dma_base && rw.count <= dma_len &&
		    rw.addr - dma_base <= dma_len - rw.count);
	dma_msgs++;
	h.flags = NVMK_VFU_F_TYPE_REPLY;
	if (h.cmd == NVMK_VFU_DMA_READ) {
		memcpy(out, &rw, sizeof(rw));
		memcpy(out + sizeof(rw), dma_mem + (rw.addr - dma_base), rw.count);
		assert_int_equal(nvmk_vfu_send(fd, &h, out, sizeof(rw) + rw.count, NULL, 0), 0);
	} else {
		uint32_t cnt = (uint32_t)rw.count;

		memcpy(dma_mem + (rw.addr - dma_base), msg + sizeof(h) + sizeof(rw), rw.count);
		memcpy(out, &rw.addr, 8);
		memcpy(out + 8, &cnt, 4);
		assert_int_equal(nvmk_vfu_send(fd, &h, out, 12, NULL, 0), 0);
	}
}

/* Wait for the reply to the last command. Return its error (0 = success),
 * -1 on disconnect; the payload goes to @out (if given). */
static int raw_reply(int fd, void *out, size_t max, size_t *len)
{
	static uint8_t buf[NVMK_VFU_MSG_MAX(1 << 20)];
	int fds[4];
	unsigned nfds;

	for (;;) {
		struct pollfd pf = {fd, POLLIN, 0};
		struct nvmk_vfu_hdr h;
		int n;

		if (poll(&pf, 1, 5000) != 1)
			return -2;
		n = nvmk_vfu_recv(fd, buf, sizeof(buf), fds, 4, &nfds);
		if (n <= 0)
			return -1;
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		memcpy(&h, buf, sizeof(h));
		if ((h.flags & NVMK_VFU_F_TYPE_MASK) == NVMK_VFU_F_TYPE_CMD) {
			serve(fd, buf);
			continue;
		}
		assert_int_equal(h.msg_id, (uint16_t)(next_id - 1));
		if (h.flags & NVMK_VFU_F_ERROR) {
			assert_int_equal(h.size, 16); /* "must only include the reply header" */
			return h.error ? (int)h.error : 9999;
		}
		if (out)
			memcpy(out, buf + sizeof(h),
			       h.size - sizeof(h) < max ? h.size - sizeof(h) : max);
		if (len)
			*len = h.size - sizeof(h);
		return 0;
	}
}

static int cmd(int fd, uint16_t c, const void *p, size_t len)
{
	raw_send(fd, c, p, len, NULL, 0);
	return raw_reply(fd, NULL, 0, NULL);
}

static int hello(int fd)
{
	static const char json[] =
	    "{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":65536}}";
	uint8_t p[4 + sizeof(json)] = {0, 0, 1, 0};

	memcpy(p + 4, json, sizeof(json));
	return cmd(fd, NVMK_VFU_VERSION, p, sizeof(p));
}

/* The server still answers a fresh client. */
static void still_serving(struct tsrv *t)
{
	int fd;

	for (int i = 0; i < 200; i++) {
		fd = unix_connect(t->sock);
		assert_true(fd >= 0);
		if (hello(fd) == 0) {
			close(fd);
			return;
		}
		close(fd);
		tsleep_ms(10); /* the previous client is still being dropped */
	}
	fail_msg("server no longer serves");
}

static int reg_rw(int fd, uint32_t region, uint64_t off, uint32_t count, void *data, bool write)
{
	uint8_t p[16 + 64];
	struct nvmk_vfu_region_rw rw = {off, region, count};
	size_t len = 0;
	int rc;

	memcpy(p, &rw, 16);
	if (write)
		memcpy(p + 16, data, count);
	raw_send(fd, write ? NVMK_VFU_REGION_WRITE : NVMK_VFU_REGION_READ, p,
		 16 + (write ? count : 0), NULL, 0);
	rc = raw_reply(fd, p, sizeof(p), &len);
	if (!rc && !write) {
		assert_int_equal(len, 16 + count);
		memcpy(data, p + 16, count);
	}
	return rc;
}

static void test_handshake_rules(void **state)
{
	struct nvmk_vfu_device_info di = {.argsz = 16};
	struct tsrv t;
	int fd;

	(void)state;
	assert_int_equal(tsrv_start(&t, NULL), 0);
	fd = unix_connect(t.sock);
	/* anything before VERSION */
	assert_int_equal(cmd(fd, NVMK_VFU_DEVICE_GET_INFO, &di, sizeof(di)), EINVAL);
	/* VERSION: short, JSON without NUL, not JSON, bad capability types */
	assert_int_equal(cmd(fd, NVMK_VFU_VERSION, "\0\0", 2), EINVAL);
	assert_int_equal(cmd(fd, NVMK_VFU_VERSION, "\0\0\1\0{}", 6), EINVAL);
	assert_int_equal(cmd(fd, NVMK_VFU_VERSION, "\0\0\1\0{nope", 10), EINVAL);
	assert_int_equal(cmd(fd, NVMK_VFU_VERSION, "\0\0\1\0[1]", 8), EINVAL);
	{
		static const char j[] = "\0\0\1\0{\"capabilities\":{\"max_msg_fds\":\"many\"}}";
		assert_int_equal(cmd(fd, NVMK_VFU_VERSION, j, sizeof(j)), EINVAL);
	}
	{
		static const char j[] = "\0\0\1\0{\"capabilities\":{\"max_data_xfer_size\":-5}}";
		assert_int_equal(cmd(fd, NVMK_VFU_VERSION, j, sizeof(j)), EINVAL);
	}
	{
		/* the reply: our major, minor <= proposed, the four capabilities */
		uint8_t p[4] = {0, 0, 7, 0}, out[512] = {0};
		struct nvmk_vfu_version v;
		struct nvmk_vfu_caps caps;
		size_t len = 0;

		raw_send(fd, NVMK_VFU_VERSION, p, 4, NULL, 0);
		assert_int_equal(raw_reply(fd, out, sizeof(out), &len), 0);
		assert_int_equal(nvmk_vfu_version_parse(out, len, &v, &caps, NULL, 0), 0);
		assert_int_equal(v.major, 0);
		assert_int_equal(v.minor, 1);
		assert_true(caps.max_msg_fds >= 1);
		assert_int_equal(caps.pgsizes, 4096);
	}
	/* twice */
	assert_int_equal(hello(fd), EINVAL);
	assert_int_equal(cmd(fd, NVMK_VFU_DEVICE_GET_INFO, &di, sizeof(di)), 0);
	close(fd);

	/* another major version: refused and disconnected */
	fd = unix_connect(t.sock);
	assert_int_equal(cmd(fd, NVMK_VFU_VERSION, "\1\0\0\0", 4), ENOTSUP);
	assert_int_equal(raw_reply(fd, NULL, 0, NULL), -1);
	close(fd);
	still_serving(&t);
	assert_int_equal(tsrv_stop(&t), 0);
}

static void test_malformed_messages(void **state)
{
	struct tsrv t;
	uint8_t junk[64] = {0};
	int fd, fds[20];

	(void)state;
	assert_int_equal(tsrv_start(&t, NULL), 0);
	fd = unix_connect(t.sock);
	assert_int_equal(hello(fd), 0);

	/* payload sizes that disagree with the command */
	assert_int_equal(cmd(fd, NVMK_VFU_DMA_MAP, junk, 24), EINVAL);
	assert_int_equal(cmd(fd, NVMK_VFU_DEVICE_GET_INFO, junk, 15), EINVAL);
	assert_int_equal(cmd(fd, NVMK_VFU_DEVICE_GET_REGION_INFO, junk, 33), EINVAL);
	assert_int_equal(cmd(fd, NVMK_VFU_DEVICE_RESET, junk, 4), EINVAL);
	{
		/* argsz below the fixed reply */
		struct nvmk_vfu_device_info di = {.argsz = 8};
		assert_int_equal(cmd(fd, NVMK_VFU_DEVICE_GET_INFO, &di, sizeof(di)), EINVAL);
	}
	{
		/* REGION_WRITE whose count lies about the data that follows */
		struct nvmk_vfu_region_rw rw = {NVME_REG_CC, NVMK_VFU_PCI_BAR0, 8};
		uint8_t p[20];

		memcpy(p, &rw, 16);
		assert_int_equal(cmd(fd, NVMK_VFU_REGION_WRITE, p, 20), EINVAL);
		rw.count = 0;
		memcpy(p, &rw, 16);
		assert_int_equal(cmd(fd, NVMK_VFU_REGION_READ, p, 16), EINVAL);
		rw.count = 2u << 20; /* beyond max_data_xfer_size */
		memcpy(p, &rw, 16);
		assert_int_equal(cmd(fd, NVMK_VFU_REGION_READ, p, 16), EINVAL);
	}
	/* an unknown command, one we do not offer */
	assert_int_equal(cmd(fd, 99, NULL, 0), ENOSYS);
	assert_int_equal(cmd(fd, NVMK_VFU_REGION_WRITE_MULTI, junk, 16), ENOSYS);
	/* a reply nobody asked for is ignored; a message of type 7 is refused */
	{
		struct nvmk_vfu_hdr h = {
		    .msg_id = 4242, .cmd = NVMK_VFU_DMA_READ, .flags = NVMK_VFU_F_TYPE_REPLY};
		assert_int_equal(nvmk_vfu_send(fd, &h, NULL, 0, NULL, 0), 0);
		h = (struct nvmk_vfu_hdr){
		    .msg_id = next_id++, .cmd = NVMK_VFU_DEVICE_RESET, .flags = 7};
		assert_int_equal(nvmk_vfu_send(fd, &h, NULL, 0, NULL, 0), 0);
		assert_int_equal(raw_reply(fd, NULL, 0, NULL), EINVAL);
	}
	/* too many fds for max_msg_fds: refused, the stream stays in step */
	for (int i = 0; i < 20; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	{
		struct nvmk_vfu_device_info di = {.argsz = 16};

		raw_send(fd, NVMK_VFU_DEVICE_GET_INFO, &di, sizeof(di), fds, 20);
		assert_int_equal(raw_reply(fd, NULL, 0, NULL), EINVAL);
		/* fds on a command that takes none */
		raw_send(fd, NVMK_VFU_DEVICE_GET_INFO, &di, sizeof(di), fds, 1);
		assert_int_equal(raw_reply(fd, NULL, 0, NULL), EINVAL);
		assert_int_equal(cmd(fd, NVMK_VFU_DEVICE_GET_INFO, &di, sizeof(di)), 0);
	}
	/* SET_IRQS: beyond the table, fd count mismatch, two actions */
	{
		struct nvmk_vfu_irq_set s = {
		    20, NVMK_VFU_IRQ_DATA_EVENTFD | NVMK_VFU_IRQ_ACTION_TRIGGER, NVMK_VFU_IRQ_MSIX,
		    60, 10};

		raw_send(fd, NVMK_VFU_DEVICE_SET_IRQS, &s, sizeof(s), fds, 10);
		assert_int_equal(raw_reply(fd, NULL, 0, NULL), EINVAL);
		s.start = 0;
		raw_send(fd, NVMK_VFU_DEVICE_SET_IRQS, &s, sizeof(s), fds, 3);
		assert_int_equal(raw_reply(fd, NULL, 0, NULL), EINVAL);
		s.flags |= NVMK_VFU_IRQ_ACTION_MASK;
		assert_int_equal(cmd(fd, NVMK_VFU_DEVICE_SET_IRQS, &s, sizeof(s)), EINVAL);
		s = (struct nvmk_vfu_irq_set){
		    21, NVMK_VFU_IRQ_DATA_EVENTFD | NVMK_VFU_IRQ_ACTION_TRIGGER, NVMK_VFU_IRQ_MSIX,
		    0, 1};
		assert_int_equal(cmd(fd, NVMK_VFU_DEVICE_SET_IRQS, &s, sizeof(s)),
				 EINVAL); /* argsz */
		s.argsz = 20;
		raw_send(fd, NVMK_VFU_DEVICE_SET_IRQS, &s, sizeof(s), fds, 1);
		assert_int_equal(raw_reply(fd, NULL, 0, NULL), 0);
	}
	for (int i = 0; i < 20; i++)
		close(fds[i]);
	/* indexes beyond what the device has */
	{
		struct nvmk_vfu_region_info ri = {.argsz = 32, .index = NVMK_VFU_NUM_REGIONS_EXT};
		struct nvmk_vfu_irq_info ii = {.argsz = 16, .index = 5};

		assert_int_equal(cmd(fd, NVMK_VFU_DEVICE_GET_REGION_INFO, &ri, sizeof(ri)), EINVAL);
		assert_int_equal(cmd(fd, NVMK_VFU_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii)), EINVAL);
	}
	close(fd);
	still_serving(&t);

	/* a header announcing 2 GiB: error reply, then the server hangs up */
	fd = unix_connect(t.sock);
	assert_int_equal(hello(fd), 0);
	{
		struct nvmk_vfu_hdr h = {.msg_id = next_id++,
					 .cmd = NVMK_VFU_REGION_WRITE,
					 .size = 0x80000000u,
					 .flags = 0};

		assert_int_equal(write(fd, &h, sizeof(h)), (ssize_t)sizeof(h));
		assert_int_equal(raw_reply(fd, NULL, 0, NULL), EMSGSIZE);
		assert_int_equal(raw_reply(fd, NULL, 0, NULL), -1);
	}
	close(fd);
	still_serving(&t);

	/* a header that says it is smaller than a header */
	fd = unix_connect(t.sock);
	{
		struct nvmk_vfu_hdr h = {.msg_id = 1, .cmd = NVMK_VFU_VERSION, .size = 8};

		assert_int_equal(write(fd, &h, sizeof(h)), (ssize_t)sizeof(h));
		assert_int_equal(raw_reply(fd, NULL, 0, NULL), -1);
	}
	close(fd);
	/* a short header, then gone */
	fd = unix_connect(t.sock);
	assert_int_equal(write(fd, junk, 7), 7);
	close(fd);
	still_serving(&t);
	assert_true(tsrv_stat(&t, "protocol_errors") >= 20);
	assert_int_equal(tsrv_stop(&t), 0);
}

static int dma_map(int fd, uint64_t addr, uint64_t size, uint64_t off, int mfd, uint32_t flags)
{
	struct nvmk_vfu_dma_map m = {32, flags, off, addr, size};

	raw_send(fd, NVMK_VFU_DMA_MAP, &m, sizeof(m), mfd >= 0 ? &mfd : NULL, mfd >= 0);
	return raw_reply(fd, NULL, 0, NULL);
}

static int dma_unmap(int fd, uint64_t addr, uint64_t size)
{
	struct nvmk_vfu_dma_unmap u = {24, 0, addr, size};
	uint8_t out[24];
	size_t len = 0;
	int rc;

	raw_send(fd, NVMK_VFU_DMA_UNMAP, &u, sizeof(u), NULL, 0);
	rc = raw_reply(fd, out, sizeof(out), &len);
	if (!rc) {
		/* "The server responds with the original DMA entry in the request." */
		assert_int_equal(len, 24);
		assert_memory_equal(out, &u, 24);
	}
	return rc;
}

static void test_dma_and_region_limits(void **state)
{
	const uint32_t rw = NVMK_VFU_DMA_READ_OK | NVMK_VFU_DMA_WRITE_OK;
	struct tsrv t;
	uint32_t v32;
	uint8_t b8[8];
	int fd, mfd;

	(void)state;
	assert_int_equal(tsrv_start(&t, NULL), 0);
	fd = unix_connect(t.sock);
	assert_int_equal(hello(fd), 0);
	mfd = memfd_create("t", MFD_CLOEXEC);
	assert_int_equal(ftruncate(mfd, 1 << 20), 0);

	/* maps that cannot be */
	assert_int_equal(dma_map(fd, 0x1000, 0, 0, -1, rw), EINVAL);		 /* empty */
	assert_int_equal(dma_map(fd, ~0xfffull, 0x2000, 0, -1, rw), EINVAL);	 /* wraps */
	assert_int_equal(dma_map(fd, 0x1800, 0x1000, 0, -1, rw), EINVAL);	 /* unaligned */
	assert_int_equal(dma_map(fd, 0x1000, 0x1000, 0x1000, -1, rw), EINVAL);	 /* offset, no fd */
	assert_int_equal(dma_map(fd, 0x1000, 0x1000, 0, -1, 0x10), EINVAL);	 /* flags */
	assert_int_equal(dma_map(fd, 0x100000, 4ull << 20, 0, mfd, rw), EINVAL); /* beyond the fd */
	{
		struct nvmk_vfu_dma_map m = {32, rw, 0, 0x1000, 0x1000};
		int two[2] = {mfd, mfd};

		raw_send(fd, NVMK_VFU_DMA_MAP, &m, sizeof(m), two, 2);
		assert_int_equal(raw_reply(fd, NULL, 0, NULL), EINVAL);
		m.argsz = 40;
		assert_int_equal(cmd(fd, NVMK_VFU_DMA_MAP, &m, sizeof(m)), EINVAL);
	}
	/* good ones, then overlaps */
	assert_int_equal(dma_map(fd, 0x100000, 0x10000, 0, mfd, rw), 0);
	assert_int_equal(dma_map(fd, 0x200000, 0x10000, 0, -1, rw), 0);
	assert_int_equal(dma_map(fd, 0x10f000, 0x2000, 0, -1, rw), EEXIST);
	assert_int_equal(dma_map(fd, 0x0ff000, 0x2000, 0, -1, rw), EEXIST);
	assert_int_equal(dma_map(fd, 0x100000, 0x10000, 0, mfd, rw), EEXIST);
	assert_int_equal(tsrv_stat(&t, "mapped_dma_bytes"), 0x20000);
	/* unmaps of what is not mapped exactly */
	assert_int_equal(dma_unmap(fd, 0x300000, 0x1000), ENOENT);
	assert_int_equal(dma_unmap(fd, 0x100000, 0x1000), ENOENT);
	assert_int_equal(dma_unmap(fd, 0x101000, 0xf000), ENOENT);
	assert_int_equal(dma_unmap(fd, 0x100000, 0x10000), 0);
	assert_int_equal(dma_unmap(fd, 0x100000, 0x10000), ENOENT);
	assert_int_equal(dma_unmap(fd, 0x200000, 0x10000), 0);
	/* max_dma_maps */
	{
		unsigned i;
		int rc = 0;

		for (i = 0; i < 2000 && !rc; i++)
			rc = dma_map(fd, 0x1000000 + (uint64_t)i * 0x2000, 0x1000, 0, -1, rw);
		assert_int_equal(rc, ENOSPC);
		assert_int_equal(i - 1, 1024);
		assert_int_equal(tsrv_stat(&t, "dma_maps"), 1024);
	}

	/* region accesses out of bounds or of a bad width */
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_BAR0, NVME_REG_CSTS, 4, &v32, false), 0);
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_BAR0, 1 << 20, 4, &v32, false), EINVAL);
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_BAR0, NVME_REG_CSTS, 3, &v32, false), EINVAL);
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_BAR0, NVME_REG_CSTS + 2, 4, &v32, false), EINVAL);
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_BAR0, ~0ull - 3, 4, &v32, false), EINVAL);
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_CONFIG, 252, 8, b8, false), EINVAL);
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_CONFIG, 256, 1, b8, true), EINVAL);
	assert_int_equal(reg_rw(fd, 5, 0, 4, &v32, false), EINVAL);
	assert_int_equal(reg_rw(fd, 4, 1 << 20, 4, &v32, false), EINVAL);
	/* and the good ones: class code, BAR sizing */
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_CONFIG, 8, 4, &v32, false), 0);
	assert_int_equal(v32 >> 8, 0x010802);
	v32 = 0xffffffff;
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_CONFIG, 0x10, 4, &v32, true), 0);
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_CONFIG, 0x10, 4, &v32, false), 0);
	assert_int_equal(v32 & 0xf, 0x4);	     /* 64-bit memory BAR */
	assert_int_equal(~(v32 & ~0xfu) + 1, 16384); /* the BAR's size */
	close(fd);
	close(mfd);
	still_serving(&t);
	assert_int_equal(tsrv_stop(&t), 0);
}

/*
 * A controller whose every memory access is a message: admin queues and an
 * Identify data buffer in memory mapped WITHOUT an fd. This test plays the
 * host: registers through REGION_WRITE, then answers the server's
 * DMA_READ/WRITE until the completion shows up in its own memory.
 */
static void test_dma_without_fd(void **state)
{
	const uint64_t base = 0x40000000ull, asq = base, acq = base + 0x1000, data = base + 0x2000;
	static uint8_t mem[0x3000] __attribute__((aligned(4096)));
	struct nvmk_vfu_irq_set is = {20, NVMK_VFU_IRQ_DATA_EVENTFD | NVMK_VFU_IRQ_ACTION_TRIGGER,
				      NVMK_VFU_IRQ_MSIX, 0, 1};
	struct nvme_sqe sqe = {0};
	struct tsrv t;
	uint32_t v;
	uint64_t v64;
	int fd, efd;

	(void)state;
	assert_int_equal(tsrv_start(&t, "--serial", "NOFD-PATH", NULL), 0);
	fd = unix_connect(t.sock);
	assert_int_equal(hello(fd), 0);
	memset(mem, 0, sizeof(mem));
	dma_mem = mem;
	dma_base = base;
	dma_len = sizeof(mem);
	dma_msgs = 0;
	assert_int_equal(
	    dma_map(fd, base, sizeof(mem), 0, -1, NVMK_VFU_DMA_READ_OK | NVMK_VFU_DMA_WRITE_OK), 0);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	raw_send(fd, NVMK_VFU_DEVICE_SET_IRQS, &is, sizeof(is), &efd, 1);
	assert_int_equal(raw_reply(fd, NULL, 0, NULL), 0);

	/* admin queues of 2 entries, enable (Base 2.0 3.5.1) */
	v = (1u << 16) | 1u;
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_BAR0, NVME_REG_AQA, 4, &v, true), 0);
	v64 = asq;
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_BAR0, NVME_REG_ASQ, 8, &v64, true), 0);
	v64 = acq;
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_BAR0, NVME_REG_ACQ, 8, &v64, true), 0);
	v = NVME_CC_EN | NVME_CC_SET_IOSQES(6) | NVME_CC_SET_IOCQES(4);
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_BAR0, NVME_REG_CC, 4, &v, true), 0);
	for (int i = 0; i < 500; i++) {
		assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_BAR0, NVME_REG_CSTS, 4, &v, false), 0);
		if (v & NVME_CSTS_RDY)
			break;
		tsleep_ms(2);
	}
	assert_true(v & NVME_CSTS_RDY);

	/* Identify Controller into the data page, SQ tail doorbell trapped */
	sqe.opc = NVME_ADM_IDENTIFY;
	sqe.cid = 0x55;
	sqe.prp1 = data;
	sqe.cdw10 = 1; /* CNS 01h */
	memcpy(mem, &sqe, sizeof(sqe));
	v = 1;
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_BAR0, NVME_REG_DBS, 4, &v, true), 0);
	/* serve DMA messages until the CQE's phase tag turns 1 */
	for (int i = 0; i < 2000; i++) {
		struct pollfd pf = {fd, POLLIN, 0};
		static uint8_t buf[NVMK_VFU_MSG_MAX(1 << 20)];
		int fds[4];
		unsigned nfds;
		struct nvme_cqe cqe;

		memcpy(&cqe, mem + 0x1000, sizeof(cqe));
		if (cqe.status & 1) {
			const struct nvme_id_ctrl *id = (const void *)(mem + 0x2000);

			assert_int_equal(cqe.cid, 0x55);
			assert_int_equal(cqe.status >> 1, 0);
			assert_memory_equal(id->sn, "NOFD-PATH", 9);
			break;
		}
		if (poll(&pf, 1, 5) == 1) {
			assert_true(nvmk_vfu_recv(fd, buf, sizeof(buf), fds, 4, &nfds) > 0);
			serve(fd, buf);
		}
	}
	assert_true(((struct nvme_cqe *)(mem + 0x1000))->status & 1);
	assert_true(dma_msgs >= 3); /* SQE read, data write, CQE write */
	{
		uint64_t n = 0;

		for (int i = 0; i < 100 && read(efd, &n, 8) != 8; i++)
			tsleep_ms(5);
		assert_int_equal(n, 1); /* MSI-X vector 0 fired after the CQE was written */
	}
	/* consumed: CQ head doorbell (a CQ of 2 holds one entry) */
	v = 1;
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_BAR0, NVME_REG_DBS + 4, 4, &v, true), 0);
	/* an access outside the map fails the command, never touches anything */
	sqe.cid = 0x56;
	sqe.prp1 = base + 0x100000;
	memcpy(mem + 64, &sqe, sizeof(sqe));
	v = 0;
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_BAR0, NVME_REG_DBS, 4, &v, true), 0);
	for (int i = 0; i < 2000; i++) {
		struct pollfd pf = {fd, POLLIN, 0};
		static uint8_t buf[NVMK_VFU_MSG_MAX(1 << 20)];
		int fds[4];
		unsigned nfds;
		struct nvme_cqe cqe;

		memcpy(&cqe, mem + 0x1000 + 16, sizeof(cqe));
		if ((cqe.status & 1) == 1) {
			assert_int_equal(cqe.cid, 0x56);
			assert_int_equal((cqe.status >> 1) & 0xff, NVME_SC_DATA_XFER_ERROR);
			break;
		}
		if (poll(&pf, 1, 5) == 1) {
			assert_true(nvmk_vfu_recv(fd, buf, sizeof(buf), fds, 4, &nfds) > 0);
			serve(fd, buf);
		}
	}
	assert_int_equal(((struct nvme_cqe *)(mem + 0x1000 + 16))->cid, 0x56);
	close(efd);
	close(fd);
	assert_int_equal(tsrv_stop(&t), 0);
	dma_mem = NULL;
}

/* ---- --persist: a new client's memory at the old addresses ---- */

#define PB_BASE 0x40000000ull /* ASQ; ACQ at +0x1000, data at +0x2000 */
#define PB_SIZE 0x3000u

/* A memfd of PB_SIZE bytes and its mapping in this process. */
static int pb_memfd(uint8_t **mem)
{
	int mfd = memfd_create("pb", MFD_CLOEXEC);

	assert_true(mfd >= 0);
	assert_int_equal(ftruncate(mfd, PB_SIZE), 0);
	*mem = mmap(NULL, PB_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	assert_true(*mem != MAP_FAILED);
	return mfd;
}

static void reg32(int fd, uint32_t off, uint32_t v)
{
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_BAR0, off, 4, &v, true), 0);
}

/* Admin queues of 4 entries at PB_BASE (SQ) and PB_BASE + 4 KiB (CQ), then
 * CC.EN, and wait for CSTS.RDY (1 s). */
static void pb_enable(int fd)
{
	uint32_t v = 0;

	reg32(fd, NVME_REG_AQA, (3u << 16) | 3u);
	reg32(fd, NVME_REG_ASQ, (uint32_t)PB_BASE);
	reg32(fd, NVME_REG_ASQ + 4, 0);
	reg32(fd, NVME_REG_ACQ, (uint32_t)PB_BASE + 0x1000);
	reg32(fd, NVME_REG_ACQ + 4, 0);
	reg32(fd, NVME_REG_CC, NVME_CC_EN | NVME_CC_SET_IOSQES(6) | NVME_CC_SET_IOCQES(4));
	for (int i = 0; i < 500; i++) {
		assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_BAR0, NVME_REG_CSTS, 4, &v, false), 0);
		if (v & NVME_CSTS_RDY)
			break;
		tsleep_ms(2);
	}
	assert_true(v & NVME_CSTS_RDY);
}

/* Identify Controller at admin SQ slot @slot, its completion delayed 400 ms. */
static void pb_held_identify(struct tsrv *t, int fd, uint8_t *mem, unsigned slot, uint16_t cid)
{
	struct nvme_sqe sqe = {0};

	assert_true(tsrv_ok(t, "{\"cmd\":\"fault\",\"kind\":\"delay\",\"qid\":0,\"opcode\":6,"
			       "\"count\":1,\"delay_us\":400000}"));
	sqe.opc = NVME_ADM_IDENTIFY;
	sqe.cid = cid;
	sqe.prp1 = PB_BASE + 0x2000;
	sqe.cdw10 = 1;
	memcpy(mem + slot * 64, &sqe, sizeof(sqe));
	reg32(fd, NVME_REG_DBS, slot + 1); /* SQ 0 tail */
	/* fetched and executed (the data page is written), completion held */
	for (int i = 0; i < 400 && !mem[0x2000 + 4]; i++)
		tsleep_ms(2);
	assert_true(mem[0x2000 + 4] != 0);
}

static bool cqe_posted(const uint8_t *mem, unsigned slot, uint16_t cid)
{
	struct nvme_cqe cqe;

	memcpy(&cqe, mem + 0x1000 + slot * 16, sizeof(cqe));
	return (cqe.status & 1) && cqe.cid == cid;
}

/*
 * The previous client went with a command held in the device. A new client
 * that maps the same memory (same file, offset, IOVA) gets the completion
 * there, with no reset. One that maps other memory at those addresses gets a
 * reset first: the held command must not complete into its memory.
 */
static void test_persist_memory_identity(void **state)
{
	const uint32_t rw = NVMK_VFU_DMA_READ_OK | NVMK_VFU_DMA_WRITE_OK;
	uint8_t *mem1, *mem2;
	struct tsrv t;
	uint32_t v;
	long long resets;
	int fd, mfd1, mfd2;

	(void)state;
	assert_int_equal(tsrv_start(&t, "--persist", NULL), 0);
	mfd1 = pb_memfd(&mem1);
	mfd2 = pb_memfd(&mem2);

	/* client A: admin queues of 4 entries in memfd 1, enabled */
	fd = unix_connect(t.sock);
	assert_int_equal(hello(fd), 0);
	assert_int_equal(dma_map(fd, PB_BASE, PB_SIZE, 0, mfd1, rw), 0);
	pb_enable(fd);
	pb_held_identify(&t, fd, mem1, 0, 0x51);
	close(fd);
	assert_int_equal(tsrv_wait_stat(&t, "client.connected", 0), 0);
	resets = tsrv_stat(&t, "function_resets");

	/* client B maps the same memory: the held completion lands in it */
	fd = unix_connect(t.sock);
	assert_int_equal(hello(fd), 0);
	assert_int_equal(dma_map(fd, PB_BASE, PB_SIZE, 0, mfd1, rw), 0);
	for (int i = 0; i < 500 && !cqe_posted(mem1, 0, 0x51); i++)
		tsleep_ms(2);
	assert_true(cqe_posted(mem1, 0, 0x51));
	assert_int_equal(tsrv_stat(&t, "resume_refused"), 0);
	assert_int_equal(tsrv_stat(&t, "function_resets"), resets);
	/* B drives it now: consumes the entry, and leaves with another held */
	reg32(fd, NVME_REG_DBS + 4, 1); /* CQ 0 head */
	memset(mem1 + 0x2000, 0, 0x1000);
	pb_held_identify(&t, fd, mem1, 1, 0x52);
	close(fd);
	assert_int_equal(tsrv_wait_stat(&t, "client.connected", 0), 0);

	/* client C maps other memory at those addresses: reset before the map */
	fd = unix_connect(t.sock);
	assert_int_equal(hello(fd), 0);
	assert_int_equal(dma_map(fd, PB_BASE, PB_SIZE, 0, mfd2, rw), 0);
	assert_int_equal(tsrv_stat(&t, "resume_refused"), 1);
	assert_int_equal(tsrv_stat(&t, "function_resets"), resets + 1);
	assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_BAR0, NVME_REG_CSTS, 4, &v, false), 0);
	assert_false(v & NVME_CSTS_RDY);
	tsleep_ms(600); /* past the held completion's delay */
	for (unsigned i = 0; i < PB_SIZE; i++)
		if (mem2[i])
			fail_msg("byte %u of the new client's memory was written", i);
	assert_false(cqe_posted(mem1, 1, 0x52));
	close(fd);
	munmap(mem1, PB_SIZE);
	munmap(mem2, PB_SIZE);
	close(mfd1);
	close(mfd2);
	assert_int_equal(tsrv_stop(&t), 0);
}

/* ---- doorbells on the sparse-mmap'd page, scanned by the emulator ---- */

/* The BAR0 doorbell page as the client maps it (DEVICE_GET_REGION_INFO's
 * sparse area and fd). */
static volatile uint32_t *map_db_page(int fd, size_t *len)
{
	struct nvmk_vfu_region_info ri = {.argsz = 64, .index = NVMK_VFU_PCI_BAR0};
	static uint8_t buf[4096];
	struct nvmk_vfu_cap_sparse cap;
	struct nvmk_vfu_sparse_area area;
	struct nvmk_vfu_hdr h;
	struct pollfd pf = {fd, POLLIN, 0};
	unsigned nfds = 0;
	int fds[4];
	void *p;

	raw_send(fd, NVMK_VFU_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0);
	assert_int_equal(poll(&pf, 1, 5000), 1);
	assert_true(nvmk_vfu_recv(fd, buf, sizeof(buf), fds, 4, &nfds) > 0);
	memcpy(&h, buf, sizeof(h));
	assert_false(h.flags & NVMK_VFU_F_ERROR);
	assert_int_equal(nfds, 1);
	memcpy(&ri, buf + sizeof(h), sizeof(ri));
	assert_true(ri.flags & NVMK_VFU_REGION_FLAG_MMAP);
	assert_int_equal(ri.cap_offset, sizeof(ri));
	memcpy(&cap, buf + sizeof(h) + ri.cap_offset, sizeof(cap));
	assert_int_equal(cap.hdr.id, NVMK_VFU_CAP_SPARSE_MMAP);
	assert_int_equal(cap.nr_areas, 1);
	memcpy(&area, buf + sizeof(h) + ri.cap_offset + sizeof(cap), sizeof(area));
	assert_int_equal(area.offset, NVME_REG_DBS);
	p = mmap(NULL, area.size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0],
		 (off_t)(ri.offset + area.offset));
	close(fds[0]);
	assert_true(p != MAP_FAILED);
	*len = area.size;
	return p;
}

static bool wait_cqe(const uint8_t *mem, unsigned slot, uint16_t cid, struct nvme_cqe *out)
{
	for (int i = 0; i < 2500; i++) {
		memcpy(out, mem + 0x1000 + slot * 16, sizeof(*out));
		if ((__atomic_load_n(&((const struct nvme_cqe *)(mem + 0x1000))[slot].status,
				     __ATOMIC_ACQUIRE) &
		     1) &&
		    out->cid == cid)
			return true;
		tsleep_ms(2);
	}
	return false;
}

/*
 * A doorbell is a store on the mapped page: no message, no poller thread of
 * the server -- the emulator's worker finds it. An invalid value stored
 * there is reported as one written to the register is (Asynchronous Event,
 * Error, Invalid Doorbell Write Value), and a controller reset zeroes the
 * page.
 */
static void test_mmap_doorbells(void **state)
{
	const uint32_t rw = NVMK_VFU_DMA_READ_OK | NVMK_VFU_DMA_WRITE_OK;
	volatile uint32_t *db;
	struct nvme_sqe sqe = {0};
	struct nvme_cqe cqe;
	struct tsrv t;
	uint8_t *mem;
	size_t dblen;
	uint32_t v;
	int fd, mfd;

	(void)state;
	assert_int_equal(tsrv_start(&t, NULL), 0);
	mfd = pb_memfd(&mem);
	fd = unix_connect(t.sock);
	assert_int_equal(hello(fd), 0);
	assert_int_equal(dma_map(fd, PB_BASE, PB_SIZE, 0, mfd, rw), 0);
	db = map_db_page(fd, &dblen);
	pb_enable(fd);

	/* Identify Controller twice, every doorbell a store on the page */
	for (unsigned slot = 0; slot < 2; slot++) {
		sqe.opc = NVME_ADM_IDENTIFY;
		sqe.cid = (uint16_t)(0x60 + slot);
		sqe.prp1 = PB_BASE + 0x2000;
		sqe.cdw10 = 1;
		memcpy(mem + slot * 64, &sqe, sizeof(sqe));
		__atomic_store_n(&db[0], slot + 1, __ATOMIC_RELEASE); /* SQ 0 tail */
		assert_true(wait_cqe(mem, slot, (uint16_t)(0x60 + slot), &cqe));
		assert_int_equal(cqe.status >> 1, 0);
		__atomic_store_n(&db[1], slot + 1, __ATOMIC_RELEASE); /* CQ 0 head */
	}
	/* an Asynchronous Event Request, then a tail of 200 (the SQ has 4) */
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_ADM_ASYNC_EVENT;
	sqe.cid = 0x70;
	memcpy(mem + 2 * 64, &sqe, sizeof(sqe));
	__atomic_store_n(&db[0], 3, __ATOMIC_RELEASE);
	assert_int_equal(tsrv_wait_stat(&t, "admin.0x0c", 1), 1); /* fetched, held */
	__atomic_store_n(&db[0], 200, __ATOMIC_RELEASE);
	assert_true(wait_cqe(mem, 2, 0x70, &cqe));
	assert_int_equal(cqe.status >> 1, 0);
	assert_int_equal(NVME_AER_DW0_TYPE(cqe.dw0), NVME_AER_TYPE_ERROR);
	assert_int_equal(NVME_AER_DW0_INFO(cqe.dw0), 0x01);
	__atomic_store_n(&db[1], 3, __ATOMIC_RELEASE);
	/* a valid value again: the queue goes on (Identify at slot 3) */
	sqe.opc = NVME_ADM_IDENTIFY;
	sqe.cid = 0x63;
	sqe.prp1 = PB_BASE + 0x2000;
	sqe.cdw10 = 1;
	memcpy(mem + 3 * 64, &sqe, sizeof(sqe));
	__atomic_store_n(&db[0], 0, __ATOMIC_RELEASE);
	assert_true(wait_cqe(mem, 3, 0x63, &cqe));
	assert_int_equal(cqe.status >> 1, 0);

	/* a controller reset zeroes the page */
	reg32(fd, NVME_REG_CC, 0);
	for (int i = 0; i < 500; i++) {
		assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_BAR0, NVME_REG_CSTS, 4, &v, false), 0);
		if (!(v & NVME_CSTS_RDY))
			break;
		tsleep_ms(2);
	}
	assert_false(v & NVME_CSTS_RDY);
	for (size_t i = 0; i < dblen / 4; i++)
		assert_int_equal(db[i], 0);
	munmap((void *)db, dblen);
	close(fd);
	munmap(mem, PB_SIZE);
	close(mfd);
	assert_int_equal(tsrv_stop(&t), 0);
}

/*
 * The server's worker keeps the last map it translated into (no lock per
 * DMA): an unmap must invalidate it. Identify once (the worker now holds the
 * queue map), unmap that map, ring again: the controller can no longer reach
 * its queue and fails (CSTS.CFS), writes nothing into the old memory, and the
 * server lives on (with a stale cached map it would touch unmapped memory).
 */
static void test_unmap_invalidates_cached_map(void **state)
{
	const uint32_t rw = NVMK_VFU_DMA_READ_OK | NVMK_VFU_DMA_WRITE_OK;
	volatile uint32_t *db;
	struct nvme_sqe sqe = {0};
	struct nvme_cqe cqe;
	struct tsrv t;
	uint8_t *mem;
	size_t dblen;
	uint32_t v = 0;
	int fd, mfd;

	(void)state;
	assert_int_equal(tsrv_start(&t, NULL), 0);
	mfd = pb_memfd(&mem);
	fd = unix_connect(t.sock);
	assert_int_equal(hello(fd), 0);
	assert_int_equal(dma_map(fd, PB_BASE, PB_SIZE, 0, mfd, rw), 0);
	db = map_db_page(fd, &dblen);
	pb_enable(fd);
	sqe.opc = NVME_ADM_IDENTIFY;
	sqe.cid = 0x40;
	sqe.prp1 = PB_BASE + 0x2000;
	sqe.cdw10 = 1;
	memcpy(mem, &sqe, sizeof(sqe));
	__atomic_store_n(&db[0], 1, __ATOMIC_RELEASE);
	assert_true(wait_cqe(mem, 0, 0x40, &cqe));
	assert_int_equal(cqe.status >> 1, 0);
	__atomic_store_n(&db[1], 1, __ATOMIC_RELEASE);

	assert_int_equal(dma_unmap(fd, PB_BASE, PB_SIZE), 0);
	sqe.cid = 0x41;
	memcpy(mem + 64, &sqe, sizeof(sqe));
	__atomic_store_n(&db[0], 2, __ATOMIC_RELEASE);
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(reg_rw(fd, NVMK_VFU_PCI_BAR0, NVME_REG_CSTS, 4, &v, false), 0);
		if (v & NVME_CSTS_CFS)
			break;
		tsleep_ms(2);
	}
	assert_true(v & NVME_CSTS_CFS);
	memcpy(&cqe, mem + 0x1000 + 16, sizeof(cqe));
	assert_int_equal(cqe.cid, 0); /* nothing completed into the unmapped memory */
	munmap((void *)db, dblen);
	close(fd);
	munmap(mem, PB_SIZE);
	close(mfd);
	assert_int_equal(tsrv_stop(&t), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handshake_rules),
	    cmocka_unit_test(test_malformed_messages),
	    cmocka_unit_test(test_dma_and_region_limits),
	    cmocka_unit_test(test_dma_without_fd),
	    cmocka_unit_test(test_persist_memory_identity),
	    cmocka_unit_test(test_mmap_doorbells),
	    cmocka_unit_test(test_unmap_invalidates_cached_map),
	};

	signal(SIGPIPE, SIG_IGN);
	if (!getenv("NVMK_TEST_VERBOSE"))
		nvmk_log_set_level(NVMK_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
