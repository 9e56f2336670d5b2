/* SPDX-License-Identifier: MIT */
/*
 * A doorbell page the worker scans itself (nvmk_emu_set_db_page): the owner
 * of the emulator (the vfio-user server) maps the doorbells of BAR0 as
 * shared memory into its client, so a doorbell is a store there and no call
 * reaches the emulator. The page then holds the doorbell registers: db_read
 * (queue.c) reads a queue's doorbell from it, validated as a register value
 * is when the worker uses it (Base 2.0 3.1.3.21/22: Invalid Doorbell Write
 * Value), and a pass over the page tells the worker that something changed
 * and reports stores to doorbells of queues that do not exist (Write to
 * Invalid Doorbell Register), as emu_db_write does for register writes.
 *
 * Nothing announces a store: while it has work the worker watches the page
 * (emu_wait), then naps briefly between looks, then longer when idle (the
 * EMU_*_NS constants). Register writes and other kicks still wake it at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/prctl.h>

#include "emu/emu_internal.h"

int nvmk_emu_set_db_page(struct nvmk_emu *emu, volatile uint32_t *page, uint32_t stride,
			 unsigned count)
{
	unsigned max = 2u * (emu->nq + 1u);

	if (!page || stride < 4 || (stride & 3) || count == 0)
		return -EINVAL;
	if (emu->cfg.inline_io) {
		/* a store on the page calls nothing: inline execution needs the
		 * register write (include/nvmekeep/emu.h, inline_io) */
		nvmk_err(emu->name, NVMK_LOG_NOQ,
			 "doorbell page refused: the controller runs commands inline "
			 "(inline_io), which needs doorbell register writes");
		return -EINVAL;
	}
	if (emu_db_page(emu))
		return -EBUSY;
	emu->db_page_last = calloc(max, sizeof(uint32_t));
	if (!emu->db_page_last)
		return -ENOMEM;
	/* Doorbells past the last queue's are padding of the BAR: not scanned,
	 * as a register write there is not a doorbell either. */
	emu->db_page_count = count < max ? count : max;
	emu->db_page_stride = stride;
	for (unsigned i = 0; i < emu->db_page_count; i++)
		emu->db_page_last[i] =
		    __atomic_load_n((const volatile uint32_t *)((const volatile uint8_t *)page +
								(size_t)i * stride),
				    __ATOMIC_RELAXED);
	/* release: the fields above before the pointer the worker acquires */
	atomic_store_explicit(&emu->db_page, page, memory_order_release);
	emu_kick(emu);
	return 0;
}

static volatile uint32_t *db_slot(struct nvmk_emu *emu, volatile uint32_t *page, unsigned idx)
{
	return (volatile uint32_t *)((volatile uint8_t *)page + (size_t)idx * emu->db_page_stride);
}

uint32_t emu_db_page_read(struct nvmk_emu *emu, volatile uint32_t *page, unsigned idx)
{
	if (idx >= emu->db_page_count)
		return 0;
	/* Acquire: pairs with the host's release before its doorbell store (the
	 * queue entries written first). Bits 15:0 only, as the register keeps. */
	return __atomic_load_n(db_slot(emu, page, idx), __ATOMIC_ACQUIRE) & 0xffffu;
}

void emu_db_page_zero(struct nvmk_emu *emu, unsigned idx)
{
	volatile uint32_t *page = emu_db_page(emu);

	if (!page || idx >= emu->db_page_count)
		return;
	/* Relaxed: the host writes a new queue's doorbell only after the
	 * completion of the command that created it, which is posted after this
	 * (with release); a controller that was reset is not rung before RDY. */
	__atomic_store_n(db_slot(emu, page, idx), 0, __ATOMIC_RELAXED);
	emu->db_page_last[idx] = 0;
}

bool emu_db_page_scan(struct nvmk_emu *emu)
{
	volatile uint32_t *page = emu_db_page(emu);
	bool moved = false;

	if (!page || atomic_load_explicit(&emu->removed, memory_order_relaxed))
		return false;
	if (!emu->db_page_slack_set) {
		/* Naps of EMU_NAP_NS only mean something with a small timer slack
		 * (50 us by default); per thread, so the worker sets its own. */
		prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
		emu->db_page_slack_set = true;
	}
	for (unsigned i = 0; i < emu->db_page_count; i++) {
		uint32_t v = __atomic_load_n(db_slot(emu, page, i), __ATOMIC_RELAXED);

		if (v == emu->db_page_last[i])
			continue;
		emu->db_page_last[i] = v;
		/* EMU_DB_NOQ is stored by the worker itself: no race with it here */
		if (atomic_load_explicit(&emu->db[i], memory_order_relaxed) & EMU_DB_NOQ)
			emu_db_stray(emu, (int)i);
		else
			moved = true;
	}
	return moved;
}
