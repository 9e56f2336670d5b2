// SPDX-License-Identifier: MIT
/*
 * Servicing of NBD connections in their newstyle handshake (docs/servicing.md).
 *
 * A client may be anywhere in the negotiation when the daemon is serviced:
 * accepted but not greeted yet, before its flags, between options, in the
 * middle of an option header or of option data, or with option replies not
 * sent yet. Everything that defines where it is lives in struct exp_conn:
 * the state, the bytes of the flags / option header read so far, the option
 * header and the option data read so far, the bytes of an over-long option
 * still to skip, the replies not sent, and what was negotiated (fixed
 * newstyle, no zeroes, structured replies, the export base:allocation was
 * set for). The state carries all of it (ExpHandshake) and the successor
 * goes on from the same byte: the client sees nothing but a pause.
 *
 * Not handed over: TLS (STARTTLS acknowledged, or the TLS handshake or
 * session running: the GnuTLS state is this process's), and connections
 * that are closing (dead, end of stream, NBD_OPT_ABORT answered).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handshake_state.h"
#include "nvmekeep/log.h"

/* ExpHandshake.state */
enum {
	HS_NOT_STARTED = 0,
	HS_FLAGS = 1,
	HS_OPT_HDR = 2,
	HS_OPT_DATA = 3,
	HS_OPT_DISCARD = 4,
};

static int conn_state(const struct exp_conn *c)
{
	return atomic_load_explicit(&c->state, memory_order_relaxed);
}

static void cloexec(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl >= 0)
		fcntl(fd, F_SETFD, on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC));
}

bool exp_hs_saveable(const struct exp_conn *c)
{
	int s = conn_state(c);

	return (s == CONN_HS_FLAGS || s == CONN_OPT_HDR || s == CONN_OPT_DATA ||
		s == CONN_OPT_DISCARD) &&
	       !c->dead && !c->rx_eof && !c->shutting && !c->abort_after_tx && !c->tls &&
	       !c->tls_pending && !c->tls_ok;
}

static uint32_t hs_state(const struct exp_conn *c)
{
	switch (conn_state(c)) {
	case CONN_HS_FLAGS:
		return HS_FLAGS;
	case CONN_OPT_HDR:
		return HS_OPT_HDR;
	case CONN_OPT_DATA:
		return HS_OPT_DATA;
	default:
		return HS_OPT_DISCARD;
	}
}

static void describe(struct nvmk_export_server *srv, const struct exp_conn *c, unsigned thread,
		     bool started, NvmkExp__ExpHandshake *m)
{
	nvmk_exp__exp_handshake__init(m);
	m->has_fd = m->has_id = m->has_thread = m->has_state = m->has_tcp = 1;
	m->fd = c->fd;
	m->id = c->id;
	m->peer = (char *)c->peer;
	m->thread = thread;
	m->tcp = c->tcp;
	m->state = started ? hs_state(c) : HS_NOT_STARTED;
	if (!started)
		return;
	m->has_fixed_newstyle = m->has_no_zeroes = m->has_structured = 1;
	m->fixed_newstyle = c->fixed_newstyle;
	m->no_zeroes = c->no_zeroes;
	m->structured = c->structured;
	if (c->meta_export >= 0 && (unsigned)c->meta_export < atomic_load(&srv->nexports))
		m->meta_export = srv->exports[c->meta_export].name;
	if ((m->state == HS_FLAGS || m->state == HS_OPT_HDR) && c->hdr_have) {
		m->has_rx = 1;
		m->rx.data = (uint8_t *)c->hdr;
		m->rx.len = c->hdr_have;
	}
	if (m->state == HS_OPT_DATA || m->state == HS_OPT_DISCARD) {
		m->has_option = m->has_length = 1;
		m->option = c->opt.option;
		m->length = c->opt.length;
	}
	if (m->state == HS_OPT_DATA && c->opt_have) {
		m->has_data = 1;
		m->data.data = c->opt_data;
		m->data.len = c->opt_have;
	}
	if (m->state == HS_OPT_DISCARD) {
		m->has_discard_left = 1;
		m->discard_left = c->discard_left;
	}
	if (c->hs_len > c->hs_off) {
		m->has_tx = 1;
		m->tx.data = c->hs_buf + c->hs_off;
		m->tx.len = c->hs_len - c->hs_off;
	}
}

int exp_hs_save(struct nvmk_export_server *srv, NvmkExp__ExpState *st, struct exp_hs_saved *keep)
{
	size_t n = 0, k = 0;

	memset(keep, 0, sizeof(*keep));
	for (unsigned i = 0; i < srv->nthreads; i++) {
		for (struct exp_conn *c = srv->threads[i].conns; c; c = c->next)
			n += exp_hs_saveable(c);
		for (struct exp_conn *c = srv->threads[i].inbox; c; c = c->next)
			n++;
	}
	if (!n)
		return 0;
	keep->hs = calloc(n, sizeof(*keep->hs));
	keep->hsp = calloc(n, sizeof(*keep->hsp));
	if (!keep->hs || !keep->hsp) {
		exp_hs_saved_free(keep);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < srv->nthreads; i++) {
		for (struct exp_conn *c = srv->threads[i].conns; c; c = c->next)
			if (exp_hs_saveable(c)) {
				describe(srv, c, i, true, &keep->hs[k]);
				keep->hsp[k] = &keep->hs[k];
				k++;
			}
		for (struct exp_conn *c = srv->threads[i].inbox; c; c = c->next) {
			describe(srv, c, i, false, &keep->hs[k]);
			keep->hsp[k] = &keep->hs[k];
			k++;
		}
	}
	for (size_t j = 0; j < k; j++)
		cloexec(keep->hs[j].fd, false);
	st->handshakes = keep->hsp;
	st->n_handshakes = k;
	nvmk_info(EXP_LOG, NVMK_LOG_NOQ,
		  "servicing: %zu connection(s) in their handshake handed over", k);
	return 0;
}

void exp_hs_saved_free(struct exp_hs_saved *keep)
{
	free(keep->hs);
	free(keep->hsp);
	memset(keep, 0, sizeof(*keep));
}

int exp_hs_check(const NvmkExp__ExpState *st, uint32_t max_option_len, char *why, size_t wl)
{
	for (size_t i = 0; i < st->n_handshakes; i++) {
		const NvmkExp__ExpHandshake *h = st->handshakes[i];
		size_t rx_max = h->state == HS_FLAGS ? 4 : NVMK_NBD_OPT_HDR_LEN;

		if (!h->has_fd || h->fd < 0 || !h->has_thread || h->thread >= st->threads ||
		    !h->has_state || h->state > HS_OPT_DISCARD ||
		    (h->has_rx && (h->state == HS_NOT_STARTED || h->state > HS_OPT_HDR ||
				   h->rx.len >= rx_max)) ||
		    ((h->state == HS_OPT_DATA || h->state == HS_OPT_DISCARD) &&
		     (!h->has_option || !h->has_length)) ||
		    (h->state == HS_OPT_DATA &&
		     (h->length > max_option_len || (h->has_data && h->data.len >= h->length))) ||
		    (h->has_data && h->state != HS_OPT_DATA) ||
		    (h->state == HS_OPT_DISCARD &&
		     (!h->has_discard_left || !h->discard_left || h->discard_left > h->length)) ||
		    (h->has_tx && (h->state == HS_NOT_STARTED || h->tx.len > (1u << 20)))) {
			snprintf(why, wl, "handshake %zu: fields missing or out of range", i);
			return -EBADMSG;
		}
	}
	return 0;
}

static bool fd_is_socket(int fd)
{
	struct stat st;

	return fd >= 0 && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int adopt_one(struct nvmk_export_server *srv, const NvmkExp__ExpHandshake *m)
{
	static const int conn_states[] = {[HS_FLAGS] = CONN_HS_FLAGS,
					  [HS_OPT_HDR] = CONN_OPT_HDR,
					  [HS_OPT_DATA] = CONN_OPT_DATA,
					  [HS_OPT_DISCARD] = CONN_OPT_DISCARD};
	struct exp_thread *t = &srv->threads[m->thread];
	uint32_t events = EPOLLIN;
	struct exp_conn *c;

	if (!fd_is_socket(m->fd)) {
		nvmk_err(EXP_LOG, NVMK_LOG_NOQ,
			 "servicing: nbd conn %llu (handshake): fd %d is not an inherited socket",
			 (unsigned long long)m->id, m->fd);
		return -EBADF;
	}
	c = calloc(1, sizeof(*c));
	if (c)
		c->opt_data = malloc(srv->opts.max_option_len ? srv->opts.max_option_len : 1);
	if (c && m->has_tx) {
		c->hs_buf = malloc(m->tx.len);
		c->hs_len = c->hs_cap = c->hs_buf ? m->tx.len : 0;
	}
	if (!c || !c->opt_data || (m->has_tx && !c->hs_buf)) {
		if (c) {
			free(c->opt_data);
			free(c->hs_buf);
		}
		free(c);
		close(m->fd);
		return -ENOMEM;
	}
	c->kind = EP_CONN;
	c->fd = m->fd;
	c->id = m->id;
	snprintf(c->peer, sizeof(c->peer), "%s", m->peer ? m->peer : "?");
	c->t = t;
	c->tcp = m->tcp;
	cloexec(c->fd, true);
	if (m->state == HS_NOT_STARTED) {
		/* what the thread does with a connection from its inbox: greet it */
		exp_conn_start(c);
		events = EPOLLOUT;
	} else {
		c->txq_head = c->txq_tail = EXP_NONE;
		c->fixed_newstyle = m->fixed_newstyle;
		c->no_zeroes = m->no_zeroes;
		c->structured = m->structured;
		c->meta_export = -1;
		if (m->meta_export) {
			struct exp_export *e =
			    exp_find_export(srv, m->meta_export, strlen(m->meta_export));

			if (e)
				c->meta_export = (int)(e - srv->exports);
		}
		if (m->has_rx) {
			memcpy(c->hdr, m->rx.data, m->rx.len);
			c->hdr_have = (uint32_t)m->rx.len;
		}
		c->opt.option = m->option;
		c->opt.length = m->length;
		if (m->has_data) {
			memcpy(c->opt_data, m->data.data, m->data.len);
			c->opt_have = (uint32_t)m->data.len;
		}
		c->discard_left = m->discard_left;
		if (m->has_tx) {
			memcpy(c->hs_buf, m->tx.data, m->tx.len);
			events |= EPOLLOUT;
		}
		/* a full handshake period from here: the client had none of it
		 * while the daemon was away */
		c->deadline_ms = exp_now_ms() + srv->opts.handshake_timeout_ms;
		atomic_store(&c->state, conn_states[m->state]);
	}
	c->ep_events = events;
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, c->fd,
		      &(struct epoll_event){.events = events, .data.ptr = c})) {
		int err = -errno;

		close(c->fd);
		free(c->opt_data);
		free(c->hs_buf);
		free(c);
		return err;
	}
	atomic_fetch_add(&t->nconns, 1);
	atomic_fetch_add(&srv->nconns, 1);
	pthread_mutex_lock(&t->lock);
	c->next = t->conns;
	t->conns = c;
	pthread_mutex_unlock(&t->lock);
	nvmk_info(EXP_LOG, NVMK_LOG_NOQ, "servicing: nbd conn %llu (%s): handshake adopted (%s)",
		  (unsigned long long)c->id, c->peer,
		  m->state == HS_NOT_STARTED ? "not greeted yet"
		  : m->state == HS_FLAGS     ? "client flags"
		  : m->state == HS_OPT_HDR   ? "option header"
		  : m->state == HS_OPT_DATA  ? "option data"
					     : "skipping option data");
	return 0;
}

unsigned exp_hs_adopt(struct nvmk_export_server *srv, const NvmkExp__ExpState *st)
{
	unsigned n = 0;

	for (size_t i = 0; i < st->n_handshakes; i++)
		n += adopt_one(srv, st->handshakes[i]) == 0;
	return n;
}
