// SPDX-License-Identifier: MIT
/*
 * The NBD server: exports (one per active namespace of each device), the I/O
 * threads and their event loop, start, graceful stop, device removal and the
 * status snapshot.
 *
 * Each I/O thread owns, per exported device, an EXCLUSIVE interrupt-mode
 * queue pair (nvmk_mgr_create_qpair) whose eventfd sits in the thread's
 * epoll set, and a slab of request buffers (nvmk_mgr_dma_alloc, tag
 * "nbd.t<thread>", from the private pool when there is one). Both are made
 * by nvmk_export_add_device on the calling thread and then used by the I/O
 * thread only; removal waits until the thread let go of them.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "export_internal.h"
#include "nvmekeep/log.h"

#define DEFAULT_MAX_CONNECTIONS 64
#define DEFAULT_MAX_INFLIGHT	64
#define DEFAULT_SLOTS		128
#define DEFAULT_OPTION_LEN	8192
#define DEFAULT_HS_TIMEOUT_MS	10000
#define DEFAULT_GRACE_MS	10000
#define TICK_MS			100 /* deadlines: handshake, grace, qpair timeouts */

uint64_t exp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void opts_defaults(struct nvmk_export_opts *o)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (!o->threads)
		o->threads = cpus > 0 ? (unsigned)cpus : 1;
	if (o->threads > EXP_MAX_THREADS)
		o->threads = EXP_MAX_THREADS;
	if (!o->max_connections)
		o->max_connections = DEFAULT_MAX_CONNECTIONS;
	if (!o->max_inflight)
		o->max_inflight = DEFAULT_MAX_INFLIGHT;
	if (!o->slots_per_thread)
		o->slots_per_thread = DEFAULT_SLOTS;
	if (!o->max_option_len)
		o->max_option_len = DEFAULT_OPTION_LEN;
	if (o->max_option_len < NVMK_NBD_STRING_MAX + 16)
		o->max_option_len = NVMK_NBD_STRING_MAX + 16; /* a longest name fits */
	if (!o->handshake_timeout_ms)
		o->handshake_timeout_ms = DEFAULT_HS_TIMEOUT_MS;
	if (!o->stop_grace_ms)
		o->stop_grace_ms = DEFAULT_GRACE_MS;
}

uint64_t nvmk_export_buffer_pages(const struct nvmk_export_opts *opts)
{
	struct nvmk_export_opts o = opts ? *opts : (struct nvmk_export_opts){0};

	opts_defaults(&o);
	return (uint64_t)o.threads * o.slots_per_thread * (EXP_MAX_BLOCK_CAP / NVMK_DMA_PAGE_SIZE);
}

void exp_thread_wake(struct exp_thread *t)
{
	uint64_t one = 1;

	if (write(t->wakefd, &one, sizeof(one)) < 0)
		(void)0; /* counter full: a wake-up is pending anyway */
}

struct exp_export *exp_find_export(struct nvmk_export_server *srv, const char *name, size_t len)
{
	unsigned n = atomic_load(&srv->nexports);

	for (unsigned i = 0; i < n; i++) {
		struct exp_export *e = &srv->exports[i];

		if (atomic_load(&e->live) && strlen(e->name) == len && !memcmp(e->name, name, len))
			return e;
	}
	return NULL;
}

int nvmk_export_create(struct nvmk_mgr *mgr, const struct nvmk_export_opts *opts,
		       struct nvmk_export_server **out)
{
	struct nvmk_export_server *srv;

	if (!mgr || !out)
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->mgr = mgr;
	if (opts)
		srv->opts = *opts;
	opts_defaults(&srv->opts);
	pthread_mutex_init(&srv->lock, NULL);
	pthread_mutex_init(&srv->park_lock, NULL);
	pthread_cond_init(&srv->park_cond, NULL);
	srv->acc_epfd = srv->acc_wakefd = -1;
	srv->nthreads = srv->opts.threads;
	srv->threads = calloc(srv->nthreads, sizeof(*srv->threads));
	if (!srv->threads) {
		free(srv);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < srv->nthreads; i++) {
		struct exp_thread *t = &srv->threads[i];

		t->kind = EP_WAKE;
		t->srv = srv;
		t->idx = i;
		t->epfd = epoll_create1(EPOLL_CLOEXEC);
		t->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		pthread_mutex_init(&t->lock, NULL);
		if (t->epfd < 0 || t->wakefd < 0 ||
		    exp_thread_table_init(t, srv->opts.slots_per_thread) ||
		    epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->wakefd,
			      &(struct epoll_event){.events = EPOLLIN, .data.ptr = t})) {
			srv->nthreads = i + 1;
			nvmk_export_destroy(srv);
			return -ENOMEM;
		}
		for (unsigned d = 0; d < EXP_MAX_DEVICES; d++) {
			t->tdev[d].kind = EP_QPAIR;
			t->tdev[d].t = t;
			t->tdev[d].dev = d;
			t->tdev[d].irq_fd = -1;
		}
	}
	*out = srv;
	return 0;
}

/* ---- devices and exports ---- */

/* Release thread @t's queue pair and slab on device @d (no request uses them). */
static void tdev_release(struct nvmk_export_server *srv, struct exp_tdev *td)
{
	struct exp_device *d = &srv->devices[td->dev];

	atomic_store(&td->ready, false);
	if (td->irq_fd >= 0)
		epoll_ctl(td->t->epfd, EPOLL_CTL_DEL, td->irq_fd, NULL);
	td->irq_fd = -1;
	if (td->qp)
		nvmk_qpair_destroy(td->qp);
	td->qp = NULL;
	if (td->slab.mem.vaddr) {
		if (td->slab_ephemeral)
			nvmk_dma_free(&td->slab.mem);
		else
			nvmk_mgr_dma_free(srv->mgr, d->id, td->tag);
	}
	memset(&td->slab, 0, sizeof(td->slab));
	td->outstanding = 0;
}

static int tdev_setup(struct nvmk_export_server *srv, struct exp_device *d, struct exp_tdev *td)
{
	struct nvmk_qpair_opts qo = {.mode = NVMK_CPL_INTERRUPT};
	size_t bytes = (size_t)srv->opts.slots_per_thread * d->slot_size;
	int rc;

	snprintf(td->tag, sizeof(td->tag), "nbd.t%u", td->t->idx);
	rc = exp_restore_tdev(srv, d, td); /* servicing: the predecessor's, if any */
	if (rc < 0)
		return rc;
	if (rc == 1)
		goto ready;
	rc = nvmk_mgr_create_qpair(srv->mgr, d->id, &qo, &td->qp);
	if (rc) {
		nvmk_err(d->id, NVMK_LOG_NOQ, "nbd thread %u: no I/O queue pair: %s", td->t->idx,
			 strerror(-rc));
		return rc;
	}
	rc = d->kernel ? -EOPNOTSUPP : nvmk_mgr_dma_alloc(srv->mgr, d->id, td->tag, bytes, &td->slab);
	if (rc == -EOPNOTSUPP) {
		/* kernel path: any page-aligned memory will do */
		td->slab_ephemeral = true;
		rc = nvmk_dma_alloc_ephemeral(bytes, 0, &td->slab.mem);
	}
	if (rc) {
		nvmk_err(d->id, NVMK_LOG_NOQ,
			 "nbd thread %u: request buffers (%zu bytes, tag %s) could not be "
			 "allocated: %s%s",
			 td->t->idx, bytes, td->tag, strerror(-rc),
			 rc == -ENOMEM ? " (private pool too small? see "
					 "OPENHCL_IGVM_VTL2_GPA_POOL_CONFIG)"
				       : "");
		nvmk_qpair_destroy(td->qp);
		td->qp = NULL;
		return rc;
	}
ready:
	td->irq_fd = nvmk_qpair_irq_fd(td->qp);
	if (td->irq_fd >= 0 &&
	    epoll_ctl(td->t->epfd, EPOLL_CTL_ADD, td->irq_fd,
		      &(struct epoll_event){.events = EPOLLIN, .data.ptr = td}))
		td->irq_fd = -1;
	td->outstanding = 0;
	atomic_store(&td->released, false);
	atomic_store(&td->ready, true);
	return 0;
}

static void describe(struct exp_export *e, struct nvmk_ns *ns)
{
	struct nvmk_ctrl *ctrl = nvmk_ns_ctrl(ns);
	const struct nvme_id_ctrl *id = ctrl ? nvmk_ctrl_identify(ctrl) : NULL;
	char mn[41] = "", sn[21] = "";
	int i;

	if (id) {
		memcpy(mn, id->mn, 40);
		memcpy(sn, id->sn, 20);
		/* Identify strings are space padded (Base 2.0 Figure 275) */
		for (i = 39; i >= 0 && (mn[i] == ' ' || !mn[i]); i--)
			mn[i] = 0;
		for (i = 19; i >= 0 && (sn[i] == ' ' || !sn[i]); i--)
			sn[i] = 0;
	}
	snprintf(e->description, sizeof(e->description), "%s, serial %s, %llu bytes, %u B blocks",
		 mn[0] ? mn : "kernel block device", sn[0] ? sn : "-", (unsigned long long)e->size,
		 e->lba_size);
}

static int add_export(struct nvmk_export_server *srv, struct exp_device *d, uint32_t nsid,
		      struct nvmk_ns *ns)
{
	unsigned n = atomic_load(&srv->nexports);
	struct nvmk_ns_info info;
	struct nvmk_ctrl *ctrl = nvmk_ns_ctrl(ns);
	struct exp_export *e;
	uint64_t mx;

	if (n >= EXP_MAX_EXPORTS)
		return -ENOSPC;
	e = &srv->exports[n];
	memset(e, 0, sizeof(*e));
	nvmk_ns_info(ns, &info);
	snprintf(e->name, sizeof(e->name), "%s/%u", d->id, nsid);
	e->dev = d;
	e->nsid = nsid;
	e->ns = ns;
	e->lba_size = info.block_size;
	e->size = info.capacity;
	/* maximum: one command's transfer (MDTS), capped by the request buffer */
	mx = (uint64_t)info.max_xfer_blocks * info.block_size;
	if (ctrl && nvmk_ctrl_mdts_bytes(ctrl) && nvmk_ctrl_mdts_bytes(ctrl) < mx)
		mx = nvmk_ctrl_mdts_bytes(ctrl);
	if (!mx || mx > EXP_MAX_BLOCK_CAP)
		mx = EXP_MAX_BLOCK_CAP;
	if (mx < info.block_size)
		mx = info.block_size;
	e->max_block = (uint32_t)(mx / info.block_size * info.block_size);
	e->pref_block = info.block_size > 4096 ? info.block_size : 4096;
	if (e->pref_block > e->max_block)
		e->pref_block = e->max_block;
	e->tflags = NVMK_NBD_FLAG_HAS_FLAGS | NVMK_NBD_FLAG_SEND_FLUSH | NVMK_NBD_FLAG_SEND_FUA |
		    NVMK_NBD_FLAG_SEND_CACHE | NVMK_NBD_FLAG_CAN_MULTI_CONN;
	/* multi-conn: every connection reaches the same controller, whose Flush
	 * covers every write it completed (NVM-CS 1.0 3.2.4) */
	if (info.oncs & NVME_ONCS_DSM)
		e->tflags |= NVMK_NBD_FLAG_SEND_TRIM;
	if (info.oncs & NVME_ONCS_WRITE_ZEROES)
		e->tflags |= NVMK_NBD_FLAG_SEND_WRITE_ZEROES | NVMK_NBD_FLAG_SEND_FAST_ZERO;
	if (srv->opts.read_only)
		e->tflags |= NVMK_NBD_FLAG_READ_ONLY;
	describe(e, ns);
	/* Requests up to the buffer size are accepted although the maximum
	 * offered is MDTS: some clients (nbdcopy 1.14: 256 KiB) ignore
	 * NBD_INFO_BLOCK_SIZE; the driver splits them. */
	d->slot_size = EXP_MAX_BLOCK_CAP;
	atomic_store(&srv->nexports, n + 1);
	return 0;
}

/* The device's namespaces: those of its controller, or (kernel path, no
 * controller) the one handle found. */
static int find_namespaces(struct nvmk_export_server *srv, struct exp_device *d, uint32_t *nsids,
			   unsigned max)
{
	struct nvmk_ns *ns = NULL;
	uint32_t first = 0;
	int rc = exp_restore_nsids(srv, d, nsids, max);

	if (rc > 0)
		return rc; /* servicing: the predecessor's list, no Identify */
	rc = -ENODEV;
	/* a first handle gives the controller; NSID 1 nearly always exists */
	for (uint32_t nsid = 1; nsid <= 32 && rc; nsid++) {
		rc = nvmk_mgr_get_namespace(srv->mgr, d->id, nsid, &ns);
		if (rc && rc != -ENODEV)
			return rc;
		first = nsid;
	}
	if (rc)
		return rc;
	if (nvmk_ns_ctrl(ns)) {
		int n = nvmk_ctrl_active_ns(nvmk_ns_ctrl(ns), nsids, max);

		if (n > 0)
			return n;
	}
	nsids[0] = first;
	return 1;
}

int nvmk_export_add_device(struct nvmk_export_server *srv, const char *id)
{
	uint32_t nsids[EXP_MAX_EXPORTS];
	struct exp_device *d = NULL;
	unsigned nd;
	int n, rc = 0;

	if (!srv || !id || !*id || strlen(id) > NVMK_MGR_ID_MAX)
		return -EINVAL;
	pthread_mutex_lock(&srv->lock);
	if (atomic_load(&srv->stopping)) {
		rc = -ESHUTDOWN;
		goto out;
	}
	nd = atomic_load(&srv->ndevices);
	for (unsigned i = 0; i < nd; i++) {
		if (!strcmp(srv->devices[i].id, id)) {
			if (atomic_load(&srv->devices[i].live)) {
				rc = -EEXIST;
				goto out;
			}
			d = &srv->devices[i]; /* removed earlier: export it again */
		}
	}
	if (!d) {
		if (nd >= EXP_MAX_DEVICES) {
			rc = -ENOSPC;
			goto out;
		}
		d = &srv->devices[nd];
		memset(d, 0, sizeof(*d));
		snprintf(d->id, sizeof(d->id), "%s", id);
		d->idx = nd;
		atomic_store(&srv->ndevices, nd + 1);
	}
	n = find_namespaces(srv, d, nsids, EXP_MAX_EXPORTS);
	if (n < 0) {
		rc = n;
		nvmk_err(id, NVMK_LOG_NOQ, "cannot export: %s", strerror(-rc));
		goto out;
	}
	for (int i = 0; i < n; i++) {
		struct nvmk_ns *ns;
		struct exp_export *e = NULL;
		unsigned ne = atomic_load(&srv->nexports);

		rc = nvmk_mgr_get_namespace(srv->mgr, id, nsids[i], &ns);
		if (rc) {
			nvmk_warn(id, NVMK_LOG_NOQ, "namespace %u not exported: %s", nsids[i],
				  strerror(-rc));
			rc = 0;
			continue;
		}
		d->kernel = nvmk_ns_ctrl(ns) == NULL;
		for (unsigned k = 0; k < ne; k++)
			if (srv->exports[k].dev == d && srv->exports[k].nsid == nsids[i])
				e = &srv->exports[k];
		if (e) {
			e->ns = ns;
			continue;
		}
		rc = add_export(srv, d, nsids[i], ns);
		if (rc)
			goto out;
	}
	/* before the queue pairs are handed to the threads: a thread that still
	 * saw "removing" would give a fresh one back at once (release_removed) */
	atomic_store(&d->removing, false);
	for (unsigned t = 0; t < srv->nthreads; t++) {
		rc = tdev_setup(srv, d, &srv->threads[t].tdev[d->idx]);
		if (rc) {
			for (unsigned k = 0; k < t; k++)
				tdev_release(srv, &srv->threads[k].tdev[d->idx]);
			goto out;
		}
	}
	atomic_store(&d->live, true);
	for (unsigned k = 0; k < atomic_load(&srv->nexports); k++)
		if (srv->exports[k].dev == d) {
			atomic_store(&srv->exports[k].live, true);
			nvmk_info(srv->exports[k].name, NVMK_LOG_NOQ, "exported: %s",
				  srv->exports[k].description);
		}
out:
	pthread_mutex_unlock(&srv->lock);
	return rc;
}

/* Wait until every I/O thread let go of device @d's resources. */
static int wait_released(struct nvmk_export_server *srv, struct exp_device *d, uint64_t deadline)
{
	for (;;) {
		bool all = true;

		for (unsigned t = 0; t < srv->nthreads; t++) {
			struct exp_tdev *td = &srv->threads[t].tdev[d->idx];

			if (atomic_load(&td->ready) && !atomic_load(&td->released)) {
				all = false;
				exp_thread_wake(&srv->threads[t]);
			}
		}
		if (all)
			return 0;
		if (exp_now_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(5000);
	}
}

int nvmk_export_remove_device(struct nvmk_export_server *srv, const char *id, bool force)
{
	struct exp_device *d = NULL;
	int rc;

	if (!srv || !id)
		return -EINVAL;
	pthread_mutex_lock(&srv->lock);
	for (unsigned i = 0; i < atomic_load(&srv->ndevices); i++)
		if (!strcmp(srv->devices[i].id, id) && atomic_load(&srv->devices[i].live))
			d = &srv->devices[i];
	if (!d) {
		pthread_mutex_unlock(&srv->lock);
		return -ENOENT;
	}
	if (atomic_load(&d->conns) && !force) {
		pthread_mutex_unlock(&srv->lock);
		return -EBUSY;
	}
	for (unsigned k = 0; k < atomic_load(&srv->nexports); k++)
		if (srv->exports[k].dev == d)
			atomic_store(&srv->exports[k].live, false);
	atomic_store(&d->removing, true);
	rc = wait_released(srv, d, exp_now_ms() + srv->opts.stop_grace_ms + 1000);
	if (rc == 0) {
		for (unsigned t = 0; t < srv->nthreads; t++) {
			struct exp_tdev *td = &srv->threads[t].tdev[d->idx];

			if (td->qp) {
				/* the clients are gone: make what they wrote durable */
				for (unsigned k = 0; k < atomic_load(&srv->nexports); k++)
					if (srv->exports[k].dev == d && t == 0)
						nvmk_ns_flush(srv->exports[k].ns, td->qp);
				tdev_release(srv, td);
			}
		}
		atomic_store(&d->live, false);
		nvmk_info(id, NVMK_LOG_NOQ, "no longer exported");
	}
	pthread_mutex_unlock(&srv->lock);
	return rc;
}

/* ---- I/O threads ---- */

static void take_inbox(struct exp_thread *t)
{
	struct exp_conn *in;

	pthread_mutex_lock(&t->lock);
	in = t->inbox;
	t->inbox = NULL;
	pthread_mutex_unlock(&t->lock);
	while (in) {
		struct exp_conn *c = in;

		in = c->next;
		exp_conn_start(c);
		c->ep_events = EPOLLOUT;
		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, c->fd,
			      &(struct epoll_event){.events = EPOLLOUT, .data.ptr = c})) {
			close(c->fd);
			atomic_fetch_sub(&t->nconns, 1);
			atomic_fetch_sub(&t->srv->nconns, 1);
			free(c->opt_data);
			free(c->hs_buf);
			free(c);
			continue;
		}
		pthread_mutex_lock(&t->lock);
		c->next = t->conns;
		t->conns = c;
		pthread_mutex_unlock(&t->lock);
		if (atomic_load(&t->srv->stopping))
			c->shutting = true;
	}
}

/* Stop or removal: connections of a device being removed (or all, when
 * stopping) answer what they have and close. */
static void shut_connections(struct exp_thread *t, uint64_t now)
{
	struct nvmk_export_server *srv = t->srv;
	bool stopping = atomic_load(&srv->stopping);

	for (struct exp_conn *c = t->conns; c; c = c->next) {
		bool removing = c->exp && atomic_load(&c->exp->dev->removing);

		if (c->shutting || !(stopping || removing))
			continue;
		c->shutting = true;
		c->deadline_ms = now + srv->opts.stop_grace_ms;
		c->last_rx_ms = now;
		/* find out whether the client has more requests buffered */
		exp_conn_readable(c);
	}
}

/* Devices being removed: let go of the resources once no connection of this
 * thread uses them. */
static void release_removed(struct exp_thread *t)
{
	struct nvmk_export_server *srv = t->srv;

	for (unsigned d = 0; d < atomic_load(&srv->ndevices); d++) {
		struct exp_tdev *td = &t->tdev[d];
		bool busy = false;

		if (!atomic_load(&srv->devices[d].removing) || !exp_tdev_active(td))
			continue;
		for (struct exp_conn *c = t->conns; c; c = c->next)
			if (c->td == td)
				busy = true;
		if (!busy && !td->outstanding) {
			/* the remover destroys the qpair: no more process calls here */
			if (td->irq_fd >= 0)
				epoll_ctl(t->epfd, EPOLL_CTL_DEL, td->irq_fd, NULL);
			td->irq_fd = -1;
			atomic_store(&td->released, true);
		}
	}
}

static bool any_polled_outstanding(const struct exp_thread *t)
{
	for (unsigned d = 0; d < EXP_MAX_DEVICES; d++)
		if (exp_tdev_active(&t->tdev[d]) && t->tdev[d].outstanding && t->tdev[d].irq_fd < 0)
			return true;
	return false;
}

/*
 * Doorbell batching: the requests an iteration reads go to the device with
 * one SQ tail doorbell per queue pair (nvmk_qpair_batch_begin/_end) instead
 * of one per command. For the emulator a doorbell may wake its worker (a
 * futex call when it sleeps); for hardware it is one MMIO write per batch.
 * The batch is closed before replies are sent, so the device starts on the
 * batch before the thread spends time in sendmsg.
 */
static void batch_all(struct exp_thread *t, bool begin)
{
	for (unsigned d = 0; d < EXP_MAX_DEVICES; d++) {
		struct exp_tdev *td = &t->tdev[d];

		if (begin) {
			td->batching = exp_tdev_active(td) && td->qp &&
				       nvmk_qpair_batch_begin(td->qp) == 0;
		} else if (td->batching) {
			td->batching = false;
			nvmk_qpair_batch_end(td->qp);
		}
	}
}

static void *io_thread_main(void *arg)
{
	struct exp_thread *t = arg;
	struct epoll_event ev[64];
	uint64_t next_tick = exp_now_ms() + TICK_MS;
	bool more = false;
	char name[16];

	snprintf(name, sizeof(name), "nbd-io%u", t->idx);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		int timeout = more ? 0 : any_polled_outstanding(t) ? 1 : TICK_MS;
		int n = epoll_wait(t->epfd, ev, 64, timeout);
		uint64_t now;

		batch_all(t, true);

		for (int i = 0; i < n; i++) {
			enum exp_ep_kind k = *(enum exp_ep_kind *)ev[i].data.ptr;

			if (k == EP_WAKE) {
				uint64_t v;

				if (read(t->wakefd, &v, sizeof(v)) < 0)
					(void)0;
				take_inbox(t);
				/* stop and removal wake the thread: act on them now */
				next_tick = 0;
			} else if (k == EP_QPAIR) {
				struct exp_tdev *td = ev[i].data.ptr;
				uint64_t v;

				if (!exp_tdev_active(td))
					continue;
				/* clear the interrupt before reaping, so none is missed */
				if (td->irq_fd >= 0 && read(td->irq_fd, &v, sizeof(v)) < 0)
					(void)0;
				exp_io_process_tdev(t, td);
			} else if (k == EP_CONN) {
				struct exp_conn *c = ev[i].data.ptr;

				if (ev[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
					exp_conn_flush(c);
				if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
					exp_conn_readable(c);
				exp_conn_mark_dirty(c);
			}
		}
		exp_io_process(t, false);
		now = exp_now_ms();
		if (now >= next_tick || n == 0) {
			/* timeouts of commands whose interrupt never came, deadlines */
			exp_io_process(t, true);
			next_tick = now + TICK_MS;
			shut_connections(t, now);
			for (struct exp_conn *c = t->conns; c; c = c->next)
				exp_conn_mark_dirty(c);
		}
		batch_all(t, false);
		more = exp_conn_finish_iteration(t);
		release_removed(t);
		if (atomic_load(&t->srv->parking) && exp_thread_may_park(t))
			exp_thread_park(t); /* servicing: rests until exec or resume */
		if (atomic_load(&t->quit) && !t->conns) {
			pthread_mutex_lock(&t->lock);
			bool empty = t->inbox == NULL;
			pthread_mutex_unlock(&t->lock);
			if (empty)
				break;
		}
		if (atomic_load(&t->srv->stopping) && next_tick > now + 10)
			next_tick = now + 10; /* drain faster while stopping */
	}
	return NULL;
}

int nvmk_export_start(struct nvmk_export_server *srv)
{
	if (!srv || srv->started)
		return -EINVAL;
	if (exp_tls_init(srv))
		return -EINVAL;
	srv->acc_epfd = epoll_create1(EPOLL_CLOEXEC);
	srv->acc_wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (srv->acc_epfd < 0 || srv->acc_wakefd < 0)
		return -errno;
	srv->acc_wake.kind = EP_WAKE;
	epoll_ctl(srv->acc_epfd, EPOLL_CTL_ADD, srv->acc_wakefd,
		  &(struct epoll_event){.events = EPOLLIN, .data.ptr = &srv->acc_wake});
	pthread_mutex_lock(&srv->lock);
	for (unsigned i = 0; i < srv->nlisteners; i++)
		epoll_ctl(srv->acc_epfd, EPOLL_CTL_ADD, srv->listeners[i].fd,
			  &(struct epoll_event){.events = EPOLLIN, .data.ptr = &srv->listeners[i]});
	srv->acceptor_started = true;
	pthread_mutex_unlock(&srv->lock);
	for (unsigned i = 0; i < srv->nthreads; i++) {
		if (pthread_create(&srv->threads[i].th, NULL, io_thread_main, &srv->threads[i]))
			return -EAGAIN;
		srv->threads[i].started = true;
	}
	if (pthread_create(&srv->acceptor, NULL, exp_acceptor_main, srv))
		return -EAGAIN;
	srv->started = true;
	return 0;
}

void nvmk_export_stop(struct nvmk_export_server *srv)
{
	uint64_t one = 1;

	if (!srv || srv->stopped)
		return;
	srv->stopped = true;
	atomic_store(&srv->stopping, true);
	nvmk_info(EXP_LOG, NVMK_LOG_NOQ, "stopping: %u connections to drain",
		  atomic_load(&srv->nconns));
	if (srv->acceptor_started && srv->started) {
		if (write(srv->acc_wakefd, &one, sizeof(one)) < 0)
			(void)0;
		pthread_join(srv->acceptor, NULL);
	}
	exp_listeners_close(srv);
	for (unsigned i = 0; i < srv->nthreads; i++) {
		atomic_store(&srv->threads[i].quit, true);
		exp_thread_wake(&srv->threads[i]);
	}
	for (unsigned i = 0; i < srv->nthreads; i++)
		if (srv->threads[i].started) {
			pthread_join(srv->threads[i].th, NULL);
			srv->threads[i].started = false;
		}
	/* every connection is closed: make the data durable, then let go */
	pthread_mutex_lock(&srv->lock);
	for (unsigned d = 0; d < atomic_load(&srv->ndevices); d++) {
		struct exp_tdev *td0 = &srv->threads[0].tdev[d];

		if (!atomic_load(&srv->devices[d].live))
			continue;
		for (unsigned k = 0; k < atomic_load(&srv->nexports); k++) {
			struct exp_export *e = &srv->exports[k];

			if (e->dev == &srv->devices[d] && td0->qp) {
				int rc = nvmk_ns_flush(e->ns, td0->qp);

				if (rc)
					nvmk_warn(e->name, NVMK_LOG_NOQ, "final flush failed: %s",
						  strerror(-rc));
			}
		}
		for (unsigned t = 0; t < srv->nthreads; t++)
			tdev_release(srv, &srv->threads[t].tdev[d]);
		atomic_store(&srv->devices[d].live, false);
	}
	pthread_mutex_unlock(&srv->lock);
	nvmk_info(EXP_LOG, NVMK_LOG_NOQ, "stopped");
}

void nvmk_export_destroy(struct nvmk_export_server *srv)
{
	if (!srv)
		return;
	nvmk_export_stop(srv);
	for (unsigned i = 0; i < srv->nthreads; i++) {
		struct exp_thread *t = &srv->threads[i];

		while (t->inbox) {
			struct exp_conn *c = t->inbox;

			t->inbox = c->next;
			close(c->fd);
			free(c->opt_data);
			free(c);
		}
		if (t->epfd >= 0)
			close(t->epfd);
		if (t->wakefd >= 0)
			close(t->wakefd);
		exp_thread_table_free(t);
		pthread_mutex_destroy(&t->lock);
	}
	if (srv->acc_epfd >= 0)
		close(srv->acc_epfd);
	if (srv->acc_wakefd >= 0)
		close(srv->acc_wakefd);
	free(srv->threads);
	exp_tls_fini(srv);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}

unsigned nvmk_export_connections(const struct nvmk_export_server *srv)
{
	return srv ? atomic_load(&((struct nvmk_export_server *)srv)->nconns) : 0;
}

/* ---- status ---- */

static const char *const conn_state_names[] = {"handshake", "options", "options", "options",
					       "tls",	    "transmission", "closing"};

static json_object *u64(uint64_t v)
{
	return json_object_new_int64((int64_t)v);
}

static json_object *export_json(struct exp_export *e)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(e->name));
	json_object_object_add(o, "device", json_object_new_string(e->dev->id));
	json_object_object_add(o, "nsid", u64(e->nsid));
	json_object_object_add(o, "description", json_object_new_string(e->description));
	json_object_object_add(o, "size", u64(e->size));
	json_object_object_add(o, "block_size", u64(e->lba_size));
	json_object_object_add(o, "max_block", u64(e->max_block));
	json_object_object_add(o, "read_only",
			       json_object_new_boolean(e->tflags & NVMK_NBD_FLAG_READ_ONLY));
	json_object_object_add(o, "live", json_object_new_boolean(atomic_load(&e->live)));
	json_object_object_add(o, "reads", u64(atomic_load(&e->n_read)));
	json_object_object_add(o, "writes", u64(atomic_load(&e->n_write)));
	json_object_object_add(o, "bytes_read", u64(atomic_load(&e->bytes_read)));
	json_object_object_add(o, "bytes_written", u64(atomic_load(&e->bytes_written)));
	json_object_object_add(o, "flushes", u64(atomic_load(&e->n_flush)));
	json_object_object_add(o, "trims", u64(atomic_load(&e->n_trim)));
	json_object_object_add(o, "write_zeroes", u64(atomic_load(&e->n_zero)));
	json_object_object_add(o, "cache", u64(atomic_load(&e->n_cache)));
	json_object_object_add(o, "block_status", u64(atomic_load(&e->n_bstatus)));
	json_object_object_add(o, "errors", u64(atomic_load(&e->n_err)));
	return o;
}

int nvmk_export_status_json(struct nvmk_export_server *srv, char **json)
{
	json_object *root = json_object_new_object(), *ex = json_object_new_array(),
		    *co = json_object_new_array(), *li = json_object_new_array();
	const char *s;

	if (!root || !ex || !co || !li)
		return -ENOMEM;
	pthread_mutex_lock(&srv->lock);
	for (unsigned k = 0; k < atomic_load(&srv->nexports); k++) {
		json_object *o = export_json(&srv->exports[k]);

		json_object_object_add(o, "connections",
				       u64(atomic_load(&srv->exports[k].dev->conns)));
		json_object_array_add(ex, o);
	}
	for (unsigned i = 0; i < srv->nlisteners; i++)
		if (srv->listeners[i].fd >= 0)
			json_object_array_add(li, json_object_new_string(srv->listeners[i].addr));
	pthread_mutex_unlock(&srv->lock);
	for (unsigned i = 0; i < srv->nthreads; i++) {
		struct exp_thread *t = &srv->threads[i];

		pthread_mutex_lock(&t->lock);
		for (struct exp_conn *c = t->conns; c; c = c->next) {
			json_object *o = json_object_new_object();
			int st = atomic_load_explicit(&c->state, memory_order_acquire);

			json_object_object_add(o, "id", u64(c->id));
			json_object_object_add(o, "peer", json_object_new_string(c->peer));
			json_object_object_add(o, "thread", u64(i));
			json_object_object_add(o, "state",
					       json_object_new_string(conn_state_names[st]));
			/* exp is set once, before the state becomes transmission */
			json_object_object_add(o, "export",
					       st >= CONN_TRANS && c->exp
						   ? json_object_new_string(c->exp->name)
						   : NULL);
			json_object_object_add(o, "in_flight",
					       u64(atomic_load_explicit(&c->inflight,
									memory_order_relaxed)));
			json_object_object_add(o, "requests",
					       u64(atomic_load_explicit(&c->requests,
									memory_order_relaxed)));
			json_object_array_add(co, o);
		}
		pthread_mutex_unlock(&t->lock);
	}
	json_object_object_add(root, "threads", u64(srv->nthreads));
	json_object_object_add(root, "listeners", li);
	json_object_object_add(root, "exports", ex);
	json_object_object_add(root, "connections", co);
	s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	*json = s ? strdup(s) : NULL;
	json_object_put(root);
	return *json ? 0 : -ENOMEM;
}
