// SPDX-License-Identifier: MIT
/*
 * Soak: mixed, verified I/O on several threads against the emulator while
 * the main thread injects random faults (delays, hangs, error statuses, lost
 * interrupts), resets the controller, and resizes, adds and removes
 * namespaces. Prints I/Os, faults, recoveries and errors; exits 1 on any data
 * error or exactly-once violation (the bar is 0 of both).
 *
 * Each worker owns an exclusive qpair (poll or interrupt mode, alternating)
 * and a range of 256 blocks of namespace 1, and keeps up to 8 requests in
 * flight: a write of block L stamps (worker, L, generation) into every
 * 16-byte word; a read checks the whole block against the stamp it
 * carries. A failed write leaves the block at either its previous or its new
 * generation (both are accepted until a read or a successful write settles
 * it); a successful read must show one of them, fully.
 *
 * Usage: soak [--minutes M] [--seconds S] [--threads N]
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/driver.h"
#include "nvmekeep/emu.h"
#include "nvmekeep/log.h"

#define BLK	    512u
#define RANGE	    256u /* blocks per worker */
#define QD	    8u
#define MAX_THREADS 8u

static _Atomic uint64_t n_ios, n_errors, n_data_errors, n_once_violations, n_resets, n_recoveries,
    n_faults, n_ns_changes, n_submit_busy;
static atomic_int stop;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void quiet(void *ctx, enum nvmk_log_level level, const char *line)
{
	(void)ctx;
	if (level <= NVMK_LOG_ERR && getenv("NVMK_SOAK_VERBOSE"))
		fprintf(stderr, "%s\n", line);
	(void)line;
}

struct slot {
	struct worker *w;
	bool busy, is_write;
	unsigned lba; /* within the worker's range */
	uint32_t gen;
	int calls;
};

struct worker {
	unsigned id;
	struct nvmk_ctrl *ctrl;
	struct nvmk_ns *ns;
	struct nvmk_qpair *qp;
	struct nvmk_dma_buf buf;	 /* QD blocks */
	uint32_t cur[RANGE], alt[RANGE]; /* settled generation, and the other possible one */
	bool uncertain[RANGE], inflight[RANGE];
	uint32_t next_gen;
	struct slot slots[QD];
	uint64_t rng;
	pthread_t th;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void stamp(uint8_t *p, unsigned w, unsigned lba, uint32_t gen)
{
	for (unsigned i = 0; i < BLK; i += 16) {
		uint32_t v[4] = {0x50a4c0de, w, lba, gen};

		memcpy(p + i, v, 16);
	}
}

/* The generation a block carries, or -1 when it is not one whole stamp of
 * this worker and block (gen 0 = never written: all zeroes). */
static int64_t read_stamp(const uint8_t *p, unsigned w, unsigned lba)
{
	uint32_t v[4];
	static const uint8_t zero[BLK];

	if (!memcmp(p, zero, BLK))
		return 0;
	memcpy(v, p, 16);
	if (v[0] != 0x50a4c0de || v[1] != w || v[2] != lba)
		return -1;
	for (unsigned i = 16; i < BLK; i += 16)
		if (memcmp(p + i, p, 16))
			return -1;
	return v[3];
}

static void io_done(void *arg, const struct nvmk_cpl *cpl)
{
	struct slot *s = arg;
	struct worker *w = s->w;
	unsigned l = s->lba;

	if (++s->calls != 1 || !s->busy) {
		atomic_fetch_add(&n_once_violations, 1);
		fprintf(stderr, "soak: worker %u: request on block %u completed twice\n", w->id, l);
		return;
	}
	s->busy = false;
	w->inflight[l] = false;
	atomic_fetch_add(&n_ios, 1);
	if (cpl->err)
		atomic_fetch_add(&n_errors, 1);
	if (s->is_write) {
		if (cpl->err == 0) {
			w->cur[l] = s->gen;
			w->uncertain[l] = false;
		} else if (!w->uncertain[l]) {
			/* may or may not have reached the media */
			w->alt[l] = s->gen;
			w->uncertain[l] = true;
		} else {
			/* a third possibility: keep the newest two is not enough;
			 * accept any stamp of this block from now until settled */
			w->alt[l] = UINT32_MAX;
		}
		return;
	}
	if (cpl->err)
		return;
	const uint8_t *p = (const uint8_t *)w->buf.mem.vaddr + (size_t)(s - w->slots) * BLK;
	int64_t g = read_stamp(p, w->id, l);
	bool ok =
	    g >= 0 && ((uint32_t)g == w->cur[l] ||
		       (w->uncertain[l] && (w->alt[l] == UINT32_MAX || (uint32_t)g == w->alt[l])));

	if (!ok) {
		atomic_fetch_add(&n_data_errors, 1);
		fprintf(stderr, "soak: worker %u block %u: read gen %lld, expected %u%s%u\n", w->id,
			l, (long long)g, w->cur[l], w->uncertain[l] ? " or " : "",
			w->uncertain[l] ? w->alt[l] : 0);
		return;
	}
	w->cur[l] = (uint32_t)g;
	w->uncertain[l] = false;
}

static void submit_one(struct worker *w, struct slot *s)
{
	unsigned l;
	int rc;

	for (int tries = 0;; tries++) {
		l = (unsigned)(rnd(&w->rng) % RANGE);
		if (!w->inflight[l])
			break;
		if (tries > 16)
			return;
	}
	s->lba = l;
	s->is_write = rnd(&w->rng) % 2;
	s->calls = 0;
	s->busy = true;
	w->inflight[l] = true;
	uint64_t slba = (uint64_t)w->id * RANGE + l;
	size_t off = (size_t)(s - w->slots) * BLK;

	if (s->is_write) {
		s->gen = ++w->next_gen;
		stamp((uint8_t *)w->buf.mem.vaddr + off, w->id, l, s->gen);
		rc = nvmk_ns_submit_write(w->ns, w->qp, &w->buf, off, slba, 1, 0, io_done, s);
	} else {
		memset((uint8_t *)w->buf.mem.vaddr + off, 0xee, BLK);
		rc = nvmk_ns_submit_read(w->ns, w->qp, &w->buf, off, slba, 1, 0, io_done, s);
	}
	if (rc) {
		s->busy = false;
		w->inflight[l] = false;
		if (rc == -EAGAIN)
			atomic_fetch_add(&n_submit_busy, 1);
		else if (rc != -ENODEV && rc != -EIO) {
			fprintf(stderr, "soak: worker %u: submit returned %d (not in driver.h)\n",
				w->id, rc);
			atomic_fetch_add(&n_once_violations, 1);
		}
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	while (!atomic_load(&stop)) {
		for (unsigned i = 0; i < QD; i++)
			if (!w->slots[i].busy)
				submit_one(w, &w->slots[i]);
		nvmk_qpair_wait(w->qp, 20);
	}
	/* drain what is in flight (bounded: every command completes) */
	uint64_t end = now_ms() + 30000;

	for (;;) {
		unsigned busy = 0;

		for (unsigned i = 0; i < QD; i++)
			busy += w->slots[i].busy;
		if (!busy || now_ms() > end)
			break;
		nvmk_qpair_wait(w->qp, 20);
	}
	return NULL;
}

static void event_cb(void *ctx, struct nvmk_ctrl *ctrl, const struct nvmk_event *ev)
{
	(void)ctx;
	(void)ctrl;
	if (ev->type == NVMK_EVENT_CTRL_RESET)
		atomic_fetch_add(&n_recoveries, 1);
}

static void inject(struct nvmk_emu *emu, uint64_t *rng)
{
	static const enum nvmk_emu_fault_kind kinds[] = {NVMK_FAULT_DELAY, NVMK_FAULT_HANG,
							 NVMK_FAULT_STATUS, NVMK_FAULT_DROP_IRQ};
	static const uint16_t statuses[] = {
	    NVME_SF(NVME_SCT_GENERIC, NVME_SC_INTERNAL),
	    NVME_SF(NVME_SCT_GENERIC, NVME_SC_NS_NOT_READY),
	    NVME_SF(NVME_SCT_MEDIA, NVME_SC_READ_ERROR),
	    NVME_SF(NVME_SCT_GENERIC, NVME_SC_ABORT_REQ),
	};
	struct nvmk_emu_fault f = {
	    .kind = kinds[rnd(rng) % 4],
	    .qid = NVMK_FAULT_ANY_QID,
	    .opcode = rnd(rng) % 2 ? NVME_CMD_READ : NVME_CMD_WRITE,
	    .skip = (uint32_t)(rnd(rng) % 50),
	    .count = 1 + (uint32_t)(rnd(rng) % 3),
	    .delay_us = 1000 + rnd(rng) % 50000,
	    .status = statuses[rnd(rng) % 4],
	};

	if (nvmk_emu_fault_add(emu, &f) >= 0)
		atomic_fetch_add(&n_faults, 1);
}

int main(int argc, char **argv)
{
	unsigned seconds = 60, nthreads = 4;
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = {0};
	struct worker *w;
	struct nvmk_backing *b;
	struct nvmk_emu *emu;
	struct nvmk_ctrl *ctrl;
	uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL), start, next_reset, next_ns;
	bool ns2 = false, big = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--minutes") && i + 1 < argc)
			seconds = (unsigned)atoi(argv[++i]) * 60u;
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			nthreads = (unsigned)atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: soak [--minutes M] [--seconds S] [--threads N]\n");
			return 2;
		}
	}
	if (nthreads < 1 || nthreads > MAX_THREADS)
		nthreads = 4;
	nvmk_log_set_sink(quiet, NULL);
	nvmk_log_set_level(NVMK_LOG_ERR);
	nvmk_emu_config_default(&cfg);
	cfg.name = "soak";
	cfg.ns[0].nblocks = (uint64_t)MAX_THREADS * RANGE;
	cfg.max_io_queues = 8;
	cfg.msix_vectors = 9;
	if (nvmk_backing_local_create(&cfg, &b, &emu)) {
		fprintf(stderr, "soak: no emulator\n");
		return 1;
	}
	o.admin_timeout_ms = 500;
	o.io_timeout_ms = 200;
	o.health_check_ms = 10;
	o.max_io_queues = (uint16_t)nthreads;
	o.io_queue_depth = 32;
	o.event_cb = event_cb;
	if (nvmk_ctrl_open(b, &o, &ctrl)) {
		fprintf(stderr, "soak: open failed\n");
		return 1;
	}
	w = calloc(nthreads, sizeof(*w));
	for (unsigned i = 0; i < nthreads; i++) {
		struct nvmk_qpair_opts qo = {.mode = i % 2 ? NVMK_CPL_POLL : NVMK_CPL_INTERRUPT};

		w[i].id = i;
		w[i].ctrl = ctrl;
		w[i].rng = rng + i * 7919u;
		for (unsigned s = 0; s < QD; s++)
			w[i].slots[s].w = &w[i];
		if (nvmk_ns_open(ctrl, 1, NVMK_NS_SHARED, &w[i].ns) ||
		    nvmk_qpair_create(ctrl, &qo, &w[i].qp) ||
		    nvmk_ctrl_dma_alloc(ctrl, QD * BLK, &w[i].buf)) {
			fprintf(stderr, "soak: worker %u setup failed\n", i);
			return 1;
		}
		pthread_create(&w[i].th, NULL, worker_main, &w[i]);
	}
	start = now_ms();
	next_reset = start + 1500;
	next_ns = start + 700;
	while (now_ms() - start < (uint64_t)seconds * 1000u) {
		struct timespec ts = {0, 50 * 1000000L};

		nanosleep(&ts, NULL);
		inject(emu, &rng);
		if (now_ms() >= next_reset) {
			if (nvmk_ctrl_reset(ctrl) == 0)
				atomic_fetch_add(&n_resets, 1);
			next_reset = now_ms() + 1000 + rnd(&rng) % 2000;
		}
		if (now_ms() >= next_ns) {
			/* namespace 1 grows and shrinks (never below what the
			 * workers use); namespace 2 comes and goes */
			nvmk_emu_ns_resize(emu, 1, (uint64_t)MAX_THREADS * RANGE * (big ? 1 : 2));
			big = !big;
			if (ns2) {
				nvmk_emu_ns_remove(emu, 2);
			} else {
				struct nvmk_emu_ns_config n2 = {.nsid = 2,
								.nblocks = 1024,
								.lba_shift = 12,
								.backing = NVMK_EMU_BACK_NULL};
				nvmk_emu_ns_add(emu, &n2);
			}
			ns2 = !ns2;
			atomic_fetch_add(&n_ns_changes, 2);
			next_ns = now_ms() + 500 + rnd(&rng) % 1000;
		}
		if (nvmk_ctrl_failed(ctrl)) {
			fprintf(stderr, "soak: controller failed (%d)\n", nvmk_ctrl_failed(ctrl));
			break;
		}
	}
	atomic_store(&stop, 1);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(w[i].th, NULL);
	nvmk_emu_fault_clear(emu);
	unsigned left = 0;

	for (unsigned i = 0; i < nthreads; i++)
		for (unsigned s = 0; s < QD; s++)
			left += w[i].slots[s].busy;
	int failed = nvmk_ctrl_failed(ctrl);
	for (unsigned i = 0; i < nthreads; i++) {
		nvmk_qpair_destroy(w[i].qp);
		nvmk_ctrl_dma_free(ctrl, &w[i].buf);
		nvmk_ns_close(w[i].ns);
	}
	for (unsigned i = 0; i < nthreads; i++)
		for (unsigned s = 0; s < QD; s++)
			if (w[i].slots[s].busy) {
				atomic_fetch_add(&n_once_violations, 1);
				left++;
			}
	nvmk_ctrl_close(ctrl);
	nvmk_backing_destroy(b);
	free(w);
	printf("soak: %u s, %u threads: I/Os %llu, faults injected %llu, controller resets %llu "
	       "(requested %llu), namespace changes %llu, completion errors %llu, submit -EAGAIN "
	       "%llu, controller failed %d, data errors %llu, exactly-once violations %llu\n",
	       (unsigned)((now_ms() - start) / 1000), nthreads,
	       (unsigned long long)atomic_load(&n_ios), (unsigned long long)atomic_load(&n_faults),
	       (unsigned long long)atomic_load(&n_recoveries),
	       (unsigned long long)atomic_load(&n_resets),
	       (unsigned long long)atomic_load(&n_ns_changes),
	       (unsigned long long)atomic_load(&n_errors),
	       (unsigned long long)atomic_load(&n_submit_busy), failed,
	       (unsigned long long)atomic_load(&n_data_errors),
	       (unsigned long long)atomic_load(&n_once_violations));
	return atomic_load(&n_data_errors) || atomic_load(&n_once_violations) || failed ? 1 : 0;
}
