/* SPDX-License-Identifier: MIT */
/*
 * Admin command set (Base 2.0, 5): Identify, Get/Set Features, queue
 * creation and deletion, Get Log Page, Asynchronous Event Request, Abort,
 * Doorbell Buffer Config, Keep Alive. Runs on the worker thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/emu_internal.h"
#include "emu/prp.h"

#define SF_GEN(sc)    NVME_SF(NVME_SCT_GENERIC, sc)
#define SF_CMD(sc)    NVME_SF(NVME_SCT_CMD_SPECIFIC, sc)
#define INVALID_FIELD (SF_GEN(NVME_SC_INVALID_FIELD) | NVME_SF_DNR)
#define EMU_KAS	      10u /* Identify KAS: Keep Alive granularity, 100 ms units */

static struct emu_result res(uint16_t status, uint32_t dw0)
{
	return (struct emu_result){.status = status, .dw0 = dw0};
}

/* ---- data transfer helpers ---- */

struct copy_arg {
	const uint8_t *src; /* to host: source, NULL past srclen means zeroes */
	uint8_t *dst;	    /* from host */
	size_t srclen;
	size_t pos;
};

static uint16_t seg_to_host(void *a, void *host, size_t len)
{
	struct copy_arg *c = a;
	size_t n = 0;

	if (c->pos < c->srclen) {
		n = c->srclen - c->pos < len ? c->srclen - c->pos : len;
		memcpy(host, c->src + c->pos, n);
	}
	if (n < len)
		memset((uint8_t *)host + n, 0, len - n);
	c->pos += len;
	return 0;
}

static uint16_t seg_from_host(void *a, void *host, size_t len)
{
	struct copy_arg *c = a;

	memcpy(c->dst + c->pos, host, len);
	c->pos += len;
	return 0;
}

static struct emu_prp_ctx prp_ctx(struct nvmk_emu *emu, bool write)
{
	return (struct emu_prp_ctx){.dma = emu->cfg.dma,
				    .done = emu->cfg.dma_done,
				    .dma_ctx = emu->cfg.dma_ctx,
				    .page_size = emu->page_size,
				    .write = write};
}

/* Transfer @len bytes to the host: @srclen from @buf, zeroes after it. */
uint16_t emu_dma_to_host_padded(struct nvmk_emu *emu, const struct nvme_sqe *sqe, const void *buf,
				size_t srclen, size_t len)
{
	struct emu_prp_ctx ctx = prp_ctx(emu, true);
	struct copy_arg a = {.src = buf, .srclen = srclen};

	return emu_prp_walk(&ctx, sqe->prp1, sqe->prp2, len, seg_to_host, &a);
}

uint16_t emu_dma_to_host(struct nvmk_emu *emu, const struct nvme_sqe *sqe, const void *buf,
			 size_t len)
{
	return emu_dma_to_host_padded(emu, sqe, buf, len, len);
}

uint16_t emu_admin_data_to_host(struct nvmk_emu *emu, const struct nvme_sqe *sqe, const void *buf,
				size_t srclen, size_t len)
{
	uint16_t st;
	void *copy;

	if (!emu->tamper.admin_data)
		return emu_dma_to_host_padded(emu, sqe, buf, srclen, len);
	/* the hook sees (and may change) every byte that is transferred */
	copy = calloc(1, len ? len : 1);
	if (!copy)
		return emu_dma_to_host_padded(emu, sqe, buf, srclen, len);
	memcpy(copy, buf, srclen < len ? srclen : len);
	emu->tamper.admin_data(emu->tamper.ctx, sqe, copy, len);
	st = emu_dma_to_host_padded(emu, sqe, copy, len, len);
	free(copy);
	return st;
}

uint16_t emu_dma_from_host(struct nvmk_emu *emu, const struct nvme_sqe *sqe, void *buf, size_t len)
{
	struct emu_prp_ctx ctx = prp_ctx(emu, false);
	struct copy_arg a = {.dst = buf};

	return emu_prp_walk(&ctx, sqe->prp1, sqe->prp2, len, seg_from_host, &a);
}

/* ---- error log (Base 2.0 5.16.1.2) ---- */

void emu_errlog_record(struct nvmk_emu *emu, uint16_t sqid, uint16_t cid, uint16_t status,
		       uint32_t nsid)
{
	struct nvme_error_log *e = &emu->errlog[emu->errlog_pos];

	memset(e, 0, sizeof(*e));
	e->error_count = ++emu->error_count;
	e->sqid = sqid;
	e->cid = cid;
	e->status = (uint16_t)(status << 1);
	e->param_error_location = 0xffff; /* not reported */
	e->nsid = nsid;
	emu->errlog_pos = (emu->errlog_pos + 1) % EMU_ERRLOG_ENTRIES;
}

/* ---- features ---- */

#define EMU_TEMP_OVER_DEFAULT 343 /* Kelvin, = WCTEMP */

void emu_features_reset(struct nvmk_emu *emu)
{
	emu->feat_arb = 0;
	emu->feat_power = 0;
	emu->feat_temp_over = EMU_TEMP_OVER_DEFAULT;
	emu->feat_temp_under = 0;
	emu->feat_err_recovery = 0;
	emu->feat_vwc = emu->cfg.no_vwc ? 0 : NVME_FEAT_VWC_WCE;
	emu->feat_irqc = 0;
	emu->feat_irq_cfg[0] = emu->feat_irq_cfg[1] = 0;
	emu->feat_watomic = 0;
	emu->feat_kato = 0;
	emu->ka_deadline = 0; /* KATO default 0: timer off (Base 2.0 3.9) */
	emu->feat_resv_mask = 0;
	emu->feat_resv_persist = 0;
	emu->numq_set = false;
	emu->nsq_granted = emu->nq;
	emu->ncq_granted = emu->nq;
	emu->queues_created = false;
	pthread_mutex_lock(&emu->aer_lock);
	emu->aec = 0;
	pthread_mutex_unlock(&emu->aer_lock);
}

#define EMU_AEC_DEFINED 0x7fffu

/* Value of feature @fid as selected by SEL (0 current, 1 default, 2 saved).
 * Nothing is saveable, so "saved" reports the default (Base 2.0 5.15.1). */
static bool feat_value(struct nvmk_emu *emu, uint8_t fid, bool dflt, uint32_t *v)
{
	switch (fid) {
	case NVME_FEAT_ARBITRATION:
		*v = dflt ? 0 : emu->feat_arb;
		return true;
	case NVME_FEAT_POWER_MGMT:
		*v = dflt ? 0 : emu->feat_power;
		return true;
	case NVME_FEAT_ERR_RECOVERY:
		*v = dflt ? 0 : emu->feat_err_recovery;
		return true;
	case NVME_FEAT_VOLATILE_WC:
		if (emu->cfg.no_vwc)
			return false;
		*v = dflt ? NVME_FEAT_VWC_WCE : emu->feat_vwc;
		return true;
	case NVME_FEAT_NUM_QUEUES:
		*v = dflt ? NVME_FEAT_NUMQ(emu->nq - 1, emu->nq - 1)
			  : NVME_FEAT_NUMQ(emu->nsq_granted - 1, emu->ncq_granted - 1);
		return true;
	case NVME_FEAT_IRQ_COALESCE:
		*v = dflt ? 0 : emu->feat_irqc;
		return true;
	case NVME_FEAT_WRITE_ATOMIC:
		*v = dflt ? 0 : emu->feat_watomic;
		return true;
	case NVME_FEAT_ASYNC_EVENT:
		pthread_mutex_lock(&emu->aer_lock);
		*v = dflt ? 0 : emu->aec;
		pthread_mutex_unlock(&emu->aer_lock);
		return true;
	case NVME_FEAT_KATO:
		*v = dflt ? 0 : emu->feat_kato;
		return true;
	case NVME_FEAT_RESV_MASK:
		*v = dflt ? 0 : emu->feat_resv_mask;
		return true;
	case NVME_FEAT_RESV_PERSIST:
		*v = dflt ? 0 : emu->feat_resv_persist;
		return true;
	default:
		return false;
	}
}

static struct emu_result admin_get_features(struct nvmk_emu *emu, const struct nvme_sqe *sqe)
{
	uint8_t fid = NVME_FEAT_CDW10_FID(sqe->cdw10);
	uint32_t sel = NVME_FEAT_CDW10_SEL(sqe->cdw10);
	uint32_t v = 0;

	if (sqe->cdw10 & ~0x7ffu)
		return res(INVALID_FIELD, 0);
	if (sel > 3)
		return res(INVALID_FIELD, 0);
	if (fid == NVME_FEAT_HOST_ID) {
		/* Base 2.0 5.27.1.28: data returned through PRP, 8 or 16 bytes. */
		bool ext = sqe->cdw11 & NVME_FEAT_HOSTID_EXHID;
		uint8_t id[16] = {0};

		if (sel == 3)
			return res(0, 0x4); /* changeable */
		if (sqe->cdw11 & ~1u)
			return res(INVALID_FIELD, 0);
		if (sel == 0)
			memcpy(id, emu->host.hostid, sizeof(id));
		return res(emu_admin_data_to_host(emu, sqe, id, ext ? 16 : 8, ext ? 16 : 8), 0);
	}
	if (fid == NVME_FEAT_IRQ_CONFIG) {
		uint16_t iv = (uint16_t)sqe->cdw11;

		if (iv >= emu->cfg.msix_vectors)
			return res(INVALID_FIELD, 0);
		if (sel == 3)
			return res(0, 0x4);
		return res(0, iv | (sel == 0 && iv < 2 ? emu->feat_irq_cfg[iv] & 0x10000 : 0));
	}
	if (fid == NVME_FEAT_TEMP_THRESH) {
		/* One sensor (composite, TMPSEL 0); THSEL 0 over, 1 under (Figure 321). */
		uint32_t tmpsel = (sqe->cdw11 >> 16) & 0xf, thsel = (sqe->cdw11 >> 20) & 0x3;

		if (tmpsel != 0 || thsel > 1 || (sqe->cdw11 & ~0x3f0000u))
			return res(INVALID_FIELD, 0);
		if (sel == 3)
			return res(0, 0x4);
		if (sel != 0)
			v = thsel ? 0 : EMU_TEMP_OVER_DEFAULT;
		else
			v = thsel ? emu->feat_temp_under : emu->feat_temp_over;
		return res(0, v | (sqe->cdw11 & 0x3f0000u));
	}
	if (!feat_value(emu, fid, sel != 0, &v))
		return res(INVALID_FIELD, 0);
	if (sel == 3) {
		/* Supported capabilities: changeable; 82h/83h are namespace specific. */
		v = 0x4;
		if (fid == NVME_FEAT_RESV_MASK || fid == NVME_FEAT_RESV_PERSIST)
			v |= 0x2;
	}
	return res(0, v);
}

static struct emu_result feat_set_numq(struct nvmk_emu *emu, uint32_t cdw11)
{
	uint32_t nsq = NVME_FEAT_NUMQ_NSQ(cdw11), ncq = NVME_FEAT_NUMQ_NCQ(cdw11);

	/* Base 2.0 5.27.1.5: 65535 is invalid; after any I/O queue exists the
	 * feature is fixed until reset (Command Sequence Error). */
	if (nsq == 0xffff || ncq == 0xffff)
		return res(INVALID_FIELD, 0);
	if (emu->queues_created)
		return res(SF_GEN(NVME_SC_CMD_SEQ_ERROR) | NVME_SF_DNR, 0);
	emu->nsq_granted = (uint16_t)(nsq + 1 < emu->nq ? nsq + 1 : emu->nq);
	emu->ncq_granted = (uint16_t)(ncq + 1 < emu->nq ? ncq + 1 : emu->nq);
	emu->numq_set = true;
	return res(0, NVME_FEAT_NUMQ(emu->nsq_granted - 1, emu->ncq_granted - 1));
}

/*
 * One Host Identifier format per NVM subsystem: a 64-bit identifier while
 * another controller of the subsystem has a 128-bit one (or the reverse) is
 * Host Identifier Inconsistent Format (Base 2.0 5.27.1.25; Figure 94 status
 * 18h: "simultaneous use of 64-bit and 128-bit Host Identifier values on
 * different controllers"). Checked and recorded under ctrl_lock so two controllers setting
 * different formats at once cannot both succeed. Returns false on conflict.
 */
static bool hostid_format_claim(struct nvmk_emu *emu, bool ext)
{
	struct emu_subsys *s = emu->subsys;
	uint8_t fmt = ext ? 16 : 8;
	bool ok = true;

	pthread_mutex_lock(&s->ctrl_lock);
	for (unsigned i = 0; i < EMU_MAX_CTRLS && ok; i++) {
		const struct nvmk_emu *o = s->ctrls[i];

		if (o && o != emu && o->hostid_fmt && o->hostid_fmt != fmt)
			ok = false;
	}
	if (ok)
		emu->hostid_fmt = fmt;
	pthread_mutex_unlock(&s->ctrl_lock);
	if (!ok)
		nvmk_warn(emu->name, 0,
			  "%s-bit Host Identifier refused: another controller of the subsystem "
			  "uses the other format",
			  ext ? "128" : "64");
	return ok;
}

/*
 * Keep Alive Timeout in ms (Base 2.0 5.27.1.12, 3.9): rounded up to a multiple
 * of the KAS granularity (Get Features reports the rounded value); 0 disables
 * the timer. Setting it (re)starts the timer.
 */
static void feat_set_kato(struct nvmk_emu *emu, uint32_t v)
{
	uint64_t g = EMU_KAS * 100ull, ms = (v + g - 1) / g * g;

	if (ms > UINT32_MAX)
		ms -= g; /* 32-bit field: the largest multiple that fits */
	emu->feat_kato = (uint32_t)ms;
	emu_keep_alive_restart(emu);
}

static struct emu_result admin_set_features(struct nvmk_emu *emu, const struct nvme_sqe *sqe)
{
	uint8_t fid = NVME_FEAT_CDW10_FID(sqe->cdw10);
	uint32_t v = sqe->cdw11;

	if (sqe->cdw10 & NVME_FEAT_CDW10_SV)
		return res(SF_CMD(NVME_SC_FEATURE_NOT_SAVEABLE) | NVME_SF_DNR, 0);
	if (sqe->cdw10 & 0x7fffff00u)
		return res(INVALID_FIELD, 0);
	switch (fid) {
	case NVME_FEAT_ARBITRATION:
		emu->feat_arb = v; /* accepted; round robin only (CAP.AMS = 0) ignores weights */
		return res(0, 0);
	case NVME_FEAT_POWER_MGMT:
		/* A single power state (NPSS = 0): PS must be 0; WH recorded. */
		if ((v & 0x1f) || (v & ~0xffu))
			return res(INVALID_FIELD, 0);
		emu->feat_power = v;
		return res(0, 0);
	case NVME_FEAT_TEMP_THRESH: {
		uint32_t tmpsel = (v >> 16) & 0xf, thsel = (v >> 20) & 0x3;

		if (tmpsel != 0 || thsel > 1 || (v & ~0x3fffffu))
			return res(INVALID_FIELD, 0);
		if (thsel)
			emu->feat_temp_under = v & 0xffff;
		else
			emu->feat_temp_over = v & 0xffff;
		return res(0, 0);
	}
	case NVME_FEAT_ERR_RECOVERY:
		/* TLER recorded; DULBE (bit 16) needs deallocated-block errors: refused. */
		if (v & ~0xffffu)
			return res(INVALID_FIELD, 0);
		emu->feat_err_recovery = v;
		return res(0, 0);
	case NVME_FEAT_VOLATILE_WC:
		if (emu->cfg.no_vwc || (v & ~NVME_FEAT_VWC_WCE))
			return res(INVALID_FIELD, 0);
		emu->feat_vwc = v;
		return res(0, 0);
	case NVME_FEAT_NUM_QUEUES:
		return feat_set_numq(emu, v);
	case NVME_FEAT_IRQ_COALESCE:
		/* Accepted and recorded; every completion is signalled at once. Coalescing
		 * is a permission to delay, never a requirement (Base 2.0 5.27.1.6). */
		if (v & ~0xffffu)
			return res(INVALID_FIELD, 0);
		emu->feat_irqc = v;
		return res(0, 0);
	case NVME_FEAT_IRQ_CONFIG:
		if ((uint16_t)v >= emu->cfg.msix_vectors || (v & ~0x1ffffu))
			return res(INVALID_FIELD, 0);
		if ((uint16_t)v < 2)
			emu->feat_irq_cfg[(uint16_t)v] = v;
		return res(0, 0);
	case NVME_FEAT_WRITE_ATOMIC:
		if (v & ~1u)
			return res(INVALID_FIELD, 0);
		emu->feat_watomic = v;
		return res(0, 0);
	case NVME_FEAT_ASYNC_EVENT:
		/* Bits 14:0 are defined (Base 2.0 Figure 325); events the controller
		 * never generates may be enabled harmlessly. Higher bits are reserved
		 * for PCIe controllers. */
		if (v & ~EMU_AEC_DEFINED)
			return res(INVALID_FIELD, 0);
		pthread_mutex_lock(&emu->aer_lock);
		emu->aec = v;
		pthread_mutex_unlock(&emu->aer_lock);
		return res(0, 0);
	case NVME_FEAT_KATO:
		feat_set_kato(emu, v);
		return res(0, 0);
	case NVME_FEAT_HOST_ID: {
		bool ext = v & NVME_FEAT_HOSTID_EXHID;
		uint8_t id[16] = {0};
		uint16_t st;

		if (v & ~1u)
			return res(INVALID_FIELD, 0);
		st = emu_dma_from_host(emu, sqe, id, ext ? 16 : 8);
		if (st)
			return res(st, 0);
		if (!hostid_format_claim(emu, ext))
			return res(SF_GEN(NVME_SC_HOSTID_INCONSISTENT) | NVME_SF_DNR, 0);
		memcpy(emu->host.hostid, id, sizeof(id));
		emu->host.hostid_ext = ext;
		emu->hostid_set = true;
		return res(0, 0);
	}
	case NVME_FEAT_RESV_MASK:
		/* Namespace specific in the spec; recorded per controller (no
		 * reservation notification log is produced). */
		if (v & ~0xeu)
			return res(INVALID_FIELD, 0);
		emu->feat_resv_mask = v;
		return res(0, 0);
	case NVME_FEAT_RESV_PERSIST:
		if (v & ~1u)
			return res(INVALID_FIELD, 0);
		emu->feat_resv_persist = v;
		return res(0, 0);
	default:
		return res(INVALID_FIELD, 0);
	}
}

/* ---- identify (Base 2.0 5.17) ---- */

#define EMU_FW_REV	   "0.1" /* Identify FR and the Firmware Slot log's FRS1 */
#define EMU_FW_SLOTS	   1u
#define EMU_CTRATT_HID_128 (1u << 0)

static void pad_copy(char *dst, size_t n, const char *src)
{
	size_t l = strlen(src);

	memset(dst, ' ', n);
	memcpy(dst, src, l < n ? l : n);
}

static void identify_ctrl(struct nvmk_emu *emu, struct nvme_id_ctrl *id)
{
	struct emu_subsys *s = emu->subsys;

	memset(id, 0, sizeof(*id));
	id->vid = 0x1de5;
	id->ssvid = 0x1de5;
	pad_copy(id->sn, sizeof(id->sn), s->serial);
	pad_copy(id->mn, sizeof(id->mn), s->model);
	pad_copy(id->fr, sizeof(id->fr), EMU_FW_REV);
	id->rab = 6;
	id->cmic = 1u << 1; /* the subsystem may contain more than one controller */
	/* CTRATT bit 0: the 128-bit Host Identifier (Set Features 81h EXHID = 1) is
	 * supported (Base 2.0 5.27.1.25); reservations report it (EDS = 1). */
	id->ctratt = EMU_CTRATT_HID_128;
	id->mdts = emu->cfg.mdts;
	id->cntlid = emu->cntlid;
	id->ver = NVME_VS(2, 0, 0);
	id->oaes = NVME_OAES_NS_ATTR;
	id->cntrltype = 1; /* I/O controller */
	id->oacs = emu->cfg.no_dbbuf ? 0 : NVME_OACS_DBBUF;
	/* FRMW (Base 2.0 Figure 275): one firmware slot (bits 3:1 = 1), slot 1
	 * read only (bit 0): Firmware Download/Commit are not offered (OACS bit 2
	 * clear), so the running image can never be replaced. */
	id->frmw = EMU_FW_SLOTS << 1 | 1u;
	id->acl = emu->cfg.acl;
	id->aerl = emu->cfg.aerl;
	id->lpa = NVME_LPA_EXTENDED; /* LPO and NUMDU supported */
	id->elpe = EMU_ERRLOG_ENTRIES - 1;
	id->wctemp = 343;
	id->cctemp = 373;
	id->kas = EMU_KAS; /* 100 ms units; the timer runs in the worker (ctrl.c) */
	id->sqes = NVME_ID_QES(NVME_SQES_LOG2, NVME_SQES_LOG2);
	id->cqes = NVME_ID_QES(NVME_CQES_LOG2, NVME_CQES_LOG2);
	id->nn = s->max_ns;
	id->oncs = NVME_ONCS_COMPARE | NVME_ONCS_DSM | NVME_ONCS_WRITE_ZEROES |
		   NVME_ONCS_SAVE_SELECT | NVME_ONCS_RESERVATIONS;
	/* VWC bits 2:1 = 11b: Flush with NSID FFFFFFFFh is supported. */
	id->vwc = emu->cfg.no_vwc ? 0x6 : (NVME_VWC_PRESENT | 0x6);
	snprintf(id->subnqn, sizeof(id->subnqn), "%s", s->nqn);
	id->psd[0].mp = 2500;
}

static struct emu_result admin_identify(struct nvmk_emu *emu, const struct nvme_sqe *sqe)
{
	struct emu_subsys *s = emu->subsys;
	uint8_t *buf = emu->bounce;
	uint32_t nsid = sqe->nsid;
	uint16_t st = 0;

	memset(buf, 0, NVME_IDENTIFY_DATA_SIZE);
	switch (NVME_ID_CDW10_CNS(sqe->cdw10)) {
	case NVME_ID_CNS_CTRL:
		identify_ctrl(emu, (struct nvme_id_ctrl *)buf);
		break;
	case NVME_ID_CNS_NS:
		/* Base 2.0 5.17.2.1: an inactive but valid NSID returns zeroes; NSID
		 * FFFFFFFFh needs Namespace Management, which is not offered. */
		if (nsid == 0 || nsid > s->max_ns)
			return res(SF_GEN(NVME_SC_INVALID_NS) | NVME_SF_DNR, 0);
		pthread_rwlock_rdlock(&s->ns_lock);
		if (s->ns[nsid])
			emu_ns_identify(s->ns[nsid], s->serial, true, (struct nvme_id_ns *)buf);
		pthread_rwlock_unlock(&s->ns_lock);
		break;
	case NVME_ID_CNS_NS_ACTIVE_LIST: {
		uint32_t *list = (uint32_t *)buf;
		unsigned n = 0;

		if (nsid >= 0xfffffffeu)
			return res(SF_GEN(NVME_SC_INVALID_NS) | NVME_SF_DNR, 0);
		pthread_rwlock_rdlock(&s->ns_lock);
		for (uint32_t i = nsid + 1; i <= s->max_ns; i++)
			if (s->ns[i])
				list[n++] = i;
		pthread_rwlock_unlock(&s->ns_lock);
		break;
	}
	case NVME_ID_CNS_NS_DESC_LIST: {
		uint8_t nguid[16], eui[8], *p = buf;
		bool active;

		if (nsid == 0 || nsid > s->max_ns)
			return res(SF_GEN(NVME_SC_INVALID_NS) | NVME_SF_DNR, 0);
		pthread_rwlock_rdlock(&s->ns_lock);
		active = s->ns[nsid] != NULL;
		if (active)
			emu_ns_ids(s->ns[nsid], s->serial, nguid, eui);
		pthread_rwlock_unlock(&s->ns_lock);
		if (!active)
			return res(SF_GEN(NVME_SC_INVALID_NS) | NVME_SF_DNR, 0);
		/* Base 2.0 Figure 279: EUI64, NGUID, CSI descriptors. */
		p[0] = NVME_NIDT_EUI64;
		p[1] = NVME_NIDL_EUI64;
		memcpy(p + 4, eui, 8);
		p += 4 + 8;
		p[0] = NVME_NIDT_NGUID;
		p[1] = NVME_NIDL_NGUID;
		memcpy(p + 4, nguid, 16);
		p += 4 + 16;
		p[0] = NVME_NIDT_CSI;
		p[1] = NVME_NIDL_CSI;
		p[4] = NVME_CSI_NVM;
		break;
	}
	default:
		return res(INVALID_FIELD, 0);
	}
	st =
	    emu_admin_data_to_host(emu, sqe, buf, NVME_IDENTIFY_DATA_SIZE, NVME_IDENTIFY_DATA_SIZE);
	return res(st, 0);
}

/* ---- queue management (Base 2.0 5.4 - 5.7) ---- */

static bool page_aligned(struct nvmk_emu *emu, uint64_t a)
{
	return (a & (emu->page_size - 1)) == 0;
}

static struct emu_result admin_create_cq(struct nvmk_emu *emu, const struct nvme_sqe *sqe)
{
	uint16_t qid = NVME_CDW10_QID(sqe->cdw10);
	uint32_t qsize = NVME_CDW10_QSIZE(sqe->cdw10) + 1u;
	uint16_t iv = NVME_CQ_CDW11_IV(sqe->cdw11);
	uint32_t cc = atomic_load(&emu->cc);

	if (qid == 0 || qid > emu->ncq_granted || emu->cqs[qid].valid)
		return res(SF_CMD(NVME_SC_QID_INVALID) | NVME_SF_DNR, 0);
	if (qsize < 2 || qsize > NVME_CAP_MQES(emu->cap) + 1u)
		return res(SF_CMD(NVME_SC_QUEUE_SIZE) | NVME_SF_DNR, 0);
	if (!(sqe->cdw11 & NVME_CQ_FLAGS_PC) || (sqe->cdw11 & 0xfffcu))
		return res(INVALID_FIELD, 0); /* CAP.CQR = 1: contiguous queues only */
	if (iv >= emu->cfg.msix_vectors)
		return res(SF_CMD(NVME_SC_INVALID_VECTOR) | NVME_SF_DNR, 0);
	if (NVME_CC_IOCQES(cc) != NVME_CQES_LOG2) {
		nvmk_warn(emu->name, qid, "create CQ refused: CC.IOCQES %u (need %u)",
			  NVME_CC_IOCQES(cc), NVME_CQES_LOG2);
		return res(INVALID_FIELD, 0);
	}
	if (!sqe->prp1 || !page_aligned(emu, sqe->prp1))
		return res(INVALID_FIELD, 0);
	return res(emu_cq_create(emu, qid, qsize, sqe->prp1, sqe->cdw11 & NVME_CQ_FLAGS_IEN, iv),
		   0);
}

static struct emu_result admin_create_sq(struct nvmk_emu *emu, const struct nvme_sqe *sqe)
{
	uint16_t qid = NVME_CDW10_QID(sqe->cdw10);
	uint32_t qsize = NVME_CDW10_QSIZE(sqe->cdw10) + 1u;
	uint16_t cqid = NVME_SQ_CDW11_CQID(sqe->cdw11);
	uint32_t cc = atomic_load(&emu->cc);

	if (qid == 0 || qid > emu->nsq_granted || emu->sqs[qid].valid)
		return res(SF_CMD(NVME_SC_QID_INVALID) | NVME_SF_DNR, 0);
	if (qsize < 2 || qsize > NVME_CAP_MQES(emu->cap) + 1u)
		return res(SF_CMD(NVME_SC_QUEUE_SIZE) | NVME_SF_DNR, 0);
	if (cqid == 0 || cqid > emu->nq || !emu->cqs[cqid].valid)
		return res(SF_CMD(NVME_SC_CQ_INVALID) | NVME_SF_DNR, 0);
	/* PC must be 1 (CAP.CQR); QPRIO is ignored under round robin; NVMSETID 0. */
	if (!(sqe->cdw11 & NVME_SQ_FLAGS_PC) || (sqe->cdw11 & 0xfff8u) || (sqe->cdw12 & 0xffff))
		return res(INVALID_FIELD, 0);
	if (NVME_CC_IOSQES(cc) != NVME_SQES_LOG2) {
		nvmk_warn(emu->name, qid, "create SQ refused: CC.IOSQES %u (need %u)",
			  NVME_CC_IOSQES(cc), NVME_SQES_LOG2);
		return res(INVALID_FIELD, 0);
	}
	if (!sqe->prp1 || !page_aligned(emu, sqe->prp1))
		return res(INVALID_FIELD, 0);
	return res(emu_sq_create(emu, qid, cqid, qsize, sqe->prp1), 0);
}

static struct emu_result admin_delete_sq(struct nvmk_emu *emu, const struct nvme_sqe *sqe)
{
	uint16_t qid = NVME_CDW10_QID(sqe->cdw10);

	if (qid == 0 || qid > emu->nq || !emu->sqs[qid].valid)
		return res(SF_CMD(NVME_SC_QID_INVALID) | NVME_SF_DNR, 0);
	return res(emu_sq_delete(emu, qid), 0);
}

static struct emu_result admin_delete_cq(struct nvmk_emu *emu, const struct nvme_sqe *sqe)
{
	uint16_t qid = NVME_CDW10_QID(sqe->cdw10);

	if (qid == 0 || qid > emu->nq || !emu->cqs[qid].valid)
		return res(SF_CMD(NVME_SC_QID_INVALID) | NVME_SF_DNR, 0);
	return res(emu_cq_delete(emu, qid), 0);
}

/* ---- log pages (Base 2.0 5.16) ---- */

static void put_u128(uint8_t out[16], uint64_t v)
{
	memset(out, 0, 16);
	memcpy(out, &v, sizeof(v));
}

/* Firmware Slot Information (Base 2.0 5.16.1.4, mandatory): slot 1 is the
 * active one and holds the revision Identify FR reports. */
#define EMU_FW_LOG_SIZE 512
static size_t fw_slot_log(uint8_t *buf)
{
	memset(buf, 0, EMU_FW_LOG_SIZE);
	buf[0] = 1; /* AFI: active slot 1 (bits 2:0), no next slot (bits 6:4) */
	pad_copy((char *)buf + 8, 8, EMU_FW_REV); /* FRS1, ASCII, space padded */
	return EMU_FW_LOG_SIZE;
}

static struct emu_result admin_get_log(struct nvmk_emu *emu, const struct nvme_sqe *sqe)
{
	uint8_t lid = NVME_LOG_CDW10_LID(sqe->cdw10);
	bool rae = sqe->cdw10 & NVME_LOG_CDW10_RAE;
	uint64_t numd =
	    ((uint64_t)NVME_LOG_CDW11_NUMDU(sqe->cdw11) << 16 | NVME_LOG_CDW10_NUMDL(sqe->cdw10)) +
	    1;
	uint64_t len = numd * 4;
	uint64_t lpo = (uint64_t)sqe->cdw13 << 32 | sqe->cdw12;
	uint8_t *buf = emu->bounce;
	size_t logsz;
	uint8_t aer_type = 0xff;

	if (NVME_LOG_CDW10_LSP(sqe->cdw10) || (sqe->cdw11 >> 16) || (lpo & 3))
		return res(INVALID_FIELD, 0);
	if (emu->max_xfer && len > emu->max_xfer)
		return res(INVALID_FIELD, 0);
	switch (lid) {
	case NVME_LOG_ERROR: {
		struct nvme_error_log *out = (struct nvme_error_log *)buf;

		/* Newest entry first. */
		logsz = sizeof(emu->errlog);
		for (unsigned i = 0; i < EMU_ERRLOG_ENTRIES; i++)
			out[i] = emu->errlog[(emu->errlog_pos + EMU_ERRLOG_ENTRIES - 1 - i) %
					     EMU_ERRLOG_ENTRIES];
		aer_type = NVME_AER_TYPE_ERROR;
		break;
	}
	case NVME_LOG_SMART: {
		struct nvme_smart_log *sl = (struct nvme_smart_log *)buf;

		/* Per controller only (LPA bit 0 clear): NSID 0 or FFFFFFFFh. */
		if (sqe->nsid != 0 && sqe->nsid != NVME_NSID_ALL)
			return res(INVALID_FIELD, 0);
		logsz = sizeof(*sl);
		memset(sl, 0, sizeof(*sl));
		sl->temperature[0] = (uint8_t)(313 & 0xff);
		sl->temperature[1] = (uint8_t)(313 >> 8);
		sl->avail_spare = 100;
		sl->spare_thresh = 10;
		/* Data units: thousands of 512-byte units, rounded up (Figure 207). */
		put_u128(sl->data_units_read, (emu->smart_read_units + 999) / 1000);
		put_u128(sl->data_units_written, (emu->smart_write_units + 999) / 1000);
		put_u128(sl->host_reads, emu->smart_read_cmds);
		put_u128(sl->host_writes, emu->smart_write_cmds);
		put_u128(sl->power_cycles, 1);
		put_u128(sl->num_err_log_entries, emu->error_count);
		aer_type = NVME_AER_TYPE_SMART;
		break;
	}
	case NVME_LOG_FW_SLOT:
		/* Not namespace specific: NSID 0 or FFFFFFFFh, as for SMART above. */
		if (sqe->nsid != 0 && sqe->nsid != NVME_NSID_ALL)
			return res(INVALID_FIELD, 0);
		logsz = fw_slot_log(buf);
		break;
	case NVME_LOG_CHANGED_NS:
		logsz = sizeof(struct nvme_changed_ns_log);
		emu_aer_changed_ns_read(emu, buf, rae);
		break;
	default:
		return res(SF_CMD(NVME_SC_INVALID_LOG_PAGE) | NVME_SF_DNR, 0);
	}
	if (lpo >= logsz)
		return res(INVALID_FIELD, 0);
	uint16_t st = emu_admin_data_to_host(emu, sqe, buf + lpo, logsz - lpo, len);
	if (!st && !rae && aer_type != 0xff)
		emu_aer_unmask(emu, aer_type);
	return res(st, 0);
}

/* ---- AER, Abort, DBBUF ---- */

static struct emu_result admin_aer(struct nvmk_emu *emu, const struct nvme_sqe *sqe)
{
	struct emu_cmd *c;

	/* Base 2.0 5.2: more than AERL + 1 outstanding -> AER Limit Exceeded. */
	if (emu->nr_aer >= emu->cfg.aerl + 1u)
		return res(SF_CMD(NVME_SC_AER_LIMIT) | NVME_SF_DNR, 0);
	c = calloc(1, sizeof(*c));
	if (!c)
		return res(SF_GEN(NVME_SC_INTERNAL), 0);
	c->state = EMU_CMD_AER;
	c->sqid = 0;
	c->cid = sqe->cid;
	c->opc = sqe->opc;
	emu_pending_add(emu, c);
	emu->nr_aer++;
	return (struct emu_result){.deferred = true};
}

static struct emu_result admin_abort(struct nvmk_emu *emu, const struct nvme_sqe *sqe)
{
	uint16_t sqid = (uint16_t)sqe->cdw10, cid = (uint16_t)(sqe->cdw10 >> 16);
	unsigned outstanding = 0;

	/* Abort executes at once, so the only Aborts outstanding are ones held by
	 * fault injection; ACL + 1 may be (Base 2.0 5.1, Abort Command Limit Exceeded). */
	for (const struct emu_cmd *c = emu->pending; c; c = c->next)
		if (c->sqid == 0 && c->opc == NVME_ADM_ABORT && c->state != EMU_CMD_AER)
			outstanding++;
	if (outstanding >= emu->cfg.acl + 1u)
		return res(SF_CMD(NVME_SC_ABORT_LIMIT) | NVME_SF_DNR, 0);
	if (emu_abort_cmd(emu, sqid, cid)) {
		nvmk_debug(emu->name, sqid, "aborted cid %u", cid);
		return res(0, 0);
	}
	return res(0, NVME_ABORT_DW0_NOT_ABORTED);
}

static struct emu_result admin_dbbuf(struct nvmk_emu *emu, const struct nvme_sqe *sqe)
{
	if (emu->cfg.no_dbbuf)
		return res(SF_GEN(NVME_SC_INVALID_OPCODE) | NVME_SF_DNR, 0);
	/* Base 2.0 5.8: both buffers are one memory page, page aligned. */
	if (!sqe->prp1 || !sqe->prp2 || !page_aligned(emu, sqe->prp1) ||
	    !page_aligned(emu, sqe->prp2))
		return res(INVALID_FIELD, 0);
	if (!emu_dma_probe(emu, sqe->prp1, emu->page_size, false) ||
	    !emu_dma_probe(emu, sqe->prp2, emu->page_size, true))
		return res(SF_GEN(NVME_SC_DATA_XFER_ERROR), 0);
	emu->dbbuf_shadow = sqe->prp1;
	emu->dbbuf_eventidx = sqe->prp2;
	/* Queues that already exist carry on from the values the controller has. */
	for (unsigned q = 1; q <= emu->nq; q++) {
		if (emu->sqs[q].valid)
			emu_dbbuf_init_slot(emu, 2u * q, emu->sqs[q].tail);
		if (emu->cqs[q].valid)
			emu_dbbuf_init_slot(emu, 2u * q + 1u, emu->cqs[q].head);
	}
	nvmk_info(emu->name, 0, "shadow doorbells at 0x%llx, EventIdx at 0x%llx",
		  (unsigned long long)sqe->prp1, (unsigned long long)sqe->prp2);
	return res(0, 0);
}

struct emu_result emu_admin_exec(struct nvmk_emu *emu, const struct nvme_sqe *sqe)
{
	/* Fused operations and SGLs are not supported: PSDT/FUSE must be 0. */
	if (NVME_SQE_FUSE(sqe->flags) || NVME_SQE_PSDT(sqe->flags) || (sqe->flags & 0x3c))
		return res(INVALID_FIELD, 0);
	switch (sqe->opc) {
	case NVME_ADM_IDENTIFY:
		return admin_identify(emu, sqe);
	case NVME_ADM_GET_FEATURES:
		return admin_get_features(emu, sqe);
	case NVME_ADM_SET_FEATURES:
		return admin_set_features(emu, sqe);
	case NVME_ADM_CREATE_CQ:
		return admin_create_cq(emu, sqe);
	case NVME_ADM_CREATE_SQ:
		return admin_create_sq(emu, sqe);
	case NVME_ADM_DELETE_SQ:
		return admin_delete_sq(emu, sqe);
	case NVME_ADM_DELETE_CQ:
		return admin_delete_cq(emu, sqe);
	case NVME_ADM_GET_LOG_PAGE:
		return admin_get_log(emu, sqe);
	case NVME_ADM_ASYNC_EVENT:
		return admin_aer(emu, sqe);
	case NVME_ADM_ABORT:
		return admin_abort(emu, sqe);
	case NVME_ADM_DBBUF_CONFIG:
		return admin_dbbuf(emu, sqe);
	case NVME_ADM_KEEP_ALIVE:
		/* Only this command restarts the timer: CTRATT.TBKAS (bit 6) is clear,
		 * so other traffic does not count (Base 2.0 3.9). */
		emu_keep_alive_restart(emu);
		return res(0, 0);
	default:
		return res(SF_GEN(NVME_SC_INVALID_OPCODE) | NVME_SF_DNR, 0);
	}
}
