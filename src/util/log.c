/* SPDX-License-Identifier: MIT */
#include "nvmekeep/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

static _Atomic int log_level = NVMK_LOG_WARN;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static nvmk_log_sink_fn log_sink;
static void *log_sink_ctx;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void nvmk_log_set_level(enum nvmk_log_level level)
{
	atomic_store(&log_level, (int)level);
}

enum nvmk_log_level nvmk_log_get_level(void)
{
	return (enum nvmk_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

void nvmk_log_set_sink(nvmk_log_sink_fn fn, void *ctx)
{
	pthread_mutex_lock(&log_lock);
	log_sink = fn;
	log_sink_ctx = ctx;
	pthread_mutex_unlock(&log_lock);
}

void nvmk_vlog(enum nvmk_log_level level, const char *dev, int qid, const char *fmt, va_list ap)
{
	char line[512];
	int n;

	if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	if (level > NVMK_LOG_DEBUG)
		level = NVMK_LOG_DEBUG;

	if (dev && qid >= 0)
		n = snprintf(line, sizeof(line), "nvmekeep: %s: %s q%d: ", level_names[level], dev,
			     qid);
	else if (dev)
		n = snprintf(line, sizeof(line), "nvmekeep: %s: %s: ", level_names[level], dev);
	else
		n = snprintf(line, sizeof(line), "nvmekeep: %s: ", level_names[level]);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);

	pthread_mutex_lock(&log_lock);
	if (log_sink)
		log_sink(log_sink_ctx, level, line);
	else
		fprintf(stderr, "%s\n", line);
	pthread_mutex_unlock(&log_lock);
}

void nvmk_log(enum nvmk_log_level level, const char *dev, int qid, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	nvmk_vlog(level, dev, qid, fmt, ap);
	va_end(ap);
}
