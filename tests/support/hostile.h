/* SPDX-License-Identifier: MIT */
/*
 * A hostile device for tests and fuzzing: a backing over the local
 * (emulator) backing that lies. It wraps the local backing's ops, so every
 * register access of the driver goes through it (BAR0 is never handed out
 * as a mapping) and is checked against the BAR0 size it declares, and it
 * installs the emulator's tampering hooks (nvmk_emu_set_tamper) to forge
 * completion entries and mutate the data of admin commands.
 *
 * What it can do:
 *  - CAP: override any bits (MQES, DSTRD, TO, CSS, MPSMIN, ...);
 *  - CSTS: force bits on or off;
 *  - declare a BAR0 size other than the emulator's;
 *  - Identify Controller: RTD3E, AERL; Set Features Number of Queues dw0;
 *    Abort dw0;
 *  - a script (bytes, e.g. a fuzzer's input) deciding, completion by
 *    completion, whether to forge it (random CID, another command's CID,
 *    flipped generation bits, bad SQID / SQHD / status, wrong phase tag,
 *    extra entries, dropped) and, admin data by admin data, which bytes of
 *    Identify Controller / Namespace / Active NS list and log pages to
 *    flip.
 * Counters say what was done and whether an access left BAR0.
 */
#ifndef NVMK_TEST_HOSTILE_H
#define NVMK_TEST_HOSTILE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/emu.h"

struct hostile_cfg {
	uint64_t cap_mask; /* CAP bits replaced by cap_val (0: CAP unchanged) */
	uint64_t cap_val;
	/* CSTS bits forced to 1 / to 0; may be changed while the driver runs
	 * (with __atomic_store_n) */
	uint32_t csts_set;
	uint32_t csts_clear;
	size_t bar0_size; /* declared BAR0 size, 0 = the emulator's */
	bool set_rtd3e;
	uint32_t rtd3e; /* Identify Controller RTD3E (microseconds) */
	bool set_aerl;
	uint8_t aerl; /* Identify Controller AERL (0's based) */
	bool set_numq;
	uint32_t numq_dw0; /* Set Features Number of Queues: completion dw0 */
	bool set_abort;
	uint32_t abort_dw0; /* Abort: completion dw0 (bit 0 = not aborted) */
	/* Script: for a completion to forge, a byte choosing the forgery and
	 * a byte of argument; an exhausted script forges nothing more. */
	const uint8_t *script;
	size_t script_len;
	unsigned forge_every; /* forge at most one completion in this many (0 = 1) */
	unsigned forge_after; /* let this many completions pass first (bring-up) */
	/* Data script: per admin data transfer a count, then (offset low,
	 * offset high, xor value) triples flipping bytes. */
	const uint8_t *data_script;
	size_t data_script_len;
};

struct hostile {
	struct nvmk_backing b; /* first: what the driver is given */
	struct nvmk_backing *inner;
	struct nvmk_emu *emu;
	struct hostile_cfg cfg;
	size_t emu_bar0_size;
	pthread_mutex_t lock; /* script position, opcode table */
	size_t pos, data_pos;
	uint64_t ncqe;
	uint8_t admin_opc[65536];   /* admin CID -> opcode of the last fetch */
	uint64_t admin_prp1[256];   /* opcode -> PRP1 of its last admin fetch */
	uint64_t admin_resets[256]; /* opcode -> controller resets before that fetch */
	/* counters */
	_Atomic uint64_t oob_accesses; /* register accesses outside the declared BAR0 */
	_Atomic uint32_t oob_last_off;
	_Atomic uint64_t reg_accesses;
	_Atomic uint64_t forged;  /* completions changed, dropped or repeated */
	_Atomic uint64_t mutated; /* admin transfers changed */
};

/** hostile_create - an emulator from @ecfg behind a lying backing @hc (copied;
 *  the script is referenced, not copied). Return 0 or negative errno. */
int hostile_create(const struct nvmk_emu_config *ecfg, const struct hostile_cfg *hc,
		   struct hostile **out);
/** hostile_destroy - the backing, the emulator and the wrapper. NULL: no-op. */
void hostile_destroy(struct hostile *h);

#endif
