// SPDX-License-Identifier: MIT
/*
 * Regression driver for fuzz_mgr_state.c without libFuzzer, run as a normal
 * test: the real manager state of the harness must restore; then every
 * prefix of it (each must be refused with a reason), then one-bit flips
 * across the manager payload with the checksum re-sealed, so that the
 * mutations the validator accepts are applied by nvmk_mgr_restore (device
 * ids, statuses, namespaces, client buffers, the pool reference...), and the
 * files named on the command line. The embedded driver state is skipped:
 * its flips are the controller targets' (fuzz_ctrl_state, fuzz_ctrl_restore).
 * Prints how many mutations reached the restore and how many restored.
 * With --write-seed FILE it writes the real state as a corpus seed
 * (fuzz/corpus/mgr_state/).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmekeep/crc32c.h"
#include "regress_util.h"

int fuzz_mgr_real_state(void **blob, size_t *len);
extern int fuzz_mgr_last;

/* The embedded driver state: DeviceState field 5 (2a <length varint>), found
 * as the controller envelope it holds (08 <version> 15). */
static void ctrl_state_span(const uint8_t *b, size_t len, size_t from, size_t *start, size_t *end)
{
	*start = *end = len;
	for (size_t i = from; i + 6 < len; i++) {
		size_t j = i + 1, n = 0;
		unsigned shift = 0;

		if (b[i] != 0x2a)
			continue;
		while (j < len && (b[j] & 0x80) && shift < 28) {
			n |= (size_t)(b[j++] & 0x7f) << shift;
			shift += 7;
		}
		if (j >= len)
			return;
		n |= (size_t)b[j++] << shift;
		if (j + 3 < len && b[j] == 0x08 && b[j + 2] == 0x15 && j + n <= len) {
			*start = j;
			*end = j + n;
			return;
		}
	}
}

int main(int argc, char **argv)
{
	unsigned reached = 0, restored = 0, runs = 0, prefixes = 0;
	int rc;
	size_t len, po, cs, ce, step = argc > 1 && strcmp(argv[1], "--all") == 0 ? 1 : 2;
	uint8_t *m;
	void *blob;

	if (fuzz_mgr_real_state(&blob, &len)) {
		fprintf(stderr, "cannot build the real state\n");
		return 1;
	}
	if ((rc = regress_write_seed(argc, argv, blob, len)) >= 0) {
		free(blob);
		return rc;
	}
	LLVMFuzzerTestOneInput(blob, len);
	if (fuzz_mgr_last != 1) {
		fprintf(stderr, "the real state does not restore (%d)\n", fuzz_mgr_last);
		return 1;
	}
	po = regress_payload_offset(blob, len);
	if (!po) {
		fprintf(stderr, "unexpected envelope layout\n");
		return 1;
	}
	ctrl_state_span(blob, len, po, &cs, &ce);
	if (cs == len) {
		fprintf(stderr, "no embedded driver state found\n");
		return 1;
	}
	/* a truncated state never validates (the target traps on a refusal
	 * without a reason) */
	for (size_t n = 0; n < len; n++) {
		LLVMFuzzerTestOneInput(blob, n);
		if (fuzz_mgr_last != -1) {
			fprintf(stderr, "the state's first %zu bytes were accepted\n", n);
			return 1;
		}
		prefixes++;
	}
	m = malloc(len);
	for (size_t i = po; i < len; i += step) {
		uint32_t c;

		if (i >= cs && i < ce) {
			i = ce - step;
			continue;
		}
		memcpy(m, blob, len);
		m[i] ^= (uint8_t)(1u << (i % 8));
		c = nvmk_crc32c(0, m + po, len - po);
		memcpy(m + 3, &c, 4); /* little endian fixed32 */
		LLVMFuzzerTestOneInput(m, len);
		runs++;
		reached += fuzz_mgr_last >= 0;
		restored += fuzz_mgr_last == 1;
	}
	if (regress_run_files(argc, argv))
		return 1;
	free(m);
	free(blob);
	printf("fuzz_mgr_state regression: %zu-byte real state (driver state %zu bytes), "
	       "%u prefixes refused, %u flips, %u reached the restore, %u restored: ok\n",
	       len, ce - cs, prefixes, runs, reached, restored);
	return 0;
}
