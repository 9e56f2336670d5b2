// SPDX-License-Identifier: MIT
/*
 * Admin queue: synchronous commands for the control path. One command at a
 * time is in flight from the host side (admin_lock held from submit until it
 * completes or times out), plus the Asynchronous Event Requests, which stay
 * outstanding and complete whenever the controller has something to report.
 * The waiter processes the admin CQ itself, so no other thread is needed
 * for an admin command to finish.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "driver/queue.h"

struct admin_wait {
	bool done;
	struct nvmk_cpl cpl;
};

/* Runs with admin_lock held (inside the drain), so plain stores suffice. */
static void admin_sync_done(void *arg, const struct nvmk_cpl *cpl)
{
	struct admin_wait *w = arg;

	w->cpl = *cpl;
	w->done = true;
}

int drv_admin_init(struct nvmk_ctrl *ctrl)
{
	int rc;

	rc = drv_queue_alloc(ctrl, &ctrl->aq, 0, ctrl->admin_depth, "admin");
	if (rc)
		return rc;
	rc = nvmk_backing_dma_alloc(ctrl->b, DRV_PAGE_SIZE, "admin.data", &ctrl->admin_buf);
	if (rc) {
		drv_queue_free(ctrl, &ctrl->aq);
		return rc;
	}
	return 0;
}

void drv_admin_fini(struct nvmk_ctrl *ctrl)
{
	/* the controller is stopped (or its memory was kept, ctrl.c) */
	for (unsigned i = 0; i < DRV_RETIRED_BUFS; i++)
		nvmk_backing_dma_free(ctrl->b, &ctrl->retired[i]);
	nvmk_backing_dma_free(ctrl->b, &ctrl->admin_buf);
	drv_queue_free(ctrl, &ctrl->aq);
}

/* admin_lock held: give back what the device can no longer write, since it
 * was stopped after the command that left it behind timed out. */
static void admin_reap(struct nvmk_ctrl *ctrl)
{
	/* acquire: pairs with the release bumps (recovery.c) */
	uint32_t gen = atomic_load_explicit(&ctrl->disable_gen, memory_order_acquire);

	if (ctrl->admin_buf_busy && ctrl->admin_buf_gen != gen)
		ctrl->admin_buf_busy = false;
	for (unsigned i = 0; i < DRV_RETIRED_BUFS; i++)
		if (ctrl->retired[i].mem.vaddr && ctrl->retired_gen[i] != gen)
			nvmk_backing_dma_free(ctrl->b, &ctrl->retired[i]);
}

/* admin_lock held: @buf belonged to a command given up on; the device may
 * still write it. Keep it until the device is stopped (admin_reap). */
static void admin_retire(struct nvmk_ctrl *ctrl, struct nvmk_dma_buf *buf)
{
	/* acquire: as in admin_reap */
	uint32_t gen = atomic_load_explicit(&ctrl->disable_gen, memory_order_acquire);

	if (buf == &ctrl->admin_buf) {
		ctrl->admin_buf_busy = true;
		ctrl->admin_buf_gen = gen;
		return;
	}
	for (unsigned i = 0; i < DRV_RETIRED_BUFS; i++)
		if (!ctrl->retired[i].mem.vaddr) {
			ctrl->retired[i] = *buf;
			ctrl->retired_gen[i] = gen;
			memset(buf, 0, sizeof(*buf));
			return;
		}
	nvmk_err(ctrl->name, 0,
		 "%u timed-out admin data buffers already wait for a reset: leaking one (%zu "
		 "bytes)",
		 DRV_RETIRED_BUFS, buf->mem.size);
	nvmk_backing_dma_forget(ctrl->b, buf);
}

void drv_admin_poll_locked(struct nvmk_ctrl *ctrl)
{
	int n;

	if (drv_failed(ctrl))
		return;
	ctrl->aq.batching++;
	n = drv_q_drain(&ctrl->aq, 0);
	ctrl->aq.batching--;
	drv_q_ring_sq(&ctrl->aq);
	if (n < 0)
		drv_ctrl_fail(ctrl, -EIO, "invalid admin completion");
}

static void admin_irq_wait(struct nvmk_ctrl *ctrl, int ms)
{
	struct pollfd p = {.fd = ctrl->admin_irq_fd, .events = POLLIN};
	uint64_t v;

	if (p.fd < 0) {
		struct timespec ts = {0, (long)ms * 1000000L};

		nanosleep(&ts, NULL);
		return;
	}
	if (poll(&p, 1, ms) > 0 && read(p.fd, &v, sizeof(v)) < 0)
		(void)0; /* nonblocking eventfd already drained by another waiter */
}

int drv_admin_sync(struct nvmk_ctrl *ctrl, struct nvme_sqe *cmd, void *data, size_t len,
		   struct nvmk_cpl *cpl)
{
	struct admin_wait w = {0};
	struct nvmk_dma_buf big = {0};
	const struct nvmk_dma_buf *dbuf = &ctrl->admin_buf;
	struct drv_tracker *t;
	struct nvme_sqe *sqe;
	unsigned xfer = NVME_OPC_XFER(cmd->opc);
	bool submitted = false;
	uint64_t deadline;
	int rc;

	if (data && len > DRV_MAX_XFER)
		return -E2BIG;
	pthread_mutex_lock(&ctrl->admin_lock);
	admin_reap(ctrl);
	rc = drv_failed(ctrl);
	if (rc)
		goto out;
	if (data && len && (len > DRV_PAGE_SIZE || ctrl->admin_buf_busy)) {
		static _Atomic unsigned seq;
		char tag[32];

		/* too big for admin_buf, or admin_buf may still be written for a
		 * command that timed out: a buffer of its own. Pool tags are
		 * unique per owner: number them. */
		/* relaxed: a unique number, nothing is ordered by it */
		snprintf(tag, sizeof(tag), "admin.big%u",
			 atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed));
		rc = nvmk_backing_dma_alloc(ctrl->b, len, tag, &big);
		if (rc)
			goto out;
		dbuf = &big;
	}
	t = drv_trk_get(&ctrl->aq);
	if (!t) {
		rc = -EBUSY;
		goto out;
	}
	sqe = drv_q_slot(&ctrl->aq, 0);
	*sqe = *cmd;
	sqe->cid = t->cid;
	sqe->flags = 0; /* PRPs, no fusing */
	if (data && len) {
		/* data given: the driver owns PRP1/PRP2; otherwise the caller's
		 * (queue and doorbell buffer addresses) stand */
		struct drv_prp_list l = {t->prp_va, &t->prp_iova, 1};

		if (xfer & NVME_XFER_HOST_TO_CTRL)
			memcpy(dbuf->mem.vaddr, data, len);
		else
			memset(dbuf->mem.vaddr, 0, len);
		rc = drv_prp_build_buf(dbuf, 0, len, &l, &sqe->prp1, &sqe->prp2);
		if (rc) {
			drv_trk_put(&ctrl->aq, t);
			goto out;
		}
	}
	t->state = TRK_ACTIVE;
	t->opc = cmd->opc;
	t->cb = admin_sync_done;
	t->cb_arg = &w;
	drv_now_refresh(ctrl);
	deadline = drv_now(ctrl) + ctrl->opts.admin_timeout_ms;
	t->deadline = deadline;
	drv_q_commit(&ctrl->aq, 1);
	submitted = true;

	for (;;) {
		int n;

		ctrl->aq.batching++;
		n = drv_q_drain(&ctrl->aq, 0);
		ctrl->aq.batching--;
		drv_q_ring_sq(&ctrl->aq);
		if (n < 0) {
			drv_ctrl_fail(ctrl, -EIO, "invalid admin completion");
			if (!w.done) {
				t->cb = NULL; /* orphan: never completes into our stack */
				rc = -EIO;
			}
			break;
		}
		if (w.done)
			break;
		rc = drv_failed(ctrl);
		if (rc) {
			t->cb = NULL;
			break;
		}
		drv_now_refresh(ctrl);
		if (drv_now(ctrl) >= deadline) {
			int h = drv_reg_health(ctrl);

			t->cb = NULL;
			if (h) {
				drv_ctrl_fail(ctrl, h,
					      h == -ENODEV ? "surprise removal (CSTS all ones)"
							   : "controller fatal status (CSTS.CFS)");
				rc = h;
			} else {
				nvmk_err(ctrl->name, 0,
					 "admin command opcode 0x%02x cid 0x%04x timed "
					 "out after %u ms",
					 cmd->opc, t->cid, ctrl->opts.admin_timeout_ms);
				rc = -ETIMEDOUT;
				/* A controller that stops answering admin commands
				 * is reset by the admin thread (not here: the caller
				 * may be the bring-up or a reset itself). */
				atomic_store_explicit(
				    &ctrl->reset_req_epoch,
				    atomic_load_explicit(&ctrl->epoch, memory_order_acquire),
				    memory_order_relaxed);
				/* release: the epoch above before the request flag */
				atomic_store_explicit(&ctrl->need_reset, true,
						      memory_order_release);
			}
			break;
		}
		admin_irq_wait(ctrl, 1);
	}
	if (w.done) {
		rc = w.cpl.err;
		if (cpl)
			*cpl = w.cpl;
		if (data && len && (xfer & NVME_XFER_CTRL_TO_HOST))
			memcpy(data, dbuf->mem.vaddr, len);
	}
	/* given up on (timeout, failure): the device may still write the data
	 * buffer, so it is neither reused nor freed before the device stops */
	if (submitted && !w.done && data && len)
		admin_retire(ctrl, dbuf == &big ? &big : &ctrl->admin_buf);
out:
	if (big.mem.vaddr)
		nvmk_backing_dma_free(ctrl->b, &big);
	pthread_mutex_unlock(&ctrl->admin_lock);
	if (!w.done && cpl) {
		/* never reached the device, or gave up on it */
		cpl->err = rc;
		cpl->status = rc ? DRV_SF_HOST_ABORTED : 0;
		cpl->dw0 = 0;
	}
	return rc;
}

int drv_identify(struct nvmk_ctrl *ctrl, uint8_t cns, uint32_t nsid, void *out)
{
	struct nvme_sqe c = {.opc = NVME_ADM_IDENTIFY, .nsid = nsid, .cdw10 = cns};

	return drv_admin_sync(ctrl, &c, out, NVME_IDENTIFY_DATA_SIZE, NULL);
}

int drv_set_features(struct nvmk_ctrl *ctrl, uint8_t fid, uint32_t cdw11, void *data, size_t len,
		     uint32_t *dw0)
{
	struct nvme_sqe c = {.opc = NVME_ADM_SET_FEATURES, .cdw10 = fid, .cdw11 = cdw11};
	struct nvmk_cpl cpl = {0};
	int rc;

	rc = drv_admin_sync(ctrl, &c, data, len, &cpl);
	if (!rc && dw0)
		*dw0 = cpl.dw0;
	return rc;
}

int nvmk_ctrl_admin_passthru(struct nvmk_ctrl *ctrl, const struct nvme_sqe *cmd, void *buf,
			     size_t len, struct nvmk_cpl *cpl)
{
	struct nvme_sqe c;
	struct nvmk_cpl local = {0};
	int rc;

	if (!ctrl || !cmd || (len && !buf))
		return -EINVAL;
	c = *cmd;
	rc = drv_admin_sync(ctrl, &c, buf, len, &local);
	drv_set_last_status(local.status);
	if (cpl)
		*cpl = local;
	return rc;
}
