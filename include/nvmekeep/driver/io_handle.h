/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep driver: I/O handles (struct nvmk_io_handle), the lean submit path.
 * Part of nvmekeep/driver.h (include that).
 *
 * An I/O handle binds a queue pair, a namespace and a DMA buffer once;
 * everything about them that does not change per I/O is checked at
 * nvmk_io_handle_create (the buffer is contiguous in device address space,
 * the namespace is not a kernel one, the per-command limit fits the buffer)
 * and precomputed (NSID word of the SQE, FUA bit, buffer address), so that
 * nvmk_io_read / nvmk_io_write take six register arguments and check only
 * what varies per I/O:
 *
 *   - nlb in 1..min(MDTS, buffer size): one compare;
 *   - [off, off + len) inside the buffer, dword aligned (Base 2.0 4.1.1),
 *     at most two memory pages (PRP1 + PRP2, no list);
 *   - the qpair exclusive and current (no lock, no reset to notice);
 *   - the namespace not removed.
 *
 * A request that fails any of these goes to the general path
 * (nvmk_ns_submit_read/_write on the same ns, qpair and buffer), which
 * handles it or refuses it exactly as it would have: a handle never accepts
 * what the general API refuses. Completions are reaped with
 * nvmk_qpair_process_completions as usual, with every CQE check (phase,
 * CID range and generation, SQ id, SQ head).
 *
 * The handle is used by the qpair's thread only (as the qpair). The
 * namespace, the qpair and the buffer must outlive it.
 */
#ifndef NVMEKEEP_DRIVER_IO_HANDLE_H
#define NVMEKEEP_DRIVER_IO_HANDLE_H

#include <stddef.h>
#include <stdint.h>

#include "nvmekeep/driver/completion.h"

struct nvmk_qpair;
struct nvmk_ns;
struct nvmk_dma_buf;

struct nvmk_io_handle;

/**
 * nvmk_io_handle_create - bind @qp, @ns and @buf for nvmk_io_read/_write.
 * @io_flags: NVMK_IO_FUA applies to every write through the handle.
 *
 * Returns 0, -EINVAL (NULL argument, a buffer without memory, an unknown
 * flag, a namespace of another controller), -ENOMEM.
 */
int nvmk_io_handle_create(struct nvmk_qpair *qp, struct nvmk_ns *ns, const struct nvmk_dma_buf *buf,
			  uint32_t io_flags, struct nvmk_io_handle **out);
void nvmk_io_handle_destroy(struct nvmk_io_handle *h);

/**
 * nvmk_io_read / nvmk_io_write - @nlb blocks at @slba from / to the handle's
 * buffer at byte offset @off. Same errors and completion as
 * nvmk_ns_submit_read / nvmk_ns_submit_write.
 */
int nvmk_io_read(const struct nvmk_io_handle *h, size_t off, uint64_t slba, uint32_t nlb,
		 nvmk_cpl_fn cb, void *cb_arg);
int nvmk_io_write(const struct nvmk_io_handle *h, size_t off, uint64_t slba, uint32_t nlb,
		  nvmk_cpl_fn cb, void *cb_arg);

/* One request of nvmk_io_read_batch / nvmk_io_write_batch: the arguments
 * of nvmk_io_read after the handle. */
struct nvmk_io_hreq {
	size_t off;
	uint64_t slba;
	uint32_t nlb;
	nvmk_cpl_fn cb;
	void *cb_arg;
};

/**
 * nvmk_io_read_batch / nvmk_io_write_batch - @n requests on the handle's
 * buffer in one call, one SQ tail doorbell: nvmk_ns_submit_read_batch /
 * _write_batch (nvmekeep/driver/ns.h) with the handle's namespace, qpair,
 * buffer and write flags, and the same rules and results (every request
 * checked before any is queued; k in 1..n queued when the queue fills;
 * a negative errno queues nothing). Per request only nlb, the callback, the
 * range, its alignment and the two-page limit are checked.
 */
int nvmk_io_read_batch(const struct nvmk_io_handle *h, const struct nvmk_io_hreq *reqs, unsigned n);
int nvmk_io_write_batch(const struct nvmk_io_handle *h, const struct nvmk_io_hreq *reqs,
			unsigned n);

#endif
