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
#include "regress_util.h"

int fuzz_restore_real_state(void **blob, size_t *len);
extern int fuzz_restore_last;

int main(int argc, char **argv)
{
	unsigned reached = 0, restored = 0, runs = 0;
	int rc;
	size_t len, po, step = argc > 1 && strcmp(argv[1], "--all") == 0 ? 1 : 2;
	uint8_t *m;
	void *blob;

	if (fuzz_restore_real_state(&blob, &len)) {
		fprintf(stderr, "cannot build the real state\n");
		return 1;
	}
	if ((rc = regress_write_seed(argc, argv, blob, len)) >= 0) {
		free(blob);
		return rc;
	}
	LLVMFuzzerTestOneInput(blob, len);
	if (fuzz_restore_last != 1) {
		fprintf(stderr, "the real state does not restore (%d)\n", fuzz_restore_last);
		return 1;
	}
	po = regress_payload_offset(blob, len);
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
	if (regress_run_files(argc, argv))
		return 1;
	free(m);
	free(blob);
	printf("fuzz_ctrl_restore regression: %zu-byte real state, %u flips, %u reached the "
	       "restore, %u restored: ok\n",
	       len, runs, reached, restored);
	return 0;
}
