// SPDX-License-Identifier: MIT
/*
 * Saved-state generations: only the latest saved state of a device
 * restores, and only once.
 *
 * Why: a keep-alive restore trusts the saved CQ head and phase. The entries
 * a first restore consumed stay in the ring with a valid phase, so a second
 * restore of the same state, or of an older one, would complete finished
 * requests again (and then fail the controller on a CID that is no longer
 * outstanding). A successor that restores, dies and is re-run with the same
 * state, or an operator who retries, does exactly that.
 *
 * How: the generation record of the device in the DMA pool's slot table
 * (nvmk_dma_pool_gen_get/_set), which survives exec with the queues. Every
 * save records a new generation and writes it into the state; a restore
 * accepts a state only if its generation is the recorded one and the record
 * does not say "restored", and sets "restored" at its point of no return.
 * A fresh bring-up (nvmk_ctrl_open) marks the record restored too: the
 * queues of every earlier state are gone with its reset.
 *
 * A state without a generation (format 1, written before records existed)
 * restores only while the pool has no record of the device (the first
 * restore after an upgrade), which then creates one marked restored. A
 * backing without a pool keeps no record (keep-alive off on ephemeral
 * memory): its states replay nothing and restore as a bring-up, which the
 * owner check keeps from resetting a device in use.
 */
#include <errno.h>

#include "driver/servicing.h"

uint64_t drv_gen_next(struct nvmk_backing *b)
{
	uint64_t gen = 0;
	bool restored;

	if (!b->pool)
		return 0;
	if (nvmk_dma_pool_gen_get(b->pool, b->name, &gen, &restored) != 0)
		gen = 0;
	return gen + 1;
}

int drv_gen_record(struct nvmk_backing *b, uint64_t gen)
{
	int rc;

	if (!b->pool || !gen)
		return 0;
	rc = nvmk_dma_pool_gen_set(b->pool, b->name, gen, false);
	if (rc)
		nvmk_err(b->name, NVMK_LOG_NOQ,
			 "save: cannot record generation %llu in the DMA pool: %d",
			 (unsigned long long)gen, rc);
	return rc;
}

int drv_gen_check(struct nvmk_backing *b, bool has_gen, uint64_t gen, bool keep_alive)
{
	uint64_t rec = 0;
	bool restored = false;
	int rc;

	if (!b->pool) {
		/* keep-alive refuses a missing pool on its own, with its reason */
		if (has_gen && !keep_alive)
			nvmk_info(b->name, NVMK_LOG_NOQ,
				  "restore: no DMA pool, generation %llu of the state not checked "
				  "(keep-alive off: a bring-up)",
				  (unsigned long long)gen);
		return 0;
	}
	rc = nvmk_dma_pool_gen_get(b->pool, b->name, &rec, &restored);
	if (rc == -ENOENT) {
		if (!has_gen)
			return 0; /* the first restore after an upgrade */
		if (!keep_alive) {
			nvmk_info(b->name, NVMK_LOG_NOQ,
				  "restore: the DMA pool has no record of generation %llu (another "
				  "pool); keep-alive off needs none",
				  (unsigned long long)gen);
			return 0;
		}
		nvmk_err(b->name, NVMK_LOG_NOQ,
			 "restore refused: the DMA pool has no generation record of this device, "
			 "the state is generation %llu: not the pool it was saved with",
			 (unsigned long long)gen);
		return -ESTALE;
	}
	if (rc)
		return rc;
	if (!has_gen) {
		nvmk_err(
		    b->name, NVMK_LOG_NOQ,
		    "restore refused: the state has no generation (format 1) and is older than "
		    "the latest save (generation %llu)",
		    (unsigned long long)rec);
		return -ESTALE;
	}
	if (gen < rec) {
		nvmk_err(
		    b->name, NVMK_LOG_NOQ,
		    "restore refused: the state is generation %llu, older than the latest save "
		    "(generation %llu); only the latest saved state restores",
		    (unsigned long long)gen, (unsigned long long)rec);
		return -ESTALE;
	}
	if (gen > rec) {
		nvmk_err(b->name, NVMK_LOG_NOQ,
			 "restore refused: the state is generation %llu, the DMA pool records "
			 "%llu: not the pool it was saved with",
			 (unsigned long long)gen, (unsigned long long)rec);
		return -ESTALE;
	}
	if (restored) {
		nvmk_err(b->name, NVMK_LOG_NOQ,
			 "restore refused: the state (generation %llu) was already restored, or "
			 "the device was brought up afresh since; its completions were consumed. "
			 "A state restores once: save again, or open the device (a reset)",
			 (unsigned long long)gen);
		return -ESTALE;
	}
	return 0;
}

int drv_gen_consume(struct nvmk_backing *b, bool has_gen, uint64_t gen)
{
	int rc;

	if (!b->pool)
		return 0;
	rc = nvmk_dma_pool_gen_set(b->pool, b->name, has_gen ? gen : 1, true);
	if (rc)
		nvmk_err(b->name, NVMK_LOG_NOQ,
			 "restore: cannot mark generation %llu restored in the DMA pool: %d",
			 (unsigned long long)gen, rc);
	return rc;
}

void drv_gen_invalidate(struct nvmk_backing *b)
{
	uint64_t gen = 0;
	bool restored = false;

	if (!b->pool)
		return;
	if (nvmk_dma_pool_gen_get(b->pool, b->name, &gen, &restored) == 0 && restored)
		return;
	if (nvmk_dma_pool_gen_set(b->pool, b->name, gen ? gen : 1, true) != 0)
		nvmk_warn(b->name, NVMK_LOG_NOQ,
			  "bring-up: cannot mark earlier saved states stale in the DMA pool");
}
