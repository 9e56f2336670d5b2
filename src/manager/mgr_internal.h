/* SPDX-License-Identifier: MIT */
/*
 * Manager internals shared by the files of src/manager/: the manager, its
 * devices, and the requests their workers run. Public API:
 * include/nvmekeep/manager.h.
 *
 * Locks, outermost first (never taken in the other order):
 *   mgr->lock   the device list, the shutting-down flag, every device's
 *               refs and removing flag
 *   dev->lock   a device's state, backing, controller pointer and namespace
 *               table (the worker writes them, status reads them); held only
 *               for short copies, and around nvmk_ctrl_queue_stats, never
 *               while the worker runs a driver call that can wait
 *   dev->qlock  a device's request queue (also taken by the driver's event
 *               callback on its admin thread, so nothing else is taken under it)
 */
#ifndef NVMK_MGR_INTERNAL_H
#define NVMK_MGR_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "nvmekeep/manager.h"

enum mgr_req_type {
	MGR_REQ_LOAD = 1,  /* bring up unless up */
	MGR_REQ_GET_NS,	   /* bring up, then the shared handle of @nsid */
	MGR_REQ_EVENT,	   /* an asynchronous event from the driver (detached) */
	MGR_REQ_SHUTDOWN,  /* close namespaces and the controller */
	MGR_REQ_SAVE,	   /* save (keep-alive) or drain and shut down */
	MGR_REQ_RESTORE,   /* restore from a saved device blob, or bring up anew */
	MGR_REQ_DMA_ALLOC, /* client buffer: allocate */
	MGR_REQ_DMA_GET,   /* client buffer: look up */
	MGR_REQ_DMA_FREE,  /* client buffer: free */
	MGR_REQ_QPAIR,	   /* create an I/O queue pair */
	MGR_REQ_STOP,	   /* end the worker thread */
	MGR_REQ_REMOVE,	   /* refuse if busy (unless forced), else shut down */
};

/* A client DMA buffer as saved (save.c encodes it). */
struct mgr_saved_buf {
	char tag[NVMK_MGR_TAG_MAX + 1];
	uint64_t size;
	uint64_t iova;
};

enum mgr_saved_status {
	MGR_SAVED_OK = 1,	/* @blob holds the driver state */
	MGR_SAVED_UNLOADED = 2, /* never brought up */
	MGR_SAVED_FAILED = 3,	/* failed before or during the save (@err) */
	MGR_SAVED_KERNEL = 4,	/* kernel path: nothing kept alive, @nsids re-opened */
};

/* One device's part of the manager state, in C. */
struct mgr_saved_dev {
	char id[NVMK_MGR_ID_MAX + 1];
	enum mgr_saved_status status;
	int err;
	uint32_t *nsids;
	unsigned nns;
	struct mgr_saved_buf *bufs;
	unsigned nbufs;
	void *blob; /* save: malloc'd by the driver; restore: points into the decoded state */
	size_t len;
};

struct mgr_req {
	enum mgr_req_type type;
	struct mgr_req *next;
	bool detached; /* nobody waits: the worker frees it */
	bool done;     /* set under dev->qlock */
	/* in */
	uint32_t nsid;				   /* GET_NS */
	struct nvmk_event ev;			   /* EVENT */
	bool keep_alive;			   /* SAVE, RESTORE */
	struct mgr_saved_dev *saved;		   /* SAVE: filled; RESTORE: what to restore */
	const struct nvmk_mgr_restore_opts *ropts; /* RESTORE */
	const char *tag;			   /* DMA_* */
	size_t size;				   /* DMA_ALLOC */
	struct nvmk_dma_buf buf;		   /* DMA_ALLOC, DMA_GET: out */
	const struct nvmk_qpair_opts *qopts;	   /* QPAIR */
	bool force;				   /* REMOVE */
	struct nvmk_qpair *qp;			   /* QPAIR: out */
	/* out */
	int rc;
	struct nvmk_ns *ns; /* GET_NS */
};

/* A client DMA buffer (nvmk_mgr_dma_alloc). */
struct mgr_buf {
	char tag[NVMK_MGR_TAG_MAX + 1];
	struct nvmk_dma_buf buf;
};

struct mgr_ns_entry {
	uint32_t nsid;
	struct nvmk_ns *ns;
};

/* Deep copy of an EMU spec's strings. */
struct mgr_emu_strings {
	char serial[24];
	char model[44];
	char *path[NVMK_EMU_MAX_NS];
};

struct mgr_dev {
	struct nvmk_mgr *mgr;
	char id[NVMK_MGR_ID_MAX + 1];
	struct nvmk_mgr_device_spec spec; /* pointers redirected into @strs / @id */
	struct mgr_emu_strings strs;
	char kernel_path[256]; /* KERNEL: the device (spec.kernel.path points here) */
	struct mgr_dev *next; /* mgr->devs, registration order */
	/* mgr->lock: holders of a pointer from mgr_find/mgr_devices/a load
	 * (nvmk_mgr_remove_device frees the device when the last one lets go) */
	unsigned refs;
	bool removing; /* nvmk_mgr_remove_device runs: loads get -ENOENT */

	/* request queue: qlock */
	pthread_mutex_t qlock;
	pthread_cond_t qcv;	/* the worker waits for requests */
	pthread_cond_t done_cv; /* requesters wait for theirs */
	struct mgr_req *head, *tail;
	pthread_t thread;
	bool thread_started;

	/* state: lock (written by the worker only) */
	pthread_mutex_t lock;
	enum nvmk_mgr_dev_state state;
	int err;
	struct nvmk_backing *backing;
	struct nvmk_emu *emu; /* EMU devices */
	struct nvmk_ctrl *ctrl;
	struct mgr_ns_entry *ns;
	unsigned nns, ns_cap;
	uint64_t requests;
	/* client buffers: written by the worker under lock */
	struct mgr_buf *bufs;
	unsigned nbufs, bufs_cap;
};

struct nvmk_mgr {
	struct nvmk_config cfg;
	struct nvmk_dma_pool *pool;
	pthread_mutex_t lock;
	struct mgr_dev *devs, *devs_tail;
	unsigned ndevs;
	bool shutting_down; /* loads refused */
	bool shut_done;	    /* every device was asked to shut down */
	bool saving;	    /* a save is in progress or done: loads refused */
	bool used;	    /* a load-type request was made: a restore is too late */
	bool restoring;	    /* nvmk_mgr_restore runs: loads refused (-EBUSY) */
	unsigned removals;  /* nvmk_mgr_remove_device calls running: saves refused */
	pthread_cond_t refs_cv; /* with mgr->lock: a device's refs dropped */
};

/* device.c: the per-device worker */
int mgr_dev_start(struct mgr_dev *d);
/* Queue @req on @d's worker. */
void mgr_dev_post(struct mgr_dev *d, struct mgr_req *req);
/* Wait until the worker finished @req; returns req->rc. */
int mgr_dev_wait(struct mgr_dev *d, struct mgr_req *req);
/* Post STOP, join the worker, release the controller, namespaces and backing. */
void mgr_dev_stop(struct mgr_dev *d);
const char *mgr_dev_kind(const struct mgr_dev *d);
/* Driver options of @d (the spec's, with the manager's event callback). */
void mgr_dev_ctrl_opts(struct mgr_dev *d, struct nvmk_ctrl_opts *o);
/* Worker: create the backing unless there is one (@restoring: no reset). */
int mgr_dev_make_backing(struct mgr_dev *d, bool restoring);
/* Worker: drop the namespace handles (closed when @close_ns; a detach frees
 * them with the controller), set @state/@err and take the controller away from
 * status readers; the caller closes or detaches it. */
struct nvmk_ctrl *mgr_dev_take_ctrl(struct mgr_dev *d, enum nvmk_mgr_dev_state state, int err,
				    bool close_ns);
/* Worker: set state and error under dev->lock. */
void mgr_dev_set_state(struct mgr_dev *d, enum nvmk_mgr_dev_state state, int err);

/* manager.c */
/* Device @id with a reference (mgr_dev_put), or NULL. */
struct mgr_dev *mgr_find(struct nvmk_mgr *mgr, const char *id);
/* Let go of a device from mgr_find. */
void mgr_dev_put(struct mgr_dev *d);
/* Snapshot of the device list (mgr->lock), each with a reference: give
 * them back with mgr_devices_put (a removed device lives until then). */
int mgr_devices(struct nvmk_mgr *mgr, struct mgr_dev ***out, unsigned *n);
/* Put every device of a snapshot and free it; NULL is a no-op. */
void mgr_devices_put(struct mgr_dev **devs, unsigned n);

/* Run one request of @type on every device in parallel and wait for all;
 * returns the first error. */
int mgr_all(struct nvmk_mgr *mgr, enum mgr_req_type type);

/* device.c: client buffers (worker) */
int mgr_dev_buf_add(struct mgr_dev *d, const char *tag, const struct nvmk_dma_buf *buf);
/* the pool tag of client tag @tag ("c." + tag) */
void mgr_buf_pool_tag(const char *tag, char out[NVMK_DMA_TAG_MAX + 1]);
void mgr_saved_dev_free(struct mgr_saved_dev *s);

/* device.c: KERNEL devices: open namespace @nsid and record it (worker) */
int mgr_dev_kernel_open_ns(struct mgr_dev *d, uint32_t nsid, struct nvmk_ns **out);

/* device.c: the worker's REMOVE step */
int mgr_dev_remove(struct mgr_dev *d, bool force);

/* save.c: the worker's SAVE and RESTORE steps */
int mgr_dev_save(struct mgr_dev *d, struct mgr_req *req);
int mgr_dev_restore(struct mgr_dev *d, struct mgr_req *req);

#endif /* NVMK_MGR_INTERNAL_H */
