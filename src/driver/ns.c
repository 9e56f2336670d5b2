// SPDX-License-Identifier: MIT
/*
 * Namespaces: identify, open/close, the NVM command submit functions with
 * MDTS splitting (NVM-CS 1.0 3.2), Dataset Management ranges, reservations,
 * and the synchronous wrappers that accept any buffer.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "driver/queue.h"

/* ---- namespace state ---- */

struct drv_ns_state *drv_ns_state_get(struct nvmk_ctrl *ctrl, uint32_t nsid, bool create)
{
	struct drv_ns_state *s;

	/* ns_lock held */
	for (unsigned i = 0; i < ctrl->nns; i++)
		if (ctrl->ns[i]->nsid == nsid)
			return ctrl->ns[i];
	if (!create)
		return NULL;
	if (ctrl->nns == ctrl->ns_cap) {
		unsigned cap = ctrl->ns_cap ? ctrl->ns_cap * 2 : 8;
		struct drv_ns_state **v = realloc(ctrl->ns, cap * sizeof(*v));

		if (!v)
			return NULL;
		ctrl->ns = v;
		ctrl->ns_cap = cap;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->nsid = nsid;
	ctrl->ns[ctrl->nns++] = s;
	return s;
}

void drv_ns_fini(struct nvmk_ctrl *ctrl)
{
	/* Handles a restore made and nobody took back (nvmk_ctrl_restored_ns)
	 * are the controller's own: freed with it (found by fuzz_ctrl_restore). */
	for (struct nvmk_ns **pp = &ctrl->handles; *pp;) {
		struct nvmk_ns *ns = *pp;

		if (ns->restored) {
			*pp = ns->next_handle;
			free(ns);
		} else {
			pp = &ns->next_handle;
		}
	}
	for (unsigned i = 0; i < ctrl->nns; i++)
		free(ctrl->ns[i]);
	free(ctrl->ns);
	ctrl->ns = NULL;
	ctrl->nns = ctrl->ns_cap = 0;
}

/* Identify Namespace; an inactive NSID reads as zeroes or fails with Invalid
 * Namespace (Base 2.0 5.17.2.1): both -> -ENODEV. Validates the format. */
static int ns_identify(struct nvmk_ctrl *ctrl, uint32_t nsid, uint64_t *nblocks, uint8_t *shift,
		       uint8_t *rescap)
{
	struct nvme_id_ns *id = malloc(sizeof(*id));
	unsigned fmt;
	int rc;

	if (!id)
		return -ENOMEM;
	rc = drv_identify(ctrl, NVME_ID_CNS_NS, nsid, id);
	if (rc)
		goto out;
	if (id->nsze == 0) {
		rc = -ENODEV;
		goto out;
	}
	fmt = NVME_FLBAS_INDEX(id->flbas);
	if (fmt > id->nlbaf || fmt >= 64) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ, "ns %u: FLBAS format %u beyond NLBAF %u", nsid,
			 fmt, id->nlbaf);
		rc = -EINVAL;
		goto out;
	}
	if (id->lbaf[fmt].ms != 0 || id->lbaf[fmt].lbads < 9 || id->lbaf[fmt].lbads > 16) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ,
			 "ns %u: unsupported format (LBADS %u, metadata %u bytes)", nsid,
			 id->lbaf[fmt].lbads, id->lbaf[fmt].ms);
		rc = -EINVAL;
		goto out;
	}
	*nblocks = id->nsze;
	*shift = id->lbaf[fmt].lbads;
	*rescap = id->rescap;
out:
	free(id);
	return rc;
}

/* Admin thread (AER) or bring-up: look at @nsid again and report. */
void drv_ns_rescan(struct nvmk_ctrl *ctrl, uint32_t nsid)
{
	struct nvmk_event ev = {.nsid = nsid};
	struct drv_ns_state *s;
	uint64_t nblocks = 0;
	uint8_t shift = 0, rescap = 0;
	int rc;

	/* untrusted log content: only NSIDs the controller can have (NN) */
	if (nsid == 0 || nsid > ctrl->id->nn) {
		nvmk_warn(ctrl->name, NVMK_LOG_NOQ, "ignoring change notice for NSID %u (NN %u)",
			  nsid, ctrl->id->nn);
		return;
	}
	rc = ns_identify(ctrl, nsid, &nblocks, &shift, &rescap);
	if (rc && rc != -ENODEV) {
		nvmk_warn(ctrl->name, NVMK_LOG_NOQ, "ns %u: identify after change failed: %d", nsid,
			  rc);
		return;
	}
	pthread_mutex_lock(&ctrl->ns_lock);
	s = drv_ns_state_get(ctrl, nsid, true);
	if (!s) {
		pthread_mutex_unlock(&ctrl->ns_lock);
		return;
	}
	/* ns_lock held: we are the only writer, so nblocks is read and written
	 * relaxed (a size snapshot for readers); removed is stored with release,
	 * pairing with nvmk_ns_info's acquire (the I/O paths only need the flag) */
	if (rc == -ENODEV) {
		atomic_store_explicit(&s->removed, true, memory_order_release);
		ev.type = NVMK_EVENT_NS_REMOVED;
		ev.old_nblocks = atomic_load_explicit(&s->nblocks, memory_order_relaxed);
	} else if (!s->known || atomic_load_explicit(&s->removed, memory_order_relaxed)) {
		s->known = true;
		s->lba_shift = shift;
		s->rescap = rescap;
		atomic_store_explicit(&s->nblocks, nblocks, memory_order_relaxed);
		atomic_store_explicit(&s->removed, false, memory_order_release);
		ev.type = NVMK_EVENT_NS_ADDED;
		ev.new_nblocks = nblocks;
	} else {
		ev.old_nblocks = atomic_load_explicit(&s->nblocks, memory_order_relaxed);
		ev.new_nblocks = nblocks;
		ev.type = ev.old_nblocks != nblocks ? NVMK_EVENT_NS_RESIZED : NVMK_EVENT_NS_CHANGED;
		atomic_store_explicit(&s->nblocks, nblocks, memory_order_relaxed);
	}
	if (rc != -ENODEV)
		s->known = true;
	pthread_mutex_unlock(&ctrl->ns_lock);
	nvmk_info(ctrl->name, NVMK_LOG_NOQ, "ns %u: %s (%llu -> %llu blocks)", nsid,
		  ev.type == NVMK_EVENT_NS_REMOVED   ? "removed"
		  : ev.type == NVMK_EVENT_NS_ADDED   ? "added"
		  : ev.type == NVMK_EVENT_NS_RESIZED ? "resized"
						     : "changed",
		  (unsigned long long)ev.old_nblocks, (unsigned long long)ev.new_nblocks);
	drv_ctrl_emit(ctrl, &ev);
}

/* Bring-up: learn the active namespaces so that later notices can be told
 * apart (resize vs. new). */
void drv_ns_scan_all(struct nvmk_ctrl *ctrl)
{
	uint32_t *ids = malloc(NVME_NS_LIST_MAX * sizeof(*ids));
	int n;

	if (!ids)
		return;
	n = nvmk_ctrl_active_ns(ctrl, ids, NVME_NS_LIST_MAX);
	for (int i = 0; i < n; i++) {
		uint64_t nblocks;
		uint8_t shift, rescap;

		if (ns_identify(ctrl, ids[i], &nblocks, &shift, &rescap))
			continue;
		pthread_mutex_lock(&ctrl->ns_lock);
		struct drv_ns_state *s = drv_ns_state_get(ctrl, ids[i], true);

		if (s) {
			s->known = true;
			s->lba_shift = shift;
			s->rescap = rescap;
			atomic_store_explicit(&s->nblocks, nblocks, memory_order_relaxed);
		}
		pthread_mutex_unlock(&ctrl->ns_lock);
	}
	free(ids);
}

int nvmk_ns_open(struct nvmk_ctrl *ctrl, uint32_t nsid, uint32_t flags, struct nvmk_ns **out)
{
	struct drv_ns_state *s;
	struct nvmk_ns *ns;
	uint64_t nblocks;
	uint8_t shift, rescap;
	bool shared = (flags & NVMK_NS_SHARED) != 0;
	uint64_t maxb;
	int rc;

	if (!ctrl || !out || nsid == 0 || nsid == NVME_NSID_ALL)
		return -EINVAL;
	rc = drv_failed(ctrl);
	if (rc)
		return rc;
	rc = ns_identify(ctrl, nsid, &nblocks, &shift, &rescap);
	if (rc)
		return rc;
	ns = calloc(1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	pthread_mutex_lock(&ctrl->ns_lock);
	s = drv_ns_state_get(ctrl, nsid, true);
	if (!s) {
		pthread_mutex_unlock(&ctrl->ns_lock);
		free(ns);
		return -ENOMEM;
	}
	if (s->nopen && !(shared && s->open_shared)) {
		pthread_mutex_unlock(&ctrl->ns_lock);
		free(ns);
		return -EBUSY;
	}
	s->known = true;
	s->lba_shift = shift;
	s->rescap = rescap;
	atomic_store_explicit(&s->nblocks, nblocks, memory_order_relaxed);
	atomic_store_explicit(&s->removed, false, memory_order_release);
	s->nopen++;
	s->open_shared = shared;
	ns->ctrl = ctrl;
	drv_ns_handle_link(ctrl, ns);
	pthread_mutex_unlock(&ctrl->ns_lock);

	ns->ctrl = ctrl;
	ns->s = s;
	ns->nsid = nsid;
	ns->sqe_nsid = (uint64_t)nsid << 32;
	ns->lba_shift = shift;
	ns->shared = shared;
	maxb = ctrl->max_xfer >> shift;
	if (maxb > NVME_MAX_NLB)
		maxb = NVME_MAX_NLB;
	if (maxb == 0)
		maxb = 1;
	ns->max_blocks = (uint32_t)maxb;
	*out = ns;
	return 0;
}

void nvmk_ns_close(struct nvmk_ns *ns)
{
	if (!ns)
		return;
	if (drv_unlikely(ns->kern))
		return drv_kns_close(ns);
	if (!ns->ctrl) { /* orphaned by nvmk_ctrl_close */
		free(ns);
		return;
	}
	pthread_mutex_lock(&ns->ctrl->ns_lock);
	if (ns->s->nopen)
		ns->s->nopen--;
	drv_ns_handle_unlink(ns->ctrl, ns);
	pthread_mutex_unlock(&ns->ctrl->ns_lock);
	free(ns);
}

void nvmk_ns_info(const struct nvmk_ns *ns, struct nvmk_ns_info *info)
{
	if (drv_unlikely(ns->kern))
		return drv_kns_info(ns, info);
	memset(info, 0, sizeof(*info));
	info->nsid = ns->nsid;
	info->lba_shift = ns->lba_shift;
	info->block_size = 1u << ns->lba_shift;
	if (!ns->ctrl) { /* orphaned by nvmk_ctrl_close: no device behind it */
		info->removed = true;
		return;
	}
	/* relaxed: a size snapshot; acquire on removed pairs with the release in rescan */
	info->nblocks = atomic_load_explicit(&ns->s->nblocks, memory_order_relaxed);
	info->capacity = info->nblocks << ns->lba_shift;
	info->max_xfer_blocks = ns->max_blocks;
	info->oncs = ns->ctrl->id->oncs;
	info->rescap = ns->s->rescap;
	info->removed = atomic_load_explicit(&ns->s->removed, memory_order_acquire);
}

struct nvmk_ctrl *nvmk_ns_ctrl(const struct nvmk_ns *ns)
{
	return ns->ctrl;
}

/* Why a sync wrapper got no qpair: failed controller, servicing, or memory. */
static int sync_no_qp_err(const struct nvmk_ctrl *ctrl)
{
	if (drv_failed(ctrl))
		return drv_failed(ctrl);
	/* relaxed: servicing in progress, the caller retries later */
	if (atomic_load_explicit(&ctrl->svc_quiesced, memory_order_relaxed))
		return -EAGAIN;
	return -ENOMEM;
}

drv_inline int ns_gone(const struct nvmk_ns *ns)
{
	/* relaxed: a removal racing with a submit may still reach the device,
	 * which then answers Invalid Namespace (-ENODEV as well) */
	if (drv_unlikely(atomic_load_explicit(&ns->s->removed, memory_order_relaxed)))
		return -ENODEV;
	return 0;
}

/* ---- submission ---- */

/*
 * Fill an NVM command. MPTR, CDW2/3 and CDW13-15 are not written: no command
 * the driver puts on an I/O queue uses them, so they keep the zeroes the SQ
 * memory was allocated with (one store per field less per I/O).
 */
drv_inline void ns_sqe(struct nvme_sqe *sqe, uint8_t opc, uint16_t cid, uint32_t nsid,
		       uint64_t slba, uint32_t cdw12)
{
	sqe->opc = opc;
	sqe->flags = 0;
	sqe->cid = cid;
	sqe->nsid = nsid;
	sqe->cdw10 = (uint32_t)slba;
	sqe->cdw11 = (uint32_t)(slba >> 32);
	sqe->cdw12 = cdw12;
}

static inline uint32_t ns_rw_flags(uint32_t io_flags)
{
	return (io_flags & NVMK_IO_FUA) ? NVME_RW_FUA : 0;
}

/* One command, data in a DMA buffer: the fast path. */
drv_inline int ns_submit_one_nolock(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
				    const struct nvmk_dma_buf *buf, size_t off, uint64_t slba,
				    uint32_t nlb, uint32_t cdw12, nvmk_cpl_fn cb, void *arg)
{
	struct drv_queue *q = &qp->q;
	struct drv_tracker *t;
	struct nvme_sqe *sqe;
	int rc;

	rc = drv_qp_check(qp);
	if (drv_unlikely(rc))
		return rc;
	t = drv_trk_get(q);
	if (drv_unlikely(!t))
		return -EAGAIN;
	sqe = drv_q_slot(q, 0);
	if (buf) {
		rc = drv_prp_build_buf(buf, off, (uint64_t)nlb << ns->lba_shift, &t->prp_list,
				       &sqe->prp1, &sqe->prp2);
		if (drv_unlikely(rc)) {
			drv_trk_put(q, t);
			return rc;
		}
	} else {
		sqe->prp1 = 0;
		sqe->prp2 = 0;
	}
	ns_sqe(sqe, opc, t->cid, ns->nsid, slba, cdw12 | (nlb - 1));
	t->state = TRK_ACTIVE;
	t->opc = opc;
	t->cb = cb;
	t->cb_arg = arg;
	/* no deadline: the first deadline scan sets it (TRK_F_DEADLINE) */
	drv_q_commit(q, 1);
	return 0;
}

/* One command, data in a DMA buffer: the fast path. An exclusive qpair
 * takes no lock; a shared one goes round through its mutex. */
drv_inline int ns_submit_one(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
			     const struct nvmk_dma_buf *buf, size_t off, uint64_t slba,
			     uint32_t nlb, uint32_t cdw12, nvmk_cpl_fn cb, void *arg)
{
	int rc;

	if (drv_likely(!qp->shared))
		return ns_submit_one_nolock(ns, qp, opc, buf, off, slba, nlb, cdw12, cb, arg);
	pthread_mutex_lock(&qp->lock);
	rc = ns_submit_one_nolock(ns, qp, opc, buf, off, slba, nlb, cdw12, cb, arg);
	pthread_mutex_unlock(&qp->lock);
	return rc;
}

/* A request, possibly larger than one command. */
struct drv_io {
	uint8_t opc;
	uint32_t cdw12;
	uint64_t slba;
	uint64_t nlb;
	uint32_t max_blocks;
	const struct nvmk_dma_buf *buf; /* data in a DMA buffer at off, or */
	const struct iovec *iov;	/* data in iovec elements, from byte off */
	int iovcnt;
	size_t off;
	nvmk_cpl_fn cb;
	void *arg;
};

/* Device segments for bytes [off, off + len) of an iovec stream. */
static int ns_iov_segs(struct nvmk_qpair *qp, const struct iovec *iov, int iovcnt, size_t off,
		       size_t len, unsigned *nseg)
{
	unsigned n = 0;
	int i = 0;

	while (i < iovcnt && off >= iov[i].iov_len)
		off -= iov[i++].iov_len;
	while (len) {
		const char *p;
		size_t avail;

		if (i >= iovcnt)
			return -EINVAL;
		p = (const char *)iov[i].iov_base + off;
		avail = iov[i].iov_len - off;
		while (avail && len) {
			uint64_t iova;
			size_t contig, take;

			if (nvmk_backing_iova(qp->ctrl->b, p, &iova, &contig))
				return -EFAULT;
			take = contig < avail ? contig : avail;
			if (take > len)
				take = len;
			if (n && qp->segs[n - 1].iova + qp->segs[n - 1].len == iova) {
				qp->segs[n - 1].len += take;
			} else {
				if (n == qp->max_segs)
					return -EINVAL;
				qp->segs[n].iova = iova;
				qp->segs[n].len = take;
				n++;
			}
			p += take;
			avail -= take;
			len -= take;
		}
		i++;
		off = 0;
	}
	*nseg = n;
	return 0;
}

static int ns_part_prp(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct drv_io *io,
		       uint64_t boff, uint64_t blen, struct drv_tracker *t, struct nvme_sqe *sqe)
{
	struct drv_prp_list l = {t->prp_va, &t->prp_iova, 1};
	unsigned nseg;
	int rc;

	(void)ns;
	sqe->prp1 = 0;
	sqe->prp2 = 0;
	if (io->buf)
		return drv_prp_build_buf(io->buf, io->off + boff, blen, &l, &sqe->prp1, &sqe->prp2);
	if (!io->iov)
		return 0;
	rc = ns_iov_segs(qp, io->iov, io->iovcnt, io->off + boff, blen, &nseg);
	if (rc)
		return rc;
	return drv_prp_build_segs(qp->segs, nseg, &l, &sqe->prp1, &sqe->prp2);
}

/* General path: any size (split at max_blocks), buffer or iovec. All parts
 * are built before any is made visible, so a failure leaves nothing queued. */
static int ns_submit_io(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct drv_io *io)
{
	struct drv_queue *q = &qp->q;
	struct drv_tracker *parent = NULL;
	struct drv_tracker **parts = qp->parts; /* under the qpair's lock if shared */
	uint64_t nparts = (io->nlb + io->max_blocks - 1) / io->max_blocks;
	uint32_t i;
	int rc;

	if (io->nlb == 0 || !io->cb)
		return -EINVAL;
	if (nparts + (nparts > 1) > q->ntrk)
		return -E2BIG; /* could never fit this queue */
	drv_qp_lock(qp);
	rc = drv_qp_check(qp);
	if (rc)
		goto out;
	if (q->nfree < nparts + (nparts > 1)) {
		rc = -EAGAIN;
		goto out;
	}
	if (nparts > 1) {
		parent = drv_trk_get(q);
		parent->state = TRK_PARENT;
		parent->remaining = (uint32_t)nparts;
		parent->err = 0;
		parent->status = 0;
		parent->dw0 = 0;
		parent->cb = io->cb;
		parent->cb_arg = io->arg;
		parent->opc = io->opc;
		parent->deadline = DRV_NO_DEADLINE;
	}
	for (i = 0; i < nparts; i++) {
		uint64_t first = (uint64_t)i * io->max_blocks;
		uint64_t nlb = io->nlb - first < io->max_blocks ? io->nlb - first : io->max_blocks;
		struct drv_tracker *t = drv_trk_get(q);
		struct nvme_sqe *sqe = drv_q_slot(q, i);

		parts[i] = t;
		rc = ns_part_prp(ns, qp, io, first << ns->lba_shift, nlb << ns->lba_shift, t, sqe);
		if (rc) {
			for (uint32_t j = 0; j <= i; j++)
				drv_trk_put(q, parts[j]);
			if (parent)
				drv_trk_put(q, parent);
			goto out;
		}
		ns_sqe(sqe, io->opc, t->cid, ns->nsid, io->slba + first,
		       io->cdw12 | (uint32_t)(nlb - 1));
		t->opc = io->opc;
		t->parent = parent; /* deadline: set by the first scan (TRK_F_DEADLINE) */
		t->cb = parent ? NULL : io->cb;
		t->cb_arg = parent ? NULL : io->arg;
	}
	for (i = 0; i < nparts; i++)
		parts[i]->state = TRK_ACTIVE;
	drv_q_commit(q, (uint32_t)nparts);
out:
	drv_qp_unlock(qp);
	return rc;
}

/* Requests above the per-command limit: out of line, so the fast path's
 * frame stays small. */
static __attribute__((noinline)) int ns_rw_split(struct nvmk_ns *ns, struct nvmk_qpair *qp,
						 uint8_t opc, const struct nvmk_dma_buf *buf,
						 size_t off, uint64_t slba, uint32_t nlb,
						 uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg)
{
	struct drv_io io = {.opc = opc,
			    .cdw12 = ns_rw_flags(io_flags),
			    .slba = slba,
			    .nlb = nlb,
			    .max_blocks = ns->max_blocks,
			    .buf = buf,
			    .off = off,
			    .cb = cb,
			    .arg = cb_arg};

	return ns_submit_io(ns, qp, &io);
}

/* A kernel namespace or qpair (kernel_ns.c): the buffer as one iovec. Any
 * page-aligned memory works there, a struct nvmk_dma_buf of any origin. */
static __attribute__((noinline, cold)) int
ns_kern_rw(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc, const struct nvmk_dma_buf *buf,
	   size_t off, uint64_t slba, uint32_t nlb, nvmk_cpl_fn cb, void *cb_arg)
{
	struct iovec v;
	uint64_t len = (uint64_t)nlb << ns->lba_shift;

	if (!buf || !buf->mem.vaddr || off > buf->mem.size || len > buf->mem.size - off)
		return -EINVAL;
	v = (struct iovec){(char *)buf->mem.vaddr + off, len};
	return drv_kns_submit(ns, qp, opc, &v, 1, slba, nlb, NULL, 0, cb, cb_arg);
}

/* Everything ns_rw's straight path leaves out: no buffer, a removed
 * namespace, a request of no blocks or above the per-command limit (split),
 * a shared qpair (lock), a buffer made of pages (no IOMMU), data touching
 * more than two memory pages (PRP list), a controller reset or failure to
 * notice (drv_qp_check recovers). Out of line and cold: the general code. */
static __attribute__((noinline, cold)) int
ns_rw_general(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
	      const struct nvmk_dma_buf *buf, size_t off, uint64_t slba, uint32_t nlb,
	      uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg)
{
	int rc;

	/* kernel qpairs never pass drv_qp_fast: they all come here */
	if (ns->kern || qp->kern)
		return ns_kern_rw(ns, qp, opc, buf, off, slba, nlb, cb, cb_arg);
	rc = ns_gone(ns);
	if (rc)
		return rc;
	if (!buf)
		return -EINVAL;
	/* nlb == 0 is refused by the PRP builder (no data); @cb is required by
	 * the API and not checked */
	if (nlb <= ns->max_blocks)
		return ns_submit_one(ns, qp, opc, buf, off, slba, nlb, ns_rw_flags(io_flags), cb,
				     cb_arg);
	return ns_rw_split(ns, qp, opc, buf, off, slba, nlb, io_flags, cb, cb_arg);
}

/* [off, off + len) lies inside @buf (nothing wraps), starts dword aligned
 * and touches at most two memory pages: PRP1 and PRP2 suffice. */
drv_inline bool ns_fits_two_pages(const struct nvmk_dma_buf *buf, size_t off, uint64_t len)
{
	uint64_t iova = buf->iova + off;

	return off <= buf->mem.size && len <= buf->mem.size - off && (iova & 3) == 0 &&
	       (iova & DRV_PAGE_MASK) + len <= 2u * DRV_PAGE_SIZE;
}

/*
 * Read, Write, Compare. The common request -- an exclusive qpair, a
 * contiguous DMA buffer, at most two memory pages, within the per-command
 * limit -- is one straight line: checks first (nothing to undo when one
 * fails), then the tracker, the SQE in five stores, the doorbell. Anything
 * else goes to ns_rw_general, which checks everything again.
 */
drv_inline int ns_rw(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
		     const struct nvmk_dma_buf *buf, size_t off, uint64_t slba, uint32_t nlb,
		     uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg)
{
	struct drv_queue *q = &qp->q;
	struct drv_tracker *t;
	struct nvme_sqe *sqe;
	uint64_t len, iova, pg;
	uint32_t tail;

	/* One exit to the general path, taken before anything is computed
	 * that would have to survive it: the argument registers stay as they
	 * came in and the call is a plain jump. nlb - 1 wraps for nlb == 0, so
	 * one compare sends both "no blocks" and "too many for one command"
	 * there; a range outside the buffer, misaligned data (PRP entries are
	 * dword aligned, Base 2.0 4.1.1) and data on more than two pages (PRP
	 * list) are refused or handled there too. */
	if (drv_unlikely(nlb - 1u >= ns->max_blocks || !drv_qp_fast(qp) || !buf ||
			 buf->page_iova != NULL || ns_gone(ns) ||
			 !ns_fits_two_pages(buf, off, (uint64_t)nlb << ns->lba_shift)))
		return ns_rw_general(ns, qp, opc, buf, off, slba, nlb, io_flags, cb, cb_arg);
	len = (uint64_t)nlb << ns->lba_shift;
	iova = buf->iova + off;
	pg = iova & DRV_PAGE_MASK;
	/* The primitives of queue.h, the same for every submit path: a
	 * tracker with a new CID generation, armed (ACTIVE under its CID and
	 * the opcode, one store each). No deadline here: the first deadline
	 * scan of this qpair that sees the command sets it (TRK_F_DEADLINE,
	 * cleared by the arm), so submit reads no clock. */
	t = drv_trk_take(q);
	if (drv_unlikely(t == NULL))
		return -EAGAIN;
	t->parent = NULL;
	drv_trk_arm(t, opc, cb, cb_arg);

	/* The SQE: CDW0 + NSID, PRP1, PRP2, CDW10-11 (SLBA), CDW12. MPTR,
	 * CDW2/3 and CDW13-15 keep the zeroes the SQ memory was allocated with:
	 * no command the driver puts on an I/O queue uses them. */
	sqe = drv_q_tail_slot(q, &tail);
	drv_sqe_put64(sqe, (uint64_t)opc | (uint64_t)t->cid << 16 | ns->sqe_nsid);
	sqe->prp1 = iova;
	/* data crossing a page boundary: PRP2 is the second page */
	sqe->prp2 = pg + len > DRV_PAGE_SIZE ? iova - pg + DRV_PAGE_SIZE : 0;
	drv_sqe_put64(&sqe->cdw10, slba);
	sqe->cdw12 = (nlb - 1u) | ((io_flags & NVMK_IO_FUA) ? NVME_RW_FUA : 0);

	/* the tail moved by one: the doorbell is due unless completions are
	 * being processed or a batch is open */
	drv_q_commit_at(q, tail, 1);
	return 0;
}

int nvmk_ns_submit_read(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct nvmk_dma_buf *buf,
			size_t off, uint64_t slba, uint32_t nlb, uint32_t io_flags, nvmk_cpl_fn cb,
			void *cb_arg)
{
	return ns_rw(ns, qp, NVME_CMD_READ, buf, off, slba, nlb, io_flags, cb, cb_arg);
}

int nvmk_ns_submit_write(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct nvmk_dma_buf *buf,
			 size_t off, uint64_t slba, uint32_t nlb, uint32_t io_flags, nvmk_cpl_fn cb,
			 void *cb_arg)
{
	return ns_rw(ns, qp, NVME_CMD_WRITE, buf, off, slba, nlb, io_flags, cb, cb_arg);
}

int nvmk_ns_submit_compare(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			   const struct nvmk_dma_buf *buf, size_t off, uint64_t slba, uint32_t nlb,
			   uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg)
{
	return ns_rw(ns, qp, NVME_CMD_COMPARE, buf, off, slba, nlb, io_flags, cb, cb_arg);
}

int nvmk_ns_submit_flush(struct nvmk_ns *ns, struct nvmk_qpair *qp, nvmk_cpl_fn cb, void *cb_arg)
{
	int rc;

	if (drv_unlikely(ns->kern || qp->kern))
		return drv_kns_submit(ns, qp, NVME_CMD_FLUSH, NULL, 0, 0, 0, NULL, 0, cb, cb_arg);
	rc = ns_gone(ns);
	if (rc)
		return rc;
	if (!cb)
		return -EINVAL;
	return ns_submit_one(ns, qp, NVME_CMD_FLUSH, NULL, 0, 0, 1, 0, cb, cb_arg);
}

int nvmk_ns_submit_write_zeroes(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint64_t slba,
				uint64_t nlb, uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg)
{
	struct drv_io io = {.opc = NVME_CMD_WRITE_ZEROES,
			    .cdw12 = ns_rw_flags(io_flags) |
				     ((io_flags & NVMK_IO_DEAC) ? NVME_RW_DEAC : 0),
			    .slba = slba,
			    .nlb = nlb,
			    .max_blocks = NVME_MAX_NLB, /* no data: only the NLB field limits */
			    .cb = cb,
			    .arg = cb_arg};
	int rc;

	if (drv_unlikely(ns->kern || qp->kern))
		return drv_kns_submit(ns, qp, NVME_CMD_WRITE_ZEROES, NULL, 0, slba, nlb, NULL, 0, cb,
				      cb_arg);
	rc = ns_gone(ns);
	if (rc)
		return rc;
	return ns_submit_io(ns, qp, &io);
}

int nvmk_ns_submit_deallocate(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			      const struct nvmk_range *ranges, unsigned nr, nvmk_cpl_fn cb,
			      void *cb_arg)
{
	struct drv_queue *q = &qp->q;
	struct drv_tracker *t;
	struct nvme_sqe *sqe;
	int rc;

	if (drv_unlikely(ns->kern || qp->kern))
		return drv_kns_submit(ns, qp, NVME_CMD_DSM, NULL, 0, 0, 0, ranges, nr, cb, cb_arg);
	rc = ns_gone(ns);
	if (rc)
		return rc;
	if (!cb || !ranges || nr == 0 || nr > NVME_DSM_MAX_RANGES)
		return -EINVAL;
	drv_qp_lock(qp);
	rc = drv_qp_check(qp);
	if (rc)
		goto out;
	t = drv_trk_get(q);
	if (!t) {
		rc = -EAGAIN;
		goto out;
	}
	/* NVM-CS 1.0 3.2.3: up to 256 16-byte ranges: exactly the tracker's
	 * PRP list page, which is DMA memory we own, so the ranges are copied
	 * there and the caller's array may go away after submit. */
	struct nvme_dsm_range *r = (struct nvme_dsm_range *)t->prp_va;

	for (unsigned i = 0; i < nr; i++) {
		r[i].cattr = 0;
		r[i].nlb = ranges[i].nlb;
		r[i].slba = ranges[i].slba;
	}
	sqe = drv_q_slot(q, 0);
	ns_sqe(sqe, NVME_CMD_DSM, t->cid, ns->nsid, 0, 0);
	sqe->cdw10 = nr - 1;
	sqe->cdw11 = NVME_DSM_AD;
	sqe->prp1 = t->prp_iova;
	sqe->prp2 = 0;
	t->state = TRK_ACTIVE;
	t->opc = NVME_CMD_DSM;
	t->cb = cb;
	t->cb_arg = cb_arg;
	/* deadline: set by the first scan (TRK_F_DEADLINE) */
	drv_q_commit(q, 1);
out:
	drv_qp_unlock(qp);
	return rc;
}

static int ns_iov_len(const struct iovec *iov, int iovcnt, uint64_t *len)
{
	uint64_t total = 0;

	if (!iov || iovcnt <= 0)
		return -EINVAL;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len == 0)
			return -EINVAL;
		total += iov[i].iov_len;
	}
	*len = total;
	return 0;
}

/* PRP rules at the element level (Base 2.0 4.1.1), checked up front so that
 * splitting cannot hide a broken request. */
static int ns_iov_rules(const struct iovec *iov, int iovcnt)
{
	for (int i = 0; i < iovcnt; i++) {
		uintptr_t b = (uintptr_t)iov[i].iov_base, e = b + iov[i].iov_len;

		if (b & 3)
			return -EINVAL;
		if (i > 0 && (b & DRV_PAGE_MASK))
			return -EINVAL;
		if (i + 1 < iovcnt && (e & DRV_PAGE_MASK))
			return -EINVAL;
	}
	return 0;
}

static int ns_rwv(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc, const struct iovec *iov,
		  int iovcnt, uint64_t slba, uint32_t nlb, uint32_t io_flags, nvmk_cpl_fn cb,
		  void *cb_arg)
{
	struct drv_io io = {.opc = opc,
			    .cdw12 = ns_rw_flags(io_flags),
			    .slba = slba,
			    .nlb = nlb,
			    .max_blocks = ns->max_blocks,
			    .iov = iov,
			    .iovcnt = iovcnt,
			    .cb = cb,
			    .arg = cb_arg};
	uint64_t len;
	int rc;

	if (drv_unlikely(ns->kern || qp->kern))
		return drv_kns_submit(ns, qp, opc, iov, iovcnt, slba, nlb, NULL, 0, cb, cb_arg);
	rc = ns_gone(ns);
	if (rc)
		return rc;
	rc = ns_iov_len(iov, iovcnt, &len);
	if (rc || len != ((uint64_t)nlb << ns->lba_shift) || nlb == 0)
		return -EINVAL;
	rc = ns_iov_rules(iov, iovcnt);
	if (rc)
		return rc;
	return ns_submit_io(ns, qp, &io);
}

int nvmk_ns_submit_readv(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct iovec *iov,
			 int iovcnt, uint64_t slba, uint32_t nlb, uint32_t io_flags, nvmk_cpl_fn cb,
			 void *cb_arg)
{
	return ns_rwv(ns, qp, NVME_CMD_READ, iov, iovcnt, slba, nlb, io_flags, cb, cb_arg);
}

int nvmk_ns_submit_writev(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct iovec *iov,
			  int iovcnt, uint64_t slba, uint32_t nlb, uint32_t io_flags,
			  nvmk_cpl_fn cb, void *cb_arg)
{
	return ns_rwv(ns, qp, NVME_CMD_WRITE, iov, iovcnt, slba, nlb, io_flags, cb, cb_arg);
}

/* ---- synchronous wrappers ---- */

struct drv_sync {
	atomic_int done;
	struct nvmk_cpl cpl;
};

static void sync_cb(void *arg, const struct nvmk_cpl *cpl)
{
	struct drv_sync *s = arg;

	s->cpl = *cpl;
	/* release: the completion before the flag the waiter polls */
	atomic_store_explicit(&s->done, 1, memory_order_release);
}

static void sync_progress(struct nvmk_qpair *qp)
{
	if (qp->mode == NVMK_CPL_INTERRUPT) {
		/* shared queues: another thread may take our wakeup, look often */
		nvmk_qpair_wait(qp, qp->shared ? 1 : -1);
	} else if (nvmk_qpair_process_completions(qp, 0) == 0) {
		sched_yield();
	}
}

/* Wait for @s. Every submitted command completes exactly once, also when the
 * controller fails (recovery completes it), so this loop ends. */
static int sync_wait(struct nvmk_qpair *qp, struct drv_sync *s)
{
	/* acquire: pairs with sync_cb */
	while (!atomic_load_explicit(&s->done, memory_order_acquire))
		sync_progress(qp);
	drv_set_last_status(s->cpl.status);
	return s->cpl.err;
}

static struct nvmk_qpair *sync_qp(struct nvmk_ns *ns, struct nvmk_qpair *qp)
{
	return qp ? qp : nvmk_ctrl_get_qpair(ns->ctrl);
}

/* Submit a drv_io synchronously: parts of at most 8 commands at a time. */
static int sync_io(struct nvmk_ns *ns, struct nvmk_qpair *qp, struct drv_io *io)
{
	uint64_t per = io->max_blocks;
	uint64_t done = 0, total = io->nlb;
	size_t off0 = io->off;
	unsigned fan = qp->q.ntrk > 9 ? 8 : 1;

	per *= fan;
	while (done < total) {
		struct drv_sync s = {0};
		struct drv_io part = *io;
		int rc;

		part.slba = io->slba + done;
		part.nlb = total - done < per ? total - done : per;
		part.off = off0 + ((size_t)done << ns->lba_shift);
		part.cb = sync_cb;
		part.arg = &s;
		for (;;) {
			rc = ns_submit_io(ns, qp, &part);
			if (rc != -EAGAIN)
				break;
			sync_progress(qp);
		}
		if (rc) {
			drv_set_last_status(0);
			return rc;
		}
		rc = sync_wait(qp, &s);
		if (rc)
			return rc;
		done += part.nlb;
	}
	return 0;
}

/* True when every element lies inside one DMA block of the controller. */
static bool sync_iov_mapped(struct nvmk_ctrl *ctrl, const struct iovec *iov, int iovcnt)
{
	for (int i = 0; i < iovcnt; i++) {
		uint64_t iova;
		size_t contig;
		const char *b = iov[i].iov_base;

		if (nvmk_backing_iova(ctrl->b, b, &iova, &contig))
			return false;
		if (nvmk_backing_iova(ctrl->b, b + iov[i].iov_len - 1, &iova, &contig))
			return false;
	}
	return true;
}

static int sync_rwv(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc, const struct iovec *iov,
		    int iovcnt, uint64_t slba, uint32_t nlb)
{
	struct drv_io io = {.opc = opc, .slba = slba, .nlb = nlb, .max_blocks = ns->max_blocks};
	struct nvmk_dma_buf bounce;
	uint64_t len;
	int rc;

	/* kernel namespace: io_uring (kernel_ns.c); never on the async path */
	if (drv_unlikely(ns->kern))
		return drv_kns_rwv(ns, opc, iov, iovcnt, slba, nlb);
	rc = ns_gone(ns);
	if (rc)
		return rc;
	rc = ns_iov_len(iov, iovcnt, &len);
	if (rc || nlb == 0 || len != ((uint64_t)nlb << ns->lba_shift))
		return -EINVAL;
	qp = sync_qp(ns, qp);
	if (!qp)
		return sync_no_qp_err(ns->ctrl);
	if (sync_iov_mapped(ns->ctrl, iov, iovcnt) && ns_iov_rules(iov, iovcnt) == 0) {
		io.iov = iov;
		io.iovcnt = iovcnt;
		return sync_io(ns, qp, &io);
	}
	/* Slow path: not DMA memory of this controller (or not PRP-shaped):
	 * bounce through a DMA buffer for this call. */
	rc = nvmk_ctrl_dma_alloc(ns->ctrl, len, &bounce);
	if (rc)
		return rc;
	if (NVME_OPC_XFER(opc) & NVME_XFER_HOST_TO_CTRL) {
		size_t o = 0;

		for (int i = 0; i < iovcnt; i++) {
			memcpy((char *)bounce.mem.vaddr + o, iov[i].iov_base, iov[i].iov_len);
			o += iov[i].iov_len;
		}
	}
	io.buf = &bounce;
	rc = sync_io(ns, qp, &io);
	if (rc == 0 && (NVME_OPC_XFER(opc) & NVME_XFER_CTRL_TO_HOST)) {
		size_t o = 0;

		for (int i = 0; i < iovcnt; i++) {
			memcpy(iov[i].iov_base, (char *)bounce.mem.vaddr + o, iov[i].iov_len);
			o += iov[i].iov_len;
		}
	}
	nvmk_ctrl_dma_free(ns->ctrl, &bounce);
	return rc;
}

int nvmk_ns_read(struct nvmk_ns *ns, struct nvmk_qpair *qp, void *buf, uint64_t slba, uint32_t nlb)
{
	struct iovec v = {buf, (size_t)nlb << ns->lba_shift};

	return sync_rwv(ns, qp, NVME_CMD_READ, &v, 1, slba, nlb);
}

int nvmk_ns_write(struct nvmk_ns *ns, struct nvmk_qpair *qp, const void *buf, uint64_t slba,
		  uint32_t nlb)
{
	struct iovec v = {(void *)buf, (size_t)nlb << ns->lba_shift};

	return sync_rwv(ns, qp, NVME_CMD_WRITE, &v, 1, slba, nlb);
}

int nvmk_ns_compare(struct nvmk_ns *ns, struct nvmk_qpair *qp, const void *buf, uint64_t slba,
		    uint32_t nlb)
{
	struct iovec v = {(void *)buf, (size_t)nlb << ns->lba_shift};

	return sync_rwv(ns, qp, NVME_CMD_COMPARE, &v, 1, slba, nlb);
}

int nvmk_ns_readv(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct iovec *iov, int iovcnt,
		  uint64_t slba, uint32_t nlb)
{
	return sync_rwv(ns, qp, NVME_CMD_READ, iov, iovcnt, slba, nlb);
}

int nvmk_ns_writev(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct iovec *iov, int iovcnt,
		   uint64_t slba, uint32_t nlb)
{
	return sync_rwv(ns, qp, NVME_CMD_WRITE, iov, iovcnt, slba, nlb);
}

int nvmk_ns_flush(struct nvmk_ns *ns, struct nvmk_qpair *qp)
{
	struct drv_sync s = {0};
	int rc;

	if (drv_unlikely(ns->kern))
		return drv_kns_flush(ns);
	rc = ns_gone(ns);

	if (rc)
		return rc;
	qp = sync_qp(ns, qp);
	if (!qp)
		return -ENODEV;
	while ((rc = nvmk_ns_submit_flush(ns, qp, sync_cb, &s)) == -EAGAIN)
		sync_progress(qp);
	return rc ? rc : sync_wait(qp, &s);
}

int nvmk_ns_write_zeroes(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint64_t slba, uint64_t nlb,
			 uint32_t io_flags)
{
	struct drv_io io = {.opc = NVME_CMD_WRITE_ZEROES,
			    .cdw12 = ns_rw_flags(io_flags) |
				     ((io_flags & NVMK_IO_DEAC) ? NVME_RW_DEAC : 0),
			    .slba = slba,
			    .nlb = nlb,
			    .max_blocks = NVME_MAX_NLB};
	int rc;

	if (drv_unlikely(ns->kern))
		return drv_kns_write_zeroes(ns, slba, nlb);
	rc = ns_gone(ns);

	if (rc)
		return rc;
	if (nlb == 0)
		return -EINVAL;
	qp = sync_qp(ns, qp);
	if (!qp)
		return -ENODEV;
	return sync_io(ns, qp, &io);
}

int nvmk_ns_deallocate(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct nvmk_range *ranges,
		       unsigned nr)
{
	struct drv_sync s = {0};
	int rc;

	if (drv_unlikely(ns->kern))
		return drv_kns_deallocate(ns, ranges, nr);
	rc = ns_gone(ns);

	if (rc)
		return rc;
	qp = sync_qp(ns, qp);
	if (!qp)
		return -ENODEV;
	while ((rc = nvmk_ns_submit_deallocate(ns, qp, ranges, nr, sync_cb, &s)) == -EAGAIN)
		sync_progress(qp);
	return rc ? rc : sync_wait(qp, &s);
}

/* ---- reservations (NVM-CS 1.0 3.2.4 - 3.2.7) ---- */

/* One data-carrying command (data bounced through a DMA buffer). */
static int ns_sync_cmd(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc, uint32_t cdw10,
		       uint32_t cdw11, void *data, size_t len)
{
	struct nvmk_dma_buf b;
	struct drv_sync s = {0};
	struct drv_queue *q;
	struct drv_tracker *t;
	struct nvme_sqe *sqe;
	int rc;

	if (ns->kern) /* reservations are not offered on a kernel namespace */
		return -EOPNOTSUPP;
	rc = ns_gone(ns);
	if (rc)
		return rc;
	if (!len || len > DRV_MAX_XFER)
		return -EINVAL;
	qp = sync_qp(ns, qp);
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
		sync_progress(qp);
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
	t->cb = sync_cb;
	t->cb_arg = &s;
	/* deadline: set by the first scan (TRK_F_DEADLINE) */
	drv_q_commit(q, 1);
	drv_qp_unlock(qp);
	rc = sync_wait(qp, &s);
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
