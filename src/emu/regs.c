/* SPDX-License-Identifier: MIT */
/*
 * BAR0 register file and doorbells (Base 2.0, 3.1.3 "Controller Properties"
 * and 3.1.3.21/22 doorbells). Callable from any thread: values live in
 * atomics, read-modify-write sequences hold reg_lock, and anything that needs
 * the controller to act (CC, doorbells) wakes the worker.
 */
#include "emu/emu_internal.h"

void emu_regs_init(struct nvmk_emu *emu)
{
	const struct nvmk_emu_config *c = &emu->cfg;
	uint32_t dbsz = 4u << c->dstrd;
	size_t sz = NVME_REG_DBS + (size_t)(emu->nq + 1u) * 2u * dbsz;

	/* CAP, Base 2.0 3.1.3.1: CQR=1 (queues must be physically contiguous),
	 * AMS = round robin only, CSS = NVM command set, no NSSR, no BPS, no CMB. */
	emu->cap = NVME_CAP_SET_MQES(c->mqes) | NVME_CAP_SET_CQR(1) | NVME_CAP_SET_TO(c->cap_to) |
		   NVME_CAP_SET_DSTRD(c->dstrd) | NVME_CAP_SET_CSS(NVME_CAP_CSS_NVM) |
		   NVME_CAP_SET_MPSMIN(c->mpsmin) | NVME_CAP_SET_MPSMAX(c->mpsmax);
	emu->bar_size = (sz + 4095) & ~(size_t)4095;
	emu->db_shift = 2u + c->dstrd; /* stride 4 << CAP.DSTRD (Base 2.0 3.1.4.21) */
	emu->db_span = (uint32_t)(emu->nq + 1u) * 2u << emu->db_shift;
}

size_t nvmk_emu_bar_size(const struct nvmk_emu *emu)
{
	return emu->bar_size;
}

static void emu_bad_access(struct nvmk_emu *emu, uint32_t off, unsigned width, bool write)
{
	if (!atomic_exchange(&emu->bad_access_logged, true))
		nvmk_warn(
		    emu->name, NVMK_LOG_NOQ,
		    "ignored %s%u at BAR0 offset 0x%x (misaligned or out of range; logged once)",
		    write ? "write" : "read", width, off);
}

/* Doorbell index: even = SQ tail of qid idx/2, odd = CQ head. -1 if not a doorbell. */
static int emu_db_index(struct nvmk_emu *emu, uint32_t off)
{
	/* one compare for "at or above the first doorbell and below the last
	 * one's end" (below NVME_REG_DBS wraps to a huge value) */
	uint32_t rel = off - NVME_REG_DBS;

	if (rel >= emu->db_span)
		return -1;
	if (rel & ((1u << emu->db_shift) - 1))
		return -1; /* padding between strided doorbells, or misaligned */
	return (int)(rel >> emu->db_shift);
}

static uint32_t emu_reg_read(struct nvmk_emu *emu, uint32_t off)
{
	switch (off) {
	case NVME_REG_CAP:
		return (uint32_t)emu->cap;
	case NVME_REG_CAP + 4:
		return (uint32_t)(emu->cap >> 32);
	case NVME_REG_VS:
		return NVME_VS(2, 0, 0);
	case NVME_REG_INTMS:
	case NVME_REG_INTMC:
		return atomic_load(&emu->intm);
	case NVME_REG_CC:
		return atomic_load(&emu->cc);
	case NVME_REG_CSTS:
		/* Acquire: pairs with the worker's release when it publishes CFS/RDY. */
		return atomic_load_explicit(&emu->csts, memory_order_acquire);
	case NVME_REG_AQA:
		return atomic_load(&emu->aqa);
	case NVME_REG_ASQ:
		return (uint32_t)atomic_load(&emu->asq);
	case NVME_REG_ASQ + 4:
		return (uint32_t)(atomic_load(&emu->asq) >> 32);
	case NVME_REG_ACQ:
		return (uint32_t)atomic_load(&emu->acq);
	case NVME_REG_ACQ + 4:
		return (uint32_t)(atomic_load(&emu->acq) >> 32);
	default:
		/* NSSR, CMB, BP, PMR, CRTO... not implemented: read as 0. Doorbells are
		 * write-only and read 0 too (Base 2.0 3.1.3.21). */
		return 0;
	}
}

uint32_t nvmk_emu_reg_read32(struct nvmk_emu *emu, uint32_t off)
{
	if (atomic_load(&emu->removed))
		return 0xffffffffu;
	if ((off & 3) || off > emu->bar_size - 4) {
		emu_bad_access(emu, off, 32, false);
		return 0;
	}
	return emu_reg_read(emu, off);
}

uint64_t nvmk_emu_reg_read64(struct nvmk_emu *emu, uint32_t off)
{
	if (atomic_load(&emu->removed))
		return ~0ull;
	if ((off & 7) || off > emu->bar_size - 8) {
		emu_bad_access(emu, off, 64, false);
		return 0;
	}
	switch (off) {
	case NVME_REG_CAP:
		return emu->cap;
	case NVME_REG_ASQ:
		return atomic_load(&emu->asq);
	case NVME_REG_ACQ:
		return atomic_load(&emu->acq);
	default:
		return emu_reg_read(emu, off) | (uint64_t)emu_reg_read(emu, off + 4) << 32;
	}
}

/* CC bits the host may write (Base 2.0 Figure 41); the rest are reserved. */
#define EMU_CC_WRITABLE                                                                            \
	(NVME_CC_EN | NVME_CC_SET_CSS(7) | NVME_CC_SET_MPS(0xf) | NVME_CC_SET_AMS(7) |             \
	 NVME_CC_SHN_MASK | NVME_CC_SET_IOSQES(0xf) | NVME_CC_SET_IOCQES(0xf))

static void emu_cc_write(struct nvmk_emu *emu, uint32_t val)
{
	uint32_t old;

	pthread_mutex_lock(&emu->reg_lock);
	old = atomic_load(&emu->cc);
	val &= EMU_CC_WRITABLE;
	if (old & NVME_CC_EN) {
		/* CSS, MPS and AMS may only change while EN = 0 (Base 2.0 3.1.3.5). */
		uint32_t fixed = NVME_CC_SET_CSS(7) | NVME_CC_SET_MPS(0xf) | NVME_CC_SET_AMS(7);

		if (val & NVME_CC_EN)
			val = (val & ~fixed) | (old & fixed);
	}
	atomic_store(&emu->cc, val);
	if ((old & NVME_CC_EN) && !(val & NVME_CC_EN)) {
		/* Controller reset (Base 2.0 3.7.2). CFS clears now, not when the worker
		 * gets to it: with RDY already 0 the host may re-enable at once and must
		 * not see the fatal status of the previous enable. */
		atomic_store(&emu->reset_req, true);
		atomic_fetch_and(&emu->csts, ~NVME_CSTS_CFS);
	}
	if ((val & NVME_CC_EN) && NVME_CC_SHN(val) != NVME_CC_SHN_NONE &&
	    NVME_CC_SHN(old) == NVME_CC_SHN_NONE)
		atomic_store(&emu->shn_req, true);
	pthread_mutex_unlock(&emu->reg_lock);
	emu_kick(emu);
}

/*
 * Write to the doorbell of a queue that was never created (or was deleted):
 * ignored, and reported as an Error event with info 00h, Write to Invalid
 * Doorbell Register (Base 2.0 5.2, Figure 147). Logged once per reset.
 */
void emu_db_stray(struct nvmk_emu *emu, int idx)
{
	unsigned qid = (unsigned)idx / 2;

	if (!atomic_exchange(&emu->stray_db_logged, true))
		nvmk_warn(emu->name, (int)qid,
			  "write to the %s doorbell of a queue that does not exist ignored",
			  (idx & 1) ? "CQ head" : "SQ tail");
	/* A controller that is not ready has no admin queue to report on. */
	if (atomic_load(&emu->csts) & NVME_CSTS_RDY)
		emu_aer_event(emu, NVME_AER_TYPE_ERROR, 0x00, NVME_LOG_ERROR);
}

static void emu_db_write(struct nvmk_emu *emu, int idx, uint32_t val)
{
	_Atomic uint32_t *db = &emu->db[idx];
	uint32_t old = atomic_load_explicit(db, memory_order_relaxed);

	/* Only bits 15:0 are defined; the worker validates against the queue size.
	 * A compare-exchange, so a queue deletion (EMU_DB_NOQ stored by the worker)
	 * is never overwritten by a racing write. Release on success: orders the
	 * host's queue-memory writes before the doorbell the worker acquires;
	 * relaxed on failure: nothing is published then. */
	do {
		if (old & EMU_DB_NOQ) {
			emu_db_stray(emu, idx);
			return;
		}
	} while (!atomic_compare_exchange_weak_explicit(
	    db, &old, val & 0xffff, memory_order_release, memory_order_relaxed));
	/* inline_io: run the queue's commands here when nothing stands in the way */
	if (emu->cfg.inline_io && emu_inline_doorbell(emu, idx))
		return;
	emu_kick(emu);
}

static void emu_reg_write(struct nvmk_emu *emu, uint32_t off, uint32_t val)
{
	int idx;

	switch (off) {
	case NVME_REG_INTMS:
		/* Pin-based/MSI mask bits (Base 2.0 3.1.3.3/4): recorded only; with MSI-X
		 * the per-vector mask (nvmk_emu_irq_mask) applies. */
		atomic_fetch_or(&emu->intm, val);
		return;
	case NVME_REG_INTMC:
		atomic_fetch_and(&emu->intm, ~val);
		return;
	case NVME_REG_CC:
		emu_cc_write(emu, val);
		return;
	case NVME_REG_AQA:
		/* ASQS 11:0 and ACQS 27:16; other bits reserved. */
		atomic_store(&emu->aqa, val & 0x0fff0fffu);
		return;
	case NVME_REG_ASQ:
	case NVME_REG_ASQ + 4:
	case NVME_REG_ACQ:
	case NVME_REG_ACQ + 4: {
		_Atomic uint64_t *r = off < NVME_REG_ACQ ? &emu->asq : &emu->acq;
		bool hi = off & 4;

		pthread_mutex_lock(&emu->reg_lock);
		uint64_t v = atomic_load(r);
		v = hi ? ((v & 0xffffffffull) | (uint64_t)val << 32) : ((v & ~0xffffffffull) | val);
		atomic_store(r, v);
		pthread_mutex_unlock(&emu->reg_lock);
		return;
	}
	default:
		break;
	}
	idx = emu_db_index(emu, off);
	if (idx >= 0)
		emu_db_write(emu, idx, val);
	/* CAP, VS, CSTS and everything unimplemented are read-only: ignored. */
}

void nvmk_emu_reg_write32(struct nvmk_emu *emu, uint32_t off, uint32_t val)
{
	int idx;

	if (atomic_load(&emu->removed))
		return;
	/* The doorbells, the common case, first: an index found implies an
	 * aligned offset inside BAR0 (the doorbells end before bar_size). */
	idx = emu_db_index(emu, off);
	if (idx >= 0) {
		emu_db_write(emu, idx, val);
		return;
	}
	if ((off & 3) || off > emu->bar_size - 4) {
		emu_bad_access(emu, off, 32, true);
		return;
	}
	emu_reg_write(emu, off, val);
}

void nvmk_emu_reg_write64(struct nvmk_emu *emu, uint32_t off, uint64_t val)
{
	if (atomic_load(&emu->removed))
		return;
	if ((off & 7) || off > emu->bar_size - 8) {
		emu_bad_access(emu, off, 64, true);
		return;
	}
	if (off == NVME_REG_ASQ || off == NVME_REG_ACQ) {
		pthread_mutex_lock(&emu->reg_lock);
		atomic_store(off == NVME_REG_ASQ ? &emu->asq : &emu->acq, val);
		pthread_mutex_unlock(&emu->reg_lock);
		return;
	}
	/* Other 64-bit writes act as two 32-bit writes, low dword first. */
	emu_reg_write(emu, off, (uint32_t)val);
	emu_reg_write(emu, off + 4, (uint32_t)(val >> 32));
}
