/* SPDX-License-Identifier: MIT */
/*
 * A minimal, raw NVMe host for the emulator conformance tests.
 *
 * This is NOT the driver: it is small on purpose, trusts nothing it reads,
 * exposes every queue's raw memory, and never blocks without a timeout, so
 * that a broken controller makes a test fail with a message instead of
 * hanging. Everything is derived from NVMe Base 2.0 and NVM-CS 1.0.
 *
 * DMA: one 64 MiB anonymous mapping, seen by the controller at IOVA
 * HOST_IOVA_BASE (so IOVA != host address); the translation callback returns
 * NULL for anything outside it. A page allocator hands out zeroed pages.
 *
 * Threading: one host per controller; the admin queue is used by one thread;
 * each I/O queue pair by at most one thread at a time. The page allocator is
 * thread safe.
 */
#ifndef NVMK_TEST_EMU_HOST_H
#define NVMK_TEST_EMU_HOST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "nvmekeep/emu.h"
#include "nvmekeep/spec.h"

#define HOST_IOVA_BASE	   0x1000000000ull
#define HOST_ARENA_SIZE	   (64ull << 20)
#define HOST_PAGE	   4096u
#define HOST_ARENA_PAGES   (HOST_ARENA_SIZE / HOST_PAGE)
#define HOST_TIMEOUT_MS	   5000 /* a command that takes longer than this has failed */
#define HOST_QUIET_MS	   150	/* how long to watch for something that must NOT happen */
#define HOST_MAX_QID	   130	/* highest queue id the host keeps state for */
#define HOST_MAX_VECTORS   2048 /* MSI-X table size limit (PCIe) */
#define HOST_STASH	   64	/* completions kept aside while waiting for another one */
#define HOST_PRP_MAX_LISTS 64	/* PRP list pages per command */

/* ---- DMA arena ---- */

struct host_arena;

struct host_arena *host_arena_create(void);
void host_arena_destroy(struct host_arena *a);
/* The nvmk_emu_dma_fn given to the emulator. */
void *host_arena_dma(void *ctx, uint64_t iova, size_t len, bool write);
/* Calls to the callback so far / calls that were refused (outside the arena). */
uint64_t host_arena_dma_calls(struct host_arena *a);
uint64_t host_arena_dma_faults(struct host_arena *a);
/* Zeroed, contiguous pages aligned to @align_pages pages. Return IOVA or 0. */
uint64_t host_page_alloc(struct host_arena *a, size_t npages, size_t align_pages);
void host_page_free(struct host_arena *a, uint64_t iova, size_t npages);
/* Host address of @iova (which must be inside the arena). */
void *host_va(struct host_arena *a, uint64_t iova);

/* ---- queues ---- */

struct host_cq {
	bool live;
	uint16_t qid;
	uint32_t entries;
	uint64_t iova;
	size_t npages;
	struct nvme_cqe *ring;
	uint32_t head;
	uint16_t phase;
	int vector; /* -1: interrupts disabled (IEN = 0) */
	struct nvme_cqe stash[HOST_STASH];
	unsigned nstash;
};

struct host_sq {
	bool live;
	uint16_t qid;
	uint16_t cqid;
	uint32_t entries;
	uint64_t iova;
	size_t npages;
	struct nvme_sqe *ring;
	uint32_t tail;
	uint32_t head; /* last valid SQHD reported by the controller */
	uint16_t next_cid;
};

enum host_db_mode {
	HOST_DB_MMIO = 0,    /* doorbell registers only */
	HOST_DB_SHADOW_MMIO, /* shadow buffer and doorbell register, always */
	HOST_DB_EVENTIDX,    /* shadow buffer; register only when EventIdx asks (Base 2.0 5.8) */
	HOST_DB_SHADOW_ONLY, /* shadow buffer only for I/O queues (admin keeps MMIO too) */
};

struct host {
	struct nvmk_emu *emu;
	struct host_arena *arena;
	bool own_arena;
	struct nvmk_emu_config cfg;
	char name[32];
	uint64_t cap;
	uint32_t dstrd;
	uint32_t mps; /* CC.MPS that host_enable() writes */
	uint32_t page_size;
	uint32_t cc_css; /* CC.CSS that host_enable() writes */
	struct host_sq sq[HOST_MAX_QID + 1];
	struct host_cq cq[HOST_MAX_QID + 1];
	int vec_efd[HOST_MAX_VECTORS];
	/* Doorbell Buffer Config state */
	enum host_db_mode db_mode;
	uint64_t dbbuf_iova, eventidx_iova;
	uint32_t *dbbuf, *eventidx;
	uint64_t mmio_doorbell_writes; /* I/O queue doorbell register writes */
	/* host_use_db_page: doorbells are stores to this page (nvmk_emu_set_db_page) */
	uint32_t *db_page;
	size_t db_page_len;
	uint64_t db_page_reg_writes;   /* doorbell register writes made all the same */
	uint64_t seq;		       /* creation order */
};

/* Fill @cfg with nvmk_emu_config_default() plus a name, serial and model. */
void host_config(struct nvmk_emu_config *cfg, const char *name);
/* Create the arena and the emulator from @cfg (dma/dma_ctx are overwritten).
 * Return NULL (with a message on stderr) on failure. */
struct host *host_create(const struct nvmk_emu_config *cfg);
/* Like host_create() but return the errno from nvmk_emu_create(). */
int host_try_create(const struct nvmk_emu_config *cfg, struct host **out);
void host_destroy(struct host *h);
/* Destroy every host still alive: a cmocka teardown, so that a test that
 * fails half way (longjmp) leaks nothing. Always returns 0. */
int host_destroy_all(void **state);

/* Put the doorbells on a page the emulator scans (nvmk_emu_set_db_page):
 * from then on host_wr32 to a doorbell stores the value there, and writes the
 * register as well only when the page already holds that value (a store that
 * changes nothing would go unseen). 0 or negative errno. */
int host_use_db_page(struct host *h);

uint32_t host_rd32(struct host *h, uint32_t off);
uint64_t host_rd64(struct host *h, uint32_t off);
void host_wr32(struct host *h, uint32_t off, uint32_t val);
void host_wr64(struct host *h, uint32_t off, uint64_t val);
uint64_t host_now_ms(void);
void host_sleep_ms(unsigned ms);

/* Poll CSTS until (CSTS & mask) == want; -ETIMEDOUT after @timeout_ms.
 * @csts_out gets the last value read. */
int host_wait_csts(struct host *h, uint32_t mask, uint32_t want, unsigned timeout_ms,
		   uint32_t *csts_out);
/* Timeout the spec gives for RDY transitions: CAP.TO * 500 ms (plus slack). */
unsigned host_rdy_timeout_ms(struct host *h);

/* Program AQA/ASQ/ACQ for an admin queue of @aq_entries, write CC with EN=1
 * and wait for CSTS.RDY. Return 0, -ETIMEDOUT, or -EIO if CSTS.CFS is set. */
int host_enable(struct host *h, uint32_t aq_entries);
/* CC.EN = 0, wait for RDY = 0, forget every queue. */
int host_disable(struct host *h);
/* CC.SHN = @shn (normal/abrupt), wait for SHST = complete. */
int host_shutdown(struct host *h, uint32_t shn, unsigned timeout_ms);
/* host_enable(32) + Set Features Number of Queues (max). 0 or negative. */
int host_bringup(struct host *h);

/* Submit @sqe on SQ @qid (the CID is assigned and written back into @sqe).
 * Return the CID (>= 0) or -EBUSY (queue full) / -EINVAL (no such queue). */
int host_submit(struct host *h, uint16_t qid, struct nvme_sqe *sqe);
/* Write @sqe into SQ @qid without ringing the doorbell (CID kept as given). */
int host_sq_put(struct host *h, uint16_t qid, const struct nvme_sqe *sqe);
void host_sq_ring(struct host *h, uint16_t qid);
/* Wait for the completion of (@qid, @cid); other completions seen meanwhile
 * are kept aside. Return the status field (NVME_CQE_SF) >= 0 or -ETIMEDOUT. */
int host_wait(struct host *h, uint16_t qid, uint16_t cid, struct nvme_cqe *cqe,
	      unsigned timeout_ms);
/* Submit and wait; return as host_wait(). */
int host_cmd(struct host *h, uint16_t qid, struct nvme_sqe *sqe, struct nvme_cqe *cqe);
int host_admin(struct host *h, struct nvme_sqe *sqe, struct nvme_cqe *cqe);
/* I/O queue spellings of host_submit() / host_wait(). */
static inline int host_io_submit(struct host *h, uint16_t qid, struct nvme_sqe *sqe)
{
	return host_submit(h, qid, sqe);
}

static inline int host_io_wait(struct host *h, uint16_t qid, uint16_t cid, struct nvme_cqe *cqe,
			       unsigned timeout_ms)
{
	return host_wait(h, qid, cid, cqe, timeout_ms);
}

int host_admin_timeout(struct host *h, struct nvme_sqe *sqe, struct nvme_cqe *cqe,
		       unsigned timeout_ms);
/* Next completion on CQ @cqid in arrival order (kept-aside ones first),
 * whatever its CID. 0 or -ETIMEDOUT. */
int host_cq_next(struct host *h, uint16_t cqid, struct nvme_cqe *cqe, unsigned timeout_ms);
/* Raw copy of entry @idx of CQ @cqid, whatever its phase. */
void host_cq_raw(struct host *h, uint16_t cqid, uint32_t idx, struct nvme_cqe *cqe);

/* Queue management through admin commands; return the status field or < 0.
 * @vector < 0 creates the CQ with IEN = 0. A CQ with a vector gets that
 * vector's eventfd bound (host_irq_efd). */
int host_create_cq(struct host *h, uint16_t qid, uint32_t entries, int vector);
int host_create_sq(struct host *h, uint16_t qid, uint16_t cqid, uint32_t entries);
int host_create_qpair(struct host *h, uint16_t qid, uint32_t entries, int vector);
int host_delete_sq(struct host *h, uint16_t qid);
int host_delete_cq(struct host *h, uint16_t qid);
int host_set_num_queues(struct host *h, uint16_t nsq, uint16_t ncq, uint32_t *dw0);

/* MSI-X: eventfd bound to @vector (created on first use), its pending count
 * read without blocking (0 if none), or waited for. */
int host_irq_efd(struct host *h, uint16_t vector);
uint64_t host_irq_take(struct host *h, uint16_t vector);
bool host_irq_wait(struct host *h, uint16_t vector, unsigned timeout_ms);

/* Doorbell Buffer Config (Base 2.0 5.8): allocate the two pages, send the
 * command and switch the doorbell mode. Return the status field or < 0. */
int host_dbbuf_config(struct host *h, enum host_db_mode mode);

/* ---- data buffers and PRPs ---- */

struct host_buf {
	uint64_t iova;
	uint8_t *va;
	size_t len;
	size_t npages;
};

int host_buf_alloc(struct host *h, struct host_buf *b, size_t len);
void host_buf_free(struct host *h, struct host_buf *b);

struct host_prp {
	uint64_t prp1, prp2;
	uint64_t list[HOST_PRP_MAX_LISTS];
	unsigned nlists;
};

/* PRP1/PRP2 (and list pages, chained as needed) for the IOVA-contiguous
 * buffer [@iova, @iova + @len) with the host's memory page size. A list's
 * first page starts at @list_off bytes into its page (qword aligned; 0
 * normally): Base 2.0 4.1.1 allows a PRP List pointer with an offset. */
int host_prp_build(struct host *h, struct host_prp *p, uint64_t iova, size_t len, size_t list_off);
void host_prp_free(struct host *h, struct host_prp *p);

/* ---- command helpers (return the status field or < 0) ---- */

int host_identify(struct host *h, uint8_t cns, uint32_t nsid, void *out4096);
int host_get_features(struct host *h, uint8_t fid, uint32_t cdw11, uint32_t *dw0);
int host_set_features(struct host *h, uint8_t fid, uint32_t cdw11, uint32_t *dw0);
int host_get_log(struct host *h, uint8_t lid, uint32_t nsid, void *out, size_t len, bool rae);
/* Admin command with a data buffer of @len bytes copied in (@to_ctrl) or out. */
int host_admin_data(struct host *h, struct nvme_sqe *sqe, void *data, size_t len, bool to_ctrl,
		    struct nvme_cqe *cqe);
/* I/O command with a data buffer, on queue @qid. */
int host_io_data(struct host *h, uint16_t qid, struct nvme_sqe *sqe, void *data, size_t len,
		 bool to_ctrl, struct nvme_cqe *cqe);
/* Read/Write/Compare/Write Zeroes: @nlb is the real count (1-based). The data
 * buffer is IOVA-contiguous [@iova, +len); @iova 0 means no data pointer. */
int host_rw(struct host *h, uint16_t qid, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb,
	    uint32_t cdw12_flags, uint64_t iova, size_t len, struct nvme_cqe *cqe);

static inline void host_sqe(struct nvme_sqe *sqe, uint8_t opc, uint32_t nsid)
{
	*sqe = (struct nvme_sqe){.opc = opc, .nsid = nsid};
}

/* Deterministic pattern for block contents; different per (seed, byte offset). */
void host_fill(void *buf, size_t len, uint64_t seed);
/* Offset of the first byte that differs from the pattern, or -1. */
long host_check_fill(const void *buf, size_t len, uint64_t seed);
bool host_all_zero(const void *buf, size_t len);

/* ---- status assertions ---- */

#define SF_CODE(sf) ((sf)&0x7ff) /* SCT + SC, without CRD/M/DNR */

void host_assert_sf(int sf, unsigned sct, unsigned sc, const char *expr, const char *file,
		    int line);
#define assert_sf(sf, sct, sc) host_assert_sf((sf), (sct), (sc), #sf, __FILE__, __LINE__)
#define assert_ok(sf)	       host_assert_sf((sf), 0, 0, #sf, __FILE__, __LINE__)

#endif /* NVMK_TEST_EMU_HOST_H */
