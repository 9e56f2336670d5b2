/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the vfio-user tests: run nvmekeep-emu from the build tree
 * (NVMK_EMU_BIN) on a socket in a fresh mkdtemp directory, talk to its
 * control socket, stop it. Every wait is bounded.
 */
#ifndef NVMK_VFU_TEST_H
#define NVMK_VFU_TEST_H

#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct tsrv {
	char dir[64];
	char sock[96];
	char ctl[96];
	pid_t pid;
};

static inline void tsleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static inline int unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

/* Start the server with @extra arguments (NULL-terminated list). 0 or -errno. */
static inline int tsrv_start(struct tsrv *t, ...)
{
	const char *bin = getenv("NVMK_EMU_BIN");
	const char *argv[32];
	unsigned n = 0;
	va_list ap;

	memset(t, 0, sizeof(*t));
	if (!bin)
		return -ENOENT;
	snprintf(t->dir, sizeof(t->dir), "/tmp/nvmk-vfu-XXXXXX");
	if (!mkdtemp(t->dir))
		return -errno;
	snprintf(t->sock, sizeof(t->sock), "%s/s", t->dir);
	snprintf(t->ctl, sizeof(t->ctl), "%s/c", t->dir);
	argv[n++] = bin;
	argv[n++] = "--socket";
	argv[n++] = t->sock;
	argv[n++] = "--control";
	argv[n++] = t->ctl;
	va_start(ap, t);
	for (const char *a; n < 30 && (a = va_arg(ap, const char *));)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	t->pid = fork();
	if (t->pid < 0)
		return -errno;
	if (t->pid == 0) {
		/* a failed test must not leave a server behind */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	/* ready when the control socket answers (it is made after the main one) */
	for (int i = 0; i < 500; i++) {
		int fd = unix_connect(t->ctl);

		if (fd >= 0) {
			close(fd);
			return 0;
		}
		tsleep_ms(10);
	}
	return -ETIMEDOUT;
}

/* SIGTERM (or @sig), wait up to 5 s, then SIGKILL. Returns the exit status. */
static inline int tsrv_stop_sig(struct tsrv *t, int sig)
{
	int st = -1;

	if (t->pid <= 0)
		return -1;
	kill(t->pid, sig);
	for (int i = 0; i < 500; i++) {
		if (waitpid(t->pid, &st, WNOHANG) == t->pid)
			goto done;
		tsleep_ms(10);
	}
	kill(t->pid, SIGKILL);
	waitpid(t->pid, &st, 0);
done:
	t->pid = 0;
	unlink(t->sock);
	unlink(t->ctl);
	rmdir(t->dir);
	return st;
}

static inline int tsrv_stop(struct tsrv *t)
{
	return tsrv_stop_sig(t, SIGTERM);
}

/* One control request line; the reply object (caller puts it) or NULL. */
static inline json_object *tsrv_ctl(struct tsrv *t, const char *line)
{
	char buf[65536];
	size_t got = 0;
	int fd = unix_connect(t->ctl);
	struct timeval tv = {5, 0};

	if (fd < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (write(fd, line, strlen(line)) < 0 || write(fd, "\n", 1) < 0) {
		close(fd);
		return NULL;
	}
	while (got < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(buf, '\n', got))
			break;
	}
	close(fd);
	buf[got] = 0;
	return json_tokener_parse(buf);
}

/* controllers[0].@key (an integer), or @key "admin.0xNN" / "io.0xNN". -1 on error. */
static inline long long tsrv_stat(struct tsrv *t, const char *key)
{
	json_object *r = tsrv_ctl(t, "{\"cmd\":\"stats\"}"), *c, *v, *m;
	long long out = -1;

	if (!r)
		return -1;
	if (json_object_object_get_ex(r, "controllers", &c) &&
	    (c = json_object_array_get_idx(c, 0))) {
		if (!strncmp(key, "admin.", 6) || !strncmp(key, "io.", 3)) {
			bool admin = key[0] == 'a';

			if (json_object_object_get_ex(c, admin ? "admin_commands" : "io_commands",
						      &m))
				out = json_object_object_get_ex(m, key + (admin ? 6 : 3), &v)
					  ? json_object_get_int64(v)
					  : 0;
		} else if (!strcmp(key, "client.connected")) {
			if (json_object_object_get_ex(c, "client", &m) &&
			    json_object_object_get_ex(m, "connected", &v))
				out = json_object_get_boolean(v);
		} else if (json_object_object_get_ex(c, key, &v)) {
			out = json_object_get_int64(v);
		}
	}
	json_object_put(r);
	return out;
}

/* Wait up to 5 s for stat @key to read @want (the server handles a
 * disconnect asynchronously); returns the last value read. */
static inline long long tsrv_wait_stat(struct tsrv *t, const char *key, long long want)
{
	long long v = tsrv_stat(t, key);

	for (int i = 0; i < 500 && v != want; i++) {
		tsleep_ms(10);
		v = tsrv_stat(t, key);
	}
	return v;
}

/* {"ok":true} for @line? */
static inline bool tsrv_ok(struct tsrv *t, const char *line)
{
	json_object *r = tsrv_ctl(t, line), *ok;
	bool res = r && json_object_object_get_ex(r, "ok", &ok) && json_object_get_boolean(ok);

	json_object_put(r);
	return res;
}

#endif /* NVMK_VFU_TEST_H */
