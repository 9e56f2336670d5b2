/* SPDX-License-Identifier: MIT */
/*
 * Device argument of every CLI command:
 *   (none) or "emu"  the built-in emulated controller: namespace 1 is 1 GiB of
 *                    RAM with 512 B blocks, namespace 2 a 64 GiB null
 *                    namespace with 4 KiB blocks (for benchmarks)
 *   "emu:FILE"       as above, but namespace 1 is FILE (created 1 GiB if
 *                    missing), so data outlives the process
 *   "DDDD:BB:DD.F"   a PCI NVMe function driven through VFIO ("BB:DD.F": domain 0)
 *   "vfio-user:PATH" a controller served by a vfio-user server on socket PATH
 *                    (nvmekeep-emu); NVMEKEEP_VFIO_USER_DOORBELLS=trap makes
 *                    every doorbell a message (to measure what mmap saves)
 *   "/dev/nvmeXnY"   (any path) a namespace of the Linux kernel NVMe driver,
 *                    reached through io_uring (kernel_ns.h); read/write only
 * A PCI address bound to the kernel's nvme driver (not vfio-pci) is taken
 * through the kernel path too when OPENHCL_NVME_VFIO is off, its default
 * (manager.h): that is the configuration where nvmekeep leaves the device to
 * the kernel. With OPENHCL_NVME_VFIO=1 it stays a VFIO device, and opening it
 * reports that it is not bound to vfio-pci.
 * What a string means is the library's nvmk_dev_spec_parse, which driver
 * serves it nvmk_config_dev_driver: this file only opens what they say.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "nvmekeep/backing.h"
#include "nvmekeep/kernel_ns.h"
#include "nvmekeep/manager.h"

#define EMU_RAM_BYTES  (1ull << 30)
#define EMU_NULL_BYTES (64ull << 30)

static int open_emu(const char *file, struct cli_dev *dev)
{
	struct nvmk_emu_config cfg;
	struct stat st;
	int ret;

	nvmk_emu_config_default(&cfg);
	cfg.name = "emu0";
	cfg.serial = "NVMKEMU0001";
	cfg.model = "nvmekeep emulated controller";
	cfg.nr_ns = 2;
	cfg.ns[0] = (struct nvmk_emu_ns_config){
	    .nsid = 1,
	    .nblocks = EMU_RAM_BYTES >> 9,
	    .lba_shift = 9,
	    .backing = NVMK_EMU_BACK_RAM,
	};
	if (file) {
		cfg.ns[0].backing = NVMK_EMU_BACK_FILE;
		cfg.ns[0].path = file;
		if (stat(file, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 512)
			cfg.ns[0].nblocks = (uint64_t)st.st_size >> 9;
	}
	cfg.ns[1] = (struct nvmk_emu_ns_config){
	    .nsid = CLI_EMU_NULL_NSID,
	    .nblocks = EMU_NULL_BYTES >> 12,
	    .lba_shift = 12,
	    .backing = NVMK_EMU_BACK_NULL,
	};
	ret = nvmk_backing_local_create(&cfg, &dev->backing, &dev->emu);
	if (ret)
		fprintf(stderr, "nvmekeep: cannot create the emulated controller%s%s: %s\n",
			file ? " on " : "", file ? file : "", strerror(-ret));
	return ret;
}

int cli_dev_check(const char *cmd, const char *spec)
{
	struct nvmk_dev_spec ds;
	char why[200];

	if (!spec || !nvmk_dev_spec_parse(spec, &ds, why, sizeof(why)))
		return 0;
	cli_usage_error(cmd, "invalid DEVICE '%s': %s; DEVICE is %s", spec, why,
			nvmk_dev_spec_forms());
	return CLI_EXIT_USAGE;
}

/* The library's rule (nvmk_config_dev_driver) with the function's current
 * binding: a one-shot command drives a function bound to vfio-pci through
 * VFIO even while OPENHCL_NVME_VFIO is off. */
static enum nvmk_dev_driver dev_driver(const struct nvmk_dev_spec *ds)
{
	char bound[64] = "";
	struct nvmk_config cfg;

	if (ds->kind == NVMK_DEV_PCI && nvmk_pci_bound_driver(NULL, ds->pci_addr, bound,
							      sizeof(bound)))
		bound[0] = '\0'; /* no such function: VFIO's open says so */
	nvmk_config_load(NULL, NULL, &cfg);
	return nvmk_config_dev_driver(&cfg, ds, bound);
}

bool cli_dev_is_kernel(const char *spec)
{
	struct nvmk_dev_spec ds;

	if (!spec || nvmk_dev_spec_parse(spec, &ds, NULL, 0))
		return false;
	return dev_driver(&ds) == NVMK_DRIVER_KERNEL;
}

int cli_dev_open(const char *spec, const struct nvmk_ctrl_opts *opts, struct cli_dev *dev)
{
	struct nvmk_dev_spec ds;
	char why[200];
	int ret;

	memset(dev, 0, sizeof(*dev));
	if (!spec)
		spec = "emu";
	snprintf(dev->spec, sizeof(dev->spec), "%s", spec);
	if (nvmk_dev_spec_parse(spec, &ds, why, sizeof(why))) {
		fprintf(stderr, "nvmekeep: invalid device '%s': %s; DEVICE is %s\n", spec, why,
			nvmk_dev_spec_forms());
		return -EINVAL;
	}

	switch (ds.kind == NVMK_DEV_PCI ? NVMK_DRIVER_VFIO : dev_driver(&ds)) {
	case NVMK_DRIVER_EMU:
		ret = open_emu(ds.arg, dev);
		break;
	case NVMK_DRIVER_VFIO:
		/* the backing logs what is wrong and how to fix it (not bound to
		 * vfio-pci, group not viable, memlock limit, ...) */
		ret = nvmk_backing_vfio_open(ds.pci_addr, NULL, &dev->backing);
		if (ret)
			fprintf(stderr, "nvmekeep: cannot open %s through VFIO: %s\n", spec,
				strerror(-ret));
		break;
	case NVMK_DRIVER_VFIO_USER: {
		struct nvmk_vfio_user_opts vo = {0};
		const char *db = getenv("NVMEKEEP_VFIO_USER_DOORBELLS");

		vo.no_doorbell_mmap = db && !strcmp(db, "trap");
		/* the backing logs what is wrong (no socket, not a server, version) */
		ret = nvmk_backing_vfio_user_open(ds.arg, &vo, &dev->backing);
		if (ret)
			fprintf(stderr, "nvmekeep: cannot attach to %s: %s\n", spec, strerror(-ret));
		break;
	}
	default:
		fprintf(stderr,
			"nvmekeep: %s is a kernel block device: only read and write work on it "
			"(the other commands need the userspace driver: a PCI address bound "
			"to vfio-pci)\n",
			spec);
		return -EINVAL;
	}
	if (ret)
		return ret;

	/* (the no-IOMMU queue-size default is the driver's: drv_opts_resolve,
	 * so that the manager and the daemon get it too) */
	/* a controller a crashed client left (vfio-user, --persist) is adopted */
	ret = nvmk_ctrl_open_or_adopt(dev->backing, opts, &dev->ctrl, NULL);
	if (ret) {
		fprintf(stderr, "nvmekeep: %s: controller bring-up failed: %s\n", spec,
			strerror(-ret));
		nvmk_backing_destroy(dev->backing);
		dev->backing = NULL;
		return ret;
	}
	return 0;
}

void cli_dev_close(struct cli_dev *dev)
{
	nvmk_ctrl_close(dev->ctrl);
	dev->ctrl = NULL;
	nvmk_backing_destroy(dev->backing);
	dev->backing = NULL;
	dev->emu = NULL;
}
