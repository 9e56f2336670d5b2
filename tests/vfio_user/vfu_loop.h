/* SPDX-License-Identifier: MIT */
/*
 * The driver tests over vfio-user: the nvmekeep-emu server embedded in the
 * test process (a thread serving a socket in a fresh mkdtemp directory) and
 * the driver on the vfio-user client backing, connected through that socket.
 * The emulator object stays reachable, so the tests' fault injection and
 * command counters work unchanged. Included by tests/driver/drv_test.h when
 * NVMK_TEST_VFIO_USER is defined.
 */
#ifndef NVMK_VFU_LOOP_H
#define NVMK_VFU_LOOP_H

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "nvmekeep-emu/server.h"
#include "nvmekeep/backing.h"

struct tvfu {
	struct srv s;
	pthread_t th;
	int stop[2];
	char dir[64], sock[96];
	struct nvmk_backing *b;
	struct tvfu *next;
};

static struct tvfu *tvfu_list;
static pthread_mutex_t tvfu_lock = PTHREAD_MUTEX_INITIALIZER;

static void *tvfu_serve(void *arg)
{
	srv_serve(arg);
	return NULL;
}

static inline void tvfu_stop(struct tvfu *v)
{
	if (write(v->stop[1], "x", 1) != 1)
		abort();
	pthread_join(v->th, NULL);
	srv_teardown(&v->s);
	close(v->s.listen_fd);
	close(v->stop[0]);
	close(v->stop[1]);
	unlink(v->sock);
	rmdir(v->dir);
	free(v);
}

/* nvmk_backing_local_create's stand-in: the emulator from @cfg behind a
 * vfio-user server thread, and a vfio-user backing attached to it. */
static inline int tvfu_open(const struct nvmk_emu_config *cfg, struct nvmk_backing **b,
			    struct nvmk_emu **emu)
{
	struct tvfu *v = calloc(1, sizeof(*v));
	struct nvmk_emu_config c = *cfg;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int rc;

	if (!v)
		return -ENOMEM;
	snprintf(v->dir, sizeof(v->dir), "/tmp/nvmk-vfu-drv-XXXXXX");
	if (!mkdtemp(v->dir)) {
		free(v);
		return -errno;
	}
	snprintf(v->sock, sizeof(v->sock), "%s/s", v->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", v->sock);
	v->s.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (v->s.listen_fd < 0 || bind(v->s.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(v->s.listen_fd, 4) || pipe2(v->stop, O_CLOEXEC))
		abort();
	v->s.stop_fd = v->stop[0];
	rc = srv_setup(&v->s, &c);
	if (rc) {
		/* the emulator refused the configuration: as the local backing does */
		close(v->s.listen_fd);
		close(v->stop[0]);
		close(v->stop[1]);
		unlink(v->sock);
		rmdir(v->dir);
		free(v);
		return rc;
	}
	if (pthread_create(&v->th, NULL, tvfu_serve, &v->s))
		abort();
	rc = nvmk_backing_vfio_user_open(v->sock, NULL, b);
	if (rc) {
		tvfu_stop(v);
		return rc;
	}
	/* named like the local backing (the tests match pool owners and log
	 * lines on the emulator's name) */
	snprintf((*b)->name, sizeof((*b)->name), "%s", cfg->name ? cfg->name : "emu");
	v->b = *b;
	*emu = v->s.emu;
	pthread_mutex_lock(&tvfu_lock);
	v->next = tvfu_list;
	tvfu_list = v;
	pthread_mutex_unlock(&tvfu_lock);
	return 0;
}

/* nvmk_backing_destroy of a backing from tvfu_open, then its server. */
static inline void tvfu_destroy(struct nvmk_backing *b)
{
	struct tvfu **link, *v = NULL;

	pthread_mutex_lock(&tvfu_lock);
	for (link = &tvfu_list; *link; link = &(*link)->next) {
		if ((*link)->b == b) {
			v = *link;
			*link = v->next;
			break;
		}
	}
	pthread_mutex_unlock(&tvfu_lock);
	nvmk_backing_destroy(b);
	if (v)
		tvfu_stop(v);
}

#endif /* NVMK_VFU_LOOP_H */
