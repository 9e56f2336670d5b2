// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: a manager state (src/manager/mgr_state.proto), checked
 * by nvmk_mgr_state_validate and, when accepted, applied by nvmk_mgr_restore
 * to a fresh manager in the same deterministic set-up each time: a keep-alive
 * configuration with a private pool, two emulated devices of which "nvme-a"
 * was loaded (a namespace, a qpair and a client buffer) and saved, its
 * backing and the pool handed to the successor as after exec, and "nvme-b"
 * registered but never loaded. Inputs close to the real state (corpus
 * seed-*) get past the envelope and pool checks into device matching, the
 * driver restore, namespace re-opening and client buffer reclaim.
 *  - A refusal of the validator gives an error string and an error code it
 *    documents (nvmk_mgr_restore decodes with the same function first).
 *  - An accepted state restores or fails per device, and the manager is
 *    destroyed cleanly either way (ASan: no leak, no use after free).
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
#include "nvmekeep/manager.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_mgr_real_state(void **blob, size_t *len);

/* What the last input did, for the regression driver: -1 refused by the
 * validator, 0 refused or failed by the restore, 1 restored. */
int fuzz_mgr_last;

#define NDEV 2
static const char *const dev_ids[NDEV] = {"nvme-a", "nvme-b"};

struct handover {
	struct nvmk_emu_config cfg;
	struct nvmk_backing *b; /* taken from the predecessor, or NULL */
};

struct fenv {
	struct nvmk_config cfg;
	struct handover h[NDEV];
	struct nvmk_mgr *old, *mgr;
};

static void quiet(void *ctx, enum nvmk_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	(void)line;
}

static const char *fake_getenv(const char *name)
{
	if (strcmp(name, "OPENHCL_NVME_KEEP_ALIVE") == 0)
		return "host,privatepool";
	if (strcmp(name, "OPENHCL_IGVM_VTL2_GPA_POOL_CONFIG") == 0)
		return "512";
	return NULL;
}

static int handover_create(void *ctx, const char *id, bool restoring, struct nvmk_backing **out)
{
	struct handover *h = ctx;

	(void)restoring;
	if (h->b) {
		*out = h->b;
		h->b = NULL;
		return 0;
	}
	h->cfg.name = id;
	return nvmk_backing_local_create(&h->cfg, out, NULL);
}

static int resolve_none(void *ctx, uint64_t token, nvmk_cpl_fn *cb, void **cb_arg)
{
	(void)ctx;
	(void)token;
	(void)cb;
	(void)cb_arg;
	return -ENOENT; /* nothing was in flight at the save */
}

static int add_devices(struct nvmk_mgr *mgr, struct handover *h)
{
	for (unsigned d = 0; d < NDEV; d++) {
		struct nvmk_mgr_device_spec s;

		memset(&s, 0, sizeof(s));
		s.id = dev_ids[d];
		s.kind = NVMK_MGR_BACKING_FACTORY;
		nvmk_emu_config_default(&h[d].cfg);
		h[d].cfg.ns[0].nblocks = 2048;
		h[d].cfg.max_io_queues = 4;
		h[d].cfg.msix_vectors = 5;
		h[d].cfg.cap_to = 1; /* 500 ms */
		s.factory.create = handover_create;
		s.factory.ctx = &h[d];
		s.factory.keep_alive_capable = true;
		s.ctrl_opts.admin_timeout_ms = 200; /* also bounds the restore probe */
		s.ctrl_opts.io_timeout_ms = 2000;
		s.ctrl_opts.shutdown_timeout_ms = 500;
		s.ctrl_opts.max_io_queues = 2;
		s.ctrl_opts.dbbuf = NVMK_DBBUF_OFF;
		if (nvmk_mgr_add_device(mgr, &s))
			return -1;
	}
	return 0;
}

/* The predecessor saved, the successor registered; *@blob gets the state. */
static int env_up(struct fenv *e, void **blob, size_t *len)
{
	struct nvmk_config_facts facts = {.host_keep_alive = true, .pool_present = true, .cpus = 2};
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_POLL};
	struct nvmk_dma_pool *pool = NULL;
	struct nvmk_dma_buf buf;
	struct nvmk_qpair *qp;
	struct nvmk_ns *ns;
	int fd;

	memset(e, 0, sizeof(*e));
	nvmk_log_set_sink(quiet, NULL);
	if (nvmk_config_load(fake_getenv, &facts, &e->cfg) || !e->cfg.keep_alive.enabled)
		return -1;
	if (nvmk_mgr_create(&e->cfg, NULL, &e->old) || add_devices(e->old, e->h))
		return -1;
	if (nvmk_mgr_get_namespace(e->old, dev_ids[0], 1, &ns) ||
	    nvmk_mgr_create_qpair(e->old, dev_ids[0], &qo, &qp) ||
	    nvmk_mgr_dma_alloc(e->old, dev_ids[0], "data", 8192, &buf))
		return -1;
	if (nvmk_mgr_save(e->old, blob, len) ||
	    nvmk_mgr_take_backing(e->old, dev_ids[0], &e->h[0].b))
		return -1;
	fd = dup(nvmk_dma_pool_fd(nvmk_mgr_pool(e->old)));
	if (fd < 0 || nvmk_dma_pool_open(fd, &pool))
		return -1;
	if (nvmk_mgr_create(&e->cfg, pool, &e->mgr)) {
		nvmk_dma_pool_destroy(pool);
		return -1;
	}
	return add_devices(e->mgr, e->h);
}

static void env_down(struct fenv *e)
{
	/* a backing never handed to the successor (its restore was refused
	 * first) goes first: its device still runs queues in the pool */
	for (unsigned d = 0; d < NDEV; d++)
		if (e->h[d].b)
			nvmk_backing_destroy(e->h[d].b);
	nvmk_mgr_destroy(e->mgr);
	nvmk_mgr_destroy(e->old); /* after the successor: the pool mapping goes last */
}

int fuzz_mgr_real_state(void **blob, size_t *len)
{
	struct fenv e;
	int rc = env_up(&e, blob, len);

	env_down(&e);
	return rc;
}

static bool documented_refusal(int rc)
{
	return rc == -EBADMSG || rc == -EPROTONOSUPPORT || rc == -ENOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvmk_mgr_restore_opts ro = {.resolve = resolve_none};
	char why[256];
	struct fenv e;
	void *real = NULL;
	size_t rlen;
	int rc;

	nvmk_log_set_sink(quiet, NULL);
	fuzz_mgr_last = -1;
	why[0] = 0;
	rc = nvmk_mgr_state_validate(data, size, why, sizeof(why));
	if (rc != 0) {
		if (!documented_refusal(rc) || (rc != -ENOMEM && why[0] == 0))
			__builtin_trap(); /* a refusal must say why, with a documented code */
		return 0;
	}
	fuzz_mgr_last = 0;
	if (env_up(&e, &real, &rlen)) {
		free(real);
		env_down(&e);
		return 0;
	}
	free(real);
	/* a device's driver state may still be refused (-EBADMSG, -ESTALE...):
	 * that device is FAILED, the others go on; any code is allowed here,
	 * what counts is that the manager is destroyed cleanly after it */
	if (nvmk_mgr_restore(e.mgr, data, size, &ro) == 0)
		fuzz_mgr_last = 1;
	env_down(&e);
	return 0;
}
