// SPDX-License-Identifier: MIT
/*
 * Typed controller register access (Base 2.0 3.1.3). Every read that the
 * driver acts on goes through here so that an all-ones value (surprise
 * removal: the device no longer answers) is recognised in one place.
 */
#include <errno.h>

#include "driver/drv.h"

uint64_t drv_reg_cap(struct nvmk_ctrl *ctrl)
{
	return nvmk_backing_read64(ctrl->b, NVME_REG_CAP);
}

uint32_t drv_reg_csts(struct nvmk_ctrl *ctrl)
{
	return nvmk_backing_read32(ctrl->b, NVME_REG_CSTS);
}

uint32_t drv_reg_cc(struct nvmk_ctrl *ctrl)
{
	return nvmk_backing_read32(ctrl->b, NVME_REG_CC);
}

void drv_reg_set_cc(struct nvmk_ctrl *ctrl, uint32_t cc)
{
	nvmk_backing_write32(ctrl->b, NVME_REG_CC, cc);
}

void drv_reg_set_aq(struct nvmk_ctrl *ctrl, uint32_t aqa, uint64_t asq, uint64_t acq)
{
	nvmk_backing_write32(ctrl->b, NVME_REG_AQA, aqa);
	nvmk_backing_write64(ctrl->b, NVME_REG_ASQ, asq);
	nvmk_backing_write64(ctrl->b, NVME_REG_ACQ, acq);
}

int drv_reg_health(struct nvmk_ctrl *ctrl)
{
	uint32_t csts = drv_reg_csts(ctrl);

	if (csts == 0xffffffffu)
		return -ENODEV;
	if (csts & NVME_CSTS_CFS)
		return -EIO;
	return 0;
}
