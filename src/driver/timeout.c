// SPDX-License-Identifier: MIT
/*
 * Per-command deadlines of an I/O qpair, checked by its user while it
 * processes completions (nothing else touches an exclusive qpair).
 *
 * On expiry: the CQ has just been drained, so the completion really is
 * missing. A dead or fatal controller is recognised from CSTS first. An
 * entry at the CQ head that carries the timed-out command's CID but the
 * wrong phase tag means the device broke the phase protocol: controller
 * failed. Otherwise Abort (Base 2.0 5.1); the aborted command then
 * completes with -ETIMEDOUT. If the Abort fails, times out, or the command
 * is still missing one more timeout later, the controller is reset.
 *
 * Deadlines are set here, not at submit (which then reads no clock): the
 * first scan that sees an active command without TRK_F_DEADLINE gives it
 * now + io_timeout. Scans run at most once per tick (ctrl->tick_ms) while
 * the qpair is processed -- on an exclusive qpair by the first poll after
 * each tick of the coarse clock, which fails the fast poll's one compare
 * (ctrl->gate, qpair.c), so the fast poll itself tests no deadline --
 * and the clock is the controller's coarse one, so a
 * command never times out before io_timeout has passed since it was
 * submitted, and, on a qpair processed at least once per tick, it is found
 * expired at most two ticks after that: one until its deadline is set, one
 * until the scan after its deadline. The coarse clock is kept by the admin
 * thread and also advanced by nvmk_qpair_wait, which reads the precise clock
 * anyway, so a waiter sees deadlines pass even if the admin thread is not
 * scheduled.
 */
#include <errno.h>

#include "driver/queue.h"

static int drv_abort(struct nvmk_qpair *qp, struct drv_tracker *t, uint32_t *dw0)
{
	struct nvme_sqe c = {.opc = NVME_ADM_ABORT, .cdw10 = NVME_ABORT_CDW10(qp->q.qid, t->cid)};
	struct nvmk_cpl cpl = {0};
	int rc;

	rc = drv_admin_sync(qp->ctrl, &c, NULL, 0, &cpl);
	*dw0 = cpl.dw0;
	return rc;
}

void drv_qpair_check_timeouts(struct nvmk_qpair *qp, uint64_t now)
{
	struct nvmk_ctrl *ctrl = qp->ctrl;
	struct drv_queue *q = &qp->q;
	uint32_t epoch = qp->epoch;

	qp->next_check = now + ctrl->tick_ms;
	for (uint32_t i = 0; i < q->ntrk; i++) {
		struct drv_tracker *t = &q->trk[i];
		uint32_t dw0 = 0;
		int h, rc;

		if (t->state != TRK_ACTIVE)
			continue;
		if (!(t->flags & TRK_F_DEADLINE)) {
			t->flags |= TRK_F_DEADLINE;
			t->deadline = now + qp->io_timeout_ms;
			continue;
		}
		if (t->deadline > now)
			continue;
		h = drv_reg_health(ctrl);
		if (h) {
			drv_ctrl_fail(ctrl, h,
				      h == -ENODEV ? "surprise removal (CSTS all ones)"
						   : "controller fatal status (CSTS.CFS)");
			return;
		}
		{
			/* Phase protocol check: the head entry names this command. */
			struct nvme_cqe *e = &q->cq[q->cq_head];
			uint16_t st = __atomic_load_n(&e->status, __ATOMIC_ACQUIRE);

			if ((st & 1u) != q->phase && e->cid == t->cid && e->sqid == q->qid) {
				drv_queue_bad_cqe(q, e, "wrong phase tag");
				drv_ctrl_fail(ctrl, -EIO, "invalid completion (phase)");
				return;
			}
		}
		if (t->flags & TRK_F_TIMED_OUT) {
			nvmk_err(ctrl->name, q->qid,
				 "aborted command cid 0x%04x opcode 0x%02x still missing: reset",
				 t->cid, t->opc);
			drv_ctrl_reset(ctrl, -ETIMEDOUT, epoch);
			return;
		}
		nvmk_warn(ctrl->name, q->qid,
			  "command cid 0x%04x opcode 0x%02x timed out after %u ms: aborting",
			  t->cid, t->opc, ctrl->opts.io_timeout_ms);
		t->flags |= TRK_F_TIMED_OUT;
		t->deadline = now + ctrl->opts.io_timeout_ms;
		rc = drv_abort(qp, t, &dw0);
		if (rc || (dw0 & NVME_ABORT_DW0_NOT_ABORTED)) {
			nvmk_err(ctrl->name, q->qid,
				 "abort of cid 0x%04x %s (%d): resetting the controller", t->cid,
				 rc ? "failed" : "refused", rc);
			drv_ctrl_reset(ctrl, -ETIMEDOUT, epoch);
			return;
		}
		/* Aborted: its completion (Abort Requested) arrives on our CQ and
		 * is delivered as -ETIMEDOUT by the next drain. */
		/* relaxed: a hint; the caller re-checks through drv_qp_check */
		if (atomic_load_explicit(&ctrl->epoch, memory_order_relaxed) != epoch)
			return;
	}
}
