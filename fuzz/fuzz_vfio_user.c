// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: arbitrary bytes as one vfio-user message as the server
 * receives it (src/vfio_user/proto.c): the first byte picks how many file
 * descriptors "came with it", the rest is header + payload. The header and
 * command validators run on it, the VERSION decoder when it claims to be a
 * VERSION, the handover string parser on the payload as text, and the
 * resume blob parser (a --persist server's vendor region) on the payload.
 * Invariants: a refusal always says why; an accepted command's fixed part
 * fits in the payload; a decoded VERSION has sane capabilities.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/vfio_user.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t fixed_size(uint16_t cmd)
{
	switch (cmd) {
	case NVMK_VFU_DMA_MAP:
		return sizeof(struct nvmk_vfu_dma_map);
	case NVMK_VFU_DMA_UNMAP:
		return sizeof(struct nvmk_vfu_dma_unmap);
	case NVMK_VFU_DEVICE_GET_INFO:
		return sizeof(struct nvmk_vfu_device_info);
	case NVMK_VFU_DEVICE_GET_REGION_INFO:
		return sizeof(struct nvmk_vfu_region_info);
	case NVMK_VFU_DEVICE_GET_IRQ_INFO:
		return sizeof(struct nvmk_vfu_irq_info);
	case NVMK_VFU_DEVICE_SET_IRQS:
		return sizeof(struct nvmk_vfu_irq_set);
	case NVMK_VFU_REGION_READ:
	case NVMK_VFU_REGION_WRITE:
		return sizeof(struct nvmk_vfu_region_rw);
	case NVMK_VFU_VERSION:
		return sizeof(struct nvmk_vfu_version);
	default:
		return 0;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvmk_vfu_hdr h;
	const uint8_t *p;
	size_t len;
	unsigned nfds;
	char why[200];
	int rc;

	if (size < 1 + sizeof(h))
		return 0;
	nfds = data[0] % 20;
	memcpy(&h, data + 1, sizeof(h));
	p = data + 1 + sizeof(h);
	len = size - 1 - sizeof(h);
	rc = nvmk_vfu_hdr_check(&h, NVMK_VFU_MSG_MAX(1 << 20), false);
	if (rc && rc != -EPROTO && rc != -E2BIG)
		__builtin_trap();
	memset(why, 'x', sizeof(why));
	why[0] = 0;
	rc = nvmk_vfu_cmd_check(h.cmd, p, len, nfds, 1 << 20, why, sizeof(why));
	if (!memchr(why, 0, sizeof(why)))
		__builtin_trap();
	if (rc && !why[0])
		__builtin_trap(); /* a refusal always says why */
	if (!rc && len < fixed_size(h.cmd))
		__builtin_trap(); /* accepted, so its fixed part is there */
	if (!rc && h.cmd == NVMK_VFU_VERSION) {
		struct nvmk_vfu_version v;
		struct nvmk_vfu_caps c;

		if (nvmk_vfu_version_parse(p, len, &v, &c, why, sizeof(why)) == 0 &&
		    (c.max_msg_fds > NVMK_VFU_LIMIT_MAX_FDS || c.max_data_xfer_size < 4096 ||
		     c.max_dma_maps == 0 || c.pgsizes == 0))
			__builtin_trap();
	}
	{
		/* the resume blob: aligned copy, as a client reads it */
		uint64_t *al = malloc(len + 8);
		struct nvmk_vfu_resume r;

		if (al) {
			memcpy(al, p, len);
			why[0] = 0;
			rc = nvmk_vfu_resume_parse(al, len, &r, why, sizeof(why));
			if (rc && !why[0])
				__builtin_trap();
			if (!rc) {
				/* everything it points at lies inside the blob */
				const uint8_t *end = (const uint8_t *)al + len;

				if ((const uint8_t *)(r.cmds + r.h.ncmd) > end ||
				    (const uint8_t *)(r.maps + r.h.nmaps) > end)
					__builtin_trap();
				for (uint32_t i = 0; i < r.h.nsq; i++)
					if (r.sqs[i].head >= r.sqs[i].size ||
					    r.sqs[i].tail >= r.sqs[i].size)
						__builtin_trap();
			}
			free(al);
		}
	}
	{
		struct nvmk_vfio_user_handover ho;
		char *s = malloc(len + 1);

		if (s) {
			memcpy(s, p, len);
			s[len] = 0;
			if (nvmk_vfio_user_handover_parse(s, &ho) == 0 &&
			    (ho.nirqs > NVMK_VFIO_USER_MAX_IRQS ||
			     ho.nmaps > NVMK_VFIO_USER_MAX_MAPS || !ho.path[0]))
				__builtin_trap();
			free(s);
		}
	}
	return 0;
}
