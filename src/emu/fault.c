/* SPDX-License-Identifier: MIT */
/*
 * Fault injection: rules matched against every fetched command, in the order
 * they were added; the first rule that applies wins. A rule first lets @skip
 * matching commands pass (they continue to the next rules), then applies to
 * @count commands (0 = forever).
 */
#include <errno.h>
#include <string.h>

#include "emu/emu_internal.h"

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
	if (emu->nr_faults == EMU_MAX_FAULTS) {
		pthread_mutex_unlock(&emu->fault_lock);
		return -ENOSPC;
	}
	id = (int)emu->nr_faults++;
	emu->faults[id] = (struct emu_fault_rule){.f = *f, .used = true};
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
	pthread_mutex_unlock(&emu->fault_lock);
}

struct nvmk_emu_fault emu_fault_match(struct nvmk_emu *emu, uint16_t sqid, uint8_t opc)
{
	struct nvmk_emu_fault none = {0};

	pthread_mutex_lock(&emu->fault_lock);
	for (unsigned i = 0; i < emu->nr_faults; i++) {
		struct emu_fault_rule *r = &emu->faults[i];

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
