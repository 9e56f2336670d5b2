// SPDX-License-Identifier: MIT
/*
 * One owner per device. Two controllers on one device would each reset it
 * and program its admin queue under the other: a second nvmk_ctrl_open, or
 * a restore while a controller (e.g. one restored from the same state) runs,
 * is refused before any register is touched. The owner is the controller
 * pointer in struct nvmk_backing.ctrl_owner, set atomically.
 *
 * Across processes the kernel already enforces it for VFIO: a group file
 * (/dev/vfio/N, /dev/vfio/noiommu-N) can be open in one process only, and
 * VFIO_GROUP_GET_DEVICE_FD refuses a device that is open; the successor of
 * a servicing inherits both fds over exec and so the ownership.
 */
#include <errno.h>

#include "driver/servicing.h"

int drv_owner_busy(struct nvmk_backing *b, const char *what)
{
	/* acquire: pairs with the claim's release, for the log only */
	if (!__atomic_load_n(&b->ctrl_owner, __ATOMIC_ACQUIRE))
		return 0;
	nvmk_err(b->name, NVMK_LOG_NOQ,
		 "%s refused: the device is in use by another controller of this process "
		 "(close or save and detach it first); nothing was written to the device",
		 what);
	return -EBUSY;
}

int drv_owner_claim(struct nvmk_ctrl *ctrl, const char *what)
{
	void *none = NULL;

	/* acq_rel: one claim wins; its controller's setup happens after it */
	if (__atomic_compare_exchange_n(&ctrl->b->ctrl_owner, &none, ctrl, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		return 0;
	return drv_owner_busy(ctrl->b, what);
}

void drv_owner_release(struct nvmk_ctrl *ctrl)
{
	void *self = ctrl;

	/* release: everything this controller did before the next owner starts */
	__atomic_compare_exchange_n(&ctrl->b->ctrl_owner, &self, NULL, false, __ATOMIC_RELEASE,
				    __ATOMIC_RELAXED);
}
