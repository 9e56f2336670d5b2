/* SPDX-License-Identifier: MIT */
/*
 * The client side of the control sockets of nvmekeepd and nvmekeep-emu (one
 * JSON object per line each way): connect, send one request line, read one
 * reply line, each failure said once with the socket it concerns.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"

int cli_ctl_connect(const char *cmd, const char *what, const char *path, const char *hint)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, e;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr,
			"nvmekeep %s: control socket path too long (at most %zu bytes): %s\n", cmd,
			sizeof(sa.sun_path) - 1, path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	e = -errno;
	fprintf(stderr, "nvmekeep %s: cannot reach %s at %s: %s%s%s%s\n", cmd, what, path,
		strerror(-e), hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
	if (fd >= 0)
		close(fd);
	return e;
}

int cli_ctl_send(const char *cmd, int fd, const char *path, json_object *req)
{
	const char *s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN |
								JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t n = strlen(s);

	if (send(fd, s, n, MSG_NOSIGNAL) == (ssize_t)n && send(fd, "\n", 1, MSG_NOSIGNAL) == 1)
		return 0;
	fprintf(stderr, "nvmekeep %s: sending to %s: %s\n", cmd, path, strerror(errno));
	return -EIO;
}

json_object *cli_ctl_recv(const char *cmd, int fd, const char *path, size_t max, int timeout_ms,
			  const char *closed_hint)
{
	char *buf = malloc(max);
	size_t have = 0;
	json_object *r;

	if (!buf) {
		fprintf(stderr, "nvmekeep %s: out of memory\n", cmd);
		return NULL;
	}
	while (have < max - 1) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, timeout_ms) <= 0) {
			fprintf(stderr, "nvmekeep %s: no answer from %s within %d s\n", cmd, path,
				timeout_ms / 1000);
			free(buf);
			return NULL;
		}
		n = recv(fd, buf + have, max - 1 - have, 0);
		if (n <= 0)
			break;
		have += (size_t)n;
		if (memchr(buf, '\n', have))
			break;
	}
	buf[have] = 0;
	if (!have) {
		fprintf(stderr, "nvmekeep %s: %s closed the connection without an answer%s%s\n",
			cmd, path, closed_hint ? ": " : "", closed_hint ? closed_hint : "");
		free(buf);
		return NULL;
	}
	r = json_tokener_parse(buf);
	free(buf);
	if (!r)
		fprintf(stderr, "nvmekeep %s: %s answered something that is not JSON\n", cmd, path);
	return r;
}

json_object *cli_ctl_call(const char *cmd, const char *what, const char *path, const char *hint,
			  json_object *req, size_t max, int timeout_ms)
{
	json_object *r = NULL;
	int fd = cli_ctl_connect(cmd, what, path, hint);

	if (fd < 0)
		return NULL;
	if (!cli_ctl_send(cmd, fd, path, req))
		r = cli_ctl_recv(cmd, fd, path, max, timeout_ms, NULL);
	close(fd);
	return r;
}
