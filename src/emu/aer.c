/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous events (Base 2.0 5.2), the Changed Namespace List log
 * (Base 2.0 5.16.1.5) and the host-side namespace management API that
 * produces Namespace Attribute Changed notices.
 *
 * Masking: once an event of a type has been reported, further events of that
 * type are not reported until the host reads the associated log page with
 * RAE cleared (Base 2.0 5.2.1). Namespace changes keep accumulating in the
 * Changed Namespace List meanwhile.
 */
#include <errno.h>
#include <string.h>

#include "emu/emu_internal.h"

static bool aer_enabled(const struct nvmk_emu *emu, uint8_t type, uint8_t info)
{
	switch (type) {
	case NVME_AER_TYPE_NOTICE:
		return info == NVME_AER_NOTICE_NS_CHANGED && (emu->aec & NVME_AEC_NS_ATTR);
	case NVME_AER_TYPE_SMART:
		return emu->aec & NVME_AEC_SMART_MASK;
	case NVME_AER_TYPE_ERROR:
		return true; /* error events cannot be disabled */
	default:
		return false;
	}
}

static bool *aer_mask_of(struct nvmk_emu *emu, uint8_t type)
{
	return type == NVME_AER_TYPE_NOTICE  ? &emu->notice_masked
	       : type == NVME_AER_TYPE_ERROR ? &emu->error_masked
					     : NULL;
}

/* aer_lock held */
static void aer_queue(struct nvmk_emu *emu, uint8_t type, uint8_t info, uint8_t lid)
{
	bool *m = aer_mask_of(emu, type);

	if (!aer_enabled(emu, type, info) || (m && *m))
		return;
	for (unsigned i = 0; i < emu->nr_events; i++)
		if (emu->events[i].type == type && emu->events[i].info == info)
			return; /* already waiting for an AER */
	if (emu->nr_events == EMU_MAX_EVENTS) {
		nvmk_warn(emu->name, 0, "async event queue full, event type %u dropped", type);
		return;
	}
	emu->events[emu->nr_events++] = (struct emu_event){type, info, lid};
}

/* aer_lock held. The host read the log with RAE = 0: events of @type still
 * waiting for an AER describe what it has just consumed, so they go too. */
static void aer_drop_type(struct nvmk_emu *emu, uint8_t type)
{
	unsigned n = 0;

	for (unsigned i = 0; i < emu->nr_events; i++)
		if (emu->events[i].type != type)
			emu->events[n++] = emu->events[i];
	emu->nr_events = n;
}

void emu_aer_event(struct nvmk_emu *emu, uint8_t type, uint8_t info, uint8_t lid)
{
	pthread_mutex_lock(&emu->aer_lock);
	aer_queue(emu, type, info, lid);
	pthread_mutex_unlock(&emu->aer_lock);
	emu_kick(emu);
}

bool emu_aer_deliver(struct nvmk_emu *emu)
{
	bool done = false;

	while (emu->nr_aer) {
		struct emu_event ev;
		bool *m;

		pthread_mutex_lock(&emu->aer_lock);
		if (!emu->nr_events) {
			pthread_mutex_unlock(&emu->aer_lock);
			break;
		}
		ev = emu->events[0];
		memmove(&emu->events[0], &emu->events[1],
			(emu->nr_events - 1) * sizeof(emu->events[0]));
		emu->nr_events--;
		m = aer_mask_of(emu, ev.type);
		if (m)
			*m = true;
		pthread_mutex_unlock(&emu->aer_lock);
		emu_aer_complete_one(emu, NVME_AER_DW0(ev.type, ev.info, ev.lid));
		done = true;
	}
	return done;
}

void emu_aer_reset(struct nvmk_emu *emu)
{
	pthread_mutex_lock(&emu->aer_lock);
	emu->nr_events = 0;
	emu->notice_masked = false;
	emu->error_masked = false;
	pthread_mutex_unlock(&emu->aer_lock);
}

void emu_aer_unmask(struct nvmk_emu *emu, uint8_t type)
{
	bool *m;

	pthread_mutex_lock(&emu->aer_lock);
	m = aer_mask_of(emu, type);
	if (m)
		*m = false;
	aer_drop_type(emu, type);
	pthread_mutex_unlock(&emu->aer_lock);
}

void emu_aer_changed_ns_read(struct nvmk_emu *emu, uint8_t *out, bool rae)
{
	uint32_t *list = (uint32_t *)out;

	memset(out, 0, sizeof(struct nvme_changed_ns_log));
	pthread_mutex_lock(&emu->aer_lock);
	if (emu->changed_overflow)
		list[0] = NVME_CHANGED_NS_OVERFLOW;
	else
		memcpy(list, emu->changed_ns, emu->nr_changed * sizeof(uint32_t));
	if (!rae) {
		/* Read with RAE = 0: the log clears and the notice is re-armed. */
		emu->nr_changed = 0;
		emu->changed_overflow = false;
		emu->notice_masked = false;
		aer_drop_type(emu, NVME_AER_TYPE_NOTICE);
	}
	pthread_mutex_unlock(&emu->aer_lock);
}

/* aer_lock held */
static void changed_ns_add(struct nvmk_emu *emu, uint32_t nsid)
{
	for (unsigned i = 0; i < emu->nr_changed; i++)
		if (emu->changed_ns[i] == nsid)
			return;
	if (emu->nr_changed == NVME_NS_LIST_MAX)
		emu->changed_overflow = true;
	else
		emu->changed_ns[emu->nr_changed++] = nsid;
}

/* Tell every controller of the subsystem that @nsid changed. */
static void ns_changed(struct emu_subsys *s, uint32_t nsid)
{
	pthread_mutex_lock(&s->ctrl_lock);
	for (unsigned i = 0; i < EMU_MAX_CTRLS; i++) {
		struct nvmk_emu *c = s->ctrls[i];

		if (!c)
			continue;
		pthread_mutex_lock(&c->aer_lock);
		changed_ns_add(c, nsid);
		aer_queue(c, NVME_AER_TYPE_NOTICE, NVME_AER_NOTICE_NS_CHANGED, NVME_LOG_CHANGED_NS);
		pthread_mutex_unlock(&c->aer_lock);
		emu_kick(c);
	}
	pthread_mutex_unlock(&s->ctrl_lock);
}

int nvmk_emu_ns_add(struct nvmk_emu *emu, const struct nvmk_emu_ns_config *ns)
{
	struct emu_subsys *s = emu->subsys;
	struct emu_ns *n = NULL;
	struct emu_resv *r = NULL;
	int rc;

	if (!ns || ns->nsid < 1 || ns->nsid > s->max_ns) {
		nvmk_err(emu->name, NVMK_LOG_NOQ, "ns add: nsid %u out of range (accepted 1..%u)",
			 ns ? ns->nsid : 0, s->max_ns);
		return -EINVAL;
	}
	rc = emu_ns_create(ns, emu->name, &n);
	if (rc)
		return rc;
	rc = emu_resv_create(&r);
	if (rc) {
		emu_ns_destroy(n);
		return rc;
	}
	pthread_rwlock_wrlock(&s->ns_lock);
	if (s->ns[ns->nsid]) {
		pthread_rwlock_unlock(&s->ns_lock);
		emu_ns_destroy(n);
		emu_resv_destroy(r);
		nvmk_err(emu->name, NVMK_LOG_NOQ, "ns add: nsid %u already exists", ns->nsid);
		return -EEXIST;
	}
	s->ns[ns->nsid] = n;
	s->resv[ns->nsid] = r;
	pthread_rwlock_unlock(&s->ns_lock);
	nvmk_info(emu->name, NVMK_LOG_NOQ, "namespace %u added", ns->nsid);
	ns_changed(s, ns->nsid);
	return 0;
}

int nvmk_emu_ns_remove(struct nvmk_emu *emu, uint32_t nsid)
{
	struct emu_subsys *s = emu->subsys;
	struct emu_ns *n;
	struct emu_resv *r;

	if (nsid < 1 || nsid > s->max_ns)
		return -EINVAL;
	/* The write lock waits for commands using the namespace to finish. */
	pthread_rwlock_wrlock(&s->ns_lock);
	n = s->ns[nsid];
	r = s->resv[nsid];
	s->ns[nsid] = NULL;
	s->resv[nsid] = NULL;
	pthread_rwlock_unlock(&s->ns_lock);
	if (!n)
		return -ENOENT;
	emu_ns_destroy(n);
	emu_resv_destroy(r);
	nvmk_info(emu->name, NVMK_LOG_NOQ, "namespace %u removed", nsid);
	ns_changed(s, nsid);
	return 0;
}

int nvmk_emu_ns_resize(struct nvmk_emu *emu, uint32_t nsid, uint64_t nblocks)
{
	struct emu_subsys *s = emu->subsys;
	int rc;

	if (nsid < 1 || nsid > s->max_ns || nblocks < 1)
		return -EINVAL;
	pthread_rwlock_wrlock(&s->ns_lock);
	rc = s->ns[nsid] ? emu_ns_resize(s->ns[nsid], nblocks) : -ENOENT;
	pthread_rwlock_unlock(&s->ns_lock);
	if (rc)
		return rc;
	nvmk_info(emu->name, NVMK_LOG_NOQ, "namespace %u resized to %llu blocks", nsid,
		  (unsigned long long)nblocks);
	ns_changed(s, nsid);
	return 0;
}
