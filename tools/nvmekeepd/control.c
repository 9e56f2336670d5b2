// SPDX-License-Identifier: MIT
/*
 * Control socket. A unix socket of mode 0600 whose peers are checked with
 * SO_PEERCRED (root or the daemon's own user). Requests are JSON objects,
 * one per line: {"verb": "status"}, {"verb": "add", "device": "emu:/x.img"},
 * {"verb": "remove", "device": "emu", "force": true}, {"verb": "stop"}.
 * Replies: {"ok": true, ...} or {"ok": false, "error": "...", "errno": N}.
 * A malformed line, an unknown verb or a line over NVMKD_CONTROL_LINE_MAX
 * gets an error reply and the connection stays usable.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "devices.h"
#include "nvmekeep/log.h"

#define MAX_CLIENTS 16

struct client {
	int fd;
	char *buf; /* NVMKD_CONTROL_LINE_MAX + 1 */
	size_t len;
	bool overflow; /* dropping the rest of an oversized line */
};

struct nvmkd_control {
	int fd, epfd;
	char path[108];
	struct nvmkd_ctx *ctx;
	struct client clients[MAX_CLIENTS];
};

static char *reply_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *reply_error(int err, const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char msg[1024];
	char *s;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "errno", json_object_new_int(err));
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

static char *reply_ok(json_object *o)
{
	char *s;

	json_object_object_add(o, "ok", json_object_new_boolean(1));
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

static char *verb_status(struct nvmkd_ctx *ctx)
{
	json_object *o = json_object_new_object();
	char *mj = NULL, *ej = NULL;

	if (nvmk_mgr_status_json(ctx->mgr, &mj) || nvmk_export_status_json(ctx->srv, &ej)) {
		free(mj);
		free(ej);
		json_object_put(o);
		return reply_error(ENOMEM, "status: out of memory");
	}
	json_object_object_add(o, "manager", json_tokener_parse(mj));
	json_object_object_add(o, "export", json_tokener_parse(ej));
	if (ctx->service_refresh)
		ctx->service_refresh(ctx);
	if (ctx->service_status[0])
		json_object_object_add(o, "servicing", json_tokener_parse(ctx->service_status));
	free(mj);
	free(ej);
	return reply_ok(o);
}

static char *verb_add(struct nvmkd_ctx *ctx, const char *dev)
{
	struct nvmkd_dev_spec ds;
	char err[1024];
	int rc;

	if (nvmkd_dev_spec_make(dev, ctx->io_queues, &ds, err, sizeof(err)))
		return reply_error(EINVAL, "%s", err);
	dev = ds.id;
	rc = nvmk_mgr_add_device(ctx->mgr, &ds.spec);
	/* -EEXIST: registered already (given with --device and not removed),
	 * only the export is missing */
	if (rc && rc != -EEXIST)
		return reply_error(-rc, "add %s: %s", dev, strerror(-rc));
	rc = nvmk_export_add_device(ctx->srv, dev);
	if (rc)
		return reply_error(-rc, "export %s: %s", dev, strerror(-rc));
	json_object *o = json_object_new_object();

	json_object_object_add(o, "device", json_object_new_string(dev));
	return reply_ok(o);
}

/* The id a device string names (a PCI function given as BB:DD.F is known
 * by its full address); any other string as given. */
static const char *device_id(const char *dev, struct nvmk_dev_spec *ds)
{
	return !nvmk_dev_spec_parse(dev, ds, NULL, 0) && ds->kind == NVMK_DEV_PCI ? ds->pci_addr
										   : dev;
}

/* Stop exporting (refused while clients are connected unless @force, which
 * disconnects them with ESHUTDOWN), then unregister from the manager:
 * namespace handles closed, CC.SHN, pool blocks and backing released. */
static char *verb_remove(struct nvmkd_ctx *ctx, const char *dev, bool force)
{
	struct nvmk_dev_spec ds;
	const char *id = device_id(dev, &ds);
	int rc = nvmk_export_remove_device(ctx->srv, id, force);
	int mrc;

	if (rc == -EBUSY)
		return reply_error(EBUSY, "remove %s: clients are connected (--force disconnects "
					  "them with ESHUTDOWN)",
				   dev);
	if (rc && rc != -ENOENT)
		return reply_error(-rc, "remove %s: %s", dev, strerror(-rc));
	/* the export let go of its queue pairs and buffers: what still holds
	 * the device is someone else's, refused unless forced */
	mrc = nvmk_mgr_remove_device(ctx->mgr, id, force);
	if (mrc == -ENOENT && rc == -ENOENT)
		return reply_error(ENOENT, "remove %s: no such device", dev);
	if (mrc == -EBUSY)
		return reply_error(EBUSY, "remove %s: the device is in use (--force closes it)",
				   dev);
	if (mrc && mrc != -ENOENT)
		return reply_error(-mrc, "remove %s: %s", dev, strerror(-mrc));
	json_object *o = json_object_new_object();

	json_object_object_add(o, "device", json_object_new_string(id));
	return reply_ok(o);
}

char *nvmkd_handle_request(struct nvmkd_ctx *ctx, const char *line, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *req, *v;
	const char *verb, *dev = NULL;
	char *out;

	if (!tok)
		return reply_error(ENOMEM, "out of memory");
	req = json_tokener_parse_ex(tok, line, (int)len);
	if (!req || json_tokener_get_error(tok) != json_tokener_success ||
	    tok->char_offset != (int)len) {
		json_tokener_free(tok);
		if (req)
			json_object_put(req);
		return reply_error(EINVAL, "malformed JSON: one object per line is expected, "
					   "e.g. {\"verb\": \"status\"}");
	}
	json_tokener_free(tok);
	if (!json_object_is_type(req, json_type_object) ||
	    !json_object_object_get_ex(req, "verb", &v) || !json_object_is_type(v, json_type_string)) {
		json_object_put(req);
		return reply_error(EINVAL, "the request has no \"verb\" string (status, add, "
					   "remove, stop)");
	}
	verb = json_object_get_string(v);
	if (json_object_object_get_ex(req, "device", &v) && json_object_is_type(v, json_type_string))
		dev = json_object_get_string(v);
	if (!strcmp(verb, "status")) {
		out = verb_status(ctx);
	} else if (!strcmp(verb, "add") || !strcmp(verb, "remove")) {
		bool force = json_object_object_get_ex(req, "force", &v) && json_object_get_boolean(v);

		if (!dev)
			out = reply_error(EINVAL, "%s needs a \"device\" string", verb);
		else
			out = verb[0] == 'a' ? verb_add(ctx, dev) : verb_remove(ctx, dev, force);
	} else if (!strcmp(verb, "stop")) {
		ctx->stop = true;
		out = reply_ok(json_object_new_object());
	} else if (!strcmp(verb, "service")) {
		const char *exec = NULL;
		int64_t tmo = 10000;

		if (json_object_object_get_ex(req, "exec", &v) && json_object_is_type(v, json_type_string))
			exec = json_object_get_string(v);
		if (json_object_object_get_ex(req, "timeout_ms", &v))
			tmo = json_object_get_int64(v);
		if (!ctx->service_fn)
			out = reply_error(EOPNOTSUPP, "servicing is not available in this process");
		else if (tmo < 1 || tmo > 3600000)
			out = reply_error(EINVAL, "timeout_ms %lld: expected 1 to 3600000",
					  (long long)tmo);
		else
			out = ctx->service_fn(ctx, exec, (unsigned)tmo); /* returns only on failure */
	} else {
		out = reply_error(EINVAL,
				  "unknown verb '%.64s': expected status, add, remove, stop or service",
				  verb);
	}
	json_object_put(req);
	return out;
}

int nvmkd_control_open(const char *path, struct nvmkd_ctx *ctx, struct nvmkd_control **out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct nvmkd_control *c;
	struct stat st;
	mode_t old;
	int rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "nvmekeepd: control socket path too long: %s\n", path);
		return -ENAMETOOLONG;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ctx = ctx;
	for (int i = 0; i < MAX_CLIENTS; i++)
		c->clients[i].fd = -1;
	strcpy(sa.sun_path, path);
	strcpy(c->path, path);
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	old = umask(0077); /* the socket is created 0600: no window with wider access */
	rc = c->fd < 0 || c->epfd < 0 || bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) ||
		     chmod(path, 0600) || listen(c->fd, 16)
		 ? -errno
		 : 0;
	umask(old);
	if (!rc && epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->fd,
			     &(struct epoll_event){.events = EPOLLIN, .data.u32 = MAX_CLIENTS}))
		rc = -errno;
	if (rc) {
		fprintf(stderr, "nvmekeepd: control socket %s: %s\n", path, strerror(-rc));
		if (c->fd >= 0)
			close(c->fd);
		if (c->epfd >= 0)
			close(c->epfd);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int nvmkd_control_adopt(int fd, const char *path, struct nvmkd_ctx *ctx,
			struct nvmkd_control **out)
{
	struct nvmkd_control *c;
	struct stat st;

	if (fd < 0 || fstat(fd, &st) || !S_ISSOCK(st.st_mode) || strlen(path) >= sizeof(c->path))
		return -EBADF;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ctx = ctx;
	for (int i = 0; i < MAX_CLIENTS; i++)
		c->clients[i].fd = -1;
	strcpy(c->path, path);
	c->fd = fd;
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->epfd < 0 || epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->fd,
				     &(struct epoll_event){.events = EPOLLIN, .data.u32 = MAX_CLIENTS})) {
		int rc = -errno;

		if (c->epfd >= 0)
			close(c->epfd);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int nvmkd_control_listen_fd(const struct nvmkd_control *c)
{
	return c->fd;
}

int nvmkd_control_fd(const struct nvmkd_control *c)
{
	return c->epfd;
}

static void client_close(struct nvmkd_control *c, struct client *cl)
{
	epoll_ctl(c->epfd, EPOLL_CTL_DEL, cl->fd, NULL);
	close(cl->fd);
	free(cl->buf);
	cl->buf = NULL;
	cl->fd = -1;
}

static void send_all(int fd, const char *s)
{
	size_t n = strlen(s), off = 0;

	/* replies are small; the client reads them: a blocking send is fine */
	while (off < n) {
		ssize_t w = send(fd, s + off, n - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EAGAIN) {
			usleep(1000);
			continue;
		}
		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

static void client_reply(struct client *cl, char *reply)
{
	if (!reply)
		return;
	send_all(cl->fd, reply);
	send_all(cl->fd, "\n");
	free(reply);
}

static void accept_client(struct nvmkd_control *c)
{
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	/* the file mode already limits access; check the peer as well */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) ||
	    (cr.uid != 0 && cr.uid != geteuid())) {
		nvmk_warn("control", NVMK_LOG_NOQ, "control connection from uid %u refused",
			  (unsigned)cr.uid);
		close(fd);
		return;
	}
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *k = &c->clients[i];

		if (k->fd >= 0)
			continue;
		k->buf = malloc(NVMKD_CONTROL_LINE_MAX + 1);
		if (!k->buf)
			break;
		k->fd = fd;
		k->len = 0;
		k->overflow = false;
		epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd,
			  &(struct epoll_event){.events = EPOLLIN, .data.u32 = (uint32_t)i});
		return;
	}
	close(fd);
}

static void client_read(struct nvmkd_control *c, struct client *cl)
{
	for (;;) {
		ssize_t n = recv(cl->fd, cl->buf + cl->len, NVMKD_CONTROL_LINE_MAX - cl->len, 0);
		char *nl;

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			client_close(c, cl);
			return;
		}
		if (n < 0)
			return;
		cl->len += (size_t)n;
		while ((nl = memchr(cl->buf, '\n', cl->len))) {
			size_t ll = (size_t)(nl - cl->buf);

			if (cl->overflow)
				cl->overflow = false; /* the end of the oversized line */
			else if (ll) {
				c->ctx->req_fd = cl->fd;
				client_reply(cl, nvmkd_handle_request(c->ctx, cl->buf, ll));
				c->ctx->req_fd = -1;
			}
			memmove(cl->buf, nl + 1, cl->len - ll - 1);
			cl->len -= ll + 1;
		}
		if (cl->len == NVMKD_CONTROL_LINE_MAX) {
			if (!cl->overflow)
				client_reply(cl, reply_error(E2BIG, "request line longer than %d bytes",
							     NVMKD_CONTROL_LINE_MAX));
			cl->overflow = true;
			cl->len = 0;
		}
	}
}

void nvmkd_control_run(struct nvmkd_control *c)
{
	struct epoll_event ev[8];
	int n = epoll_wait(c->epfd, ev, 8, 0);

	for (int i = 0; i < n; i++) {
		uint32_t k = ev[i].data.u32;

		if (k == MAX_CLIENTS)
			accept_client(c);
		else if (c->clients[k].fd >= 0)
			client_read(c, &c->clients[k]);
	}
}

void nvmkd_control_close(struct nvmkd_control *c)
{
	if (!c)
		return;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (c->clients[i].fd >= 0)
			client_close(c, &c->clients[i]);
	close(c->fd);
	close(c->epfd);
	unlink(c->path);
	free(c);
}
