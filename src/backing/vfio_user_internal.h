/* SPDX-License-Identifier: MIT */
/*
 * vfio-user client backing, internal: the backing object shared by the
 * client (vfio_user.c) and its handover across exec (vfio_user_handover.c).
 */
#ifndef NVMK_BK_VFIO_USER_INTERNAL_H
#define NVMK_BK_VFIO_USER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/vfio_user.h"

#define VFU_PREFIX	     "vfio-user:"
#define VFU_IOVA_BASE	     0x100000000ull
#define VFU_TIMEOUT_MS	     10000u
#define VFU_HELLO_TIMEOUT_MS 5000u
#define VFU_MAX_XFER	     (1u << 20)
#define VFU_MSG_MAX	     NVMK_VFU_MSG_MAX(VFU_MAX_XFER)
#define VFU_REPLY_FDS	     4
#define NVME_CLASS	     0x010802u

struct vfu_map {
	uint64_t iova, size;
	uint8_t *vaddr; /* NULL: inherited, not reclaimed yet */
	int fd;		/* memfd (not owned) */
	uint64_t fd_offset;
};

struct vfu_backing {
	struct nvmk_backing b;
	char path[108];
	int sock;
	unsigned timeout_ms;
	pthread_mutex_t lock; /* one exchange at a time; guards msg_id and buf */
	uint16_t msg_id;
	uint8_t *buf; /* VFU_MSG_MAX */
	_Atomic bool gone;
	bool exported;
	struct nvmk_vfu_caps server;

	uint64_t bar0_region_size;
	uint8_t *db_map; /* the sparse-mmap area, or NULL */
	uint64_t db_off, db_len;

	unsigned irq_max, nvec;
	int *irq_fds;
	bool irqs_inherited;

	pthread_mutex_t map_lock; /* guards maps[] and next_iova */
	struct vfu_map *maps;
	unsigned nmaps, maps_cap;
	uint64_t next_iova;

	/* adoption of a crashed client's controller (vfio_user_resume.c) */
	struct nvmk_dma_pool *own_pool; /* the pool the server handed back */
	bool has_view;
	struct nvmk_dev_view view;
	void *view_mem; /* the view's arrays */
};

static inline struct vfu_backing *to_vfu(struct nvmk_backing *b)
{
	return (struct vfu_backing *)b;
}

/* A backing object for @path, not connected (sock = -1). */
struct vfu_backing *vfu_alloc(const char *path, const struct nvmk_vfio_user_opts *opts);
/* Free @v; with @close_fds also its socket and eventfds. */
void vfu_free(struct vfu_backing *v, bool close_fds);
/* Device info, NVMe class, BAR0 (doorbell mmap), MSI-X count. */
int vfu_probe(struct vfu_backing *v, const struct nvmk_vfio_user_opts *opts);
/* Append @m to the map table (caller holds map_lock or owns @v alone). */
int vfu_maps_add(struct vfu_backing *v, const struct vfu_map *m);
/* One request and its reply (see exchange_locked in vfio_user.c). */
int vfu_exchange(struct vfu_backing *v, uint16_t cmd, const void *req, size_t reqlen,
		 const int *fds, unsigned nfds, void *reply, size_t rmax, size_t *rlen, int *rfd);

/* vfio_user_resume.c: at open, a controller left enabled by a client that
 * crashed. 0: the server handed back that client's pool and the queue
 * state, the maps are ours, nothing is to be reset; else the reason
 * (logged by the caller with @why), and the controller must be reset. */
int vfu_resume_try(struct vfu_backing *v, char *why, size_t whylen);
const struct nvmk_dev_view *vfu_device_view(struct nvmk_backing *b);
void vfu_device_view_done(struct nvmk_backing *b);
void vfu_resume_free(struct vfu_backing *v);

#endif /* NVMK_BK_VFIO_USER_INTERNAL_H */
