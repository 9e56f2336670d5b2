/* SPDX-License-Identifier: MIT */
/*
 * The lock of a SHARED queue pair: recursive (a completion callback may
 * submit on the queue it completes on), uncontended in one atomic
 * compare-exchange to take and one exchange to give back. A pthread
 * recursive mutex cost ~75 instructions per lock + unlock in glibc (its
 * type dispatch, owner TID from the thread descriptor, user count), two
 * pairs per I/O.
 *
 * The word is a futex in the classic three states (0 free, 1 held, 2 held
 * with sleepers, U. Drepper, "Futexes Are Tricky", mutex 3); the holder's
 * identity is its thread pointer, so that a nested lock is one compare.
 */
#ifndef NVMK_DRV_RLOCK_H
#define NVMK_DRV_RLOCK_H

#include <stdatomic.h>
#include <stdint.h>

struct drv_rlock {
	_Atomic uint32_t word;	  /* 0 free, 1 held, 2 held and sleepers may wait */
	_Atomic(uintptr_t) owner; /* the holder's thread pointer, 0 when free */
	uint32_t depth;		  /* nesting, the holder's only */
};

/* The calling thread's identity: its thread pointer (unique among live
 * threads; one instruction on x86-64). */
static inline uintptr_t drv_rlock_self(void)
{
	return (uintptr_t)__builtin_thread_pointer();
}

/* rlock.c: the contended halves (futex wait and wake). */
void drv_rlock_wait(struct drv_rlock *l);
void drv_rlock_wake(struct drv_rlock *l);

static inline void drv_rlock_init(struct drv_rlock *l)
{
	atomic_init(&l->word, 0);
	atomic_init(&l->owner, 0);
	l->depth = 0;
}

static inline void drv_rlock_lock(struct drv_rlock *l)
{
	uintptr_t me = drv_rlock_self();
	uint32_t c = 0;

	/* relaxed: only this thread ever stores its own identity, and it
	 * clears it before giving the lock back, so reading it here means
	 * this thread holds the lock (any other value is not ours) */
	if (atomic_load_explicit(&l->owner, memory_order_relaxed) == me) {
		l->depth++;
		return;
	}
	/* acquire: the previous holder's writes (the queue, depth) */
	if (__builtin_expect(!atomic_compare_exchange_strong_explicit(
				 &l->word, &c, 1, memory_order_acquire, memory_order_relaxed),
			     0))
		drv_rlock_wait(l);
	/* relaxed: read by other threads only to learn it is not theirs */
	atomic_store_explicit(&l->owner, me, memory_order_relaxed);
	l->depth = 1;
}

static inline void drv_rlock_unlock(struct drv_rlock *l)
{
	if (--l->depth)
		return;
	/* relaxed: see drv_rlock_lock */
	atomic_store_explicit(&l->owner, 0, memory_order_relaxed);
	/* release: our writes before the next holder's acquire */
	if (__builtin_expect(atomic_exchange_explicit(&l->word, 0, memory_order_release) == 2, 0))
		drv_rlock_wake(l);
}

#endif /* NVMK_DRV_RLOCK_H */
