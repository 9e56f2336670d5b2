/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep: the whole public API in one include.
 *
 *   nvmekeep/spec.h       NVMe structures, registers, opcodes, status codes
 *   nvmekeep/log.h        logging (level, sink)
 *   nvmekeep/crc32c.h     the checksum of the saved states
 *   nvmekeep/emu.h        the NVMe controller emulator
 *   nvmekeep/dma.h        DMA memory: ephemeral blocks and the private pool
 *   nvmekeep/backing.h    what a controller sits on: emulator, VFIO
 *   nvmekeep/driver.h     the userspace NVMe driver: controller, queue pairs,
 *                         namespaces, save/restore (one header each under
 *                         nvmekeep/driver/, all included by driver.h)
 *   nvmekeep/kernel_ns.h  namespaces served by the kernel NVMe driver (io_uring)
 *   nvmekeep/manager.h    devices configured with OpenHCL's variables
 *   nvmekeep/export.h     the NBD server (wire protocol, exports)
 *   nvmekeep/version.h    NVMK_VERSION, nvmk_version()
 *
 * Build with `pkg-config --cflags --libs nvmekeep`.
 */
#ifndef NVMEKEEP_H
#define NVMEKEEP_H

#include "nvmekeep/spec.h"
#include "nvmekeep/log.h"
#include "nvmekeep/crc32c.h"
#include "nvmekeep/emu.h"
#include "nvmekeep/dma.h"
#include "nvmekeep/backing.h"
#include "nvmekeep/driver.h"
#include "nvmekeep/kernel_ns.h"
#include "nvmekeep/manager.h"
#include "nvmekeep/export.h"
#include "nvmekeep/version.h"

#endif /* NVMEKEEP_H */
