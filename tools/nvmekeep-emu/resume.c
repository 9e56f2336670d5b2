// SPDX-License-Identifier: MIT
/*
 * A client that crashed without a saved state, and the next one
 * (docs/vfio-user.md, "A client that crashed without a saved state").
 *
 * With --persist (and not --no-resume-memory), a disconnect pauses the
 * controller between two commands (nvmk_emu_pause: it fetches, completes and
 * touches nothing) and keeps the client's maps: their mmaps and a dup of
 * each fd. The next client finds two vendor regions (VFIO's
 * VFIO_REGION_TYPE_PCI_VENDOR_TYPE | 1de5h, capability id 2):
 *  - RESUME (index 9, subtype 1): REGION_READ gives a blob (vfio_user.h,
 *    struct nvmk_vfu_resume_hdr) with the kept maps (IOVA, size, offset,
 *    which file), the controller's queues and held commands, taken by the
 *    emulator's worker; a 4-byte REGION_WRITE of NVMK_VFU_RESUME_CTL_ADOPT at
 *    offset 0 makes the kept maps the new client's and lets the controller go.
 *  - MEMORY (index 10, subtype 2): mmap-able, whole file at offset 0; its
 *    DEVICE_GET_REGION_INFO reply carries the fd of the file holding the
 *    admin queue (the spec lets a reply carry an fd for an mmap-able region).
 * Anything else the new client does first lets the controller go on too: a
 * DMA_MAP (a restoring driver re-mapping its pool; the kept maps at those
 * addresses give way), a register write or DEVICE_RESET (the kept maps are
 * dropped, as before).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nvmekeep/log.h"
#include "nvmekeep/spec.h"
#include "server.h"

#define PAUSE_MS    5000u
#define SNAPSHOT_MS 5000u

void srv_resume_hold(struct srv *s)
{
	if (nvmk_emu_pause(s->emu, true, PAUSE_MS))
		nvmk_warn(s->name, NVMK_LOG_NOQ,
			  "the controller did not pause: its memory is "
			  "kept all the same");
	s->held = true;
	srv_dma_keep_all(s);
}

void srv_resume_release(struct srv *s)
{
	if (!s->held)
		return;
	s->held = false;
	free(s->resume_blob);
	s->resume_blob = NULL;
	s->resume_len = 0;
	nvmk_emu_pause(s->emu, false, 0);
}

/* The kept map holding IOVA @iova with an fd, or -1. map_lock held. */
static int kept_map_at(struct srv *s, uint64_t iova)
{
	for (unsigned i = 0; i < s->nmaps; i++) {
		const struct srv_map *m = &s->maps[i];

		if (m->kept && iova >= m->iova && iova - m->iova < m->size)
			return m->fd >= 0 && m->has_file ? (int)i : -1;
	}
	return -1;
}

/* The file of the admin SQ (the memory handed back): index of a kept map of it, or -1. */
static int memory_map(struct srv *s)
{
	uint64_t asq = nvmk_emu_reg_read64(s->emu, NVME_REG_ASQ);
	int i;

	pthread_rwlock_rdlock(&s->map_lock);
	i = kept_map_at(s, asq);
	pthread_rwlock_unlock(&s->map_lock);
	return i;
}

static int build_blob(struct srv *s)
{
	struct nvmk_emu_snapshot snap;
	struct nvmk_vfu_resume_hdr h = {.magic = NVMK_VFU_RESUME_MAGIC,
					.version = NVMK_VFU_RESUME_VERSION,
					.hdr_size = sizeof(h)};
	struct srv_map mem = {0};
	dev_t files_dev[64];
	ino_t files_ino[64];
	unsigned nfiles = 0;
	size_t size, off;
	uint8_t *b;
	int mi, rc;

	rc = nvmk_emu_snapshot(s->emu, &snap, SNAPSHOT_MS);
	if (rc)
		return rc;
	mi = memory_map(s);
	pthread_rwlock_rdlock(&s->map_lock);
	if (mi >= 0)
		mem = s->maps[mi];
	for (unsigned i = 0; i < s->nmaps; i++)
		h.nmaps += s->maps[i].kept;
	size = nvmk_vfu_resume_size(h.nmaps, snap.nsq, snap.ncq, snap.ncmd);
	b = size ? calloc(1, size) : NULL;
	if (!b) {
		pthread_rwlock_unlock(&s->map_lock);
		nvmk_emu_snapshot_free(&snap);
		return size ? -ENOMEM : -E2BIG;
	}
	h.total_size = (uint32_t)size;
	h.nsq = snap.nsq;
	h.ncq = snap.ncq;
	h.ncmd = snap.ncmd;
	h.cc = snap.cc;
	h.aqa = snap.aqa;
	h.asq = snap.asq;
	h.acq = snap.acq;
	h.nsq_granted = snap.nsq_granted;
	h.ncq_granted = snap.ncq_granted;
	h.dbbuf_shadow = snap.dbbuf_shadow;
	h.dbbuf_eventidx = snap.dbbuf_eventidx;
	memcpy(b, &h, sizeof(h));
	off = sizeof(h);
	for (unsigned i = 0; i < s->nmaps; i++) {
		const struct srv_map *m = &s->maps[i];
		struct nvmk_vfu_resume_map rm = {.iova = m->iova,
						 .size = m->size,
						 .offset = m->offset,
						 .file = NVMK_VFU_RESUME_FILE_NONE,
						 .flags = m->flags};

		if (!m->kept)
			continue;
		if (m->has_file && mi >= 0 && m->dev == mem.dev && m->ino == mem.ino) {
			rm.file = 0;
		} else if (m->has_file) {
			unsigned f;

			for (f = 0; f < nfiles; f++)
				if (files_dev[f] == m->dev && files_ino[f] == m->ino)
					break;
			if (f == nfiles && nfiles < 64) {
				files_dev[nfiles] = m->dev;
				files_ino[nfiles++] = m->ino;
			}
			rm.file = f + 1;
		}
		memcpy(b + off, &rm, sizeof(rm));
		off += sizeof(rm);
	}
	pthread_rwlock_unlock(&s->map_lock);
	for (unsigned i = 0; i < snap.nsq; i++) {
		struct nvmk_vfu_resume_sq q = {snap.sqs[i].qid,	 snap.sqs[i].cqid,
					       snap.sqs[i].size, snap.sqs[i].base,
					       snap.sqs[i].head, snap.sqs[i].tail};

		memcpy(b + off, &q, sizeof(q));
		off += sizeof(q);
	}
	for (unsigned i = 0; i < snap.ncq; i++) {
		struct nvmk_vfu_resume_cq q = {.qid = snap.cqs[i].qid,
					       .iv = snap.cqs[i].iv,
					       .ien = snap.cqs[i].ien,
					       .phase = snap.cqs[i].phase,
					       .size = snap.cqs[i].size,
					       .base = snap.cqs[i].base,
					       .head = snap.cqs[i].head,
					       .tail = snap.cqs[i].tail};

		memcpy(b + off, &q, sizeof(q));
		off += sizeof(q);
	}
	for (unsigned i = 0; i < snap.ncmd; i++) {
		struct nvmk_vfu_resume_cmd c = {snap.cmds[i].sqid, snap.cmds[i].cid,
						snap.cmds[i].opc, snap.cmds[i].kind, 0};

		memcpy(b + off, &c, sizeof(c));
		off += sizeof(c);
	}
	nvmk_emu_snapshot_free(&snap);
	free(s->resume_blob);
	s->resume_blob = b;
	s->resume_len = size;
	return 0;
}

int srv_resume_region_info(struct srv *s, uint32_t index, uint32_t room, uint8_t *out,
			   size_t outmax, size_t *len, int *fd)
{
	struct nvmk_vfu_region_info ri = {.argsz = sizeof(ri), .index = index};
	struct nvmk_vfu_cap_type type = {.hdr = {.id = NVMK_VFU_CAP_TYPE, .version = 1, .next = 0},
					 .type = NVMK_VFU_VENDOR_TYPE,
					 .subtype = index == NVMK_VFU_REGION_RESUME
							? NVMK_VFU_SUBTYPE_RESUME
							: NVMK_VFU_SUBTYPE_MEMORY};
	size_t need = sizeof(ri) + sizeof(type);
	int rc;

	*fd = -1;
	if (!s->held) {
		/* nothing kept: the region is absent (size 0) */
		memcpy(out, &ri, sizeof(ri));
		*len = sizeof(ri);
		return 0;
	}
	if (index == NVMK_VFU_REGION_RESUME) {
		rc = build_blob(s);
		if (rc)
			return rc;
		ri.size = s->resume_len;
		ri.flags = NVMK_VFU_REGION_FLAG_READ | NVMK_VFU_REGION_FLAG_WRITE |
			   NVMK_VFU_REGION_FLAG_CAPS;
	} else {
		struct nvmk_vfu_cap_sparse sp = {
		    .hdr = {.id = NVMK_VFU_CAP_SPARSE_MMAP, .version = 1, .next = 0},
		    .nr_areas = 1};
		struct nvmk_vfu_sparse_area area = {0};
		int mi = memory_map(s);
		struct stat st;

		if (mi < 0 || fstat(s->maps[mi].fd, &st) || st.st_size <= 0) {
			memcpy(out, &ri, sizeof(ri));
			*len = sizeof(ri);
			return 0;
		}
		ri.size = (uint64_t)st.st_size;
		area.size = ri.size;
		ri.flags = NVMK_VFU_REGION_FLAG_MMAP | NVMK_VFU_REGION_FLAG_CAPS;
		need += sizeof(sp) + sizeof(area);
		type.hdr.next = sizeof(ri) + sizeof(type);
		if (need <= outmax) {
			memcpy(out + sizeof(ri) + sizeof(type), &sp, sizeof(sp));
			memcpy(out + sizeof(ri) + sizeof(type) + sizeof(sp), &area, sizeof(area));
		}
		*fd = s->maps[mi].fd;
	}
	ri.argsz = (uint32_t)need;
	*len = sizeof(ri);
	/* "If the argsz is too small ... the server sets argsz and returns
	 * without the capabilities": the client asks again with more room */
	if (room >= need && need <= outmax) {
		ri.cap_offset = sizeof(ri);
		memcpy(out + sizeof(ri), &type, sizeof(type));
		*len = need;
	}
	memcpy(out, &ri, sizeof(ri));
	return 0;
}

int srv_resume_region_rw(struct srv *s, uint32_t index, uint64_t off, uint32_t count, uint8_t *data,
			 bool write, char *why, size_t whylen)
{
	uint32_t ctl;

	if (index == NVMK_VFU_REGION_MEMORY) {
		snprintf(why, whylen, "region %u is reached by mmap only", index);
		return -EINVAL;
	}
	if (!s->held || !s->resume_blob) {
		snprintf(why, whylen, "no resume state %s",
			 s->held ? "read yet (ask DEVICE_GET_REGION_INFO first)"
				 : "(no previous client's memory is kept)");
		return -EINVAL;
	}
	if (!write) {
		if (off >= s->resume_len || count > s->resume_len - off) {
			snprintf(why, whylen, "%u bytes at 0x%llx beyond the %zu-byte resume state",
				 count, (unsigned long long)off, s->resume_len);
			return -EINVAL;
		}
		memcpy(data, s->resume_blob + off, count);
		return 0;
	}
	if (off != 0 || count != 4) {
		snprintf(why, whylen,
			 "the resume control is one dword at offset 0, not %u bytes "
			 "at 0x%llx",
			 count, (unsigned long long)off);
		return -EINVAL;
	}
	memcpy(&ctl, data, 4);
	if (ctl != NVMK_VFU_RESUME_CTL_ADOPT) {
		snprintf(why, whylen, "resume control 0x%08x (accepted: 0x%08x, adopt)", ctl,
			 NVMK_VFU_RESUME_CTL_ADOPT);
		return -EINVAL;
	}
	/* The kept maps are this client's now, the window closes (nothing is
	 * dropped), and the controller goes on from where it stopped. */
	srv_dma_adopt_kept(s);
	atomic_fetch_add(&s->stats.adopted, 1);
	srv_resume_window(s, false);
	srv_resume_release(s);
	nvmk_info(s->name, NVMK_LOG_NOQ,
		  "client (pid %d) adopted the previous client's memory: no reset",
		  (int)s->client_pid);
	return 0;
}
