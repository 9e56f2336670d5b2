// SPDX-License-Identifier: MIT
/*
 * The resume blob of a --persist server (nvmekeep-emu's vendor region,
 * docs/vfio-user.md): what a client that crashed left in the device. The
 * server writes it, a new client reads it and trusts nothing in it: every
 * count, size, index and position is checked before use (the fuzz target
 * fuzz/fuzz_vfio_user.c drives this parser too).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nvmekeep/vfio_user.h"

static int bad(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

size_t nvmk_vfu_resume_size(uint32_t nmaps, uint32_t nsq, uint32_t ncq, uint32_t ncmd)
{
	uint64_t n = sizeof(struct nvmk_vfu_resume_hdr) +
		     (uint64_t)nmaps * sizeof(struct nvmk_vfu_resume_map) +
		     (uint64_t)nsq * sizeof(struct nvmk_vfu_resume_sq) +
		     (uint64_t)ncq * sizeof(struct nvmk_vfu_resume_cq) +
		     (uint64_t)ncmd * sizeof(struct nvmk_vfu_resume_cmd);

	return n > NVMK_VFU_RESUME_MAX ? 0 : (size_t)n;
}

static const struct nvmk_vfu_resume_cq *find_cq(const struct nvmk_vfu_resume *r, uint32_t qid)
{
	for (uint32_t i = 0; i < r->h.ncq; i++)
		if (r->cqs[i].qid == qid)
			return &r->cqs[i];
	return NULL;
}

static const struct nvmk_vfu_resume_sq *find_sq(const struct nvmk_vfu_resume *r, uint32_t qid)
{
	for (uint32_t i = 0; i < r->h.nsq; i++)
		if (r->sqs[i].qid == qid)
			return &r->sqs[i];
	return NULL;
}

static int check_queue(uint32_t size, uint32_t head, uint32_t tail, uint64_t base, const char *what,
		       unsigned qid, char *why, size_t whylen)
{
	if (size < 2 || size > 65536)
		return bad(why, whylen, "%s %u has %u entries (2..65536)", what, qid, size);
	if (head >= size || tail >= size)
		return bad(why, whylen, "%s %u head %u / tail %u outside its %u entries", what, qid,
			   head, tail, size);
	if (base & 4095)
		return bad(why, whylen, "%s %u base 0x%llx is not 4 KiB aligned", what, qid,
			   (unsigned long long)base);
	return 0;
}

int nvmk_vfu_resume_parse(const void *p, size_t len, struct nvmk_vfu_resume *out, char *why,
			  size_t whylen)
{
	const uint8_t *b = p;
	struct nvmk_vfu_resume r;
	size_t need, off;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!p || len < sizeof(r.h))
		return bad(why, whylen, "resume state of %zu bytes (header is %zu)", len,
			   sizeof(r.h));
	if ((uintptr_t)p & 7)
		return bad(why, whylen, "resume state buffer not 8-byte aligned");
	memcpy(&r.h, p, sizeof(r.h));
	if (r.h.magic != NVMK_VFU_RESUME_MAGIC)
		return bad(why, whylen, "resume state magic 0x%08x (want 0x%08x)", r.h.magic,
			   NVMK_VFU_RESUME_MAGIC);
	if (r.h.version != NVMK_VFU_RESUME_VERSION)
		return bad(why, whylen, "resume state version %u (this client reads %u)",
			   r.h.version, NVMK_VFU_RESUME_VERSION);
	if (r.h.hdr_size != sizeof(r.h))
		return bad(why, whylen, "resume state header of %u bytes (want %zu)", r.h.hdr_size,
			   sizeof(r.h));
	if (r.h.nmaps > 65536 || r.h.nsq > 65536 || r.h.ncq > 65536 || r.h.ncmd > 65536)
		return bad(why, whylen,
			   "resume state counts %u maps, %u SQs, %u CQs, %u commands "
			   "(at most 65536 each)",
			   r.h.nmaps, r.h.nsq, r.h.ncq, r.h.ncmd);
	need = nvmk_vfu_resume_size(r.h.nmaps, r.h.nsq, r.h.ncq, r.h.ncmd);
	if (!need || need != len || r.h.total_size != len)
		return bad(why, whylen,
			   "resume state of %zu bytes, total_size %u, its counts need %zu", len,
			   r.h.total_size, need);
	off = sizeof(r.h);
	r.maps = (const void *)(b + off);
	off += (size_t)r.h.nmaps * sizeof(*r.maps);
	r.sqs = (const void *)(b + off);
	off += (size_t)r.h.nsq * sizeof(*r.sqs);
	r.cqs = (const void *)(b + off);
	off += (size_t)r.h.ncq * sizeof(*r.cqs);
	r.cmds = (const void *)(b + off);

	for (uint32_t i = 0; i < r.h.nmaps; i++) {
		const struct nvmk_vfu_resume_map *m = &r.maps[i];

		if (!m->size || ((m->iova | m->size | m->offset) & 4095) ||
		    m->iova + m->size < m->iova)
			return bad(why, whylen,
				   "map %u (0x%llx+0x%llx at offset 0x%llx): empty, "
				   "unaligned or wrapping",
				   i, (unsigned long long)m->iova, (unsigned long long)m->size,
				   (unsigned long long)m->offset);
		if (i && r.maps[i - 1].iova + r.maps[i - 1].size > m->iova)
			return bad(why, whylen, "map %u at 0x%llx overlaps or precedes map %u", i,
				   (unsigned long long)m->iova, i - 1);
		if (m->flags & ~(uint32_t)(NVMK_VFU_DMA_READ_OK | NVMK_VFU_DMA_WRITE_OK))
			return bad(why, whylen, "map %u flags 0x%x", i, m->flags);
	}
	for (uint32_t i = 0; i < r.h.ncq; i++) {
		const struct nvmk_vfu_resume_cq *c = &r.cqs[i];

		rc = check_queue(c->size, c->head, c->tail, c->base, "CQ", c->qid, why, whylen);
		if (rc)
			return rc;
		if (c->phase > 1)
			return bad(why, whylen, "CQ %u phase %u", c->qid, c->phase);
		for (uint32_t k = 0; k < i; k++)
			if (r.cqs[k].qid == c->qid)
				return bad(why, whylen, "CQ %u listed twice", c->qid);
	}
	for (uint32_t i = 0; i < r.h.nsq; i++) {
		const struct nvmk_vfu_resume_sq *s = &r.sqs[i];

		rc = check_queue(s->size, s->head, s->tail, s->base, "SQ", s->qid, why, whylen);
		if (rc)
			return rc;
		if (!find_cq(&r, s->cqid))
			return bad(why, whylen, "SQ %u is bound to CQ %u, which is not listed",
				   s->qid, s->cqid);
		if ((s->qid == 0) != (s->cqid == 0))
			return bad(why, whylen,
				   "SQ %u bound to CQ %u: only the admin queues pair "
				   "with each other",
				   s->qid, s->cqid);
		for (uint32_t k = 0; k < i; k++)
			if (r.sqs[k].qid == s->qid)
				return bad(why, whylen, "SQ %u listed twice", s->qid);
	}
	if ((r.h.nsq || r.h.ncq) && (!find_sq(&r, 0) || !find_cq(&r, 0)))
		return bad(why, whylen, "queues listed without the admin SQ and CQ (qid 0)");
	for (uint32_t i = 0; i < r.h.ncmd; i++) {
		const struct nvmk_vfu_resume_cmd *c = &r.cmds[i];

		if (c->kind > 2)
			return bad(why, whylen, "held command %u kind %u (0..2)", i, c->kind);
		if (!find_sq(&r, c->sqid))
			return bad(why, whylen,
				   "held command cid 0x%04x on SQ %u, which is not "
				   "listed",
				   c->cid, c->sqid);
		if (c->kind == 2 && c->sqid != 0)
			return bad(why, whylen, "an AER (cid 0x%04x) on I/O SQ %u", c->cid,
				   c->sqid);
	}
	*out = r;
	return 0;
}
