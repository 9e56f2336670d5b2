// SPDX-License-Identifier: MIT
/*
 * One NBD connection on its I/O thread: the fixed newstyle handshake
 * (proto.md "Handshake") as a nonblocking state machine, so a slow client
 * holds nobody up, then the transmission phase: request headers are read
 * 28 bytes at a time and a WRITE's payload is received straight into its
 * request buffer (DMA memory of the device), in a stream of WRITEs several
 * requests per recvmsg ("Receiving ahead" below); replies are gathered with
 * sendmsg straight from the buffers.
 *
 * A connection reads only while it may start a request (a free slot in its
 * thread's table and fewer than max_inflight of its own), so a client cannot
 * take more than its share of memory or queue space; epoll interest follows
 * that (level triggered).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "export_internal.h"
#include "nvmekeep/log.h"

#define HS_BUF_MAX (256u << 10) /* handshake replies buffered before reads pause */
#define TX_IOV_MAX 64

static const char *cname(const struct exp_conn *c)
{
	return c->exp ? c->exp->name : EXP_LOG;
}

static int conn_state(const struct exp_conn *c)
{
	return atomic_load_explicit(&c->state, memory_order_relaxed);
}

static void set_state(struct exp_conn *c, enum exp_conn_state s)
{
	/* release: the status reader sees c->exp once it sees transmission */
	atomic_store_explicit(&c->state, (int)s, memory_order_release);
}

static uint32_t staged(const struct exp_conn *c)
{
	return c->stage_len - c->stage_off;
}

void exp_conn_mark_dirty(struct exp_conn *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	c->dirty_next = c->t->dirty;
	c->t->dirty = c;
}

static void conn_kill(struct exp_conn *c, const char *why)
{
	if (!c->dead)
		nvmk_info(cname(c), NVMK_LOG_NOQ, "nbd conn %llu (%s): closing: %s",
			  (unsigned long long)c->id, c->peer, why);
	c->dead = true;
	exp_conn_mark_dirty(c);
}

/* ---- handshake output ---- */

static int hs_append(struct exp_conn *c, const void *p, size_t n)
{
	if (c->hs_len + n > c->hs_cap) {
		size_t cap = c->hs_cap ? c->hs_cap : 1024;
		uint8_t *nb;

		while (cap < c->hs_len + n)
			cap *= 2;
		nb = realloc(c->hs_buf, cap);
		if (!nb) {
			conn_kill(c, "out of memory");
			return -ENOMEM;
		}
		c->hs_buf = nb;
		c->hs_cap = cap;
	}
	memcpy(c->hs_buf + c->hs_len, p, n);
	c->hs_len += n;
	exp_conn_mark_dirty(c);
	return 0;
}

static void opt_reply(struct exp_conn *c, uint32_t type, const void *data, uint32_t len)
{
	uint8_t h[NVMK_NBD_OPT_REPLY_LEN];

	nvmk_nbd_put_opt_reply(h, c->opt.option, type, len);
	if (hs_append(c, h, sizeof(h)) == 0 && len)
		hs_append(c, data, len);
}

/* An error reply with a message for the user (proto.md: error replies MAY carry one). */
static void opt_error(struct exp_conn *c, uint32_t type, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void opt_error(struct exp_conn *c, uint32_t type, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	nvmk_debug(EXP_LOG, NVMK_LOG_NOQ, "nbd conn %llu: option %s refused: %s",
		   (unsigned long long)c->id, nvmk_nbd_opt_name(c->opt.option), msg);
	opt_reply(c, type, msg, (uint32_t)n);
}

/* ---- exports ---- */

static struct exp_export *resolve(struct exp_conn *c, const char *name, uint32_t len)
{
	struct nvmk_export_server *srv = c->t->srv;

	if (len == 0) {
		unsigned n = atomic_load(&srv->nexports);

		for (unsigned i = 0; i < n; i++)
			if (atomic_load(&srv->exports[i].live))
				return &srv->exports[i];
		return NULL;
	}
	return exp_find_export(srv, name, len);
}

static uint16_t conn_tflags(const struct exp_conn *c, const struct exp_export *e)
{
	/* DF: a read is always answered with one data chunk */
	return (uint16_t)(e->tflags | (c->structured ? NVMK_NBD_FLAG_SEND_DF : 0));
}

static int export_index(const struct exp_conn *c, const struct exp_export *e)
{
	return (int)(e - c->t->srv->exports);
}

static bool export_usable(const struct exp_conn *c, const struct exp_export *e)
{
	const struct exp_device *d = e->dev;

	return atomic_load(&e->live) && !atomic_load(&d->removing) &&
	       atomic_load(&c->t->tdev[d->idx].ready);
}

static void enter_transmission(struct exp_conn *c, struct exp_export *e, bool export_name)
{
	c->exp = e;
	c->td = &c->t->tdev[e->dev->idx];
	c->lim = (struct nvmk_nbd_limits){
	    .size = e->size,
	    .min_block = e->lba_size,
	    .max_block = e->dev->slot_size, /* accepted: see add_export */
	    .tflags = conn_tflags(c, e),
	    .structured = c->structured,
	    .meta_base_allocation = c->meta_export == export_index(c, e),
	};
	if (export_name) {
		/* proto.md NBD_OPT_EXPORT_NAME: size, flags, 124 zeroes unless NO_ZEROES */
		uint8_t b[8 + 2 + 124] = {0};

		nvmk_nbd_put64(b, e->size);
		nvmk_nbd_put16(b + 8, c->lim.tflags);
		hs_append(c, b, c->no_zeroes ? 10 : sizeof(b));
	}
	atomic_fetch_add(&e->dev->conns, 1);
	free(c->opt_data);
	c->opt_data = NULL;
	c->hdr_have = 0;
	c->deadline_ms = 0;
	set_state(c, CONN_TRANS);
	nvmk_info(e->name, NVMK_LOG_NOQ, "nbd conn %llu (%s): transmission%s%s", (unsigned long long)c->id,
		  c->peer, c->structured ? ", structured replies" : "",
		  c->lim.meta_base_allocation ? ", base:allocation" : "");
}

static void opt_list(struct exp_conn *c)
{
	struct nvmk_export_server *srv = c->t->srv;
	unsigned n = atomic_load(&srv->nexports);

	if (c->opt.length) {
		opt_error(c, NVMK_NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		const struct exp_export *e = &srv->exports[i];
		uint8_t b[4 + sizeof(e->name) + sizeof(e->description)];
		size_t nl = strlen(e->name), dl = strlen(e->description);

		if (!atomic_load(&e->live))
			continue;
		nvmk_nbd_put32(b, (uint32_t)nl);
		memcpy(b + 4, e->name, nl);
		memcpy(b + 4 + nl, e->description, dl);
		opt_reply(c, NVMK_NBD_REP_SERVER, b, (uint32_t)(4 + nl + dl));
	}
	opt_reply(c, NVMK_NBD_REP_ACK, NULL, 0);
}

static void send_info(struct exp_conn *c, uint16_t type, const void *s, size_t n)
{
	uint8_t b[2 + 256];

	nvmk_nbd_put16(b, type);
	memcpy(b + 2, s, n);
	opt_reply(c, NVMK_NBD_REP_INFO, b, (uint32_t)(2 + n));
}

static void opt_info_go(struct exp_conn *c, bool go)
{
	struct nvmk_nbd_info_req q;
	struct exp_export *e;
	uint8_t b[16];
	bool name = false, desc = false;

	if (nvmk_nbd_info_req_parse(c->opt_data, c->opt.length, &q)) {
		opt_error(c, NVMK_NBD_REP_ERR_INVALID,
			  "malformed %s data: expected name length, name, request count, requests",
			  go ? "NBD_OPT_GO" : "NBD_OPT_INFO");
		return;
	}
	e = resolve(c, q.name, q.name_len);
	if (!e) {
		opt_error(c, NVMK_NBD_REP_ERR_UNKNOWN,
			  "no export '%.*s': exports are DEVICE/NSID (NBD_OPT_LIST lists them)",
			  (int)(q.name_len > 200 ? 200 : q.name_len), q.name);
		return;
	}
	if (!export_usable(c, e)) {
		opt_error(c, NVMK_NBD_REP_ERR_SHUTDOWN, "export %s is being removed", e->name);
		return;
	}
	for (unsigned i = 0; i < q.ninfo && i < NVMK_NBD_MAX_INFO_REQS; i++) {
		if (q.info[i] == NVMK_NBD_INFO_NAME)
			name = true;
		else if (q.info[i] == NVMK_NBD_INFO_DESCRIPTION)
			desc = true;
	}
	nvmk_nbd_put_info_export(b, e->size, conn_tflags(c, e));
	opt_reply(c, NVMK_NBD_REP_INFO, b, 12);
	if (name)
		send_info(c, NVMK_NBD_INFO_NAME, e->name, strlen(e->name));
	if (desc)
		send_info(c, NVMK_NBD_INFO_DESCRIPTION, e->description, strlen(e->description));
	/* always sent: the minimum is the LBA size, smaller requests are refused */
	nvmk_nbd_put_info_block_size(b, e->lba_size, e->pref_block, e->max_block);
	opt_reply(c, NVMK_NBD_REP_INFO, b, 14);
	opt_reply(c, NVMK_NBD_REP_ACK, NULL, 0);
	if (go)
		enter_transmission(c, e, false);
}

static void opt_meta(struct exp_conn *c, bool list)
{
	static const char ctx[] = NVMK_NBD_META_BASE_ALLOCATION;
	struct nvmk_nbd_meta_req q;
	struct exp_export *e;
	uint8_t b[4 + sizeof(ctx)];

	if (!c->structured) {
		opt_error(c, NVMK_NBD_REP_ERR_INVALID,
			  "meta contexts need structured replies (NBD_OPT_STRUCTURED_REPLY first)");
		return;
	}
	if (nvmk_nbd_meta_req_parse(c->opt_data, c->opt.length, list, &q)) {
		opt_error(c, NVMK_NBD_REP_ERR_INVALID,
			  "malformed meta context data: expected name length, name, query "
			  "count, then length + query each");
		return;
	}
	e = resolve(c, q.name, q.name_len);
	if (!e) {
		opt_error(c, NVMK_NBD_REP_ERR_UNKNOWN, "no export '%.*s'",
			  (int)(q.name_len > 200 ? 200 : q.name_len), q.name);
		return;
	}
	if (!list)
		c->meta_export = q.base_allocation ? export_index(c, e) : -1;
	if (q.base_allocation) {
		/* LIST: the id is reserved, SHOULD be 0 (proto.md) */
		nvmk_nbd_put32(b, list ? 0 : NVMK_NBD_META_ID_BASE_ALLOCATION);
		memcpy(b + 4, ctx, sizeof(ctx) - 1);
		opt_reply(c, NVMK_NBD_REP_META_CONTEXT, b, (uint32_t)(4 + sizeof(ctx) - 1));
	}
	opt_reply(c, NVMK_NBD_REP_ACK, NULL, 0);
}

static bool tls_required(const struct exp_conn *c)
{
	return c->tcp && !c->tls_ok && c->t->srv->opts.tls == NVMK_EXPORT_TLS_REQUIRE;
}

static void handle_option(struct exp_conn *c)
{
	struct nvmk_export_server *srv = c->t->srv;
	uint32_t o = c->opt.option;

	nvmk_debug(EXP_LOG, NVMK_LOG_NOQ, "nbd conn %llu: option %s (%u), %u bytes",
		   (unsigned long long)c->id, nvmk_nbd_opt_name(o), o, c->opt.length);
	if (o == NVMK_NBD_OPT_EXPORT_NAME) {
		struct exp_export *e = resolve(c, (const char *)c->opt_data, c->opt.length);

		/* this option cannot be refused: the session ends (proto.md) */
		if (!e || !export_usable(c, e) || c->shutting || tls_required(c)) {
			conn_kill(c, "NBD_OPT_EXPORT_NAME names no usable export");
			return;
		}
		enter_transmission(c, e, true);
		return;
	}
	if (!c->fixed_newstyle) {
		conn_kill(c, "an option other than EXPORT_NAME without fixed newstyle");
		return;
	}
	if (o == NVMK_NBD_OPT_ABORT) {
		opt_reply(c, NVMK_NBD_REP_ACK, NULL, 0);
		c->abort_after_tx = true;
		return;
	}
	if (c->shutting || atomic_load(&srv->stopping)) {
		opt_error(c, NVMK_NBD_REP_ERR_SHUTDOWN, "the server is shutting down");
		return;
	}
	/* proto.md FORCEDTLS: every option but STARTTLS (and ABORT) needs TLS */
	if (o != NVMK_NBD_OPT_STARTTLS && tls_required(c)) {
		opt_error(c, NVMK_NBD_REP_ERR_TLS_REQD, "TLS is required: send NBD_OPT_STARTTLS");
		return;
	}
	switch (o) {
	case NVMK_NBD_OPT_LIST:
		opt_list(c);
		break;
	case NVMK_NBD_OPT_STARTTLS:
		if (c->tls_ok)
			opt_error(c, NVMK_NBD_REP_ERR_INVALID, "TLS is already established");
		else if (!srv->tls || !c->tcp)
			opt_error(c, NVMK_NBD_REP_ERR_POLICY,
				  "TLS is not configured for this listener (TCP with --tls)");
		else if (c->opt.length)
			opt_error(c, NVMK_NBD_REP_ERR_INVALID, "NBD_OPT_STARTTLS takes no data");
		else {
			opt_reply(c, NVMK_NBD_REP_ACK, NULL, 0);
			c->tls_pending = true;
		}
		break;
	case NVMK_NBD_OPT_INFO:
	case NVMK_NBD_OPT_GO:
		opt_info_go(c, o == NVMK_NBD_OPT_GO);
		break;
	case NVMK_NBD_OPT_STRUCTURED_REPLY:
		if (c->opt.length) {
			opt_error(c, NVMK_NBD_REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data");
			break;
		}
		c->structured = true;
		opt_reply(c, NVMK_NBD_REP_ACK, NULL, 0);
		break;
	case NVMK_NBD_OPT_LIST_META_CONTEXT:
	case NVMK_NBD_OPT_SET_META_CONTEXT:
		opt_meta(c, o == NVMK_NBD_OPT_LIST_META_CONTEXT);
		break;
	default:
		opt_error(c, NVMK_NBD_REP_ERR_UNSUP, "option %u is not supported", o);
		break;
	}
}

/* ---- reading ---- */

/* recv into @p: bytes read (> 0), or 0 when nothing can be read now (EOF,
 * EAGAIN or an error: flags set). */
static size_t rx(struct exp_conn *c, void *p, size_t n)
{
	ssize_t r = c->tls_ok ? exp_tls_recv(c, p, n) : recv(c->fd, p, n, 0);

	if (r > 0) {
		c->rx_idle = false;
		if (c->shutting)
			c->last_rx_ms = exp_now_ms();
		return (size_t)r;
	}
	if (r == 0) {
		c->rx_eof = true;
	} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
		c->rx_idle = true;
	} else if (errno != EINTR) {
		c->rx_eof = true;
		conn_kill(c, strerror(errno));
	}
	return 0;
}

bool exp_conn_can_read(const struct exp_conn *c)
{
	int s = conn_state(c);

	if (c->dead || c->abort_after_tx)
		return false;
	if (exp_conn_quiesced(c))
		return false; /* servicing: at a request boundary, read nothing more */
	if (s < CONN_TRANS)
		return !c->rx_eof && !c->tls_pending && c->hs_len - c->hs_off < HS_BUF_MAX;
	if (c->rx_eof && !staged(c))
		return false;
	if (c->disc)
		return false;
	if (c->rx_req)
		return true;
	return atomic_load_explicit(&c->inflight, memory_order_relaxed) <
		   c->t->srv->opts.max_inflight &&
	       c->t->nfree > 0;
}

/* One step of the TLS handshake; false while it waits for the peer. */
static bool tls_step(struct exp_conn *c)
{
	int rc = exp_tls_handshake(c);

	if (rc < 0) {
		conn_kill(c, "TLS handshake failed");
		return false;
	}
	exp_conn_mark_dirty(c);
	if (rc == 0)
		return false;
	c->tls_ok = true;
	c->hdr_have = 0;
	set_state(c, CONN_OPT_HDR);
	nvmk_info(EXP_LOG, NVMK_LOG_NOQ, "nbd conn %llu (%s): TLS established",
		  (unsigned long long)c->id, c->peer);
	return true;
}

/* Returns false when nothing more can be read now. */
static bool read_handshake(struct exp_conn *c)
{
	struct nvmk_export_server *srv = c->t->srv;
	uint8_t scratch[4096];
	size_t n;

	switch (conn_state(c)) {
	case CONN_TLS_HANDSHAKE:
		return tls_step(c);
	case CONN_HS_FLAGS:
		n = rx(c, c->hdr + c->hdr_have, 4 - c->hdr_have);
		if (!n)
			return false;
		c->hdr_have += (uint32_t)n;
		if (c->hdr_have < 4)
			return true;
		{
			uint32_t f = nvmk_nbd_get32(c->hdr);

			/* proto.md "Client flags": unknown flags drop the connection */
			if (f & ~(NVMK_NBD_FLAG_C_FIXED_NEWSTYLE | NVMK_NBD_FLAG_C_NO_ZEROES)) {
				conn_kill(c, "unknown client flags");
				return false;
			}
			c->fixed_newstyle = f & NVMK_NBD_FLAG_C_FIXED_NEWSTYLE;
			c->no_zeroes = f & NVMK_NBD_FLAG_C_NO_ZEROES;
		}
		c->hdr_have = 0;
		set_state(c, CONN_OPT_HDR);
		return true;
	case CONN_OPT_HDR:
		n = rx(c, c->hdr + c->hdr_have, NVMK_NBD_OPT_HDR_LEN - c->hdr_have);
		if (!n)
			return false;
		c->hdr_have += (uint32_t)n;
		if (c->hdr_have < NVMK_NBD_OPT_HDR_LEN)
			return true;
		c->hdr_have = 0;
		if (nvmk_nbd_opt_hdr_decode(c->hdr, &c->opt)) {
			conn_kill(c, "option header without the IHAVEOPT magic");
			return false;
		}
		if (c->opt.length > srv->opts.max_option_len) {
			if (c->opt.option == NVMK_NBD_OPT_EXPORT_NAME) {
				conn_kill(c, "NBD_OPT_EXPORT_NAME name too long");
				return false;
			}
			c->discard_left = c->opt.length;
			set_state(c, CONN_OPT_DISCARD);
			return true;
		}
		c->opt_have = 0;
		set_state(c, CONN_OPT_DATA);
		if (c->opt.length == 0) {
			set_state(c, CONN_OPT_HDR);
			handle_option(c);
		}
		return true;
	case CONN_OPT_DATA:
		n = rx(c, c->opt_data + c->opt_have, c->opt.length - c->opt_have);
		if (!n)
			return false;
		c->opt_have += (uint32_t)n;
		if (c->opt_have < c->opt.length)
			return true;
		set_state(c, CONN_OPT_HDR);
		handle_option(c);
		return true;
	case CONN_OPT_DISCARD:
		n = rx(c, scratch,
		       c->discard_left < sizeof(scratch) ? (size_t)c->discard_left : sizeof(scratch));
		if (!n)
			return false;
		c->discard_left -= n;
		if (c->discard_left)
			return true;
		set_state(c, CONN_OPT_HDR);
		opt_error(c, NVMK_NBD_REP_ERR_TOO_BIG, "option data of %u bytes exceeds the limit of %u",
			  c->opt.length, srv->opts.max_option_len);
		return true;
	default:
		return false;
	}
}

static void request_refuse(struct exp_conn *c, struct exp_req *r, uint32_t err, const char *msg)
{
	r->nbd_err = err;
	snprintf(r->msg, sizeof(r->msg), "%s", msg);
	nvmk_debug(cname(c), NVMK_LOG_NOQ,
		   "nbd conn %llu: %s flags %#x offset %llu length %u refused: %s",
		   (unsigned long long)c->id, nvmk_nbd_cmd_name(r->r.type), r->r.flags,
		   (unsigned long long)r->r.offset, r->r.length, msg);
	if (r->r.type == NVMK_NBD_CMD_WRITE && r->r.length) {
		/* the payload is on the wire: drain it to keep the framing */
		r->state = REQ_DISCARD;
		r->rx_done = 0;
		c->rx_req = r;
		return;
	}
	exp_req_reply(r);
}

static const char *refusal_text(uint32_t err, const struct nvmk_nbd_request *q,
				const struct nvmk_nbd_limits *lim)
{
	switch (err) {
	case NVMK_NBD_EPERM:
		return "the export is read-only";
	case NVMK_NBD_ENOSPC:
		return "the request goes past the end of the export";
	case NVMK_NBD_EOVERFLOW:
		return "longer than the maximum block size";
	default:
		break;
	}
	if (q->flags & 0xffe0u)
		return "unknown command flags";
	if (q->type > NVMK_NBD_CMD_BLOCK_STATUS)
		return "unknown command";
	if (q->offset > lim->size || q->length > lim->size - q->offset)
		return "the request goes past the end of the export";
	if ((q->type == NVMK_NBD_CMD_READ || q->type == NVMK_NBD_CMD_WRITE) &&
	    q->length > lim->max_block)
		return "longer than the maximum block size";
	if (q->type == NVMK_NBD_CMD_BLOCK_STATUS && !lim->meta_base_allocation)
		return "no meta context was negotiated";
	return "invalid flags, length or alignment (see NBD_INFO_BLOCK_SIZE)";
}

/* Receive more into the staging buffer; false when nothing came. */
static bool stage_fill(struct exp_conn *c)
{
	size_t n;

	if (!c->stage) {
		c->stage = malloc(EXP_STAGE_CAP);
		if (!c->stage) {
			conn_kill(c, "out of memory");
			return false;
		}
	}
	if (c->stage_off == c->stage_len) {
		c->stage_off = c->stage_len = 0;
	} else if (c->stage_off) {
		memmove(c->stage, c->stage + c->stage_off, staged(c));
		c->stage_len -= c->stage_off;
		c->stage_off = 0;
	}
	/* one header read takes at most EXP_STAGE_LEN: called with less than a
	 * header staged, so after the move stage_len < NVMK_NBD_REQ_LEN */
	n = rx(c, c->stage + c->stage_len, EXP_STAGE_LEN - c->stage_len);
	/* a short read emptied the socket: another recv now would only say
	 * EAGAIN (TLS may hold more: ask it) */
	c->rx_short = n && n < EXP_STAGE_LEN - c->stage_len && !exp_tls_pending(c);
	if (c->rx_short)
		c->rx_idle = true;
	c->stage_len += (uint32_t)n;
	return n > 0;
}

/*
 * Receiving ahead. A stream of WRITEs of one length (a client writing 4 KiB
 * blocks) would cost one recvmsg per request even with the next header
 * taken along (below), and at a request boundary the 4 KiB staging read
 * would catch a header and most of a payload, to be copied. So once
 * EXP_SPEC_STREAK WRITEs of length L came in a row, one recvmsg asks for the
 * rest of the current payload and then for up to EXP_SPEC_REQS more
 * (header, L bytes) pairs: each header into spec_hdr[i], each payload
 * straight into the buffer of the slot that request will get, the free
 * slots taken from the top of the free stack in order (exp_req_alloc pops
 * them in that order: nothing frees a slot while one receive is parsed).
 *
 * Each header that came is then read by the ordinary path (read_header):
 * every check applies as to any request. If it became a WRITE of length L
 * in the slot guessed, its payload is already in place (or, refused, it is
 * dropped): no copy. Anything else (another command, another length, a
 * header the connection may not act on now: quiescing, no slot) puts the
 * bytes from that header on back into the staging buffer, in order, and
 * the ordinary path goes on from there: a wrong guess costs one copy of
 * what was received ahead, at most EXP_SPEC_BYTES, and resets the streak.
 * Nothing of this is left between two calls: servicing sees requests and
 * staged bytes only. Plaintext only (TLS decrypts record by record).
 */
#define EXP_SPEC_STREAK 2

static uint8_t *slot_buf(const struct exp_conn *c, uint32_t slot)
{
	return (uint8_t *)c->td->slab.mem.vaddr +
	       (size_t)slot * c->t->srv->devices[c->td->dev].slot_size;
}

/* How many requests to receive ahead now (0: none). */
static unsigned spec_depth(const struct exp_conn *c)
{
	const struct exp_thread *t = c->t;
	unsigned inflight = atomic_load_explicit(&c->inflight, memory_order_relaxed);
	unsigned max_inflight = t->srv->opts.max_inflight;
	uint32_t len = c->spec_len;
	unsigned k;

	if (c->tls_ok || !c->stage || !c->td || c->spec_streak < EXP_SPEC_STREAK || !len ||
	    len > c->lim.max_block || len > t->srv->devices[c->td->dev].slot_size || c->shutting ||
	    exp_conn_quiesced(c))
		return 0;
	k = c->spec_streak < EXP_SPEC_REQS ? c->spec_streak : EXP_SPEC_REQS;
	if (k > EXP_SPEC_BYTES / (len + NVMK_NBD_REQ_LEN))
		k = EXP_SPEC_BYTES / (len + NVMK_NBD_REQ_LEN);
	/* every request received ahead must find a slot */
	if (k > t->nfree)
		k = t->nfree;
	if (inflight >= max_inflight)
		return 0;
	if (k > max_inflight - inflight)
		k = max_inflight - inflight;
	return k;
}

/*
 * The rest of a payload (@want bytes) straight into @dst, then either the
 * next request header into the (empty) staging buffer, or (@k > 0) @k
 * (header, payload) pairs received ahead. A stream of WRITEs costs one
 * system call per request, or per @k + 1 requests, and no copy. Returns
 * the bytes that went to @dst; those received ahead are in spec_got.
 */
static size_t rx_payload_and_next(struct exp_conn *c, uint8_t *dst, size_t want, unsigned k)
{
	struct iovec iov[1 + 2 * EXP_SPEC_REQS];
	size_t asked = want;
	int cnt = 0;
	ssize_t r;

	if (want)
		iov[cnt++] = (struct iovec){.iov_base = dst, .iov_len = want};
	if (!k) {
		iov[cnt++] = (struct iovec){.iov_base = c->stage, .iov_len = NVMK_NBD_REQ_LEN};
		asked += NVMK_NBD_REQ_LEN;
	}
	for (unsigned i = 0; i < k; i++) {
		c->spec_slot[i] = c->t->free_slots[c->t->nfree - 1 - i];
		iov[cnt++] =
		    (struct iovec){.iov_base = c->spec_hdr[i], .iov_len = NVMK_NBD_REQ_LEN};
		iov[cnt++] = (struct iovec){.iov_base = slot_buf(c, c->spec_slot[i]),
					    .iov_len = c->spec_len};
		asked += NVMK_NBD_REQ_LEN + c->spec_len;
	}
	c->spec_n = k;
	c->spec_got = 0;
	c->stage_off = c->stage_len = 0;
	r = recvmsg(c->fd, &(struct msghdr){.msg_iov = iov, .msg_iovlen = (size_t)cnt}, 0);
	if (r <= 0) {
		if (r == 0)
			c->rx_eof = true;
		else if (errno == EAGAIN || errno == EWOULDBLOCK)
			c->rx_idle = true;
		else if (errno != EINTR) {
			c->rx_eof = true;
			conn_kill(c, strerror(errno));
		}
		return 0;
	}
	c->rx_idle = false;
	if (c->shutting)
		c->last_rx_ms = exp_now_ms();
	/* less than asked: the socket is empty, the next recv would say EAGAIN */
	c->rx_short = (size_t)r < asked;
	if (c->rx_short)
		c->rx_idle = true;
	if ((size_t)r <= want)
		return (size_t)r;
	if (k)
		c->spec_got = (uint32_t)((size_t)r - want);
	else
		c->stage_len = (uint32_t)((size_t)r - want);
	return want;
}

/* Payload bytes into @dst (NULL: dropped): staged ones first, then straight
 * from the socket. Returns bytes taken, 0 when nothing is there now. */
static size_t take_payload(struct exp_conn *c, uint8_t *dst, size_t want)
{
	uint8_t scratch[4096];
	size_t n;

	if (staged(c)) {
		n = staged(c) < want ? staged(c) : want;
		if (dst)
			memcpy(dst, c->stage + c->stage_off, n);
		c->stage_off += (uint32_t)n;
		return n;
	}
	if (dst && c->stage && !c->tls_ok)
		return rx_payload_and_next(c, dst, want, spec_depth(c));
	c->rx_short = false; /* only the reads above say whether the socket is empty */
	if (dst)
		return rx(c, dst, want);
	return rx(c, scratch, want < sizeof(scratch) ? want : sizeof(scratch));
}

/* The payload of c->rx_req is complete. */
static void payload_complete(struct exp_conn *c)
{
	struct exp_req *r = c->rx_req;

	c->rx_req = NULL;
	if (r->state == REQ_RX)
		exp_req_payload_done(r);
	else
		exp_req_reply(r);
}

/* A WRITE stream: how many of length spec_len came in a row. */
static void spec_note(struct exp_conn *c, const struct nvmk_nbd_request *q)
{
	if (q->type == NVMK_NBD_CMD_WRITE && q->length && q->length == c->spec_len) {
		if (c->spec_streak < EXP_SPEC_REQS)
			c->spec_streak++;
		return;
	}
	c->spec_len = q->type == NVMK_NBD_CMD_WRITE ? q->length : 0;
	c->spec_streak = c->spec_len ? 1 : 0;
}

static bool read_header(struct exp_conn *c);

/*
 * Put @n bytes of what was received ahead (pairs of a header and @len
 * payload bytes), from pair @i on (its header from byte @hoff), back into
 * the staging buffer after what is staged.
 */
static void spec_stage_rest(struct exp_conn *c, unsigned i, uint32_t hoff, uint32_t n, uint32_t len)
{
	if (c->stage_off) {
		memmove(c->stage, c->stage + c->stage_off, staged(c));
		c->stage_len -= c->stage_off;
		c->stage_off = 0;
	}
	for (; i < c->spec_n && n; i++, hoff = 0) {
		uint32_t h = NVMK_NBD_REQ_LEN - hoff < n ? NVMK_NBD_REQ_LEN - hoff : n;
		uint32_t p;

		memcpy(c->stage + c->stage_len, c->spec_hdr[i] + hoff, h);
		c->stage_len += h;
		n -= h;
		p = len < n ? len : n;
		memcpy(c->stage + c->stage_len, slot_buf(c, c->spec_slot[i]), p);
		c->stage_len += p;
		n -= p;
	}
}

/* Read the requests received ahead (spec_got bytes), in order. */
static void spec_consume(struct exp_conn *c)
{
	uint32_t left = c->spec_got, len = c->spec_len;

	c->spec_got = 0;
	for (unsigned i = 0; i < c->spec_n && left; i++) {
		struct exp_req *r;
		uint32_t p;

		if (left < NVMK_NBD_REQ_LEN || c->dead || !exp_conn_can_read(c)) {
			/* a partial header, or nothing may be read now: staged */
			spec_stage_rest(c, i, 0, left, len);
			return;
		}
		/* the header through the ordinary path, from the (empty) stage */
		memcpy(c->stage + c->stage_len, c->spec_hdr[i], NVMK_NBD_REQ_LEN);
		c->stage_len += NVMK_NBD_REQ_LEN;
		left -= NVMK_NBD_REQ_LEN;
		read_header(c);
		r = c->rx_req;
		if (staged(c) || !r || r->slot != c->spec_slot[i] || r->r.length != len ||
		    r->rx_done || (r->state != REQ_RX && r->state != REQ_DISCARD)) {
			/* not the WRITE expected: the bytes after its header are the
			 * stream from there on; no receiving ahead until a new streak */
			spec_stage_rest(c, i, NVMK_NBD_REQ_LEN, left, len);
			c->spec_streak = 0;
			return;
		}
		c->stage_off = c->stage_len = 0;
		p = left < len ? left : len;
		r->rx_done = p;
		left -= p;
		if (p == len)
			payload_complete(c);
	}
}

/* A complete header is staged: read it and start its request. Returns
 * false when nothing more can be read now. */
static bool read_header(struct exp_conn *c)
{
	struct nvmk_nbd_request q;
	struct exp_req *r;
	uint32_t err;

	memcpy(c->hdr, c->stage + c->stage_off, NVMK_NBD_REQ_LEN);
	c->stage_off += NVMK_NBD_REQ_LEN;
	if (nvmk_nbd_request_decode(c->hdr, &q)) {
		/* framing lost: nothing after this can be trusted */
		nvmk_warn(cname(c), NVMK_LOG_NOQ,
			  "nbd conn %llu (%s): request without NBD_REQUEST_MAGIC: closing",
			  (unsigned long long)c->id, c->peer);
		c->rx_eof = true;
		conn_kill(c, "bad request magic");
		return false;
	}
	atomic_fetch_add_explicit(&c->requests, 1, memory_order_relaxed);
	spec_note(c, &q);
	if (q.type == NVMK_NBD_CMD_DISC) {
		/* proto.md: handle the outstanding requests, then close */
		c->disc = true;
		exp_conn_mark_dirty(c);
		return false;
	}
	r = exp_req_alloc(c->t, c); /* exp_conn_can_read guaranteed a slot */
	if (!r) {
		conn_kill(c, "no request slot");
		return false;
	}
	r->r = q;
	if (q.type == NVMK_NBD_CMD_WRITE && q.length > NVMK_NBD_WRITE_DISCARD_MAX &&
	    q.length > c->lim.max_block) {
		nvmk_warn(cname(c), NVMK_LOG_NOQ,
			  "nbd conn %llu (%s): WRITE of %u bytes (maximum %u): closing",
			  (unsigned long long)c->id, c->peer, q.length, c->lim.max_block);
		exp_req_free(c->t, r);
		c->rx_eof = true;
		conn_kill(c, "oversized write");
		return false;
	}
	if (c->shutting) {
		request_refuse(c, r, NVMK_NBD_ESHUTDOWN, "the server is shutting down");
		return true;
	}
	err = nvmk_nbd_request_check(&q, &c->lim);
	if (err) {
		request_refuse(c, r, err, refusal_text(err, &q, &c->lim));
		return true;
	}
	if (q.type == NVMK_NBD_CMD_WRITE) {
		r->state = REQ_RX;
		r->rx_done = 0;
		if (q.length == 0) {
			exp_req_payload_done(r);
			return true;
		}
		c->rx_req = r;
		return true;
	}
	exp_req_start(c, r);
	return true;
}

static bool read_transmission(struct exp_conn *c)
{
	struct exp_req *r = c->rx_req;
	size_t n;

	if (r) {
		uint32_t left = r->r.length - r->rx_done;

		if (!staged(c) && c->rx_short) {
			c->rx_short = false; /* drained: the next readiness event reads again */
			return false;
		}
		n = take_payload(c, r->state == REQ_RX ? (uint8_t *)exp_req_buf(r) + r->rx_done : NULL,
				 left);
		if (!n)
			return false;
		r->rx_done += (uint32_t)n;
		if (r->rx_done < r->r.length)
			return true;
		payload_complete(c);
		if (c->spec_got)
			spec_consume(c);
		return true;
	}
	if (staged(c) < NVMK_NBD_REQ_LEN && c->rx_short) {
		c->rx_short = false; /* the next readiness event reads again */
		return false;
	}
	if (!staged(c) && c->stage) {
		unsigned k = spec_depth(c);

		if (k) {
			/* a boundary in a WRITE stream: receive ahead, no staging copy */
			rx_payload_and_next(c, NULL, 0, k);
			if (!c->spec_got)
				return false;
			spec_consume(c);
			return true;
		}
	}
	if (staged(c) < NVMK_NBD_REQ_LEN && !stage_fill(c))
		return false;
	if (staged(c) < NVMK_NBD_REQ_LEN)
		return true; /* a partial header: more may be there already */
	return read_header(c);
}

void exp_conn_readable(struct exp_conn *c)
{
	/* bounded so that one busy connection does not starve the others */
	for (int i = 0; i < 64 && exp_conn_can_read(c); i++) {
		bool more = conn_state(c) < CONN_TRANS ? read_handshake(c) : read_transmission(c);

		if (!more)
			break;
	}
	exp_conn_mark_dirty(c);
}

/* ---- writing ---- */

static ssize_t tx(struct exp_conn *c, const void *p, size_t n)
{
	if (c->tls_ok)
		return exp_tls_send(c, p, n);
	return send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static bool tx_pending(const struct exp_conn *c)
{
	return c->hs_off < c->hs_len || c->txq_head != EXP_NONE;
}

/* Drop queued replies of a dead connection. */
static void tx_drop(struct exp_conn *c)
{
	while (c->txq_head != EXP_NONE) {
		struct exp_req *r = &c->t->reqs[c->txq_head];

		c->txq_head = r->next;
		exp_req_free(c->t, r);
	}
	c->txq_tail = EXP_NONE;
	c->hs_off = c->hs_len = 0;
}

void exp_conn_flush(struct exp_conn *c)
{
	if (c->dead) {
		tx_drop(c);
		return;
	}
	while (c->hs_off < c->hs_len) {
		ssize_t n = tx(c, c->hs_buf + c->hs_off, c->hs_len - c->hs_off);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR)
				continue;
			conn_kill(c, strerror(errno));
			tx_drop(c);
			return;
		}
		c->hs_off += (size_t)n;
	}
	c->hs_off = c->hs_len = 0;
	if (c->tls_pending) {
		/* the ACK of STARTTLS is out: everything from here on is TLS */
		c->tls_pending = false;
		if (exp_tls_start(c)) {
			conn_kill(c, "TLS session setup failed");
			return;
		}
		set_state(c, CONN_TLS_HANDSHAKE);
	}
	if (conn_state(c) == CONN_TLS_HANDSHAKE) {
		tls_step(c);
		return;
	}
	while (c->txq_head != EXP_NONE) {
		struct iovec iov[TX_IOV_MAX];
		int cnt = 0;
		ssize_t n;

		for (uint32_t s = c->txq_head; s != EXP_NONE && cnt + 2 <= TX_IOV_MAX;
		     s = c->t->reqs[s].next) {
			struct exp_req *r = &c->t->reqs[s];
			uint32_t done = r->tx_done;

			if (done < r->hdr_len) {
				iov[cnt].iov_base = r->hdr + done;
				iov[cnt++].iov_len = r->hdr_len - done;
				done = r->hdr_len;
			}
			if (r->data_len && done < r->hdr_len + r->data_len) {
				iov[cnt].iov_base = (uint8_t *)r->data + (done - r->hdr_len);
				iov[cnt++].iov_len = r->hdr_len + r->data_len - done;
			}
		}
		if (c->tls_ok) /* one record per buffer: GnuTLS has no gather send */
			n = exp_tls_send(c, iov[0].iov_base, iov[0].iov_len);
		else
			n = sendmsg(c->fd,
				    &(struct msghdr){.msg_iov = iov, .msg_iovlen = (size_t)cnt},
				    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR)
				continue;
			conn_kill(c, strerror(errno));
			tx_drop(c);
			return;
		}
		if (atomic_load_explicit(&c->t->srv->watch_first_reply, memory_order_relaxed))
			exp_note_first_reply(c->t->srv); /* servicing: the blackout ends */
		while (n > 0 && c->txq_head != EXP_NONE) {
			struct exp_req *r = &c->t->reqs[c->txq_head];
			uint32_t left = r->hdr_len + r->data_len - r->tx_done;

			if ((size_t)n < left) {
				r->tx_done += (uint32_t)n;
				break;
			}
			n -= left;
			c->txq_head = r->next;
			if (c->txq_head == EXP_NONE)
				c->txq_tail = EXP_NONE;
			exp_req_free(c->t, r);
		}
	}
}

/* ---- lifecycle ---- */

void exp_conn_start(struct exp_conn *c)
{
	uint8_t b[18];

	c->kind = EP_CONN;
	c->txq_head = c->txq_tail = EXP_NONE;
	c->meta_export = -1;
	c->deadline_ms = exp_now_ms() + c->t->srv->opts.handshake_timeout_ms;
	set_state(c, CONN_HS_FLAGS);
	/* proto.md "Newstyle negotiation": NBDMAGIC, IHAVEOPT, handshake flags */
	nvmk_nbd_put64(b, NVMK_NBD_INIT_MAGIC);
	nvmk_nbd_put64(b + 8, NVMK_NBD_OPTS_MAGIC);
	nvmk_nbd_put16(b + 16, NVMK_NBD_FLAG_FIXED_NEWSTYLE | NVMK_NBD_FLAG_NO_ZEROES);
	hs_append(c, b, sizeof(b));
}

void exp_conn_close(struct exp_conn *c)
{
	struct exp_thread *t = c->t;
	struct exp_conn **pp;

	epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	exp_tls_close(c);
	close(c->fd);
	pthread_mutex_lock(&t->lock);
	for (pp = &t->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	pthread_mutex_unlock(&t->lock);
	atomic_fetch_sub(&t->nconns, 1);
	atomic_fetch_sub(&t->srv->nconns, 1);
	if (c->exp)
		atomic_fetch_sub(&c->exp->dev->conns, 1);
	nvmk_info(cname(c), NVMK_LOG_NOQ, "nbd conn %llu (%s): closed after %llu requests",
		  (unsigned long long)c->id, c->peer,
		  (unsigned long long)atomic_load(&c->requests));
	free(c->opt_data);
	free(c->hs_buf);
	free(c->stage);
	free(c);
}

/* Whether @c is done: closed by the caller when true. */
static bool conn_finished(struct exp_conn *c, uint64_t now)
{
	unsigned inflight = atomic_load_explicit(&c->inflight, memory_order_relaxed);
	int s = conn_state(c);

	if (c->deadline_ms && now >= c->deadline_ms && !c->dead)
		conn_kill(c, s < CONN_TRANS ? "handshake timed out" : "grace period over");
	if (c->dead) {
		/* out of epoll: a hung-up socket would wake the loop (EPOLLHUP cannot
		 * be masked) while its NVMe commands finish */
		if (c->ep_events != UINT32_MAX) {
			epoll_ctl(c->t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
			c->ep_events = UINT32_MAX;
		}
		if (c->rx_req) {
			struct exp_req *r = c->rx_req;

			c->rx_req = NULL;
			exp_req_free(c->t, r);
		}
		tx_drop(c);
		/* NVMe commands still in flight reference the connection */
		return atomic_load_explicit(&c->inflight, memory_order_relaxed) == 0;
	}
	if (c->rx_eof && c->rx_req && !staged(c)) {
		/* the client went away in the middle of a payload */
		conn_kill(c, "end of stream inside a request payload");
		return false;
	}
	if (tx_pending(c))
		return false;
	if (s < CONN_TRANS)
		return c->abort_after_tx || c->rx_eof || c->shutting;
	if (inflight)
		return false;
	/* stopping: a client still sending gets ESHUTDOWN for each request it
	 * sent, and the connection closes once it has been quiet a moment (or
	 * disconnects, as proto.md asks of it after ESHUTDOWN) */
	return c->disc || (c->rx_eof && !staged(c)) ||
	       (c->shutting && c->rx_idle && !staged(c) && now - c->last_rx_ms >= EXP_QUIET_MS);
}

static void update_events(struct exp_conn *c)
{
	uint32_t ev = (exp_conn_can_read(c) ? EPOLLIN : 0) |
		      (tx_pending(c) || (conn_state(c) == CONN_TLS_HANDSHAKE && exp_tls_wants_write(c))
			   ? EPOLLOUT
			   : 0);

	if (ev == c->ep_events || c->ep_events == UINT32_MAX)
		return;
	c->ep_events = ev;
	epoll_ctl(c->t->epfd, EPOLL_CTL_MOD, c->fd,
		  &(struct epoll_event){.events = ev, .data.ptr = c});
}

bool exp_conn_finish_iteration(struct exp_thread *t)
{
	uint64_t now = exp_now_ms();
	bool more = false;

	/* requests already staged that may start now (slots came back): the
	 * socket may have nothing more, so epoll would not say so */
	for (struct exp_conn *c = t->conns; c; c = c->next)
		if (((conn_state(c) >= CONN_TRANS && staged(c) >= NVMK_NBD_REQ_LEN && !c->rx_req) ||
		     exp_tls_pending(c)) &&
		    exp_conn_can_read(c))
			exp_conn_readable(c);
	while (t->dirty) {
		struct exp_conn *c = t->dirty;

		/* c->dirty stays set while it is handled, so that nothing puts it on
		 * the list again (it may be closed and freed here) */
		t->dirty = c->dirty_next;
		if (!c->dead && tx_pending(c))
			exp_conn_flush(c);
		if (conn_finished(c, now)) {
			exp_conn_close(c);
			continue;
		}
		c->dirty = false;
		update_events(c);
	}
	/* slots came back: connections that waited for one may read again */
	for (struct exp_conn *c = t->conns; c; c = c->next) {
		update_events(c);
		if (((conn_state(c) >= CONN_TRANS && staged(c) >= NVMK_NBD_REQ_LEN) ||
		     exp_tls_pending(c)) &&
		    exp_conn_can_read(c))
			more = true;
	}
	return more;
}
