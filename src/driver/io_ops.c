// SPDX-License-Identifier: MIT
/*
 * The NVMe-queue path's table of namespace and queue-pair operations
 * (io_ops.h); the kernel path's is in kernel_ns.c.
 */
#include "driver/io_ops.h"

const struct drv_io_ops drv_nvme_io_ops = {
    .name = "nvme",
    .ns_close = drv_nvme_ns_close,
    .ns_info = drv_nvme_ns_info,
    .submit_rw = drv_nvme_submit_rw,
    .submit_rwv = drv_nvme_submit_rwv,
    .submit_flush = drv_nvme_submit_flush,
    .submit_write_zeroes = drv_nvme_submit_write_zeroes,
    .submit_deallocate = drv_nvme_submit_deallocate,
    .sync_rwv = drv_nvme_sync_rwv,
    .sync_flush = drv_nvme_sync_flush,
    .sync_write_zeroes = drv_nvme_sync_write_zeroes,
    .sync_deallocate = drv_nvme_sync_deallocate,
    .sync_resv = drv_nvme_sync_resv,
    .qp_process = drv_nvme_qp_process,
    .qp_wait = drv_nvme_qp_wait,
    .qp_batch_begin = drv_nvme_qp_batch_begin,
    .qp_batch_end = drv_nvme_qp_batch_end,
    .qp_irq_fd = drv_nvme_qp_irq_fd,
    .qp_destroy = drv_nvme_qp_destroy,
};
