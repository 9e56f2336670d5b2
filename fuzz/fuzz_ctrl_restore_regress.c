// SPDX-License-Identifier: MIT
/*
 * Regression driver for fuzz_ctrl_restore.c without libFuzzer, run as a
 * normal test: the real state of the harness's device must restore; then
 * one-bit flips across its payload with the checksum re-sealed, so that the
 * mutations the validator accepts are applied to the device (ring
 * positions, CIDs, tokens, namespace fields...), and the files named on the
 * command line. Prints how many mutations reached the restore and how many
 * restored. With --write-seed FILE it writes the real state as a corpus seed
 * (fuzz/corpus/ctrl_restore/).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmekeep/crc32c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_restore_real_state(void **blob, size_t *len);
extern int fuzz_restore_last;

/* Where the payload starts in an envelope nvmk_ctrl_save wrote:
 * 08 <version> 15 <crc32c, 4 bytes LE> 1a <length varint> <payload>. */
static size_t payload_offset(const uint8_t *b, size_t len)
{
	size_t i = 8;

	if (len < 10 || b[0] != 0x08 || b[2] != 0x15 || b[7] != 0x1a)
		return 0;
	while (i < len && (b[i] & 0x80))
		i++;
	return i + 1 < len ? i + 1 : 0;
}

int main(int argc, char **argv)
{
	unsigned reached = 0, restored = 0, runs = 0;
	size_t len, po, step = argc > 1 && strcmp(argv[1], "--all") == 0 ? 1 : 2;
	uint8_t *m;
	void *blob;

	if (fuzz_restore_real_state(&blob, &len)) {
		fprintf(stderr, "cannot build the real state\n");
		return 1;
	}
	if (argc == 3 && strcmp(argv[1], "--write-seed") == 0) {
		FILE *f = fopen(argv[2], "wb");

		if (!f || fwrite(blob, 1, len, f) != len)
			return 1;
		fclose(f);
		free(blob);
		return 0;
	}
	LLVMFuzzerTestOneInput(blob, len);
	if (fuzz_restore_last != 1) {
		fprintf(stderr, "the real state does not restore (%d)\n", fuzz_restore_last);
		return 1;
	}
	po = payload_offset(blob, len);
	if (!po) {
		fprintf(stderr, "unexpected envelope layout\n");
		return 1;
	}
	/* the 4096 bytes of Identify Controller data (field 3: 1a 80 20) are
	 * copied, not interpreted: flips there tell nothing, skip them */
	size_t id_start = len, id_end = len;
	for (size_t i = po; i + 3 < len; i++)
		if (((uint8_t *)blob)[i] == 0x1a && ((uint8_t *)blob)[i + 1] == 0x80 &&
		    ((uint8_t *)blob)[i + 2] == 0x20) {
			id_start = i + 3;
			id_end = id_start + 4096;
			break;
		}
	m = malloc(len);
	for (size_t i = po; i < len; i += step) {
		uint32_t c;

		if (i >= id_start && i < id_end) {
			i = id_end - step;
			continue;
		}

		memcpy(m, blob, len);
		m[i] ^= (uint8_t)(1u << (i % 8));
		c = nvmk_crc32c(0, m + po, len - po);
		memcpy(m + 3, &c, 4); /* little endian fixed32 */
		LLVMFuzzerTestOneInput(m, len);
		runs++;
		reached += fuzz_restore_last >= 0;
		restored += fuzz_restore_last == 1;
	}
	for (int i = 1; i < argc; i++) {
		static uint8_t buf[1 << 20];
		FILE *f;
		size_t n;

		if (strcmp(argv[i], "--all") == 0)
			continue;
		if (!(f = fopen(argv[i], "rb"))) {
			perror(argv[i]);
			return 1;
		}
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, n);
	}
	free(m);
	free(blob);
	printf("fuzz_ctrl_restore regression: %zu-byte real state, %u flips, %u reached the "
	       "restore, %u restored: ok\n",
	       len, runs, reached, restored);
	return 0;
}
