/* SPDX-License-Identifier: MIT */
/*
 * Servicing of the NBD export (docs/servicing.md): hand the listening
 * sockets and the client connections of a running server to a successor
 * process across execve, so that clients see a pause and not a disconnect.
 *
 *   predecessor: nvmk_export_quiesce -> nvmk_export_save -> (nvmk_mgr_save,
 *                execve with the saved fds inherited)
 *   successor:   nvmk_export_create (same options) -> nvmk_mgr_restore ->
 *                nvmk_export_restore -> nvmk_export_start
 *
 * Quiesce stops reading at request boundaries (a request whose header or
 * payload is partly read is read to its end), sends every reply that is
 * ready, stops accepting connections (new ones wait in the listen backlog,
 * which the successor inherits), and parks the I/O threads and the acceptor.
 * Requests whose NVMe command is at the device stay there with keep-alive:
 * the state records each one (thread, slot = its token and its buffer slot,
 * connection, NBD handle, command, offset, length), the driver saves the
 * command with its token, and the successor answers it with its original
 * handle when the completion comes (during the blackout or after). Requests
 * a client sends meanwhile wait, unread, in the socket buffers that the
 * successor reads.
 */
#ifndef NVMEKEEP_EXPORT_STATE_H
#define NVMEKEEP_EXPORT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvmekeep/driver.h"

struct nvmk_export_server;

/* Format of the export state this binary writes and reads up to. */
#define NVMK_EXPORT_STATE_VERSION 1

/**
 * nvmk_export_quiesce - bring a started server to rest (see above).
 * @timeout_ms:    bound on the wait for partly read requests, replies to send
 *                 and (see @keep_inflight) commands at the device
 * @keep_inflight: leave NVMe commands at the device (keep-alive: the driver
 *                 saves them, the successor answers them); false: wait until
 *                 every request is answered (the save drains the device)
 * Return: 0 (threads parked: only save, resume or destroy may follow), or
 *         -ETIMEDOUT / -EINVAL; on failure the server is resumed.
 */
int nvmk_export_quiesce(struct nvmk_export_server *srv, unsigned timeout_ms, bool keep_inflight);

/** nvmk_export_resume - undo a quiesce (servicing abandoned before exec). */
int nvmk_export_resume(struct nvmk_export_server *srv);

/**
 * nvmk_export_save - after nvmk_export_quiesce, record the listeners, the
 * connections in transmission (negotiated options, export, limits) and each
 * I/O thread's queue pair (qid) and request buffer (pool tag) per device, and
 * clear FD_CLOEXEC on every socket recorded. Connections still in their
 * handshake, or closing, are closed (the client retries its connect).
 * @blob/@len: receives the state (malloc'd)
 * Return: 0, -ENOMEM, -EINVAL (not quiesced).
 */
int nvmk_export_save(struct nvmk_export_server *srv, void **blob, size_t *len);

/** nvmk_export_save_abort - set FD_CLOEXEC again on what a save cleared. */
void nvmk_export_save_abort(struct nvmk_export_server *srv);

/**
 * nvmk_export_restore - in the successor, before nvmk_export_start: export
 * the saved devices again, taking each I/O thread's restored queue pair
 * (nvmk_ctrl_restored_qpair: no queue is created) and request buffer
 * (nvmk_mgr_dma_get) back, adopt the listening sockets and the connections.
 * The state is checked first (format version, every fd open and a socket,
 * thread numbers, export names known, limits against the export).
 * @fail_inflight: the devices were brought up afresh instead of restored:
 *        every request that was at the device is answered with EIO (its
 *        command is gone with the old queues)
 * Return: 0, -EBADMSG (corrupt), -EPROTONOSUPPORT (newer format), -EINVAL
 *         (does not fit this server: other thread count), or the error of
 *         adding a device. Connections whose export is gone are closed
 *         (logged); the others are adopted.
 */
int nvmk_export_restore(struct nvmk_export_server *srv, const void *blob, size_t len,
			bool fail_inflight);

/**
 * nvmk_export_resolve - resolver for nvmk_mgr_restore (struct
 * nvmk_mgr_restore_opts.resolve, with defer_completions = true): maps the
 * token of an NBD request's NVMe command to the server's completion
 * callback, which the successor's I/O thread runs at its first process call.
 */
int nvmk_export_resolve(void *ctx, uint64_t token, nvmk_cpl_fn *cb, void **cb_arg);

/**
 * nvmk_export_first_reply_ns - after nvmk_export_restore: when the first
 * reply (of any connection) was sent, CLOCK_MONOTONIC ns, 0 = none yet. The
 * end of the blackout as clients see it.
 */
uint64_t nvmk_export_first_reply_ns(const struct nvmk_export_server *srv);

/** nvmk_export_state_check - validate an export state without a server (tests). */
int nvmk_export_state_check(const void *blob, size_t len);

#endif /* NVMEKEEP_EXPORT_STATE_H */
