/* SPDX-License-Identifier: MIT */
/* PRP walker unit tests (Base 2.0 4.1.1) against a fake DMA space. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "emu/prp.h"

#define BASE 0x100000ull
#define SIZE (64u * 4096u)
#define PS   4096u

static uint8_t *mem;

static void *fake_dma(void *ctx, uint64_t iova, size_t len, bool write)
{
	(void)ctx;
	(void)write;
	if (iova < BASE || iova - BASE > SIZE || len > SIZE - (iova - BASE))
		return NULL;
	return mem + (iova - BASE);
}

struct segs {
	unsigned n;
	uint64_t iova[64];
	size_t len[64];
	size_t total;
};

static uint16_t record(void *arg, void *host, size_t len)
{
	struct segs *s = arg;

	if (s->n < 64) {
		s->iova[s->n] = BASE + (uint64_t)((uint8_t *)host - mem);
		s->len[s->n] = len;
	}
	s->n++;
	s->total += len;
	return 0;
}

static const struct emu_prp_ctx ctx = {.dma = fake_dma, .page_size = PS};

static uint64_t pg(unsigned i)
{
	return BASE + (uint64_t)i * PS;
}

static uint64_t *list_at(uint64_t iova)
{
	return (uint64_t *)(mem + (iova - BASE));
}

static int setup(void **state)
{
	(void)state;
	mem = calloc(1, SIZE);
	return mem ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(mem);
	return 0;
}

static void test_single_page_with_offset(void **state)
{
	struct segs s = {0};

	(void)state;
	assert_int_equal(emu_prp_walk(&ctx, pg(1) + 512, 0, 1024, record, &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.iova[0], pg(1) + 512);
	assert_int_equal(s.len[0], 1024);
}

static void test_two_pages_prp2_data(void **state)
{
	struct segs s = {0};

	(void)state;
	assert_int_equal(emu_prp_walk(&ctx, pg(1) + 3072, pg(7), 2048, record, &s), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.len[0], 1024);
	assert_int_equal(s.iova[1], pg(7));
	assert_int_equal(s.len[1], 1024);
	/* PRP2 used as a data pointer must be page aligned. */
	assert_int_equal(emu_prp_walk(&ctx, pg(1) + 3072, pg(7) + 8, 2048, record, &s),
			 NVME_SF(NVME_SCT_GENERIC, NVME_SC_PRP_INVALID_OFFSET));
}

static void test_list(void **state)
{
	struct segs s = {0};
	uint64_t *l = list_at(pg(10));

	(void)state;
	l[0] = pg(20);
	l[1] = pg(21);
	l[2] = pg(22);
	assert_int_equal(emu_prp_walk(&ctx, pg(2), pg(10), 4 * PS - 100, record, &s), 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.iova[1], pg(20));
	assert_int_equal(s.iova[3], pg(22));
	assert_int_equal(s.len[3], PS - 100);
	assert_int_equal(s.total, 4 * PS - 100);
}

static void test_list_with_offset_and_chain(void **state)
{
	struct segs s = {0};
	/* List starts 16 bytes before the end of page 11: two entries, the last
	 * one chains to page 12. */
	uint64_t start = pg(11) + PS - 16;
	uint64_t *a = list_at(start), *b = list_at(pg(12));

	(void)state;
	a[0] = pg(30);
	a[1] = pg(12); /* chain */
	b[0] = pg(31);
	b[1] = pg(32);
	assert_int_equal(emu_prp_walk(&ctx, pg(3), start, 4 * PS, record, &s), 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.iova[1], pg(30));
	assert_int_equal(s.iova[2], pg(31));
	assert_int_equal(s.iova[3], pg(32));
}

static void test_full_list_page_chain(void **state)
{
	struct segs s = {0};
	uint64_t *a = list_at(pg(13)), *b = list_at(pg(14));
	const unsigned per = PS / 8;

	(void)state;
	/* 1 + (per - 1) + 2 data pages: the first list page is full and chains. */
	for (unsigned i = 0; i < per - 1; i++)
		a[i] = pg(40 + (i % 8));
	a[per - 1] = pg(14);
	b[0] = pg(50);
	b[1] = pg(51);
	assert_int_equal(emu_prp_walk(&ctx, pg(4), pg(13), (uint64_t)(per + 2) * PS, record, &s),
			 0);
	assert_int_equal(s.n, per + 2);
	assert_int_equal(s.total, (size_t)(per + 2) * PS);
}

static void test_errors(void **state)
{
	struct segs s = {0};
	uint64_t *l = list_at(pg(15));
	const uint16_t bad_off = NVME_SF(NVME_SCT_GENERIC, NVME_SC_PRP_INVALID_OFFSET);
	const uint16_t xfer = NVME_SF(NVME_SCT_GENERIC, NVME_SC_DATA_XFER_ERROR);

	(void)state;
	/* PRP1 not dword aligned. */
	assert_int_equal(emu_prp_walk(&ctx, pg(1) + 2, 0, 16, record, &s), bad_off);
	/* Translation failure. */
	assert_int_equal(emu_prp_walk(&ctx, 0x10, 0, 16, record, &s), xfer);
	assert_int_equal(emu_prp_walk(&ctx, pg(1), 0xdead000, 2 * PS, record, &s), xfer);
	/* List pointer not dword aligned. */
	assert_int_equal(emu_prp_walk(&ctx, pg(1), pg(15) + 2, 3 * PS, record, &s), bad_off);
	/* List data entry with a page offset. */
	l[0] = pg(20) + 8;
	l[1] = pg(21);
	assert_int_equal(emu_prp_walk(&ctx, pg(1), pg(15), 3 * PS, record, &s), bad_off);
	/* List pointing into unmapped space. */
	l[0] = 0x7000000;
	assert_int_equal(emu_prp_walk(&ctx, pg(1), pg(15), 3 * PS, record, &s), xfer);
}

static void test_self_chain_terminates(void **state)
{
	struct segs s = {0};
	uint64_t last = pg(16) + PS - 8;

	(void)state;
	/* The only entry of the list is a chain pointer to itself. */
	*list_at(last) = last;
	assert_int_equal(emu_prp_walk(&ctx, pg(1), last, 8 * PS, record, &s),
			 NVME_SF(NVME_SCT_GENERIC, NVME_SC_PRP_INVALID_OFFSET));
}

static uint16_t stop_second(void *arg, void *host, size_t len)
{
	unsigned *n = arg;

	(void)host;
	(void)len;
	return ++*n == 2 ? NVME_SF(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULT) : 0;
}

static void test_callback_status_stops_walk(void **state)
{
	unsigned n = 0;

	(void)state;
	assert_int_equal(emu_prp_walk(&ctx, pg(1), pg(2), 2 * PS, stop_second, &n),
			 NVME_SF(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULT));
	assert_int_equal(n, 2);
	assert_int_equal(emu_prp_walk(&ctx, pg(1), 0, 0, stop_second, &n), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_page_with_offset),
	    cmocka_unit_test(test_two_pages_prp2_data),
	    cmocka_unit_test(test_list),
	    cmocka_unit_test(test_list_with_offset_and_chain),
	    cmocka_unit_test(test_full_list_page_chain),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_self_chain_terminates),
	    cmocka_unit_test(test_callback_status_stops_walk),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
