// SPDX-License-Identifier: MIT
/*
 * Caller data buffers under a tag the caller names, so that a successor
 * after exec can reclaim the buffers of requests still in flight by that
 * tag (nvmk_backing_dma_reclaim) and the device keeps writing into the same
 * memory. nvmk_ctrl_dma_alloc (ctrl.c) numbers its tags itself ("user<N>");
 * the tag of any pool block can be learnt with nvmk_dma_tag().
 */
#include <errno.h>
#include <string.h>

#include "driver/drv.h"

/* "user." then 1.. characters of [A-Za-z0-9._-], at most NVMK_DMA_TAG_MAX in all:
 * apart from the driver's own tags (admin.*, io<N>.*, dbbuf) and from
 * nvmk_ctrl_dma_alloc's user<N>. */
static bool user_tag_ok(const char *tag)
{
	size_t len = tag ? strlen(tag) : 0;

	if (len <= strlen(NVMK_CTRL_DMA_TAG_PREFIX) || len > NVMK_DMA_TAG_MAX ||
	    strncmp(tag, NVMK_CTRL_DMA_TAG_PREFIX, strlen(NVMK_CTRL_DMA_TAG_PREFIX)) != 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = tag[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

int nvmk_ctrl_dma_alloc_tagged(struct nvmk_ctrl *ctrl, size_t size, const char *tag,
			       struct nvmk_dma_buf *buf)
{
	if (!ctrl || !buf)
		return -EINVAL;
	if (!user_tag_ok(tag)) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ,
			 "DMA buffer tag \"%s\" refused: \"" NVMK_CTRL_DMA_TAG_PREFIX
			 "\" followed by letters, digits, '.', '_' or '-', at most %u characters "
			 "in all",
			 tag ? tag : "(null)", NVMK_DMA_TAG_MAX);
		return -EINVAL;
	}
	return nvmk_backing_dma_alloc(ctrl->b, size, tag, buf);
}
