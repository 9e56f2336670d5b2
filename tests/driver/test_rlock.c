// SPDX-License-Identifier: MIT
/* The SHARED qpair lock (src/driver/rlock.h): nesting by the holder, mutual
 * exclusion between threads (a plain counter incremented under the lock by
 * four threads loses no update; with the lock broken it does, and TSan
 * reports the race), and the contended path: a holder that sleeps makes the
 * others wait on the futex, and its unlock wakes them. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "driver/rlock.h"

#define THREADS 4
#define ROUNDS	20000

static struct drv_rlock lock;
static unsigned long counter;

static void test_nesting(void **state)
{
	(void)state;
	drv_rlock_init(&lock);
	drv_rlock_lock(&lock);
	drv_rlock_lock(&lock);
	assert_int_equal(lock.depth, 2);
	drv_rlock_unlock(&lock);
	/* still held after the inner unlock */
	assert_int_equal(atomic_load(&lock.word), 1);
	assert_true(atomic_load(&lock.owner) == drv_rlock_self());
	drv_rlock_unlock(&lock);
	assert_int_equal(atomic_load(&lock.word), 0);
	assert_true(atomic_load(&lock.owner) == 0);
}

static void *worker(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < ROUNDS; i++) {
		drv_rlock_lock(&lock);
		drv_rlock_lock(&lock); /* nested, as a callback that submits */
		counter++;
		drv_rlock_unlock(&lock);
		if (i % 1000 == 0) {
			/* hold it across a sleep: the others reach the futex */
			struct timespec ts = {0, 200000};

			nanosleep(&ts, NULL);
		}
		drv_rlock_unlock(&lock);
	}
	return NULL;
}

static void test_exclusion(void **state)
{
	pthread_t th[THREADS];

	(void)state;
	drv_rlock_init(&lock);
	counter = 0;
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(counter, (unsigned long)THREADS * ROUNDS);
	assert_int_equal(atomic_load(&lock.word), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_nesting),
	    cmocka_unit_test(test_exclusion),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
