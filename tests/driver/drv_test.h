/* SPDX-License-Identifier: MIT */
/* Helpers shared by the driver tests: an emulator behind the local backing,
 * short timeouts, and a log sink that remembers lines. */
#ifndef NVMK_DRV_TEST_H
#define NVMK_DRV_TEST_H

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "nvmekeep/backing.h"
#include "nvmekeep/driver.h"
#include "nvmekeep/emu.h"
#include "nvmekeep/log.h"

struct tenv {
	struct nvmk_backing *b;
	struct nvmk_emu *emu;
	struct nvmk_ctrl *ctrl;
};

static pthread_mutex_t tlog_lock = PTHREAD_MUTEX_INITIALIZER;
static char tlog_buf[64 * 1024];

static void tlog_sink(void *ctx, enum nvmk_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	pthread_mutex_lock(&tlog_lock);
	size_t n = strlen(tlog_buf);
	if (n + strlen(line) + 2 < sizeof(tlog_buf)) {
		strcat(tlog_buf, line);
		strcat(tlog_buf, "\n");
	}
	pthread_mutex_unlock(&tlog_lock);
	if (getenv("NVMK_TEST_VERBOSE"))
		fprintf(stderr, "%s\n", line);
}

static inline void tlog_reset(void)
{
	pthread_mutex_lock(&tlog_lock);
	tlog_buf[0] = 0;
	pthread_mutex_unlock(&tlog_lock);
	nvmk_log_set_sink(tlog_sink, NULL);
	nvmk_log_set_level(NVMK_LOG_INFO);
}

static inline int tlog_has(const char *s)
{
	pthread_mutex_lock(&tlog_lock);
	int r = strstr(tlog_buf, s) != NULL;
	pthread_mutex_unlock(&tlog_lock);
	return r;
}

static inline void tcfg_default(struct nvmk_emu_config *cfg, const char *name)
{
	nvmk_emu_config_default(cfg);
	cfg->name = name;
	cfg->ns[0].nblocks = 1u << 16; /* 32 MiB of 512 B blocks */
}

static inline void topts_default(struct nvmk_ctrl_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->admin_timeout_ms = 1000;
	o->io_timeout_ms = 300;
	o->health_check_ms = 20;
	o->max_io_queues = 4;
	o->shutdown_timeout_ms = 1000;
	/* shadow doorbells by default (the controller offers them); tests that
	 * want registers set NVMK_DBBUF_OFF */
	o->dbbuf = NVMK_DBBUF_AUTO;
}

#ifdef NVMK_TEST_VFIO_USER
/* the same tests over vfio-user (tests/driver/meson.build, *-vfio-user) */
#include "../vfio_user/vfu_loop.h"
#define tenv_backing_create  tvfu_open
#define tenv_backing_destroy tvfu_destroy
#else
#define tenv_backing_create  nvmk_backing_local_create
#define tenv_backing_destroy nvmk_backing_destroy
#endif

static inline int tenv_open(struct tenv *t, const struct nvmk_emu_config *cfg,
			    const struct nvmk_ctrl_opts *o)
{
	int rc;

	memset(t, 0, sizeof(*t));
	rc = tenv_backing_create(cfg, &t->b, &t->emu);
	if (rc)
		return rc;
	rc = nvmk_ctrl_open(t->b, o, &t->ctrl);
	if (rc) {
		tenv_backing_destroy(t->b);
		t->b = NULL;
	}
	return rc;
}

static inline void tenv_close(struct tenv *t)
{
	nvmk_ctrl_close(t->ctrl);
	tenv_backing_destroy(t->b);
	memset(t, 0, sizeof(*t));
}

static inline void tsleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Remove namespace @nsid from the emulator and wait (5 s at most) until the
 * driver's handle @ns has seen it (the namespace-change event was handled).
 * Returns 0, or the emulator's error, or -ETIMEDOUT. */
static inline int tns_remove_wait(struct nvmk_emu *emu, struct nvmk_ns *ns, uint32_t nsid)
{
	struct nvmk_ns_info info;
	int rc = nvmk_emu_ns_remove(emu, nsid);

	if (rc)
		return rc;
	for (int i = 0; i < 500; i++) {
		nvmk_ns_info(ns, &info);
		if (info.removed)
			return 0;
		tsleep_ms(10);
	}
	return -ETIMEDOUT;
}

#endif
