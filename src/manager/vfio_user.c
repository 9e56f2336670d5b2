// SPDX-License-Identifier: MIT
/*
 * The manager's factory for "vfio-user:PATH" devices (a controller in
 * another process, e.g. nvmekeep-emu).
 */
#include <errno.h>

#include "manager/mgr_internal.h"
#include "nvmekeep/backing.h"

int nvmk_mgr_vfio_user_backing(void *ctx, const char *id, bool restoring,
			       struct nvmk_backing **out)
{
	/* restoring: the controller is live with our queues in it; a reset
	 * would lose the commands in flight */
	struct nvmk_vfio_user_opts o = {.no_reset = restoring};
	const char *path = nvmk_backing_vfio_user_spec_path(id);

	(void)ctx;
	if (!path)
		return -EINVAL;
	return nvmk_backing_vfio_user_open(path, &o, out);
}
