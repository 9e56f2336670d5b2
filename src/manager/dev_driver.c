// SPDX-License-Identifier: MIT
/*
 * Which driver serves a device: the OPENHCL_NVME_VFIO rule, in one place
 * (manager.h, nvmk_config_dev_driver). What the device string means is the
 * backing layer's nvmk_dev_spec_parse; this file only adds the configuration.
 */
#include <string.h>

#include "nvmekeep/manager.h"

enum nvmk_dev_driver nvmk_config_dev_driver(const struct nvmk_config *cfg,
					    const struct nvmk_dev_spec *s, const char *bound)
{
	if (!s)
		return 0;
	switch (s->kind) {
	case NVMK_DEV_EMU:
		return NVMK_DRIVER_EMU;
	case NVMK_DEV_VFIO_USER:
		return NVMK_DRIVER_VFIO_USER;
	case NVMK_DEV_PCI:
		/* OpenHCL: OPENHCL_NVME_VFIO selects its NvmeManager (the
		 * userspace driver) for the PCI NVMe functions; without it the
		 * kernel's nvme driver keeps them. The default here is off. */
		if (cfg && cfg->nvme_vfio.enabled)
			return NVMK_DRIVER_VFIO;
		if (!bound || !strcmp(bound, "nvme"))
			return NVMK_DRIVER_KERNEL;
		return NVMK_DRIVER_VFIO;
	case NVMK_DEV_KERNEL_NS:
	case NVMK_DEV_KERNEL_CTRL:
	case NVMK_DEV_PATH:
		return NVMK_DRIVER_KERNEL;
	}
	return 0;
}

const char *nvmk_dev_driver_name(enum nvmk_dev_driver drv)
{
	switch (drv) {
	case NVMK_DRIVER_EMU:
		return "emu";
	case NVMK_DRIVER_VFIO:
		return "vfio";
	case NVMK_DRIVER_VFIO_USER:
		return "vfio-user";
	case NVMK_DRIVER_KERNEL:
		return "kernel";
	}
	return "?";
}
