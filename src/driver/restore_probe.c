// SPDX-License-Identifier: MIT
/*
 * After a keep-alive restore: is the device still running the queues of the
 * state, or was it reset and enabled again behind it (CC.EN 1 -> 0 -> 1 with
 * the same AQA/ASQ/ACQ)? Its registers then look exactly as saved, but its
 * admin SQ head and tail are back at 0 (Base 2.0 3.7.2: a controller reset
 * deletes every queue), its I/O queues are gone, and the commands that were
 * in flight will never complete.
 *
 * One admin command tells: Get Features, Number of Queues (read only, no
 * data; Base 2.0 5.27.1.5) at the restored SQ tail. A running controller
 * fetches it from where it stopped and completes it at our CQ head, with
 * SQHD = the new tail (it has consumed every entry up to ours) and at least
 * the granted queue counts. A reset controller starts fetching at slot 0:
 * its completions land elsewhere (nothing at our head: the probe times out),
 * or carry an SQ head that is not ours, or a CID we do not expect. Bounded
 * by DRV_RESTORE_PROBE_MS; a slow but running controller that misses the
 * bound is reset like a reset one, which is safe (the requests fail once).
 *
 * What a reset controller would fetch: slots 0 up to our tail. The entries
 * there that are outside [last SQHD seen, tail) are free ring space for a
 * running controller (it never reads them: Base 2.0 4.1), so they are
 * overwritten with copies of the probe first: a reset controller then
 * re-executes Get Features instead of whatever admin command (a Format NVM
 * passed through, a namespace deletion) once stood there. Entries in
 * [last SQHD seen, tail) are commands still pending (AERs, an orphan) and
 * are left alone.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "driver/queue.h"
#include "driver/servicing.h"

struct probe_wait {
	bool done;
	struct nvmk_cpl cpl;
};

/* Runs inside the drain below, in this thread. */
static void probe_done(void *arg, const struct nvmk_cpl *cpl)
{
	struct probe_wait *w = arg;

	w->cpl = *cpl;
	w->done = true;
}

int drv_restore_probe(struct nvmk_ctrl *ctrl)
{
	struct drv_queue *aq = &ctrl->aq;
	uint32_t tail = aq->sq_tail, seen = aq->sq_head, want_head;
	uint32_t ms = ctrl->opts.admin_timeout_ms < DRV_RESTORE_PROBE_MS
			  ? ctrl->opts.admin_timeout_ms
			  : DRV_RESTORE_PROBE_MS;
	struct timespec nap = {0, 200000};
	struct probe_wait w = {0};
	struct drv_tracker *t;
	struct nvme_sqe *sqe;
	uint64_t deadline;
	unsigned nsq, ncq;
	int rc;

	t = drv_trk_get(aq);
	if (!t) {
		nvmk_warn(ctrl->name, 0,
			  "restore: every admin tracker is in use: the device is not probed for a "
			  "reset behind the state");
		return 0;
	}
	sqe = drv_q_slot(aq, 0);
	memset(sqe, 0, sizeof(*sqe));
	sqe->opc = NVME_ADM_GET_FEATURES;
	sqe->cid = t->cid;
	sqe->cdw10 = NVME_FEAT_NUM_QUEUES; /* SEL 0: the current value */
	if (seen <= tail)
		for (uint32_t i = 0; i < seen; i++)
			aq->sq[i] = *sqe;
	t->state = TRK_ACTIVE;
	t->opc = NVME_ADM_GET_FEATURES;
	t->cb = probe_done;
	t->cb_arg = &w;
	t->deadline = DRV_NO_DEADLINE;
	want_head = tail + 1 == aq->depth ? 0 : tail + 1;
	drv_q_commit(aq, 1);

	deadline = drv_clock_ms() + ms;
	for (;;) {
		int n;

		aq->batching++;
		n = drv_q_drain(aq, 1);
		aq->batching--;
		drv_q_ring_sq(aq);
		if (n < 0) {
			t->cb = NULL; /* never completes into this stack frame */
			nvmk_warn(ctrl->name, 0,
				  "restore: an invalid admin completion answered the probe: the "
				  "controller was reset behind the saved state");
			return 1;
		}
		if (w.done)
			break;
		rc = drv_reg_health(ctrl);
		if (rc) {
			t->cb = NULL;
			return rc;
		}
		if (drv_clock_ms() > deadline) {
			t->cb = NULL;
			nvmk_warn(
			    ctrl->name, 0,
			    "restore: no completion of the probe (Get Features at SQ tail %u) "
			    "within %u ms: the controller was reset behind the saved state",
			    tail, ms);
			return 1;
		}
		nanosleep(&nap, NULL);
	}
	nsq = NVME_FEAT_NUMQ_NSQ(w.cpl.dw0) + 1u;
	ncq = NVME_FEAT_NUMQ_NCQ(w.cpl.dw0) + 1u;
	if (aq->sq_head != want_head || w.cpl.err || nsq < ctrl->granted || ncq < ctrl->granted) {
		nvmk_warn(ctrl->name, 0,
			  "restore: the probe completed with SQ head %u (expected %u), error %d, "
			  "%u/%u queues (%u granted): the controller was reset behind the saved "
			  "state",
			  aq->sq_head, want_head, w.cpl.err, nsq, ncq, ctrl->granted);
		return 1;
	}
	return 0;
}
