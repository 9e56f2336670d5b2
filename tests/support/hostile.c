// SPDX-License-Identifier: MIT
/* A hostile device for tests and fuzzing: see hostile.h. */
#include "hostile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmekeep/spec.h"

static struct hostile *to_h(struct nvmk_backing *b)
{
	return (struct hostile *)b;
}

/* An access of @w bytes at @off must lie inside the declared BAR0. */
static bool in_bar(struct hostile *h, uint32_t off, unsigned w)
{
	/* relaxed: statistics */
	atomic_fetch_add_explicit(&h->reg_accesses, 1, memory_order_relaxed);
	if ((uint64_t)off + w <= h->b.bar0_size && (uint64_t)off + w <= h->emu_bar0_size)
		return true;
	atomic_fetch_add_explicit(&h->oob_accesses, 1, memory_order_relaxed);
	atomic_store_explicit(&h->oob_last_off, off, memory_order_relaxed);
	fprintf(stderr, "hostile: register access at 0x%x (%u bytes) outside BAR0 (%zu bytes)\n",
		off, w, h->b.bar0_size);
	return false;
}

static uint32_t tamper_csts(struct hostile *h, uint32_t off, uint32_t v)
{
	/* relaxed: tests change the overrides while the driver runs */
	if (off == NVME_REG_CSTS && v != 0xffffffffu)
		v = (v | __atomic_load_n(&h->cfg.csts_set, __ATOMIC_RELAXED)) &
		    ~__atomic_load_n(&h->cfg.csts_clear, __ATOMIC_RELAXED);
	return v;
}

static uint64_t tamper_cap(struct hostile *h, uint64_t v)
{
	return (v & ~h->cfg.cap_mask) | (h->cfg.cap_val & h->cfg.cap_mask);
}

static uint32_t h_read32(struct nvmk_backing *b, uint32_t off)
{
	struct hostile *h = to_h(b);
	uint32_t v;

	if (!in_bar(h, off, 4))
		return 0;
	v = h->inner->ops->read32(h->inner, off);
	if (off == NVME_REG_CAP || off == NVME_REG_CAP + 4) {
		uint64_t cap = tamper_cap(h, h->inner->ops->read64(h->inner, NVME_REG_CAP));

		return off == NVME_REG_CAP ? (uint32_t)cap : (uint32_t)(cap >> 32);
	}
	return tamper_csts(h, off, v);
}

static uint64_t h_read64(struct nvmk_backing *b, uint32_t off)
{
	struct hostile *h = to_h(b);
	uint64_t v;

	if (!in_bar(h, off, 8))
		return 0;
	v = h->inner->ops->read64(h->inner, off);
	if (off == NVME_REG_CAP)
		v = tamper_cap(h, v);
	return v;
}

static void h_write32(struct nvmk_backing *b, uint32_t off, uint32_t val)
{
	struct hostile *h = to_h(b);

	if (in_bar(h, off, 4))
		h->inner->ops->write32(h->inner, off, val);
}

static void h_write64(struct nvmk_backing *b, uint32_t off, uint64_t val)
{
	struct hostile *h = to_h(b);

	if (in_bar(h, off, 8))
		h->inner->ops->write64(h->inner, off, val);
}

static int h_dma_map(struct nvmk_backing *b, struct nvmk_dma_buf *buf)
{
	struct hostile *h = to_h(b);

	return h->inner->ops->dma_map(h->inner, buf);
}

static void h_dma_unmap(struct nvmk_backing *b, struct nvmk_dma_buf *buf)
{
	struct hostile *h = to_h(b);

	h->inner->ops->dma_unmap(h->inner, buf);
}

static unsigned h_irq_count(struct nvmk_backing *b)
{
	struct hostile *h = to_h(b);

	return h->inner->ops->irq_count(h->inner);
}

static int h_irq_enable(struct nvmk_backing *b, unsigned nvec)
{
	struct hostile *h = to_h(b);

	return h->inner->ops->irq_enable(h->inner, nvec);
}

static void h_irq_disable(struct nvmk_backing *b)
{
	struct hostile *h = to_h(b);

	h->inner->ops->irq_disable(h->inner);
}

static int h_irq_fd(struct nvmk_backing *b, unsigned vector)
{
	struct hostile *h = to_h(b);

	return h->inner->ops->irq_fd(h->inner, vector);
}

static int h_reset(struct nvmk_backing *b)
{
	struct hostile *h = to_h(b);

	return h->inner->ops->reset(h->inner);
}

static void h_destroy(struct nvmk_backing *b)
{
	struct hostile *h = to_h(b);

	nvmk_emu_set_tamper(h->emu, NULL);
	nvmk_backing_destroy(h->inner);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static const struct nvmk_backing_ops hostile_ops = {
    .kind = "hostile",
    .read32 = h_read32,
    .read64 = h_read64,
    .write32 = h_write32,
    .write64 = h_write64,
    .dma_map = h_dma_map,
    .dma_unmap = h_dma_unmap,
    .irq_count = h_irq_count,
    .irq_enable = h_irq_enable,
    .irq_disable = h_irq_disable,
    .irq_fd = h_irq_fd,
    .reset = h_reset,
    .destroy = h_destroy,
};

/* ---- the script (lock held) ---- */

static bool script_byte(struct hostile *h, uint8_t *out)
{
	if (!h->cfg.script || h->pos >= h->cfg.script_len)
		return false;
	*out = h->cfg.script[h->pos++];
	return true;
}

static bool data_byte(struct hostile *h, uint8_t *out)
{
	if (!h->cfg.data_script || h->data_pos >= h->cfg.data_script_len)
		return false;
	*out = h->cfg.data_script[h->data_pos++];
	return true;
}

/* ---- tampering hooks (emulator worker thread) ---- */

static void t_fetched(void *ctx, uint16_t sqid, const struct nvme_sqe *sqe)
{
	struct hostile *h = ctx;

	if (sqid != 0)
		return;
	pthread_mutex_lock(&h->lock);
	h->admin_opc[sqe->cid] = sqe->opc;
	h->admin_prp1[sqe->opc] = sqe->prp1;
	h->admin_resets[sqe->opc] = nvmk_emu_reset_count(h->emu);
	pthread_mutex_unlock(&h->lock);
}

/* Forge @e by script byte @op; returns the number of copies to write. */
static unsigned forge(struct hostile *h, struct nvme_cqe *e, uint8_t op, bool *flip)
{
	uint8_t arg = 0;

	script_byte(h, &arg);
	switch (op % 12) {
	case 0: /* a random CID */
		e->cid = (uint16_t)(arg * 257u + 1u);
		break;
	case 1: /* the same index, another generation (upper bits flipped) */
		e->cid ^= (uint16_t)(0x8000u >> (arg % 8));
		break;
	case 2: /* another command's CID (a neighbour index) */
		e->cid = (uint16_t)(e->cid + 1u + arg % 4);
		break;
	case 3: /* wrong SQID */
		e->sqid = (uint16_t)(e->sqid + 1u + arg);
		break;
	case 4: /* SQ head out of range */
		e->sqhd = (uint16_t)(0xffffu - arg);
		break;
	case 5: /* a random status */
		e->status = (uint16_t)((arg << 7) ^ (arg * 37u));
		break;
	case 6: /* wrong phase tag */
		*flip = true;
		break;
	case 7: /* an extra (duplicate) entry */
		return 2u + arg % 2;
	case 8: /* dropped: the command never completes */
		return 0;
	case 9: /* a random dw0 */
		e->dw0 = (uint32_t)arg * 0x01010101u;
		break;
	case 10: /* success status on what may have failed, and a random dw0 */
		e->status = 0;
		e->dw0 ^= arg;
		break;
	default: /* left alone */
		atomic_fetch_sub_explicit(&h->forged, 1, memory_order_relaxed);
		break;
	}
	return 1;
}

static unsigned t_cqe(void *ctx, uint16_t sqid, struct nvme_cqe *e, bool *flip)
{
	struct hostile *h = ctx;
	unsigned copies = 1;
	uint8_t op;

	pthread_mutex_lock(&h->lock);
	if (sqid == 0) {
		uint8_t opc = h->admin_opc[e->cid];

		if (opc == NVME_ADM_SET_FEATURES && h->cfg.set_numq && e->status == 0)
			e->dw0 = h->cfg.numq_dw0;
		if (opc == NVME_ADM_ABORT && h->cfg.set_abort)
			e->dw0 = h->cfg.abort_dw0;
	}
	h->ncqe++;
	if (h->ncqe > h->cfg.forge_after &&
	    (h->ncqe - h->cfg.forge_after) % (h->cfg.forge_every ? h->cfg.forge_every : 1) == 0 &&
	    script_byte(h, &op)) {
		/* relaxed: statistics */
		atomic_fetch_add_explicit(&h->forged, 1, memory_order_relaxed);
		copies = forge(h, e, op, flip);
	}
	pthread_mutex_unlock(&h->lock);
	return copies;
}

static void t_admin_data(void *ctx, const struct nvme_sqe *sqe, void *buf, size_t len)
{
	struct hostile *h = ctx;
	uint8_t n = 0, b = 0;

	if (sqe->opc == NVME_ADM_IDENTIFY && (sqe->cdw10 & 0xff) == NVME_ID_CNS_CTRL &&
	    len >= sizeof(struct nvme_id_ctrl)) {
		struct nvme_id_ctrl *id = buf;

		if (h->cfg.set_rtd3e)
			id->rtd3e = h->cfg.rtd3e;
		if (h->cfg.set_aerl)
			id->aerl = h->cfg.aerl;
	}
	pthread_mutex_lock(&h->lock);
	/* script: a count, then (offset byte pairs, value) flips */
	if (data_byte(h, &n)) {
		n %= 8;
		for (uint8_t i = 0; i < n; i++) {
			uint8_t lo = 0, hi = 0;

			if (!data_byte(h, &lo) || !data_byte(h, &hi) || !data_byte(h, &b))
				break;
			size_t off = ((size_t)hi << 8 | lo) % len;

			((uint8_t *)buf)[off] ^= b ? b : 0xff;
		}
		if (n)
			atomic_fetch_add_explicit(&h->mutated, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&h->lock);
}

int hostile_create(const struct nvmk_emu_config *ecfg, const struct hostile_cfg *hc,
		   struct hostile **out)
{
	struct hostile *h = calloc(1, sizeof(*h));
	struct nvmk_emu_tamper t;
	int rc;

	if (!h)
		return -ENOMEM;
	rc = nvmk_backing_local_create(ecfg, &h->inner, &h->emu);
	if (rc) {
		free(h);
		return rc;
	}
	if (hc)
		h->cfg = *hc;
	pthread_mutex_init(&h->lock, NULL);
	h->emu_bar0_size = h->inner->bar0_size;
	h->b.ops = &hostile_ops;
	/* the same name: DMA pool blocks are owned by name */
	memcpy(h->b.name, h->inner->name, sizeof(h->b.name));
	h->b.bar0 = NULL; /* every access through the ops, where it is checked */
	h->b.bar0_size = h->cfg.bar0_size ? h->cfg.bar0_size : h->emu_bar0_size;
	h->b.pool = h->inner->pool;
	t = (struct nvmk_emu_tamper){
	    .ctx = h, .fetched = t_fetched, .cqe = t_cqe, .admin_data = t_admin_data};
	nvmk_emu_set_tamper(h->emu, &t);
	*out = h;
	return 0;
}

void hostile_destroy(struct hostile *h)
{
	if (h)
		nvmk_backing_destroy(&h->b);
}
