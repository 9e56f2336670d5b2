/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep driver: save and restore of a controller (servicing): the saved
 * state, keep-alive, restore safety, and the handles handed back after a
 * restore. Part of nvmekeep/driver.h (include that).
 *
 * ---------------------------------------------------------------------------
 * Save and restore (servicing)
 * ---------------------------------------------------------------------------
 * The driver objects of a live controller are destroyed and rebuilt (in the
 * same process, or by a successor after exec) while the device keeps
 * running. The saved state is a versioned protobuf-c blob
 * (src/driver/ctrl_state.proto): an envelope {format version, CRC32C,
 * payload}. A newer binary restores an older binary's state; a state of a
 * newer format is refused ("saved state format 3 is newer than this
 * binary's 2: downgrade refused"); a truncated, corrupted or inconsistent
 * state is refused before anything is allocated or the device is touched.
 *
 * Keep-alive sequence:
 *   1. The caller stops its clients: no thread may submit, process or wait
 *      on any qpair of the controller, and no synchronous wrapper may be
 *      running, from the call to nvmk_ctrl_save on (completion callbacks are
 *      not run by save). Submissions that race anyway fail with -EAGAIN.
 *   2. nvmk_ctrl_save(ctrl, {.keep_alive = true}) stops the admin thread,
 *      snapshots the controller (queues, pending commands with their
 *      tokens, AER state, namespaces) and leaves the device enabled with
 *      its commands in flight.
 *   3. nvmk_ctrl_detach(ctrl) frees the host-side objects without touching
 *      the device: no register write, no queue deleted, interrupts left
 *      enabled, the pool blocks left Allocated (and mapped for the device).
 *      Every struct nvmk_qpair / nvmk_ns handle of the controller dies.
 *   4. (exec: the successor inherits the device, the pool fd and the blob.)
 *      The pool is handed over with nvmk_dma_pool_open() on the pool fd
 *      (in one process: on a dup of it) and set as the backing's pool.
 *   5. nvmk_ctrl_restore() attaches without a reset, reclaims every queue
 *      block by (device name, tag) and maps it at its saved IOVA, rebuilds
 *      the admin queue and every I/O queue, and delivers the completions
 *      that arrived meanwhile to the original requests through
 *      opts.resolve. No IDENTIFY and no queue creation is sent.
 *   6. The caller gets its handles back (nvmk_ctrl_restored_qpair /
 *      nvmk_ctrl_restored_ns), calls nvmk_dma_pool_finish_restore() once
 *      every device is restored, and resumes its clients.
 *
 * Keep-alive needs the queue memory in a private pool (struct
 * nvmk_backing.pool): without one, save with keep_alive fails -EOPNOTSUPP.
 * Data buffers of requests in flight are the caller's: they must stay
 * mapped for the device across the blackout. Pool buffers from
 * nvmk_ctrl_dma_alloc_tagged (a tag the caller names) or nvmk_ctrl_dma_alloc
 * (learn the tag with nvmk_dma_tag) cross exec: before detach the caller
 * records (tag, nvmk_dma_buf_iova(buf, 0)) and calls
 * nvmk_backing_dma_forget(b, buf); the successor calls
 * nvmk_backing_dma_reclaim(b, tag, iova, buf) before nvmk_ctrl_restore (so
 * that completions delivered by the restore find the data), and frees them
 * later with nvmk_ctrl_dma_free.
 *
 * Restore safety (docs/architecture.md, "Restore safety"):
 *  - Only the latest saved state of a device restores, and only once. Each
 *    save records a new generation in the pool's slot table and in the
 *    state; a restore of an older state, of one already restored (a
 *    successor re-run after a crash), or of one saved before a fresh
 *    nvmk_ctrl_open fails -ESTALE before anything is touched. A state of
 *    format 1 (no generation) restores only while the pool has no record of
 *    the device. Without a pool (keep-alive off, ephemeral memory) nothing is
 *    recorded or checked: such a restore is a bring-up and replays nothing.
 *    After -ESTALE the way forward is a fresh bring-up: call
 *    nvmk_dma_pool_finish_restore (the old queue blocks become Leaked) and
 *    nvmk_ctrl_open, then nvmk_dma_pool_release_leaked.
 *  - A refused restore claims no pool block (all are checked first, claims
 *    are given back on a later failure): the right state can follow on the
 *    same pool handle.
 *  - One controller per device: nvmk_ctrl_open or nvmk_ctrl_restore on a
 *    backing that has one (struct nvmk_backing.ctrl_owner) fails -EBUSY
 *    before any register access, whatever the state (keep-alive off too).
 *    Across processes the VFIO group file is the lock; a successor inherits
 *    it.
 *  - A keep-alive restore sends one admin command, Get Features (Number of
 *    Queues), at the restored admin SQ tail, and waits at most 1 s (at most
 *    the admin timeout): a device reset and enabled again behind the state
 *    does not answer it where a running one must. Then the controller is
 *    brought up afresh as recovery does (no IDENTIFY) and every request that
 *    was in flight completes once with -ETIMEDOUT (in the restore, or at its
 *    qpair's first process call with defer_completions).
 *
 * Request context: the token saved for a pending request is the cb_arg it
 * was submitted with (as an integer; a split request saves its parent's).
 * On restore, opts.resolve(ctx, token, &cb, &cb_arg) gives the callback
 * and argument to complete it with (asked once per pending request, during
 * nvmk_ctrl_restore); a request whose token does not resolve
 * (resolve returns nonzero, or there is no resolver) is still tracked, and
 * its completion is dropped with a warning naming the token. Callers that
 * cross exec therefore pass an opaque id as cb_arg (or a pointer they can
 * map back), not a pointer that dies with the process.
 *
 * Without keep-alive: save drains in-flight I/O (bounded by
 * opts.drain_timeout_ms), shuts the controller down (CC.SHN, then
 * CC.EN = 0), fails what did not complete with -ETIMEDOUT (after the
 * device stopped touching memory), and saves the minimal state (options,
 * open namespaces, qpairs). Restore of that state is a normal bring-up
 * that re-creates the saved qpairs and namespace handles.
 */
#ifndef NVMEKEEP_DRIVER_SAVED_STATE_H
#define NVMEKEEP_DRIVER_SAVED_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/driver/completion.h"
#include "nvmekeep/driver/ctrl.h"

struct nvmk_qpair;
struct nvmk_ns;

#define NVMK_CTRL_STATE_VERSION 2 /* format this binary writes and reads up to */

struct nvmk_save_opts {
	bool keep_alive;	   /* see above */
	uint32_t drain_timeout_ms; /* keep_alive false: bound on the drain, 0 = io_timeout_ms */
};

/*
 * Resolver of restored requests: @token is what was saved for a request (its
 * cb_arg); fill @cb and @cb_arg. Return 0, or nonzero when unknown (the
 * completion is then dropped with a warning). Called from nvmk_ctrl_restore
 * only, once per pending request, before it returns.
 */
typedef int (*nvmk_resolve_fn)(void *ctx, uint64_t token, nvmk_cpl_fn *cb, void **cb_arg);

struct nvmk_restore_opts {
	nvmk_resolve_fn resolve; /* may be NULL: pending completions are dropped */
	void *resolve_ctx;
	nvmk_event_fn event_cb; /* asynchronous events of the restored controller */
	void *event_ctx;
	/* Completions found at restore are delivered by nvmk_ctrl_restore itself,
	 * their callbacks running in its thread (false), or left for the qpair's
	 * first process call (true). */
	bool defer_completions;
};

/**
 * nvmk_ctrl_save - quiesce and snapshot a controller.
 * @ctrl: the controller; its clients are stopped (see above)
 * @opts: NULL = keep-alive
 * @blob: receives the state, allocated with malloc (caller frees)
 * @len:  receives its size
 *
 * After success, the only valid call on @ctrl is nvmk_ctrl_detach (keep-alive
 * or not). On failure the controller is resumed as it was (keep-alive) or
 * stays shut down (a failed drain/shutdown is still reported by the blob).
 * Return: 0, -EOPNOTSUPP (keep-alive without a private pool), -EIO/-ENODEV
 * (controller failed), -ENOMEM.
 */
int nvmk_ctrl_save(struct nvmk_ctrl *ctrl, const struct nvmk_save_opts *opts, void **blob,
		   size_t *len);

/**
 * nvmk_ctrl_detach - free the host-side objects of a saved controller
 * without touching the device (see above). Also valid on a controller that
 * was not saved: then it is nvmk_ctrl_close without the device part. NULL is
 * a no-op.
 */
void nvmk_ctrl_detach(struct nvmk_ctrl *ctrl);

/**
 * nvmk_ctrl_restore - rebuild a controller from a saved state.
 * @b:    the backing of the same device (same name); its pool is the handed
 *        over one (keep-alive)
 * @blob: state from nvmk_ctrl_save, @len bytes
 * @opts: resolver and event callback, NULL for none
 * @out:  the controller
 *
 * Everything in @blob is validated first (as nvmk_ctrl_state_validate),
 * then the device's ownership and the state's generation, then (keep-alive)
 * the device's registers (CC.EN = 1, CSTS.RDY = 1, no CSTS.CFS, CAP
 * unchanged) and every pool block, before anything is allocated or claimed;
 * a refusal is logged with its reason and leaves the device and the pool
 * untouched. A device found reset behind the state is brought up afresh
 * (see above); the restore then returns 0, and a controller whose fresh
 * bring-up failed is returned failed (nvmk_ctrl_failed).
 * Return: 0, -EBADMSG (corrupt or inconsistent state), -EPROTONOSUPPORT
 * (newer format), -ENODEV (device gone / other device), -EBUSY (the device
 * has a controller), -ESTALE (not the latest saved state, already restored,
 * or a pool block declared leaked), -EIO (controller not running, or fatal
 * status), -ENOENT (a pool block is missing), -ENOMEM.
 */
int nvmk_ctrl_restore(struct nvmk_backing *b, const void *blob, size_t len,
		      const struct nvmk_restore_opts *opts, struct nvmk_ctrl **out);

/*
 * Adoption: a third way into a controller, next to open (a bring-up, which
 * resets) and restore (from a saved state). A device that outlived its
 * previous driver without a saved state -- the driver's process crashed --
 * may report what it holds (struct nvmk_dev_view, from the backing: a
 * --persist nvmekeep-emu hands back the crashed client's private pool and
 * its queue state, docs/vfio-user.md). nvmk_ctrl_adopt takes the queues back
 * from that pool at the device's addresses, lets every command the device
 * holds except AERs complete into the old completion queues and drops those
 * completions (their requesters are gone), waits for them before any
 * tracker is used again (an old PRP list may be read until its command
 * completes), then adopts the idle queues at the device's positions (I/O
 * queues go to nvmk_ctrl_get_qpair), the AERs as outstanding, and marks any
 * saved state of the device stale. No CC.EN change, no queue creation;
 * Identify Controller and the namespace scan are read.
 */
struct nvmk_adopt_opts {
	struct nvmk_ctrl_opts ctrl; /* the controller's options (depths of adopted queues
				       are the device's) */
	uint32_t drain_timeout_ms;  /* bound on the wait for held commands, 0 = 5000 */
};

/**
 * nvmk_ctrl_adopt - adopt the controller a crashed driver left (see above).
 * @b:    backing that attached without a reset and has a device view
 * @opts: NULL for defaults
 * @out:  the controller
 * Nothing is reset on failure: the caller resets (nvmk_ctrl_open_or_adopt
 * does). The device view is used up either way.
 * Return: 0, -EOPNOTSUPP (no device view or no pool), -EBUSY (the device
 * has a controller), -EPROTO (the view does not fit the pool: missing block,
 * other address, tracker geometry), -ETIMEDOUT (a held command did not
 * complete in time), -EIO/-ENODEV (controller failed or gone), -ENOMEM.
 */
int nvmk_ctrl_adopt(struct nvmk_backing *b, const struct nvmk_adopt_opts *opts,
		    struct nvmk_ctrl **out);

/**
 * nvmk_ctrl_open_or_adopt - what to do with a device being opened: adopt
 * its controller when the backing offers a device view, else (and when the
 * adoption fails) reset it and bring it up (nvmk_ctrl_open). Which way it
 * went and why is logged; @adopted (may be NULL) tells.
 */
int nvmk_ctrl_open_or_adopt(struct nvmk_backing *b, const struct nvmk_ctrl_opts *opts,
			    struct nvmk_ctrl **out, bool *adopted);

/**
 * nvmk_ctrl_state_validate - decode and validate a saved state without a
 * device (fuzzing, tools). @err (may be NULL) receives the reason.
 * Return: 0, -EBADMSG, -EPROTONOSUPPORT, -ENOMEM.
 */
int nvmk_ctrl_state_validate(const void *blob, size_t len, char *err, size_t errlen);

/**
 * nvmk_ctrl_restored_qpair - the restored qpair that had queue ID @qid when
 * saved. Qpairs created with nvmk_qpair_create are handed back once each
 * (the caller owns them again, in the same mode, depth and sharing). Those
 * of nvmk_ctrl_get_qpair are returned as well (every call) but stay the
 * controller's; nvmk_ctrl_get_qpair hands them out again first, one per
 * calling thread, before it creates new ones. Return: the qpair, or NULL.
 */
struct nvmk_qpair *nvmk_ctrl_restored_qpair(struct nvmk_ctrl *ctrl, uint16_t qid);

/**
 * nvmk_ctrl_restored_ns - one restored namespace handle of @nsid (with the
 * flags it was opened with). Each saved handle is handed back once; call
 * again for the next handle of the same nsid. Return: the handle, or NULL.
 */
struct nvmk_ns *nvmk_ctrl_restored_ns(struct nvmk_ctrl *ctrl, uint32_t nsid);

#endif /* NVMEKEEP_DRIVER_SAVED_STATE_H */
