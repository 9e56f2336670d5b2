/* SPDX-License-Identifier: MIT */
/*
 * Ephemeral DMA memory: every block is its own memfd, mapped MAP_SHARED.
 *
 * A memfd rather than anonymous memory because a backing needs a file
 * descriptor for each block: vfio-user shares DMA regions with the server by
 * fd, and no-IOMMU mode resolves physical addresses of a mapping it can pin.
 * The memory goes away with the last fd and mapping, i.e. with the process.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dma_internal.h"
#include "nvmekeep/log.h"

int dma_ephemeral_alloc(size_t size, bool populate, struct nvmk_dma_mem *out)
{
	size_t len = dma_round_up(size);
	void *va;
	int fd, err;

	if (!out || len == 0 || len > (size_t)INT64_MAX)
		return -EINVAL;

	fd = memfd_create("nvmekeep-dma", MFD_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		nvmk_err(DMA_EPHEMERAL_LOG_NAME, NVMK_LOG_NOQ, "memfd_create for %zu bytes: %s",
			 len, strerror(-err));
		return err;
	}
	if (ftruncate(fd, (off_t)len) < 0) {
		err = -errno;
		nvmk_err(DMA_EPHEMERAL_LOG_NAME, NVMK_LOG_NOQ, "ftruncate memfd to %zu bytes: %s",
			 len, strerror(-err));
		close(fd);
		return err;
	}
	/* A fresh memfd reads as zeroes: no memset needed, and none wanted for large blocks. */
	va = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | (populate ? MAP_POPULATE : 0), fd,
		  0);
	if (va == MAP_FAILED) {
		err = -errno;
		nvmk_err(DMA_EPHEMERAL_LOG_NAME, NVMK_LOG_NOQ, "mmap of %zu bytes: %s", len,
			 strerror(-err));
		close(fd);
		return err;
	}

	memset(out, 0, sizeof(*out));
	out->vaddr = va;
	out->size = len;
	out->fd = fd;
	out->fd_offset = 0;
	out->pool = NULL;
	out->slot = 0;
	return 0;
}

void dma_ephemeral_free(struct nvmk_dma_mem *mem)
{
	if (mem->vaddr)
		munmap(mem->vaddr, mem->size);
	if (mem->fd >= 0)
		close(mem->fd);
	mem->vaddr = NULL;
	mem->size = 0;
	mem->fd = -1;
}
