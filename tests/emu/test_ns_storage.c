// SPDX-License-Identifier: MIT
/*
 * Namespace storage (src/emu/emu_ns.c): RAM (sparse), FILE and NULL backings
 * checked against a plain in-memory model, identify fields, bad configs, and
 * concurrent writers (suite 'threaded').
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emu/emu_ns.h"
#include "nvmekeep/log.h"

#define KIB   1024ull
#define MIB   (1024ull * KIB)
#define GIB   (1024ull * MIB)
#define CHUNK (64 * KIB) /* the RAM backing's allocation unit */

/* ---- helpers ---- */

struct log_capture {
	int lines;
	char last[512];
};

static void capture(void *ctx, enum nvmk_log_level level, const char *line)
{
	struct log_capture *c = ctx;

	(void)level;
	c->lines++;
	snprintf(c->last, sizeof(c->last), "%s", line);
}

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64*: deterministic, so a failure reproduces */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void fill_pattern(uint8_t *buf, uint64_t len, uint64_t off, uint8_t seed)
{
	for (uint64_t i = 0; i < len; i++)
		buf[i] = (uint8_t)((off + i) * 131u + seed + ((off + i) >> 9));
}

static bool all_zero(const uint8_t *buf, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		if (buf[i])
			return false;
	return true;
}

static struct emu_ns *make_ns(enum nvmk_emu_backing backing, uint8_t lba_shift, uint64_t nblocks,
			      const char *path)
{
	struct nvmk_emu_ns_config cfg = {
	    .nsid = 1,
	    .nblocks = nblocks,
	    .lba_shift = lba_shift,
	    .backing = backing,
	    .path = path,
	};
	struct emu_ns *ns = NULL;

	assert_int_equal(emu_ns_create(&cfg, "emu-test", &ns), 0);
	assert_non_null(ns);
	return ns;
}

static char tmp_path[64];

static const char *make_tmp_file(void)
{
	int fd;

	snprintf(tmp_path, sizeof(tmp_path), "/tmp/nvmk-ns-XXXXXX");
	fd = mkstemp(tmp_path);
	assert_true(fd >= 0);
	close(fd);
	return tmp_path;
}

/* Resident set size in bytes, from /proc/self/statm. */
static uint64_t rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%lu %lu", &size, &resident), 2);
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* ---- shared checks, run on RAM and FILE ---- */

/* Writes across chunk boundaries, at unaligned offsets and lengths. */
static void check_patterns(struct emu_ns *ns)
{
	const uint64_t off = CHUNK - 1000, len = 3 * CHUNK + 777;
	uint8_t *w = malloc(len + 8192), *r = malloc(len + 8192);

	assert_non_null(w);
	assert_non_null(r);
	fill_pattern(w, len, off, 7);
	assert_int_equal(emu_ns_write(ns, off, w, len), 0);
	memset(r, 0xaa, len);
	assert_int_equal(emu_ns_read(ns, off, r, len), 0);
	assert_memory_equal(r, w, len);

	/* the bytes around the write still read as zeroes */
	assert_int_equal(emu_ns_read(ns, off - 4096, r, 4096), 0);
	assert_true(all_zero(r, 4096));
	assert_int_equal(emu_ns_read(ns, off + len, r, 8192), 0);
	assert_true(all_zero(r, 8192));

	/* a read that straddles written and unwritten bytes */
	assert_int_equal(emu_ns_read(ns, off - 10, r, 20), 0);
	assert_true(all_zero(r, 10));
	assert_memory_equal(r + 10, w, 10);

	/* overwrite a small unaligned piece in the middle of a chunk */
	fill_pattern(w, 33, off + CHUNK + 5, 99);
	assert_int_equal(emu_ns_write(ns, off + CHUNK + 5, w, 33), 0);
	assert_int_equal(emu_ns_read(ns, off + CHUNK + 5, r, 33), 0);
	assert_memory_equal(r, w, 33);
	free(w);
	free(r);
}

/* Random writes and zeroes applied to the namespace and to a model. */
static void check_against_model(struct emu_ns *ns, uint64_t bytes, unsigned ops)
{
	uint8_t *model = calloc(1, bytes), *buf = malloc(bytes), *got = malloc(bytes);

	assert_non_null(model);
	assert_non_null(buf);
	assert_non_null(got);
	rng_state = 0x1234567887654321ull;
	for (unsigned op = 0; op < ops; op++) {
		uint64_t off = rng() % bytes;
		uint64_t len = 1 + rng() % (3 * CHUNK);

		if (len > bytes - off)
			len = bytes - off;
		switch (rng() % 4) {
		case 0:
		case 1:
			fill_pattern(buf, len, off, (uint8_t)op);
			assert_int_equal(emu_ns_write(ns, off, buf, len), 0);
			memcpy(model + off, buf, len);
			break;
		case 2:
			assert_int_equal(emu_ns_zero(ns, off, len, op & 1), 0);
			memset(model + off, 0, len);
			break;
		case 3:
			assert_int_equal(emu_ns_read(ns, off, got, len), 0);
			assert_memory_equal(got, model + off, len);
			break;
		}
	}
	assert_int_equal(emu_ns_read(ns, 0, got, bytes), 0);
	assert_memory_equal(got, model, bytes);
	free(model);
	free(buf);
	free(got);
}

/* Zero and deallocate read back zeroes; the rest is untouched. */
static void check_zero(struct emu_ns *ns, bool deallocate)
{
	const uint64_t len = 6 * CHUNK;
	uint8_t *w = malloc(len), *r = malloc(len);
	/* a range with partial head and tail chunks and whole chunks between */
	const uint64_t zoff = CHUNK / 2 + 512, zlen = 3 * CHUNK + 4096;

	assert_non_null(w);
	assert_non_null(r);
	fill_pattern(w, len, 0, 3);
	assert_int_equal(emu_ns_write(ns, 0, w, len), 0);
	assert_int_equal(emu_ns_zero(ns, zoff, zlen, deallocate), 0);
	assert_int_equal(emu_ns_read(ns, 0, r, len), 0);
	assert_memory_equal(r, w, zoff);
	assert_true(all_zero(r + zoff, zlen));
	assert_memory_equal(r + zoff + zlen, w + zoff + zlen, len - zoff - zlen);
	/* a zero smaller than a chunk */
	assert_int_equal(emu_ns_zero(ns, 100, 10, deallocate), 0);
	assert_int_equal(emu_ns_read(ns, 90, r, 30), 0);
	assert_memory_equal(r, w + 90, 10);
	assert_true(all_zero(r + 10, 10));
	assert_memory_equal(r + 20, w + 110, 10);
	/* writing again after a deallocate works */
	assert_int_equal(emu_ns_write(ns, zoff, w, 4096), 0);
	assert_int_equal(emu_ns_read(ns, zoff, r, 4096), 0);
	assert_memory_equal(r, w, 4096);
	free(w);
	free(r);
}

/* Shrink discards, a later grow reads zeroes, data below stays. */
static void check_resize(struct emu_ns *ns)
{
	uint64_t nblocks = emu_ns_nblocks(ns);
	uint64_t bytes = nblocks << emu_ns_lba_shift(ns);
	uint64_t half = bytes / 2 + 512; /* not chunk aligned */
	uint8_t *w = malloc(2 * bytes), *r = malloc(2 * bytes);

	assert_non_null(w);
	assert_non_null(r);
	fill_pattern(w, bytes, 0, 11);
	assert_int_equal(emu_ns_write(ns, 0, w, bytes), 0);

	assert_int_equal(emu_ns_resize(ns, half >> emu_ns_lba_shift(ns)), 0);
	assert_int_equal(emu_ns_nblocks(ns), half >> emu_ns_lba_shift(ns));
	/* beyond the new end is out of range now */
	assert_int_equal(emu_ns_read(ns, half, r, 512), -EINVAL);
	assert_int_equal(emu_ns_write(ns, half - 511, w, 512), -EINVAL);

	assert_int_equal(emu_ns_resize(ns, 2 * nblocks), 0);
	assert_int_equal(emu_ns_nblocks(ns), 2 * nblocks);
	assert_int_equal(emu_ns_read(ns, 0, r, half), 0);
	assert_memory_equal(r, w, half);
	assert_int_equal(emu_ns_read(ns, half, r, 2 * bytes - half), 0);
	assert_true(all_zero(r, 2 * bytes - half));
	/* the grown part is writable */
	assert_int_equal(emu_ns_write(ns, 2 * bytes - 4096, w, 4096), 0);
	assert_int_equal(emu_ns_read(ns, 2 * bytes - 4096, r, 4096), 0);
	assert_memory_equal(r, w, 4096);
	free(w);
	free(r);
}

static void check_out_of_range(struct emu_ns *ns)
{
	uint64_t bytes = emu_ns_nblocks(ns) << emu_ns_lba_shift(ns);
	uint8_t b[16] = {0};

	assert_int_equal(emu_ns_read(ns, bytes - 8, b, 16), -EINVAL);
	assert_int_equal(emu_ns_write(ns, bytes, b, 1), -EINVAL);
	assert_int_equal(emu_ns_zero(ns, UINT64_MAX - 4, 16, true), -EINVAL);
	assert_int_equal(emu_ns_read(ns, 8, b, UINT64_MAX), -EINVAL);
	/* exactly up to the end is fine */
	assert_int_equal(emu_ns_write(ns, bytes - 16, b, 16), 0);
}

/* ---- RAM ---- */

static void test_ram_patterns(void **state)
{
	struct emu_ns *ns = make_ns(NVMK_EMU_BACK_RAM, 9, (8 * MIB) >> 9, NULL);

	(void)state;
	check_patterns(ns);
	emu_ns_destroy(ns);
}

static void test_ram_model(void **state)
{
	struct emu_ns *ns = make_ns(NVMK_EMU_BACK_RAM, 9, (2 * MIB) >> 9, NULL);

	(void)state;
	check_against_model(ns, 2 * MIB, 3000);
	emu_ns_destroy(ns);
}

static void test_ram_zero_and_nuse(void **state)
{
	struct emu_ns *ns = make_ns(NVMK_EMU_BACK_RAM, 12, (4 * MIB) >> 12, NULL);
	uint64_t before;

	(void)state;
	assert_int_equal(emu_ns_nuse(ns), 0);
	check_zero(ns, false);
	check_zero(ns, true);
	/* 6 chunks written, whole chunks 1..3 freed, chunk 1 partly rewritten */
	before = emu_ns_nuse(ns);
	assert_true(before > 0);
	assert_true(before <= 6 * (CHUNK >> 12));
	/* deallocating everything frees every chunk: NUSE 0 */
	assert_int_equal(emu_ns_zero(ns, 0, 4 * MIB, true), 0);
	assert_int_equal(emu_ns_nuse(ns), 0);
	/* one byte written counts its whole chunk */
	assert_int_equal(emu_ns_write(ns, 3 * CHUNK + 1, "x", 1), 0);
	assert_int_equal(emu_ns_nuse(ns), CHUNK >> 12);
	emu_ns_destroy(ns);
}

static void test_ram_resize(void **state)
{
	struct emu_ns *ns = make_ns(NVMK_EMU_BACK_RAM, 9, (1 * MIB) >> 9, NULL);

	(void)state;
	check_resize(ns);
	/* grow past what the first chunk table covered (256 MiB per L2) */
	assert_int_equal(emu_ns_resize(ns, (600 * MIB) >> 9), 0);
	assert_int_equal(emu_ns_write(ns, 599 * MIB, "tail", 4), 0);
	{
		char b[4];

		assert_int_equal(emu_ns_read(ns, 599 * MIB, b, 4), 0);
		assert_memory_equal(b, "tail", 4);
	}
	/* shrink below that table again, then grow: reads zeroes */
	assert_int_equal(emu_ns_resize(ns, (1 * MIB) >> 9), 0);
	assert_int_equal(emu_ns_resize(ns, (600 * MIB) >> 9), 0);
	{
		char b[4];

		assert_int_equal(emu_ns_read(ns, 599 * MIB, b, 4), 0);
		assert_true(all_zero((uint8_t *)b, 4));
	}
	assert_int_equal(emu_ns_resize(ns, 0), -EINVAL);
	emu_ns_destroy(ns);
}

static void test_ram_out_of_range(void **state)
{
	struct emu_ns *ns = make_ns(NVMK_EMU_BACK_RAM, 9, 64, NULL);
	struct log_capture c = {0};

	(void)state;
	nvmk_log_set_sink(capture, &c);
	check_out_of_range(ns);
	nvmk_log_set_sink(NULL, NULL);
	assert_true(c.lines >= 4);
	assert_non_null(strstr(c.last, "emu-test"));
	emu_ns_destroy(ns);
}

static void test_ram_64g_costs_no_memory(void **state)
{
	const uint64_t bytes = 64 * GIB;
	uint64_t rss0, rss1;
	struct emu_ns *ns;
	uint8_t *buf = malloc(MIB);

	(void)state;
	assert_non_null(buf);
	rss0 = rss_bytes();
	ns = make_ns(NVMK_EMU_BACK_RAM, 12, bytes >> 12, NULL);
	assert_int_equal(emu_ns_nblocks(ns), bytes >> 12);
	assert_int_equal(emu_ns_write(ns, 0, "head", 4), 0);
	assert_int_equal(emu_ns_write(ns, bytes - 4, "tail", 4), 0);
	assert_int_equal(emu_ns_write(ns, 40 * GIB + 3, "mid", 3), 0);
	/* a large read of never-written space returns zeroes */
	memset(buf, 0xff, MIB);
	assert_int_equal(emu_ns_read(ns, 17 * GIB, buf, MIB), 0);
	assert_true(all_zero(buf, MIB));
	assert_int_equal(emu_ns_read(ns, bytes - 4, buf, 4), 0);
	assert_memory_equal(buf, "tail", 4);
	/* three chunks in use, and the process grew by far less than 64 GiB */
	assert_int_equal(emu_ns_nuse(ns), 3 * (CHUNK >> 12));
	rss1 = rss_bytes();
	assert_true(rss1 < rss0 + 64 * MIB);
	/* deallocating all of it frees what was written, and keeps working */
	assert_int_equal(emu_ns_zero(ns, 0, bytes, true), 0);
	assert_int_equal(emu_ns_nuse(ns), 0);
	assert_int_equal(emu_ns_read(ns, bytes - 4, buf, 4), 0);
	assert_true(all_zero(buf, 4));
	assert_int_equal(emu_ns_write(ns, 40 * GIB, "again", 5), 0);
	assert_int_equal(emu_ns_read(ns, 40 * GIB, buf, 5), 0);
	assert_memory_equal(buf, "again", 5);
	emu_ns_destroy(ns);
	free(buf);
}

/* ---- RAM, threads ---- */

struct writer {
	struct emu_ns *ns;
	uint64_t off, len;
	uint8_t seed;
	int result;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint8_t *buf = malloc(w->len), *got = malloc(w->len);
	/* odd piece sizes so that pieces straddle chunks */
	const uint64_t piece = 12345;

	w->result = -1;
	if (!buf || !got)
		goto out;
	fill_pattern(buf, w->len, w->off, w->seed);
	for (int round = 0; round < 3; round++) {
		for (uint64_t o = 0; o < w->len; o += piece) {
			uint64_t n = w->len - o < piece ? w->len - o : piece;

			if (emu_ns_write(w->ns, w->off + o, buf + o, n))
				goto out;
		}
		/* deallocate a middle slice and write it back: exercises the
		 * write-locked free path while the other threads write */
		if (emu_ns_zero(w->ns, w->off + w->len / 3, w->len / 3, true))
			goto out;
		if (emu_ns_read(w->ns, w->off + w->len / 3, got, w->len / 3))
			goto out;
		if (!all_zero(got, w->len / 3))
			goto out;
		if (emu_ns_write(w->ns, w->off + w->len / 3, buf + w->len / 3, w->len / 3))
			goto out;
	}
	if (emu_ns_read(w->ns, w->off, got, w->len))
		goto out;
	w->result = memcmp(got, buf, w->len) ? 1 : 0;
out:
	free(buf);
	free(got);
	return NULL;
}

static void run_writers(struct emu_ns *ns, uint64_t region)
{
	struct writer w[4];
	pthread_t t[4];
	uint8_t *got = malloc(region);

	assert_non_null(got);
	for (int i = 0; i < 4; i++) {
		/* disjoint regions, not chunk aligned, touching each other */
		w[i] = (struct writer){.ns = ns,
				       .off = 1000 + (uint64_t)i * region,
				       .len = region,
				       .seed = (uint8_t)(17 * i + 1)};
		assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].result, 0);
	}
	/* verify again from this thread, after all writers finished */
	for (int i = 0; i < 4; i++) {
		uint8_t *exp = malloc(region);

		assert_non_null(exp);
		fill_pattern(exp, region, w[i].off, w[i].seed);
		assert_int_equal(emu_ns_read(ns, w[i].off, got, region), 0);
		assert_memory_equal(got, exp, region);
		free(exp);
	}
	free(got);
}

static void test_ram_threads(void **state)
{
	struct emu_ns *ns = make_ns(NVMK_EMU_BACK_RAM, 9, (16 * MIB) >> 9, NULL);

	(void)state;
	run_writers(ns, 3 * MIB + 4321);
	emu_ns_destroy(ns);
}

static void test_file_threads(void **state)
{
	const char *path = make_tmp_file();
	struct emu_ns *ns = make_ns(NVMK_EMU_BACK_FILE, 9, (16 * MIB) >> 9, path);

	(void)state;
	run_writers(ns, 2 * MIB + 999);
	emu_ns_destroy(ns);
	unlink(path);
}

/* ---- FILE ---- */

static void test_file_patterns_and_model(void **state)
{
	const char *path = make_tmp_file();
	struct emu_ns *ns = make_ns(NVMK_EMU_BACK_FILE, 9, (8 * MIB) >> 9, path);
	struct stat st;

	(void)state;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal((uint64_t)st.st_size, 8 * MIB);
	check_patterns(ns);
	assert_int_equal(emu_ns_flush(ns), 0);
	emu_ns_destroy(ns);
	unlink(path);

	path = make_tmp_file();
	ns = make_ns(NVMK_EMU_BACK_FILE, 12, (2 * MIB) >> 12, path);
	check_against_model(ns, 2 * MIB, 1500);
	emu_ns_destroy(ns);
	unlink(path);
}

static void test_file_zero_resize(void **state)
{
	const char *path = make_tmp_file();
	struct emu_ns *ns = make_ns(NVMK_EMU_BACK_FILE, 9, (1 * MIB) >> 9, path);
	struct stat st;

	(void)state;
	check_zero(ns, true);
	check_zero(ns, false);
	check_resize(ns);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal((uint64_t)st.st_size, 2 * MIB);
	check_out_of_range(ns);
	/* NUSE follows the file's allocated blocks: after deallocating all
	 * of it, fewer blocks than before are in use */
	{
		uint8_t *w = malloc(2 * MIB);
		uint64_t full;

		assert_non_null(w);
		fill_pattern(w, 2 * MIB, 0, 5);
		assert_int_equal(emu_ns_write(ns, 0, w, 2 * MIB), 0);
		assert_int_equal(emu_ns_flush(ns), 0);
		full = emu_ns_nuse(ns);
		assert_true(full > 0 && full <= emu_ns_nblocks(ns));
		assert_int_equal(emu_ns_zero(ns, 0, 2 * MIB, true), 0);
		assert_true(emu_ns_nuse(ns) <= full);
		free(w);
	}
	emu_ns_destroy(ns);
	unlink(path);
}

static void test_file_existing_data_kept(void **state)
{
	const char *path = make_tmp_file();
	uint8_t w[4096], r[4096];
	struct emu_ns *ns;
	struct stat st;
	int fd;

	(void)state;
	/* a file already larger than the namespace, with data in it */
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	fill_pattern(w, sizeof(w), 0, 42);
	assert_int_equal(pwrite(fd, w, sizeof(w), 0), (ssize_t)sizeof(w));
	assert_int_equal(ftruncate(fd, (off_t)(4 * MIB)), 0);
	close(fd);

	ns = make_ns(NVMK_EMU_BACK_FILE, 9, (1 * MIB) >> 9, path);
	assert_int_equal(emu_ns_read(ns, 0, r, sizeof(r)), 0);
	assert_memory_equal(r, w, sizeof(w));
	emu_ns_destroy(ns);
	/* opening did not cut the file */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal((uint64_t)st.st_size, 4 * MIB);
	unlink(path);
}

static void test_file_bad_paths(void **state)
{
	struct nvmk_emu_ns_config cfg = {
	    .nsid = 2, .nblocks = 8, .lba_shift = 9, .backing = NVMK_EMU_BACK_FILE};
	struct log_capture c = {0};
	struct emu_ns *ns = (struct emu_ns *)1;

	(void)state;
	nvmk_log_set_sink(capture, &c);
	cfg.path = "/tmp";
	assert_true(emu_ns_create(&cfg, "emu-test", &ns) < 0);
	assert_null(ns);
	cfg.path = "/nonexistent-dir-nvmk/x";
	assert_int_equal(emu_ns_create(&cfg, "emu-test", &ns), -ENOENT);
	assert_non_null(strstr(c.last, "/nonexistent-dir-nvmk/x"));
	cfg.path = "";
	assert_int_equal(emu_ns_create(&cfg, "emu-test", &ns), -EINVAL);
	assert_non_null(strstr(c.last, "path"));
	nvmk_log_set_sink(NULL, NULL);
}

/* ---- NULL ---- */

static void test_null_backing(void **state)
{
	struct emu_ns *ns = make_ns(NVMK_EMU_BACK_NULL, 12, (1 * GIB) >> 12, NULL);
	uint8_t w[8192], r[8192];
	struct nvme_id_ns id;

	(void)state;
	fill_pattern(w, sizeof(w), 0, 1);
	assert_int_equal(emu_ns_write(ns, 4096, w, sizeof(w)), 0);
	memset(r, 0xee, sizeof(r));
	assert_int_equal(emu_ns_read(ns, 4096, r, sizeof(r)), 0);
	assert_true(all_zero(r, sizeof(r)));
	assert_int_equal(emu_ns_zero(ns, 0, 4096, true), 0);
	assert_int_equal(emu_ns_flush(ns), 0);
	assert_int_equal(emu_ns_nuse(ns), 0);
	assert_int_equal(emu_ns_resize(ns, 10), 0);
	assert_int_equal(emu_ns_nblocks(ns), 10);
	assert_int_equal(emu_ns_read(ns, 10 * 4096, r, 1), -EINVAL);
	emu_ns_identify(ns, "SN1", false, &id);
	assert_int_equal(id.nsze, 10);
	assert_int_equal(id.nsfeat & NVME_NSFEAT_THINP, 0);
	emu_ns_destroy(ns);
}

/* ---- identify ---- */

static void test_identify_fields(void **state)
{
	struct emu_ns *ns = make_ns(NVMK_EMU_BACK_RAM, 12, 1000, NULL);
	struct nvme_id_ns id;
	uint8_t zero[16] = {0};

	(void)state;
	assert_int_equal(emu_ns_write(ns, 0, "abc", 3), 0);
	memset(&id, 0xcc, sizeof(id));
	emu_ns_identify(ns, "SERIAL-0001", true, &id);
	assert_int_equal(id.nsze, 1000);
	assert_int_equal(id.ncap, 1000);
	assert_int_equal(id.nuse, CHUNK >> 12);
	assert_int_equal(id.nsfeat & NVME_NSFEAT_THINP, NVME_NSFEAT_THINP);
	assert_int_equal(id.nlbaf, 0);
	assert_int_equal(id.flbas, 0);
	assert_int_equal(id.lbaf[0].lbads, 12);
	assert_int_equal(id.lbaf[0].ms, 0);
	assert_int_equal(id.dlfeat, 0x09);
	assert_int_equal(id.nmic, 1);
	assert_int_equal(id.rescap, 0xfe);
	assert_int_equal(id.noiob, 0);
	assert_memory_not_equal(id.nguid, zero, 16);
	assert_memory_not_equal(id.eui64, zero, 8);
	/* everything we do not set is zero (the structure was 0xcc) */
	assert_true(all_zero(id.rsvd384, sizeof(id.rsvd384)));
	assert_int_equal(id.dps, 0);
	assert_int_equal(id.mc, 0);
	assert_true(all_zero((uint8_t *)&id.lbaf[1], sizeof(id.lbaf) - sizeof(id.lbaf[0])));
	assert_true(all_zero(id.vs, sizeof(id.vs)));

	emu_ns_identify(ns, "SERIAL-0001", false, &id);
	assert_int_equal(id.nmic, 0);
	emu_ns_destroy(ns);
}

static void test_identify_ids_stable_and_distinct(void **state)
{
	struct nvmk_emu_ns_config cfg = {
	    .nsid = 1, .nblocks = 8, .lba_shift = 9, .backing = NVMK_EMU_BACK_NULL};
	struct emu_ns *a, *b, *a2;
	uint8_t g1[16], e1[8], g2[16], e2[8], g3[16], e3[8], g4[16], e4[8];
	struct nvme_id_ns id;

	(void)state;
	assert_int_equal(emu_ns_create(&cfg, "emu-test", &a), 0);
	assert_int_equal(emu_ns_create(&cfg, "emu-test", &a2), 0);
	cfg.nsid = 2;
	assert_int_equal(emu_ns_create(&cfg, "emu-test", &b), 0);

	emu_ns_ids(a, "SN-A", g1, e1);
	emu_ns_ids(a2, "SN-A", g2, e2); /* same serial + nsid: same ids */
	assert_memory_equal(g1, g2, 16);
	assert_memory_equal(e1, e2, 8);
	emu_ns_ids(b, "SN-A", g3, e3); /* other nsid */
	assert_memory_not_equal(g1, g3, 16);
	assert_memory_not_equal(e1, e3, 8);
	emu_ns_ids(a, "SN-B", g4, e4); /* other subsystem */
	assert_memory_not_equal(g1, g4, 16);
	assert_memory_not_equal(e1, e4, 8);
	/* EUI64 is locally administered, unicast */
	assert_int_equal(e1[0] & 0x03, 0x02);
	/* identify reports the same values */
	emu_ns_identify(a, "SN-A", false, &id);
	assert_memory_equal(id.nguid, g1, 16);
	assert_memory_equal(id.eui64, e1, 8);
	emu_ns_destroy(a);
	emu_ns_destroy(a2);
	emu_ns_destroy(b);
}

/* ---- bad configs ---- */

static void expect_bad(struct nvmk_emu_ns_config cfg, const char *field)
{
	struct log_capture c = {0};
	struct emu_ns *ns = (struct emu_ns *)1;

	nvmk_log_set_sink(capture, &c);
	assert_int_equal(emu_ns_create(&cfg, "emu-test", &ns), -EINVAL);
	nvmk_log_set_sink(NULL, NULL);
	assert_null(ns);
	assert_int_equal(c.lines, 1);
	assert_non_null(strstr(c.last, "error"));
	assert_non_null(strstr(c.last, "emu-test"));
	assert_non_null(strstr(c.last, field));
	assert_non_null(strstr(c.last, "accepted"));
}

static void test_bad_configs(void **state)
{
	const struct nvmk_emu_ns_config good = {
	    .nsid = 1, .nblocks = 8, .lba_shift = 9, .backing = NVMK_EMU_BACK_RAM};
	struct nvmk_emu_ns_config cfg;

	(void)state;
	cfg = good;
	cfg.lba_shift = 10;
	expect_bad(cfg, "lba_shift");
	cfg = good;
	cfg.lba_shift = 0;
	expect_bad(cfg, "lba_shift");
	cfg = good;
	cfg.nblocks = 0;
	expect_bad(cfg, "nblocks");
	cfg = good;
	cfg.nblocks = UINT64_MAX >> 8; /* overflows bytes */
	expect_bad(cfg, "nblocks");
	cfg = good;
	cfg.nblocks = (1ull << 51) >> 9; /* 2 PiB of RAM */
	expect_bad(cfg, "nblocks");
	cfg = good;
	cfg.backing = (enum nvmk_emu_backing)7;
	expect_bad(cfg, "backing");
	cfg = good;
	cfg.nsid = 0;
	expect_bad(cfg, "nsid");
	cfg = good;
	cfg.nsid = 0xffffffffu;
	expect_bad(cfg, "nsid");
	cfg = good;
	cfg.backing = NVMK_EMU_BACK_FILE;
	cfg.path = NULL;
	expect_bad(cfg, "path");
	/* a large NULL namespace is fine: nothing is allocated */
	cfg = good;
	cfg.backing = NVMK_EMU_BACK_NULL;
	cfg.nblocks = (1ull << 55) >> 9;
	{
		struct emu_ns *ns;

		assert_int_equal(emu_ns_create(&cfg, "emu-test", &ns), 0);
		emu_ns_destroy(ns);
	}
	emu_ns_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ram_patterns),
	    cmocka_unit_test(test_ram_model),
	    cmocka_unit_test(test_ram_zero_and_nuse),
	    cmocka_unit_test(test_ram_resize),
	    cmocka_unit_test(test_ram_out_of_range),
	    cmocka_unit_test(test_ram_64g_costs_no_memory),
	    cmocka_unit_test(test_ram_threads),
	    cmocka_unit_test(test_file_patterns_and_model),
	    cmocka_unit_test(test_file_zero_resize),
	    cmocka_unit_test(test_file_existing_data_kept),
	    cmocka_unit_test(test_file_bad_paths),
	    cmocka_unit_test(test_file_threads),
	    cmocka_unit_test(test_null_backing),
	    cmocka_unit_test(test_identify_fields),
	    cmocka_unit_test(test_identify_ids_stable_and_distinct),
	    cmocka_unit_test(test_bad_configs),
	};

	return cmocka_run_group_tests_name("emu_ns", tests, NULL, NULL);
}
