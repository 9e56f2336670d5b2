/* SPDX-License-Identifier: MIT */
/*
 * The private pool's slot table format: checksum and validation of a table
 * inherited from another process. See pool_table.h for the layout.
 *
 * An inherited table is not trusted: a predecessor may have crashed halfway
 * through an update, or memory may have been scribbled on. The validation
 * reads the table once into a private copy and checks the copy, and never
 * writes to the pool.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmekeep/dma.h"
#include "pool_table.h"
#include "nvmekeep/crc32c.h"

/* A slot count beyond this is a corrupted header, not a real table (64 MiB of slots). */
#define POOL_MAX_SLOTS (1u << 19)

uint32_t pool_table_checksum(const struct pool_hdr *hdr, const struct pool_slot *slots,
			     uint32_t slot_count)
{
	struct pool_hdr h = *hdr;
	uint32_t crc;

	h.checksum = 0;
	crc = nvmk_crc32c(0, &h, sizeof(h));
	return nvmk_crc32c(crc, slots, (size_t)slot_count * sizeof(*slots));
}

uint64_t pool_table_bytes(uint32_t slot_count)
{
	uint64_t end = sizeof(struct pool_hdr) + (uint64_t)slot_count * sizeof(struct pool_slot);

	return (end + NVMK_DMA_PAGE_SIZE - 1) & ~(uint64_t)(NVMK_DMA_PAGE_SIZE - 1);
}

/* true if @s holds a NUL terminated, non-empty string within @len bytes */
static int string_ok(const char *s, size_t len)
{
	return s[0] != '\0' && memchr(s, '\0', len) != NULL;
}

struct occupied {
	uint64_t start, end; /* bytes, [start, end) */
	uint32_t idx;
	const struct pool_slot *slot;
};

static int by_offset(const void *a, const void *b)
{
	const struct occupied *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int by_owner_tag(const void *a, const void *b)
{
	const struct occupied *x = a, *y = b;
	int c = strcmp(x->slot->owner, y->slot->owner);

	return c ? c : strcmp(x->slot->tag, y->slot->tag);
}

static int check_header(const struct pool_hdr *h, uint64_t fd_size, int hugetlb, char *why,
			size_t why_len)
{
	if (memcmp(h->magic, POOL_MAGIC, sizeof(h->magic)) != 0) {
		snprintf(why, why_len, "bad magic (not an nvmekeep DMA pool)");
		return -EBADMSG;
	}
	if (h->version == 0 || h->version > POOL_FORMAT_VERSION) {
		snprintf(why, why_len, "slot table format version %u, this binary knows version %u",
			 h->version, POOL_FORMAT_VERSION);
		return h->version > POOL_FORMAT_VERSION ? -EPROTONOSUPPORT : -EBADMSG;
	}
	if (h->hdr_size != sizeof(struct pool_hdr) || h->slot_size != sizeof(struct pool_slot) ||
	    h->page_size != NVMK_DMA_PAGE_SIZE) {
		snprintf(why, why_len,
			 "header size %u, slot size %u, page size %u (want %zu, %zu, %u)",
			 h->hdr_size, h->slot_size, h->page_size, sizeof(struct pool_hdr),
			 sizeof(struct pool_slot), NVMK_DMA_PAGE_SIZE);
		return -EBADMSG;
	}
	if (h->pool_size != fd_size) {
		snprintf(why, why_len, "header says %llu bytes, the pool fd has %llu",
			 (unsigned long long)h->pool_size, (unsigned long long)fd_size);
		return -EBADMSG;
	}
	if (h->pool_size % NVMK_DMA_PAGE_SIZE) {
		snprintf(why, why_len, "pool size %llu is not a multiple of the page size",
			 (unsigned long long)h->pool_size);
		return -EBADMSG;
	}
	if (h->slot_count == 0 || h->slot_count > POOL_MAX_SLOTS ||
	    h->data_offset != pool_table_bytes(h->slot_count) || h->data_offset >= h->pool_size) {
		snprintf(why, why_len, "%u slots with data at %llu do not fit a pool of %llu bytes",
			 h->slot_count, (unsigned long long)h->data_offset,
			 (unsigned long long)h->pool_size);
		return -EBADMSG;
	}
	if (h->flags & ~POOL_F_HUGETLB || h->reserved0 || h->reserved1) {
		snprintf(why, why_len, "unknown flags 0x%x or reserved fields set", h->flags);
		return -EBADMSG;
	}
	if (!!(h->flags & POOL_F_HUGETLB) != !!hugetlb ||
	    (hugetlb && h->pool_size % POOL_HUGE_PAGE_SIZE)) {
		snprintf(why, why_len, "header says %s pages, the fd is %s",
			 (h->flags & POOL_F_HUGETLB) ? "huge" : "normal",
			 hugetlb ? "on hugetlbfs" : "not on hugetlbfs");
		return -EBADMSG;
	}
	return 0;
}

/* A Generation record: no pages, the fixed tag, a known flag, a generation. */
static int check_gen_slot(const struct pool_hdr *h, const struct pool_slot *s, uint32_t i,
			  char *why, size_t why_len)
{
	if (h->version < POOL_FORMAT_VERSION_GEN) {
		snprintf(why, why_len, "slot %u is a generation record in a format %u table", i,
			 h->version);
		return -EBADMSG;
	}
	if (!string_ok(s->owner, sizeof(s->owner)) || strcmp(s->tag, POOL_GEN_TAG) != 0 ||
	    memchr(s->tag, '\0', sizeof(s->tag)) == NULL) {
		snprintf(why, why_len, "generation record in slot %u has a bad owner or tag", i);
		return -EBADMSG;
	}
	if (s->offset || s->pages || (s->gen_flags & ~POOL_GEN_RESTORED) || s->generation == 0) {
		snprintf(why, why_len,
			 "generation record of %s in slot %u: offset %llu, %llu pages, flags "
			 "0x%x, generation %llu (want 0, 0, at most 0x%x, at least 1)",
			 s->owner, i, (unsigned long long)s->offset, (unsigned long long)s->pages,
			 s->gen_flags, (unsigned long long)s->generation, POOL_GEN_RESTORED);
		return -EBADMSG;
	}
	return 0;
}

static int check_slot(const struct pool_hdr *h, const struct pool_slot *s, uint32_t i, char *why,
		      size_t why_len)
{
	static const struct pool_slot zero;

	switch (s->state) {
	case POOL_SLOT_FREE:
		if (memcmp(s, &zero, sizeof(zero)) != 0) {
			snprintf(why, why_len, "free slot %u is not empty", i);
			return -EBADMSG;
		}
		return 0;
	case POOL_SLOT_GENERATION:
		return check_gen_slot(h, s, i, why, why_len);
	case POOL_SLOT_ALLOCATED:
	case POOL_SLOT_LEAKED:
		break;
	default:
		snprintf(why, why_len, "slot %u has unknown state %u", i, s->state);
		return -EBADMSG;
	}
	if (!string_ok(s->owner, sizeof(s->owner)) || !string_ok(s->tag, sizeof(s->tag)) ||
	    s->reserved0 || s->reserved1) {
		snprintf(why, why_len, "slot %u has a bad owner or tag string or reserved bits", i);
		return -EBADMSG;
	}
	/* Inside the data area: [data_offset, pool_size), written without overflow. */
	if (s->offset % NVMK_DMA_PAGE_SIZE || s->offset < h->data_offset ||
	    s->offset >= h->pool_size || s->pages == 0 ||
	    s->pages > (h->pool_size - s->offset) / NVMK_DMA_PAGE_SIZE) {
		snprintf(why, why_len,
			 "slot %u (%s/%s) at %llu + %llu pages is outside the data area", i,
			 s->owner, s->tag, (unsigned long long)s->offset,
			 (unsigned long long)s->pages);
		return -EBADMSG;
	}
	return 0;
}

int pool_table_validate(const uint8_t *base, uint64_t fd_size, int hugetlb,
			struct pool_hdr *hdr_out, uint32_t *order, uint32_t order_cap,
			uint32_t *n_order, char *why, size_t why_len)
{
	struct pool_slot *slots = NULL;
	struct occupied *occ = NULL, *gens = NULL;
	struct pool_hdr h;
	uint32_t n = 0, ng = 0;
	int err;

	if (n_order)
		*n_order = 0;
	if (fd_size < NVMK_DMA_PAGE_SIZE) {
		snprintf(why, why_len, "pool fd of %llu bytes is smaller than one page",
			 (unsigned long long)fd_size);
		return -EBADMSG;
	}
	memcpy(&h, base, sizeof(h));
	err = check_header(&h, fd_size, hugetlb, why, why_len);
	if (err)
		return err;
	if (hdr_out)
		*hdr_out = h;
	if (!order)
		return 0;
	if (h.slot_count > order_cap) {
		snprintf(why, why_len, "slot count changed from %u to %u while reading", order_cap,
			 h.slot_count);
		return -EBADMSG;
	}

	/* One private copy: checksum and checks see the same bytes. */
	slots = malloc((size_t)h.slot_count * sizeof(*slots));
	occ = malloc((size_t)h.slot_count * sizeof(*occ));
	gens = malloc((size_t)h.slot_count * sizeof(*gens));
	if (!slots || !occ || !gens) {
		snprintf(why, why_len, "out of memory for a copy of %u slots", h.slot_count);
		err = -ENOMEM;
		goto out;
	}
	memcpy(slots, base + sizeof(h), (size_t)h.slot_count * sizeof(*slots));
	if (pool_table_checksum(&h, slots, h.slot_count) != h.checksum) {
		snprintf(why, why_len,
			 "slot table checksum mismatch (stored 0x%08x, computed 0x%08x)",
			 h.checksum, pool_table_checksum(&h, slots, h.slot_count));
		err = -EBADMSG;
		goto out;
	}
	for (uint32_t i = 0; i < h.slot_count; i++) {
		err = check_slot(&h, &slots[i], i, why, why_len);
		if (err)
			goto out;
		if (slots[i].state == POOL_SLOT_FREE)
			continue;
		if (slots[i].state == POOL_SLOT_GENERATION) {
			gens[ng].idx = i;
			gens[ng++].slot = &slots[i];
			continue;
		}
		occ[n].start = slots[i].offset;
		occ[n].end = slots[i].offset + slots[i].pages * NVMK_DMA_PAGE_SIZE;
		occ[n].idx = i;
		occ[n].slot = &slots[i];
		n++;
	}

	/* Two live allocations with one (owner, tag) would make reclaim ambiguous. */
	qsort(occ, n, sizeof(*occ), by_owner_tag);
	for (uint32_t i = 0, prev = UINT32_MAX; i < n; i++) {
		if (occ[i].slot->state != POOL_SLOT_ALLOCATED)
			continue;
		if (prev != UINT32_MAX && by_owner_tag(&occ[prev], &occ[i]) == 0) {
			snprintf(why, why_len, "slots %u and %u are both allocated to %s/%s",
				 occ[prev].idx, occ[i].idx, occ[i].slot->owner, occ[i].slot->tag);
			err = -EBADMSG;
			goto out;
		}
		prev = i;
	}

	/* One generation record per owner, or which state is the latest is ambiguous. */
	qsort(gens, ng, sizeof(*gens), by_owner_tag);
	for (uint32_t i = 0; i + 1 < ng; i++) {
		if (strcmp(gens[i].slot->owner, gens[i + 1].slot->owner) == 0) {
			snprintf(why, why_len,
				 "slots %u and %u are both the generation record of %s",
				 gens[i].idx, gens[i + 1].idx, gens[i].slot->owner);
			err = -EBADMSG;
			goto out;
		}
	}

	qsort(occ, n, sizeof(*occ), by_offset);
	for (uint32_t i = 0; i + 1 < n; i++) {
		if (occ[i].end > occ[i + 1].start) {
			snprintf(why, why_len, "slots %u (%s/%s) and %u (%s/%s) overlap",
				 occ[i].idx, occ[i].slot->owner, occ[i].slot->tag, occ[i + 1].idx,
				 occ[i + 1].slot->owner, occ[i + 1].slot->tag);
			err = -EBADMSG;
			goto out;
		}
	}
	for (uint32_t i = 0; i < n; i++)
		order[i] = occ[i].idx;
	*n_order = n;
	err = 0;
out:
	free(slots);
	free(occ);
	free(gens);
	return err;
}
