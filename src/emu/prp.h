/* SPDX-License-Identifier: MIT */
/*
 * PRP walker (Base 2.0, 4.1.1): turns PRP1/PRP2 (and PRP lists, chained
 * through the last entry of each full list page) into host segments, each
 * translated through the emulator's DMA callback.
 */
#ifndef NVMK_EMU_PRP_H
#define NVMK_EMU_PRP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvmekeep/emu.h"

/* Called for each host segment in transfer order; return 0 to continue or an
 * NVMe status field to stop the walk with that status. */
typedef uint16_t (*emu_prp_seg_fn)(void *arg, void *host, size_t len);

struct emu_prp_ctx {
	nvmk_emu_dma_fn dma;
	nvmk_emu_dma_done_fn done; /* optional: release each translation after use */
	void *dma_ctx;
	uint32_t page_size; /* memory page size, 2 ^ (12 + CC.MPS) */
	bool write;	    /* device-to-host transfer (the controller writes host memory) */
};

/**
 * emu_prp_walk - walk the data pointer of a command.
 * @ctx:  DMA callback, page size and direction
 * @prp1: first PRP entry (may have a dword-aligned page offset)
 * @prp2: second PRP entry or PRP list pointer (used only past the first page)
 * @len:  bytes to transfer (0 walks nothing)
 * @fn:   segment consumer
 * @arg:  passed to @fn
 *
 * Return: 0, PRP Offset Invalid for a misaligned entry, Data Transfer Error
 * when a translation fails, or the status returned by @fn.
 */
uint16_t emu_prp_walk(const struct emu_prp_ctx *ctx, uint64_t prp1, uint64_t prp2, uint64_t len,
		      emu_prp_seg_fn fn, void *arg);

#endif /* NVMK_EMU_PRP_H */
