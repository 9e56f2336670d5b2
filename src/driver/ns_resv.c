// SPDX-License-Identifier: MIT
/*
 * Reservations (NVM-CS 1.0 3.2.4 - 3.2.7) on the NVMe-queue path: one
 * synchronous command each, its data bounced through a DMA buffer.
 */
#include <errno.h>
#include <string.h>

#include "driver/io_ops.h"
#include "driver/ns_io.h"
#include "driver/ns_sync.h"
#include "driver/queue.h"

static int ns_sync_cmd(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc, uint32_t cdw10,
		       uint32_t cdw11, void *data, size_t len)
{
	return ns->ops->sync_resv(ns, qp, opc, cdw10, cdw11, data, len);
}

/* One data-carrying command (data bounced through a DMA buffer). */
int drv_nvme_sync_resv(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc, uint32_t cdw10,
		       uint32_t cdw11, void *data, size_t len)
{
	struct nvmk_dma_buf b;
	struct drv_sync s = {0};
	struct drv_queue *q;
	struct drv_tracker *t;
	struct nvme_sqe *sqe;
	int rc;

	rc = drv_sync_check(ns, qp);
	if (rc)
		return rc;
	if (!len || len > DRV_MAX_XFER)
		return -EINVAL;
	qp = drv_sync_qp(ns, qp);
	if (!qp)
		return -ENODEV;
	rc = nvmk_ctrl_dma_alloc(ns->ctrl, len, &b);
	if (rc)
		return rc;
	if (NVME_OPC_XFER(opc) & NVME_XFER_HOST_TO_CTRL)
		memcpy(b.mem.vaddr, data, len);
	q = &qp->q;
	for (;;) {
		drv_qp_lock(qp);
		rc = drv_qp_check(qp);
		if (rc)
			break;
		t = drv_trk_get(q);
		if (t)
			break;
		drv_qp_unlock(qp);
		drv_sync_progress(qp);
	}
	if (rc) {
		drv_qp_unlock(qp);
		goto out;
	}
	sqe = drv_q_slot(q, 0);
	{
		struct drv_prp_list l = {t->prp_va, &t->prp_iova, 1};

		rc = drv_prp_build_buf(&b, 0, len, &l, &sqe->prp1, &sqe->prp2);
	}
	if (rc) {
		drv_trk_put(q, t);
		drv_qp_unlock(qp);
		goto out;
	}
	ns_sqe(sqe, opc, t->cid, ns->nsid, 0, 0);
	sqe->cdw10 = cdw10;
	sqe->cdw11 = cdw11;
	t->state = TRK_ACTIVE;
	t->opc = opc;
	t->cb = drv_sync_cb;
	t->cb_arg = &s;
	/* deadline: set by the first scan (TRK_F_DEADLINE) */
	drv_q_commit(q, 1);
	drv_qp_unlock(qp);
	rc = drv_sync_wait(qp, &s);
	if (rc == 0 && (NVME_OPC_XFER(opc) & NVME_XFER_CTRL_TO_HOST))
		memcpy(data, b.mem.vaddr, len);
out:
	nvmk_ctrl_dma_free(ns->ctrl, &b);
	return rc;
}

int nvmk_ns_resv_register(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			  enum nvme_resv_register_action action, uint64_t crkey, uint64_t nrkey,
			  bool iekey)
{
	struct nvme_resv_register_data d = {.crkey = crkey, .nrkey = nrkey};

	return ns_sync_cmd(ns, qp, NVME_CMD_RESV_REGISTER, NVME_RESV_CDW10(action, iekey, 0), 0, &d,
			   sizeof(d));
}

int nvmk_ns_resv_acquire(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			 enum nvme_resv_acquire_action action, enum nvme_resv_type rtype,
			 uint64_t crkey, uint64_t prkey, bool iekey)
{
	struct nvme_resv_acquire_data d = {.crkey = crkey, .prkey = prkey};

	return ns_sync_cmd(ns, qp, NVME_CMD_RESV_ACQUIRE, NVME_RESV_CDW10(action, iekey, rtype), 0,
			   &d, sizeof(d));
}

int nvmk_ns_resv_release(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			 enum nvme_resv_release_action action, enum nvme_resv_type rtype,
			 uint64_t crkey, bool iekey)
{
	uint64_t key = crkey;

	return ns_sync_cmd(ns, qp, NVME_CMD_RESV_RELEASE, NVME_RESV_CDW10(action, iekey, rtype), 0,
			   &key, sizeof(key));
}

int nvmk_ns_resv_report(struct nvmk_ns *ns, struct nvmk_qpair *qp, void *buf, size_t len, bool eds)
{
	/* NUMD is 0's based dwords (NVM-CS 1.0 3.2.6) */
	if (len < 4 || (len & 3))
		return -EINVAL;
	return ns_sync_cmd(ns, qp, NVME_CMD_RESV_REPORT, (uint32_t)(len / 4 - 1),
			   eds ? NVME_RESV_REPORT_EDS : 0, buf, len);
}
