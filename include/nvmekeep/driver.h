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
 * Completion, errors and status
 * ---------------------------------------------------------------------------
 *  A completion carries a negative errno and the NVMe status field (without
 *  the phase tag, see NVME_CQE_SF in spec.h). The mapping, applied whatever
 *  the DNR/More/CRD bits are (nvmk_status_to_errno):
 *
 *   status (SCT/SC)                                  err
 *   0/00 Success                                     0
 *   0/01 Invalid Opcode                              -EOPNOTSUPP
 *   0/02 Invalid Field, 0/13 PRP Offset Invalid      -EINVAL
 *   0/07 Abort Requested, 0/08 Aborted SQ Deletion   -ECANCELED (-ETIMEDOUT when
 *                                                    the driver aborted it)
 *   0/0B Invalid Namespace                           -ENODEV
 *   0/15 Operation Denied, 2/86 Access Denied        -EACCES
 *   0/1D Sanitize In Progress, 0/84 Format In Prog.  -EBUSY
 *   0/20 NS Write Protected, 1/82 Read Only          -EROFS
 *   0/21 Interrupted, 0/22 Transient Transport,
 *   0/82 NS Not Ready, 3/03 ANA Transition           -EAGAIN
 *   0/80 LBA Out of Range                            -ERANGE
 *   0/81 Capacity Exceeded                           -ENOSPC
 *   0/83 Reservation Conflict                        -EBADE (as Linux' block
 *                                                    layer reports it)
 *   1/00-02,08,09,0A,0C Invalid queue/vector/log/format, 1/80 Conflicting Attributes
 *                                                    -EINVAL
 *   1/03 Abort Limit, 1/05 AER Limit                 -EBUSY
 *   1/83 Command Size Limit Exceeded                 -E2BIG
 *   2/85 Compare Failure                             -EILSEQ
 *   3/71 Host Aborted Command                        -ECANCELED
 *   anything else (data transfer, internal, media)   -EIO
 *
 *  Errors the driver produces itself keep status = 3/71 (Host Aborted
 *  Command, Base 2.0 Figure 97) so "0" always means the device said success:
 *   -ETIMEDOUT  the command timed out, or was lost by the controller reset
 *               that recovery performed (recovery fails, it never retries;
 *               callers retry).
 *   -EIO        the controller failed: fatal status (CSTS.CFS) or it sent an
 *               invalid completion (bad CID, phase, SQ head, duplicate).
 *   -ENODEV     the controller was removed (registers read all ones), or the
 *               namespace was removed (then the device is not touched).
 *   -ECANCELED  the qpair was destroyed with the command outstanding.
 *  Every submitted command completes exactly once. A submit function that
 *  returns an error has not queued anything and will not call the callback.
 *  Once the controller failed, every call that needs the device (submit,
 *  process, wait, the synchronous wrappers, qpair create, namespace open,
 *  admin commands, reset) returns nvmk_ctrl_failed()'s error (-EIO or
 *  -ENODEV) without blocking, and nvmk_ctrl_get_qpair returns NULL.
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
#ifndef NVMEKEEP_DRIVER_H
#define NVMEKEEP_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/spec.h"

struct nvmk_ctrl;
struct nvmk_qpair;
struct nvmk_ns;

/* ------------------------------------------------------------------------ */
/* Completions                                                              */
/* ------------------------------------------------------------------------ */

struct nvmk_cpl {
	int err;	 /* 0 or negative errno (table above) */
	uint16_t status; /* NVMe status field without phase; 0 = success */
	uint32_t dw0;	 /* command specific (CQE DW0) */
};

typedef void (*nvmk_cpl_fn)(void *cb_arg, const struct nvmk_cpl *cpl);

/** nvmk_status_to_errno - the errno of an NVMe status field (table above). */
int nvmk_status_to_errno(uint16_t status);
/**
 * nvmk_status_str - a log string for a status field, e.g.
 * "LBA Out of Range (0/80h)". Writes into @buf (at least 64 bytes) and
 * returns it.
 */
const char *nvmk_status_str(uint16_t status, char *buf, size_t len);
/** nvmk_last_status - the NVMe status of the last synchronous wrapper call of
 *  the calling thread (nvmk_ns_read, ..., admin passthrough). */
uint16_t nvmk_last_status(void);

/* ------------------------------------------------------------------------ */
/* Controller                                                               */
/* ------------------------------------------------------------------------ */

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
 * The bring-up resets the device: saved states of it no longer restore.
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

/* ------------------------------------------------------------------------ */
/* Queue pairs                                                              */
/* ------------------------------------------------------------------------ */

#define NVMK_QPAIR_SHARED (1u << 0) /* usable from many threads (takes a lock) */

#define NVMK_HYBRID_POLL_MAX_US 1000000u /* largest hybrid_poll_us accepted */

struct nvmk_qpair_opts {
	enum nvmk_cpl_mode mode; /* interrupt (default) or poll */
	uint32_t depth;		 /* entries, 0 = controller's io_queue_depth */
	uint32_t flags;		 /* NVMK_QPAIR_* */
	/* Hybrid polling (interrupt mode only): nvmk_qpair_wait polls the CQ for
	 * up to this many microseconds, then sleeps on the interrupt as usual.
	 * 0 = sleep at once (plain interrupt mode). Not kept across a restore
	 * (a restored qpair waits in plain interrupt mode). */
	uint32_t hybrid_poll_us;
};

/**
 * nvmk_ctrl_get_qpair - the calling thread's queue pair (the one the
 * synchronous calls use when given NULL).
 *
 * Created on the thread's first call, in the controller's default mode, and
 * EXCLUSIVE: the thread's calls on it take no lock. The first call also
 * creates one SHARED qpair for the threads that will find no queue left
 * (granted too few, or the device refused a creation); those threads share
 * it (and any other SHARED per-thread qpair, round robin). With a single
 * queue, or when no second queue can be created, that first qpair is the
 * shared one. Use the qpair from the calling thread only. They live until
 * close: a thread that exits does not give its qpair back (later threads
 * share instead), and a thread using more than 8 controllers may be given a
 * new one for a controller it used before.
 * Return: the qpair, or NULL (controller failed, out of memory, or every
 * queue taken by nvmk_qpair_create and none left to share).
 */
struct nvmk_qpair *nvmk_ctrl_get_qpair(struct nvmk_ctrl *ctrl);

/**
 * nvmk_qpair_create - create an I/O queue pair (Create I/O CQ + SQ).
 * @opts: NULL for defaults (interrupt mode, exclusive)
 * Return: 0, -EBUSY (all granted queues in use), -ENOMEM, -EINVAL (its
 * doorbells would lie beyond BAR0; hybrid_poll_us on a polled qpair or
 * above NVMK_HYBRID_POLL_MAX_US), -EIO/-ENODEV (controller failed),
 * -EAGAIN (being saved), or the admin error of Create I/O CQ/SQ (a device
 * that neither creates nor refuses the queue is reset before its memory is
 * freed).
 */
int nvmk_qpair_create(struct nvmk_ctrl *ctrl, const struct nvmk_qpair_opts *opts,
		      struct nvmk_qpair **out);
/** nvmk_qpair_destroy - delete the queues; outstanding commands complete with
 *  -ECANCELED before it returns. A device that refuses (or does not answer)
 *  Delete I/O SQ/CQ is reset first, so that it no longer writes the queue
 *  memory. Not for qpairs from nvmk_ctrl_get_qpair. NULL is a no-op. */
void nvmk_qpair_destroy(struct nvmk_qpair *qp);

/** nvmk_qpair_id - the queue ID on the device (1..granted). */
uint16_t nvmk_qpair_id(const struct nvmk_qpair *qp);
/** nvmk_qpair_outstanding - requests submitted and not yet completed (a
 *  request split into several commands counts once). Same thread rules as
 *  submit on @qp; walks the queue's trackers (control path). */
unsigned nvmk_qpair_outstanding(const struct nvmk_qpair *qp);
/**
 * nvmk_qpair_irq_fd - the eventfd the qpair's interrupt signals, for callers
 * that wait in their own epoll/poll loop: when it is readable, read it (8
 * bytes, nonblocking) and call nvmk_qpair_process_completions. Also process
 * at least every io_timeout / 4 while commands are outstanding, so that
 * deadlines are checked. Return: the fd, or -1 (polled qpair, vector shared
 * with other queues, kernel qpair): then poll with a short timeout.
 */
int nvmk_qpair_irq_fd(const struct nvmk_qpair *qp);

/**
 * nvmk_qpair_process_completions - reap up to @max completions (0 = all that
 * are there), calling their callbacks; rings the CQ head doorbell once. Also
 * checks deadlines and handles a failed/reset controller (see above).
 * Return: number of commands completed (>= 0), or negative errno when the
 * qpair can no longer be used.
 */
int nvmk_qpair_process_completions(struct nvmk_qpair *qp, unsigned max);

/**
 * nvmk_qpair_batch_begin - defer the SQ tail doorbell of @qp.
 *
 * Commands submitted on @qp from here until the matching
 * nvmk_qpair_batch_end are written into the submission queue but the device
 * is told about them once, by one SQ tail doorbell write at the end (as the
 * block layer's plug or SPDK's delayed doorbell). Every submit path (the
 * contiguous, iovec, PRP-list and split ones) honours it. Batches nest; the
 * outermost end rings. Processing completions on @qp (also inside a wait or
 * a synchronous call) rings for what was submitted so far, so a caller that
 * waits inside a batch never waits for a command the device has not seen.
 * On a SHARED qpair the batch holds back every thread's submissions on it
 * until its end or the next completion processing; no lock is held between
 * begin and end. A submit that finds the queue full returns -EAGAIN as
 * usual: end the batch (or process completions) and submit again.
 * Return: 0, or -EOVERFLOW when batches nest more than 127 deep.
 */
int nvmk_qpair_batch_begin(struct nvmk_qpair *qp);

/**
 * nvmk_qpair_batch_end - end a batch of nvmk_qpair_batch_begin; the outermost
 * end writes the SQ tail doorbell once if anything was submitted.
 * Return: 0, or -EINVAL when no batch was open on @qp.
 */
int nvmk_qpair_batch_end(struct nvmk_qpair *qp);

/**
 * nvmk_qpair_wait - interrupt mode: process completions; if there were none,
 * (hybrid: poll up to hybrid_poll_us first, then) sleep on the queue's eventfd
 * up to @timeout_ms (-1 = forever, bounded
 * internally by the next command deadline) and process again. In poll mode it
 * polls until something completes or @timeout_ms passes.
 * Commands that recovery completes (a reset or failure since the last call)
 * count as completed. -1 waits as long as nothing completes: only while a
 * command is outstanding does something eventually complete (at the latest
 * through the timeouts above).
 * Return: number completed (> 0), -ETIMEDOUT when none within @timeout_ms,
 * or negative errno (-EIO/-ENODEV: controller failed, or the qpair could not
 * be re-created; -EAGAIN: being saved).
 */
int nvmk_qpair_wait(struct nvmk_qpair *qp, int timeout_ms);

/* One I/O queue pair as nvmk_ctrl_queue_stats reports it. */
struct nvmk_queue_stat {
	uint16_t qid;
	uint32_t depth;
	bool shared;	 /* NVMK_QPAIR_SHARED (and nvmk_ctrl_get_qpair qpairs) */
	bool poll;	 /* polled, no interrupt */
	bool client;	 /* made by nvmk_qpair_create (not nvmk_ctrl_get_qpair's) */
	int outstanding; /* commands in flight; -1 for exclusive qpairs (owned by
			    their thread, not read from another) */
};

/**
 * nvmk_ctrl_queue_stats - snapshot of the controller's I/O queue pairs.
 * @out: @max entries (may be NULL when @max is 0)
 * Control path; takes each SHARED qpair's mutex briefly.
 * Return: number of qpairs (may exceed @max), or -EINVAL.
 */
int nvmk_ctrl_queue_stats(struct nvmk_ctrl *ctrl, struct nvmk_queue_stat *out, unsigned max);

/* ------------------------------------------------------------------------ */
/* Namespaces                                                               */
/* ------------------------------------------------------------------------ */

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
 * completes the command. Return: 0, the completion error of the table above,
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

/* ------------------------------------------------------------------------ */
/* Save and restore (servicing)                                             */
/* ------------------------------------------------------------------------ */
/*
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

#endif /* NVMEKEEP_DRIVER_H */
