// SPDX-License-Identifier: MIT
/*
 * Regression driver for fuzz_nbd.c without libFuzzer, run as a normal test:
 * hand-made inputs (valid INFO/GO and meta context data, request streams),
 * every truncation and single-bit flip of each, and the files named on the
 * command line (the corpus, or crash inputs found by the fuzzer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmekeep/export.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void mutate_all(const uint8_t *in, size_t n)
{
	static uint8_t b[1 << 16];

	if (n > sizeof(b))
		n = sizeof(b);
	for (size_t k = 0; k <= n; k++)
		LLVMFuzzerTestOneInput(in, k);
	for (size_t i = 1; i < n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(b, in, n);
			b[i] ^= (uint8_t)(1u << bit);
			LLVMFuzzerTestOneInput(b, n);
		}
	}
}

static size_t seed_info(uint8_t *b)
{
	b[0] = 0;
	nvmk_nbd_put32(b + 1, 5);
	memcpy(b + 5, "emu/1", 5);
	nvmk_nbd_put16(b + 10, 2);
	nvmk_nbd_put16(b + 12, NVMK_NBD_INFO_NAME);
	nvmk_nbd_put16(b + 14, NVMK_NBD_INFO_BLOCK_SIZE);
	return 16;
}

static size_t seed_meta(uint8_t *b)
{
	b[0] = 0;
	nvmk_nbd_put32(b + 1, 5);
	memcpy(b + 5, "emu/1", 5);
	nvmk_nbd_put32(b + 10, 2);
	nvmk_nbd_put32(b + 14, 15);
	memcpy(b + 18, "base:allocation", 15);
	nvmk_nbd_put32(b + 33, 5);
	memcpy(b + 37, "base:", 5);
	return 42;
}

static size_t seed_requests(uint8_t *b)
{
	size_t off = 17;

	memset(b, 0, 17);
	b[0] = 1;
	nvmk_nbd_put64(b + 1, 1ull << 30);
	b[10] = 0;  /* min block 1 */
	b[11] = 8;  /* max 128 KiB */
	nvmk_nbd_put16(b + 12, 0x0d6d);
	b[14] = 3;
	for (uint16_t t = 0; t < 9; t++, off += NVMK_NBD_REQ_LEN) {
		nvmk_nbd_put32(b + off, NVMK_NBD_REQ_MAGIC);
		nvmk_nbd_put16(b + off + 4, t == 1 ? NVMK_NBD_CMD_FLAG_FUA : 0);
		nvmk_nbd_put16(b + off + 6, t);
		nvmk_nbd_put64(b + off + 8, t);
		nvmk_nbd_put64(b + off + 16, (uint64_t)t << 12);
		nvmk_nbd_put32(b + off + 24, t == 3 ? 0 : 4096);
	}
	return off;
}

int main(int argc, char **argv)
{
	static uint8_t b[1 << 16];
	size_t n;

	n = seed_info(b);
	mutate_all(b, n);
	n = seed_meta(b);
	mutate_all(b, n);
	n = seed_requests(b);
	mutate_all(b, n);
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");

		if (!f) {
			perror(argv[i]);
			return 1;
		}
		n = fread(b, 1, sizeof(b), f);
		fclose(f);
		mutate_all(b, n);
	}
	printf("fuzz_nbd regression: %d corpus files, seeds and their mutations passed\n",
	       argc - 1);
	return 0;
}
