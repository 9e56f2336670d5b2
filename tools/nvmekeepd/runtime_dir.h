/* SPDX-License-Identifier: MIT */
/*
 * Where the daemon's sockets live by default, shared by nvmekeepd and the
 * nvmekeep CLI so that both find the same control socket.
 */
#ifndef NVMK_RUNTIME_DIR_H
#define NVMK_RUNTIME_DIR_H

#include <stddef.h>

/**
 * nvmk_runtime_path - "/run/nvmekeep/NAME" as root, else
 * "$XDG_RUNTIME_DIR/nvmekeep/NAME" (or /tmp/nvmekeep-UID/NAME without it).
 * @mkdir_parent: create the directory (mode 0700 unless root: 0755)
 * Return: 0, -ENAMETOOLONG, or the mkdir error.
 */
int nvmk_runtime_path(const char *name, char *buf, size_t len, int mkdir_parent);

#endif /* NVMK_RUNTIME_DIR_H */
