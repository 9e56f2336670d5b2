// SPDX-License-Identifier: MIT
/* Backing layer: DMA alloc/map, the IOVA registry behind nvmk_backing_iova,
 * and the local backing's IOVA space (never equal to host addresses). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backing/registry.h"
#include "nvmekeep/backing.h"
#include "nvmekeep/emu.h"

static void test_registry(void **state)
{
	struct bk_registry r = BK_REGISTRY_INIT;
	struct bk_range out;
	int owner;

	(void)state;
	assert_int_equal(bk_registry_add(&r, &(struct bk_range){0x3000, 0x1000, &owner, 7, NULL}),
			 0);
	assert_int_equal(bk_registry_add(&r, &(struct bk_range){0x1000, 0x1000, &owner, 5, NULL}),
			 0);
	assert_int_equal(bk_registry_add(&r, &(struct bk_range){0x5000, 0x2000, &owner, 9, NULL}),
			 0);
	/* overlaps on either side are refused */
	assert_int_equal(bk_registry_add(&r, &(struct bk_range){0x1800, 0x100, &owner, 0, NULL}),
			 -EEXIST);
	assert_int_equal(bk_registry_add(&r, &(struct bk_range){0x2800, 0x1000, &owner, 0, NULL}),
			 -EEXIST);
	assert_int_equal(bk_registry_add(&r, &(struct bk_range){0x100, 0, &owner, 0, NULL}),
			 -EINVAL);
	assert_int_equal(bk_registry_find(&r, 0x3fff, &out), 0);
	assert_int_equal(out.target, 7);
	assert_int_equal(bk_registry_find(&r, 0x6000, &out), 0);
	assert_int_equal(out.target, 9);
	assert_int_equal(bk_registry_find(&r, 0x4000, &out), -EFAULT);
	assert_int_equal(bk_registry_find(&r, 0xfff, &out), -EFAULT);
	assert_int_equal(bk_registry_find(&r, 0x7000, &out), -EFAULT);
	assert_int_equal(bk_registry_remove(&r, 0x3000, &owner), 0);
	assert_int_equal(bk_registry_find(&r, 0x3000, &out), -EFAULT);
	assert_int_equal(bk_registry_remove(&r, 0x3000, &owner), -ENOENT);
	assert_int_equal(bk_registry_remove_owner(&r, &owner), 2);
	assert_int_equal(bk_registry_find(&r, 0x1000, &out), -EFAULT);
	bk_registry_fini(&r);
}

static void test_local_dma(void **state)
{
	struct nvmk_emu_config cfg;
	struct nvmk_backing *b, *b2;
	struct nvmk_emu *emu;
	struct nvmk_dma_buf x, y, z;
	uint64_t iova;
	size_t contig;

	(void)state;
	nvmk_emu_config_default(&cfg);
	cfg.name = "emu-bk";
	assert_int_equal(nvmk_backing_local_create(&cfg, &b, &emu), 0);
	cfg.name = "emu-bk2";
	assert_int_equal(nvmk_backing_local_create(&cfg, &b2, NULL), 0);
	assert_null(b->bar0);
	assert_string_equal(b->ops->kind, "local");
	assert_int_equal(nvmk_backing_dma_alloc(b, 5000, "x", &x), 0);
	assert_int_equal(nvmk_backing_dma_alloc(b, 4096, "y", &y), 0);
	assert_int_equal(nvmk_backing_dma_alloc(b2, 4096, "z", &z), 0);
	assert_int_equal(x.mem.size, 8192);
	assert_true(x.iova >= 0x100000000ull);
	assert_int_not_equal(x.iova, (uintptr_t)x.mem.vaddr);
	assert_int_equal(x.iova & 4095, 0);
	/* blocks do not touch in IOVA space */
	assert_true(y.iova >= x.iova + x.mem.size + 4096 || x.iova >= y.iova + y.mem.size + 4096);

	assert_int_equal(nvmk_backing_iova(b, (char *)x.mem.vaddr + 100, &iova, &contig), 0);
	assert_int_equal(iova, x.iova + 100);
	assert_int_equal(contig, 8192 - 100);
	/* memory of another backing, or plain memory, is not ours */
	assert_int_equal(nvmk_backing_iova(b, z.mem.vaddr, &iova, &contig), -EFAULT);
	assert_int_equal(nvmk_backing_iova(b, &iova, &iova, &contig), -EFAULT);
	assert_int_equal(nvmk_backing_iova(b2, z.mem.vaddr, &iova, &contig), 0);

	/* irq vectors are eventfds */
	assert_true(b->ops->irq_count(b) >= 2);
	assert_int_equal(b->ops->irq_enable(b, 2), 0);
	assert_true(b->ops->irq_fd(b, 1) >= 0);
	assert_int_equal(b->ops->irq_fd(b, 2), -1);
	b->ops->irq_disable(b);
	assert_int_equal(b->ops->irq_fd(b, 0), -1);

	/* registers reach the emulator; reset leaves it disabled */
	assert_int_equal(nvmk_backing_read64(b, NVME_REG_CAP),
			 nvmk_emu_reg_read64(emu, NVME_REG_CAP));
	assert_int_equal(b->ops->reset(b), 0);
	assert_int_equal(nvmk_backing_read32(b, NVME_REG_CSTS) & NVME_CSTS_RDY, 0);

	void *xv = x.mem.vaddr;
	nvmk_backing_dma_free(b, &x);
	assert_null(x.mem.vaddr);
	assert_int_equal(nvmk_backing_iova(b, xv, &iova, &contig), -EFAULT);
	nvmk_backing_dma_free(b, &y);
	nvmk_backing_dma_free(b2, &z);
	nvmk_backing_destroy(b);
	nvmk_backing_destroy(b2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_registry),
	    cmocka_unit_test(test_local_dma),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
