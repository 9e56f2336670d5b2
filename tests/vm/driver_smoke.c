/* SPDX-License-Identifier: MIT */
/*
 * driver_smoke - the nvmekeep driver (include/nvmekeep/driver.h) over the
 * VFIO backing, on QEMU's NVMe controllers inside the test VM.
 *
 *   driver_smoke [ADDR...]    default: every NVMe function bound to vfio-pci
 *
 * Per controller: nvmk_ctrl_open (bring-up state machine on real registers),
 * active namespaces; per namespace: synchronous write/read/compare of a
 * buffer larger than MDTS (split + PRP lists over the backing's device
 * addresses: per-page physical addresses in no-IOMMU mode), asynchronous
 * write/read on an exclusive interrupt-mode qpair woken by MSI-X, compare
 * mismatch, flush, write zeroes; then nvmk_ctrl_reset and I/O again, close.
 * Output: "PASS <case>" / "FAIL <case>" lines and "N passed, M failed".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/dma.h"
#include "nvmekeep/driver.h"
#include "nvmekeep/log.h"

#define VM_PROG "driver "
#include "vm_report.h"

#define BIG_BYTES (1u << 20) /* above QEMU's default MDTS (512 KiB) */
#define BASE_LBA  4096u

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

struct waiter {
	bool done;
	struct nvmk_cpl cpl;
};

static void on_cpl(void *arg, const struct nvmk_cpl *cpl)
{
	struct waiter *w = arg;

	w->cpl = *cpl;
	w->done = true;
}

static int wait_for(struct nvmk_qpair *qp, struct waiter *w)
{
	int rounds = 0;

	while (!w->done && rounds++ < 100) {
		int r = nvmk_qpair_wait(qp, 100);

		if (r < 0 && r != -ETIMEDOUT)
			return r;
	}
	return w->done ? w->cpl.err : -ETIMEDOUT;
}

static void ns_cases(struct nvmk_ctrl *ctrl, const char *addr, uint32_t nsid)
{
	struct nvmk_ns *ns = NULL;
	struct nvmk_ns_info info;
	struct nvmk_qpair *qp = NULL;
	struct nvmk_dma_buf dbuf = {0};
	uint8_t *wbuf = malloc(BIG_BYTES), *rbuf = malloc(BIG_BYTES);
	uint32_t nlb;
	int err;

	if (!wbuf || !rbuf)
		goto out;
	err = nvmk_ns_open(ctrl, nsid, 0, &ns);
	result(!err, "%s ns%u open", addr, nsid);
	if (err)
		goto out;
	nvmk_ns_info(ns, &info);
	nlb = BIG_BYTES >> info.lba_shift;

	/* synchronous, bounced, split above MDTS */
	fill(wbuf, BIG_BYTES, nsid);
	err = nvmk_ns_write(ns, NULL, wbuf, BASE_LBA, nlb);
	memset(rbuf, 0, BIG_BYTES);
	if (!err)
		err = nvmk_ns_read(ns, NULL, rbuf, BASE_LBA, nlb);
	result(!err && !memcmp(wbuf, rbuf, BIG_BYTES),
	       "%s ns%u sync write+read 1 MiB (%u-byte blocks, mdts %zu) (%d)", addr, nsid,
	       info.block_size, nvmk_ctrl_mdts_bytes(ctrl), err);
	err = nvmk_ns_compare(ns, NULL, wbuf, BASE_LBA, nlb);
	result(!err, "%s ns%u compare equal (%d)", addr, nsid, err);
	wbuf[12345] ^= 0xff;
	err = nvmk_ns_compare(ns, NULL, wbuf, BASE_LBA, nlb);
	result(err == -EILSEQ, "%s ns%u compare mismatch -> -EILSEQ (%d)", addr, nsid, err);
	err = nvmk_ns_flush(ns, NULL);
	result(!err, "%s ns%u flush (%d)", addr, nsid, err);

	/* asynchronous on an exclusive interrupt-mode qpair */
	err = nvmk_qpair_create(ctrl, NULL, &qp);
	if (!err)
		err = nvmk_ctrl_dma_alloc(ctrl, BIG_BYTES, &dbuf);
	if (!err) {
		struct waiter w = {0};

		fill(dbuf.mem.vaddr, BIG_BYTES, nsid + 100);
		memcpy(wbuf, dbuf.mem.vaddr, BIG_BYTES);
		err = nvmk_ns_submit_write(ns, qp, &dbuf, 0, BASE_LBA, nlb, 0, on_cpl, &w);
		if (!err)
			err = wait_for(qp, &w);
		if (!err) {
			memset(dbuf.mem.vaddr, 0, BIG_BYTES);
			w.done = false;
			err = nvmk_ns_submit_read(ns, qp, &dbuf, 0, BASE_LBA, nlb, 0, on_cpl, &w);
			if (!err)
				err = wait_for(qp, &w);
		}
	}
	result(!err && !memcmp(wbuf, dbuf.mem.vaddr, BIG_BYTES),
	       "%s ns%u async write+read 1 MiB on qpair %u, MSI-X wakeups (%d)", addr, nsid,
	       qp ? nvmk_qpair_id(qp) : 0, err);

	err = nvmk_ns_write_zeroes(ns, NULL, BASE_LBA, 8, 0);
	if (!err)
		err = nvmk_ns_read(ns, NULL, rbuf, BASE_LBA, 8);
	memset(wbuf, 0, 8u << info.lba_shift);
	result(!err && !memcmp(rbuf, wbuf, 8u << info.lba_shift),
	       "%s ns%u write zeroes reads back zeroes (%d)", addr, nsid, err);
out:
	if (dbuf.mem.vaddr)
		nvmk_ctrl_dma_free(ctrl, &dbuf);
	nvmk_qpair_destroy(qp);
	nvmk_ns_close(ns);
	free(wbuf);
	free(rbuf);
}

static void ctrl_cases(const char *addr)
{
	struct nvmk_ctrl_opts opts = {.max_io_queues = 4}; /* one for get_qpair, more to create */
	struct nvmk_dma_pool *pool = NULL;
	struct nvmk_backing *b = NULL;
	struct nvmk_ctrl *ctrl = NULL;
	uint32_t nsids[16];
	int err, n, i;

	err = nvmk_backing_vfio_open(addr, NULL, &b);
	if (err) {
		result(false, "%s vfio open (%d)", addr, err);
		return;
	}
	g_mode = nvmk_backing_vfio_is_noiommu(b) ? "noiommu" : "type1";
	if (nvmk_backing_vfio_is_noiommu(b)) {
		/*
		 * Without an IOMMU the device sees physical addresses: a queue
		 * larger than 4 KiB must be physically contiguous (CAP.CQR), which
		 * 4 KiB memfd pages are not. The private pool on hugetlb is.
		 */
		err = nvmk_dma_pool_create(1536, NVMK_DMA_POOL_HUGETLB_TRY, &pool);
		result(!err, "%s private DMA pool on hugetlb (%d)", addr, err);
		if (err)
			goto out;
		b->pool = pool;
	}
	err = nvmk_ctrl_open(b, &opts, &ctrl);
	result(!err, "%s ctrl open (%u I/O queues) (%d)", addr, err ? 0 : nvmk_ctrl_io_queues(ctrl),
	       err);
	if (err)
		goto out;
	n = nvmk_ctrl_active_ns(ctrl, nsids, 16);
	result(n >= 1, "%s active namespaces: %d", addr, n);
	for (i = 0; i < n; i++)
		ns_cases(ctrl, addr, nsids[i]);

	err = nvmk_ctrl_reset(ctrl);
	result(!err, "%s ctrl reset (%d)", addr, err);
	if (!err && n >= 1) {
		struct nvmk_ns *ns = NULL;
		uint8_t buf[4096], back[4096];

		memset(buf, 0x5a, sizeof(buf));
		err = nvmk_ns_open(ctrl, nsids[0], 0, &ns);
		if (!err)
			err = nvmk_ns_write(ns, NULL, buf, 0, 8);
		if (!err)
			err = nvmk_ns_read(ns, NULL, back, 0, 8);
		result(!err && !memcmp(buf, back, sizeof(buf)), "%s I/O after reset (%d)", addr,
		       err);
		nvmk_ns_close(ns);
	}
	nvmk_ctrl_close(ctrl);
	result(!(nvmk_backing_read32(b, NVME_REG_CC) & NVME_CC_EN), "%s ctrl close (CC.EN=0)",
	       addr);
out:
	nvmk_backing_destroy(b);
	nvmk_dma_pool_destroy(pool);
}

int main(int argc, char **argv)
{
	struct nvmk_pci_func f[16];
	size_t n = 0, i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	nvmk_log_set_level(NVMK_LOG_WARN);
	if (argc > 1) {
		for (int a = 1; a < argc; a++)
			ctrl_cases(argv[a]);
	} else if (nvmk_pci_list_nvme(NULL, f, 16, &n) == 0) {
		for (i = 0; i < n && i < 16; i++)
			if (!strcmp(f[i].driver, "vfio-pci"))
				ctrl_cases(f[i].addr);
	}
	if (!g_passed && !g_failed)
		result(false, "no NVMe function bound to vfio-pci");
	printf("%d passed, %d failed\n", g_passed, g_failed);
	return g_failed ? 1 : 0;
}
