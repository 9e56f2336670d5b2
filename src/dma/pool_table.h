/* SPDX-License-Identifier: MIT */
/*
 * On-memory format of the private DMA pool's slot table, and its checks.
 *
 * The table lives in the first page(s) of the pool memfd itself, so that a
 * successor process that inherits the fd after exec finds every allocation
 * of its predecessor without any other saved state:
 *
 *   offset 0                 struct pool_hdr (64 bytes)
 *   offset 64                struct pool_slot[slot_count] (128 bytes each)
 *   offset data_offset       data pages handed out by nvmk_dma_alloc(); page aligned
 *   offset pool_size         end of the memfd
 *
 * A slot is Free (unused entry, all zero), Allocated{offset, pages, owner,
 * tag} or Leaked (was Allocated, was not reclaimed by the successor; its
 * memory stays reserved because the device may still write to it), or
 * (format 2) the Generation record of an owner: which saved controller
 * state of that device is the latest and whether it was restored already.
 * The record lives here because the table survives exec together with the
 * queues it protects; it holds no pages (offset 0, pages 0). Free
 * *ranges* are not stored: they are the gaps between Allocated and Leaked
 * slots, so freeing a slot coalesces its range with its neighbours by
 * construction and the table cannot disagree with itself about free space.
 *
 * Fields are in host byte order: the pool never leaves the machine (it is
 * handed from a process to its exec'd successor).
 */
#ifndef NVMEKEEP_DMA_POOL_TABLE_H
#define NVMEKEEP_DMA_POOL_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define POOL_MAGIC	    "NVMKPOOL" /* 8 bytes, no terminator stored */
/* Format history: 1 first format; 2 adds Generation slots (a table of format
 * 1 is still opened, and becomes format 2 when its first record is written;
 * a binary that knows only format 1 refuses format 2: downgrade refused). */
#define POOL_FORMAT_VERSION_GEN 2u
#define POOL_FORMAT_VERSION	2u	  /* the newest this binary reads and writes */
#define POOL_F_HUGETLB	    (1u << 0) /* the memfd is on hugetlbfs (2 MiB pages) */
#define POOL_HUGE_PAGE_SIZE (2u << 20)

enum pool_slot_state {
	POOL_SLOT_FREE = 0,
	POOL_SLOT_ALLOCATED = 1,
	POOL_SLOT_LEAKED = 2,
	POOL_SLOT_GENERATION = 3, /* format 2 */
};

#define POOL_GEN_TAG	  "state.gen" /* tag of every Generation slot */
#define POOL_GEN_RESTORED (1u << 0)   /* gen_flags: the state was restored */

#define POOL_OWNER_LEN 64 /* including the terminating NUL */
#define POOL_TAG_LEN   32 /* including the terminating NUL */

struct pool_hdr {
	char magic[8];
	uint32_t version;     /* POOL_FORMAT_VERSION */
	uint32_t hdr_size;    /* sizeof(struct pool_hdr): where the slot array starts */
	uint64_t pool_size;   /* bytes; must equal the size of the pool fd */
	uint64_t data_offset; /* first data byte: end of the table rounded up to a page */
	uint32_t page_size;   /* NVMK_DMA_PAGE_SIZE */
	uint32_t slot_size;   /* sizeof(struct pool_slot) */
	uint32_t slot_count;
	uint32_t flags;	   /* POOL_F_* */
	uint32_t checksum; /* CRC32C of this header (with checksum 0) and the slot array */
	uint32_t reserved0;
	uint64_t reserved1;
};

struct pool_slot {
	uint64_t offset; /* bytes from the start of the pool fd; page aligned */
	uint64_t pages;	 /* length in NVMK_DMA_PAGE_SIZE pages */
	uint32_t state;	 /* enum pool_slot_state */
	union {
		uint32_t reserved0; /* Allocated, Leaked: 0 */
		uint32_t gen_flags; /* Generation: POOL_GEN_* */
	};
	char owner[POOL_OWNER_LEN]; /* NUL terminated */
	char tag[POOL_TAG_LEN];	    /* NUL terminated */
	union {
		uint64_t reserved1;  /* Allocated, Leaked: 0 */
		uint64_t generation; /* Generation: the latest saved state's, >= 1 */
	};
};

_Static_assert(sizeof(struct pool_hdr) == 64, "pool header layout is part of the format");
_Static_assert(sizeof(struct pool_slot) == 128, "pool slot layout is part of the format");
_Static_assert(offsetof(struct pool_hdr, checksum) == 48, "pool header layout");
_Static_assert(offsetof(struct pool_slot, owner) == 24, "pool slot layout");
_Static_assert(offsetof(struct pool_slot, tag) == 88, "pool slot layout");

/* Checksum of a table as stored in @hdr->checksum (the field itself counts as zero). */
uint32_t pool_table_checksum(const struct pool_hdr *hdr, const struct pool_slot *slots,
			     uint32_t slot_count);

/* Bytes from the start of the pool to the end of a table of @slot_count slots, page aligned. */
uint64_t pool_table_bytes(uint32_t slot_count);

/*
 * pool_table_validate - check a slot table read from an inherited pool.
 * @base:      the whole pool, mapped; only read here
 * @fd_size:   size of the pool fd in bytes (mapped length of @base)
 * @hugetlb:   whether the fd is on hugetlbfs
 * @hdr_out:   out: the header that was checked (a private copy)
 * @order:     out: indices of Allocated/Leaked slots sorted by offset, or
 *             NULL to check the header only (to learn the slot count)
 * @order_cap: entries @order can hold; a header with more slots is refused
 * @n_order:   out: number of entries written to @order
 * @why:       out: reason of a refusal, for the log
 *
 * The slot array is copied once and the copy is checksummed and checked, so
 * the verdict does not depend on bytes changing while we read.
 *
 * Return: 0; -EBADMSG (corrupted: bad magic, size, checksum, overlapping or
 *         out-of-range slots, bad strings or states); -EPROTONOSUPPORT (a
 *         format version newer than this binary's); -ENOMEM.
 */
int pool_table_validate(const uint8_t *base, uint64_t fd_size, int hugetlb,
			struct pool_hdr *hdr_out, uint32_t *order, uint32_t order_cap,
			uint32_t *n_order, char *why, size_t why_len);

#endif /* NVMEKEEP_DMA_POOL_TABLE_H */
