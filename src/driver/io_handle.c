// SPDX-License-Identifier: MIT
/*
 * I/O handles (nvmekeep/driver/io_handle.h): Read and Write on a queue pair,
 * namespace and DMA buffer bound and checked once, so that the per-I/O path
 * checks only what varies per I/O and takes its arguments in registers.
 *
 * The straight path is the exclusive one of ns.c with the per-handle
 * constants hoisted out: the same primitives (drv_trk_take, drv_trk_arm,
 * drv_q_slot, drv_q_commit in queue.h), the same SQE. Anything it does not
 * take leaves through a sibling call to the general API, which then decides
 * (split, PRP list, lock, recovery, errors).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "driver/ns_io.h"
#include "driver/queue.h"

struct nvmk_io_handle {
	struct nvmk_qpair *qp;
	/* the buffer's device address and size: contiguous (checked at
	 * creation), so an offset inside it is an address */
	uint64_t iova;
	uint64_t size;
	/* NSID in SQE bits 32-63, ORed with the opcode and CID */
	uint64_t sqe_nsid;
	const atomic_bool *removed;
	/* blocks per command on the straight path: the namespace's limit,
	 * at most the buffer's size (so that nlb <= max_blocks bounds the
	 * length by the size and "off <= size - len" cannot wrap); 0 sends
	 * every request to the general path (kernel namespace or qpair) */
	uint32_t max_blocks;
	uint32_t wr_cdw12; /* FUA for writes */
	uint8_t lba_shift;
	uint32_t lba_bytes; /* 1 << lba_shift: lengths by a multiply (no count in %cl) */
	/* the general path */
	struct nvmk_ns *ns;
	const struct nvmk_dma_buf *buf;
	uint32_t wr_flags;
};

int nvmk_io_handle_create(struct nvmk_qpair *qp, struct nvmk_ns *ns, const struct nvmk_dma_buf *buf,
			  uint32_t io_flags, struct nvmk_io_handle **out)
{
	struct nvmk_io_handle *h;
	uint64_t blocks;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!qp || !ns || !buf || !buf->mem.vaddr || buf->mem.size == 0)
		return -EINVAL;
	if (io_flags & ~(uint32_t)NVMK_IO_FUA)
		return -EINVAL;
	/* a namespace of another controller would be given this qpair's
	 * queues: refused here as the general path does per call */
	if (!ns->kern && !qp->kern && ns->ctrl != qp->ctrl)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->qp = qp;
	h->ns = ns;
	h->buf = buf;
	h->wr_flags = io_flags;
	h->size = buf->mem.size;
	if (ns->kern || qp->kern || buf->page_iova != NULL) {
		/* io_uring, or a buffer made of pages (no IOMMU): the general
		 * path knows how to address it */
		h->max_blocks = 0;
		*out = h;
		return 0;
	}
	h->iova = buf->iova;
	h->sqe_nsid = ns->sqe_nsid;
	h->removed = &ns->s->removed;
	h->lba_shift = ns->lba_shift;
	h->lba_bytes = 1u << ns->lba_shift;
	h->wr_cdw12 = (io_flags & NVMK_IO_FUA) ? NVME_RW_FUA : 0;
	blocks = buf->mem.size >> ns->lba_shift;
	h->max_blocks = blocks < ns->max_blocks ? (uint32_t)blocks : ns->max_blocks;
	*out = h;
	return 0;
}

void nvmk_io_handle_destroy(struct nvmk_io_handle *h)
{
	free(h);
}

static __attribute__((noinline, cold)) int io_read_general(const struct nvmk_io_handle *h,
							   size_t off, uint64_t slba, uint32_t nlb,
							   nvmk_cpl_fn cb, void *cb_arg)
{
	return nvmk_ns_submit_read(h->ns, h->qp, h->buf, off, slba, nlb, 0, cb, cb_arg);
}

static __attribute__((noinline, cold)) int io_write_general(const struct nvmk_io_handle *h,
							    size_t off, uint64_t slba, uint32_t nlb,
							    nvmk_cpl_fn cb, void *cb_arg)
{
	return nvmk_ns_submit_write(h->ns, h->qp, h->buf, off, slba, nlb, h->wr_flags, cb, cb_arg);
}

typedef int (*io_general_fn)(const struct nvmk_io_handle *h, size_t off, uint64_t slba,
			     uint32_t nlb, nvmk_cpl_fn cb, void *cb_arg);

drv_inline int io_rw(const struct nvmk_io_handle *h, uint8_t opc, uint32_t cdw12, size_t off,
		     uint64_t slba, uint32_t nlb, nvmk_cpl_fn cb, void *cb_arg,
		     io_general_fn general)
{
	struct nvmk_qpair *qp = h->qp;
	struct drv_queue *q = &qp->q;
	uint32_t n1 = nlb - 1u; /* wraps for 0 */
	uint64_t iova = h->iova + off;
	uint64_t len = (uint64_t)nlb * h->lba_bytes;
	uint64_t end = (iova & DRV_PAGE_MASK) + len; /* from the first page's start */
	struct drv_tracker *t;
	struct nvme_sqe *sqe;
	uint32_t tail;

	/* One compare for nlb in 1..max_blocks, which also bounds len by the
	 * size (see max_blocks). Then the range inside the buffer, dword
	 * alignment (Base 2.0 4.1.1), two pages at most (no PRP list),
	 * exclusive and current, namespace present. The general path is a
	 * sibling call given @off and @nlb recomputed from what the checks
	 * keep, so that the arguments need not stay in their registers. */
	if (drv_unlikely(n1 >= h->max_blocks || iova - h->iova > h->size - len || (iova & 3) ||
			 end > 2u * DRV_PAGE_SIZE || !drv_qp_fast_submit(qp) ||
			 atomic_load_explicit(h->removed, memory_order_relaxed)))
		return general(h, iova - h->iova, slba, n1 + 1u, cb, cb_arg);
	t = drv_trk_take(q);
	if (drv_unlikely(t == NULL))
		return -EAGAIN;
	drv_trk_arm(t, opc, cb, cb_arg);
	/* No deadline: the first deadline scan that sees the command sets it
	 * (TRK_F_DEADLINE, cleared by the arm), so submit reads no clock. */

	/* CDW0 + NSID, PRP1, PRP2 (the second page when the data crosses a
	 * page boundary), SLBA, CDW12. MPTR, CDW2/3 and CDW13-15 keep the
	 * zeroes the SQ memory was allocated with (as in ns.c). */
	sqe = drv_q_tail_slot(q, &tail);
	drv_sqe_put64(sqe, (uint64_t)opc | (uint64_t)t->cid << 16 | h->sqe_nsid);
	sqe->prp1 = iova;
	sqe->prp2 = end > DRV_PAGE_SIZE ? (iova | DRV_PAGE_MASK) + 1u : 0;
	drv_sqe_put64(&sqe->cdw10, slba);
	sqe->cdw12 = n1 | cdw12;
	drv_q_commit_at(q, tail, 1);
	return 0;
}

int nvmk_io_read(const struct nvmk_io_handle *h, size_t off, uint64_t slba, uint32_t nlb,
		 nvmk_cpl_fn cb, void *cb_arg)
{
	return io_rw(h, NVME_CMD_READ, 0, off, slba, nlb, cb, cb_arg, io_read_general);
}

int nvmk_io_write(const struct nvmk_io_handle *h, size_t off, uint64_t slba, uint32_t nlb,
		  nvmk_cpl_fn cb, void *cb_arg)
{
	return io_rw(h, NVME_CMD_WRITE, h->wr_cdw12, off, slba, nlb, cb, cb_arg, io_write_general);
}

/* ---- arrays (nvmk_io_read_batch / nvmk_io_write_batch) ---- */

struct io_batch_ctx {
	const struct nvmk_io_handle *h;
	const struct nvmk_io_hreq *reqs;
	uint32_t io_flags; /* the handle's flags for writes, 0 for reads */
};

/* Request @i as nvmk_ns_submit_read_batch takes it, on the handle's buffer. */
static void io_req_get(const void *ctx, unsigned i, struct nvmk_io_req *out)
{
	const struct io_batch_ctx *c = ctx;
	const struct nvmk_io_hreq *r = &c->reqs[i];

	*out = (struct nvmk_io_req){.buf = c->h->buf,
				    .off = r->off,
				    .slba = r->slba,
				    .nlb = r->nlb,
				    .io_flags = c->io_flags,
				    .cb = r->cb,
				    .cb_arg = r->cb_arg};
}

/* Everything the straight loop does not take: the general path of the
 * namespace's arrays on the handle's namespace, qpair and buffer (the
 * trackers the loop armed, @taken, given back first). */
static __attribute__((noinline, cold)) int io_batch_general(const struct nvmk_io_handle *h,
							    uint8_t opc,
							    const struct nvmk_io_hreq *reqs,
							    unsigned n, unsigned taken)
{
	struct io_batch_ctx c = {
	    .h = h, .reqs = reqs, .io_flags = opc == NVME_CMD_WRITE ? h->wr_flags : 0};

	if (!h || !reqs || n == 0)
		return -EINVAL;
	if (taken)
		drv_batch_untake(&h->qp->q, taken);
	return drv_batch_general(h->ns, h->qp, opc, io_req_get, &c, n);
}

/* Check requests [@from, @n) (a queue that filled before them). */
static __attribute__((noinline, cold)) int io_batch_check(const struct nvmk_io_handle *h,
							  uint8_t opc,
							  const struct nvmk_io_hreq *reqs,
							  unsigned from, unsigned n)
{
	struct io_batch_ctx c = {
	    .h = h, .reqs = reqs, .io_flags = opc == NVME_CMD_WRITE ? h->wr_flags : 0};

	return drv_batch_check(h->ns, h->qp, io_req_get, &c, from, n);
}

/*
 * The array form of io_rw, as nvmk_ns_submit_read_batch's loop (ns_batch.c)
 * with the handle's constants: the qpair's gate and the namespace's removal
 * once per call; per request nlb in 1..max_blocks (which also bounds the
 * length by the buffer's size), a callback, the range inside the buffer,
 * dword alignment (Base 2.0 4.1.1), two pages at most. Same rules and
 * results as the namespace's array call.
 */
drv_inline int io_rw_batch(const struct nvmk_io_handle *h, uint8_t opc, uint32_t cdw12,
			   const struct nvmk_io_hreq *reqs, unsigned n)
{
	const struct nvmk_io_hreq *r, *end_r;
	struct nvmk_qpair *qp;
	struct drv_queue *q;
	struct nvme_sqe *sqe, *sq_end;
	uint64_t word;
	uint32_t head, k;

	if (drv_unlikely(!h || !reqs || n == 0 || h->max_blocks == 0))
		return io_batch_general(h, opc, reqs, n, 0);
	qp = h->qp;
	if (drv_unlikely((!drv_qp_fast_submit(qp) && !drv_batch_catch_up(qp)) ||
			 atomic_load_explicit(h->removed, memory_order_relaxed)))
		return io_batch_general(h, opc, reqs, n, 0);
	q = &qp->q;
	k = drv_trk_nfree(q);
	if (n < k)
		k = n;
	if (drv_unlikely(k == 0))
		return io_batch_general(h, opc, reqs, n, 0);
	word = h->sqe_nsid | opc;
	head = q->free_head;
	sqe = &q->sq[q->sq_tail];
	sq_end = q->sq + q->depth;
	end_r = reqs + k;
	for (r = reqs; r != end_r; r++) {
		uint32_t n1 = r->nlb - 1u; /* wraps for 0 */
		nvmk_cpl_fn cb = r->cb;
		uint64_t len = (uint64_t)(n1 + 1u) * h->lba_bytes;
		uint64_t iova = h->iova + r->off;
		uint64_t end = (iova & DRV_PAGE_MASK) + len;
		struct drv_tracker *t;
		uint32_t cid;

		if (drv_unlikely(n1 >= h->max_blocks || !cb || iova - h->iova > h->size - len ||
				 (iova & 3) || end > 2u * DRV_PAGE_SIZE))
			break;
		sqe->prp1 = iova;
		sqe->prp2 = end > DRV_PAGE_SIZE ? (iova | DRV_PAGE_MASK) + 1u : 0;
		drv_sqe_put64(&sqe->cdw10, r->slba);
		sqe->cdw12 = n1 | cdw12;
		t = &q->trk[head];
		head = t->next_free;
		cid = (uint16_t)(t->cid + q->gen_inc);
		t->key = DRV_TRK_KEY_ACTIVE | cid;
		t->meta = (uint32_t)opc << 8; /* flags = 0, opc */
		t->cb = cb;
		t->cb_arg = r->cb_arg;
		drv_sqe_put64(sqe, word | (uint64_t)cid << 16);
		if (drv_unlikely(++sqe == sq_end))
			sqe = q->sq;
	}
	if (drv_unlikely(r != end_r || (k < n && io_batch_check(h, opc, reqs, k, n))))
		return io_batch_general(h, opc, reqs, n, (unsigned)(r - reqs));
	q->free_head = (uint16_t)head;
	drv_trk_took(q, k);
	q->sq_tail = (uint32_t)(sqe - q->sq);
	if (drv_likely(q->sq_db_defer == 0))
		drv_db_ring_reg(q, false, q->sq_tail);
	else if (!q->batching)
		drv_db_ring_shadow(q, false, q->sq_tail);
	return (int)k;
}

int nvmk_io_read_batch(const struct nvmk_io_handle *h, const struct nvmk_io_hreq *reqs, unsigned n)
{
	return io_rw_batch(h, NVME_CMD_READ, 0, reqs, n);
}

int nvmk_io_write_batch(const struct nvmk_io_handle *h, const struct nvmk_io_hreq *reqs, unsigned n)
{
	return io_rw_batch(h, NVME_CMD_WRITE, h ? h->wr_cdw12 : 0, reqs, n);
}
