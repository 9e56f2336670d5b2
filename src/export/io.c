// SPDX-License-Identifier: MIT
/*
 * Requests of the transmission phase: the per-thread request table, the NVMe
 * command each NBD command becomes, completion and the reply it produces.
 *
 * A request lives in slot S of its I/O thread's table from the moment its
 * header is read until its reply is sent. Its data buffer is slot S of the
 * thread's slab on the export's device (payloads are received into it and
 * sent from it, no copy), and the cb_arg of its NVMe command is the token
 * (thread + 1) << 32 | S: the driver saves exactly that for a command in
 * flight, so a successor resolves it to the same slot (docs/daemon.md).
 *
 * Mapping (NBD proto.md "Request types" -> NVM Command Set 1.0):
 *   READ          Read                     WRITE (+FUA)   Write (+FUA bit)
 *   FLUSH         Flush                    TRIM           Dataset Management, AD
 *   WRITE_ZEROES  Write Zeroes, DEAC unless NO_HOLE; FAST_ZERO with NO_HOLE
 *                 fails ENOTSUP at once (without deallocation the device
 *                 writes the zeroes: not fast); FUA on TRIM/WRITE_ZEROES adds
 *                 a Flush before the reply
 *   CACHE         nothing to do: the data path has no cache to prime; answered
 *   BLOCK_STATUS  base:allocation: one extent, "allocated, content unknown"
 *                 (flags 0). The driver has no way to ask the device which
 *                 blocks are deallocated (no Get LBA Status), so every block
 *                 is reported as data.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export_internal.h"
#include "nvmekeep/log.h"

static __thread struct exp_thread *tls_thread;

int exp_thread_table_init(struct exp_thread *t, uint32_t nslots)
{
	t->reqs = calloc(nslots, sizeof(*t->reqs));
	t->free_slots = calloc(nslots, sizeof(*t->free_slots));
	if (!t->reqs || !t->free_slots)
		return -ENOMEM;
	t->nslots = nslots;
	for (uint32_t i = 0; i < nslots; i++) {
		t->reqs[i].slot = i;
		t->free_slots[i] = nslots - 1 - i;
	}
	t->nfree = nslots;
	t->pend_head = t->pend_tail = EXP_NONE;
	return 0;
}

void exp_thread_table_free(struct exp_thread *t)
{
	free(t->reqs);
	free(t->free_slots);
	t->reqs = NULL;
	t->free_slots = NULL;
}

struct exp_req *exp_req_alloc(struct exp_thread *t, struct exp_conn *c)
{
	struct exp_req *r;

	if (!t->nfree)
		return NULL;
	r = &t->reqs[t->free_slots[--t->nfree]];
	r->state = REQ_RX;
	r->conn = c;
	r->nbd_err = 0;
	r->drv_err = 0;
	r->nvme_status = 0;
	r->flush_after = false;
	r->rx_done = 0;
	r->hdr_len = 0;
	r->data = NULL;
	r->data_len = 0;
	r->tx_done = 0;
	r->next = EXP_NONE;
	r->msg[0] = 0;
	atomic_fetch_add_explicit(&c->inflight, 1, memory_order_relaxed);
	return r;
}

void exp_req_free(struct exp_thread *t, struct exp_req *r)
{
	atomic_fetch_sub_explicit(&r->conn->inflight, 1, memory_order_relaxed);
	r->state = REQ_FREE;
	r->conn = NULL;
	t->free_slots[t->nfree++] = r->slot;
}

void *exp_req_buf(const struct exp_req *r)
{
	const struct exp_conn *c = r->conn;

	return (uint8_t *)c->td->slab.mem.vaddr + (size_t)r->slot * c->t->srv->devices[c->td->dev].slot_size;
}

static size_t req_buf_off(const struct exp_req *r)
{
	const struct exp_conn *c = r->conn;

	return (size_t)r->slot * c->t->srv->devices[c->td->dev].slot_size;
}

static void *req_token(const struct exp_req *r)
{
	return (void *)(uintptr_t)(((uint64_t)r->conn->t->idx + 1) << 32 | r->slot);
}

static void count(struct exp_req *r)
{
	struct exp_export *e = r->conn->exp;
	uint32_t len = r->r.length;

	if (r->nbd_err) {
		atomic_fetch_add_explicit(&e->n_err, 1, memory_order_relaxed);
		return;
	}
	switch (r->r.type) {
	case NVMK_NBD_CMD_READ:
		atomic_fetch_add_explicit(&e->n_read, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&e->bytes_read, len, memory_order_relaxed);
		break;
	case NVMK_NBD_CMD_WRITE:
		atomic_fetch_add_explicit(&e->n_write, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&e->bytes_written, len, memory_order_relaxed);
		break;
	case NVMK_NBD_CMD_FLUSH:
		atomic_fetch_add_explicit(&e->n_flush, 1, memory_order_relaxed);
		break;
	case NVMK_NBD_CMD_TRIM:
		atomic_fetch_add_explicit(&e->n_trim, 1, memory_order_relaxed);
		break;
	case NVMK_NBD_CMD_WRITE_ZEROES:
		atomic_fetch_add_explicit(&e->n_zero, 1, memory_order_relaxed);
		break;
	case NVMK_NBD_CMD_CACHE:
		atomic_fetch_add_explicit(&e->n_cache, 1, memory_order_relaxed);
		break;
	case NVMK_NBD_CMD_BLOCK_STATUS:
		atomic_fetch_add_explicit(&e->n_bstatus, 1, memory_order_relaxed);
		break;
	default:
		break;
	}
}

/* Build the reply of a finished request and queue it on its connection. */
void exp_req_reply(struct exp_req *r)
{
	struct exp_conn *c = r->conn;
	uint8_t *h = r->hdr;
	bool sr = c->structured;

	count(r);
	if (r->nbd_err) {
		if (sr) {
			/* proto.md NBD_REPLY_TYPE_ERROR: error, message length, message */
			size_t ml = strnlen(r->msg, EXP_ERRMSG_MAX - 1);

			r->hdr_len = (uint32_t)nvmk_nbd_put_chunk(h, NVMK_NBD_REPLY_FLAG_DONE,
								  NVMK_NBD_REPLY_TYPE_ERROR,
								  r->r.handle, (uint32_t)(6 + ml));
			nvmk_nbd_put32(h + r->hdr_len, r->nbd_err);
			nvmk_nbd_put16(h + r->hdr_len + 4, (uint16_t)ml);
			memcpy(h + r->hdr_len + 6, r->msg, ml);
			r->hdr_len += (uint32_t)(6 + ml);
		} else {
			r->hdr_len = (uint32_t)nvmk_nbd_put_simple_reply(h, r->nbd_err, r->r.handle);
		}
	} else if (r->r.type == NVMK_NBD_CMD_READ) {
		if (sr && r->r.length == 0) {
			r->hdr_len = (uint32_t)nvmk_nbd_put_chunk(h, NVMK_NBD_REPLY_FLAG_DONE,
								  NVMK_NBD_REPLY_TYPE_NONE,
								  r->r.handle, 0);
		} else if (sr) {
			/* one OFFSET_DATA chunk, final: the data is complete before it is sent */
			r->hdr_len = (uint32_t)nvmk_nbd_put_chunk(h, NVMK_NBD_REPLY_FLAG_DONE,
								  NVMK_NBD_REPLY_TYPE_OFFSET_DATA,
								  r->r.handle, 8 + r->r.length);
			nvmk_nbd_put64(h + r->hdr_len, r->r.offset);
			r->hdr_len += 8;
		} else {
			r->hdr_len = (uint32_t)nvmk_nbd_put_simple_reply(h, 0, r->r.handle);
		}
		r->data = r->r.length ? exp_req_buf(r) : NULL;
		r->data_len = r->r.length;
	} else if (r->r.type == NVMK_NBD_CMD_BLOCK_STATUS) {
		/* one extent for the whole (bounded) request; see the header */
		r->hdr_len = (uint32_t)nvmk_nbd_put_chunk(h, NVMK_NBD_REPLY_FLAG_DONE,
							  NVMK_NBD_REPLY_TYPE_BLOCK_STATUS,
							  r->r.handle, 12);
		nvmk_nbd_put32(h + r->hdr_len, NVMK_NBD_META_ID_BASE_ALLOCATION);
		nvmk_nbd_put32(h + r->hdr_len + 4, r->r.length);
		nvmk_nbd_put32(h + r->hdr_len + 8, 0);
		r->hdr_len += 12;
	} else {
		r->hdr_len = (uint32_t)nvmk_nbd_put_simple_reply(h, 0, r->r.handle);
	}
	r->state = REQ_TX;
	r->tx_done = 0;
	r->next = EXP_NONE;
	if (c->txq_tail == EXP_NONE)
		c->txq_head = r->slot;
	else
		c->t->reqs[c->txq_tail].next = r->slot;
	c->txq_tail = r->slot;
	exp_conn_mark_dirty(c);
}

static void req_fail(struct exp_req *r, uint32_t err, const char *msg)
{
	r->nbd_err = err;
	snprintf(r->msg, sizeof(r->msg), "%s", msg);
	exp_req_reply(r);
}

static void req_done(void *arg, const struct nvmk_cpl *cpl);

/* Submit the NVMe command of @r. Return: 0 (queued or answered), -EAGAIN. */
static int req_submit(struct exp_req *r)
{
	struct exp_conn *c = r->conn;
	struct exp_export *e = c->exp;
	struct exp_tdev *td = c->td;
	uint64_t slba = r->r.offset / e->lba_size;
	uint32_t nlb = r->r.length / e->lba_size;
	uint32_t fua = (r->r.flags & NVMK_NBD_CMD_FLAG_FUA) ? NVMK_IO_FUA : 0;
	int rc;

	switch (r->r.type) {
	case NVMK_NBD_CMD_READ:
		rc = nvmk_ns_submit_read(e->ns, td->qp, &td->slab, req_buf_off(r), slba, nlb, 0,
					 req_done, req_token(r));
		break;
	case NVMK_NBD_CMD_WRITE:
		rc = nvmk_ns_submit_write(e->ns, td->qp, &td->slab, req_buf_off(r), slba, nlb, fua,
					  req_done, req_token(r));
		break;
	case NVMK_NBD_CMD_FLUSH:
		rc = nvmk_ns_submit_flush(e->ns, td->qp, req_done, req_token(r));
		break;
	case NVMK_NBD_CMD_TRIM: {
		struct nvmk_range range = {.slba = slba, .nlb = nlb};

		r->flush_after = fua != 0;
		rc = nvmk_ns_submit_deallocate(e->ns, td->qp, &range, 1, req_done, req_token(r));
		break;
	}
	case NVMK_NBD_CMD_WRITE_ZEROES:
		r->flush_after = fua != 0;
		rc = nvmk_ns_submit_write_zeroes(
		    e->ns, td->qp, slba, nlb,
		    (r->r.flags & NVMK_NBD_CMD_FLAG_NO_HOLE) ? 0 : NVMK_IO_DEAC, req_done,
		    req_token(r));
		break;
	default:
		rc = -EINVAL;
		break;
	}
	if (rc == 0) {
		r->state = REQ_NVME;
		td->outstanding++;
		return 0;
	}
	if (rc == -EAGAIN)
		return rc;
	nvmk_warn(c->td->t->srv->devices[td->dev].id, nvmk_qpair_id(td->qp),
		  "nbd conn %llu: %s %s offset %llu length %u: submission failed: %s",
		  (unsigned long long)c->id, e->name, nvmk_nbd_cmd_name(r->r.type),
		  (unsigned long long)r->r.offset, r->r.length, strerror(-rc));
	req_fail(r, nvmk_nbd_errno_from_driver(rc), "the device refused the command");
	return 0;
}

static void pend_push(struct exp_thread *t, struct exp_req *r)
{
	r->state = REQ_QUEUED;
	r->next = EXP_NONE;
	if (t->pend_tail == EXP_NONE)
		t->pend_head = r->slot;
	else
		t->reqs[t->pend_tail].next = r->slot;
	t->pend_tail = r->slot;
}

static void submit_or_queue(struct exp_req *r)
{
	struct exp_thread *t = r->conn->t;

	/* keep order with requests already waiting for queue space */
	if (t->pend_head != EXP_NONE || req_submit(r) == -EAGAIN)
		pend_push(t, r);
}

void exp_io_retry_pending(struct exp_thread *t)
{
	while (t->pend_head != EXP_NONE) {
		struct exp_req *r = &t->reqs[t->pend_head];
		uint32_t next = r->next;

		if (req_submit(r) == -EAGAIN)
			return;
		t->pend_head = next;
		if (next == EXP_NONE)
			t->pend_tail = EXP_NONE;
	}
}

static void req_done(void *arg, const struct nvmk_cpl *cpl)
{
	uint64_t tok = (uint64_t)(uintptr_t)arg;
	struct exp_thread *t = tls_thread;
	struct exp_req *r;
	struct exp_tdev *td;
	char sbuf[64];

	/* callbacks run in the thread that processes the qpair: its owner */
	if (!t || (tok >> 32) != t->idx + 1 || (uint32_t)tok >= t->nslots)
		return;
	r = &t->reqs[(uint32_t)tok];
	if (r->state != REQ_NVME || !r->conn)
		return;
	td = r->conn->td;
	td->outstanding--;
	if (cpl->err) {
		struct exp_conn *c = r->conn;

		r->drv_err = cpl->err;
		r->nvme_status = cpl->status;
		nvmk_warn(t->srv->devices[td->dev].id, nvmk_qpair_id(td->qp),
			  "nbd conn %llu: %s %s offset %llu length %u failed: %s, NVMe status %s",
			  (unsigned long long)c->id, c->exp->name, nvmk_nbd_cmd_name(r->r.type),
			  (unsigned long long)r->r.offset, r->r.length, strerror(-cpl->err),
			  nvmk_status_str(cpl->status, sbuf, sizeof(sbuf)));
		req_fail(r, nvmk_nbd_errno_from_driver(cpl->err), "the NVMe command failed");
		return;
	}
	if (r->flush_after) {
		int rc;

		r->flush_after = false;
		rc = nvmk_ns_submit_flush(r->conn->exp->ns, td->qp, req_done, arg);
		if (rc == 0) {
			td->outstanding++;
			return;
		}
		/* the command just completed freed a queue entry, so this is a
		 * failed controller rather than a full queue */
		req_fail(r, nvmk_nbd_errno_from_driver(rc), "the flush for FUA failed");
		return;
	}
	exp_req_reply(r);
}

void exp_io_process_tdev(struct exp_thread *t, struct exp_tdev *td)
{
	tls_thread = t;
	if (td->outstanding)
		nvmk_qpair_process_completions(td->qp, 0);
	exp_io_retry_pending(t);
}

void exp_io_process(struct exp_thread *t, bool all)
{
	tls_thread = t;
	for (unsigned d = 0; d < EXP_MAX_DEVICES; d++) {
		struct exp_tdev *td = &t->tdev[d];

		if (!exp_tdev_active(td) || !td->outstanding)
			continue;
		if (!all && td->irq_fd >= 0)
			continue;
		nvmk_qpair_process_completions(td->qp, 0);
	}
	exp_io_retry_pending(t);
}

/* A request header was read and checked: run it. */
void exp_req_start(struct exp_conn *c, struct exp_req *r)
{
	struct exp_export *e = c->exp;

	tls_thread = c->t;
	r->state = REQ_NVME;
	switch (r->r.type) {
	case NVMK_NBD_CMD_READ:
	case NVMK_NBD_CMD_FLUSH:
	case NVMK_NBD_CMD_TRIM:
		if (r->r.length == 0 && r->r.type != NVMK_NBD_CMD_FLUSH) {
			exp_req_reply(r);
			return;
		}
		submit_or_queue(r);
		return;
	case NVMK_NBD_CMD_WRITE_ZEROES:
		if (r->r.length == 0) {
			exp_req_reply(r);
			return;
		}
		if ((r->r.flags & NVMK_NBD_CMD_FLAG_FAST_ZERO) &&
		    (r->r.flags & NVMK_NBD_CMD_FLAG_NO_HOLE)) {
			req_fail(r, NVMK_NBD_ENOTSUP,
				 "zeroing without deallocation is not fast on NVMe");
			return;
		}
		submit_or_queue(r);
		return;
	case NVMK_NBD_CMD_CACHE:
	case NVMK_NBD_CMD_BLOCK_STATUS:
		exp_req_reply(r);
		return;
	default:
		(void)e;
		req_fail(r, NVMK_NBD_EINVAL, "unknown command");
		return;
	}
}

/* The payload of a WRITE is in its buffer. */
void exp_req_payload_done(struct exp_req *r)
{
	tls_thread = r->conn->t;
	if (r->r.length == 0) {
		r->state = REQ_NVME;
		exp_req_reply(r);
		return;
	}
	r->state = REQ_NVME;
	submit_or_queue(r);
}

/* Servicing: the completion callback of every request's NVMe command, for the
 * resolver of a restore (export_state.c). */
nvmk_cpl_fn exp_req_done_fn(void)
{
	return req_done;
}
