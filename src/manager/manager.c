// SPDX-License-Identifier: MIT
/*
 * The manager: device registry, client API (namespace handles), orderly
 * shutdown, and creation from the environment.
 *
 * Modelled on OpenHCL's NvmeManager (openhcl/underhill_core/src/nvme_manager):
 * a client asks for (device, nsid); the request goes to that device's worker,
 * which loads the driver on first use; shutdown refuses new requests and
 * shuts every device down in parallel.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manager/mgr_internal.h"
#include "nvmekeep/log.h"

#define MGR_LOG "manager" /* device name of manager-wide log lines */

static int mgr_create(const struct nvmk_config *cfg, struct nvmk_dma_pool *pool, bool make_pool,
		      struct nvmk_mgr **out)
{
	struct nvmk_mgr *mgr;
	int rc;

	if (!cfg || !out)
		return -EINVAL;
	mgr = calloc(1, sizeof(*mgr));
	if (!mgr)
		return -ENOMEM;
	mgr->cfg = *cfg;
	pthread_mutex_init(&mgr->lock, NULL);
	pthread_cond_init(&mgr->refs_cv, NULL);
	mgr->pool = pool;
	if (!pool && make_pool && cfg->private_pool.pages > 0) {
		rc = nvmk_dma_pool_create(cfg->private_pool.pages, NVMK_DMA_POOL_HUGETLB_TRY,
					  &mgr->pool);
		if (rc) {
			nvmk_err(MGR_LOG, NVMK_LOG_NOQ,
				 "creating the private DMA pool of %llu pages failed: %d",
				 (unsigned long long)cfg->private_pool.pages, rc);
			pthread_cond_destroy(&mgr->refs_cv);
			pthread_mutex_destroy(&mgr->lock);
			free(mgr);
			return rc;
		}
	}
	nvmk_info(MGR_LOG, NVMK_LOG_NOQ, "keep-alive %s (%s), private pool %llu pages%s",
		  cfg->keep_alive.enabled ? "on" : "off", cfg->keep_alive.mode,
		  (unsigned long long)cfg->private_pool.pages, mgr->pool ? "" : " (no pool)");
	*out = mgr;
	return 0;
}

int nvmk_mgr_create(const struct nvmk_config *cfg, struct nvmk_dma_pool *pool,
		    struct nvmk_mgr **out)
{
	return mgr_create(cfg, pool, true, out);
}

/* The driver the configuration gives a FACTORY device whose id is a device
 * string (nvmk_config_dev_driver), 0 for any other id (a caller's own). */
static enum nvmk_dev_driver spec_factory_driver(const struct nvmk_mgr_device_spec *s,
						const struct nvmk_config *cfg)
{
	struct nvmk_dev_spec ds;

	if (s->kind != NVMK_MGR_BACKING_FACTORY || nvmk_dev_spec_parse(s->id, &ds, NULL, 0))
		return 0;
	/* only a PCI function changes driver with the configuration; a path
	 * given with a factory stays the caller's business */
	if (ds.kind != NVMK_DEV_PCI && ds.kind != NVMK_DEV_VFIO_USER)
		return 0;
	return nvmk_config_dev_driver(cfg, &ds, NULL);
}

static bool spec_keep_alive_capable(const struct nvmk_mgr_device_spec *s,
				    const struct nvmk_config *cfg)
{
	enum nvmk_dev_driver drv = spec_factory_driver(s, cfg);

	/* the in-process emulator outlives its driver by construction; a
	 * kernel-path device has nothing to hand over (the kernel keeps it,
	 * nothing of ours needs keeping alive), so it does not hold the "host"
	 * fact back: as in OpenHCL, where keep-alive concerns only the devices
	 * its NvmeManager drives through VFIO */
	return s->kind == NVMK_MGR_BACKING_EMU || s->kind == NVMK_MGR_BACKING_KERNEL ||
	       drv == NVMK_DRIVER_KERNEL ||
	       /* vfio-user: the connection and eventfds are inherited across exec
		* and the server keeps its maps (nvmk_backing_vfio_user_export_fds) */
	       drv == NVMK_DRIVER_VFIO_USER || s->factory.keep_alive_capable;
}

int nvmk_mgr_create_from_env(nvmk_getenv_fn getenv_fn, const struct nvmk_mgr_device_spec *specs,
			     unsigned n, struct nvmk_mgr **out)
{
	return nvmk_mgr_create_from_env_sized(getenv_fn, specs, n, 0, out);
}

int nvmk_mgr_create_from_env_sized(nvmk_getenv_fn getenv_fn,
				   const struct nvmk_mgr_device_spec *specs, unsigned n,
				   uint64_t client_pages, struct nvmk_mgr **out)
{
	struct nvmk_config_facts facts = {0};
	struct nvmk_dma_pool *pool = NULL;
	struct nvmk_config cfg;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	int rc;

	if (!out || (n && !specs))
		return -EINVAL;
	facts.cpus = cpus > 0 ? (unsigned)cpus : 1;
	facts.memory_bytes = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
	facts.host_keep_alive = true;
	/* the driver choice does not depend on the facts: a first load tells
	 * which PCI devices will be kernel devices (nvmk_mgr_add_device) */
	rc = nvmk_config_load(getenv_fn, &facts, &cfg);
	if (rc)
		return rc;
	for (unsigned i = 0; i < n; i++)
		if (!spec_keep_alive_capable(&specs[i], &cfg))
			facts.host_keep_alive = false;

	/* Step 1: size the pool. */
	rc = nvmk_config_load(getenv_fn, &facts, &cfg);
	if (rc)
		return rc;
	/* the heuristic counts queue memory only; client buffers come on top */
	if (cfg.private_pool.spec_kind == NVMK_POOL_HEURISTIC_RELEASE ||
	    cfg.private_pool.spec_kind == NVMK_POOL_HEURISTIC_DEBUG)
		cfg.private_pool.pages += client_pages;
	if (cfg.private_pool.pages > 0) {
		rc = nvmk_dma_pool_create(cfg.private_pool.pages, NVMK_DMA_POOL_HUGETLB_TRY, &pool);
		if (rc) {
			/* no pool is a working (if not keep-alive) configuration */
			nvmk_warn(MGR_LOG, NVMK_LOG_NOQ,
				  "private DMA pool of %llu pages could not be created (%s): "
				  "running without it",
				  (unsigned long long)cfg.private_pool.pages, strerror(-rc));
			pool = NULL;
		}
	}
	/* Step 2: with the pool's existence known, infer keep-alive again. */
	facts.pool_present = pool != NULL;
	rc = nvmk_config_load(getenv_fn, &facts, &cfg);
	if (rc == 0)
		rc = mgr_create(&cfg, pool, false, out);
	if (rc) {
		nvmk_dma_pool_destroy(pool);
		return rc;
	}
	for (unsigned i = 0; i < n; i++) {
		rc = nvmk_mgr_add_device(*out, &specs[i]);
		if (rc) {
			nvmk_mgr_destroy(*out);
			*out = NULL;
			return rc;
		}
	}
	return 0;
}

const struct nvmk_config *nvmk_mgr_config(const struct nvmk_mgr *mgr)
{
	return &mgr->cfg;
}

struct nvmk_dma_pool *nvmk_mgr_pool(const struct nvmk_mgr *mgr)
{
	return mgr->pool;
}

struct mgr_dev *mgr_find(struct nvmk_mgr *mgr, const char *id)
{
	struct mgr_dev *d;

	pthread_mutex_lock(&mgr->lock);
	for (d = mgr->devs; d; d = d->next)
		if (strcmp(d->id, id) == 0)
			break;
	if (d)
		d->refs++;
	pthread_mutex_unlock(&mgr->lock);
	return d;
}

void mgr_dev_put(struct mgr_dev *d)
{
	struct nvmk_mgr *mgr;

	if (!d)
		return;
	mgr = d->mgr;
	pthread_mutex_lock(&mgr->lock);
	if (--d->refs == 0)
		pthread_cond_broadcast(&mgr->refs_cv);
	pthread_mutex_unlock(&mgr->lock);
}

void mgr_devices_put(struct mgr_dev **devs, unsigned n)
{
	for (unsigned i = 0; devs && i < n; i++)
		mgr_dev_put(devs[i]);
	free(devs);
}

int mgr_devices(struct nvmk_mgr *mgr, struct mgr_dev ***out, unsigned *n)
{
	struct mgr_dev **v;
	unsigned i = 0;

	pthread_mutex_lock(&mgr->lock);
	v = calloc(mgr->ndevs ? mgr->ndevs : 1, sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&mgr->lock);
		return -ENOMEM;
	}
	for (struct mgr_dev *d = mgr->devs; d; d = d->next) {
		d->refs++;
		v[i++] = d;
	}
	pthread_mutex_unlock(&mgr->lock);
	*out = v;
	*n = i;
	return 0;
}

static char *copy_str(char *dst, size_t size, const char *src)
{
	if (!src)
		return NULL;
	snprintf(dst, size, "%s", src);
	return dst;
}

/* Deep copy of @spec into @d; the caller's strings need not outlive the call. */
static int dev_copy_spec(struct mgr_dev *d, const struct nvmk_mgr_device_spec *spec)
{
	struct nvmk_emu_config *e = &d->spec.emu;

	d->spec = *spec;
	d->spec.id = d->id;
	d->spec.ctrl_opts.event_cb = NULL;
	d->spec.ctrl_opts.event_ctx = NULL;
	if (spec->kind == NVMK_MGR_BACKING_KERNEL) {
		const char *p = spec->kernel.path ? spec->kernel.path : d->id;

		if (strlen(p) >= sizeof(d->kernel_path))
			return -ENAMETOOLONG;
		memcpy(d->kernel_path, p, strlen(p) + 1);
		d->spec.kernel.path = d->kernel_path;
		return 0;
	}
	if (spec->kind != NVMK_MGR_BACKING_EMU)
		return 0;
	e->name = d->id;
	e->serial = copy_str(d->strs.serial, sizeof(d->strs.serial), spec->emu.serial);
	e->model = copy_str(d->strs.model, sizeof(d->strs.model), spec->emu.model);
	if (e->nr_ns > NVMK_EMU_MAX_NS)
		return -EINVAL;
	for (unsigned i = 0; i < e->nr_ns; i++) {
		if (!spec->emu.ns[i].path)
			continue;
		d->strs.path[i] = strdup(spec->emu.ns[i].path);
		if (!d->strs.path[i])
			return -ENOMEM;
		e->ns[i].path = d->strs.path[i];
	}
	return 0;
}

static void dev_free(struct mgr_dev *d)
{
	pthread_mutex_destroy(&d->qlock);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->qcv);
	pthread_cond_destroy(&d->done_cv);
	free(d->bufs);
	for (unsigned i = 0; i < NVMK_EMU_MAX_NS; i++)
		free(d->strs.path[i]);
	free(d->ns);
	free(d);
}

int nvmk_mgr_add_device(struct nvmk_mgr *mgr, const struct nvmk_mgr_device_spec *spec)
{
	struct nvmk_mgr_device_spec kernel_spec;
	struct mgr_dev *d;
	size_t len;
	int rc;

	if (!mgr || !spec || !spec->id)
		return -EINVAL;
	len = strlen(spec->id);
	if (len == 0 || len > NVMK_MGR_ID_MAX) {
		nvmk_err(MGR_LOG, NVMK_LOG_NOQ, "device id of %zu bytes refused (1..%d)", len,
			 NVMK_MGR_ID_MAX);
		return -EINVAL;
	}
	if (spec_factory_driver(spec, &mgr->cfg) == NVMK_DRIVER_KERNEL) {
		/* OPENHCL_NVME_VFIO off: the kernel's nvme driver serves PCI
		 * NVMe devices (kernel_ns.h), not the userspace driver */
		nvmk_info(spec->id, NVMK_LOG_NOQ,
			  "userspace NVMe driver not selected (nvme_vfio off): kernel path");
		kernel_spec = *spec;
		kernel_spec.kind = NVMK_MGR_BACKING_KERNEL;
		kernel_spec.kernel.path = NULL;
		spec = &kernel_spec;
	}
	if (spec->kind != NVMK_MGR_BACKING_EMU && spec->kind != NVMK_MGR_BACKING_KERNEL &&
	    (spec->kind != NVMK_MGR_BACKING_FACTORY || !spec->factory.create)) {
		nvmk_err(spec->id, NVMK_LOG_NOQ, "device spec has no way to create its backing");
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	memcpy(d->id, spec->id, len + 1);
	d->mgr = mgr;
	pthread_mutex_init(&d->qlock, NULL);
	pthread_cond_init(&d->qcv, NULL);
	pthread_cond_init(&d->done_cv, NULL);
	pthread_mutex_init(&d->lock, NULL);
	rc = dev_copy_spec(d, spec);
	if (rc) {
		dev_free(d);
		return rc;
	}

	pthread_mutex_lock(&mgr->lock);
	if (mgr->shutting_down || mgr->saving) {
		rc = -ESHUTDOWN;
	} else {
		for (struct mgr_dev *o = mgr->devs; o; o = o->next)
			if (strcmp(o->id, d->id) == 0)
				rc = -EEXIST;
	}
	if (rc == 0)
		rc = mgr_dev_start(d);
	if (rc == 0) {
		if (mgr->devs_tail)
			mgr->devs_tail->next = d;
		else
			mgr->devs = d;
		mgr->devs_tail = d;
		mgr->ndevs++;
	}
	pthread_mutex_unlock(&mgr->lock);
	if (rc) {
		if (rc == -EEXIST)
			nvmk_err(d->id, NVMK_LOG_NOQ,
				 "a device with this id is registered already");
		dev_free(d);
		return rc;
	}
	nvmk_info(d->id, NVMK_LOG_NOQ, "registered (%s)", mgr_dev_kind(d));
	return 0;
}

/* Find @id for a load-type request, refusing while shutting down or saved. */
static int mgr_dev_for_load(struct nvmk_mgr *mgr, const char *id, struct mgr_dev **out)
{
	struct mgr_dev *d = NULL;
	int rc = 0;

	if (!mgr || !id)
		return -EINVAL;
	pthread_mutex_lock(&mgr->lock);
	if (mgr->shutting_down || mgr->saving)
		rc = -ESHUTDOWN;
	else if (mgr->restoring)
		rc = -EBUSY; /* a fresh bring-up now would reset a live device */
	else
		for (d = mgr->devs; d; d = d->next)
			if (strcmp(d->id, id) == 0 && !d->removing)
				break;
	if (rc == 0 && d) {
		mgr->used = true;
		d->refs++; /* mgr_dev_load_call puts it */
	}
	pthread_mutex_unlock(&mgr->lock);
	if (rc)
		return rc;
	if (!d)
		return -ENOENT;
	*out = d;
	return 0;
}

/* Run a load-type request (refused while shutting down, saving or
 * restoring) on @id's worker and wait for its answer. */
static int mgr_dev_load_call(struct nvmk_mgr *mgr, const char *id, struct mgr_req *req)
{
	struct mgr_dev *d;
	int rc = mgr_dev_for_load(mgr, id, &d);

	if (rc)
		return rc;
	mgr_dev_post(d, req);
	rc = mgr_dev_wait(d, req);
	mgr_dev_put(d);
	return rc;
}

int nvmk_mgr_load(struct nvmk_mgr *mgr, const char *id)
{
	struct mgr_req req = {.type = MGR_REQ_LOAD};

	return mgr_dev_load_call(mgr, id, &req);
}

int nvmk_mgr_get_namespace(struct nvmk_mgr *mgr, const char *id, uint32_t nsid,
			   struct nvmk_ns **out)
{
	struct mgr_req req = {.type = MGR_REQ_GET_NS, .nsid = nsid};
	int rc;

	if (!out)
		return -EINVAL;
	rc = mgr_dev_load_call(mgr, id, &req);
	if (rc == 0)
		*out = req.ns;
	return rc;
}

int nvmk_mgr_dma_alloc(struct nvmk_mgr *mgr, const char *id, const char *tag, size_t size,
		       struct nvmk_dma_buf *out)
{
	struct mgr_req req = {.type = MGR_REQ_DMA_ALLOC, .tag = tag, .size = size};
	int rc;

	if (!out || !tag)
		return -EINVAL;
	rc = mgr_dev_load_call(mgr, id, &req);
	if (rc == 0)
		*out = req.buf;
	return rc;
}

int nvmk_mgr_create_qpair(struct nvmk_mgr *mgr, const char *id, const struct nvmk_qpair_opts *opts,
			  struct nvmk_qpair **out)
{
	struct mgr_req req = {.type = MGR_REQ_QPAIR, .qopts = opts};
	int rc;

	if (!out)
		return -EINVAL;
	rc = mgr_dev_load_call(mgr, id, &req);
	if (rc == 0)
		*out = req.qp;
	return rc;
}

/* A request that needs the device but not a load (lookups, frees). */
static int mgr_dev_call(struct nvmk_mgr *mgr, const char *id, struct mgr_req *req)
{
	struct mgr_dev *d;

	if (!mgr || !id)
		return -EINVAL;
	int rc;

	d = mgr_find(mgr, id);
	if (!d)
		return -ENOENT;
	mgr_dev_post(d, req);
	rc = mgr_dev_wait(d, req);
	mgr_dev_put(d);
	return rc;
}

int nvmk_mgr_dma_get(struct nvmk_mgr *mgr, const char *id, const char *tag,
		     struct nvmk_dma_buf *out)
{
	struct mgr_req req = {.type = MGR_REQ_DMA_GET, .tag = tag};
	int rc;

	if (!out || !tag)
		return -EINVAL;
	rc = mgr_dev_call(mgr, id, &req);
	if (rc == 0)
		*out = req.buf;
	return rc;
}

int nvmk_mgr_dma_free(struct nvmk_mgr *mgr, const char *id, const char *tag)
{
	struct mgr_req req = {.type = MGR_REQ_DMA_FREE, .tag = tag};

	if (!tag)
		return -EINVAL;
	return mgr_dev_call(mgr, id, &req);
}

struct nvmk_emu *nvmk_mgr_device_emu(struct nvmk_mgr *mgr, const char *id)
{
	struct mgr_dev *d = mgr && id ? mgr_find(mgr, id) : NULL;
	struct nvmk_emu *emu;

	if (!d)
		return NULL;
	pthread_mutex_lock(&d->lock);
	emu = d->emu;
	pthread_mutex_unlock(&d->lock);
	mgr_dev_put(d);
	return emu;
}

int nvmk_mgr_remove_device(struct nvmk_mgr *mgr, const char *id, bool force)
{
	struct mgr_req req = {.type = MGR_REQ_REMOVE, .force = force};
	struct mgr_dev *d = NULL, **pp;
	int rc = 0;

	if (!mgr || !id)
		return -EINVAL;
	pthread_mutex_lock(&mgr->lock);
	if (mgr->shutting_down || mgr->saving)
		rc = -ESHUTDOWN;
	else if (mgr->restoring)
		rc = -EBUSY;
	else
		for (d = mgr->devs; d; d = d->next)
			if (strcmp(d->id, id) == 0)
				break;
	if (rc == 0 && !d)
		rc = -ENOENT;
	else if (rc == 0 && d->removing)
		rc = -EBUSY; /* another remove of it runs */
	if (rc == 0) {
		d->removing = true;
		d->refs++;
		mgr->removals++;
	}
	pthread_mutex_unlock(&mgr->lock);
	if (rc)
		return rc;

	/* on its worker, in order with what was asked before: a bring-up or a
	 * queue creation finishes first, then this sees what they left */
	mgr_dev_post(d, &req);
	rc = mgr_dev_wait(d, &req);

	pthread_mutex_lock(&mgr->lock);
	mgr->removals--;
	if (rc) {
		d->removing = false;
		if (--d->refs == 0)
			pthread_cond_broadcast(&mgr->refs_cv);
		pthread_mutex_unlock(&mgr->lock);
		return rc;
	}
	for (pp = &mgr->devs; *pp != d; pp = &(*pp)->next)
		;
	*pp = d->next;
	if (mgr->devs_tail == d) {
		mgr->devs_tail = NULL;
		for (struct mgr_dev *o = mgr->devs; o; o = o->next)
			mgr->devs_tail = o;
	}
	mgr->ndevs--;
	d->refs--;
	/* a status or a lookup that found it before it left the list */
	while (d->refs)
		pthread_cond_wait(&mgr->refs_cv, &mgr->lock);
	pthread_mutex_unlock(&mgr->lock);

	mgr_dev_stop(d); /* ends the worker, destroys the backing */
	nvmk_info(d->id, NVMK_LOG_NOQ, "removed");
	dev_free(d);
	return 0;
}

int nvmk_mgr_backing_check(struct nvmk_mgr *mgr, const char *id,
			   int (*fn)(struct nvmk_backing *b, void *ctx), void *ctx)
{
	struct mgr_dev *d = mgr && id && fn ? mgr_find(mgr, id) : NULL;
	int rc = -ENOENT;

	if (!mgr || !id || !fn)
		return -EINVAL;
	if (!d)
		return -ENOENT;
	pthread_mutex_lock(&d->lock);
	if (d->backing)
		rc = fn(d->backing, ctx);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

/* Run one request of @type on every device in parallel and wait for all. */
int mgr_all(struct nvmk_mgr *mgr, enum mgr_req_type type)
{
	struct mgr_dev **devs;
	struct mgr_req *reqs;
	unsigned n;
	int rc, first = 0;

	rc = mgr_devices(mgr, &devs, &n);
	if (rc)
		return rc;
	reqs = calloc(n ? n : 1, sizeof(*reqs));
	if (!reqs) {
		mgr_devices_put(devs, n);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		reqs[i].type = type;
		mgr_dev_post(devs[i], &reqs[i]);
	}
	for (unsigned i = 0; i < n; i++) {
		rc = mgr_dev_wait(devs[i], &reqs[i]);
		if (rc && !first)
			first = rc;
	}
	free(reqs);
	mgr_devices_put(devs, n);
	return first;
}

int nvmk_mgr_shutdown(struct nvmk_mgr *mgr)
{
	int rc;

	if (!mgr)
		return -EINVAL;
	pthread_mutex_lock(&mgr->lock);
	mgr->shutting_down = true;
	pthread_mutex_unlock(&mgr->lock);
	nvmk_info(MGR_LOG, NVMK_LOG_NOQ, "shutting down %u devices", mgr->ndevs);
	rc = mgr_all(mgr, MGR_REQ_SHUTDOWN);
	pthread_mutex_lock(&mgr->lock);
	mgr->shut_done = true;
	pthread_mutex_unlock(&mgr->lock);
	return rc;
}

void nvmk_mgr_destroy(struct nvmk_mgr *mgr)
{
	struct mgr_dev *d, *next;

	if (!mgr)
		return;
	/* STOP shuts each device down on its worker; do it in parallel first */
	if (!mgr->shut_done)
		nvmk_mgr_shutdown(mgr);
	for (d = mgr->devs; d; d = next) {
		next = d->next;
		mgr_dev_stop(d);
		dev_free(d);
	}
	nvmk_dma_pool_destroy(mgr->pool);
	pthread_cond_destroy(&mgr->refs_cv);
	pthread_mutex_destroy(&mgr->lock);
	free(mgr);
}
