/* SPDX-License-Identifier: MIT */
/*
 * The private DMA pool: one memfd (2 MiB huge pages when available), mapped
 * once, carved into page-granular blocks recorded in a slot table that lives
 * inside the pool (format and checks: pool_table.[ch]).
 *
 * Why the table is inside the pool: servicing execs a new binary with the pool
 * fd left open while devices keep DMAing into their queues. The successor maps
 * the fd at a new address, reads the table and reclaims each block by the
 * (owner, tag) its predecessor gave it; no other saved state is needed to find
 * the memory, and a block nobody reclaims is marked Leaked so that it is never
 * handed out again while a device may still write to it.
 *
 * Allocation is first fit by offset: the lowest-addressed free range large
 * enough wins. Free ranges are the gaps between occupied slots (kept sorted by
 * offset in @order), so a free coalesces with its neighbours by construction.
 * First fit keeps long-lived blocks (queues allocated at start-up) packed at
 * the bottom of the pool and the large free range at the top.
 *
 * The table is updated in place, then its checksum; the successor only reads
 * it after exec, i.e. after this process stopped writing. A process killed in
 * the middle of an update leaves a table whose checksum does not match, and
 * the successor refuses it rather than guess. One process uses a pool at a
 * time; within it, every table access is under @lock.
 */
#include <errno.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "dma_internal.h"
#include "nvmekeep/dma.h"
#include "nvmekeep/log.h"
#include "pool_table.h"

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21u << 26) /* log2(2 MiB) << MFD_HUGE_SHIFT */
#endif

#define POOL_LOG "dma-pool" /* device name for log lines about the pool itself */

#define POOL_MIN_SLOTS	   64u
#define POOL_MAX_NEW_SLOTS 4096u

struct nvmk_dma_pool {
	pthread_mutex_t lock; /* guards the slot table and every field below it */
	int fd;
	uint8_t *base;
	uint64_t size; /* bytes mapped == size of @fd */
	bool hugetlb;
	struct pool_hdr *hdr;
	struct pool_slot *slots;
	uint32_t slot_count;
	uint64_t data_offset;
	uint8_t *live;	    /* per slot: held by this process (LIVE_ALLOCATED or LIVE_RECLAIMED) */
	uint32_t *order;    /* Allocated/Leaked slot indices sorted by offset */
	uint32_t n_order;   /* entries in @order */
	uint32_t free_hint; /* no Free slot below this index */
};

/* Values of @live: 0 = not held (Free, Leaked, or a predecessor's block
 * waiting to be reclaimed). */
#define LIVE_ALLOCATED 1 /* allocated by this process */
#define LIVE_RECLAIMED 2 /* a predecessor's block taken back with nvmk_dma_reclaim */

static bool names_ok(const char *owner, const char *tag)
{
	return owner && tag && owner[0] && tag[0] && strlen(owner) <= NVMK_DMA_OWNER_MAX &&
	       strlen(tag) <= NVMK_DMA_TAG_MAX;
}

static uint64_t slot_end(const struct pool_slot *s)
{
	return s->offset + s->pages * NVMK_DMA_PAGE_SIZE;
}

static void table_commit(struct nvmk_dma_pool *pool)
{
	pool->hdr->checksum = pool_table_checksum(pool->hdr, pool->slots, pool->slot_count);
}

static int find_slot(struct nvmk_dma_pool *pool, const char *owner, const char *tag, uint32_t state)
{
	for (uint32_t k = 0; k < pool->n_order; k++) {
		const struct pool_slot *s = &pool->slots[pool->order[k]];

		if (s->state == state && strcmp(s->owner, owner) == 0 && strcmp(s->tag, tag) == 0)
			return (int)pool->order[k];
	}
	return -1;
}

static void order_remove(struct nvmk_dma_pool *pool, uint32_t idx)
{
	for (uint32_t k = 0; k < pool->n_order; k++) {
		if (pool->order[k] != idx)
			continue;
		memmove(&pool->order[k], &pool->order[k + 1],
			(pool->n_order - k - 1) * sizeof(pool->order[0]));
		pool->n_order--;
		return;
	}
}

static void release_slot(struct nvmk_dma_pool *pool, uint32_t idx)
{
	order_remove(pool, idx);
	memset(&pool->slots[idx], 0, sizeof(pool->slots[idx]));
	pool->live[idx] = 0;
	if (idx < pool->free_hint)
		pool->free_hint = idx;
	table_commit(pool);
}

static void usage_locked(struct nvmk_dma_pool *pool, struct nvmk_dma_pool_stats *st)
{
	uint64_t cursor = pool->data_offset, gap;

	memset(st, 0, sizeof(*st));
	st->pool_bytes = pool->size;
	st->total_pages = (pool->size - pool->data_offset) / NVMK_DMA_PAGE_SIZE;
	st->total_slots = pool->slot_count;
	st->hugetlb = pool->hugetlb;
	for (uint32_t k = 0; k < pool->n_order; k++) {
		const struct pool_slot *s = &pool->slots[pool->order[k]];

		gap = (s->offset - cursor) / NVMK_DMA_PAGE_SIZE;
		if (gap > st->largest_free_pages)
			st->largest_free_pages = gap;
		cursor = slot_end(s);
		st->used_pages += s->pages;
		st->used_slots++;
		if (s->state == POOL_SLOT_LEAKED) {
			st->leaked_pages += s->pages;
			st->leaked_slots++;
		} else if (!pool->live[pool->order[k]]) {
			st->unclaimed_slots++;
		}
	}
	gap = (pool->size - cursor) / NVMK_DMA_PAGE_SIZE;
	if (gap > st->largest_free_pages)
		st->largest_free_pages = gap;
	st->free_pages = st->total_pages - st->used_pages;
}

static void log_exhausted(struct nvmk_dma_pool *pool, const char *owner, const char *tag,
			  uint64_t pages, const char *what)
{
	struct nvmk_dma_pool_stats st;

	usage_locked(pool, &st);
	nvmk_err(owner, NVMK_LOG_NOQ,
		 "DMA pool exhausted (%s) allocating %s: %llu pages wanted; pool of %llu pages "
		 "(%llu KiB): %llu used (%llu leaked), %llu free, largest free range %llu pages, "
		 "%u of %u slots used",
		 what, tag, (unsigned long long)pages, (unsigned long long)st.total_pages,
		 (unsigned long long)(st.total_pages * NVMK_DMA_PAGE_SIZE / 1024),
		 (unsigned long long)st.used_pages, (unsigned long long)st.leaked_pages,
		 (unsigned long long)st.free_pages, (unsigned long long)st.largest_free_pages,
		 st.used_slots, st.total_slots);
}

/* First fit: lowest-offset gap of at least @pages. Return the insert position in @order. */
static bool first_fit(struct nvmk_dma_pool *pool, uint64_t pages, uint32_t *pos, uint64_t *offset)
{
	uint64_t cursor = pool->data_offset, want = pages * NVMK_DMA_PAGE_SIZE;

	for (uint32_t k = 0; k <= pool->n_order; k++) {
		uint64_t next = k < pool->n_order ? pool->slots[pool->order[k]].offset : pool->size;

		if (next - cursor >= want) {
			*pos = k;
			*offset = cursor;
			return true;
		}
		if (k < pool->n_order)
			cursor = slot_end(&pool->slots[pool->order[k]]);
	}
	return false;
}

static void fill_mem(struct nvmk_dma_pool *pool, uint32_t idx, struct nvmk_dma_mem *out)
{
	const struct pool_slot *s = &pool->slots[idx];

	memset(out, 0, sizeof(*out));
	out->vaddr = pool->base + s->offset;
	out->size = (size_t)(s->pages * NVMK_DMA_PAGE_SIZE);
	out->fd = pool->fd;
	out->fd_offset = s->offset;
	out->pool = pool;
	out->slot = idx;
}

int dma_pool_alloc(struct nvmk_dma_pool *pool, size_t size, const char *owner, const char *tag,
		   struct nvmk_dma_mem *out)
{
	size_t len = dma_round_up(size);
	uint64_t pages = len / NVMK_DMA_PAGE_SIZE, offset;
	struct pool_slot *s;
	uint32_t idx, pos;

	if (!len || !names_ok(owner, tag))
		return -EINVAL;

	pthread_mutex_lock(&pool->lock);
	if (find_slot(pool, owner, tag, POOL_SLOT_ALLOCATED) >= 0) {
		pthread_mutex_unlock(&pool->lock);
		nvmk_err(owner, NVMK_LOG_NOQ, "DMA block %s is already allocated in the pool", tag);
		return -EEXIST;
	}
	for (idx = pool->free_hint; idx < pool->slot_count; idx++)
		if (pool->slots[idx].state == POOL_SLOT_FREE)
			break;
	if (idx == pool->slot_count) {
		log_exhausted(pool, owner, tag, pages, "no free slot");
		pthread_mutex_unlock(&pool->lock);
		return -ENOMEM;
	}
	if (!first_fit(pool, pages, &pos, &offset)) {
		log_exhausted(pool, owner, tag, pages, "no free range large enough");
		pthread_mutex_unlock(&pool->lock);
		return -ENOMEM;
	}

	s = &pool->slots[idx];
	s->offset = offset;
	s->pages = pages;
	strcpy(s->owner, owner); /* lengths checked by names_ok() */
	strcpy(s->tag, tag);
	s->state = POOL_SLOT_ALLOCATED;
	memmove(&pool->order[pos + 1], &pool->order[pos],
		(pool->n_order - pos) * sizeof(pool->order[0]));
	pool->order[pos] = idx;
	pool->n_order++;
	pool->live[idx] = LIVE_ALLOCATED;
	pool->free_hint = idx + 1;
	table_commit(pool);
	fill_mem(pool, idx, out);
	pthread_mutex_unlock(&pool->lock);

	/* Earlier users of these pages may have left data; the contract is zeroed memory. */
	memset(out->vaddr, 0, out->size);
	nvmk_debug(owner, NVMK_LOG_NOQ, "DMA block %s: %llu pages at pool offset 0x%llx (slot %u)",
		   tag, (unsigned long long)pages, (unsigned long long)offset, idx);
	return 0;
}

void dma_pool_free(struct nvmk_dma_mem *mem)
{
	struct nvmk_dma_pool *pool = mem->pool;
	const struct pool_slot *s;
	uint32_t idx = mem->slot;

	pthread_mutex_lock(&pool->lock);
	s = idx < pool->slot_count ? &pool->slots[idx] : NULL;
	if (!s || s->state != POOL_SLOT_ALLOCATED || !pool->live[idx] ||
	    s->offset != mem->fd_offset || s->pages * NVMK_DMA_PAGE_SIZE != mem->size ||
	    (uint8_t *)mem->vaddr != pool->base + s->offset) {
		pthread_mutex_unlock(&pool->lock);
		nvmk_err(POOL_LOG, NVMK_LOG_NOQ,
			 "free of a block the pool does not hold (slot %u, offset 0x%llx): ignored",
			 idx, (unsigned long long)mem->fd_offset);
		return;
	}
	release_slot(pool, idx);
	pthread_mutex_unlock(&pool->lock);
	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
}

static uint32_t slots_for(size_t pages)
{
	size_t n = pages / 2;

	if (n < POOL_MIN_SLOTS)
		n = POOL_MIN_SLOTS;
	if (n > POOL_MAX_NEW_SLOTS)
		n = POOL_MAX_NEW_SLOTS;
	return (uint32_t)n;
}

static struct nvmk_dma_pool *pool_new(int fd, uint8_t *base, uint64_t size, bool hugetlb,
				      uint32_t slot_count)
{
	struct nvmk_dma_pool *pool = calloc(1, sizeof(*pool));

	if (!pool)
		return NULL;
	pool->live = calloc(slot_count, 1);
	pool->order = calloc(slot_count, sizeof(*pool->order));
	if (!pool->live || !pool->order) {
		free(pool->live);
		free(pool->order);
		free(pool);
		return NULL;
	}
	pthread_mutex_init(&pool->lock, NULL);
	pool->fd = fd;
	pool->base = base;
	pool->size = size;
	pool->hugetlb = hugetlb;
	pool->hdr = (struct pool_hdr *)base;
	pool->slots = (struct pool_slot *)(base + sizeof(struct pool_hdr));
	pool->slot_count = slot_count;
	pool->data_offset = pool_table_bytes(slot_count);
	return pool;
}

/* memfd of @size bytes mapped shared; huge pages if asked. Return the fd or -errno. */
static int pool_map(uint64_t size, bool huge, uint8_t **base)
{
	unsigned int mfd = MFD_CLOEXEC | (huge ? MFD_HUGETLB | MFD_HUGE_2MB : 0);
	int fd, err;
	void *va;

	fd = memfd_create(huge ? "nvmekeep-pool-huge" : "nvmekeep-pool", mfd);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	/* For hugetlbfs this is where the huge pages are reserved, and fails if there are none. */
	va = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (va == MAP_FAILED) {
		err = -errno;
		close(fd);
		return err;
	}
	*base = va;
	return fd;
}

int nvmk_dma_pool_create(size_t pages, unsigned int flags, struct nvmk_dma_pool **out)
{
	uint32_t slot_count = slots_for(pages);
	uint64_t table = pool_table_bytes(slot_count), size;
	bool huge = false;
	uint8_t *base = NULL;
	struct nvmk_dma_pool *pool;
	int fd = -1;

	if (!out || pages == 0 || (flags & ~NVMK_DMA_POOL_HUGETLB_TRY) ||
	    pages > (UINT64_MAX / 2 - table) / NVMK_DMA_PAGE_SIZE)
		return -EINVAL;
	size = table + (uint64_t)pages * NVMK_DMA_PAGE_SIZE;
	if (size > (uint64_t)INT64_MAX / 2 || size > SIZE_MAX / 2)
		return -EINVAL;

	if (flags & NVMK_DMA_POOL_HUGETLB_TRY) {
		uint64_t hsize =
		    (size + POOL_HUGE_PAGE_SIZE - 1) & ~(uint64_t)(POOL_HUGE_PAGE_SIZE - 1);

		fd = pool_map(hsize, true, &base);
		if (fd >= 0) {
			huge = true;
			size = hsize;
		} else {
			nvmk_info(
			    POOL_LOG, NVMK_LOG_NOQ,
			    "no 2 MiB huge pages for a pool of %llu bytes (%s): using 4 KiB pages",
			    (unsigned long long)hsize, strerror(-fd));
		}
	}
	if (fd < 0) {
		fd = pool_map(size, false, &base);
		if (fd < 0) {
			nvmk_err(POOL_LOG, NVMK_LOG_NOQ, "cannot create a pool of %llu bytes: %s",
				 (unsigned long long)size, strerror(-fd));
			return fd;
		}
	}

	pool = pool_new(fd, base, size, huge, slot_count);
	if (!pool) {
		munmap(base, size);
		close(fd);
		return -ENOMEM;
	}
	/* A new memfd reads as zeroes: every slot is already Free. */
	memcpy(pool->hdr->magic, POOL_MAGIC, sizeof(pool->hdr->magic));
	pool->hdr->version = POOL_FORMAT_VERSION;
	pool->hdr->hdr_size = sizeof(struct pool_hdr);
	pool->hdr->pool_size = size;
	pool->hdr->data_offset = table;
	pool->hdr->page_size = NVMK_DMA_PAGE_SIZE;
	pool->hdr->slot_size = sizeof(struct pool_slot);
	pool->hdr->slot_count = slot_count;
	pool->hdr->flags = huge ? POOL_F_HUGETLB : 0;
	table_commit(pool);

	nvmk_info(POOL_LOG, NVMK_LOG_NOQ,
		  "created pool: %llu data pages (%llu KiB) on %s pages, %u slots, fd %d",
		  (unsigned long long)((size - table) / NVMK_DMA_PAGE_SIZE),
		  (unsigned long long)((size - table) / 1024), huge ? "2 MiB huge" : "4 KiB",
		  slot_count, fd);
	*out = pool;
	return 0;
}

int nvmk_dma_pool_open(int fd, struct nvmk_dma_pool **out)
{
	struct nvmk_dma_pool *pool;
	struct pool_hdr hdr;
	struct statfs sfs;
	struct stat st;
	uint32_t *order = NULL, n_order = 0, unclaimed = 0, leaked = 0;
	uint8_t *base;
	char why[256] = "";
	bool hugetlb;
	int err;

	if (!out || fd < 0)
		return -EINVAL;
	if (fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0) {
		err = -errno;
		nvmk_err(POOL_LOG, NVMK_LOG_NOQ, "inherited pool fd %d: %s", fd, strerror(-err));
		return err;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)NVMK_DMA_PAGE_SIZE ||
	    (uint64_t)st.st_size > SIZE_MAX / 2) {
		nvmk_err(POOL_LOG, NVMK_LOG_NOQ,
			 "refusing inherited pool fd %d: not a pool (%lld bytes, mode 0%o)", fd,
			 (long long)st.st_size, (unsigned int)st.st_mode);
		return -EBADMSG;
	}
	hugetlb = (unsigned long)sfs.f_type == (unsigned long)HUGETLBFS_MAGIC;
	base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		err = -errno;
		nvmk_err(POOL_LOG, NVMK_LOG_NOQ, "cannot map inherited pool fd %d (%lld bytes): %s",
			 fd, (long long)st.st_size, strerror(-err));
		return err;
	}

	/* Header first (learn the slot count), then the whole table. Nothing is written. */
	err = pool_table_validate(base, (uint64_t)st.st_size, hugetlb, &hdr, NULL, 0, NULL, why,
				  sizeof(why));
	if (!err) {
		order = calloc(hdr.slot_count, sizeof(*order));
		err = order ? pool_table_validate(base, (uint64_t)st.st_size, hugetlb, &hdr, order,
						  hdr.slot_count, &n_order, why, sizeof(why))
			    : -ENOMEM;
	}
	if (err) {
		nvmk_err(POOL_LOG, NVMK_LOG_NOQ, "refusing inherited pool fd %d: %s", fd,
			 err == -ENOMEM && !why[0] ? "out of memory" : why);
		free(order);
		munmap(base, (size_t)st.st_size);
		return err;
	}

	pool = pool_new(fd, base, (uint64_t)st.st_size, hugetlb, hdr.slot_count);
	if (!pool) {
		free(order);
		munmap(base, (size_t)st.st_size);
		return -ENOMEM;
	}
	memcpy(pool->order, order, n_order * sizeof(*order));
	pool->n_order = n_order;
	free(order);
	for (uint32_t k = 0; k < n_order; k++) {
		if (pool->slots[pool->order[k]].state == POOL_SLOT_LEAKED)
			leaked++;
		else
			unclaimed++;
	}
	nvmk_info(POOL_LOG, NVMK_LOG_NOQ,
		  "opened inherited pool fd %d: %llu bytes on %s pages, %u blocks to reclaim, "
		  "%u leaked",
		  fd, (unsigned long long)pool->size, hugetlb ? "2 MiB huge" : "4 KiB", unclaimed,
		  leaked);
	*out = pool;
	return 0;
}

int nvmk_dma_pool_fd(const struct nvmk_dma_pool *pool)
{
	return pool ? pool->fd : -EINVAL;
}

void nvmk_dma_pool_destroy(struct nvmk_dma_pool *pool)
{
	if (!pool)
		return;
	munmap(pool->base, (size_t)pool->size);
	close(pool->fd);
	pthread_mutex_destroy(&pool->lock);
	free(pool->live);
	free(pool->order);
	free(pool);
}

void nvmk_dma_pool_get_stats(struct nvmk_dma_pool *pool, struct nvmk_dma_pool_stats *st)
{
	pthread_mutex_lock(&pool->lock);
	usage_locked(pool, st);
	pthread_mutex_unlock(&pool->lock);
}

int nvmk_dma_reclaim(struct nvmk_dma_pool *pool, const char *owner, const char *tag,
		     struct nvmk_dma_mem *out)
{
	int idx, err = 0;

	if (!pool || !out || !names_ok(owner, tag))
		return -EINVAL;
	pthread_mutex_lock(&pool->lock);
	idx = find_slot(pool, owner, tag, POOL_SLOT_ALLOCATED);
	if (idx < 0)
		err = find_slot(pool, owner, tag, POOL_SLOT_LEAKED) >= 0 ? -ESTALE : -ENOENT;
	else if (pool->live[idx])
		err = -EBUSY;
	if (!err) {
		pool->live[idx] = LIVE_RECLAIMED;
		fill_mem(pool, (uint32_t)idx, out);
	}
	pthread_mutex_unlock(&pool->lock);
	if (err)
		nvmk_err(owner, NVMK_LOG_NOQ, "cannot reclaim DMA block %s: %s", tag,
			 err == -ENOENT	  ? "not in the pool"
			 : err == -ESTALE ? "it was declared leaked by an earlier restore"
					  : "already reclaimed or allocated by this process");
	return err;
}

int nvmk_dma_pool_finish_restore(struct nvmk_dma_pool *pool)
{
	uint64_t pages = 0;
	uint32_t leaked = 0;

	if (!pool)
		return -EINVAL;
	pthread_mutex_lock(&pool->lock);
	for (uint32_t k = 0; k < pool->n_order; k++) {
		uint32_t idx = pool->order[k];
		struct pool_slot *s = &pool->slots[idx];

		if (s->state != POOL_SLOT_ALLOCATED || pool->live[idx])
			continue;
		/* The device may still DMA into it: keep the pages reserved, never reuse them. */
		s->state = POOL_SLOT_LEAKED;
		leaked++;
		pages += s->pages;
		nvmk_err(s->owner, NVMK_LOG_NOQ,
			 "DMA block %s (%llu pages at pool offset 0x%llx) was not reclaimed after "
			 "restore: marked leaked",
			 s->tag, (unsigned long long)s->pages, (unsigned long long)s->offset);
	}
	if (leaked)
		table_commit(pool);
	pthread_mutex_unlock(&pool->lock);
	if (!leaked)
		return 0;
	nvmk_err(POOL_LOG, NVMK_LOG_NOQ, "restore left %u DMA blocks (%llu pages) unreclaimed",
		 leaked, (unsigned long long)pages);
	return -EUCLEAN;
}

int nvmk_dma_pool_release_unclaimed(struct nvmk_dma_pool *pool, const char *owner)
{
	uint64_t pages = 0;
	int n = 0;

	if (!pool || !names_ok(owner, "x"))
		return -EINVAL;
	pthread_mutex_lock(&pool->lock);
	for (uint32_t idx = 0; idx < pool->slot_count; idx++) {
		const struct pool_slot *s = &pool->slots[idx];

		if (s->state != POOL_SLOT_ALLOCATED || pool->live[idx] || strcmp(s->owner, owner))
			continue;
		pages += s->pages;
		release_slot(pool, idx);
		n++;
	}
	pthread_mutex_unlock(&pool->lock);
	if (n)
		nvmk_info(owner, NVMK_LOG_NOQ,
			  "%d block(s) (%llu pages) of the previous driver returned to the pool", n,
			  (unsigned long long)pages);
	return n;
}

size_t nvmk_dma_pool_leaked(struct nvmk_dma_pool *pool, struct nvmk_dma_slot_info *out, size_t max)
{
	size_t n = 0;

	if (!pool)
		return 0;
	pthread_mutex_lock(&pool->lock);
	for (uint32_t idx = 0; idx < pool->slot_count; idx++) {
		const struct pool_slot *s = &pool->slots[idx];

		if (s->state != POOL_SLOT_LEAKED)
			continue;
		if (out && n < max) {
			memset(&out[n], 0, sizeof(out[n]));
			snprintf(out[n].owner, sizeof(out[n].owner), "%s", s->owner);
			snprintf(out[n].tag, sizeof(out[n].tag), "%s", s->tag);
			out[n].fd_offset = s->offset;
			out[n].pages = s->pages;
			out[n].slot = idx;
		}
		n++;
	}
	pthread_mutex_unlock(&pool->lock);
	return n;
}

int nvmk_dma_pool_release_leaked(struct nvmk_dma_pool *pool, const char *owner, const char *tag)
{
	int idx;

	if (!pool || !names_ok(owner, tag))
		return -EINVAL;
	pthread_mutex_lock(&pool->lock);
	idx = find_slot(pool, owner, tag, POOL_SLOT_LEAKED);
	if (idx >= 0)
		release_slot(pool, (uint32_t)idx);
	pthread_mutex_unlock(&pool->lock);
	return idx >= 0 ? 0 : -ENOENT;
}

/* The slot of a block this process holds (@how: LIVE_*, or 0 for either)
 * that @mem describes exactly, or -1. Lock held. */
static int held_slot(struct nvmk_dma_pool *pool, const struct nvmk_dma_mem *mem, uint8_t how)
{
	uint32_t idx = mem->slot;
	const struct pool_slot *s;

	if (idx >= pool->slot_count)
		return -1;
	s = &pool->slots[idx];
	if (s->state != POOL_SLOT_ALLOCATED || !pool->live[idx] ||
	    (how && pool->live[idx] != how) || s->offset != mem->fd_offset ||
	    s->pages * NVMK_DMA_PAGE_SIZE != mem->size ||
	    (uint8_t *)mem->vaddr != pool->base + s->offset)
		return -1;
	return (int)idx;
}

int nvmk_dma_reclaim_check(struct nvmk_dma_pool *pool, const char *owner, const char *tag,
			   uint64_t *size)
{
	int idx, err = 0;

	if (!pool || !names_ok(owner, tag))
		return -EINVAL;
	pthread_mutex_lock(&pool->lock);
	idx = find_slot(pool, owner, tag, POOL_SLOT_ALLOCATED);
	if (idx < 0)
		err = find_slot(pool, owner, tag, POOL_SLOT_LEAKED) >= 0 ? -ESTALE : -ENOENT;
	else if (pool->live[idx])
		err = -EBUSY;
	else if (size)
		*size = pool->slots[idx].pages * NVMK_DMA_PAGE_SIZE;
	pthread_mutex_unlock(&pool->lock);
	return err;
}

int nvmk_dma_unclaim(struct nvmk_dma_mem *mem)
{
	struct nvmk_dma_pool *pool = mem ? mem->pool : NULL;
	int idx;

	if (!pool)
		return -EINVAL;
	pthread_mutex_lock(&pool->lock);
	idx = held_slot(pool, mem, LIVE_RECLAIMED);
	if (idx >= 0)
		pool->live[idx] = 0;
	pthread_mutex_unlock(&pool->lock);
	if (idx < 0) {
		nvmk_err(POOL_LOG, NVMK_LOG_NOQ,
			 "unclaim of a block that was not reclaimed (slot %u, offset 0x%llx): "
			 "ignored",
			 mem->slot, (unsigned long long)mem->fd_offset);
		return -EINVAL;
	}
	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
	return 0;
}

int nvmk_dma_tag(const struct nvmk_dma_mem *mem, char *tag, size_t len)
{
	struct nvmk_dma_pool *pool = mem ? mem->pool : NULL;
	int idx, n = -EINVAL;

	if (!pool || !tag || !len)
		return -EINVAL;
	pthread_mutex_lock(&pool->lock);
	idx = held_slot(pool, mem, 0);
	if (idx >= 0)
		n = snprintf(tag, len, "%s", pool->slots[idx].tag);
	pthread_mutex_unlock(&pool->lock);
	if (n < 0)
		return n;
	return (size_t)n < len ? 0 : -ENOSPC;
}

/* ---- saved-state generations ---- */

/* The Generation slot of @owner, or -1. Lock held. Not in @order: no pages. */
static int find_gen(struct nvmk_dma_pool *pool, const char *owner)
{
	for (uint32_t i = 0; i < pool->slot_count; i++)
		if (pool->slots[i].state == POOL_SLOT_GENERATION &&
		    strcmp(pool->slots[i].owner, owner) == 0)
			return (int)i;
	return -1;
}

int nvmk_dma_pool_gen_get(struct nvmk_dma_pool *pool, const char *owner, uint64_t *gen,
			  bool *restored)
{
	int idx;

	if (!pool || !names_ok(owner, POOL_GEN_TAG) || !gen || !restored)
		return -EINVAL;
	pthread_mutex_lock(&pool->lock);
	idx = find_gen(pool, owner);
	if (idx >= 0) {
		*gen = pool->slots[idx].generation;
		*restored = pool->slots[idx].gen_flags & POOL_GEN_RESTORED;
	}
	pthread_mutex_unlock(&pool->lock);
	return idx >= 0 ? 0 : -ENOENT;
}

int nvmk_dma_pool_gen_set(struct nvmk_dma_pool *pool, const char *owner, uint64_t gen,
			  bool restored)
{
	struct pool_slot *s;
	int idx, err = 0;

	if (!pool || !names_ok(owner, POOL_GEN_TAG) || gen == 0)
		return -EINVAL;
	pthread_mutex_lock(&pool->lock);
	idx = find_gen(pool, owner);
	if (idx >= 0 && pool->slots[idx].generation > gen) {
		err = -ESTALE;
	} else if (idx < 0) {
		for (uint32_t i = pool->free_hint; i < pool->slot_count; i++)
			if (pool->slots[i].state == POOL_SLOT_FREE) {
				idx = (int)i;
				break;
			}
		if (idx < 0) {
			err = -ENOMEM;
		} else {
			s = &pool->slots[idx];
			strcpy(s->owner, owner); /* length checked by names_ok() */
			strcpy(s->tag, POOL_GEN_TAG);
			s->state = POOL_SLOT_GENERATION;
			pool->free_hint = (uint32_t)idx + 1;
			/* a table inherited in format 1 takes the format that has records */
			pool->hdr->version = POOL_FORMAT_VERSION_GEN;
		}
	}
	if (!err) {
		s = &pool->slots[idx];
		s->generation = gen;
		s->gen_flags = restored ? POOL_GEN_RESTORED : 0;
		table_commit(pool);
	}
	pthread_mutex_unlock(&pool->lock);
	if (err == -ENOMEM)
		nvmk_err(owner, NVMK_LOG_NOQ,
			 "no free pool slot for the saved-state generation record");
	return err;
}
