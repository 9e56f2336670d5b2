// SPDX-License-Identifier: MIT
/*
 * One device of the manager and its worker thread.
 *
 * As in OpenHCL's NvmeManager (one NvmeDriverManager task per device), every
 * control operation on a device runs on its own worker, in the order it was
 * asked for: bring-up, namespace opens, asynchronous events, save, restore,
 * shutdown. That serialises a device's control path without a lock held across
 * driver calls, and lets a slow or broken device (a bring-up waiting for
 * CSTS.RDY up to CAP.TO) delay only its own callers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manager/mgr_internal.h"
#include "nvmekeep/kernel_ns.h"
#include "nvmekeep/log.h"

const char *mgr_dev_kind(const struct mgr_dev *d)
{
	if (d->spec.kind == NVMK_MGR_BACKING_EMU)
		return "emu";
	if (d->spec.kind == NVMK_MGR_BACKING_KERNEL)
		return "kernel";
	/* the backing says what it is once it exists */
	return d->backing && d->backing->ops && d->backing->ops->kind ? d->backing->ops->kind
								      : "factory";
}

void mgr_dev_post(struct mgr_dev *d, struct mgr_req *req)
{
	req->next = NULL;
	req->done = false;
	pthread_mutex_lock(&d->qlock);
	if (d->tail)
		d->tail->next = req;
	else
		d->head = req;
	d->tail = req;
	pthread_cond_signal(&d->qcv);
	pthread_mutex_unlock(&d->qlock);
}

int mgr_dev_wait(struct mgr_dev *d, struct mgr_req *req)
{
	pthread_mutex_lock(&d->qlock);
	while (!req->done)
		pthread_cond_wait(&d->done_cv, &d->qlock);
	pthread_mutex_unlock(&d->qlock);
	return req->rc;
}

void mgr_dev_set_state(struct mgr_dev *d, enum nvmk_mgr_dev_state state, int err)
{
	pthread_mutex_lock(&d->lock);
	d->state = state;
	d->err = err;
	pthread_mutex_unlock(&d->lock);
}

/* Driver admin thread: hand the event to the worker, never block on it. */
static void dev_event_cb(void *ctx, struct nvmk_ctrl *ctrl, const struct nvmk_event *ev)
{
	struct mgr_dev *d = ctx;
	struct mgr_req *req = calloc(1, sizeof(*req));

	(void)ctrl;
	if (!req) {
		nvmk_err(d->id, NVMK_LOG_NOQ, "event %d dropped: out of memory", (int)ev->type);
		return;
	}
	req->type = MGR_REQ_EVENT;
	req->detached = true;
	req->ev = *ev;
	mgr_dev_post(d, req);
}

/* Create the backing if there is none yet (it survives a shutdown: a device
 * is brought up at most once per manager, but the backing must stay for
 * inspection and for a successor). */
int mgr_dev_make_backing(struct mgr_dev *d, bool restoring)
{
	struct nvmk_backing *b = NULL;
	struct nvmk_emu *emu = NULL;
	int rc;

	if (d->backing)
		return 0;
	if (d->spec.kind == NVMK_MGR_BACKING_EMU)
		rc = nvmk_backing_local_create(&d->spec.emu, &b, &emu);
	else
		rc = d->spec.factory.create(d->spec.factory.ctx, d->id, restoring, &b);
	if (rc == 0 && !b)
		rc = -EINVAL;
	if (rc) {
		nvmk_err(d->id, NVMK_LOG_NOQ, "creating the %s backing failed: %d", mgr_dev_kind(d),
			 rc);
		return rc;
	}
	/* the backing allocates queue memory from the manager's pool, so that
	 * the memory of a live device can be reclaimed by a successor -- unless
	 * it came with one to adopt the controller from: a vfio-user device
	 * whose crashed previous client's pool the server handed back (its
	 * queues live there) */
	if (!nvmk_backing_device_view(b))
		b->pool = d->mgr->pool;
	pthread_mutex_lock(&d->lock);
	d->backing = b;
	d->emu = emu;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

void mgr_dev_ctrl_opts(struct mgr_dev *d, struct nvmk_ctrl_opts *o)
{
	*o = d->spec.ctrl_opts;
	o->event_cb = dev_event_cb;
	o->event_ctx = d;
}

/* Errors a request gets without touching the device; 1 if it may proceed. */
static int dev_usable(struct mgr_dev *d)
{
	switch (d->state) {
	case NVMK_MGR_DEV_READY:
		return 1;
	case NVMK_MGR_DEV_FAILED:
		return d->err;
	case NVMK_MGR_DEV_SHUTDOWN:
	case NVMK_MGR_DEV_SAVED:
		return -ESHUTDOWN;
	default:
		return 0;
	}
}

/* A kernel-path device: the kernel brought the controller up; we only
 * check that the device is there (a PCI function bound to nvme, or the
 * path), so that a wrong id fails the device as a failed bring-up would. */
static int dev_load_kernel(struct mgr_dev *d)
{
	const char *dev = d->spec.kernel.path;
	struct nvmk_dev_spec ds;
	char sys[300];
	int rc = 0;

	/* a PCI function, or else a path (relative ones too: kernel.path is
	 * a path by definition) */
	if (!nvmk_dev_spec_parse(dev, &ds, NULL, 0) && ds.kind == NVMK_DEV_PCI) {
		snprintf(sys, sizeof(sys), "/sys/bus/pci/devices/%s/nvme", ds.pci_addr);
		if (access(sys, F_OK))
			rc = -ENODEV;
	} else if (access(dev, R_OK | W_OK)) {
		rc = -errno;
	}
	if (rc) {
		nvmk_err(d->id, NVMK_LOG_NOQ, "kernel device %s unusable: %s", dev, strerror(-rc));
		mgr_dev_set_state(d, NVMK_MGR_DEV_FAILED, rc);
		return rc;
	}
	mgr_dev_set_state(d, NVMK_MGR_DEV_READY, 0);
	nvmk_info(d->id, NVMK_LOG_NOQ, "ready: kernel path (%s)", dev);
	return 0;
}

static int dev_load(struct mgr_dev *d)
{
	struct nvmk_ctrl_opts o;
	struct nvmk_ctrl *ctrl;
	int rc = dev_usable(d);

	if (rc)
		return rc > 0 ? 0 : rc;
	if (d->spec.kind == NVMK_MGR_BACKING_KERNEL)
		return dev_load_kernel(d);
	mgr_dev_set_state(d, NVMK_MGR_DEV_LOADING, 0);
	rc = mgr_dev_make_backing(d, false);
	if (rc)
		goto fail;
	mgr_dev_ctrl_opts(d, &o);
	/* a controller a crashed client left is adopted when the device offers
	 * its view, else reset and brought up (logged which and why) */
	rc = nvmk_ctrl_open_or_adopt(d->backing, &o, &ctrl, NULL);
	if (rc) {
		nvmk_err(d->id, NVMK_LOG_NOQ, "bring-up failed: %d", rc);
		goto fail;
	}
	pthread_mutex_lock(&d->lock);
	d->ctrl = ctrl;
	d->state = NVMK_MGR_DEV_READY;
	d->err = 0;
	pthread_mutex_unlock(&d->lock);
	nvmk_info(d->id, NVMK_LOG_NOQ, "ready: %u I/O queues granted", nvmk_ctrl_io_queues(ctrl));
	return 0;
fail:
	/* every later caller gets this error: no retry behind their back */
	mgr_dev_set_state(d, NVMK_MGR_DEV_FAILED, rc);
	return rc;
}

static int dev_get_ns(struct mgr_dev *d, uint32_t nsid, struct nvmk_ns **out)
{
	struct mgr_ns_entry *grown;
	struct nvmk_ns *ns;
	int rc = dev_load(d);

	if (rc)
		return rc;
	for (unsigned i = 0; i < d->nns; i++)
		if (d->ns[i].nsid == nsid) {
			*out = d->ns[i].ns;
			return 0;
		}
	if (d->spec.kind == NVMK_MGR_BACKING_KERNEL)
		rc = nvmk_kns_open(d->spec.kernel.path, nsid, &ns);
	else
		rc = nvmk_ns_open(d->ctrl, nsid, NVMK_NS_SHARED, &ns);
	if (rc) {
		nvmk_warn(d->id, NVMK_LOG_NOQ, "namespace %u: open failed: %d", nsid, rc);
		return rc;
	}
	pthread_mutex_lock(&d->lock);
	if (d->nns == d->ns_cap) {
		unsigned cap = d->ns_cap ? d->ns_cap * 2 : 4;

		grown = realloc(d->ns, cap * sizeof(*grown));
		if (!grown) {
			pthread_mutex_unlock(&d->lock);
			nvmk_ns_close(ns);
			return -ENOMEM;
		}
		d->ns = grown;
		d->ns_cap = cap;
	}
	d->ns[d->nns++] = (struct mgr_ns_entry){.nsid = nsid, .ns = ns};
	pthread_mutex_unlock(&d->lock);
	*out = ns;
	return 0;
}

int mgr_dev_kernel_open_ns(struct mgr_dev *d, uint32_t nsid, struct nvmk_ns **out)
{
	mgr_dev_set_state(d, NVMK_MGR_DEV_READY, 0);
	return dev_get_ns(d, nsid, out);
}

struct nvmk_ctrl *mgr_dev_take_ctrl(struct mgr_dev *d, enum nvmk_mgr_dev_state state, int err,
				    bool close_ns)
{
	struct nvmk_ctrl *ctrl;
	struct mgr_ns_entry *ns;
	unsigned nns;

	pthread_mutex_lock(&d->lock);
	ctrl = d->ctrl;
	ns = d->ns;
	nns = d->nns;
	d->ctrl = NULL;
	d->ns = NULL;
	d->nns = d->ns_cap = 0;
	d->state = state;
	d->err = err;
	pthread_mutex_unlock(&d->lock);
	for (unsigned i = 0; close_ns && i < nns; i++)
		nvmk_ns_close(ns[i].ns);
	free(ns);
	return ctrl;
}

/* ---- client DMA buffers ---- */

void mgr_buf_pool_tag(const char *tag, char out[NVMK_DMA_TAG_MAX + 1])
{
	/* a prefix of its own keeps client tags apart from the driver's */
	snprintf(out, NVMK_DMA_TAG_MAX + 1, "c.%s", tag);
}

static int tag_check(const char *tag)
{
	size_t len = tag ? strlen(tag) : 0;

	if (len == 0 || len > NVMK_MGR_TAG_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (tag[i] <= 0x20 || tag[i] >= 0x7f)
			return -EINVAL;
	return 0;
}

static struct mgr_buf *buf_find(struct mgr_dev *d, const char *tag)
{
	for (unsigned i = 0; i < d->nbufs; i++)
		if (strcmp(d->bufs[i].tag, tag) == 0)
			return &d->bufs[i];
	return NULL;
}

int mgr_dev_buf_add(struct mgr_dev *d, const char *tag, const struct nvmk_dma_buf *buf)
{
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	if (d->nbufs == d->bufs_cap) {
		unsigned cap = d->bufs_cap ? d->bufs_cap * 2 : 8;
		struct mgr_buf *grown = realloc(d->bufs, cap * sizeof(*grown));

		if (grown) {
			d->bufs = grown;
			d->bufs_cap = cap;
		} else {
			rc = -ENOMEM;
		}
	}
	if (rc == 0) {
		struct mgr_buf *mb = &d->bufs[d->nbufs++];

		snprintf(mb->tag, sizeof(mb->tag), "%s", tag);
		mb->buf = *buf;
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

static int dev_dma_alloc(struct mgr_dev *d, const char *tag, size_t size, struct nvmk_dma_buf *out)
{
	char ptag[NVMK_DMA_TAG_MAX + 1];
	struct nvmk_dma_buf buf;
	int rc = tag_check(tag);

	if (rc || size == 0)
		return -EINVAL;
	if (d->spec.kind == NVMK_MGR_BACKING_KERNEL)
		return -EOPNOTSUPP; /* no device memory: any page-aligned memory works */
	rc = dev_load(d);
	if (rc)
		return rc;
	if (buf_find(d, tag))
		return -EEXIST;
	mgr_buf_pool_tag(tag, ptag);
	rc = nvmk_backing_dma_alloc(d->backing, size, ptag, &buf);
	if (rc)
		return rc;
	rc = mgr_dev_buf_add(d, tag, &buf);
	if (rc) {
		nvmk_backing_dma_free(d->backing, &buf);
		return rc;
	}
	*out = buf;
	return 0;
}

static int dev_dma_get(struct mgr_dev *d, const char *tag, struct nvmk_dma_buf *out)
{
	struct mgr_buf *mb = tag ? buf_find(d, tag) : NULL;

	if (!mb)
		return -ENOENT;
	*out = mb->buf;
	return 0;
}

static int dev_dma_free(struct mgr_dev *d, const char *tag)
{
	struct mgr_buf *mb = tag ? buf_find(d, tag) : NULL;
	struct nvmk_dma_buf buf;

	if (!mb)
		return -ENOENT;
	buf = mb->buf;
	pthread_mutex_lock(&d->lock);
	*mb = d->bufs[--d->nbufs];
	pthread_mutex_unlock(&d->lock);
	nvmk_backing_dma_free(d->backing, &buf);
	return 0;
}

/* Free every client buffer (the device no longer uses them). */
static void dev_dma_free_all(struct mgr_dev *d)
{
	while (d->nbufs)
		dev_dma_free(d, d->bufs[d->nbufs - 1].tag);
}

/* Queue creation is control work of the device (Create I/O CQ/SQ on its
 * admin queue), so it runs here, in order with bring-up and save. */
static int dev_create_qpair(struct mgr_dev *d, const struct nvmk_qpair_opts *o,
			    struct nvmk_qpair **out)
{
	int rc = dev_load(d);
	struct nvmk_ns *ns;

	if (rc)
		return rc;
	if (d->spec.kind == NVMK_MGR_BACKING_KERNEL) {
		/* a kernel qpair serves every kernel namespace; namespace 1
		 * only names it */
		rc = dev_get_ns(d, 1, &ns);
		if (rc == 0)
			rc = nvmk_kns_qpair_create(ns, o, out);
	} else {
		rc = nvmk_qpair_create(d->ctrl, o, out);
	}
	if (rc)
		nvmk_warn(d->id, NVMK_LOG_NOQ, "creating a queue pair failed: %d", rc);
	return rc;
}

static int dev_shutdown(struct mgr_dev *d)
{
	struct nvmk_ctrl *ctrl;
	int err = d->state == NVMK_MGR_DEV_FAILED ? d->err : 0;

	if (d->state == NVMK_MGR_DEV_SHUTDOWN || d->state == NVMK_MGR_DEV_SAVED)
		return 0;
	ctrl = mgr_dev_take_ctrl(d, NVMK_MGR_DEV_SHUTDOWN, err, true);
	if (ctrl) {
		/* Base 2.0 3.6.1: CC.SHN normal shutdown, then CC.EN = 0 */
		nvmk_ctrl_close(ctrl);
		nvmk_info(d->id, NVMK_LOG_NOQ, "shut down");
	}
	/* the controller is disabled: no DMA into the buffers any more */
	dev_dma_free_all(d);
	return 0;
}

/* What a client still holds on the device, named in @what: its DMA
 * buffers, queue pairs of its own (nvmk_mgr_create_qpair), and commands in
 * flight on the driver's shared per-thread ones (the exclusive per-thread
 * ones belong to threads that wait for their own commands). 0 when nothing. */
static int dev_busy(struct mgr_dev *d, char *what, size_t len)
{
	struct nvmk_queue_stat st[NVMK_MGR_STATUS_MAX_QUEUES];
	unsigned own = 0, inflight = 0;
	int n = d->ctrl ? nvmk_ctrl_queue_stats(d->ctrl, st, NVMK_MGR_STATUS_MAX_QUEUES) : 0;

	for (int i = 0; i < n && i < NVMK_MGR_STATUS_MAX_QUEUES; i++) {
		if (st[i].client)
			own++;
		else if (st[i].outstanding > 0)
			inflight += (unsigned)st[i].outstanding;
	}
	if (n > NVMK_MGR_STATUS_MAX_QUEUES)
		own += (unsigned)n - NVMK_MGR_STATUS_MAX_QUEUES; /* unseen: count them busy */
	snprintf(what, len, "%u client buffers, %u client queue pairs, %u commands in flight",
		 d->nbufs, own, inflight);
	return d->nbufs || own || inflight ? -EBUSY : 0;
}

int mgr_dev_remove(struct mgr_dev *d, bool force)
{
	char what[128];

	if (dev_busy(d, what, sizeof(what))) {
		if (!force) {
			nvmk_warn(d->id, NVMK_LOG_NOQ,
				  "remove refused: in use (%s); a forced remove closes them", what);
			return -EBUSY;
		}
		nvmk_warn(d->id, NVMK_LOG_NOQ, "forced remove: closing what is in use (%s)", what);
	}
	/* namespace handles closed, CC.SHN then CC.EN = 0 (Base 2.0 3.6.1),
	 * client buffers back to the pool; the backing goes with the worker */
	return dev_shutdown(d);
}

static void dev_event(struct mgr_dev *d, const struct nvmk_event *ev)
{
	switch (ev->type) {
	case NVMK_EVENT_CTRL_FAILED:
		nvmk_err(d->id, NVMK_LOG_NOQ, "controller failed: %d; the device is failed",
			 ev->err);
		if (d->state == NVMK_MGR_DEV_READY)
			mgr_dev_set_state(d, NVMK_MGR_DEV_FAILED, ev->err ? ev->err : -EIO);
		break;
	case NVMK_EVENT_CTRL_RESET:
		nvmk_warn(d->id, NVMK_LOG_NOQ, "controller was reset by recovery (cause %d)",
			  ev->err);
		break;
	case NVMK_EVENT_NS_ADDED:
		nvmk_info(d->id, NVMK_LOG_NOQ, "namespace %u added", ev->nsid);
		break;
	case NVMK_EVENT_NS_REMOVED:
		nvmk_warn(d->id, NVMK_LOG_NOQ, "namespace %u removed", ev->nsid);
		break;
	case NVMK_EVENT_NS_RESIZED:
		nvmk_info(d->id, NVMK_LOG_NOQ, "namespace %u resized: %llu -> %llu blocks",
			  ev->nsid, (unsigned long long)ev->old_nblocks,
			  (unsigned long long)ev->new_nblocks);
		break;
	default:
		nvmk_info(d->id, NVMK_LOG_NOQ, "namespace %u changed", ev->nsid);
		break;
	}
}

static void *dev_worker(void *arg)
{
	struct mgr_dev *d = arg;
	bool stop = false;

	while (!stop) {
		struct mgr_req *req;

		pthread_mutex_lock(&d->qlock);
		while (!d->head)
			pthread_cond_wait(&d->qcv, &d->qlock);
		req = d->head;
		d->head = req->next;
		if (!d->head)
			d->tail = NULL;
		pthread_mutex_unlock(&d->qlock);

		switch (req->type) {
		case MGR_REQ_LOAD:
			req->rc = dev_load(d);
			break;
		case MGR_REQ_GET_NS:
			req->rc = dev_get_ns(d, req->nsid, &req->ns);
			break;
		case MGR_REQ_EVENT:
			dev_event(d, &req->ev);
			req->rc = 0;
			break;
		case MGR_REQ_SHUTDOWN:
			req->rc = dev_shutdown(d);
			break;
		case MGR_REQ_SAVE:
			req->rc = mgr_dev_save(d, req);
			break;
		case MGR_REQ_RESTORE:
			req->rc = mgr_dev_restore(d, req);
			break;
		case MGR_REQ_DMA_ALLOC:
			req->rc = dev_dma_alloc(d, req->tag, req->size, &req->buf);
			break;
		case MGR_REQ_DMA_GET:
			req->rc = dev_dma_get(d, req->tag, &req->buf);
			break;
		case MGR_REQ_DMA_FREE:
			req->rc = dev_dma_free(d, req->tag);
			break;
		case MGR_REQ_QPAIR:
			req->rc = dev_create_qpair(d, req->qopts, &req->qp);
			break;
		case MGR_REQ_REMOVE:
			req->rc = mgr_dev_remove(d, req->force);
			break;
		case MGR_REQ_STOP:
			/* nothing may follow STOP: destroy posts it last */
			req->rc = dev_shutdown(d);
			stop = true;
			break;
		default:
			req->rc = -EINVAL;
			break;
		}
		pthread_mutex_lock(&d->lock);
		d->requests++;
		pthread_mutex_unlock(&d->lock);

		if (req->detached) {
			free(req);
			continue;
		}
		pthread_mutex_lock(&d->qlock);
		req->done = true;
		pthread_cond_broadcast(&d->done_cv);
		pthread_mutex_unlock(&d->qlock);
	}
	return NULL;
}

int mgr_dev_start(struct mgr_dev *d)
{
	int rc;

	d->state = NVMK_MGR_DEV_REGISTERED;
	rc = pthread_create(&d->thread, NULL, dev_worker, d);
	if (rc) {
		nvmk_err(d->id, NVMK_LOG_NOQ, "starting the worker failed: %d", rc);
		return -rc;
	}
	d->thread_started = true;
	return 0;
}

void mgr_dev_stop(struct mgr_dev *d)
{
	struct mgr_req req = {.type = MGR_REQ_STOP};

	if (d->thread_started) {
		mgr_dev_post(d, &req);
		mgr_dev_wait(d, &req);
		pthread_join(d->thread, NULL);
		d->thread_started = false;
	}
	/* the worker is gone: events still queued (none can arrive now that the
	 * controller is closed) are freed unprocessed */
	while (d->head) {
		struct mgr_req *r = d->head;

		d->head = r->next;
		if (r->detached)
			free(r);
	}
	nvmk_backing_destroy(d->backing);
	d->backing = NULL;
	d->emu = NULL;
}
