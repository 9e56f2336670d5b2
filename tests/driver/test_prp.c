// SPDX-License-Identifier: MIT
/* PRP builder: PRP1/PRP2/list/chained list at every boundary, iovec rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driver/prp.h"

#define LIST_PAGES 4
#define BASE	   0x100000000ull /* data IOVA */
#define LISTBASE   0x200000000ull /* list page i at LISTBASE + i * 0x10000 (not contiguous) */

static uint64_t list_mem[LIST_PAGES * DRV_PRP_PER_PAGE];
static uint64_t list_iova[LIST_PAGES];
static struct drv_prp_list list = {list_mem, list_iova, LIST_PAGES};

static void reset_list(unsigned npages)
{
	memset(list_mem, 0xa5, sizeof(list_mem));
	for (unsigned i = 0; i < LIST_PAGES; i++)
		list_iova[i] = LISTBASE + i * 0x10000ull;
	list.npages = npages;
}

/* Walk the PRPs as a controller would and return the page addresses in
 * order; checks list pointer alignment and chaining. */
static unsigned walk(uint64_t prp1, uint64_t prp2, uint64_t len, uint64_t *out, unsigned max)
{
	unsigned n = 0;
	uint64_t first = DRV_PAGE_SIZE - (prp1 & DRV_PAGE_MASK);
	uint64_t pages;

	out[n++] = prp1;
	if (len <= first)
		return n;
	pages = (len - first + DRV_PAGE_MASK) / DRV_PAGE_SIZE;
	if (pages == 1) {
		assert_int_equal(prp2 & DRV_PAGE_MASK, 0);
		out[n++] = prp2;
		return n;
	}
	/* list */
	uint64_t cur = prp2;
	unsigned slot = 0;
	while (pages) {
		unsigned pi = LIST_PAGES;
		for (unsigned i = 0; i < LIST_PAGES; i++)
			if (cur == list_iova[i])
				pi = i;
		assert_true(pi < LIST_PAGES);
		uint64_t e = list_mem[pi * DRV_PRP_PER_PAGE + slot];
		if (slot == DRV_PRP_PER_PAGE - 1 && pages > 1) {
			cur = e;
			slot = 0;
			continue;
		}
		assert_int_equal(e & DRV_PAGE_MASK, 0);
		assert_true(n < max);
		out[n++] = e;
		slot++;
		pages--;
	}
	return n;
}

static void check_contig(uint64_t iova, uint64_t len, unsigned npages)
{
	uint64_t prp1 = 1, prp2 = 1;
	uint64_t pages[LIST_PAGES * DRV_PRP_PER_PAGE + 2];
	unsigned n;

	reset_list(npages);
	assert_int_equal(drv_prp_build_contig(iova, len, &list, &prp1, &prp2), 0);
	assert_int_equal(prp1, iova);
	if (drv_prp_npages(iova, len) == 1)
		assert_int_equal(prp2, 0);
	n = walk(prp1, prp2, len, pages, sizeof(pages) / sizeof(pages[0]));
	assert_int_equal(n, drv_prp_npages(iova, len));
	for (unsigned i = 1; i < n; i++)
		assert_int_equal(pages[i], (iova & ~(uint64_t)DRV_PAGE_MASK) + i * DRV_PAGE_SIZE);
}

static void test_one_page(void **state)
{
	(void)state;
	check_contig(BASE, 512, 1);
	check_contig(BASE, 4096, 1);
	check_contig(BASE + 4092, 4, 1);
	check_contig(BASE + 512, 3584, 1);
}

static void test_two_pages(void **state)
{
	(void)state;
	check_contig(BASE, 4097, 1);
	check_contig(BASE, 8192, 1);
	check_contig(BASE + 4092, 8, 1);
	check_contig(BASE + 512, 8192 - 512, 1);
	check_contig(BASE + 512, 4096, 1);
}

static void test_list(void **state)
{
	(void)state;
	check_contig(BASE, 8193, 1);		  /* 3 pages: smallest list */
	check_contig(BASE + 512, 8192, 1);	  /* 3 pages from offset */
	check_contig(BASE, 128 * 1024, 1);	  /* 32 pages */
	check_contig(BASE, 513 * 4096ull, 1);	  /* 513 pages: exactly one full list page */
	check_contig(BASE + 8, 512 * 4096ull, 1); /* 513 pages with offset */
}

static void test_chained(void **state)
{
	uint64_t p1, p2;

	(void)state;
	/* 514 pages: 513 list entries -> 511 + chain, then 2 */
	check_contig(BASE, 514 * 4096ull, 2);
	/* exactly two full list pages: 1 + 511 + 512 = 1024 pages */
	check_contig(BASE, 1024 * 4096ull, 2);
	/* one more needs a third page */
	check_contig(BASE, 1025 * 4096ull, 3);
	/* list space too small */
	reset_list(1);
	assert_int_equal(drv_prp_build_contig(BASE, 514 * 4096ull, &list, &p1, &p2), -E2BIG);
	reset_list(2);
	assert_int_equal(drv_prp_build_contig(BASE, 1025 * 4096ull, &list, &p1, &p2), -E2BIG);
}

static void test_bad_args(void **state)
{
	uint64_t p1, p2;

	(void)state;
	reset_list(1);
	assert_int_equal(drv_prp_build_contig(BASE + 2, 512, &list, &p1, &p2), -EINVAL);
	assert_int_equal(drv_prp_build_contig(BASE, 0, &list, &p1, &p2), -EINVAL);
	assert_int_equal(drv_prp_build_contig(BASE, 3 * 4096, NULL, &p1, &p2), -E2BIG);
}

static void test_segs(void **state)
{
	uint64_t p1, p2, pages[64];
	unsigned n;

	(void)state;
	/* first starts mid page and ends on a boundary, middle whole pages, last
	 * starts on a boundary and ends anywhere */
	struct drv_prp_seg s[3] = {
	    {BASE + 0x800, 0x800},
	    {BASE + 0x10000, 0x2000},
	    {BASE + 0x40000, 0x200},
	};
	reset_list(1);
	assert_int_equal(drv_prp_build_segs(s, 3, &list, &p1, &p2), 0);
	assert_int_equal(p1, BASE + 0x800);
	n = walk(p1, p2, 0x800 + 0x2000 + 0x200, pages, 64);
	assert_int_equal(n, 4);
	assert_int_equal(pages[1], BASE + 0x10000);
	assert_int_equal(pages[2], BASE + 0x11000);
	assert_int_equal(pages[3], BASE + 0x40000);

	/* two segments -> PRP2 direct */
	struct drv_prp_seg t[2] = {{BASE + 0x800, 0x800}, {BASE + 0x9000, 0x100}};
	assert_int_equal(drv_prp_build_segs(t, 2, &list, &p1, &p2), 0);
	assert_int_equal(p1, BASE + 0x800);
	assert_int_equal(p2, BASE + 0x9000);

	/* single segment equals contig */
	struct drv_prp_seg u = {BASE + 0x200, 3 * 4096};
	assert_int_equal(drv_prp_build_segs(&u, 1, &list, &p1, &p2), 0);
	assert_int_equal(p2, list_iova[0]);
	assert_int_equal(list_mem[0], BASE + 0x1000);
	assert_int_equal(list_mem[2], BASE + 0x3000);
}

static void test_segs_rules(void **state)
{
	uint64_t p1, p2;

	(void)state;
	reset_list(1);
	/* middle element not page aligned */
	struct drv_prp_seg a[3] = {
	    {BASE, 0x1000}, {BASE + 0x10200, 0x1000}, {BASE + 0x20000, 0x10}};
	assert_int_equal(drv_prp_build_segs(a, 3, &list, &p1, &p2), -EINVAL);
	/* first element does not end on a page boundary */
	struct drv_prp_seg b[2] = {{BASE, 0x800}, {BASE + 0x10000, 0x1000}};
	assert_int_equal(drv_prp_build_segs(b, 2, &list, &p1, &p2), -EINVAL);
	/* last element does not start on a page boundary */
	struct drv_prp_seg c[2] = {{BASE, 0x1000}, {BASE + 0x10010, 0x100}};
	assert_int_equal(drv_prp_build_segs(c, 2, &list, &p1, &p2), -EINVAL);
	/* empty element, no elements, misaligned dword */
	struct drv_prp_seg d[2] = {{BASE, 0x1000}, {BASE + 0x10000, 0}};
	assert_int_equal(drv_prp_build_segs(d, 2, &list, &p1, &p2), -EINVAL);
	assert_int_equal(drv_prp_build_segs(d, 0, &list, &p1, &p2), -EINVAL);
	struct drv_prp_seg e = {BASE + 1, 0x10};
	assert_int_equal(drv_prp_build_segs(&e, 1, &list, &p1, &p2), -EINVAL);
	/* many single-page segments needing a chained list */
	static struct drv_prp_seg many[600];
	for (unsigned i = 0; i < 600; i++)
		many[i] = (struct drv_prp_seg){BASE + i * 0x3000ull, 0x1000};
	assert_int_equal(drv_prp_build_segs(many, 600, &list, &p1, &p2), -E2BIG);
	reset_list(2);
	assert_int_equal(drv_prp_build_segs(many, 600, &list, &p1, &p2), 0);
	uint64_t pages[600];
	assert_int_equal(walk(p1, p2, 600 * 4096ull, pages, 600), 600);
	for (unsigned i = 0; i < 600; i++)
		assert_int_equal(pages[i], BASE + i * 0x3000ull);
}

static void test_pages(void **state)
{
	uint64_t piova[8], p1, p2, pages[16];

	(void)state;
	for (unsigned i = 0; i < 8; i++)
		piova[i] = 0x700000000ull + (7 - i) * 0x5000ull; /* scattered, descending */
	reset_list(1);
	assert_int_equal(drv_prp_build_pages(piova, 0x1100, 0x3000, &list, &p1, &p2), 0);
	assert_int_equal(p1, piova[1] + 0x100);
	assert_int_equal(walk(p1, p2, 0x3000, pages, 16), 4);
	for (unsigned i = 1; i < 4; i++)
		assert_int_equal(pages[i], piova[1 + i]);
	assert_int_equal(drv_prp_build_pages(piova, 0x2000, 0x1000, &list, &p1, &p2), 0);
	assert_int_equal(p1, piova[2]);
	assert_int_equal(p2, 0);
	assert_int_equal(drv_prp_build_pages(piova, 0x2ff0, 0x20, &list, &p1, &p2), 0);
	assert_int_equal(p2, piova[3]);
}

static void test_buf(void **state)
{
	struct nvmk_dma_buf buf = {.mem = {.size = 16384}, .iova = BASE};
	uint64_t p1, p2;

	(void)state;
	reset_list(1);
	assert_int_equal(drv_prp_build_buf(&buf, 4096, 8192, &list, &p1, &p2), 0);
	assert_int_equal(p1, BASE + 4096);
	assert_int_equal(p2, BASE + 8192);
	/* beyond the block */
	assert_int_equal(drv_prp_build_buf(&buf, 12288, 8192, &list, &p1, &p2), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_page),   cmocka_unit_test(test_two_pages),
	    cmocka_unit_test(test_list),       cmocka_unit_test(test_chained),
	    cmocka_unit_test(test_bad_args),   cmocka_unit_test(test_segs),
	    cmocka_unit_test(test_segs_rules), cmocka_unit_test(test_pages),
	    cmocka_unit_test(test_buf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
