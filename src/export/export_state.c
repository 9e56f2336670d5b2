// SPDX-License-Identifier: MIT
/*
 * Servicing of the NBD server (include/nvmekeep/export_state.h,
 * docs/servicing.md): quiesce at request boundaries, save the listeners and
 * connections (export_state.proto), and adopt them in the successor.
 *
 * Nothing of an NBD request is in flight when the state is taken: quiesce
 * waits until every request read so far has been answered, so the state is
 * only sockets and negotiated options. The NVMe side (queues, pool blocks)
 * is the manager's state; the request buffers are handed back by pool tag
 * and the queue pairs by queue ID, so the successor creates no queue.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "export_internal.h"
#include "export_state.pb-c.h"
#include "handshake_state.h"
#include "nvmekeep/export_state.h"
#include "nvmekeep/log.h"

struct exp_restore_map {
	const NvmkExp__ExpState *st;
};

static int conn_state(const struct exp_conn *c)
{
	return atomic_load_explicit(&c->state, memory_order_relaxed);
}

bool exp_conn_quiesced(const struct exp_conn *c)
{
	int s;

	if (!atomic_load_explicit(&c->t->srv->quiescing, memory_order_relaxed))
		return false;
	s = conn_state(c);
	/* a boundary: no header byte and no payload byte of a request pending */
	return c->hdr_have == 0 && !c->rx_req &&
	       (s == CONN_TRANS || s == CONN_OPT_HDR || s == CONN_HS_FLAGS);
}

static bool conn_saveable(const struct exp_conn *c)
{
	/* a TLS session lives in this process (GnuTLS): it is closed, not handed over */
	return conn_state(c) == CONN_TRANS && !c->dead && !c->rx_eof && !c->disc &&
	       !c->shutting && c->exp && !c->rx_req && !c->hdr_have && !c->tls;
}

/*
 * The thread may leave its loop: nothing partly read, no reply waiting to be
 * sent, no submission waiting for a queue entry. Requests whose NVMe command
 * is at the device may stay there with keep-alive (the driver saves them with
 * their tokens and the successor answers them), except those of connections
 * that will not be handed over (closing, handshake), which complete first.
 * Without keep-alive every command completes first: the save drains the
 * device, and a completion with no I/O thread to take it would be lost.
 */
bool exp_thread_may_park(const struct exp_thread *t)
{
	bool keep = t->srv->park_keep_inflight;

	if (t->pend_head != EXP_NONE)
		return false;
	for (unsigned d = 0; !keep && d < EXP_MAX_DEVICES; d++)
		if (t->tdev[d].outstanding)
			return false;
	for (const struct exp_conn *c = t->conns; c; c = c->next) {
		bool handed_over = conn_state(c) == CONN_TRANS && !c->dead && !c->rx_eof &&
				   !c->disc && !c->shutting && c->exp && !c->tls;

		if ((!keep || !handed_over) &&
		    atomic_load_explicit(&c->inflight, memory_order_relaxed))
			return false;
		if (c->dead)
			continue;
		if (conn_state(c) == CONN_TRANS &&
		    (c->rx_req || c->hdr_have || c->txq_head != EXP_NONE))
			return false;
	}
	/* what is left in the table is at the device */
	for (uint32_t s = 0; keep && s < t->nslots; s++)
		if (t->reqs[s].state != REQ_FREE && t->reqs[s].state != REQ_NVME)
			return false;
	return true;
}

void exp_note_first_reply(struct nvmk_export_server *srv)
{
	struct timespec ts;
	bool yes = true;

	if (!atomic_compare_exchange_strong(&srv->watch_first_reply, &yes, false))
		return; /* another thread was first */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	atomic_store(&srv->first_reply_ns, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
}

uint64_t nvmk_export_first_reply_ns(const struct nvmk_export_server *srv)
{
	return srv ? atomic_load(&srv->first_reply_ns) : 0;
}

void exp_thread_park(struct exp_thread *t)
{
	struct nvmk_export_server *srv = t->srv;

	pthread_mutex_lock(&srv->park_lock);
	atomic_store(&t->parked, true);
	pthread_cond_broadcast(&srv->park_cond);
	while (atomic_load(&srv->parking))
		pthread_cond_wait(&srv->park_cond, &srv->park_lock);
	atomic_store(&t->parked, false);
	pthread_mutex_unlock(&srv->park_lock);
}

static void set_cloexec(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl >= 0)
		fcntl(fd, F_SETFD, on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC));
}

static void abs_deadline(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int nvmk_export_resume(struct nvmk_export_server *srv)
{
	uint64_t v;
	int rc = 0;

	if (!srv || !srv->started)
		return -EINVAL;
	pthread_mutex_lock(&srv->park_lock);
	atomic_store(&srv->parking, false);
	atomic_store(&srv->quiescing, false);
	pthread_cond_broadcast(&srv->park_cond);
	pthread_mutex_unlock(&srv->park_lock);
	for (unsigned i = 0; i < srv->nthreads; i++)
		exp_thread_wake(&srv->threads[i]); /* connections read again */
	if (read(srv->acc_wakefd, &v, sizeof(v)) < 0)
		(void)0; /* nothing to drain */
	if (!srv->acceptor_started) {
		if (pthread_create(&srv->acceptor, NULL, exp_acceptor_main, srv))
			rc = -EAGAIN;
		else
			srv->acceptor_started = true;
	}
	nvmk_info(EXP_LOG, NVMK_LOG_NOQ, "servicing abandoned: serving again%s",
		  rc ? " (the acceptor could not be restarted)" : "");
	return rc;
}

static bool all_parked(const struct nvmk_export_server *srv)
{
	for (unsigned i = 0; i < srv->nthreads; i++)
		if (srv->threads[i].started && !atomic_load(&srv->threads[i].parked))
			return false;
	return true;
}

int nvmk_export_quiesce(struct nvmk_export_server *srv, unsigned timeout_ms, bool keep_inflight)
{
	struct timespec ts;
	uint64_t one = 1;
	int rc = 0;

	if (!srv || !srv->started || srv->stopped || atomic_load(&srv->stopping) ||
	    atomic_load(&srv->parking))
		return -EINVAL;
	abs_deadline(&ts, timeout_ms);
	srv->park_keep_inflight = keep_inflight; /* published by the stores below */
	atomic_store(&srv->quiescing, true);
	atomic_store(&srv->parking, true);
	/* the acceptor leaves first: new connections wait in the backlog */
	if (srv->acceptor_started) {
		if (write(srv->acc_wakefd, &one, sizeof(one)) < 0)
			(void)0;
		pthread_join(srv->acceptor, NULL);
		srv->acceptor_started = false;
	}
	for (unsigned i = 0; i < srv->nthreads; i++)
		exp_thread_wake(&srv->threads[i]);
	pthread_mutex_lock(&srv->park_lock);
	while (!all_parked(srv) && !rc)
		rc = pthread_cond_timedwait(&srv->park_cond, &srv->park_lock, &ts);
	rc = all_parked(srv) ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&srv->park_lock);
	if (rc) {
		nvmk_warn(EXP_LOG, NVMK_LOG_NOQ,
			  "quiesce: requests still in flight after %u ms: servicing abandoned",
			  timeout_ms);
		nvmk_export_resume(srv);
	}
	return rc;
}

static bool quiesced(struct nvmk_export_server *srv)
{
	bool q;

	pthread_mutex_lock(&srv->park_lock);
	q = atomic_load(&srv->parking) && !srv->acceptor_started && all_parked(srv);
	pthread_mutex_unlock(&srv->park_lock);
	return q;
}

void nvmk_export_save_abort(struct nvmk_export_server *srv)
{
	if (!srv)
		return;
	for (unsigned i = 0; i < srv->nlisteners; i++)
		if (srv->listeners[i].fd >= 0)
			set_cloexec(srv->listeners[i].fd, true);
	for (unsigned i = 0; i < srv->nthreads; i++) {
		for (struct exp_conn *c = srv->threads[i].conns; c; c = c->next)
			set_cloexec(c->fd, true);
		for (struct exp_conn *c = srv->threads[i].inbox; c; c = c->next)
			set_cloexec(c->fd, true);
	}
}

int nvmk_export_save(struct nvmk_export_server *srv, void **blob, size_t *len)
{
	NvmkExp__ExpState st = NVMK_EXP__EXP_STATE__INIT;
	unsigned nd, nconn = 0, nqp = 0;
	char **devs = NULL;
	NvmkExp__ExpListener *ls = NULL, **lsp = NULL;
	NvmkExp__ExpQpair *qs = NULL, **qsp = NULL;
	NvmkExp__ExpConn *cs = NULL, **csp = NULL;
	NvmkExp__ExpExport *xs = NULL, **xsp = NULL;
	NvmkExp__ExpRequest *rs = NULL, **rsp = NULL;
	struct exp_hs_saved hs_keep = {0};
	size_t nreq = 0, staged_bytes = 0;
	unsigned nexp = atomic_load(&srv->nexports);
	int rc = -ENOMEM;

	if (!srv || !blob || !len || !quiesced(srv))
		return -EINVAL;
	nd = atomic_load(&srv->ndevices);
	/* close what cannot be handed over: TLS, closing connections (handshakes
	 * and the inbox go to handshake_state.c) */
	for (unsigned i = 0; i < srv->nthreads; i++) {
		struct exp_thread *t = &srv->threads[i];
		struct exp_conn *c = t->conns, *nx;

		for (; c; c = nx) {
			nx = c->next;
			if (conn_saveable(c)) {
				nconn++;
				continue;
			}
			if (exp_hs_saveable(c))
				continue;
			nvmk_info(EXP_LOG, NVMK_LOG_NOQ,
				  "servicing: nbd conn %llu (%s) is closing or TLS: closed",
				  (unsigned long long)c->id, c->peer);
			exp_conn_close(c);
		}
	}
	devs = calloc(nd + 1, sizeof(*devs));
	ls = calloc(srv->nlisteners + 1, sizeof(*ls));
	lsp = calloc(srv->nlisteners + 1, sizeof(*lsp));
	qs = calloc((size_t)nd * srv->nthreads + 1, sizeof(*qs));
	qsp = calloc((size_t)nd * srv->nthreads + 1, sizeof(*qsp));
	cs = calloc(nconn + 1, sizeof(*cs));
	csp = calloc(nconn + 1, sizeof(*csp));
	for (unsigned i = 0; i < srv->nthreads; i++)
		for (uint32_t k = 0; k < srv->threads[i].nslots; k++)
			if (srv->threads[i].reqs[k].state == REQ_NVME)
				nreq++;
	rs = calloc(nreq + 1, sizeof(*rs));
	rsp = calloc(nreq + 1, sizeof(*rsp));
	xs = calloc(nexp + 1, sizeof(*xs));
	xsp = calloc(nexp + 1, sizeof(*xsp));
	if (!devs || !ls || !lsp || !qs || !qsp || !cs || !csp || !xs || !xsp || !rs || !rsp)
		goto out;
	for (unsigned i = 0; i < srv->nthreads; i++) {
		struct exp_thread *t = &srv->threads[i];

		for (uint32_t k = 0; k < t->nslots; k++) {
			struct exp_req *r = &t->reqs[k];
			NvmkExp__ExpRequest *m = &rs[st.n_requests];

			if (r->state != REQ_NVME || !r->conn)
				continue;
			nvmk_exp__exp_request__init(m);
			m->has_thread = m->has_slot = m->has_conn_id = m->has_handle = 1;
			m->has_type = m->has_flags = m->has_offset = m->has_length = 1;
			m->has_flush_after = 1;
			m->thread = i;
			m->slot = k;
			m->conn_id = r->conn->id;
			m->handle = r->r.handle;
			m->type = r->r.type;
			m->flags = r->r.flags;
			m->offset = r->r.offset;
			m->length = r->r.length;
			m->flush_after = r->flush_after;
			rsp[st.n_requests++] = m;
			nvmk_debug(EXP_LOG, NVMK_LOG_NOQ,
				   "servicing: at the device: conn %llu handle %#llx %s offset %llu "
				   "length %u (thread %u slot %u)",
				   (unsigned long long)r->conn->id, (unsigned long long)r->r.handle,
				   nvmk_nbd_cmd_name(r->r.type), (unsigned long long)r->r.offset,
				   r->r.length, i, k);
		}
	}
	st.requests = rsp;
	for (unsigned k = 0; k < nexp; k++) {
		struct exp_export *e = &srv->exports[k];

		if (!atomic_load(&e->live))
			continue;
		nvmk_exp__exp_export__init(&xs[st.n_exports]);
		xs[st.n_exports].device = e->dev->id;
		xs[st.n_exports].has_nsid = 1;
		xs[st.n_exports].nsid = e->nsid;
		xsp[st.n_exports] = &xs[st.n_exports];
		st.n_exports++;
	}
	st.exports = xsp;
	st.has_version = st.has_threads = st.has_slots_per_thread = st.has_next_conn_id = 1;
	st.version = NVMK_EXPORT_STATE_VERSION;
	st.threads = srv->nthreads;
	st.slots_per_thread = srv->opts.slots_per_thread;
	st.next_conn_id = atomic_load(&srv->next_conn_id);
	for (unsigned d = 0; d < nd; d++) {
		if (!atomic_load(&srv->devices[d].live))
			continue;
		devs[st.n_devices++] = srv->devices[d].id;
		for (unsigned i = 0; i < srv->nthreads; i++) {
			struct exp_tdev *td = &srv->threads[i].tdev[d];
			NvmkExp__ExpQpair *q = &qs[nqp];

			if (!exp_tdev_active(td) || !td->qp || td->slab_ephemeral)
				continue;
			nvmk_exp__exp_qpair__init(q);
			q->device = srv->devices[d].id;
			q->has_thread = q->has_qid = 1;
			q->thread = i;
			q->qid = nvmk_qpair_id(td->qp);
			q->tag = td->tag;
			qsp[nqp++] = q;
		}
	}
	st.devices = devs;
	st.qpairs = qsp;
	st.n_qpairs = nqp;
	for (unsigned i = 0; i < srv->nlisteners; i++) {
		struct exp_listener *l = &srv->listeners[i];
		NvmkExp__ExpListener *m = &ls[st.n_listeners];

		if (l->fd < 0)
			continue;
		nvmk_exp__exp_listener__init(m);
		m->has_fd = m->has_unix_ino = 1;
		m->fd = l->fd;
		m->addr = l->addr;
		m->unix_path = l->unix_path;
		m->unix_ino = l->unix_ino;
		lsp[st.n_listeners++] = m;
		set_cloexec(l->fd, false);
	}
	st.listeners = lsp;
	for (unsigned i = 0; i < srv->nthreads; i++) {
		for (struct exp_conn *c = srv->threads[i].conns; c; c = c->next) {
			NvmkExp__ExpConn *m = &cs[st.n_conns];

			if (!conn_saveable(c))
				continue; /* a handshake: handshake_state.c */
			nvmk_exp__exp_conn__init(m);
			m->has_fd = m->has_id = m->has_thread = m->has_fixed_newstyle = 1;
			m->has_no_zeroes = m->has_structured = m->has_meta_base_allocation = 1;
			m->has_tflags = m->has_size = m->has_min_block = m->has_max_block = 1;
			m->has_requests = 1;
			m->fd = c->fd;
			m->id = c->id;
			m->peer = c->peer;
			m->thread = i;
			m->export_name = c->exp->name;
			m->fixed_newstyle = c->fixed_newstyle;
			m->no_zeroes = c->no_zeroes;
			m->structured = c->structured;
			m->meta_base_allocation = c->lim.meta_base_allocation;
			m->tflags = c->lim.tflags;
			m->size = c->lim.size;
			m->min_block = c->lim.min_block;
			m->max_block = c->lim.max_block;
			m->requests = atomic_load(&c->requests);
			m->has_tcp = 1;
			m->tcp = c->tcp;
			/* bytes read from the socket ahead of the request boundary (the
			 * staging buffer): the successor parses them before reading more */
			if (c->stage && c->stage_len > c->stage_off) {
				m->has_staged = 1;
				m->staged.data = c->stage + c->stage_off;
				m->staged.len = c->stage_len - c->stage_off;
				staged_bytes += m->staged.len;
			}
			csp[st.n_conns++] = m;
			set_cloexec(c->fd, false);
		}
	}
	st.conns = csp;
	if (exp_hs_save(srv, &st, &hs_keep)) {
		nvmk_export_save_abort(srv);
		goto out;
	}
	*len = nvmk_exp__exp_state__get_packed_size(&st);
	*blob = malloc(*len ? *len : 1);
	if (!*blob) {
		nvmk_export_save_abort(srv);
		goto out;
	}
	nvmk_exp__exp_state__pack(&st, *blob);
	nvmk_info(EXP_LOG, NVMK_LOG_NOQ,
		  "servicing: saved %zu listener(s), %zu connection(s) (%zu bytes received "
		  "ahead), %u queue pair(s), %zu request(s) at the device",
		  st.n_listeners, st.n_conns, staged_bytes, nqp, st.n_requests);
	rc = 0;
out:
	exp_hs_saved_free(&hs_keep);
	free(devs);
	free(ls);
	free(lsp);
	free(qs);
	free(qsp);
	free(cs);
	free(csp);
	free(xs);
	free(xsp);
	free(rs);
	free(rsp);
	return rc;
}

/* ---- successor ---- */

static bool fd_is_socket(int fd)
{
	struct stat st;

	return fd >= 0 && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int state_check(const NvmkExp__ExpState *st, char *why, size_t wl)
{
	if (!st->has_version || !st->has_threads || !st->threads || st->threads > EXP_MAX_THREADS) {
		snprintf(why, wl, "version or thread count missing or out of range");
		return -EBADMSG;
	}
	if (st->version > NVMK_EXPORT_STATE_VERSION) {
		snprintf(why, wl, "export state format %u is newer than this binary's %u",
			 st->version, NVMK_EXPORT_STATE_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (st->n_devices > EXP_MAX_DEVICES || st->n_listeners > EXP_MAX_LISTENERS) {
		snprintf(why, wl, "%zu devices / %zu listeners: at most %d / %d", st->n_devices,
			 st->n_listeners, EXP_MAX_DEVICES, EXP_MAX_LISTENERS);
		return -EBADMSG;
	}
	for (size_t i = 0; i < st->n_devices; i++)
		if (!st->devices[i] || !*st->devices[i] || strlen(st->devices[i]) > NVMK_MGR_ID_MAX) {
			snprintf(why, wl, "device %zu: bad id", i);
			return -EBADMSG;
		}
	for (size_t i = 0; i < st->n_listeners; i++) {
		const NvmkExp__ExpListener *l = st->listeners[i];

		if (!l->has_fd || !l->addr || strlen(l->addr) >= sizeof(((struct exp_listener *)0)->addr) ||
		    (l->unix_path &&
		     strlen(l->unix_path) >= sizeof(((struct exp_listener *)0)->unix_path))) {
			snprintf(why, wl, "listener %zu: fields missing or too long", i);
			return -EBADMSG;
		}
	}
	if (st->n_exports > EXP_MAX_EXPORTS) {
		snprintf(why, wl, "%zu exports: at most %d", st->n_exports, EXP_MAX_EXPORTS);
		return -EBADMSG;
	}
	for (size_t i = 0; i < st->n_exports; i++)
		if (!st->exports[i]->device || !st->exports[i]->has_nsid || !st->exports[i]->nsid ||
		    st->exports[i]->nsid == 0xffffffffu) {
			snprintf(why, wl, "export %zu: device or nsid missing or out of range", i);
			return -EBADMSG;
		}
	for (size_t i = 0; i < st->n_qpairs; i++) {
		const NvmkExp__ExpQpair *q = st->qpairs[i];

		if (!q->device || !q->tag || !q->has_qid || !q->has_thread || !q->qid ||
		    q->qid > 0xffff || q->thread >= st->threads || strlen(q->tag) > NVMK_MGR_TAG_MAX) {
			snprintf(why, wl, "queue pair %zu: fields missing or out of range", i);
			return -EBADMSG;
		}
	}
	for (size_t i = 0; i < st->n_requests; i++) {
		const NvmkExp__ExpRequest *r = st->requests[i];

		if (!r->has_thread || r->thread >= st->threads || !r->has_slot ||
		    !r->has_conn_id || !r->has_handle || !r->has_type || !r->has_offset ||
		    !r->has_length || r->length > EXP_MAX_BLOCK_CAP ||
		    (r->type != NVMK_NBD_CMD_READ && r->type != NVMK_NBD_CMD_WRITE &&
		     r->type != NVMK_NBD_CMD_FLUSH && r->type != NVMK_NBD_CMD_TRIM &&
		     r->type != NVMK_NBD_CMD_WRITE_ZEROES)) {
			snprintf(why, wl, "request %zu: fields missing or out of range", i);
			return -EBADMSG;
		}
		for (size_t j = 0; j < i; j++)
			if (st->requests[j]->thread == r->thread && st->requests[j]->slot == r->slot) {
				snprintf(why, wl, "request %zu: slot %u of thread %u twice", i,
					 r->slot, r->thread);
				return -EBADMSG;
			}
	}
	for (size_t i = 0; i < st->n_conns; i++) {
		const NvmkExp__ExpConn *c = st->conns[i];

		if (!c->has_fd || !c->has_thread || c->thread >= st->threads || !c->export_name ||
		    !c->has_size || !c->has_min_block || !c->min_block || !c->has_max_block ||
		    c->max_block < c->min_block || c->max_block > EXP_MAX_BLOCK_CAP ||
		    !c->has_tflags || c->tflags > 0xffff ||
		    (c->has_staged && c->staged.len > EXP_STAGE_CAP)) {
			snprintf(why, wl, "connection %zu: fields missing or out of range", i);
			return -EBADMSG;
		}
	}
	return 0;
}

int nvmk_export_state_check(const void *blob, size_t len)
{
	NvmkExp__ExpState *st = nvmk_exp__exp_state__unpack(NULL, len, blob);
	char why[160];
	int rc;

	if (!st)
		return -EBADMSG;
	rc = state_check(st, why, sizeof(why));
	nvmk_exp__exp_state__free_unpacked(st, NULL);
	return rc;
}

int exp_restore_nsids(struct nvmk_export_server *srv, const struct exp_device *d, uint32_t *nsids,
		      unsigned max)
{
	const NvmkExp__ExpState *st = srv->restoring ? srv->restoring->st : NULL;
	unsigned n = 0;

	for (size_t i = 0; st && i < st->n_exports && n < max; i++)
		if (!strcmp(st->exports[i]->device, d->id))
			nsids[n++] = st->exports[i]->nsid;
	return (int)n;
}

int exp_restore_tdev(struct nvmk_export_server *srv, struct exp_device *d, struct exp_tdev *td)
{
	const NvmkExp__ExpState *st = srv->restoring ? srv->restoring->st : NULL;
	size_t need = (size_t)srv->opts.slots_per_thread * d->slot_size;
	struct nvmk_ctrl *ctrl = NULL;
	struct nvmk_qpair *qp;
	int rc;

	if (!st)
		return 0;
	for (unsigned k = 0; k < atomic_load(&srv->nexports) && !ctrl; k++)
		if (srv->exports[k].dev == d && srv->exports[k].ns)
			ctrl = nvmk_ns_ctrl(srv->exports[k].ns);
	for (size_t i = 0; ctrl && i < st->n_qpairs; i++) {
		const NvmkExp__ExpQpair *q = st->qpairs[i];

		if (strcmp(q->device, d->id) || q->thread != td->t->idx)
			continue;
		qp = nvmk_ctrl_restored_qpair(ctrl, (uint16_t)q->qid);
		if (!qp) {
			nvmk_warn(d->id, NVMK_LOG_NOQ,
				  "servicing: nbd thread %u: queue %u was not restored: a new "
				  "queue pair is created",
				  td->t->idx, q->qid);
			return 0;
		}
		rc = nvmk_mgr_dma_get(srv->mgr, d->id, q->tag, &td->slab);
		if (rc || td->slab.mem.size < need) {
			nvmk_warn(d->id, NVMK_LOG_NOQ,
				  "servicing: nbd thread %u: request buffers '%s' not restored "
				  "(%s): new ones are allocated",
				  td->t->idx, q->tag, rc ? strerror(-rc) : "too small");
			memset(&td->slab, 0, sizeof(td->slab));
			nvmk_qpair_destroy(qp);
			return 0;
		}
		snprintf(td->tag, sizeof(td->tag), "%s", q->tag);
		td->slab_ephemeral = false;
		td->qp = qp;
		return 1;
	}
	return 0;
}

static int adopt_conn(struct nvmk_export_server *srv, const NvmkExp__ExpConn *m)
{
	struct exp_export *e = exp_find_export(srv, m->export_name, strlen(m->export_name));
	struct exp_thread *t = &srv->threads[m->thread];
	struct exp_conn *c;

	if (!e || !atomic_load(&e->live) || !fd_is_socket(m->fd) || m->size > e->size ||
	    m->min_block != e->lba_size) {
		nvmk_err(EXP_LOG, NVMK_LOG_NOQ,
			 "servicing: nbd conn %llu: export '%s' %s: connection closed",
			 (unsigned long long)m->id, m->export_name,
			 !e || !atomic_load(&e->live) ? "is gone"
			 : !fd_is_socket(m->fd)	      ? "has no socket (fd not inherited)"
						      : "changed size or block size");
		if (m->fd >= 0 && fd_is_socket(m->fd))
			close(m->fd);
		return -ENOENT;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(m->fd);
		return -ENOMEM;
	}
	c->kind = EP_CONN;
	c->fd = m->fd;
	c->id = m->id;
	snprintf(c->peer, sizeof(c->peer), "%s", m->peer ? m->peer : "?");
	c->t = t;
	c->txq_head = c->txq_tail = EXP_NONE;
	c->fixed_newstyle = m->fixed_newstyle;
	c->no_zeroes = m->no_zeroes;
	c->tcp = m->tcp;
	c->structured = m->structured;
	c->exp = e;
	c->td = &t->tdev[e->dev->idx];
	c->meta_export = m->meta_base_allocation ? (int)(e - srv->exports) : -1;
	c->lim = (struct nvmk_nbd_limits){
	    .size = m->size,
	    .min_block = m->min_block,
	    .max_block = m->max_block,
	    .tflags = (uint16_t)m->tflags,
	    .structured = m->structured,
	    .meta_base_allocation = m->meta_base_allocation,
	};
	atomic_store(&c->requests, m->requests);
	if (m->has_staged && m->staged.len) {
		c->stage = malloc(EXP_STAGE_CAP);
		if (!c->stage) {
			close(c->fd);
			free(c);
			return -ENOMEM;
		}
		memcpy(c->stage, m->staged.data, m->staged.len);
		c->stage_len = (uint32_t)m->staged.len;
	}
	atomic_store(&c->state, CONN_TRANS);
	set_cloexec(c->fd, true);
	c->ep_events = EPOLLIN;
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, c->fd,
		      &(struct epoll_event){.events = EPOLLIN, .data.ptr = c})) {
		int err = -errno;

		close(c->fd);
		free(c);
		return err;
	}
	atomic_fetch_add(&e->dev->conns, 1);
	atomic_fetch_add(&t->nconns, 1);
	atomic_fetch_add(&srv->nconns, 1);
	pthread_mutex_lock(&t->lock);
	c->next = t->conns;
	t->conns = c;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/* Take slot @slot of @t out of the free list. */
static bool claim_slot(struct exp_thread *t, uint32_t slot)
{
	for (uint32_t k = 0; k < t->nfree; k++)
		if (t->free_slots[k] == slot) {
			t->free_slots[k] = t->free_slots[--t->nfree];
			return true;
		}
	return false;
}

/*
 * A request whose NVMe command is at the device: rebuilt in the same slot
 * (its token and its data buffer slot), answered when the completion comes
 * (the driver delivers it to req_done through nvmk_export_resolve). A
 * request whose connection was not adopted keeps its slot, without a
 * connection: its completion is then dropped and the slot is not reused by
 * another request while the old command may still complete.
 */
static void adopt_request(struct nvmk_export_server *srv, const NvmkExp__ExpRequest *m,
			  bool fail)
{
	struct exp_thread *t = &srv->threads[m->thread];
	struct exp_conn *c = NULL;
	struct exp_req *r;

	if (m->slot >= t->nslots || !claim_slot(t, m->slot)) {
		nvmk_err(EXP_LOG, NVMK_LOG_NOQ,
			 "servicing: request handle %#llx: slot %u of thread %u is not free: "
			 "state refused for this request",
			 (unsigned long long)m->handle, m->slot, m->thread);
		return;
	}
	for (c = t->conns; c && c->id != m->conn_id; c = c->next)
		;
	r = &t->reqs[m->slot];
	memset(r, 0, sizeof(*r));
	r->slot = m->slot;
	r->next = EXP_NONE;
	r->state = REQ_NVME;
	r->conn = c;
	r->r = (struct nvmk_nbd_request){.flags = (uint16_t)m->flags,
					 .type = (uint16_t)m->type,
					 .handle = m->handle,
					 .offset = m->offset,
					 .length = m->length};
	r->flush_after = m->flush_after;
	if (!c) {
		nvmk_err(EXP_LOG, NVMK_LOG_NOQ,
			 "servicing: request handle %#llx: connection %llu was not adopted: its "
			 "completion is dropped",
			 (unsigned long long)m->handle, (unsigned long long)m->conn_id);
		return;
	}
	atomic_fetch_add_explicit(&c->inflight, 1, memory_order_relaxed);
	if (fail) {
		/* answered once, with an error: the command died with the old queues */
		r->nbd_err = NVMK_NBD_EIO;
		snprintf(r->msg, sizeof(r->msg), "device brought up afresh after servicing");
		exp_req_reply(r);
		return;
	}
	c->td->outstanding++;
}

int nvmk_export_resolve(void *ctx, uint64_t token, nvmk_cpl_fn *cb, void **cb_arg)
{
	(void)ctx;
	/* (thread + 1) << 32 | slot, as io.c submits; checked again at completion */
	if ((token >> 32) == 0 || (token >> 32) > EXP_MAX_THREADS)
		return -ENOENT;
	*cb = exp_req_done_fn();
	*cb_arg = (void *)(uintptr_t)token;
	return 0;
}

int nvmk_export_restore(struct nvmk_export_server *srv, const void *blob, size_t len,
			bool fail_inflight)
{
	NvmkExp__ExpState *st;
	struct exp_restore_map map;
	unsigned adopted = 0;
	char why[160];
	int rc;

	if (!srv || !blob || srv->started)
		return -EINVAL;
	st = nvmk_exp__exp_state__unpack(NULL, len, blob);
	if (!st) {
		nvmk_err(EXP_LOG, NVMK_LOG_NOQ, "servicing: export state does not decode: refused");
		return -EBADMSG;
	}
	rc = state_check(st, why, sizeof(why));
	if (!rc)
		rc = exp_hs_check(st, srv->opts.max_option_len, why, sizeof(why));
	if (!rc && st->threads != srv->nthreads) {
		snprintf(why, sizeof(why), "saved with %u I/O threads, this server has %u",
			 st->threads, srv->nthreads);
		rc = -EINVAL;
	}
	for (size_t i = 0; !rc && i < st->n_listeners; i++)
		if (!fd_is_socket(st->listeners[i]->fd)) {
			snprintf(why, sizeof(why), "listener %s: fd %d is not an inherited socket",
				 st->listeners[i]->addr, st->listeners[i]->fd);
			rc = -EBADMSG;
		}
	if (rc) {
		nvmk_err(EXP_LOG, NVMK_LOG_NOQ, "servicing: export state refused: %s", why);
		nvmk_exp__exp_state__free_unpacked(st, NULL);
		return rc;
	}
	map.st = st;
	srv->restoring = &map;
	for (size_t i = 0; !rc && i < st->n_devices; i++) {
		rc = nvmk_export_add_device(srv, st->devices[i]);
		if (rc)
			nvmk_err(st->devices[i], NVMK_LOG_NOQ,
				 "servicing: cannot export again: %s (its connections are closed)",
				 strerror(-rc));
		rc = 0; /* the other devices go on */
	}
	srv->restoring = NULL;
	pthread_mutex_lock(&srv->lock);
	for (size_t i = 0; i < st->n_listeners && srv->nlisteners < EXP_MAX_LISTENERS; i++) {
		struct exp_listener *l = &srv->listeners[srv->nlisteners++];

		memset(l, 0, sizeof(*l));
		l->kind = EP_LISTENER;
		l->fd = st->listeners[i]->fd;
		set_cloexec(l->fd, true);
		snprintf(l->addr, sizeof(l->addr), "%s", st->listeners[i]->addr);
		snprintf(l->unix_path, sizeof(l->unix_path), "%s",
			 st->listeners[i]->unix_path ? st->listeners[i]->unix_path : "");
		l->unix_ino = st->listeners[i]->unix_ino;
	}
	pthread_mutex_unlock(&srv->lock);
	for (size_t i = 0; i < st->n_conns; i++)
		if (!adopt_conn(srv, st->conns[i]))
			adopted++;
	for (size_t i = 0; i < st->n_requests; i++)
		adopt_request(srv, st->requests[i], fail_inflight);
	if (st->n_handshakes)
		nvmk_info(EXP_LOG, NVMK_LOG_NOQ,
			  "servicing: adopted %u of %zu connection(s) in their handshake",
			  exp_hs_adopt(srv, st), st->n_handshakes);
	/* completions that came during the blackout may have raised an interrupt
	 * nobody took: make each thread look at its queue pairs at once */
	for (unsigned i = 0; i < srv->nthreads; i++)
		for (unsigned d = 0; d < EXP_MAX_DEVICES; d++) {
			struct exp_tdev *td = &srv->threads[i].tdev[d];
			uint64_t one = 1;

			if (td->outstanding && td->irq_fd >= 0 &&
			    write(td->irq_fd, &one, sizeof(one)) < 0)
				(void)0; /* the 100 ms tick processes it then */
		}
	if (st->has_next_conn_id)
		atomic_store(&srv->next_conn_id, st->next_conn_id);
	atomic_store(&srv->first_reply_ns, 0);
	atomic_store(&srv->watch_first_reply, true);
	nvmk_info(EXP_LOG, NVMK_LOG_NOQ,
		  "servicing: adopted %zu listener(s), %u of %zu connection(s), %zu request(s) "
		  "at the device",
		  st->n_listeners, adopted, st->n_conns, st->n_requests);
	nvmk_exp__exp_state__free_unpacked(st, NULL);
	return 0;
}
