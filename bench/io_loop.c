/* SPDX-License-Identifier: MIT */
/*
 * io_loop: a minimal driver loop for instruction counting. Opens the
 * built-in emulated controller with a null namespace, creates one exclusive
 * polled queue pair and issues N 4 KiB reads (one PRP entry) at queue depth
 * 1: submit, then process completions until the read is done.
 *
 * bench/instr_per_io.sh runs it under callgrind, collecting only inside
 * nvmk_ns_submit_read and nvmk_qpair_process_completions and counting only
 * instructions attributed to the driver's source files (the emulator's
 * doorbell handling and the backing are excluded).
 *
 * Polls that find nothing (the emulator had not answered yet) are counted
 * and printed as "empty_polls=E"; `io_loop 0 K` makes K polls on an idle
 * queue so the script can subtract their cost.
 *
 * With a third argument S, the loop sleeps S microseconds before each poll,
 * so the emulator (which valgrind runs on the same host thread slot) has
 * answered by then and almost no empty polls are made: their cost, however
 * well estimated, then no longer dominates the measurement.
 *
 * Usage: io_loop [N [K [S]]]   (default N = 20000, K = 0, S = 0)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/driver.h"
#include "nvmekeep/emu.h"

static unsigned completed;

static void on_done(void *arg, const struct nvmk_cpl *cpl)
{
	(void)arg;
	if (cpl->err) {
		fprintf(stderr, "io_loop: read failed: %s\n", strerror(-cpl->err));
		exit(1);
	}
	completed++;
}

int main(int argc, char **argv)
{
	unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 20000;
	unsigned idle = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 0) : 0;
	unsigned sleep_us = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 0) : 0;
	unsigned long empty_polls = 0;
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL, .depth = 64};
	struct nvmk_emu_config cfg;
	struct nvmk_backing *b;
	struct nvmk_ctrl *ctrl;
	struct nvmk_qpair *qp;
	struct nvmk_ns *ns;
	struct nvmk_dma_buf buf;
	int ret;

	nvmk_emu_config_default(&cfg);
	cfg.name = "bench-emu";
	cfg.nr_ns = 1;
	cfg.ns[0] = (struct nvmk_emu_ns_config){
		.nsid = 1, .nblocks = 1ull << 24, .lba_shift = 12, .backing = NVMK_EMU_BACK_NULL};
	/* shadow doorbells off: count the plain MMIO doorbell path */
	cfg.no_dbbuf = true;
	if ((ret = nvmk_backing_local_create(&cfg, &b, NULL)) ||
	    (ret = nvmk_ctrl_open(b, NULL, &ctrl)) || (ret = nvmk_ns_open(ctrl, 1, 0, &ns)) ||
	    (ret = nvmk_qpair_create(ctrl, &qo, &qp)) ||
	    (ret = nvmk_ctrl_dma_alloc(ctrl, 4096, &buf))) {
		fprintf(stderr, "io_loop: setup failed: %s\n", strerror(-ret));
		return 1;
	}
	for (unsigned i = 0; i < idle; i++) {
		if (nvmk_qpair_process_completions(qp, 0) != 0) {
			fprintf(stderr, "io_loop: idle queue completed something\n");
			return 1;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		unsigned want = completed + 1;

		ret = nvmk_ns_submit_read(ns, qp, &buf, 0, (i * 7919u) & 0xffffff, 1, 0, on_done,
					  NULL);
		if (ret) {
			fprintf(stderr, "io_loop: submit failed: %s\n", strerror(-ret));
			return 1;
		}
		while (completed < want) {
			if (sleep_us)
				usleep(sleep_us);
			ret = nvmk_qpair_process_completions(qp, 0);
			if (ret < 0) {
				fprintf(stderr, "io_loop: completion failed: %s\n", strerror(-ret));
				return 1;
			}
			if (ret == 0)
				empty_polls++;
		}
	}
	printf("io_loop: %u reads completed\n", completed);
	printf("empty_polls=%lu\n", empty_polls);
	nvmk_ctrl_dma_free(ctrl, &buf);
	nvmk_qpair_destroy(qp);
	nvmk_ns_close(ns);
	nvmk_ctrl_close(ctrl);
	nvmk_backing_destroy(b);
	return 0;
}
