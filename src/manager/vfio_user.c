// SPDX-License-Identifier: MIT
/*
 * The manager's factory for "vfio-user:PATH" devices (a controller in
 * another process, e.g. nvmekeep-emu).
 */
#include <errno.h>
#include <string.h>

#include "manager/mgr_internal.h"
#include "nvmekeep/backing.h"
#include "nvmekeep/log.h"

int nvmk_mgr_vfio_user_backing(void *ctx, const char *id, bool restoring,
			       struct nvmk_backing **out)
{
	/* restoring: the controller is live with our queues in it; a reset
	 * would lose the commands in flight */
	struct nvmk_vfio_user_opts o = {.no_reset = restoring};
	const char *path = nvmk_backing_vfio_user_spec_path(id);
	struct nvmk_vfio_user_handover ho;
	int rc;

	if (!path)
		return -EINVAL;
	if (!restoring || !ctx)
		return nvmk_backing_vfio_user_open(path, &o, out);
	/* a predecessor's connection, inherited across exec */
	rc = nvmk_vfio_user_handover_parse(ctx, &ho);
	if (rc) {
		nvmk_err(id, NVMK_LOG_NOQ, "malformed vfio-user handover string");
		return rc;
	}
	if (strcmp(ho.path, path)) {
		nvmk_err(id, NVMK_LOG_NOQ, "handover string is for %s, not this device", ho.path);
		return -EINVAL;
	}
	return nvmk_backing_vfio_user_adopt(&ho, &o, out);
}
