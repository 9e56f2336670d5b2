/* SPDX-License-Identifier: MIT */
/*
 * Inline execution (nvmk_emu_config.inline_io): a doorbell register write of
 * an I/O queue runs that queue's commands on the writing thread, so a host
 * with fewer CPUs than busy threads does not pay a wake-up of the worker, a
 * context switch and the worker's spin for every I/O.
 *
 * What the host sees does not change: commands are fetched, executed and
 * completed by the same code the worker runs (queue.c, io.c), the CQEs carry
 * the same fields and phase, the CQ's MSI-X vector is signalled as by a
 * worker pass (once per vector per run). Only the thread differs.
 *
 * The state that the worker owns alone otherwise (queues, logs, counters)
 * is then guarded by emu->exec_lock: the worker holds it for each pass of its
 * loop (ctrl.c), a doorbell writer while it runs commands. A writer only
 * tries the lock: if the worker or another writer has it, the write kicks
 * the worker as without inline_io, and the kick makes the worker look at
 * every queue again after its current pass, so no doorbell is missed.
 *
 * Inline never runs while something the worker must handle first is under
 * way or set up (the checks in inline_allowed): the host's next doorbell
 * write then wakes the worker, which runs the queues itself, with fault
 * rules, tampering hooks, pause, snapshot and reset exactly as before.
 */
#include <pthread.h>

#include "emu/emu_internal.h"

#define EXEC_TRIES 200 /* about 2-10 us of pause instructions */

/* exec_lock held: may this thread run I/O commands now? */
static bool inline_allowed(struct nvmk_emu *emu)
{
	/* the worker's own condition for processing queues (ctrl.c) */
	if (!emu->enabled || atomic_load(&emu->fatal) || atomic_load(&emu->removed) ||
	    !(atomic_load(&emu->csts) & NVME_CSTS_RDY))
		return false;
	/* a CC.EN 1 -> 0 the worker has not acted on; a pause or snapshot,
	 * which the worker serves at a command boundary of its own */
	if (atomic_load(&emu->reset_req) || atomic_load(&emu->pause_req) ||
	    atomic_load(&emu->snap_pending))
		return false;
	/* fault rules hold commands (delay, hang) on the worker's list and its
	 * timers; tampering hooks are the tests' view of the worker's fetches */
	if (atomic_load(&emu->faults_armed) || emu->tamper.fetched || emu->tamper.cqe)
		return false;
	/* doorbells in memory (never offered with inline_io; kept for safety) */
	return !emu->dbbuf_shadow && !emu_db_page(emu);
}

/*
 * The exec lock, without sleeping: a holder runs one pass or one queue's
 * batch (microseconds), so a few tries while it finishes beat a kick, which
 * would make the worker a third busy thread again (two I/O threads ringing
 * their queues at once is the common case with several connections).
 */
static bool exec_trylock(struct nvmk_emu *emu)
{
	for (unsigned i = 0; i < EXEC_TRIES; i++) {
		if (!pthread_mutex_trylock(&emu->exec_lock))
			return true;
		emu_cpu_relax();
	}
	return false;
}

uint64_t nvmk_emu_inline_count(struct nvmk_emu *emu)
{
	return atomic_load_explicit(&emu->inline_cmds, memory_order_relaxed);
}

bool emu_inline_doorbell(struct nvmk_emu *emu, int idx)
{
	uint16_t qid = (uint16_t)(idx / 2);
	struct emu_cmd *held;
	uint64_t before;
	bool done;

	/* the admin queue stays the worker's: its commands change the queues
	 * and features, and Keep Alive, AER and Abort need its timers */
	if (qid == 0 || !exec_trylock(emu))
		return false;
	if (!inline_allowed(emu)) {
		pthread_mutex_unlock(&emu->exec_lock);
		return false;
	}
	held = emu->pending;
	before = emu->io_fetched; /* exec_lock held: not moving */
	emu_irq_batch_begin();
	done = (idx & 1) ? emu_cq_run(emu, qid) : emu_sq_run(emu, qid);
	emu_irq_batch_end(emu);
	/* A command was held (a fault rule added while we ran): its deadline is
	 * the worker's to keep. An error event queued by a command is delivered
	 * by the worker too (emu_aer_event kicks it). */
	if (emu->pending != held)
		done = false;
	/* relaxed: a statistic (one add per doorbell, not per command) */
	atomic_fetch_add_explicit(&emu->inline_cmds, emu->io_fetched - before,
				  memory_order_relaxed);
	pthread_mutex_unlock(&emu->exec_lock);
	return done;
}
