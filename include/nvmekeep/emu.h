/* SPDX-License-Identifier: MIT */
/*
 * nvmekeep emulator: an NVMe controller that behaves like a strict,
 * spec-conformant device — including the ways real devices fail.
 *
 * Threading rules:
 *  - Register access (nvmk_emu_reg_*) may be called from any thread at any
 *    time, concurrently; doorbell writes wake the controller's worker thread.
 *  - Command processing, DMA and interrupts happen on the emulator's worker
 *    thread, never on the caller's, unless the controller was created with
 *    inline_io (see there): then an I/O queue's doorbell write may run that
 *    queue's commands on the writing thread before it returns.
 *  - Namespace management, fault injection and statistics calls are thread
 *    safe and take effect at the worker's next command boundary.
 *  - The DMA translation callback is called from the worker thread and must
 *    be thread safe with respect to the owner adding/removing mappings.
 */
#ifndef NVMEKEEP_EMU_H
#define NVMEKEEP_EMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvmekeep/spec.h"

struct nvmk_emu;

/**
 * nvmk_emu_dma_fn - translate a device address (IOVA) to a host pointer.
 * @ctx:   the dma_ctx given in the config
 * @iova:  device address of the first byte
 * @len:   number of bytes the controller wants to touch (never 0)
 * @write: true if the controller will write (device-to-host transfer)
 *
 * Return: a pointer valid for @len bytes, or NULL when [iova, iova+len) is not
 * inside one mapping. NULL makes the command fail with Data Transfer Error
 * (or, for queue memory, the controller fatal); it never causes a wild access.
 */
typedef void *(*nvmk_emu_dma_fn)(void *ctx, uint64_t iova, size_t len, bool write);

/**
 * nvmk_emu_dma_done_fn - optional: the controller has finished with a pointer
 * that nvmk_emu_dma_fn returned (same @iova, @len and @write).
 *
 * For owners whose memory is not directly addressable (a vfio-user client that
 * shares no file descriptor: the translation hands out a bounce buffer filled
 * by a copy, and this hook writes it back when @write and frees it). The
 * controller calls it exactly once per successful translation, before it
 * signals the completion or interrupt that depends on the access. When NULL
 * (every in-process owner) nothing changes.
 */
typedef void (*nvmk_emu_dma_done_fn)(void *ctx, void *host, uint64_t iova, size_t len, bool write);

enum nvmk_emu_backing {
	NVMK_EMU_BACK_RAM = 0, /* sparse, allocated on first write */
	NVMK_EMU_BACK_FILE,    /* a regular file, pread/pwrite */
	NVMK_EMU_BACK_NULL,    /* writes discarded, reads return zeroes */
};

struct nvmk_emu_ns_config {
	uint32_t nsid;        /* 1..max_namespaces */
	uint64_t nblocks;     /* size in logical blocks */
	uint8_t lba_shift;    /* 9 (512 B) or 12 (4 KiB) */
	enum nvmk_emu_backing backing;
	const char *path;     /* NVMK_EMU_BACK_FILE only; created/extended as needed */
};

#define NVMK_EMU_MAX_NS 16

struct nvmk_emu_config {
	const char *name;     /* for log lines, e.g. "emu0" */
	const char *serial;   /* Identify SN, at most 20 chars */
	const char *model;    /* Identify MN, at most 40 chars */
	uint16_t mqes;        /* CAP.MQES (0's based max queue entries), 0 is legal to configure */
	uint8_t mdts;         /* Identify MDTS (0 = no limit) */
	uint16_t max_io_queues; /* number of I/O SQ/CQ pairs supported */
	uint16_t msix_vectors;  /* MSI-X table size (>= 1) */
	uint8_t dstrd;        /* CAP.DSTRD */
	uint8_t mpsmin;       /* CAP.MPSMIN (0 = 4 KiB); CC.MPS below it is refused */
	uint8_t mpsmax;       /* CAP.MPSMAX */
	uint8_t cap_to;       /* CAP.TO in 500 ms units (0 means use 1) */
	uint32_t rdy_delay_ms;  /* delay before CSTS.RDY follows CC.EN (either way) */
	uint32_t shn_delay_ms;  /* delay before CSTS.SHST reads complete */
	bool rdy_never;       /* CSTS.RDY never becomes 1 (broken device) */
	uint8_t aerl;         /* Identify AERL (0's based) */
	uint8_t acl;          /* Identify ACL (0's based) */
	bool no_dbbuf;        /* do not offer Doorbell Buffer Config */
	/* tests: never look at shadow doorbells on a timer (by default a worker
	 * that sleeps looks every 1 ms, for hosts that skip the register writes
	 * EventIdx asks for): only those writes wake it */
	bool no_shadow_poll;
	/* tests: the worker sleeps as soon as it has nothing to do, without
	 * spinning first (every idle moment races with the host's doorbells) */
	bool no_spin;
	bool no_vwc;          /* no volatile write cache */
	/*
	 * Inline execution: a write to an I/O queue's SQ tail or CQ head doorbell
	 * register runs the commands now in that queue on the writing thread
	 * before the write returns (CQEs posted, the CQ's MSI-X eventfd signalled,
	 * as the worker does); the worker keeps the admin queue, registers,
	 * events, held commands, reset, pause and snapshot. For hosts that have
	 * fewer CPUs than busy threads: no wake-up of another thread per I/O.
	 * The doorbell write then takes as long as the commands (a memcpy each
	 * on a RAM namespace, a pread/pwrite on a file). Whenever inline cannot
	 * run (the worker or another thread is processing, fault rules or
	 * tampering hooks are installed, a pause, snapshot, reset or shutdown is
	 * under way, the controller failed) the write wakes the worker instead,
	 * as without this option. Doorbell Buffer Config is not offered (shadow
	 * doorbells skip the register writes that run the commands), nor may a
	 * doorbell page be set. Off by default.
	 */
	bool inline_io;
	uint32_t max_namespaces; /* Identify NN; 0 means NVMK_EMU_MAX_NS */
	unsigned nr_ns;
	struct nvmk_emu_ns_config ns[NVMK_EMU_MAX_NS];
	/*
	 * Another emulated controller whose NVM subsystem this one joins: the two
	 * share namespaces (and their reservations) and get different CNTLIDs.
	 * ns[] must then be empty; the namespaces are the subsystem's.
	 */
	struct nvmk_emu *subsystem_of;
	nvmk_emu_dma_fn dma;
	void *dma_ctx;
	nvmk_emu_dma_done_fn dma_done; /* optional, see nvmk_emu_dma_done_fn */
};

/** nvmk_emu_config_default - fill @cfg with sane defaults: one 1 GiB RAM
 *  namespace of 512 B blocks, MQES 1023, MDTS 5 (128 KiB), 64 I/O queues,
 *  65 vectors, DSTRD 0, AERL 3, ACL 3, no delays. @dma must still be set. */
void nvmk_emu_config_default(struct nvmk_emu_config *cfg);

/** nvmk_emu_create - create a controller in reset state (CC.EN = 0).
 *  Return: 0 or negative errno (-EINVAL with a log line naming the bad field). */
int nvmk_emu_create(const struct nvmk_emu_config *cfg, struct nvmk_emu **out);
/** nvmk_emu_destroy - stop the worker and free everything. NULL is a no-op. */
void nvmk_emu_destroy(struct nvmk_emu *emu);
const char *nvmk_emu_name(const struct nvmk_emu *emu);

/* ---- BAR0 ---- */
/** Size of BAR0 in bytes (registers + doorbells for every queue). */
size_t nvmk_emu_bar_size(const struct nvmk_emu *emu);
/* 32/64-bit register access at a byte offset into BAR0. Offsets out of range
 * or misaligned read as 0 / are ignored (like a real device, logged once). After
 * surprise removal every read returns all ones. */
uint32_t nvmk_emu_reg_read32(struct nvmk_emu *emu, uint32_t off);
uint64_t nvmk_emu_reg_read64(struct nvmk_emu *emu, uint32_t off);
void nvmk_emu_reg_write32(struct nvmk_emu *emu, uint32_t off, uint32_t val);
void nvmk_emu_reg_write64(struct nvmk_emu *emu, uint32_t off, uint64_t val);
/** nvmk_emu_set_db_page - the doorbells live in memory the worker scans:
 *  doorbell i (SQ y tail at 2y, CQ y head at 2y + 1) is the 32-bit word at
 *  @page + i * @stride, for i < @count (doorbells past the last queue are not
 *  scanned). A store there acts as a write of that doorbell register, with
 *  the same checks (an invalid value, a queue that does not exist); the
 *  worker finds it while it watches (about 200 us after its last work), then
 *  within 20 us, then within 1 ms when idle. A register write to a doorbell
 *  (nvmk_emu_reg_write32) must then also store the value on the page first,
 *  and only wakes the worker. The emulator zeroes a doorbell there when its
 *  queue is created and all of them on a reset. Set once, before the page is
 *  used; it must stay mapped until nvmk_emu_destroy. Return 0, -EINVAL (NULL,
 *  stride not a multiple of 4, count 0), -EBUSY (already set), -ENOMEM. */
int nvmk_emu_set_db_page(struct nvmk_emu *emu, volatile uint32_t *page, uint32_t stride,
			 unsigned count);

/* ---- MSI-X ---- */
/** nvmk_emu_set_irq_fd - bind MSI-X @vector to eventfd @fd (-1 unbinds).
 *  The emulator writes 1 to the eventfd to signal. Return 0 or -EINVAL. */
int nvmk_emu_set_irq_fd(struct nvmk_emu *emu, uint16_t vector, int fd);
unsigned nvmk_emu_irq_count(const struct nvmk_emu *emu);
/** Per-vector mask, as the MSI-X table's Vector Control bit. */
int nvmk_emu_irq_mask(struct nvmk_emu *emu, uint16_t vector, bool masked);

/* ---- Namespace management (host side of the emulator) ---- */
/* Each raises a Namespace Attribute Changed notice (if enabled by Async
 * Event Configuration) and records the NSID in the Changed Namespace List. */
int nvmk_emu_ns_add(struct nvmk_emu *emu, const struct nvmk_emu_ns_config *ns);
int nvmk_emu_ns_remove(struct nvmk_emu *emu, uint32_t nsid);
int nvmk_emu_ns_resize(struct nvmk_emu *emu, uint32_t nsid, uint64_t nblocks);

/* ---- Fault injection ---- */
enum nvmk_emu_fault_kind {
	NVMK_FAULT_DELAY = 1,      /* complete after @delay_us */
	NVMK_FAULT_HANG,           /* never complete (until reset, Abort or SQ deletion) */
	NVMK_FAULT_DROP_IRQ,       /* post the CQE but do not signal the interrupt */
	NVMK_FAULT_STATUS,         /* complete with status field @status (NVME_SF(sct, sc) | DNR...) */
	NVMK_FAULT_BAD_CID,        /* CQE carries a CID that was not submitted */
	NVMK_FAULT_BAD_PHASE,      /* CQE written with the wrong phase tag */
	NVMK_FAULT_BAD_SQHD,       /* CQE SQ head pointer out of range */
	NVMK_FAULT_DUPLICATE,      /* the CQE is posted twice */
	NVMK_FAULT_FATAL,          /* set CSTS.CFS when the command is fetched; stop processing */
	NVMK_FAULT_REMOVE,         /* surprise removal when the command is fetched */
};

#define NVMK_FAULT_ANY_QID 0xffffffffu
#define NVMK_FAULT_ANY_OPC 0xffffffffu

struct nvmk_emu_fault {
	enum nvmk_emu_fault_kind kind;
	uint32_t qid;      /* SQ id, or NVMK_FAULT_ANY_QID */
	uint32_t opcode;   /* opcode on that queue (admin if qid == 0), or ANY */
	uint32_t skip;     /* let this many matching commands pass first */
	uint32_t count;    /* then apply to this many (0 = forever) */
	uint64_t delay_us; /* NVMK_FAULT_DELAY */
	uint16_t status;   /* NVMK_FAULT_STATUS, status field without phase */
};

/** nvmk_emu_fault_add - arm a fault rule. Rules are checked in the order
 *  added; the first match applies. A rule used up (applied @count times)
 *  frees its slot: its id may be given to a later rule. Return: rule id
 *  (>= 0) or -ENOSPC (32 live rules) / -EINVAL. */
int nvmk_emu_fault_add(struct nvmk_emu *emu, const struct nvmk_emu_fault *f);
/** nvmk_emu_fault_hits - how many times rule @id applied. */
uint64_t nvmk_emu_fault_hits(struct nvmk_emu *emu, int id);
void nvmk_emu_fault_clear(struct nvmk_emu *emu);
/** Set CSTS.CFS now (controller fatal status); commands stop being processed. */
void nvmk_emu_set_fatal(struct nvmk_emu *emu);
/** Surprise removal now: registers read all ones, no more DMA or interrupts. */
void nvmk_emu_surprise_remove(struct nvmk_emu *emu);

/*
 * Tampering (tests only: a hostile device, tests/support/hostile.h). The
 * hooks run on the emulator's worker thread, every call with the worker's
 * state consistent; install them before the controller is enabled (or with
 * no command in flight) and keep @ctx alive until the emulator is destroyed
 * or the hooks are cleared. Any hook may be NULL.
 */
struct nvmk_emu_tamper {
	void *ctx;
	/* A command of queue @sqid was fetched, before it is processed. */
	void (*fetched)(void *ctx, uint16_t sqid, const struct nvme_sqe *sqe);
	/* A completion for queue @sqid is about to be written: edit @cqe (status
	 * is the field without the phase bit, as in NVME_CQE_SF). Return the
	 * number of copies to write: 0 drops it, 1 is normal, more repeat it.
	 * *@flip_phase = true writes it with the wrong phase tag. */
	unsigned (*cqe)(void *ctx, uint16_t sqid, struct nvme_cqe *cqe, bool *flip_phase);
	/* Data an admin command returns (Identify, Get Log Page, Get Features)
	 * is about to be transferred: edit @buf (@len bytes) in place. */
	void (*admin_data)(void *ctx, const struct nvme_sqe *sqe, void *buf, size_t len);
};

/** nvmk_emu_set_tamper - install (@t) or clear (NULL) the tampering hooks. */
void nvmk_emu_set_tamper(struct nvmk_emu *emu, const struct nvmk_emu_tamper *t);

/* ---- Statistics ---- */
/** Number of commands of @opcode fetched on the admin queue (@admin) or on any
 *  I/O queue, since creation. */
uint64_t nvmk_emu_cmd_count(struct nvmk_emu *emu, bool admin, uint8_t opcode);
/** Number of controller resets (CC.EN 1->0 transitions). */
uint64_t nvmk_emu_reset_count(struct nvmk_emu *emu);
/** Number of I/O commands run inline, on the thread that wrote the doorbell
 *  (nvmk_emu_config.inline_io), since creation; the rest ran on the worker. */
uint64_t nvmk_emu_inline_count(struct nvmk_emu *emu);

/* ---- Pause and snapshot (a device whose driver went away: nvmekeep-emu --persist) ---- */

/* One queue as the controller sees it. Tails and heads are the latest
 * doorbell values the controller will act on (a doorbell written but not yet
 * processed counts), not how far it got. */
struct nvmk_emu_snap_sq {
	uint16_t qid, cqid;
	uint32_t size; /* entries */
	uint64_t base; /* IOVA */
	uint32_t head; /* next entry the controller fetches */
	uint32_t tail; /* doorbell */
};

struct nvmk_emu_snap_cq {
	uint16_t qid, iv;
	bool ien;
	uint8_t phase; /* the phase tag the controller writes at @tail */
	uint32_t size;
	uint64_t base;
	uint32_t head; /* doorbell */
	uint32_t tail; /* next entry the controller writes */
};

enum nvmk_emu_snap_cmd_kind {
	NVMK_EMU_SNAP_CMD_DELAYED = 0, /* executed, completion held for a while */
	NVMK_EMU_SNAP_CMD_HUNG = 1,    /* never completes unless aborted */
	NVMK_EMU_SNAP_CMD_AER = 2,     /* outstanding Asynchronous Event Request */
};

struct nvmk_emu_snap_cmd {
	uint16_t sqid, cid;
	uint8_t opc;
	uint8_t kind; /* enum nvmk_emu_snap_cmd_kind */
};

struct nvmk_emu_snapshot {
	bool enabled, ready; /* CC.EN accepted, CSTS.RDY */
	uint32_t cc, aqa;
	uint64_t asq, acq;
	uint64_t dbbuf_shadow, dbbuf_eventidx; /* IOVAs, 0 = shadow doorbells off */
	uint16_t nsq_granted, ncq_granted;     /* Number of Queues granted (1's based), 0 = never set */
	unsigned nsq, ncq, ncmd;
	struct nvmk_emu_snap_sq *sqs; /* admin queue (qid 0) first */
	struct nvmk_emu_snap_cq *cqs;
	struct nvmk_emu_snap_cmd *cmds;
};

/**
 * nvmk_emu_pause - stop (@on) or resume the controller's command processing
 * at a command boundary: a paused controller fetches nothing, completes
 * nothing and touches no memory, but registers and doorbells are still
 * written (they are acted on when it resumes).
 * Return: 0, or -ETIMEDOUT when the worker did not reach a boundary within
 * @timeout_ms (it is then asked to pause all the same).
 */
int nvmk_emu_pause(struct nvmk_emu *emu, bool on, unsigned timeout_ms);

/**
 * nvmk_emu_snapshot - the controller's queues and held commands, taken by
 * its worker between two commands (consistent). Arrays are allocated; free
 * with nvmk_emu_snapshot_free. With shadow doorbells on, the shadow values
 * are read through the DMA callback.
 * Return: 0, -ETIMEDOUT (@timeout_ms passed), -ENOMEM.
 */
int nvmk_emu_snapshot(struct nvmk_emu *emu, struct nvmk_emu_snapshot *out, unsigned timeout_ms);
/** nvmk_emu_snapshot_free - free the arrays of @s (not @s itself). */
void nvmk_emu_snapshot_free(struct nvmk_emu_snapshot *s);

#endif /* NVMEKEEP_EMU_H */
