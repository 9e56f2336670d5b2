// SPDX-License-Identifier: MIT
/*
 * Status of the manager: devices, their state, queues, outstanding commands
 * and pool usage, as a struct and as JSON (for `nvmekeep status`).
 *
 * Read without asking the workers, so that a device stuck in bring-up (a
 * controller that never sets CSTS.RDY) does not stall the report: each device
 * is copied under its state lock, which the worker holds only for short
 * updates.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "manager/mgr_internal.h"

const char *nvmk_mgr_dev_state_name(enum nvmk_mgr_dev_state state)
{
	switch (state) {
	case NVMK_MGR_DEV_REGISTERED:
		return "registered";
	case NVMK_MGR_DEV_LOADING:
		return "loading";
	case NVMK_MGR_DEV_READY:
		return "ready";
	case NVMK_MGR_DEV_FAILED:
		return "failed";
	case NVMK_MGR_DEV_SHUTDOWN:
		return "shutdown";
	case NVMK_MGR_DEV_SAVED:
		return "saved";
	}
	return "unknown";
}

static void dev_status(struct mgr_dev *d, struct nvmk_mgr_device_status *st)
{
	memset(st, 0, sizeof(*st));
	memcpy(st->id, d->id, sizeof(st->id));
	pthread_mutex_lock(&d->lock);
	st->kind = mgr_dev_kind(d);
	st->state = d->state;
	st->err = d->err;
	st->requests = d->requests;
	st->nns = d->nns;
	for (unsigned i = 0; i < d->nns && i < NVMK_MGR_STATUS_MAX_NS; i++)
		st->nsids[i] = d->ns[i].nsid;
	/* the worker clears d->ctrl under this lock before closing it, so the
	 * controller stays valid while we hold it */
	if (d->ctrl) {
		int n = nvmk_ctrl_queue_stats(d->ctrl, st->queues, NVMK_MGR_STATUS_MAX_QUEUES);

		st->io_queues_granted = nvmk_ctrl_io_queues(d->ctrl);
		st->nqueues = n > 0 ? (unsigned)n : 0;
	}
	pthread_mutex_unlock(&d->lock);
	for (unsigned i = 0; i < st->nqueues && i < NVMK_MGR_STATUS_MAX_QUEUES; i++)
		if (st->queues[i].outstanding > 0)
			st->outstanding += (unsigned)st->queues[i].outstanding;
}

int nvmk_mgr_status(struct nvmk_mgr *mgr, struct nvmk_mgr_status *out)
{
	struct mgr_dev **devs;
	unsigned n;
	int rc;

	if (!mgr || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	rc = mgr_devices(mgr, &devs, &n);
	if (rc)
		return rc;
	out->devices = calloc(n ? n : 1, sizeof(*out->devices));
	if (!out->devices) {
		mgr_devices_put(devs, n);
		return -ENOMEM;
	}
	pthread_mutex_lock(&mgr->lock);
	out->shutting_down = mgr->shutting_down;
	pthread_mutex_unlock(&mgr->lock);
	out->keep_alive = mgr->cfg.keep_alive.enabled;
	memcpy(out->keep_alive_mode, mgr->cfg.keep_alive.mode, sizeof(out->keep_alive_mode));
	out->pool_present = mgr->pool != NULL;
	if (mgr->pool)
		nvmk_dma_pool_get_stats(mgr->pool, &out->pool);
	for (unsigned i = 0; i < n; i++)
		dev_status(devs[i], &out->devices[i]);
	out->ndevices = n;
	mgr_devices_put(devs, n);
	return 0;
}

void nvmk_mgr_status_free(struct nvmk_mgr_status *st)
{
	if (!st)
		return;
	free(st->devices);
	st->devices = NULL;
	st->ndevices = 0;
}

/* json_object_object_add that fails the whole report on out of memory */
static bool jadd(json_object *o, const char *key, json_object *v)
{
	if (!v)
		return false;
	if (json_object_object_add(o, key, v)) {
		json_object_put(v);
		return false;
	}
	return true;
}

/* JSON null is json-c's NULL object */
static bool jadd_null(json_object *o, const char *key)
{
	return json_object_object_add(o, key, NULL) == 0;
}

static bool jpush(json_object *a, json_object *v)
{
	if (!v)
		return false;
	if (json_object_array_add(a, v)) {
		json_object_put(v);
		return false;
	}
	return true;
}

static json_object *pool_json(const struct nvmk_mgr_status *st)
{
	const struct nvmk_dma_pool_stats *p = &st->pool;
	json_object *o;
	bool ok;

	o = json_object_new_object();
	if (!o)
		return NULL;
	ok = jadd(o, "pages", json_object_new_uint64(p->total_pages)) &&
	     jadd(o, "used_pages", json_object_new_uint64(p->used_pages)) &&
	     jadd(o, "free_pages", json_object_new_uint64(p->free_pages)) &&
	     jadd(o, "leaked_pages", json_object_new_uint64(p->leaked_pages)) &&
	     jadd(o, "largest_free_pages", json_object_new_uint64(p->largest_free_pages)) &&
	     jadd(o, "slots", json_object_new_uint64(p->total_slots)) &&
	     jadd(o, "used_slots", json_object_new_uint64(p->used_slots)) &&
	     jadd(o, "leaked_slots", json_object_new_uint64(p->leaked_slots)) &&
	     jadd(o, "unclaimed_slots", json_object_new_uint64(p->unclaimed_slots)) &&
	     jadd(o, "hugetlb", json_object_new_boolean(p->hugetlb)) &&
	     jadd(o, "bytes", json_object_new_uint64(p->pool_bytes));
	if (!ok) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static json_object *queue_json(const struct nvmk_queue_stat *q)
{
	json_object *o = json_object_new_object();
	bool ok;

	if (!o)
		return NULL;
	ok = jadd(o, "qid", json_object_new_int(q->qid)) &&
	     jadd(o, "depth", json_object_new_int64(q->depth)) &&
	     jadd(o, "shared", json_object_new_boolean(q->shared)) &&
	     jadd(o, "poll", json_object_new_boolean(q->poll)) &&
	     /* -1 (exclusive qpair, not read) becomes null */
	     (q->outstanding < 0 ? jadd_null(o, "outstanding")
				 : jadd(o, "outstanding", json_object_new_int(q->outstanding)));
	if (!ok) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static json_object *device_json(const struct nvmk_mgr_device_status *d)
{
	json_object *o = json_object_new_object(), *qs = NULL, *ns = NULL;
	bool ok;

	if (!o)
		return NULL;
	ok = jadd(o, "id", json_object_new_string(d->id)) &&
	     jadd(o, "kind", json_object_new_string(d->kind)) &&
	     jadd(o, "state", json_object_new_string(nvmk_mgr_dev_state_name(d->state))) &&
	     jadd(o, "error", json_object_new_int(d->err)) &&
	     jadd(o, "io_queues_granted", json_object_new_int64(d->io_queues_granted)) &&
	     jadd(o, "outstanding", json_object_new_int64(d->outstanding)) &&
	     jadd(o, "requests", json_object_new_uint64(d->requests));
	if (ok) {
		qs = json_object_new_array();
		ok = jadd(o, "queues", qs);
	}
	for (unsigned i = 0; ok && i < d->nqueues && i < NVMK_MGR_STATUS_MAX_QUEUES; i++)
		ok = jpush(qs, queue_json(&d->queues[i]));
	if (ok) {
		ns = json_object_new_array();
		ok = jadd(o, "namespaces", ns);
	}
	for (unsigned i = 0; ok && i < d->nns && i < NVMK_MGR_STATUS_MAX_NS; i++)
		ok = jpush(ns, json_object_new_int64(d->nsids[i]));
	if (!ok) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int nvmk_mgr_status_json(struct nvmk_mgr *mgr, char **json)
{
	struct nvmk_mgr_status st;
	json_object *root = NULL, *ka = NULL, *devs = NULL;
	const char *s;
	bool ok;
	int rc;

	if (!mgr || !json)
		return -EINVAL;
	rc = nvmk_mgr_status(mgr, &st);
	if (rc)
		return rc;
	root = json_object_new_object();
	ok = root && jadd(root, "shutting_down", json_object_new_boolean(st.shutting_down));
	if (ok) {
		ka = json_object_new_object();
		ok = jadd(root, "keep_alive", ka) &&
		     jadd(ka, "enabled", json_object_new_boolean(st.keep_alive)) &&
		     jadd(ka, "mode", json_object_new_string(st.keep_alive_mode));
	}
	if (ok)
		ok = st.pool_present ? jadd(root, "pool", pool_json(&st)) : jadd_null(root, "pool");
	if (ok) {
		devs = json_object_new_array();
		ok = jadd(root, "devices", devs);
	}
	for (unsigned i = 0; ok && i < st.ndevices; i++)
		ok = jpush(devs, device_json(&st.devices[i]));
	nvmk_mgr_status_free(&st);
	rc = -ENOMEM;
	if (ok) {
		s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
		*json = s ? strdup(s) : NULL;
		if (*json)
			rc = 0;
	}
	json_object_put(root);
	return rc;
}
