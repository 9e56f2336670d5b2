// SPDX-License-Identifier: MIT
/*
 * Regression driver for fuzz_vfio_user.c without libFuzzer, run as a normal
 * test: hand-made messages for every command the server takes (good ones and
 * ones with lying sizes), every truncation and single-bit flips of them, and
 * the files named on the command line (the corpus, or crash inputs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmekeep/vfio_user.h"
#include "regress_util.h"

static void run_variants(const uint8_t *msg, size_t len)
{
	uint8_t buf[256];

	if (len > sizeof(buf))
		return;
	for (size_t cut = 0; cut <= len; cut++)
		LLVMFuzzerTestOneInput(msg, cut);
	for (size_t i = 0; i < len; i++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			memcpy(buf, msg, len);
			buf[i] ^= (uint8_t)(1u << bit);
			LLVMFuzzerTestOneInput(buf, len);
		}
	}
}

/* one message: [nfds byte][header][payload] */
static size_t make(uint8_t *out, uint8_t nfds, uint16_t cmd, const void *p, size_t len)
{
	struct nvmk_vfu_hdr h = {.msg_id = 1, .cmd = cmd, .size = (uint32_t)(16 + len)};

	out[0] = nfds;
	memcpy(out + 1, &h, sizeof(h));
	if (len)
		memcpy(out + 17, p, len);
	return 17 + len;
}

int main(int argc, char **argv)
{
	static const char version[] = "\0\0\1\0{\"capabilities\":{\"max_msg_fds\":8,"
				      "\"max_data_xfer_size\":1048576,\"pgsizes\":4096}}";
	static const char handover[] = "vfu1;sock=3;msgid=7;iova=100000000;irqs=4,5;"
				       "maps=100000000:1000:6:0;path=/tmp/s";
	struct nvmk_vfu_dma_map map = {32, 3, 0, 0x100000, 0x1000};
	struct nvmk_vfu_dma_unmap unmap = {24, 0, 0x100000, 0x1000};
	struct nvmk_vfu_device_info di = {16, 0, 0, 0};
	struct nvmk_vfu_region_info ri = {32, 0, 0, 0, 0, 0};
	struct nvmk_vfu_irq_info ii = {16, 0, 2, 0};
	struct nvmk_vfu_irq_set is = {22, (1u << 1) | (1u << 5), 2, 0, 2};
	uint8_t isb[22], rw[20];
	struct nvmk_vfu_region_rw r = {0x14, 0, 4};
	uint8_t msg[256];
	size_t n;

	memcpy(isb, &is, 20);
	isb[20] = 1, isb[21] = 0;
	memcpy(rw, &r, 16);
	memset(rw + 16, 0xa5, 4);
	run_variants(msg, make(msg, 0, 1, version, sizeof(version)));
	run_variants(msg, make(msg, 1, 2, &map, sizeof(map)));
	run_variants(msg, make(msg, 0, 3, &unmap, sizeof(unmap)));
	run_variants(msg, make(msg, 0, 4, &di, sizeof(di)));
	run_variants(msg, make(msg, 0, 5, &ri, sizeof(ri)));
	run_variants(msg, make(msg, 0, 7, &ii, sizeof(ii)));
	run_variants(msg, make(msg, 0, 8, isb, sizeof(isb)));
	run_variants(msg, make(msg, 0, 9, rw, 16));
	run_variants(msg, make(msg, 0, 10, rw, sizeof(rw)));
	run_variants(msg, make(msg, 0, 13, NULL, 0));
	n = make(msg, 0, 1, handover, sizeof(handover) - 1);
	run_variants(msg, n);
	if (regress_run_files(argc, argv))
		return 1;
	printf("fuzz_vfio_user regression: ok\n");
	return 0;
}
