/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep driver: namespaces (struct nvmk_ns): open and close, size and
 * format, asynchronous I/O submission, synchronous wrappers, reservations.
 * Part of nvmekeep/driver.h (include that).
 */
#ifndef NVMEKEEP_DRIVER_NS_H
#define NVMEKEEP_DRIVER_NS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/spec.h"
#include "nvmekeep/driver/completion.h"

struct nvmk_ctrl;
struct nvmk_qpair;
struct nvmk_ns;

#define NVMK_NS_SHARED (1u << 0) /* allow other SHARED handles on the same nsid */

struct nvmk_ns_info {
	uint32_t nsid;
	uint32_t block_size;	  /* bytes per logical block */
	uint8_t lba_shift;	  /* log2(block_size) */
	uint64_t nblocks;	  /* NSZE */
	uint64_t capacity;	  /* bytes (nblocks << lba_shift) */
	uint32_t max_xfer_blocks; /* blocks per command before splitting */
	uint16_t oncs;		  /* optional NVM commands (Identify Controller ONCS) */
	uint8_t rescap;		  /* reservation capabilities */
	bool removed;		  /* the namespace went away; I/O fails -ENODEV */
};

/**
 * nvmk_ns_open - open namespace @nsid (Identify Namespace).
 * @flags: NVMK_NS_SHARED, or 0 for a single owner
 * Return: 0, -ENODEV (not active), -EBUSY (already open and not both shared),
 *         -EINVAL (unsupported format, e.g. metadata), or admin error.
 */
int nvmk_ns_open(struct nvmk_ctrl *ctrl, uint32_t nsid, uint32_t flags, struct nvmk_ns **out);
/** nvmk_ns_close - close a handle (no I/O may be outstanding on it); also
 *  after its controller failed or was closed. NULL: no-op. */
void nvmk_ns_close(struct nvmk_ns *ns);
/** nvmk_ns_info - current size and format (updated by resize events). */
void nvmk_ns_info(const struct nvmk_ns *ns, struct nvmk_ns_info *info);
/** nvmk_ns_ctrl - the controller of @ns. */
struct nvmk_ctrl *nvmk_ns_ctrl(const struct nvmk_ns *ns);

/* I/O flags */
#define NVMK_IO_FUA  (1u << 0) /* Read/Write/Compare: Force Unit Access */
#define NVMK_IO_DEAC (1u << 1) /* Write Zeroes: deallocate (NVM-CS 1.0 3.2.8) */

/* A range for Deallocate (Dataset Management AD, NVM-CS 1.0 3.2.3). */
struct nvmk_range {
	uint64_t slba;
	uint32_t nlb; /* blocks (not 0's based), >= 1 */
};

/*
 * Asynchronous submission. @qp: a qpair of the namespace's controller.
 * @buf + @off: data in DMA memory of the controller (nvmk_ctrl_dma_alloc),
 * nlb << lba_shift bytes, inside the block. @buf and @cb must not be NULL
 * (not checked on the fast path); @nlb >= 1. Requests larger than the controller's MDTS (or the
 * 65536-block limit of one command) are split (at most depth - 2 parts,
 * else -E2BIG); @cb is called once, after all parts, with the first error.
 * Return: 0 (queued; @cb will be called), -EAGAIN (not enough free slots on
 * @qp: process completions and retry; also while the controller is being
 * saved), -ENODEV (namespace removed or controller gone), -EIO (controller
 * failed, or the device refused to re-create @qp's queues after a reset: then
 * until a later reset succeeds), -EINVAL (bad arguments), -E2BIG (a split
 * request that can never fit @qp).
 */
int nvmk_ns_submit_read(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct nvmk_dma_buf *buf,
			size_t off, uint64_t slba, uint32_t nlb, uint32_t io_flags, nvmk_cpl_fn cb,
			void *cb_arg);
int nvmk_ns_submit_write(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct nvmk_dma_buf *buf,
			 size_t off, uint64_t slba, uint32_t nlb, uint32_t io_flags, nvmk_cpl_fn cb,
			 void *cb_arg);
int nvmk_ns_submit_compare(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			   const struct nvmk_dma_buf *buf, size_t off, uint64_t slba, uint32_t nlb,
			   uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg);
int nvmk_ns_submit_flush(struct nvmk_ns *ns, struct nvmk_qpair *qp, nvmk_cpl_fn cb, void *cb_arg);
int nvmk_ns_submit_write_zeroes(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint64_t slba,
				uint64_t nlb, uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg);
/** Deallocate 1..256 ranges in one DSM command (ranges are copied at submit). */
int nvmk_ns_submit_deallocate(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			      const struct nvmk_range *ranges, unsigned nr, nvmk_cpl_fn cb,
			      void *cb_arg);
/* One request of a batch submit (nvmk_ns_submit_read_batch): the arguments
 * of nvmk_ns_submit_read after @qp. */
struct nvmk_io_req {
	const struct nvmk_dma_buf *buf;
	size_t off;
	uint64_t slba;
	uint32_t nlb;
	uint32_t io_flags; /* 0 or NVMK_IO_FUA */
	nvmk_cpl_fn cb;
	void *cb_arg;
};

/**
 * nvmk_ns_submit_read_batch / nvmk_ns_submit_write_batch - submit @n
 * requests in one call, in array order, with one SQ tail doorbell write at
 * the end (Base 2.0 3.1.4.21: the tail may move by several entries at once;
 * none while a batch of nvmk_qpair_batch_begin is open or completions are
 * being processed, as for every submit).
 * @reqs: @n requests; each is what nvmk_ns_submit_read/_write would take
 *        (any size: split above MDTS, PRP lists above two pages), with two
 *        rules made strict: @cb must not be NULL and @io_flags is 0 or
 *        NVMK_IO_FUA.
 *
 * The qpair and namespace are checked once per call (exclusive, current,
 * namespace present); per request only what differs (buffer, range inside
 * it, dword alignment of the data, Base 2.0 4.1.1, number of blocks).
 *
 * Every request is checked before any is queued: an invalid one anywhere in
 * the array (NULL buffer or callback, nlb 0, the range outside the buffer,
 * misaligned data, an unknown flag, a split that can never fit @qp) fails
 * the call with -EINVAL (-E2BIG for the split) and nothing is queued; a
 * warning names the request and the rule.
 *
 * Return: k in 1..n: reqs[0..k-1] are queued (each @cb will be called
 * once), reqs[k..n-1] are not (nothing half-queued). k < n means the queue
 * filled up (or the qpair became unusable) at reqs[k]: process completions
 * and submit the rest again. A negative errno queues nothing: -EINVAL (@n
 * 0, NULL @ns, @qp or @reqs, an invalid request), -E2BIG, or what the
 * first request's nvmk_ns_submit_read/_write returns (-EAGAIN: no free
 * slot; -ENODEV: namespace removed; -EIO: controller failed).
 * A SHARED qpair is locked once for the whole array: the commands are
 * contiguous in its submission queue. @reqs is read during the call only:
 * it may be reused as soon as the call returns.
 */
int nvmk_ns_submit_read_batch(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			      const struct nvmk_io_req *reqs, unsigned n);
int nvmk_ns_submit_write_batch(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			       const struct nvmk_io_req *reqs, unsigned n);

/*
 * Vectored forms: @iov elements lie in DMA memory of the controller and obey
 * the PRP rules (Base 2.0 4.1.1): only the first element may start inside a
 * page, only the last may end inside one (elements in between are whole
 * pages); total length = nlb << lba_shift. Otherwise -EINVAL (the sync
 * wrappers bounce instead).
 */
int nvmk_ns_submit_readv(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct iovec *iov,
			 int iovcnt, uint64_t slba, uint32_t nlb, uint32_t io_flags, nvmk_cpl_fn cb,
			 void *cb_arg);
int nvmk_ns_submit_writev(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct iovec *iov,
			  int iovcnt, uint64_t slba, uint32_t nlb, uint32_t io_flags,
			  nvmk_cpl_fn cb, void *cb_arg);

/*
 * Synchronous wrappers: any buffer (bounced when not DMA memory of the
 * controller), @qp NULL = the calling thread's nvmk_ctrl_get_qpair. They wait
 * in the qpair's mode, never longer than the command's own bound: the I/O
 * timeout, then an Abort (admin timeout), then a reset (CAP.TO per state and
 * the admin timeout per command) or the controller's failure, each of which
 * completes the command. Return: 0, the completion error of the table in
 * nvmekeep/driver/completion.h,
 * or a submit error (-EAGAIN is retried, not returned); nvmk_last_status()
 * gives the NVMe status.
 */
int nvmk_ns_read(struct nvmk_ns *ns, struct nvmk_qpair *qp, void *buf, uint64_t slba, uint32_t nlb);
int nvmk_ns_write(struct nvmk_ns *ns, struct nvmk_qpair *qp, const void *buf, uint64_t slba,
		  uint32_t nlb);
int nvmk_ns_compare(struct nvmk_ns *ns, struct nvmk_qpair *qp, const void *buf, uint64_t slba,
		    uint32_t nlb);
int nvmk_ns_readv(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct iovec *iov, int iovcnt,
		  uint64_t slba, uint32_t nlb);
int nvmk_ns_writev(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct iovec *iov, int iovcnt,
		   uint64_t slba, uint32_t nlb);
int nvmk_ns_flush(struct nvmk_ns *ns, struct nvmk_qpair *qp);
int nvmk_ns_write_zeroes(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint64_t slba, uint64_t nlb,
			 uint32_t io_flags);
int nvmk_ns_deallocate(struct nvmk_ns *ns, struct nvmk_qpair *qp, const struct nvmk_range *ranges,
		       unsigned nr);

/* Reservations (NVM-CS 1.0 3.2.4 - 3.2.7), synchronous. The host is
 * identified by opts.host_id of its controller. */
int nvmk_ns_resv_register(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			  enum nvme_resv_register_action action, uint64_t crkey, uint64_t nrkey,
			  bool iekey);
int nvmk_ns_resv_acquire(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			 enum nvme_resv_acquire_action action, enum nvme_resv_type rtype,
			 uint64_t crkey, uint64_t prkey, bool iekey);
int nvmk_ns_resv_release(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			 enum nvme_resv_release_action action, enum nvme_resv_type rtype,
			 uint64_t crkey, bool iekey);
/** Reservation Report into @buf (struct nvme_resv_status + registrants;
 *  @eds selects the extended forms). */
int nvmk_ns_resv_report(struct nvmk_ns *ns, struct nvmk_qpair *qp, void *buf, size_t len, bool eds);

#endif /* NVMEKEEP_DRIVER_NS_H */
