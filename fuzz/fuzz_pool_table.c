// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: arbitrary bytes as the memfd of a DMA pool inherited
 * across exec (nvmk_dma_pool_open), slot table, generation records and
 * data pages alike. A refused pool must be left byte for byte as it was. An
 * accepted one is then used as a successor would: every Allocated block is
 * reclaimed by its owner and tag and maps the bytes at its offset, every
 * Leaked one answers -ESTALE, every generation record reads back, the
 * stats add up, the reclaim phase ends without a leak, and a new block
 * lands in free space only.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dma/pool_table.h"
#include "nvmekeep/dma.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_POOL_MAX (1u << 20) /* larger inputs are skipped: the table is what matters */

static bool write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* The accepted pool, walked through the public API against the input bytes. */
static void use_pool(struct nvmk_dma_pool *pool, const uint8_t *data, size_t size)
{
	const struct pool_hdr *h = (const struct pool_hdr *)data;
	const struct pool_slot *slots = (const struct pool_slot *)(data + sizeof(*h));
	struct nvmk_dma_pool_stats st;
	uint64_t used = 0, gen;
	bool restored;
	struct nvmk_dma_mem m;

	for (uint32_t i = 0; i < h->slot_count; i++) {
		const struct pool_slot *s = &slots[i];

		switch (s->state) {
		case POOL_SLOT_ALLOCATED:
			if (nvmk_dma_reclaim(pool, s->owner, s->tag, &m) != 0 ||
			    m.fd_offset != s->offset || m.size != s->pages * NVMK_DMA_PAGE_SIZE ||
			    memcmp(m.vaddr, data + s->offset, m.size) != 0)
				__builtin_trap();
			used += s->pages;
			break;
		case POOL_SLOT_LEAKED:
			if (nvmk_dma_reclaim(pool, s->owner, s->tag, &m) != -ESTALE)
				__builtin_trap();
			used += s->pages;
			break;
		case POOL_SLOT_GENERATION:
			if (nvmk_dma_pool_gen_get(pool, s->owner, &gen, &restored) != 0 ||
			    gen != s->generation ||
			    restored != !!(s->gen_flags & POOL_GEN_RESTORED))
				__builtin_trap();
			break;
		default:
			break;
		}
	}
	nvmk_dma_pool_get_stats(pool, &st);
	if (st.used_pages != used || st.free_pages + st.used_pages != st.total_pages ||
	    st.pool_bytes != size || st.unclaimed_slots != 0)
		__builtin_trap();
	if (nvmk_dma_pool_finish_restore(pool) != 0)
		__builtin_trap();
	/* a new block never overlaps one the table holds */
	if (nvmk_dma_alloc(pool, NVMK_DMA_PAGE_SIZE, "fuzz-new", "block", &m) == 0) {
		for (uint32_t i = 0; i < h->slot_count; i++) {
			const struct pool_slot *s = &slots[i];

			if ((s->state == POOL_SLOT_ALLOCATED || s->state == POOL_SLOT_LEAKED) &&
			    m.fd_offset < s->offset + s->pages * NVMK_DMA_PAGE_SIZE &&
			    s->offset < m.fd_offset + m.size)
				__builtin_trap();
		}
		nvmk_dma_free(&m);
	}
	if (nvmk_dma_pool_gen_set(pool, "fuzz-new", 1, false) == 0 &&
	    (nvmk_dma_pool_gen_get(pool, "fuzz-new", &gen, &restored) != 0 || gen != 1 || restored))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvmk_dma_pool *pool = NULL;
	uint8_t *back;
	int fd;

	if (size > FUZZ_POOL_MAX)
		return 0;
	fd = memfd_create("fuzz-pool", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (!write_all(fd, data, size)) {
		close(fd);
		return 0;
	}
	if (nvmk_dma_pool_open(fd, &pool) != 0) {
		/* refused: not a byte written */
		back = malloc(size ? size : 1);
		if (back && pread(fd, back, size, 0) == (ssize_t)size && memcmp(back, data, size))
			__builtin_trap();
		free(back);
		close(fd);
		return 0;
	}
	use_pool(pool, data, size);
	nvmk_dma_pool_destroy(pool); /* closes fd */
	return 0;
}
