// SPDX-License-Identifier: MIT
/*
 * Regression driver for fuzz_hostile.c without libFuzzer, run as a normal
 * test: a few built-in device behaviours (an honest device, each CAP lie,
 * a tiny BAR0, a huge RTD3E, lying Number of Queues and Abort answers, a
 * fatal status under I/O, scripts forging completions of every kind), then
 * every file named on the command line, or in a directory named there (the
 * corpus in fuzz/corpus/hostile, or a crash input found by the fuzzer). An
 * invariant broken aborts.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const char *what, const uint8_t *d, size_t n)
{
	fprintf(stderr, "fuzz_hostile_regress: %s (%zu bytes)\n", what, n);
	LLVMFuzzerTestOneInput(d, n);
}

static int run_file(const char *path)
{
	static uint8_t buf[1 << 16];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		perror(path);
		return 1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	run(path, buf, n);
	return 0;
}

int main(int argc, char **argv)
{
	/* header: [0] CAP/BAR0/Identify flags, [1..11] their values, [12]
	 * flags2, [13..17] Number of Queues / Abort dw0, [18] forge period;
	 * then the script */
	static const uint8_t honest[19] = {0};
	static const uint8_t tiny_bar0[19] = {0x20, [6] = 3};
	static const uint8_t dstrd15[19] = {0x02, [2] = 15};
	static const uint8_t mqes1[19] = {0x01, [1] = 1, [12] = 0x40};
	static const uint8_t mqes0_css0[19] = {0x09, [1] = 0, [4] = 0};
	static const uint8_t mpsmin1[19] = {0x10, [5] = 1};
	static const uint8_t rtd3e[19] = {0x40, [7] = 0x17, [8] = 0xfc, [9] = 0xff, [10] = 0xff};
	static const uint8_t numq_lie[19] = {
	    [12] = 0x01, [13] = 0xff, [14] = 0xff, [15] = 0xff, [16] = 0xff};
	static const uint8_t fatal_irq[19] = {[12] = 0x14};
	uint8_t forge[19 + 64];

	run("honest device", honest, sizeof(honest));
	run("BAR0 of 0x1018 bytes", tiny_bar0, sizeof(tiny_bar0));
	run("CAP.DSTRD 15", dstrd15, sizeof(dstrd15));
	run("CAP.MQES 1, admin depth 6", mqes1, sizeof(mqes1));
	run("CAP.MQES 0, CSS 0", mqes0_css0, sizeof(mqes0_css0));
	run("CAP.MPSMIN 1", mpsmin1, sizeof(mpsmin1));
	run("RTD3E 71 minutes", rtd3e, sizeof(rtd3e));
	run("Number of Queues 65536", numq_lie, sizeof(numq_lie));
	run("fatal status under interrupt I/O", fatal_irq, sizeof(fatal_irq));
	/* every forgery kind (script byte % 12) on I/O completions: the first
	 * 12 completions (bring-up, queue creation) pass, then every third one
	 * is forged */
	for (unsigned kind = 0; kind < 12; kind++) {
		char what[64];

		memset(forge, 0, sizeof(forge));
		forge[17] = 0;	  /* no data script; forge_after low part 0 */
		forge[18] = 0x32; /* forge_after 3 * 4 = 12, one in (2 + 1) = 3 */
		for (unsigned i = 19; i + 1 < sizeof(forge); i += 2) {
			forge[i] = (uint8_t)kind;
			forge[i + 1] = (uint8_t)(i * 13u);
		}
		snprintf(what, sizeof(what), "forgery kind %u on I/O", kind);
		run(what, forge, sizeof(forge));
	}
	/* mutated Identify / log data from the start */
	memset(forge, 0, sizeof(forge));
	forge[17] = 1; /* the last quarter is a data script */
	for (unsigned i = 19; i < sizeof(forge); i++)
		forge[i] = (uint8_t)(i * 37u + 3u);
	for (unsigned i = 19; i < 19 + 48; i++)
		forge[i] = 11; /* the completion script leaves completions alone */
	run("mutated admin data", forge, sizeof(forge));
	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *e;

		if (!d) {
			if (run_file(argv[i]))
				return 1;
			continue;
		}
		while ((e = readdir(d))) {
			char p[4096];

			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", argv[i], e->d_name);
			if (run_file(p)) {
				closedir(d);
				return 1;
			}
		}
		closedir(d);
	}
	fprintf(stderr, "fuzz_hostile_regress: all invariants held\n");
	return 0;
}
