// SPDX-License-Identifier: MIT
/*
 * Saved controller state: envelope, checksum and validation.
 *
 * The state comes from a predecessor process (or from a file an operator
 * handed over): it is untrusted input like a completion entry. Everything is
 * checked here, before restore allocates a queue or reads a register, so a
 * refused state leaves the device and the pool exactly as they were.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver/drv.h"
#include "driver/state.h"
#include "nvmekeep/crc32c.h"

/* ---- pack ---- */

int drv_state_pack(const Nvmk__CtrlState *st, void **blob, size_t *len)
{
	Nvmk__CtrlStateEnvelope env = NVMK__CTRL_STATE_ENVELOPE__INIT;
	size_t plen = nvmk__ctrl_state__get_packed_size(st), elen;
	uint8_t *payload = malloc(plen ? plen : 1), *out;

	if (!payload)
		return -ENOMEM;
	nvmk__ctrl_state__pack(st, payload);
	env.has_version = true;
	env.version = NVMK_CTRL_STATE_VERSION;
	env.has_crc32c = true;
	env.crc32c = nvmk_crc32c(0, payload, plen);
	env.has_payload = true;
	env.payload.data = payload;
	env.payload.len = plen;
	elen = nvmk__ctrl_state_envelope__get_packed_size(&env);
	out = malloc(elen);
	if (!out) {
		free(payload);
		return -ENOMEM;
	}
	nvmk__ctrl_state_envelope__pack(&env, out);
	free(payload);
	*blob = out;
	*len = elen;
	return 0;
}

/* ---- validation ---- */

struct vctx {
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int bad(struct vctx *v, const char *fmt, ...)
{
	va_list ap;

	if (v->err && v->errlen) {
		va_start(ap, fmt);
		vsnprintf(v->err, v->errlen, fmt, ap);
		va_end(ap);
	}
	return -EBADMSG;
}

void drv_state_trk_geometry(uint32_t depth, uint32_t *ntrk, uint8_t *shift, uint16_t *mask)
{
	uint32_t n = depth - 1;
	unsigned s = 0;

	if (n > DRV_MAX_TRACKERS)
		n = DRV_MAX_TRACKERS;
	while ((1u << s) < n)
		s++;
	*ntrk = n;
	*shift = (uint8_t)s;
	*mask = (uint16_t)((1u << s) - 1);
}

static uint64_t round_page(uint64_t v)
{
	return (v + DRV_PAGE_SIZE - 1) & ~(uint64_t)(DRV_PAGE_SIZE - 1);
}

#define MAX_TAGS 8192

struct tagset {
	const char *tags[MAX_TAGS];
	uint64_t iovas[MAX_TAGS];
	unsigned n;
};

static int check_block(struct vctx *v, struct tagset *ts, const Nvmk__DmaBlock *blk,
		       const char *what, uint64_t size)
{
	size_t tl;

	if (!blk)
		return bad(v, "%s: DMA block missing", what);
	if (!blk->tag || !blk->has_iova || !blk->has_size)
		return bad(v, "%s: DMA block lacks its tag, IOVA or size", what);
	tl = strlen(blk->tag);
	if (tl == 0 || tl > NVMK_DMA_TAG_MAX)
		return bad(v, "%s: DMA tag of %zu characters", what, tl);
	if (blk->size != size)
		return bad(v, "%s: DMA block %s of %llu bytes, expected %llu", what, blk->tag,
			   (unsigned long long)blk->size, (unsigned long long)size);
	if (blk->iova & (DRV_PAGE_SIZE - 1) || blk->iova + size < blk->iova)
		return bad(v, "%s: DMA block %s at IOVA 0x%llx not page aligned or wrapping", what,
			   blk->tag, (unsigned long long)blk->iova);
	/* Two blocks never start at one device address. (Only the start: without
	 * an IOMMU a block's pages are scattered, so ranges may interleave.) A
	 * restore would otherwise remap one block's address onto another's. */
	for (unsigned i = 0; i < ts->n; i++) {
		if (strcmp(ts->tags[i], blk->tag) == 0)
			return bad(v, "%s: DMA tag %s used twice", what, blk->tag);
		if (ts->iovas[i] == blk->iova)
			return bad(v, "%s: DMA blocks %s and %s both at IOVA 0x%llx", what,
				   ts->tags[i], blk->tag, (unsigned long long)blk->iova);
	}
	if (ts->n == MAX_TAGS)
		return bad(v, "%s: too many DMA blocks", what);
	ts->iovas[ts->n] = blk->iova;
	ts->tags[ts->n++] = blk->tag;
	return 0;
}

#define NEED(cond, ...)                                                                            \
	do {                                                                                       \
		if (!(cond))                                                                       \
			return bad(v, __VA_ARGS__);                                                \
	} while (0)

static int check_queue(struct vctx *v, struct tagset *ts, const Nvmk__Queue *q, uint32_t qid,
		       uint32_t max_depth, bool admin)
{
	uint32_t ntrk, active = 0;
	uint8_t shift;
	uint16_t mask;
	uint8_t *seen;
	uint32_t *children;
	int rc = 0;

	NEED(q, "queue %u missing", qid);
	NEED(q->has_qid && q->has_depth && q->has_ntrk && q->has_sq_tail && q->has_sq_db_tail &&
		 q->has_sq_head && q->has_cq_head && q->has_cq_db_head && q->has_cq_phase,
	     "queue %u: a ring field is missing", qid);
	NEED(q->qid == qid, "queue %u: saved as qid %u", qid, q->qid);
	NEED(q->depth >= 2 && q->depth <= max_depth, "queue %u: depth %u outside [2, %u]", qid,
	     q->depth, max_depth);
	drv_state_trk_geometry(q->depth, &ntrk, &shift, &mask);
	NEED(q->ntrk == ntrk, "queue %u: %u trackers for depth %u (expected %u)", qid, q->ntrk,
	     q->depth, ntrk);
	NEED(q->sq_tail < q->depth && q->sq_db_tail < q->depth && q->sq_head < q->depth &&
		 q->cq_head < q->depth && q->cq_db_head < q->depth,
	     "queue %u: head/tail beyond depth %u (sq tail %u/%u head %u, cq head %u/%u)", qid,
	     q->depth, q->sq_tail, q->sq_db_tail, q->sq_head, q->cq_head, q->cq_db_head);
	NEED(q->cq_phase <= 1, "queue %u: CQ phase %u", qid, q->cq_phase);
	NEED(q->n_pending <= ntrk, "queue %u: %zu pending commands for %u trackers", qid,
	     q->n_pending, ntrk);
	rc = check_block(v, ts, q->sq, "SQ", round_page((uint64_t)q->depth * 64u));
	if (!rc)
		rc = check_block(v, ts, q->cq, "CQ", round_page((uint64_t)q->depth * 16u));
	if (!rc)
		rc = check_block(v, ts, q->prp, "PRP lists", (uint64_t)ntrk * DRV_PAGE_SIZE);
	if (rc) {
		size_t l = v->err ? strlen(v->err) : 0;

		if (v->err && l + 16 < v->errlen)
			snprintf(v->err + l, v->errlen - l, " (queue %u)", qid);
		return rc;
	}
	if (q->n_trk_cid && q->n_trk_cid != ntrk)
		return bad(v, "queue %u: %zu tracker CIDs for %u trackers", qid, q->n_trk_cid,
			   ntrk);
	for (size_t i = 0; i < q->n_trk_cid; i++)
		NEED(q->trk_cid[i] <= 0xffff && (q->trk_cid[i] & mask) == i,
		     "queue %u: tracker %zu has CID 0x%x", qid, i, q->trk_cid[i]);
	seen = calloc(ntrk, 1);
	children = calloc(ntrk, sizeof(*children));
	if (!seen || !children) {
		free(seen);
		free(children);
		return -ENOMEM;
	}
	for (size_t i = 0; i < q->n_pending && !rc; i++) {
		const Nvmk__PendingCmd *p = q->pending[i];

		if (!p || !p->has_index || !p->has_cid || !p->has_kind || !p->has_opcode) {
			rc = bad(v, "queue %u: pending command %zu lacks index/cid/kind/opcode",
				 qid, i);
			break;
		}
		if (p->index >= ntrk || (p->cid & mask) != p->index || p->cid > 0xffff) {
			rc = bad(v, "queue %u: CID 0x%x / index %u outside the %u trackers", qid,
				 p->cid, p->index, ntrk);
			break;
		}
		if (seen[p->index]) {
			rc = bad(v, "queue %u: CID index %u saved twice", qid, p->index);
			break;
		}
		seen[p->index] = 1;
		if (q->n_trk_cid && q->trk_cid[p->index] != p->cid) {
			rc = bad(v, "queue %u: CID 0x%x of tracker %u saved as 0x%x", qid, p->cid,
				 p->index, q->trk_cid[p->index]);
			break;
		}
		if (p->opcode > 0xff || (p->has_flags && (p->flags & ~(uint32_t)TRK_F_TIMED_OUT))) {
			rc = bad(v, "queue %u: CID 0x%x: opcode 0x%x / flags 0x%x invalid", qid,
				 p->cid, p->opcode, p->flags);
			break;
		}
		if (p->has_sqe && p->sqe.len != sizeof(struct nvme_sqe)) {
			rc =
			    bad(v, "queue %u: CID 0x%x: SQE of %zu bytes", qid, p->cid, p->sqe.len);
			break;
		}
		switch (p->kind) {
		case NVMK__PENDING_CMD__KIND__IO:
			if (admin) {
				rc = bad(v, "admin queue: I/O request CID 0x%x", p->cid);
				break;
			}
			active++;
			if (p->has_parent && p->parent) {
				if (p->parent > ntrk) {
					rc = bad(v, "queue %u: CID 0x%x: parent %u out of range",
						 qid, p->cid, p->parent);
					break;
				}
				children[p->parent - 1]++;
			} else if (!p->has_token) {
				rc = bad(v, "queue %u: CID 0x%x has no token", qid, p->cid);
			}
			break;
		case NVMK__PENDING_CMD__KIND__PARENT:
			if (admin || !p->has_token || !p->has_remaining || p->remaining == 0 ||
			    (p->has_parent && p->parent)) {
				rc = bad(v, "queue %u: split request %u is malformed", qid,
					 p->index);
				break;
			}
			break;
		case NVMK__PENDING_CMD__KIND__AER:
		case NVMK__PENDING_CMD__KIND__ORPHAN:
			if (!admin) {
				rc = bad(v, "queue %u: admin-only command kind on an I/O queue",
					 qid);
				break;
			}
			active++;
			break;
		default:
			rc = bad(v, "queue %u: unknown command kind %d", qid, (int)p->kind);
			break;
		}
	}
	/* every part names an existing parent, every parent's count matches */
	for (size_t i = 0; i < q->n_pending && !rc; i++) {
		const Nvmk__PendingCmd *p = q->pending[i];

		if (p->kind == NVMK__PENDING_CMD__KIND__IO && p->has_parent && p->parent) {
			bool found = false;

			for (size_t k = 0; k < q->n_pending; k++)
				if (q->pending[k]->index == p->parent - 1 &&
				    q->pending[k]->kind == NVMK__PENDING_CMD__KIND__PARENT)
					found = true;
			if (!found)
				rc = bad(v,
					 "queue %u: CID 0x%x names parent %u, which is not a "
					 "split request",
					 qid, p->cid, p->parent - 1);
		}
		if (p->kind == NVMK__PENDING_CMD__KIND__PARENT &&
		    children[p->index] != p->remaining)
			rc = bad(v, "queue %u: split request %u waits for %u parts, %u saved", qid,
				 p->index, p->remaining, children[p->index]);
	}
	if (!rc && active > q->depth - 1)
		rc =
		    bad(v, "queue %u: %u commands on a queue of %u entries", qid, active, q->depth);
	free(seen);
	free(children);
	return rc;
}

static int check_options(struct vctx *v, const Nvmk__CtrlOptions *o)
{
	NEED(o, "controller options missing");
	NEED(o->has_admin_queue_depth && o->has_io_queue_depth && o->has_max_io_queues &&
		 o->has_cpl_mode && o->has_admin_timeout_ms && o->has_io_timeout_ms &&
		 o->has_shutdown_timeout_ms && o->has_health_check_ms && o->has_dbbuf_mode &&
		 o->has_host_id,
	     "controller options incomplete");
	NEED(o->admin_queue_depth >= 1 && o->admin_queue_depth <= 65535,
	     "option admin_queue_depth %u", o->admin_queue_depth);
	NEED(o->io_queue_depth >= 1 && o->io_queue_depth <= 65536, "option io_queue_depth %u",
	     o->io_queue_depth);
	NEED(o->max_io_queues >= 1 && o->max_io_queues <= 65535, "option max_io_queues %u",
	     o->max_io_queues);
	NEED(o->cpl_mode <= NVMK_CPL_POLL, "option cpl_mode %u", o->cpl_mode);
	NEED(o->dbbuf_mode <= NVMK_DBBUF_OFF, "option dbbuf %u", o->dbbuf_mode);
	NEED(o->admin_timeout_ms && o->io_timeout_ms && o->health_check_ms,
	     "option timeouts of 0 ms");
	return 0;
}

static int check_namespaces(struct vctx *v, const Nvmk__CtrlState *st)
{
	for (size_t i = 0; i < st->n_namespaces; i++) {
		const Nvmk__Namespace *n = st->namespaces[i];

		NEED(n && n->has_nsid && n->nsid != 0 && n->nsid != NVME_NSID_ALL,
		     "namespace %zu: invalid NSID", i);
		for (size_t k = 0; k < i; k++)
			NEED(st->namespaces[k]->nsid != n->nsid, "namespace %u saved twice",
			     n->nsid);
		NEED(n->n_handle_flags <= 65536, "namespace %u: %zu handles", n->nsid,
		     n->n_handle_flags);
		for (size_t k = 0; k < n->n_handle_flags; k++) {
			NEED(!(n->handle_flags[k] & ~NVMK_NS_SHARED),
			     "namespace %u: handle flags 0x%x", n->nsid, n->handle_flags[k]);
			NEED(n->n_handle_flags == 1 || (n->handle_flags[k] & NVMK_NS_SHARED),
			     "namespace %u: %zu handles but not all shared", n->nsid,
			     n->n_handle_flags);
		}
		if (!st->keep_alive)
			continue;
		NEED(n->has_nblocks && n->has_lba_shift && n->has_rescap && n->has_removed &&
			 n->has_known,
		     "namespace %u: fields missing", n->nsid);
		NEED(n->lba_shift >= 9 && n->lba_shift <= 16 && n->rescap <= 0xff,
		     "namespace %u: LBA shift %u / rescap 0x%x", n->nsid, n->lba_shift, n->rescap);
		NEED(!n->has_identify || n->identify.len == NVME_IDENTIFY_DATA_SIZE,
		     "namespace %u: identify data of %zu bytes", n->nsid, n->identify.len);
	}
	return 0;
}

static int check_qpairs(struct vctx *v, struct tagset *ts, const Nvmk__CtrlState *st,
			uint32_t granted, uint32_t max_depth)
{
	int rc;

	NEED(st->n_qpairs <= granted, "%zu qpairs for %u granted queues", st->n_qpairs, granted);
	for (size_t i = 0; i < st->n_qpairs; i++) {
		const Nvmk__Qpair *p = st->qpairs[i];
		const Nvmk__Queue *q = p ? p->queue : NULL;

		NEED(p && q && q->has_qid && q->has_depth && p->has_mode && p->has_shared &&
			 p->has_from_get,
		     "qpair %zu: fields missing", i);
		NEED(q->qid >= 1 && q->qid <= granted, "qpair %zu: qid %u outside [1, %u]", i,
		     q->qid, granted);
		for (size_t k = 0; k < i; k++)
			NEED(st->qpairs[k]->queue->qid != q->qid, "qid %u saved twice", q->qid);
		NEED(p->mode <= NVMK_CPL_POLL, "qpair %u: mode %u", q->qid, p->mode);
		NEED(q->depth >= 2 && q->depth <= max_depth, "qpair %u: depth %u outside [2, %u]",
		     q->qid, q->depth, max_depth);
		if (!st->keep_alive)
			continue;
		NEED(p->has_vector && p->has_irq_shared, "qpair %u: vector missing", q->qid);
		NEED(p->vector == 0 || p->vector < st->nvec, "qpair %u: vector %u of %u", q->qid,
		     p->vector, st->nvec);
		NEED(!p->has_dead || p->dead <= 0, "qpair %u: error %d", q->qid, p->dead);
		rc = check_queue(v, ts, q, q->qid, max_depth, false);
		if (rc)
			return rc;
	}
	NEED(st->n_get_qpair_qids <= st->n_qpairs, "%zu per-thread qpairs of %zu",
	     st->n_get_qpair_qids, st->n_qpairs);
	for (size_t i = 0; i < st->n_get_qpair_qids; i++) {
		bool found = false;

		for (size_t k = 0; k < i; k++)
			NEED(st->get_qpair_qids[k] != st->get_qpair_qids[i],
			     "per-thread qpair %u listed twice", st->get_qpair_qids[i]);
		for (size_t k = 0; k < st->n_qpairs; k++)
			if (st->qpairs[k]->queue->qid == st->get_qpair_qids[i] &&
			    st->qpairs[k]->from_get)
				found = true;
		NEED(found, "per-thread qpair %u is not a saved per-thread qpair",
		     st->get_qpair_qids[i]);
	}
	for (size_t k = 0; k < st->n_qpairs; k++) {
		bool listed = false;

		if (!st->qpairs[k]->from_get)
			continue;
		for (size_t i = 0; i < st->n_get_qpair_qids; i++)
			listed |= st->get_qpair_qids[i] == st->qpairs[k]->queue->qid;
		NEED(listed, "per-thread qpair %u missing from the list",
		     st->qpairs[k]->queue->qid);
	}
	return 0;
}

static int check_keep_alive(struct vctx *v, struct tagset *ts, const Nvmk__CtrlState *st)
{
	uint64_t cap = st->cap;
	uint32_t mqes, max_admin, need_db;
	unsigned aers = 0;
	int rc;

	NEED(st->has_identify_ctrl && st->identify_ctrl.len == NVME_IDENTIFY_DATA_SIZE,
	     "Identify Controller data missing or not %u bytes", NVME_IDENTIFY_DATA_SIZE);
	NEED(st->has_cap && st->has_granted && st->has_nvec && st->has_admin_depth &&
		 st->has_io_depth && st->has_max_xfer && st->has_dbbuf && st->has_get_budget,
	     "controller fields missing");
	mqes = NVME_CAP_MQES(cap);
	NEED(mqes >= 1 && (NVME_CAP_CSS(cap) & NVME_CAP_CSS_NVM) && NVME_CAP_MPSMIN(cap) == 0,
	     "CAP 0x%llx is not one the driver runs with", (unsigned long long)cap);
	NEED(st->granted >= 1 && st->granted <= st->options->max_io_queues,
	     "%u granted queues (asked %u)", st->granted, st->options->max_io_queues);
	NEED(st->nvec <= (uint32_t)st->granted + 1 && st->nvec <= 2048, "%u vectors", st->nvec);
	NEED(st->get_budget <= st->granted, "per-thread budget %u of %u", st->get_budget,
	     st->granted);
	max_admin = mqes + 1 < NVME_AQ_MAX_ENTRIES ? mqes + 1 : NVME_AQ_MAX_ENTRIES;
	NEED(st->admin_depth >= 2 && st->admin_depth <= max_admin, "admin depth %u outside [2, %u]",
	     st->admin_depth, max_admin);
	NEED(st->io_depth >= 2 && st->io_depth <= mqes + 1, "I/O depth %u outside [2, %u]",
	     st->io_depth, mqes + 1);
	NEED(st->max_xfer >= DRV_PAGE_SIZE && st->max_xfer <= DRV_MAX_XFER &&
		 !(st->max_xfer & (DRV_PAGE_SIZE - 1)),
	     "max transfer %llu", (unsigned long long)st->max_xfer);
	NEED(st->aer && st->aer->has_limit && st->aer->limit >= 1 &&
		 st->aer->limit <= DRV_MAX_AERS && st->aer->n_pending_dw0 <= DRV_AER_PENDING,
	     "AER state missing or out of range");
	if (st->dbbuf) {
		need_db = 2u * (st->granted + 1u) * (4u << NVME_CAP_DSTRD(cap));
		NEED(need_db <= DRV_PAGE_SIZE, "shadow doorbells for %u queues do not fit a page",
		     st->granted);
		rc = check_block(v, ts, st->dbbuf_mem, "shadow doorbells", 2 * DRV_PAGE_SIZE);
		if (rc)
			return rc;
	}
	rc = check_block(v, ts, st->admin_data, "admin data", DRV_PAGE_SIZE);
	if (rc)
		return rc;
	rc = check_queue(v, ts, st->admin, 0, st->admin_depth, true);
	if (rc)
		return rc;
	NEED(st->admin->depth == st->admin_depth, "admin queue depth %u, controller says %u",
	     st->admin->depth, st->admin_depth);
	for (size_t i = 0; i < st->admin->n_pending; i++)
		aers += st->admin->pending[i]->kind == NVMK__PENDING_CMD__KIND__AER;
	NEED(aers <= st->aer->limit, "%u AERs outstanding, limit %u", aers, st->aer->limit);
	return check_qpairs(v, ts, st, st->granted, mqes + 1);
}

static int check_state(struct vctx *v, const Nvmk__CtrlState *st)
{
	struct tagset *ts;
	int rc;

	NEED(st->name && st->name[0] && strlen(st->name) < sizeof(((struct nvmk_backing *)0)->name),
	     "device name missing or too long");
	NEED(st->has_keep_alive, "keep-alive flag missing");
	NEED(!st->has_generation || st->generation >= 1, "generation 0 (generations start at 1)");
	rc = check_options(v, st->options);
	if (rc)
		return rc;
	rc = check_namespaces(v, st);
	if (rc)
		return rc;
	if (!st->keep_alive)
		return check_qpairs(v, NULL, st, st->options->max_io_queues, 65536);
	ts = calloc(1, sizeof(*ts));
	if (!ts)
		return -ENOMEM;
	rc = check_keep_alive(v, ts, st);
	free(ts);
	return rc;
}

int drv_state_unpack(const void *blob, size_t len, Nvmk__CtrlState **out, char *err, size_t errlen)
{
	struct vctx vc = {err, errlen}, *v = &vc;
	Nvmk__CtrlStateEnvelope *env;
	Nvmk__CtrlState *st;
	int rc;

	if (err && errlen)
		err[0] = 0;
	if (!blob || len == 0)
		return bad(v, "empty saved state");
	env = nvmk__ctrl_state_envelope__unpack(NULL, len, blob);
	if (!env)
		return bad(v, "saved state envelope does not decode (%zu bytes; truncated?)", len);
	if (!env->has_version || !env->has_crc32c || !env->has_payload) {
		nvmk__ctrl_state_envelope__free_unpacked(env, NULL);
		return bad(v, "saved state envelope incomplete (version, checksum or payload "
			      "missing)");
	}
	if (env->version > NVMK_CTRL_STATE_VERSION) {
		if (err && errlen)
			snprintf(err, errlen,
				 "saved state format %u is newer than this binary's %u: downgrade "
				 "refused",
				 env->version, NVMK_CTRL_STATE_VERSION);
		nvmk__ctrl_state_envelope__free_unpacked(env, NULL);
		return -EPROTONOSUPPORT;
	}
	if (env->version == 0) {
		nvmk__ctrl_state_envelope__free_unpacked(env, NULL);
		return bad(v, "saved state format 0 does not exist");
	}
	/* A fuzzing build (fuzz/meson.build) looks past the checksum, so that
	 * mutated payloads reach the decoder and the validator behind it. */
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	if (nvmk_crc32c(0, env->payload.data, env->payload.len) != env->crc32c) {
#else
	if (0) {
#endif
		rc = bad(v, "saved state checksum mismatch (CRC32C 0x%08x, payload says 0x%08x)",
			 nvmk_crc32c(0, env->payload.data, env->payload.len), env->crc32c);
		nvmk__ctrl_state_envelope__free_unpacked(env, NULL);
		return rc;
	}
	st = nvmk__ctrl_state__unpack(NULL, env->payload.len, env->payload.data);
	nvmk__ctrl_state_envelope__free_unpacked(env, NULL);
	if (!st)
		return bad(v, "saved state payload does not decode");
	rc = check_state(v, st);
	if (rc) {
		nvmk__ctrl_state__free_unpacked(st, NULL);
		return rc;
	}
	if (out)
		*out = st;
	else
		nvmk__ctrl_state__free_unpacked(st, NULL);
	return 0;
}

int nvmk_ctrl_state_validate(const void *blob, size_t len, char *err, size_t errlen)
{
	return drv_state_unpack(blob, len, NULL, err, errlen);
}
