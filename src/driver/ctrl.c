// SPDX-License-Identifier: MIT
/*
 * Controller bring-up and shutdown (NVMe Base 2.0, 3.5.1 and 3.6), as an
 * explicit state machine: each state is one small step with its own timeout,
 * and a failure names the state it failed in. Recovery re-enters the same
 * machine (reset = true) instead of keeping a second copy of it.
 *
 * Also the admin thread: keeps the coarse clock, processes AERs, watches
 * CSTS for fatal status and surprise removal, runs requested resets.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "driver/queue.h"
#include "driver/servicing.h"

enum drv_init_state {
	DRV_INIT_DISABLE = 0,
	DRV_INIT_WAIT_DISABLED,
	DRV_INIT_CHECK_CAP,
	DRV_INIT_ADMIN_QUEUE,
	DRV_INIT_ENABLE,
	DRV_INIT_WAIT_READY,
	DRV_INIT_IDENTIFY,
	DRV_INIT_NUM_QUEUES,
	DRV_INIT_HOST_ID,
	DRV_INIT_ASYNC_EVENT_CONFIG,
	DRV_INIT_POST_AERS,
	DRV_INIT_DOORBELL_BUFFER,
	DRV_INIT_DONE,
	DRV_INIT_AGAIN, /* not a state: stay, poll again */
};

static const char *const drv_init_names[] = {
    [DRV_INIT_DISABLE] = "DISABLE",
    [DRV_INIT_WAIT_DISABLED] = "WAIT_FOR_CSTS_RDY_0",
    [DRV_INIT_CHECK_CAP] = "CHECK_CAP",
    [DRV_INIT_ADMIN_QUEUE] = "ADMIN_QUEUE",
    [DRV_INIT_ENABLE] = "ENABLE",
    [DRV_INIT_WAIT_READY] = "WAIT_FOR_CSTS_RDY_1",
    [DRV_INIT_IDENTIFY] = "IDENTIFY_CONTROLLER",
    [DRV_INIT_NUM_QUEUES] = "SET_NUMBER_OF_QUEUES",
    [DRV_INIT_HOST_ID] = "SET_HOST_IDENTIFIER",
    [DRV_INIT_ASYNC_EVENT_CONFIG] = "ASYNC_EVENT_CONFIG",
    [DRV_INIT_POST_AERS] = "POST_AERS",
    [DRV_INIT_DOORBELL_BUFFER] = "DOORBELL_BUFFER_CONFIG",
    [DRV_INIT_DONE] = "DONE",
};

static _Atomic uint64_t drv_next_uid = 1;

static int init_disable(struct nvmk_ctrl *ctrl)
{
	uint32_t csts = drv_reg_csts(ctrl), cc;

	if (csts == 0xffffffffu)
		return -ENODEV;
	cc = drv_reg_cc(ctrl);
	if (!(cc & NVME_CC_EN) && !(csts & NVME_CSTS_RDY))
		return DRV_INIT_CHECK_CAP;
	/* Base 2.0 3.5.1 step 1 / 3.7.2: CC.EN = 0 resets the controller;
	 * wait for CSTS.RDY = 0 before touching the admin queue registers. */
	drv_reg_set_cc(ctrl, cc & ~NVME_CC_EN);
	return DRV_INIT_WAIT_DISABLED;
}

static int init_wait_disabled(struct nvmk_ctrl *ctrl)
{
	uint32_t csts = drv_reg_csts(ctrl);

	if (csts == 0xffffffffu)
		return -ENODEV;
	return (csts & NVME_CSTS_RDY) ? DRV_INIT_AGAIN : DRV_INIT_CHECK_CAP;
}

/* Whether the doorbells of queue @qid with stride @dstrd lie beyond BAR0
 * (a backing that does not know its size, 0, is trusted). */
static bool b_size_short(const struct nvmk_ctrl *ctrl, uint32_t dstrd, uint16_t qid)
{
	size_t size = ctrl->b->bar0_size;

	return size && (uint64_t)nvme_cq_doorbell(qid, dstrd) + 4u > size;
}

static int init_check_cap(struct nvmk_ctrl *ctrl, bool reset)
{
	uint64_t cap = drv_reg_cap(ctrl);
	uint32_t mqes = NVME_CAP_MQES(cap);
	uint32_t want;

	if (cap == UINT64_MAX)
		return -ENODEV;
	if (mqes == 0) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ,
			 "CAP.MQES is 0: queues of one entry cannot hold a command");
		return -EINVAL;
	}
	if (!(NVME_CAP_CSS(cap) & NVME_CAP_CSS_NVM)) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ, "CAP.CSS 0x%02x lacks the NVM command set",
			 NVME_CAP_CSS(cap));
		return -EINVAL;
	}
	if (NVME_CAP_MPSMIN(cap) != 0) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ,
			 "CAP.MPSMIN %u (%u KiB pages): nvmekeep needs 4 KiB memory pages",
			 NVME_CAP_MPSMIN(cap), 4u << NVME_CAP_MPSMIN(cap));
		return -EINVAL;
	}
	if (b_size_short(ctrl, NVME_CAP_DSTRD(cap), 0)) {
		/* Base 2.0 3.1.3.21/22: the doorbells are registers of BAR0 */
		nvmk_err(ctrl->name, NVMK_LOG_NOQ,
			 "CAP.DSTRD %u puts the admin queue doorbells at 0x%x, beyond BAR0 (%zu "
			 "bytes)",
			 NVME_CAP_DSTRD(cap), nvme_cq_doorbell(0, NVME_CAP_DSTRD(cap)),
			 ctrl->b->bar0_size);
		return -EINVAL;
	}
	if (reset) {
		/* Queue pairs were sized and their doorbells placed with the CAP
		 * of bring-up, and other threads read these fields without a
		 * lock: a reset never rewrites them. A device whose queue
		 * geometry changed cannot be resumed. */
		const uint64_t geom = 0xffffull | (0xfull << 32) | (0xffull << 37) | (0xfull << 48);

		if (cap == ctrl->cap)
			return DRV_INIT_ADMIN_QUEUE;
		nvmk_warn(ctrl->name, NVMK_LOG_NOQ, "CAP changed across reset: 0x%llx -> 0x%llx",
			  (unsigned long long)ctrl->cap, (unsigned long long)cap);
		if ((cap ^ ctrl->cap) & geom) {
			nvmk_err(ctrl->name, NVMK_LOG_NOQ,
				 "CAP.MQES, DSTRD, CSS or MPSMIN changed across reset: the queues "
				 "cannot be re-created as they were");
			return -EIO;
		}
		return DRV_INIT_ADMIN_QUEUE;
	}
	ctrl->cap = cap;
	ctrl->dstrd = NVME_CAP_DSTRD(cap);
	ctrl->ready_timeout_ms = (NVME_CAP_TO(cap) ? NVME_CAP_TO(cap) : 1) * 500u;
	ctrl->max_io_depth = mqes + 1;
	want = ctrl->opts.admin_queue_depth;
	if (want > NVME_AQ_MAX_ENTRIES)
		want = NVME_AQ_MAX_ENTRIES;
	if (want > mqes + 1)
		want = mqes + 1;
	if (want < NVME_AQ_MIN_ENTRIES)
		want = NVME_AQ_MIN_ENTRIES;
	ctrl->admin_depth = want;
	want = ctrl->opts.io_queue_depth;
	if (want > mqes + 1)
		want = mqes + 1;
	if (want < 2)
		want = 2;
	ctrl->io_depth = want;
	return DRV_INIT_ADMIN_QUEUE;
}

static int init_admin_queue(struct nvmk_ctrl *ctrl, bool reset)
{
	struct drv_queue *aq = &ctrl->aq;
	int rc;

	if (!reset) {
		rc = drv_admin_init(ctrl);
		if (rc)
			return rc;
	} else {
		/* Everything on the old admin queue is gone with the reset: a
		 * waiting sync command was orphaned by its timeout, AERs are
		 * simply re-posted. */
		drv_queue_doom_all(aq);
		drv_queue_fail_doomed(aq, -ETIMEDOUT);
		ctrl->aers_outstanding = 0;
		drv_queue_set_doorbells(aq, 0, ctrl->dstrd);
	}
	drv_queue_reset_ring(aq);
	drv_reg_set_aq(ctrl, NVME_AQA(aq->depth - 1, aq->depth - 1),
		       nvmk_dma_buf_iova(&aq->sq_mem, 0), nvmk_dma_buf_iova(&aq->cq_mem, 0));
	return DRV_INIT_ENABLE;
}

static int init_enable(struct nvmk_ctrl *ctrl)
{
	/* Base 2.0 3.1.3.5: 4 KiB pages (MPS 0), NVM command set, round robin,
	 * 64-byte SQEs and 16-byte CQEs; then EN in a second write. */
	uint32_t cc = NVME_CC_SET_CSS(0) | NVME_CC_SET_MPS(0) | NVME_CC_SET_AMS(0) |
		      NVME_CC_SET_IOSQES(NVME_SQES_LOG2) | NVME_CC_SET_IOCQES(NVME_CQES_LOG2);

	drv_reg_set_cc(ctrl, cc);
	drv_reg_set_cc(ctrl, cc | NVME_CC_EN);
	return DRV_INIT_WAIT_READY;
}

static int init_wait_ready(struct nvmk_ctrl *ctrl, bool reset)
{
	uint32_t csts = drv_reg_csts(ctrl);

	if (csts == 0xffffffffu)
		return -ENODEV;
	if (csts & NVME_CSTS_CFS) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ, "controller fatal status while enabling");
		return -EIO;
	}
	if (!(csts & NVME_CSTS_RDY))
		return DRV_INIT_AGAIN;
	return reset ? DRV_INIT_NUM_QUEUES : DRV_INIT_IDENTIFY;
}

static int init_identify(struct nvmk_ctrl *ctrl)
{
	struct nvme_id_ctrl *id = ctrl->id;
	int rc;

	rc = drv_identify(ctrl, NVME_ID_CNS_CTRL, 0, id);
	if (rc)
		return rc;
	/* Base 2.0 Figure 275: SQES/CQES give the required (3:0) and maximum
	 * (7:4) entry sizes; we use 64 and 16 bytes. */
	if (NVME_ID_QES_MIN(id->sqes) > NVME_SQES_LOG2 ||
	    NVME_ID_QES_MAX(id->sqes) < NVME_SQES_LOG2 ||
	    NVME_ID_QES_MIN(id->cqes) > NVME_CQES_LOG2 ||
	    NVME_ID_QES_MAX(id->cqes) < NVME_CQES_LOG2) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ,
			 "Identify SQES 0x%02x / CQES 0x%02x do not allow 64/16-byte entries",
			 id->sqes, id->cqes);
		return -EINVAL;
	}
	/* MDTS in units of the minimum page size (MPSMIN = 0: 4 KiB); 0 = no
	 * limit. Capped by the one PRP list page per tracker. */
	ctrl->max_xfer = DRV_MAX_XFER;
	if (id->mdts && id->mdts < 10 && ((size_t)DRV_PAGE_SIZE << id->mdts) < DRV_MAX_XFER)
		ctrl->max_xfer = (size_t)DRV_PAGE_SIZE << id->mdts;
	ctrl->aer_limit = (unsigned)id->aerl + 1u;
	if (ctrl->aer_limit > DRV_MAX_AERS)
		ctrl->aer_limit = DRV_MAX_AERS;
	/* AERs stay outstanding: keep one admin slot for commands, or every
	 * command would find the queue full (depth 2 or 3, or CAP.MQES = 1) */
	if (ctrl->aer_limit > ctrl->aq.ntrk - 1u) {
		ctrl->aer_limit = ctrl->aq.ntrk - 1u;
		if (ctrl->aer_limit)
			nvmk_warn(ctrl->name, NVMK_LOG_NOQ,
				  "admin queue of %u entries: %u Asynchronous Event Request(s) "
				  "posted, one slot kept for commands",
				  ctrl->aq.depth, ctrl->aer_limit);
		else
			nvmk_warn(ctrl->name, NVMK_LOG_NOQ,
				  "admin queue of %u entries: no Asynchronous Event Request "
				  "posted (its one slot is kept for commands); namespace "
				  "changes are not reported",
				  ctrl->aq.depth);
	}
	return DRV_INIT_NUM_QUEUES;
}

static int init_num_queues(struct nvmk_ctrl *ctrl, bool reset)
{
	uint32_t dw0 = 0;
	uint16_t want = ctrl->want_queues, nsq, ncq, got;
	int rc;

	/* Base 2.0 5.27.1.5: both counts 0's based. */
	rc = drv_set_features(ctrl, NVME_FEAT_NUM_QUEUES, NVME_FEAT_NUMQ(want - 1, want - 1), NULL,
			      0, &dw0);
	if (rc)
		return rc;
	nsq = NVME_FEAT_NUMQ_NSQ(dw0);
	ncq = NVME_FEAT_NUMQ_NCQ(dw0);
	got = (uint16_t)((nsq < ncq ? nsq : ncq) + 1u);
	if (nsq == 0xffff || ncq == 0xffff)
		got = want; /* 65535 would be 65536 queues: more than we asked */
	if (got > want)
		got = want;
	if (got && b_size_short(ctrl, ctrl->dstrd, got)) {
		uint16_t fit = got;

		while (fit && b_size_short(ctrl, ctrl->dstrd, fit))
			fit--;
		nvmk_warn(ctrl->name, NVMK_LOG_NOQ,
			  "the doorbells of only %u of %u I/O queues lie inside BAR0 (%zu bytes, "
			  "CAP.DSTRD %u): using %u",
			  fit, got, ctrl->b->bar0_size, ctrl->dstrd, fit);
		got = fit;
	}
	if (reset) {
		if (got < ctrl->granted)
			nvmk_warn(ctrl->name, NVMK_LOG_NOQ,
				  "after reset only %u of %u I/O queues granted", got,
				  ctrl->granted);
	} else {
		ctrl->granted = got;
	}
	return DRV_INIT_HOST_ID;
}

static int init_host_id(struct nvmk_ctrl *ctrl)
{
	uint64_t hostid = ctrl->opts.host_id;
	int rc;

	if (!hostid)
		return DRV_INIT_ASYNC_EVENT_CONFIG;
	/* Base 2.0 5.27.1.25: 64-bit Host Identifier (EXHID = 0). */
	rc = drv_set_features(ctrl, NVME_FEAT_HOST_ID, 0, &hostid, sizeof(hostid), NULL);
	if (rc)
		return rc;
	return DRV_INIT_ASYNC_EVENT_CONFIG;
}

static int init_aec(struct nvmk_ctrl *ctrl)
{
	int rc;

	/* Namespace Attribute Notices (Base 2.0 5.27.1.7) so that resize,
	 * attach and detach are reported. Not fatal when refused. */
	rc = drv_set_features(ctrl, NVME_FEAT_ASYNC_EVENT, NVME_AEC_NS_ATTR, NULL, 0, NULL);
	if (rc)
		nvmk_warn(ctrl->name, NVMK_LOG_NOQ,
			  "Async Event Configuration refused (%s): no namespace notices",
			  strerror(-rc));
	return DRV_INIT_POST_AERS;
}

static int init_post_aers(struct nvmk_ctrl *ctrl)
{
	pthread_mutex_lock(&ctrl->admin_lock);
	drv_aer_post_all(ctrl);
	pthread_mutex_unlock(&ctrl->admin_lock);
	return DRV_INIT_DOORBELL_BUFFER;
}

static int init_dbbuf(struct nvmk_ctrl *ctrl, bool reset)
{
	struct nvme_sqe c = {.opc = NVME_ADM_DBBUF_CONFIG};
	size_t need = (size_t)(2u * (ctrl->granted + 1u)) * (4u << ctrl->dstrd);
	int rc;

	if (reset && !ctrl->dbbuf)
		return DRV_INIT_DONE;
	if (!reset) {
		if (ctrl->opts.dbbuf == NVMK_DBBUF_OFF || !(ctrl->id->oacs & NVME_OACS_DBBUF) ||
		    need > DRV_PAGE_SIZE)
			return DRV_INIT_DONE;
		rc = nvmk_backing_dma_alloc(ctrl->b, 2 * DRV_PAGE_SIZE, "dbbuf", &ctrl->dbbuf_mem);
		if (rc)
			return DRV_INIT_DONE;
	}
	memset(ctrl->dbbuf_mem.mem.vaddr, 0, 2 * DRV_PAGE_SIZE);
	/* Base 2.0 5.8: PRP1 = shadow doorbells, PRP2 = EventIdx buffer. */
	c.prp1 = nvmk_dma_buf_iova(&ctrl->dbbuf_mem, 0);
	c.prp2 = nvmk_dma_buf_iova(&ctrl->dbbuf_mem, DRV_PAGE_SIZE);
	rc = drv_admin_sync(ctrl, &c, NULL, 0, NULL);
	if (rc && reset) {
		/* the queue pairs write shadow doorbells: no way back to the
		 * registers under them (and ctrl->dbbuf is read unlocked) */
		nvmk_err(ctrl->name, NVMK_LOG_NOQ,
			 "Doorbell Buffer Config refused after reset (%d): the queues use shadow "
			 "doorbells",
			 rc);
		return rc == -ENODEV ? rc : -EIO;
	}
	if (rc) {
		nvmk_warn(ctrl->name, NVMK_LOG_NOQ,
			  "Doorbell Buffer Config failed (%s): using doorbell registers",
			  strerror(-rc));
		ctrl->dbbuf = false;
		if (rc == -ENODEV || rc == -EIO)
			return rc;
		return DRV_INIT_DONE;
	}
	if (!reset)
		ctrl->dbbuf = true;
	return DRV_INIT_DONE;
}

static uint32_t init_state_timeout(struct nvmk_ctrl *ctrl, int state)
{
	switch (state) {
	case DRV_INIT_WAIT_DISABLED:
	case DRV_INIT_WAIT_READY:
		return ctrl->ready_timeout_ms ? ctrl->ready_timeout_ms : 500u;
	default:
		return ctrl->opts.admin_timeout_ms;
	}
}

int drv_init_run(struct nvmk_ctrl *ctrl, bool reset)
{
	int state = DRV_INIT_DISABLE;
	uint64_t start = drv_clock_ms(), deadline = start + init_state_timeout(ctrl, state);

	while (state != DRV_INIT_DONE) {
		int next;

		drv_now_refresh(ctrl);
		switch (state) {
		case DRV_INIT_DISABLE:
			next = init_disable(ctrl);
			break;
		case DRV_INIT_WAIT_DISABLED:
			next = init_wait_disabled(ctrl);
			break;
		case DRV_INIT_CHECK_CAP:
			next = init_check_cap(ctrl, reset);
			break;
		case DRV_INIT_ADMIN_QUEUE:
			next = init_admin_queue(ctrl, reset);
			break;
		case DRV_INIT_ENABLE:
			next = init_enable(ctrl);
			break;
		case DRV_INIT_WAIT_READY:
			next = init_wait_ready(ctrl, reset);
			break;
		case DRV_INIT_IDENTIFY:
			next = init_identify(ctrl);
			break;
		case DRV_INIT_NUM_QUEUES:
			next = init_num_queues(ctrl, reset);
			break;
		case DRV_INIT_HOST_ID:
			next = init_host_id(ctrl);
			break;
		case DRV_INIT_ASYNC_EVENT_CONFIG:
			next = init_aec(ctrl);
			break;
		case DRV_INIT_POST_AERS:
			next = init_post_aers(ctrl);
			break;
		case DRV_INIT_DOORBELL_BUFFER:
			next = init_dbbuf(ctrl, reset);
			break;
		default:
			next = -EINVAL;
			break;
		}
		if (next == DRV_INIT_AGAIN) {
			struct timespec ts = {0, 1000000};

			if (drv_clock_ms() > deadline) {
				nvmk_err(ctrl->name, NVMK_LOG_NOQ,
					 "%s: state %s timed out after %u ms (CSTS 0x%08x)",
					 reset ? "reset" : "bring-up", drv_init_names[state],
					 init_state_timeout(ctrl, state), drv_reg_csts(ctrl));
				return -ETIMEDOUT;
			}
			nanosleep(&ts, NULL);
			continue;
		}
		if (next < 0) {
			nvmk_err(ctrl->name, NVMK_LOG_NOQ, "%s failed in state %s: %s",
				 reset ? "reset" : "bring-up", drv_init_names[state],
				 strerror(-next));
			return next;
		}
		nvmk_debug(ctrl->name, NVMK_LOG_NOQ, "%s: %s -> %s", reset ? "reset" : "bring-up",
			   drv_init_names[state], drv_init_names[next]);
		state = next;
		deadline = drv_clock_ms() + init_state_timeout(ctrl, state);
	}
	return 0;
}

/* ---- admin thread ---- */

void drv_ctrl_emit(struct nvmk_ctrl *ctrl, const struct nvmk_event *ev)
{
	if (ctrl->opts.event_cb)
		ctrl->opts.event_cb(ctrl->opts.event_ctx, ctrl, ev);
}

/* Wake every waiter: each I/O vector's eventfd (what the qpairs sleep on)
 * gets a token, so that a thread blocked in nvmk_qpair_wait notices a reset
 * or failure now. By vector, not by qpair: no list to walk, so no lock.
 * Recovery calls this with a SHARED qpair's lock held, and statistics and
 * save take ctrl->qp_lock before qpair locks: walking the qpair list here
 * under ctrl->qp_lock deadlocked against them (issue 11). */
void drv_ctrl_wake_all(struct nvmk_ctrl *ctrl)
{
	uint64_t one = 1;

	for (unsigned v = 1; v < ctrl->nvec; v++) {
		int fd = ctrl->b->ops->irq_fd(ctrl->b, v);

		if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
			(void)0; /* counter saturated: already signalled */
	}
	if (ctrl->wake_fd >= 0 && write(ctrl->wake_fd, &one, sizeof(one)) < 0)
		(void)0;
}

void *drv_admin_thread(void *arg)
{
	struct nvmk_ctrl *ctrl = arg;
	uint64_t v;

	/* acquire: pairs with the release store in nvmk_ctrl_close */
	while (!atomic_load_explicit(&ctrl->stop, memory_order_acquire)) {
		struct pollfd p[2] = {{.fd = ctrl->wake_fd, .events = POLLIN},
				      {.fd = ctrl->admin_irq_fd, .events = POLLIN}};
		int h;

		poll(p, ctrl->admin_irq_fd >= 0 ? 2 : 1, (int)ctrl->tick_ms);
		if (atomic_load_explicit(&ctrl->stop, memory_order_acquire))
			break;
		if ((p[0].revents & POLLIN) && read(ctrl->wake_fd, &v, sizeof(v)) < 0)
			(void)0;
		drv_now_refresh(ctrl);
		if (!drv_failed(ctrl)) {
			h = drv_reg_health(ctrl);
			if (h)
				drv_ctrl_fail(ctrl, h,
					      h == -ENODEV ? "surprise removal (CSTS all ones)"
							   : "controller fatal status (CSTS.CFS)");
		}
		/* trylock: a long sync admin command must not stop the clock */
		if (!drv_failed(ctrl) && pthread_mutex_trylock(&ctrl->admin_lock) == 0) {
			if ((p[1].revents & POLLIN) && read(ctrl->admin_irq_fd, &v, sizeof(v)) < 0)
				(void)0;
			drv_admin_poll_locked(ctrl);
			pthread_mutex_unlock(&ctrl->admin_lock);
		}
		if (!drv_failed(ctrl))
			drv_aer_handle_pending(ctrl);
		/* acq_rel: pairs with the release store of the request */
		if (atomic_exchange_explicit(&ctrl->need_reset, false, memory_order_acq_rel))
			drv_ctrl_reset(
			    ctrl, -ETIMEDOUT,
			    atomic_load_explicit(&ctrl->reset_req_epoch, memory_order_relaxed));
		/* acq_rel: take the flag set (release) by the failing thread */
		if (atomic_exchange_explicit(&ctrl->fail_event_pending, false,
					     memory_order_acq_rel)) {
			struct nvmk_event ev = {.type = NVMK_EVENT_CTRL_FAILED,
						.err = drv_failed(ctrl)};
			drv_ctrl_emit(ctrl, &ev);
		}
		/* acq_rel: take the flag set (release) by the resetting thread */
		if (atomic_exchange_explicit(&ctrl->reset_event_pending, false,
					     memory_order_acq_rel)) {
			struct nvmk_event ev = {.type = NVMK_EVENT_CTRL_RESET, .err = -ETIMEDOUT};
			drv_ctrl_emit(ctrl, &ev);
		}
	}
	return NULL;
}

/* Whether @pool's blocks lie on 2 MiB huge pages (physically contiguous). */
static bool pool_on_huge_pages(struct nvmk_dma_pool *pool)
{
	struct nvmk_dma_pool_stats st;

	if (!pool)
		return false;
	nvmk_dma_pool_get_stats(pool, &st);
	return st.hugetlb;
}


/* ---- open / close ---- */

void drv_opts_resolve(struct nvmk_ctrl *ctrl, const struct nvmk_ctrl_opts *in)
{
	struct nvmk_ctrl_opts *o = &ctrl->opts;
	long ncpu;
	unsigned tick;

	if (in)
		*o = *in;
	if (!o->admin_queue_depth)
		o->admin_queue_depth = DRV_DEFAULT_ADMIN_DEPTH;
	if (!o->io_queue_depth) {
		o->io_queue_depth = DRV_DEFAULT_IO_DEPTH;
		/* No-IOMMU VFIO without a private pool, or with a pool on 4 KiB
		 * pages (no huge pages free): DMA memory is 4 KiB pages,
		 * physically scattered, and a queue must be physically
		 * contiguous (CAP.CQR, Base 2.0 3.1.3.1): the default I/O queue
		 * is then one page (64 SQEs). Here, not in a program, so that
		 * the CLI, the manager and the daemon all get it. */
		if (nvmk_backing_vfio_is_noiommu(ctrl->b) && !pool_on_huge_pages(ctrl->b->pool))
			o->io_queue_depth = DRV_PAGE_SIZE / sizeof(struct nvme_sqe);
	}
	if (o->io_queue_depth > 65536)
		o->io_queue_depth = 65536;
	if (!o->max_io_queues) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		o->max_io_queues = (uint16_t)(ncpu > 0 && ncpu < 65535 ? ncpu : 1);
	}
	if (!o->admin_timeout_ms)
		o->admin_timeout_ms = DRV_DEFAULT_ADMIN_TIMEOUT_MS;
	if (!o->io_timeout_ms)
		o->io_timeout_ms = DRV_DEFAULT_IO_TIMEOUT_MS;
	if (!o->health_check_ms)
		o->health_check_ms = DRV_DEFAULT_TICK_MS;
	ctrl->want_queues = o->max_io_queues;
	/* The clock tick bounds how late a deadline is noticed. */
	tick = o->health_check_ms;
	if (tick > o->io_timeout_ms / 4)
		tick = o->io_timeout_ms / 4;
	if (tick > o->admin_timeout_ms / 4)
		tick = o->admin_timeout_ms / 4;
	/* 1 ms at the least, and only when asked for: the default tick is
	 * DRV_DEFAULT_TICK_MS, and short timeouts shorten it above. */
	if (tick < 1)
		tick = 1;
	ctrl->tick_ms = tick;
}

static void drv_ctrl_free(struct nvmk_ctrl *ctrl)
{
	if (ctrl->keep_dev_mem) {
		/* a device that did not stop may still write the admin queue and
		 * the shadow doorbells: leave their memory to it */
		free(ctrl->aq.trk);
		ctrl->aq.trk = NULL;
	}
	if (ctrl->dbbuf_mem.mem.vaddr && !ctrl->keep_dev_mem)
		nvmk_backing_dma_free(ctrl->b, &ctrl->dbbuf_mem);
	if (ctrl->aq.trk)
		drv_admin_fini(ctrl);
	if (ctrl->nvec)
		ctrl->b->ops->irq_disable(ctrl->b);
	drv_ctrl_free_host(ctrl);
}

void drv_mutex_init_recursive(pthread_mutex_t *m)
{
	pthread_mutexattr_t ma;

	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(m, &ma);
	pthread_mutexattr_destroy(&ma);
}

/*
 * A controller object with its locks, before any device work: shared by
 * bring-up and restore (which differ in @uid's source).
 */
struct nvmk_ctrl *drv_ctrl_alloc(struct nvmk_backing *b, uint64_t uid)
{
	struct nvmk_ctrl *ctrl = calloc(1, sizeof(*ctrl));

	if (!ctrl)
		return NULL;
	ctrl->b = b;
	ctrl->name = b->name;
	ctrl->wake_fd = -1;
	ctrl->admin_irq_fd = -1;
	ctrl->uid = uid;
	/* recursive: recovery holds it across the bring-up states, which issue
	 * admin commands themselves */
	drv_mutex_init_recursive(&ctrl->admin_lock);
	pthread_mutex_init(&ctrl->reset_lock, NULL);
	pthread_mutex_init(&ctrl->qp_lock, NULL);
	pthread_mutex_init(&ctrl->get_lock, NULL);
	pthread_mutex_init(&ctrl->ns_lock, NULL);
	return ctrl;
}

/* The host-side remainder of a controller, after its queues are gone or
 * detached: the wake eventfd, namespaces, tables, locks, the object. */
void drv_ctrl_free_host(struct nvmk_ctrl *ctrl)
{
	drv_owner_release(ctrl);
	if (ctrl->wake_fd >= 0)
		close(ctrl->wake_fd);
	drv_ns_fini(ctrl);
	free(ctrl->qid_used);
	free(ctrl->get_qps);
	free(ctrl->id);
	pthread_mutex_destroy(&ctrl->admin_lock);
	pthread_mutex_destroy(&ctrl->reset_lock);
	pthread_mutex_destroy(&ctrl->qp_lock);
	pthread_mutex_destroy(&ctrl->get_lock);
	pthread_mutex_destroy(&ctrl->ns_lock);
	free(ctrl);
}

/*
 * MSI-X: vector 0 for the admin queue, one per I/O queue while they last
 * (Base 2.0 5.4: IV of Create I/O CQ). The bring-up and the adoption of a
 * crashed driver's controller choose alike, so the vectors of the previous
 * driver's CQs get their eventfds again. False: no interrupts (polled).
 */
bool drv_irq_setup(struct nvmk_ctrl *ctrl)
{
	struct nvmk_backing *b = ctrl->b;
	unsigned nvec = b->ops->irq_count ? b->ops->irq_count(b) : 0;

	if (nvec > (unsigned)ctrl->want_queues + 1)
		nvec = (unsigned)ctrl->want_queues + 1;
	if (!nvec || b->ops->irq_enable(b, nvec) != 0)
		return false;
	ctrl->nvec = nvec;
	ctrl->admin_irq_fd = b->ops->irq_fd(b, 0);
	return true;
}

int nvmk_ctrl_open(struct nvmk_backing *b, const struct nvmk_ctrl_opts *opts,
		   struct nvmk_ctrl **out)
{
	struct nvmk_ctrl *ctrl;
	int rc;

	if (!b || !out)
		return -EINVAL;
	/* relaxed: a unique number, nothing is ordered by it */
	ctrl = drv_ctrl_alloc(b, atomic_fetch_add_explicit(&drv_next_uid, 1, memory_order_relaxed));
	if (!ctrl)
		return -ENOMEM;
	/* one owner per device, before the first register access; the reset
	 * below makes every saved state of the device stale */
	rc = drv_owner_claim(ctrl, "open");
	if (rc) {
		drv_ctrl_free_host(ctrl);
		return rc;
	}
	/* a previous driver's controller offered for adoption: not taken */
	if (nvmk_backing_device_view(b))
		drv_adopt_abandon(b);
	drv_gen_invalidate(b);
	drv_opts_resolve(ctrl, opts);
	drv_now_refresh(ctrl);
	ctrl->id = calloc(1, sizeof(*ctrl->id));
	ctrl->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!ctrl->id || ctrl->wake_fd < 0) {
		rc = -ENOMEM;
		goto fail;
	}

	if (!drv_irq_setup(ctrl))
		nvmk_warn(ctrl->name, NVMK_LOG_NOQ, "no interrupts: completions are polled");

	rc = drv_init_run(ctrl, false);
	if (rc)
		goto fail_disable;
	ctrl->qid_used = calloc((size_t)ctrl->granted + 1, 1);
	ctrl->get_qps = calloc(ctrl->granted, sizeof(*ctrl->get_qps));
	if (!ctrl->qid_used || !ctrl->get_qps) {
		rc = -ENOMEM;
		goto fail_disable;
	}
	ctrl->get_budget = ctrl->granted;
	drv_ns_scan_all(ctrl);
	rc = pthread_create(&ctrl->thread, NULL, drv_admin_thread, ctrl);
	if (rc) {
		rc = -rc;
		goto fail_disable;
	}
	ctrl->thread_started = true;
	nvmk_info(ctrl->name, NVMK_LOG_NOQ,
		  "ready: %u I/O queues, depth %u, max transfer %zu KiB, %u vectors%s",
		  ctrl->granted, ctrl->io_depth, ctrl->max_xfer / 1024, ctrl->nvec,
		  ctrl->dbbuf ? ", shadow doorbells" : "");
	*out = ctrl;
	return 0;

fail_disable:
	/* Leave the device disabled so that it stops touching our memory, and
	 * free that memory only once it did (CSTS.RDY = 0). */
	if (drv_reg_csts(ctrl) != 0xffffffffu) {
		drv_reg_set_cc(ctrl, 0);
		if (!drv_wait_csts(ctrl, NVME_CSTS_RDY, 0,
				   ctrl->ready_timeout_ms ? ctrl->ready_timeout_ms : 500u,
				   "CSTS.RDY = 0")) {
			nvmk_err(ctrl->name, NVMK_LOG_NOQ,
				 "the controller did not stop: its queue memory is left to it "
				 "(leaked)");
			ctrl->keep_dev_mem = true;
		}
	}
fail:
	drv_ctrl_free(ctrl);
	return rc;
}

bool drv_wait_csts(struct nvmk_ctrl *ctrl, uint32_t mask, uint32_t val, uint32_t ms,
		   const char *what)
{
	uint64_t deadline = drv_clock_ms() + ms;
	struct timespec ts = {0, 1000000};

	for (;;) {
		uint32_t csts = drv_reg_csts(ctrl);

		if (csts == 0xffffffffu || (csts & mask) == val)
			return true;
		if (drv_clock_ms() > deadline) {
			nvmk_warn(ctrl->name, NVMK_LOG_NOQ,
				  "%s not seen within %u ms (CSTS 0x%08x)", what, ms, csts);
			return false;
		}
		nanosleep(&ts, NULL);
	}
}

/*
 * Normal shutdown, then disable (Base 2.0 3.6.1): CC.SHN = normal, wait for
 * CSTS.SHST = complete bounded by RTD3E (microseconds) unless the caller
 * chose a bound, then CC.EN = 0 and wait for CSTS.RDY = 0. Skipped for a
 * removed device; a failed one is only disabled. Used by close and by a save
 * without keep-alive.
 */
/* RTD3E may say anything up to 71 minutes; like Linux, wait at most 60 s
 * unless the caller chose a bound. */
#define DRV_MAX_SHUTDOWN_MS 60000u

uint32_t drv_shutdown_wait_ms(const struct nvmk_ctrl *ctrl)
{
	uint64_t ms;

	if (ctrl->opts.shutdown_timeout_ms)
		return ctrl->opts.shutdown_timeout_ms;
	if (!ctrl->id->rtd3e)
		return DRV_DEFAULT_SHUTDOWN_MS;
	ms = ((uint64_t)ctrl->id->rtd3e + 999u) / 1000u; /* RTD3E is in microseconds */
	return ms > DRV_MAX_SHUTDOWN_MS ? DRV_MAX_SHUTDOWN_MS : (uint32_t)ms;
}

bool drv_ctrl_shutdown_device(struct nvmk_ctrl *ctrl)
{
	uint32_t cc, ms;

	if (drv_failed(ctrl) == -ENODEV || drv_reg_csts(ctrl) == 0xffffffffu)
		return true;
	ms = drv_shutdown_wait_ms(ctrl);
	if (!ctrl->opts.shutdown_timeout_ms && ms == DRV_MAX_SHUTDOWN_MS &&
	    (uint64_t)ctrl->id->rtd3e > (uint64_t)DRV_MAX_SHUTDOWN_MS * 1000u)
		nvmk_info(ctrl->name, NVMK_LOG_NOQ,
			  "RTD3E %u us: the shutdown wait is clamped to %u ms", ctrl->id->rtd3e,
			  DRV_MAX_SHUTDOWN_MS);
	cc = drv_reg_cc(ctrl);
	if ((cc & NVME_CC_EN) && !drv_failed(ctrl)) {
		drv_reg_set_cc(ctrl,
			       (cc & ~NVME_CC_SHN_MASK) | NVME_CC_SET_SHN(NVME_CC_SHN_NORMAL));
		drv_wait_csts(ctrl, NVME_CSTS_SHST_MASK, NVME_CSTS_SET_SHST(NVME_SHST_COMPLETE), ms,
			      "shutdown complete (CSTS.SHST)");
	}
	drv_reg_set_cc(ctrl, 0);
	return drv_wait_csts(ctrl, NVME_CSTS_RDY, 0, ctrl->ready_timeout_ms, "CSTS.RDY = 0");
}

/*
 * Before queue memory of a failed controller is freed, make sure the device
 * has stopped using it: CC.EN = 0 and CSTS.RDY = 0 (bounded by CAP.TO). A
 * removed device does no more DMA. Idempotent; control path.
 */
void drv_ctrl_quiesce(struct nvmk_ctrl *ctrl)
{
	int failed = drv_failed(ctrl);

	/* relaxed: set by drv_ctrl_fail before the epoch bump we came through */
	if (!failed || failed == -ENODEV ||
	    atomic_load_explicit(&ctrl->quiesced, memory_order_relaxed))
		return;
	if (drv_reg_csts(ctrl) == 0xffffffffu)
		return;
	drv_reg_set_cc(ctrl, 0);
	drv_wait_csts(ctrl, NVME_CSTS_RDY, 0, ctrl->ready_timeout_ms, "CSTS.RDY = 0");
	/* relaxed: an idempotence hint; the work it skips is repeatable */
	atomic_store_explicit(&ctrl->quiesced, true, memory_order_relaxed);
}

void nvmk_ctrl_close(struct nvmk_ctrl *ctrl)
{
	if (!ctrl)
		return;
	if (ctrl->thread_started) {
		uint64_t one = 1;

		/* release: pairs with the admin thread's acquire load */
		atomic_store_explicit(&ctrl->stop, true, memory_order_release);
		if (write(ctrl->wake_fd, &one, sizeof(one)) < 0)
			(void)0;
		pthread_join(ctrl->thread, NULL);
	}
	drv_ctrl_quiesce(ctrl);
	drv_qpair_destroy_all(ctrl);

	if (!drv_ctrl_shutdown_device(ctrl)) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ,
			 "the controller did not stop: its queue memory is left to it (leaked)");
		ctrl->keep_dev_mem = true;
	}
	/* Handles still open outlive the controller as orphans: the caller
	 * may still close them (and read their info) afterwards. Handles a
	 * restore made that nobody took back (nvmk_ctrl_restored_ns) have no
	 * caller: they stay on the list and drv_ns_fini frees them. */
	pthread_mutex_lock(&ctrl->ns_lock);
	for (struct nvmk_ns **pp = &ctrl->handles; *pp;) {
		struct nvmk_ns *ns = *pp;

		if (ns->restored) {
			pp = &ns->next_handle;
			continue;
		}
		*pp = ns->next_handle;
		ns->ctrl = NULL;
		ns->s = NULL;
	}
	pthread_mutex_unlock(&ctrl->ns_lock);
	nvmk_info(ctrl->name, NVMK_LOG_NOQ, "closed");
	drv_ctrl_free(ctrl);
}

/* ---- accessors ---- */

const char *nvmk_ctrl_name(const struct nvmk_ctrl *ctrl)
{
	return ctrl->name;
}

const struct nvme_id_ctrl *nvmk_ctrl_identify(const struct nvmk_ctrl *ctrl)
{
	return ctrl->id;
}

uint64_t nvmk_ctrl_cap(const struct nvmk_ctrl *ctrl)
{
	return ctrl->cap;
}

size_t nvmk_ctrl_mdts_bytes(const struct nvmk_ctrl *ctrl)
{
	return ctrl->max_xfer;
}

unsigned nvmk_ctrl_io_queues(const struct nvmk_ctrl *ctrl)
{
	return ctrl->granted;
}

struct nvmk_backing *nvmk_ctrl_backing(const struct nvmk_ctrl *ctrl)
{
	return ctrl->b;
}

int nvmk_ctrl_failed(const struct nvmk_ctrl *ctrl)
{
	return drv_failed(ctrl);
}

int nvmk_ctrl_dma_alloc(struct nvmk_ctrl *ctrl, size_t size, struct nvmk_dma_buf *buf)
{
	static _Atomic unsigned seq;
	char tag[32];

	/* pool tags must be unique per owner */
	/* relaxed: a unique number, nothing is ordered by it */
	snprintf(tag, sizeof(tag), "user%u",
		 atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed));
	return nvmk_backing_dma_alloc(ctrl->b, size, tag, buf);
}

void nvmk_ctrl_dma_free(struct nvmk_ctrl *ctrl, struct nvmk_dma_buf *buf)
{
	/* after close: the backing that mapped it (which outlives the ctrl) */
	nvmk_backing_dma_free(ctrl ? ctrl->b : nvmk_backing_of(buf ? buf->mem.vaddr : NULL), buf);
}

int nvmk_ctrl_active_ns(struct nvmk_ctrl *ctrl, uint32_t *nsids, unsigned max)
{
	struct nvme_ns_list *l = malloc(sizeof(*l));
	unsigned n = 0;
	int rc;

	if (!l)
		return -ENOMEM;
	rc = drv_identify(ctrl, NVME_ID_CNS_NS_ACTIVE_LIST, 0, l);
	if (!rc) {
		uint32_t prev = 0;

		for (unsigned i = 0; i < NVME_NS_LIST_MAX && l->nsid[i] && n < max; i++) {
			/* untrusted: ascending, nonzero, not the broadcast value */
			if (l->nsid[i] <= prev || l->nsid[i] == NVME_NSID_ALL)
				break;
			prev = l->nsid[i];
			nsids[n++] = l->nsid[i];
		}
		rc = (int)n;
	}
	free(l);
	return rc;
}

/* Identify Controller and what the driver takes from it (adopt.c: a
 * controller adopted from the device's view has no saved identify data). */
int drv_ctrl_identify(struct nvmk_ctrl *ctrl)
{
	int rc = init_identify(ctrl);

	return rc < 0 ? rc : 0;
}
