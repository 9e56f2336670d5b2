// SPDX-License-Identifier: MIT
/*
 * Regression driver for fuzz_pool_table.c without libFuzzer, run as a normal
 * test: a real inherited pool (blocks of two devices, a hole, a leaked
 * block, generation records), its truncations, one-bit flips of every table
 * byte that is in use (with the checksum as it was, and re-sealed so that
 * the structural checks see them), and the files named on the command line.
 * The real pool must be accepted. With --write-seed FILE it writes the real
 * pool as a corpus seed (fuzz/corpus/pool_table/).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dma/pool_table.h"
#include "nvmekeep/dma.h"
#include "nvmekeep/log.h"
#include "regress_util.h"

static void quiet(void *ctx, enum nvmk_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	(void)line;
}

/* The bytes of a pool as a successor inherits it. */
static uint8_t *real_pool(size_t *size)
{
	static const char *tags[] = {"admin.sq", "admin.cq", "io1.sq", "io1.cq", "user.buf"};
	struct nvmk_dma_pool *pool;
	struct nvmk_dma_mem m[5], n;
	struct stat sb;
	uint8_t *out;
	int fd;

	if (nvmk_dma_pool_create(12, 0, &pool))
		return NULL;
	for (int i = 0; i < 5; i++) {
		if (nvmk_dma_alloc(pool, (size_t)(i % 2 + 1) * 4096, "nvme0", tags[i], &m[i]))
			return NULL;
		memset(m[i].vaddr, 0x30 + i, m[i].size);
	}
	nvmk_dma_free(&m[2]); /* a hole */
	if (nvmk_dma_alloc(pool, 4096, "nvme1", "admin.sq", &n) ||
	    nvmk_dma_pool_gen_set(pool, "nvme0", 5, false) ||
	    nvmk_dma_pool_gen_set(pool, "nvme1", 2, true))
		return NULL;
	/* through an exec: nvme1's block is not reclaimed, so it is leaked */
	fd = dup(nvmk_dma_pool_fd(pool));
	nvmk_dma_pool_destroy(pool);
	if (fd < 0 || nvmk_dma_pool_open(dup(fd), &pool))
		return NULL;
	for (int i = 0; i < 5; i++)
		if (i != 2 && nvmk_dma_reclaim(pool, "nvme0", tags[i], &m[i]))
			return NULL;
	nvmk_dma_pool_finish_restore(pool);
	nvmk_dma_pool_destroy(pool);
	if (fstat(fd, &sb) || !(out = malloc((size_t)sb.st_size)) ||
	    pread(fd, out, (size_t)sb.st_size, 0) != sb.st_size)
		return NULL;
	close(fd);
	*size = (size_t)sb.st_size;
	return out;
}

int main(int argc, char **argv)
{
	size_t size, used, flips = 0;
	uint8_t *pool, *m;
	struct pool_hdr *h;
	int rc;

	nvmk_log_set_sink(quiet, NULL);
	pool = real_pool(&size);
	if (!pool) {
		fprintf(stderr, "cannot build a real pool\n");
		return 1;
	}
	if ((rc = regress_write_seed(argc, argv, pool, size)) >= 0) {
		free(pool);
		return rc;
	}
	h = (struct pool_hdr *)pool;
	/* the header and the slots up to the last one in use */
	used = sizeof(*h);
	for (uint32_t i = 0; i < h->slot_count; i++)
		if (((struct pool_slot *)(pool + sizeof(*h)))[i].state != POOL_SLOT_FREE)
			used = sizeof(*h) + (i + 1) * sizeof(struct pool_slot);
	LLVMFuzzerTestOneInput(pool, size);
	m = malloc(size);
	for (size_t cut = 0; cut < size; cut += cut < 2 * used ? 61 : 4096)
		LLVMFuzzerTestOneInput(pool, cut);
	for (size_t i = 0; i < used; i++)
		for (int reseal = 0; reseal < 2; reseal++) {
			struct pool_hdr *mh = (struct pool_hdr *)m;

			memcpy(m, pool, size);
			m[i] ^= (uint8_t)(1u << ((i + (size_t)reseal * 3) % 8));
			if (reseal && mh->slot_count == h->slot_count)
				mh->checksum = pool_table_checksum(
				    mh, (struct pool_slot *)(m + sizeof(*mh)), mh->slot_count);
			LLVMFuzzerTestOneInput(m, size);
			flips++;
		}
	if (regress_run_files(argc, argv))
		return 1;
	free(m);
	free(pool);
	printf("fuzz_pool_table regression: %zu-byte pool (%zu table bytes in use), %zu flips: "
	       "ok\n",
	       size, used, flips);
	return 0;
}
