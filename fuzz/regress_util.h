/* SPDX-License-Identifier: MIT */
/*
 * What the regression drivers (fuzz/fuzz_*_regress.c: a fuzz target's entry
 * point run without libFuzzer, as an ordinary test) have in common: the
 * payload of a saved-state envelope, --write-seed, and replaying corpus
 * files named on the command line.
 */
#ifndef NVMK_FUZZ_REGRESS_UTIL_H
#define NVMK_FUZZ_REGRESS_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* the target under test, defined by the fuzz_*.c linked beside */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Where the payload starts in an envelope nvmk_ctrl_save / nvmk_mgr_save
 * wrote: 08 <version> 15 <crc32c, 4 bytes LE> 1a <length varint> <payload>.
 * 0 when @b is not laid out so.
 */
size_t regress_payload_offset(const uint8_t *b, size_t len);

/*
 * "--write-seed FILE" as the whole command line: writes @blob to FILE.
 * Returns -1 when not asked (go on), else the exit code (0 written, 1 not).
 */
int regress_write_seed(int argc, char **argv, const void *blob, size_t len);

/*
 * Reads at most @cap bytes of @path into @buf. Returns 0, or 1 after a
 * message naming the file.
 */
int regress_read_file(const char *path, uint8_t *buf, size_t cap, size_t *n);

/*
 * Runs the target once on each file named in argv[1..] (arguments that
 * start with "--" are skipped). Returns 0, or 1 when a file cannot be read.
 */
int regress_run_files(int argc, char **argv);

#endif
