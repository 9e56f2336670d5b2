// SPDX-License-Identifier: MIT
/*
 * Queue statistics for status reports (control path): one snapshot of every
 * I/O queue pair of a controller.
 */
#include <errno.h>

#include "driver/drv.h"

int nvmk_ctrl_queue_stats(struct nvmk_ctrl *ctrl, struct nvmk_queue_stat *out, unsigned max)
{
	unsigned n = 0;

	if (!ctrl || (max && !out))
		return -EINVAL;
	pthread_mutex_lock(&ctrl->qp_lock);
	for (struct nvmk_qpair *qp = ctrl->qpairs; qp; qp = qp->next, n++) {
		struct nvmk_queue_stat *st;

		if (n >= max)
			continue;
		st = &out[n];
		st->qid = qp->q.qid;
		st->depth = qp->q.depth;
		st->shared = qp->shared;
		st->poll = qp->mode == NVMK_CPL_POLL;
		st->client = !qp->from_get;
		st->outstanding = -1;
		/* Only a SHARED qpair may be looked at from another thread (its
		 * mutex orders us with its users); an exclusive one belongs to
		 * its thread, so its count is not read. */
		if (qp->shared) {
			drv_rlock_lock(&qp->lock);
			st->outstanding = (int)qp->q.nbusy;
			drv_rlock_unlock(&qp->lock);
		}
	}
	pthread_mutex_unlock(&ctrl->qp_lock);
	return (int)n;
}
