// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the NBD server's parsers of untrusted bytes
 * (src/export/proto.c). The first byte picks what the rest is:
 *   0  option header + option data: INFO/GO and both meta context parsers,
 *      the export name splitter
 *   1  a stream of 28-byte request headers, each checked against limits
 *      taken from the input
 * Besides not crashing, every accepted result must be consistent with the
 * bytes it came from; a violation traps.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nvmekeep/export.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void options(const uint8_t *d, size_t n)
{
	struct nvmk_nbd_opt_hdr h;
	struct nvmk_nbd_info_req q;
	struct nvmk_nbd_meta_req m;
	char dev[64];
	uint32_t nsid, len;

	if (n >= NVMK_NBD_OPT_HDR_LEN && nvmk_nbd_opt_hdr_decode(d, &h) == 0 &&
	    nvmk_nbd_get64(d) != NVMK_NBD_OPTS_MAGIC)
		__builtin_trap();
	len = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	if (nvmk_nbd_info_req_parse(d, len, &q) == 0) {
		if ((uint64_t)q.name_len + 6 + 2ull * q.ninfo != len)
			__builtin_trap();
		if (memchr(q.name, 0, q.name_len) || q.name_len > NVMK_NBD_STRING_MAX)
			__builtin_trap();
		if (nvmk_nbd_export_name_parse(q.name, q.name_len, dev, sizeof(dev), &nsid) == 0 &&
		    (nsid == 0 || nsid == UINT32_MAX || strlen(dev) >= q.name_len))
			__builtin_trap();
	}
	for (int list = 0; list < 2; list++) {
		if (nvmk_nbd_meta_req_parse(d, len, list, &m) == 0) {
			if ((uint64_t)m.name_len + 8 > len || (!list && m.nqueries == 0 &&
								 m.base_allocation))
				__builtin_trap();
			if ((const uint8_t *)m.name != d + 4)
				__builtin_trap();
		}
	}
	if (nvmk_nbd_export_name_parse((const char *)d, n, dev, sizeof(dev), &nsid) == 0 &&
	    (nsid == 0 || strlen(dev) == 0))
		__builtin_trap();
}

static void requests(const uint8_t *d, size_t n)
{
	struct nvmk_nbd_limits lim;
	uint8_t hdr[NVMK_NBD_REQ_LEN];

	if (n < 16)
		return;
	lim.size = nvmk_nbd_get64(d) >> (d[8] & 63);
	lim.min_block = 1u << (d[9] % 13);
	lim.max_block = 1u << (9 + d[10] % 16);
	lim.tflags = nvmk_nbd_get16(d + 11);
	lim.structured = d[13] & 1;
	lim.meta_base_allocation = d[13] & 2;
	d += 16;
	n -= 16;
	for (; n >= NVMK_NBD_REQ_LEN; d += NVMK_NBD_REQ_LEN, n -= NVMK_NBD_REQ_LEN) {
		struct nvmk_nbd_request r;
		uint32_t err;

		memcpy(hdr, d, sizeof(hdr));
		/* half of the headers get the right magic, so that checks are reached */
		if (hdr[4] & 0x80)
			nvmk_nbd_put32(hdr, NVMK_NBD_REQ_MAGIC);
		if (nvmk_nbd_request_decode(hdr, &r))
			continue;
		err = nvmk_nbd_request_check(&r, &lim);
		if (err || r.type == NVMK_NBD_CMD_DISC)
			continue;
		/* accepted: within the export, aligned, and a flag that was offered */
		if (r.offset > lim.size || r.length > lim.size - r.offset)
			__builtin_trap();
		if (lim.min_block > 1 && (r.offset % lim.min_block || r.length % lim.min_block))
			__builtin_trap();
		if ((r.type == NVMK_NBD_CMD_READ || r.type == NVMK_NBD_CMD_WRITE) &&
		    r.length > lim.max_block)
			__builtin_trap();
		if (r.type > NVMK_NBD_CMD_BLOCK_STATUS)
			__builtin_trap();
		if (r.type == NVMK_NBD_CMD_WRITE && (lim.tflags & NVMK_NBD_FLAG_READ_ONLY))
			__builtin_trap();
		if ((r.flags & NVMK_NBD_CMD_FLAG_FUA) && !(lim.tflags & NVMK_NBD_FLAG_SEND_FUA))
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		requests(data + 1, size - 1);
	else
		options(data + 1, size - 1);
	return 0;
}
