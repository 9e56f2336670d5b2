/* SPDX-License-Identifier: MIT */
/*
 * The daemon's control socket: one JSON request per line, one JSON reply per
 * line. Verbs: status, add, remove, stop (docs/daemon.md lists the fields).
 */
#ifndef NVMKD_CONTROL_H
#define NVMKD_CONTROL_H

#include <stdbool.h>

#include "nvmekeep/export.h"
#include "nvmekeep/manager.h"

#define NVMKD_CONTROL_LINE_MAX 65536 /* longest request line */

struct nvmkd_control;

struct nvmkd_ctx {
	struct nvmk_mgr *mgr;
	struct nvmk_export_server *srv;
	unsigned io_queues;
	bool stop; /* set by the "stop" verb */
	/* servicing (tools/nvmekeepd/servicing.c); NULL: the verb is refused */
	char *(*service_fn)(struct nvmkd_ctx *ctx, const char *exec, unsigned timeout_ms);
	void (*service_refresh)(struct nvmkd_ctx *ctx); /* before status shows service_status */
	int req_fd; /* control connection of the request being answered, -1 */
	char service_status[512]; /* JSON object shown by status as "servicing", or "" */
};

/** nvmkd_control_open - listen on @path (mode 0600; a stale socket is replaced). */
int nvmkd_control_open(const char *path, struct nvmkd_ctx *ctx, struct nvmkd_control **out);
/** nvmkd_control_adopt - take over the listening socket @fd bound at @path
 *  (inherited from a predecessor across exec). */
int nvmkd_control_adopt(int fd, const char *path, struct nvmkd_ctx *ctx,
			struct nvmkd_control **out);
/** nvmkd_control_listen_fd - the listening socket (servicing hands it over). */
int nvmkd_control_listen_fd(const struct nvmkd_control *c);
/** nvmkd_control_fd - the fd to poll: readable when nvmkd_control_run has work. */
int nvmkd_control_fd(const struct nvmkd_control *c);
/** nvmkd_control_run - accept, read and answer whatever is ready (nonblocking). */
void nvmkd_control_run(struct nvmkd_control *c);
/** nvmkd_control_close - close every client and the socket, remove the file. */
void nvmkd_control_close(struct nvmkd_control *c);
/** nvmkd_handle_request - answer one request line (also used by tests). Returns
 *  a malloc'd JSON reply without newline. */
char *nvmkd_handle_request(struct nvmkd_ctx *ctx, const char *line, size_t len);

#endif /* NVMKD_CONTROL_H */
