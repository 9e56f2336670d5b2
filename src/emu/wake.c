/* SPDX-License-Identifier: MIT */
/*
 * Waking the emulator's worker thread: a doorbell write (or any other event
 * that needs the worker: CC, AER, removal, destroy) calls emu_kick() (inline
 * in emu_internal.h: one exchange, then emu_kick_wake() only when the worker
 * sleeps); the worker, with nothing to do, calls emu_wait().
 *
 * One 32-bit word, emu->wake, carries the whole protocol:
 *   EMU_WAKE_RUN   the worker is awake and no kick is pending
 *   EMU_WAKE_KICK  something happened since the worker last looked
 *   EMU_WAKE_SLEEP the worker is asleep (or about to be) in FUTEX_WAIT
 *
 * A kick is one atomic exchange to KICK; only when it replaced SLEEP does the
 * kicker make the futex system call. So a doorbell write while the worker
 * is awake or spinning costs one locked instruction, and no lock, no
 * condition variable and no system call. The worker spins after its last
 * work (EMU_SPIN_NS; EMU_WATCH_SPIN_NS when it also watches doorbells in
 * memory, see emu_wait) watching the word with plain loads (the cache line
 * stays shared until a kick), then announces SLEEP with a compare-exchange
 * and sleeps on the word.
 *
 * Doorbells in memory (shadow doorbells, a doorbell page) have a second
 * protocol on top, EventIdx's (Base 2.0 5.8): the host writes the register
 * (and so kicks) only when EventIdx asks; the worker asks only just before it
 * sleeps, then reads the shadow values again (seq_cst store then load, as
 * the host's shadow store then EventIdx load), so either it sees the new
 * value or the host sees the request and kicks (queue.c, emu_db_arm).
 *
 * No wake-up is lost: the worker sleeps only with FUTEX_WAIT(word == SLEEP),
 * which the kernel checks atomically against the futex's wake queue; a kick
 * that came after the worker's compare-exchange changed the word to KICK
 * (so the wait returns at once) and, having seen SLEEP, calls FUTEX_WAKE.
 *
 * Data published with a kick (a doorbell value, a register) is ordered by
 * the atomics themselves, not by the futex: the kicker's exchange is a
 * release (after its data), the worker's exchange that consumes the kick is
 * an acquire (before it reads the data). ThreadSanitizer sees these atomics,
 * so it checks the protocol; the futex calls only block and unblock.
 */
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "emu/emu_internal.h"

/* Wake the one thread that may be waiting on @word (the worker). */
static void emu_futex_wake(_Atomic uint32_t *word)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/*
 * Sleep while *@word == @val, until CLOCK_MONOTONIC @deadline (ns, 0 = no
 * deadline). Returns on a wake-up, a changed word, the deadline or a signal:
 * the caller looks at the word again in every case.
 */
static void emu_futex_wait(_Atomic uint32_t *word, uint32_t val, uint64_t deadline)
{
	struct timespec ts = {.tv_sec = (time_t)(deadline / 1000000000ull),
			      .tv_nsec = (long)(deadline % 1000000000ull)};

	/* FUTEX_WAIT_BITSET takes an absolute timeout, on CLOCK_MONOTONIC unless
	 * FUTEX_CLOCK_REALTIME is given: the same clock as emu_now_ns(). */
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET_PRIVATE, val, deadline ? &ts : NULL,
		NULL, FUTEX_BITSET_MATCH_ANY);
}

/* emu_kick (emu_internal.h, inline) found the worker asleep. */
void emu_kick_wake(struct nvmk_emu *emu)
{
	emu_futex_wake(&emu->wake);
}

/*
 * Consume a pending kick, if any. The exchange (not a plain store) is an
 * acquire of the kicker's release, and a full barrier that orders the reset
 * of the word before the worker's next reads of doorbells: a kick that
 * lands after it stays pending for the next round, one before it has its
 * data visible now.
 */
static bool emu_kick_take(struct nvmk_emu *emu)
{
	return atomic_exchange(&emu->wake, EMU_WAKE_RUN) == EMU_WAKE_KICK;
}

/*
 * Sleep until a kick, CLOCK_MONOTONIC @deadline (0 = none) or emu->stop.
 * Returns true if it consumed a kick.
 */
static bool emu_sleep(struct nvmk_emu *emu, uint64_t deadline)
{
	uint32_t run = EMU_WAKE_RUN;

	/* Announce the sleep. seq_cst compare-exchange: if a kick came first it
	 * fails (the word is KICK) and we consume it; if it succeeds, every later
	 * kick sees SLEEP and wakes us. The stop flag is read after it, so a
	 * destroy that set stop and then kicked is either seen here or wakes us. */
	if (!atomic_compare_exchange_strong(&emu->wake, &run, EMU_WAKE_SLEEP)) {
		emu_kick_take(emu);
		return true;
	}
	if (!atomic_load(&emu->stop))
		emu_futex_wait(&emu->wake, EMU_WAKE_SLEEP, deadline);
	/* Awake for whatever reason (kick, deadline, signal, spurious): back to
	 * RUN, taking the kick if there was one (acquire, see emu_kick_take). */
	return emu_kick_take(emu);
}

/*
 * The worker's idle policy. Spin from its last piece of work: EMU_SPIN_NS
 * when kicks can bring work (register doorbells, shadow doorbells whose
 * EventIdx asks for a register write once the worker stops watching);
 * EMU_WATCH_SPIN_NS with a doorbell page, yielding the CPU after the first
 * EMU_SPIN_NS. While it watches them,
 * EventIdx keeps the host from writing doorbell registers (queue.c). Then it
 * asks for doorbell writes (emu_db_arm), looks once more, and sleeps on the
 * futex: until @deadline, or, with a doorbell page (which no kick announces),
 * for a nap of EMU_NAP_NS (EMU_NAP_IDLE_NS after EMU_QUIET_NS without work)
 * before it looks at the page again.
 */
void emu_wait(struct nvmk_emu *emu, uint64_t deadline)
{
	volatile uint32_t *page = emu_db_page(emu);
	bool watch = page || emu->dbbuf_shadow;
	/* The long spin only with a doorbell page, which nothing else announces.
	 * With shadow doorbells alone a sleeping worker is woken by the register
	 * write EventIdx asks for, and a 200 us spin took the CPU that the host's
	 * threads need on a small machine: one NBD writer over the in-process
	 * emulator went from 0.96x to 0.70x nbdkit on 2 CPUs (bench/nbd.sh). */
	uint64_t spin = emu->cfg.no_spin ? 0 : page ? EMU_WATCH_SPIN_NS : EMU_SPIN_NS;
	uint64_t now = emu_now_ns();
	unsigned turn = 0;

	for (;;) {
		uint64_t quiet, until;

		/* Relaxed loads while spinning keep the cache line shared with the
		 * kicker; the exchange in emu_kick_take does the ordering. */
		if (atomic_load_explicit(&emu->wake, memory_order_relaxed) != EMU_WAKE_RUN) {
			emu_kick_take(emu);
			return;
		}
		if (atomic_load_explicit(&emu->stop, memory_order_relaxed))
			return;
		if (deadline && now >= deadline)
			return;
		if (watch && emu_db_moved(emu))
			return;
		quiet = now - emu->last_busy_ns;
		if (quiet < spin) {
			/* A doorbell often follows a completion within microseconds. */
			if (quiet < EMU_SPIN_NS)
				emu_cpu_relax();
			else
				sched_yield();
			/* the clock every 8th turn: reading it on every turn was a
			 * fifth to a third of a spinning worker's time */
			if (!(++turn & 7))
				now = emu_now_ns();
			continue;
		}
		if (emu_db_arm(emu))
			return;
		until = deadline;
		if (page) {
			uint64_t nap = now + (quiet >= EMU_QUIET_NS ? EMU_NAP_IDLE_NS : EMU_NAP_NS);

			if (!until || nap < until)
				until = nap;
		}
		if (emu_sleep(emu, until) || !page)
			return;
		now = emu_now_ns();
	}
}
