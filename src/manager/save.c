// SPDX-License-Identifier: MIT
/*
 * Save and restore of all devices (servicing).
 *
 * The manager-level state follows OpenHCL's NvmeManagerSavedState (a list of
 * devices, each with its driver's saved state) with nvmekeep's additions: the
 * namespaces handed out, the client buffers, and a reference to the private
 * pool. Format: src/manager/mgr_state.proto, wrapped in an envelope with a
 * format version and a CRC32C of the payload, validated completely before any
 * device is touched.
 *
 * Each device is saved and restored on its own worker, all in parallel; one
 * device's failure is recorded for it alone.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "manager/mgr_internal.h"
#include "manager/mgr_state.pb-c.h"
#include "nvmekeep/log.h"
#include "nvmekeep/crc32c.h"

#define MGR_LOG "manager"

/* Bounds of a decoded state: larger than any real configuration, small
 * enough that a hostile state cannot make us allocate much. */
#define STATE_MAX_DEVICES 4096u
#define STATE_MAX_NSIDS	  1024u
#define STATE_MAX_BUFS	  4096u
#define STATE_MAX_BUF	  (1ull << 30)

void mgr_saved_dev_free(struct mgr_saved_dev *s)
{
	free(s->nsids);
	free(s->bufs);
	s->nsids = NULL;
	s->bufs = NULL;
}

/* ---- worker: one device ---- */

/* Record the namespaces and client buffers of @d into @s. */
static int dev_record(struct mgr_dev *d, struct mgr_saved_dev *s)
{
	s->nsids = calloc(d->nns ? d->nns : 1, sizeof(*s->nsids));
	s->bufs = calloc(d->nbufs ? d->nbufs : 1, sizeof(*s->bufs));
	if (!s->nsids || !s->bufs)
		return -ENOMEM;
	for (unsigned i = 0; i < d->nns; i++)
		s->nsids[i] = d->ns[i].nsid;
	s->nns = d->nns;
	for (unsigned i = 0; i < d->nbufs; i++) {
		memcpy(s->bufs[i].tag, d->bufs[i].tag, sizeof(s->bufs[i].tag));
		s->bufs[i].size = d->bufs[i].buf.mem.size;
		s->bufs[i].iova = d->bufs[i].buf.iova;
	}
	s->nbufs = d->nbufs;
	return 0;
}

/* Drop the client buffer records: @keep leaves the memory to the device and
 * the successor (forget), else it is freed. */
static void dev_drop_bufs(struct mgr_dev *d, bool keep)
{
	struct mgr_buf *bufs;
	unsigned n;

	pthread_mutex_lock(&d->lock);
	bufs = d->bufs;
	n = d->nbufs;
	d->bufs = NULL;
	d->nbufs = d->bufs_cap = 0;
	pthread_mutex_unlock(&d->lock);
	for (unsigned i = 0; i < n; i++) {
		if (keep)
			nvmk_backing_dma_forget(d->backing, &bufs[i].buf);
		else
			nvmk_backing_dma_free(d->backing, &bufs[i].buf);
	}
	free(bufs);
}

/*
 * A kernel-path device has nothing to keep alive: the Linux NVMe driver owns
 * the controller and keeps running it across our exec; there are no queues,
 * no DMA memory and no driver state of ours. Only the namespaces handed out
 * are recorded, to be re-opened by the successor. (OpenHCL likewise has no
 * NVMe state to save for disks it does not drive through VFIO: only its
 * NvmeManager, created for OPENHCL_NVME_VFIO, saves anything.)
 */
static int dev_save_kernel(struct mgr_dev *d, struct mgr_saved_dev *s)
{
	struct nvmk_ctrl *ctrl;

	s->nsids = calloc(d->nns ? d->nns : 1, sizeof(*s->nsids));
	if (!s->nsids)
		return -ENOMEM;
	for (unsigned i = 0; i < d->nns; i++)
		s->nsids[i] = d->ns[i].nsid;
	s->nns = d->nns;
	s->status = MGR_SAVED_KERNEL;
	/* clients stopped (the save contract): close the handles */
	ctrl = mgr_dev_take_ctrl(d, NVMK_MGR_DEV_SAVED, 0, true);
	nvmk_ctrl_close(ctrl); /* NULL: a kernel device has none */
	nvmk_info(d->id, NVMK_LOG_NOQ, "saved (kernel path, nothing kept alive): %u namespaces",
		  s->nns);
	return 0;
}

/* Restore of a kernel-path device: re-open its namespaces. */
static int dev_restore_kernel(struct mgr_dev *d, const struct mgr_saved_dev *s)
{
	int rc = 0;

	for (unsigned i = 0; i < s->nns && !rc; i++) {
		struct nvmk_ns *ns;

		rc = mgr_dev_kernel_open_ns(d, s->nsids[i], &ns);
		if (rc)
			nvmk_err(d->id, NVMK_LOG_NOQ, "namespace %u not re-opened: %d", s->nsids[i],
				 rc);
	}
	mgr_dev_set_state(d, rc ? NVMK_MGR_DEV_FAILED : NVMK_MGR_DEV_READY, rc);
	if (!rc)
		nvmk_info(d->id, NVMK_LOG_NOQ, "restored (kernel path): %u namespaces re-opened",
			  s->nns);
	return rc;
}

int mgr_dev_save(struct mgr_dev *d, struct mgr_req *req)
{
	struct nvmk_save_opts so = {.keep_alive = req->keep_alive};
	struct mgr_saved_dev *s = req->saved;
	struct nvmk_ctrl *ctrl;
	int rc;

	memcpy(s->id, d->id, sizeof(s->id));
	switch (d->state) {
	case NVMK_MGR_DEV_REGISTERED:
		s->status = MGR_SAVED_UNLOADED;
		mgr_dev_set_state(d, NVMK_MGR_DEV_SAVED, 0);
		return 0;
	case NVMK_MGR_DEV_FAILED:
		s->status = MGR_SAVED_FAILED;
		s->err = d->err;
		ctrl = mgr_dev_take_ctrl(d, NVMK_MGR_DEV_SAVED, d->err, true);
		nvmk_ctrl_close(ctrl);
		dev_drop_bufs(d, false);
		return 0;
	case NVMK_MGR_DEV_READY:
		break;
	default:
		return -ESHUTDOWN;
	}
	if (d->spec.kind == NVMK_MGR_BACKING_KERNEL)
		return dev_save_kernel(d, s);

	rc = dev_record(d, s);
	if (rc == 0)
		rc = nvmk_ctrl_save(d->ctrl, &so, &s->blob, &s->len);
	if (rc) {
		/* keep-alive: the controller was resumed; off: it is shut down.
		 * Either way it is closed here and brought up anew later. */
		nvmk_err(d->id, NVMK_LOG_NOQ,
			 "save failed: %d; the device will be brought up anew after restore", rc);
		s->status = MGR_SAVED_FAILED;
		s->err = rc;
		s->nns = s->nbufs = 0;
		ctrl = mgr_dev_take_ctrl(d, NVMK_MGR_DEV_SAVED, rc, true);
		nvmk_ctrl_close(ctrl);
		dev_drop_bufs(d, false);
		return 0;
	}
	s->status = MGR_SAVED_OK;
	/* keep-alive: the device may still write into the buffers of requests
	 * in flight; the successor reclaims them by tag */
	dev_drop_bufs(d, req->keep_alive);
	/* the driver frees the namespace handles with the controller */
	ctrl = mgr_dev_take_ctrl(d, NVMK_MGR_DEV_SAVED, 0, false);
	nvmk_ctrl_detach(ctrl);
	nvmk_info(d->id, NVMK_LOG_NOQ, "saved (%s): %zu bytes, %u namespaces, %u buffers",
		  req->keep_alive ? "keep-alive" : "drained and shut down", s->len, s->nns,
		  s->nbufs);
	return 0;
}

int mgr_dev_restore(struct mgr_dev *d, struct mgr_req *req)
{
	const struct mgr_saved_dev *s = req->saved;
	struct nvmk_restore_opts ro = {0};
	struct nvmk_ctrl_opts o;
	struct nvmk_ctrl *ctrl;
	int rc, first = 0;

	if (d->state != NVMK_MGR_DEV_REGISTERED)
		return -EBUSY;
	if (d->spec.kind == NVMK_MGR_BACKING_KERNEL && s->status == MGR_SAVED_KERNEL)
		return dev_restore_kernel(d, s);
	if (d->spec.kind == NVMK_MGR_BACKING_KERNEL && s->status == MGR_SAVED_OK) {
		/* saved driven through VFIO, now the kernel's: the kernel driver
		 * must bind first (a reset); nothing of the saved state applies */
		nvmk_warn(d->id, NVMK_LOG_NOQ,
			  "saved on the VFIO path, now a kernel device: opened on first use");
		return 0;
	}
	if (s->status != MGR_SAVED_OK) {
		/* nothing was running: the device loads on first use, as new */
		nvmk_info(d->id, NVMK_LOG_NOQ, "saved %s: brought up on first use",
			  s->status == MGR_SAVED_FAILED ? "failed" : "unloaded");
		return 0;
	}
	mgr_dev_set_state(d, NVMK_MGR_DEV_LOADING, 0);
	rc = mgr_dev_make_backing(d, req->keep_alive);
	if (rc)
		goto fail;
	mgr_dev_ctrl_opts(d, &o);
	ro.event_cb = o.event_cb;
	ro.event_ctx = o.event_ctx;
	if (req->ropts) {
		ro.resolve = req->ropts->resolve;
		ro.resolve_ctx = req->ropts->resolve_ctx;
		ro.defer_completions = req->ropts->defer_completions;
	}
	rc = nvmk_ctrl_restore(d->backing, s->blob, s->len, &ro, &ctrl);
	if (rc) {
		nvmk_err(d->id, NVMK_LOG_NOQ, "restore failed: %d", rc);
		goto fail;
	}
	pthread_mutex_lock(&d->lock);
	d->ctrl = ctrl;
	pthread_mutex_unlock(&d->lock);

	/* Client buffers: every one is attempted, so that a failure of one does
	 * not make the others look leaked. */
	for (unsigned i = 0; i < s->nbufs; i++) {
		char ptag[NVMK_DMA_TAG_MAX + 1];
		struct nvmk_dma_buf buf;

		mgr_buf_pool_tag(s->bufs[i].tag, ptag);
		if (req->keep_alive)
			rc = nvmk_backing_dma_reclaim(d->backing, ptag, s->bufs[i].iova, &buf);
		else
			rc = nvmk_backing_dma_alloc(d->backing, s->bufs[i].size, ptag, &buf);
		if (rc == 0 && buf.mem.size != s->bufs[i].size) {
			nvmk_err(d->id, NVMK_LOG_NOQ, "client buffer %s: %zu bytes, saved %llu",
				 s->bufs[i].tag, buf.mem.size, (unsigned long long)s->bufs[i].size);
			rc = -EBADMSG;
		}
		if (rc == 0)
			rc = mgr_dev_buf_add(d, s->bufs[i].tag, &buf);
		if (rc) {
			nvmk_err(d->id, NVMK_LOG_NOQ, "client buffer %s not restored: %d",
				 s->bufs[i].tag, rc);
			if (!first)
				first = rc;
		}
	}
	for (unsigned i = 0; i < s->nns; i++) {
		struct nvmk_ns *ns = nvmk_ctrl_restored_ns(ctrl, s->nsids[i]);
		struct mgr_ns_entry *grown;

		if (!ns) {
			/* not among the driver's handles: open it as a client would */
			rc = nvmk_ns_open(ctrl, s->nsids[i], NVMK_NS_SHARED, &ns);
			if (rc) {
				nvmk_err(d->id, NVMK_LOG_NOQ, "namespace %u not restored: %d",
					 s->nsids[i], rc);
				if (!first)
					first = rc;
				continue;
			}
		}
		pthread_mutex_lock(&d->lock);
		grown =
		    d->nns == d->ns_cap ? realloc(d->ns, (d->ns_cap + 4) * sizeof(*grown)) : d->ns;
		if (grown) {
			d->ns = grown;
			if (d->nns == d->ns_cap)
				d->ns_cap += 4;
			d->ns[d->nns++] = (struct mgr_ns_entry){.nsid = s->nsids[i], .ns = ns};
		}
		pthread_mutex_unlock(&d->lock);
		if (!grown) {
			nvmk_ns_close(ns);
			if (!first)
				first = -ENOMEM;
		}
	}
	if (first) {
		/* the controller runs, but a client would miss its buffer or
		 * namespace: the device is failed (closed at shutdown) */
		mgr_dev_set_state(d, NVMK_MGR_DEV_FAILED, first);
		return first;
	}
	mgr_dev_set_state(d, NVMK_MGR_DEV_READY, 0);
	nvmk_info(d->id, NVMK_LOG_NOQ, "restored (%s)",
		  req->keep_alive ? "keep-alive" : "fresh bring-up");
	return 0;
fail:
	mgr_dev_set_state(d, NVMK_MGR_DEV_FAILED, rc);
	return rc;
}

/* ---- encoding ---- */

static int state_encode(bool keep_alive, struct nvmk_dma_pool *pool, struct mgr_saved_dev *sv,
			unsigned n, void **blob, size_t *len)
{
	NvmkMgr__MgrStateEnvelope env = NVMK_MGR__MGR_STATE_ENVELOPE__INIT;
	NvmkMgr__MgrState st = NVMK_MGR__MGR_STATE__INIT;
	NvmkMgr__PoolRef pref = NVMK_MGR__POOL_REF__INIT;
	NvmkMgr__DeviceState *ds = calloc(n ? n : 1, sizeof(*ds));
	NvmkMgr__DeviceState **dsp = calloc(n ? n : 1, sizeof(*dsp));
	NvmkMgr__ClientBuf **cbp = NULL, *cb = NULL;
	unsigned total_bufs = 0, k = 0;
	uint8_t *payload = NULL, *out = NULL;
	size_t plen, olen;
	struct timespec ts;
	int rc = -ENOMEM;

	for (unsigned i = 0; i < n; i++)
		total_bufs += sv[i].nbufs;
	cb = calloc(total_bufs ? total_bufs : 1, sizeof(*cb));
	cbp = calloc(total_bufs ? total_bufs : 1, sizeof(*cbp));
	if (!ds || !dsp || !cb || !cbp)
		goto out;

	st.has_keep_alive = true;
	st.keep_alive = keep_alive;
	clock_gettime(CLOCK_REALTIME, &ts);
	st.has_saved_at_ms = true;
	st.saved_at_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	if (pool) {
		struct nvmk_dma_pool_stats ps;

		nvmk_dma_pool_get_stats(pool, &ps);
		pref.has_pool_bytes = pref.has_total_slots = pref.has_used_slots = true;
		pref.pool_bytes = ps.pool_bytes;
		pref.total_slots = ps.total_slots;
		pref.used_slots = ps.used_slots;
		st.pool = &pref;
	}
	for (unsigned i = 0; i < n; i++) {
		NvmkMgr__DeviceState *d = &ds[i];

		nvmk_mgr__device_state__init(d);
		d->id = sv[i].id;
		d->has_status = true;
		d->status = (NvmkMgr__DeviceState__Status)sv[i].status;
		d->has_error = sv[i].status == MGR_SAVED_FAILED;
		d->error = sv[i].err;
		d->n_nsids = sv[i].nns;
		d->nsids = sv[i].nsids;
		if (sv[i].status == MGR_SAVED_OK) {
			d->has_ctrl_state = true;
			d->ctrl_state.data = sv[i].blob;
			d->ctrl_state.len = sv[i].len;
		}
		d->n_bufs = sv[i].nbufs;
		d->bufs = &cbp[k];
		for (unsigned j = 0; j < sv[i].nbufs; j++, k++) {
			nvmk_mgr__client_buf__init(&cb[k]);
			cb[k].tag = sv[i].bufs[j].tag;
			cb[k].has_size = cb[k].has_iova = true;
			cb[k].size = sv[i].bufs[j].size;
			cb[k].iova = sv[i].bufs[j].iova;
			cbp[k] = &cb[k];
		}
		dsp[i] = d;
	}
	st.n_devices = n;
	st.devices = dsp;

	plen = nvmk_mgr__mgr_state__get_packed_size(&st);
	payload = malloc(plen ? plen : 1);
	if (!payload)
		goto out;
	nvmk_mgr__mgr_state__pack(&st, payload);
	env.has_version = env.has_crc32c = env.has_payload = true;
	env.version = NVMK_MGR_STATE_VERSION;
	env.crc32c = nvmk_crc32c(0, payload, plen);
	env.payload.data = payload;
	env.payload.len = plen;
	olen = nvmk_mgr__mgr_state_envelope__get_packed_size(&env);
	out = malloc(olen);
	if (!out)
		goto out;
	nvmk_mgr__mgr_state_envelope__pack(&env, out);
	*blob = out;
	*len = olen;
	rc = 0;
out:
	free(payload);
	free(cb);
	free(cbp);
	free(ds);
	free(dsp);
	return rc;
}

/* ---- decoding and validation ---- */

struct mgr_state {
	NvmkMgr__MgrStateEnvelope *env;
	NvmkMgr__MgrState *msg;
	bool keep_alive;
	bool has_pool;
	uint64_t pool_bytes;
	unsigned ndev;
	struct mgr_saved_dev *devs; /* blobs point into @msg */
};

static void state_free(struct mgr_state *s)
{
	for (unsigned i = 0; i < s->ndev; i++)
		mgr_saved_dev_free(&s->devs[i]);
	free(s->devs);
	if (s->msg)
		nvmk_mgr__mgr_state__free_unpacked(s->msg, NULL);
	if (s->env)
		nvmk_mgr__mgr_state_envelope__free_unpacked(s->env, NULL);
	memset(s, 0, sizeof(*s));
}

static int bad(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	char line[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (err && errlen)
		snprintf(err, errlen, "%s", line);
	return rc;
}

static bool printable(const char *s, size_t max)
{
	size_t len = s ? strlen(s) : 0;

	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return false;
	return true;
}

static int dev_decode(const NvmkMgr__DeviceState *m, struct mgr_saved_dev *d, char *err,
		      size_t errlen)
{
	if (!printable(m->id, NVMK_MGR_ID_MAX))
		return bad(err, errlen, -EBADMSG, "device id missing or invalid");
	memcpy(d->id, m->id, strlen(m->id) + 1);
	if (!m->has_status || m->status < NVMK_MGR__DEVICE_STATE__STATUS__SAVED ||
	    m->status > NVMK_MGR__DEVICE_STATE__STATUS__KERNEL)
		return bad(err, errlen, -EBADMSG, "device %s: status missing or unknown", d->id);
	d->status = (enum mgr_saved_status)m->status;
	d->err = m->has_error ? m->error : 0;
	if (d->status == MGR_SAVED_FAILED && (d->err >= 0 || d->err < -4095))
		return bad(err, errlen, -EBADMSG, "device %s: failed without a valid error", d->id);
	if ((d->status == MGR_SAVED_OK) != (m->has_ctrl_state && m->ctrl_state.len > 0))
		return bad(err, errlen, -EBADMSG, "device %s: driver state %s", d->id,
			   d->status == MGR_SAVED_OK ? "missing" : "unexpected");
	d->blob = m->ctrl_state.data;
	d->len = m->ctrl_state.len;
	if (m->n_nsids > STATE_MAX_NSIDS || m->n_bufs > STATE_MAX_BUFS)
		return bad(err, errlen, -EBADMSG, "device %s: %zu namespaces, %zu buffers", d->id,
			   m->n_nsids, m->n_bufs);
	if ((d->status != MGR_SAVED_OK && m->n_bufs) ||
	    (d->status != MGR_SAVED_OK && d->status != MGR_SAVED_KERNEL && m->n_nsids))
		return bad(err, errlen, -EBADMSG, "device %s: namespaces or buffers without state",
			   d->id);
	d->nsids = calloc(m->n_nsids ? m->n_nsids : 1, sizeof(*d->nsids));
	d->bufs = calloc(m->n_bufs ? m->n_bufs : 1, sizeof(*d->bufs));
	if (!d->nsids || !d->bufs)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_nsids; i++) {
		/* Base 2.0 3.2.1: valid NSIDs are 1..FFFFFFFEh */
		if (m->nsids[i] == 0 || m->nsids[i] == 0xffffffffu)
			return bad(err, errlen, -EBADMSG, "device %s: invalid nsid %u", d->id,
				   m->nsids[i]);
		for (size_t j = 0; j < i; j++)
			if (m->nsids[j] == m->nsids[i])
				return bad(err, errlen, -EBADMSG, "device %s: nsid %u twice", d->id,
					   m->nsids[i]);
		d->nsids[i] = m->nsids[i];
	}
	d->nns = (unsigned)m->n_nsids;
	for (size_t i = 0; i < m->n_bufs; i++) {
		const NvmkMgr__ClientBuf *b = m->bufs[i];

		if (!b || !printable(b->tag, NVMK_MGR_TAG_MAX) || !b->has_size || !b->has_iova ||
		    b->size == 0 || b->size > STATE_MAX_BUF || b->size % NVMK_DMA_PAGE_SIZE)
			return bad(err, errlen, -EBADMSG, "device %s: client buffer %zu invalid",
				   d->id, i);
		for (size_t j = 0; j < i; j++)
			if (strcmp(d->bufs[j].tag, b->tag) == 0)
				return bad(err, errlen, -EBADMSG,
					   "device %s: client buffer %s twice", d->id, b->tag);
		memcpy(d->bufs[i].tag, b->tag, strlen(b->tag) + 1);
		d->bufs[i].size = b->size;
		d->bufs[i].iova = b->iova;
	}
	d->nbufs = (unsigned)m->n_bufs;
	return 0;
}

static int state_decode(const void *blob, size_t len, struct mgr_state *s, char *err, size_t errlen)
{
	NvmkMgr__MgrStateEnvelope *env;
	NvmkMgr__MgrState *msg;
	int rc;

	memset(s, 0, sizeof(*s));
	if (!blob || len == 0)
		return bad(err, errlen, -EBADMSG, "empty state");
	env = nvmk_mgr__mgr_state_envelope__unpack(NULL, len, blob);
	if (!env)
		return bad(err, errlen, -EBADMSG, "envelope does not decode");
	s->env = env;
	if (!env->has_version || !env->has_crc32c || !env->has_payload) {
		rc = bad(err, errlen, -EBADMSG, "envelope incomplete");
		goto fail;
	}
	if (env->version > NVMK_MGR_STATE_VERSION) {
		rc = bad(err, errlen, -EPROTONOSUPPORT,
			 "saved state format %u is newer than this binary's %u: downgrade refused",
			 env->version, NVMK_MGR_STATE_VERSION);
		goto fail;
	}
	if (env->version == 0) {
		rc = bad(err, errlen, -EBADMSG, "format version 0");
		goto fail;
	}
	/* A fuzzing build (fuzz/meson.build) looks past the checksum, so that
	 * mutated payloads reach the decoder and the validator behind it. */
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	if (nvmk_crc32c(0, env->payload.data, env->payload.len) != env->crc32c) {
#else
	if (0) {
#endif
		rc = bad(err, errlen, -EBADMSG, "checksum mismatch");
		goto fail;
	}
	msg = nvmk_mgr__mgr_state__unpack(NULL, env->payload.len, env->payload.data);
	if (!msg) {
		rc = bad(err, errlen, -EBADMSG, "payload does not decode");
		goto fail;
	}
	s->msg = msg;
	if (!msg->has_keep_alive) {
		rc = bad(err, errlen, -EBADMSG, "keep_alive missing");
		goto fail;
	}
	s->keep_alive = msg->keep_alive;
	if (msg->pool) {
		if (!msg->pool->has_pool_bytes || msg->pool->pool_bytes == 0) {
			rc = bad(err, errlen, -EBADMSG, "pool reference incomplete");
			goto fail;
		}
		s->has_pool = true;
		s->pool_bytes = msg->pool->pool_bytes;
	}
	if (msg->n_devices > STATE_MAX_DEVICES) {
		rc = bad(err, errlen, -EBADMSG, "%zu devices", msg->n_devices);
		goto fail;
	}
	s->devs = calloc(msg->n_devices ? msg->n_devices : 1, sizeof(*s->devs));
	if (!s->devs) {
		rc = -ENOMEM;
		goto fail;
	}
	s->ndev = (unsigned)msg->n_devices;
	for (unsigned i = 0; i < s->ndev; i++) {
		if (!msg->devices[i]) {
			rc = bad(err, errlen, -EBADMSG, "device %u missing", i);
			goto fail;
		}
		rc = dev_decode(msg->devices[i], &s->devs[i], err, errlen);
		if (rc)
			goto fail;
		for (unsigned j = 0; j < i; j++)
			if (strcmp(s->devs[j].id, s->devs[i].id) == 0) {
				rc = bad(err, errlen, -EBADMSG, "device %s twice", s->devs[i].id);
				goto fail;
			}
	}
	return 0;
fail:
	state_free(s);
	return rc;
}

int nvmk_mgr_state_validate(const void *blob, size_t len, char *err, size_t errlen)
{
	struct mgr_state s;
	int rc = state_decode(blob, len, &s, err, errlen);

	if (rc == 0)
		state_free(&s);
	return rc;
}

/* ---- manager ---- */

int nvmk_mgr_save(struct nvmk_mgr *mgr, void **blob, size_t *len)
{
	struct mgr_saved_dev *sv = NULL;
	struct mgr_req *reqs = NULL;
	struct mgr_dev **devs = NULL;
	bool keep_alive;
	unsigned n = 0;
	int rc;

	if (!mgr || !blob || !len)
		return -EINVAL;
	pthread_mutex_lock(&mgr->lock);
	rc = mgr->shutting_down || mgr->saving ? -ESHUTDOWN : 0;
	if (rc == 0 && mgr->removals)
		rc = -EBUSY; /* a device is being removed: it must not be in the state */
	if (rc == 0)
		mgr->saving = true; /* from here on, loads are refused */
	pthread_mutex_unlock(&mgr->lock);
	if (rc)
		return rc;

	keep_alive = mgr->cfg.keep_alive.enabled;
	if (keep_alive && !mgr->pool) {
		nvmk_warn(MGR_LOG, NVMK_LOG_NOQ,
			  "keep-alive is on (%s) but there is no private pool: devices are "
			  "drained and shut down instead",
			  mgr->cfg.keep_alive.mode);
		keep_alive = false;
	}
	rc = mgr_devices(mgr, &devs, &n);
	if (rc)
		return rc;
	reqs = calloc(n ? n : 1, sizeof(*reqs));
	sv = calloc(n ? n : 1, sizeof(*sv));
	if (!reqs || !sv) {
		rc = -ENOMEM;
		goto out;
	}
	nvmk_info(MGR_LOG, NVMK_LOG_NOQ, "saving %u devices (%s)", n,
		  keep_alive ? "keep-alive" : "drain and shut down");
	/* quiesce and save every device at once, each on its worker */
	for (unsigned i = 0; i < n; i++) {
		reqs[i].type = MGR_REQ_SAVE;
		reqs[i].keep_alive = keep_alive;
		reqs[i].saved = &sv[i];
		mgr_dev_post(devs[i], &reqs[i]);
	}
	for (unsigned i = 0; i < n; i++) {
		int r = mgr_dev_wait(devs[i], &reqs[i]);

		if (r && !rc)
			rc = r;
	}
	if (rc == 0)
		rc = state_encode(keep_alive, keep_alive ? mgr->pool : NULL, sv, n, blob, len);
	if (rc == 0)
		nvmk_info(MGR_LOG, NVMK_LOG_NOQ, "saved state: %zu bytes", *len);
out:
	for (unsigned i = 0; sv && i < n; i++) {
		free(sv[i].blob);
		mgr_saved_dev_free(&sv[i]);
	}
	free(sv);
	free(reqs);
	mgr_devices_put(devs, n);
	return rc;
}

int nvmk_mgr_take_backing(struct nvmk_mgr *mgr, const char *id, struct nvmk_backing **out)
{
	struct mgr_dev *d;
	int rc = 0;

	if (!mgr || !id || !out)
		return -EINVAL;
	d = mgr_find(mgr, id);
	if (!d)
		return -ENOENT;
	pthread_mutex_lock(&d->lock);
	if (d->state != NVMK_MGR_DEV_SAVED)
		rc = -EBUSY;
	else if (!d->backing)
		rc = -ENOENT;
	if (rc == 0) {
		*out = d->backing;
		d->backing = NULL;
		d->emu = NULL;
	}
	pthread_mutex_unlock(&d->lock);
	mgr_dev_put(d);
	return rc;
}

/* With keep-alive: end the pool's reclaim phase; name every leaked block. */
static int finish_pool(struct nvmk_mgr *mgr)
{
	struct nvmk_dma_slot_info info[32];
	size_t n;
	int rc = nvmk_dma_pool_finish_restore(mgr->pool);

	if (rc != -EUCLEAN)
		return rc;
	n = nvmk_dma_pool_leaked(mgr->pool, info, 32);
	for (size_t i = 0; i < n && i < 32; i++)
		nvmk_err(info[i].owner, NVMK_LOG_NOQ,
			 "restore leaked DMA block %s of device %s (%llu pages): the device may "
			 "still write to it, it stays reserved",
			 info[i].tag, info[i].owner, (unsigned long long)info[i].pages);
	nvmk_err(MGR_LOG, NVMK_LOG_NOQ, "restore leaked %zu DMA blocks", n);
	return rc;
}

int nvmk_mgr_restore(struct nvmk_mgr *mgr, const void *blob, size_t len,
		     const struct nvmk_mgr_restore_opts *opts)
{
	struct mgr_dev **devs = NULL, **which = NULL;
	struct mgr_req *reqs = NULL;
	struct mgr_state s;
	char why[200] = "";
	bool mine = false;
	unsigned n = 0;
	int rc, first = 0;

	if (!mgr)
		return -EINVAL;
	rc = state_decode(blob, len, &s, why, sizeof(why));
	if (rc) {
		nvmk_err(MGR_LOG, NVMK_LOG_NOQ, "saved state refused: %s", why);
		return rc;
	}
	/* everything is checked against this manager before a device is touched */
	if (s.keep_alive && s.has_pool) {
		struct nvmk_dma_pool_stats ps;

		if (!mgr->pool) {
			nvmk_err(MGR_LOG, NVMK_LOG_NOQ,
				 "saved state needs the inherited private pool; the manager has "
				 "none");
			rc = -EINVAL;
			goto out;
		}
		nvmk_dma_pool_get_stats(mgr->pool, &ps);
		if (ps.pool_bytes != s.pool_bytes) {
			nvmk_err(MGR_LOG, NVMK_LOG_NOQ,
				 "private pool is %llu bytes, the saved state's was %llu: not the "
				 "inherited pool",
				 (unsigned long long)ps.pool_bytes,
				 (unsigned long long)s.pool_bytes);
			rc = -EINVAL;
			goto out;
		}
	}
	rc = mgr_devices(mgr, &devs, &n);
	if (rc)
		goto out;
	which = calloc(s.ndev ? s.ndev : 1, sizeof(*which));
	reqs = calloc(s.ndev ? s.ndev : 1, sizeof(*reqs));
	if (!which || !reqs) {
		rc = -ENOMEM;
		goto out;
	}
	/* From here until the restore ends, loads are refused: a load racing
	 * the restore would bring a live device up anew (a reset). */
	pthread_mutex_lock(&mgr->lock);
	if (mgr->shutting_down || mgr->saving)
		rc = -ESHUTDOWN;
	else if (mgr->used || mgr->restoring)
		rc = -EINVAL;
	else
		mgr->restoring = mine = true;
	pthread_mutex_unlock(&mgr->lock);
	if (rc) {
		nvmk_err(MGR_LOG, NVMK_LOG_NOQ,
			 "restore needs a new manager whose devices were not used yet");
		goto out;
	}
	for (unsigned i = 0; rc == 0 && i < n; i++) {
		pthread_mutex_lock(&devs[i]->lock);
		if (devs[i]->state != NVMK_MGR_DEV_REGISTERED) {
			nvmk_err(devs[i]->id, NVMK_LOG_NOQ,
				 "restore needs devices that were not loaded yet");
			rc = -EINVAL;
		}
		pthread_mutex_unlock(&devs[i]->lock);
	}
	if (rc)
		goto out;
	for (unsigned i = 0; i < s.ndev; i++) {
		for (unsigned j = 0; j < n && !which[i]; j++)
			if (strcmp(devs[j]->id, s.devs[i].id) == 0)
				which[i] = devs[j];
		/* A device that left the configuration is not restored; with
		 * keep-alive its pool blocks are reported leaked below. */
		if (!which[i] && s.devs[i].status == MGR_SAVED_OK) {
			nvmk_err(s.devs[i].id, NVMK_LOG_NOQ,
				 "device of the saved state is not registered: not restored");
			if (!first)
				first = -ENOENT;
		}
	}

	nvmk_info(MGR_LOG, NVMK_LOG_NOQ, "restoring %u devices (%s)", s.ndev,
		  s.keep_alive ? "keep-alive" : "fresh bring-up");
	for (unsigned i = 0; i < s.ndev; i++) {
		if (!which[i])
			continue;
		reqs[i].type = MGR_REQ_RESTORE;
		reqs[i].keep_alive = s.keep_alive;
		reqs[i].saved = &s.devs[i];
		reqs[i].ropts = opts;
		mgr_dev_post(which[i], &reqs[i]);
	}
	for (unsigned i = 0; i < s.ndev; i++) {
		int r = which[i] ? mgr_dev_wait(which[i], &reqs[i]) : 0;

		if (r && !first)
			first = r;
	}
	/* after every device had its chance to reclaim its blocks */
	if (s.keep_alive && mgr->pool) {
		int r = finish_pool(mgr);

		if (r && !first)
			first = r;
	}
	rc = first;
out:
	if (mine) {
		pthread_mutex_lock(&mgr->lock);
		mgr->restoring = false;
		mgr->used = true; /* one restore per manager */
		pthread_mutex_unlock(&mgr->lock);
	}
	free(which);
	free(reqs);
	mgr_devices_put(devs, n);
	state_free(&s);
	return rc;
}
