/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep kernel namespace path: a struct nvmk_ns served by the Linux kernel
 * NVMe driver (a /dev/nvmeXnY block device) through io_uring, for
 * OPENHCL_NVME_VFIO off (DESIGN.md: the kernel driver is the default).
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
 * controller: nvmk_ns_ctrl returns NULL, so there are no qpairs and no DMA
 * memory; the asynchronous nvmk_ns_submit_* functions and the reservation
 * calls must not be used on a kernel namespace (the submit fast path does not
 * check: its contract already requires a qpair of the namespace's
 * controller). Reservations return -EOPNOTSUPP.
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
 *        served buffered with 512-byte blocks), or a PCI address
 *        ("0000:00:03.0") of a function bound to the kernel's nvme driver, in
 *        which case the block device of namespace @nsid is found in sysfs
 * @nsid: the namespace for a PCI address; for a path, 0 or the namespace ID
 *        the block device reports (checked when sysfs has it)
 * @out:  the handle, closed with nvmk_ns_close
 * Return: 0, -ENODEV (no such function/namespace, or not bound to nvme),
 *         -ENOTBLK (neither a block device nor a regular file), -ENOSYS or
 *         -EPERM (io_uring unavailable), or the errno of open/ioctl.
 */
int nvmk_kns_open(const char *dev, uint32_t nsid, struct nvmk_ns **out);

/** nvmk_ns_is_kernel - true when @ns came from nvmk_kns_open. */
bool nvmk_ns_is_kernel(const struct nvmk_ns *ns);

/**
 * nvmk_kns_find_blockdev - the block device ("/dev/nvme0n1") of namespace
 * @nsid of the PCI function @pci_addr bound to the kernel nvme driver.
 * Return: 0, -ENODEV when the function has no such namespace or is not bound
 *         to nvme, -ENAMETOOLONG.
 */
int nvmk_kns_find_blockdev(const char *pci_addr, uint32_t nsid, char *path, size_t len);

#endif /* NVMEKEEP_KERNEL_NS_H */
