/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep driver: I/O queue pairs (struct nvmk_qpair): creation, the
 * calling thread's qpair, completion processing, waiting, batches of
 * submissions, statistics. The threading rules are in nvmekeep/driver.h.
 * Part of nvmekeep/driver.h (include that).
 */
#ifndef NVMEKEEP_DRIVER_QPAIR_H
#define NVMEKEEP_DRIVER_QPAIR_H

#include <stdbool.h>
#include <stdint.h>

#include "nvmekeep/driver/ctrl.h"

struct nvmk_qpair;

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
 * checks deadlines and handles a failed/reset controller (nvmekeep/driver/ctrl.h,
 * "Timeouts and recovery").
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
 * through the timeouts of nvmekeep/driver/ctrl.h).
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

#endif /* NVMEKEEP_DRIVER_QPAIR_H */
