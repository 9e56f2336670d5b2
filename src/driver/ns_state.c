// SPDX-License-Identifier: MIT
/*
 * Namespaces: the controller's namespace state (identify, the scan at
 * bring-up, the rescan on a change notice), and handles (open, close, info)
 * of the NVMe-queue path. I/O is in ns_io.c, the synchronous wrappers in
 * ns_sync.c, reservations in ns_resv.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "driver/io_ops.h"

/* ---- namespace state ---- */

struct drv_ns_state *drv_ns_state_get(struct nvmk_ctrl *ctrl, uint32_t nsid, bool create)
{
	struct drv_ns_state *s;

	/* ns_lock held */
	for (unsigned i = 0; i < ctrl->nns; i++)
		if (ctrl->ns[i]->nsid == nsid)
			return ctrl->ns[i];
	if (!create)
		return NULL;
	if (ctrl->nns == ctrl->ns_cap) {
		unsigned cap = ctrl->ns_cap ? ctrl->ns_cap * 2 : 8;
		struct drv_ns_state **v = realloc(ctrl->ns, cap * sizeof(*v));

		if (!v)
			return NULL;
		ctrl->ns = v;
		ctrl->ns_cap = cap;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->nsid = nsid;
	ctrl->ns[ctrl->nns++] = s;
	return s;
}

void drv_ns_fini(struct nvmk_ctrl *ctrl)
{
	/* Handles a restore made and nobody took back (nvmk_ctrl_restored_ns)
	 * are the controller's own: freed with it (found by fuzz_ctrl_restore). */
	for (struct nvmk_ns **pp = &ctrl->handles; *pp;) {
		struct nvmk_ns *ns = *pp;

		if (ns->restored) {
			*pp = ns->next_handle;
			free(ns);
		} else {
			pp = &ns->next_handle;
		}
	}
	for (unsigned i = 0; i < ctrl->nns; i++)
		free(ctrl->ns[i]);
	free(ctrl->ns);
	ctrl->ns = NULL;
	ctrl->nns = ctrl->ns_cap = 0;
}

/* Identify Namespace; an inactive NSID reads as zeroes or fails with Invalid
 * Namespace (Base 2.0 5.17.2.1): both -> -ENODEV. Validates the format. */
static int ns_identify(struct nvmk_ctrl *ctrl, uint32_t nsid, uint64_t *nblocks, uint8_t *shift,
		       uint8_t *rescap)
{
	struct nvme_id_ns *id = malloc(sizeof(*id));
	unsigned fmt;
	int rc;

	if (!id)
		return -ENOMEM;
	rc = drv_identify(ctrl, NVME_ID_CNS_NS, nsid, id);
	if (rc)
		goto out;
	if (id->nsze == 0) {
		rc = -ENODEV;
		goto out;
	}
	fmt = NVME_FLBAS_INDEX(id->flbas);
	if (fmt > id->nlbaf || fmt >= 64) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ, "ns %u: FLBAS format %u beyond NLBAF %u", nsid,
			 fmt, id->nlbaf);
		rc = -EINVAL;
		goto out;
	}
	if (id->lbaf[fmt].ms != 0 || id->lbaf[fmt].lbads < 9 || id->lbaf[fmt].lbads > 16) {
		nvmk_err(ctrl->name, NVMK_LOG_NOQ,
			 "ns %u: unsupported format (LBADS %u, metadata %u bytes)", nsid,
			 id->lbaf[fmt].lbads, id->lbaf[fmt].ms);
		rc = -EINVAL;
		goto out;
	}
	*nblocks = id->nsze;
	*shift = id->lbaf[fmt].lbads;
	*rescap = id->rescap;
out:
	free(id);
	return rc;
}

/* ns_lock held: the open handles of @s take its removal flag into their
 * fast-path gate (gate_blocks). */
static void ns_gate_update_all(struct nvmk_ctrl *ctrl, struct drv_ns_state *s)
{
	for (struct nvmk_ns *h = ctrl->handles; h; h = h->next_handle)
		if (h->s == s)
			drv_ns_gate_update(h);
}

/* Admin thread (AER) or bring-up: look at @nsid again and report. */
void drv_ns_rescan(struct nvmk_ctrl *ctrl, uint32_t nsid)
{
	struct nvmk_event ev = {.nsid = nsid};
	struct drv_ns_state *s;
	uint64_t nblocks = 0;
	uint8_t shift = 0, rescap = 0;
	int rc;

	/* untrusted log content: only NSIDs the controller can have (NN) */
	if (nsid == 0 || nsid > ctrl->id->nn) {
		nvmk_warn(ctrl->name, NVMK_LOG_NOQ, "ignoring change notice for NSID %u (NN %u)",
			  nsid, ctrl->id->nn);
		return;
	}
	rc = ns_identify(ctrl, nsid, &nblocks, &shift, &rescap);
	if (rc && rc != -ENODEV) {
		nvmk_warn(ctrl->name, NVMK_LOG_NOQ, "ns %u: identify after change failed: %d", nsid,
			  rc);
		return;
	}
	pthread_mutex_lock(&ctrl->ns_lock);
	s = drv_ns_state_get(ctrl, nsid, true);
	if (!s) {
		pthread_mutex_unlock(&ctrl->ns_lock);
		return;
	}
	/* ns_lock held: we are the only writer, so nblocks is read and written
	 * relaxed (a size snapshot for readers); removed is stored with release,
	 * pairing with nvmk_ns_info's acquire (the I/O paths only need the flag) */
	if (rc == -ENODEV) {
		atomic_store_explicit(&s->removed, true, memory_order_release);
		ev.type = NVMK_EVENT_NS_REMOVED;
		ev.old_nblocks = atomic_load_explicit(&s->nblocks, memory_order_relaxed);
	} else if (!s->known || atomic_load_explicit(&s->removed, memory_order_relaxed)) {
		s->known = true;
		s->lba_shift = shift;
		s->rescap = rescap;
		atomic_store_explicit(&s->nblocks, nblocks, memory_order_relaxed);
		atomic_store_explicit(&s->removed, false, memory_order_release);
		ev.type = NVMK_EVENT_NS_ADDED;
		ev.new_nblocks = nblocks;
	} else {
		ev.old_nblocks = atomic_load_explicit(&s->nblocks, memory_order_relaxed);
		ev.new_nblocks = nblocks;
		ev.type = ev.old_nblocks != nblocks ? NVMK_EVENT_NS_RESIZED : NVMK_EVENT_NS_CHANGED;
		atomic_store_explicit(&s->nblocks, nblocks, memory_order_relaxed);
	}
	if (rc != -ENODEV)
		s->known = true;
	ns_gate_update_all(ctrl, s);
	pthread_mutex_unlock(&ctrl->ns_lock);
	nvmk_info(ctrl->name, NVMK_LOG_NOQ, "ns %u: %s (%llu -> %llu blocks)", nsid,
		  ev.type == NVMK_EVENT_NS_REMOVED   ? "removed"
		  : ev.type == NVMK_EVENT_NS_ADDED   ? "added"
		  : ev.type == NVMK_EVENT_NS_RESIZED ? "resized"
						     : "changed",
		  (unsigned long long)ev.old_nblocks, (unsigned long long)ev.new_nblocks);
	drv_ctrl_emit(ctrl, &ev);
}

/* Bring-up: learn the active namespaces so that later notices can be told
 * apart (resize vs. new). */
void drv_ns_scan_all(struct nvmk_ctrl *ctrl)
{
	uint32_t *ids = malloc(NVME_NS_LIST_MAX * sizeof(*ids));
	int n;

	if (!ids)
		return;
	n = nvmk_ctrl_active_ns(ctrl, ids, NVME_NS_LIST_MAX);
	for (int i = 0; i < n; i++) {
		uint64_t nblocks;
		uint8_t shift, rescap;

		if (ns_identify(ctrl, ids[i], &nblocks, &shift, &rescap))
			continue;
		pthread_mutex_lock(&ctrl->ns_lock);
		struct drv_ns_state *s = drv_ns_state_get(ctrl, ids[i], true);

		if (s) {
			s->known = true;
			s->lba_shift = shift;
			s->rescap = rescap;
			atomic_store_explicit(&s->nblocks, nblocks, memory_order_relaxed);
		}
		pthread_mutex_unlock(&ctrl->ns_lock);
	}
	free(ids);
}

int nvmk_ns_open(struct nvmk_ctrl *ctrl, uint32_t nsid, uint32_t flags, struct nvmk_ns **out)
{
	struct drv_ns_state *s;
	struct nvmk_ns *ns;
	uint64_t nblocks;
	uint8_t shift, rescap;
	bool shared = (flags & NVMK_NS_SHARED) != 0;
	uint64_t maxb;
	int rc;

	if (!ctrl || !out || nsid == 0 || nsid == NVME_NSID_ALL)
		return -EINVAL;
	rc = drv_failed(ctrl);
	if (rc)
		return rc;
	rc = ns_identify(ctrl, nsid, &nblocks, &shift, &rescap);
	if (rc)
		return rc;
	ns = calloc(1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	ns->ops = &drv_nvme_io_ops;
	pthread_mutex_lock(&ctrl->ns_lock);
	s = drv_ns_state_get(ctrl, nsid, true);
	if (!s) {
		pthread_mutex_unlock(&ctrl->ns_lock);
		free(ns);
		return -ENOMEM;
	}
	if (s->nopen && !(shared && s->open_shared)) {
		pthread_mutex_unlock(&ctrl->ns_lock);
		free(ns);
		return -EBUSY;
	}
	s->known = true;
	s->lba_shift = shift;
	s->rescap = rescap;
	atomic_store_explicit(&s->nblocks, nblocks, memory_order_relaxed);
	atomic_store_explicit(&s->removed, false, memory_order_release);
	s->nopen++;
	s->open_shared = shared;
	ns->ctrl = ctrl;
	ns->s = s;
	ns->nsid = nsid;
	ns->sqe_nsid = (uint64_t)nsid << 32;
	ns->lba_shift = shift;
	ns->lba_bytes = 1u << shift;
	ns->shared = shared;
	maxb = ctrl->max_xfer >> shift;
	if (maxb > NVME_MAX_NLB)
		maxb = NVME_MAX_NLB;
	if (maxb == 0)
		maxb = 1;
	ns->max_blocks = (uint32_t)maxb;
	drv_ns_handle_link(ctrl, ns);
	/* removed was cleared above: every handle of @s (SHARED ones) */
	ns_gate_update_all(ctrl, s);
	pthread_mutex_unlock(&ctrl->ns_lock);
	*out = ns;
	return 0;
}

void nvmk_ns_close(struct nvmk_ns *ns)
{
	if (ns)
		ns->ops->ns_close(ns);
}

void drv_nvme_ns_close(struct nvmk_ns *ns)
{
	if (!ns->ctrl) { /* orphaned by nvmk_ctrl_close */
		free(ns);
		return;
	}
	pthread_mutex_lock(&ns->ctrl->ns_lock);
	if (ns->s->nopen)
		ns->s->nopen--;
	drv_ns_handle_unlink(ns->ctrl, ns);
	pthread_mutex_unlock(&ns->ctrl->ns_lock);
	free(ns);
}

void nvmk_ns_info(const struct nvmk_ns *ns, struct nvmk_ns_info *info)
{
	ns->ops->ns_info(ns, info);
}

void drv_nvme_ns_info(const struct nvmk_ns *ns, struct nvmk_ns_info *info)
{
	memset(info, 0, sizeof(*info));
	info->nsid = ns->nsid;
	info->lba_shift = ns->lba_shift;
	info->block_size = 1u << ns->lba_shift;
	if (!ns->ctrl) { /* orphaned by nvmk_ctrl_close: no device behind it */
		info->removed = true;
		return;
	}
	/* relaxed: a size snapshot; acquire on removed pairs with the release in rescan */
	info->nblocks = atomic_load_explicit(&ns->s->nblocks, memory_order_relaxed);
	info->capacity = info->nblocks << ns->lba_shift;
	info->max_xfer_blocks = ns->max_blocks;
	info->oncs = ns->ctrl->id->oncs;
	info->rescap = ns->s->rescap;
	info->removed = atomic_load_explicit(&ns->s->removed, memory_order_acquire);
}

struct nvmk_ctrl *nvmk_ns_ctrl(const struct nvmk_ns *ns)
{
	return ns->ctrl;
}
