/* SPDX-License-Identifier: MIT */
/*
 * Emulator internals shared by the controller's .c files: the controller
 * and subsystem structures, queue and command state.
 *
 * Ownership: everything under "worker only" is touched by the worker thread
 * alone; register values, doorbells, statistics and the small tables the
 * public API changes from other threads are atomics or sit behind the lock
 * named next to them.
 */
#ifndef NVMK_EMU_INTERNAL_H
#define NVMK_EMU_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "emu/emu_ns.h"
#include "emu/reservation.h"
#include "nvmekeep/emu.h"
#include "nvmekeep/log.h"
#include "nvmekeep/spec.h"

#define EMU_MAX_CTRLS	   16	 /* controllers per subsystem */
#define EMU_MAX_FAULTS	   32	 /* fault rules per controller */
#define EMU_ERRLOG_ENTRIES 64	 /* Identify ELPE + 1 */
#define EMU_BATCH	   16	 /* commands fetched per SQ per round (fairness) */
#define EMU_MAX_EVENTS	   16	 /* queued asynchronous events */
#define EMU_SQ_ABORT_SLOTS 8	 /* CIDs marked for abort while still in an SQ */
#define EMU_SPIN_NS	   20000 /* spin this long for a doorbell before sleeping */
/* With a doorbell page the worker keeps watching it this long after its
 * last piece of work (the first EMU_SPIN_NS of it without yielding the CPU;
 * shadow doorbells alone get EMU_SPIN_NS, see emu_wait); a doorbell page, which no
 * kick announces, is then looked at every EMU_NAP_NS, and every
 * EMU_NAP_IDLE_NS after EMU_QUIET_NS without work. */
#define EMU_WATCH_SPIN_NS 200000ull
#define EMU_NAP_NS	  20000ull
#define EMU_NAP_IDLE_NS	  1000000ull
#define EMU_QUIET_NS	  20000000ull
/* Value of an I/O doorbell whose queue does not exist (only bits 15:0 of a
 * real doorbell value are ever stored). Set by the worker; the MMIO write
 * path sees it and reports a Write to Invalid Doorbell Register. */
#define EMU_DB_NOQ (1u << 31)

/* ---- subsystem: namespaces shared by the controllers created from it ---- */
struct emu_subsys {
	atomic_uint refs;
	/* ns_lock: write-locked to add/remove/resize, read-locked around every command
	 * that touches a namespace, so storage never disappears under a command. */
	pthread_rwlock_t ns_lock;
	uint32_t max_ns;			    /* Identify NN */
	struct emu_ns *ns[NVMK_EMU_MAX_NS + 1];	    /* by NSID, [0] unused */
	struct emu_resv *resv[NVMK_EMU_MAX_NS + 1]; /* reservation state per namespace */
	char serial[21];
	char model[41];
	char nqn[224];
	pthread_mutex_t ctrl_lock; /* ctrls[], next_cntlid */
	struct nvmk_emu *ctrls[EMU_MAX_CTRLS];
	uint16_t next_cntlid;
};

/* ---- commands ---- */
enum emu_cmd_state {
	EMU_CMD_DELAYED, /* executed, completion held until @deadline */
	EMU_CMD_HUNG,	 /* never completes unless aborted */
	EMU_CMD_AER,	 /* outstanding Asynchronous Event Request */
};

struct emu_cmd {
	struct emu_cmd *next;
	enum emu_cmd_state state;
	uint16_t sqid;
	uint16_t cid;
	uint16_t status; /* status field without phase */
	uint32_t dw0;
	uint8_t opc;
	uint32_t nsid;
	uint64_t deadline_ns;
	int fault_kind; /* fault to apply when posting (0 = none) */
};

/* Result of executing one command; posted to the CQ by queue.c. */
struct emu_result {
	uint16_t status; /* status field (NVME_SF | DNR ...), 0 = success */
	uint32_t dw0;
	bool deferred; /* command kept (AER, hung, delayed): post nothing now */
};

/* ---- queues (worker only, except the doorbell atomics) ---- */
struct emu_cq {
	bool valid;
	bool ien;
	uint16_t qid;
	uint16_t iv;
	uint32_t size; /* entries */
	uint64_t base;
	uint32_t head;
	uint32_t tail;
	uint8_t phase;
	uint32_t nr_sq;	   /* SQs bound to this CQ */
	uint32_t reserved; /* completions owed by fetched, unfinished commands */
	uint32_t last_shadow;
	uint32_t eventidx; /* value last written to the EventIdx slot */
	bool bad_db;  /* invalid doorbell value reported, until a valid one */
	bool blocked; /* an SQ waits for room: EventIdx asks for every head update */
};

struct emu_sq {
	bool valid;
	uint16_t qid;
	uint16_t cqid;
	uint32_t size;
	uint64_t base;
	uint32_t head;
	uint32_t tail;
	uint32_t last_shadow;
	uint32_t eventidx; /* value last written to the EventIdx slot */
	uint16_t abort_cid[EMU_SQ_ABORT_SLOTS];
	unsigned nr_abort;
	bool bad_db; /* invalid doorbell value reported, until a valid one */
};

struct emu_fault_rule {
	struct nvmk_emu_fault f;
	uint64_t seen;
	uint64_t hits;
	uint64_t order; /* when it was added: rules apply in this order */
	bool used;
};

#define EMU_MAX_PREEMPT 16

/* A Reservation Acquire with Preempt and Abort preempted @host on @nsid. */
struct emu_preempt_req {
	uint32_t nsid;
	struct emu_resv_host host;
};

struct emu_event {
	uint8_t type;
	uint8_t info;
	uint8_t lid;
};

struct nvmk_emu {
	struct nvmk_emu_config cfg; /* copy; ns[] moved into the subsystem */
	char name[32];
	struct emu_subsys *subsys;
	uint16_t cntlid;
	uint16_t nq; /* I/O queues supported (max_io_queues) */
	uint64_t cap;
	size_t bar_size;
	/* Doorbell decoding, set once by emu_regs_init: the doorbells span
	 * [NVME_REG_DBS, NVME_REG_DBS + db_span), one per 1 << db_shift bytes. */
	uint32_t db_span;
	uint32_t db_shift;

	/* ---- registers (any thread) ---- */
	pthread_mutex_t reg_lock; /* serialises read-modify-write of CC, AQA, ASQ, ACQ, INTM */
	_Atomic uint32_t cc;
	_Atomic uint32_t csts;
	_Atomic uint32_t aqa;
	_Atomic uint64_t asq;
	_Atomic uint64_t acq;
	_Atomic uint32_t intm;
	atomic_bool reset_req; /* CC.EN went 1 -> 0 since the worker last looked */
	atomic_bool shn_req;   /* CC.SHN written non-zero */
	atomic_bool removed;   /* surprise removal: all ones, nothing else */
	atomic_bool fatal;     /* CSTS.CFS set: stop processing */
	atomic_bool bad_access_logged;
	atomic_bool stray_db_logged; /* Write to Invalid Doorbell logged since reset */
	/* [2 * (nq + 1)] MMIO doorbells in register order (emu_db_*): SQ y tail
	 * at 2y, CQ y head at 2y + 1, so a doorbell index is the array index */
	_Atomic uint32_t *db;

	/* ---- inline execution (cfg.inline_io, inline.c) ---- */
	/* Held by whoever processes the controller's state marked "worker only":
	 * the worker for each pass of its loop, a doorbell writer while it runs
	 * commands inline (trylock only: a writer never waits, it kicks the
	 * worker instead). Not taken at all without cfg.inline_io. */
	pthread_mutex_t exec_lock;
	atomic_bool faults_armed; /* a fault rule was added since the last clear */

	/* ---- worker wake-up ---- */
	pthread_t worker;
	bool worker_started;
	atomic_bool stop;
	_Atomic uint32_t wake; /* EMU_WAKE_*: the doorbell/worker protocol of wake.c */
	uint64_t last_busy_ns; /* worker: when its last pass did some work */

	/* ---- doorbell page the worker scans (db_page.c; nvmk_emu_set_db_page) ---- */
	_Atomic(volatile uint32_t *) db_page; /* doorbell 0; set once, NULL = none */
	uint32_t db_page_stride;	      /* bytes between doorbells */
	unsigned db_page_count;		      /* doorbells scanned */
	uint32_t *db_page_last;		      /* worker: value last seen per doorbell */
	bool db_page_slack_set;		      /* worker: timer slack lowered for naps */

	/* ---- MSI-X (irq_lock) ---- */
	pthread_mutex_t irq_lock;
	int *irq_fd;
	bool *irq_masked;
	bool *irq_pending;

	/* ---- asynchronous events and changed namespaces (aer_lock: any thread) ---- */
	pthread_mutex_t aer_lock;
	uint32_t changed_ns[NVME_NS_LIST_MAX];
	unsigned nr_changed;
	bool changed_overflow;
	struct emu_event events[EMU_MAX_EVENTS];
	unsigned nr_events;
	bool notice_masked; /* a NS-changed notice was reported; log not read (RAE) */
	bool error_masked;  /* an error event was reported; error log not read */
	uint32_t aec;	    /* Async Event Configuration (feature 0Bh) */
	/* Preempt and Abort requests from any controller of the subsystem */
	struct emu_preempt_req preempt[EMU_MAX_PREEMPT];
	unsigned nr_preempt;
	bool preempt_overflow;

	/* ---- tampering hooks (tests), set while idle, read by the worker ---- */
	struct nvmk_emu_tamper tamper;

	/* ---- faults (fault_lock) ---- */
	pthread_mutex_t fault_lock;
	struct emu_fault_rule faults[EMU_MAX_FAULTS];
	unsigned nr_faults; /* slots ever used (a used-up rule's slot is reused) */
	uint64_t fault_seq;

	/* ---- statistics ---- */
	_Atomic uint64_t cmd_count[2][256]; /* [admin][opcode] */
	_Atomic uint64_t resets;
	_Atomic uint64_t inline_cmds; /* I/O commands run by doorbell writers (inline.c) */

	/* ---- worker only ---- */
	bool enabled;	    /* CC.EN accepted */
	bool ready_pending; /* RDY will change at rdy_deadline */
	uint64_t rdy_deadline;
	bool shn_pending;
	uint64_t shn_deadline;
	uint32_t page_size;
	uint32_t page_shift;
	struct emu_sq *sqs;	 /* [nq + 1] */
	struct emu_cq *cqs;	 /* [nq + 1] */
	struct emu_cmd *pending; /* delayed, hung and AER commands */
	unsigned nr_aer;
	uint64_t dbbuf_shadow; /* IOVA of the shadow doorbell page, 0 = off */
	uint64_t dbbuf_eventidx;
	uint64_t max_xfer;   /* MDTS in bytes, 0 = no limit */
	bool queues_created; /* any I/O queue created since reset */
	bool numq_set;
	uint16_t nsq_granted; /* Number of Queues granted (1's based) */
	uint16_t ncq_granted;
	/* features */
	uint32_t feat_arb;
	uint32_t feat_power;
	uint32_t feat_temp_over;
	uint32_t feat_temp_under;
	uint32_t feat_err_recovery;
	uint32_t feat_vwc;
	uint32_t feat_irqc;
	uint32_t feat_irq_cfg[2];
	uint32_t feat_watomic;
	uint32_t feat_kato;
	uint64_t ka_deadline; /* Keep Alive Timer expiry (CLOCK_MONOTONIC ns), 0 = off */
	uint32_t feat_resv_mask;
	uint32_t feat_resv_persist;
	struct emu_resv_host host;
	bool hostid_set;
	uint8_t hostid_fmt; /* subsys->ctrl_lock: Host Identifier bytes in use, 0 = none */
	/* logs */
	struct nvme_error_log errlog[EMU_ERRLOG_ENTRIES]; /* ring, newest at errlog_pos - 1 */
	unsigned errlog_pos;
	uint64_t error_count;
	uint64_t smart_read_cmds;
	uint64_t smart_write_cmds;
	uint64_t smart_read_units; /* 512-byte units */
	uint64_t smart_write_units;
	uint64_t io_fetched; /* I/O commands fetched (inline.c counts its own share) */
	uint8_t *bounce; /* scratch for compare / small structures, EMU_BOUNCE bytes */

	/* ---- pause and snapshot (snapshot.c) ---- */
	atomic_bool pause_req;	     /* any thread: stop at the next command boundary */
	_Atomic uint32_t pause_seq;  /* any thread: bumped by every pause request */
	_Atomic uint32_t paused_seq; /* worker: the request it stopped for */
	pthread_mutex_t snap_lock;
	pthread_cond_t snap_cv;
	atomic_bool snap_pending;	    /* a snapshot is asked for (the loop's cheap test) */
	struct nvmk_emu_snapshot *snap_req; /* snap_lock: a snapshot to take */
	int snap_rc;
	bool snap_done;
};

#define EMU_BOUNCE (64 * 1024)

/* ---- time ---- */
static inline uint64_t emu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The MMIO SQ tail / CQ head doorbell register of queue @qid. */
static inline _Atomic uint32_t *emu_sq_db(struct nvmk_emu *emu, unsigned qid)
{
	return &emu->db[2u * qid];
}

static inline _Atomic uint32_t *emu_cq_db(struct nvmk_emu *emu, unsigned qid)
{
	return &emu->db[2u * qid + 1u];
}

/* ---- wake.c ---- */
enum { EMU_WAKE_RUN, EMU_WAKE_KICK, EMU_WAKE_SLEEP };
/* FUTEX_WAKE of the sleeping worker (emu_kick found it asleep). */
void emu_kick_wake(struct nvmk_emu *emu);

/* Make the worker look at the controller again (doorbell, register, event).
 * Inline: it runs on every doorbell write; the protocol is in wake.c. */
static inline void emu_kick(struct nvmk_emu *emu)
{
	/* seq_cst exchange: release, so everything the caller wrote before the
	 * kick (the doorbell value, queue entries behind it) is visible to the
	 * worker's acquire exchange that consumes the kick; and a full barrier,
	 * so the read of the old state cannot be satisfied before our earlier
	 * stores leave the store buffer (the worker might otherwise go to sleep
	 * after reading the doorbell's old value, and we see RUN, not SLEEP). */
	if (atomic_exchange(&emu->wake, EMU_WAKE_KICK) == EMU_WAKE_SLEEP)
		emu_kick_wake(emu);
}
/* One step of a spin-wait: tells the CPU (and a sibling hyperthread). */
static inline void emu_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}
/* Worker with nothing to do: spin briefly, then sleep until a kick or the
 * CLOCK_MONOTONIC @deadline (ns, 0 = none) or emu->stop. With doorbells in
 * memory (shadow buffer, doorbell page) it watches them while it spins and
 * asks for doorbell writes (EventIdx) only before it sleeps; returns when
 * there is something to look at. */
void emu_wait(struct nvmk_emu *emu, uint64_t deadline);

/* ---- inline.c ---- */
/* A doorbell register write (slot @idx, value stored) with cfg.inline_io:
 * true if its commands were run on this thread and nothing is left for the
 * worker; false: the caller kicks the worker. */
bool emu_inline_doorbell(struct nvmk_emu *emu, int idx);

/* ---- db_page.c ---- */
static inline volatile uint32_t *emu_db_page(struct nvmk_emu *emu)
{
	/* acquire: stride, count and the last-seen array were set before */
	return atomic_load_explicit(&emu->db_page, memory_order_acquire);
}
/* One pass over the doorbell page: true if a doorbell of an existing queue
 * changed since the last pass. A change on a queue that does not exist is
 * reported as a Write to Invalid Doorbell Register, as a register write is. */
bool emu_db_page_scan(struct nvmk_emu *emu);
/* Doorbell @idx starts again from 0 (queue creation, enable, reset). */
void emu_db_page_zero(struct nvmk_emu *emu, unsigned idx);
/* The value of doorbell @idx on the page (bits 15:0, as a register keeps). */
uint32_t emu_db_page_read(struct nvmk_emu *emu, volatile uint32_t *page, unsigned idx);

/* ---- ctrl.c ---- */
void emu_fatal(struct nvmk_emu *emu, int qid, const char *why);
/* (Re)start the Keep Alive Timer from now with the current KATO (worker). */
void emu_keep_alive_restart(struct nvmk_emu *emu);

/* ---- snapshot.c ---- */
void emu_snap_init(struct nvmk_emu *emu);
void emu_snap_fini(struct nvmk_emu *emu);
/* Worker, between two commands: serve a snapshot request; true when paused
 * (the caller then processes nothing). */
bool emu_snap_step(struct nvmk_emu *emu);

/* ---- regs.c ---- */
void emu_regs_init(struct nvmk_emu *emu);
/* A write to doorbell @idx of a queue that does not exist (any thread). */
void emu_db_stray(struct nvmk_emu *emu, int idx);

/* ---- queue.c ---- */
/* One processing round over all SQs; returns true if anything was done. */
bool emu_queues_process(struct nvmk_emu *emu);
/* Post a completion on @cq for a command of @sqid (status without phase). */
bool emu_cq_post(struct nvmk_emu *emu, uint16_t sqid, uint16_t cid, uint16_t status, uint32_t dw0,
		 int fault_kind);
void emu_irq_signal(struct nvmk_emu *emu, uint16_t vector);
void emu_irq_batch_begin(void);
void emu_irq_batch_end(struct nvmk_emu *emu);
void emu_queues_reset(struct nvmk_emu *emu);
/* Inline execution (inline.c), exec_lock held: run what SQ @qid holds
 * (after the head of its CQ); false if work is left that needs the worker. */
bool emu_sq_run(struct nvmk_emu *emu, uint16_t qid);
/* Inline execution, exec_lock held: take the new head of CQ @qid; if SQs
 * were waiting for room in it, run them; false if work is left. */
bool emu_cq_run(struct nvmk_emu *emu, uint16_t qid);
/* Mark every I/O doorbell as belonging to no queue (creation and reset). */
void emu_db_reset(struct nvmk_emu *emu);
/* Complete held commands whose deadline passed; returns the next deadline (0 = none). */
uint64_t emu_pending_run(struct nvmk_emu *emu, uint64_t now);
void emu_pending_add(struct nvmk_emu *emu, struct emu_cmd *c);
/* Abort handling: returns true if the command was found and aborted. */
bool emu_abort_cmd(struct nvmk_emu *emu, uint16_t sqid, uint16_t cid);
/* Complete every held command of @sqid with @status (SQ deletion). */
void emu_pending_flush_sq(struct nvmk_emu *emu, uint16_t sqid, uint16_t status);
/* Doorbells in memory the worker watches while it spins (emu_wait): true if
 * a shadow SQ tail, the shadow head of a CQ waiting for room, or a doorbell
 * page value moved since the worker last looked. */
bool emu_db_moved(struct nvmk_emu *emu);
/* Before the worker sleeps: EventIdx asks for the next SQ tail write of every
 * queue, then the shadow values are looked at once more (seq_cst, pairs with
 * the host's shadow store then EventIdx load): true if one moved meanwhile
 * (do not sleep). */
bool emu_db_arm(struct nvmk_emu *emu);
/* Initialise shadow doorbell and EventIdx slot @idx to @v (queue creation, DBBUF config). */
void emu_dbbuf_init_slot(struct nvmk_emu *emu, unsigned idx, uint32_t v);
/* Apply queued Preempt and Abort requests to held I/O commands (worker). */
void emu_preempt_run(struct nvmk_emu *emu);
uint16_t emu_sq_create(struct nvmk_emu *emu, uint16_t qid, uint16_t cqid, uint32_t size,
		       uint64_t base);
uint16_t emu_cq_create(struct nvmk_emu *emu, uint16_t qid, uint32_t size, uint64_t base, bool ien,
		       uint16_t iv);
uint16_t emu_sq_delete(struct nvmk_emu *emu, uint16_t qid);
uint16_t emu_cq_delete(struct nvmk_emu *emu, uint16_t qid);

/* ---- admin.c / io.c ---- */
struct emu_result emu_admin_exec(struct nvmk_emu *emu, const struct nvme_sqe *sqe);
struct emu_result emu_io_exec(struct nvmk_emu *emu, uint16_t sqid, const struct nvme_sqe *sqe);
/* Copy between a linear buffer and the host memory described by PRP1/PRP2. */
uint16_t emu_dma_to_host(struct nvmk_emu *emu, const struct nvme_sqe *sqe, const void *buf,
			 size_t len);
/* Admin data to the host through the tampering hook (when installed). */
uint16_t emu_admin_data_to_host(struct nvmk_emu *emu, const struct nvme_sqe *sqe, const void *buf,
				size_t srclen, size_t len);
/* As emu_dma_to_host, transferring @len bytes: @srclen from @buf, then zeroes. */
uint16_t emu_dma_to_host_padded(struct nvmk_emu *emu, const struct nvme_sqe *sqe, const void *buf,
				size_t srclen, size_t len);
uint16_t emu_dma_from_host(struct nvmk_emu *emu, const struct nvme_sqe *sqe, void *buf, size_t len);
void emu_errlog_record(struct nvmk_emu *emu, uint16_t sqid, uint16_t cid, uint16_t status,
		       uint32_t nsid);
void emu_features_reset(struct nvmk_emu *emu);

/* ---- aer.c ---- */
/* Queue an event unless its type is masked (RAE) or disabled; any thread. */
void emu_aer_event(struct nvmk_emu *emu, uint8_t type, uint8_t info, uint8_t lid);
/* Complete outstanding AERs with queued events (worker). */
bool emu_aer_deliver(struct nvmk_emu *emu);
void emu_aer_reset(struct nvmk_emu *emu);
/* Changed Namespace List read: copy into @out (4096 bytes) and clear unless @rae. */
void emu_aer_changed_ns_read(struct nvmk_emu *emu, uint8_t *out, bool rae);
void emu_aer_unmask(struct nvmk_emu *emu, uint8_t type);
/* queue.c: complete the oldest outstanding AER with @dw0; false if none. */
bool emu_aer_complete_one(struct nvmk_emu *emu, uint32_t dw0);

/* ---- fault.c ---- */
/* Look up the rule for a fetched command; returns the fault (kind 0 = none). */
struct nvmk_emu_fault emu_fault_match(struct nvmk_emu *emu, uint16_t sqid, uint8_t opc);

/* Release a translation of cfg.dma once the access is over (see
 * nvmk_emu_dma_done_fn); a no-op for owners without the hook. */
static inline void emu_dma_done(struct nvmk_emu *emu, void *host, uint64_t iova, size_t len,
				bool write)
{
	if (emu->cfg.dma_done)
		emu->cfg.dma_done(emu->cfg.dma_ctx, host, iova, len, write);
}

/* Whether [iova, iova + len) translates (nothing is accessed). */
static inline bool emu_dma_probe(struct nvmk_emu *emu, uint64_t iova, size_t len, bool write)
{
	void *p = emu->cfg.dma(emu->cfg.dma_ctx, iova, len, write);

	if (!p)
		return false;
	emu_dma_done(emu, p, iova, len, false);
	return true;
}

#endif /* NVMK_EMU_INTERNAL_H */
