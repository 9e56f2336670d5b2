// SPDX-License-Identifier: MIT
/*
 * Recovery: failing a controller for good, and resetting one that stopped
 * answering.
 *
 * Failure (fatal status, surprise removal, an invalid completion) is final:
 * the error is recorded, the epoch bumped, and every qpair fails its
 * outstanding commands the next time its user calls in (exclusive qpairs are
 * only ever touched by their user). Waiters are woken so that happens now.
 *
 * Reset (a command and its Abort timed out): disable, re-create the admin
 * queue, re-apply the features, bump the epoch. Each I/O qpair then re-creates
 * its queues on the device and fails what it had outstanding with -ETIMEDOUT
 * (we fail, never retry: the caller knows whether a retry is safe).
 */
#include <errno.h>

#include "driver/queue.h"

void drv_ctrl_fail(struct nvmk_ctrl *ctrl, int err, const char *why)
{
	int expected = 0;

	/* acq_rel: exactly one thread wins and fails the controller */
	if (!atomic_compare_exchange_strong_explicit(&ctrl->failed, &expected, err,
						     memory_order_acq_rel, memory_order_acquire))
		return; /* already failed: the first cause stands */
	nvmk_err(ctrl->name, NVMK_LOG_NOQ,
		 "controller failed: %s; all commands now complete "
		 "with %d",
		 why, err);
	/*
	 * Stop a misbehaving (but present) device before anything is completed:
	 * the owners fail their commands only after the epoch bump below, and
	 * then reuse or free the buffers, which the device must no longer write.
	 * CC.EN = 0 and CSTS.RDY = 0 (Base 2.0 3.7.2), bounded by CAP.TO. A
	 * removed device does no more DMA.
	 */
	if (err != -ENODEV && drv_reg_csts(ctrl) != 0xffffffffu) {
		drv_reg_set_cc(ctrl, 0);
		if (!drv_wait_csts(ctrl, NVME_CSTS_RDY, 0, ctrl->ready_timeout_ms, "CSTS.RDY = 0"))
			nvmk_err(ctrl->name, NVMK_LOG_NOQ,
				 "failed controller did not stop; its last transfers may still "
				 "land in buffers of failed commands");
		else
			/* release: queue memory may be freed after this (qpair.c) */
			atomic_fetch_add_explicit(&ctrl->disable_gen, 1, memory_order_release);
	}
	/* relaxed: published by the release epoch bump below */
	atomic_store_explicit(&ctrl->quiesced, true, memory_order_relaxed);
	/* release: the failed value before the epoch change that makes qpairs look */
	drv_epoch_bump(ctrl);
	/* release: pairs with the admin thread's acq_rel exchange */
	atomic_store_explicit(&ctrl->fail_event_pending, true, memory_order_release);
	drv_ctrl_wake_all(ctrl);
}

int drv_ctrl_reset(struct nvmk_ctrl *ctrl, int cause, uint32_t seen_epoch)
{
	int rc;

	pthread_mutex_lock(&ctrl->reset_lock);
	rc = drv_failed(ctrl);
	if (rc)
		goto out;
	/* acquire: pairs with the release bump of a reset that raced with us */
	if (atomic_load_explicit(&ctrl->epoch, memory_order_acquire) != seen_epoch)
		goto out; /* somebody else reset it meanwhile */
	nvmk_warn(ctrl->name, NVMK_LOG_NOQ, "resetting controller (cause %d)", cause);
	pthread_mutex_lock(&ctrl->admin_lock);
	rc = drv_init_run(ctrl, true);
	if (rc) {
		pthread_mutex_unlock(&ctrl->admin_lock);
		drv_ctrl_fail(ctrl, rc == -ENODEV ? -ENODEV : -EIO, "reset failed");
		goto out;
	}
	/* release: the bring-up passed CSTS.RDY = 0, so no I/O queue of before
	 * is left on the device (qpair.c may free their memory) */
	atomic_fetch_add_explicit(&ctrl->disable_gen, 1, memory_order_release);
	/* release: the re-created admin queue and features before qpairs see
	 * the new epoch and create their queues */
	drv_epoch_bump(ctrl);
	pthread_mutex_unlock(&ctrl->admin_lock);
	/* release: pairs with the admin thread's acq_rel exchange */
	atomic_store_explicit(&ctrl->reset_event_pending, true, memory_order_release);
	drv_ctrl_wake_all(ctrl);
	nvmk_info(ctrl->name, NVMK_LOG_NOQ, "reset complete; I/O queues are re-created on use");
out:
	pthread_mutex_unlock(&ctrl->reset_lock);
	return rc;
}

int nvmk_ctrl_reset(struct nvmk_ctrl *ctrl)
{
	/* acquire: the epoch we reset from, see drv_ctrl_reset */
	return drv_ctrl_reset(ctrl, 0, atomic_load_explicit(&ctrl->epoch, memory_order_acquire));
}
