/* SPDX-License-Identifier: MIT */
/*
 * The two implementations of the namespace and queue-pair operations: the
 * NVMe-queue path (our own submission/completion queues on a controller,
 * VFIO, vfio-user or the emulator) and the kernel path (a block device of the
 * Linux NVMe driver through io_uring, kernel_ns.c). Every struct nvmk_ns and
 * struct nvmk_qpair points at the table of the path that made it; the public
 * calls of ns_*.c and qpair.c hand their general paths to it (one indirect
 * call), so neither path tests which one it is.
 *
 * The fast paths stay outside the table: the inline exclusive submit
 * (ns_rw) and completion poll (nvmk_qpair_process_completions) run only for
 * an NVMe-queue namespace on an exclusive, current NVMe-queue qpair, and
 * their one gate already fails for every kernel object (a kernel qpair's
 * fast_epoch equals no epoch, a kernel namespace has max_blocks and
 * gate_blocks 0), so that
 * they pay nothing for the table.
 *
 * An asynchronous call needs a namespace and a qpair of the same path: the
 * dispatch refuses a mix with -EINVAL (drv_io_ops_of).
 */
#ifndef NVMK_DRV_IO_OPS_H
#define NVMK_DRV_IO_OPS_H

#include <stdint.h>
#include <sys/uio.h>

#include "driver/drv.h"

struct drv_io_ops {
	const char *name; /* "nvme", "kernel": for the log */

	/* namespace handle */
	void (*ns_close)(struct nvmk_ns *ns);
	void (*ns_info)(const struct nvmk_ns *ns, struct nvmk_ns_info *info);

	/* asynchronous submission (the general paths: the NVMe-queue fast
	 * path of Read/Write/Compare is inline in ns_io.c, ns_rw) */
	int (*submit_rw)(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
			 const struct nvmk_dma_buf *buf, size_t off, uint64_t slba, uint32_t nlb,
			 uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg);
	int (*submit_rwv)(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
			  const struct iovec *iov, int iovcnt, uint64_t slba, uint32_t nlb,
			  uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg);
	int (*submit_flush)(struct nvmk_ns *ns, struct nvmk_qpair *qp, nvmk_cpl_fn cb,
			    void *cb_arg);
	int (*submit_write_zeroes)(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint64_t slba,
				   uint64_t nlb, uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg);
	int (*submit_deallocate)(struct nvmk_ns *ns, struct nvmk_qpair *qp,
				 const struct nvmk_range *ranges, unsigned nr, nvmk_cpl_fn cb,
				 void *cb_arg);

	/* synchronous wrappers (any buffer); @qp may be NULL */
	int (*sync_rwv)(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
			const struct iovec *iov, int iovcnt, uint64_t slba, uint32_t nlb);
	int (*sync_flush)(struct nvmk_ns *ns, struct nvmk_qpair *qp);
	int (*sync_write_zeroes)(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint64_t slba,
				 uint64_t nlb, uint32_t io_flags);
	int (*sync_deallocate)(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			       const struct nvmk_range *ranges, unsigned nr);
	/* one reservation command (NVM-CS 1.0 3.2.4 - 3.2.7), data bounced */
	int (*sync_resv)(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc, uint32_t cdw10,
			 uint32_t cdw11, void *data, size_t len);

	/* queue pair: everything but the exclusive poll of a current qpair */
	int (*qp_process)(struct nvmk_qpair *qp, unsigned max);
	int (*qp_wait)(struct nvmk_qpair *qp, int timeout_ms);
	int (*qp_batch_begin)(struct nvmk_qpair *qp);
	int (*qp_batch_end)(struct nvmk_qpair *qp);
	int (*qp_irq_fd)(const struct nvmk_qpair *qp);
	void (*qp_destroy)(struct nvmk_qpair *qp);
};

/* The NVMe-queue path: the table (io_ops.c) and its members, in ns_state.c
 * (handles), ns_io.c (submission), ns_sync.c (synchronous wrappers),
 * ns_resv.c (reservations) and qpair.c (queue pairs). */
extern const struct drv_io_ops drv_nvme_io_ops;
void drv_nvme_ns_close(struct nvmk_ns *ns);
void drv_nvme_ns_info(const struct nvmk_ns *ns, struct nvmk_ns_info *info);
int drv_nvme_submit_rw(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
		       const struct nvmk_dma_buf *buf, size_t off, uint64_t slba, uint32_t nlb,
		       uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg);
int drv_nvme_submit_rwv(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
			const struct iovec *iov, int iovcnt, uint64_t slba, uint32_t nlb,
			uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg);
int drv_nvme_submit_flush(struct nvmk_ns *ns, struct nvmk_qpair *qp, nvmk_cpl_fn cb,
			  void *cb_arg);
int drv_nvme_submit_write_zeroes(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint64_t slba,
				 uint64_t nlb, uint32_t io_flags, nvmk_cpl_fn cb, void *cb_arg);
int drv_nvme_submit_deallocate(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			       const struct nvmk_range *ranges, unsigned nr, nvmk_cpl_fn cb,
			       void *cb_arg);
int drv_nvme_sync_rwv(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc,
		      const struct iovec *iov, int iovcnt, uint64_t slba, uint32_t nlb);
int drv_nvme_sync_flush(struct nvmk_ns *ns, struct nvmk_qpair *qp);
int drv_nvme_sync_write_zeroes(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint64_t slba,
			       uint64_t nlb, uint32_t io_flags);
int drv_nvme_sync_deallocate(struct nvmk_ns *ns, struct nvmk_qpair *qp,
			     const struct nvmk_range *ranges, unsigned nr);
int drv_nvme_sync_resv(struct nvmk_ns *ns, struct nvmk_qpair *qp, uint8_t opc, uint32_t cdw10,
		       uint32_t cdw11, void *data, size_t len);
int drv_nvme_qp_process(struct nvmk_qpair *qp, unsigned max);
int drv_nvme_qp_wait(struct nvmk_qpair *qp, int timeout_ms);
int drv_nvme_qp_batch_begin(struct nvmk_qpair *qp);
int drv_nvme_qp_batch_end(struct nvmk_qpair *qp);
int drv_nvme_qp_irq_fd(const struct nvmk_qpair *qp);
void drv_nvme_qp_destroy(struct nvmk_qpair *qp);
/* kernel_ns.c */
extern const struct drv_io_ops drv_kernel_io_ops;

/* The table serving an asynchronous call on @ns and @qp, or NULL when they
 * belong to different paths. */
static inline const struct drv_io_ops *drv_io_ops_of(const struct nvmk_ns *ns,
						     const struct nvmk_qpair *qp)
{
	return ns->ops == qp->ops ? ns->ops : NULL;
}

#endif /* NVMK_DRV_IO_OPS_H */
