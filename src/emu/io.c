/* SPDX-License-Identifier: MIT */
/*
 * NVM command set (NVM-CS 1.0, 3.2): Read, Write, Compare, Flush, Write
 * Zeroes, Dataset Management and the reservation commands. Every command
 * that touches a namespace holds the subsystem's namespace lock for reading,
 * so a concurrent remove/resize waits for it.
 */
#include <string.h>

#include "emu/emu_internal.h"
#include "emu/prp.h"

#define SF_GEN(sc)    NVME_SF(NVME_SCT_GENERIC, sc)
#define SF_MEDIA(sc)  NVME_SF(NVME_SCT_MEDIA, sc)
#define INVALID_FIELD (SF_GEN(NVME_SC_INVALID_FIELD) | NVME_SF_DNR)
#define INVALID_NS    (SF_GEN(NVME_SC_INVALID_NS) | NVME_SF_DNR)
#define LBA_RANGE     (SF_GEN(NVME_SC_LBA_RANGE) | NVME_SF_DNR)

static struct emu_result res(uint16_t status)
{
	return (struct emu_result){.status = status};
}

struct io_arg {
	struct nvmk_emu *emu;
	struct emu_ns *ns;
	uint64_t off;
};

static uint16_t seg_write(void *a, void *host, size_t len)
{
	struct io_arg *io = a;

	if (emu_ns_write(io->ns, io->off, host, len))
		return SF_MEDIA(NVME_SC_WRITE_FAULT);
	io->off += len;
	return 0;
}

static uint16_t seg_read(void *a, void *host, size_t len)
{
	struct io_arg *io = a;

	if (emu_ns_read(io->ns, io->off, host, len))
		return SF_MEDIA(NVME_SC_READ_ERROR);
	io->off += len;
	return 0;
}

static uint16_t seg_compare(void *a, void *host, size_t len)
{
	struct io_arg *io = a;
	uint8_t *h = host;

	while (len) {
		size_t n = len < EMU_BOUNCE ? len : EMU_BOUNCE;

		if (emu_ns_read(io->ns, io->off, io->emu->bounce, n))
			return SF_MEDIA(NVME_SC_READ_ERROR);
		if (memcmp(io->emu->bounce, h, n))
			return SF_MEDIA(NVME_SC_COMPARE_FAILED) | NVME_SF_DNR;
		io->off += n;
		h += n;
		len -= n;
	}
	return 0;
}

/* LBA range check (NVM-CS 1.0 3.3.3.2.1): SLBA + NLB must not pass NSZE. */
static bool lba_ok(struct emu_ns *ns, uint64_t slba, uint64_t nlb)
{
	uint64_t nsze = emu_ns_nblocks(ns);

	return slba < nsze && nlb <= nsze - slba;
}

/* Read, Write, Compare (NVM-CS 1.0 3.2.1, 3.2.6 / 3.3.6, 3.2.2). */
static uint16_t io_rw(struct nvmk_emu *emu, struct emu_ns *ns, const struct nvme_sqe *sqe)
{
	uint64_t slba = (uint64_t)sqe->cdw11 << 32 | sqe->cdw10;
	uint64_t nlb = NVME_RW_NLB(sqe->cdw12) + 1ull;
	uint8_t shift = emu_ns_lba_shift(ns);
	uint64_t bytes = nlb << shift;
	struct emu_prp_ctx ctx = {.dma = emu->cfg.dma,
				  .done = emu->cfg.dma_done,
				  .dma_ctx = emu->cfg.dma_ctx,
				  .page_size = emu->page_size,
				  .write = sqe->opc == NVME_CMD_READ};
	struct io_arg a = {.emu = emu, .ns = ns, .off = slba << shift};
	emu_prp_seg_fn fn;
	uint16_t st;

	/* No protection information is formatted: PRINFO must be 0. */
	if (NVME_RW_PRINFO(sqe->cdw12))
		return INVALID_FIELD;
	if (!lba_ok(ns, slba, nlb))
		return LBA_RANGE;
	if (emu->max_xfer && bytes > emu->max_xfer)
		return INVALID_FIELD; /* beyond MDTS (Base 2.0 Figure 275) */
	fn = sqe->opc == NVME_CMD_WRITE	 ? seg_write
	     : sqe->opc == NVME_CMD_READ ? seg_read
					 : seg_compare;
	st = emu_prp_walk(&ctx, sqe->prp1, sqe->prp2, bytes, fn, &a);
	if (st)
		return st;
	if (sqe->opc == NVME_CMD_WRITE) {
		emu->smart_write_cmds++;
		emu->smart_write_units += bytes >> 9;
		/* FUA or no volatile cache: make the data durable before completing. */
		if (((sqe->cdw12 & NVME_RW_FUA) || !emu->feat_vwc) && emu_ns_flush(ns))
			return SF_MEDIA(NVME_SC_WRITE_FAULT);
	} else if (sqe->opc == NVME_CMD_READ) {
		emu->smart_read_cmds++;
		emu->smart_read_units += bytes >> 9;
	}
	return 0;
}

/* Write Zeroes, NVM-CS 1.0 3.2.8: DEAC deallocates (reads then return zeroes). */
static uint16_t io_write_zeroes(struct emu_ns *ns, const struct nvme_sqe *sqe)
{
	uint64_t slba = (uint64_t)sqe->cdw11 << 32 | sqe->cdw10;
	uint64_t nlb = NVME_RW_NLB(sqe->cdw12) + 1ull;
	uint8_t shift = emu_ns_lba_shift(ns);

	if (NVME_RW_PRINFO(sqe->cdw12))
		return INVALID_FIELD;
	if (!lba_ok(ns, slba, nlb))
		return LBA_RANGE;
	if (emu_ns_zero(ns, slba << shift, nlb << shift, sqe->cdw12 & NVME_RW_DEAC))
		return SF_MEDIA(NVME_SC_WRITE_FAULT);
	return 0;
}

/* Dataset Management, NVM-CS 1.0 3.2.3: only AD (deallocate) acts; the
 * IDR/IDW hints are accepted and ignored. All ranges are validated first. */
static uint16_t io_dsm(struct nvmk_emu *emu, struct emu_ns *ns, const struct nvme_sqe *sqe)
{
	unsigned nr = NVME_DSM_NR(sqe->cdw10) + 1u;
	struct nvme_dsm_range *rg = (struct nvme_dsm_range *)emu->bounce;
	uint8_t shift = emu_ns_lba_shift(ns);
	uint16_t st;

	if ((sqe->cdw10 & ~0xffu) || (sqe->cdw11 & ~0x7u))
		return INVALID_FIELD;
	st = emu_dma_from_host(emu, sqe, rg, nr * sizeof(*rg));
	if (st)
		return st;
	if (!(sqe->cdw11 & NVME_DSM_AD))
		return 0;
	for (unsigned i = 0; i < nr; i++)
		if (rg[i].nlb && !lba_ok(ns, rg[i].slba, rg[i].nlb))
			return LBA_RANGE;
	for (unsigned i = 0; i < nr; i++)
		if (rg[i].nlb &&
		    emu_ns_zero(ns, rg[i].slba << shift, (uint64_t)rg[i].nlb << shift, true))
			return SF_MEDIA(NVME_SC_WRITE_FAULT);
	return 0;
}

/* Ask every controller of the subsystem to abort the held commands of the
 * preempted hosts (their workers do it at their next round). */
static void io_preempt_abort(struct nvmk_emu *emu, uint32_t nsid, const struct emu_resv_host *pre,
			     unsigned npre)
{
	struct emu_subsys *s = emu->subsys;

	pthread_mutex_lock(&s->ctrl_lock);
	for (unsigned i = 0; i < EMU_MAX_CTRLS; i++) {
		struct nvmk_emu *c = s->ctrls[i];

		if (!c)
			continue;
		pthread_mutex_lock(&c->aer_lock);
		/* More hosts than we can list: abort every held command of the ns. */
		if (npre > EMU_MAX_PREEMPT)
			c->preempt_overflow = true;
		for (unsigned j = 0; j < npre && j < EMU_MAX_PREEMPT; j++) {
			if (c->nr_preempt == EMU_MAX_PREEMPT) {
				c->preempt_overflow = true;
				break;
			}
			c->preempt[c->nr_preempt++] = (struct emu_preempt_req){nsid, pre[j]};
		}
		pthread_mutex_unlock(&c->aer_lock);
		emu_kick(c);
	}
	pthread_mutex_unlock(&s->ctrl_lock);
}

/* Reservation commands, NVM-CS 1.0 3.2.4 - 3.2.7; semantics in reservation.c. */
static uint16_t io_resv(struct nvmk_emu *emu, struct emu_resv *r, const struct nvme_sqe *sqe)
{
	union {
		struct nvme_resv_register_data reg;
		struct nvme_resv_acquire_data acq;
		uint64_t crkey;
	} d;
	uint16_t st;

	memset(&d, 0, sizeof(d));
	switch (sqe->opc) {
	case NVME_CMD_RESV_REGISTER:
		st = emu_dma_from_host(emu, sqe, &d.reg, sizeof(d.reg));
		return st ? st : emu_resv_register(r, &emu->host, sqe->cdw10, &d.reg);
	case NVME_CMD_RESV_ACQUIRE: {
		struct emu_resv_host pre[EMU_MAX_PREEMPT];
		unsigned npre = 0;
		bool aborted = false;

		st = emu_dma_from_host(emu, sqe, &d.acq, sizeof(d.acq));
		if (st)
			return st;
		st = emu_resv_acquire_ex(r, &emu->host, sqe->cdw10, &d.acq, &aborted, pre,
					 EMU_MAX_PREEMPT, &npre);
		if (!st && aborted)
			io_preempt_abort(emu, sqe->nsid, pre, npre);
		return st;
	}
	case NVME_CMD_RESV_RELEASE:
		st = emu_dma_from_host(emu, sqe, &d.crkey, sizeof(d.crkey));
		return st ? st : emu_resv_release(r, &emu->host, sqe->cdw10, d.crkey);
	case NVME_CMD_RESV_REPORT: {
		uint64_t len = ((uint64_t)sqe->cdw10 + 1) * 4;
		size_t n = len < EMU_BOUNCE ? (size_t)len : EMU_BOUNCE;

		if (sqe->cdw11 & ~NVME_RESV_REPORT_EDS)
			return INVALID_FIELD;
		if (emu->max_xfer && len > emu->max_xfer)
			return INVALID_FIELD;
		memset(emu->bounce, 0, n);
		st = emu_resv_report(r, &emu->host, sqe->cdw11 & NVME_RESV_REPORT_EDS, emu->bounce,
				     n);
		return st ? st : emu_dma_to_host_padded(emu, sqe, emu->bounce, n, len);
	}
	default:
		return SF_GEN(NVME_SC_INVALID_OPCODE) | NVME_SF_DNR;
	}
}

static uint16_t io_flush_all(struct nvmk_emu *emu)
{
	struct emu_subsys *s = emu->subsys;
	uint16_t st = 0;

	for (uint32_t i = 1; i <= s->max_ns; i++)
		if (s->ns[i] && emu_ns_flush(s->ns[i]))
			st = SF_MEDIA(NVME_SC_WRITE_FAULT);
	return st;
}

static bool io_opcode_known(uint8_t opc)
{
	switch (opc) {
	case NVME_CMD_FLUSH:
	case NVME_CMD_WRITE:
	case NVME_CMD_READ:
	case NVME_CMD_COMPARE:
	case NVME_CMD_WRITE_ZEROES:
	case NVME_CMD_DSM:
	case NVME_CMD_RESV_REGISTER:
	case NVME_CMD_RESV_REPORT:
	case NVME_CMD_RESV_ACQUIRE:
	case NVME_CMD_RESV_RELEASE:
		return true;
	default:
		return false;
	}
}

static bool io_is_resv(uint8_t opc)
{
	return opc == NVME_CMD_RESV_REGISTER || opc == NVME_CMD_RESV_REPORT ||
	       opc == NVME_CMD_RESV_ACQUIRE || opc == NVME_CMD_RESV_RELEASE;
}

struct emu_result emu_io_exec(struct nvmk_emu *emu, uint16_t sqid, const struct nvme_sqe *sqe)
{
	struct emu_subsys *s = emu->subsys;
	struct emu_ns *ns;
	struct emu_resv *r;
	uint16_t st;

	if (!io_opcode_known(sqe->opc))
		return res(SF_GEN(NVME_SC_INVALID_OPCODE) | NVME_SF_DNR);
	if (NVME_SQE_FUSE(sqe->flags) || NVME_SQE_PSDT(sqe->flags) || (sqe->flags & 0x3c))
		return res(INVALID_FIELD);

	pthread_rwlock_rdlock(&s->ns_lock);
	if (sqe->opc == NVME_CMD_FLUSH && sqe->nsid == NVME_NSID_ALL) {
		/* Identify VWC bits 2:1 = 11b: Flush of every namespace. */
		st = io_flush_all(emu);
		goto out;
	}
	if (sqe->nsid == 0 || sqe->nsid > s->max_ns || !s->ns[sqe->nsid]) {
		st = INVALID_NS;
		goto out;
	}
	ns = s->ns[sqe->nsid];
	r = s->resv[sqe->nsid];
	if (io_is_resv(sqe->opc)) {
		st = io_resv(emu, r, sqe);
		goto out;
	}
	/* Reservation access rules before any data is touched (NVM-CS 1.0 Figure 6). */
	st = emu_resv_check(r, &emu->host, sqe->opc);
	if (st)
		goto out;
	switch (sqe->opc) {
	case NVME_CMD_FLUSH:
		st = emu_ns_flush(ns) ? SF_MEDIA(NVME_SC_WRITE_FAULT) : 0;
		break;
	case NVME_CMD_WRITE:
	case NVME_CMD_READ:
	case NVME_CMD_COMPARE:
		st = io_rw(emu, ns, sqe);
		break;
	case NVME_CMD_WRITE_ZEROES:
		st = io_write_zeroes(ns, sqe);
		break;
	case NVME_CMD_DSM:
		st = io_dsm(emu, ns, sqe);
		break;
	default:
		st = SF_GEN(NVME_SC_INVALID_OPCODE) | NVME_SF_DNR;
		break;
	}
out:
	pthread_rwlock_unlock(&s->ns_lock);
	if (st)
		nvmk_debug(emu->name, sqid, "opc 0x%02x cid %u nsid %u failed: status 0x%x",
			   sqe->opc, sqe->cid, sqe->nsid, st);
	return res(st);
}
