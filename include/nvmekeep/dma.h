/* SPDX-License-Identifier: MIT */
/*
 * DMA memory: page-aligned, fd-backed blocks that a backing maps into a
 * device's address space.
 *
 * Two sources:
 *  - ephemeral: each block is its own memfd; gone when the process exits.
 *  - private pool: one memfd (hugetlb when available) mapped once; a slot
 *    table inside the pool records every block as Free, Allocated{owner, tag}
 *    or Leaked, so a successor process that inherits the pool fd can reclaim
 *    the blocks of a live device by (owner, tag) after exec.
 *
 * Every block is backed by a file descriptor so that it can be shared with a
 * vfio-user server, mapped by VFIO at a new virtual address after exec, and
 * resolved to physical addresses in no-IOMMU mode.
 *
 * Threading: the pool is internally locked; a block is owned by one user.
 */
#ifndef NVMEKEEP_DMA_H
#define NVMEKEEP_DMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NVMK_DMA_PAGE_SIZE 4096u
#define NVMK_DMA_PAGE_SHIFT 12

struct nvmk_dma_pool;

/* A block of DMA memory. */
struct nvmk_dma_mem {
	void *vaddr;                 /* page aligned */
	size_t size;                 /* multiple of NVMK_DMA_PAGE_SIZE */
	int fd;                      /* memfd holding the block */
	uint64_t fd_offset;          /* offset of the block inside @fd */
	struct nvmk_dma_pool *pool;  /* NULL for ephemeral memory */
	uint32_t slot;               /* pool slot index */
};

/**
 * nvmk_dma_alloc - allocate zeroed DMA memory.
 * @pool:  private pool, or NULL for ephemeral memory
 * @size:  bytes, rounded up to NVMK_DMA_PAGE_SIZE
 * @owner: device id the block belongs to (pool only; at most 63 bytes)
 * @tag:   what the block is for, unique per owner ("asq", "io3.cq"; pool only)
 * @out:   filled on success
 *
 * Return: 0, -ENOMEM (pool exhausted: the log names pool size and usage),
 *         -EEXIST (owner/tag already allocated), -EINVAL.
 */
int nvmk_dma_alloc(struct nvmk_dma_pool *pool, size_t size, const char *owner, const char *tag,
		   struct nvmk_dma_mem *out);
/** nvmk_dma_free - release a block (unmaps ephemeral memory; marks pool slot Free). */
void nvmk_dma_free(struct nvmk_dma_mem *mem);

/* Flags of nvmk_dma_alloc_ephemeral(). */
#define NVMK_DMA_POPULATE (1u << 0) /* pre-fault the pages (MAP_POPULATE) */

/**
 * nvmk_dma_alloc_ephemeral - allocate zeroed ephemeral DMA memory with options.
 * @size:  bytes, rounded up to NVMK_DMA_PAGE_SIZE
 * @flags: NVMK_DMA_POPULATE or 0
 * @out:   filled on success (own memfd in @out->fd, @out->fd_offset 0); free with
 *         nvmk_dma_free()
 *
 * nvmk_dma_alloc(NULL, ...) is this call with @flags 0.
 *
 * Return: 0, -EINVAL (size 0 or too large, unknown flag), or the error of
 *         memfd_create/ftruncate/mmap.
 */
int nvmk_dma_alloc_ephemeral(size_t size, unsigned int flags, struct nvmk_dma_mem *out);

/* ---- Private pool ---------------------------------------------------------------------- */

/* Flags of nvmk_dma_pool_create(). */
#define NVMK_DMA_POOL_HUGETLB_TRY (1u << 0) /* try 2 MiB huge pages, fall back to 4 KiB */

#define NVMK_DMA_OWNER_MAX 63 /* longest owner string, bytes */
#define NVMK_DMA_TAG_MAX   31 /* longest tag string, bytes */

/**
 * nvmk_dma_pool_create - create a private pool on a new memfd.
 * @pages: data pages wanted (NVMK_DMA_PAGE_SIZE each); the slot table takes
 *         extra pages in front, and on huge pages the memfd is rounded up to
 *         2 MiB, which adds data pages
 * @flags: NVMK_DMA_POOL_HUGETLB_TRY or 0
 * @out:   the pool
 *
 * The pool fd is close-on-exec; the servicing code clears FD_CLOEXEC on
 * nvmk_dma_pool_fd() right before it execs the successor. The slot table has
 * clamp(@pages / 2, 64, 4096) slots: an allocation takes at least one page,
 * so the table runs out before the pages only if blocks average under two.
 *
 * Return: 0, -EINVAL, or the error of memfd_create/ftruncate/mmap.
 */
int nvmk_dma_pool_create(size_t pages, unsigned int flags, struct nvmk_dma_pool **out);

/**
 * nvmk_dma_pool_open - attach to a pool inherited from a predecessor process.
 * @fd:  the pool memfd (after exec); on success the pool owns it and
 *       nvmk_dma_pool_destroy() closes it; on failure it is left open
 * @out: the pool
 *
 * The pool is mapped at a new address and its slot table validated (magic,
 * format version, size equal to the fd's size, checksum, every slot inside
 * the data area, no overlaps, no two live slots with one owner/tag). A bad
 * table is refused with a log line saying why; nothing in the pool is written.
 * Until nvmk_dma_pool_finish_restore(), the predecessor's blocks wait to be
 * reclaimed with nvmk_dma_reclaim(); new allocations never overlap them.
 *
 * Return: 0, -EBADMSG (corrupted table), -EPROTONOSUPPORT (newer format),
 *         -EBADF, -ENOMEM, or the error of fstat/mmap.
 */
int nvmk_dma_pool_open(int fd, struct nvmk_dma_pool **out);

/** nvmk_dma_pool_fd - the pool's memfd (to pass across exec or to a vfio-user server). */
int nvmk_dma_pool_fd(const struct nvmk_dma_pool *pool);

/**
 * nvmk_dma_pool_destroy - unmap the pool and close its fd.
 *
 * The slot table is left as it is: blocks still Allocated stay recorded for
 * any other holder of the fd. Blocks of this pool must not be used afterwards.
 */
void nvmk_dma_pool_destroy(struct nvmk_dma_pool *pool);

/* Usage of a pool, in NVMK_DMA_PAGE_SIZE pages. */
struct nvmk_dma_pool_stats {
	uint64_t pool_bytes;	     /* size of the memfd, slot table included */
	uint64_t total_pages;	     /* data pages */
	uint64_t used_pages;	     /* Allocated + Leaked */
	uint64_t free_pages;	     /* total - used */
	uint64_t leaked_pages;	     /* Leaked only */
	uint64_t largest_free_pages; /* largest contiguous free range */
	uint32_t total_slots;
	uint32_t used_slots; /* Allocated + Leaked */
	uint32_t leaked_slots;
	uint32_t unclaimed_slots; /* Allocated by a predecessor, not reclaimed yet */
	bool hugetlb;		  /* backed by 2 MiB huge pages */
};

/** nvmk_dma_pool_get_stats - fill @st with the pool's current usage. */
void nvmk_dma_pool_get_stats(struct nvmk_dma_pool *pool, struct nvmk_dma_pool_stats *st);

/**
 * nvmk_dma_reclaim - take back a predecessor's block after exec.
 * @pool:  pool opened with nvmk_dma_pool_open()
 * @owner: owner given to nvmk_dma_alloc() by the predecessor
 * @tag:   tag given to nvmk_dma_alloc() by the predecessor
 * @out:   the block, at the pool's new address, contents untouched
 *
 * Marks the block reclaimed: it is this process's again and is freed with
 * nvmk_dma_free().
 *
 * Return: 0, -ENOENT (no such block), -ESTALE (the block was declared
 *         Leaked by an earlier restore), -EBUSY (already reclaimed, or
 *         allocated by this process), -EINVAL.
 */
int nvmk_dma_reclaim(struct nvmk_dma_pool *pool, const char *owner, const char *tag,
		     struct nvmk_dma_mem *out);

/**
 * nvmk_dma_reclaim_check - whether nvmk_dma_reclaim(@pool, @owner, @tag) would
 * succeed, without claiming anything (a restore checks every block first).
 * @size: optional, receives the block's size in bytes
 * Return: 0, or the error nvmk_dma_reclaim would return.
 */
int nvmk_dma_reclaim_check(struct nvmk_dma_pool *pool, const char *owner, const char *tag,
			   uint64_t *size);

/**
 * nvmk_dma_unclaim - undo nvmk_dma_reclaim: the block waits to be reclaimed
 * again (by a later restore on the same pool handle), its contents and the
 * device's use of it untouched. Only for a block taken with nvmk_dma_reclaim
 * (a block allocated by this process is freed, not unclaimed). @mem is
 * cleared.
 * Return: 0, or -EINVAL (not a reclaimed block; logged, nothing changed).
 */
int nvmk_dma_unclaim(struct nvmk_dma_mem *mem);

/**
 * nvmk_dma_tag - the tag a pool block is recorded under (what a successor
 * passes to nvmk_dma_reclaim), into @tag of @len bytes (NVMK_DMA_TAG_MAX + 1
 * is always enough).
 * Return: 0, -EINVAL (ephemeral memory, or not a block this process holds),
 *         -ENOSPC (@len too small).
 */
int nvmk_dma_tag(const struct nvmk_dma_mem *mem, char *tag, size_t len);

/**
 * nvmk_dma_pool_finish_restore - end the reclaim phase after an open.
 *
 * Every block the predecessor allocated and this process has not reclaimed is
 * marked Leaked (its memory stays reserved: the device may still write to it)
 * and logged with its owner and tag.
 *
 * Return: 0 if every block was reclaimed, -EUCLEAN if any was leaked.
 */
int nvmk_dma_pool_finish_restore(struct nvmk_dma_pool *pool);

/**
 * nvmk_dma_pool_release_unclaimed - free the blocks of @owner a predecessor
 * allocated that this process has not reclaimed, without marking them
 * Leaked first. Only once the device of @owner can no longer reach them (it
 * was reset, or every command that could use them completed and their maps
 * were removed): the adoption of a crashed driver's controller
 * (nvmk_ctrl_adopt) gives back the previous driver's data buffers so.
 * Return: the number of blocks freed, or -EINVAL.
 */
int nvmk_dma_pool_release_unclaimed(struct nvmk_dma_pool *pool, const char *owner);

/* One block as reported by nvmk_dma_pool_leaked(). */
struct nvmk_dma_slot_info {
	char owner[NVMK_DMA_OWNER_MAX + 1];
	char tag[NVMK_DMA_TAG_MAX + 1];
	uint64_t fd_offset;
	uint64_t pages;
	uint32_t slot;
};

/**
 * nvmk_dma_pool_leaked - list the pool's Leaked blocks.
 * @out: array of @max entries filled in slot order (may be NULL if @max is 0)
 *
 * Return: the number of Leaked blocks (may exceed @max).
 */
size_t nvmk_dma_pool_leaked(struct nvmk_dma_pool *pool, struct nvmk_dma_slot_info *out,
			    size_t max);

/**
 * nvmk_dma_pool_release_leaked - return a Leaked block's pages to the pool.
 *
 * Only once the device that owned it can no longer write to it (it was reset
 * or removed).
 *
 * Return: 0, -ENOENT (no Leaked block with that owner and tag), -EINVAL.
 */
int nvmk_dma_pool_release_leaked(struct nvmk_dma_pool *pool, const char *owner, const char *tag);

/* ---- Saved-state generations (servicing) --------------------------------------------- */
/*
 * The slot table keeps, per owner (device), the generation of its latest
 * saved controller state and whether that state was restored already. The
 * driver's save writes a new generation (and puts it in the state); its
 * restore accepts only a state of the recorded generation that was not
 * restored yet, and marks it restored. The record sits in the table because
 * the table survives exec together with the queues whose ring contents a
 * stale state would misread. A record takes one slot and no pages; it is
 * not counted in the stats' used_slots.
 */

/**
 * nvmk_dma_pool_gen_get - read @owner's generation record.
 * Return: 0 (*@gen >= 1, *@restored filled), -ENOENT (no record: no state of
 *         this device was saved by a binary that keeps records), -EINVAL.
 */
int nvmk_dma_pool_gen_get(struct nvmk_dma_pool *pool, const char *owner, uint64_t *gen,
			  bool *restored);

/**
 * nvmk_dma_pool_gen_set - write @owner's generation record (creating it).
 * Generations only go up: @gen below the recorded one is refused.
 * Return: 0, -ESTALE (@gen older than the record), -ENOMEM (no free slot),
 *         -EINVAL (@gen 0, bad owner).
 */
int nvmk_dma_pool_gen_set(struct nvmk_dma_pool *pool, const char *owner, uint64_t gen,
			  bool restored);

#endif /* NVMEKEEP_DMA_H */
