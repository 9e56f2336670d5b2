// SPDX-License-Identifier: MIT
/* Shared by the regression drivers: see regress_util.h. */
#include "regress_util.h"

#include <stdio.h>
#include <string.h>

size_t regress_payload_offset(const uint8_t *b, size_t len)
{
	size_t i = 8;

	if (len < 10 || b[0] != 0x08 || b[2] != 0x15 || b[7] != 0x1a)
		return 0;
	while (i < len && (b[i] & 0x80))
		i++;
	return i + 1 < len ? i + 1 : 0;
}

int regress_write_seed(int argc, char **argv, const void *blob, size_t len)
{
	FILE *f;
	int rc;

	if (argc != 3 || strcmp(argv[1], "--write-seed") != 0)
		return -1;
	f = fopen(argv[2], "wb");
	if (!f)
		return 1;
	rc = fwrite(blob, 1, len, f) != len;
	if (fclose(f))
		rc = 1;
	return rc;
}

int regress_read_file(const char *path, uint8_t *buf, size_t cap, size_t *n)
{
	FILE *f = fopen(path, "rb");

	if (!f) {
		perror(path);
		return 1;
	}
	*n = fread(buf, 1, cap, f);
	fclose(f);
	return 0;
}

int regress_run_files(int argc, char **argv)
{
	static uint8_t buf[1 << 20];
	size_t n;

	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) == 0)
			continue;
		if (regress_read_file(argv[i], buf, sizeof(buf), &n))
			return 1;
		LLVMFuzzerTestOneInput(buf, n);
	}
	return 0;
}
