// SPDX-License-Identifier: MIT
/*
 * Servicing blackout, in one process against the emulator: the time from
 * nvmk_ctrl_save (keep-alive) through detach, pool handover and
 * nvmk_ctrl_restore to the completion of the first new I/O, with a few
 * commands in flight at save time (held by the emulator for 1 ms). Prints
 * min / median / max over the cycles, and the save and restore parts.
 *
 * usage: blackout [cycles (default 50)] [in-flight commands (default 8)]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/driver.h"
#include "nvmekeep/emu.h"
#include "nvmekeep/log.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void quiet(void *ctx, enum nvmk_log_level level, const char *line)
{
	(void)ctx;
	if (level <= NVMK_LOG_WARN)
		fprintf(stderr, "%s\n", line);
}

static unsigned done;
static int first_done;

#define FIRST_NEW_IO 99 /* token of the first I/O after restore */

static void cpl_cb(void *arg, const struct nvmk_cpl *cpl)
{
	if (cpl->err)
		fprintf(stderr, "I/O failed: %d\n", cpl->err);
	if ((uintptr_t)arg == FIRST_NEW_IO)
		first_done = 1;
	done++;
}

static int resolve(void *ctx, uint64_t token, nvmk_cpl_fn *cb, void **arg)
{
	(void)ctx;
	*cb = cpl_cb;
	*arg = (void *)(uintptr_t)token;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void print_row(const char *what, uint64_t *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("%-28s min %8.1f  median %8.1f  max %8.1f us\n", what, v[0] / 1000.0,
	       v[n / 2] / 1000.0, v[n - 1] / 1000.0);
}

int main(int argc, char **argv)
{
	unsigned cycles = argc > 1 ? (unsigned)atoi(argv[1]) : 50;
	unsigned inflight = argc > 2 ? (unsigned)atoi(argv[2]) : 8;
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = {.max_io_queues = 2, .io_timeout_ms = 10000};
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL};
	struct nvmk_restore_opts ro = {.resolve = resolve, .defer_completions = true};
	struct nvmk_backing *b;
	struct nvmk_emu *emu;
	struct nvmk_dma_pool *pool;
	struct nvmk_ctrl *ctrl;
	struct nvmk_qpair *qp;
	struct nvmk_ns *ns;
	struct nvmk_dma_buf d;
	uint16_t qid;
	uint64_t *total, *save, *restore, *first, *base, *popen;

	if (cycles < 1 || inflight > 64)
		return 2;
	total = calloc(cycles, sizeof(*total));
	save = calloc(cycles, sizeof(*save));
	restore = calloc(cycles, sizeof(*restore));
	first = calloc(cycles, sizeof(*first));
	base = calloc(cycles, sizeof(*base));
	popen = calloc(cycles, sizeof(*popen));
	nvmk_log_set_sink(quiet, NULL);
	nvmk_emu_config_default(&cfg);
	cfg.name = "bench-blackout";
	cfg.ns[0].backing = NVMK_EMU_BACK_NULL;
	if (nvmk_backing_local_create(&cfg, &b, &emu) || nvmk_dma_pool_create(2048, 0, &pool))
		return 1;
	b->pool = pool;
	if (nvmk_ctrl_open(b, &o, &ctrl) || nvmk_ns_open(ctrl, 1, 0, &ns) ||
	    nvmk_qpair_create(ctrl, &qo, &qp))
		return 1;
	qid = nvmk_qpair_id(qp);
	/* the data buffer is the caller's: ephemeral, it stays mapped */
	b->pool = NULL;
	if (nvmk_ctrl_dma_alloc(ctrl, 65 * 4096, &d))
		return 1;
	b->pool = pool;

	for (unsigned c = 0; c < cycles; c++) {
		struct nvmk_dma_pool *np;
		void *blob;
		size_t len;
		uint64_t t0, tp, t1, t2;
		int fid;

		/* baseline without servicing: one read after the same idle time */
		{
			struct timespec idle = {0, 500000};
			uint64_t tb;

			nanosleep(&idle, NULL);
			first_done = 0;
			tb = now_ns();
			if (nvmk_ns_submit_read(ns, qp, &d, 0, 1000, 8, 0, cpl_cb,
						(void *)(uintptr_t)FIRST_NEW_IO))
				return 1;
			while (!first_done)
				nvmk_qpair_process_completions(qp, 0);
			base[c] = now_ns() - tb;
		}
		/* count 0 would mean every command: no rule without commands */
		fid = !inflight ? 0
				: nvmk_emu_fault_add(
				      emu, &(struct nvmk_emu_fault){.kind = NVMK_FAULT_DELAY,
								    .qid = qid,
								    .opcode = NVMK_FAULT_ANY_OPC,
								    .count = inflight,
								    .delay_us = 1000});
		(void)fid;
		done = 0;
		for (unsigned i = 0; i < inflight; i++)
			if (nvmk_ns_submit_read(ns, qp, &d, 4096 * (i + 1), 8 * i, 8, 0, cpl_cb,
						(void *)(uintptr_t)(i + 1)))
				return 1;

		t0 = now_ns();
		if (nvmk_ctrl_save(ctrl, NULL, &blob, &len))
			return 1;
		nvmk_ctrl_detach(ctrl);
		tp = now_ns();
		if (nvmk_dma_pool_open(dup(nvmk_dma_pool_fd(pool)), &np))
			return 1;
		b->pool = np;
		t1 = now_ns();
		if (nvmk_ctrl_restore(b, blob, len, &ro, &ctrl))
			return 1;
		t2 = now_ns();
		free(blob);
		qp = nvmk_ctrl_restored_qpair(ctrl, qid);
		ns = nvmk_ctrl_restored_ns(ctrl, 1);
		/* the first new I/O: a 4 KiB read on the restored queue */
		first_done = 0;
		if (nvmk_ns_submit_read(ns, qp, &d, 0, 1000, 8, 0, cpl_cb,
					(void *)(uintptr_t)FIRST_NEW_IO))
			return 1;
		while (!first_done)
			nvmk_qpair_process_completions(qp, 0);
		total[c] = now_ns() - t0;
		first[c] = t0 + total[c] - t2;
		save[c] = tp - t0;
		popen[c] = t1 - tp;
		restore[c] = t2 - t1;
		/* the commands held over the servicing finish before the next cycle */
		while (done < inflight + 1)
			nvmk_qpair_process_completions(qp, 0);
		if (nvmk_dma_pool_finish_restore(np))
			return 1;
		nvmk_dma_pool_destroy(pool);
		pool = np;
		nvmk_emu_fault_clear(emu);
	}
	printf("servicing blackout, in-process emulator, %u commands in flight, %u cycles\n",
	       inflight, cycles);
	print_row("save + detach", save, cycles);
	print_row("pool handover (open)", popen, cycles);
	print_row("restore", restore, cycles);
	print_row("restore -> first new I/O done", first, cycles);
	print_row("no servicing: idle 0.5 ms, I/O", base, cycles);
	print_row("save -> first new I/O done", total, cycles);
	nvmk_qpair_destroy(qp);
	nvmk_ns_close(ns);
	nvmk_ctrl_dma_free(ctrl, &d);
	nvmk_ctrl_close(ctrl);
	nvmk_backing_destroy(b);
	nvmk_dma_pool_destroy(pool);
	free(total);
	free(save);
	free(restore);
	free(first);
	free(base);
	free(popen);
	return 0;
}
