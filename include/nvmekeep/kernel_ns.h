/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep kernel namespace path: a struct nvmk_ns served by the Linux kernel
 * NVMe driver (a /dev/nvmeXnY block device) through io_uring, for
 * OPENHCL_NVME_VFIO off (the kernel driver then serves the device, which is
 * the default).
 *
 * The handle is a struct nvmk_ns: the synchronous namespace API of driver.h
 * works on it unchanged and dispatches to io_uring:
 *   nvmk_ns_read/readv/write/writev  O_DIRECT io_uring reads and writes (a
 *                                    buffer not aligned to the logical block
 *                                    size is bounced)
 *   nvmk_ns_compare                  read + byte compare (-EILSEQ on mismatch)
 *   nvmk_ns_flush                    io_uring fsync
 *   nvmk_ns_write_zeroes             BLKZEROOUT (regular file: fallocate
 *                                    ZERO_RANGE); NVMK_IO_DEAC is ignored
 *   nvmk_ns_deallocate               BLKDISCARD (regular file: PUNCH_HOLE)
 *   nvmk_ns_info, nvmk_ns_close      BLKGETSIZE64 / BLKSSZGET / sysfs
 * The @qp argument of those calls is ignored (pass NULL). There is no
 * controller: nvmk_ns_ctrl returns NULL. Reservations return -EOPNOTSUPP.
 *
 * Asynchronous calls need a kernel queue pair (nvmk_kns_qpair_create, one
 * io_uring ring): nvmk_ns_submit_read/write/compare/readv/writev/flush/
 * write_zeroes/deallocate, nvmk_qpair_process_completions, nvmk_qpair_wait,
 * nvmk_qpair_outstanding and nvmk_qpair_destroy work on it as on a VFIO
 * qpair. Differences:
 *   - Data buffers: any memory (no DMA mapping exists on this path). A
 *     struct nvmk_dma_buf is used through mem.vaddr only, so one from
 *     nvmk_dma_alloc_ephemeral (wrapped: {.mem = m}) or nvmk_ctrl_dma_alloc
 *     works; iovec elements have no PRP rules. A buffer or length not
 *     aligned to the logical block size of an O_DIRECT block device is
 *     bounced (one copy); page-aligned memory never is.
 *   - Range checks happen at submit: out of range -> -ERANGE, nlb 0 or a
 *     length that is not nlb blocks -> -EINVAL; nothing is queued then.
 *   - Completion: cpl.err = 0 or the -errno of the kernel (cqe->res);
 *     cpl.status = 0 on success, Compare Failure (2/85h) with -EILSEQ on a
 *     compare mismatch, otherwise Host Aborted Command (3/71h) as for every
 *     error the driver produces itself; cpl.dw0 = 0. A transfer cut short
 *     by the end of the device completes -ERANGE. Every accepted request
 *     completes exactly once.
 *   - Write Zeroes = fallocate(ZERO_RANGE) (NVMK_IO_DEAC ignored);
 *     Deallocate = fallocate(PUNCH_HOLE) per range, where -EOPNOTSUPP
 *     (no discard) counts as success: deallocation is advisory.
 *   - Interrupt mode: nvmk_qpair_wait sleeps in io_uring_wait_cqe with a
 *     timeout; poll mode peeks. NVMK_IO_FUA is ignored (flush instead).
 *   - A kernel namespace takes only kernel qpairs and a kernel qpair only
 *     kernel namespaces (else -EINVAL). nvmk_qpair_destroy waits for the
 *     requests in flight (the kernel may still touch their buffers) and
 *     completes them with -ECANCELED; destroy the qpair before closing the
 *     namespaces used on it.
 *   - Fast path: a kernel qpair never passes the VFIO fast-path gate (its
 *     fast_epoch matches no controller epoch), nor does a kernel namespace,
 *     so it costs the VFIO path nothing; every call goes through the
 *     out-of-line general paths, which hand it to the kernel implementation
 *     of the namespace and queue-pair operations.
 *
 * Threading: any thread; the handle's one ring is serialised by a mutex.
 */
#ifndef NVMEKEEP_KERNEL_NS_H
#define NVMEKEEP_KERNEL_NS_H

#include <stddef.h>
#include <stdint.h>

#include "nvmekeep/driver.h"

/**
 * nvmk_kns_open - open a namespace through the kernel NVMe driver.
 * @dev:  a block device path ("/dev/nvme0n1"), a regular file (tests: it is
 *        served buffered with 512-byte blocks), a PCI address
 *        ("0000:00:03.0" or "00:03.0") of a function bound to the kernel's
 *        nvme driver or a kernel controller ("/dev/nvme0"), in which two
 *        cases the block device of namespace @nsid (0 = 1) is found in sysfs
 *        (nvmk_dev_spec_parse decides which form @dev is)
 * @nsid: the namespace for a PCI address; for a path, 0 or the namespace ID
 *        the block device reports (checked when sysfs has it)
 * @out:  the handle, closed with nvmk_ns_close
 * Return: 0, -ENODEV (no such function/namespace, or not bound to nvme),
 *         -ENOTBLK (neither a block device nor a regular file), -ENOSYS or
 *         -EPERM (io_uring unavailable), or the errno of open/ioctl.
 */
int nvmk_kns_open(const char *dev, uint32_t nsid, struct nvmk_ns **out);

/**
 * nvmk_kns_qpair_create - a queue pair for asynchronous I/O on kernel
 * namespaces: an io_uring ring of @opts->depth entries (0 = 256, at most
 * 4096), in @opts->mode; NVMK_QPAIR_SHARED adds a (recursive) lock as for a
 * VFIO qpair. Threading as a VFIO qpair (driver.h).
 * Return: 0, -EINVAL (not a kernel namespace, bad depth), -ENOMEM, or the
 *         io_uring setup error (-ENOSYS, -EPERM: io_uring unavailable).
 */
int nvmk_kns_qpair_create(struct nvmk_ns *ns, const struct nvmk_qpair_opts *opts,
			  struct nvmk_qpair **out);

/** nvmk_ns_is_kernel - true when @ns came from nvmk_kns_open. */
bool nvmk_ns_is_kernel(const struct nvmk_ns *ns);

/**
 * nvmk_kns_find_blockdev - the block device ("/dev/nvme0n1") of namespace
 * @nsid of the PCI function @pci_addr bound to the kernel nvme driver.
 * @pci_addr: "DDDD:BB:DD.F" or "BB:DD.F" (nvmk_dev_spec_parse)
 * Return: 0, -EINVAL (not a PCI address), -ENODEV when the function has no
 *         such namespace or is not bound to nvme, -ENAMETOOLONG.
 */
int nvmk_kns_find_blockdev(const char *pci_addr, uint32_t nsid, char *path, size_t len);

/**
 * nvmk_kns_find_blockdev_at - nvmk_kns_find_blockdev under sysfs root
 * @sysfs_root (NULL = "/sys"), for a PCI function ("DDDD:BB:DD.F",
 * "BB:DD.F": bus/pci/devices/ADDR/nvme/nvmeN/) or a kernel controller
 * ("/dev/nvmeX": class/nvme/nvmeX/). A namespace under a multipath head
 * ("nvmeScCnM") is reached through the head's disk, /dev/nvmeSnM.
 * Return: 0, -EINVAL (@dev is neither), -ENODEV (no such function,
 *         controller or namespace), -ENAMETOOLONG.
 */
int nvmk_kns_find_blockdev_at(const char *sysfs_root, const char *dev, uint32_t nsid, char *path,
			      size_t len);

#endif /* NVMEKEEP_KERNEL_NS_H */
