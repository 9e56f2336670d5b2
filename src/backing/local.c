// SPDX-License-Identifier: MIT
/*
 * Local backing: the in-process emulator as a device.
 *
 * Device addresses are handed out by a bump allocator starting at 4 GiB
 * (0x1_0000_0000), with a one-page hole after each block, so that an IOVA is
 * never equal to the host address and a driver that confuses the two, or
 * overruns a block, makes the emulator's translation fail instead of
 * silently working. The emulator translates IOVAs with this backing's
 * registry keyed by IOVA (see registry.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "backing/registry.h"
#include "nvmekeep/backing.h"
#include "nvmekeep/emu.h"
#include "nvmekeep/log.h"

#define LOCAL_IOVA_BASE	  0x100000000ull
#define LOCAL_MAX_VECTORS 2048

struct local_backing {
	struct nvmk_backing b;
	struct nvmk_emu *emu;
	struct bk_registry iova_reg; /* IOVA -> host address */
	pthread_mutex_t iova_lock;   /* guards next_iova */
	uint64_t next_iova;
	unsigned nvec;
	int *irq_fds;
};

static struct local_backing *to_local(struct nvmk_backing *b)
{
	return (struct local_backing *)b;
}

/* Emulator worker thread: translate [iova, iova + len) to a host pointer. */
static void *local_dma_translate(void *ctx, uint64_t iova, size_t len, bool write)
{
	struct local_backing *lb = ctx;
	struct bk_range r;

	(void)write;
	if (len == 0 || bk_registry_find(&lb->iova_reg, iova, &r))
		return NULL;
	if (iova - r.start + len > r.len || iova + len < iova)
		return NULL;
	return (void *)(uintptr_t)(r.target + (iova - r.start));
}

static uint32_t local_read32(struct nvmk_backing *b, uint32_t off)
{
	return nvmk_emu_reg_read32(to_local(b)->emu, off);
}

static uint64_t local_read64(struct nvmk_backing *b, uint32_t off)
{
	return nvmk_emu_reg_read64(to_local(b)->emu, off);
}

static void local_write32(struct nvmk_backing *b, uint32_t off, uint32_t val)
{
	nvmk_emu_reg_write32(to_local(b)->emu, off, val);
}

static void local_write64(struct nvmk_backing *b, uint32_t off, uint64_t val)
{
	nvmk_emu_reg_write64(to_local(b)->emu, off, val);
}

static int local_dma_map(struct nvmk_backing *b, struct nvmk_dma_buf *buf)
{
	struct local_backing *lb = to_local(b);
	struct bk_range r;
	uint64_t iova;
	int rc;

	if (!buf->mem.vaddr || buf->mem.size == 0)
		return -EINVAL;
	pthread_mutex_lock(&lb->iova_lock);
	iova = lb->next_iova;
	lb->next_iova += buf->mem.size + NVMK_DMA_PAGE_SIZE;
	pthread_mutex_unlock(&lb->iova_lock);

	r = (struct bk_range){
	    .start = iova, .len = buf->mem.size, .owner = lb, .target = (uintptr_t)buf->mem.vaddr};
	rc = bk_registry_add(&lb->iova_reg, &r);
	if (rc)
		return rc;
	buf->iova = iova;
	buf->page_iova = NULL;
	return 0;
}

static void local_dma_unmap(struct nvmk_backing *b, struct nvmk_dma_buf *buf)
{
	struct local_backing *lb = to_local(b);

	if (bk_registry_remove(&lb->iova_reg, buf->iova, lb))
		nvmk_warn(b->name, NVMK_LOG_NOQ, "unmap of unknown IOVA 0x%llx",
			  (unsigned long long)buf->iova);
}

/* Servicing: point the IOVA at the block's new host address in one step
 * (the emulator may be translating it right now). */
static int local_dma_remap(struct nvmk_backing *b, struct nvmk_dma_buf *buf)
{
	struct local_backing *lb = to_local(b);
	struct bk_range r;
	int rc;

	if (!buf->mem.vaddr || buf->mem.size == 0)
		return -EINVAL;
	rc = bk_registry_retarget(&lb->iova_reg, buf->iova, buf->mem.size, lb,
				  (uintptr_t)buf->mem.vaddr);
	if (rc != -ENOENT)
		return rc;
	/* not mapped (any more): map it at the address the device knows */
	r = (struct bk_range){
	    .start = buf->iova, .len = buf->mem.size, .owner = lb, .target = (uintptr_t)buf->mem.vaddr};
	rc = bk_registry_add(&lb->iova_reg, &r);
	if (rc)
		return rc;
	pthread_mutex_lock(&lb->iova_lock);
	if (lb->next_iova < buf->iova + buf->mem.size + NVMK_DMA_PAGE_SIZE)
		lb->next_iova = buf->iova + buf->mem.size + NVMK_DMA_PAGE_SIZE;
	pthread_mutex_unlock(&lb->iova_lock);
	buf->page_iova = NULL;
	return 0;
}

static unsigned local_irq_count(struct nvmk_backing *b)
{
	return nvmk_emu_irq_count(to_local(b)->emu);
}

static void local_irq_disable(struct nvmk_backing *b)
{
	struct local_backing *lb = to_local(b);

	for (unsigned v = 0; v < lb->nvec; v++) {
		nvmk_emu_set_irq_fd(lb->emu, (uint16_t)v, -1);
		if (lb->irq_fds[v] >= 0)
			close(lb->irq_fds[v]);
	}
	free(lb->irq_fds);
	lb->irq_fds = NULL;
	lb->nvec = 0;
}

static int local_irq_enable(struct nvmk_backing *b, unsigned nvec)
{
	struct local_backing *lb = to_local(b);
	int rc;

	if (nvec == 0 || nvec > local_irq_count(b) || nvec > LOCAL_MAX_VECTORS)
		return -EINVAL;
	local_irq_disable(b);
	lb->irq_fds = malloc(nvec * sizeof(int));
	if (!lb->irq_fds)
		return -ENOMEM;
	for (unsigned v = 0; v < nvec; v++)
		lb->irq_fds[v] = -1;
	lb->nvec = nvec;
	for (unsigned v = 0; v < nvec; v++) {
		lb->irq_fds[v] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (lb->irq_fds[v] < 0) {
			rc = -errno;
			goto fail;
		}
		rc = nvmk_emu_set_irq_fd(lb->emu, (uint16_t)v, lb->irq_fds[v]);
		if (rc)
			goto fail;
	}
	return 0;
fail:
	nvmk_err(b->name, NVMK_LOG_NOQ, "enabling %u interrupt vectors failed: %d", nvec, rc);
	local_irq_disable(b);
	return rc;
}

static int local_irq_fd(struct nvmk_backing *b, unsigned vector)
{
	struct local_backing *lb = to_local(b);

	if (vector >= lb->nvec)
		return -1;
	return lb->irq_fds[vector];
}

/* The closest thing to a function reset the emulator has: CC.EN = 0 and wait
 * for CSTS.RDY = 0 (Base 2.0 3.7.2), bounded by CAP.TO. */
static int local_reset(struct nvmk_backing *b)
{
	struct local_backing *lb = to_local(b);
	uint64_t cap = nvmk_emu_reg_read64(lb->emu, NVME_REG_CAP);
	unsigned to = NVME_CAP_TO(cap) ? NVME_CAP_TO(cap) : 1;
	struct timespec ts = {0, 1000000};

	nvmk_emu_reg_write32(lb->emu, NVME_REG_CC, 0);
	for (unsigned ms = 0; ms <= to * 500u; ms++) {
		uint32_t csts = nvmk_emu_reg_read32(lb->emu, NVME_REG_CSTS);

		if (csts == 0xffffffffu)
			return -ENODEV;
		if (!(csts & NVME_CSTS_RDY))
			return 0;
		nanosleep(&ts, NULL);
	}
	nvmk_err(b->name, NVMK_LOG_NOQ, "reset: CSTS.RDY still 1 after %u ms", to * 500u);
	return -ETIMEDOUT;
}

static void local_destroy(struct nvmk_backing *b)
{
	struct local_backing *lb = to_local(b);

	local_irq_disable(b);
	nvmk_emu_destroy(lb->emu);
	bk_registry_fini(&lb->iova_reg);
	pthread_mutex_destroy(&lb->iova_lock);
	free(lb);
}

static const struct nvmk_backing_ops local_ops = {
    .kind = "local",
    .read32 = local_read32,
    .read64 = local_read64,
    .write32 = local_write32,
    .write64 = local_write64,
    .dma_map = local_dma_map,
    .dma_unmap = local_dma_unmap,
    .dma_remap = local_dma_remap,
    .irq_count = local_irq_count,
    .irq_enable = local_irq_enable,
    .irq_disable = local_irq_disable,
    .irq_fd = local_irq_fd,
    .reset = local_reset,
    .destroy = local_destroy,
};

int nvmk_backing_local_create(const struct nvmk_emu_config *cfg, struct nvmk_backing **out,
			      struct nvmk_emu **emu_out)
{
	struct nvmk_emu_config c;
	struct local_backing *lb;
	int rc;

	if (!cfg || !out)
		return -EINVAL;
	lb = calloc(1, sizeof(*lb));
	if (!lb)
		return -ENOMEM;
	lb->iova_reg = (struct bk_registry)BK_REGISTRY_INIT;
	pthread_mutex_init(&lb->iova_lock, NULL);
	lb->next_iova = LOCAL_IOVA_BASE;
	lb->b.ops = &local_ops;
	snprintf(lb->b.name, sizeof(lb->b.name), "%s", cfg->name ? cfg->name : "emu");
	lb->b.bar0 = NULL;

	c = *cfg;
	c.dma = local_dma_translate;
	c.dma_ctx = lb;
	rc = nvmk_emu_create(&c, &lb->emu);
	if (rc) {
		bk_registry_fini(&lb->iova_reg);
		pthread_mutex_destroy(&lb->iova_lock);
		free(lb);
		return rc;
	}
	lb->b.bar0_size = nvmk_emu_bar_size(lb->emu);
	*out = &lb->b;
	if (emu_out)
		*emu_out = lb->emu;
	return 0;
}
