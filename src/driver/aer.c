// SPDX-License-Identifier: MIT
/*
 * Asynchronous events (Base 2.0 5.2 and 8.x): keep up to min(AERL + 1, 4)
 * Asynchronous Event Requests outstanding. A completion is queued by whoever
 * drains the admin CQ (admin lock held) and handled on the admin thread:
 * for a Namespace Attribute Changed notice, read the Changed Namespace List
 * log (which clears it), re-identify those namespaces, tell the owner
 * (resize / removal / addition), then post the request again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver/queue.h"

void drv_aer_done(void *arg, const struct nvmk_cpl *cpl)
{
	struct nvmk_ctrl *ctrl = arg;
	uint64_t one = 1;

	/* admin lock held by the drainer */
	if (ctrl->aers_outstanding)
		ctrl->aers_outstanding--;
	if (cpl->err) {
		/* aborted by reset/shutdown, or AER limit: not re-posted here */
		if (cpl->status != DRV_SF_HOST_ABORTED)
			nvmk_warn(ctrl->name, 0, "async event request failed: %d", cpl->err);
		return;
	}
	if (ctrl->naer_pending < DRV_AER_PENDING)
		ctrl->aer_pending[ctrl->naer_pending++] = cpl->dw0;
	if (write(ctrl->wake_fd, &one, sizeof(one)) < 0)
		(void)0;
}

/* Admin lock held. */
void drv_aer_post_all(struct nvmk_ctrl *ctrl)
{
	while (ctrl->aers_outstanding < ctrl->aer_limit && !drv_failed(ctrl)) {
		struct drv_tracker *t = drv_trk_get(&ctrl->aq);
		struct nvme_sqe *sqe;

		if (!t)
			return;
		sqe = drv_q_slot(&ctrl->aq, 0);
		memset(sqe, 0, sizeof(*sqe));
		sqe->opc = NVME_ADM_ASYNC_EVENT;
		sqe->cid = t->cid;
		t->state = TRK_ACTIVE;
		t->opc = NVME_ADM_ASYNC_EVENT;
		t->cb = drv_aer_done;
		t->cb_arg = ctrl;
		t->deadline = DRV_NO_DEADLINE; /* completes only when there is news */
		ctrl->aers_outstanding++;
		drv_q_commit(&ctrl->aq, 1);
	}
}

static void aer_ns_changed(struct nvmk_ctrl *ctrl)
{
	struct nvme_changed_ns_log *log = malloc(sizeof(*log));
	struct nvme_sqe c = {.opc = NVME_ADM_GET_LOG_PAGE, .nsid = NVME_NSID_ALL};
	uint32_t numd0 = sizeof(*log) / 4 - 1;
	int rc;

	if (!log)
		return;
	c.cdw10 = NVME_LOG_CDW10(NVME_LOG_CHANGED_NS, numd0, false);
	c.cdw11 = NVME_LOG_CDW11(numd0);
	rc = drv_admin_sync(ctrl, &c, log, sizeof(*log), NULL);
	if (rc) {
		nvmk_warn(ctrl->name, 0, "reading the Changed Namespace List failed: %d", rc);
		free(log);
		return;
	}
	if (log->nsid[0] == NVME_CHANGED_NS_OVERFLOW) {
		/* more than 1024 changed: look at every namespace we know */
		pthread_mutex_lock(&ctrl->ns_lock);
		unsigned n = ctrl->nns;
		uint32_t *ids = malloc(n * sizeof(*ids) + 1);

		for (unsigned i = 0; ids && i < n; i++)
			ids[i] = ctrl->ns[i]->nsid;
		pthread_mutex_unlock(&ctrl->ns_lock);
		for (unsigned i = 0; ids && i < n; i++)
			drv_ns_rescan(ctrl, ids[i]);
		free(ids);
	} else {
		for (unsigned i = 0; i < NVME_NS_LIST_MAX && log->nsid[i]; i++)
			if (log->nsid[i] != NVME_NSID_ALL)
				drv_ns_rescan(ctrl, log->nsid[i]);
	}
	free(log);
}

/* Other events stay masked until their log page is read (Base 2.0 5.2):
 * read it (RAE = 0) so that the next event of the type can be reported. */
static void aer_clear_log(struct nvmk_ctrl *ctrl, uint8_t lid)
{
	struct nvme_sqe c = {.opc = NVME_ADM_GET_LOG_PAGE, .nsid = NVME_NSID_ALL};
	size_t len;
	void *buf;
	int rc;

	switch (lid) {
	case NVME_LOG_ERROR:
		len = sizeof(struct nvme_error_log);
		break;
	case NVME_LOG_SMART:
	case NVME_LOG_FW_SLOT:
		len = 512;
		break;
	default:
		return; /* unknown size: leave it */
	}
	buf = calloc(1, len);
	if (!buf)
		return;
	c.cdw10 = NVME_LOG_CDW10(lid, len / 4 - 1, false);
	c.cdw11 = NVME_LOG_CDW11(len / 4 - 1);
	rc = drv_admin_sync(ctrl, &c, buf, len, NULL);
	if (rc)
		nvmk_warn(ctrl->name, 0, "reading log page 0x%02x after an event failed: %d", lid,
			  rc);
	free(buf);
}

void drv_aer_handle_pending(struct nvmk_ctrl *ctrl)
{
	for (;;) {
		uint32_t dw0;

		pthread_mutex_lock(&ctrl->admin_lock);
		if (!ctrl->naer_pending) {
			drv_aer_post_all(ctrl);
			pthread_mutex_unlock(&ctrl->admin_lock);
			return;
		}
		dw0 = ctrl->aer_pending[0];
		memmove(&ctrl->aer_pending[0], &ctrl->aer_pending[1],
			(ctrl->naer_pending - 1) * sizeof(uint32_t));
		ctrl->naer_pending--;
		pthread_mutex_unlock(&ctrl->admin_lock);

		nvmk_info(ctrl->name, 0, "async event: type %u info 0x%02x log 0x%02x",
			  NVME_AER_DW0_TYPE(dw0), NVME_AER_DW0_INFO(dw0), NVME_AER_DW0_LID(dw0));
		if (NVME_AER_DW0_TYPE(dw0) == NVME_AER_TYPE_NOTICE &&
		    NVME_AER_DW0_INFO(dw0) == NVME_AER_NOTICE_NS_CHANGED)
			aer_ns_changed(ctrl);
		else
			aer_clear_log(ctrl, NVME_AER_DW0_LID(dw0));
	}
}
