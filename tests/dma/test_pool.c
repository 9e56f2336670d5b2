/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dma/pool_table.h"
#include "nvmekeep/dma.h"
#include "nvmekeep/log.h"

static const char *self_exe = "/proc/self/exe";

/* ---- log capture ------------------------------------------------------------------------ */

struct logcap {
	pthread_mutex_t lock;
	char text[16384];
	size_t len;
};

static struct logcap cap = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void capture(void *ctx, enum nvmk_log_level level, const char *line)
{
	struct logcap *c = ctx;
	size_t n = strlen(line);

	(void)level;
	pthread_mutex_lock(&c->lock);
	if (c->len + n + 2 < sizeof(c->text)) {
		memcpy(c->text + c->len, line, n);
		c->len += n;
		c->text[c->len++] = '\n';
		c->text[c->len] = '\0';
	}
	pthread_mutex_unlock(&c->lock);
}

static int setup(void **state)
{
	(void)state;
	cap.len = 0;
	cap.text[0] = '\0';
	nvmk_log_set_level(NVMK_LOG_INFO);
	nvmk_log_set_sink(capture, &cap);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nvmk_log_set_sink(NULL, NULL);
	nvmk_log_set_level(NVMK_LOG_WARN);
	return 0;
}

static bool logged(const char *needle)
{
	return strstr(cap.text, needle) != NULL;
}

/* ---- helpers -------------------------------------------------------------------------- */

static void fill(struct nvmk_dma_mem *m, uint8_t seed)
{
	uint8_t *p = m->vaddr;

	for (size_t i = 0; i < m->size; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static bool check(const struct nvmk_dma_mem *m, uint8_t seed)
{
	const uint8_t *p = m->vaddr;

	for (size_t i = 0; i < m->size; i++)
		if (p[i] != (uint8_t)(seed + i * 7))
			return false;
	return true;
}

static bool all_zero(const struct nvmk_dma_mem *m)
{
	const uint8_t *p = m->vaddr;

	for (size_t i = 0; i < m->size; i++)
		if (p[i])
			return false;
	return true;
}

/* Drop this process's view of the pool, keep the memfd: what exec does. Return the fd. */
static int simulate_exec(struct nvmk_dma_pool *pool)
{
	int fd = dup(nvmk_dma_pool_fd(pool));

	assert_true(fd >= 0);
	nvmk_dma_pool_destroy(pool);
	return fd;
}

static uint64_t data_offset_of(struct nvmk_dma_pool *pool)
{
	struct nvmk_dma_pool_stats st;

	nvmk_dma_pool_get_stats(pool, &st);
	return st.pool_bytes - st.total_pages * NVMK_DMA_PAGE_SIZE;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_create_and_stats(void **state)
{
	struct nvmk_dma_pool *pool;
	struct nvmk_dma_pool_stats st;
	struct stat sb;
	int fdflags;

	(void)state;
	assert_int_equal(nvmk_dma_pool_create(300, 0, &pool), 0);
	nvmk_dma_pool_get_stats(pool, &st);
	assert_int_equal(st.total_pages, 300);
	assert_int_equal(st.free_pages, 300);
	assert_int_equal(st.used_pages, 0);
	assert_int_equal(st.largest_free_pages, 300);
	assert_int_equal(st.total_slots, 150);
	assert_int_equal(st.used_slots, 0);
	assert_false(st.hugetlb);
	assert_int_equal(fstat(nvmk_dma_pool_fd(pool), &sb), 0);
	assert_int_equal((uint64_t)sb.st_size, st.pool_bytes);
	fdflags = fcntl(nvmk_dma_pool_fd(pool), F_GETFD);
	assert_true(fdflags & FD_CLOEXEC);
	assert_true(logged("created pool"));
	nvmk_dma_pool_destroy(pool);

	assert_int_equal(nvmk_dma_pool_create(0, 0, &pool), -EINVAL);
	assert_int_equal(nvmk_dma_pool_create(1, 0x8, &pool), -EINVAL);
	assert_int_equal(nvmk_dma_pool_create(SIZE_MAX, 0, &pool), -EINVAL);
	assert_int_equal(nvmk_dma_pool_create(1, 0, NULL), -EINVAL);
}

static void test_hugetlb_try(void **state)
{
	struct nvmk_dma_pool *pool;
	struct nvmk_dma_pool_stats st;
	struct nvmk_dma_mem m, r;
	int fd;

	(void)state;
	assert_int_equal(nvmk_dma_pool_create(16, NVMK_DMA_POOL_HUGETLB_TRY, &pool), 0);
	nvmk_dma_pool_get_stats(pool, &st);
	if (st.hugetlb) {
		assert_int_equal(st.pool_bytes % (2u << 20), 0);
		assert_true(logged("2 MiB huge pages"));
	} else {
		/* the fallback is logged with its reason */
		assert_true(logged("using 4 KiB pages"));
	}
	assert_true(st.total_pages >= 16);
	assert_int_equal(nvmk_dma_alloc(pool, 8192, "nvme0", "asq", &m), 0);
	fill(&m, 9);
	/* reopen checks the header's page kind against the fd's filesystem */
	fd = simulate_exec(pool);
	assert_int_equal(nvmk_dma_pool_open(fd, &pool), 0);
	assert_int_equal(nvmk_dma_reclaim(pool, "nvme0", "asq", &r), 0);
	assert_true(check(&r, 9));
	assert_int_equal(nvmk_dma_pool_finish_restore(pool), 0);
	nvmk_dma_pool_destroy(pool);
}

static void test_alloc_free_coalesce(void **state)
{
	struct nvmk_dma_pool *pool;
	struct nvmk_dma_pool_stats st;
	struct nvmk_dma_mem a, b, c, d, e;
	uint64_t base;

	(void)state;
	assert_int_equal(nvmk_dma_pool_create(64, 0, &pool), 0);
	base = data_offset_of(pool);
	assert_int_equal(base % NVMK_DMA_PAGE_SIZE, 0);

	assert_int_equal(nvmk_dma_alloc(pool, 1, "nvme0", "a", &a), 0);
	assert_int_equal(nvmk_dma_alloc(pool, 8192, "nvme0", "b", &b), 0);
	assert_int_equal(nvmk_dma_alloc(pool, 4096, "nvme0", "c", &c), 0);
	/* first fit from the bottom, page granular, blocks contiguous */
	assert_int_equal(a.fd_offset, base);
	assert_int_equal(a.size, 4096);
	assert_int_equal(b.fd_offset, base + 4096);
	assert_int_equal(b.size, 8192);
	assert_int_equal(c.fd_offset, base + 3 * 4096);
	assert_int_equal(a.fd, nvmk_dma_pool_fd(pool));
	assert_ptr_equal(a.pool, pool);
	assert_ptr_equal((uint8_t *)b.vaddr, (uint8_t *)a.vaddr + 4096);
	assert_true(all_zero(&a) && all_zero(&b) && all_zero(&c));
	fill(&a, 1);
	fill(&b, 2);
	fill(&c, 3);
	nvmk_dma_pool_get_stats(pool, &st);
	assert_int_equal(st.used_pages, 4);
	assert_int_equal(st.free_pages, 60);
	assert_int_equal(st.used_slots, 3);

	/* a 3-page hole appears only once a and b are both free: they coalesce */
	nvmk_dma_free(&b);
	assert_null(b.vaddr);
	assert_int_equal(nvmk_dma_alloc(pool, 3 * 4096, "nvme0", "d", &d), 0);
	assert_int_equal(d.fd_offset, base + 4 * 4096); /* did not fit in b's 2-page hole */
	nvmk_dma_free(&a);
	assert_int_equal(nvmk_dma_alloc(pool, 3 * 4096, "nvme0", "e", &e), 0);
	assert_int_equal(e.fd_offset, base); /* a + b coalesced */
	/* reused pages come back zeroed, neighbours untouched */
	assert_true(all_zero(&e));
	assert_true(check(&c, 3));

	nvmk_dma_free(&c);
	nvmk_dma_free(&d);
	nvmk_dma_free(&e);
	nvmk_dma_pool_get_stats(pool, &st);
	assert_int_equal(st.used_pages, 0);
	assert_int_equal(st.largest_free_pages, 64);
	assert_int_equal(st.used_slots, 0);
	nvmk_dma_pool_destroy(pool);
}

static void test_double_free_ignored(void **state)
{
	struct nvmk_dma_pool *pool;
	struct nvmk_dma_pool_stats st;
	struct nvmk_dma_mem a, copy, b;

	(void)state;
	assert_int_equal(nvmk_dma_pool_create(64, 0, &pool), 0);
	assert_int_equal(nvmk_dma_alloc(pool, 4096, "nvme0", "a", &a), 0);
	copy = a;
	nvmk_dma_free(&a);
	assert_int_equal(nvmk_dma_alloc(pool, 8192, "nvme0", "b", &b), 0);
	/* a stale copy of a freed block must not release b, which now holds its slot */
	nvmk_dma_free(&copy);
	assert_true(logged("does not hold"));
	nvmk_dma_pool_get_stats(pool, &st);
	assert_int_equal(st.used_slots, 1);
	assert_int_equal(st.used_pages, 2);
	nvmk_dma_free(&b);
	nvmk_dma_pool_destroy(pool);
}

static void test_exhaustion(void **state)
{
	struct nvmk_dma_pool *pool;
	struct nvmk_dma_pool_stats st;
	struct nvmk_dma_mem m[64], big;
	uint64_t first;
	char tag[16];

	(void)state;
	assert_int_equal(nvmk_dma_pool_create(64, 0, &pool), 0);
	assert_int_equal(nvmk_dma_alloc(pool, 65 * 4096, "nvme0", "huge", &big), -ENOMEM);
	assert_true(logged("DMA pool exhausted"));
	assert_true(logged("pool of 64 pages"));
	for (int i = 0; i < 64; i++) {
		snprintf(tag, sizeof(tag), "p%d", i);
		assert_int_equal(nvmk_dma_alloc(pool, 4096, "nvme0", tag, &m[i]), 0);
	}
	cap.len = 0;
	assert_int_equal(nvmk_dma_alloc(pool, 4096, "nvme0", "one-more", &big), -ENOMEM);
	assert_true(logged("nvme0: DMA pool exhausted"));
	assert_true(logged("64 used"));
	assert_true(logged("one-more"));

	/* fragmentation: 32 free pages, none of them adjacent */
	first = m[0].fd_offset;
	for (int i = 0; i < 64; i += 2)
		nvmk_dma_free(&m[i]);
	nvmk_dma_pool_get_stats(pool, &st);
	assert_int_equal(st.free_pages, 32);
	assert_int_equal(st.largest_free_pages, 1);
	assert_int_equal(nvmk_dma_alloc(pool, 2 * 4096, "nvme0", "two", &big), -ENOMEM);
	assert_int_equal(nvmk_dma_alloc(pool, 4096, "nvme0", "one", &big), 0);
	assert_int_equal(big.fd_offset, first); /* first fit: the lowest hole */
	nvmk_dma_pool_destroy(pool);
}

static void test_slot_exhaustion(void **state)
{
	struct nvmk_dma_pool *pool;
	struct nvmk_dma_pool_stats st;
	struct nvmk_dma_mem m;
	char tag[16];

	(void)state;
	/* 1000 pages -> 500 slots; single pages run the slots out first */
	assert_int_equal(nvmk_dma_pool_create(1000, 0, &pool), 0);
	nvmk_dma_pool_get_stats(pool, &st);
	assert_int_equal(st.total_slots, 500);
	for (uint32_t i = 0; i < st.total_slots; i++) {
		snprintf(tag, sizeof(tag), "prp%u", i);
		assert_int_equal(nvmk_dma_alloc(pool, 4096, "nvme1", tag, &m), 0);
	}
	assert_int_equal(nvmk_dma_alloc(pool, 4096, "nvme1", "last", &m), -ENOMEM);
	assert_true(logged("no free slot"));
	assert_true(logged("500 of 500 slots used"));
	nvmk_dma_pool_destroy(pool);
}

static void test_owner_tag_rules(void **state)
{
	struct nvmk_dma_pool *pool;
	struct nvmk_dma_mem a, b, c;
	char long_owner[NVMK_DMA_OWNER_MAX + 2], max_owner[NVMK_DMA_OWNER_MAX + 1];
	char long_tag[NVMK_DMA_TAG_MAX + 2], max_tag[NVMK_DMA_TAG_MAX + 1];

	(void)state;
	memset(long_owner, 'o', sizeof(long_owner) - 1);
	long_owner[sizeof(long_owner) - 1] = '\0';
	memset(max_owner, 'o', sizeof(max_owner) - 1);
	max_owner[sizeof(max_owner) - 1] = '\0';
	memset(long_tag, 't', sizeof(long_tag) - 1);
	long_tag[sizeof(long_tag) - 1] = '\0';
	memset(max_tag, 't', sizeof(max_tag) - 1);
	max_tag[sizeof(max_tag) - 1] = '\0';

	assert_int_equal(nvmk_dma_pool_create(64, 0, &pool), 0);
	assert_int_equal(nvmk_dma_alloc(pool, 4096, "0000:00:03.0", "asq", &a), 0);
	assert_int_equal(nvmk_dma_alloc(pool, 4096, "0000:00:03.0", "asq", &b), -EEXIST);
	assert_true(logged("0000:00:03.0: DMA block asq is already allocated"));
	/* same tag, other owner: fine */
	assert_int_equal(nvmk_dma_alloc(pool, 4096, "0000:00:04.0", "asq", &b), 0);
	/* after a free the name can be used again */
	nvmk_dma_free(&a);
	assert_int_equal(nvmk_dma_alloc(pool, 4096, "0000:00:03.0", "asq", &a), 0);

	assert_int_equal(nvmk_dma_alloc(pool, 4096, NULL, "x", &c), -EINVAL);
	assert_int_equal(nvmk_dma_alloc(pool, 4096, "x", NULL, &c), -EINVAL);
	assert_int_equal(nvmk_dma_alloc(pool, 4096, "", "x", &c), -EINVAL);
	assert_int_equal(nvmk_dma_alloc(pool, 4096, "x", "", &c), -EINVAL);
	assert_int_equal(nvmk_dma_alloc(pool, 4096, long_owner, "x", &c), -EINVAL);
	assert_int_equal(nvmk_dma_alloc(pool, 4096, "x", long_tag, &c), -EINVAL);
	assert_int_equal(nvmk_dma_alloc(pool, 0, "x", "y", &c), -EINVAL);
	assert_int_equal(nvmk_dma_alloc(pool, 4096, max_owner, max_tag, &c), 0);
	nvmk_dma_free(&c);
	nvmk_dma_free(&a);
	nvmk_dma_free(&b);
	nvmk_dma_pool_destroy(pool);
}

static void test_survives_simulated_exec(void **state)
{
	static const char *tags[] = {"asq", "acq", "io1.sq", "io1.cq", "identify"};
	static const size_t sizes[] = {4096, 4096, 16 * 4096, 4 * 4096, 4096};
	struct nvmk_dma_mem before[5], after[5], extra;
	struct nvmk_dma_pool_stats st;
	struct nvmk_dma_pool *pool;
	uint64_t bytes_before, hole;
	int fd;

	(void)state;
	assert_int_equal(nvmk_dma_pool_create(128, 0, &pool), 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(nvmk_dma_alloc(pool, sizes[i], "nvme0", tags[i], &before[i]), 0);
		fill(&before[i], (uint8_t)(0x40 + i));
	}
	/* a hole in the middle, which the successor must see as free too */
	hole = before[2].fd_offset;
	nvmk_dma_free(&before[2]);
	nvmk_dma_pool_get_stats(pool, &st);
	bytes_before = st.pool_bytes;

	fd = simulate_exec(pool);
	cap.len = 0;
	assert_int_equal(nvmk_dma_pool_open(fd, &pool), 0);
	assert_true(logged("4 blocks to reclaim, 0 leaked"));
	nvmk_dma_pool_get_stats(pool, &st);
	assert_int_equal(st.pool_bytes, bytes_before);
	assert_int_equal(st.used_slots, 4);
	assert_int_equal(st.unclaimed_slots, 4);

	/* a new allocation during restore never lands on a predecessor's block: first fit picks
	 * the freed hole of io1.sq */
	assert_int_equal(nvmk_dma_alloc(pool, 4096, "nvme1", "asq", &extra), 0);
	assert_int_equal(extra.fd_offset, hole);

	for (int i = 0; i < 5; i++) {
		if (i == 2) {
			assert_int_equal(nvmk_dma_reclaim(pool, "nvme0", tags[i], &after[i]),
					 -ENOENT);
			continue;
		}
		assert_int_equal(nvmk_dma_reclaim(pool, "nvme0", tags[i], &after[i]), 0);
		assert_int_equal(after[i].fd_offset, before[i].fd_offset);
		assert_int_equal(after[i].size, before[i].size);
		assert_int_equal(after[i].fd, fd);
		assert_true(check(&after[i], (uint8_t)(0x40 + i)));
	}
	/* reclaiming twice, or reclaiming what this process allocated, is refused */
	assert_int_equal(nvmk_dma_reclaim(pool, "nvme0", "asq", &after[2]), -EBUSY);
	assert_int_equal(nvmk_dma_reclaim(pool, "nvme1", "asq", &after[2]), -EBUSY);
	assert_int_equal(nvmk_dma_reclaim(pool, "nvme0", "", &after[2]), -EINVAL);
	nvmk_dma_pool_get_stats(pool, &st);
	assert_int_equal(st.unclaimed_slots, 0);
	assert_int_equal(nvmk_dma_pool_finish_restore(pool), 0);

	/* reclaimed blocks are ordinary blocks again */
	nvmk_dma_free(&after[0]);
	nvmk_dma_free(&extra);
	nvmk_dma_pool_get_stats(pool, &st);
	assert_int_equal(st.used_slots, 3);
	for (int i = 1; i < 5; i++)
		if (i != 2)
			nvmk_dma_free(&after[i]);
	nvmk_dma_pool_destroy(pool);
}

static void test_leak_detection(void **state)
{
	struct nvmk_dma_mem a, b, c, r, n;
	struct nvmk_dma_slot_info info[4];
	struct nvmk_dma_pool_stats st;
	struct nvmk_dma_pool *pool;
	int fd;

	(void)state;
	assert_int_equal(nvmk_dma_pool_create(64, 0, &pool), 0);
	assert_int_equal(nvmk_dma_alloc(pool, 4096, "nvme0", "asq", &a), 0);
	assert_int_equal(nvmk_dma_alloc(pool, 2 * 4096, "nvme0", "io1.sq", &b), 0);
	assert_int_equal(nvmk_dma_alloc(pool, 3 * 4096, "emu7", "acq", &c), 0);
	fd = simulate_exec(pool);
	assert_int_equal(nvmk_dma_pool_open(fd, &pool), 0);
	assert_int_equal(nvmk_dma_reclaim(pool, "nvme0", "asq", &r), 0);
	cap.len = 0;
	assert_int_equal(nvmk_dma_pool_finish_restore(pool), -EUCLEAN);
	/* one line per leaked block, naming owner and tag */
	assert_true(logged("nvme0: DMA block io1.sq (2 pages"));
	assert_true(logged("emu7: DMA block acq (3 pages"));
	assert_true(logged("restore left 2 DMA blocks (5 pages) unreclaimed"));
	assert_false(logged("DMA block asq"));

	assert_int_equal(nvmk_dma_pool_leaked(pool, NULL, 0), 2);
	assert_int_equal(nvmk_dma_pool_leaked(pool, info, 1), 2); /* count exceeds room */
	assert_int_equal(nvmk_dma_pool_leaked(pool, info, 4), 2);
	assert_string_equal(info[0].owner, "nvme0");
	assert_string_equal(info[0].tag, "io1.sq");
	assert_int_equal(info[0].fd_offset, b.fd_offset);
	assert_int_equal(info[0].pages, 2);
	assert_string_equal(info[1].owner, "emu7");
	assert_string_equal(info[1].tag, "acq");
	assert_int_equal(info[1].pages, 3);

	/* leaked blocks cannot be reclaimed and their pages are never handed out */
	assert_int_equal(nvmk_dma_reclaim(pool, "emu7", "acq", &n), -ESTALE);
	nvmk_dma_pool_get_stats(pool, &st);
	assert_int_equal(st.leaked_pages, 5);
	assert_int_equal(st.leaked_slots, 2);
	assert_int_equal(st.free_pages, 64 - 6);
	assert_int_equal(nvmk_dma_alloc(pool, 58 * 4096, "nvme0", "rest", &n), 0);
	assert_true(n.fd_offset >= c.fd_offset + c.size);
	nvmk_dma_free(&n);
	/* a new block may reuse the name of a leaked one */
	assert_int_equal(nvmk_dma_alloc(pool, 4096, "emu7", "acq", &n), 0);
	assert_true(n.fd_offset >= c.fd_offset + c.size);

	/* leaked state survives another exec; a second finish_restore leaks nothing new */
	fd = simulate_exec(pool);
	assert_int_equal(nvmk_dma_pool_open(fd, &pool), 0);
	assert_true(logged("2 leaked"));
	assert_int_equal(nvmk_dma_pool_leaked(pool, NULL, 0), 2);
	assert_int_equal(nvmk_dma_reclaim(pool, "nvme0", "asq", &r), 0);
	assert_int_equal(nvmk_dma_reclaim(pool, "emu7", "acq", &n), 0);
	assert_int_equal(nvmk_dma_pool_finish_restore(pool), 0);

	/* once the device is reset, its leaked pages can be released */
	assert_int_equal(nvmk_dma_pool_release_leaked(pool, "emu7", "acq"), 0);
	assert_int_equal(nvmk_dma_pool_release_leaked(pool, "emu7", "acq"), -ENOENT);
	assert_int_equal(nvmk_dma_pool_leaked(pool, NULL, 0), 1);
	assert_int_equal(nvmk_dma_pool_release_leaked(pool, "nvme0", "io1.sq"), 0);
	nvmk_dma_free(&r);
	nvmk_dma_free(&n);
	nvmk_dma_pool_get_stats(pool, &st);
	assert_int_equal(st.used_pages, 0);
	nvmk_dma_pool_destroy(pool);
}

/* ---- corrupted tables ------------------------------------------------------------------- */

enum mutation {
	MUT_MAGIC,
	MUT_FLIP_SLOT_BYTE, /* checksum catches it */
	MUT_FLIP_CHECKSUM,
	MUT_VERSION_NEWER,
	MUT_VERSION_ZERO,
	MUT_POOL_SIZE,
	MUT_FD_GREW,
	MUT_SLOT_COUNT_HUGE,
	MUT_OVERLAP,
	MUT_OUT_OF_RANGE,
	MUT_OFFSET_IN_TABLE,
	MUT_ZERO_PAGES,
	MUT_UNALIGNED,
	MUT_PAGES_OVERFLOW,
	MUT_BAD_STATE,
	MUT_OWNER_UNTERMINATED,
	MUT_EMPTY_TAG,
	MUT_DUPLICATE_NAME,
	MUT_DIRTY_FREE_SLOT,
	MUT_HUGETLB_FLAG,
	MUT_GEN_IN_V1,
	MUT_GEN_PAGES,
	MUT_GEN_FLAGS,
	MUT_GEN_ZERO,
	MUT_GEN_TAG,
	MUT_GEN_TWICE,
	MUT_COUNT,
};

static const struct {
	const char *name;
	int err;
	const char *why; /* expected in the refusal log line */
} mutations[MUT_COUNT] = {
    [MUT_MAGIC] = {"magic", -EBADMSG, "bad magic"},
    [MUT_FLIP_SLOT_BYTE] = {"flip slot byte", -EBADMSG, "checksum mismatch"},
    [MUT_FLIP_CHECKSUM] = {"flip checksum", -EBADMSG, "checksum mismatch"},
    [MUT_VERSION_NEWER] = {"newer version", -EPROTONOSUPPORT, "format version 3"},
    [MUT_VERSION_ZERO] = {"version 0", -EBADMSG, "format version 0"},
    [MUT_POOL_SIZE] = {"pool size", -EBADMSG, "the pool fd has"},
    [MUT_FD_GREW] = {"fd grew", -EBADMSG, "the pool fd has"},
    [MUT_SLOT_COUNT_HUGE] = {"slot count", -EBADMSG, "do not fit"},
    [MUT_OVERLAP] = {"overlap", -EBADMSG, "overlap"},
    [MUT_OUT_OF_RANGE] = {"out of range", -EBADMSG, "outside the data area"},
    [MUT_OFFSET_IN_TABLE] = {"offset in table", -EBADMSG, "outside the data area"},
    [MUT_ZERO_PAGES] = {"zero pages", -EBADMSG, "outside the data area"},
    [MUT_UNALIGNED] = {"unaligned", -EBADMSG, "outside the data area"},
    [MUT_PAGES_OVERFLOW] = {"pages overflow", -EBADMSG, "outside the data area"},
    [MUT_BAD_STATE] = {"bad state", -EBADMSG, "unknown state 7"},
    [MUT_OWNER_UNTERMINATED] = {"owner unterminated", -EBADMSG, "bad owner or tag"},
    [MUT_EMPTY_TAG] = {"empty tag", -EBADMSG, "bad owner or tag"},
    [MUT_DUPLICATE_NAME] = {"duplicate name", -EBADMSG, "both allocated to nvme0/a"},
    [MUT_DIRTY_FREE_SLOT] = {"dirty free slot", -EBADMSG, "is not empty"},
    [MUT_HUGETLB_FLAG] = {"hugetlb flag", -EBADMSG, "huge pages"},
    [MUT_GEN_IN_V1] = {"generation record, format 1", -EBADMSG, "in a format 1 table"},
    [MUT_GEN_PAGES] = {"generation record with pages", -EBADMSG, "generation record of nvme0"},
    [MUT_GEN_FLAGS] = {"generation record flags", -EBADMSG, "flags 0x4"},
    [MUT_GEN_ZERO] = {"generation 0", -EBADMSG, "generation 0"},
    [MUT_GEN_TAG] = {"generation record tag", -EBADMSG, "bad owner or tag"},
    [MUT_GEN_TWICE] = {"two generation records", -EBADMSG, "both the generation record"},
};

/* slot @i as a valid generation record of nvme0 (format 2) */
static void gen_record(struct pool_slot *s, const char *owner)
{
	memset(s, 0, sizeof(*s));
	s->state = POOL_SLOT_GENERATION;
	strcpy(s->owner, owner);
	strcpy(s->tag, POOL_GEN_TAG);
	s->generation = 7;
}

static void apply(enum mutation mu, int fd, uint8_t *p, uint64_t size)
{
	struct pool_hdr *h = (struct pool_hdr *)p;
	struct pool_slot *s = (struct pool_slot *)(p + sizeof(*h));
	bool rechecksum = true;

	/* slots 0, 1, 2 are nvme0/a (1 page), nvme0/b (2 pages), nvme0/c (1 page) */
	switch (mu) {
	case MUT_MAGIC:
		p[0] ^= 0x20;
		break;
	case MUT_FLIP_SLOT_BYTE:
		s[1].owner[2] ^= 0x01;
		rechecksum = false;
		break;
	case MUT_FLIP_CHECKSUM:
		h->checksum ^= 0x80000000u;
		rechecksum = false;
		break;
	case MUT_VERSION_NEWER:
		h->version = 3;
		break;
	case MUT_VERSION_ZERO:
		h->version = 0;
		break;
	case MUT_POOL_SIZE:
		h->pool_size += NVMK_DMA_PAGE_SIZE;
		break;
	case MUT_FD_GREW:
		assert_int_equal(ftruncate(fd, (off_t)(size + NVMK_DMA_PAGE_SIZE)), 0);
		rechecksum = false;
		break;
	case MUT_SLOT_COUNT_HUGE:
		h->slot_count = 100000;
		break;
	case MUT_OVERLAP:
		s[2].offset = s[1].offset + NVMK_DMA_PAGE_SIZE;
		break;
	case MUT_OUT_OF_RANGE:
		s[2].offset = size;
		break;
	case MUT_OFFSET_IN_TABLE:
		s[0].offset = 0;
		break;
	case MUT_ZERO_PAGES:
		s[0].pages = 0;
		break;
	case MUT_UNALIGNED:
		s[2].offset += 512;
		break;
	case MUT_PAGES_OVERFLOW:
		s[2].pages = UINT64_MAX / NVMK_DMA_PAGE_SIZE + 2; /* wraps offset + len */
		break;
	case MUT_BAD_STATE:
		s[0].state = 7;
		break;
	case MUT_OWNER_UNTERMINATED:
		memset(s[0].owner, 'x', sizeof(s[0].owner));
		break;
	case MUT_EMPTY_TAG:
		s[1].tag[0] = '\0';
		break;
	case MUT_DUPLICATE_NAME:
		strcpy(s[2].tag, "a");
		break;
	case MUT_DIRTY_FREE_SLOT:
		s[5].offset = 4096;
		break;
	case MUT_HUGETLB_FLAG:
		h->flags |= POOL_F_HUGETLB;
		break;
	case MUT_GEN_IN_V1:
		gen_record(&s[5], "nvme0");
		h->version = 1;
		break;
	case MUT_GEN_PAGES:
		gen_record(&s[5], "nvme0");
		s[5].pages = 1;
		break;
	case MUT_GEN_FLAGS:
		gen_record(&s[5], "nvme0");
		s[5].gen_flags = 4;
		break;
	case MUT_GEN_ZERO:
		gen_record(&s[5], "nvme0");
		s[5].generation = 0;
		break;
	case MUT_GEN_TAG:
		gen_record(&s[5], "nvme0");
		strcpy(s[5].tag, "other");
		break;
	case MUT_GEN_TWICE:
		gen_record(&s[5], "nvme0");
		gen_record(&s[6], "nvme0");
		break;
	case MUT_COUNT:
		break;
	}
	if (rechecksum) /* structurally wrong but well checksummed: the checks must still refuse */
		h->checksum = pool_table_checksum(h, s, h->slot_count < 4096 ? h->slot_count : 64);
}

static void test_corrupted_table_rejected(void **state)
{
	(void)state;
	for (int mu = 0; mu < MUT_COUNT; mu++) {
		struct nvmk_dma_pool *pool;
		struct nvmk_dma_mem a, b, c;
		struct stat sb;
		uint8_t *p, *snap;
		uint64_t size;
		int fd;

		assert_int_equal(nvmk_dma_pool_create(64, 0, &pool), 0);
		assert_int_equal(nvmk_dma_alloc(pool, 4096, "nvme0", "a", &a), 0);
		assert_int_equal(nvmk_dma_alloc(pool, 8192, "nvme0", "b", &b), 0);
		assert_int_equal(nvmk_dma_alloc(pool, 4096, "nvme0", "c", &c), 0);
		fill(&b, 0x77);
		fd = simulate_exec(pool);
		assert_int_equal(fstat(fd, &sb), 0);
		size = (uint64_t)sb.st_size;
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		assert_true(p != MAP_FAILED);
		apply((enum mutation)mu, fd, p, size);
		assert_int_equal(fstat(fd, &sb), 0);
		snap = malloc((size_t)sb.st_size);
		assert_non_null(snap);
		assert_int_equal(pread(fd, snap, (size_t)sb.st_size, 0), sb.st_size);

		cap.len = 0;
		pool = NULL;
		print_message("mutation: %s\n", mutations[mu].name);
		assert_int_equal(nvmk_dma_pool_open(fd, &pool), mutations[mu].err);
		assert_null(pool);
		assert_true(logged("refusing inherited pool"));
		if (!logged(mutations[mu].why))
			fail_msg("%s: log does not say \"%s\": %s", mutations[mu].name,
				 mutations[mu].why, cap.text);
		/* touching nothing: every byte of the pool is as it was */
		assert_memory_equal(p, snap, size);
		/* and the fd is still the caller's */
		assert_true(fcntl(fd, F_GETFD) >= 0);
		free(snap);
		munmap(p, size);
		close(fd);
	}
}

/* ---- saved-state generation records, reclaim check and unclaim --------------------------- */

static void test_generations_and_unclaim(void **state)
{
	struct nvmk_dma_pool *pool;
	struct nvmk_dma_mem a, r, r2, mine;
	struct nvmk_dma_pool_stats st;
	struct pool_hdr *h;
	struct stat sb;
	uint64_t gen = 0, size = 0;
	bool restored = true;
	uint8_t *p;
	int fd;

	(void)state;
	assert_int_equal(nvmk_dma_pool_create(64, 0, &pool), 0);
	assert_int_equal(nvmk_dma_pool_gen_get(pool, "nvme0", &gen, &restored), -ENOENT);
	assert_int_equal(nvmk_dma_pool_gen_set(pool, "nvme0", 0, false), -EINVAL);
	assert_int_equal(nvmk_dma_pool_gen_set(pool, "nvme0", 3, false), 0);
	assert_int_equal(nvmk_dma_pool_gen_set(pool, "nvme1", 1, true), 0);
	assert_int_equal(nvmk_dma_pool_gen_set(pool, "nvme0", 2, false), -ESTALE); /* only up */
	assert_int_equal(nvmk_dma_pool_gen_set(pool, "nvme0", 4, false), 0);
	assert_int_equal(nvmk_dma_alloc(pool, 8192, "nvme0", "io1.sq", &a), 0);
	fill(&a, 0x31);
	/* records take no pages and are not counted as used slots */
	nvmk_dma_pool_get_stats(pool, &st);
	assert_int_equal(st.used_slots, 1);
	assert_int_equal(st.used_pages, 2);

	/* after exec: the records are there, the block waits */
	fd = simulate_exec(pool);
	assert_int_equal(nvmk_dma_pool_open(fd, &pool), 0);
	assert_int_equal(nvmk_dma_pool_gen_get(pool, "nvme0", &gen, &restored), 0);
	assert_int_equal(gen, 4);
	assert_false(restored);
	assert_int_equal(nvmk_dma_pool_gen_get(pool, "nvme1", &gen, &restored), 0);
	assert_int_equal(gen, 1);
	assert_true(restored);
	assert_int_equal(nvmk_dma_pool_gen_set(pool, "nvme0", 4, true), 0);
	assert_int_equal(nvmk_dma_pool_gen_get(pool, "nvme0", &gen, &restored), 0);
	assert_true(restored);

	/* checking a block claims nothing */
	assert_int_equal(nvmk_dma_reclaim_check(pool, "nvme0", "io1.sq", &size), 0);
	assert_int_equal(size, 8192);
	assert_int_equal(nvmk_dma_reclaim_check(pool, "nvme0", "io9.sq", NULL), -ENOENT);
	nvmk_dma_pool_get_stats(pool, &st);
	assert_int_equal(st.unclaimed_slots, 1);
	/* a claim undone can be made again, by a later restore */
	assert_int_equal(nvmk_dma_reclaim(pool, "nvme0", "io1.sq", &r), 0);
	assert_int_equal(nvmk_dma_reclaim_check(pool, "nvme0", "io1.sq", NULL), -EBUSY);
	assert_int_equal(nvmk_dma_unclaim(&r), 0);
	assert_null(r.vaddr);
	nvmk_dma_pool_get_stats(pool, &st);
	assert_int_equal(st.unclaimed_slots, 1);
	assert_int_equal(nvmk_dma_reclaim(pool, "nvme0", "io1.sq", &r2), 0);
	assert_true(check(&r2, 0x31));
	/* only reclaimed blocks can be unclaimed, and only once */
	assert_int_equal(nvmk_dma_alloc(pool, 4096, "nvme0", "mine", &mine), 0);
	cap.len = 0;
	assert_int_equal(nvmk_dma_unclaim(&mine), -EINVAL);
	assert_true(logged("was not reclaimed"));
	assert_int_equal(nvmk_dma_unclaim(&r), -EINVAL);
	assert_int_equal(nvmk_dma_pool_finish_restore(pool), 0);
	nvmk_dma_free(&mine);
	nvmk_dma_free(&r2);

	/* a format 1 table (no records) is still opened, and upgraded when the
	 * first record is written */
	fd = simulate_exec(pool);
	assert_int_equal(fstat(fd, &sb), 0);
	p = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	h = (struct pool_hdr *)p;
	assert_true(sizeof(*h) + (size_t)h->slot_count * sizeof(struct pool_slot) <=
		    (size_t)sb.st_size);
	for (uint32_t i = 0; i < h->slot_count; i++)
		memset((uint8_t *)p + sizeof(*h) + i * sizeof(struct pool_slot), 0,
		       sizeof(struct pool_slot));
	h->version = 1;
	h->checksum = pool_table_checksum(h, (struct pool_slot *)(p + sizeof(*h)), h->slot_count);
	assert_int_equal(nvmk_dma_pool_open(fd, &pool), 0);
	assert_int_equal(nvmk_dma_pool_gen_get(pool, "nvme0", &gen, &restored), -ENOENT);
	assert_int_equal(nvmk_dma_pool_gen_set(pool, "nvme0", 1, true), 0);
	assert_int_equal(h->version, POOL_FORMAT_VERSION_GEN);
	munmap(p, (size_t)sb.st_size);
	nvmk_dma_pool_destroy(pool);
}

static void test_not_a_pool_rejected(void **state)
{
	struct nvmk_dma_pool *pool = NULL;
	int fd;

	(void)state;
	fd = memfd_create("not-a-pool", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(nvmk_dma_pool_open(fd, &pool), -EBADMSG); /* empty */
	assert_int_equal(ftruncate(fd, 100), 0);
	assert_int_equal(nvmk_dma_pool_open(fd, &pool), -EBADMSG); /* under a page */
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	assert_int_equal(nvmk_dma_pool_open(fd, &pool), -EBADMSG); /* zeroes */
	assert_true(logged("bad magic"));
	assert_null(pool);
	close(fd);
	assert_int_equal(nvmk_dma_pool_open(-1, &pool), -EINVAL);
	assert_int_equal(nvmk_dma_pool_open(1000000, &pool), -EBADF);
}

/* ---- a real exec ------------------------------------------------------------------------ */

#define CHILD_ARG "--pool-exec-child"

/* Runs in the exec'd binary. Exit codes say which step failed. */
static int exec_child(const char *fdstr)
{
	struct nvmk_dma_slot_info info[2];
	struct nvmk_dma_mem asq, cq;
	struct nvmk_dma_pool *pool;
	int fd = atoi(fdstr);

	nvmk_log_set_sink(capture, &cap); /* expected errors (the leak) stay out of the output */
	if (fcntl(fd, F_GETFD) < 0)
		return 10; /* the fd did not survive exec */
	if (nvmk_dma_pool_open(fd, &pool))
		return 11;
	if (nvmk_dma_reclaim(pool, "0000:00:03.0", "asq", &asq))
		return 12;
	if (!check(&asq, 0x31))
		return 13;
	if (nvmk_dma_reclaim(pool, "0000:00:03.0", "io1.cq", &cq))
		return 14;
	if (!check(&cq, 0x32))
		return 15;
	/* "dropped" is left unreclaimed on purpose */
	if (nvmk_dma_pool_finish_restore(pool) != -EUCLEAN)
		return 16;
	if (nvmk_dma_pool_leaked(pool, info, 2) != 1 || strcmp(info[0].tag, "dropped") != 0)
		return 17;
	/* answer the parent through the shared memory */
	fill(&asq, 0xc3);
	nvmk_dma_pool_destroy(pool);
	return 0;
}

static void test_real_exec(void **state)
{
	struct nvmk_dma_mem asq, cq, dropped, r;
	struct nvmk_dma_pool *pool, *again;
	char fdstr[16];
	pid_t pid;
	int status, fd;

	(void)state;
	assert_int_equal(nvmk_dma_pool_create(64, NVMK_DMA_POOL_HUGETLB_TRY, &pool), 0);
	assert_int_equal(nvmk_dma_alloc(pool, 4096, "0000:00:03.0", "asq", &asq), 0);
	assert_int_equal(nvmk_dma_alloc(pool, 3 * 4096, "0000:00:03.0", "dropped", &dropped), 0);
	assert_int_equal(nvmk_dma_alloc(pool, 2 * 4096, "0000:00:03.0", "io1.cq", &cq), 0);
	fill(&asq, 0x31);
	fill(&cq, 0x32);
	fd = nvmk_dma_pool_fd(pool);
	snprintf(fdstr, sizeof(fdstr), "%d", fd);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* what servicing does: keep the pool fd open across exec */
		if (fcntl(fd, F_SETFD, 0) < 0)
			_exit(120);
		execl(self_exe, self_exe, CHILD_ARG, fdstr, (char *)NULL);
		_exit(121);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* the child wrote through its own mapping of the same memory */
	assert_true(check(&asq, 0xc3));
	assert_true(check(&cq, 0x32));

	/* the child's leak verdict is in the table a third process would read */
	assert_int_equal(nvmk_dma_pool_open(dup(fd), &again), 0);
	assert_int_equal(nvmk_dma_pool_leaked(again, NULL, 0), 1);
	assert_int_equal(nvmk_dma_reclaim(again, "0000:00:03.0", "dropped", &r), -ESTALE);
	assert_int_equal(nvmk_dma_reclaim(again, "0000:00:03.0", "asq", &r), 0);
	assert_int_equal(r.fd_offset, asq.fd_offset);
	nvmk_dma_pool_destroy(again);
	nvmk_dma_pool_destroy(pool);
}

/* ---- threads ---------------------------------------------------------------------------- */

#define THREADS 4
#define ROUNDS	300

static void *thread_body(void *arg)
{
	struct nvmk_dma_pool *pool = ((void **)arg)[0];
	long id = (long)((void **)arg)[1];
	struct nvmk_dma_mem m[4];
	char owner[16], tag[16];
	long bad = 0;

	snprintf(owner, sizeof(owner), "t%ld", id);
	for (int r = 0; r < ROUNDS; r++) {
		for (int k = 0; k < 4; k++) {
			snprintf(tag, sizeof(tag), "b%d", k);
			if (nvmk_dma_alloc(pool, (size_t)(k + 1) * 4096, owner, tag, &m[k])) {
				bad++;
				m[k].vaddr = NULL;
				continue;
			}
			if (!all_zero(&m[k]))
				bad++;
			fill(&m[k], (uint8_t)(id * 16 + k));
		}
		for (int k = 0; k < 4; k++) {
			if (!m[k].vaddr)
				continue;
			if (!check(&m[k], (uint8_t)(id * 16 + k)))
				bad++; /* another thread got overlapping pages */
			nvmk_dma_free(&m[k]);
		}
	}
	return (void *)bad;
}

static void test_threads(void **state)
{
	struct nvmk_dma_pool *pool;
	struct nvmk_dma_pool_stats st;
	pthread_t th[THREADS];
	void *args[THREADS][2];

	(void)state;
	/* 4 threads x 10 pages fit; the point is concurrent table updates */
	assert_int_equal(nvmk_dma_pool_create(64, 0, &pool), 0);
	for (long i = 0; i < THREADS; i++) {
		args[i][0] = pool;
		args[i][1] = (void *)i;
		assert_int_equal(pthread_create(&th[i], NULL, thread_body, args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		void *bad;

		assert_int_equal(pthread_join(th[i], &bad), 0);
		assert_int_equal((long)bad, 0);
	}
	nvmk_dma_pool_get_stats(pool, &st);
	assert_int_equal(st.used_slots, 0);
	assert_int_equal(st.free_pages, 64);
	/* the table is consistent: a successor accepts it */
	{
		int fd = simulate_exec(pool);

		assert_int_equal(nvmk_dma_pool_open(fd, &pool), 0);
		nvmk_dma_pool_destroy(pool);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create_and_stats, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hugetlb_try, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alloc_free_coalesce, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_double_free_ignored, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exhaustion, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slot_exhaustion, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_owner_tag_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_survives_simulated_exec, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_leak_detection, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corrupted_table_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_generations_and_unclaim, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_a_pool_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_real_exec, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	if (argc == 3 && strcmp(argv[1], CHILD_ARG) == 0)
		return exec_child(argv[2]);
	(void)argv;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
