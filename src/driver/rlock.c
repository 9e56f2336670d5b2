// SPDX-License-Identifier: MIT
/*
 * The contended halves of struct drv_rlock (rlock.h): sleep on the lock
 * word with FUTEX_WAIT while it is held, wake one sleeper on release.
 */
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "driver/rlock.h"

void drv_rlock_wait(struct drv_rlock *l)
{
	/* acquire: as the uncontended compare-exchange. Marking the word 2
	 * before sleeping makes the holder's unlock wake us; taking it with 2
	 * (not 1) keeps others' sleep announced, at the cost of one spare wake. */
	uint32_t c = atomic_exchange_explicit(&l->word, 2, memory_order_acquire);

	while (c != 0) {
		/* returns at once (EAGAIN) if the word is no longer 2; EINTR
		 * and spurious wake-ups just try again */
		syscall(SYS_futex, (uint32_t *)&l->word, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
		c = atomic_exchange_explicit(&l->word, 2, memory_order_acquire);
	}
}

void drv_rlock_wake(struct drv_rlock *l)
{
	syscall(SYS_futex, (uint32_t *)&l->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
