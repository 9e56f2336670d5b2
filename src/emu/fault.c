/* SPDX-License-Identifier: MIT */
/*
 * Fault injection: rules matched against every fetched command, in the order
 * they were added; the first rule that applies wins. A rule first lets @skip
 * matching commands pass (they continue to the next rules), then applies to
 * @count commands (0 = forever). A rule that has applied @count times is used
 * up: its slot (and id) is given to a later rule, which still comes after
 * every rule added before it.
 */
#include <errno.h>
#include <string.h>

#include "emu/emu_internal.h"

static bool rule_used_up(const struct emu_fault_rule *r)
{
	return !r->used || (r->f.count && r->hits >= r->f.count);
}

int nvmk_emu_fault_add(struct nvmk_emu *emu, const struct nvmk_emu_fault *f)
{
	int id;

	if (!f || f->kind < NVMK_FAULT_DELAY || f->kind > NVMK_FAULT_REMOVE)
		return -EINVAL;
	if (f->qid != NVMK_FAULT_ANY_QID && f->qid > emu->nq)
		return -EINVAL;
	if (f->opcode != NVMK_FAULT_ANY_OPC && f->opcode > 0xff)
		return -EINVAL;
	pthread_mutex_lock(&emu->fault_lock);
	id = -1;
	for (unsigned i = 0; i < emu->nr_faults && id < 0; i++)
		if (rule_used_up(&emu->faults[i]))
			id = (int)i;
	if (id < 0) {
		if (emu->nr_faults == EMU_MAX_FAULTS) {
			pthread_mutex_unlock(&emu->fault_lock);
			return -ENOSPC;
		}
		id = (int)emu->nr_faults++;
	}
	emu->faults[id] = (struct emu_fault_rule){.f = *f, .used = true, .order = ++emu->fault_seq};
	/* inline execution leaves every queue to the worker from now on */
	atomic_store(&emu->faults_armed, true);
	pthread_mutex_unlock(&emu->fault_lock);
	nvmk_debug(emu->name, NVMK_LOG_NOQ, "fault rule %d: kind %d qid 0x%x opc 0x%x", id, f->kind,
		   f->qid, f->opcode);
	return id;
}

void nvmk_emu_set_tamper(struct nvmk_emu *emu, const struct nvmk_emu_tamper *t)
{
	if (t)
		emu->tamper = *t;
	else
		memset(&emu->tamper, 0, sizeof(emu->tamper));
}

uint64_t nvmk_emu_fault_hits(struct nvmk_emu *emu, int id)
{
	uint64_t h = 0;

	pthread_mutex_lock(&emu->fault_lock);
	if (id >= 0 && (unsigned)id < emu->nr_faults)
		h = emu->faults[id].hits;
	pthread_mutex_unlock(&emu->fault_lock);
	return h;
}

void nvmk_emu_fault_clear(struct nvmk_emu *emu)
{
	pthread_mutex_lock(&emu->fault_lock);
	memset(emu->faults, 0, sizeof(emu->faults));
	emu->nr_faults = 0;
	atomic_store(&emu->faults_armed, false);
	pthread_mutex_unlock(&emu->fault_lock);
}

struct nvmk_emu_fault emu_fault_match(struct nvmk_emu *emu, uint16_t sqid, uint8_t opc)
{
	struct nvmk_emu_fault none = {0};
	unsigned idx[EMU_MAX_FAULTS], n = 0;

	pthread_mutex_lock(&emu->fault_lock);
	/* the live rules in the order they were added (slots are reused):
	 * an insertion sort of at most EMU_MAX_FAULTS entries */
	for (unsigned i = 0; i < emu->nr_faults; i++) {
		unsigned j = n;

		if (rule_used_up(&emu->faults[i]))
			continue;
		for (; j > 0 && emu->faults[idx[j - 1]].order > emu->faults[i].order; j--)
			idx[j] = idx[j - 1];
		idx[j] = i;
		n++;
	}
	for (unsigned k = 0; k < n; k++) {
		struct emu_fault_rule *r = &emu->faults[idx[k]];

		if (r->f.qid != NVMK_FAULT_ANY_QID && r->f.qid != sqid)
			continue;
		if (r->f.opcode != NVMK_FAULT_ANY_OPC && r->f.opcode != opc)
			continue;
		if (r->f.count && r->hits >= r->f.count)
			continue; /* exhausted */
		if (r->seen++ < r->f.skip)
			continue;
		r->hits++;
		none = r->f;
		break;
	}
	pthread_mutex_unlock(&emu->fault_lock);
	return none;
}
