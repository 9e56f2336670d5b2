/* SPDX-License-Identifier: MIT */
/*
 * Waiting for one command of the NVMe-queue path, shared by the synchronous
 * wrappers (ns_sync.c) and the reservation commands (ns_resv.c).
 */
#ifndef NVMK_DRV_NS_SYNC_H
#define NVMK_DRV_NS_SYNC_H

#include <stdatomic.h>

#include "driver/drv.h"

/* One synchronous command: drv_sync_cb is its callback, &drv_sync its
 * argument. */
struct drv_sync {
	atomic_int done;
	struct nvmk_cpl cpl;
};

/* Completion callback of a synchronous command. */
void drv_sync_cb(void *arg, const struct nvmk_cpl *cpl);
/* Make progress on @qp while waiting: sleep (interrupt) or poll once. */
void drv_sync_progress(struct nvmk_qpair *qp);
/* Wait for @s; returns its completion error and records its status. */
int drv_sync_wait(struct nvmk_qpair *qp, struct drv_sync *s);

/* @qp, or the calling thread's (nvmk_ctrl_get_qpair) when NULL. */
static inline struct nvmk_qpair *drv_sync_qp(struct nvmk_ns *ns, struct nvmk_qpair *qp)
{
	return qp ? qp : nvmk_ctrl_get_qpair(ns->ctrl);
}

#endif /* NVMK_DRV_NS_SYNC_H */
