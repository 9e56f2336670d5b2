/* SPDX-License-Identifier: MIT */
/*
 * io_loop: a minimal driver loop for instruction counting. Opens the
 * built-in emulated controller with a null namespace and issues N 4 KiB
 * reads (one PRP entry each), in one of these modes (-m):
 *
 *   excl    exclusive polled queue pair, QD 1: submit, then process
 *           completions until the read is done; MMIO doorbells (default)
 *   batch   exclusive polled queue pair: 32 reads in one
 *           nvmk_ns_submit_read_batch call (one SQ doorbell), then process
 *           until all 32 are done; N is rounded down to a multiple of 32
 *   pbatch  as batch with one nvmk_ns_submit_read call per read between
 *           nvmk_qpair_batch_begin and nvmk_qpair_batch_end (one SQ
 *           doorbell as well): the per-call batch
 *   shared  as excl, on the thread's own qpair from nvmk_ctrl_get_qpair
 *           (the one the synchronous calls and the CLI use)
 *   locked  as excl, on a SHARED qpair (NVMK_QPAIR_SHARED), its mutex
 *           included
 *   shadow  as excl with shadow doorbells (Base 2.0 5.8), the emulator's
 *           and the driver's default
 *   handle, hbatch, hshadow
 *           as excl, batch, shadow, submitting with nvmk_io_read (hbatch:
 *           nvmk_io_read_batch) on an I/O handle (nvmekeep/driver/
 *           io_handle.h: qpair, namespace and buffer checked once) instead
 *           of nvmk_ns_submit_read
 *   phbatch as pbatch with nvmk_io_read on an I/O handle
 *
 * bench/instr_per_io.sh runs it under callgrind, collecting only inside the
 * driver's API calls of the loop (submit, process, batch begin/end), and
 * reads both the driver's own instructions and everything the calling
 * thread executed inside those calls (the emulator's doorbell handling, the
 * backing, libc's mutex: the caller's-thread total).
 *
 * Polls that find nothing (the emulator had not answered yet) are counted
 * and printed as "empty_polls=E"; `io_loop -m MODE 0 K` makes K polls on an
 * idle queue so the script can subtract their cost.
 *
 * With a third argument S, the loop sleeps S microseconds before each poll,
 * so the emulator (which valgrind runs on the same host thread slot) has
 * answered by then and almost no empty polls are made: their cost, however
 * well estimated, then no longer dominates the measurement.
 *
 * Usage: io_loop [-m MODE] [N [K [S]]]
 *        (default excl, N = 20000, K = 0, S = 0)
 */
#include <errno.h>
#include <getopt.h>
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

#define BATCH 32

enum loop_mode {
	M_EXCL,
	M_BATCH,
	M_SHARED,
	M_SHADOW,
	M_LOCKED,
	M_HANDLE,
	M_HBATCH,
	M_HSHADOW,
	M_PBATCH,
	M_PHBATCH
};
static const char *const mode_names[] = {"excl",   "batch",  "shared",	"shadow", "locked",
					 "handle", "hbatch", "hshadow", "pbatch", "phbatch"};
#define NMODES (sizeof(mode_names) / sizeof(mode_names[0]))

static void fail(const char *what, int ret)
{
	fprintf(stderr, "io_loop: %s failed: %s\n", what, strerror(-ret));
	exit(1);
}

int main(int argc, char **argv)
{
	enum loop_mode mode = M_EXCL;
	unsigned n, idle, sleep_us;
	unsigned long empty_polls = 0;
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL, .depth = 64};
	struct nvmk_ctrl_opts co = {.cpl_mode = NVMK_CPL_POLL};
	struct nvmk_emu_config cfg;
	struct nvmk_backing *b;
	struct nvmk_ctrl *ctrl;
	struct nvmk_qpair *qp = NULL;
	struct nvmk_ns *ns;
	struct nvmk_dma_buf buf;
	struct nvmk_io_handle *h = NULL;
	bool handle, per_call = false;
	struct nvmk_io_req reqs[BATCH];
	struct nvmk_io_hreq hreqs[BATCH];
	int ret, c;

	while ((c = getopt(argc, argv, "m:")) != -1) {
		unsigned i;

		for (i = 0; i < NMODES && (c != 'm' || strcmp(optarg, mode_names[i])); i++)
			;
		if (i == NMODES) {
			fprintf(stderr, "usage: io_loop [-m excl|batch|pbatch|shared|shadow|locked|"
					"handle|hbatch|phbatch|hshadow] [N [K [S]]]\n");
			return 2;
		}
		mode = (enum loop_mode)i;
	}
	handle = (mode >= M_HANDLE && mode <= M_HSHADOW) || mode == M_PHBATCH;
	per_call = mode == M_PBATCH || mode == M_PHBATCH;
	if (mode == M_HBATCH || mode == M_PBATCH || mode == M_PHBATCH)
		mode = M_BATCH;
	else if (mode == M_HSHADOW)
		mode = M_SHADOW;
	else if (mode == M_HANDLE)
		mode = M_EXCL;
	argc -= optind - 1;
	argv += optind - 1;
	n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 20000;
	idle = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 0) : 0;
	sleep_us = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 0) : 0;
	if (mode == M_BATCH)
		n -= n % BATCH;

	nvmk_emu_config_default(&cfg);
	cfg.name = "bench-emu";
	cfg.nr_ns = 1;
	cfg.ns[0] = (struct nvmk_emu_ns_config){
	    .nsid = 1, .nblocks = 1ull << 24, .lba_shift = 12, .backing = NVMK_EMU_BACK_NULL};
	/* shadow doorbells only in shadow mode: the others count the plain
	 * MMIO doorbell path */
	cfg.no_dbbuf = mode != M_SHADOW;
	co.dbbuf = mode == M_SHADOW ? NVMK_DBBUF_AUTO : NVMK_DBBUF_OFF;
	if ((ret = nvmk_backing_local_create(&cfg, &b, NULL)) ||
	    (ret = nvmk_ctrl_open(b, &co, &ctrl)) || (ret = nvmk_ns_open(ctrl, 1, 0, &ns)) ||
	    (ret = nvmk_ctrl_dma_alloc(ctrl, 4096 * BATCH, &buf)))
		fail("setup", ret);
	if (mode == M_LOCKED)
		qo.flags = NVMK_QPAIR_SHARED;
	if (mode == M_SHARED) {
		qp = nvmk_ctrl_get_qpair(ctrl);
		if (!qp)
			fail("nvmk_ctrl_get_qpair", -ENOMEM);
	} else if ((ret = nvmk_qpair_create(ctrl, &qo, &qp))) {
		fail("nvmk_qpair_create", ret);
	}
	if (handle && (ret = nvmk_io_handle_create(qp, ns, &buf, 0, &h)))
		fail("nvmk_io_handle_create", ret);
	for (unsigned i = 0; i < idle; i++) {
		if (nvmk_qpair_process_completions(qp, 0) != 0) {
			fprintf(stderr, "io_loop: idle queue completed something\n");
			return 1;
		}
	}
	for (unsigned i = 0; i < n;) {
		unsigned per = mode == M_BATCH ? BATCH : 1;
		unsigned want = completed + per;

		if (mode == M_BATCH && !per_call) {
			for (unsigned k = 0; k < per; k++, i++) {
				reqs[k] = (struct nvmk_io_req){.buf = &buf,
							       .off = (size_t)k * 4096u,
							       .slba = (i * 7919u) & 0xffffff,
							       .nlb = 1,
							       .cb = on_done};
				hreqs[k] = (struct nvmk_io_hreq){.off = reqs[k].off,
								 .slba = reqs[k].slba,
								 .nlb = 1,
								 .cb = on_done};
			}
			ret = h ? nvmk_io_read_batch(h, hreqs, per)
				: nvmk_ns_submit_read_batch(ns, qp, reqs, per);
			if (ret != (int)per)
				fail("batch submit", ret < 0 ? ret : -EAGAIN);
		}
		if (mode == M_BATCH && per_call && (ret = nvmk_qpair_batch_begin(qp)))
			fail("batch begin", ret);
		for (unsigned k = 0; k < per && (mode != M_BATCH || per_call); k++, i++) {
			if (h)
				ret = nvmk_io_read(h, (size_t)k * 4096u, (i * 7919u) & 0xffffff, 1,
						   on_done, NULL);
			else
				ret = nvmk_ns_submit_read(ns, qp, &buf, (size_t)k * 4096u,
							  (i * 7919u) & 0xffffff, 1, 0, on_done,
							  NULL);
			if (ret)
				fail("submit", ret);
		}
		if (mode == M_BATCH && per_call && (ret = nvmk_qpair_batch_end(qp)))
			fail("batch end", ret);
		while (completed < want) {
			if (sleep_us)
				usleep(sleep_us);
			ret = nvmk_qpair_process_completions(qp, 0);
			if (ret < 0)
				fail("process completions", ret);
			if (ret == 0)
				empty_polls++;
		}
	}
	printf("io_loop: mode %s%s%s, %u reads completed\n", mode_names[mode],
	       per_call ? " (per call)" : "", h ? " (I/O handle)" : "", completed);
	nvmk_io_handle_destroy(h);
	printf("empty_polls=%lu\n", empty_polls);
	nvmk_ctrl_dma_free(ctrl, &buf);
	if (mode != M_SHARED)
		nvmk_qpair_destroy(qp);
	nvmk_ns_close(ns);
	nvmk_ctrl_close(ctrl);
	nvmk_backing_destroy(b);
	return 0;
}
