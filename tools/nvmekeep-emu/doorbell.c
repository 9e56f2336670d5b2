// SPDX-License-Identifier: MIT
/*
 * Doorbells as shared memory ("Sparse Regions": the NVMe registers are
 * trapped, the doorbells that follow them are mmap'd by the client, and
 * "the server is responsible for polling for client updates").
 *
 * BAR0 is backed by a memfd of the BAR's size; only [0x1000, end) is offered
 * for mmap. The emulator's worker scans that page itself
 * (nvmk_emu_set_db_page): a doorbell is one store for the client and no
 * thread of the server stands between it and the controller. The worker
 * watches the page for 200 us after its last work, then looks every 20 us,
 * and after 20 ms of quiet every 1 ms (an idle device costs ~1000 wakeups a
 * second, not a core); trapped register writes wake it at once.
 *
 * A store of the value a doorbell already holds is invisible on the page:
 * the client backing sends such a store as a trapped REGION_WRITE (see
 * src/backing/vfio_user.c), which stores the value on the page as well and
 * wakes the worker through the register write. The emulator zeroes the page
 * on a controller reset (CC.EN 1 -> 0), as it does its registers.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nvmekeep/log.h"
#include "nvmekeep/spec.h"
#include "server.h"

int srv_db_init(struct srv *s)
{
	int rc;

	s->db_fd = memfd_create("nvmekeep-emu-bar0", MFD_CLOEXEC);
	if (s->db_fd < 0)
		return -errno;
	if (ftruncate(s->db_fd, (off_t)s->bar0_size) < 0)
		return -errno;
	s->db_map = mmap(NULL, s->bar0_size, PROT_READ | PROT_WRITE, MAP_SHARED, s->db_fd, 0);
	if (s->db_map == MAP_FAILED)
		return -errno;
	rc = nvmk_emu_set_db_page(s->emu, (volatile uint32_t *)(s->db_map + NVME_REG_DBS),
				  s->db_stride, s->db_count);
	if (rc)
		nvmk_err(s->name, NVMK_LOG_NOQ, "cannot hand the doorbell page to the emulator: %d",
			 rc);
	return rc;
}

/* A trapped doorbell write: the page keeps the value (the worker reads the
 * doorbells there) and the register write wakes the worker, so a store of
 * the value already there is seen too. */
void srv_db_store(struct srv *s, uint32_t off, uint32_t val)
{
	uint32_t rel = off - NVME_REG_DBS;

	if (rel < s->db_count * s->db_stride && !(rel % s->db_stride))
		/* release: orders nothing of ours; the client's data came first */
		__atomic_store_n((uint32_t *)(s->db_map + off), val, __ATOMIC_RELEASE);
	nvmk_emu_reg_write32(s->emu, off, val);
}
