/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep userspace NVMe driver: controller bring-up and shutdown, per-thread
 * I/O queue pairs, namespaces, asynchronous events, timeouts and recovery.
 *
 * ---------------------------------------------------------------------------
 * Objects
 * ---------------------------------------------------------------------------
 *  struct nvmk_ctrl   one controller reached through a struct nvmk_backing.
 *  struct nvmk_qpair  one I/O submission/completion queue pair.
 *  struct nvmk_ns     a handle on one namespace (one owner, or several SHARED).
 *
 * ---------------------------------------------------------------------------
 * Threading rules
 * ---------------------------------------------------------------------------
 *  - nvmk_ctrl_open / nvmk_ctrl_close: one thread; close only after every
 *    other thread has stopped using the controller, its qpairs and its ns
 *    handles. Close destroys the qpairs that are left.
 *  - Control path (admin passthrough, nvmk_ns_open/close/info, accessors,
 *    nvmk_ctrl_reset, DMA alloc/free, qpair create/destroy): any thread,
 *    concurrently; admin commands are serialised by the controller's admin
 *    mutex. These calls may block (up to the admin timeout).
 *  - An EXCLUSIVE qpair (nvmk_qpair_create without NVMK_QPAIR_SHARED) belongs
 *    to one thread at a time: submit, process and wait on it from that thread
 *    only. It takes no lock, no atomic read-modify-write, and never allocates:
 *    this is the fast path.
 *  - A SHARED qpair (NVMK_QPAIR_SHARED) may be used by any number of
 *    threads: every submit and process call takes the qpair's (recursive)
 *    mutex.
 *  - nvmk_ctrl_get_qpair gives the calling thread its own qpair: use it from
 *    that thread only. It is EXCLUSIVE (no lock) while the controller has a
 *    queue for the thread, else SHARED with the other threads left without
 *    one.
 *  - Completion callbacks run in the thread that called
 *    nvmk_qpair_process_completions / nvmk_qpair_wait (or a sync wrapper) on
 *    that qpair, with the qpair's mutex held when it is SHARED. A callback may
 *    submit new commands on the same qpair; it must not destroy the qpair or
 *    close the controller.
 *  - Synchronous wrappers (nvmk_ns_read, ...) may be called from any thread;
 *    they submit on the given qpair (or the calling thread's from
 *    nvmk_ctrl_get_qpair when NULL) and process that qpair's completions until
 *    their own command is done, so they may run other requests' callbacks.
 *  - The asynchronous event callback (opts.event_cb) runs on the driver's
 *    admin thread. It may call nvmk_ns_info and other control-path functions,
 *    but not nvmk_ctrl_close.
 *
 * ---------------------------------------------------------------------------
 * Memory
 * ---------------------------------------------------------------------------
 *  The asynchronous submit functions take data buffers as DMA memory of THIS
 *  controller: a struct nvmk_dma_buf from nvmk_ctrl_dma_alloc plus a byte
 *  offset (the IOVA is computed inline, no lookup), or for the vectored forms
 *  struct iovec elements that lie inside such blocks (looked up in the
 *  backing's IOVA registry, a read-locked binary search). The synchronous
 *  wrappers accept ANY buffer: when it is not DMA memory of the controller
 *  they bounce through a DMA buffer allocated for the call (slow path).
 *
 * ---------------------------------------------------------------------------
 * Headers
 * ---------------------------------------------------------------------------
 *  nvmekeep/driver/completion.h   struct nvmk_cpl, the status -> errno table
 *  nvmekeep/driver/ctrl.h         struct nvmk_ctrl: options, bring-up, events,
 *                                 admin, DMA memory, timeouts and recovery
 *  nvmekeep/driver/qpair.h        struct nvmk_qpair: create, process, wait,
 *                                 batches, statistics
 *  nvmekeep/driver/ns.h           struct nvmk_ns: open, asynchronous I/O,
 *                                 synchronous wrappers, reservations
 *  nvmekeep/driver/saved_state.h  save, detach, restore (keep-alive)
 *  Each part includes what it needs; this header includes them all.
 */
#ifndef NVMEKEEP_DRIVER_H
#define NVMEKEEP_DRIVER_H

#include "nvmekeep/driver/completion.h"
#include "nvmekeep/driver/ctrl.h"
#include "nvmekeep/driver/qpair.h"
#include "nvmekeep/driver/ns.h"
#include "nvmekeep/driver/saved_state.h"
#include "nvmekeep/driver/io_handle.h"

#endif /* NVMEKEEP_DRIVER_H */
