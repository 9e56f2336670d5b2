// SPDX-License-Identifier: MIT
/* Default socket locations (runtime_dir.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime_dir.h"

int nvmk_runtime_path(const char *name, char *buf, size_t len, int mkdir_parent)
{
	char dir[256];
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (geteuid() == 0)
		n = snprintf(dir, sizeof(dir), "/run/nvmekeep");
	else if (xdg && *xdg)
		n = snprintf(dir, sizeof(dir), "%s/nvmekeep", xdg);
	else
		n = snprintf(dir, sizeof(dir), "/tmp/nvmekeep-%u", (unsigned)geteuid());
	if (n < 0 || (size_t)n >= sizeof(dir))
		return -ENAMETOOLONG;
	if (mkdir_parent && mkdir(dir, geteuid() == 0 ? 0755 : 0700) && errno != EEXIST)
		return -errno;
	n = snprintf(buf, len, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
