// SPDX-License-Identifier: MIT
/*
 * Doorbells as shared memory ("Sparse Regions": the NVMe registers are
 * trapped, the doorbells that follow them are mmap'd by the client, and
 * "the server is responsible for polling for client updates").
 *
 * BAR0 is backed by a memfd of the BAR's size; only [0x1000, end) is offered
 * for mmap. A poller thread compares every doorbell with the value it last
 * forwarded and hands changes to the emulator as register writes, so a
 * doorbell is one store for the client. It spins for 200 us after a change,
 * then looks every 20 us, and after 20 ms of quiet every 1 ms (an idle
 * device costs ~1000 wakeups a second, not a core).
 *
 * A store of the value a doorbell already holds is invisible here: the
 * client backing sends such a store as a trapped REGION_WRITE (see
 * src/backing/vfio_user.c), and a controller reset (CC.EN 1 -> 0) zeroes the
 * page, as the emulator's own doorbells are reset.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "nvmekeep/log.h"
#include "nvmekeep/spec.h"
#include "server.h"

#define DB_SPIN_NS  200000L   /* keep spinning this long after the last change */
#define DB_SLEEP_NS 20000L    /* then look every 20 us */
#define DB_IDLE_NS  20000000L /* after 20 ms without a change, every 1 ms */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static volatile uint32_t *db_slot(struct srv *s, unsigned i)
{
	return (volatile uint32_t *)(s->db_map + NVME_REG_DBS + (size_t)i * s->db_stride);
}

/*
 * One pass over the page; true if a doorbell changed. The pass itself takes
 * no lock (a lock per pass was a tenth of the poller's time): only a slot
 * that differs from the value last forwarded is looked at again under
 * db_lock, which srv_db_store/srv_db_clear hold while they change a slot and
 * its db_last together.
 */
static bool db_scan(struct srv *s)
{
	bool moved = false;

	for (unsigned i = 0; i < s->db_count; i++) {
		uint32_t v = __atomic_load_n(db_slot(s, i), __ATOMIC_RELAXED);

		if (v == __atomic_load_n(&s->db_last[i], __ATOMIC_RELAXED))
			continue;
		pthread_mutex_lock(&s->db_lock);
		/* Acquire: pairs with the client's release before its doorbell store
		 * (queue entries written first); the emulator's register write
		 * republishes with release for its worker. */
		v = __atomic_load_n(db_slot(s, i), __ATOMIC_ACQUIRE);
		if (v != s->db_last[i]) {
			__atomic_store_n(&s->db_last[i], v, __ATOMIC_RELAXED);
			nvmk_emu_reg_write32(s->emu, NVME_REG_DBS + i * s->db_stride, v);
			moved = true;
		}
		pthread_mutex_unlock(&s->db_lock);
	}
	return moved;
}

static void *db_poller(void *arg)
{
	struct srv *s = arg;
	struct timespec nap = {0, DB_SLEEP_NS}, idle = {0, 1000000L};
	uint64_t last = 0, quiet = 0;
	unsigned spins = 0;

	/* short sleeps are only worth it with a small timer slack */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	while (!atomic_load(&s->stopping)) {
		if (db_scan(s)) {
			spins = 0;
			quiet = 0;
			last = 0;
			continue;
		}
		/* The clock is read once per 32 empty passes while spinning (reading
		 * it every pass was a fifth of the poller's time). */
		if (quiet <= (uint64_t)DB_SPIN_NS && (++spins & 31)) {
			sched_yield();
			continue;
		}
		if (!last)
			last = now_ns();
		quiet = now_ns() - last;
		if (quiet > (uint64_t)DB_IDLE_NS)
			nanosleep(&idle, NULL);
		else if (quiet > (uint64_t)DB_SPIN_NS)
			nanosleep(&nap, NULL);
		else
			sched_yield();
	}
	return NULL;
}

int srv_db_init(struct srv *s)
{
	s->db_fd = memfd_create("nvmekeep-emu-bar0", MFD_CLOEXEC);
	if (s->db_fd < 0)
		return -errno;
	if (ftruncate(s->db_fd, (off_t)s->bar0_size) < 0)
		return -errno;
	s->db_map = mmap(NULL, s->bar0_size, PROT_READ | PROT_WRITE, MAP_SHARED, s->db_fd, 0);
	if (s->db_map == MAP_FAILED)
		return -errno;
	s->db_last = calloc(s->db_count, sizeof(uint32_t));
	if (!s->db_last)
		return -ENOMEM;
	pthread_mutex_init(&s->db_lock, NULL);
	if (pthread_create(&s->db_thread, NULL, db_poller, s))
		return -EAGAIN;
	return 0;
}

void srv_db_stop(struct srv *s)
{
	pthread_join(s->db_thread, NULL);
}

void srv_db_clear(struct srv *s)
{
	pthread_mutex_lock(&s->db_lock);
	for (unsigned i = 0; i < s->db_count; i++) {
		__atomic_store_n(db_slot(s, i), 0, __ATOMIC_RELAXED);
		__atomic_store_n(&s->db_last[i], 0, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&s->db_lock);
}

/* A trapped doorbell write: forward it and keep the page in step, so the
 * poller sees no change to forward a second time. */
void srv_db_store(struct srv *s, uint32_t off, uint32_t val)
{
	unsigned i = (off - NVME_REG_DBS) / s->db_stride;

	pthread_mutex_lock(&s->db_lock);
	if (i < s->db_count && !((off - NVME_REG_DBS) % s->db_stride)) {
		__atomic_store_n(db_slot(s, i), val, __ATOMIC_RELAXED);
		__atomic_store_n(&s->db_last[i], val, __ATOMIC_RELAXED);
	}
	nvmk_emu_reg_write32(s->emu, off, val);
	pthread_mutex_unlock(&s->db_lock);
}
