/* SPDX-License-Identifier: MIT */
/*
 * Address range registry (internal to the backing layer): a sorted array of
 * non-overlapping ranges under a rwlock, looked up by binary search.
 *
 * Used twice: the process-wide host-address registry behind
 * nvmk_backing_iova() (key = virtual address), and the local backing's
 * device-address registry that its emulator translates IOVAs with
 * (key = IOVA).
 *
 * Why a lock is fine here: additions and removals are control-path events
 * (a DMA block is mapped or unmapped), and lookups happen on the control
 * path, in the sync wrappers' "is this buffer DMA memory?" check and in the
 * emulator's translation; the driver's async fast path never looks anything
 * up, it is given IOVAs through struct nvmk_dma_buf. Readers share the lock.
 */
#ifndef NVMK_BK_REGISTRY_H
#define NVMK_BK_REGISTRY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct bk_range {
	uint64_t start;		     /* key of the first byte */
	uint64_t len;		     /* bytes */
	const void *owner;	     /* who registered it (a backing) */
	uint64_t target;	     /* translation of @start when @page_target is NULL */
	const uint64_t *page_target; /* per-4KiB-page translation, or NULL */
};

struct bk_registry {
	pthread_rwlock_t lock;
	struct bk_range *v; /* sorted by start */
	size_t n;
	size_t cap;
};

#define BK_REGISTRY_INIT                                                                           \
	{                                                                                          \
		PTHREAD_RWLOCK_INITIALIZER, NULL, 0, 0                                             \
	}

/* Insert @r; -EEXIST when it overlaps a registered range, -ENOMEM, -EINVAL. */
int bk_registry_add(struct bk_registry *reg, const struct bk_range *r);
/* Remove the range starting at @start owned by @owner; -ENOENT if none. */
int bk_registry_remove(struct bk_registry *reg, uint64_t start, const void *owner);
/* Servicing: the range starting at @start owned by @owner translates to
 * @target from now on (one step under the write lock). -ENOENT if there is
 * no such range, -EINVAL if its length is not @len. */
int bk_registry_retarget(struct bk_registry *reg, uint64_t start, uint64_t len, const void *owner,
			 uint64_t target);
/* Copy the range containing @addr into @out; -EFAULT if none. */
int bk_registry_find(struct bk_registry *reg, uint64_t addr, struct bk_range *out);
/* Remove every range of @owner; returns how many there were. */
size_t bk_registry_remove_owner(struct bk_registry *reg, const void *owner);
/* Free the array (the registry must not be used afterwards). */
void bk_registry_fini(struct bk_registry *reg);

#endif /* NVMK_BK_REGISTRY_H */
