// SPDX-License-Identifier: MIT
/*
 * Namespace I/O of the NVMe-queue path: the asynchronous submit functions
 * (NVM-CS 1.0 3.2), with the inline exclusive fast path of Read/Write/
 * Compare, MDTS splitting, iovec and PRP-list requests, Dataset Management
 * ranges. The public calls dispatch to the handle's path (io_ops.h).
 */
#include <errno.h>
#include <string.h>

#include "driver/io_ops.h"
#include "driver/ns_io.h"
#include "driver/queue.h"

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
 * takes no lock; a shared one goes round through its lock (rlock.h). */
drv_inline int ns_submit_one(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
			     const struct nvmk_dma_buf *buf, size_t off, uint64_t slba,
			     uint32_t nlb, uint32_t cdw12, nvmk_cpl_fn cb, void *arg)
{
	int rc;

	if (drv_likely(!qp->shared))
		return ns_submit_one_nolock(ns, qp, opc, buf, off, slba, nlb, cdw12, cb, arg);
	drv_rlock_lock(&qp->lock);
	rc = ns_submit_one_nolock(ns, qp, opc, buf, off, slba, nlb, cdw12, cb, arg);
	drv_rlock_unlock(&qp->lock);
	return rc;
}

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
int drv_ns_submit_io(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct drv_io *io)
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
	if (q->ntrk - q->nbusy < nparts + (nparts > 1)) {
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
		t->part = parent ? DRV_TRK_PART : 0;
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

	return drv_ns_submit_io(ns, qp, &io);
}

/* The NVMe-queue path's general Read/Write/Compare: everything ns_rw's
 * straight path leaves out: no buffer, a removed namespace, a request of no
 * blocks or above the per-command limit (split), a shared qpair (lock), a
 * buffer made of pages (no IOMMU), data touching more than two memory pages
 * (PRP list), a controller reset or failure to notice (drv_qp_check
 * recovers). */
int drv_nvme_submit_rw(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
		       const struct nvmk_dma_buf *buf, size_t off, uint64_t slba, uint32_t nlb,
		       uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg)
{
	int rc;

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

/* The straight path of Read/Write/Compare, once ns_rw's gate (or
 * ns_rw_shared's, under the lock) has passed: @buf contiguous, the range
 * inside it on at most two pages, nlb in 1..max_blocks, the queue usable. */
drv_inline int ns_rw_straight(struct nvmk_ns *ns, struct drv_queue *q, uint8_t opc,
			      const struct nvmk_dma_buf *buf, size_t off, uint64_t slba,
			      uint32_t nlb, uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg)
{
	struct drv_tracker *t;
	struct nvme_sqe *sqe;
	uint64_t len, iova, pg;
	uint32_t tail;

	len = (uint64_t)nlb * ns->lba_bytes;
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

/* Every request ns_rw's gate turns away, kernel objects included (their
 * gate fields never pass): out of line and cold, to the path's general code. */
static __attribute__((noinline, cold)) int
ns_rw_general(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
	      const struct nvmk_dma_buf *buf, size_t off, uint64_t slba, uint32_t nlb,
	      uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg)
{
	const struct drv_io_ops *ops = drv_io_ops_of(ns, qp);

	if (!ops)
		return -EINVAL;
	if (ops == &drv_nvme_io_ops) {
		/* the first submit after a clock tick: take the gate, and
		 * if that was all, the straight path after all (ns_rw's gate) */
		drv_qp_submit_catch_up(qp);
		if (drv_qp_fast_submit(qp) && nlb - 1u < ns->max_blocks && buf &&
		    buf->page_iova == NULL && !ns_gone(ns) &&
		    ns_fits_two_pages(buf, off, (uint64_t)nlb << ns->lba_shift))
			return ns_rw_straight(ns, &qp->q, opc, buf, off, slba, nlb, io_flags, cb,
					      cb_arg);
	}
	return ops->submit_rw(ns, qp, opc, buf, off, slba, nlb, io_flags, cb, cb_arg);
}

/*
 * A SHARED qpair: the straight path under its lock (out of line, so that
 * the exclusive path keeps its frame; "hot": it is reached from ns_rw's
 * unlikely branch, and GCC would otherwise compile it for size). The gate
 * is ns_rw's in its order (a kernel namespace's max_blocks is 0, so its s
 * is never read), with "current" instead of "exclusive and current" tested
 * under the lock (a recovery runs under it); anything it turns away goes to
 * ns_rw_general, which decides (the lock is recursive).
 */
static __attribute__((noinline, hot)) int ns_rw_shared(struct nvmk_ns *ns, struct nvmk_qpair *qp,
						       uint8_t opc, const struct nvmk_dma_buf *buf,
						       size_t off, uint64_t slba, uint32_t nlb,
						       uint32_t io_flags, nvmk_cpl_fn cb,
						       void *cb_arg)
{
	int rc;

	if (drv_unlikely(nlb - 1u >= ns->max_blocks || qp->ops != &drv_nvme_io_ops ||
			 ns->ops != &drv_nvme_io_ops || !buf || buf->page_iova != NULL))
		return ns_rw_general(ns, qp, opc, buf, off, slba, nlb, io_flags, cb, cb_arg);
	drv_rlock_lock(&qp->lock);
	if (drv_likely(drv_qp_current(qp) && !ns_gone(ns) &&
		       ns_fits_two_pages(buf, off, (uint64_t)nlb * ns->lba_bytes)))
		rc = ns_rw_straight(ns, &qp->q, opc, buf, off, slba, nlb, io_flags, cb, cb_arg);
	else
		rc = ns_rw_general(ns, qp, opc, buf, off, slba, nlb, io_flags, cb, cb_arg);
	drv_rlock_unlock(&qp->lock);
	return rc;
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
	/* One exit to the general path, taken before anything is computed
	 * that would have to survive it: the argument registers stay as they
	 * came in and the call is a plain jump. nlb - 1 wraps for nlb == 0, so
	 * one compare sends both "no blocks" and "too many for one command"
	 * there, and a removed namespace too (its gate_blocks is 0); a range outside the buffer,
	 * misaligned data (PRP entries are dword aligned, Base 2.0 4.1.1) and data on more than two
	 * pages (PRP list) are refused or handled there too. */
	/* the length by a multiply, not a shift: no shift count to hold in
	 * %cl, one callee-saved register less to push (measured: -1 per
	 * submit) */
	if (drv_unlikely(nlb - 1u >= atomic_load_explicit(&ns->gate_blocks, memory_order_relaxed) ||
			 !drv_qp_fast_submit(qp) || !buf || buf->page_iova != NULL ||
			 !ns_fits_two_pages(buf, off, (uint64_t)nlb * ns->lba_bytes))) {
		if (qp->shared)
			return ns_rw_shared(ns, qp, opc, buf, off, slba, nlb, io_flags, cb, cb_arg);
		return ns_rw_general(ns, qp, opc, buf, off, slba, nlb, io_flags, cb, cb_arg);
	}
	return ns_rw_straight(ns, &qp->q, opc, buf, off, slba, nlb, io_flags, cb, cb_arg);
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
	const struct drv_io_ops *ops = drv_io_ops_of(ns, qp);

	return ops ? ops->submit_flush(ns, qp, cb, cb_arg) : -EINVAL;
}

int drv_nvme_submit_flush(struct nvmk_ns *ns, struct nvmk_qpair *qp, nvmk_cpl_fn cb, void *cb_arg)
{
	int rc;

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
	const struct drv_io_ops *ops = drv_io_ops_of(ns, qp);

	return ops ? ops->submit_write_zeroes(ns, qp, slba, nlb, io_flags, cb, cb_arg) : -EINVAL;
}

int drv_nvme_submit_write_zeroes(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint64_t slba,
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

	rc = ns_gone(ns);
	if (rc)
		return rc;
	return drv_ns_submit_io(ns, qp, &io);
}

int nvmk_ns_submit_deallocate(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			      const struct nvmk_range *ranges, unsigned nr, nvmk_cpl_fn cb,
			      void *cb_arg)
{
	const struct drv_io_ops *ops = drv_io_ops_of(ns, qp);

	return ops ? ops->submit_deallocate(ns, qp, ranges, nr, cb, cb_arg) : -EINVAL;
}

int drv_nvme_submit_deallocate(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			       const struct nvmk_range *ranges, unsigned nr, nvmk_cpl_fn cb,
			       void *cb_arg)
{
	struct drv_queue *q = &qp->q;
	struct drv_tracker *t;
	struct nvme_sqe *sqe;
	int rc;

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

static int ns_rwv(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc, const struct iovec *iov,
		  int iovcnt, uint64_t slba, uint32_t nlb, uint32_t io_flags, nvmk_cpl_fn cb,
		  void *cb_arg)
{
	const struct drv_io_ops *ops = drv_io_ops_of(ns, qp);

	return ops ? ops->submit_rwv(ns, qp, opc, iov, iovcnt, slba, nlb, io_flags, cb, cb_arg)
		   : -EINVAL;
}

int drv_nvme_submit_rwv(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
			const struct iovec *iov, int iovcnt, uint64_t slba, uint32_t nlb,
			uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg)
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

	rc = ns_gone(ns);
	if (rc)
		return rc;
	rc = ns_iov_len(iov, iovcnt, &len);
	if (rc || len != ((uint64_t)nlb << ns->lba_shift) || nlb == 0)
		return -EINVAL;
	rc = ns_iov_rules(iov, iovcnt);
	if (rc)
		return rc;
	return drv_ns_submit_io(ns, qp, &io);
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
