/* SPDX-License-Identifier: MIT */
/*
 * Waiting for one command of the NVMe-queue path, shared by the synchronous
 * wrappers (ns_sync.c) and the reservation commands (ns_resv.c).
 */
#ifndef NVMK_DRV_NS_SYNC_H
#define NVMK_DRV_NS_SYNC_H

#include <errno.h>
#include <stdatomic.h>

#include "driver/drv.h"
#include "driver/ns_io.h"

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

/* First check of a synchronous call of the NVMe-queue path: a qpair given
 * must be one of that path (-EINVAL for a kernel qpair), and the namespace
 * must not be removed (-ENODEV). */
static inline int drv_sync_check(const struct nvmk_ns *ns, const struct nvmk_qpair *qp)
{
	if (qp && qp->ops != ns->ops)
		return -EINVAL;
	return ns_gone(ns);
}

#endif /* NVMK_DRV_NS_SYNC_H */
