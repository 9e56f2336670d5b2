// SPDX-License-Identifier: MIT
/*
 * Listening sockets ("unix:PATH", "tcp:HOST:PORT") and the acceptor thread,
 * which hands each new connection to the I/O thread with the fewest.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "export_internal.h"
#include "nvmekeep/log.h"

#define LISTEN_ACCEPTED "'unix:PATH' or 'tcp:HOST:PORT' (PORT 0 picks a free one)"

static int listen_unix(struct exp_listener *l, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		nvmk_err(EXP_LOG, NVMK_LOG_NOQ, "listener unix:%s: the path must be 1..%zu bytes",
			 path, sizeof(sa.sun_path) - 1);
		return -EINVAL;
	}
	strcpy(sa.sun_path, path);
	/* a stale socket of an earlier run is replaced; anything else is not touched */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			nvmk_err(EXP_LOG, NVMK_LOG_NOQ, "listener unix:%s: exists and is not a socket",
				 path);
			return -EEXIST;
		}
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(path, 0660) || listen(fd, 128)) {
		int e = -errno;

		nvmk_err(EXP_LOG, NVMK_LOG_NOQ, "listener unix:%s: %s", path, strerror(-e));
		close(fd);
		return e;
	}
	l->fd = fd;
	if (stat(path, &st) == 0)
		l->unix_ino = st.st_ino;
	snprintf(l->unix_path, sizeof(l->unix_path), "%s", path);
	snprintf(l->addr, sizeof(l->addr), "unix:%s", path);
	return 0;
}

static int listen_tcp(struct exp_listener *l, const char *hostport)
{
	const char *colon = strrchr(hostport, ':');
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[64], port[16], hbuf[64];
	int fd = -1, rc, one = 1;

	if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof(host) ||
	    !colon[1] || strlen(colon + 1) >= sizeof(port)) {
		nvmk_err(EXP_LOG, NVMK_LOG_NOQ, "listener tcp:%s: expected tcp:HOST:PORT", hostport);
		return -EINVAL;
	}
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = 0;
	/* [::1]:PORT */
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
	}
	snprintf(port, sizeof(port), "%s", colon + 1);
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc) {
		nvmk_err(EXP_LOG, NVMK_LOG_NOQ, "listener tcp:%s: %s", hostport, gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		rc = -errno;
		nvmk_err(EXP_LOG, NVMK_LOG_NOQ, "listener tcp:%s: %s", hostport, strerror(-rc));
		close(fd);
		goto out;
	}
	if (getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof(hbuf), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV))
		snprintf(hbuf, sizeof(hbuf), "%s", host);
	l->fd = fd;
	snprintf(l->addr, sizeof(l->addr), ss.ss_family == AF_INET6 ? "tcp:[%s]:%s" : "tcp:%s:%s",
		 hbuf, port);
	rc = 0;
out:
	freeaddrinfo(ai);
	return rc;
}

int nvmk_export_listen(struct nvmk_export_server *srv, const char *spec)
{
	struct exp_listener *l;
	int rc;

	if (!srv || !spec)
		return -EINVAL;
	pthread_mutex_lock(&srv->lock);
	if (srv->nlisteners >= EXP_MAX_LISTENERS || atomic_load(&srv->stopping)) {
		pthread_mutex_unlock(&srv->lock);
		return srv->nlisteners >= EXP_MAX_LISTENERS ? -ENOSPC : -ESHUTDOWN;
	}
	l = &srv->listeners[srv->nlisteners];
	memset(l, 0, sizeof(*l));
	l->kind = EP_LISTENER;
	l->fd = -1;
	if (!strncmp(spec, "unix:", 5)) {
		rc = listen_unix(l, spec + 5);
	} else if (!strncmp(spec, "tcp:", 4)) {
		rc = listen_tcp(l, spec + 4);
	} else {
		nvmk_err(EXP_LOG, NVMK_LOG_NOQ, "listener '%s': expected %s", spec, LISTEN_ACCEPTED);
		rc = -EINVAL;
	}
	if (rc == 0) {
		srv->nlisteners++;
		if (srv->acceptor_started)
			epoll_ctl(srv->acc_epfd, EPOLL_CTL_ADD, l->fd,
				  &(struct epoll_event){.events = EPOLLIN, .data.ptr = l});
		nvmk_info(EXP_LOG, NVMK_LOG_NOQ, "listening on %s", l->addr);
	}
	pthread_mutex_unlock(&srv->lock);
	return rc;
}

const char *nvmk_export_listener_addr(const struct nvmk_export_server *srv, unsigned i)
{
	return srv && i < srv->nlisteners ? srv->listeners[i].addr : NULL;
}

void exp_listeners_close(struct nvmk_export_server *srv)
{
	pthread_mutex_lock(&srv->lock);
	for (unsigned i = 0; i < srv->nlisteners; i++) {
		struct exp_listener *l = &srv->listeners[i];

		if (l->fd >= 0) {
			close(l->fd);
			l->fd = -1;
		}
		if (l->unix_path[0]) {
			struct stat st;

			if (stat(l->unix_path, &st) == 0 && st.st_ino == l->unix_ino)
				unlink(l->unix_path);
			l->unix_path[0] = 0;
		}
	}
	pthread_mutex_unlock(&srv->lock);
}

static void peer_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char h[64], p[16];

	snprintf(buf, len, "unix");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) || ss.ss_family == AF_UNIX)
		return;
	if (!getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p),
			 NI_NUMERICHOST | NI_NUMERICSERV))
		snprintf(buf, len, "%s:%s", h, p);
}

static void accept_one(struct nvmk_export_server *srv, struct exp_listener *l)
{
	struct exp_thread *best = NULL;
	struct exp_conn *c;
	int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;

	if (fd < 0)
		return;
	if (atomic_load(&srv->nconns) >= srv->opts.max_connections) {
		nvmk_warn(EXP_LOG, NVMK_LOG_NOQ,
			  "connection on %s refused: --max-connections %u reached", l->addr,
			  srv->opts.max_connections);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c)
		c->opt_data = malloc(srv->opts.max_option_len ? srv->opts.max_option_len : 1);
	if (!c || !c->opt_data) {
		if (c)
			free(c);
		close(fd);
		return;
	}
	c->tcp = !strncmp(l->addr, "tcp:", 4);
	if (c->tcp)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	c->id = atomic_fetch_add(&srv->next_conn_id, 1) + 1;
	peer_name(fd, c->peer, sizeof(c->peer));
	for (unsigned i = 0; i < srv->nthreads; i++)
		if (!best || atomic_load(&srv->threads[i].nconns) < atomic_load(&best->nconns))
			best = &srv->threads[i];
	if (!best) {
		free(c->opt_data);
		free(c);
		close(fd);
		return;
	}
	c->t = best;
	atomic_fetch_add(&srv->nconns, 1);
	atomic_fetch_add(&best->nconns, 1);
	nvmk_info(EXP_LOG, NVMK_LOG_NOQ, "nbd conn %llu from %s on %s: thread %u",
		  (unsigned long long)c->id, c->peer, l->addr, best->idx);
	pthread_mutex_lock(&best->lock);
	c->next = best->inbox;
	best->inbox = c;
	pthread_mutex_unlock(&best->lock);
	exp_thread_wake(best);
}

void *exp_acceptor_main(void *arg)
{
	struct nvmk_export_server *srv = arg;
	struct epoll_event ev[16];

	for (;;) {
		int n = epoll_wait(srv->acc_epfd, ev, 16, -1);

		if (n < 0 && errno != EINTR)
			break;
		if (atomic_load(&srv->stopping) || atomic_load(&srv->parking))
			break; /* stop, or servicing: new connections wait in the backlog */
		for (int i = 0; i < n; i++) {
			struct exp_listener *l = ev[i].data.ptr;

			if (l->kind == EP_LISTENER && l->fd >= 0)
				accept_one(srv, l);
		}
	}
	return NULL;
}
