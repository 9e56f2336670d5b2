/* SPDX-License-Identifier: MIT */
/*
 * Minimal raw NVMe host for the emulator conformance tests (see host.h).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "host.h"

/* ------------------------------------------------------------------------ */
/* DMA arena                                                                 */
/* ------------------------------------------------------------------------ */

struct host_arena {
	uint8_t *base;
	void *map;
	size_t map_len;
	pthread_mutex_t lock; /* protects used[] */
	uint8_t used[HOST_ARENA_PAGES];
	uint64_t dma_calls;  /* atomic */
	uint64_t dma_faults; /* atomic */
};

struct host_arena *host_arena_create(void)
{
	struct host_arena *a = calloc(1, sizeof(*a));
	const size_t align = 2u << 20;
	uintptr_t p;

	if (!a)
		return NULL;
	/* Over-map so that the arena itself is 2 MiB aligned; pages are only
	 * committed when touched. */
	a->map_len = HOST_ARENA_SIZE + align;
	a->map = mmap(NULL, a->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a->map == MAP_FAILED) {
		free(a);
		return NULL;
	}
	p = ((uintptr_t)a->map + align - 1) & ~(uintptr_t)(align - 1);
	a->base = (uint8_t *)p;
	pthread_mutex_init(&a->lock, NULL);
	return a;
}

void host_arena_destroy(struct host_arena *a)
{
	if (!a)
		return;
	munmap(a->map, a->map_len);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

void *host_arena_dma(void *ctx, uint64_t iova, size_t len, bool write)
{
	struct host_arena *a = ctx;
	uint64_t off;

	(void)write;
	/* relaxed: a statistic, orders nothing */
	__atomic_fetch_add(&a->dma_calls, 1, __ATOMIC_RELAXED);
	if (len == 0 || iova < HOST_IOVA_BASE)
		goto fault;
	off = iova - HOST_IOVA_BASE;
	if (off >= HOST_ARENA_SIZE || len > HOST_ARENA_SIZE - off)
		goto fault;
	return a->base + off;
fault:
	__atomic_fetch_add(&a->dma_faults, 1, __ATOMIC_RELAXED);
	return NULL;
}

uint64_t host_arena_dma_calls(struct host_arena *a)
{
	return __atomic_load_n(&a->dma_calls, __ATOMIC_RELAXED);
}

uint64_t host_arena_dma_faults(struct host_arena *a)
{
	return __atomic_load_n(&a->dma_faults, __ATOMIC_RELAXED);
}

uint64_t host_page_alloc(struct host_arena *a, size_t npages, size_t align_pages)
{
	size_t i, j;

	if (npages == 0 || npages > HOST_ARENA_PAGES)
		return 0;
	if (align_pages == 0)
		align_pages = 1;
	pthread_mutex_lock(&a->lock);
	for (i = 0; i + npages <= HOST_ARENA_PAGES; i += align_pages) {
		for (j = 0; j < npages; j++)
			if (a->used[i + j])
				break;
		if (j == npages) {
			memset(a->used + i, 1, npages);
			pthread_mutex_unlock(&a->lock);
			memset(a->base + i * HOST_PAGE, 0, npages * HOST_PAGE);
			return HOST_IOVA_BASE + i * HOST_PAGE;
		}
	}
	pthread_mutex_unlock(&a->lock);
	fprintf(stderr, "host: arena exhausted (%zu pages wanted)\n", npages);
	return 0;
}

void host_page_free(struct host_arena *a, uint64_t iova, size_t npages)
{
	size_t first;

	if (!iova || iova < HOST_IOVA_BASE)
		return;
	first = (iova - HOST_IOVA_BASE) / HOST_PAGE;
	if (first + npages > HOST_ARENA_PAGES)
		return;
	pthread_mutex_lock(&a->lock);
	memset(a->used + first, 0, npages);
	pthread_mutex_unlock(&a->lock);
}

void *host_va(struct host_arena *a, uint64_t iova)
{
	return a->base + (iova - HOST_IOVA_BASE);
}

/* ------------------------------------------------------------------------ */
/* Small utilities                                                           */
/* ------------------------------------------------------------------------ */

uint64_t host_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void host_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Poll politely: yield a few times, then sleep a little (2 shared cores). */
static void host_backoff(unsigned iter)
{
	struct timespec ts = {0, 0};

	if (iter < 16) {
		sched_yield();
		return;
	}
	ts.tv_nsec = iter < 64 ? 50000L : 500000L;
	nanosleep(&ts, NULL);
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void host_fill(void *buf, size_t len, uint64_t seed)
{
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i += 8) {
		uint64_t v = splitmix64(seed * 0x100000001b3ull + i / 8);
		size_t n = len - i < 8 ? len - i : 8;

		memcpy(p + i, &v, n);
	}
}

long host_check_fill(const void *buf, size_t len, uint64_t seed)
{
	const uint8_t *p = buf;
	size_t i, k;

	for (i = 0; i < len; i += 8) {
		uint64_t v = splitmix64(seed * 0x100000001b3ull + i / 8);
		size_t n = len - i < 8 ? len - i : 8;
		const uint8_t *e = (const uint8_t *)&v;

		for (k = 0; k < n; k++)
			if (p[i + k] != e[k])
				return (long)(i + k);
	}
	return -1;
}

bool host_all_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

void host_assert_sf(int sf, unsigned sct, unsigned sc, const char *expr, const char *file, int line)
{
	if (sf < 0) {
		print_error("%s: no completion (%s)\n", expr, strerror(-sf));
		_fail(file, line);
	}
	if (SF_CODE((unsigned)sf) != NVME_SF(sct, sc)) {
		print_error("%s: status SCT %u SC 0x%02x (status field 0x%04x), expected SCT %u SC "
			    "0x%02x\n",
			    expr, NVME_SF_SCT((unsigned)sf), NVME_SF_SC((unsigned)sf), (unsigned)sf,
			    sct, sc);
		_fail(file, line);
	}
}

/* ------------------------------------------------------------------------ */
/* Host and registers                                                        */
/* ------------------------------------------------------------------------ */

void host_config(struct nvmk_emu_config *cfg, const char *name)
{
	nvmk_emu_config_default(cfg);
	cfg->name = name;
	cfg->serial = "NVMKTEST0001";
	cfg->model = "nvmekeep conformance target";
}

/* Hosts alive, for host_destroy_all(); hosts are created and destroyed by
 * the test's main thread only. */
#define HOST_LIVE_MAX 16
static struct host *host_live[HOST_LIVE_MAX];

static void host_live_set(struct host *old, struct host *new)
{
	unsigned i;

	for (i = 0; i < HOST_LIVE_MAX; i++) {
		if (host_live[i] == old) {
			host_live[i] = new;
			return;
		}
	}
}

int host_destroy_all(void **state)
{
	struct host *newest;
	unsigned i;

	(void)state;
	/* newest first: a controller that joined another's subsystem goes
	 * before the one it joined */
	for (;;) {
		newest = NULL;
		for (i = 0; i < HOST_LIVE_MAX; i++)
			if (host_live[i] && (!newest || host_live[i]->seq > newest->seq))
				newest = host_live[i];
		if (!newest)
			return 0;
		host_destroy(newest);
	}
}

int host_try_create(const struct nvmk_emu_config *cfg, struct host **out)
{
	struct host *h = calloc(1, sizeof(*h));
	unsigned i;
	int rc;

	*out = NULL;
	if (!h)
		return -ENOMEM;
	h->arena = host_arena_create();
	if (!h->arena) {
		free(h);
		return -ENOMEM;
	}
	h->own_arena = true;
	h->cfg = *cfg;
	snprintf(h->name, sizeof(h->name), "%s", cfg->name ? cfg->name : "emu");
	h->cfg.name = h->name;
	h->cfg.dma = host_arena_dma;
	h->cfg.dma_ctx = h->arena;
	for (i = 0; i < HOST_MAX_VECTORS; i++)
		h->vec_efd[i] = -1;
	rc = nvmk_emu_create(&h->cfg, &h->emu);
	if (rc) {
		host_arena_destroy(h->arena);
		free(h);
		return rc;
	}
	h->cap = host_rd64(h, NVME_REG_CAP);
	h->dstrd = NVME_CAP_DSTRD(h->cap);
	h->mps = NVME_CAP_MPSMIN(h->cap);
	h->page_size = HOST_PAGE << h->mps;
	{
		static uint64_t seq;

		h->seq = ++seq;
	}
	host_live_set(NULL, h);
	*out = h;
	return 0;
}

struct host *host_create(const struct nvmk_emu_config *cfg)
{
	struct host *h;
	int rc = host_try_create(cfg, &h);

	if (rc)
		fprintf(stderr, "host: nvmk_emu_create(%s) failed: %s\n",
			cfg->name ? cfg->name : "?", strerror(-rc));
	return h;
}

void host_destroy(struct host *h)
{
	unsigned i;

	if (!h)
		return;
	host_live_set(h, NULL);
	/* Stop the controller before its memory and eventfds go away. */
	nvmk_emu_destroy(h->emu);
	if (h->db_page)
		munmap(h->db_page, h->db_page_len);
	for (i = 0; i < HOST_MAX_VECTORS; i++)
		if (h->vec_efd[i] >= 0)
			close(h->vec_efd[i]);
	if (h->own_arena)
		host_arena_destroy(h->arena);
	free(h);
}

uint32_t host_rd32(struct host *h, uint32_t off)
{
	return nvmk_emu_reg_read32(h->emu, off);
}

uint64_t host_rd64(struct host *h, uint32_t off)
{
	return nvmk_emu_reg_read64(h->emu, off);
}

int host_use_db_page(struct host *h)
{
	size_t len = nvmk_emu_bar_size(h->emu) - NVME_REG_DBS;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int rc;

	if (p == MAP_FAILED)
		return -errno;
	rc = nvmk_emu_set_db_page(h->emu, p, 4u << h->dstrd, (unsigned)(len >> (2 + h->dstrd)));
	if (rc) {
		munmap(p, len);
		return rc;
	}
	h->db_page = p;
	h->db_page_len = len;
	return 0;
}

void host_wr32(struct host *h, uint32_t off, uint32_t val)
{
	if (h->db_page && off >= NVME_REG_DBS && off - NVME_REG_DBS < h->db_page_len &&
	    !(off & 3)) {
		uint32_t *slot = &h->db_page[(off - NVME_REG_DBS) / 4];

		/* release: queue entries written before the doorbell value */
		if (__atomic_exchange_n(slot, val, __ATOMIC_RELEASE) != val)
			return;
		__atomic_fetch_add(&h->db_page_reg_writes, 1, __ATOMIC_RELAXED);
	}
	nvmk_emu_reg_write32(h->emu, off, val);
}

void host_wr64(struct host *h, uint32_t off, uint64_t val)
{
	nvmk_emu_reg_write64(h->emu, off, val);
}

int host_wait_csts(struct host *h, uint32_t mask, uint32_t want, unsigned timeout_ms,
		   uint32_t *csts_out)
{
	uint64_t deadline = host_now_ms() + timeout_ms;
	unsigned iter = 0;
	uint32_t csts;

	for (;;) {
		csts = host_rd32(h, NVME_REG_CSTS);
		if (csts_out)
			*csts_out = csts;
		if ((csts & mask) == want)
			return 0;
		if (host_now_ms() >= deadline)
			return -ETIMEDOUT;
		host_backoff(iter++);
	}
}

unsigned host_rdy_timeout_ms(struct host *h)
{
	unsigned to = NVME_CAP_TO(h->cap);

	if (to == 0 || to == 0xff)
		to = 1;
	return to * 500u + 1000u;
}

static size_t host_ring_pages(struct host *h, size_t bytes)
{
	size_t ps = h->page_size;

	return ((bytes + ps - 1) / ps) * (ps / HOST_PAGE);
}

static void host_forget_queues(struct host *h)
{
	unsigned q;

	for (q = 0; q <= HOST_MAX_QID; q++) {
		if (h->sq[q].live)
			host_page_free(h->arena, h->sq[q].iova, h->sq[q].npages);
		if (h->cq[q].live)
			host_page_free(h->arena, h->cq[q].iova, h->cq[q].npages);
		memset(&h->sq[q], 0, sizeof(h->sq[q]));
		memset(&h->cq[q], 0, sizeof(h->cq[q]));
	}
	/* The Doorbell Buffer Config does not survive a Controller Reset. */
	h->db_mode = HOST_DB_MMIO;
}

int host_enable(struct host *h, uint32_t aq_entries)
{
	struct host_sq *sq = &h->sq[0];
	struct host_cq *cq = &h->cq[0];
	uint64_t deadline;
	unsigned iter = 0;
	uint32_t cc, csts;
	size_t align;

	if ((host_rd32(h, NVME_REG_CC) & NVME_CC_EN) ||
	    (host_rd32(h, NVME_REG_CSTS) & NVME_CSTS_RDY))
		host_disable(h);
	host_forget_queues(h);
	if (aq_entries < NVME_AQ_MIN_ENTRIES || aq_entries > NVME_AQ_MAX_ENTRIES)
		return -EINVAL;
	h->page_size = HOST_PAGE << h->mps;
	align = h->page_size / HOST_PAGE;

	sq->npages = host_ring_pages(h, (size_t)aq_entries * sizeof(struct nvme_sqe));
	cq->npages = host_ring_pages(h, (size_t)aq_entries * sizeof(struct nvme_cqe));
	sq->iova = host_page_alloc(h->arena, sq->npages, align);
	cq->iova = host_page_alloc(h->arena, cq->npages, align);
	if (!sq->iova || !cq->iova)
		return -ENOMEM;
	sq->ring = host_va(h->arena, sq->iova);
	cq->ring = host_va(h->arena, cq->iova);
	sq->live = cq->live = true;
	sq->entries = cq->entries = aq_entries;
	sq->next_cid = 1;
	cq->phase = 1;
	cq->vector = 0; /* the admin CQ always uses vector 0 (Base 2.0 3.1.3.8) */

	host_wr32(h, NVME_REG_AQA, NVME_AQA(aq_entries - 1, aq_entries - 1));
	host_wr64(h, NVME_REG_ASQ, sq->iova);
	host_wr64(h, NVME_REG_ACQ, cq->iova);
	cc = NVME_CC_SET_CSS(h->cc_css) | NVME_CC_SET_MPS(h->mps) | NVME_CC_SET_AMS(0) |
	     NVME_CC_SET_IOSQES(NVME_SQES_LOG2) | NVME_CC_SET_IOCQES(NVME_CQES_LOG2);
	host_wr32(h, NVME_REG_CC, cc);
	host_wr32(h, NVME_REG_CC, cc | NVME_CC_EN);

	deadline = host_now_ms() + host_rdy_timeout_ms(h);
	for (;;) {
		csts = host_rd32(h, NVME_REG_CSTS);
		if (csts == 0xffffffffu)
			return -ENODEV;
		if (csts & NVME_CSTS_CFS)
			return -EIO;
		if (csts & NVME_CSTS_RDY)
			return 0;
		if (host_now_ms() >= deadline)
			return -ETIMEDOUT;
		host_backoff(iter++);
	}
}

int host_disable(struct host *h)
{
	uint32_t cc = host_rd32(h, NVME_REG_CC);
	int rc;

	host_wr32(h, NVME_REG_CC, cc & ~(NVME_CC_EN | NVME_CC_SHN_MASK));
	rc = host_wait_csts(h, NVME_CSTS_RDY, 0, host_rdy_timeout_ms(h), NULL);
	host_forget_queues(h);
	return rc;
}

int host_shutdown(struct host *h, uint32_t shn, unsigned timeout_ms)
{
	uint32_t cc = host_rd32(h, NVME_REG_CC);

	cc = (cc & ~NVME_CC_SHN_MASK) | NVME_CC_SET_SHN(shn);
	host_wr32(h, NVME_REG_CC, cc);
	return host_wait_csts(h, NVME_CSTS_SHST_MASK, NVME_CSTS_SET_SHST(NVME_SHST_COMPLETE),
			      timeout_ms, NULL);
}

int host_bringup(struct host *h)
{
	uint16_t n = h->cfg.max_io_queues ? h->cfg.max_io_queues : 1;
	int rc = host_enable(h, 32);

	if (rc)
		return rc;
	rc = host_set_num_queues(h, n, n, NULL);
	return rc == 0 ? 0 : (rc < 0 ? rc : -EIO);
}

/* ------------------------------------------------------------------------ */
/* Doorbells, submission and completion                                      */
/* ------------------------------------------------------------------------ */

/* Base 2.0 5.8: the host must tell the controller when the new value has
 * passed the EventIdx the controller wrote (the virtio-style test). */
static bool host_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

/* @idx: doorbell index, 2*qid (SQ tail) or 2*qid+1 (CQ head). */
static void host_doorbell(struct host *h, uint16_t qid, uint32_t idx, uint32_t old, uint32_t val)
{
	uint32_t off = NVME_REG_DBS + idx * (4u << h->dstrd);

	if (h->db_mode != HOST_DB_MMIO) {
		uint32_t slot = idx << h->dstrd; /* same stride as the registers, in dwords */

		/* seq_cst: release for the SQ entry written (or CQ entry
		 * consumed) before it, and ordered before the EventIdx load
		 * below (store -> load), or both sides could miss each other */
		__atomic_store_n(&h->dbbuf[slot], val, __ATOMIC_SEQ_CST);
		if (qid != 0) {
			if (h->db_mode == HOST_DB_SHADOW_ONLY)
				return;
			if (h->db_mode == HOST_DB_EVENTIDX) {
				uint16_t ev;

				/* seq_cst: pairs with the store above (see there) */
				ev =
				    (uint16_t)__atomic_load_n(&h->eventidx[slot], __ATOMIC_SEQ_CST);
				if (!host_need_event(ev, (uint16_t)val, (uint16_t)old))
					return;
			}
		}
	}
	if (qid != 0)
		/* relaxed: a statistic, orders nothing */
		__atomic_fetch_add(&h->mmio_doorbell_writes, 1, __ATOMIC_RELAXED);
	host_wr32(h, off, val);
}

static struct host_sq *host_get_sq(struct host *h, uint16_t qid)
{
	if (qid > HOST_MAX_QID || !h->sq[qid].live)
		return NULL;
	return &h->sq[qid];
}

static struct host_cq *host_get_cq(struct host *h, uint16_t qid)
{
	if (qid > HOST_MAX_QID || !h->cq[qid].live)
		return NULL;
	return &h->cq[qid];
}

static bool host_cq_poll_one(struct host *h, struct host_cq *cq, struct nvme_cqe *out)
{
	struct nvme_cqe *e = &cq->ring[cq->head];
	uint16_t st = __atomic_load_n(&e->status, __ATOMIC_ACQUIRE);
	uint32_t old = cq->head;
	struct host_sq *sq;

	if ((st & 1u) != cq->phase)
		return false;
	/* the acquire load of the phase tag above orders these reads after it */
	out->dw0 = e->dw0;
	out->dw1 = e->dw1;
	out->sqhd = e->sqhd;
	out->sqid = e->sqid;
	out->cid = e->cid;
	out->status = st;
	if (++cq->head == cq->entries) {
		cq->head = 0;
		cq->phase ^= 1u;
	}
	host_doorbell(h, cq->qid, 2u * cq->qid + 1u, old, cq->head);
	/* Trust nothing: only a plausible SQ head pointer frees SQ slots. */
	sq = host_get_sq(h, out->sqid);
	if (sq && sq->cqid == cq->qid && out->sqhd < sq->entries)
		sq->head = out->sqhd;
	return true;
}

static void host_stash(struct host_cq *cq, const struct nvme_cqe *e)
{
	if (cq->nstash == HOST_STASH) {
		fprintf(stderr, "host: cq %u: too many unclaimed completions, dropping one\n",
			cq->qid);
		memmove(&cq->stash[0], &cq->stash[1], sizeof(cq->stash[0]) * (HOST_STASH - 1));
		cq->nstash--;
	}
	cq->stash[cq->nstash++] = *e;
}

static void host_unstash(struct host_cq *cq, unsigned i, struct nvme_cqe *out)
{
	if (out)
		*out = cq->stash[i];
	memmove(&cq->stash[i], &cq->stash[i + 1], sizeof(cq->stash[0]) * (cq->nstash - i - 1));
	cq->nstash--;
}

int host_sq_put(struct host *h, uint16_t qid, const struct nvme_sqe *sqe)
{
	struct host_sq *sq = host_get_sq(h, qid);

	if (!sq)
		return -EINVAL;
	if ((sq->tail + 1) % sq->entries == sq->head)
		return -EBUSY;
	sq->ring[sq->tail] = *sqe;
	sq->tail = (sq->tail + 1) % sq->entries;
	return 0;
}

void host_sq_ring(struct host *h, uint16_t qid)
{
	struct host_sq *sq = host_get_sq(h, qid);
	uint32_t old;

	if (!sq)
		return;
	old = sq->tail == 0 ? sq->entries - 1 : sq->tail - 1;
	host_doorbell(h, qid, 2u * qid, old, sq->tail);
}

int host_submit(struct host *h, uint16_t qid, struct nvme_sqe *sqe)
{
	struct host_sq *sq = host_get_sq(h, qid);
	struct host_cq *cq;
	struct nvme_cqe e;
	int rc;

	if (!sq)
		return -EINVAL;
	if ((sq->tail + 1) % sq->entries == sq->head) {
		/* The SQ head only moves with completions: reap what is there. */
		cq = host_get_cq(h, sq->cqid);
		while (cq && host_cq_poll_one(h, cq, &e))
			host_stash(cq, &e);
	}
	sqe->cid = sq->next_cid;
	if (++sq->next_cid == 0xffff) /* FFFFh is "not a command" in error logs */
		sq->next_cid = 1;
	rc = host_sq_put(h, qid, sqe);
	if (rc)
		return rc;
	host_sq_ring(h, qid);
	return sqe->cid;
}

int host_wait(struct host *h, uint16_t qid, uint16_t cid, struct nvme_cqe *cqe, unsigned timeout_ms)
{
	struct host_sq *sq = host_get_sq(h, qid);
	struct host_cq *cq;
	uint64_t deadline = host_now_ms() + timeout_ms;
	struct nvme_cqe e;
	unsigned iter = 0, i;

	if (!sq)
		return -EINVAL;
	cq = host_get_cq(h, sq->cqid);
	if (!cq)
		return -EINVAL;
	for (;;) {
		for (i = 0; i < cq->nstash; i++) {
			if (cq->stash[i].sqid == qid && cq->stash[i].cid == cid) {
				host_unstash(cq, i, &e);
				goto found;
			}
		}
		while (host_cq_poll_one(h, cq, &e)) {
			if (e.sqid == qid && e.cid == cid)
				goto found;
			host_stash(cq, &e);
		}
		if (host_now_ms() >= deadline)
			return -ETIMEDOUT;
		host_backoff(iter++);
	}
found:
	if (cqe)
		*cqe = e;
	return NVME_CQE_SF(e.status);
}

int host_cmd(struct host *h, uint16_t qid, struct nvme_sqe *sqe, struct nvme_cqe *cqe)
{
	int cid = host_submit(h, qid, sqe);

	if (cid < 0)
		return cid;
	return host_wait(h, qid, (uint16_t)cid, cqe, HOST_TIMEOUT_MS);
}

int host_admin_timeout(struct host *h, struct nvme_sqe *sqe, struct nvme_cqe *cqe,
		       unsigned timeout_ms)
{
	int cid = host_submit(h, 0, sqe);

	if (cid < 0)
		return cid;
	return host_wait(h, 0, (uint16_t)cid, cqe, timeout_ms);
}

int host_admin(struct host *h, struct nvme_sqe *sqe, struct nvme_cqe *cqe)
{
	return host_admin_timeout(h, sqe, cqe, HOST_TIMEOUT_MS);
}

int host_cq_next(struct host *h, uint16_t cqid, struct nvme_cqe *cqe, unsigned timeout_ms)
{
	struct host_cq *cq = host_get_cq(h, cqid);
	uint64_t deadline = host_now_ms() + timeout_ms;
	unsigned iter = 0;

	if (!cq)
		return -EINVAL;
	for (;;) {
		if (cq->nstash) {
			host_unstash(cq, 0, cqe);
			return 0;
		}
		if (host_cq_poll_one(h, cq, cqe))
			return 0;
		if (host_now_ms() >= deadline)
			return -ETIMEDOUT;
		host_backoff(iter++);
	}
}

void host_cq_raw(struct host *h, uint16_t cqid, uint32_t idx, struct nvme_cqe *cqe)
{
	struct host_cq *cq = host_get_cq(h, cqid);
	struct nvme_cqe *e;

	memset(cqe, 0, sizeof(*cqe));
	if (!cq || idx >= cq->entries)
		return;
	e = &cq->ring[idx];
	cqe->status = __atomic_load_n(&e->status, __ATOMIC_ACQUIRE);
	/* the acquire above orders these reads after the status read */
	cqe->dw0 = e->dw0;
	cqe->dw1 = e->dw1;
	cqe->sqhd = e->sqhd;
	cqe->sqid = e->sqid;
	cqe->cid = e->cid;
}

/* ------------------------------------------------------------------------ */
/* Queue management                                                          */
/* ------------------------------------------------------------------------ */

static void host_shadow_reset(struct host *h, uint32_t idx)
{
	if (h->db_mode != HOST_DB_MMIO)
		/* release: orders nothing before it; pairs with the controller's read */
		__atomic_store_n(&h->dbbuf[idx << h->dstrd], 0, __ATOMIC_RELEASE);
}

int host_create_cq(struct host *h, uint16_t qid, uint32_t entries, int vector)
{
	struct host_cq *cq;
	struct nvme_sqe sqe;
	uint64_t iova;
	size_t npages;
	int sf;

	if (qid == 0 || qid > HOST_MAX_QID || h->cq[qid].live || entries < 2 || entries > 65536)
		return -EINVAL;
	if (vector >= HOST_MAX_VECTORS)
		return -EINVAL;
	if (vector >= 0 && host_irq_efd(h, (uint16_t)vector) < 0)
		return -EINVAL;
	npages = host_ring_pages(h, (size_t)entries * sizeof(struct nvme_cqe));
	iova = host_page_alloc(h->arena, npages, h->page_size / HOST_PAGE);
	if (!iova)
		return -ENOMEM;
	host_shadow_reset(h, 2u * qid + 1u);
	host_sqe(&sqe, NVME_ADM_CREATE_CQ, 0);
	sqe.prp1 = iova;
	sqe.cdw10 = NVME_CREATE_Q_CDW10(qid, entries - 1);
	sqe.cdw11 = NVME_CQ_FLAGS_PC;
	if (vector >= 0)
		sqe.cdw11 |= NVME_CQ_FLAGS_IEN | ((uint32_t)vector << 16);
	sf = host_admin(h, &sqe, NULL);
	if (sf != 0) {
		if (sf > 0)
			host_page_free(h->arena, iova, npages);
		return sf;
	}
	cq = &h->cq[qid];
	memset(cq, 0, sizeof(*cq));
	cq->live = true;
	cq->qid = qid;
	cq->entries = entries;
	cq->iova = iova;
	cq->npages = npages;
	cq->ring = host_va(h->arena, iova);
	cq->phase = 1;
	cq->vector = vector;
	return 0;
}

int host_create_sq(struct host *h, uint16_t qid, uint16_t cqid, uint32_t entries)
{
	struct host_sq *sq;
	struct nvme_sqe sqe;
	uint64_t iova;
	size_t npages;
	int sf;

	if (qid == 0 || qid > HOST_MAX_QID || h->sq[qid].live || entries < 2 || entries > 65536)
		return -EINVAL;
	npages = host_ring_pages(h, (size_t)entries * sizeof(struct nvme_sqe));
	iova = host_page_alloc(h->arena, npages, h->page_size / HOST_PAGE);
	if (!iova)
		return -ENOMEM;
	host_shadow_reset(h, 2u * qid);
	host_sqe(&sqe, NVME_ADM_CREATE_SQ, 0);
	sqe.prp1 = iova;
	sqe.cdw10 = NVME_CREATE_Q_CDW10(qid, entries - 1);
	sqe.cdw11 = NVME_SQ_FLAGS_PC | ((uint32_t)cqid << 16);
	sf = host_admin(h, &sqe, NULL);
	if (sf != 0) {
		if (sf > 0)
			host_page_free(h->arena, iova, npages);
		return sf;
	}
	sq = &h->sq[qid];
	memset(sq, 0, sizeof(*sq));
	sq->live = true;
	sq->qid = qid;
	sq->cqid = cqid;
	sq->entries = entries;
	sq->iova = iova;
	sq->npages = npages;
	sq->ring = host_va(h->arena, iova);
	sq->next_cid = 1;
	return 0;
}

int host_create_qpair(struct host *h, uint16_t qid, uint32_t entries, int vector)
{
	int sf = host_create_cq(h, qid, entries, vector);

	if (sf)
		return sf;
	return host_create_sq(h, qid, qid, entries);
}

int host_delete_sq(struct host *h, uint16_t qid)
{
	struct nvme_sqe sqe;
	int sf;

	host_sqe(&sqe, NVME_ADM_DELETE_SQ, 0);
	sqe.cdw10 = qid;
	sf = host_admin(h, &sqe, NULL);
	if (sf == 0 && qid <= HOST_MAX_QID && h->sq[qid].live) {
		host_page_free(h->arena, h->sq[qid].iova, h->sq[qid].npages);
		memset(&h->sq[qid], 0, sizeof(h->sq[qid]));
	}
	return sf;
}

int host_delete_cq(struct host *h, uint16_t qid)
{
	struct nvme_sqe sqe;
	int sf;

	host_sqe(&sqe, NVME_ADM_DELETE_CQ, 0);
	sqe.cdw10 = qid;
	sf = host_admin(h, &sqe, NULL);
	if (sf == 0 && qid <= HOST_MAX_QID && h->cq[qid].live) {
		host_page_free(h->arena, h->cq[qid].iova, h->cq[qid].npages);
		memset(&h->cq[qid], 0, sizeof(h->cq[qid]));
	}
	return sf;
}

int host_set_num_queues(struct host *h, uint16_t nsq, uint16_t ncq, uint32_t *dw0)
{
	if (nsq == 0 || ncq == 0)
		return -EINVAL;
	return host_set_features(h, NVME_FEAT_NUM_QUEUES, NVME_FEAT_NUMQ(nsq - 1, ncq - 1), dw0);
}

/* ------------------------------------------------------------------------ */
/* MSI-X                                                                     */
/* ------------------------------------------------------------------------ */

int host_irq_efd(struct host *h, uint16_t vector)
{
	int fd, rc;

	if (vector >= HOST_MAX_VECTORS)
		return -EINVAL;
	if (h->vec_efd[vector] >= 0)
		return h->vec_efd[vector];
	fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = nvmk_emu_set_irq_fd(h->emu, vector, fd);
	if (rc) {
		close(fd);
		return rc;
	}
	h->vec_efd[vector] = fd;
	return fd;
}

uint64_t host_irq_take(struct host *h, uint16_t vector)
{
	uint64_t v = 0;
	int fd = host_irq_efd(h, vector);

	if (fd < 0)
		return 0;
	if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	return v;
}

bool host_irq_wait(struct host *h, uint16_t vector, unsigned timeout_ms)
{
	uint64_t deadline = host_now_ms() + timeout_ms;
	int fd = host_irq_efd(h, vector);
	struct pollfd pfd;

	if (fd < 0)
		return false;
	for (;;) {
		uint64_t now = host_now_ms();

		if (host_irq_take(h, vector))
			return true;
		if (now >= deadline)
			return false;
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		poll(&pfd, 1, (int)(deadline - now));
	}
}

/* ------------------------------------------------------------------------ */
/* Doorbell Buffer Config                                                    */
/* ------------------------------------------------------------------------ */

int host_dbbuf_config(struct host *h, enum host_db_mode mode)
{
	struct host_sq *asq = &h->sq[0];
	struct host_cq *acq = &h->cq[0];
	size_t pages = h->page_size / HOST_PAGE;
	struct nvme_sqe sqe;
	unsigned q;
	int sf;

	if (!h->dbbuf_iova) {
		h->dbbuf_iova = host_page_alloc(h->arena, pages, pages);
		h->eventidx_iova = host_page_alloc(h->arena, pages, pages);
		if (!h->dbbuf_iova || !h->eventidx_iova)
			return -ENOMEM;
		h->dbbuf = host_va(h->arena, h->dbbuf_iova);
		h->eventidx = host_va(h->arena, h->eventidx_iova);
	}
	/* A controller may start reading the shadow values as soon as it has
	 * processed the command: they must already hold the current ones,
	 * the admin SQ tail including this very command. */
	for (q = 1; q <= HOST_MAX_QID; q++) {
		if (h->sq[q].live)
			h->dbbuf[(2u * q) << h->dstrd] = h->sq[q].tail;
		if (h->cq[q].live)
			h->dbbuf[(2u * q + 1u) << h->dstrd] = h->cq[q].head;
	}
	h->dbbuf[0] = (asq->tail + 1) % asq->entries;
	h->dbbuf[1u << h->dstrd] = acq->head;
	host_sqe(&sqe, NVME_ADM_DBBUF_CONFIG, 0);
	sqe.prp1 = h->dbbuf_iova;
	sqe.prp2 = h->eventidx_iova;
	sf = host_admin(h, &sqe, NULL);
	if (sf == 0 && mode != HOST_DB_MMIO) {
		h->db_mode = mode;
		/* bring the admin values up to date (the completion moved the head) */
		__atomic_store_n(&h->dbbuf[0], asq->tail, __ATOMIC_RELEASE);
		__atomic_store_n(&h->dbbuf[1u << h->dstrd], acq->head, __ATOMIC_RELEASE);
	}
	return sf;
}

/* ------------------------------------------------------------------------ */
/* Buffers and PRPs                                                          */
/* ------------------------------------------------------------------------ */

int host_buf_alloc(struct host *h, struct host_buf *b, size_t len)
{
	size_t align = h->page_size / HOST_PAGE;

	memset(b, 0, sizeof(*b));
	b->npages = (len + HOST_PAGE - 1) / HOST_PAGE;
	if (b->npages == 0)
		b->npages = 1;
	b->npages = (b->npages + align - 1) / align * align;
	b->iova = host_page_alloc(h->arena, b->npages, align);
	if (!b->iova)
		return -ENOMEM;
	b->va = host_va(h->arena, b->iova);
	b->len = len;
	return 0;
}

void host_buf_free(struct host *h, struct host_buf *b)
{
	if (b->iova)
		host_page_free(h->arena, b->iova, b->npages);
	memset(b, 0, sizeof(*b));
}

static uint64_t host_prp_new_list(struct host *h, struct host_prp *p)
{
	size_t pages = h->page_size / HOST_PAGE;
	uint64_t iova;

	if (p->nlists == HOST_PRP_MAX_LISTS)
		return 0;
	iova = host_page_alloc(h->arena, pages, pages);
	if (iova)
		p->list[p->nlists++] = iova;
	return iova;
}

int host_prp_build(struct host *h, struct host_prp *p, uint64_t iova, size_t len, size_t list_off)
{
	uint64_t ps = h->page_size, first, next, list;
	size_t remaining, npg, i, slots;
	uint64_t *cur;

	memset(p, 0, sizeof(*p));
	if ((list_off & 7) || list_off >= ps)
		return -EINVAL;
	p->prp1 = iova;
	first = ps - (iova & (ps - 1));
	if (len <= first)
		return 0;
	remaining = len - first;
	next = iova + first;
	npg = (remaining + ps - 1) / ps;
	if (npg == 1) {
		p->prp2 = next;
		return 0;
	}
	list = host_prp_new_list(h, p);
	if (!list)
		return -ENOMEM;
	p->prp2 = list + list_off;
	cur = host_va(h->arena, list + list_off);
	slots = (ps - list_off) / 8;
	for (i = 0; i < npg; i++) {
		/* Base 2.0 4.1.1: the last entry of a list page points to the
		 * next list page, unless it is the last entry of the transfer. */
		if (slots == 1 && npg - i > 1) {
			list = host_prp_new_list(h, p);
			if (!list) {
				host_prp_free(h, p);
				return -ENOMEM;
			}
			*cur = list;
			cur = host_va(h->arena, list);
			slots = ps / 8;
		}
		*cur++ = next + i * ps;
		slots--;
	}
	return 0;
}

void host_prp_free(struct host *h, struct host_prp *p)
{
	size_t pages = h->page_size / HOST_PAGE;
	unsigned i;

	for (i = 0; i < p->nlists; i++)
		host_page_free(h->arena, p->list[i], pages);
	p->nlists = 0;
}

/* ------------------------------------------------------------------------ */
/* Command helpers                                                           */
/* ------------------------------------------------------------------------ */

static int host_cmd_data(struct host *h, uint16_t qid, struct nvme_sqe *sqe, void *data, size_t len,
			 bool to_ctrl, struct nvme_cqe *cqe)
{
	struct host_buf b;
	struct host_prp p;
	int sf;

	if (host_buf_alloc(h, &b, len))
		return -ENOMEM;
	if (to_ctrl && data)
		memcpy(b.va, data, len);
	if (host_prp_build(h, &p, b.iova, len, 0)) {
		host_buf_free(h, &b);
		return -ENOMEM;
	}
	sqe->prp1 = p.prp1;
	sqe->prp2 = p.prp2;
	sf = host_cmd(h, qid, sqe, cqe);
	if (sf < 0)
		return sf; /* leak: the controller may still write there */
	if (!to_ctrl && data)
		memcpy(data, b.va, len);
	host_prp_free(h, &p);
	host_buf_free(h, &b);
	return sf;
}

int host_admin_data(struct host *h, struct nvme_sqe *sqe, void *data, size_t len, bool to_ctrl,
		    struct nvme_cqe *cqe)
{
	return host_cmd_data(h, 0, sqe, data, len, to_ctrl, cqe);
}

int host_io_data(struct host *h, uint16_t qid, struct nvme_sqe *sqe, void *data, size_t len,
		 bool to_ctrl, struct nvme_cqe *cqe)
{
	return host_cmd_data(h, qid, sqe, data, len, to_ctrl, cqe);
}

int host_identify(struct host *h, uint8_t cns, uint32_t nsid, void *out4096)
{
	struct nvme_sqe sqe;

	host_sqe(&sqe, NVME_ADM_IDENTIFY, nsid);
	sqe.cdw10 = cns;
	return host_admin_data(h, &sqe, out4096, NVME_IDENTIFY_DATA_SIZE, false, NULL);
}

int host_get_features(struct host *h, uint8_t fid, uint32_t cdw11, uint32_t *dw0)
{
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;
	int sf;

	host_sqe(&sqe, NVME_ADM_GET_FEATURES, 0);
	sqe.cdw10 = fid;
	sqe.cdw11 = cdw11;
	sf = host_admin(h, &sqe, &cqe);
	if (sf >= 0 && dw0)
		*dw0 = cqe.dw0;
	return sf;
}

int host_set_features(struct host *h, uint8_t fid, uint32_t cdw11, uint32_t *dw0)
{
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;
	int sf;

	host_sqe(&sqe, NVME_ADM_SET_FEATURES, 0);
	sqe.cdw10 = fid;
	sqe.cdw11 = cdw11;
	sf = host_admin(h, &sqe, &cqe);
	if (sf >= 0 && dw0)
		*dw0 = cqe.dw0;
	return sf;
}

int host_get_log(struct host *h, uint8_t lid, uint32_t nsid, void *out, size_t len, bool rae)
{
	struct nvme_sqe sqe;
	uint32_t numd0;

	if (len < 4 || (len & 3))
		return -EINVAL;
	numd0 = (uint32_t)(len / 4 - 1);
	host_sqe(&sqe, NVME_ADM_GET_LOG_PAGE, nsid);
	sqe.cdw10 = NVME_LOG_CDW10(lid, numd0, rae);
	sqe.cdw11 = NVME_LOG_CDW11(numd0);
	return host_admin_data(h, &sqe, out, len, false, NULL);
}

int host_rw(struct host *h, uint16_t qid, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb,
	    uint32_t cdw12_flags, uint64_t iova, size_t len, struct nvme_cqe *cqe)
{
	struct nvme_sqe sqe;
	struct host_prp p = {0};
	int sf;

	host_sqe(&sqe, opc, nsid);
	sqe.cdw10 = (uint32_t)slba;
	sqe.cdw11 = (uint32_t)(slba >> 32);
	sqe.cdw12 = ((nlb - 1) & 0xffffu) | cdw12_flags;
	if (iova) {
		if (host_prp_build(h, &p, iova, len, 0))
			return -ENOMEM;
		sqe.prp1 = p.prp1;
		sqe.prp2 = p.prp2;
	}
	sf = host_cmd(h, qid, &sqe, cqe);
	if (sf >= 0)
		host_prp_free(h, &p);
	return sf;
}
