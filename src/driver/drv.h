/* SPDX-License-Identifier: MIT */
/*
 * Driver internals shared by the files of src/driver/: the controller, the
 * queue core used by the admin queue and the I/O queue pairs, trackers and
 * namespace state. Public API: include/nvmekeep/driver.h.
 */
#ifndef NVMK_DRV_H
#define NVMK_DRV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "driver/prp.h"
#include "driver/rlock.h"
#include "nvmekeep/backing.h"
#include "nvmekeep/driver.h"
#include "nvmekeep/log.h"
#include "nvmekeep/spec.h"

#define drv_likely(x)	__builtin_expect(!!(x), 1)
#define drv_unlikely(x) __builtin_expect(!!(x), 0)
/* fast-path helpers: one frame per public call */
#define drv_inline static inline __attribute__((always_inline))
/* On the function drv_q_drain_lazy is inlined into: GCC's induction
 * variable pass rewrote the completion count as count + 1 and kept both in
 * callee-saved registers (one more push/pop per poll, a move per
 * completion: 4 instructions a poll at QD 1, 3 a completion in a batch,
 * measured with bench/instr_split.sh). Clang has no such attribute. */
#if defined(__GNUC__) && !defined(__clang__)
#define DRV_POLL_LOOP __attribute__((optimize("no-ivopts")))
#else
#define DRV_POLL_LOOP
#endif

#define DRV_DEFAULT_ADMIN_DEPTH	     32u
#define DRV_DEFAULT_IO_DEPTH	     256u
#define DRV_DEFAULT_ADMIN_TIMEOUT_MS 60000u
#define DRV_DEFAULT_IO_TIMEOUT_MS    30000u
#define DRV_DEFAULT_SHUTDOWN_MS	     10000u
#define DRV_DEFAULT_TICK_MS	     100u
/* Trackers per queue: bounded so that CID index bits leave room for a
 * generation (at least 6 bits with 1024 trackers). */
#define DRV_MAX_TRACKERS 1024u
/* One PRP list page per tracker: 512 entries cover 2 MiB at any offset. */
#define DRV_MAX_XFER	(2u << 20)
#define DRV_MAX_AERS	4u
#define DRV_AER_PENDING 16u
/* Status the driver puts on completions it makes up itself. */
#define DRV_SF_HOST_ABORTED NVME_SF(NVME_SCT_PATH, NVME_SC_HOST_ABORTED_CMD)
#define DRV_NO_DEADLINE	    UINT64_MAX

/* ---- clock ---- */

static inline uint64_t drv_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- trackers ---- */

enum drv_trk_state {
	TRK_FREE = 0,
	TRK_ACTIVE, /* a command with this CID is on the device */
	TRK_PARENT, /* holds a split request until its parts complete */
};

#define TRK_F_TIMED_OUT (1u << 0) /* deadline passed, Abort sent */
#define TRK_F_DOOMED	(1u << 1) /* to be failed by queue recovery */
/* I/O qpairs: deadline set, by the first deadline scan that saw the command
 * (timeout.c); submit leaves the deadline to it */
#define TRK_F_DEADLINE (1u << 2)

struct drv_tracker {
	nvmk_cpl_fn cb;
	void *cb_arg;
	struct drv_tracker *parent; /* split request this is a part of */
	uint64_t deadline;	    /* ms on the controller clock (I/O: see TRK_F_DEADLINE) */
	uint64_t *prp_va;	    /* this tracker's PRP list page */
	uint64_t prp_iova;
	struct drv_prp_list prp_list; /* {prp_va, &prp_iova, 1}, built once */
	uint32_t remaining;	      /* PARENT: parts outstanding */
	int err;		      /* PARENT: first error */
	uint16_t status;	      /* PARENT: status of the first error */
	uint32_t dw0;		      /* PARENT: dw0 of the last part */
	union {
		struct {
			uint16_t cid;  /* index | generation << cid_shift */
			uint8_t state; /* enum drv_trk_state */
			/* DRV_TRK_PART (1) on a part of a split request
			 * (parent set), else 0: its CQE then fails
			 * drv_q_drain's one key compare and takes the
			 * out-of-line path, so the straight path needs no
			 * parent test */
			uint8_t part;
		};
		/* cid | state << 16 | part << 24: one compare validates a CQE */
		uint32_t key;
	};
	uint16_t next_free;
	uint16_t idx; /* own index */
	union {
		struct {
			uint8_t flags;
			uint8_t opc;
			uint16_t meta_zero; /* always 0 */
		};
		/* flags | opc << 8: the submit fast path sets both with one
		 * 32-bit store of a constant */
		uint32_t meta;
	};
	/* to 128 bytes: &trk[i] is then a shift, not a multiply, on both the
	 * submit and the completion path */
	uint8_t pad_to_128[22];
};
_Static_assert(sizeof(struct drv_tracker) == 128, "resize pad_to_128");
/* drv_q_drain clears err and status of a struct nvmk_cpl with one 8-byte store */
_Static_assert(offsetof(struct nvmk_cpl, err) == 0 && offsetof(struct nvmk_cpl, status) == 4 &&
		       offsetof(struct nvmk_cpl, dw0) == 8,
	       "struct nvmk_cpl layout");

/* ---- queue core (admin and I/O) ---- */

struct drv_queue {
	struct nvmk_backing *b;
	struct nvme_sqe *sq;
	struct nvme_cqe *cq;
	uint32_t depth; /* entries */
	uint32_t sq_tail;
	uint32_t sq_db_tail; /* last tail given to the device */
	uint32_t cq_head;
	uint32_t cq_db_head; /* last head given to the device */
	/* The lazy CQ head doorbell of the fast poll (drv_q_drain_lazy):
	 * completions it may still consume without giving the head back, and
	 * what that count restarts from after a doorbell (0: every poll rings;
	 * drv_qp_cq_db_policy sets it). */
	int32_t cq_db_credit;
	uint32_t cq_db_lazy;
	uint16_t sq_head;    /* last SQHD seen (16 bits, as in the CQE: one store) */
	/* 0 or 1; 16 bits like the CQE status word, so the phase test xors
	 * the two without a zero-extension */
	uint16_t phase;
	union {
		struct {
			/* > 0 while completions are processed or a batch is
			 * open: defer the SQ doorbell */
			uint8_t batching;
			/* 1 when the SQ has a shadow doorbell (sdb_sq set, by
			 * drv_q_dbbuf_attach only) */
			uint8_t sq_shadow;
		};
		/* batching | sq_shadow << 8: drv_q_commit_at's one test for
		 * "ring the register now" (the byte after batching was
		 * padding) */
		uint16_t sq_db_defer;
	};
	uint16_t qid;
	uint32_t sqid_key; /* qid << 16: CQE Dword 2 check in one compare (drv_q_drain) */
	uint32_t sq_db;	   /* doorbell register offsets */
	uint32_t cq_db;
	/* The doorbell write resolved once (drv_queue_set_doorbells): the
	 * registers' addresses in the backing's mapped BAR0, or NULL and the
	 * backing's write32. drv_db_ring then loads one pointer instead of
	 * b->bar0 and b->ops. Valid while the backing is: BAR0 is mapped when
	 * the backing opens and unmapped when it closes, after the queues. */
	volatile uint32_t *sq_db_reg, *cq_db_reg;
	void (*db_write32)(struct nvmk_backing *b, uint32_t off, uint32_t val);
	/* Shadow doorbells and EventIdx (Base 2.0 5.8), NULL when not used. */
	uint32_t *sdb_sq, *sdb_cq, *ei_sq, *ei_cq;

	struct drv_tracker *trk;
	uint32_t ntrk;
	/* Trackers taken (ntrk minus the free ones): 0 is "nothing
	 * outstanding", which drv_q_drain tests per completion. */
	uint32_t nbusy;
	uint16_t free_head; /* 0xffff: none */
	uint16_t gen_inc;   /* 1 << cid_shift */
	/* < 0x10000; 32 bits: the CQE's CID is masked without a zero-extension */
	uint32_t idx_mask;
	uint8_t cid_shift;
	const char *name;
	struct nvmk_dma_buf sq_mem, cq_mem, prp_mem;
};

#define DRV_TRK_NONE	   0xffffu
#define DRV_TRK_KEY_ACTIVE ((uint32_t)TRK_ACTIVE << 16)
#define DRV_TRK_PART	   1u
#define DRV_TRK_KEY_PART   ((uint32_t)DRV_TRK_PART << 24)

/* ---- queue pairs ---- */

struct drv_io_ops; /* io_ops.h: the NVMe-queue or the kernel path */

struct nvmk_qpair {
	struct drv_queue q; /* first: the fast path starts here */
	struct nvmk_ctrl *ctrl;
	uint32_t epoch; /* ctrl->epoch when the queues were (re)created */
	bool shared;
	/* What the fast paths compare ctrl->gate with (drv_qp_fast): on an
	 * exclusive qpair the gate as its last slow poll saw it in its epoch
	 * (qpair.c), on a SHARED one UINT64_MAX, which no gate equals; so one
	 * compare tests "exclusive, current, and no tick since the last
	 * deadline scan". drv_qp_set_epoch sets it, after shared, to a value
	 * no gate equals: the next poll takes the slow path. */
	uint64_t fast_epoch;
	/* The same for the submit paths (drv_qp_fast_submit), kept apart so
	 * that the first submit after a tick, which takes the general path and
	 * catches up (ns_rw_general), leaves the tick to the next poll's scan:
	 * one slow submit per tick, not every submit until that poll. */
	uint64_t submit_gate;
	bool from_get;	 /* handed out by nvmk_ctrl_get_qpair */
	bool get_taken;	 /* from_get, EXCLUSIVE: a thread has it (get_lock) */
	bool irq_shared; /* vector shared with other queues: wait in short slices */
	bool lost_irq_warned;
	enum nvmk_cpl_mode mode;
	uint32_t hybrid_poll_us; /* interrupt mode: poll this long before sleeping */
	/* Re-creation failed in epoch dead_epoch: every call returns this
	 * (-EIO or -ENODEV) until a later reset, when creation is tried again. */
	int dead;
	uint32_t dead_epoch;
	int irq_fd;
	uint16_t vector;
	uint64_t next_check;	  /* next deadline scan, controller clock */
	uint32_t io_timeout_ms;	  /* the controller's, one load less per I/O */
	struct drv_rlock lock;	  /* SHARED qpairs only (rlock.h) */
	struct drv_prp_seg *segs; /* iovec scratch, max_pages entries */
	unsigned max_segs;
	struct drv_tracker **parts; /* split scratch, ntrk entries */
	struct nvmk_qpair *next;    /* ctrl->qpairs list */
	bool restored;		    /* restore: not handed back yet (save.c, restore.c) */
	uint16_t saved_qid;	    /* restore: the qid it had when saved */
	/* The device may hold this qpair's queues (their memory) from a Create
	 * I/O CQ (sent when ctrl->disable_gen was dev_gen) until it refused
	 * the creation or both Delete commands succeeded (dev_released), or
	 * the controller was stopped since (disable_gen moved on). Until then
	 * the memory is never freed (qpair.c, qp_gone). A restored qpair
	 * starts owned. */
	bool dev_released;
	uint32_t dev_gen;
	/* The implementation behind the qpair's general paths (io_ops.h). */
	const struct drv_io_ops *ops;
	/* Kernel path only (kernel_ns.c): its io_uring ring, else NULL. Such a
	 * qpair never passes drv_qp_fast. */
	struct drv_kqp *kern;
};

/* Record the controller epoch the qpair's queues belong to (qp->shared is
 * already set). */
drv_inline void drv_qp_set_epoch(struct nvmk_qpair *qp, uint32_t epoch)
{
	qp->epoch = epoch;
	/* A SHARED qpair's fast_epoch is read without its lock by every caller
	 * (drv_qp_fast): written once, before the qpair is handed out, and
	 * never again (a recovery runs under the lock while others read). */
	if (!qp->shared) {
		qp->fast_epoch = (uint64_t)epoch << 32 | 0xffffffffu; /* bit 31: no gate */
		qp->submit_gate = qp->fast_epoch;
	} else if (qp->fast_epoch != UINT64_MAX) {
		qp->fast_epoch = UINT64_MAX;
		qp->submit_gate = UINT64_MAX;
	}
}

drv_inline void drv_qp_lock(struct nvmk_qpair *qp)
{
	if (qp->shared)
		drv_rlock_lock(&qp->lock);
}

drv_inline void drv_qp_unlock(struct nvmk_qpair *qp)
{
	if (qp->shared)
		drv_rlock_unlock(&qp->lock);
}

/* ---- namespaces ---- */

struct drv_ns_state {
	uint32_t nsid;
	uint8_t lba_shift;
	uint8_t rescap;
	_Atomic uint64_t nblocks;
	atomic_bool removed;
	bool known;	  /* identified at least once */
	unsigned nopen;	  /* handles open */
	bool open_shared; /* those handles are SHARED */
};

struct nvmk_ns {
	struct nvmk_ctrl *ctrl;
	struct drv_ns_state *s;
	uint32_t nsid;
	uint8_t lba_shift;
	uint32_t max_blocks; /* per command */
	uint32_t lba_bytes;  /* 1 << lba_shift: ns_rw multiplies (no shift count in cl) */
	/* max_blocks while the namespace is present, 0 once it is removed
	 * (drv_ns_gate_update, under ns_lock): ns_rw's first compare, "nlb in
	 * 1..gate_blocks", then also sends a removed namespace to the general
	 * path, which refuses it, and the straight path reads no removal
	 * flag. Relaxed, as that flag: a removal racing with a submit may
	 * still reach the device, which answers Invalid Namespace. 0 on a
	 * kernel namespace. */
	_Atomic uint32_t gate_blocks;
	/* NSID in SQE bits 32-63 (Dword 1), precomputed at open/restore: the
	 * fast path ORs it into the CDW0 + NSID store */
	uint64_t sqe_nsid;
	bool shared;
	bool restored;		  /* restore: not handed back yet */
	struct nvmk_ns *next_handle; /* ctrl->handles list, ns_lock */
	/* The implementation behind the handle (io_ops.h). */
	const struct drv_io_ops *ops;
	/* Kernel path only (kernel_ns.c), else NULL: then ctrl and s are NULL,
	 * and max_blocks is 0 so that the handle never passes the NVMe-queue
	 * fast path's gate (ns_rw). */
	struct drv_kns *kern;
};

/* Set @ns's gate_blocks from its namespace's state (ns_lock held, or the
 * handle not yet visible to another thread). */
static inline void drv_ns_gate_update(struct nvmk_ns *ns)
{
	bool gone = atomic_load_explicit(&ns->s->removed, memory_order_relaxed);

	atomic_store_explicit(&ns->gate_blocks, gone ? 0 : ns->max_blocks, memory_order_relaxed);
}

/* ---- controller ---- */

struct drv_get_slot {
	struct nvmk_qpair *qp;
};

struct nvmk_ctrl {
	struct nvmk_backing *b;
	const char *name;
	uint64_t uid;		    /* process-unique, keys the per-thread qpair cache */
	struct nvmk_ctrl_opts opts; /* defaults resolved */
	uint64_t cap;
	uint32_t dstrd;
	uint32_t ready_timeout_ms; /* CAP.TO */
	uint32_t admin_depth;
	uint32_t io_depth;
	uint32_t max_io_depth; /* MQES + 1 */
	struct nvme_id_ctrl *id;
	size_t max_xfer;
	uint16_t want_queues;
	uint16_t granted;
	unsigned nvec; /* MSI-X vectors enabled (0: none) */
	unsigned tick_ms;

	/* admin queue: control path, serialised by admin_lock */
	pthread_mutex_t admin_lock;
	struct drv_queue aq;
	int admin_irq_fd;
	struct nvmk_dma_buf admin_buf; /* 4 KiB data scratch, under admin_lock */
	/* Data buffers of admin commands that timed out may still be written
	 * by the device until it is stopped (disable_gen moves on): admin_buf
	 * is then not used (admin_buf_busy, since admin_buf_gen) and a
	 * bounce buffer is retired, not freed (admin.c, under admin_lock). */
	bool admin_buf_busy;
	uint32_t admin_buf_gen;
#define DRV_RETIRED_BUFS 8
	struct nvmk_dma_buf retired[DRV_RETIRED_BUFS];
	uint32_t retired_gen[DRV_RETIRED_BUFS];
	unsigned aer_limit;
	unsigned aers_outstanding;
	uint32_t aer_pending[DRV_AER_PENDING];
	unsigned naer_pending;

	/* shadow doorbells */
	bool dbbuf;
	struct nvmk_dma_buf dbbuf_mem; /* page 0 shadow, page 1 EventIdx */

	/* health: read on the fast path with relaxed loads */
	_Atomic uint32_t epoch;	 /* bumped by every reset and by failure */
	_Atomic int failed;	 /* 0 or the error every command gets */
	_Atomic uint64_t now_ms; /* coarse clock, kept by the admin thread */
	/* What an exclusive, current qpair's fast_epoch equals: epoch << 32 |
	 * the clock's tick number (now_ms / tick_ms, 31 bits). The fast paths'
	 * one compare (drv_qp_fast) then fails once per tick as well as on a
	 * reset or failure, and the poll that fails it runs the deadline scan
	 * (qpair.c): no deadline test on the fast path. drv_gate_sync keeps
	 * it; never UINT64_MAX (bit 31 clear). */
	_Atomic uint64_t gate;
	atomic_bool quiesced;	 /* failed device confirmed disabled (qp_lock) */
	bool keep_dev_mem;	 /* close: the device did not stop, its memory is leaked */
	/* Bumped each time the controller is known stopped (CSTS.RDY = 0 after
	 * CC.EN = 0, by a reset or a failure): the queues it had are gone. */
	_Atomic uint32_t disable_gen;
	atomic_bool need_reset;
	_Atomic uint32_t reset_req_epoch; /* epoch when the reset was asked for */
	atomic_bool fail_event_pending;
	atomic_bool reset_event_pending;
	pthread_mutex_t reset_lock;

	/* queue pairs: control path, qp_lock; get_lock for nvmk_ctrl_get_qpair */
	pthread_mutex_t qp_lock;
	pthread_mutex_t get_lock;
	uint8_t *qid_used; /* [granted + 1] */
	struct nvmk_qpair *qpairs;
	struct nvmk_qpair **get_qps; /* nvmk_ctrl_get_qpair qpairs */
	unsigned n_get_qps;
	unsigned get_budget; /* stop creating once a creation failed */
	unsigned n_threads;

	/* namespaces: ns_lock */
	pthread_mutex_t ns_lock;
	struct drv_ns_state **ns;
	unsigned nns, ns_cap;

	/* servicing (save.c, restore.c) */
	atomic_bool svc_quiesced; /* save in progress or done: qpair calls get -EAGAIN */
	int saved;		  /* 0 or DRV_SAVED_* */
	struct nvmk_ns *handles; /* open namespace handles, ns_lock */

	/* admin thread */
	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
	int wake_fd;
};

drv_inline uint64_t drv_now(const struct nvmk_ctrl *ctrl)
{
	/* relaxed: a coarse timestamp, no ordering with anything else */
	return atomic_load_explicit(&ctrl->now_ms, memory_order_relaxed);
}

/* Recompute ctrl->gate from the epoch and the coarse clock, after either
 * changed. A CAS loop that recomputes both halves after every failure, so
 * that concurrent writers (the admin thread's clock, a waiter's clock, a
 * reset's epoch bump) cannot leave an older epoch in the gate: the epoch
 * only grows, so the gate never returns to a value a writer read before. */
static inline void drv_gate_sync(struct nvmk_ctrl *ctrl)
{
	/* relaxed: the gate is only a hint for the fast paths, as the epoch
	 * was (drv_qpair_recover re-reads the epoch with acquire) */
	uint64_t old = atomic_load_explicit(&ctrl->gate, memory_order_relaxed);

	for (;;) {
		uint64_t now = atomic_load_explicit(&ctrl->now_ms, memory_order_relaxed);
		uint64_t tick = ctrl->tick_ms ? now / ctrl->tick_ms : now;
		uint64_t want = (uint64_t)atomic_load_explicit(&ctrl->epoch, memory_order_relaxed)
				    << 32 |
				(tick & 0x7fffffffu);

		if (want == old || atomic_compare_exchange_weak_explicit(&ctrl->gate, &old, want,
									 memory_order_relaxed,
									 memory_order_relaxed))
			return;
	}
}

/* The epoch moves on (reset, failure, servicing): release, so that what was
 * done before is seen by whoever acquires the new epoch; then the gate. */
static inline void drv_epoch_bump(struct nvmk_ctrl *ctrl)
{
	atomic_fetch_add_explicit(&ctrl->epoch, 1, memory_order_release);
	drv_gate_sync(ctrl);
}

static inline void drv_now_refresh(struct nvmk_ctrl *ctrl)
{
	atomic_store_explicit(&ctrl->now_ms, drv_clock_ms(), memory_order_relaxed);
	drv_gate_sync(ctrl);
}

/* Move the coarse clock forward to @now (ms, drv_clock_ms) if it lags: a
 * thread that waits on a qpair reads the precise clock anyway, and must see
 * its commands' deadlines pass even when the admin thread that keeps the
 * clock is not scheduled (seen under QEMU's software emulation while the
 * device model holds the emulator's lock). Relaxed: the clock orders
 * nothing; the CAS only keeps it from going back. */
static inline void drv_now_advance(struct nvmk_ctrl *ctrl, uint64_t now)
{
	uint64_t cur = atomic_load_explicit(&ctrl->now_ms, memory_order_relaxed);

	if (cur >= now)
		return;
	while (cur < now && !atomic_compare_exchange_weak_explicit(&ctrl->now_ms, &cur, now,
								    memory_order_relaxed,
								    memory_order_relaxed))
		;
	drv_gate_sync(ctrl);
}

static inline int drv_failed(const struct nvmk_ctrl *ctrl)
{
	/* relaxed: the error value only; acting on it goes through the epoch */
	return atomic_load_explicit(&ctrl->failed, memory_order_relaxed);
}

/* status.c: the status of the last sync call of this thread */
void drv_set_last_status(uint16_t sf);

/* registers.c */
uint32_t drv_reg_csts(struct nvmk_ctrl *ctrl);
uint32_t drv_reg_cc(struct nvmk_ctrl *ctrl);
void drv_reg_set_cc(struct nvmk_ctrl *ctrl, uint32_t cc);
uint64_t drv_reg_cap(struct nvmk_ctrl *ctrl);
void drv_reg_set_aq(struct nvmk_ctrl *ctrl, uint32_t aqa, uint64_t asq, uint64_t acq);
/* CSTS health: 0, -ENODEV (all ones: removed), -EIO (CFS). */
int drv_reg_health(struct nvmk_ctrl *ctrl);

/* queue.c: queue core */
int drv_queue_alloc(struct nvmk_ctrl *ctrl, struct drv_queue *q, uint16_t qid, uint32_t depth,
		    const char *tag);
void drv_queue_free(struct nvmk_ctrl *ctrl, struct drv_queue *q);
/* The two halves of drv_queue_alloc without the memory (restore uses them). */
void drv_queue_geometry(struct nvmk_ctrl *ctrl, struct drv_queue *q, uint16_t qid, uint32_t depth);
int drv_queue_init_trackers(struct drv_queue *q);
void drv_queue_set_doorbells(struct drv_queue *q, uint16_t qid, uint32_t dstrd);
/* Shadow doorbell + EventIdx slots of an I/O queue (ctrl->dbbuf set). */
void drv_q_dbbuf_attach(struct nvmk_ctrl *ctrl, struct drv_queue *q);
void drv_queue_reset_ring(struct drv_queue *q);
/* Drain completions; -EIO on an invalid completion (after logging it). */
int drv_queue_drain(struct drv_queue *q, unsigned max);
/* Mark every active tracker DOOMED; then drv_queue_fail_doomed completes them. */
unsigned drv_queue_doom_all(struct drv_queue *q);
unsigned drv_queue_fail_doomed(struct drv_queue *q, int err);

/* admin.c */
int drv_admin_init(struct nvmk_ctrl *ctrl);
void drv_admin_fini(struct nvmk_ctrl *ctrl);
/* Run one admin command; @data (any memory, up to @len bytes) is bounced. */
int drv_admin_sync(struct nvmk_ctrl *ctrl, struct nvme_sqe *cmd, void *data, size_t len,
		   struct nvmk_cpl *cpl);
/* Admin lock held: drain admin completions (AERs). */
void drv_admin_poll_locked(struct nvmk_ctrl *ctrl);
int drv_identify(struct nvmk_ctrl *ctrl, uint8_t cns, uint32_t nsid, void *out);
int drv_set_features(struct nvmk_ctrl *ctrl, uint8_t fid, uint32_t cdw11, void *data, size_t len,
		     uint32_t *dw0);

/* ctrl.c */
/* Enable MSI-X as the bring-up does (ctrl->nvec, admin_irq_fd); false: polled. */
bool drv_irq_setup(struct nvmk_ctrl *ctrl);
void *drv_admin_thread(void *arg);
void drv_opts_resolve(struct nvmk_ctrl *ctrl, const struct nvmk_ctrl_opts *in);
int drv_init_run(struct nvmk_ctrl *ctrl, bool reset);
void drv_ctrl_wake_all(struct nvmk_ctrl *ctrl);
void drv_ctrl_emit(struct nvmk_ctrl *ctrl, const struct nvmk_event *ev);
void drv_ctrl_quiesce(struct nvmk_ctrl *ctrl);
/* Returns true when the controller is known stopped (CSTS.RDY = 0, or removed). */
bool drv_ctrl_shutdown_device(struct nvmk_ctrl *ctrl);
/* The bound on the wait for CSTS.SHST = complete (ms). */
uint32_t drv_shutdown_wait_ms(const struct nvmk_ctrl *ctrl);
struct nvmk_ctrl *drv_ctrl_alloc(struct nvmk_backing *b, uint64_t uid);
void drv_mutex_init_recursive(pthread_mutex_t *m);
void drv_ctrl_free_host(struct nvmk_ctrl *ctrl);
bool drv_wait_csts(struct nvmk_ctrl *ctrl, uint32_t mask, uint32_t val, uint32_t ms,
		   const char *what);
int drv_ctrl_identify(struct nvmk_ctrl *ctrl);

/* recovery.c */
void drv_ctrl_fail(struct nvmk_ctrl *ctrl, int err, const char *why);
int drv_ctrl_reset(struct nvmk_ctrl *ctrl, int cause, uint32_t seen_epoch);

/* timeout.c */
void drv_qpair_check_timeouts(struct nvmk_qpair *qp, uint64_t now);

/* aer.c */
void drv_aer_done(void *arg, const struct nvmk_cpl *cpl); /* an AER's callback */
void drv_aer_post_all(struct nvmk_ctrl *ctrl);
void drv_aer_handle_pending(struct nvmk_ctrl *ctrl);

/* qpair.c */
/* Set how many completions the fast poll may consume between CQ head
 * doorbells (q->cq_db_lazy) from the qpair's mode and depth. */
void drv_qp_cq_db_policy(struct nvmk_qpair *qp);
/* Return: commands it completed (>= 0), or negative errno when the qpair
 * cannot be used (its outstanding commands were completed all the same). */
int drv_qpair_recover(struct nvmk_qpair *qp);
void drv_qpair_destroy_all(struct nvmk_ctrl *ctrl);

/* save.c / restore.c: servicing */
#define DRV_SAVED_KEEP_ALIVE	  1
#define DRV_SAVED_SHUTDOWN	  2
#define DRV_SAVED_RESTORE_REFUSED 3 /* a keep-alive restore gave up: detach unclaims */
void drv_ns_handle_link(struct nvmk_ctrl *ctrl, struct nvmk_ns *ns);   /* ns_lock held */
void drv_ns_handle_unlink(struct nvmk_ctrl *ctrl, struct nvmk_ns *ns); /* ns_lock held */

/* ns_state.c */
struct drv_ns_state *drv_ns_state_get(struct nvmk_ctrl *ctrl, uint32_t nsid, bool create);
void drv_ns_rescan(struct nvmk_ctrl *ctrl, uint32_t nsid);
void drv_ns_fini(struct nvmk_ctrl *ctrl);
void drv_ns_scan_all(struct nvmk_ctrl *ctrl);

#endif /* NVMK_DRV_H */
