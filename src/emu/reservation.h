/* SPDX-License-Identifier: MIT */
/*
 * Emulator reservations (internal): the reservation state of one namespace,
 * shared by every controller of the NVM subsystem, with the semantics of
 * Base 2.0 8.19 and NVM-CS 1.0 3.2.4 - 3.2.7.
 *
 * A host is identified by its Host Identifier (Set Features 81h); controllers
 * with the same host identifier are the same host (they share a registration).
 * Each call returns an NVMe status field (NVME_SF(sct, sc), 0 = success).
 * Thread safe: every call takes the state's own lock.
 */
#ifndef NVMK_EMU_RESERVATION_H
#define NVMK_EMU_RESERVATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvmekeep/spec.h"

struct emu_resv;

/* Who is asking. What a controller whose host identifier was never set (all
 * zeroes) may do is decided in reservation.c, citing the spec section. */
struct emu_resv_host {
	uint16_t cntlid;
	uint8_t hostid[16]; /* 64-bit identifiers use the first 8 bytes, rest 0 */
	bool hostid_ext;    /* 128-bit form in use */
};

int emu_resv_create(struct emu_resv **out);
void emu_resv_destroy(struct emu_resv *r);

/* Reservation Register (NVM-CS 1.0 3.2.5); @d is the 16-byte data structure. */
uint16_t emu_resv_register(struct emu_resv *r, const struct emu_resv_host *h, uint32_t cdw10,
			   const struct nvme_resv_register_data *d);
/* Reservation Acquire (3.2.4). @aborted is set when a Preempt and Abort
 * requires the caller to abort the preempted hosts' commands (the emulator
 * may complete them with Command Aborted due to Preempt and Abort). */
uint16_t emu_resv_acquire(struct emu_resv *r, const struct emu_resv_host *h, uint32_t cdw10,
			  const struct nvme_resv_acquire_data *d, bool *aborted);
/* Reservation Release (3.2.7); @crkey is the 8-byte data structure. */
uint16_t emu_resv_release(struct emu_resv *r, const struct emu_resv_host *h, uint32_t cdw10,
			  uint64_t crkey);
/* Reservation Report (3.2.6): fill @buf (@len bytes, zero padded) with the
 * status structure, standard (24-byte entries, 64-bit host ids) or extended
 * (@eds: 64-byte entries, 128-bit host ids). With eds = 0 and a host using a
 * 128-bit identifier the command fails with Host Identifier Inconsistent Format. */
uint16_t emu_resv_report(struct emu_resv *r, const struct emu_resv_host *h, bool eds, void *buf,
			 size_t len);
/* May host @h execute NVM command @opcode on this namespace now?
 * Return 0 or NVME_SF(NVME_SCT_GENERIC, NVME_SC_RESERVATION_CONFLICT), per
 * NVM-CS 1.0 Figure 6 / Base 2.0 Figure 434 (command behaviour by type). */
uint16_t emu_resv_check(struct emu_resv *r, const struct emu_resv_host *h, uint8_t opcode);
/* Reservation Acquire that also reports whom a preempt took registrations or
 * the reservation from, so the caller can abort their commands on a Preempt
 * and Abort: up to @max hosts are written to @preempted (cntlid FFFFh means
 * every controller of that host identifier), *@nr gets the full count. */
uint16_t emu_resv_acquire_ex(struct emu_resv *r, const struct emu_resv_host *h, uint32_t cdw10,
			     const struct nvme_resv_acquire_data *d, bool *aborted,
			     struct emu_resv_host *preempted, unsigned max, unsigned *nr);
/* Does command-issuing host @h belong to preempted host @p (from acquire_ex)? */
bool emu_resv_host_matches(const struct emu_resv_host *p, const struct emu_resv_host *h);
/* The controller went away (not a host identifier change): registrations
 * belong to the host and stay, except those of a host without an identifier
 * (all zeroes), which only this controller could use and which are dropped. */
void emu_resv_ctrl_gone(struct emu_resv *r, uint16_t cntlid);
uint32_t emu_resv_generation(struct emu_resv *r);

#endif /* NVMK_EMU_RESERVATION_H */
