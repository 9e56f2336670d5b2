// SPDX-License-Identifier: MIT
/*
 * --control PATH: one JSON object per line in, one per line out (the
 * daemon's convention). Requests:
 *   {"cmd":"stats"}
 *   {"cmd":"fault","kind":K[,"qid":N][,"opcode":N][,"skip":N][,"count":N]
 *                 [,"delay_us":N][,"status":N]}
 *       K: the emulator's fault kinds (include/nvmekeep/emu.h): delay, hang,
 *       drop-irq, status, bad-cid, bad-phase, bad-sqhd, duplicate, fatal,
 *       remove; and clear (remove every rule), fatal-now, remove-now.
 * Replies: {"ok":true,...} or {"ok":false,"error":"..."}.
 * Served on its own thread; one request line is at most 4 KiB.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "nvmekeep/log.h"
#include "server.h"

#define LINE_MAX_BYTES 4096
#define MAX_CONN       8

static struct {
	struct srv *s;
	int fd;
	int stop_pipe[2];
	pthread_t thread;
	bool running;
	char path[108];
} ctl = {.fd = -1};

static const struct {
	const char *name;
	enum nvmk_emu_fault_kind kind;
} fault_kinds[] = {
    {"delay", NVMK_FAULT_DELAY},       {"hang", NVMK_FAULT_HANG},
    {"drop-irq", NVMK_FAULT_DROP_IRQ}, {"status", NVMK_FAULT_STATUS},
    {"bad-cid", NVMK_FAULT_BAD_CID},   {"bad-phase", NVMK_FAULT_BAD_PHASE},
    {"bad-sqhd", NVMK_FAULT_BAD_SQHD}, {"duplicate", NVMK_FAULT_DUPLICATE},
    {"fatal", NVMK_FAULT_FATAL},       {"remove", NVMK_FAULT_REMOVE},
};

static json_object *error_reply(const char *fmt, const char *arg)
{
	json_object *r = json_object_new_object();
	char msg[256];

	snprintf(msg, sizeof(msg), fmt, arg);
	json_object_object_add(r, "ok", json_object_new_boolean(0));
	json_object_object_add(r, "error", json_object_new_string(msg));
	return r;
}

static json_object *stats_reply(struct srv *s)
{
	json_object *r = json_object_new_object(), *c = json_object_new_object();
	json_object *admin = json_object_new_object(), *io = json_object_new_object();
	json_object *arr = json_object_new_array(), *client = json_object_new_object();
	uint64_t io_total = 0;
	unsigned nmaps;

	for (unsigned opc = 0; opc < 256; opc++) {
		uint64_t a = nvmk_emu_cmd_count(s->emu, true, (uint8_t)opc);
		uint64_t i = nvmk_emu_cmd_count(s->emu, false, (uint8_t)opc);
		char key[8];

		snprintf(key, sizeof(key), "0x%02x", opc);
		if (a)
			json_object_object_add(admin, key, json_object_new_int64((int64_t)a));
		if (i)
			json_object_object_add(io, key, json_object_new_int64((int64_t)i));
		io_total += i;
	}
	pthread_rwlock_rdlock(&s->map_lock);
	nmaps = s->nmaps;
	pthread_rwlock_unlock(&s->map_lock);
	json_object_object_add(c, "name", json_object_new_string(s->name));
	json_object_object_add(c, "cc_enables",
			       json_object_new_int64((int64_t)atomic_load(&s->stats.cc_enables)));
	json_object_object_add(c, "resets",
			       json_object_new_int64((int64_t)nvmk_emu_reset_count(s->emu)));
	json_object_object_add(
	    c, "function_resets",
	    json_object_new_int64((int64_t)atomic_load(&s->stats.function_resets)));
	json_object_object_add(c, "admin_commands", admin);
	json_object_object_add(c, "io_commands", io);
	json_object_object_add(c, "io_commands_total", json_object_new_int64((int64_t)io_total));
	json_object_object_add(client, "connected",
			       json_object_new_boolean(atomic_load(&s->client_fd) >= 0));
	json_object_object_add(client, "pid", json_object_new_int(s->client_pid));
	json_object_object_add(c, "client", client);
	json_object_object_add(c, "connections",
			       json_object_new_int64((int64_t)atomic_load(&s->stats.connections)));
	json_object_object_add(c, "dma_maps", json_object_new_int((int)nmaps));
	json_object_object_add(c, "mapped_dma_bytes",
			       json_object_new_int64((int64_t)atomic_load(&s->mapped_bytes)));
	json_object_object_add(
	    c, "protocol_errors",
	    json_object_new_int64((int64_t)atomic_load(&s->stats.protocol_errors)));
	json_object_object_add(
	    c, "resume_refused",
	    json_object_new_int64((int64_t)atomic_load(&s->stats.resume_refused)));
	json_object_object_add(c, "adopted",
			       json_object_new_int64((int64_t)atomic_load(&s->stats.adopted)));
	json_object_object_add(c, "persist", json_object_new_boolean(s->persist));
	json_object_object_add(c, "resume_memory", json_object_new_boolean(s->keep_memory));
	json_object_array_add(arr, c);
	json_object_object_add(r, "ok", json_object_new_boolean(1));
	json_object_object_add(r, "controllers", arr);
	return r;
}

/* An optional non-negative integer field; false (and an error) when present but bad. */
static bool opt_u64(json_object *req, const char *key, uint64_t *out)
{
	json_object *v;

	if (!json_object_object_get_ex(req, key, &v))
		return true;
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return false;
	*out = (uint64_t)json_object_get_int64(v);
	return true;
}

static json_object *fault_reply(struct srv *s, json_object *req)
{
	struct nvmk_emu_fault f = {.qid = NVMK_FAULT_ANY_QID, .opcode = NVMK_FAULT_ANY_OPC};
	uint64_t qid = f.qid, opc = f.opcode, skip = 0, count = 0, delay = 0, status = 0;
	json_object *k, *r;
	const char *kind;
	int id;

	if (!json_object_object_get_ex(req, "kind", &k) ||
	    !json_object_is_type(k, json_type_string))
		return error_reply("%s", "fault needs \"kind\" (a string)");
	kind = json_object_get_string(k);
	if (!strcmp(kind, "clear")) {
		nvmk_emu_fault_clear(s->emu);
		id = 0;
		goto ok;
	}
	if (!strcmp(kind, "fatal-now")) {
		nvmk_emu_set_fatal(s->emu);
		id = 0;
		goto ok;
	}
	if (!strcmp(kind, "remove-now")) {
		nvmk_emu_surprise_remove(s->emu);
		id = 0;
		goto ok;
	}
	f.kind = 0;
	for (size_t i = 0; i < sizeof(fault_kinds) / sizeof(fault_kinds[0]); i++)
		if (!strcmp(kind, fault_kinds[i].name))
			f.kind = fault_kinds[i].kind;
	if (!f.kind)
		return error_reply(
		    "unknown fault kind '%s': expected delay, hang, drop-irq, status, "
		    "bad-cid, bad-phase, bad-sqhd, duplicate, fatal, remove, clear, "
		    "fatal-now or remove-now",
		    kind);
	if (!opt_u64(req, "qid", &qid) || !opt_u64(req, "opcode", &opc) ||
	    !opt_u64(req, "skip", &skip) || !opt_u64(req, "count", &count) ||
	    !opt_u64(req, "delay_us", &delay) || !opt_u64(req, "status", &status) ||
	    qid > UINT32_MAX || (opc > 255 && opc != NVMK_FAULT_ANY_OPC) || skip > UINT32_MAX ||
	    count > UINT32_MAX || status > 0xffff)
		return error_reply("%s", "qid, opcode (0-255), skip, count, delay_us and status "
					 "(0-65535) must be non-negative integers");
	f.qid = (uint32_t)qid;
	f.opcode = (uint32_t)opc;
	f.skip = (uint32_t)skip;
	f.count = (uint32_t)count;
	f.delay_us = delay;
	f.status = (uint16_t)status;
	id = nvmk_emu_fault_add(s->emu, &f);
	if (id < 0)
		return error_reply("fault rule refused: %s", strerror(-id));
ok:
	r = json_object_new_object();
	json_object_object_add(r, "ok", json_object_new_boolean(1));
	json_object_object_add(r, "id", json_object_new_int(id));
	return r;
}

static json_object *handle_line(struct srv *s, const char *line)
{
	json_object *req = json_tokener_parse(line), *cmd, *r;
	const char *c;

	if (!req || !json_object_is_type(req, json_type_object)) {
		json_object_put(req);
		return error_reply("%s", "request is not a JSON object");
	}
	if (!json_object_object_get_ex(req, "cmd", &cmd) ||
	    !json_object_is_type(cmd, json_type_string)) {
		json_object_put(req);
		return error_reply("%s", "request needs \"cmd\": \"stats\" or \"fault\"");
	}
	c = json_object_get_string(cmd);
	if (!strcmp(c, "stats"))
		r = stats_reply(s);
	else if (!strcmp(c, "fault"))
		r = fault_reply(s, req);
	else
		r = error_reply("unknown cmd '%s': expected stats or fault", c);
	json_object_put(req);
	return r;
}

struct conn {
	int fd;
	size_t len;
	char buf[LINE_MAX_BYTES];
};

static void conn_send(int fd, json_object *r)
{
	const char *t = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN);
	size_t n = strlen(t);

	if (send(fd, t, n, MSG_NOSIGNAL) < 0 || send(fd, "\n", 1, MSG_NOSIGNAL) < 0)
		nvmk_debug(ctl.s->name, NVMK_LOG_NOQ, "control reply lost: %d", -errno);
	json_object_put(r);
}

/* Read what is there; answer each complete line. false: close the connection. */
static bool conn_read(struct conn *c)
{
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	char *nl;

	if (n <= 0)
		return false;
	c->len += (size_t)n;
	while ((nl = memchr(c->buf, '\n', c->len))) {
		*nl = 0;
		conn_send(c->fd, handle_line(ctl.s, c->buf));
		c->len -= (size_t)(nl + 1 - c->buf);
		memmove(c->buf, nl + 1, c->len);
	}
	if (c->len == sizeof(c->buf)) {
		conn_send(c->fd, error_reply("%s", "request line longer than 4096 bytes"));
		return false;
	}
	return true;
}

static void *control_thread(void *arg)
{
	struct conn *conns[MAX_CONN] = {0};

	(void)arg;
	for (;;) {
		struct pollfd pf[MAX_CONN + 2];
		unsigned n = 0;

		pf[n++] = (struct pollfd){ctl.stop_pipe[0], POLLIN, 0};
		pf[n++] = (struct pollfd){ctl.fd, POLLIN, 0};
		for (unsigned i = 0; i < MAX_CONN; i++)
			pf[n++] = (struct pollfd){conns[i] ? conns[i]->fd : -1, POLLIN, 0};
		if (poll(pf, n, -1) < 0)
			continue;
		if (pf[0].revents)
			break;
		if (pf[1].revents) {
			int fd = accept4(ctl.fd, NULL, NULL, SOCK_CLOEXEC);
			unsigned i;

			for (i = 0; fd >= 0 && i < MAX_CONN; i++) {
				if (!conns[i]) {
					conns[i] = calloc(1, sizeof(*conns[i]));
					if (conns[i])
						conns[i]->fd = fd;
					break;
				}
			}
			if (fd >= 0 && (i == MAX_CONN || !conns[i]))
				close(fd);
		}
		for (unsigned i = 0; i < MAX_CONN; i++) {
			if (conns[i] && pf[2 + i].revents && !conn_read(conns[i])) {
				close(conns[i]->fd);
				free(conns[i]);
				conns[i] = NULL;
			}
		}
	}
	for (unsigned i = 0; i < MAX_CONN; i++) {
		if (conns[i]) {
			close(conns[i]->fd);
			free(conns[i]);
		}
	}
	return NULL;
}

int srv_control_start(struct srv *s, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "nvmekeep-emu: control socket path too long: %s\n", path);
		return -ENAMETOOLONG;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			fprintf(stderr, "nvmekeep-emu: %s exists and is not a socket\n", path);
			return -EEXIST;
		}
		unlink(path);
	}
	strcpy(sa.sun_path, path);
	snprintf(ctl.path, sizeof(ctl.path), "%s", path);
	ctl.s = s;
	ctl.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ctl.fd < 0 || bind(ctl.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(ctl.fd, 8) < 0 || pipe2(ctl.stop_pipe, O_CLOEXEC) < 0) {
		fprintf(stderr, "nvmekeep-emu: control socket %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (pthread_create(&ctl.thread, NULL, control_thread, NULL))
		return -EAGAIN;
	ctl.running = true;
	return 0;
}

void srv_control_stop(void)
{
	if (!ctl.running)
		return;
	if (write(ctl.stop_pipe[1], "x", 1) < 0)
		return;
	pthread_join(ctl.thread, NULL);
	close(ctl.fd);
	close(ctl.stop_pipe[0]);
	close(ctl.stop_pipe[1]);
	unlink(ctl.path);
	ctl.running = false;
}
