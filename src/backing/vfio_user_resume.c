// SPDX-License-Identifier: MIT
/*
 * vfio-user client: adopting the controller of a client that crashed
 * (docs/vfio-user.md, "A client that crashed without a saved state").
 *
 * A --persist nvmekeep-emu pauses the controller when its client goes and
 * keeps that client's maps. Its two vendor regions give them back: RESUME
 * (a blob: the maps, the queues and held commands as the controller sees
 * them) and MEMORY (the fd of the file holding the admin queue). This file
 * reads and checks both, opens the file as a private DMA pool (its slot
 * table is validated by nvmk_dma_pool_open: an ephemeral memfd is refused
 * there), makes sure every queue lives in it, and only then writes ADOPT:
 * the maps become ours (as after a handover: in the table without a host
 * address until dma_remap takes a block back) and the controller goes on.
 * The driver then adopts the controller from the view (nvmk_ctrl_adopt).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nvmekeep/dma.h"
#include "nvmekeep/log.h"
#include "vfio_user_internal.h"

#define REGION_INFO_ROOM 256

/* Region info of a vendor region with its type capability checked; @fd
 * receives an fd that came with it (or -1). */
static int vendor_region(struct vfu_backing *v, uint32_t index, uint32_t subtype,
			 struct nvmk_vfu_region_info *ri, uint8_t *rep, size_t *len, int *fd,
			 char *why, size_t whylen)
{
	struct nvmk_vfu_region_info req = {.argsz = REGION_INFO_ROOM, .index = index};
	uint32_t off;
	bool typed = false;
	int rc;

	*fd = -1;
	rc = vfu_exchange(v, NVMK_VFU_DEVICE_GET_REGION_INFO, &req, sizeof(req), NULL, 0, rep,
			  REGION_INFO_ROOM, len, fd);
	if (rc) {
		snprintf(why, whylen,
			 "the server has no region %u (%s): not an nvmekeep-emu "
			 "that keeps memory",
			 index, strerror(-rc));
		return rc == -ENODEV ? rc : -ENOENT;
	}
	if (*len < sizeof(*ri)) {
		snprintf(why, whylen, "region %u info of %zu bytes", index, *len);
		goto bad;
	}
	memcpy(ri, rep, sizeof(*ri));
	if (ri->size == 0) {
		snprintf(why, whylen,
			 "the server keeps no memory of the previous client "
			 "(not --persist, --no-resume-memory, or nothing kept)");
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return -ENOENT;
	}
	/* the capability chain, offsets relative to the info, inside the reply */
	off = (ri->flags & NVMK_VFU_REGION_FLAG_CAPS) ? ri->cap_offset : 0;
	for (unsigned hops = 0; off && hops < 8; hops++) {
		struct nvmk_vfu_cap_type cap;

		if (off < sizeof(*ri) || off > *len || *len - off < sizeof(cap.hdr))
			break;
		memcpy(&cap, rep + off, *len - off < sizeof(cap) ? sizeof(cap.hdr) : sizeof(cap));
		if (cap.hdr.id == NVMK_VFU_CAP_TYPE && *len - off >= sizeof(cap) &&
		    cap.type == NVMK_VFU_VENDOR_TYPE && cap.subtype == subtype)
			typed = true;
		off = cap.hdr.next;
	}
	if (!typed) {
		snprintf(why, whylen,
			 "region %u lacks the type capability %08x/%u: not this "
			 "server's resume region",
			 index, NVMK_VFU_VENDOR_TYPE, subtype);
		goto bad;
	}
	return 0;
bad:
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	return -EPROTO;
}

/* The resume blob, read in pieces of at most max_data_xfer_size. */
static int read_blob(struct vfu_backing *v, uint64_t size, uint8_t *out, char *why, size_t whylen)
{
	uint32_t chunk = v->server.max_data_xfer_size < VFU_MAX_XFER ? v->server.max_data_xfer_size
								     : VFU_MAX_XFER;
	uint8_t *rep = malloc(sizeof(struct nvmk_vfu_region_rw) + chunk);
	uint64_t done = 0;
	int rc = 0;

	if (!rep)
		return -ENOMEM;
	while (done < size) {
		uint32_t n = size - done < chunk ? (uint32_t)(size - done) : chunk;
		struct nvmk_vfu_region_rw rw = {
		    .offset = done, .region = NVMK_VFU_REGION_RESUME, .count = n};
		size_t len = 0;

		rc = vfu_exchange(v, NVMK_VFU_REGION_READ, &rw, sizeof(rw), NULL, 0, rep,
				  sizeof(rw) + chunk, &len, NULL);
		if (rc || len != sizeof(rw) + n) {
			snprintf(why, whylen, "reading the resume state at %" PRIu64 ": %s", done,
				 rc ? strerror(-rc) : "short reply");
			rc = rc ? rc : -EPROTO;
			break;
		}
		memcpy(out + done, rep + sizeof(rw), n);
		done += n;
	}
	free(rep);
	return rc;
}

/* The file-0 map that holds [iova, iova + len), or NULL. */
static const struct nvmk_vfu_resume_map *pool_map(const struct nvmk_vfu_resume *r, uint64_t iova,
						  uint64_t len)
{
	for (uint32_t i = 0; i < r->h.nmaps; i++) {
		const struct nvmk_vfu_resume_map *m = &r->maps[i];

		if (iova >= m->iova && iova - m->iova < m->size &&
		    len <= m->size - (iova - m->iova))
			return m->file == 0 ? m : NULL;
	}
	return NULL;
}

/* Every queue (and the shadow doorbell pages) inside the pool's file. */
static int queues_in_pool(const struct nvmk_vfu_resume *r, char *why, size_t whylen)
{
	if (!r->h.nsq) {
		snprintf(why, whylen, "the controller has no queues");
		return -ENOENT;
	}
	for (uint32_t i = 0; i < r->h.nsq; i++)
		if (!pool_map(r, r->sqs[i].base, (uint64_t)r->sqs[i].size * 64)) {
			snprintf(why, whylen,
				 "SQ %u (IOVA 0x%" PRIx64 ") is not in the "
				 "handed-back pool: the previous client used ephemeral memory, "
				 "which cannot be had back",
				 r->sqs[i].qid, r->sqs[i].base);
			return -EXDEV;
		}
	for (uint32_t i = 0; i < r->h.ncq; i++)
		if (!pool_map(r, r->cqs[i].base, (uint64_t)r->cqs[i].size * 16)) {
			snprintf(why, whylen,
				 "CQ %u (IOVA 0x%" PRIx64 ") is not in the "
				 "handed-back pool: the previous client used ephemeral memory, "
				 "which cannot be had back",
				 r->cqs[i].qid, r->cqs[i].base);
			return -EXDEV;
		}
	if (r->h.dbbuf_shadow &&
	    (!pool_map(r, r->h.dbbuf_shadow, 4096) || !pool_map(r, r->h.dbbuf_eventidx, 4096))) {
		snprintf(why, whylen, "the shadow doorbell pages are not in the handed-back pool");
		return -EXDEV;
	}
	return 0;
}

/* The generic view of the blob (copied: the blob goes). */
static int make_view(struct vfu_backing *v, const struct nvmk_vfu_resume *r)
{
	size_t sz = r->h.nmaps * sizeof(struct nvmk_dev_view_map) +
		    r->h.nsq * sizeof(struct nvmk_dev_view_sq) +
		    r->h.ncq * sizeof(struct nvmk_dev_view_cq) +
		    r->h.ncmd * sizeof(struct nvmk_dev_view_cmd) + 8;
	uint8_t *mem = calloc(1, sz);
	struct nvmk_dev_view_map *maps;
	struct nvmk_dev_view_sq *sqs;
	struct nvmk_dev_view_cq *cqs;
	struct nvmk_dev_view_cmd *cmds;

	if (!mem)
		return -ENOMEM;
	maps = (void *)mem;
	sqs = (void *)(maps + r->h.nmaps);
	cqs = (void *)(sqs + r->h.nsq);
	cmds = (void *)(cqs + r->h.ncq);
	for (uint32_t i = 0; i < r->h.nmaps; i++)
		maps[i] = (struct nvmk_dev_view_map){r->maps[i].iova, r->maps[i].size,
						     r->maps[i].offset, r->maps[i].file == 0};
	for (uint32_t i = 0; i < r->h.nsq; i++)
		sqs[i] = (struct nvmk_dev_view_sq){r->sqs[i].qid,  r->sqs[i].cqid, r->sqs[i].size,
						   r->sqs[i].head, r->sqs[i].tail, r->sqs[i].base};
	for (uint32_t i = 0; i < r->h.ncq; i++)
		cqs[i] = (struct nvmk_dev_view_cq){r->cqs[i].qid,   r->cqs[i].iv,   r->cqs[i].ien,
						   r->cqs[i].phase, r->cqs[i].size, r->cqs[i].head,
						   r->cqs[i].tail,  r->cqs[i].base};
	for (uint32_t i = 0; i < r->h.ncmd; i++)
		cmds[i] =
		    (struct nvmk_dev_view_cmd){r->cmds[i].sqid, r->cmds[i].cid, r->cmds[i].opc,
					       r->cmds[i].kind == 2, r->cmds[i].kind == 1};
	v->view = (struct nvmk_dev_view){.aqa = r->h.aqa,
					 .asq = r->h.asq,
					 .acq = r->h.acq,
					 .dbbuf_shadow = r->h.dbbuf_shadow,
					 .dbbuf_eventidx = r->h.dbbuf_eventidx,
					 .nsq_granted = r->h.nsq_granted,
					 .ncq_granted = r->h.ncq_granted,
					 .nmaps = r->h.nmaps,
					 .nsq = r->h.nsq,
					 .ncq = r->h.ncq,
					 .ncmd = r->h.ncmd,
					 .maps = maps,
					 .sqs = sqs,
					 .cqs = cqs,
					 .cmds = cmds};
	v->view_mem = mem;
	v->has_view = true;
	return 0;
}

int vfu_resume_try(struct vfu_backing *v, char *why, size_t whylen)
{
	uint8_t rep[REGION_INFO_ROOM];
	struct nvmk_vfu_region_info ri, mi;
	struct nvmk_vfu_resume r;
	struct nvmk_dma_pool *pool = NULL;
	uint8_t *blob = NULL;
	uint32_t ctl = NVMK_VFU_RESUME_CTL_ADOPT;
	struct stat st;
	size_t len = 0;
	int fd = -1, rc;

	rc = vendor_region(v, NVMK_VFU_REGION_RESUME, NVMK_VFU_SUBTYPE_RESUME, &ri, rep, &len, &fd,
			   why, whylen);
	if (fd >= 0)
		close(fd);
	if (rc)
		return rc;
	if (!(ri.flags & NVMK_VFU_REGION_FLAG_READ) || ri.size > NVMK_VFU_RESUME_MAX) {
		snprintf(why, whylen,
			 "resume region of %" PRIu64 " bytes, flags 0x%x (readable, "
			 "at most %u bytes)",
			 ri.size, ri.flags, NVMK_VFU_RESUME_MAX);
		return -EPROTO;
	}
	blob = malloc(ri.size); /* malloc: aligned for the parser */
	if (!blob)
		return -ENOMEM;
	rc = read_blob(v, ri.size, blob, why, whylen);
	if (!rc) {
		rc = nvmk_vfu_resume_parse(blob, ri.size, &r, why, whylen);
		if (rc)
			rc = -EPROTO;
	}
	if (!rc)
		rc = queues_in_pool(&r, why, whylen);
	if (rc)
		goto out;
	rc = vendor_region(v, NVMK_VFU_REGION_MEMORY, NVMK_VFU_SUBTYPE_MEMORY, &mi, rep, &len, &fd,
			   why, whylen);
	if (rc)
		goto out;
	if (fd < 0 || !(mi.flags & NVMK_VFU_REGION_FLAG_MMAP) || fstat(fd, &st) ||
	    (uint64_t)st.st_size != mi.size) {
		snprintf(why, whylen,
			 "the memory region came %s (mmap-able with the file's fd "
			 "and size expected)",
			 fd < 0 ? "without an fd" : "with a wrong size or flags");
		rc = -EPROTO;
		goto out;
	}
	rc = nvmk_dma_pool_open(fd, &pool);
	if (rc) {
		snprintf(why, whylen,
			 "the memory holding the queues is not a private DMA pool "
			 "(%s): ephemeral memory cannot be had back",
			 strerror(-rc));
		rc = -EXDEV;
		goto out;
	}
	fd = -1; /* the pool's now */
	/* the last step: the maps are ours and the controller goes on */
	{
		struct nvmk_vfu_region_rw rw = {
		    .offset = 0, .region = NVMK_VFU_REGION_RESUME, .count = 4};
		uint8_t msg[sizeof(rw) + 4], out[sizeof(rw)];

		memcpy(msg, &rw, sizeof(rw));
		memcpy(msg + sizeof(rw), &ctl, 4);
		rc = vfu_exchange(v, NVMK_VFU_REGION_WRITE, msg, sizeof(msg), NULL, 0, out,
				  sizeof(out), &len, NULL);
		if (rc) {
			snprintf(why, whylen, "the server refused ADOPT: %s", strerror(-rc));
			goto out;
		}
	}
	pthread_mutex_lock(&v->map_lock);
	for (uint32_t i = 0; i < r.h.nmaps && !rc; i++) {
		const struct nvmk_vfu_resume_map *m = &r.maps[i];
		struct vfu_map vm = {m->iova, m->size, NULL, -1,
				     m->file == 0 ? m->offset : UINT64_MAX};

		rc = vfu_maps_add(v, &vm);
		if (v->next_iova < m->iova + m->size + NVMK_DMA_PAGE_SIZE)
			v->next_iova = m->iova + m->size + NVMK_DMA_PAGE_SIZE;
	}
	pthread_mutex_unlock(&v->map_lock);
	if (!rc)
		rc = make_view(v, &r);
	if (rc) {
		snprintf(why, whylen, "out of memory after ADOPT");
		goto out;
	}
	v->own_pool = pool;
	v->b.pool = pool;
	pool = NULL;
	nvmk_info(v->b.name, NVMK_LOG_NOQ,
		  "resume state: %u map(s), %u SQ(s), %u CQ(s), %u held command(s)", r.h.nmaps,
		  r.h.nsq, r.h.ncq, r.h.ncmd);
out:
	if (pool)
		nvmk_dma_pool_destroy(pool);
	if (fd >= 0)
		close(fd);
	free(blob);
	return rc;
}

const struct nvmk_dev_view *vfu_device_view(struct nvmk_backing *b)
{
	struct vfu_backing *v = to_vfu(b);

	return v->has_view ? &v->view : NULL;
}

void vfu_device_view_done(struct nvmk_backing *b)
{
	struct vfu_backing *v = to_vfu(b);

	if (!v->has_view)
		return;
	/* the previous client's maps no block was taken back into: its data
	 * buffers, ephemeral memory. Nothing on the device points there now
	 * (the adoption drained every command, or the controller was reset). */
	for (;;) {
		struct nvmk_vfu_dma_unmap u = {.argsz = sizeof(u)};
		uint8_t out[sizeof(u)];
		bool found = false;

		pthread_mutex_lock(&v->map_lock);
		for (unsigned i = 0; i < v->nmaps; i++)
			if (!v->maps[i].vaddr) {
				u.addr = v->maps[i].iova;
				u.size = v->maps[i].size;
				v->maps[i] = v->maps[--v->nmaps];
				found = true;
				break;
			}
		pthread_mutex_unlock(&v->map_lock);
		if (!found)
			break;
		if (vfu_exchange(v, NVMK_VFU_DMA_UNMAP, &u, sizeof(u), NULL, 0, out, sizeof(out),
				 NULL, NULL))
			break;
	}
	free(v->view_mem);
	v->view_mem = NULL;
	memset(&v->view, 0, sizeof(v->view));
	v->has_view = false;
}

void vfu_resume_free(struct vfu_backing *v)
{
	free(v->view_mem);
	v->view_mem = NULL;
	v->has_view = false;
	if (v->own_pool) {
		if (v->b.pool == v->own_pool)
			v->b.pool = NULL;
		nvmk_dma_pool_destroy(v->own_pool);
		v->own_pool = NULL;
	}
}
