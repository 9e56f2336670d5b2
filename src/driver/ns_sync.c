// SPDX-License-Identifier: MIT
/*
 * The synchronous namespace wrappers (nvmk_ns_read, ...) of the NVMe-queue
 * path: any buffer (bounced through a DMA buffer when it is not DMA memory
 * of the controller), split into parts of at most 8 commands, waited for on
 * the given qpair or the calling thread's.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "driver/io_ops.h"
#include "driver/ns_io.h"
#include "driver/ns_sync.h"
#include "driver/queue.h"

/* Why a sync wrapper got no qpair: failed controller, servicing, or memory. */
static int sync_no_qp_err(const struct nvmk_ctrl *ctrl)
{
	if (drv_failed(ctrl))
		return drv_failed(ctrl);
	/* relaxed: servicing in progress, the caller retries later */
	if (atomic_load_explicit(&ctrl->svc_quiesced, memory_order_relaxed))
		return -EAGAIN;
	return -ENOMEM;
}

void drv_sync_cb(void *arg, const struct nvmk_cpl *cpl)
{
	struct drv_sync *s = arg;

	s->cpl = *cpl;
	/* release: the completion before the flag the waiter polls */
	atomic_store_explicit(&s->done, 1, memory_order_release);
}

void drv_sync_progress(struct nvmk_qpair *qp)
{
	if (qp->mode == NVMK_CPL_INTERRUPT) {
		/* shared queues: another thread may take our wakeup, look often */
		nvmk_qpair_wait(qp, qp->shared ? 1 : -1);
	} else if (nvmk_qpair_process_completions(qp, 0) == 0) {
		sched_yield();
	}
}

/* Wait for @s. Every submitted command completes exactly once, also when the
 * controller fails (recovery completes it), so this loop ends. */
int drv_sync_wait(struct nvmk_qpair *qp, struct drv_sync *s)
{
	/* acquire: pairs with drv_sync_cb */
	while (!atomic_load_explicit(&s->done, memory_order_acquire))
		drv_sync_progress(qp);
	drv_set_last_status(s->cpl.status);
	return s->cpl.err;
}

/* Submit a drv_io synchronously: parts of at most 8 commands at a time. */
static int sync_io(struct nvmk_ns *ns, struct nvmk_qpair *qp, struct drv_io *io)
{
	uint64_t per = io->max_blocks;
	uint64_t done = 0, total = io->nlb;
	size_t off0 = io->off;
	unsigned fan = qp->q.ntrk > 9 ? 8 : 1;

	per *= fan;
	while (done < total) {
		struct drv_sync s = {0};
		struct drv_io part = *io;
		int rc;

		part.slba = io->slba + done;
		part.nlb = total - done < per ? total - done : per;
		part.off = off0 + ((size_t)done << ns->lba_shift);
		part.cb = drv_sync_cb;
		part.arg = &s;
		for (;;) {
			rc = drv_ns_submit_io(ns, qp, &part);
			if (rc != -EAGAIN)
				break;
			drv_sync_progress(qp);
		}
		if (rc) {
			drv_set_last_status(0);
			return rc;
		}
		rc = drv_sync_wait(qp, &s);
		if (rc)
			return rc;
		done += part.nlb;
	}
	return 0;
}

/* True when every element lies inside one DMA block of the controller. */
static bool sync_iov_mapped(struct nvmk_ctrl *ctrl, const struct iovec *iov, int iovcnt)
{
	for (int i = 0; i < iovcnt; i++) {
		uint64_t iova;
		size_t contig;
		const char *b = iov[i].iov_base;

		if (nvmk_backing_iova(ctrl->b, b, &iova, &contig))
			return false;
		if (nvmk_backing_iova(ctrl->b, b + iov[i].iov_len - 1, &iova, &contig))
			return false;
	}
	return true;
}

static int sync_rwv(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc, const struct iovec *iov,
		    int iovcnt, uint64_t slba, uint32_t nlb)
{
	return ns->ops->sync_rwv(ns, qp, opc, iov, iovcnt, slba, nlb);
}

int drv_nvme_sync_rwv(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
		      const struct iovec *iov, int iovcnt, uint64_t slba, uint32_t nlb)
{
	struct drv_io io = {.opc = opc, .slba = slba, .nlb = nlb, .max_blocks = ns->max_blocks};
	struct nvmk_dma_buf bounce;
	uint64_t len;
	int rc;

	rc = drv_sync_check(ns, qp);
	if (rc)
		return rc;
	rc = ns_iov_len(iov, iovcnt, &len);
	if (rc || nlb == 0 || len != ((uint64_t)nlb << ns->lba_shift))
		return -EINVAL;
	qp = drv_sync_qp(ns, qp);
	if (!qp)
		return sync_no_qp_err(ns->ctrl);
	if (sync_iov_mapped(ns->ctrl, iov, iovcnt) && ns_iov_rules(iov, iovcnt) == 0) {
		io.iov = iov;
		io.iovcnt = iovcnt;
		return sync_io(ns, qp, &io);
	}
	/* Slow path: not DMA memory of this controller (or not PRP-shaped):
	 * bounce through a DMA buffer for this call. */
	rc = nvmk_ctrl_dma_alloc(ns->ctrl, len, &bounce);
	if (rc)
		return rc;
	if (NVME_OPC_XFER(opc) & NVME_XFER_HOST_TO_CTRL) {
		size_t o = 0;

		for (int i = 0; i < iovcnt; i++) {
			memcpy((char *)bounce.mem.vaddr + o, iov[i].iov_base, iov[i].iov_len);
			o += iov[i].iov_len;
		}
	}
	io.buf = &bounce;
	rc = sync_io(ns, qp, &io);
	if (rc == 0 && (NVME_OPC_XFER(opc) & NVME_XFER_CTRL_TO_HOST)) {
		size_t o = 0;

		for (int i = 0; i < iovcnt; i++) {
			memcpy(iov[i].iov_base, (char *)bounce.mem.vaddr + o, iov[i].iov_len);
			o += iov[i].iov_len;
		}
	}
	nvmk_ctrl_dma_free(ns->ctrl, &bounce);
	return rc;
}

int nvmk_ns_read(struct nvmk_ns *ns, struct nvmk_qpair *qp, void *buf, uint64_t slba, uint32_t nlb)
{
	struct iovec v = {buf, (size_t)nlb << ns->lba_shift};

	return sync_rwv(ns, qp, NVME_CMD_READ, &v, 1, slba, nlb);
}

int nvmk_ns_write(struct nvmk_ns *ns, struct nvmk_qpair *qp, const void *buf, uint64_t slba,
		  uint32_t nlb)
{
	struct iovec v = {(void *)buf, (size_t)nlb << ns->lba_shift};

	return sync_rwv(ns, qp, NVME_CMD_WRITE, &v, 1, slba, nlb);
}

int nvmk_ns_compare(struct nvmk_ns *ns, struct nvmk_qpair *qp, const void *buf, uint64_t slba,
		    uint32_t nlb)
{
	struct iovec v = {(void *)buf, (size_t)nlb << ns->lba_shift};

	return sync_rwv(ns, qp, NVME_CMD_COMPARE, &v, 1, slba, nlb);
}

int nvmk_ns_readv(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct iovec *iov, int iovcnt,
		  uint64_t slba, uint32_t nlb)
{
	return sync_rwv(ns, qp, NVME_CMD_READ, iov, iovcnt, slba, nlb);
}

int nvmk_ns_writev(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct iovec *iov, int iovcnt,
		   uint64_t slba, uint32_t nlb)
{
	return sync_rwv(ns, qp, NVME_CMD_WRITE, iov, iovcnt, slba, nlb);
}

int nvmk_ns_flush(struct nvmk_ns *ns, struct nvmk_qpair *qp)
{
	return ns->ops->sync_flush(ns, qp);
}

int drv_nvme_sync_flush(struct nvmk_ns *ns, struct nvmk_qpair *qp)
{
	struct drv_sync s = {0};
	int rc;

	rc = drv_sync_check(ns, qp);
	if (rc)
		return rc;
	qp = drv_sync_qp(ns, qp);
	if (!qp)
		return -ENODEV;
	while ((rc = drv_nvme_submit_flush(ns, qp, drv_sync_cb, &s)) == -EAGAIN)
		drv_sync_progress(qp);
	return rc ? rc : drv_sync_wait(qp, &s);
}

int nvmk_ns_write_zeroes(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint64_t slba, uint64_t nlb,
			 uint32_t io_flags)
{
	return ns->ops->sync_write_zeroes(ns, qp, slba, nlb, io_flags);
}

int drv_nvme_sync_write_zeroes(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint64_t slba,
			       uint64_t nlb, uint32_t io_flags)
{
	struct drv_io io = {.opc = NVME_CMD_WRITE_ZEROES,
			    .cdw12 = ns_rw_flags(io_flags) |
				     ((io_flags & NVMK_IO_DEAC) ? NVME_RW_DEAC : 0),
			    .slba = slba,
			    .nlb = nlb,
			    .max_blocks = NVME_MAX_NLB};
	int rc;

	rc = drv_sync_check(ns, qp);
	if (rc)
		return rc;
	if (nlb == 0)
		return -EINVAL;
	qp = drv_sync_qp(ns, qp);
	if (!qp)
		return -ENODEV;
	return sync_io(ns, qp, &io);
}

int nvmk_ns_deallocate(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct nvmk_range *ranges,
		       unsigned nr)
{
	return ns->ops->sync_deallocate(ns, qp, ranges, nr);
}

int drv_nvme_sync_deallocate(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			     const struct nvmk_range *ranges, unsigned nr)
{
	struct drv_sync s = {0};
	int rc;

	rc = drv_sync_check(ns, qp);
	if (rc)
		return rc;
	qp = drv_sync_qp(ns, qp);
	if (!qp)
		return -ENODEV;
	while ((rc = drv_nvme_submit_deallocate(ns, qp, ranges, nr, drv_sync_cb, &s)) == -EAGAIN)
		drv_sync_progress(qp);
	return rc ? rc : drv_sync_wait(qp, &s);
}
