/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep driver: the controller (struct nvmk_ctrl): options, bring-up and
 * shutdown, accessors, admin passthrough, asynchronous events, DMA memory
 * of the controller, and the timeout and recovery rules. Part of
 * nvmekeep/driver.h (include that).
 *
 * ---------------------------------------------------------------------------
 * Timeouts and recovery (Linux-like: admin 60 s, I/O 30 s by default)
 * ---------------------------------------------------------------------------
 *  Deadlines are measured on a coarse clock kept by the admin thread (tick =
 *  min(opts.health_check_ms, timeouts / 4)) and checked while a qpair's
 *  completions are processed, by its user: no other thread ever touches an
 *  exclusive qpair, so a qpair nobody processes is not checked (there is
 *  nothing to deliver to then either). Admin commands check their own
 *  deadline while they wait. nvmk_qpair_wait never sleeps longer than one
 *  tick, so a completion whose interrupt was lost is found at the next tick
 *  and delivered normally (a warning is logged once per qpair).
 *  On an I/O timeout, CSTS is checked first (fatal status or removal fail the
 *  controller); an entry at the CQ head that names the command but carries
 *  the wrong phase tag fails the controller (-EIO); otherwise an Abort is
 *  sent and the aborted command completes with -ETIMEDOUT. If the Abort
 *  fails, is refused, or times out (or the command is still missing one more
 *  timeout later), the controller is reset: disabled, admin queue re-created,
 *  features re-applied; every outstanding command completes with -ETIMEDOUT,
 *  and each I/O qpair re-creates its queues on the device the next time its
 *  user calls into it. The thread that detects the timeout does the
 *  recovery, so process/wait may block for up to the admin timeout.
 *  The admin thread reads CSTS every tick: all ones (surprise removal) or
 *  CFS fail the controller and wake every waiter.
 */
#ifndef NVMEKEEP_DRIVER_CTRL_H
#define NVMEKEEP_DRIVER_CTRL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/spec.h"
#include "nvmekeep/driver/completion.h"

struct nvmk_ctrl;

enum nvmk_cpl_mode {
	NVMK_CPL_INTERRUPT = 0, /* CQ raises its MSI-X vector; nvmk_qpair_wait sleeps */
	NVMK_CPL_POLL = 1,	/* no interrupt; the user polls */
};

enum nvmk_dbbuf_mode {
	NVMK_DBBUF_AUTO = 0, /* shadow doorbells when OACS bit 8 says the device has them */
	NVMK_DBBUF_OFF = 1,  /* always write doorbell registers */
};

enum nvmk_event_type {
	NVMK_EVENT_NS_ADDED = 1, /* a namespace became active */
	NVMK_EVENT_NS_RESIZED,	 /* size changed: old/new_nblocks */
	NVMK_EVENT_NS_REMOVED,	 /* no longer active; I/O on it fails -ENODEV */
	NVMK_EVENT_NS_CHANGED,	 /* some other attribute changed */
	NVMK_EVENT_CTRL_RESET,	 /* recovery reset the controller (err = cause) */
	NVMK_EVENT_CTRL_FAILED,	 /* controller failed for good (err = -EIO/-ENODEV) */
};

struct nvmk_event {
	enum nvmk_event_type type;
	uint32_t nsid;	      /* NS events */
	uint64_t old_nblocks; /* NS_RESIZED */
	uint64_t new_nblocks; /* NS_RESIZED */
	int err;	      /* CTRL_* events */
};

typedef void (*nvmk_event_fn)(void *ctx, struct nvmk_ctrl *ctrl, const struct nvmk_event *ev);

/*
 * Controller options. All-zero is the default for every field, so
 * `struct nvmk_ctrl_opts o = {0};` (or passing NULL) gives:
 */
struct nvmk_ctrl_opts {
	uint16_t admin_queue_depth;   /* entries, 0 = 32; clamped to [2, min(4096, MQES+1)] */
	uint32_t io_queue_depth;      /* entries, 0 = 256 (64 on no-IOMMU VFIO without a
				       * private pool: one page); clamped to [2, MQES+1] */
	uint16_t max_io_queues;	      /* 0 = number of online CPUs; the device may grant fewer */
	enum nvmk_cpl_mode cpl_mode;  /* default for nvmk_ctrl_get_qpair qpairs */
	uint32_t admin_timeout_ms;    /* 0 = 60000 */
	uint32_t io_timeout_ms;	      /* 0 = 30000 */
	uint32_t shutdown_timeout_ms; /* 0 = Identify RTD3E, or 10000 when RTD3E is 0 */
	uint32_t health_check_ms;     /* admin thread tick (CSTS check, shared qpair
					 deadlines), 0 = 100 */
	enum nvmk_dbbuf_mode dbbuf;
	uint64_t host_id;	/* Host Identifier (Set Features 81h) for reservations,
				   0 = do not set */
	nvmk_event_fn event_cb; /* asynchronous events, may be NULL */
	void *event_ctx;
};

/**
 * nvmk_ctrl_open - bring a controller up (NVMe Base 2.0, 3.5.1).
 * @b:    the backing; it stays owned by the caller and must outlive the ctrl;
 *        one controller per backing (-EBUSY, before any register access)
 * @opts: options, NULL for defaults
 * @out:  the controller
 *
 * Runs the bring-up state machine: disable (if CC.EN or CSTS.RDY), check CAP
 * (MQES >= 1, CSS has NVM, MPSMIN = 0), admin queue, enable, Identify
 * Controller, Number of Queues, Async Event Configuration, AERs, Doorbell
 * Buffer Config. Each state has a timeout; a failure is logged naming the
 * state. Starts the admin thread.
 * The bring-up resets the device: saved states of it no longer restore. A
 * backing that offers a crashed driver's controller for adoption
 * (nvmk_backing_device_view) gets a function reset first, and that driver's
 * blocks go back to the pool (nvmk_ctrl_open_or_adopt adopts instead).
 * Return: 0, -EBUSY (the backing has a controller), -EINVAL (unsupported
 * capabilities), -ETIMEDOUT (a state timed out), -EIO (CSTS.CFS or a failed
 * admin command), -ENODEV, -ENOMEM.
 */
int nvmk_ctrl_open(struct nvmk_backing *b, const struct nvmk_ctrl_opts *opts,
		   struct nvmk_ctrl **out);

/**
 * nvmk_ctrl_close - shut down and free: delete remaining I/O queues, CC.SHN =
 * normal, wait CSTS.SHST = complete (bounded by opts.shutdown_timeout_ms, or
 * by RTD3E clamped to 60 s, or 10 s without RTD3E), then CC.EN = 0. The
 * backing is left to the caller. NULL is a no-op.
 *
 * Commands still outstanding on any qpair complete exactly once, with
 * -ECANCELED, before close returns (their callbacks run in the closing
 * thread); no callback runs after. Queue memory is freed only once the
 * device let go of it (queues deleted, or CSTS.RDY = 0 after CC.EN = 0); a
 * device that never stops keeps it (leaked, logged). Namespace handles still
 * open stay valid for nvmk_ns_close and nvmk_ns_info (which then reports
 * removed) only; DMA buffers from nvmk_ctrl_dma_alloc are freed afterwards
 * with nvmk_ctrl_dma_free(NULL, buf) while the backing exists.
 */
void nvmk_ctrl_close(struct nvmk_ctrl *ctrl);

/** nvmk_ctrl_name - the device name (the backing's). */
const char *nvmk_ctrl_name(const struct nvmk_ctrl *ctrl);
/** nvmk_ctrl_identify - Identify Controller data read at bring-up. */
const struct nvme_id_ctrl *nvmk_ctrl_identify(const struct nvmk_ctrl *ctrl);
/** nvmk_ctrl_cap - the CAP register read at bring-up. */
uint64_t nvmk_ctrl_cap(const struct nvmk_ctrl *ctrl);
/** nvmk_ctrl_mdts_bytes - largest transfer of one command the driver issues
 *  (MDTS, capped at 2 MiB by the driver's PRP list space); larger requests
 *  are split. */
size_t nvmk_ctrl_mdts_bytes(const struct nvmk_ctrl *ctrl);
/** nvmk_ctrl_io_queues - number of I/O queue pairs the controller granted
 *  (Set Features Number of Queues, capped by opts.max_io_queues). */
unsigned nvmk_ctrl_io_queues(const struct nvmk_ctrl *ctrl);
/** nvmk_ctrl_backing - the backing the controller runs on. */
struct nvmk_backing *nvmk_ctrl_backing(const struct nvmk_ctrl *ctrl);
/** nvmk_ctrl_failed - 0 while usable, else the error every command now gets
 *  (-EIO after a fatal status or invalid completion, -ENODEV after removal). */
int nvmk_ctrl_failed(const struct nvmk_ctrl *ctrl);
/** nvmk_ctrl_reset - reset the controller as recovery does (see above).
 *  Return: 0, or the error that failed the controller. */
int nvmk_ctrl_reset(struct nvmk_ctrl *ctrl);

/**
 * nvmk_ctrl_admin_passthru - run one admin command synchronously.
 * @cmd: the SQE; the driver sets the CID, and PRP1/PRP2 when @buf is given
 *       (without @buf the caller's PRPs are passed on unchanged)
 * @buf: data buffer (any memory, bounced) or NULL; the direction comes from
 *       the opcode (Base 2.0 Figure 87)
 * @len: bytes of @buf
 * @cpl: optional, receives err/status/dw0
 * Return: 0 or negative errno (cpl->err).
 */
int nvmk_ctrl_admin_passthru(struct nvmk_ctrl *ctrl, const struct nvme_sqe *cmd, void *buf,
			     size_t len, struct nvmk_cpl *cpl);

/**
 * nvmk_ctrl_active_ns - the active namespace IDs (Identify CNS 02h), ascending.
 * Return: number written to @nsids (at most @max), or negative errno.
 */
int nvmk_ctrl_active_ns(struct nvmk_ctrl *ctrl, uint32_t *nsids, unsigned max);

/* ------------------------------------------------------------------------ */
/* DMA memory                                                               */
/* ------------------------------------------------------------------------ */

/**
 * nvmk_ctrl_dma_alloc - zeroed DMA memory mapped for this controller (wraps
 * nvmk_backing_dma_alloc). Buffers given to the asynchronous submit functions
 * must come from here. @size is rounded up to 4 KiB.
 * Return: 0 or negative errno.
 */
int nvmk_ctrl_dma_alloc(struct nvmk_ctrl *ctrl, size_t size, struct nvmk_dma_buf *buf);
/** nvmk_ctrl_dma_free - release a block from nvmk_ctrl_dma_alloc(_tagged),
 *  or one reclaimed with nvmk_backing_dma_reclaim; also after the controller
 *  failed, and after nvmk_ctrl_close with @ctrl NULL (the backing is found
 *  from the block; it must not be destroyed yet). */
void nvmk_ctrl_dma_free(struct nvmk_ctrl *ctrl, struct nvmk_dma_buf *buf);

#define NVMK_CTRL_DMA_TAG_PREFIX "user." /* caller-named tags start with it */

/**
 * nvmk_ctrl_dma_alloc_tagged - nvmk_ctrl_dma_alloc under a tag the caller
 * names, so that a successor can reclaim the buffer after exec (see "Save
 * and restore": data buffers of requests in flight).
 * @tag: NVMK_CTRL_DMA_TAG_PREFIX followed by letters, digits, '.', '_' or
 *       '-', at most NVMK_DMA_TAG_MAX characters in all; unique per device
 *       (the prefix keeps it apart from the driver's own blocks and from the
 *       numbered "user<N>" tags of nvmk_ctrl_dma_alloc)
 *
 * The tag of any pool block, named or numbered, can also be learnt with
 * nvmk_dma_tag(&buf->mem, ...). With an ephemeral backing (no pool) the tag
 * is only checked: ephemeral memory does not survive exec.
 * Return: 0, -EINVAL (bad tag, logged with the rule), -EEXIST (tag in use on
 *         this device), or the error of nvmk_ctrl_dma_alloc.
 */
int nvmk_ctrl_dma_alloc_tagged(struct nvmk_ctrl *ctrl, size_t size, const char *tag,
			       struct nvmk_dma_buf *buf);

#endif /* NVMEKEEP_DRIVER_CTRL_H */
