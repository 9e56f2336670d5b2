/* SPDX-License-Identifier: MIT */
/*
 * Servicing of nvmekeepd (docs/servicing.md): the "service" control verb
 * replaces the running daemon by a new binary across execve, handing over
 * the devices, the DMA pool, the NBD sockets and the control socket.
 */
#ifndef NVMKD_SERVICING_H
#define NVMKD_SERVICING_H

#include "control.h"
#include "devices.h"

/* State format this binary writes and restores up to (service_state.proto). */
#define NVMKD_SERVICE_FORMAT 2

/** What the daemon runs with, kept for the successor. */
struct nvmkd_service_cfg {
	const char *const *devices; /* --device arguments */
	unsigned ndevices;
	struct nvmk_export_opts eo;
	const char *control_path;
	struct nvmkd_control *ctl;
};

/**
 * nvmkd_service_init - remember the configuration and the binary (the
 * default successor) and offer the "service" verb on @ctx.
 */
void nvmkd_service_init(struct nvmkd_ctx *ctx, const struct nvmkd_service_cfg *cfg);

/**
 * nvmkd_service_check - `nvmekeepd --service-check FORMAT`: print whether
 * this binary restores a state of @format, exit status 0 if it does, 3 if not.
 */
int nvmkd_service_check(const char *format);

/**
 * nvmkd_service_restore - the successor's start: read and check the state in
 * memfd @fd, restore the manager, the export and the control socket, start
 * serving and answer the control connection that asked.
 * Return: 0 (@ctx and *@ctl set, serving), or negative errno (logged).
 */
int nvmkd_service_restore(int fd, struct nvmkd_ctx *ctx, struct nvmkd_control **ctl);

#endif /* NVMKD_SERVICING_H */
