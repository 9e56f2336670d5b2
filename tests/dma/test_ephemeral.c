/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nvmekeep/dma.h"

static bool all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

static void test_size_rounded_and_zeroed(void **state)
{
	static const size_t sizes[] = {1, 4095, 4096, 4097, 3 * 4096 + 5, 1 << 20};
	static const size_t want[] = {4096, 4096, 4096, 8192, 4 * 4096, 1 << 20};

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct nvmk_dma_mem m;
		struct stat st;

		memset(&m, 0xa5, sizeof(m));
		assert_int_equal(nvmk_dma_alloc(NULL, sizes[i], NULL, NULL, &m), 0);
		assert_non_null(m.vaddr);
		assert_int_equal((uintptr_t)m.vaddr % NVMK_DMA_PAGE_SIZE, 0);
		assert_int_equal(m.size, want[i]);
		assert_true(m.fd >= 0);
		assert_int_equal(m.fd_offset, 0);
		assert_null(m.pool);
		assert_true(all_zero(m.vaddr, m.size));
		/* the fd holds exactly the block */
		assert_int_equal(fstat(m.fd, &st), 0);
		assert_int_equal((size_t)st.st_size, want[i]);
		nvmk_dma_free(&m);
		assert_null(m.vaddr);
		assert_int_equal(m.fd, -1);
	}
}

static void test_fd_is_cloexec_and_shares_memory(void **state)
{
	struct nvmk_dma_mem m;
	uint8_t *other;
	int flags;

	(void)state;
	assert_int_equal(nvmk_dma_alloc(NULL, 2 * 4096, "dev", "asq", &m), 0);
	flags = fcntl(m.fd, F_GETFD);
	assert_true(flags >= 0);
	assert_true(flags & FD_CLOEXEC);

	/* A second mapping of the fd (what a vfio-user server does) sees the same bytes. */
	other = mmap(NULL, m.size, PROT_READ | PROT_WRITE, MAP_SHARED, m.fd, 0);
	assert_true(other != MAP_FAILED);
	memset(m.vaddr, 0x5a, m.size);
	((uint8_t *)m.vaddr)[4096 + 17] = 0x11;
	assert_int_equal(other[0], 0x5a);
	assert_int_equal(other[4096 + 17], 0x11);
	other[8191] = 0x77;
	assert_int_equal(((uint8_t *)m.vaddr)[8191], 0x77);
	munmap(other, m.size);
	nvmk_dma_free(&m);
}

static void test_populate(void **state)
{
	struct nvmk_dma_mem m;
	unsigned char vec[16];

	(void)state;
	assert_int_equal(nvmk_dma_alloc_ephemeral(16 * 4096, NVMK_DMA_POPULATE, &m), 0);
	assert_int_equal(m.size, 16 * 4096);
	/* MAP_POPULATE faulted every page in before we touched any. */
	assert_int_equal(mincore(m.vaddr, m.size, vec), 0);
	for (int i = 0; i < 16; i++)
		assert_true(vec[i] & 1);
	assert_true(all_zero(m.vaddr, m.size));
	nvmk_dma_free(&m);
}

static void test_blocks_are_independent(void **state)
{
	struct nvmk_dma_mem a, b;

	(void)state;
	assert_int_equal(nvmk_dma_alloc(NULL, 4096, NULL, NULL, &a), 0);
	assert_int_equal(nvmk_dma_alloc(NULL, 4096, NULL, NULL, &b), 0);
	assert_int_not_equal(a.fd, b.fd);
	assert_ptr_not_equal(a.vaddr, b.vaddr);
	memset(a.vaddr, 0xff, a.size);
	assert_true(all_zero(b.vaddr, b.size));
	nvmk_dma_free(&a);
	/* freeing a leaves b usable */
	memset(b.vaddr, 1, b.size);
	assert_int_equal(((uint8_t *)b.vaddr)[4095], 1);
	nvmk_dma_free(&b);
}

static void test_invalid_arguments(void **state)
{
	struct nvmk_dma_mem m;

	(void)state;
	assert_int_equal(nvmk_dma_alloc(NULL, 0, NULL, NULL, &m), -EINVAL);
	assert_int_equal(nvmk_dma_alloc(NULL, 4096, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(nvmk_dma_alloc(NULL, SIZE_MAX, NULL, NULL, &m), -EINVAL);
	assert_int_equal(nvmk_dma_alloc(NULL, SIZE_MAX - 4000, NULL, NULL, &m), -EINVAL);
	assert_int_equal(nvmk_dma_alloc_ephemeral(4096, 0x80, &m), -EINVAL);
	/* freeing NULL or an already freed block is harmless */
	nvmk_dma_free(NULL);
	assert_int_equal(nvmk_dma_alloc(NULL, 4096, NULL, NULL, &m), 0);
	nvmk_dma_free(&m);
	nvmk_dma_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_size_rounded_and_zeroed),
	    cmocka_unit_test(test_fd_is_cloexec_and_shares_memory),
	    cmocka_unit_test(test_populate),
	    cmocka_unit_test(test_blocks_are_independent),
	    cmocka_unit_test(test_invalid_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
