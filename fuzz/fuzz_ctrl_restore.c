// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: a saved controller state that the validator accepts,
 * applied by nvmk_ctrl_restore to a device whose real state was just saved
 * (the same deterministic set-up each time: an emulated controller with a
 * qpair and reads in flight, its pool handed over as after exec; the
 * pool's generation record names generation 2, as a real save leaves it).
 * Inputs close to a real state (corpus seed-*) get past the generation,
 * register and pool-block checks into the code that rebuilds queues,
 * trackers and namespaces, probes the device and delivers completions.
 *  - A refused state claims no pool block and writes no register.
 *  - An accepted one gives a controller that closes cleanly, and no request
 *    token completes more than once.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/driver.h"
#include "nvmekeep/emu.h"
#include "nvmekeep/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_restore_real_state(void **blob, size_t *len);

/* What the last input did, for the regression driver: -1 refused by the
 * validator, 0 refused by the restore, 1 restored. */
int fuzz_restore_last;

#define FUZZ_DEV "fuzz-restore"

struct fenv {
	struct nvmk_backing *b;
	struct nvmk_emu *emu;
	struct nvmk_dma_pool *pool, *old;
	struct nvmk_dma_buf d;
};

static unsigned completions[64];

static void count_cb(void *arg, const struct nvmk_cpl *cpl)
{
	(void)cpl;
	if (++completions[(uintptr_t)arg % 64] > 1 && (uintptr_t)arg % 64 != 0)
		__builtin_trap(); /* a request completed twice */
}

static int resolve_any(void *ctx, uint64_t token, nvmk_cpl_fn *cb, void **cb_arg)
{
	(void)ctx;
	*cb = count_cb;
	*cb_arg = (void *)(uintptr_t)token;
	return 0;
}

static void quiet(void *ctx, enum nvmk_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	(void)line;
}

/* The device with its state saved and detached; *@blob gets that state. */
static int env_up(struct fenv *e, void **blob, size_t *len)
{
	struct nvmk_emu_config cfg;
	struct nvmk_ctrl_opts o = {.max_io_queues = 2,
				   .io_queue_depth = 16,
				   .admin_timeout_ms = 100, /* also bounds the restore probe */
				   .io_timeout_ms = 10000,
				   .health_check_ms = 20};
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL};
	struct nvmk_ctrl *ctrl;
	struct nvmk_qpair *qp;
	struct nvmk_ns *ns;
	int fd;

	memset(e, 0, sizeof(*e));
	nvmk_log_set_sink(quiet, NULL);
	nvmk_emu_config_default(&cfg);
	cfg.name = FUZZ_DEV;
	cfg.ns[0].nblocks = 4096;
	if (nvmk_backing_local_create(&cfg, &e->b, &e->emu))
		return -1;
	if (nvmk_dma_alloc_ephemeral(1 << 20, 0, &e->d.mem) ||
	    nvmk_dma_pool_create(256, 0, &e->pool))
		return -1;
	if (e->b->ops->dma_map(e->b, &e->d)) /* the caller's buffer, outside the pool */
		return -1;
	e->b->pool = e->pool;
	if (nvmk_ctrl_open(e->b, &o, &ctrl))
		return -1;
	/* from here a failure closes the controller, whose admin thread would
	 * otherwise outlive the backing env_down destroys (seen under load,
	 * where the 100 ms admin timeout expires) */
	if (nvmk_ns_open(ctrl, 1, 0, &ns) || nvmk_qpair_create(ctrl, &qo, &qp))
		goto fail;
	nvmk_emu_fault_add(e->emu, &(struct nvmk_emu_fault){.kind = NVMK_FAULT_DELAY,
							    .qid = nvmk_qpair_id(qp),
							    .opcode = NVMK_FAULT_ANY_OPC,
							    .delay_us = 20000});
	/* a plain read and one split across MDTS (a parent with two parts) */
	if (nvmk_ns_submit_read(ns, qp, &e->d, 0, 0, 8, 0, count_cb, (void *)(uintptr_t)1) ||
	    nvmk_ns_submit_read(ns, qp, &e->d, 4096, 8, 512, 0, count_cb, (void *)(uintptr_t)2) ||
	    nvmk_ctrl_save(ctrl, NULL, blob, len))
		goto fail;
	nvmk_ctrl_detach(ctrl);
	fd = dup(nvmk_dma_pool_fd(e->pool));
	e->old = e->pool;
	if (fd < 0 || nvmk_dma_pool_open(fd, &e->pool))
		return -1;
	e->b->pool = e->pool;
	return 0;
fail:
	/* close completes what was submitted (-ECANCELED): count afresh */
	memset(completions, 0, sizeof(completions));
	nvmk_ctrl_close(ctrl);
	return -1;
}

static void env_down(struct fenv *e, struct nvmk_ctrl *ctrl)
{
	nvmk_ctrl_close(ctrl);	    /* the device stops using its memory */
	nvmk_backing_destroy(e->b); /* the emulator too, when no controller closed it */
	nvmk_dma_free(&e->d.mem);
	nvmk_dma_pool_destroy(e->pool);
	nvmk_dma_pool_destroy(e->old);
}

int fuzz_restore_real_state(void **blob, size_t *len)
{
	struct fenv e;
	int rc = env_up(&e, blob, len);

	env_down(&e, NULL);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvmk_restore_opts ro = {.resolve = resolve_any};
	struct nvmk_dma_pool_stats before, after;
	struct nvmk_ctrl *ctrl = NULL;
	struct fenv e;
	void *real;
	size_t rlen;
	uint32_t cc;

	nvmk_log_set_sink(quiet, NULL);
	fuzz_restore_last = -1;
	if (nvmk_ctrl_state_validate(data, size, NULL, 0) != 0)
		return 0; /* the validator is fuzz_ctrl_state's */
	fuzz_restore_last = 0;
	if (env_up(&e, &real, &rlen)) {
		env_down(&e, NULL);
		return 0;
	}
	free(real);
	memset(completions, 0, sizeof(completions));
	nvmk_dma_pool_get_stats(e.pool, &before);
	cc = nvmk_emu_reg_read32(e.emu, NVME_REG_CC);
	if (nvmk_ctrl_restore(e.b, data, size, &ro, &ctrl) != 0) {
		nvmk_dma_pool_get_stats(e.pool, &after);
		if (ctrl || after.unclaimed_slots != before.unclaimed_slots ||
		    after.used_slots != before.used_slots ||
		    nvmk_emu_reg_read32(e.emu, NVME_REG_CC) != cc)
			__builtin_trap(); /* a refused restore touched something */
		env_down(&e, NULL);
		return 0;
	}
	fuzz_restore_last = 1;
	/* take back what was restored and let the requests complete */
	for (uint16_t qid = 1; qid <= 8; qid++) {
		struct nvmk_qpair *qp = nvmk_ctrl_restored_qpair(ctrl, qid);

		if (qp)
			(void)nvmk_qpair_process_completions(qp, 0);
	}
	for (uint32_t nsid = 1; nsid <= 4; nsid++) {
		struct nvmk_ns *ns;

		while ((ns = nvmk_ctrl_restored_ns(ctrl, nsid)))
			nvmk_ns_close(ns);
	}
	nvmk_dma_pool_finish_restore(e.pool);
	env_down(&e, ctrl);
	return 0;
}
