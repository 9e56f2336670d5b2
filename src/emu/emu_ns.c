// SPDX-License-Identifier: MIT
/*
 * Emulator namespace storage: sparse RAM, a regular file, or null.
 *
 * RAM backing
 * -----------
 * The namespace is cut into 64 KiB chunks, found through a two-level table:
 * an L1 array (sized for the namespace, reallocated only by resize) of
 * pointers to L2 tables of EMU_L2_ENTRIES chunk pointers each. Both L2
 * tables and chunks are allocated zeroed on the first write that touches
 * them and published with a compare-exchange, so concurrent writers never
 * take a lock to allocate; the loser of a race frees its copy and uses the
 * winner's. A NULL slot reads as zeroes, so a 64 GiB namespace that was
 * never written costs only its L1 array (128 pointers).
 *
 * Locking rule (documented once, relied upon everywhere below):
 *  - every data call (read, write, partial zero) holds ns->lock in READ mode;
 *  - anything that frees a chunk or an L2 table, or replaces the L1 array
 *    (zero/deallocate of whole chunks, resize, destroy), holds ns->lock in
 *    WRITE mode, so no reader can hold a pointer to what is freed.
 *  The data path therefore costs one uncontended rwlock read-lock per call.
 *  - the bytes inside one chunk are copied under one of EMU_STRIPES striped
 *    mutexes (chunk index modulo EMU_STRIPES). Blocks (512 B / 4 KiB) never
 *    straddle a chunk, so overlapping concurrent writes leave each block
 *    holding one of the writes, as the header promises, and the copies are
 *    not data races.
 *
 * NUSE is approximated by allocated chunks: a chunk counts in full as soon
 * as one byte of it was written, and stops counting when it is freed by a
 * zero/deallocate that covers it whole. Write Zeroes without DEAC frees
 * whole chunks too (they read back as zeroes either way, NVM-CS 1.0 3.2.8),
 * which only makes NUSE smaller.
 *
 * FILE backing: pread/pwrite loops (short I/O, EINTR), zero by punching a
 * hole (falling back to writing zeroes), flush = fdatasync, resize =
 * ftruncate. NUSE comes from the file's allocated blocks (st_blocks).
 *
 * NULL backing: writes are discarded, reads return zeroes, NUSE is 0.
 */
#include "emu/emu_ns.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nvmekeep/log.h"

#define EMU_CHUNK_SHIFT 16u
#define EMU_CHUNK_SIZE	(1ull << EMU_CHUNK_SHIFT)
#define EMU_L2_SHIFT	12u
#define EMU_L2_ENTRIES	(1u << EMU_L2_SHIFT) /* one L2 table covers 256 MiB */
#define EMU_STRIPES	64u
/* Largest RAM namespace: 1 PiB, i.e. an L1 array of at most 4 Mi pointers
 * (32 MiB of untouched, zero-page-backed virtual memory). */
#define EMU_RAM_MAX_BYTES (1ull << 50)

struct emu_l2 {
	_Atomic(uint8_t *) chunk[EMU_L2_ENTRIES];
};

struct emu_ns {
	uint32_t nsid;
	uint8_t lba_shift;
	enum nvmk_emu_backing backing;
	/* Read by anyone at any time; written only by resize under the write
	 * lock. Relaxed: the value stands alone, data ops do not depend on it. */
	_Atomic uint64_t nblocks;
	char dev[32];

	pthread_rwlock_t lock; /* see the locking rule above */

	/* RAM */
	_Atomic(struct emu_l2 *) *l1;
	uint64_t l1_entries;
	atomic_uint_fast64_t chunks; /* allocated chunks, for NUSE (relaxed) */
	pthread_mutex_t stripe[EMU_STRIPES];

	/* FILE */
	int fd;
};

static const uint8_t emu_zero_buf[EMU_CHUNK_SIZE];

static uint64_t emu_ns_bytes(const struct emu_ns *ns)
{
	/* Relaxed: data calls hold ns->lock for reading and resize writes under
	 * the write lock, so the rwlock already orders this with a resize. */
	return atomic_load_explicit(&ns->nblocks, memory_order_relaxed) << ns->lba_shift;
}

static uint64_t emu_l1_entries_for(uint64_t bytes)
{
	uint64_t chunks = (bytes + EMU_CHUNK_SIZE - 1) >> EMU_CHUNK_SHIFT;

	return (chunks + EMU_L2_ENTRIES - 1) >> EMU_L2_SHIFT;
}

static const char *emu_backing_name(enum nvmk_emu_backing b)
{
	switch (b) {
	case NVMK_EMU_BACK_RAM:
		return "ram";
	case NVMK_EMU_BACK_FILE:
		return "file";
	case NVMK_EMU_BACK_NULL:
		return "null";
	}
	return "?";
}

/* ---------------------------------------------------------------------- */
/* RAM backing                                                            */
/* ---------------------------------------------------------------------- */

/* Find the chunk holding byte @off; allocate it (and its L2 table) when
 * @alloc. Caller holds ns->lock in read (or write) mode. NULL means "reads
 * as zeroes" when !@alloc, and out of memory when @alloc. */
static uint8_t *emu_ram_chunk(struct emu_ns *ns, uint64_t off, bool alloc)
{
	uint64_t ci = off >> EMU_CHUNK_SHIFT;
	uint64_t i1 = ci >> EMU_L2_SHIFT;
	unsigned i2 = (unsigned)(ci & (EMU_L2_ENTRIES - 1));
	struct emu_l2 *l2;
	uint8_t *chunk;

	if (i1 >= ns->l1_entries)
		return NULL;
	/* Acquire: pairs with the release of the CAS below, so the zeroed
	 * contents of an L2 table published by another thread are visible. */
	l2 = atomic_load_explicit(&ns->l1[i1], memory_order_acquire);
	if (!l2) {
		struct emu_l2 *fresh;

		if (!alloc)
			return NULL;
		fresh = calloc(1, sizeof(*fresh));
		if (!fresh)
			return NULL;
		l2 = NULL;
		/* Success: release publishes the zeroed table. Failure: acquire
		 * makes the winner's zeroed table visible before we use it. */
		if (atomic_compare_exchange_strong_explicit(
			&ns->l1[i1], &l2, fresh, memory_order_acq_rel, memory_order_acquire))
			l2 = fresh;
		else
			free(fresh);
	}
	/* Acquire: pairs with the chunk CAS below (zeroed contents visible). */
	chunk = atomic_load_explicit(&l2->chunk[i2], memory_order_acquire);
	if (chunk || !alloc)
		return chunk;

	uint8_t *fresh = calloc(1, EMU_CHUNK_SIZE);

	if (!fresh)
		return NULL;
	/* Same pairing as for the L2 table: release publishes the zeroed chunk,
	 * acquire on failure sees the winner's. */
	if (atomic_compare_exchange_strong_explicit(&l2->chunk[i2], &chunk, fresh,
						    memory_order_acq_rel, memory_order_acquire)) {
		/* Relaxed: a statistic, orders nothing. */
		atomic_fetch_add_explicit(&ns->chunks, 1, memory_order_relaxed);
		return fresh;
	}
	free(fresh);
	return chunk;
}

static pthread_mutex_t *emu_stripe(struct emu_ns *ns, uint64_t off)
{
	return &ns->stripe[(off >> EMU_CHUNK_SHIFT) % EMU_STRIPES];
}

enum emu_ram_op { EMU_RAM_READ, EMU_RAM_WRITE, EMU_RAM_ZERO };

/* Copy in/out chunk by chunk. Caller holds ns->lock in read mode. */
static int emu_ram_io(struct emu_ns *ns, uint64_t off, uint8_t *rbuf, const uint8_t *wbuf,
		      uint64_t len, enum emu_ram_op op)
{
	while (len) {
		uint64_t in = off & (EMU_CHUNK_SIZE - 1);
		uint64_t n = EMU_CHUNK_SIZE - in;
		pthread_mutex_t *m = emu_stripe(ns, off);
		uint8_t *chunk;

		if (n > len)
			n = len;
		chunk = emu_ram_chunk(ns, off, op == EMU_RAM_WRITE);
		if (!chunk && op == EMU_RAM_WRITE) {
			nvmk_err(ns->dev, NVMK_LOG_NOQ,
				 "ns %u: out of memory allocating a RAM chunk at byte %llu",
				 ns->nsid, (unsigned long long)off);
			return -EIO;
		}
		if (!chunk) {
			/* never written (or deallocated): reads as zeroes */
			if (op == EMU_RAM_READ)
				memset(rbuf, 0, n);
		} else {
			pthread_mutex_lock(m);
			if (op == EMU_RAM_READ)
				memcpy(rbuf, chunk + in, n);
			else if (op == EMU_RAM_WRITE)
				memcpy(chunk + in, wbuf, n);
			else
				memset(chunk + in, 0, n);
			pthread_mutex_unlock(m);
		}
		off += n;
		len -= n;
		if (rbuf)
			rbuf += n;
		if (wbuf)
			wbuf += n;
	}
	return 0;
}

/* Free chunk @ci. Caller holds ns->lock in WRITE mode: no reader can hold it. */
static void emu_ram_free_chunk(struct emu_ns *ns, uint64_t ci)
{
	uint64_t i1 = ci >> EMU_L2_SHIFT;
	struct emu_l2 *l2;
	uint8_t *chunk;

	if (i1 >= ns->l1_entries)
		return;
	/* Relaxed: the write lock excludes every other access to the table. */
	l2 = atomic_load_explicit(&ns->l1[i1], memory_order_relaxed);
	if (!l2)
		return;
	chunk = atomic_exchange_explicit(&l2->chunk[ci & (EMU_L2_ENTRIES - 1)], NULL,
					 memory_order_relaxed);
	if (chunk) {
		free(chunk);
		/* Relaxed: a statistic, orders nothing. */
		atomic_fetch_sub_explicit(&ns->chunks, 1, memory_order_relaxed);
	}
}

/* Free every chunk at index >= @first_ci, and L2 tables left wholly beyond
 * it. Caller holds the write lock. */
static void emu_ram_free_from(struct emu_ns *ns, uint64_t first_ci)
{
	for (uint64_t i1 = first_ci >> EMU_L2_SHIFT; i1 < ns->l1_entries; i1++) {
		/* Relaxed (here and below): the write lock excludes every reader. */
		struct emu_l2 *l2 = atomic_load_explicit(&ns->l1[i1], memory_order_relaxed);

		if (!l2)
			continue;
		for (unsigned i2 = 0; i2 < EMU_L2_ENTRIES; i2++) {
			uint64_t ci = (i1 << EMU_L2_SHIFT) | i2;

			if (ci >= first_ci)
				emu_ram_free_chunk(ns, ci);
		}
		if ((i1 << EMU_L2_SHIFT) >= first_ci) {
			atomic_store_explicit(&ns->l1[i1], NULL, memory_order_relaxed);
			free(l2);
		}
	}
}

/* Free chunks [@first, @end). Skips absent L2 tables, so deallocating a huge
 * sparse namespace costs time for what was written only, and frees an L2
 * table whose whole range is freed. Caller holds the write lock. */
static void emu_ram_free_range(struct emu_ns *ns, uint64_t first, uint64_t end)
{
	uint64_t ci = first;

	while (ci < end) {
		uint64_t i1 = ci >> EMU_L2_SHIFT;
		uint64_t l2_first = i1 << EMU_L2_SHIFT;
		uint64_t l2_end = l2_first + EMU_L2_ENTRIES;
		uint64_t stop = end < l2_end ? end : l2_end;
		struct emu_l2 *l2;

		if (i1 >= ns->l1_entries)
			return;
		/* Relaxed: the write lock excludes every reader. */
		l2 = atomic_load_explicit(&ns->l1[i1], memory_order_relaxed);
		if (l2) {
			for (uint64_t c = ci; c < stop; c++)
				emu_ram_free_chunk(ns, c);
			if (ci == l2_first && stop == l2_end) {
				atomic_store_explicit(&ns->l1[i1], NULL, memory_order_relaxed);
				free(l2);
			}
		}
		ci = stop;
	}
}

static int emu_ns_range_ok(struct emu_ns *ns, const char *what, uint64_t off, uint64_t len);

static int emu_ram_zero(struct emu_ns *ns, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;
	uint64_t first_whole = (off + EMU_CHUNK_SIZE - 1) >> EMU_CHUNK_SHIFT;
	uint64_t end_whole = end >> EMU_CHUNK_SHIFT; /* exclusive */
	int ret;

	if (first_whole >= end_whole) {
		/* no whole chunk: zero-fill in place under the read lock */
		pthread_rwlock_rdlock(&ns->lock);
		ret = emu_ns_range_ok(ns, "zero", off, len);
		if (!ret)
			ret = emu_ram_io(ns, off, NULL, NULL, len, EMU_RAM_ZERO);
		pthread_rwlock_unlock(&ns->lock);
		return ret;
	}
	/* Whole chunks are freed: write mode, so no reader holds them. The
	 * partial head and tail are zero-filled under the same lock. */
	pthread_rwlock_wrlock(&ns->lock);
	ret = emu_ns_range_ok(ns, "zero", off, len);
	if (ret) {
		pthread_rwlock_unlock(&ns->lock);
		return ret;
	}
	if (off < (first_whole << EMU_CHUNK_SHIFT))
		emu_ram_io(ns, off, NULL, NULL, (first_whole << EMU_CHUNK_SHIFT) - off,
			   EMU_RAM_ZERO);
	emu_ram_free_range(ns, first_whole, end_whole);
	if (end > (end_whole << EMU_CHUNK_SHIFT))
		emu_ram_io(ns, end_whole << EMU_CHUNK_SHIFT, NULL, NULL,
			   end - (end_whole << EMU_CHUNK_SHIFT), EMU_RAM_ZERO);
	pthread_rwlock_unlock(&ns->lock);
	return 0;
}

/* Caller holds the write lock. */
static int emu_ram_resize(struct emu_ns *ns, uint64_t old_bytes, uint64_t new_bytes)
{
	uint64_t entries = emu_l1_entries_for(new_bytes);

	if (new_bytes < old_bytes) {
		uint64_t first_free = (new_bytes + EMU_CHUNK_SIZE - 1) >> EMU_CHUNK_SHIFT;

		/* The tail of the last kept chunk must read zeroes after a later
		 * grow: clear it now. */
		if (new_bytes & (EMU_CHUNK_SIZE - 1))
			emu_ram_io(ns, new_bytes, NULL, NULL,
				   (first_free << EMU_CHUNK_SHIFT) - new_bytes, EMU_RAM_ZERO);
		emu_ram_free_from(ns, first_free);
	}
	if (entries > ns->l1_entries) {
		_Atomic(struct emu_l2 *) *l1 = calloc(entries, sizeof(*l1));

		if (!l1) {
			nvmk_err(ns->dev, NVMK_LOG_NOQ,
				 "ns %u: out of memory growing the chunk table to %llu entries",
				 ns->nsid, (unsigned long long)entries);
			return -ENOMEM;
		}
		/* Relaxed: under the write lock; unlocking publishes the table. */
		for (uint64_t i = 0; i < ns->l1_entries; i++)
			atomic_store_explicit(
			    &l1[i], atomic_load_explicit(&ns->l1[i], memory_order_relaxed),
			    memory_order_relaxed);
		free(ns->l1);
		ns->l1 = l1;
		ns->l1_entries = entries;
	}
	/* A shrunk L1 keeps its (now NULL-tailed) size: cheap, and a later grow
	 * needs no reallocation. */
	return 0;
}

/* ---------------------------------------------------------------------- */
/* FILE backing                                                           */
/* ---------------------------------------------------------------------- */

static int emu_file_pread(struct emu_ns *ns, uint64_t off, uint8_t *buf, uint64_t len)
{
	while (len) {
		size_t n = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t r = pread(ns->fd, buf, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			nvmk_err(ns->dev, NVMK_LOG_NOQ, "ns %u: pread at %llu (%zu bytes): %s",
				 ns->nsid, (unsigned long long)off, n, strerror(errno));
			return -EIO;
		}
		if (r == 0) {
			/* Past the end of a file someone shortened behind our back:
			 * the namespace still reads as zeroes there. */
			memset(buf, 0, len);
			return 0;
		}
		off += (uint64_t)r;
		buf += r;
		len -= (uint64_t)r;
	}
	return 0;
}

static int emu_file_pwrite(struct emu_ns *ns, uint64_t off, const uint8_t *buf, uint64_t len)
{
	while (len) {
		size_t n = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t r = pwrite(ns->fd, buf, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			nvmk_err(ns->dev, NVMK_LOG_NOQ, "ns %u: pwrite at %llu (%zu bytes): %s",
				 ns->nsid, (unsigned long long)off, n,
				 r < 0 ? strerror(errno) : "no progress");
			return -EIO;
		}
		off += (uint64_t)r;
		buf += r;
		len -= (uint64_t)r;
	}
	return 0;
}

static int emu_file_zero(struct emu_ns *ns, uint64_t off, uint64_t len)
{
	int r;

	do {
		r = fallocate(ns->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			      (off_t)len);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL) {
		nvmk_err(ns->dev, NVMK_LOG_NOQ, "ns %u: punching a hole at %llu (%llu bytes): %s",
			 ns->nsid, (unsigned long long)off, (unsigned long long)len,
			 strerror(errno));
		return -EIO;
	}
	/* The file system cannot punch holes: write zeroes instead. */
	while (len) {
		uint64_t n = len > EMU_CHUNK_SIZE ? EMU_CHUNK_SIZE : len;
		int ret = emu_file_pwrite(ns, off, emu_zero_buf, n);

		if (ret)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

static int emu_file_open(struct emu_ns *ns, const char *path, uint64_t bytes)
{
	struct stat st;

	ns->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (ns->fd < 0) {
		int err = errno;

		nvmk_err(ns->dev, NVMK_LOG_NOQ, "ns %u: cannot open backing file %s: %s", ns->nsid,
			 path, strerror(err));
		return -err;
	}
	if (fstat(ns->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		nvmk_err(ns->dev, NVMK_LOG_NOQ,
			 "ns %u: backing file %s is not a regular file (path must name a regular "
			 "file)",
			 ns->nsid, path);
		return -EINVAL;
	}
	/* Extend a short (or new) file; a longer file is left as it is so that
	 * opening never destroys data ("created/extended as needed", emu.h). */
	if ((uint64_t)st.st_size < bytes) {
		int r;

		do {
			r = ftruncate(ns->fd, (off_t)bytes);
		} while (r < 0 && errno == EINTR);
		if (r < 0) {
			int err = errno;

			nvmk_err(ns->dev, NVMK_LOG_NOQ, "ns %u: cannot size %s to %llu bytes: %s",
				 ns->nsid, path, (unsigned long long)bytes, strerror(err));
			return -err;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Public                                                                 */
/* ---------------------------------------------------------------------- */

static int emu_ns_check_size(const char *dev, uint32_t nsid, enum nvmk_emu_backing backing,
			     uint8_t lba_shift, uint64_t nblocks)
{
	if (nblocks < 1 || nblocks > (UINT64_MAX >> lba_shift) ||
	    (nblocks << lba_shift) > (uint64_t)INT64_MAX) {
		nvmk_err(
		    dev, NVMK_LOG_NOQ,
		    "ns %u: nblocks %llu out of range (accepted: 1 .. 2^63 bytes / block size)",
		    nsid, (unsigned long long)nblocks);
		return -EINVAL;
	}
	if (backing == NVMK_EMU_BACK_RAM && (nblocks << lba_shift) > EMU_RAM_MAX_BYTES) {
		nvmk_err(
		    dev, NVMK_LOG_NOQ,
		    "ns %u: nblocks %llu too large for RAM backing (accepted: up to %llu bytes)",
		    nsid, (unsigned long long)nblocks, (unsigned long long)EMU_RAM_MAX_BYTES);
		return -EINVAL;
	}
	return 0;
}

/**
 * emu_ns_create - create the storage of one namespace.
 * @cfg: namespace configuration (validated here)
 * @dev: controller name for log lines
 * @out: the new namespace
 *
 * Return: 0, -EINVAL for a bad configuration (with a log line naming the
 * field), -ENOMEM, or -errno from opening the backing file.
 */
int emu_ns_create(const struct nvmk_emu_ns_config *cfg, const char *dev, struct emu_ns **out)
{
	struct emu_ns *ns;
	int ret;

	if (!dev)
		dev = "emu";
	if (!cfg || !out) {
		nvmk_err(dev, NVMK_LOG_NOQ, "namespace config missing");
		return -EINVAL;
	}
	*out = NULL;
	if (cfg->nsid == 0 || cfg->nsid == NVME_NSID_ALL) {
		nvmk_err(dev, NVMK_LOG_NOQ,
			 "ns config: nsid %u invalid (accepted: 1 .. FFFFFFFEh, at most the "
			 "controller's NN)",
			 cfg->nsid);
		return -EINVAL;
	}
	if (cfg->lba_shift != 9 && cfg->lba_shift != 12) {
		nvmk_err(dev, NVMK_LOG_NOQ,
			 "ns %u: lba_shift %u invalid (accepted: 9 = 512 B, 12 = 4 KiB)", cfg->nsid,
			 cfg->lba_shift);
		return -EINVAL;
	}
	if (cfg->backing != NVMK_EMU_BACK_RAM && cfg->backing != NVMK_EMU_BACK_FILE &&
	    cfg->backing != NVMK_EMU_BACK_NULL) {
		nvmk_err(dev, NVMK_LOG_NOQ,
			 "ns %u: backing %d invalid (accepted: NVMK_EMU_BACK_RAM, _FILE, _NULL)",
			 cfg->nsid, (int)cfg->backing);
		return -EINVAL;
	}
	ret = emu_ns_check_size(dev, cfg->nsid, cfg->backing, cfg->lba_shift, cfg->nblocks);
	if (ret)
		return ret;
	if (cfg->backing == NVMK_EMU_BACK_FILE && (!cfg->path || !cfg->path[0])) {
		nvmk_err(dev, NVMK_LOG_NOQ,
			 "ns %u: path missing (accepted: the path of a regular file, required "
			 "for NVMK_EMU_BACK_FILE)",
			 cfg->nsid);
		return -EINVAL;
	}

	ns = calloc(1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	ns->nsid = cfg->nsid;
	ns->lba_shift = cfg->lba_shift;
	ns->backing = cfg->backing;
	ns->fd = -1;
	atomic_init(&ns->nblocks, cfg->nblocks);
	atomic_init(&ns->chunks, 0);
	snprintf(ns->dev, sizeof(ns->dev), "%s", dev);
	pthread_rwlock_init(&ns->lock, NULL);
	for (unsigned i = 0; i < EMU_STRIPES; i++)
		pthread_mutex_init(&ns->stripe[i], NULL);

	switch (ns->backing) {
	case NVMK_EMU_BACK_RAM:
		ns->l1_entries = emu_l1_entries_for(cfg->nblocks << cfg->lba_shift);
		ns->l1 = calloc(ns->l1_entries, sizeof(*ns->l1));
		if (!ns->l1) {
			nvmk_err(dev, NVMK_LOG_NOQ, "ns %u: out of memory for the chunk table",
				 ns->nsid);
			ret = -ENOMEM;
		}
		break;
	case NVMK_EMU_BACK_FILE:
		ret = emu_file_open(ns, cfg->path, cfg->nblocks << cfg->lba_shift);
		break;
	case NVMK_EMU_BACK_NULL:
		break;
	}
	if (ret) {
		emu_ns_destroy(ns);
		return ret;
	}
	nvmk_debug(dev, NVMK_LOG_NOQ, "ns %u: %llu blocks of %u bytes, %s backing", ns->nsid,
		   (unsigned long long)cfg->nblocks, 1u << ns->lba_shift,
		   emu_backing_name(ns->backing));
	*out = ns;
	return 0;
}

/** emu_ns_destroy - free the storage (the backing file stays). NULL is a no-op. */
void emu_ns_destroy(struct emu_ns *ns)
{
	if (!ns)
		return;
	if (ns->l1) {
		emu_ram_free_from(ns, 0);
		free(ns->l1);
	}
	if (ns->fd >= 0)
		close(ns->fd);
	for (unsigned i = 0; i < EMU_STRIPES; i++)
		pthread_mutex_destroy(&ns->stripe[i]);
	pthread_rwlock_destroy(&ns->lock);
	free(ns);
}

uint32_t emu_ns_nsid(const struct emu_ns *ns)
{
	return ns->nsid;
}

uint64_t emu_ns_nblocks(const struct emu_ns *ns)
{
	/* Relaxed: a value on its own, callers serialise against resize. */
	return atomic_load_explicit(&ns->nblocks, memory_order_relaxed);
}

uint8_t emu_ns_lba_shift(const struct emu_ns *ns)
{
	return ns->lba_shift;
}

/**
 * emu_ns_nuse - blocks holding data, for Identify NUSE.
 * @ns: namespace
 *
 * Approximate (see the top of this file): RAM counts whole allocated chunks,
 * FILE the file's allocated blocks, NULL nothing. Never more than nblocks.
 * Return: number of logical blocks in use.
 */
uint64_t emu_ns_nuse(const struct emu_ns *ns)
{
	uint64_t nblocks = emu_ns_nblocks(ns);
	uint64_t used = 0;
	struct stat st;

	switch (ns->backing) {
	case NVMK_EMU_BACK_RAM:
		/* Relaxed: a statistic. */
		used = (uint64_t)atomic_load_explicit(&ns->chunks, memory_order_relaxed)
		       << (EMU_CHUNK_SHIFT - ns->lba_shift);
		break;
	case NVMK_EMU_BACK_FILE:
		if (fstat(ns->fd, &st) == 0)
			used = ((uint64_t)st.st_blocks * 512u) >> ns->lba_shift;
		break;
	case NVMK_EMU_BACK_NULL:
		break;
	}
	return used < nblocks ? used : nblocks;
}

/* Defence in depth: the caller checks ranges against nblocks, but a bug
 * there must not turn into an access out of the chunk table. */
static int emu_ns_range_ok(struct emu_ns *ns, const char *what, uint64_t off, uint64_t len)
{
	uint64_t bytes = emu_ns_bytes(ns);

	if (off > bytes || len > bytes - off) {
		nvmk_err(ns->dev, NVMK_LOG_NOQ,
			 "ns %u: %s of %llu bytes at %llu is beyond the namespace (%llu bytes)",
			 ns->nsid, what, (unsigned long long)len, (unsigned long long)off,
			 (unsigned long long)bytes);
		return -EINVAL;
	}
	return 0;
}

/**
 * emu_ns_read - read @len bytes at byte offset @off into @buf.
 * Return: 0, -EIO on a backing failure, -EINVAL if out of range (caller bug).
 */
int emu_ns_read(struct emu_ns *ns, uint64_t off, void *buf, uint64_t len)
{
	int ret;

	switch (ns->backing) {
	case NVMK_EMU_BACK_RAM:
		pthread_rwlock_rdlock(&ns->lock);
		ret = emu_ns_range_ok(ns, "read", off, len);
		if (!ret)
			ret = emu_ram_io(ns, off, buf, NULL, len, EMU_RAM_READ);
		pthread_rwlock_unlock(&ns->lock);
		return ret;
	case NVMK_EMU_BACK_FILE:
		pthread_rwlock_rdlock(&ns->lock);
		ret = emu_ns_range_ok(ns, "read", off, len);
		if (!ret)
			ret = emu_file_pread(ns, off, buf, len);
		pthread_rwlock_unlock(&ns->lock);
		return ret;
	case NVMK_EMU_BACK_NULL:
		ret = emu_ns_range_ok(ns, "read", off, len);
		if (!ret)
			memset(buf, 0, len);
		return ret;
	}
	return -EINVAL;
}

/**
 * emu_ns_write - write @len bytes from @buf at byte offset @off.
 * Return: 0, -EIO on a backing failure, -EINVAL if out of range (caller bug).
 */
int emu_ns_write(struct emu_ns *ns, uint64_t off, const void *buf, uint64_t len)
{
	int ret;

	switch (ns->backing) {
	case NVMK_EMU_BACK_RAM:
		pthread_rwlock_rdlock(&ns->lock);
		ret = emu_ns_range_ok(ns, "write", off, len);
		if (!ret)
			ret = emu_ram_io(ns, off, NULL, buf, len, EMU_RAM_WRITE);
		pthread_rwlock_unlock(&ns->lock);
		return ret;
	case NVMK_EMU_BACK_FILE:
		pthread_rwlock_rdlock(&ns->lock);
		ret = emu_ns_range_ok(ns, "write", off, len);
		if (!ret)
			ret = emu_file_pwrite(ns, off, buf, len);
		pthread_rwlock_unlock(&ns->lock);
		return ret;
	case NVMK_EMU_BACK_NULL:
		return emu_ns_range_ok(ns, "write", off, len);
	}
	return -EINVAL;
}

/**
 * emu_ns_zero - make a range read as zeroes.
 * @deallocate: also release storage. RAM releases whole chunks in either
 * case (they read as zeroes either way); FILE punches a hole in either case.
 * Return: 0, -EIO on a backing failure, -EINVAL if out of range.
 */
int emu_ns_zero(struct emu_ns *ns, uint64_t off, uint64_t len, bool deallocate)
{
	int ret;

	(void)deallocate;
	switch (ns->backing) {
	case NVMK_EMU_BACK_RAM:
		return emu_ram_zero(ns, off, len);
	case NVMK_EMU_BACK_FILE:
		pthread_rwlock_rdlock(&ns->lock);
		ret = emu_ns_range_ok(ns, "zero", off, len);
		if (!ret && len)
			ret = emu_file_zero(ns, off, len);
		pthread_rwlock_unlock(&ns->lock);
		return ret;
	case NVMK_EMU_BACK_NULL:
		return emu_ns_range_ok(ns, "zero", off, len);
	}
	return -EINVAL;
}

/**
 * emu_ns_flush - make written data durable: fdatasync for FILE.
 * Return: 0 or -EIO.
 */
int emu_ns_flush(struct emu_ns *ns)
{
	int r;

	if (ns->backing != NVMK_EMU_BACK_FILE)
		return 0;
	do {
		r = fdatasync(ns->fd);
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		nvmk_err(ns->dev, NVMK_LOG_NOQ, "ns %u: fdatasync: %s", ns->nsid, strerror(errno));
		return -EIO;
	}
	return 0;
}

/**
 * emu_ns_resize - change the size to @nblocks.
 *
 * Blocks beyond a shrink are discarded; a grow reads zeroes. Takes the
 * namespace lock in write mode, so it is safe even if the caller's own
 * serialisation against data calls were missing.
 * Return: 0, -EINVAL (bad size), -ENOMEM, or -EIO (ftruncate failed).
 */
int emu_ns_resize(struct emu_ns *ns, uint64_t nblocks)
{
	uint64_t old_bytes, new_bytes;
	int ret = emu_ns_check_size(ns->dev, ns->nsid, ns->backing, ns->lba_shift, nblocks);
	int r;

	if (ret)
		return ret;
	new_bytes = nblocks << ns->lba_shift;
	pthread_rwlock_wrlock(&ns->lock);
	old_bytes = emu_ns_bytes(ns);
	switch (ns->backing) {
	case NVMK_EMU_BACK_RAM:
		ret = emu_ram_resize(ns, old_bytes, new_bytes);
		break;
	case NVMK_EMU_BACK_FILE:
		do {
			r = ftruncate(ns->fd, (off_t)new_bytes);
		} while (r < 0 && errno == EINTR);
		if (r < 0) {
			nvmk_err(ns->dev, NVMK_LOG_NOQ, "ns %u: resize to %llu bytes: %s", ns->nsid,
				 (unsigned long long)new_bytes, strerror(errno));
			ret = -EIO;
		}
		break;
	case NVMK_EMU_BACK_NULL:
		break;
	}
	/* Relaxed: data calls read it under the read lock; the unlock below
	 * orders this store before their next call. */
	if (!ret)
		atomic_store_explicit(&ns->nblocks, nblocks, memory_order_relaxed);
	pthread_rwlock_unlock(&ns->lock);
	if (!ret)
		nvmk_info(ns->dev, NVMK_LOG_NOQ, "ns %u: resized from %llu to %llu blocks",
			  ns->nsid, (unsigned long long)(old_bytes >> ns->lba_shift),
			  (unsigned long long)nblocks);
	return ret;
}

/* ---------------------------------------------------------------------- */
/* Identify                                                               */
/* ---------------------------------------------------------------------- */

/* FNV-1a 64 over @len bytes, continuing from @h. */
static uint64_t emu_fnv1a(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* splitmix64 finaliser: spreads FNV's weak high bits. */
static uint64_t emu_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/**
 * emu_ns_ids - the namespace's NGUID and EUI64.
 *
 * Both are a hash of the subsystem serial number and the NSID, so they are
 * stable across restarts and differ between namespaces and subsystems, and
 * never all zeroes (which would mean "not provided", NVM-CS 1.0 Figure 97).
 * The EUI64's first byte has the locally-administered bit set and the group
 * bit clear, since the value is not derived from an IEEE-assigned OUI.
 */
void emu_ns_ids(const struct emu_ns *ns, const char *subsys_serial, uint8_t nguid[16],
		uint8_t eui64[8])
{
	const char *sn = subsys_serial ? subsys_serial : "";
	uint64_t h = emu_fnv1a(0xcbf29ce484222325ull, sn, strlen(sn));
	uint32_t nsid = ns->nsid;
	uint64_t a, b, c;

	h = emu_fnv1a(h, &nsid, sizeof(nsid));
	a = emu_mix64(h ^ 0x6e766d656b656570ull); /* "nvmekeep" */
	b = emu_mix64(h + 0x9e3779b97f4a7c15ull);
	c = emu_mix64(h ^ 0x4555493634000000ull);
	if (!a && !b)
		a = 1;
	memcpy(nguid, &a, 8);
	memcpy(nguid + 8, &b, 8);
	memcpy(eui64, &c, 8);
	eui64[0] = (uint8_t)((eui64[0] & ~0x01u) | 0x02u);
}

/**
 * emu_ns_identify - fill an Identify Namespace structure (NVM-CS 1.0 Figure 97).
 * @ns:            namespace
 * @subsys_serial: subsystem serial number, seeds NGUID/EUI64
 * @shared:        the namespace is attached to more than one controller
 * @out:           4096-byte structure, fully written
 */
void emu_ns_identify(const struct emu_ns *ns, const char *subsys_serial, bool shared,
		     struct nvme_id_ns *out)
{
	uint64_t nblocks = emu_ns_nblocks(ns);
	uint64_t bytes = nblocks << ns->lba_shift;

	memset(out, 0, sizeof(*out));
	out->nsze = nblocks; /* NSZE: total size in logical blocks */
	out->ncap = nblocks; /* NCAP: no over-provisioning, all of it can be allocated */
	out->nuse = emu_ns_nuse(ns);
	/* NSFEAT bit 0: thin provisioning (NUSE may be below NCAP), RAM only */
	if (ns->backing == NVMK_EMU_BACK_RAM)
		out->nsfeat = NVME_NSFEAT_THINP;
	out->nlbaf = 0; /* 0's based: one LBA format */
	out->flbas = 0; /* format 0, no metadata */
	out->lbaf[0].ms = 0;
	out->lbaf[0].lbads = ns->lba_shift;
	out->lbaf[0].rp = 0; /* best performance */
	/* DLFEAT: deallocated blocks read as zeroes (bits 2:0 = 001b) and Write
	 * Zeroes supports the Deallocate bit (bit 3). */
	out->dlfeat = NVME_DLFEAT_READ_ZEROES | NVME_DLFEAT_WZ_DEAC;
	/* NMIC bit 0: may be attached to two or more controllers */
	out->nmic = shared ? 1 : 0;
	/* RESCAP: all six reservation types and Ignore Existing Key; bit 0
	 * (Persist Through Power Loss) clear: not supported. */
	out->rescap = NVME_RESCAP_WE | NVME_RESCAP_EA | NVME_RESCAP_WERO | NVME_RESCAP_EARO |
		      NVME_RESCAP_WEAR | NVME_RESCAP_EAAR | NVME_RESCAP_IEKEY;
	out->noiob = 0; /* no optimal I/O boundary */
	/* NVMCAP: 128-bit byte count of the namespace, little endian */
	memcpy(out->nvmcap, &bytes, sizeof(bytes));
	emu_ns_ids(ns, subsys_serial, out->nguid, out->eui64);
}
