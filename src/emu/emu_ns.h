/* SPDX-License-Identifier: MIT */
/*
 * Emulator namespace storage (internal): the blocks of one namespace, backed
 * by sparse RAM, a regular file, or nothing (null). Pure storage: it knows
 * nothing of queues, PRPs or reservations.
 *
 * Thread safety: data calls may run concurrently with each other on
 * different or overlapping ranges (the result of overlapping concurrent
 * writes is one of the writes per block, as on a real device); resize is
 * serialised against them by the caller (the controller's ns lock).
 */
#ifndef NVMK_EMU_NS_H
#define NVMK_EMU_NS_H

#include <stdbool.h>
#include <stdint.h>

#include "nvmekeep/emu.h"

struct emu_ns;

/** Create storage for @cfg (validated: lba_shift 9 or 12, nblocks >= 1,
 *  path given for FILE). @dev names the controller in log lines.
 *  Return 0 or -EINVAL / -errno from opening the file. */
int emu_ns_create(const struct nvmk_emu_ns_config *cfg, const char *dev, struct emu_ns **out);
void emu_ns_destroy(struct emu_ns *ns);

uint32_t emu_ns_nsid(const struct emu_ns *ns);
uint64_t emu_ns_nblocks(const struct emu_ns *ns);
uint8_t emu_ns_lba_shift(const struct emu_ns *ns);
/** Blocks that currently hold data (NUSE): written and not deallocated. */
uint64_t emu_ns_nuse(const struct emu_ns *ns);

/* Data access in bytes relative to the namespace start. Ranges are checked by
 * the caller against nblocks; these return -EIO only on backing failure
 * (file I/O error, out of memory for RAM pages). */
int emu_ns_read(struct emu_ns *ns, uint64_t off, void *buf, uint64_t len);
int emu_ns_write(struct emu_ns *ns, uint64_t off, const void *buf, uint64_t len);
/* Zero a range; @deallocate also releases storage (deallocated blocks read
 * as zeroes: DLFEAT = 001b, NVM-CS 1.0 3.2.3.2.1). */
int emu_ns_zero(struct emu_ns *ns, uint64_t off, uint64_t len, bool deallocate);
/* Make written data durable (fsync for FILE; no-op otherwise). */
int emu_ns_flush(struct emu_ns *ns);
/* Change the size; blocks beyond a shrink are discarded, a grow reads zeroes. */
int emu_ns_resize(struct emu_ns *ns, uint64_t nblocks);

/** Fill an Identify Namespace structure (NVM-CS 1.0 Figure 97) for this
 *  namespace: NSZE/NCAP/NUSE, one LBA format (the namespace's), DLFEAT read
 *  zeroes + WZ deallocate, NMIC shared if @shared, RESCAP all types + IEKEY,
 *  NGUID/EUI64 derived from @subsys_serial and the NSID (stable). */
void emu_ns_identify(const struct emu_ns *ns, const char *subsys_serial, bool shared,
		     struct nvme_id_ns *out);
/** NGUID (16 bytes) and EUI64 (8 bytes) as reported by identify. */
void emu_ns_ids(const struct emu_ns *ns, const char *subsys_serial, uint8_t nguid[16],
		uint8_t eui64[8]);

#endif /* NVMK_EMU_NS_H */
