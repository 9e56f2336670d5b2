/* SPDX-License-Identifier: MIT */
/*
 * Logging shared by every layer. A log line names what it concerns:
 * "nvmekeep: <level>: <device>[ q<qid>]: message".
 *
 * Thread safe. The sink defaults to stderr at NVMK_LOG_WARN; tools raise it
 * with -v, tests can capture lines with nvmk_log_set_sink().
 */
#ifndef NVMEKEEP_LOG_H
#define NVMEKEEP_LOG_H

#include <stdarg.h>

enum nvmk_log_level {
	NVMK_LOG_ERR = 0,
	NVMK_LOG_WARN = 1,
	NVMK_LOG_INFO = 2,
	NVMK_LOG_DEBUG = 3,
};

/* NVMK_LOG_NOQ: the line concerns the device as a whole, not one queue */
#define NVMK_LOG_NOQ (-1)

typedef void (*nvmk_log_sink_fn)(void *ctx, enum nvmk_log_level level, const char *line);

void nvmk_log_set_level(enum nvmk_log_level level);
enum nvmk_log_level nvmk_log_get_level(void);
/** Replace the sink (NULL restores stderr). @line has no trailing newline. */
void nvmk_log_set_sink(nvmk_log_sink_fn fn, void *ctx);

/**
 * nvmk_log - emit one line.
 * @level: severity
 * @dev:   device name ("0000:00:03.0", "emu0") or NULL
 * @qid:   queue id, or NVMK_LOG_NOQ
 */
void nvmk_log(enum nvmk_log_level level, const char *dev, int qid, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void nvmk_vlog(enum nvmk_log_level level, const char *dev, int qid, const char *fmt, va_list ap);

#define nvmk_err(dev, qid, ...) nvmk_log(NVMK_LOG_ERR, dev, qid, __VA_ARGS__)
#define nvmk_warn(dev, qid, ...) nvmk_log(NVMK_LOG_WARN, dev, qid, __VA_ARGS__)
#define nvmk_info(dev, qid, ...) nvmk_log(NVMK_LOG_INFO, dev, qid, __VA_ARGS__)
#define nvmk_debug(dev, qid, ...)                                                                  \
	do {                                                                                       \
		if (nvmk_log_get_level() >= NVMK_LOG_DEBUG)                                        \
			nvmk_log(NVMK_LOG_DEBUG, dev, qid, __VA_ARGS__);                           \
	} while (0)

#endif /* NVMEKEEP_LOG_H */
