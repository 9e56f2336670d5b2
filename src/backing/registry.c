// SPDX-License-Identifier: MIT
/* Sorted range registry; see registry.h for why a rwlock is enough. */
#include "backing/registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Index of the first range whose start is > @addr. Caller holds the lock. */
static size_t reg_upper(const struct bk_registry *reg, uint64_t addr)
{
	size_t lo = 0, hi = reg->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (reg->v[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int bk_registry_add(struct bk_registry *reg, const struct bk_range *r)
{
	size_t i;
	int rc = 0;

	if (r->len == 0 || r->start + r->len < r->start)
		return -EINVAL;
	pthread_rwlock_wrlock(&reg->lock);
	i = reg_upper(reg, r->start);
	if ((i > 0 && reg->v[i - 1].start + reg->v[i - 1].len > r->start) ||
	    (i < reg->n && r->start + r->len > reg->v[i].start)) {
		rc = -EEXIST;
		goto out;
	}
	if (reg->n == reg->cap) {
		size_t cap = reg->cap ? reg->cap * 2 : 16;
		struct bk_range *v = realloc(reg->v, cap * sizeof(*v));

		if (!v) {
			rc = -ENOMEM;
			goto out;
		}
		reg->v = v;
		reg->cap = cap;
	}
	memmove(&reg->v[i + 1], &reg->v[i], (reg->n - i) * sizeof(*reg->v));
	reg->v[i] = *r;
	reg->n++;
out:
	pthread_rwlock_unlock(&reg->lock);
	return rc;
}

int bk_registry_remove(struct bk_registry *reg, uint64_t start, const void *owner)
{
	size_t i;
	int rc = -ENOENT;

	pthread_rwlock_wrlock(&reg->lock);
	i = reg_upper(reg, start);
	if (i > 0 && reg->v[i - 1].start == start && reg->v[i - 1].owner == owner) {
		memmove(&reg->v[i - 1], &reg->v[i], (reg->n - i) * sizeof(*reg->v));
		reg->n--;
		rc = 0;
	}
	pthread_rwlock_unlock(&reg->lock);
	return rc;
}

int bk_registry_retarget(struct bk_registry *reg, uint64_t start, uint64_t len, const void *owner,
			 uint64_t target)
{
	size_t i;
	int rc = -ENOENT;

	pthread_rwlock_wrlock(&reg->lock);
	i = reg_upper(reg, start);
	if (i > 0 && reg->v[i - 1].start == start && reg->v[i - 1].owner == owner) {
		if (reg->v[i - 1].len == len && !reg->v[i - 1].page_target) {
			reg->v[i - 1].target = target;
			rc = 0;
		} else {
			rc = -EINVAL;
		}
	}
	pthread_rwlock_unlock(&reg->lock);
	return rc;
}

size_t bk_registry_remove_owner(struct bk_registry *reg, const void *owner)
{
	size_t j = 0, removed;

	pthread_rwlock_wrlock(&reg->lock);
	for (size_t i = 0; i < reg->n; i++)
		if (reg->v[i].owner != owner)
			reg->v[j++] = reg->v[i];
	removed = reg->n - j;
	reg->n = j;
	pthread_rwlock_unlock(&reg->lock);
	return removed;
}

int bk_registry_find(struct bk_registry *reg, uint64_t addr, struct bk_range *out)
{
	size_t i;
	int rc = -EFAULT;

	pthread_rwlock_rdlock(&reg->lock);
	i = reg_upper(reg, addr);
	if (i > 0 && addr - reg->v[i - 1].start < reg->v[i - 1].len) {
		*out = reg->v[i - 1];
		rc = 0;
	}
	pthread_rwlock_unlock(&reg->lock);
	return rc;
}

void bk_registry_fini(struct bk_registry *reg)
{
	free(reg->v);
	reg->v = NULL;
	reg->n = reg->cap = 0;
	pthread_rwlock_destroy(&reg->lock);
}
